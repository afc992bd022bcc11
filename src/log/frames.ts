/** Building sealed log frames from whole payloads (dead letters, tests, tools; lanes build theirs from ring memory). */
import { crc } from '../native/crc32c.js';
import { FRAME_HEADER, FRAME_MAGIC, frameSize } from './frame-layout.js';

export function sealedFrames(payloads: readonly Uint8Array[]): Buffer {
  const buf = Buffer.alloc(payloads.reduce((n, p) => n + frameSize(p.length), 0));
  let len = 0;
  for (const p of payloads) {
    buf.writeUInt32LE(FRAME_MAGIC, len);
    buf.writeUInt32LE(p.length, len + 8);
    buf.set(p, len + FRAME_HEADER);
    len += frameSize(p.length);
  }
  crc.sealFrames(buf, 0, len);
  return buf;
}
