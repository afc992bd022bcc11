/**
 * The registry store in the data dir: a snapshot plus an append-only journal, so that one
 * registration writes one short journal line and one fdatasync, whatever the number of
 * servers (servers.json used to be rewritten and fsynced whole on every change).
 *
 *   servers.json     snapshot: {"version":2,"seq":S,"servers":[{"id","registration"},...]},
 *                    replaced atomically (temp file, fsync, rename, fsync of the directory).
 *                    The old format, a bare array of registrations, is still read; the
 *                    pool registry puts its entries again with their ids, and then the
 *                    store compacts (migrated()).
 *   servers.journal  the changes since: one line each, "<crc32c as 8 hex> <json>\n", json
 *                    {"seq":n,"op":"put","id","registration"} or {"seq":n,"op":"del","id"}.
 *
 * Compaction: once the journal holds more records than max(compactMin, entries of the last
 * snapshot), the snapshot is rewritten and the journal emptied. That costs O(servers) once per
 * O(servers) changes, so the bytes written per change stay constant on average, and a start
 * reads O(servers) journal records at most.
 *
 * Crash safety: a journal record counts once its line and its fdatasync are done. A crash
 * between the snapshot's rename and the journal's truncation leaves records whose seq is not
 * above the snapshot's; they are skipped. A torn last line (a crash in mid-append) is
 * tolerated: it is named in the log (`registry_journal_torn`, file and offset) and cut off.
 * A damaged line before the end (`registry_journal_corrupt`) is named and skipped, and the
 * store is compacted at once so the damage does not stay. An unreadable snapshot is set aside
 * as servers.json.unreadable-<time> and named (`servers_file_unreadable`); the journal's
 * records are still applied.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { fsyncDir, writeAll, writeFileDurable } from '../log/fsutil.js';
import { crc32c } from '../native/crc32c-js.js';
import type { Registration } from './pool-registry.js';
import type { RegistryStore, StoredServer } from './registry-store.js';

/** Journal records before a compaction is considered (the bound is max(this, servers kept)). */
export const COMPACT_MIN_RECORDS = 1024;

type JournalRecord =
  | { seq: number; op: 'put'; id: string; registration: Registration }
  | { seq: number; op: 'del'; id: string };

export interface FileRegistryStoreStats {
  /** Bytes written to the journal and the snapshot since the store opened. */
  bytesWritten: number;
  journalRecords: number;
  journalBytes: number;
  compactions: number;
  /** Servers in the last snapshot written or read. */
  snapshotEntries: number;
}

export class FileRegistryStore implements RegistryStore {
  readonly where: string;
  private readonly snapshotFile: string;
  private readonly journalFile: string;
  /** Servers kept, by id, in the order they were first put (Map keeps insertion order). */
  private readonly kept = new Map<string, Registration>();
  /** Entries of an old-format snapshot (no ids): dropped at the next compaction. */
  private legacy: Registration[] = [];
  private seq = 0;
  private fd: number | null = null;
  /** End of the last complete journal record: where the next one goes. */
  private journalBytes = 0;
  private journalRecords = 0;
  private snapshotEntries = 0;
  /**
   * Changes are refused until a load succeeded: appending to a journal that was not read
   * (an I/O error at start) would write over records never applied, and the next snapshot
   * would drop them.
   */
  private loaded = false;
  private readonly counters = { bytesWritten: 0, compactions: 0 };

  constructor(dataDir: string, private readonly log: Logger, private readonly compactMin = COMPACT_MIN_RECORDS) {
    this.snapshotFile = path.join(dataDir, 'servers.json');
    this.journalFile = path.join(dataDir, 'servers.journal');
    this.where = this.snapshotFile;
  }

  async load(): Promise<StoredServer[]> {
    // Load may be tried again after it failed (the journal unreadable for a while): start clean.
    this.loaded = false;
    await this.close();
    this.kept.clear();
    this.legacy = [];
    this.seq = 0;
    this.journalBytes = 0;
    this.journalRecords = 0;
    this.snapshotEntries = 0;
    this.readSnapshot();
    const damaged = this.readJournal();
    if (damaged) this.compact();
    this.loaded = true;
    return [
      ...this.legacy.map((registration) => ({ id: null, registration })),
      ...[...this.kept].map(([id, registration]) => ({ id, registration })),
    ];
  }

  async put(id: string, registration: Registration): Promise<void> {
    this.append({ seq: this.seq + 1, op: 'put', id, registration });
    this.kept.delete(id); // a re-registration moves to the end, as it would in a fresh list
    this.kept.set(id, registration);
    this.maybeCompact();
  }

  async delete(id: string): Promise<void> {
    this.append({ seq: this.seq + 1, op: 'del', id });
    this.kept.delete(id);
    this.maybeCompact();
  }

  /** The old servers.json array is replaced by a snapshot of what is kept now. */
  async migrated(): Promise<void> {
    if (this.legacy.length > 0) this.compact();
  }

  stats(): FileRegistryStoreStats {
    return { ...this.counters, journalRecords: this.journalRecords, journalBytes: this.journalBytes, snapshotEntries: this.snapshotEntries };
  }

