/* cli_export.c — `mmrec export --db PATH --out DIR [--what items,users]`: one consistent
 * snapshot of the feature store written as JSON: DIR/items.jsonl (the format `mmrec replay
 * --items` reads, plus created_ms and stats), DIR/users.jsonl and DIR/manifest.json
 * (snapshot time, counts, the Kafka offsets the snapshot contains; docs/OPERATIONS.md).
 * The store is opened read-only, so an export runs beside the mmrecd that writes it.
 * Not an import: nothing reads users.jsonl back. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "mmr_fstore.h"

#define EXPORT_USAGE "usage: mmrec export --db PATH --out DIR [--what items,users]\n"
/* 9 significant digits print every float32 exactly; popularity (a double) to ~1e-9. */
#define EXPORT_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

enum { WHAT_ITEMS = 1, WHAT_USERS = 2 };

/* One JSON Lines file being written under a temporary name. */
typedef struct out_file {
    FILE *f;
    char path[4096], tmp[4096];
    long count;  /* records written */
    int wfailed; /* a write failed (errno kept in werr) */
    int werr;
    char bad_id[80]; /* a record that JSON cannot hold (id not UTF-8), "" if none */
} out_file_t;

/* Opens DIR/name.tmp for writing; prints the problem and returns -1 on failure. */
static int out_open(out_file_t *o, const char *dir, const char *name) {
    memset(o, 0, sizeof *o);
    if (snprintf(o->path, sizeof o->path, "%s/%s", dir, name) >= (int)sizeof o->path ||
        snprintf(o->tmp, sizeof o->tmp, "%s.tmp", o->path) >= (int)sizeof o->tmp) {
        fprintf(stderr, "mmrec export: path too long: %s\n", dir);
        return -1;
    }
    if (!(o->f = fopen(o->tmp, "w"))) {
        fprintf(stderr, "mmrec export: %s: %s\n", o->tmp, strerror(errno));
        return -1;
    }
    return 0;
}

/* Appends j (taken: freed here; NULL when the record could not be encoded, i.e. id is
 * not UTF-8) as one line. Returns 0, or -1 (stop) after an encoding or write error. */
static int out_line(out_file_t *o, json_t *j, const char *id) {
    if (!j) {
        snprintf(o->bad_id, sizeof o->bad_id, "%.64s", id);
        return -1;
    }
    int bad = json_dumpf(j, o->f, EXPORT_JSON_FLAGS) != 0 || fputc('\n', o->f) == EOF;
    json_decref(j);
    if (bad) {
        o->wfailed = 1;
        o->werr = errno;
        return -1;
    }
    o->count++;
    return 0;
}

/* Flushes, fsyncs and renames the file to its final name when ok, else removes it.
 * Returns 0 or -1 (problem printed). */
static int out_finish(out_file_t *o, int ok) {
    if (!o->f) return ok ? 0 : -1;
    if (ok && o->bad_id[0]) {
        fprintf(stderr, "mmrec export: %s: record '%s' cannot be written as JSON (ids must be "
                "UTF-8)\n", o->path, o->bad_id);
        ok = 0;
    }
    int good = ok && !o->wfailed && fflush(o->f) == 0 && fsync(fileno(o->f)) == 0;
    if (ok && !good) fprintf(stderr, "mmrec export: write %s: %s\n", o->tmp,
                             strerror(o->wfailed ? o->werr : errno));
    if (fclose(o->f) != 0 && good) {
        fprintf(stderr, "mmrec export: close %s: %s\n", o->tmp, strerror(errno));
        good = 0;
    }
    o->f = NULL;
    if (good && rename(o->tmp, o->path) != 0) {
        fprintf(stderr, "mmrec export: rename %s: %s\n", o->tmp, strerror(errno));
        good = 0;
    }
    if (!good) unlink(o->tmp);
    return good ? 0 : -1;
}

