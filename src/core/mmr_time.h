/* mmr_time.h — wall-clock and monotonic time in the units the engine uses. */
#ifndef MMR_TIME_H
#define MMR_TIME_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (event timestamps are in these units). */
static inline int64_t mmr_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic nanoseconds, for measuring durations. */
static inline int64_t mmr_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
