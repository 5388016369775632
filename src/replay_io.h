/* replay_io.h — streaming readers for the offline-evaluation inputs: an events TSV file, the
 * same events from a Kafka topic range, and an items JSON Lines file (formats in
 * docs/REPLAY.md), plus the built-in hashing text encoder. Not the replay itself: no
 * splitting, store or model work happens here.
 *
 * The file readers hand out one record per call and hold one line in memory, never the
 * file. The Kafka reader reads its whole range into memory when it is created (it must
 * merge the partitions by time) and then hands out one event per call.
 * A bad line is reported as "file:line: reason", a bad message as
 * "topic/partition@offset: reason" (to opts.on_bad, or else mmr_log WARN), counted and
 * skipped. Blank lines and lines starting with '#' are skipped and not counted.
 *
 * Bad-fraction rule (opts.max_bad_fraction, default 0.01), with n = good + bad lines (or
 * messages):
 *   - at end of input the read fails when bad > max_bad_fraction · n;
 *   - early, once n ≥ MMR_REPLAY_IO_EARLY_LINES, it fails as soon as
 *     bad > 2 · max_bad_fraction · n (clearly over the limit: a wrong or corrupt file is
 *     refused after its first thousand lines instead of after the whole file).
 * Failing is MMR_ERR_INVALID with a message naming the file (or topic), the counts and the
 * limit.
 *
 * Not thread-safe: one reader belongs to one thread. */
#ifndef MMR_REPLAY_IO_H
#define MMR_REPLAY_IO_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"
#include "mmr_ingest.h"

#define MMR_REPLAY_IO_MAX_BAD_DEFAULT 0.01
#define MMR_REPLAY_IO_EARLY_LINES 1000 /* lines read before the early bad-fraction check */
#define MMR_REPLAY_IO_LOG_MAX 100      /* bad lines logged when no on_bad callback is set */

/* Receives one bad line; file and reason are valid only during the call. From the Kafka
 * reader, file is "topic/partition" and line the message's offset. */
typedef void (*mmr_replay_io_bad_fn)(void *opaque, const char *file, long line, const char *reason);

typedef struct mmr_replay_io_opts {
    double max_bad_fraction;       /* 0..1; see the rule above */
    mmr_replay_io_bad_fn on_bad;   /* NULL: the first MMR_REPLAY_IO_LOG_MAX bad lines go to
                                    * mmr_log WARN (module "replay"), the rest only counted */
    void *opaque;                  /* passed to on_bad */
    uint32_t dims[MMR_MODALITY_COUNT]; /* items only: required embedding widths (text, image,
                                        * video); 0 = any width, like item.dim_* */
} mmr_replay_io_opts_t;

/* Defaults: max_bad_fraction 0.01, log to mmr_log, any widths. */
mmr_replay_io_opts_t mmr_replay_io_opts_default(void);

/* What a reader has seen so far (final once next returned 0). */
typedef struct mmr_replay_io_stats {
    long good;               /* records returned (Kafka: decoded when the reader was created) */
    long bad;                /* lines skipped as bad */
    long skipped;            /* blank and '#' lines */
    int sorted;              /* events: 1 while every ts_ms ≥ the previous good one (always
                              * 1 from Kafka: the reader merges by time) */
    long first_unsorted_line;/* events: first line whose ts_ms went backwards, 0 if none */
    int64_t min_ts_ms, max_ts_ms; /* events: over good lines (0 when none) */
} mmr_replay_io_stats_t;

/* --- events TSV ------------------------------------------------------------------------ */

/* One line `ts_ms<TAB>user_id<TAB>item_id[<TAB>type[<TAB>value[<TAB>request_id]]]`.
 * type: a name (IMPRESSION, CLICK, LIKE, SHARE, WATCH, SKIP, PURCHASE, RATING; any case)
 * or its number 1..8; default CLICK. value: a finite number, default 1. Strings point into
 * the reader's line buffer and stay valid until the next call on the reader. */
typedef struct mmr_replay_event {
    mmr_event_t ev;         /* event_id is NULL; user_id, item_id 1..MMR_ID_MAX bytes */
    const char *request_id; /* "" when absent */
    long line;              /* 1-based line number in the file; from Kafka, the 1-based
                             * position in the merged stream */
} mmr_replay_event_t;

typedef struct mmr_replay_io_events mmr_replay_io_events_t;

/* Opens path for reading. opts (NULL = defaults) is copied. On MMR_OK *out is owned by the
 * caller (mmr_replay_io_events_free). Errors: MMR_ERR_INVALID (bad opts), MMR_ERR_IO. */
mmr_status_t mmr_replay_io_events_new(const char *path, const mmr_replay_io_opts_t *opts,
                                      mmr_replay_io_events_t **out, mmr_err_t *err);
/* Reads the next good event into *ev, in file order (equal timestamps keep file order; the
 * file reader does not sort: stats.sorted tells the caller whether it must; the Kafka reader
 * gives (ts_ms, partition, offset) order). Returns 1 with *ev
 * filled, 0 at end of file (the end-of-file bad-fraction check passed), or a negated status:
 * -MMR_ERR_INVALID (bad-fraction rule, message in err), -MMR_ERR_IO (read error), -MMR_ERR_NOMEM.
 * After 0 or an error, further calls return the same value. */
int mmr_replay_io_events_next(mmr_replay_io_events_t *r, mmr_replay_event_t *ev, mmr_err_t *err);
void mmr_replay_io_events_stats(const mmr_replay_io_events_t *r, mmr_replay_io_stats_t *out);
/* Closes the file, or frees the events read from Kafka. NULL is a no-op. */
void mmr_replay_io_events_free(mmr_replay_io_events_t *r);

