/**
 * Prometheus metrics (prom-client). Counters and histograms that live in other threads
 * (acceptor snapshots, lane stats in shared memory) are exported through small Metric objects
 * whose get() builds the values at scrape time; process metrics come from prom-client. The
 * acceptor totals (a round trip to every acceptor thread) and the sink stats are fetched once
 * per scrape and shared by the metrics built from them, so one scrape is one consistent view.
 */
import client from 'prom-client';
import type { HistogramSnapshot } from '../stats/histogram.js';
import type { ServerInfo } from '../upstream/backend.js';
import type { StatsSource } from './stats-source.js';

type Labels = Record<string, string | number>;
interface Value {
  value: number;
  labels: Labels;
  metricName?: string;
}

function histogramValues(name: string, labels: Labels, h: HistogramSnapshot): Value[] {
  const out: Value[] = h.buckets.map(([le, c]) => ({
    metricName: `${name}_bucket`, labels: { ...labels, le: le === Infinity ? '+Inf' : le }, value: c,
  })) as Value[];
  out.push({ metricName: `${name}_sum`, labels, value: h.sum }, { metricName: `${name}_count`, labels, value: h.count });
  return out;
}

class ScrapedMetric {
  readonly aggregator = 'sum';
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge' | 'histogram', private readonly collect: () => Promise<Value[]>) {}
  async get() {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: await this.collect() };
  }
  reset(): void {}
}

/**
 * `fetch`, called once for all callers that come while its promise is pending. prom-client's
 * Registry.metrics() calls every metric's get() in the same turn, so the collectors of one
 * scrape share one call; the next scrape, after it settled, fetches afresh.
 */
function sharedWhilePending<T>(fetch: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | null = null;
  return () =>
    (pending ??= fetch().finally(() => {
      pending = null;
    }));
}

