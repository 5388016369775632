/* registry.c — model versions on disk and in `meta`, the lock-free slots readers acquire
 * models from, pin/promote/rollback, retention and experiments (see mmr_registry.h for the
 * semantics and the slot protocol). Not the RPCs (admin.c) nor the Rank path (ranker.c). */
#include "mmr_registry.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmr_crc32c.h"
#include "mmr_log.h"
#include "mmr_time.h"

#define LOG_MOD "registry"
#define N_SLOTS 16              /* loaded models at most (serving, previous, newest, arms, draining) */
#define MAX_EXPERIMENTS 16
#define NAME_MAX_LEN 63
#define STATE_KEY "model/state"
#define VERSION_PREFIX "model/v/"
#define STATE_FORMAT 1
#define RECORD_FORMAT 2           /* 1: before deltas, no base field */

/* A loaded model. version != 0: findable; version == 0 && model: draining (unloaded, waits
 * for its references); refs < 0: claimed by the writer (being filled or freed). */
typedef struct slot {
    _Atomic uint64_t version;
    _Atomic(mmr_model_t *) model;
    atomic_int_fast64_t refs;
} slot_t;

typedef struct arm {
    char name[NAME_MAX_LEN + 1];
    uint64_t version;
    uint32_t weight;
    atomic_uint_fast64_t impressions, clicks, examples;
} arm_t;

typedef struct experiment {
    char name[NAME_MAX_LEN + 1];
    int n_arms;
    uint32_t total_weight;
    arm_t arms[MMR_REGISTRY_MAX_ARMS];
} experiment_t;

/* Immutable once published (counters aside); replaced tables stay until the registry is
 * freed, so a reader holding one never sees it freed (replacements are rare: config). */
typedef struct exp_table {
    int n;
    experiment_t exps[MAX_EXPERIMENTS];
    struct exp_table *older;
} exp_table_t;

typedef struct record {
    uint64_t version;
    int64_t created_ms;
    uint64_t examples_seen;
    uint64_t base;                /* the full version a delta file is written over; 0: full */
} record_t;

struct mmr_registry {
    mmr_fstore_t *fs;
    mmr_tower_backend_t *be;
    char *dir;
    uint32_t keep;
    float delta_max;
    mmr_model_opts_t model_opts;
    slot_t slots[N_SLOTS];
    _Atomic uint64_t serving_v;   /* what readers of version 0 get */
    atomic_int pinned_v;
    _Atomic(exp_table_t *) exps;
    /* writer state, under mu */
    pthread_mutex_t mu;
    record_t *recs;               /* [n_recs] registered versions, ascending */
    size_t n_recs, cap_recs;
    uint64_t serving, previous, next;
    int pinned;
    /* deltas: dirty marks the blocks where version delta_of (the newest, 0: unknown)
     * differs from its full version delta_base */
    uint64_t delta_of, delta_base;
    uint64_t *dirty;
    size_t dirty_words;
};

/* --- records ------------------------------------------------------------------------- */

static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* version record: format (2) | created_ms (8) | examples_seen (8) | base (8); full
 * versions are written in format 1, which ends before base. state: format (1) |
 * serving (8) | previous (8) | next (8) | pinned (1). Little-endian. */
#define RECORD_LEN 25
#define RECORD_LEN_V1 17
#define STATE_LEN 26

static void version_key(char key[40], uint64_t v) { snprintf(key, 40, VERSION_PREFIX "%020" PRIu64, v); }

static void file_path(const mmr_registry_t *r, uint64_t v, char path[PATH_MAX]) {
    snprintf(path, PATH_MAX, "%s/model-%020" PRIu64 ".mmrt", r->dir, v);
}

static record_t *find_rec(mmr_registry_t *r, uint64_t v) {
    for (size_t i = 0; i < r->n_recs; i++)
        if (r->recs[i].version == v) return &r->recs[i];
    return NULL;
}

static void drop_rec(mmr_registry_t *r, uint64_t v) {
    record_t *x = find_rec(r, v);
    if (!x) return;
    memmove(x, x + 1, (size_t)(r->recs + r->n_recs - (x + 1)) * sizeof *x);
    r->n_recs--;
}

static mmr_status_t add_rec(mmr_registry_t *r, const record_t *rec, mmr_err_t *err) {
    if (r->n_recs == r->cap_recs) {
        size_t cap = r->cap_recs ? 2 * r->cap_recs : 16;
        record_t *p = realloc(r->recs, cap * sizeof *p);
        if (!p) return mmr_err_set(err, MMR_ERR_NOMEM, "registry: out of memory");
        r->recs = p;
        r->cap_recs = cap;
    }
    size_t i = r->n_recs;
    while (i && r->recs[i - 1].version > rec->version) { r->recs[i] = r->recs[i - 1]; i--; }
    r->recs[i] = *rec;
    r->n_recs++;
    return MMR_OK;
}

