/* test_tower_delta.c — delta model files: mark finds exactly the changed blocks (the last,
 * short one included), a delta loads bit-exact and is a fraction of the full file, and a
 * delta that left a block out, a replaced or missing base, a chain, corruption anywhere or
 * a base in another folder is refused with a message. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "tower_test.h"

static char dir[] = "/tmp/test_tower_delta.XXXXXX";
static char base[256], delta[256], other[256];

static size_t file_size(const char *p) {
    FILE *f = fopen(p, "rb");
    CHECK_MSG(f, "open %s", p);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fclose(f);
    return n;
}

static void same(mmr_tower_t *a, const mmr_tower_t *b, const char *what) {
    CHECK_MSG(mmr_tower_param_count(a) == mmr_tower_param_count(b) &&
              memcmp(mmr_tower_params(a), mmr_tower_params((mmr_tower_t *)b),
                     mmr_tower_param_count(a) * sizeof(float)) == 0, "%s: not bit-exact", what);
}

/* Loading p must fail with code; returns the message. */
static const char *refused(const char *p, mmr_status_t code, const char *what) {
    static mmr_err_t err;
    mmr_tower_t *t = (mmr_tower_t *)1;
    mmr_status_t st = mmr_tower_load(p, &t, &err);
    CHECK_MSG(st == code && t == NULL && err.msg[0], "%s: load gave %s (%s)", what, mmr_status_str(st), err.msg);
    printf("%-26s -> %s\n", what, err.msg);
    return err.msg;
}

