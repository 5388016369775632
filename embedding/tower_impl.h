/* tower_impl.h — private to embedding/: the body of mmr_tower_t, the parameter layout, the
 * backend interface (a struct of function pointers that each backend fills), the item
 * gatherer shared by the encode helpers and the trainer, and the file helpers shared by
 * model files and trainer checkpoints. Included by the .c/.cu files of embedding/ only. */
#ifndef MMR_TOWER_IMPL_H
#define MMR_TOWER_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mmr_tower.h"
#include "mmr_trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Parameter groups, in storage order. Dense groups come first and own a dense gradient;
 * the two id tables come last and get row-wise (sparse) gradients. The three groups of a
 * modality are adjacent so PG_ITEM_W(m) etc. index them. */
enum {
    PG_ITEM_W_TEXT = 0, /* (H, d_text) */
    PG_ITEM_B_TEXT,     /* (H) */
    PG_ITEM_E_TEXT,     /* (H) missing-text vector */
    PG_ITEM_W_IMAGE, PG_ITEM_B_IMAGE, PG_ITEM_E_IMAGE,
    PG_ITEM_W_VIDEO, PG_ITEM_B_VIDEO, PG_ITEM_E_VIDEO,
    PG_ITEM_G,          /* (3, 3H) gate */
    PG_ITEM_C,          /* (3) */
    PG_ITEM_W1,         /* (H, H) */
    PG_ITEM_B1,         /* (H) */
    PG_ITEM_W2,         /* (D, H) */
    PG_ITEM_B2,         /* (D) */
    PG_USER_WQ,         /* (D, D) query from the user-id embedding */
    PG_USER_BQ,         /* (D) */
    PG_USER_WTYPE,      /* (T) event-type bonus */
    PG_USER_LAMBDA,     /* (1) time decay */
    PG_USER_W1,         /* (H, 2D) */
    PG_USER_B1,         /* (H) */
    PG_USER_W2,         /* (D, H) */
    PG_USER_B2,         /* (D) */
    PG_HEAD_W,          /* (4) */
    PG_DENSE_COUNT,
    PG_ITEM_EMB = PG_DENSE_COUNT, /* (n_item_ids, D) */
    PG_USER_EMB,                  /* (n_user_ids, D) */
    PG_COUNT
};
#define PG_ITEM_W(m) (PG_ITEM_W_TEXT + 3 * (m))
#define PG_ITEM_B(m) (PG_ITEM_B_TEXT + 3 * (m))
#define PG_ITEM_E(m) (PG_ITEM_E_TEXT + 3 * (m))

/* Gradient of one id table for the current batch: the rows touched, each once. */
typedef struct tower_sparse_grad {
    int n, cap;       /* rows used / allocated */
    int32_t *rows;    /* (cap) table row of each entry */
    float *vals;      /* (cap, D) gradient of that row */
    int32_t *slot;    /* (n_ids) entry index of a row, or -1 */
} tower_sparse_grad_t;

struct mmr_tower {
    mmr_tower_config_t cfg;
    size_t off[PG_COUNT + 1]; /* group g is params[off[g], off[g+1]) */
    int rows[PG_COUNT], cols[PG_COUNT];
    size_t n_params;          /* off[PG_COUNT] */
    size_t n_dense;           /* off[PG_DENSE_COUNT] */
    float *params;            /* (n_params) */
    /* Training state, allocated on first use (a served copy never has it). */
    float *grads;             /* (n_dense) */
    tower_sparse_grad_t sgrad[2]; /* [0] item ids, [1] user ids */
    float *acc;               /* (n_dense) Adagrad accumulators */
    float *acc_rows[2];       /* (n_item_ids), (n_user_ids) row-wise Adagrad */
    uint64_t gen;             /* new value whenever params change; unique across towers */
};

static inline float *tower_param(const mmr_tower_t *t, int g) { return t->params + t->off[g]; }
static inline float *tower_grad(const mmr_tower_t *t, int g) { return t->grads + t->off[g]; }
static inline int tower_width(const mmr_tower_config_t *c, int m) {
    return m == MMR_TOWER_TEXT ? c->d_text : m == MMR_TOWER_IMAGE ? c->d_image : c->d_video;
}

