/* test_trainer.c — the online trainer loop (embedding/mmr_trainer.h) on a planted task:
 * items belong to K = 8 topics (content = topic-dependent random maps + noise, modalities
 * missing at random), users prefer one topic, histories are their recent positives.
 *   learn:      20k examples raise the AUC on held-out users x held-out (cold) items from
 *               about 0.5 to above 0.85 (measured over 6 seeds: 0.41-0.54 -> 0.92-0.96)
 *   invalid:    each kind of bad example → MMR_ERR_INVALID, skipped, trainer still trains
 *   snapshot:   flushes, empties the item cache, and is independent of further training;
 *               refresh flushes and empties the cache without a copy
 *   checkpoint: N steps, save, load, M steps == N + M steps without it, bit for bit (with
 *               the default cache and with one small enough to clear itself); a flipped
 *               byte, a truncation, trailing data or another config are refused */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmr_trainer.h"
#include "tower_test.h"

enum {
    K = 8,          /* topics */
    LATENT = 8,     /* width of a topic's latent vector */
    N_TRAIN = 480,  /* training items, ids [0, N_TRAIN) */
    N_HELD = 160,   /* held-out items, cold, ids [N_TRAIN, N_ITEMS) */
    N_ITEMS = N_TRAIN + N_HELD,
    N_USERS = 200,  /* training users */
    N_EVAL = 64,    /* held-out users (no id) */
    HIST = 8,
    DMAX = 32,      /* widest modality */
};

static const mmr_tower_config_t cfg = {.d_text = 32, .d_image = 24, .d_video = 16,
                                       .d_hidden = 32, .d_out = 16, .n_item_ids = 1024,
                                       .n_user_ids = 256, .hist_len = HIST, .n_event_types = 3};

typedef struct world {
    test_rng_t r;
    float x[N_ITEMS][3][DMAX];
    uint8_t present[N_ITEMS][3];
    int32_t bucket[N_ITEMS];
    int hist[N_USERS + N_EVAL][HIST]; /* recent positives, most recent first */
    int32_t hist_type[N_USERS + N_EVAL][HIST];
    float hist_age[HIST];
    /* the example being built */
    mmr_tower_item_in_t ex_hist[HIST];
    mmr_example_t ex;
} world_t;

static int topic_of(int item) { return item % K; }

static mmr_tower_item_in_t item_in(const world_t *w, int i) {
    mmr_tower_item_in_t in = {.key = 1000003u * (uint64_t)i + 17, .id_bucket = w->bucket[i]};
    for (int m = 0; m < 3; m++) in.x[m] = w->present[i][m] ? w->x[i][m] : NULL;
    return in;
}

/* A random item of topic k among items [lo, hi). */
static int item_of_topic(world_t *w, int k, int lo, int hi) {
    int n = (hi - lo) / K;
    return lo + (int)(test_rng_u64(&w->r) % (uint64_t)n) * K + ((k - lo % K) + K) % K;
}

static void world_init(world_t *w, uint64_t seed) {
    memset(w, 0, sizeof *w);
    w->r.s = seed;
    const int width[3] = {cfg.d_text, cfg.d_image, cfg.d_video};
    static float map[3][DMAX][LATENT], topic[K][LATENT];
    for (int m = 0; m < 3; m++)
        for (int d = 0; d < width[m]; d++)
            for (int l = 0; l < LATENT; l++) map[m][d][l] = test_rng_sym(&w->r);
    for (int k = 0; k < K; k++)
        for (int l = 0; l < LATENT; l++) topic[k][l] = test_rng_sym(&w->r);
    const double keep[3] = {0.8, 0.6, 0.5};
    for (int i = 0; i < N_ITEMS; i++) {
        float z[LATENT];
        for (int l = 0; l < LATENT; l++) z[l] = topic[topic_of(i)][l] + 0.4f * test_rng_sym(&w->r);
        for (int m = 0; m < 3; m++) {
            w->present[i][m] = test_rng_uniform(&w->r) < keep[m];
            for (int d = 0; d < width[m]; d++) {
                float v = 0.3f * test_rng_sym(&w->r);
                for (int l = 0; l < LATENT; l++) v += map[m][d][l] * z[l] / 3.0f;
                w->x[i][m][d] = v;
            }
        }
        w->bucket[i] = i < N_TRAIN && i % 2 ? i : -1; // held-out items are cold
    }
    for (int u = 0; u < N_USERS + N_EVAL; u++)
        for (int j = 0; j < HIST; j++) {
            w->hist[u][j] = item_of_topic(w, u % K, 0, N_TRAIN);
            w->hist_type[u][j] = (int32_t)(test_rng_u64(&w->r) % 3);
        }
    for (int j = 0; j < HIST; j++) w->hist_age[j] = (float)j;
}

