/**
 * What an acceptor counts: answers by route and status, refusals by code, ack latency per
 * ack mode. Kept thread-local (no atomics on the hot path) and shipped to the supervisor as a
 * snapshot when /stats or /metrics asks.
 */
import type { AckMode } from '../config/types.js';
import type { ErrorCode } from '../errors.js';
import { ERRORS } from '../errors.js';
import { histogramSlots, observe, snapshotHistogram, type HistogramSnapshot } from '../stats/histogram.js';
import type { Route } from './route-table.js';

export interface RouteCounts {
  topic: string;
  byStatus: Record<string, number>;
}

export interface AcceptorSnapshot {
  success: number;
  failed: number;
  byCode: Record<string, number>;
  routes: Record<string, RouteCounts>;
  ackLatency: Record<AckMode, HistogramSnapshot>;
  pending: number;
}

const MODES: AckMode[] = ['memory', 'durable', 'delivered'];
const SLOTS = histogramSlots();
const MAX_ROUTES_TRACKED = 1000;

export class AcceptorStats {
  private success = 0;
  private failed = 0;
  private readonly byCode = new Map<string, number>();
  /** Routes that have counts (each route object carries its own counts). */
  private readonly routes = new Set<Route>();
  private readonly unrouted = new Map<number, number>();
  private readonly hist = new Float64Array(MODES.length * SLOTS);

  private count(route: Route | null, status: number): void {
    const m = route ? route.counts : this.unrouted;
    m.set(status, (m.get(status) ?? 0) + 1);
    if (route && route.counts.size === 1 && !this.routes.has(route) && this.routes.size < MAX_ROUTES_TRACKED) this.routes.add(route);
  }

  answered(route: Route, status: number, mode: AckMode, seconds: number, code?: ErrorCode): void {
    if (status === 200) {
      this.success++;
      observe(this.hist, MODES.indexOf(mode) * SLOTS, seconds);
    } else {
      this.failed++;
      if (code) this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
    }
    this.count(route, status);
  }

  rejected(route: Route | null, code: ErrorCode): void {
    this.failed++;
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
    this.count(route, ERRORS[code].status);
  }

  snapshot(pending: number): AcceptorSnapshot {
    const routes: Record<string, RouteCounts> = {};
    const byStatus = (m: Map<number, number>) => Object.fromEntries([...m].map(([k, v]) => [String(k), v]));
    for (const r of this.routes) routes[r.cfg.path] = { topic: r.cfg.topic, byStatus: byStatus(r.counts) };
    if (this.unrouted.size > 0) routes['(none)'] = { topic: '', byStatus: byStatus(this.unrouted) };
    const ackLatency = {} as Record<AckMode, HistogramSnapshot>;
    MODES.forEach((mode, i) => (ackLatency[mode] = snapshotHistogram(this.hist, i * SLOTS)));
    return { success: this.success, failed: this.failed, byCode: Object.fromEntries(this.byCode), routes, ackLatency, pending };
  }
}
