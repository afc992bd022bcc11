/**
 * Kernel file locks: flock(LOCK_EX | LOCK_NB) through crowd's N-API addon (native/file_lock.c).
 * Node has no flock, and there is no pure-JS twin that could hold a lock the kernel releases
 * when the process dies, so without the addon a lock cannot be taken (lockFile throws and
 * crowd refuses to start rather than run two writers on one data dir).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';

type Flock = (fd: number) => number;

function loadNative(): Flock | null {
  try {
    const require = createRequire(import.meta.url);
    const addon = require('../../../build/Release/crowd_core.node') as { flockExclusive?: Flock };
    return addon.flockExclusive ?? null;
  } catch {
    return null;
  }
}

const flockExclusive = loadNative();

export type LockResult =
  | { ok: true; fd: number; release(): void }
  /** Held by another open file description; `holder` is what the holder wrote in the file. */
  | { ok: false; holder: string };

/**
 * Opens (creating) `file` and takes an exclusive flock on it without waiting. On success the
 * file's content becomes `<pid> <hostname>` (information only: the lock is the descriptor,
 * never the content) and the descriptor stays open until release() or the process's end.
 * The file is never removed: unlinking a lock file lets a third process lock a new inode
 * while another still holds the old one.
 */
export function lockFile(file: string): LockResult {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644);
  let rc: number;
  try {
    rc = tryLock(fd, file);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  if (rc !== 0) {
    let holder = '';
    try {
      holder = fs.readFileSync(fd, 'utf8').trim();
    } catch {
      // unreadable: the refusal just does not name the holder
    }
    fs.closeSync(fd);
    if (rc === os.constants.errno.EWOULDBLOCK) return { ok: false, holder };
    throw new Error(`cannot lock ${file}: ${errnoName(rc)}`);
  }
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid} ${os.hostname()}\n`, 0);
  let open = true;
  return {
    ok: true,
    fd,
    release() {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

/**
 * Is `file` locked by someone right now? Takes and at once drops the lock (read-only open,
 * content untouched); null when the file does not exist or is free, else the holder's text.
 */
export function lockHolder(file: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const rc = tryLock(fd, file);
    if (rc === 0) return null;
    if (rc !== os.constants.errno.EWOULDBLOCK) throw new Error(`cannot lock ${file}: ${errnoName(rc)}`);
    return fs.readFileSync(fd, 'utf8').trim();
  } finally {
    fs.closeSync(fd);
  }
}

function tryLock(fd: number, file: string): number {
  if (!flockExclusive) throw new Error(`cannot lock ${file}: crowd's native addon (build/Release/crowd_core.node) is not built; run \`npm run install\``);
  return flockExclusive(fd);
}

function errnoName(rc: number): string {
  return Object.entries(os.constants.errno).find(([, n]) => n === rc)?.[0] ?? `errno ${rc}`;
}