  async close(): Promise<void> {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private readSnapshot(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.snapshotFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`${this.snapshotFile}: ${(e as Error).message}`);
    }
    try {
      const doc = JSON.parse(text) as unknown;
      if (Array.isArray(doc)) {
        this.legacy = doc as Registration[];
        this.snapshotEntries = this.legacy.length;
        return;
      }
      const snap = doc as { version?: unknown; seq?: unknown; servers?: unknown };
      if (snap.version !== 2 || !Number.isSafeInteger(snap.seq) || !Array.isArray(snap.servers)) throw new Error('not a servers snapshot (version 2)');
      for (const s of snap.servers as Array<{ id?: unknown; registration?: unknown }>) {
        if (typeof s?.id !== 'string' || typeof s.registration !== 'object' || s.registration === null) throw new Error('a server entry without id or registration');
        this.kept.set(s.id, s.registration as Registration);
      }
      this.seq = snap.seq as number;
      this.snapshotEntries = this.kept.size;
    } catch (e) {
      const aside = `${this.snapshotFile}.unreadable-${Date.now()}`;
      fs.renameSync(this.snapshotFile, aside);
      fsyncDir(path.dirname(this.snapshotFile));
      this.kept.clear();
      this.legacy = [];
      this.log.error(
        { event: 'servers_file_unreadable', file: this.snapshotFile, keptAs: aside, err: (e as Error).message },
        'registered servers snapshot unreadable; set aside, continuing with the journal and the config servers',
      );
    }
  }

  /** Applies the journal's records; true when a damaged line was skipped (compact then). */
  private readJournal(): boolean {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.journalFile);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new Error(`${this.journalFile}: ${(e as Error).message}`);
    }
    let pos = 0;
    let line = 0;
    let good = 0;
    let damaged = false;
    while (pos < buf.length) {
      const nl = buf.indexOf(0x0a, pos);
      line++;
      const end = nl < 0 ? buf.length : nl;
      const rec = nl < 0 ? null : parseLine(buf.subarray(pos, end));
      if (rec === null) {
        if (nl < 0 || buf.indexOf(0x0a, nl + 1) < 0) {
          // The last line, incomplete or damaged: an append cut short by a crash.
          this.log.warn(
            { event: 'registry_journal_torn', file: this.journalFile, line, offset: pos, bytes: buf.length - pos },
            'the last record of the registry journal is torn (a crash while it was written); it was never acknowledged and is dropped',
          );
          break;
        }
        damaged = true;
        this.log.error(
          { event: 'registry_journal_corrupt', file: this.journalFile, line, offset: pos },
          'a record of the registry journal is damaged (checksum or shape); it is skipped',
        );
      } else if (rec.seq > this.seq) {
        this.seq = rec.seq;
        if (rec.op === 'put') {
          this.kept.delete(rec.id);
          this.kept.set(rec.id, rec.registration);
        } else this.kept.delete(rec.id);
      }
      pos = end + 1;
      good = Math.min(pos, buf.length);
      this.journalRecords++;
    }
    this.journalBytes = good;
    if (good < buf.length) {
      // Cut the torn tail off, so the next record starts on a line of its own.
      this.openJournal();
      fs.ftruncateSync(this.fd!, good);
      fs.fsyncSync(this.fd!);
    }
    return damaged;
  }

  private openJournal(): number {
    if (this.fd === null) {
      const created = !fs.existsSync(this.journalFile);
      this.fd = fs.openSync(this.journalFile, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
      if (created) fsyncDir(path.dirname(this.journalFile));
    }
    return this.fd;
  }

  private append(rec: JournalRecord): void {
    if (!this.loaded) throw new Error(`${this.journalFile}: the registry store was not read; no change is written before it is`);
    const fd = this.openJournal();
    const line = encodeLine(rec);
    try {
      writeAll(fd, line, line.length, this.journalBytes);
      fs.fdatasyncSync(fd);
    } catch (e) {
      // Leave no partial line behind for the next record to be glued to.
      try {
        fs.ftruncateSync(fd, this.journalBytes);
      } catch {
        // the next load names a torn line instead
      }
      throw new Error(`${this.journalFile}: ${(e as Error).message}`);
    }
    this.seq = rec.seq;
    this.journalBytes += line.length;
    this.journalRecords++;
    this.counters.bytesWritten += line.length;
  }

  private maybeCompact(): void {
    if (this.journalRecords > Math.max(this.compactMin, this.snapshotEntries)) this.compact();
  }

  /** Writes the snapshot of what is kept now, then empties the journal. */
  private compact(): void {
    const snap = `${JSON.stringify({ version: 2, seq: this.seq, servers: [...this.kept].map(([id, registration]) => ({ id, registration })) })}\n`;
    writeFileDurable(this.snapshotFile, snap);
    this.legacy = [];
    this.counters.bytesWritten += Buffer.byteLength(snap);
    this.counters.compactions++;
    this.snapshotEntries = this.kept.size;
    const fd = this.openJournal();
    fs.ftruncateSync(fd, 0);
    fs.fsyncSync(fd);
    this.journalBytes = 0;
    this.journalRecords = 0;
  }
}

function encodeLine(rec: JournalRecord): Buffer {
  const body = Buffer.from(JSON.stringify(rec));
  const line = Buffer.allocUnsafe(9 + body.length + 1);
  line.write(crc32c(body).toString(16).padStart(8, '0'), 0, 'latin1');
  line[8] = 0x20;
  body.copy(line, 9);
  line[line.length - 1] = 0x0a;
  return line;
}

/** A journal line's record, or null when its checksum or shape is wrong. */
function parseLine(line: Buffer): JournalRecord | null {
  if (line.length < 10 || line[8] !== 0x20) return null;
  const crc = line.toString('latin1', 0, 8);
  if (!/^[0-9a-f]{8}$/.test(crc)) return null;
  const body = line.subarray(9);
  if (parseInt(crc, 16) !== crc32c(body)) return null;
  try {
    const r = JSON.parse(body.toString('utf8')) as Partial<JournalRecord>;
    if (!Number.isSafeInteger(r.seq) || typeof r.id !== 'string') return null;
    if (r.op === 'put' && typeof r.registration === 'object' && r.registration !== null) return r as JournalRecord;
    if (r.op === 'del') return r as JournalRecord;
    return null;
  } catch {
    return null;
  }
}
