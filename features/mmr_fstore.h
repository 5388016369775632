/* mmr_fstore.h — the RocksDB feature store: users, items, stats, dedup marks, offsets.
 *
 * One RocksDB database, column families (created if missing):
 *   items  item_id → created_ms, deleted flag, text/image/video embeddings
 *   users  user_id → bounded ring of recent interactions (item, type, value, ts) + total
 *   stats  item_id → counters (impressions, clicks, positives, decayed popularity),
 *          updated through a merge operator so writers never read-modify-write
 *   dedup  event_id → wall-clock ms when the mark was written; dropped by a TTL
 *          compaction filter once older than dedup_ttl_s
 *   meta   "offset/<topic>/<partition>" → next offset; "schema_version"; other keys
 *          (e.g. the model registry's "model/...") through mmr_fstore_meta_*
 * Record encodings are documented in fstore_codec.h.
 *
 * Exactly-once state: a batch (mmr_fstore_batch_*) gathers feature updates, dedup marks,
 * catalog items and the next Kafka offsets, and commits them as ONE RocksDB WriteBatch.
 * Callers commit Kafka offsets only after mmr_fstore_batch_commit returns MMR_OK, and seek
 * to mmr_fstore_get_offset on assignment. Knows nothing of Kafka, gRPC or CUDA.
 *
 * Threads: reads are safe from any thread, concurrently with a batch being built or
 * committed. Batches are single-writer: at most one batch per store is open at a time
 * (the user ring is read-modify-write), built and committed by one thread. */
#ifndef MMR_FSTORE_H
#define MMR_FSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"

typedef struct mmr_fstore mmr_fstore_t;
typedef struct mmr_fstore_batch mmr_fstore_batch_t;

/* Event types, numerically equal to mmrec.v1.EventType. */
typedef enum {
    MMR_EV_UNSPECIFIED = 0,
    MMR_EV_IMPRESSION = 1,
    MMR_EV_CLICK = 2,
    MMR_EV_LIKE = 3,
    MMR_EV_SHARE = 4,
    MMR_EV_WATCH = 5,
    MMR_EV_SKIP = 6,
    MMR_EV_PURCHASE = 7,
    MMR_EV_RATING = 8,
    MMR_EV_TYPE_COUNT
} mmr_event_type_t;

#define MMR_ID_MAX 256 /* longest user/item/event id in bytes; longer ids are invalid */
#define MMR_WATCH_POSITIVE_S 10.0f /* a WATCH of at least this many seconds is positive */
#define MMR_RATING_POSITIVE 4.0f   /* a RATING of at least this many stars is positive */
#define MMR_USER_RING_MAX 4096     /* largest accepted opts.user_ring */
#define MMR_EMB_DIM_MAX 65536      /* widest accepted embedding, in floats */

/* A validated event. Strings are borrowed for the duration of the call they are passed to. */
typedef struct mmr_event {
    const char *event_id; /* may be NULL or empty: then no dedup is possible */
    const char *user_id;
    const char *item_id;
    mmr_event_type_t type;
    float value;
    int64_t ts_ms;
} mmr_event_t;

/* Positive engagement per DESIGN §6: CLICK, LIKE, SHARE, PURCHASE; WATCH with
 * value ≥ MMR_WATCH_POSITIVE_S; RATING with value ≥ MMR_RATING_POSITIVE. Returns 1 or 0. */
int mmr_event_is_positive(const mmr_event_t *ev);
/* "IMPRESSION", "CLICK", ... as in event.proto ("UNSPECIFIED" for 0 and out of range). */
const char *mmr_event_type_name(mmr_event_type_t t);
/* A type name (exact case, or any case when any_case) or decimal number in 1..8 → *out.
 * Returns 0, or -1 when s names no event type. */
int mmr_event_type_parse(const char *s, int any_case, mmr_event_type_t *out);

