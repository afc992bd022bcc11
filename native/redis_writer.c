/* crowd's Redis writer: hiredis (Debian's libhiredis-dev) driven by the event loop of the
 * calling Node thread, through hiredis's own libuv adapter. No thread of its own, no blocking
 * call: connect is non-blocking (the JS side resolves names first), writes and reads happen
 * when libuv reports the socket ready. The libuv glue is crowd's own (below): the adapter
 * shipped with hiredis 0.14 ignores a poll error, so a refused connect would never end.
 *
 * redisConnect(host, port, onConnect, onClose) -> handle
 * redisWrite(handle, args, argc, done)          -> false when the connection is gone
 * redisDestroy(handle)
 * redisSpec(kind, keyParts, maxLen, envelope)  -> spec: how messages become commands (below)
 * redisWriteEnvelopes(handle, spec, payloads, ends, done) -> like redisWrite, for messages
 * redisEncodeEnvelopes(spec, payloads, ends)    -> Buffer: the RESP bytes it would send
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

/* The hot path: redisWriteEnvelopes takes the batch's stored protobuf envelopes (crowd.proto)
 * back to back in one Buffer, with their end offsets, and builds each message's command in C:
 *   kind 0 stream:  XADD <key> [MAXLEN ~ n] * id <id> body <body> key <key> ct <ct> [ce <ce>] <h> <v>...
 *                   (envelope format: XADD <key> [MAXLEN ~ n] * id <id> envelope <bytes>)
 *   kind 1 RPUSH / kind 2 LPUSH: <key> <body>   (envelope format: the envelope bytes)
 * where <key> is keyParts joined with the message's topic ("{topic}" in the sink's config).
 * So a batch costs a constant number of N-API calls, not a few per argument. The JS twin
 * builds the same bytes from the decoded envelope (src/sinks/redis/redis-commands.ts +
 * resp-connection.ts); test/redis-commands.test.ts checks that they are identical. */

