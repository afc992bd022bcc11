/**
 * The supervisor (main thread): builds the rings and lane control blocks, starts the lanes on
 * a piscina pool and the acceptor threads, serves the admin API, and owns readiness and
 * shutdown. It is off the data path: requests never pass through this thread.
 *
 *   client -> acceptor thread(s) --SharedArrayBuffer ring per (acceptor, lane)--> lane(s) -> log
 *                    ^----------------- one wake-up per fsynced batch ---------------'
 *
 * Shutdown (SIGTERM): readiness 503 -> acceptors close their listeners and answer what is
 * pending -> lanes write and fsync what is left in the rings -> threads end -> exit 0.
 * A lane that dies is started again on the pool; its records are still in the ring (the ring's
 * TAIL only moves after an fsync), so nothing acknowledged is lost.
 */
import net from 'node:net';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { AcceptorSnapshot } from './acceptor/acceptor-stats.js';
import type { AcceptorInit } from './acceptor/acceptor.js';
import { sharedRouteState, type SharedRouteState } from './acceptor/shared-limits.js';
import { AdminServer } from './admin/admin-server.js';
import { createMetrics } from './admin/metrics.js';
import type { LaneStats, RingStats, StatsSource } from './admin/stats-source.js';
import type { CrowdConfig } from './config/types.js';
import { lockDataDir } from './data-dir-lock.js';
import { checkPortFree, claimPort } from './port-claim.js';
import { FdReserve } from './fd-reserve.js';
import { LaneControl, LaneState, STAT, APPEND_HIST, createLaneControl } from './lanes/lane-control.js';
import { RestartBudget } from './lanes/restart-budget.js';
import type { LaneTask } from './lanes/lane.js';
import { CursorStore } from './log/cursors.js';
import type { RecoveryReport } from './log/lane-log.js';
import type { Logger } from './logger.js';
import { createRingBuffer, SpscRing } from './ring/spsc-ring.js';
import { addHistograms, snapshotHistogram } from './stats/histogram.js';
import { SinkHost, type SinkStats } from './sinks/sink-host.js';
import { createSink } from './sinks/create-sink.js';
import type { ServerInfo } from './upstream/backend.js';
import { PoolRegistry } from './upstream/pool-registry.js';

const LANE_STATE_NAMES = ['starting', 'ready', 'unwritable', 'stopped', 'failed'];

interface AcceptorHandle {
  worker: Worker;
  exited: Promise<void>;
}

export class Crowd implements StatsSource {
  ingestPort = 0;
  adminPort = 0;
  private draining = false;
  private stopped = false;
  private readonly controls: LaneControl[];
  /** rings[lane][acceptor] */
  private readonly ringBuffers: SharedArrayBuffer[][];
  private readonly ringViews: SpscRing[][];
  private readonly pool: Piscina;
  private readonly laneRuns: Array<Promise<unknown>> = [];
  private readonly laneRestarts: RestartBudget[];
  private fdReserve: FdReserve | null = null;
  private readonly acceptors: AcceptorHandle[] = [];
  private admin: AdminServer | null = null;
  private sinkHost: SinkHost | null = null;
  /** Delivered offsets per (sink, lane), for `ack: delivered`; null without sinks. */
  private readonly sinkWatermarks: SharedArrayBuffer | null;
  /** Route rate limits and HMAC replay windows, one for all acceptors. */
  private readonly routeState: SharedRouteState;
  /** Per acceptor: [sink host side, acceptor side] of its "delivered offsets moved" channel. */
  private readonly sinkWakes: MessageChannel[];
  private unlock: (() => void) | null = null;
  private snapshotSeq = 0;
  private readonly snapshotWaiters = new Map<number, { left: number; parts: AcceptorSnapshot[]; done: (s: AcceptorSnapshot[]) => void }>();
  readonly recovery: RecoveryReport[] = [];
  /** HTTP backend pools (http sinks, POST/DELETE/GET /servers on the admin API). */
  readonly servers: PoolRegistry;