/* The next example of the stream (in w->ex, valid until the next call): a random training
 * user with a positive of their topic (then pushed into their history) or a random item. */
static const mmr_example_t *world_next(world_t *w) {
    int u = (int)(test_rng_u64(&w->r) % N_USERS);
    int pos = test_rng_uniform(&w->r) < 0.5;
    int i = pos ? item_of_topic(w, u % K, 0, N_TRAIN) : (int)(test_rng_u64(&w->r) % N_TRAIN);
    for (int j = 0; j < HIST; j++) w->ex_hist[j] = item_in(w, w->hist[u][j]);
    w->ex = (mmr_example_t){.item = item_in(w, i), .hist_len = HIST, .hist = w->ex_hist,
                            .hist_type = w->hist_type[u], .hist_age = w->hist_age,
                            .user_bucket = u % 10 < 7 ? u : -1,
                            .popularity = (float)(test_rng_u64(&w->r) % 50),
                            .recency = test_rng_sym(&w->r), .label = pos ? 1.0f : 0.0f};
    if (pos) {
        memmove(w->hist[u] + 1, w->hist[u], (HIST - 1) * sizeof(int));
        w->hist[u][0] = i;
    }
    return &w->ex;
}

static mmr_trainer_conf_t conf_make(int batch) {
    return (mmr_trainer_conf_t){
        .tower = cfg,
        .optim = {.kind = MMR_TOWER_OPT_ADAGRAD, .lr = 0.05f, .lr_sparse = 0.05f,
                  .adagrad_init = 0.1f, .adagrad_eps = 1e-8f},
        .batch_size = batch, .seed = 11};
}

/* Mean over held-out users of the AUC of user.item scores: their topic's held-out items
 * against the other held-out items. Histories are encoded with t, as serving would. */
static double eval_auc(const mmr_tower_t *t, const world_t *w) {
    enum { D = 16 };
    mmr_err_t err;
    mmr_tower_item_in_t in[N_HELD];
    static float v[N_HELD][D], hv[HIST][D], u[D];
    for (int i = 0; i < N_HELD; i++) in[i] = item_in(w, N_TRAIN + i);
    CHECK_OK(mmr_tower_encode_items(t, NULL, N_HELD, in, v[0], NULL, &err));
    double sum = 0;
    for (int e = 0; e < N_EVAL; e++) {
        int user = N_USERS + e;
        mmr_tower_item_in_t h[HIST];
        for (int j = 0; j < HIST; j++) h[j] = item_in(w, w->hist[user][j]);
        CHECK_OK(mmr_tower_encode_items(t, NULL, HIST, h, hv[0], NULL, &err));
        CHECK_OK(mmr_tower_encode_user(t, NULL, HIST, hv[0], w->hist_type[user], w->hist_age,
                                       -1, u, &err));
        float s[N_HELD];
        for (int i = 0; i < N_HELD; i++) {
            s[i] = 0;
            for (int d = 0; d < D; d++) s[i] += u[d] * v[i][d];
        }
        double wins = 0, pairs = 0;
        for (int a = 0; a < N_HELD; a++) {
            if (topic_of(N_TRAIN + a) != user % K) continue;
            for (int b = 0; b < N_HELD; b++) {
                if (topic_of(N_TRAIN + b) == user % K) continue;
                wins += s[a] > s[b] ? 1 : s[a] == s[b] ? 0.5 : 0;
                pairs++;
            }
        }
        sum += wins / pairs;
    }
    return sum / N_EVAL;
}

