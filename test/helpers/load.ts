/**
 * A small load generator for crash tests: `connections` keep-alive clients POST unique bodies
 * as fast as they can until stopped, recording every id crowd acknowledged with a 200.
 */
import http from 'node:http';

export interface LoadResult {
  sent: number;
  acked: Map<string, string>; // id -> body
  refused: number;
  errors: number;
}

export function runLoad(port: number, path: string, connections: number, extraHeaders: (n: number) => Record<string, string> = () => ({})): { stop: () => Promise<LoadResult> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const result: LoadResult = { sent: 0, acked: new Map(), refused: 0, errors: 0 };
  let running = true;
  let seq = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const n = seq++;
      const body = JSON.stringify({ n, pad: 'x'.repeat(100) });
      result.sent++;
      const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extraHeaders(n) } }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (data += d));
        res.on('end', () => {
          if (res.statusCode === 200) result.acked.set((JSON.parse(data) as { id: string }).id, body);
          else result.refused++;
          resolve();
        });
        res.on('error', () => {
          result.errors++;
          resolve();
        });
      });
      req.on('error', () => {
        result.errors++;
        resolve();
      });
      req.end(body);
    });
  const workers = Array.from({ length: connections }, async () => {
    while (running) await one();
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      return result;
    },
  };
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
export function runPacedLoad(port: number, path: string, o: { rate: number; maxSockets: number; timeoutMs?: number }): { stop: () => Promise<PacedLoadResult> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.maxSockets, maxFreeSockets: o.maxSockets });
  const r: PacedLoadResult = {
    offered: 0, acked: new Map(), byStatus: {}, byCode: {}, retryAfterMin: Infinity, retryAfterMax: 0, refusalsWithoutRetryAfter: 0,
    timeouts: 0, errors: 0, okLatencyP50: 0, okLatencyP99: 0, maxSocketsUsed: 0,
  };
  const okLatencies: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let seq = 0;
  const one = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const n = seq++;
      const body = JSON.stringify({ n, pad: 'x'.repeat(100) });
      const t0 = performance.now();
      r.offered++;
      const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, timeout: o.timeoutMs ?? 10_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (data += d));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          r.byStatus[status] = (r.byStatus[status] ?? 0) + 1;
          if (status === 200) {
            r.acked.set((JSON.parse(data) as { id: string }).id, body);
            okLatencies.push(performance.now() - t0);
          } else {
            try {
              const code = (JSON.parse(data) as { code: string }).code;
              r.byCode[code] = (r.byCode[code] ?? 0) + 1;
            } catch {
              r.byCode['(no JSON body)'] = (r.byCode['(no JSON body)'] ?? 0) + 1;
            }
            const ra = Number(res.headers['retry-after']);
            if ((status === 429 || status === 503) && Number.isFinite(ra) && ra > 0) {
              r.retryAfterMin = Math.min(r.retryAfterMin, ra);
              r.retryAfterMax = Math.max(r.retryAfterMax, ra);
            } else if (status === 429 || status === 503) r.refusalsWithoutRetryAfter++;
          }
          resolve();
        });
        res.on('error', () => {
          r.errors++;
          resolve();
        });
      });
      req.on('timeout', () => {
        r.timeouts++;
        req.destroy(new Error('client timeout'));
      });
      req.on('error', (e) => {
        if (e.message !== 'client timeout') r.errors++;
        resolve();
      });
      req.end(body);
    });
  const t0 = performance.now();
  let started = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * o.rate);
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
  };
}
