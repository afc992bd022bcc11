// Producer thread for test/ring.test.ts: pushes N numbered records of varying length.
import { workerData } from 'node:worker_threads';
import { SpscRing } from '../../src/ring/spsc-ring.js';

const { sab, n } = workerData as { sab: SharedArrayBuffer; n: number };
const ring = new SpscRing(sab);
const rec = Buffer.alloc(64);
for (let i = 0; i < n; i++) {
  rec.fill(i & 0xff);
  rec.writeUInt32LE(i, 0);
  while (ring.push(rec.subarray(0, 4 + (i % 60))) < 0) {
    // full: spin until the consumer releases
  }
}
