/* trainer.c — the online trainer loop of mmr_trainer.h: validates each example and copies it
 * into a pending mini-batch (history items through an item-vector cache), runs one
 * mmr_tower_train_step per full batch, snapshots, and writes / reads checkpoints.
 * Not in here: the math (tower_cpu.c), the optimizers (tower.c), label joining, Kafka.
 *
 * Checkpoint layout (little-endian), version 1:
 *   0  char[8]  magic "MMRTCKP1"
 *   8  u32      format version (1)
 *   12 u32      header size (80)
 *   16 u64[3]   stats: examples, positives, steps
 *   40 f32[2]   stats: last_loss, loss_ewma
 *   48 u32      flags: bit 0 = Adagrad accumulators present
 *   52 u32      reserved, 0
 *   56 u64      item-vector cache entries (n)
 *   64 u64      caller blob bytes
 *   72 u32      CRC32C of the state section
 *   76 u32      CRC32C of bytes [0, 76)
 *   80          model image: a whole model file as mmr_tower_save writes it (own checksums)
 *   then the state section:
 *               [flag 0] f32 Adagrad accumulators: dense (n_dense), item rows (n_item_ids),
 *                        user rows (n_user_ids)
 *               u64 cache keys (n), f32 cache vectors (n, D), in insertion order
 *               caller blob
 * The cache is state, not a mere speed-up: history vectors encoded with older weights are
 * used until the next snapshot or refresh empties it (or it fills up and clears itself), so
 * a resumed trainer needs them to continue bit
 * for bit. The file is written with tower_file.c's atomic writer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_crc32c.h"
#include "mmr_rand.h"
#include "tower_impl.h"

#define DEFAULT_BATCH 256
#define MAX_BATCH (1 << 16)
#define DEFAULT_CACHE 65536
#define MAX_CACHE ((size_t)1 << 24)
#define LOSS_ALPHA 0.05f

#define CKPT_MAGIC "MMRTCKP1"
#define CKPT_VERSION 1u
#define CKPT_HEADER 80
#define CKPT_ADAGRAD 1u

/* --- item-vector cache --------------------------------------------------------------- */

/* Open addressing with linear probing over 2^k slots (at least twice max, so probes stay
 * short); entries live densely in insertion order. When full it is cleared rather than
 * evicting one entry at a time: no deletion means no tombstones, a clear costs one
 * re-encode per item still in use (amortised over max misses), and the state stays a list
 * in insertion order that a checkpoint stores and a reload replays exactly. */
typedef struct item_cache {
    size_t max, n; /* entries allowed / held */
    size_t mask;   /* slots - 1 */
    int D;
    int32_t *slot;  /* (mask + 1) entry index, or -1 */
    uint64_t *keys; /* (max) */
    float *vecs;    /* (max, D) */
} item_cache_t;

static size_t cache_home(const item_cache_t *c, uint64_t key) {
    uint64_t s = key; // splitmix64 as the mixer: callers' keys may be small integers
    return (size_t)mmr_rand_next(&s) & c->mask;
}

static void cache_clear(item_cache_t *c) {
    memset(c->slot, 0xff, (c->mask + 1) * sizeof(int32_t)); // every slot -1
    c->n = 0;
}

static mmr_status_t cache_init(item_cache_t *c, size_t max, int D, mmr_err_t *err) {
    size_t slots = 2;
    while (slots < 2 * max) slots *= 2;
    *c = (item_cache_t){.max = max, .mask = slots - 1, .D = D};
    c->slot = malloc(slots * sizeof(int32_t));
    c->keys = malloc(max * sizeof(uint64_t));
    c->vecs = malloc(max * (size_t)D * sizeof(float));
    if (!c->slot || !c->keys || !c->vecs)
        return mmr_err_set(err, MMR_ERR_NOMEM, "trainer: out of memory for %zu cached items",
                           max);
    cache_clear(c);
    return MMR_OK;
}

static void cache_free(item_cache_t *c) {
    free(c->slot), free(c->keys), free(c->vecs);
}

