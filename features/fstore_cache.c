/* fstore_cache.c — the hot-item cache: per item, what serving needs besides the vectors
 * (catalog flags, created_ms, stats), so a Rank does not read RocksDB for hot candidates.
 *
 * Layout: FS_CACHE_SHARDS shards, each a mutex over a fixed array of entries chained from
 * hash buckets; a full shard evicts with CLOCK (an entry read since the hand last passed
 * gets a second chance). Ids are copied (malloc) into their entries.
 *
 * Exactness: the store's single writer keeps cached entries equal to what RocksDB would
 * return (up to float rounding of the decayed popularity: RocksDB may group the merge
 * operands differently). It makes the write epoch odd, writes the WriteBatch, applies the batch's stats
 * deltas and item records to the entries that are cached, and makes the epoch even again.
 * A reader fills an entry from RocksDB only when the epoch it saw before its reads was
 * even and is unchanged when it takes the shard lock to fill: then no write began before
 * the fill, so the value read predates every delta the writer will apply later. Fills that
 * overlap a write are skipped (the next miss retries). Ids that are neither in the catalog
 * nor in the stats are not cached, so made-up candidate ids cannot push hot items out.
 *
 * Writes by another process cannot happen: RocksDB locks the database to one process. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fstore_codec.h"
#include "fstore_priv.h"
#include "mmr_hash.h"

#define FS_CACHE_SHARDS 64
#define NIL UINT32_MAX

typedef struct entry {
    char *id;      /* NULL = free */
    uint32_t len;
    uint32_t next; /* bucket chain */
    uint64_t hash;
    uint8_t ref;   /* CLOCK bit */
    mmr_item_summary_t s;
} entry_t;

typedef struct shard {
    pthread_mutex_t mu;
    entry_t *e;       /* [cap] */
    uint32_t *bucket; /* [nb], nb a power of two */
    uint32_t cap, nb, used, hand;
} shard_t;

struct mmr_fstore_cache {
    shard_t shard[FS_CACHE_SHARDS];
    _Atomic uint64_t epoch; /* odd while a write is between its RocksDB write and its apply */
    _Atomic uint64_t hits, misses;
};

static shard_t *shard_of(mmr_fstore_cache_t *c, uint64_t h) { return &c->shard[h % FS_CACHE_SHARDS]; }
static uint32_t bucket_of(const shard_t *s, uint64_t h) { return (uint32_t)(h >> 8) & (s->nb - 1); }

mmr_fstore_cache_t *mmr_fstore_cache_new(size_t capacity) {
    mmr_fstore_cache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (capacity > ((size_t)1 << 32)) capacity = (size_t)1 << 32; /* ids fit uint32 */
    uint32_t per = (uint32_t)((capacity + FS_CACHE_SHARDS - 1) / FS_CACHE_SHARDS);
    if (per < 4) per = 4;
    for (int i = 0; i < FS_CACHE_SHARDS; i++) pthread_mutex_init(&c->shard[i].mu, NULL);
    for (int i = 0; i < FS_CACHE_SHARDS; i++) {
        shard_t *s = &c->shard[i];
        for (s->nb = 4; s->nb < per; s->nb <<= 1) {}
        s->cap = per;
        s->e = calloc(per, sizeof *s->e);
        s->bucket = malloc(s->nb * sizeof *s->bucket);
        if (!s->e || !s->bucket) {
            mmr_fstore_cache_free(c);
            return NULL;
        }
        memset(s->bucket, 0xff, s->nb * sizeof *s->bucket); /* NIL */
    }
    return c;
}

