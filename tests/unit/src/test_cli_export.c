/* test_cli_export.c — `mmrec export` (path of the mmrec binary in argv[1]): a store with
 * known items, users and offsets exports to exactly the expected items.jsonl, users.jsonl
 * and manifest.json, and items.jsonl loads through the replay items reader; --what; bad
 * arguments exit 2, a missing store and an id that is not UTF-8 exit 1; exports run while
 * a writer thread keeps committing to the same store are each consistent with the offsets
 * in their manifest (tests/unit/features/fstore_writer.h). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "replay_io.h"
#include "unit/features/fstore_writer.h"

static const char *mmrec;

/* Runs `mmrec export ARGS` quietly; returns its exit code. */
static int run_export(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s export %s >/dev/null 2>&1", mmrec, args);
    int rc = system(cmd);
    CHECK_MSG(rc != -1 && WIFEXITED(rc), "%s", cmd);
    return WEXITSTATUS(rc);
}

static char *slurp(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f, "%s", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = strdup(buf);
    CHECK(s);
    return s;
}

static json_t *load(const char *dir, const char *name) {
    char path[512];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_t *j = json_load_file(path, 0, &jerr);
    CHECK_MSG(j, "%s: %s", path, jerr.text);
    return j;
}

static void check_file(const char *dir, const char *name, const char *want) {
    char *got = slurp(dir, name);
    CHECK_MSG(!strcmp(got, want), "%s:\n--- got\n%s--- want\n%s", name, got, want);
    free(got);
}

static void put(mmr_fstore_batch_t *b, const char *id, int64_t created, int deleted, const float *t,
                uint32_t dt, const float *im, uint32_t di, const float *v, uint32_t dv) {
    mmr_err_t err;
    mmr_item_t it = {.item_id = id, .created_ms = created, .deleted = deleted,
                     .emb_dim = {dt, di, dv}, .emb = {t, im, v}};
    CHECK_OK(mmr_fstore_batch_put_item(b, &it, &err), &err);
}

static void build_known(const char *db) {
    mmr_err_t err;
    mmr_fstore_t *fs;
    mmr_fstore_opts_t o = {.path = db};
    CHECK_OK(mmr_fstore_open(&o, &fs, &err), &err);
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    static const float t1[] = {0.5f, -1.25f, 2}, im1[] = {0.25f, 4}, v2[] = {-0.5f}, t4[] = {1};
    put(b, "i1", 100, 0, t1, 3, im1, 2, NULL, 0);
    put(b, "i2", 200, 0, NULL, 0, NULL, 0, v2, 1);
    put(b, "i3", 300, 1, t4, 1, NULL, 0, NULL, 0); /* deleted: not exported */
    put(b, "i4", 400, 0, t4, 1, NULL, 0, NULL, 0); /* no events: "stats":null */
    const mmr_event_t evs[] = {
        {"e1", "u1", "i1", MMR_EV_CLICK, 1, 1500},   {"e2", "u1", "i2", MMR_EV_WATCH, 12.5f, 2000},
        {"e3", "u2", "i1", MMR_EV_IMPRESSION, 1, 1000}, {"e4", "u2", "i9", MMR_EV_LIKE, 1, 3000},
    };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        CHECK_MSG(mmr_fstore_batch_add_event(b, &evs[i], &err) == 1, "%s", err.msg);
    mmr_fstore_batch_set_offset(b, "events", 0, 4);
    mmr_fstore_batch_set_offset(b, "events", 1, 7);
    mmr_fstore_batch_set_offset(b, "items", 0, 3);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
    mmr_fstore_close(fs);
}

