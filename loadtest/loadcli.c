/* loadcli.c — mmrec-load's options and their checks (see loadcli.h). */
#include "loadcli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sweep.h"

void mmr_loadcli_usage(FILE *out) {
    fprintf(out,
            "usage: mmrec-load [options]\n"
            "target\n"
            "  --addr HOST:PORT       target mmrecd (default 127.0.0.1:50051; loopback only)\n"
            "  --allow-remote         permit non-loopback targets and Kafka brokers\n"
            "  --ca PEM               TLS, trusting this CA bundle (default plaintext)\n"
            "  --cert PEM --key PEM   client certificate for mutual TLS\n"
            "  --tls-name NAME        name to check in the server certificate\n"
            "  --token TOKEN          send \"authorization: Bearer TOKEN\"\n"
            "load\n"
            "  --mode open|closed     open loop on a fixed schedule (default) or closed loop\n"
            "  --rate R               open: offered requests/s (default 1000; 0 = no Rank load, with --kafka)\n"
            "  --duration S           open: schedule length; closed: time limit; also the events' (default 10)\n"
            "  --requests N           cap on requests in all (default 0 = rate x duration / no cap)\n"
            "  --connections N        open: sender threads, one channel each (default 1)\n"
            "  --max-outstanding N    open: in-flight cap over all connections (default 1024)\n"
            "  --slack-ms MS          open: a send later than this is a missed schedule (default 10)\n"
            "  --concurrency N        closed: concurrent callers (default 8)\n"
            "  --deadline-ms N        per-call deadline (default 1000)\n"
            "  --interval-ms MS       also report each MS of the run: OK p50/p99/max, refused, other\n"
            "workload\n"
            "  --candidates N         explicit candidates per Rank (default 100)\n"
            "  --retrieve-k K         Rank with retrieve_k = K instead of candidates\n"
            "  --top-k K              items returned per Rank (default 10)\n"
            "  --health-mix F         fraction of calls that are health checks (default 0)\n"
            "  --method rank|health   shorthand: health = --health-mix 1\n"
            "  --users N --items N    ids u0..u(N-1), i0..i(N-1) (default 1000, 500)\n"
            "  --dist uniform|zipf    how users and items are drawn, for Rank and events (default uniform)\n"
            "  --zipf-s S             Zipf exponent (default 1.0)\n"
            "  --seed N               workload seed (default 1)\n"
            "Kafka events (alone with --rate 0, or beside the Rank load)\n"
            "  --kafka BROKERS        push synthetic mmrec.v1.Event messages to these brokers\n"
            "  --events-rate R        events/s on a fixed schedule for --duration (default 1000)\n"
            "  --events-topic T       topic (default mmrec.events)\n"
            "sweep (open-loop Rank at each offered rate, --duration each)\n"
            "  --sweep R1,R2,...      the offered rates\n"
            "  --sweep-from A --sweep-to B --sweep-steps N   or N rates evenly spaced from A to B\n"
            "  --sweep-pause-ms MS    idle time between rates (default 1000)\n"
            "  --csv FILE             write one row per rate (required with a sweep)\n"
            "  --png FILE             plot latency and achieved vs offered with gnuplot\n"
            "output\n"
            "  --json                 one JSON object instead of text\n"
            "  --help                 this text\n");
}

static int parse_num(const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= lo && d <= hi)) return -1;
    *out = d;
    return 0;
}

static int is_loopback_one(const char *a) {
    const char *scheme = strstr(a, "://"); /* librdkafka's PLAINTEXT://host:port */
    if (scheme) a = scheme + 3;
    return !strncmp(a, "127.", 4) || !strncmp(a, "localhost:", 10) || !strcmp(a, "localhost") ||
           !strncmp(a, "[::1]", 5) || !strncmp(a, "ipv4:127.", 9) || !strncmp(a, "ipv6:[::1]", 10) ||
           !strncmp(a, "unix:", 5);
}

