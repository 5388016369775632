/* mmrec_load.c — `mmrec-load`: the gRPC load generator for mmrecd (the CLI; the
 * engine is load.c, the histogram hdr.c).
 *
 * Open loop by default: --rate R requests/s for --duration S seconds on a fixed
 * schedule, latency measured from each request's scheduled send time (no coordinated
 * omission); --mode closed --concurrency N keeps the old closed-loop callers. Reports
 * achieved rate, p50/p90/p99/p99.9/max, errors by gRPC status name and missed-schedule
 * counts, as text or (--json) one JSON object. Refuses non-loopback targets unless
 * --allow-remote is given. Exit status: 0 when at least one call succeeded, 1 when
 * none did or the run could not start, 2 for bad arguments. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: mmrec-load [options]\n"
            "target\n"
            "  --addr HOST:PORT       target mmrecd (default 127.0.0.1:50051; loopback only)\n"
            "  --allow-remote         permit a non-loopback target\n"
            "  --ca PEM               TLS, trusting this CA bundle (default plaintext)\n"
            "  --cert PEM --key PEM   client certificate for mutual TLS\n"
            "  --tls-name NAME        name to check in the server certificate\n"
            "  --token TOKEN          send \"authorization: Bearer TOKEN\"\n"
            "load\n"
            "  --mode open|closed     open loop on a fixed schedule (default) or closed loop\n"
            "  --rate R               open: offered requests/s (default 1000)\n"
            "  --duration S           open: schedule length; closed: time limit (default 10)\n"
            "  --requests N           cap on requests in all (default 0 = rate x duration / no cap)\n"
            "  --connections N        open: sender threads, one channel each (default 1)\n"
            "  --max-outstanding N    open: in-flight cap over all connections (default 1024)\n"
            "  --slack-ms MS          open: a send later than this is a missed schedule (default 10)\n"
            "  --concurrency N        closed: concurrent callers (default 8)\n"
            "  --deadline-ms N        per-call deadline (default 1000)\n"
            "workload\n"
            "  --candidates N         explicit candidates per Rank (default 100)\n"
            "  --retrieve-k K         Rank with retrieve_k = K instead of candidates\n"
            "  --top-k K              items returned per Rank (default 10)\n"
            "  --health-mix F         fraction of calls that are health checks (default 0)\n"
            "  --method rank|health   shorthand: health = --health-mix 1\n"
            "  --users N --items N    ids u0..u(N-1), i0..i(N-1) (default 1000, 500)\n"
            "  --dist uniform|zipf    how users and items are drawn (default uniform)\n"
            "  --zipf-s S             Zipf exponent (default 1.0)\n"
            "  --seed N               workload seed (default 1)\n"
            "output\n"
            "  --json                 one JSON object instead of text\n"
            "  --help                 this text\n");
}

static int parse_num(const char *name, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || d < lo || d > hi) {
        fprintf(stderr, "mmrec-load: %s wants a number in [%g, %g], got '%s'\n", name, lo, hi, v);
        return -1;
    }
    *out = d;
    return 0;
}

static int is_loopback(const char *a) {
    return !strncmp(a, "127.", 4) || !strncmp(a, "localhost:", 10) || !strncmp(a, "[::1]:", 6) ||
           !strncmp(a, "ipv4:127.", 9) || !strncmp(a, "ipv6:[::1]:", 11) || !strncmp(a, "unix:", 5);
}

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

int main(int argc, char **argv) {
    mmr_load_cfg_t cfg;
    mmr_load_cfg_default(&cfg);
    int allow_remote = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--allow-remote")) { allow_remote = 1; continue; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (i + 1 >= argc || strncmp(a, "--", 2)) {
            fprintf(stderr, "mmrec-load: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        double d = 0;
        int bad = 0;
#define NUM(flag, lo, hi, dst)                                          \
    else if (!strcmp(a, flag)) {                                        \
        bad = parse_num(flag, v, lo, hi, &d);                           \
        if (!bad) dst = d;                                              \
    }
        if (0) {}
        else if (!strcmp(a, "--addr")) cfg.target = v;
        else if (!strcmp(a, "--ca")) cfg.ca_pem_path = v;
        else if (!strcmp(a, "--cert")) cfg.cert_pem_path = v;
        else if (!strcmp(a, "--key")) cfg.key_pem_path = v;
        else if (!strcmp(a, "--tls-name")) cfg.ssl_target_name = v;
        else if (!strcmp(a, "--token")) cfg.bearer_token = v;
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "open")) cfg.mode = MMR_LOAD_OPEN;
            else if (!strcmp(v, "closed")) cfg.mode = MMR_LOAD_CLOSED;
            else bad = 1;
        } else if (!strcmp(a, "--dist")) {
            if (!strcmp(v, "uniform")) cfg.dist = MMR_LOAD_UNIFORM;
            else if (!strcmp(v, "zipf")) cfg.dist = MMR_LOAD_ZIPF;
            else bad = 1;
        } else if (!strcmp(a, "--method")) {
            if (!strcmp(v, "health")) cfg.health_mix = 1;
            else if (!strcmp(v, "rank")) cfg.health_mix = 0;
            else bad = 1;
        }
        NUM("--rate", 1e-3, 1e7, cfg.rate)
        NUM("--duration", 1e-3, 86400, cfg.duration_s)
        NUM("--requests", 0, 1e9, cfg.max_requests)
        NUM("--connections", 1, 256, cfg.connections)
        NUM("--max-outstanding", 1, 1e6, cfg.max_outstanding)
        NUM("--slack-ms", 0, 60000, cfg.slack_ms)
        NUM("--concurrency", 1, 1024, cfg.concurrency)
        NUM("--deadline-ms", 1, 600000, cfg.deadline_ms)
        NUM("--candidates", 1, 1e6, cfg.candidates)
        NUM("--retrieve-k", 1, 1e6, cfg.retrieve_k)
        NUM("--top-k", 0, 1e6, cfg.top_k)
        NUM("--health-mix", 0, 1, cfg.health_mix)
        NUM("--users", 1, 1e9, cfg.users)
        NUM("--items", 1, 1e9, cfg.items)
        NUM("--zipf-s", 1e-3, 100, cfg.zipf_s)
        NUM("--seed", 0, 1e18, cfg.seed)
        else bad = 1;
#undef NUM
        if (bad) {
            fprintf(stderr, "mmrec-load: bad argument '%s %s'\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!allow_remote && !is_loopback(cfg.target)) {
        fprintf(stderr, "mmrec-load: %s is not a loopback address (use --allow-remote)\n", cfg.target);
        return 2;
    }
    if ((cfg.cert_pem_path || cfg.key_pem_path || cfg.ssl_target_name) && !cfg.ca_pem_path) {
        fprintf(stderr, "mmrec-load: --cert/--key/--tls-name need --ca\n");
        return 2;
    }
    mmr_load_result_t r;
    mmr_err_t err = {0};
    if (mmr_load_run(&cfg, &r, &err) != MMR_OK) {
        fprintf(stderr, "mmrec-load: %s\n", err.msg);
        mmr_load_result_free(&r);
        return 1;
    }
    long ok = r.by_status[0], errors = r.transport_failures;
    for (int s = 1; s < MMR_LOAD_NSTATUS; s++) errors += r.by_status[s];
    double achieved = r.elapsed_s > 0 ? r.completed / r.elapsed_s : 0;
    int open = cfg.mode == MMR_LOAD_OPEN;
    if (json) {
        printf("{\"mode\":\"%s\",\"target\":", open ? "open" : "closed");
        json_str(cfg.target);
        printf(",\"offered_rate\":%.3f,\"duration_s\":%.3f,\"connections\":%d,\"max_outstanding\":%d,"
               "\"concurrency\":%d,\"scheduled\":%ld,\"sent\":%ld,\"completed\":%ld,\"ok\":%ld,\"errors\":%ld,"
               "\"missed_schedule\":%ld,\"dropped\":%ld,\"max_send_lag_ms\":%.3f,\"elapsed_s\":%.3f,"
               "\"achieved_rate\":%.3f,\"latency_from\":\"%s\",\"latency_ms\":{",
               open ? cfg.rate : 0.0, cfg.duration_s, open ? cfg.connections : 0, open ? cfg.max_outstanding : 0,
               open ? 0 : cfg.concurrency, r.scheduled, r.sent, r.completed, ok, errors, r.missed_schedule,
               r.dropped, r.max_send_lag_ns / 1e6, r.elapsed_s, achieved, open ? "scheduled_send" : "actual_send");
        json_hist("all", r.all, 0);
        json_hist("rank", r.rank, 0);
        json_hist("health", r.health, 1);
        printf("},\"status\":{");
        int first = 1;
        for (int s = 0; s < MMR_LOAD_NSTATUS; s++)
            if (r.by_status[s]) { printf("%s\"%s\":%ld", first ? "" : ",", mmr_load_status_name(s), r.by_status[s]); first = 0; }
        printf("},\"transport_failures\":%ld}\n", r.transport_failures);
    } else {
        if (open)
            printf("open loop  %s  offered %.1f req/s for %.1f s  connections %d  max outstanding %d\n",
                   cfg.target, cfg.rate, cfg.duration_s, cfg.connections, cfg.max_outstanding);
        else
            printf("closed loop  %s  concurrency %d  up to %.1f s\n", cfg.target, cfg.concurrency, cfg.duration_s);
        if (open)
            printf("scheduled %ld  sent %ld  completed %ld  missed schedule %ld (> %.1f ms late; max lag %.3f ms)  dropped %ld\n",
                   r.scheduled, r.sent, r.completed, r.missed_schedule, cfg.slack_ms, r.max_send_lag_ns / 1e6, r.dropped);
        printf("achieved %.1f req/s (%ld completed in %.2f s)\n", achieved, r.completed, r.elapsed_s);
        printf("latency ms, from the %s send:\n", open ? "scheduled" : "actual");
        text_hist("all", r.all);
        if (mmr_hdr_count(r.rank) && mmr_hdr_count(r.health)) {
            text_hist("rank", r.rank);
            text_hist("health", r.health);
        }
        printf("status:");
        for (int s = 0; s < MMR_LOAD_NSTATUS; s++)
            if (r.by_status[s]) printf("  %s %ld", mmr_load_status_name(s), r.by_status[s]);
        if (r.transport_failures) printf("  transport failures %ld", r.transport_failures);
        printf("\nok %ld  errors %ld\n", ok, errors);
        if (r.dropped)
            printf("warning: %ld requests were never sent (client at --max-outstanding until the hard stop);\n"
                   "         they are not in the histogram, so the percentiles are lower bounds\n", r.dropped);
    }
    mmr_load_result_free(&r);
    return ok > 0 ? 0 : 1;
}
