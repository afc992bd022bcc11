// Authentication on ingest routes: bearer tokens and HMAC signatures (timestamp window,
// replays refused, one byte changed refused), each refusal a 401 with a stable code.
import test from 'ava';
import { signBody } from '../src/acceptor/ingest-auth.js';
import { dumpIds, startCrowd, type CrowdProcess } from './helpers/crowd-process.js';
import { post, rawRequest } from './helpers/raw-http.js';

const SECRET = 'whsec-0123456789abcdef';
const TOKEN = 'tok-0123456789abcdef';
let crowd: CrowdProcess;

test.before(async () => {
  crowd = await startCrowd({
    config: {
      routes: [
        { path: '/bearer', auth: { bearer: [TOKEN, 'tok-second-0123456789'] } },
        { path: '/hooks', auth: { hmac: { secret: SECRET, toleranceSec: 300 } } },
      ],
    },
  });
});
test.after.always(async () => {
  crowd?.kill();
  await crowd?.exited;
});

const code = (body: string) => (JSON.parse(body) as { code: string }).code;
const now = () => Math.floor(Date.now() / 1000);

test('bearer: the right token is accepted (any of the route tokens)', async (t) => {
  for (const tok of [TOKEN, 'tok-second-0123456789']) {
    const r = await rawRequest(crowd.port, post('/bearer', '{"a":1}', { 'Content-Type': 'application/json', Authorization: `Bearer ${tok}` }));
    t.is(r.status, 200);
  }
});

test.serial('bearer: missing, wrong, or a prefix of the token: 401 CROWD_UNAUTHORIZED, not stored', async (t) => {
  const before = (await dumpIds(crowd.dataDir, 'bearer')).length;
  for (const h of [{} as Record<string, string>, { Authorization: 'Bearer nope' }, { Authorization: `Bearer ${TOKEN.slice(0, -1)}` }, { Authorization: TOKEN }]) {
    const r = await rawRequest(crowd.port, post('/bearer', '{"a":1}', { 'Content-Type': 'application/json', ...h }));
    t.is(r.status, 401);
    t.is(code(r.body), 'CROWD_UNAUTHORIZED');
  }
  t.is((await dumpIds(crowd.dataDir, 'bearer')).length, before);
});

test.serial('hmac: a good signature is accepted once; the same request again is a replay', async (t) => {
  const body = '{"event":"paid","n":1}';
  const sig = signBody(SECRET, body, now());
  const ok = await rawRequest(crowd.port, post('/hooks', body, { 'Content-Type': 'application/json', 'Crowd-Signature': sig }));
  t.is(ok.status, 200);
  const again = await rawRequest(crowd.port, post('/hooks', body, { 'Content-Type': 'application/json', 'Crowd-Signature': sig }));
  t.is(again.status, 401);
  t.is(code(again.body), 'CROWD_REPLAYED');
});

test('hmac: one byte changed, stale or future timestamp, wrong secret, malformed or missing header: 401', async (t) => {
  const body = '{"event":"paid","n":2}';
  const cases: Array<[string, string, string]> = [
    ['one byte changed', signBody(SECRET, body, now()), body.replace('2', '3')],
    ['stale timestamp', signBody(SECRET, body, now() - 330), body],
    ['future timestamp', signBody(SECRET, body, now() + 330), body],
    ['wrong secret', signBody('another-secret-0123456', body, now()), body],
    ['malformed', 'v1=abc', body],
  ];
  const want: Record<string, string> = { 'stale timestamp': 'CROWD_STALE_SIGNATURE', 'future timestamp': 'CROWD_STALE_SIGNATURE' };
  for (const [name, sig, sent] of cases) {
    const r = await rawRequest(crowd.port, post('/hooks', sent, { 'Content-Type': 'application/json', 'Crowd-Signature': sig }));
    t.is(r.status, 401, name);
    t.is(code(r.body), want[name] ?? 'CROWD_BAD_SIGNATURE', name);
  }
  const missing = await rawRequest(crowd.port, post('/hooks', body));
  t.is(missing.status, 401);
  t.is(code(missing.body), 'CROWD_BAD_SIGNATURE');
});
