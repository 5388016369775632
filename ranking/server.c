/* server.c — gRPC serving engine over grpc core (see mmr_server.h).
 *
 * Threads: `threads` workers, each blocking on its own completion queue. Every worker
 * keeps one requested call outstanding per registered method (re-armed as soon as it is
 * matched), so the number of concurrently *matched* calls is bounded by the admission
 * counter, not by pre-posted requests. Unary handlers run on the worker thread.
 *
 * Health Watch is a server stream: a watcher stays in a list guarded by health_mu and
 * is sent the status whenever it changes; at shutdown it is finished with UNAVAILABLE so
 * that grpc_server_shutdown_and_notify can complete. */
#include "mmr_server.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "mmr_log.h"
#include "mmr_time.h"

#define MAX_METHODS 16

typedef enum { M_UNARY, M_HEALTH_WATCH, M_GENERIC } method_kind_t;
typedef enum { TAG_REQUESTED, TAG_DONE, TAG_WATCH_SENT, TAG_WATCH_CLOSED } tag_kind_t;

typedef struct method {
    char *path;
    void *handle; /* grpc registered method; NULL for M_GENERIC */
    method_kind_t kind;
    mmr_server_unary_fn fn;
    void *opaque;
} method_t;

typedef struct call call_t;
typedef struct tag { call_t *c; tag_kind_t kind; } tag_t;

typedef struct worker {
    mmr_server_t *s;
    grpc_completion_queue *cq;
    pthread_t thread;
} worker_t;

struct call {
    tag_t t_main, t_close;
    mmr_server_t *s;
    worker_t *w;
    method_t *m;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details;   /* M_GENERIC only */
    grpc_byte_buffer *payload;
    grpc_byte_buffer *resp;
    grpc_slice status_details;
    int cancelled;
    int admitted;
    mmr_arena_t *arena;
    /* Health Watch state, guarded by s->health_mu */
    call_t *wnext, *wprev;
    int outstanding, sending, closed, status_sent, last_sent;
};

struct mmr_server {
    grpc_server *server;
    grpc_completion_queue *shutdown_cq;
    worker_t *workers;
    int nworkers;
    method_t methods[MAX_METHODS];
    int nmethods;
    int port;
    uint32_t max_inflight;
    atomic_int started, stopped;
    atomic_uint inflight;
    atomic_uint_fast64_t calls, ok, shed, expired;
    pthread_mutex_t health_mu;
    int serving;
    call_t *watchers;
};

/* --- calls --------------------------------------------------------------------------- */

static void call_free(call_t *c) {
    if (c->call) grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->md);
    if (c->m->kind == M_GENERIC) grpc_call_details_destroy(&c->details);
    if (c->payload) grpc_byte_buffer_destroy(c->payload);
    if (c->resp) grpc_byte_buffer_destroy(c->resp);
    grpc_slice_unref(c->status_details);
    mmr_arena_free(c->arena);
    free(c);
}

/* Posts a request for the next call of method m on worker w. */
static void request_next(worker_t *w, method_t *m) {
    mmr_server_t *s = w->s;
    if (atomic_load(&s->stopped)) return;
    call_t *c = calloc(1, sizeof *c);
    if (!c) { mmr_log(MMR_LOG_ERROR, "server", "out of memory re-arming %s", m->path); return; }
    c->s = s;
    c->w = w;
    c->m = m;
    c->t_main = (tag_t){c, TAG_REQUESTED};
    c->t_close = (tag_t){c, TAG_WATCH_CLOSED};
    c->status_details = grpc_empty_slice();
    grpc_metadata_array_init(&c->md);
    grpc_call_error e;
    if (m->kind == M_GENERIC) {
        grpc_call_details_init(&c->details);
        e = grpc_server_request_call(s->server, &c->call, &c->details, &c->md, w->cq, w->cq,
                                     &c->t_main);
    } else {
        e = grpc_server_request_registered_call(s->server, m->handle, &c->call, &c->deadline,
                                                &c->md, &c->payload, w->cq, w->cq, &c->t_main);
    }
    if (e != GRPC_CALL_OK) {
        mmr_log(MMR_LOG_ERROR, "server", "request %s: %s", m->path, grpc_call_error_to_string(e));
        call_free(c);
    }
}

