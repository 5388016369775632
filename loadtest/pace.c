/* pace.c — the fixed-rate schedule of mmrec-load (see pace.h). */
#include "pace.h"

#include <time.h>

#include "mmr_time.h"

void mmr_pace_init(mmr_pace_t *p, double rate, int64_t start_ns) {
    p->start_ns = start_ns;
    p->period_ns = 1e9 / rate;
    p->next = 0;
}

int64_t mmr_pace_due_ns(const mmr_pace_t *p, long j) {
    return p->start_ns + (int64_t)((double)j * p->period_ns);
}

int64_t mmr_pace_wait(mmr_pace_t *p, int64_t stop_ns) {
    int64_t due = mmr_pace_due_ns(p, p->next);
    if (due >= stop_ns) return -1;
    for (int64_t now; (now = mmr_mono_ns()) < due;) {
        struct timespec ts = {(due - now) / 1000000000, (due - now) % 1000000000};
        clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    }
    p->next++;
    return due;
}
