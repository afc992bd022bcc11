// A fast HTTP backend for crowd's http sink cases: a bare uWebSockets.js server that reads each
// request's body and answers 200, counting requests per wall-clock second. GET /health answers
// 200 (crowd's health check); GET /count answers {"count", "perSecond": {"<unix s>": n}}.
// Usage: node http-backend.js <port>
import { loadUws } from '../../src/acceptor/uws.js';

const uws = loadUws();
const port = Number(process.argv[2] ?? 13500);
let count = 0;
const perSecond = new Map<number, number>();

uws
  .App()
  .get('/health', (res) => {
    res.end('ok');
  })
  .get('/count', (res) => {
    res.writeHeader('Content-Type', 'application/json').end(JSON.stringify({ count, perSecond: Object.fromEntries(perSecond) }));
  })
  .any('/*', (res) => {
    res.onAborted(() => {});
    res.onData((_chunk, last) => {
      if (!last) return;
      count++;
      const s = Math.floor(Date.now() / 1000);
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
      res.end('ok');
    });
  })
  .listen('127.0.0.1', port, (s) => {
    if (!s) process.exit(1);
    process.stdout.write('listening\n');
  });
