/* test_decode.c — table-driven tests of mmr_ingest_decode_event and mmr_ingest_decode_item:
 * every dead-letter reason in both wire formats, garbage, truncation, NaN, id length limits,
 * timestamps, embedding widths and values, tombstones, decoded-item buffer reuse. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mmr_decode.h"
#include "mmrec/v1/event.pb-c.h"
#include "mmrec/v1/item.pb-c.h"

#define NOW_MS INT64_C(1700000000000)
#define MAX_FUTURE_MS INT64_C(3600000)
#define OK_ (-1) /* "no reason": the case must decode */

/* An Event to encode as protobuf; NULL strings stay at the proto default "". */
typedef struct pb_spec {
    const char *event_id, *user_id, *item_id;
    int type;
    float value;
    int64_t ts_ms;
} pb_spec_t;

typedef struct pb_case {
    const char *name;
    pb_spec_t ev;
    int want; /* mmr_ingest_reason_t or OK_ */
} pb_case_t;

typedef struct json_case {
    const char *name;
    const char *json;
    int want;
} json_case_t;

static char long_id[MMR_ID_MAX + 2];  /* MMR_ID_MAX + 1 'x's: one byte too long */
static char max_id[MMR_ID_MAX + 1];   /* exactly MMR_ID_MAX 'y's */

static size_t pb_encode(const pb_spec_t *s, uint8_t **out) {
    Mmrec__V1__Event ev = MMREC__V1__EVENT__INIT;
    if (s->event_id) ev.event_id = (char *)s->event_id;
    if (s->user_id) ev.user_id = (char *)s->user_id;
    if (s->item_id) ev.item_id = (char *)s->item_id;
    ev.type = (Mmrec__V1__EventType)s->type;
    ev.value = s->value;
    ev.ts_ms = s->ts_ms;
    size_t n = mmrec__v1__event__get_packed_size(&ev);
    *out = malloc(n ? n : 1);
    mmrec__v1__event__pack(&ev, *out);
    return n;
}

static void expect(const char *name, mmr_ingest_format_t fmt, const void *data, size_t len,
                   int want, mmr_ingest_decoded_t *d) {
    mmr_ingest_reason_t reason = MMR_INGEST_BAD_COUNT;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_ingest_decode_event(fmt, data, len, NOW_MS, MAX_FUTURE_MS, d, &reason,
                                              &err);
    if (want == OK_) {
        CHECK_MSG(st == MMR_OK, "%s: want OK, got %s (%s)", name, mmr_status_str(st), err.msg);
    } else {
        CHECK_MSG(st == MMR_ERR_INVALID, "%s: want %s, got %s", name,
              mmr_ingest_reason_str((mmr_ingest_reason_t)want), mmr_status_str(st));
        CHECK_MSG(st != MMR_ERR_INVALID || (int)reason == want, "%s: want %s, got %s (%s)", name,
              mmr_ingest_reason_str((mmr_ingest_reason_t)want), mmr_ingest_reason_str(reason),
              err.msg);
        CHECK_MSG(st != MMR_ERR_INVALID ||
                  strncmp(err.msg, mmr_ingest_reason_str(reason),
                          strlen(mmr_ingest_reason_str(reason))) == 0,
              "%s: detail '%s' should start with the reason", name, err.msg);
    }
}

