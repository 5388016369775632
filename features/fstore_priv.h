/* fstore_priv.h — the store handle shared by fstore.c (open, reads) and fstore_batch.c
 * (writes). Private to features/: nothing outside sees RocksDB types. */
#ifndef MMR_FSTORE_PRIV_H
#define MMR_FSTORE_PRIV_H

#include <rocksdb/c.h>
#include <stdatomic.h>

#include "mmr_fstore.h"

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
};

/* The one RocksDB error boundary: when rerr is set, records "<what>: <rerr>" as
 * MMR_ERR_STORE in err, frees rerr and returns MMR_ERR_STORE; else returns MMR_OK. */
mmr_status_t mmr_fstore_rocks_status(char *rerr, mmr_err_t *err, const char *what);

/* Writes the meta key of topic/partition into key (MMR_FSTORE_OFFSET_KEY_MAX bytes);
 * returns its length, or 0 when topic is invalid. */
size_t mmr_fstore_offset_key(char *key, const char *topic, int32_t partition);

/* strlen(id) when id is a valid id (1..MMR_ID_MAX bytes), else 0. */
size_t mmr_fstore_id_len(const char *id);

#endif
