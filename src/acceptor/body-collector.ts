/**
 * Stage 3 of a request (acceptor.ts): its body, chunk by chunk as uWS hands it over. uWS
 * reuses chunk memory once its callback returns, so a body that comes in several chunks is
 * copied; the common case, the whole body in its last chunk, is used in place (the caller
 * must finish with it before returning). The route's maxBodyBytes is enforced here for bodies
 * without a Content-Length (chunked).
 */

export interface BodyState {
  /** Content-Length (-1 when chunked). */
  cl: number;
  maxBody: number;
  /** The body so far when it comes in several chunks. */
  acc: Buffer | null;
  got: number;
}

/** Marker: the body grew over maxBody. */
export const TOO_LARGE = 1;
/** Marker: more chunks to come. */
export const MORE = 0;

/** Takes one chunk: the whole body once the last chunk is in, or MORE, or TOO_LARGE. */
export function collectChunk(s: BodyState, chunk: ArrayBuffer, isLast: boolean): Uint8Array | typeof MORE | typeof TOO_LARGE {
  const n = chunk.byteLength;
  if (s.got + n > s.maxBody) return TOO_LARGE;
  if (isLast && s.acc === null) return new Uint8Array(chunk);
  let acc = s.acc ?? Buffer.allocUnsafe(s.cl > 0 ? s.cl : Math.min(s.maxBody, 65536));
  if (s.got + n > acc.length) {
    const bigger = Buffer.allocUnsafe(Math.min(s.maxBody, Math.max(acc.length * 2, s.got + n)));
    acc.copy(bigger, 0, 0, s.got);
    acc = bigger;
  }
  acc.set(new Uint8Array(chunk), s.got);
  s.acc = acc;
  s.got += n;
  return isLast ? acc.subarray(0, s.got) : MORE;
}
