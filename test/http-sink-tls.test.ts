// The HTTP sink to https backends: a self-signed certificate made with openssl for 127.0.0.1,
// trusted through NODE_EXTRA_CA_CERTS (Node's own way to add a CA; crowd has no TLS options of
// its own), and refused when it is not trusted: certificates are verified, never skipped.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Backend, httpConfig, sleep, until } from './helpers/backend.js';
import { dumpIds, startCrowd, tempDir } from './helpers/crowd-process.js';
import { post, rawExchange } from './helpers/raw-http.js';

function selfSigned(): { key: string; cert: string; certFile: string } {
  const dir = tempDir('crowd-tls-');
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1',
    '-subj', '/CN=crowd-test', '-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:TRUE',
  ], { stdio: 'ignore' });
  return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8'), certFile };
}

const tls = selfSigned();

test('https backend whose certificate is trusted (NODE_EXTRA_CA_CERTS): health checks pass and messages arrive', async (t) => {
  const b = await new Backend('secure', '/health', tls).start(0);
  const crowd = await startCrowd({ config: httpConfig([b.url]), env: { NODE_EXTRA_CA_CERTS: tls.certFile } });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await rawExchange(crowd.port, post('/leads', `{"n":${i}}`));
      t.is(r.status, 200);
      ids.push((JSON.parse(r.body) as { id: string }).id);
    }
    t.true(await until(() => ids.every((id) => b.ids().has(id)), 20_000), 'every message reached the https backend');
    t.true(b.healthChecks.length > 0, 'health checks over https passed');
    t.is(b.received.find((r) => r.id === ids[3])?.body, '{"n":3}');
  } finally {
    crowd.kill('SIGTERM');
    await crowd.exited;
    await b.kill();
  }
});

test('https backend whose certificate is not trusted: nothing is sent to it, messages stay in the log', async (t) => {
  const b = await new Backend('untrusted', '/health', tls).start(0);
  const crowd = await startCrowd({ config: httpConfig([b.url]) });
  try {
    const r = await rawExchange(crowd.port, post('/leads', '{"n":1}'));
    t.is(r.status, 200, 'ingest does not depend on the backend');
    const id = (JSON.parse(r.body) as { id: string }).id;
    await sleep(2000);
    t.is(b.received.length, 0, 'no delivery over an unverified connection');
    t.is(b.healthChecks.length, 0, 'no health check request got through either');
    const servers = await rawExchange(crowd.adminPort, 'GET /servers HTTP/1.1\r\nHost: x\r\n\r\n');
    t.regex(servers.body, /certificate|self.signed|CERT/i, 'the server list says why the server is down');
    crowd.kill('SIGTERM');
    await crowd.exited;
    t.true((await dumpIds(crowd.dataDir)).includes(id), 'kept in the log for later');
  } finally {
    crowd.kill('SIGKILL');
    await crowd.exited;
    await b.kill();
  }
});
