/* tower_delta.c — delta model files: a model stored as the blocks of its weights that
 * differ from a full model file in the same folder (its base), so a version that changed a
 * few id rows is kilobytes on disk instead of the whole model. Marking changed blocks,
 * writing, and reading back (mmr_tower_load dispatches here on the magic).
 *
 * Layout (little-endian), version 1:
 *   0   char[8]  magic "MMRTDLT1"
 *   8   u32      header size (192)
 *   12  u32      floats per block (MMR_TOWER_DELTA_BLOCK)
 *   16  u64      blocks stored (n)
 *   24  u32      CRC32C of the body
 *   28  u32      the base's payload CRC32C (from its header), so a replaced base is refused
 *   32  char[84] the base: a file name in the same folder, NUL-padded
 *   116 u8[72]   the full-model header of the result (dims, parameter count, CRC32C of the
 *                whole reconstructed weights, checked after applying the blocks)
 *   188 u32      CRC32C of bytes [0, 188)
 *   192 body: u32 block index[n], strictly increasing; float32[n][block], the last block of
 *       the weights zero-padded.
 * A base is always a full file: deltas never chain. */
#include "tower_impl.h"

#include <stdlib.h>
#include <string.h>

#include "mmr_crc32c.h"

#define BLOCK MMR_TOWER_DELTA_BLOCK
#define BASE_OFF 32
#define BASE_LEN 84
#define MODEL_OFF 116
#define HCRC_OFF (MODEL_OFF + TOWER_FILE_HEADER_SIZE)
#define DELTA_HEADER_SIZE (HCRC_OFF + 4)

static size_t n_blocks(size_t n_params) { return (n_params + BLOCK - 1) / BLOCK; }

/* Bits set in dirty among blocks [0, nb): bits past the last block are ignored. */
static size_t count_dirty(const uint64_t *dirty, size_t nb) {
    size_t set = 0;
    for (size_t w = 0; w < nb / 64; w++) set += (size_t)__builtin_popcountll(dirty[w]);
    if (nb % 64) set += (size_t)__builtin_popcountll(dirty[nb / 64] & ((1ull << (nb % 64)) - 1));
    return set;
}

size_t mmr_tower_delta_words(const mmr_tower_t *t) { return (n_blocks(t->n_params) + 63) / 64; }

size_t mmr_tower_delta_mark(const mmr_tower_t *a, const mmr_tower_t *b, uint64_t *dirty) {
    if (!tower_config_equal(&a->cfg, &b->cfg)) return SIZE_MAX;
    size_t nb = n_blocks(a->n_params);
    for (size_t k = 0; k < nb; k++) {
        size_t off = k * BLOCK, len = a->n_params - off < BLOCK ? a->n_params - off : BLOCK;
        if (memcmp(a->params + off, b->params + off, len * sizeof(float)) != 0)
            dirty[k / 64] |= 1ull << (k % 64);
    }
    return count_dirty(dirty, nb);
}

/* The file name part of path, and the length of its folder part (with the '/'). */
static const char *base_name(const char *path, size_t *dir_len) {
    const char *s = strrchr(path, '/');
    *dir_len = s ? (size_t)(s - path) + 1 : 0;
    return s ? s + 1 : path;
}

static int valid_name(const char *s, size_t n) {
    return n > 0 && n < BASE_LEN && !memchr(s, '/', n) && !(n == 1 && s[0] == '.') &&
           !(n == 2 && s[0] == '.' && s[1] == '.');
}

