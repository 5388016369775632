/* bench_tower.c — throughput of the towers at the default dims (not a test):
 * item-tower forward (items/s) against the time its GEMMs alone take through the same
 * sgemm, user-tower forward (users/s), train_step (examples/s), the trainer loop
 * (mmr_trainer_add, examples/s, batch 256, full histories, warm and thrashing item cache);
 * the CUDA item tower too when built with CUDA and a GPU is visible.
 * Usage: bench_tower [batch=1024] [seconds=1]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_time.h"
#include "mmr_tower.h"
#include "mmr_trainer.h"
#include "tower_sgemm.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float sym(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 4503599627370496.0 - 1.0);
}

static float *randn(size_t n) {
    float *p = malloc(n * sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) p[i] = sym();
    return p;
}

static void die(const char *what, mmr_status_t st, const mmr_err_t *err) {
    fprintf(stderr, "%s: %s: %s\n", what, mmr_status_str(st), err->msg);
    exit(1);
}

/* Calls of fn(arg) per second, over at least `seconds` after one warm-up call. */
typedef void (*bench_fn)(void *arg);
static double rate(bench_fn fn, void *arg, double seconds) {
    fn(arg);
    int64_t t0 = mmr_mono_ns(), t;
    long n = 0;
    do {
        fn(arg);
        n++;
        t = mmr_mono_ns();
    } while ((double)(t - t0) < seconds * 1e9);
    return n / ((double)(t - t0) * 1e-9);
}

typedef struct ctx {
    mmr_tower_t *t;
    mmr_tower_backend_t *be;
    mmr_tower_batch_t batch;
    mmr_tower_optim_t opt;
    const mmr_tower_config_t *c;
    float *out, *gate, *scratch_in, *scratch_out, *w[6];
} ctx_t;

static void run_item(void *arg) {
    ctx_t *x = arg;
    mmr_err_t err;
    mmr_status_t st = mmr_tower_item_forward(x->t, x->be, &x->batch.item, x->out, x->gate, &err);
    if (st != MMR_OK) die("item_forward", st, &err);
}

static void run_user(void *arg) {
    ctx_t *x = arg;
    mmr_err_t err;
    mmr_status_t st = mmr_tower_user_forward(x->t, NULL, &x->batch.user, x->out, &err);
    if (st != MMR_OK) die("user_forward", st, &err);
}

static void run_train(void *arg) {
    ctx_t *x = arg;
    mmr_err_t err;
    float loss;
    mmr_status_t st = mmr_tower_train_step(x->t, NULL, &x->batch, &x->opt, &loss, &err);
    if (st != MMR_OK) die("train_step", st, &err);
}

/* The trainer loop on a catalogue of POOL items (all modalities) and USERS users whose
 * histories hold L catalogue items: one call adds one batch (one train step). */
enum { TR_BATCH = 256, POOL = 4096, USERS = 1024 };
typedef struct trainer_ctx {
    mmr_trainer_t *tr;
    mmr_tower_item_in_t *items; /* (POOL) */
    mmr_tower_item_in_t *hist;  /* (USERS, L) */
    int32_t *hist_type;         /* (USERS, L) */
    float *hist_age;            /* (L) */
    int L;
    uint64_t next;
} trainer_ctx_t;

static void run_trainer(void *arg) {
    trainer_ctx_t *x = arg;
    mmr_err_t err;
    for (int k = 0; k < TR_BATCH; k++) {
        uint64_t r = x->next++ * 0x9E3779B97F4A7C15ull;
        int u = (int)((r >> 40) % USERS), i = (int)((r >> 20) % POOL);
        mmr_example_t ex = {.item = x->items[i], .hist_len = x->L,
                            .hist = x->hist + (size_t)u * x->L,
                            .hist_type = x->hist_type + (size_t)u * x->L,
                            .hist_age = x->hist_age, .user_bucket = u, .popularity = 3.0f,
                            .recency = 1.0f, .label = (float)(k & 1)};
        mmr_status_t st = mmr_trainer_add(x->tr, &ex, &err);
        if (st != MMR_OK) die("trainer_add", st, &err);
    }
}

