/**
 * Writing answers with uWS, for the ingest port and the admin API: the 200 receipt and every
 * error of the error table. HEAD requests never get a body (the uWS build used here would send
 * one), refusals that leave unread or untrusted bytes on the connection close it, after a
 * lingering read of the body when its framing can be trusted (sendRefusalLingering).
 */
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import { ERRORS, ERROR_BODIES, statusLine, type ErrorCode, type ErrorSpec } from '../errors.js';

const JSON_TYPE = 'application/json';
const STATUS_LINES = new Map<number, string>();
for (const spec of Object.values(ERRORS)) STATUS_LINES.set(spec.status, statusLine(spec.status));

/*
 * The receipt goes to uWS as bytes, not strings: uWS takes a typed array's memory as it is,
 * while a string costs a UTF-8 length pass and a copy (v8::String::Utf8Value) per argument,
 * ~2% of the acceptor thread under load (perf). uWS copies what `end` gets into its send or
 * cork buffer before returning, so one receipt buffer is rewritten for every answer.
 */
const CONTENT_TYPE = Buffer.from('Content-Type', 'latin1');
const JSON_TYPE_BYTES = Buffer.from(JSON_TYPE, 'latin1');
const RECEIPT_HEAD = '{"status":"OK","id":"';
/** Message ids are 22 ASCII characters (message-ids.ts); another length takes the string path. */
const ID_CHARS = 22;
const RECEIPT = Buffer.from(`${RECEIPT_HEAD}${'0'.repeat(ID_CHARS)}"}`, 'latin1');

function receiptBody(id: string): Buffer | string {
  if (id.length !== ID_CHARS) return `${RECEIPT_HEAD}${id}"}`;
  for (let i = 0; i < ID_CHARS; i++) RECEIPT[RECEIPT_HEAD.length + i] = id.charCodeAt(i);
  return RECEIPT;
}

/**
 * The receipt from inside a uWS callback (already corked by uWS; 200 is its default status).
 * `close`: the connection is closed after it (a chunked request: see docs/errors.md, "Chunked
 * bodies": this uWS build loses the request that follows a chunked body with trailers).
 */
export function sendReceiptNow(res: HttpResponse, id: string, close = false): void {
  res.writeHeader(CONTENT_TYPE, JSON_TYPE_BYTES).end(receiptBody(id), close);
}

/** The receipt after an asynchronous boundary (a lane's wake-up): corked; 200 is uWS's default status. */
export function sendReceipt(res: HttpResponse, id: string, close = false): void {
  res.cork(() => {
    res.writeHeader(CONTENT_TYPE, JSON_TYPE_BYTES).end(receiptBody(id), close);
  });
}

export interface ErrorReplyOptions {
  head?: boolean;
  /** Close even if the code does not require it (a body was left unread). */
  close?: boolean;
  allow?: string;
  retryAfterSeconds?: number;
}

/** Last resort when a handler threw: uWS aborts the process if a request is left unanswered. */
export function sendInternalError(res: HttpResponse): void {
  try {
    res.cork(() => res.writeStatus('500 Internal Server Error').writeHeader('Content-Type', JSON_TYPE).end(ERROR_BODIES.CROWD_INTERNAL, true));
  } catch {
    // Already answered or aborted: nothing more to do.
  }
}

export function sendError(res: HttpResponse, code: ErrorCode, o: ErrorReplyOptions = {}): void {
  const spec = ERRORS[code] as { status: number; close?: boolean; retryAfter?: boolean };
  const close = o.close === true || spec.close === true;
  res.cork(() => {
    res.writeStatus(STATUS_LINES.get(spec.status)!);
    res.writeHeader('Content-Type', JSON_TYPE);
    if (o.allow) res.writeHeader('Allow', o.allow);
    if (spec.retryAfter) res.writeHeader('Retry-After', String(o.retryAfterSeconds ?? 1));
    // HEAD: no body, Content-Length 0. This uWS build aborts the process when
    // endWithoutBody gets any other length, or undefined with close (measured).
    if (o.head) res.endWithoutBody(0, close);
    else res.end(ERROR_BODIES[code], close);
  });
}