/* --- events from a Kafka topic range (replay_kafka.c) --------------------------------- */

#define MMR_REPLAY_KAFKA_TIMEOUT_MS 10000     /* default mmr_replay_io_kafka_t.timeout_ms */
#define MMR_REPLAY_KAFKA_MAX_FUTURE_MS 3600000 /* mmrecd's default mmr_ingest_conf_t.max_future_ms */
#define MMR_REPLAY_KAFKA_NO_BOUND (-1)         /* from_ms / to_ms: no bound */

/* A topic range. Messages are what mmrecd ingests (mmr_decode.h: mmrec.v1.Event or JSON),
 * decoded and validated by the same decoder with now_ms = the message's timestamp (its
 * ingestion time, so a replay judges a message as mmrecd did when it arrived; a message
 * with no timestamp gets the reader's start time) and max_future_ms =
 * MMR_REPLAY_KAFKA_MAX_FUTURE_MS. event_id is read but not used: no dedup.
 * The range is [from_ms, to_ms) on the Kafka message timestamp (CreateTime as the producer
 * set it, or LogAppendTime), resolved to offsets once per partition with
 * rd_kafka_offsets_for_times; no bound = the low watermark / the high watermark read when
 * the reader is created, so a live topic still gives a bounded range. */
typedef struct mmr_replay_io_kafka {
    const char *brokers;         /* bootstrap.servers, required */
    const char *topic;           /* required */
    mmr_ingest_format_t format;  /* as mmrecd's ingest.format */
    int64_t from_ms, to_ms;      /* ≥ 0, or MMR_REPLAY_KAFKA_NO_BOUND; from_ms < to_ms */
    int timeout_ms;              /* each broker request, and the longest wait for the next
                                  * message while reading; 0 = MMR_REPLAY_KAFKA_TIMEOUT_MS */
} mmr_replay_io_kafka_t;

/* The topic's whole range, protobuf, default timeout. brokers and topic are borrowed. */
mmr_replay_io_kafka_t mmr_replay_io_kafka_default(const char *brokers, const char *topic);

/* Connects as a plain consumer (rd_kafka_assign: no group membership, no commits, so no
 * group's offsets ever move), resolves the range, reads it and closes the consumer; the
 * events are then held in memory (about 56 bytes + the ids' lengths each) until
 * mmr_replay_io_events_free. src is borrowed during the call; opts (NULL = defaults;
 * dims unused) is copied. On MMR_OK *out is owned by the caller; next/stats/free as for a
 * file. Errors: MMR_ERR_INVALID (bad src or opts, the bad-fraction rule's early check),
 * MMR_ERR_NOT_FOUND (no such topic), MMR_ERR_KAFKA (the broker cannot be reached or
 * answers with an error within timeout_ms, a message cannot be read), MMR_ERR_TIMEOUT (the
 * topic stopped delivering before the end of the range), MMR_ERR_NOMEM. */
mmr_status_t mmr_replay_io_events_new_kafka(const mmr_replay_io_kafka_t *src, const mmr_replay_io_opts_t *opts,
                                            mmr_replay_io_events_t **out, mmr_err_t *err);

/* --- items JSON Lines ------------------------------------------------------------------ */

/* One JSON object per line: "item_id" (string, 1..MMR_ID_MAX bytes, required); optional
 * "text_emb", "image_emb", "video_emb" (arrays of finite numbers of the configured widths);
 * optional "text" (string: when there is no "text_emb" it is embedded by
 * mmr_replay_io_embed_text into dims[TEXT] floats, which must then be > 0; text with no
 * token leaves the text modality absent); optional "attrs" (must be an object; checked and
 * not used); optional "created_ms" (integer, default 0) and "deleted" (boolean, default
 * false). Other fields are ignored. item's strings and arrays are owned by the reader and
 * valid until the next call. Duplicate ids are returned as they come (later wins, as in
 * the store). */
typedef struct mmr_replay_item {
    mmr_item_t item;  /* ready for mmr_fstore_batch_put_item */
    int text_encoded; /* 1 when item.emb[TEXT] came from the raw "text" */
    long line;
} mmr_replay_item_t;

typedef struct mmr_replay_io_items mmr_replay_io_items_t;

/* As mmr_replay_io_events_new; opts->dims sets the widths. */
mmr_status_t mmr_replay_io_items_new(const char *path, const mmr_replay_io_opts_t *opts,
                                     mmr_replay_io_items_t **out, mmr_err_t *err);
/* As mmr_replay_io_events_next, for items. */
int mmr_replay_io_items_next(mmr_replay_io_items_t *r, mmr_replay_item_t *it, mmr_err_t *err);
void mmr_replay_io_items_stats(const mmr_replay_io_items_t *r, mmr_replay_io_stats_t *out);
void mmr_replay_io_items_free(mmr_replay_io_items_t *r);

/* --- the hashing text encoder (a baseline; production brings its own embeddings) ------- */

/* Embeds text[0..len) into out[d] (d ≥ 1): ASCII letters are lowercased; tokens are
 * maximal runs of ASCII letters, digits and bytes ≥ 0x80 (so UTF-8 words stay whole);
 * every unigram and every bigram of adjacent tokens is hashed (CRC-32C, then the splitmix64
 * finaliser) to a bucket h mod d and a sign from the top bit, and adds ±1 there; the
 * vector is then L2-normalised. Deterministic across runs and machines. Returns the number
 * of tokens; with 0 tokens (empty or punctuation-only text) out is all zeros. */
size_t mmr_replay_io_embed_text(const char *text, size_t len, float *out, uint32_t d);

#endif
