/* test_registry_swap.c — hot swap under concurrency: 4 reader threads acquire a model
 * (the serving one, or a version pinned explicitly), score with it and release, without
 * pause, while the writer publishes 60 versions and promotes / rolls back in between.
 * Every reference must name a version that was published and hold that version's
 * weights (checked through a fingerprint score); under ASan / TSan no use-after-free and
 * no race. Versions differ by a few weights, so most are delta files. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "mmr_registry.h"
#include "model_test.h"

#define N_PUBLISH 60
#define N_READERS 4

static mmr_fstore_t *fs;
static mmr_registry_t *reg;
static atomic_int stop;
static _Atomic uint32_t fingerprint[N_PUBLISH + 2]; /* bits of the head's output per version */
static atomic_long acquired, pinned_ok, pinned_gone;

/* The head's output on fixed inputs: identifies a tower's weights. */
static float fp_of(const mmr_tower_t *t) {
    float u[16], v[16], pop = 3.0f, rec = 1.0f, p;
    for (int k = 0; k < 16; k++) { u[k] = 0.25f; v[k] = k % 2 ? 0.25f : -0.125f; }
    mmr_tower_head_forward(t, 1, u, v, &pop, &rec, &p);
    return p;
}

static void check_ref(const mmr_model_ref_t *ref) {
    CHECK_MSG(ref->version >= 1 && ref->version <= N_PUBLISH, "version %llu", (unsigned long long)ref->version);
    float p = fp_of(mmr_model_tower(ref->model));
    uint32_t bits;
    memcpy(&bits, &p, sizeof bits);
    CHECK_MSG(bits == atomic_load(&fingerprint[ref->version]), "version %llu holds other weights",
              (unsigned long long)ref->version);
    /* touch the index and the tower: a freed model shows up under ASan */
    const char *ids[3] = {"i1", "i7", "i30"};
    float uv[16], s[3];
    uint8_t st[3];
    mmr_err_t err = {0};
    CHECK_OK(mmr_model_encode_user(ref->model, "u2", NULL, mmr_now_ms(), uv, &err), &err);
    CHECK_OK(mmr_model_score(ref->model, uv, 3, ids, mmr_now_ms(), s, NULL, st, &err), &err);
    CHECK(mmr_model_item_count(ref->model) == 40 && st[0] == MMR_MODEL_SCORED);
}

static void *reader(void *arg) {
    uint64_t last = 0;
    for (long i = 0; !atomic_load(&stop); i++) {
        mmr_model_ref_t ref;
        mmr_err_t err = {0};
        uint64_t want = i % 4 == 3 ? last : 0;
        mmr_status_t st = mmr_registry_acquire(reg, want, &ref, &err);
        if (st == MMR_ERR_NOT_FOUND && want) { /* an explicit version may have been unloaded */
            atomic_fetch_add(&pinned_gone, 1);
            continue;
        }
        CHECK_MSG(st == MMR_OK, "%s", err.msg);
        CHECK(!want || ref.version == want);
        check_ref(&ref);
        last = ref.version;
        mmr_registry_release(reg, &ref);
        atomic_fetch_add(want ? &pinned_ok : &acquired, 1);
    }
    return NULL;
}

int main(void) {
    char dir[64], model_dir[128];
    fs = mt_store(dir);
    snprintf(model_dir, sizeof model_dir, "%s/models", dir);
    uint64_t rng = 5;
    mt_put_items(fs, 0, 40, &rng);
    mmr_registry_conf_t c = {.model_dir = model_dir, .keep = 5, .delta_max = 0.5f};
    mmr_err_t err = {0};
    CHECK_OK(mmr_registry_open(&c, fs, &reg, &err), &err);
    /* each version is the last one with a head weight and an id weight changed, as after
     * training: the registry writes delta files (test_registry reads them back) */
    mmr_tower_t *w = mt_tower(1), *t = NULL;
    size_t head = SIZE_MAX;
    for (int g = 0; g < mmr_tower_param_group_count(); g++) {
        mmr_tower_param_info_t info;
        mmr_tower_param_group(w, g, &info);
        if (strstr(info.name, "head")) head = info.offset;
    }
    CHECK(head != SIZE_MAX);
    CHECK_OK(mmr_tower_clone(w, &t, &err), &err);
    float p = fp_of(t);
    uint32_t bits;
    memcpy(&bits, &p, sizeof bits);
    atomic_store(&fingerprint[1], bits);
    CHECK_OK(mmr_registry_publish(reg, t, 0, NULL, &err), &err);

    pthread_t th[N_READERS];
    for (int i = 0; i < N_READERS; i++) pthread_create(&th[i], NULL, reader, NULL);
    for (uint64_t v = 2; v <= N_PUBLISH; v++) {
        mmr_tower_params(w)[head] += 0.01f;
        mmr_tower_params(w)[(v * 7919) % mmr_tower_param_count(w)] += 0.5f;
        mmr_tower_params_changed(w);
        CHECK_OK(mmr_tower_clone(w, &t, &err), &err);
        p = fp_of(t);
        memcpy(&bits, &p, sizeof bits);
        atomic_store(&fingerprint[v], bits); /* before the version can be seen */
        uint64_t got = 0;
        CHECK_OK(mmr_registry_publish(reg, t, v, &got, &err), &err);
        CHECK(got == v);
        if (v % 10 == 0) CHECK_OK(mmr_registry_rollback(reg, NULL, &err), &err);
        if (v % 10 == 3) CHECK_OK(mmr_registry_unpin(reg, &err), &err);
        if (v % 10 == 5) CHECK_OK(mmr_registry_promote(reg, v - 1, NULL, &err), &err);
    }
    usleep(50 * 1000);
    atomic_store(&stop, 1);
    for (int i = 0; i < N_READERS; i++) pthread_join(th[i], NULL);
    CHECK(atomic_load(&acquired) > 0);
    printf("ok %d publishes under %d readers: %ld serving acquires, %ld explicit pins (%ld unloaded meanwhile), "
           "no failure\n", N_PUBLISH, N_READERS, atomic_load(&acquired), atomic_load(&pinned_ok),
           atomic_load(&pinned_gone));
    mmr_tower_free(w);
    mmr_registry_free(reg);
    mmr_fstore_close(fs);
    mt_rmdir(dir);
    return 0;
}