static void test_protobuf_table(void) {
    const pb_case_t cases[] = {
        {"pb valid", {"e1", "u1", "i1", 2, 1.0f, NOW_MS - 5}, OK_},
        {"pb valid no event_id", {NULL, "u1", "i1", 1, 0, NOW_MS}, OK_},
        {"pb valid RATING 5", {"e", "u", "i", 8, 5.0f, NOW_MS}, OK_},
        {"pb SKIP negative value allowed", {"e", "u", "i", 6, -1.0f, NOW_MS}, OK_},
        {"pb future within limit", {"e", "u", "i", 2, 0, NOW_MS + MAX_FUTURE_MS}, OK_},
        {"pb id of exactly MMR_ID_MAX", {max_id, max_id, max_id, 2, 0, NOW_MS}, OK_},
        {"pb empty message", {NULL, NULL, NULL, 0, 0, 0}, MMR_INGEST_BAD_MISSING_ID},
        {"pb missing user_id", {"e", NULL, "i", 2, 0, NOW_MS}, MMR_INGEST_BAD_MISSING_ID},
        {"pb missing item_id", {"e", "u", NULL, 2, 0, NOW_MS}, MMR_INGEST_BAD_MISSING_ID},
        {"pb user_id too long", {"e", long_id, "i", 2, 0, NOW_MS}, MMR_INGEST_BAD_ID_TOO_LONG},
        {"pb item_id too long", {"e", "u", long_id, 2, 0, NOW_MS}, MMR_INGEST_BAD_ID_TOO_LONG},
        {"pb event_id too long", {long_id, "u", "i", 2, 0, NOW_MS}, MMR_INGEST_BAD_ID_TOO_LONG},
        {"pb type unspecified", {"e", "u", "i", 0, 0, NOW_MS}, MMR_INGEST_BAD_TYPE},
        {"pb type 9", {"e", "u", "i", 9, 0, NOW_MS}, MMR_INGEST_BAD_TYPE},
        {"pb type negative", {"e", "u", "i", -3, 0, NOW_MS}, MMR_INGEST_BAD_TYPE},
        {"pb NaN value", {"e", "u", "i", 2, NAN, NOW_MS}, MMR_INGEST_BAD_VALUE},
        {"pb +Inf value", {"e", "u", "i", 5, INFINITY, NOW_MS}, MMR_INGEST_BAD_VALUE},
        {"pb -Inf value", {"e", "u", "i", 2, -INFINITY, NOW_MS}, MMR_INGEST_BAD_VALUE},
        {"pb WATCH negative", {"e", "u", "i", 5, -2.0f, NOW_MS}, MMR_INGEST_BAD_VALUE},
        {"pb RATING negative", {"e", "u", "i", 8, -1.0f, NOW_MS}, MMR_INGEST_BAD_VALUE},
        {"pb ts negative", {"e", "u", "i", 2, 0, -1}, MMR_INGEST_BAD_TS},
        {"pb ts too far ahead", {"e", "u", "i", 2, 0, NOW_MS + MAX_FUTURE_MS + 1},
         MMR_INGEST_BAD_TS},
        {"pb ts INT64_MAX", {"e", "u", "i", 2, 0, INT64_MAX}, MMR_INGEST_BAD_TS},
        /* order: the first failing rule wins */
        {"pb missing id beats bad type", {"e", NULL, "i", 0, NAN, -1}, MMR_INGEST_BAD_MISSING_ID},
        {"pb bad type beats NaN", {"e", "u", "i", 42, NAN, -1}, MMR_INGEST_BAD_TYPE},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *buf;
        size_t n = pb_encode(&cases[c].ev, &buf);
        mmr_ingest_decoded_t d;
        expect(cases[c].name, MMR_INGEST_FORMAT_PROTOBUF, buf, n, cases[c].want, &d);
        free(buf);
    }
}

static void test_protobuf_fields(void) {
    pb_spec_t s = {"evt-1", "user-1", "item-1", 5, 12.5f, 0};
    uint8_t *buf;
    size_t n = pb_encode(&s, &buf);
    mmr_ingest_decoded_t d;
    expect("pb fields", MMR_INGEST_FORMAT_PROTOBUF, buf, n, OK_, &d);
    CHECK_MSG(strcmp(d.ev.event_id, "evt-1") == 0, "event_id %s", d.ev.event_id);
    CHECK_MSG(strcmp(d.ev.user_id, "user-1") == 0, "user_id %s", d.ev.user_id);
    CHECK_MSG(strcmp(d.ev.item_id, "item-1") == 0, "item_id %s", d.ev.item_id);
    CHECK_MSG(d.ev.type == MMR_EV_WATCH, "type %d", d.ev.type);
    CHECK_MSG(d.ev.value == 12.5f, "value %g", d.ev.value);
    CHECK_MSG(d.ev.ts_ms == NOW_MS, "ts 0 must become now, got %lld", (long long)d.ev.ts_ms);

    /* Truncation anywhere must be caught by the decoder or by the rules. The only cut that
     * leaves a valid event is the field boundary before "value" (its last 5 bytes). */
    for (size_t cut = 1; cut < n; cut++) {
        if (cut == n - 5) continue;
        mmr_ingest_reason_t reason;
        mmr_status_t st = mmr_ingest_decode_event(MMR_INGEST_FORMAT_PROTOBUF, buf, cut, NOW_MS,
                                                  MAX_FUTURE_MS, &d, &reason, NULL);
        CHECK_MSG(st == MMR_ERR_INVALID, "truncated at %zu/%zu decoded", cut, n);
    }
    free(buf);

    /* item_id is the last field on the wire: cut its string short. */
    pb_spec_t t = {"e", "u", "item-with-a-long-name", 2, 0, 0};
    n = pb_encode(&t, &buf);
    expect("pb truncated inside a string", MMR_INGEST_FORMAT_PROTOBUF, buf, n - 3,
           MMR_INGEST_BAD_DECODE, &d);
    free(buf);

    /* An embedded NUL would otherwise be silently cut by protobuf-c. */
    static const uint8_t nul_id[] = {0x12, 0x03, 'u', 0x00, 'x', 0x1a, 0x01, 'i', 0x20, 0x02};
    expect("pb NUL in user_id", MMR_INGEST_FORMAT_PROTOBUF, nul_id, sizeof nul_id,
           MMR_INGEST_BAD_DECODE, &d);

    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07, 0x42};
    expect("pb garbage", MMR_INGEST_FORMAT_PROTOBUF, garbage, sizeof garbage,
           MMR_INGEST_BAD_DECODE, &d);
    static const char text[] = "{\"user_id\":\"u\"}";
    expect("pb fed JSON text", MMR_INGEST_FORMAT_PROTOBUF, text, sizeof text - 1,
           MMR_INGEST_BAD_DECODE, &d);
    expect("pb NULL payload", MMR_INGEST_FORMAT_PROTOBUF, NULL, 0, MMR_INGEST_BAD_MISSING_ID,
           &d);
}

