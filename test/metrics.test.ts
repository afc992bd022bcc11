// /metrics without a running crowd: createMetrics over a counting stats source.
import test from 'ava';
import type { AcceptorSnapshot } from '../src/acceptor/acceptor-stats.js';
import { createMetrics } from '../src/admin/metrics.js';
import type { StatsSource } from '../src/admin/stats-source.js';
import type { SinkStats } from '../src/sinks/sink-host.js';

/** A stats source whose acceptor totals and sink stats answer asynchronously, counting calls. */
function countingSource() {
  const calls = { acceptorTotals: 0, sinkStats: 0 };
  let delivered = 0;
  const src: StatsSource = {
    async acceptorTotals(): Promise<AcceptorSnapshot> {
      calls.acceptorTotals++;
      await new Promise((r) => setTimeout(r, 5)); // a round trip to the acceptor threads
      return { success: 3, failed: 1, byCode: { CROWD_NOT_FOUND: 1 }, routes: { '/leads': { topic: 'leads', byStatus: { 200: 3 } } }, ackLatency: {} as AcceptorSnapshot['ackLatency'], pending: 2 };
    },
    async sinkStats(): Promise<Record<string, SinkStats>> {
      calls.sinkStats++;
      delivered += 10;
      return {
        events: { delivered, failed: 0, retries: 4, inFlight: 1, backlogRecords: 5, backlogBytes: 500, oldestUndeliveredAgeMs: 1500, healthy: true, health: 'ok', deliveryLatency: [10, 20, 30] },
      };
    },
    ready: () => true,
    readiness: () => ({ ready: true, reasons: [] }),
    lanes: () => [],
    rings: () => [],
    serverList: () => [],
    serverTotals: () => ({ success: 0, failed: 0 }),
  };
  return { src, calls };
}

test('one scrape asks for the acceptor totals and the sink stats once each, however many metrics use them', async (t) => {
  const { src, calls } = countingSource();
  const reg = createMetrics(src);
  const text = await reg.metrics();
  t.deepEqual(calls, { acceptorTotals: 1, sinkStats: 1 });
  t.regex(text, /crowd_requests_total\{route="\/leads",status="200"\} 3/);
  t.regex(text, /crowd_refusals_total\{code="CROWD_NOT_FOUND"\} 1/);
  t.regex(text, /crowd_pending_acks 2/);
  t.regex(text, /crowd_sink_delivered_total\{sink="events"\} 10/);
  t.regex(text, /crowd_sink_retries_total\{sink="events"\} 4/);
  t.regex(text, /crowd_sink_oldest_undelivered_age_seconds\{sink="events"\} 1\.5/);
  t.regex(text, /crowd_sink_delivery_latency_seconds\{sink="events",quantile="0\.5"\} 0\.02/);
});

test('each scrape fetches afresh', async (t) => {
  const { src, calls } = countingSource();
  const reg = createMetrics(src);
  await reg.metrics();
  const second = await reg.metrics();
  t.deepEqual(calls, { acceptorTotals: 2, sinkStats: 2 });
  t.regex(second, /crowd_sink_delivered_total\{sink="events"\} 20/, 'the second scrape shows the new values');
});
