// The sink host when reading the log fails (an I/O error): the read is tried again after a
// pause, the failure is the sink's health, and deliveries resume by themselves once the log
// reads again. The failure is made real: the lane's segment is, for a while, a directory
// (read(2) on it fails with EISDIR, as EIO would on a failing disk).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import type { CrowdConfig } from '../src/config/types.js';
import { encodeEnvelopeReference } from '../src/envelope/envelope-codec.js';
import { LaneControl, STAT, createLaneControl } from '../src/lanes/lane-control.js';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog, listSegments } from '../src/log/lane-log.js';
import { createLogger } from '../src/logger.js';
import { SinkHost } from '../src/sinks/sink-host.js';
import type { DeliveryOutcome, OutboundMessage, Sink, SinkHealth } from '../src/sinks/sink-types.js';
import { tempDir } from './helpers/crowd-process.js';

class CollectingSink implements Sink {
  readonly got: string[] = [];
  constructor(readonly name: string) {}
  async start(): Promise<void> {}
  send(m: OutboundMessage, done: (o: DeliveryOutcome) => void): boolean {
    this.got.push(m.envelope.id);
    done({ kind: 'delivered' });
    return true;
  }
  health(): SinkHealth {
    return { healthy: true, detail: 'collecting' };
  }
  async close(): Promise<void> {}
}

async function until(cond: () => boolean, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

test('a log read that fails is the sink\'s health and is retried; deliveries resume by themselves', async (t) => {
  const dataDir = tempDir('crowd-sink-read-');
  const ids = Array.from({ length: 50 }, (_, i) => `m${i}`);
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

  // The segment becomes unreadable: a directory where it was.
  const segment = listSegments(path.join(dataDir, 'log', 'lane-0'))[0].file;
  const aside = `${segment}.aside`;
  fs.renameSync(segment, aside);
  fs.mkdirSync(segment);

  const sink = new CollectingSink('s');
  const base = loadConfig({ env: { CROWD_DATA_DIR: dataDir } });
  const config: CrowdConfig = { ...base, routes: [{ ...base.dynamicRoute, path: '/t', topic: 't', sinks: ['s'] }] };
  const host = new SinkHost(config, createLogger('silent', 'test'), [control], new SharedArrayBuffer(8), [], [sink]);
  try {
    await host.start();
    t.true(await until(() => !host.stats().s.healthy), 'the read failure shows as health');
    t.regex(host.stats().s.health, /disk: read: .*EISDIR/);
    t.is(sink.got.length, 0);

    fs.rmdirSync(segment);
    fs.renameSync(aside, segment);
    t.true(await until(() => sink.got.length === ids.length), `delivered ${sink.got.length}`);
    t.deepEqual(sink.got, ids);
    t.true(await until(() => host.stats().s.healthy), host.stats().s.health);
  } finally {
    await host.stop();
  }
});
