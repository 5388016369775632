/* test_replay_io.c — the replay input readers: events TSV and items JSON Lines on small
 * files written here (good lines, every kind of bad line, the bad-fraction rule at end of
 * file and early), the Kafka reader's checks of its source before it connects (reading a
 * topic is tests/integration/test_replay_kafka.c), and the hashing text encoder. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mmr_log.h"
#include "replay_io.h"

typedef struct bad_log {
    int n;
    long line[64];
    char reason[64][160];
} bad_log_t;

static void on_bad(void *opaque, const char *file, long line, const char *reason) {
    bad_log_t *b = opaque;
    if (b->n < 64) {
        b->line[b->n] = line;
        snprintf(b->reason[b->n], sizeof b->reason[0], "%s", reason);
    }
    b->n++;
}

static char dir[] = "/tmp/mmrec-replay-io-XXXXXX";

static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
    return path;
}

/* Reads every event of path; returns the final next() value. */
static int read_events(const char *path, mmr_replay_io_opts_t *o, long *good, mmr_replay_io_stats_t *st, mmr_err_t *err) {
    mmr_replay_io_events_t *r = NULL;
    CHECK(mmr_replay_io_events_new(path, o, &r, err) == MMR_OK);
    mmr_replay_event_t ev;
    int rc;
    *good = 0;
    while ((rc = mmr_replay_io_events_next(r, &ev, err)) == 1) (*good)++;
    CHECK(mmr_replay_io_events_next(r, &ev, NULL) == rc); /* sticky */
    mmr_replay_io_events_stats(r, st);
    mmr_replay_io_events_free(r);
    return rc;
}

