/**
 * `crowd log dump`: every stored message as NDJSON, one line each, lane by lane in offset
 * order. `body` is UTF-8 text when the bytes are valid UTF-8, else base64 with
 * "bodyEncoding":"base64". This is how an operator, and the tests, prove what crowd holds.
 */
import { decodeEnvelope } from '../envelope/envelope-codec.js';
import { readAllLanes, type ReadStats } from '../log/log-reader.js';

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

export function dumpLog(dataDir: string, opts: { topic?: string; from?: number }, out: (line: DumpLine) => void): ReadStats {
  return readAllLanes(dataDir, opts.from ?? 0, (r) => {
    const e = decodeEnvelope(r.payload);
    if (opts.topic !== undefined && e.topic !== opts.topic) return;
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
    out(line);
  });
}