/* Writes state (and, when rec is given, its version record) in one meta write. */
static mmr_status_t persist(mmr_registry_t *r, const record_t *rec, uint64_t serving,
                            uint64_t previous, int pinned, uint64_t next, mmr_err_t *err) {
    uint8_t st[STATE_LEN], rv[RECORD_LEN];
    st[0] = STATE_FORMAT;
    put_u64(st + 1, serving);
    put_u64(st + 9, previous);
    put_u64(st + 17, next);
    st[25] = (uint8_t)pinned;
    mmr_fstore_meta_op_t ops[2] = {{STATE_KEY, st, sizeof st}};
    char key[40];
    if (rec) { /* a full version keeps format 1, so an older mmrecd can still open the store */
        rv[0] = rec->base ? RECORD_FORMAT : 1;
        put_u64(rv + 1, (uint64_t)rec->created_ms);
        put_u64(rv + 9, rec->examples_seen);
        put_u64(rv + 17, rec->base);
        version_key(key, rec->version);
        ops[1] = (mmr_fstore_meta_op_t){key, rv, rec->base ? RECORD_LEN : RECORD_LEN_V1};
    }
    return mmr_fstore_meta_write(r->fs, rec ? 2 : 1, ops, err);
}

static mmr_status_t unregister(mmr_registry_t *r, uint64_t v, mmr_err_t *err) {
    char key[40], path[PATH_MAX];
    version_key(key, v);
    mmr_status_t st = mmr_fstore_meta_delete(r->fs, key, err);
    if (st != MMR_OK) return st;
    drop_rec(r, v);
    file_path(r, v, path); /* record first, then file: a crash leaves an orphan file only */
    if (unlink(path) != 0 && errno != ENOENT)
        mmr_log(MMR_LOG_WARN, LOG_MOD, "remove %s: %s", path, strerror(errno));
    return MMR_OK;
}

/* --- slots (the lock-free protocol is described in mmr_registry.h) ----------------------- */

/* Frees draining slots nobody references. Writer only. */
static void reclaim(mmr_registry_t *r) {
    for (int i = 0; i < N_SLOTS; i++) {
        slot_t *s = &r->slots[i];
        int_fast64_t zero = 0;
        if (atomic_load(&s->version) || !atomic_load(&s->model)) continue;
        if (!atomic_compare_exchange_strong(&s->refs, &zero, -1)) continue;
        mmr_model_free(atomic_load(&s->model));
        atomic_store(&s->model, NULL);
        atomic_store(&s->refs, 0);
    }
}

static int slot_of(mmr_registry_t *r, uint64_t v) {
    for (int i = 0; i < N_SLOTS; i++)
        if (atomic_load(&r->slots[i].version) == v) return i;
    return -1;
}

/* Makes model (taken) findable as version v. Writer only. Errors: MMR_ERR_BUSY when every
 * slot stays referenced for 5 s. */
static mmr_status_t install(mmr_registry_t *r, uint64_t v, mmr_model_t *model, mmr_err_t *err) {
    for (int waited_ms = 0; waited_ms <= 5000; waited_ms += 10) {
        reclaim(r);
        for (int i = 0; i < N_SLOTS; i++) {
            slot_t *s = &r->slots[i];
            int_fast64_t zero = 0;
            if (atomic_load(&s->version) || atomic_load(&s->model)) continue;
            if (!atomic_compare_exchange_strong(&s->refs, &zero, -1)) continue;
            atomic_store(&s->model, model);
            atomic_store(&s->refs, 0);
            atomic_store(&s->version, v); /* now findable, with refs >= 0 and model set */
            return MMR_OK;
        }
        usleep(10 * 1000);
    }
    mmr_model_free(model);
    return mmr_err_set(err, MMR_ERR_BUSY, "registry: no free model slot (references held for 5 s)");
}

static int needed(mmr_registry_t *r, uint64_t v) {
    if (v == r->serving || v == r->previous || (r->n_recs && v == r->recs[r->n_recs - 1].version))
        return 1;
    exp_table_t *t = atomic_load(&r->exps);
    for (int e = 0; t && e < t->n; e++)
        for (int a = 0; a < t->exps[e].n_arms; a++)
            if (t->exps[e].arms[a].version == v) return 1;
    return 0;
}

/* Unloads models no longer needed (their slots drain), then frees what it can. */
static void unload_unneeded(mmr_registry_t *r) {
    for (int i = 0; i < N_SLOTS; i++) {
        uint64_t v = atomic_load(&r->slots[i].version);
        if (v && !needed(r, v)) atomic_store(&r->slots[i].version, 0);
    }
    reclaim(r);
}

