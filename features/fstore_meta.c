/* fstore_meta.c — generic keys in the `meta` column family for other modules (the model
 * registry): atomic multi-key writes, point reads, prefix iteration. The store's own meta
 * keys (offsets, schema version) are refused here; they have their own paths. */
#include <stdlib.h>
#include <string.h>

#include "fstore_priv.h"

/* Key length when key may be written by callers, else 0. */
static size_t meta_key_len(const char *key) {
    if (!key) return 0;
    size_t n = strnlen(key, MMR_META_KEY_MAX + 1);
    if (n == 0 || n > MMR_META_KEY_MAX) return 0;
    if (strcmp(key, "schema_version") == 0 || strncmp(key, "offset/", 7) == 0) return 0;
    return n;
}

mmr_status_t mmr_fstore_meta_write(mmr_fstore_t *fs, size_t n, const mmr_fstore_meta_op_t *ops,
                                   mmr_err_t *err) {
    if (fs->read_only)
        return mmr_err_set(err, MMR_ERR_UNSUPPORTED, "meta write: store opened read-only");
    for (size_t i = 0; i < n; i++)
        if (!meta_key_len(ops[i].key) || (!ops[i].val && ops[i].len))
            return mmr_err_set(err, MMR_ERR_INVALID, "meta write: op %zu: key '%.64s' is empty, "
                               "too long or reserved (offset/..., schema_version)",
                               i, ops[i].key ? ops[i].key : "(null)");
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (size_t i = 0; i < n; i++) {
        size_t kl = meta_key_len(ops[i].key);
        if (ops[i].val)
            rocksdb_writebatch_put_cf(wb, fs->cf[FS_CF_META], ops[i].key, kl, ops[i].val, ops[i].len);
        else
            rocksdb_writebatch_delete_cf(wb, fs->cf[FS_CF_META], ops[i].key, kl);
    }
    /* Registry changes are rare and must survive a crash: always fsync the WAL. */
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    char *rerr = NULL;
    rocksdb_write(fs->db, wo, wb, &rerr);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_writebatch_destroy(wb);
    return mmr_fstore_rocks_status(rerr, err, "meta write");
}

mmr_status_t mmr_fstore_meta_put(mmr_fstore_t *fs, const char *key, const void *val, size_t len,
                                 mmr_err_t *err) {
    mmr_fstore_meta_op_t op = {key, val ? val : "", len};
    return mmr_fstore_meta_write(fs, 1, &op, err);
}

mmr_status_t mmr_fstore_meta_delete(mmr_fstore_t *fs, const char *key, mmr_err_t *err) {
    mmr_fstore_meta_op_t op = {key, NULL, 0};
    return mmr_fstore_meta_write(fs, 1, &op, err);
}

mmr_status_t mmr_fstore_meta_get(mmr_fstore_t *fs, const char *key, void **val, size_t *len,
                                 mmr_err_t *err) {
    *val = NULL;
    *len = 0;
    size_t kl = meta_key_len(key);
    if (!kl) return mmr_err_set(err, MMR_ERR_INVALID, "meta get: key empty, too long or reserved");
    char *rerr = NULL;
    size_t vl = 0;
    char *v = rocksdb_get_cf(fs->db, fs->ro, fs->cf[FS_CF_META], key, kl, &vl, &rerr);
    if (rerr) return mmr_fstore_rocks_status(rerr, err, "meta get");
    if (!v) return mmr_err_set(err, MMR_ERR_NOT_FOUND, "meta get '%.64s': no such key", key);
    void *copy = malloc(vl ? vl : 1);
    if (copy) memcpy(copy, v, vl);
    rocksdb_free(v);
    if (!copy) return mmr_err_set(err, MMR_ERR_NOMEM, "meta get: out of memory");
    *val = copy;
    *len = vl;
    return MMR_OK;
}

mmr_status_t mmr_fstore_meta_iter(mmr_fstore_t *fs, const char *prefix, mmr_fstore_meta_fn fn,
                                  void *opaque, mmr_err_t *err) {
    size_t pl = prefix ? strnlen(prefix, MMR_META_KEY_MAX + 1) : 0;
    if (pl == 0 || pl > MMR_META_KEY_MAX)
        return mmr_err_set(err, MMR_ERR_INVALID, "meta iter: prefix empty or too long");
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(fs->db, fs->ro, fs->cf[FS_CF_META]);
    char key[MMR_META_KEY_MAX + 1];
    for (rocksdb_iter_seek(it, prefix, pl); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < pl || memcmp(k, prefix, pl) != 0) break;
        if (kl > MMR_META_KEY_MAX) continue; /* not one of ours: cannot have been written here */
        memcpy(key, k, kl);
        key[kl] = '\0';
        const char *v = rocksdb_iter_value(it, &vl);
        if (fn(opaque, key, v, vl)) break;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    rocksdb_iter_destroy(it);
    return mmr_fstore_rocks_status(rerr, err, "meta iter");
}
