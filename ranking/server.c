/* server.c — gRPC serving engine over grpc core (see mmr_server.h).
 *
 * Threads: `threads` handler slots, `threads` acceptors and `threads` workers. Every
 * requested call and every batch is bound to one completion queue that the acceptors share
 * (so they also do grpc's I/O; one acceptor alone fell behind under overload on 2 busy
 * cores). An acceptor checks the bearer token, answers Health/Check and unknown methods
 * itself, starts Health Watch streams, and admits or refuses each unary call at once. An
 * admitted call runs in a slot: on the acceptor that admitted it when a slot is free and
 * another acceptor stays out of handlers (so never with one thread), else on a worker,
 * through a ring; an acceptor holding a slot runs the ring's waiting calls after its own
 * before it gives the slot back. Handing every call to a worker cost Rank about a fifth
 * of its server CPU in futex wake-ups and context switches (docs/PERFORMANCE.md). One
 * acceptor is always free to match and refuse calls: a refused call never waits behind a
 * handler. Overloaded, acceptors run no handlers: admitted calls go to the workers, which
 * sleep between calls, so the scheduler runs a woken worker ahead of the acceptors busy
 * refusing the excess and admitted calls keep their latency (with one more acceptor
 * running handlers, admitted p99 at 3x on one CPU went from 1.6 to 2.2-3.2 ms and the
 * verdicts of loadtest/overload.sh failed). Admission
 * (mmr_admission.h) queues every call until the queueing delay is above queue_target_ms
 * while calls arrive faster than the slots run them; then, overloaded, it admits a call
 * only to a free slot (one waiting call per slot in a mild overload), until the offered
 * load falls below the slots' capacity. max_inflight unanswered calls is a hard bound. A
 * stall at moderate load (a busy host, a model swap) queues calls instead of refusing them.
 * (A bound on queued calls alone refused ~3% at a third of capacity on a busy 2-core
 * host.) The answer's completion (TAG_DONE) comes back to an acceptor, which frees the
 * call.
 *
 * Health Watch is a server stream: a watcher stays in a list guarded by health_mu and
 * is sent the status whenever it changes; at shutdown it is finished with UNAVAILABLE so
 * that grpc_server_shutdown_and_notify can complete.
 *
 * Security: TLS / mutual TLS are grpc core SSL server credentials built from PEM files
 * read once in mmr_server_new. Bearer tokens are checked on the acceptor as soon as a
 * call is matched, before admission or decoding, against every configured token in
 * constant time (the time depends on the stored tokens' lengths only, not on which token
 * or how much of one matched). Tokens are never logged; the client name is. */
#include "mmr_server.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "mmr_admission.h"
#include "mmr_cpu.h"
#include "mmr_log.h"
#include "mmr_time.h"

#define MAX_METHODS 16

typedef enum { M_UNARY, M_HEALTH_WATCH, M_GENERIC } method_kind_t;
typedef enum { TAG_REQUESTED, TAG_DONE, TAG_WATCH_SENT, TAG_WATCH_CLOSED } tag_kind_t;

typedef struct method {
    char *path;
    void *handle; /* grpc registered method; NULL for M_GENERIC */
    method_kind_t kind;
    int public;   /* served without a bearer token (grpc.health.v1) */
    int on_acceptor; /* Health/Check: answered by the acceptor, outside admission */
    mmr_server_unary_fn fn;
    void *opaque;
    atomic_uint_fast64_t by_status[MMR_SERVER_STATUS_COUNT];
    atomic_uint_fast64_t latency[MMR_SERVER_LATENCY_BUCKETS];
    atomic_uint_fast64_t latency_sum_us;
} method_t;

#define ARMED 64 /* requests kept posted per method, so arriving calls are matched at once */

const double mmr_server_latency_le[MMR_SERVER_LATENCY_BUCKETS - 1] = {
    0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};

typedef struct call call_t;
/* A tag hands its call from the thread that posts it to whichever acceptor takes its event.
 * grpc's queue orders the two, but invisibly to TSan (grpc is not instrumented), so the
 * hand-off is also an atomic kind: stored just before the grpc call that posts the tag
 * (c's fields are final by then), loaded first when the event is taken. */
typedef struct tag { call_t *c; _Atomic tag_kind_t kind; } tag_t;

struct call {
    tag_t t_main, t_close;
    mmr_server_t *s;
    method_t *m;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details;   /* M_GENERIC only */
    grpc_byte_buffer *payload;
    grpc_byte_buffer *resp;
    grpc_slice status_details;
    int cancelled;
    int admitted;                /* counted in s->inflight until TAG_DONE */
    int64_t matched_ns;          /* when the call was matched (latency start) */
    const char *client;          /* authenticated client name (borrowed from s->tokens) */
    mmr_arena_t *arena;
    /* Health Watch state, guarded by s->health_mu */
    call_t *wnext, *wprev;
    int outstanding, sending, closed, status_sent, last_sent;
    int watch_unknown;           /* watched service is unknown: always SERVICE_UNKNOWN */
    int watch_svc;               /* watched health-only service (index), -1: the server's */
};

