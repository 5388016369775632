/* test_ranker.c — the Rank method against a real temporary feature store, called
 * directly (no network): validation errors, unknown / deleted / duplicate candidates,
 * exclude_seen, top_k, cold start, request ids, and deadlines. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mmr_fstore.h"
#include "mmr_ranker.h"
#include "mmr_time.h"
#include "mmrec/v1/ranking.pb-c.h"

static mmr_ranker_t *ranker;

/* Runs one Rank; returns the status; *out valid until the arena is freed. */
static int rank_raw(const uint8_t *buf, size_t len, int64_t deadline_ns, mmr_arena_t *a,
                    Mmrec__V1__RankResponse **out, char *msg) {
    mmr_rpc_request_t req = {buf, len, deadline_ns, a, NULL};
    mmr_rpc_reply_t reply = {0};
    mmr_ranker_handle_rank(ranker, &req, &reply);
    *out = reply.status == MMR_RPC_OK ? (Mmrec__V1__RankResponse *)reply.msg : NULL;
    if (msg) snprintf(msg, 256, "%s", reply.message);
    return reply.status;
}

static int rank(Mmrec__V1__RankRequest *q, mmr_arena_t *a, Mmrec__V1__RankResponse **out, char *msg) {
    uint8_t buf[8192];
    size_t len = mmrec__v1__rank_request__pack(q, buf);
    return rank_raw(buf, len, INT64_MAX, a, out, msg);
}

static void add(mmr_fstore_batch_t *b, const char *eid, const char *u, const char *i, mmr_event_type_t t) {
    mmr_event_t ev = {eid, u, i, t, 1.0f, mmr_now_ms()};
    CHECK(mmr_fstore_batch_add_event(b, &ev, NULL) == 1);
}

int main(void) {
    char dir[] = "/tmp/mmrec-ranker-XXXXXX";
    CHECK(mkdtemp(dir));
    mmr_fstore_t *fs = NULL;
    mmr_err_t err = {0};
    mmr_fstore_opts_t fo = {.path = dir};
    CHECK_MSG(mmr_fstore_open(&fo, &fs, &err) == MMR_OK, "%s", err.msg);
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    add(b, "1", "alice", "a", MMR_EV_CLICK);
    add(b, "2", "bob", "b", MMR_EV_PURCHASE);
    add(b, "3", "carol", "b", MMR_EV_LIKE);
    add(b, "4", "alice", "c", MMR_EV_SKIP);
    float emb[4] = {1, 2, 3, 4};
    mmr_item_t catalog = {.item_id = "d", .emb_dim = {4, 0, 0}, .emb = {emb, NULL, NULL}};
    CHECK(mmr_fstore_batch_put_item(b, &catalog, &err) == MMR_OK);
    mmr_item_t gone = {.item_id = "x", .deleted = 1};
    CHECK(mmr_fstore_batch_put_item(b, &gone, &err) == MMR_OK);
    CHECK(mmr_fstore_batch_commit(b, &err) == MMR_OK);
    mmr_fstore_batch_free(b);
    mmr_ranker_conf_t rc = {.max_candidates = 8};
    CHECK(mmr_ranker_new(&rc, fs, &ranker, &err) == MMR_OK);
    mmr_arena_t *a = mmr_arena_new(4096);
    Mmrec__V1__RankResponse *r;
    char msg[256];

    /* validation */
    CHECK(rank_raw((const uint8_t *)"\xff\xff\xff", 3, INT64_MAX, a, &r, msg) == MMR_RPC_INVALID_ARGUMENT);
    char *cands[10] = {"a", "b", "c", "d", "e", "a", "x", "", "f", "g"};
    Mmrec__V1__RankRequest q = MMREC__V1__RANK_REQUEST__INIT;
    q.candidates = cands;
    q.n_candidates = 2;
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_INVALID_ARGUMENT && strstr(msg, "user_id"));
    q.user_id = "alice";
    q.retrieve_k = 10;
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_INVALID_ARGUMENT && strstr(msg, "not both"));
    q.n_candidates = 0;
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_INVALID_ARGUMENT && strstr(msg, "limit is 8"));
    q.retrieve_k = 5;
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_UNIMPLEMENTED && strstr(msg, "serving model")); /* no registry */
    q.retrieve_k = 0;
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_INVALID_ARGUMENT && strstr(msg, "no candidates"));
    q.n_candidates = 9;
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_INVALID_ARGUMENT && strstr(msg, "limit is 8"));
    q.n_candidates = 8;
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_INVALID_ARGUMENT && strstr(msg, "candidate 7"));
    q.n_candidates = 2;
    q.model_version = 3;
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_NOT_FOUND);
    q.model_version = 0;
    q.experiment = "ab";
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_INVALID_ARGUMENT && strstr(msg, "unknown experiment"));
    q.experiment = "";
    printf("ok validation: undecodable, missing user, both/neither sources, limits, empty id, no model\n");

    /* alice: clicked a (+1), skipped c (-1); b is popular; d only in the catalog; e unknown;
     * a listed twice; x deleted. */
    q.n_candidates = 7;
    q.request_id = "req-1";
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_OK);
    CHECK(!strcmp(r->request_id, "req-1"));
    CHECK_MSG(r->n_items == 4 && r->unknown_candidates == 1, "n=%zu unknown=%u", r->n_items, r->unknown_candidates);
    CHECK(!strcmp(r->items[0]->item_id, "a") && !strcmp(r->items[1]->item_id, "b"));
    CHECK(!strcmp(r->items[2]->item_id, "d") && !strcmp(r->items[3]->item_id, "c"));
    CHECK(r->items[0]->score > r->items[1]->score && r->items[1]->score > r->items[2]->score);
    printf("ok alice: a (clicked) > b (popular) > d (catalog only) > c (skipped); e unknown, x deleted, a once\n");

    q.exclude_seen = 1;
    q.top_k = 1;
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_OK && r->n_items == 1 && !strcmp(r->items[0]->item_id, "b"));
    printf("ok exclude_seen + top_k\n");

    q.user_id = "nobody";
    q.exclude_seen = 0;
    q.top_k = 0;
    q.request_id = "";
    CHECK(rank(&q, a, &r, msg) == MMR_RPC_OK && r->n_items == 4 && !strcmp(r->items[0]->item_id, "b"));
    CHECK(r->request_id[0] != '\0');
    mmr_ranker_stats_t st;
    mmr_ranker_get_stats(ranker, &st);
    CHECK(st.cold_start == 1);
    printf("ok cold start: popularity first, request id generated (%s)\n", r->request_id);

    uint8_t buf[8192];
    size_t len = mmrec__v1__rank_request__pack(&q, buf);
    CHECK(rank_raw(buf, len, mmr_mono_ns() - 1, a, &r, msg) == MMR_RPC_DEADLINE_EXCEEDED);
    printf("ok expired deadline answered DEADLINE_EXCEEDED before scoring\n");

    mmr_arena_free(a);
    mmr_ranker_free(ranker);
    mmr_fstore_close(fs);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return 0;
}
