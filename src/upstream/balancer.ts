/**
 * Picks the server for the next request among those that take requests now (healthy, not
 * paused by a Retry-After), never one that is down or draining.
 *
 * p2c-ewma: two servers drawn at random, the one with the lower (in flight + 1) x latency
 * average (decayed while a server gets no samples, see backend.ts) wins: least outstanding requests, weighted by how fast each server answers, without
 * the herding of always taking the global minimum. round-robin: in turn.
 * `avoid` (the server a retried message last failed on) is skipped when another one is there.
 */
import type { Backend } from './backend.js';

export type BalanceMode = 'p2c-ewma' | 'round-robin';

export class Balancer {
  private turn = 0;
  private readonly candidates: Backend[] = [];

  constructor(private readonly mode: BalanceMode) {}

  pick(servers: readonly Backend[], avoid: Backend | undefined, now: number): Backend | null {
    const c = this.candidates;
    c.length = 0;
    let avoided: Backend | null = null;
    for (const s of servers) {
      if (!s.available(now)) continue;
      if (s === avoid) avoided = s;
      else c.push(s);
    }
    if (c.length === 0) return avoided;
    if (c.length === 1) return c[0];
    if (this.mode === 'round-robin') return c[this.turn++ % c.length];
    const i = Math.floor(Math.random() * c.length);
    let j = Math.floor(Math.random() * (c.length - 1));
    if (j >= i) j++;
    return cost(c[i], now) <= cost(c[j], now) ? c[i] : c[j];
  }
}

function cost(s: Backend, now: number): number {
  return (s.inFlight + 1) * Math.max(s.latencyEstimate(now), 0.01);
}
