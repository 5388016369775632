/* test_health_watch.c — grpc.health.v1.Health/Watch, a server stream, over real gRPC on
 * loopback. mmr_rpc is unary only, so this test carries a small raw grpc core client:
 * SEND_INITIAL_METADATA + SEND_MESSAGE + SEND_CLOSE_FROM_CLIENT, then RECV_MESSAGE until
 * the stream ends, RECV_STATUS_ON_CLIENT for the final status.
 *
 * Shows: status changes are streamed (SERVING → NOT_SERVING → SERVING, no repeats); an
 * unknown service gets SERVICE_UNKNOWN and the stream stays open (gRPC health spec); a
 * health-only service ("mmrec.ingest") has its own status, SERVING only while the server
 * is too, for Watch and Check; a
 * client that cancels is cleaned up; Watch needs no token when token auth is on; and
 * shutdown ends every stream with UNAVAILABLE at once instead of waiting out the grace. */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "grpc/health/v1/health.pb-c.h"
#include "mmr_rpc.h"
#include "mmr_server.h"
#include "mmr_time.h"

enum { SERVING = 1, NOT_SERVING = 2, SERVICE_UNKNOWN = 3 };
enum { W_TIMEOUT = -2, W_END = -1 };

typedef struct watch {
    grpc_channel *ch;
    grpc_completion_queue *cq; /* pluck: tag 1 = start, 2 = final status, 3 = a message */
    grpc_call *call;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *send, *recv;
    int recv_pending;
} watch_t;

static void *tag(intptr_t t) { return (void *)t; }

static grpc_event pluck(watch_t *w, intptr_t t, int timeout_ms) {
    gpr_timespec d = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                  gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    return grpc_completion_queue_pluck(w->cq, tag(t), d, NULL);
}

/* Opens Watch(service); raw = the request bytes to send instead of a HealthCheckRequest. */
static void watch_open_raw(watch_t *w, const char *target, const uint8_t *raw, size_t len) {
    memset(w, 0, sizeof *w);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    w->ch = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    w->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method = grpc_slice_from_static_string("/grpc.health.v1.Health/Watch");
    w->call = grpc_channel_create_call(w->ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq, method, NULL,
                                       gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                    gpr_time_from_seconds(60, GPR_TIMESPAN)),
                                       NULL);
    grpc_metadata_array_init(&w->init_md);
    grpc_metadata_array_init(&w->trail_md);
    w->details = grpc_empty_slice();
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)raw, len);
    w->send = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);

    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = w->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &w->init_md;
    CHECK(grpc_call_start_batch(w->call, ops, 4, tag(1), NULL) == GRPC_CALL_OK);
    grpc_op st = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
    st.data.recv_status_on_client.trailing_metadata = &w->trail_md;
    st.data.recv_status_on_client.status = &w->status;
    st.data.recv_status_on_client.status_details = &w->details;
    CHECK(grpc_call_start_batch(w->call, &st, 1, tag(2), NULL) == GRPC_CALL_OK);
    CHECK(pluck(w, 1, 5000).type == GRPC_OP_COMPLETE);
}

static void watch_open(watch_t *w, const char *target, const char *service) {
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    uint8_t buf[256];
    size_t len = grpc__health__v1__health_check_request__pack(&req, buf);
    watch_open_raw(w, target, buf, len);
}

/* The next streamed status, W_END when the stream ended, W_TIMEOUT when nothing came
 * within timeout_ms (the receive stays posted; the next call waits on it). */
