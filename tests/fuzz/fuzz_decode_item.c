/* fuzz_decode_item.c — libFuzzer harness for mmr_ingest_decode_item. Input byte 0: bit 0
 * picks the format (0 = protobuf mmrec.v1.Item, 1 = JSON), bit 1 the width check
 * (0 = any width, emb_dims NULL; 1 = emb_dims {4, 0, 2}); the rest is the payload.
 * The payload is decoded twice into the same struct (the buffers are reused, as in the
 * consumer), then released. An accepted item is checked against the contract. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_decode.h"

static void check_item(const mmr_ingest_decoded_item_t *out, const uint32_t *dims) {
    const mmr_item_t *it = &out->item;
    size_t il = strlen(it->item_id);
    if (il == 0 || il > MMR_ID_MAX || it->created_ms < 0) abort();
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
        uint32_t d = it->emb_dim[m];
        if (it->deleted && d) abort();
        if (d > MMR_EMB_DIM_MAX) abort();
        if (d && dims && dims[m] && d != dims[m]) abort();
        for (uint32_t k = 0; k < d; k++)
            if (!isfinite(it->emb[m][k])) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    mmr_ingest_format_t fmt = (data[0] & 1) ? MMR_INGEST_FORMAT_JSON : MMR_INGEST_FORMAT_PROTOBUF;
    static const uint32_t fixed[MMR_MODALITY_COUNT] = {4, 0, 2};
    const uint32_t *dims = (data[0] & 2) ? fixed : NULL;
    size_t n = size - 1;
    uint8_t *p = n ? malloc(n) : NULL;
    if (n) memcpy(p, data + 1, n);
    mmr_ingest_decoded_item_t out = {0}; /* contract: zeroed before the first decode */
    for (int pass = 0; pass < 2; pass++) {
        mmr_ingest_reason_t reason = 0;
        mmr_err_t err = {0};
        mmr_status_t st = mmr_ingest_decode_item(fmt, p, n, dims, &out, &reason, &err);
        if (st == MMR_OK) check_item(&out, dims);
        else if (st != MMR_ERR_INVALID && st != MMR_ERR_NOMEM) abort();
    }
    mmr_ingest_decoded_item_release(&out);
    free(p);
    return 0;
}