static void test_json_table(void) {
    static char too_long_json[MMR_ID_MAX + 64];
    snprintf(too_long_json, sizeof too_long_json,
             "{\"user_id\":\"%s\",\"item_id\":\"i\",\"type\":\"CLICK\"}", long_id);
    const json_case_t cases[] = {
        {"json valid name", "{\"event_id\":\"e\",\"user_id\":\"u\",\"item_id\":\"i\","
                            "\"type\":\"CLICK\",\"value\":1,\"ts_ms\":1699999999000}", OK_},
        {"json valid number type", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":7}", OK_},
        {"json camelCase names", "{\"eventId\":\"e\",\"userId\":\"u\",\"itemId\":\"i\","
                                 "\"type\":\"LIKE\",\"tsMs\":\"1699999999000\"}", OK_},
        {"json string value", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"WATCH\","
                              "\"value\":\"30.5\"}", OK_},
        {"json nulls are absent", "{\"event_id\":null,\"user_id\":\"u\",\"item_id\":\"i\","
                                  "\"type\":\"SKIP\",\"value\":null,\"ts_ms\":null}", OK_},
        {"json unknown fields ignored", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"SHARE\","
                                        "\"request_id\":\"r\",\"context\":{\"a\":\"b\"},"
                                        "\"extra\":[1,2]}", OK_},
        {"json empty object", "{}", MMR_INGEST_BAD_MISSING_ID},
        {"json empty user_id", "{\"user_id\":\"\",\"item_id\":\"i\",\"type\":2}",
         MMR_INGEST_BAD_MISSING_ID},
        {"json missing item_id", "{\"user_id\":\"u\",\"type\":2}", MMR_INGEST_BAD_MISSING_ID},
        {"json user_id too long", too_long_json, MMR_INGEST_BAD_ID_TOO_LONG},
        {"json unknown type name", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"BOGUS\"}",
         MMR_INGEST_BAD_TYPE},
        {"json type name is case-sensitive",
         "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"click\"}", MMR_INGEST_BAD_TYPE},
        {"json unspecified type name",
         "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"EVENT_TYPE_UNSPECIFIED\"}",
         MMR_INGEST_BAD_TYPE},
        {"json type 12", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":12}", MMR_INGEST_BAD_TYPE},
        {"json type missing", "{\"user_id\":\"u\",\"item_id\":\"i\"}", MMR_INGEST_BAD_TYPE},
        {"json NaN value", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2,\"value\":\"NaN\"}",
         MMR_INGEST_BAD_VALUE},
        {"json Infinity value",
         "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2,\"value\":\"-Infinity\"}",
         MMR_INGEST_BAD_VALUE},
        {"json value beyond float",
         "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2,\"value\":1e39}",
         MMR_INGEST_BAD_VALUE},
        {"json negative rating", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"RATING\","
                                 "\"value\":-4}", MMR_INGEST_BAD_VALUE},
        {"json future ts", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2,"
                           "\"ts_ms\":1700003600001}", MMR_INGEST_BAD_TS},
        {"json negative ts string", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2,"
                                    "\"ts_ms\":\"-5\"}", MMR_INGEST_BAD_TS},
        {"json garbage", "\x01\x02garbage", MMR_INGEST_BAD_DECODE},
        {"json empty payload", "", MMR_INGEST_BAD_DECODE},
        {"json array", "[1,2,3]", MMR_INGEST_BAD_DECODE},
        {"json truncated", "{\"user_id\":\"u\",\"item_id\":\"i\",\"ty", MMR_INGEST_BAD_DECODE},
        {"json trailing garbage", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2} x",
         MMR_INGEST_BAD_DECODE},
        {"json duplicate key", "{\"user_id\":\"u\",\"user_id\":\"v\",\"item_id\":\"i\",\"type\":2}",
         MMR_INGEST_BAD_DECODE},
        {"json NUL in id", "{\"user_id\":\"u\\u0000x\",\"item_id\":\"i\",\"type\":2}",
         MMR_INGEST_BAD_DECODE},
        {"json numeric user_id", "{\"user_id\":42,\"item_id\":\"i\",\"type\":2}",
         MMR_INGEST_BAD_DECODE},
        {"json float type", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2.5}",
         MMR_INGEST_BAD_DECODE},
        {"json bool value", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2,\"value\":true}",
         MMR_INGEST_BAD_DECODE},
        {"json junk value string",
         "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2,\"value\":\"1x\"}",
         MMR_INGEST_BAD_DECODE},
        {"json float ts", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2,\"ts_ms\":1.5}",
         MMR_INGEST_BAD_DECODE},
        {"json ts beyond int64", "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2,"
                                 "\"ts_ms\":\"99999999999999999999\"}", MMR_INGEST_BAD_DECODE},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        mmr_ingest_decoded_t d;
        expect(cases[c].name, MMR_INGEST_FORMAT_JSON, cases[c].json, strlen(cases[c].json),
               cases[c].want, &d);
    }
}

