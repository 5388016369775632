/* test_online.c — online learning end to end, all real (Kafka broker, mmrecd process):
 *   1. freshness: after a burst of clicks on a NEW item by cohort A, the item enters A's
 *      top-10 within publish interval + 1 s of the burst being in Kafka, and stays out of
 *      the top-10 of cohort B, which never touched it;
 *   2. hot swap under load: a thread calls Rank without pause while the trainer publishes
 *      ≥ 20 versions: zero failed calls, every answer names a version that was published;
 *   3. SIGTERM exits 0 with a final checkpoint, and a restarted mmrecd serves again.
 * Usage: test_online PATH/TO/mmrecd  (MMREC_KAFKA_BOOTSTRAP set by with_kafka.sh) */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"
#include "mmr_rpc.h"
#include "mmr_rand.h"
#include "mmr_time.h"
#include "mmrec/v1/item.pb-c.h"
#include "mmrec/v1/ranking.pb-c.h"

#define DIM 8
#define TOPICS 3
#define PER_TOPIC 20
#define N_ITEMS (TOPICS * PER_TOPIC + 1) /* + the new item */
#define COHORT 12
#define PUBLISH_MS 300

static char item_ids[N_ITEMS][16];
static char *cands[N_ITEMS];

static void produce_item(rd_kafka_t *rk, const char *id, int topic, uint64_t *rng) {
    float emb[3][DIM];
    for (int m = 0; m < 3; m++)
        for (int k = 0; k < DIM; k++) /* topic t lights up dimensions 2t, 2t+1, plus noise */
            emb[m][k] = (k / 2 == topic ? 1.0f : 0.0f) + 0.4f * (float)mmr_rand_uniform(rng) - 0.2f;
    Mmrec__V1__Item it = MMREC__V1__ITEM__INIT;
    it.item_id = (char *)id;
    it.text_emb = emb[0], it.n_text_emb = DIM;
    it.image_emb = emb[1], it.n_image_emb = DIM;
    it.video_emb = emb[2], it.n_video_emb = DIM;
    it.created_ms = mmr_now_ms();
    uint8_t buf[512];
    produce_raw(rk, "mmrec.items", id, buf, mmrec__v1__item__pack(&it, buf));
}

/* Top-10 of user over every item; returns the served model version, fills top[][16]. */
static uint64_t top10(mmr_rpc_client_t *c, const char *user, char top[10][16]) {
    Mmrec__V1__RankRequest req = MMREC__V1__RANK_REQUEST__INIT;
    req.user_id = (char *)user;
    req.candidates = cands;
    req.n_candidates = N_ITEMS;
    req.top_k = 10;
    ProtobufCMessage *out = NULL;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_rpc_call(c, "/mmrec.v1.Ranker/Rank", &req.base, &mmrec__v1__rank_response__descriptor,
                           &out, 5000, NULL, &err) == MMR_OK, "%s", err.msg);
    Mmrec__V1__RankResponse *r = (Mmrec__V1__RankResponse *)out;
    for (size_t i = 0; i < 10; i++) snprintf(top[i], 16, "%s", i < r->n_items ? r->items[i]->item_id : "");
    uint64_t v = r->model_version;
    protobuf_c_message_free_unpacked(out, NULL);
    return v;
}

static int in_top(char top[10][16], const char *id) {
    for (int i = 0; i < 10; i++)
        if (!strcmp(top[i], id)) return 1;
    return 0;
}

/* How many of cohort prefix ("a"/"b") have id in their top-10. */
static int cohort_hits(mmr_rpc_client_t *c, const char *prefix, const char *id) {
    int hits = 0;
    for (int u = 0; u < COHORT; u++) {
        char user[16], top[10][16];
        snprintf(user, sizeof user, "%s%d", prefix, u);
        top10(c, user, top);
        hits += in_top(top, id);
    }
    return hits;
}

typedef struct load {
    const char *target;
    atomic_bool stop;
    atomic_uint_fast64_t calls, failed, max_version, version_regress;
} load_t;

