/* kconf.h — librdkafka configuration shared by the engine's Kafka clients (streaming/ and
 * the replay reader in src/replay_kafka.c):
 * log and error callbacks routed into mmr_log, and property setting with messages that
 * name the key but never the value (values may be secrets). */
#ifndef MMR_KCONF_H
#define MMR_KCONF_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>

#include "mmr_err.h"

/* Routes the client's logs and errors into mmr_log (module "kafka"). */
void mmr_kconf_callbacks(rd_kafka_conf_t *c);
/* Sets one property. Errors: MMR_ERR_INVALID with librdkafka's message. */
mmr_status_t mmr_kconf_set(rd_kafka_conf_t *c, const char *key, const char *val, mmr_err_t *err);
/* Applies "key=value" pass-through properties meant for `role` ("consumer" or
 * "producer"): plain ones and "<role>.key=value"; the other role's are skipped. */
mmr_status_t mmr_kconf_set_props(rd_kafka_conf_t *c, const char *const *props, size_t n,
                                 const char *role, mmr_err_t *err);

/* Applies a rebalance event once the caller has set the start offsets of assigned
 * partitions (or flushed what it holds before a revoke): incremental (un)assign under the
 * COOPERATIVE protocol, eager otherwise; any other err unassigns everything. *assigned
 * tracks the partitions held; errors are logged under module. */
void mmr_kconf_rebalance_apply(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts, atomic_int *assigned,
                               const char *module);

#endif
