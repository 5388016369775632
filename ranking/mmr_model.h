/* mmr_model.h — one servable model version: a tower plus the item index built from the
 * store's catalog, and the serving math on top (user encoding, candidate scoring, top-K
 * retrieval: exact, or approximate over large catalogs). Usable without gRPC: the Rank
 * method and the offline replay call the same functions. Not in here: versions, files,
 * hot swap (mmr_registry.h), the approximate index itself (mmr_ann.h).
 *
 * Index: every non-deleted catalog item at build time → row r with item vector (D), gate
 * weights (3), created_ms and id; an id → row hash map. Items added later are encoded on
 * the fly from the store when they are candidates; items deleted later are never served.
 *
 * Ids → tower inputs (the trainer MUST use the same helpers, mmr_model_item_input and
 * mmr_model_user_bucket, so that training and serving hash identically):
 *   item bucket = mmr_tower_id_bucket(item_id, n_item_ids), cache key = mmr_hash64(item_id),
 *   modality m present when the store's width equals the tower's d_m;
 *   user bucket = mmr_tower_id_bucket(user_id, n_user_ids);
 *   history = mmr_user_history up to now_ms (features/: the rule the trainer's example
 *   builder uses too: impressions left out), up to hist_len.
 * Head features: popularity = mmr_fstore_popularity_at(now_ms) (the head takes log1p),
 *   recency = log1p(max(0, now_ms - created_ms) / 3.6e6) (0 when the item has no catalog
 *   record).
 *
 * Threads: a built model is immutable; every function taking a const model may run
 * concurrently (scratch is per call). The store is borrowed and must outlive the model. */
#ifndef MMR_MODEL_H
#define MMR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_ann.h"
#include "mmr_err.h"
#include "mmr_fstore.h"
#include "mmr_trainer.h"

typedef struct mmr_model mmr_model_t;

/* --- ids → tower inputs (shared with the trainer) -------------------------------------- */

/* mmr_tower_id_bucket of user_id over c->n_user_ids. */
int32_t mmr_model_user_bucket(const mmr_tower_config_t *c, const char *user_id);
/* Fills out from a catalog item (arrays borrowed from item, valid while it is): key, the
 * modalities whose width matches c, and the item-id bucket. */
void mmr_model_item_input(const mmr_tower_config_t *c, const mmr_item_t *item,
                          mmr_tower_item_in_t *out);
/* --- lifetime ------------------------------------------------------------------------ */

/* Builds the index of tower over the catalog of fs (one consistent snapshot). tower is
 * taken (freed by mmr_model_free, also on failure); fs and be (NULL = CPU) are borrowed
 * and must outlive the model. Errors: as mmr_fstore_iter_items and
 * mmr_tower_encode_items, MMR_ERR_NOMEM. */
mmr_status_t mmr_model_new(mmr_tower_t *tower, mmr_fstore_t *fs, mmr_tower_backend_t *be,
                           mmr_model_t **out, mmr_err_t *err);
void mmr_model_free(mmr_model_t *m); /* NULL is a no-op */

/* Retrieval: exact below ann_min_items or above MMR_ANN_MAX_D, approximate (mmr_ann.h)
 * from there on, unless the calibrated index would scan more than ann_max_scan of the items
 * per query: its lists then do not fit the vectors (catalogs without cluster structure),
 * and exact, a few times slower there, loses nothing. ON and OFF force the choice (tests,
 * replay). */
typedef enum { MMR_MODEL_ANN_AUTO = 0, MMR_MODEL_ANN_OFF, MMR_MODEL_ANN_ON } mmr_model_ann_mode_t;
typedef struct mmr_model_opts {
    mmr_model_ann_mode_t ann;
    size_t ann_min_items;
    float ann_max_scan;
    mmr_ann_opts_t ann_opts;
} mmr_model_opts_t;

/* AUTO, 20000 items, 0.5, mmr_ann_opts_default(). */
mmr_model_opts_t mmr_model_opts_default(void);
/* mmr_model_new with opts (NULL = defaults; copied). Extra errors: those of mmr_ann_new. */
mmr_status_t mmr_model_new_opts(mmr_tower_t *tower, mmr_fstore_t *fs, mmr_tower_backend_t *be,
                                const mmr_model_opts_t *opts, mmr_model_t **out, mmr_err_t *err);
/* The approximate index mmr_model_retrieve uses, or NULL when it answers exactly.
 * Borrowed, valid while m lives. */
const mmr_ann_t *mmr_model_ann(const mmr_model_t *m);

/* Borrowed, valid while m lives. */
const mmr_tower_t *mmr_model_tower(const mmr_model_t *m);
size_t mmr_model_item_count(const mmr_model_t *m);
/* Row r < mmr_model_item_count: its id and item vector (D). Borrowed. */
const char *mmr_model_item_id(const mmr_model_t *m, size_t r);
const float *mmr_model_item_vec(const mmr_model_t *m, size_t r);
/* Row of item_id, or -1 when the index does not hold it. */
int64_t mmr_model_find(const mmr_model_t *m, const char *item_id);

/* --- serving --------------------------------------------------------------------------- */

/* The user vector vec (D) of user_id whose record is u (NULL: unknown user → no history).
 * History items missing from the index are read from the store and encoded (no catalog
 * record: no content, id bucket only). Errors: MMR_ERR_STORE, MMR_ERR_CORRUPT,
 * MMR_ERR_NOMEM, errors of the tower encode calls. */
mmr_status_t mmr_model_encode_user(const mmr_model_t *m, const char *user_id,
                                   const mmr_user_t *u, int64_t now_ms, float *vec,
                                   mmr_err_t *err);

/* What happened to each candidate of mmr_model_score. */
enum { MMR_MODEL_SCORED = 0, MMR_MODEL_UNKNOWN, MMR_MODEL_DELETED };

/* Scores n candidates for the user vector user_vec (D) with the tower's ranking head:
 * score (n) = P(engage), gate (n, 3) modality weights (may be NULL), status (n) one of
 * MMR_MODEL_* (score and gate of a non-SCORED candidate are 0). A candidate is known when
 * the catalog has it (not in the index: encoded now) or it has stats (no content); unknown
 * otherwise; a deleted catalog item is never scored. Errors: as encode_user. */
mmr_status_t mmr_model_score(const mmr_model_t *m, const float *user_vec, size_t n,
                             const char *const *item_ids, int64_t now_ms, float *score,
                             float *gate, uint8_t *status, mmr_err_t *err);

/* Top-k of the index by dot product with user_vec (D), best first, ties by row: rows (k)
 * and dots (k); *n_out = min(k, items not excluded). exclude_rows (n_exclude, sorted
 * ascending, may hold duplicates) are skipped. Approximate when mmr_model_ann(m) is set
 * (recall in its mmr_ann_get_info), exact otherwise. Never fails; k = 0 gives nothing. */
void mmr_model_retrieve(const mmr_model_t *m, const float *user_vec, size_t k,
                        const int64_t *exclude_rows, size_t n_exclude, int64_t *rows,
                        float *dots, size_t *n_out);
/* The same, always exact (an O(N D) scan). */
void mmr_model_retrieve_exact(const mmr_model_t *m, const float *user_vec, size_t k,
                              const int64_t *exclude_rows, size_t n_exclude, int64_t *rows,
                              float *dots, size_t *n_out);

#endif
