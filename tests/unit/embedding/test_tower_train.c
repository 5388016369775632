/* test_tower_train.c — mmr_tower_train_step learns a small separable problem (users and
 * items in 4 planted clusters; label = same cluster) with Adagrad and with SGD, and the
 * sparse update touches exactly the id rows of the batch. */
#include <math.h>
#include <string.h>

#include "tower_test.h"

enum { N_CLUSTERS = 4, N_ITEMS = 64, N_USERS = 32, HIST = 8, BATCH = 64 };

static const mmr_tower_config_t cfg = {.d_text = 16, .d_image = 12, .d_video = 8,
                                       .d_hidden = 16, .d_out = 8, .n_item_ids = N_ITEMS,
                                       .n_user_ids = N_USERS, .hist_len = HIST,
                                       .n_event_types = 3};

typedef struct world {
    float x[3][N_ITEMS * 16];        /* (N_ITEMS, d_m), row stride = width */
    uint8_t present[N_ITEMS * 3];
    int32_t item_id[N_ITEMS];
    int hist_item[N_USERS][HIST];    /* items in each user's history */
    int32_t hist_type[N_USERS * HIST];
    float hist_age[N_USERS * HIST];
    float vec[N_ITEMS * 8];          /* current item vectors (N_ITEMS, D) */
} world_t;

static void world_init(world_t *w, test_rng_t *r) {
    const int width[3] = {cfg.d_text, cfg.d_image, cfg.d_video};
    float proto[3][N_CLUSTERS][16];
    for (int m = 0; m < 3; m++)
        for (int c = 0; c < N_CLUSTERS; c++)
            for (int k = 0; k < width[m]; k++) proto[m][c][k] = test_rng_sym(r);
    for (int i = 0; i < N_ITEMS; i++) {
        for (int m = 0; m < 3; m++) {
            double p = m == 0 ? 0.8 : m == 1 ? 0.6 : 0.3;
            w->present[i * 3 + m] = test_rng_uniform(r) < p;
            for (int k = 0; k < width[m]; k++)
                w->x[m][i * width[m] + k] = proto[m][i % N_CLUSTERS][k] + 0.3f * test_rng_sym(r);
        }
        w->item_id[i] = i % 2 ? i : -1;
    }
    for (int u = 0; u < N_USERS; u++)
        for (int j = 0; j < HIST; j++) {
            w->hist_item[u][j] = (int)(test_rng_u64(r) % (N_ITEMS / N_CLUSTERS)) * N_CLUSTERS + u % N_CLUSTERS;
            w->hist_type[u * HIST + j] = (int32_t)(test_rng_u64(r) % 3);
            w->hist_age[u * HIST + j] = (float)j;
        }
}

/* Recomputes every item vector (as the serving path would cache them). */
static void world_refresh(world_t *w, mmr_tower_t *t) {
    mmr_err_t err;
    mmr_tower_item_batch_t ib = {.n = N_ITEMS, .x = {w->x[0], w->x[1], w->x[2]},
                                 .present = w->present, .item_id = w->item_id};
    CHECK_OK(mmr_tower_item_forward(t, NULL, &ib, w->vec, NULL, &err));
}

typedef struct examples {
    float x[3][BATCH * 16];
    uint8_t present[BATCH * 3];
    int32_t item_id[BATCH], user_id[BATCH], hist_len[BATCH], hist_type[BATCH * HIST];
    float hist[BATCH * HIST * 8], hist_age[BATCH * HIST], pop[BATCH], rec[BATCH], label[BATCH];
    mmr_tower_batch_t b;
} examples_t;

/* Example k pairs user u[k] with item i[k]. */
static void make_batch(examples_t *e, const world_t *w, const int *us, const int *is, int n) {
    const int width[3] = {cfg.d_text, cfg.d_image, cfg.d_video}, D = cfg.d_out;
    for (int k = 0; k < n; k++) {
        int u = us[k], i = is[k];
        for (int m = 0; m < 3; m++) {
            memcpy(e->x[m] + k * width[m], w->x[m] + i * width[m], (size_t)width[m] * sizeof(float));
            e->present[k * 3 + m] = w->present[i * 3 + m];
        }
        e->item_id[k] = w->item_id[i];
        e->user_id[k] = u;
        e->hist_len[k] = HIST;
        for (int j = 0; j < HIST; j++) {
            memcpy(e->hist + (k * HIST + j) * D, w->vec + w->hist_item[u][j] * D, (size_t)D * sizeof(float));
            e->hist_type[k * HIST + j] = w->hist_type[u * HIST + j];
            e->hist_age[k * HIST + j] = w->hist_age[u * HIST + j];
        }
        e->pop[k] = 3.0f;
        e->rec[k] = 0.0f;
        e->label[k] = (u % N_CLUSTERS) == (i % N_CLUSTERS);
    }
    e->b = (mmr_tower_batch_t){
        .item = {.n = n, .x = {e->x[0], e->x[1], e->x[2]}, .present = e->present, .item_id = e->item_id},
        .user = {.n = n, .hist = e->hist, .hist_type = e->hist_type, .hist_age = e->hist_age,
                 .hist_len = e->hist_len, .user_id = e->user_id},
        .popularity = e->pop, .recency = e->rec, .label = e->label};
}

/* A batch with half positives. */
static void sample_batch(examples_t *e, const world_t *w, test_rng_t *r) {
    int us[BATCH], is[BATCH];
    for (int k = 0; k < BATCH; k++) {
        us[k] = (int)(test_rng_u64(r) % N_USERS);
        int c = k % 2 ? us[k] % N_CLUSTERS : (int)(test_rng_u64(r) % N_CLUSTERS);
        is[k] = (int)(test_rng_u64(r) % (N_ITEMS / N_CLUSTERS)) * N_CLUSTERS + c;
    }
    make_batch(e, w, us, is, BATCH);
}

