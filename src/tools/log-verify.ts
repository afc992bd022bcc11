/**
 * `crowd log verify`: checks every record's checksum in every lane and in every sink's
 * dead-letter log, repairs a torn tail of a log's last segment (never while a live crowd owns
 * the data dir), and reports counts.
 *
 * It also checks that nothing is missing without a flipped bit to show for it:
 *  - each segment ends exactly where the next begins (a removed or truncated segment is a gap;
 *    a segment quarantined before any frame was written to it, header-sized or smaller, is
 *    not: recovery moved on past it and no record can have been in it);
 *  - a log's first segment begins at 0, or, for a lane with consumers, at or below every
 *    cursor (retention removes only what every consumer has passed);
 *  - a log ends no lower than where it ended when crowd last closed it (LaneLog.close records
 *    it): a last segment removed or truncated since;
 *  - no cursor points past the end of its lane, nor into a lane that is gone;
 *  - every cursor file is readable and valid.
 */
import fs from 'node:fs';
import { lockOwner } from '../data-dir-lock.js';
import { CursorStore, type LaneCursors } from '../log/cursors.js';
import { SEGMENT_HEADER, SEGMENT_HEADER_V2 } from '../log/frame-layout.js';
import { closedEnd, listLogDirs, listSegments, recoverLastSegment, type SegmentInfo } from '../log/lane-log.js';
import { readLogDir } from '../log/log-reader.js';

export interface VerifyReport {
  dataDir: string;
  lanes: number;
  /** Dead-letter logs checked (one per sink that ever dead-lettered a message). */
  deadLetterLogs: number;
  segments: number;
  records: number;
  corruptRegions: number;
  corruptBytes: number;
  /** Segments whose header does not check out (their frames cannot be verified). */
  badHeaders: number;
  tornTailBytesRepaired: number;
  tornTailBytesFound: number;
  /** Places where a log's bytes are missing: between segments, or before its first one. */
  gaps: number;
  missingBytes: number;
  /** Cursor files that are invalid, or cursors outside what their lane holds. */
  cursorProblems: number;
  /** One line per gap or cursor problem (at most 100). */
  problems: string[];
  repaired: boolean;
  ok: boolean;
}

const MAX_PROBLEMS = 100;

export function verifyLog(dataDir: string, opts: { repair: boolean }): VerifyReport {
  const owner = lockOwner(dataDir);
  const repair = opts.repair && (owner === null || owner === process.pid);
  const report: VerifyReport = {
    dataDir, lanes: 0, deadLetterLogs: 0, segments: 0, records: 0, corruptRegions: 0, corruptBytes: 0, badHeaders: 0,
    tornTailBytesRepaired: 0, tornTailBytesFound: 0, gaps: 0, missingBytes: 0, cursorProblems: 0, problems: [], repaired: false, ok: true,
  };
  const problem = (line: string) => {
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(line);
  };
  const cursors = loadAllCursors(dataDir, report, problem);
  const laneEnds = new Map<number, { first: number; end: number }>();
  for (const { dir, lane } of listLogDirs(dataDir)) {
    if (lane >= 0) report.lanes++;
    else report.deadLetterLogs++;
    let segs = listSegments(dir);
    if (repair && segs.length > 0) {
      const r = recoverLastSegment(segs[segs.length - 1]);
      if (r.torn > 0) {
        report.tornTailBytesRepaired += r.torn;
        report.repaired = true;
      }
      segs = listSegments(dir);
    }
    const s = readLogDir(dir, lane, 0, () => {});
    report.segments += s.segments;
    report.records += s.records;
    report.corruptRegions += s.corruptRegions;
    report.corruptBytes += s.corruptBytes;
    report.badHeaders += s.badHeaders;
    report.tornTailBytesFound += s.tailBytes;
    checkContinuity(dir, segs, lane >= 0 && hasConsumers(cursors, lane), report, problem);
    const closed = closedEnd(dir);
    const end = segs.length > 0 ? segs[segs.length - 1].base + segs[segs.length - 1].size : 0;
    if (closed !== null && closed > end) {
      report.gaps++;
      report.missingBytes += closed - end;
      problem(`${dir}: ends at ${end}, but it ended at ${closed} when crowd last closed it (a last segment removed or truncated)`);
    }
    if (lane >= 0 && segs.length > 0) {
      const last = segs[segs.length - 1];
      laneEnds.set(lane, { first: segs[0].base, end: last.base + last.size });
    }
  }
  checkCursors(cursors, laneEnds, report, problem);
  report.ok = report.corruptRegions === 0 && report.tornTailBytesFound === 0 && report.gaps === 0 && report.cursorProblems === 0;
  return report;
}

