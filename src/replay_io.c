/* replay_io.c — the events TSV and items JSON Lines readers, the events reader's Kafka
 * variant and the hashing text encoder (contract in replay_io.h). Not the replay: nothing
 * here splits or stores; the Kafka range itself is read and merged by replay_kafka.c.
 *
 * Every reader shares one reader_t: bad-line reporting, the bad-fraction rule and the
 * remembered end or failure; the file readers also use its line reader (getline into a
 * growing buffer, line counting), and the formats differ only in how one line becomes a
 * record. The Kafka variant reports its bad messages through the same reader_t. */
#include "replay_io.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mmr_crc32c.h"
#include "mmr_log.h"
#include "mmr_rand.h"
#include "replay_kafka.h"

typedef struct reader {
    FILE *f;        /* NULL for Kafka */
    char *path;     /* the file, or the topic */
    const char *unit; /* what is counted: "lines" or "messages" */
    char sep;       /* between a bad record's place and number: "file:line", "topic/partition@offset" */
    char *buf; /* [cap] the current line, NUL-terminated, "\r\n" stripped */
    size_t cap;
    long lineno;
    mmr_replay_io_opts_t opts;
    mmr_replay_io_stats_t st;
    int state;      /* 0 reading, 1 at end of file, < 0 failed with that negated status */
    mmr_err_t fail; /* the message that goes with a failed state */
} reader_t;

mmr_replay_io_opts_t mmr_replay_io_opts_default(void) {
    return (mmr_replay_io_opts_t){.max_bad_fraction = MMR_REPLAY_IO_MAX_BAD_DEFAULT};
}

/* Checks opts and names the input; the file readers then open it (reader_open). */
static mmr_status_t reader_init(reader_t *r, const char *path, const mmr_replay_io_opts_t *opts,
                                mmr_err_t *err) {
    r->opts = opts ? *opts : mmr_replay_io_opts_default();
    r->st.sorted = 1;
    r->unit = "lines";
    r->sep = ':';
    if (!path || !(r->opts.max_bad_fraction >= 0 && r->opts.max_bad_fraction <= 1))
        return mmr_err_set(err, MMR_ERR_INVALID, "replay input: need a path and max_bad_fraction in [0, 1]");
    for (int m = 0; m < MMR_MODALITY_COUNT; m++)
        if (r->opts.dims[m] > MMR_EMB_DIM_MAX)
            return mmr_err_set(err, MMR_ERR_INVALID, "replay input: width %u over %d", r->opts.dims[m], MMR_EMB_DIM_MAX);
    if (!(r->path = strdup(path))) return mmr_err_set(err, MMR_ERR_NOMEM, "replay input: path");
    return MMR_OK;
}

static mmr_status_t reader_open(reader_t *r, const char *path, const mmr_replay_io_opts_t *opts,
                                mmr_err_t *err) {
    mmr_status_t st = reader_init(r, path, opts, err);
    if (st != MMR_OK) return st;
    if (!(r->f = fopen(path, "r"))) return mmr_err_set(err, MMR_ERR_IO, "open %s: %s", path, strerror(errno));
    return MMR_OK;
}

static void reader_close(reader_t *r) {
    if (r->f) fclose(r->f);
    free(r->path);
    free(r->buf);
}

/* Ends the reader with a negated status, remembered for later calls. */
static int reader_fail(reader_t *r, mmr_err_t *err, mmr_status_t code, const char *fmt, const char *detail) {
    mmr_err_set(&r->fail, code, fmt, r->path, detail);
    if (err) *err = r->fail;
    return r->state = -(int)code;
}

static int reader_over_limit(const reader_t *r, double factor) {
    long n = r->st.good + r->st.bad;
    return (double)r->st.bad > factor * r->opts.max_bad_fraction * (double)n;
}

static int reader_fraction_fail(reader_t *r, mmr_err_t *err, const char *when) {
    long n = r->st.good + r->st.bad;
    char detail[160];
    snprintf(detail, sizeof detail, "%ld of %ld %s bad (%.2f%%) %s the limit of %.2f%%", r->st.bad, n, r->unit,
             100.0 * (double)r->st.bad / (double)n, when, 100.0 * r->opts.max_bad_fraction);
    return reader_fail(r, err, MMR_ERR_INVALID, "%s: %s (max_bad_fraction)", detail);
}

/* Reports and counts the record at where/pos ("file", line or "topic/partition", offset) as
 * bad. Returns 0 to go on, or a negated status when the early bad-fraction check fails. */
