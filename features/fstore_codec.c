/* fstore_codec.c — encoders/decoders of the feature-store records (see fstore_codec.h).
 * Byte-by-byte little-endian access, so it is independent of host order and alignment. */
#include "fstore_codec.h"

#include <math.h>
#include <string.h>

/* --- primitives --------------------------------------------------------------------- */

void mmr_fstore_codec_put_u32(uint8_t out[4], uint32_t v) {
    for (int i = 0; i < 4; i++) out[i] = (uint8_t)(v >> (8 * i));
}

uint32_t mmr_fstore_codec_get_u32(const uint8_t in[4]) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)in[i] << (8 * i);
    return v;
}

static void put_u64(uint8_t out[8], uint64_t v) {
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t in[8]) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)in[i] << (8 * i);
    return v;
}

void mmr_fstore_codec_put_i64(uint8_t out[8], int64_t v) { put_u64(out, (uint64_t)v); }
int64_t mmr_fstore_codec_get_i64(const uint8_t in[8]) { return (int64_t)get_u64(in); }

static void put_f32(uint8_t out[4], float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    mmr_fstore_codec_put_u32(out, u);
}

static float get_f32(const uint8_t in[4]) {
    uint32_t u = mmr_fstore_codec_get_u32(in);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void put_f64(uint8_t out[8], double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    put_u64(out, u);
}

static double get_f64(const uint8_t in[8]) {
    uint64_t u = get_u64(in);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* LEB128: 7 bits per byte, high bit = more. At most 10 bytes for 64 bits. */
static size_t put_varint(uint8_t *out, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        if (shift == 63 && b > 1) return -1; /* would overflow 64 bits */
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Zigzag keeps small negative deltas small; all arithmetic is unsigned (wraps, no UB). */
static uint64_t zigzag(uint64_t x) { return (x << 1) ^ (0 - (x >> 63)); }
static uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }

/* --- users -------------------------------------------------------------------------- */

size_t mmr_fstore_codec_user_bound(uint32_t n) {
    /* version + events_total + n, then per entry: id_len + id + type + value + ts delta */
    return 1 + 10 + 5 + (size_t)n * (2 + MMR_ID_MAX + 1 + 4 + 10);
}

size_t mmr_fstore_codec_encode_user(uint8_t *out, int64_t events_total,
                                    const mmr_fstore_ix_t *ring, uint32_t cap, uint32_t head,
                                    uint32_t n) {
    size_t o = 0;
    out[o++] = MMR_FSTORE_USER_V1;
    o += put_varint(out + o, (uint64_t)events_total);
    o += put_varint(out + o, n);
    uint64_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        const mmr_fstore_ix_t *ix = &ring[(head + i) % cap];
        o += put_varint(out + o, ix->item_len);
        memcpy(out + o, ix->item, ix->item_len);
        o += ix->item_len;
        out[o++] = (uint8_t)ix->type;
        put_f32(out + o, ix->value);
        o += 4;
        o += put_varint(out + o, zigzag((uint64_t)ix->ts_ms - prev));
        prev = (uint64_t)ix->ts_ms;
    }
    return o;
}

mmr_status_t mmr_fstore_codec_user_begin(mmr_fstore_user_dec_t *d, const void *buf, size_t len,
                                         mmr_err_t *err) {
    d->p = buf;
    d->end = d->p + len;
    d->prev_ts = 0;
    if (len < 1) return mmr_err_set(err, MMR_ERR_CORRUPT, "user record: empty");
    if (d->p[0] != MMR_FSTORE_USER_V1)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "user record: unknown version %u", d->p[0]);
    d->p++;
    uint64_t total, n;
    if (get_varint(&d->p, d->end, &total) || get_varint(&d->p, d->end, &n))
        return mmr_err_set(err, MMR_ERR_CORRUPT, "user record: truncated header");
    if (total > INT64_MAX || n > MMR_USER_RING_MAX || n > total)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "user record: bad counts (total %llu, n %llu)",
                           (unsigned long long)total, (unsigned long long)n);
    d->events_total = (int64_t)total;
    d->n = d->left = (uint32_t)n;
    if (n == 0 && d->p != d->end)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "user record: %zu trailing bytes",
                           (size_t)(d->end - d->p));
    return MMR_OK;
}

