/* fstore_batch.c — the write path: one batch of events, items and offsets = one WriteBatch.
 *
 * Dedup marks, items and offsets are plain puts, added to the WriteBatch as they come.
 * Stats deltas are folded per item inside the batch (the merge is associative, so this is
 * what RocksDB would compute anyway) and written as one merge operand per item at commit:
 * hot items cost one memtable entry per batch instead of one per event. User records are
 * read-modify-write: each user touched by the batch is read from the DB once (first
 * touch), kept decoded in a hash map while later events of the batch update it, and
 * encoded into the WriteBatch at commit. Event ids seen
 * in the batch are kept in a hash set, so duplicates inside the batch are caught before
 * they reach the DB. Everything the batch holds lives in its arena (mmr_arena) and dies
 * with it. After a successful write the batch's stats deltas and item records are applied
 * to the hot-item cache (fstore_cache.c), bracketed by its write epoch.
 * Single writer: the store lets one batch exist at a time (fs->batch_open). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fstore_codec.h"
#include "fstore_priv.h"
#include "mmr_arena.h"
#include "mmr_log.h"
#include "mmr_time.h"

#define LOG_MOD "fstore"

/* --- byte-string hash map (open addressing, linear probing, load ≤ 1/2) ---------------- */
typedef struct map_slot {
    const char *key; /* NULL = empty; arena-owned */
    uint32_t len;
    uint64_t hash;
    void *val;
} map_slot_t;

typedef struct map {
    map_slot_t *slots; /* [cap], cap a power of two */
    size_t cap, n;
} map_t;

static uint64_t hash_bytes(const char *k, size_t len) { /* FNV-1a */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
    return h;
}

static map_slot_t *map_find(const map_t *m, const char *k, size_t len, uint64_t h) {
    if (!m->cap) return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        map_slot_t *s = &m->slots[i];
        if (!s->key || (s->hash == h && s->len == len && !memcmp(s->key, k, len))) return s;
    }
}

/* Makes room for one more key; returns -1 when out of memory (the map is unchanged). */
static int map_reserve(map_t *m) {
    if (2 * (m->n + 1) <= m->cap) return 0;
    size_t cap = m->cap ? 2 * m->cap : 64;
    map_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    map_t grown = {slots, cap, m->n};
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) {
            const map_slot_t *s = &m->slots[i];
            *map_find(&grown, s->key, s->len, s->hash) = *s;
        }
    free(m->slots);
    *m = grown;
    return 0;
}

/* --- the batch ---------------------------------------------------------------------- */

/* A user touched by this batch: the stored record plus this batch's events. */
typedef struct pend_user {
    const char *uid;
    uint32_t uid_len;
    int64_t events_total;
    uint32_t n, head;      /* ring[(head + i) % fs->user_ring] is the i-th oldest */
    mmr_fstore_ix_t *ring; /* [fs->user_ring], item ids in the arena */
} pend_user_t;

/* The stats delta of one item over this batch. */
typedef struct pend_stats {
    const char *iid;
    uint32_t iid_len;
    mmr_item_stats_t acc;
} pend_stats_t;

/* An item record put by this batch, for the hot-item cache. */
typedef struct put_item {
    const char *iid;
    uint32_t iid_len;
    int deleted;
    int64_t created_ms;
    struct put_item *next;
} put_item_t;

typedef enum { BATCH_OPEN = 0, BATCH_DONE } batch_state_t;

struct mmr_fstore_batch {
    mmr_fstore_t *fs;
    rocksdb_writebatch_t *wb;
    batch_state_t state;
    size_t count;         /* events added */
    mmr_arena_t *arena;   /* ids, pending users and their rings */
    map_t users;          /* user id → pend_user_t */
    map_t stats;          /* item id → pend_stats_t */
    map_t seen;           /* event ids of this batch (val unused) */
    put_item_t *items, **items_tail; /* item records put, in put order */
    mmr_err_t offset_err; /* first bad set_offset, reported by commit */
    uint8_t *scratch;     /* encode buffer for items and users, [scratch_cap] */
    size_t scratch_cap;
};

