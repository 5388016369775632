/* make_seeds.c — writes the seed corpora under DIR/<harness>/ (DIR = argv[1], normally
 * tests/fuzz/corpus): a handful of small valid and invalid inputs per harness, including
 * a valid model file from a tiny tower config. Run by tests/fuzz/run.sh --seeds; the
 * output is committed. Each file is named after what it holds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_tower.h"
#include "mmrec/v1/event.pb-c.h"
#include "mmrec/v1/item.pb-c.h"
#include "mmrec/v1/ranking.pb-c.h"

static const char *root;

static void put(const char *harness, const char *name, const void *data, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, harness);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) { perror(path); exit(1); }
    snprintf(path, sizeof path, "%s/%s/%s", root, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) { perror(path); exit(1); }
}

/* format byte + payload */
static void put1(const char *harness, const char *name, unsigned char b0, const void *data,
                 size_t n) {
    unsigned char buf[8192];
    if (n + 1 > sizeof buf) exit(1);
    buf[0] = b0;
    memcpy(buf + 1, data, n);
    put(harness, name, buf, n + 1);
}

static void put1s(const char *harness, const char *name, unsigned char b0, const char *s) {
    put1(harness, name, b0, s, strlen(s));
}

static void events(void) {
    const char *h = "decode_event";
    unsigned char buf[4096];
    Mmrec__V1__Event e = MMREC__V1__EVENT__INIT;
    e.event_id = "e1"; e.user_id = "alice"; e.item_id = "a";
    e.type = MMREC__V1__EVENT_TYPE__CLICK; e.value = 1; e.ts_ms = 1699999999000;
    e.request_id = "r1";
    Mmrec__V1__Event__ContextEntry ce = MMREC__V1__EVENT__CONTEXT_ENTRY__INIT;
    ce.key = "device"; ce.value = "ios";
    Mmrec__V1__Event__ContextEntry *ctx[1] = {&ce};
    e.context = ctx; e.n_context = 1;
    put1("decode_event", "pb_click", 0, buf, mmrec__v1__event__pack(&e, buf));
    e.type = MMREC__V1__EVENT_TYPE__WATCH; e.value = 42.5f; e.ts_ms = 0; e.n_context = 0;
    put1(h, "pb_watch_ts0", 0, buf, mmrec__v1__event__pack(&e, buf));
    e.type = MMREC__V1__EVENT_TYPE__RATING; e.value = -1;
    put1(h, "pb_rating_negative", 0, buf, mmrec__v1__event__pack(&e, buf));
    e.type = 99; e.value = 1;
    put1(h, "pb_unknown_type", 0, buf, mmrec__v1__event__pack(&e, buf));
    e.type = MMREC__V1__EVENT_TYPE__CLICK; e.user_id = "";
    put1(h, "pb_missing_user", 0, buf, mmrec__v1__event__pack(&e, buf));
    put1(h, "pb_truncated", 0, "\x0a\x05""ab", 4);
    put1(h, "empty", 0, "", 0);
    put1s(h, "json_click", 1, "{\"event_id\":\"e1\",\"user_id\":\"alice\",\"item_id\":\"a\","
                              "\"type\":\"CLICK\",\"value\":1,\"ts_ms\":\"1699999999000\"}");
    put1s(h, "json_camel", 1, "{\"eventId\":\"e2\",\"userId\":\"bob\",\"itemId\":\"b\",\"type\":5,"
                              "\"value\":\"30.5\",\"tsMs\":1699999999000,\"requestId\":\"r\","
                              "\"context\":{\"k\":\"v\"},\"extra\":null}");
    put1s(h, "json_nan", 1, "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"WATCH\",\"value\":\"NaN\"}");
    put1s(h, "json_future", 1, "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"LIKE\",\"ts_ms\":9e18}");
    put1s(h, "json_wrong_type", 1, "{\"user_id\":7,\"item_id\":\"i\",\"type\":\"LIKE\"}");
    put1s(h, "json_nul_in_id", 1, "{\"user_id\":\"a\\u0000b\",\"item_id\":\"i\",\"type\":2}");
    put1s(h, "json_array", 1, "[{\"user_id\":\"u\"}]");
    put1s(h, "json_broken", 1, "{\"user_id\":\"u\",");
}