typedef struct token {
    char *client;   /* logged; letters, digits and . _ - @ : only */
    char *secret;   /* never logged; wiped on free */
    size_t len;
} token_t;

struct mmr_server {
    grpc_server *server;
    grpc_completion_queue *shutdown_cq;
    grpc_completion_queue *cq;   /* the acceptors': every call's events */
    pthread_t *acceptors;        /* [slots] */
    pthread_t *workers;          /* [slots] */
    int slots;                   /* handlers that may run at once */
    /* Ring of admitted calls waiting for a slot, and the admission state, guarded by q_mu.
     * q_len <= admitted unanswered calls < max_inflight = q_cap, so it never overflows.
     * A queued call is taken by an acceptor giving up its slot (not overloaded) or by a
     * worker woken on q_cv when a slot is free. */
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    call_t **q;                  /* [q_cap] */
    uint32_t q_cap, q_head, q_len;
    int q_stop;
    mmr_admission_t adm;         /* admission state */
    int busy;                    /* slots taken: handlers running */
    int busy_acceptors;          /* ...by acceptors: at most slots - 1 */
    method_t methods[MAX_METHODS];
    int nmethods;
    int port;
    uint32_t max_inflight;
    atomic_int started, stopped;
    atomic_uint inflight;
    atomic_uint_fast64_t calls, ok, shed, expired, unauthenticated;
    atomic_int_fast64_t auth_logged_ns; /* last unauthenticated-call warning (rate limit) */
    token_t *tokens;   /* bearer tokens; ntokens == 0: auth off. Read-only after new. */
    int ntokens;
    pthread_mutex_t health_mu;
    int serving;
    call_t *watchers;
    /* Health-only services (mmr_server_add_health_service): names fixed at start, serving
     * flags under health_mu. */
    struct { char *name; int serving; } hsvc[MMR_SERVER_HEALTH_SERVICES_MAX];
    int nhsvc;
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

/* Posts a request for the next call of method m on the acceptor's queue. */
static void request_next(mmr_server_t *s, method_t *m) {
    if (atomic_load(&s->stopped)) return;
    call_t *c = calloc(1, sizeof *c);
    if (!c) { mmr_log(MMR_LOG_ERROR, "server", "out of memory re-arming %s", m->path); return; }
    c->s = s;
    c->m = m;
    c->t_main.c = c;
    c->t_close.c = c;
    c->status_details = grpc_empty_slice();
    grpc_metadata_array_init(&c->md);
    grpc_call_error e;
    if (m->kind == M_GENERIC) grpc_call_details_init(&c->details);
    c->t_main.kind = TAG_REQUESTED; /* the last write to c before the tag is posted */
    if (m->kind == M_GENERIC) {
        e = grpc_server_request_call(s->server, &c->call, &c->details, &c->md, s->cq, s->cq,
                                     &c->t_main);
    } else {
        e = grpc_server_request_registered_call(s->server, m->handle, &c->call, &c->deadline,
                                                &c->md, &c->payload, s->cq, s->cq, &c->t_main);
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
    method_t *m = c->m;
    atomic_fetch_add(&m->by_status[(unsigned)status < MMR_SERVER_STATUS_COUNT ? status : MMR_RPC_UNKNOWN], 1);
    double ms = (double)(mmr_mono_ns() - c->matched_ns) / 1e6;
    int b = 0;
    while (b < MMR_SERVER_LATENCY_BUCKETS - 1 && ms > mmr_server_latency_le[b]) b++;
    atomic_fetch_add(&m->latency[b], 1);
    atomic_fetch_add(&m->latency_sum_us, (uint64_t)(ms * 1000.0));
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
    grpc_call *call = c->call; /* once the batch is started c is the acceptor's to free */
    c->t_main.kind = TAG_DONE;
    grpc_call_error e = grpc_call_start_batch(call, ops, (size_t)n, &c->t_main, NULL);
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

/* Decodes and runs an admitted (or on-acceptor) unary call and queues its answer. */
static void run_unary(call_t *c) {
    mmr_server_t *s = c->s;
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
    mmr_rpc_request_t req = {GRPC_SLICE_START_PTR(body), GRPC_SLICE_LENGTH(body), deadline,
                             c->arena, c->client};
    mmr_rpc_reply_t reply = {.status = MMR_RPC_INTERNAL};
    if (!c->arena) snprintf(reply.message, sizeof reply.message, "out of memory");
    else c->m->fn(c->m->opaque, &req, &reply);
    send_unary(c, reply.status, reply.message, reply.msg);
    grpc_slice_unref(body);
}

/* Takes the oldest queued call (q_mu held, q_len > 0). */
static call_t *q_pop(mmr_server_t *s) {
    call_t *c = s->q[s->q_head];
    s->q_head = (s->q_head + 1) % s->q_cap;
    s->q_len--;
    return c;
}

/* Runs c in a slot the caller took; returns with q_mu held. */
static void run_timed(mmr_server_t *s, call_t *c) {
    int64_t t0 = mmr_mono_ns();
    run_unary(c);
    int64_t took = mmr_mono_ns() - t0;
    pthread_mutex_lock(&s->q_mu);
    mmr_admission_ran(&s->adm, took);
}

/* Acceptor holding a slot: runs c, then the ring's waiting calls unless overloaded, then
 * gives the slot back (to a worker when calls still wait). */
static void run_in_slot(mmr_server_t *s, call_t *c) {
    for (;;) {
        run_timed(s, c);
        if (!s->q_len || s->adm.overloaded) break;
        c = q_pop(s);
        pthread_mutex_unlock(&s->q_mu);
    }
    s->busy--;
    s->busy_acceptors--;
    if (s->q_len) pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
}

/* Acceptor: runs c in a free slot, queues it for the next slot, or refuses it at once
 * (mmr_admission.h decides; max_inflight is a hard bound besides). A queued c belongs to
 * whichever thread, acceptor or worker, pops it and is not touched here again. */
static void admit_unary(call_t *c) {
    mmr_server_t *s = c->s;
    if (c->m->on_acceptor) { run_unary(c); return; }
    int admitted = 0, here = 0;
    int64_t now = c->matched_ns;
    pthread_mutex_lock(&s->q_mu);
    int64_t head_wait = s->q_len ? now - s->q[s->q_head]->matched_ns : 0;
    if (mmr_admission_arrive(&s->adm, now, s->q_len, head_wait, s->busy) &&
        atomic_load(&s->inflight) < s->max_inflight) {
        c->admitted = admitted = 1;
        atomic_fetch_add(&s->inflight, 1);
        if (s->busy < s->slots && s->busy_acceptors < s->slots - 1 && !s->q_len &&
            !s->adm.overloaded) {
            s->busy++;
            s->busy_acceptors++;
            here = 1;
        } else {
            s->q[(s->q_head + s->q_len++) % s->q_cap] = c;
            if (s->busy < s->slots) pthread_cond_signal(&s->q_cv);
        }
    }
    pthread_mutex_unlock(&s->q_mu);
    if (here) run_in_slot(s, c);
    if (admitted) return;
    atomic_fetch_add(&s->shed, 1);
    send_unary(c, MMR_RPC_RESOURCE_EXHAUSTED, "server overloaded: admission limit reached", NULL);
}

/* --- bearer tokens --------------------------------------------------------------------- */

/* 1 when a (alen bytes) equals b (blen bytes). Time depends on blen (a stored token's
 * length) only: no early exit on the first differing byte or on a length mismatch. */
static int ct_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
    volatile uint8_t d = 0;
    for (size_t i = 0; i < blen; i++) d |= (uint8_t)((i < alen ? a[i] : 0) ^ b[i]);
    return (d | (alen != blen)) == 0;
}

/* The client whose token the call carries ("authorization: Bearer <token>"), or NULL
 * with *why set. Every stored token is compared, whatever matched. */
static const char *auth_client(mmr_server_t *s, const grpc_metadata_array *md, const char **why) {
    const grpc_slice *v = NULL;
    for (size_t i = 0; i < md->count; i++)
        if (grpc_slice_str_cmp(md->metadata[i].key, "authorization") == 0) {
            v = &md->metadata[i].value;
            break;
        }
    if (!v) { *why = "missing bearer token"; return NULL; }
    const uint8_t *p = GRPC_SLICE_START_PTR(*v);
    size_t n = GRPC_SLICE_LENGTH(*v);
    if (n < 7 || strncasecmp((const char *)p, "Bearer ", 7) != 0) {
        *why = "authorization is not a bearer token";
        return NULL;
    }
    p += 7, n -= 7;
    size_t hit = 0; /* index + 1 of the matching token; tokens are unique */
    for (int i = 0; i < s->ntokens; i++)
        hit |= (size_t)(i + 1) * (size_t)ct_equal(p, n, (const uint8_t *)s->tokens[i].secret,
                                                  s->tokens[i].len);
    if (!hit) { *why = "invalid bearer token"; return NULL; }
    return s->tokens[hit - 1].client;
}

/* Answers UNAUTHENTICATED unless the call carries a known token; returns 1 when admitted
 * to go on. Failures are logged at most once a second, with the peer and never the
 * presented value. */
static int auth_call(call_t *c) {
    mmr_server_t *s = c->s;
    const char *why = NULL;
    c->client = auth_client(s, &c->md, &why);
    if (c->client) return 1;
    uint64_t total = atomic_fetch_add(&s->unauthenticated, 1) + 1;
    int64_t now = mmr_mono_ns(), last = atomic_load(&s->auth_logged_ns);
    if (now - last >= 1000000000 && atomic_compare_exchange_strong(&s->auth_logged_ns, &last, now)) {
        char *peer = grpc_call_get_peer(c->call);
        mmr_log(MMR_LOG_WARN, "server", "unauthenticated call to %s from %s: %s (%llu in total)",
                c->m->kind == M_GENERIC ? "an unregistered method" : c->m->path,
                peer ? peer : "?", why, (unsigned long long)total);
        gpr_free(peer);
    }
    send_unary(c, MMR_RPC_UNAUTHENTICATED, why, NULL);
    return 0;
}

static void tokens_free(mmr_server_t *s) {
    for (int i = 0; i < s->ntokens; i++) {
        free(s->tokens[i].client);
        if (s->tokens[i].secret) explicit_bzero(s->tokens[i].secret, s->tokens[i].len);
        free(s->tokens[i].secret);
    }
    free(s->tokens);
    s->tokens = NULL;
    s->ntokens = 0;
}

static int client_name_ok(const char *p) {
    for (; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-@:", *p)) return 0;
    return 1;
}

/* Reads `client_name token` lines. Error messages name file:line, never a token. */
static mmr_status_t tokens_load(mmr_server_t *s, const char *path, mmr_err_t *err) {
    FILE *f = fopen(path, "r");
    if (!f) return mmr_err_set(err, MMR_ERR_IO, "auth tokens file %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, cap_tokens = 0;
    mmr_status_t st = MMR_OK;
    while (st == MMR_OK && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *save = NULL;
        char *name = strtok_r(line, " \t\r\n", &save);
        if (!name || *name == '#') continue;
        char *secret = strtok_r(NULL, " \t\r\n", &save);
        if (!secret || strtok_r(NULL, " \t\r\n", &save)) {
            st = mmr_err_set(err, MMR_ERR_INVALID, "%s:%d: expected `client_name token`", path, lineno);
            break;
        }
        if (!client_name_ok(name)) {
            st = mmr_err_set(err, MMR_ERR_INVALID,
                             "%s:%d: client name may use letters, digits and . _ - @ : only", path,
                             lineno);
            break;
        }
        size_t len = strlen(secret);
        for (size_t i = 0; i < len && st == MMR_OK; i++)
            if ((unsigned char)secret[i] < 0x21 || (unsigned char)secret[i] > 0x7e)
                st = mmr_err_set(err, MMR_ERR_INVALID, "%s:%d: token has a non-printable byte",
                                 path, lineno);
        for (int i = 0; i < s->ntokens && st == MMR_OK; i++)
            if (s->tokens[i].len == len && memcmp(s->tokens[i].secret, secret, len) == 0)
                st = mmr_err_set(err, MMR_ERR_INVALID, "%s:%d: same token as client %s", path,
                                 lineno, s->tokens[i].client);
        if (st != MMR_OK) break;
        if (s->ntokens == cap_tokens) {
            int ncap = cap_tokens ? 2 * cap_tokens : 8;
            token_t *t = realloc(s->tokens, (size_t)ncap * sizeof *t);
            if (!t) { st = mmr_err_set(err, MMR_ERR_NOMEM, "out of memory"); break; }
            s->tokens = t;
            cap_tokens = ncap;
        }
        token_t *t = &s->tokens[s->ntokens];
        t->client = strdup(name);
        t->secret = strdup(secret);
        t->len = len;
        s->ntokens++;
        if (!t->client || !t->secret) { st = mmr_err_set(err, MMR_ERR_NOMEM, "out of memory"); break; }
        if (len < 16)
            mmr_log(MMR_LOG_WARN, "server", "%s:%d: token of client %s is shorter than 16 characters",
                    path, lineno, name);
    }
    if (st == MMR_OK && ferror(f))
        st = mmr_err_set(err, MMR_ERR_IO, "auth tokens file %s: %s", path, strerror(errno));
    if (st == MMR_OK && s->ntokens == 0)
        st = mmr_err_set(err, MMR_ERR_INVALID,
                         "auth tokens file %s has no tokens (every call would be refused; "
                         "leave grpc.auth_tokens_file empty to turn auth off)", path);
    if (line) explicit_bzero(line, cap);
    free(line);
    fclose(f);
    if (st != MMR_OK) tokens_free(s);
    return st;
}

/* --- TLS -------------------------------------------------------------------------------- */

int mmr_server_client_auth_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "none") == 0) return MMR_SERVER_CLIENT_AUTH_NONE;
    if (strcmp(s, "request") == 0) return MMR_SERVER_CLIENT_AUTH_REQUEST;
    if (strcmp(s, "require") == 0) return MMR_SERVER_CLIENT_AUTH_REQUIRE;
    return -1;
}

static int nonempty(const char *p) { return p && *p; }

/* Reads a whole PEM file (at most 1 MiB) into *out (owned, NUL-terminated). */
static mmr_status_t pem_read(const char *what, const char *path, char **out, mmr_err_t *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mmr_err_set(err, MMR_ERR_IO, "%s %s: %s", what, path, strerror(errno));
    size_t cap = 1 << 20;
    char *buf = malloc(cap + 1);
    size_t n = buf ? fread(buf, 1, cap + 1, f) : 0;
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    mmr_status_t st = MMR_OK;
    if (rerr) st = mmr_err_set(err, MMR_ERR_IO, "%s %s: %s", what, path, strerror(rerr));
    else if (n > cap) st = mmr_err_set(err, MMR_ERR_INVALID, "%s %s: larger than 1 MiB", what, path);
    else {
        buf[n] = '\0';
        if (!strstr(buf, "-----BEGIN "))
            st = mmr_err_set(err, MMR_ERR_INVALID, "%s %s: no PEM block (-----BEGIN ...) in it",
                             what, path);
    }
    if (st != MMR_OK) {
        explicit_bzero(buf, n < cap ? n : cap);
        free(buf);
        return st;
    }
    *out = buf;
    return MMR_OK;
}

/* Server credentials from conf: insecure when no certificate is configured. */
static mmr_status_t creds_new(const mmr_server_conf_t *conf, grpc_server_credentials **out,
                              mmr_err_t *err) {
    *out = NULL;
    mmr_server_client_auth_t mode = conf->tls_client_auth;
    if (!nonempty(conf->tls_cert_path)) {
        if (nonempty(conf->tls_key_path) || nonempty(conf->tls_client_ca_path) ||
            mode != MMR_SERVER_CLIENT_AUTH_NONE)
            return mmr_err_set(err, MMR_ERR_INVALID,
                               "TLS key, client CA or client auth set without a server certificate");
        *out = grpc_insecure_server_credentials_create();
        return MMR_OK;
    }
    if (!nonempty(conf->tls_key_path))
        return mmr_err_set(err, MMR_ERR_INVALID, "TLS certificate %s given without its key",
                           conf->tls_cert_path);
    if (mode != MMR_SERVER_CLIENT_AUTH_NONE && !nonempty(conf->tls_client_ca_path))
        return mmr_err_set(err, MMR_ERR_INVALID,
                           "client certificates requested but no client CA to verify them with");
    if (mode == MMR_SERVER_CLIENT_AUTH_NONE && nonempty(conf->tls_client_ca_path))
        return mmr_err_set(err, MMR_ERR_INVALID,
                           "a client CA is set but client auth is none (set request or require)");
    char *cert = NULL, *key = NULL, *ca = NULL;
    mmr_status_t st = pem_read("TLS certificate", conf->tls_cert_path, &cert, err);
    if (st == MMR_OK) st = pem_read("TLS key", conf->tls_key_path, &key, err);
    if (st == MMR_OK && nonempty(conf->tls_client_ca_path))
        st = pem_read("TLS client CA", conf->tls_client_ca_path, &ca, err);
    if (st == MMR_OK) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
        grpc_ssl_client_certificate_request_type req =
            mode == MMR_SERVER_CLIENT_AUTH_REQUIRE ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : mode == MMR_SERVER_CLIENT_AUTH_REQUEST ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                                                     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
        /* grpc copies the PEM strings */
        *out = grpc_ssl_server_credentials_create_ex(ca, &pair, 1, req, NULL);
        if (!*out) st = mmr_err_set(err, MMR_ERR_RPC, "grpc_ssl_server_credentials_create_ex failed");
    }
    if (key) explicit_bzero(key, strlen(key));
    free(cert);
    free(key);
    free(ca);
    return st;
}

