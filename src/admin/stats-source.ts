/** What the admin API reads from the running crowd (implemented by the supervisor). */
import type { AcceptorSnapshot } from '../acceptor/acceptor-stats.js';
import type { HistogramSnapshot } from '../stats/histogram.js';

export interface LaneStats {
  lane: number;
  state: string;
  bytes: number;
  records: number;
  batches: number;
  fsyncs: number;
  endOffset: number;
  writeErrors: number;
  corruptAtStart: number;
  tornBytesAtStart: number;
  fsync: HistogramSnapshot;
  append: HistogramSnapshot;
}

export interface RingStats {
  acceptor: number;
  lane: number;
  used: number;
  capacity: number;
}

export interface StatsSource {
  sinkStats(): Promise<Record<string, import('../sinks/sink-host.js').SinkStats>>;
  ready(): boolean;
  readiness(): { ready: boolean; reasons: string[] };
  acceptorTotals(): Promise<AcceptorSnapshot>;
  lanes(): LaneStats[];
  rings(): RingStats[];
  /** Every server of every HTTP pool (GET /servers, /stats/detail, /metrics). */
  serverList(): import('../upstream/backend.js').ServerInfo[];
  /** Requests answered by HTTP pool servers, 2xx (success) or not (failed), since start. */
  serverTotals(): { success: number; failed: number };
}
