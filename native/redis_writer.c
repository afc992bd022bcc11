/* crowd's Redis writer: hiredis (Debian's libhiredis-dev) driven by the event loop of the
 * calling Node thread, through hiredis's own libuv adapter. No thread of its own, no blocking
 * call: connect is non-blocking (the JS side resolves names first), writes and reads happen
 * when libuv reports the socket ready. The libuv glue is crowd's own (below): the adapter
 * shipped with hiredis 0.14 ignores a poll error, so a refused connect would never end.
 *
 * redisConnect(host, port, onConnect, onClose) -> handle
 * redisWrite(handle, args, argc, done)          -> false when the connection is gone
 * redisDestroy(handle)
 * redisEncode(args, argc)                       -> Buffer: the RESP bytes redisWrite would send
 *                                                  (for the byte-for-byte test against the JS
 *                                                  twin and the micro benchmark)
 *
 * redisWrite is the one JS-to-native call per batch: `args` holds every command's arguments
 * back to back (strings or Buffers; Buffers are read in place), `argc[i]` how many belong to
 * command i. Each command is formatted and appended to hiredis's output buffer; `done` gets
 * one array with every reply, in order, once the last one arrived (or the connection ended:
 * then the missing ones are {error, lost: true}). onClose(reason) is called once, after every
 * pending batch has been answered. The JS twin is src/sinks/redis/resp-connection.ts.
 */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <uv.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, "CROWD_NATIVE", "N-API call failed: " #call);  \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

/* ---- hiredis <-> libuv: one uv_poll_t per connection ---- */
typedef struct Poll {
  uv_poll_t handle;
  redisAsyncContext *ac; /* NULL once hiredis let go */
  int events;
} Poll;

static void on_poll(uv_poll_t *h, int status, int events) {
  Poll *p = h->data;
  if (!p->ac) return;
  if (status < 0) {
    /* libuv stopped the handle on a socket error: let hiredis find the error itself (a failed
     * connect, or a read that fails) and tear the connection down. */
    if (!(p->ac->c.flags & REDIS_CONNECTED)) redisAsyncHandleWrite(p->ac);
    else redisAsyncHandleRead(p->ac);
    return;
  }
  if (events & UV_READABLE) redisAsyncHandleRead(p->ac);
  if (p->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

static void poll_set(Poll *p, int events) {
  p->events = events;
  if (events) uv_poll_start(&p->handle, events, on_poll);
  else uv_poll_stop(&p->handle);
}
static void poll_add_read(void *d) { Poll *p = d; poll_set(p, p->events | UV_READABLE); }
static void poll_del_read(void *d) { Poll *p = d; poll_set(p, p->events & ~UV_READABLE); }
static void poll_add_write(void *d) { Poll *p = d; poll_set(p, p->events | UV_WRITABLE); }
static void poll_del_write(void *d) { Poll *p = d; poll_set(p, p->events & ~UV_WRITABLE); }
static void poll_closed(uv_handle_t *h) { free(h->data); }
static void on_cleanup(void *privdata);

static int poll_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  Poll *p = calloc(1, sizeof *p);
  if (!p) return 0;
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    free(p);
    return 0;
  }
  p->handle.data = p;
  p->ac = ac;
  ac->ev.data = p;
  ac->ev.addRead = poll_add_read;
  ac->ev.delRead = poll_del_read;
  ac->ev.addWrite = poll_add_write;
  ac->ev.delWrite = poll_del_write;
  ac->ev.cleanup = on_cleanup;
  return 1;
}

typedef struct Conn {
  napi_env env;
  redisAsyncContext *ac; /* NULL once hiredis has let go of it */
  int freeing;
  napi_ref self;         /* keeps the handle alive while the connection is */
  napi_ref on_connect;
  napi_ref on_close;
  napi_async_context actx;
  /* scratch for one command's arguments */
  const char **argv;
  size_t *argvlen;
  size_t *stroff; /* SIZE_MAX: a Buffer (argv set); else offset of a string in `strs` */
  size_t argcap;
  char *strs;
  size_t strcap, strused;
} Conn;

