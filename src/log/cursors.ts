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
 *
 * A cursor decides what retention deletes, so a file is trusted only when it matches the
 * schema below (positions are non-negative safe integers, lanes are numbered): anything else,
 * also a truncated file, is a CursorFileError naming the file, never a position. Commits go
 * through the same check, so crowd never writes a file it would refuse to read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { SEGMENT_HEADER } from './frame-layout.js';
import { writeFileDurable } from './fsutil.js';

export type LaneCursors = Record<string, number>;

/** A cursor file that cannot be trusted; the message names the file. */
export class CursorFileError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`cursor file ${file}: ${reason}; fix it, or delete it to make that sink start again from the oldest record`);
    this.name = 'CursorFileError';
  }
}

export const cursorFileSchema = {
  type: 'object',
  required: ['lanes'],
  additionalProperties: false,
  properties: {
    lanes: {
      type: 'object',
      propertyNames: { type: 'string', pattern: '^(0|[1-9][0-9]{0,5})$' },
      additionalProperties: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    },
  },
} as const;

const validate = new Ajv({ strict: true, allErrors: false }).compile<{ lanes: LaneCursors }>(cursorFileSchema);

function schemaError(): string {
  const e = validate.errors?.[0];
  return e ? `${e.instancePath || '(document)'} ${e.message ?? 'is invalid'}` : 'invalid';
}

/** Parses and checks one cursor file's text; throws CursorFileError naming `file`. */
export function parseCursorFile(file: string, text: string): LaneCursors {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CursorFileError(file, `not JSON (truncated or damaged): ${(e as Error).message}`);
  }
  if (!validate(doc)) throw new CursorFileError(file, schemaError());
  return { ...doc.lanes };
}

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

  /** A consumer's cursors; {} when it has no file. Throws CursorFileError for a bad file. */
  load(consumer: string): LaneCursors {
    const file = this.file(consumer);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new CursorFileError(file, `cannot be read: ${(e as Error).message}`);
    }
    return parseCursorFile(file, text);
  }

  /** Position of a consumer in a lane, read from its file. */
  position(consumer: string, lane: number): number {
    return lanePosition(this.load(consumer), lane);
  }

  /** Replaces the consumer's file atomically (temp file, fsync, rename, fsync of the directory). */
  commit(consumer: string, cursors: LaneCursors): void {
    const file = this.file(consumer);
    const doc = { lanes: cursors };
    if (!validate(doc)) throw new CursorFileError(file, `refusing to write ${schemaError()}`);
    writeFileDurable(file, JSON.stringify(doc));
  }

  /**
   * Lowest position of all consumers in a lane, or null when the lane has no consumer. Every
   * cursor file counts, also one of a sink no longer configured; a bad one throws.
   */
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
