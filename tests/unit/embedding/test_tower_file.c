/* test_tower_file.c — model files: save → load is bit-exact (weights, dims, outputs), the
 * save leaves no temp file, and every truncation, trailing byte, flipped byte, foreign
 * version or inconsistent dims is refused with MMR_ERR_CORRUPT and a message. */
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "mmr_crc32c.h"
#include "tower_test.h"

static char dir[] = "/tmp/test_tower_file.XXXXXX";
static char path[256], bad[256];

static unsigned char *slurp(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    CHECK_MSG(f, "open %s", p);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*n);
    CHECK_MSG(fread(buf, 1, *n, f) == *n, "read %s", p);
    fclose(f);
    return buf;
}

static void spit(const char *p, const unsigned char *buf, size_t n) {
    FILE *f = fopen(p, "wb");
    CHECK_MSG(f && fwrite(buf, 1, n, f) == n && fclose(f) == 0, "write %s", p);
}

/* Loading buf (n bytes) must fail with MMR_ERR_CORRUPT; returns the message. */
static const char *refused(const unsigned char *buf, size_t n, const char *what) {
    static mmr_err_t err;
    spit(bad, buf, n);
    mmr_tower_t *t = (mmr_tower_t *)1;
    mmr_status_t st = mmr_tower_load(bad, &t, &err);
    CHECK_MSG(st == MMR_ERR_CORRUPT && t == NULL && err.msg[0], "%s: load gave %s", what,
          mmr_status_str(st));
    return err.msg;
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void reseal(unsigned char *h) { put32(h + 68, mmr_crc32c(0, h, 68)); }

int main(void) {
    mmr_err_t err;
    CHECK_MSG(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/model.mmrt", dir);
    snprintf(bad, sizeof bad, "%s/bad.mmrt", dir);
    mmr_tower_config_t cfg = {.d_text = 9, .d_image = 7, .d_video = 5, .d_hidden = 6,
                              .d_out = 4, .n_item_ids = 20, .n_user_ids = 10, .hist_len = 3,
                              .n_event_types = 9};
    mmr_tower_t *t, *l, *c;
    test_rng_t r = {3};
    CHECK_OK(mmr_tower_new(&cfg, 3, &t, &err));
    test_params_noise(t, 0.1f, &r);
    mmr_tower_params(t)[5] = -0.0f; // signed zero and a denormal survive too
    mmr_tower_params(t)[6] = 1e-42f;
    CHECK_OK(mmr_tower_save(t, path, &err));
    CHECK_OK(mmr_tower_save(t, path, &err)); // overwrite in place
    CHECK_OK(mmr_tower_load(path, &l, &err));
    size_t n = mmr_tower_param_count(t);
    CHECK_MSG(mmr_tower_param_count(l) == n &&
              memcmp(mmr_tower_params(t), mmr_tower_params(l), n * sizeof(float)) == 0 &&
              memcmp(mmr_tower_get_config(t), mmr_tower_get_config(l), sizeof cfg) == 0,
          "round trip not bit-exact");
    CHECK_OK(mmr_tower_clone(t, &c, &err));
    CHECK_MSG(memcmp(mmr_tower_params(t), mmr_tower_params(c), n * sizeof(float)) == 0, "clone");
    test_batch_t tb;
    test_batch_random(&tb, &cfg, 6, 0.5, &r);
    float y1[6 * 4], y2[6 * 4], g1[18], g2[18];
    CHECK_OK(mmr_tower_item_forward(t, NULL, &tb.b.item, y1, g1, &err));
    CHECK_OK(mmr_tower_item_forward(l, NULL, &tb.b.item, y2, g2, &err));
    CHECK_MSG(memcmp(y1, y2, sizeof y1) == 0 && memcmp(g1, g2, sizeof g1) == 0, "outputs differ");
    DIR *d = opendir(dir);
    int files = 0;
    for (struct dirent *de; (de = readdir(d));) files += de->d_name[0] != '.';
    closedir(d);
    CHECK_MSG(files == 1, "%d files in %s after save, want 1 (temp file left?)", files, dir);

    size_t size;
    unsigned char *file = slurp(path, &size), *buf = malloc(size + 1);
    CHECK_MSG(size == 72 + n * 4, "file size %zu", size);
    const size_t cuts[] = {0, 1, 7, 8, 71, 72, 73, 100, size - 4, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu", cuts[i]);
        printf("%-22s -> %s\n", what, refused(file, cuts[i], what));
    }
    memcpy(buf, file, size);
    buf[size] = 0;
    printf("%-22s -> %s\n", "trailing byte", refused(buf, size + 1, "trailing byte"));
    // a flipped bit anywhere: the named fields, then random positions
    size_t at[64] = {0, 7, 8, 12, 16, 40, 52, 56, 64, 68, 71, 72, size / 2, size - 1};
    int n_at = 14;
    while (n_at < 64) at[n_at++] = test_rng_u64(&r) % size;
    for (int i = 0; i < n_at; i++) {
        memcpy(buf, file, size);
        buf[at[i]] ^= (unsigned char)(1u << (test_rng_u64(&r) % 8));
        char what[64];
        snprintf(what, sizeof what, "bit flip at %zu", at[i]);
        const char *msg = refused(buf, size, what);
        if (i < 14) printf("%-22s -> %s\n", what, msg);
    }
    // well-formed headers that still do not fit: another version, dims vs count, bad dims
    memcpy(buf, file, size);
    put32(buf + 8, 2);
    reseal(buf);
    CHECK_MSG(strstr(refused(buf, size, "version 2"), "version"), "version message");
    memcpy(buf, file, size);
    put32(buf + 16 + 4 * 4, 5); // d_out 4 -> 5: the count no longer matches
    reseal(buf);
    CHECK_MSG(strstr(refused(buf, size, "dims vs count"), "parameters"), "count message");
    memcpy(buf, file, size);
    put32(buf + 16, 0); // d_text 0
    reseal(buf);
    CHECK_MSG(strstr(refused(buf, size, "zero dim"), "d_text"), "dims message");
    memcpy(buf, file, size);
    put32(buf + 16 + 5 * 4, 0xFFFFFFFFu); // n_item_ids huge: refused before any allocation
    reseal(buf);
    refused(buf, size, "huge dim");

    mmr_tower_t *l2 = (mmr_tower_t *)1;
    CHECK_MSG(mmr_tower_load("/nonexistent/model", &l2, &err) == MMR_ERR_IO && l2 == NULL,
          "missing file");
    CHECK_MSG(mmr_tower_save(t, "/nonexistent/dir/model", &err) == MMR_ERR_IO, "save to no dir");
    printf("missing file           -> %s\n", err.msg);

    unlink(bad);
    unlink(path);
    rmdir(dir);
    free(file), free(buf);
    test_batch_free(&tb);
    mmr_tower_free(t), mmr_tower_free(l), mmr_tower_free(c);
    printf("ok\n");
    return 0;
}
