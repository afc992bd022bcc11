/**
 * The admin API, on its own listener (127.0.0.1:2105 by default), never on the ingest port:
 * GET /healthz, /readyz, /stats, /stats/detail, /metrics; POST/GET /servers and
 * DELETE /servers/:id (src/admin/servers-api.ts). When `admin.token` is set every admin
 * request needs `Authorization: Bearer <token>` (compared in constant time); the config
 * refuses a non-loopback admin.host without a token.
 *
 * Served by Node's own `http` module, not uWS: the admin API is not on the hot path, and the
 * uWS build crowd uses never answers HTTP/1.0, which load balancers' health checks (HAProxy's
 * `option httpchk`, nginx's default `proxy_pass`) and tools like `ab` still send. Node's
 * parser speaks HTTP/1.0 and 1.1, keep-alive and chunked bodies; what it cannot parse gets
 * 400 CROWD_BAD_FRAMING and a close. Refusals decided from the headers: see refuse(). A body
 * past MAX_ADMIN_BODY without a declared length is read and dropped, then answered 413, as
 * before.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Registry } from 'prom-client';
import { BearerCheck } from '../acceptor/ingest-auth.js';
import type { CrowdConfig } from '../config/types.js';
import { ERRORS, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { PoolRegistry } from '../upstream/pool-registry.js';
import { errorAnswer, json, listServers, registerServer, removeServer, serverDetail, type AdminAnswer } from './servers-api.js';
import type { StatsSource } from './stats-source.js';

/** Largest admin request body (a server registration is a few hundred bytes). */
const MAX_ADMIN_BODY = 65536;

export interface StatsDocument {
  client: { success: number; failed: number };
  server: { success: number; failed: number };
  routes: Record<string, { topic: string; byStatus: Record<string, number> }>;
  refusals: Record<string, number>;
  pending: number;
  log: { bytes: number; records: number; lanes: unknown[] };
  sinks: Record<string, unknown>;
}

export async function statsDocument(src: StatsSource): Promise<StatsDocument> {
  const [a, sinks] = await Promise.all([src.acceptorTotals(), src.sinkStats()]);
  const lanes = src.lanes();
  return {
    client: { success: a.success, failed: a.failed },
    server: src.serverTotals(),
    routes: a.routes,
    refusals: a.byCode,
    pending: a.pending,
    log: {
      bytes: lanes.reduce((n, l) => n + l.bytes, 0),
      records: lanes.reduce((n, l) => n + l.records, 0),
      lanes: lanes.map(({ fsync, append, ...rest }) => rest),
    },
    sinks: Object.fromEntries(Object.entries(sinks).map(([name, { deliveryLatency, ...rest }]) => [name, rest])),
  };
}

/** A handler gets the request body (methods that carry one) and the path parameter (":id"). */
type Handler = (body: Buffer, param: string) => Promise<AdminAnswer> | AdminAnswer;
type Methods = Partial<Record<'get' | 'post' | 'delete', Handler>>;

