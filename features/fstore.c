/* fstore.c — opening the RocksDB feature store (column families, options, merge operator,
 * dedup TTL filter, schema check; read-write or read-only) and its read paths: point reads,
 * MultiGets, full scans and snapshots (export). Writes live in fstore_batch.c, record
 * formats in fstore_codec.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fstore_codec.h"
#include "fstore_priv.h"
#include "mmr_cpu.h"
#include "mmr_log.h"
#include "mmr_time.h"

#define LOG_MOD "fstore"

static const char *const cf_names[FS_CF_COUNT] = {
    [FS_CF_DEFAULT] = "default", [FS_CF_ITEMS] = "items", [FS_CF_USERS] = "users",
    [FS_CF_STATS] = "stats",     [FS_CF_DEDUP] = "dedup", [FS_CF_META] = "meta",
};

static const char schema_key[] = "schema_version";
#define FS_READ_ONLY_TRIES 50 /* read-only opens tried while the store changes under them */

/* --- small shared helpers ------------------------------------------------------------ */

mmr_status_t mmr_fstore_rocks_status(char *rerr, mmr_err_t *err, const char *what) {
    if (!rerr) return MMR_OK;
    mmr_err_set(err, MMR_ERR_STORE, "%s: %s", what, rerr);
    rocksdb_free(rerr);
    return MMR_ERR_STORE;
}

size_t mmr_fstore_id_len(const char *id) {
    if (!id) return 0;
    size_t n = strnlen(id, MMR_ID_MAX + 1);
    return n > MMR_ID_MAX ? 0 : n;
}

size_t mmr_fstore_offset_key(char *key, const char *topic, int32_t partition) {
    if (!mmr_fstore_id_len(topic)) return 0;
    int n = snprintf(key, MMR_FSTORE_OFFSET_KEY_MAX, "offset/%s/%d", topic, (int)partition);
    return n > 0 && (size_t)n < MMR_FSTORE_OFFSET_KEY_MAX ? (size_t)n : 0;
}

/* --- stats merge operator ------------------------------------------------------------
 * Operands and the base value are stats deltas (fstore_codec.h); full and partial merge
 * both fold them with mmr_fstore_codec_stats_combine, which is associative, so RocksDB may
 * pre-merge any run of operands during flush/compaction.
 * A malformed operand or base is skipped with a WARN log instead of failing the merge:
 * a failed merge fails the compaction that meets it and, through RocksDB's background
 * error, stops all writes. Losing one item's counters beats stopping ingestion. Reads of a
 * malformed value that no merge has touched still report MMR_ERR_CORRUPT. */
typedef struct stats_merge_state {
    double half_life_ms;
} stats_merge_state_t;

static char *stats_fold(const stats_merge_state_t *st, const char *key, size_t key_len,
                        const char *base, size_t base_len, const char *const *ops,
                        const size_t *op_lens, int n_ops, unsigned char *success,
                        size_t *out_len) {
    mmr_item_stats_t acc = {0}, d;
    int have = 0;
    mmr_err_t e;
    for (int i = -1; i < n_ops; i++) {
        const char *v = i < 0 ? base : ops[i];
        size_t len = i < 0 ? base_len : op_lens[i];
        if (!v) continue;
        if (mmr_fstore_codec_decode_stats(v, len, &d, &e) != MMR_OK) {
            mmr_log(MMR_LOG_WARN, LOG_MOD, "stats merge: item '%.*s': dropping %s: %s",
                    (int)(key_len > MMR_ID_MAX ? MMR_ID_MAX : key_len), key,
                    i < 0 ? "base value" : "operand", e.msg);
            continue;
        }
        if (have) {
            mmr_fstore_codec_stats_combine(&acc, &d, st->half_life_ms);
        } else {
            acc = d;
            have = 1;
        }
    }
    /* RocksDB copies the result and hands it back to stats_free. */
    char *out = malloc(MMR_FSTORE_STATS_SIZE);
    if (!out) {
        *success = 0;
        *out_len = 0;
        return NULL;
    }
    mmr_fstore_codec_encode_stats((uint8_t *)out, &acc);
    *success = 1;
    *out_len = MMR_FSTORE_STATS_SIZE;
    return out;
}

static char *stats_full_merge(void *state, const char *key, size_t key_len, const char *base,
                              size_t base_len, const char *const *ops, const size_t *op_lens,
                              int n_ops, unsigned char *success, size_t *out_len) {
    return stats_fold(state, key, key_len, base, base_len, ops, op_lens, n_ops, success, out_len);
}

static char *stats_partial_merge(void *state, const char *key, size_t key_len,
                                 const char *const *ops, const size_t *op_lens, int n_ops,
                                 unsigned char *success, size_t *out_len) {
    return stats_fold(state, key, key_len, NULL, 0, ops, op_lens, n_ops, success, out_len);
}

static void stats_free(void *state, const char *value, size_t len) { free((void *)value); }
static const char *stats_merge_name(void *state) { return "mmr.stats.v1"; }

/* --- dedup TTL compaction filter -------------------------------------------------------
 * RocksDB calls it from several compaction threads at once: it only reads its state. */
typedef struct dedup_filter_state {
    int64_t ttl_ms;
} dedup_filter_state_t;

static unsigned char dedup_filter(void *state, int level, const char *key, size_t key_len,
                                  const char *value, size_t value_len, char **new_value,
                                  size_t *new_value_len, unsigned char *value_changed) {
    const dedup_filter_state_t *st = state;
    if (value_len != 8) return 1; /* a malformed mark protects nothing: drop it */
    int64_t written = mmr_fstore_codec_get_i64((const uint8_t *)value);
    return mmr_now_ms() - written > st->ttl_ms;
}

static const char *dedup_filter_name(void *state) { return "mmr.dedup_ttl"; }

/* --- open / close -------------------------------------------------------------------- */

