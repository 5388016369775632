/* admission.c — admission control of the worker queue (see mmr_admission.h). */
#include "mmr_admission.h"

#define QUEUE_INTERVAL_NS 100000000LL /* delay above target this long: overloaded */
#define HOT_WINDOW_NS 20000000LL      /* ...or above it while this window's offered load > 1 */

void mmr_admission_init(mmr_admission_t *a, int64_t target_ns, int workers) {
    *a = (mmr_admission_t){.target_ns = target_ns, .workers = workers > 0 ? workers : 1};
}

static double offered_load(const mmr_admission_t *a, uint64_t arrivals, int64_t ns) {
    return (double)arrivals * (double)a->run_ns / ((double)a->workers * (double)ns);
}

int mmr_admission_arrive(mmr_admission_t *a, int64_t now, uint32_t q_len, int64_t head_wait_ns,
                         int busy) {
    if (!a->win_start_ns) a->win_start_ns = a->hot_start_ns = now;
    a->win_arrivals++;
    a->hot_arrivals++;
    if (now - a->hot_start_ns >= HOT_WINDOW_NS) {
        a->hot = offered_load(a, a->hot_arrivals, now - a->hot_start_ns) > 1;
        a->hot_start_ns = now;
        a->hot_arrivals = 0;
    }
    int64_t expect = (int64_t)q_len * a->run_ns / a->workers;
    int64_t delay = q_len ? (head_wait_ns > expect ? head_wait_ns : expect) : 0;
    if (delay <= a->target_ns) a->above_since_ns = 0;
    else if (!a->above_since_ns) a->above_since_ns = now;
    if (a->above_since_ns && (a->hot || now - a->above_since_ns >= QUEUE_INTERVAL_NS)) a->overloaded = 1;
    if (now - a->win_start_ns >= QUEUE_INTERVAL_NS) {
        if (a->overloaded && offered_load(a, a->win_arrivals, now - a->win_start_ns) < 1)
            a->overloaded = 0, a->above_since_ns = 0;
        a->win_start_ns = now;
        a->win_arrivals = 0;
    }
    return !a->overloaded || (q_len == 0 && busy < a->workers);
}

void mmr_admission_ran(mmr_admission_t *a, int64_t took_ns) {
    a->run_ns = a->run_ns ? a->run_ns + (took_ns - a->run_ns) / 8 : took_ns;
}