/* Zero means "default" for every field but path, so `{.path = dir}` is a valid config. */
typedef struct mmr_fstore_opts {
    const char *path;            /* database directory; created if missing (see must_exist) */
    uint32_t user_ring;          /* interactions per user: default 64, max MMR_USER_RING_MAX */
    int64_t dedup_ttl_s;         /* event_id marks older than this are dropped (default 7 days) */
    double popularity_half_life_s; /* decay of item popularity (default 1 day) */
    size_t block_cache_mb;       /* LRU block cache shared by all column families (default 64) */
    int sync_writes;             /* 1: fsync the WAL on each batch commit */
    const char *rocksdb_options; /* "key=value;key=value" for RocksDB's options parser,
                                  * applied over mmrec's defaults; NULL or "" = none */
    size_t item_cache;           /* hot-item cache capacity in items (default 262144) */
    int must_exist;              /* 1: fail with MMR_ERR_NOT_FOUND instead of creating the
                                  * database (RocksDB create_if_missing, inverted so that a
                                  * zeroed struct keeps creating) */
    int read_only;               /* 1: RocksDB read-only mode. Takes no lock, so it may run
                                  * beside the process that writes the store (mmrecd); sees
                                  * the store as it was when opened (later commits of that
                                  * writer are not seen); implies must_exist. Batch commits,
                                  * meta writes and compaction of such a handle fail. */
} mmr_fstore_opts_t;

/* Opens (creating if needed) the store. opts is read during the call only. On success *out
 * is owned by the caller and freed with mmr_fstore_close. Compression is LZ4 when the
 * RocksDB library has it, else none.
 * Errors: MMR_ERR_INVALID (bad opts), MMR_ERR_NOT_FOUND (must_exist or read_only, and no
 * database), MMR_ERR_UNSUPPORTED (written by a newer mmrec: schema version above ours),
 * MMR_ERR_CORRUPT (unreadable schema version), MMR_ERR_STORE (RocksDB message in err),
 * MMR_ERR_BUSY (read_only: the writer flushed or compacted during each of 50 tries; an open
 * that overlaps a flush may see a torn state, so it is tried again a few ms later). */
mmr_status_t mmr_fstore_open(const mmr_fstore_opts_t *opts, mmr_fstore_t **out, mmr_err_t *err);
/* Flushes memtables (not when read-only) and closes. Every batch and snapshot of fs must
 * have been freed. NULL is a no-op. */
void mmr_fstore_close(mmr_fstore_t *fs);
/* 1 when fs was opened with opts.read_only. Such a handle refuses writes: meta writes and
 * mmr_fstore_compact fail with MMR_ERR_UNSUPPORTED, mmr_fstore_batch_new returns NULL. */
int mmr_fstore_is_read_only(const mmr_fstore_t *fs);

/* RocksDB's own gauges, summed over the column families: for /metrics. */
typedef struct mmr_fstore_stats {
    uint64_t estimate_keys;          /* rocksdb.estimate-num-keys */
    uint64_t live_data_bytes;        /* rocksdb.estimate-live-data-size */
    uint64_t sst_bytes;              /* rocksdb.total-sst-files-size */
    uint64_t memtable_bytes;         /* rocksdb.cur-size-all-mem-tables */
    uint64_t pending_compaction_bytes; /* rocksdb.estimate-pending-compaction-bytes */
    uint64_t running_compactions;    /* rocksdb.num-running-compactions (whole DB) */
    uint64_t block_cache_bytes;      /* rocksdb.block-cache-usage (shared cache) */
    uint64_t item_cache_hits, item_cache_misses; /* mmr_fstore_get_item_summaries lookups */
    uint64_t item_cache_entries;
} mmr_fstore_stats_t;
/* Never fails: a property RocksDB does not report reads as 0. Thread-safe. */
void mmr_fstore_get_stats(mmr_fstore_t *fs, mmr_fstore_stats_t *out);

