// Item 13 of issue 17: chunked framing. Measured with a bare uWS server of the same build
// (docs/errors.md, "Chunked bodies"): uWS reads a chunk extension ("5;a=b") as more hex digits
// of the chunk size, so the body never ends and no handler can answer; and after a chunked body
// with trailers it never serves the next request on that connection. crowd's share: it answers
// every chunked request with a close, so a client's next request goes on a new connection and
// is answered.
import test from 'ava';
import net from 'node:net';
import { dumpIds, startCrowd, type CrowdProcess } from './helpers/crowd-process.js';
import { post, rawRequest } from './helpers/raw-http.js';

let crowd: CrowdProcess;

test.before(async () => {
  crowd = await startCrowd({ config: { routes: [{ path: '/d' }, { path: '/m', ack: 'memory' }, { path: '/j', contentTypes: ['application/json'] }] } });
});

test.after.always(async () => {
  crowd?.kill();
  await crowd?.exited;
});

const chunked = (path: string, chunks: string[], trailers = '') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
  chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('') + `0\r\n${trailers}\r\n`;

/**
 * A keep-alive client: sends `first`, reads its answer, then sends `second` on the same
 * connection if the server kept it, or on a new one if the server closed it (as any HTTP/1.1
 * client does). Resolves with both answers' status lines.
 */
function twoInARow(port: number, first: string, second: string): Promise<{ first: string; second: string; firstClosed: boolean }> {
  return new Promise((resolve) => {
    const out = { first: '', second: '', firstClosed: false };
    let phase = 0;
    const finish = () => resolve(out);
    const sendSecond = (s: net.Socket) => {
      phase = 1;
      s.write(second);
    };
    const s = net.connect(port, '127.0.0.1', () => s.write(first));
    const timer = setTimeout(() => {
      s.destroy();
      finish();
    }, 3000);
    s.on('data', (d) => {
      if (phase === 0) {
        out.first += d.toString('latin1');
        if (out.first.endsWith('"}')) setTimeout(() => !s.destroyed && !out.firstClosed && sendSecond(s), 100);
      } else {
        out.second += d.toString('latin1');
        if (out.second.endsWith('"}')) {
          clearTimeout(timer);
          s.destroy();
          finish();
        }
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (phase !== 0) return;
      out.firstClosed = true;
      // Closed after the first answer: the next request goes on a new connection.
      const n = net.connect(port, '127.0.0.1', () => sendSecond(n));
      n.on('data', (d) => {
        out.second += d.toString('latin1');
        if (out.second.endsWith('"}')) {
          clearTimeout(timer);
          n.destroy();
          finish();
        }
      });
      n.on('error', () => {});
    });
  });
}

for (const path of ['/d', '/m']) {
  for (const [name, trailers] of [['with trailers', 'X-Checksum: 1\r\nX-Other: 2\r\n'], ['without trailers', '']] as const) {
    test(`${path}: the request after a chunked body ${name} is answered`, async (t) => {
      for (let i = 0; i < 3; i++) {
        const r = await twoInARow(crowd.port, chunked(path, ['{"a":', `${i}}`], trailers), post(path, '{"next":true}'));
        t.regex(r.first, /^HTTP\/1\.1 200 /, r.first);
        t.regex(r.second, /^HTTP\/1\.1 200 /, `the next request: ${JSON.stringify(r.second)}`);
      }
    });
  }
}

test('a refusal of a chunked body (400 bad JSON) also closes, and the next request is answered', async (t) => {
  const r = await twoInARow(crowd.port, chunked('/j', ['{"a":'], 'X-T: 1\r\n'), post('/j', '{"ok":1}'));
  t.regex(r.first, /^HTTP\/1\.1 400 /);
  t.true(r.firstClosed);
  t.regex(r.second, /^HTTP\/1\.1 200 /);
});

test.serial('chunk extensions (uWS misreads them as size digits): never a 2xx, nothing stored, crowd keeps serving', async (t) => {
  const before = (await dumpIds(crowd.dataDir)).length;
  const r = await rawRequest(crowd.port, 'POST /m HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n', 1000);
  t.false(/HTTP\/1\.1 2/.test(r.raw), r.raw);
  await new Promise((res) => setTimeout(res, 300));
  t.is((await dumpIds(crowd.dataDir)).length, before);
  t.is((await rawRequest(crowd.port, post('/m', '{}'))).status, 200);
});