  private constructor(readonly config: CrowdConfig, private readonly log: Logger) {
    const { lanes, acceptors } = config.threads;
    this.controls = Array.from({ length: lanes }, () => new LaneControl(createLaneControl()));
    this.ringBuffers = Array.from({ length: lanes }, () => Array.from({ length: acceptors }, () => createRingBuffer(config.ingest.ringBytes)));
    this.ringViews = this.ringBuffers.map((row) => row.map((s) => new SpscRing(s)));
    this.laneRestarts = Array.from({ length: lanes }, () => new RestartBudget());
    this.servers = new PoolRegistry(config.pools, config.dataDir, config.admin.allowPrivateTargets, log);
    const sinkCount = Object.keys(config.sinks).length;
    this.routeState = sharedRouteState(this.config.routes);
    this.sinkWatermarks = sinkCount > 0 ? new SharedArrayBuffer(8 * sinkCount * lanes) : null;
    this.sinkWakes = sinkCount > 0 ? Array.from({ length: acceptors }, () => new MessageChannel()) : [];
    this.pool = new Piscina({
      filename: new URL('../workers/lane.js', import.meta.url).href,
      minThreads: lanes,
      maxThreads: lanes,
      idleTimeout: 2 ** 31 - 1,
      // Lanes are long-lived tasks; never let an idle worker park in Atomics.wait (platform.md).
      atomics: 'disabled',
      concurrentTasksPerWorker: 1,
    });
  }

  static async start(config: CrowdConfig, log: Logger): Promise<Crowd> {
    // Before any thread starts or anything is logged: a refusal is one line (StartRefusal).
    const release = await claimAll(config);
    let crowd: Crowd;
    try {
      crowd = new Crowd(config, log);
    } catch (e) {
      release();
      throw e;
    }
    crowd.unlock = release;
    try {
      await crowd.boot();
    } catch (e) {
      await crowd.stop().catch(() => {});
      throw e;
    }
    return crowd;
  }

  private async boot(): Promise<void> {
    const c = this.config;
    const lanePortsForAcceptors: MessagePort[][] = Array.from({ length: c.threads.acceptors }, () => []);
    const ready: Array<Promise<void>> = [];
    for (let lane = 0; lane < c.threads.lanes; lane++) {
      const channels = Array.from({ length: c.threads.acceptors }, () => new MessageChannel());
      channels.forEach((ch, a) => (lanePortsForAcceptors[a][lane] = ch.port2));
      ready.push(this.startLane(lane, channels.map((ch) => ch.port1)));
    }
    await Promise.all(ready);
    const ends = new Map(this.recovery.map((r) => [r.lane, r.endOffset]));
    const cursors = new CursorStore(c.dataDir);
    const moved = cursors.clampToEnds(ends);
    for (const m of moved) this.log.warn({ event: 'cursor_clamped', ...m }, 'consumer cursor was ahead of the log; pulled back to its end');
    // A sink removed from the config leaves its cursor behind, and retention still waits for
    // it (the sink may come back and resume there). Say so at every start; the operator decides.
    for (const consumer of cursors.consumers()) {
      if (Object.hasOwn(c.sinks, consumer)) continue;
      this.log.warn(
        { event: 'cursor_without_sink', consumer, file: cursors.file(consumer) },
        'a cursor of a sink that is not configured holds back log retention; delete its file if the sink is gone for good',
      );
    }

    this.servers.start();
    if (Object.keys(c.sinks).length > 0) await this.startSinks();

    // Every acceptor binds the same port (SO_REUSEPORT). `listen.port: 0` with several
    // acceptors: uWS binds an ephemeral port without SO_REUSEPORT, and each acceptor would get
    // a port of its own (only the first one reported, the others never reached), so a free
    // port is picked first and all bind it.
    // One acceptor too: a listener bound to port 0 has no SO_REUSEPORT, and the fd reserve
    // could not listen again on that port while connections it accepted are still open.
    const port = c.listen.port === 0 ? await freePort(c.listen.host) : c.listen.port;
    // Probed at the claim already; lane recovery may have taken a while since (port-claim.ts).
    if (c.listen.port !== 0) await checkPortFree('ingest', c.listen.host, port);
    this.ingestPort = await this.startAcceptor(0, lanePortsForAcceptors[0], port);
    for (let a = 1; a < c.threads.acceptors; a++) await this.startAcceptor(a, lanePortsForAcceptors[a], this.ingestPort);
    await checkPortFree('admin', c.admin.host, c.admin.port);
    this.admin = new AdminServer(c, this, createMetrics(this), this.servers, this.log);
    this.adminPort = await this.admin.listen();
    this.fdReserve = new FdReserve(this.log, (accept) => {
      for (const a of this.acceptors) a?.worker.postMessage({ type: 'accepting', accept, listenPort: this.ingestPort });
    });
    this.fdReserve.start();
    this.log.info(
      { event: 'started', ingest: `${c.listen.host}:${this.ingestPort}`, admin: `${c.admin.host}:${this.adminPort}`, dataDir: c.dataDir, threads: c.threads, config: c.source },
      'crowd is ready',
    );
  }

