/* cli_gen.c — `mmrec gen`: a synthetic multimodal dataset with planted structure, and the
 * ranking quality of an oracle that knows it. Not an evaluator of models (that is replay).
 *
 * Items: each has a topic t and a latent vector z = c_t + 0.6·g (c_t the topic's centre,
 * g the item's own deviation, both N(0, I) in R^16). The latent is cut into four blocks of
 * four, A B C D, and each modality sees its own part of it through its own random linear
 * map plus its own noise: text sees A B (noise 0.4), image C (0.5), video D (0.3). No
 * block is seen by two modalities, so each modality carries information no other one
 * holds (with overlapping blocks, any two modalities pinned the topic and ablations were
 * within noise of each other), and modalities are missing per item (present with p = 0.9,
 * 0.8, 0.6): removing any one modality loses signal for a content model.
 * With --topic-factors T,I,V the T·I·V topics are combinations of one value of a text
 * factor (its vector fills blocks A B of the centre), an image factor (C) and a video factor
 * (D). A factor's values are the vertices of a regular simplex, randomly turned, and each
 * factor holds a third of a centre's squared norm (a one-value factor is zero): values are
 * equally far apart and every modality carries the same share of the click signal. One
 * modality then tells only its factor apart and only all three the topic.
 * Exposure: an item's chance to fill a slate slot is Zipf (exponent --exposure-zipf, 0.7;
 * 0 is uniform: random slates) over a random popularity order, independent of its topic.
 *
 * Users: two favourite topics and a personal deviation: p = c_f0 + c_f1 + 0.6·g_u. At a
 * point drawn per user in [0.3, 0.7] of the log, f1 is replaced by another topic (drift).
 * Sessions show a slate of 10 distinct items (IMPRESSION, one request_id per slate); the
 * user clicks each with p = σ(5·(p·z)/16 − 4.5) (about 0.37 on a favourite topic, 0.03
 * elsewhere); a click on an item with video is followed by a WATCH of 3 + 100·p·U(0.5, 1.5)
 * seconds, and a LIKE with probability p/2.
 *
 * Oracle (leave-one-out): per user with at least 3 distinct positive items (as
 * mmr_event_is_positive says), the target is the last item that became positive for the
 * first time; the user's other positive items are masked; all other items are ranked by
 * the true P(item fills a slot) · P(click | shown) under the user's state at the target
 * event (the Bayes ranking for "the next newly engaged item"), with the pessimistic
 * ties of eval_metrics.h. An exposure-only ranking (true popularity) is reported next to it.
 *
 * Output: DIR/items.jsonl ({"item_id","topic","text_emb","image_emb","video_emb"}),
 * DIR/events.tsv (ts_ms, user_id, item_id, type, value, request_id; ts strictly increasing),
 * DIR/meta.json (the parameters) and DIR/oracle.json (docs/REPLAY.md). Same seed, same
 * bytes. Events are streamed: memory is O(users + items + distinct (user, positive item)
 * pairs), the last for the oracle's masks (8 to 16 bytes each). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "eval_metrics.h"
#include "mmr_fstore.h"
#include "mmr_rand.h"

#define LATENT 16
#define BLOCK 4          /* latent coordinates per block; blocks A..D */
#define SLATE 10
#define ITEM_SPREAD 0.6
#define USER_SPREAD 0.6
#define ALPHA 5.0        /* click logit = ALPHA·(p·z)/LATENT + BETA */
#define BETA (-4.5)
#define MAX_FACTOR (1 + 2 * BLOCK) /* values of a factor: 1 + its modality's coordinates, at most */
#define ORACLE_MIN_POSITIVES 3
#define EMPTY_KEY UINT64_MAX

static const char *const modality[MMR_MODALITY_COUNT] = {"text", "image", "video"};
static const double present[MMR_MODALITY_COUNT] = {0.9, 0.8, 0.6};
static const double noise[MMR_MODALITY_COUNT] = {0.4, 0.5, 0.3};
static const unsigned blocks[MMR_MODALITY_COUNT] = {0x3, 0x4, 0x8}; /* bit b: sees block b */
static const int oracle_ks[] = {1, 5, 10, 20, 50}; /* [2] = 10 is the summary line's */

/* Latent coordinates modality m sees. */
static int coords_seen(int m) { return __builtin_popcount(blocks[m]) * BLOCK; }

