/* replay_kafka.h — private to src/: the Kafka topic-range loader behind the events reader of
 * replay_io.h (mmr_replay_io_events_new_kafka, whose contract covers the range, the
 * consumer and the decoding). Not the bad-line counting or the bad-fraction rule: those stay
 * in replay_io.c, which receives every message's verdict through the callback. */
#ifndef MMR_REPLAY_KAFKA_H
#define MMR_REPLAY_KAFKA_H

#include <stdint.h>

#include "replay_io.h"

typedef struct mmr_replay_kafka mmr_replay_kafka_t;

/* Receives each message's verdict as it is read: reason NULL for a good one (kept), else a
 * one-line detail of why it is bad, and where is then "topic/partition". Strings are valid only
 * during the call. Returns 0 to go on, or a negated status (err filled) to stop reading. */
typedef int (*mmr_replay_kafka_msg_fn)(void *opaque, const char *where, int64_t offset, const char *reason,
                                       mmr_err_t *err);

/* Reads src's range into *out (owned by the caller: mmr_replay_kafka_free), its events in
 * (ts_ms, partition, offset) order; every message's verdict goes to on_msg(opaque, ...).
 * Errors as mmr_replay_io_events_new_kafka, or the status on_msg returned. */
mmr_status_t mmr_replay_kafka_read(const mmr_replay_io_kafka_t *src, mmr_replay_kafka_msg_fn on_msg, void *opaque,
                                   mmr_replay_kafka_t **out, mmr_err_t *err);
/* The next event into *ev (ev->line = its 1-based position; strings owned by k, valid until
 * mmr_replay_kafka_free). Returns 1, or 0 after the last. */
int mmr_replay_kafka_next(mmr_replay_kafka_t *k, mmr_replay_event_t *ev);
/* NULL is a no-op. */
void mmr_replay_kafka_free(mmr_replay_kafka_t *k);

#endif
