// `crowd log dump` streams: output larger than any one string, and a reader slower than the
// dump, both end with every record printed once and exit 0 (item 19 of Hardening II).
import test from 'ava';
import { spawn } from 'node:child_process';
import { encodeEnvelopeReference } from '../src/envelope/envelope-codec.js';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog } from '../src/log/lane-log.js';
import { cliPath, tempDir } from './helpers/crowd-process.js';

/** A lane of `n` records whose bodies are `size` bytes of `fill`. */
function lane(n: number, size: number, fill: number): string {
  const dir = tempDir('crowd-dump-');
  const { log } = LaneLog.open(dir, 0, 64 << 20);
  for (let i = 0; i < n; i++) {
    const buf = sealedFrames([Buffer.from(encodeEnvelopeReference({
      id: `id-${i}`, topic: 't', receivedAtMs: 1, key: '', headers: [], contentType: 'application/octet-stream',
      body: Buffer.alloc(size, fill), method: 'POST', path: '/t', query: '',
    }))]);
    log.write(buf, buf.length);
  }
  log.sync();
  log.close();
  return dir;
}

/**
 * Runs the dump and reads its output line by line without keeping it (the output can be larger
 * than a string may be). `slow`: the reader stops reading now and then (a slow consumer).
 */
function dump(dir: string, slow: boolean): Promise<{ code: number; ids: string[]; bytes: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, 'log', 'dump', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const ids: string[] = [];
    let bytes = 0;
    let parts: Buffer[] = [];
    let stderr = '';
    let chunks = 0;
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
      let from = 0;
      for (let nl = d.indexOf(10); nl >= 0; nl = d.indexOf(10, from)) {
        parts.push(d.subarray(from, nl));
        ids.push((JSON.parse(Buffer.concat(parts).toString()) as { id: string }).id);
        parts = [];
        from = nl + 1;
      }
      if (from < d.length) parts.push(d.subarray(from));
      if (slow && ++chunks % 8 === 0) {
        child.stdout.pause();
        setTimeout(() => child.stdout.resume(), 20);
      }
    });
    child.on('close', (code) => resolve({ code: code ?? -1, ids, bytes, stderr }));
  });
}

test('output larger than a string may be: every line printed, exit 0', async (t) => {
  // Bodies of control bytes: each escapes to 6 characters of JSON, so 100 bodies of 1 MiB are
  // about 600 M characters of output, more than V8's longest string.
  const dir = lane(100, 1 << 20, 0x01);
  const r = await dump(dir, false);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  t.is(r.ids.length, 100);
  t.deepEqual(r.ids, Array.from({ length: 100 }, (_, i) => `id-${i}`));
  t.true(r.bytes > 536_870_888);
});

test('a slow reader: the dump waits for it, every line printed once, exit 0', async (t) => {
  const dir = lane(400, 64 * 1024, 0x80); // base64 bodies
  const r = await dump(dir, true);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.ids, Array.from({ length: 400 }, (_, i) => `id-${i}`));
});

test('a reader that goes away: the dump stops quietly, without a stack trace', async (t) => {
  const dir = lane(200, 64 * 1024, 0x41);
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [cliPath, 'log', 'dump', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    child.on('close', (code) => resolve({ code, stderr }));
  });
  t.false(/\n\s+at /.test(r.stderr), r.stderr);
  t.false(r.stderr.includes('Unhandled'), r.stderr);
  t.not(r.code, 70);
});
