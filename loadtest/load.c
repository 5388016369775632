/* load.c — the mmrec-load engine: workload generation, the open-loop scheduler over
 * grpc core's async API, and the closed-loop callers (see load.h for the model). */
#include "load.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "mmr_rand.h"
#include "mmr_rpc.h"
#include "mmr_time.h"
#include "mmrec/v1/ranking.pb-c.h"
#include "pace.h"
#include "zipf.h"

#define RANK_METHOD "/mmrec.v1.Ranker/Rank"
#define HEALTH_METHOD "/grpc.health.v1.Health/Check"
#define HIST_LOWEST 1                       /* ns resolution */
#define HIST_HIGHEST (60LL * 1000000000LL)  /* 60 s */

static const char *const status_names[MMR_LOAD_NSTATUS] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED"};

const char *mmr_load_status_name(int code) {
    return code >= 0 && code < MMR_LOAD_NSTATUS ? status_names[code] : "UNKNOWN_CODE";
}

void mmr_load_cfg_default(mmr_load_cfg_t *c) {
    memset(c, 0, sizeof *c);
    c->target = "127.0.0.1:50051";
    c->mode = MMR_LOAD_OPEN;
    c->rate = 1000;
    c->duration_s = 10;
    c->connections = 1;
    c->max_outstanding = 1024;
    c->concurrency = 8;
    c->deadline_ms = 1000;
    c->slack_ms = 10;
    c->users = 1000;
    c->items = 500;
    c->dist = MMR_LOAD_UNIFORM;
    c->zipf_s = 1.0;
    c->candidates = 100;
    c->top_k = 10;
    c->seed = 1;
}

/* ---- workload ------------------------------------------------------------------ */

typedef struct ctx {
    const mmr_load_cfg_t *cfg;
    mmr_zipf_t users, items;
    long total;          /* open loop: requests in the schedule */
    int64_t start_ns, hard_stop_ns, end_ns;
    pthread_barrier_t ready, go;
} ctx_t;

/* Per-thread request builder: the messages point into these buffers, valid until the
 * next gen_request on the same builder. */
typedef struct gen {
    uint64_t rng;
    char user[MMR_ZIPF_ID_LEN];
    char **cands; /* [candidates] pointers into pool */
    char *pool;   /* [candidates * MMR_ZIPF_ID_LEN] */
    Mmrec__V1__RankRequest rank;
    Grpc__Health__V1__HealthCheckRequest health;
} gen_t;

static int gen_init(gen_t *g, const mmr_load_cfg_t *cfg, int thread) {
    memset(g, 0, sizeof *g);
    g->rng = cfg->seed * 0x9e3779b97f4a7c15ull + (uint64_t)thread * 0xd1b54a32d192ed03ull + 1;
    long n = cfg->retrieve_k > 0 ? 0 : cfg->candidates;
    g->cands = calloc((size_t)(n ? n : 1), sizeof *g->cands);
    g->pool = malloc((size_t)(n ? n : 1) * MMR_ZIPF_ID_LEN);
    return g->cands && g->pool ? 0 : -1;
}

static void gen_free(gen_t *g) {
    free(g->cands);
    free(g->pool);
}

/* Draws the next request; returns 1 for a health check, 0 for Rank. */
static int gen_request(gen_t *g, const ctx_t *x, const ProtobufCMessage **msg) {
    const mmr_load_cfg_t *cfg = x->cfg;
    if (cfg->health_mix > 0 && mmr_rand_uniform(&g->rng) < cfg->health_mix) {
        g->health = (Grpc__Health__V1__HealthCheckRequest)GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        *msg = &g->health.base;
        return 1;
    }
    Mmrec__V1__RankRequest r = MMREC__V1__RANK_REQUEST__INIT;
    mmr_zipf_draw_id(&x->users, &g->rng, 'u', g->user);
    r.user_id = g->user;
    r.top_k = (uint32_t)cfg->top_k;
    if (cfg->retrieve_k > 0) {
        r.retrieve_k = (uint32_t)cfg->retrieve_k;
    } else {
        for (long c = 0; c < cfg->candidates; c++) {
            g->cands[c] = g->pool + c * MMR_ZIPF_ID_LEN;
            mmr_zipf_draw_id(&x->items, &g->rng, 'i', g->cands[c]);
        }
        r.candidates = g->cands;
        r.n_candidates = (size_t)cfg->candidates;
    }
    g->rank = r;
    *msg = &g->rank.base;
    return 0;
}

