/* decode.c — message payload → validated event or item (see mmr_decode.h for the rules).
 * Both wire formats are first reduced to a raw_event_t / raw_item_t (borrowed strings,
 * numbers, borrowed embedding arrays), then one validate() / validate_item() applies the
 * rules, so protobuf and JSON cannot drift apart. */
#include "mmr_decode.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmrec/v1/event.pb-c.h"
#include "mmrec/v1/item.pb-c.h"

static const char *const reason_names[MMR_INGEST_BAD_COUNT] = {
    [MMR_INGEST_BAD_DECODE] = "undecodable",
    [MMR_INGEST_BAD_MISSING_ID] = "missing_id",
    [MMR_INGEST_BAD_TYPE] = "unknown_type",
    [MMR_INGEST_BAD_VALUE] = "bad_value",
    [MMR_INGEST_BAD_TS] = "bad_timestamp",
    [MMR_INGEST_BAD_ID_TOO_LONG] = "id_too_long",
    [MMR_INGEST_BAD_REJECTED] = "store_rejected",
    [MMR_INGEST_BAD_EMB_WIDTH] = "bad_embedding_width",
    [MMR_INGEST_BAD_EMB_VALUE] = "bad_embedding_value",
};

const char *mmr_ingest_reason_str(mmr_ingest_reason_t r) {
    return (unsigned)r < MMR_INGEST_BAD_COUNT ? reason_names[r] : "unknown_reason";
}

/* Indexes into raw_event_t.id; event_id is optional, the other two are required. */
enum { ID_EVENT, ID_USER, ID_ITEM, ID_REQUEST, ID_COUNT };
static const char *const id_field[ID_COUNT] = {"event_id", "user_id", "item_id", "request_id"};
static const char *const id_json_camel[ID_COUNT] = {"eventId", "userId", "itemId", "requestId"};
/* Event's string fields on the wire, as a bit mask of field numbers (1, 2, 3 and 7). */
#define EVENT_ID_FIELDS ((1u << 1) | (1u << 2) | (1u << 3) | (1u << 7))
#define ITEM_ID_FIELDS (1u << 1)

#define TYPE_NAME_UNKNOWN (-1) /* a JSON type string that names no EventType */

/* Both formats reduce to this; strings are borrowed from the decoded message. */
typedef struct raw_event {
    const char *id[ID_COUNT];
    size_t id_len[ID_COUNT];
    int64_t type;
    double value;
    int64_t ts_ms;
} raw_event_t;

static mmr_status_t reject(mmr_ingest_reason_t why, mmr_ingest_reason_t *reason, mmr_err_t *err,
                           const char *detail) {
    *reason = why;
    return mmr_err_set(err, MMR_ERR_INVALID, "%s: %s", reason_names[why], detail);
}