static void test_events(void) {
    char long_id[MMR_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    char text[4096];
    snprintf(text, sizeof text,
             "# ts user item type value request\n"
             "100\tu1\ti1\n"                       /* 2: defaults CLICK, 1 */
             "\n"
             "200\tu2\ti2\timpression\r\n"         /* 4: any case, CRLF */
             "200\tu3\ti3\t5\t42.5\treq-7\n"       /* 5: number type, value, request_id; tie in ts */
             "150\tu1\ti4\tLIKE\t1\t\n"            /* 6: goes back in time; empty request_id */
             "300\tu1\n"                           /* 7: too few fields */
             "300\tu1\ti1\tCLICK\t1\tr\textra\n"   /* 8: too many */
             "30x\tu1\ti1\n"                       /* 9 */
             "\tu1\ti1\n"                          /* 10 */
             "300\tu1\ti1\tBOGUS\n"                /* 11 */
             "300\tu1\ti1\t0\n"                    /* 12: UNSPECIFIED is not an event */
             "300\t\ti1\n"                         /* 13 */
             "300\tu1\t\n"                         /* 14 */
             "300\tu1\t%s\n"                       /* 15 */
             "300\tu1\ti1\tCLICK\tnan\n"           /* 16 */
             "300\tu1\ti1\tCLICK\t1e39\n"          /* 17: overflows a float */
             "300\tu1\ti1\tCLICK\t\n"              /* 18 */
             "400\tu9\ti9\tRATING\t4\n",           /* 19 */
             long_id);
    const char *path = write_file("events.tsv", text);
    bad_log_t bad = {0};
    mmr_replay_io_opts_t o = mmr_replay_io_opts_default();
    o.max_bad_fraction = 1.0;
    o.on_bad = on_bad;
    o.opaque = &bad;
    mmr_replay_io_events_t *r = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_replay_io_events_new(path, &o, &r, &err) == MMR_OK);
    mmr_replay_event_t ev;
    CHECK(mmr_replay_io_events_next(r, &ev, &err) == 1);
    CHECK(ev.line == 2 && ev.ev.ts_ms == 100 && !strcmp(ev.ev.user_id, "u1") && !strcmp(ev.ev.item_id, "i1"));
    CHECK(ev.ev.type == MMR_EV_CLICK && ev.ev.value == 1.0f && !strcmp(ev.request_id, "") && !ev.ev.event_id);
    CHECK(mmr_replay_io_events_next(r, &ev, &err) == 1);
    CHECK(ev.line == 4 && ev.ev.type == MMR_EV_IMPRESSION && !strcmp(ev.ev.item_id, "i2"));
    CHECK(mmr_replay_io_events_next(r, &ev, &err) == 1);
    CHECK(ev.line == 5 && ev.ev.ts_ms == 200 && ev.ev.type == MMR_EV_WATCH && ev.ev.value == 42.5f &&
          !strcmp(ev.request_id, "req-7") && !strcmp(ev.ev.user_id, "u3"));
    CHECK(mmr_replay_io_events_next(r, &ev, &err) == 1);
    CHECK(ev.line == 6 && ev.ev.ts_ms == 150 && ev.ev.type == MMR_EV_LIKE && !strcmp(ev.request_id, ""));
    CHECK(mmr_replay_io_events_next(r, &ev, &err) == 1);
    CHECK(ev.line == 19 && ev.ev.type == MMR_EV_RATING && ev.ev.value == 4.0f);
    CHECK(mmr_replay_io_events_next(r, &ev, &err) == 0);
    mmr_replay_io_stats_t st;
    mmr_replay_io_events_stats(r, &st);
    CHECK_MSG(st.good == 5 && st.bad == 12 && st.skipped == 2, "good %ld bad %ld skipped %ld", st.good, st.bad, st.skipped);
    CHECK(!st.sorted && st.first_unsorted_line == 6 && st.min_ts_ms == 100 && st.max_ts_ms == 400);
    mmr_replay_io_events_free(r);
    static const struct { long line; const char *reason; } want[] = {
        {7, "expected ts_ms"}, {8, "more than 6"}, {9, "ts_ms is not an integer"}, {10, "ts_ms is not"},
        {11, "unknown event type"}, {12, "unknown event type"}, {13, "empty user_id"}, {14, "empty item_id"},
        {15, "item_id longer than MMR_ID_MAX"}, {16, "not a finite"}, {17, "not a finite"}, {18, "not a finite"}};
    CHECK(bad.n == 12);
    for (int i = 0; i < 12; i++)
        CHECK_MSG(bad.line[i] == want[i].line && strstr(bad.reason[i], want[i].reason), "line %ld: %s", bad.line[i],
                  bad.reason[i]);
    printf("ok events: defaults, names in any case, numbers, request ids, 12 kinds of bad line\n");

    mmr_event_type_t t;
    CHECK(mmr_event_type_parse("Purchase", 1, &t) == 0 && t == MMR_EV_PURCHASE);
    CHECK(mmr_event_type_parse("8", 1, &t) == 0 && t == MMR_EV_RATING);
    CHECK(mmr_event_type_parse("click", 0, &t) == -1 && !strcmp(mmr_event_type_name(MMR_EV_WATCH), "WATCH"));
    CHECK(mmr_event_type_parse("9", 1, &t) == -1 && mmr_event_type_parse("UNSPECIFIED", 1, &t) == -1);
    CHECK(mmr_event_type_parse("2x", 1, &t) == -1 && mmr_event_type_parse("", 1, &t) == -1);

    CHECK(mmr_replay_io_events_new("/nonexistent/e.tsv", NULL, &r, &err) == MMR_ERR_IO && strstr(err.msg, "/nonexistent"));
    o.max_bad_fraction = 1.5;
    CHECK(mmr_replay_io_events_new(path, &o, &r, &err) == MMR_ERR_INVALID);
    mmr_replay_io_events_free(NULL);
    printf("ok types and opening errors\n");
}

