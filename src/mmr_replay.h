/* mmr_replay.h — `mmrec replay` as a library: offline evaluation of the towers on a logged
 * event file or Kafka topic range, through the same feature-store, joiner, example-builder, trainer and model
 * code as mmrecd (docs/REPLAY.md, section "mmrec replay"). Not the CLI (cli_replay.c) and
 * not the readers or metrics (replay_io.h, eval_metrics.h).
 *
 * Pipeline per model variant ("fused", and "no_text" / "no_image" / "no_video" ablations):
 * a temporary RocksDB store (mkdtemp) gets the catalog through the batch API (the ablated
 * modality left out, so trainer and model see it as absent); events go through
 * mmr_fstore_batch_add_event in chunks of conf.chunk: a chunk is committed, THEN its events
 * are fed in order to joiner → exbuild → trainer. Examples therefore read user histories
 * that are exact (strictly older events) but item popularity that may include up to one
 * chunk of later events (the within-chunk look-ahead). After each chunk the trainer is
 * refreshed (mmr_trainer_refresh), as each publish in mmrecd refreshes it, so history items
 * are encoded with weights at most one chunk old. Models are mmr_model_new over the
 * store; scoring is the tower's head over (user·item, popularity, recency) for ALL catalog
 * items, with popularity read once per model (one batched read) at the evaluation time.
 *
 * Protocols:
 *   leave-one-out: per user, distinct positive items in order of their first positive
 *     event; the last = test, the one before = validation (users with < 3: training only).
 *     All of the user's events on the test and validation items are held out (their
 *     impressions would otherwise become label-0 examples of the very target); the rest,
 *     impressions and skips included, is the training stream (conf.passes passes, the
 *     store written on the first). Validation events are then written to the store
 *     without learning (history for the test, as in SASRec), and each test user ranks
 *     ALL catalog items at its target's time, its other positive items masked.
 *   prequential: conf.windows equal event-count windows in (ts, file order); per window,
 *     every user with a new positive item in it ranks all items (targets = those items,
 *     masked = the user's earlier positive items), GAUC over the window's impressions
 *     (positive = the user had a positive event on the item in the window), then every
 *     variant learns the window.
 * Baseline "popularity": score = count of earlier positive events (not decayed).
 *
 * Deterministic: the same inputs and conf give the same report except the timing fields.
 * Threads: variants run on up to conf.threads threads, each on its own store; the report
 * does not depend on the thread count. */
#ifndef MMR_REPLAY_H
#define MMR_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "eval_metrics.h"
#include "mmr_err.h"
#include "mmr_joiner.h"
#include "mmr_trainer.h"
#include "replay_io.h"

typedef enum { MMR_REPLAY_LOO = 0, MMR_REPLAY_PREQUENTIAL } mmr_replay_protocol_t;

#define MMR_REPLAY_MODELS_MAX 6 /* fused, popularity, untrained, no_text, no_image, no_video */

/* Progress of a stage ("load", "learn", "eval"): done of total units so far. Called from
 * the run's threads (never concurrently: calls are serialised). */
typedef void (*mmr_replay_progress_fn)(void *opaque, const char *stage, uint64_t done,
                                       uint64_t total);

