/**
 * Which data dir `crowd log verify|dump` read, and whether it holds a log at all.
 * Precedence: --data-dir, then the config's dataDir as crowd start would see it (the file given
 * by --config or CROWD_CONFIG, with CROWD_DATA_DIR over it, default ./data). A dir that does not
 * exist, or holds no log (no <dataDir>/log/lane-* nor dlq-* directory), is a usage error (exit
 * 2): a typo in the path must not read as an empty, healthy log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../config/load.js';
import { listLogDirs } from '../log/lane-log.js';

export class DataDirError extends Error {
  override name = 'DataDirError';
}

export function logDataDir(opts: { dataDir?: string; config?: string }, env: NodeJS.ProcessEnv = process.env): string {
  let dir = opts.dataDir;
  if (dir === undefined) {
    try {
      dir = loadConfig({ file: opts.config, env }).dataDir;
    } catch (e) {
      if (e instanceof ConfigError) throw new DataDirError(e.message);
      throw e;
    }
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new DataDirError(`data dir ${dir} does not exist (give --data-dir, CROWD_DATA_DIR or a config with dataDir)`);
  }
  if (!st.isDirectory()) throw new DataDirError(`data dir ${dir} is not a directory`);
  if (listLogDirs(dir).length === 0) throw new DataDirError(`data dir ${dir} holds no log (no ${path.join(dir, 'log')}/lane-* directory)`);
  return dir;
}
