/* admission.c — admission control of the handler slots (see mmr_admission.h). */
#include "mmr_admission.h"

#define WINDOW_NS 100000000LL /* offered load measured over this to end the overload */
#define HOT_NS 20000000LL     /* ...and over this to start it */
#define MILD 1.5              /* overloaded below this offered load: one queued call per slot */

void mmr_admission_init(mmr_admission_t *a, int64_t target_ns, int slots) {
    *a = (mmr_admission_t){.target_ns = target_ns, .slots = slots > 0 ? slots : 1};
}

static double offered_load(const mmr_admission_t *a, uint64_t arrivals, int64_t ns) {
    return ns > 0 ? (double)arrivals * (double)a->run_ns / ((double)a->slots * (double)ns) : 0;
}

int mmr_admission_arrive(mmr_admission_t *a, int64_t now, uint32_t q_len, int64_t head_wait_ns,
                         int busy) {
    if (!a->started) a->started = 1, a->win_start_ns = a->hot_start_ns = now;
    a->win_arrivals++;
    a->hot_arrivals++;
    if (now - a->hot_start_ns >= HOT_NS) {
        a->hot_load = offered_load(a, a->hot_arrivals, now - a->hot_start_ns);
        a->hot_start_ns = now;
        a->hot_arrivals = 0;
    }
    int64_t expect = (int64_t)q_len * a->run_ns / a->slots;
    int64_t delay = head_wait_ns > expect ? head_wait_ns : expect;
    if (!a->overloaded && q_len && delay > a->target_ns && a->hot_load > 1) {
        a->overloaded = 1; /* the exit window starts with the overload */
        a->win_start_ns = now;
        a->win_arrivals = 1;
    } else if (now - a->win_start_ns >= WINDOW_NS) {
        if (a->overloaded && offered_load(a, a->win_arrivals, now - a->win_start_ns) < 1)
            a->overloaded = 0;
        a->win_start_ns = now;
        a->win_arrivals = 0;
    }
    if (!a->overloaded) return 1;
    int room = a->hot_load < MILD ? 2 * a->slots : a->slots; /* calls running or queued */
    return (int)q_len + busy < room;
}

void mmr_admission_ran(mmr_admission_t *a, int64_t took_ns) {
    if (!a->run_ns) { a->run_ns = took_ns > 0 ? took_ns : 1; return; }
    /* one stalled call (or one answered at once) moves the average by at most a third */
    int64_t lo = a->run_ns / 4, hi = 4 * a->run_ns;
    int64_t t = took_ns < lo ? lo : took_ns > hi ? hi : took_ns;
    a->run_ns += (t - a->run_ns) / 8; /* stays >= 1: t >= run_ns / 4 */
}