  /** Runs one lane's task on the pool; resolves when the lane reported its log open. */
  private startLane(lane: number, acceptorPorts: MessagePort[]): Promise<void> {
    const sup = new MessageChannel();
    const task: LaneTask = {
      lane, config: this.config, rings: this.ringBuffers[lane].slice(), control: this.controls[lane].sab, acceptorPorts, supervisorPort: sup.port1,
    };
    const ready = new Promise<void>((resolve, reject) => {
      sup.port2.on('message', (m: { type: string; report?: RecoveryReport; message?: string }) => {
        if (m.type === 'ready') {
          this.recovery[lane] = m.report!;
          resolve();
        } else if (m.type === 'error') reject(new Error(`lane ${lane}: ${m.message}`));
      });
    });
    const run = this.pool.run(task, { transferList: [...acceptorPorts, sup.port1] as never });
    this.laneRuns[lane] = run.then(
      () => sup.port2.close(),
      (e: Error) => {
        sup.port2.close();
        if (this.stopped) return;
        this.log.error({ event: 'lane_died', lane, err: e }, 'lane thread died');
        this.restartLane(lane);
      },
    );
    return Promise.race([ready, run.then(() => {}, (e) => Promise.reject(e))]);
  }

  /**
   * A lane died: give it new wake-up channels and start it again; it resumes from the ring TAIL.
   * Deaths are counted in a time window (lanes/restart-budget.ts): past the budget the lane
   * shows Failed (readyz 503) and starts again after a growing pause, never stays down for good.
   */
  private restartLane(lane: number): void {
    const pause = this.laneRestarts[lane].pauseAfterDeath(Date.now());
    if (pause > 0) {
      this.controls[lane].setState(LaneState.Failed);
      this.log.error({ event: 'lane_failed', lane, pauseMs: pause }, 'lane keeps dying; trying again after a pause (readyz 503 meanwhile)');
      setTimeout(() => {
        if (!this.stopped && !this.draining) this.startLaneAgain(lane);
      }, pause);
      return;
    }
    this.startLaneAgain(lane);
  }

  private startLaneAgain(lane: number): void {
    this.controls[lane].setState(LaneState.Starting);
    const channels = this.acceptors.map(() => new MessageChannel());
    channels.forEach((ch, a) => this.acceptors[a].worker.postMessage({ type: 'lanePort', lane, port: ch.port2 }, [ch.port2]));
    this.startLane(lane, channels.map((ch) => ch.port1)).then(
      () => this.log.info({ event: 'lane_restarted', lane }, 'lane running again'),
      (e) => this.log.error({ event: 'lane_restart_failed', lane, err: e }, 'lane restart failed'),
    );
  }