/* Closes the RocksDB handle and its column families; fs can open again. */
static void fs_close_db(mmr_fstore_t *fs) {
    for (int i = 0; i < FS_CF_COUNT; i++)
        if (fs->cf[i]) rocksdb_column_family_handle_destroy(fs->cf[i]);
    for (int i = 0; i < fs->n_extra; i++)
        if (fs->extra_cf[i]) rocksdb_column_family_handle_destroy(fs->extra_cf[i]);
    free(fs->extra_cf);
    if (fs->db) rocksdb_close(fs->db);
    memset(fs->cf, 0, sizeof fs->cf);
    fs->extra_cf = NULL;
    fs->n_extra = 0;
    fs->db = NULL;
}

static void fs_release(mmr_fstore_t *fs) {
    fs_close_db(fs);
    /* Only after the DB is gone: RocksDB borrows the filter (the merge operator, by
     * contrast, is owned by the options and freed with them). */
    if (fs->dedup_filter) rocksdb_compactionfilter_destroy(fs->dedup_filter);
    if (fs->ro) rocksdb_readoptions_destroy(fs->ro);
    if (fs->wo) rocksdb_writeoptions_destroy(fs->wo);
    mmr_fstore_cache_free(fs->cache);
    free(fs);
}

/* Options for the DB and each column family; destroyed by the caller after open. */
typedef struct fs_open_opts {
    rocksdb_options_t *db;
    rocksdb_options_t *cf[FS_CF_COUNT];
} fs_open_opts_t;

static void open_opts_destroy(fs_open_opts_t *o) {
    if (o->db) rocksdb_options_destroy(o->db);
    for (int i = 0; i < FS_CF_COUNT; i++)
        if (o->cf[i]) rocksdb_options_destroy(o->cf[i]);
}

static mmr_status_t open_opts_build(mmr_fstore_t *fs, const mmr_fstore_opts_t *opts,
                                    int compression, fs_open_opts_t *o, mmr_err_t *err) {
    memset(o, 0, sizeof *o);
    rocksdb_options_t *db = o->db = rocksdb_options_create();
    int cpus = mmr_cpu_count();
    rocksdb_options_increase_parallelism(db, cpus < 2 ? 2 : cpus > 8 ? 8 : cpus);
    rocksdb_options_set_create_if_missing(db, !opts->must_exist);
    rocksdb_options_set_create_missing_column_families(db, 1);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(db, 1);
    rocksdb_options_set_bytes_per_sync(db, 1 << 20);
    rocksdb_options_set_keep_log_file_num(db, 8);
    /* RocksDB's info LOG lives in the store folder: on a full disk a failed LOG write, then
     * the error handler's own LOG write, trip an assertion in Debian's librocksdb (7.8,
     * built with assertions) and abort the process. Only fatal messages are logged by
     * default; rocksdb.info_log_level=INFO_LEVEL brings the rest back (with that risk). */
    rocksdb_options_set_info_log_level(db, 4 /* FATAL_LEVEL */);
    /* The hash memtables below need concurrent memtable writes off; RocksDB then
     * serialises the inserts of concurrent writers (batches, meta writes) itself. */
    rocksdb_options_set_allow_concurrent_memtable_write(db, 0);
    rocksdb_options_set_compression(db, compression);
    /* All memtables together stay under 256 MiB (the largest is flushed first); without a
     * budget five column families may hold 2 x 64 MiB each, and a soak run saw resident
     * memory swing by 200 MiB with the flushes. rocksdb.db_write_buffer_size changes it. */
    rocksdb_options_set_db_write_buffer_size(db, (size_t)256 << 20);
    if (opts->rocksdb_options && *opts->rocksdb_options) {
        /* Operator overrides (config rocksdb.*) on top of our defaults, before the column
         * families copy them. */
        rocksdb_options_t *tuned = rocksdb_options_create();
        char *rerr = NULL;
        rocksdb_get_options_from_string(db, opts->rocksdb_options, tuned, &rerr);
        if (rerr) {
            rocksdb_options_destroy(tuned);
            mmr_err_set(err, MMR_ERR_INVALID, "fstore open: rocksdb options '%s': %s",
                        opts->rocksdb_options, rerr);
            free(rerr);
            return MMR_ERR_INVALID;
        }
        rocksdb_options_destroy(db);
        db = o->db = tuned;
    }

    size_t cache_mb = opts->block_cache_mb ? opts->block_cache_mb : 64;
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(cache_mb << 20);
    for (int i = 0; i < FS_CF_COUNT; i++) {
        rocksdb_options_t *c = o->cf[i] = rocksdb_options_create_copy(db);
        rocksdb_block_based_table_options_t *bb = rocksdb_block_based_options_create();
        rocksdb_block_based_options_set_block_cache(bb, cache); /* shared: holds a reference */
        /* Point lookups dominate every CF but meta; dedup and first-touch user lookups
         * mostly miss, which bloom filters answer without a data block (SSTs) or a
         * skiplist search (memtable). */
        if (i != FS_CF_META && i != FS_CF_DEFAULT) {
            rocksdb_block_based_options_set_filter_policy(
                bb, rocksdb_filterpolicy_create_bloom_full(10));
            rocksdb_options_set_memtable_whole_key_filtering(c, 1);
            rocksdb_options_set_memtable_prefix_bloom_size_ratio(c, 0.05);
        }
        /* Users, dedup marks and stats are only ever read by exact key, never iterated:
         * a hash of skiplists (the whole key as its prefix) turns each memtable insert
         * and lookup from a search through one big skiplist into a bucket lookup. The
         * sorted skiplist was 40% of ingestion's CPU; the raw write rate doubled
         * (bench_ingest: 95k -> 200k events/s). Items stay sorted: iter_items walks them.
         * An iterator over these three would need total_order_seek (the whole key is the
         * prefix, so a prefix-mode iterator sees one key). */
        if (i == FS_CF_DEDUP || i == FS_CF_USERS || i == FS_CF_STATS) {
            rocksdb_options_set_prefix_extractor(c, rocksdb_slicetransform_create_noop());
            size_t buckets = rocksdb_options_get_write_buffer_size(c) / 256; /* 3% of it */
            rocksdb_options_set_hash_skip_list_rep(c, buckets < 1024 ? 1024 : buckets, 4, 4);
        }
        rocksdb_options_set_block_based_table_factory(c, bb);
        rocksdb_block_based_options_destroy(bb);
    }
    rocksdb_cache_destroy(cache);

    stats_merge_state_t *ms = malloc(sizeof *ms);
    if (!ms) return mmr_err_set(err, MMR_ERR_NOMEM, "fstore open: out of memory");
    ms->half_life_ms = fs->half_life_ms;
    /* Owned by the options (and the DB's copies) from here; freed with the last of them. */
    rocksdb_options_set_merge_operator(
        o->cf[FS_CF_STATS],
        rocksdb_mergeoperator_create(ms, free, stats_full_merge, stats_partial_merge, stats_free,
                                     stats_merge_name));
    rocksdb_options_set_compaction_filter(o->cf[FS_CF_DEDUP], fs->dedup_filter);
    return MMR_OK;
}

