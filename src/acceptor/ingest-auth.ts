/**
 * Authentication of ingest routes:
 *   bearer: `Authorization: Bearer <token>`, one of the route's tokens;
 *   hmac:   `<header>: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`, within
 *           toleranceSec of now, each signature accepted once (replays inside the window refused).
 * Every comparison is constant-time (SHA-256 digests compared with timingSafeEqual, so not even
 * a length leaks). The replay window is shared by every acceptor thread (shared-limits.ts), of
 * fixed capacity, entries kept until the tolerance has passed.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ErrorCode } from '../errors.js';
import type { ReplayWindow } from './shared-limits.js';

export type AuthConfig =
  | { bearer: readonly string[] }
  | { hmac: { secret: string; header: string; toleranceSec: number; replayCapacity: number } };

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
  constructor(private readonly secret: string, header: string, private readonly toleranceSec: number, private readonly window: ReplayWindow) {
    this.header = header.toLowerCase();
  }

  check(signature: string, body: Uint8Array, nowMs: number): ErrorCode | null {
    const m = /^t=([0-9]{1,12}),v1=([0-9a-f]{64})$/.exec(signature.trim());
    if (!m) return 'CROWD_BAD_SIGNATURE';
    const t = Number(m[1]);
    if (Math.abs(nowMs / 1000 - t) > this.toleranceSec) return 'CROWD_STALE_SIGNATURE';
    const want = createHmac('sha256', this.secret).update(`${m[1]}.`).update(body).digest();
    if (!timingSafeEqual(Buffer.from(m[2], 'hex'), want)) return 'CROWD_BAD_SIGNATURE';
    // Remembered until no clock within the tolerance could take the timestamp any more.
    const verdict = this.window.firstUse(m[2], t + this.toleranceSec, Math.floor(nowMs / 1000));
    if (verdict === 'replay') return 'CROWD_REPLAYED';
    if (verdict === 'full') return 'CROWD_REPLAY_WINDOW_FULL';
    return null;
  }
}

/** Helper for clients and tests: the header value for a body. */
export function signBody(secret: string, body: Uint8Array | string, unixSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${unixSeconds}.`).update(body).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}
