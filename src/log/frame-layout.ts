/**
 * On-disk layout of crowd's local log. Everything that reads or writes log bytes takes its
 * numbers from here.
 *
 *   <dataDir>/log/lane-<n>/<base offset, 20 digits>.seg      one lane's segments, in order
 *
 * Version 2 (written since Hardening II): every segment has a secret of its own, so a frame a
 * client placed inside its own message body can never pass for a record (docs/durability.md):
 *   segment  = "CRWDSEG2" (8 B) | base offset (u64 LE) | frame magic (u32 LE) | crc seed (u32 LE)
 *              | header crc (u32 LE, CRC32C of the 24 bytes before it) | 0 (u32) | frame*
 *   frame    = frame magic (u32 LE) | crc (u32 LE) | len (u32 LE) | payload (len B) | 0-3 zero pad
 *   crc      = CRC32C seeded with the crc seed, over the 4 bytes of len followed by the payload
 * Frame magic and crc seed are random per segment (frame magic never 0 nor FRAME_MAGIC).
 *
 * Version 1 (still read, never written): "CRWDSEG1" | base offset (u64 LE) | frame*, with
 * frame magic FRAME_MAGIC ("CRWD") and crc seed 0.
 *
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
 *    never silently dropped with what follows: readers resync on the next aligned position
 *    holding the segment's frame magic and a frame that checks out with its seed.
 */
export const SEGMENT_MAGIC_V1 = Buffer.from('CRWDSEG1', 'latin1');
export const SEGMENT_MAGIC = Buffer.from('CRWDSEG2', 'latin1');
export const SEGMENT_HEADER_V1 = 16;
export const SEGMENT_HEADER_V2 = 32;
/** The smallest segment header: no frame of a segment starts before base + SEGMENT_HEADER. */
export const SEGMENT_HEADER = SEGMENT_HEADER_V1;
/**
 * Magic of a frame not yet sealed: the writers' framing puts it in, LaneLog.write replaces it
 * with the segment's frame magic when it seals. Also the frame magic of version 1 segments.
 */
export const FRAME_MAGIC = 0x44575243; // "CRWD" as little-endian bytes
export const FRAME_HEADER = 12;
/** Largest payload a frame may claim; anything larger is treated as corruption. */
export const MAX_FRAME_PAYLOAD = 80 * 1024 * 1024;

/** How the frames of one segment are sealed, from its header. */
export interface SegmentFormat {
  version: 1 | 2;
  /** Where the first frame starts, relative to the segment's base. */
  headerSize: number;
  frameMagic: number;
  crcSeed: number;
}

export const V1_FORMAT: SegmentFormat = { version: 1, headerSize: SEGMENT_HEADER_V1, frameMagic: FRAME_MAGIC, crcSeed: 0 };

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