mmr_status_t mmr_fstore_codec_user_next(mmr_fstore_user_dec_t *d, mmr_fstore_ix_t *ix,
                                        mmr_err_t *err) {
    if (d->left == 0) return mmr_err_set(err, MMR_ERR_INTERNAL, "user record: read past end");
    uint32_t idx = d->n - d->left;
    uint64_t id_len, zz;
    if (get_varint(&d->p, d->end, &id_len) || id_len == 0 || id_len > MMR_ID_MAX)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "user record: entry %u: bad id length", idx);
    if ((size_t)(d->end - d->p) < id_len + 1 + 4)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "user record: entry %u: truncated", idx);
    ix->item = (const char *)d->p;
    ix->item_len = (uint32_t)id_len;
    d->p += id_len;
    uint8_t type = *d->p++;
    if (type == MMR_EV_UNSPECIFIED || type >= MMR_EV_TYPE_COUNT)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "user record: entry %u: bad type %u", idx, type);
    ix->type = (mmr_event_type_t)type;
    ix->value = get_f32(d->p);
    d->p += 4;
    if (get_varint(&d->p, d->end, &zz))
        return mmr_err_set(err, MMR_ERR_CORRUPT, "user record: entry %u: truncated ts", idx);
    d->prev_ts = (int64_t)((uint64_t)d->prev_ts + unzigzag(zz));
    ix->ts_ms = d->prev_ts;
    if (--d->left == 0 && d->p != d->end)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "user record: %zu trailing bytes",
                           (size_t)(d->end - d->p));
    return MMR_OK;
}

/* --- items -------------------------------------------------------------------------- */

mmr_status_t mmr_fstore_codec_check_item(const mmr_item_t *it, mmr_err_t *err) {
    if (!it || !it->item_id) return mmr_err_set(err, MMR_ERR_INVALID, "item: NULL item or id");
    size_t id_len = strlen(it->item_id);
    if (id_len == 0 || id_len > MMR_ID_MAX)
        return mmr_err_set(err, MMR_ERR_INVALID, "item: id length %zu not in 1..%d", id_len,
                           MMR_ID_MAX);
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
        uint32_t dim = it->emb_dim[m];
        if (dim > MMR_EMB_DIM_MAX)
            return mmr_err_set(err, MMR_ERR_INVALID, "item %s: modality %d width %u > %d",
                               it->item_id, m, dim, MMR_EMB_DIM_MAX);
        if (dim && !it->emb[m])
            return mmr_err_set(err, MMR_ERR_INVALID, "item %s: modality %d width %u but NULL",
                               it->item_id, m, dim);
        for (uint32_t i = 0; i < dim; i++)
            if (!isfinite(it->emb[m][i]))
                return mmr_err_set(err, MMR_ERR_INVALID, "item %s: modality %d [%u] not finite",
                                   it->item_id, m, i);
    }
    return MMR_OK;
}

size_t mmr_fstore_codec_item_size(const mmr_item_t *it) {
    size_t floats = 0;
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) floats += it->emb_dim[m];
    return MMR_FSTORE_ITEM_HEAD + 4 * floats;
}

void mmr_fstore_codec_encode_item(uint8_t *out, const mmr_item_t *it) {
    out[0] = MMR_FSTORE_ITEM_V1;
    out[1] = it->deleted ? 1 : 0;
    mmr_fstore_codec_put_i64(out + 2, it->created_ms);
    for (int m = 0; m < MMR_MODALITY_COUNT; m++)
        mmr_fstore_codec_put_u32(out + 10 + 4 * m, it->emb_dim[m]);
    uint8_t *o = out + MMR_FSTORE_ITEM_HEAD;
    for (int m = 0; m < MMR_MODALITY_COUNT; m++)
        for (uint32_t i = 0; i < it->emb_dim[m]; i++, o += 4) put_f32(o, it->emb[m][i]);
}

