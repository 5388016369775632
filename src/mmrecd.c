/* mmrecd.c — the daemon: feature store, Kafka ingestion, online trainer, model registry,
 * gRPC ranking service and Prometheus metrics in one process, each part switchable in the
 * config.
 *
 * Signals are blocked in every thread and taken by main with sigwait: SIGTERM/SIGINT
 * shut down in order (health NOT_SERVING while calls are still served for shutdown.drain_ms,
 * then stop accepting and let running RPCs finish, stop the trainer
 * with a final publish and checkpoint, flush and commit ingestion, close the registry and
 * the store) and exit 0; SIGHUP re-reads the reloadable options. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mmr_admin.h"
#include "mmr_config.h"
#include "mmr_fstore.h"
#include "mmr_impressions.h"
#include "mmr_ingest.h"
#include "mmr_log.h"
#include "mmr_metrics.h"
#include "mmr_ranker.h"
#include "mmr_registry.h"
#include "mmr_server.h"
#include "mmr_trainerd.h"

typedef struct daemon_state {
    mmr_config_t cfg;
    const char *config_path;
    mmr_fstore_t *fs;
    mmr_ingest_t *ing;
    mmr_impressions_t *imps;
    mmr_registry_t *reg;
    mmr_trainerd_t *trainer;
    mmr_ranker_t *ranker;
    mmr_server_t *srv;
    mmr_metrics_t *metrics;
} daemon_state_t;

/* One Prometheus sample with its TYPE line (label-less metrics only). */
#define INGEST_HEALTH "mmrec.ingest" /* the health service name of ingestion */

static void put(FILE *out, const char *type, const char *name, double v) {
    fprintf(out, "# TYPE %s %s\n%s %.17g\n", name, type, name, v);
}

/* One Prometheus histogram series: counts[nb] per bucket (not cumulative), le[nb - 1] the
 * upper bounds (the last bucket is +Inf); label is `key="value"` or "" for none. The
 * # TYPE line is the caller's (one per metric name, before all its series). */
static void put_histogram(FILE *out, const char *name, const char *label, const double *le,
                          const uint64_t *counts, int nb, double sum) {
    const char *sep = *label ? "," : "";
    uint64_t cum = 0;
    for (int b = 0; b < nb; b++) {
        cum += counts[b];
        if (b < nb - 1)
            fprintf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep, le[b], (unsigned long long)cum);
        else
            fprintf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep, (unsigned long long)cum);
    }
    const char *open = *label ? "{" : "", *close = *label ? "}" : "";
    fprintf(out, "%s_sum%s%s%s %.17g\n%s_count%s%s%s %llu\n", name, open, label, close, sum, name, open,
            label, close, (unsigned long long)cum);
}

