/**
 * A small load generator for crash tests: `connections` keep-alive clients POST unique bodies
 * as fast as they can until stopped, recording every id crowd acknowledged with a 200.
 *
 * Tests are driven by counts, never by rates: `untilAcked(n)` waits for the n-th 200 (with a
 * generous overall timeout that only a stalled crowd reaches), so a busy machine makes a test
 * slower, not red. `loadUntilAcked` is the whole "run until N acks, then stop" in one call.
 */
import http from 'node:http';

export interface LoadResult {
  sent: number;
  acked: Map<string, string>; // id -> body
  refused: number;
  errors: number;
}

/** One POST of a unique JSON body: the answer, or why there was none. */
type Outcome =
  | { kind: 'answer'; status: number; headers: http.IncomingHttpHeaders; data: string; body: string }
  | { kind: 'timeout' | 'error'; body: string };

function postOne(agent: http.Agent, port: number, path: string, n: number, headers: Record<string, string>, timeoutMs?: number): Promise<Outcome> {
  const body = JSON.stringify({ n, pad: 'x'.repeat(100) });
  return new Promise((resolve) => {
    let timedOut = false;
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, timeout: timeoutMs, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ kind: 'answer', status: res.statusCode ?? 0, headers: res.headers, data, body }));
      res.on('error', () => resolve({ kind: 'error', body }));
    });
    req.on('timeout', () => {
      timedOut = true;
      req.destroy(new Error('client timeout'));
    });
    req.on('error', () => resolve({ kind: timedOut ? 'timeout' : 'error', body }));
    req.end(body);
  });
}

/** Default overall timeout of `untilAcked`: far beyond any healthy run, even on a busy box. */
export const ACK_WAIT_TIMEOUT_MS = 90_000;

export interface LoadHandle {
  stop: () => Promise<LoadResult>;
  /** Acknowledgements so far. */
  acked: () => number;
  /**
   * Resolves once at least `n` requests were acknowledged; rejects (naming the counts) if that
   * has not happened within `timeoutMs` (the clients then stop: call `stop` as usual), or if
   * the load was stopped first.
   */
  untilAcked: (n: number, timeoutMs?: number) => Promise<void>;
}

export function runLoad(port: number, path: string, connections: number, extraHeaders: (n: number) => Record<string, string> = () => ({})): LoadHandle {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const result: LoadResult = { sent: 0, acked: new Map(), refused: 0, errors: 0 };
  let running = true;
  let seq = 0;
  const waiters = new Set<{ n: number; resolve: () => void; reject: (e: Error) => void }>();
  const settle = () => {
    for (const w of waiters) {
      if (result.acked.size >= w.n) {
        waiters.delete(w);
        w.resolve();
      } else if (!running) {
        waiters.delete(w);
        w.reject(new Error(`load stopped with ${result.acked.size} of ${w.n} acknowledgements (sent ${result.sent}, refused ${result.refused}, errors ${result.errors})`));
      }
    }
  };
  const one = async () => {
    const n = seq++;
    result.sent++;
    const o = await postOne(agent, port, path, n, extraHeaders(n));
    if (o.kind !== 'answer') result.errors++;
    else if (o.status === 200) {
      result.acked.set((JSON.parse(o.data) as { id: string }).id, o.body);
      if (waiters.size) settle();
    } else result.refused++;
  };
  const workers = Array.from({ length: connections }, async () => {
    while (running) await one();
  });
  return {
    stop: async () => {
      running = false;
      settle();
      await Promise.all(workers);
      agent.destroy();
      return result;
    },
    acked: () => result.acked.size,
    untilAcked: (n, timeoutMs = ACK_WAIT_TIMEOUT_MS) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(w);
          running = false; // the test fails here: the clients finish what is in flight and stop
          reject(new Error(`only ${result.acked.size} of ${n} requests acknowledged within ${timeoutMs} ms (sent ${result.sent}, refused ${result.refused}, errors ${result.errors})`));
        }, timeoutMs);
        const w = {
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
          reject: (e: Error) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        waiters.add(w);
        settle();
      }),
  };
}

/**
 * Runs `connections` clients until `n` requests were acknowledged, then stops them and returns
 * everything that was answered (a few more than `n`: requests already in flight are awaited).
 * If crowd does not get there within `timeoutMs` the load is stopped and the promise rejects.
 */