static void test_fraction(void) {
    /* End of file: 100 good, 1 bad is under 1 %; 2 bad is over. */
    size_t cap = 64 * 3000;
    char *text = malloc(cap), *p = text;
    for (int i = 0; i < 100; i++) p += sprintf(p, "%d\tu\ti\n", i);
    strcpy(p, "bad\n");
    bad_log_t bad = {0};
    mmr_replay_io_opts_t o = mmr_replay_io_opts_default();
    o.on_bad = on_bad;
    o.opaque = &bad;
    long good;
    mmr_replay_io_stats_t st;
    mmr_err_t err = {0};
    CHECK(read_events(write_file("f1.tsv", text), &o, &good, &st, &err) == 0 && good == 100 && st.bad == 1);
    strcat(p, "bad\n");
    CHECK(read_events(write_file("f2.tsv", text), &o, &good, &st, &err) == -MMR_ERR_INVALID && good == 100);
    CHECK_MSG(strstr(err.msg, "f2.tsv: 2 of 102 lines bad") && strstr(err.msg, "exceeds the limit of 1.00%"), "%s", err.msg);
    printf("ok end-of-file rule: %s\n", err.msg);

    /* Early: every 10th line bad → refused soon after the first 1000 lines, not at the end. */
    p = text;
    for (int i = 0; i < 3000; i++) p += i % 10 == 9 ? sprintf(p, "x\n") : sprintf(p, "%d\tu\ti\n", i);
    CHECK(read_events(write_file("f3.tsv", text), &o, &good, &st, &err) == -MMR_ERR_INVALID);
    CHECK_MSG(good == 900 && st.bad == 100 && strstr(err.msg, "so far: more than twice"), "good %ld: %s", good, err.msg);
    printf("ok early rule: %s\n", err.msg);
    /* A limit of 0 refuses any bad line (at the latest after the first 1000 lines). */
    o.max_bad_fraction = 0;
    strcpy(text, "1\tu\ti\n2\tu\n");
    CHECK(read_events(write_file("f4.tsv", text), &o, &good, &st, &err) == -MMR_ERR_INVALID && good == 1);

    /* Without a callback bad lines go to mmr_log as file:line: reason. */
    o = mmr_replay_io_opts_default();
    o.max_bad_fraction = 1;
    mmr_log_set_sink(NULL, NULL);
    mmr_log_set_level(MMR_LOG_ERROR); /* the sink is stderr; keep the test output short */
    CHECK(read_events(write_file("f5.tsv", text), &o, &good, &st, &err) == 0 && good == 1 && st.bad == 1);
    free(text);
}

#define PINNED_BUCKET 998
#define PINNED_SIGN -1.0f

static double cosine(const float *a, const float *b, uint32_t d) {
    double s = 0;
    for (uint32_t i = 0; i < d; i++) s += (double)a[i] * b[i];
    return s; /* both are unit vectors */
}

/* A bad Kafka source is refused before any connection (no broker needed). */
static void test_kafka_src(void) {
    mmr_replay_io_kafka_t k[6];
    for (int i = 0; i < 6; i++) k[i] = mmr_replay_io_kafka_default("127.0.0.1:1", "mmrec.events");
    k[0].brokers = "";
    k[1].topic = NULL;
    k[2].format = (mmr_ingest_format_t)7;
    k[3].from_ms = -5;
    k[4].from_ms = k[4].to_ms = 1000; /* [from, to) would be empty */
    k[5].timeout_ms = -1;
    static const char *const want[] = {"brokers and a topic", "brokers and a topic", "format", ">= 0",
                                       "must be before", "timeout"};
    for (int i = 0; i < 6; i++) {
        mmr_replay_io_events_t *r = NULL;
        mmr_err_t err = {0};
        CHECK_MSG(mmr_replay_io_events_new_kafka(&k[i], NULL, &r, &err) == MMR_ERR_INVALID && !r &&
                      strstr(err.msg, want[i]), "case %d: %s", i, err.msg);
    }
    printf("ok kafka source: 6 bad sources refused before connecting\n");
}

