/**
 * Hostile HTTP beyond the framing attacks of http-answers.test.ts: header floods, bare LF,
 * obs-fold, obfuscated Transfer-Encoding, NUL bytes, duplicate Host, and slowloris (slow
 * headers and slow bodies on many connections). Each must get a 4xx or a closed connection,
 * never a 2xx for anything smuggled, never a crash; connections that stall are closed by
 * crowd's listener (uWS's 10 s idle timeout) while normal clients are served.
 */
import net from 'node:net';
import test from 'ava';
import { runCli, startCrowd, type CrowdProcess } from './helpers/crowd-process.js';
import { faultSeconds, memoryOf, recordFigures } from './helpers/figures.js';
import { runLoad } from './helpers/load.js';
import { post, rawExchange, rawRequest } from './helpers/raw-http.js';

let crowd: CrowdProcess;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.before(async () => {
  crowd = await startCrowd({ config: { threads: { acceptors: 1, lanes: 1 } } });
});
test.after.always(async () => {
  crowd.kill();
  await crowd.exited;
});

async function storedBodies(): Promise<string[]> {
  const r = await runCli(['log', 'dump', '--data-dir', crowd.dataDir]);
  if (r.code !== 0) throw new Error(`log dump failed (${r.code}): ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { body: string }).body);
}

/** Resolves with ms until the server closed the socket, or -1 if it was still open at `limitMs`. */
function closedWithin(s: net.Socket, limitMs: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    if (s.destroyed) return resolve(0);
    const timer = setTimeout(() => resolve(-1), limitMs);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

const smuggled = (tag: string) => `POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${`{"evil":"${tag}"}`.length}\r\n\r\n{"evil":"${tag}"}`;

test.serial('malformed and flooding requests: a 4xx or a closed connection, never a 2xx for smuggled bytes, nothing smuggled stored', async (t) => {
  const headerFlood = Array.from({ length: 150 }, (_, i) => `X-H${i}: v\r\n`).join('');
  const sizeFlood = Array.from({ length: 70 }, (_, i) => `X-H${i}: ${'b'.repeat(1000)}\r\n`).join('');
  const cases: Array<[string, string]> = [
    ['150 headers', `POST /a HTTP/1.1\r\nHost: x\r\n${headerFlood}Content-Length: 2\r\n\r\n{}${smuggled('count')}`],
    ['70 KB of headers', `POST /a HTTP/1.1\r\nHost: x\r\n${sizeFlood}Content-Length: 2\r\n\r\n{}${smuggled('size')}`],
    ['bare LF line ends', `POST /a HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}${smuggled('lf')}`],
    ['obs-fold header', `POST /a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\n{}${smuggled('fold')}`],
    ['NUL in a header value', `POST /a HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\n{}${smuggled('nul')}`],
    ['Transfer-Encoding: xchunked', `POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n${smuggled('xchunked')}`],
    ['Transfer-Encoding: Chunked', `POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n${smuggled('caps')}`],
    ['Transfer-Encoding with a tab', `POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 30\r\n\r\n2\r\n{}\r\n0\r\n\r\n${smuggled('tab')}`],
    ['space before the colon', `POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\n2\r\n{}\r\n0\r\n\r\n${smuggled('colon')}`],
    ['chunk size overflow', `POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff2\r\n{}\r\n0\r\n\r\n${smuggled('overflow')}`],
    ['Content-Length: +2', `POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}${smuggled('plus')}`],
    ['two Host headers', `POST /a HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 2\r\n\r\n{}${smuggled('hosts')}`],
    ['HTTP/1.0 without Host', `POST /a HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}${smuggled('http10')}`],
    ['10 KB URL', `POST /${'a'.repeat(10000)} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}${smuggled('url')}`],
  ];
  // Every case must end in a 4xx or a connection closed by crowd. They run at once, each on its
  // own connection, and each waits up to 20 s for one of those (a request that stalls is closed
  // by uWS's 10 s idle timeout): no outcome is left unchecked as "no answer yet".
  const answers: Record<string, string> = {};
  const results = await Promise.all(cases.map(async ([name, bytes]) => [name, await rawRequest(crowd.port, bytes, 20_000)] as const));
  for (const [name, r] of results) {
    answers[name] = r.status ? `${r.status}${r.closed ? ' + close' : ''}` : r.closed ? 'closed, no answer' : 'no answer in 20 s';
    t.false(/HTTP\/1\.[01] 2\d\d/.test(r.raw), `${name}: no 2xx (${JSON.stringify(r.raw.slice(0, 60))})`);
    t.true((r.status >= 400 && r.status < 500) || (r.status === 0 && r.closed), `${name}: a 4xx or closed, got ${answers[name]} (${JSON.stringify(r.raw.slice(0, 60))})`);
  }
  const twoHosts = await rawRequest(crowd.port, 'POST /a HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 2\r\n\r\n{}', 400);
  t.is(twoHosts.status, 400, 'two Host headers and nothing behind: 400');
  t.true(twoHosts.closed);
  // A barrier instead of a pause: one acceptor and one lane, so a durable 200 for a request sent
  // after every hostile connection closed means whatever crowd took from them is in the log.
  const control = await rawExchange(crowd.port, post('/a', '{"control":1}'));
  t.is(control.status, 200, 'the control request after the hostile ones is stored');
  const bodies = await storedBodies();
  t.true(bodies.includes('{"control":1}'));
  t.false(bodies.some((b) => b.includes('evil')), 'no smuggled request reached the log');
  t.is(crowd.child.exitCode, null, 'crowd is up');
  recordFigures(t, 'hostile requests (each with a request smuggled behind it)', { ...answers, smuggledStored: bodies.filter((b) => b.includes('evil')).length });
});

test.serial('requests that stall before completing are closed by the listener', async (t) => {
  const stalls = [
    'POST /a HTTP/1.1\r\nHost: x\r\n' + Array.from({ length: 150 }, (_, i) => `X-H${i}: v\r\n`).join('') + 'Content-Length: 2\r\n\r\n{}',
    'POST /a HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}',
    'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{',
    'POST /a HTTP/1.1\r\nHost: x\r\n',
  ];
  const socks = stalls.map((b) => {
    const s = net.connect(crowd.port, '127.0.0.1');
    s.on('error', () => {});
    s.write(b);
    return s;
  });
  const closedAfter = await Promise.all(socks.map((s) => closedWithin(s, 20_000)));
  socks.forEach((s) => s.destroy());
  t.log({ closedAfterMs: closedAfter });
  t.true(closedAfter.every((ms) => ms >= 0), 'every stalled connection was closed by crowd');
});

test.serial('slowloris: slow headers and slow bodies on 400 connections are cut; normal clients keep getting 200', async (t) => {
  const slowCount = 200;
  const slow: net.Socket[] = [];
  const trickles: NodeJS.Timeout[] = [];
  for (let i = 0; i < slowCount * 2; i++) {
    const s = net.connect(crowd.port, '127.0.0.1');
    s.on('error', () => {});
    const head = i % 2 === 0 ? 'POST /slow HTTP/1.1\r\n' : 'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":"';
    s.write(head);
    // One byte a second: each byte arrives well inside any per-read timeout.
    trickles.push(setInterval(() => s.writable && s.write(i % 2 === 0 ? 'X' : 'b'), 1000));
    slow.push(s);
  }
  const closing = Promise.all(slow.map((s) => closedWithin(s, 30_000)));
  const seconds = faultSeconds(12, 30);
  const load = runLoad(crowd.port, '/normal', 20);
  await sleep(seconds * 1000);
  const r = await load.stop();
  const closedAfter = await closing;
  trickles.forEach(clearInterval);
  slow.forEach((s) => s.destroy());
  const cut = closedAfter.filter((ms) => ms >= 0).sort((a, b) => a - b);
  const mem = memoryOf(crowd.child.pid!);
  recordFigures(t, 'slowloris: 200 slow-header + 200 slow-body connections, 20 normal clients', {
    slowConnectionsCut: `${cut.length}/${slow.length}`, cutAfterMsMedian: cut[Math.floor(cut.length / 2)], cutAfterMsMax: cut[cut.length - 1],
    normalSeconds: seconds, normalAcknowledged: r.acked.size, normalRefused: r.refused, normalErrors: r.errors, peakRssMb: mem.peakRssMb,
  });
  t.is(cut.length, slow.length, 'every slow connection was cut');
  t.true(r.acked.size > 0);
  t.is(r.refused + r.errors, 0, 'normal clients were all served');
});
