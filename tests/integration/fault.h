/* fault.h — what the fault tests (test_fault_*.c) share: the daemon options they all use,
 * a small catalog, mmrecd started with its log captured in a file, a Rank load of client
 * threads that counts every outcome by gRPC status, a health probe, and reading the log.
 * Not here: the event stream and its ground truth (truth.h), process control (daemon.h).
 * Header-only: each integration test is one program. */
#ifndef MMR_TEST_FAULT_H
#define MMR_TEST_FAULT_H

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"
#include "grpc/health/v1/health.pb-c.h"
#include "mmr_rand.h"
#include "mmr_rpc.h"
#include "mmr_time.h"
#include "mmrec/v1/admin.pb-c.h"
#include "mmrec/v1/item.pb-c.h"
#include "mmrec/v1/ranking.pb-c.h"
#include "truth.h"

#define FAULT_DIM 8          /* every item embedding width (item.dim_*) */
#define FAULT_CANDIDATES 20  /* candidates per Rank request */
#define FAULT_THREADS_MAX 8
#define FAULT_NO_STATUS 17   /* by_status index of calls that completed without a gRPC status */

/* Options every fault test passes (store, brokers and group come from the test): small
 * towers so the trainer keeps up on a 2-core box, frequent publishes and checkpoints. */
#define FAULT_DAEMON_OPTS                                                                       \
    "--grpc.listen=127.0.0.1:0", "--metrics.listen=127.0.0.1:0", "--log.level=info",           \
        "--kafka.consumer.session.timeout.ms=6000", "--item.dim_text=8", "--item.dim_image=8", \
        "--item.dim_video=8", "--model.hidden=16", "--model.dim=16", "--model.id_buckets=4096", \
        "--trainer.batch_size=64", "--trainer.publish_interval_ms=500",                        \
        "--trainer.checkpoint_interval_ms=1000"

/* What every fault test starts with: the broker, a work folder (removed at exit, failed
 * CHECKs included, unless MMREC_KEEP_WORK is set: then it is printed) and the daemon's
 * store, broker and log options. One per test program (static: atexit removes work). */
typedef struct fault_env {
    const char *brokers;
    char work[64];
    char store_opt[512]; /* "--store.path=<work>/store" unless the test moves the store */
    char brokers_opt[256], log_path[256];
} fault_env_t;
static fault_env_t fault_env;

static inline void fault_work_remove(void) {
    if (getenv("MMREC_KEEP_WORK")) { fprintf(stderr, "work folder kept: %s\n", fault_env.work); return; }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fault_env.work);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fault_env.work);
}

/* Fills fault_env for test `name` (work folder /tmp/mmrec-<name>-XXXXXX). Returns 0, or
 * MMR_TEST_SKIP (message printed) without n_bins binaries in argv (usage names them) or
 * outside with_kafka.sh. */
static inline int fault_env_init(int argc, int n_bins, const char *usage, const char *name) {
    fault_env.brokers = getenv("MMREC_KAFKA_BOOTSTRAP");
    if (argc < 1 + n_bins || !fault_env.brokers) {
        fprintf(stderr, "skip: needs %s and MMREC_KAFKA_BOOTSTRAP (run via with_kafka.sh)\n", usage);
        return MMR_TEST_SKIP;
    }
    snprintf(fault_env.work, sizeof fault_env.work, "/tmp/mmrec-%s-XXXXXX", name);
    CHECK(mkdtemp(fault_env.work));
    atexit(fault_work_remove);
    snprintf(fault_env.store_opt, sizeof fault_env.store_opt, "--store.path=%s/store", fault_env.work);
    snprintf(fault_env.brokers_opt, sizeof fault_env.brokers_opt, "--kafka.brokers=%s", fault_env.brokers);
    snprintf(fault_env.log_path, sizeof fault_env.log_path, "%s/mmrecd.log", fault_env.work);
    return 0;
}

/* The store folder of fault_env.store_opt. */
static inline const char *fault_store_path(void) { return fault_env.store_opt + strlen("--store.path="); }

/* The offsets ingest group `group` has committed to Kafka for mmrec.events partitions
 * 0..parts-1 into off[] (0 where none was committed yet). */
static inline void fault_committed(const char *group, int parts, int64_t *off) {
    char errstr[512];
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    CHECK(rd_kafka_conf_set(cc, "bootstrap.servers", fault_env.brokers, errstr, sizeof errstr) == RD_KAFKA_CONF_OK);
    CHECK(rd_kafka_conf_set(cc, "group.id", group, errstr, sizeof errstr) == RD_KAFKA_CONF_OK);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
    CHECK_MSG(c, "%s", errstr);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) rd_kafka_topic_partition_list_add(tl, "mmrec.events", p);
    CHECK(rd_kafka_committed(c, tl, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int p = 0; p < parts; p++) off[p] = tl->elems[p].offset > 0 ? tl->elems[p].offset : 0;
    rd_kafka_topic_partition_list_destroy(tl);
    rd_kafka_destroy(c);
}