static int reader_bad_at(reader_t *r, const char *where, long pos, const char *reason, mmr_err_t *err) {
    r->st.bad++;
    if (r->opts.on_bad) r->opts.on_bad(r->opts.opaque, where, pos, reason);
    else if (r->st.bad <= MMR_REPLAY_IO_LOG_MAX) {
        char more[64] = "";
        if (r->st.bad == MMR_REPLAY_IO_LOG_MAX)
            snprintf(more, sizeof more, " (further bad %s are counted, not logged)", r->unit);
        mmr_log(MMR_LOG_WARN, "replay", "%s%c%ld: %s%s", where, r->sep, pos, reason, more);
    }
    if (r->st.good + r->st.bad >= MMR_REPLAY_IO_EARLY_LINES && reader_over_limit(r, 2.0))
        return reader_fraction_fail(r, err, "so far: more than twice");
    return 0;
}

/* Reports and counts the current line as bad (reader_bad_at). */
static int reader_bad(reader_t *r, const char *reason, mmr_err_t *err) {
    return reader_bad_at(r, r->path, r->lineno, reason, err);
}

/* 1 while the reader is reading; else its remembered end (0) or failure (a negated status,
 * the message copied to err). */
static int reader_state(const reader_t *r, mmr_err_t *err) {
    if (r->state < 0 && err) *err = r->fail;
    return r->state == 0 ? 1 : r->state == 1 ? 0 : r->state;
}

/* End of input: the end-of-input fraction check, then 0 (or its negated status). */
static int reader_end(reader_t *r, mmr_err_t *err) {
    if (reader_over_limit(r, 1.0)) return reader_fraction_fail(r, err, "exceeds");
    r->state = 1;
    return 0;
}

/* Next non-blank, non-comment line into r->buf (*len bytes). Returns 1, 0 at end of file
 * (after the end-of-file fraction check), or a negated status. A line holding a NUL byte
 * is reported bad here. */
static int reader_line(reader_t *r, size_t *len, mmr_err_t *err) {
    int rc = reader_state(r, err);
    if (rc != 1) return rc;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->buf, &r->cap, r->f);
        if (n < 0) {
            if (ferror(r->f)) return reader_fail(r, err, MMR_ERR_IO, "read %s: %s", strerror(errno ? errno : EIO));
            if (errno == ENOMEM) return reader_fail(r, err, MMR_ERR_NOMEM, "read %s: %s", "line buffer");
            return reader_end(r, err);
        }
        r->lineno++;
        while (n > 0 && (r->buf[n - 1] == '\n' || r->buf[n - 1] == '\r')) r->buf[--n] = '\0';
        if (n == 0 || r->buf[0] == '#') {
            r->st.skipped++;
            continue;
        }
        if (strlen(r->buf) != (size_t)n) {
            int rc = reader_bad(r, "NUL byte in line", err);
            if (rc < 0) return rc;
            continue;
        }
        *len = (size_t)n;
        return 1;
    }
}

/* --- events TSV ------------------------------------------------------------------------ */

struct mmr_replay_io_events {
    reader_t rd;
    int64_t last_ts;
    long returned;             /* events handed out so far */
    mmr_replay_kafka_t *kafka; /* non-NULL: the events come from this topic range, not rd.f */
};

mmr_status_t mmr_replay_io_events_new(const char *path, const mmr_replay_io_opts_t *opts,
                                      mmr_replay_io_events_t **out, mmr_err_t *err) {
    mmr_replay_io_events_t *r = calloc(1, sizeof *r);
    if (!r) return mmr_err_set(err, MMR_ERR_NOMEM, "events reader");
    mmr_status_t st = reader_open(&r->rd, path, opts, err);
    if (st != MMR_OK) {
        mmr_replay_io_events_free(r);
        return st;
    }
    *out = r;
    return MMR_OK;
}

