/* mmr_tower.h — the multimodal towers: item tower, user tower, ranking head, their
 * gradients, optimizers and model files. The math is specified in tower_cpu.c.
 *
 * A tower (mmr_tower_t) owns one model's weights, its gradient buffers and its optimizer
 * state. Computation runs on a backend (mmr_tower_backend_t): the CPU reference
 * (plain C + OpenBLAS) or CUDA; NULL everywhere a backend is taken means the CPU one.
 *
 * Threads: the forward calls take a const tower and may run concurrently on the CPU
 * backend (scratch memory is per call). Anything that writes the tower (forward_backward,
 * update, train_step, params writes) needs exclusive access; serving should use a
 * published copy (mmr_tower_clone or a loaded model file). A CUDA backend serialises
 * nothing itself: use one per thread or hold a lock around it.
 *
 * Ids: the caller hashes item and user ids into buckets [0, n_item_ids) / [0, n_user_ids)
 * (mmr_tower_id_bucket does it with CRC32C); -1 means "no id embedding" (a cold item, an
 * unknown user). Not in here: feature-store access, the trainer loop, top-K retrieval. */
#ifndef MMR_TOWER_H
#define MMR_TOWER_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mmr_tower mmr_tower_t;
typedef struct mmr_tower_backend mmr_tower_backend_t;

/* Modalities of an item; index of x[] and of each row of present / gate. */
enum { MMR_TOWER_TEXT = 0, MMR_TOWER_IMAGE, MMR_TOWER_VIDEO, MMR_TOWER_N_MOD };

typedef struct mmr_tower_config {
    int d_text, d_image, d_video; /* modality embedding widths (384, 512, 512) */
    int d_hidden;                 /* per-modality projection and MLP width H (128) */
    int d_out;                    /* item and user vector width D (64) */
    int n_item_ids;               /* item-id embedding buckets (1 << 18) */
    int n_user_ids;               /* user-id embedding buckets (1 << 18) */
    int hist_len;                 /* L, user history slots (32) */
    int n_event_types;            /* T, event types in the history (9) */
} mmr_tower_config_t;

/* The defaults above. */
mmr_tower_config_t mmr_tower_config_default(void);

/* B items. Row b of x[m] is read only when present[b*3+m] is 1; x[m] may be NULL when no
 * item of the batch has modality m. All pointers are borrowed for the call. */
typedef struct mmr_tower_item_batch {
    int n;                          /* B */
    const float *x[MMR_TOWER_N_MOD]; /* x[MMR_TOWER_TEXT] is (B, d_text), ... */
    const uint8_t *present;         /* (B, 3), 0 or 1 */
    const int32_t *item_id;         /* (B), bucket of a warm item or -1 (cold: content only) */
} mmr_tower_item_batch_t;

/* B users, each with up to L recent interactions, most recent first. hist holds item
 * vectors as returned by mmr_tower_item_forward; entries j >= hist_len[b] are not read. */
typedef struct mmr_tower_user_batch {
    int n;                   /* B */
    const float *hist;       /* (B, L, D) item vectors */
    const int32_t *hist_type; /* (B, L) event type in [0, T) */
    const float *hist_age;   /* (B, L) age of the event, >= 0, caller's unit (e.g. hours) */
    const int32_t *hist_len; /* (B) valid entries, in [0, L] */
    const int32_t *user_id;  /* (B) bucket or -1 (no user-id embedding) */
} mmr_tower_user_batch_t;

/* B training examples: example b pairs user b with item b. */
typedef struct mmr_tower_batch {
    mmr_tower_item_batch_t item; /* item.n == user.n == B */
    mmr_tower_user_batch_t user;
    const float *popularity;     /* (B) count-like, >= 0; the head sees log1p(popularity) */
    const float *recency;        /* (B) caller-defined recency feature (e.g. log1p(item age h)) */
    const float *label;          /* (B) in [0, 1]; 1 = engaged */
} mmr_tower_batch_t;

typedef enum { MMR_TOWER_OPT_SGD = 0, MMR_TOWER_OPT_ADAGRAD } mmr_tower_opt_kind_t;

/* Dense groups use lr; id-embedding rows use lr_sparse. Adagrad is per coordinate for dense
 * groups and row-wise (one accumulator per row, fed the row's mean squared gradient) for
 * the id tables; accumulators start at adagrad_init. */
