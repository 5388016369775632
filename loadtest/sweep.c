/* sweep.c — rate lists, CSV rows and the gnuplot PNG of mmrec-load --sweep (see sweep.h). */
#include "sweep.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hdr.h"

int mmr_sweep_parse_rates(const char *list, double *rates, int max) {
    int n = 0;
    const char *p = list;
    for (;;) {
        char *end;
        errno = 0;
        double r = strtod(p, &end);
        if (errno || end == p || !(r > 0) || r > 1e7 || n >= max) return -1;
        rates[n++] = r;
        if (*end == '\0') return n;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

int mmr_sweep_span_rates(double from, double to, int steps, double *rates) {
    if (!(from > 0) || steps < 1 || (steps > 1 && !(to > from)) || to > 1e7) return -1;
    for (int i = 0; i < steps; i++) rates[i] = steps == 1 ? from : from + (to - from) * i / (steps - 1);
    return steps;
}

void mmr_sweep_row_from_result(mmr_sweep_row_t *row, double offered, const mmr_load_result_t *res) {
    memset(row, 0, sizeof *row);
    row->offered = offered;
    row->achieved = res->elapsed_s > 0 ? res->completed / res->elapsed_s : 0;
    row->p50 = mmr_hdr_percentile(res->all, 50) / 1e6;
    row->p90 = mmr_hdr_percentile(res->all, 90) / 1e6;
    row->p99 = mmr_hdr_percentile(res->all, 99) / 1e6;
    row->p999 = mmr_hdr_percentile(res->all, 99.9) / 1e6;
    row->max = mmr_hdr_max(res->all) / 1e6;
    row->ok = res->by_status[0];
    row->errors = res->transport_failures;
    for (int s = 1; s < MMR_LOAD_NSTATUS; s++) row->errors += res->by_status[s];
    memcpy(row->by_status, res->by_status, sizeof row->by_status);
    row->transport_failures = res->transport_failures;
    row->dropped = res->dropped;
    row->missed_schedule = res->missed_schedule;
}

mmr_status_t mmr_sweep_write_csv(FILE *out, const mmr_sweep_row_t *rows, int n, mmr_err_t *err) {
    fputs("offered,achieved,p50_ms,p90_ms,p99_ms,p99.9_ms,max_ms,ok,errors,dropped,missed_schedule", out);
    for (int s = 1; s < MMR_LOAD_NSTATUS; s++) fprintf(out, ",%s", mmr_load_status_name(s));
    fputs(",transport_failures\n", out);
    for (int i = 0; i < n; i++) {
        const mmr_sweep_row_t *r = &rows[i];
        fprintf(out, "%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,%.3f,%ld,%ld,%ld,%ld", r->offered, r->achieved, r->p50,
                r->p90, r->p99, r->p999, r->max, r->ok, r->errors, r->dropped, r->missed_schedule);
        for (int s = 1; s < MMR_LOAD_NSTATUS; s++) fprintf(out, ",%ld", r->by_status[s]);
        fprintf(out, ",%ld\n", r->transport_failures);
    }
    if (fflush(out) != 0 || ferror(out)) return mmr_err_set(err, MMR_ERR_IO, "sweep csv: %s", strerror(errno));
    return MMR_OK;
}

mmr_status_t mmr_sweep_plot_png(const char *csv_path, const char *png_path, const char *title, mmr_err_t *err) {
    if (strchr(csv_path, '\'') || strchr(png_path, '\'') || strchr(title, '\''))
        return mmr_err_set(err, MMR_ERR_INVALID, "plot: quote in a path or title");
    if (system("command -v gnuplot >/dev/null 2>&1") != 0)
        return mmr_err_set(err, MMR_ERR_UNSUPPORTED, "gnuplot is not installed (apt install gnuplot-nox)");
    FILE *gp = popen("gnuplot", "w");
    if (!gp) return mmr_err_set(err, MMR_ERR_IO, "popen gnuplot: %s", strerror(errno));
    fprintf(gp,
            "set terminal pngcairo size 800,500 font ',9'\n"
            "set output '%s'\n"
            "set datafile separator ','\n"
            "set multiplot layout 1,2 title '%s'\n"
            "set grid\nset key top left\nset xlabel 'offered (requests/s)'\n"
            "set logscale y\nset ylabel 'latency from scheduled send (ms)'\n"
            "plot for [c=3:7] '%s' skip 1 using 1:c with linespoints title word('p50 p90 p99 p99.9 max', c-2)\n"
            "unset logscale y\nset ylabel 'achieved (requests/s)'\n"
            "plot '%s' skip 1 using 1:2 with linespoints title 'achieved', '' skip 1 using 1:1 with lines dt 2 title 'offered'\n"
            "unset multiplot\n",
            png_path, title, csv_path, csv_path);
    int rc = pclose(gp);
    if (rc != 0) return mmr_err_set(err, MMR_ERR_IO, "gnuplot failed (status %d) writing %s", rc, png_path);
    return MMR_OK;
}