enum { R_STR, R_INT, R_NIL, R_ERR, R_LOST, R_JS };

typedef struct Batch {
  Conn *conn;
  napi_ref done;
  uint32_t n, got;
  uint32_t next; /* index of the next reply: replies come in command order */
  uint8_t *type;
  int64_t *num;   /* R_INT: value; R_STR/R_ERR: offset in text; R_JS: unused */
  uint32_t *len;
  char *text;
  size_t textlen, textcap;
  napi_ref extra; /* JS array holding converted array replies (rare) */
} Batch;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 1;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *q = realloc(*p, c * elem);
  if (!q) return 0;
  *p = q;
  *cap = c;
  return 1;
}

/* Calls a JS function from a libuv callback (hiredis's), with its own handle scope. */
static void call_js(Conn *c, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = c->env;
  napi_value fn, recv, result;
  napi_get_reference_value(env, fn_ref, &fn);
  napi_get_global(env, &recv); /* napi_make_callback wants an object as `this` */
  if (napi_make_callback(env, c->actx, recv, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

static napi_value reply_to_js(napi_env env, redisReply *r) {
  napi_value v = NULL;
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      napi_create_string_utf8(env, r->str, r->len, &v);
      break;
    case REDIS_REPLY_INTEGER:
      napi_create_int64(env, r->integer, &v);
      break;
    case REDIS_REPLY_ARRAY:
      napi_create_array_with_length(env, r->elements, &v);
      for (size_t i = 0; i < r->elements; i++) napi_set_element(env, v, (uint32_t)i, reply_to_js(env, r->element[i]));
      break;
    case REDIS_REPLY_ERROR: {
      napi_value s;
      napi_create_object(env, &v);
      napi_create_string_utf8(env, r->str, r->len, &s);
      napi_set_named_property(env, v, "error", s);
      break;
    }
    default:
      napi_get_null(env, &v);
  }
  return v;
}

static napi_value error_object(napi_env env, const char *msg, size_t len, int lost) {
  napi_value o, s, t;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, msg, len, &s);
  napi_set_named_property(env, o, "error", s);
  if (lost) {
    napi_get_boolean(env, 1, &t);
    napi_set_named_property(env, o, "lost", t);
  }
  return o;
}

/* Every reply is in: one array to JS, one call. */
static void batch_answer(Batch *b) {
  napi_env env = b->conn->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value arr, extra = NULL, nul;
  napi_create_array_with_length(env, b->n, &arr);
  napi_get_null(env, &nul);
  if (b->extra) napi_get_reference_value(env, b->extra, &extra);
  for (uint32_t i = 0; i < b->n; i++) {
    napi_value v;
    switch (b->type[i]) {
      case R_STR: napi_create_string_utf8(env, b->text + b->num[i], b->len[i], &v); break;
      case R_INT: napi_create_int64(env, b->num[i], &v); break;
      case R_ERR: v = error_object(env, b->text + b->num[i], b->len[i], 0); break;
      case R_LOST: v = error_object(env, b->text + b->num[i], b->len[i], 1); break;
      case R_JS: napi_get_element(env, extra, i, &v); break;
      default: v = nul;
    }
    napi_set_element(env, arr, i, v);
  }
  Conn *c = b->conn;
  napi_ref done = b->done;
  call_js(c, done, 1, &arr);
  napi_delete_reference(env, done);
  napi_close_handle_scope(env, scope);
  if (b->extra) napi_delete_reference(env, b->extra);
  b->extra = NULL;
  free(b->type);
  free(b->num);
  free(b->len);
  free(b->text);
  free(b);
}

static int keep_text(Batch *b, uint32_t i, const char *s, size_t n) {
  if (!grow((void **)&b->text, &b->textcap, b->textlen + n + 1, 1)) return 0;
  memcpy(b->text + b->textlen, s, n);
  b->num[i] = (int64_t)b->textlen;
  b->len[i] = (uint32_t)n;
  b->textlen += n;
  return 1;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  Batch *b = privdata;
  redisReply *r = reply;
  uint32_t i = b->next++;
  b->got++;
  if (r == NULL) {
    const char *why = ac->c.errstr[0] ? ac->c.errstr : "connection closed";
    b->type[i] = keep_text(b, i, why, strlen(why)) ? R_LOST : R_NIL;
  } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
    b->type[i] = keep_text(b, i, r->str, r->len) ? R_STR : R_NIL;
  } else if (r->type == REDIS_REPLY_ERROR) {
    b->type[i] = keep_text(b, i, r->str, r->len) ? R_ERR : R_NIL;
  } else if (r->type == REDIS_REPLY_INTEGER) {
    b->type[i] = R_INT;
    b->num[i] = r->integer;
  } else if (r->type == REDIS_REPLY_ARRAY) {
    napi_env env = b->conn->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value extra;
    if (!b->extra) {
      napi_create_array(env, &extra);
      napi_create_reference(env, extra, 1, &b->extra);
    } else {
      napi_get_reference_value(env, b->extra, &extra);
    }
    napi_set_element(env, extra, i, reply_to_js(env, r));
    napi_close_handle_scope(env, scope);
    b->type[i] = R_JS;
  } else {
    b->type[i] = R_NIL;
  }
  if (b->got == b->n) batch_answer(b);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  Conn *c = ac->data;
  if (status != REDIS_OK || !c) return; /* the cleanup hook reports the failure */
  napi_handle_scope scope;
  napi_open_handle_scope(c->env, &scope);
  call_js(c, c->on_connect, 0, NULL);
  napi_close_handle_scope(c->env, scope);
}