export function createMetrics(src: StatsSource): client.Registry {
  const reg = new client.Registry();
  const acceptorTotals = sharedWhilePending(() => src.acceptorTotals());
  const sinkStats = sharedWhilePending(() => src.sinkStats());
  client.collectDefaultMetrics({ register: reg, prefix: 'crowd_' });
  const add = (name: string, help: string, type: 'counter' | 'gauge' | 'histogram', collect: () => Promise<Value[]>) =>
    reg.registerMetric(new ScrapedMetric(name, help, type, collect) as unknown as client.Metric);

  add('crowd_requests_total', 'Ingest requests answered, by route and HTTP status.', 'counter', async () => {
    const s = await acceptorTotals();
    const v: Value[] = [];
    for (const [path, r] of Object.entries(s.routes)) {
      for (const [status, n] of Object.entries(r.byStatus)) v.push({ labels: { route: path, status }, value: n });
    }
    return v;
  });
  add('crowd_refusals_total', 'Ingest refusals by error code.', 'counter', async () =>
    Object.entries((await acceptorTotals()).byCode).map(([code, n]) => ({ labels: { code }, value: n })));
  add('crowd_ack_latency_seconds', 'Time from request to answer of acknowledged messages, by ack mode.', 'histogram', async () => {
    const s = await acceptorTotals();
    return Object.entries(s.ackLatency).flatMap(([mode, h]) => histogramValues('crowd_ack_latency_seconds', { mode }, h));
  });
  add('crowd_pending_acks', 'Requests waiting for their ack: their record fsynced, or delivered by every sink for ack delivered.', 'gauge', async () => [
    { labels: {}, value: (await acceptorTotals()).pending },
  ]);
  add('crowd_ring_used_bytes', 'Bytes in each acceptor->lane ring not yet released by the lane.', 'gauge', async () =>
    src.rings().map((r) => ({ labels: { acceptor: r.acceptor, lane: r.lane }, value: r.used })));
  add('crowd_ring_capacity_bytes', 'Capacity of each acceptor->lane ring.', 'gauge', async () =>
    src.rings().map((r) => ({ labels: { acceptor: r.acceptor, lane: r.lane }, value: r.capacity })));
  add('crowd_log_bytes', 'Bytes held by each lane log.', 'gauge', async () =>
    src.lanes().map((l) => ({ labels: { lane: l.lane }, value: l.bytes })));
  add('crowd_log_appended_records_total', 'Records appended to each lane log since start.', 'counter', async () =>
    src.lanes().map((l) => ({ labels: { lane: l.lane }, value: l.records })));
  add('crowd_log_write_errors_total', 'Failed log writes or fsyncs.', 'counter', async () =>
    src.lanes().map((l) => ({ labels: { lane: l.lane }, value: l.writeErrors })));
  add('crowd_log_fsync_seconds', 'fdatasync latency of each lane log.', 'histogram', async () =>
    src.lanes().flatMap((l) => histogramValues('crowd_log_fsync_seconds', { lane: l.lane }, l.fsync)));
  add('crowd_log_append_seconds', 'Group-commit latency (write + fdatasync of one batch).', 'histogram', async () =>
    src.lanes().flatMap((l) => histogramValues('crowd_log_append_seconds', { lane: l.lane }, l.append)));
  const sinkGauge = (name: string, help: string, type: 'counter' | 'gauge', pick: (s: import('../sinks/sink-host.js').SinkStats) => number) =>
    add(name, help, type, async () => Object.entries(await sinkStats()).map(([sink, s]) => ({ labels: { sink }, value: pick(s) })));
  sinkGauge('crowd_sink_delivered_total', 'Messages delivered by each sink.', 'counter', (s) => s.delivered);
  sinkGauge('crowd_sink_failed_total', 'Messages dead-lettered by each sink.', 'counter', (s) => s.failed);
  sinkGauge('crowd_sink_retries_total', 'Deliveries retried by each sink.', 'counter', (s) => s.retries);
  sinkGauge('crowd_sink_backlog_bytes', 'Log bytes not yet delivered by each sink.', 'gauge', (s) => s.backlogBytes);
  sinkGauge('crowd_sink_backlog_records', 'Records not yet delivered by each sink (estimate from the average record size).', 'gauge', (s) => s.backlogRecords);
  sinkGauge('crowd_sink_oldest_undelivered_age_seconds', 'Age of the oldest message a sink is still delivering.', 'gauge', (s) => s.oldestUndeliveredAgeMs / 1000);
  sinkGauge('crowd_sink_healthy', '1 when the sink is connected to its destination.', 'gauge', (s) => (s.healthy ? 1 : 0));
  add('crowd_sink_delivery_latency_seconds', 'Time from receipt to delivery, per sink (quantiles over recent deliveries).', 'gauge', async () =>
    Object.entries(await sinkStats()).flatMap(([sink, s]) => {
      const v = [...s.deliveryLatency].sort((a, b) => a - b);
      const q = (p: number) => (v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] / 1000 : 0);
      return [0.5, 0.99].map((p) => ({ labels: { sink, quantile: p }, value: q(p) }));
    }));
  const serverMetric = (name: string, help: string, type: 'counter' | 'gauge', pick: (s: ServerInfo) => Value[]) =>
    add(name, help, type, async () => src.serverList().flatMap(pick));
  const serverLabels = (s: ServerInfo) => ({ pool: s.pool, server: s.id, address: new URL(s.url).host });
  serverMetric('crowd_server_requests_total', 'Requests answered by each HTTP pool server: success (2xx) or failed.', 'counter', (s) => [
    { labels: { ...serverLabels(s), outcome: 'success' }, value: s.success },
    { labels: { ...serverLabels(s), outcome: 'failed' }, value: s.failed },
  ]);
  serverMetric('crowd_server_in_flight', 'Requests in flight to each HTTP pool server.', 'gauge', (s) => [{ labels: serverLabels(s), value: s.inFlight }]);
  serverMetric('crowd_server_latency_seconds', 'Latency average (EWMA) of each HTTP pool server.', 'gauge', (s) => [{ labels: serverLabels(s), value: s.latencyMs / 1000 }]);
  serverMetric('crowd_server_state', '1 for the state each HTTP pool server is in (healthy, unhealthy, draining).', 'gauge', (s) =>
    (['healthy', 'unhealthy', 'draining'] as const).map((st) => ({ labels: { ...serverLabels(s), state: st }, value: s.state === st ? 1 : 0 })));
  add('crowd_server_responses_total', 'Requests answered by HTTP pool servers since start (all servers, also those that left).', 'counter', async () => {
    const t = src.serverTotals();
    return [{ labels: { outcome: 'success' }, value: t.success }, { labels: { outcome: 'failed' }, value: t.failed }];
  });
  add('crowd_ready', '1 when crowd accepts traffic.', 'gauge', async () => [{ labels: {}, value: src.ready() ? 1 : 0 }]);
  return reg;
}
