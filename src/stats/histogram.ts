/**
 * Fixed-bucket latency histograms kept in a Float64Array, so one thread can record and another
 * read without messages (a lane's fsync latency) or be shipped as a plain array in a snapshot
 * (an acceptor's ack latency). Exported to Prometheus by admin/metrics.ts.
 *
 *   values: [count(le=b0), count(le=b1), ..., count(+Inf), sum, count]   (not cumulative)
 */
export const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function histogramSlots(bounds: readonly number[] = LATENCY_BUCKETS_S): number {
  return bounds.length + 3;
}

export function observe(h: Float64Array, at: number, seconds: number, bounds: readonly number[] = LATENCY_BUCKETS_S): void {
  let i = 0;
  while (i < bounds.length && seconds > bounds[i]) i++;
  h[at + i]++;
  h[at + bounds.length + 1] += seconds;
  h[at + bounds.length + 2]++;
}

export interface HistogramSnapshot {
  /** Cumulative counts per bound, Prometheus style. */
  buckets: Array<[le: number, count: number]>;
  sum: number;
  count: number;
}

export function snapshotHistogram(h: ArrayLike<number>, at: number, bounds: readonly number[] = LATENCY_BUCKETS_S): HistogramSnapshot {
  const buckets: Array<[number, number]> = [];
  let cum = 0;
  for (let i = 0; i <= bounds.length; i++) {
    cum += h[at + i];
    buckets.push([i < bounds.length ? bounds[i] : Infinity, cum]);
  }
  return { buckets, sum: h[at + bounds.length + 1], count: h[at + bounds.length + 2] };
}

export function addHistograms(into: HistogramSnapshot | undefined, h: HistogramSnapshot): HistogramSnapshot {
  if (!into) return { buckets: h.buckets.map(([le, c]) => [le, c]), sum: h.sum, count: h.count };
  h.buckets.forEach(([, c], i) => (into.buckets[i][1] += c));
  into.sum += h.sum;
  into.count += h.count;
  return into;
}

/** Quantile estimate from a snapshot (upper bound of the bucket that holds it), in seconds. */
export function quantile(s: HistogramSnapshot, q: number): number {
  if (s.count === 0) return 0;
  const rank = q * s.count;
  for (const [le, c] of s.buckets) if (c >= rank) return le;
  return Infinity;
}
