/* test_fault_broker.c — the Kafka broker goes away for 30 s under Rank load, against a
 * real broker (scripts/kafka.sh stop / restart: same ports, same data) and a real mmrecd.
 *
 * mmrecd ingests a 1,000-item catalog and 30,000 events (truth.h), trains online and
 * answers Rank from two client threads (each pausing 2 ms between calls, so that the
 * outage's impressions stay well inside the default 100,000-message buffer); then the broker is stopped for 30 s and restarted:
 *   - while it is down, every Rank call succeeds (served from the store and the loaded
 *     model) and grpc.health.v1 answers SERVING every half second,
 *   - impressions logged meanwhile wait in the producer's local buffer: after the restart
 *     delivered catches up with logged, none dropped or failed at the default buffer size,
 *   - ingestion resumes: 20,000 events produced after the restart are applied, and the
 *     store equals the ground truth of all 50,000,
 *   - the trainer resumes: mmrec_trainer_events_total grows by the new events.
 * Usage: test_fault_broker PATH/TO/mmrecd  (under with_kafka.sh, which exports
 * MMREC_KAFKA_SH and MMREC_KAFKA_DIR) */
#include "fault.h"

#define N_BEFORE 30000
#define N_AFTER 20000
#define N_USERS 5000
#define N_ITEMS 1000
#define RING 64
#define OUTAGE_MS 30000

static void kafka_sh(const char *verb) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s '%s' >/dev/null", getenv("MMREC_KAFKA_SH"), verb, getenv("MMREC_KAFKA_DIR"));
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
}

