/* config.c — the configuration table and its parsers (see mmr_config.h). */
#include "mmr_config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_STR, T_INT, T_BOOL, T_DBL } opt_type_t;

typedef struct opt {
    const char *name;
    opt_type_t type;
    const char *def;
    long min, max;      /* T_INT and T_DBL range */
    int reloadable;
    size_t off;
    const char *desc;
} opt_t;

#define O(field) offsetof(mmr_config_t, field)

/* THE table. Keep descriptions one line; docs/CONFIGURATION.md is generated from it. */
static const opt_t opts[] = {
    {"log.level", T_STR, "info", 0, 0, 1, O(log_level), "debug, info, warn or error"},
    {"store.path", T_STR, "./mmrec-data", 0, 0, 0, O(store_path), "RocksDB feature store directory (created if missing)"},
    {"store.user_ring", T_INT, "64", 1, 4096, 0, O(store_user_ring), "recent interactions kept per user"},
    {"store.item_cache", T_INT, "262144", 256, 100000000, 0, O(store_item_cache), "hot items whose catalog flags and counters serving keeps in memory (about 100 bytes each plus the id)"},
    {"store.sync", T_BOOL, "false", 0, 1, 0, O(store_sync), "fsync the WAL on every ingestion batch"},
    {"ingest.enabled", T_BOOL, "true", 0, 1, 0, O(ingest_enabled), "consume events from Kafka into the store"},
    {"kafka.brokers", T_STR, "127.0.0.1:9092", 0, 0, 0, O(kafka_brokers), "bootstrap servers (other kafka.* keys go to librdkafka)"},
    {"ingest.group", T_STR, "mmrec-ingest", 0, 0, 0, O(ingest_group), "consumer group of the ingestion consumer"},
    {"ingest.events_topic", T_STR, "mmrec.events", 0, 0, 0, O(events_topic), "topic of user events (key = user_id)"},
    {"ingest.dlq_topic", T_STR, "mmrec.events.dlq", 0, 0, 0, O(dlq_topic), "dead-letter topic for malformed events"},
    {"ingest.items_topic", T_STR, "mmrec.items", 0, 0, 0, O(items_topic), "catalog topic (key = item_id); empty = do not consume items"},
    {"item.dim_text", T_INT, "384", 0, 65536, 0, O(dim_text), "text embedding width items must have (0 = any)"},
    {"item.dim_image", T_INT, "512", 0, 65536, 0, O(dim_image), "image embedding width items must have (0 = any)"},
    {"item.dim_video", T_INT, "512", 0, 65536, 0, O(dim_video), "video embedding width items must have (0 = any)"},
    {"ingest.format", T_STR, "protobuf", 0, 0, 0, O(ingest_format), "event encoding: protobuf or json"},
    {"ingest.batch_max", T_INT, "1000", 1, 1000000, 0, O(ingest_batch_max), "events per RocksDB WriteBatch"},
    {"ingest.batch_ms", T_INT, "50", 1, 60000, 0, O(ingest_batch_ms), "longest wait to fill a batch (ms)"},
    {"ingest.queue_max", T_INT, "0", 0, 10000000, 0, O(ingest_queue_max), "messages queued for the store writer; when full, polling waits (0 = 4 x batch_max)"},
    {"ingest.pause_after_ms", T_INT, "1000", 1, 3600000, 0, O(ingest_pause_after_ms), "the store writer takes nothing from its full queue this long: pause the partitions and keep polling until the queue is half empty"},
    {"impressions.topic", T_STR, "mmrec.impressions", 0, 0, 0, O(impressions_topic), "topic each served ranking is logged to (key = user_id); empty = off"},
    {"impressions.max_buffered", T_INT, "100000", 100, 10000000, 0, O(impressions_max_buffered), "impressions held locally while Kafka is unreachable; beyond it they are dropped and counted"},
    {"serve.enabled", T_BOOL, "true", 0, 1, 0, O(serve_enabled), "run the gRPC ranking service"},
    {"grpc.listen", T_STR, "127.0.0.1:50051", 0, 0, 0, O(grpc_listen), "gRPC address; port 0 picks a free port"},
    {"grpc.threads", T_INT, "0", 0, 256, 0, O(grpc_threads), "handlers that may run at once, and as many acceptor threads (admitting calls, and running handlers while one of them stays free) and worker threads (0 = the CPUs mmrecd may run on)"},
    {"grpc.max_inflight", T_INT, "256", 1, 1000000, 0, O(grpc_max_inflight), "admitted concurrent calls; above it RESOURCE_EXHAUSTED"},
    {"grpc.queue_target_ms", T_INT, "5", 1, 60000, 0, O(grpc_queue_target_ms), "queueing delay that, while calls arrive faster than the handlers run them, means overload: then a call is admitted only to a free handler slot, the rest get RESOURCE_EXHAUSTED at once"},
    {"grpc.max_message_bytes", T_INT, "4194304", 1024, 268435456, 0, O(grpc_max_message_bytes), "largest request accepted"},
    {"grpc.tls_cert", T_STR, "", 0, 0, 0, O(grpc_tls_cert), "server certificate chain (PEM file); empty = plaintext gRPC"},
    {"grpc.tls_key", T_STR, "", 0, 0, 0, O(grpc_tls_key), "private key of grpc.tls_cert (PEM file)"},
    {"grpc.tls_client_ca", T_STR, "", 0, 0, 0, O(grpc_tls_client_ca), "CA bundle (PEM file) client certificates must chain to; needs tls_client_auth request or require"},
    {"grpc.tls_client_auth", T_STR, "none", 0, 0, 0, O(grpc_tls_client_auth), "client certificates: none, request (verified if sent) or require (mutual TLS)"},
    {"grpc.auth_tokens_file", T_STR, "", 0, 0, 0, O(grpc_auth_tokens_file), "file of `client_name token` lines; every call but grpc.health.v1 then needs `authorization: Bearer <token>`; empty = off"},
    {"rank.max_candidates", T_INT, "10000", 1, 1000000, 0, O(rank_max_candidates), "candidates per Rank request; above it INVALID_ARGUMENT"},
    {"shutdown.drain_ms", T_INT, "300", 0, 60000, 0, O(shutdown_drain_ms), "on SIGTERM, health says NOT_SERVING and calls are still served this long before the listener closes, so calls already on the wire and clients watching health move away unharmed"},
    {"shutdown.grace_ms", T_INT, "5000", 0, 600000, 0, O(shutdown_grace_ms), "time in-flight calls get to finish on SIGTERM"},
    {"metrics.listen", T_STR, "127.0.0.1:9464", 0, 0, 0, O(metrics_listen), "Prometheus /metrics HTTP address; empty = off; port 0 = free port"},
    {"trainer.enabled", T_BOOL, "true", 0, 1, 0, O(trainer_enabled), "learn online from the event stream and publish model versions"},
    {"trainer.group", T_STR, "mmrec-trainer", 0, 0, 0, O(trainer_group), "consumer group of the trainer (its offsets live in its checkpoint)"},
    {"trainer.publish_interval_ms", T_INT, "500", 10, 86400000, 0, O(trainer_publish_ms), "publish a model version this often when there are new examples"},
    {"trainer.publish_examples", T_INT, "0", 0, 1000000000, 0, O(trainer_publish_examples), "also publish after this many new examples (0 = time only)"},
    {"trainer.checkpoint_interval_ms", T_INT, "10000", 100, 86400000, 0, O(trainer_checkpoint_ms), "write the trainer checkpoint this often (and on shutdown)"},
    {"trainer.nice", T_INT, "0", 0, 19, 0, O(trainer_nice), "nice value of the trainer and publisher threads (e.g. 10: they yield the CPU to serving when both want it, at some cost in freshness; 19: only a small share while serving wants the CPU)"},
    {"trainer.batch_size", T_INT, "256", 1, 65536, 0, O(trainer_batch), "examples per training step"},
    {"trainer.lr", T_DBL, "0.05", 0, 10, 0, O(trainer_lr), "Adagrad learning rate of the dense tower weights"},
    {"trainer.lr_sparse", T_DBL, "0.05", 0, 10, 0, O(trainer_lr_sparse), "Adagrad learning rate of the item/user id embeddings"},
    {"trainer.neg_per_pos", T_INT, "4", 0, 64, 0, O(trainer_neg_per_pos), "sampled negative items per positive"},
    {"trainer.join_window_ms", T_INT, "30000", 0, 86400000, 0, O(trainer_join_window_ms), "an impression without a positive within this event time is a negative"},
    {"trainer.max_pending", T_INT, "1000000", 1000, 100000000, 0, O(trainer_max_pending), "impressions held by the join; beyond it the oldest is decided early"},
    {"model.dir", T_STR, "", 0, 0, 0, O(model_dir), "model files and the trainer checkpoint (empty = <store.path>/models)"},
    {"model.keep", T_INT, "10", 1, 100000, 0, O(model_keep), "model versions kept besides the serving, previous and experiment ones"},
    {"model.delta_max", T_DBL, "0.25", 0, 1, 0, O(model_delta_max), "publish a version as the blocks changed since the last full one while they stay within this fraction of the model (0 = whole files)"},
    {"model.experiments", T_STR, "", 0, 0, 0, O(model_experiments), "A/B splits: name=arm:version:weight,arm:version:weight[;name2=...]"},
    {"model.hidden", T_INT, "128", 1, 4096, 0, O(model_hidden), "tower projection and MLP width"},
    {"model.dim", T_INT, "64", 1, 1024, 0, O(model_dim), "item and user vector width"},
    {"model.history", T_INT, "32", 1, 1024, 0, O(model_history), "recent interactions the user tower attends over"},
    {"model.id_buckets", T_INT, "262144", 1, 67108864, 0, O(model_id_buckets), "hash buckets of the item-id and user-id embeddings"},
    {"retrieval.exact_below", T_INT, "20000", 0, 1000000000, 0, O(retrieval_exact_below), "catalogs smaller than this are retrieved (retrieve_k) by an exact scan; larger ones get an approximate index at each model build"},
    {"retrieval.recall", T_DBL, "0.97", 0, 1, 0, O(retrieval_recall), "recall@100 against exact the index's calibration must reach (a higher target probes more lists)"},
    {"retrieval.rerank", T_INT, "2", 1, 64, 0, O(retrieval_rerank), "the index re-scores this many candidates per result exactly (more: a little slower, fewer lists to probe)"},
    {"retrieval.max_scan", T_DBL, "0.5", 0, 1, 0, O(retrieval_max_scan), "an index that would scan more than this share of the catalog per query is dropped for the exact scan"},
    {"ready_file", T_STR, "", 0, 0, 0, O(ready_file), "when set, written with the bound ports once serving"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static const opt_t *opt_find(const char *name) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].name, name) == 0) return &opts[i];
    return NULL;
}