  /**
   * The sink host: every sink, fed from the log (src/sinks/sink-host.ts). It runs in this main
   * thread: node-rdkafka is not context-aware and drives its callbacks from the main event
   * loop (measured: in a worker thread it aborts the process with "Cannot create a handle
   * without a HandleScope"), and this thread is otherwise idle.
   */
  private async startSinks(): Promise<void> {
    const sinks = Object.entries(this.config.sinks).map(([name, cfg]) => createSink(name, cfg, { log: this.log, pools: this.servers }));
    this.sinkHost = new SinkHost(this.config, this.log, this.controls.map((c) => c.sab), this.sinkWatermarks!, this.sinkWakes.map((ch) => ch.port1), sinks);
    await this.sinkHost.start();
  }

  async sinkStats(): Promise<Record<string, SinkStats>> {
    return this.sinkHost ? this.sinkHost.stats() : {};
  }

  private startAcceptor(index: number, lanePorts: MessagePort[], port: number): Promise<number> {
    const init: AcceptorInit = {
      index, config: this.config, port, rings: this.ringBuffers.map((row) => row[index]), laneControls: this.controls.map((c) => c.sab),
      sinkWatermarks: this.sinkWatermarks,
      routeState: this.routeState,
    };
    const sinkWake = this.sinkWakes[index]?.port2 ?? null;
    const worker = new Worker(new URL('../workers/acceptor.js', import.meta.url), {
      workerData: { init, lanePorts, sinkWake }, transferList: [...lanePorts, ...(sinkWake ? [sinkWake] : [])] as never,
    });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.acceptors[index] = { worker, exited };
    worker.on('message', (m: { type: string; id?: number; data?: AcceptorSnapshot }) => {
      if (m.type === 'snapshot') {
        const w = this.snapshotWaiters.get(m.id!);
        if (w) {
          w.parts.push(m.data!);
          if (--w.left === 0) {
            this.snapshotWaiters.delete(m.id!);
            w.done(w.parts);
          }
        }
      }
    });
    worker.on('error', (e) => {
      // An acceptor that throws has lost its in-flight requests' state; acknowledged records
      // are safe in the rings/log. Exit so the service manager restarts crowd cleanly.
      this.log.fatal({ event: 'acceptor_died', acceptor: index, err: e }, 'acceptor thread died');
      if (!this.stopped) process.exit(70);
    });
    return new Promise((resolve, reject) => {
      const onMsg = (m: { type: string; port?: number; message?: string }) => {
        if (m.type === 'listening') {
          worker.off('message', onMsg);
          resolve(m.port!);
        } else if (m.type === 'error') {
          worker.off('message', onMsg);
          reject(new Error(m.message));
        }
      };
      worker.on('message', onMsg);
    });
  }

  // ---- StatsSource -------------------------------------------------------------------

  serverList(): ServerInfo[] {
    return this.servers.list();
  }

