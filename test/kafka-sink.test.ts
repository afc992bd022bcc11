// The Kafka sink against a real Apache Kafka broker (scripts/kafka.sh, KRaft), read back with
// kcat. Serial: one test stops and starts the shared broker.
import test from 'ava';
import { runCli, startCrowd, type CrowdProcess } from './helpers/crowd-process.js';
import { kafkaSink, pauseBroker, readTopic, resumeBroker, startBroker, stopBroker, uniqueTopic, type KafkaRecord } from './helpers/kafka.js';
import { faultSeconds, longFaults, recordFigures } from './helpers/figures.js';
import { loadUntilAcked } from './helpers/load.js';
import { adminGet, brokerOutage, type BrokerFault } from './helpers/outage.js';
import { post, rawRequest } from './helpers/raw-http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const shopHeader = (n: number) => ({ 'x-shop': `shop-${n % 7}` });

/** Waits until the topic holds every acknowledged id (or the time is up); returns the report. */
async function awaitDelivery(topic: string, acked: Map<string, string>, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  let records: KafkaRecord[] = [];
  for (;;) {
    records = await readTopic(topic);
    const ids = new Set(records.map((r) => r.headers['crowd-id']));
    if ([...acked.keys()].every((id) => ids.has(id)) || Date.now() > until) break;
    await sleep(500);
  }
  const byId = new Map<string, KafkaRecord[]>();
  for (const r of records) byId.set(r.headers['crowd-id'], [...(byId.get(r.headers['crowd-id']) ?? []), r]);
  let missing = 0;
  let wrongBody = 0;
  for (const [id, body] of acked) {
    const got = byId.get(id);
    if (!got) missing++;
    else if (got[0].value !== body) wrongBody++;
  }
  const duplicates = records.length - byId.size;
  return { acknowledged: acked.size, inTopic: records.length, missing, wrongBody, duplicates, records };
}

/** Polls `crowd log dump --topic <topic>` until dead letters show up (or ~10-20 s pass). */
async function awaitDeadLetters(dataDir: string, topic: string, tries = 50): Promise<Array<{ id: string; headers: Record<string, string> }>> {
  for (let i = 0; i < tries; i++) {
    await sleep(200);
    const r = await runCli(['log', 'dump', '--data-dir', dataDir, '--topic', topic]);
    const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; headers: Record<string, string> });
    if (lines.length > 0) return lines;
  }
  return [];
}

async function stopCrowd(c: CrowdProcess): Promise<void> {
  c.kill('SIGTERM');
  await c.exited;
}

test.serial('N messages over HTTP: the same bodies, keys and ids in the topic, in order per key', async (t) => {
  const topic = uniqueTopic('leads');
  const crowd = await startCrowd({
    config: { sinks: { events: kafkaSink(topic, { compression: 'lz4' }) }, routes: [{ path: '/leads', key: 'header:x-shop', keepHeaders: ['x-shop'], sinks: ['events'] }] },
  });
  t.teardown(() => crowd.kill('SIGKILL')); // also when an assertion ends the test early
  const result = await loadUntilAcked(crowd.port, '/leads', 16, 1500, { extraHeaders: shopHeader });
  const report = await awaitDelivery(topic, result.acked);
  const { records, ...figures } = report;
  t.log(figures);
  t.true(result.acked.size >= 1500, `${result.acked.size} acknowledged`);
  t.is(report.missing, 0);
  t.is(report.wrongBody, 0);
  for (const r of records) {
    const n = (JSON.parse(r.value) as { n: number }).n;
    t.is(r.key, `shop-${n % 7}`);
    t.is(r.headers['content-type'], 'application/json');
    t.is(r.headers['x-shop'], `shop-${n % 7}`);
  }
  // Order per key: for each key, Kafka holds the ids in the order crowd accepted them (its log
  // order). (Not the clients' send order: 16 connections race each other to crowd.)
  const dump = await runCli(['log', 'dump', '--data-dir', crowd.dataDir, '--topic', 'leads']);
  const logOrder = new Map<string, string[]>();
  for (const l of dump.stdout.split('\n').filter(Boolean)) {
    const d = JSON.parse(l) as { id: string; key: string };
    logOrder.set(d.key, [...(logOrder.get(d.key) ?? []), d.id]);
  }
  const kafkaOrder = new Map<string, string[]>();
  for (const r of [...records].sort((a, b) => a.offset - b.offset)) kafkaOrder.set(r.key!, [...(kafkaOrder.get(r.key!) ?? []), r.headers['crowd-id']]);
  t.is(kafkaOrder.size, 7);
  for (const [key, ids] of kafkaOrder) t.deepEqual(ids, logOrder.get(key), `order of key ${key}`);
  const stats = (await adminGet<{ sinks: Record<string, { delivered: number; backlogBytes: number; healthy: boolean }> }>(crowd, '/stats')).doc;
  t.true(stats.sinks.events.delivered >= result.acked.size);
  t.is(stats.sinks.events.backlogBytes, 0);
  t.true(stats.sinks.events.healthy);
  await stopCrowd(crowd);
});

