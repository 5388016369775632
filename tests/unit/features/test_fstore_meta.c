/* test_fstore_meta.c — generic meta keys: put/get/delete, atomic multi-key writes, prefix
 * iteration that never crosses into other prefixes, reserved keys refused, and values
 * surviving close/reopen. */
#include "fstore_test.h"
#include "mmr_fstore.h"

typedef struct seen {
    int n;
    char keys[8][64];
} seen_t;

static int collect(void *opaque, const char *key, const void *val, size_t len) {
    seen_t *s = opaque;
    CHECK(s->n < 8 && len == strlen(key) && memcmp(val, key, len) == 0); /* value = key */
    snprintf(s->keys[s->n++], 64, "%s", key);
    return 0;
}

static int stop_at_first(void *opaque, const char *key, const void *val, size_t len) {
    (*(int *)opaque)++;
    return 1;
}

int main(void) {
    char dir[256];
    fst_tmpdir(dir);
    mmr_fstore_opts_t o = {.path = dir};
    mmr_fstore_t *fs = NULL;
    mmr_err_t err = {0};
    CHECK_OK(mmr_fstore_open(&o, &fs, &err), &err);

    const char *keys[] = {"model/v/2", "model/v/1", "model/state", "modelx", "mode"};
    for (int i = 0; i < 5; i++) CHECK_OK(mmr_fstore_meta_put(fs, keys[i], keys[i], strlen(keys[i]), &err), &err);
    void *v = NULL;
    size_t len = 0;
    CHECK_OK(mmr_fstore_meta_get(fs, "model/state", &v, &len, &err), &err);
    CHECK(len == 11 && memcmp(v, "model/state", 11) == 0);
    free(v);
    CHECK(mmr_fstore_meta_get(fs, "model/none", &v, &len, &err) == MMR_ERR_NOT_FOUND && !v);
    CHECK_OK(mmr_fstore_meta_put(fs, "model/empty", NULL, 0, &err), &err);
    CHECK_OK(mmr_fstore_meta_get(fs, "model/empty", &v, &len, &err), &err);
    CHECK(v && len == 0);
    free(v);
    CHECK_OK(mmr_fstore_meta_delete(fs, "model/empty", &err), &err);
    CHECK_OK(mmr_fstore_meta_delete(fs, "model/empty", &err), &err); /* missing: fine */
    printf("ok put/get/delete, empty values, missing keys\n");

    seen_t s = {0};
    CHECK_OK(mmr_fstore_meta_iter(fs, "model/", collect, &s, &err), &err);
    CHECK_MSG(s.n == 3 && !strcmp(s.keys[0], "model/state") && !strcmp(s.keys[1], "model/v/1") &&
              !strcmp(s.keys[2], "model/v/2"), "n=%d", s.n);
    int calls = 0;
    CHECK_OK(mmr_fstore_meta_iter(fs, "mode", stop_at_first, &calls, &err), &err);
    CHECK(calls == 1);
    CHECK(mmr_fstore_meta_iter(fs, "", collect, &s, &err) == MMR_ERR_INVALID);
    printf("ok prefix iteration in key order, stops when asked\n");

    /* reserved keys: the store's offsets and schema version are not writable here, and a
     * batch with one bad op writes nothing */
    CHECK(mmr_fstore_meta_put(fs, "schema_version", "x", 1, &err) == MMR_ERR_INVALID);
    CHECK(mmr_fstore_meta_put(fs, "offset/t/0", "x", 1, &err) == MMR_ERR_INVALID);
    CHECK(mmr_fstore_meta_get(fs, "offset/t/0", &v, &len, &err) == MMR_ERR_INVALID);
    mmr_fstore_meta_op_t ops[] = {{"model/a", "model/a", 7}, {"offset/x/1", "1", 1}};
    CHECK(mmr_fstore_meta_write(fs, 2, ops, &err) == MMR_ERR_INVALID);
    CHECK(mmr_fstore_meta_get(fs, "model/a", &v, &len, &err) == MMR_ERR_NOT_FOUND);
    mmr_fstore_meta_op_t ok_ops[] = {{"model/a", "model/a", 7}, {"model/v/1", NULL, 0}};
    CHECK_OK(mmr_fstore_meta_write(fs, 2, ok_ops, &err), &err);
    int64_t off = 0;
    CHECK_OK(mmr_fstore_get_offset(fs, "t", 0, &off, &err), &err);
    CHECK(off == -1);
    printf("ok reserved keys refused, multi-key write is all or nothing\n");

    mmr_fstore_close(fs);
    CHECK_OK(mmr_fstore_open(&o, &fs, &err), &err);
    memset(&s, 0, sizeof s);
    CHECK_OK(mmr_fstore_meta_iter(fs, "model/", collect, &s, &err), &err);
    CHECK_MSG(s.n == 3 && !strcmp(s.keys[0], "model/a") && !strcmp(s.keys[1], "model/state") &&
              !strcmp(s.keys[2], "model/v/2"), "n=%d", s.n);
    mmr_fstore_close(fs);
    fst_rmdir(dir);
    printf("ok meta keys survive close/reopen\n");
    return 0;
}