static void test_json_fields(void) {
    const char *j = "{\"eventId\":\"e9\",\"user_id\":\"u9\",\"item_id\":\"i9\",\"type\":\"RATING\","
                    "\"value\":4,\"ts_ms\":\"1699999999123\"}";
    mmr_ingest_decoded_t d;
    expect("json fields", MMR_INGEST_FORMAT_JSON, j, strlen(j), OK_, &d);
    CHECK_MSG(strcmp(d.ev.event_id, "e9") == 0, "event_id %s", d.ev.event_id);
    CHECK_MSG(strcmp(d.ev.user_id, "u9") == 0, "user_id %s", d.ev.user_id);
    CHECK_MSG(strcmp(d.ev.item_id, "i9") == 0, "item_id %s", d.ev.item_id);
    CHECK_MSG(d.ev.type == MMR_EV_RATING, "type %d", d.ev.type);
    CHECK_MSG(d.ev.value == 4.0f, "value %g", d.ev.value);
    CHECK_MSG(d.ev.ts_ms == INT64_C(1699999999123), "ts %lld", (long long)d.ev.ts_ms);

    /* Not NUL-terminated input: the decoder must honour len. */
    const char *k = "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2}TRAILING";
    expect("json honours len", MMR_INGEST_FORMAT_JSON, k, strlen(k) - strlen("TRAILING"), OK_,
           &d);
    CHECK_MSG(d.ev.ts_ms == NOW_MS, "ts 0 must become now");
    CHECK_MSG(d.request_id[0] == '\0', "no request_id must read as empty");

    /* request_id, kept for the trainer's joiner, in both spellings and formats. */
    const char *r = "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":2,\"requestId\":\"req-7\"}";
    expect("json request_id", MMR_INGEST_FORMAT_JSON, r, strlen(r), OK_, &d);
    CHECK_MSG(strcmp(d.request_id, "req-7") == 0, "request_id %s", d.request_id);
    Mmrec__V1__Event ev = MMREC__V1__EVENT__INIT;
    ev.user_id = "u", ev.item_id = "i", ev.type = MMREC__V1__EVENT_TYPE__CLICK, ev.request_id = "req-8";
    uint8_t buf[64];
    size_t n = mmrec__v1__event__pack(&ev, buf);
    expect("pb request_id", MMR_INGEST_FORMAT_PROTOBUF, buf, n, OK_, &d);
    CHECK_MSG(strcmp(d.request_id, "req-8") == 0, "request_id %s", d.request_id);
    buf[n - 3] = 0; /* "req-8" → "re\0-8": a NUL inside request_id */
    expect("pb NUL in request_id", MMR_INGEST_FORMAT_PROTOBUF, buf, n, MMR_INGEST_BAD_DECODE, &d);
}

static void test_reason_names(void) {
    static const char *const want[MMR_INGEST_BAD_COUNT] = {
        "undecodable", "missing_id", "unknown_type", "bad_value", "bad_timestamp", "id_too_long",
        "store_rejected", "bad_embedding_width", "bad_embedding_value",
    };
    for (int r = 0; r < MMR_INGEST_BAD_COUNT; r++)
        CHECK_MSG(strcmp(mmr_ingest_reason_str((mmr_ingest_reason_t)r), want[r]) == 0,
              "reason %d is %s", r, mmr_ingest_reason_str((mmr_ingest_reason_t)r));
    CHECK_MSG(strcmp(mmr_ingest_reason_str(MMR_INGEST_BAD_COUNT), "unknown_reason") == 0,
          "out-of-range reason");
}


/* --- items ------------------------------------------------------------------------------- */

#define W_TEXT 4u
#define W_IMAGE 3u
static const uint32_t dims[MMR_MODALITY_COUNT] = {W_TEXT, W_IMAGE, 0}; /* video: any width */

/* An Item to encode as protobuf: n[m] floats of emb[m] (absent when 0). */
typedef struct item_spec {
    const char *item_id;
    size_t n[MMR_MODALITY_COUNT];
    float emb[MMR_MODALITY_COUNT][8];
    int64_t created_ms;
    int deleted;
} item_spec_t;

typedef struct item_case {
    const char *name;
    item_spec_t it;
    int want;
} item_case_t;