static void render_metrics(void *opaque, FILE *out) {
    daemon_state_t *d = opaque;
    put(out, "gauge", "mmrec_up", 1);
    if (d->srv) {
        mmr_server_stats_t s;
        mmr_server_get_stats(d->srv, &s);
        put(out, "counter", "mmrec_rpc_calls_total", (double)s.calls);
        put(out, "counter", "mmrec_rpc_ok_total", (double)s.ok);
        put(out, "counter", "mmrec_rpc_shed_total", (double)s.shed);
        put(out, "counter", "mmrec_rpc_deadline_expired_total", (double)s.expired);
        put(out, "counter", "mmrec_rpc_unauthenticated_total", (double)s.unauthenticated);
        put(out, "gauge", "mmrec_rpc_inflight", s.inflight);
        static const char *const codes[MMR_SERVER_STATUS_COUNT] = {
            "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
            "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
            "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
            "UNAUTHENTICATED"};
        int nm = mmr_server_method_count(d->srv);
        fprintf(out, "# TYPE mmrec_rpc_requests_total counter\n");
        for (int i = 0; i < nm; i++) {
            mmr_server_method_stats_t m;
            mmr_server_get_method_stats(d->srv, i, &m);
            for (int k = 0; k < MMR_SERVER_STATUS_COUNT; k++)
                if (m.by_status[k])
                    fprintf(out, "mmrec_rpc_requests_total{method=\"%s\",code=\"%s\"} %llu\n", m.path,
                            codes[k], (unsigned long long)m.by_status[k]);
        }
        fprintf(out, "# TYPE mmrec_rpc_latency_ms histogram\n");
        for (int i = 0; i < nm; i++) {
            mmr_server_method_stats_t m;
            mmr_server_get_method_stats(d->srv, i, &m);
            char label[300];
            snprintf(label, sizeof label, "method=\"%s\"", m.path);
            put_histogram(out, "mmrec_rpc_latency_ms", label, mmr_server_latency_le, m.latency,
                          MMR_SERVER_LATENCY_BUCKETS, m.latency_sum_ms);
        }
    }
    if (d->ranker) {
        mmr_ranker_stats_t r;
        mmr_ranker_get_stats(d->ranker, &r);
        put(out, "counter", "mmrec_rank_requests_total", (double)r.requests);
        put(out, "counter", "mmrec_rank_invalid_total", (double)r.invalid);
        put(out, "counter", "mmrec_rank_unknown_candidates_total", (double)r.unknown_candidates);
        put(out, "counter", "mmrec_rank_cold_start_total", (double)r.cold_start);
        put(out, "counter", "mmrec_rank_model_scored_total", (double)r.model_scored);
    }
    if (d->imps) {
        mmr_impressions_stats_t s;
        mmr_impressions_get_stats(d->imps, &s);
        put(out, "counter", "mmrec_impressions_logged_total", (double)s.logged);
        put(out, "counter", "mmrec_impressions_delivered_total", (double)s.delivered);
        put(out, "counter", "mmrec_impressions_failed_total", (double)s.failed);
        put(out, "counter", "mmrec_impressions_dropped_total", (double)s.dropped);
    }
    if (d->ing) {
        mmr_ingest_stats_t s;
        mmr_ingest_get_stats(d->ing, &s);
        put(out, "counter", "mmrec_ingest_consumed_total", (double)s.consumed);
        put(out, "counter", "mmrec_ingest_applied_total", (double)s.applied);
        put(out, "counter", "mmrec_ingest_items_applied_total", (double)s.items_applied);
        put(out, "counter", "mmrec_ingest_duplicates_total", (double)s.duplicates);
        put(out, "counter", "mmrec_ingest_batches_total", (double)s.batches);
        put(out, "counter", "mmrec_ingest_store_errors_total", (double)s.store_errors);
        put(out, "gauge", "mmrec_ingest_store_failing", s.store_failing);
        put(out, "gauge", "mmrec_ingest_queued", s.queued);
        put(out, "gauge", "mmrec_ingest_paused", s.paused);
        put(out, "counter", "mmrec_ingest_pauses_total", (double)s.pauses);
        put(out, "counter", "mmrec_ingest_redelivered_total", (double)s.redelivered);
        put(out, "counter", "mmrec_ingest_dlq_errors_total", (double)s.dlq_errors);
        put(out, "counter", "mmrec_ingest_commit_errors_total", (double)s.commit_errors);
        put(out, "gauge", "mmrec_ingest_batch_commit_ms", s.last_batch_ms);
        put(out, "gauge", "mmrec_ingest_assigned_partitions", s.assigned_partitions);
        mmr_ingest_lag_t lag[256];
        size_t nl = mmr_ingest_get_lag(d->ing, lag, sizeof lag / sizeof lag[0]);
        fprintf(out, "# TYPE mmrec_ingest_lag gauge\n");
        for (size_t i = 0; i < nl && i < sizeof lag / sizeof lag[0]; i++)
            if (lag[i].lag >= 0)
                fprintf(out, "mmrec_ingest_lag{topic=\"%s\",partition=\"%d\"} %lld\n", lag[i].topic,
                        (int)lag[i].partition, (long long)lag[i].lag);
        fprintf(out, "# TYPE mmrec_ingest_dead_lettered_total counter\n");
        for (int i = 0; i < MMR_INGEST_BAD_COUNT; i++)
            fprintf(out, "mmrec_ingest_dead_lettered_total{reason=\"%s\"} %llu\n",
                    mmr_ingest_reason_str((mmr_ingest_reason_t)i),
                    (unsigned long long)s.dead_lettered[i]);
    }
    if (d->fs) {
        mmr_fstore_stats_t f;
        mmr_fstore_get_stats(d->fs, &f);
        put(out, "gauge", "mmrec_store_estimate_keys", (double)f.estimate_keys);
        put(out, "gauge", "mmrec_store_live_data_bytes", (double)f.live_data_bytes);
        put(out, "gauge", "mmrec_store_sst_bytes", (double)f.sst_bytes);
        put(out, "gauge", "mmrec_store_memtable_bytes", (double)f.memtable_bytes);
        put(out, "gauge", "mmrec_store_pending_compaction_bytes", (double)f.pending_compaction_bytes);
        put(out, "gauge", "mmrec_store_running_compactions", (double)f.running_compactions);
        put(out, "gauge", "mmrec_store_block_cache_bytes", (double)f.block_cache_bytes);
        put(out, "counter", "mmrec_store_item_cache_hits_total", (double)f.item_cache_hits);
        put(out, "counter", "mmrec_store_item_cache_misses_total", (double)f.item_cache_misses);
        put(out, "gauge", "mmrec_store_item_cache_entries", (double)f.item_cache_entries);
    }
    if (d->reg) {
        int pinned = 0;
        put(out, "gauge", "mmrec_model_serving_version", (double)mmr_registry_serving(d->reg, &pinned));
        put(out, "gauge", "mmrec_model_pinned", pinned);
        mmr_registry_arm_stats_t arms[MMR_REGISTRY_MAX_ARMS * 4];
        size_t n = mmr_registry_experiment_stats(d->reg, arms, sizeof arms / sizeof arms[0]);
        if (n > sizeof arms / sizeof arms[0]) n = sizeof arms / sizeof arms[0];
        static const char *const arm_metric[] = {"impressions", "clicks", "examples", "ctr"};
        for (int k = 0; k < 4 && n; k++) {
            fprintf(out, "# TYPE mmrec_experiment_%s %s\n", arm_metric[k], k < 3 ? "counter" : "gauge");
            for (size_t i = 0; i < n; i++) {
                double v = k == 0 ? (double)arms[i].impressions : k == 1 ? (double)arms[i].clicks
                         : k == 2 ? (double)arms[i].examples
                         : arms[i].impressions ? (double)arms[i].clicks / (double)arms[i].impressions : 0;
                fprintf(out, "mmrec_experiment_%s{experiment=\"%s\",arm=\"%s\",version=\"%llu\"} %.17g\n",
                        arm_metric[k], arms[i].experiment, arms[i].arm,
                        (unsigned long long)arms[i].version, v);
            }
        }
    }
    if (d->trainer) {
        mmr_trainerd_stats_t t;
        mmr_trainerd_get_stats(d->trainer, &t);
        put(out, "counter", "mmrec_trainer_examples_total", (double)t.trainer.examples);
        put(out, "counter", "mmrec_trainer_positives_total", (double)t.trainer.positives);
        put(out, "counter", "mmrec_trainer_steps_total", (double)t.trainer.steps);
        put(out, "gauge", "mmrec_trainer_loss", t.trainer.loss_ewma);
        put(out, "counter", "mmrec_trainer_example_errors_total", (double)t.example_errors);
        put(out, "counter", "mmrec_trainer_publishes_total", (double)t.publishes);
        put(out, "counter", "mmrec_trainer_publish_errors_total", (double)t.publish_errors);
        put(out, "counter", "mmrec_trainer_checkpoints_total", (double)t.checkpoints);
        put(out, "counter", "mmrec_trainer_checkpoint_errors_total", (double)t.checkpoint_errors);
        put(out, "gauge", "mmrec_trainer_published_version", (double)t.version);
        put(out, "gauge", "mmrec_trainer_freshness_oldest_ms", (double)t.fresh_oldest_ms);
        put(out, "gauge", "mmrec_trainer_freshness_newest_ms", (double)t.fresh_newest_ms);
        put(out, "gauge", "mmrec_trainer_publish_ms", (double)t.publish_ms);
        fprintf(out, "# TYPE mmrec_trainer_freshness_ms histogram\n");
        put_histogram(out, "mmrec_trainer_freshness_ms", "", mmr_trainerd_fresh_le, t.fresh_hist,
                      MMR_TRAINERD_FRESH_BUCKETS, t.fresh_sum_ms);
        put(out, "counter", "mmrec_trainer_events_total", (double)t.feed.events);
        put(out, "counter", "mmrec_trainer_impressions_total", (double)t.feed.impressions);
        put(out, "counter", "mmrec_trainer_undecodable_total", (double)t.feed.undecodable);
        put(out, "counter", "mmrec_trainer_join_positives_total", (double)t.join.positives);
        put(out, "counter", "mmrec_trainer_join_negatives_total", (double)t.join.negatives);
        put(out, "counter", "mmrec_trainer_join_forced_total", (double)t.join.forced);
        put(out, "gauge", "mmrec_trainer_join_pending", (double)t.join.pending);
    }
}

