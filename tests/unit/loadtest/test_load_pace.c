/* test_load_pace.c — the fixed-rate schedule of mmrec-load's event producer (pace.h):
 * due times lie on the start + j/rate grid; a sender that stalls for 150 ms is never
 * "forgiven" — it catches up, every event is sent, none before its due time, and the
 * last one leaves on time; mmr_pace_wait stops at the stop time without advancing. */
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "mmr_time.h"
#include "pace.h"

#define RATE 2000.0
#define N 1000        /* 0.5 s of schedule */
#define STALL_AT 200  /* the sender stalls 150 ms after sending event 200 */
#define STALL_NS 150000000LL

static void nap_ns(int64_t ns) { nanosleep(&(struct timespec){ns / 1000000000, ns % 1000000000}, NULL); }

static void test_grid(void) {
    mmr_pace_t p;
    mmr_pace_init(&p, 1000, 5000);
    CHECK(mmr_pace_due_ns(&p, 0) == 5000);
    CHECK(mmr_pace_due_ns(&p, 1) == 5000 + 1000000);
    CHECK(mmr_pace_due_ns(&p, 12345) == 5000 + 12345LL * 1000000);
    mmr_pace_init(&p, 3, 0); /* a period that is not a whole number of ns */
    CHECK(mmr_pace_due_ns(&p, 3) == 1000000000);
    printf("ok  grid: due(j) = start + j/rate\n");
}

static void test_schedule_holds(void) {
    static int64_t sent_at[N], due_at[N];
    mmr_pace_t p;
    int64_t start = mmr_mono_ns() + 2000000;
    mmr_pace_init(&p, RATE, start);
    long n = 0;
    for (int64_t due; n < N && (due = mmr_pace_wait(&p, INT64_MAX)) >= 0; n++) {
        sent_at[n] = mmr_mono_ns();
        due_at[n] = due;
        if (n == STALL_AT) nap_ns(STALL_NS); /* a slow broker call */
    }
    CHECK_MSG(n == N && p.next == N, "sent %ld of %d", n, N);
    int64_t worst_lag = 0;
    for (long j = 0; j < N; j++) {
        CHECK_MSG(due_at[j] == mmr_pace_due_ns(&p, j), "event %ld handed out of order", j);
        CHECK_MSG(sent_at[j] >= due_at[j], "event %ld sent %lld ns early", j, (long long)(due_at[j] - sent_at[j]));
        if (sent_at[j] - due_at[j] > worst_lag) worst_lag = sent_at[j] - due_at[j];
    }
    /* the events due during the stall went out late (charged, not skipped) ... */
    CHECK_MSG(worst_lag >= STALL_NS - 5000000, "worst lag %.1f ms", worst_lag / 1e6);
    /* ... and the sender caught up: the last event left close to its due time */
    int64_t last_lag = sent_at[N - 1] - due_at[N - 1];
    CHECK_MSG(last_lag < 50000000, "last event %.1f ms late: the schedule slipped", last_lag / 1e6);
    double span_s = (sent_at[N - 1] - start) / 1e9;
    CHECK_MSG(span_s > 0.49 && span_s < 0.55, "1000 events at 2000/s took %.3f s", span_s);
    printf("ok  schedule holds: %d events at %.0f/s in %.3f s despite a %.0f ms stall (worst lag %.1f ms, last %.2f ms)\n",
           N, RATE, span_s, STALL_NS / 1e6, worst_lag / 1e6, last_lag / 1e6);
}

static void test_stop(void) {
    mmr_pace_t p;
    int64_t start = mmr_mono_ns();
    mmr_pace_init(&p, 100, start); /* due at +0, +10 ms, +20 ms, ... */
    int64_t stop = start + 25000000;
    int got = 0;
    while (mmr_pace_wait(&p, stop) >= 0) got++;
    CHECK_MSG(got == 3 && p.next == 3, "got %d before the stop", got);
    int64_t t0 = mmr_mono_ns();
    CHECK(mmr_pace_wait(&p, stop) == -1 && p.next == 3);
    CHECK(mmr_mono_ns() - t0 < 5000000); /* returned without sleeping */
    printf("ok  stop: events due at or after the stop are not handed out\n");
}

int main(void) {
    test_grid();
    test_schedule_holds();
    test_stop();
    return 0;
}