/* Parses line (modified in place: tabs become NULs) into *ev. Returns NULL or the reason. */
static const char *parse_event(char *line, mmr_replay_event_t *ev) {
    char *col[6] = {0};
    int n = 0;
    for (char *p = line;; p++) {
        if (n == 6) return "more than 6 tab-separated fields";
        col[n++] = p;
        if (!(p = strchr(p, '\t'))) break;
        *p = '\0';
    }
    if (n < 3) return "expected ts_ms<TAB>user_id<TAB>item_id[<TAB>type[<TAB>value[<TAB>request_id]]]";
    char *end;
    errno = 0;
    long long ts = strtoll(col[0], &end, 10);
    if (!((*col[0] >= '0' && *col[0] <= '9') || *col[0] == '-') || *end || errno) return "ts_ms is not an integer";
    for (int i = 1; i <= 2; i++) {
        size_t len = strlen(col[i]);
        if (len == 0) return i == 1 ? "empty user_id" : "empty item_id";
        if (len > MMR_ID_MAX) return i == 1 ? "user_id longer than MMR_ID_MAX (256 bytes)" : "item_id longer than MMR_ID_MAX (256 bytes)";
    }
    mmr_event_type_t type = MMR_EV_CLICK;
    if (n > 3 && mmr_event_type_parse(col[3], 1, &type) != 0) return "unknown event type";
    double value = 1.0;
    if (n > 4) {
        value = strtod(col[4], &end);
        if (!*col[4] || *end || !(fabs(value) <= FLT_MAX)) return "value is not a finite number";
    }
    ev->ev = (mmr_event_t){.user_id = col[1], .item_id = col[2], .type = type, .value = (float)value, .ts_ms = ts};
    ev->request_id = n > 5 ? col[5] : "";
    return NULL;
}

/* Verdict callback of the Kafka loader: good messages are counted as they are read (so the
 * early bad-fraction check sees them), bad ones reported and counted like a bad line. */
static int kafka_msg(void *opaque, const char *where, int64_t offset, const char *reason, mmr_err_t *err) {
    mmr_replay_io_events_t *r = opaque;
    if (reason) return reader_bad_at(&r->rd, where, (long)offset, reason, err);
    r->rd.st.good++;
    return 0;
}

mmr_replay_io_kafka_t mmr_replay_io_kafka_default(const char *brokers, const char *topic) {
    return (mmr_replay_io_kafka_t){.brokers = brokers, .topic = topic, .format = MMR_INGEST_FORMAT_PROTOBUF,
                                   .from_ms = MMR_REPLAY_KAFKA_NO_BOUND, .to_ms = MMR_REPLAY_KAFKA_NO_BOUND};
}

mmr_status_t mmr_replay_io_events_new_kafka(const mmr_replay_io_kafka_t *src, const mmr_replay_io_opts_t *opts,
                                            mmr_replay_io_events_t **out, mmr_err_t *err) {
    mmr_replay_io_events_t *r = calloc(1, sizeof *r);
    if (!r) return mmr_err_set(err, MMR_ERR_NOMEM, "events reader");
    /* the topic names the input; mmr_replay_kafka_read says what is wrong with src */
    mmr_status_t st = reader_init(&r->rd, src && src->topic ? src->topic : "", opts, err);
    r->rd.unit = "messages";
    r->rd.sep = '@';
    if (st == MMR_OK) st = mmr_replay_kafka_read(src, kafka_msg, r, &r->kafka, err);
    if (st != MMR_OK) {
        mmr_replay_io_events_free(r);
        return st;
    }
    *out = r;
    return MMR_OK;
}

/* The next good TSV line as an event (counted good): 1, 0 at the end, or a negated status. */
static int tsv_next(mmr_replay_io_events_t *r, mmr_replay_event_t *ev, mmr_err_t *err) {
    size_t len;
    int rc;
    while ((rc = reader_line(&r->rd, &len, err)) == 1) {
        const char *reason = parse_event(r->rd.buf, ev);
        if (!reason) {
            ev->line = r->rd.lineno;
            r->rd.st.good++;
            return 1;
        }
        if ((rc = reader_bad(&r->rd, reason, err)) < 0) return rc;
    }
    return rc;
}

/* The next event of the Kafka range (read whole by mmr_replay_kafka_read). */
static int kafka_next(mmr_replay_io_events_t *r, mmr_replay_event_t *ev, mmr_err_t *err) {
    int rc = reader_state(&r->rd, err);
    if (rc != 1) return rc;
    return mmr_replay_kafka_next(r->kafka, ev) ? 1 : reader_end(&r->rd, err);
}

