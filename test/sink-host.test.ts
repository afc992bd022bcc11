// The sink host in process, against a scripted sink: what it does with each outcome a sink
// reports, read from a real lane log.
import test from 'ava';
import { loadConfig } from '../src/config/load.js';
import type { CrowdConfig } from '../src/config/types.js';
import { encodeEnvelopeReference } from '../src/envelope/envelope-codec.js';
import { LaneControl, STAT, createLaneControl } from '../src/lanes/lane-control.js';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog } from '../src/log/lane-log.js';
import { createLogger } from '../src/logger.js';
import { SinkHost } from '../src/sinks/sink-host.js';
import type { DeliveryOutcome, OutboundMessage, Sink, SinkHealth } from '../src/sinks/sink-types.js';
import { tempDir } from './helpers/crowd-process.js';

type Done = (o: DeliveryOutcome) => void;

/** A sink whose answers a test scripts per message id and attempt; it notes when each send came. */
class ScriptedSink implements Sink {
  readonly sentAt = new Map<string, number[]>();
  constructor(readonly name: string, private readonly answer: (id: string, attempt: number, done: Done) => void) {}
  async start(): Promise<void> {}
  send(m: OutboundMessage, done: Done): boolean {
    const id = m.envelope.id;
    const at = this.sentAt.get(id) ?? [];
    at.push(performance.now());
    this.sentAt.set(id, at);
    this.answer(id, at.length, done);
    return true;
  }
  health(): SinkHealth {
    return { healthy: true, detail: 'scripted' };
  }
  async close(): Promise<void> {}
}

/** A data dir whose lane 0 holds one fsynced record per id (topic "t"), and a host with `sink` on it. */
async function startHost(sink: Sink, ids: string[]): Promise<{ host: SinkHost; dataDir: string }> {
  const dataDir = tempDir('crowd-sink-host-');
  const { log } = LaneLog.open(dataDir, 0, 1 << 20);
  const frames = sealedFrames(ids.map((id) => Buffer.from(encodeEnvelopeReference({
    id, topic: 't', receivedAtMs: Date.now(), key: '', headers: [], contentType: 'application/json', body: Buffer.from('{}'), method: 'POST', path: '/t', query: '',
  }))));
  log.write(frames, frames.length);
  log.sync();
  const control = createLaneControl();
  new LaneControl(control).stats[STAT.SYNCED_OFFSET] = log.endOffset();
  log.close();
  const base = loadConfig({ env: { CROWD_DATA_DIR: dataDir } });
  const config: CrowdConfig = { ...base, routes: [{ ...base.dynamicRoute, path: '/t', topic: 't', sinks: [sink.name] }] };
  const host = new SinkHost(config, createLogger('silent', 'test'), [control], new SharedArrayBuffer(8), [], [sink]);
  await host.start();
  return { host, dataDir };
}

async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

test('a message\'s backoff follows its own attempts, not how often other messages were retried', async (t) => {
  // "a" is retried 6 times quickly (the sink names the delay); then "b" fails for the first
  // time. Its backoff is its first one (~100 ms), however many retries the sink had before.
  let failB: Done | null = null;
  let bFailedAt = 0;
  const sink = new ScriptedSink('s', (id, attempt, done) => {
    if (id === 'b') {
      if (attempt === 1) failB = done;
      else done({ kind: 'delivered' });
      return;
    }
    if (attempt <= 6) return setImmediate(() => done({ kind: 'retry', reason: 'scripted', afterMs: 1 }));
    done({ kind: 'delivered' });
    bFailedAt = performance.now();
    failB!({ kind: 'retry', reason: 'scripted' });
  });
  const { host } = await startHost(sink, ['a', 'b']);
  try {
    t.true(await until(() => (sink.sentAt.get('b')?.length ?? 0) >= 2), '"b" is sent again');
    const wait = sink.sentAt.get('b')![1] - bFailedAt;
    t.log({ firstBackoffOfBMs: Math.round(wait) });
    // A first retry waits 50-150 ms; with the sink-wide count (7 retries) it was 2.5 s or more.
    t.true(wait < 1000, `"b" waited ${wait} ms`);
    t.is(sink.sentAt.get('a')!.length, 7);
    t.is(host.stats().s.retries, 7, 'the stats still count every retry of the sink');
  } finally {
    await host.stop(0);
  }
});
