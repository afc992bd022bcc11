// The one-thread durable floor: the simplest correct durable server a user could write on the
// same uWS build. One Node thread; each body is copied, queued, and once per event-loop turn
// (setImmediate) the turn's bodies are appended to one file with a single write (each record a
// 4-byte length + the body) and made durable with one fdatasync (group commit); only then are
// the waiting requests answered, inside cork, with crowd's 200 JSON shape and a unique id.
// No checks, no ring, no threads: what crowd's durable ingest is compared with (bench:e2e).
// Usage: node uws-durable.js <port> <data file>
import fs from 'node:fs';
import path from 'node:path';
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import { loadUws } from '../../src/acceptor/uws.js';

const uws = loadUws();
const port = Number(process.argv[2] ?? 13000);
const file = process.argv[3];
if (!file) throw new Error('usage: uws-durable.js <port> <data file>');
const fd = fs.openSync(file, 'a');
// The new file's directory entry made durable once, as any correct durable writer must.
const dir = fs.openSync(path.dirname(file), 'r');
fs.fsyncSync(dir);
fs.closeSync(dir);

interface Waiting {
  res: HttpResponse;
  aborted: boolean;
  body: Buffer;
}

let queue: Waiting[] = [];
let scheduled = false;
let seq = 0;
const idPrefix = `01${Date.now().toString(36)}`.padEnd(12, '0');

function flush(): void {
  scheduled = false;
  const batch = queue;
  queue = [];
  let bytes = 0;
  for (const w of batch) bytes += 4 + w.body.length;
  const buf = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const w of batch) {
    buf.writeUInt32LE(w.body.length, at);
    w.body.copy(buf, at + 4);
    at += 4 + w.body.length;
  }
  fs.writeSync(fd, buf, 0, bytes);
  fs.fdatasyncSync(fd);
  for (const w of batch) {
    if (w.aborted) continue;
    const id = idPrefix + (seq++).toString(36).padStart(10, '0');
    w.res.cork(() => {
      w.res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(`{"status":"OK","id":"${id}"}`);
    });
  }
}

uws
  .App()
  .any('/*', (res) => {
    const w: Waiting = { res, aborted: false, body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    res.onAborted(() => {
      w.aborted = true;
    });
    res.onData((chunk, last) => {
      chunks.push(Buffer.from(new Uint8Array(chunk))); // a copy: the chunk is neutered after this call
      if (!last) return;
      w.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      queue.push(w);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  })
  .listen('127.0.0.1', port, (s) => {
    if (!s) process.exit(1);
    process.stdout.write('listening\n');
  });
