/* mmr_decode.h — one Kafka message payload → a validated mmr_event_t or mmr_item_t, or the
 * reason it is dead-lettered. Pure functions: no Kafka, no store, no allocation that
 * outlives a call except the embedding buffers a decoded item owns, so the consumer, the
 * replay tool and the tests share exactly the same rules.
 *
 * Event rules, checked in this order (the first failure is the reason):
 *   undecodable    not a mmrec.v1.Event (protobuf), not one JSON object, a field of the
 *                  wrong JSON type, or an id containing a NUL byte
 *   missing_id     user_id or item_id empty (event_id may be empty: no dedup then)
 *   id_too_long    any id longer than MMR_ID_MAX bytes
 *   unknown_type   type not in IMPRESSION..RATING (1..8), or an unknown JSON type name
 *   bad_value      value NaN, ±Inf or beyond float range; negative for WATCH or RATING
 *   bad_timestamp  ts_ms negative, or later than now_ms + max_future_ms; 0 means now_ms
 *
 * Item rules (mmrec.v1.Item), in this order:
 *   undecodable          not a mmrec.v1.Item, not one JSON object, a field of the wrong JSON
 *                        type (an embedding element that is neither a number nor a numeric
 *                        string), or an item_id containing a NUL byte
 *   missing_id           item_id empty
 *   id_too_long          item_id longer than MMR_ID_MAX bytes
 *   bad_timestamp        created_ms negative (0 is kept: "unknown")
 *   bad_embedding_width  a present (non-empty) modality wider than MMR_EMB_DIM_MAX, or of a
 *                        width other than emb_dims[m] when that is not 0
 *   bad_embedding_value  an element NaN, ±Inf or beyond float range
 * An empty embedding means the modality is absent. A deleted item is a tombstone: its
 * embeddings are neither checked nor kept (only the first four rules apply). attrs are
 * ignored (the store has no column for them).
 *
 * JSON: field names as in the .proto (snake_case) or their lowerCamelCase JSON names;
 * Event "type" is an enum name ("CLICK") or number; int64 fields (ts_ms, created_ms) may be
 * a number or a decimal string and floats (value, embedding elements) a number or
 * "NaN"/"Infinity"/decimal string, as in the proto3 JSON mapping; "deleted" is a JSON
 * boolean; null means absent; unknown fields, context and attrs are ignored. request_id is
 * optional (kept for the trainer's joiner) and follows the id rules: no NUL, ≤ MMR_ID_MAX. */
#ifndef MMR_DECODE_H
#define MMR_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"
#include "mmr_ingest.h"

/* A decoded event: ev's strings point into the buffers of the same struct, so ev is valid
 * as long as the struct is and is overwritten by the next decode into it. ~1 KiB. */
typedef struct mmr_ingest_decoded {
    mmr_event_t ev;
    char event_id[MMR_ID_MAX + 1];
    char user_id[MMR_ID_MAX + 1];
    char item_id[MMR_ID_MAX + 1];
    char request_id[MMR_ID_MAX + 1]; /* "" when absent: joins actions to impressions */
} mmr_ingest_decoded_t;

/* Decodes and validates data[0..len) (data may be NULL when len is 0: an empty message).
 * MMR_OK: out->ev is a valid event (ts_ms filled in when it was 0).
 * MMR_ERR_INVALID: *reason says why; err (may be NULL) gets a one-line detail naming the
 * field, safe to log or put in a DLQ header (it never quotes payload bytes). */
mmr_status_t mmr_ingest_decode_event(mmr_ingest_format_t format, const void *data, size_t len,
                                     int64_t now_ms, int64_t max_future_ms,
                                     mmr_ingest_decoded_t *out, mmr_ingest_reason_t *reason,
                                     mmr_err_t *err);

/* A decoded item: item.item_id points into item_id below, item.emb[m] into emb_buf[m].
 * The struct owns emb_buf, grown as needed and reused by the next decode into it, so item
 * is valid until then. Zero-initialise before the first decode ({0}); release the buffers
 * with mmr_ingest_decoded_item_release. */
typedef struct mmr_ingest_decoded_item {
    mmr_item_t item;
    char item_id[MMR_ID_MAX + 1];
    float *emb_buf[MMR_MODALITY_COUNT];    /* owned, [emb_cap[m]] floats */
    uint32_t emb_cap[MMR_MODALITY_COUNT];
} mmr_ingest_decoded_item_t;

/* Decodes and validates an Item payload (rules above); data may be NULL when len is 0.
 * emb_dims ([MMR_MODALITY_COUNT], 0 = any width) may be NULL: any width.
 * MMR_OK: out->item is a valid item (a tombstone has every emb_dim 0).
 * MMR_ERR_INVALID: *reason says why; err gets a one-line detail as for events.
 * MMR_ERR_NOMEM: no buffer for the embeddings (not the message's fault: retry it). */
mmr_status_t mmr_ingest_decode_item(mmr_ingest_format_t format, const void *data, size_t len,
                                    const uint32_t *emb_dims, mmr_ingest_decoded_item_t *out,
                                    mmr_ingest_reason_t *reason, mmr_err_t *err);
/* Frees out's embedding buffers and zeroes it (ready for reuse). NULL is a no-op. */
void mmr_ingest_decoded_item_release(mmr_ingest_decoded_item_t *out);

#endif