/* Loads version v from its file into a slot unless it is loaded. Writer only. */
static mmr_status_t ensure_loaded(mmr_registry_t *r, uint64_t v, mmr_err_t *err) {
    if (slot_of(r, v) >= 0) return MMR_OK;
    if (!find_rec(r, v)) return mmr_err_set(err, MMR_ERR_NOT_FOUND, "model version %" PRIu64 " is not registered", v);
    char path[PATH_MAX];
    file_path(r, v, path);
    mmr_tower_t *t = NULL;
    mmr_status_t st = mmr_tower_load(path, &t, err);
    mmr_model_t *m = NULL;
    if (st == MMR_OK) st = mmr_model_new_opts(t, r->fs, r->be, &r->model_opts, &m, err);
    if (st == MMR_OK) st = install(r, v, m, err);
    return st;
}

static void publish_serving(mmr_registry_t *r) {
    atomic_store(&r->serving_v, r->serving);
    atomic_store(&r->pinned_v, r->pinned);
}

/* --- open / free ------------------------------------------------------------------------- */

static int load_rec(void *opaque, const char *key, const void *val, size_t len) {
    void **ctx = opaque;
    mmr_registry_t *r = ctx[0];
    mmr_err_t *err = ctx[1];
    mmr_status_t *st = ctx[2];
    const uint8_t *p = val;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(key + strlen(VERSION_PREFIX), &end, 10);
    int v1 = len == RECORD_LEN_V1 && p[0] == 1;
    if (*end || errno || v == 0 || (!v1 && (len != RECORD_LEN || p[0] != RECORD_FORMAT))) {
        *st = mmr_err_set(err, MMR_ERR_CORRUPT, "registry: meta record '%s' is malformed", key);
        return 1;
    }
    record_t rec = {v, (int64_t)get_u64(p + 1), get_u64(p + 9), v1 ? 0 : get_u64(p + 17)};
    return (*st = add_rec(r, &rec, err)) != MMR_OK;
}

/* Removes model files without a record (crash between writing and registering) and
 * temp files of interrupted saves; returns the highest version number seen in a name. */
static uint64_t sweep_files(mmr_registry_t *r) {
    DIR *d = opendir(r->dir);
    uint64_t max_v = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long long v;
        int n = 0;
        if (sscanf(e->d_name, "model-%20llu.mmrt%n", &v, &n) != 1 || n == 0) continue;
        if (v > max_v) max_v = v;
        if (e->d_name[n] == '\0' && find_rec(r, v)) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
        mmr_log(MMR_LOG_WARN, LOG_MOD, "removing %s: not a registered version (interrupted publish)", path);
        unlink(path);
    }
    closedir(d);
    return max_v;
}

