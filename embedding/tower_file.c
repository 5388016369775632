/* tower_file.c — model files: save atomically, load with every field checked.
 *
 * Layout (little-endian), version 1:
 *   0  char[8]  magic "MMRTOWR1"
 *   8  u32      format version (1)
 *   12 u32      header size (72)
 *   16 u32[9]   d_text d_image d_video d_hidden d_out n_item_ids n_user_ids hist_len
 *               n_event_types
 *   52 u32      reserved, 0
 *   56 u64      parameter count (floats in the payload)
 *   64 u32      CRC32C of the payload
 *   68 u32      CRC32C of bytes [0, 68)
 *   72 float32[parameter count]  the weights in group order (mmr_tower_param_group)
 * Only weights are stored: no gradients, no optimizer state. */
#include "tower_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmr_crc32c.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "model files assume little-endian");

#define FILE_MAGIC "MMRTOWR1"
#define FILE_VERSION 1u
#define HEADER_SIZE 72
#define N_DIMS 9

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void config_to_dims(const mmr_tower_config_t *c, uint32_t *d) {
    const int v[N_DIMS] = {c->d_text,     c->d_image,    c->d_video,
                           c->d_hidden,   c->d_out,      c->n_item_ids,
                           c->n_user_ids, c->hist_len,   c->n_event_types};
    for (int i = 0; i < N_DIMS; i++) d[i] = (uint32_t)v[i];
}

/* Values above INT_MAX become -1 so tower_config_check rejects them. */
static void dims_to_config(const uint32_t *d, mmr_tower_config_t *c) {
    int v[N_DIMS];
    for (int i = 0; i < N_DIMS; i++) v[i] = d[i] > INT_MAX ? -1 : (int)d[i];
    *c = (mmr_tower_config_t){.d_text = v[0], .d_image = v[1], .d_video = v[2],
                              .d_hidden = v[3], .d_out = v[4], .n_item_ids = v[5],
                              .n_user_ids = v[6], .hist_len = v[7], .n_event_types = v[8]};
}

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* Returns bytes read (< n only at end of file), or -1. */
static ssize_t read_all(int fd, void *buf, size_t n) {
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* fsync of the folder holding path, so the rename itself is durable. */
static int fsync_parent(const char *path) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

mmr_status_t mmr_tower_save(const mmr_tower_t *t, const char *path, mmr_err_t *err) {
    if (!t || !path) return mmr_err_set(err, MMR_ERR_INVALID, "tower_save: NULL argument");
    unsigned char h[HEADER_SIZE] = {0};
    uint32_t dims[N_DIMS];
    size_t bytes = t->n_params * sizeof(float);
    memcpy(h, FILE_MAGIC, 8);
    put_u32(h + 8, FILE_VERSION);
    put_u32(h + 12, HEADER_SIZE);
    config_to_dims(&t->cfg, dims);
    for (int i = 0; i < N_DIMS; i++) put_u32(h + 16 + 4 * i, dims[i]);
    put_u64(h + 56, t->n_params);
    put_u32(h + 64, mmr_crc32c(0, t->params, bytes));
    put_u32(h + 68, mmr_crc32c(0, h, 68));

    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return mmr_err_set(err, MMR_ERR_INVALID, "tower_save: path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return mmr_err_set(err, MMR_ERR_IO, "open %s: %s", tmp, strerror(errno));
    const char *step = "write";
    if (write_all(fd, h, sizeof h) != 0 || write_all(fd, t->params, bytes) != 0) goto fail;
    step = "fsync";
    if (fsync(fd) != 0) goto fail;
    step = "close";
    if (close(fd) != 0) { fd = -1; goto fail; }
    fd = -1;
    step = "rename";
    if (rename(tmp, path) != 0) goto fail;
    if (fsync_parent(path) != 0)
        return mmr_err_set(err, MMR_ERR_IO, "fsync folder of %s: %s", path, strerror(errno));
    return MMR_OK;
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    return mmr_err_set(err, MMR_ERR_IO, "%s %s: %s", step, tmp, strerror(e));
}

mmr_status_t mmr_tower_load(const char *path, mmr_tower_t **out, mmr_err_t *err) {
    if (!path || !out) return mmr_err_set(err, MMR_ERR_INVALID, "tower_load: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mmr_err_set(err, MMR_ERR_IO, "open %s: %s", path, strerror(errno));
    mmr_status_t st;
    mmr_tower_t *t = NULL;
    struct stat sb;
    unsigned char h[HEADER_SIZE];
    if (fstat(fd, &sb) != 0) {
        st = mmr_err_set(err, MMR_ERR_IO, "stat %s: %s", path, strerror(errno));
        goto done;
    }
    ssize_t got = read_all(fd, h, sizeof h);
    if (got < 0) {
        st = mmr_err_set(err, MMR_ERR_IO, "read %s: %s", path, strerror(errno));
        goto done;
    }
    if (got < HEADER_SIZE) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: truncated header (%zd of %d bytes)", path,
                         got, HEADER_SIZE);
        goto done;
    }
    if (memcmp(h, FILE_MAGIC, 8) != 0) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: bad magic, not a tower model file", path);
        goto done;
    }
    if (get_u32(h + 68) != mmr_crc32c(0, h, 68)) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: header checksum mismatch", path);
        goto done;
    }
    if (get_u32(h + 8) != FILE_VERSION || get_u32(h + 12) != HEADER_SIZE) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: format version %u (header %u bytes), this "
                         "build reads version %u", path, get_u32(h + 8), get_u32(h + 12),
                         FILE_VERSION);
        goto done;
    }
    uint32_t dims[N_DIMS];
    mmr_tower_config_t cfg;
    for (int i = 0; i < N_DIMS; i++) dims[i] = get_u32(h + 16 + 4 * i);
    dims_to_config(dims, &cfg);
    mmr_err_t cerr;
    if (tower_config_check(&cfg, MMR_ERR_CORRUPT, &cerr) != MMR_OK) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: %s", path, cerr.msg);
        goto done;
    }
    uint64_t count = get_u64(h + 56);
    size_t want = tower_config_param_count(&cfg), bytes = want * sizeof(float);
    if (count != want) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: %llu parameters, the dims need %zu", path,
                         (unsigned long long)count, want);
        goto done;
    }
    if ((uint64_t)sb.st_size != HEADER_SIZE + (uint64_t)bytes) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: %lld bytes, want %llu (truncated or "
                         "trailing data)", path, (long long)sb.st_size,
                         (unsigned long long)(HEADER_SIZE + (uint64_t)bytes));
        goto done;
    }
    if ((st = tower_alloc(&cfg, &t, err)) != MMR_OK) goto done;
    got = read_all(fd, t->params, bytes);
    if (got < 0) {
        st = mmr_err_set(err, MMR_ERR_IO, "read %s: %s", path, strerror(errno));
        goto done;
    }
    if ((size_t)got != bytes) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: truncated payload", path);
        goto done;
    }
    if (mmr_crc32c(0, t->params, bytes) != get_u32(h + 64)) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: payload checksum mismatch", path);
        goto done;
    }
    tower_touch(t);
    *out = t;
    t = NULL;
    st = MMR_OK;
done:
    mmr_tower_free(t);
    close(fd);
    return st;
}
