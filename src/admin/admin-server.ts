/**
 * The admin API, on its own listener (127.0.0.1:2105 by default), never on the ingest port:
 * GET /healthz, /readyz, /stats, /metrics. When `admin.token` is set every admin request needs
 * `Authorization: Bearer <token>` (compared in constant time).
 */
import { timingSafeEqual } from 'node:crypto';
import type { HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { Registry } from 'prom-client';
import { loadUws } from '../acceptor/uws.js';
import type { CrowdConfig } from '../config/types.js';
import { ERRORS, ERROR_BODIES, statusLine, type ErrorCode } from '../errors.js';
import type { StatsSource } from './stats-source.js';

export interface StatsDocument {
  client: { success: number; failed: number };
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

function tokenMatches(header: string, token: string): boolean {
  const want = Buffer.from(`Bearer ${token}`);
  const got = Buffer.from(header);
  return got.length === want.length && timingSafeEqual(got, want);
}

export class AdminServer {
  private readonly uws = loadUws();
  private readonly app: TemplatedApp;
  private socket: us_listen_socket | null = null;

  constructor(private readonly config: CrowdConfig, private readonly src: StatsSource, private readonly registry: Registry) {
    this.app = this.uws.App();
    this.app.any('/*', (res, req) => {
      const method = req.getMethod();
      const url = req.getUrl();
      const token = this.config.admin.token;
      if (token && !tokenMatches(req.getHeader('authorization'), token)) {
        return this.error(res, 'CROWD_UNAUTHORIZED', method === 'head');
      }
      const handler = this.routes[url];
      if (!handler) return this.error(res, 'CROWD_NOT_FOUND', method === 'head');
      if (method !== 'get') {
        return this.error(res, 'CROWD_METHOD_NOT_ALLOWED', method === 'head', 'GET');
      }
      let aborted = false;
      res.onAborted(() => (aborted = true));
      handler().then(
        ({ status, type, body }) => {
          if (aborted) return;
          res.cork(() => res.writeStatus(statusLine(status)).writeHeader('Content-Type', type).end(body));
        },
        (e: Error) => {
          if (!aborted) this.json(res, 500, { status: 'error', code: 'CROWD_INTERNAL', message: e.message });
        },
      );
    });
  }

  private readonly routes: Record<string, () => Promise<{ status: number; type: string; body: string }>> = {
    '/healthz': async () => ({ status: 200, type: 'application/json', body: '{"status":"OK"}' }),
    '/readyz': async () => {
      // Sinks are reported, not required: with a sink down crowd still accepts (the log holds
      // the backlog), so it stays ready.
      const r = this.src.readiness();
      const sinks = Object.fromEntries(Object.entries(await this.src.sinkStats()).map(([n, s]) => [n, { healthy: s.healthy, detail: s.health }]));
      return r.ready
        ? { status: 200, type: 'application/json', body: JSON.stringify({ status: 'ready', sinks }) }
        : { status: 503, type: 'application/json', body: JSON.stringify({ status: 'error', code: 'CROWD_NOT_READY', message: 'not ready', reasons: r.reasons, sinks }) };
    },
    '/stats': async () => ({ status: 200, type: 'application/json', body: JSON.stringify(await statsDocument(this.src)) }),
    '/metrics': async () => ({ status: 200, type: this.registry.contentType, body: await this.registry.metrics() }),
  };

  private json(res: HttpResponse, status: number, doc: unknown): void {
    res.cork(() => res.writeStatus(statusLine(status)).writeHeader('Content-Type', 'application/json').end(JSON.stringify(doc)));
  }

  private error(res: HttpResponse, code: ErrorCode, head: boolean, allow?: string): void {
    res.cork(() => {
      res.writeStatus(statusLine(ERRORS[code].status)).writeHeader('Content-Type', 'application/json');
      if (allow) res.writeHeader('Allow', allow);
      if (head) res.endWithoutBody(0);
      else res.end(ERROR_BODIES[code]);
    });
  }

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
