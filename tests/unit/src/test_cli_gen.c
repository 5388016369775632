/* test_cli_gen.c — `mmrec gen` (path of the mmrec binary in argv[1]): the same seed gives
 * byte-identical files, another seed different ones; the output reads back through the
 * replay readers with no bad line; meta.json and oracle.json hold what docs/REPLAY.md says. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mmr_crc32c.h"
#include "replay_io.h"

static const char *const files[] = {"items.jsonl", "events.tsv", "meta.json", "oracle.json"};
#define NFILES 4

static char root[] = "/tmp/mmrec-gen-XXXXXX";

static void gen(const char *mmrec, const char *sub, int seed) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s gen --out %s/%s --users 150 --items 80 --topics 5 --events 8000 "
                              "--dims 8,6,4 --seed %d >/dev/null", mmrec, root, sub, seed);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
}

static uint32_t file_crc(const char *sub, const char *name) {
    char path[512], buf[65536];
    snprintf(path, sizeof path, "%s/%s/%s", root, sub, name);
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f, "%s", path);
    uint32_t crc = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) crc = mmr_crc32c(crc, buf, n);
    fclose(f);
    return crc;
}

static json_t *load_json(const char *name) {
    char path[512];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/a/%s", root, name);
    json_t *j = json_load_file(path, 0, &jerr);
    CHECK_MSG(j, "%s: %s", path, jerr.text);
    return j;
}

static void check_readable(void) {
    char path[512];
    mmr_replay_io_opts_t o = mmr_replay_io_opts_default();
    o.max_bad_fraction = 0;
    o.dims[0] = 8, o.dims[1] = 6, o.dims[2] = 4;
    mmr_err_t err = {0};
    snprintf(path, sizeof path, "%s/a/items.jsonl", root);
    mmr_replay_io_items_t *ri = NULL;
    CHECK(mmr_replay_io_items_new(path, &o, &ri, &err) == MMR_OK);
    mmr_replay_item_t it;
    long with[MMR_MODALITY_COUNT] = {0}, n_items = 0;
    while (mmr_replay_io_items_next(ri, &it, &err) == 1) {
        n_items++;
        for (int m = 0; m < MMR_MODALITY_COUNT; m++) with[m] += it.item.emb[m] != NULL;
    }
    mmr_replay_io_stats_t st;
    mmr_replay_io_items_stats(ri, &st);
    mmr_replay_io_items_free(ri);
    CHECK_MSG(n_items == 80 && st.bad == 0, "%ld items, %ld bad: %s", n_items, st.bad, err.msg);
    CHECK(with[0] > with[2] && with[2] > 0 && with[1] < 80); /* modalities go missing per item */

    snprintf(path, sizeof path, "%s/a/events.tsv", root);
    mmr_replay_io_events_t *re = NULL;
    CHECK(mmr_replay_io_events_new(path, &o, &re, &err) == MMR_OK);
    mmr_replay_event_t ev;
    long by_type[MMR_EV_TYPE_COUNT] = {0};
    int rc;
    while ((rc = mmr_replay_io_events_next(re, &ev, &err)) == 1) {
        by_type[ev.ev.type]++;
        CHECK(ev.request_id[0] == 's');
    }
    mmr_replay_io_events_stats(re, &st);
    mmr_replay_io_events_free(re);
    CHECK_MSG(rc == 0 && st.good == 8000 && st.bad == 0 && st.sorted, "%s", err.msg);
    CHECK(by_type[MMR_EV_IMPRESSION] > 0 && by_type[MMR_EV_CLICK] > 0 && by_type[MMR_EV_WATCH] > 0 && by_type[MMR_EV_LIKE] > 0);
    printf("ok output reads back: 80 items, 8000 events (%ld impressions, %ld clicks), sorted, no bad line\n",
           by_type[MMR_EV_IMPRESSION], by_type[MMR_EV_CLICK]);
}

int main(int argc, char **argv) {
    CHECK_MSG(argc == 2, "usage: test_cli_gen PATH_TO_MMREC");
    CHECK(mkdtemp(root));
    gen(argv[1], "a", 11);
    gen(argv[1], "b", 11);
    gen(argv[1], "c", 12);
    for (int i = 0; i < NFILES; i++) {
        CHECK_MSG(file_crc("a", files[i]) == file_crc("b", files[i]), "%s differs for one seed", files[i]);
        if (i < 2) CHECK_MSG(file_crc("a", files[i]) != file_crc("c", files[i]), "%s same for two seeds", files[i]);
    }
    printf("ok deterministic: same seed, same 4 files; another seed, other data\n");
    check_readable();

    json_t *meta = load_json("meta.json"), *oracle = load_json("oracle.json");
    CHECK(json_integer_value(json_object_get(meta, "seed")) == 11 && json_integer_value(json_object_get(meta, "events_written")) == 8000);
    CHECK(json_integer_value(json_object_get(json_object_get(json_object_get(meta, "modalities"), "image"), "dim")) == 6);
    long users = (long)json_integer_value(json_object_get(oracle, "users"));
    double r10 = json_real_value(json_object_get(json_object_get(json_object_get(oracle, "oracle"), "recall"), "10"));
    double p10 = json_real_value(json_object_get(json_object_get(json_object_get(oracle, "exposure_only"), "recall"), "10"));
    double n10 = json_real_value(json_object_get(json_object_get(json_object_get(oracle, "oracle"), "ndcg"), "10"));
    CHECK(users > 0 && users + json_integer_value(json_object_get(oracle, "users_skipped")) == 150);
    CHECK_MSG(r10 > 0 && r10 <= 1 && n10 > 0 && n10 <= r10 && r10 > p10, "oracle %.3f exposure %.3f", r10, p10);
    printf("ok meta.json, oracle.json: %ld users, oracle Recall@10 %.3f > exposure only %.3f\n", users, r10, p10);
    json_decref(meta);
    json_decref(oracle);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK(system(cmd) == 0);
    return 0;
}
