/* mmr_trainerd.h — the online trainer inside mmrecd: one thread that reads the trainer's
 * Kafka feed, joins labels, builds examples from the feature store and trains the towers,
 * and one that publishes model versions into the registry (hot swap), with periodic
 * checkpoints.
 *
 *   feed (mmr_trainfeed) → joiner (mmr_joiner) → example (mmr_exbuild) → mmr_trainer_add
 *   every publish_interval_ms (or publish_examples new examples): snapshot → publisher
 *   thread → registry publish, while training goes on
 *   every checkpoint_interval_ms and on stop: weights + optimizer + Kafka offsets → file
 *
 * On start a checkpoint at checkpoint_path is resumed (weights, optimizer state and the
 * feed's offsets); without one the trainer starts from fresh weights at the beginning of
 * the topics. Freshness: at each publish, for every positive (and its sampled negatives)
 * the new version learned from, the time from its event's ts to the moment the version
 * serves, into a histogram (impression negatives wait for the join window by design and are
 * left out); plus the oldest/newest event of the last publish. Wiring only: src/. */
#ifndef MMR_TRAINERD_H
#define MMR_TRAINERD_H

#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"
#include "mmr_joiner.h"
#include "mmr_registry.h"
#include "mmr_trainer.h"
#include "mmr_trainfeed.h"

typedef struct mmr_trainerd mmr_trainerd_t;

typedef struct mmr_trainerd_conf {
    mmr_trainfeed_conf_t feed;
    mmr_joiner_conf_t join;
    mmr_trainer_conf_t trainer;
    const char *checkpoint_path;    /* copied */
    int64_t publish_interval_ms;    /* > 0 */
    uint64_t publish_examples;      /* publish early after this many new examples; 0 = off */
    int64_t checkpoint_interval_ms; /* > 0 */
    int nice;                       /* 0..19: nice value of the trainer and publisher threads */
} mmr_trainerd_conf_t;

/* Upper bounds (ms) of the freshness histogram buckets; the last bucket is +Inf. */
#define MMR_TRAINERD_FRESH_BUCKETS 16
extern const double mmr_trainerd_fresh_le[MMR_TRAINERD_FRESH_BUCKETS - 1];

typedef struct mmr_trainerd_stats {
    mmr_trainer_stats_t trainer;
    mmr_joiner_stats_t join;
    mmr_trainfeed_stats_t feed;
    uint64_t example_errors;  /* examples the store or the trainer refused (logged) */
    uint64_t publishes, publish_errors, checkpoints, checkpoint_errors;
    uint64_t version;         /* last published */
    int64_t fresh_oldest_ms;  /* last publish: now - oldest event ts it learned from */
    int64_t fresh_newest_ms;  /* last publish: now - newest event ts it learned from */
    int64_t publish_ms;       /* last publish: snapshot, model file, item index, swap */
    uint64_t fresh_hist[MMR_TRAINERD_FRESH_BUCKETS]; /* examples per bucket (not cumulative) */
    double fresh_sum_ms;      /* over all examples counted in fresh_hist */
} mmr_trainerd_stats_t;

/* Resumes or creates the trainer and starts its thread. fs and reg are borrowed and must
 * outlive it. Errors: MMR_ERR_INVALID, MMR_ERR_CORRUPT (unreadable checkpoint: refused
 * rather than silently retraining from scratch), MMR_ERR_KAFKA, MMR_ERR_NOMEM. */
mmr_status_t mmr_trainerd_start(const mmr_trainerd_conf_t *conf, mmr_fstore_t *fs,
                                mmr_registry_t *reg, mmr_trainerd_t **out, mmr_err_t *err);
/* Stops the thread, writes a final checkpoint, frees everything. NULL is a no-op. */
void mmr_trainerd_stop(mmr_trainerd_t *td);
/* Any thread. */
void mmr_trainerd_get_stats(mmr_trainerd_t *td, mmr_trainerd_stats_t *out);

#endif
