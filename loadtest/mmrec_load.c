/* mmrec_load.c — `mmrec-load`: the load generator for mmrecd (the CLI; options are
 * parsed in loadcli.c, the Rank engine is load.c, the Kafka producer evload.c, the
 * sweep's CSV and plot sweep.c, the histogram hdr.c).
 *
 * Three shapes of run: Rank load (open loop by default, --mode closed for callers);
 * Kafka events at --events-rate on their own thread, alone (--rate 0) or beside the
 * Rank load; a sweep of the open-loop Rank load over offered rates into a CSV and PNG.
 * Reports achieved rates, p50/p90/p99/p99.9/max (of all calls, and of the OK and the
 * refused (RESOURCE_EXHAUSTED) ones apart), with --interval-ms a series per interval,
 * errors by gRPC status name, events sent/acked/failed, as text or (--json) one JSON object. Refuses non-loopback targets
 * and brokers unless --allow-remote. Exit status: 0 when every load that ran had
 * successes (calls OK, events acked), 1 when one had none or could not start, 2 for bad
 * arguments. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hdr.h"
#include "loadcli.h"
#include "sweep.h"

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

static void json_hist(const char *name, const mmr_hdr_t *h, int last) {
    printf("\"%s\":{\"count\":%lld,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p99.9\":%.3f,\"max\":%.3f}%s",
           name, (long long)mmr_hdr_count(h), mmr_hdr_mean(h) / 1e6, mmr_hdr_percentile(h, 50) / 1e6,
           mmr_hdr_percentile(h, 90) / 1e6, mmr_hdr_percentile(h, 99) / 1e6,
           mmr_hdr_percentile(h, 99.9) / 1e6, mmr_hdr_max(h) / 1e6, last ? "" : ",");
}

static void text_hist(const char *name, const mmr_hdr_t *h) {
    if (!mmr_hdr_count(h)) return;
    printf("  %-7s n %-8lld p50 %8.3f  p90 %8.3f  p99 %8.3f  p99.9 %8.3f  max %8.3f  mean %8.3f\n", name,
           (long long)mmr_hdr_count(h), mmr_hdr_percentile(h, 50) / 1e6, mmr_hdr_percentile(h, 90) / 1e6,
           mmr_hdr_percentile(h, 99) / 1e6, mmr_hdr_percentile(h, 99.9) / 1e6, mmr_hdr_max(h) / 1e6,
           mmr_hdr_mean(h) / 1e6);
}

static long count_errors(const mmr_load_result_t *r) {
    long errors = r->transport_failures;
    for (int s = 1; s < MMR_LOAD_NSTATUS; s++) errors += r->by_status[s];
    return errors;
}

/* The Rank result's JSON members (no braces). */
static void json_rank(const mmr_load_cfg_t *cfg, const mmr_load_result_t *r) {
    int open = cfg->mode == MMR_LOAD_OPEN;
    printf("\"mode\":\"%s\",\"target\":", open ? "open" : "closed");
    json_str(cfg->target);
    printf(",\"offered_rate\":%.3f,\"duration_s\":%.3f,\"connections\":%d,\"max_outstanding\":%d,"
           "\"concurrency\":%d,\"scheduled\":%ld,\"sent\":%ld,\"completed\":%ld,\"ok\":%ld,\"errors\":%ld,"
           "\"missed_schedule\":%ld,\"dropped\":%ld,\"max_send_lag_ms\":%.3f,\"elapsed_s\":%.3f,"
           "\"achieved_rate\":%.3f,\"latency_from\":\"%s\",\"latency_ms\":{",
           open ? cfg->rate : 0.0, cfg->duration_s, open ? cfg->connections : 0, open ? cfg->max_outstanding : 0,
           open ? 0 : cfg->concurrency, r->scheduled, r->sent, r->completed, r->by_status[0], count_errors(r),
           r->missed_schedule, r->dropped, r->max_send_lag_ns / 1e6, r->elapsed_s,
           r->elapsed_s > 0 ? r->completed / r->elapsed_s : 0, open ? "scheduled_send" : "actual_send");
    json_hist("all", r->all, 0);
    json_hist("rank", r->rank, 0);
    json_hist("health", r->health, 0);
    json_hist("ok", r->ok, 0);
    json_hist("resource_exhausted", r->shed, 0);
    json_hist("ok_from_actual_send", r->ok_sent, 1);
    printf("},\"status\":{");
    int first = 1;
    for (int s = 0; s < MMR_LOAD_NSTATUS; s++)
        if (r->by_status[s]) { printf("%s\"%s\":%ld", first ? "" : ",", mmr_load_status_name(s), r->by_status[s]); first = 0; }
    printf("},\"transport_failures\":%ld", r->transport_failures);
    if (!r->n_intervals) return;
    printf(",\"interval_ms\":%d,\"intervals\":[", cfg->interval_ms);
    for (int i = 0; i < r->n_intervals; i++) {
        const mmr_load_interval_t *v = &r->intervals[i];
        printf("%s{\"t_s\":%.3f,\"ok\":%lld,\"resource_exhausted\":%ld,\"other\":%ld,\"p50\":%.3f,\"p99\":%.3f,"
               "\"max\":%.3f}", i ? "," : "", i * cfg->interval_ms / 1e3, (long long)mmr_hdr_count(v->ok), v->shed,
               v->other, mmr_hdr_percentile(v->ok, 50) / 1e6, mmr_hdr_percentile(v->ok, 99) / 1e6,
               mmr_hdr_max(v->ok) / 1e6);
    }
    printf("]");
}

