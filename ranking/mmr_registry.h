/* mmr_registry.h — model versions: files on disk, records in the store's `meta` column
 * family, the serving version with lock-free hot swap, pins, rollback, retention, and
 * A/B experiments. Not in here: training (the trainer publishes), the RPCs (mmr_admin.h).
 *
 * Versions: uint64 numbers from 1, never reused. Version V is the file
 * <model_dir>/model-<V, 20 digits>.mmrt and the meta key "model/v/<V, 20 digits>"
 * {created_ms, examples_seen, base}. The file is a full model (mmr_tower_save, base 0) or,
 * with delta_max > 0, a delta over the full version `base` (mmr_tower_save_delta): the
 * blocks changed since that version, so a publish writes what training touched, not the
 * whole model. A full file is written when the changes outgrow delta_max, after a restart,
 * and whenever the newest version is not loaded. "model/state" holds
 * {serving, previous, pinned, next version}. Version record and state change in one
 * atomic meta write, so after a crash the registry is what the last write says.
 *
 * Lifecycle (writer side; each call serialised by a mutex, may load a file and build an
 * index, so it can take seconds):
 *   publish  writes the file, builds the model, registers it; serving = it unless pinned.
 *   promote V  serving = V, unpinned (the next publish replaces it).
 *   pin V    serving = V, pinned: publishes do not change serving until unpin.
 *   unpin    serving stays, publishes replace it again.
 *   rollback serving = the version that served before the current one (`previous`), pinned;
 *            previous becomes the version rolled back from, so a second rollback undoes
 *            the first. FAILED_PRECONDITION-like MMR_ERR_NOT_FOUND when there is none.
 *   Every change of serving sets previous = the version it replaces.
 * Retention: the newest `keep` versions plus serving, previous and experiment arms stay,
 * and the base of every version that stays; older ones lose their record, then their file.
 * In memory: serving, previous, the newest and experiment arms are loaded (tower + index);
 * others are loaded on promote/pin/rollback. Requests can pin only loaded versions.
 *
 * Open: versions registered in meta are reloaded; files without a record (a crash between
 * writing a file and registering it) are removed; a registered version whose file is
 * missing is unregistered, and so is a delta whose base is; the serving one is loaded, and if its file is missing or
 * corrupt the newest loadable version is served instead (logged at WARN, pin dropped).
 *
 * Readers: mmr_registry_acquire / mmr_registry_release never lock and never block. Models
 * sit in fixed slots {version, model, refs}; a reader finds the slot holding the version it
 * wants, increments refs unless it is negative (slot being filled or freed), then re-reads
 * the slot's version: changed → release and retry. A slot is freed (or filled) only by the
 * writer after claiming it with CAS refs 0 → -1, so a model is freed only once no reference
 * to it is left; unloading first clears the slot's version so no new reader can find it.
 *
 * Experiments: "name=arm:version:weight,arm:version:weight[;name2=...]". A user is assigned
 * arm by CRC32C(user_id) % total weight (sticky). Per arm: impressions (items served, counted
 * by the ranker), and the training examples the arm's rankings produced and how many were
 * positive (clicks), counted by the daemon's trainer through mmr_registry_count_example;
 * CTR = clicks / impressions. */
#ifndef MMR_REGISTRY_H
#define MMR_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"
#include "mmr_model.h"

typedef struct mmr_registry mmr_registry_t;

typedef struct mmr_registry_conf {
    const char *model_dir;        /* created if missing; copied */
    uint32_t keep;                /* versions kept on disk besides serving/previous/arms (default 10) */
    float delta_max;              /* write a delta file (mmr_tower_save_delta) over the last full
                                     version while the blocks changed since stay within this
                                     fraction of the model; 0 = full files only */
    mmr_tower_backend_t *be;      /* borrowed, NULL = CPU; must outlive the registry */
    const mmr_model_opts_t *model_opts; /* how its models are built (retrieval index);
                                     NULL = mmr_model_opts_default(); copied */
} mmr_registry_conf_t;

/* Opens the registry of fs (borrowed, must outlive it) as described above. *out owned:
 * mmr_registry_free. Errors: MMR_ERR_IO (model_dir), MMR_ERR_CORRUPT (an unreadable meta
 * record), MMR_ERR_STORE, MMR_ERR_NOMEM. No loadable version is not an error (nothing
 * serves: mmr_registry_serving returns 0). */
mmr_status_t mmr_registry_open(const mmr_registry_conf_t *conf, mmr_fstore_t *fs,
                               mmr_registry_t **out, mmr_err_t *err);
/* Frees every model. No reference may be held any more. NULL is a no-op. */
void mmr_registry_free(mmr_registry_t *r);

/* --- writer side ------------------------------------------------------------------------ */

