/* mmr_joiner.h — labels from the stream: the impression/positive join that feeds the trainer.
 *
 * Rules (DESIGN §6):
 *   - a positive event (mmr_event_is_positive: CLICK, LIKE, SHARE, PURCHASE, long WATCH,
 *     high RATING) is a label-1 example at once; with a request_id it also settles the
 *     impression (request_id, item_id) that showed the item, and carries that impression's
 *     model version and experiment arm;
 *   - an impression (from mmrec.impressions or an IMPRESSION event) that no positive settles
 *     within window_ms of event time becomes a label-0 example; a positive that arrives
 *     before its impression (two topics, no order between them) settles it in advance;
 *     (such a positive was emitted without the impression's version and arm: an arm's
 *     clicks are counted only when the impression is read first);
 *   - a SKIP is a label-0 example at once;
 *   - each positive adds neg_per_pos sampled negatives: items drawn uniformly from a
 *     reservoir of DISTINCT item ids seen in the stream (not in proportion to how often
 *     they appear, so popularity stays informative to the ranking head), never the
 *     positive item itself (seeded: a replay draws the same ones).
 * Time is event time (the largest ts_ms seen), so a replay decides exactly as a live run.
 *
 * Memory is bounded: at most max_pending impressions and early positives are held; when
 * full, the oldest one is decided now (an impression becomes a negative, counted as
 * `forced`). Ids are copied; nothing passed in is kept after a call returns.
 * Threads: single-threaded (the trainer's thread). Knows nothing of Kafka or the store. */
#ifndef MMR_JOINER_H
#define MMR_JOINER_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"

typedef struct mmr_joiner mmr_joiner_t;

/* One labelled (user, item) pair; strings valid only during the emit call. */
typedef struct mmr_joined {
    const char *user_id;
    const char *item_id;
    int64_t ts_ms;          /* event time of the decision's source event */
    float label;            /* 1 or 0 */
    uint64_t model_version; /* of the impression that showed the item, 0 when unknown */
    const char *arm;        /* experiment arm of that impression, "" when none */
    int sampled;            /* 1: a sampled negative */
} mmr_joined_t;

typedef void (*mmr_joiner_emit_fn)(void *opaque, const mmr_joined_t *j);

typedef struct mmr_joiner_conf {
    int64_t window_ms;    /* default 30000 */
    size_t max_pending;   /* default 1 << 20 */
    int neg_per_pos;      /* sampled negatives per positive; default 0 (none), max 64 */
    size_t reservoir;     /* distinct item ids kept for sampling; default 65536 */
    uint64_t seed;
} mmr_joiner_conf_t;

typedef struct mmr_joiner_stats {
    uint64_t positives, negatives, sampled; /* emitted examples (negatives include sampled) */
    uint64_t settled;   /* impressions settled by a positive */
    uint64_t forced;    /* impressions decided early because the join was full */
    uint64_t pending;   /* held now */
} mmr_joiner_stats_t;

/* emit is called for every decided example, from inside the calls below. conf may be
 * NULL (defaults). Errors: MMR_ERR_INVALID, MMR_ERR_NOMEM. */
mmr_status_t mmr_joiner_new(const mmr_joiner_conf_t *conf, mmr_joiner_emit_fn emit, void *opaque,
                            mmr_joiner_t **out, mmr_err_t *err);
void mmr_joiner_free(mmr_joiner_t *j); /* pending impressions are dropped; NULL is a no-op */

/* An event from mmrec.events (request_id may be NULL or ""). Other types than those in the
 * rules above only feed the sampling reservoir. Errors: MMR_ERR_NOMEM. */
mmr_status_t mmr_joiner_event(mmr_joiner_t *j, const mmr_event_t *ev, const char *request_id,
                              mmr_err_t *err);
/* One served ranking: n items shown to user_id under request_id. Errors: MMR_ERR_NOMEM. */
mmr_status_t mmr_joiner_impression(mmr_joiner_t *j, const char *request_id, const char *user_id,
                                   const char *const *item_ids, size_t n, uint64_t model_version,
                                   const char *arm, int64_t ts_ms, mmr_err_t *err);
/* Adds item_id to the pool sampled negatives are drawn from (e.g. the catalog, so that
 * items nobody touched yet are negatives too); the stream adds every id it carries. */
void mmr_joiner_add_item(mmr_joiner_t *j, const char *item_id);
/* How many distinct ids the sampling pool holds (conf.reservoir after defaults). */
size_t mmr_joiner_pool_capacity(const mmr_joiner_t *j);
/* Decides every held impression now (end of a replay, shutdown). */
void mmr_joiner_flush(mmr_joiner_t *j);
void mmr_joiner_get_stats(const mmr_joiner_t *j, mmr_joiner_stats_t *out);

#endif