/* Column families already in the database at path; *names NULL when there is none. */
static mmr_status_t list_cfs(const char *path, char ***names, size_t *n, mmr_err_t *err) {
    *names = NULL;
    *n = 0;
    char current[4096];
    struct stat st;
    if (snprintf(current, sizeof current, "%s/CURRENT", path) >= (int)sizeof current)
        return mmr_err_set(err, MMR_ERR_INVALID, "fstore open: path too long");
    if (stat(current, &st) != 0) {
        if (errno == ENOENT) return MMR_OK;
        return mmr_err_set(err, MMR_ERR_IO, "fstore open: %s: %s", current, strerror(errno));
    }
    rocksdb_options_t *o = rocksdb_options_create();
    char *rerr = NULL;
    *names = rocksdb_list_column_families(o, path, n, &rerr);
    rocksdb_options_destroy(o);
    return mmr_fstore_rocks_status(rerr, err, "fstore open: list column families");
}

static mmr_status_t open_db(mmr_fstore_t *fs, const mmr_fstore_opts_t *opts, char **existing,
                            size_t n_existing, int compression, char **rerr, mmr_err_t *err) {
    fs_open_opts_t o;
    mmr_status_t st = open_opts_build(fs, opts, compression, &o, err);
    if (st != MMR_OK) {
        open_opts_destroy(&o);
        return st;
    }
    /* Ours first, then any column family a newer schema added (opened with defaults so
     * that the schema check below can refuse the store with a clear message). */
    int total = FS_CF_COUNT;
    const char *names[FS_CF_COUNT + 64];
    const rocksdb_options_t *cfo[FS_CF_COUNT + 64];
    rocksdb_column_family_handle_t *h[FS_CF_COUNT + 64] = {0};
    for (int i = 0; i < FS_CF_COUNT; i++) {
        names[i] = cf_names[i];
        cfo[i] = o.cf[i];
    }
    for (size_t i = 0; i < n_existing; i++) {
        int known = 0;
        for (int j = 0; j < FS_CF_COUNT; j++) known |= !strcmp(existing[i], cf_names[j]);
        if (known) continue;
        if (total == FS_CF_COUNT + 64) {
            open_opts_destroy(&o);
            return mmr_err_set(err, MMR_ERR_UNSUPPORTED, "fstore open: too many column families");
        }
        names[total] = existing[i];
        cfo[total++] = o.db;
    }
    /* Read-only: no lock, no WAL replay into files, no flush or compaction: a reader beside
     * the writer (error_if_wal_file_exists 0: the live WAL is replayed into memory). */
    fs->db = opts->read_only
                 ? rocksdb_open_for_read_only_column_families(o.db, opts->path, total, names,
                                                              cfo, h, 0, rerr)
                 : rocksdb_open_column_families(o.db, opts->path, total, names, cfo, h, rerr);
    open_opts_destroy(&o);
    if (!fs->db) return MMR_ERR_STORE; /* the caller converts *rerr */
    memcpy(fs->cf, h, sizeof fs->cf);
    fs->n_extra = total - FS_CF_COUNT;
    if (fs->n_extra) {
        fs->extra_cf = malloc(sizeof *fs->extra_cf * (size_t)fs->n_extra);
        if (!fs->extra_cf) {
            for (int i = FS_CF_COUNT; i < total; i++) rocksdb_column_family_handle_destroy(h[i]);
            fs->n_extra = 0;
            return mmr_err_set(err, MMR_ERR_NOMEM, "fstore open: out of memory");
        }
        memcpy(fs->extra_cf, h + FS_CF_COUNT, sizeof *fs->extra_cf * (size_t)fs->n_extra);
    }
    return MMR_OK;
}

/* The MANIFEST a store's CURRENT names, and its size: RocksDB appends to it (or starts a
 * new one) for every flush and compaction. name is "" when CURRENT cannot be read. */
typedef struct manifest_mark {
    char name[128];
    off_t size;
} manifest_mark_t;

static manifest_mark_t manifest_mark(const char *path) {
    manifest_mark_t m = {{0}, -1};
    char file[4096];
    snprintf(file, sizeof file, "%s/CURRENT", path);
    FILE *f = fopen(file, "r");
    if (!f) return m;
    if (!fgets(m.name, sizeof m.name, f)) m.name[0] = '\0';
    fclose(f);
    m.name[strcspn(m.name, "\n")] = '\0';
    struct stat st;
    if (snprintf(file, sizeof file, "%s/%s", path, m.name) < (int)sizeof file && stat(file, &st) == 0)
        m.size = st.st_size;
    return m;
}

/* A read-only open beside a live writer. RocksDB reads the MANIFEST, then the table files
 * and WALs it names, while the writer flushes, compacts and deletes obsolete files. A file
 * gone meanwhile fails the open; worse, a WAL deleted after the MANIFEST was read is
 * skipped without error, so one column family misses its newest batches while another
 * has them (test_fstore_snapshot saw items behind the offsets). The writer records every
 * flush or compaction in the MANIFEST before it deletes any file, so an open during which
 * the MANIFEST did not change saw one committed state; any other open is tried again. */