void mmr_fstore_cache_free(mmr_fstore_cache_t *c) {
    if (!c) return;
    for (int i = 0; i < FS_CACHE_SHARDS; i++) {
        shard_t *s = &c->shard[i];
        for (uint32_t k = 0; s->e && k < s->cap; k++) free(s->e[k].id);
        free(s->e);
        free(s->bucket);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}

static entry_t *find(shard_t *s, const char *id, uint32_t len, uint64_t h) {
    for (uint32_t k = s->bucket[bucket_of(s, h)]; k != NIL; k = s->e[k].next) {
        entry_t *e = &s->e[k];
        if (e->hash == h && e->len == len && !memcmp(e->id, id, len)) return e;
    }
    return NULL;
}

/* A free entry, evicting with CLOCK when the shard is full; returns its index. The hand
 * moves past the slot it returns, so a new entry gets a full turn before it can go. */
static uint32_t take_slot(shard_t *s) {
    if (s->used < s->cap) {
        while (s->e[s->hand].id) s->hand = (s->hand + 1) % s->cap;
        s->used++;
    } else {
        for (;; s->hand = (s->hand + 1) % s->cap) {
            entry_t *e = &s->e[s->hand];
            if (e->ref) { e->ref = 0; continue; }
            uint32_t *link = &s->bucket[bucket_of(s, e->hash)];
            while (*link != s->hand) link = &s->e[*link].next;
            *link = e->next;
            free(e->id);
            e->id = NULL;
            break;
        }
    }
    uint32_t k = s->hand;
    s->hand = (k + 1) % s->cap;
    return k;
}

static void fill(mmr_fstore_cache_t *c, const char *id, uint32_t len, uint64_t h, uint64_t epoch,
                 const mmr_item_summary_t *sum) {
    shard_t *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    if (atomic_load(&c->epoch) == epoch) {
        entry_t *e = find(s, id, len, h);
        if (!e) {
            char *copy = malloc(len);
            if (copy) {
                memcpy(copy, id, len);
                uint32_t k = take_slot(s);
                e = &s->e[k];
                *e = (entry_t){.id = copy, .len = len, .hash = h, .next = s->bucket[bucket_of(s, h)]};
                s->bucket[bucket_of(s, h)] = k;
            }
        }
        if (e) e->s = *sum;
    }
    pthread_mutex_unlock(&s->mu);
}

mmr_status_t mmr_fstore_get_item_summaries(mmr_fstore_t *fs, size_t n, const char *const *item_ids,
                                           mmr_item_summary_t *out, mmr_err_t *err) {
    memset(out, 0, n * sizeof *out);
    mmr_fstore_cache_t *c = fs->cache;
    uint64_t epoch = atomic_load(&c->epoch); /* before any read below */
    /* miss[] holds the indexes of the candidates the cache lacked */
    size_t *miss = malloc((n ? n : 1) * (sizeof *miss + sizeof(char *)));
    if (!miss) return mmr_err_set(err, MMR_ERR_NOMEM, "get_item_summaries: out of memory");
    const char **miss_ids = (const char **)(miss + n);
    size_t nm = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = mmr_fstore_id_len(item_ids[i]);
        if (!len) {
            free(miss);
            return mmr_err_set(err, MMR_ERR_INVALID, "get_item_summaries: id %zu is NULL, empty or too long", i);
        }
        uint64_t h = mmr_hash64(item_ids[i], len);
        shard_t *s = shard_of(c, h);
        pthread_mutex_lock(&s->mu);
        entry_t *e = find(s, item_ids[i], (uint32_t)len, h);
        if (e) {
            e->ref = 1;
            out[i] = e->s;
        }
        pthread_mutex_unlock(&s->mu);
        if (!e) miss_ids[nm] = item_ids[i], miss[nm++] = i;
    }
    atomic_fetch_add_explicit(&c->hits, n - nm, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->misses, nm, memory_order_relaxed);
    mmr_status_t st = MMR_OK;
    if (nm) {
        mmr_item_stats_t *stats = malloc(nm * (sizeof *stats + 1));
        char **vals = NULL;
        size_t *lens = NULL;
        if (!stats) st = mmr_err_set(err, MMR_ERR_NOMEM, "get_item_summaries: out of memory");
        uint8_t *found = (uint8_t *)(stats + nm);
        if (st == MMR_OK) st = mmr_fstore_get_item_stats(fs, nm, miss_ids, stats, found, err);
        if (st == MMR_OK) st = mmr_fstore_multiget(fs, FS_CF_ITEMS, nm, miss_ids, &vals, &lens, "get_item_summaries", err);
        for (size_t j = 0; st == MMR_OK && j < nm; j++) {
            mmr_item_summary_t *sum = &out[miss[j]];
            sum->has_stats = found[j];
            sum->stats = stats[j];
            if (vals[j]) {
                mmr_fstore_item_view_t v;
                mmr_err_t e;
                if ((st = mmr_fstore_codec_decode_item(vals[j], lens[j], &v, &e)) != MMR_OK) {
                    mmr_err_set(err, st, "get_item_summaries '%s': %s", miss_ids[j], e.msg);
                    break;
                }
                sum->in_catalog = 1;
                sum->deleted = (uint8_t)v.deleted;
                sum->created_ms = v.created_ms;
            }
        }
        /* only a view of the DB older than every write that has not been applied yet */
        for (size_t j = 0; st == MMR_OK && !(epoch & 1) && j < nm; j++) {
            uint32_t len = (uint32_t)strlen(miss_ids[j]);
            if (out[miss[j]].in_catalog || out[miss[j]].has_stats)
                fill(c, miss_ids[j], len, mmr_hash64(miss_ids[j], len), epoch, &out[miss[j]]);
        }
        if (vals) mmr_fstore_multiget_free(vals, lens, nm);
        free(stats);
    }
    free(miss);
    if (st != MMR_OK) memset(out, 0, n * sizeof *out);
    return st;
}

void mmr_fstore_cache_write_begin(mmr_fstore_cache_t *c) { atomic_fetch_add(&c->epoch, 1); }
void mmr_fstore_cache_write_end(mmr_fstore_cache_t *c) { atomic_fetch_add(&c->epoch, 1); }

void mmr_fstore_cache_apply_stats(mmr_fstore_cache_t *c, const char *id, size_t len,
                                  const mmr_item_stats_t *delta, double half_life_ms) {
    uint64_t h = mmr_hash64(id, len);
    shard_t *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    entry_t *e = find(s, id, (uint32_t)len, h);
    if (e && e->s.has_stats) {
        mmr_fstore_codec_stats_combine(&e->s.stats, delta, half_life_ms);
    } else if (e) { /* the merge of operands onto no value starts from the first one */
        e->s.stats = *delta;
        e->s.has_stats = 1;
    }
    pthread_mutex_unlock(&s->mu);
}

void mmr_fstore_cache_apply_item(mmr_fstore_cache_t *c, const char *id, size_t len, int deleted,
                                 int64_t created_ms) {
    uint64_t h = mmr_hash64(id, len);
    shard_t *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    entry_t *e = find(s, id, (uint32_t)len, h);
    if (e) {
        e->s.in_catalog = 1;
        e->s.deleted = (uint8_t)(deleted != 0);
        e->s.created_ms = created_ms;
    }
    pthread_mutex_unlock(&s->mu);
}

void mmr_fstore_cache_get_stats(mmr_fstore_cache_t *c, uint64_t *hits, uint64_t *misses,
                                uint64_t *entries) {
    *hits = atomic_load(&c->hits);
    *misses = atomic_load(&c->misses);
    *entries = 0;
    for (int i = 0; i < FS_CACHE_SHARDS; i++) {
        pthread_mutex_lock(&c->shard[i].mu);
        *entries += c->shard[i].used;
        pthread_mutex_unlock(&c->shard[i].mu);
    }
}
