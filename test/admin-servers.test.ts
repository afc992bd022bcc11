// Run-time server registration on the admin API (POST/DELETE/GET /servers, /stats/detail),
// its refusals (SSRF, shape, auth) and its effect on delivery, against real loopback backends.
import test from 'ava';
import { rmSync } from 'node:fs';
import { runCli, startCrowd, tempDir, writeConfig, type CrowdProcess } from './helpers/crowd-process.js';
import { admin, deliveryReport, sleep, startBackends, until } from './helpers/backend.js';
import { runLoad } from './helpers/load.js';
import { rawRequest } from './helpers/raw-http.js';
import { checkTarget } from '../src/upstream/target-policy.js';

const INTERVAL_MS = 200;

function poolConfig(servers: string[], adminCfg: Record<string, unknown> = { allowPrivateTargets: true }, timeout = '2s') {
  return {
    admin: adminCfg,
    sinks: { api: { type: 'http', pool: 'leads-api', concurrency: 16, timeout } },
    pools: { 'leads-api': { servers, healthCheck: { type: 'http', path: '/health', interval: `${INTERVAL_MS}ms` } } },
    routes: [{ path: '/leads', sinks: ['api'] }],
  };
}

async function stopCrowd(c: CrowdProcess): Promise<void> {
  c.kill('SIGTERM');
  await c.exited;
}

test.serial('a server registered at run time gets traffic right after its first health check; registering again is idempotent; it survives a restart', async (t) => {
  const [a, b] = await startBackends(2);
  const crowd = await startCrowd({ config: poolConfig([a.url]) });
  let second: CrowdProcess | null = null;
  try {
    const load = runLoad(crowd.port, '/leads', 4);
    await load.untilAcked(50);
    // The registered server is checked at registration, then every 30 s: so "traffic right after
    // its first check" is "traffic before a second check", an order of events that holds however
    // slow the machine is (waiting 25 s, well inside the 30 s interval).
    const reg = await admin(crowd.adminPort, 'POST', '/servers', { pool: 'leads-api', ip: '127.0.0.1', port: b.port, check: { type: 'http', path: '/health', interval: '30s' } });
    t.is(reg.status, 201);
    t.regex(reg.body.id, /^s-[0-9a-f]{12}$/);
    t.true(await until(() => b.received.length > 0, 25_000, 20), `traffic after ${b.healthChecks.length} check(s)`);
    const result = await load.stop();
    const checksBeforeFirstRequest = b.healthChecks.filter((c) => c.requestsBefore === 0).length;
    t.log({ checksBeforeFirstRequest, msFromFirstCheckToTraffic: b.received[0].at - b.healthChecks[0].at });
    t.is(checksBeforeFirstRequest, 1);
    const again = await admin(crowd.adminPort, 'POST', '/servers', { pool: 'leads-api', ip: '127.0.0.1', port: b.port });
    t.is(again.status, 200);
    t.is(again.body.id, reg.body.id);
    t.false(again.body.created);
    const list = (await admin(crowd.adminPort, 'GET', '/servers')).body as Array<{ id: string; state: string; source: string; success: number }>;
    t.is(list.length, 2);
    const mine = list.find((s) => s.id === reg.body.id)!;
    t.is(mine.state, 'healthy');
    t.is(mine.source, 'api');
    const report = deliveryReport(result.acked, [a, b]);
    await until(() => deliveryReport(result.acked, [a, b]).missing === 0);
    t.is(deliveryReport(result.acked, [a, b]).missing, 0, JSON.stringify(report));
    await stopCrowd(crowd);
    // After a restart the registered server is still in the pool (kept in <dataDir>/servers.json).
    second = await startCrowd({ dataDir: crowd.dataDir, config: poolConfig([a.url]) });
    const after = (await admin(second.adminPort, 'GET', '/servers')).body as Array<{ id: string }>;
    t.deepEqual(after.map((s) => s.id).sort(), list.map((s) => s.id).sort());
  } finally {
    await stopCrowd(crowd);
    if (second) await stopCrowd(second);
    await Promise.all([a.kill(), b.kill()]);
  }
});

