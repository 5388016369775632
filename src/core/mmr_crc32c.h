/* mmr_crc32c.h — CRC-32C (Castagnoli), used by model files and checkpoints.
 * The CPU's crc32 instruction where there is one (x86-64 SSE4.2), else a table. */
#ifndef MMR_CRC32C_H
#define MMR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 for a fresh checksum) over buf[0..len). */
uint32_t mmr_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same with the table only, on every CPU (tests compare the two). */
uint32_t mmr_crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif
