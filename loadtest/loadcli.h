/* loadcli.h — mmrec-load's command line: options into the Rank engine config (load.h),
 * the Kafka producer config (evload.h) and the sweep plan (sweep.h), with every check
 * that makes a bad command line exit 2 (loopback-only targets and brokers unless
 * --allow-remote, option combinations). A library so the argument errors are unit-tested;
 * running and printing stay in mmrec_load.c. */
#ifndef MMR_LOADCLI_H
#define MMR_LOADCLI_H

#include <stdio.h>

#include "evload.h"
#include "load.h"

#define MMR_LOADCLI_MAX_SWEEP 64

typedef struct mmr_loadcli {
    mmr_load_cfg_t load;      /* Rank load; load.rate == 0 (open loop): no Rank load */
    mmr_evload_cfg_t events;  /* events.brokers == NULL: no Kafka load */
    double sweep[MMR_LOADCLI_MAX_SWEEP]; /* offered rates, req/s */
    int n_sweep;              /* 0: not a sweep */
    int sweep_pause_ms;       /* idle time between sweep steps (server drains) */
    const char *csv_path, *png_path;
    int json, allow_remote, help;
} mmr_loadcli_t;

/* Parses argv[1..argc-1] into *o (defaults first). Strings in *o borrow from argv.
 * Errors: MMR_ERR_INVALID with a message naming the offending option. */
mmr_status_t mmr_loadcli_parse(mmr_loadcli_t *o, int argc, char **argv, mmr_err_t *err);

/* Whether every address in a comma-separated list ("127.0.0.1:50051", "localhost:9092",
 * "PLAINTEXT://[::1]:9092", "unix:/path", ...) is on the loopback interface. */
int mmr_loadcli_is_loopback(const char *list);

void mmr_loadcli_usage(FILE *out);

#endif
