/* test_fstore_codec.c — the record formats alone: user/item/stats round trips at the edges
 * (longest ids, extreme and out-of-order timestamps, wrapped rings), and every truncation,
 * every single-byte flip and random garbage either decode cleanly or give MMR_ERR_CORRUPT
 * without reading out of bounds (run under ASan). */
#include <math.h>

#include "fstore_codec.h"
#include "fstore_test.h"

/* Decodes a whole user record; returns its status. */
static mmr_status_t decode_user(const uint8_t *buf, size_t len, mmr_fstore_ix_t *out,
                                uint32_t *n, int64_t *total) {
    mmr_fstore_user_dec_t d;
    mmr_err_t err;
    mmr_status_t st = mmr_fstore_codec_user_begin(&d, buf, len, &err);
    if (st != MMR_OK) return st;
    *n = d.n;
    *total = d.events_total;
    for (uint32_t i = 0; i < d.n; i++)
        if ((st = mmr_fstore_codec_user_next(&d, out ? &out[i] : &(mmr_fstore_ix_t){0}, &err)))
            return st;
    return MMR_OK;
}

/* Copies buf into an exact-size heap block so that ASan sees any read past its end. */
static uint8_t *exact(const uint8_t *buf, size_t len) {
    uint8_t *p = malloc(len ? len : 1);
    memcpy(p, buf, len);
    return p;
}

static void fuzz_user(const uint8_t *rec, size_t len) {
    uint32_t n;
    int64_t total;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *p = exact(rec, cut);
        CHECK_MSG(decode_user(p, cut, NULL, &n, &total) == MMR_ERR_CORRUPT, "prefix %zu", cut);
        free(p);
    }
    uint8_t *p = exact(rec, len);
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1 << bit);
            mmr_status_t st = decode_user(p, len, NULL, &n, &total);
            CHECK(st == MMR_OK || st == MMR_ERR_CORRUPT);
            p[i] ^= (uint8_t)(1 << bit);
        }
    free(p);
}

static void check_users(void) {
    static char longest[MMR_ID_MAX];
    memset(longest, 'L', sizeof longest);
    mmr_fstore_ix_t ring[5] = {
        {"b", 1, MMR_EV_WATCH, 12.5f, 5},
        {longest, MMR_ID_MAX, MMR_EV_RATING, 4.0f, INT64_MAX},
        {"c", 1, MMR_EV_SKIP, -0.0f, INT64_MIN},
        {"d", 1, MMR_EV_PURCHASE, 1e30f, -1},
        {"a", 1, MMR_EV_CLICK, 0.0f, 1700000000000},
    };
    /* head 4 of cap 5: oldest is ring[4], then ring[0..3]. */
    static uint8_t buf[4096];
    CHECK(mmr_fstore_codec_user_bound(5) <= sizeof buf);
    size_t len = mmr_fstore_codec_encode_user(buf, 123456789012, ring, 5, 4, 5);
    CHECK(len <= mmr_fstore_codec_user_bound(5));
    mmr_fstore_ix_t out[5];
    uint32_t n;
    int64_t total;
    CHECK(decode_user(buf, len, out, &n, &total) == MMR_OK);
    CHECK(n == 5 && total == 123456789012);
    for (uint32_t i = 0; i < 5; i++) {
        const mmr_fstore_ix_t *w = &ring[(4 + i) % 5];
        CHECK(out[i].item_len == w->item_len && !memcmp(out[i].item, w->item, w->item_len));
        CHECK(out[i].type == w->type && out[i].ts_ms == w->ts_ms);
        CHECK(!memcmp(&out[i].value, &w->value, sizeof(float)));
    }
    printf("ok  user record round trip: %zu bytes, longest id, INT64_MIN/MAX ts, wrapped ring\n",
           len);
    fuzz_user(buf, len);
    uint8_t *empty = exact(buf, mmr_fstore_codec_encode_user(buf, 0, NULL, 1, 0, 0));
    CHECK(decode_user(empty, 3, NULL, &n, &total) == MMR_OK && n == 0 && total == 0);
    free(empty);
    /* n above the ring limit, n above events_total, trailing bytes, zero-length id. */
    static const uint8_t bads[][8] = {
        {1, 0x80, 0x80, 0x01, 0x81, 0x40},  /* n = 8193 */
        {1, 1, 2},                          /* n = 2 > total = 1 */
        {1, 0, 0, 7},                       /* trailing byte */
        {1, 1, 1, 0, 2, 0, 0, 0},           /* id_len 0 */
        {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* endless varint */
    };
    static const size_t bad_len[] = {6, 3, 4, 8, 8};
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++)
        CHECK_MSG(decode_user(bads[i], bad_len[i], NULL, &n, &total) == MMR_ERR_CORRUPT, "bad %zu",
                  i);
    printf("ok  user record: every truncation and bit flip, bad counts/ids -> CORRUPT or OK\n");
}

