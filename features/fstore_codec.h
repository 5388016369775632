/* fstore_codec.h — binary record formats of the feature store (private to features/).
 *
 * Pure functions, no RocksDB: the store and its merge operator call them, tests call them
 * directly. Every record starts with a version byte; decoders check every length against
 * the buffer and return MMR_ERR_CORRUPT (never read out of bounds) on anything malformed.
 * Integers are little-endian; floats are IEEE-754 float32/float64 little-endian.
 *
 * users (v1):  u8 version=1 | varint events_total | varint n (≤ MMR_USER_RING_MAX) |
 *              n × { varint id_len (1..MMR_ID_MAX) | id bytes | u8 type (1..8) |
 *                    f32 value | varint zigzag(ts_ms − previous ts_ms, first vs 0) }
 *              oldest interaction first.
 * items (v1):  u8 version=1 | u8 flags (bit 0 = deleted, others 0) | i64 created_ms |
 *              u32 dim[text,image,video] | f32 × (Σ dim), text then image then video.
 * stats (v1):  41 bytes: u8 version=1 | i64 impressions | i64 clicks | i64 positives |
 *              f64 popularity | i64 last_ts_ms. One event is one such delta; the merge
 *              operator folds deltas with mmr_fstore_codec_stats_combine.
 * meta:        offsets i64, schema version u32. dedup marks: i64 wall-clock ms. */
#ifndef MMR_FSTORE_CODEC_H
#define MMR_FSTORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"

#define MMR_FSTORE_USER_V1 1
#define MMR_FSTORE_ITEM_V1 1
#define MMR_FSTORE_STATS_V1 1
#define MMR_FSTORE_STATS_SIZE 41
#define MMR_FSTORE_ITEM_HEAD 22 /* version, flags, created_ms, 3 dims */

/* One interaction as the codec sees it; item points into someone else's buffer. */
typedef struct mmr_fstore_ix {
    const char *item;
    uint32_t item_len;
    mmr_event_type_t type;
    float value;
    int64_t ts_ms;
} mmr_fstore_ix_t;

/* --- users --- */
/* Upper bound of the encoded size of a user holding n interactions. */
size_t mmr_fstore_codec_user_bound(uint32_t n);
/* Encodes n interactions, the i-th oldest being ring[(head + i) % cap], into out (at least
 * mmr_fstore_codec_user_bound(n) bytes). Returns the encoded length. */
size_t mmr_fstore_codec_encode_user(uint8_t *out, int64_t events_total,
                                    const mmr_fstore_ix_t *ring, uint32_t cap, uint32_t head,
                                    uint32_t n);

/* Streaming decoder: begin, then next exactly n times. Borrows buf until done. */
typedef struct mmr_fstore_user_dec {
    const uint8_t *p, *end;
    int64_t events_total;
    uint32_t n;      /* interactions in the record */
    uint32_t left;   /* not yet returned by next */
    int64_t prev_ts;
} mmr_fstore_user_dec_t;

mmr_status_t mmr_fstore_codec_user_begin(mmr_fstore_user_dec_t *d, const void *buf, size_t len,
                                         mmr_err_t *err);
/* Fills ix (ix->item points into buf). The last call also checks there are no trailing bytes. */
mmr_status_t mmr_fstore_codec_user_next(mmr_fstore_user_dec_t *d, mmr_fstore_ix_t *ix,
                                        mmr_err_t *err);

/* --- items --- */
/* Checks an item for mmr_fstore_batch_put_item (ids, widths, finite embeddings). */
mmr_status_t mmr_fstore_codec_check_item(const mmr_item_t *it, mmr_err_t *err);
size_t mmr_fstore_codec_item_size(const mmr_item_t *it);
/* Encodes a checked item into out (mmr_fstore_codec_item_size bytes). */
void mmr_fstore_codec_encode_item(uint8_t *out, const mmr_item_t *it);

/* A decoded item record; emb[m] points at dim[m] unaligned little-endian floats in buf. */
typedef struct mmr_fstore_item_view {
    int64_t created_ms;
    int deleted;
    uint32_t dim[MMR_MODALITY_COUNT];
    const uint8_t *emb[MMR_MODALITY_COUNT];
} mmr_fstore_item_view_t;

mmr_status_t mmr_fstore_codec_decode_item(const void *buf, size_t len,
                                          mmr_fstore_item_view_t *v, mmr_err_t *err);
/* Copies n little-endian floats from src (any alignment) into dst. */
void mmr_fstore_codec_load_floats(float *dst, const uint8_t *src, uint32_t n);

/* --- stats --- */
/* The delta of one event: counters 0/1, popularity 1 when positive, last_ts = ts_ms. */
void mmr_fstore_codec_stats_of_event(const mmr_event_t *ev, mmr_item_stats_t *out);
void mmr_fstore_codec_encode_stats(uint8_t out[MMR_FSTORE_STATS_SIZE], const mmr_item_stats_t *s);
mmr_status_t mmr_fstore_codec_decode_stats(const void *buf, size_t len, mmr_item_stats_t *out,
                                           mmr_err_t *err);
/* pop, a popularity as of from_ms, decayed to to_ms (to_ms ≥ from_ms). */
double mmr_fstore_codec_decay(double pop, int64_t from_ms, int64_t to_ms, double half_life_ms);
/* acc ⊕= d. Counters add; both popularities are decayed to t = max(last_ts) and added, and
 * last_ts becomes t. Since decaying a→b then b→c equals decaying a→c, ⊕ is associative and
 * commutative (up to float rounding), so RocksDB may group partial merges as it likes. */
void mmr_fstore_codec_stats_combine(mmr_item_stats_t *acc, const mmr_item_stats_t *d,
                                    double half_life_ms);

/* --- fixed-width helpers (meta values, dedup marks) --- */
void mmr_fstore_codec_put_i64(uint8_t out[8], int64_t v);
int64_t mmr_fstore_codec_get_i64(const uint8_t in[8]);
void mmr_fstore_codec_put_u32(uint8_t out[4], uint32_t v);
uint32_t mmr_fstore_codec_get_u32(const uint8_t in[4]);

#endif
