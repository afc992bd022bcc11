/**
 * One crowd per data directory: <dataDir>/crowd.lock holds the owner's pid. A lock left by a
 * process that no longer exists (kill -9) is taken over; a live owner is refused.
 */
import fs from 'node:fs';
import path from 'node:path';

export function lockOwner(dataDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'crowd.lock'), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

export function lockDataDir(dataDir: string): () => void {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'crowd.lock');
  const owner = lockOwner(dataDir);
  if (owner !== null && owner !== process.pid) {
    throw new Error(`data dir ${dataDir} is in use by crowd pid ${owner}`);
  }
  fs.writeFileSync(file, `${process.pid}\n`);
  return () => {
    if (lockOwner(dataDir) === process.pid) fs.rmSync(file, { force: true });
  };
}