static json_t *floats_json(const float *v, uint32_t n) {
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_real(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static int item_line(void *opaque, const mmr_item_t *it, const mmr_item_stats_t *s) {
    static const char *const emb_keys[MMR_MODALITY_COUNT] = {"text_emb", "image_emb", "video_emb"};
    json_t *j = json_pack("{s:s, s:I}", "item_id", it->item_id, "created_ms", (json_int_t)it->created_ms);
    for (int m = 0; j && m < MMR_MODALITY_COUNT; m++)
        if (it->emb_dim[m] && json_object_set_new(j, emb_keys[m], floats_json(it->emb[m], it->emb_dim[m])) != 0) {
            json_decref(j);
            j = NULL;
        }
    json_t *stats = s ? json_pack("{s:I, s:I, s:I, s:f, s:I}", "impressions", (json_int_t)s->impressions,
                                  "clicks", (json_int_t)s->clicks, "positives", (json_int_t)s->positives,
                                  "popularity", s->popularity, "last_ts_ms", (json_int_t)s->last_ts_ms)
                      : json_null();
    if (j && json_object_set_new(j, "stats", stats) != 0) {
        json_decref(j);
        j = NULL;
    }
    return out_line(opaque, j, it->item_id);
}

static int user_line(void *opaque, const char *user_id, const mmr_user_t *u) {
    json_t *recent = json_array();
    for (uint32_t i = 0; recent && i < u->n; i++) {
        const mmr_interaction_t *r = &u->recent[i];
        if (json_array_append_new(recent, json_pack("{s:s, s:s, s:f, s:I}", "item_id", r->item_id, "type",
                                                     mmr_event_type_name(r->type), "value", (double)r->value,
                                                     "ts_ms", (json_int_t)r->ts_ms)) != 0) {
            json_decref(recent);
            recent = NULL;
        }
    }
    json_t *j = recent ? json_pack("{s:s, s:I, s:o}", "user_id", user_id, "events_total",
                                   (json_int_t)u->events_total, "recent", recent)
                       : NULL;
    return out_line(opaque, j, user_id);
}

/* Manifest offsets being gathered; bad_topic is set when a topic is not UTF-8. */
typedef struct offsets_acc {
    json_t *arr;
    char bad_topic[80];
} offsets_acc_t;

static int offset_entry(void *opaque, const char *topic, int32_t partition, int64_t next) {
    offsets_acc_t *a = opaque;
    if (json_array_append_new(a->arr, json_pack("{s:s, s:i, s:I}", "topic", topic, "partition",
                                                (int)partition, "next_offset", (json_int_t)next)) == 0)
        return 0;
    snprintf(a->bad_topic, sizeof a->bad_topic, "%.64s", topic);
    return 1;
}

/* Writes one JSON Lines file from the snapshot; records its count in counts[key].
 * Returns 0 or -1 (problem printed). */
static int export_file(mmr_fstore_snapshot_t *snap, const char *dir, int what, json_t *counts) {
    out_file_t o;
    const char *name = what == WHAT_ITEMS ? "items.jsonl" : "users.jsonl";
    if (out_open(&o, dir, name) != 0) return -1;
    mmr_err_t err = {0};
    mmr_status_t st = what == WHAT_ITEMS ? mmr_fstore_snapshot_iter_items(snap, item_line, &o, &err)
                                         : mmr_fstore_snapshot_iter_users(snap, user_line, &o, &err);
    if (st != MMR_OK) fprintf(stderr, "mmrec export: %s\n", err.msg);
    if (out_finish(&o, st == MMR_OK) != 0) return -1;
    json_object_set_new(counts, what == WHAT_ITEMS ? "items" : "users", json_integer(o.count));
    return 0;
}

/* Writes manifest.json last: its presence means the files it counts are complete. */
static int export_manifest(mmr_fstore_snapshot_t *snap, const char *db, const char *dir,
                           json_t *counts) {
    offsets_acc_t acc = {json_array(), ""};
    mmr_err_t err = {0};
    if (mmr_fstore_snapshot_iter_offsets(snap, offset_entry, &acc, &err) != MMR_OK || acc.bad_topic[0]) {
        if (acc.bad_topic[0]) snprintf(err.msg, sizeof err.msg, "offsets: topic '%s' is not UTF-8", acc.bad_topic);
        fprintf(stderr, "mmrec export: %s\n", err.msg);
        json_decref(acc.arr);
        return -1;
    }
    json_t *m = json_pack("{s:s, s:s, s:I, s:O, s:o}", "mmrec_version", MMREC_VERSION, "db", db,
                          "snapshot_ms", (json_int_t)mmr_fstore_snapshot_time_ms(snap), "counts",
                          counts, "offsets", acc.arr);
    out_file_t o;
    if (out_open(&o, dir, "manifest.json") != 0) {
        json_decref(m);
        return -1;
    }
    if (!m) { /* only a --db path that is not UTF-8 makes json_pack fail */
        snprintf(o.bad_id, sizeof o.bad_id, "%.64s", db);
    } else if (json_dumpf(m, o.f, JSON_INDENT(2)) != 0 || fputc('\n', o.f) == EOF) {
        o.wfailed = 1;
        o.werr = errno;
    }
    json_decref(m);
    return out_finish(&o, 1);
}

/* --what: a comma-separated subset of items,users. Returns the WHAT_* mask, or 0. */
static int parse_what(const char *s) {
    int mask = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n == 5 && !strncmp(s, "items", 5)) mask |= WHAT_ITEMS;
        else if (n == 5 && !strncmp(s, "users", 5)) mask |= WHAT_USERS;
        else return 0;
        s += n + (s[n] == ',');
    }
    return mask;
}

