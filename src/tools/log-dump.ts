/**
 * `crowd log dump`: every stored message as NDJSON, one line each, lane by lane in offset
 * order. `body` is UTF-8 text when the bytes are valid UTF-8, else base64 with
 * "bodyEncoding":"base64". This is how an operator, and the tests, prove what crowd holds.
 *
 * The output is streamed in writes of whole lines, with the stream's back-pressure (writeDump):
 * a log is larger than any string, and a slow reader makes the dump wait, never buffer. A
 * reader that goes away (EPIPE) ends the dump quietly.
 */
import type { Writable } from 'node:stream';
import { decodeEnvelope } from '../envelope/envelope-codec.js';
import { allSegments, emptyReadStats, type LogRecord, type ReadStats } from '../log/log-reader.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface DumpLine {
  id: string;
  topic: string;
  receivedAt: string;
  key: string;
  headers: Record<string, string>;
  contentType: string;
  /** The Content-Encoding the client sent; absent when it sent none. */
  contentEncoding?: string;
  body: string;
  bodyEncoding?: 'base64';
  method: string;
  path: string;
  query: string;
  lane: number;
  offset: number;
}

export interface DumpOptions {
  topic?: string;
  from?: number;
}

/** The dump line of a record, or null when the topic filter leaves it out. */
function toLine(r: LogRecord, opts: DumpOptions): DumpLine | null {
  const e = decodeEnvelope(r.payload);
  if (opts.topic !== undefined && e.topic !== opts.topic) return null;
  const line: DumpLine = {
    id: e.id,
    topic: e.topic,
    receivedAt: new Date(e.receivedAtMs).toISOString(),
    key: e.key,
    headers: Object.fromEntries(e.headers.map((h) => [h.name, h.value])),
    contentType: e.contentType,
    body: '',
    method: e.method,
    path: e.path,
    query: e.query,
    lane: r.lane,
    offset: r.offset,
  };
  if (e.contentEncoding) line.contentEncoding = e.contentEncoding;
  try {
    line.body = utf8.decode(e.body);
  } catch {
    line.body = Buffer.from(e.body).toString('base64');
    line.bodyEncoding = 'base64';
  }
  return line;
}

/** Calls out for every dumped line (tests, tools); holds one segment at a time. */
export function dumpLog(dataDir: string, opts: DumpOptions, out: (line: DumpLine) => void): ReadStats {
  const stats = emptyReadStats();
  for (const records of allSegments(dataDir, opts.from ?? 0, stats)) {
    for (const r of records) {
      const line = toLine(r, opts);
      if (line) out(line);
    }
  }
  return stats;
}

/** Resolves when the stream can take more, or is closed or failed (then the caller stops). */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

/** The reader of the stream went away: stop writing, not an error of the dump. */
export class ReaderGone extends Error {}

/**
 * Writes the dump to a stream as NDJSON, in writes of about 64 KiB of whole lines, waiting for
 * 'drain' whenever the stream's buffer is full. Resolves with the read stats; rejects with ReaderGone on EPIPE.
 */
export async function writeDump(dataDir: string, opts: DumpOptions, stream: Writable): Promise<ReadStats> {
  let failure: Error | null = null;
  const onError = (e: NodeJS.ErrnoException) => {
    failure = e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' ? new ReaderGone('the reader closed the output') : e;
  };
  // Kept after the dump: an EPIPE of the last writes, after the loop, is the reader's business.
  stream.on('error', onError);
  const stats = emptyReadStats();
  // Small lines go out in writes of about WRITE_BYTES (one syscall per line would be slow);
  // a line is never split nor joined with more than that.
  let pending = '';
  const flush = async () => {
    if (failure) throw failure;
    const chunk = pending;
    pending = '';
    if (!stream.write(chunk)) await drained(stream);
  };
  for (const records of allSegments(dataDir, opts.from ?? 0, stats)) {
    for (const r of records) {
      const line = toLine(r, opts);
      if (!line) continue;
      pending += `${JSON.stringify(line)}\n`;
      if (pending.length >= WRITE_BYTES) await flush();
    }
  }
  if (pending.length > 0) await flush();
  if (failure) throw failure;
  return stats;
}

const WRITE_BYTES = 64 * 1024;
