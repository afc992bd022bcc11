/* crowd's N-API addon: the native-speed pieces of the hot path.
 *
 * crc32c(buf[, seed])          -> checksum of a whole buffer
 * sealFrames(buf, start, end[, seed, magic])
 *                              -> seals every log frame in buf[start, end): checksum seeded with
 *                                 `seed`, magic set to `magic` (a segment's secrets, see
 *                                 src/log/frame-layout.ts; defaults: 0 and "CRWD")
 * jsonCheck(buf)               -> 0 valid UTF-8 JSON, 1 invalid UTF-8, 2 invalid JSON (json_check.c)
 * flockExclusive(fd)           -> 0 locked, else errno; the data-dir and port locks (file_lock.c)
 *
 * sealFrames exists so a lane pays one JS->native crossing per group-commit batch, not one
 * per record (bench/micro/crc32c shows what that saves). The frame layout is the log's
 * (src/log/frame-layout.ts): u32 magic | u32 crc32c(len..payload) | u32 len | payload | pad to 4.
 * The pure-JS twin is src/native/crc32c-js.ts; one test suite runs against both.
 */
#include <node_api.h>
#include <string.h>
#include "crc32c.h"
#include "json_check.h"

#define FRAME_HEADER 12u
#define FRAME_MAGIC 0x44575243u /* "CRWD" little-endian */

#include "napi_check.h"

napi_value crowd_js_flock_exclusive(napi_env env, napi_callback_info info); /* file_lock.c */

static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_buf = false;
  if (napi_is_buffer(env, v, &is_buf) == napi_ok && is_buf) {
    return napi_get_buffer_info(env, v, (void **)data, len) == napi_ok;
  }
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) == napi_ok && is_ta) {
    napi_typedarray_type t;
    size_t n, off;
    napi_value ab;
    void *base;
    if (napi_get_typedarray_info(env, v, &t, &n, &base, &ab, &off) != napi_ok) return 0;
    if (t != napi_uint8_array) return 0;
    *data = base;
    *len = n;
    return 1;
  }
  return 0;
}

static napi_value js_crc32c(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data;
  size_t len;
  if (argc < 1 || !get_bytes(env, argv[0], &data, &len)) {
    napi_throw_type_error(env, "CROWD_NATIVE", "crc32c expects a Uint8Array");
    return NULL;
  }
  uint32_t seed = 0;
  if (argc > 1) CHECK(napi_get_value_uint32(env, argv[1], &seed));
  napi_value out;
  CHECK(napi_create_uint32(env, crowd_crc32c(seed, data, len), &out));
  return out;
}

static inline uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v; /* x86-64 and arm64 Linux are little-endian; the log is little-endian */
}

static napi_value js_seal_frames(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data;
  size_t len;
  uint32_t start, end, seed = 0, magic = FRAME_MAGIC;
  if (argc < 3 || !get_bytes(env, argv[0], &data, &len)) {
    napi_throw_type_error(env, "CROWD_NATIVE", "sealFrames(buf, start, end[, seed, magic])");
    return NULL;
  }
  CHECK(napi_get_value_uint32(env, argv[1], &start));
  CHECK(napi_get_value_uint32(env, argv[2], &end));
  if (argc >= 4) CHECK(napi_get_value_uint32(env, argv[3], &seed));
  if (argc >= 5) CHECK(napi_get_value_uint32(env, argv[4], &magic));
  if (end > len || start > end) {
    napi_throw_range_error(env, "CROWD_NATIVE", "sealFrames range outside the buffer");
    return NULL;
  }
  uint32_t pos = start, frames = 0;
  while (pos + FRAME_HEADER <= end) {
    uint32_t m = rd32(data + pos);
    if (m != FRAME_MAGIC && m != magic) break;
    uint32_t n = rd32(data + pos + 8);
    if ((uint64_t)pos + FRAME_HEADER + n > end) break;
    uint32_t crc = crowd_crc32c(seed, data + pos + 8, 4u + n);
    memcpy(data + pos, &magic, 4);
    memcpy(data + pos + 4, &crc, 4);
    pos += (FRAME_HEADER + n + 3u) & ~3u;
    frames++;
  }
  napi_value out;
  CHECK(napi_create_uint32(env, frames, &out));
  return out;
}

static napi_value js_json_check(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data;
  size_t len;
  if (argc < 1 || !get_bytes(env, argv[0], &data, &len)) {
    napi_throw_type_error(env, "CROWD_NATIVE", "jsonCheck expects a Uint8Array");
    return NULL;
  }
  napi_value out;
  CHECK(napi_create_uint32(env, (uint32_t)crowd_json_check(data, len), &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"crc32c", NULL, js_crc32c, NULL, NULL, NULL, napi_default, NULL},
      {"sealFrames", NULL, js_seal_frames, NULL, NULL, NULL, napi_default, NULL},
      {"jsonCheck", NULL, js_json_check, NULL, NULL, NULL, napi_default, NULL},
      {"flockExclusive", NULL, crowd_js_flock_exclusive, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value hw;
  if (napi_create_uint32(env, (uint32_t)crowd_crc32c_hw(), &hw) != napi_ok) return NULL;
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "hardwareCrc", hw) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