static mmr_status_t open_read_only(mmr_fstore_t *fs, const mmr_fstore_opts_t *opts,
                                   char **existing, size_t n_existing, int compression,
                                   char **rerr, mmr_err_t *err) {
    for (int t = 1;; t++) {
        manifest_mark_t before = manifest_mark(opts->path);
        mmr_status_t st = open_db(fs, opts, existing, n_existing, compression, rerr, err);
        if (st == MMR_OK) {
            manifest_mark_t after = manifest_mark(opts->path);
            if (before.size >= 0 && before.size == after.size && !strcmp(before.name, after.name))
                return MMR_OK;
            fs_close_db(fs);
        } else if (!*rerr || !strstr(*rerr, "No such file")) {
            return st;
        }
        if (t == FS_READ_ONLY_TRIES) {
            if (st != MMR_OK) return st; /* the caller reports *rerr */
            return mmr_err_set(err, MMR_ERR_BUSY, "fstore open: %s kept changing during %d "
                               "read-only opens", opts->path, t);
        }
        mmr_log(MMR_LOG_DEBUG, LOG_MOD, "read-only open %d of %s: %s", t, opts->path,
                *rerr ? *rerr : "the store changed meanwhile");
        rocksdb_free(*rerr);
        *rerr = NULL;
        usleep(1000u * (unsigned)(t < 10 ? t : 10));
    }
}

static mmr_status_t open_store(mmr_fstore_t *fs, const mmr_fstore_opts_t *opts, char **existing,
                               size_t n_existing, int compression, char **rerr, mmr_err_t *err) {
    return opts->read_only ? open_read_only(fs, opts, existing, n_existing, compression, rerr, err)
                           : open_db(fs, opts, existing, n_existing, compression, rerr, err);
}

/* Writes our schema version into a fresh store, refuses a newer one. */
static mmr_status_t check_schema(mmr_fstore_t *fs, const char *path, mmr_err_t *err) {
    char *rerr = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(fs->db, fs->ro, fs->cf[FS_CF_META], schema_key, sizeof schema_key - 1,
                             &len, &rerr);
    if (rerr) return mmr_fstore_rocks_status(rerr, err, "fstore open: read schema version");
    if (!v && fs->read_only) return MMR_OK; /* an empty store: nothing to refuse */
    if (!v) {
        uint8_t buf[4];
        mmr_fstore_codec_put_u32(buf, MMR_FSTORE_SCHEMA_VERSION);
        rocksdb_put_cf(fs->db, fs->wo, fs->cf[FS_CF_META], schema_key, sizeof schema_key - 1,
                       (const char *)buf, sizeof buf, &rerr);
        return mmr_fstore_rocks_status(rerr, err, "fstore open: write schema version");
    }
    mmr_status_t st = MMR_OK;
    if (len != 4) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "fstore open: %s: schema version is %zu bytes", path,
                         len);
    } else {
        uint32_t ver = mmr_fstore_codec_get_u32((const uint8_t *)v);
        if (ver > MMR_FSTORE_SCHEMA_VERSION)
            st = mmr_err_set(err, MMR_ERR_UNSUPPORTED,
                             "fstore open: %s has schema version %u, this build reads up to %u "
                             "(written by a newer mmrec)",
                             path, ver, MMR_FSTORE_SCHEMA_VERSION);
    }
    rocksdb_free(v);
    return st;
}

mmr_status_t mmr_fstore_open(const mmr_fstore_opts_t *opts, mmr_fstore_t **out, mmr_err_t *err) {
    *out = NULL;
    if (!opts || !opts->path || !opts->path[0])
        return mmr_err_set(err, MMR_ERR_INVALID, "fstore open: no path");
    if (opts->user_ring > MMR_USER_RING_MAX)
        return mmr_err_set(err, MMR_ERR_INVALID, "fstore open: user_ring %u > %d", opts->user_ring,
                           MMR_USER_RING_MAX);
    if (opts->dedup_ttl_s < 0 || opts->dedup_ttl_s > INT64_MAX / 1000)
        return mmr_err_set(err, MMR_ERR_INVALID, "fstore open: bad dedup_ttl_s %lld",
                           (long long)opts->dedup_ttl_s);
    if (!(opts->popularity_half_life_s >= 0) || !isfinite(opts->popularity_half_life_s))
        return mmr_err_set(err, MMR_ERR_INVALID, "fstore open: bad popularity_half_life_s");
    if (opts->block_cache_mb > ((size_t)1 << 20))
        return mmr_err_set(err, MMR_ERR_INVALID, "fstore open: block_cache_mb %zu too large",
                           opts->block_cache_mb);

    mmr_fstore_t *fs = calloc(1, sizeof *fs);
    if (!fs) return mmr_err_set(err, MMR_ERR_NOMEM, "fstore open: out of memory");
    fs->user_ring = opts->user_ring ? opts->user_ring : 64;
    fs->dedup_ttl_ms = (opts->dedup_ttl_s ? opts->dedup_ttl_s : 7 * 86400) * 1000;
    fs->half_life_ms =
        (opts->popularity_half_life_s > 0 ? opts->popularity_half_life_s : 86400.0) * 1000.0;
    atomic_init(&fs->batch_open, 0);
    if (!(fs->cache = mmr_fstore_cache_new(opts->item_cache ? opts->item_cache : 262144))) {
        fs_release(fs);
        return mmr_err_set(err, MMR_ERR_NOMEM, "fstore open: out of memory (item cache)");
    }
    fs->ro = rocksdb_readoptions_create();
    fs->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(fs->wo, opts->sync_writes ? 1 : 0);
    dedup_filter_state_t *fst = malloc(sizeof *fst);
    if (!fst) {
        fs_release(fs);
        return mmr_err_set(err, MMR_ERR_NOMEM, "fstore open: out of memory");
    }
    fst->ttl_ms = fs->dedup_ttl_ms;
    /* A read-only handle runs no compaction: it needs no TTL filter. */
    fs->read_only = opts->read_only != 0;
    if (opts->read_only)
        free(fst);
    else
        fs->dedup_filter = rocksdb_compactionfilter_create(fst, free, dedup_filter,
                                                           dedup_filter_name);

    char **existing = NULL;
    size_t n_existing = 0;
    mmr_status_t st = list_cfs(opts->path, &existing, &n_existing, err);
    if (st == MMR_OK && !existing && (opts->must_exist || opts->read_only))
        st = mmr_err_set(err, MMR_ERR_NOT_FOUND, "fstore open: no store at %s", opts->path);
    if (st == MMR_OK) {
        char *rerr = NULL;
        int compression = rocksdb_lz4_compression;
        st = open_store(fs, opts, existing, n_existing, compression, &rerr, err);
        if (st == MMR_ERR_STORE && rerr && strstr(rerr, "ompression")) {
            /* This librocksdb was built without LZ4: run uncompressed rather than fail. */
            mmr_log(MMR_LOG_INFO, LOG_MOD, "LZ4 unavailable (%s), opening uncompressed", rerr);
            rocksdb_free(rerr);
            rerr = NULL;
            compression = rocksdb_no_compression;
            st = open_store(fs, opts, existing, n_existing, compression, &rerr, err);
        }
        if (rerr) st = mmr_fstore_rocks_status(rerr, err, "fstore open");
    }
    if (existing) rocksdb_list_column_families_destroy(existing, n_existing);
    if (st == MMR_OK) st = check_schema(fs, opts->path, err);
    if (st != MMR_OK) {
        fs_release(fs);
        return st;
    }
    *out = fs;
    return MMR_OK;
}

