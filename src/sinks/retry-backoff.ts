/**
 * How long a message waits before it is sent again: exponential in that message's own attempt
 * count (initial x 2^(attempt-1)), capped at `maxMs`, then jittered by a factor in [0.5, 1.5)
 * so that messages that failed together do not all come back at the same moment.
 */

export interface BackoffLimits {
  initialMs: number;
  maxMs: number;
}

/** The sink host's backoff for sinks that name no delay of their own (Kafka, Redis). */
export const SINK_HOST_BACKOFF: BackoffLimits = { initialMs: 100, maxMs: 5000 };

/** Delay before retry number `attempt` (1 for the first retry); `random` in [0, 1), e.g. Math.random(). */
export function retryBackoffMs(attempt: number, random: number, limits: BackoffLimits = SINK_HOST_BACKOFF): number {
  // 2 ** a large attempt is Infinity, which the cap turns back into maxMs.
  return Math.min(limits.maxMs, limits.initialMs * 2 ** Math.max(0, attempt - 1)) * (0.5 + random);
}