/* Sends the whole unary answer in one batch; TAG_DONE frees the call. */
static void send_unary(call_t *c, int status, const char *message, const ProtobufCMessage *msg) {
    atomic_fetch_add(&c->s->calls, 1);
    if (status == MMR_RPC_OK) atomic_fetch_add(&c->s->ok, 1);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    int n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (status == MMR_RPC_OK && msg) {
        size_t len = protobuf_c_message_get_packed_size(msg);
        grpc_slice sl = grpc_slice_malloc(len);
        protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(sl));
        c->resp = grpc_raw_byte_buffer_create(&sl, 1);
        grpc_slice_unref(sl);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->resp;
    }
    if (message && *message) c->status_details = grpc_slice_from_copied_string(message);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)status;
    ops[n++].data.send_status_from_server.status_details =
        (message && *message) ? &c->status_details : NULL;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    c->t_main.kind = TAG_DONE;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, (size_t)n, &c->t_main, NULL);
    if (e != GRPC_CALL_OK) {
        mmr_log(MMR_LOG_ERROR, "server", "%s: start_batch: %s", c->m->path,
                grpc_call_error_to_string(e));
        if (c->admitted) atomic_fetch_sub(&c->s->inflight, 1);
        call_free(c);
    }
}

static int64_t deadline_mono_ns(gpr_timespec d) {
    d = gpr_convert_clock_type(d, GPR_CLOCK_MONOTONIC);
    if (d.tv_sec >= INT64_MAX / 2000000000) return INT64_MAX;
    gpr_timespec left = gpr_time_sub(d, gpr_now(GPR_CLOCK_MONOTONIC));
    return mmr_mono_ns() + left.tv_sec * 1000000000 + left.tv_nsec;
}

static void dispatch_unary(call_t *c) {
    mmr_server_t *s = c->s;
    if (atomic_fetch_add(&s->inflight, 1) >= s->max_inflight) {
        atomic_fetch_sub(&s->inflight, 1);
        atomic_fetch_add(&s->shed, 1);
        send_unary(c, MMR_RPC_RESOURCE_EXHAUSTED, "server overloaded: in-flight limit reached", NULL);
        return;
    }
    c->admitted = 1;
    int64_t deadline = deadline_mono_ns(c->deadline);
    if (deadline <= mmr_mono_ns()) {
        atomic_fetch_add(&s->expired, 1);
        send_unary(c, MMR_RPC_DEADLINE_EXCEEDED, "deadline expired before the request was handled",
                   NULL);
        return;
    }
    if (!c->payload) {
        send_unary(c, MMR_RPC_INVALID_ARGUMENT, "missing request message", NULL);
        return;
    }
    grpc_byte_buffer_reader reader;
    grpc_byte_buffer_reader_init(&reader, c->payload);
    grpc_slice body = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    c->arena = mmr_arena_new(16384);
    mmr_rpc_request_t req = {GRPC_SLICE_START_PTR(body), GRPC_SLICE_LENGTH(body), deadline, c->arena};
    mmr_rpc_reply_t reply = {.status = MMR_RPC_INTERNAL};
    if (!c->arena) snprintf(reply.message, sizeof reply.message, "out of memory");
    else c->m->fn(c->m->opaque, &req, &reply);
    send_unary(c, reply.status, reply.message, reply.msg);
    grpc_slice_unref(body);
}

/* --- health ---------------------------------------------------------------------------- */

