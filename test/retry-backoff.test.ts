// The retry delay of one message: exponential in its own attempts, capped, jittered.
import test from 'ava';
import { SINK_HOST_BACKOFF, retryBackoffMs } from '../src/sinks/retry-backoff.js';

test('the first retry waits about the initial delay; each attempt doubles it', (t) => {
  t.is(retryBackoffMs(1, 0.5), 100);
  t.is(retryBackoffMs(2, 0.5), 200);
  t.is(retryBackoffMs(3, 0.5), 400);
  t.is(retryBackoffMs(1, 0), 50, 'jitter: half at the low end');
  t.true(retryBackoffMs(1, 0.999999) < 150, 'jitter: under one and a half at the high end');
});

test('the delay is capped at 5 s before the jitter, for any attempt count', (t) => {
  t.is(retryBackoffMs(7, 0.5), SINK_HOST_BACKOFF.maxMs);
  t.is(retryBackoffMs(10, 0.5), 5000);
  t.is(retryBackoffMs(10_000, 0.5), 5000, 'no overflow, no wrap-around');
  t.is(retryBackoffMs(10, 0), 2500);
  t.true(retryBackoffMs(10, 0.999999) < 7500);
  let last = 0;
  for (let a = 1; a <= 64; a++) {
    const d = retryBackoffMs(a, 0.5);
    t.true(d >= last, `attempt ${a} waits no less than attempt ${a - 1}`);
    last = d;
  }
});

test('other limits (an HTTP sink\'s backoff setting)', (t) => {
  const limits = { initialMs: 250, maxMs: 30_000 };
  t.is(retryBackoffMs(1, 0.5, limits), 250);
  t.is(retryBackoffMs(5, 0.5, limits), 4000);
  t.is(retryBackoffMs(50, 0.5, limits), 30_000);
});