/* Checks dims against the limits of mmr_tower_new; the message names the bad field. */
mmr_status_t tower_config_check(const mmr_tower_config_t *cfg, mmr_status_t code, mmr_err_t *err);
/* Floats a tower of config cfg (already checked) holds. */
size_t tower_config_param_count(const mmr_tower_config_t *cfg);
/* A tower with the layout of cfg (already checked), no training state; its weights are
 * zeroed when zero, else left for the caller to fill. */
mmr_status_t tower_alloc(const mmr_tower_config_t *cfg, int zero, mmr_tower_t **out, mmr_err_t *err);
/* 1 when a and b describe the same layout (every field equal). */
int tower_config_equal(const mmr_tower_config_t *a, const mmr_tower_config_t *b);
/* Gives t a fresh generation number (after its weights changed). */
void tower_touch(mmr_tower_t *t);
/* Checks optimizer settings as mmr_tower_update does. Errors: MMR_ERR_INVALID. */
mmr_status_t tower_optim_check(const mmr_tower_optim_t *o, mmr_err_t *err);
/* Allocates the Adagrad accumulators (acc, acc_rows), every entry = init, unless t has
 * them already. Errors: MMR_ERR_NOMEM. */
mmr_status_t tower_adagrad_alloc(mmr_tower_t *t, float init, mmr_err_t *err);

/* Gradient row of id `row` in table tab (0 items, 1 users): zero on first touch in this
 * batch. Needs the training state (tower_grads_zero called). Never NULL. */
float *tower_sparse_grad_row(mmr_tower_t *t, int tab, int32_t row);

/* The backend interface. Inputs reach a backend already validated by tower.c. A NULL
 * entry means "not implemented by this backend" (MMR_ERR_UNSUPPORTED). */
struct mmr_tower_backend {
    char name[128];
    void *ctx;
    /* vec (B, D), gate (B, 3) or NULL */
    mmr_status_t (*item_forward)(mmr_tower_backend_t *be, const mmr_tower_t *t,
                                 const mmr_tower_item_batch_t *b, float *vec, float *gate,
                                 mmr_err_t *err);
    /* vec (B, D) */
    mmr_status_t (*user_forward)(mmr_tower_backend_t *be, const mmr_tower_t *t,
                                 const mmr_tower_user_batch_t *b, float *vec, mmr_err_t *err);
    /* Gradients were zeroed by the caller; accumulates them and sets *loss. */
    mmr_status_t (*forward_backward)(mmr_tower_backend_t *be, mmr_tower_t *t,
                                     const mmr_tower_batch_t *b, float *loss, mmr_err_t *err);
    void (*free)(mmr_tower_backend_t *be); /* NULL for static backends */
};

/* --- gathering items into a batch (tower_encode.c) ----------------------------------- */

#define TOWER_ENCODE_CHUNK 256 /* items per mmr_tower_item_forward call of the encoders */

/* Room for up to cap items as one mmr_tower_item_batch_t. Rows of absent modalities keep
 * whatever they held (never read). */
typedef struct tower_gather {
    int cap;
    float *x[MMR_TOWER_N_MOD]; /* x[m] is (cap, d_m) */
    uint8_t *present;          /* (cap, 3) */
    int32_t *item_id;          /* (cap) */
} tower_gather_t;

/* Errors: MMR_ERR_NOMEM (g is then empty; tower_gather_free is still fine). */
mmr_status_t tower_gather_init(tower_gather_t *g, const mmr_tower_config_t *c, int cap,
                               mmr_err_t *err);
void tower_gather_free(tower_gather_t *g);
/* Copies item `in` (widths implicit in c) into row `row` < cap. No checks. */
void tower_gather_item(tower_gather_t *g, const mmr_tower_config_t *c, int row,
                       const mmr_tower_item_in_t *in);
