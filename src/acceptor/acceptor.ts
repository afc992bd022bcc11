/**
 * The acceptor: one uWebSockets.js listener per acceptor thread (SO_REUSEPORT spreads
 * connections). For each request it checks framing, route, method, type and size, copies the
 * body into the ring of the lane chosen for it as a ready-to-store protobuf envelope, and
 * answers: at once (ack memory), or once the record is fsynced (ack durable) or delivered by
 * every sink of the route (ack delivered); those waits are ack-waits.ts.
 *
 * Hot-path rules (platform.md): copy onData chunks before returning; attach onAborted before
 * any asynchronous answer; write asynchronous answers inside cork; one wake-up per lane batch,
 * never per request.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { CrowdConfig } from '../config/types.js';
import type { ErrorCode } from '../errors.js';
import { envelopeSizeFast, stringFieldBytes, writeEnvelopeFast } from '../envelope/envelope-writer.js';
import { LaneControl, LaneState } from '../lanes/lane-control.js';
import { RING_CONTROL_BYTES, SpscRing } from '../ring/spsc-ring.js';
import { JSON_BAD_UTF8, JSON_OK, jsonCheck } from '../native/json-check.js';
import { IdGenerator } from './message-ids.js';
import { RouteTable, resolvePointer, type Route } from './route-table.js';
import { sendError, sendInternalError, sendReceiptNow, sendRefusal } from './replies.js';
import { AckWaits, type AckWaiter } from './ack-waits.js';
import { AcceptorStats, type AcceptorSnapshot } from './acceptor-stats.js';
import { Admission } from './admission.js';
import type { SharedRouteState } from './shared-limits.js';
import { loadUws } from './uws.js';

export interface AcceptorInit {
  index: number;
  config: CrowdConfig;
  /**
   * The ingest port to bind, the same for every acceptor: the configured one, or with
   * `listen.port: 0` and several acceptors a free port the supervisor picked (supervisor.ts).
   */
  port: number;
  /** One ring per lane (this acceptor is the only producer). */
  rings: SharedArrayBuffer[];
  laneControls: SharedArrayBuffer[];
  /** Delivered offsets, f64 per (sink, lane), written by the sink host; null without sinks. */
  sinkWatermarks: SharedArrayBuffer | null;
  /** Route rate limits and HMAC replay windows, shared by every acceptor (shared-limits.ts). */
  routeState: SharedRouteState;
}

/** Ring record = flags byte + envelope. */
export const RECORD_FSYNC = 1;

