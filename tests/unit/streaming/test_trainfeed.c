/* test_trainfeed.c — the trainer's consumer on librdkafka's mock cluster: events and
 * impressions reach the joiner with request_ids intact, bad messages are skipped and
 * counted, and a feed restarted from its saved offsets reads nothing twice. */
#include "ingest_test.h"
#include "mmr_trainfeed.h"

#define IT_IMPRESSIONS "mmrec.impressions"

typedef struct {
    int pos, neg, arm_treat;
} tally_t;

static void tally(void *opaque, const mmr_joined_t *j) {
    tally_t *t = opaque;
    if (j->label > 0.5f) t->pos++;
    else t->neg++;
    if (strcmp(j->arm, "treat") == 0) t->arm_treat++;
}

static void send_event(it_env_t *e, const char *user, const char *item, int type, const char *req,
                       int64_t ts) {
    Mmrec__V1__Event ev = MMREC__V1__EVENT__INIT;
    ev.user_id = (char *)user, ev.item_id = (char *)item, ev.request_id = (char *)req;
    ev.type = (Mmrec__V1__EventType)type, ev.ts_ms = ts, ev.value = 1;
    uint8_t buf[256];
    it_send(e, 0, user, buf, mmrec__v1__event__pack(&ev, buf), IT_GOOD);
}

static void send_impression(it_env_t *e, const char *req, const char *user, int n, int64_t ts) {
    char ids[8][16], *p[8];
    for (int i = 0; i < n; i++) { snprintf(ids[i], sizeof ids[i], "i%d", i); p[i] = ids[i]; }
    Mmrec__V1__Impression imp = MMREC__V1__IMPRESSION__INIT;
    imp.request_id = (char *)req, imp.user_id = (char *)user, imp.item_ids = p, imp.n_item_ids = (size_t)n;
    imp.model_version = 3, imp.experiment_arm = "treat", imp.ts_ms = ts;
    uint8_t buf[512];
    it_send_to(e, IT_IMPRESSIONS, 0, user, buf, mmrec__v1__impression__pack(&imp, buf), IT_GOOD);
}

/* Polls until n messages were read (or the deadline); returns the count. */
static int drain(mmr_trainfeed_t *f, int want) {
    int got = 0;
    mmr_err_t err = {0};
    for (int64_t end = mmr_now_ms() + IT_WAIT_MS; got < want && mmr_now_ms() < end;) {
        int n = mmr_trainfeed_poll(f, 100, 64, &err);
        CHECK_MSG(n >= 0, "poll: %s", err.msg);
        got += n;
    }
    return got;
}

static mmr_trainfeed_t *feed_new(it_env_t *e, mmr_joiner_t *j, const void *blob, size_t len) {
    static const char *const props[] = {"consumer.session.timeout.ms=6000",
                                        "consumer.heartbeat.interval.ms=500"};
    mmr_trainfeed_conf_t c = {.brokers = e->bootstraps, .group_id = "trainer",
                              .events_topic = IT_EVENTS, .impressions_topic = IT_IMPRESSIONS,
                              .kafka_props = props, .n_kafka_props = 2};
    mmr_trainfeed_t *f;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_trainfeed_new(&c, j, &f, &err) == MMR_OK, "%s", err.msg);
    if (blob) CHECK_MSG(mmr_trainfeed_set_offsets(f, blob, len, &err) == MMR_OK, "%s", err.msg);
    CHECK_MSG(mmr_trainfeed_start(f, &err) == MMR_OK, "%s", err.msg);
    return f;
}

int main(void) {
    it_log_level(MMR_LOG_WARN);
    it_env_t e;
    it_env_init(&e);
    CHECK(rd_kafka_mock_topic_create(e.mc, IT_IMPRESSIONS, 1, 1) == 0);
    int64_t t0 = 1700000000000;
    send_impression(&e, "r1", "u1", 4, t0);
    send_event(&e, "u1", "i2", 2 /* CLICK */, "r1", t0 + 10);
    send_event(&e, "u1", "i3", 3 /* LIKE */, "", t0 + 20);
    static const char junk[] = "not protobuf \xff\xff";
    it_send(&e, 0, "u1", junk, sizeof junk, IT_GOOD);
    it_flush(&e);

    tally_t t = {0};
    mmr_joiner_t *j;
    mmr_err_t err = {0};
    CHECK(mmr_joiner_new(&(mmr_joiner_conf_t){.window_ms = 1000}, tally, &t, &j, &err) == MMR_OK);
    mmr_trainfeed_t *f = feed_new(&e, j, NULL, 0);
    CHECK(drain(f, 4) == 4);
    mmr_trainfeed_stats_t st;
    mmr_trainfeed_get_stats(f, &st);
    CHECK_MSG(st.events == 2 && st.impressions == 1 && st.undecodable == 1,
              "events %llu impressions %llu undecodable %llu", (unsigned long long)st.events,
              (unsigned long long)st.impressions, (unsigned long long)st.undecodable);
    mmr_joiner_flush(j);
    /* The click carries the impression's arm only when the impression was read first: the
     * two topics have no order between them (see mmr_joiner.h). */
    CHECK_MSG(t.pos == 2 && t.neg == 3 && (t.arm_treat == 4 || t.arm_treat == 3), "pos %d neg %d treat %d",
              t.pos, t.neg, t.arm_treat);
    void *blob;
    size_t len;
    CHECK(mmr_trainfeed_offsets(f, &blob, &len, &err) == MMR_OK);
    CHECK_MSG(strstr(blob, IT_EVENTS " 0 3\n") && strstr(blob, IT_IMPRESSIONS " 0 1\n"), "%.*s", (int)len, (char *)blob);
    mmr_trainfeed_free(f);

    /* Restart from the saved offsets: only the new event is read. */
    send_event(&e, "u2", "i1", 2, "", t0 + 30);
    it_flush(&e);
    t = (tally_t){0};
    f = feed_new(&e, j, blob, len);
    CHECK(drain(f, 1) == 1);
    for (int k = 0; k < 5; k++) CHECK(mmr_trainfeed_poll(f, 100, 64, &err) == 0); /* nothing more */
    mmr_trainfeed_get_stats(f, &st);
    CHECK(st.events == 1 && st.impressions == 0 && t.pos == 1);
    mmr_trainfeed_free(f);
    free(blob);

    /* A damaged blob is refused. */
    mmr_trainfeed_t *g;
    mmr_trainfeed_conf_t c = {.brokers = e.bootstraps, .group_id = "x", .events_topic = IT_EVENTS};
    CHECK(mmr_trainfeed_new(&c, j, &g, &err) == MMR_OK);
    CHECK(mmr_trainfeed_set_offsets(g, "mmrec.events zero 1\n", 20, &err) == MMR_ERR_CORRUPT);
    CHECK(mmr_trainfeed_set_offsets(g, "mmrec.events 0 1", 16, &err) == MMR_ERR_CORRUPT);
    mmr_trainfeed_free(g);
    mmr_joiner_free(j);
    it_env_free(&e);
    printf("test_trainfeed: ok\n");
    return 0;
}