/* Produces items i0..i<n-1> with random FAULT_DIM-wide embeddings to mmrec.items and flushes. */
static inline void fault_produce_catalog(rd_kafka_t *rk, uint32_t n) {
    uint64_t rng = 7;
    float emb[3][FAULT_DIM]; /* text, image, video */
    uint8_t buf[512];
    char id[32];
    for (uint32_t i = 0; i < n; i++) {
        for (int m = 0; m < 3; m++)
            for (int k = 0; k < FAULT_DIM; k++) emb[m][k] = (float)mmr_rand_uniform(&rng) - 0.5f;
        snprintf(id, sizeof id, "i%u", i);
        Mmrec__V1__Item it = MMREC__V1__ITEM__INIT;
        it.item_id = id;
        it.text_emb = emb[0], it.n_text_emb = FAULT_DIM;
        it.image_emb = emb[1], it.n_image_emb = FAULT_DIM;
        it.video_emb = emb[2], it.n_video_emb = FAULT_DIM;
        it.created_ms = mmr_now_ms();
        produce_raw(rk, "mmrec.items", id, buf, mmrec__v1__item__pack(&it, buf));
        rd_kafka_poll(rk, 0);
    }
    CHECK(rd_kafka_flush(rk, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* daemon_start with mmrecd's stderr (its log) appended to log_path. */
static inline void fault_daemon_start(test_daemon_t *d, const char *bin, const char *workdir, char *const *args,
                                      const char *log_path) {
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    CHECK_MSG(fd >= 0, "open %s", log_path);
    fflush(stderr);
    int saved = dup(2);
    CHECK(saved >= 0 && dup2(fd, 2) == 2); /* the child inherits fd 2 */
    close(fd);
    daemon_start(d, bin, workdir, args);
    CHECK(dup2(saved, 2) == 2);
    close(saved);
}

/* The first line of the file at path containing every needle (NULL-terminated), copied
 * into line (cap bytes); returns 0 when there is none. */
static inline int fault_log_find(const char *path, char *line, size_t cap, const char *const *needles) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int found = 0;
    while (!found && fgets(line, (int)cap, f)) {
        found = 1;
        for (const char *const *n = needles; *n; n++) found = found && strstr(line, *n);
    }
    fclose(f);
    if (found) line[strcspn(line, "\n")] = '\0';
    return found;
}

/* grpc.health.v1 Check of service ("" = the whole server): 1 SERVING, 0 another answer,
 * -1 no answer. */
static inline int fault_health(mmr_rpc_client_t *c, const char *service) {
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    ProtobufCMessage *out = NULL;
    mmr_err_t err = {0};
    if (mmr_rpc_call(c, "/grpc.health.v1.Health/Check", &req.base,
                     &grpc__health__v1__health_check_response__descriptor, &out, 2000, NULL, &err) != MMR_OK)
        return -1;
    int serving = ((Grpc__Health__V1__HealthCheckResponse *)out)->status ==
                  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    protobuf_c_message_free_unpacked(out, NULL);
    return serving;
}

/* Admin ListModels: *serving gets the serving version, *newest the newest registered one
 * (0 when none), *n (may be NULL) how many are registered. */
static inline void fault_list_models(const char *target, uint64_t *serving, uint64_t *newest, size_t *n) {
    mmr_rpc_client_t *c = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_rpc_client_new(target, NULL, &c, &err) == MMR_OK);
    Mmrec__V1__ListModelsRequest req = MMREC__V1__LIST_MODELS_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    CHECK_MSG(mmr_rpc_call(c, "/mmrec.v1.Admin/ListModels", &req.base, &mmrec__v1__list_models_response__descriptor,
                           &out, 10000, NULL, &err) == MMR_OK, "ListModels: %s", err.msg);
    Mmrec__V1__ListModelsResponse *r = (Mmrec__V1__ListModelsResponse *)out;
    *serving = r->serving_version;
    *newest = 0;
    for (size_t i = 0; i < r->n_models; i++)
        if (r->models[i]->version > *newest) *newest = r->models[i]->version;
    if (n) *n = r->n_models;
    protobuf_c_message_free_unpacked(out, NULL);
    mmr_rpc_client_free(c);
}

/* Rank load: threads call Rank back to back, or pause_ms apart (a random user u<k>,
 * FAULT_CANDIDATES random items, 10 s deadline) and count each outcome by gRPC status.
 * Calls that began before `cutoff_ns` (mmr_mono_ns; INT64_MIN, none, until set) and failed
 * are also counted in failed_before: the calls in flight when a fault was injected. */
typedef struct fault_load {
    const char *target;             /* borrowed */
    uint32_t n_users, n_items;
    int n_threads, pause_ms;
    pthread_t th[FAULT_THREADS_MAX];
    atomic_bool stop;
    atomic_int_fast64_t cutoff_ns;
    atomic_uint_fast64_t calls, failed, failed_before, by_status[FAULT_NO_STATUS + 1];
    atomic_uint_fast64_t max_version;
} fault_load_t;

static const char *const fault_status_name[FAULT_NO_STATUS + 1] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED", "(no status)"};

static inline void *fault_load_main(void *arg) {
    fault_load_t *l = arg;
    uint64_t rng = (uint64_t)mmr_mono_ns();
    mmr_rpc_client_t *c = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_rpc_client_new(l->target, NULL, &c, &err) == MMR_OK);
    char user[32], ids[FAULT_CANDIDATES][32];
    char *cands[FAULT_CANDIDATES];
    while (!atomic_load(&l->stop)) {
        snprintf(user, sizeof user, "u%u", (uint32_t)(mmr_rand_next(&rng) % l->n_users));
        for (int i = 0; i < FAULT_CANDIDATES; i++) {
            snprintf(ids[i], sizeof ids[i], "i%u", (uint32_t)(mmr_rand_next(&rng) % l->n_items));
            cands[i] = ids[i];
        }
        Mmrec__V1__RankRequest req = MMREC__V1__RANK_REQUEST__INIT;
        req.user_id = user;
        req.candidates = cands;
        req.n_candidates = FAULT_CANDIDATES;
        req.top_k = 10;
        ProtobufCMessage *out = NULL;
        int status = -1;
        int64_t began = mmr_mono_ns();
        mmr_status_t st = mmr_rpc_call(c, "/mmrec.v1.Ranker/Rank", &req.base, &mmrec__v1__rank_response__descriptor,
                                       &out, 10000, &status, &err);
        atomic_fetch_add(&l->calls, 1);
        atomic_fetch_add(&l->by_status[status >= 0 && status < FAULT_NO_STATUS ? status : FAULT_NO_STATUS], 1);
        if (st != MMR_OK) {
            atomic_fetch_add(&l->failed, 1);
            int64_t cutoff = atomic_load(&l->cutoff_ns);
            if (began < cutoff && atomic_fetch_add(&l->failed_before, 1) < 10)
                fprintf(stderr, "Rank sent %.1f ms before the fault failed after %.1f ms: %s\n",
                        (cutoff - began) / 1e6, (mmr_mono_ns() - began) / 1e6, err.msg);
            sleep_ms(10); /* the daemon may be down: do not spin */
            continue;
        }
        uint64_t v = ((Mmrec__V1__RankResponse *)out)->model_version;
        protobuf_c_message_free_unpacked(out, NULL);
        uint64_t m = atomic_load(&l->max_version);
        while (v > m && !atomic_compare_exchange_weak(&l->max_version, &m, v)) {}
        if (l->pause_ms) sleep_ms(l->pause_ms);
    }
    mmr_rpc_client_free(c);
    return NULL;
}