void mmr_fstore_close(mmr_fstore_t *fs) {
    if (!fs) return;
    if (atomic_load(&fs->batch_open))
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "close: a batch is still open (caller bug)");
    if (fs->read_only) {
        fs_release(fs);
        return;
    }
    /* Flush so that the next open does not replay the WAL; a failure loses nothing. */
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    for (int i = 0; i < FS_CF_COUNT; i++) {
        char *rerr = NULL;
        rocksdb_flush_cf(fs->db, fo, fs->cf[i], &rerr);
        if (rerr) {
            mmr_log(MMR_LOG_WARN, LOG_MOD, "close: flush %s: %s", cf_names[i], rerr);
            rocksdb_free(rerr);
        }
    }
    rocksdb_flushoptions_destroy(fo);
    fs_release(fs);
}

int mmr_fstore_is_read_only(const mmr_fstore_t *fs) { return fs->read_only; }

static uint64_t cf_sum(mmr_fstore_t *fs, const char *name) {
    uint64_t total = 0, v;
    for (int i = 0; i < FS_CF_COUNT; i++)
        if (rocksdb_property_int_cf(fs->db, fs->cf[i], name, &v) == 0) total += v;
    return total;
}

void mmr_fstore_get_stats(mmr_fstore_t *fs, mmr_fstore_stats_t *out) {
    uint64_t v;
    *out = (mmr_fstore_stats_t){
        .estimate_keys = cf_sum(fs, "rocksdb.estimate-num-keys"),
        .live_data_bytes = cf_sum(fs, "rocksdb.estimate-live-data-size"),
        .sst_bytes = cf_sum(fs, "rocksdb.total-sst-files-size"),
        .memtable_bytes = cf_sum(fs, "rocksdb.cur-size-all-mem-tables"),
        .pending_compaction_bytes = cf_sum(fs, "rocksdb.estimate-pending-compaction-bytes"),
        .running_compactions = rocksdb_property_int(fs->db, "rocksdb.num-running-compactions", &v) == 0 ? v : 0,
        .block_cache_bytes = rocksdb_property_int(fs->db, "rocksdb.block-cache-usage", &v) == 0 ? v : 0,
    };
    mmr_fstore_cache_get_stats(fs->cache, &out->item_cache_hits, &out->item_cache_misses,
                               &out->item_cache_entries);
}

mmr_status_t mmr_fstore_compact(mmr_fstore_t *fs, mmr_err_t *err) {
    if (fs->read_only)
        return mmr_err_set(err, MMR_ERR_UNSUPPORTED, "fstore compact: store opened read-only");
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
    mmr_status_t st = MMR_OK;
    for (int i = 0; i < FS_CF_COUNT && st == MMR_OK; i++) {
        char *rerr = NULL;
        rocksdb_flush_cf(fs->db, fo, fs->cf[i], &rerr);
        st = mmr_fstore_rocks_status(rerr, err, "fstore compact: flush");
        /* The C API drops CompactRange's status; a failed compaction leaves data intact. */
        if (st == MMR_OK) rocksdb_compact_range_cf_opt(fs->db, fs->cf[i], co, NULL, 0, NULL, 0);
    }
    rocksdb_compactoptions_destroy(co);
    rocksdb_flushoptions_destroy(fo);
    return st;
}

/* --- reads --------------------------------------------------------------------------- */

void mmr_fstore_multiget_free(char **vals, size_t *lens, size_t n) {
    if (vals)
        for (size_t i = 0; i < n; i++) rocksdb_free(vals[i]);
    free(vals);
    free(lens);
}

mmr_status_t mmr_fstore_get_offset(mmr_fstore_t *fs, const char *topic, int32_t partition,
                                   int64_t *next_offset, mmr_err_t *err) {
    *next_offset = -1;
    char key[MMR_FSTORE_OFFSET_KEY_MAX];
    size_t klen = mmr_fstore_offset_key(key, topic, partition);
    if (!klen) return mmr_err_set(err, MMR_ERR_INVALID, "get_offset: bad topic");
    char *rerr = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(fs->db, fs->ro, fs->cf[FS_CF_META], key, klen, &len, &rerr);
    if (rerr) return mmr_fstore_rocks_status(rerr, err, "get_offset");
    if (!v) return MMR_OK;
    mmr_status_t st = MMR_OK;
    if (len == 8)
        *next_offset = mmr_fstore_codec_get_i64((const uint8_t *)v);
    else
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "get_offset %s: value is %zu bytes", key, len);
    rocksdb_free(v);
    return st;
}