static void test_learn(void) {
    static world_t w;
    world_init(&w, 1);
    mmr_err_t err;
    mmr_trainer_t *tr;
    mmr_trainer_conf_t conf = conf_make(64);
    CHECK_OK(mmr_trainer_new(&conf, NULL, &tr, &err));
    double auc0 = eval_auc(mmr_trainer_tower(tr), &w);
    enum { N_EX = 20000, PUBLISH = 2048 };
    mmr_trainer_stats_t st0 = {0};
    for (int k = 0; k < N_EX; k++) {
        CHECK_OK(mmr_trainer_add(tr, world_next(&w), &err));
        if (k == 2 * 64 - 1) mmr_trainer_get_stats(tr, &st0);
        if ((k + 1) % PUBLISH == 0) { // publish a version: also refreshes history vectors
            mmr_tower_t *snap;
            CHECK_OK(mmr_trainer_snapshot(tr, &snap, &err));
            mmr_tower_free(snap);
        }
    }
    CHECK_OK(mmr_trainer_flush(tr, &err));
    mmr_trainer_stats_t st;
    mmr_trainer_get_stats(tr, &st);
    double auc1 = eval_auc(mmr_trainer_tower(tr), &w);
    printf("learn: %llu examples (%llu positive), %llu steps, loss %.3f -> ewma %.3f, "
           "held-out AUC %.3f -> %.3f\n", (unsigned long long)st.examples,
           (unsigned long long)st.positives, (unsigned long long)st.steps,
           (double)st0.loss_ewma, (double)st.loss_ewma, auc0, auc1);
    CHECK(st.examples == N_EX && st.steps >= N_EX / 64);
    CHECK(st.positives > N_EX * 0.45 && st.positives < N_EX * 0.55);
    CHECK_MSG(auc0 > 0.3 && auc0 < 0.7, "untrained AUC %.3f", auc0);
    CHECK_MSG(auc1 > 0.85, "trained AUC %.3f", auc1);
    CHECK(st.loss_ewma < st0.loss_ewma);
    mmr_trainer_free(tr);
}

static void expect_invalid(mmr_trainer_t *tr, const mmr_example_t *ex, const char *what) {
    mmr_err_t err;
    mmr_trainer_stats_t a, b;
    mmr_trainer_get_stats(tr, &a);
    mmr_status_t st = mmr_trainer_add(tr, ex, &err);
    CHECK_MSG(st == MMR_ERR_INVALID, "%s: got %s", what, mmr_status_str(st));
    CHECK_MSG(err.msg[0] != '\0', "%s: no message", what);
    mmr_trainer_get_stats(tr, &b);
    CHECK_MSG(a.examples == b.examples, "%s: counted", what);
}

static void test_invalid(void) {
    static world_t w;
    world_init(&w, 2);
    mmr_err_t err;
    mmr_trainer_t *tr;
    mmr_trainer_conf_t conf = conf_make(16);
    CHECK_OK(mmr_trainer_new(&conf, NULL, &tr, &err));
    const mmr_example_t good = *world_next(&w);
    mmr_tower_item_in_t hist[HIST];
    memcpy(hist, good.hist, sizeof hist);
    int32_t types[HIST];
    float ages[HIST], feat[DMAX];
    memcpy(types, good.hist_type, sizeof types);
    memcpy(ages, good.hist_age, sizeof ages);
    mmr_example_t ex;
#define BAD(field_change, what)                                  \
    do {                                                         \
        ex = good;                                               \
        ex.hist = hist, ex.hist_type = types, ex.hist_age = ages; \
        field_change;                                            \
        expect_invalid(tr, &ex, what);                           \
        memcpy(hist, good.hist, sizeof hist);                    \
        memcpy(types, good.hist_type, sizeof types);             \
        memcpy(ages, good.hist_age, sizeof ages);                \
    } while (0)
    memcpy(feat, w.x[0][0], sizeof feat);
    feat[5] = NAN;
    BAD(ex.item.x[0] = feat, "NaN text feature");
    feat[5] = INFINITY;
    BAD(ex.item.x[0] = feat, "infinite text feature");
    BAD(ex.item.id_bucket = cfg.n_item_ids, "item bucket too large");
    BAD(ex.item.id_bucket = -2, "item bucket < -1");
    BAD(ex.user_bucket = cfg.n_user_ids, "user bucket too large");
    BAD(types[2] = cfg.n_event_types, "event type too large");
    BAD(types[0] = -1, "event type < 0");
    BAD(ages[1] = -1.0f, "negative age");
    BAD(ages[1] = NAN, "NaN age");
    BAD(ex.hist_len = -1, "hist_len < 0");
    BAD(ex.hist = NULL, "NULL history");
    BAD(ex.label = 1.5f, "label > 1");
    BAD(ex.label = NAN, "NaN label");
    BAD(ex.popularity = -1.0f, "negative popularity");
    BAD(ex.recency = INFINITY, "infinite recency");
    // a history item never seen (a cache miss) has its features checked
    feat[5] = NAN;
    BAD((hist[3].key = 0xdead, hist[3].x[0] = feat), "NaN feature in a history item");
    BAD((hist[3].key = 0xbeef, hist[3].id_bucket = cfg.n_item_ids), "bad history item bucket");
    CHECK(mmr_trainer_add(tr, NULL, &err) == MMR_ERR_INVALID);
#undef BAD
    // still trains: 2 full batches after all that
    for (int k = 0; k < 32; k++) CHECK_OK(mmr_trainer_add(tr, world_next(&w), &err));
    mmr_trainer_stats_t st;
    mmr_trainer_get_stats(tr, &st);
    CHECK(st.examples == 32 && st.steps == 2 && isfinite(st.last_loss));
    // more history than L: the first L are used, the rest ignored (not even read)
    ex = *world_next(&w);
    ex.hist_len = HIST + 100;
    CHECK_OK(mmr_trainer_add(tr, &ex, &err));
    mmr_trainer_free(tr);

    // bad configurations
    mmr_trainer_conf_t bad = conf_make(-1);
    CHECK(mmr_trainer_new(&bad, NULL, &tr, &err) == MMR_ERR_INVALID && !tr);
    bad = conf_make(16);
    bad.optim.lr = -1;
    CHECK(mmr_trainer_new(&bad, NULL, &tr, &err) == MMR_ERR_INVALID && !tr);
    bad = conf_make(16);
    bad.tower.d_out = 0;
    CHECK(mmr_trainer_new(&bad, NULL, &tr, &err) == MMR_ERR_INVALID && !tr);
    mmr_trainer_free(NULL);
    printf("invalid: 17 kinds of bad example refused, trainer still trains; bad configs refused\n");
}

