/**
 * CRC32C for the log: crowd's N-API addon (SSE4.2) when it built, else the JS twin.
 * `CROWD_NATIVE=0` forces the twin (used by tests and benchmarks to compare both).
 */
import { createRequire } from 'node:module';
import * as js from './crc32c-js.js';

export interface Crc32cImpl {
  readonly kind: 'native' | 'js';
  crc32c(buf: Uint8Array, seed?: number): number;
  /**
   * Seals every frame in buf[start, end) whose magic is FRAME_MAGIC or `magic`: checksum seeded
   * with `seed`, magic set to `magic` (a segment's secrets; defaults 0 and FRAME_MAGIC, the
   * version 1 format). Returns how many it sealed.
   */
  sealFrames(buf: Uint8Array, start: number, end: number, seed?: number, magic?: number): number;
}

export const jsImpl: Crc32cImpl = { kind: 'js', crc32c: js.crc32c, sealFrames: js.sealFrames };

function loadNative(): Crc32cImpl | null {
  try {
    const require = createRequire(import.meta.url);
    const addon = require('../../../build/Release/crowd_core.node') as {
      crc32c(b: Uint8Array, s?: number): number;
      sealFrames(b: Uint8Array, s: number, e: number, seed?: number, magic?: number): number;
    };
    return { kind: 'native', crc32c: addon.crc32c, sealFrames: addon.sealFrames };
  } catch {
    return null;
  }
}

export const nativeImpl: Crc32cImpl | null = loadNative();
export const crc: Crc32cImpl = process.env.CROWD_NATIVE === '0' || !nativeImpl ? jsImpl : nativeImpl;