test.serial('fan-out: one route, two Kafka sinks, both topics complete', async (t) => {
  const a = uniqueTopic('fan-a');
  const b = uniqueTopic('fan-b');
  const crowd = await startCrowd({ config: { sinks: { a: kafkaSink(a), b: kafkaSink(b, { format: 'envelope' }) }, routes: [{ path: '/events', sinks: ['a', 'b'] }] } });
  t.teardown(() => crowd.kill('SIGKILL')); // also when an assertion ends the test early
  const result = await loadUntilAcked(crowd.port, '/events', 8, 500);
  const ra = await awaitDelivery(a, result.acked);
  const rb = await awaitDelivery(b, new Map([...result.acked].map(([id]) => [id, ''])));
  t.log({ a: { acknowledged: ra.acknowledged, inTopic: ra.inTopic, missing: ra.missing, duplicates: ra.duplicates }, b: { inTopic: rb.inTopic, missing: rb.missing, duplicates: rb.duplicates } });
  t.true(result.acked.size >= 500, `${result.acked.size} acknowledged`);
  t.is(ra.missing, 0);
  t.is(rb.missing, 0);
  t.true(rb.records.every((r) => r.value.length > 0 && r.headers['crowd-id'] !== undefined));
  await stopCrowd(crowd);
});

test.serial('a message too large for Kafka goes to the dead letters with its reason', async (t) => {
  const topic = uniqueTopic('dlq');
  const crowd = await startCrowd({
    config: { sinks: { events: kafkaSink(topic, { librdkafka: { 'message.max.bytes': 2000 } }) }, routes: [{ path: '/leads', sinks: ['events'] }] },
  });
  t.teardown(() => crowd.kill('SIGKILL')); // also when an assertion ends the test early
  const big = await rawRequest(crowd.port, post('/leads', JSON.stringify({ big: 'z'.repeat(5000) })));
  const small = await rawRequest(crowd.port, post('/leads', '{"small":1}'));
  t.is(big.status, 200);
  t.is(small.status, 200);
  const bigId = (JSON.parse(big.body) as { id: string }).id;
  const report = await awaitDelivery(topic, new Map([[(JSON.parse(small.body) as { id: string }).id, '{"small":1}']]));
  t.is(report.missing, 0);
  const dlq = await awaitDeadLetters(crowd.dataDir, 'leads.dlq');
  t.is(dlq.length, 1);
  t.is(dlq[0].id, bigId);
  t.regex(dlq[0].headers['crowd-dlq-reason'], /MSG_SIZE_TOO_LARGE/);
  const stats = (await adminGet<{ sinks: Record<string, { failed: number }> }>(crowd, '/stats')).doc;
  t.is(stats.sinks.events.failed, 1);
  t.false((await readTopic(topic)).some((r) => r.headers['crowd-id'] === bigId));
  await stopCrowd(crowd);
});

