/* The one N-API error check of crowd's addons: a failed call throws CROWD_NATIVE naming the
 * call, and the binding returns (NULL: the pending exception reaches JS). */
#ifndef CROWD_NAPI_CHECK_H
#define CROWD_NAPI_CHECK_H
#include <node_api.h>

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, "CROWD_NATIVE", "N-API call failed: " #call);  \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

#endif