#include "napi_check.h"

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
    p->events = 0; /* libuv has stopped the handle: a later add must start it again */
    if (!(p->ac->c.flags & REDIS_CONNECTED)) redisAsyncHandleWrite(p->ac);
    else redisAsyncHandleRead(p->ac);
    return;
  }
  if (events & UV_READABLE) redisAsyncHandleRead(p->ac);
  if (p->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

/* hiredis asks for writability once per command it queues. Only a change reaches libuv:
 * uv_poll_start first stops the handle, and on Linux that is an epoll_ctl(DEL) per call (one
 * per message, nearly all failing with ENOENT, under strace: 103,077 in 3 s). */
static void poll_set(Poll *p, int events) {
  if (events == p->events) return;
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
  uint8_t *answered; /* NULL, or per message: 1 = answered here, no command sent (skipped by replies) */
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

static void batch_free(Batch *b) {
  free(b->answered);
  free(b->type);
  free(b->num);
  free(b->len);
  free(b->text);
  free(b);
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
  batch_free(b);
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
  if (b->answered)
    while (b->next < b->n && b->answered[b->next]) b->next++;
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

/* One message of a batch that never becomes a command (its stored envelope does not decode):
 * answered here, alone, and skipped when Redis's replies are matched to the commands. Returns
 * 0 when the bookkeeping cannot be allocated (then the caller answers the rest as unqueued). */
static int answer_one(Batch *b, uint32_t i, const char *why, uint8_t type) {
  if (!b->answered && !(b->answered = calloc(b->n, 1))) return 0;
  b->answered[i] = 1;
  b->type[i] = keep_text(b, i, why, strlen(why)) ? type : R_NIL;
  b->got++;
  return 1;
}

/* The connection still takes commands: not gone, not being freed or disconnected. */
static int conn_open(const Conn *c) {
  return c->ac && !c->freeing && !(c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

/* A batch of n commands whose replies all go to `done` in one call; NULL (a JS exception
 * pending) when it cannot be made. */
static Batch *batch_new(napi_env env, Conn *c, uint32_t n, napi_value done) {
  Batch *b = calloc(1, sizeof *b);
  if (!b || !(b->type = malloc(n)) || !(b->num = malloc(n * sizeof *b->num)) || !(b->len = malloc(n * sizeof *b->len))) {
    if (b) batch_free(b);
    napi_throw_error(env, "CROWD_NATIVE", "out of memory");
    return NULL;
  }
  if (napi_create_reference(env, done, 1, &b->done) != napi_ok) {
    batch_free(b);
    napi_throw_error(env, "CROWD_NATIVE", "N-API call failed: napi_create_reference(done)");
    return NULL;
  }
  b->conn = c;
  b->n = n;
  return b;
}

static napi_value boolean(napi_env env, int v) {
  napi_value out;
  CHECK(napi_get_boolean(env, v, &out));
  return out;
}

#define BAD_ARGUMENT (-2)

/* Command i of a (args, argc) batch, formatted as RESP into *cmd: its argc[i] arguments are
 * read from args at *a, which moves past them. Returns the command's length; BAD_ARGUMENT when
 * argc[i] is not a count or an argument is not a string or Buffer; -1 when hiredis cannot
 * format it (out of memory). */
static long long format_command(napi_env env, Conn *c, napi_value args, napi_value argc, uint32_t i, uint32_t *a, sds *cmd) {
  napi_value nv, v;
  uint32_t n = 0;
  int ok = napi_get_element(env, argc, i, &nv) == napi_ok && napi_get_value_uint32(env, nv, &n) == napi_ok && n > 0;
  ok = ok && ensure_args(c, n);
  c->strused = 0;
  for (uint32_t k = 0; ok && k < n; k++, (*a)++)
    ok = napi_get_element(env, args, *a, &v) == napi_ok && read_arg(env, c, v, k);
  if (!ok) return BAD_ARGUMENT;
  for (uint32_t k = 0; k < n; k++)
    if (c->stroff[k] != SIZE_MAX) c->argv[k] = c->strs + c->stroff[k];
  return redisFormatSdsCommandArgv(cmd, (int)n, c->argv, c->argvlen);
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Conn *c = argc == 4 ? get_conn(env, argv[0]) : NULL;
  if (!c) {
    napi_throw_type_error(env, "CROWD_NATIVE", "redisWrite(handle, args, argc, done)");
    return NULL;
  }
  if (!conn_open(c)) return boolean(env, 0);
  uint32_t ncmd;
  CHECK(napi_get_array_length(env, argv[2], &ncmd));
  if (ncmd == 0) return boolean(env, 1);
  Batch *b = batch_new(env, c, ncmd, argv[3]);
  if (!b) return NULL;
  uint32_t a = 0;
  for (uint32_t i = 0; i < ncmd; i++) {
    sds cmd = NULL;
    long long len = format_command(env, c, argv[1], argv[2], i, &a, &cmd);
    if (len == BAD_ARGUMENT) {
      answer_unqueued(b, i, "ERR crowd: a command argument is not a string or Buffer", R_ERR);
      break;
    }
    int queued = len >= 0 && redisAsyncFormattedCommand(c->ac, on_reply, b, cmd, (size_t)len) == REDIS_OK;
    sdsfree(cmd);
    if (!queued) {
      answer_unqueued(b, i, "connection closing", R_LOST);
      break;
    }
  }
  return boolean(env, 1);
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
    sds cmd = NULL;
    long long len = format_command(env, c, argv[0], argv[1], i, &a, &cmd);
    if (len == BAD_ARGUMENT) {
      sdsfree(all);
      napi_throw_type_error(env, "CROWD_NATIVE", "redisEncode(args, argc): arguments are strings or Buffers");
      return NULL;
    }
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

/* ---- messages: envelope parsing and command building ---- */
typedef struct Spec {
  int kind;        /* 0 XADD, 1 RPUSH, 2 LPUSH */
  int envelope;    /* format envelope */
  char *maxlen;    /* decimal, or NULL */
  char **parts;    /* key template split at "{topic}" */
  size_t *partlen;
  uint32_t nparts;
} Spec;

typedef struct Field {
  const uint8_t *p;
  size_t n;
} Field;

/* Headers grow as needed (a message keeps as many as its route's keepHeaders): a fixed cap
 * here once made a message with more than 256 undecodable for this writer only. */
typedef struct Msg {
  Field id, topic, key, ct, body, ce;
  Field *hname, *hvalue;
  uint32_t nh, hcap;
} Msg;

static int msg_room(Msg *m) {
  if (m->nh < m->hcap) return 1;
  uint32_t cap = m->hcap ? m->hcap * 2 : 16;
  if (cap > (1u << 24)) return 0;
  Field *n = realloc(m->hname, cap * sizeof *n);
  if (!n) return 0;
  m->hname = n;
  Field *v = realloc(m->hvalue, cap * sizeof *v);
  if (!v) return 0;
  m->hvalue = v;
  m->hcap = cap;
  return 1;
}

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 1;
    }
  }
  return 0;
}

/* Walks one protobuf message; calls `on` for each length-delimited field, skips the rest. */
typedef int (*field_fn)(void *ctx, uint32_t field, const uint8_t *p, size_t n);
static int walk(const uint8_t *p, const uint8_t *end, field_fn on, void *ctx) {
  while (p < end) {
    uint64_t tag, v;
    if (!varint(&p, end, &tag)) return 0;
    switch (tag & 7) {
      case 0: if (!varint(&p, end, &v)) return 0; break;
      case 1: if (end - p < 8) return 0; p += 8; break;
      case 5: if (end - p < 4) return 0; p += 4; break;
      case 2:
        if (!varint(&p, end, &v) || v > (uint64_t)(end - p)) return 0;
        if (!on(ctx, (uint32_t)(tag >> 3), p, (size_t)v)) return 0;
        p += v;
        break;
      default: return 0;
    }
  }
  return 1;
}

static int on_header(void *ctx, uint32_t f, const uint8_t *p, size_t n) {
  Msg *m = ctx;
  if (f == 1) m->hname[m->nh] = (Field){p, n};
  else if (f == 2) m->hvalue[m->nh] = (Field){p, n};
  return 1;
}

static int on_envelope(void *ctx, uint32_t f, const uint8_t *p, size_t n) {
  Msg *m = ctx;
  switch (f) {
    case 1: m->id = (Field){p, n}; break;
    case 2: m->topic = (Field){p, n}; break;
    case 4: m->key = (Field){p, n}; break;
    case 6: m->ct = (Field){p, n}; break;
    case 7: m->body = (Field){p, n}; break;
    case 11: m->ce = (Field){p, n}; break;
    case 5:
      if (!msg_room(m)) return 0;
      m->hname[m->nh] = m->hvalue[m->nh] = (Field){(const uint8_t *)"", 0};
      if (!walk(p, p + n, on_header, m)) return 0;
      m->nh++;
      break;
  }
  return 1;
}

static int parse_envelope(Msg *m, const uint8_t *p, size_t n) {
  static const uint8_t empty[1] = {0};
  m->id = m->topic = m->key = m->ct = m->body = m->ce = (Field){empty, 0};
  m->nh = 0;
  return walk(p, p + n, on_envelope, m);
}

/* RESP writing into a growable buffer (inline appends: a message is ~30 small pieces) */
typedef struct Out {
  char *p;
  size_t len, cap;
  int oom;
} Out;

static inline void out_put(Out *o, const void *p, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + n) cap *= 2;
    char *q = realloc(o->p, cap);
    if (!q) {
      o->oom = 1;
      return;
    }
    o->p = q;
    o->cap = cap;
  }
  memcpy(o->p + o->len, p, n);
  o->len += n;
}

static inline void resp_count(Out *o, char type, size_t n) {
  char tmp[24];
  char *e = tmp + sizeof tmp, *p = e;
  *--p = '\n';
  *--p = '\r';
  do *--p = (char)('0' + n % 10); while ((n /= 10) != 0);
  *--p = type;
  out_put(o, p, (size_t)(e - p));
}
static inline void resp_arg(Out *o, const void *p, size_t n) {
  resp_count(o, '$', n);
  out_put(o, p, n);
  out_put(o, "\r\n", 2);
}

static void resp_key(Out *o, const Spec *sp, const Msg *m) {
  size_t n = 0;
  for (uint32_t i = 0; i < sp->nparts; i++) n += sp->partlen[i] + (i + 1 < sp->nparts ? m->topic.n : 0);
  resp_count(o, '$', n);
  for (uint32_t i = 0; i < sp->nparts; i++) {
    out_put(o, sp->parts[i], sp->partlen[i]);
    if (i + 1 < sp->nparts) out_put(o, m->topic.p, m->topic.n);
  }
  out_put(o, "\r\n", 2);
}

/* Appends the command of one message (its stored envelope bytes) to `o`. */
static void message_command(Out *o, const Spec *sp, const Msg *m, const uint8_t *env, size_t envlen) {
  if (sp->kind != 0) {
    out_put(o, sp->kind == 1 ? "*3\r\n$5\r\nRPUSH\r\n" : "*3\r\n$5\r\nLPUSH\r\n", 15);
    resp_key(o, sp, m);
    if (sp->envelope) resp_arg(o, env, envlen);
    else resp_arg(o, m->body.p, m->body.n);
    return;
  }
  size_t head = sp->maxlen ? 3 : 0;
  resp_count(o, '*', sp->envelope ? 7 + head : 11 + head + (m->ce.n ? 2 : 0) + 2 * (size_t)m->nh);
  out_put(o, "$4\r\nXADD\r\n", 10);
  resp_key(o, sp, m);
  if (sp->maxlen) {
    out_put(o, "$6\r\nMAXLEN\r\n$1\r\n~\r\n", 19);
    resp_arg(o, sp->maxlen, strlen(sp->maxlen));
  }
  out_put(o, "$1\r\n*\r\n$2\r\nid\r\n", 15);
  resp_arg(o, m->id.p, m->id.n);
  if (sp->envelope) {
    out_put(o, "$8\r\nenvelope\r\n", 14);
    resp_arg(o, env, envlen);
    return;
  }
  out_put(o, "$4\r\nbody\r\n", 10);
  resp_arg(o, m->body.p, m->body.n);
  out_put(o, "$3\r\nkey\r\n", 9);
  resp_arg(o, m->key.p, m->key.n);
  out_put(o, "$2\r\nct\r\n", 8);
  resp_arg(o, m->ct.p, m->ct.n);
  if (m->ce.n) {
    out_put(o, "$2\r\nce\r\n", 8);
    resp_arg(o, m->ce.p, m->ce.n);
  }
  for (uint32_t i = 0; i < m->nh; i++) {
    resp_arg(o, m->hname[i].p, m->hname[i].n);
    resp_arg(o, m->hvalue[i].p, m->hvalue[i].n);
  }
}

static void spec_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Spec *sp = data;
  for (uint32_t i = 0; i < sp->nparts; i++) free(sp->parts[i]);
  free(sp->parts);
  free(sp->partlen);
  free(sp->maxlen);
  free(sp);
}

