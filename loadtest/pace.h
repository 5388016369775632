/* pace.h — a fixed-rate schedule: event j is due at start + j/rate. Used by the event
 * producer (and for the due times of the open-loop Rank senders). A late caller is never
 * "forgiven": the next due time stays on the original grid, so after a stall the caller
 * catches up and the count sent by time t stays rate * t. Not thread-safe: one per thread. */
#ifndef MMR_PACE_H
#define MMR_PACE_H

#include <stdint.h>

typedef struct mmr_pace {
    int64_t start_ns; /* CLOCK_MONOTONIC (mmr_mono_ns) of event 0 */
    double period_ns; /* 1e9 / rate */
    long next;        /* index of the next event mmr_pace_wait hands out */
} mmr_pace_t;

/* Starts a schedule of rate events/s (> 0) whose event 0 is due at start_ns. */
void mmr_pace_init(mmr_pace_t *p, double rate, int64_t start_ns);

/* Scheduled time of event j. */
int64_t mmr_pace_due_ns(const mmr_pace_t *p, long j);

/* Sleeps until the next event is due (returns at once when behind schedule), advances
 * p->next and returns that event's scheduled time; returns -1 without sleeping or
 * advancing when the next event is due at or after stop_ns. */
int64_t mmr_pace_wait(mmr_pace_t *p, int64_t stop_ns);

#endif