/* The cached vector (D) of key, or NULL. Valid until the next cache_put / clear. */
static const float *cache_get(const item_cache_t *c, uint64_t key) {
    for (size_t i = cache_home(c, key);; i = (i + 1) & c->mask) {
        int32_t e = c->slot[i];
        if (e < 0) return NULL;
        if (c->keys[e] == key) return c->vecs + (size_t)e * c->D;
    }
}

static void cache_put(item_cache_t *c, uint64_t key, const float *vec) {
    size_t i = cache_home(c, key);
    for (; c->slot[i] >= 0; i = (i + 1) & c->mask)
        if (c->keys[c->slot[i]] == key) break;
    int32_t e = c->slot[i];
    if (e < 0) {
        if (c->n == c->max) {
            cache_clear(c);
            i = cache_home(c, key);
        }
        e = (int32_t)c->n++;
        c->slot[i] = e;
        c->keys[e] = key;
    }
    memcpy(c->vecs + (size_t)e * c->D, vec, (size_t)c->D * sizeof(float));
}

/* --- the trainer --------------------------------------------------------------------- */

struct mmr_trainer {
    mmr_trainer_conf_t conf; /* batch_size and item_cache_max resolved */
    mmr_tower_backend_t *be; /* borrowed */
    mmr_tower_t *t;          /* owned, the weights being trained */
    mmr_trainer_stats_t stats;
    item_cache_t cache;
    /* pending mini-batch: rows [0, n) of B = conf.batch_size */
    int n;
    tower_gather_t item;  /* (B) target items */
    float *hist;          /* (B, L, D) history item vectors */
    int32_t *hist_type;   /* (B, L) */
    float *hist_age;      /* (B, L) */
    int32_t *hist_len;    /* (B) */
    int32_t *user_id;     /* (B) */
    float *pop, *rec, *label; /* (B) */
    /* cache misses of the example being added */
    tower_gather_t miss;          /* (min(L, TOWER_ENCODE_CHUNK)) encoder scratch */
    mmr_tower_item_in_t *miss_in; /* (L) */
    int *miss_slot;               /* (L) history slot of each miss */
    float *miss_vec;              /* (L, D) */
};

static mmr_status_t conf_check(const mmr_trainer_conf_t *conf, mmr_tower_backend_t *be,
                               mmr_err_t *err) {
    if (conf->batch_size < 0 || conf->batch_size > MAX_BATCH)
        return mmr_err_set(err, MMR_ERR_INVALID, "trainer: batch_size %d outside [0, %d]",
                           conf->batch_size, MAX_BATCH);
    if (conf->item_cache_max > MAX_CACHE)
        return mmr_err_set(err, MMR_ERR_INVALID, "trainer: item_cache_max %zu above %zu",
                           conf->item_cache_max, MAX_CACHE);
    if (be && !be->forward_backward)
        return mmr_err_set(err, MMR_ERR_UNSUPPORTED, "trainer: backend %s cannot train",
                           be->name);
    return tower_optim_check(&conf->optim, err);
}

void mmr_trainer_free(mmr_trainer_t *tr) {
    if (!tr) return;
    cache_free(&tr->cache);
    tower_gather_free(&tr->item);
    tower_gather_free(&tr->miss);
    free(tr->hist), free(tr->hist_type), free(tr->hist_age), free(tr->hist_len);
    free(tr->user_id), free(tr->pop), free(tr->rec), free(tr->label);
    free(tr->miss_in), free(tr->miss_slot), free(tr->miss_vec);
    mmr_tower_free(tr->t);
    free(tr);
}