mmr_status_t mmr_tower_save_delta(const mmr_tower_t *t, const char *path, const char *base_path,
                                  const uint64_t *dirty, mmr_err_t *err) {
    if (!t || !path || !base_path || !dirty)
        return mmr_err_set(err, MMR_ERR_INVALID, "tower_save_delta: NULL argument");
    size_t dl, bdl;
    base_name(path, &dl);
    const char *bname = base_name(base_path, &bdl);
    if (dl != bdl || strncmp(path, base_path, dl) != 0 || !valid_name(bname, strlen(bname)))
        return mmr_err_set(err, MMR_ERR_INVALID, "%s: the base %s must be a file in the same folder "
                           "(name under %d bytes)", path, base_path, BASE_LEN);
    tower_reader_t r;
    mmr_status_t st = tower_reader_open(&r, base_path, err);
    if (st != MMR_OK) return st;
    unsigned char bh[TOWER_FILE_HEADER_SIZE];
    mmr_tower_config_t bcfg;
    uint32_t base_crc = 0;
    st = tower_reader_read(&r, bh, sizeof bh, err);
    tower_reader_close(&r);
    if (st == MMR_OK) st = tower_file_model_parse(base_path, bh, &bcfg, &base_crc, err);
    if (st != MMR_OK) return st;
    if (!tower_config_equal(&bcfg, &t->cfg))
        return mmr_err_set(err, MMR_ERR_INVALID, "%s: the base %s has other dims", path, base_path);

    size_t nb = n_blocks(t->n_params), n = count_dirty(dirty, nb);
    uint32_t *idx = malloc(n * sizeof *idx + 1);
    float *blocks = calloc(n * BLOCK + 1, sizeof *blocks);
    if (!idx || !blocks) {
        free(idx);
        free(blocks);
        return mmr_err_set(err, MMR_ERR_NOMEM, "tower_save_delta: out of memory (%zu blocks)", n);
    }
    size_t i = 0;
    for (size_t k = 0; k < nb; k++) {
        if (!(dirty[k / 64] >> (k % 64) & 1)) continue;
        size_t off = k * BLOCK, len = t->n_params - off < BLOCK ? t->n_params - off : BLOCK;
        idx[i] = (uint32_t)k;
        memcpy(blocks + i * BLOCK, t->params + off, len * sizeof(float));
        i++;
    }
    unsigned char h[DELTA_HEADER_SIZE] = {0};
    memcpy(h, TOWER_DELTA_MAGIC, 8);
    tower_put_u32(h + 8, DELTA_HEADER_SIZE);
    tower_put_u32(h + 12, BLOCK);
    tower_put_u64(h + 16, n);
    uint32_t body_crc = mmr_crc32c(0, idx, n * sizeof *idx);
    tower_put_u32(h + 24, mmr_crc32c(body_crc, blocks, n * BLOCK * sizeof(float)));
    tower_put_u32(h + 28, base_crc);
    memcpy(h + BASE_OFF, bname, strlen(bname));
    tower_file_model_header(t, h + MODEL_OFF);
    tower_put_u32(h + HCRC_OFF, mmr_crc32c(0, h, HCRC_OFF));
    const tower_iov_t iov[3] = {{h, sizeof h}, {idx, n * sizeof *idx}, {blocks, n * BLOCK * sizeof(float)}};
    st = tower_file_write_atomic(path, iov, 3, err);
    free(idx);
    free(blocks);
    return st;
}

/* Reads the body of r (positioned after the header) into *idx / *blocks (malloc'ed) and
 * checks its CRC and the indices. */
static mmr_status_t read_body(tower_reader_t *r, uint64_t n, size_t nb, uint32_t want_crc,
                              uint32_t **idx, float **blocks, mmr_err_t *err) {
    *idx = malloc(n * sizeof **idx + 1);
    *blocks = malloc(n * BLOCK * sizeof **blocks + 1);
    if (!*idx || !*blocks) return mmr_err_set(err, MMR_ERR_NOMEM, "%s: out of memory", r->path);
    r->crc = 0;
    mmr_status_t st = tower_reader_read(r, *idx, n * sizeof **idx, err);
    if (st == MMR_OK) st = tower_reader_read(r, *blocks, n * BLOCK * sizeof **blocks, err);
    if (st != MMR_OK) return st;
    if (r->crc != want_crc) return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: delta body checksum mismatch", r->path);
    for (uint64_t i = 0; i < n; i++)
        if ((*idx)[i] >= nb || (i && (*idx)[i] <= (*idx)[i - 1]))
            return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: block index %u out of order or range", r->path,
                               (*idx)[i]);
    return MMR_OK;
}

