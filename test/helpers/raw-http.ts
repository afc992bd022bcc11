/**
 * A raw-socket HTTP client for the tests: sends exact bytes (so framing attacks are sent as
 * written, not normalised by a client library), collects the answer and tells whether the
 * server closed the connection.
 */
import net from 'node:net';

export interface RawAnswer {
  raw: string;
  status: number;
  headers: Record<string, string>;
  body: string;
  closed: boolean;
}

export function parseAnswer(raw: string, closed: boolean): RawAnswer {
  const end = raw.indexOf('\r\n\r\n');
  const head = end >= 0 ? raw.slice(0, end) : raw;
  const lines = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] ([0-9]{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { raw, status, headers, body: end >= 0 ? raw.slice(end + 4) : '', closed };
}

/** One whole answer in `raw`: its head and as many body bytes as its Content-Length says. */
function answerComplete(raw: string): boolean {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const cl = /\r\ncontent-length: *([0-9]+)/i.exec(raw.slice(0, end));
  return cl !== null && raw.length - (end + 4) >= Number(cl[1]);
}

/**
 * Sends one request and returns as soon as its whole answer is in (or the server closed, or
 * `timeoutMs` passed): for loops of well-formed requests, where waiting for silence would be
 * slow and a short silence can end before a busy server answers.
 */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  return rawRequest(port, bytes, timeoutMs, true);
}

/** Sends bytes, waits until the server closes or `settleMs` of silence, returns the answer. */
export function rawRequest(port: number, bytes: string | Buffer, settleMs = 300, untilAnswer = false): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let raw = '';
    let timer: NodeJS.Timeout;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(parseAnswer(raw, closed));
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), settleMs);
    };
    s.on('connect', () => {
      s.write(bytes);
      arm();
    });
    s.on('data', (d) => {
      raw += d.toString('latin1');
      if (untilAnswer && answerComplete(raw)) finish(false);
      else arm();
    });
    s.on('close', () => finish(true));
    // A reset (the server closed while bytes were still being sent) is a closed connection;
    // anything else before an answer (e.g. refused) is an error.
    s.on('error', (e: NodeJS.ErrnoException) => (raw || e.code === 'ECONNRESET' || e.code === 'EPIPE' ? finish(true) : reject(e)));
  });
}

export function post(path: string, body: string, headers: Record<string, string> = { 'Content-Type': 'application/json' }): string {
  const h = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `POST ${path} HTTP/1.1\r\nHost: localhost\r\n${h}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
