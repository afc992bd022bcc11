/**
 * A broker outage under load, for the sink tests (Kafka, RabbitMQ, SQS): crowd with one sink
 * (`events`) on /leads under load from `clients` clients; after 200 acknowledgements the broker
 * goes away (`fault.begin`) for `downSeconds`, `whileDown` looks at crowd at the end of the
 * outage, the broker comes back, and the load stops after 200 more acknowledgements (counts,
 * not seconds: a busy machine makes the run longer, never the check weaker). crowd is killed when the test ends (also when an
 * assertion ends it early); a probe that throws does not leave the broker down.
 */
import type { ExecutionContext } from 'ava';
import { startCrowd, type CrowdProcess } from './crowd-process.js';
import { runLoad, type LoadResult } from './load.js';
import { rawExchange } from './raw-http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface BrokerFault {
  begin: () => Promise<void> | void;
  end: () => Promise<void> | void;
}

export interface Outage<T> {
  crowd: CrowdProcess;
  result: LoadResult;
  probe: T;
  loadStartedAt: number;
  downSeconds: number;
}

export async function brokerOutage<T>(t: ExecutionContext, sink: Record<string, unknown>, downSeconds: number, clients: number, fault: BrokerFault, whileDown: (crowd: CrowdProcess) => Promise<T>): Promise<Outage<T>> {
  const crowd = await startCrowd({ config: { sinks: { events: sink }, routes: [{ path: '/leads', sinks: ['events'] }] } });
  t.teardown(() => crowd.kill('SIGKILL'));
  const load = runLoad(crowd.port, '/leads', clients);
  const loadStartedAt = Date.now();
  let result: LoadResult;
  let probe: T;
  let downAt = 0;
  let upAt = 0;
  try {
    await load.untilAcked(200);
    await fault.begin();
    downAt = Date.now();
    await sleep(downSeconds * 1000);
    probe = await whileDown(crowd);
    await fault.end();
    upAt = Date.now();
    await load.untilAcked(load.acked() + 200);
  } finally {
    result = await load.stop();
    // A probe that threw must not leave the broker down for the tests after this one.
    if (upAt === 0) await fault.end();
  }
  return { crowd, result, probe, loadStartedAt, downSeconds: Math.round((upAt - downAt) / 1000) };
}

/**
 * GET on the admin port, the whole answer parsed as JSON: the whole answer (up to 10 s), not 1 s
 * of silence, since on a loaded machine the main thread, which also hosts the sinks, can take
 * longer than that, and a cut answer is not JSON.
 */
export async function adminGet<T>(crowd: CrowdProcess, path: string): Promise<{ status: number; doc: T }> {
  const r = await rawExchange(crowd.adminPort, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  return { status: r.status, doc: JSON.parse(r.body) as T };
}

/** Polls `read` until it returns something non-empty or `tries` x 200 ms pass. */
export async function awaitNonEmpty<T>(read: () => Promise<T[]>, tries = 50): Promise<T[]> {
  for (let i = 0; i < tries; i++) {
    await sleep(200);
    const got = await read();
    if (got.length > 0) return got;
  }
  return [];
}
