// The floor of any gateway that checks what it accepts, on this uWS build: the bare ceiling
// plus only the per-request checks crowd must make (every header read to refuse duplicate
// framing headers, method/URL/query read, the JSON body validated, the receipt sent with a
// content type). No ring, no log, no id. The gap between this and crowd is crowd's own
// storage work; the gap between the ceiling and this is the price of checking input.
// Usage: node uws-checked.js <port>
import { loadUws } from '../../src/acceptor/uws.js';

const uws = loadUws();
const port = Number(process.argv[2] ?? 13000);
const utf8 = new TextDecoder('utf-8', { fatal: true });
uws
  .App()
  .any('/*', (res, req) => {
    let cl = 0;
    let ct = '';
    req.forEach((k, v) => {
      if (k === 'content-length') cl++;
      else if (k === 'content-type') ct = v;
    });
    const url = req.getUrl();
    const method = req.getMethod();
    const query = req.getQuery() ?? '';
    const json = ct.startsWith('application/json');
    res.onAborted(() => {});
    res.onData((chunk, last) => {
      if (!last) return;
      let ok = cl <= 1 && method === 'post' && url.length > 0 && query.length >= 0;
      if (json) {
        try {
          JSON.parse(utf8.decode(new Uint8Array(chunk)));
        } catch {
          ok = false;
        }
      }
      res.writeStatus(ok ? '200 OK' : '400 Bad Request').writeHeader('Content-Type', 'application/json').end('{"status":"OK","id":"01m81bckre23thw2000001"}');
    });
  })
  .listen('127.0.0.1', port, (s) => {
    if (!s) process.exit(1);
    process.stdout.write('listening\n');
  });
