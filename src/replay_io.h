/* replay_io.h — streaming readers for the offline-evaluation inputs: an events TSV file and
 * an items JSON Lines file (formats in docs/REPLAY.md), plus the built-in hashing text
 * encoder. Not the replay itself: no ordering, splitting, store or model work happens here.
 *
 * Both readers hand out one record per call and hold one line in memory, never the file.
 * A bad line is reported as "file:line: reason" (to opts.on_bad, or else mmr_log WARN),
 * counted and skipped. Blank lines and lines starting with '#' are skipped and not counted.
 *
 * Bad-fraction rule (opts.max_bad_fraction, default 0.01), with n = good + bad lines:
 *   - at end of file the read fails when bad > max_bad_fraction · n;
 *   - early, once n ≥ MMR_REPLAY_IO_EARLY_LINES, it fails as soon as
 *     bad > 2 · max_bad_fraction · n (clearly over the limit: a wrong or corrupt file is
 *     refused after its first thousand lines instead of after the whole file).
 * Failing is MMR_ERR_INVALID with a message naming the file, the counts and the limit.
 *
 * Not thread-safe: one reader belongs to one thread. */
#ifndef MMR_REPLAY_IO_H
#define MMR_REPLAY_IO_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"

#define MMR_REPLAY_IO_MAX_BAD_DEFAULT 0.01
#define MMR_REPLAY_IO_EARLY_LINES 1000 /* lines read before the early bad-fraction check */
#define MMR_REPLAY_IO_LOG_MAX 100      /* bad lines logged when no on_bad callback is set */

/* Receives one bad line; file and reason are valid only during the call. */
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
    long good;               /* records returned */
    long bad;                /* lines skipped as bad */
    long skipped;            /* blank and '#' lines */
    int sorted;              /* events: 1 while every ts_ms ≥ the previous good one */
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
    long line;              /* 1-based line number in the file */
} mmr_replay_event_t;

typedef struct mmr_replay_io_events mmr_replay_io_events_t;

/* Opens path for reading. opts (NULL = defaults) is copied. On MMR_OK *out is owned by the
 * caller (mmr_replay_io_events_free). Errors: MMR_ERR_INVALID (bad opts), MMR_ERR_IO. */
mmr_status_t mmr_replay_io_events_new(const char *path, const mmr_replay_io_opts_t *opts,
                                      mmr_replay_io_events_t **out, mmr_err_t *err);
/* Reads the next good event into *ev, in file order (equal timestamps keep file order; the
 * reader does not sort: stats.sorted tells the caller whether it must). Returns 1 with *ev
 * filled, 0 at end of file (the end-of-file bad-fraction check passed), or a negated status:
 * -MMR_ERR_INVALID (bad-fraction rule, message in err), -MMR_ERR_IO (read error), -MMR_ERR_NOMEM.
 * After 0 or an error, further calls return the same value. */
int mmr_replay_io_events_next(mmr_replay_io_events_t *r, mmr_replay_event_t *ev, mmr_err_t *err);
void mmr_replay_io_events_stats(const mmr_replay_io_events_t *r, mmr_replay_io_stats_t *out);
/* Closes the file. NULL is a no-op. */
void mmr_replay_io_events_free(mmr_replay_io_events_t *r);

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