static void test_snapshot(void) {
    static world_t w;
    world_init(&w, 3);
    mmr_err_t err;
    mmr_trainer_t *tr;
    mmr_trainer_conf_t conf = conf_make(64);
    CHECK_OK(mmr_trainer_new(&conf, NULL, &tr, &err));
    for (int k = 0; k < 100; k++) CHECK_OK(mmr_trainer_add(tr, world_next(&w), &err));
    mmr_trainer_stats_t st;
    mmr_trainer_get_stats(tr, &st);
    CHECK(st.steps == 1); // 36 pending
    mmr_tower_t *snap;
    CHECK_OK(mmr_trainer_snapshot(tr, &snap, &err));
    mmr_trainer_get_stats(tr, &st);
    CHECK(st.steps == 2); // the snapshot flushed them
    size_t n = mmr_tower_param_count(snap);
    CHECK(n == mmr_tower_param_count((mmr_tower_t *)mmr_trainer_tower(tr)));
    float *copy = malloc(n * sizeof(float));
    CHECK(copy);
    memcpy(copy, mmr_tower_params(snap), n * sizeof(float));
    CHECK(memcmp(copy, mmr_tower_params((mmr_tower_t *)mmr_trainer_tower(tr)),
                 n * sizeof(float)) == 0);
    for (int k = 0; k < 3 * 64; k++) CHECK_OK(mmr_trainer_add(tr, world_next(&w), &err));
    CHECK(memcmp(copy, mmr_tower_params((mmr_tower_t *)mmr_trainer_tower(tr)),
                 n * sizeof(float)) != 0);
    // a cached history item's features are not read again until a snapshot empties the cache
    mmr_example_t ex = *world_next(&w);
    mmr_tower_item_in_t hist[HIST];
    float nan_feat[DMAX];
    for (int d = 0; d < DMAX; d++) nan_feat[d] = NAN;
    memcpy(hist, ex.hist, sizeof hist);
    hist[0].x[0] = nan_feat;
    ex.hist = hist;
    CHECK_OK(mmr_trainer_add(tr, &ex, &err)); // hit: features not read
    mmr_tower_t *snap2;
    CHECK_OK(mmr_trainer_snapshot(tr, &snap2, &err));
    mmr_tower_free(snap2);
    CHECK(mmr_trainer_add(tr, &ex, &err) == MMR_ERR_INVALID); // miss: read and refused
    // a refresh empties the cache too, and flushes, without a copy
    memcpy(hist, world_next(&w)->hist, sizeof hist);
    CHECK_OK(mmr_trainer_add(tr, &ex, &err)); // miss: valid features cached
    hist[0].x[0] = nan_feat;
    CHECK_OK(mmr_trainer_add(tr, &ex, &err)); // hit
    mmr_trainer_get_stats(tr, &st);
    uint64_t steps = st.steps;
    CHECK_OK(mmr_trainer_refresh(tr, &err));
    mmr_trainer_get_stats(tr, &st);
    CHECK(st.steps == steps + 1);
    CHECK(mmr_trainer_add(tr, &ex, &err) == MMR_ERR_INVALID); // miss again
    CHECK(mmr_trainer_refresh(NULL, &err) == MMR_ERR_INVALID);
    mmr_trainer_free(tr); // the snapshot outlives its trainer
    CHECK(memcmp(copy, mmr_tower_params(snap), n * sizeof(float)) == 0);
    CHECK(eval_auc(snap, &w) >= 0);
    free(copy);
    mmr_tower_free(snap);
    printf("snapshot: flushes, empties the item cache, a copy independent of further training "
           "and of the trainer; refresh: flushes and empties the cache\n");
}