typedef struct mmr_tower_optim {
    mmr_tower_opt_kind_t kind;
    float lr;           /* e.g. 0.05 (Adagrad), 0.01 (SGD) */
    float lr_sparse;    /* e.g. 0.05 */
    float adagrad_init; /* e.g. 0.1 */
    float adagrad_eps;  /* e.g. 1e-8 */
} mmr_tower_optim_t;

/* --- lifetime ------------------------------------------------------------------------ */

/* Creates a tower with weights drawn from a generator seeded by seed (uniform Glorot for
 * matrices, zero biases, small random missing-modality vectors, zero id embeddings so a
 * warm item starts where its content puts it). Errors: MMR_ERR_INVALID (dims out of
 * range), MMR_ERR_NOMEM. *out is owned by the caller: mmr_tower_free. */
mmr_status_t mmr_tower_new(const mmr_tower_config_t *cfg, uint64_t seed, mmr_tower_t **out,
                           mmr_err_t *err);
/* A copy of the weights (no gradients, no optimizer state): a model version to publish. */
mmr_status_t mmr_tower_clone(const mmr_tower_t *t, mmr_tower_t **out, mmr_err_t *err);
/* NULL is a no-op. */
void mmr_tower_free(mmr_tower_t *t);
/* Borrowed, valid while t lives. */
const mmr_tower_config_t *mmr_tower_get_config(const mmr_tower_t *t);

/* Bucket of an id byte string in [0, n_buckets): CRC32C(id) mod n_buckets (-1 when
 * n_buckets < 1). */
int32_t mmr_tower_id_bucket(const void *id, size_t len, int n_buckets);

/* --- inference ----------------------------------------------------------------------- */

/* Item vectors: vec (B, D) gets unit-norm vectors, gate (B, 3) the modality weights (may
 * be NULL). Errors: MMR_ERR_INVALID (bad ids/flags/NULLs), MMR_ERR_NOMEM, MMR_ERR_CUDA. */
mmr_status_t mmr_tower_item_forward(const mmr_tower_t *t, mmr_tower_backend_t *be,
                                    const mmr_tower_item_batch_t *batch, float *vec,
                                    float *gate, mmr_err_t *err);
/* User vectors: vec (B, D) gets unit-norm vectors. Errors as above, plus
 * MMR_ERR_UNSUPPORTED when the backend has no user tower yet. */
mmr_status_t mmr_tower_user_forward(const mmr_tower_t *t, mmr_tower_backend_t *be,
                                    const mmr_tower_user_batch_t *batch, float *vec,
                                    mmr_err_t *err);
/* Ranking head on one user's n items: prob[i] = P(engage with item i). user is (D), item
 * (n, D); popularity, recency, prob are (n). CPU only; never fails on finite input. */
void mmr_tower_head_forward(const mmr_tower_t *t, int n, const float *user, const float *item,
                            const float *popularity, const float *recency, float *prob);

/* --- training ------------------------------------------------------------------------ */

/* Zeroes the gradients, then computes the mean binary cross-entropy of the batch into
 * *loss and its gradient for every parameter. History item vectors are inputs (no
 * gradient flows into the item tower through them). Inputs must be finite.
 * Errors: MMR_ERR_INVALID, MMR_ERR_NOMEM, MMR_ERR_UNSUPPORTED (backend cannot train). */
mmr_status_t mmr_tower_forward_backward(mmr_tower_t *t, mmr_tower_backend_t *be,
                                        const mmr_tower_batch_t *batch, float *loss,
                                        mmr_err_t *err);
/* Applies the gradients of the last forward_backward (dense groups, then the id rows that
 * batch touched). Errors: MMR_ERR_INVALID (bad optim), MMR_ERR_NOMEM (Adagrad state). */
mmr_status_t mmr_tower_update(mmr_tower_t *t, const mmr_tower_optim_t *opt, mmr_err_t *err);
/* forward_backward + update: one step of the online trainer. *loss is the batch loss
 * before the update. */
mmr_status_t mmr_tower_train_step(mmr_tower_t *t, mmr_tower_backend_t *be,
                                  const mmr_tower_batch_t *batch, const mmr_tower_optim_t *opt,
                                  float *loss, mmr_err_t *err);

/* --- parameters (trainer diagnostics, tests) ----------------------------------------- */

typedef struct mmr_tower_param_info {
    const char *name; /* "item.W_text", ... static */
    size_t offset;    /* first float in mmr_tower_params() */
    int rows, cols;   /* row-major shape; vectors have rows == 1 */
    int sparse;       /* 1 for the id tables (row-wise gradients and Adagrad) */
} mmr_tower_param_info_t;