typedef struct user {
    float g[LATENT];    /* personal deviation */
    int fav[3];         /* favourites; fav[2] replaces fav[1] after the drift */
    long drift_at;      /* events written before this user drifts */
    uint32_t target;    /* last item that became positive for the first time */
    uint32_t n_pos;     /* distinct positive items */
    int target_drifted; /* the user's state when target became positive */
} user_t;

/* Open-addressing set of (user << 32 | item) keys, EMPTY_KEY = free slot. */
typedef struct pairset {
    uint64_t *slot; /* [cap], cap a power of two, at most half full */
    size_t cap, n;
} pairset_t;

typedef struct gen {
    long users, items, topics, events, written;
    int factors[MMR_MODALITY_COUNT]; /* topic factor values per modality; 0: topics unfactored */
    double zipf;                     /* exposure exponent */
    uint64_t seed;
    int dims[MMR_MODALITY_COUNT];
    int64_t start_ms;
    float *center;      /* [topics][LATENT] */
    float *z;           /* [items][LATENT] */
    float *map[MMR_MODALITY_COUNT]; /* [dims[m]][LATENT], zero columns for unseen blocks */
    int *topic;         /* [items] */
    uint8_t *has_video; /* [items] */
    uint32_t *by_pop;   /* [items] item indices, most exposed first */
    double *cdf;        /* [items] cumulative exposure over by_pop order, last = 1 */
    float *inv_w;       /* [items] 1 / P(item fills a slot) */
    user_t *user;       /* [users] */
    pairset_t pos;
} gen_t;