static mmr_status_t validate(const raw_event_t *r, int64_t now_ms, int64_t max_future_ms,
                             mmr_ingest_decoded_t *out, mmr_ingest_reason_t *reason,
                             mmr_err_t *err) {
    char detail[128];
    for (int i = ID_USER; i <= ID_ITEM; i++)
        if (r->id_len[i] == 0) {
            snprintf(detail, sizeof detail, "%s is empty", id_field[i]);
            return reject(MMR_INGEST_BAD_MISSING_ID, reason, err, detail);
        }
    for (int i = 0; i < ID_COUNT; i++)
        if (r->id_len[i] > MMR_ID_MAX) {
            snprintf(detail, sizeof detail, "%s is %zu bytes (max %d)", id_field[i],
                     r->id_len[i], MMR_ID_MAX);
            return reject(MMR_INGEST_BAD_ID_TOO_LONG, reason, err, detail);
        }
    if (r->type == TYPE_NAME_UNKNOWN)
        return reject(MMR_INGEST_BAD_TYPE, reason, err, "type name is not an EventType");
    if (r->type < MMR_EV_IMPRESSION || r->type > MMR_EV_RATING) {
        snprintf(detail, sizeof detail, "type %lld is not IMPRESSION(1)..RATING(8)",
                 (long long)r->type);
        return reject(MMR_INGEST_BAD_TYPE, reason, err, detail);
    }
    /* Range-check before the float conversion: an out-of-range double→float cast is UB. */
    if (!isfinite(r->value) || fabs(r->value) > FLT_MAX)
        return reject(MMR_INGEST_BAD_VALUE, reason, err, "value is NaN, infinite or beyond float");
    if (r->value < 0 && (r->type == MMR_EV_WATCH || r->type == MMR_EV_RATING))
        return reject(MMR_INGEST_BAD_VALUE, reason, err, "value is negative for WATCH/RATING");
    int64_t ts = r->ts_ms;
    if (ts < 0) return reject(MMR_INGEST_BAD_TS, reason, err, "ts_ms is negative");
    if (ts == 0) ts = now_ms;
    if (ts > now_ms && ts - now_ms > max_future_ms) { /* both ≥ 0: no overflow */
        snprintf(detail, sizeof detail, "ts_ms is %lld ms in the future (max %lld)",
                 (long long)(ts - now_ms), (long long)max_future_ms);
        return reject(MMR_INGEST_BAD_TS, reason, err, detail);
    }

    char *bufs[ID_COUNT] = {out->event_id, out->user_id, out->item_id, out->request_id};
    for (int i = 0; i < ID_COUNT; i++) {
        memcpy(bufs[i], r->id[i], r->id_len[i]);
        bufs[i][r->id_len[i]] = '\0';
    }
    out->ev = (mmr_event_t){.event_id = out->event_id,
                            .user_id = out->user_id,
                            .item_id = out->item_id,
                            .type = (mmr_event_type_t)r->type,
                            .value = (float)r->value,
                            .ts_ms = ts};
    return MMR_OK;
}

/* --- protobuf ------------------------------------------------------------------------ */

static int pb_read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && *i < len; shift += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

/* protobuf-c copies a string up to its first NUL, so user_id "u\0x" would silently become
 * "u". Scan the top-level id fields (bit f of id_fields set: field number f) on the wire
 * for NUL bytes. Runs only after a successful unpack, so framing problems just end the
 * scan. */
static int pb_ids_have_nul(const uint8_t *p, size_t len, uint32_t id_fields) {
    size_t i = 0;
    while (i < len) {
        uint64_t tag, n;
        if (!pb_read_varint(p, len, &i, &tag)) return 0;
        switch (tag & 7) {
        case 0: if (!pb_read_varint(p, len, &i, &n)) return 0; break;
        case 1: i += 8; break;
        case 5: i += 4; break;
        case 2:
            if (!pb_read_varint(p, len, &i, &n) || n > len - i) return 0;
            if ((tag >> 3) < 32 && (id_fields >> (tag >> 3) & 1) && memchr(p + i, 0, (size_t)n))
                return 1;
            i += (size_t)n;
            break;
        default: return 0; /* groups: not in Event or Item */
        }
    }
    return 0;
}

static mmr_status_t decode_protobuf(const uint8_t *data, size_t len, int64_t now_ms,
                                    int64_t max_future_ms, mmr_ingest_decoded_t *out,
                                    mmr_ingest_reason_t *reason, mmr_err_t *err) {
    static const uint8_t empty[1];
    Mmrec__V1__Event *pb = mmrec__v1__event__unpack(NULL, len, data ? data : empty);
    if (!pb) return reject(MMR_INGEST_BAD_DECODE, reason, err, "not a mmrec.v1.Event");
    mmr_status_t st;
    if (pb_ids_have_nul(data, len, EVENT_ID_FIELDS)) {
        st = reject(MMR_INGEST_BAD_DECODE, reason, err, "an id contains a NUL byte");
    } else {
        raw_event_t r = {.id = {pb->event_id, pb->user_id, pb->item_id, pb->request_id},
                         .type = pb->type,
                         .value = pb->value,
                         .ts_ms = pb->ts_ms};
        for (int i = 0; i < ID_COUNT; i++) r.id_len[i] = strlen(r.id[i]);
        st = validate(&r, now_ms, max_future_ms, out, reason, err);
    }
    mmrec__v1__event__free_unpacked(pb, NULL);
    return st;
}

/* --- JSON ---------------------------------------------------------------------------- */