mmr_fstore_batch_t *mmr_fstore_batch_new(mmr_fstore_t *fs) {
    if (fs->read_only) {
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "batch_new: the store is open read-only");
        return NULL;
    }
    int expected = 0;
    if (!atomic_compare_exchange_strong(&fs->batch_open, &expected, 1)) {
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "batch_new: another batch is open (single writer)");
        return NULL;
    }
    mmr_fstore_batch_t *b = calloc(1, sizeof *b);
    if (!b) {
        atomic_store(&fs->batch_open, 0);
        return NULL;
    }
    b->fs = fs;
    b->arena = mmr_arena_new(64 << 10);
    if (!b->arena) {
        free(b);
        atomic_store(&fs->batch_open, 0);
        return NULL;
    }
    b->wb = rocksdb_writebatch_create();
    b->items_tail = &b->items;
    mmr_err_clear(&b->offset_err);
    return b;
}

void mmr_fstore_batch_free(mmr_fstore_batch_t *b) {
    if (!b) return;
    rocksdb_writebatch_destroy(b->wb);
    mmr_arena_free(b->arena);
    free(b->users.slots);
    free(b->stats.slots);
    free(b->seen.slots);
    free(b->scratch);
    atomic_store(&b->fs->batch_open, 0);
    free(b);
}

size_t mmr_fstore_batch_count(const mmr_fstore_batch_t *b) { return b->count; }

static uint8_t *scratch_get(mmr_fstore_batch_t *b, size_t n) {
    if (n > b->scratch_cap) {
        uint8_t *s = realloc(b->scratch, n);
        if (!s) return NULL;
        b->scratch = s;
        b->scratch_cap = n;
    }
    return b->scratch;
}

/* Copies len bytes (no NUL needed: ids travel with their lengths). */
static char *arena_copy(mmr_arena_t *a, const char *s, size_t len) {
    char *p = mmr_arena_alloc(a, len);
    if (p) memcpy(p, s, len);
    return p;
}

/* Appends ix (item already in the arena) to the user's ring, dropping the oldest when full. */
static void ring_push(pend_user_t *u, uint32_t cap, const mmr_fstore_ix_t *ix) {
    if (u->n < cap) {
        u->ring[(u->head + u->n++) % cap] = *ix;
    } else {
        u->ring[u->head] = *ix;
        u->head = (u->head + 1) % cap;
    }
}

/* Loads the stored record of a user into a fresh pend_user_t (empty if absent). A record
 * that cannot be decoded is replaced (WARN): ingestion must not stall on one bad value. */
static mmr_status_t user_load(mmr_fstore_batch_t *b, const char *uid, size_t uid_len,
                              pend_user_t **out, mmr_err_t *err) {
    mmr_fstore_t *fs = b->fs;
    pend_user_t *u = mmr_arena_alloc(b->arena, sizeof *u);
    mmr_fstore_ix_t *ring = mmr_arena_alloc(b->arena, fs->user_ring * sizeof *ring);
    char *uid_copy = arena_copy(b->arena, uid, uid_len);
    if (!u || !ring || !uid_copy) return mmr_err_set(err, MMR_ERR_NOMEM, "batch: out of memory");
    *u = (pend_user_t){.uid = uid_copy, .uid_len = (uint32_t)uid_len, .ring = ring};

    char *rerr = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(fs->db, fs->ro, fs->cf[FS_CF_USERS], uid, uid_len, &len, &rerr);
    if (rerr) return mmr_fstore_rocks_status(rerr, err, "batch: read user");
    mmr_status_t st = MMR_OK;
    if (v) {
        mmr_fstore_user_dec_t d;
        mmr_err_t e;
        st = mmr_fstore_codec_user_begin(&d, v, len, &e);
        /* Decoding a record written with a larger user_ring keeps its newest entries. */
        for (uint32_t i = 0; st == MMR_OK && i < d.n; i++) {
            mmr_fstore_ix_t ix;
            if ((st = mmr_fstore_codec_user_next(&d, &ix, &e)) != MMR_OK) break;
            if (!(ix.item = arena_copy(b->arena, ix.item, ix.item_len))) {
                st = MMR_ERR_NOMEM;
                break;
            }
            ring_push(u, fs->user_ring, &ix);
        }
        if (st == MMR_OK) {
            u->events_total = d.events_total;
        } else if (st == MMR_ERR_CORRUPT) {
            mmr_log(MMR_LOG_WARN, LOG_MOD, "user '%.*s': replacing undecodable record: %s",
                    (int)uid_len, uid, e.msg);
            u->n = u->head = 0;
            u->events_total = 0;
            st = MMR_OK;
        } else {
            mmr_err_set(err, st, "batch: user '%.*s': out of memory", (int)uid_len, uid);
        }
        rocksdb_free(v);
    }
    if (st == MMR_OK) *out = u;
    return st;
}

