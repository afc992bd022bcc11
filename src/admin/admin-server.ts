/**
 * The admin API, on its own listener (127.0.0.1:2105 by default), never on the ingest port:
 * GET /healthz, /readyz, /stats, /stats/detail, /metrics; POST/GET /servers and
 * DELETE /servers/:id (src/admin/servers-api.ts). When `admin.token` is set every admin
 * request needs `Authorization: Bearer <token>` (compared in constant time); the config
 * refuses a non-loopback admin.host without a token.
 *
 * uWS rules kept here: a `res` is never touched after it is answered or aborted (onAborted is
 * registered before any asynchronous step), handlers never throw into uWS, HEAD answers use
 * endWithoutBody(0) only, and a refusal that leaves a request body unread is answered on the
 * next loop turn with the connection closed (answering at once lets this uWS build parse the
 * unread body as further requests; sendRefusal in src/acceptor/replies.ts).
 */
import type { TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { Registry } from 'prom-client';
import { BearerCheck } from '../acceptor/ingest-auth.js';
import { loadUws } from '../acceptor/uws.js';
import { sendRefusal } from '../acceptor/replies.js';
import type { CrowdConfig } from '../config/types.js';
import { statusLine } from '../errors.js';
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

const WITH_BODY = new Set(['post', 'put', 'patch']);

export class AdminServer {
  private readonly uws = loadUws();
  private readonly app: TemplatedApp;
  private socket: us_listen_socket | null = null;
  /** `admin.token`: the same constant-time bearer check as the ingest routes' `auth.bearer`. */
  private readonly bearer: BearerCheck | null;

  constructor(private readonly config: CrowdConfig, private readonly src: StatsSource, private readonly registry: Registry, private readonly servers: PoolRegistry) {
    this.bearer = config.admin.token ? new BearerCheck([config.admin.token]) : null;
    this.app = this.uws.App();
    this.app.any('/*', (res, req) => {
      const method = req.getMethod();
      const url = req.getUrl();
      const head = method === 'head';
      const hasBody = WITH_BODY.has(method) || req.getHeader('content-length') !== '' || req.getHeader('transfer-encoding') !== '';
      if (this.bearer && this.bearer.check(req.getHeader('authorization')) !== null) return sendRefusal(res, 'CROWD_UNAUTHORIZED', hasBody, { head });
      const { methods, param } = this.resolve(url);
      if (!methods) return sendRefusal(res, 'CROWD_NOT_FOUND', hasBody, { head });
      const handler = methods[method as keyof Methods];
      if (!handler) return sendRefusal(res, 'CROWD_METHOD_NOT_ALLOWED', hasBody, { head, allow: Object.keys(methods).map((m) => m.toUpperCase()).join(', ') });
      let closed = false;
      res.onAborted(() => (closed = true));
      const answer = (a: AdminAnswer) => {
        if (closed) return;
        closed = true;
        res.cork(() => res.writeStatus(statusLine(a.status)).writeHeader('Content-Type', a.type).end(a.body));
      };
      const run = (body: Buffer) => {
        let p: Promise<AdminAnswer>;
        try {
          p = Promise.resolve(handler(body, param));
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then(answer, (e: Error) => answer(errorAnswer('CROWD_INTERNAL', { detail: e.message })));
      };
      if (!hasBody) return run(Buffer.alloc(0));
      // Read the whole body (copying chunks: uWS reuses their memory), whatever the method, before
      // answering; past the limit the rest is read and dropped, and the answer is 413.
      const chunks: Buffer[] = [];
      let size = 0;
      res.onData((chunk, isLast) => {
        if (closed) return;
        size += chunk.byteLength;
        if (size <= MAX_ADMIN_BODY) chunks.push(Buffer.from(new Uint8Array(chunk)));
        if (!isLast) return;
        if (size > MAX_ADMIN_BODY) answer(errorAnswer('CROWD_BODY_TOO_LARGE', { detail: `admin request bodies are limited to ${MAX_ADMIN_BODY} bytes` }));
        else run(Buffer.concat(chunks));
      });
    });
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
      this.app.listen(host, port, (s) => {
        if (!s) return reject(new Error(`admin API cannot listen on ${host}:${port}`));
        this.socket = s;
        resolve(this.uws.us_socket_local_port(s));
      });
    });
  }

  close(): void {
    if (this.socket) this.uws.us_listen_socket_close(this.socket);
    this.socket = null;
    (this.app as TemplatedApp & { close(): void }).close();
  }
}