/** One request from its headers to its answer (the fields of a waiter: ack-waits.ts). */
interface RequestCtx extends AckWaiter {
  lane: number;
  key: string;
  kept: string[];
  media: string;
  method: string;
  url: string;
  query: string;
  /** Set once the body is complete or refused: later chunks are ignored. */
  done: boolean;
  /** The route's HMAC signature header, when it has one. */
  signature: string;
  /** Content-Length (-1 when chunked), and the body so far when it comes in several chunks. */
  cl: number;
  acc: Buffer | null;
  got: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isJsonType(media: string): boolean {
  return media === 'application/json' || media.endsWith('+json');
}

/** FNV-1a: which lane a partition key goes to (order per key is kept within a lane). */
function hashKey(k: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < k.length; i++) h = Math.imul(h ^ k.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Acceptor {
  private readonly uws = loadUws();
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | null = null;
  private readonly routes: RouteTable;
  private readonly rings: SpscRing[];
  private readonly ringBufs: Buffer[];
  private readonly lanes: LaneControl[];
  /** Durable and `ack: delivered` requests waiting for their answer. */
  private readonly waits: AckWaits;
  private readonly ids = new IdGenerator();
  private readonly stats = new AcceptorStats();
  private readonly retryAfter: number;
  private readonly admission: Admission;
  private readonly maxLogBytes: number;
  private readonly maxHeaderCount: number;
  private rr = 0;
  private draining = false;
  private sweepTimer: NodeJS.Timeout;

  constructor(private readonly init: AcceptorInit) {
    const c = init.config;
    this.routes = new RouteTable(c, init.routeState);
    this.rings = init.rings.map((s) => new SpscRing(s));
    this.ringBufs = init.rings.map((s) => Buffer.from(s, RING_CONTROL_BYTES, s.byteLength - RING_CONTROL_BYTES));
    this.lanes = init.laneControls.map((s) => new LaneControl(s));
    this.retryAfter = c.ingest.retryAfterSeconds;
    this.admission = new Admission(this.lanes, {
      maxQueueDelayMs: c.ingest.maxQueueDelayMs, maxPending: c.ingest.maxPending,
      minRetryAfterSeconds: c.ingest.retryAfterSeconds, maxRetryAfterSeconds: c.ingest.maxRetryAfterSeconds,
    });
    this.waits = new AckWaits({
      rings: this.rings, lanes: this.lanes, stats: this.stats, admission: this.admission,
      watermarks: init.sinkWatermarks ? new Float64Array(init.sinkWatermarks) : null,
      retryAfterSeconds: this.retryAfter, ackTimeoutMs: c.ingest.ackTimeoutMs, poll: c.ingest.ackWait === 'poll',
    });
    this.maxLogBytes = c.log.maxLogBytes;
    this.maxHeaderCount = c.ingest.maxHeaderCount;
    this.app = this.uws.App();
    this.app.any('/*', (res, req) => {
      try {
        this.onRequest(res, req);
      } catch (e) {
        this.internalError(res, e);
      }
    });
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(250, Math.max(10, c.ingest.ackTimeoutMs / 4)));
  }

  listen(): Promise<number> {
    const { host } = this.init.config.listen;
    const port = this.init.port;
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (s) => {
        if (!s) return reject(new Error(`cannot listen on ${host}:${port}`));
        this.listenSocket = s;
        resolve(this.uws.us_socket_local_port(s));
      });
    });
  }

  /**
   * fd reserve (src/fd-reserve.ts): stop or start taking new connections; open ones are served.
   * Listens again on the port it has (`port`), never while draining.
   */
  setAccepting(accept: boolean, port: number): void {
    this.accepting = accept;
    if (!accept && this.listenSocket) {
      this.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    } else if (accept && !this.listenSocket && !this.draining) {
      this.app.listen(this.init.config.listen.host, port, (s) => {
        if (s && (this.draining || !this.accepting)) this.uws.us_listen_socket_close(s);
        else if (s) this.listenSocket = s;
        // The bind can fail while fds are still short: try again until it works.
        else setTimeout(() => this.accepting && this.setAccepting(true, port), 100).unref();
      });
    }
  }
  private accepting = true;

  /** A lane says its watermark moved (or its state changed). */
  onLaneWake(lane: number): void {
    this.waits.onLaneWake(lane);
  }

  /** The sink host says delivered offsets moved. */
  onSinkWake(): void {
    this.waits.onSinkWake();
  }

  snapshot(): AcceptorSnapshot {
    return this.stats.snapshot(this.waits.total());
  }

  /** Stop taking connections; answer what is pending; resolve when nothing waits. */
  drain(): Promise<void> {
    this.draining = true;
    if (this.listenSocket) {
      this.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
    return new Promise((resolve) => this.waits.whenEmpty(resolve));
  }

  close(): void {
    clearInterval(this.sweepTimer);
    if (this.listenSocket) this.uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    (this.app as TemplatedApp & { close(): void }).close();
  }

  /** A bug must cost one request, never the process (uWS aborts on an unanswered request). */
  private internalError(res: HttpResponse, e: unknown): void {
    this.stats.rejected(null, 'CROWD_INTERNAL');
    if (this.internalErrors++ < 10) console.error('crowd acceptor: internal error', e);
    sendInternalError(res);
  }

  private internalErrors = 0;

  /** The sweep tick: admission limits recomputed, waits past ackTimeout answered 503. */
  private sweep(): void {
    this.admission.tick((lane) => this.waits.backlog(lane));
    this.waits.expire();
  }

  /** Counts a refusal and answers it (with a body left unread: next turn, closing; replies.ts). */
  private reject(res: HttpResponse, code: ErrorCode, route: Route | null, head: boolean, hasBody: boolean, allow?: string, retryAfterSeconds = this.retryAfter): void {
    this.stats.rejected(route, code);
    sendRefusal(res, code, hasBody, { head, allow, retryAfterSeconds });
  }

  /**
   * Back-pressure refusals (429/503) of well-framed requests: the body is read and dropped,
   * then the refusal goes out with the connection kept, so a client that honours Retry-After
   * does not pay for a new connection. Answering only after the last chunk is what makes
   * keeping the connection safe (the bytes after it are a new request, as after any 200).
   */
  private refuseAfterBody(res: HttpResponse, code: ErrorCode, route: Route, head: boolean, hasBody: boolean, retryAfterSeconds: number): void {
    if (!hasBody) return this.reject(res, code, route, head, false, undefined, retryAfterSeconds);
    this.stats.rejected(route, code);
    let aborted = false;
    res.onAborted(() => (aborted = true));
    res.onData((_chunk, isLast) => {
      if (isLast && !aborted) sendError(res, code, { head, retryAfterSeconds });
    });
  }

  private lastContentType = '';
  private lastMedia = '';

  /** "Application/JSON; charset=utf-8" -> "application/json" (clients repeat the same one). */
  private mediaType(contentType: string): string {
    if (contentType === this.lastContentType) return this.lastMedia;
    const semi = contentType.indexOf(';');
    const media = (semi >= 0 ? contentType.slice(0, semi) : contentType).trim().toLowerCase();
    this.lastContentType = contentType;
    this.lastMedia = media;
    return media;
  }

  private readonly ctFields = new Map<string, Buffer>();

  /** Field 6 (content type) bytes, cached for the few types a deployment sees. */
  private contentTypeField(media: string): Buffer {
    let b = this.ctFields.get(media);
    if (!b) {
      b = stringFieldBytes(6, media);
      if (this.ctFields.size < 256) this.ctFields.set(media, b);
    }
    return b;
  }

  private logFull(): boolean {
    let bytes = 0;
    for (const l of this.lanes) bytes += l.logBytes();
    return bytes >= this.maxLogBytes;
  }

  private onRequest(res: HttpResponse, req: HttpRequest): void {
    const t0 = performance.now();
    const method = req.getMethod();
    const head = method === 'head';
    const url = req.getUrl();

    // Framing: uWS of this build takes the first of two Content-Length headers and accepts any
    // Transfer-Encoding; crowd refuses both (request smuggling), and counts headers.
    let clCount = 0;
    let cl = -1;
    let te: string | null = null;
    let teCount = 0;
    let headers = 0;
    let hosts = 0;
    let contentType = '';
    req.forEach((k, v) => {
      headers++;
      if (k === 'content-length') {
        clCount++;
        cl = /^[0-9]{1,15}$/.test(v) ? Number(v) : -2;
      } else if (k === 'transfer-encoding') {
        teCount++;
        te = v;
      } else if (k === 'content-type') {
        contentType = v;
      } else if (k === 'host') {
        hosts++;
      }
    });
    // Exactly one Host (RFC 9112 3.2: a request with several gets 400).
    if (clCount > 1 || teCount > 1 || cl === -2 || (te !== null && (te !== 'chunked' || clCount > 0)) || headers > this.maxHeaderCount || hosts > 1) {
      return this.reject(res, 'CROWD_BAD_FRAMING', null, head, true);
    }
    const hasBody = cl > 0 || te !== null;

    const route = this.routes.lookup(url);
    if (!route) return this.reject(res, 'CROWD_NOT_FOUND', null, head, hasBody);
    if (!route.methods.has(method)) return this.reject(res, 'CROWD_METHOD_NOT_ALLOWED', route, head, hasBody, route.allow);
    const media = this.mediaType(contentType);
    if (!route.acceptsAnyType && !route.contentTypes.has(media)) {
      return this.reject(res, 'CROWD_UNSUPPORTED_MEDIA_TYPE', route, head, hasBody);
    }
    if (route.bearer) {
      const denied = route.bearer.check(req.getHeader('authorization'));
      if (denied) return this.reject(res, denied, route, head, hasBody);
    }
    const signature = route.hmac ? req.getHeader(route.hmac.header) : '';
    const maxBody = route.cfg.maxBodyBytes;
    if (cl > maxBody) return this.reject(res, 'CROWD_BODY_TOO_LARGE', route, head, true);
    if (this.draining) return this.reject(res, 'CROWD_DRAINING', route, head, true);

    const laneCount = this.rings.length;
    let key = '';
    if (route.key.kind === 'header') key = req.getHeader(route.key.name);
    let lane = 0;
    if (laneCount > 1) lane = key !== '' ? hashKey(key) % laneCount : this.rr++ % laneCount;
    const laneState = this.lanes[lane].state();
    if (laneState !== LaneState.Ready) {
      return this.refuseAfterBody(res, laneState === LaneState.Unwritable ? 'CROWD_LOG_UNAVAILABLE' : 'CROWD_NOT_READY', route, head, hasBody, this.retryAfter);
    }
    if (route.rateLimit && !route.rateLimit.tryTake()) {
      return this.refuseAfterBody(res, 'CROWD_RATE_LIMITED', route, head, hasBody, this.admission.clamp(route.rateLimit.retryAfterSeconds()));
    }
    if (route.needsFsync) {
      const backlog = this.waits.backlog(lane);
      if (backlog >= this.admission.limit[lane]) {
        return this.refuseAfterBody(res, 'CROWD_OVERLOADED', route, head, hasBody, this.admission.queueRetryAfter(lane, backlog));
      }
    }
    if (this.logFull()) return this.refuseAfterBody(res, 'CROWD_LOG_FULL', route, head, hasBody, this.admission.logRetryAfter());

    const kept: string[] = [];
    for (const name of route.keepHeaders) {
      const v = req.getHeader(name);
      if (v !== '') kept.push(name, v);
    }
    const ctx: RequestCtx = {
      res, route, lane, key, kept, media, method, url, query: req.getQuery() ?? '', t0,
      aborted: false, done: false, id: '', pos: 0, logEnd: 0, cl, acc: null, got: 0, signature,
    };
    res.onAborted(() => {
      ctx.aborted = true;
    });

    res.onData((chunk, isLast) => {
      if (ctx.done || ctx.aborted) return;
      try {
        this.onBodyChunk(ctx, chunk, isLast);
      } catch (e) {
        ctx.done = true;
        this.internalError(res, e);
      }
    });
  }

  private onBodyChunk(ctx: RequestCtx, chunk: ArrayBuffer, isLast: boolean): void {
    const { res, route } = ctx;
    const maxBody = route.cfg.maxBodyBytes;
    const n = chunk.byteLength;
    if (ctx.got + n > maxBody) {
      ctx.done = true;
      return this.reject(res, 'CROWD_BODY_TOO_LARGE', route, false, true);
    }
    if (isLast && ctx.acc === null) {
      // The common case: the whole body in one chunk, used before the callback returns.
      ctx.done = true;
      return this.complete(ctx, new Uint8Array(chunk));
    }
    // Several chunks (or a chunked upload): copy them, since uWS reuses chunk memory.
    let acc = ctx.acc ?? Buffer.allocUnsafe(ctx.cl > 0 ? ctx.cl : Math.min(maxBody, 65536));
    if (ctx.got + n > acc.length) {
      const bigger = Buffer.allocUnsafe(Math.min(maxBody, Math.max(acc.length * 2, ctx.got + n)));
      acc.copy(bigger, 0, 0, ctx.got);
      acc = bigger;
    }
    acc.set(new Uint8Array(chunk), ctx.got);
    ctx.acc = acc;
    ctx.got += n;
    if (isLast) {
      ctx.done = true;
      this.complete(ctx, acc.subarray(0, ctx.got));
    }
  }

  private complete(ctx: RequestCtx, body: Uint8Array): void {
    const { res, route } = ctx;
    if (route.hmac) {
      const denied = route.hmac.check(ctx.signature, body, Date.now());
      if (denied) return this.reject(res, denied, route, false, false);
    }
    if (route.key.kind !== 'json' && isJsonType(ctx.media)) {
      // Validate only (the common case): the native check builds no value (json-check.ts).
      const verdict = jsonCheck(body);
      if (verdict !== JSON_OK) return this.reject(res, verdict === JSON_BAD_UTF8 ? 'CROWD_BAD_UTF8' : 'CROWD_BAD_JSON', route, false, false);
    } else if (route.key.kind === 'json') {
      // The partition key is inside the body: parse it.
      let doc: unknown;
      try {
        doc = JSON.parse(utf8.decode(body));
      } catch (e) {
        return this.reject(res, e instanceof TypeError ? 'CROWD_BAD_UTF8' : 'CROWD_BAD_JSON', route, false, false);
      }
      const v = resolvePointer(doc, route.key.pointer);
      if (typeof v === 'string') ctx.key = v;
      else if (typeof v === 'number' || typeof v === 'boolean') ctx.key = String(v);
      else if (v !== undefined && v !== null) return this.reject(res, 'CROWD_BAD_KEY', route, false, false);
      if (this.rings.length > 1 && ctx.key !== '') ctx.lane = hashKey(ctx.key) % this.rings.length;
    }
    const now = Date.now();
    const id = this.ids.next(now);
    const rf = ctx.method === 'post' && route.postFields ? route.postFields : route.fields.get(ctx.method)!;
    const ct = this.contentTypeField(ctx.media);
    const size = envelopeSizeFast(id, rf, now, ctx.key, ctx.kept, ct, body, ctx.query);
    const lane = ctx.lane;
    const ring = this.rings[lane];
    const at = ring.reserve(size + 1);
    if (at < 0) return this.reject(res, 'CROWD_RING_FULL', route, false, false);
    const buf = this.ringBufs[lane];
    buf[at] = route.needsFsync ? RECORD_FSYNC : 0;
    writeEnvelopeFast(buf, at + 1, id, rf, now, ctx.key, ctx.kept, ct, body, ctx.query);
    const pos = ring.publishLater();
    this.wakeLaneSoon(lane);
    if (!route.needsFsync) {
      sendReceiptNow(res, id);
      this.stats.answered(route, 200, 'memory', (performance.now() - ctx.t0) / 1000);
      return;
    }
    ctx.id = id;
    ctx.pos = pos;
    this.waits.add(ctx, lane);
  }

  /** Lanes with records published this event-loop turn, to be handed over at its end. */
  private readonly toWake: boolean[] = [];
  private wakeScheduled = false;

  /**
   * The records of one event-loop turn are handed to a lane together at the turn's end: HEAD
   * is published (flush) and the lane rung (a futex wake when it sleeps) once, after every
   * request uWS read in that turn is in the ring, not once per request. The lane's batch then
   * holds the whole turn's records instead of the first few (a small group commit, the rest
   * waiting for the next fsync), and the acceptor makes one futex call per turn instead of up
   * to one per request (0.58 per request under strace before). setImmediate runs right after
   * the poll phase in which uWS handled the requests.
   */
  private wakeLaneSoon(lane: number): void {
    this.toWake[lane] = true;
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(this.wakeLanes);
  }

  private readonly wakeLanes = (): void => {
    this.wakeScheduled = false;
    for (let lane = 0; lane < this.toWake.length; lane++) {
      if (!this.toWake[lane]) continue;
      this.toWake[lane] = false;
      this.rings[lane].flush();
      this.lanes[lane].ring();
    }
  };
}