static void check_items(void) {
    float t[3] = {1.5f, -2.0f, 3.25f}, v[1] = {42.0f};
    mmr_item_t it = {.item_id = "x", .created_ms = -7, .deleted = 1, .emb_dim = {3, 0, 1},
                     .emb = {t, NULL, v}};
    mmr_err_t err;
    CHECK_OK(mmr_fstore_codec_check_item(&it, &err), &err);
    size_t len = mmr_fstore_codec_item_size(&it);
    CHECK(len == MMR_FSTORE_ITEM_HEAD + 16);
    uint8_t buf[64];
    mmr_fstore_codec_encode_item(buf, &it);
    uint8_t *p = exact(buf, len);
    mmr_fstore_item_view_t view;
    CHECK_OK(mmr_fstore_codec_decode_item(p, len, &view, &err), &err);
    CHECK(view.created_ms == -7 && view.deleted == 1 && view.dim[0] == 3 && view.dim[1] == 0 &&
          view.dim[2] == 1 && view.emb[1] == NULL);
    float back[3];
    mmr_fstore_codec_load_floats(back, view.emb[0], 3);
    CHECK(!memcmp(back, t, sizeof t));
    mmr_fstore_codec_load_floats(back, view.emb[2], 1);
    CHECK(back[0] == 42.0f);
    for (size_t cut = 0; cut < len; cut++)
        CHECK(mmr_fstore_codec_decode_item(p, cut, &view, &err) == MMR_ERR_CORRUPT);
    for (size_t i = 0; i < MMR_FSTORE_ITEM_HEAD; i++)
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1 << bit);
            mmr_status_t st = mmr_fstore_codec_decode_item(p, len, &view, &err);
            CHECK(st == MMR_OK || st == MMR_ERR_CORRUPT);
            p[i] ^= (uint8_t)(1 << bit);
        }
    free(p);
    printf("ok  item record round trip (%zu bytes); truncations, header flips -> CORRUPT or OK\n",
           len);
}

static void check_stats(void) {
    mmr_item_stats_t s = {3, 2, 1, 0.75, -5}, back;
    uint8_t rec[MMR_FSTORE_STATS_SIZE];
    mmr_err_t err;
    mmr_fstore_codec_encode_stats(rec, &s);
    CHECK_OK(mmr_fstore_codec_decode_stats(rec, sizeof rec, &back, &err), &err);
    CHECK(!memcmp(&s, &back, sizeof s));
    CHECK(mmr_fstore_codec_decode_stats(rec, sizeof rec - 1, &back, &err) == MMR_ERR_CORRUPT);
    rec[0] = 2;
    CHECK(mmr_fstore_codec_decode_stats(rec, sizeof rec, &back, &err) == MMR_ERR_CORRUPT);
    s.popularity = NAN;
    mmr_fstore_codec_encode_stats(rec, &s);
    CHECK(mmr_fstore_codec_decode_stats(rec, sizeof rec, &back, &err) == MMR_ERR_CORRUPT);
    /* Decay: exact halving, no growth backwards, no overflow across the int64 range. */
    CHECK(mmr_fstore_codec_decay(8.0, 0, 3000, 1000.0) == 1.0);
    CHECK(mmr_fstore_codec_decay(8.0, 3000, 0, 1000.0) == 8.0);
    CHECK(mmr_fstore_codec_decay(8.0, INT64_MIN, INT64_MAX, 1000.0) == 0.0);
    printf("ok  stats record round trip, bad size/version/NaN -> CORRUPT, decay edges\n");
}

static void check_garbage(void) {
    uint64_t rng = 99;
    mmr_err_t err;
    for (int k = 0; k < 20000; k++) {
        size_t len = fst_rand(&rng) % 64;
        uint8_t buf[64];
        for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)fst_rand(&rng);
        if (len) buf[0] = k % 3 ? 1 : buf[0]; /* mostly the right version byte */
        uint8_t *p = exact(buf, len);
        uint32_t n;
        int64_t total;
        mmr_fstore_item_view_t v;
        mmr_item_stats_t s;
        mmr_status_t a = decode_user(p, len, NULL, &n, &total);
        mmr_status_t b = mmr_fstore_codec_decode_item(p, len, &v, &err);
        mmr_status_t c = mmr_fstore_codec_decode_stats(p, len, &s, &err);
        CHECK((a == MMR_OK || a == MMR_ERR_CORRUPT) && (b == MMR_OK || b == MMR_ERR_CORRUPT) &&
              (c == MMR_OK || c == MMR_ERR_CORRUPT));
        free(p);
    }
    printf("ok  20000 random buffers through all three decoders: OK or CORRUPT, no crash\n");
}

int main(void) {
    check_users();
    check_items();
    check_stats();
    check_garbage();
    return 0;
}
