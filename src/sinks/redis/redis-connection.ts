/**
 * What the Redis sink asks of a connection, whichever writer is behind it: the hiredis addon
 * (src/native/redis-native.ts) or the pure-JS twin (resp-connection.ts). A connection writes
 * one pipelined batch per call (commands, or messages it turns into commands itself) and
 * answers the whole batch with one callback, replies in command order. Both run on the
 * calling thread's event loop; neither blocks it.
 */
import type { OutboundMessage } from '../sink-types.js';
import type { MessageFormat } from './redis-commands.js';

/** An error reply from Redis ("WRONGTYPE ..."), or `lost` when the connection went away first. */
export interface RedisErrorReply {
  error: string;
  lost?: boolean;
}

export type RedisReply = string | number | null | RedisErrorReply | RedisReply[];

export function isErrorReply(r: RedisReply): r is RedisErrorReply {
  return typeof r === 'object' && r !== null && !Array.isArray(r);
}

/**
 * A batch: `args` holds the arguments of every command back to back, `argc[i]` how many of
 * them belong to command i.
 */
export interface CommandBatch {
  args: Array<string | Buffer>;
  argc: number[];
}

export interface ConnectionEvents {
  /** The TCP connection is up (nothing has been said to Redis yet). */
  onConnect(): void;
  /** Connecting failed or an established connection ended; called once per connection. */
  onClose(reason: string): void;
}

export interface RedisConnection {
  readonly driver: 'native' | 'js';
  /** Queues the batch for writing; `done` gets one reply per command, in order, exactly once. */
  write(batch: CommandBatch, done: (replies: RedisReply[]) => void): void;
  /** One command per message (redis-commands.ts says which), written as one batch. */
  writeMessages(messages: OutboundMessage[], done: (replies: RedisReply[]) => void): void;
  /** Ends the connection now; pending batches are answered with `lost` replies. */
  destroy(): void;
}

export type ConnectionFactory = (host: string, port: number, events: ConnectionEvents, format: MessageFormat) => RedisConnection;
