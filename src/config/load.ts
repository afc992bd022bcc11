/**
 * Loads crowd's configuration once: file (YAML or JSON) -> environment overrides -> schema
 * validation with defaults (ajv) -> derived values -> deep freeze. An invalid config throws a
 * ConfigError whose message names the field and what was expected; the CLI exits non-zero.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import YAML from 'yaml';
import { sinkType } from '../sinks/sink-registry.js';
import type { SinkTypeModule } from '../sinks/sink-module.js';
import { configSchema, durationKeyword } from './schema.js';
import type { CrowdConfig, HealthCheckConfig, PoolConfig, RouteConfig } from './types.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const ENV_OVERRIDES: ReadonlyArray<[string, (c: Record<string, any>, v: string) => void]> = [
  ['CROWD_PORT', (c, v) => ((c.listen ??= {}).port = intFromEnv('CROWD_PORT', v))],
  ['CROWD_ADMIN_PORT', (c, v) => ((c.admin ??= {}).port = intFromEnv('CROWD_ADMIN_PORT', v))],
  ['CROWD_DATA_DIR', (c, v) => (c.dataDir = v)],
  ['CROWD_LOG_LEVEL', (c, v) => (c.logLevel = v)],
];

function intFromEnv(name: string, v: string): number {
  if (!/^[0-9]+$/.test(v)) throw new ConfigError(`${name} must be an integer, got "${v}"`);
  return Number(v);
}

export function parseDuration(s: string): number {
  const m = /^([0-9]+)(ms|s|m|h)$/.exec(s);
  if (!m) throw new ConfigError(`bad duration "${s}"`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * mult;
}

function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
  }
  try {
    if (file.endsWith('.json')) return JSON.parse(text);
    return YAML.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
}

const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: true, allowUnionTypes: true });
ajv.addKeyword(durationKeyword);
const validate = ajv.compile(configSchema);

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values set by code (tests, CLI flags) on top of the file, before the environment. */
  overrides?: Record<string, unknown>;
}