/* ---- outcomes ------------------------------------------------------------------------ */

/* What one sender or caller thread records (merged into the result at the end): latency by
 * call type and by outcome, status counts, and the interval series. */
typedef struct tally {
    mmr_hdr_t *rank, *health, *ok, *shed, *ok_sent;
    mmr_load_interval_t *iv; /* [n_iv] */
    int n_iv;
    long transport_failures;
    long by_status[MMR_LOAD_NSTATUS];
} tally_t;

static mmr_status_t hist_new(mmr_hdr_t **h, mmr_err_t *err) {
    return mmr_hdr_new(HIST_LOWEST, HIST_HIGHEST, 2, h, err);
}

/* Intervals covering the run plus its drain: the last call may start at the hard stop. */
static int intervals_for(const mmr_load_cfg_t *cfg) {
    if (cfg->interval_ms <= 0) return 0;
    return (int)((cfg->duration_s * 1000 + cfg->deadline_ms) / cfg->interval_ms) + 2;
}

/* Creates the histograms and series of an empty tally (or result: same members). */
static mmr_status_t outcomes_new(mmr_hdr_t **rank, mmr_hdr_t **health, mmr_hdr_t **ok, mmr_hdr_t **shed,
                                 mmr_hdr_t **ok_sent, mmr_load_interval_t **iv, int n_iv, mmr_err_t *err) {
    mmr_status_t st = hist_new(rank, err);
    if (st == MMR_OK) st = hist_new(health, err);
    if (st == MMR_OK) st = hist_new(ok, err);
    if (st == MMR_OK) st = hist_new(shed, err);
    if (st == MMR_OK) st = hist_new(ok_sent, err);
    if (st == MMR_OK && n_iv > 0 && !(*iv = calloc((size_t)n_iv, sizeof **iv)))
        st = mmr_err_set(err, MMR_ERR_NOMEM, "interval series");
    for (int i = 0; st == MMR_OK && i < n_iv; i++) st = hist_new(&(*iv)[i].ok, err);
    return st;
}

static void intervals_free(mmr_load_interval_t *iv, int n) {
    for (int i = 0; iv && i < n; i++) mmr_hdr_free(iv[i].ok);
    free(iv);
}

static mmr_status_t tally_init(tally_t *t, const mmr_load_cfg_t *cfg, mmr_err_t *err) {
    memset(t, 0, sizeof *t);
    t->n_iv = intervals_for(cfg);
    return outcomes_new(&t->rank, &t->health, &t->ok, &t->shed, &t->ok_sent, &t->iv, t->n_iv, err);
}

static void tally_free(tally_t *t) {
    mmr_hdr_free(t->rank);
    mmr_hdr_free(t->health);
    mmr_hdr_free(t->ok);
    mmr_hdr_free(t->shed);
    mmr_hdr_free(t->ok_sent);
    intervals_free(t->iv, t->n_iv);
    memset(t, 0, sizeof *t);
}

/* One completed call: latency from from_ns (scheduled or actual send) to now_ns, sent at
 * sent_ns; status is the gRPC status, or -1 when the call ended without one. */
static void tally_record(tally_t *t, const ctx_t *x, int64_t from_ns, int64_t sent_ns, int64_t now_ns,
                         int is_health, int status) {
    int64_t lat = now_ns - from_ns;
    mmr_hdr_record(is_health ? t->health : t->rank, lat);
    if (status < 0) t->transport_failures++;
    else t->by_status[status < MMR_LOAD_NSTATUS ? status : GRPC_STATUS_UNKNOWN]++;
    if (status == GRPC_STATUS_OK) mmr_hdr_record(t->ok, lat);
    if (status == GRPC_STATUS_OK) mmr_hdr_record(t->ok_sent, now_ns - sent_ns);
    if (status == GRPC_STATUS_RESOURCE_EXHAUSTED) mmr_hdr_record(t->shed, lat);
    if (!t->n_iv) return;
    int64_t k = (from_ns - x->start_ns) / ((int64_t)x->cfg->interval_ms * 1000000);
    mmr_load_interval_t *iv = &t->iv[k < 0 ? 0 : k >= t->n_iv ? t->n_iv - 1 : k];
    if (status == GRPC_STATUS_OK) mmr_hdr_record(iv->ok, lat);
    else if (status == GRPC_STATUS_RESOURCE_EXHAUSTED) iv->shed++;
    else iv->other++;
}

