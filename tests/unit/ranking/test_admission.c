/* test_admission.c — the admission rule (mmr_admission.h) driven by a simulated server:
 * one or two workers with a fixed run time, calls arriving at a fixed rate, made-up
 * monotonic times. Shows: a stall at moderate load only queues; a stall that lasts
 * past the interval means overload; 3x the capacity is detected within a few tens of ms,
 * after which a quarter to a third is admitted and no admitted call waits behind another; the
 * state ends once the load drops below capacity, and a lighter load is then admitted
 * in full again. */
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
        s->free_at[w] = start + s->run_ns;
        mmr_admission_ran(&s->a, s->run_ns);
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

    /* warm: 30% load; then the worker stalls for 80 ms (a model swap): all queued */
    sim_init(s, 1, run);
    int64_t t = offer(s, t0, t0 + 200 * MS, 5 * run / 3 * 2); /* every 1.67 ms = 0.3 */
    CHECK(s->refused == 0 && !s->a.overloaded);
    s->stalled = 1;
    t = offer(s, t, t + 80 * MS, 5 * run / 3 * 2);
    CHECK_MSG(s->refused == 0 && !s->a.overloaded, "refused %ld during an 80 ms stall", s->refused);
    s->stalled = 0;
    t = offer(s, t, t + 300 * MS, 5 * run / 3 * 2);
    CHECK(s->refused == 0 && !s->a.overloaded);
    printf("ok an 80 ms stall at 30%% load only queues (%ld calls, none refused)\n", s->admitted);

    /* a stall that lasts: overloaded once the delay stayed above target for 100 ms */
    s->stalled = 1;
    int64_t st = t;
    while (!s->a.overloaded && t < st + 500 * MS) t = offer(s, t, t + MS, MS);
    int64_t took = t - st;
    CHECK_MSG(s->a.overloaded && took >= 100 * MS && took <= 115 * MS, "overloaded after %lld ms",
              (long long)(took / MS));
    CHECK(s->refused == 1); /* the call that found the overload, and none before */
    CHECK(sim_arrive(s, t) == 0); /* nothing is admitted behind the stalled queue */
    s->stalled = 0;
    t = offer(s, t + 200 * MS, t + 500 * MS, 5 * run / 3 * 2); /* drained; 30% again */
    CHECK(!s->a.overloaded);
    printf("ok a stall past 100 ms is overload: after %lld ms\n", (long long)(took / MS));

    /* 3x capacity: detected fast, a third admitted, no admitted call waits behind another */
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
        CHECK_MSG(!s->a.overloaded && t - drop <= 210 * MS, "%d workers: still overloaded %lld ms after the drop",
                  workers, (long long)((t - drop) / MS));
        s->refused = 0;
        offer(s, t, t + 1000 * MS, 10 * gap);
        CHECK(s->refused == 0 && !s->a.overloaded);
        printf("ok %d worker(s) at 3x: overloaded after %lld ms, %.0f%% admitted, none waited; normal %lld ms after "
               "the drop\n", workers, (long long)(detect / MS), 100 * share, (long long)((t - drop) / MS));
    }
    free(s);
    printf("ok test_admission\n");
    return 0;
}
