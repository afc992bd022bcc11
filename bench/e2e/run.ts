/**
 * End-to-end benchmark: runs every case in bench/e2e/cases (data files, one per case) in ONE
 * run on this machine, so crowd is compared with its ceiling and baselines under the same
 * conditions, and writes bench/results/<date>.json and a Markdown table (<date>.md); a full
 * run (every case, default rounds and durations) also writes latest.md, the SVG chart
 * latest.svg and the README's table.
 *
 *   npm run bench:e2e [-- --only 04,05] [--duration 5] [--rounds 3] [--connections 200]
 *
 * --connections runs the selected cases at another connection count (a sweep: their names say
 * so; ratios stay inside the run).
 *
 * Cases that need Redis (a `redis` sink, or the fastify-ioredis baseline) get their own
 * redis-server on a free loopback port (test/helpers/redis.ts), started before and stopped
 * after the case.
 *
 * Load comes from wrk (ceilings and max-rate cases) or autocannon (fixed-rate latency cases);
 * both run on the same 2-core box as the server, so absolute figures are conservative and the
 * ratios taken in one run are what matter. wrk (a Debian package) is installed when missing.
 *
 * crowd is judged against floors run in the same rounds: durable against the one-thread durable
 * server (bench/servers/uws-durable.ts), memory against the checks-only uWS server. Every case
 * also reports CPU µs per request by thread kind (bench/e2e/thread-cpu.ts), and the Markdown
 * ends with a projection of durable req/s by core count made from them (docs/deploy.md).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CreateQueueCommand, DeleteQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import amqp from 'amqplib';
import autocannon from 'autocannon';
import { startRedis, type RedisServer } from '../../test/helpers/redis.js';
import { writeReadmeTable } from './readme-table.js';
import { THREAD_KINDS, childCpuUs, cpuBetween, sampleThreads, withTimes, type KindCpu, type ThreadKind } from './thread-cpu.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const casesDir = path.join(repo, 'bench/e2e/cases');
const resultsDir = path.join(repo, 'bench/results');

interface Case {
  id: string;
  name: string;
  server: 'uws-hello' | 'uws-checked' | 'uws-durable' | 'fastify-hello' | 'fastify-kafkajs' | 'fastify-ioredis' | 'fastify-amqplib' | 'fastify-sqs' | 'crowd';
  /**
   * crowd: deliver to a Kafka sink (a real broker, scripts/kafka.sh), a Redis stream (the
   * case's own redis-server), or an http sink whose pool is one `backend` started for the case
   * (bench/servers/<backend>.js).
   */
  sink?: 'kafka' | 'redis' | 'http' | 'amqp' | 'sqs';
  /** amqp / sqs: stop that sink's broker (scripts/rabbitmq.sh, elasticmq.sh) for the case: crowd's ingest rate with it down. */
  brokerDown?: boolean;
  /** Redis sink: which writer (default: the sink's `auto`). */
  redisDriver?: 'native' | 'js';
  /** Stop the case's redis-server before crowd starts (crowd's ingest rate with its sink down). */
  redisDown?: boolean;
  backend?: 'http-backend';
  /**
   * Start the backend only after the load: crowd stores a backlog with its pool's only server
   * down, then the measure is how fast the sink forwards that backlog on its own (drainPerSec).
   */
  backendAfterLoad?: boolean;
  /** Extra options of the case's sink (e.g. an http sink's `rate`, `concurrency`). */
  sinkOptions?: Record<string, unknown>;
  /** Extra options of an http sink's pool (e.g. `connections`, `pipelining`). */
  poolOptions?: Record<string, unknown>;
  /** Offered load in requests/s (autocannon), when not derived from another case (rateOf). */
  fixedRate?: number;
  /** Forwarding: compare the end-to-end rate with this case's accepted (durable ingest) rate. */
  ingestOf?: string;
  /** Rate limit: the rate the backend saw over `windowS` full seconds of backlog, vs the sink's `rate`. */
  measureBackendRate?: { windowS: number };
  /** Stop the broker for this case (crowd's ingest rate with its sink down). */
  kafkaDown?: boolean;
  /** After the load, wait until the sink has delivered everything: end-to-end rate. */
  measureDelivery?: boolean;
  /** Pin the server to these CPUs (taskset -c), for the scaling cases. */
  cpus?: string;
  /** crowd: thread counts for the scaling cases. */
  threads?: { acceptors: number; lanes: number };
  /** crowd: `ingest` options of its config (e.g. `ackWait`). */
  ingest?: Record<string, unknown>;
  /**
   * crowd: keep the data directory on tmpfs (/dev/shm), where fdatasync costs nothing: the same
   * durable path with the disk taken out, to tell the disk's share of the round trip from
   * the hand-offs' (case 04t).
   */
  tmpfs?: boolean;
  /**
   * Cases of one group run in rounds, interleaved (A B C, A B C, ...), where the group's first
   * case stands; each reports its median round, and ratios inside the group are taken round by
   * round (same minute, same neighbours) and their median reported. This machine's throughput
   * drifts by up to ±20% between identical runs a minute apart (docs/benchmarks.md).
   */
  group?: string;
  role: 'ceiling' | 'floor' | 'baseline' | 'baseline-kafka' | 'baseline-redis' | 'baseline-amqp' | 'baseline-sqs' | 'crowd';
  tool: 'wrk' | 'autocannon';
  connections: number;
  duration: number;
  bodyBytes: number;
  ack?: 'memory' | 'durable';
  rateOf?: string;
  rateFraction?: number;
  target?: { ratioToCeiling?: number; ratioToFloor?: number; goal?: number; p99Ms?: number; e2eRatioToBaseline?: number; e2eGoal?: number; forwardRatio?: number; rateTolerance?: number };
  baselineOf?: string;
  /**
   * The floor this case is judged against (same group, same rounds): crowd durable against the
   * one-thread durable server (04f/04fc), crowd memory against the checks-only floor (01b/01d).
   */
  floorOf?: string;
}

/**
 * CPU time per unit of work by thread kind over the load (/proc/<pid>/task/*: bench/e2e/thread-cpu.ts):
 * µs per request answered for every kind; the lane's per record stored (= per 2xx) and the main
 * thread's per message delivered where the case measures delivery (then over load + drain).
 */