static void tally_merge(mmr_load_result_t *res, const tally_t *t) {
    mmr_hdr_merge(res->rank, t->rank, NULL);
    mmr_hdr_merge(res->health, t->health, NULL);
    mmr_hdr_merge(res->ok, t->ok, NULL);
    mmr_hdr_merge(res->shed, t->shed, NULL);
    mmr_hdr_merge(res->ok_sent, t->ok_sent, NULL);
    res->transport_failures += t->transport_failures;
    for (int c = 0; c < MMR_LOAD_NSTATUS; c++) res->by_status[c] += t->by_status[c];
    for (int i = 0; i < t->n_iv && i < res->n_intervals; i++) {
        mmr_hdr_merge(res->intervals[i].ok, t->iv[i].ok, NULL);
        res->intervals[i].shed += t->iv[i].shed;
        res->intervals[i].other += t->iv[i].other;
    }
}

/* ---- transport ---------------------------------------------------------------------- */

static gpr_timespec mono_deadline(int64_t at_ns) {
    if (at_ns == INT64_MAX) return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    int64_t d = at_ns - mmr_mono_ns();
    if (d <= 0) return gpr_inf_past(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(d, GPR_TIMESPAN));
}

/* ---- open loop ------------------------------------------------------------------- */

typedef struct slot { /* one in-flight call; the CQ tag is the slot */
    grpc_call *call;
    int64_t sched_ns, sent_ns;
    int is_health;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    struct slot *next_free;
} slot_t;

typedef struct sender {
    ctx_t *x;
    int k;                      /* thread index: sends requests k, k+N, ... */
    grpc_channel_credentials *creds;
    grpc_channel *ch;
    grpc_completion_queue *cq;
    slot_t *slots, *free_list;  /* [cap] */
    int cap, outstanding;
    grpc_slice auth;            /* "Bearer <token>" when a token is set */
    gen_t gen;
    tally_t t;
    long sent, completed, missed, dropped;
    int64_t max_lag_ns, last_done_ns;
    mmr_status_t st;
    mmr_err_t err;
} sender_t;

static void complete(sender_t *s, slot_t *sl, int success) {
    int64_t now = mmr_mono_ns();
    tally_record(&s->t, s->x, sl->sched_ns, sl->sent_ns, now, sl->is_health,
                 !success ? -1 : (int)sl->status >= 0 ? (int)sl->status : GRPC_STATUS_UNKNOWN);
    s->completed++;
    s->last_done_ns = now;
    grpc_slice_unref(sl->details);
    grpc_metadata_array_destroy(&sl->init_md);
    grpc_metadata_array_destroy(&sl->trail_md);
    grpc_byte_buffer_destroy(sl->send_bb);
    if (sl->recv_bb) grpc_byte_buffer_destroy(sl->recv_bb);
    if (sl->call) grpc_call_unref(sl->call);
    memset(sl, 0, sizeof *sl);
    sl->next_free = s->free_list;
    s->free_list = sl;
    s->outstanding--;
}

/* Handles completions until deadline_ns (or, with deadline_ns <= now, only those
 * already queued); returns after the first batch of events it could take. */
static void pump(sender_t *s, int64_t deadline_ns) {
    gpr_timespec dl = mono_deadline(deadline_ns);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, dl, NULL);
        if (ev.type != GRPC_OP_COMPLETE) return; /* timeout */
        complete(s, ev.tag, ev.success);
        dl = gpr_inf_past(GPR_CLOCK_MONOTONIC); /* then drain what else is ready */
    }
}