static int parse_bool(const char *v, long *out) {
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) { *out = 1; return 1; }
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) { *out = 0; return 1; }
    return 0;
}

static mmr_status_t opt_apply(mmr_config_t *cfg, const opt_t *o, const char *v, mmr_err_t *err) {
    char *base = (char *)cfg + o->off;
    if (o->type == T_STR) {
        char *dup = strdup(v);
        if (!dup) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
        free(*(char **)base);
        *(char **)base = dup;
        return MMR_OK;
    }
    if (o->type == T_DBL) {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end || !(d >= (double)o->min && d <= (double)o->max))
            return mmr_err_set(err, MMR_ERR_INVALID, "%s: expected a number in [%ld, %ld], got '%s'",
                               o->name, o->min, o->max, v);
        *(double *)base = d;
        return MMR_OK;
    }
    long x;
    if (o->type == T_BOOL) {
        if (!parse_bool(v, &x))
            return mmr_err_set(err, MMR_ERR_INVALID, "%s: expected true or false, got '%s'", o->name, v);
    } else {
        char *end;
        errno = 0;
        x = strtol(v, &end, 10);
        if (errno || end == v || *end)
            return mmr_err_set(err, MMR_ERR_INVALID, "%s: expected an integer, got '%s'", o->name, v);
        if (x < o->min || x > o->max)
            return mmr_err_set(err, MMR_ERR_INVALID, "%s: %ld is outside [%ld, %ld]", o->name, x,
                               o->min, o->max);
    }
    *(long *)base = x;
    return MMR_OK;
}

