/* mmr_config.h — mmrecd's configuration: one table (name, type, default, range,
 * reloadable, description) from which parsing, `--help` and docs/CONFIGURATION.md come.
 *
 * Sources, later wins: built-in defaults, the config file (`key = value` lines, `#`
 * comments), command-line `--key=value` / `--key value`. Keys starting with `kafka.` and
 * `rocksdb.` are passed through to librdkafka / RocksDB unchanged (prefix stripped). */
#ifndef MMR_CONFIG_H
#define MMR_CONFIG_H

#include <stdio.h>

#include "mmr_err.h"

#define MMR_CONFIG_MAX_PASSTHROUGH 64

typedef struct mmr_config {
    char *log_level;
    char *store_path;
    long store_user_ring;
    long store_item_cache;
    long store_sync;
    long ingest_enabled;
    char *kafka_brokers;
    char *ingest_group;
    char *events_topic;
    char *dlq_topic;
    char *items_topic;
    long dim_text;
    long dim_image;
    long dim_video;
    char *ingest_format;
    long ingest_batch_max;
    long ingest_batch_ms;
    long ingest_queue_max;
    long ingest_pause_after_ms;
    char *impressions_topic;
    long impressions_max_buffered;
    long serve_enabled;
    char *grpc_listen;
    long grpc_threads;
    long grpc_max_inflight;
    long grpc_queue_target_ms;
    long grpc_max_message_bytes;
    char *grpc_tls_cert;
    char *grpc_tls_key;
    char *grpc_tls_client_ca;
    char *grpc_tls_client_auth;
    char *grpc_auth_tokens_file;
    long rank_max_candidates;
    long shutdown_drain_ms;
    long shutdown_grace_ms;
    char *metrics_listen;
    long trainer_enabled;
    char *trainer_group;
    long trainer_publish_ms;
    long trainer_publish_examples;
    long trainer_checkpoint_ms;
    long trainer_nice;
    long trainer_batch;
    double trainer_lr;
    double trainer_lr_sparse;
    long trainer_neg_per_pos;
    long trainer_join_window_ms;
    long trainer_max_pending;
    char *model_dir;
    long model_keep;
    double model_delta_max;
    char *model_experiments;
    long model_hidden;
    long model_dim;
    long model_history;
    long model_id_buckets;
    long retrieval_exact_below;
    double retrieval_recall;
    long retrieval_rerank;
    double retrieval_max_scan;
    char *ready_file;
    /* "key=value" with the kafka./rocksdb. prefix stripped; owned */
    char *kafka_props[MMR_CONFIG_MAX_PASSTHROUGH];
    size_t n_kafka_props;
    char *rocksdb_props[MMR_CONFIG_MAX_PASSTHROUGH];
    size_t n_rocksdb_props;
} mmr_config_t;

/* Fills cfg with defaults. Free with mmr_config_free. */
void mmr_config_init(mmr_config_t *cfg);
void mmr_config_free(mmr_config_t *cfg);

/* Sets one key from text, checking type and range. Errors: MMR_ERR_INVALID naming the key. */
mmr_status_t mmr_config_set(mmr_config_t *cfg, const char *key, const char *value, mmr_err_t *err);

/* Reads a config file; errors name file:line. */
mmr_status_t mmr_config_load_file(mmr_config_t *cfg, const char *path, mmr_err_t *err);

/* Applies argv: `--config FILE` is read first, then `--key=value` / `--key value` pairs in
 * order. Sets *help when --help was given. Errors: MMR_ERR_INVALID with the offending arg. */
mmr_status_t mmr_config_parse_args(mmr_config_t *cfg, int argc, char **argv, int *help,
                                   mmr_err_t *err);

/* Writes usage with every option (for --help). */
void mmr_config_print_help(FILE *out, const char *prog);
/* Writes the Markdown reference (docs/CONFIGURATION.md is this output). */
void mmr_config_print_markdown(FILE *out);

#endif
