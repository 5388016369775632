/* load.h — the mmrec-load engine, separate from the CLI so tests can drive it.
 *
 * Open loop (the default): request j of R*duration is *scheduled* at start + j/R and
 * its latency is measured from that scheduled time, not from when it was actually
 * sent — so a server stall is charged to every request that should have been sent
 * during it (no coordinated omission). Requests are sent with grpc core's async API
 * by `connections` sender threads, each owning a channel (its own TCP connection) and
 * a completion queue; thread k sends requests k, k+N, k+2N, ... so a slow server
 * never slows the schedule. At most max_outstanding calls are in flight (split over
 * the threads); a due request that cannot be sent within the schedule slack (because
 * of that cap or a busy client) is still sent and still charged from its scheduled
 * time, but counted as `missed_schedule`; requests still unsent when the run's hard
 * stop (duration + deadline) passes are counted as `dropped`.
 *
 * Closed loop: `concurrency` blocking callers, each sending its next request when the
 * previous one returns (latency from the actual send; it *does* suffer coordinated
 * omission — it is there to compare with and for max-throughput probes). */
#ifndef MMR_LOAD_H
#define MMR_LOAD_H

#include <stdint.h>

#include "hdr.h"
#include "mmr_err.h"

#define MMR_LOAD_NSTATUS 17 /* gRPC status codes 0..16 */

typedef enum { MMR_LOAD_OPEN = 0, MMR_LOAD_CLOSED = 1 } mmr_load_mode_t;
typedef enum { MMR_LOAD_UNIFORM = 0, MMR_LOAD_ZIPF = 1 } mmr_load_dist_t;

typedef struct mmr_load_cfg {
    const char *target;        /* "127.0.0.1:50051" (borrowed) */
    mmr_load_mode_t mode;
    double rate;               /* open loop: requests/s offered */
    double duration_s;         /* schedule length (open) or time limit (closed) */
    long max_requests;         /* cap on requests in all (0 = rate * duration) */
    int connections;           /* open loop: sender threads = channels */
    int max_outstanding;       /* open loop: in-flight cap over all connections */
    int concurrency;           /* closed loop: callers */
    int deadline_ms;           /* per-call gRPC deadline */
    double slack_ms;           /* a send later than scheduled + slack is a missed schedule */
    int interval_ms;           /* > 0: also a series per interval of this length (results) */
    /* workload */
    double health_mix;         /* fraction of calls that are grpc.health.v1 Check */
    long users, items;         /* ids u0..u(users-1), i0..i(items-1) */
    mmr_load_dist_t dist;
    double zipf_s;
    long candidates;           /* explicit candidates per Rank (when retrieve_k == 0) */
    long retrieve_k;           /* > 0: Rank with retrieve_k and no candidates */
    int top_k;
    uint64_t seed;
    /* transport (all borrowed; NULL = off) */
    const char *ca_pem_path, *cert_pem_path, *key_pem_path, *ssl_target_name, *bearer_token;
} mmr_load_cfg_t;

/* Fills cfg with the CLI defaults (target 127.0.0.1:50051, open loop, 1000 req/s for
 * 10 s, 1 connection, 1024 outstanding, 8 callers, 1000 ms deadline, 10 ms slack,
 * Rank with 100 candidates over 1000 users / 500 items, uniform). */
void mmr_load_cfg_default(mmr_load_cfg_t *cfg);

/* One interval of the series: the calls scheduled (open loop) or sent (closed loop) in
 * [k * interval_ms, (k + 1) * interval_ms) from the start, by outcome. */
typedef struct mmr_load_interval {
    mmr_hdr_t *ok;           /* latency ns of its OK calls; owned */
    long shed;               /* RESOURCE_EXHAUSTED */
    long other;              /* any other non-OK status, or no status (transport failure) */
} mmr_load_interval_t;

typedef struct mmr_load_result {
    mmr_hdr_t *all, *rank, *health; /* latency ns of every completed call (errors too); owned */
    mmr_hdr_t *ok, *shed;    /* latency ns of the OK calls / of the RESOURCE_EXHAUSTED ones; owned */
    mmr_hdr_t *ok_sent;      /* OK calls' latency from the actual send (open loop: without the
                                client's own send lag; closed loop: same as ok); owned */
    mmr_load_interval_t *intervals; /* [n_intervals] with cfg->interval_ms > 0, else NULL; owned */
    int n_intervals;         /* covers the duration plus the drain (deadline) */
    long scheduled;          /* open loop: requests in the schedule */
    long sent, completed;
    long missed_schedule;    /* sent later than scheduled + slack (still charged from the schedule) */
    long dropped;            /* never sent: still queued at the hard stop */
    long transport_failures; /* completion without a gRPC status */
    long by_status[MMR_LOAD_NSTATUS];
    int64_t max_send_lag_ns; /* worst actual-send minus scheduled-send */
    double elapsed_s;        /* start to last completion */
} mmr_load_result_t;

/* Runs the load described by cfg and fills *res (which the caller releases with
 * mmr_load_result_free, also after a failure). Blocks for about duration_s (plus the
 * drain, at most deadline_ms). Errors: MMR_ERR_INVALID for a bad cfg, MMR_ERR_IO for
 * unreadable TLS files, MMR_ERR_NOMEM. gRPC failures are results, not errors. */
mmr_status_t mmr_load_run(const mmr_load_cfg_t *cfg, mmr_load_result_t *res, mmr_err_t *err);
void mmr_load_result_free(mmr_load_result_t *res);

/* "OK", "DEADLINE_EXCEEDED", ... for a gRPC status code; "UNKNOWN_CODE" otherwise. */
const char *mmr_load_status_name(int code);

#endif
