/* fake_fstore.h — test controls of the in-memory feature store in fake_fstore.c, which also
 * defines the mmr_fstore_* calls the consumer makes (see there for how the link works). */
#ifndef MMR_FAKE_FSTORE_H
#define MMR_FAKE_FSTORE_H

#include <stdint.h>

#include "mmr_fstore.h"

#define FAKE_PARTS 16 /* partitions per topic the fake can hold offsets for */
#define FAKE_TOPICS 4 /* topics the fake can hold offsets for */

mmr_fstore_t *fake_fstore_new(void); /* owned; fake_fstore_free */
void fake_fstore_free(mmr_fstore_t *fs);
/* The next ok_first batch commits succeed, then n_fail fail with MMR_ERR_STORE. */
void fake_fstore_fail_commits(mmr_fstore_t *fs, int ok_first, int n_fail);
/* Every batch commit takes ms milliseconds (0: as fast as it can). */
void fake_fstore_slow_commits(mmr_fstore_t *fs, int ms);
/* The next n_fail mmr_fstore_get_offset calls fail with MMR_ERR_STORE. */
void fake_fstore_fail_get_offsets(mmr_fstore_t *fs, int n_fail);
uint64_t fake_fstore_applied(mmr_fstore_t *fs);  /* events in committed batches */
uint64_t fake_fstore_items(mmr_fstore_t *fs);    /* item puts in committed batches */
/* Committed batches that held offsets of more than one topic (events AND items). */
uint64_t fake_fstore_mixed_commits(mmr_fstore_t *fs);
int64_t fake_fstore_offset(mmr_fstore_t *fs, const char *topic, int32_t partition); /* -1: none */

#endif
