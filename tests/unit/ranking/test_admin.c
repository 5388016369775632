/* test_admin.c — admin RPCs and Rank with a model through the real gRPC server on
 * loopback, with bearer-token auth on: ListModels / Promote / Pin / unpin / Rollback and
 * their errors, auth applying to admin methods, Rank answering with the serving version,
 * a pinned version, an experiment arm (counted), retrieve_k, exclude_seen and explain; and
 * 20 publishes while Rank is called continuously (zero failed calls, valid versions). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "mmr_admin.h"
#include "mmr_ranker.h"
#include "mmr_registry.h"
#include "mmr_rpc.h"
#include "mmr_server.h"
#include "model_test.h"
#include "mmrec/v1/admin.pb-c.h"
#include "mmrec/v1/ranking.pb-c.h"

static mmr_rpc_client_t *cli;
static atomic_int stop;
static atomic_long rank_ok, rank_fail;
static _Atomic uint64_t max_version;

static int call(mmr_rpc_client_t *c, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *d, ProtobufCMessage **out, char *msg) {
    int status = -1;
    mmr_err_t err = {0};
    *out = NULL;
    mmr_rpc_call(c, method, req, d, out, 5000, &status, &err);
    if (msg) snprintf(msg, 256, "%s", err.msg);
    return status;
}

static Mmrec__V1__ModelChangeResponse *change(const char *method, uint64_t v, int expect) {
    ProtobufCMessage *out = NULL;
    char msg[256];
    int st;
    if (!strcmp(method, "Rollback")) {
        Mmrec__V1__RollbackRequest q = MMREC__V1__ROLLBACK_REQUEST__INIT;
        st = call(cli, "/mmrec.v1.Admin/Rollback", &q.base, &mmrec__v1__model_change_response__descriptor, &out, msg);
    } else if (!strcmp(method, "Pin")) {
        Mmrec__V1__PinRequest q = MMREC__V1__PIN_REQUEST__INIT;
        q.version = v;
        st = call(cli, "/mmrec.v1.Admin/Pin", &q.base, &mmrec__v1__model_change_response__descriptor, &out, msg);
    } else {
        Mmrec__V1__PromoteRequest q = MMREC__V1__PROMOTE_REQUEST__INIT;
        q.version = v;
        st = call(cli, "/mmrec.v1.Admin/Promote", &q.base, &mmrec__v1__model_change_response__descriptor, &out, msg);
    }
    CHECK_MSG(st == expect, "%s %llu: status %d (%s)", method, (unsigned long long)v, st, msg);
    return (Mmrec__V1__ModelChangeResponse *)out;
}

static Mmrec__V1__RankResponse *rank(Mmrec__V1__RankRequest *q, int expect, char *msg) {
    ProtobufCMessage *out = NULL;
    int st = call(cli, "/mmrec.v1.Ranker/Rank", &q->base, &mmrec__v1__rank_response__descriptor, &out, msg);
    CHECK_MSG(st == expect, "Rank: status %d (%s)", st, msg);
    return (Mmrec__V1__RankResponse *)out;
}

static void *ranker_loop(void *arg) {
    char *cands[] = {"i1", "i2", "i3", "i4", "i5"};
    while (!atomic_load(&stop)) {
        Mmrec__V1__RankRequest q = MMREC__V1__RANK_REQUEST__INIT;
        q.user_id = "u1";
        q.candidates = cands;
        q.n_candidates = 5;
        ProtobufCMessage *out = NULL;
        int st = call(cli, "/mmrec.v1.Ranker/Rank", &q.base, &mmrec__v1__rank_response__descriptor, &out, NULL);
        Mmrec__V1__RankResponse *r = (Mmrec__V1__RankResponse *)out;
        if (st == 0 && r->model_version >= 1 && r->model_version <= atomic_load(&max_version) && r->n_items == 5)
            atomic_fetch_add(&rank_ok, 1);
        else
            atomic_fetch_add(&rank_fail, 1);
        if (out) protobuf_c_message_free_unpacked(out, NULL);
    }
    return NULL;
}

/* The last impression logged (written on a server thread). */
static pthread_mutex_t imp_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_imp_version;
static char last_arm[160];
static void on_impression(void *opaque, const Mmrec__V1__Impression *imp) {
    pthread_mutex_lock(&imp_mu);
    last_imp_version = imp->model_version;
    snprintf(last_arm, sizeof last_arm, "%s", imp->experiment_arm);
    pthread_mutex_unlock(&imp_mu);
}

static int last_impression_is(uint64_t version, const char *arm) {
    pthread_mutex_lock(&imp_mu);
    int ok = last_imp_version == version && (!arm || !strcmp(last_arm, arm));
    pthread_mutex_unlock(&imp_mu);
    return ok;
}

