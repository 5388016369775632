/* trainerd.c — the trainer and publisher threads of mmrecd (see mmr_trainerd.h). */
#include "mmr_trainerd.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmr_cpu.h"
#include "mmr_exbuild.h"
#include "mmr_log.h"
#include "mmr_time.h"

#define LOG_MOD "trainer"
#define POLL_MS 50
#define POLL_MAX_MSGS 512

const double mmr_trainerd_fresh_le[MMR_TRAINERD_FRESH_BUCKETS - 1] = {
    50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000, 60000, 300000};

/* A snapshot on its way to the registry, with the event times (INT64_MIN: not counted for
 * freshness) of the examples it learned from. */
typedef struct pub_job {
    mmr_tower_t *snap; /* NULL: no job */
    uint64_t examples;
    int64_t *ts;
    size_t n;
    int64_t oldest, newest, t0;
} pub_job_t;

struct mmr_trainerd {
    mmr_trainerd_conf_t conf;
    char *checkpoint_path;
    mmr_fstore_t *fs;
    mmr_registry_t *reg;
    mmr_trainer_t *tr;
    mmr_joiner_t *joiner;
    mmr_exbuild_t *xb;
    mmr_trainfeed_t *feed;
    pthread_t thread, pub_thread;
    atomic_bool stop;
    /* the publisher thread (see hand_over); guarded by pub_mu */
    pthread_mutex_t pub_mu;
    pthread_cond_t pub_cv;
    pub_job_t job;
    bool pub_busy, pub_quit, pub_started;
    uint64_t pub_done; /* version published since the trainer thread last looked; 0: none */
    /* trainer thread only */
    uint64_t since_publish;              /* examples added since the last publish */
    int64_t oldest_ts, newest_ts;        /* event times of those examples */
    int64_t *pending_ts;                 /* [since_publish] their event times (for freshness) */
    size_t pending_cap;
    int64_t last_publish_ms, last_checkpoint_ms;
    /* guarded by mu: the copy get_stats reads */
    pthread_mutex_t mu;
    mmr_trainerd_stats_t st;
};

/* Joiner emit: one labelled pair → example → trainer. */
static void on_joined(void *opaque, const mmr_joined_t *j) {
    mmr_trainerd_t *td = opaque;
    if (*j->arm) mmr_registry_count_example(td->reg, j->arm, j->label > 0.5f);
    mmr_example_t ex;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_exbuild_make(td->xb, j, &ex, &err);
    if (st == MMR_OK) st = mmr_trainer_add(td->tr, &ex, &err);
    if (st != MMR_OK) {
        pthread_mutex_lock(&td->mu);
        uint64_t n = ++td->st.example_errors;
        pthread_mutex_unlock(&td->mu);
        if ((n & (n - 1)) == 0) /* 1, 2, 4, 8...: visible without flooding the log */
            mmr_log(MMR_LOG_WARN, LOG_MOD, "example %s/%s skipped (%llu so far): %s", j->user_id,
                    j->item_id, (unsigned long long)n, err.msg);
        return;
    }
    /* Freshness counts what the stream teaches as it happens: positives and their sampled
     * negatives. An impression's negative is decided only after the join window by design,
     * so counting it would measure trainer.join_window_ms, not the pipeline. */
    int timely = j->label > 0.5f || j->sampled;
    if (td->since_publish >= td->pending_cap) { /* best effort: no room, no sample */
        size_t cap = td->pending_cap ? 2 * td->pending_cap : 4096;
        int64_t *p = realloc(td->pending_ts, cap * sizeof *p);
        if (p) td->pending_ts = p, td->pending_cap = cap;
    }
    if (td->since_publish < td->pending_cap) td->pending_ts[td->since_publish] = timely ? j->ts_ms : INT64_MIN;
    if (td->since_publish++ == 0 || j->ts_ms < td->oldest_ts) td->oldest_ts = j->ts_ms;
    if (j->ts_ms > td->newest_ts || td->since_publish == 1) td->newest_ts = j->ts_ms;
}

/* Catalog items nobody has touched yet must be sampled negatives too, or the model never
 * learns to rank them below what a user engages with (the stream alone only carries items
 * someone touched). The pool is fed from a served version's item index: all of it when it
 * fits the pool, else an evenly strided sample from a random offset. */