static void text_rank(const mmr_load_cfg_t *cfg, const mmr_load_result_t *r) {
    int open = cfg->mode == MMR_LOAD_OPEN;
    if (open)
        printf("open loop  %s  offered %.1f req/s for %.1f s  connections %d  max outstanding %d\n",
               cfg->target, cfg->rate, cfg->duration_s, cfg->connections, cfg->max_outstanding);
    else
        printf("closed loop  %s  concurrency %d  up to %.1f s\n", cfg->target, cfg->concurrency, cfg->duration_s);
    if (open)
        printf("scheduled %ld  sent %ld  completed %ld  missed schedule %ld (> %.1f ms late; max lag %.3f ms)  dropped %ld\n",
               r->scheduled, r->sent, r->completed, r->missed_schedule, cfg->slack_ms, r->max_send_lag_ns / 1e6, r->dropped);
    printf("achieved %.1f req/s (%ld completed in %.2f s)\n", r->elapsed_s > 0 ? r->completed / r->elapsed_s : 0,
           r->completed, r->elapsed_s);
    printf("latency ms, from the %s send:\n", open ? "scheduled" : "actual");
    text_hist("all", r->all);
    if (mmr_hdr_count(r->rank) && mmr_hdr_count(r->health)) {
        text_hist("rank", r->rank);
        text_hist("health", r->health);
    }
    if (mmr_hdr_count(r->ok) != mmr_hdr_count(r->all)) { /* some failed: split by outcome */
        text_hist("ok", r->ok);
        text_hist("refused", r->shed); /* RESOURCE_EXHAUSTED */
    }
    if (open && mmr_hdr_count(r->ok)) {
        printf("OK calls' latency from the actual send (without the client's send lag):\n");
        text_hist("ok", r->ok_sent);
    }
    if (r->n_intervals) printf("per %d ms (from the %s send):    ok  refused  other   ok p50   ok p99   ok max\n",
                               cfg->interval_ms, open ? "scheduled" : "actual");
    for (int i = 0; i < r->n_intervals; i++) {
        const mmr_load_interval_t *v = &r->intervals[i];
        printf("  %8.1f s %16lld %8ld %6ld %8.3f %8.3f %8.3f\n", i * cfg->interval_ms / 1e3,
               (long long)mmr_hdr_count(v->ok), v->shed, v->other, mmr_hdr_percentile(v->ok, 50) / 1e6,
               mmr_hdr_percentile(v->ok, 99) / 1e6, mmr_hdr_max(v->ok) / 1e6);
    }
    printf("status:");
    for (int s = 0; s < MMR_LOAD_NSTATUS; s++)
        if (r->by_status[s]) printf("  %s %ld", mmr_load_status_name(s), r->by_status[s]);
    if (r->transport_failures) printf("  transport failures %ld", r->transport_failures);
    printf("\nok %ld  errors %ld\n", r->by_status[0], count_errors(r));
    if (r->dropped)
        printf("warning: %ld requests were never sent (client at --max-outstanding until the hard stop);\n"
               "         they are not in the histogram, so the percentiles are lower bounds\n", r->dropped);
}