static char *dup_string(napi_env env, napi_value v, size_t *len) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return NULL;
  char *s = malloc(n + 1);
  if (s && napi_get_value_string_utf8(env, v, s, n + 1, &n) != napi_ok) {
    free(s);
    return NULL;
  }
  if (len) *len = n;
  return s;
}

/* redisSpec(kind: 0|1|2, keyParts: string[], maxLen: string|null, envelope: boolean) */
static napi_value js_spec(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Spec *sp = calloc(1, sizeof *sp);
  int32_t kind;
  bool envelope;
  napi_valuetype mt;
  if (!sp || argc < 4 || napi_get_value_int32(env, argv[0], &kind) != napi_ok || napi_get_array_length(env, argv[1], &sp->nparts) != napi_ok ||
      sp->nparts == 0 || napi_get_value_bool(env, argv[3], &envelope) != napi_ok || napi_typeof(env, argv[2], &mt) != napi_ok) {
    free(sp);
    napi_throw_type_error(env, "CROWD_NATIVE", "redisSpec(kind, keyParts, maxLen, envelope)");
    return NULL;
  }
  sp->kind = kind;
  sp->envelope = envelope;
  sp->parts = calloc(sp->nparts, sizeof *sp->parts);
  sp->partlen = calloc(sp->nparts, sizeof *sp->partlen);
  int ok = sp->parts && sp->partlen;
  for (uint32_t i = 0; ok && i < sp->nparts; i++) {
    napi_value v;
    ok = napi_get_element(env, argv[1], i, &v) == napi_ok && (sp->parts[i] = dup_string(env, v, &sp->partlen[i])) != NULL;
  }
  if (ok && mt == napi_string) ok = (sp->maxlen = dup_string(env, argv[2], NULL)) != NULL;
  if (!ok) {
    spec_finalize(env, sp, NULL);
    napi_throw_error(env, "CROWD_NATIVE", "redisSpec: bad arguments");
    return NULL;
  }
  CHECK(napi_create_external(env, sp, spec_finalize, NULL, &out));
  return out;
}

