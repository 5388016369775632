/* fuzz_config.c — libFuzzer harness for the config parser. Input byte 0 picks the entry:
 *   even: the rest is a config file (`key = value` lines), written to a per-process file
 *         under /dev/shm (else /tmp) and read with mmr_config_load_file;
 *   odd:  the rest is "key\0value" (no NUL: value is empty) for mmr_config_set.
 * Each input starts from fresh defaults and ends with mmr_config_free (leaks are reported). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmr_config.h"

static char path[256];

static void cleanup(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/mmrec-fuzz-config-%ld.conf", dir, (long)getpid());
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    mmr_config_t cfg;
    mmr_config_init(&cfg);
    mmr_err_t err = {0};
    mmr_status_t st;
    if (!(data[0] & 1)) {
        FILE *f = fopen(path, "wb");
        if (!f) abort();
        if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) abort();
        if (fclose(f) != 0) abort();
        st = mmr_config_load_file(&cfg, path, &err);
    } else {
        /* key and value as separate NUL-terminated heap strings (exact size for ASan) */
        const uint8_t *p = data + 1, *end = data + size;
        const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
        size_t kl = nul ? (size_t)(nul - p) : (size_t)(end - p);
        size_t vl = nul ? (size_t)(end - nul - 1) : 0;
        char *key = malloc(kl + 1), *val = malloc(vl + 1);
        memcpy(key, p, kl);
        key[kl] = '\0';
        if (vl) memcpy(val, nul + 1, vl);
        val[vl] = '\0';
        st = mmr_config_set(&cfg, key, val, &err);
        free(key);
        free(val);
    }
    if (st != MMR_OK && !err.msg[0]) abort(); /* errors name the key / file:line */
    if (cfg.n_kafka_props > MMR_CONFIG_MAX_PASSTHROUGH ||
        cfg.n_rocksdb_props > MMR_CONFIG_MAX_PASSTHROUGH) abort();
    mmr_config_free(&cfg);
    return 0;
}
