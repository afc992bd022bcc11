/**
 * Every pool of HTTP backends and its servers, in the main thread: the http sinks take servers
 * from it, the admin API registers and removes them (POST/DELETE/GET /servers), /stats and
 * /metrics read it. Config servers are there from the start; servers registered at run time
 * are kept in <dataDir>/servers.json (written durably on each change), so they are still
 * there after a restart, until they are removed.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { healthCheckConfig } from '../config/load.js';
import type { HealthCheckConfig, PoolConfig } from '../config/types.js';
import type { ErrorCode } from '../errors.js';
import { writeFileDurable } from '../log/fsutil.js';
import type { Logger } from '../logger.js';
import { Backend, serverId, type ServerInfo } from './backend.js';
import { Balancer } from './balancer.js';
import { closeHealthChecks } from './health-check.js';
import { checkTarget } from './target-policy.js';

/** POST /servers body, after schema validation (defaults applied). */
export interface Registration {
  pool: string;
  ip: string;
  port: number;
  scheme: 'http' | 'https';
  check?: Partial<Record<'type' | 'path' | 'interval' | 'timeout' | 'unhealthyAfter' | 'healthyAfter', string | number>>;
}

export type RegisterResult =
  | { ok: true; created: boolean; server: ServerInfo }
  | { ok: false; code: ErrorCode; detail: string };

export class PoolRuntime {
  readonly servers: Backend[] = [];
  readonly balancer: Balancer;
  constructor(readonly name: string, readonly cfg: PoolConfig) {
    this.balancer = new Balancer(cfg.balance);
  }

  pick(avoid: Backend | undefined, now: number): Backend | null {
    return this.balancer.pick(this.servers, avoid, now);
  }

  healthyCount(): number {
    let n = 0;
    for (const s of this.servers) if (s.state === 'healthy') n++;
    return n;
  }

  /** Latency average of the healthy servers that have one (0 when none has). */
  averageLatency(): number {
    const live = this.servers.filter((s) => s.ewmaMs > 0 && s.state === 'healthy');
    return live.length === 0 ? 0 : live.reduce((n, s) => n + s.ewmaMs, 0) / live.length;
  }
}

export class PoolRegistry {
  private readonly pools = new Map<string, PoolRuntime>();
  private readonly byId = new Map<string, Backend>();
  /** Requests answered by servers that have left (kept in the totals). */
  private goneSuccess = 0;
  private goneFailed = 0;
  private readonly file: string;
  /** Registrations made on the admin API, by server id (what servers.json holds). */
  private readonly registered = new Map<string, Registration>();

  constructor(pools: Readonly<Record<string, PoolConfig>>, dataDir: string, private readonly allowPrivateTargets: boolean, private readonly log: Logger) {
    for (const [name, cfg] of Object.entries(pools)) this.pools.set(name, new PoolRuntime(name, cfg));
    this.file = path.join(dataDir, 'servers.json');
  }

  /** Adds the config servers and the ones registered before a restart; starts their checks. */
  start(): void {
    for (const p of this.pools.values()) {
      for (const u of p.cfg.servers) this.add(p, new URL(u), 'config', p.cfg.healthCheck);
    }
    if (!existsSync(this.file)) return;
    let saved: Registration[] = [];
    try {
      saved = JSON.parse(readFileSync(this.file, 'utf8')) as Registration[];
    } catch (e) {
      this.log.error({ event: 'servers_file_unreadable', file: this.file, err: (e as Error).message }, 'registered servers file unreadable; starting with config servers only');
      return;
    }
    for (const r of saved) {
      const res = this.register(r, false);
      if (!res.ok) this.log.warn({ event: 'server_not_restored', registration: r, code: res.code, detail: res.detail }, 'a registered server was not restored');
    }
  }

  pool(name: string): PoolRuntime {
    const p = this.pools.get(name);
    if (!p) throw new Error(`no pool ${name}`);
    return p;
  }

  private add(p: PoolRuntime, origin: URL, source: 'config' | 'api', check: HealthCheckConfig): Backend {
    const b = new Backend(p.name, origin, source, check, p.cfg, this.log, () => p.averageLatency());
    p.servers.push(b);
    this.byId.set(b.id, b);
    b.startChecks();
    this.log.info({ event: 'server_added', pool: p.name, server: b.id, url: origin.origin, source }, 'server joined its pool');
    return b;
  }

  /** POST /servers. Idempotent: the same pool and address give the same server. */
  register(r: Registration, persist = true): RegisterResult {
    const p = this.pools.get(r.pool);
    if (!p) return { ok: false, code: 'CROWD_UNKNOWN_POOL', detail: `no pool "${r.pool}"` };
    const verdict = checkTarget(r.ip, this.allowPrivateTargets);
    if (!verdict.ok) return { ok: false, code: verdict.status === 400 ? 'CROWD_INVALID_REQUEST' : 'CROWD_TARGET_FORBIDDEN', detail: verdict.reason };
    const host = verdict.family === 6 ? `[${verdict.address}]` : verdict.address;
    const origin = new URL(`${r.scheme}://${host}:${r.port}`);
    const id = serverId(p.name, origin.origin);
    const existing = this.byId.get(id);
    if (existing) {
      if (existing.state === 'draining') return { ok: false, code: 'CROWD_SERVER_CONFLICT', detail: `${origin.origin} is draining; register it again once it has left` };
      return { ok: true, created: false, server: existing.info() };
    }
    let check: HealthCheckConfig;
    try {
      check = healthCheckConfig({ ...checkAsSchema(p.cfg.healthCheck), ...(r.check ?? {}) });
    } catch (e) {
      return { ok: false, code: 'CROWD_INVALID_REQUEST', detail: (e as Error).message };
    }
    const b = this.add(p, origin, 'api', check);
    this.registered.set(b.id, { ...r, ip: verdict.address });
    if (persist) this.save();
    return { ok: true, created: true, server: b.info() };
  }

  /** DELETE /servers/:id: the server drains, then leaves. */
  remove(id: string): ServerInfo | null {
    const b = this.byId.get(id);
    if (!b) return null;
    if (b.state !== 'draining') {
      if (this.registered.delete(id)) this.save();
      b.drain(() => {
        const p = this.pools.get(b.pool)!;
        p.servers.splice(p.servers.indexOf(b), 1);
        this.byId.delete(id);
        this.goneSuccess += b.success;
        this.goneFailed += b.failed;
        void b.close();
        this.log.info({ event: 'server_left', pool: b.pool, server: id, url: b.origin.origin }, 'server drained and left its pool');
      });
    }
    return b.info();
  }

  list(): ServerInfo[] {
    return [...this.byId.values()].map((b) => b.info());
  }

  totals(): { success: number; failed: number } {
    let success = this.goneSuccess;
    let failed = this.goneFailed;
    for (const b of this.byId.values()) {
      success += b.success;
      failed += b.failed;
    }
    return { success, failed };
  }

  private save(): void {
    writeFileDurable(this.file, `${JSON.stringify([...this.registered.values()], null, 1)}\n`);
  }

  async close(): Promise<void> {
    await Promise.all([...this.byId.values()].map((b) => b.close()));
    await closeHealthChecks();
  }
}

/** A health check back in the config's (schema) shape, to merge a registration's overrides. */
function checkAsSchema(h: HealthCheckConfig): Record<string, string | number> {
  return { type: h.type, path: h.path, interval: `${h.intervalMs}ms`, timeout: `${h.timeoutMs}ms`, unhealthyAfter: h.unhealthyAfter, healthyAfter: h.healthyAfter };
}