/* A trainer around tower t (taken, also on failure); conf already checked. */
static mmr_status_t trainer_create(const mmr_trainer_conf_t *conf, mmr_tower_backend_t *be,
                                   mmr_tower_t *t, mmr_trainer_t **out, mmr_err_t *err) {
    mmr_trainer_t *tr = calloc(1, sizeof *tr);
    if (!tr) {
        mmr_tower_free(t);
        return mmr_err_set(err, MMR_ERR_NOMEM, "trainer: out of memory");
    }
    tr->t = t;
    tr->be = be;
    tr->conf = *conf;
    if (!tr->conf.batch_size) tr->conf.batch_size = DEFAULT_BATCH;
    if (!tr->conf.item_cache_max) tr->conf.item_cache_max = DEFAULT_CACHE;
    size_t B = (size_t)tr->conf.batch_size, L = (size_t)t->cfg.hist_len, D = (size_t)t->cfg.d_out;
    mmr_status_t st = cache_init(&tr->cache, tr->conf.item_cache_max, (int)D, err);
    if (st == MMR_OK) st = tower_gather_init(&tr->item, &t->cfg, (int)B, err);
    int miss_cap = L < TOWER_ENCODE_CHUNK ? (int)L : TOWER_ENCODE_CHUNK;
    if (st == MMR_OK) st = tower_gather_init(&tr->miss, &t->cfg, miss_cap, err);
    if (st != MMR_OK) {
        mmr_trainer_free(tr);
        return st;
    }
    tr->hist = malloc(B * L * D * sizeof(float));
    tr->hist_type = malloc(B * L * sizeof(int32_t));
    tr->hist_age = malloc(B * L * sizeof(float));
    tr->hist_len = malloc(B * sizeof(int32_t));
    tr->user_id = malloc(B * sizeof(int32_t));
    tr->pop = malloc(B * sizeof(float));
    tr->rec = malloc(B * sizeof(float));
    tr->label = malloc(B * sizeof(float));
    tr->miss_in = malloc(L * sizeof *tr->miss_in);
    tr->miss_slot = malloc(L * sizeof(int));
    tr->miss_vec = malloc(L * D * sizeof(float));
    if (!tr->hist || !tr->hist_type || !tr->hist_age || !tr->hist_len || !tr->user_id ||
        !tr->pop || !tr->rec || !tr->label || !tr->miss_in || !tr->miss_slot || !tr->miss_vec) {
        mmr_trainer_free(tr);
        return mmr_err_set(err, MMR_ERR_NOMEM, "trainer: out of memory for a batch of %zu", B);
    }
    *out = tr;
    return MMR_OK;
}

mmr_status_t mmr_trainer_new(const mmr_trainer_conf_t *conf, mmr_tower_backend_t *be,
                             mmr_trainer_t **out, mmr_err_t *err) {
    if (!conf || !out) return mmr_err_set(err, MMR_ERR_INVALID, "trainer_new: NULL argument");
    *out = NULL;
    mmr_status_t st = conf_check(conf, be, err);
    if (st != MMR_OK) return st;
    mmr_tower_t *t;
    if ((st = mmr_tower_new(&conf->tower, conf->seed, &t, err)) != MMR_OK) return st;
    return trainer_create(conf, be, t, out, err);
}

const mmr_tower_t *mmr_trainer_tower(const mmr_trainer_t *tr) { return tr->t; }

void mmr_trainer_get_stats(const mmr_trainer_t *tr, mmr_trainer_stats_t *out) {
    *out = tr->stats;
}

/* --- adding examples ----------------------------------------------------------------- */

static const char *const mod_names[MMR_TOWER_N_MOD] = {"text", "image", "video"};

/* what: "item" or "history item j" (j >= 0). */
static mmr_status_t check_item_in(const mmr_tower_config_t *c, const mmr_tower_item_in_t *in,
                                  int j, mmr_err_t *err) {
    char what[32] = "item";
    if (j >= 0) snprintf(what, sizeof what, "history item %d", j);
    for (int m = 0; m < MMR_TOWER_N_MOD; m++) {
        if (!in->x[m]) continue;
        int w = tower_width(c, m);
        for (int k = 0; k < w; k++)
            if (!isfinite(in->x[m][k]))
                return mmr_err_set(err, MMR_ERR_INVALID, "example: %s: %s[%d] is not finite",
                                   what, mod_names[m], k);
    }
    if (in->id_bucket < -1 || in->id_bucket >= c->n_item_ids)
        return mmr_err_set(err, MMR_ERR_INVALID, "example: %s: id bucket %d outside [-1, %d)",
                           what, in->id_bucket, c->n_item_ids);
    return MMR_OK;
}