/* examples/s of mmr_trainer_add with an item-vector cache of cache_max entries. */
static double bench_trainer(const mmr_tower_config_t *cfg, const mmr_tower_optim_t *opt,
                            size_t cache_max, double secs) {
    const int dm[3] = {cfg->d_text, cfg->d_image, cfg->d_video}, L = cfg->hist_len;
    mmr_trainer_conf_t conf = {.tower = *cfg, .optim = *opt, .batch_size = TR_BATCH, .seed = 2,
                               .item_cache_max = cache_max};
    trainer_ctx_t x = {.L = L};
    mmr_err_t err;
    mmr_status_t st = mmr_trainer_new(&conf, NULL, &x.tr, &err);
    if (st != MMR_OK) die("trainer_new", st, &err);
    float *feat[3];
    for (int m = 0; m < 3; m++) feat[m] = randn((size_t)POOL * dm[m]);
    x.items = malloc(POOL * sizeof *x.items);
    x.hist = malloc((size_t)USERS * L * sizeof *x.hist);
    x.hist_type = calloc((size_t)USERS * L, sizeof(int32_t));
    x.hist_age = calloc((size_t)L, sizeof(float));
    if (!x.items || !x.hist || !x.hist_type || !x.hist_age) die("bench", MMR_ERR_NOMEM, &err);
    for (int i = 0; i < POOL; i++) {
        x.items[i] = (mmr_tower_item_in_t){.key = (uint64_t)i, .id_bucket = i};
        for (int m = 0; m < 3; m++) x.items[i].x[m] = feat[m] + (size_t)i * dm[m];
    }
    for (size_t j = 0; j < (size_t)USERS * L; j++) x.hist[j] = x.items[(j * 7919) % POOL];
    for (int j = 0; j < L; j++) x.hist_age[j] = (float)j;
    for (int k = 0; k < 8; k++) run_trainer(&x); // warm the cache (when it can hold the pool)
    double r = rate(run_trainer, &x, secs) * TR_BATCH;
    mmr_trainer_free(x.tr);
    for (int m = 0; m < 3; m++) free(feat[m]);
    free(x.items), free(x.hist), free(x.hist_type), free(x.hist_age);
    return r;
}