static size_t pb_encode_item(const item_spec_t *s, uint8_t **out) {
    Mmrec__V1__Item it = MMREC__V1__ITEM__INIT;
    if (s->item_id) it.item_id = (char *)s->item_id;
    it.n_text_emb = s->n[0], it.text_emb = (float *)s->emb[0];
    it.n_image_emb = s->n[1], it.image_emb = (float *)s->emb[1];
    it.n_video_emb = s->n[2], it.video_emb = (float *)s->emb[2];
    it.created_ms = s->created_ms;
    it.deleted = s->deleted;
    Mmrec__V1__Item__AttrsEntry attr = MMREC__V1__ITEM__ATTRS_ENTRY__INIT, *attrs[] = {&attr};
    attr.key = "lang", attr.value = "en"; /* attrs are ignored, but must not upset decoding */
    it.n_attrs = 1, it.attrs = attrs;
    size_t n = mmrec__v1__item__get_packed_size(&it);
    *out = malloc(n ? n : 1);
    CHECK(*out != NULL);
    mmrec__v1__item__pack(&it, *out);
    return n;
}

static void expect_item(const char *name, mmr_ingest_format_t fmt, const void *data, size_t len,
                        const uint32_t *emb_dims, int want, mmr_ingest_decoded_item_t *d) {
    mmr_ingest_reason_t reason = MMR_INGEST_BAD_COUNT;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_ingest_decode_item(fmt, data, len, emb_dims, d, &reason, &err);
    if (want == OK_) {
        CHECK_MSG(st == MMR_OK, "%s: want OK, got %s (%s)", name, mmr_status_str(st), err.msg);
        return;
    }
    CHECK_MSG(st == MMR_ERR_INVALID, "%s: want %s, got %s", name,
              mmr_ingest_reason_str((mmr_ingest_reason_t)want), mmr_status_str(st));
    CHECK_MSG((int)reason == want, "%s: want %s, got %s (%s)", name,
              mmr_ingest_reason_str((mmr_ingest_reason_t)want), mmr_ingest_reason_str(reason),
              err.msg);
    CHECK_MSG(strncmp(err.msg, mmr_ingest_reason_str(reason),
                      strlen(mmr_ingest_reason_str(reason))) == 0,
              "%s: detail '%s' should start with the reason", name, err.msg);
}

static void test_item_protobuf_table(void) {
    const item_case_t cases[] = {
        {"item all modalities", {"c1", {4, 3, 5}, {{1, 2, 3, 4}, {5, 6, 7}, {8, 9, 10, 11, 12}},
                                 NOW_MS, 0}, OK_},
        {"item no modality", {"c1", {0, 0, 0}, {{0}}, 0, 0}, OK_},
        {"item text only", {"c1", {4, 0, 0}, {{-1, 0, 1e-40f, 3.4e38f}}, 1, 0}, OK_},
        {"item video any width 1", {"c1", {0, 0, 1}, {{0}, {0}, {7}}, 1, 0}, OK_},
        {"item id of exactly MMR_ID_MAX", {max_id, {0, 3, 0}, {{0}}, 1, 0}, OK_},
        {"item tombstone", {"c1", {0, 0, 0}, {{0}}, NOW_MS, 1}, OK_},
        {"item tombstone ignores wrong width", {"c1", {2, 0, 0}, {{1, 2}}, 0, 1}, OK_},
        {"item tombstone ignores NaN", {"c1", {4, 0, 0}, {{NAN, 0, 0, 0}}, 0, 1}, OK_},
        {"item empty message", {NULL, {0}, {{0}}, 0, 0}, MMR_INGEST_BAD_MISSING_ID},
        {"item missing id", {NULL, {4, 0, 0}, {{1, 2, 3, 4}}, 1, 0}, MMR_INGEST_BAD_MISSING_ID},
        {"item tombstone missing id", {"", {0}, {{0}}, 0, 1}, MMR_INGEST_BAD_MISSING_ID},
        {"item id too long", {long_id, {0}, {{0}}, 0, 0}, MMR_INGEST_BAD_ID_TOO_LONG},
        {"item negative created_ms", {"c1", {0}, {{0}}, -1, 0}, MMR_INGEST_BAD_TS},
        {"item text too narrow", {"c1", {3, 0, 0}, {{1, 2, 3}}, 0, 0}, MMR_INGEST_BAD_EMB_WIDTH},
        {"item text too wide", {"c1", {5, 0, 0}, {{1, 2, 3, 4, 5}}, 0, 0},
         MMR_INGEST_BAD_EMB_WIDTH},
        {"item image wrong width", {"c1", {4, 4, 0}, {{0}}, 0, 0}, MMR_INGEST_BAD_EMB_WIDTH},
        {"item text NaN", {"c1", {4, 0, 0}, {{1, NAN, 3, 4}}, 0, 0}, MMR_INGEST_BAD_EMB_VALUE},
        {"item image +Inf", {"c1", {0, 3, 0}, {{0}, {0, 0, INFINITY}}, 0, 0},
         MMR_INGEST_BAD_EMB_VALUE},
        {"item video -Inf", {"c1", {0, 0, 2}, {{0}, {0}, {-INFINITY, 1}}, 0, 0},
         MMR_INGEST_BAD_EMB_VALUE},
        /* order: the first failing rule wins */
        {"item missing id beats width", {"", {1, 0, 0}, {{NAN}}, -1, 0},
         MMR_INGEST_BAD_MISSING_ID},
        {"item timestamp beats width", {"c1", {1, 0, 0}, {{NAN}}, -1, 0}, MMR_INGEST_BAD_TS},
        {"item width beats value", {"c1", {4, 1, 0}, {{NAN, 0, 0, 0}, {0}}, 0, 0},
         MMR_INGEST_BAD_EMB_WIDTH},
    };
    mmr_ingest_decoded_item_t d = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *buf;
        size_t n = pb_encode_item(&cases[c].it, &buf);
        expect_item(cases[c].name, MMR_INGEST_FORMAT_PROTOBUF, buf, n, dims, cases[c].want, &d);
        free(buf);
    }
    /* emb_dims NULL: any width up to MMR_EMB_DIM_MAX. */
    item_spec_t any = {"c2", {1, 7, 2}, {{1}, {1, 2, 3, 4, 5, 6, 7}, {1, 2}}, 0, 0};
    uint8_t *buf;
    size_t n = pb_encode_item(&any, &buf);
    expect_item("item emb_dims NULL", MMR_INGEST_FORMAT_PROTOBUF, buf, n, NULL, OK_, &d);
    CHECK(d.item.emb_dim[0] == 1 && d.item.emb_dim[1] == 7 && d.item.emb_dim[2] == 2);
    expect_item("item emb_dims NULL vs configured", MMR_INGEST_FORMAT_PROTOBUF, buf, n, dims,
                MMR_INGEST_BAD_EMB_WIDTH, &d);
    free(buf);
    mmr_ingest_decoded_item_release(&d);
}

