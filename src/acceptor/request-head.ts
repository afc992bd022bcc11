/**
 * Stage 1 of a request (acceptor.ts): its head. One pass over the headers uWS parsed reads the
 * framing (Content-Length, Transfer-Encoding), the Host and header counts, and the content
 * headers crowd keeps as the client sent them (Content-Type with its parameters,
 * Content-Encoding), and says whether the framing can be trusted.
 *
 * uWS of this build takes the first of two Content-Length headers and accepts any
 * Transfer-Encoding; crowd refuses both (request smuggling), a non-numeric Content-Length,
 * more than one Host (RFC 9112 3.2), and more than `ingest.maxHeaderCount` headers.
 * Requests with more than UWS_MAX_HEADERS headers never reach crowd (see below).
 */
import type { HttpRequest } from '@trufflesuite/uws-js-unofficial';

/**
 * The most request headers this uWS build parses (measured with a bare uWS server of the same
 * build: 48 are served, 49 are never answered and the connection is closed by uWS's idle
 * timeout). `ingest.maxHeaderCount` is bounded by it in the config schema.
 */
export const UWS_MAX_HEADERS = 48;

export interface RequestHead {
  /** Lower-case, as uWS reports it. */
  method: string;
  isHead: boolean;
  url: string;
  /** Content-Length, -1 when there is none (or the body is chunked). */
  cl: number;
  chunked: boolean;
  hasBody: boolean;
  /** The Content-Type header as received ("" when absent). */
  contentType: string;
  /** The Content-Encoding header(s) as received, joined by ", " when repeated ("" when absent). */
  contentEncoding: string;
  /** `Expect: 100-continue` (uWS of this build answers 100 Continue itself; see replies.ts). */
  expectContinue: boolean;
}

// One pass of req.forEach writes here (no closure per request; one acceptor per thread).
let clCount = 0;
let cl = -1;
let te: string | null = null;
let teCount = 0;
let count = 0;
let hosts = 0;
let contentType = '';
let contentEncoding = '';
let expect = false;

function visit(k: string, v: string): void {
  count++;
  switch (k) {
    case 'content-length':
      clCount++;
      cl = /^[0-9]{1,15}$/.test(v) ? Number(v) : -2;
      break;
    case 'transfer-encoding':
      teCount++;
      te = v;
      break;
    case 'content-type':
      contentType = v;
      break;
    case 'content-encoding':
      contentEncoding = contentEncoding === '' ? v : `${contentEncoding}, ${v}`;
      break;
    case 'host':
      hosts++;
      break;
    case 'expect':
      expect = v.toLowerCase() === '100-continue';
      break;
  }
}

/**
 * The head read by the last readHead call: one object per acceptor thread, rewritten for every
 * request (no allocation on the hot path). Valid until the next request: what a request needs
 * after its handler returns is copied from it (acceptor.ts).
 */
const scratch: RequestHead = {
  method: '', isHead: false, url: '', cl: -1, chunked: false, hasBody: false, contentType: '', contentEncoding: '', expectContinue: false,
};

/** Reads the head of `req`; null when its framing cannot be trusted (400 CROWD_BAD_FRAMING and close). */
export function readHead(req: HttpRequest, maxHeaderCount: number): RequestHead | null {
  clCount = 0;
  cl = -1;
  te = null;
  teCount = 0;
  count = 0;
  hosts = 0;
  contentType = '';
  contentEncoding = '';
  expect = false;
  req.forEach(visit);
  if (clCount > 1 || teCount > 1 || cl === -2 || (te !== null && (te !== 'chunked' || clCount > 0)) || count > maxHeaderCount || hosts > 1) {
    return null;
  }
  const h = scratch;
  h.method = req.getMethod();
  h.isHead = h.method === 'head';
  h.url = req.getUrl();
  h.cl = cl;
  h.chunked = te !== null;
  h.hasBody = cl > 0 || te !== null;
  h.contentType = contentType;
  h.contentEncoding = contentEncoding;
  h.expectContinue = expect;
  return h;
}

let lastContentType = '';
let lastMedia = '';

/** "Application/JSON; charset=utf-8" -> "application/json": what routes match (clients repeat the same one). */
export function mediaType(ct: string): string {
  if (ct === lastContentType) return lastMedia;
  const semi = ct.indexOf(';');
  const media = (semi >= 0 ? ct.slice(0, semi) : ct).trim().toLowerCase();
  lastContentType = ct;
  lastMedia = media;
  return media;
}
