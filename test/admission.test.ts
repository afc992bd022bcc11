/**
 * Admission control arithmetic (src/acceptor/admission.ts) over real lane control blocks:
 * backlog limits follow the measured drain rate, Retry-After is backlog / rate clamped to
 * the configured bounds, and the log-quota Retry-After follows the slowest consumer.
 */
import test from 'ava';
import { Admission } from '../src/acceptor/admission.js';
import { createLaneControl, LaneControl, STAT } from '../src/lanes/lane-control.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const limits = { maxQueueDelayMs: 2000, maxPending: 50_000, minRetryAfterSeconds: 1, maxRetryAfterSeconds: 60 };

test('backlog limit is the drain rate times maxQueueDelay, floored and capped', async (t) => {
  const lanes = [new LaneControl(createLaneControl()), new LaneControl(createLaneControl())];
  const a = new Admission(lanes, limits);
  t.is(a.limit[0], 1024, 'before any measure: the floor');
  a.tick(() => 0);
  await sleep(200);
  a.answered[0] = 2000; // ~10,000/s on lane 0
  a.answered[1] = 1_000_000; // ~5M/s on lane 1: capped by maxPending
  a.tick(() => 0);
  t.true(a.limit[0] > 15_000 && a.limit[0] < 25_000, `lane 0 limit ${a.limit[0]}`);
  t.is(a.limit[1], 50_000);
  const ra = a.queueRetryAfter(0, 40_000);
  t.true(ra >= 3 && ra <= 5, `40,000 waiting at ~10,000/s: Retry-After ${ra}`);
  t.is(a.queueRetryAfter(0, 10), 1, 'never below the minimum');
});

test('a lane that stops answering falls back to the floor and gets the longest Retry-After', async (t) => {
  const lane = new LaneControl(createLaneControl());
  const a = new Admission([lane], limits);
  a.tick(() => 0);
  await sleep(100);
  a.answered[0] = 1000;
  a.tick(() => 500);
  t.true(a.limit[0] > 1024);
  // Nothing answered while requests wait: the rate decays toward 0 tick after tick.
  for (let i = 0; i < 40; i++) {
    await sleep(5);
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