static void test_known(const char *root) {
    char db[512], out[512], args[1200];
    snprintf(db, sizeof db, "%s/known", root);
    snprintf(out, sizeof out, "%s/out", root);
    build_known(db);
    snprintf(args, sizeof args, "--db %s --out %s", db, out);
    CHECK(run_export(args) == 0);
    check_file(out, "items.jsonl",
               "{\"item_id\":\"i1\",\"created_ms\":100,\"text_emb\":[0.5,-1.25,2.0],\"image_emb\":[0.25,4.0],"
               "\"stats\":{\"impressions\":1,\"clicks\":1,\"positives\":1,\"popularity\":1.0,\"last_ts_ms\":1500}}\n"
               "{\"item_id\":\"i2\",\"created_ms\":200,\"video_emb\":[-0.5],"
               "\"stats\":{\"impressions\":0,\"clicks\":0,\"positives\":1,\"popularity\":1.0,\"last_ts_ms\":2000}}\n"
               "{\"item_id\":\"i4\",\"created_ms\":400,\"text_emb\":[1.0],\"stats\":null}\n");
    check_file(out, "users.jsonl",
               "{\"user_id\":\"u1\",\"events_total\":2,\"recent\":["
               "{\"item_id\":\"i1\",\"type\":\"CLICK\",\"value\":1.0,\"ts_ms\":1500},"
               "{\"item_id\":\"i2\",\"type\":\"WATCH\",\"value\":12.5,\"ts_ms\":2000}]}\n"
               "{\"user_id\":\"u2\",\"events_total\":2,\"recent\":["
               "{\"item_id\":\"i1\",\"type\":\"IMPRESSION\",\"value\":1.0,\"ts_ms\":1000},"
               "{\"item_id\":\"i9\",\"type\":\"LIKE\",\"value\":1.0,\"ts_ms\":3000}]}\n");
    json_t *m = load(out, "manifest.json");
    json_t *want = json_pack("{s:i, s:i}", "items", 3, "users", 2);
    CHECK(json_equal(json_object_get(m, "counts"), want));
    json_decref(want);
    want = json_pack("[{s:s, s:i, s:i}, {s:s, s:i, s:i}, {s:s, s:i, s:i}]",
                     "topic", "events", "partition", 0, "next_offset", 4,
                     "topic", "events", "partition", 1, "next_offset", 7,
                     "topic", "items", "partition", 0, "next_offset", 3);
    CHECK(json_equal(json_object_get(m, "offsets"), want));
    json_decref(want);
    CHECK(!strcmp(json_string_value(json_object_get(m, "db")), db));
    CHECK(json_string_length(json_object_get(m, "mmrec_version")) > 0);
    CHECK(json_integer_value(json_object_get(m, "snapshot_ms")) > 1700000000000);
    json_decref(m);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/items.jsonl.tmp", out);
    CHECK(access(tmp, F_OK) != 0);
    printf("ok  items.jsonl, users.jsonl, manifest.json exactly as expected (deleted item left out)\n");

    /* The replay items reader takes the file as is, every line good. */
    char path[600];
    snprintf(path, sizeof path, "%s/items.jsonl", out);
    mmr_replay_io_opts_t ro = mmr_replay_io_opts_default();
    ro.max_bad_fraction = 0;
    mmr_replay_io_items_t *r = NULL;
    mmr_err_t err;
    CHECK_OK(mmr_replay_io_items_new(path, &ro, &r, &err), &err);
    mmr_replay_item_t it;
    int n = 0;
    while (mmr_replay_io_items_next(r, &it, &err) == 1) {
        n++;
        if (!strcmp(it.item.item_id, "i1"))
            CHECK(it.item.created_ms == 100 && it.item.emb_dim[0] == 3 && it.item.emb[0][1] == -1.25f &&
                  it.item.emb_dim[1] == 2 && it.item.emb_dim[2] == 0);
    }
    mmr_replay_io_stats_t st;
    mmr_replay_io_items_stats(r, &st);
    mmr_replay_io_items_free(r);
    CHECK_MSG(n == 3 && st.bad == 0, "%d items, %ld bad: %s", n, st.bad, err.msg);
    printf("ok  items.jsonl loads through the replay items reader: 3 items, no bad line\n");

    /* --what users: only users.jsonl is written and counted. */
    snprintf(out, sizeof out, "%s/users-only", root);
    snprintf(args, sizeof args, "--db %s --out %s --what users", db, out);
    CHECK(run_export(args) == 0);
    m = load(out, "manifest.json");
    want = json_pack("{s:i}", "users", 2);
    CHECK(json_equal(json_object_get(m, "counts"), want));
    json_decref(want);
    json_decref(m);
    snprintf(path, sizeof path, "%s/items.jsonl", out);
    CHECK(access(path, F_OK) != 0);
    printf("ok  --what users writes users.jsonl and the manifest only\n");

    snprintf(args, sizeof args, "--db %s --out %s --what items,bogus", db, out);
    CHECK(run_export(args) == 2);
    snprintf(args, sizeof args, "--db %s", db);
    CHECK(run_export(args) == 2);
    snprintf(args, sizeof args, "--db %s --out %s --frobnicate", db, out);
    CHECK(run_export(args) == 2);
    snprintf(args, sizeof args, "--db %s/nope --out %s", root, out);
    CHECK(run_export(args) == 1);
    printf("ok  bad --what, missing --out, unknown option exit 2; a missing store exits 1\n");

    /* An id JSON cannot hold fails the export; no partial file is left. */
    mmr_fstore_t *fs;
    mmr_fstore_opts_t o = {.path = db};
    CHECK_OK(mmr_fstore_open(&o, &fs, &err), &err);
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    mmr_event_t ev = {"e5", "u\xff", "i1", MMR_EV_CLICK, 1, 4000};
    CHECK(mmr_fstore_batch_add_event(b, &ev, &err) == 1);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
    mmr_fstore_close(fs);
    snprintf(out, sizeof out, "%s/bad-id", root);
    snprintf(args, sizeof args, "--db %s --out %s --what users", db, out);
    CHECK(run_export(args) == 1);
    snprintf(path, sizeof path, "%s/users.jsonl.tmp", out);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof path, "%s/manifest.json", out);
    CHECK(access(path, F_OK) != 0);
    printf("ok  a user id that is not UTF-8 fails the export (exit 1), leaving no file\n");
}