/* Everything but the history items' features (read, and checked, only on a cache miss).
 * *n_hist gets the history entries used: min(hist_len, L). */
static mmr_status_t check_example(const mmr_tower_config_t *c, const mmr_example_t *ex,
                                  int *n_hist, mmr_err_t *err) {
    if (ex->hist_len < 0)
        return mmr_err_set(err, MMR_ERR_INVALID, "example: hist_len %d < 0", ex->hist_len);
    int n = ex->hist_len < c->hist_len ? ex->hist_len : c->hist_len;
    if (n > 0 && (!ex->hist || !ex->hist_type || !ex->hist_age))
        return mmr_err_set(err, MMR_ERR_INVALID, "example: hist_len %d but history arrays NULL",
                           ex->hist_len);
    for (int j = 0; j < n; j++) {
        if (ex->hist_type[j] < 0 || ex->hist_type[j] >= c->n_event_types)
            return mmr_err_set(err, MMR_ERR_INVALID, "example: history %d: event type %d "
                               "outside [0, %d)", j, ex->hist_type[j], c->n_event_types);
        if (!(ex->hist_age[j] >= 0 && ex->hist_age[j] < INFINITY))
            return mmr_err_set(err, MMR_ERR_INVALID, "example: history %d: age %g, want finite "
                               ">= 0", j, (double)ex->hist_age[j]);
    }
    if (ex->user_bucket < -1 || ex->user_bucket >= c->n_user_ids)
        return mmr_err_set(err, MMR_ERR_INVALID, "example: user bucket %d outside [-1, %d)",
                           ex->user_bucket, c->n_user_ids);
    if (!(ex->popularity >= 0 && ex->popularity < INFINITY) || !isfinite(ex->recency))
        return mmr_err_set(err, MMR_ERR_INVALID, "example: popularity %g / recency %g, want "
                           "finite (popularity >= 0)", (double)ex->popularity,
                           (double)ex->recency);
    if (!(ex->label >= 0 && ex->label <= 1))
        return mmr_err_set(err, MMR_ERR_INVALID, "example: label %g outside [0, 1]",
                           (double)ex->label);
    *n_hist = n;
    return check_item_in(c, &ex->item, -1, err);
}

/* One train step on the pending rows. They are dropped whatever the outcome: a batch that
 * failed once would fail again, and the trainer must stay usable. */
static mmr_status_t train_pending(mmr_trainer_t *tr, mmr_err_t *err) {
    int n = tr->n;
    tr->n = 0;
    mmr_tower_batch_t b = {
        .item = tower_gather_batch(&tr->item, n),
        .user = {.n = n, .hist = tr->hist, .hist_type = tr->hist_type, .hist_age = tr->hist_age,
                 .hist_len = tr->hist_len, .user_id = tr->user_id},
        .popularity = tr->pop, .recency = tr->rec, .label = tr->label};
    float loss;
    mmr_status_t st = mmr_tower_train_step(tr->t, tr->be, &b, &tr->conf.optim, &loss, err);
    if (st != MMR_OK) return st;
    mmr_trainer_stats_t *s = &tr->stats;
    s->loss_ewma = s->steps ? s->loss_ewma + LOSS_ALPHA * (loss - s->loss_ewma) : loss;
    s->last_loss = loss;
    s->steps++;
    return MMR_OK;
}

