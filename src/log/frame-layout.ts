/**
 * On-disk layout of crowd's local log. Everything that reads or writes log bytes takes its
 * numbers from here.
 *
 *   <dataDir>/log/lane-<n>/<base offset, 20 digits>.seg      one lane's segments, in order
 *
 *   segment  = SEGMENT_MAGIC (8 B, "CRWDSEG1") | base offset (u64 LE) | frame*
 *   frame    = FRAME_MAGIC (u32 LE) | crc (u32 LE) | len (u32 LE) | payload (len B) | 0-3 zero pad
 *   crc      = CRC32C over the 4 bytes of len followed by the payload
 *   payload  = crowd.v1.Envelope (proto/crowd.proto)
 *
 * Invariants:
 *  - A frame starts on a 4-byte boundary; its logical offset is base offset + position in file.
 *    The next segment's base offset is the previous base plus the previous file's size.
 *  - Only the last segment of a lane is ever appended to. A segment is fsynced before the next
 *    one is created, and the directory is fsynced after a segment is created or removed.
 *  - A record is acknowledged (durable mode) only after the fdatasync that covers it returned.
 *  - A torn tail (partial frame after a crash) is only possible in the last segment; recovery
 *    truncates it. A bad frame followed by good ones (a flipped bit) is skipped and counted,
 *    never silently dropped with what follows: readers resync on the next FRAME_MAGIC whose
 *    frame checks out.
 */
export const SEGMENT_MAGIC = Buffer.from('CRWDSEG1', 'latin1');
export const SEGMENT_HEADER = 16;
export const FRAME_MAGIC = 0x44575243; // "CRWD" as little-endian bytes
export const FRAME_HEADER = 12;
/** Largest payload a frame may claim; anything larger is treated as corruption. */
export const MAX_FRAME_PAYLOAD = 80 * 1024 * 1024;

export function frameSize(payloadLen: number): number {
  return (FRAME_HEADER + payloadLen + 3) & ~3;
}

export function segmentFileName(base: number): string {
  return `${String(base).padStart(20, '0')}.seg`;
}

export function parseSegmentFileName(name: string): number | null {
  const m = /^([0-9]{20})\.seg$/.exec(name);
  return m ? Number(m[1]) : null;
}

export function laneDirName(lane: number): string {
  return `lane-${lane}`;
}

export function segmentHeader(base: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeBigUInt64LE(BigInt(base), 8);
  return b;
}
