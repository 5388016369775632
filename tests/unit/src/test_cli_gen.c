/* test_cli_gen.c — `mmrec gen` (path of the mmrec binary in argv[1]): the same seed gives
 * byte-identical files, another seed different ones; the output reads back through the
 * replay readers with no bad line; meta.json and oracle.json hold what docs/REPLAY.md says;
 * --topic-factors and --exposure-zipf reach the data, and bad values are refused. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "mmr_crc32c.h"
#include "replay_io.h"

static const char *const files[] = {"items.jsonl", "events.tsv", "meta.json", "oracle.json"};
#define NFILES 4

static char root[] = "/tmp/mmrec-gen-XXXXXX";

/* Exit status of `mmrec gen` into root/sub; topics is "--topics N" or "--topic-factors ...". */
static int gen_with(const char *mmrec, const char *sub, int seed, const char *topics) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s gen --out %s/%s --users 150 --items 80 %s --events 8000 "
                              "--dims 8,6,4 --seed %d >/dev/null 2>&1", mmrec, root, sub, topics, seed);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void gen(const char *mmrec, const char *sub, int seed) {
    CHECK_MSG(gen_with(mmrec, sub, seed, "--topics 5") == 0, "gen %s", sub);
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

/* Factored topics: 3·2·2 = 12 of them, uniform exposure (so exposure alone ranks nothing
 * above the target); what the options say is in meta.json; one seed gives the same bytes;
 * the limits on factor values hold; bad values exit 2. */
static void check_options(const char *mmrec) {
    CHECK(gen_with(mmrec, "f", 11, "--topic-factors 3,2,2 --exposure-zipf 0") == 0);
    char path[512];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/f/meta.json", root);
    json_t *meta = json_load_file(path, 0, &jerr);
    CHECK_MSG(meta, "%s: %s", path, jerr.text);
    json_t *f = json_object_get(meta, "topic_factors");
    CHECK(json_integer_value(json_object_get(meta, "topics")) == 12 && json_array_size(f) == 3 &&
          json_integer_value(json_array_get(f, 0)) == 3 && json_integer_value(json_array_get(f, 2)) == 2);
    CHECK(json_real_value(json_object_get(meta, "exposure_zipf")) == 0.0);
    json_decref(meta);
    snprintf(path, sizeof path, "%s/f/oracle.json", root);
    json_t *oracle = json_load_file(path, 0, &jerr);
    CHECK_MSG(oracle, "%s: %s", path, jerr.text);
    json_t *exposure = json_object_get(json_object_get(oracle, "exposure_only"), "recall");
    CHECK(json_real_value(json_object_get(exposure, "50")) == 0.0); /* all tie, pessimistically */
    json_decref(oracle);
    snprintf(path, sizeof path, "%s/f/items.jsonl", root);
    FILE *fi = fopen(path, "r");
    CHECK(fi);
    char line[8192];
    int max_topic = -1;
    while (fgets(line, sizeof line, fi)) {
        int t = atoi(strstr(line, "\"topic\":") + 8);
        if (t > max_topic) max_topic = t;
    }
    fclose(fi);
    CHECK_MSG(max_topic > 6 && max_topic < 12, "topic %d", max_topic);
    /* a factor has at most 1 + its modality's latent coordinates values: 9 text, 5 image and
     * video; a factor with one value is allowed */
    CHECK(gen_with(mmrec, "fmax", 11, "--topic-factors 9,5,5") == 0);
    CHECK(gen_with(mmrec, "fone", 11, "--topic-factors 3,1,1") == 0);
    static const char *const bad[] = {"--topic-factors 3,3",    "--topic-factors 0,3,3",
                                      "--topic-factors 10,1,1", "--topic-factors 1,6,1",
                                      "--topic-factors 1,1,6",  "--topic-factors 1,1,1",
                                      "--topic-factors 3,3,3 --topics 10",
                                      "--exposure-zipf -1",     "--exposure-zipf x",
                                      "--exposure-zipf 1e9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(gen_with(mmrec, "bad", 11, bad[i]) == 2, "%s accepted", bad[i]);
    CHECK(gen_with(mmrec, "f2", 11, "--topic-factors 3,2,2 --exposure-zipf 0") == 0); /* same seed, same bytes */
    for (int i = 0; i < NFILES; i++)
        CHECK_MSG(file_crc("f", files[i]) == file_crc("f2", files[i]), "factored %s differs for one seed", files[i]);
    printf("ok --topic-factors 3,2,2: 12 topics in meta.json and items, same bytes for one seed; 9,5,5 and "
           "3,1,1 accepted; --exposure-zipf 0: exposure ranks nothing; %zu bad values exit 2\n",
           sizeof bad / sizeof bad[0]);
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
    check_options(argv[1]);

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
