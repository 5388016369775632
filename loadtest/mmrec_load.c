/* mmrec_load.c — `mmrec-load`: gRPC load generator for mmrecd.
 *
 * This first version is closed-loop: --concurrency callers each send the next Rank
 * (or Health) request when the previous one returns, for --requests calls in all or
 * until --duration seconds pass, whichever comes first. Latencies are kept exactly
 * (one int64 per request) and reported as p50/p90/p99/p99.9/max with errors by gRPC
 * status. It refuses non-loopback targets unless --allow-remote is given. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "mmr_rpc.h"
#include "mmr_time.h"
#include "mmrec/v1/ranking.pb-c.h"

#define MAX_STATUS 17

typedef struct load {
    mmr_rpc_client_t *client;
    const char *method;
    long requests, users, items, candidates;
    int64_t end_ns;
    int deadline_ms;
    atomic_long next;        /* index of the next request to send */
    int64_t *latency_ns;     /* [requests] */
    atomic_long by_status[MAX_STATUS + 1]; /* last slot: transport failures */
} load_t;

static void usage(FILE *out) {
    fprintf(out,
            "usage: mmrec-load [options]\n"
            "  --addr HOST:PORT      target mmrecd (default 127.0.0.1:50051; loopback only)\n"
            "  --method rank|health  what to call (default rank)\n"
            "  --concurrency N       concurrent callers (default 8)\n"
            "  --requests N          total calls (default 10000)\n"
            "  --duration S          stop after S seconds (default 60)\n"
            "  --users N             user ids u0..u(N-1), uniform (default 1000)\n"
            "  --items N             item ids i0..i(N-1) (default 500)\n"
            "  --candidates N        candidates per Rank (default 100)\n"
            "  --deadline-ms N       per-call deadline (default 1000)\n"
            "  --allow-remote        permit a non-loopback target\n"
            "  --help                this text\n");
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static void *caller(void *arg) {
    load_t *l = arg;
    char **cands = calloc((size_t)l->candidates, sizeof *cands);
    char *pool = malloc((size_t)l->candidates * 24);
    char user[32];
    for (long i; (i = atomic_fetch_add(&l->next, 1)) < l->requests;) {
        if (mmr_mono_ns() > l->end_ns) { atomic_fetch_sub(&l->next, 1); break; }
        Mmrec__V1__RankRequest rq = MMREC__V1__RANK_REQUEST__INIT;
        Grpc__Health__V1__HealthCheckRequest hq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        const ProtobufCMessage *req = &hq.base;
        const ProtobufCMessageDescriptor *desc = &grpc__health__v1__health_check_response__descriptor;
        if (strcmp(l->method, "rank") == 0) {
            snprintf(user, sizeof user, "u%llu", (unsigned long long)(mix((uint64_t)i) % (uint64_t)l->users));
            for (long c = 0; c < l->candidates; c++) {
                cands[c] = pool + c * 24;
                snprintf(cands[c], 24, "i%llu", (unsigned long long)(mix((uint64_t)(i * 1000003 + c)) % (uint64_t)l->items));
            }
            rq.user_id = user;
            rq.candidates = cands;
            rq.n_candidates = (size_t)l->candidates;
            rq.top_k = 10;
            req = &rq.base;
            desc = &mmrec__v1__rank_response__descriptor;
        }
        ProtobufCMessage *resp = NULL;
        int status = -1;
        int64_t t0 = mmr_mono_ns();
        mmr_rpc_call(l->client, strcmp(l->method, "rank") == 0 ? "/mmrec.v1.Ranker/Rank" : "/grpc.health.v1.Health/Check",
                     req, desc, &resp, l->deadline_ms, &status, NULL);
        l->latency_ns[i] = mmr_mono_ns() - t0;
        atomic_fetch_add(&l->by_status[status >= 0 && status < MAX_STATUS ? status : MAX_STATUS], 1);
        if (resp) protobuf_c_message_free_unpacked(resp, NULL);
    }
    free(pool);
    free(cands);
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static const char *opt(int argc, char **argv, const char *name, const char *def) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

int main(int argc, char **argv) {
    static const char *const valued[] = {"--addr", "--method", "--concurrency", "--requests", "--duration",
                                         "--users", "--items", "--candidates", "--deadline-ms", NULL};
    int allow_remote = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--allow-remote")) { allow_remote = 1; continue; }
        int known = 0;
        for (const char *const *v = valued; *v; v++) known |= !strcmp(argv[i], *v);
        if (!known || i + 1 >= argc) {
            fprintf(stderr, "mmrec-load: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        i++;
    }
    load_t l = {0};
    const char *addr = opt(argc, argv, "--addr", "127.0.0.1:50051");
    l.method = opt(argc, argv, "--method", "rank");
    long conc = atol(opt(argc, argv, "--concurrency", "8"));
    l.requests = atol(opt(argc, argv, "--requests", "10000"));
    double duration = atof(opt(argc, argv, "--duration", "60"));
    l.users = atol(opt(argc, argv, "--users", "1000"));
    l.items = atol(opt(argc, argv, "--items", "500"));
    l.candidates = atol(opt(argc, argv, "--candidates", "100"));
    l.deadline_ms = atoi(opt(argc, argv, "--deadline-ms", "1000"));
    if (conc < 1 || conc > 1024 || l.requests < 1 || duration <= 0 || l.users < 1 || l.items < 1 ||
        l.candidates < 1 || l.deadline_ms < 1 || (strcmp(l.method, "rank") && strcmp(l.method, "health"))) {
        fprintf(stderr, "mmrec-load: option out of range\n");
        return 2;
    }
    if (!allow_remote && strncmp(addr, "127.", 4) && strncmp(addr, "localhost:", 10) && strncmp(addr, "[::1]:", 6)) {
        fprintf(stderr, "mmrec-load: %s is not a loopback address (use --allow-remote)\n", addr);
        return 2;
    }
    mmr_err_t err = {0};
    if (mmr_rpc_client_new(addr, NULL, &l.client, &err) != MMR_OK) {
        fprintf(stderr, "mmrec-load: %s\n", err.msg);
        return 1;
    }
    l.latency_ns = calloc((size_t)l.requests, sizeof *l.latency_ns);
    int64_t t0 = mmr_mono_ns();
    l.end_ns = t0 + (int64_t)(duration * 1e9);
    pthread_t *th = calloc((size_t)conc, sizeof *th);
    for (long i = 0; i < conc; i++) pthread_create(&th[i], NULL, caller, &l);
    for (long i = 0; i < conc; i++) pthread_join(th[i], NULL);
    double secs = (mmr_mono_ns() - t0) / 1e9;
    long done = atomic_load(&l.next);
    if (done > l.requests) done = l.requests;
    qsort(l.latency_ns, (size_t)done, sizeof *l.latency_ns, cmp_i64);
    printf("method %s  concurrency %ld  requests %ld  in %.2f s  = %.0f req/s\n", l.method, conc, done, secs, done / secs);
    if (done > 0) {
        static const double q[] = {0.5, 0.9, 0.99, 0.999};
        printf("latency ms:");
        for (int i = 0; i < 4; i++) printf("  p%g %.3f", q[i] * 100, l.latency_ns[(long)(q[i] * (done - 1))] / 1e6);
        printf("  max %.3f\n", l.latency_ns[done - 1] / 1e6);
    }
    long errors = 0;
    for (int s = 0; s <= MAX_STATUS; s++) {
        long n = atomic_load(&l.by_status[s]);
        if (n && s != 0) {
            if (s == MAX_STATUS) printf("transport failures: %ld\n", n);
            else printf("grpc status %d: %ld\n", s, n);
            errors += n;
        }
    }
    printf("ok %ld  errors %ld\n", atomic_load(&l.by_status[0]), errors);
    free(th);
    free(l.latency_ns);
    mmr_rpc_client_free(l.client);
    return 0;
}