test.serial('DELETE /servers/:id drains: requests in flight finish, nothing new is sent, then the server leaves', async (t) => {
  const [a, slow] = await startBackends(2);
  // The slow server holds every answer until the test has seen it listed as draining: an
  // event, not a 400 ms delay that a busy machine could outlast.
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  slow.behave = () => ({ status: 200, hold: released });
  // A 60 s request timeout: held requests are never cut off by crowd while the test looks.
  const crowd = await startCrowd({ config: poolConfig([a.url], undefined, '60s') });
  try {
    const reg = await admin(crowd.adminPort, 'POST', '/servers', { pool: 'leads-api', ip: '127.0.0.1', port: slow.port });
    t.is(reg.status, 201);
    const load = runLoad(crowd.port, '/leads', 8);
    let inFlight = 0;
    t.true(await until(async () => {
      const s = ((await admin(crowd.adminPort, 'GET', '/servers')).body as Array<{ id: string; inFlight: number }>).find((x) => x.id === reg.body.id)!;
      inFlight = s.inFlight;
      return inFlight > 0;
    }, 10_000, 20));
    const del = await admin(crowd.adminPort, 'DELETE', `/servers/${reg.body.id}`);
    t.is(del.status, 202);
    t.is(del.body.state, 'draining');
    t.true(del.body.inFlight > 0, 'it had requests in flight when removed');
    const listed = (await admin(crowd.adminPort, 'GET', '/servers')).body as Array<{ id: string; state: string }>;
    const during = listed.find((s) => s.id === reg.body.id);
    // Listed as draining while its requests are held, and still not gone.
    t.is(during?.state, 'draining', JSON.stringify(listed));
    t.false(slow.finished > 0 || slow.aborted > 0, 'nothing answered yet');
    release();
    t.true(await until(async () => !((await admin(crowd.adminPort, 'GET', '/servers')).body as Array<{ id: string }>).some((s) => s.id === reg.body.id), 10_000, 50));
    await sleep(500);
    const result = await load.stop();
    t.true(await until(() => deliveryReport(result.acked, [a, slow]).missing === 0));
    const report = deliveryReport(result.acked, [a, slow]);
    t.log({ ...report, slowFinished: slow.finished, slowAborted: slow.aborted });
    t.is(report.missing, 0);
    t.is(slow.aborted, 0, 'no request to the drained server was cut off');
    t.is(slow.finished, slow.received.length);
    // The DELETE answer is one snapshot of crowd's main thread: all ever sent to the server is
    // answered (success, failed) or in flight at that moment; nothing may come after.
    t.is(slow.received.length, del.body.success + del.body.failed + del.body.inFlight, 'nothing new sent after DELETE');
    t.is((await admin(crowd.adminPort, 'DELETE', `/servers/${reg.body.id}`)).status, 404);
    const stats = (await admin(crowd.adminPort, 'GET', '/stats')).body as { server: { success: number } };
    t.is(stats.server.success, report.received, 'totals keep the requests of servers that left');
  } finally {
    await stopCrowd(crowd);
    await Promise.all([a.kill(), slow.kill()]);
  }
});

test('SSRF: loopback, link-local, metadata and other non-routable addresses are refused unless allowPrivateTargets', async (t) => {
  const crowd = await startCrowd({ config: poolConfig([], {}) });
  try {
    const refused = ['127.0.0.1', '127.9.9.9', '::1', '169.254.169.254', 'fe80::1', '::ffff:127.0.0.1', '::ffff:169.254.169.254', 'fd00:ec2::254', '100.100.100.200', '0.0.0.0', '::', '224.0.0.1', '255.255.255.255', '64:ff9b::7f00:1'];
    for (const ip of refused) {
      const r = await admin(crowd.adminPort, 'POST', '/servers', { pool: 'leads-api', ip, port: 80 });
      t.is(r.status, 403, ip);
      t.is(r.body.code, 'CROWD_TARGET_FORBIDDEN', ip);
    }
    // Host names and non-standard IPv4 forms (which resolve to loopback) are not taken at all.
    for (const ip of ['localhost', '127.1', '0x7f.0.0.1', '2130706433', 'fe80::1%eth0', 'metadata.google.internal']) {
      const r = await admin(crowd.adminPort, 'POST', '/servers', { pool: 'leads-api', ip, port: 80 });
      t.is(r.status, 400, ip);
      t.is(r.body.code, 'CROWD_INVALID_REQUEST', ip);
    }
    t.deepEqual((await admin(crowd.adminPort, 'GET', '/servers')).body, []);
  } finally {
    await stopCrowd(crowd);
  }
});

test('address classes: private networks and public addresses are allowed; allowPrivateTargets admits loopback but never unspecified or multicast', (t) => {
  for (const ip of ['10.0.0.7', '172.16.5.4', '192.168.1.10', 'fd12:3456::1', '8.8.8.8', '2001:4860:4860::8888']) t.true(checkTarget(ip, false).ok, ip);
  for (const ip of ['127.0.0.1', '::1', 'fe80::1', '169.254.169.254']) {
    t.false(checkTarget(ip, false).ok, ip);
    t.true(checkTarget(ip, true).ok, ip);
  }
  for (const ip of ['0.0.0.0', '::', '239.1.1.1']) t.false(checkTarget(ip, true).ok, ip);
  t.deepEqual(checkTarget('::ffff:10.1.2.3', false), { ok: true, address: '10.1.2.3', family: 4 });
});