mmr_status_t mmr_fstore_multiget(mmr_fstore_t *fs, fs_cf_t cf, size_t n, const char *const *ids,
                             char ***vals_out, size_t **lens_out, const char *what,
                             mmr_err_t *err) {
    *vals_out = NULL;
    *lens_out = NULL;
    const rocksdb_column_family_handle_t **cfs = calloc(n, sizeof *cfs);
    size_t *klens = calloc(n, sizeof *klens);
    char **errs = calloc(n, sizeof *errs);
    char **vals = calloc(n, sizeof *vals);
    size_t *lens = calloc(n, sizeof *lens);
    mmr_status_t st = MMR_OK;
    if (!cfs || !klens || !errs || !vals || !lens)
        st = mmr_err_set(err, MMR_ERR_NOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < n && st == MMR_OK; i++) {
        cfs[i] = fs->cf[cf];
        klens[i] = mmr_fstore_id_len(ids[i]);
        if (!klens[i])
            st = mmr_err_set(err, MMR_ERR_INVALID, "%s: id %zu is NULL, empty or too long", what,
                             i);
    }
    if (st == MMR_OK) {
        rocksdb_multi_get_cf(fs->db, fs->ro, cfs, n, ids, klens, vals, lens, errs);
        for (size_t i = 0; i < n; i++) {
            if (errs[i] && st == MMR_OK)
                st = mmr_fstore_rocks_status(errs[i], err, what);
            else
                rocksdb_free(errs[i]);
        }
    }
    free(cfs);
    free(klens);
    free(errs);
    if (st != MMR_OK) {
        mmr_fstore_multiget_free(vals, lens, n);
        return st;
    }
    *vals_out = vals;
    *lens_out = lens;
    return MMR_OK;
}

mmr_status_t mmr_fstore_get_item_stats(mmr_fstore_t *fs, size_t n, const char *const *item_ids,
                                       mmr_item_stats_t *out, uint8_t *found, mmr_err_t *err) {
    memset(out, 0, n * sizeof *out);
    memset(found, 0, n);
    if (n == 0) return MMR_OK;
    char **vals;
    size_t *lens;
    mmr_status_t st = mmr_fstore_multiget(fs, FS_CF_STATS, n, item_ids, &vals, &lens, "get_item_stats", err);
    if (st != MMR_OK) return st;
    for (size_t i = 0; i < n && st == MMR_OK; i++) {
        if (!vals[i]) continue;
        mmr_err_t e;
        st = mmr_fstore_codec_decode_stats(vals[i], lens[i], &out[i], &e);
        if (st != MMR_OK)
            mmr_err_set(err, st, "get_item_stats '%s': %s", item_ids[i], e.msg);
        else
            found[i] = 1;
    }
    mmr_fstore_multiget_free(vals, lens, n);
    if (st != MMR_OK) {
        memset(out, 0, n * sizeof *out);
        memset(found, 0, n);
    }
    return st;
}

double mmr_fstore_popularity_at(const mmr_fstore_t *fs, const mmr_item_stats_t *s,
                                int64_t now_ms) {
    return mmr_fstore_codec_decay(s->popularity, s->last_ts_ms, now_ms, fs->half_life_ms);
}

mmr_status_t mmr_fstore_get_items(mmr_fstore_t *fs, size_t n, const char *const *item_ids,
                                  mmr_item_t **out, uint8_t *found, mmr_err_t *err) {
    *out = NULL;
    memset(found, 0, n);
    if (n == 0) return MMR_OK;
    char **vals;
    size_t *lens;
    mmr_status_t st = mmr_fstore_multiget(fs, FS_CF_ITEMS, n, item_ids, &vals, &lens, "get_items", err);
    if (st != MMR_OK) return st;

    /* Decode (checking) once to size one block: items[n] | floats (aligned: they follow
     * the structs) | ids with their NULs; then decode again to fill it. */
    mmr_fstore_item_view_t v;
    size_t floats = 0, id_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!vals[i]) continue;
        mmr_err_t e;
        st = mmr_fstore_codec_decode_item(vals[i], lens[i], &v, &e);
        if (st != MMR_OK) {
            mmr_err_set(err, st, "get_items '%s': %s", item_ids[i], e.msg);
            mmr_fstore_multiget_free(vals, lens, n);
            return st;
        }
        floats += (size_t)v.dim[0] + v.dim[1] + v.dim[2];
        id_bytes += strlen(item_ids[i]) + 1;
    }
    mmr_item_t *items = calloc(1, n * sizeof *items + floats * sizeof(float) + id_bytes);
    if (!items) {
        mmr_fstore_multiget_free(vals, lens, n);
        return mmr_err_set(err, MMR_ERR_NOMEM, "get_items: out of memory");
    }
    float *fp = (float *)(items + n);
    char *ip = (char *)(fp + floats);
    for (size_t i = 0; i < n; i++) {
        if (!vals[i]) continue;
        mmr_fstore_codec_decode_item(vals[i], lens[i], &v, NULL); /* checked above */
        mmr_item_t *it = &items[i];
        size_t idl = strlen(item_ids[i]) + 1;
        memcpy(ip, item_ids[i], idl);
        it->item_id = ip;
        ip += idl;
        it->created_ms = v.created_ms;
        it->deleted = v.deleted;
        for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
            it->emb_dim[m] = v.dim[m];
            if (!v.dim[m]) continue;
            mmr_fstore_codec_load_floats(fp, v.emb[m], v.dim[m]);
            it->emb[m] = fp;
            fp += v.dim[m];
        }
        found[i] = 1;
    }
    mmr_fstore_multiget_free(vals, lens, n);
    *out = items;
    return MMR_OK;
}

void mmr_fstore_items_free(mmr_item_t *items) { free(items); }

/* --- scans: catalog, users, offsets -------------------------------------------------------
 * A scan reads through its own read options: fill_cache off (a full scan should not evict
 * the hot blocks) and total_order_seek on (users and stats have hash memtables whose prefix
 * is the whole key: without it an iterator over them would see a single key). */

static rocksdb_readoptions_t *scan_readoptions(const rocksdb_snapshot_t *snap) {
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_fill_cache(ro, 0);
    rocksdb_readoptions_set_total_order_seek(ro, 1);
    if (snap) rocksdb_readoptions_set_snapshot(ro, snap);
    return ro;
}

/* Copies the iterator's key into id (MMR_ID_MAX + 1 bytes); MMR_ERR_CORRUPT if it is no id. */
static mmr_status_t iter_id(rocksdb_iterator_t *it, char *id, const char *what, mmr_err_t *err) {
    size_t klen;
    const char *key = rocksdb_iter_key(it, &klen);
    if (klen == 0 || klen > MMR_ID_MAX)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: key of %zu bytes", what, klen);
    memcpy(id, key, klen);
    id[klen] = '\0';
    return MMR_OK;
}