/**
 * A refusal decided from the request line and headers. Answered at once, unless it leaves
 * unread or untrusted bytes on the connection (`unreadBody`, or a code that closes): then on
 * the next loop turn, with the connection closed and the body discarded unread. Answering such
 * a refusal at once is not safe with this uWS build: it goes on parsing the bytes after the
 * refused request as further pipelined requests and serves them (request smuggling; measured,
 * see test/http-answers.test.ts). With the answer still pending, uWS closes a connection that
 * pipelines another request instead, so such bytes are never served; a client that sent
 * nothing more gets its 4xx and a close.
 */
export function sendRefusal(res: HttpResponse, code: ErrorCode, unreadBody: boolean, o: ErrorReplyOptions = {}): void {
  if (!unreadBody && (ERRORS[code] as ErrorSpec).close !== true) return sendError(res, code, o);
  let aborted = false;
  res.onAborted(() => (aborted = true));
  res.onData(() => {}); // discard, never buffer, what follows
  setImmediate(() => {
    if (!aborted) sendError(res, code, { ...o, close: true });
  });
}

/**
 * Bounds of the lingering close (docs/errors.md, "Refusals before the body"): the most body
 * bytes crowd reads and drops after deciding a refusal, for how long, and how long it waits
 * for a body to start coming before answering a client that waits.
 */
export const LINGER_BYTES = 16 * 1024 * 1024;
export const LINGER_MS = 5000;
export const LINGER_START_MS = 50;

/**
 * A refusal decided before the body, on a request whose framing crowd trusts (one valid
 * Content-Length, or chunked): 413 on its Content-Length, 404, 405, 415, 401, 503 draining.
 *
 * Closing while body bytes are still arriving loses the answer more often than not: the bytes
 * left unread make the kernel reset the connection (RST), and a client still sending sees the
 * reset, not the 413 (measured: 2 of 3 raw-socket runs; 17 of 20 with a bare uWS server of this
 * build). This uWS build cannot half-close a connection (no shutdown(SHUT_WR) from JS:
 * `end(body, true)` shuts down and closes in one step, and an ended response can no longer be
 * closed), so crowd lingers before its close instead of after it:
 * - a body is coming: the answer stays pending while the body is read and dropped, and goes
 *   out with the close once the body is in, when nothing is left unread to cause a reset;
 * - no body byte within LINGER_START_MS (a client waiting for an answer before sending): the
 *   answer goes out then, with the close;
 * - bounded: a declared Content-Length over LINGER_BYTES, more dropped bytes than that, or
 *   LINGER_MS without the end of the body, and the answer goes out at once, with the close.
 * The answer staying pending also keeps what follows the body from being served: uWS closes a
 * connection that pipelines a request behind a pending answer.
 *
 * `Expect: 100-continue`: this uWS build writes `100 Continue` itself before crowd sees the
 * request (measured with a bare server), so crowd cannot refuse before it. The refusal is
 * written at once, in the same write as uWS's 100 Continue, with the close: a client that
 * waits for the interim answer reads both together and does not send the body.
 */
export function sendRefusalLingering(res: HttpResponse, code: ErrorCode, declaredLength: number, expectContinue: boolean, o: ErrorReplyOptions = {}): void {
  const reply = { ...o, close: true };
  if (expectContinue) return sendError(res, code, reply);
  if (declaredLength > LINGER_BYTES) return sendRefusal(res, code, true, o);
  let done = false;
  let dropped = 0;
  const answer = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    sendError(res, code, reply);
  };
  let timer = setTimeout(answer, LINGER_START_MS);
  res.onAborted(() => {
    done = true;
    clearTimeout(timer);
  });
  res.onData((chunk, isLast) => {
    if (done) return;
    if (dropped === 0 && chunk.byteLength > 0) {
      clearTimeout(timer);
      timer = setTimeout(answer, LINGER_MS);
    }
    dropped += chunk.byteLength;
    // At the end of the body: next turn, so that a request pipelined behind it in the same read
    // makes uWS close the connection instead of serving it.
    if (isLast) setImmediate(answer);
    else if (dropped > LINGER_BYTES) answer();
  });
}
