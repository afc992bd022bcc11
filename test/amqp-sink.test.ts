// The amqp sink against a real RabbitMQ node (scripts/rabbitmq.sh), read back with an amqplib
// consumer. Serial: one test stops and starts the shared node.
import test from 'ava';
import { amqpSink, declareExchange, declareQueue, deleteExchange, deleteQueue, drainQueue, pauseRabbit, resumeRabbit, startRabbit, stopRabbit, type AmqpRecord } from './helpers/amqp.js';
import { runCli, startCrowd, tempDir, writeConfig, type CrowdProcess } from './helpers/crowd-process.js';
import { readDeadLetters } from './helpers/dead-letters.js';
import { faultSeconds, longFaults, recordFigures } from './helpers/figures.js';
import { uniqueTopic } from './helpers/kafka.js';
import { runLoad } from './helpers/load.js';
import { adminGet, awaitNonEmpty, brokerOutage } from './helpers/outage.js';
import { post, rawRequest } from './helpers/raw-http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads the queue until it holds every acknowledged id (or the time is up); returns the report. */
async function awaitDelivery(queue: string, acked: Map<string, string>, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  const records: AmqpRecord[] = [];
  for (;;) {
    await drainQueue(queue, records);
    const ids = new Set(records.map((r) => r.messageId));
    if ([...acked.keys()].every((id) => ids.has(id)) || Date.now() > until) break;
    await sleep(500);
  }
  const byId = new Map<string, AmqpRecord[]>();
  for (const r of records) byId.set(r.messageId, [...(byId.get(r.messageId) ?? []), r]);
  let missing = 0;
  let wrongBody = 0;
  for (const [id, body] of acked) {
    const got = byId.get(id);
    if (!got) missing++;
    else if (got[0].body !== body) wrongBody++;
  }
  return { acknowledged: acked.size, inQueue: records.length, missing, wrongBody, duplicates: records.length - byId.size, records };
}

async function stopCrowd(c: CrowdProcess): Promise<void> {
  c.kill('SIGTERM');
  await c.exited;
}

test.serial('N messages over HTTP: every acknowledged id is in the queue, confirmed, with its body, message-id, content-type and kept headers', async (t) => {
  const queue = uniqueTopic('amqp-leads');
  await declareQueue(queue);
  t.teardown(() => deleteQueue(queue));
  const crowd = await startCrowd({
    config: { sinks: { events: amqpSink({ routingKey: queue }) }, routes: [{ path: '/leads', key: 'header:x-shop', keepHeaders: ['x-shop'], sinks: ['events'] }] },
  });
  t.teardown(() => crowd.kill('SIGKILL'));
  // A count, not a time: a busy machine makes the run longer, never the check weaker.
  const load = runLoad(crowd.port, '/leads', 16, (n) => ({ 'x-shop': `shop-${n % 7}` }));
  await load.untilAcked(600);
  const result = await load.stop();
  const report = await awaitDelivery(queue, result.acked);
  const { records, ...figures } = report;
  t.log(figures);
  t.is(report.missing, 0);
  t.is(report.wrongBody, 0);
  for (const r of records) {
    const n = (JSON.parse(r.body) as { n: number }).n;
    t.is(r.contentType, 'application/json');
    t.is(r.deliveryMode, 2, 'persistent by default');
    t.is(String(r.headers['x-shop']), `shop-${n % 7}`);
    t.is(String(r.headers['crowd-key']), `shop-${n % 7}`);
    t.is(r.routingKey, queue);
  }
  const stats = (await adminGet<{ sinks: Record<string, { delivered: number; backlogBytes: number; healthy: boolean }> }>(crowd, '/stats')).doc;
  t.true(stats.sinks.events.delivered >= result.acked.size);
  t.is(stats.sinks.events.backlogBytes, 0);
  t.true(stats.sinks.events.healthy);
  await stopCrowd(crowd);
});

