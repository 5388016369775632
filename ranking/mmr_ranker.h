/* mmr_ranker.h — the Rank method: validate a RankRequest, read features, score, order.
 *
 * Scoring today is the statistics baseline (the towers plug in behind the same call):
 *   score(u, i) = affinity(u, i) + 0.1 · log1p(popularity_i)
 *   affinity(u, i) = Σ over u's recent interactions with i of w(type, value)
 *   w: CLICK 1, LIKE 2, SHARE 2, PURCHASE 3, WATCH min(s/30, 2), RATING (stars−3)/2,
 *      SKIP −1, IMPRESSION −0.05
 * An unknown user gets the popularity ranking (cold start), never an error.
 *
 * With a model registry (conf.registry) and a version to use, the model scores instead
 * (mmr_model.h: the ranking head's P(engage) over [user·item, popularity, recency]):
 *   version = request.model_version, else the experiment arm's (request.experiment, sticky
 *   by user), else the serving one; none serving → the baseline above (model_version 0).
 *   A model_version that is not loaded → NOT_FOUND; an unknown experiment, or both
 *   model_version and experiment → INVALID_ARGUMENT.
 *   retrieve_k (≤ max_candidates) takes the top-k of the model's item index (mmr_model_retrieve: exact, or IVF above 20k items) by
 *   user·item as candidates (without a model: UNIMPLEMENTED); exclude_seen drops items in
 *   the user's recent interactions (before retrieval); explain returns gate weights.
 * The response and the impression carry the version used; the impression's experiment_arm
 * is "<experiment>/<arm>" and the arm's impressions are counted in the registry. */
#ifndef MMR_RANKER_H
#define MMR_RANKER_H

#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"
#include "mmr_registry.h"
#include "mmr_server.h"
#include "mmrec/v1/event.pb-c.h"

typedef struct mmr_ranker mmr_ranker_t;

/* Receives each served ranking (the impression log); must not block. imp is valid only
 * during the call. The daemon hands in streaming's Kafka producer here, so ranking/ never
 * depends on streaming/. */
typedef void (*mmr_ranker_impression_fn)(void *opaque, const Mmrec__V1__Impression *imp);

typedef struct mmr_ranker_conf {
    uint32_t max_candidates;   /* larger requests get INVALID_ARGUMENT (default 10000) */
    uint32_t default_top_k;    /* when the request says 0 (default: all scored) */
    mmr_ranker_impression_fn impression_fn; /* NULL = no impression log */
    void *impression_opaque;
    mmr_registry_t *registry;  /* borrowed, must outlive the ranker; NULL = baseline only */
} mmr_ranker_conf_t;

typedef struct mmr_ranker_stats {
    uint64_t requests;
    uint64_t invalid;             /* INVALID_ARGUMENT answers */
    uint64_t unknown_candidates;  /* candidate ids the store does not know */
    uint64_t cold_start;          /* requests for users without history */
    uint64_t model_scored;        /* requests scored by a model (the rest: baseline) */
} mmr_ranker_stats_t;

/* fs is borrowed and must outlive the ranker. */
mmr_status_t mmr_ranker_new(const mmr_ranker_conf_t *conf, mmr_fstore_t *fs, mmr_ranker_t **out,
                            mmr_err_t *err);
void mmr_ranker_free(mmr_ranker_t *r);
void mmr_ranker_get_stats(mmr_ranker_t *r, mmr_ranker_stats_t *out);

/* Handler for "/mmrec.v1.Ranker/Rank" (opaque = the ranker); thread-safe. */
void mmr_ranker_handle_rank(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply);

#endif
