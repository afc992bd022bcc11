/** Builds a sink from its config entry (the loader has made it its type's options). */
import type { SinkContext } from './sink-module.js';
import { sinkType } from './sink-registry.js';
import type { Sink } from './sink-types.js';

export type { SinkContext } from './sink-module.js';

export function createSink(name: string, cfg: { type: string }, ctx: SinkContext): Sink {
  const mod = sinkType(cfg.type);
  if (!mod) throw new Error(`sink ${name}: type ${cfg.type} is not available`);
  return mod.create(name, cfg, ctx);
}