/* --- checkpoints ---------------------------------------------------------------------- */

static unsigned char *file_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n);
    CHECK(p && fread(p, 1, *n, f) == *n);
    fclose(f);
    return p;
}

static void file_write(const char *path, const unsigned char *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f, "open %s", path);
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

static void expect_refused(const mmr_trainer_conf_t *conf, const char *path, mmr_status_t want,
                           const char *what) {
    mmr_err_t err;
    mmr_trainer_t *tr = (mmr_trainer_t *)1;
    void *blob = (void *)1;
    size_t blob_len = 1;
    mmr_status_t st = mmr_trainer_checkpoint_load(conf, path, NULL, &tr, &blob, &blob_len, &err);
    CHECK_MSG(st == want, "%s: got %s (%s)", what, mmr_status_str(st), err.msg);
    CHECK_MSG(!tr && !blob && blob_len == 0, "%s: outputs not reset", what);
    CHECK(strlen(err.msg) > 0);
}

static void train(mmr_trainer_t *tr, world_t *w, int n) {
    mmr_err_t err;
    for (int k = 0; k < n; k++) CHECK_OK(mmr_trainer_add(tr, world_next(w), &err));
}

enum { B = 32 };

/* N steps, save, load, M steps == N + M steps without the checkpoint, bit for bit. A small
 * cache_max makes the cache fill (and clear) several times on the way. */
static void check_resume(const char *path, size_t cache_max) {
    enum { N_STEPS = 20, M_STEPS = 15 };
    static world_t w1, w2;
    world_init(&w1, 4);
    world_init(&w2, 4);
    mmr_err_t err;
    mmr_trainer_conf_t conf = conf_make(B);
    conf.item_cache_max = cache_max;
    mmr_trainer_t *a, *b, *c;
    CHECK_OK(mmr_trainer_new(&conf, NULL, &a, &err));
    CHECK_OK(mmr_trainer_new(&conf, NULL, &c, &err));
    const char offsets[] = "events/0=1234 events/1=987";
    train(a, &w1, N_STEPS * B);
    CHECK_OK(mmr_trainer_checkpoint_save(a, path, offsets, sizeof offsets, &err));
    mmr_trainer_stats_t sa, sb, sc;
    mmr_trainer_get_stats(a, &sa);
    mmr_trainer_free(a);
    void *blob;
    size_t blob_len;
    CHECK_OK(mmr_trainer_checkpoint_load(&conf, path, NULL, &b, &blob, &blob_len, &err));
    CHECK(blob_len == sizeof offsets && memcmp(blob, offsets, blob_len) == 0);
    free(blob);
    mmr_trainer_get_stats(b, &sb);
    CHECK(memcmp(&sa, &sb, sizeof sa) == 0);
    train(b, &w1, M_STEPS * B);
    train(c, &w2, (N_STEPS + M_STEPS) * B);
    mmr_trainer_get_stats(b, &sb);
    mmr_trainer_get_stats(c, &sc);
    CHECK(sb.steps == N_STEPS + M_STEPS && memcmp(&sb, &sc, sizeof sb) == 0);
    mmr_tower_t *tb = (mmr_tower_t *)mmr_trainer_tower(b);
    mmr_tower_t *tc = (mmr_tower_t *)mmr_trainer_tower(c);
    size_t n = mmr_tower_param_count(tb);
    CHECK_MSG(memcmp(mmr_tower_params(tb), mmr_tower_params(tc), n * sizeof(float)) == 0,
              "resumed weights differ from the uninterrupted run");
    printf("checkpoint: %d steps, save, load, %d steps == %d steps, bit for bit (cache %zu, "
           "loss %.4f)\n", N_STEPS, M_STEPS, N_STEPS + M_STEPS, cache_max, (double)sb.last_loss);
    mmr_trainer_free(b);
    mmr_trainer_free(c);
}

