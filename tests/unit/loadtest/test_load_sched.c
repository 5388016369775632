/* test_load_sched.c — the open-loop scheduler corrects coordinated omission.
 *
 * A tiny gRPC server built on grpc core (one thread, answers every call with an empty
 * message and OK) stalls for 1 s, once, 1 s after its first call. Against it:
 *  - open loop, 200 req/s for 3 s: all ~600 requests go out on schedule (no missed
 *    schedule, nothing dropped) and p99 >= 500 ms — the stall is charged to the ~200
 *    requests scheduled during it;
 *  - closed loop, 1 caller, 3 s: the stall delays exactly one call, so p99 stays far
 *    below it — the coordinated omission the open loop exists to avoid;
 *  - open loop with --max-outstanding 50: the in-flight cap makes ~150 sends late;
 *    they are counted as missed schedule and still charged from their scheduled time;
 *  - the bearer token reaches the server, a wrong one is counted as UNAUTHENTICATED,
 *    and --health-mix splits the calls between the two methods. */
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "load.h"
#include "mmr_time.h"

#define SLOTS 64
#define MS 1000000LL

typedef struct srv_slot {
    int responding;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *reply; /* kept until the batch completes */
    int cancelled;
} srv_slot_t;

typedef struct srv {
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t th;
    int port;
    atomic_int stop;
    const char *want_auth;   /* "Bearer x" or NULL */
    int64_t stall_ns;        /* stall this long once, stall_after_ns after the first call */
    int64_t stall_after_ns;
    int64_t first_ns;
    int stalled;
    atomic_long calls, health_calls;
    srv_slot_t slots[SLOTS];
} srv_t;

static void srv_request(srv_t *s, srv_slot_t *sl) {
    memset(sl, 0, sizeof *sl);
    grpc_call_details_init(&sl->details);
    grpc_metadata_array_init(&sl->md);
    CHECK(grpc_server_request_call(s->server, &sl->call, &sl->details, &sl->md, s->cq, s->cq, sl) == GRPC_CALL_OK);
}

static void srv_respond(srv_t *s, srv_slot_t *sl) {
    int64_t now = mmr_mono_ns();
    if (!s->first_ns) s->first_ns = now;
    if (s->stall_ns && !s->stalled && now - s->first_ns >= s->stall_after_ns) {
        s->stalled = 1;
        struct timespec ts = {(time_t)(s->stall_ns / 1000000000), (long)(s->stall_ns % 1000000000)};
        nanosleep(&ts, NULL);
    }
    atomic_fetch_add(&s->calls, 1);
    if (grpc_slice_str_cmp(sl->details.method, "/grpc.health.v1.Health/Check") == 0)
        atomic_fetch_add(&s->health_calls, 1);
    grpc_status_code code = GRPC_STATUS_OK;
    if (s->want_auth) {
        code = GRPC_STATUS_UNAUTHENTICATED;
        for (size_t i = 0; i < sl->md.count; i++)
            if (!grpc_slice_str_cmp(sl->md.metadata[i].key, "authorization") &&
                !grpc_slice_str_cmp(sl->md.metadata[i].value, s->want_auth))
                code = GRPC_STATUS_OK;
    }
    grpc_slice empty = grpc_empty_slice();
    grpc_byte_buffer *bb = sl->reply = grpc_raw_byte_buffer_create(&empty, 1);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = bb;
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = code;
    ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[3].data.recv_close_on_server.cancelled = &sl->cancelled;
    grpc_slice details = grpc_slice_from_static_string(code == GRPC_STATUS_OK ? "" : "bad token");
    ops[2].data.send_status_from_server.status_details = &details;
    sl->responding = 1;
    if (code != GRPC_STATUS_OK) { /* an error status carries no message */
        ops[1] = ops[2];
        ops[2] = ops[3];
    }
    size_t nops = code == GRPC_STATUS_OK ? 4 : 3;
    CHECK(grpc_call_start_batch(sl->call, ops, nops, sl, NULL) == GRPC_CALL_OK);
}

static void srv_release(srv_slot_t *sl) {
    if (sl->call) grpc_call_unref(sl->call);
    if (sl->reply) grpc_byte_buffer_destroy(sl->reply);
    grpc_call_details_destroy(&sl->details);
    grpc_metadata_array_destroy(&sl->md);
}