/* The field under its proto name or its lowerCamelCase JSON name; NULL if absent or null. */
static json_t *json_field(json_t *obj, const char *name, const char *camel) {
    json_t *v = json_object_get(obj, name);
    if ((!v || json_is_null(v)) && camel) v = json_object_get(obj, camel);
    return v && !json_is_null(v) ? v : NULL;
}

/* Whole-string decimal parse helpers; 0 on success, -1 on anything else. */
static int parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end); /* also takes "NaN", "Infinity": validate() rejects them */
    if (end == s || *end != '\0') return -1;
    *out = v;
    return 0;
}

static mmr_status_t decode_json(const char *data, size_t len, int64_t now_ms,
                                int64_t max_future_ms, mmr_ingest_decoded_t *out,
                                mmr_ingest_reason_t *reason, mmr_err_t *err) {
    json_error_t jerr;
    /* Without JSON_ALLOW_NUL, "\u0000" in a string is a parse error: ids never hold NULs. */
    json_t *root = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return reject(MMR_INGEST_BAD_DECODE, reason, err, "not valid JSON");
    mmr_status_t st = MMR_OK;
    const char *bad = NULL; /* name of a field with the wrong JSON type */
    raw_event_t r = {.id = {"", "", "", ""}};
    if (!json_is_object(root)) {
        st = reject(MMR_INGEST_BAD_DECODE, reason, err, "JSON is not an object");
        goto done;
    }
    for (int i = 0; i < ID_COUNT && !bad; i++) {
        json_t *v = json_field(root, id_field[i], id_json_camel[i]);
        if (!v) continue;
        if (!json_is_string(v)) bad = id_field[i];
        else { r.id[i] = json_string_value(v); r.id_len[i] = json_string_length(v); }
    }
    json_t *v;
    if (!bad && (v = json_field(root, "type", NULL))) {
        if (json_is_integer(v)) {
            r.type = json_integer_value(v);
        } else if (json_is_string(v)) {
            mmr_event_type_t t;
            const char *name = json_string_value(v);
            /* proto3 JSON: enum names are exact; digits are not a name */
            r.type = name[0] >= 'A' && name[0] <= 'Z' && mmr_event_type_parse(name, 0, &t) == 0
                         ? (int64_t)t : TYPE_NAME_UNKNOWN;
        } else {
            bad = "type";
        }
    }
    if (!bad && (v = json_field(root, "value", NULL))) {
        if (json_is_number(v)) r.value = json_number_value(v);
        else if (!json_is_string(v) || parse_double(json_string_value(v), &r.value)) bad = "value";
    }
    if (!bad && (v = json_field(root, "ts_ms", "tsMs"))) {
        if (json_is_integer(v)) r.ts_ms = json_integer_value(v);
        else if (!json_is_string(v) || parse_i64(json_string_value(v), &r.ts_ms)) bad = "ts_ms";
    }
    if (bad) {
        char detail[64];
        snprintf(detail, sizeof detail, "JSON field %s has the wrong type", bad);
        st = reject(MMR_INGEST_BAD_DECODE, reason, err, detail);
    } else {
        st = validate(&r, now_ms, max_future_ms, out, reason, err);
    }
done:
    json_decref(root); /* after validate(): r's strings belong to root */
    return st;
}

mmr_status_t mmr_ingest_decode_event(mmr_ingest_format_t format, const void *data, size_t len,
                                     int64_t now_ms, int64_t max_future_ms,
                                     mmr_ingest_decoded_t *out, mmr_ingest_reason_t *reason,
                                     mmr_err_t *err) {
    switch (format) {
    case MMR_INGEST_FORMAT_PROTOBUF:
        return decode_protobuf(data, len, now_ms, max_future_ms, out, reason, err);
    case MMR_INGEST_FORMAT_JSON:
        return decode_json(data, len, now_ms, max_future_ms, out, reason, err);
    }
    return reject(MMR_INGEST_BAD_DECODE, reason, err, "unknown format");
}

/* --- items --------------------------------------------------------------------------- */

static const char *const emb_field[MMR_MODALITY_COUNT] = {"text_emb", "image_emb", "video_emb"};
static const char *const emb_json_camel[MMR_MODALITY_COUNT] = {"textEmb", "imageEmb",
                                                               "videoEmb"};

