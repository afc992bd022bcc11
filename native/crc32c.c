/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
 * The SSE4.2 crc32 instruction does 8 bytes per cycle or so; the byte table is the
 * portable fallback. Both give identical results (test/crc32c.test.ts checks them against
 * the JS twin and the RFC 3720 vectors). */
#include "crc32c.h"
#include <string.h>

static uint32_t table[256];
static int table_ready = 0;

static void build_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  table_ready = 1;
}

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t n) {
  if (!table_ready) build_table();
  crc = ~crc;
  while (n--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t n) {
  uint64_t c = ~crc;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}
#endif

int crowd_crc32c_hw(void) {
#if defined(__x86_64__)
  return __builtin_cpu_supports("sse4.2");
#else
  return 0;
#endif
}

uint32_t crowd_crc32c(uint32_t crc, const uint8_t *data, size_t len) {
#if defined(__x86_64__)
  static int hw = -1;
  if (hw < 0) hw = crowd_crc32c_hw();
  if (hw) return crc32c_hw(crc, data, len);
#endif
  return crc32c_sw(crc, data, len);
}