test.serial('a message the broker refuses for good (over its size limit) is dead-lettered from its delivery report', async (t) => {
  const topic = uniqueTopic('dlq-broker');
  const crowd = await startCrowd({
    config: {
      sinks: { events: kafkaSink(topic, { librdkafka: { 'message.max.bytes': 5_000_000 } }) },
      routes: [{ path: '/leads', maxBodyBytes: 2_000_000, sinks: ['events'] }],
    },
  });
  t.teardown(() => crowd.kill('SIGKILL')); // also when an assertion ends the test early
  const big = await rawRequest(crowd.port, post('/leads', 'q'.repeat(1_500_000), { 'Content-Type': 'text/plain' }), 1000);
  t.is(big.status, 200);
  const bigId = (JSON.parse(big.body) as { id: string }).id;
  const dlq = await awaitDeadLetters(crowd.dataDir, 'leads.dlq', 100);
  t.is(dlq.length, 1);
  t.is(dlq[0].id, bigId);
  t.regex(dlq[0].headers['crowd-dlq-reason'], /ERR_MSG_SIZE_TOO_LARGE/);
  await stopCrowd(crowd);
});

/** How the broker goes away and comes back: stopped and started, or frozen and thawed. */
const STOPPED: BrokerFault = { begin: stopBroker, end: startBroker };
/** SIGSTOP / SIGCONT: connections stay open and nothing answers (helpers/kafka.ts). */
const HUNG: BrokerFault = { begin: pauseBroker, end: resumeBroker };

test.serial('broker down ~20 s under load: crowd keeps answering 200; every acknowledged id arrives', async (t) => {
  t.timeout(600_000);
  const downSeconds = faultSeconds(20, 120);
  const topic = uniqueTopic('outage');
  const o = await brokerOutage(t, kafkaSink(topic), downSeconds, longFaults ? 2 : 8, STOPPED, async (crowd) => ({
    acceptedWhileDown: (await rawRequest(crowd.port, post('/leads', '{"during":"outage"}'))).status,
    readyWhileDown: (await adminGet(crowd, '/readyz')).status,
  }));
  t.log({ brokerDownSeconds: o.downSeconds });
  t.is(o.probe.acceptedWhileDown, 200);
  t.is(o.probe.readyWhileDown, 200, 'a sink down does not make crowd unready: the log holds the backlog');
  const drainStart = Date.now();
  const report = await awaitDelivery(topic, o.result.acked, longFaults ? 300_000 : 90_000);
  recordFigures(t, `Kafka broker stopped ${downSeconds} s under load, then back`, {
    acknowledged: report.acknowledged, inTopic: report.inTopic, missing: report.missing, duplicates: report.duplicates,
    refused: o.result.refused, clientErrors: o.result.errors, drainSeconds: (Date.now() - drainStart) / 1000, totalSeconds: (Date.now() - o.loadStartedAt) / 1000,
  });
  t.is(o.result.refused, 0, 'no refusals while the broker was down');
  t.is(report.missing, 0);
  if (report.missing > 0) t.log(o.crowd.output().split('\n').filter((l) => /kafka|sink|dead/.test(l)).slice(-30).join('\n'));
  await stopCrowd(o.crowd);
});

test.serial('broker down longer than deliveryTimeout: timed-out messages are sent again from the log; nothing missing', async (t) => {
  t.timeout(400_000);
  const topic = uniqueTopic('longoutage');
  const downSeconds = faultSeconds(12, 120);
  const o = await brokerOutage(t, kafkaSink(topic, { deliveryTimeout: '3s' }), downSeconds, longFaults ? 2 : 8, STOPPED, async (crowd) =>
    (await adminGet<{ sinks: Record<string, { retries: number }> }>(crowd, '/stats')).doc.sinks.events.retries);
  const retriesWhileDown = o.probe;
  const drainStart = Date.now();
  const report = await awaitDelivery(topic, o.result.acked, longFaults ? 300_000 : 120_000);
  recordFigures(t, `Kafka down ${downSeconds} s, longer than the 3 s delivery timeout`, {
    acknowledged: report.acknowledged, inTopic: report.inTopic, missing: report.missing, duplicates: report.duplicates,
    retriesWhileDown, refused: o.result.refused, drainSeconds: (Date.now() - drainStart) / 1000,
  });
  t.true(retriesWhileDown > 0, 'messages timed out in librdkafka and were retried from the log');
  t.is(report.missing, 0);
  t.is(report.wrongBody, 0);
  await stopCrowd(o.crowd);
});