/** Time for a client to send its request line and headers, and its whole request. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

export class AdminServer {
  private readonly server: http.Server;
  /** `admin.token`: the same constant-time bearer check as the ingest routes' `auth.bearer`. */
  private readonly bearer: BearerCheck | null;

  /** Accept errors (EMFILE at the fd limit, say) seen since the last one logged. */
  private acceptErrors = 0;
  private acceptErrorLoggedAt = 0;

  constructor(private readonly config: CrowdConfig, private readonly src: StatsSource, private readonly registry: Registry, private readonly servers: PoolRegistry, private readonly log?: Logger) {
    this.bearer = config.admin.token ? new BearerCheck([config.admin.token]) : null;
    this.server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS }, (req, res) => this.handle(req, res, false));
    // Expect: 100-continue: refuse before inviting the body.
    this.server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res, true));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => refuseUnparsable(err, socket));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean): void {
    if (lingering.has(req.socket)) {
      req.socket.destroy();
      return;
    }
    try {
      this.route(req, res, expectsContinue);
    } catch (e) {
      if (!res.headersSent) send(res, req, errorAnswer('CROWD_INTERNAL', { detail: (e as Error).message }));
      else res.destroy();
    }
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean): void {
    const method = (req.method ?? '').toLowerCase();
    const url = pathOf(req.url ?? '/');
    const head = method === 'head';
    if (this.bearer && this.bearer.check(req.headers.authorization ?? '') !== null) return refuse(req, res, 'CROWD_UNAUTHORIZED', { head });
    const { methods, param } = this.resolve(url);
    if (!methods) return refuse(req, res, 'CROWD_NOT_FOUND', { head });
    // HEAD is GET without the body (as HTTP defines it): `option httpchk HEAD /readyz` works.
    const handler = methods[method as keyof Methods] ?? (head ? methods.get : undefined);
    if (!handler) return refuse(req, res, 'CROWD_METHOD_NOT_ALLOWED', { head, allow: Object.keys(methods).map((m) => m.toUpperCase()).join(', ') });
    if (Number(req.headers['content-length'] ?? 0) > MAX_ADMIN_BODY) {
      return refuse(req, res, 'CROWD_BODY_TOO_LARGE', { head, answer: tooLarge() });
    }
    const run = (body: Buffer) => {
      let p: Promise<AdminAnswer>;
      try {
        p = Promise.resolve(handler(body, param));
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then((a) => send(res, req, a), (e: Error) => send(res, req, errorAnswer('CROWD_INTERNAL', { detail: e.message })));
    };
    if (expectsContinue) res.writeContinue();
    // Read the whole body, whatever the method, before answering; past the limit the rest is
    // read and dropped, and the answer is 413.
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_ADMIN_BODY) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_ADMIN_BODY) send(res, req, tooLarge());
      else run(Buffer.concat(chunks));
    });
    req.on('error', () => res.destroy());
  }

  private resolve(url: string): { methods: Methods | undefined; param: string } {
    const exact = this.routes[url];
    if (exact) return { methods: exact, param: '' };
    const m = /^\/servers\/([A-Za-z0-9_-]{1,64})$/.exec(url);
    if (m) return { methods: this.routes['/servers/:id'], param: m[1] };
    return { methods: undefined, param: '' };
  }

  private readonly routes: Record<string, Methods> = {
    '/healthz': { get: () => json(200, { status: 'OK' }) },
    '/readyz': {
      get: async () => {
        // Sinks are reported, not required: with a sink down crowd still accepts (the log holds
        // the backlog), so it stays ready.
        const r = this.src.readiness();
        const sinks = Object.fromEntries(Object.entries(await this.src.sinkStats()).map(([n, s]) => [n, { healthy: s.healthy, detail: s.health }]));
        return r.ready
          ? json(200, { status: 'ready', sinks })
          : errorAnswer('CROWD_NOT_READY', { reasons: r.reasons, sinks });
      },
    },
    '/stats': { get: async () => json(200, await statsDocument(this.src)) },
    '/stats/detail': { get: () => serverDetail(this.servers) },
    '/metrics': { get: async () => ({ status: 200, type: this.registry.contentType, body: await this.registry.metrics() }) },
    '/servers': {
      get: () => listServers(this.servers),
      post: (body) => registerServer(this.servers, body),
    },
    '/servers/:id': { delete: (_body, id) => removeServer(this.servers, id) },
  };

  listen(): Promise<number> {
    const { host, port } = this.config.admin;
    return new Promise((resolve, reject) => {
      const failed = (e: Error) => reject(new Error(`admin API cannot listen on ${host}:${port}: ${e.message}`));
      this.server.once('error', failed);
      this.server.listen({ host, port }, () => {
        this.server.off('error', failed);
        // Once listening, an error of the listener (an accept failing at the fd limit) must not
        // end the process, which an 'error' event without a listener would: log it, at most
        // every 10 s, with the count.
        this.server.on('error', (e: Error) => this.acceptFailed(e));
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  private acceptFailed(e: Error): void {
    this.acceptErrors++;
    const now = Date.now();
    if (now - this.acceptErrorLoggedAt < 10_000) return;
    this.acceptErrorLoggedAt = now;
    this.log?.warn({ event: 'admin_accept_failed', err: e.message, count: this.acceptErrors }, 'the admin API could not accept connections');
    this.acceptErrors = 0;
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }
}

/**
 * The path of a request target: origin-form ("/readyz?x") or absolute-form
 * ("http://host:2105/readyz", which HTTP/1.1 servers must accept and some checkers send).
 */
function pathOf(target: string): string {
  if (/^https?:\/\//i.test(target)) {
    try {
      return new URL(target).pathname;
    } catch {
      return target;
    }
  }
  return target.split('?')[0];
}

function tooLarge(): AdminAnswer {
  return errorAnswer('CROWD_BODY_TOO_LARGE', { detail: `admin request bodies are limited to ${MAX_ADMIN_BODY} bytes` });
}

/**
 * An answer of a handler (or the error table). HEAD gets the same status and headers,
 * Content-Length included, and no body.
 */
function send(res: http.ServerResponse, req: http.IncomingMessage, a: AdminAnswer, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const body = Buffer.from(a.body);
  res.writeHead(a.status, { 'Content-Type': a.type, 'Content-Length': body.length, ...extra });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * A refusal decided from the request line and headers (401, 404, 405, or 413 from a declared
 * Content-Length), answered at once; with `Expect: 100-continue` before any `100 Continue`,
 * so the client never uploads the body. Without a body the connection stays open. A request
 * that carries a body gets its refusal and a close, as before the move to node:http: nothing
 * after a refused body is ever served as a request. The close lingers (lingerOnClose): the
 * write side is shut, what the client still sends is read and discarded for a bounded time,
 * so the kernel never answers unread bytes with a reset that would lose the refusal.
 */
function refuse(req: http.IncomingMessage, res: http.ServerResponse, code: ErrorCode, o: { head: boolean; allow?: string; answer?: AdminAnswer }): void {
  const extra: Record<string, string> = {};
  if (o.allow) extra.Allow = o.allow;
  const spec = ERRORS[code] as { retryAfter?: boolean };
  if (spec.retryAfter) extra['Retry-After'] = '1';
  const framed = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  if (framed) {
    extra.Connection = 'close';
    lingerOnClose(req.socket);
  }
  send(res, req, o.answer ?? errorAnswer(code), extra);
  req.resume();
}

/** How long a closing connection is read and discarded after its refusal (lingering close). */
const LINGER_MS = 2000;
/** Connections closing after a refusal: any further request on them is never served. */
const lingering = new WeakSet<Socket>();

/**
 * Node closes a connection whose answer said `Connection: close` with socket.destroySoon():
 * FIN, then at once close(2), which turns bytes still arriving into a reset. Here the FIN goes
 * out and the socket stays open, its input discarded (Node's parser drops the rest of the
 * refused body; handle() drops any later request), until the client closes or LINGER_MS.
 */
function lingerOnClose(socket: Socket): void {
  if (lingering.has(socket)) return;
  lingering.add(socket);
  socket.destroySoon = function lingeringClose(this: Socket) {
    if (this.writable) this.end();
    setTimeout(() => this.destroy(), LINGER_MS).unref();
    this.once('end', () => this.destroy());
    this.resume();
  };
}

/** What Node's HTTP parser refused (malformed request line, headers, framing): 400 and close. */
function refuseUnparsable(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || (err as { code?: string }).code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const a = errorAnswer('CROWD_BAD_FRAMING', { detail: err.message });
  socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(a.body)}\r\nConnection: close\r\n\r\n${a.body}`);
}
