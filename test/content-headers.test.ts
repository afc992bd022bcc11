// Item 17 of issue 17: what the client said about its body is kept. The Content-Type is stored
// as received (parameters such as charset, and the client's spelling, included) and the
// Content-Encoding is stored (envelope field 11); the HTTP sink replays both as received.
import test from 'ava';
import { gzipSync } from 'node:zlib';
import { decodeEnvelope, encodeEnvelopeReference } from '../src/envelope/envelope-codec.js';
import { envelopeSizeFast, routeFields, stringFieldBytes, writeEnvelopeFast } from '../src/envelope/envelope-writer.js';
import { runCli, startCrowd } from './helpers/crowd-process.js';
import { commandWriter, type MessageFormat } from '../src/sinks/redis/redis-commands.js';
import type { CommandBatch } from '../src/sinks/redis/redis-connection.js';
import { encodeBatch } from '../src/sinks/redis/resp-connection.js';
import { nativeMessageEncoder } from '../src/native/redis-native.js';
import { startBackends, until } from './helpers/backend.js';
import { rawExchange } from './helpers/raw-http.js';

test('the hot-path writer stores Content-Encoding as field 11, byte for byte what protobufjs writes', (t) => {
  const rf = routeFields('t', 'POST', '/t');
  for (const [ct, ce] of [['text/plain; charset=ISO-8859-1', 'gzip'], ['Application/JSON; Charset="UTF-8"', 'gzip, br'], ['application/octet-stream', ''], ['', 'zstd']]) {
    const body = Buffer.from('abc');
    const size = envelopeSizeFast('01m8vtrf6zp4z66a000001', rf, 1700000000000, 'k', ['x-a', '1'], stringFieldBytes(6, ct), body, 'q=1', ce);
    const b = Buffer.alloc(size);
    t.is(writeEnvelopeFast(b, 0, '01m8vtrf6zp4z66a000001', rf, 1700000000000, 'k', ['x-a', '1'], stringFieldBytes(6, ct), body, 'q=1', ce), size);
    const e = decodeEnvelope(b);
    t.is(e.contentType, ct);
    t.is(e.contentEncoding, ce);
    t.deepEqual(Buffer.from(encodeEnvelopeReference(e)), b, `${ct} / ${ce}`);
  }
});

interface Dumped {
  id: string;
  contentType: string;
  contentEncoding?: string;
  body: string;
  bodyEncoding?: string;
}

test('stored and replayed as received: Content-Type with its parameters, Content-Encoding, the encoded bytes untouched', async (t) => {
  const [backend] = await startBackends(1);
  const crowd = await startCrowd({
    config: {
      admin: { allowPrivateTargets: true },
      sinks: { api: { type: 'http', pool: 'p', timeout: '2s' } },
      pools: { p: { servers: [backend.url] } },
      routes: [{ path: '/in', sinks: ['api'] }],
    },
  });
  try {
    const cases = [
      { ct: 'text/plain; charset=ISO-8859-1', ce: 'gzip', body: gzipSync('hello, encoded world') },
      { ct: 'Application/JSON; Charset="UTF-8"', ce: 'gzip, br', body: Buffer.from('{"a":1}') },
      { ct: 'multipart/form-data; boundary=----x1', ce: '', body: Buffer.from('------x1--') },
    ];
    const sent = new Map<string, (typeof cases)[number]>();
    for (const c of cases) {
      const head = `POST /in HTTP/1.1\r\nHost: x\r\nContent-Type: ${c.ct}\r\n${c.ce ? `Content-Encoding: ${c.ce}\r\n` : ''}Content-Length: ${c.body.length}\r\n\r\n`;
      const r = await rawExchange(crowd.port, Buffer.concat([Buffer.from(head, 'latin1'), c.body]));
      t.is(r.status, 200, r.raw.slice(0, 200));
      sent.set((JSON.parse(r.body) as { id: string }).id, c);
    }
    const dump = (await runCli(['log', 'dump', '--data-dir', crowd.dataDir, '--topic', 'in'])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Dumped);
    for (const [id, c] of sent) {
      const d = dump.find((x) => x.id === id)!;
      t.is(d.contentType, c.ct);
      t.is(d.contentEncoding, c.ce === '' ? undefined : c.ce);
      t.deepEqual(d.bodyEncoding === 'base64' ? Buffer.from(d.body, 'base64') : Buffer.from(d.body, 'utf8'), c.body);
    }
    t.true(await until(() => [...sent.keys()].every((id) => backend.received.some((r) => r.id === id)), 30_000), 'all delivered');
    for (const [id, c] of sent) {
      const r = backend.received.find((x) => x.id === id)!;
      t.is(r.headers['content-type'], c.ct);
      t.is(r.headers['content-encoding'], c.ce === '' ? undefined : c.ce);
    }
  } finally {
    crowd.kill();
    await crowd.exited;
    await backend.kill();
  }
});

test('Redis stream entries carry ct as received and ce when present, the native writer and its JS twin alike', (t) => {
  const f = { stream: 's:{topic}', push: 'right', format: 'raw' } as MessageFormat;
  const native = nativeMessageEncoder(f);
  if (!native) return t.fail('the native Redis writer is not built');
  for (const [ct, ce] of [['text/plain; charset=ISO-8859-1', 'gzip'], ['application/json', ''], ['', 'br']]) {
    const payload = Buffer.from(encodeEnvelopeReference({
      id: '01m8vtrf6zp4z66a000001', topic: 't', receivedAtMs: 1, key: 'k', headers: [{ name: 'x-a', value: '1' }],
      contentType: ct, contentEncoding: ce, body: Buffer.from('b'), method: 'POST', path: '/t', query: '',
    }));
    const m = { envelope: decodeEnvelope(payload), payload, lane: 0, offset: 0 };
    const batch: CommandBatch = { args: [], argc: [] };
    commandWriter(f)(m, batch);
    const args = batch.args.map(String);
    t.is(args[args.indexOf('ct') + 1], ct);
    t.is(args.includes('ce') ? args[args.indexOf('ce') + 1] : '', ce);
    t.is(batch.argc[0], args.length);
    t.is(Buffer.compare(native([m]), encodeBatch(batch)), 0, `${ct} / ${ce}`);
  }
});