mmr_status_t mmr_registry_open(const mmr_registry_conf_t *conf, mmr_fstore_t *fs,
                               mmr_registry_t **out, mmr_err_t *err) {
    *out = NULL;
    if (!conf->model_dir || !*conf->model_dir)
        return mmr_err_set(err, MMR_ERR_INVALID, "registry: model_dir is required");
    if (mkdir(conf->model_dir, 0755) != 0 && errno != EEXIST)
        return mmr_err_set(err, MMR_ERR_IO, "registry: mkdir %s: %s", conf->model_dir, strerror(errno));
    mmr_registry_t *r = calloc(1, sizeof *r);
    if (!r || !(r->dir = strdup(conf->model_dir))) {
        free(r);
        return mmr_err_set(err, MMR_ERR_NOMEM, "registry: out of memory");
    }
    r->fs = fs;
    r->be = conf->be;
    r->keep = conf->keep ? conf->keep : 10;
    r->delta_max = conf->delta_max;
    r->model_opts = conf->model_opts ? *conf->model_opts : mmr_model_opts_default();
    pthread_mutex_init(&r->mu, NULL);

    mmr_status_t st = MMR_OK;
    void *ctx[3] = {r, err, &st};
    mmr_status_t ist = mmr_fstore_meta_iter(fs, VERSION_PREFIX, load_rec, ctx, err);
    if (st == MMR_OK) st = ist;
    void *val = NULL;
    size_t len = 0;
    if (st == MMR_OK) {
        mmr_status_t g = mmr_fstore_meta_get(fs, STATE_KEY, &val, &len, err);
        if (g == MMR_OK && (len != STATE_LEN || ((uint8_t *)val)[0] != STATE_FORMAT))
            st = mmr_err_set(err, MMR_ERR_CORRUPT, "registry: meta '%s' is malformed", STATE_KEY);
        else if (g == MMR_OK) {
            const uint8_t *p = val;
            r->serving = get_u64(p + 1);
            r->previous = get_u64(p + 9);
            r->next = get_u64(p + 17);
            r->pinned = p[25];
        } else if (g != MMR_ERR_NOT_FOUND)
            st = g;
        free(val);
    }
    if (st != MMR_OK) {
        mmr_registry_free(r);
        return st;
    }
    uint64_t max_file = sweep_files(r);
    /* a registered version without its file cannot serve: unregister it */
    for (size_t i = r->n_recs; st == MMR_OK && i-- > 0;) {
        char path[PATH_MAX];
        file_path(r, r->recs[i].version, path);
        if (access(path, R_OK) == 0) continue;
        mmr_log(MMR_LOG_WARN, LOG_MOD, "version %" PRIu64 ": %s: %s; unregistered", r->recs[i].version,
                path, strerror(errno));
        st = unregister(r, r->recs[i].version, err);
    }
    /* nor a delta whose base is gone (bases are full files: one pass) */
    for (size_t i = r->n_recs; st == MMR_OK && i-- > 0;) {
        if (!r->recs[i].base || find_rec(r, r->recs[i].base)) continue;
        mmr_log(MMR_LOG_WARN, LOG_MOD, "version %" PRIu64 ": its base, version %" PRIu64 ", is gone; unregistered",
                r->recs[i].version, r->recs[i].base);
        st = unregister(r, r->recs[i].version, err);
    }
    uint64_t max_rec = r->n_recs ? r->recs[r->n_recs - 1].version : 0;
    if (r->next <= max_rec) r->next = max_rec + 1;
    if (r->next <= max_file) r->next = max_file + 1;
    if (r->next == 0) r->next = 1;

    /* serve the recorded version, else the newest that loads; what cannot load is
     * unregistered, so the loop ends */
    while (st == MMR_OK) {
        uint64_t want = find_rec(r, r->serving) ? r->serving : r->n_recs ? r->recs[r->n_recs - 1].version : 0;
        if (!want) break;
        mmr_err_t le = {0};
        mmr_status_t ls = ensure_loaded(r, want, &le);
        if (ls == MMR_OK) break;
        if (ls != MMR_ERR_IO && ls != MMR_ERR_CORRUPT) {
            st = mmr_err_set(err, ls, "registry: loading version %" PRIu64 ": %s", want, le.msg);
            break;
        }
        mmr_log(MMR_LOG_WARN, LOG_MOD, "version %" PRIu64 " cannot be loaded (%s); unregistered", want, le.msg);
        st = unregister(r, want, err);
    }
    if (st == MMR_OK) {
        uint64_t serving = 0;
        for (int i = 0; i < N_SLOTS; i++) serving = serving ? serving : atomic_load(&r->slots[i].version);
        if (serving != r->serving) {
            mmr_log(MMR_LOG_WARN, LOG_MOD, "serving version %" PRIu64 " instead of %" PRIu64 "%s", serving,
                    r->serving, r->pinned ? " (pin dropped)" : "");
            r->pinned = 0;
        }
        r->serving = serving;
        if (!find_rec(r, r->previous) || r->previous == r->serving) r->previous = 0;
        st = persist(r, NULL, r->serving, r->previous, r->pinned, r->next, err);
    }
    if (st != MMR_OK) {
        mmr_registry_free(r);
        return st;
    }
    publish_serving(r);
    mmr_log(MMR_LOG_INFO, LOG_MOD, "%zu versions registered in %s, serving %" PRIu64 "%s", r->n_recs, r->dir,
            r->serving, r->pinned ? " (pinned)" : "");
    *out = r;
    return MMR_OK;
}

void mmr_registry_free(mmr_registry_t *r) {
    if (!r) return;
    for (int i = 0; i < N_SLOTS; i++) mmr_model_free(atomic_load(&r->slots[i].model));
    for (exp_table_t *t = atomic_load(&r->exps), *o; t; t = o) {
        o = t->older;
        free(t);
    }
    pthread_mutex_destroy(&r->mu);
    free(r->dirty);
    free(r->recs);
    free(r->dir);
    free(r);
}

/* --- writer side --------------------------------------------------------------------------- */

static int is_base(const mmr_registry_t *r, uint64_t v) {
    for (size_t i = 0; i < r->n_recs; i++)
        if (r->recs[i].base == v) return 1;
    return 0;
}

/* Deletes versions older than the newest `keep` that nothing needs, nor holds as its base.
 * Failures are logged: retention retries on the next publish. */
static void retain(mmr_registry_t *r) {
    if (r->n_recs <= r->keep) return;
    /* newest first: a delta goes before its base (always older) is looked at */
    for (size_t i = r->n_recs - r->keep; i-- > 0;) {
        uint64_t v = r->recs[i].version;
        if (needed(r, v) || slot_of(r, v) >= 0 || is_base(r, v)) continue;
        mmr_err_t e = {0};
        if (unregister(r, v, &e) != MMR_OK) {
            mmr_log(MMR_LOG_WARN, LOG_MOD, "retention: version %" PRIu64 ": %s", v, e.msg);
            return;
        }
    }
}