/* Reads (spec, payloads, ends) from argv[first..first+2]. */
static int envelope_args(napi_env env, napi_value *argv, Spec **sp, uint8_t **data, size_t *len, uint32_t **ends, size_t *n) {
  void *spv;
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  void *base;
  if (napi_get_value_external(env, argv[0], &spv) != napi_ok) return 0;
  *sp = spv;
  if (napi_get_buffer_info(env, argv[1], (void **)data, len) != napi_ok) return 0;
  if (napi_get_typedarray_info(env, argv[2], &t, n, &base, &ab, &off) != napi_ok || t != napi_uint32_array) return 0;
  *ends = base;
  for (size_t i = 0; i < *n; i++)
    if ((*ends)[i] > *len || (i > 0 && (*ends)[i] < (*ends)[i - 1])) return 0;
  return 1;
}

static napi_value js_encode_envelopes(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Spec *sp;
  uint8_t *data;
  size_t len, n;
  uint32_t *ends;
  if (argc < 3 || !envelope_args(env, argv, &sp, &data, &len, &ends, &n)) {
    napi_throw_type_error(env, "CROWD_NATIVE", "redisEncodeEnvelopes(spec, payloads, ends)");
    return NULL;
  }
  static __thread Msg m;
  Out o = {0};
  for (size_t i = 0, start = 0; i < n; start = ends[i], i++) {
    if (!parse_envelope(&m, data + start, ends[i] - start)) {
      free(o.p);
      napi_throw_error(env, "CROWD_NATIVE", "an envelope does not decode");
      return NULL;
    }
    message_command(&o, sp, &m, data + start, ends[i] - start);
  }
  if (o.oom) {
    free(o.p);
    napi_throw_error(env, "CROWD_NATIVE", "out of memory");
    return NULL;
  }
  napi_status st = napi_create_buffer_copy(env, o.len, o.len ? o.p : "", NULL, &out);
  free(o.p);
  CHECK(st);
  return out;
}