/* gRPC's own log lines go through mmr_log (module "grpc"). */
static void grpc_log_sink(gpr_log_func_args *a) {
    mmr_log_level_t lvl = a->severity == GPR_LOG_SEVERITY_ERROR  ? MMR_LOG_ERROR
                          : a->severity == GPR_LOG_SEVERITY_INFO ? MMR_LOG_INFO
                                                                 : MMR_LOG_DEBUG;
    const char *file = a->file ? strrchr(a->file, '/') : NULL;
    mmr_log(lvl, "grpc", "%s (%s:%d)", a->message, file ? file + 1 : a->file ? a->file : "?",
            a->line);
}

static pthread_once_t grpc_log_once = PTHREAD_ONCE_INIT;
static void grpc_log_route(void) { gpr_set_log_function(grpc_log_sink); }

/* --- health ---------------------------------------------------------------------------- */

/* svc: -1 for the server (and its RPC services), else a health-only service, which is
 * SERVING only while both it and the server are. */
static int health_status_locked(mmr_server_t *s, int svc) {
    return s->serving && (svc < 0 || s->hsvc[svc].serving)
               ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

#define HEALTH_UNKNOWN (-2)
/* The service Health answers for: -1 for "" and the RPC services, a health-only service's
 * index, or HEALTH_UNKNOWN (NOT_FOUND for Check, SERVICE_UNKNOWN for Watch). */
static int health_service(mmr_server_t *s, const char *service) {
    if (!*service || strcmp(service, "grpc.health.v1.Health") == 0) return -1;
    for (int i = 0; i < s->nhsvc; i++)
        if (strcmp(s->hsvc[i].name, service) == 0) return i;
    for (int i = 0; i < s->nmethods; i++) {
        const char *p = s->methods[i].path; /* "/pkg.Service/Method" */
        size_t n = strlen(service);
        if (p[0] == '/' && strncmp(p + 1, service, n) == 0 && p[1 + n] == '/') return -1;
    }
    return HEALTH_UNKNOWN;
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
    int svc = health_service(s, in->service);
    grpc__health__v1__health_check_request__free_unpacked(in, NULL);
    if (svc == HEALTH_UNKNOWN) {
        reply->status = MMR_RPC_NOT_FOUND;
        snprintf(reply->message, sizeof reply->message, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse *out = mmr_arena_alloc(req->arena, sizeof *out);
    grpc__health__v1__health_check_response__init(out);
    pthread_mutex_lock(&s->health_mu);
    out->status = health_status_locked(s, svc);
    pthread_mutex_unlock(&s->health_mu);
    reply->status = MMR_RPC_OK;
    reply->msg = &out->base;
}

/* What watcher c should be told now. Caller holds health_mu. */
static int watch_status_locked(call_t *c) {
    return c->watch_unknown ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN
                            : health_status_locked(c->s, c->watch_svc);
}

/* 1 when watcher c is idle and has something new to send (a changed status, or the
 * final UNAVAILABLE when stopping). Caller holds health_mu. */
static int watch_due_locked(call_t *c) {
    return !c->closed && !c->sending && !c->status_sent &&
           (atomic_load(&c->s->stopped) || c->last_sent != watch_status_locked(c));
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
        r.status = watch_status_locked(c);
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

/* Per the gRPC health spec an unknown service is not an error for Watch: the stream
 * gets SERVICE_UNKNOWN and stays open (services are fixed once started, so it stays
 * unknown until shutdown ends the stream with UNAVAILABLE). */
static void watch_start(call_t *c) {
    mmr_server_t *s = c->s;
    int svc = -1, decoded = 1;
    if (c->payload) {
        grpc_byte_buffer_reader reader;
        grpc_byte_buffer_reader_init(&reader, c->payload);
        grpc_slice body = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        Grpc__Health__V1__HealthCheckRequest *in = grpc__health__v1__health_check_request__unpack(
            NULL, GRPC_SLICE_LENGTH(body), GRPC_SLICE_START_PTR(body));
        grpc_slice_unref(body);
        decoded = in != NULL;
        if (in) svc = health_service(s, in->service);
        if (in) grpc__health__v1__health_check_request__free_unpacked(in, NULL);
    }
    if (!decoded) {
        send_unary(c, MMR_RPC_INVALID_ARGUMENT, "undecodable HealthCheckRequest", NULL);
        return;
    }
    c->watch_unknown = svc == HEALTH_UNKNOWN;
    c->watch_svc = svc < 0 ? -1 : svc;
    grpc_op close_op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
    close_op.data.recv_close_on_server.cancelled = &c->cancelled;
    pthread_mutex_lock(&s->health_mu);
    c->wnext = s->watchers;
    if (s->watchers) s->watchers->wprev = c;
    s->watchers = c;
    c->t_close.kind = TAG_WATCH_CLOSED;
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
    if (watch_due_locked(c)) watch_send_locked(c, 0);
    int done = c->outstanding == 0;
    if (done) watch_unlink_locked(c);
    pthread_mutex_unlock(&s->health_mu);
    if (done) call_free(c);
}

/* Tells every idle watcher a changed status (or, when stopping, finishes it). A watcher
 * busy sending picks the change up when that send completes (watch_event). */
static void watch_notify_all(mmr_server_t *s) {
    pthread_mutex_lock(&s->health_mu);
    for (call_t *c = s->watchers; c; c = c->wnext)
        if (watch_due_locked(c)) watch_send_locked(c, 0);
    pthread_mutex_unlock(&s->health_mu);
}

/* --- acceptors -------------------------------------------------------------------------- */

static void *acceptor_main(void *arg) {
    mmr_server_t *s = arg;
    mmr_thread_set_name("mmr-acceptor");
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        tag_t *t = ev.tag;
        tag_kind_t kind = t->kind;
        call_t *c = t->c;
        switch (kind) {
        case TAG_REQUESTED:
            if (!ev.success) { call_free(c); break; } /* server shutting down */
            c->matched_ns = mmr_mono_ns();
            method_t *m = c->m;
            /* re-armed first: this acceptor may now run handlers for a while */
            request_next(s, m);
            if (s->ntokens && !m->public && !auth_call(c)) {}
            else if (m->kind == M_UNARY) admit_unary(c);
            else if (m->kind == M_HEALTH_WATCH) watch_start(c);
            else send_unary(c, MMR_RPC_UNIMPLEMENTED, "unknown method", NULL);
            break;
        case TAG_DONE:
            if (c->admitted) atomic_fetch_sub(&s->inflight, 1);
            call_free(c);
            break;
        case TAG_WATCH_SENT:
        case TAG_WATCH_CLOSED:
            watch_event(c, kind);
            break;
        }
    }
    return NULL;
}

/* Runs queued calls whenever a slot is free, until stopping with the ring empty. */
static void *worker_main(void *arg) {
    mmr_server_t *s = arg;
    mmr_thread_set_name("mmr-worker");
    pthread_mutex_lock(&s->q_mu);
    for (;;) {
        while (!s->q_stop && !(s->q_len && s->busy < s->slots)) pthread_cond_wait(&s->q_cv, &s->q_mu);
        /* Stopping: grpc is done with every call, but after a grace timeout cancelled them
         * calls may still wait here; they are run (their answers fail) so that each is
         * freed and leaves inflight, even beyond the slot bound. */
        if (!s->q_len) break;
        call_t *c = q_pop(s);
        s->busy++;
        pthread_mutex_unlock(&s->q_mu);
        run_timed(s, c);
        s->busy--;
    }
    pthread_mutex_unlock(&s->q_mu);
    return NULL;
}

/* --- lifecycle ------------------------------------------------------------------------- */

static method_t *method_add(mmr_server_t *s, const char *path, method_kind_t kind,
                            mmr_server_unary_fn fn, void *opaque) {
    if (s->nmethods == MAX_METHODS) return NULL;
    method_t *m = &s->methods[s->nmethods];
    m->path = strdup(path);
    m->kind = kind;
    m->public = strncmp(path, "/grpc.health.v1.Health/", 23) == 0;
    m->on_acceptor = strcmp(path, "/grpc.health.v1.Health/Check") == 0;
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
    pthread_once(&grpc_log_once, grpc_log_route);
    grpc_server_credentials *creds = NULL;
    mmr_status_t st = creds_new(conf, &creds, err);
    if (st != MMR_OK) return st;
    grpc_init();
    mmr_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        grpc_server_credentials_release(creds);
        grpc_shutdown();
        return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&s->health_mu, NULL);
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_cond_init(&s->q_cv, NULL);
    s->slots = conf->threads > 0 ? conf->threads : mmr_cpu_count();
    s->max_inflight = conf->max_inflight ? conf->max_inflight : 256;
    s->q_cap = s->max_inflight;
    mmr_admission_init(&s->adm, (int64_t)(conf->queue_target_ms ? conf->queue_target_ms : 5) * 1000000,
                       s->slots);
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
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, s->cq, NULL);
    int tls = nonempty(conf->tls_cert_path);
    s->port = grpc_server_add_http2_port(s->server, conf->listen, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        mmr_server_free(s);
        return mmr_err_set(err, MMR_ERR_RPC, "cannot listen on %s (address in use or invalid%s)",
                           conf->listen,
                           tls ? ", or the TLS certificate and key are unusable: see the grpc log"
                               : "");
    }
    if (nonempty(conf->auth_tokens_file) &&
        (st = tokens_load(s, conf->auth_tokens_file, err)) != MMR_OK) {
        mmr_server_free(s);
        return st;
    }
    mmr_server_client_auth_t mode = conf->tls_client_auth;
    mmr_log(MMR_LOG_INFO, "server", "%s on %s; bearer-token auth %s (%d tokens)",
            !tls ? "plaintext"
            : mode == MMR_SERVER_CLIENT_AUTH_REQUIRE ? "mutual TLS (client certificate required)"
            : mode == MMR_SERVER_CLIENT_AUTH_REQUEST ? "TLS (client certificate verified if sent)"
                                                     : "TLS",
            conf->listen, s->ntokens ? "on" : "off", s->ntokens);
    for (int i = 0; i < s->ntokens; i++)
        mmr_log(MMR_LOG_INFO, "server", "bearer token loaded for client %s", s->tokens[i].client);
    if (s->ntokens && !tls)
        mmr_log(MMR_LOG_WARN, "server", "bearer tokens over plaintext gRPC can be read on the "
                                        "network: configure TLS outside a trusted network");
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

mmr_status_t mmr_server_add_health_service(mmr_server_t *s, const char *name, mmr_err_t *err) {
    if (atomic_load(&s->started))
        return mmr_err_set(err, MMR_ERR_INVALID, "add_health_service %s after start", name);
    if (!name || !*name || health_service(s, name) != HEALTH_UNKNOWN)
        return mmr_err_set(err, MMR_ERR_INVALID, "health service '%s': empty or taken", name ? name : "");
    if (s->nhsvc == MMR_SERVER_HEALTH_SERVICES_MAX)
        return mmr_err_set(err, MMR_ERR_INVALID, "more than %d health services", MMR_SERVER_HEALTH_SERVICES_MAX);
    if (!(s->hsvc[s->nhsvc].name = strdup(name))) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    s->hsvc[s->nhsvc++].serving = 1;
    return MMR_OK;
}

void mmr_server_set_service_serving(mmr_server_t *s, const char *name, int serving) {
    if (!name) return;
    pthread_mutex_lock(&s->health_mu);
    int changed = 0;
    for (int i = 0; i < s->nhsvc; i++)
        if (strcmp(s->hsvc[i].name, name) == 0 && s->hsvc[i].serving != !!serving) {
            s->hsvc[i].serving = !!serving;
            changed = 1;
        }
    pthread_mutex_unlock(&s->health_mu);
    if (changed) watch_notify_all(s);
}

mmr_status_t mmr_server_start(mmr_server_t *s, mmr_err_t *err) {
    s->acceptors = calloc((size_t)s->slots, sizeof *s->acceptors);
    s->workers = calloc((size_t)s->slots, sizeof *s->workers);
    s->q = calloc(s->q_cap, sizeof *s->q);
    if (!s->acceptors || !s->workers || !s->q) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    grpc_server_start(s->server);
    atomic_store(&s->started, 1);
    /* ARMED requests outstanding per method (each matched one is re-armed at once), so
     * arriving calls are matched, and admitted or refused, at once: a call grpc core holds
     * unmatched is invisible to admission and is cancelled, not drained, at shutdown. */
    for (int m = 0; m < s->nmethods; m++)
        for (int k = 0; k < ARMED; k++) request_next(s, &s->methods[m]);
    for (int i = 0; i < s->slots; i++) {
        pthread_create(&s->acceptors[i], NULL, acceptor_main, s);
        pthread_create(&s->workers[i], NULL, worker_main, s);
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
    out->unauthenticated = atomic_load(&s->unauthenticated);
    out->inflight = atomic_load(&s->inflight);
}

int mmr_server_method_count(const mmr_server_t *s) { return s->nmethods; }

void mmr_server_get_method_stats(mmr_server_t *s, int i, mmr_server_method_stats_t *out) {
    method_t *m = &s->methods[i];
    out->path = m->kind == M_GENERIC ? "unknown" : m->path;
    for (int k = 0; k < MMR_SERVER_STATUS_COUNT; k++) out->by_status[k] = atomic_load(&m->by_status[k]);
    for (int k = 0; k < MMR_SERVER_LATENCY_BUCKETS; k++) out->latency[k] = atomic_load(&m->latency[k]);
    out->latency_sum_ms = (double)atomic_load(&m->latency_sum_us) / 1000.0;
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
    pthread_mutex_lock(&s->q_mu); /* every call is done: the workers find the ring empty */
    s->q_stop = 1;
    pthread_cond_broadcast(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    for (int i = 0; i < s->slots; i++) pthread_join(s->workers[i], NULL);
    grpc_completion_queue_shutdown(s->cq);
    for (int i = 0; i < s->slots; i++) pthread_join(s->acceptors[i], NULL);
    /* Only now: an acceptor that read stopped == 0 may still have been re-arming a request. */
    grpc_server_destroy(s->server);
    s->server = NULL;
    grpc_completion_queue_destroy(s->cq);
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
        grpc_completion_queue_shutdown(s->cq);
        while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {}
        grpc_completion_queue_destroy(s->cq);
    }
    for (int i = 0; i < s->nmethods; i++) free(s->methods[i].path);
    for (int i = 0; i < s->nhsvc; i++) free(s->hsvc[i].name);
    tokens_free(s);
    free(s->acceptors);
    free(s->workers);
    free(s->q);
    pthread_mutex_destroy(&s->health_mu);
    pthread_mutex_destroy(&s->q_mu);
    pthread_cond_destroy(&s->q_cv);
    free(s);
    grpc_shutdown();
}