/* Number of parameter groups (the same for every config). */
int mmr_tower_param_group_count(void);
/* Describes group g in [0, count). */
void mmr_tower_param_group(const mmr_tower_t *t, int g, mmr_tower_param_info_t *out);
/* All weights, one float array of mmr_tower_param_count() entries in group order.
 * Borrowed, valid while t lives. Call mmr_tower_params_changed after writing to it. */
float *mmr_tower_params(mmr_tower_t *t);
size_t mmr_tower_param_count(const mmr_tower_t *t);
void mmr_tower_params_changed(mmr_tower_t *t);
/* Copies group g's gradient from the last forward_backward into dst (rows*cols floats;
 * rows of an id table the batch did not touch read as 0). */
void mmr_tower_grad_read(const mmr_tower_t *t, int g, float *dst);

/* --- model files --------------------------------------------------------------------- */

/* Writes the weights to path atomically (temp file, fsync, rename, fsync of the folder).
 * Format: header {"MMRTOWR1", version, dims, param count, CRC32C of the payload, CRC32C
 * of the header}, then the float32 weights, little-endian. Errors: MMR_ERR_IO. */
mmr_status_t mmr_tower_save(const mmr_tower_t *t, const char *path, mmr_err_t *err);
/* Reads a model file into a new tower (owned by the caller). Errors: MMR_ERR_IO (cannot
 * open/read), MMR_ERR_CORRUPT (bad magic, version, dims, size or checksum), MMR_ERR_NOMEM. */
mmr_status_t mmr_tower_load(const char *path, mmr_tower_t **out, mmr_err_t *err);

/* Delta model files (tower_delta.c has the layout): t stored as the blocks of its weights
 * that differ from a full model file in the same folder, its base, so that a version which
 * changed a few id rows costs kilobytes to write, not the whole model. mmr_tower_load reads
 * both kinds; a delta's base must be a full file (no chains). A block is
 * MMR_TOWER_DELTA_BLOCK consecutive floats of mmr_tower_params(); a dirty set is a bitmap
 * of mmr_tower_delta_words() uint64 words, bit k = block k. */
#define MMR_TOWER_DELTA_BLOCK 64
size_t mmr_tower_delta_words(const mmr_tower_t *t);
/* Sets in dirty the blocks where a and b differ bitwise; returns how many bits dirty holds
 * afterwards, or SIZE_MAX (dirty untouched) when a and b have different configs. */
size_t mmr_tower_delta_mark(const mmr_tower_t *a, const mmr_tower_t *b, uint64_t *dirty);
/* Writes t to path as a delta over the full model file base_path (same folder) holding the
 * blocks set in dirty, which must cover every block where t differs from the base: loading
 * checks the result against t's checksum. Atomic and durable like mmr_tower_save. Errors:
 * MMR_ERR_INVALID (base in another folder, or of other dims), MMR_ERR_IO, MMR_ERR_CORRUPT
 * (the base's header), MMR_ERR_NOMEM. */
mmr_status_t mmr_tower_save_delta(const mmr_tower_t *t, const char *path, const char *base_path,
                                  const uint64_t *dirty, mmr_err_t *err);

/* --- backends ------------------------------------------------------------------------ */

/* The CPU reference backend: a static object, never NULL; freeing it is a no-op. */
mmr_tower_backend_t *mmr_tower_backend_cpu(void);
/* A CUDA backend on GPU `device`: item tower forward so far (the rest answers
 * MMR_ERR_UNSUPPORTED). Weights are copied to the GPU on first use and again whenever the
 * tower given changes. Errors: MMR_ERR_UNSUPPORTED (built without CUDA, or no GPU visible),
 * MMR_ERR_CUDA. *out is owned: mmr_tower_backend_free. */
mmr_status_t mmr_tower_backend_cuda_new(int device, mmr_tower_backend_t **out, mmr_err_t *err);
/* NULL and the CPU backend are no-ops. */
void mmr_tower_backend_free(mmr_tower_backend_t *be);
/* "cpu (openblas)", "cpu (plain-c sgemm)", "cuda:0 (NVIDIA H100 ...)". Static/borrowed. */
const char *mmr_tower_backend_name(const mmr_tower_backend_t *be);

#ifdef __cplusplus
}
#endif

#endif
