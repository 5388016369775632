/* test_fault_kill.c — kill -9 of mmrecd under combined ingest, training and Rank load,
 * against a real broker and real mmrecd processes.
 *
 * A 1,000-item catalog and 300,000 events (truth.h) go to Kafka; mmrecd ingests, trains
 * online (publishing model versions, checkpointing every second) and answers Rank from
 * two client threads. Once a third of the events is consumed and the trainer has
 * published and checkpointed, mmrecd gets SIGKILL. After a restart on the same store:
 *   - the registry serves the newest registered version, and no older one than served
 *     before the kill (the last published model is served again),
 *   - the trainer logs "resumed from <checkpoint> (N examples)" with N > 0 and its examples
 *     counter continues from N rather than from 0,
 *   - Rank load in the second life sees no failed call,
 *   - after catching up, the store equals the ground truth (no event lost or counted twice).
 * Not here: what Rank callers see during the kill (connection refused, by design).
 * Usage: test_fault_kill PATH/TO/mmrecd  (under with_kafka.sh) */
#include "fault.h"

#define N_EVENTS 300000
#define N_USERS 20000
#define N_ITEMS 1000
#define RING 64

int main(int argc, char **argv) {
    if (fault_env_init(argc, 1, "the mmrecd path", "fkill")) return MMR_TEST_SKIP;
    const char *brokers = fault_env.brokers, *work = fault_env.work, *log_path = fault_env.log_path;
    char line[1024];
    char *args[] = {fault_env.store_opt, fault_env.brokers_opt, "--ingest.group=fkill", FAULT_DAEMON_OPTS, NULL};

    rd_kafka_t *rk = truth_producer_new(brokers);
    fault_produce_catalog(rk, N_ITEMS);
    test_daemon_t d;
    fault_daemon_start(&d, argv[1], work, args, log_path);
    for (int i = 0; i < 300 && truth_metric(d.metrics_port, "mmrec_ingest_items_applied_total") < N_ITEMS; i++)
        sleep_ms(100);
    CHECK(truth_metric(d.metrics_port, "mmrec_ingest_items_applied_total") == N_ITEMS);

    truth_t truth;
    truth_init(&truth, N_EVENTS, N_USERS, N_ITEMS, 4242, mmr_now_ms() - 3600 * 1000);
    int64_t t0 = mmr_mono_ns();
    truth_produce(&truth, rk, N_EVENTS, 120000);
    printf("ok produced %d items and %d events in %.1f s\n", N_ITEMS, N_EVENTS, (mmr_mono_ns() - t0) / 1e9);

    /* --- first life: load until a third is consumed and the trainer has published ----- */
    fault_load_t load;
    fault_load_start(&load, d.target, 2, 0, N_USERS, N_ITEMS);
    long consumed = 0, pubs = 0, ckpts = 0;
    for (int i = 0; i < 1200; i++) {
        consumed = truth_metric(d.metrics_port, "mmrec_ingest_consumed_total");
        pubs = truth_metric(d.metrics_port, "mmrec_trainer_publishes_total");
        ckpts = truth_metric(d.metrics_port, "mmrec_trainer_checkpoints_total");
        if (consumed >= N_EVENTS / 3 && pubs >= 2 && ckpts >= 1) break;
        sleep_ms(100);
    }
    CHECK_MSG(consumed >= N_EVENTS / 3 && pubs >= 2 && ckpts >= 1,
              "first life: consumed %ld, %ld publishes, %ld checkpoints after 120 s", consumed, pubs, ckpts);
    long serving_before = truth_metric(d.metrics_port, "mmrec_model_serving_version");
    long examples_before = truth_metric(d.metrics_port, "mmrec_trainer_examples_total");
    uint64_t failed_alive = atomic_load(&load.failed);
    CHECK(daemon_stop(&d, SIGKILL) == 128 + SIGKILL);
    fault_load_stop(&load, "first life (calls after the kill fail)");
    CHECK_MSG(failed_alive == 0, "%llu Rank calls failed before the kill", (unsigned long long)failed_alive);
    printf("ok kill -9 after %ld events consumed, %ld publishes (serving v%ld), %ld checkpoints, "
           "%ld examples trained\n", consumed, pubs, serving_before, ckpts, examples_before);

    /* --- restart: last model served, trainer resumed from its checkpoint --------------- */
    fault_daemon_start(&d, argv[1], work, args, log_path);
    long examples_after = 0; /* the counter is published after the trainer's first poll */
    for (int i = 0; i < 50 && (examples_after = truth_metric(d.metrics_port, "mmrec_trainer_examples_total")) <= 0;
         i++)
        sleep_ms(20);
    uint64_t serving, newest;
    size_t n_models;
    fault_list_models(d.target, &serving, &newest, &n_models);
    printf("ok restart: serving v%llu, newest registered v%llu (%zu registered), v%ld served before the kill\n",
           (unsigned long long)serving, (unsigned long long)newest, n_models, serving_before);
    CHECK_MSG(serving == newest && (long)serving >= serving_before, "serving v%llu, newest v%llu, before v%ld",
              (unsigned long long)serving, (unsigned long long)newest, serving_before);
    CHECK_MSG(fault_log_find(log_path, line, sizeof line, (const char *const[]){"resumed from", "trainer.ckpt", NULL}),
              "no 'resumed from ... trainer.ckpt' line in %s", log_path);
    const char *paren = strrchr(line, '(');
    unsigned long long resumed = 0;
    CHECK_MSG(paren && sscanf(paren, "(%llu examples)", &resumed) == 1, "unparsable: %s", line);
    CHECK_MSG(resumed > 0 && resumed <= (unsigned long long)examples_before && examples_after >= (long)resumed,
              "resumed %llu examples, %ld before the kill, counter %ld after the restart", resumed,
              examples_before, examples_after);
    printf("ok trainer resumed from its checkpoint: %llu examples (%ld trained before the kill, counter "
           "at %ld within 1 s of the restart)\n", resumed, examples_before, examples_after);

    /* --- second life: catch up under load ---------------------------------------------- */
    fault_load_start(&load, d.target, 2, 0, N_USERS, N_ITEMS);
    truth_wait_idle(&d);
    long examples_end = 0;
    for (int i = 0; i < 300 && (examples_end = truth_metric(d.metrics_port, "mmrec_trainer_examples_total")) <=
                                   (long)resumed; i++)
        sleep_ms(100);
    fault_load_stop(&load, "second life");
    CHECK_MSG(load.failed == 0, "%llu Rank calls failed after the restart", (unsigned long long)load.failed);
    CHECK_MSG(examples_end > (long)resumed, "trainer did not train after the restart");
    printf("ok second life: zero failed Rank calls, trainer at %ld examples\n", examples_end);
    CHECK(daemon_stop(&d, SIGTERM) == 0);

    truth_check_store(&truth, fault_store_path(), RING, rk, 4);
    rd_kafka_destroy(rk);
    truth_free(&truth);
    printf("test_fault_kill: ok\n");
    return 0;
}