static void *srv_main(void *arg) {
    srv_t *s = arg;
    int shutting = 0;
    for (;;) {
        if (atomic_load(&s->stop) && !shutting) {
            shutting = 1;
            grpc_server_shutdown_and_notify(s->server, s->cq, s);
            grpc_server_cancel_all_calls(s->server);
        }
        grpc_event ev = grpc_completion_queue_next(
            s->cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(50, GPR_TIMESPAN)), NULL);
        if (ev.type != GRPC_OP_COMPLETE) continue;
        if (ev.tag == s) break; /* server shut down */
        srv_slot_t *sl = ev.tag;
        if (!sl->responding && ev.success && !shutting) {
            srv_respond(s, sl);
        } else {
            srv_release(sl);
            if (!shutting) srv_request(s, sl);
            else memset(sl, 0, sizeof *sl);
        }
    }
    return NULL;
}

static void srv_start(srv_t *s, const char *want_auth, int64_t stall_ns) {
    memset(s, 0, sizeof *s);
    s->want_auth = want_auth;
    s->stall_ns = stall_ns;
    s->stall_after_ns = 1000 * MS;
    grpc_init();
    s->server = grpc_server_create(NULL, NULL);
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, s->cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    s->port = grpc_server_add_http2_port(s->server, "127.0.0.1:0", creds);
    grpc_server_credentials_release(creds);
    CHECK(s->port > 0);
    grpc_server_start(s->server);
    for (int i = 0; i < SLOTS; i++) srv_request(s, &s->slots[i]);
    CHECK(pthread_create(&s->th, NULL, srv_main, s) == 0);
}

static void srv_stop(srv_t *s) {
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    /* slots still waiting for a call complete (unsuccessfully) on shutdown */
    grpc_completion_queue_shutdown(s->cq);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type == GRPC_OP_COMPLETE && ev.tag != s) srv_release(ev.tag);
    }
    grpc_server_destroy(s->server);
    grpc_completion_queue_destroy(s->cq);
    grpc_shutdown();
}

static void base_cfg(mmr_load_cfg_t *c, char *target, size_t n, const srv_t *s) {
    mmr_load_cfg_default(c);
    snprintf(target, n, "127.0.0.1:%d", s->port);
    c->target = target;
    c->rate = 200;
    c->duration_s = 3;
    c->deadline_ms = 5000;
    c->candidates = 20;
    c->bearer_token = "sesame";
    c->slack_ms = 50; /* the test host is shared: tolerate scheduling jitter, not a stall */
}

static double ms(int64_t ns) { return (double)ns / 1e6; }

static void report(const char *name, const mmr_load_result_t *r) {
    printf("  %s: sent %ld completed %ld missed %ld dropped %ld  p50 %.1f p90 %.1f p99 %.1f max %.1f ms\n", name,
           r->sent, r->completed, r->missed_schedule, r->dropped, ms(mmr_hdr_percentile(r->all, 50)),
           ms(mmr_hdr_percentile(r->all, 90)), ms(mmr_hdr_percentile(r->all, 99)), ms(mmr_hdr_max(r->all)));
}