static void test_item_protobuf_fields(void) {
    mmr_ingest_decoded_item_t d = {0};
    item_spec_t s = {"item-7", {4, 0, 3}, {{0.5f, -1.25f, 3e-3f, 1e30f}, {0}, {9, 8, 7}},
                     NOW_MS - 42, 0};
    uint8_t *buf;
    size_t n = pb_encode_item(&s, &buf);
    expect_item("item fields", MMR_INGEST_FORMAT_PROTOBUF, buf, n, dims, OK_, &d);
    CHECK_MSG(strcmp(d.item.item_id, "item-7") == 0, "item_id %s", d.item.item_id);
    CHECK(d.item.created_ms == NOW_MS - 42 && d.item.deleted == 0);
    CHECK(d.item.emb_dim[0] == 4 && d.item.emb_dim[1] == 0 && d.item.emb_dim[2] == 3);
    CHECK(d.item.emb[1] == NULL);
    CHECK(memcmp(d.item.emb[0], s.emb[0], 4 * sizeof(float)) == 0);
    CHECK(memcmp(d.item.emb[2], s.emb[2], 3 * sizeof(float)) == 0);

    /* Truncation: only a cut at one of the 4 field boundaries before the last field
     * (created_ms) leaves a valid item (item_id | text_emb | video_emb | attrs |). */
    int decoded = 0;
    for (size_t cut = 1; cut < n; cut++) {
        mmr_ingest_reason_t reason;
        mmr_status_t st = mmr_ingest_decode_item(MMR_INGEST_FORMAT_PROTOBUF, buf, cut, dims, &d,
                                                 &reason, NULL);
        CHECK(st == MMR_OK || st == MMR_ERR_INVALID);
        decoded += st == MMR_OK;
    }
    CHECK_MSG(decoded == 4, "%d truncations decoded, want 4 (the field boundaries)", decoded);
    free(buf);

    /* A wider item into the same struct grows its buffers; a narrower one reuses them. */
    item_spec_t w = {"w", {0, 0, 8}, {{0}, {0}, {1, 2, 3, 4, 5, 6, 7, 8}}, 0, 0};
    n = pb_encode_item(&w, &buf);
    expect_item("item grows buffer", MMR_INGEST_FORMAT_PROTOBUF, buf, n, dims, OK_, &d);
    CHECK(d.item.emb_dim[2] == 8 && d.item.emb[2][7] == 8.0f && d.item.emb_dim[0] == 0);
    free(buf);

    /* A tombstone keeps no embeddings even when the message has some. */
    item_spec_t t = {"gone", {4, 3, 1}, {{1, 2, 3, 4}, {1, 2, 3}, {1}}, 5, 1};
    n = pb_encode_item(&t, &buf);
    expect_item("item tombstone fields", MMR_INGEST_FORMAT_PROTOBUF, buf, n, dims, OK_, &d);
    CHECK(d.item.deleted == 1 && d.item.created_ms == 5 && strcmp(d.item.item_id, "gone") == 0);
    for (int m = 0; m < MMR_MODALITY_COUNT; m++)
        CHECK(d.item.emb_dim[m] == 0 && d.item.emb[m] == NULL);
    free(buf);

    /* Unpacked (non-packed) repeated floats are the same field: accepted. */
    static const uint8_t unpacked[] = {0x0a, 0x01, 'u', 0x25, 0x00, 0x00, 0x80, 0x3f,
                                       0x25, 0x00, 0x00, 0x00, 0x40};
    expect_item("item unpacked video floats", MMR_INGEST_FORMAT_PROTOBUF, unpacked,
                sizeof unpacked, dims, OK_, &d);
    CHECK(d.item.emb_dim[2] == 2 && d.item.emb[2][0] == 1.0f && d.item.emb[2][1] == 2.0f);

    static const uint8_t nul_id[] = {0x0a, 0x03, 'c', 0x00, 'x'};
    expect_item("item NUL in item_id", MMR_INGEST_FORMAT_PROTOBUF, nul_id, sizeof nul_id, dims,
                MMR_INGEST_BAD_DECODE, &d);
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0x0f, 'x'};
    expect_item("item garbage", MMR_INGEST_FORMAT_PROTOBUF, garbage, sizeof garbage, dims,
                MMR_INGEST_BAD_DECODE, &d);
    /* packed text_emb whose length is not a multiple of 4 */
    static const uint8_t ragged[] = {0x0a, 0x01, 'c', 0x12, 0x03, 0x00, 0x00, 0x80};
    expect_item("item ragged packed floats", MMR_INGEST_FORMAT_PROTOBUF, ragged, sizeof ragged,
                dims, MMR_INGEST_BAD_DECODE, &d);
    expect_item("item NULL payload", MMR_INGEST_FORMAT_PROTOBUF, NULL, 0, dims,
                MMR_INGEST_BAD_MISSING_ID, &d);
    mmr_ingest_decoded_item_release(&d);
    mmr_ingest_decoded_item_release(&d); /* twice: zeroed, a no-op */
    mmr_ingest_decoded_item_release(NULL);
}

