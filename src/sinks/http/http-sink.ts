/**
 * HTTP sink: replays each message to a server of its pool as it was received: method, path
 * (optionally rewritten) and query, kept headers, content type and body, plus `Crowd-Id` and
 * `Idempotency-Key` (the message id) and the sink's static `headers`.
 *
 * Outcomes: 2xx delivered. 5xx, 408, 429, connection errors and timeouts: retried after an
 * exponential, jittered backoff per message (or the server's Retry-After on 429/503), on
 * another server when there is one. Other statuses (3xx, other 4xx): dead letters with the
 * status. A message older than `ttl` is dead-lettered instead of sent ("ttl expired").
 *
 * Limits: `concurrency` requests in flight and `rate` requests/s (token bucket) per sink, and
 * with `ordering: key` one message per partition key at a time. When a limit is reached, or no
 * server takes requests, send() returns false and the sink host keeps the message (and the
 * lane's later ones) waiting in the log.
 */
import { TokenBucket } from 'limiter';
import type { Dispatcher } from 'undici';
import type { HttpSinkConfig } from '../../config/types.js';
import type { Logger } from '../../logger.js';
import type { DeliveryOutcome, OutboundMessage, Sink, SinkHealth } from '../sink-types.js';
import type { Backend } from './backend.js';
import type { PoolRuntime } from './pool-registry.js';

/** Request headers never replayed (hop-by-hop, or set by the client library from the body). */
const NOT_REPLAYED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'content-length',
  'expect', 'proxy-authorization', 'proxy-authenticate', 'crowd-id', 'idempotency-key',
]);
/** Longest Retry-After honoured; beyond it the message is tried again after this. */
const MAX_RETRY_AFTER_MS = 3_600_000;
/** Bytes of a refusing answer's body kept in the dead-letter reason. */
const REASON_BODY_BYTES = 200;

interface Attempts {
  count: number;
  last: Backend | undefined;
  lastError: string;
}

export class HttpSink implements Sink {
  private inFlight = 0;
  /** No server took requests at the last try (logged once per episode). */
  private waitingForServer = false;
  private readonly bucket: TokenBucket | null;
  private readonly rewrite: RegExp | null;
  /** Per message (the host sends the same object again on retry): attempts so far. */
  private readonly attempts = new WeakMap<OutboundMessage, Attempts>();
  /** ordering: key: which message id holds each key until it is delivered or dead. */
  private readonly keyHolder = new Map<string, string>();

  constructor(readonly name: string, private readonly cfg: HttpSinkConfig, private readonly pool: PoolRuntime, private readonly log: Logger) {
    this.bucket = cfg.rate ? new TokenBucket({ bucketSize: Math.max(1, cfg.rate / 20), tokensPerInterval: cfg.rate, interval: 'second' }) : null;
    this.rewrite = cfg.rewrite ? new RegExp(cfg.rewrite.match) : null;
  }

  async start(): Promise<void> {}

  send(m: OutboundMessage, done: (o: DeliveryOutcome) => void): boolean {
    const e = m.envelope;
    const now = Date.now();
    const a = this.attempts.get(m);
    const orderKey = this.cfg.ordering === 'key' && e.key !== '' ? e.key : null;
    if (now - e.receivedAtMs > this.cfg.ttlMs) {
      if (orderKey !== null && this.keyHolder.get(orderKey) === e.id) this.keyHolder.delete(orderKey);
      done({ kind: 'dead', reason: `ttl expired (${this.cfg.ttlMs} ms) after ${a?.count ?? 0} attempts${a ? `; last: ${a.lastError}` : ''}` });
      return true;
    }
    if (this.inFlight >= this.cfg.concurrency) return false;
    if (orderKey !== null) {
      const holder = this.keyHolder.get(orderKey);
      if (holder !== undefined && holder !== e.id) return false;
    }
    const server = this.pool.pick(a?.last, now);
    if (server === null) {
      if (!this.waitingForServer) {
        this.waitingForServer = true;
        this.log.warn({ event: 'http_no_server', sink: this.name, pool: this.pool.name, servers: this.pool.servers.length }, 'no server of the pool takes requests; messages wait in the log');
      }
      return false;
    }
    if (this.waitingForServer) {
      this.waitingForServer = false;
      this.log.info({ event: 'http_server_available', sink: this.name, pool: this.pool.name }, 'a server of the pool takes requests again');
    }
    if (this.bucket && !this.bucket.tryRemoveTokens(1)) return false;
    if (orderKey !== null) this.keyHolder.set(orderKey, e.id);
    this.inFlight++;
    server.begin();
    const t0 = performance.now();
    server.client.request(this.requestOf(m)).then(
      (res) => this.answered(m, server, res, t0, done, orderKey),
      (err: Error & { code?: string }) => {
        const why = err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT' ? `timeout after ${this.cfg.timeoutMs} ms` : (err.code ?? err.message);
        this.inFlight--;
        server.failedRequest(performance.now() - t0, why);
        this.retry(m, server, `${server.origin.origin}: ${why}`, undefined, done);
      },
    );
    return true;
  }