int main(int argc, char **argv) {
    if (!getenv("MMREC_KAFKA_SH") || !getenv("MMREC_KAFKA_DIR")) {
        fprintf(stderr, "skip: needs MMREC_KAFKA_SH and MMREC_KAFKA_DIR (run via with_kafka.sh)\n");
        return MMR_TEST_SKIP;
    }
    if (fault_env_init(argc, 1, "the mmrecd path", "fbrk")) return MMR_TEST_SKIP;
    const char *brokers = fault_env.brokers, *work = fault_env.work, *log_path = fault_env.log_path;
    char *args[] = {fault_env.store_opt, fault_env.brokers_opt, "--ingest.group=fbrk", FAULT_DAEMON_OPTS, NULL};

    rd_kafka_t *rk = truth_producer_new(brokers);
    fault_produce_catalog(rk, N_ITEMS);
    truth_t truth;
    truth_init(&truth, N_BEFORE + N_AFTER, N_USERS, N_ITEMS, 99, mmr_now_ms() - 3600 * 1000);
    truth_produce(&truth, rk, N_BEFORE, 60000);
    test_daemon_t d;
    fault_daemon_start(&d, argv[1], work, args, log_path);
    int port = d.metrics_port;
    for (int i = 0; i < 600 && (truth_metric(port, "mmrec_ingest_applied_total") < N_BEFORE ||
                                truth_metric(port, "mmrec_trainer_publishes_total") < 1);
         i++)
        sleep_ms(100);
    CHECK_MSG(truth_metric(port, "mmrec_ingest_applied_total") == N_BEFORE, "first events not applied in 60 s");
    CHECK_MSG(truth_metric(port, "mmrec_trainer_publishes_total") >= 1, "no model published in 60 s");
    fault_load_t load;
    fault_load_start(&load, d.target, 2, 2, N_USERS, N_ITEMS);
    sleep_ms(1000);
    printf("ok %d events applied, serving model v%ld, Rank load running\n", N_BEFORE,
           truth_metric(port, "mmrec_model_serving_version"));

    /* --- outage: serving and health unaffected ----------------------------------------- */
    uint64_t calls0 = atomic_load(&load.calls);
    long logged0 = truth_metric(port, "mmrec_impressions_logged_total");
    int64_t t_stop = mmr_mono_ns();
    kafka_sh("stop");
    double stop_s = (mmr_mono_ns() - t_stop) / 1e9;
    mmr_rpc_client_t *hc = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_rpc_client_new(d.target, NULL, &hc, &err) == MMR_OK);
    int checks = 0, serving = 0;
    for (int64_t t0 = mmr_mono_ns(); mmr_mono_ns() - t0 < OUTAGE_MS * 1000000LL; sleep_ms(500)) {
        checks++;
        serving += fault_health(hc, "") == 1;
    }
    uint64_t calls_out = atomic_load(&load.calls) - calls0, failed_out = atomic_load(&load.failed);
    long logged_out = truth_metric(port, "mmrec_impressions_logged_total") - logged0;
    long delivered_out = truth_metric(port, "mmrec_impressions_delivered_total");
    printf("ok broker down %.0f s (stop took %.1f s): %llu Rank calls, %llu failed; health SERVING %d/%d; "
           "%ld impressions logged meanwhile\n", OUTAGE_MS / 1e3, stop_s, (unsigned long long)calls_out,
           (unsigned long long)failed_out, serving, checks, logged_out);
    CHECK_MSG(failed_out == 0 && calls_out > 0, "%llu of %llu Rank calls failed during the outage",
              (unsigned long long)failed_out, (unsigned long long)calls_out);
    CHECK_MSG(serving == checks, "health not SERVING in %d of %d checks", checks - serving, checks);
    CHECK(logged_out > 0);

    /* --- restart: ingestion, impressions and the trainer resume ------------------------- */
    long trainer_events0 = truth_metric(port, "mmrec_trainer_events_total");
    int64_t t_start = mmr_mono_ns();
    kafka_sh("restart");
    printf("ok broker restarted in %.1f s (same port and data)\n", (mmr_mono_ns() - t_start) / 1e9);
    truth_produce(&truth, rk, N_AFTER, 60000);
    int64_t t_prod = mmr_mono_ns();
    long applied = 0;
    for (int i = 0; i < 900 && (applied = truth_metric(port, "mmrec_ingest_applied_total")) < N_BEFORE + N_AFTER; i++)
        sleep_ms(100);
    double catch_s = (mmr_mono_ns() - t_prod) / 1e9;
    CHECK_MSG(applied == N_BEFORE + N_AFTER, "applied %ld of %d events 90 s after the restart", applied,
              N_BEFORE + N_AFTER);
    printf("ok ingestion resumed: the %d new events applied %.1f s after they were produced\n", N_AFTER, catch_s);
    long trainer_events = 0;
    for (int i = 0; i < 600 && (trainer_events = truth_metric(port, "mmrec_trainer_events_total")) <
                                   trainer_events0 + N_AFTER; i++)
        sleep_ms(100);
    CHECK_MSG(trainer_events >= trainer_events0 + N_AFTER, "trainer events %ld, %ld at the restart", trainer_events,
              trainer_events0);
    printf("ok trainer resumed: events %ld -> %ld\n", trainer_events0, trainer_events);
    fault_load_stop(&load, "whole run");
    CHECK_MSG(load.failed == 0, "%llu Rank calls failed", (unsigned long long)load.failed);
    long logged = 0, delivered = 0;
    for (int i = 0; i < 600; i++, sleep_ms(100)) {
        logged = truth_metric(port, "mmrec_impressions_logged_total");
        delivered = truth_metric(port, "mmrec_impressions_delivered_total");
        if (delivered == logged) break;
    }
    long dropped = truth_metric(port, "mmrec_impressions_dropped_total");
    long failed = truth_metric(port, "mmrec_impressions_failed_total");
    printf("ok impressions: %ld logged, %ld delivered (%ld before the restart), %ld dropped, %ld failed\n", logged,
           delivered, delivered_out, dropped, failed);
    CHECK(delivered == logged && dropped == 0 && failed == 0);
    mmr_rpc_client_free(hc);
    CHECK(daemon_stop(&d, SIGTERM) == 0);

    truth_check_store(&truth, fault_store_path(), RING, rk, 4);
    rd_kafka_destroy(rk);
    truth_free(&truth);
    printf("test_fault_broker: ok\n");
    return 0;
}
