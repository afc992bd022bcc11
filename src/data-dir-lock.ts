/**
 * One crowd per data directory: an exclusive kernel lock (flock) on <dataDir>/crowd.lock, held
 * by the main process for its whole life (src/native/file-lock.ts). The kernel releases it when
 * the process ends, kill -9 included; nothing compares pids, so two containers whose crowds
 * are both pid 1 exclude each other, and a lock file that names some unrelated live process
 * (a pid reused after a crash) stops nobody. The file's content, `<pid> <hostname>` of the
 * holder, only serves the refusal message.
 */
import fs from 'node:fs';
import path from 'node:path';
import { lockFile, lockHolder } from './native/file-lock.js';
import { StartRefusal } from './start-refusal.js';

/** Takes the data dir's lock or throws StartRefusal naming the dir and the holder. */
export function lockDataDir(dataDir: string): () => void {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'crowd.lock');
  const r = lockFile(file);
  if (!r.ok) {
    const [pid, host] = r.holder.split(/\s+/);
    const who = pid ? ` (holder: pid ${pid}${host ? ` on ${host}` : ''}, as seen in its own pid namespace)` : '';
    throw new StartRefusal(`data dir ${dataDir} is in use by another crowd${who}; ${file} is locked`);
  }
  return r.release;
}

/**
 * The pid a live crowd holding `dataDir` wrote (-1 when it is held but the pid is unknown or
 * means nothing here), or null when nobody holds it. For `crowd log verify`, which repairs
 * only a data dir no crowd holds.
 */
export function lockOwner(dataDir: string): number | null {
  const holder = lockHolder(path.join(dataDir, 'crowd.lock'));
  if (holder === null) return null;
  const pid = Number(holder.split(/\s+/)[0]);
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid ? pid : -1;
}
