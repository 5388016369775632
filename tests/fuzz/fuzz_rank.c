/* fuzz_rank.c — libFuzzer harness for RankRequest validation and handling:
 * mmr_ranker_handle_rank on the raw request bytes, against a real temporary feature store
 * (RocksDB under /dev/shm or /tmp, opened once in LLVMFuzzerInitialize with a few users,
 * items, a catalog item and a tombstone; removed at exit), with a fresh per-input arena as
 * the server gives each call. A reply must carry a known status; an OK reply's message
 * must be a well-formed RankResponse (packed once to walk it). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmr_arena.h"
#include "mmr_fstore.h"
#include "mmr_ranker.h"
#include "mmr_time.h"
#include "mmrec/v1/ranking.pb-c.h"

static char dir[256];
static mmr_fstore_t *fs;
static mmr_ranker_t *ranker;

static void cleanup(void) {
    mmr_ranker_free(ranker);
    mmr_fstore_close(fs);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz_rank: could not remove %s\n", dir);
}

static void die(const char *what, const mmr_err_t *err) {
    fprintf(stderr, "fuzz_rank: %s: %s\n", what, err->msg);
    exit(1);
}

static void add(mmr_fstore_batch_t *b, const char *eid, const char *u, const char *i,
                mmr_event_type_t t, float v) {
    mmr_event_t ev = {eid, u, i, t, v, mmr_now_ms()};
    if (mmr_fstore_batch_add_event(b, &ev, NULL) != 1) { fprintf(stderr, "add %s\n", eid); exit(1); }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/mmrec-fuzz-rank-XXXXXX", base);
    if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
    mmr_err_t err = {0};
    mmr_fstore_opts_t fo = {.path = dir, .block_cache_mb = 8};
    if (mmr_fstore_open(&fo, &fs, &err) != MMR_OK) die("fstore_open", &err);
    atexit(cleanup);
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    add(b, "1", "alice", "a", MMR_EV_CLICK, 1);
    add(b, "2", "bob", "b", MMR_EV_PURCHASE, 1);
    add(b, "3", "carol", "b", MMR_EV_LIKE, 1);
    add(b, "4", "alice", "c", MMR_EV_SKIP, 1);
    add(b, "5", "alice", "b", MMR_EV_WATCH, 95);
    add(b, "6", "bob", "a", MMR_EV_RATING, 5);
    float emb[4] = {1, 2, 3, 4};
    mmr_item_t catalog = {.item_id = "d", .emb_dim = {4, 0, 0}, .emb = {emb, NULL, NULL}};
    if (mmr_fstore_batch_put_item(b, &catalog, &err) != MMR_OK) die("put d", &err);
    mmr_item_t gone = {.item_id = "x", .deleted = 1};
    if (mmr_fstore_batch_put_item(b, &gone, &err) != MMR_OK) die("put x", &err);
    if (mmr_fstore_batch_commit(b, &err) != MMR_OK) die("commit", &err);
    mmr_fstore_batch_free(b);
    mmr_ranker_conf_t rc = {.max_candidates = 64};
    if (mmr_ranker_new(&rc, fs, &ranker, &err) != MMR_OK) die("ranker_new", &err);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *p = size ? malloc(size) : NULL; /* own allocation: reads past the end trap */
    if (size) memcpy(p, data, size);
    mmr_arena_t *a = mmr_arena_new(4096);
    if (!a) abort();
    mmr_rpc_request_t req = {p, size, INT64_MAX, a, NULL};
    mmr_rpc_reply_t reply = {0};
    mmr_ranker_handle_rank(ranker, &req, &reply);
    switch (reply.status) {
    case MMR_RPC_OK: {
        if (!reply.msg) abort();
        size_t n = protobuf_c_message_get_packed_size(reply.msg);
        uint8_t *out = malloc(n ? n : 1);
        if (protobuf_c_message_pack(reply.msg, out) != n) abort();
        free(out);
        break;
    }
    case MMR_RPC_INVALID_ARGUMENT: case MMR_RPC_UNIMPLEMENTED: case MMR_RPC_NOT_FOUND:
    case MMR_RPC_FAILED_PRECONDITION: case MMR_RPC_RESOURCE_EXHAUSTED:
    case MMR_RPC_INTERNAL: case MMR_RPC_UNAVAILABLE:
        if (memchr(reply.message, '\0', sizeof reply.message) == NULL) abort();
        break;
    default:
        abort();
    }
    mmr_arena_free(a);
    free(p);
    return 0;
}