static int health_status_locked(mmr_server_t *s) {
    return s->serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

/* The services Health answers for; anything else is NOT_FOUND (Check) / SERVICE_UNKNOWN. */
static int health_knows(mmr_server_t *s, const char *service) {
    if (!*service || strcmp(service, "grpc.health.v1.Health") == 0) return 1;
    for (int i = 0; i < s->nmethods; i++) {
        const char *p = s->methods[i].path; /* "/pkg.Service/Method" */
        size_t n = strlen(service);
        if (p[0] == '/' && strncmp(p + 1, service, n) == 0 && p[1 + n] == '/') return 1;
    }
    return 0;
}

static void health_check(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply) {
    mmr_server_t *s = opaque;
    Grpc__Health__V1__HealthCheckRequest *in =
        grpc__health__v1__health_check_request__unpack(NULL, req->len, req->data);
    if (!in) {
        reply->status = MMR_RPC_INVALID_ARGUMENT;
        snprintf(reply->message, sizeof reply->message, "undecodable HealthCheckRequest");
        return;
    }
    int known = health_knows(s, in->service);
    grpc__health__v1__health_check_request__free_unpacked(in, NULL);
    if (!known) {
        reply->status = MMR_RPC_NOT_FOUND;
        snprintf(reply->message, sizeof reply->message, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse *out = mmr_arena_alloc(req->arena, sizeof *out);
    grpc__health__v1__health_check_response__init(out);
    pthread_mutex_lock(&s->health_mu);
    out->status = health_status_locked(s);
    pthread_mutex_unlock(&s->health_mu);
    reply->status = MMR_RPC_OK;
    reply->msg = &out->base;
}

/* Starts sending the current status (or the final status) to watcher c. Caller holds
 * health_mu and has checked !c->sending && !c->closed && !c->status_sent. */
static void watch_send_locked(call_t *c, int first) {
    mmr_server_t *s = c->s;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    int n = 0;
    if (first) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (atomic_load(&s->stopped)) {
        c->status_details = grpc_slice_from_static_string("server shutting down");
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = GRPC_STATUS_UNAVAILABLE;
        ops[n++].data.send_status_from_server.status_details = &c->status_details;
        c->status_sent = 1;
    } else {
        Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        r.status = health_status_locked(s);
        c->last_sent = r.status;
        uint8_t buf[16];
        size_t len = grpc__health__v1__health_check_response__pack(&r, buf);
        grpc_slice sl = grpc_slice_from_copied_buffer((const char *)buf, len);
        if (c->resp) grpc_byte_buffer_destroy(c->resp);
        c->resp = grpc_raw_byte_buffer_create(&sl, 1);
        grpc_slice_unref(sl);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->resp;
    }
    c->t_main.kind = TAG_WATCH_SENT;
    if (grpc_call_start_batch(c->call, ops, (size_t)n, &c->t_main, NULL) == GRPC_CALL_OK) {
        c->sending = 1;
        c->outstanding++;
    }
}

static void watch_unlink_locked(call_t *c) {
    if (c->wprev) c->wprev->wnext = c->wnext;
    else c->s->watchers = c->wnext;
    if (c->wnext) c->wnext->wprev = c->wprev;
    c->wnext = c->wprev = NULL;
}

static void watch_start(call_t *c) {
    mmr_server_t *s = c->s;
    int known = 1;
    if (c->payload) {
        grpc_byte_buffer_reader reader;
        grpc_byte_buffer_reader_init(&reader, c->payload);
        grpc_slice body = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        Grpc__Health__V1__HealthCheckRequest *in = grpc__health__v1__health_check_request__unpack(
            NULL, GRPC_SLICE_LENGTH(body), GRPC_SLICE_START_PTR(body));
        grpc_slice_unref(body);
        known = in && health_knows(s, in->service);
        if (in) grpc__health__v1__health_check_request__free_unpacked(in, NULL);
    }
    if (!known) {
        send_unary(c, MMR_RPC_NOT_FOUND, "unknown service", NULL);
        return;
    }
    grpc_op close_op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
    close_op.data.recv_close_on_server.cancelled = &c->cancelled;
    pthread_mutex_lock(&s->health_mu);
    c->wnext = s->watchers;
    if (s->watchers) s->watchers->wprev = c;
    s->watchers = c;
    if (grpc_call_start_batch(c->call, &close_op, 1, &c->t_close, NULL) == GRPC_CALL_OK)
        c->outstanding++;
    else
        c->closed = 1;
    if (!c->closed) watch_send_locked(c, 1);
    int done = c->outstanding == 0;
    if (done) watch_unlink_locked(c);
    pthread_mutex_unlock(&s->health_mu);
    if (done) call_free(c);
}

static void watch_event(call_t *c, tag_kind_t kind) {
    mmr_server_t *s = c->s;
    pthread_mutex_lock(&s->health_mu);
    c->outstanding--;
    if (kind == TAG_WATCH_CLOSED) c->closed = 1;
    else c->sending = 0;
    if (!c->closed && !c->sending && !c->status_sent &&
        (atomic_load(&s->stopped) || c->last_sent != health_status_locked(s)))
        watch_send_locked(c, 0);
    int done = c->outstanding == 0;
    if (done) watch_unlink_locked(c);
    pthread_mutex_unlock(&s->health_mu);
    if (done) call_free(c);
}

/* Tells every idle watcher the new status (or, when stopping, finishes it). */
static void watch_notify_all(mmr_server_t *s) {
    pthread_mutex_lock(&s->health_mu);
    for (call_t *c = s->watchers; c; c = c->wnext)
        if (!c->closed && !c->sending && !c->status_sent) watch_send_locked(c, 0);
    pthread_mutex_unlock(&s->health_mu);
}

/* --- workers --------------------------------------------------------------------------- */

static void *worker_main(void *arg) {
    worker_t *w = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        tag_t *t = ev.tag;
        call_t *c = t->c;
        switch (t->kind) {
        case TAG_REQUESTED:
            if (!ev.success) { call_free(c); break; } /* server shutting down */
            request_next(w, c->m);
            if (c->m->kind == M_UNARY) dispatch_unary(c);
            else if (c->m->kind == M_HEALTH_WATCH) watch_start(c);
            else send_unary(c, MMR_RPC_UNIMPLEMENTED, "unknown method", NULL);
            break;
        case TAG_DONE:
            if (c->admitted) atomic_fetch_sub(&c->s->inflight, 1);
            call_free(c);
            break;
        case TAG_WATCH_SENT:
        case TAG_WATCH_CLOSED:
            watch_event(c, t->kind);
            break;
        }
    }
    return NULL;
}

/* --- lifecycle ------------------------------------------------------------------------- */

static method_t *method_add(mmr_server_t *s, const char *path, method_kind_t kind,
                            mmr_server_unary_fn fn, void *opaque) {
    if (s->nmethods == MAX_METHODS) return NULL;
    method_t *m = &s->methods[s->nmethods];
    m->path = strdup(path);
    m->kind = kind;
    m->fn = fn;
    m->opaque = opaque;
    if (kind != M_GENERIC) {
        m->handle = grpc_server_register_method(s->server, path, NULL,
                                                GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!m->handle) { free(m->path); return NULL; }
    }
    s->nmethods++;
    return m;
}

mmr_status_t mmr_server_new(const mmr_server_conf_t *conf, mmr_server_t **out, mmr_err_t *err) {
    grpc_init();
    mmr_server_t *s = calloc(1, sizeof *s);
    if (!s) { grpc_shutdown(); return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory"); }
    pthread_mutex_init(&s->health_mu, NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->nworkers = conf->threads > 0 ? conf->threads : (cores > 0 ? (int)cores : 2);
    s->max_inflight = conf->max_inflight ? conf->max_inflight : 256;
    /* SO_REUSEPORT off: a second daemon on the same port must fail, not share traffic. */
    grpc_arg args[3] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = conf->max_message_bytes ? (int)conf->max_message_bytes : 4 << 20},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = 64 << 20},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
    };
    grpc_channel_args cargs = {.num_args = 3, .args = args};
    s->server = grpc_server_create(&cargs, NULL);
    s->shutdown_cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, s->shutdown_cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    s->port = grpc_server_add_http2_port(s->server, conf->listen, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        mmr_server_free(s);
        return mmr_err_set(err, MMR_ERR_RPC, "cannot listen on %s (address in use or invalid)",
                           conf->listen);
    }
    method_add(s, "/grpc.health.v1.Health/Check", M_UNARY, health_check, s);
    method_add(s, "/grpc.health.v1.Health/Watch", M_HEALTH_WATCH, NULL, NULL);
    method_add(s, "*", M_GENERIC, NULL, NULL);
    *out = s;
    return MMR_OK;
}

mmr_status_t mmr_server_add_method(mmr_server_t *s, const char *path, mmr_server_unary_fn fn,
                                   void *opaque, mmr_err_t *err) {
    if (atomic_load(&s->started))
        return mmr_err_set(err, MMR_ERR_INVALID, "add_method %s after start", path);
    if (!method_add(s, path, M_UNARY, fn, opaque))
        return mmr_err_set(err, MMR_ERR_RPC, "cannot register method %s", path);
    return MMR_OK;
}

mmr_status_t mmr_server_start(mmr_server_t *s, mmr_err_t *err) {
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < s->nworkers; i++) {
        s->workers[i].s = s;
        s->workers[i].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->server, s->workers[i].cq, NULL);
    }
    grpc_server_start(s->server);
    atomic_store(&s->started, 1);
    for (int i = 0; i < s->nworkers; i++) {
        for (int m = 0; m < s->nmethods; m++) request_next(&s->workers[i], &s->methods[m]);
        pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
    }
    return MMR_OK;
}

