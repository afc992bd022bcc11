/**
 * Finding frames in log bytes: the one scanner that recovery, verify, dump and sink readers
 * share. It validates each frame against its segment's format (secret frame magic, length,
 * CRC32C seeded with the secret seed) and, after a bad one, resyncs on the next 4-byte-aligned
 * position holding a frame that checks out. See frame-layout.ts.
 */
import { crc } from '../native/crc32c.js';
import { FRAME_HEADER, MAX_FRAME_PAYLOAD, frameSize, type SegmentFormat } from './frame-layout.js';

export interface ScanVisitor {
  /**
   * A good frame: payload is buf[payloadStart, payloadStart + len). Returning false stops the
   * scan after this frame (ScanResult.stopped).
   */
  frame(pos: number, payloadStart: number, len: number): boolean | void;
  /** Bytes [from, to) hold no good frame but good frames follow: corruption in the middle. */
  corrupt?(from: number, to: number): void;
}

export interface ScanResult {
  /**
   * Position after the last good frame including its padding (so possibly up to 3 bytes past
   * the end of the data), or where scanning stopped for lack of bytes.
   */
  goodEnd: number;
  frames: number;
  corruptRegions: number;
  corruptBytes: number;
  /** True when bytes after goodEnd hold no good frame at all (a torn or corrupt tail). */
  tail: boolean;
  /** Zero bytes after the last frame: space the writer allocated ahead (not corruption). */
  zeroTail: number;
  /** The visitor asked to stop; goodEnd is just after its last frame. */
  stopped: boolean;
}

function isZero(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Returns the payload length when a whole, valid frame of format f starts at pos, else -1. */
export function checkFrame(buf: Uint8Array, dv: DataView, pos: number, end: number, f: SegmentFormat): number {
  if (pos + FRAME_HEADER > end) return -1;
  if (dv.getUint32(pos, true) !== f.frameMagic) return -1;
  const len = dv.getUint32(pos + 8, true);
  if (len > MAX_FRAME_PAYLOAD || pos + FRAME_HEADER + len > end) return -1;
  const sum = crc.crc32c(buf.subarray(pos + 8, pos + FRAME_HEADER + len), f.crcSeed);
  return sum === dv.getUint32(pos + 4, true) ? len : -1;
}

/**
 * Scans buf[start, end). `complete` says whether end is the real end of the data (a segment
 * file, or a live segment's fsynced end): then an unfinished frame at the end is a tail. When
 * false (a partial read), scanning stops before the first frame that does not check out, an
 * unfinished one or a bad one: resync needs all the bytes (a partial read could resync past a
 * good frame cut by the read's end), so the caller reads on to the end of the data and scans
 * again with complete = true. Every reader thus resyncs the same way.
 */
export function scanFrames(buf: Uint8Array, start: number, end: number, v: ScanVisitor, complete: boolean, f: SegmentFormat): ScanResult {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const r: ScanResult = { goodEnd: start, frames: 0, corruptRegions: 0, corruptBytes: 0, tail: false, zeroTail: 0, stopped: false };
  let pos = start;
  while (pos < end) {
    const len = checkFrame(buf, dv, pos, end, f);
    if (len >= 0) {
      const more = v.frame(pos, pos + FRAME_HEADER, len);
      r.frames++;
      pos += frameSize(len);
      // May pass `end` by up to 3 bytes when a crash cut the last frame's zero padding.
      r.goodEnd = pos;
      if (more === false) {
        r.stopped = true;
        break;
      }
      continue;
    }
    if (!complete) break;
    // Resync: the next aligned position where a whole good frame starts.
    let next = -1;
    for (let q = pos + 4; q + FRAME_HEADER <= end; q += 4) {
      if (dv.getUint32(q, true) === f.frameMagic && checkFrame(buf, dv, q, end, f) >= 0) {
        next = q;
        break;
      }
    }
    if (next < 0) {
      if (isZero(buf, pos, end)) r.zeroTail = end - pos;
      else r.tail = true;
      break;
    }
    v.corrupt?.(pos, next);
    r.corruptRegions++;
    r.corruptBytes += next - pos;
    pos = next;
    r.goodEnd = pos;
  }
  return r;
}

/**
 * The payload length a frame header at pos claims, when it is plausible (magic, length within
 * bounds), else -1: a partial reader uses it to tell a frame cut by its read from a bad one.
 */
export function claimedLength(dv: DataView, pos: number, end: number, f: SegmentFormat): number {
  if (pos + FRAME_HEADER > end || dv.getUint32(pos, true) !== f.frameMagic) return -1;
  const len = dv.getUint32(pos + 8, true);
  return len <= MAX_FRAME_PAYLOAD ? len : -1;
}