/* A view of rows [0, n) (borrowed from g). */
mmr_tower_item_batch_t tower_gather_batch(const tower_gather_t *g, int n);
/* mmr_tower_encode_items with g as scratch: chunks of g->cap items. */
mmr_status_t tower_encode_items_with(const mmr_tower_t *t, mmr_tower_backend_t *be,
                                     tower_gather_t *g, size_t n, const mmr_tower_item_in_t *items,
                                     float *vec, float *gate, mmr_err_t *err);

/* --- files (tower_file.c): model files and trainer checkpoints ------------------------ */

#define TOWER_FILE_HEADER_SIZE 72 /* bytes of a model file's header */

/* Files are little-endian; these read and write unaligned fields. */
#ifndef __cplusplus
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "model files assume little-endian");
#endif
static inline void tower_put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void tower_put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint32_t tower_get_u32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t tower_get_u64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* One piece of a file to write: n bytes at p. */
typedef struct tower_iov {
    const void *p;
    size_t n;
} tower_iov_t;

/* Writes the n pieces to path atomically: a temp file next to it, fsync, rename, fsync of
 * the folder. On failure path is untouched and the temp file removed. Errors: MMR_ERR_IO,
 * MMR_ERR_INVALID (path too long). */
mmr_status_t tower_file_write_atomic(const char *path, const tower_iov_t *iov, int n,
                                     mmr_err_t *err);

/* Sequential reader: every byte read extends crc (set crc = 0 to start a new checksum). */
typedef struct tower_reader {
    int fd;
    const char *path; /* borrowed, for messages */
    uint64_t size;    /* of the file when opened */
    uint64_t pos;
    uint32_t crc;
} tower_reader_t;

/* Errors: MMR_ERR_IO. On success close with tower_reader_close. */
mmr_status_t tower_reader_open(tower_reader_t *r, const char *path, mmr_err_t *err);
/* Reads exactly n bytes. Errors: MMR_ERR_IO, MMR_ERR_CORRUPT (file ends first). */
mmr_status_t tower_reader_read(tower_reader_t *r, void *dst, size_t n, mmr_err_t *err);
void tower_reader_close(tower_reader_t *r);

/* The model-file header of t (its payload CRC computed over the weights). */
void tower_file_model_header(const mmr_tower_t *t, unsigned char h[TOWER_FILE_HEADER_SIZE]);
/* Checks a model-file header read from path: magic, header CRC, version, dims, parameter
 * count. Fills *cfg and *payload_crc. Errors: MMR_ERR_CORRUPT (message names path). */
mmr_status_t tower_file_model_parse(const char *path, const unsigned char *h,
                                    mmr_tower_config_t *cfg, uint32_t *payload_crc,
                                    mmr_err_t *err);
/* After a parsed header: checks that the file is exactly want_size bytes, then reads the
 * weights of cfg into a new tower (*out, owned) and checks them against weights_crc.
 * Errors: MMR_ERR_CORRUPT (size, checksum; the message names the file), MMR_ERR_IO,
 * MMR_ERR_NOMEM. */
mmr_status_t tower_file_read_weights(tower_reader_t *r, const mmr_tower_config_t *cfg,
                                     uint64_t want_size, uint32_t weights_crc,
                                     mmr_tower_t **out, mmr_err_t *err);

/* Loads a model file into a new tower (*out, owned). allow_delta = 0 refuses a delta file
 * (MMR_ERR_CORRUPT) and is when *payload_crc (may be NULL) gets the full file's payload
 * CRC from its header; a delta leaves it untouched. Errors: those of mmr_tower_load. */
mmr_status_t tower_file_load(const char *path, int allow_delta, mmr_tower_t **out,
                             uint32_t *payload_crc, mmr_err_t *err);

#define TOWER_DELTA_MAGIC "MMRTDLT1"
/* Reads the rest of a delta file (tower_delta.c) whose first 8 bytes, magic8, r has read:
 * loads its base from the same folder and applies the blocks. Errors: those of
 * mmr_tower_load; the base's, prefixed with the delta's path. */
mmr_status_t tower_delta_load(tower_reader_t *r, const unsigned char *magic8, mmr_tower_t **out,
                              mmr_err_t *err);

#ifdef __cplusplus
}
#endif

#endif
