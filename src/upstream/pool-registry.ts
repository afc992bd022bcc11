/**
 * Every pool of HTTP backends and its servers, in the main thread: the http sinks take servers
 * from it, the admin API registers and removes them (POST/DELETE/GET /servers), /stats and
 * /metrics read it. Config servers are there from the start; servers registered at run time
 * are kept in a RegistryStore (by default the file store in the data dir: servers.json and
 * servers.journal), each change durable before it is answered, so they are still there after
 * a restart, until they are removed.
 */
import { healthCheckConfig } from '../config/load.js';
import type { HealthCheckConfig, PoolConfig } from '../config/types.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { Backend, serverId, type ServerInfo } from './backend.js';
import { Balancer } from './balancer.js';
import { FileRegistryStore } from './file-registry-store.js';
import { closeHealthChecks } from './health-check.js';
import type { RegistryStore } from './registry-store.js';
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
  /** Registrations made on the admin API, by server id (what the store holds). */
  private readonly registered = new Map<string, Registration>();
  readonly store: RegistryStore;
  /** Settles once the servers registered before a restart are back (never rejects). */
  private restored: Promise<void> = Promise.resolve();
  /** Why the store could not be read at the last try (then changes wait for a successful one). */
  private restoreError: string | null = null;
  /** Registrations being written to the store, by server id (a second one waits for it). */
  private readonly storing = new Map<string, Promise<RegisterResult>>();

  constructor(pools: Readonly<Record<string, PoolConfig>>, dataDir: string, private readonly allowPrivateTargets: boolean, private readonly log: Logger, store?: RegistryStore) {
    for (const [name, cfg] of Object.entries(pools)) this.pools.set(name, new PoolRuntime(name, cfg));
    this.store = store ?? new FileRegistryStore(dataDir, log);
  }

  /**
   * Adds the config servers at once and starts their checks; the ones registered before a
   * restart follow from the store (`ready()` settles then; registrations wait for it).
   */
  start(): void {
    for (const p of this.pools.values()) {
      for (const u of p.cfg.servers) this.add(p, new URL(u), 'config', p.cfg.healthCheck);
    }
    this.restored = this.tryRestore();
  }

  ready(): Promise<void> {
    return this.restored;
  }

  private async tryRestore(): Promise<void> {
    try {
      await this.restore();
      if (this.restoreError !== null) this.log.info({ event: 'servers_restored', store: this.store.where }, 'registered servers read after all');
      this.restoreError = null;
    } catch (e) {
      const first = this.restoreError === null;
      this.restoreError = (e as Error).message;
      if (first) this.log.error({ event: 'servers_not_restored', store: this.store.where, err: this.restoreError }, 'registered servers could not be read; config servers only, and registrations are refused until the store can be read');
    }
  }

  /**
   * Null once the store has been read (trying again when the last try failed: a disk that
   * recovers needs no restart), else why registrations are refused.
   */
  private async storeReadable(): Promise<string | null> {
    for (;;) {
      const current = this.restored;
      await current;
      if (this.restoreError === null) return null;
      if (this.restored !== current) continue; // another request is trying already: wait for it
      this.restored = this.tryRestore();
      await this.restored;
      return this.restoreError === null ? null : `registered servers not readable from ${this.store.where}: ${this.restoreError}`;
    }
  }

  private async restore(): Promise<void> {
    const saved = await this.store.load();
    let oldFormat = false;
    for (const { id, registration } of saved) {
      const res = this.admit(registration);
      if (res.ok) {
        const reg = this.registered.get(res.server.id);
        if (!reg) {
          // The same address is now a config server: the config has it, the store need not.
          if (id !== null) await this.store.delete(id);
        } else if (id === null) {
          oldFormat = true;
          await this.store.put(res.server.id, reg);
        } else if (id !== res.server.id) {
          await this.store.delete(id);
          await this.store.put(res.server.id, reg);
        }
        continue;
      }
      // As before the store existed: a registration that no longer fits the config (its pool
      // is gone, say) is not kept.
      this.log.warn({ event: 'server_not_restored', registration, code: res.code, detail: res.detail }, 'a registered server was not restored; it is forgotten');
      if (id !== null) await this.store.delete(id);
    }
    if (oldFormat) await this.store.migrated();
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

  /**
   * POST /servers. Idempotent: the same pool and address give the same server. The server
   * joins its pool only once its registration is durable in the store.
   */
  async register(r: Registration): Promise<RegisterResult> {
    const unreadable = await this.storeReadable();
    if (unreadable !== null) return { ok: false, code: 'CROWD_INTERNAL', detail: unreadable };
    const id = this.idOf(r);
    const pending = id === null ? undefined : this.storing.get(id);
    if (pending) {
      const first = await pending;
      if (!first.ok) return first;
    }
    const checked = this.check(r);
    if (!checked.ok || checked.existing) return checked.result;
    const p = this.pools.get(r.pool)!;
    const work = (async (): Promise<RegisterResult> => {
      const reg = { ...r, ip: checked.address };
      try {
        await this.store.put(checked.id, reg);
      } catch (e) {
        return { ok: false, code: 'CROWD_INTERNAL', detail: `registration not stored: ${(e as Error).message}` };
      }
      const b = this.add(p, checked.origin, 'api', checked.healthCheck);
      this.registered.set(b.id, reg);
      return { ok: true, created: true, server: b.info() };
    })();
    this.storing.set(checked.id, work);
    try {
      return await work;
    } finally {
      this.storing.delete(checked.id);
    }
  }

  /** A registration restored from the store: joins at once, nothing written. */
  private admit(r: Registration): RegisterResult {
    const checked = this.check(r);
    if (!checked.ok || checked.existing) return checked.result;
    const b = this.add(this.pools.get(r.pool)!, checked.origin, 'api', checked.healthCheck);
    this.registered.set(b.id, { ...r, ip: checked.address });
    return { ok: true, created: true, server: b.info() };
  }

  /** The server id a registration would get, or null when it is refused anyway. */
  private idOf(r: Registration): string | null {
    const c = this.check(r);
    return c.ok ? c.id : null;
  }

  /** Validates a registration against the pools, the target policy and the servers there. */
  private check(r: Registration):
    | { ok: false; existing?: undefined; result: RegisterResult }
    | { ok: true; existing: true; id: string; result: RegisterResult }
    | { ok: true; existing: false; id: string; origin: URL; address: string; healthCheck: HealthCheckConfig; result?: undefined } {
    const refuse = (code: ErrorCode, detail: string) => ({ ok: false as const, result: { ok: false as const, code, detail } });
    const p = this.pools.get(r.pool);
    if (!p) return refuse('CROWD_UNKNOWN_POOL', `no pool "${r.pool}"`);
    const verdict = checkTarget(r.ip, this.allowPrivateTargets);
    if (!verdict.ok) return refuse(verdict.status === 400 ? 'CROWD_INVALID_REQUEST' : 'CROWD_TARGET_FORBIDDEN', verdict.reason);
    const host = verdict.family === 6 ? `[${verdict.address}]` : verdict.address;
    const origin = new URL(`${r.scheme}://${host}:${r.port}`);
    const id = serverId(p.name, origin.origin);
    const existing = this.byId.get(id);
    if (existing) {
      if (existing.state === 'draining') return refuse('CROWD_SERVER_CONFLICT', `${origin.origin} is draining; register it again once it has left`);
      return { ok: true, existing: true, id, result: { ok: true, created: false, server: existing.info() } };
    }
    let healthCheck: HealthCheckConfig;
    try {
      healthCheck = healthCheckConfig({ ...checkAsSchema(p.cfg.healthCheck), ...(r.check ?? {}) });
    } catch (e) {
      return refuse('CROWD_INVALID_REQUEST', (e as Error).message);
    }
    return { ok: true, existing: false, id, origin, address: verdict.address, healthCheck };
  }

  /**
   * DELETE /servers/:id: the server drains, then leaves. A registered server is forgotten by
   * the store first (when that fails, nothing changes and the error is thrown).
   */
  async remove(id: string): Promise<ServerInfo | null> {
    // An unreadable store restored no run-time server: what is here needs no store to leave.
    await this.restored;
    const b = this.byId.get(id);
    if (!b) return null;
    if (b.state !== 'draining') {
      if (this.registered.has(id)) {
        await this.store.delete(id);
        this.registered.delete(id);
      }
      if ((b.state as string) === 'draining') return b.info(); // a DELETE that came meanwhile did it
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

  async close(): Promise<void> {
    await Promise.all([...this.byId.values()].map((b) => b.close()));
    await closeHealthChecks();
    await this.restored;
    await this.store.close();
  }
}

/** A health check back in the config's (schema) shape, to merge a registration's overrides. */
function checkAsSchema(h: HealthCheckConfig): Record<string, string | number> {
  return { type: h.type, path: h.path, interval: `${h.intervalMs}ms`, timeout: `${h.timeoutMs}ms`, unhealthyAfter: h.unhealthyAfter, healthyAfter: h.healthyAfter };
}
