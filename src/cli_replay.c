/* cli_replay.c — `mmrec replay`: options → mmr_replay_conf_t (the events from a TSV file or
 * a Kafka topic range), progress on stderr, the summary on stdout and the report files. The
 * evaluation itself is replay.c, the readers replay_io.c and replay_kafka.c. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mmr_replay.h"
#include "mmr_time.h"

#define PLAIN_EVERY_NS 5000000000LL /* progress lines when stderr is not a terminal */
#define BAR_EVERY_NS 200000000LL

typedef struct progress {
    int tty;
    int64_t t0, last;
} progress_t;

static void on_progress(void *opaque, const char *stage, uint64_t done, uint64_t total) {
    progress_t *p = opaque;
    int64_t now = mmr_mono_ns();
    if (now - p->last < (p->tty ? BAR_EVERY_NS : PLAIN_EVERY_NS) && done < total) return;
    p->last = now;
    double s = (double)(now - p->t0) / 1e9, rate = s > 0 ? (double)done / s : 0;
    double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0, frac = total ? (double)done / total : 1;
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '-';
        bar[30] = '\0';
        fprintf(stderr, "\r%s [%s] %5.1f%% %.0f/s ETA %.0fs ", stage, bar, 100 * frac, rate, eta);
        if (done >= total) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %llu/%llu (%.1f%%), %.0f/s, ETA %.0f s\n", stage, (unsigned long long)done,
                (unsigned long long)total, 100 * frac, rate, eta);
    }
}

/* "1,5,10" → ks (ascending, at most MMR_EVAL_K_MAX). Returns the count, 0 when bad. */
static size_t parse_ks(const char *s, int *ks) {
    size_t n = 0;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 100000 || n == MMR_EVAL_K_MAX || (n && v <= ks[n - 1])) return 0;
        ks[n++] = (int)v;
        if (*end == ',') end++;
        else if (*end) return 0;
        p = end;
    }
    return n;
}

/* DIR of path + "/" + name into out, when that file exists; else NULL. */
static const char *sibling(const char *path, const char *name, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path) : 1;
    snprintf(out, cap, "%.*s/%s", dl, slash ? path : ".", name);
    return access(out, R_OK) == 0 ? out : NULL;
}

static int usage(void) {
    fprintf(stderr, "usage: mmrec replay --events FILE.tsv [options]\n"
                    "       mmrec replay --kafka BROKERS [--topic mmrec.events] [--from-ms MS] [--to-ms MS]\n"
                    "                    [--format protobuf|json] [--kafka-timeout-ms 10000] --items FILE.jsonl [options]\n"
                    "(docs/REPLAY.md lists the options)\n");
    return 2;
}

/* A decimal integer in [lo, hi] from s into *out. Returns 1, or 0 when s is not one. */
static int parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* The options that only go with --kafka. */
static const char *const kafka_opts[] = {"topic", "from-ms", "to-ms", "format", "kafka-timeout-ms", NULL};

/* --kafka BROKERS and its options into *k. Returns 0, or 2 (usage) after saying why. */
static int kafka_source(int argc, char **argv, const char *brokers, mmr_replay_io_kafka_t *k) {
    *k = mmr_replay_io_kafka_default(brokers, mmr_cli_opt(argc, argv, "topic", "mmrec.events"));
    static const char *const name[2] = {"from-ms", "to-ms"};
    const char *bound[2] = {mmr_cli_opt(argc, argv, name[0], NULL), mmr_cli_opt(argc, argv, name[1], NULL)};
    int64_t *ms[2] = {&k->from_ms, &k->to_ms};
    long long v;
    for (int i = 0; i < 2; i++) {
        if (!bound[i]) continue;
        if (!parse_int(bound[i], 0, INT64_MAX, &v)) {
            fprintf(stderr, "mmrec replay: --%s wants milliseconds since the epoch, got '%s'\n", name[i], bound[i]);
            return 2;
        }
        *ms[i] = v;
    }
    if (bound[0] && bound[1] && k->from_ms >= k->to_ms) {
        fprintf(stderr, "mmrec replay: --from-ms must be before --to-ms (the range is [from, to))\n");
        return 2;
    }
    const char *format = mmr_cli_opt(argc, argv, "format", "protobuf");
    if (!strcmp(format, "json")) k->format = MMR_INGEST_FORMAT_JSON;
    else if (strcmp(format, "protobuf")) {
        fprintf(stderr, "mmrec replay: --format wants protobuf or json (as mmrecd's ingest.format)\n");
        return 2;
    }
    if (!parse_int(mmr_cli_opt(argc, argv, "kafka-timeout-ms", "10000"), 1, 3600000, &v)) {
        fprintf(stderr, "mmrec replay: --kafka-timeout-ms wants 1..3600000\n");
        return 2;
    }
    k->timeout_ms = (int)v;
    return 0;
}