mmr_status_t mmr_trainer_add(mmr_trainer_t *tr, const mmr_example_t *ex, mmr_err_t *err) {
    if (!tr || !ex) return mmr_err_set(err, MMR_ERR_INVALID, "trainer_add: NULL argument");
    const mmr_tower_config_t *c = &tr->t->cfg;
    size_t L = (size_t)c->hist_len, D = (size_t)c->d_out, row = (size_t)tr->n;
    int n_hist = 0;
    mmr_status_t st = check_example(c, ex, &n_hist, err);
    if (st != MMR_OK) return st;
    float *hist = tr->hist + row * L * D; // (L, D) of this example
    int n_miss = 0;
    for (int j = 0; j < n_hist; j++) {
        const float *v = cache_get(&tr->cache, ex->hist[j].key);
        if (v) {
            memcpy(hist + j * D, v, D * sizeof(float));
            continue;
        }
        if ((st = check_item_in(c, &ex->hist[j], j, err)) != MMR_OK) return st;
        tr->miss_in[n_miss] = ex->hist[j];
        tr->miss_slot[n_miss++] = j;
    }
    if (n_miss > 0) {
        st = tower_encode_items_with(tr->t, tr->be, &tr->miss, (size_t)n_miss, tr->miss_in,
                                     tr->miss_vec, NULL, err);
        if (st != MMR_OK) return st;
        for (int k = 0; k < n_miss; k++) {
            const float *v = tr->miss_vec + k * D;
            cache_put(&tr->cache, tr->miss_in[k].key, v);
            memcpy(hist + tr->miss_slot[k] * D, v, D * sizeof(float));
        }
    }
    tower_gather_item(&tr->item, c, (int)row, &ex->item);
    if (n_hist > 0) {
        memcpy(tr->hist_type + row * L, ex->hist_type, (size_t)n_hist * sizeof(int32_t));
        memcpy(tr->hist_age + row * L, ex->hist_age, (size_t)n_hist * sizeof(float));
    }
    tr->hist_len[row] = n_hist;
    tr->user_id[row] = ex->user_bucket;
    tr->pop[row] = ex->popularity;
    tr->rec[row] = ex->recency;
    tr->label[row] = ex->label;
    tr->n++;
    tr->stats.examples++;
    tr->stats.positives += ex->label >= 0.5f;
    return tr->n == tr->conf.batch_size ? train_pending(tr, err) : MMR_OK;
}

mmr_status_t mmr_trainer_flush(mmr_trainer_t *tr, mmr_err_t *err) {
    if (!tr) return mmr_err_set(err, MMR_ERR_INVALID, "trainer_flush: NULL argument");
    return tr->n > 0 ? train_pending(tr, err) : MMR_OK;
}

mmr_status_t mmr_trainer_refresh(mmr_trainer_t *tr, mmr_err_t *err) {
    if (!tr) return mmr_err_set(err, MMR_ERR_INVALID, "trainer_refresh: NULL argument");
    mmr_status_t st = mmr_trainer_flush(tr, err);
    if (st == MMR_OK) cache_clear(&tr->cache); // history vectors now come from these weights
    return st;
}

mmr_status_t mmr_trainer_snapshot(mmr_trainer_t *tr, mmr_tower_t **out, mmr_err_t *err) {
    if (!tr || !out) return mmr_err_set(err, MMR_ERR_INVALID, "trainer_snapshot: NULL argument");
    *out = NULL;
    mmr_status_t st = mmr_trainer_refresh(tr, err);
    return st == MMR_OK ? mmr_tower_clone(tr->t, out, err) : st;
}

/* --- checkpoints --------------------------------------------------------------------- */

