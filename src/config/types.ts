/** The validated, defaulted and frozen configuration crowd runs with. */
export type AckMode = 'memory' | 'durable' | 'delivered';

export interface RouteConfig {
  readonly path: string;
  readonly topic: string;
  readonly methods: readonly string[];
  readonly ack: AckMode;
  readonly maxBodyBytes: number;
  readonly contentTypes: readonly string[];
  readonly key?: string;
  readonly keepHeaders: readonly string[];
  readonly sinks: readonly string[];
  readonly rateLimit?: { readonly perSecond: number; readonly burst?: number };
  readonly auth?: { readonly bearer: readonly string[] } | { readonly hmac: { readonly secret: string; readonly header: string; readonly toleranceSec: number; readonly replayCapacity: number } };
}

export interface CrowdConfig {
  readonly listen: { readonly host: string; readonly port: number };
  readonly admin: { readonly host: string; readonly port: number; readonly token?: string; readonly allowPrivateTargets: boolean };
  readonly dataDir: string;
  readonly logLevel: string;
  readonly threads: { readonly acceptors: number; readonly lanes: number };
  readonly ingest: {
    readonly ringBytes: number;
    readonly ackWait: 'wake' | 'poll';
    readonly ackTimeoutMs: number;
    readonly idleTimeoutMs: number;
    readonly maxHeaderCount: number;
    readonly retryAfterSeconds: number;
    readonly maxRetryAfterSeconds: number;
    readonly maxQueueDelayMs: number;
    readonly maxPending: number;
  };
  readonly log: {
    readonly segmentBytes: number;
    readonly maxLogBytes: number;
    readonly flushIntervalMs: number;
    readonly maxBatchBytes: number;
  };
  /** null: no config routes, any POST /<name> goes to topic <name>. */
  readonly routes: readonly RouteConfig[] | null;
  /** Defaults applied to routes made on the fly when `routes` is null. */
  readonly dynamicRoute: Omit<RouteConfig, 'path' | 'topic'>;
  readonly sinks: Readonly<Record<string, { readonly type: string; readonly [k: string]: unknown }>>;
  /** HTTP backend pools by name (http sinks deliver to one; servers also join at run time). */
  readonly pools: Readonly<Record<string, PoolConfig>>;
  /** Where the config came from, for logs. */
  readonly source: string;
}

export interface HealthCheckConfig {
  readonly type: 'http' | 'tcp';
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly unhealthyAfter: number;
  readonly healthyAfter: number;
}

export interface PoolConfig {
  readonly servers: readonly string[];
  readonly healthCheck: HealthCheckConfig;
  readonly balance: 'p2c-ewma' | 'round-robin';
  readonly ejectAfter: number;
  readonly connections: number;
  readonly pipelining: number;
}

export interface HttpSinkConfig {
  readonly type: 'http';
  readonly pool: string;
  readonly concurrency: number;
  readonly rate?: number;
  readonly timeoutMs: number;
  readonly ttlMs: number;
  readonly rewrite?: { readonly match: string; readonly replace: string };
  readonly headers: Readonly<Record<string, string>>;
  readonly ordering: 'none' | 'key';
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
}