/* Ends a scan: reports the iterator's own error unless st already failed, frees it. */
static mmr_status_t iter_end(rocksdb_iterator_t *it, mmr_status_t st, const char *what,
                             mmr_err_t *err) {
    if (st == MMR_OK) {
        char *rerr = NULL;
        rocksdb_iter_get_error(it, &rerr);
        st = mmr_fstore_rocks_status(rerr, err, what);
    }
    rocksdb_iter_destroy(it);
    return st;
}

/* Advances sit (over stats, in key order) to the first key ≥ id; when that key is id, its
 * decoded record goes to *s and *found is 1. */
static mmr_status_t stats_join(rocksdb_iterator_t *sit, const char *id, mmr_item_stats_t *s,
                               int *found, const char *what, mmr_err_t *err) {
    size_t len = strlen(id);
    *found = 0;
    for (; rocksdb_iter_valid(sit); rocksdb_iter_next(sit)) {
        size_t klen, vlen;
        const char *key = rocksdb_iter_key(sit, &klen);
        int c = memcmp(key, id, klen < len ? klen : len); /* RocksDB's bytewise order */
        if (c == 0) c = (klen > len) - (klen < len);
        if (c < 0) continue;
        if (c > 0) return MMR_OK;
        const char *val = rocksdb_iter_value(sit, &vlen);
        mmr_err_t e;
        if (mmr_fstore_codec_decode_stats(val, vlen, s, &e) != MMR_OK)
            return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: stats of '%s': %s", what, id, e.msg);
        *found = 1;
        return MMR_OK;
    }
    return MMR_OK;
}

/* Calls fn for every non-deleted item read through ro, in key order, with its stats when
 * with_stats (a merge join with a second iterator over stats, also in key order), else
 * with NULL stats. */
static mmr_status_t walk_items(mmr_fstore_t *fs, const rocksdb_readoptions_t *ro, int with_stats,
                               mmr_fstore_item_stats_fn fn, void *opaque, const char *what,
                               mmr_err_t *err) {
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(fs->db, ro, fs->cf[FS_CF_ITEMS]);
    rocksdb_iterator_t *sit =
        with_stats ? rocksdb_create_iterator_cf(fs->db, ro, fs->cf[FS_CF_STATS]) : NULL;
    if (sit) rocksdb_iter_seek_to_first(sit);
    float *scratch = NULL; /* [scratch_cap] aligned copies of the current item's floats */
    size_t scratch_cap = 0;
    mmr_status_t st = MMR_OK;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        char id[MMR_ID_MAX + 1];
        if ((st = iter_id(it, id, what, err)) != MMR_OK) break;
        size_t vlen;
        const char *val = rocksdb_iter_value(it, &vlen);
        mmr_fstore_item_view_t v;
        mmr_err_t e;
        if ((st = mmr_fstore_codec_decode_item(val, vlen, &v, &e)) != MMR_OK) {
            mmr_err_set(err, st, "%s '%s': %s", what, id, e.msg);
            break;
        }
        if (v.deleted) continue;
        size_t need = (size_t)v.dim[0] + v.dim[1] + v.dim[2];
        if (need > scratch_cap) {
            float *s = realloc(scratch, need * sizeof *s);
            if (!s) {
                st = mmr_err_set(err, MMR_ERR_NOMEM, "%s: out of memory", what);
                break;
            }
            scratch = s;
            scratch_cap = need;
        }
        mmr_item_t item = {.item_id = id, .created_ms = v.created_ms};
        float *fp = scratch;
        for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
            item.emb_dim[m] = v.dim[m];
            if (!v.dim[m]) continue;
            mmr_fstore_codec_load_floats(fp, v.emb[m], v.dim[m]);
            item.emb[m] = fp;
            fp += v.dim[m];
        }
        mmr_item_stats_t stats;
        int has_stats = 0;
        if (sit && (st = stats_join(sit, id, &stats, &has_stats, what, err)) != MMR_OK) break;
        if (fn(opaque, &item, has_stats ? &stats : NULL)) break;
    }
    free(scratch);
    if (sit) st = iter_end(sit, st, what, err);
    return iter_end(it, st, what, err);
}

typedef struct item_only {
    mmr_fstore_item_fn fn;
    void *opaque;
} item_only_t;

static int item_only(void *opaque, const mmr_item_t *item, const mmr_item_stats_t *stats) {
    const item_only_t *o = opaque;
    return o->fn(o->opaque, item);
}

mmr_status_t mmr_fstore_iter_items(mmr_fstore_t *fs, mmr_fstore_item_fn fn, void *opaque,
                                   mmr_err_t *err) {
    /* A RocksDB iterator reads one implicit snapshot taken at its creation: a consistent
     * catalog even while batches commit. */
    rocksdb_readoptions_t *ro = scan_readoptions(NULL);
    item_only_t o = {fn, opaque};
    mmr_status_t st = walk_items(fs, ro, 0, item_only, &o, "iter_items", err);
    rocksdb_readoptions_destroy(ro);
    return st;
}

/* Decodes a users record into *u: one block, the struct then recent[], regrown when the
 * record holds more than *cap interactions (*u may start NULL with *cap 0). On error *u
 * is still freeable and err holds the reason (without the user id). */
static mmr_status_t user_decode(const char *v, size_t len, mmr_user_t **u, uint32_t *cap,
                                mmr_err_t *err) {
    mmr_fstore_user_dec_t d;
    mmr_status_t st = mmr_fstore_codec_user_begin(&d, v, len, err);
    if (st != MMR_OK) return st;
    if (!*u || d.n > *cap) {
        mmr_user_t *g = realloc(*u, sizeof *g + (size_t)d.n * sizeof *g->recent);
        if (!g) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
        *u = g;
        *cap = d.n;
    }
    mmr_user_t *w = *u;
    w->recent = (mmr_interaction_t *)(w + 1);
    w->n = d.n;
    w->events_total = d.events_total;
    for (uint32_t i = 0; i < d.n; i++) {
        mmr_fstore_ix_t ix;
        if ((st = mmr_fstore_codec_user_next(&d, &ix, err)) != MMR_OK) return st;
        mmr_interaction_t *r = &w->recent[i];
        memcpy(r->item_id, ix.item, ix.item_len);
        r->item_id[ix.item_len] = '\0';
        r->type = ix.type;
        r->value = ix.value;
        r->ts_ms = ix.ts_ms;
    }
    return MMR_OK;
}

