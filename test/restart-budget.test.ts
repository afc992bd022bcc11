// Lane restarts are counted in a time window, not over the process's life, and a lane past its
// budget is started again after a bounded pause, never left down for good (lanes/restart-budget.ts).
import test from 'ava';
import { RestartBudget } from '../src/lanes/restart-budget.js';

test('deaths spread wider than the window always restart at once', (t) => {
  const b = new RestartBudget(5, 60_000);
  for (let i = 0; i < 100; i++) t.is(b.pauseAfterDeath(i * 13_000), 0, `death ${i}`);
});

test('a burst past the budget pauses, growing to the cap, and never stops restarts', (t) => {
  const b = new RestartBudget(5, 60_000, 1000, 30_000);
  const pauses = Array.from({ length: 12 }, () => b.pauseAfterDeath(1000));
  t.deepEqual(pauses, [0, 0, 0, 0, 0, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  // Once the burst is older than the window, a death restarts at once again.
  t.is(b.pauseAfterDeath(1000 + 60_000), 0);
  t.is(b.recent(1000 + 60_000), 1);
});