static int watch_next(watch_t *w, int timeout_ms) {
    if (!w->recv_pending) {
        grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
        op.data.recv_message.recv_message = &w->recv;
        CHECK(grpc_call_start_batch(w->call, &op, 1, tag(3), NULL) == GRPC_CALL_OK);
        w->recv_pending = 1;
    }
    grpc_event ev = pluck(w, 3, timeout_ms);
    if (ev.type == GRPC_QUEUE_TIMEOUT) return W_TIMEOUT;
    CHECK(ev.type == GRPC_OP_COMPLETE);
    w->recv_pending = 0;
    if (!w->recv) return W_END;
    grpc_byte_buffer_reader r;
    grpc_byte_buffer_reader_init(&r, w->recv);
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    grpc_byte_buffer_destroy(w->recv);
    w->recv = NULL;
    Grpc__Health__V1__HealthCheckResponse *m = grpc__health__v1__health_check_response__unpack(
        NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    CHECK(m);
    int s = m->status;
    grpc__health__v1__health_check_response__free_unpacked(m, NULL);
    return s;
}

/* Waits for the call's final status (reading off any messages still queued). */
static int watch_status(watch_t *w, int timeout_ms) {
    int r;
    while ((r = watch_next(w, timeout_ms)) != W_END) CHECK(r != W_TIMEOUT);
    CHECK(pluck(w, 2, timeout_ms).type == GRPC_OP_COMPLETE);
    return (int)w->status;
}

static void watch_close(watch_t *w) {
    grpc_call_unref(w->call);
    grpc_completion_queue_shutdown(w->cq);
    while (grpc_completion_queue_pluck(w->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {}
    grpc_completion_queue_destroy(w->cq);
    grpc_channel_destroy(w->ch);
    grpc_metadata_array_destroy(&w->init_md);
    grpc_metadata_array_destroy(&w->trail_md);
    grpc_slice_unref(w->details);
    grpc_byte_buffer_destroy(w->send);
}

/* Health/Check of service: the serving status, or minus the gRPC status of a failed call. */
static int check(mmr_rpc_client_t *c, const char *service) {
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    ProtobufCMessage *resp = NULL;
    int status = -1;
    mmr_err_t err = {0};
    mmr_rpc_call(c, "/grpc.health.v1.Health/Check", &req.base,
                 &grpc__health__v1__health_check_response__descriptor, &resp, 3000, &status, &err);
    if (!resp) return -status;
    int st = ((Grpc__Health__V1__HealthCheckResponse *)resp)->status;
    protobuf_c_message_free_unpacked(resp, NULL);
    return st;
}

static void noop_handler(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply) {
    reply->status = MMR_RPC_INVALID_ARGUMENT;
    snprintf(reply->message, sizeof reply->message, "not used");
}

static mmr_server_t *start(const char *tokens_file, char *target, size_t n) {
    mmr_server_conf_t conf = {.listen = "127.0.0.1:0", .threads = 2, .auth_tokens_file = tokens_file};
    mmr_server_t *s = NULL;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_server_new(&conf, &s, &err) == MMR_OK, "%s", err.msg);
    CHECK(mmr_server_add_method(s, "/test.Svc/Do", noop_handler, NULL, &err) == MMR_OK);
    CHECK(mmr_server_add_health_service(s, "mmrec.ingest", &err) == MMR_OK);
    CHECK(mmr_server_add_health_service(s, "test.Svc", &err) == MMR_ERR_INVALID); /* taken */
    CHECK(mmr_server_start(s, &err) == MMR_OK);
    CHECK(mmr_server_add_health_service(s, "late", &err) == MMR_ERR_INVALID);
    snprintf(target, n, "127.0.0.1:%d", mmr_server_port(s));
    return s;
}

int main(void) {
    grpc_init();
    char target[64];
    mmr_server_t *s = start(NULL, target, sizeof target);

    /* status changes are streamed, once each */
    watch_t all, svc, unknown;
    watch_open(&all, target, "");
    CHECK(watch_next(&all, 3000) == NOT_SERVING); /* not yet set serving */
    mmr_server_set_serving(s, 1);
    CHECK(watch_next(&all, 3000) == SERVING);
    mmr_server_set_serving(s, 0);
    CHECK(watch_next(&all, 3000) == NOT_SERVING);
    mmr_server_set_serving(s, 1);
    CHECK(watch_next(&all, 3000) == SERVING);
    mmr_server_set_serving(s, 1); /* no change: nothing sent */
    CHECK(watch_next(&all, 300) == W_TIMEOUT);
    printf("ok Watch(\"\"): NOT_SERVING, SERVING, NOT_SERVING, SERVING; no repeat without a change\n");

    watch_open(&svc, target, "test.Svc");
    CHECK(watch_next(&svc, 3000) == SERVING);
    printf("ok Watch(\"test.Svc\") of a registered service: SERVING\n");

    /* unknown service: SERVICE_UNKNOWN, stream stays open and is not told about changes */
    watch_open(&unknown, target, "no.Such");
    CHECK(watch_next(&unknown, 3000) == SERVICE_UNKNOWN);
    mmr_server_set_serving(s, 0);
    CHECK(watch_next(&all, 3000) == NOT_SERVING && watch_next(&svc, 3000) == NOT_SERVING);
    CHECK(watch_next(&unknown, 300) == W_TIMEOUT);
    printf("ok Watch(\"no.Such\"): SERVICE_UNKNOWN, stream stays open\n");

    /* Check on an unknown service is still NOT_FOUND */
    mmr_rpc_client_t *c = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_rpc_client_new(target, NULL, &c, &err) == MMR_OK);
    CHECK(check(c, "no.Such") == -MMR_RPC_NOT_FOUND);

    /* a health-only service: its own flag, and the server's */
    watch_t ing;
    watch_open(&ing, target, "mmrec.ingest");
    CHECK(watch_next(&ing, 3000) == NOT_SERVING); /* the server is not serving */
    mmr_server_set_serving(s, 1);
    CHECK(watch_next(&ing, 3000) == SERVING && check(c, "mmrec.ingest") == SERVING);
    CHECK(watch_next(&all, 3000) == SERVING && watch_next(&svc, 3000) == SERVING);
    mmr_server_set_service_serving(s, "mmrec.ingest", 0);
    CHECK(watch_next(&ing, 3000) == NOT_SERVING && check(c, "mmrec.ingest") == NOT_SERVING);
    CHECK(check(c, "") == SERVING && watch_next(&all, 300) == W_TIMEOUT);
    mmr_server_set_service_serving(s, "mmrec.ingest", 1);
    CHECK(watch_next(&ing, 3000) == SERVING);
    mmr_server_set_serving(s, 0);
    CHECK(watch_next(&ing, 3000) == NOT_SERVING && check(c, "mmrec.ingest") == NOT_SERVING);
    CHECK(watch_next(&all, 3000) == NOT_SERVING && watch_next(&svc, 3000) == NOT_SERVING);
    grpc_call_cancel(ing.call, NULL);
    CHECK(watch_status(&ing, 3000) == MMR_RPC_CANCELLED);
    watch_close(&ing);
    mmr_rpc_client_free(c);
    printf("ok health-only service mmrec.ingest: own status for Watch and Check, NOT_SERVING with the server\n");

    /* an undecodable request is INVALID_ARGUMENT, not a stream */
    watch_t junk;
    const uint8_t garbage[] = {0x0a, 0x7f, 'x'}; /* field 1, length 127, 1 byte */
    watch_open_raw(&junk, target, garbage, sizeof garbage);
    CHECK(watch_status(&junk, 3000) == MMR_RPC_INVALID_ARGUMENT);
    watch_close(&junk);
    printf("ok Check(\"no.Such\"): NOT_FOUND; undecodable Watch request: INVALID_ARGUMENT\n");

    /* a client that goes away is cleaned up by the server (ASan checks the leak) */
    watch_t gone;
    watch_open(&gone, target, "");
    CHECK(watch_next(&gone, 3000) == NOT_SERVING);
    grpc_call_cancel(gone.call, NULL);
    CHECK(watch_status(&gone, 3000) == MMR_RPC_CANCELLED);
    watch_close(&gone);
    mmr_server_set_serving(s, 1);
    CHECK(watch_next(&all, 3000) == SERVING && watch_next(&svc, 3000) == SERVING);
    printf("ok a cancelled Watch is dropped; the others keep streaming\n");

    /* shutdown ends every open stream with UNAVAILABLE at once, not after the grace */
    int64_t t0 = mmr_mono_ns();
    mmr_server_shutdown(s, 5000);
    double ms = (double)(mmr_mono_ns() - t0) / 1e6;
    CHECK(watch_status(&all, 3000) == MMR_RPC_UNAVAILABLE);
    CHECK(watch_status(&svc, 3000) == MMR_RPC_UNAVAILABLE);
    CHECK(watch_status(&unknown, 3000) == MMR_RPC_UNAVAILABLE);
    CHECK_MSG(ms < 1000, "shutdown with 3 open Watch streams took %.0f ms", ms);
    watch_close(&all);
    watch_close(&svc);
    watch_close(&unknown);
    mmr_server_free(s);
    printf("ok shutdown with 3 open Watch streams: UNAVAILABLE, %.1f ms (grace 5000 ms)\n", ms);

    /* token auth on: Watch (like Check) works without a token, so probes do */
    char tokens[] = "/tmp/mmrec-watch-tokens-XXXXXX";
    int fd = mkstemp(tokens);
    CHECK(fd >= 0);
    const char *line = "prober-must-not-need-this 0123456789abcdef0123\n";
    CHECK(write(fd, line, strlen(line)) == (ssize_t)strlen(line));
    close(fd);
    s = start(tokens, target, sizeof target);
    mmr_server_set_serving(s, 1);
    watch_open(&all, target, "");
    CHECK(watch_next(&all, 3000) == SERVING);
    mmr_server_set_serving(s, 0);
    CHECK(watch_next(&all, 3000) == NOT_SERVING);
    t0 = mmr_mono_ns();
    mmr_server_free(s); /* shutdown with the default grace */
    ms = (double)(mmr_mono_ns() - t0) / 1e6;
    CHECK(watch_status(&all, 3000) == MMR_RPC_UNAVAILABLE);
    CHECK_MSG(ms < 1000, "free with an open Watch took %.0f ms", ms);
    watch_close(&all);
    unlink(tokens);
    printf("ok token auth on: Watch without a token streams; free ends it in %.1f ms\n", ms);
    grpc_shutdown();
    return 0;
}