/* Flushes and fully compacts every column family (so dedup marks past their TTL are
 * dropped now). Blocks; for maintenance tools and tests. Errors: MMR_ERR_UNSUPPORTED
 * (read-only handle), MMR_ERR_STORE. */
mmr_status_t mmr_fstore_compact(mmr_fstore_t *fs, mmr_err_t *err);

/* --- writing: one batch = one atomic WriteBatch -------------------------------------- */

/* Starts a batch; fs is borrowed and must outlive it. Returns NULL when out of memory,
 * when another batch of fs is still open (single writer, see the top of this file) or
 * when fs is read-only. */
mmr_fstore_batch_t *mmr_fstore_batch_new(mmr_fstore_t *fs);
/* Adds an event. Returns 1 if it will be applied, 0 if it is a duplicate (its event_id is
 * already in the store or earlier in this batch), or a negated mmr_status_t on error:
 * -MMR_ERR_INVALID (bad ids, type, non-finite value; the batch stays usable),
 * -MMR_ERR_STORE (dedup/user lookup failed). A stored user record that cannot be decoded
 * is replaced by a fresh one (logged at WARN) so that ingestion never stalls on it. */
int mmr_fstore_batch_add_event(mmr_fstore_batch_t *b, const mmr_event_t *ev, mmr_err_t *err);
/* Records that everything before next_offset of topic/partition is in this batch; the last
 * call per topic/partition wins. An invalid topic (NULL, empty, longer than MMR_ID_MAX)
 * makes mmr_fstore_batch_commit fail with MMR_ERR_INVALID. */
void mmr_fstore_batch_set_offset(mmr_fstore_batch_t *b, const char *topic, int32_t partition,
                                 int64_t next_offset);
/* Writes the batch atomically. Called once per batch; afterwards (success or not) the batch
 * accepts nothing more and is only freed. Errors: MMR_ERR_INVALID (bad offset topic, second
 * commit), MMR_ERR_STORE (nothing was written). */
mmr_status_t mmr_fstore_batch_commit(mmr_fstore_batch_t *b, mmr_err_t *err);
size_t mmr_fstore_batch_count(const mmr_fstore_batch_t *b); /* events added (non-duplicates) */
/* Frees the batch; an uncommitted batch leaves no trace in the store. NULL is a no-op. */
void mmr_fstore_batch_free(mmr_fstore_batch_t *b);

/* Next offset stored for topic/partition, or -1 in *next_offset when none is stored.
 * Errors: MMR_ERR_INVALID (bad topic), MMR_ERR_CORRUPT, MMR_ERR_STORE. */
mmr_status_t mmr_fstore_get_offset(mmr_fstore_t *fs, const char *topic, int32_t partition,
                                   int64_t *next_offset, mmr_err_t *err);

/* --- catalog items ------------------------------------------------------------------- */
typedef enum {
    MMR_MODALITY_TEXT = 0,
    MMR_MODALITY_IMAGE,
    MMR_MODALITY_VIDEO,
    MMR_MODALITY_COUNT
} mmr_modality_t;

/* A catalog item. Any modality may be absent (emb_dim 0, emb NULL). */
typedef struct mmr_item {
    const char *item_id;                    /* NUL-terminated, 1..MMR_ID_MAX bytes */
    int64_t created_ms;
    int deleted;                            /* 1: withdrawn from the catalog (kept as a record) */
    uint32_t emb_dim[MMR_MODALITY_COUNT];   /* ≤ MMR_EMB_DIM_MAX; 0 = modality absent */
    const float *emb[MMR_MODALITY_COUNT];   /* emb[m] is [emb_dim[m]] floats */
} mmr_item_t;

/* Adds (or replaces) an item in the batch; item and its arrays are borrowed for the call.
 * Errors: MMR_ERR_INVALID (bad id, width over MMR_EMB_DIM_MAX, NULL or non-finite
 * embedding, committed batch); the batch stays usable. */