static double rng_gauss(uint64_t *s) {
    double u = mmr_rand_uniform(s) + 1e-12, v = mmr_rand_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Returns 1 when key was added, 0 when present, -1 out of memory. */
static int pairset_add(pairset_t *ps, uint64_t key) {
    if (2 * (ps->n + 1) > ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 1024;
        pairset_t grown = {.slot = malloc(sizeof(uint64_t) * cap), .cap = cap};
        if (!grown.slot) return -1;
        memset(grown.slot, 0xff, sizeof(uint64_t) * cap);
        for (size_t i = 0; i < ps->cap; i++)
            if (ps->slot[i] != EMPTY_KEY) pairset_add(&grown, ps->slot[i]);
        free(ps->slot);
        *ps = grown;
    }
    uint64_t s = key;
    for (size_t i = mmr_rand_next(&s) & (ps->cap - 1);; i = (i + 1) & (ps->cap - 1)) {
        if (ps->slot[i] == key) return 0;
        if (ps->slot[i] == EMPTY_KEY) {
            ps->slot[i] = key;
            ps->n++;
            return 1;
        }
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Four partial sums: a short dependency chain the compiler turns into one vector lane each. */
static float click_logit(const float *p, const float *z) {
    float d[4] = {0, 0, 0, 0};
    for (int c = 0; c < LATENT; c += 4)
        for (int k = 0; k < 4; k++) d[k] += p[c + k] * z[c + k];
    return (float)ALPHA * ((d[0] + d[1]) + (d[2] + d[3])) / LATENT + (float)BETA;
}

/* p[LATENT] = the preference of user u before or after its drift. */
static void user_pref(const gen_t *g, long u, int drifted, float *p) {
    const user_t *us = &g->user[u];
    const float *a = &g->center[us->fav[0] * LATENT], *b = &g->center[us->fav[drifted ? 2 : 1] * LATENT];
    for (int c = 0; c < LATENT; c++) p[c] = a[c] + b[c] + (float)USER_SPREAD * us->g[c];
}

/* One modality of item i: emb = map · z + noise, as a JSON array. */
static void write_emb(FILE *f, const gen_t *g, int m, const float *z, uint64_t *rng) {
    fprintf(f, ",\"%s_emb\":[", modality[m]);
    for (int r = 0; r < g->dims[m]; r++) {
        double x = noise[m] * rng_gauss(rng);
        for (int c = 0; c < LATENT; c++) x += g->map[m][r * LATENT + c] * z[c];
        fprintf(f, "%s%.5f", r ? "," : "", x);
    }
    fputc(']', f);
}

/* Orthonormalises the n rows of v (row length dim, stride MAX_FACTOR) in place by
 * Gram-Schmidt; the rows must be linearly independent. */
static void orthonormalise(double v[][MAX_FACTOR], int n, int dim) {
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++) {
            double d = 0;
            for (int c = 0; c < dim; c++) d += v[i][c] * v[j][c];
            for (int c = 0; c < dim; c++) v[i][c] -= d * v[j][c];
        }
        double norm = 0;
        for (int c = 0; c < dim; c++) norm += v[i][c] * v[i][c];
        for (int c = 0; c < dim; c++) v[i][c] /= sqrt(norm);
    }
}

/* The F = factors[m] values of modality m's factor on its k latent coordinates: the vertices
 * of a regular simplex (the centred one-hot vectors of R^F, through an orthonormal basis b of
 * their span) turned by a random orthonormal map q into R^k (F - 1 <= k), each with squared
 * norm LATENT/3. All values of a factor are equally far apart, and every factor holds the
 * same share of a topic centre, so no modality's signal depends on a lucky draw. A factor
 * with one value (F = 1) is zero: that modality tells no topics apart. */
static void gen_factor(const gen_t *g, int m, float out[][LATENT], uint64_t *rng) {
    int F = g->factors[m], k = 0, coord[LATENT];
    for (int c = 0; c < LATENT; c++)
        if (blocks[m] >> (c / BLOCK) & 1) coord[k++] = c;
    double b[MAX_FACTOR][MAX_FACTOR], q[MAX_FACTOR][MAX_FACTOR];
    for (int j = 0; j < F - 1; j++) {
        for (int a = 0; a < F; a++) b[j][a] = (a == j) - 1.0 / F;
        for (int c = 0; c < k; c++) q[j][c] = rng_gauss(rng);
    }
    orthonormalise(b, F - 1, F);
    orthonormalise(q, F - 1, k);
    double scale = F > 1 ? sqrt((LATENT / 3.0) / ((F - 1.0) / F)) : 0;
    for (int v = 0; v < F; v++) {
        memset(out[v], 0, sizeof out[v]);
        for (int j = 0; j < F - 1; j++)
            for (int c = 0; c < k; c++) out[v][coord[c]] += (float)(scale * b[j][v] * q[j][c]);
    }
}

/* Topic centres. Factored: topic t = digits (a, b, c) of t in base (factors[0], factors[1],
 * factors[2]) is the sum of the text factor's value a, the image factor's b and the video
 * factor's c (gen_factor: each is zero outside its modality's blocks). */
static void gen_centers(gen_t *g, uint64_t *rng) {
    if (!g->factors[0]) {
        for (long i = 0; i < g->topics * LATENT; i++) g->center[i] = (float)rng_gauss(rng);
        return;
    }
    float f[MMR_MODALITY_COUNT][MAX_FACTOR][LATENT];
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) gen_factor(g, m, f[m], rng);
    for (long t = 0; t < g->topics; t++) {
        long a = t % g->factors[0], b = t / g->factors[0] % g->factors[1], v = t / g->factors[0] / g->factors[1];
        for (int c = 0; c < LATENT; c++) g->center[t * LATENT + c] = f[0][a][c] + f[1][b][c] + f[2][v][c];
    }
}

/* Topics, modality maps, items (written to fi) and their exposure. */
static void gen_catalog(gen_t *g, FILE *fi, uint64_t *rng) {
    gen_centers(g, rng);
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
        int seen = coords_seen(m);
        for (long i = 0; i < (long)g->dims[m] * LATENT; i++) {
            int block = (int)(i % LATENT) / BLOCK;
            g->map[m][i] = (blocks[m] >> block & 1) ? (float)(rng_gauss(rng) / sqrt(seen)) : 0.0f;
        }
    }
    for (long i = 0; i < g->items; i++) {
        float *z = &g->z[i * LATENT];
        g->topic[i] = (int)(mmr_rand_next(rng) % (uint64_t)g->topics);
        for (int c = 0; c < LATENT; c++) z[c] = g->center[g->topic[i] * LATENT + c] + (float)(ITEM_SPREAD * rng_gauss(rng));
        fprintf(fi, "{\"item_id\":\"i%ld\",\"topic\":%d", i, g->topic[i]);
        g->has_video[i] = 0;
        for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
            if (mmr_rand_uniform(rng) >= present[m]) continue;
            if (m == MMR_MODALITY_VIDEO) g->has_video[i] = 1;
            write_emb(fi, g, m, z, rng);
        }
        fputs("}\n", fi);
    }
    for (long r = 0; r < g->items; r++) g->by_pop[r] = (uint32_t)r;
    for (long r = g->items - 1; r > 0; r--) { /* Fisher-Yates: a random popularity order */
        long k = (long)(mmr_rand_next(rng) % (uint64_t)(r + 1));
        uint32_t t = g->by_pop[r];
        g->by_pop[r] = g->by_pop[k];
        g->by_pop[k] = t;
    }
    double total = 0;
    for (long r = 0; r < g->items; r++) g->cdf[r] = total += pow((double)r + 1, -g->zipf);
    for (long r = 0; r < g->items; r++) {
        g->inv_w[g->by_pop[r]] = (float)(total / pow((double)r + 1, -g->zipf));
        g->cdf[r] /= total;
    }
    g->cdf[g->items - 1] = 1.0;
}

