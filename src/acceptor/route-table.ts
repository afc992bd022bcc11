/**
 * Which route a request path belongs to. With config routes, only those exist; without, any
 * path of letters, digits, '.', '_', '-' segments is a route to the topic of the same name
 * (made on first use with the dynamic defaults, and remembered up to a bound).
 */
import type { CrowdConfig, RouteConfig } from '../config/types.js';
import { routeFields, type RouteFields } from '../envelope/envelope-writer.js';
import { BearerCheck, HmacCheck } from './ingest-auth.js';
import { ReplayWindow, RouteRateLimit, type SharedRouteState } from './shared-limits.js';
import { ROUTE_PATH } from '../config/schema.js';

export type KeySource = { kind: 'none' } | { kind: 'header'; name: string } | { kind: 'json'; pointer: string[] };

export interface Route {
  readonly index: number;
  readonly cfg: RouteConfig;
  /** Lower-case methods, as uWS reports them. */
  readonly methods: ReadonlySet<string>;
  readonly allow: string;
  readonly acceptsAnyType: boolean;
  readonly contentTypes: ReadonlySet<string>;
  readonly key: KeySource;
  readonly keepHeaders: readonly string[];
  readonly needsFsync: boolean;
  /** Pre-encoded envelope fields per (lower-case) method: topic, method, path. */
  readonly fields: ReadonlyMap<string, RouteFields>;
  /** fields.get('post'), looked up once (most routes take only POST). */
  readonly postFields: RouteFields | undefined;
  /** `ack: delivered` with sinks: indexes (config order) of the sinks that must have it. */
  readonly deliveredBy: readonly number[];
  readonly bearer: BearerCheck | null;
  readonly hmac: HmacCheck | null;
  /** `rateLimit`, shared by every acceptor thread. */
  readonly rateLimit: RouteRateLimit | null;
  /** Answers by HTTP status, counted by this acceptor (see acceptor-stats.ts). */
  readonly counts: Map<number, number>;
}

const MAX_DYNAMIC_ROUTES = 10_000;
const PATH_RE = new RegExp(ROUTE_PATH);
/** Never topics: the admin API's paths answer 404 on the ingest port, and dot segments. */
const RESERVED = /^\/(healthz|readyz|stats|metrics|servers)(\/|$)|(^|\/)\.{1,2}(\/|$)/;

export function parseKeySource(key: string | undefined): KeySource {
  if (!key) return { kind: 'none' };
  if (key.startsWith('header:')) return { kind: 'header', name: key.slice(7).toLowerCase() };
  const ptr = key.slice(5);
  return { kind: 'json', pointer: ptr === '' ? [] : ptr.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~')) };
}

/** `shared` carries the config routes' rate limits and replay windows (dynamic routes have neither). */
function makeRoute(index: number, cfg: RouteConfig, shared: SharedRouteState | null, sinkNames: readonly string[] = []): Route {
  const rl = cfg.rateLimit;
  const hmac = cfg.auth && 'hmac' in cfg.auth ? cfg.auth.hmac : null;
  if ((rl && !shared) || (hmac && !shared?.replay[index])) throw new Error(`route ${cfg.path}: its shared limits state is missing`);
  return {
    index,
    cfg,
    methods: new Set(cfg.methods.map((m) => m.toLowerCase())),
    allow: cfg.methods.join(', '),
    acceptsAnyType: cfg.contentTypes.length === 0,
    contentTypes: new Set(cfg.contentTypes),
    key: parseKeySource(cfg.key),
    keepHeaders: cfg.keepHeaders,
    needsFsync: cfg.ack !== 'memory',
    fields: new Map(cfg.methods.map((m) => [m.toLowerCase(), routeFields(cfg.topic, m, cfg.path)])),
    postFields: cfg.methods.includes('POST') ? routeFields(cfg.topic, 'POST', cfg.path) : undefined,
    deliveredBy: cfg.ack === 'delivered' ? cfg.sinks.map((n) => sinkNames.indexOf(n)) : [],
    bearer: cfg.auth && 'bearer' in cfg.auth ? new BearerCheck(cfg.auth.bearer) : null,
    hmac: hmac ? new HmacCheck(hmac.secret, hmac.header, hmac.toleranceSec, new ReplayWindow(shared!.replay[index]!)) : null,
    rateLimit: rl ? new RouteRateLimit(shared!.rate, index, rl.perSecond, rl.burst ?? Math.max(1, Math.round(rl.perSecond))) : null,
    counts: new Map(),
  };
}

export class RouteTable {
  private readonly fixed: Map<string, Route> | null;
  private readonly dynamic = new Map<string, Route>();
  private nextIndex: number;

  constructor(private readonly config: CrowdConfig, shared: SharedRouteState) {
    if (config.routes) {
      const sinkNames = Object.keys(config.sinks);
      this.fixed = new Map(config.routes.map((r, i) => [r.path, makeRoute(i, r, shared, sinkNames)]));
      this.nextIndex = config.routes.length;
    } else {
      this.fixed = null;
      this.nextIndex = 0;
    }
  }

  lookup(path: string): Route | undefined {
    if (this.fixed) return this.fixed.get(path);
    let r = this.dynamic.get(path);
    if (r) return r;
    if (path.length > 256 || !PATH_RE.test(path) || RESERVED.test(path)) return undefined;
    r = makeRoute(this.nextIndex++, { ...this.config.dynamicRoute, path, topic: path.slice(1) }, null);
    if (this.dynamic.size < MAX_DYNAMIC_ROUTES) this.dynamic.set(path, r);
    return r;
  }
}

/** RFC 6901 evaluation over a parsed JSON value. */
export function resolvePointer(doc: unknown, tokens: readonly string[]): unknown {
  let cur: unknown = doc;
  for (const t of tokens) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(t)) return undefined;
      cur = cur[Number(t)];
    } else {
      if (!Object.prototype.hasOwnProperty.call(cur, t)) return undefined;
      cur = (cur as Record<string, unknown>)[t];
    }
  }
  return cur;
}