mmr_status_t mmr_fstore_get_user(mmr_fstore_t *fs, const char *user_id, mmr_user_t **out,
                                 mmr_err_t *err) {
    *out = NULL;
    size_t klen = mmr_fstore_id_len(user_id);
    if (!klen) return mmr_err_set(err, MMR_ERR_INVALID, "get_user: id is NULL, empty or too long");
    char *rerr = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(fs->db, fs->ro, fs->cf[FS_CF_USERS], user_id, klen, &len, &rerr);
    if (rerr) return mmr_fstore_rocks_status(rerr, err, "get_user");
    if (!v) return mmr_err_set(err, MMR_ERR_NOT_FOUND, "get_user '%s': no such user", user_id);
    mmr_user_t *u = NULL;
    uint32_t cap = 0;
    mmr_err_t e;
    mmr_status_t st = user_decode(v, len, &u, &cap, &e);
    rocksdb_free(v);
    if (st != MMR_OK) {
        free(u);
        return mmr_err_set(err, st, "get_user '%s': %s", user_id, e.msg);
    }
    *out = u;
    return MMR_OK;
}

void mmr_user_free(mmr_user_t *u) { free(u); }

/* --- snapshots ---------------------------------------------------------------------------
 * One RocksDB snapshot and the scan options that read it; RocksDB only reads the options,
 * so several threads may scan through one snapshot. */
struct mmr_fstore_snapshot {
    mmr_fstore_t *fs;
    const rocksdb_snapshot_t *snap;
    rocksdb_readoptions_t *ro;
    int64_t time_ms;
};

mmr_status_t mmr_fstore_snapshot_new(mmr_fstore_t *fs, mmr_fstore_snapshot_t **out,
                                     mmr_err_t *err) {
    *out = NULL;
    mmr_fstore_snapshot_t *s = malloc(sizeof *s);
    if (!s) return mmr_err_set(err, MMR_ERR_NOMEM, "snapshot: out of memory");
    s->fs = fs;
    s->snap = rocksdb_create_snapshot(fs->db);
    s->ro = scan_readoptions(s->snap);
    s->time_ms = mmr_now_ms();
    *out = s;
    return MMR_OK;
}

void mmr_fstore_snapshot_free(mmr_fstore_snapshot_t *snap) {
    if (!snap) return;
    rocksdb_readoptions_destroy(snap->ro);
    rocksdb_release_snapshot(snap->fs->db, snap->snap);
    free(snap);
}

int64_t mmr_fstore_snapshot_time_ms(const mmr_fstore_snapshot_t *snap) { return snap->time_ms; }

mmr_status_t mmr_fstore_snapshot_iter_items(mmr_fstore_snapshot_t *snap,
                                            mmr_fstore_item_stats_fn fn, void *opaque,
                                            mmr_err_t *err) {
    return walk_items(snap->fs, snap->ro, 1, fn, opaque, "snapshot items", err);
}

mmr_status_t mmr_fstore_snapshot_iter_users(mmr_fstore_snapshot_t *snap, mmr_fstore_user_fn fn,
                                            void *opaque, mmr_err_t *err) {
    mmr_fstore_t *fs = snap->fs;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(fs->db, snap->ro, fs->cf[FS_CF_USERS]);
    mmr_user_t *u = NULL; /* reused for every user */
    uint32_t cap = 0;
    mmr_status_t st = MMR_OK;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        char id[MMR_ID_MAX + 1];
        if ((st = iter_id(it, id, "snapshot users", err)) != MMR_OK) break;
        size_t vlen;
        const char *val = rocksdb_iter_value(it, &vlen);
        mmr_err_t e;
        if ((st = user_decode(val, vlen, &u, &cap, &e)) != MMR_OK) {
            mmr_err_set(err, st, "snapshot users '%s': %s", id, e.msg);
            break;
        }
        if (fn(opaque, id, u)) break;
    }
    free(u);
    return iter_end(it, st, "snapshot users", err);
}

mmr_status_t mmr_fstore_snapshot_iter_offsets(mmr_fstore_snapshot_t *snap,
                                              mmr_fstore_offset_fn fn, void *opaque,
                                              mmr_err_t *err) {
    static const char prefix[] = "offset/";
    const size_t pl = sizeof prefix - 1;
    mmr_fstore_t *fs = snap->fs;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(fs->db, snap->ro, fs->cf[FS_CF_META]);
    mmr_status_t st = MMR_OK;
    for (rocksdb_iter_seek(it, prefix, pl); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < pl || memcmp(k, prefix, pl) != 0) break;
        const char *v = rocksdb_iter_value(it, &vl);
        /* "offset/<topic>/<partition>" (mmr_fstore_offset_key): a topic may hold '/', the
         * partition cannot, so the last '/' splits them. */
        char key[MMR_FSTORE_OFFSET_KEY_MAX];
        char *slash = NULL, *end = NULL;
        long long part = 0;
        if (kl < sizeof key) {
            memcpy(key, k, kl);
            key[kl] = '\0';
            slash = strrchr(key + pl, '/');
        }
        if (slash && slash > key + pl) part = strtoll(slash + 1, &end, 10);
        if (!end || end == slash + 1 || *end || part < INT32_MIN || part > INT32_MAX || vl != 8) {
            st = mmr_err_set(err, MMR_ERR_CORRUPT, "snapshot offsets: bad key '%.*s' or value "
                             "of %zu bytes", (int)(kl > 64 ? 64 : kl), k, vl);
            break;
        }
        *slash = '\0';
        if (fn(opaque, key + pl, (int32_t)part, mmr_fstore_codec_get_i64((const uint8_t *)v)))
            break;
    }
    return iter_end(it, st, "snapshot offsets", err);
}