  serverTotals(): { success: number; failed: number } {
    return this.servers.totals();
  }

  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.draining) reasons.push('draining');
    this.controls.forEach((c, i) => {
      const s = c.state();
      if (s !== LaneState.Ready) reasons.push(`lane ${i} ${LANE_STATE_NAMES[s]}`);
    });
    const bytes = this.controls.reduce((n, c) => n + c.logBytes(), 0);
    if (bytes >= this.config.log.maxLogBytes) reasons.push('log quota reached');
    if (this.acceptors.length < this.config.threads.acceptors) reasons.push('acceptors starting');
    return { ready: reasons.length === 0, reasons };
  }

  ready(): boolean {
    return this.readiness().ready;
  }

  async acceptorTotals(): Promise<AcceptorSnapshot> {
    const parts = await this.snapshots();
    const total: AcceptorSnapshot = { success: 0, failed: 0, byCode: {}, routes: {}, ackLatency: {} as AcceptorSnapshot['ackLatency'], pending: 0 };
    for (const p of parts) {
      total.success += p.success;
      total.failed += p.failed;
      total.pending += p.pending;
      for (const [k, v] of Object.entries(p.byCode)) total.byCode[k] = (total.byCode[k] ?? 0) + v;
      for (const [path, r] of Object.entries(p.routes)) {
        const t = (total.routes[path] ??= { topic: r.topic, byStatus: {} });
        for (const [st, n] of Object.entries(r.byStatus)) t.byStatus[st] = (t.byStatus[st] ?? 0) + n;
      }
      for (const [mode, h] of Object.entries(p.ackLatency)) {
        const m = mode as keyof AcceptorSnapshot['ackLatency'];
        total.ackLatency[m] = addHistograms(total.ackLatency[m], h);
      }
    }
    return total;
  }

  private snapshots(): Promise<AcceptorSnapshot[]> {
    const live = this.acceptors.filter(Boolean);
    if (live.length === 0) return Promise.resolve([]);
    const id = ++this.snapshotSeq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const w = this.snapshotWaiters.get(id);
        this.snapshotWaiters.delete(id);
        resolve(w ? w.parts : []);
      }, 2000);
      this.snapshotWaiters.set(id, { left: live.length, parts: [], done: (p) => { clearTimeout(timer); resolve(p); } });
      for (const a of live) a.worker.postMessage({ type: 'snapshot', id });
    });
  }

  lanes(): LaneStats[] {
    return this.controls.map((c, lane) => ({
      lane,
      state: LANE_STATE_NAMES[c.state()],
      bytes: c.stats[STAT.LOG_BYTES],
      records: c.stats[STAT.RECORDS],
      batches: c.stats[STAT.BATCHES],
      fsyncs: c.stats[STAT.FSYNCS],
      endOffset: c.stats[STAT.END_OFFSET],
      writeErrors: c.stats[STAT.WRITE_ERRORS],
      corruptAtStart: c.stats[STAT.CORRUPT_AT_START],
      tornBytesAtStart: c.stats[STAT.TORN_AT_START],
      fsync: snapshotHistogram(c.stats, STAT.FSYNC_HIST),
      append: snapshotHistogram(c.stats, APPEND_HIST),
    }));
  }

  rings(): RingStats[] {
    return this.ringViews.flatMap((row, lane) => row.map((r, acceptor) => ({ acceptor, lane, used: r.used(), capacity: r.capacity })));
  }

  // ---- shutdown ----------------------------------------------------------------------

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.draining = true;
    this.fdReserve?.stop();
    const t0 = performance.now();
    this.log.info({ event: 'draining' }, 'draining: listeners closing, pending requests finishing');
    await Promise.all(
      this.acceptors.filter(Boolean).map(
        (a) => new Promise<void>((resolve) => {
          const onMsg = (m: { type: string }) => {
            if (m.type === 'drained') {
              a.worker.off('message', onMsg);
              resolve();
            }
          };
          a.worker.on('message', onMsg);
          a.worker.postMessage({ type: 'drain' });
          void a.exited.then(() => resolve());
        }),
      ),
    );
    this.stopped = true;
    for (const c of this.controls) c.requestStop();
    await Promise.all(this.laneRuns.map((r) => r.catch(() => {})));
    await this.sinkHost?.stop();
    await this.servers.close();
    for (const a of this.acceptors.filter(Boolean)) a.worker.postMessage({ type: 'close' });
    await Promise.all(
      this.acceptors.filter(Boolean).map((a) =>
        Promise.race([a.exited, new Promise<void>((r) => setTimeout(r, 3000).unref())]).then(() => a.worker.terminate()),
      ),
    );
    await this.pool.destroy();
    this.admin?.close();
    this.unlock?.();
    this.log.info({ event: 'stopped', drainMs: Math.round(performance.now() - t0) }, 'crowd stopped');
  }
}

/**
 * The data dir's lock and the ingest and admin ports' claims (data-dir-lock.ts, port-claim.ts),
 * all or none; resolves with their release.
 */
async function claimAll(c: CrowdConfig): Promise<() => void> {
  const releases: Array<() => void> = [];
  const release = () => releases.splice(0).reverse().forEach((r) => r());
  try {
    releases.push(lockDataDir(c.dataDir));
    releases.push(await claimPort('ingest', c.listen.host, c.listen.port));
    releases.push(await claimPort('admin', c.admin.host, c.admin.port));
  } catch (e) {
    release();
    throw e;
  }
  return release;
}

/** A port free on `host` now (the kernel's pick for port 0, released at once). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