static void pool_add_catalog(mmr_trainerd_t *td, uint64_t version) {
    mmr_model_ref_t ref;
    mmr_err_t err = {0};
    if (mmr_registry_acquire(td->reg, version, &ref, &err) != MMR_OK) return; /* nothing served yet */
    size_t n = mmr_model_item_count(ref.model), cap = mmr_joiner_pool_capacity(td->joiner);
    size_t stride = n > cap ? (n + cap - 1) / cap : 1, first = n > cap ? (size_t)mmr_now_ms() % stride : 0;
    for (size_t r = first; r < n; r += stride) mmr_joiner_add_item(td->joiner, mmr_model_item_id(ref.model, r));
    mmr_registry_release(td->reg, &ref);
}

/* Publishing is split in two so that training never stops for it. The trainer thread
 * takes a snapshot of the weights (a copy) and hands it over with the event times of what
 * it learned (hand_over); the publisher thread writes the model file, builds the item
 * index and swaps the version in (publish_job: hundreds of ms for a large model). Only one
 * snapshot is in hand at a time: a publish that falls due while one is running waits for
 * the next round, so a slow disk lowers the publish rate instead of piling up snapshots.
 * Afterwards the trainer thread takes the published version's catalog into its negative
 * pool and drops its cached items (after_publish): those are its own. */
static void publish_job(mmr_trainerd_t *td, pub_job_t *job) {
    mmr_err_t err = {0};
    uint64_t version = 0;
    mmr_status_t st = mmr_registry_publish(td->reg, job->snap, job->examples, &version, &err);
    int64_t now = mmr_now_ms();
    pthread_mutex_lock(&td->mu);
    if (st == MMR_OK) {
        td->st.publishes++;
        td->st.version = version;
        td->st.fresh_oldest_ms = now - job->oldest;
        td->st.fresh_newest_ms = now - job->newest;
        td->st.publish_ms = now - job->t0;
        for (size_t i = 0; i < job->n; i++) {
            if (job->ts[i] == INT64_MIN) continue; /* an impression's negative */
            double ms = (double)(now - job->ts[i]);
            int b = 0;
            while (b < MMR_TRAINERD_FRESH_BUCKETS - 1 && ms > mmr_trainerd_fresh_le[b]) b++;
            td->st.fresh_hist[b]++;
            td->st.fresh_sum_ms += ms;
        }
    } else {
        td->st.publish_errors++;
    }
    pthread_mutex_unlock(&td->mu);
    if (st != MMR_OK)
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "publish failed: %s", err.msg);
    else
        mmr_log(MMR_LOG_DEBUG, LOG_MOD, "published version %llu (%llu examples) in %lld ms",
                (unsigned long long)version, (unsigned long long)job->examples, (long long)(now - job->t0));
    free(job->ts);
    pthread_mutex_lock(&td->pub_mu);
    if (st == MMR_OK) td->pub_done = version;
    pthread_mutex_unlock(&td->pub_mu);
}

/* Names the thread; background threads yield the CPU to serving when they compete
 * (trainer.nice). */
static void thread_setup(const mmr_trainerd_t *td, const char *name) {
    mmr_thread_set_name(name);
    int e = td->conf.nice ? mmr_thread_set_nice(td->conf.nice) : 0;
    if (e) mmr_log(MMR_LOG_WARN, LOG_MOD, "%s thread: nice %d: %s", name, td->conf.nice, strerror(e));
}

static void *publisher_main(void *arg) {
    mmr_trainerd_t *td = arg;
    thread_setup(td, "mmr-publisher");
    pthread_mutex_lock(&td->pub_mu);
    for (;;) {
        while (!td->job.snap && !td->pub_quit) pthread_cond_wait(&td->pub_cv, &td->pub_mu);
        if (!td->job.snap) break; /* quit, nothing left to publish */
        pub_job_t job = td->job;
        td->job = (pub_job_t){0};
        td->pub_busy = true;
        pthread_mutex_unlock(&td->pub_mu);
        publish_job(td, &job);
        pthread_mutex_lock(&td->pub_mu);
        td->pub_busy = false;
        pthread_cond_broadcast(&td->pub_cv);
    }
    pthread_mutex_unlock(&td->pub_mu);
    return NULL;
}

/* Trainer thread: snapshot and hand over, unless a publish is still running (then wait
 * for it when `wait`, else try again next round). */