static mmr_status_t check_event(const mmr_event_t *ev, mmr_err_t *err) {
    if (!ev) return mmr_err_set(err, MMR_ERR_INVALID, "event: NULL");
    if (!mmr_fstore_id_len(ev->user_id))
        return mmr_err_set(err, MMR_ERR_INVALID, "event: user_id NULL, empty or too long");
    if (!mmr_fstore_id_len(ev->item_id))
        return mmr_err_set(err, MMR_ERR_INVALID, "event: item_id NULL, empty or too long");
    if (ev->event_id && ev->event_id[0] && !mmr_fstore_id_len(ev->event_id))
        return mmr_err_set(err, MMR_ERR_INVALID, "event: event_id longer than %d", MMR_ID_MAX);
    if (ev->type <= MMR_EV_UNSPECIFIED || ev->type >= MMR_EV_TYPE_COUNT)
        return mmr_err_set(err, MMR_ERR_INVALID, "event: unknown type %d", (int)ev->type);
    if (!isfinite(ev->value)) return mmr_err_set(err, MMR_ERR_INVALID, "event: value not finite");
    return MMR_OK;
}

int mmr_fstore_batch_add_event(mmr_fstore_batch_t *b, const mmr_event_t *ev, mmr_err_t *err) {
    mmr_fstore_t *fs = b->fs;
    if (b->state != BATCH_OPEN)
        return -(int)mmr_err_set(err, MMR_ERR_INVALID, "add_event: batch already committed");
    mmr_status_t st = check_event(ev, err);
    if (st != MMR_OK) return -(int)st;

    /* Everything that can fail comes first, so a failed call leaves the batch as it was
     * (give or take a user loaded early, which is just the stored state, and arena bytes). */
    size_t eid_len = ev->event_id ? strlen(ev->event_id) : 0;
    uint64_t eid_hash = 0;
    if (eid_len) {
        eid_hash = hash_bytes(ev->event_id, eid_len);
        map_slot_t *s = map_find(&b->seen, ev->event_id, eid_len, eid_hash);
        if (s && s->key) return 0;
        char *rerr = NULL;
        size_t vlen;
        char *v = rocksdb_get_cf(fs->db, fs->ro, fs->cf[FS_CF_DEDUP], ev->event_id, eid_len,
                                 &vlen, &rerr);
        if (rerr) return -(int)mmr_fstore_rocks_status(rerr, err, "add_event: dedup lookup");
        if (v) {
            rocksdb_free(v);
            return 0;
        }
    }

    size_t uid_len = strlen(ev->user_id), iid_len = strlen(ev->item_id);
    uint64_t uh = hash_bytes(ev->user_id, uid_len);
    map_slot_t *us = map_find(&b->users, ev->user_id, uid_len, uh);
    pend_user_t *u = us ? us->val : NULL;
    if (!u) {
        if (map_reserve(&b->users))
            return -(int)mmr_err_set(err, MMR_ERR_NOMEM, "add_event: out of memory");
        if ((st = user_load(b, ev->user_id, uid_len, &u, err)) != MMR_OK) return -(int)st;
        *map_find(&b->users, ev->user_id, uid_len, uh) =
            (map_slot_t){.key = u->uid, .len = (uint32_t)uid_len, .hash = uh, .val = u};
        b->users.n++;
    }
    const char *eid = NULL; /* the batch's copy, inserted into b->seen once nothing can fail */
    if (eid_len && (!(eid = arena_copy(b->arena, ev->event_id, eid_len)) || map_reserve(&b->seen)))
        return -(int)mmr_err_set(err, MMR_ERR_NOMEM, "add_event: out of memory");
    uint64_t ih = hash_bytes(ev->item_id, iid_len);
    map_slot_t *ss = map_find(&b->stats, ev->item_id, iid_len, ih);
    pend_stats_t *ps = ss ? ss->val : NULL;
    if (!ps) { /* the last step that can fail: an entry in b->stats always gets a delta */
        if (map_reserve(&b->stats) || !(ps = mmr_arena_alloc(b->arena, sizeof *ps)) ||
            !(ps->iid = arena_copy(b->arena, ev->item_id, iid_len)))
            return -(int)mmr_err_set(err, MMR_ERR_NOMEM, "add_event: out of memory");
        ps->iid_len = (uint32_t)iid_len;
        ps->acc = (mmr_item_stats_t){.last_ts_ms = INT64_MIN}; /* identity of the combine */
        *map_find(&b->stats, ev->item_id, iid_len, ih) =
            (map_slot_t){.key = ps->iid, .len = (uint32_t)iid_len, .hash = ih, .val = ps};
        b->stats.n++;
    }

    /* Nothing below fails. */
    if (eid) {
        *map_find(&b->seen, eid, eid_len, eid_hash) =
            (map_slot_t){.key = eid, .len = (uint32_t)eid_len, .hash = eid_hash, .val = NULL};
        b->seen.n++;
        /* The mark holds the wall-clock time it was written: the TTL counts from ingestion,
         * so replaying old events does not expire their marks at once. */
        uint8_t mark[8];
        mmr_fstore_codec_put_i64(mark, mmr_now_ms());
        rocksdb_writebatch_put_cf(b->wb, fs->cf[FS_CF_DEDUP], eid, eid_len, (const char *)mark,
                                  sizeof mark);
    }
    mmr_fstore_ix_t ix = {.item = ps->iid, .item_len = (uint32_t)iid_len, .type = ev->type,
                          .value = ev->value, .ts_ms = ev->ts_ms};
    mmr_item_stats_t delta;
    mmr_fstore_codec_stats_of_event(ev, &delta);
    mmr_fstore_codec_stats_combine(&ps->acc, &delta, fs->half_life_ms);
    ring_push(u, fs->user_ring, &ix);
    u->events_total++;
    b->count++;
    return 1;
}