static void test_item_json_table(void) {
    static char too_long_json[MMR_ID_MAX + 64];
    snprintf(too_long_json, sizeof too_long_json, "{\"item_id\":\"%s\"}", long_id);
    const json_case_t cases[] = {
        {"item json full", "{\"item_id\":\"c1\",\"text_emb\":[1,2,3,4],\"image_emb\":[0.5,-1,2e-3],"
                           "\"video_emb\":[1,2,3,4,5,6],\"created_ms\":1699999999000,"
                           "\"deleted\":false,\"attrs\":{\"lang\":\"en\"}}", OK_},
        {"item json camelCase", "{\"itemId\":\"c1\",\"textEmb\":[1,2,3,4],\"imageEmb\":[1,2,3],"
                                "\"videoEmb\":[1],\"createdMs\":\"1699999999000\"}", OK_},
        {"item json no modality", "{\"item_id\":\"c1\"}", OK_},
        {"item json empty arrays are absent",
         "{\"item_id\":\"c1\",\"text_emb\":[],\"image_emb\":[]}", OK_},
        {"item json nulls are absent", "{\"item_id\":\"c1\",\"text_emb\":null,\"created_ms\":null,"
                                       "\"deleted\":null}", OK_},
        {"item json numeric strings",
         "{\"item_id\":\"c1\",\"text_emb\":[\"1.5\",2,\"-3\",4]}", OK_},
        {"item json tombstone", "{\"item_id\":\"c1\",\"deleted\":true}", OK_},
        {"item json tombstone ignores NaN",
         "{\"item_id\":\"c1\",\"deleted\":true,\"text_emb\":[\"NaN\"]}", OK_},
        {"item json empty object", "{}", MMR_INGEST_BAD_MISSING_ID},
        {"item json empty id", "{\"item_id\":\"\",\"text_emb\":[1,2,3,4]}",
         MMR_INGEST_BAD_MISSING_ID},
        {"item json id too long", too_long_json, MMR_INGEST_BAD_ID_TOO_LONG},
        {"item json negative created_ms", "{\"item_id\":\"c1\",\"created_ms\":-5}",
         MMR_INGEST_BAD_TS},
        {"item json text width", "{\"item_id\":\"c1\",\"text_emb\":[1,2,3]}",
         MMR_INGEST_BAD_EMB_WIDTH},
        {"item json image width", "{\"item_id\":\"c1\",\"image_emb\":[1,2,3,4]}",
         MMR_INGEST_BAD_EMB_WIDTH},
        {"item json NaN", "{\"item_id\":\"c1\",\"text_emb\":[1,\"NaN\",3,4]}",
         MMR_INGEST_BAD_EMB_VALUE},
        {"item json Infinity", "{\"item_id\":\"c1\",\"video_emb\":[\"-Infinity\"]}",
         MMR_INGEST_BAD_EMB_VALUE},
        {"item json beyond float", "{\"item_id\":\"c1\",\"image_emb\":[1,1e39,0]}",
         MMR_INGEST_BAD_EMB_VALUE},
        {"item json garbage", "\x01garbage", MMR_INGEST_BAD_DECODE},
        {"item json empty payload", "", MMR_INGEST_BAD_DECODE},
        {"item json array", "[1,2]", MMR_INGEST_BAD_DECODE},
        {"item json numeric id", "{\"item_id\":7}", MMR_INGEST_BAD_DECODE},
        {"item json NUL in id", "{\"item_id\":\"c\\u0000x\"}", MMR_INGEST_BAD_DECODE},
        {"item json emb not array", "{\"item_id\":\"c1\",\"text_emb\":1}", MMR_INGEST_BAD_DECODE},
        {"item json emb element bool", "{\"item_id\":\"c1\",\"video_emb\":[1,true]}",
         MMR_INGEST_BAD_DECODE},
        {"item json emb element junk string", "{\"item_id\":\"c1\",\"video_emb\":[\"1x\"]}",
         MMR_INGEST_BAD_DECODE},
        {"item json emb nested array", "{\"item_id\":\"c1\",\"video_emb\":[[1]]}",
         MMR_INGEST_BAD_DECODE},
        {"item json emb null element", "{\"item_id\":\"c1\",\"video_emb\":[null]}",
         MMR_INGEST_BAD_DECODE},
        {"item json deleted as number", "{\"item_id\":\"c1\",\"deleted\":1}",
         MMR_INGEST_BAD_DECODE},
        {"item json deleted as string", "{\"item_id\":\"c1\",\"deleted\":\"true\"}",
         MMR_INGEST_BAD_DECODE},
        {"item json float created_ms", "{\"item_id\":\"c1\",\"created_ms\":1.5}",
         MMR_INGEST_BAD_DECODE},
        {"item json duplicate key", "{\"item_id\":\"a\",\"item_id\":\"b\"}", MMR_INGEST_BAD_DECODE},
        /* a type error anywhere beats a validation rule */
        {"item json decode beats missing id", "{\"text_emb\":[true]}", MMR_INGEST_BAD_DECODE},
    };
    mmr_ingest_decoded_item_t d = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        expect_item(cases[c].name, MMR_INGEST_FORMAT_JSON, cases[c].json, strlen(cases[c].json),
                    dims, cases[c].want, &d);
    mmr_ingest_decoded_item_release(&d);
}

