// The admin API speaks HTTP/1.0 as well as 1.1 (it is served by node:http, not uWS): load
// balancers' health checks of /readyz (HAProxy's `option httpchk`, nginx's default proxy_pass,
// `ab`) send HTTP/1.0. Also: refusals before `100 Continue`, refusals of a large body that reach
// the client instead of a reset, pipelined requests, and unparsable requests answered in JSON.
import test from 'ava';
import net from 'node:net';
import { startCrowd, type CrowdProcess } from './helpers/crowd-process.js';
import { parseAnswer, rawExchange, rawRequest, type RawAnswer } from './helpers/raw-http.js';

const TOKEN = 'admin-token-0123456789abcdef';
let open: CrowdProcess;
let guarded: CrowdProcess;

test.before(async () => {
  [open, guarded] = await Promise.all([
    startCrowd({ config: { admin: { allowPrivateTargets: true }, pools: { api: { servers: [] } } } }),
    startCrowd({ config: { admin: { token: TOKEN } } }),
  ]);
});

test.after.always(async () => {
  for (const c of [open, guarded]) {
    if (!c) continue;
    c.kill('SIGTERM');
    await c.exited;
  }
});

/** Sends bytes on one connection and collects everything until the server closes (or timeoutMs). */
function untilClose(port: number, bytes: string | Buffer, timeoutMs = 10_000): Promise<{ raw: string; closed: boolean; reset: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let raw = '';
    let reset = false;
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ raw, closed: false, reset });
    }, timeoutMs);
    s.on('connect', () => s.write(bytes));
    s.on('data', (d) => (raw += d.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') reset = true;
      else reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ raw, closed: true, reset });
    });
  });
}

function answers(raw: string): RawAnswer[] {
  return raw.split(/(?=HTTP\/1\.[01] \d{3} )/).filter(Boolean).map((r) => parseAnswer(r, false));
}

for (const [name, request] of [
  ['without Host', 'GET /readyz HTTP/1.0\r\n\r\n'],
  ['with Host', 'GET /readyz HTTP/1.0\r\nHost: crowd.internal\r\n\r\n'],
  ['with User-Agent and Accept, as HAProxy and ab send it', 'GET /readyz HTTP/1.0\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n'],
] as const) {
  test(`HTTP/1.0 GET /readyz ${name}: 200 ready, and the server closes (no keep-alive in 1.0)`, async (t) => {
    const r = await untilClose(open.adminPort, request);
    const a = parseAnswer(r.raw, r.closed);
    t.is(a.status, 200, r.raw || 'no answer at all');
    t.regex(r.raw, /^HTTP\/1\.[01] 200 /);
    t.like(JSON.parse(a.body), { status: 'ready' });
    t.true(r.closed, 'an HTTP/1.0 request without keep-alive ends with a close');
  });
}

test('HTTP/1.0 for every admin route: healthz, stats, metrics, servers (GET and POST with a body), with keep-alive', async (t) => {
  const get = (p: string) => `GET ${p} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`;
  const body = JSON.stringify({ pool: 'api', ip: '127.0.0.1', port: 9, check: { type: 'tcp' } });
  const post = `POST /servers HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  // All on one connection (HTTP/1.0 keep-alive), the last one without keep-alive.
  const r = await untilClose(open.adminPort, get('/healthz') + get('/stats') + get('/metrics') + post + 'GET /stats/detail HTTP/1.0\r\n\r\n');
  const got = answers(r.raw);
  t.deepEqual(got.map((a) => a.status), [200, 200, 200, 201, 200], r.raw.slice(0, 400));
  t.like(JSON.parse(got[0].body), { status: 'OK' });
  t.regex(got[2].body, /crowd_requests_total/);
  t.is(JSON.parse(got[3].body).pool, 'api');
  t.true(r.closed);
  const list = parseAnswer((await untilClose(open.adminPort, 'GET /servers HTTP/1.0\r\n\r\n')).raw, true);
  t.is(list.status, 200);
  t.true((JSON.parse(list.body) as Array<{ port: number }>).some((s) => s.port === 9));
});

test('HEAD /readyz (HTTP/1.0 and 1.1) answers as GET does, without a body; HEAD on a path without GET is 405', async (t) => {
  for (const version of ['1.0', '1.1']) {
    const r = await untilClose(open.adminPort, `HEAD /readyz HTTP/${version}\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const a = parseAnswer(r.raw, r.closed);
    t.is(a.status, 200, r.raw);
    t.is(a.body, '');
    t.true(Number(a.headers['content-length']) > 0, 'the length GET would have');
  }
  const del = parseAnswer((await untilClose(open.adminPort, 'HEAD /servers/s-000000000000 HTTP/1.0\r\n\r\n')).raw, true);
  t.is(del.status, 405);
  t.is(del.headers.allow, 'DELETE');
  t.is(del.body, '');
});

