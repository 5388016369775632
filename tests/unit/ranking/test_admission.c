/* test_admission.c — the admission rule (mmr_admission.h) driven by a simulated server:
 * one or two workers with a fixed run time, calls arriving at a fixed rate, made-up
 * monotonic times. Shows: stalls at moderate load (all workers, long ones, one slow call)
 * only queue; 3x the capacity is detected within a few tens of ms, after which a quarter
 * to a third is admitted and no admitted call waits behind another; 1.1x keeps serving
 * about the capacity; the state ends once the load drops below capacity, and a lighter
 * load is then admitted in full again; before any call has run there is no overload. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mmr_admission.h"

#define MS 1000000LL
#define QMAX 100000

typedef struct sim {
    mmr_admission_t a;
    int workers;
    int64_t run_ns;
    int64_t free_at[2];  /* when each worker finishes its call; <= now: idle */
    int64_t q[QMAX];     /* arrival times of queued calls */
    uint32_t qh, ql;
    int stalled;         /* workers take nothing from the queue */
    int64_t slow_ns;     /* > 0: the next call started runs this long */
    int64_t max_wait;    /* longest wait of an admitted call for a worker */
    long admitted, refused;
} sim_t;

static void sim_init(sim_t *s, int workers, int64_t run_ns) {
    memset(s, 0, sizeof *s);
    s->workers = workers;
    s->run_ns = run_ns;
    mmr_admission_init(&s->a, 5 * MS, workers);
}

/* Runs the workers up to time t: each idle worker takes the oldest queued call. */
static void sim_advance(sim_t *s, int64_t t) {
    for (;;) {
        int w = 0;
        for (int i = 1; i < s->workers; i++) if (s->free_at[i] < s->free_at[w]) w = i;
        int64_t start = s->free_at[w];
        if (s->stalled || !s->ql) return;
        if (start < s->q[s->qh]) start = s->q[s->qh];
        if (start > t) return;
        int64_t wait = start - s->q[s->qh];
        if (wait > s->max_wait) s->max_wait = wait;
        s->qh = (s->qh + 1) % QMAX;
        s->ql--;
        int64_t took = s->slow_ns ? s->slow_ns : s->run_ns;
        s->slow_ns = 0;
        s->free_at[w] = start + took;
        mmr_admission_ran(&s->a, took);
    }
}

static int sim_arrive(sim_t *s, int64_t t) {
    sim_advance(s, t);
    int busy = 0;
    for (int i = 0; i < s->workers; i++) busy += s->free_at[i] > t;
    int64_t head = s->ql ? t - s->q[s->qh] : 0;
    int ok = mmr_admission_arrive(&s->a, t, s->ql, head, busy);
    if (ok) {
        s->q[(s->qh + s->ql++) % QMAX] = t;
        s->admitted++;
        sim_advance(s, t);
    } else {
        s->refused++;
    }
    return ok;
}

/* Ends a stall at t: the workers start again from then. */
static void sim_resume(sim_t *s, int64_t t) {
    s->stalled = 0;
    for (int i = 0; i < s->workers; i++)
        if (s->free_at[i] < t) s->free_at[i] = t;
}

/* Offers calls every `gap` ns over [from, to); returns the time after the last. */
static int64_t offer(sim_t *s, int64_t from, int64_t to, int64_t gap) {
    int64_t t = from;
    for (; t < to; t += gap) sim_arrive(s, t);
    return t;
}

