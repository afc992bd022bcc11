/**
 * One server of a pool: its keep-alive connections (an undici Pool), its state, its counters
 * and its latency average, and its active health checks.
 *
 * States: a server starts `unhealthy` and is checked at once; its first passing check makes it
 * `healthy` (so a server that registers gets traffic within one check interval). After that it
 * goes down after `unhealthyAfter` failed checks in a row, or after the pool's `ejectAfter`
 * failed requests in a row (passive ejection), and comes back after `healthyAfter` passing
 * checks in a row. `draining` (DELETE /servers/:id): no new requests; once the ones in flight
 * have finished it leaves the pool.
 */
import { createHash } from 'node:crypto';
import { Pool } from 'undici';
import type { HealthCheckConfig, PoolConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import { runHealthCheck } from './health-check.js';

export type ServerState = 'healthy' | 'unhealthy' | 'draining';

/** Weight of a new sample in the latency average. */
const EWMA_ALPHA = 0.2;
/** Latency counted for a failed request (so a server that fails fast does not look fast). */
const FAILURE_PENALTY_MS = 1000;
/**
 * Without new samples the latency estimate decays (e^(-idle/tau)): a server that looked slow
 * once and then got no traffic is tried again, instead of being starved forever by its old
 * average.
 */
const IDLE_DECAY_TAU_MS = 5000;

export interface ServerInfo {
  id: string;
  pool: string;
  ip: string;
  port: number;
  url: string;
  state: ServerState;
  source: 'config' | 'api';
  inFlight: number;
  success: number;
  failed: number;
  latencyMs: number;
  lastError: string;
}

/** Stable id of an address in a pool: the same registration gets the same id, across restarts. */
export function serverId(pool: string, origin: string): string {
  return `s-${createHash('sha256').update(`${pool}\n${origin}`).digest('hex').slice(0, 12)}`;
}

export class Backend {
  readonly id: string;
  readonly client: Pool;
  state: ServerState = 'unhealthy';
  inFlight = 0;
  success = 0;
  failed = 0;
  /** Latency average (ms); 0 until the first sample. */
  ewmaMs = 0;
  lastError = 'not checked yet';
  /** A 429 with Retry-After: no new requests before this time (ms since epoch). */
  pausedUntil = 0;
  private everHealthy = false;
  private checkPasses = 0;
  private checkFailures = 0;
  private requestFailures = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastSampleAt = Date.now();
  private checking = false;
  private onDrained: (() => void) | null = null;

  constructor(
    readonly pool: string,
    readonly origin: URL,
    readonly source: 'config' | 'api',
    readonly check: HealthCheckConfig,
    private readonly poolCfg: PoolConfig,
    private readonly log: Logger,
    /** The pool's latency average: where a new or recovered server starts, so it neither floods nor starves. */
    private readonly poolLatency: () => number,
  ) {
    this.id = serverId(pool, origin.origin);
    this.ewmaMs = poolLatency();
    this.client = new Pool(origin.origin, { connections: poolCfg.connections, pipelining: poolCfg.pipelining, keepAliveTimeout: 10_000 });
  }

  get ip(): string {
    return this.origin.hostname.replace(/^\[|\]$/g, '');
  }

  get port(): number {
    return Number(this.origin.port || (this.origin.protocol === 'https:' ? 443 : 80));
  }

  /** Checks now, then every interval. */
  startChecks(): void {
    void this.checkOnce();
    this.timer = setInterval(() => void this.checkOnce(), this.check.intervalMs);
    this.timer.unref();
  }

  private async checkOnce(): Promise<void> {
    if (this.checking || this.state === 'draining') return;
    this.checking = true;
    const failure = await runHealthCheck(this.origin, this.check);
    this.checking = false;
    if ((this.state as ServerState) === 'draining' || this.timer === null) return;
    if (failure === null) {
      this.checkFailures = 0;
      this.checkPasses++;
      if (this.state === 'unhealthy' && (!this.everHealthy || this.checkPasses >= this.check.healthyAfter)) this.setState('healthy', 'health check passed');
    } else {
      this.checkPasses = 0;
      this.checkFailures++;
      this.lastError = failure;
      if (this.state === 'healthy' && this.checkFailures >= this.check.unhealthyAfter) this.setState('unhealthy', failure);
    }
  }

  private setState(s: ServerState, why: string): void {
    if (this.state === s) return;
    const from = this.state;
    // Back up: its failures' penalty says nothing about how fast it is now; start from the
    // average of the others (taken before this one counts as healthy).
    const restart = s === 'healthy' ? this.poolLatency() : 0;
    this.state = s;
    if (s === 'healthy') {
      this.everHealthy = true;
      this.requestFailures = 0;
      this.ewmaMs = restart;
      this.lastSampleAt = Date.now();
    } else {
      this.checkPasses = 0;
    }
    this.log.info({ event: 'server_state', pool: this.pool, server: this.id, url: this.origin.origin, from, to: s, why }, `server ${s}`);
  }

  /** A request is about to be sent to this server. */
  begin(): void {
    this.inFlight++;
  }

  /** The request answered 2xx (or a status that says nothing about the server's health). */
  succeeded(latencyMs: number, ok: boolean): void {
    this.inFlight--;
    if (ok) this.success++;
    else this.failed++;
    this.requestFailures = 0;
    this.sample(latencyMs);
    this.drainedCheck();
  }

  /** Connection error, timeout, 5xx, 408: counts towards passive ejection. */
  failedRequest(latencyMs: number, why: string): void {
    this.inFlight--;
    this.failed++;
    this.lastError = why;
    this.sample(Math.max(latencyMs, FAILURE_PENALTY_MS));
    if (this.state === 'healthy' && ++this.requestFailures >= this.poolCfg.ejectAfter) {
      this.setState('unhealthy', `ejected after ${this.requestFailures} failed requests in a row: ${why}`);
    }
    this.drainedCheck();
  }

  private sample(ms: number): void {
    this.ewmaMs = this.ewmaMs === 0 ? ms : this.ewmaMs + EWMA_ALPHA * (ms - this.ewmaMs);
    this.lastSampleAt = Date.now();
  }

  /** The latency average, decayed by the time since the last sample (what balancing uses). */
  latencyEstimate(now: number): number {
    const idle = now - this.lastSampleAt;
    return idle <= 0 ? this.ewmaMs : this.ewmaMs * Math.exp(-idle / IDLE_DECAY_TAU_MS);
  }

  /** Takes new requests now. */
  available(now: number): boolean {
    return this.state === 'healthy' && this.pausedUntil <= now;
  }

  /** Stops new requests; `left` runs once nothing is in flight any more. */
  drain(left: () => void): void {
    this.setState('draining', 'removed on the admin API');
    this.stopChecks();
    this.onDrained = left;
    this.drainedCheck();
  }

  private drainedCheck(): void {
    if (this.state === 'draining' && this.inFlight === 0 && this.onDrained) {
      const f = this.onDrained;
      this.onDrained = null;
      f();
    }
  }

  stopChecks(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async close(): Promise<void> {
    this.stopChecks();
    await this.client.close().catch(() => {});
  }

  info(): ServerInfo {
    return {
      id: this.id, pool: this.pool, ip: this.ip, port: this.port, url: this.origin.origin, state: this.state, source: this.source,
      inFlight: this.inFlight, success: this.success, failed: this.failed, latencyMs: Math.round(this.ewmaMs * 100) / 100,
      lastError: this.state === 'healthy' ? '' : this.lastError,
    };
  }
}