/* hiredis calls the adapter's cleanup exactly once, from its free path, after every pending
 * callback got its NULL reply: the one place to say the connection is over. */
static void on_cleanup(void *privdata) {
  Poll *p = privdata;
  redisAsyncContext *ac = p->ac;
  Conn *c = ac ? ac->data : NULL;
  const char *why = ac && ac->c.errstr[0] ? ac->c.errstr : "connection closed";
  char reason[160];
  snprintf(reason, sizeof reason, "%s", why);
  p->ac = NULL;
  uv_close((uv_handle_t *)&p->handle, poll_closed);
  if (!c) return;
  c->ac = NULL;
  napi_env env = c->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value r;
  napi_create_string_utf8(env, reason, NAPI_AUTO_LENGTH, &r);
  call_js(c, c->on_close, 1, &r);
  napi_close_handle_scope(env, scope);
  napi_delete_reference(env, c->self); /* the handle may be collected now */
  c->self = NULL;
}

static void conn_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  Conn *c = data;
  if (c->ac) c->ac->data = NULL; /* environment going away with the connection open */
  if (c->on_connect) napi_delete_reference(env, c->on_connect);
  if (c->on_close) napi_delete_reference(env, c->on_close);
  napi_async_destroy(env, c->actx);
  free(c->argv);
  free(c->argvlen);
  free(c->stroff);
  free(c->strs);
  free(c);
}

static napi_value js_connect(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char host[256];
  size_t hl;
  int32_t port;
  if (argc < 4 || napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hl) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok) {
    napi_throw_type_error(env, "CROWD_NATIVE", "redisConnect(host, port, onConnect, onClose)");
    return NULL;
  }
  redisAsyncContext *ac = redisAsyncConnect(host, port);
  if (!ac) {
    napi_throw_error(env, "CROWD_NATIVE", "redisAsyncConnect: out of memory");
    return NULL;
  }
  if (ac->err) {
    napi_throw_error(env, "CROWD_NATIVE", ac->errstr);
    redisAsyncFree(ac);
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !poll_attach(ac, loop)) {
    redisAsyncFree(ac);
    napi_throw_error(env, "CROWD_NATIVE", "cannot attach hiredis to the event loop");
    return NULL;
  }
  Conn *c = calloc(1, sizeof *c);
  if (!c) {
    redisAsyncFree(ac);
    napi_throw_error(env, "CROWD_NATIVE", "out of memory");
    return NULL;
  }
  c->env = env;
  c->ac = ac;
  ac->data = c;
  napi_value handle, name;
  CHECK(napi_create_external(env, c, conn_finalize, NULL, &handle));
  CHECK(napi_create_reference(env, handle, 1, &c->self));
  CHECK(napi_create_reference(env, argv[2], 1, &c->on_connect));
  CHECK(napi_create_reference(env, argv[3], 1, &c->on_close));
  CHECK(napi_create_string_utf8(env, "crowd:redis", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, handle, name, &c->actx));
  /* After the adapter is attached: setting the connect callback arms the first write event. */
  redisAsyncSetConnectCallback(ac, on_connect);
  return handle;
}