/* The version tower can be written as a delta over (0: none, write a full file): the full
 * version under the newest, when the newest is loaded and the blocks changed since that
 * full version, which r->dirty then holds, stay within delta_max of the model. */
static uint64_t delta_base_for(mmr_registry_t *r, const mmr_tower_t *tower) {
    uint64_t newest = r->n_recs ? r->recs[r->n_recs - 1].version : 0;
    int s = newest ? slot_of(r, newest) : -1;
    if (r->delta_max <= 0 || !newest || r->delta_of != newest || s < 0 || !find_rec(r, r->delta_base) ||
        mmr_tower_delta_words(tower) != r->dirty_words)
        return 0;
    const mmr_tower_t *prev = mmr_model_tower(atomic_load(&r->slots[s].model));
    size_t n = mmr_tower_delta_mark(prev, tower, r->dirty);
    size_t blocks = (mmr_tower_param_count(tower) + MMR_TOWER_DELTA_BLOCK - 1) / MMR_TOWER_DELTA_BLOCK;
    if (n == SIZE_MAX || (double)n > r->delta_max * (double)blocks) return 0;
    /* never a delta larger than the full file (delta_max near 1) */
    return n * (MMR_TOWER_DELTA_BLOCK * sizeof(float) + 4) < mmr_tower_param_count(tower) * sizeof(float)
               ? r->delta_base
               : 0;
}

/* After version v (over base, 0: full) is registered: the dirty set describes it. */
static void delta_track(mmr_registry_t *r, uint64_t v, uint64_t base, const mmr_tower_t *tower) {
    r->delta_of = 0;
    if (r->delta_max <= 0) return;
    if (!base) {
        size_t words = mmr_tower_delta_words(tower);
        if (words != r->dirty_words) {
            free(r->dirty);
            r->dirty_words = 0;
            if (!(r->dirty = malloc(words * sizeof *r->dirty))) return; /* next publish: full */
            r->dirty_words = words;
        }
        memset(r->dirty, 0, words * sizeof *r->dirty);
        r->delta_base = v;
    }
    r->delta_of = v;
}

mmr_status_t mmr_registry_publish(mmr_registry_t *r, mmr_tower_t *tower, uint64_t examples_seen,
                                  uint64_t *version, mmr_err_t *err) {
    pthread_mutex_lock(&r->mu);
    uint64_t v = r->next;
    char path[PATH_MAX], base_path[PATH_MAX];
    file_path(r, v, path);
    mmr_model_t *m = NULL;
    uint64_t base = delta_base_for(r, tower);
    if (base) file_path(r, base, base_path);
    mmr_status_t st = base ? mmr_tower_save_delta(tower, path, base_path, r->dirty, err)
                           : mmr_tower_save(tower, path, err);
    if (st != MMR_OK) mmr_tower_free(tower);
    if (st == MMR_OK) st = mmr_model_new_opts(tower, r->fs, r->be, &r->model_opts, &m, err);
    if (st == MMR_OK) st = install(r, v, m, err); /* findable by version only: not registered yet */
    record_t rec = {v, mmr_now_ms(), examples_seen, base};
    uint64_t serving = r->pinned ? r->serving : v;
    uint64_t previous = r->pinned ? r->previous : r->serving;
    if (st == MMR_OK) st = persist(r, &rec, serving, previous, r->pinned, v + 1, err);
    /* NOMEM here: the record is on disk but the file goes below; reopen unregisters it */
    if (st == MMR_OK) st = add_rec(r, &rec, err);
    if (st != MMR_OK) {
        int s = slot_of(r, v);
        if (s >= 0) atomic_store(&r->slots[s].version, 0);
        reclaim(r);
        if (!find_rec(r, v)) unlink(path);
        pthread_mutex_unlock(&r->mu);
        return st;
    }
    r->next = v + 1;
    r->serving = serving;
    r->previous = previous;
    delta_track(r, v, base, mmr_model_tower(m));
    publish_serving(r);
    unload_unneeded(r);
    retain(r);
    char over[48] = "";
    if (base) snprintf(over, sizeof over, ", a delta over %" PRIu64, base);
    mmr_log(MMR_LOG_INFO, LOG_MOD, "published version %" PRIu64 " (%" PRIu64 " examples%s)%s", v, examples_seen,
            over, r->pinned ? ", serving stays pinned" : ", serving");
    pthread_mutex_unlock(&r->mu);
    if (version) *version = v;
    return MMR_OK;
}