mmr_status_t mmr_trainer_checkpoint_save(mmr_trainer_t *tr, const char *path, const void *blob,
                                         size_t blob_len, mmr_err_t *err) {
    if (!tr || !path || (blob_len > 0 && !blob))
        return mmr_err_set(err, MMR_ERR_INVALID, "checkpoint_save: NULL argument");
    mmr_status_t st = mmr_trainer_flush(tr, err);
    if (st != MMR_OK) return st;
    const mmr_tower_t *t = tr->t;
    const item_cache_t *ca = &tr->cache;
    unsigned char h[CKPT_HEADER] = {0}, model[TOWER_FILE_HEADER_SIZE];
    tower_file_model_header(t, model);
    tower_iov_t iov[9] = {{h, sizeof h}, {model, sizeof model},
                          {t->params, t->n_params * sizeof(float)}};
    int n = 3;
    if (t->acc) {
        iov[n++] = (tower_iov_t){t->acc, t->n_dense * sizeof(float)};
        iov[n++] = (tower_iov_t){t->acc_rows[0], (size_t)t->cfg.n_item_ids * sizeof(float)};
        iov[n++] = (tower_iov_t){t->acc_rows[1], (size_t)t->cfg.n_user_ids * sizeof(float)};
    }
    iov[n++] = (tower_iov_t){ca->keys, ca->n * sizeof(uint64_t)};
    iov[n++] = (tower_iov_t){ca->vecs, ca->n * (size_t)ca->D * sizeof(float)};
    iov[n++] = (tower_iov_t){blob, blob_len};
    uint32_t crc = 0;
    for (int i = 3; i < n; i++) crc = mmr_crc32c(crc, iov[i].p, iov[i].n);
    const mmr_trainer_stats_t *s = &tr->stats;
    memcpy(h, CKPT_MAGIC, 8);
    tower_put_u32(h + 8, CKPT_VERSION);
    tower_put_u32(h + 12, CKPT_HEADER);
    tower_put_u64(h + 16, s->examples);
    tower_put_u64(h + 24, s->positives);
    tower_put_u64(h + 32, s->steps);
    memcpy(h + 40, &s->last_loss, 4);
    memcpy(h + 44, &s->loss_ewma, 4);
    tower_put_u32(h + 48, t->acc ? CKPT_ADAGRAD : 0);
    tower_put_u64(h + 56, ca->n);
    tower_put_u64(h + 64, blob_len);
    tower_put_u32(h + 72, crc);
    tower_put_u32(h + 76, mmr_crc32c(0, h, 76));
    return tower_file_write_atomic(path, iov, n, err);
}

/* Checks the checkpoint header h of path (the sizes it gives only against file_size). */
static mmr_status_t ckpt_parse(const char *path, const unsigned char *h, uint64_t file_size,
                               mmr_err_t *err) {
    if (memcmp(h, CKPT_MAGIC, 8) != 0)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: bad magic, not a trainer checkpoint", path);
    if (tower_get_u32(h + 76) != mmr_crc32c(0, h, 76))
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: checkpoint header checksum mismatch", path);
    if (tower_get_u32(h + 8) != CKPT_VERSION || tower_get_u32(h + 12) != CKPT_HEADER)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: checkpoint version %u (header %u bytes), "
                           "this build reads version %u", path, tower_get_u32(h + 8),
                           tower_get_u32(h + 12), CKPT_VERSION);
    if ((tower_get_u32(h + 48) & ~CKPT_ADAGRAD) != 0 || tower_get_u32(h + 52) != 0)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: unknown checkpoint flags %#x", path,
                           tower_get_u32(h + 48));
    if (tower_get_u64(h + 56) > file_size / 8 || tower_get_u64(h + 64) > file_size)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: cache or blob size beyond the file size",
                           path);
    return MMR_OK;
}

/* Reads the state section of a checkpoint into tr: Adagrad state, cache, blob. */
static mmr_status_t ckpt_read_state(tower_reader_t *r, const unsigned char *h, mmr_trainer_t *tr,
                                    void **blob_out, mmr_err_t *err) {
    mmr_tower_t *t = tr->t;
    uint64_t n = tower_get_u64(h + 56), blob_len = tower_get_u64(h + 64);
    size_t D = (size_t)t->cfg.d_out;
    mmr_status_t st = MMR_OK;
    r->crc = 0;
    if (tower_get_u32(h + 48) & CKPT_ADAGRAD) {
        if ((st = tower_adagrad_alloc(t, 0.0f, err)) != MMR_OK) return st;
        if ((st = tower_reader_read(r, t->acc, t->n_dense * sizeof(float), err)) != MMR_OK ||
            (st = tower_reader_read(r, t->acc_rows[0],
                                    (size_t)t->cfg.n_item_ids * sizeof(float), err)) != MMR_OK ||
            (st = tower_reader_read(r, t->acc_rows[1],
                                    (size_t)t->cfg.n_user_ids * sizeof(float), err)) != MMR_OK)
            return st;
    }
    uint64_t *keys = malloc(n ? n * sizeof *keys : 1);
    float *vecs = malloc(n ? n * D * sizeof *vecs : 1);
    void *blob = malloc(blob_len ? blob_len : 1);
    if (!keys || !vecs || !blob) {
        st = mmr_err_set(err, MMR_ERR_NOMEM, "%s: out of memory for the checkpoint state",
                         r->path);
        goto done;
    }
    if ((st = tower_reader_read(r, keys, n * sizeof *keys, err)) != MMR_OK ||
        (st = tower_reader_read(r, vecs, n * D * sizeof *vecs, err)) != MMR_OK ||
        (st = tower_reader_read(r, blob, blob_len, err)) != MMR_OK)
        goto done;
    if (r->crc != tower_get_u32(h + 72)) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: checkpoint state checksum mismatch",
                         r->path);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) cache_put(&tr->cache, keys[i], vecs + i * D);
    if (blob_len > 0 && blob_out) {
        *blob_out = blob;
        blob = NULL;
    }