int main(void) {
    sim_t *s = malloc(sizeof *s);
    CHECK(s);
    int64_t t0 = 1000 * MS, run = MS / 2; /* capacity: 2,000 calls/s per worker */

    /* warm: 30% load; then the worker stalls (a model swap, a busy host): all queued,
     * however long (the server's max_inflight bounds the queue) */
    int64_t gap30 = 5 * run / 3 * 2; /* every 1.67 ms = 0.3 */
    for (int64_t stall = 80 * MS; stall <= 400 * MS; stall *= 5) {
        sim_init(s, 1, run);
        int64_t t = offer(s, t0, t0 + 200 * MS, gap30);
        s->stalled = 1;
        t = offer(s, t, t + stall, gap30);
        sim_resume(s, t);
        t = offer(s, t, t + 2 * stall, gap30); /* drains at 70% spare capacity */
        CHECK_MSG(s->refused == 0 && !s->a.overloaded && s->ql == 0, "%lld ms stall: %ld refused, %u queued",
                  (long long)(stall / MS), s->refused, s->ql);
        printf("ok a %lld ms stall at 30%% load only queues (%ld calls, none refused, longest wait %lld ms)\n",
               (long long)(stall / MS), s->admitted, (long long)(s->max_wait / MS));
    }
    /* one slow call (40x the usual run time) at 50% load: queues, nothing refused */
    sim_init(s, 1, run);
    int64_t t = offer(s, t0, t0 + 200 * MS, 2 * run);
    s->slow_ns = 40 * run;
    t = offer(s, t, t + 500 * MS, 2 * run);
    CHECK_MSG(s->refused == 0 && !s->a.overloaded, "slow call: %ld refused", s->refused);
    printf("ok one 20 ms call at 50%% load: none refused (run-time average %lld us)\n",
           (long long)(s->a.run_ns / 1000));
    /* before any call has run, the run time is unknown: no overload, whatever arrives */
    sim_init(s, 1, run);
    s->stalled = 1;
    offer(s, t0, t0 + 300 * MS, run / 3);
    CHECK(s->refused == 0 && !s->a.overloaded);
    printf("ok no overload before a call has run (%ld queued)\n", s->admitted);

    /* 3x capacity: detected fast, a quarter to a third admitted, no admitted call waits behind another */
    for (int workers = 1; workers <= 2; workers++) {
        sim_init(s, workers, run);
        t = offer(s, t0, t0 + 100 * MS, 2 * run / workers); /* 50% to learn the run time */
        int64_t onset = t, gap = run / (3 * workers);
        while (!s->a.overloaded && t < onset + 200 * MS) t = offer(s, t, t + gap, gap);
        CHECK_MSG(s->a.overloaded && t - onset <= 25 * MS, "%d workers: overloaded after %lld ms", workers,
                  (long long)((t - onset) / MS));
        int64_t detect = t - onset;
        t = offer(s, t, t + 100 * MS, gap); /* the onset's queue drains */
        s->max_wait = 0;
        s->admitted = s->refused = 0;
        t = offer(s, t, t + 2000 * MS, gap);
        double share = (double)s->admitted / (double)(s->admitted + s->refused);
        CHECK_MSG(s->a.overloaded && share > 0.2 && share < 0.4, "%d workers: admitted share %.3f", workers, share);
        CHECK_MSG(s->max_wait == 0, "%d workers: an admitted call waited %lld ns", workers, (long long)s->max_wait);
        /* the load drops to 30%: the state ends within one window, then nothing is refused */
        int64_t drop = t;
        while (s->a.overloaded && t < drop + 500 * MS) t = offer(s, t, t + MS, 10 * gap);
        int64_t normal = t - drop;
        CHECK_MSG(!s->a.overloaded && normal <= 210 * MS, "%d workers: still overloaded %lld ms after the drop",
                  workers, (long long)(normal / MS));
        s->refused = 0;
        t = offer(s, t, t + 1000 * MS, 10 * gap);
        CHECK(s->refused == 0 && !s->a.overloaded);
        /* 1.1x: overloaded, and still about the capacity served */
        int64_t g11 = run * 10 / (11 * workers), from = t + 200 * MS;
        t = offer(s, t, from, g11);
        long adm0 = s->admitted;
        t = offer(s, from, from + 2000 * MS, g11);
        double served = (double)(s->admitted - adm0) * (double)run / (2000.0 * MS * workers);
        CHECK_MSG(s->a.overloaded && served > 0.9, "%d workers at 1.1x: %.2f of capacity served, overloaded %d",
                  workers, served, s->a.overloaded);
        printf("ok %d worker(s) at 3x: overloaded after %lld ms, %.0f%% admitted, none waited; normal %lld ms after "
               "the drop; at 1.1x %.0f%% of capacity served\n", workers, (long long)(detect / MS), 100 * share,
               (long long)(normal / MS), 100 * served);
    }
    free(s);
    printf("ok test_admission\n");
    return 0;
}