/* serving = v (loaded first), pinned as given; previous = the old serving. */
static mmr_status_t switch_to(mmr_registry_t *r, uint64_t v, int pinned, uint64_t previous_after,
                              uint64_t *previous, mmr_err_t *err) {
    pthread_mutex_lock(&r->mu);
    uint64_t old = r->serving;
    mmr_status_t st = ensure_loaded(r, v, err);
    if (!previous_after) previous_after = v == old ? r->previous : old;
    if (st == MMR_OK) st = persist(r, NULL, v, previous_after, pinned, r->next, err);
    if (st == MMR_OK) {
        r->serving = v;
        r->previous = previous_after;
        r->pinned = pinned;
        publish_serving(r);
        mmr_log(MMR_LOG_INFO, LOG_MOD, "serving version %" PRIu64 "%s (was %" PRIu64 ")", v,
                pinned ? " pinned" : "", old);
        if (previous) *previous = old;
    }
    unload_unneeded(r);
    pthread_mutex_unlock(&r->mu);
    return st;
}

mmr_status_t mmr_registry_promote(mmr_registry_t *r, uint64_t version, uint64_t *previous,
                                  mmr_err_t *err) {
    return switch_to(r, version, 0, 0, previous, err);
}

mmr_status_t mmr_registry_pin(mmr_registry_t *r, uint64_t version, uint64_t *previous,
                              mmr_err_t *err) {
    return switch_to(r, version, 1, 0, previous, err);
}

mmr_status_t mmr_registry_unpin(mmr_registry_t *r, mmr_err_t *err) {
    pthread_mutex_lock(&r->mu);
    mmr_status_t st = persist(r, NULL, r->serving, r->previous, 0, r->next, err);
    if (st == MMR_OK) {
        r->pinned = 0;
        publish_serving(r);
    }
    pthread_mutex_unlock(&r->mu);
    return st;
}

mmr_status_t mmr_registry_rollback(mmr_registry_t *r, uint64_t *previous, mmr_err_t *err) {
    pthread_mutex_lock(&r->mu);
    uint64_t target = r->previous, from = r->serving;
    pthread_mutex_unlock(&r->mu);
    if (!target || !from)
        return mmr_err_set(err, MMR_ERR_NOT_FOUND, "rollback: no previous serving version");
    /* the writer mutex is not held across: a concurrent change makes this a plain pin */
    return switch_to(r, target, 1, from, previous, err);
}

mmr_status_t mmr_registry_list(mmr_registry_t *r, mmr_model_info_t **out, size_t *n,
                               mmr_err_t *err) {
    pthread_mutex_lock(&r->mu);
    *n = r->n_recs;
    *out = calloc(r->n_recs ? r->n_recs : 1, sizeof **out);
    for (size_t i = 0; *out && i < r->n_recs; i++) {
        const record_t *x = &r->recs[i];
        (*out)[i] = (mmr_model_info_t){x->version, x->created_ms, x->examples_seen,
                                       x->version == r->serving, x->version == r->serving && r->pinned,
                                       slot_of(r, x->version) >= 0};
    }
    pthread_mutex_unlock(&r->mu);
    if (!*out) return mmr_err_set(err, MMR_ERR_NOMEM, "registry: out of memory");
    return MMR_OK;
}

uint64_t mmr_registry_serving(const mmr_registry_t *r, int *pinned) {
    mmr_registry_t *w = (mmr_registry_t *)r; /* atomics are read only */
    if (pinned) *pinned = atomic_load(&w->pinned_v);
    return atomic_load(&w->serving_v);
}

/* --- reader side --------------------------------------------------------------------------- */

/* One pass over the slots; 1 with *ref filled when v was found and referenced. */
static int try_acquire(mmr_registry_t *r, uint64_t v, mmr_model_ref_t *ref) {
    for (int i = 0; i < N_SLOTS; i++) {
        slot_t *s = &r->slots[i];
        if (atomic_load(&s->version) != v) continue;
        int_fast64_t c = atomic_load(&s->refs);
        int got = 0;
        while (c >= 0 && !(got = atomic_compare_exchange_weak(&s->refs, &c, c + 1))) {}
        if (!got) continue; /* claimed by the writer: not v's slot any more */
        if (atomic_load(&s->version) == v) {
            ref->model = atomic_load(&s->model);
            ref->version = v;
            ref->slot = i;
            return 1;
        }
        atomic_fetch_sub(&s->refs, 1); /* reused for another version meanwhile */
    }
    return 0;
}