/* The item tower's GEMMs alone, same shapes: 3 projections, gate, W1, W2. */
static void run_gemms(void *arg) {
    ctx_t *x = arg;
    const mmr_tower_config_t *c = x->c;
    int B = x->batch.item.n, H = c->d_hidden, D = c->d_out;
    const int dm[3] = {c->d_text, c->d_image, c->d_video};
    for (int m = 0; m < 3; m++)
        mmr_tower_sgemm(0, 1, B, H, dm[m], 1.0f, x->batch.item.x[m], dm[m], x->w[m], dm[m], 0.0f,
                        x->scratch_out + (size_t)m * B * H, H);
    mmr_tower_sgemm(0, 1, B, 3, 3 * H, 1.0f, x->scratch_out, 3 * H, x->w[3], 3 * H, 0.0f,
                    x->scratch_in, 3);
    mmr_tower_sgemm(0, 1, B, H, H, 1.0f, x->scratch_out, H, x->w[4], H, 0.0f, x->scratch_in, H);
    mmr_tower_sgemm(0, 1, B, D, H, 1.0f, x->scratch_in, H, x->w[5], H, 0.0f, x->scratch_out, D);
}

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 1024;
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    if (B < 1 || secs <= 0) {
        fprintf(stderr, "usage: bench_tower [batch] [seconds]\n");
        return 2;
    }
    mmr_tower_config_t cfg = mmr_tower_config_default();
    mmr_err_t err;
    ctx_t x = {.c = &cfg};
    mmr_status_t st = mmr_tower_new(&cfg, 1, &x.t, &err);
    if (st != MMR_OK) die("tower_new", st, &err);
    int H = cfg.d_hidden, D = cfg.d_out, L = cfg.hist_len;
    const int dm[3] = {cfg.d_text, cfg.d_image, cfg.d_video};
    uint8_t *present = malloc((size_t)B * 3);
    int32_t *item_id = malloc((size_t)B * sizeof(int32_t)), *user_id = malloc((size_t)B * sizeof(int32_t));
    int32_t *hist_len = malloc((size_t)B * sizeof(int32_t)), *hist_type = calloc((size_t)B * L, sizeof(int32_t));
    float *hist = randn((size_t)B * L * D), *age = calloc((size_t)B * L, sizeof(float));
    float *pop = calloc((size_t)B, sizeof(float)), *rec = calloc((size_t)B, sizeof(float));
    float *label = calloc((size_t)B, sizeof(float));
    memset(present, 1, (size_t)B * 3);
    for (int b = 0; b < B; b++) {
        item_id[b] = b % 2 ? b % cfg.n_item_ids : -1;
        user_id[b] = b % cfg.n_user_ids;
        hist_len[b] = L;
        label[b] = (float)(b % 2);
    }
    x.batch = (mmr_tower_batch_t){
        .item = {.n = B, .x = {randn((size_t)B * dm[0]), randn((size_t)B * dm[1]), randn((size_t)B * dm[2])},
                 .present = present, .item_id = item_id},
        .user = {.n = B, .hist = hist, .hist_type = hist_type, .hist_age = age,
                 .hist_len = hist_len, .user_id = user_id},
        .popularity = pop, .recency = rec, .label = label};
    x.opt = (mmr_tower_optim_t){.kind = MMR_TOWER_OPT_ADAGRAD, .lr = 0.01f, .lr_sparse = 0.01f,
                                .adagrad_init = 0.1f, .adagrad_eps = 1e-8f};
    x.out = malloc((size_t)B * D * sizeof(float));
    x.gate = malloc((size_t)B * 3 * sizeof(float));
    x.scratch_in = malloc((size_t)B * H * sizeof(float));
    x.scratch_out = malloc((size_t)B * 3 * H * sizeof(float));
    for (int m = 0; m < 3; m++) x.w[m] = randn((size_t)H * dm[m]);
    x.w[3] = randn((size_t)9 * H), x.w[4] = randn((size_t)H * H), x.w[5] = randn((size_t)D * H);

    printf("bench_tower: dims text %d image %d video %d hidden %d out %d, history %d, batch %d\n",
           dm[0], dm[1], dm[2], H, D, L, B);
    double item = rate(run_item, &x, secs) * B, gemm = rate(run_gemms, &x, secs) * B;
    printf("%-28s %12.0f items/s   (its GEMMs alone: %.0f items/s, ratio %.2f)\n",
           mmr_tower_backend_name(NULL), item, gemm, item / gemm);
    printf("%-28s %12.0f users/s\n", "  user tower forward", rate(run_user, &x, secs) * B);
    printf("%-28s %12.0f examples/s\n", "  train_step (Adagrad)", rate(run_train, &x, secs) * B);
    printf("%-28s %12.0f examples/s   (batch %d, history %d, cache holds all %d items)\n",
           "  trainer_add (Adagrad)", bench_trainer(&cfg, &x.opt, 0, secs), TR_BATCH, L, POOL);
    printf("%-28s %12.0f examples/s   (cache of %d: cleared every ~%d misses)\n",
           "  trainer_add, cache thrash", bench_trainer(&cfg, &x.opt, POOL / 4, secs), POOL / 4,
           POOL / 4);
    st = mmr_tower_backend_cuda_new(0, &x.be, &err);
    if (st == MMR_OK) {
        printf("%-28s %12.0f items/s\n", mmr_tower_backend_name(x.be), rate(run_item, &x, secs) * B);
        mmr_tower_backend_free(x.be);
    } else {
        printf("%-28s %s\n", "cuda", err.msg);
    }
    for (int m = 0; m < 3; m++) free((void *)x.batch.item.x[m]);
    for (int i = 0; i < 6; i++) free(x.w[i]);
    free(present), free(item_id), free(user_id), free(hist_len), free(hist_type), free(hist);
    free(age), free(pop), free(rec), free(label);
    free(x.out), free(x.gate), free(x.scratch_in), free(x.scratch_out);
    mmr_tower_free(x.t);
    return 0;
}
