/* test_loadgen.c — smoke test of mmrec-load against a real mmrecd and Kafka broker:
 *   1. Rank load, open loop, ~2 s at a low rate, --json: calls OK > 0, errors 0;
 *   2. Rank load plus Kafka events (--kafka) for ~2 s: both parts of the JSON, events
 *      acked > 0 and none failed, and mmrecd applies at least that many events.
 * Not a benchmark (the rates are tiny). Usage: test_loadgen PATH/TO/mmrecd
 * PATH/TO/mmrec-load (MMREC_KAFKA_BOOTSTRAP set by with_kafka.sh). */
#include <jansson.h>

#include "daemon.h"

/* Runs cmd, parses its stdout as one JSON object; exits the test on failure. */
static json_t *run_json(const char *cmd) {
    FILE *p = popen(cmd, "r");
    CHECK(p);
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    CHECK_MSG(rc == 0, "'%s' exited %d:\n%s", cmd, rc, out);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    CHECK_MSG(j && json_is_object(j), "not a JSON object (%s): %s", jerr.text, out);
    return j;
}

static long long jint(const json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    CHECK_MSG(json_is_integer(v), "no integer '%s'", key);
    return json_integer_value(v);
}

static void check_rank(const json_t *j, const char *what) {
    CHECK(!strcmp(json_string_value(json_object_get(j, "mode")), "open"));
    long long ok = jint(j, "ok"), errors = jint(j, "errors");
    CHECK_MSG(ok > 0 && errors == 0, "%s: ok %lld errors %lld", what, ok, errors);
    json_t *lat = json_object_get(json_object_get(j, "latency_ms"), "rank");
    CHECK(lat && jint(lat, "count") == ok && json_real_value(json_object_get(lat, "p99")) > 0);
    printf("ok  %s: %lld calls OK, 0 errors, p99 %.3f ms\n", what, ok, json_real_value(json_object_get(lat, "p99")));
}

int main(int argc, char **argv) {
    CHECK_MSG(argc == 3, "usage: test_loadgen MMRECD MMREC_LOAD");
    const char *brokers = getenv("MMREC_KAFKA_BOOTSTRAP");
    if (!brokers) {
        fprintf(stderr, "skip: MMREC_KAFKA_BOOTSTRAP not set (run under with_kafka.sh)\n");
        return MMR_TEST_SKIP;
    }
    char work[] = "/tmp/test_loadgen.XXXXXX";
    CHECK(mkdtemp(work));
    char store_opt[256], brokers_opt[512];
    snprintf(store_opt, sizeof store_opt, "--store.path=%s/store", work);
    snprintf(brokers_opt, sizeof brokers_opt, "--kafka.brokers=%s", brokers);
    char *args[] = {store_opt, brokers_opt, "--grpc.listen=127.0.0.1:0", "--metrics.listen=127.0.0.1:0",
                    "--ingest.batch_ms=20", "--log.level=warn", "--item.dim_text=8", "--item.dim_image=8",
                    "--item.dim_video=8", NULL};
    test_daemon_t d;
    daemon_start(&d, argv[1], work, args);

    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s --addr %s --rate 50 --duration 2 --candidates 20 --items 50 --users 20 --json",
             argv[2], d.target);
    json_t *j = run_json(cmd);
    check_rank(j, "rank alone");
    json_decref(j);

    char *m = metrics_get(d.metrics_port);
    CHECK(m);
    double applied0 = metric_value(m, "mmrec_ingest_applied_total");
    free(m);
    snprintf(cmd, sizeof cmd, "%s --addr %s --rate 50 --duration 2 --candidates 20 --items 50 --users 20 "
             "--kafka %s --events-rate 200 --json", argv[2], d.target, brokers);
    j = run_json(cmd);
    check_rank(j, "rank beside events");
    json_t *ev = json_object_get(j, "events");
    CHECK_MSG(ev, "no 'events' in the JSON");
    long long acked = jint(ev, "acked"), failed = jint(ev, "failed");
    CHECK_MSG(acked > 0 && failed == 0 && jint(ev, "sent") == acked, "events acked %lld failed %lld", acked, failed);
    printf("ok  events: %lld acked, 0 failed, %.1f events/s\n", acked, json_real_value(json_object_get(ev, "achieved_rate")));
    json_decref(j);

    double applied = applied0;
    for (int i = 0; i < 200 && applied - applied0 < (double)acked; i++) {
        sleep_ms(100);
        m = metrics_get(d.metrics_port);
        if (m) applied = metric_value(m, "mmrec_ingest_applied_total");
        free(m);
    }
    CHECK_MSG(applied - applied0 >= (double)acked, "mmrecd applied %.0f of %lld events", applied - applied0, acked);
    printf("ok  mmrecd applied all %lld events\n", acked);

    CHECK(daemon_stop(&d, SIGTERM) == 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", work);
    CHECK(system(cmd) == 0);
    return 0;
}
