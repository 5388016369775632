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
 * training its own copy. Checkpoints hold the weights, the optimizer state, the counters,
 * the item-vector cache and an opaque caller blob (Kafka offsets), so a restarted trainer
 * fed the same examples continues bit for bit (same config, batch size and cache size).
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
    int hist_len;                     /* >= 0; only the first L (config hist_len) are used */
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

/* Creates a trainer with fresh weights (conf->seed). be is borrowed (NULL = CPU) and used
 * for training and for encoding history items; it must outlive the trainer.
 * Errors: MMR_ERR_INVALID (tower config, optimizer, batch_size > 65536, item_cache_max >
 * 2^24), MMR_ERR_UNSUPPORTED (the backend cannot train), MMR_ERR_NOMEM.
 * *out owned: mmr_trainer_free. */
mmr_status_t mmr_trainer_new(const mmr_trainer_conf_t *conf, mmr_tower_backend_t *be,
                             mmr_trainer_t **out, mmr_err_t *err);
void mmr_trainer_free(mmr_trainer_t *tr); /* NULL is a no-op */

/* Copies ex into the pending batch; runs a train step when the batch is full. Checked:
 * finite features, id buckets in [-1, n), event types in [0, T), ages finite >= 0,
 * hist_len >= 0, popularity finite >= 0, recency finite, label in [0, 1]. A history item's
 * features are read (and checked) only on a cache miss.
 * Errors: MMR_ERR_INVALID (the example is skipped, the trainer stays usable), MMR_ERR_NOMEM,
 * errors of the encoder and of mmr_tower_train_step (the example was added; a failed step
 * drops the pending batch). */
mmr_status_t mmr_trainer_add(mmr_trainer_t *tr, const mmr_example_t *ex, mmr_err_t *err);
/* Trains on the pending examples now (a short batch); no-op when none are pending.
 * Errors: of mmr_tower_train_step (the pending batch is dropped). */
mmr_status_t mmr_trainer_flush(mmr_trainer_t *tr, mmr_err_t *err);
/* Flush, then empty the item-vector cache: history items are encoded with the current
 * weights from now on. A snapshot does this; a caller that trains without taking snapshots
 * (replay) calls it as often as mmrecd would publish, or users keep being trained against
 * the history vectors of weights long gone. Errors: as flush. */
mmr_status_t mmr_trainer_refresh(mmr_trainer_t *tr, mmr_err_t *err);
/* Refresh, then a copy of the current weights (owned by the caller).
 * Errors: as refresh, MMR_ERR_NOMEM. */
mmr_status_t mmr_trainer_snapshot(mmr_trainer_t *tr, mmr_tower_t **out, mmr_err_t *err);
/* The trainer's own tower (borrowed; changes on every step). */
const mmr_tower_t *mmr_trainer_tower(const mmr_trainer_t *tr);
void mmr_trainer_get_stats(const mmr_trainer_t *tr, mmr_trainer_stats_t *out);

/* Checkpoint: flush, then write weights + optimizer state + stats + item-vector cache + blob
 * (blob_len bytes, e.g. Kafka offsets; borrowed) atomically (temp file, fsync, rename, fsync
 * of the folder) with CRC32C; the layout is in trainer.c. Errors: MMR_ERR_INVALID (NULLs),
 * MMR_ERR_IO, errors of flush. */
mmr_status_t mmr_trainer_checkpoint_save(mmr_trainer_t *tr, const char *path, const void *blob,
                                         size_t blob_len, mmr_err_t *err);
/* Restores a trainer from a checkpoint written with the same tower config; conf gives the
 * optimizer and batch settings (conf->seed is unused). *blob (malloc'ed, owned by the
 * caller, NULL when *blob_len is 0) gets the caller blob; blob and blob_len may be NULL to
 * ignore it. Errors: MMR_ERR_INVALID / MMR_ERR_UNSUPPORTED (as mmr_trainer_new), MMR_ERR_IO,
 * MMR_ERR_CORRUPT (bad magic, version, checksum, size, truncation, or a config that differs
 * from conf->tower; the message says which), MMR_ERR_NOMEM. */
mmr_status_t mmr_trainer_checkpoint_load(const mmr_trainer_conf_t *conf, const char *path,
                                         mmr_tower_backend_t *be, mmr_trainer_t **out,
                                         void **blob, size_t *blob_len, mmr_err_t *err);

/* --- encode helpers (serving, replay, the trainer itself) ---------------------------- */

/* Item vectors for n items: vec (n, D) unit-norm; gate (n, 3) modality weights or NULL.
 * Gathers the inputs into batches of up to 256 and calls mmr_tower_item_forward on each (a
 * BLAS may round a row in the last bit differently than one call on all n would).
 * Thread-safe like item_forward.
 * Errors: as mmr_tower_item_forward, MMR_ERR_INVALID (NULL items/vec with n > 0). */
mmr_status_t mmr_tower_encode_items(const mmr_tower_t *t, mmr_tower_backend_t *be, size_t n,
                                    const mmr_tower_item_in_t *items, float *vec, float *gate,
                                    mmr_err_t *err);
/* One user's vector (D) from hist_len history item vectors hist (hist_len, D), most recent
 * first, their types and ages in hours; only the first L (config hist_len) are used.
 * Errors: as mmr_tower_user_forward. */
mmr_status_t mmr_tower_encode_user(const mmr_tower_t *t, mmr_tower_backend_t *be, int hist_len,
                                   const float *hist, const int32_t *hist_type,
                                   const float *hist_age, int32_t user_bucket, float *vec,
                                   mmr_err_t *err);

#ifdef __cplusplus
}
#endif

#endif