test.serial('unroutable messages (no queue takes them) are dead-lettered with the reason unroutable; routable ones of the same sink arrive', async (t) => {
  const queue = uniqueTopic('amqp-routable');
  await declareQueue(queue);
  t.teardown(() => deleteQueue(queue));
  // {key} in the routing key: the x-dest header picks the queue; "nowhere-..." has none.
  const crowd = await startCrowd({
    config: { sinks: { events: amqpSink({ routingKey: '{key}' }) }, routes: [{ path: '/leads', key: 'header:x-dest', sinks: ['events'] }] },
  });
  t.teardown(() => crowd.kill('SIGKILL'));
  const lost = new Set<string>();
  const kept = new Map<string, string>();
  for (let i = 0; i < 6; i++) {
    const body = JSON.stringify({ i });
    const toNowhere = i % 2 === 0;
    const r = await rawRequest(crowd.port, post('/leads', body, { 'x-dest': toNowhere ? `nowhere-${queue}` : queue }));
    t.is(r.status, 200);
    const id = (JSON.parse(r.body) as { id: string }).id;
    if (toNowhere) lost.add(id);
    else kept.set(id, body);
  }
  const report = await awaitDelivery(queue, kept);
  t.is(report.missing, 0);
  t.false(report.records.some((r) => lost.has(r.messageId)));
  let dlq = await awaitNonEmpty(() => readDeadLetters(crowd.dataDir, 'leads.dlq'));
  for (let i = 0; i < 50 && dlq.length < lost.size; i++) {
    await sleep(200);
    dlq = await readDeadLetters(crowd.dataDir, 'leads.dlq');
  }
  t.deepEqual(new Set(dlq.map((d) => d.id)), lost);
  for (const d of dlq) t.regex(d.headers['crowd-dlq-reason'], /^unroutable\b/);
  const stats = (await adminGet<{ sinks: Record<string, { failed: number; delivered: number }> }>(crowd, '/stats')).doc;
  t.is(stats.sinks.events.failed, lost.size);
  await stopCrowd(crowd);
});

test.serial('mandatory: false: an unroutable message is confirmed and counted delivered (dropped by the broker, as asked)', async (t) => {
  const crowd = await startCrowd({ config: { sinks: { events: amqpSink({ routingKey: 'nowhere-{topic}', mandatory: false }) }, routes: [{ path: '/leads', sinks: ['events'] }] } });
  t.teardown(() => crowd.kill('SIGKILL'));
  t.is((await rawRequest(crowd.port, post('/leads', '{"a":1}'))).status, 200);
  let delivered = 0;
  for (let i = 0; i < 100 && delivered === 0; i++) {
    await sleep(100);
    delivered = (await adminGet<{ sinks: Record<string, { delivered: number }> }>(crowd, '/stats')).doc.sinks.events.delivered;
  }
  t.is(delivered, 1);
  t.deepEqual(await readDeadLetters(crowd.dataDir, 'leads.dlq'), []);
  await stopCrowd(crowd);
});

test.serial('broker stopped ~20 s under load: crowd keeps answering 200; every acknowledged id arrives (missing = 0, duplicates counted)', async (t) => {
  t.timeout(600_000);
  const queue = uniqueTopic('amqp-outage');
  await declareQueue(queue);
  t.teardown(() => deleteQueue(queue));
  const downSeconds = faultSeconds(20, 120);
  const o = await brokerOutage(t, amqpSink({ routingKey: queue }), downSeconds, longFaults ? 2 : 4, { begin: stopRabbit, end: startRabbit }, async (crowd) => ({
    acceptedWhileDown: (await rawRequest(crowd.port, post('/leads', '{"during":"outage"}'))).status,
    healthyWhileDown: (await adminGet<{ sinks: Record<string, { healthy: boolean }> }>(crowd, '/readyz')).doc.sinks.events.healthy,
  }));
  const drainStart = Date.now();
  const report = await awaitDelivery(queue, o.result.acked, longFaults ? 300_000 : 120_000);
  recordFigures(t, `RabbitMQ stopped ${o.downSeconds} s under load, then back`, {
    acknowledged: report.acknowledged, inQueue: report.inQueue, missing: report.missing, duplicates: report.duplicates,
    refused: o.result.refused, clientErrors: o.result.errors, drainSeconds: (Date.now() - drainStart) / 1000,
  });
  t.true(o.result.acked.size > 500, `${o.result.acked.size} acknowledged`);
  t.is(o.probe.acceptedWhileDown, 200);
  t.false(o.probe.healthyWhileDown, 'the sink says it is not connected while the broker is down');
  t.is(o.result.refused, 0);
  t.is(report.missing, 0);
  t.is(report.wrongBody, 0);
  await stopCrowd(o.crowd);
});

