/**
 * The configuration schema (JSON Schema, checked by ajv) with every default written out.
 * One place says what a config may contain; src/config/load.ts applies it once and freezes
 * the result. Each sink type brings the schema of its entries (src/sinks/sink-registry.ts).
 */
import { sinkTypes } from '../sinks/sink-registry.js';
import { duration, H, M, S } from './duration-schema.js';

export { durationKeyword, durationToMs } from './duration-schema.js';

export const ROUTE_PATH = '^/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$';

const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;

/** Active health check of a pool's servers (src/upstream/health-check.ts). */
const healthCheck = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { enum: ['http', 'tcp'], default: 'http' },
    /** http: GET this path; any 2xx or 3xx passes. */
    path: { type: 'string', pattern: '^/[^\\s]*$', default: '/health' },
    interval: { ...duration(100, 1 * H), default: '5s' },
    timeout: { ...duration(10, 10 * M), default: '2s' },
    unhealthyAfter: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
    healthyAfter: { type: 'integer', minimum: 1, maximum: 100, default: 2 },
  },
} as const;

/** A pool of HTTP backends shared by http sinks; servers may also join at run time (POST /servers). */
const pool = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** Origins, e.g. "http://10.0.0.5:8080" (config servers are trusted: no address-class check). */
    servers: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: '^https?://[^/?#\\s]+$' }, default: [] },
    healthCheck: { ...healthCheck, default: {} },
    balance: { enum: ['p2c-ewma', 'round-robin'], default: 'p2c-ewma' },
    /** Passive ejection: a server is marked unhealthy after this many failures in a row. */
    ejectAfter: { type: 'integer', minimum: 1, maximum: 1000, default: 5 },
    /** Keep-alive connections per server (undici Pool `connections`). */
    connections: { type: 'integer', minimum: 1, maximum: 1024, default: 32 },
    /** Requests pipelined per connection (undici `pipelining`); 1 = none. */
    pipelining: { type: 'integer', minimum: 1, maximum: 100, default: 1 },
  },
} as const;