typedef struct mmr_replay_conf {
    const char *events_path;       /* TSV (replay_io.h), or NULL when events_kafka is set */
    const mmr_replay_io_kafka_t *events_kafka; /* a topic range (replay_io.h) instead of the
                                    * TSV; exactly one of the two */
    const char *items_path;        /* JSON Lines, required */
    const char *oracle_path;       /* oracle.json of `mmrec gen`, or NULL */
    mmr_replay_protocol_t protocol;
    int windows;                   /* prequential windows, >= 1 */
    int passes;                    /* LOO passes over the training stream, >= 1 */
    size_t n_ks;
    int ks[MMR_EVAL_K_MAX];        /* cut-offs, ascending, >= 1 */
    uint64_t seed;                 /* weights, negative sampling */
    int ablations;                 /* 1: also the three single-modality ablations */
    int threads;                   /* variants trained/evaluated at once, >= 1 */
    double max_bad_fraction;       /* of the readers (replay_io.h) */
    const char *tmp_dir;           /* parent of the temporary stores; NULL = $TMPDIR or /tmp */
    int keep_store;                /* 1: leave the stores on disk (paths logged) */
    size_t chunk;                  /* events per store batch, >= 1 */
    mmr_trainer_conf_t trainer;    /* tower d_text/d_image/d_video 0 = the catalog's widths */
    mmr_joiner_conf_t join;        /* seed is replaced by conf.seed */
    mmr_replay_progress_fn progress; /* may be NULL */
    void *opaque;
} mmr_replay_conf_t;

/* Defaults: LOO, 10 windows, 1 pass, K 1,5,10,20,50, seed 42, ablations on, 1 thread,
 * bad fraction 0.01, chunk 4096; tower d_hidden 64, d_out 32, hist_len 16, 2^16 id buckets,
 * widths from the catalog; Adagrad lr 0.05 / 0.05, batch 256; join window 30 s, 4 sampled
 * negatives per positive. */
mmr_replay_conf_t mmr_replay_conf_default(void);

typedef struct mmr_replay_model {
    char name[16];                 /* "fused", "popularity", "no_text", ... */
    mmr_eval_results_t res;        /* LOO: the test; prequential: all windows pooled */
    uint64_t examples;             /* trainer examples (0 for popularity) */
    float loss;                    /* trainer loss_ewma at the end */
} mmr_replay_model_t;

typedef struct mmr_replay_timing {
    double load_s, learn_s, eval_s, total_s; /* learn/eval: summed over variants */
    double events_per_s;           /* input events / total_s */
} mmr_replay_timing_t;

typedef struct mmr_replay_report {
    mmr_replay_protocol_t protocol;
    long events, bad_lines, items, users; /* good input events, skipped lines, catalog, users */
    long train_events, valid_events, test_events; /* LOO split (prequential: all train) */
    long test_users, train_only_users;
    int64_t eval_now_ms;           /* LOO: popularity time of every model */
    size_t n_models;
    mmr_replay_model_t model[MMR_REPLAY_MODELS_MAX];
    int n_windows;                 /* prequential */
    int64_t *window_start_ms;      /* [n_windows] */
    long *window_events;           /* [n_windows] */
    mmr_eval_results_t *window;    /* [n_windows][n_models] */
    char *oracle_json;             /* the oracle file as compact JSON, or NULL */
    char backend[64];
    mmr_replay_timing_t timing;
} mmr_replay_report_t;

/* Runs the replay. *rep is filled (zeroed first; release with mmr_replay_report_clear, also
 * after a failure). Errors: MMR_ERR_INVALID (conf, too many bad lines — the readers'
 * message), MMR_ERR_IO, MMR_ERR_STORE, MMR_ERR_NOMEM, those of the Kafka reader
 * (mmr_replay_io_events_new_kafka), errors of the trainer and model. */
mmr_status_t mmr_replay_run(const mmr_replay_conf_t *conf, mmr_replay_report_t *rep,
                            mmr_err_t *err);
/* Frees what rep holds. NULL is a no-op. */
void mmr_replay_report_clear(mmr_replay_report_t *rep);

/* Writes dir/report.json (config, split, metrics, windows, oracle, and one "timing"
 * object holding everything run-dependent), dir/summary.txt (also to summary when not
 * NULL) and dir/plot.png when gnuplot is on PATH (the summary says when it is not).
 * dir is created if missing; dir NULL writes only the summary (then summary is required).
 * Errors: MMR_ERR_IO, MMR_ERR_NOMEM. */
mmr_status_t mmr_replay_write(const mmr_replay_conf_t *conf, const mmr_replay_report_t *rep,
                              const char *dir, FILE *summary, mmr_err_t *err);

#endif