  private requestOf(m: OutboundMessage): Dispatcher.RequestOptions {
    const e = m.envelope;
    const headers: Record<string, string> = {};
    for (const h of e.headers) if (!NOT_REPLAYED.has(h.name)) headers[h.name] = h.value;
    if (e.contentType) headers['content-type'] = e.contentType;
    headers['crowd-id'] = e.id;
    headers['idempotency-key'] = e.id;
    for (const [k, v] of Object.entries(this.cfg.headers)) headers[k.toLowerCase()] = v;
    let p = e.path || '/';
    if (this.rewrite) p = p.replace(this.rewrite, this.cfg.rewrite!.replace);
    if (e.query) p += `?${e.query}`;
    return {
      path: p, method: (e.method || 'POST') as Dispatcher.HttpMethod, headers, body: e.body,
      headersTimeout: this.cfg.timeoutMs, bodyTimeout: this.cfg.timeoutMs,
    };
  }

  private async answered(m: OutboundMessage, server: Backend, res: Dispatcher.ResponseData, t0: number, done: (o: DeliveryOutcome) => void, orderKey: string | null): Promise<void> {
    const status = res.statusCode;
    let text = '';
    try {
      if (status >= 200 && status < 300) await res.body.dump();
      else text = (await res.body.text()).slice(0, REASON_BODY_BYTES);
    } catch {
      // The status is what counts; a body cut short changes nothing.
    }
    const latency = performance.now() - t0;
    this.inFlight--;
    const where = server.origin.origin;
    if (status >= 200 && status < 300) {
      server.succeeded(latency, true);
      this.release(orderKey, m);
      done({ kind: 'delivered', detail: `${where} ${status}` });
    } else if (status >= 500 || status === 408) {
      server.failedRequest(latency, `answered ${status}`);
      this.retry(m, server, `${where} answered ${status}`, status === 503 ? retryAfterMs(res.headers['retry-after']) : undefined, done);
    } else if (status === 429) {
      server.succeeded(latency, false);
      const after = retryAfterMs(res.headers['retry-after']);
      if (after !== undefined) server.pausedUntil = Math.max(server.pausedUntil, Date.now() + after);
      this.retry(m, server, `${where} answered 429`, after, done);
    } else {
      server.succeeded(latency, false);
      this.release(orderKey, m);
      done({ kind: 'dead', reason: `http ${status} from ${where}${text ? `: ${text.replace(/\s+/g, ' ').trim()}` : ''}` });
    }
  }

  private retry(m: OutboundMessage, server: Backend, why: string, afterMs: number | undefined, done: (o: DeliveryOutcome) => void): void {
    const a = this.attempts.get(m) ?? { count: 0, last: undefined, lastError: '' };
    a.count++;
    a.last = server;
    a.lastError = why;
    this.attempts.set(m, a);
    const backoff = Math.min(this.cfg.backoffMaxMs, this.cfg.backoffInitialMs * 2 ** Math.min(30, a.count - 1)) * (0.5 + Math.random());
    done({ kind: 'retry', reason: why, afterMs: afterMs ?? backoff });
  }

  private release(orderKey: string | null, m: OutboundMessage): void {
    if (orderKey !== null && this.keyHolder.get(orderKey) === m.envelope.id) this.keyHolder.delete(orderKey);
  }

  health(): SinkHealth {
    const healthy = this.pool.healthyCount();
    const total = this.pool.servers.length;
    return { healthy: healthy > 0, detail: `${healthy}/${total} servers healthy in pool ${this.pool.name}` };
  }

  async close(): Promise<void> {}
}

/** Retry-After as seconds or an HTTP date, in ms from now (bounded); undefined when absent or unreadable. */
export function retryAfterMs(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const ms = /^\s*[0-9]+\s*$/.test(s) ? Number(s) * 1000 : Date.parse(s) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}
