/* fake_fstore.c — an in-memory stand-in for features/ with failure injection, for the
 * consumer's failure-path tests. It defines exactly the mmr_fstore_* calls streaming/
 * makes; linked into a test executable, these definitions satisfy every reference, so no
 * member of libmmr_features.a is pulled in (a new call in streaming/ would pull one and fail
 * the link loudly with duplicate symbols rather than test the wrong store). One topic,
 * partitions < FAKE_PARTS. A mutex makes the test thread's reads safe against the consumer
 * thread's writes. */
#include "fake_fstore.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

struct mmr_fstore {
    pthread_mutex_t mu;
    char **ids;                     /* committed dedup marks [n_ids] */
    size_t n_ids, cap_ids;
    int64_t offsets[FAKE_PARTS];    /* -1: none stored */
    uint64_t applied;               /* events in committed batches */
    int commits_ok_before_fail;     /* injection: commits that succeed before failures */
    int commits_to_fail;
    int get_offsets_to_fail;
};

struct mmr_fstore_batch {
    mmr_fstore_t *fs;
    char **ids;                     /* marks added by this batch [n_ids] */
    size_t n_ids, cap_ids;
    int64_t offsets[FAKE_PARTS];
    uint64_t applied;
};

static void push_id(char ***ids, size_t *n, size_t *cap, char *id) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *ids = realloc(*ids, *cap * sizeof **ids);
        CHECK(*ids != NULL);
    }
    (*ids)[(*n)++] = id;
}

static int has_id(char *const *ids, size_t n, const char *id) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0) return 1;
    return 0;
}

mmr_fstore_t *fake_fstore_new(void) {
    mmr_fstore_t *fs = calloc(1, sizeof *fs);
    CHECK(fs != NULL);
    pthread_mutex_init(&fs->mu, NULL);
    for (int p = 0; p < FAKE_PARTS; p++) fs->offsets[p] = -1;
    return fs;
}

void fake_fstore_free(mmr_fstore_t *fs) {
    for (size_t i = 0; i < fs->n_ids; i++) free(fs->ids[i]);
    free(fs->ids);
    pthread_mutex_destroy(&fs->mu);
    free(fs);
}

void fake_fstore_fail_commits(mmr_fstore_t *fs, int ok_first, int n_fail) {
    pthread_mutex_lock(&fs->mu);
    fs->commits_ok_before_fail = ok_first;
    fs->commits_to_fail = n_fail;
    pthread_mutex_unlock(&fs->mu);
}

void fake_fstore_fail_get_offsets(mmr_fstore_t *fs, int n_fail) {
    pthread_mutex_lock(&fs->mu);
    fs->get_offsets_to_fail = n_fail;
    pthread_mutex_unlock(&fs->mu);
}

uint64_t fake_fstore_applied(mmr_fstore_t *fs) {
    pthread_mutex_lock(&fs->mu);
    uint64_t n = fs->applied;
    pthread_mutex_unlock(&fs->mu);
    return n;
}

int64_t fake_fstore_offset(mmr_fstore_t *fs, int32_t partition) {
    pthread_mutex_lock(&fs->mu);
    int64_t o = fs->offsets[partition];
    pthread_mutex_unlock(&fs->mu);
    return o;
}

/* --- the mmr_fstore.h calls streaming/ uses ------------------------------------------- */

mmr_fstore_batch_t *mmr_fstore_batch_new(mmr_fstore_t *fs) {
    mmr_fstore_batch_t *b = calloc(1, sizeof *b);
    CHECK(b != NULL);
    b->fs = fs;
    for (int p = 0; p < FAKE_PARTS; p++) b->offsets[p] = -1;
    return b;
}

int mmr_fstore_batch_add_event(mmr_fstore_batch_t *b, const mmr_event_t *ev, mmr_err_t *err) {
    if (ev->event_id && ev->event_id[0]) {
        pthread_mutex_lock(&b->fs->mu);
        int dup = has_id(b->fs->ids, b->fs->n_ids, ev->event_id);
        pthread_mutex_unlock(&b->fs->mu);
        if (dup || has_id(b->ids, b->n_ids, ev->event_id)) return 0;
        char *id = strdup(ev->event_id);
        CHECK(id != NULL);
        push_id(&b->ids, &b->n_ids, &b->cap_ids, id);
    }
    b->applied++;
    return 1;
}

void mmr_fstore_batch_set_offset(mmr_fstore_batch_t *b, const char *topic, int32_t partition,
                                 int64_t next_offset) {
    CHECK(partition >= 0 && partition < FAKE_PARTS);
    b->offsets[partition] = next_offset;
}

mmr_status_t mmr_fstore_batch_commit(mmr_fstore_batch_t *b, mmr_err_t *err) {
    mmr_fstore_t *fs = b->fs;
    pthread_mutex_lock(&fs->mu);
    if (fs->commits_ok_before_fail > 0) {
        fs->commits_ok_before_fail--;
    } else if (fs->commits_to_fail > 0) {
        fs->commits_to_fail--;
        pthread_mutex_unlock(&fs->mu);
        return mmr_err_set(err, MMR_ERR_STORE, "injected commit failure");
    }
    for (size_t i = 0; i < b->n_ids; i++) push_id(&fs->ids, &fs->n_ids, &fs->cap_ids, b->ids[i]);
    b->n_ids = 0; /* the store owns the marks now */
    for (int p = 0; p < FAKE_PARTS; p++)
        if (b->offsets[p] >= 0) fs->offsets[p] = b->offsets[p];
    fs->applied += b->applied;
    pthread_mutex_unlock(&fs->mu);
    return MMR_OK;
}

void mmr_fstore_batch_free(mmr_fstore_batch_t *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n_ids; i++) free(b->ids[i]);
    free(b->ids);
    free(b);
}

mmr_status_t mmr_fstore_get_offset(mmr_fstore_t *fs, const char *topic, int32_t partition,
                                   int64_t *next_offset, mmr_err_t *err) {
    pthread_mutex_lock(&fs->mu);
    mmr_status_t st = MMR_OK;
    if (fs->get_offsets_to_fail > 0) {
        fs->get_offsets_to_fail--;
        st = mmr_err_set(err, MMR_ERR_STORE, "injected offset read failure");
    } else {
        *next_offset = partition >= 0 && partition < FAKE_PARTS ? fs->offsets[partition] : -1;
    }
    pthread_mutex_unlock(&fs->mu);
    return st;
}