interface CpuFigures {
  perRequestUs: Record<ThreadKind, number> & { total: number };
  /** lane µs per record stored (2xx answers). */
  lanePerRecordUs: number;
  /** main-thread µs per delivered message (load + drain), when the case measures delivery. */
  mainPerDeliveredUs?: number;
  /** wrk's own CPU per request (the load generator shares the machine). */
  wrkPerRequestUs?: number;
  threads: Record<ThreadKind, number>;
  requests: number;
  /** The acceptor's µs per request / the floor's whole-process µs per request (durable cases). */
  acceptorToFloorCpu?: number;
  floorId?: string;
}

interface Outcome {
  id: string;
  name: string;
  role: string;
  tool: string;
  connections: number;
  durationS: number;
  bodyBytes: number;
  rate?: number;
  reqPerSec: number;
  non2xx: number;
  errors: number;
  latencyMs: { p50: number; p90?: number; p99: number; p999: number; max: number };
  serverCpuPct: number;
  serverPeakRssMb: number;
  ratioToCeiling?: number;
  ratioToBaseline?: number;
  target?: Case['target'];
  verdict?: string;
  /** Messages accepted and delivered to the sink per second, load + drain time. */
  endToEndPerSec?: number;
  drainS?: number;
  deliveryLatencyMs?: { p50: number; p99: number };
  ratioToBaselineE2E?: number;
  /** The case the e2e ratio was taken against. */
  baselineId?: string;
  /** endToEndPerSec (or drainPerSec) / the accepted rate of the `ingestOf` case. */
  forwardRatio?: number;
  /** backendAfterLoad: messages forwarded per second, from the first delivery to the last. */
  drainPerSec?: number;
  /** measureBackendRate: what the backend received per second over the window, and vs the limit. */
  backendRate?: { perSec: number; limit: number; deviation: number; perSecond: number[] };
  /** Grouped cases: every round's figures, in round order; the outcome is the median round. */
  rounds?: Round[];
  /** Requests answered during the load (wrk's count). */
  requests?: number;
  /** vs the case's `floorOf` (median of per-round ratios when both ran in rounds). */
  ratioToFloor?: number;
  floorId?: string;
  cpu?: CpuFigures;
}

interface Round {
  reqPerSec: number;
  endToEndPerSec?: number;
  p99Ms: number;
}

interface RunArgs {
  only: string[] | null;
  duration: number | null;
  rounds: number;
  /** Every selected case at this connection count instead of its own (a concurrency sweep). */
  connections: number | null;
}

function args(): RunArgs {
  const { values: v } = parseArgs({
    args: process.argv.slice(2),
    options: { only: { type: 'string' }, duration: { type: 'string' }, rounds: { type: 'string' }, connections: { type: 'string' } },
  });
  const num = (x: string | undefined) => (x === undefined ? null : Number(x));
  return { only: v.only?.split(',') ?? null, duration: num(v.duration), rounds: num(v.rounds) ?? 3, connections: num(v.connections) };
}

function loadCases({ only, duration, connections }: RunArgs): Case[] {
  return fs
    .readdirSync(casesDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ id: f.replace(/\.json$/, ''), ...(JSON.parse(fs.readFileSync(path.join(casesDir, f), 'utf8')) as Omit<Case, 'id'>) }))
    .filter((c) => !only || only.some((o) => c.id.startsWith(o)))
    .map((c) => (duration ? { ...c, duration } : c))
    .map((c) => (connections ? { ...c, connections, name: `${c.name}, ${connections} connections` } : c));
}

