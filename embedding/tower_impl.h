/* tower_impl.h — private to embedding/: the body of mmr_tower_t, the parameter layout and
 * the backend interface (a struct of function pointers that each backend fills).
 * Included by tower.c, tower_cpu.c, tower_file.c and tower_cuda.cu; never by users. */
#ifndef MMR_TOWER_IMPL_H
#define MMR_TOWER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_tower.h"

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
/* A tower with the layout of cfg (already checked) and zeroed weights, no training state. */
mmr_status_t tower_alloc(const mmr_tower_config_t *cfg, mmr_tower_t **out, mmr_err_t *err);
/* Gives t a fresh generation number (after its weights changed). */
void tower_touch(mmr_tower_t *t);

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

#ifdef __cplusplus
}
#endif

#endif