static void send_one(sender_t *s, int64_t sched_ns) {
    slot_t *sl = s->free_list;
    s->free_list = sl->next_free;
    s->outstanding++;
    s->sent++;
    sl->sched_ns = sched_ns;
    const ProtobufCMessage *msg;
    sl->is_health = gen_request(&s->gen, s->x, &msg);
    size_t len = protobuf_c_message_get_packed_size(msg);
    grpc_slice payload = grpc_slice_malloc(len);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(payload));
    sl->send_bb = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload);
    grpc_metadata_array_init(&sl->init_md);
    grpc_metadata_array_init(&sl->trail_md);
    sl->details = grpc_empty_slice();
    sl->status = GRPC_STATUS_UNKNOWN;
    int64_t now = mmr_mono_ns();
    sl->sent_ns = now;
    int64_t lag = now - sched_ns;
    if (lag > s->max_lag_ns) s->max_lag_ns = lag;
    if (lag > (int64_t)(s->x->cfg->slack_ms * 1e6)) s->missed++;
    grpc_slice method = grpc_slice_from_static_string(sl->is_health ? HEALTH_METHOD : RANK_METHOD);
    sl->call = grpc_channel_create_call(s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, method, NULL,
                                        mono_deadline(now + (int64_t)s->x->cfg->deadline_ms * 1000000), NULL);
    grpc_metadata md = {.key = grpc_slice_from_static_string("authorization"), .value = s->auth};
    int has_auth = s->x->cfg->bearer_token != NULL;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = has_auth ? 1 : 0;
    ops[0].data.send_initial_metadata.metadata = has_auth ? &md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = sl->send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &sl->init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &sl->recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &sl->trail_md;
    ops[5].data.recv_status_on_client.status = &sl->status;
    ops[5].data.recv_status_on_client.status_details = &sl->details;
    if (!sl->call || grpc_call_start_batch(sl->call, ops, 6, sl, NULL) != GRPC_CALL_OK)
        complete(s, sl, 0); /* counted as a transport failure */
}

/* Waits (up to 5 s) for the channel to connect so connection setup is not charged to
 * the first requests; a channel that fails to connect is left to fail its calls. */
static void connect_channel(sender_t *s) {
    int64_t until = mmr_mono_ns() + 5000000000LL;
    grpc_connectivity_state st;
    while ((st = grpc_channel_check_connectivity_state(s->ch, 1)) != GRPC_CHANNEL_READY &&
           st != GRPC_CHANNEL_TRANSIENT_FAILURE && st != GRPC_CHANNEL_SHUTDOWN && mmr_mono_ns() < until) {
        grpc_channel_watch_connectivity_state(s->ch, st, mono_deadline(until), s->cq, NULL);
        grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    }
}

static void *sender_main(void *arg) {
    sender_t *s = arg;
    const mmr_load_cfg_t *cfg = s->x->cfg;
    grpc_arg args[3];
    int nargs = 0;
    args[nargs++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                               .value.integer = 64 << 20};
    /* a private subchannel pool: each sender gets its own TCP connection */
    args[nargs++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
                               .value.integer = 1};
    if (cfg->ssl_target_name)
        args[nargs++] = (grpc_arg){.type = GRPC_ARG_STRING, .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                                   .value.string = (char *)cfg->ssl_target_name};
    grpc_channel_args cargs = {.num_args = (size_t)nargs, .args = args};
    s->ch = grpc_channel_create(cfg->target, s->creds, &cargs);
    s->cq = grpc_completion_queue_create_for_next(NULL);
    connect_channel(s);
    pthread_barrier_wait(&s->x->ready);
    pthread_barrier_wait(&s->x->go); /* main has set start_ns in between */

    const int64_t stop = s->x->hard_stop_ns;
    const long total = s->x->total, step = cfg->connections;
    mmr_pace_t pace;
    mmr_pace_init(&pace, cfg->rate, s->x->start_ns);
    long j = s->k;
    while (j < total || s->outstanding > 0) {
        int64_t now = mmr_mono_ns();
        if (j >= total) { pump(s, INT64_MAX); continue; } /* drain; calls carry deadlines */
        int64_t due = mmr_pace_due_ns(&pace, j);
        if (now >= stop) { /* hard stop: what is still unsent is dropped */
            s->dropped += (total - j + step - 1) / step;
            j = total;
            continue;
        }
        if (now >= due) {
            if (s->free_list) {
                send_one(s, due);
                j += step;
                if ((j / step) % 16 == 0) pump(s, 0); /* keep up with completions while behind */
            } else {
                pump(s, stop); /* at the outstanding cap: wait for a completion */
            }
        } else if (due - now > 1500000) {
            /* grpc core keeps deadlines in whole milliseconds: block on the CQ until a
             * little over 1 ms before the send, then poll it in short sleeps */
            pump(s, due - 1200000);
        } else {
            pump(s, 0);
            now = mmr_mono_ns();
            if (due - now > 30000) {
                int64_t nap = due - now - 20000;
                struct timespec ts = {0, (long)(nap < 100000 ? nap : 100000)};
                nanosleep(&ts, NULL);
            }
        }
    }
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type != GRPC_QUEUE_SHUTDOWN) {}
    grpc_completion_queue_destroy(s->cq);
    grpc_channel_destroy(s->ch);
    return NULL;
}