/* Both formats reduce to this. Embeddings are borrowed: pb[m] (protobuf's unpacked floats)
 * or json[m] (a JSON array whose elements are known to be numbers or numeric strings). */
typedef struct raw_item {
    const char *id;
    size_t id_len;
    int64_t created_ms;
    int deleted;
    size_t n[MMR_MODALITY_COUNT];
    const float *pb[MMR_MODALITY_COUNT];
    json_t *json[MMR_MODALITY_COUNT];
} raw_item_t;

/* A JSON embedding element: a number, or a string parse_double takes ("NaN", "1.5"). */
static int json_elem(json_t *v, double *out) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    return json_is_string(v) ? parse_double(json_string_value(v), out) : -1;
}

static double raw_elem(const raw_item_t *r, int m, size_t i) {
    if (r->pb[m]) return r->pb[m][i];
    double v = 0;
    (void)json_elem(json_array_get(r->json[m], i), &v); /* checked by decode_json_item */
    return v;
}

static mmr_status_t validate_item(const raw_item_t *r, const uint32_t *emb_dims,
                                  mmr_ingest_decoded_item_t *out, mmr_ingest_reason_t *reason,
                                  mmr_err_t *err) {
    char detail[128];
    if (r->id_len == 0) return reject(MMR_INGEST_BAD_MISSING_ID, reason, err, "item_id is empty");
    if (r->id_len > MMR_ID_MAX) {
        snprintf(detail, sizeof detail, "item_id is %zu bytes (max %d)", r->id_len, MMR_ID_MAX);
        return reject(MMR_INGEST_BAD_ID_TOO_LONG, reason, err, detail);
    }
    if (r->created_ms < 0) return reject(MMR_INGEST_BAD_TS, reason, err, "created_ms is negative");

    mmr_item_t it = {.item_id = out->item_id, .created_ms = r->created_ms, .deleted = r->deleted};
    if (!r->deleted) { /* a tombstone keeps no embeddings, so nothing to check */
        for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
            uint32_t want = emb_dims ? emb_dims[m] : 0;
            if (r->n[m] == 0 || (r->n[m] <= MMR_EMB_DIM_MAX && (!want || r->n[m] == want)))
                continue;
            if (want) snprintf(detail, sizeof detail, "%s has %zu floats, want %" PRIu32,
                               emb_field[m], r->n[m], want);
            else snprintf(detail, sizeof detail, "%s has %zu floats (max %d)", emb_field[m],
                          r->n[m], MMR_EMB_DIM_MAX);
            return reject(MMR_INGEST_BAD_EMB_WIDTH, reason, err, detail);
        }
        for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
            uint32_t n = (uint32_t)r->n[m]; /* ≤ MMR_EMB_DIM_MAX, checked above */
            if (n == 0) continue;
            if (n > out->emb_cap[m]) {
                float *b = realloc(out->emb_buf[m], (size_t)n * sizeof *b);
                if (!b) return mmr_err_set(err, MMR_ERR_NOMEM, "%s: out of memory", emb_field[m]);
                out->emb_buf[m] = b;
                out->emb_cap[m] = n;
            }
            for (uint32_t i = 0; i < n; i++) {
                double v = raw_elem(r, m, i);
                /* Range-check before the float conversion: out of range it is UB. */
                if (!isfinite(v) || fabs(v) > FLT_MAX) {
                    snprintf(detail, sizeof detail, "%s[%" PRIu32 "] is NaN, infinite or beyond "
                             "float", emb_field[m], i);
                    return reject(MMR_INGEST_BAD_EMB_VALUE, reason, err, detail);
                }
                out->emb_buf[m][i] = (float)v;
            }
            it.emb_dim[m] = n;
            it.emb[m] = out->emb_buf[m];
        }
    }
    memcpy(out->item_id, r->id, r->id_len);
    out->item_id[r->id_len] = '\0';
    out->item = it;
    return MMR_OK;
}

