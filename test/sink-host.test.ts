// The sink host in process, against a scripted sink: what it does with each outcome a sink
// reports, read from a real lane log.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import type { CrowdConfig } from '../src/config/types.js';
import { encodeEnvelopeReference } from '../src/envelope/envelope-codec.js';
import { LaneControl, STAT, createLaneControl } from '../src/lanes/lane-control.js';
import { CursorStore, type LaneCursors } from '../src/log/cursors.js';
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

interface Lane {
  dataDir: string;
  control: SharedArrayBuffer;
  /** Log offset after the last record. */
  end: number;
}

/** A data dir whose lane 0 holds one fsynced record per id (topic "t"). */
function laneWith(ids: string[]): Lane {
  const dataDir = tempDir('crowd-sink-host-');
  const { log } = LaneLog.open(dataDir, 0, 1 << 20);
  const frames = sealedFrames(ids.map((id) => Buffer.from(encodeEnvelopeReference({
    id, topic: 't', receivedAtMs: Date.now(), key: '', headers: [], contentType: 'application/json', body: Buffer.from('{}'), method: 'POST', path: '/t', query: '',
  }))));
  log.write(frames, frames.length);
  log.sync();
  const end = log.endOffset();
  log.close();
  const control = createLaneControl();
  new LaneControl(control).stats[STAT.SYNCED_OFFSET] = end;
  return { dataDir, control, end };
}

/** A started host with `sink` fed from the lane (route topic "t"). */
async function startHost(sink: Sink, lane: Lane, retryDelayMs?: (attempt: number) => number): Promise<SinkHost> {
  const base = loadConfig({ env: { CROWD_DATA_DIR: lane.dataDir } });
  const config: CrowdConfig = { ...base, routes: [{ ...base.dynamicRoute, path: '/t', topic: 't', sinks: [sink.name] }] };
  const host = new SinkHost(config, createLogger('silent', 'test'), [lane.control], new SharedArrayBuffer(8), [], [sink], retryDelayMs);
  await host.start();
  return host;
}

function savedCursors(lane: Lane, sink: Sink): LaneCursors {
  return (JSON.parse(fs.readFileSync(path.join(lane.dataDir, 'cursors', `${sink.name}.json`), 'utf8')) as { lanes: LaneCursors }).lanes;
}

async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

test('a message\'s backoff follows its own attempts, not how often other messages were retried', async (t) => {
  // "a" is retried 6 times quickly (the sink names the delay); then "b" fails for the first
  // time. The delay of "b"'s retry must be computed for its first retry, however many
  // retries the sink had before (it used to take the sink-wide count, 7: 2.5 s or more).
  let failB: Done | null = null;
  const sink = new ScriptedSink('s', (id, attempt, done) => {
    if (id === 'b') {
      if (attempt === 1) failB = done;
      else done({ kind: 'delivered' });
      return;
    }
    if (attempt <= 6) return setImmediate(() => done({ kind: 'retry', reason: 'scripted', afterMs: 1 }));
    done({ kind: 'delivered' });
    failB!({ kind: 'retry', reason: 'scripted' });
  });
  const asked: number[] = [];
  const host = await startHost(sink, laneWith(['a', 'b']), (attempt) => {
    asked.push(attempt);
    return 1;
  });
  try {
    t.true(await until(() => (sink.sentAt.get('b')?.length ?? 0) >= 2), '"b" is sent again');
    t.deepEqual(asked, [1], 'the host asked for the delay of a first retry, once ("a" named its own)');
    t.is(sink.sentAt.get('a')!.length, 7);
    t.is(host.stats().s.retries, 7, 'the stats still count every retry of the sink');
  } finally {
    await host.stop(0);
  }
});

test('cursors: the sink\'s file is read once at start and committed from memory, keeping lanes it has no feed for', async (t) => {
  const sink = new ScriptedSink('cursor-sink', (_id, _attempt, done) => done({ kind: 'delivered' }));
  const load = CursorStore.prototype.load;
  let loads = 0;
  CursorStore.prototype.load = function (this: CursorStore, consumer: string) {
    if (consumer === sink.name) loads++;
    return load.call(this, consumer);
  };
  try {
    // Lane 9 has no log here (a lane count that was larger once): its position stays as it was.
    const lane = laneWith(['a', 'b', 'c']);
    new CursorStore(lane.dataDir).commit(sink.name, { '9': 4242 });
    const host = await startHost(sink, lane);
    try {
      t.true(await until(() => savedCursors(lane, sink)['0'] === lane.end), 'the timer commits lane 0 at the end of what was delivered');
    } finally {
      await host.stop(0);
    }
    t.deepEqual(savedCursors(lane, sink), { '0': lane.end, '9': 4242 });
    t.is(loads, 1, 'read at start only, not again at each commit');
  } finally {
    CursorStore.prototype.load = load;
  }
});

test('a host started again on the same data dir resumes at the committed cursor', async (t) => {
  const lane = laneWith(['a', 'b', 'c']);
  // First run: "a" and "b" are delivered, "c" is not (its retry is far off).
  const first = new ScriptedSink('resume-sink', (id, _attempt, done) => done(id === 'c' ? { kind: 'retry', reason: 'scripted', afterMs: 600_000 } : { kind: 'delivered' }));
  const host1 = await startHost(first, lane);
  try {
    t.true(await until(() => host1.stats()['resume-sink'].delivered === 2 && first.sentAt.has('c')));
  } finally {
    await host1.stop(0);
  }
  t.true(savedCursors(lane, first)['0'] < lane.end, 'the cursor stops before "c"');
  const second = new ScriptedSink('resume-sink', (_id, _attempt, done) => done({ kind: 'delivered' }));
  const host2 = await startHost(second, lane);
  try {
    t.true(await until(() => second.sentAt.has('c')));
    t.deepEqual([...second.sentAt.keys()], ['c'], 'what was delivered before is not sent again');
  } finally {
    await host2.stop(0);
  }
  t.is(savedCursors(lane, second)['0'], lane.end);
});
