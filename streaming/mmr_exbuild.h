/* mmr_exbuild.h — turns a joined (user, item, label) into a trainer example by reading the
 * feature store: the user's history before the example's time, the items' modality
 * embeddings, the item's decayed popularity and age. mmrecd's trainer and the replay tool
 * build examples through this one function, so they learn from the same features.
 *
 * History = mmr_user_history before the example's event time (so the example's own event
 * never leaks into it), at most the tower's hist_len: the same rule serving uses. An item absent from the catalog has every modality absent
 * (content from its id embedding alone); a modality whose stored width differs from the
 * tower's is treated as absent and counted.
 *
 * Item content is cached in memory (bounded by item_cache_max entries; when full the cache
 * is emptied at the start of the next call): catalog updates reach examples once the
 * cache is emptied (mmr_exbuild_invalidate, e.g. on each model publish).
 * Threads: one builder per thread; the store is shared. */
#ifndef MMR_EXBUILD_H
#define MMR_EXBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"
#include "mmr_joiner.h"
#include "mmr_trainer.h"

typedef struct mmr_exbuild mmr_exbuild_t;

typedef struct mmr_exbuild_stats {
    uint64_t examples;
    uint64_t cache_hits, cache_misses;
    uint64_t width_mismatch; /* modalities ignored for a wrong stored width */
} mmr_exbuild_stats_t;

/* fs is borrowed and must outlive the builder; tower is copied. item_cache_max 0 = 65536.
 * Errors: MMR_ERR_INVALID, MMR_ERR_NOMEM. */
mmr_status_t mmr_exbuild_new(mmr_fstore_t *fs, const mmr_tower_config_t *tower,
                             size_t item_cache_max, mmr_exbuild_t **out, mmr_err_t *err);
void mmr_exbuild_free(mmr_exbuild_t *b); /* NULL is a no-op */

/* Fills *ex for j; ex's pointers are valid until the next call on b. Errors: MMR_ERR_STORE,
 * MMR_ERR_CORRUPT (an undecodable record), MMR_ERR_NOMEM. */
mmr_status_t mmr_exbuild_make(mmr_exbuild_t *b, const mmr_joined_t *j, mmr_example_t *ex,
                              mmr_err_t *err);
/* Empties the item cache (catalog changes become visible). */
void mmr_exbuild_invalidate(mmr_exbuild_t *b);
void mmr_exbuild_get_stats(const mmr_exbuild_t *b, mmr_exbuild_stats_t *out);

#endif