test('a request target in absolute form is served like its path; a query is ignored', async (t) => {
  for (const target of [`http://127.0.0.1:${open.adminPort}/readyz`, 'HTTP://crowd.internal/readyz?probe=1', '/readyz?probe=1']) {
    const a = parseAnswer((await untilClose(open.adminPort, `GET ${target} HTTP/1.0\r\n\r\n`)).raw, true);
    t.is(a.status, 200, target);
    t.like(JSON.parse(a.body), { status: 'ready' });
  }
});

test('HTTP/1.0 with the admin token: 401 without it, 200 with it', async (t) => {
  const none = parseAnswer((await untilClose(guarded.adminPort, 'GET /readyz HTTP/1.0\r\n\r\n')).raw, true);
  t.is(none.status, 401);
  t.is(JSON.parse(none.body).code, 'CROWD_UNAUTHORIZED');
  const ok = parseAnswer((await untilClose(guarded.adminPort, `GET /readyz HTTP/1.0\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`)).raw, true);
  t.is(ok.status, 200);
});

test('HTTP/1.1 pipelined requests are all answered, in order', async (t) => {
  const r = await untilClose(open.adminPort, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.deepEqual(answers(r.raw).map((a) => a.status), [200, 404, 200]);
});

test('Expect: 100-continue: a refusal comes before any 100 Continue, so the body is never sent', async (t) => {
  const head = 'POST /servers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n';
  const refused = await rawRequest(guarded.adminPort, head, 1000);
  t.is(refused.status, 401);
  t.false(refused.raw.includes('100 Continue'));
  t.true(refused.closed);
  // Accepted: 100 Continue, then the answer once the body came.
  const tooBig = await rawRequest(open.adminPort, head, 1000);
  t.is(tooBig.status, 413, 'a declared body over the limit is refused before it is sent');
  t.false(tooBig.raw.includes('100 Continue'));
  const body = JSON.stringify({ pool: 'api', ip: '127.0.0.1', port: 10, check: { type: 'tcp' } });
  const s = net.connect(open.adminPort, '127.0.0.1');
  let raw = '';
  s.on('data', (d) => {
    raw += d.toString('latin1');
    if (raw.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && !raw.includes('201')) s.write(body);
  });
  s.write(`POST /servers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (/HTTP\/1\.1 201 /.test(raw)) {
        clearInterval(check);
        resolve();
      }
    }, 20);
    setTimeout(() => {
      clearInterval(check);
      resolve();
    }, 10_000);
  });
  s.destroy();
  t.regex(raw, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 /);
});

test('a refusal of a request with a large body reaches the client (lingering close, no reset), and nothing after it is served', async (t) => {
  const body = Buffer.alloc(4 << 20, 0x61); // 4 MiB, far past what the socket buffers hold
  for (let i = 0; i < 5; i++) {
    const r = await untilClose(guarded.adminPort, Buffer.concat([Buffer.from(`POST /servers HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
    const a = parseAnswer(r.raw, r.closed);
    t.is(a.status, 401, `run ${i}: ${r.reset ? 'reset' : 'no answer'} ${r.raw.slice(0, 80)}`);
    t.is(JSON.parse(a.body).code, 'CROWD_UNAUTHORIZED');
    t.true(r.closed);
  }
  // A request behind a refused body is never served.
  const smuggled = await untilClose(guarded.adminPort, 'POST /servers HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  t.is(answers(smuggled.raw).length, 1);
});

test('unparsable requests get 400 CROWD_BAD_FRAMING in JSON and a close, never a hang', async (t) => {
  for (const bad of [
    'GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'GET /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
    'GET /readyz HTTP/1.1\r\nBad Header\r\n\r\n',
    'NOT A REQUEST\r\n\r\n',
  ]) {
    const r = await rawExchange(open.adminPort, bad);
    t.is(r.status, 400, JSON.stringify(bad));
    t.is(JSON.parse(r.body).code, 'CROWD_BAD_FRAMING');
  }
  // Still serving.
  t.is((await rawExchange(open.adminPort, 'GET /healthz HTTP/1.0\r\n\r\n')).status, 200);
});