test('bad registrations get a JSON error with a stable code', async (t) => {
  const crowd = await startCrowd({ config: poolConfig([]) });
  try {
    const cases: Array<[unknown, number, string]> = [
      ['{"pool":', 400, 'CROWD_BAD_JSON'],
      [{ pool: 'leads-api', ip: '10.0.0.1' }, 400, 'CROWD_INVALID_REQUEST'],
      [{ pool: 'leads-api', ip: '10.0.0.1', port: 70000 }, 400, 'CROWD_INVALID_REQUEST'],
      [{ pool: 'leads-api', ip: '10.0.0.1', port: 80, extra: 1 }, 400, 'CROWD_INVALID_REQUEST'],
      [{ pool: 'leads-api', ip: '10.0.0.1', port: 80, check: { type: 'udp' } }, 400, 'CROWD_INVALID_REQUEST'],
      [{ pool: 'leads-api', ip: '10.0.0.1', port: 80, check: { interval: 'soon' } }, 400, 'CROWD_INVALID_REQUEST'],
      [{ pool: 'nope', ip: '10.0.0.1', port: 80 }, 404, 'CROWD_UNKNOWN_POOL'],
    ];
    for (const [body, status, code] of cases) {
      const r = await admin(crowd.adminPort, 'POST', '/servers', body);
      t.is(r.status, status, JSON.stringify(body));
      t.is(r.body.code, code, JSON.stringify(body));
      t.is(r.body.status, 'error');
      t.is(typeof r.body.message, 'string');
    }
    t.is((await admin(crowd.adminPort, 'DELETE', '/servers/s-000000000000')).body.code, 'CROWD_UNKNOWN_SERVER');
    const wrongMethod = await admin(crowd.adminPort, 'PUT', '/servers', { pool: 'x' });
    t.is(wrongMethod.status, 405);
    t.is(wrongMethod.headers.get('allow'), 'GET, POST');
    t.is((await admin(crowd.adminPort, 'GET', '/servers/s-000000000000')).status, 405);
    t.is((await admin(crowd.adminPort, 'GET', '/nothing')).body.code, 'CROWD_NOT_FOUND');
    const big = await admin(crowd.adminPort, 'POST', '/servers', JSON.stringify({ pool: 'leads-api', ip: '10.0.0.1', port: 80, pad: 'x'.repeat(70_000) }));
    t.is(big.status, 413);
    t.is(big.body.code, 'CROWD_BODY_TOO_LARGE');
    // The admin API still answers after all of that.
    t.is((await admin(crowd.adminPort, 'GET', '/healthz')).status, 200);
  } finally {
    await stopCrowd(crowd);
  }
});

test('admin API off loopback: a token is required to start, and every request needs it', async (t) => {
  const token = 'admin-token-0123456789';
  const noToken = tempDir();
  const file = writeConfig(noToken, { ...poolConfig([]), admin: { host: '0.0.0.0' } });
  const refused = await runCli(['start', '--config', file], { CROWD_DATA_DIR: noToken, CROWD_PORT: '0', CROWD_ADMIN_PORT: '0' });
  t.is(refused.code, 2);
  t.regex(refused.stderr + refused.stdout, /\/admin\/token is required when \/admin\/host \("0\.0\.0\.0"\) is not a loopback address/);
  rmSync(noToken, { recursive: true, force: true });

  const crowd = await startCrowd({ config: { ...poolConfig([]), admin: { host: '0.0.0.0', token, allowPrivateTargets: true } } });
  try {
    // Connect only to 127.0.0.1 (it listens on every interface).
    for (const [method, path, body] of [['GET', '/servers'], ['GET', '/stats/detail'], ['POST', '/servers', { pool: 'leads-api', ip: '127.0.0.1', port: 9 }], ['DELETE', '/servers/s-000000000000']] as const) {
      const none = await admin(crowd.adminPort, method, path, body);
      t.is(none.status, 401, `${method} ${path} without a token`);
      t.is(none.body.code, 'CROWD_UNAUTHORIZED');
      t.is((await admin(crowd.adminPort, method, path, body, 'wrong-token-0123456789')).status, 401, `${method} ${path} with a wrong token`);
    }
    t.deepEqual((await admin(crowd.adminPort, 'GET', '/servers')).body.code, 'CROWD_UNAUTHORIZED');
    t.is((await admin(crowd.adminPort, 'GET', '/servers', undefined, token)).status, 200);
    const ok = await admin(crowd.adminPort, 'POST', '/servers', { pool: 'leads-api', ip: '127.0.0.1', port: 9, check: { type: 'tcp' } }, token);
    t.is(ok.status, 201);
    // A refused POST leaves its body unread: the connection is closed, nothing after it is served.
    const smuggled = await rawRequest(crowd.adminPort,
      'POST /servers HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\nGET /servers HTTP/1.1\r\nHost: x\r\n\r\n                         ');
    t.is(smuggled.status, 401);
    t.true(smuggled.closed);
    t.is(smuggled.raw.match(/HTTP\/1\.1/g)!.length, 1);
  } finally {
    await stopCrowd(crowd);
  }
});