int main(void) {
    srv_t srv;
    char target[64];
    mmr_load_cfg_t cfg;
    mmr_load_result_t r;
    mmr_err_t err = {0};

    /* 1. open loop through a 1 s stall */
    srv_start(&srv, "Bearer sesame", 1000 * MS);
    base_cfg(&cfg, target, sizeof target, &srv);
    cfg.health_mix = 0.25;
    CHECK_MSG(mmr_load_run(&cfg, &r, &err) == MMR_OK, "%s", err.msg);
    report("open 200/s 3 s, 1 s stall", &r);
    CHECK(r.scheduled == 600);
    CHECK_MSG(r.sent == 600 && r.completed == 600 && r.dropped == 0, "sent %ld", r.sent);
    /* the 1 s stall costs the schedule nothing (a busy host may make a few sends late) */
    CHECK_MSG(r.missed_schedule <= 10 && r.max_send_lag_ns < 250 * MS, "missed %ld (max lag %.1f ms)",
              r.missed_schedule, ms(r.max_send_lag_ns));
    CHECK_MSG(r.by_status[GRPC_STATUS_OK] == 600, "ok %ld", r.by_status[GRPC_STATUS_OK]);
    CHECK(srv.stalled && atomic_load(&srv.calls) == 600);
    CHECK_MSG(mmr_hdr_percentile(r.all, 99) >= 500 * MS, "p99 %.1f ms", ms(mmr_hdr_percentile(r.all, 99)));
    CHECK_MSG(mmr_hdr_percentile(r.all, 90) >= 300 * MS, "p90 %.1f ms", ms(mmr_hdr_percentile(r.all, 90)));
    CHECK(mmr_hdr_max(r.all) >= 900 * MS && mmr_hdr_max(r.all) < 2000 * MS);
    CHECK(mmr_hdr_percentile(r.all, 50) < 100 * MS); /* before and after the stall it is fast */
    CHECK_MSG(r.elapsed_s >= 2.9 && r.elapsed_s < 4.0, "elapsed %.2f", r.elapsed_s);
    /* the health mix: both methods called, counts agree with the server's */
    CHECK(mmr_hdr_count(r.health) == atomic_load(&srv.health_calls));
    CHECK_MSG(mmr_hdr_count(r.health) > 90 && mmr_hdr_count(r.health) < 210, "health %lld",
              (long long)mmr_hdr_count(r.health));
    CHECK(mmr_hdr_count(r.rank) + mmr_hdr_count(r.health) == 600);
    mmr_load_result_free(&r);
    srv_stop(&srv);
    printf("ok open loop: 600 on schedule through a 1 s stall, p99 charged with the stall\n");

    /* 2. closed loop through the same stall: coordinated omission hides it */
    srv_start(&srv, "Bearer sesame", 1000 * MS);
    base_cfg(&cfg, target, sizeof target, &srv);
    cfg.mode = MMR_LOAD_CLOSED;
    cfg.concurrency = 1;
    CHECK_MSG(mmr_load_run(&cfg, &r, &err) == MMR_OK, "%s", err.msg);
    report("closed 1 caller 3 s, 1 s stall", &r);
    CHECK(srv.stalled);
    CHECK_MSG(r.completed > 200, "closed loop completed only %ld", r.completed);
    CHECK(mmr_hdr_max(r.all) >= 900 * MS);
    CHECK_MSG(mmr_hdr_percentile(r.all, 99) < 100 * MS, "closed p99 %.1f ms", ms(mmr_hdr_percentile(r.all, 99)));
    mmr_load_result_free(&r);
    srv_stop(&srv);
    printf("ok closed loop: the same stall shows only in max, not p99 (coordinated omission)\n");

    /* 3. the outstanding cap: late sends are missed schedule, still charged from the schedule */
    srv_start(&srv, NULL, 1000 * MS);
    base_cfg(&cfg, target, sizeof target, &srv);
    cfg.max_outstanding = 50;
    CHECK_MSG(mmr_load_run(&cfg, &r, &err) == MMR_OK, "%s", err.msg);
    report("open 200/s 3 s, cap 50", &r);
    CHECK(r.sent == 600 && r.dropped == 0 && r.by_status[GRPC_STATUS_OK] == 600);
    CHECK_MSG(r.missed_schedule > 100 && r.missed_schedule < 210, "missed %ld", r.missed_schedule);
    CHECK(r.max_send_lag_ns >= 500 * MS);
    CHECK_MSG(mmr_hdr_percentile(r.all, 99) >= 500 * MS, "p99 %.1f ms", ms(mmr_hdr_percentile(r.all, 99)));
    mmr_load_result_free(&r);
    srv_stop(&srv);
    printf("ok max-outstanding: late sends counted as missed schedule, latency still from the schedule\n");

    /* 4. a wrong token: every call counted under UNAUTHENTICATED; errors are results */
    srv_start(&srv, "Bearer other", 0);
    base_cfg(&cfg, target, sizeof target, &srv);
    cfg.duration_s = 0.5;
    CHECK_MSG(mmr_load_run(&cfg, &r, &err) == MMR_OK, "%s", err.msg);
    for (int c = 0; c < MMR_LOAD_NSTATUS; c++)
        if (r.by_status[c]) printf("  wrong token: %s %ld\n", mmr_load_status_name(c), r.by_status[c]);
    CHECK_MSG(r.sent == 100 && r.by_status[GRPC_STATUS_UNAUTHENTICATED] == 100 && r.by_status[GRPC_STATUS_OK] == 0,
              "sent %ld unauth %ld ok %ld transport %ld", r.sent, r.by_status[GRPC_STATUS_UNAUTHENTICATED],
              r.by_status[GRPC_STATUS_OK], r.transport_failures);
    CHECK(strcmp(mmr_load_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED") == 0);
    mmr_load_result_free(&r);
    srv_stop(&srv);
    printf("ok errors by status: 100 UNAUTHENTICATED\n");

    /* 5. bad configurations are refused */
    mmr_load_cfg_default(&cfg);
    cfg.rate = 0;
    CHECK(mmr_load_run(&cfg, &r, NULL) == MMR_ERR_INVALID);
    mmr_load_result_free(&r);
    mmr_load_cfg_default(&cfg);
    cfg.connections = 4;
    cfg.max_outstanding = 2;
    CHECK(mmr_load_run(&cfg, &r, NULL) == MMR_ERR_INVALID);
    mmr_load_result_free(&r);
    printf("ok bad configurations refused\n");
    return 0;
}
