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
