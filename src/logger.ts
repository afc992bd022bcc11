/**
 * Structured logs (pino), one JSON line per event, written synchronously to stdout so lane
 * threads (which block in Atomics.wait) and a process that exits right after logging lose
 * nothing. Nothing is logged per request on the hot path.
 */
import { threadId } from 'node:worker_threads';
import pino, { type Logger } from 'pino';

export function createLogger(level: string, thread: string): Logger {
  return pino({ level, base: { thread, tid: threadId } }, pino.destination({ fd: 1, sync: true }));
}
export type { Logger };
