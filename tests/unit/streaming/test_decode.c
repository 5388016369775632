/* test_decode.c — table-driven tests of mmr_ingest_decode_event: every dead-letter reason in
 * both wire formats, garbage, truncation, NaN, id length limits, timestamps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mmr_decode.h"
#include "mmrec/v1/event.pb-c.h"

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
}

static void test_reason_names(void) {
    static const char *const want[MMR_INGEST_BAD_COUNT] = {
        "undecodable", "missing_id", "unknown_type", "bad_value", "bad_timestamp", "id_too_long",
        "store_rejected",
    };
    for (int r = 0; r < MMR_INGEST_BAD_COUNT; r++)
        CHECK_MSG(strcmp(mmr_ingest_reason_str((mmr_ingest_reason_t)r), want[r]) == 0,
              "reason %d is %s", r, mmr_ingest_reason_str((mmr_ingest_reason_t)r));
    CHECK_MSG(strcmp(mmr_ingest_reason_str(MMR_INGEST_BAD_COUNT), "unknown_reason") == 0,
          "out-of-range reason");
}

int main(void) {
    memset(long_id, 'x', MMR_ID_MAX + 1);
    memset(max_id, 'y', MMR_ID_MAX);
    test_protobuf_table();
    test_protobuf_fields();
    test_json_table();
    test_json_fields();
    test_reason_names();
    printf("test_decode: protobuf, JSON and reason tables ok\n");
    return 0;
}