/* redisWriteEnvelopes(handle, spec, payloads, ends, done): one call per batch. */
static napi_value js_write_envelopes(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Conn *c = argc == 5 ? get_conn(env, argv[0]) : NULL;
  Spec *sp;
  uint8_t *data;
  size_t len, n;
  uint32_t *ends;
  if (!c || !envelope_args(env, argv + 1, &sp, &data, &len, &ends, &n)) {
    napi_throw_type_error(env, "CROWD_NATIVE", "redisWriteEnvelopes(handle, spec, payloads, ends, done)");
    return NULL;
  }
  if (!conn_open(c)) return boolean(env, 0);
  if (n == 0) return boolean(env, 1);
  Batch *b = batch_new(env, c, (uint32_t)n, argv[4]);
  if (!b) return NULL;
  static __thread Msg m;
  static __thread Out o;
  size_t queued = 0;
  int ended = 0; /* answer_unqueued ran: the batch may be answered and freed already */
  for (size_t i = 0, start = 0; i < n; start = ends[i], i++) {
    if (!parse_envelope(&m, data + start, ends[i] - start)) {
      /* This message alone: the ERR is permanent (dead letter), the others go on. */
      if (answer_one(b, (uint32_t)i, "ERR crowd: the stored envelope does not decode", R_ERR)) continue;
      answer_unqueued(b, (uint32_t)i, "out of memory", R_LOST);
      ended = 1;
      break;
    }
    o.len = 0;
    o.oom = 0;
    message_command(&o, sp, &m, data + start, ends[i] - start);
    if (o.oom || redisAsyncFormattedCommand(c->ac, on_reply, b, o.p, o.len) != REDIS_OK) {
      answer_unqueued(b, (uint32_t)i, o.oom ? "out of memory" : "connection closing", R_LOST);
      ended = 1;
      break;
    }
    queued++;
  }
  /* No command went out (every message undecodable): no reply will come, answer now. */
  if (!ended && queued == 0) batch_answer(b);
  return boolean(env, 1);
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
      {"redisSpec", NULL, js_spec, NULL, NULL, NULL, napi_default, NULL},
      {"redisWriteEnvelopes", NULL, js_write_envelopes, NULL, NULL, NULL, napi_default, NULL},
      {"redisEncodeEnvelopes", NULL, js_encode_envelopes, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 7, props) != napi_ok) return NULL;
  napi_value v;
  char ver[32];
  snprintf(ver, sizeof ver, "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
  if (napi_create_string_utf8(env, ver, NAPI_AUTO_LENGTH, &v) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "hiredisVersion", v) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return crowd_redis_init(env, exports); }
