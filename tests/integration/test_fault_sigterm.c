/* test_fault_sigterm.c — SIGTERM of mmrecd under Rank and ingest load, against a real
 * broker and real mmrecd processes.
 *
 * A 1,000-item catalog and 150,000 events (truth.h) go to Kafka; mmrecd ingests and four
 * client threads call Rank back to back. A quarter of the way through, mmrecd gets SIGTERM:
 *   - every Rank call sent before the signal completes OK (errors counted by gRPC status;
 *     calls sent after it may be refused),
 *   - mmrecd exits 0,
 *   - the offsets in the store and the group's offsets committed to Kafka are equal: the
 *     final batch was written and committed,
 *   - a restarted mmrecd consumes exactly the rest: applied = events - stored offsets, items
 *     applied = items - the items' stored offset, nothing re-delivered (duplicates 0), and the
 *     store equals the ground truth.
 * mmrecd runs with ingest.pause_after_ms=1: the writer-lag pause (streaming/ingest.c) comes
 * and goes all through the first life (every store commit of a batch takes longer), so the
 * exact hand-over is checked across pauses and resumes. Which partitions the first life
 * reaches is not checked: messages come in librdkafka's fetch order, partition by partition
 * in chunks of up to a megabyte, and with or without pauses a life that ends early may not
 * have reached one of them.
 * Usage: test_fault_sigterm PATH/TO/mmrecd  (under with_kafka.sh) */
#include "fault.h"

#define N_EVENTS 150000
#define N_USERS 20000
#define N_ITEMS 1000
#define RING 64
#define PARTS 4

int main(int argc, char **argv) {
    if (fault_env_init(argc, 1, "the mmrecd path", "fterm")) return MMR_TEST_SKIP;
    const char *brokers = fault_env.brokers, *work = fault_env.work, *log_path = fault_env.log_path;
    const char *store_path = fault_store_path();
    char *args[] = {fault_env.store_opt, fault_env.brokers_opt, "--ingest.group=fterm", "--trainer.enabled=false",
                    "--ingest.pause_after_ms=1",
                    FAULT_DAEMON_OPTS, NULL};

    rd_kafka_t *rk = truth_producer_new(brokers);
    fault_produce_catalog(rk, N_ITEMS);
    truth_t truth;
    truth_init(&truth, N_EVENTS, N_USERS, N_ITEMS, 777, mmr_now_ms() - 3600 * 1000);
    truth_produce(&truth, rk, N_EVENTS, 120000);
    test_daemon_t d;
    fault_daemon_start(&d, argv[1], work, args, log_path);
    fault_load_t load;
    fault_load_start(&load, d.target, 4, 0, N_USERS, N_ITEMS);
    long consumed = 0;
    for (int i = 0; i < 1200 && (consumed = truth_metric(d.metrics_port, "mmrec_ingest_consumed_total")) <
                                    N_ITEMS + N_EVENTS / 4; i++)
        sleep_ms(100);
    CHECK_MSG(consumed >= N_ITEMS + N_EVENTS / 4, "only %ld consumed after 120 s", consumed);
    sleep_ms(500); /* let the load reach a steady state */
    uint64_t calls_before = atomic_load(&load.calls);
    long pauses = truth_metric(d.metrics_port, "mmrec_ingest_pauses_total");

    /* --- SIGTERM: in-flight calls finish, exit 0 ---------------------------------------- */
    atomic_store(&load.cutoff_ns, mmr_mono_ns());
    int64_t t_sig = mmr_mono_ns();
    int rc = daemon_stop(&d, SIGTERM);
    double exit_ms = (mmr_mono_ns() - t_sig) / 1e6;
    fault_load_stop(&load, "load around SIGTERM");
    printf("ok SIGTERM after %ld messages consumed (%ld pauses) and %llu Rank calls: exit code %d after %.0f ms; "
           "%llu calls sent before the signal failed\n", consumed, pauses, (unsigned long long)calls_before, rc,
           exit_ms, (unsigned long long)load.failed_before);
    CHECK_MSG(rc == 0, "mmrecd exited %d on SIGTERM", rc);
    uint64_t failed_before = atomic_load(&load.failed_before); /* checked last: the rest still runs */

    /* --- offsets: stored == committed to Kafka ------------------------------------------ */
    mmr_fstore_t *fs = NULL;
    mmr_err_t err = {0};
    mmr_fstore_opts_t fo = {.path = store_path, .must_exist = 1};
    CHECK_MSG(mmr_fstore_open(&fo, &fs, &err) == MMR_OK, "%s", err.msg);
    int64_t committed[PARTS];
    fault_committed("fterm", PARTS, committed);
    long stored_sum = 0;
    for (int p = 0; p < PARTS; p++) {
        int64_t stored;
        CHECK(mmr_fstore_get_offset(fs, "mmrec.events", p, &stored, &err) == MMR_OK);
        if (stored < 0) stored = 0; /* none yet: 0, as for committed */
        CHECK_MSG(committed[p] == stored, "partition %d: stored offset %lld, committed %lld", p, (long long)stored,
                  (long long)committed[p]);
        stored_sum += (long)stored;
    }
    long items_left = N_ITEMS;
    for (int p = 0; p < 16; p++) { /* whatever the broker made of mmrec.items: none stored reads -1 */
        int64_t stored;
        CHECK(mmr_fstore_get_offset(fs, "mmrec.items", p, &stored, &err) == MMR_OK);
        if (stored > 0) items_left -= (long)stored;
    }
    mmr_fstore_close(fs);
    printf("ok the store's offsets equal the offsets committed to Kafka (%ld of %d events; %ld items left)\n",
           stored_sum, N_EVENTS, items_left);

    /* --- restart: exactly the rest is applied ------------------------------------------- */
    fault_daemon_start(&d, argv[1], work, args, log_path);
    truth_wait_idle(&d);
    long applied = truth_metric(d.metrics_port, "mmrec_ingest_applied_total");
    long dups = truth_metric(d.metrics_port, "mmrec_ingest_duplicates_total");
    long consumed2 = truth_metric(d.metrics_port, "mmrec_ingest_consumed_total");
    long items2 = truth_metric(d.metrics_port, "mmrec_ingest_items_applied_total");
    printf("ok restart consumed %ld messages: %ld events applied, %ld items, %ld duplicates (expected %ld, %ld "
           "and 0); %ld redelivered, %ld pauses\n", consumed2, applied, items2, dups, N_EVENTS - stored_sum,
           items_left, truth_metric(d.metrics_port, "mmrec_ingest_redelivered_total"),
           truth_metric(d.metrics_port, "mmrec_ingest_pauses_total"));
    CHECK(applied == N_EVENTS - stored_sum && items2 == items_left && dups == 0 &&
          consumed2 == N_EVENTS - stored_sum + items_left);
    CHECK(daemon_stop(&d, SIGTERM) == 0);

    truth_check_store(&truth, store_path, RING, rk, PARTS);
    rd_kafka_destroy(rk);
    truth_free(&truth);
    CHECK_MSG(failed_before == 0, "%llu Rank calls sent before SIGTERM failed (see above)",
              (unsigned long long)failed_before);
    printf("test_fault_sigterm: ok\n");
    return 0;
}
