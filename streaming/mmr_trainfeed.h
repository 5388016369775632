/* mmr_trainfeed.h — the online trainer's Kafka input: its own consumer group on
 * mmrec.events and mmrec.impressions, decoded with the ingestion rules and fed into a
 * joiner (mmr_joiner.h).
 *
 * Offsets belong to the trainer's checkpoint, not to Kafka: mmr_trainfeed_offsets
 * serialises the next offset of every partition read so far, the trainer saves it with its
 * weights, and a restarted trainer hands it back (mmr_trainfeed_set_offsets) before
 * start; assigned partitions then resume exactly there (partitions without a saved offset
 * start at the beginning). mmr_trainfeed_commit also commits them to the group, for lag
 * monitoring only. Messages that do not decode are skipped and counted (ingestion
 * dead-letters the same messages). Threads: one thread calls everything but get_stats. */
#ifndef MMR_TRAINFEED_H
#define MMR_TRAINFEED_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_ingest.h"
#include "mmr_joiner.h"

typedef struct mmr_trainfeed mmr_trainfeed_t;

typedef struct mmr_trainfeed_conf {
    const char *brokers;
    const char *group_id;          /* "mmrec-trainer" */
    const char *events_topic;      /* "mmrec.events" */
    const char *impressions_topic; /* "mmrec.impressions"; NULL or "" = impressions only
                                    * from IMPRESSION events */
    mmr_ingest_format_t format;    /* of the events topic; impressions are always protobuf */
    int64_t max_future_ms;         /* as for ingestion; 0 = 1 hour */
    const char *const *kafka_props; /* "key=value" pass-through ("consumer." prefix allowed) */
    size_t n_kafka_props;
} mmr_trainfeed_conf_t;

typedef struct mmr_trainfeed_stats {
    uint64_t events, impressions; /* fed to the joiner */
    uint64_t undecodable;         /* skipped */
    uint64_t assigned;            /* partitions held now */
} mmr_trainfeed_stats_t;

/* joiner is borrowed and must outlive the feed. conf strings are copied.
 * Errors: MMR_ERR_INVALID, MMR_ERR_NOMEM, MMR_ERR_KAFKA. */
mmr_status_t mmr_trainfeed_new(const mmr_trainfeed_conf_t *conf, mmr_joiner_t *joiner,
                               mmr_trainfeed_t **out, mmr_err_t *err);
/* Closes the consumer (leaves the group). NULL is a no-op. */
void mmr_trainfeed_free(mmr_trainfeed_t *f);
/* Offsets saved by mmr_trainfeed_offsets; before mmr_trainfeed_start.
 * Errors: MMR_ERR_CORRUPT (not such a blob), MMR_ERR_NOMEM. */
mmr_status_t mmr_trainfeed_set_offsets(mmr_trainfeed_t *f, const void *blob, size_t len,
                                       mmr_err_t *err);
/* Subscribes. Errors: MMR_ERR_KAFKA. */
mmr_status_t mmr_trainfeed_start(mmr_trainfeed_t *f, mmr_err_t *err);
/* Reads up to max_msgs messages, waiting at most timeout_ms for the first, and feeds the
 * joiner (whose emit callback runs inside this call). Returns the number of messages read,
 * or a negated status (joiner out of memory). */
int mmr_trainfeed_poll(mmr_trainfeed_t *f, int timeout_ms, int max_msgs, mmr_err_t *err);
/* The next offsets of every partition read: *blob owned by the caller (free). */
mmr_status_t mmr_trainfeed_offsets(mmr_trainfeed_t *f, void **blob, size_t *len, mmr_err_t *err);
/* Commits the current offsets to the group asynchronously (monitoring only). */
void mmr_trainfeed_commit(mmr_trainfeed_t *f);
void mmr_trainfeed_get_stats(mmr_trainfeed_t *f, mmr_trainfeed_stats_t *out); /* any thread */

#endif