typedef struct ev_job {
    const mmr_evload_cfg_t *cfg;
    mmr_evload_result_t res;
    mmr_status_t st;
    mmr_err_t err;
} ev_job_t;

static void *ev_main(void *arg) {
    ev_job_t *j = arg;
    j->st = mmr_evload_run(j->cfg, &j->res, &j->err);
    return NULL;
}

static void report_events(const mmr_evload_cfg_t *cfg, const ev_job_t *j, int json) {
    const mmr_evload_result_t *e = &j->res;
    if (json) {
        printf("\"events\":{\"brokers\":");
        json_str(cfg->brokers);
        printf(",\"topic\":");
        json_str(cfg->topic);
        printf(",\"offered_rate\":%.3f,\"scheduled\":%ld,\"sent\":%ld,\"acked\":%ld,\"failed\":%ld,\"unacked\":%ld,"
               "\"max_send_lag_ms\":%.3f,\"elapsed_s\":%.3f,\"achieved_rate\":%.3f,\"error\":",
               cfg->rate, e->scheduled, e->sent, e->acked, e->failed, e->unacked, e->max_lag_ns / 1e6, e->elapsed_s,
               e->achieved_rate);
        json_str(j->st != MMR_OK ? j->err.msg : e->last_error);
        printf("}");
        return;
    }
    printf("events  %s topic %s  offered %.1f events/s for %.1f s\n", cfg->brokers, cfg->topic, cfg->rate,
           cfg->duration_s);
    if (j->st != MMR_OK) { printf("events could not start: %s\n", j->err.msg); return; }
    printf("scheduled %ld  sent %ld  acked %ld  failed %ld  unacked %ld  max send lag %.3f ms\n", e->scheduled,
           e->sent, e->acked, e->failed, e->unacked, e->max_lag_ns / 1e6);
    printf("achieved %.1f events/s acked (%.2f s)%s%s\n", e->achieved_rate, e->elapsed_s,
           e->last_error[0] ? "  last error: " : "", e->last_error);
}

/* Rank load and/or events, side by side. */
static int run_load(mmr_loadcli_t *o) {
    int rank = o->load.mode == MMR_LOAD_CLOSED || o->load.rate > 0, events = o->events.brokers != NULL;
    ev_job_t job = {.cfg = &o->events};
    pthread_t th;
    if (events && pthread_create(&th, NULL, ev_main, &job) != 0) {
        fprintf(stderr, "mmrec-load: cannot start the event thread\n");
        return 1;
    }
    mmr_load_result_t r = {0};
    mmr_err_t err = {0};
    mmr_status_t st = rank ? mmr_load_run(&o->load, &r, &err) : MMR_OK;
    if (events) pthread_join(th, NULL);
    int rc = 0;
    if (st != MMR_OK) { fprintf(stderr, "mmrec-load: %s\n", err.msg); rc = 1; }
    if (events && job.st != MMR_OK) { fprintf(stderr, "mmrec-load: events: %s\n", job.err.msg); rc = 1; }
    if (rank && st == MMR_OK && r.by_status[0] == 0) rc = 1;
    if (events && job.res.acked == 0) rc = 1;
    if (o->json) {
        printf("{");
        if (rank && st == MMR_OK) json_rank(&o->load, &r);
        else printf("\"mode\":\"events\"");
        if (events) { printf(","); report_events(&o->events, &job, 1); }
        printf("}\n");
    } else {
        if (rank && st == MMR_OK) text_rank(&o->load, &r);
        if (events) report_events(&o->events, &job, 0);
    }
    mmr_load_result_free(&r);
    return rc;
}

