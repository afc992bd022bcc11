/**
 * Pure-JS twin of the native CRC32C functions (slicing-by-8 tables).
 * Used when the addon did not build, and run through the same tests as the addon.
 */
import { FRAME_HEADER, FRAME_MAGIC } from '../log/frame-layout.js';

const POLY = 0x82f63b78;
const T = new Int32Array(256 * 8);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[i] = c;
}
for (let i = 0; i < 256; i++) {
  for (let s = 1; s < 8; s++) T[s * 256 + i] = (T[(s - 1) * 256 + i] >>> 8) ^ T[T[(s - 1) * 256 + i] & 0xff];
}

export function crc32cRange(buf: Uint8Array, start: number, end: number, seed = 0): number {
  let crc = ~seed;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = crc ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
    crc =
      T[7 * 256 + (a & 0xff)] ^ T[6 * 256 + ((a >>> 8) & 0xff)] ^ T[5 * 256 + ((a >>> 16) & 0xff)] ^
      T[4 * 256 + (a >>> 24)] ^ T[3 * 256 + buf[i + 4]] ^ T[2 * 256 + buf[i + 5]] ^
      T[256 + buf[i + 6]] ^ T[buf[i + 7]];
  }
  for (; i < end; i++) crc = T[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

export function crc32c(buf: Uint8Array, seed = 0): number {
  return crc32cRange(buf, 0, buf.length, seed);
}

/** Seals every frame in buf[start, end) (marked FRAME_MAGIC or `magic`): crc seeded with `seed`, magic set to `magic`. */
export function sealFrames(buf: Uint8Array, start: number, end: number, seed = 0, magic = FRAME_MAGIC): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = start;
  let frames = 0;
  while (pos + FRAME_HEADER <= end) {
    const m = dv.getUint32(pos, true);
    if (m !== FRAME_MAGIC && m !== magic) break;
    const n = dv.getUint32(pos + 8, true);
    if (pos + FRAME_HEADER + n > end) break;
    dv.setUint32(pos, magic, true);
    dv.setUint32(pos + 4, crc32cRange(buf, pos + 8, pos + FRAME_HEADER + n, seed), true);
    pos += (FRAME_HEADER + n + 3) & ~3;
    frames++;
  }
  return frames;
}