int mmr_loadcli_is_loopback(const char *list) {
    char one[512];
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof one) return 0;
        memcpy(one, p, n);
        one[n] = '\0';
        if (!is_loopback_one(one)) return 0;
        if (!p[n]) return 1;
        p += n + 1;
    }
}

mmr_status_t mmr_loadcli_parse(mmr_loadcli_t *o, int argc, char **argv, mmr_err_t *err) {
    memset(o, 0, sizeof *o);
    mmr_load_cfg_default(&o->load);
    mmr_evload_cfg_default(&o->events);
    o->sweep_pause_ms = 1000;
    const char *brokers = NULL, *sweep_list = NULL;
    double from = 0, to = 0, steps = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) { o->help = 1; return MMR_OK; }
        if (!strcmp(a, "--allow-remote")) { o->allow_remote = 1; continue; }
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (i + 1 >= argc || strncmp(a, "--", 2))
            return mmr_err_set(err, MMR_ERR_INVALID, "bad argument '%s'", a);
        const char *v = argv[++i];
        double d = 0;
        int bad = 0;
#define NUM(flag, lo, hi, dst)                                  \
    else if (!strcmp(a, flag)) {                                \
        bad = parse_num(v, lo, hi, &d);                         \
        if (!bad) dst = d;                                      \
    }
        if (0) {}
        else if (!strcmp(a, "--addr")) o->load.target = v;
        else if (!strcmp(a, "--ca")) o->load.ca_pem_path = v;
        else if (!strcmp(a, "--cert")) o->load.cert_pem_path = v;
        else if (!strcmp(a, "--key")) o->load.key_pem_path = v;
        else if (!strcmp(a, "--tls-name")) o->load.ssl_target_name = v;
        else if (!strcmp(a, "--token")) o->load.bearer_token = v;
        else if (!strcmp(a, "--kafka")) brokers = v;
        else if (!strcmp(a, "--events-topic")) o->events.topic = v;
        else if (!strcmp(a, "--sweep")) sweep_list = v;
        else if (!strcmp(a, "--csv")) o->csv_path = v;
        else if (!strcmp(a, "--png")) o->png_path = v;
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "open")) o->load.mode = MMR_LOAD_OPEN;
            else if (!strcmp(v, "closed")) o->load.mode = MMR_LOAD_CLOSED;
            else bad = 1;
        } else if (!strcmp(a, "--dist")) {
            if (!strcmp(v, "uniform")) o->load.dist = MMR_LOAD_UNIFORM;
            else if (!strcmp(v, "zipf")) o->load.dist = MMR_LOAD_ZIPF;
            else bad = 1;
        } else if (!strcmp(a, "--method")) {
            if (!strcmp(v, "health")) o->load.health_mix = 1;
            else if (!strcmp(v, "rank")) o->load.health_mix = 0;
            else bad = 1;
        }
        NUM("--rate", 0, 1e7, o->load.rate)
        NUM("--duration", 1e-3, 86400, o->load.duration_s)
        NUM("--requests", 0, 1e9, o->load.max_requests)
        NUM("--connections", 1, 256, o->load.connections)
        NUM("--max-outstanding", 1, 1e6, o->load.max_outstanding)
        NUM("--slack-ms", 0, 60000, o->load.slack_ms)
        NUM("--concurrency", 1, 1024, o->load.concurrency)
        NUM("--deadline-ms", 1, 600000, o->load.deadline_ms)
        NUM("--interval-ms", 1, 3600000, o->load.interval_ms)
        NUM("--candidates", 1, 1e6, o->load.candidates)
        NUM("--retrieve-k", 1, 1e6, o->load.retrieve_k)
        NUM("--top-k", 0, 1e6, o->load.top_k)
        NUM("--health-mix", 0, 1, o->load.health_mix)
        NUM("--users", 1, 1e9, o->load.users)
        NUM("--items", 1, 1e9, o->load.items)
        NUM("--zipf-s", 1e-3, 100, o->load.zipf_s)
        NUM("--seed", 0, 1e18, o->load.seed)
        NUM("--events-rate", 1e-3, 1e7, o->events.rate)
        NUM("--sweep-from", 1e-3, 1e7, from)
        NUM("--sweep-to", 1e-3, 1e7, to)
        NUM("--sweep-steps", 1, MMR_LOADCLI_MAX_SWEEP, steps)
        NUM("--sweep-pause-ms", 0, 600000, o->sweep_pause_ms)
        else return mmr_err_set(err, MMR_ERR_INVALID, "unknown option '%s'", a);
