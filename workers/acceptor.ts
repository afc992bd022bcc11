/**
 * worker_threads entry of an acceptor: builds the Acceptor from workerData and speaks the
 * supervisor's small protocol over parentPort (see src/supervisor.ts).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Acceptor, type AcceptorInit } from '../src/acceptor/acceptor.js';
import { nameThisThread } from '../src/thread-name.js';

interface Data {
  init: AcceptorInit;
  lanePorts: MessagePort[];
  /** The sink host's "delivered offsets moved" (ack: delivered); null without sinks. */
  sinkWake: MessagePort | null;
}

const { init, lanePorts, sinkWake } = workerData as Data;
nameThisThread(`crowd-acc${init.index}`);
const acceptor = new Acceptor(init);
sinkWake?.on('message', () => acceptor.onSinkWake());
const ports: MessagePort[] = [];

function attach(lane: number, port: MessagePort): void {
  ports[lane]?.close();
  ports[lane] = port;
  port.on('message', () => acceptor.onLaneWake(lane));
}
lanePorts.forEach((p, i) => attach(i, p));

parentPort!.on('message', (m: { type: string; id?: number; lane?: number; port?: MessagePort; accept?: boolean; listenPort?: number }) => {
  switch (m.type) {
    case 'accepting': // fd reserve (src/fd-reserve.ts)
      acceptor.setAccepting(m.accept!, m.listenPort!);
      break;
    case 'lanePort':
      attach(m.lane!, m.port!);
      acceptor.onLaneWake(m.lane!);
      break;
    case 'snapshot':
      parentPort!.postMessage({ type: 'snapshot', id: m.id, data: acceptor.snapshot() });
      break;
    case 'drain':
      void acceptor.drain().then(() => parentPort!.postMessage({ type: 'drained' }));
      break;
    case 'close':
      acceptor.close();
      for (const p of ports) p?.close();
      sinkWake?.close();
      parentPort!.close();
      break;
  }
});

acceptor.listen().then(
  (port) => parentPort!.postMessage({ type: 'listening', port }),
  (e: Error) => parentPort!.postMessage({ type: 'error', message: e.message }),
);
