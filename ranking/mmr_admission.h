/* mmr_admission.h — admission control of the serving engine's handler slots: decides, for
 * each arriving call, whether it is admitted (run in a free slot, or queued for the next)
 * or refused at once
 * (RESOURCE_EXHAUSTED). Pure bookkeeping over timestamps, no clock and no lock: the
 * server (server.c) calls it under its queue lock; tests drive it with made-up times.
 *
 * The queueing delay is the larger of the oldest queued call's wait and the wait a call
 * queued now can expect (queue length times a handler's average run time, over the
 * slots). The offered load of a window is its arrivals times that average run time,
 * over the slots and the window's length: above 1, calls come faster than the slots
 * can run them. The average is clamped per call (a quarter to 4 times the current one), so
 * one stalled handler or one call answered at once hardly moves it.
 *   - Not overloaded: every call is admitted (queued). The state becomes overloaded when
 *     the delay is above the target while the offered load of the last 20 ms is above 1.
 *     A stall at moderate load (a model swap, a slow call, a busy host) only queues
 *     calls, however long it lasts (max_inflight, in the server, bounds the queue).
 *   - Overloaded: a call is admitted only while fewer than `slots` calls are running or
 *     queued, i.e. only to a free slot, so an admitted call waits behind no other and
 *     the handlers leave CPU to the thread that refuses the excess; when the last 20 ms
 *     offered at most 1.5 times the capacity, up to 2 x `slots` (one waiting call per
 *     slot), so a mild overload does not cut the served rate to about half. The state
 *     ends when the offered load of a 100 ms window (the first one starting with the
 *     overload) is below 1.
 * Why not a delay target under overload: on one busy CPU at 3x capacity, admitting while
 * the expected wait stayed within 1 ms kept the one slot always busy, and what CPU it left
 * the acceptor (refusing two calls of three through grpc) was too little: admitted p99
 * 10 ms, against 2.6-2.9 ms with the rule above. Ending the state when the queue had
 * merely stayed short let each following interval admit the whole offered load; admitted
 * calls then waited up to 150 ms (docs/RELIABILITY.md, Overload).
 * The price: only-to-a-free-slot is a loss system, so at 3x a slot is busy about 3/4
 * of the time (1 slot) instead of all of it. (Overloaded, the server runs admitted calls
 * on worker threads, as in the measurements above; otherwise also on its acceptors.) */
#ifndef MMR_ADMISSION_H
#define MMR_ADMISSION_H

#include <stdint.h>

typedef struct mmr_admission {
    int64_t target_ns;      /* queueing delay target */
    int slots;              /* handlers that may run at once */
    int overloaded;
    int started;            /* a call has arrived: the windows run */
    int64_t win_start_ns;   /* offered-load windows: 100 ms (to end the overload) */
    uint64_t win_arrivals;
    int64_t hot_start_ns;   /* ...and 20 ms (to start it) */
    uint64_t hot_arrivals;
    double hot_load;        /* offered load of the last complete 20 ms window */
    int64_t run_ns;         /* moving average of a handler's run time; 0: none ran yet */
} mmr_admission_t;

void mmr_admission_init(mmr_admission_t *a, int64_t target_ns, int slots);

/* A call arrives at now (monotonic ns) while q_len calls are queued, the oldest for
 * head_wait_ns, and busy slots are running one. Returns 1: admit, 0: refuse. */
int mmr_admission_arrive(mmr_admission_t *a, int64_t now, uint32_t q_len, int64_t head_wait_ns,
                         int busy);

/* A slot ran a handler for took_ns. */
void mmr_admission_ran(mmr_admission_t *a, int64_t took_ns);

#endif
