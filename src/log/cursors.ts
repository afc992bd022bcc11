/**
 * Durable consumer cursors: for each consumer (a sink) and lane, the log offset below which
 * everything has been delivered. Each consumer reads at its own pace; retention removes a
 * segment only when every consumer's cursor has passed it.
 *
 *   <dataDir>/cursors/<consumer>.json   {"lanes":{"0":12345,...}}   replaced atomically
 *
 * Who writes them: at start, before any sink runs, the supervisor (clampToEnds); then only the
 * sink host, which keeps its sinks' cursors in memory and commits from there. Lanes only read
 * them (retention), and the data dir lock keeps any other process out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SEGMENT_HEADER } from './frame-layout.js';
import { writeFileDurable } from './fsutil.js';

export type LaneCursors = Record<string, number>;

/** A consumer's position in a lane; a consumer that never committed there starts at the beginning. */
export function lanePosition(cursors: LaneCursors, lane: number): number {
  return cursors[String(lane)] ?? SEGMENT_HEADER;
}

export class CursorStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'cursors');
    fs.mkdirSync(this.dir, { recursive: true });
  }

  /** `<dataDir>/cursors/<consumer>.json`. */
  file(consumer: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(consumer)) throw new Error(`bad consumer name "${consumer}"`);
    return path.join(this.dir, `${consumer}.json`);
  }

  consumers(): string[] {
    return fs.readdirSync(this.dir).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
  }

  load(consumer: string): LaneCursors {
    try {
      const doc = JSON.parse(fs.readFileSync(this.file(consumer), 'utf8')) as { lanes?: LaneCursors };
      return { ...(doc.lanes ?? {}) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
  }

  /** Position of a consumer in a lane, read from its file. */
  position(consumer: string, lane: number): number {
    return lanePosition(this.load(consumer), lane);
  }

  commit(consumer: string, cursors: LaneCursors): void {
    writeFileDurable(this.file(consumer), JSON.stringify({ lanes: cursors }));
  }

  /** Lowest position of all consumers in a lane, or null when the lane has no consumer. */
  minPosition(lane: number, consumers = this.consumers()): number | null {
    let min: number | null = null;
    for (const c of consumers) {
      const p = this.position(c, lane);
      min = min === null ? p : Math.min(min, p);
    }
    return min;
  }

  /**
   * Start-up check: a cursor beyond the end of its lane (the log lost its tail, or the data
   * dir was restored from an older copy) is pulled back to the end, so nothing written from
   * now on is skipped. Returns the cursors it moved.
   */
  clampToEnds(ends: ReadonlyMap<number, number>): Array<{ consumer: string; lane: number; was: number; now: number }> {
    const moved: Array<{ consumer: string; lane: number; was: number; now: number }> = [];
    for (const c of this.consumers()) {
      const cur = this.load(c);
      let changed = false;
      for (const [laneKey, pos] of Object.entries(cur)) {
        const end = ends.get(Number(laneKey));
        if (end !== undefined && pos > end) {
          moved.push({ consumer: c, lane: Number(laneKey), was: pos, now: end });
          cur[laneKey] = end;
          changed = true;
        }
      }
      if (changed) this.commit(c, cur);
    }
    return moved;
  }
}
