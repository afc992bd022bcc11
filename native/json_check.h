/* Validation of a request body as UTF-8 JSON, for crowd's acceptor (see json_check.c). */
#ifndef CROWD_JSON_CHECK_H
#define CROWD_JSON_CHECK_H
#include <stddef.h>
#include <stdint.h>

#define CROWD_JSON_OK 0
#define CROWD_JSON_BAD_UTF8 1
#define CROWD_JSON_BAD_JSON 2

int crowd_json_check(const uint8_t *p, size_t n);

#endif