static void items(void) {
    const char *h = "decode_item";
    unsigned char buf[4096];
    float t4[4] = {0.1f, -0.2f, 0.3f, 0.4f}, v2[2] = {1, 2}, i3[3] = {5, 6, 7};
    Mmrec__V1__Item it = MMREC__V1__ITEM__INIT;
    it.item_id = "a"; it.created_ms = 1699999999000;
    it.text_emb = t4; it.n_text_emb = 4; it.video_emb = v2; it.n_video_emb = 2;
    Mmrec__V1__Item__AttrsEntry ae = MMREC__V1__ITEM__ATTRS_ENTRY__INIT;
    ae.key = "genre"; ae.value = "jazz";
    Mmrec__V1__Item__AttrsEntry *attrs[1] = {&ae};
    it.attrs = attrs; it.n_attrs = 1;
    put1(h, "pb_item_dims_ok", 2, buf, mmrec__v1__item__pack(&it, buf));
    it.image_emb = i3; it.n_image_emb = 3;
    put1(h, "pb_item_any_width", 0, buf, mmrec__v1__item__pack(&it, buf));
    put1(h, "pb_item_bad_width", 2, buf, mmrec__v1__item__pack(&it, buf));
    it.deleted = 1;
    put1(h, "pb_tombstone", 0, buf, mmrec__v1__item__pack(&it, buf));
    it.deleted = 0; it.created_ms = -5;
    put1(h, "pb_negative_created", 0, buf, mmrec__v1__item__pack(&it, buf));
    put1(h, "pb_truncated", 0, "\x12\x08\x00\x00", 4);
    put1(h, "empty", 1, "", 0);
    put1s(h, "json_item", 3, "{\"item_id\":\"a\",\"text_emb\":[0.1,\"0.2\",-3e-3,4],"
                             "\"video_emb\":[1,2],\"created_ms\":\"1699999999000\",\"deleted\":false}");
    put1s(h, "json_camel", 1, "{\"itemId\":\"b\",\"imageEmb\":[1,2,3],\"attrs\":{\"x\":\"y\"},"
                             "\"createdMs\":5,\"unknown\":[1]}");
    put1s(h, "json_inf", 1, "{\"item_id\":\"c\",\"text_emb\":[\"Infinity\",1]}");
    put1s(h, "json_big", 1, "{\"item_id\":\"c\",\"text_emb\":[1e39]}");
    put1s(h, "json_tombstone", 1, "{\"item_id\":\"d\",\"deleted\":true,\"text_emb\":[\"NaN\"]}");
    put1s(h, "json_bad_elem", 1, "{\"item_id\":\"e\",\"text_emb\":[true]}");
    put1s(h, "json_null", 1, "{\"item_id\":\"f\",\"text_emb\":null,\"created_ms\":null}");
}

/* A delta over the tiny tower with one weight changed, made in a scratch folder next to
 * its base (FUZZ_BASE_NAME, as the harness writes it), then copied into the corpus. */
static void tower_delta(const char *h) {
    char dir[] = "/tmp/mmrec-seeds.XXXXXX", base[64], delta[64];
    mmr_tower_t *t = NULL, *c = NULL;
    mmr_err_t err = {0};
    if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
    snprintf(base, sizeof base, "%s/" FUZZ_BASE_NAME, dir);
    snprintf(delta, sizeof delta, "%s/delta", dir);
    uint64_t dirty[4] = {0};
    if (fuzz_tiny_tower(&t, &err) != MMR_OK || mmr_tower_save(t, base, &err) != MMR_OK ||
        mmr_tower_clone(t, &c, &err) != MMR_OK || mmr_tower_delta_words(t) > 4) {
        fprintf(stderr, "make_seeds: delta: %s\n", err.msg);
        exit(1);
    }
    mmr_tower_params(c)[1] += 1.0f;
    mmr_tower_params_changed(c);
    if (mmr_tower_delta_mark(t, c, dirty) != 1 || mmr_tower_save_delta(c, delta, base, dirty, &err) != MMR_OK) {
        fprintf(stderr, "make_seeds: delta: %s\n", err.msg);
        exit(1);
    }
    FILE *f = fopen(delta, "rb");
    unsigned char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    put(h, "tiny_delta", buf, n);
    remove(delta), remove(base), remove(dir);
    mmr_tower_free(t), mmr_tower_free(c);
}

