/**
 * The native Redis writer (native/redis_writer.c: hiredis on this thread's event loop) as a
 * RedisConnection. Null when the addon was not built (no libhiredis-dev at `npm install`);
 * the Redis sink then uses its JS twin (src/sinks/redis/resp-connection.ts).
 */
import { createRequire } from 'node:module';
import type { CommandBatch, ConnectionEvents, ConnectionFactory, RedisConnection, RedisReply } from '../sinks/redis/redis-connection.js';

interface RedisAddon {
  hiredisVersion: string;
  redisConnect(host: string, port: number, onConnect: () => void, onClose: (reason: string) => void): object;
  redisWrite(handle: object, args: Array<string | Buffer>, argc: number[], done: (replies: RedisReply[]) => void): boolean;
  redisDestroy(handle: object): void;
  redisEncode(args: Array<string | Buffer>, argc: number[]): Buffer;
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

class NativeConnection implements RedisConnection {
  readonly driver = 'native' as const;
  private readonly handle: object;

  constructor(private readonly addon: RedisAddon, host: string, port: number, events: ConnectionEvents) {
    this.handle = addon.redisConnect(host, port, () => events.onConnect(), (reason) => events.onClose(reason));
  }

  write(batch: CommandBatch, done: (replies: RedisReply[]) => void): void {
    if (!this.addon.redisWrite(this.handle, batch.args, batch.argc, done)) {
      done(batch.argc.map(() => ({ error: 'connection closed', lost: true })));
    }
  }

  destroy(): void {
    this.addon.redisDestroy(this.handle);
  }
}

export const nativeRedis: ConnectionFactory | null = loaded.addon
  ? (host, port, events) => new NativeConnection(loaded.addon!, host, port, events)
  : null;