/* Checks one export made beside the writer; returns the K its manifest says it holds. */
static int64_t check_export(const char *out) {
    json_t *m = load(out, "manifest.json");
    json_t *offs = json_object_get(m, "offsets");
    CHECK(json_array_size(offs) == 2);
    int64_t K = json_integer_value(json_object_get(json_array_get(offs, 0), "next_offset"));
    CHECK(K >= 1 && json_integer_value(json_object_get(json_array_get(offs, 1), "next_offset")) == 2 * K);
    CHECK(json_integer_value(json_object_get(json_object_get(m, "counts"), "items")) == FSW_ITEMS + K);
    CHECK(json_integer_value(json_object_get(json_object_get(m, "counts"), "users")) == FSW_USERS);
    json_decref(m);

    char path[600], line[1 << 16];
    snprintf(path, sizeof path, "%s/users.jsonl", out);
    FILE *f = fopen(path, "r");
    CHECK(f);
    while (fgets(line, sizeof line, f)) {
        json_error_t jerr;
        json_t *u = json_loads(line, 0, &jerr);
        CHECK_MSG(u, "%s", jerr.text);
        json_t *recent = json_object_get(u, "recent");
        json_t *newest = json_array_get(recent, json_array_size(recent) - 1);
        CHECK_MSG(json_integer_value(json_object_get(u, "events_total")) == K &&
                  json_integer_value(json_object_get(newest, "ts_ms")) == 10 * K,
                  "K %lld: %s", (long long)K, line);
        json_decref(u);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/items.jsonl", out);
    CHECK(f = fopen(path, "r"));
    while (fgets(line, sizeof line, f)) {
        json_error_t jerr;
        json_t *it = json_loads(line, 0, &jerr);
        CHECK_MSG(it, "%s", jerr.text);
        const char *id = json_string_value(json_object_get(it, "item_id"));
        if (id[0] == 'i') {
            int64_t clicks, last;
            fsw_expect_item(K, atoi(id + 1), &clicks, &last);
            json_t *st = json_object_get(it, "stats");
            CHECK_MSG(json_integer_value(json_object_get(st, "clicks")) == clicks &&
                      json_integer_value(json_object_get(st, "last_ts_ms")) == last,
                      "K %lld: %s", (long long)K, line);
        } else {
            CHECK(id[0] == 'n' && atoll(id + 1) <= K);
        }
        json_decref(it);
    }
    fclose(f);
    return K;
}

static void test_beside_writer(const char *root) {
    enum { EXPORTS = 4 };
    char db[512], out[512], args[1200];
    snprintf(db, sizeof db, "%s/live", root);
    mmr_err_t err;
    mmr_fstore_t *fs;
    mmr_fstore_opts_t o = {.path = db, .rocksdb_options = "write_buffer_size=1048576"};
    CHECK_OK(mmr_fstore_open(&o, &fs, &err), &err);
    fsw_t w;
    fsw_start(&w, fs);
    int64_t prev = 0;
    for (int r = 0; r < EXPORTS; r++) {
        fsw_wait(&w, prev + 20);
        snprintf(out, sizeof out, "%s/live-%d", root, r);
        snprintf(args, sizeof args, "--db %s --out %s", db, out);
        CHECK(run_export(args) == 0);
        int64_t K = check_export(out);
        CHECK(K >= prev + 20); /* it sees every batch committed before it started */
        prev = K;
    }
    int64_t done = fsw_stop(&w);
    mmr_fstore_close(fs);
    printf("ok  %d exports beside a writer (%lld commits), each consistent with its offsets "
           "(last K %lld)\n", EXPORTS, (long long)done, (long long)prev);
}

int main(int argc, char **argv) {
    CHECK_MSG(argc == 2, "usage: test_cli_export PATH_TO_MMREC");
    mmrec = argv[1];
    char root[256];
    fst_tmpdir(root);
    test_known(root);
    test_beside_writer(root);
    fst_rmdir(root);
    return 0;
}