mmr_status_t mmr_registry_acquire(mmr_registry_t *r, uint64_t version, mmr_model_ref_t *ref,
                                  mmr_err_t *err) {
    for (;;) {
        uint64_t v = version ? version : atomic_load(&r->serving_v);
        if (!v) return mmr_err_set(err, MMR_ERR_NOT_FOUND, "no model version is serving");
        if (try_acquire(r, v, ref)) return MMR_OK;
        /* serving moved on between reading it and finding its slot: try the new one */
        if (!version && atomic_load(&r->serving_v) != v) continue;
        return mmr_err_set(err, MMR_ERR_NOT_FOUND, "model version %" PRIu64 " is not loaded", v);
    }
}

void mmr_registry_release(mmr_registry_t *r, mmr_model_ref_t *ref) {
    if (!ref->model) return;
    atomic_fetch_sub(&r->slots[ref->slot].refs, 1);
    ref->model = NULL;
}

/* --- experiments ------------------------------------------------------------------------------ */

static int valid_name(const char *s, size_t n) {
    if (n == 0 || n > NAME_MAX_LEN) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return 0;
    return 1;
}

/* Parses one "arm:version:weight" of experiment e. */
static mmr_status_t parse_arm(experiment_t *e, const char *s, size_t n, mmr_err_t *err) {
    char buf[160];
    if (n >= sizeof buf) return mmr_err_set(err, MMR_ERR_INVALID, "experiment %s: arm '%.40s...' too long", e->name, s);
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *c1 = strchr(buf, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *end;
    if (!c1 || !c2)
        return mmr_err_set(err, MMR_ERR_INVALID, "experiment %s: arm '%s' is not arm:version:weight", e->name, buf);
    if (e->n_arms == MMR_REGISTRY_MAX_ARMS)
        return mmr_err_set(err, MMR_ERR_INVALID, "experiment %s: more than %d arms", e->name, MMR_REGISTRY_MAX_ARMS);
    arm_t *a = &e->arms[e->n_arms];
    if (!valid_name(buf, (size_t)(c1 - buf)))
        return mmr_err_set(err, MMR_ERR_INVALID, "experiment %s: arm name '%.*s' must be 1..%d of [A-Za-z0-9_.-]",
                           e->name, (int)(c1 - buf), buf, NAME_MAX_LEN);
    memcpy(a->name, buf, (size_t)(c1 - buf));
    a->name[c1 - buf] = '\0';
    for (int i = 0; i < e->n_arms; i++)
        if (!strcmp(e->arms[i].name, a->name))
            return mmr_err_set(err, MMR_ERR_INVALID, "experiment %s: arm %s given twice", e->name, a->name);
    *c2 = '\0';
    errno = 0;
    unsigned long long v = strtoull(c1 + 1, &end, 10);
    if (*end || errno || v == 0 || c1[1] == '-')
        return mmr_err_set(err, MMR_ERR_INVALID, "experiment %s: arm %s: version '%s' is not a positive integer",
                           e->name, a->name, c1 + 1);
    long w = strtol(c2 + 1, &end, 10);
    if (*end || c2[1] == '\0' || w < 1 || w > 1000000)
        return mmr_err_set(err, MMR_ERR_INVALID, "experiment %s: arm %s: weight '%s' is not in 1..1000000",
                           e->name, a->name, c2 + 1);
    a->version = v;
    a->weight = (uint32_t)w;
    e->total_weight += a->weight;
    e->n_arms++;
    return MMR_OK;
}

static mmr_status_t parse_experiments(exp_table_t *t, const char *spec, mmr_err_t *err) {
    for (const char *p = spec; p && *p;) {
        const char *semi = strchr(p, ';'), *stop = semi ? semi : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (stop == p) { p = semi + 1; continue; } /* empty entry (trailing ';') */
        if (!eq) return mmr_err_set(err, MMR_ERR_INVALID, "experiments: '%.*s' is not name=arms", (int)(stop - p), p);
        if (t->n == MAX_EXPERIMENTS)
            return mmr_err_set(err, MMR_ERR_INVALID, "experiments: more than %d", MAX_EXPERIMENTS);
        experiment_t *e = &t->exps[t->n];
        if (!valid_name(p, (size_t)(eq - p)))
            return mmr_err_set(err, MMR_ERR_INVALID, "experiments: name '%.*s' must be 1..%d of [A-Za-z0-9_.-]",
                               (int)(eq - p), p, NAME_MAX_LEN);
        memcpy(e->name, p, (size_t)(eq - p));
        for (int i = 0; i < t->n; i++)
            if (!strcmp(t->exps[i].name, e->name))
                return mmr_err_set(err, MMR_ERR_INVALID, "experiments: %s given twice", e->name);
        for (const char *a = eq + 1; a <= stop;) {
            const char *comma = memchr(a, ',', (size_t)(stop - a)), *ae = comma ? comma : stop;
            mmr_status_t st = parse_arm(e, a, (size_t)(ae - a), err);
            if (st != MMR_OK) return st;
            a = ae + 1;
        }
        t->n++;
        p = semi ? semi + 1 : stop;
    }
    return MMR_OK;
}

mmr_status_t mmr_registry_set_experiments(mmr_registry_t *r, const char *spec, mmr_err_t *err) {
    exp_table_t *t = calloc(1, sizeof *t);
    if (!t) return mmr_err_set(err, MMR_ERR_NOMEM, "registry: out of memory");
    mmr_status_t st = parse_experiments(t, spec, err);
    pthread_mutex_lock(&r->mu);
    uint64_t distinct[N_SLOTS];
    int nd = 0;
    for (int e = 0; st == MMR_OK && e < t->n; e++)
        for (int a = 0; st == MMR_OK && a < t->exps[e].n_arms; a++) {
            uint64_t v = t->exps[e].arms[a].version;
            int seen = 0;
            for (int i = 0; i < nd; i++) seen |= distinct[i] == v;
            if (seen) continue;
            if (nd == N_SLOTS - 4) /* room for serving, previous, newest and a publish */
                st = mmr_err_set(err, MMR_ERR_INVALID, "experiments: more than %d distinct versions", N_SLOTS - 4);
            else {
                mmr_err_t le = {0};
                if ((st = ensure_loaded(r, v, &le)) != MMR_OK)
                    mmr_err_set(err, st, "experiment %s, arm %s: %s", t->exps[e].name,
                                t->exps[e].arms[a].name, le.msg);
            }
            distinct[nd++] = v;
        }
    if (st == MMR_OK) {
        t->older = atomic_load(&r->exps);
        atomic_store(&r->exps, t);
        mmr_log(MMR_LOG_INFO, LOG_MOD, "%d experiments set", t->n);
    } else {
        free(t);
    }
    unload_unneeded(r);
    pthread_mutex_unlock(&r->mu);
    return st;
}

static experiment_t *find_experiment(exp_table_t *t, const char *name, size_t n) {
    for (int e = 0; t && e < t->n; e++)
        if (strlen(t->exps[e].name) == n && !strncmp(t->exps[e].name, name, n)) return &t->exps[e];
    return NULL;
}

mmr_status_t mmr_registry_assign(mmr_registry_t *r, const char *experiment, const char *user_id,
                                 mmr_registry_arm_t *out, mmr_err_t *err) {
    experiment_t *e = find_experiment(atomic_load(&r->exps), experiment, strlen(experiment));
    if (!e) return mmr_err_set(err, MMR_ERR_NOT_FOUND, "no experiment '%.64s'", experiment);
    uint32_t h = mmr_crc32c(0, user_id, strlen(user_id)) % e->total_weight;
    int a = 0;
    while (h >= e->arms[a].weight) h -= e->arms[a++].weight;
    *out = (mmr_registry_arm_t){e->name, e->arms[a].name, e->arms[a].version, e->arms[a].weight};
    return MMR_OK;
}

static arm_t *find_arm(mmr_registry_t *r, const char *tag) {
    const char *slash = tag ? strchr(tag, '/') : NULL;
    experiment_t *e = slash ? find_experiment(atomic_load(&r->exps), tag, (size_t)(slash - tag)) : NULL;
    for (int a = 0; e && a < e->n_arms; a++)
        if (!strcmp(e->arms[a].name, slash + 1)) return &e->arms[a];
    return NULL;
}

void mmr_registry_count_impressions(mmr_registry_t *r, const char *arm_tag, uint64_t n) {
    arm_t *a = find_arm(r, arm_tag);
    if (a) atomic_fetch_add(&a->impressions, n);
}

void mmr_registry_count_example(mmr_registry_t *r, const char *arm_tag, int positive) {
    arm_t *a = find_arm(r, arm_tag);
    if (!a) return;
    atomic_fetch_add(&a->examples, 1);
    if (positive) atomic_fetch_add(&a->clicks, 1);
}

size_t mmr_registry_experiment_stats(mmr_registry_t *r, mmr_registry_arm_stats_t *out, size_t cap) {
    exp_table_t *t = atomic_load(&r->exps);
    size_t n = 0;
    for (int e = 0; t && e < t->n; e++)
        for (int a = 0; a < t->exps[e].n_arms; a++, n++) {
            if (n >= cap) continue;
            const arm_t *x = &t->exps[e].arms[a];
            mmr_registry_arm_stats_t *s = &out[n];
            snprintf(s->experiment, sizeof s->experiment, "%s", t->exps[e].name);
            snprintf(s->arm, sizeof s->arm, "%s", x->name);
            s->version = x->version;
            s->weight = x->weight;
            s->impressions = atomic_load(&x->impressions);
            s->clicks = atomic_load(&x->clicks);
            s->examples = atomic_load(&x->examples);
        }
    return n;
}
