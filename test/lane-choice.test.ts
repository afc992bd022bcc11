// Item 6 of issue 17: the lane checks (state, backlog, quota) run on the lane that finally takes
// the record. A real Acceptor (uWS listener, real rings and lane controls) in this process, with
// lane 1 not ready and nothing reading its ring, answers real HTTP requests over loopback.
import test from 'ava';
import { loadConfig } from '../src/config/load.js';
import { Acceptor } from '../src/acceptor/acceptor.js';
import { sharedRouteState } from '../src/acceptor/shared-limits.js';
import { createLaneControl, LaneControl, LaneState } from '../src/lanes/lane-control.js';
import { createRingBuffer } from '../src/ring/spsc-ring.js';
import { post, rawExchange } from './helpers/raw-http.js';

/** FNV-1a, as crowd hashes a partition key to a lane (written out here, not imported). */
function fnv(k: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < k.length; i++) h = Math.imul(h ^ k.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function keyFor(lane: number, lanes: number, prefix: string): string {
  for (let i = 0; ; i++) if (fnv(`${prefix}${i}`) % lanes === lane) return `${prefix}${i}`;
}

/** The ring's published HEAD (what a lane would see). */
function published(ring: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(ring, 0, 1), 0);
}

async function withAcceptor(routes: unknown[], laneStates: LaneState[], run: (port: number, rings: SharedArrayBuffer[]) => Promise<void>): Promise<void> {
  const config = loadConfig({ env: {}, overrides: { routes, ingest: { ackTimeout: '1s' } } });
  const rings = laneStates.map(() => createRingBuffer(1 << 16));
  const laneControls = laneStates.map((s) => {
    const sab = createLaneControl();
    new LaneControl(sab).setState(s);
    return sab;
  });
  const acceptor = new Acceptor({ index: 0, config, port: 0, rings, laneControls, sinkWatermarks: null, routeState: sharedRouteState(config.routes) });
  const port = await acceptor.listen();
  try {
    await run(port, rings);
  } finally {
    acceptor.close();
  }
}

const turn = () => new Promise((r) => setTimeout(r, 20));

for (const ack of ['memory', 'durable'] as const) {
  test.serial(`ack ${ack}, json key: a key whose lane is not ready gets 503, its ring gets nothing; the ready lane takes its keys`, async (t) => {
    await withAcceptor([{ path: '/k', key: 'json:/k', ack }], [LaneState.Ready, LaneState.Failed], async (port, rings) => {
      for (let round = 0; round < 4; round++) {
        // Round robin would have picked lane 0, then 1, then 0...: every round must refuse.
        const dead = keyFor(1, 2, `dead-${round}-`);
        const before = published(rings[1]);
        const r = await rawExchange(port, post('/k', JSON.stringify({ k: dead })));
        t.is(r.status, 503, `round ${round}: ${r.raw.slice(0, 120)}`);
        t.is((JSON.parse(r.body) as { code: string }).code, 'CROWD_NOT_READY');
        await turn();
        t.is(published(rings[1]), before, 'nothing handed to a lane that does not read');
      }
      if (ack === 'memory') {
        const live = keyFor(0, 2, 'live-');
        const before = published(rings[0]);
        const r = await rawExchange(port, post('/k', JSON.stringify({ k: live })));
        t.is(r.status, 200);
        await turn();
        t.not(published(rings[0]), before, 'the ready lane took the record');
      }
    });
  });
}

test.serial('json key on an unwritable lane: 503 CROWD_LOG_UNAVAILABLE for that lane only', async (t) => {
  await withAcceptor([{ path: '/k', key: 'json:/k', ack: 'memory' }], [LaneState.Unwritable, LaneState.Ready], async (port, rings) => {
    const bad = await rawExchange(port, post('/k', JSON.stringify({ k: keyFor(0, 2, 'u-') })));
    t.is(bad.status, 503);
    t.is((JSON.parse(bad.body) as { code: string }).code, 'CROWD_LOG_UNAVAILABLE');
    t.false(bad.closed, 'the body was read: the connection is kept');
    const ok = await rawExchange(port, post('/k', JSON.stringify({ k: keyFor(1, 2, 'w-') })));
    t.is(ok.status, 200);
    await turn();
    t.is(published(rings[0]), 0);
    t.not(published(rings[1]), 0);
  });
});