static mmr_status_t run_open(ctx_t *x, mmr_load_result_t *res, mmr_err_t *err) {
    const mmr_load_cfg_t *cfg = x->cfg;
    int n = cfg->connections;
    double want = cfg->rate * cfg->duration_s;
    x->total = cfg->max_requests > 0 && cfg->max_requests < want ? cfg->max_requests : (long)want;
    res->scheduled = x->total;
    grpc_channel_credentials *creds;
    mmr_rpc_client_opts_t o = {.ca_pem_path = cfg->ca_pem_path, .cert_pem_path = cfg->cert_pem_path,
                               .key_pem_path = cfg->key_pem_path};
    mmr_status_t st = mmr_rpc_credentials_new(&o, &creds, err);
    if (st != MMR_OK) return st;
    sender_t *s = calloc((size_t)n, sizeof *s);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    if (!s || !th) { free(s); free(th); grpc_channel_credentials_release(creds); return mmr_err_set(err, MMR_ERR_NOMEM, "senders"); }
    int per = cfg->max_outstanding / n;
    for (int i = 0; i < n && st == MMR_OK; i++) {
        s[i].x = x;
        s[i].k = i;
        s[i].creds = creds;
        s[i].cap = per + (i < cfg->max_outstanding % n);
        s[i].slots = calloc((size_t)s[i].cap, sizeof *s[i].slots);
        if (!s[i].slots || gen_init(&s[i].gen, cfg, i) != 0) st = mmr_err_set(err, MMR_ERR_NOMEM, "sender state");
        if (st == MMR_OK) st = tally_init(&s[i].t, cfg, err);
        for (int c = 0; s[i].slots && c < s[i].cap; c++) {
            s[i].slots[c].next_free = s[i].free_list;
            s[i].free_list = &s[i].slots[c];
        }
        if (cfg->bearer_token) {
            char buf[4096];
            snprintf(buf, sizeof buf, "Bearer %s", cfg->bearer_token);
            s[i].auth = grpc_slice_from_copied_string(buf);
        } else {
            s[i].auth = grpc_empty_slice();
        }
    }
    if (st == MMR_OK) {
        pthread_barrier_init(&x->ready, NULL, (unsigned)n + 1);
        pthread_barrier_init(&x->go, NULL, (unsigned)n + 1);
        for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, sender_main, &s[i]);
        pthread_barrier_wait(&x->ready);
        x->start_ns = mmr_mono_ns() + 1000000; /* 1 ms to let every sender get to its loop */
        x->end_ns = x->start_ns + (int64_t)(cfg->duration_s * 1e9);
        x->hard_stop_ns = x->end_ns + (int64_t)cfg->deadline_ms * 1000000;
        pthread_barrier_wait(&x->go);
        int64_t last = x->start_ns;
        for (int i = 0; i < n; i++) {
            pthread_join(th[i], NULL);
            res->sent += s[i].sent;
            res->completed += s[i].completed;
            res->missed_schedule += s[i].missed;
            res->dropped += s[i].dropped;
            if (s[i].max_lag_ns > res->max_send_lag_ns) res->max_send_lag_ns = s[i].max_lag_ns;
            if (s[i].last_done_ns > last) last = s[i].last_done_ns;
            tally_merge(res, &s[i].t);
        }
        res->elapsed_s = (double)(last - x->start_ns) / 1e9;
        pthread_barrier_destroy(&x->ready);
        pthread_barrier_destroy(&x->go);
    }
    for (int i = 0; i < n; i++) {
        free(s[i].slots);
        gen_free(&s[i].gen);
        tally_free(&s[i].t);
        grpc_slice_unref(s[i].auth);
    }
    grpc_channel_credentials_release(creds);
    free(s);
    free(th);
    return st;
}