/* An item drawn by exposure. */
static uint32_t draw_item(const gen_t *g, uint64_t *rng) {
    double x = mmr_rand_uniform(rng);
    long lo = 0, hi = g->items - 1;
    while (lo < hi) {
        long mid = (lo + hi) / 2;
        if (g->cdf[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return g->by_pop[lo];
}

/* Writes one event line and records positives for the oracle. Returns -1 out of memory. */
static int emit(gen_t *g, FILE *fe, int64_t ts, long u, uint32_t it, mmr_event_type_t type, double value,
                const char *rid, int drifted) {
    value = nearbyint(value); /* what the file says is what counts as positive */
    fprintf(fe, "%lld\tu%ld\ti%u\t%s\t%.0f\t%s\n", (long long)ts, u, it, mmr_event_type_name(type), value, rid);
    g->written++;
    mmr_event_t ev = {.type = type, .value = (float)value};
    if (!mmr_event_is_positive(&ev)) return 0;
    int added = pairset_add(&g->pos, (uint64_t)u << 32 | it);
    if (added == 1) {
        g->user[u].target = it;
        g->user[u].target_drifted = drifted;
        g->user[u].n_pos++;
    }
    return added < 0 ? -1 : 0;
}

/* Users and the event log (written to fe). Returns -1 out of memory. */
static int gen_events(gen_t *g, FILE *fe, uint64_t *rng) {
    for (long u = 0; u < g->users; u++) {
        user_t *us = &g->user[u];
        for (int c = 0; c < LATENT; c++) us->g[c] = (float)rng_gauss(rng);
        us->fav[0] = (int)(mmr_rand_next(rng) % (uint64_t)g->topics);
        us->fav[1] = (int)((us->fav[0] + 1 + mmr_rand_next(rng) % (uint64_t)(g->topics - 1)) % g->topics);
        us->fav[2] = (int)(mmr_rand_next(rng) % (uint64_t)g->topics);
        us->drift_at = (long)((0.3 + 0.4 * mmr_rand_uniform(rng)) * (double)g->events);
    }
    int64_t ts = g->start_ms;
    long session = 0;
    float p[LATENT];
    while (g->written < g->events) {
        long u = (long)(mmr_rand_next(rng) % (uint64_t)g->users);
        int drifted = g->written >= g->user[u].drift_at;
        user_pref(g, u, drifted, p);
        char rid[32];
        snprintf(rid, sizeof rid, "s%ld", session++);
        uint32_t slate[SLATE];
        for (int slot = 0; slot < SLATE && g->written < g->events; slot++) {
            uint32_t it = 0;
            int dup = 1;
            for (int tries = 0; dup && tries < 20; tries++) { /* distinct items in a slate */
                it = draw_item(g, rng);
                dup = 0;
                for (int k = 0; k < slot; k++) dup |= slate[k] == it;
            }
            slate[slot] = it;
            ts += 1 + (int64_t)(mmr_rand_next(rng) % 2000);
            if (emit(g, fe, ts, u, it, MMR_EV_IMPRESSION, 1, rid, drifted)) return -1;
            double pr = 1.0 / (1.0 + exp(-(double)click_logit(p, &g->z[(size_t)it * LATENT])));
            if (mmr_rand_uniform(rng) >= pr || g->written >= g->events) continue;
            if (emit(g, fe, ++ts, u, it, MMR_EV_CLICK, 1, rid, drifted)) return -1;
            if (g->has_video[it] && g->written < g->events &&
                emit(g, fe, ++ts, u, it, MMR_EV_WATCH, 3 + 100 * pr * (0.5 + mmr_rand_uniform(rng)), rid, drifted))
                return -1;
            if (mmr_rand_uniform(rng) < pr / 2 && g->written < g->events &&
                emit(g, fe, ++ts, u, it, MMR_EV_LIKE, 1, rid, drifted))
                return -1;
        }
    }
    return 0;
}

/* Oracle score of item j for preference p: −1 / (P(j fills a slot) · P(click | shown)) =
 * −inv_w·(1 + e^−logit), which orders items as log P(slot) + log P(click | shown) does, with
 * one exp and no log. p NULL: exposure alone (−inv_w). */
static float oracle_score(const gen_t *g, uint32_t j, const float *p) {
    return p ? -g->inv_w[j] * (1.0f + expf(-click_logit(p, &g->z[(size_t)j * LATENT]))) : -g->inv_w[j];
}

/* Rank of user u's target among unmasked items (stamp[j] == u + 1 marks u's other
 * positives). Items are visited most exposed first and the walk stops at the first whose
 * −inv_w is below the target's score: every later item scores at most its −inv_w (as
 * 1 + e^−logit ≥ 1, in float rounding too), so the rank equals mmr_eval_rank_of over the
 * whole catalogue. cand is [items + 1] floats of scratch. */
static long oracle_rank(const gen_t *g, long u, const uint32_t *stamp, const float *p, float *cand) {
    uint32_t t = g->user[u].target;
    float st = oracle_score(g, t, p);
    size_t n = 0;
    for (long r = 0; r < g->items; r++) {
        uint32_t j = g->by_pop[r];
        if (-g->inv_w[j] < st) break;
        if (j == t || stamp[j] == (uint32_t)u + 1) continue;
        cand[n++] = oracle_score(g, j, p);
    }
    cand[n] = st;
    return mmr_eval_rank_of(cand, NULL, n + 1, n);
}

static json_t *results_json(const mmr_eval_results_t *r) {
    json_t *recall = json_object(), *ndcg = json_object();
    for (size_t j = 0; j < r->n_ks; j++) {
        char k[16];
        snprintf(k, sizeof k, "%d", r->ks[j]);
        json_object_set_new(recall, k, json_real(r->recall[j]));
        json_object_set_new(ndcg, k, json_real(r->ndcg[j]));
    }
    return json_pack("{s:o, s:o, s:f}", "recall", recall, "ndcg", ndcg, "mrr", r->mrr);
}

/* The leave-one-out oracle over the recorded positives (consumes g->pos: its keys are
 * sorted in place); writes path and prints a summary. Returns 0, or -1 (message printed). */
static int gen_oracle(gen_t *g, const char *path) {
    size_t n = 0;
    for (size_t i = 0; i < g->pos.cap; i++) /* compact the keys to the front, then group by user */
        if (g->pos.slot[i] != EMPTY_KEY) g->pos.slot[n++] = g->pos.slot[i];
    qsort(g->pos.slot, n, sizeof(uint64_t), cmp_u64);
    uint32_t *stamp = calloc((size_t)g->items, sizeof(uint32_t));
    float *cand = malloc(sizeof(float) * ((size_t)g->items + 1)), p[LATENT];
    mmr_eval_acc_t *acc[2] = {NULL, NULL}; /* oracle, exposure only */
    mmr_err_t err = {0};
    size_t nk = sizeof oracle_ks / sizeof oracle_ks[0];
    if (!stamp || !cand || mmr_eval_acc_new(oracle_ks, nk, 0, &acc[0], &err) ||
        mmr_eval_acc_new(oracle_ks, nk, 0, &acc[1], &err)) {
        fprintf(stderr, "mmrec gen: oracle: out of memory\n");
        free(stamp);
        free(cand);
        mmr_eval_acc_free(acc[0]);
        return -1;
    }
    for (size_t i = 0; i < n;) {
        long u = (long)(g->pos.slot[i] >> 32);
        size_t end = i;
        while (end < n && (long)(g->pos.slot[end] >> 32) == u) stamp[(uint32_t)g->pos.slot[end++]] = (uint32_t)u + 1;
        i = end;
        if (g->user[u].n_pos < ORACLE_MIN_POSITIVES) continue;
        user_pref(g, u, g->user[u].target_drifted, p);
        long rank = oracle_rank(g, u, stamp, p, cand);
        mmr_eval_acc_add_ranks(acc[0], &rank, 1);
        rank = oracle_rank(g, u, stamp, NULL, cand);
        mmr_eval_acc_add_ranks(acc[1], &rank, 1);
    }
    mmr_eval_results_t res[2];
    mmr_eval_acc_results(acc[0], &res[0]);
    mmr_eval_acc_results(acc[1], &res[1]);
    json_t *root = json_pack(
        "{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:o, s:o}", "protocol", "leave-one-out",
        "target", "per user, the last item that became positive for the first time; the user's other positive items are masked",
        "score", "true P(item fills a slate slot) * P(click | shown), user state at the target event",
        "ties", "pessimistic", "min_user_positives", ORACLE_MIN_POSITIVES, "users", (json_int_t)res[0].users,
        "users_skipped", (json_int_t)(g->users - res[0].users), "oracle", results_json(&res[0]),
        "exposure_only", results_json(&res[1]));
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) == 0 ? 0 : -1;
    if (rc) fprintf(stderr, "mmrec gen: cannot write %s\n", path);
    else
        printf("oracle (leave-one-out, %ld users): Recall@10 %.4f NDCG@10 %.4f MRR %.4f; exposure only: Recall@10 %.4f\n",
               res[0].users, res[0].recall[2], res[0].ndcg[2], res[0].mrr, res[1].recall[2]);
    json_decref(root);
    mmr_eval_acc_free(acc[0]);
    mmr_eval_acc_free(acc[1]);
    free(stamp);
    free(cand);
    return rc;
}

static int write_meta(const gen_t *g, const char *path) {
    json_t *mods = json_object();
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
        json_t *seen = json_array();
        for (int b = 0; b < 4; b++)
            if (blocks[m] >> b & 1) json_array_append_new(seen, json_stringn(&"ABCD"[b], 1));
        json_object_set_new(mods, modality[m], json_pack("{s:i, s:f, s:f, s:o}", "dim", g->dims[m], "present",
                                                         present[m], "noise", noise[m], "latent_blocks", seen));
    }
    json_t *factors = g->factors[0] ? json_pack("[i, i, i]", g->factors[0], g->factors[1], g->factors[2]) : json_null();
    json_t *root = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:o, s:i, s:i, s:f, s:f, s:f, s:i, s:{s:f, s:f}, s:[f, f]}",
        "generator", "mmrec gen", "seed", (json_int_t)g->seed, "users", (json_int_t)g->users, "items",
        (json_int_t)g->items, "topics", (json_int_t)g->topics, "topic_factors", factors, "events_requested", (json_int_t)g->events,
        "events_written", (json_int_t)g->written, "start_ms", (json_int_t)g->start_ms, "modalities", mods,
        "latent_dim", LATENT, "latent_block", BLOCK, "item_spread", ITEM_SPREAD, "user_spread", USER_SPREAD,
        "exposure_zipf", g->zipf, "slate", SLATE, "click_logit", "alpha", ALPHA, "beta", BETA, "drift_fraction", 0.3, 0.7);
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) == 0 ? 0 : -1;
    if (rc) fprintf(stderr, "mmrec gen: cannot write %s\n", path);
    json_decref(root);
    return rc;
}