static void test_text_encoder(void) {
    enum { D = 256 };
    float a[D], b[D], c[D], e[D];
    const char *s1 = "The quick brown fox jumps over the lazy dog";
    CHECK(mmr_replay_io_embed_text(s1, strlen(s1), a, D) == 9);
    CHECK(mmr_replay_io_embed_text(s1, strlen(s1), b, D) == 9 && !memcmp(a, b, sizeof a));
    const char *s1u = "the QUICK, brown fox -- jumps over the lazy dog!";
    CHECK(mmr_replay_io_embed_text(s1u, strlen(s1u), b, D) == 9 && !memcmp(a, b, sizeof a));
    CHECK(fabs(cosine(a, a, D) - 1.0) < 1e-5);
    const char *s2 = "a quick brown fox jumped over a lazy dog", *s3 = "stock markets fell sharply on tuesday";
    mmr_replay_io_embed_text(s2, strlen(s2), b, D);
    mmr_replay_io_embed_text(s3, strlen(s3), c, D);
    double near = cosine(a, b, D), far = cosine(a, c, D);
    CHECK_MSG(near > 0.4 && near > far + 0.3, "similar %.3f unrelated %.3f", near, far);
    printf("ok text encoder: cos(similar) %.3f > cos(unrelated) %.3f\n", near, far);
    CHECK(mmr_replay_io_embed_text("", 0, e, D) == 0 && mmr_replay_io_embed_text(" ,;!", 4, e, D) == 0);
    for (int i = 0; i < D; i++) CHECK(e[i] == 0.0f);
    /* Pinned output: model files trained on encoded text depend on these buckets. */
    float one[1000];
    CHECK(mmr_replay_io_embed_text("Hello", 5, one, 1000) == 1);
    int nz = -1;
    for (int i = 0; i < 1000; i++)
        if (one[i] != 0.0f) nz = nz < 0 ? i : 1000;
    CHECK_MSG(nz == PINNED_BUCKET && one[nz] == PINNED_SIGN, "'hello' → bucket %d sign %+.0f", nz, one[nz]);
    printf("ok empty text, pinned output ('hello' → bucket %d of 1000, sign %+.0f)\n", nz, one[nz]);
}

