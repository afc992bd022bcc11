/**
 * Message ids: 10 chars of base-32 milliseconds (sortable by time), 6 random chars fixed per
 * acceptor start, 6 chars of a per-acceptor counter. Unique across acceptors and restarts
 * without coordination; 22 ASCII chars.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base 32, lower case

function base32(n: number, width: number): string {
  let s = '';
  for (let i = 0; i < width; i++) {
    s = ALPHABET[n % 32] + s;
    n = Math.floor(n / 32);
  }
  return s;
}

export class IdGenerator {
  private readonly instance: string;
  private counter = 0;
  private lastMs = -1;
  private msPart = '';

  constructor() {
    const r = randomBytes(4).readUInt32LE(0);
    this.instance = base32(r, 6);
  }

  next(nowMs: number): string {
    if (nowMs !== this.lastMs) {
      this.lastMs = nowMs;
      this.msPart = base32(nowMs, 10);
    }
    this.counter = (this.counter + 1) % 1073741824; // 32^6
    return this.msPart + this.instance + base32(this.counter, 6);
  }
}