int mmr_replay_io_events_next(mmr_replay_io_events_t *r, mmr_replay_event_t *ev, mmr_err_t *err) {
    int rc = r->kafka ? kafka_next(r, ev, err) : tsv_next(r, ev, err);
    if (rc != 1) return rc;
    mmr_replay_io_stats_t *st = &r->rd.st;
    if (r->returned > 0 && ev->ev.ts_ms < r->last_ts && st->sorted) {
        st->sorted = 0;
        st->first_unsorted_line = ev->line;
    }
    if (r->returned == 0 || ev->ev.ts_ms < st->min_ts_ms) st->min_ts_ms = ev->ev.ts_ms;
    if (r->returned == 0 || ev->ev.ts_ms > st->max_ts_ms) st->max_ts_ms = ev->ev.ts_ms;
    r->last_ts = ev->ev.ts_ms;
    r->returned++;
    return 1;
}

void mmr_replay_io_events_stats(const mmr_replay_io_events_t *r, mmr_replay_io_stats_t *out) { *out = r->rd.st; }

void mmr_replay_io_events_free(mmr_replay_io_events_t *r) {
    if (!r) return;
    reader_close(&r->rd);
    mmr_replay_kafka_free(r->kafka);
    free(r);
}

/* --- items JSON Lines ------------------------------------------------------------------ */

struct mmr_replay_io_items {
    reader_t rd;
    char id[MMR_ID_MAX + 1];
    float *emb[MMR_MODALITY_COUNT]; /* emb[m] is [cap[m]] floats; a record uses the first emb_dim[m] */
    size_t cap[MMR_MODALITY_COUNT];
};

static const char *const emb_field[MMR_MODALITY_COUNT] = {"text_emb", "image_emb", "video_emb"};
#define WHY_MAX 256 /* room for a bad-line reason, jansson's message included */

mmr_status_t mmr_replay_io_items_new(const char *path, const mmr_replay_io_opts_t *opts,
                                     mmr_replay_io_items_t **out, mmr_err_t *err) {
    mmr_replay_io_items_t *r = calloc(1, sizeof *r);
    if (!r) return mmr_err_set(err, MMR_ERR_NOMEM, "items reader");
    mmr_status_t st = reader_open(&r->rd, path, opts, err);
    if (st != MMR_OK) {
        mmr_replay_io_items_free(r);
        return st;
    }
    *out = r;
    return MMR_OK;
}

/* Ensures r->emb[m] holds n floats. */
static int items_reserve(mmr_replay_io_items_t *r, int m, size_t n) {
    if (n <= r->cap[m]) return 0;
    float *p = realloc(r->emb[m], sizeof(float) * n);
    if (!p) return -1;
    r->emb[m] = p;
    r->cap[m] = n;
    return 0;
}

/* Fills modality m of it from a JSON array. Returns NULL or the reason (in why[WHY_MAX]). */
static const char *parse_emb(mmr_replay_io_items_t *r, int m, json_t *arr, mmr_item_t *it, char *why) {
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    uint32_t want = r->rd.opts.dims[m];
    if (n == 0 || n > MMR_EMB_DIM_MAX)
        snprintf(why, WHY_MAX, "%s is not an array of 1..%d numbers", emb_field[m], MMR_EMB_DIM_MAX);
    else if (want && n != want)
        snprintf(why, WHY_MAX, "%s has %zu values, the configured width is %u", emb_field[m], n, want);
    else if (items_reserve(r, m, n) != 0)
        snprintf(why, WHY_MAX, "out of memory for %s", emb_field[m]);
    else {
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(arr, i);
            double x = json_number_value(v);
            if (!json_is_number(v) || !(fabs(x) <= FLT_MAX)) {
                snprintf(why, WHY_MAX, "%s[%zu] is not a finite number", emb_field[m], i);
                return why;
            }
            r->emb[m][i] = (float)x;
        }
        it->emb_dim[m] = (uint32_t)n;
        it->emb[m] = r->emb[m];
        return NULL;
    }
    return why;
}