static mmr_status_t decode_protobuf_item(const uint8_t *data, size_t len, const uint32_t *emb_dims,
                                         mmr_ingest_decoded_item_t *out,
                                         mmr_ingest_reason_t *reason, mmr_err_t *err) {
    static const uint8_t empty[1];
    Mmrec__V1__Item *pb = mmrec__v1__item__unpack(NULL, len, data ? data : empty);
    if (!pb) return reject(MMR_INGEST_BAD_DECODE, reason, err, "not a mmrec.v1.Item");
    mmr_status_t st;
    if (pb_ids_have_nul(data, len, ITEM_ID_FIELDS)) {
        st = reject(MMR_INGEST_BAD_DECODE, reason, err, "item_id contains a NUL byte");
    } else {
        raw_item_t r = {.id = pb->item_id,
                        .id_len = strlen(pb->item_id),
                        .created_ms = pb->created_ms,
                        .deleted = pb->deleted != 0,
                        .n = {pb->n_text_emb, pb->n_image_emb, pb->n_video_emb},
                        .pb = {pb->text_emb, pb->image_emb, pb->video_emb}};
        st = validate_item(&r, emb_dims, out, reason, err);
    }
    mmrec__v1__item__free_unpacked(pb, NULL);
    return st;
}

static mmr_status_t decode_json_item(const char *data, size_t len, const uint32_t *emb_dims,
                                     mmr_ingest_decoded_item_t *out, mmr_ingest_reason_t *reason,
                                     mmr_err_t *err) {
    json_error_t jerr;
    json_t *root = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return reject(MMR_INGEST_BAD_DECODE, reason, err, "not valid JSON");
    mmr_status_t st;
    const char *bad = NULL; /* name of a field with the wrong JSON type */
    raw_item_t r = {.id = ""};
    json_t *v;
    if (!json_is_object(root)) {
        st = reject(MMR_INGEST_BAD_DECODE, reason, err, "JSON is not an object");
        goto done;
    }
    if ((v = json_field(root, "item_id", "itemId"))) {
        if (!json_is_string(v)) bad = "item_id";
        else { r.id = json_string_value(v); r.id_len = json_string_length(v); }
    }
    for (int m = 0; m < MMR_MODALITY_COUNT && !bad; m++) {
        if (!(v = json_field(root, emb_field[m], emb_json_camel[m]))) continue;
        if (!json_is_array(v)) { bad = emb_field[m]; break; }
        double d;
        for (size_t i = 0; i < json_array_size(v) && !bad; i++)
            if (json_elem(json_array_get(v, i), &d)) bad = emb_field[m];
        r.json[m] = v;
        r.n[m] = json_array_size(v);
    }
    if (!bad && (v = json_field(root, "created_ms", "createdMs"))) {
        if (json_is_integer(v)) r.created_ms = json_integer_value(v);
        else if (!json_is_string(v) || parse_i64(json_string_value(v), &r.created_ms))
            bad = "created_ms";
    }
    if (!bad && (v = json_field(root, "deleted", NULL))) {
        if (json_is_boolean(v)) r.deleted = json_is_true(v);
        else bad = "deleted";
    }
    if (bad) {
        char detail[64];
        snprintf(detail, sizeof detail, "JSON field %s has the wrong type", bad);
        st = reject(MMR_INGEST_BAD_DECODE, reason, err, detail);
    } else {
        st = validate_item(&r, emb_dims, out, reason, err);
    }
done:
    json_decref(root); /* after validate_item(): r's strings and arrays belong to root */
    return st;
}

mmr_status_t mmr_ingest_decode_item(mmr_ingest_format_t format, const void *data, size_t len,
                                    const uint32_t *emb_dims, mmr_ingest_decoded_item_t *out,
                                    mmr_ingest_reason_t *reason, mmr_err_t *err) {
    switch (format) {
    case MMR_INGEST_FORMAT_PROTOBUF:
        return decode_protobuf_item(data, len, emb_dims, out, reason, err);
    case MMR_INGEST_FORMAT_JSON:
        return decode_json_item(data, len, emb_dims, out, reason, err);
    }
    return reject(MMR_INGEST_BAD_DECODE, reason, err, "unknown format");
}

void mmr_ingest_decoded_item_release(mmr_ingest_decoded_item_t *out) {
    if (!out) return;
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) free(out->emb_buf[m]);
    memset(out, 0, sizeof *out);
}