static Conn *get_conn(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* Reads one argument: Buffers in place, strings copied into the connection's scratch. */
static int read_arg(napi_env env, Conn *c, napi_value v, size_t k) {
  bool is_buf = false;
  if (napi_is_buffer(env, v, &is_buf) == napi_ok && is_buf) {
    void *data;
    size_t len;
    if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return 0;
    c->argv[k] = data;
    c->argvlen[k] = len;
    c->stroff[k] = SIZE_MAX;
    return 1;
  }
  size_t len, used = c->strused;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return 0;
  if (!grow((void **)&c->strs, &c->strcap, used + len + 1, 1)) return 0;
  if (napi_get_value_string_utf8(env, v, c->strs + used, len + 1, &len) != napi_ok) return 0;
  c->stroff[k] = used;
  c->argvlen[k] = len;
  c->strused = used + len;
  return 1;
}

static int ensure_args(Conn *c, size_t n) {
  if (n <= c->argcap) return 1;
  size_t cap = c->argcap ? c->argcap : 16;
  while (cap < n) cap *= 2;
  const char **argv = realloc(c->argv, cap * sizeof *argv);
  if (argv) c->argv = argv;
  size_t *lens = realloc(c->argvlen, cap * sizeof *lens);
  if (lens) c->argvlen = lens;
  size_t *offs = realloc(c->stroff, cap * sizeof *offs);
  if (offs) c->stroff = offs;
  if (!argv || !lens || !offs) return 0;
  c->argcap = cap;
  return 1;
}

/* Commands [from, n) of a batch that could not be queued: answered at once, so the batch
 * still completes (the queued ones before them are answered by Redis). */
static void answer_unqueued(Batch *b, uint32_t from, const char *why, uint8_t type) {
  for (uint32_t j = from; j < b->n; j++) {
    b->type[j] = keep_text(b, j, why, strlen(why)) ? type : R_NIL;
    b->got++;
  }
  if (b->got == b->n) batch_answer(b);
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Conn *c = argc == 4 ? get_conn(env, argv[0]) : NULL;
  if (!c) {
    napi_throw_type_error(env, "CROWD_NATIVE", "redisWrite(handle, args, argc, done)");
    return NULL;
  }
  if (!c->ac || c->freeing || (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING))) {
    CHECK(napi_get_boolean(env, 0, &out));
    return out;
  }
  uint32_t ncmd;
  CHECK(napi_get_array_length(env, argv[2], &ncmd));
  if (ncmd == 0) {
    CHECK(napi_get_boolean(env, 1, &out));
    return out;
  }
  Batch *b = calloc(1, sizeof *b);
  if (!b || !(b->type = malloc(ncmd)) || !(b->num = malloc(ncmd * sizeof *b->num)) || !(b->len = malloc(ncmd * sizeof *b->len))) {
    if (b) { free(b->type); free(b->num); free(b); }
    napi_throw_error(env, "CROWD_NATIVE", "out of memory");
    return NULL;
  }
  b->conn = c;
  b->n = ncmd;
  CHECK(napi_create_reference(env, argv[3], 1, &b->done));
  uint32_t a = 0;
  for (uint32_t i = 0; i < ncmd; i++) {
    napi_value nv, v;
    uint32_t n = 0;
    int ok = napi_get_element(env, argv[2], i, &nv) == napi_ok && napi_get_value_uint32(env, nv, &n) == napi_ok && n > 0;
    ok = ok && ensure_args(c, n);
    c->strused = 0;
    for (uint32_t k = 0; ok && k < n; k++, a++)
      ok = napi_get_element(env, argv[1], a, &v) == napi_ok && read_arg(env, c, v, k);
    if (!ok) {
      answer_unqueued(b, i, "ERR crowd: a command argument is not a string or Buffer", R_ERR);
      break;
    }
    for (uint32_t k = 0; k < n; k++)
      if (c->stroff[k] != SIZE_MAX) c->argv[k] = c->strs + c->stroff[k];
    sds cmd = NULL;
    long long len = redisFormatSdsCommandArgv(&cmd, (int)n, c->argv, c->argvlen);
    int queued = len >= 0 && redisAsyncFormattedCommand(c->ac, on_reply, b, cmd, (size_t)len) == REDIS_OK;
    sdsfree(cmd);
    if (!queued) {
      answer_unqueued(b, i, "connection closing", R_LOST);
      break;
    }
  }
  CHECK(napi_get_boolean(env, 1, &out));
  return out;
}