/* The registry (model files under model.dir) and, when enabled, the online trainer. */
static mmr_status_t start_models(daemon_state_t *d, mmr_err_t *err) {
    mmr_config_t *c = &d->cfg;
    char dir[4096];
    int w = *c->model_dir ? snprintf(dir, sizeof dir, "%s", c->model_dir)
                          : snprintf(dir, sizeof dir, "%s/models", c->store_path);
    if (w < 0 || (size_t)w >= sizeof dir) return mmr_err_set(err, MMR_ERR_INVALID, "model.dir too long");
    mmr_model_opts_t mo = mmr_model_opts_default();
    mo.ann_min_items = (size_t)c->retrieval_exact_below;
    mo.ann_max_scan = (float)c->retrieval_max_scan;
    mo.ann_opts.target_recall = (float)c->retrieval_recall;
    mo.ann_opts.rerank = (uint32_t)c->retrieval_rerank;
    mmr_registry_conf_t rc = {.model_dir = dir, .keep = (uint32_t)c->model_keep,
                              .delta_max = (float)c->model_delta_max, .model_opts = &mo};
    mmr_status_t st = mmr_registry_open(&rc, d->fs, &d->reg, err);
    if (st != MMR_OK) return st;
    if (*c->model_experiments && (st = mmr_registry_set_experiments(d->reg, c->model_experiments, err)) != MMR_OK)
        return st;
    mmr_log(MMR_LOG_INFO, "mmrecd", "models in %s, serving version %llu", dir,
            (unsigned long long)mmr_registry_serving(d->reg, NULL));
    if (!c->trainer_enabled) return MMR_OK;
    if (c->dim_text < 1 || c->dim_image < 1 || c->dim_video < 1)
        return mmr_err_set(err, MMR_ERR_INVALID, "the trainer needs fixed item.dim_text/image/video (> 0)");
    mmr_tower_config_t tc = mmr_tower_config_default();
    tc.d_text = (int)c->dim_text, tc.d_image = (int)c->dim_image, tc.d_video = (int)c->dim_video;
    tc.d_hidden = (int)c->model_hidden, tc.d_out = (int)c->model_dim, tc.hist_len = (int)c->model_history;
    tc.n_item_ids = tc.n_user_ids = (int)c->model_id_buckets;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/trainer.ckpt", dir);
    mmr_trainerd_conf_t tdc = {
        .feed = {.brokers = c->kafka_brokers, .group_id = c->trainer_group,
                 .events_topic = c->events_topic, .impressions_topic = c->impressions_topic,
                 .format = strcmp(c->ingest_format, "json") == 0 ? MMR_INGEST_FORMAT_JSON
                                                                  : MMR_INGEST_FORMAT_PROTOBUF,
                 .kafka_props = (const char *const *)c->kafka_props, .n_kafka_props = c->n_kafka_props},
        .join = {.window_ms = c->trainer_join_window_ms, .max_pending = (size_t)c->trainer_max_pending,
                 .neg_per_pos = (int)c->trainer_neg_per_pos, .seed = 1},
        .trainer = {.tower = tc, .batch_size = (int)c->trainer_batch, .seed = 1,
                    .optim = {.kind = MMR_TOWER_OPT_ADAGRAD, .lr = (float)c->trainer_lr,
                              .lr_sparse = (float)c->trainer_lr_sparse, .adagrad_init = 0.1f,
                              .adagrad_eps = 1e-8f}},
        .checkpoint_path = ckpt,
        .publish_interval_ms = c->trainer_publish_ms,
        .publish_examples = (uint64_t)c->trainer_publish_examples,
        .checkpoint_interval_ms = c->trainer_checkpoint_ms,
        .nice = (int)c->trainer_nice,
    };
    if ((st = mmr_trainerd_start(&tdc, d->fs, d->reg, &d->trainer, err)) != MMR_OK) return st;
    mmr_log(MMR_LOG_INFO, "mmrecd", "training online from %s%s%s (group %s), publishing every %ld ms",
            c->events_topic, *c->impressions_topic ? " and " : "", c->impressions_topic,
            c->trainer_group, c->trainer_publish_ms);
    return MMR_OK;
}

