/* test_replay_kafka.c — `mmrec replay --kafka` against a real broker (with_kafka.sh):
 *   1. a generated dataset is produced (`mmrec produce`) to mmrec.events (4 partitions) in
 *      two halves, a known instant `cut` apart; replayed from the file and from the topic
 *      with the same options, input, split and metrics are identical;
 *   2. --to-ms cut gives exactly the first half, --from-ms cut exactly the second;
 *   3. a garbage message on the topic is a bad message (reported topic/partition@offset,
 *      counted, not fatal under --max-bad; fatal with --max-bad 0); --format json reads
 *      JSON events from another topic, an invalid one (unknown type) counted bad;
 *   4. an unreachable broker and a missing topic fail fast with a clear message, exit 1;
 *      a wrong choice of sources is a usage error, exit 2.
 * Usage: test_replay_kafka PATH/TO/mmrec (MMREC_KAFKA_BOOTSTRAP set by with_kafka.sh). */
#include <jansson.h>

#include "daemon.h"

#define HALF 2000 /* events per half; the dataset has 2 * HALF */

static const char *mmrec, *brokers;
static char work[] = "/tmp/test_replay_kafka.XXXXXX";
static char err_text[1 << 16]; /* stderr of the last run */

/* Runs `mmrec ARGS` with stdout and stderr in work/NAME.{out,err}; returns the exit code
 * and keeps stderr in err_text. */
static int run(const char *name, const char *args) {
    char cmd[4096], path[512];
    snprintf(cmd, sizeof cmd, "%s %s >%s/%s.out 2>%s/%s.err", mmrec, args, work, name, work, name);
    int st = system(cmd);
    CHECK_MSG(st != -1 && WIFEXITED(st), "%s did not run", cmd);
    snprintf(path, sizeof path, "%s/%s.err", work, name);
    FILE *f = fopen(path, "r");
    CHECK(f);
    size_t n = fread(err_text, 1, sizeof err_text - 1, f);
    err_text[n] = '\0';
    fclose(f);
    return WEXITSTATUS(st);
}

/* `mmrec replay SOURCE` with the common options into work/NAME; returns its report.json. */
static json_t *replay(const char *name, const char *source) {
    char args[2048], path[512];
    snprintf(args, sizeof args, "replay %s --items %s/ds/items.jsonl --out %s/%s --no-ablations --threads 1 --seed 5",
             source, work, work, name);
    int rc = run(name, args);
    CHECK_MSG(rc == 0, "replay %s exited %d:\n%s", name, rc, err_text);
    snprintf(path, sizeof path, "%s/%s/report.json", work, name);
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    CHECK_MSG(j, "%s: %s", path, jerr.text);
    return j;
}

static long long input_of(const json_t *report, const char *key) {
    json_t *v = json_object_get(json_object_get(report, "input"), key);
    CHECK_MSG(json_is_integer(v), "report has no input.%s", key);
    return json_integer_value(v);
}

/* Splits work/ds/events.tsv into work/a.tsv (the first HALF lines) and work/b.tsv. */
static void split_events(void) {
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/ds/events.tsv", work);
    FILE *in = fopen(path, "r"), *out[2];
    CHECK(in);
    for (int h = 0; h < 2; h++) {
        snprintf(path, sizeof path, "%s/%c.tsv", work, 'a' + h);
        CHECK((out[h] = fopen(path, "w")));
    }
    long n = 0;
    while (fgets(line, sizeof line, in)) fputs(line, out[n++ < HALF ? 0 : 1]);
    CHECK_MSG(n == 2 * HALF, "events.tsv has %ld lines, want %d", n, 2 * HALF);
    fclose(in);
    fclose(out[0]);
    fclose(out[1]);
}

static void produce_half(char h) {
    char args[1024];
    snprintf(args, sizeof args, "produce --brokers %s --events %s/%c.tsv", brokers, work, h);
    CHECK_MSG(run("produce", args) == 0, "produce %c.tsv:\n%s", h, err_text);
}