export const configSchema = {
  $id: 'crowd-config',
  $defs: { pool, healthCheck },
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', minLength: 1, default: '0.0.0.0' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 2104 },
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', minLength: 1, default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 2105 },
        token: { type: 'string', minLength: 16 },
        /** POST /servers may register loopback, link-local and metadata addresses (tests, local dev). */
        allowPrivateTargets: { type: 'boolean', default: false },
      },
    },
    dataDir: { type: 'string', minLength: 1, default: './data' },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    threads: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        acceptors: { anyOf: [{ const: 'auto' }, { type: 'integer', minimum: 1, maximum: 64 }], default: 'auto' },
        lanes: { anyOf: [{ const: 'auto' }, { type: 'integer', minimum: 1, maximum: 64 }], default: 'auto' },
      },
    },
    ingest: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** Bytes of each acceptor->lane ring; a power of two. */
        ringBytes: { type: 'integer', minimum: 65536, maximum: 1073741824, default: 8388608 },
        /** How an acceptor learns that waiting requests are fsynced: a lane's message (wake), or looking every loop turn (poll). */
        ackWait: { enum: ['wake', 'poll'], default: 'wake' },
        /** A durable request not confirmed by then gets 503 CROWD_ACK_TIMEOUT. */
        ackTimeout: { ...duration(10, 1 * H), default: '10s' },
        /** Idle / slow-client limit for headers and body. */
        idleTimeout: { ...duration(1 * S, 1 * H), default: '10s' },
        // At most 48: this uWS build never hands crowd a request with more headers (it closes the
        // connection after its idle timeout, unanswered; src/acceptor/request-head.ts UWS_MAX_HEADERS).
        maxHeaderCount: { type: 'integer', minimum: 8, maximum: 48, default: 48 },
        /** Least Retry-After given with a 429/503 (computed values are never below it). */
        retryAfterSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 1 },
        /** Most Retry-After given; also the answer when no drain rate is known (sinks down). */
        maxRetryAfterSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
        /** A request that would wait longer than this for its ack (backlog / drain rate) gets 503 CROWD_OVERLOADED. */
        maxQueueDelay: { ...duration(1, 1 * H), default: '2s' },
        /** Requests waiting for their ack, per acceptor thread and lane: the memory bound. */
        maxPending: { type: 'integer', minimum: 64, maximum: 10000000, default: 100000 },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        segmentBytes: { type: 'integer', minimum: 65536, default: 67108864 },
        /** Quota for the whole log; beyond it ingest answers 503 + Retry-After. */
        maxLogBytes: { type: 'integer', minimum: 1048576, default: 4294967296 },
        /** Memory-ack only batches are fsynced at least this often. */
        flushInterval: { ...duration(1, 1 * M), default: '100ms' },
        /** Largest group-commit batch. */
        maxBatchBytes: { type: 'integer', minimum: 65536, default: 4194304 },
      },
    },
    routes: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path'],
        properties: {
          path: { type: 'string', pattern: ROUTE_PATH },
          topic: { type: 'string', pattern: '^[A-Za-z0-9._/-]+$' },
          methods: {
            type: 'array', minItems: 1, uniqueItems: true,
            items: { enum: ['POST', 'PUT', 'PATCH'] }, default: ['POST'],
          },
          ack: { enum: ['memory', 'durable', 'delivered'], default: 'durable' },
          maxBodyBytes: { type: 'integer', minimum: 1, maximum: 67108864, default: 1048576 },
          contentTypes: {
            type: 'array', uniqueItems: true,
            items: { type: 'string', pattern: '^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+*-]+$' }, default: [],
          },
          key: { type: 'string', pattern: '^(header:[A-Za-z0-9-]+|json:(/[^/]*)*)$' },
          /** Request headers stored with each message (at most 64: each one is a field in every sink's record). */
          keepHeaders: { type: 'array', uniqueItems: true, maxItems: 64, items: { type: 'string', pattern: '^[A-Za-z0-9-]+$' }, default: [] },
          sinks: { type: 'array', uniqueItems: true, items: { type: 'string' }, default: [] },
          /** Requests per second this route takes (one limit shared by every acceptor thread); excess gets 429. */
          rateLimit: {
            type: 'object', additionalProperties: false, required: ['perSecond'],
            properties: {
              perSecond: { type: 'number', exclusiveMinimum: 0 },
              /** Requests allowed at once after a quiet spell; default one second's worth. */
              burst: { type: 'integer', minimum: 1 },
            },
          },
          /** Exactly one of bearer or hmac (src/acceptor/ingest-auth.ts). */
          auth: {
            type: 'object', additionalProperties: false, minProperties: 1, maxProperties: 1,
            properties: {
              bearer: { type: 'array', minItems: 1, items: { type: 'string', minLength: 16 } },
              hmac: {
                type: 'object', additionalProperties: false, required: ['secret'],
                properties: {
                  secret: { type: 'string', minLength: 16 },
                  header: { type: 'string', pattern: '^[A-Za-z0-9-]+$', default: 'crowd-signature' },
                  toleranceSec: { type: 'integer', minimum: 1, maximum: 86400, default: 300 },
                  /** Signatures remembered within toleranceSec (12 bytes each, shared by every acceptor). */
                  replayCapacity: { type: 'integer', minimum: 1024, maximum: 67108864, default: 1048576 },
                },
              },
            },
          },
        },
      },
    },
    sinks: {
      type: 'object',
      default: {},
      propertyNames: { pattern: '^[A-Za-z0-9_-]{1,64}$' },
      additionalProperties: {
        type: 'object',
        required: ['type'],
        properties: { type: { enum: sinkTypes.map((t) => t.type) } },
        // Each type's own schema (src/sinks/<type>/), for entries of that type.
        allOf: sinkTypes.map((t) => ({ if: { properties: { type: { const: t.type } } }, then: t.schema })),
      },
    },
    pools: {
      type: 'object',
      default: {},
      propertyNames: { pattern: '^[A-Za-z0-9_-]{1,64}$' },
      additionalProperties: { $ref: '#/$defs/pool' },
    },
  },
} as const;

/** Body of POST /servers on the admin API (src/admin/servers-api.ts). */
export const serverRegistrationSchema = {
  $id: 'crowd-server-registration',
  type: 'object',
  additionalProperties: false,
  required: ['pool', 'ip', 'port'],
  properties: {
    pool: { type: 'string', minLength: 1, maxLength: 64 },
    /** An IP literal (v4 or v6); host names are refused (what they resolve to can change). */
    ip: { type: 'string', minLength: 2, maxLength: 64 },
    port,
    scheme: { enum: ['http', 'https'], default: 'http' },
    /** Overrides the pool's healthCheck for this server (missing fields: the pool's). */
    check: {
      type: 'object',
      additionalProperties: false,
      properties: {
        type: { enum: ['http', 'tcp'] },
        path: { type: 'string', pattern: '^/[^\\s]*$' },
        interval: duration(100, 1 * H),
        timeout: duration(10, 10 * M),
        unhealthyAfter: { type: 'integer', minimum: 1, maximum: 100 },
        healthyAfter: { type: 'integer', minimum: 1, maximum: 100 },
      },
    },
  },
} as const;