/* Parses one JSON line into *out. Returns NULL or the reason (in why[WHY_MAX]). */
static const char *parse_item(mmr_replay_io_items_t *r, size_t len, mmr_replay_item_t *out, char *why) {
    json_error_t jerr;
    json_t *o = json_loadb(r->rd.buf, len, JSON_REJECT_DUPLICATES, &jerr), *v;
    const char *reason = NULL;
    mmr_item_t it = {.item_id = r->id};
    int text_encoded = 0;
    if (!o) {
        snprintf(why, WHY_MAX, "not valid JSON: %s (column %d)", jerr.text, jerr.column);
        return why;
    }
    if (!json_is_object(o)) reason = "not a JSON object";
    else if (!json_is_string(v = json_object_get(o, "item_id"))) reason = "item_id missing or not a string";
    else if (json_string_length(v) == 0) reason = "empty item_id";
    else if (json_string_length(v) > MMR_ID_MAX) reason = "item_id longer than MMR_ID_MAX (256 bytes)";
    else if ((v = json_object_get(o, "created_ms")) && !json_is_integer(v)) reason = "created_ms is not an integer";
    else if ((v = json_object_get(o, "deleted")) && !json_is_boolean(v)) reason = "deleted is not a boolean";
    else if ((v = json_object_get(o, "attrs")) && !json_is_object(v)) reason = "attrs is not an object";
    else if ((v = json_object_get(o, "text")) && !json_is_string(v)) reason = "text is not a string";
    for (int m = 0; m < MMR_MODALITY_COUNT && !reason; m++)
        if ((v = json_object_get(o, emb_field[m]))) reason = parse_emb(r, m, v, &it, why);
    json_t *text = json_object_get(o, "text");
    if (!reason && text && !it.emb[MMR_MODALITY_TEXT]) {
        uint32_t d = r->rd.opts.dims[MMR_MODALITY_TEXT];
        if (d == 0) reason = "text given but no text width is configured";
        else if (items_reserve(r, MMR_MODALITY_TEXT, d) != 0) reason = "out of memory for text";
        else if (mmr_replay_io_embed_text(json_string_value(text), json_string_length(text),
                                          r->emb[MMR_MODALITY_TEXT], d) > 0) {
            it.emb_dim[MMR_MODALITY_TEXT] = d;
            it.emb[MMR_MODALITY_TEXT] = r->emb[MMR_MODALITY_TEXT];
            text_encoded = 1;
        }
    }
    if (!reason) {
        v = json_object_get(o, "item_id");
        memcpy(r->id, json_string_value(v), json_string_length(v) + 1);
        it.created_ms = json_integer_value(json_object_get(o, "created_ms"));
        it.deleted = json_is_true(json_object_get(o, "deleted"));
        *out = (mmr_replay_item_t){.item = it, .text_encoded = text_encoded, .line = r->rd.lineno};
    }
    json_decref(o);
    return reason;
}

int mmr_replay_io_items_next(mmr_replay_io_items_t *r, mmr_replay_item_t *it, mmr_err_t *err) {
    size_t len;
    int rc;
    char why[WHY_MAX];
    while ((rc = reader_line(&r->rd, &len, err)) == 1) {
        const char *reason = parse_item(r, len, it, why);
        if (!reason) {
            r->rd.st.good++;
            return 1;
        }
        if ((rc = reader_bad(&r->rd, reason, err)) < 0) return rc;
    }
    return rc;
}

void mmr_replay_io_items_stats(const mmr_replay_io_items_t *r, mmr_replay_io_stats_t *out) { *out = r->rd.st; }

void mmr_replay_io_items_free(mmr_replay_io_items_t *r) {
    if (!r) return;
    reader_close(&r->rd);
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) free(r->emb[m]);
    free(r);
}

/* --- hashing text encoder -------------------------------------------------------------- */

static int is_token_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Adds ±1 for one feature key (a unigram's CRC, or two CRCs for a bigram). */
static void embed_feature(uint64_t key, float *out, uint32_t d) {
    uint64_t s = key, h = mmr_rand_next(&s);
    out[h % d] += (h >> 63) ? -1.0f : 1.0f;
}

size_t mmr_replay_io_embed_text(const char *text, size_t len, float *out, uint32_t d) {
    memset(out, 0, sizeof(float) * d);
    size_t ntok = 0;
    uint32_t prev = 0;
    for (size_t i = 0; i < len;) {
        if (!is_token_byte((unsigned char)text[i])) {
            i++;
            continue;
        }
        uint32_t crc = 0;
        for (; i < len && is_token_byte((unsigned char)text[i]); i++) {
            unsigned char c = (unsigned char)text[i];
            if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
            crc = mmr_crc32c(crc, &c, 1);
        }
        embed_feature(crc, out, d);
        if (ntok++) embed_feature(((uint64_t)prev << 32 | crc) ^ 0xB16A4D5EB16A4D5Eull, out, d);
        prev = crc;
    }
    double ss = 0;
    for (uint32_t j = 0; j < d; j++) ss += (double)out[j] * out[j];
    if (ss > 0)
        for (uint32_t j = 0; j < d; j++) out[j] = (float)(out[j] / sqrt(ss));
    return ntok;
}
