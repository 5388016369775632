/* tower_file.c — model files: save atomically, load with every field checked; and the
 * atomic writer, checked reader and model header that trainer checkpoints (trainer.c)
 * reuse. Not in here: what a checkpoint holds beyond a model image.
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

#define FILE_MAGIC "MMRTOWR1"
#define FILE_VERSION 1u
#define HEADER_SIZE TOWER_FILE_HEADER_SIZE
#define N_DIMS 9

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

mmr_status_t tower_file_write_atomic(const char *path, const tower_iov_t *iov, int n,
                                     mmr_err_t *err) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return mmr_err_set(err, MMR_ERR_INVALID, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return mmr_err_set(err, MMR_ERR_IO, "open %s: %s", tmp, strerror(errno));
    const char *step = "write";
    for (int i = 0; i < n; i++)
        if (write_all(fd, iov[i].p, iov[i].n) != 0) goto fail;
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

mmr_status_t tower_reader_open(tower_reader_t *r, const char *path, mmr_err_t *err) {
    *r = (tower_reader_t){.fd = -1, .path = path};
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) return mmr_err_set(err, MMR_ERR_IO, "open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(r->fd, &sb) != 0) {
        mmr_status_t st = mmr_err_set(err, MMR_ERR_IO, "stat %s: %s", path, strerror(errno));
        tower_reader_close(r);
        return st;
    }
    r->size = (uint64_t)sb.st_size;
    return MMR_OK;
}

mmr_status_t tower_reader_read(tower_reader_t *r, void *dst, size_t n, mmr_err_t *err) {
    char *p = dst;
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(r->fd, p + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return mmr_err_set(err, MMR_ERR_IO, "read %s: %s", r->path, strerror(errno));
        if (k == 0)
            return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: truncated (ends at byte %llu, %zu "
                               "more wanted)", r->path, (unsigned long long)(r->pos + got),
                               n - got);
        got += (size_t)k;
    }
    r->pos += n;
    r->crc = mmr_crc32c(r->crc, dst, n);
    return MMR_OK;
}

void tower_reader_close(tower_reader_t *r) {
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
}

void tower_file_model_header(const mmr_tower_t *t, unsigned char h[HEADER_SIZE]) {
    uint32_t dims[N_DIMS];
    memset(h, 0, HEADER_SIZE);
    memcpy(h, FILE_MAGIC, 8);
    tower_put_u32(h + 8, FILE_VERSION);
    tower_put_u32(h + 12, HEADER_SIZE);
    config_to_dims(&t->cfg, dims);
    for (int i = 0; i < N_DIMS; i++) tower_put_u32(h + 16 + 4 * i, dims[i]);
    tower_put_u64(h + 56, t->n_params);
    tower_put_u32(h + 64, mmr_crc32c(0, t->params, t->n_params * sizeof(float)));
    tower_put_u32(h + 68, mmr_crc32c(0, h, 68));
}

mmr_status_t tower_file_model_parse(const char *path, const unsigned char *h,
                                    mmr_tower_config_t *cfg, uint32_t *payload_crc,
                                    mmr_err_t *err) {
    if (memcmp(h, FILE_MAGIC, 8) != 0)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: bad magic, not a tower model", path);
    if (tower_get_u32(h + 68) != mmr_crc32c(0, h, 68))
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: model header checksum mismatch", path);
    if (tower_get_u32(h + 8) != FILE_VERSION || tower_get_u32(h + 12) != HEADER_SIZE)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: format version %u (header %u bytes), "
                           "this build reads version %u", path, tower_get_u32(h + 8),
                           tower_get_u32(h + 12), FILE_VERSION);
    uint32_t dims[N_DIMS];
    for (int i = 0; i < N_DIMS; i++) dims[i] = tower_get_u32(h + 16 + 4 * i);
    dims_to_config(dims, cfg);
    mmr_err_t cerr;
    if (tower_config_check(cfg, MMR_ERR_CORRUPT, &cerr) != MMR_OK)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: %s", path, cerr.msg);
    uint64_t count = tower_get_u64(h + 56);
    size_t want = tower_config_param_count(cfg);
    if (count != want)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: %llu parameters, the dims need %zu", path,
                           (unsigned long long)count, want);
    *payload_crc = tower_get_u32(h + 64);
    return MMR_OK;
}

mmr_status_t mmr_tower_save(const mmr_tower_t *t, const char *path, mmr_err_t *err) {
    if (!t || !path) return mmr_err_set(err, MMR_ERR_INVALID, "tower_save: NULL argument");
    unsigned char h[HEADER_SIZE];
    tower_file_model_header(t, h);
    const tower_iov_t iov[2] = {{h, sizeof h}, {t->params, t->n_params * sizeof(float)}};
    return tower_file_write_atomic(path, iov, 2, err);
}

mmr_status_t tower_file_read_weights(tower_reader_t *r, const mmr_tower_config_t *cfg,
                                     uint64_t want_size, uint32_t weights_crc,
                                     mmr_tower_t **out, mmr_err_t *err) {
    if (r->size != want_size)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: %llu bytes, want %llu (truncated or "
                           "trailing data)", r->path, (unsigned long long)r->size,
                           (unsigned long long)want_size);
    mmr_tower_t *t = NULL;
    mmr_status_t st = tower_alloc(cfg, 0, &t, err);
    if (st != MMR_OK) return st;
    r->crc = 0;
    if ((st = tower_reader_read(r, t->params, t->n_params * sizeof(float), err)) == MMR_OK &&
        r->crc != weights_crc)
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: payload checksum mismatch", r->path);
    if (st != MMR_OK) {
        mmr_tower_free(t);
        return st;
    }
    tower_touch(t);
    *out = t;
    return MMR_OK;
}

mmr_status_t tower_file_load(const char *path, int allow_delta, mmr_tower_t **out,
                            uint32_t *payload_crc, mmr_err_t *err) {
    *out = NULL;
    tower_reader_t r;
    mmr_status_t st = tower_reader_open(&r, path, err);
    if (st != MMR_OK) return st;
    mmr_tower_t *t = NULL;
    unsigned char h[HEADER_SIZE];
    mmr_tower_config_t cfg;
    uint32_t crc;
    if ((st = tower_reader_read(&r, h, 8, err)) != MMR_OK) goto done;
    if (memcmp(h, TOWER_DELTA_MAGIC, 8) == 0) {
        st = allow_delta ? tower_delta_load(&r, h, &t, err)
                         : mmr_err_set(err, MMR_ERR_CORRUPT, "%s: a delta file where a full model file is needed", path);
        goto done;
    }
    if ((st = tower_reader_read(&r, h + 8, sizeof h - 8, err)) != MMR_OK) goto done;
    if ((st = tower_file_model_parse(path, h, &cfg, &crc, err)) != MMR_OK) goto done;
    uint64_t want = HEADER_SIZE + (uint64_t)tower_config_param_count(&cfg) * sizeof(float);
    if ((st = tower_file_read_weights(&r, &cfg, want, crc, &t, err)) != MMR_OK) goto done;
    if (payload_crc) *payload_crc = crc;
done:
    if (st == MMR_OK) *out = t, t = NULL;
    mmr_tower_free(t);
    tower_reader_close(&r);
    return st;
}

mmr_status_t mmr_tower_load(const char *path, mmr_tower_t **out, mmr_err_t *err) {
    if (!path || !out) return mmr_err_set(err, MMR_ERR_INVALID, "tower_load: NULL argument");
    return tower_file_load(path, 1, out, NULL, err);
}