int main(void) {
    char dir[64], model_dir[128], tokens[128];
    mmr_fstore_t *fs = mt_store(dir);
    snprintf(model_dir, sizeof model_dir, "%s/models", dir);
    snprintf(tokens, sizeof tokens, "%s/tokens", dir);
    FILE *f = fopen(tokens, "w");
    CHECK(f && fputs("ops s3cret-admin-token-0123\n", f) >= 0 && fclose(f) == 0);
    uint64_t rng = 9;
    mt_put_items(fs, 0, 60, &rng);
    mt_put_events(fs, 4, 10, 60, &rng);
    mmr_err_t err = {0};
    mmr_registry_conf_t rcf = {.model_dir = model_dir, .keep = 30};
    mmr_registry_t *reg = NULL;
    CHECK_OK(mmr_registry_open(&rcf, fs, &reg, &err), &err);
    mmr_ranker_conf_t kc = {.max_candidates = 50, .registry = reg, .impression_fn = on_impression};
    mmr_ranker_t *ranker = NULL;
    CHECK_OK(mmr_ranker_new(&kc, fs, &ranker, &err), &err);
    mmr_server_conf_t sc = {.listen = "127.0.0.1:0", .threads = 2, .auth_tokens_file = tokens};
    mmr_server_t *srv = NULL;
    CHECK_OK(mmr_server_new(&sc, &srv, &err), &err);
    CHECK_OK(mmr_server_add_method(srv, "/mmrec.v1.Ranker/Rank", mmr_ranker_handle_rank, ranker, &err), &err);
    CHECK_OK(mmr_admin_register(srv, reg, &err), &err);
    CHECK_OK(mmr_server_start(srv, &err), &err);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", mmr_server_port(srv));
    mmr_rpc_client_opts_t good = {.bearer_token = "s3cret-admin-token-0123"}, bad = {.bearer_token = "wrong"};
    mmr_rpc_client_t *anon = NULL, *wrong = NULL;
    CHECK_OK(mmr_rpc_client_new(target, &good, &cli, &err), &err);
    CHECK_OK(mmr_rpc_client_new(target, NULL, &anon, &err), &err);
    CHECK_OK(mmr_rpc_client_new(target, &bad, &wrong, &err), &err);

    /* no model yet: Rank falls back to the baseline (version 0); retrieve_k cannot work */
    char *cands[] = {"i1", "i2", "i3", "nosuch", "i1"};
    Mmrec__V1__RankRequest q = MMREC__V1__RANK_REQUEST__INIT;
    q.user_id = "u1";
    q.candidates = cands;
    q.n_candidates = 5;
    char msg[256];
    Mmrec__V1__RankResponse *r = rank(&q, 0, msg);
    CHECK(r->model_version == 0 && r->n_items == 3 && r->unknown_candidates == 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* auth applies to admin methods exactly as to Rank */
    Mmrec__V1__ListModelsRequest lq = MMREC__V1__LIST_MODELS_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    CHECK(call(anon, "/mmrec.v1.Admin/ListModels", &lq.base, &mmrec__v1__list_models_response__descriptor, &out,
               msg) == MMR_RPC_UNAUTHENTICATED);
    Mmrec__V1__PinRequest pq = MMREC__V1__PIN_REQUEST__INIT;
    pq.version = 1;
    CHECK(call(wrong, "/mmrec.v1.Admin/Pin", &pq.base, &mmrec__v1__model_change_response__descriptor, &out,
               msg) == MMR_RPC_UNAUTHENTICATED);
    CHECK(call(anon, "/mmrec.v1.Ranker/Rank", &q.base, &mmrec__v1__rank_response__descriptor, &out,
               msg) == MMR_RPC_UNAUTHENTICATED);
    printf("ok admin methods refuse a missing or wrong token (UNAUTHENTICATED)\n");

    for (uint64_t v = 1; v <= 3; v++) CHECK_OK(mmr_registry_publish(reg, mt_tower(v), v * 100, NULL, &err), &err);
    atomic_store(&max_version, 3);
    CHECK(call(cli, "/mmrec.v1.Admin/ListModels", &lq.base, &mmrec__v1__list_models_response__descriptor, &out,
               msg) == 0);
    Mmrec__V1__ListModelsResponse *lr = (Mmrec__V1__ListModelsResponse *)out;
    CHECK(lr->n_models == 3 && lr->serving_version == 3 && !lr->pinned && lr->models[2]->serving &&
          lr->models[1]->examples_seen == 200 && lr->models[2]->loaded);
    protobuf_c_message_free_unpacked(out, NULL);
    Mmrec__V1__ModelChangeResponse *cr = change("Promote", 1, 0);
    CHECK(cr->serving_version == 1 && cr->previous_version == 3 && !cr->pinned);
    protobuf_c_message_free_unpacked(&cr->base, NULL);
    cr = change("Pin", 2, 0);
    CHECK(cr->serving_version == 2 && cr->previous_version == 1 && cr->pinned);
    protobuf_c_message_free_unpacked(&cr->base, NULL);
    cr = change("Pin", 0, 0);
    CHECK(cr->serving_version == 2 && !cr->pinned);
    protobuf_c_message_free_unpacked(&cr->base, NULL);
    cr = change("Rollback", 0, 0);
    CHECK(cr->serving_version == 1 && cr->previous_version == 2 && cr->pinned);
    protobuf_c_message_free_unpacked(&cr->base, NULL);
    CHECK(change("Promote", 42, MMR_RPC_NOT_FOUND) == NULL);
    CHECK(change("Pin", 42, MMR_RPC_NOT_FOUND) == NULL);
    CHECK(change("Promote", 0, MMR_RPC_INVALID_ARGUMENT) == NULL);
    printf("ok ListModels / Promote / Pin / unpin / Rollback; unknown version NOT_FOUND\n");

    /* Rank with a model */
    r = rank(&q, 0, msg);
    CHECK(r->model_version == 1 && r->n_items == 3 && r->unknown_candidates == 1 && last_impression_is(1, ""));
    CHECK(r->items[0]->score >= r->items[1]->score && r->items[0]->score > 0 && r->items[0]->score < 1);
    CHECK(!r->items[0]->modality_weights);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    q.model_version = 3;
    q.explain = 1;
    r = rank(&q, 0, msg);
    CHECK(r->model_version == 3 && r->items[0]->modality_weights);
    Mmrec__V1__ModalityWeights *w = r->items[0]->modality_weights;
    CHECK(fabsf(w->text + w->image + w->video - 1.0f) < 1e-5f);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    q.model_version = 77;
    CHECK(rank(&q, MMR_RPC_NOT_FOUND, msg) == NULL && strstr(msg, "77"));
    q.model_version = 0;
    q.explain = 0;
    q.experiment = "nope";
    CHECK(rank(&q, MMR_RPC_INVALID_ARGUMENT, msg) == NULL && strstr(msg, "nope"));
    CHECK_OK(mmr_registry_set_experiments(reg, "ab=ctl:2:1,trt:3:1", &err), &err);
    q.experiment = "ab";
    r = rank(&q, 0, msg);
    mmr_registry_arm_t arm;
    CHECK_OK(mmr_registry_assign(reg, "ab", "u1", &arm, &err), &err);
    char tag[160];
    snprintf(tag, sizeof tag, "ab/%s", arm.arm);
    CHECK(r->model_version == arm.version && last_impression_is(arm.version, tag));
    protobuf_c_message_free_unpacked(&r->base, NULL);
    mmr_registry_arm_stats_t as[2];
    CHECK(mmr_registry_experiment_stats(reg, as, 2) == 2);
    CHECK(as[0].impressions + as[1].impressions == 3);
    q.model_version = 2;
    CHECK(rank(&q, MMR_RPC_INVALID_ARGUMENT, msg) == NULL && strstr(msg, "not both"));
    q.model_version = 0;
    q.experiment = "";
    printf("ok Rank: serving version, pinned version + explain, experiment arm %s counted, errors\n", tag);

    /* retrieve_k: the model's top-k, seen items excluded, deleted never */
    q.candidates = NULL;
    q.n_candidates = 0;
    q.retrieve_k = 51;
    CHECK(rank(&q, MMR_RPC_INVALID_ARGUMENT, msg) == NULL && strstr(msg, "limit"));
    q.retrieve_k = 50;
    q.top_k = 10;
    r = rank(&q, 0, msg);
    CHECK(r->n_items == 10 && r->model_version == 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    q.exclude_seen = 1;
    q.top_k = 0;
    r = rank(&q, 0, msg);
    mmr_user_t *u = NULL;
    CHECK_OK(mmr_fstore_get_user(fs, "u1", &u, &err), &err);
    for (size_t i = 0; i < r->n_items; i++)
        for (uint32_t j = 0; j < u->n; j++) CHECK(strcmp(r->items[i]->item_id, u->recent[j].item_id));
    CHECK(r->n_items == 50 && u->n > 0);
    printf("ok retrieve_k 50: %zu items, none the user has seen (%u recent interactions)\n", r->n_items, u->n);
    mmr_user_free(u);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    CHECK_OK(mmr_registry_set_experiments(reg, "", &err), &err);

    /* hot swap under Rank load */
    CHECK_OK(mmr_registry_unpin(reg, &err), &err);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, ranker_loop, NULL);
    for (uint64_t v = 4; v < 24; v++) {
        atomic_store(&max_version, v);
        CHECK_OK(mmr_registry_publish(reg, mt_tower(v), v, NULL, &err), &err);
        usleep(5000);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK_MSG(atomic_load(&rank_fail) == 0 && atomic_load(&rank_ok) > 20, "ok %ld failed %ld",
              atomic_load(&rank_ok), atomic_load(&rank_fail));
    printf("ok 20 publishes under continuous Rank: %ld calls, 0 failed, every version valid\n",
           atomic_load(&rank_ok));

    mmr_rpc_client_free(cli);
    mmr_rpc_client_free(anon);
    mmr_rpc_client_free(wrong);
    mmr_server_free(srv);
    mmr_ranker_free(ranker);
    mmr_registry_free(reg);
    mmr_fstore_close(fs);
    mt_rmdir(dir);
    return 0;
}