static void test_checkpoint(void) {
    static world_t w;
    world_init(&w, 5);
    char dir[] = "/tmp/test_trainer.XXXXXX", path[128], bad[128];
    CHECK(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ckpt", dir);
    snprintf(bad, sizeof bad, "%s/bad", dir);
    check_resume(path, 0);
    check_resume(path, 37);
    mmr_err_t err;
    mmr_trainer_conf_t conf = conf_make(B);
    mmr_trainer_t *a, *b;
    void *blob;
    size_t blob_len;
    mmr_trainer_stats_t sa;
    const char offsets[] = "events/0=1234 events/1=987";

    // no blob, blob outputs ignored; no temp file left behind
    CHECK_OK(mmr_trainer_new(&conf, NULL, &a, &err));
    CHECK_OK(mmr_trainer_checkpoint_save(a, path, NULL, 0, &err));
    CHECK_OK(mmr_trainer_checkpoint_load(&conf, path, NULL, &b, NULL, NULL, &err));
    mmr_trainer_free(b);
    CHECK_OK(mmr_trainer_checkpoint_load(&conf, path, NULL, &b, &blob, &blob_len, &err));
    CHECK(!blob && blob_len == 0);
    mmr_trainer_free(b);
    train(a, &w, 2 * B + 5); // Adagrad state, a cache, and a pending partial batch to flush
    CHECK_OK(mmr_trainer_checkpoint_save(a, path, offsets, sizeof offsets, &err));
    mmr_trainer_get_stats(a, &sa);
    CHECK(sa.steps == 3);
    char other[160];
    snprintf(other, sizeof other, "%s/nodir/ckpt", dir);
    CHECK(mmr_trainer_checkpoint_save(a, other, NULL, 0, &err) == MMR_ERR_IO);
    CHECK(mmr_trainer_checkpoint_save(a, path, NULL, 3, &err) == MMR_ERR_INVALID);
    mmr_trainer_free(a);

    // corruption: every flipped byte position class, truncations, trailing data
    size_t len;
    unsigned char *good = file_read(path, &len);
    const size_t flips[] = {0, 9, 20, 44, 60, 77, 80 + 3, 80 + 30, 80 + 72 + 4, len / 2,
                            len - 40, len - 1};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        good[flips[i]] ^= 0x10;
        file_write(bad, good, len);
        good[flips[i]] ^= 0x10;
        char what[64];
        snprintf(what, sizeof what, "flipped byte %zu of %zu", flips[i], len);
        expect_refused(&conf, bad, MMR_ERR_CORRUPT, what);
    }
    const size_t cuts[] = {0, 40, 80, 80 + 72, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        file_write(bad, good, cuts[i]);
        expect_refused(&conf, bad, MMR_ERR_CORRUPT, "truncated");
    }
    unsigned char *longer = malloc(len + 1);
    CHECK(longer);
    memcpy(longer, good, len);
    longer[len] = 0;
    file_write(bad, longer, len + 1);
    expect_refused(&conf, bad, MMR_ERR_CORRUPT, "trailing byte");
    free(longer);
    mmr_trainer_conf_t other_conf = conf;
    other_conf.tower.hist_len = HIST + 1;
    expect_refused(&other_conf, path, MMR_ERR_CORRUPT, "another config");
    expect_refused(&conf, other, MMR_ERR_IO, "missing file");
    mmr_tower_t *t;
    CHECK_OK(mmr_tower_new(&cfg, 1, &t, &err));
    CHECK_OK(mmr_tower_save(t, bad, &err)); // a model file is not a checkpoint
    mmr_tower_free(t);
    expect_refused(&conf, bad, MMR_ERR_CORRUPT, "model file");
    printf("checkpoint: %zu flipped bytes, %zu truncations, trailing data, another config, "
           "a model file: refused\n", sizeof flips / sizeof flips[0], sizeof cuts / sizeof cuts[0]);
    free(good);
    unlink(bad);
    unlink(path);
    CHECK_MSG(rmdir(dir) == 0, "temp files left in %s", dir);
}

int main(void) {
    test_invalid();
    test_snapshot();
    test_checkpoint();
    test_learn();
    return 0;
}
