/**
 * One active health check of one server: `tcp` (a connection opens) or `http` (GET <path>
 * answers 2xx or 3xx), bounded by the check's timeout. Resolves with null when it passed, or
 * with why it failed; never rejects. HTTP checks use their own keep-alive agent, so a server
 * whose delivery connections are all busy is still checked promptly.
 */
import net from 'node:net';
import { Agent, request } from 'undici';
import type { HealthCheckConfig } from '../config/types.js';

let checkAgent: Agent | null = null;

export function runHealthCheck(origin: URL, check: HealthCheckConfig): Promise<string | null> {
  return check.type === 'tcp' ? tcpCheck(origin, check.timeoutMs) : httpCheck(origin, check.path, check.timeoutMs);
}

function tcpCheck(origin: URL, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const port = Number(origin.port || (origin.protocol === 'https:' ? 443 : 80));
    const s = net.connect({ host: origin.hostname.replace(/^\[|\]$/g, ''), port });
    const finish = (r: string | null) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish(`tcp connect timed out after ${timeoutMs} ms`), timeoutMs);
    s.once('connect', () => finish(null));
    s.once('error', (e: NodeJS.ErrnoException) => finish(`tcp ${e.code ?? e.message}`));
  });
}

async function httpCheck(origin: URL, path: string, timeoutMs: number): Promise<string | null> {
  try {
    const res = await request(new URL(path, origin), {
      method: 'GET', dispatcher: (checkAgent ??= new Agent({ connections: 1, keepAliveTimeout: 30_000 })), headersTimeout: timeoutMs, bodyTimeout: timeoutMs, headers: { 'user-agent': 'crowd-health-check' },
    });
    await res.body.dump();
    return res.statusCode >= 200 && res.statusCode < 400 ? null : `GET ${path} answered ${res.statusCode}`;
  } catch (e) {
    const err = e as Error & { code?: string };
    return `GET ${path}: ${err.code ?? err.message}`;
  }
}

/** Closes the health checks' connections (a later check opens new ones). */
export async function closeHealthChecks(): Promise<void> {
  const a = checkAgent;
  checkAgent = null;
  await a?.close();
}