static void test_item_json_fields(void) {
    mmr_ingest_decoded_item_t d = {0};
    const char *j = "{\"item_id\":\"c9\",\"text_emb\":[0.5,\"-1.25\",0,1e30],"
                    "\"video_emb\":[7],\"createdMs\":\"1699999999123\",\"deleted\":false}XX";
    expect_item("item json fields", MMR_INGEST_FORMAT_JSON, j, strlen(j) - 2, dims, OK_, &d);
    CHECK_MSG(strcmp(d.item.item_id, "c9") == 0, "item_id %s", d.item.item_id);
    CHECK(d.item.created_ms == INT64_C(1699999999123) && d.item.deleted == 0);
    CHECK(d.item.emb_dim[0] == 4 && d.item.emb_dim[1] == 0 && d.item.emb_dim[2] == 1);
    const float want[4] = {0.5f, -1.25f, 0.0f, 1e30f};
    CHECK(memcmp(d.item.emb[0], want, sizeof want) == 0 && d.item.emb[2][0] == 7.0f);

    const char *t = "{\"item_id\":\"c9\",\"deleted\":true,\"created_ms\":3,\"text_emb\":[1]}";
    expect_item("item json tombstone fields", MMR_INGEST_FORMAT_JSON, t, strlen(t), dims, OK_, &d);
    CHECK(d.item.deleted == 1 && d.item.created_ms == 3);
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) CHECK(d.item.emb_dim[m] == 0 && !d.item.emb[m]);
    mmr_ingest_decoded_item_release(&d);
}

int main(void) {
    memset(long_id, 'x', MMR_ID_MAX + 1);
    memset(max_id, 'y', MMR_ID_MAX);
    test_protobuf_table();
    test_protobuf_fields();
    test_json_table();
    test_json_fields();
    test_reason_names();
    printf("test_decode: event protobuf, JSON and reason tables ok\n");
    test_item_protobuf_table();
    test_item_protobuf_fields();
    test_item_json_table();
    test_item_json_fields();
    printf("test_decode: item protobuf and JSON tables ok\n");
    return 0;
}
