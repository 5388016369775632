/* mmr_fstore.h — the RocksDB feature store: users, items, stats, dedup marks, offsets.
 *
 * One RocksDB database, column families:
 *   items  item_id → modality embeddings, attrs-free record, deleted flag, version
 *   users  user_id → bounded ring of recent interactions (item, type, value, ts)
 *   stats  item_id → counters (impressions, clicks, positives, decayed popularity),
 *          updated through a merge operator so writers never read-modify-write
 *   dedup  event_id → ts_ms, dropped by a TTL compaction filter
 *   meta   "offset/<topic>/<partition>" → next offset; schema version; model registry
 *
 * Exactly-once state: a batch (mmr_fstore_batch_*) gathers feature updates, dedup marks
 * and the next Kafka offsets, and commits them as ONE RocksDB WriteBatch. Callers
 * commit Kafka offsets only after mmr_fstore_batch_commit returns MMR_OK, and seek to
 * mmr_fstore_get_offset on assignment. Knows nothing of Kafka, gRPC or CUDA.
 *
 * Threads: reads are safe from any thread. Batches are built and committed by one
 * writer thread at a time (the user ring is read-modify-write). */
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

/* A validated event. Strings are borrowed for the duration of the call they are passed to. */
typedef struct mmr_event {
    const char *event_id; /* may be empty: then no dedup is possible */
    const char *user_id;
    const char *item_id;
    mmr_event_type_t type;
    float value;
    int64_t ts_ms;
} mmr_event_t;

/* Positive engagement per DESIGN §6 (CLICK/LIKE/SHARE/PURCHASE, WATCH ≥ threshold, RATING ≥ 4). */
int mmr_event_is_positive(const mmr_event_t *ev);

typedef struct mmr_fstore_opts {
    const char *path;            /* database directory; created if missing */
    uint32_t user_ring;          /* interactions kept per user (default 64 when 0) */
    int64_t dedup_ttl_s;         /* event_id marks older than this are dropped (default 7 days) */
    double popularity_half_life_s; /* decay of item popularity (default 1 day) */
    size_t block_cache_mb;       /* default 64 */
    int sync_writes;             /* fsync the WAL on each batch commit */
} mmr_fstore_opts_t;

/* Opens (creating if needed) the store. On success *out is owned by the caller and freed
 * with mmr_fstore_close. Errors: MMR_ERR_STORE (RocksDB message in err), MMR_ERR_INVALID. */
mmr_status_t mmr_fstore_open(const mmr_fstore_opts_t *opts, mmr_fstore_t **out, mmr_err_t *err);
/* Flushes and closes. NULL is a no-op. */
void mmr_fstore_close(mmr_fstore_t *fs);

/* --- writing: one batch = one atomic WriteBatch -------------------------------------- */
mmr_fstore_batch_t *mmr_fstore_batch_new(mmr_fstore_t *fs);
/* Adds an event. Returns 1 if it will be applied, 0 if it is a duplicate (its event_id is
 * already in the store or earlier in this batch), negative status on error. */
int mmr_fstore_batch_add_event(mmr_fstore_batch_t *b, const mmr_event_t *ev, mmr_err_t *err);
/* Records that everything before next_offset of topic/partition is in this batch. */
void mmr_fstore_batch_set_offset(mmr_fstore_batch_t *b, const char *topic, int32_t partition,
                                 int64_t next_offset);
/* Writes the batch atomically. The batch stays owned by the caller (free it after). */
mmr_status_t mmr_fstore_batch_commit(mmr_fstore_batch_t *b, mmr_err_t *err);
size_t mmr_fstore_batch_count(const mmr_fstore_batch_t *b); /* events added (non-duplicates) */
void mmr_fstore_batch_free(mmr_fstore_batch_t *b);

/* Next offset stored for topic/partition, or -1 in *next_offset when none is stored. */
mmr_status_t mmr_fstore_get_offset(mmr_fstore_t *fs, const char *topic, int32_t partition,
                                   int64_t *next_offset, mmr_err_t *err);

/* --- reading ------------------------------------------------------------------------- */
typedef struct mmr_item_stats {
    int64_t impressions;
    int64_t clicks;      /* CLICK events */
    int64_t positives;   /* events for which mmr_event_is_positive holds */
    double popularity;   /* positives decayed with the configured half-life, as of last_ts_ms */
    int64_t last_ts_ms;  /* newest event seen for the item */
} mmr_item_stats_t;

/* Batched read (MultiGet). found[i] = 1 and out[i] filled when the item has stats, else
 * found[i] = 0 and out[i] zeroed. */
mmr_status_t mmr_fstore_get_item_stats(mmr_fstore_t *fs, size_t n, const char *const *item_ids,
                                       mmr_item_stats_t *out, uint8_t *found, mmr_err_t *err);

typedef struct mmr_interaction {
    char item_id[MMR_ID_MAX + 1];
    mmr_event_type_t type;
    float value;
    int64_t ts_ms;
} mmr_interaction_t;

typedef struct mmr_user {
    uint32_t n;                     /* interactions held, oldest first */
    int64_t events_total;           /* all events ever applied for the user */
    mmr_interaction_t *recent;      /* [n] */
} mmr_user_t;

/* Reads a user. On MMR_OK *out is owned by the caller (mmr_user_free). Unknown user:
 * MMR_ERR_NOT_FOUND. */
mmr_status_t mmr_fstore_get_user(mmr_fstore_t *fs, const char *user_id, mmr_user_t **out,
                                 mmr_err_t *err);
void mmr_user_free(mmr_user_t *u);

#endif
