/* sweep.h — the latency-vs-offered-load sweep of mmrec-load: the list of offered rates,
 * one CSV row per rate (from an open-loop mmr_load_result_t), and the gnuplot PNG.
 * Running the load itself is load.h's job; this file only shapes and writes results. */
#ifndef MMR_SWEEP_H
#define MMR_SWEEP_H

#include <stdio.h>

#include "load.h"

typedef struct mmr_sweep_row {
    double offered, achieved;                   /* requests/s */
    double p50, p90, p99, p999, max;            /* ms, from the scheduled send */
    long ok, errors, dropped, missed_schedule;  /* errors = non-OK statuses + transport failures */
    long by_status[MMR_LOAD_NSTATUS];           /* [0] = OK */
    long transport_failures;
} mmr_sweep_row_t;

/* Parses "R1,R2,..." (each > 0, at most max) into rates[]; returns the count, or -1 for
 * a malformed list, a rate <= 0, or more than max entries. */
int mmr_sweep_parse_rates(const char *list, double *rates, int max);

/* steps (>= 2) rates evenly spaced from..to inclusive (0 < from < to) into rates[steps];
 * steps == 1 gives {from}. Returns steps, or -1 for bad bounds. */
int mmr_sweep_span_rates(double from, double to, int steps, double *rates);

/* One row from an open-loop result at the offered rate. res is borrowed. */
void mmr_sweep_row_from_result(mmr_sweep_row_t *row, double offered, const mmr_load_result_t *res);

/* Writes the header and rows[n] as CSV: offered,achieved,p50_ms,p90_ms,p99_ms,p99.9_ms,
 * max_ms,ok,errors,dropped,missed_schedule, one column per non-OK gRPC status
 * (CANCELLED..UNAUTHENTICATED, RESOURCE_EXHAUSTED among them), transport_failures.
 * Errors: MMR_ERR_IO when a write fails. */
mmr_status_t mmr_sweep_write_csv(FILE *out, const mmr_sweep_row_t *rows, int n, mmr_err_t *err);

/* Renders csv_path (as written above) into png_path with gnuplot: latency percentiles vs
 * offered load (log y) beside achieved vs offered, 800x500. Errors: MMR_ERR_UNSUPPORTED
 * when gnuplot is not installed (the CSV is still there), MMR_ERR_IO when gnuplot fails. */
mmr_status_t mmr_sweep_plot_png(const char *csv_path, const char *png_path, const char *title, mmr_err_t *err);

#endif