static void hand_over(mmr_trainerd_t *td, bool wait) {
    pthread_mutex_lock(&td->pub_mu);
    while (wait && (td->job.snap || td->pub_busy)) pthread_cond_wait(&td->pub_cv, &td->pub_mu);
    bool idle = !td->job.snap && !td->pub_busy;
    pthread_mutex_unlock(&td->pub_mu);
    if (!idle) return;
    mmr_err_t err = {0};
    mmr_trainer_stats_t ts;
    mmr_trainer_get_stats(td->tr, &ts);
    pub_job_t job = {.examples = ts.examples, .ts = td->pending_ts,
                     .n = td->since_publish < td->pending_cap ? td->since_publish : td->pending_cap,
                     .oldest = td->oldest_ts, .newest = td->newest_ts, .t0 = mmr_now_ms()};
    td->last_publish_ms = job.t0; /* a cadence: the interval counts from the snapshot */
    if (mmr_trainer_snapshot(td->tr, &job.snap, &err) != MMR_OK) {
        pthread_mutex_lock(&td->mu);
        td->st.publish_errors++;
        pthread_mutex_unlock(&td->mu);
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "publish failed: %s", err.msg);
        return; /* the examples stay pending for the next round */
    }
    td->pending_ts = NULL; /* now the job's */
    td->pending_cap = 0;
    td->since_publish = 0;
    pthread_mutex_lock(&td->pub_mu);
    td->job = job;
    pthread_cond_broadcast(&td->pub_cv);
    pthread_mutex_unlock(&td->pub_mu);
}

static void after_publish(mmr_trainerd_t *td) {
    pthread_mutex_lock(&td->pub_mu);
    uint64_t v = td->pub_done;
    td->pub_done = 0;
    pthread_mutex_unlock(&td->pub_mu);
    if (!v) return;
    mmr_exbuild_invalidate(td->xb); /* catalog changes reach the next examples */
    pool_add_catalog(td, v);
}

static void checkpoint(mmr_trainerd_t *td) {
    mmr_err_t err = {0};
    void *blob = NULL;
    size_t len = 0;
    mmr_status_t st = mmr_trainfeed_offsets(td->feed, &blob, &len, &err);
    if (st == MMR_OK) st = mmr_trainer_checkpoint_save(td->tr, td->checkpoint_path, blob, len, &err);
    free(blob);
    if (st == MMR_OK) mmr_trainfeed_commit(td->feed);
    else mmr_log(MMR_LOG_ERROR, LOG_MOD, "checkpoint %s failed: %s", td->checkpoint_path, err.msg);
    pthread_mutex_lock(&td->mu);
    if (st == MMR_OK) td->st.checkpoints++;
    else td->st.checkpoint_errors++;
    pthread_mutex_unlock(&td->mu);
    td->last_checkpoint_ms = mmr_now_ms();
}

static void *trainer_main(void *arg) {
    mmr_trainerd_t *td = arg;
    thread_setup(td, "mmr-trainer");
    td->last_publish_ms = td->last_checkpoint_ms = mmr_now_ms();
    while (!atomic_load(&td->stop)) {
        mmr_err_t err = {0};
        int n = mmr_trainfeed_poll(td->feed, POLL_MS, POLL_MAX_MSGS, &err);
        if (n < 0) mmr_log(MMR_LOG_ERROR, LOG_MOD, "feed: %s", err.msg);
        int64_t now = mmr_now_ms();
        if (td->since_publish && (now - td->last_publish_ms >= td->conf.publish_interval_ms ||
                                  (td->conf.publish_examples && td->since_publish >= td->conf.publish_examples)))
            hand_over(td, false);
        after_publish(td);
        if (now - td->last_checkpoint_ms >= td->conf.checkpoint_interval_ms) checkpoint(td);
        pthread_mutex_lock(&td->mu);
        mmr_trainer_get_stats(td->tr, &td->st.trainer);
        mmr_joiner_get_stats(td->joiner, &td->st.join);
        pthread_mutex_unlock(&td->mu);
    }
    if (td->since_publish) hand_over(td, true); /* the publisher finishes it before it quits */
    checkpoint(td);
    return NULL;
}

