// The ceiling: a bare uWebSockets.js server that reads the POST body and answers a fixed
// receipt, in the main thread, doing nothing else. Usage: node uws-hello.js <port>
import { loadUws } from '../../src/acceptor/uws.js';

const uws = loadUws();
const port = Number(process.argv[2] ?? 13000);
uws
  .App()
  .any('/*', (res) => {
    res.onAborted(() => {});
    res.onData((_chunk, last) => {
      if (last) res.end('{"status":"OK","id":"01m81bckre23thw2000001"}');
    });
  })
  .listen('127.0.0.1', port, (s) => {
    if (!s) process.exit(1);
    process.stdout.write('listening\n');
  });