function loadAllCursors(dataDir: string, report: VerifyReport, problem: (l: string) => void): Map<string, LaneCursors> {
  const out = new Map<string, LaneCursors>();
  let store: CursorStore;
  let consumers: string[];
  try {
    if (!fs.existsSync(`${dataDir}/cursors`)) return out;
    store = new CursorStore(dataDir);
    consumers = store.consumers();
  } catch (e) {
    report.cursorProblems++;
    problem(`cursors: ${(e as Error).message}`);
    return out;
  }
  for (const c of consumers) {
    try {
      out.set(c, store.load(c));
    } catch (e) {
      report.cursorProblems++;
      problem((e as Error).message);
    }
  }
  return out;
}

function hasConsumers(cursors: Map<string, LaneCursors>, lane: number): boolean {
  for (const c of cursors.values()) if (Object.hasOwn(c, String(lane))) return true;
  return false;
}

function checkContinuity(dir: string, segs: SegmentInfo[], consumed: boolean, report: VerifyReport, problem: (l: string) => void): void {
  if (segs.length === 0) return;
  // Without consumers nothing is ever removed: the log must begin at 0. With consumers, the
  // cursors decide (checkCursors).
  if (!consumed && segs[0].base !== 0) gap(dir, 0, segs[0].base, report, problem);
  for (let i = 0; i + 1 < segs.length; i++) {
    const end = segs[i].base + segs[i].size;
    const next = segs[i + 1].base;
    if (end === next) continue;
    if (end < next && emptyQuarantined(segs[i], end, next)) continue;
    gap(dir, end, next, report, problem);
  }
}

/** recovery quarantined a segment at `end` whose header never reached the disk, and went on at `next`. */
function emptyQuarantined(prev: SegmentInfo, end: number, next: number): boolean {
  const q = prev.file.replace(/[0-9]{20}\.seg$/, `${String(end).padStart(20, '0')}.seg.corrupt`);
  try {
    const size = fs.statSync(q).size;
    return size <= SEGMENT_HEADER_V2 && next - end === Math.max(size, SEGMENT_HEADER);
  } catch {
    return false;
  }
}

function gap(dir: string, from: number, to: number, report: VerifyReport, problem: (l: string) => void): void {
  report.gaps++;
  report.missingBytes += Math.abs(to - from);
  problem(to > from
    ? `${dir}: bytes ${from}..${to} missing (a segment removed or truncated)`
    : `${dir}: segments overlap at ${to}..${from}`);
}

function checkCursors(cursors: Map<string, LaneCursors>, lanes: Map<number, { first: number; end: number }>, report: VerifyReport, problem: (l: string) => void): void {
  for (const [consumer, lc] of cursors) {
    for (const [key, pos] of Object.entries(lc)) {
      const lane = Number(key);
      const l = lanes.get(lane);
      if (!l) {
        if (pos > SEGMENT_HEADER) {
          report.cursorProblems++;
          problem(`cursor ${consumer} lane ${lane} at ${pos}: the lane has no segments (its log is gone)`);
        }
        continue;
      }
      if (pos > l.end) {
        report.cursorProblems++;
        problem(`cursor ${consumer} lane ${lane} at ${pos}: past the lane's end ${l.end} (the lane lost its tail)`);
      } else if (pos < l.first) {
        report.cursorProblems++;
        problem(`cursor ${consumer} lane ${lane} at ${pos}: before the lane's first segment ${l.first} (segments it had not passed are gone)`);
      }
    }
  }
}