mmr_status_t mmr_fstore_batch_put_item(mmr_fstore_batch_t *b, const mmr_item_t *item,
                                       mmr_err_t *err);

/* Batched read (MultiGet) of n items. On MMR_OK *out is an owned array of n items (free it
 * with mmr_fstore_items_free; ids and embeddings live in the same allocation) and
 * found[i] = 1 when item_ids[i] exists (deleted items included, with deleted = 1), else
 * found[i] = 0 and (*out)[i] is zeroed. Errors: MMR_ERR_INVALID, MMR_ERR_CORRUPT (a record
 * cannot be decoded; its id is in err), MMR_ERR_NOMEM, MMR_ERR_STORE. */
mmr_status_t mmr_fstore_get_items(mmr_fstore_t *fs, size_t n, const char *const *item_ids,
                                  mmr_item_t **out, uint8_t *found, mmr_err_t *err);
void mmr_fstore_items_free(mmr_item_t *items); /* NULL is a no-op */

/* Called once per item; item and its arrays are valid only during the call. Return 0 to go
 * on, non-zero to stop the iteration. */
typedef int (*mmr_fstore_item_fn)(void *opaque, const mmr_item_t *item);
/* Calls fn for every non-deleted item, in key order, from one consistent snapshot (writes
 * committed meanwhile are not seen). Returns MMR_OK also when fn stopped the iteration.
 * Errors: MMR_ERR_CORRUPT (stops at the undecodable record), MMR_ERR_NOMEM, MMR_ERR_STORE. */
mmr_status_t mmr_fstore_iter_items(mmr_fstore_t *fs, mmr_fstore_item_fn fn, void *opaque,
                                   mmr_err_t *err);

/* --- reading ------------------------------------------------------------------------- */
typedef struct mmr_item_stats {
    int64_t impressions;
    int64_t clicks;      /* CLICK events */
    int64_t positives;   /* events for which mmr_event_is_positive holds */
    double popularity;   /* Σ over positives of 2^(-(last_ts_ms - ts) / half-life) */
    int64_t last_ts_ms;  /* newest event seen for the item */
} mmr_item_stats_t;

/* What serving needs of a candidate besides its vectors. */
typedef struct mmr_item_summary {
    uint8_t in_catalog; /* an items record exists */
    uint8_t deleted;    /* its deleted flag */
    uint8_t has_stats;  /* a stats record exists (else stats is zero) */
    int64_t created_ms; /* of the items record */
    mmr_item_stats_t stats;
} mmr_item_summary_t;
/* Batched, through the hot-item cache (opts.item_cache items, CLOCK eviction): misses are
 * read with two MultiGets (items, stats) and cached (unless the id is in neither). Exact
 * (popularity up to float rounding): this store's batch commits update cached entries, so
 * a summary is never older than the last committed batch. Safe
 * from any thread. Errors: MMR_ERR_INVALID (bad id), MMR_ERR_CORRUPT, MMR_ERR_NOMEM,
 * MMR_ERR_STORE; out is zeroed on error. */
mmr_status_t mmr_fstore_get_item_summaries(mmr_fstore_t *fs, size_t n, const char *const *item_ids,
                                           mmr_item_summary_t *out, mmr_err_t *err);

/* Batched read (MultiGet). found[i] = 1 and out[i] filled when the item has stats, else
 * found[i] = 0 and out[i] zeroed. Errors: MMR_ERR_INVALID, MMR_ERR_CORRUPT (id in err),
 * MMR_ERR_NOMEM, MMR_ERR_STORE. */
mmr_status_t mmr_fstore_get_item_stats(mmr_fstore_t *fs, size_t n, const char *const *item_ids,
                                       mmr_item_stats_t *out, uint8_t *found, mmr_err_t *err);

/* s->popularity decayed from s->last_ts_ms to now_ms with the store's half-life (unchanged
 * when now_ms ≤ last_ts_ms), for ranking features computed at request time. */
