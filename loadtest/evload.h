/* evload.h — mmrec-load's Kafka producer mode: synthetic mmrec.v1.Event messages pushed
 * into a topic at a fixed rate, for ingestion and online-learning load (alone or beside
 * the Rank engine of load.h, on its own thread). Not a replay tool (`mmrec produce`
 * pushes datasets) and not a consumer: it measures what the broker acknowledged, not
 * what mmrecd applied (read /metrics for that).
 *
 * Event j is scheduled at start + j/rate (pace.h) and sent then, or at once when behind;
 * ts_ms is the wall-clock time of the actual send, so mmrecd's event-to-model freshness
 * is measured from it. key = user_id; users and items are drawn like the Rank load
 * (uniform or Zipf, ids u<k> / i<k>); types: 80% CLICK, 10% IMPRESSION, 5% LIKE,
 * 5% WATCH (value = 1..60 s); event_id "ld<start ms>-<seed>-<j>", unique per run. */
#ifndef MMR_EVLOAD_H
#define MMR_EVLOAD_H

#include <stdint.h>

#include "mmr_err.h"

typedef struct mmr_evload_cfg {
    const char *brokers;  /* bootstrap.servers (borrowed) */
    const char *topic;    /* default "mmrec.events" (borrowed) */
    double rate;          /* events/s offered (> 0) */
    double duration_s;    /* schedule length */
    long max_events;      /* cap (0 = rate * duration) */
    long users, items;
    double zipf_s;        /* 0 = uniform, > 0 = Zipf exponent */
    uint64_t seed;
    int flush_ms;         /* after the schedule, wait this long for acknowledgements */
} mmr_evload_cfg_t;

/* Defaults: topic mmrec.events, 1000 events/s for 10 s, 1000 users, 500 items, uniform,
 * seed 1, 5000 ms flush; brokers NULL (must be set). */
void mmr_evload_cfg_default(mmr_evload_cfg_t *cfg);

typedef struct mmr_evload_result {
    long scheduled;       /* events in the schedule */
    long sent;            /* handed to librdkafka */
    long acked;           /* delivery reports without error */
    long failed;          /* delivery reports with an error, plus produce calls refused */
    long unacked;         /* sent but no report within flush_ms */
    int64_t max_lag_ns;   /* worst actual-send minus scheduled-send */
    double elapsed_s;     /* schedule start to the last acknowledgement */
    double achieved_rate; /* acked / elapsed_s */
    char last_error[128]; /* last delivery or produce error, "" when none */
} mmr_evload_result_t;

/* Runs the schedule on the calling thread and fills *res (zeroed first). Blocks for about
 * duration_s plus the flush. Errors: MMR_ERR_INVALID (bad cfg), MMR_ERR_KAFKA (the
 * producer could not be created). Delivery failures are results, not errors. */
mmr_status_t mmr_evload_run(const mmr_evload_cfg_t *cfg, mmr_evload_result_t *res, mmr_err_t *err);

#endif