/* ---- closed loop ----------------------------------------------------------------- */

typedef struct caller {
    ctx_t *x;
    mmr_rpc_client_t *client;
    pthread_mutex_t *mu;
    long *next; /* shared request counter (under mu) */
    gen_t gen;
    tally_t t;
    long sent;
    int64_t last_done_ns;
} caller_t;

static void *caller_main(void *arg) {
    caller_t *c = arg;
    const mmr_load_cfg_t *cfg = c->x->cfg;
    for (;;) {
        pthread_mutex_lock(c->mu);
        int more = cfg->max_requests <= 0 || *c->next < cfg->max_requests;
        if (more) (*c->next)++;
        pthread_mutex_unlock(c->mu);
        if (!more || mmr_mono_ns() >= c->x->end_ns) break;
        const ProtobufCMessage *msg;
        int health = gen_request(&c->gen, c->x, &msg);
        ProtobufCMessage *resp = NULL;
        int status = -1;
        int64_t t0 = mmr_mono_ns();
        mmr_rpc_call(c->client, health ? HEALTH_METHOD : RANK_METHOD, msg,
                     health ? &grpc__health__v1__health_check_response__descriptor : &mmrec__v1__rank_response__descriptor,
                     &resp, cfg->deadline_ms, &status, NULL);
        c->last_done_ns = mmr_mono_ns();
        tally_record(&c->t, c->x, t0, t0, c->last_done_ns, health, status >= 0 ? status : -1);
        c->sent++;
        if (resp) protobuf_c_message_free_unpacked(resp, NULL);
    }
    return NULL;
}

static mmr_status_t run_closed(ctx_t *x, mmr_load_result_t *res, mmr_err_t *err) {
    const mmr_load_cfg_t *cfg = x->cfg;
    mmr_rpc_client_opts_t o = {cfg->ca_pem_path, cfg->cert_pem_path, cfg->key_pem_path,
                               cfg->ssl_target_name, cfg->bearer_token};
    mmr_rpc_client_t *client;
    mmr_status_t st = mmr_rpc_client_new(cfg->target, &o, &client, err);
    if (st != MMR_OK) return st;
    { /* connect before the clock starts (result ignored) */
        Grpc__Health__V1__HealthCheckRequest hq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        mmr_rpc_call(client, HEALTH_METHOD, &hq.base, &grpc__health__v1__health_check_response__descriptor,
                     &resp, cfg->deadline_ms, NULL, NULL);
        if (resp) protobuf_c_message_free_unpacked(resp, NULL);
    }
    int n = cfg->concurrency;
    caller_t *c = calloc((size_t)n, sizeof *c);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    long next = 0;
    if (!c || !th) st = mmr_err_set(err, MMR_ERR_NOMEM, "callers");
    for (int i = 0; st == MMR_OK && i < n; i++) {
        c[i] = (caller_t){.x = x, .client = client, .mu = &mu, .next = &next};
        if (gen_init(&c[i].gen, cfg, i) != 0) st = mmr_err_set(err, MMR_ERR_NOMEM, "caller state");
        if (st == MMR_OK) st = tally_init(&c[i].t, cfg, err);
    }
    if (st == MMR_OK) {
        x->start_ns = mmr_mono_ns();
        x->end_ns = x->start_ns + (int64_t)(cfg->duration_s * 1e9);
        for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, caller_main, &c[i]);
        int64_t last = x->start_ns;
        for (int i = 0; i < n; i++) {
            pthread_join(th[i], NULL);
            res->sent += c[i].sent;
            res->completed += c[i].sent;
            if (c[i].last_done_ns > last) last = c[i].last_done_ns;
            tally_merge(res, &c[i].t);
        }
        res->elapsed_s = (double)(last - x->start_ns) / 1e9;
    }
    for (int i = 0; c && i < n; i++) {
        gen_free(&c[i].gen);
        tally_free(&c[i].t);
    }
    free(c);
    free(th);
    mmr_rpc_client_free(client);
    return st;
}