test.serial('a hung broker (SIGSTOP: connection open, no confirm): after confirmTimeout the connection is dropped and its messages sent again; all arrive once it answers', async (t) => {
  t.timeout(300_000);
  const queue = uniqueTopic('amqp-hung');
  await declareQueue(queue);
  t.teardown(() => deleteQueue(queue));
  const o = await brokerOutage(t, amqpSink({ routingKey: queue, confirmTimeout: '2s' }), 10, 2, { begin: pauseRabbit, end: resumeRabbit }, async (crowd) =>
    (await adminGet<{ sinks: Record<string, { healthy: boolean; health?: string }> }>(crowd, '/stats')).doc.sinks.events);
  const report = await awaitDelivery(queue, o.result.acked, 120_000);
  t.log({ whileHung: o.probe, acknowledged: report.acknowledged, missing: report.missing, duplicates: report.duplicates });
  t.true(o.result.acked.size > 100, `only ${o.result.acked.size} acknowledged`);
  t.false(o.probe.healthy, 'not "connected" while the broker confirms nothing');
  t.regex(o.crowd.output(), /no confirm within 2000 ms/);
  t.is(report.missing, 0);
  await stopCrowd(o.crowd);
});

test.serial('an exchange that does not exist: nothing is dead-lettered, the sink says why, and all arrives once the exchange is declared', async (t) => {
  t.timeout(120_000);
  const queue = uniqueTopic('amqp-noexchange');
  const exchange = `ex-${queue}`;
  await declareQueue(queue);
  t.teardown(async () => {
    await deleteQueue(queue);
    await deleteExchange(exchange);
  });
  const crowd = await startCrowd({ config: { sinks: { events: amqpSink({ exchange, routingKey: 'r' }) }, routes: [{ path: '/leads', sinks: ['events'] }] } });
  t.teardown(() => crowd.kill('SIGKILL'));
  const acked = new Map<string, string>();
  for (let i = 0; i < 5; i++) {
    const body = JSON.stringify({ i });
    const r = await rawRequest(crowd.port, post('/leads', body));
    t.is(r.status, 200);
    acked.set((JSON.parse(r.body) as { id: string }).id, body);
  }
  let seenError = false;
  for (let i = 0; i < 100 && !seenError; i++) {
    await sleep(100);
    seenError = /NOT_FOUND/.test(crowd.output());
  }
  t.true(seenError, 'the broker\'s 404 NOT_FOUND is in the log');
  await declareExchange(exchange, queue, 'r');
  const report = await awaitDelivery(queue, acked);
  t.is(report.missing, 0);
  t.deepEqual(await readDeadLetters(crowd.dataDir, 'leads.dlq'), []);
  await stopCrowd(crowd);
});

test.serial('ack delivered: 200 only once the broker confirmed it (it is in the queue); 503 while the broker is down', async (t) => {
  t.timeout(300_000);
  const queue = uniqueTopic('amqp-delivered');
  await declareQueue(queue);
  t.teardown(() => deleteQueue(queue));
  const crowd = await startCrowd({
    config: { ingest: { ackTimeout: '3s' }, sinks: { events: amqpSink({ routingKey: queue }) }, routes: [{ path: '/orders', ack: 'delivered', sinks: ['events'] }] },
  });
  t.teardown(() => crowd.kill('SIGKILL'));
  const seen: AmqpRecord[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const r = await rawRequest(crowd.port, post('/orders', JSON.stringify({ i })));
      t.is(r.status, 200);
      const id = (JSON.parse(r.body) as { id: string }).id;
      // Read straight after the answer: it must already be in the queue.
      await drainQueue(queue, seen);
      t.true(seen.some((rec) => rec.messageId === id), `id ${id} in the queue when 200 came`);
    }
    await stopRabbit();
    const r = await rawRequest(crowd.port, post('/orders', '{"while":"down"}'), 6000);
    t.is(r.status, 503);
    t.is((JSON.parse(r.body) as { code: string }).code, 'CROWD_ACK_TIMEOUT');
  } finally {
    await startRabbit();
  }
  await stopCrowd(crowd);
});

test.serial('a non-amqp url stops crowd at start with a message naming the field', async (t) => {
  const dir = tempDir();
  const cfg = writeConfig(dir, { sinks: { events: { type: 'amqp', url: 'amqp://' } }, routes: [{ path: '/a', sinks: ['events'] }] });
  const r = await runCli(['start', '--config', cfg], { CROWD_DATA_DIR: `${dir}/data`, CROWD_PORT: '0', CROWD_ADMIN_PORT: '0' });
  t.not(r.code, 0);
  t.regex(r.stdout + r.stderr, /\/sinks\/events\/url/);
});