done:
    free(keys), free(vecs), free(blob);
    return st;
}

mmr_status_t mmr_trainer_checkpoint_load(const mmr_trainer_conf_t *conf, const char *path,
                                         mmr_tower_backend_t *be, mmr_trainer_t **out,
                                         void **blob, size_t *blob_len, mmr_err_t *err) {
    if (!conf || !path || !out)
        return mmr_err_set(err, MMR_ERR_INVALID, "checkpoint_load: NULL argument");
    *out = NULL;
    if (blob) *blob = NULL;
    if (blob_len) *blob_len = 0;
    mmr_status_t st = conf_check(conf, be, err);
    if (st != MMR_OK) return st;
    tower_reader_t r;
    if ((st = tower_reader_open(&r, path, err)) != MMR_OK) return st;
    unsigned char h[CKPT_HEADER], model[TOWER_FILE_HEADER_SIZE];
    mmr_tower_config_t cfg;
    uint32_t model_crc;
    mmr_tower_t *t = NULL;
    mmr_trainer_t *tr = NULL;
    if ((st = tower_reader_read(&r, h, sizeof h, err)) != MMR_OK ||
        (st = ckpt_parse(path, h, r.size, err)) != MMR_OK ||
        (st = tower_reader_read(&r, model, sizeof model, err)) != MMR_OK ||
        (st = tower_file_model_parse(path, model, &cfg, &model_crc, err)) != MMR_OK)
        goto done;
    if (!tower_config_equal(&cfg, &conf->tower)) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: written for another tower config (d_text "
                         "%d d_out %d n_item_ids %d hist_len %d ...) than the one given", path,
                         cfg.d_text, cfg.d_out, cfg.n_item_ids, cfg.hist_len);
        goto done;
    }
    // no overflow: n_cache <= size / 8 and blob <= size (ckpt_parse), the rest from a checked
    // config (under 2^34 floats)
    uint64_t n_params = tower_config_param_count(&cfg), n_cache = tower_get_u64(h + 56);
    uint64_t n_dense = n_params - (uint64_t)(cfg.n_item_ids + cfg.n_user_ids) * cfg.d_out;
    uint64_t want = CKPT_HEADER + TOWER_FILE_HEADER_SIZE + 4 * n_params +
                    n_cache * (8 + 4 * (uint64_t)cfg.d_out) + tower_get_u64(h + 64);
    if (tower_get_u32(h + 48) & CKPT_ADAGRAD)
        want += 4 * (n_dense + (uint64_t)cfg.n_item_ids + (uint64_t)cfg.n_user_ids);
    if ((st = tower_file_read_weights(&r, &cfg, want, model_crc, &t, err)) != MMR_OK) goto done;
    st = trainer_create(conf, be, t, &tr, err);
    t = NULL; // taken
    if (st != MMR_OK || (st = ckpt_read_state(&r, h, tr, blob, err)) != MMR_OK) goto done;
    mmr_trainer_stats_t *s = &tr->stats;
    s->examples = tower_get_u64(h + 16);
    s->positives = tower_get_u64(h + 24);
    s->steps = tower_get_u64(h + 32);
    memcpy(&s->last_loss, h + 40, 4);
    memcpy(&s->loss_ewma, h + 44, 4);
    if (blob_len) *blob_len = (size_t)tower_get_u64(h + 64);
    *out = tr;
    tr = NULL;
done:
    mmr_tower_free(t);
    mmr_trainer_free(tr);
    tower_reader_close(&r);
    return st;
}