export function loadConfig(opts: LoadOptions = {}): CrowdConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.CROWD_CONFIG;
  const raw = (file ? readConfigFile(file) : {}) as Record<string, any>;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`config ${file}: the top level must be an object`);
  }
  const doc: Record<string, any> = structuredClone(raw);
  for (const [k, v] of Object.entries(opts.overrides ?? {})) {
    doc[k] = typeof v === 'object' && v && !Array.isArray(v) ? { ...(doc[k] ?? {}), ...v } : v;
  }
  for (const [name, apply] of ENV_OVERRIDES) {
    const v = env[name];
    if (v !== undefined && v !== '') apply(doc, v);
  }
  if (!validate(doc)) {
    const e = validate.errors![0];
    const where = e.instancePath || '(top level)';
    const detail = e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})`
      : e.params && 'additionalProperty' in e.params ? ` ("${e.params.additionalProperty}")` : '';
    throw new ConfigError(`config${file ? ` ${file}` : ''}: ${where} ${e.message}${detail}`);
  }
  return deepFreeze(derive(doc, file));
}

function derive(doc: Record<string, any>, file: string | undefined): CrowdConfig {
  const cpus = os.availableParallelism();
  // On 2 cores: one acceptor and one lane; the main thread (admin, supervision) is mostly idle.
  const acceptors = doc.threads.acceptors === 'auto' ? Math.max(1, Math.floor(cpus / 2)) : doc.threads.acceptors;
  const lanes = doc.threads.lanes === 'auto' ? Math.max(1, Math.ceil(cpus / 4)) : doc.threads.lanes;
  const ringBytes: number = doc.ingest.ringBytes;
  if ((ringBytes & (ringBytes - 1)) !== 0) throw new ConfigError(`config: /ingest/ringBytes must be a power of two, got ${ringBytes}`);

  const pools: Record<string, PoolConfig> = {};
  for (const [name, p] of Object.entries(doc.pools as Record<string, any>)) {
    p.servers.forEach((u: string, i: number) => {
      if (!URL.canParse(u)) throw new ConfigError(`config: /pools/${name}/servers/${i} "${u}" is not a URL`);
    });
    pools[name] = { ...p, healthCheck: healthCheckConfig(p.healthCheck) };
  }
  const sinks: Record<string, any> = doc.sinks;
  for (const [name, s] of Object.entries(sinks)) {
    const mod = sinkType(s.type);
    if (!mod) throw new ConfigError(`config: /sinks/${name} type "${s.type}" is not available in this version of crowd`);
    sinks[name] = sinkOptions(mod, () => mod.options(name, s, { pools, duration: parseDuration }));
  }
  if (!isLoopbackHost(doc.admin.host) && !doc.admin.token) {
    throw new ConfigError(`config: /admin/token is required when /admin/host ("${doc.admin.host}") is not a loopback address`);
  }

  let routes: RouteConfig[] | null = null;
  if (Array.isArray(doc.routes)) {
    const seen = new Set<string>();
    routes = doc.routes.map((r: any, i: number) => {
      if (seen.has(r.path)) throw new ConfigError(`config: /routes/${i}/path "${r.path}" is defined twice`);
      seen.add(r.path);
      for (const s of r.sinks) {
        if (!(s in sinks)) throw new ConfigError(`config: /routes/${i}/sinks names "${s}", which is not in /sinks`);
      }
      checkRingFits(ringBytes, r.maxBodyBytes, `/routes/${i}/maxBodyBytes`);
      const route = {
        ...r,
        topic: r.topic ?? r.path.slice(1),
        keepHeaders: r.keepHeaders.map((h: string) => h.toLowerCase()),
        contentTypes: r.contentTypes.map((t: string) => t.toLowerCase()),
      } satisfies RouteConfig;
      for (const s of r.sinks) {
        const mod = sinkType(sinks[s].type);
        if (mod?.checkRoute) sinkOptions(mod, () => mod.checkRoute!(s, sinks[s], route, `/routes/${i}`));
      }
      return route;
    });
  }
  const dynamicRoute = {
    methods: ['POST'], ack: 'durable' as const, maxBodyBytes: 1048576, contentTypes: [], keepHeaders: [], sinks: [],
  };
  // Without `routes`, any POST /<name> is a route with these settings; with them, none is.
  if (routes === null) checkRingFits(ringBytes, dynamicRoute.maxBodyBytes, '/ingest/ringBytes');

  return {
    listen: doc.listen,
    admin: doc.admin,
    dataDir: path.resolve(doc.dataDir),
    logLevel: doc.logLevel,
    threads: { acceptors, lanes },
    ingest: {
      ringBytes,
      ackWait: doc.ingest.ackWait,
      ackTimeoutMs: parseDuration(doc.ingest.ackTimeout),
      idleTimeoutMs: parseDuration(doc.ingest.idleTimeout),
      maxHeaderCount: doc.ingest.maxHeaderCount,
      retryAfterSeconds: doc.ingest.retryAfterSeconds,
      maxRetryAfterSeconds: Math.max(doc.ingest.retryAfterSeconds, doc.ingest.maxRetryAfterSeconds),
      maxQueueDelayMs: parseDuration(doc.ingest.maxQueueDelay),
      maxPending: doc.ingest.maxPending,
    },
    log: {
      segmentBytes: doc.log.segmentBytes,
      maxLogBytes: doc.log.maxLogBytes,
      flushIntervalMs: parseDuration(doc.log.flushInterval),
      maxBatchBytes: doc.log.maxBatchBytes,
    },
    routes,
    dynamicRoute,
    sinks,
    pools,
    source: file ?? '(defaults)',
  };
}

/** Runs a sink type's own check; what it refuses becomes a ConfigError with its message. */
function sinkOptions<T>(mod: SinkTypeModule, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError((e as Error).message || `config: sink type ${mod.type} refused the entry`);
  }
}

/** Durations of a health check (schema shape) in ms. */
export function healthCheckConfig(h: Record<string, any>): HealthCheckConfig {
  return {
    type: h.type, path: h.path, intervalMs: parseDuration(h.interval), timeoutMs: parseDuration(h.timeout),
    unhealthyAfter: h.unhealthyAfter, healthyAfter: h.healthyAfter,
  };
}

/** The admin API may listen without a token only where nothing but this host reaches it. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const h = host.replace(/^\[|\]$/g, '');
  if (/^127\.[0-9]+\.[0-9]+\.[0-9]+$/.test(h)) return true;
  return h === '::1' || h === '::ffff:127.0.0.1';
}

function checkRingFits(ringBytes: number, maxBody: number, where: string): void {
  // A record must fit in a ring at least twice over (one batch in flight, one being written).
  if (maxBody + 65536 > ringBytes / 2) {
    throw new ConfigError(`config: ${where}: bodies of ${maxBody} bytes need /ingest/ringBytes >= ${nextPow2(2 * (maxBody + 65536))}`);
  }
}

function nextPow2(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}