mmr_status_t mmr_fstore_codec_decode_item(const void *buf, size_t len,
                                          mmr_fstore_item_view_t *v, mmr_err_t *err) {
    const uint8_t *p = buf;
    if (len < MMR_FSTORE_ITEM_HEAD)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "item record: %zu bytes, header needs %d", len,
                           MMR_FSTORE_ITEM_HEAD);
    if (p[0] != MMR_FSTORE_ITEM_V1)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "item record: unknown version %u", p[0]);
    if (p[1] & ~1u) return mmr_err_set(err, MMR_ERR_CORRUPT, "item record: bad flags 0x%x", p[1]);
    v->deleted = p[1] & 1;
    v->created_ms = mmr_fstore_codec_get_i64(p + 2);
    size_t floats = 0;
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
        v->dim[m] = mmr_fstore_codec_get_u32(p + 10 + 4 * m);
        if (v->dim[m] > MMR_EMB_DIM_MAX)
            return mmr_err_set(err, MMR_ERR_CORRUPT, "item record: modality %d width %u", m,
                               v->dim[m]);
        floats += v->dim[m];
    }
    if (len != MMR_FSTORE_ITEM_HEAD + 4 * floats)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "item record: %zu bytes, widths need %zu", len,
                           MMR_FSTORE_ITEM_HEAD + 4 * floats);
    const uint8_t *e = p + MMR_FSTORE_ITEM_HEAD;
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
        v->emb[m] = v->dim[m] ? e : NULL;
        e += 4 * (size_t)v->dim[m];
    }
    return MMR_OK;
}

void mmr_fstore_codec_load_floats(float *dst, const uint8_t *src, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) dst[i] = get_f32(src + 4 * (size_t)i);
}

/* --- stats -------------------------------------------------------------------------- */

void mmr_fstore_codec_stats_of_event(const mmr_event_t *ev, mmr_item_stats_t *out) {
    int pos = mmr_event_is_positive(ev);
    out->impressions = ev->type == MMR_EV_IMPRESSION;
    out->clicks = ev->type == MMR_EV_CLICK;
    out->positives = pos;
    out->popularity = pos ? 1.0 : 0.0;
    out->last_ts_ms = ev->ts_ms;
}

void mmr_fstore_codec_encode_stats(uint8_t out[MMR_FSTORE_STATS_SIZE], const mmr_item_stats_t *s) {
    out[0] = MMR_FSTORE_STATS_V1;
    mmr_fstore_codec_put_i64(out + 1, s->impressions);
    mmr_fstore_codec_put_i64(out + 9, s->clicks);
    mmr_fstore_codec_put_i64(out + 17, s->positives);
    put_f64(out + 25, s->popularity);
    mmr_fstore_codec_put_i64(out + 33, s->last_ts_ms);
}

mmr_status_t mmr_fstore_codec_decode_stats(const void *buf, size_t len, mmr_item_stats_t *out,
                                           mmr_err_t *err) {
    const uint8_t *p = buf;
    if (len != MMR_FSTORE_STATS_SIZE)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "stats record: %zu bytes, expected %d", len,
                           MMR_FSTORE_STATS_SIZE);
    if (p[0] != MMR_FSTORE_STATS_V1)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "stats record: unknown version %u", p[0]);
    out->impressions = mmr_fstore_codec_get_i64(p + 1);
    out->clicks = mmr_fstore_codec_get_i64(p + 9);
    out->positives = mmr_fstore_codec_get_i64(p + 17);
    out->popularity = get_f64(p + 25);
    out->last_ts_ms = mmr_fstore_codec_get_i64(p + 33);
    if (!isfinite(out->popularity) || out->popularity < 0)
        return mmr_err_set(err, MMR_ERR_CORRUPT, "stats record: bad popularity");
    return MMR_OK;
}

double mmr_fstore_codec_decay(double pop, int64_t from_ms, int64_t to_ms, double half_life_ms) {
    /* In double: the difference of two int64 can overflow int64, not double. */
    double dt = (double)to_ms - (double)from_ms;
    return dt <= 0 ? pop : pop * exp2(-dt / half_life_ms);
}

void mmr_fstore_codec_stats_combine(mmr_item_stats_t *acc, const mmr_item_stats_t *d,
                                    double half_life_ms) {
    /* Counters wrap instead of overflowing (UB); 2^63 events will not happen. */
    acc->impressions = (int64_t)((uint64_t)acc->impressions + (uint64_t)d->impressions);
    acc->clicks = (int64_t)((uint64_t)acc->clicks + (uint64_t)d->clicks);
    acc->positives = (int64_t)((uint64_t)acc->positives + (uint64_t)d->positives);
    int64_t t = acc->last_ts_ms > d->last_ts_ms ? acc->last_ts_ms : d->last_ts_ms;
    acc->popularity = mmr_fstore_codec_decay(acc->popularity, acc->last_ts_ms, t, half_life_ms) +
                      mmr_fstore_codec_decay(d->popularity, d->last_ts_ms, t, half_life_ms);
    acc->last_ts_ms = t;
}