/* Starts n_threads (≤ FAULT_THREADS_MAX) load threads against target (borrowed). */
static inline void fault_load_start(fault_load_t *l, const char *target, int n_threads, int pause_ms,
                                    uint32_t n_users, uint32_t n_items) {
    CHECK(n_threads > 0 && n_threads <= FAULT_THREADS_MAX);
    memset(l, 0, sizeof *l);
    l->target = target, l->n_threads = n_threads, l->pause_ms = pause_ms, l->n_users = n_users, l->n_items = n_items;
    atomic_store(&l->cutoff_ns, INT64_MIN);
    for (int i = 0; i < n_threads; i++) CHECK(pthread_create(&l->th[i], NULL, fault_load_main, l) == 0);
}

/* Stops and joins the threads; prints "load: <calls> calls, <status> <n>, ..." with label. */
static inline void fault_load_stop(fault_load_t *l, const char *label) {
    atomic_store(&l->stop, true);
    for (int i = 0; i < l->n_threads; i++) pthread_join(l->th[i], NULL);
    printf("   %s: %llu Rank calls", label, (unsigned long long)atomic_load(&l->calls));
    for (int k = 0; k <= FAULT_NO_STATUS; k++)
        if (atomic_load(&l->by_status[k]))
            printf(", %s %llu", fault_status_name[k], (unsigned long long)atomic_load(&l->by_status[k]));
    printf("\n");
}

#endif