#undef NUM
        if (bad) return mmr_err_set(err, MMR_ERR_INVALID, "bad value for %s: '%s'", a, v);
    }
    /* the events share the Rank workload's ids, seed and duration */
    o->events.brokers = brokers;
    o->events.users = o->load.users;
    o->events.items = o->load.items;
    o->events.zipf_s = o->load.dist == MMR_LOAD_ZIPF ? o->load.zipf_s : 0;
    o->events.seed = o->load.seed;
    o->events.duration_s = o->load.duration_s;

    if (sweep_list && (from || to || steps))
        return mmr_err_set(err, MMR_ERR_INVALID, "--sweep and --sweep-from/--sweep-to/--sweep-steps exclude each other");
    if (sweep_list && (o->n_sweep = mmr_sweep_parse_rates(sweep_list, o->sweep, MMR_LOADCLI_MAX_SWEEP)) < 0)
        return mmr_err_set(err, MMR_ERR_INVALID, "--sweep wants up to %d rates > 0 separated by commas, got '%s'",
                           MMR_LOADCLI_MAX_SWEEP, sweep_list);
    if ((from || to || steps) && (o->n_sweep = mmr_sweep_span_rates(from, to, (int)steps, o->sweep)) < 0)
        return mmr_err_set(err, MMR_ERR_INVALID, "--sweep-from A --sweep-to B --sweep-steps N want 0 < A < B and N >= 1");
    if (o->n_sweep) {
        if (o->load.mode != MMR_LOAD_OPEN) return mmr_err_set(err, MMR_ERR_INVALID, "a sweep is open loop only");
        if (brokers) return mmr_err_set(err, MMR_ERR_INVALID, "a sweep does not take --kafka");
        if (!o->csv_path) return mmr_err_set(err, MMR_ERR_INVALID, "a sweep needs --csv FILE");
        if (o->load.interval_ms) return mmr_err_set(err, MMR_ERR_INVALID, "--interval-ms does not go with a sweep");
    } else if (o->csv_path || o->png_path) {
        return mmr_err_set(err, MMR_ERR_INVALID, "--csv/--png go with --sweep");
    }
    if (o->load.mode == MMR_LOAD_OPEN && o->load.rate == 0 && !o->n_sweep && !brokers)
        return mmr_err_set(err, MMR_ERR_INVALID, "--rate 0 (no Rank load) needs --kafka");
    int rank_load = o->n_sweep || o->load.mode == MMR_LOAD_CLOSED || o->load.rate > 0;
    if (rank_load && !o->allow_remote && !mmr_loadcli_is_loopback(o->load.target))
        return mmr_err_set(err, MMR_ERR_INVALID, "%s is not a loopback address (use --allow-remote)", o->load.target);
    if (brokers && !o->allow_remote && !mmr_loadcli_is_loopback(brokers))
        return mmr_err_set(err, MMR_ERR_INVALID, "Kafka brokers %s are not all loopback (use --allow-remote)", brokers);
    if ((o->load.cert_pem_path || o->load.key_pem_path || o->load.ssl_target_name) && !o->load.ca_pem_path)
        return mmr_err_set(err, MMR_ERR_INVALID, "--cert/--key/--tls-name need --ca");
    return MMR_OK;
}
