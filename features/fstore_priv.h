/* fstore_priv.h — the store handle shared by fstore.c (open, reads) and fstore_batch.c
 * (writes). Private to features/: nothing outside sees RocksDB types. */
#ifndef MMR_FSTORE_PRIV_H
#define MMR_FSTORE_PRIV_H

#include <rocksdb/c.h>
#include <stdatomic.h>

#include "mmr_fstore.h"

typedef struct mmr_fstore_cache mmr_fstore_cache_t;

/* Column families, in the order they are opened (handles are indexed by this enum). */
typedef enum {
    FS_CF_DEFAULT = 0,
    FS_CF_ITEMS,
    FS_CF_USERS,
    FS_CF_STATS,
    FS_CF_DEDUP,
    FS_CF_META,
    FS_CF_COUNT
} fs_cf_t;

#define MMR_FSTORE_SCHEMA_VERSION 1u
#define MMR_FSTORE_OFFSET_KEY_MAX (sizeof "offset/" + MMR_ID_MAX + 1 + 11) /* incl. NUL */

struct mmr_fstore {
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[FS_CF_COUNT];
    rocksdb_column_family_handle_t **extra_cf; /* unknown CFs of a newer schema, [n_extra] */
    int n_extra;
    rocksdb_compactionfilter_t *dedup_filter; /* not owned by RocksDB: destroyed after close */
    rocksdb_readoptions_t *ro;   /* shared by readers: RocksDB only reads it */
    rocksdb_writeoptions_t *wo;
    uint32_t user_ring;
    int64_t dedup_ttl_ms;
    double half_life_ms;
    atomic_int batch_open;       /* 1 while a batch exists (single-writer guard) */
    int read_only;               /* opened with opts.read_only: every write is refused */
    mmr_fstore_cache_t *cache;   /* hot items (fstore_cache.c) */
};

/* The one RocksDB error boundary: when rerr is set, records "<what>: <rerr>" as
 * MMR_ERR_STORE in err, frees rerr and returns MMR_ERR_STORE; else returns MMR_OK. */
mmr_status_t mmr_fstore_rocks_status(char *rerr, mmr_err_t *err, const char *what);

/* Writes the meta key of topic/partition into key (MMR_FSTORE_OFFSET_KEY_MAX bytes);
 * returns its length, or 0 when topic is invalid. */
size_t mmr_fstore_offset_key(char *key, const char *topic, int32_t partition);

/* MultiGet of n (≥ 1) ids from one CF. On MMR_OK *vals_out / *lens_out are [n] arrays of
 * RocksDB-owned values (NULL when absent) and their lengths; release with
 * mmr_fstore_multiget_free. Errors: MMR_ERR_INVALID (bad id), MMR_ERR_NOMEM, MMR_ERR_STORE. */
mmr_status_t mmr_fstore_multiget(mmr_fstore_t *fs, fs_cf_t cf, size_t n, const char *const *ids,
                                 char ***vals_out, size_t **lens_out, const char *what,
                                 mmr_err_t *err);
void mmr_fstore_multiget_free(char **vals, size_t *lens, size_t n);

/* The hot-item cache (fstore_cache.c). NULL when out of memory. */
mmr_fstore_cache_t *mmr_fstore_cache_new(size_t capacity);
void mmr_fstore_cache_free(mmr_fstore_cache_t *c);
/* The single writer brackets each WriteBatch: begin before rocksdb_write, then the applies
 * of what the batch wrote (only when the write succeeded), then end. */
void mmr_fstore_cache_write_begin(mmr_fstore_cache_t *c);
void mmr_fstore_cache_apply_stats(mmr_fstore_cache_t *c, const char *id, size_t len,
                                  const mmr_item_stats_t *delta, double half_life_ms);
void mmr_fstore_cache_apply_item(mmr_fstore_cache_t *c, const char *id, size_t len, int deleted,
                                 int64_t created_ms);
void mmr_fstore_cache_write_end(mmr_fstore_cache_t *c);
void mmr_fstore_cache_get_stats(mmr_fstore_cache_t *c, uint64_t *hits, uint64_t *misses,
                                uint64_t *entries);

/* strlen(id) when id is a valid id (1..MMR_ID_MAX bytes), else 0. */
size_t mmr_fstore_id_len(const char *id);

#endif