export async function loadUntilAcked(port: number, path: string, connections: number, n: number, opts: { timeoutMs?: number; extraHeaders?: (n: number) => Record<string, string> } = {}): Promise<LoadResult> {
  const load = runLoad(port, path, connections, opts.extraHeaders);
  try {
    await load.untilAcked(n, opts.timeoutMs);
  } catch (e) {
    await load.stop();
    throw e;
  }
  return load.stop();
}

export interface PacedLoadResult {
  offered: number;
  acked: Map<string, string>;
  /** HTTP status -> count; refusals also by error code. */
  byStatus: Record<string, number>;
  byCode: Record<string, number>;
  /** Retry-After values seen on 429/503 answers (seconds); refusals without one are counted apart. */
  retryAfterMin: number;
  retryAfterMax: number;
  refusalsWithoutRetryAfter: number;
  /** No answer within the client timeout, or the connection failed. */
  timeouts: number;
  errors: number;
  /** Latency of the 200 answers, ms. */
  okLatencyP50: number;
  okLatencyP99: number;
  maxSocketsUsed: number;
}

/**
 * An open-loop load: requests are started at a fixed rate whatever crowd answers, each on a
 * free keep-alive connection or a new one (up to `maxSockets`), as many independent clients
 * would. This is how a server is pushed past its capacity; a closed loop (runLoad) only ever
 * offers what the server already takes.
 */
export function runPacedLoad(port: number, path: string, opts: { rate: number; maxSockets: number; timeoutMs?: number }): { stop: () => Promise<PacedLoadResult>; answered: () => number } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets, maxFreeSockets: opts.maxSockets });
  const r: PacedLoadResult = {
    offered: 0, acked: new Map(), byStatus: {}, byCode: {}, retryAfterMin: Infinity, retryAfterMax: 0, refusalsWithoutRetryAfter: 0,
    timeouts: 0, errors: 0, okLatencyP50: 0, okLatencyP99: 0, maxSocketsUsed: 0,
  };
  const okLatencies: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let seq = 0;
  let answered = 0;
  const one = async (): Promise<void> => {
    const t0 = performance.now();
    r.offered++;
    const out = await postOne(agent, port, path, seq++, {}, opts.timeoutMs ?? 10_000);
    answered++;
    if (out.kind !== 'answer') {
      if (out.kind === 'timeout') r.timeouts++;
      else r.errors++;
      return;
    }
    const status = out.status;
    r.byStatus[status] = (r.byStatus[status] ?? 0) + 1;
    if (status === 200) {
      r.acked.set((JSON.parse(out.data) as { id: string }).id, out.body);
      okLatencies.push(performance.now() - t0);
      return;
    }
    try {
      const code = (JSON.parse(out.data) as { code: string }).code;
      r.byCode[code] = (r.byCode[code] ?? 0) + 1;
    } catch {
      r.byCode['(no JSON body)'] = (r.byCode['(no JSON body)'] ?? 0) + 1;
    }
    const ra = Number(out.headers['retry-after']);
    if ((status === 429 || status === 503) && Number.isFinite(ra) && ra > 0) {
      r.retryAfterMin = Math.min(r.retryAfterMin, ra);
      r.retryAfterMax = Math.max(r.retryAfterMax, ra);
    } else if (status === 429 || status === 503) r.refusalsWithoutRetryAfter++;
  };
  const t0 = performance.now();
  let started = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * opts.rate);
    while (started < due) {
      started++;
      const p = one();
      inFlight.add(p);
      p.then(() => inFlight.delete(p));
    }
    const used = Object.values(agent.sockets).reduce((s, l) => s + (l?.length ?? 0), 0);
    r.maxSocketsUsed = Math.max(r.maxSocketsUsed, used);
  }, 5);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...inFlight]);
      agent.destroy();
      okLatencies.sort((a, b) => a - b);
      r.okLatencyP50 = Math.round(okLatencies[Math.floor(okLatencies.length * 0.5)] ?? 0);
      r.okLatencyP99 = Math.round(okLatencies[Math.floor(okLatencies.length * 0.99)] ?? 0);
      if (r.retryAfterMin === Infinity) r.retryAfterMin = 0;
      return r;
    },
    /** Requests finished so far (answered, timed out or failed). */
    answered: () => answered,
  };
}