int main(int argc, char **argv) {
    CHECK_MSG(argc == 2, "usage: test_replay_kafka MMREC");
    mmrec = argv[1];
    if (!(brokers = getenv("MMREC_KAFKA_BOOTSTRAP"))) {
        fprintf(stderr, "skip: MMREC_KAFKA_BOOTSTRAP not set (run under with_kafka.sh)\n");
        return MMR_TEST_SKIP;
    }
    CHECK(mkdtemp(work));
    char args[2048], source[1024];

    /* 1. the whole topic vs the file */
    snprintf(args, sizeof args, "gen --out %s/ds --users 80 --items 60 --events %d --dims 8,8,8 --seed 3", work, 2 * HALF);
    CHECK_MSG(run("gen", args) == 0, "gen:\n%s", err_text);
    split_events();
    produce_half('a');
    sleep_ms(200);
    int64_t cut = mmr_now_ms(); /* every message of a.tsv is stamped before, every one of b.tsv after */
    sleep_ms(200);
    produce_half('b');
    snprintf(source, sizeof source, "--events %s/ds/events.tsv", work);
    json_t *file = replay("file", source);
    snprintf(source, sizeof source, "--kafka %s --topic mmrec.events", brokers);
    json_t *whole = replay("whole", source);
    CHECK(input_of(whole, "events") == 2 * HALF && input_of(whole, "bad_lines") == 0);
    static const char *const same[] = {"input", "split", "models", "windows"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        CHECK_MSG(json_equal(json_object_get(file, same[i]), json_object_get(whole, same[i])),
                  "'%s' differs between the file and the topic", same[i]);
    printf("ok  file and topic: identical input, split and metrics (%d events from 4 partitions)\n", 2 * HALF);

    /* 2. time bounds cut the topic where the halves were produced */
    snprintf(source, sizeof source, "--kafka %s --to-ms %lld", brokers, (long long)cut);
    json_t *first = replay("first", source);
    CHECK_MSG(input_of(first, "events") == HALF, "--to-ms: %lld events, want %d", input_of(first, "events"), HALF);
    printf("ok  --to-ms: %d of %d events\n", HALF, 2 * HALF);

    /* 3. a garbage message after the second half: bad, reported, counted, not fatal */
    rd_kafka_t *rk = producer_new(brokers);
    produce_raw(rk, "mmrec.events", "junk", "not an event \xff\xff", 15);
    CHECK(rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    snprintf(source, sizeof source, "--kafka %s --from-ms %lld", brokers, (long long)cut);
    json_t *second = replay("second", source);
    CHECK_MSG(input_of(second, "events") == HALF, "--from-ms: %lld events, want %d", input_of(second, "events"), HALF);
    CHECK_MSG(input_of(second, "bad_lines") == 1, "bad_lines %lld, want 1", input_of(second, "bad_lines"));
    CHECK_MSG(strstr(err_text, "mmrec.events/") && strstr(err_text, "@") && strstr(err_text, "undecodable"),
              "the bad message is not reported as topic/partition@offset: reason:\n%s", err_text);
    printf("ok  --from-ms: %d events; the garbage message counted bad and reported, not fatal\n", HALF);
    snprintf(args, sizeof args, "replay --kafka %s --from-ms %lld --items %s/ds/items.jsonl --max-bad 0", brokers,
             (long long)cut, work);
    CHECK_MSG(run("strict", args) == 1 && strstr(err_text, "max_bad_fraction"), "--max-bad 0:\n%s", err_text);
    printf("ok  --max-bad 0: the garbage message fails the read\n");

    /* 3b. JSON messages on a topic of their own */
    snprintf(args, sizeof args, "\"$MMREC_KAFKA_SH\" topics \"$MMREC_KAFKA_DIR\" replay.json:2 >%s/topics.log 2>&1", work);
    CHECK_MSG(system(args) == 0, "could not create topic replay.json (see %s/topics.log)", work);
    rk = producer_new(brokers);
    char msg[256], user[16];
    for (int i = 0; i <= 40; i++) {
        snprintf(user, sizeof user, "u%d", i % 4);
        snprintf(msg, sizeof msg, "{\"user_id\":\"%s\",\"item_id\":\"i%d\",\"type\":\"%s\",\"ts_ms\":%lld}", user,
                 i / 4, i == 40 ? "NOPE" : "CLICK", 1767225600000LL + 1000 * i);
        produce_raw(rk, "replay.json", user, msg, strlen(msg));
    }
    CHECK(rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    snprintf(source, sizeof source, "--kafka %s --topic replay.json --format json --max-bad 0.05", brokers);
    json_t *js = replay("json", source);
    CHECK_MSG(input_of(js, "events") == 40 && input_of(js, "bad_lines") == 1 && strstr(err_text, "unknown_type"),
              "--format json: %lld events, %lld bad:\n%s", input_of(js, "events"), input_of(js, "bad_lines"), err_text);
    printf("ok  --format json: 40 events from 2 partitions, the unknown type counted bad\n");
    json_decref(js);

    /* 4. failures */
    int64_t t0 = mmr_mono_ns();
    snprintf(args, sizeof args, "replay --kafka 127.0.0.1:1 --kafka-timeout-ms 2000 --items %s/ds/items.jsonl", work);
    CHECK_MSG(run("unreachable", args) == 1 && strstr(err_text, "cannot reach the broker"), "unreachable:\n%s", err_text);
    double s = (double)(mmr_mono_ns() - t0) / 1e9;
    CHECK_MSG(s < 15, "unreachable broker took %.1f s", s);
    snprintf(args, sizeof args, "replay --kafka %s --topic no.such.topic --items %s/ds/items.jsonl", brokers, work);
    CHECK_MSG(run("missing", args) == 1 && strstr(err_text, "no.such.topic does not exist"), "missing topic:\n%s", err_text);
    snprintf(args, sizeof args, "replay --kafka %s --events %s/ds/events.tsv", brokers, work);
    CHECK_MSG(run("both", args) == 2 && strstr(err_text, "exactly one event source"), "both sources:\n%s", err_text);
    CHECK_MSG(run("neither", "replay --items x.jsonl") == 2, "no source:\n%s", err_text);
    snprintf(args, sizeof args, "replay --events %s/ds/events.tsv --from-ms 5", work);
    CHECK_MSG(run("stray", args) == 2 && strstr(err_text, "--from-ms goes with --kafka"), "stray --from-ms:\n%s", err_text);
    printf("ok  unreachable broker (%.1f s), missing topic, wrong sources: clear errors\n", s);

    json_decref(file);
    json_decref(whole);
    json_decref(first);
    json_decref(second);
    snprintf(args, sizeof args, "rm -rf %s", work);
    CHECK(system(args) == 0);
    return 0;
}