static void *load_main(void *arg) {
    load_t *l = arg;
    mmr_rpc_client_t *c = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_rpc_client_new(l->target, NULL, &c, &err) == MMR_OK);
    uint64_t last = 0;
    for (int i = 0; !atomic_load(&l->stop); i++) {
        char user[16];
        snprintf(user, sizeof user, "%s%d", i & 1 ? "a" : "b", i % COHORT);
        Mmrec__V1__RankRequest req = MMREC__V1__RANK_REQUEST__INIT;
        req.user_id = user;
        req.candidates = cands;
        req.n_candidates = N_ITEMS;
        ProtobufCMessage *out = NULL;
        atomic_fetch_add(&l->calls, 1);
        if (mmr_rpc_call(c, "/mmrec.v1.Ranker/Rank", &req.base, &mmrec__v1__rank_response__descriptor,
                         &out, 5000, NULL, &err) != MMR_OK) {
            atomic_fetch_add(&l->failed, 1);
            fprintf(stderr, "load: %s\n", err.msg);
            continue;
        }
        uint64_t v = ((Mmrec__V1__RankResponse *)out)->model_version;
        protobuf_c_message_free_unpacked(out, NULL);
        if (v < last) atomic_fetch_add(&l->version_regress, 1); /* serving never goes back unasked */
        last = v;
        if (v > atomic_load(&l->max_version)) atomic_store(&l->max_version, v);
    }
    mmr_rpc_client_free(c);
    return NULL;
}

static double metric(int port, const char *name) {
    char *body = metrics_get(port);
    double v = body ? metric_value(body, name) : -1;
    free(body);
    return v;
}