void mmr_fstore_batch_set_offset(mmr_fstore_batch_t *b, const char *topic, int32_t partition,
                                 int64_t next_offset) {
    char key[MMR_FSTORE_OFFSET_KEY_MAX];
    size_t klen = mmr_fstore_offset_key(key, topic, partition);
    if (b->offset_err.code != MMR_OK) return;
    if (!klen || next_offset < 0) {
        mmr_err_set(&b->offset_err, MMR_ERR_INVALID,
                    "set_offset: bad topic or offset (partition %d, offset %lld)", (int)partition,
                    (long long)next_offset);
        return;
    }
    uint8_t v[8];
    mmr_fstore_codec_put_i64(v, next_offset);
    rocksdb_writebatch_put_cf(b->wb, b->fs->cf[FS_CF_META], key, klen, (const char *)v, sizeof v);
}

mmr_status_t mmr_fstore_batch_put_item(mmr_fstore_batch_t *b, const mmr_item_t *item,
                                       mmr_err_t *err) {
    if (b->state != BATCH_OPEN)
        return mmr_err_set(err, MMR_ERR_INVALID, "put_item: batch already committed");
    mmr_status_t st = mmr_fstore_codec_check_item(item, err);
    if (st != MMR_OK) return st;
    size_t len = mmr_fstore_codec_item_size(item), id_len = strlen(item->item_id);
    uint8_t *buf = scratch_get(b, len);
    put_item_t *pi = mmr_arena_alloc(b->arena, sizeof *pi);
    if (!buf || !pi || !(pi->iid = arena_copy(b->arena, item->item_id, id_len)))
        return mmr_err_set(err, MMR_ERR_NOMEM, "put_item: out of memory");
    pi->iid_len = (uint32_t)id_len;
    pi->deleted = item->deleted;
    pi->created_ms = item->created_ms;
    pi->next = NULL;
    *b->items_tail = pi;
    b->items_tail = &pi->next;
    mmr_fstore_codec_encode_item(buf, item);
    rocksdb_writebatch_put_cf(b->wb, b->fs->cf[FS_CF_ITEMS], item->item_id, id_len,
                              (const char *)buf, len);
    return MMR_OK;
}

