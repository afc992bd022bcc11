// The load helper the crash and sink tests stand on (test/helpers/load.ts) is driven by counts:
// against a crowd made slow on purpose (a log that stores 300 records/s, as a busy CI machine
// would), `loadUntilAcked(n)` still returns n acknowledgements, where "1 s of load" gave a
// third of them; and `untilAcked` fails with the counts when its overall timeout passes.
import test from 'ava';
import { startCrowd } from './helpers/crowd-process.js';
import { loadUntilAcked, runLoad } from './helpers/load.js';

test.serial('loadUntilAcked returns n acknowledgements from a slow crowd; untilAcked names the counts when its timeout passes', async (t) => {
  const crowd = await startCrowd({ config: { threads: { acceptors: 1, lanes: 1 } }, env: { CROWD_FAULT_LANE_RECORDS_PER_SEC: '300' } });
  try {
    const t0 = Date.now();
    const r = await loadUntilAcked(crowd.port, '/slow', 8, 600);
    t.log({ acknowledged: r.acked.size, ms: Date.now() - t0 });
    t.true(r.acked.size >= 600, `${r.acked.size} acknowledged`);
    t.is(r.refused + r.errors, 0);

    const load = runLoad(crowd.port, '/slow', 4);
    const e = await t.throwsAsync(load.untilAcked(1_000_000, 300));
    t.regex(e!.message, /^only \d+ of 1000000 requests acknowledged within 300 ms/);
    const stopped = await load.stop();
    t.true(stopped.acked.size < 1_000_000);
  } finally {
    crowd.kill('SIGTERM');
    await crowd.exited;
  }
});
