/* mmr_decode.h — one Kafka message payload → a validated mmr_event_t, or the reason it is
 * dead-lettered. Pure functions: no Kafka, no store, no allocation that outlives a call, so
 * the consumer, the replay tool and the tests share exactly the same rules.
 *
 * Rules, checked in this order (the first failure is the reason):
 *   undecodable    not a mmrec.v1.Event (protobuf), not one JSON object, a field of the
 *                  wrong JSON type, or an id containing a NUL byte
 *   missing_id     user_id or item_id empty (event_id may be empty: no dedup then)
 *   id_too_long    any id longer than MMR_ID_MAX bytes
 *   unknown_type   type not in IMPRESSION..RATING (1..8), or an unknown JSON type name
 *   bad_value      value NaN, ±Inf or beyond float range; negative for WATCH or RATING
 *   bad_timestamp  ts_ms negative, or later than now_ms + max_future_ms; 0 means now_ms
 *
 * JSON: field names as in event.proto (snake_case) or their lowerCamelCase JSON names;
 * "type" is an enum name ("CLICK") or number; int64 ts_ms may be a number or a decimal
 * string and float value a number or "NaN"/"Infinity"/decimal string, as in the proto3
 * JSON mapping; null means absent; unknown fields, request_id and context are ignored. */
#ifndef MMR_DECODE_H
#define MMR_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"
#include "mmr_ingest.h"

/* A decoded event: ev's strings point into the buffers of the same struct, so ev is valid
 * as long as the struct is and is overwritten by the next decode into it. ~800 bytes. */
typedef struct mmr_ingest_decoded {
    mmr_event_t ev;
    char event_id[MMR_ID_MAX + 1];
    char user_id[MMR_ID_MAX + 1];
    char item_id[MMR_ID_MAX + 1];
} mmr_ingest_decoded_t;

/* Decodes and validates data[0..len) (data may be NULL when len is 0: an empty message).
 * MMR_OK: out->ev is a valid event (ts_ms filled in when it was 0).
 * MMR_ERR_INVALID: *reason says why; err (may be NULL) gets a one-line detail naming the
 * field, safe to log or put in a DLQ header (it never quotes payload bytes). */
mmr_status_t mmr_ingest_decode_event(mmr_ingest_format_t format, const void *data, size_t len,
                                     int64_t now_ms, int64_t max_future_ms,
                                     mmr_ingest_decoded_t *out, mmr_ingest_reason_t *reason,
                                     mmr_err_t *err);

#endif