int mmr_cli_replay(int argc, char **argv) {
    static const char *const valued[] = {"events", "kafka", "topic", "from-ms", "to-ms", "format",
                                         "kafka-timeout-ms", "items", "out", "oracle", "protocol", "windows",
                                         "passes", "k", "seed", "threads", "lr", "neg", "hidden", "dim", "batch",
                                         "chunk", "max-bad", "tmp", NULL};
    static const char *const flags[] = {"no-ablations", "keep-store", NULL};
    if (!mmr_cli_check_opts(argc, argv, valued, flags)) return usage();
    mmr_replay_conf_t c = mmr_replay_conf_default();
    char items_buf[4200], oracle_buf[4200];
    mmr_replay_io_kafka_t kafka;
    const char *brokers = mmr_cli_opt(argc, argv, "kafka", NULL);
    c.events_path = mmr_cli_opt(argc, argv, "events", NULL);
    if (!c.events_path == !brokers) {
        fprintf(stderr, "mmrec replay: give exactly one event source, --events FILE.tsv or --kafka BROKERS\n");
        return usage();
    }
    for (int i = 0; !brokers && kafka_opts[i]; i++)
        if (mmr_cli_opt(argc, argv, kafka_opts[i], NULL)) {
            fprintf(stderr, "mmrec replay: --%s goes with --kafka, not --events\n", kafka_opts[i]);
            return 2;
        }
    if (brokers) {
        if (kafka_source(argc, argv, brokers, &kafka) != 0) return 2;
        c.events_kafka = &kafka;
    }
    c.items_path = mmr_cli_opt(argc, argv, "items", NULL);
    if (!c.items_path && brokers) {
        fprintf(stderr, "mmrec replay: --kafka needs --items FILE.jsonl (the catalog)\n");
        return 2;
    }
    if (!c.items_path && !(c.items_path = sibling(c.events_path, "items.jsonl", items_buf, sizeof items_buf))) {
        fprintf(stderr, "mmrec replay: no --items and no items.jsonl next to %s\n", c.events_path);
        return 2;
    }
    c.oracle_path = mmr_cli_opt(argc, argv, "oracle", NULL);
    if (!c.oracle_path && c.events_path)
        c.oracle_path = sibling(c.events_path, "oracle.json", oracle_buf, sizeof oracle_buf);
    const char *proto = mmr_cli_opt(argc, argv, "protocol", "leave-one-out");
    if (!strcmp(proto, "prequential")) c.protocol = MMR_REPLAY_PREQUENTIAL;
    else if (strcmp(proto, "leave-one-out") && strcmp(proto, "loo")) return usage();
    c.windows = atoi(mmr_cli_opt(argc, argv, "windows", "10"));
    c.passes = atoi(mmr_cli_opt(argc, argv, "passes", "1"));
    c.seed = strtoull(mmr_cli_opt(argc, argv, "seed", "42"), NULL, 10);
    c.threads = atoi(mmr_cli_opt(argc, argv, "threads", "2"));
    c.ablations = !mmr_cli_flag(argc, argv, "no-ablations");
    c.keep_store = mmr_cli_flag(argc, argv, "keep-store");
    c.tmp_dir = mmr_cli_opt(argc, argv, "tmp", NULL);
    c.max_bad_fraction = atof(mmr_cli_opt(argc, argv, "max-bad", "0.01"));
    c.chunk = (size_t)atol(mmr_cli_opt(argc, argv, "chunk", "4096"));
    c.trainer.optim.lr = c.trainer.optim.lr_sparse = (float)atof(mmr_cli_opt(argc, argv, "lr", "0.05"));
    c.join.neg_per_pos = atoi(mmr_cli_opt(argc, argv, "neg", "4"));
    c.trainer.tower.d_hidden = atoi(mmr_cli_opt(argc, argv, "hidden", "64"));
    c.trainer.tower.d_out = atoi(mmr_cli_opt(argc, argv, "dim", "32"));
    c.trainer.batch_size = atoi(mmr_cli_opt(argc, argv, "batch", "256"));
    if (!(c.n_ks = parse_ks(mmr_cli_opt(argc, argv, "k", "1,5,10,20,50"), c.ks))) {
        fprintf(stderr, "mmrec replay: --k wants up to %d ascending cut-offs >= 1, e.g. 1,5,10\n", MMR_EVAL_K_MAX);
        return 2;
    }
    if (c.windows < 1 || c.passes < 1 || c.threads < 1 || c.chunk < 1 || c.max_bad_fraction < 0 ||
        c.max_bad_fraction > 1 || !(c.trainer.optim.lr > 0) || c.trainer.batch_size < 1)
        return usage();
    progress_t pr = {.tty = isatty(STDERR_FILENO), .t0 = mmr_mono_ns()};
    c.progress = on_progress;
    c.opaque = &pr;

    mmr_replay_report_t rep;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_replay_run(&c, &rep, &err);
    const char *out = mmr_cli_opt(argc, argv, "out", NULL);
    if (st == MMR_OK) st = mmr_replay_write(&c, &rep, out, stdout, &err);
    if (st != MMR_OK) fprintf(stderr, "mmrec replay: %s\n", err.msg);
    mmr_replay_report_clear(&rep);
    return st == MMR_OK ? 0 : 1;
}