static int write_ready_file(const char *path, int grpc_port, int metrics_port) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "grpc_port=%d\nmetrics_port=%d\n", grpc_port, metrics_port);
    if (fclose(f) != 0) return -1;
    return rename(tmp, path);
}

static mmr_status_t start(daemon_state_t *d, mmr_err_t *err) {
    mmr_config_t *c = &d->cfg;
    if (strcmp(c->ingest_format, "json") != 0 && strcmp(c->ingest_format, "protobuf") != 0)
        return mmr_err_set(err, MMR_ERR_INVALID, "ingest.format must be protobuf or json, not '%s'",
                           c->ingest_format);
    char rocks[4096] = "";
    for (size_t i = 0, len = 0; i < c->n_rocksdb_props; i++) {
        int w = snprintf(rocks + len, sizeof rocks - len, "%s%s", i ? ";" : "", c->rocksdb_props[i]);
        if (w < 0 || (size_t)w >= sizeof rocks - len)
            return mmr_err_set(err, MMR_ERR_INVALID, "rocksdb.* options longer than %zu bytes", sizeof rocks);
        len += (size_t)w;
    }
    mmr_fstore_opts_t fo = {.path = c->store_path, .user_ring = (uint32_t)c->store_user_ring,
                            .item_cache = (size_t)c->store_item_cache,
                            .sync_writes = (int)c->store_sync, .rocksdb_options = rocks};
    mmr_status_t st = mmr_fstore_open(&fo, &d->fs, err);
    if (st != MMR_OK) return st;
    mmr_log(MMR_LOG_INFO, "mmrecd", "feature store open at %s", c->store_path);

    if (c->ingest_enabled) {
        mmr_ingest_conf_t ic = {
            .brokers = c->kafka_brokers, .group_id = c->ingest_group,
            .events_topic = c->events_topic, .dlq_topic = c->dlq_topic,
            .items_topic = c->items_topic,
            .emb_dims = {(uint32_t)c->dim_text, (uint32_t)c->dim_image, (uint32_t)c->dim_video},
            .format = strcmp(c->ingest_format, "json") == 0 ? MMR_INGEST_FORMAT_JSON
                                                             : MMR_INGEST_FORMAT_PROTOBUF,
            .batch_max = (uint32_t)c->ingest_batch_max, .batch_ms = (uint32_t)c->ingest_batch_ms,
            .queue_max = (uint32_t)c->ingest_queue_max,
            .pause_after_ms = (uint32_t)c->ingest_pause_after_ms,
            .kafka_props = (const char *const *)c->kafka_props, .n_kafka_props = c->n_kafka_props,
        };
        if ((st = mmr_ingest_new(&ic, d->fs, &d->ing, err)) != MMR_OK) return st;
        if ((st = mmr_ingest_start(d->ing, err)) != MMR_OK) return st;
        mmr_log(MMR_LOG_INFO, "mmrecd", "ingesting %s%s%s from %s (group %s)", c->events_topic,
                *c->items_topic ? " and " : "", c->items_topic, c->kafka_brokers, c->ingest_group);
    }

    if ((c->serve_enabled || c->trainer_enabled) && (st = start_models(d, err)) != MMR_OK) return st;

    int grpc_port = 0, metrics_port = 0;
    if (c->serve_enabled) {
        int client_auth = mmr_server_client_auth_parse(c->grpc_tls_client_auth);
        if (client_auth < 0)
            return mmr_err_set(err, MMR_ERR_INVALID,
                               "grpc.tls_client_auth must be none, request or require, not '%s'",
                               c->grpc_tls_client_auth);
        if (*c->impressions_topic) {
            mmr_impressions_conf_t pc = {
                .brokers = c->kafka_brokers, .topic = c->impressions_topic,
                .max_buffered = (uint32_t)c->impressions_max_buffered,
                .kafka_props = (const char *const *)c->kafka_props, .n_kafka_props = c->n_kafka_props};
            if ((st = mmr_impressions_new(&pc, &d->imps, err)) != MMR_OK) return st;
        }
        mmr_ranker_conf_t rc = {.max_candidates = (uint32_t)c->rank_max_candidates,
                                .impression_fn = d->imps ? mmr_impressions_log : NULL,
                                .impression_opaque = d->imps,
                                .registry = d->reg};
        if ((st = mmr_ranker_new(&rc, d->fs, &d->ranker, err)) != MMR_OK) return st;
        mmr_server_conf_t sc = {.listen = c->grpc_listen, .threads = (int)c->grpc_threads,
                                .max_inflight = (uint32_t)c->grpc_max_inflight,
                                .queue_target_ms = (uint32_t)c->grpc_queue_target_ms,
                                .max_message_bytes = (uint32_t)c->grpc_max_message_bytes,
                                .tls_cert_path = c->grpc_tls_cert, .tls_key_path = c->grpc_tls_key,
                                .tls_client_ca_path = c->grpc_tls_client_ca,
                                .tls_client_auth = (mmr_server_client_auth_t)client_auth,
                                .auth_tokens_file = c->grpc_auth_tokens_file};
        if ((st = mmr_server_new(&sc, &d->srv, err)) != MMR_OK) return st;
        if ((st = mmr_server_add_method(d->srv, "/mmrec.v1.Ranker/Rank", mmr_ranker_handle_rank,
                                        d->ranker, err)) != MMR_OK ||
            (st = mmr_admin_register(d->srv, d->reg, err)) != MMR_OK ||
            (d->ing && (st = mmr_server_add_health_service(d->srv, INGEST_HEALTH, err)) != MMR_OK))
            return st;
        if ((st = mmr_server_start(d->srv, err)) != MMR_OK) return st;
        mmr_server_set_serving(d->srv, 1);
        grpc_port = mmr_server_port(d->srv);
        mmr_log(MMR_LOG_INFO, "mmrecd", "serving gRPC on port %d", grpc_port);
    }
    if (*c->metrics_listen) {
        if ((st = mmr_metrics_new(c->metrics_listen, render_metrics, d, &d->metrics, err)) != MMR_OK)
            return st;
        metrics_port = mmr_metrics_port(d->metrics);
        mmr_log(MMR_LOG_INFO, "mmrecd", "metrics on http port %d /metrics", metrics_port);
    }
    if (*c->ready_file && write_ready_file(c->ready_file, grpc_port, metrics_port) != 0)
        return mmr_err_set(err, MMR_ERR_IO, "cannot write ready_file %s", c->ready_file);
    return MMR_OK;
}