int mmr_cli_export(int argc, char **argv) {
    static const char *const valued[] = {"db", "out", "what", NULL};
    if (!mmr_cli_check_opts(argc, argv, valued, NULL)) return 2;
    const char *db = mmr_cli_opt(argc, argv, "db", NULL);
    const char *dir = mmr_cli_opt(argc, argv, "out", NULL);
    const char *what_s = mmr_cli_opt(argc, argv, "what", "items,users");
    int what = parse_what(what_s);
    if (!db || !*db || !dir || !*dir || !what) {
        if (!what) fprintf(stderr, "mmrec export: --what '%s': expected items, users or items,users\n", what_s);
        fprintf(stderr, EXPORT_USAGE);
        return 2;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mmrec export: mkdir %s: %s\n", dir, strerror(errno));
        return 1;
    }
    /* Read-only: no lock, so mmrecd may keep the store open for writing meanwhile; the
     * export then holds what was committed when it opened. */
    mmr_fstore_opts_t o = {.path = db, .read_only = 1, .item_cache = 1 /* no point reads */};
    mmr_fstore_t *fs = NULL;
    mmr_fstore_snapshot_t *snap = NULL;
    mmr_err_t err = {0};
    if (mmr_fstore_open(&o, &fs, &err) != MMR_OK || mmr_fstore_snapshot_new(fs, &snap, &err) != MMR_OK) {
        fprintf(stderr, "mmrec export: %s\n", err.msg);
        mmr_fstore_close(fs);
        return 1;
    }
    json_t *counts = json_object();
    int rc = (what & WHAT_ITEMS) && export_file(snap, dir, WHAT_ITEMS, counts) != 0;
    rc = rc || ((what & WHAT_USERS) && export_file(snap, dir, WHAT_USERS, counts) != 0);
    rc = rc || export_manifest(snap, db, dir, counts) != 0;
    if (!rc) {
        const char *kind, *sep = " ";
        json_t *n;
        printf("mmrec export: snapshot at %lld ms:", (long long)mmr_fstore_snapshot_time_ms(snap));
        json_object_foreach(counts, kind, n) {
            printf("%s%lld %s", sep, (long long)json_integer_value(n), kind);
            sep = ", ";
        }
        printf(" -> %s\n", dir);
    }
    json_decref(counts);
    mmr_fstore_snapshot_free(snap);
    mmr_fstore_close(fs);
    return rc ? 1 : 0;
}
