/* fuzz_tower_load.c — libFuzzer harness for the model file loader, mmr_tower_load: the
 * input is written to a per-process file under /dev/shm (else TMPDIR, /tmp) and loaded.
 * A loaded tower must report a config and a parameter count; it is then freed. The CRC32C
 * checks stop most mutations at the header: the seed corpus holds a valid tiny model and a
 * valid delta over the base file written here at start (fuzz_tower.h), so the fuzzer
 * starts past them (tests/fuzz/make_seeds.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_tower.h"

static char path[256], base[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!dir) dir = "/tmp";
    snprintf(path, sizeof path, "%s/mmrec-fuzz-tower-%ld.bin", dir, (long)getpid());
    snprintf(base, sizeof base, "%s/" FUZZ_BASE_NAME, dir);
    mmr_tower_t *t = NULL;
    mmr_err_t err = {0};
    if (fuzz_tiny_tower(&t, &err) != MMR_OK || mmr_tower_save(t, base, &err) != MMR_OK) {
        fprintf(stderr, "fuzz_tower_load: base %s: %s\n", base, err.msg);
        abort();
    }
    mmr_tower_free(t);
    return 0;
}

static void cleanup(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int registered;
    if (!registered) { atexit(cleanup); registered = 1; }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    mmr_tower_t *t = NULL;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_tower_load(path, &t, &err);
    if (st == MMR_OK) {
        if (!t || !mmr_tower_get_config(t) || mmr_tower_param_count(t) == 0) abort();
        float *w = mmr_tower_params(t);
        volatile float sink = w[0] + w[mmr_tower_param_count(t) - 1];
        (void)sink;
    } else {
        if (t) abort(); /* *out is NULL on failure */
        if (st != MMR_ERR_CORRUPT && st != MMR_ERR_IO && st != MMR_ERR_NOMEM) abort();
    }
    mmr_tower_free(t);
    return 0;
}
