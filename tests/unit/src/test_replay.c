/* test_replay.c — `mmrec replay` (mmr_replay.h) on a small `mmrec gen` dataset:
 * leave-one-out with ablations reports the oracle, two runs give the same report.json
 * (minus "timing"), a prequential run has its windows, and a bad events file fails with the
 * reader's message. Model quality is test_replay_quality. argv[1] = the mmrec binary. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mmr_replay.h"

static char dir[] = "/tmp/test_replay-XXXXXX";

static json_t *load_report(const char *sub) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s/report.json", dir, sub);
    json_t *r = json_load_file(path, 0, NULL);
    CHECK_MSG(r != NULL, "%s unreadable", path);
    json_object_del(r, "timing");
    return r;
}

static mmr_replay_conf_t conf_for(char *events, char *items, char *oracle) {
    mmr_replay_conf_t c = mmr_replay_conf_default();
    snprintf(events, 256, "%s/data/events.tsv", dir);
    snprintf(items, 256, "%s/data/items.jsonl", dir);
    snprintf(oracle, 256, "%s/data/oracle.json", dir);
    c.events_path = events;
    c.items_path = items;
    c.oracle_path = oracle;
    c.tmp_dir = dir;
    c.threads = 2;
    c.seed = 7;
    return c;
}

static void run_to(const mmr_replay_conf_t *c, const char *sub, mmr_replay_report_t *rep) {
    mmr_err_t err = {0};
    char out[256];
    snprintf(out, sizeof out, "%s/%s", dir, sub);
    CHECK_MSG(mmr_replay_run(c, rep, &err) == MMR_OK, "replay: %s", err.msg);
    CHECK_MSG(mmr_replay_write(c, rep, out, NULL, &err) == MMR_OK, "write: %s", err.msg);
}

int main(int argc, char **argv) {
    CHECK_MSG(argc > 1, "usage: test_replay PATH/TO/mmrec");
    CHECK(mkdtemp(dir) != NULL);
    char cmd[1024], events[256], items[256], oracle[256];
    snprintf(cmd, sizeof cmd, "%s gen --out %s/data --users 150 --items 150 --events 12000 --dims 8,8,8 --seed 3 >/dev/null",
             argv[1], dir);
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);

    /* leave-one-out, all variants, twice: same report */
    mmr_replay_conf_t c = conf_for(events, items, oracle);
    mmr_replay_report_t rep;
    run_to(&c, "a", &rep);
    CHECK(rep.n_models == 6 && !strcmp(rep.model[0].name, "fused") && !strcmp(rep.model[1].name, "popularity"));
    CHECK(rep.test_users > 50 && rep.train_events + rep.valid_events + rep.test_events == rep.events);
    CHECK(rep.model[0].res.users == rep.test_users && rep.model[0].examples > 0);
    CHECK(rep.oracle_json != NULL);
    mmr_replay_report_clear(&rep);
    c.threads = 1; /* the thread count must not change the report */
    run_to(&c, "b", &rep);
    mmr_replay_report_clear(&rep);
    json_t *a = load_report("a"), *b = load_report("b");
    CHECK_MSG(json_equal(a, b), "two runs gave different report.json");
    json_t *orc = json_object_get(json_object_get(json_object_get(a, "oracle"), "oracle"), "recall");
    CHECK_MSG(json_is_number(json_object_get(orc, "10")), "report.json lacks the oracle's Recall@10");
    CHECK(json_is_number(json_object_get(json_object_get(json_object_get(json_object_get(a, "models"), "no_video"), "recall"), "10")));
    json_decref(a);
    json_decref(b);

    /* prequential smoke run */
    c = conf_for(events, items, oracle);
    c.protocol = MMR_REPLAY_PREQUENTIAL;
    c.windows = 4;
    c.ablations = 0;
    run_to(&c, "p", &rep);
    CHECK(rep.n_windows == 4 && rep.n_models == 3);
    CHECK(rep.model[0].res.users > 0 && rep.model[0].res.gauc_users > 0);
    CHECK(rep.window[3 * 3].users > 0);
    mmr_replay_report_clear(&rep);
    json_t *p = load_report("p");
    CHECK(json_array_size(json_object_get(p, "windows")) == 4);
    json_decref(p);

    /* a bad events file: over the bad-line fraction → the reader's clear message */
    snprintf(events, sizeof events, "%s/bad.tsv", dir);
    FILE *f = fopen(events, "w");
    CHECK(f != NULL);
    for (int i = 0; i < 2000; i++) fprintf(f, i % 10 ? "%d\tu%d\ti%d\tCLICK\n" : "garbage line %d\n", 1000 + i, i % 7, i % 13);
    fclose(f);
    c = conf_for(events, items, oracle);
    snprintf(events, sizeof events, "%s/bad.tsv", dir);
    mmr_err_t err = {0};
    CHECK(mmr_replay_run(&c, &rep, &err) == MMR_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "bad.tsv") != NULL, "message should name the file: %s", err.msg);
    printf("bad file: %s\n", err.msg);
    mmr_replay_report_clear(&rep);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    printf("ok test_replay\n");
    return 0;
}