double mmr_fstore_popularity_at(const mmr_fstore_t *fs, const mmr_item_stats_t *s,
                                int64_t now_ms);

typedef struct mmr_interaction {
    char item_id[MMR_ID_MAX + 1];
    mmr_event_type_t type;
    float value;
    int64_t ts_ms;
} mmr_interaction_t;

typedef struct mmr_user {
    uint32_t n;                     /* interactions held, oldest first (in applied order) */
    int64_t events_total;           /* all events ever applied for the user */
    mmr_interaction_t *recent;      /* [n] */
} mmr_user_t;

/* Reads a user. On MMR_OK *out is owned by the caller (mmr_user_free). Unknown user:
 * MMR_ERR_NOT_FOUND. Errors: MMR_ERR_INVALID, MMR_ERR_CORRUPT (undecodable record),
 * MMR_ERR_NOMEM, MMR_ERR_STORE. */
mmr_status_t mmr_fstore_get_user(mmr_fstore_t *fs, const char *user_id, mmr_user_t **out,
                                 mmr_err_t *err);
void mmr_user_free(mmr_user_t *u); /* NULL is a no-op */

/* The history the towers see, shared by training and serving so they never disagree:
 * u's interactions strictly before before_ms, IMPRESSIONs left out (a slate says little
 * about taste and would crowd out the actions), most recent first, at most max. ids[k]
 * point into u; types[k] is the event type; ages_h[k] = (before_ms - ts) hours, > 0 up to
 * the clock's resolution. u may be NULL (no history). Returns the count. Training passes
 * the example's event time (its own event is not history); serving passes now + 1. */
int mmr_user_history(const mmr_user_t *u, int64_t before_ms, int max, const char **ids,
                     int32_t *types, float *ages_h);

/* --- consistent snapshots (export) ----------------------------------------------------
 * A snapshot pins the store at one instant: reads through it see exactly the batches
 * committed before mmr_fstore_snapshot_new, in every column family, whatever is committed
 * afterwards. Since a batch writes its events and its Kafka offsets atomically, the offsets
 * read through a snapshot say exactly which events its users and stats contain. Full scans
 * through a snapshot do not fill the block cache. Safe from any thread, concurrently with
 * batch commits; one snapshot may be read by several threads. */
typedef struct mmr_fstore_snapshot mmr_fstore_snapshot_t;

/* Takes a snapshot of fs (borrowed: it must outlive the snapshot). On MMR_OK *out is owned
 * by the caller (mmr_fstore_snapshot_free). Errors: MMR_ERR_NOMEM. */
mmr_status_t mmr_fstore_snapshot_new(mmr_fstore_t *fs, mmr_fstore_snapshot_t **out,
                                     mmr_err_t *err);
void mmr_fstore_snapshot_free(mmr_fstore_snapshot_t *snap); /* NULL is a no-op */
/* Wall-clock ms when the snapshot was taken. */
int64_t mmr_fstore_snapshot_time_ms(const mmr_fstore_snapshot_t *snap);

/* Called once per item: stats is NULL when the item has no stats record. item, its arrays
 * and stats are valid only during the call. Return 0 to go on, non-zero to stop. */
typedef int (*mmr_fstore_item_stats_fn)(void *opaque, const mmr_item_t *item,
                                        const mmr_item_stats_t *stats);
/* Calls fn for every non-deleted item of the snapshot, in key (byte) order. Returns MMR_OK
 * also when fn stopped. Errors: MMR_ERR_CORRUPT (stops at the undecodable record; its id is
 * in err), MMR_ERR_NOMEM, MMR_ERR_STORE. */
mmr_status_t mmr_fstore_snapshot_iter_items(mmr_fstore_snapshot_t *snap,
                                            mmr_fstore_item_stats_fn fn, void *opaque,
                                            mmr_err_t *err);