function cpuTicks(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+([0-9]+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

let nextPort = 14100;

const kafkaPort = Number(process.env.CROWD_BENCH_KAFKA_PORT ?? 19192);
const kafkaBroker = `127.0.0.1:${kafkaPort}`;
const kafkaDir = path.join(repo, '.cache/kafka/run-bench');

function kafka(cmd: 'up' | 'down' | 'status'): boolean {
  const r = spawnSync(path.join(repo, 'scripts/kafka.sh'), [cmd, '--port', String(kafkaPort), '--dir', kafkaDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  return r.status === 0;
}

/** RabbitMQ (scripts/rabbitmq.sh) and ElasticMQ (scripts/elasticmq.sh) on the bench's own ports. */
const rabbitPort = Number(process.env.CROWD_BENCH_RABBITMQ_PORT ?? 19772);
const rabbitUrl = `amqp://guest:guest@127.0.0.1:${rabbitPort}/`;
const sqsPort = Number(process.env.CROWD_BENCH_ELASTICMQ_PORT ?? 19424);
const sqsEndpoint = `http://127.0.0.1:${sqsPort}`;
const sqsCredentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };

function broker(which: 'amqp' | 'sqs', cmd: 'up' | 'down' | 'status'): boolean {
  const script = which === 'amqp' ? 'scripts/rabbitmq.sh' : 'scripts/elasticmq.sh';
  const r = spawnSync(path.join(repo, script), [cmd, '--port', String(which === 'amqp' ? rabbitPort : sqsPort)], { stdio: ['ignore', 'ignore', 'inherit'] });
  return r.status === 0;
}

function brokerOf(c: Case): 'amqp' | 'sqs' | null {
  if (c.sink === 'amqp' || c.server === 'fastify-amqplib') return 'amqp';
  if (c.sink === 'sqs' || c.server === 'fastify-sqs') return 'sqs';
  return null;
}

/** A fresh queue for a case (amqp: durable, on the default exchange; sqs: standard), and how to delete it. */
async function caseQueue(c: Case): Promise<{ name: string; url: string; remove: () => Promise<void> } | null> {
  const which = brokerOf(c);
  const name = `bench-${c.id}-${Date.now()}`;
  if (which === 'amqp') {
    const declare = async (f: (ch: amqp.Channel) => Promise<unknown>) => {
      const conn = await amqp.connect(rabbitUrl);
      try {
        await f(await conn.createChannel());
      } finally {
        await conn.close().catch(() => {});
      }
    };
    await declare((ch) => ch.assertQueue(name, { durable: true }));
    return { name, url: name, remove: () => declare((ch) => ch.deleteQueue(name)).catch(() => {}) };
  }
  if (which === 'sqs') {
    const client = new SQSClient({ region: 'us-east-1', endpoint: sqsEndpoint, credentials: { ...sqsCredentials } });
    const url = (await client.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
    return { name, url, remove: async () => void (await client.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => {})) };
  }
  return null;
}

async function adminJson(port: number, p: string): Promise<any> {
  const r = await fetch(`http://127.0.0.1:${port}${p}`);
  return p === '/metrics' ? r.text() : r.json();
}

/**
 * Polls a sink's /stats every 100 ms (at most 2 minutes) until `done` says so; calls `seen`
 * with each delivered count first. Returns the last delivered count.
 */
async function pollDelivered(adminPort: number, sink: string, done: (delivered: number, backlogBytes: number) => boolean, seen: (delivered: number) => void = () => {}): Promise<number> {
  let delivered = 0;
  for (let i = 0; i < 1200; i++) {
    const st = (await adminJson(adminPort, '/stats')).sinks?.[sink];
    delivered = st?.delivered ?? 0;
    seen(delivered);
    if (done(delivered, st?.backlogBytes ?? -1)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return delivered;
}

/** After the load: waits until crowd's sink has delivered everything it accepted. */
async function awaitDrain(adminPort: number, accepted: number, sink: string): Promise<{ drainS: number; delivered: number; p50: number; p99: number }> {
  const t0 = performance.now();
  const delivered = await pollDelivered(adminPort, sink, (d, backlog) => d >= accepted && backlog === 0);
  const drainS = (performance.now() - t0) / 1000;
  const metrics: string = await adminJson(adminPort, '/metrics');
  const q = (p: string) => Number(new RegExp(`crowd_sink_delivery_latency_seconds\\{sink="${sink}",quantile="${p}"\\} ([0-9.e+-]+)`).exec(metrics)?.[1] ?? 'NaN') * 1000;
  return { drainS, delivered, p50: q('0.5'), p99: q('0.99') };
}

/** node <args>, or taskset -c <cpus> node <args> for a pinned case. */
function pinned(c: Case, args: string[]): [string, string[]] {
  return c.cpus ? ['taskset', ['-c', c.cpus, process.execPath, ...args]] : [process.execPath, args];
}

/** Spawns a node script and resolves once it printed "listening" or crowd's "started" line. */
async function awaitListening(child: ChildProcess, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start`)), 20000);
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('listening') || out.includes('"event":"started"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} exited ${code}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function startServer(c: Case, redis: RedisServer | null, queue: { name: string; url: string } | null): Promise<{ child: ChildProcess; port: number; adminPort: number; backendPort: number; startBackend: () => Promise<void>; stop: () => Promise<void> }> {
  const port = nextPort++;
  let child: ChildProcess;
  let dataDir: string | null = null;
  let backend: ChildProcess | null = null;
  const backendPort = port + 2000;
  const startBackend = async () => {
    if (!c.backend || backend) return;
    backend = spawn(process.execPath, [path.join(repo, `dist/bench/servers/${c.backend}.js`), String(backendPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await awaitListening(backend, c.backend);
  };
  if (!c.backendAfterLoad) await startBackend();
  if (c.server === 'crowd') {
    dataDir = fs.mkdtempSync(path.join(c.tmpfs ? '/dev/shm' : os.tmpdir(), 'crowd-bench-'));
    const cfg = path.join(dataDir, 'bench.json');
    const sinks = c.sink === 'kafka' ? { kafka: { type: 'kafka', brokers: [kafkaBroker], topic: `bench-${c.id}-${Date.now()}` } }
      : c.sink === 'redis' ? { redis: { type: 'redis', url: redis!.url, stream: `bench-${c.id}`, ...(c.redisDriver ? { driver: c.redisDriver } : {}) } }
      : c.sink === 'http' ? { http: { type: 'http', pool: 'bench', ...c.sinkOptions } }
      : c.sink === 'amqp' ? { amqp: { type: 'amqp', url: rabbitUrl, routingKey: queue!.name, ...c.sinkOptions } }
      : c.sink === 'sqs' ? { sqs: { type: 'sqs', queueUrl: queue!.url, endpoint: sqsEndpoint, region: 'us-east-1', credentials: sqsCredentials, ...c.sinkOptions } } : {};
    const pools = c.sink === 'http' ? { bench: { servers: [`http://127.0.0.1:${backendPort}`], healthCheck: { interval: '200ms' }, ...c.poolOptions } } : {};
    fs.writeFileSync(cfg, JSON.stringify({ logLevel: 'warn', sinks, pools, ...(c.threads ? { threads: c.threads } : {}), ...(c.ingest ? { ingest: c.ingest } : {}), routes: [{ path: '/leads', ack: c.ack ?? 'durable', sinks: Object.keys(sinks) }] }));
    const [cmd, args] = pinned(c, [path.join(repo, 'dist/src/cli.js'), 'start', '--config', cfg]);
    child = spawn(cmd, args, {
      env: { ...process.env, CROWD_PORT: String(port), CROWD_ADMIN_PORT: String(port + 1000), CROWD_DATA_DIR: path.join(dataDir, 'data'), CROWD_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  } else {
    // The durable floor appends to a file on the same file system as crowd's log (os.tmpdir()).
    if (c.server === 'uws-durable') dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crowd-bench-floor-'));
    const extra = c.server === 'fastify-kafkajs' ? [kafkaBroker, `bench-baseline-${Date.now()}`]
      : c.server === 'fastify-ioredis' ? [String(redis!.port), 'bench-baseline']
      : c.server === 'uws-durable' ? [path.join(dataDir!, 'events.log')]
      : c.server === 'fastify-amqplib' ? [rabbitUrl, queue!.name]
      : c.server === 'fastify-sqs' ? [sqsEndpoint, queue!.url]
      : [];
    const [cmd, args] = pinned(c, [path.join(repo, `dist/bench/servers/${c.server}.js`), String(port), ...extra]);
    child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  }
  await awaitListening(child, c.server);
  return {
    child,
    port,
    adminPort: port + 1000,
    backendPort,
    startBackend,
    stop: async () => {
      await stopChild(child);
      if (backend) await stopChild(backend);
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** What a load tool reports; `loadCpuUs` is the tool's own CPU (wrk only). */
type LoadOutcome = Omit<Outcome, 'serverCpuPct' | 'serverPeakRssMb' | 'id' | 'name' | 'role'> & { loadCpuUs?: number };

function runWrk(c: Case, port: number, rate?: number, latencyMs = 0): LoadOutcome {
  // wrk's delay() is in whole milliseconds per connection; pick the connection count that
  // gives the wanted rate with a 1 ms+ pause between a response and the next request.
  let connections = c.connections;
  let delayMs = 0;
  if (rate) {
    delayMs = Math.max(1, Math.round((c.connections * 1000) / rate - latencyMs));
    connections = Math.max(1, Math.round((rate * (delayMs + latencyMs)) / 1000));
  }
  const [cmd, argv] = withTimes('wrk', ['-t1', `-c${connections}`, `-d${c.duration}s`, '-s', path.join(repo, 'bench/e2e/post.lua'), `http://127.0.0.1:${port}/leads`]);
  const r = spawnSync(cmd, argv, {
    env: { ...process.env, BODY_BYTES: String(c.bodyBytes), DELAY_MS: String(delayMs) },
    encoding: 'utf8',
  });
  if (r.error || r.status === 127) throw new Error(`wrk did not run (is it installed? apt-get install wrk): ${r.error?.message ?? r.stderr}`);
  const { stdout, cpuUs } = childCpuUs(r.stdout);
  const line = stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk gave no summary: ${r.stdout} ${r.stderr}`);
  const j = JSON.parse(line.slice(8)) as Record<string, number>;
  return {
    tool: 'wrk', connections, durationS: c.duration, bodyBytes: c.bodyBytes, ...(rate ? { rate } : {}),
    requests: j.requests,
    ...(cpuUs !== null ? { loadCpuUs: cpuUs } : {}),
    reqPerSec: Math.round((j.requests / j.durationUs) * 1e6),
    non2xx: j.non2xx,
    errors: j.connectErrors + j.readErrors + j.writeErrors + j.timeouts,
    latencyMs: { p50: j.p50 / 1000, p90: j.p90 / 1000, p99: j.p99 / 1000, p999: j.p999 / 1000, max: j.max / 1000 },
  };
}

async function runAutocannon(c: Case, port: number, rate: number | undefined): Promise<LoadOutcome> {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/leads`, method: 'POST', connections: c.connections, duration: c.duration,
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ e: 'x'.repeat(Math.max(0, c.bodyBytes - 10)) }), // bodyBytes of JSON
    ...(rate ? { overallRate: rate } : {}),
  });
  return {
    tool: 'autocannon', connections: c.connections, durationS: c.duration, bodyBytes: c.bodyBytes, rate,
    requests: r.requests.total,
    reqPerSec: Math.round(r.requests.average),
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, p999: r.latency.p99_9, max: r.latency.max },
  };
}

/** A backlog's forwarding rate: delivered messages per second from the first delivery to the last. */
async function forwardRate(adminPort: number, accepted: number, sink: string): Promise<number> {
  let first = 0;
  let firstAt = 0;
  const delivered = await pollDelivered(adminPort, sink, (d) => d >= accepted, (d) => {
    if (firstAt === 0 && d > 0) {
      first = d;
      firstAt = performance.now();
    }
  });
  return Math.round((delivered - first) / ((performance.now() - firstAt) / 1000));
}

/**
 * The rate the backend saw over `windowS` full seconds, skipping the first second it got
 * traffic (partial) and stopping before the last one; the offered load keeps a backlog, so the
 * sink's rate limit is the only brake.
 */
async function backendRate(port: number, windowS: number, limit: number): Promise<Outcome['backendRate']> {
  const j = (await (await fetch(`http://127.0.0.1:${port}/count`)).json()) as { perSecond: Record<string, number> };
  const secs = Object.keys(j.perSecond).map(Number).sort((a, b) => a - b);
  const window = secs.slice(1, 1 + windowS).map((s) => j.perSecond[String(s)] ?? 0);
  const perSec = Math.round(window.reduce((a, b) => a + b, 0) / Math.max(1, window.length));
  return { perSec, limit, deviation: (perSec - limit) / limit, perSecond: window };
}

/** "75,936 / 90,961 / 82,189" for a grouped case, in round order. */
function roundsCell(o: Outcome, f: (r: Round) => number): string {
  return o.rounds ? o.rounds.map((r) => f(r).toLocaleString('en-US')).join(' / ') : '';
}

function table(outcomes: Outcome[], meta: Record<string, string>): string {
  const rows = outcomes.map((o) =>
    `| ${o.name} | ${o.tool} c${o.connections}${o.rate ? ` @${o.rate}/s` : ''} | ${o.reqPerSec.toLocaleString('en-US')} | ${o.latencyMs.p50.toFixed(2)} | ${o.latencyMs.p99.toFixed(2)} | ${o.latencyMs.p999.toFixed(2)} | ${o.ratioToCeiling !== undefined ? `${Math.round(o.ratioToCeiling * 100)}%` : ''} | ${o.ratioToBaseline !== undefined ? `${o.ratioToBaseline.toFixed(2)}x` : ''} | ${o.ratioToFloor !== undefined ? `${o.ratioToFloor.toFixed(2)}x ${o.floorId!.split('-')[0]}` : ''} | ${o.serverCpuPct}% | ${o.serverPeakRssMb} | ${o.non2xx + o.errors} | ${roundsCell(o, (r) => r.reqPerSec)} | ${o.verdict ?? ''} |`);
  return [
    `# crowd end-to-end benchmark, ${meta.date}`,
    '',
    `Machine: ${meta.machine}. Node ${meta.node}. One run; load generator on the same machine. Body ${outcomes[0]?.bodyBytes ?? ''} B JSON, POST /leads.`,
    '',
    'Cases with rounds ran interleaved with the others of their group (ceiling, memory, durable, ...; Redis baseline and crowd -> Redis): each row is the median round, and its ratios are the median of the per-round ratios.',
    '',
    '| case | load | req/s | p50 ms | p99 ms | p99.9 ms | vs ceiling | vs baseline | vs floor | server CPU | peak RSS MB | non-2xx + errors | rounds, req/s | target |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...rows,
    '',
    ...(outcomes.some((o) => o.drainPerSec) ? [
      '| case | accepted req/s (sink\'s only server down) | then forwarded msg/s (backlog, server up) | vs durable ingest | target |',
      '| --- | ---: | ---: | ---: | --- |',
      ...outcomes.filter((o) => o.drainPerSec).map((o) => `| ${o.name} | ${o.reqPerSec.toLocaleString('en-US')} | ${o.drainPerSec!.toLocaleString('en-US')} | ${o.forwardRatio ? `${Math.round(o.forwardRatio * 100)}%` : ''} | ${o.verdict ?? ''} |`),
      '',
    ] : []),
    ...(outcomes.some((o) => o.endToEndPerSec) ? [
      '| case | accepted req/s | end-to-end msg/s (accepted and delivered) | drain after load s | delivery latency p50 / p99 ms | e2e vs baseline | rounds, e2e msg/s | target |',
      '| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |',
      ...outcomes.filter((o) => o.endToEndPerSec).map((o) => `| ${o.name} | ${o.reqPerSec.toLocaleString('en-US')} | ${o.endToEndPerSec!.toLocaleString('en-US')} | ${o.drainS ?? ''} | ${o.deliveryLatencyMs ? `${o.deliveryLatencyMs.p50} / ${o.deliveryLatencyMs.p99}` : ''} | ${o.ratioToBaselineE2E ? `${o.ratioToBaselineE2E.toFixed(2)}x` : ''} | ${roundsCell(o, figure)} | ${o.verdict ?? ''} |`),
      '',
    ] : []),
    'Ceiling: a bare uWebSockets.js server answering a fixed receipt (stores nothing). Baseline: fastify hello-world (stores nothing).',
    'Floors: 01b/01d, the ceiling plus crowd\'s input checks (what `ack: memory` is judged against); 04f/04fc, the one-thread durable server (bench/servers/uws-durable.ts: append + fdatasync once per event-loop turn, then answer; what `ack: durable` is judged against). "vs floor" is the median of the per-round ratios.',
    'Server CPU: the server process\'s CPU time over the run divided by the wall time (200% = both cores).',
    '',
  ].join('\n');
}

function svg(outcomes: Outcome[]): string {
  const w = 760;
  const barH = 26;
  const left = 330;
  const max = Math.max(...outcomes.map((o) => o.reqPerSec), 1);
  const h = outcomes.length * (barH + 10) + 40;
  const bars = outcomes.map((o, i) => {
    const y = 30 + i * (barH + 10);
    const bw = Math.round(((w - left - 90) * o.reqPerSec) / max);
    const color = o.role === 'ceiling' ? '#999' : o.role === 'floor' ? '#79b' : o.role.startsWith('baseline') ? '#c96' : '#3a7';
    return `<text x="${left - 8}" y="${y + 17}" text-anchor="end" font-size="12">${o.name.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>` +
      `<rect x="${left}" y="${y}" width="${bw}" height="${barH}" fill="${color}"/>` +
      `<text x="${left + bw + 6}" y="${y + 17}" font-size="12">${o.reqPerSec.toLocaleString('en-US')}/s</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif">` +
    `<text x="10" y="18" font-size="14" font-weight="bold">requests per second (higher is better)</text>${bars.join('')}</svg>\n`;
}

/** Runs one case once: its servers (and Redis/Kafka state), the load, the drain if it measures one. */
async function runCase(c: Case, byId: Map<string, Outcome>): Promise<Outcome> {
  if (c.kafkaDown) kafka('down');
  const redis = c.sink === 'redis' || c.server === 'fastify-ioredis' ? await startRedis() : null;
  if (c.redisDown) await redis!.stop();
  const queue = await caseQueue(c);
  if (c.brokerDown) broker(brokerOf(c)!, 'down');
  const srv = await startServer(c, redis, queue);
  await new Promise((r) => setTimeout(r, 500));
  const ticks0 = cpuTicks(srv.child.pid!);
  const threads0 = sampleThreads(srv.child.pid!);
  const t0 = performance.now();
  const rate = c.fixedRate ?? (c.rateOf && byId.get(c.rateOf) ? Math.round(byId.get(c.rateOf)!.reqPerSec * (c.rateFraction ?? 0.5)) : undefined);
  const base = c.rateOf ? byId.get(c.rateOf) : undefined;
  const { loadCpuUs, ...r } = c.tool === 'wrk' ? runWrk(c, srv.port, rate, base?.latencyMs.p50) : await runAutocannon(c, srv.port, rate);
  const wall = (performance.now() - t0) / 1000;
  const ticks = cpuTicks(srv.child.pid!) - ticks0; // USER_HZ = 100 ticks/s, so ticks / s = %
  const threads1 = sampleThreads(srv.child.pid!);
  const o: Outcome = { id: c.id, name: c.name, role: c.role, ...r, serverCpuPct: Math.round(ticks / wall), serverPeakRssMb: peakRssMb(srv.child.pid!), target: c.target };
  if (o.requests) o.cpu = cpuFigures(cpuBetween(threads0, threads1), o.requests, o.requests - o.non2xx, loadCpuUs);
  if (c.backendAfterLoad) {
    const accepted = Math.round(o.reqPerSec * o.durationS) - o.non2xx;
    await srv.startBackend();
    o.drainPerSec = await forwardRate(srv.adminPort, accepted, c.sink ?? 'http');
  } else if (c.measureDelivery) {
    const accepted = Math.round(o.reqPerSec * o.durationS) - o.non2xx;
    const d = await awaitDrain(srv.adminPort, accepted, c.sink ?? 'kafka');
    o.drainS = Number(d.drainS.toFixed(2));
    o.endToEndPerSec = Math.round(d.delivered / (o.durationS + d.drainS));
    o.deliveryLatencyMs = { p50: Number(d.p50.toFixed(1)), p99: Number(d.p99.toFixed(1)) };
    if (o.cpu && d.delivered > 0) o.cpu.mainPerDeliveredUs = round1(cpuBetween(threads0, sampleThreads(srv.child.pid!)).us.main / d.delivered);
  }
  if (c.server === 'fastify-kafkajs' || c.server === 'fastify-ioredis' || c.server === 'fastify-amqplib' || c.server === 'fastify-sqs') o.endToEndPerSec = o.reqPerSec;
  if (c.measureBackendRate) o.backendRate = await backendRate(srv.backendPort, c.measureBackendRate.windowS, Number(c.sinkOptions?.rate));
  await srv.stop();
  await redis?.stop();
  if (c.kafkaDown) kafka('up');
  if (c.brokerDown) broker(brokerOf(c)!, 'up');
  await queue?.remove();
  return o;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

function cpuFigures(k: KindCpu, requests: number, stored: number, loadCpuUs: number | undefined): CpuFigures {
  const per = Object.fromEntries(THREAD_KINDS.map((kind) => [kind, round1(k.us[kind] / requests)])) as Record<ThreadKind, number>;
  const total = THREAD_KINDS.reduce((a, kind) => a + k.us[kind], 0);
  return {
    perRequestUs: { ...per, total: round1(total / requests) },
    lanePerRecordUs: round1(k.us.lane / Math.max(1, stored)),
    ...(loadCpuUs !== undefined ? { wrkPerRequestUs: round1(loadCpuUs / requests) } : {}),
    threads: k.threads,
    requests,
  };
}

/** "the durable floor (04f)" / "the checks-only floor (01b)". */
function floorLabel(f: Outcome): string {
  return `${f.id.startsWith('04f') ? 'the one-thread durable floor' : 'the checks-only floor'} (${f.id.split('-')[0]})`;
}

/** A grouped case's CPU figures: the median over its rounds, kind by kind. */
function medianCpu(rounds: Outcome[]): CpuFigures | undefined {
  const all = rounds.map((r) => r.cpu).filter((c): c is CpuFigures => c !== undefined);
  if (all.length === 0) return undefined;
  const med = (f: (c: CpuFigures) => number | undefined) => {
    const xs = all.map(f).filter((x): x is number => x !== undefined);
    return xs.length ? round1(median(xs)) : undefined;
  };
  const perRequestUs = Object.fromEntries([...THREAD_KINDS, 'total' as const].map((k) => [k, med((c) => c.perRequestUs[k])])) as CpuFigures['perRequestUs'];
  const mainPerDeliveredUs = med((c) => c.mainPerDeliveredUs);
  const wrkPerRequestUs = med((c) => c.wrkPerRequestUs);
  return {
    perRequestUs,
    lanePerRecordUs: med((c) => c.lanePerRecordUs)!,
    ...(mainPerDeliveredUs !== undefined ? { mainPerDeliveredUs } : {}),
    ...(wrkPerRequestUs !== undefined ? { wrkPerRequestUs } : {}),
    threads: all[0].threads,
    requests: Math.round(median(all.map((c) => c.requests))),
  };
}

/** Acceptor CPU per durable request vs the one-thread floor's whole CPU per request: the scaling target. */
const ACCEPTOR_TO_FLOOR_CPU_TARGET = 0.6;

function cpuTable(outcomes: Outcome[]): string {
  const rows = outcomes.filter((o) => o.cpu && (o.role === 'crowd' || o.role === 'floor' || o.role === 'ceiling'));
  if (rows.length === 0) return '';
  const f = (x: number | undefined) => (x === undefined ? '' : x.toFixed(1));
  const verdict = (o: Outcome) => o.cpu?.acceptorToFloorCpu === undefined ? '' : `${o.cpu.acceptorToFloorCpu <= ACCEPTOR_TO_FLOOR_CPU_TARGET ? 'MET' : 'MISSED'} acceptor <= ${ACCEPTOR_TO_FLOOR_CPU_TARGET}x the floor's whole (${o.cpu.acceptorToFloorCpu.toFixed(2)}x ${o.cpu.floorId!.split('-')[0]})`;
  return [
    '',
    '## CPU µs per request by thread kind',
    '',
    'From `/proc/<pid>/task/*/stat` (utime + stime, 10 ms ticks) before and after the load, divided by the requests answered (the lane: by records stored; main per delivered: over load + drain, by messages delivered). Threads by name: crowd\'s `crowd-acc<i>` (acceptor), `crowd-lane<i>` (lane), the main thread (tid = pid), and "other" (V8 platform/GC threads, libuv pool, librdkafka). A one-thread server (the floors, the ceiling) is main + other. Grouped cases: median over rounds. These figures, not req/s on 2 shared cores, decide how crowd scales (docs/deploy.md).',
    '',
    '| case | requests | acceptor | lane (per record) | main | main per delivered | other | total | wrk | threads (acc/lane/other) | acceptor vs floor (target) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...rows.map((o) => {
      const c = o.cpu!;
      return `| ${o.name} | ${c.requests.toLocaleString('en-US')} | ${f(c.perRequestUs.acceptor)} | ${f(c.lanePerRecordUs)} | ${f(c.perRequestUs.main)} | ${f(c.mainPerDeliveredUs)} | ${f(c.perRequestUs.other)} | ${f(c.perRequestUs.total)} | ${f(c.wrkPerRequestUs)} | ${c.threads.acceptor}/${c.threads.lane}/${c.threads.other} | ${verdict(o)} |`;
    }),
    '',
  ].join('\n');
}

interface Projection {
  /** The crowd case and the floor case whose CPU figures the projection is made from. */
  from: string;
  floor: string;
  /** The one-thread floor's measured req/s: one thread, so more cores do not raise it. */
  floorReqPerSec: number;
  /** The most its one thread could do at its CPU per request (1e6 / µs), were it never idle. */
  floorCpuBoundReqPerSec: number;
  rows: Array<{ cores: number; acceptors: number; lanes: number; reqPerSec: number; limitedBy: string; bounds: Record<string, number>; vsFloor: number }>;
}

/**
 * Projected (not measured) durable req/s for 4-32 cores from the per-thread CPU figures of the
 * durable case at 200 connections (04c; else 04), with crowd's default thread counts
 * (acceptors = cores/2, lanes = ceil(cores/4)): the least of what the acceptors, the lanes,
 * the main thread and all cores together can do at those µs per request. The load generator
 * is assumed to be elsewhere; the disk and the NIC are not modelled (docs/deploy.md).
 */
function projection(outcomes: Outcome[]): Projection | undefined {
  const o = outcomes.find((x) => x.id.startsWith('04c-') && x.cpu) ?? outcomes.find((x) => x.id.startsWith('04-') && x.cpu);
  const floor = o?.floorId ? outcomes.find((x) => x.id === o.floorId) : undefined;
  if (!o?.cpu || !floor) return undefined;
  const c = o.cpu;
  // Compared with the best the floor's one thread could do (CPU-bound), not its measured rate:
  // the comparison cannot flatter crowd by the floor's idle time waiting for fdatasync.
  const floorBest = Math.max(floor.reqPerSec, floor.cpu ? 1e6 / Math.max(0.1, floor.cpu.perRequestUs.total) : 0);
  const rows = [4, 8, 16, 32].map((cores) => {
    const acceptors = Math.max(1, Math.floor(cores / 2));
    const lanes = Math.max(1, Math.ceil(cores / 4));
    const bounds: Record<string, number> = {
      'acceptor CPU': (acceptors * 1e6) / Math.max(0.1, c.perRequestUs.acceptor),
      'lane CPU': (lanes * 1e6) / Math.max(0.1, c.lanePerRecordUs),
      // Under 0.5 µs per request (no sinks) the main thread is no bound at all.
      ...(c.perRequestUs.main >= 0.5 ? { 'main thread': 1e6 / c.perRequestUs.main } : {}),
      'all cores': (cores * 1e6) / Math.max(0.1, c.perRequestUs.total),
    };
    const [limitedBy, reqPerSec] = Object.entries(bounds).sort((a, b) => a[1] - b[1])[0];
    return { cores, acceptors, lanes, reqPerSec: Math.round(reqPerSec), limitedBy, bounds: Object.fromEntries(Object.entries(bounds).map(([k, v]) => [k, Math.round(v)])), vsFloor: Number((reqPerSec / floorBest).toFixed(2)) };
  });
  return { from: o.id, floor: floor.id, floorReqPerSec: floor.reqPerSec, floorCpuBoundReqPerSec: Math.round(floorBest), rows };
}

function projectionTable(p: Projection | undefined): string {
  if (!p) return '';
  const n = (x: number) => x.toLocaleString('en-US');
  return [
    '',
    `## Projected, not measured: durable req/s by core count (from ${p.from}'s CPU figures)`,
    '',
    `Crowd's default threads per size; each bound is threads x 1e6 / µs per request of that kind; the least one is the projection. The load generator is assumed to be on another machine; the disk's fdatasync rate and bandwidth and the NIC are not in the model (docs/deploy.md). The one-thread durable floor (${p.floor}) measured ${n(p.floorReqPerSec)} req/s; at its CPU per request its one thread could do at most ${n(p.floorCpuBoundReqPerSec)} req/s on any number of cores ("vs floor" is against that best case).`,
    '',
    '| cores | acceptors / lanes | acceptor CPU bound | lane CPU bound | main thread bound | all cores bound | projected req/s | limited by | vs floor |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
    ...p.rows.map((r) => `| ${r.cores} | ${r.acceptors} / ${r.lanes} | ${n(r.bounds['acceptor CPU'])} | ${n(r.bounds['lane CPU'])} | ${r.bounds['main thread'] ? n(r.bounds['main thread']) : '-'} | ${n(r.bounds['all cores'])} | ${n(r.reqPerSec)} | ${r.limitedBy} | ${r.vsFloor.toFixed(1)}x |`),
    '',
  ].join('\n');
}

/** What a round is judged by: delivered messages/s when the case measures delivery, else req/s. */
const figure = (o: { reqPerSec: number; endToEndPerSec?: number }) => o.endToEndPerSec ?? o.reqPerSec;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The median of per-round ratios a[r] / b[r] (both cases ran in the same rounds). */
function pairedRatio(a: Round[], b: Round[], f: (r: Round) => number): number {
  return median(a.map((r, i) => f(r) / f(b[i])));
}

/** The cases in running order: a group's cases, `rounds` times interleaved, where its first case stands. */
function schedule(cases: Case[], rounds: number): Case[][] {
  const steps: Case[][] = [];
  const seen = new Set<string>();
  for (const c of cases) {
    if (!c.group) steps.push([c]);
    else if (!seen.has(c.group)) {
      seen.add(c.group);
      const members = cases.filter((m) => m.group === c.group);
      for (let r = 0; r < rounds; r++) steps.push(members);
    }
  }
  return steps;
}

async function main(): Promise<void> {
  const a = args();
  const cases = loadCases(a);
  const { rounds } = a;
  const outcomes: Outcome[] = [];
  if (cases.some((c) => c.tool === 'wrk') && spawnSync('wrk', ['--version']).error) {
    spawnSync('bash', [path.join(repo, 'scripts/ensure-debian-packages.sh'), 'wrk'], { stdio: 'inherit' });
  }
  const needsKafka = cases.some((c) => c.sink === 'kafka' || c.server === 'fastify-kafkajs');
  const startedKafka = needsKafka && !kafka('status') ? kafka('up') : false;
  const started = (['amqp', 'sqs'] as const).filter((b) => cases.some((c) => brokerOf(c) === b) && !broker(b, 'status') && broker(b, 'up'));
  const byId = new Map<string, Outcome>();
  const samples = new Map<string, Outcome[]>();
  const runs = schedule(cases, rounds).flat();
  for (const [i, c] of runs.entries()) {
    const round = c.group ? ` round ${(samples.get(c.id)?.length ?? 0) + 1}/${rounds}` : '';
    process.stderr.write(`[${i + 1}/${runs.length}] ${c.name}${round} (${c.duration}s)... `);
    const o = await runCase(c, byId);
    process.stderr.write(`${o.reqPerSec.toLocaleString('en-US')} req/s${o.endToEndPerSec ? `, ${o.endToEndPerSec.toLocaleString('en-US')} delivered/s` : ''}, p99 ${o.latencyMs.p99.toFixed(2)} ms\n`);
    if (!c.group) {
      outcomes.push(o);
      byId.set(c.id, o);
      continue;
    }
    const got = samples.get(c.id) ?? [];
    got.push(o);
    samples.set(c.id, got);
    if (got.length === rounds) {
      // The median round stands for the case (its latencies, CPU and RSS come with it).
      const mid = [...got].sort((a, b) => figure(a) - figure(b))[(rounds - 1) >> 1];
      const out: Outcome = { ...mid, rounds: got.map((g) => ({ reqPerSec: g.reqPerSec, endToEndPerSec: g.endToEndPerSec, p99Ms: g.latencyMs.p99 })), cpu: medianCpu(got) };
      outcomes.push(out);
      byId.set(c.id, out);
    }
  }
  outcomes.sort((a, b) => cases.findIndex((c) => c.id === a.id) - cases.findIndex((c) => c.id === b.id));
  // A case is compared with the ceiling of its own group (same connections, same rounds) when
  // the group has one, otherwise with the first ceiling.
  const groupOf = (o: Outcome) => cases.find((c) => c.id === o.id)?.group;
  const ceilings = outcomes.filter((o) => o.role === 'ceiling');
  const ceilingFor = (o: Outcome) => ceilings.find((x) => groupOf(x) !== undefined && groupOf(x) === groupOf(o)) ?? ceilings[0];
  const baseline = outcomes.find((o) => o.role === 'baseline');
  for (const o of outcomes) {
    const ceiling = ceilingFor(o);
    if (ceiling && o.role !== 'ceiling' && !o.rate) {
      o.ratioToCeiling = o.rounds && ceiling.rounds ? pairedRatio(o.rounds, ceiling.rounds, (r) => r.reqPerSec) : o.reqPerSec / ceiling.reqPerSec;
    }
    if (baseline && o.role === 'crowd' && !o.rate) o.ratioToBaseline = o.reqPerSec / baseline.reqPerSec;
    const t = o.target;
    if (t?.ratioToCeiling !== undefined && o.ratioToCeiling !== undefined) {
      o.verdict = `${o.ratioToCeiling >= t.ratioToCeiling ? 'MET' : 'MISSED'} >= ${Math.round(t.ratioToCeiling * 100)}%${t.goal ? ` (goal ${Math.round(t.goal * 100)}%)` : ''}`;
    }
    if (t?.p99Ms !== undefined) o.verdict = `${o.latencyMs.p99 <= t.p99Ms && o.non2xx + o.errors === 0 ? 'MET' : 'MISSED'} p99 <= ${t.p99Ms} ms`;
  }
  for (const c of cases) {
    const o = byId.get(c.id);
    const floor = c.floorOf ? byId.get(c.floorOf) : undefined;
    if (o && floor) {
      o.floorId = floor.id;
      o.ratioToFloor = o.rounds && floor.rounds ? pairedRatio(o.rounds, floor.rounds, (r) => r.reqPerSec) : o.reqPerSec / floor.reqPerSec;
      const want = c.target?.ratioToFloor;
      if (want !== undefined) o.verdict = `${o.ratioToFloor >= want ? 'MET' : 'MISSED'} >= ${want.toFixed(2)}x ${floorLabel(floor)} (${o.ratioToFloor.toFixed(2)}x)`;
      if (o.cpu && floor.cpu && (c.ack ?? 'durable') === 'durable' && floor.id.startsWith('04f')) {
        o.cpu.acceptorToFloorCpu = Number((o.cpu.perRequestUs.acceptor / floor.cpu.perRequestUs.total).toFixed(2));
        o.cpu.floorId = floor.id;
      }
    }
    const ingest = c.ingestOf ? byId.get(c.ingestOf) ?? o : undefined;
    const forwarded = o?.drainPerSec ?? o?.endToEndPerSec;
    if (o && forwarded && ingest) {
      o.forwardRatio = forwarded / ingest.reqPerSec;
      if (c.target?.forwardRatio) o.verdict = `${o.forwardRatio >= c.target.forwardRatio ? 'MET' : 'MISSED'} forwarded >= ${Math.round(c.target.forwardRatio * 100)}% of ${ingest.name} (${Math.round(o.forwardRatio * 100)}%)`;
    }
    if (o?.backendRate && c.target?.rateTolerance !== undefined) {
      const d = o.backendRate.deviation;
      o.verdict = `${Math.abs(d) <= c.target.rateTolerance ? 'MET' : 'MISSED'} backend saw ${o.backendRate.perSec}/s for a limit of ${o.backendRate.limit}/s (${d >= 0 ? '+' : ''}${(d * 100).toFixed(1)}%, tolerance ${c.target.rateTolerance * 100}%)`;
    }
    const b = c.baselineOf ? byId.get(c.baselineOf) : undefined;
    if (o?.endToEndPerSec && b?.endToEndPerSec) {
      o.baselineId = b.id;
      o.ratioToBaselineE2E = o.rounds && b.rounds ? pairedRatio(o.rounds, b.rounds, figure) : o.endToEndPerSec / b.endToEndPerSec;
      const t = c.target;
      if (t?.e2eRatioToBaseline) o.verdict = `${o.ratioToBaselineE2E >= t.e2eRatioToBaseline ? 'MET' : 'MISSED'} e2e >= ${t.e2eRatioToBaseline}x baseline${t.e2eGoal ? ` (goal ${t.e2eGoal}x)` : ''}`;
    }
  }
  if (startedKafka) kafka('down');
  for (const b of started) broker(b, 'down');
  const date = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
  const meta = { date, node: process.version, machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB` };
  fs.mkdirSync(resultsDir, { recursive: true });
  const projected = projection(outcomes);
  fs.writeFileSync(path.join(resultsDir, `${date}.json`), `${JSON.stringify({ meta, outcomes, ...(projected ? { projection: projected } : {}) }, null, 2)}\n`);
  const md = table(outcomes, meta) + cpuTable(outcomes) + projectionTable(projected);
  fs.writeFileSync(path.join(resultsDir, `${date}.md`), md);
  // Only a run of every case, with the default rounds and durations, is "the latest run" the
  // README shows (latest.md, latest.svg and its table); a partial run keeps its dated files.
  if (!a.only && !a.duration && !a.connections && a.rounds === 3) {
    fs.writeFileSync(path.join(resultsDir, 'latest.md'), md);
    fs.writeFileSync(path.join(resultsDir, 'latest.svg'), svg(outcomes));
    writeReadmeTable(path.join(repo, 'README.md'), outcomes, date);
  }
  process.stdout.write(md);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
