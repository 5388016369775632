/* fake_fstore.c — an in-memory stand-in for features/ with failure injection, for the
 * consumer's failure-path tests. It defines exactly the mmr_fstore_* calls streaming/
 * makes; linked into a test executable, these definitions satisfy every reference, so no
 * member of libmmr_features.a is pulled in (a new call in streaming/ would pull one and fail
 * the link loudly with duplicate symbols rather than test the wrong store). Up to
 * FAKE_TOPICS topics of partitions < FAKE_PARTS. A mutex makes the test thread's reads safe
 * against the consumer thread's writes. */
#include "fake_fstore.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

/* Offsets per topic: names[t] ("" = free slot) and next[t][partition] (-1 = none). */
typedef struct offsets {
    char names[FAKE_TOPICS][MMR_ID_MAX + 1];
    int64_t next[FAKE_TOPICS][FAKE_PARTS];
} offsets_t;

struct mmr_fstore {
    pthread_mutex_t mu;
    char **ids;                     /* committed dedup marks [n_ids] */
    size_t n_ids, cap_ids;
    offsets_t off;
    uint64_t applied;               /* events in committed batches */
    uint64_t items;                 /* item puts in committed batches */
    uint64_t mixed;                 /* committed batches with offsets of 2+ topics */
    int commits_ok_before_fail;     /* injection: commits that succeed before failures */
    int commits_to_fail;
    int get_offsets_to_fail;
    int commit_ms;                  /* each commit takes this long (a slow store) */
};

struct mmr_fstore_batch {
    mmr_fstore_t *fs;
    char **ids;                     /* marks added by this batch [n_ids] */
    size_t n_ids, cap_ids;
    offsets_t off;
    uint64_t applied, items;
};

static void offsets_init(offsets_t *o) {
    memset(o->names, 0, sizeof o->names);
    for (int t = 0; t < FAKE_TOPICS; t++)
        for (int p = 0; p < FAKE_PARTS; p++) o->next[t][p] = -1;
}

/* The slot of topic, claiming a free one when create; -1 when absent (or full: CHECK). */
static int offsets_topic(offsets_t *o, const char *topic, int create) {
    CHECK(topic && *topic && strlen(topic) <= MMR_ID_MAX);
    for (int t = 0; t < FAKE_TOPICS; t++)
        if (strcmp(o->names[t], topic) == 0) return t;
    if (!create) return -1;
    for (int t = 0; t < FAKE_TOPICS; t++)
        if (!o->names[t][0]) {
            strcpy(o->names[t], topic);
            return t;
        }
    CHECK(!"fake store: too many topics");
    return -1;
}

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
    offsets_init(&fs->off);
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

void fake_fstore_slow_commits(mmr_fstore_t *fs, int ms) {
    pthread_mutex_lock(&fs->mu);
    fs->commit_ms = ms;
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

uint64_t fake_fstore_items(mmr_fstore_t *fs) {
    pthread_mutex_lock(&fs->mu);
    uint64_t n = fs->items;
    pthread_mutex_unlock(&fs->mu);
    return n;
}

uint64_t fake_fstore_mixed_commits(mmr_fstore_t *fs) {
    pthread_mutex_lock(&fs->mu);
    uint64_t n = fs->mixed;
    pthread_mutex_unlock(&fs->mu);
    return n;
}

int64_t fake_fstore_offset(mmr_fstore_t *fs, const char *topic, int32_t partition) {
    CHECK(partition >= 0 && partition < FAKE_PARTS);
    pthread_mutex_lock(&fs->mu);
    int t = offsets_topic(&fs->off, topic, 0);
    int64_t o = t < 0 ? -1 : fs->off.next[t][partition];
    pthread_mutex_unlock(&fs->mu);
    return o;
}

/* --- the mmr_fstore.h calls streaming/ uses ------------------------------------------- */

mmr_fstore_batch_t *mmr_fstore_batch_new(mmr_fstore_t *fs) {
    mmr_fstore_batch_t *b = calloc(1, sizeof *b);
    CHECK(b != NULL);
    b->fs = fs;
    offsets_init(&b->off);
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
    b->off.next[offsets_topic(&b->off, topic, 1)][partition] = next_offset;
}

mmr_status_t mmr_fstore_batch_put_item(mmr_fstore_batch_t *b, const mmr_item_t *item,
                                       mmr_err_t *err) {
    CHECK(item && item->item_id && *item->item_id);
    b->items++;
    return MMR_OK;
}

mmr_status_t mmr_fstore_batch_commit(mmr_fstore_batch_t *b, mmr_err_t *err) {
    mmr_fstore_t *fs = b->fs;
    pthread_mutex_lock(&fs->mu);
    if (fs->commit_ms) {
        struct timespec ts = {fs->commit_ms / 1000, fs->commit_ms % 1000 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (fs->commits_ok_before_fail > 0) {
        fs->commits_ok_before_fail--;
    } else if (fs->commits_to_fail > 0) {
        fs->commits_to_fail--;
        pthread_mutex_unlock(&fs->mu);
        return mmr_err_set(err, MMR_ERR_STORE, "injected commit failure");
    }
    for (size_t i = 0; i < b->n_ids; i++) push_id(&fs->ids, &fs->n_ids, &fs->cap_ids, b->ids[i]);
    b->n_ids = 0; /* the store owns the marks now */
    int topics = 0;
    for (int bt = 0; bt < FAKE_TOPICS && b->off.names[bt][0]; bt++) {
        int t = offsets_topic(&fs->off, b->off.names[bt], 1);
        for (int p = 0; p < FAKE_PARTS; p++)
            if (b->off.next[bt][p] >= 0) fs->off.next[t][p] = b->off.next[bt][p];
        topics++;
    }
    fs->mixed += topics > 1;
    fs->applied += b->applied;
    fs->items += b->items;
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
        int t = offsets_topic(&fs->off, topic, 0);
        *next_offset = t >= 0 && partition >= 0 && partition < FAKE_PARTS
                           ? fs->off.next[t][partition]
                           : -1;
    }
    pthread_mutex_unlock(&fs->mu);
    return st;
}