/* Publishes tower (taken, also on failure) as the next version; *version gets it (may be
 * NULL). On failure nothing is registered and the file is removed. Errors: MMR_ERR_IO,
 * MMR_ERR_STORE, MMR_ERR_NOMEM, errors of mmr_model_new. */
mmr_status_t mmr_registry_publish(mmr_registry_t *r, mmr_tower_t *tower, uint64_t examples_seen,
                                  uint64_t *version, mmr_err_t *err);
/* Serving changes; *previous (may be NULL) gets the version serving before the call.
 * Errors: MMR_ERR_NOT_FOUND (version not registered; rollback: no previous version),
 * MMR_ERR_IO / MMR_ERR_CORRUPT (its file cannot be loaded), MMR_ERR_STORE, MMR_ERR_NOMEM. */
mmr_status_t mmr_registry_promote(mmr_registry_t *r, uint64_t version, uint64_t *previous,
                                  mmr_err_t *err);
mmr_status_t mmr_registry_pin(mmr_registry_t *r, uint64_t version, uint64_t *previous,
                              mmr_err_t *err);
mmr_status_t mmr_registry_unpin(mmr_registry_t *r, mmr_err_t *err);
mmr_status_t mmr_registry_rollback(mmr_registry_t *r, uint64_t *previous, mmr_err_t *err);

/* Replaces all experiments with spec (NULL or "" = none). Every arm's version must be
 * registered and loadable (it is loaded). Errors: MMR_ERR_INVALID (syntax, duplicate names,
 * weight not in 1..1000000, more than MMR_REGISTRY_MAX_ARMS arms or distinct versions
 * than fit in memory; message says where), MMR_ERR_NOT_FOUND (unknown version), load errors.
 * On error the previous experiments stay. */
#define MMR_REGISTRY_MAX_ARMS 8
mmr_status_t mmr_registry_set_experiments(mmr_registry_t *r, const char *spec, mmr_err_t *err);

typedef struct mmr_model_info {
    uint64_t version;
    int64_t created_ms;
    uint64_t examples_seen;
    int serving, pinned, loaded;
} mmr_model_info_t;

/* Registered versions, oldest first: *out malloc'ed (free()), *n entries. Errors: NOMEM. */
mmr_status_t mmr_registry_list(mmr_registry_t *r, mmr_model_info_t **out, size_t *n,
                               mmr_err_t *err);
/* The serving version (0 = none) and whether it is pinned. Lock-free. */
uint64_t mmr_registry_serving(const mmr_registry_t *r, int *pinned);

/* --- reader side (lock-free) ----------------------------------------------------------- */

typedef struct mmr_model_ref {
    const mmr_model_t *model; /* valid until mmr_registry_release */
    uint64_t version;
    int slot;                 /* private */
} mmr_model_ref_t;

/* A reference to version (0 = the serving one). Errors: MMR_ERR_NOT_FOUND (nothing serves,
 * or version is not loaded; the message says which). */
mmr_status_t mmr_registry_acquire(mmr_registry_t *r, uint64_t version, mmr_model_ref_t *ref,
                                  mmr_err_t *err);
/* Gives the reference back; ref->model must not be used afterwards. */
void mmr_registry_release(mmr_registry_t *r, mmr_model_ref_t *ref);

/* --- experiments (lock-free) ---------------------------------------------------------- */

typedef struct mmr_registry_arm {
    const char *experiment, *arm; /* borrowed: valid until the next set_experiments + free */
    uint64_t version;
    uint32_t weight;
} mmr_registry_arm_t;

/* The arm of user_id in experiment. Errors: MMR_ERR_NOT_FOUND (no such experiment). */
mmr_status_t mmr_registry_assign(mmr_registry_t *r, const char *experiment, const char *user_id,
                                 mmr_registry_arm_t *out, mmr_err_t *err);
/* Counts n items served by arm / one click on an item served by arm. arm_tag is the
 * impression's experiment_arm, "<experiment>/<arm>"; unknown tags are ignored. */
void mmr_registry_count_impressions(mmr_registry_t *r, const char *arm_tag, uint64_t n);
/* One training example tagged with arm_tag ("experiment/arm"; unknown tags are ignored). */
void mmr_registry_count_example(mmr_registry_t *r, const char *arm_tag, int positive);

typedef struct mmr_registry_arm_stats {
    char experiment[64], arm[64];
    uint64_t version;
    uint32_t weight;
    uint64_t impressions, clicks, examples;
} mmr_registry_arm_stats_t;
/* Counters of every arm of the current experiments into out (up to cap); returns the
 * number of arms (may exceed cap). */
size_t mmr_registry_experiment_stats(mmr_registry_t *r, mmr_registry_arm_stats_t *out, size_t cap);

#endif
