/* mmr_trainer.h — the online trainer loop over an abstract example source, and the
 * encode helpers that serving and replay share with it.
 *
 * Examples come from whoever builds them (streaming/'s joiner in mmrecd, the replay tool):
 * the trainer copies each one into a pending mini-batch and runs one tower train step
 * (mmr_tower_train_step) whenever batch_size examples are pending. History items are
 * inputs without gradient: their vectors come from an item-vector cache keyed by
 * mmr_tower_item_in_t.key, filled with the current weights on a miss and emptied on each
 * snapshot, so a history item is encoded once per published version, not once per use.
 *
 * A snapshot is a copy of the weights (mmr_tower_clone) to publish; the trainer keeps
 * training its own copy. Checkpoints hold the weights, the optimizer state, the counters
 * and an opaque caller blob (Kafka offsets), so a restarted trainer continues exactly.
 *
 * Threads: a trainer is single-threaded (one owner thread); snapshots it returns are
 * independent towers that any thread may read. Not in here: joining labels, feature-store
 * reads, Kafka. */
#ifndef MMR_TRAINER_H
#define MMR_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_tower.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One item as the towers see it. All pointers borrowed for the call they are passed to. */
typedef struct mmr_tower_item_in {
    uint64_t key;                     /* stable per item id (e.g. a 64-bit hash); cache key */
    const float *x[MMR_TOWER_N_MOD];  /* x[m] has d_m floats, NULL = modality absent */
    int32_t id_bucket;                /* mmr_tower_id_bucket of a warm item, or -1 (cold) */
} mmr_tower_item_in_t;

/* One labelled example: user (history + id) × item. Borrowed for mmr_trainer_add. */
typedef struct mmr_example {
    mmr_tower_item_in_t item;
    int hist_len;                     /* [0, hist_len of the config]; extra entries ignored */
    const mmr_tower_item_in_t *hist;  /* [hist_len], most recent first */
    const int32_t *hist_type;         /* [hist_len], event type in [0, n_event_types) */
    const float *hist_age;            /* [hist_len], hours before the example, >= 0 */
    int32_t user_bucket;              /* mmr_tower_id_bucket of the user, or -1 */
    float popularity;                 /* >= 0, the head sees log1p */
    float recency;                    /* log1p(item age in hours) */
    float label;                      /* 1 engaged, 0 not */
} mmr_example_t;

typedef struct mmr_trainer_conf {
    mmr_tower_config_t tower;
    mmr_tower_optim_t optim;
    int batch_size;          /* examples per train step; 0 = 256 */
    uint64_t seed;           /* initial weights */
    size_t item_cache_max;   /* history item vectors cached; 0 = 65536 */
} mmr_trainer_conf_t;

typedef struct mmr_trainer mmr_trainer_t;

typedef struct mmr_trainer_stats {
    uint64_t examples;       /* added */
    uint64_t positives;      /* added with label >= 0.5 */
    uint64_t steps;          /* train steps run */
    float last_loss;         /* mean BCE of the last step, before its update */
    float loss_ewma;         /* exponential average of step losses (alpha 0.05) */
} mmr_trainer_stats_t;

/* Creates a trainer with fresh weights (conf->seed). be is borrowed (NULL = CPU).
 * Errors: MMR_ERR_INVALID, MMR_ERR_NOMEM. *out owned: mmr_trainer_free. */
mmr_status_t mmr_trainer_new(const mmr_trainer_conf_t *conf, mmr_tower_backend_t *be,
                             mmr_trainer_t **out, mmr_err_t *err);
void mmr_trainer_free(mmr_trainer_t *tr); /* NULL is a no-op */

/* Copies ex into the pending batch; runs a train step when the batch is full.
 * Errors: MMR_ERR_INVALID (bad widths/ids/non-finite input: the example is skipped, the
 * trainer stays usable), MMR_ERR_NOMEM, errors of mmr_tower_train_step. */
mmr_status_t mmr_trainer_add(mmr_trainer_t *tr, const mmr_example_t *ex, mmr_err_t *err);
/* Trains on the pending examples now (a short batch); no-op when none are pending. */
mmr_status_t mmr_trainer_flush(mmr_trainer_t *tr, mmr_err_t *err);
/* Flush, then a copy of the current weights (owned by the caller), and the item-vector
 * cache is emptied. Errors: as flush, MMR_ERR_NOMEM. */
mmr_status_t mmr_trainer_snapshot(mmr_trainer_t *tr, mmr_tower_t **out, mmr_err_t *err);
/* The trainer's own tower (borrowed; changes on every step). */
const mmr_tower_t *mmr_trainer_tower(const mmr_trainer_t *tr);
void mmr_trainer_get_stats(const mmr_trainer_t *tr, mmr_trainer_stats_t *out);

/* Checkpoint: flush, then write weights + optimizer state + stats + blob (blob_len bytes,
 * e.g. Kafka offsets) atomically (temp file, fsync, rename) with CRC32C. Errors: MMR_ERR_IO. */
mmr_status_t mmr_trainer_checkpoint_save(mmr_trainer_t *tr, const char *path, const void *blob,
                                         size_t blob_len, mmr_err_t *err);
/* Restores a trainer from a checkpoint written with the same tower config; conf gives the
 * optimizer and batch settings. *blob (malloc'ed, owned by the caller, may be NULL when
 * blob_len is 0) gets the caller blob. Errors: MMR_ERR_IO, MMR_ERR_CORRUPT (bad magic,
 * checksum, size, or a config that differs from conf->tower), MMR_ERR_NOMEM. */
mmr_status_t mmr_trainer_checkpoint_load(const mmr_trainer_conf_t *conf, const char *path,
                                         mmr_tower_backend_t *be, mmr_trainer_t **out,
                                         void **blob, size_t *blob_len, mmr_err_t *err);

/* --- encode helpers (serving, replay, the trainer itself) ---------------------------- */

/* Item vectors for n items: vec (n, D) unit-norm; gate (n, 3) modality weights or NULL.
 * Gathers the inputs into batches of up to 256 and calls mmr_tower_item_forward.
 * Errors: as mmr_tower_item_forward. */
mmr_status_t mmr_tower_encode_items(const mmr_tower_t *t, mmr_tower_backend_t *be, size_t n,
                                    const mmr_tower_item_in_t *items, float *vec, float *gate,
                                    mmr_err_t *err);
/* One user's vector (D) from up to hist_len history item vectors hist (hist_len, D), most
 * recent first, their types and ages in hours. Errors: as mmr_tower_user_forward. */
mmr_status_t mmr_tower_encode_user(const mmr_tower_t *t, mmr_tower_backend_t *be, int hist_len,
                                   const float *hist, const int32_t *hist_type,
                                   const float *hist_age, int32_t user_bucket, float *vec,
                                   mmr_err_t *err);

#ifdef __cplusplus
}
#endif

#endif