/* Health service INGEST_HEALTH is NOT_SERVING while store writes fail (a full disk):
 * serving goes on from the store, but probes and operators see that ingestion stopped. */
static void sync_ingest_health(daemon_state_t *d) {
    if (!d->srv || !d->ing) return;
    mmr_ingest_stats_t s;
    mmr_ingest_get_stats(d->ing, &s);
    mmr_server_set_service_serving(d->srv, INGEST_HEALTH, !s.store_failing);
}

/* Stops in dependency order; safe on a partially started daemon. */
static void stop(daemon_state_t *d) {
    if (d->srv) {
        mmr_server_set_serving(d->srv, 0);
        if (d->cfg.shutdown_drain_ms > 0) { /* lame duck: still serving, no longer ready */
            mmr_log(MMR_LOG_INFO, "mmrecd", "draining for %ld ms", d->cfg.shutdown_drain_ms);
            struct timespec ts = {d->cfg.shutdown_drain_ms / 1000, (d->cfg.shutdown_drain_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        }
        mmr_server_shutdown(d->srv, (int)d->cfg.shutdown_grace_ms);
    }
    mmr_trainerd_stop(d->trainer); /* final publish and checkpoint */
    mmr_ingest_free(d->ing); /* flushes the pending batch and commits offsets */
    mmr_metrics_free(d->metrics);
    mmr_server_free(d->srv);
    mmr_ranker_free(d->ranker);
    mmr_impressions_free(d->imps); /* after the server: no Rank can log any more */
    mmr_registry_free(d->reg);     /* after the ranker and the trainer: no reference left */
    mmr_fstore_close(d->fs);
}

static void reload(daemon_state_t *d) {
    if (!d->config_path) return;
    mmr_config_t fresh;
    mmr_config_init(&fresh);
    mmr_err_t err = {0};
    if (mmr_config_load_file(&fresh, d->config_path, &err) != MMR_OK) {
        mmr_log(MMR_LOG_ERROR, "mmrecd", "reload: %s (keeping the running config)", err.msg);
    } else {
        int lvl = mmr_log_level_parse(fresh.log_level);
        if (lvl >= 0) mmr_log_set_level((mmr_log_level_t)lvl);
        mmr_log(MMR_LOG_INFO, "mmrecd", "reloaded %s: log.level=%s", d->config_path, fresh.log_level);
    }
    mmr_config_free(&fresh);
}

int main(int argc, char **argv) {
    daemon_state_t d = {0};
    mmr_config_init(&d.cfg);
    mmr_err_t err = {0};
    int help = 0;
    if (argc == 2 && strcmp(argv[1], "--help-markdown") == 0) {
        mmr_config_print_markdown(stdout);
        mmr_config_free(&d.cfg);
        return 0;
    }
    if (mmr_config_parse_args(&d.cfg, argc, argv, &help, &err) != MMR_OK) {
        fprintf(stderr, "mmrecd: %s\n", err.msg);
        mmr_config_free(&d.cfg);
        return 2;
    }
    if (help) {
        mmr_config_print_help(stdout, "mmrecd");
        mmr_config_free(&d.cfg);
        return 0;
    }
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--config") == 0) d.config_path = argv[i + 1];
    int lvl = mmr_log_level_parse(d.cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "mmrecd: log.level must be debug, info, warn or error\n");
        return 2;
    }
    mmr_log_set_level((mmr_log_level_t)lvl);

    /* Block the signals we handle before any thread exists, so all threads inherit it. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 0;
    if (start(&d, &err) != MMR_OK) {
        mmr_log(MMR_LOG_ERROR, "mmrecd", "start-up failed: %s", err.msg);
        rc = 1;
    } else {
        mmr_log(MMR_LOG_INFO, "mmrecd", "ready");
        for (;;) {
            struct timespec tick = {1, 0};
            int sig = sigtimedwait(&set, NULL, &tick);
            if (sig < 0) { /* a second without a signal */
                sync_ingest_health(&d);
                continue;
            }
            if (sig == SIGHUP) { reload(&d); continue; }
            mmr_log(MMR_LOG_INFO, "mmrecd", "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
    }
    stop(&d);
    mmr_log(MMR_LOG_INFO, "mmrecd", "stopped");
    mmr_config_free(&d.cfg);
    return rc;
}
