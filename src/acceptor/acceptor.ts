/**
 * The acceptor: one uWebSockets.js listener per acceptor thread (SO_REUSEPORT spreads
 * connections). Each request goes through small stages, each its own module:
 *
 *   1. head      request-head.ts   framing and header read (one pass), content headers as sent
 *   2. route     route-gate.ts     route, method, media type, credentials, declared size, draining
 *   3. body      body-collector.ts chunks into one body, maxBodyBytes for chunked bodies
 *   4. check     body-check.ts     HMAC, JSON validity, a `json:/pointer` key out of the body
 *   5. lane      lane-gate.ts      lane choice, then that lane's checks: state, rate limit,
 *                                  backlog, log quota (at the head when the lane is known
 *                                  there, after stage 4 for a key in the body)
 *   6. ring      ring-writer.ts    the record into the lane's ring, handed over at turn's end
 *   7. answer    replies.ts, ack-waits.ts: at once (ack memory), once fsynced (durable), or
 *                                  once delivered by every sink of the route (delivered)
 *
 * This file only wires the stages to uWS and to each other.
 *
 * Hot-path rules (platform.md): copy onData chunks before returning; attach onAborted before
 * any asynchronous answer; write asynchronous answers inside cork; one wake-up per lane batch,
 * never per request.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { CrowdConfig } from '../config/types.js';
import type { ErrorCode } from '../errors.js';
import { LaneControl } from '../lanes/lane-control.js';
import { SpscRing } from '../ring/spsc-ring.js';
import { IdGenerator } from './message-ids.js';
import { RouteTable, type Route } from './route-table.js';
import { sendError, sendInternalError, sendReceiptNow, sendRefusal, sendRefusalLingering } from './replies.js';
import { mediaType, readHead, type RequestHead } from './request-head.js';
import { keptHeaders, routeRefusal } from './route-gate.js';
import { collectChunk, MORE, TOO_LARGE, type BodyState } from './body-collector.js';
import { bodyRefusal } from './body-check.js';
import { LaneGate } from './lane-gate.js';
import { RingWriter, type RecordSource } from './ring-writer.js';
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

export { RECORD_FSYNC } from './ring-writer.js';

/** One request from its head to its answer (the fields of a waiter, ack-waits.ts, and of a record, ring-writer.ts). */
interface RequestCtx extends AckWaiter, RecordSource, BodyState {
  /** Lower-case, as uWS reports it. */
  method: string;
  media: string;
  /** Set once the body is complete or refused: later chunks are ignored. */
  done: boolean;
  /** The route's HMAC signature header, when it has one. */
  signature: string;
  /** The lane is known before the body (no key, or a header key) and passed its checks there. */
  laneChecked: boolean;
}

export class Acceptor {
  private readonly uws = loadUws();
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | null = null;
  private readonly routes: RouteTable;
  private readonly rings: SpscRing[];
  private readonly lanes: LaneControl[];
  /** Durable and `ack: delivered` requests waiting for their answer. */
  private readonly waits: AckWaits;
  private readonly ids = new IdGenerator();
  private readonly stats = new AcceptorStats();
  private readonly retryAfter: number;
  private readonly admission: Admission;
  private readonly laneGate: LaneGate;
  private readonly ringWriter: RingWriter;
  private readonly maxHeaderCount: number;
  private draining = false;
  private sweepTimer: NodeJS.Timeout;