mmr_status_t mmr_fstore_batch_commit(mmr_fstore_batch_t *b, mmr_err_t *err) {
    mmr_fstore_t *fs = b->fs;
    if (b->state != BATCH_OPEN)
        return mmr_err_set(err, MMR_ERR_INVALID, "commit: batch already committed");
    b->state = BATCH_DONE;
    if (b->offset_err.code != MMR_OK)
        return mmr_err_set(err, b->offset_err.code, "commit: %s", b->offset_err.msg);
    for (size_t i = 0; i < b->stats.cap; i++) {
        const pend_stats_t *ps = b->stats.slots[i].val;
        if (!ps) continue;
        uint8_t enc[MMR_FSTORE_STATS_SIZE];
        mmr_fstore_codec_encode_stats(enc, &ps->acc);
        rocksdb_writebatch_merge_cf(b->wb, fs->cf[FS_CF_STATS], ps->iid, ps->iid_len,
                                    (const char *)enc, sizeof enc);
    }
    for (size_t i = 0; i < b->users.cap; i++) {
        const pend_user_t *u = b->users.slots[i].val;
        if (!u) continue;
        uint8_t *buf = scratch_get(b, mmr_fstore_codec_user_bound(u->n));
        if (!buf) return mmr_err_set(err, MMR_ERR_NOMEM, "commit: out of memory");
        size_t len = mmr_fstore_codec_encode_user(buf, u->events_total, u->ring, fs->user_ring,
                                                  u->head, u->n);
        rocksdb_writebatch_put_cf(b->wb, fs->cf[FS_CF_USERS], u->uid, u->uid_len,
                                  (const char *)buf, len);
    }
    char *rerr = NULL;
    mmr_fstore_cache_write_begin(fs->cache);
    rocksdb_write(fs->db, fs->wo, b->wb, &rerr);
    if (!rerr) {
        for (size_t i = 0; i < b->stats.cap; i++) {
            const pend_stats_t *ps = b->stats.slots[i].val;
            if (ps) mmr_fstore_cache_apply_stats(fs->cache, ps->iid, ps->iid_len, &ps->acc, fs->half_life_ms);
        }
        for (const put_item_t *pi = b->items; pi; pi = pi->next) /* in put order: the last wins */
            mmr_fstore_cache_apply_item(fs->cache, pi->iid, pi->iid_len, pi->deleted, pi->created_ms);
    }
    mmr_fstore_cache_write_end(fs->cache);
    return mmr_fstore_rocks_status(rerr, err, "commit");
}