static void tower(void) {
    const char *h = "tower_load";
    mmr_tower_t *t = NULL;
    mmr_err_t err = {0};
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, h);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) { perror(path); exit(1); }
    snprintf(path, sizeof path, "%s/%s/tiny_model", root, h);
    if (fuzz_tiny_tower(&t, &err) != MMR_OK || mmr_tower_save(t, path, &err) != MMR_OK) {
        fprintf(stderr, "make_seeds: tiny model: %s\n", err.msg);
        exit(1);
    }
    mmr_tower_free(t);
    /* invalid ones: the tiny model's header only, and a wrong magic */
    FILE *f = fopen(path, "rb");
    unsigned char hdr[64];
    size_t n = f ? fread(hdr, 1, sizeof hdr, f) : 0;
    if (f) fclose(f);
    put(h, "header_only", hdr, n);
    put(h, "bad_magic", "MMRTOWR9\x01\x00\x00\x00", 12);
    put(h, "empty", "", 0);
    tower_delta(h);
}

static void config(void) {
    const char *h = "config";
    put1s(h, "file_basic", 0, "# mmrecd\nlog.level = debug\nstore.path = /tmp/x\n"
                              "grpc.threads = 4\nkafka.socket.timeout.ms = 100\n"
                              "rocksdb.max_open_files=64\n\n");
    put1s(h, "file_bad_line", 0, "log.level debug\n");
    put1s(h, "file_unknown_key", 0, "no.such.key = 1\n");
    put1s(h, "file_range", 0, "grpc.threads = -1\nstore.sync = maybe\ningest.batch_max = 99999999999999999999\n");
    put1s(h, "file_no_newline", 0, "  item.dim_text =  384  ");
    put1(h, "set_threads", 1, "grpc.threads\0" "8", 14);
    put1(h, "set_kafka", 1, "kafka.acks\0" "all", 14);
    put1(h, "set_bool", 1, "ingest.enabled\0" "false", 20);
    put1s(h, "set_no_value", 1, "log.level");
}

static void rank(void) {
    const char *h = "rank";
    unsigned char buf[4096];
    char *cands[8] = {"a", "b", "c", "d", "e", "a", "x", ""};
    Mmrec__V1__RankRequest q = MMREC__V1__RANK_REQUEST__INIT;
    q.user_id = "alice"; q.candidates = cands; q.n_candidates = 7; q.request_id = "req-1";
    put(h, "alice_7", buf, mmrec__v1__rank_request__pack(&q, buf));
    q.exclude_seen = 1; q.top_k = 1; q.explain = 1; q.experiment = "arm-b"; q.model_version = 3;
    put(h, "alice_exclude_top1", buf, mmrec__v1__rank_request__pack(&q, buf));
    q.user_id = "nobody"; q.exclude_seen = 0; q.top_k = 0; q.request_id = "";
    put(h, "cold_start", buf, mmrec__v1__rank_request__pack(&q, buf));
    q.n_candidates = 8;
    put(h, "empty_candidate", buf, mmrec__v1__rank_request__pack(&q, buf));
    q.n_candidates = 0; q.retrieve_k = 10;
    put(h, "retrieve_k", buf, mmrec__v1__rank_request__pack(&q, buf));
    q.n_candidates = 2;
    put(h, "both_sources", buf, mmrec__v1__rank_request__pack(&q, buf));
    q.user_id = ""; q.retrieve_k = 0;
    put(h, "missing_user", buf, mmrec__v1__rank_request__pack(&q, buf));
    put(h, "undecodable", "\xff\xff\xff", 3);
    put(h, "empty", "", 0);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]); return 2; }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST) { perror(root); return 1; }
    events();
    items();
    tower();
    config();
    rank();
    return 0;
}