test.serial('a producer that delivers nothing for deliveryTimeout + 10 s is replaced: the sink says unhealthy, and all arrives once the broker is back', async (t) => {
  t.timeout(300_000);
  const topic = uniqueTopic('stall');
  // No delivery for 2 s + 10 s: the watchdog replaces the producer; new ones cannot connect.
  const o = await brokerOutage(t, kafkaSink(topic, { deliveryTimeout: '2s' }), 16, 2, STOPPED, async (crowd) =>
    (await adminGet<{ sinks: Record<string, { healthy: boolean; detail?: string }> }>(crowd, '/readyz')).doc.sinks.events);
  const healthWhileDown = o.probe;
  const report = await awaitDelivery(topic, o.result.acked, 120_000);
  t.log({ healthWhileDown, acknowledged: report.acknowledged, missing: report.missing, duplicates: report.duplicates });
  t.false(healthWhileDown.healthy, 'not "connected" while nothing can be delivered');
  t.regex(o.crowd.output(), /kafka_producer_stalled/);
  t.is(report.missing, 0, 'the replaced producer\'s messages were handed back and sent again');
  await stopCrowd(o.crowd);
});

test.serial('a hung broker (SIGSTOP: connections open, no answers) for deliveryTimeout + 10 s: the producer is replaced, and all arrives once it answers again', async (t) => {
  t.timeout(300_000);
  const topic = uniqueTopic('hung');
  // The stall is declared 2 s + 10 s after the last delivery; look a few seconds later.
  const o = await brokerOutage(t, kafkaSink(topic, { deliveryTimeout: '2s' }), 16, 2, HUNG, async (crowd) =>
    (await adminGet<{ sinks: Record<string, { healthy: boolean; detail?: string }> }>(crowd, '/readyz')).doc.sinks.events);
  const healthWhileHung = o.probe;
  const report = await awaitDelivery(topic, o.result.acked, 120_000);
  t.log({ healthWhileHung, acknowledged: report.acknowledged, missing: report.missing, duplicates: report.duplicates });
  t.true(o.result.acked.size > 100, `only ${o.result.acked.size} acknowledged`);
  t.false(healthWhileHung.healthy, 'not "connected" while the broker answers nothing');
  t.regex(o.crowd.output(), /kafka_producer_stalled/);
  t.is(report.missing, 0, 'the replaced producer\'s messages were handed back and sent again');
  await stopCrowd(o.crowd);
});

test.serial('crowd killed (SIGKILL) while a backlog drains, restarted: nothing missing', async (t) => {
  t.timeout(240_000);
  const topic = uniqueTopic('killdrain');
  // One message per produce request and one request at a time: a slow broker, so the drain
  // lasts several seconds and the kill below lands in the middle of it.
  const slow = { librdkafka: { 'batch.num.messages': 1, 'max.in.flight.requests.per.connection': 1 } };
  const config = { sinks: { events: kafkaSink(topic, slow) }, routes: [{ path: '/leads', sinks: ['events'] }] };
  await stopBroker();
  let first: CrowdProcess | null = null;
  try {
    first = await startCrowd({ config });
    t.teardown(() => first?.kill('SIGKILL')); // also when an assertion ends the test early
    // Broker unreachable at start: crowd starts, accepts, and says the sink is unhealthy.
    const ready = (await adminGet<{ status: string; sinks: Record<string, { healthy: boolean }> }>(first, '/readyz')).doc;
    t.is(ready.status, 'ready');
    t.false(ready.sinks.events.healthy);
    const result = await loadUntilAcked(first.port, '/leads', 8, 1000);
    await startBroker();
    // Let the backlog start draining, then kill crowd in the middle of it: once the sink
    // reports a quarter delivered (cursors have been committed along the way by then).
    for (let i = 0; i < 600; i++) {
      const stats = await adminGet<{ sinks: Record<string, { delivered: number }> }>(first, '/stats');
      if (stats.doc.sinks.events.delivered >= result.acked.size / 4) break;
      await sleep(50);
    }
    first.kill('SIGKILL');
    await first.exited;
    // How far the drain had got when crowd died: some of it, not all (that would make this a
    // plain restart test).
    const inTopicAtKill = (await readTopic(topic)).length;
    t.true(inTopicAtKill > 0 && inTopicAtKill < result.acked.size, `${inTopicAtKill} of ${result.acked.size} in the topic at the kill`);
    const second = await startCrowd({ dataDir: first.dataDir, config });
    t.teardown(() => second.kill('SIGKILL')); // also when an assertion ends the test early
    const report = await awaitDelivery(topic, result.acked, 90_000);
    recordFigures(t, 'crowd SIGKILLed while a Kafka backlog drains, restarted', {
      acknowledged: report.acknowledged, inTopicAtKill, inTopic: report.inTopic, missing: report.missing, duplicates: report.duplicates,
    });
    t.true(result.acked.size >= 1000);
    t.is(report.missing, 0);
    // Sent again: only what was delivered after the last committed cursor (a restart from the
    // log's start would send everything in the topic at the kill again).
    t.true(report.duplicates < inTopicAtKill, `${report.duplicates} duplicates, ${inTopicAtKill} delivered before the kill`);
    await stopCrowd(second);
  } finally {
    await startBroker();
  }
});

