/* crowd's kernel file lock: flock(2) on a descriptor, non-blocking.
 *
 * flockExclusive(fd) -> 0 (locked), or the errno (EWOULDBLOCK: another open file description
 *                       holds it; anything else: the lock could not be tried).
 *
 * The lock belongs to the open file description, not to a pid: it is held as long as the
 * descriptor stays open (crowd keeps it for the process's life) and the kernel drops it when
 * the process dies, kill -9 included. Pids are never compared, so two processes that are
 * both pid 1 in their own pid namespaces (containers on one volume) still exclude each other,
 * and a lock file naming some unrelated live pid stops nobody. Node has no flock: this is the
 * whole reason for the binding (src/native/file-lock.ts loads it).
 */
#include <errno.h>
#include <node_api.h>
#include <sys/file.h>
#include "napi_check.h"

napi_value crowd_js_flock_exclusive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "CROWD_NATIVE", "flockExclusive expects a file descriptor");
    return NULL;
  }
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  napi_value out;
  CHECK(napi_create_int32(env, rc == 0 ? 0 : errno, &out));
  return out;
}