static void free_sds(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sdsfree(data);
}

static napi_value js_encode(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  static __thread Conn *c = NULL; /* argument scratch only, one per thread (workers too) */
  if (!c && !(c = calloc(1, sizeof *c))) {
    napi_throw_error(env, "CROWD_NATIVE", "out of memory");
    return NULL;
  }
  uint32_t ncmd, a = 0;
  CHECK(napi_get_array_length(env, argv[1], &ncmd));
  sds all = sdsempty();
  for (uint32_t i = 0; i < ncmd; i++) {
    napi_value nv, v;
    uint32_t n = 0;
    int ok = napi_get_element(env, argv[1], i, &nv) == napi_ok && napi_get_value_uint32(env, nv, &n) == napi_ok && n > 0;
    ok = ok && ensure_args(c, n);
    c->strused = 0;
    for (uint32_t k = 0; ok && k < n; k++, a++)
      ok = napi_get_element(env, argv[0], a, &v) == napi_ok && read_arg(env, c, v, k);
    if (!ok) {
      sdsfree(all);
      napi_throw_type_error(env, "CROWD_NATIVE", "redisEncode(args, argc): arguments are strings or Buffers");
      return NULL;
    }
    for (uint32_t k = 0; k < n; k++)
      if (c->stroff[k] != SIZE_MAX) c->argv[k] = c->strs + c->stroff[k];
    sds cmd = NULL;
    long long len = redisFormatSdsCommandArgv(&cmd, (int)n, c->argv, c->argvlen);
    if (len < 0) {
      sdsfree(all);
      napi_throw_error(env, "CROWD_NATIVE", "out of memory");
      return NULL;
    }
    all = sdscatlen(all, cmd, (size_t)len);
    sdsfree(cmd);
  }
  CHECK(napi_create_external_buffer(env, sdslen(all), all, free_sds, NULL, &out));
  return out;
}

static napi_value js_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Conn *c = argc == 1 ? get_conn(env, argv[0]) : NULL;
  if (!c) {
    napi_throw_type_error(env, "CROWD_NATIVE", "redisDestroy(handle)");
    return NULL;
  }
  if (c->ac && !c->freeing) {
    c->freeing = 1;
    redisAsyncFree(c->ac); /* pending commands get NULL replies, then on_cleanup */
  }
  return NULL;
}

napi_value crowd_redis_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"redisConnect", NULL, js_connect, NULL, NULL, NULL, napi_default, NULL},
      {"redisWrite", NULL, js_write, NULL, NULL, NULL, napi_default, NULL},
      {"redisDestroy", NULL, js_destroy, NULL, NULL, NULL, napi_default, NULL},
      {"redisEncode", NULL, js_encode, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 4, props) != napi_ok) return NULL;
  napi_value v;
  char ver[32];
  snprintf(ver, sizeof ver, "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
  if (napi_create_string_utf8(env, ver, NAPI_AUTO_LENGTH, &v) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "hiredisVersion", v) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return crowd_redis_init(env, exports); }
