/**
 * Authentication of ingest routes:
 *   bearer: `Authorization: Bearer <token>`, one of the route's tokens;
 *   hmac:   `<header>: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`, within
 *           toleranceSec of now, each signature accepted once (replays inside the window refused).
 * Every comparison is constant-time (SHA-256 digests compared with timingSafeEqual, so not even
 * a length leaks). The replay window is kept per acceptor thread, bounded by the tolerance.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ErrorCode } from '../errors.js';

export type AuthConfig =
  | { bearer: readonly string[] }
  | { hmac: { secret: string; header: string; toleranceSec: number } };

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

export class BearerCheck {
  private readonly digests: Buffer[];
  constructor(tokens: readonly string[]) {
    this.digests = tokens.map((t) => digest(`Bearer ${t}`));
  }
  /** null when allowed, else the refusal. */
  check(authorization: string): ErrorCode | null {
    const got = digest(authorization);
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(got, d) || ok; // no early exit
    return ok ? null : 'CROWD_UNAUTHORIZED';
  }
}

export class HmacCheck {
  readonly header: string;
  private readonly seen = new Map<string, number>(); // signature -> expiry (ms)
  private lastSweep = 0;
  constructor(private readonly secret: string, header: string, private readonly toleranceSec: number) {
    this.header = header.toLowerCase();
  }

  check(signature: string, body: Uint8Array, nowMs: number): ErrorCode | null {
    const m = /^t=([0-9]{1,12}),v1=([0-9a-f]{64})$/.exec(signature.trim());
    if (!m) return 'CROWD_BAD_SIGNATURE';
    const t = Number(m[1]);
    if (Math.abs(nowMs / 1000 - t) > this.toleranceSec) return 'CROWD_STALE_SIGNATURE';
    const want = createHmac('sha256', this.secret).update(`${m[1]}.`).update(body).digest();
    if (!timingSafeEqual(Buffer.from(m[2], 'hex'), want)) return 'CROWD_BAD_SIGNATURE';
    this.sweep(nowMs);
    if (this.seen.has(m[2])) return 'CROWD_REPLAYED';
    this.seen.set(m[2], t * 1000 + this.toleranceSec * 1000);
    return null;
  }

  private sweep(nowMs: number): void {
    if (nowMs - this.lastSweep < 1000) return;
    this.lastSweep = nowMs;
    for (const [sig, exp] of this.seen) if (exp < nowMs) this.seen.delete(sig);
  }
}

/** Helper for clients and tests: the header value for a body. */
export function signBody(secret: string, body: Uint8Array | string, unixSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${unixSeconds}.`).update(body).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}
