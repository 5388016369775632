/* tower_test.h — shared by the tower tests: CHECK_OK, a seeded generator, random
 * batches (absent modality rows hold NaN so reading them shows), and a double-precision
 * reference of the math in embedding/tower_cpu.c. */
#ifndef MMR_TOWER_TEST_H
#define MMR_TOWER_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "mmr_tower.h"

/* call must fill a variable `mmr_err_t err` in scope. */
#define CHECK_OK(call)                                                                     \
    do {                                                                                   \
        mmr_status_t s_ = (call);                                                          \
        CHECK_MSG(s_ == MMR_OK, "%s: %s", mmr_status_str(s_), err.msg);                        \
    } while (0)

/* --- generator ------------------------------------------------------------------------ */
typedef struct test_rng { uint64_t s; } test_rng_t;
uint64_t test_rng_u64(test_rng_t *r);
double test_rng_uniform(test_rng_t *r); /* [0, 1) */
float test_rng_sym(test_rng_t *r);      /* [-1, 1) */

/* Adds uniform noise of the given scale to every parameter of t, so zero-initialised groups
 * (biases, id tables, w_type, lambda, head) take part in a test. */
void test_params_noise(mmr_tower_t *t, float scale, test_rng_t *r);

/* --- random batches ------------------------------------------------------------------- */
typedef struct test_batch {
    mmr_tower_batch_t b;        /* views of the arrays below */
    float *x[MMR_TOWER_N_MOD];  /* (B, d_m); absent rows are NaN; NULL if nobody has m */
    uint8_t *present;           /* (B, 3) */
    int32_t *item_id;           /* (B) */
    float *hist;                /* (B, L, D) unit vectors, NaN past hist_len */
    int32_t *hist_type;         /* (B, L) */
    float *hist_age;            /* (B, L) */
    int32_t *hist_len, *user_id; /* (B) */
    float *pop, *rec, *label;   /* (B) */
} test_batch_t;

/* Item 0 has every modality and a warm id, item 1 none (unless present_p >= 1: then all
 * items have all) and is cold, the rest are random (each modality with p = present_p).
 * User 0 has a full history, user 1 none and no id. */
void test_batch_random(test_batch_t *tb, const mmr_tower_config_t *c, int B, double present_p,
                       test_rng_t *r);
void test_batch_free(test_batch_t *tb);

/* --- double reference ----------------------------------------------------------------- */

/* Evaluates the towers, head and loss in double with weights P (mmr_tower_param_count
 * doubles in the layout of t). Any output pointer may be NULL: y (B, D), gate (B, 3),
 * u (B, D), prob (B). *relu_sig (may be NULL) gets a hash of every relu's sign, so a finite
 * difference that crosses a kink can be recognised. Returns the mean BCE loss. */
double test_ref_eval(const mmr_tower_t *t, const double *P, const mmr_tower_batch_t *b,
                     double *y, double *gate, double *u, double *prob, uint64_t *relu_sig);

/* The weights of t as doubles (owned by the caller). */
double *test_params_double(mmr_tower_t *t);

#endif
