/* CRC32C (Castagnoli): hardware instruction when the CPU has SSE4.2, table otherwise. */
#ifndef CROWD_CRC32C_H
#define CROWD_CRC32C_H
#include <stddef.h>
#include <stdint.h>
uint32_t crowd_crc32c(uint32_t crc, const uint8_t *data, size_t len);
int crowd_crc32c_hw(void);
#endif