static int run_sweep(mmr_loadcli_t *o) {
    mmr_sweep_row_t rows[MMR_LOADCLI_MAX_SWEEP];
    int n = 0, rc = 0;
    double shed_from = 0;
    if (!o->json)
        printf("sweep  %s  %d rates, %.1f s each, connections %d\n%10s %10s %9s %9s %9s %9s %9s %8s %8s %8s\n",
               o->load.target, o->n_sweep, o->load.duration_s, o->load.connections, "offered", "achieved", "p50",
               "p90", "p99", "p99.9", "max", "ok", "errors", "shed");
    for (int i = 0; i < o->n_sweep; i++) {
        if (i && o->sweep_pause_ms)
            nanosleep(&(struct timespec){o->sweep_pause_ms / 1000, (o->sweep_pause_ms % 1000) * 1000000L}, NULL);
        o->load.rate = o->sweep[i];
        mmr_load_result_t r;
        mmr_err_t err = {0};
        if (mmr_load_run(&o->load, &r, &err) != MMR_OK) {
            fprintf(stderr, "mmrec-load: sweep at %.1f req/s: %s\n", o->sweep[i], err.msg);
            mmr_load_result_free(&r);
            return 1;
        }
        mmr_sweep_row_from_result(&rows[n], o->sweep[i], &r);
        mmr_load_result_free(&r);
        const mmr_sweep_row_t *w = &rows[n++];
        long shed = w->by_status[8]; /* RESOURCE_EXHAUSTED */
        if (shed && !shed_from) shed_from = w->offered;
        if (!o->json)
            printf("%10.1f %10.1f %9.3f %9.3f %9.3f %9.3f %9.3f %8ld %8ld %8ld\n", w->offered, w->achieved, w->p50,
                   w->p90, w->p99, w->p999, w->max, w->ok, w->errors, shed);
        fflush(stdout);
    }
    mmr_err_t err = {0};
    FILE *f = fopen(o->csv_path, "w");
    if (!f || mmr_sweep_write_csv(f, rows, n, &err) != MMR_OK) {
        fprintf(stderr, "mmrec-load: cannot write %s%s%s\n", o->csv_path, err.msg[0] ? ": " : "", err.msg);
        rc = 1;
    }
    if (f) fclose(f);
    int png_ok = 0;
    if (!rc && o->png_path) {
        char title[160];
        snprintf(title, sizeof title, "mmrec-load sweep, Rank %ld candidates", o->load.candidates);
        if (mmr_sweep_plot_png(o->csv_path, o->png_path, title, &err) == MMR_OK) png_ok = 1;
        else fprintf(stderr, "mmrec-load: no plot: %s (the CSV is written)\n", err.msg);
    }
    if (o->json) {
        printf("{\"mode\":\"sweep\",\"target\":");
        json_str(o->load.target);
        printf(",\"duration_s\":%.3f,\"csv\":", o->load.duration_s);
        json_str(o->csv_path);
        printf(",\"png\":");
        if (png_ok) json_str(o->png_path); else printf("null");
        if (shed_from) printf(",\"shedding_from\":%.1f,\"rows\":[", shed_from);
        else printf(",\"shedding_from\":null,\"rows\":[");
        for (int i = 0; i < n; i++)
            printf("%s{\"offered\":%.1f,\"achieved\":%.1f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p99.9\":%.3f,"
                   "\"max\":%.3f,\"ok\":%ld,\"errors\":%ld,\"resource_exhausted\":%ld,\"dropped\":%ld}",
                   i ? "," : "", rows[i].offered, rows[i].achieved, rows[i].p50, rows[i].p90, rows[i].p99,
                   rows[i].p999, rows[i].max, rows[i].ok, rows[i].errors, rows[i].by_status[8], rows[i].dropped);
        printf("]}\n");
    } else {
        printf("csv %s%s%s\n", o->csv_path, png_ok ? "  png " : "", png_ok ? o->png_path : "");
        if (shed_from) printf("shedding (RESOURCE_EXHAUSTED) starts at %.1f req/s offered\n", shed_from);
        else printf("no shedding (RESOURCE_EXHAUSTED) at any offered rate\n");
    }
    return rc;
}

int main(int argc, char **argv) {
    mmr_loadcli_t o;
    mmr_err_t err = {0};
    if (mmr_loadcli_parse(&o, argc, argv, &err) != MMR_OK) {
        fprintf(stderr, "mmrec-load: %s (see mmrec-load --help)\n", err.msg);
        return 2;
    }
    if (o.help) { mmr_loadcli_usage(stdout); return 0; }
    return o.n_sweep ? run_sweep(&o) : run_load(&o);
}