/* ---- entry ----------------------------------------------------------------------- */

mmr_status_t mmr_load_run(const mmr_load_cfg_t *cfg, mmr_load_result_t *res, mmr_err_t *err) {
    memset(res, 0, sizeof *res);
    if (!cfg->target || cfg->duration_s <= 0 || cfg->deadline_ms < 1 || cfg->users < 1 || cfg->items < 1 ||
        cfg->candidates < 0 || cfg->retrieve_k < 0 || (cfg->candidates == 0 && cfg->retrieve_k == 0) ||
        cfg->health_mix < 0 || cfg->health_mix > 1 || cfg->top_k < 0 || cfg->slack_ms < 0 ||
        cfg->interval_ms < 0 || (cfg->interval_ms > 0 && intervals_for(cfg) > 100000) ||
        (cfg->dist == MMR_LOAD_ZIPF && cfg->zipf_s <= 0))
        return mmr_err_set(err, MMR_ERR_INVALID, "load: option out of range");
    if (cfg->mode == MMR_LOAD_OPEN &&
        (cfg->rate <= 0 || cfg->connections < 1 || cfg->connections > 256 ||
         cfg->max_outstanding < cfg->connections || cfg->rate * cfg->duration_s > 1e9))
        return mmr_err_set(err, MMR_ERR_INVALID, "load: bad --rate/--connections/--max-outstanding");
    if (cfg->mode == MMR_LOAD_CLOSED && (cfg->concurrency < 1 || cfg->concurrency > 1024))
        return mmr_err_set(err, MMR_ERR_INVALID, "load: --concurrency must be 1..1024");
    res->n_intervals = intervals_for(cfg);
    mmr_status_t st = outcomes_new(&res->rank, &res->health, &res->ok, &res->shed, &res->ok_sent,
                                   &res->intervals, res->n_intervals, err);
    if (st == MMR_OK) st = hist_new(&res->all, err);
    if (st != MMR_OK) return st;
    ctx_t x = {.cfg = cfg};
    double s = cfg->dist == MMR_LOAD_ZIPF ? cfg->zipf_s : 0;
    st = mmr_zipf_init(&x.users, cfg->users, s, err);
    if (st == MMR_OK) st = mmr_zipf_init(&x.items, cfg->items, s, err);
    if (st == MMR_OK) {
        grpc_init();
        st = cfg->mode == MMR_LOAD_OPEN ? run_open(&x, res, err) : run_closed(&x, res, err);
        grpc_shutdown();
    }
    mmr_zipf_release(&x.users);
    mmr_zipf_release(&x.items);
    if (st == MMR_OK) {
        mmr_hdr_merge(res->all, res->rank, NULL);
        mmr_hdr_merge(res->all, res->health, NULL);
    }
    return st;
}

void mmr_load_result_free(mmr_load_result_t *res) {
    if (!res) return;
    mmr_hdr_free(res->all);
    mmr_hdr_free(res->rank);
    mmr_hdr_free(res->health);
    mmr_hdr_free(res->ok);
    mmr_hdr_free(res->shed);
    mmr_hdr_free(res->ok_sent);
    intervals_free(res->intervals, res->n_intervals);
    res->all = res->rank = res->health = res->ok = res->shed = res->ok_sent = NULL;
    res->intervals = NULL;
    res->n_intervals = 0;
}
