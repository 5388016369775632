/* kconf.c — librdkafka configuration shared by the streaming clients (see kconf.h). */
#include "kconf.h"

#include <string.h>

#include "mmr_log.h"

/* syslog levels → mmr levels; librdkafka logs from its own threads. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    mmr_log_level_t l = level <= 3 ? MMR_LOG_ERROR
                        : level == 4 ? MMR_LOG_WARN
                        : level <= 6 ? MMR_LOG_INFO
                                     : MMR_LOG_DEBUG;
    mmr_log(l, "kafka", "%s %s: %s", rd_kafka_name(rk), fac, buf);
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        mmr_log(MMR_LOG_ERROR, "kafka", "%s fatal: %s", rd_kafka_name(rk), why);
        return;
    }
    mmr_log(MMR_LOG_WARN, "kafka", "%s %s: %s", rd_kafka_name(rk),
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

void mmr_kconf_callbacks(rd_kafka_conf_t *c) {
    rd_kafka_conf_set_log_cb(c, on_kafka_log);
    rd_kafka_conf_set_error_cb(c, on_kafka_error);
}

mmr_status_t mmr_kconf_set(rd_kafka_conf_t *c, const char *key, const char *val, mmr_err_t *err) {
    char errstr[512];
    if (rd_kafka_conf_set(c, key, val, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return mmr_err_set(err, MMR_ERR_INVALID, "kafka property %s: %s", key, errstr);
    return MMR_OK;
}

/* Applies the pass-through properties meant for `role` ("consumer" or "producer"): plain
 * ones and "<role>.key=value". Values may be secrets: our messages name the key, never the
 * value (librdkafka quotes a value only when it is not one of an enum's names). */
mmr_status_t mmr_kconf_set_props(rd_kafka_conf_t *c, const char *const *props, size_t n,
                                 const char *role, mmr_err_t *err) {
    for (size_t i = 0; i < n; i++) {
        const char *kv = props[i];
        const char *eq = kv ? strchr(kv, '=') : NULL;
        char key[256];
        if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key)
            return mmr_err_set(err, MMR_ERR_INVALID, "kafka_props[%zu] is not key=value", i);
        memcpy(key, kv, (size_t)(eq - kv));
        key[eq - kv] = '\0';
        const char *k = key;
        size_t rl = strlen(role);
        if (!strncmp(k, "consumer.", 9) || !strncmp(k, "producer.", 9)) {
            if (strncmp(k, role, rl) != 0) continue; /* the other client's */
            k += rl + 1;
        }
        mmr_status_t st = mmr_kconf_set(c, k, eq + 1, err);
        if (st) return st;
    }
    return MMR_OK;
}

void mmr_kconf_rebalance_apply(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts, atomic_int *assigned,
                               const char *module) {
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (coop) error = rd_kafka_incremental_assign(rk, parts);
        else e = rd_kafka_assign(rk, parts);
        if (coop) atomic_fetch_add(assigned, parts->cnt);
        else atomic_store(assigned, parts->cnt);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && coop) {
        error = rd_kafka_incremental_unassign(rk, parts);
        atomic_fetch_sub(assigned, parts->cnt);
    } else {
        e = rd_kafka_assign(rk, NULL);
        atomic_store(assigned, 0);
    }
    if (error) {
        mmr_log(MMR_LOG_ERROR, module, "rebalance assign: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (e) {
        mmr_log(MMR_LOG_ERROR, module, "rebalance assign: %s", rd_kafka_err2str(e));
    }
}
