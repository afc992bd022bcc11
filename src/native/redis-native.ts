/**
 * The native Redis writer (native/redis_writer.c: hiredis on this thread's event loop) as a
 * RedisConnection. Null when the addon was not built (no libhiredis-dev at `npm install`);
 * the Redis sink then uses its JS twin (src/sinks/redis/resp-connection.ts).
 */
import { createRequire } from 'node:module';
import { keyTemplate, type MessageFormat } from '../sinks/redis/redis-commands.js';
import type { CommandBatch, ConnectionEvents, ConnectionFactory, RedisConnection, RedisReply } from '../sinks/redis/redis-connection.js';
import type { OutboundMessage } from '../sinks/sink-types.js';
import { templateParts } from '../sinks/topic-template.js';

interface RedisAddon {
  hiredisVersion: string;
  redisConnect(host: string, port: number, onConnect: () => void, onClose: (reason: string) => void): object;
  redisWrite(handle: object, args: Array<string | Buffer>, argc: number[], done: (replies: RedisReply[]) => void): boolean;
  redisDestroy(handle: object): void;
  redisEncode(args: Array<string | Buffer>, argc: number[]): Buffer;
  redisSpec(kind: 0 | 1 | 2, keyParts: string[], maxLen: string | null, envelope: boolean): object;
  redisWriteEnvelopes(handle: object, spec: object, payloads: Buffer, ends: Uint32Array, done: (replies: RedisReply[]) => void): boolean;
  redisEncodeEnvelopes(spec: object, payloads: Buffer, ends: Uint32Array): Buffer;
}

/** The native side's description of how messages become commands (native/redis_writer.c). */
function nativeSpec(addon: RedisAddon, f: MessageFormat): object {
  const kind = f.list === undefined ? 0 : f.push === 'left' ? 2 : 1;
  return addon.redisSpec(kind, templateParts(keyTemplate(f)), f.maxLen === undefined ? null : String(f.maxLen), f.format === 'envelope');
}

/** The batch's stored envelopes back to back, and where each one ends. */
function packPayloads(messages: OutboundMessage[]): { payloads: Buffer; ends: Uint32Array } {
  const ends = new Uint32Array(messages.length);
  let end = 0;
  for (let i = 0; i < messages.length; i++) ends[i] = end += messages[i].payload.length;
  return { payloads: Buffer.concat(messages.map((m) => m.payload), end), ends };
}

function load(): { addon: RedisAddon | null; error: string } {
  try {
    const require = createRequire(import.meta.url);
    return { addon: require('../../../build/Release/crowd_redis.node') as RedisAddon, error: '' };
  } catch (e) {
    return { addon: null, error: (e as Error).message.split('\n')[0] };
  }
}

const loaded = load();
export const nativeRedisError = loaded.error;
export const hiredisVersion = loaded.addon?.hiredisVersion ?? null;
/** The RESP bytes the native writer sends for a batch (tests and the micro benchmark). */
export const nativeEncode: ((batch: CommandBatch) => Buffer) | null = loaded.addon
  ? (batch) => loaded.addon!.redisEncode(batch.args, batch.argc)
  : null;

/** The RESP bytes the native writer sends for a batch of messages (tests and the micro benchmark). */
export function nativeMessageEncoder(format: MessageFormat): ((messages: OutboundMessage[]) => Buffer) | null {
  const addon = loaded.addon;
  if (!addon) return null;
  const spec = nativeSpec(addon, format);
  return (messages) => {
    const { payloads, ends } = packPayloads(messages);
    return addon.redisEncodeEnvelopes(spec, payloads, ends);
  };
}

class NativeConnection implements RedisConnection {
  readonly driver = 'native' as const;
  private readonly handle: object;
  private readonly spec: object;
  /** hiredis runs its connect callback outside its callback guard: no free from inside it. */
  private inConnect = false;

  constructor(private readonly addon: RedisAddon, host: string, port: number, events: ConnectionEvents, format: MessageFormat) {
    this.spec = nativeSpec(addon, format);
    this.handle = addon.redisConnect(host, port, () => {
      this.inConnect = true;
      try {
        events.onConnect();
      } finally {
        this.inConnect = false;
      }
    }, (reason) => events.onClose(reason));
  }

  write(batch: CommandBatch, done: (replies: RedisReply[]) => void): void {
    if (!this.addon.redisWrite(this.handle, batch.args, batch.argc, done)) {
      done(batch.argc.map(() => ({ error: 'connection closed', lost: true })));
    }
  }

  writeMessages(messages: OutboundMessage[], done: (replies: RedisReply[]) => void): void {
    const { payloads, ends } = packPayloads(messages);
    if (!this.addon.redisWriteEnvelopes(this.handle, this.spec, payloads, ends, done)) {
      done(messages.map(() => ({ error: 'connection closed', lost: true })));
    }
  }

  destroy(): void {
    if (this.inConnect) {
      setImmediate(() => this.addon.redisDestroy(this.handle));
      return;
    }
    this.addon.redisDestroy(this.handle);
  }
}

export const nativeRedis: ConnectionFactory | null = loaded.addon
  ? (host, port, events, format) => new NativeConnection(loaded.addon!, host, port, events, format)
  : null;