test.serial('ack delivered: 200 only once Kafka has it; 503 when the delivery report does not come in time', async (t) => {
  t.timeout(180_000);
  const topic = uniqueTopic('delivered');
  const crowd = await startCrowd({
    config: { ingest: { ackTimeout: '3s' }, sinks: { events: kafkaSink(topic) }, routes: [{ path: '/orders', ack: 'delivered', sinks: ['events'] }] },
  });
  t.teardown(() => crowd.kill('SIGKILL')); // also when an assertion ends the test early
  try {
    for (let i = 0; i < 5; i++) {
      const r = await rawRequest(crowd.port, post('/orders', JSON.stringify({ i })));
      t.is(r.status, 200);
      const id = (JSON.parse(r.body) as { id: string }).id;
      // Read straight after the answer: it must already be in the topic.
      t.true((await readTopic(topic)).some((rec) => rec.headers['crowd-id'] === id), `id ${id} in Kafka when 200 came`);
    }
    await stopBroker();
    const t0 = Date.now();
    const r = await rawRequest(crowd.port, post('/orders', '{"while":"down"}'), 6000);
    t.is(r.status, 503);
    t.is((JSON.parse(r.body) as { code: string }).code, 'CROWD_ACK_TIMEOUT');
    t.true(Date.now() - t0 >= 2500, 'it waited for the delivery report up to ackTimeout');
  } finally {
    await startBroker();
    await stopCrowd(crowd);
  }
});

test.serial('a dead sink does not hold back a live one: the live topic completes while the other broker is unreachable', async (t) => {
  const live = uniqueTopic('live');
  const crowd = await startCrowd({
    config: {
      sinks: { live: kafkaSink(live), dead: { type: 'kafka', brokers: ['127.0.0.1:1'], topic: 'never' } },
      routes: [{ path: '/events', sinks: ['live', 'dead'] }],
    },
  });
  t.teardown(() => crowd.kill('SIGKILL')); // also when an assertion ends the test early
  const result = await loadUntilAcked(crowd.port, '/events', 8, 500);
  t.true(result.acked.size >= 500, `only ${result.acked.size} acknowledged`);
  const report = await awaitDelivery(live, result.acked);
  const stats = (await adminGet<{ sinks: Record<string, { delivered: number; healthy: boolean; backlogBytes: number }> }>(crowd, '/stats')).doc;
  t.log({ acknowledged: result.acked.size, liveMissing: report.missing, dead: stats.sinks.dead });
  t.is(report.missing, 0);
  t.false(stats.sinks.dead.healthy);
  t.is(stats.sinks.dead.delivered, 0);
  t.true(stats.sinks.dead.backlogBytes > 0, 'the dead sink keeps its backlog in the log');
  await stopCrowd(crowd);
});

test.serial('a bad librdkafka option stops crowd at start with a message naming it', async (t) => {
  const dir = (await import('./helpers/crowd-process.js')).tempDir();
  const cfg = (await import('./helpers/crowd-process.js')).writeConfig(dir, {
    sinks: { events: kafkaSink('x', { librdkafka: { 'no.such.property': 1 } }) }, routes: [{ path: '/a', sinks: ['events'] }],
  });
  const r = await runCli(['start', '--config', cfg], { CROWD_DATA_DIR: `${dir}/data`, CROWD_PORT: '0', CROWD_ADMIN_PORT: '0' });
  t.not(r.code, 0);
  t.regex(r.stdout + r.stderr, /no\.such\.property/);
});
