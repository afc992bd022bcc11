/** Small synchronous file-system steps the log needs, each named for the guarantee it gives. */
import fs from 'node:fs';
import path from 'node:path';

/** fsync a directory so a created, renamed or removed entry survives a crash. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes all of buf[0, len) at the file position, looping over short writes. */
export function writeAll(fd: number, buf: Uint8Array, len: number, position: number): void {
  let off = 0;
  while (off < len) {
    off += fs.writeSync(fd, buf, off, len - off, position + off);
  }
}

/** Replaces a small file atomically: write tmp, fsync, rename, fsync the directory. */
export function writeFileDurable(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}
