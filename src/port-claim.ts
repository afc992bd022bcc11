/**
 * Only crowd's own acceptor threads may share the ingest port. They bind it with SO_REUSEPORT,
 * which would also let any other process of the same user join the port and take part of the
 * traffic (into its own data dir): a second crowd must refuse to start instead. Two guards,
 * for the ingest port and the admin port (docs/operations.md, "One crowd per port"):
 *
 * 1. A port lock: an exclusive kernel lock (flock) on <tmpdir>/crowd-ports-<uid>/<host>_<port>.lock,
 *    held for the process's life. SO_REUSEPORT only groups sockets of one user, so a per-user
 *    directory is the whole scope; it closes the race of two crowds starting at once.
 * 2. A probe: a plain bind (no SO_REUSEPORT) of host:port, closed at once. Any listener already
 *    there (a crowd in another container sharing the network namespace, or any other program)
 *    makes it fail with EADDRINUSE. It runs at the claim and again just before the acceptors
 *    bind (lane recovery can take a while in between).
 * A refusal is a StartRefusal: the CLI prints one line and exits 70.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { lockFile } from './native/file-lock.js';
import { StartRefusal } from './start-refusal.js';

export type PortRole = 'ingest' | 'admin';

/** The lock directory of this user, or null when it cannot be used safely (then the probe alone guards). */
function lockDir(): string | null {
  const uid = process.getuid?.() ?? 0;
  const dir = path.join(os.tmpdir(), `crowd-ports-${uid}`);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return null;
  }
  const st = fs.lstatSync(dir);
  // Someone else's directory (or a symlink) in a shared /tmp: do not trust it.
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) return null;
  return dir;
}

/** Fails with the bind error's code (EADDRINUSE: someone listens there), or null when free. */
export function probePort(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    // exclusive: never share a handle through the cluster module; Node sets no SO_REUSEPORT.
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(null)));
  });
}

export async function checkPortFree(role: PortRole, host: string, port: number): Promise<void> {
  if (port === 0) return;
  if ((await probePort(host, port)) === 'EADDRINUSE') {
    throw new StartRefusal(`${role} port ${host}:${port} is already in use by another process; only crowd's own acceptor threads may share it`);
  }
}

/**
 * Takes the port lock of host:port and probes the port; throws StartRefusal when another crowd
 * or process has it. Port 0 (the kernel picks a fresh port at bind) needs no claim.
 */
export async function claimPort(role: PortRole, host: string, port: number): Promise<() => void> {
  if (port === 0) return () => {};
  const dir = lockDir();
  let release = () => {};
  if (dir) {
    const file = path.join(dir, `${host.replace(/[^A-Za-z0-9.-]/g, '_')}_${port}.lock`);
    let r: ReturnType<typeof lockFile> | null = null;
    try {
      r = lockFile(file);
    } catch {
      // Cannot lock (odd file system, no addon): the probe below still guards.
    }
    if (r && !r.ok) {
      const pid = r.holder.split(/\s+/)[0];
      throw new StartRefusal(`${role} port ${host}:${port} is in use by another crowd${pid ? ` (pid ${pid})` : ''}; ${file} is locked`);
    }
    if (r?.ok) release = r.release;
  }
  try {
    await checkPortFree(role, host, port);
  } catch (e) {
    release();
    throw e;
  }
  return release;
}