int main(void) {
    mmr_err_t err;
    CHECK_MSG(mkdtemp(dir), "mkdtemp");
    snprintf(base, sizeof base, "%s/model-1.mmrt", dir);
    snprintf(delta, sizeof delta, "%s/model-2.mmrt", dir);
    snprintf(other, sizeof other, "/tmp/elsewhere-%d.mmrt", (int)getpid());
    mmr_tower_config_t cfg = {.d_text = 9, .d_image = 7, .d_video = 5, .d_hidden = 6, .d_out = 4,
                              .n_item_ids = 2000, .n_user_ids = 1000, .hist_len = 3, .n_event_types = 9};
    mmr_tower_t *t, *c, *l;
    test_rng_t r = {5};
    CHECK_OK(mmr_tower_new(&cfg, 5, &t, &err));
    test_params_noise(t, 0.1f, &r);
    size_t n = mmr_tower_param_count(t), nb = (n + MMR_TOWER_DELTA_BLOCK - 1) / MMR_TOWER_DELTA_BLOCK;
    CHECK_MSG(n % MMR_TOWER_DELTA_BLOCK != 0, "want a short last block (n = %zu)", n);
    CHECK_MSG(mmr_tower_delta_words(t) == (nb + 63) / 64, "words");
    CHECK_OK(mmr_tower_save(t, base, &err));

    // change one float in 3 blocks: the first, one in the middle, the short last one
    CHECK_OK(mmr_tower_clone(t, &c, &err));
    float *p = mmr_tower_params(c);
    p[0] += 1.0f, p[(nb / 2) * MMR_TOWER_DELTA_BLOCK + 7] = -0.0f, p[n - 1] *= 2.0f;
    mmr_tower_params_changed(c);
    uint64_t *dirty = calloc(mmr_tower_delta_words(t), sizeof *dirty);
    CHECK_MSG(mmr_tower_delta_mark(t, c, dirty) == 3, "marked blocks");
    CHECK(dirty[0] & 1 && dirty[(nb / 2) / 64] >> ((nb / 2) % 64) & 1 && dirty[(nb - 1) / 64] >> ((nb - 1) % 64) & 1);
    CHECK_MSG(mmr_tower_delta_mark(t, c, dirty) == 3, "marking again adds nothing");
    CHECK_OK(mmr_tower_save_delta(c, delta, base, dirty, &err));
    size_t dsize = file_size(delta), fsize = file_size(base);
    CHECK_MSG(dsize == 192 + 3 * (4 + MMR_TOWER_DELTA_BLOCK * 4), "delta size %zu", dsize);
    printf("delta of 3 blocks: %zu bytes, full file %zu bytes\n", dsize, fsize);
    CHECK_OK(mmr_tower_load(delta, &l, &err));
    same(l, c, "delta load");
    mmr_tower_free(l);

    // a superset of the changed blocks is fine too; an empty delta is the base itself
    uint64_t *all = malloc(mmr_tower_delta_words(t) * sizeof *all);
    memset(all, 0xFF, mmr_tower_delta_words(t) * sizeof *all);
    CHECK_OK(mmr_tower_save_delta(c, delta, base, all, &err));
    CHECK_OK(mmr_tower_load(delta, &l, &err));
    same(l, c, "all blocks");
    mmr_tower_free(l);
    uint64_t *none = calloc(mmr_tower_delta_words(t), sizeof *none);
    CHECK_OK(mmr_tower_save_delta(t, delta, base, none, &err));
    CHECK_OK(mmr_tower_load(delta, &l, &err));
    same(l, t, "empty delta");
    mmr_tower_free(l);

    // a block left out is caught by the checksum of the result
    uint64_t *two = calloc(mmr_tower_delta_words(t), sizeof *two);
    memcpy(two, dirty, mmr_tower_delta_words(t) * sizeof *two);
    two[0] &= ~1ull;
    CHECK_OK(mmr_tower_save_delta(c, delta, base, two, &err));
    CHECK(strstr(refused(delta, MMR_ERR_CORRUPT, "block left out"), "left out"));

    // every truncation and bit flip of a good delta is refused
    CHECK_OK(mmr_tower_save_delta(c, delta, base, dirty, &err));
    FILE *f = fopen(delta, "rb");
    unsigned char *good = malloc(dsize);
    CHECK(f && fread(good, 1, dsize, f) == dsize);
    fclose(f);
    for (size_t at = 0; at < dsize; at += at < 200 ? 1 : 37) {
        unsigned char *b = malloc(dsize);
        memcpy(b, good, dsize);
        b[at] ^= (unsigned char)(1u << (at % 8));
        f = fopen(delta, "wb");
        CHECK(f && fwrite(b, 1, dsize, f) == dsize && fclose(f) == 0);
        mmr_tower_t *x = (mmr_tower_t *)1;
        mmr_status_t st = mmr_tower_load(delta, &x, &err);
        CHECK_MSG(st == MMR_ERR_CORRUPT && x == NULL, "bit flip at %zu: %s", at, mmr_status_str(st));
        f = fopen(delta, "wb");
        CHECK(f && fwrite(good, 1, at, f) == at && fclose(f) == 0); // truncated to `at`
        st = mmr_tower_load(delta, &x, &err);
        CHECK_MSG(st == MMR_ERR_CORRUPT && x == NULL, "truncated to %zu: %s", at, mmr_status_str(st));
        free(b);
    }
    printf("every bit flip and truncation refused\n");
    f = fopen(delta, "wb");
    CHECK(f && fwrite(good, 1, dsize, f) == dsize && fclose(f) == 0);

    // the base replaced by another model, then missing
    mmr_tower_t *t2;
    CHECK_OK(mmr_tower_new(&cfg, 6, &t2, &err));
    CHECK_OK(mmr_tower_save(t2, base, &err));
    CHECK(strstr(refused(delta, MMR_ERR_CORRUPT, "base replaced"), "not the file it was written over"));
    unlink(base);
    CHECK(strstr(refused(delta, MMR_ERR_IO, "base missing"), "its base"));

    // no chains: a delta whose base is a delta (here: itself)
    CHECK_OK(mmr_tower_save(t, base, &err));
    CHECK_OK(mmr_tower_save_delta(c, delta, base, dirty, &err));
    CHECK_MSG(mmr_tower_save_delta(c, base, delta, dirty, &err) == MMR_ERR_CORRUPT, "save over a delta base");
    CHECK_MSG(rename(delta, base) == 0, "rename");
    CHECK(strstr(refused(base, MMR_ERR_CORRUPT, "delta over a delta"), "full model file is needed"));

    // the writer refuses a base in another folder, of other dims; mark refuses other dims
    CHECK_OK(mmr_tower_save(t, base, &err));
    CHECK_OK(mmr_tower_save(t, other, &err));
    CHECK_MSG(mmr_tower_save_delta(c, delta, other, dirty, &err) == MMR_ERR_INVALID, "other folder");
    printf("%-26s -> %s\n", "base in another folder", err.msg);
    mmr_tower_config_t cfg2 = cfg;
    cfg2.d_out = 5;
    mmr_tower_t *t3;
    CHECK_OK(mmr_tower_new(&cfg2, 7, &t3, &err));
    CHECK_MSG(mmr_tower_save_delta(t3, delta, base, dirty, &err) == MMR_ERR_INVALID, "other dims");
    printf("%-26s -> %s\n", "base of other dims", err.msg);
    CHECK_MSG(mmr_tower_delta_mark(t, t3, none) == SIZE_MAX, "mark over other dims");

    unlink(other), unlink(base), unlink(delta), rmdir(dir);
    free(dirty), free(all), free(none), free(two), free(good);
    mmr_tower_free(t), mmr_tower_free(c), mmr_tower_free(t2), mmr_tower_free(t3);
    printf("ok\n");
    return 0;
}