  constructor(private readonly init: AcceptorInit) {
    const c = init.config;
    this.routes = new RouteTable(c, init.routeState);
    this.rings = init.rings.map((s) => new SpscRing(s));
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
    this.laneGate = new LaneGate(this.lanes, this.waits, this.admission, c.log.maxLogBytes, this.retryAfter);
    this.ringWriter = new RingWriter(this.rings, this.lanes);
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

  /**
   * A refusal decided from the head (stages 1 and 2), counted and answered. With a body still
   * to come: when the framing is trusted, after a lingering read of the body (replies.ts);
   * when it is not, next turn and closing, the rest unread.
   */
  private rejectHead(res: HttpResponse, code: ErrorCode, route: Route | null, head: RequestHead | boolean, allow?: string): void {
    this.stats.rejected(route, code);
    if (typeof head === 'boolean') return sendRefusal(res, code, true, { head });
    const isHead = head.isHead; // the head is rewritten by the next request: read it now
    if (head.hasBody) return sendRefusalLingering(res, code, head.cl, head.expectContinue, { head: isHead, allow });
    sendRefusal(res, code, false, { head: isHead, allow });
  }

  /**
   * Back-pressure refusals (429/503) of well-framed requests known at the head: the body is
   * read and dropped, then the refusal goes out with the connection kept, so a client that
   * honours Retry-After does not pay for a new connection. Answering only after the last chunk
   * is what makes keeping the connection safe (the bytes after it are a new request, as after
   * any 200).
   */
  private refuseAfterBody(res: HttpResponse, code: ErrorCode, route: Route, head: RequestHead, retryAfterSeconds: number): void {
    this.stats.rejected(route, code);
    const isHead = head.isHead; // the head is rewritten by the next request: read it now
    if (!head.hasBody) return sendRefusal(res, code, false, { head: isHead, retryAfterSeconds });
    const chunked = head.chunked;
    let done = false;
    let dropped = 0;
    res.onAborted(() => (done = true));
    res.onData((chunk, isLast) => {
      if (done) return;
      dropped += chunk.byteLength;
      // A chunked body is bounded by the route's limit here too: past it, answer and close.
      const over = dropped > route.cfg.maxBodyBytes;
      if (!isLast && !over) return;
      done = true;
      sendError(res, code, { head: isHead, retryAfterSeconds, close: chunked || over });
    });
  }

  /** A refusal decided on the complete body (stages 3 to 6): answered at once, connection kept. */
  private rejectBody(ctx: RequestCtx, code: ErrorCode, retryAfterSeconds?: number): void {
    this.stats.rejected(ctx.route, code);
    sendError(ctx.res, code, { retryAfterSeconds: retryAfterSeconds ?? this.retryAfter, close: ctx.closeAfter });
  }

  private onRequest(res: HttpResponse, req: HttpRequest): void {
    const t0 = performance.now();
    // Stage 1: head.
    const head = readHead(req, this.maxHeaderCount);
    if (head === null) return this.rejectHead(res, 'CROWD_BAD_FRAMING', null, req.getMethod() === 'head');
    // Stage 2: route.
    const route = this.routes.lookup(head.url);
    if (!route) return this.rejectHead(res, 'CROWD_NOT_FOUND', null, head);
    const media = mediaType(head.contentType);
    const refused = routeRefusal(route, head, media, req, this.draining);
    if (refused !== null) return this.rejectHead(res, refused, route, head, refused === 'CROWD_METHOD_NOT_ALLOWED' ? route.allow : undefined);

    const ctx: RequestCtx = {
      res, route, method: head.method, media, t0,
      key: route.key.kind === 'header' ? req.getHeader(route.key.name) : '',
      kept: keptHeaders(route, req),
      contentType: head.contentType, contentEncoding: head.contentEncoding,
      query: req.getQuery() ?? '',
      signature: route.hmac ? req.getHeader(route.hmac.header) : '',
      cl: head.cl, maxBody: route.cfg.maxBodyBytes, acc: null, got: 0,
      lane: 0, at: -1, turn: 0, laneChecked: false,
      aborted: false, done: false, id: '', pos: 0, logEnd: 0, closeAfter: head.chunked,
    };
    // Stage 5 at the head when the lane is known here (no key, or a header key).
    if (route.key.kind !== 'json') {
      ctx.lane = this.laneGate.choose(ctx.key);
      const no = this.laneGate.refusal(route, ctx.lane);
      if (no !== null) return this.refuseAfterBody(res, no, route, head, this.laneGate.retryAfterSeconds);
      ctx.laneChecked = true;
    }
    res.onAborted(() => {
      ctx.aborted = true;
      // Closed before its answer: a record not yet handed to the lane is not stored (ring-writer.ts).
      this.ringWriter.cancel(ctx);
    });
    // Stage 3: body.
    res.onData((chunk, isLast) => {
      if (ctx.done || ctx.aborted) return;
      try {
        const body = collectChunk(ctx, chunk, isLast);
        if (body === MORE) return;
        ctx.done = true;
        if (body === TOO_LARGE) {
          this.stats.rejected(route, 'CROWD_BODY_TOO_LARGE');
          return sendRefusalLingering(res, 'CROWD_BODY_TOO_LARGE', -1, false);
        }
        this.complete(ctx, body);
      } catch (e) {
        ctx.done = true;
        this.internalError(res, e);
      }
    });
  }

  /** Stages 4 to 7 on the complete body (used before the uWS callback returns). */
  private complete(ctx: RequestCtx, body: Uint8Array): void {
    const { res, route } = ctx;
    // Stage 4: check.
    const bad = bodyRefusal(route, ctx.media, ctx.signature, body, ctx);
    if (bad !== null) return this.rejectBody(ctx, bad);
    // Stage 5 for a key in the body: the lane that takes the record is the one checked.
    if (!ctx.laneChecked) {
      ctx.lane = this.laneGate.choose(ctx.key);
      const no = this.laneGate.refusal(route, ctx.lane);
      if (no !== null) return this.rejectBody(ctx, no, this.laneGate.retryAfterSeconds);
    }
    // Stage 6: ring.
    const now = Date.now();
    const id = this.ids.next(now);
    const rf = ctx.method === 'post' && route.postFields ? route.postFields : route.fields.get(ctx.method)!;
    const pos = this.ringWriter.write(ctx, ctx.lane, id, rf, now, body, route.needsFsync);
    if (pos < 0) return this.rejectBody(ctx, 'CROWD_RING_FULL');
    // Stage 7: answer.
    if (!route.needsFsync) {
      ctx.at = -1; // answered: never cancelled
      sendReceiptNow(res, id, ctx.closeAfter);
      this.stats.answered(route, 200, 'memory', (performance.now() - ctx.t0) / 1000);
      return;
    }
    ctx.id = id;
    ctx.pos = pos;
    this.waits.add(ctx, ctx.lane);
  }
}