mmr_status_t tower_delta_load(tower_reader_t *r, const unsigned char *magic8, mmr_tower_t **out,
                              mmr_err_t *err) {
    unsigned char h[DELTA_HEADER_SIZE];
    memcpy(h, magic8, 8);
    mmr_status_t st = tower_reader_read(r, h + 8, sizeof h - 8, err);
    if (st != MMR_OK) return st;
    if (tower_get_u32(h + HCRC_OFF) != mmr_crc32c(0, h, HCRC_OFF))
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: delta header checksum mismatch", r->path);
    if (tower_get_u32(h + 8) != DELTA_HEADER_SIZE || tower_get_u32(h + 12) != BLOCK)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: delta header of %u bytes with %u-float blocks; "
                           "this build reads %d and %d", r->path, tower_get_u32(h + 8),
                           tower_get_u32(h + 12), DELTA_HEADER_SIZE, BLOCK);
    mmr_tower_config_t cfg;
    uint32_t want_crc;
    if ((st = tower_file_model_parse(r->path, h + MODEL_OFF, &cfg, &want_crc, err)) != MMR_OK) return st;
    size_t nb = n_blocks(tower_config_param_count(&cfg));
    uint64_t n = tower_get_u64(h + 16);
    if (n > nb || r->size != DELTA_HEADER_SIZE + n * (4 + BLOCK * sizeof(float)))
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: %llu bytes for %llu blocks (truncated or "
                           "trailing data)", r->path, (unsigned long long)r->size, (unsigned long long)n);
    const char *bname = (const char *)h + BASE_OFF;
    size_t blen = strnlen(bname, BASE_LEN);
    if (!valid_name(bname, blen))
        return mmr_err_set(err, MMR_ERR_CORRUPT, "%s: the base is not a file name in its folder", r->path);
    uint32_t *idx = NULL;
    float *blocks = NULL;
    mmr_tower_t *t = NULL;
    if ((st = read_body(r, n, nb, tower_get_u32(h + 24), &idx, &blocks, err)) != MMR_OK) goto done;

    size_t dl;
    base_name(r->path, &dl);
    char *bpath = malloc(dl + blen + 1);
    if (!bpath) {
        st = mmr_err_set(err, MMR_ERR_NOMEM, "%s: out of memory", r->path);
        goto done;
    }
    memcpy(bpath, r->path, dl);
    memcpy(bpath + dl, bname, blen);
    bpath[dl + blen] = '\0';
    uint32_t base_crc = 0;
    mmr_err_t berr = {0};
    st = tower_file_load(bpath, 0, &t, &base_crc, &berr);
    free(bpath);
    if (st != MMR_OK) {
        st = mmr_err_set(err, st, "%s: its base: %s", r->path, berr.msg);
        goto done;
    }
    if (!tower_config_equal(&t->cfg, &cfg) || base_crc != tower_get_u32(h + 28)) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: its base %.*s is not the file it was written over",
                         r->path, (int)blen, bname);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        size_t off = (size_t)idx[i] * BLOCK, len = t->n_params - off < BLOCK ? t->n_params - off : BLOCK;
        memcpy(t->params + off, blocks + i * BLOCK, len * sizeof(float));
    }
    if (mmr_crc32c(0, t->params, t->n_params * sizeof(float)) != want_crc) {
        st = mmr_err_set(err, MMR_ERR_CORRUPT, "%s: weights differ from what was saved after applying "
                         "the delta (a block was left out)", r->path);
        goto done;
    }
    tower_touch(t);
    *out = t;
    t = NULL;
done:
    mmr_tower_free(t);
    free(idx);
    free(blocks);
    return st;
}