static mmr_status_t passthrough_add(char **list, size_t *n, const char *key, const char *value,
                                    mmr_err_t *err) {
    if (*n == MMR_CONFIG_MAX_PASSTHROUGH)
        return mmr_err_set(err, MMR_ERR_INVALID, "more than %d pass-through keys", MMR_CONFIG_MAX_PASSTHROUGH);
    size_t len = strlen(key) + strlen(value) + 2;
    char *kv = malloc(len);
    if (!kv) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    snprintf(kv, len, "%s=%s", key, value);
    list[(*n)++] = kv;
    return MMR_OK;
}

void mmr_config_init(mmr_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTS; i++) opt_apply(cfg, &opts[i], opts[i].def, NULL);
}

void mmr_config_free(mmr_config_t *cfg) {
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].type == T_STR) free(*(char **)((char *)cfg + opts[i].off));
    for (size_t i = 0; i < cfg->n_kafka_props; i++) free(cfg->kafka_props[i]);
    for (size_t i = 0; i < cfg->n_rocksdb_props; i++) free(cfg->rocksdb_props[i]);
    memset(cfg, 0, sizeof *cfg);
}

mmr_status_t mmr_config_set(mmr_config_t *cfg, const char *key, const char *value, mmr_err_t *err) {
    const opt_t *o = opt_find(key);
    if (o) return opt_apply(cfg, o, value, err);
    if (strncmp(key, "kafka.", 6) == 0 && key[6])
        return passthrough_add(cfg->kafka_props, &cfg->n_kafka_props, key + 6, value, err);
    if (strncmp(key, "rocksdb.", 8) == 0 && key[8])
        return passthrough_add(cfg->rocksdb_props, &cfg->n_rocksdb_props, key + 8, value, err);
    return mmr_err_set(err, MMR_ERR_INVALID, "unknown option '%s' (see --help)", key);
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

mmr_status_t mmr_config_load_file(mmr_config_t *cfg, const char *path, mmr_err_t *err) {
    FILE *f = fopen(path, "r");
    if (!f) return mmr_err_set(err, MMR_ERR_IO, "cannot open config %s: %s", path, strerror(errno));
    char line[4096];
    int lineno = 0;
    mmr_status_t st = MMR_OK;
    while (st == MMR_OK && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            st = mmr_err_set(err, MMR_ERR_INVALID, "%s:%d: line too long", path, lineno);
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) { st = mmr_err_set(err, MMR_ERR_INVALID, "%s:%d: expected key = value", path, lineno); break; }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        mmr_err_t e2 = {0};
        if (mmr_config_set(cfg, key, val, &e2) != MMR_OK)
            st = mmr_err_set(err, e2.code, "%s:%d: %s", path, lineno, e2.msg);
    }
    fclose(f);
    return st;
}

