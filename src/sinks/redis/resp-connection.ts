/**
 * The pure-JS twin of the hiredis writer: RESP commands encoded into one Buffer per batch and
 * written to a net.Socket; replies parsed by redis-parser (the parser ioredis uses). It passes
 * the same test suite as the native writer (test/redis-sink.test.ts runs both).
 */
import net from 'node:net';
import RedisParser from 'redis-parser';
import type { OutboundMessage } from '../sink-types.js';
import { commandWriter, type CommandWriter, type MessageFormat } from './redis-commands.js';
import type { CommandBatch, ConnectionEvents, RedisConnection, RedisReply } from './redis-connection.js';

/** RESP2 encoding of a batch: `*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per argument. */
export function encodeBatch(batch: CommandBatch): Buffer {
  const { args, argc } = batch;
  const lens = new Array<number>(args.length);
  let size = 0;
  let a = 0;
  for (const n of argc) {
    size += 3 + digits(n);
    for (let k = 0; k < n; k++, a++) {
      const v = args[a];
      const len = typeof v === 'string' ? Buffer.byteLength(v) : v.length;
      lens[a] = len;
      size += 5 + digits(len) + len;
    }
  }
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  a = 0;
  for (const n of argc) {
    p += out.write(`*${n}\r\n`, p, 'latin1');
    for (let k = 0; k < n; k++, a++) {
      const v = args[a];
      p += out.write(`$${lens[a]}\r\n`, p, 'latin1');
      p += typeof v === 'string' ? out.write(v, p, 'utf8') : v.copy(out, p);
      out[p++] = 13;
      out[p++] = 10;
    }
  }
  return out;
}

function digits(n: number): number {
  return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : String(n).length;
}

interface PendingBatch {
  replies: RedisReply[];
  expected: number;
  done: (replies: RedisReply[]) => void;
}

export class RespConnection implements RedisConnection {
  readonly driver = 'js' as const;
  private readonly socket: net.Socket;
  private readonly pending: PendingBatch[] = [];
  private closed = false;
  private readonly writeCommand: CommandWriter;

  constructor(host: string, port: number, private readonly events: ConnectionEvents, format: MessageFormat) {
    this.writeCommand = commandWriter(format);
    const parser = new RedisParser({
      returnReply: (r: unknown) => this.reply(normalize(r)),
      returnError: (e: Error) => this.reply({ error: e.message }),
      returnFatalError: (e: Error) => this.fail(`protocol error: ${e.message}`),
    });
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.on('connect', () => this.events.onConnect());
    this.socket.on('data', (d) => parser.execute(d));
    this.socket.on('error', (e) => this.fail(e.message));
    this.socket.on('close', () => this.fail('connection closed'));
  }

  write(batch: CommandBatch, done: (replies: RedisReply[]) => void): void {
    if (this.closed) {
      done(batch.argc.map(() => ({ error: 'connection closed', lost: true })));
      return;
    }
    this.pending.push({ replies: [], expected: batch.argc.length, done });
    this.socket.write(encodeBatch(batch));
  }

  writeMessages(messages: OutboundMessage[], done: (replies: RedisReply[]) => void): void {
    const batch: CommandBatch = { args: [], argc: [] };
    for (const m of messages) this.writeCommand(m, batch);
    this.write(batch, done);
  }

  destroy(): void {
    this.fail('closed by crowd');
  }

  private reply(r: RedisReply): void {
    const b = this.pending[0];
    if (!b) return this.fail('reply without a command');
    b.replies.push(r);
    if (b.replies.length === b.expected) {
      this.pending.shift();
      b.done(b.replies);
    }
  }

  /** Ends the connection once: every unanswered command gets a `lost` reply. */
  private fail(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const lost = { error: reason, lost: true };
    for (const b of this.pending.splice(0)) {
      while (b.replies.length < b.expected) b.replies.push(lost);
      b.done(b.replies);
    }
    this.events.onClose(reason);
  }
}

/** redis-parser hands nested error replies over as Error objects; crowd's shape is plain. */
function normalize(r: unknown): RedisReply {
  if (r instanceof Error) return { error: r.message };
  if (Array.isArray(r)) return r.map(normalize);
  return r as RedisReply;
}
