/**
 * A real HTTP backend for the http sink tests: a node:http server on 127.0.0.1 in the test
 * process that records every request it gets (method, url, headers, body, arrival order and
 * time) and answers as the test says (`behave`). It can be killed (listener closed, every
 * connection destroyed) and started again on the same port. With `tls` (a key and certificate)
 * it is an https server.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface Received {
  id: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
  /** Position among all requests (not health checks) this backend received. */
  seq: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
  /** Answer only once this settles (after `delayMs`, if both): a test releases it on an event. */
  hold?: Promise<unknown>;
}

export class Backend {
  readonly received: Received[] = [];
  /** Health-check requests (GET <healthPath>), with the number of requests received before each. */
  readonly healthChecks: Array<{ at: number; requestsBefore: number }> = [];
  /** Responses fully written / connections lost before the answer was written. */
  finished = 0;
  aborted = 0;
  /** Decides each answer; default 200 "ok". `attempt` counts deliveries of the same id (1, 2, ...). */
  behave: (r: Received, attempt: number) => Answer = () => ({ status: 200 });
  healthStatus = 200;
  private server: http.Server | https.Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly attempts = new Map<string, number>();
  port = 0;

  constructor(readonly name: string, readonly healthPath = '/health', readonly tls: { key: string; cert: string } | null = null) {}

  async start(port = this.port): Promise<this> {
    const handler: http.RequestListener = (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        if (req.url === this.healthPath) {
          this.healthChecks.push({ at: Date.now(), requestsBefore: this.received.length });
          res.statusCode = this.healthStatus;
          res.end('health');
          return;
        }
        const id = String(req.headers['crowd-id'] ?? '');
        const r: Received = { id, method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), seq: this.received.length };
        this.received.push(r);
        const attempt = (this.attempts.get(id) ?? 0) + 1;
        this.attempts.set(id, attempt);
        const a = this.behave(r, attempt);
        let written = false;
        res.on('finish', () => {
          written = true;
          this.finished++;
        });
        res.on('close', () => {
          if (!written) this.aborted++;
        });
        const send = () => {
          res.writeHead(a.status, a.headers);
          res.end(a.body ?? 'ok');
        };
        const held = a.hold ? () => void a.hold!.then(send, send) : send;
        if (a.delayMs) setTimeout(held, a.delayMs);
        else held();
      });
    };
    const server = this.tls ? https.createServer(this.tls, handler) : http.createServer(handler);
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Stops at once: the listener closes and every open connection is destroyed. */
  async kill(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  ids(): Set<string> {
    return new Set(this.received.map((r) => r.id));
  }
}

/**
 * crowd's config for a route /leads whose sink `api` delivers to a pool of these servers, with
 * a quick health check (loopback targets need allowPrivateTargets).
 */
export function httpConfig(servers: string[], sink: Record<string, unknown> = {}, pool: Record<string, unknown> = {}, route: Record<string, unknown> = {}) {
  return {
    admin: { allowPrivateTargets: true },
    sinks: { api: { type: 'http', pool: 'leads-api', concurrency: 16, timeout: '2s', ...sink } },
    pools: { 'leads-api': { servers, healthCheck: { type: 'http', path: '/health', interval: '200ms', unhealthyAfter: 2, healthyAfter: 2 }, ...pool } },
    routes: [{ path: '/leads', sinks: ['api'], ...route }],
  };
}

/** Starts `n` backends on free ports. */
export function startBackends(n: number, prefix = 'b'): Promise<Backend[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => new Backend(`${prefix}${i}`).start(0)));
}

/** Delivery report over several backends: what arrived, what is missing, duplicates. */
export function deliveryReport(acked: Map<string, string>, backends: Backend[]) {
  const seen = new Map<string, number>();
  const bodies = new Map<string, string>();
  for (const b of backends) {
    for (const r of b.received) {
      seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
      bodies.set(r.id, r.body);
    }
  }
  let missing = 0;
  let wrongBody = 0;
  for (const [id, body] of acked) {
    if (!seen.has(id)) missing++;
    else if (bodies.get(id) !== body) wrongBody++;
  }
  let duplicates = 0;
  for (const n of seen.values()) duplicates += n - 1;
  return { acknowledged: acked.size, received: [...seen.values()].reduce((a, b) => a + b, 0), missing, wrongBody, duplicates, perBackend: Object.fromEntries(backends.map((b) => [b.name, b.received.length])) };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond` holds or `timeoutMs` passes; returns whether it held. */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 30_000, stepMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await sleep(stepMs);
  }
}

/** One admin API request (fetch); the answer's status, headers and parsed JSON body. */
export async function admin(port: number, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics)
  }
  return { status: res.status, headers: res.headers, body: parsed };
}
