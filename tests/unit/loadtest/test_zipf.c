/* test_zipf.c — mmrec-load's id draws (zipf.h): mmr_zipf_draw_id writes the id that
 * mmr_zipf_draw draws, as snprintf("%c%ld") would, for uniform and Zipf draws, from 0 up
 * to the largest id of a 10^12 catalog; Zipf draws favour low ids. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "zipf.h"

static void same_as_snprintf(long n, double s) {
    mmr_zipf_t z;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_zipf_init(&z, n, s, &err) == MMR_OK, "%s", err.msg);
    uint64_t a = 42, b = 42;
    long low = 0;
    for (int i = 0; i < 20000; i++) {
        char got[MMR_ZIPF_ID_LEN], want[MMR_ZIPF_ID_LEN];
        mmr_zipf_draw_id(&z, &a, 'i', got);
        long k = mmr_zipf_draw(&z, &b);
        snprintf(want, sizeof want, "i%ld", k);
        CHECK_MSG(!strcmp(got, want), "draw %d: '%s' vs '%s'", i, got, want);
        low += k < n / 10;
    }
    if (s > 0 && n >= 100) CHECK_MSG(low > 10000, "zipf: only %ld of 20000 draws in the lowest tenth", low);
    mmr_zipf_release(&z);
}

int main(void) {
    same_as_snprintf(1, 0);       /* always "i0" */
    same_as_snprintf(1000, 0);
    same_as_snprintf(1000, 1.0);
    same_as_snprintf(1000000000000L, 0);
    char out[MMR_ZIPF_ID_LEN];
    mmr_zipf_t one;
    mmr_err_t err = {0};
    CHECK(mmr_zipf_init(&one, 1, 0, &err) == MMR_OK);
    uint64_t rng = 7;
    mmr_zipf_draw_id(&one, &rng, 'u', out);
    CHECK(!strcmp(out, "u0"));
    mmr_zipf_release(&one);
    printf("ok  drawn ids written as snprintf would, uniform and Zipf\n");
    return 0;
}