static void trainerd_free(mmr_trainerd_t *td) {
    if (td->pub_started) {
        pthread_mutex_lock(&td->pub_mu);
        td->pub_quit = true;
        pthread_cond_broadcast(&td->pub_cv);
        pthread_mutex_unlock(&td->pub_mu);
        pthread_join(td->pub_thread, NULL);
    }
    pthread_cond_destroy(&td->pub_cv);
    pthread_mutex_destroy(&td->pub_mu);
    mmr_trainfeed_free(td->feed);
    mmr_exbuild_free(td->xb);
    mmr_joiner_free(td->joiner);
    mmr_trainer_free(td->tr);
    pthread_mutex_destroy(&td->mu);
    free(td->pending_ts);
    free(td->checkpoint_path);
    free(td);
}

mmr_status_t mmr_trainerd_start(const mmr_trainerd_conf_t *conf, mmr_fstore_t *fs,
                                mmr_registry_t *reg, mmr_trainerd_t **out, mmr_err_t *err) {
    if (!conf || !fs || !reg || !conf->checkpoint_path || !*conf->checkpoint_path ||
        conf->publish_interval_ms <= 0 || conf->checkpoint_interval_ms <= 0)
        return mmr_err_set(err, MMR_ERR_INVALID,
                           "trainer: store, registry, checkpoint path and positive intervals required");
    mmr_trainerd_t *td = calloc(1, sizeof *td);
    if (!td) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&td->mu, NULL);
    pthread_mutex_init(&td->pub_mu, NULL);
    pthread_cond_init(&td->pub_cv, NULL);
    td->conf = *conf;
    td->fs = fs;
    td->reg = reg;
    if (!(td->checkpoint_path = strdup(conf->checkpoint_path))) {
        trainerd_free(td);
        return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    }
    void *blob = NULL;
    size_t blob_len = 0;
    mmr_status_t st;
    if (access(td->checkpoint_path, F_OK) == 0) {
        st = mmr_trainer_checkpoint_load(&conf->trainer, td->checkpoint_path, NULL, &td->tr, &blob,
                                         &blob_len, err);
        if (st == MMR_OK) {
            mmr_trainer_stats_t ts;
            mmr_trainer_get_stats(td->tr, &ts);
            mmr_log(MMR_LOG_INFO, LOG_MOD, "resumed from %s (%llu examples)", td->checkpoint_path,
                    (unsigned long long)ts.examples);
        }
    } else {
        st = mmr_trainer_new(&conf->trainer, NULL, &td->tr, err);
    }
    if (st == MMR_OK) st = mmr_joiner_new(&conf->join, on_joined, td, &td->joiner, err);
    if (st == MMR_OK) st = mmr_exbuild_new(fs, &conf->trainer.tower, 0, &td->xb, err);
    if (st == MMR_OK) st = mmr_trainfeed_new(&conf->feed, td->joiner, &td->feed, err);
    if (st == MMR_OK && blob_len) st = mmr_trainfeed_set_offsets(td->feed, blob, blob_len, err);
    free(blob);
    if (st == MMR_OK) pool_add_catalog(td, 0);
    if (st == MMR_OK) st = mmr_trainfeed_start(td->feed, err);
    if (st == MMR_OK) mmr_trainer_get_stats(td->tr, &td->st.trainer); /* resumed counters at once */
    if (st == MMR_OK) {
        if (pthread_create(&td->pub_thread, NULL, publisher_main, td) != 0)
            st = mmr_err_set(err, MMR_ERR_INTERNAL, "trainer: cannot create the publisher thread");
        else
            td->pub_started = true;
    }
    if (st == MMR_OK && pthread_create(&td->thread, NULL, trainer_main, td) != 0)
        st = mmr_err_set(err, MMR_ERR_INTERNAL, "trainer: cannot create its thread");
    if (st != MMR_OK) {
        trainerd_free(td);
        return st;
    }
    *out = td;
    return MMR_OK;
}

void mmr_trainerd_stop(mmr_trainerd_t *td) {
    if (!td) return;
    atomic_store(&td->stop, true);
    pthread_join(td->thread, NULL);
    trainerd_free(td);
}

void mmr_trainerd_get_stats(mmr_trainerd_t *td, mmr_trainerd_stats_t *out) {
    pthread_mutex_lock(&td->mu);
    *out = td->st;
    pthread_mutex_unlock(&td->mu);
    mmr_trainfeed_get_stats(td->feed, &out->feed);
}
