/**
 * Admission control arithmetic (src/acceptor/admission.ts) over real lane control blocks:
 * backlog limits follow the measured drain rate, Retry-After is backlog / rate clamped to
 * the configured bounds, and the log-quota Retry-After follows the slowest consumer.
 */
import test from 'ava';
import { Admission } from '../src/acceptor/admission.js';
import { createLaneControl, LaneControl, STAT } from '../src/lanes/lane-control.js';

/** A clock the test moves by hand, so every rate below is exact. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}
const limits = { maxQueueDelayMs: 2000, maxPending: 50_000, minRetryAfterSeconds: 1, maxRetryAfterSeconds: 60 };

test('backlog limit is the drain rate times maxQueueDelay, floored and capped', (t) => {
  const lanes = [new LaneControl(createLaneControl()), new LaneControl(createLaneControl())];
  const clock = manualClock();
  const a = new Admission(lanes, limits, clock.now);
  t.is(a.limit[0], 1024, 'before any measure: the floor');
  a.tick(() => 0);
  t.is(a.limit[0], 1024, 'no time passed: nothing measured');
  clock.advance(200);
  a.answered[0] = 2000; // 10,000/s on lane 0
  a.answered[1] = 1_000_000; // 5M/s on lane 1: capped by maxPending
  a.tick(() => 0);
  t.is(a.limit[0], 20_000, '10,000/s x maxQueueDelay 2 s');
  t.is(a.limit[1], 50_000);
  t.is(a.queueRetryAfter(0, 40_000), 4, '40,000 waiting at 10,000/s');
  t.is(a.queueRetryAfter(0, 10), 1, 'never below the minimum');
});

test('a lane that stops answering falls back to the floor and gets the longest Retry-After', (t) => {
  const lane = new LaneControl(createLaneControl());
  const clock = manualClock();
  const a = new Admission([lane], limits, clock.now);
  clock.advance(100);
  a.answered[0] = 1000;
  a.tick(() => 500);
  t.is(a.limit[0], 20_000, '10,000/s');
  // Nothing answered while requests wait: the rate decays toward 0 tick after tick (x0.7 each).
  a.tick(() => 5000);
  t.is(a.limit[0], 20_000, 'a tick with no time passed measures nothing');
  for (let i = 0; i < 2; i++) {
    clock.advance(5);
    a.tick(() => 5000);
  }
  t.is(Math.round(a.limit[0]), 9800, 'two empty ticks: 10,000/s x 0.7 x 0.7, x 2 s');
  for (let i = 0; i < 38; i++) {
    clock.advance(5);
    a.tick(() => 5000);
  }
  t.is(a.limit[0], 1024);
  t.is(a.queueRetryAfter(0, 5000), limits.maxRetryAfterSeconds);
});

test('log quota Retry-After: bytes to free over the slowest consumer rate; the cap when nothing moves', (t) => {
  const lanes = [new LaneControl(createLaneControl()), new LaneControl(createLaneControl())];
  const a = new Admission(lanes, limits);
  t.is(a.logRetryAfter(), 60, 'no consumer moving: the cap');
  lanes[0].stats[STAT.RETENTION_NEED_BYTES] = 64 * 1024 * 1024;
  lanes[0].stats[STAT.CONSUMER_RATE] = 8 * 1024 * 1024;
  t.is(a.logRetryAfter(), 8);
  lanes[1].stats[STAT.RETENTION_NEED_BYTES] = 1024 * 1024;
  lanes[1].stats[STAT.CONSUMER_RATE] = 1024 * 1024;
  t.is(a.logRetryAfter(), 1, 'the lane that frees a segment first decides');
});
