/* test_server.c — the gRPC serving engine over real gRPC on loopback: health Check,
 * unknown methods, deadlines dropped before work, graceful drain, handler slots (on an
 * acceptor and a worker, a call waiting for one), load shedding. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "grpc/health/v1/health.pb-c.h"
#include "mmr_rpc.h"
#include "mmr_server.h"

static atomic_int handled, on_acceptor, on_worker; /* handler runs, by thread kind */

/* Test method: the request's `service` field says how long to work, e.g. "sleep:300". */
static void slow_handler(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply) {
    Grpc__Health__V1__HealthCheckRequest *in =
        grpc__health__v1__health_check_request__unpack(NULL, req->len, req->data);
    atomic_fetch_add(&handled, 1);
    char name[16] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    if (!strcmp(name, "mmr-acceptor")) atomic_fetch_add(&on_acceptor, 1);
    if (!strcmp(name, "mmr-worker")) atomic_fetch_add(&on_worker, 1);
    int ms = 0;
    if (in && sscanf(in->service, "sleep:%d", &ms) == 1) usleep((useconds_t)ms * 1000);
    grpc__health__v1__health_check_request__free_unpacked(in, NULL);
    Grpc__Health__V1__HealthCheckResponse *out = mmr_arena_alloc(req->arena, sizeof *out);
    grpc__health__v1__health_check_response__init(out);
    out->status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    reply->status = MMR_RPC_OK;
    reply->msg = &out->base;
}

typedef struct call_args {
    mmr_rpc_client_t *c;
    const char *method;
    const char *service;
    int deadline_ms;
    int status;
} call_args_t;

static void *do_call(void *arg) {
    call_args_t *a = arg;
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)a->service;
    ProtobufCMessage *resp = NULL;
    mmr_rpc_call(a->c, a->method, &req.base, &grpc__health__v1__health_check_response__descriptor,
                 &resp, a->deadline_ms, &a->status, NULL);
    if (resp) protobuf_c_message_free_unpacked(resp, NULL);
    return NULL;
}

static int call(mmr_rpc_client_t *c, const char *method, const char *service, int deadline_ms) {
    call_args_t a = {c, method, service, deadline_ms, -1};
    do_call(&a);
    return a.status;
}

static int health(mmr_rpc_client_t *c, const char *service, int *serving) {
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    ProtobufCMessage *resp = NULL;
    int status = -1;
    mmr_rpc_call(c, "/grpc.health.v1.Health/Check", &req.base,
                 &grpc__health__v1__health_check_response__descriptor, &resp, 2000, &status, NULL);
    if (resp) {
        *serving = ((Grpc__Health__V1__HealthCheckResponse *)resp)->status;
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return status;
}

static mmr_server_t *start_server(int threads, uint32_t max_inflight, char *target, size_t n) {
    mmr_server_conf_t conf = {.listen = "127.0.0.1:0", .threads = threads, .max_inflight = max_inflight};
    mmr_server_t *s = NULL;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_server_new(&conf, &s, &err) == MMR_OK, "%s", err.msg);
    CHECK(mmr_server_add_method(s, "/test.Slow/Work", slow_handler, NULL, &err) == MMR_OK);
    CHECK(mmr_server_start(s, &err) == MMR_OK);
    snprintf(target, n, "127.0.0.1:%d", mmr_server_port(s));
    return s;
}

/* The server releases an in-flight slot when the call completes on its side, which may
 * be just after the client has its answer: wait (up to 1 s) for every slot to be free. */
static void wait_idle(mmr_server_t *s, mmr_server_stats_t *st) {
    for (int i = 0; i < 100; i++) {
        mmr_server_get_stats(s, st);
        if (st->inflight == 0) return;
        usleep(10 * 1000);
    }
}

/* A server with a connected client whose channel is warm and whose warm-up call has
 * left the server (it must not hold a slot in what follows). */
static mmr_server_t *start_warm(int threads, uint32_t max_inflight, char *target, size_t n,
                                mmr_rpc_client_t **c) {
    mmr_server_t *s = start_server(threads, max_inflight, target, n);
    mmr_err_t err = {0};
    CHECK(mmr_rpc_client_new(target, NULL, c, &err) == MMR_OK);
    CHECK(call(*c, "/test.Slow/Work", "sleep:0", 2000) == MMR_RPC_OK);
    mmr_server_stats_t st;
    wait_idle(s, &st);
    return s;
}

