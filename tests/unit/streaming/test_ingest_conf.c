/* test_ingest_conf.c — mmr_ingest_new argument checking (topics, emb_dims) and the
 * librdkafka property pass-through (scoping, unknown properties, bad values), without a
 * broker: creating the clients does not connect. Uses the fake store, never written here. */
#include <string.h>

#include "check.h"
#include "fake_fstore.h"
#include "mmr_ingest.h"
#include "mmr_log.h"

static mmr_ingest_conf_t base(void) {
    return (mmr_ingest_conf_t){.brokers = "127.0.0.1:1",
                               .group_id = "g",
                               .events_topic = "mmrec.events",
                               .dlq_topic = "mmrec.events.dlq"};
}

/* mmr_ingest_new must fail with `code` and a message containing `needle`. */
static void expect_fail(const char *name, const mmr_ingest_conf_t *c, mmr_fstore_t *fs,
                        mmr_status_t code, const char *needle) {
    mmr_ingest_t *ing = (mmr_ingest_t *)1;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_ingest_new(c, fs, &ing, &err);
    CHECK_MSG(st == code, "%s: got %s (%s), want %s", name, mmr_status_str(st), err.msg,
              mmr_status_str(code));
    CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", name, err.msg,
              needle);
    CHECK_MSG(ing == NULL, "%s: *out must be NULL on failure", name);
}

static void expect_props_fail(const char *name, mmr_fstore_t *fs, const char *prop,
                              const char *needle) {
    mmr_ingest_conf_t c = base();
    const char *props[] = {"socket.timeout.ms=5000", prop};
    c.kafka_props = props;
    c.n_kafka_props = 2;
    expect_fail(name, &c, fs, MMR_ERR_INVALID, needle);
}

int main(void) {
    mmr_log_set_level(MMR_LOG_ERROR);
    mmr_fstore_t *fs = fake_fstore_new();
    mmr_ingest_conf_t c;

    c = base();
    expect_fail("NULL conf", NULL, fs, MMR_ERR_INVALID, "NULL");
    expect_fail("NULL store", &c, NULL, MMR_ERR_INVALID, "NULL");
    c.brokers = "";
    expect_fail("no brokers", &c, fs, MMR_ERR_INVALID, "required");
    c = base();
    c.dlq_topic = NULL;
    expect_fail("no DLQ", &c, fs, MMR_ERR_INVALID, "required");
    c = base();
    c.dlq_topic = c.events_topic;
    expect_fail("DLQ = events", &c, fs, MMR_ERR_INVALID, "differ");
    c = base();
    c.format = (mmr_ingest_format_t)7;
    expect_fail("bad format", &c, fs, MMR_ERR_INVALID, "format");
    c = base();
    c.max_future_ms = -1;
    expect_fail("negative max_future_ms", &c, fs, MMR_ERR_INVALID, "max_future_ms");
    c = base();
    c.n_kafka_props = 1;
    expect_fail("props NULL", &c, fs, MMR_ERR_INVALID, "kafka_props");
    c = base();
    c.items_topic = c.events_topic;
    expect_fail("items = events", &c, fs, MMR_ERR_INVALID, "items_topic");
    c = base();
    c.items_topic = "mmrec.events.dlq";
    expect_fail("items = DLQ", &c, fs, MMR_ERR_INVALID, "items_topic");
    c = base();
    c.items_topic = "mmrec.items";
    c.emb_dims[MMR_MODALITY_VIDEO] = MMR_EMB_DIM_MAX + 1;
    expect_fail("emb_dims too wide", &c, fs, MMR_ERR_INVALID, "emb_dims[2]");
    printf("conf checks ok\n");

    /* librdkafka's own message comes back; a value is never echoed by our part. */
    expect_props_fail("unknown property", fs, "no.such.property=1",
                      "No such configuration property");
    expect_props_fail("unknown consumer property", fs, "consumer.no.such=1", "no.such");
    expect_props_fail("unknown producer property", fs, "producer.no.such=1", "no.such");
    expect_props_fail("bad value", fs, "session.timeout.ms=soon", "session.timeout.ms");
    expect_props_fail("not key=value", fs, "sasl.password", "kafka_props[1] is not key=value");
    expect_props_fail("empty key", fs, "=x", "kafka_props[1] is not key=value");
    printf("property errors ok\n");

    /* Scoped and shared properties are accepted; the invariants are forced, not rejected. */
    c = base();
    const char *props[] = {"consumer.session.timeout.ms=6000", "producer.linger.ms=1",
                           "socket.timeout.ms=5000", "enable.auto.commit=true",
                           "client.id=custom"};
    c.kafka_props = props;
    c.n_kafka_props = sizeof props / sizeof props[0];
    c.format = MMR_INGEST_FORMAT_JSON;
    c.items_topic = "mmrec.items";
    c.emb_dims[MMR_MODALITY_TEXT] = MMR_EMB_DIM_MAX;
    mmr_ingest_t *ing = NULL;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_ingest_new(&c, fs, &ing, &err) == MMR_OK, "valid props: %s", err.msg);
    mmr_ingest_stats_t s;
    mmr_ingest_get_stats(ing, &s);
    CHECK(s.consumed == 0 && s.applied == 0 && s.batches == 0 && s.items_applied == 0);
    mmr_ingest_stop(ing); /* never started: a no-op */
    mmr_ingest_free(ing);
    c.items_topic = ""; /* "" = no items, like NULL */
    CHECK_MSG(mmr_ingest_new(&c, fs, &ing, &err) == MMR_OK, "empty items_topic: %s", err.msg);
    mmr_ingest_free(ing);
    mmr_ingest_free(NULL);
    printf("scoped properties, free without start ok\n");

    fake_fstore_free(fs);
    return 0;
}