mmr_status_t mmr_config_parse_args(mmr_config_t *cfg, int argc, char **argv, int *help,
                                   mmr_err_t *err) {
    *help = 0;
    for (int i = 1; i < argc; i++) { /* --config first, so flags override the file */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { *help = 1; return MMR_OK; }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) return mmr_err_set(err, MMR_ERR_INVALID, "--config needs a file");
            mmr_status_t st = mmr_config_load_file(cfg, argv[i + 1], err);
            if (st != MMR_OK) return st;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            mmr_status_t st = mmr_config_load_file(cfg, argv[i] + 9, err);
            if (st != MMR_OK) return st;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return mmr_err_set(err, MMR_ERR_INVALID, "unexpected argument '%s'", a);
        if (strcmp(a, "--config") == 0) { i++; continue; }
        if (strncmp(a, "--config=", 9) == 0) continue;
        char key[256];
        const char *eq = strchr(a, '='), *val;
        if (eq) {
            snprintf(key, sizeof key, "%.*s", (int)(eq - a - 2), a + 2);
            val = eq + 1;
        } else {
            snprintf(key, sizeof key, "%s", a + 2);
            if (i + 1 >= argc) return mmr_err_set(err, MMR_ERR_INVALID, "%s needs a value", a);
            val = argv[++i];
        }
        mmr_status_t st = mmr_config_set(cfg, key, val, err);
        if (st != MMR_OK) return st;
    }
    return MMR_OK;
}

static const char *type_name(opt_type_t t) {
    return t == T_STR ? "string" : t == T_INT ? "int" : t == T_DBL ? "number" : "bool";
}

void mmr_config_print_help(FILE *out, const char *prog) {
    fprintf(out, "usage: %s [--config FILE] [--key=value ...]\n\n"
                 "mmrecd: ingestion, online learning and the gRPC ranking service in one process.\n"
                 "Options (config file keys are the same without the leading --):\n",
            prog);
    for (size_t i = 0; i < NOPTS; i++) {
        char head[64];
        snprintf(head, sizeof head, "--%s", opts[i].name);
        fprintf(out, "  %-32s %-6s %s (default: %s)\n", head, type_name(opts[i].type), opts[i].desc,
                *opts[i].def ? opts[i].def : "\"\"");
    }
    fprintf(out, "  --kafka.<prop>=<v>               passed to librdkafka (e.g. --kafka.security.protocol=SSL)\n"
                 "  --rocksdb.<opt>=<v>              passed to RocksDB (e.g. --rocksdb.write_buffer_size=67108864)\n"
                 "  --help                           this text\n");
}

void mmr_config_print_markdown(FILE *out) {
    fprintf(out, "# mmrecd configuration\n\n"
                 "Generated from the option table in `src/config.c` by `mmrecd --help-markdown`;\n"
                 "do not edit by hand (a test checks they agree).\n\n"
                 "Set options in a file (`key = value`, `#` comments) given with `--config FILE`,\n"
                 "or on the command line as `--key=value` (command line wins). Keys starting with\n"
                 "`kafka.` are passed to librdkafka and `rocksdb.` to RocksDB, prefix removed.\n\n"
                 "| option | type | default | range | reloadable | description |\n"
                 "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_t *o = &opts[i];
        char range[64] = "";
        if (o->type == T_INT || o->type == T_DBL) snprintf(range, sizeof range, "%ld – %ld", o->min, o->max);
        fprintf(out, "| `%s` | %s | `%s` | %s | %s | %s |\n", o->name, type_name(o->type),
                *o->def ? o->def : "\"\"", range, o->reloadable ? "yes" : "no", o->desc);
    }
}
