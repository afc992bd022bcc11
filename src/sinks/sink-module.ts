/**
 * The shape of one sink type: everything crowd needs to know about it, in one module under
 * src/sinks/<type>/. The config schema (config/schema.ts), the loader (config/load.ts) and
 * create-sink.ts compose the modules listed in sink-registry.ts; adding a type is writing
 * such a module and adding it to that list.
 */
import type { PoolConfig, RouteConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import type { PoolRegistry } from '../upstream/pool-registry.js';
import type { Sink } from './sink-types.js';

/** What sinks share with the rest of crowd (the main thread's pool registry for http sinks). */
export interface SinkContext {
  log: Logger;
  pools: PoolRegistry;
}

/** What the loader hands a type's `options` besides the entry. */
export interface SinkOptionsContext {
  /** The config's pools (already checked). */
  pools: Readonly<Record<string, PoolConfig>>;
  /** "5s" -> 5000 (the loader's own duration parser). */
  duration(s: string): number;
}

export interface SinkTypeModule<Options extends { type: string } = any> {
  /** The value of `type` in the config. */
  readonly type: string;
  /** JSON Schema of one entry of this type, with its defaults (ajv, useDefaults, strict). */
  readonly schema: object;
  /**
   * The schema-checked entry -> the options the sink runs with (durations in ms, checks the
   * schema cannot make). Throws an Error whose message names the field ("config: /sinks/<name>/...").
   */
  options(name: string, entry: Record<string, any>, ctx: SinkOptionsContext): Options;
  /** Optional: refuse a route that this sink cannot carry (same message style as `options`). */
  checkRoute?(sinkName: string, options: Options, route: RouteConfig, where: string): void;
  /** Builds the sink; it connects in start(). */
  create(name: string, options: Options, ctx: SinkContext): Sink;
}