static void gen_free(gen_t *g) {
    free(g->center);
    free(g->z);
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) free(g->map[m]);
    free(g->topic);
    free(g->has_video);
    free(g->by_pop);
    free(g->cdf);
    free(g->inv_w);
    free(g->user);
    free(g->pos.slot);
}

static FILE *open_out(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, "mmrec gen: cannot write %s: %s\n", path, strerror(errno));
    else setvbuf(f, NULL, _IOFBF, 1 << 20);
    return f;
}

/* --topic-factors T,I,V into g (topics = T·I·V), checked against --topics. Returns 0 or -1. */
static int parse_factors(gen_t *g, const char *arg, const char *topics) {
    int *f = g->factors;
    if (!arg) return 0;
    char end;
    if (sscanf(arg, "%d,%d,%d%c", &f[0], &f[1], &f[2], &end) != 3) return -1;
    for (int m = 0; m < MMR_MODALITY_COUNT; m++)
        if (f[m] < 1 || f[m] > 1 + coords_seen(m) || f[m] > MAX_FACTOR) return -1;
    g->topics = (long)f[0] * f[1] * f[2];
    return topics && atol(topics) != g->topics ? -1 : 0;
}

int mmr_cli_gen(int argc, char **argv) {
    static const char *const valued[] = {"out",    "users", "items",    "topics",        "topic-factors",
                                         "events", "seed",  "dims",     "exposure-zipf", "start-ms", NULL};
    if (!mmr_cli_check_opts(argc, argv, valued, NULL)) return 2;
    const char *out = mmr_cli_opt(argc, argv, "out", NULL), *topics = mmr_cli_opt(argc, argv, "topics", NULL);
    gen_t g = {.users = atol(mmr_cli_opt(argc, argv, "users", "1000")),
               .items = atol(mmr_cli_opt(argc, argv, "items", "500")),
               .topics = atol(topics ? topics : "10"),
               .events = atol(mmr_cli_opt(argc, argv, "events", "100000")),
               .seed = strtoull(mmr_cli_opt(argc, argv, "seed", "42"), NULL, 10),
               .start_ms = strtoll(mmr_cli_opt(argc, argv, "start-ms", "1767225600000"), NULL, 10)}; /* 2026-01-01 */
    const char *zipf = mmr_cli_opt(argc, argv, "exposure-zipf", "0.7");
    char *zipf_end;
    g.zipf = strtod(zipf, &zipf_end);
    if (!out || zipf_end == zipf || *zipf_end || g.users < 1 || g.users > INT32_MAX || g.items < SLATE || g.items > INT32_MAX ||
        parse_factors(&g, mmr_cli_opt(argc, argv, "topic-factors", NULL), topics) || g.topics < 2 ||
        g.events < 1 || !(g.zipf >= 0 && g.zipf <= 4) ||
        sscanf(mmr_cli_opt(argc, argv, "dims", "384,512,512"), "%d,%d,%d", &g.dims[0], &g.dims[1], &g.dims[2]) != 3 ||
        g.dims[0] < 1 || g.dims[1] < 1 || g.dims[2] < 1) {
        fprintf(stderr, "usage: mmrec gen --out DIR [--users N>=1] [--items N>=10] [--topics N>=2 | "
                        "--topic-factors T,I,V (T 1..9, I and V 1..5, product >= 2)] [--events N>=1] [--seed S] "
                        "[--dims T,I,V] [--exposure-zipf E (0..4)] [--start-ms MS]\n");
        return 2;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mmrec gen: mkdir %s: %s\n", out, strerror(errno));
        return 1;
    }
    size_t ni = (size_t)g.items;
    g.center = malloc(sizeof(float) * (size_t)g.topics * LATENT);
    g.z = malloc(sizeof(float) * ni * LATENT);
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) g.map[m] = malloc(sizeof(float) * (size_t)g.dims[m] * LATENT);
    g.topic = malloc(sizeof(int) * ni);
    g.has_video = malloc(ni);
    g.by_pop = malloc(sizeof(uint32_t) * ni);
    g.cdf = malloc(sizeof(double) * ni);
    g.inv_w = malloc(sizeof(float) * ni);
    g.user = calloc((size_t)g.users, sizeof(user_t));
    if (!g.center || !g.z || !g.map[0] || !g.map[1] || !g.map[2] || !g.topic || !g.has_video || !g.by_pop ||
        !g.cdf || !g.inv_w || !g.user) {
        fprintf(stderr, "mmrec gen: out of memory\n");
        gen_free(&g);
        return 1;
    }
    uint64_t rng = g.seed;
    int rc = 1;
    FILE *fi = open_out(out, "items.jsonl"), *fe = fi ? open_out(out, "events.tsv") : NULL;
    if (fe) {
        gen_catalog(&g, fi, &rng);
        rc = gen_events(&g, fe, &rng) != 0;
        if (rc) fprintf(stderr, "mmrec gen: out of memory for the oracle's positives\n");
    }
    int close_failed = fi && fclose(fi) != 0;
    if (fe && fclose(fe) != 0) close_failed = 1;
    if (close_failed && !rc) {
        fprintf(stderr, "mmrec gen: write failed in %s\n", out);
        rc = 1;
    }
    if (rc == 0) {
        printf("wrote %ld items and %ld events (%ld users, %ld topics) to %s\n", g.items, g.written, g.users,
               g.topics, out);
        char path[4096];
        snprintf(path, sizeof path, "%s/meta.json", out);
        rc = write_meta(&g, path) ? 1 : 0;
        snprintf(path, sizeof path, "%s/oracle.json", out);
        if (rc == 0 && gen_oracle(&g, path) != 0) rc = 1;
    }
    gen_free(&g);
    return rc;
}
