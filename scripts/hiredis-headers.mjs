// Whether the hiredis headers native/redis_writer.c includes are installed (Debian's
// libhiredis-dev): the one check that decides if the native Redis writer is built. binding.gyp
// runs this file (it prints 1 or 0) to add the crowd_redis target; build-native.mjs imports it
// to say why the target is left out.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The headers redis_writer.c includes (the libuv glue is its own, not hiredis's adapter). */
export const HIREDIS_HEADERS = ['/usr/include/hiredis/hiredis.h', '/usr/include/hiredis/async.h'];

export function hasHiredis() {
  return HIREDIS_HEADERS.every((h) => existsSync(h));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(hasHiredis() ? 1 : 0);