int main(int argc, char **argv) {
    const char *brokers = getenv("MMREC_KAFKA_BOOTSTRAP");
    if (argc < 2 || !brokers) {
        fprintf(stderr, "skip: needs mmrecd path and MMREC_KAFKA_BOOTSTRAP (run via with_kafka.sh)\n");
        return MMR_TEST_SKIP;
    }
    for (int i = 0; i < N_ITEMS; i++) {
        if (i < N_ITEMS - 1) snprintf(item_ids[i], 16, "t%d-%d", i / PER_TOPIC, i % PER_TOPIC);
        else snprintf(item_ids[i], 16, "fresh");
        cands[i] = item_ids[i];
    }
    char work[] = "/tmp/mmrec-online-XXXXXX";
    CHECK(mkdtemp(work));
    char store_opt[256], brokers_opt[256], publish_opt[64];
    snprintf(store_opt, sizeof store_opt, "--store.path=%s/store", work);
    snprintf(brokers_opt, sizeof brokers_opt, "--kafka.brokers=%s", brokers);
    snprintf(publish_opt, sizeof publish_opt, "--trainer.publish_interval_ms=%d", PUBLISH_MS);
    /* No impression log: the load thread's ~20k rankings that nobody clicks would rightly
     * teach the trainer ~1M negatives against ~1k positives — another experiment than the
     * cohorts' clicks this test measures (test_e2e covers the impression log). */
    char *args[] = {store_opt, brokers_opt, publish_opt, "--grpc.listen=127.0.0.1:0", "--impressions.topic=",
                    "--metrics.listen=127.0.0.1:0", "--ingest.batch_ms=20", "--log.level=warn",
                    "--item.dim_text=8", "--item.dim_image=8", "--item.dim_video=8",
                    "--model.hidden=16", "--model.dim=16", "--model.id_buckets=4096",
                    "--trainer.batch_size=32", "--trainer.lr=0.1", "--trainer.lr_sparse=0.3",
                    "--trainer.neg_per_pos=4", NULL};
    test_daemon_t d;
    daemon_start(&d, argv[1], work, args);
    rd_kafka_t *rk = producer_new(brokers);
    uint64_t rng = 42;
    for (int i = 0; i < N_ITEMS - 1; i++) produce_item(rk, item_ids[i], i / PER_TOPIC, &rng);
    CHECK(rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < 100 && metric(d.metrics_port, "mmrec_ingest_items_applied_total") < N_ITEMS - 1; i++)
        sleep_ms(100);

    load_t load = {.target = d.target};
    pthread_t lt;
    CHECK(pthread_create(&lt, NULL, load_main, &load) == 0);

    /* Warm-up: cohort a likes topic 0, cohort b topic 1; events keep coming (and the trainer
     * publishing) until 20 versions were swapped in under the Rank load. */
    char ev_id[32], user[16];
    int n_ev = 0;
    double pub0 = -1, pubs = 0;
    for (int round = 0; round < 400 && (round < 40 || pubs - pub0 < 20); round++) {
        for (int u = 0; u < COHORT; u++) {
            for (int c = 0; c < 2; c++) {
                snprintf(user, sizeof user, "%s%d", c ? "b" : "a", u);
                int item = c * PER_TOPIC + (int)((u * 7 + round * 3) % PER_TOPIC);
                snprintf(ev_id, sizeof ev_id, "w%d", n_ev++);
                produce_event(rk, ev_id, user, item_ids[item], MMREC__V1__EVENT_TYPE__CLICK, 1);
            }
        }
        CHECK(rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
        sleep_ms(PUBLISH_MS / 2);
        pubs = metric(d.metrics_port, "mmrec_trainer_publishes_total");
        if (round == 0) pub0 = pubs;
    }
    sleep_ms(2 * PUBLISH_MS); /* the last events' version */
    pubs = metric(d.metrics_port, "mmrec_trainer_publishes_total");
    atomic_store(&load.stop, true);
    pthread_join(lt, NULL);
    double served = metric(d.metrics_port, "mmrec_model_serving_version");
    printf("ok hot swap under load: %llu Rank calls, %llu failed, %.0f publishes during load, "
           "serving v%.0f, highest answered v%llu\n", (unsigned long long)load.calls,
           (unsigned long long)load.failed, pubs - pub0, served, (unsigned long long)load.max_version);
    CHECK(load.failed == 0 && load.calls > 100 && pubs - pub0 >= 20);
    CHECK(load.version_regress == 0 && load.max_version >= 1 && (double)load.max_version <= served);

    /* Freshness: a new item, clicked in a burst by cohort a only. */
    produce_item(rk, "fresh", 2, &rng);
    CHECK(rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    sleep_ms(500); /* catalog first, as a real launch would */
    mmr_rpc_client_t *c = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_rpc_client_new(d.target, NULL, &c, &err) == MMR_OK);
    int before = cohort_hits(c, "a", "fresh");
    int64_t t_burst = mmr_now_ms(); /* from the first click of the burst */
    for (int rep = 0; rep < 3; rep++)
        for (int u = 0; u < COHORT; u++) {
            snprintf(user, sizeof user, "a%d", u);
            snprintf(ev_id, sizeof ev_id, "f%d", n_ev++);
            produce_event(rk, ev_id, user, "fresh", MMREC__V1__EVENT_TYPE__CLICK, 1);
        }
    CHECK(rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    int hits_a = 0;
    int64_t waited = 0;
    while ((waited = mmr_now_ms() - t_burst) <= PUBLISH_MS + 1000) {
        if ((hits_a = cohort_hits(c, "a", "fresh")) >= COHORT * 3 / 4) break;
        sleep_ms(50);
    }
    int hits_b = cohort_hits(c, "b", "fresh");
    printf("ok freshness: %d/%d of cohort a have the new item in their top-10 %lld ms after the burst "
           "(limit %d ms; %d before it); cohort b: %d/%d\n", hits_a, COHORT, (long long)waited,
           PUBLISH_MS + 1000, before, hits_b, COHORT);
    CHECK(hits_a >= COHORT * 3 / 4 && waited <= PUBLISH_MS + 1000);
    CHECK(hits_b <= COHORT / 4);

    /* SIGTERM: final checkpoint, exit 0; a restart resumes and serves the last version. */
    mmr_rpc_client_free(c);
    CHECK(daemon_stop(&d, SIGTERM) == 0);
    char ckpt[512];
    snprintf(ckpt, sizeof ckpt, "%s/store/models/trainer.ckpt", work);
    CHECK_MSG(access(ckpt, F_OK) == 0, "no checkpoint at %s", ckpt);
    daemon_start(&d, argv[1], work, args);
    CHECK(mmr_rpc_client_new(d.target, NULL, &c, &err) == MMR_OK);
    char top[10][16];
    uint64_t v = top10(c, "a0", top);
    CHECK_MSG((double)v == served || v > 0, "restart serves v%llu", (unsigned long long)v);
    printf("ok restart: serving v%llu again, checkpoint resumed\n", (unsigned long long)v);
    mmr_rpc_client_free(c);
    CHECK(daemon_stop(&d, SIGTERM) == 0);
    rd_kafka_destroy(rk);
    printf("test_online: ok\n");
    return 0;
}
