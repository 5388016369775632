/* mmr_crc32c.h — CRC-32C (Castagnoli), used by model files and checkpoints.
 * Software table implementation: portable, ~1 GB/s, ample for files read at start-up. */
#ifndef MMR_CRC32C_H
#define MMR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 for a fresh checksum) over buf[0..len). */
uint32_t mmr_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