/* Called once per user; user_id and user are valid only during the call. Return 0 to go
 * on, non-zero to stop. */
typedef int (*mmr_fstore_user_fn)(void *opaque, const char *user_id, const mmr_user_t *user);
/* Calls fn for every user of the snapshot, in key order. Errors as
 * mmr_fstore_snapshot_iter_items. */
mmr_status_t mmr_fstore_snapshot_iter_users(mmr_fstore_snapshot_t *snap, mmr_fstore_user_fn fn,
                                            void *opaque, mmr_err_t *err);

/* Called once per stored offset (see mmr_fstore_batch_set_offset); topic is valid only
 * during the call. Return 0 to go on, non-zero to stop. */
typedef int (*mmr_fstore_offset_fn)(void *opaque, const char *topic, int32_t partition,
                                    int64_t next_offset);
/* Calls fn for every topic/partition with a stored offset in the snapshot, in key order
 * ("offset/<topic>/<partition>": by topic, partitions in byte order of their decimal
 * form). Errors: MMR_ERR_CORRUPT (malformed key or value), MMR_ERR_STORE. */
mmr_status_t mmr_fstore_snapshot_iter_offsets(mmr_fstore_snapshot_t *snap,
                                              mmr_fstore_offset_fn fn, void *opaque,
                                              mmr_err_t *err);

/* --- generic meta keys (the model registry) ------------------------------------------ */

/* Keys are 1..MMR_META_KEY_MAX bytes and must not be "schema_version" nor start with
 * "offset/" (the store's own keys); callers use a prefix per owner ("model/..."). */
#define MMR_META_KEY_MAX 512

/* One write of a meta batch: val NULL = delete key. Borrowed for the call. */
typedef struct mmr_fstore_meta_op {
    const char *key;
    const void *val;
    size_t len;
} mmr_fstore_meta_op_t;

/* Applies ops[0..n) as ONE RocksDB WriteBatch with the WAL fsynced (all or nothing; a
 * later op on the same key wins). Errors: MMR_ERR_INVALID (a reserved or bad key; nothing
 * is written), MMR_ERR_UNSUPPORTED (read-only handle), MMR_ERR_STORE. */
mmr_status_t mmr_fstore_meta_write(mmr_fstore_t *fs, size_t n, const mmr_fstore_meta_op_t *ops,
                                   mmr_err_t *err);
/* One-op forms of mmr_fstore_meta_write. Deleting a missing key is not an error. */
mmr_status_t mmr_fstore_meta_put(mmr_fstore_t *fs, const char *key, const void *val, size_t len,
                                 mmr_err_t *err);
mmr_status_t mmr_fstore_meta_delete(mmr_fstore_t *fs, const char *key, mmr_err_t *err);
/* Reads key. On MMR_OK *val is malloc'ed (owned by the caller: free(); never NULL, even
 * for an empty value) and *len its size. Errors: MMR_ERR_NOT_FOUND, MMR_ERR_INVALID,
 * MMR_ERR_NOMEM, MMR_ERR_STORE. */
mmr_status_t mmr_fstore_meta_get(mmr_fstore_t *fs, const char *key, void **val, size_t *len,
                                 mmr_err_t *err);
/* Called per key; key (NUL-terminated) and val are valid only during the call. Return 0 to
 * go on, non-zero to stop. */
typedef int (*mmr_fstore_meta_fn)(void *opaque, const char *key, const void *val, size_t len);
/* Calls fn for every meta key starting with prefix (non-empty), in key order, from one
 * consistent snapshot. Returns MMR_OK also when fn stopped. Errors: MMR_ERR_INVALID,
 * MMR_ERR_STORE. */
mmr_status_t mmr_fstore_meta_iter(mmr_fstore_t *fs, const char *prefix, mmr_fstore_meta_fn fn,
                                  void *opaque, mmr_err_t *err);

#endif
