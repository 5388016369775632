/* mmr_admission.h — admission control of the serving engine's worker queue: decides, for
 * each arriving call, whether it is queued for a worker or refused at once
 * (RESOURCE_EXHAUSTED). Pure bookkeeping over timestamps, no clock and no lock: the
 * server (server.c) calls it under its queue lock; tests drive it with made-up times.
 *
 * The queueing delay is the larger of the oldest queued call's age and the wait a call
 * queued now can expect (queue length times a handler's average run time, over the
 * workers). The offered load of a window is its arrivals times that average run time,
 * over the workers and the window's length: above 1, calls come faster than the workers
 * run them.
 *   - Not overloaded: every call is admitted (queued). The state becomes overloaded when
 *     the delay has been above the target for QUEUE_INTERVAL (100 ms), or is above it
 *     while the offered load of the last 20 ms is above 1. A stall at moderate load
 *     (a model swap, a busy host) only queues calls.
 *   - Overloaded: a call is admitted only when a worker is idle and nothing is queued, so
 *     an admitted call waits behind no other and the workers leave CPU to the threads
 *     that refuse the excess. The state ends when the offered load of a QUEUE_INTERVAL
 *     window is below 1.
 * Why not a delay target under overload as well: on one busy CPU at 3x capacity,
 * admitting while the expected wait stayed within 1 ms kept the worker always busy, and
 * what CPU it left the acceptor (refusing two calls of three through grpc) was too
 * little: admitted p99 10 ms, against 4.6 ms with the rule above. Leaving the state when
 * the queue had merely stayed short let each following interval admit the whole offered
 * load; admitted calls then waited up to 150 ms (docs/RELIABILITY.md, Overload). */
#ifndef MMR_ADMISSION_H
#define MMR_ADMISSION_H

#include <stdint.h>

typedef struct mmr_admission {
    int64_t target_ns;      /* queueing delay target */
    int workers;
    int overloaded;
    int64_t above_since_ns; /* delay above the target since; 0: not above */
    int64_t win_start_ns;   /* offered-load windows: QUEUE_INTERVAL and 20 ms */
    uint64_t win_arrivals;
    int64_t hot_start_ns;
    uint64_t hot_arrivals;
    int hot;                /* offered load above 1 in the last 20 ms window */
    int64_t run_ns;         /* moving average of a handler's run time */
} mmr_admission_t;

void mmr_admission_init(mmr_admission_t *a, int64_t target_ns, int workers);

/* A call arrives at now (monotonic ns) while q_len calls are queued, the oldest for
 * head_wait_ns, and busy workers are running one. Returns 1: admit (queue it), 0: refuse. */
int mmr_admission_arrive(mmr_admission_t *a, int64_t now, uint32_t q_len, int64_t head_wait_ns,
                         int busy);

/* A worker ran a handler for took_ns. */
void mmr_admission_ran(mmr_admission_t *a, int64_t took_ns);

#endif