int mmr_server_port(const mmr_server_t *s) { return s->port; }

void mmr_server_set_serving(mmr_server_t *s, int serving) {
    pthread_mutex_lock(&s->health_mu);
    s->serving = serving;
    pthread_mutex_unlock(&s->health_mu);
    watch_notify_all(s);
}

void mmr_server_get_stats(mmr_server_t *s, mmr_server_stats_t *out) {
    out->calls = atomic_load(&s->calls);
    out->ok = atomic_load(&s->ok);
    out->shed = atomic_load(&s->shed);
    out->expired = atomic_load(&s->expired);
    out->inflight = atomic_load(&s->inflight);
}

void mmr_server_shutdown(mmr_server_t *s, int grace_ms) {
    if (!atomic_load(&s->started) || atomic_exchange(&s->stopped, 1)) return;
    static int shutdown_tag;
    grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, &shutdown_tag);
    watch_notify_all(s); /* finishes every Watch stream */
    gpr_timespec grace = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                      gpr_time_from_millis(grace_ms, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(s->shutdown_cq, grace, NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        mmr_log(MMR_LOG_WARN, "server", "calls still running after %d ms: cancelling", grace_ms);
        grpc_server_cancel_all_calls(s->server);
        grpc_completion_queue_next(s->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    grpc_server_destroy(s->server);
    s->server = NULL;
    for (int i = 0; i < s->nworkers; i++) grpc_completion_queue_shutdown(s->workers[i].cq);
    for (int i = 0; i < s->nworkers; i++) {
        pthread_join(s->workers[i].thread, NULL);
        grpc_completion_queue_destroy(s->workers[i].cq);
    }
    grpc_completion_queue_shutdown(s->shutdown_cq);
    while (grpc_completion_queue_next(s->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {}
    grpc_completion_queue_destroy(s->shutdown_cq);
}

void mmr_server_free(mmr_server_t *s) {
    if (!s) return;
    if (atomic_load(&s->started)) {
        mmr_server_shutdown(s, 5000);
    } else {
        /* never started: grpc still wants a completed shutdown before destroy */
        grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, NULL);
        grpc_completion_queue_next(s->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        grpc_server_destroy(s->server);
        grpc_completion_queue_shutdown(s->shutdown_cq);
        while (grpc_completion_queue_next(s->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN) {}
        grpc_completion_queue_destroy(s->shutdown_cq);
    }
    for (int i = 0; i < s->nmethods; i++) free(s->methods[i].path);
    free(s->workers);
    pthread_mutex_destroy(&s->health_mu);
    free(s);
    grpc_shutdown();
}