/* Accuracy of p > 0.5 over every (user, item) pair. */
static double accuracy(mmr_tower_t *t, world_t *w, examples_t *e) {
    mmr_err_t err;
    int right = 0;
    world_refresh(w, t);
    for (int u = 0; u < N_USERS; u++) {
        int us[N_ITEMS], is[N_ITEMS];
        for (int i = 0; i < N_ITEMS; i++) us[i] = u, is[i] = i;
        make_batch(e, w, us, is, N_ITEMS);
        float uv[N_ITEMS * 8], iv[N_ITEMS * 8], p[N_ITEMS];
        CHECK_OK(mmr_tower_user_forward(t, NULL, &e->b.user, uv, &err));
        CHECK_OK(mmr_tower_item_forward(t, NULL, &e->b.item, iv, NULL, &err));
        mmr_tower_head_forward(t, N_ITEMS, uv, iv, e->pop, e->rec, p);
        for (int i = 0; i < N_ITEMS; i++) right += (p[i] > 0.5f) == (e->label[i] > 0.5f);
    }
    return (double)right / (N_USERS * N_ITEMS);
}

static void check_learns(mmr_tower_optim_t opt, int steps, double ratio, double min_acc) {
    mmr_err_t err;
    mmr_tower_t *t;
    test_rng_t r = {42};
    static world_t w;
    static examples_t e;
    world_init(&w, &r);
    CHECK_OK(mmr_tower_new(&cfg, 5, &t, &err));
    double first = 0, last = 0, acc0 = accuracy(t, &w, &e);
    for (int s = 0; s < steps; s++) {
        world_refresh(&w, t);
        sample_batch(&e, &w, &r);
        float loss;
        CHECK_OK(mmr_tower_train_step(t, NULL, &e.b, &opt, &loss, &err));
        CHECK_MSG(isfinite(loss), "loss %g at step %d", loss, s);
        if (s < 20) first += loss / 20;
        if (s >= steps - 20) last += loss / 20;
    }
    double acc = accuracy(t, &w, &e);
    printf("%s: loss %.4f -> %.4f over %d steps, accuracy %.3f -> %.3f\n",
           opt.kind == MMR_TOWER_OPT_ADAGRAD ? "adagrad" : "sgd", first, last, steps, acc0, acc);
    CHECK_MSG(last < ratio * first, "loss did not fall enough");
    CHECK_MSG(acc >= min_acc, "accuracy %.3f < %.3f", acc, min_acc);
    mmr_tower_free(t);
}

/* One step changes exactly the id rows the batch used. */
static void check_sparse_rows(void) {
    mmr_err_t err;
    mmr_tower_t *t;
    test_rng_t r = {9};
    static world_t w;
    static examples_t e;
    world_init(&w, &r);
    CHECK_OK(mmr_tower_new(&cfg, 6, &t, &err));
    world_refresh(&w, t);
    int us[4] = {3, 3, 7, 1}, is[4] = {5, 9, 5, 2}; // items 5, 9 warm; item 2 cold
    make_batch(&e, &w, us, is, 4);
    size_t n = mmr_tower_param_count(t);
    float *before = malloc(n * sizeof(float));
    memcpy(before, mmr_tower_params(t), n * sizeof(float));
    mmr_tower_optim_t opt = {.kind = MMR_TOWER_OPT_ADAGRAD, .lr = 0.05f, .lr_sparse = 0.05f,
                             .adagrad_init = 0.1f, .adagrad_eps = 1e-8f};
    float loss;
    CHECK_OK(mmr_tower_train_step(t, NULL, &e.b, &opt, &loss, &err));
    const float *after = mmr_tower_params(t);
    for (int g = 0; g < mmr_tower_param_group_count(); g++) {
        mmr_tower_param_info_t in;
        mmr_tower_param_group(t, g, &in);
        if (!in.sparse) continue;
        int items = strcmp(in.name, "item.E_id") == 0;
        for (int row = 0; row < in.rows; row++) {
            size_t o = in.offset + (size_t)row * in.cols;
            int changed = memcmp(before + o, after + o, (size_t)in.cols * sizeof(float)) != 0;
            int expect = items ? row == 5 || row == 9 : row == 3 || row == 7 || row == 1;
            CHECK_MSG(changed == expect, "%s row %d changed=%d", in.name, row, changed);
        }
    }
    mmr_tower_param_info_t head;
    mmr_tower_param_group(t, mmr_tower_param_group_count() - 3, &head);
    CHECK_MSG(strcmp(head.name, "head.w") == 0 &&
              memcmp(before + head.offset, after + head.offset, 4 * sizeof(float)) != 0,
          "head.w did not move");
    free(before);
    mmr_tower_free(t);
}

int main(void) {
    mmr_tower_optim_t ada = {.kind = MMR_TOWER_OPT_ADAGRAD, .lr = 0.05f, .lr_sparse = 0.05f,
                             .adagrad_init = 0.1f, .adagrad_eps = 1e-8f};
    check_learns(ada, 300, 0.5, 0.9);
    mmr_tower_optim_t sgd = {.kind = MMR_TOWER_OPT_SGD, .lr = 0.5f, .lr_sparse = 0.5f};
    check_learns(sgd, 300, 0.5, 0.9);
    check_sparse_rows();
    printf("ok\n");
    return 0;
}
