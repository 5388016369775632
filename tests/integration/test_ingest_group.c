/* test_ingest_group.c — two mmrecd instances in one consumer group split the partitions:
 * each store holds exactly the events of the partitions its instance owns, with offsets
 * for those partitions only, and the two stores together equal the ground truth.
 * Usage: test_ingest_group PATH/TO/mmrecd  (under with_kafka.sh: mmrec.events has 4
 * partitions, mmrec.items 2) */
#include <stdint.h>

#include "daemon.h"
#include "mmr_fstore.h"

#define N_EVENTS 100000
#define N_USERS 5000
#define N_ITEMS 1000
#define PARTS 4

static int32_t *part_of; /* [N_EVENTS], filled by delivery reports */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    CHECK_MSG(!m->err, "delivery: %s", rd_kafka_err2str(m->err));
    part_of[(intptr_t)m->_private] = m->partition;
}

static long metric(int port, const char *name) {
    char *b = metrics_get(port);
    double v = b ? metric_value(b, name) : -1;
    free(b);
    return (long)v;
}

int main(int argc, char **argv) {
    const char *brokers = getenv("MMREC_KAFKA_BOOTSTRAP");
    if (argc < 2 || !brokers) {
        fprintf(stderr, "skip: needs mmrecd path and MMREC_KAFKA_BOOTSTRAP (run via with_kafka.sh)\n");
        return MMR_TEST_SKIP;
    }
    char work[2][64], store_opt[2][160], brokers_opt[256];
    snprintf(brokers_opt, sizeof brokers_opt, "--kafka.brokers=%s", brokers);
    test_daemon_t d[2];
    for (int k = 0; k < 2; k++) {
        snprintf(work[k], sizeof work[k], "/tmp/mmrec-group-XXXXXX");
        CHECK(mkdtemp(work[k]));
        snprintf(store_opt[k], sizeof store_opt[k], "--store.path=%s/store", work[k]);
        char *args[] = {store_opt[k], brokers_opt, "--ingest.group=pair", "--grpc.listen=127.0.0.1:0",
                        "--metrics.listen=127.0.0.1:0", "--log.level=warn",
                        "--kafka.consumer.session.timeout.ms=6000", "--kafka.consumer.heartbeat.interval.ms=1000",
                        "--shutdown.drain_ms=0", "--trainer.enabled=false", NULL};
        daemon_start(&d[k], argv[1], work[k], args);
    }
    /* settled: both own partitions, 6 in all (4 events + 2 items), stable for 2 s */
    int stable = 0;
    for (int i = 0; i < 600 && stable < 20; i++) {
        long a = metric(d[0].metrics_port, "mmrec_ingest_assigned_partitions");
        long b = metric(d[1].metrics_port, "mmrec_ingest_assigned_partitions");
        stable = (a > 0 && b > 0 && a + b == 6) ? stable + 1 : 0;
        sleep_ms(100);
    }
    CHECK_MSG(stable >= 20, "the group did not settle with both instances owning partitions");
    printf("ok both instances own partitions: %ld + %ld\n",
           metric(d[0].metrics_port, "mmrec_ingest_assigned_partitions"),
           metric(d[1].metrics_port, "mmrec_ingest_assigned_partitions"));

    part_of = malloc(sizeof *part_of * N_EVENTS);
    uint32_t *user = malloc(sizeof *user * N_EVENTS), *item = malloc(sizeof *item * N_EVENTS);
    char errstr[512], eid[32], u[32], it[32];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", brokers, errstr, sizeof errstr);
    rd_kafka_conf_set(pc, "linger.ms", "10", errstr, sizeof errstr);
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    CHECK(rk);
    uint8_t buf[256];
    for (long i = 0; i < N_EVENTS; i++) {
        user[i] = (uint32_t)((i * 2654435761u) % N_USERS);
        item[i] = (uint32_t)((i * 40503u + 7) % N_ITEMS);
        snprintf(eid, sizeof eid, "g%ld", i);
        snprintf(u, sizeof u, "u%u", user[i]);
        snprintf(it, sizeof it, "i%u", item[i]);
        Mmrec__V1__Event m = MMREC__V1__EVENT__INIT;
        m.event_id = eid;
        m.user_id = u;
        m.item_id = it;
        m.type = MMREC__V1__EVENT_TYPE__CLICK;
        size_t len = mmrec__v1__event__pack(&m, buf);
        CHECK(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("mmrec.events"), RD_KAFKA_V_KEY(u, strlen(u)),
                                RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END) == 0);
        rd_kafka_poll(rk, 0);
    }
    CHECK(rd_kafka_flush(rk, 60000) == 0);
    printf("ok produced %d events\n", N_EVENTS);

    /* wait until the two together have applied everything, then stop both cleanly */
    for (int i = 0; i < 1200; i++) {
        long a = metric(d[0].metrics_port, "mmrec_ingest_applied_total");
        long b = metric(d[1].metrics_port, "mmrec_ingest_applied_total");
        if (a + b >= N_EVENTS) break;
        sleep_ms(100);
    }
    /* Both at once, without the lame-duck drain: stopped one after the other, the second
     * would still be consuming when the first leaves the group, be assigned the first one's
     * partitions and ingest them into its own store, which has no offsets for them (a real
     * failover, correct, but not what this test checks). */
    for (int k = 0; k < 2; k++) CHECK(kill(d[k].pid, SIGTERM) == 0);
    for (int k = 0; k < 2; k++) CHECK(daemon_stop(&d[k], 0) == 0); /* signal 0: just wait */

    mmr_fstore_t *fs[2];
    mmr_err_t err = {0};
    int owner[PARTS];
    for (int k = 0; k < 2; k++) {
        mmr_fstore_opts_t fo = {.path = store_opt[k] + strlen("--store.path="), .must_exist = 1};
        CHECK_MSG(mmr_fstore_open(&fo, &fs[k], &err) == MMR_OK, "%s", err.msg);
    }
    for (int p = 0; p < PARTS; p++) {
        int64_t lo, hi, off[2];
        CHECK(rd_kafka_query_watermark_offsets(rk, "mmrec.events", p, &lo, &hi, 10000) == 0);
        for (int k = 0; k < 2; k++) CHECK(mmr_fstore_get_offset(fs[k], "mmrec.events", p, &off[k], &err) == MMR_OK);
        CHECK_MSG((off[0] == hi && off[1] == -1) || (off[1] == hi && off[0] == -1),
                  "partition %d: offsets %lld / %lld, end %lld", p, (long long)off[0], (long long)off[1], (long long)hi);
        owner[p] = off[0] == hi ? 0 : 1;
    }
    CHECK_MSG(owner[0] != owner[1] || owner[1] != owner[2] || owner[2] != owner[3], "one instance owns every partition");
    printf("ok each partition's offset is in exactly one store: owners %d %d %d %d\n", owner[0], owner[1], owner[2], owner[3]);

    /* users: in the owner's store only, with the right count; items: counts add up */
    int64_t *u_total = calloc(N_USERS, sizeof *u_total), (*i_clicks)[2] = calloc(N_ITEMS, sizeof *i_clicks);
    int *u_part = malloc(sizeof *u_part * N_USERS);
    for (long i = 0; i < N_EVENTS; i++) {
        u_total[user[i]]++;
        u_part[user[i]] = part_of[i]; /* keyed by user: always the same partition */
        i_clicks[item[i]][owner[part_of[i]]]++;
    }
    for (uint32_t x = 0; x < N_USERS; x++) {
        snprintf(u, sizeof u, "u%u", x);
        for (int k = 0; k < 2; k++) {
            mmr_user_t *rec = NULL;
            mmr_status_t st = mmr_fstore_get_user(fs[k], u, &rec, &err);
            if (k == owner[u_part[x]]) {
                CHECK_MSG(st == MMR_OK && rec->events_total == u_total[x], "%s: missing or wrong in its owner's store", u);
            } else {
                CHECK_MSG(st == MMR_ERR_NOT_FOUND, "%s: present in the store that does not own its partition", u);
            }
            mmr_user_free(rec);
        }
    }
    for (uint32_t x = 0; x < N_ITEMS; x++) {
        snprintf(it, sizeof it, "i%u", x);
        const char *id = it;
        for (int k = 0; k < 2; k++) {
            mmr_item_stats_t s;
            uint8_t found;
            CHECK(mmr_fstore_get_item_stats(fs[k], 1, &id, &s, &found, &err) == MMR_OK);
            CHECK_MSG((found ? s.clicks : 0) == i_clicks[x][k], "%s: store %d has %lld clicks, truth %lld", it, k,
                      (long long)(found ? s.clicks : 0), (long long)i_clicks[x][k]);
        }
    }
    printf("ok every user is in its partition owner's store only; item counts split exactly\n");
    for (int k = 0; k < 2; k++) {
        mmr_fstore_close(fs[k]);
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf %s", work[k]);
        CHECK(system(cmd) == 0);
    }
    rd_kafka_destroy(rk);
    free(u_part); free(i_clicks); free(u_total); free(item); free(user); free(part_of);
    return 0;
}