int main(void) {
    char target[64];
    mmr_err_t err = {0};

    /* health, unknown method and service */
    mmr_server_t *s = start_server(2, 64, target, sizeof target);
    mmr_rpc_client_t *c = NULL;
    CHECK(mmr_rpc_client_new(target, NULL, &c, &err) == MMR_OK);
    int serving = -1;
    CHECK(health(c, "", &serving) == 0 && serving == 2); /* NOT_SERVING before set_serving */
    mmr_server_set_serving(s, 1);
    CHECK(health(c, "", &serving) == 0 && serving == 1);
    CHECK(health(c, "test.Slow", &serving) == 0 && serving == 1);
    CHECK(health(c, "no.Such", &serving) == MMR_RPC_NOT_FOUND);
    CHECK(call(c, "/no.Such/Method", "", 2000) == MMR_RPC_UNIMPLEMENTED);
    CHECK(call(c, "/test.Slow/Work", "sleep:0", 2000) == MMR_RPC_OK);
    CHECK(call(c, "/test.Slow/Work", "sleep:30", 2000) == MMR_RPC_OK);
    printf("ok health check, unknown method/service\n");

    /* per-method counters: status and latency (the 30 ms call lands in the 25-50 ms bucket) */
    int found = 0;
    for (int i = 0; i < mmr_server_method_count(s); i++) {
        mmr_server_method_stats_t m;
        mmr_server_get_method_stats(s, i, &m);
        if (!strcmp(m.path, "/test.Slow/Work")) {
            found += 1;
            uint64_t n = 0;
            for (int b = 0; b < MMR_SERVER_LATENCY_BUCKETS; b++) n += m.latency[b];
            CHECK_MSG(m.by_status[MMR_RPC_OK] == 2 && n == 2, "ok %llu latency count %llu",
                      (unsigned long long)m.by_status[MMR_RPC_OK], (unsigned long long)n);
            CHECK(m.latency[9] == 1 && m.latency_sum_ms >= 30.0 && mmr_server_latency_le[9] == 50);
        }
        if (!strcmp(m.path, "unknown")) { found += 2; CHECK(m.by_status[MMR_RPC_UNIMPLEMENTED] == 1); }
    }
    CHECK(found == 3);
    printf("ok per-method status counts and latency histogram\n");

    /* deadline: a call queued behind a slow one expires and is dropped before the handler */
    mmr_server_shutdown(s, 1000);
    mmr_server_free(s);
    mmr_rpc_client_free(c);
    s = start_server(1, 64, target, sizeof target);
    CHECK(mmr_rpc_client_new(target, NULL, &c, &err) == MMR_OK);
    CHECK(call(c, "/test.Slow/Work", "sleep:0", 2000) == MMR_RPC_OK); /* warm the channel */
    atomic_store(&handled, 0);
    call_args_t slow = {c, "/test.Slow/Work", "sleep:400", 5000, -1};
    pthread_t th;
    pthread_create(&th, NULL, do_call, &slow);
    usleep(100 * 1000);
    CHECK(call(c, "/test.Slow/Work", "sleep:0", 100) == MMR_RPC_DEADLINE_EXCEEDED);
    pthread_join(th, NULL);
    CHECK(slow.status == MMR_RPC_OK);
    usleep(100 * 1000);
    mmr_server_stats_t st;
    mmr_server_get_stats(s, &st);
    CHECK_MSG(atomic_load(&handled) == 1, "handled %d", atomic_load(&handled));
    CHECK(st.expired == 1);
    printf("ok expired call dropped before work (handled=%d expired=%llu)\n", atomic_load(&handled),
           (unsigned long long)st.expired);


    /* graceful drain: a call in flight at shutdown completes OK */
    call_args_t inflight = {c, "/test.Slow/Work", "sleep:300", 5000, -1};
    pthread_create(&th, NULL, do_call, &inflight);
    usleep(100 * 1000);
    mmr_server_shutdown(s, 3000);
    pthread_join(th, NULL);
    CHECK_MSG(inflight.status == MMR_RPC_OK, "status %d", inflight.status);
    mmr_server_free(s);
    mmr_rpc_client_free(c);
    printf("ok in-flight call drained on shutdown\n");

    /* two slots (two acceptors, two workers): of three slow calls two run at once, one on
     * the acceptor that admitted it and one on a worker (one acceptor stays out of
     * handlers); the third waits for a slot while health checks are still answered, and
     * runs when a slot frees */
    s = start_warm(2, 64, target, sizeof target, &c);
    mmr_server_set_serving(s, 1);
    atomic_store(&handled, 0);
    atomic_store(&on_acceptor, 0);
    atomic_store(&on_worker, 0);
    call_args_t three[3];
    pthread_t th3[3];
    for (int i = 0; i < 3; i++) {
        three[i] = (call_args_t){c, "/test.Slow/Work", "sleep:1000", 10000, -1};
        pthread_create(&th3[i], NULL, do_call, &three[i]);
        usleep(100 * 1000);
    }
    CHECK_MSG(atomic_load(&handled) == 2, "handled %d with two slots busy", atomic_load(&handled));
    CHECK_MSG(atomic_load(&on_acceptor) == 1 && atomic_load(&on_worker) == 1, "on acceptor %d, on worker %d",
              atomic_load(&on_acceptor), atomic_load(&on_worker));
    CHECK(health(c, "", &serving) == 0 && serving == 1);
    CHECK_MSG(atomic_load(&handled) == 2, "health waited for a slot (handled %d)", atomic_load(&handled));
    for (int i = 0; i < 3; i++) {
        pthread_join(th3[i], NULL);
        CHECK_MSG(three[i].status == MMR_RPC_OK, "call %d status %d", i, three[i].status);
    }
    CHECK(atomic_load(&handled) == 3);
    mmr_server_free(s);
    mmr_rpc_client_free(c);
    printf("ok two slots: two calls run at once (acceptor, worker), the third waits; health answered meanwhile\n");

    /* shutdown whose grace runs out with a call still waiting for the slot: the waiting
     * call is run (its answer fails) and freed, nothing stays in flight */
    s = start_warm(1, 64, target, sizeof target, &c);
    atomic_store(&handled, 0);
    pthread_t th2;
    call_args_t busy = {c, "/test.Slow/Work", "sleep:600", 5000, -1};
    call_args_t waiting = {c, "/test.Slow/Work", "sleep:0", 5000, -1};
    pthread_create(&th, NULL, do_call, &busy);
    usleep(100 * 1000);
    pthread_create(&th2, NULL, do_call, &waiting);
    usleep(100 * 1000);
    mmr_server_shutdown(s, 100);
    mmr_server_get_stats(s, &st);
    CHECK_MSG(atomic_load(&handled) == 2 && st.inflight == 0, "handled %d inflight %u",
              atomic_load(&handled), st.inflight);
    pthread_join(th, NULL);
    pthread_join(th2, NULL);
    mmr_server_free(s);
    mmr_rpc_client_free(c);
    printf("ok shutdown after the grace: the waiting call run and freed (inflight 0)\n");

    /* shedding: 4 slots, 2 admitted at a time: of 4 concurrent slow calls, 2 are shed */
    s = start_warm(4, 2, target, sizeof target, &c);
    call_args_t burst[4];
    pthread_t ths[4];
    for (int i = 0; i < 4; i++) {
        burst[i] = (call_args_t){c, "/test.Slow/Work", "sleep:500", 5000, -1};
        pthread_create(&ths[i], NULL, do_call, &burst[i]);
    }
    int ok = 0, shed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(ths[i], NULL);
        ok += burst[i].status == MMR_RPC_OK;
        shed += burst[i].status == MMR_RPC_RESOURCE_EXHAUSTED;
    }
    CHECK_MSG(ok == 2 && shed == 2, "ok %d shed %d", ok, shed);
    wait_idle(s, &st);
    CHECK_MSG(st.shed == 2 && st.inflight == 0, "shed %llu inflight %u",
              (unsigned long long)st.shed, st.inflight);
    mmr_server_free(s);
    mmr_rpc_client_free(c);
    printf("ok load shedding: 2 admitted, 2 RESOURCE_EXHAUSTED\n");

    /* binding an address in use fails with a clear error */
    s = start_server(1, 8, target, sizeof target);
    mmr_server_conf_t dup = {.listen = target};
    mmr_server_t *s2 = NULL;
    CHECK(mmr_server_new(&dup, &s2, &err) == MMR_ERR_RPC && strstr(err.msg, target));
    mmr_server_free(s);
    printf("ok address in use refused: %s\n", err.msg);
    return 0;
}
