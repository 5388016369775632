/* fuzz_decode_event.c — libFuzzer harness for mmr_ingest_decode_event. Input byte 0 picks
 * the format (bit 0: 0 = protobuf mmrec.v1.Event, 1 = JSON), the rest is the payload.
 * Checks the decoder's contract beyond "no crash": an accepted event has non-empty,
 * NUL-free ids within MMR_ID_MAX, a known type, a finite value and ts_ms in range; a
 * refusal names a reason. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_decode.h"

#define NOW_MS 1700000000000LL
#define MAX_FUTURE_MS 60000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    mmr_ingest_format_t fmt = (data[0] & 1) ? MMR_INGEST_FORMAT_JSON : MMR_INGEST_FORMAT_PROTOBUF;
    /* Copy the payload into its own allocation so ASan sees reads past its end. */
    size_t n = size - 1;
    uint8_t *p = n ? malloc(n) : NULL;
    if (n) memcpy(p, data + 1, n);
    mmr_ingest_decoded_t out;
    memset(&out, 0xA5, sizeof out); /* the decoder must not rely on a zeroed struct */
    mmr_ingest_reason_t reason = 0;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_ingest_decode_event(fmt, p, n, NOW_MS, MAX_FUTURE_MS, &out, &reason, &err);
    if (st == MMR_OK) {
        const mmr_event_t *ev = &out.ev;
        size_t ul = strlen(ev->user_id), il = strlen(ev->item_id), el = strlen(ev->event_id);
        if (ul == 0 || il == 0 || ul > MMR_ID_MAX || il > MMR_ID_MAX || el > MMR_ID_MAX) abort();
        if (ev->type < 1 || ev->type > 8) abort();
        if (!isfinite(ev->value)) abort();
        if (ev->ts_ms < 0 || ev->ts_ms > NOW_MS + MAX_FUTURE_MS) abort();
    } else if (st != MMR_ERR_INVALID) {
        abort();
    }
    free(p);
    return 0;
}
