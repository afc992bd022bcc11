/* Is a request body valid JSON? The same verdict as crowd's JS path (src/native/json-check.ts):
 * `new TextDecoder('utf-8', {fatal: true}).decode(body)` then `JSON.parse`, without building
 * any value. So:
 *   - invalid UTF-8 anywhere is CROWD_JSON_BAD_UTF8 (decoding comes before parsing): overlong
 *     forms, surrogates, code points past U+10FFFF, truncated sequences (Unicode table 3-7);
 *   - one leading UTF-8 BOM is skipped (TextDecoder drops it);
 *   - then RFC 8259: whitespace is space, tab, LF, CR; any value at the top level; strings
 *     without raw control characters, escapes \" \\ \/ \b \f \n \r \t \uXXXX (lone surrogate
 *     escapes are accepted, as JSON.parse does); numbers -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?.
 * Nesting has no limit of its own: the container stack is as deep as the input can be.
 * test/json-check.test.ts compares this with the JS path on generated and mutated documents.
 */
#include "json_check.h"
#include <stdlib.h>
#include <string.h>

static int utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    /* ASCII runs, 8 bytes at a time. */
    if (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      if (i + 2 >= n) return 0;
      uint8_t c1 = s[i + 1];
      uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
      if (c1 < lo || c1 > hi || (s[i + 2] & 0xC0) != 0x80) return 0;
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      if (i + 3 >= n) return 0;
      uint8_t c1 = s[i + 1];
      uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
      if (c1 < lo || c1 > hi || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80) return 0;
      i += 4;
    } else {
      return 0;
    }
  }
  return 1;
}

static inline int is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static inline int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static inline int is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* p[*i] is the opening quote; on success *i is past the closing one. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
/* Some byte of w is zero / below b (SWAR: eight bytes per step). */
#define HAS_ZERO(w) (((w) - ONES) & ~(w) & HIGHS)
#define HAS_LESS(w, b) (((w) - ONES * (b)) & ~(w) & HIGHS)

static int scan_string(const uint8_t *p, size_t n, size_t *i) {
  size_t k = *i + 1;
  while (k < n) {
    /* Runs of plain characters, 8 bytes at a time: no quote, backslash or control byte. */
    while (k + 8 <= n) {
      uint64_t w;
      memcpy(&w, p + k, 8);
      if (HAS_ZERO(w ^ (ONES * '"')) | HAS_ZERO(w ^ (ONES * '\\')) | HAS_LESS(w, 0x20)) break;
      k += 8;
    }
    if (k >= n) break;
    uint8_t c = p[k];
    if (c == '"') {
      *i = k + 1;
      return 1;
    }
    if (c < 0x20) return 0;
    if (c == '\\') {
      if (k + 1 >= n) return 0;
      uint8_t e = p[k + 1];
      if (e == 'u') {
        if (k + 5 >= n || !is_hex(p[k + 2]) || !is_hex(p[k + 3]) || !is_hex(p[k + 4]) || !is_hex(p[k + 5])) return 0;
        k += 6;
      } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
        k += 2;
      } else {
        return 0;
      }
    } else {
      k++; /* bytes of multi-byte characters: UTF-8 was checked already */
    }
  }
  return 0;
}

static int scan_number(const uint8_t *p, size_t n, size_t *i) {
  size_t k = *i;
  if (p[k] == '-') k++;
  if (k >= n) return 0;
  if (p[k] == '0') {
    k++;
  } else if (p[k] >= '1' && p[k] <= '9') {
    while (k < n && is_digit(p[k])) k++;
  } else {
    return 0;
  }
  if (k < n && p[k] == '.') {
    k++;
    if (k >= n || !is_digit(p[k])) return 0;
    while (k < n && is_digit(p[k])) k++;
  }
  if (k < n && (p[k] == 'e' || p[k] == 'E')) {
    k++;
    if (k < n && (p[k] == '+' || p[k] == '-')) k++;
    if (k >= n || !is_digit(p[k])) return 0;
    while (k < n && is_digit(p[k])) k++;
  }
  *i = k;
  return 1;
}

static int scan_literal(const uint8_t *p, size_t n, size_t *i, const char *word, size_t len) {
  if (n - *i < len || memcmp(p + *i, word, len) != 0) return 0;
  *i += len;
  return 1;
}

static int json_valid(const uint8_t *p, size_t n) {
  uint8_t small[512];
  uint8_t *stack = n <= sizeof small ? small : malloc(n);
  if (!stack) return 0;
  size_t depth = 0, i = 0;
  int ok = 0;
#define SKIP_WS while (i < n && is_ws(p[i])) i++
value:
  SKIP_WS;
  if (i >= n) goto done;
  switch (p[i]) {
    case '{':
      i++;
      stack[depth++] = '}';
      SKIP_WS;
      if (i < n && p[i] == '}') {
        i++;
        depth--;
        goto after_value;
      }
      goto key;
    case '[':
      i++;
      stack[depth++] = ']';
      SKIP_WS;
      if (i < n && p[i] == ']') {
        i++;
        depth--;
        goto after_value;
      }
      goto value;
    case '"':
      if (!scan_string(p, n, &i)) goto done;
      goto after_value;
    case 't':
      if (!scan_literal(p, n, &i, "true", 4)) goto done;
      goto after_value;
    case 'f':
      if (!scan_literal(p, n, &i, "false", 5)) goto done;
      goto after_value;
    case 'n':
      if (!scan_literal(p, n, &i, "null", 4)) goto done;
      goto after_value;
    default:
      if (p[i] != '-' && !is_digit(p[i])) goto done;
      if (!scan_number(p, n, &i)) goto done;
      goto after_value;
  }
key:
  SKIP_WS;
  if (i >= n || p[i] != '"' || !scan_string(p, n, &i)) goto done;
  SKIP_WS;
  if (i >= n || p[i] != ':') goto done;
  i++;
  goto value;
after_value:
  SKIP_WS;
  if (depth == 0) {
    ok = i == n;
    goto done;
  }
  if (i >= n) goto done;
  if (p[i] == ',') {
    i++;
    if (stack[depth - 1] == '}') goto key;
    goto value;
  }
  if (p[i] == stack[depth - 1]) {
    i++;
    depth--;
    goto after_value;
  }
done:
#undef SKIP_WS
  if (stack != small) free(stack);
  return ok;
}

int crowd_json_check(const uint8_t *p, size_t n) {
  if (!utf8_valid(p, n)) return CROWD_JSON_BAD_UTF8;
  if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) {
    p += 3;
    n -= 3;
  }
  return json_valid(p, n) ? CROWD_JSON_OK : CROWD_JSON_BAD_JSON;
}
