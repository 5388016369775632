/* fuzz_tower.h — the tiny tower that the model-loader harness and its seeds share: the
 * harness writes it as the base file every delta input names (FUZZ_BASE_NAME, next to the
 * input), and make_seeds.c writes a valid delta over it, so mutations reach the delta
 * reader past its checksums. */
#ifndef MMR_FUZZ_TOWER_H
#define MMR_FUZZ_TOWER_H

#include "mmr_tower.h"

#define FUZZ_BASE_NAME "mmrec-fuzz-base.mmrt"

/* The tiny tower (weights from seed 1). Errors: those of mmr_tower_new. */
static inline mmr_status_t fuzz_tiny_tower(mmr_tower_t **out, mmr_err_t *err) {
    mmr_tower_config_t c = {.d_text = 3, .d_image = 2, .d_video = 2, .d_hidden = 4, .d_out = 2,
                            .n_item_ids = 4, .n_user_ids = 4, .hist_len = 2, .n_event_types = 9};
    return mmr_tower_new(&c, 1, out, err);
}

#endif
