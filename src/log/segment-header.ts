/**
 * Segment headers: writing a new segment's (version 2, with fresh random secrets) and reading
 * any segment's back into its SegmentFormat. Layout: frame-layout.ts.
 */
import { randomBytes } from 'node:crypto';
import { crc } from '../native/crc32c.js';
import {
  FRAME_MAGIC, SEGMENT_HEADER_V1, SEGMENT_HEADER_V2, SEGMENT_MAGIC, SEGMENT_MAGIC_V1, V1_FORMAT, type SegmentFormat,
} from './frame-layout.js';

/** A fresh version 2 format with random secrets. */
export function newSegmentFormat(): SegmentFormat {
  const r = randomBytes(8);
  let frameMagic = r.readUInt32LE(0);
  while (frameMagic === 0 || frameMagic === FRAME_MAGIC) frameMagic = randomBytes(4).readUInt32LE(0);
  return { version: 2, headerSize: SEGMENT_HEADER_V2, frameMagic, crcSeed: r.readUInt32LE(4) };
}

export function segmentHeader(base: number, f: SegmentFormat): Buffer {
  if (f.version === 1) {
    const b = Buffer.alloc(SEGMENT_HEADER_V1);
    SEGMENT_MAGIC_V1.copy(b, 0);
    b.writeBigUInt64LE(BigInt(base), 8);
    return b;
  }
  const b = Buffer.alloc(SEGMENT_HEADER_V2);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeBigUInt64LE(BigInt(base), 8);
  b.writeUInt32LE(f.frameMagic, 16);
  b.writeUInt32LE(f.crcSeed, 20);
  b.writeUInt32LE(crc.crc32c(b.subarray(0, 24)), 24);
  return b;
}

/**
 * The format of a segment from its first bytes (at least SEGMENT_HEADER_V2 of them when the
 * file has that many), or null when the header is damaged or is not the one of a segment at
 * `base`.
 */
export function parseSegmentHeader(head: Uint8Array, base: number): SegmentFormat | null {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length < SEGMENT_HEADER_V1 || Number(b.readBigUInt64LE(8)) !== base) return null;
  const magic = b.subarray(0, 8);
  if (magic.equals(SEGMENT_MAGIC_V1)) return V1_FORMAT;
  if (!magic.equals(SEGMENT_MAGIC) || b.length < SEGMENT_HEADER_V2) return null;
  if (crc.crc32c(b.subarray(0, 24)) !== b.readUInt32LE(24) || b.readUInt32LE(28) !== 0) return null;
  const frameMagic = b.readUInt32LE(16);
  if (frameMagic === 0 || frameMagic === FRAME_MAGIC) return null;
  return { version: 2, headerSize: SEGMENT_HEADER_V2, frameMagic, crcSeed: b.readUInt32LE(20) };
}