static void test_items(void) {
    char long_id[MMR_ID_MAX + 2], text[8192];
    memset(long_id, 'y', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    snprintf(text, sizeof text,
             "{\"item_id\":\"a\",\"topic\":3,\"text_emb\":[1,2,3,4],\"image_emb\":[0.5,-1,2],\"video_emb\":[7,8],"
             "\"created_ms\":1767225600000,\"deleted\":true,\"attrs\":{\"lang\":\"en\"}}\n"             /* 1 */
             "{\"item_id\":\"b\",\"text\":\"Red running shoes\"}\n"                                      /* 2 */
             "{\"item_id\":\"c\",\"text\":\"ignored\",\"text_emb\":[0,0,0,1]}\n"                         /* 3 */
             "{\"item_id\":\"d\",\"text\":\"?!\"}\n"                                                     /* 4 */
             "\n"
             "{\"item_id\":\"e\"}\n"                                                                     /* 6 */
             "not json\n"                                                                                /* 7 */
             "[1,2]\n"                                                                                   /* 8 */
             "{\"text_emb\":[1,2,3,4]}\n"                                                                /* 9 */
             "{\"item_id\":5}\n"                                                                         /* 10 */
             "{\"item_id\":\"\"}\n"                                                                      /* 11 */
             "{\"item_id\":\"%s\"}\n"                                                                    /* 12 */
             "{\"item_id\":\"f\",\"image_emb\":[1,2]}\n"                                                 /* 13 */
             "{\"item_id\":\"f\",\"video_emb\":[1,\"2\"]}\n"                                             /* 14 */
             "{\"item_id\":\"f\",\"video_emb\":[1,1e39]}\n"                                              /* 15 */
             "{\"item_id\":\"f\",\"video_emb\":{}}\n"                                                    /* 16 */
             "{\"item_id\":\"f\",\"attrs\":\"x\"}\n"                                                     /* 17 */
             "{\"item_id\":\"f\",\"created_ms\":1.5}\n"                                                  /* 18 */
             "{\"item_id\":\"f\",\"deleted\":\"yes\"}\n"                                                 /* 19 */
             "{\"item_id\":\"f\",\"text\":5}\n"                                                          /* 20 */
             "{\"item_id\":\"f\",\"item_id\":\"g\"}\n",                                                  /* 21 */
             long_id);
    const char *path = write_file("items.jsonl", text);
    bad_log_t bad = {0};
    mmr_replay_io_opts_t o = mmr_replay_io_opts_default();
    o.max_bad_fraction = 1;
    o.on_bad = on_bad;
    o.opaque = &bad;
    o.dims[MMR_MODALITY_TEXT] = 4;
    o.dims[MMR_MODALITY_IMAGE] = 3;
    mmr_replay_io_items_t *r = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_replay_io_items_new(path, &o, &r, &err) == MMR_OK);
    mmr_replay_item_t it;
    CHECK(mmr_replay_io_items_next(r, &it, &err) == 1);
    CHECK(it.line == 1 && !strcmp(it.item.item_id, "a") && it.item.created_ms == 1767225600000LL && it.item.deleted);
    CHECK(it.item.emb_dim[0] == 4 && it.item.emb[0][3] == 4.0f && it.item.emb_dim[1] == 3 && it.item.emb[1][1] == -1.0f);
    CHECK(it.item.emb_dim[2] == 2 && it.item.emb[2][1] == 8.0f && !it.text_encoded); /* video: any width */
    CHECK(mmr_replay_io_items_next(r, &it, &err) == 1);
    CHECK(!strcmp(it.item.item_id, "b") && it.text_encoded && it.item.emb_dim[0] == 4 && !it.item.emb[1] && !it.item.deleted);
    double n2 = 0;
    for (int i = 0; i < 4; i++) n2 += (double)it.item.emb[0][i] * it.item.emb[0][i];
    CHECK(fabs(n2 - 1) < 1e-5);
    CHECK(mmr_replay_io_items_next(r, &it, &err) == 1);
    CHECK(!strcmp(it.item.item_id, "c") && !it.text_encoded && it.item.emb[0][3] == 1.0f && it.item.emb[0][0] == 0.0f);
    CHECK(mmr_replay_io_items_next(r, &it, &err) == 1);
    CHECK(!strcmp(it.item.item_id, "d") && !it.text_encoded && it.item.emb_dim[0] == 0 && !it.item.emb[0]);
    CHECK(mmr_replay_io_items_next(r, &it, &err) == 1);
    CHECK(!strcmp(it.item.item_id, "e") && it.line == 6 && !it.item.emb[0] && !it.item.emb[1] && !it.item.emb[2]);
    CHECK(mmr_replay_io_items_next(r, &it, &err) == 0);
    mmr_replay_io_stats_t st;
    mmr_replay_io_items_stats(r, &st);
    CHECK(st.good == 5 && st.bad == 15 && st.skipped == 1);
    mmr_replay_io_items_free(r);
    static const struct { long line; const char *reason; } want[] = {
        {7, "not valid JSON"}, {8, "not a JSON object"}, {9, "item_id missing"}, {10, "item_id missing"},
        {11, "empty item_id"}, {12, "longer than MMR_ID_MAX"}, {13, "image_emb has 2 values, the configured width is 3"},
        {14, "video_emb[1] is not a finite number"}, {15, "video_emb[1] is not a finite"}, {16, "video_emb is not an array"},
        {17, "attrs is not an object"}, {18, "created_ms"}, {19, "deleted"}, {20, "text is not a string"},
        {21, "not valid JSON: duplicate"}};
    CHECK(bad.n == 15);
    for (int i = 0; i < 15; i++)
        CHECK_MSG(bad.line[i] == want[i].line && strstr(bad.reason[i], want[i].reason), "line %ld: %s", bad.line[i],
                  bad.reason[i]);
    printf("ok items: embeddings, widths, raw text, attrs, created/deleted, 15 kinds of bad line\n");

    /* Raw text needs a text width; the fraction rule applies to items too. */
    o.dims[MMR_MODALITY_TEXT] = 0;
    o.max_bad_fraction = 0.01;
    bad.n = 0;
    CHECK(mmr_replay_io_items_new(write_file("items2.jsonl", "{\"item_id\":\"b\",\"text\":\"x\"}\n"), &o, &r, &err) == MMR_OK);
    CHECK(mmr_replay_io_items_next(r, &it, &err) == -MMR_ERR_INVALID && strstr(err.msg, "1 of 1 lines bad"));
    CHECK(bad.n == 1 && strstr(bad.reason[0], "no text width"));
    mmr_replay_io_items_free(r);
    printf("ok items: raw text without a width, fraction rule: %s\n", err.msg);
}

int main(void) {
    CHECK(mkdtemp(dir));
    test_events();
    test_fraction();
    test_kafka_src();
    test_text_encoder();
    test_items();
    static const char *const names[] = {"events.tsv", "f1.tsv", "f2.tsv", "f3.tsv", "f4.tsv", "f5.tsv",
                                        "items.jsonl", "items2.jsonl"};
    char path[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}
