/* test_registry.c — the model registry on a real temporary store and model directory:
 * publish / list / promote / pin / unpin / rollback / retention, persistence across
 * close and reopen, crashes while publishing (an unregistered file; a registered version
 * whose file is missing or corrupt), bit-identical scores after a rollback,
 * experiments (parsing, sticky and proportional split, per-arm counters), and delta files
 * (small, bit-exact after reopen and rollback, full again when changes outgrow delta_max or
 * after a restart, bases kept by retention while a delta needs them). */
#include <math.h>
#include <unistd.h>

#include "mmr_registry.h"
#include "model_test.h"

static mmr_fstore_t *fs;
static char model_dir[128];
static uint64_t seed = 100;
static float delta_max; /* of the registries open_reg opens */

static mmr_registry_t *open_reg(uint32_t keep) {
    mmr_registry_conf_t c = {.model_dir = model_dir, .keep = keep, .delta_max = delta_max};
    mmr_registry_t *r = NULL;
    mmr_err_t err = {0};
    CHECK_OK(mmr_registry_open(&c, fs, &r, &err), &err);
    return r;
}

static uint64_t publish(mmr_registry_t *r) {
    uint64_t v = 0;
    mmr_err_t err = {0};
    seed++;
    CHECK_OK(mmr_registry_publish(r, mt_tower(seed), seed * 10, &v, &err), &err);
    return v;
}

static uint64_t serving(mmr_registry_t *r, int *pinned) { return mmr_registry_serving(r, pinned); }

/* Versions registered, as a string like "1,2,3" (for compact checks). */
static const char *versions(mmr_registry_t *r) {
    static char buf[256];
    mmr_model_info_t *info = NULL;
    size_t n = 0;
    CHECK(mmr_registry_list(r, &info, &n, NULL) == MMR_OK);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%llu", i ? "," : "",
                 (unsigned long long)info[i].version);
    free(info);
    return buf;
}

static int file_exists(uint64_t v) {
    char p[256];
    snprintf(p, sizeof p, "%s/model-%020llu.mmrt", model_dir, (unsigned long long)v);
    return access(p, F_OK) == 0;
}

static long file_size(uint64_t v) {
    char p[256];
    snprintf(p, sizeof p, "%s/model-%020llu.mmrt", model_dir, (unsigned long long)v);
    FILE *f = fopen(p, "rb");
    CHECK_MSG(f, "open %s", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Score of item i5 for user u1 under the model of version v (0 = serving). */
static float score_of(mmr_registry_t *r, uint64_t v, uint64_t *used) {
    mmr_model_ref_t ref;
    mmr_err_t err = {0};
    CHECK_OK(mmr_registry_acquire(r, v, &ref, &err), &err);
    mmr_user_t *u = NULL;
    mmr_fstore_get_user(fs, "u1", &u, NULL);
    float uv[16], s;
    uint8_t st;
    const char *id = "i5";
    int64_t now = 1900000000000; /* fixed: same features every time */
    CHECK_OK(mmr_model_encode_user(ref.model, "u1", u, now, uv, &err), &err);
    CHECK_OK(mmr_model_score(ref.model, uv, 1, &id, now, &s, NULL, &st, &err), &err);
    mmr_user_free(u);
    if (used) *used = ref.version;
    mmr_registry_release(r, &ref);
    return s;
}

/* Publishes a copy of w after changing two weights of it (a training step's worth): one
 * of the first group (dense: every score moves) and one anywhere. */
static uint64_t publish_step(mmr_registry_t *r, mmr_tower_t *w) {
    float *p = mmr_tower_params(w);
    p[seed % 64] += 0.25f;
    p[(seed * 7919) % mmr_tower_param_count(w)] += 0.25f;
    mmr_tower_params_changed(w);
    mmr_tower_t *c = NULL;
    uint64_t v = 0;
    mmr_err_t err = {0};
    CHECK_OK(mmr_tower_clone(w, &c, &err), &err);
    seed++;
    CHECK_OK(mmr_registry_publish(r, c, seed * 10, &v, &err), &err);
    return v;
}

/* A fresh store in dir (mt_store) with 50 items and 5 users' events; models under it. */
static void setup(char dir[64], uint64_t rng) {
    fs = mt_store(dir);
    snprintf(model_dir, sizeof model_dir, "%s/models", dir);
    mt_put_items(fs, 0, 50, &rng);
    mt_put_events(fs, 5, 6, 50, &rng);
}

/* conf.model_opts reaches the models the registry builds, published and loaded: with an
 * index from one item on, the 50-item catalog is retrieved through one; by default not. */
static void model_opts(void) {
    char dir[64];
    setup(dir, 5);
    mmr_model_opts_t mo = mmr_model_opts_default();
    mo.ann_min_items = 1;
    mo.ann_max_scan = 1.0f;
    mmr_registry_conf_t c = {.model_dir = model_dir, .model_opts = &mo};
    mmr_err_t err = {0};
    mmr_model_ref_t ref;
    uint64_t v = 0;
    for (int pass = 0; pass < 3; pass++) { /* publish with opts; reload with; reload without */
        mmr_registry_t *r = NULL;
        if (pass < 2) CHECK_OK(mmr_registry_open(&c, fs, &r, &err), &err);
        else r = open_reg(4);
        if (pass == 0) v = publish(r);
        CHECK_OK(mmr_registry_acquire(r, v, &ref, &err), &err);
        CHECK_MSG((mmr_model_ann(ref.model) != NULL) == (pass < 2), "pass %d", pass);
        mmr_registry_release(r, &ref);
        mmr_registry_free(r);
    }
    mmr_fstore_close(fs);
    mt_rmdir(dir);
    printf("ok model options reach published and loaded models\n");
}

/* Delta files, in a store and model folder of their own. */
static void deltas(void) {
    char dir[64];
    setup(dir, 4);
    mmr_err_t err = {0};
    delta_max = 0.5f;
    mmr_tower_t *w = mt_tower(7);
    long full = 72 + 4 * (long)mmr_tower_param_count(w);
    mmr_registry_t *r = open_reg(2);
    CHECK(publish_step(r, w) == 1 && file_size(1) == full);
    float s[6];
    for (uint64_t v = 2; v <= 5; v++) {
        CHECK(publish_step(r, w) == v);
        CHECK_MSG(file_size(v) < full / 10, "version %llu: %ld bytes of %ld", (unsigned long long)v, file_size(v), full);
        s[v] = score_of(r, 0, NULL);
    }
    CHECK(s[5] != s[4]);
    CHECK_MSG(!strcmp(versions(r), "1,4,5") && !file_exists(2), "retention kept %s", versions(r));
    printf("ok deltas: %ld of %ld bytes; retention keeps the base: %s\n", file_size(5), full, versions(r));

    mmr_registry_free(r);
    r = open_reg(2);
    uint64_t used = 0;
    float again = score_of(r, 0, &used);
    CHECK(used == 5 && memcmp(&again, &s[5], sizeof again) == 0);
    CHECK_OK(mmr_registry_rollback(r, NULL, &err), &err);
    again = score_of(r, 0, &used);
    CHECK(used == 4 && memcmp(&again, &s[4], sizeof again) == 0);
    CHECK_OK(mmr_registry_unpin(r, &err), &err);
    printf("ok deltas load bit-exact after reopen, and after a rollback (%.9g)\n", again);

    CHECK(publish_step(r, w) == 6 && file_size(6) == full); /* after a restart: full */
    CHECK(publish_step(r, w) == 7 && file_size(7) < full / 10);
    mmr_tower_t *fresh = mt_tower(8);                       /* every block changed */
    uint64_t v = 0;
    CHECK_OK(mmr_registry_publish(r, fresh, 1, &v, &err), &err);
    CHECK(v == 8 && file_size(8) == full);
    mmr_tower_free(w);
    w = mt_tower(8);
    CHECK(publish_step(r, w) == 9 && file_size(9) < full / 10);
    CHECK_MSG(!strcmp(versions(r), "8,9") && !file_exists(1) && !file_exists(6), "retention kept %s", versions(r));
    printf("ok full files after a restart and when changes outgrow delta_max; old bases dropped: %s\n",
           versions(r));

    /* a missing base takes the deltas over it along; a corrupt one leaves nothing loadable */
    mmr_registry_free(r);
    r = open_reg(10);
    CHECK(publish_step(r, w) == 10 && file_size(10) == full && publish_step(r, w) == 11 && file_size(11) < full / 10);
    CHECK(!strcmp(versions(r), "8,9,10,11"));
    mmr_registry_free(r);
    char p[256];
    snprintf(p, sizeof p, "%s/model-%020llu.mmrt", model_dir, 8ull);
    CHECK(unlink(p) == 0);
    r = open_reg(10);
    CHECK_MSG(!strcmp(versions(r), "10,11") && !file_exists(9) && serving(r, NULL) == 11, "after losing base 8: %s",
              versions(r));
    mmr_registry_free(r);
    snprintf(p, sizeof p, "%s/model-%020llu.mmrt", model_dir, 10ull);
    FILE *f = fopen(p, "r+");
    CHECK(f && fseek(f, 100, SEEK_SET) == 0 && fputs("garbage", f) >= 0 && fclose(f) == 0);
    r = open_reg(10);
    CHECK_MSG(!strcmp(versions(r), "") && serving(r, NULL) == 0, "after a corrupt base 10: %s", versions(r));
    CHECK(publish_step(r, w) == 12 && file_size(12) == full && serving(r, NULL) == 12);
    printf("ok deltas over a missing base unregistered; over a corrupt base refused, then a full publish\n");
    mmr_tower_free(w);
    mmr_registry_free(r);
    mmr_fstore_close(fs);
    mt_rmdir(dir);
    delta_max = 0;
}

int main(void) {
    char dir[64];
    setup(dir, 3);
    mmr_err_t err = {0};
    uint64_t prev = 0;
    int pinned = -1;

    /* empty registry: nothing serves */
    mmr_registry_t *r = open_reg(4);
    mmr_model_ref_t ref;
    CHECK(serving(r, NULL) == 0 && mmr_registry_acquire(r, 0, &ref, &err) == MMR_ERR_NOT_FOUND);
    CHECK(mmr_registry_rollback(r, NULL, &err) == MMR_ERR_NOT_FOUND);

    /* lifecycle */
    CHECK(publish(r) == 1 && publish(r) == 2 && publish(r) == 3);
    CHECK(serving(r, &pinned) == 3 && !pinned && !strcmp(versions(r), "1,2,3"));
    CHECK_OK(mmr_registry_promote(r, 1, &prev, &err), &err);
    CHECK(prev == 3 && serving(r, &pinned) == 1 && !pinned);
    CHECK(publish(r) == 4 && serving(r, NULL) == 4);          /* promote does not pin */
    CHECK_OK(mmr_registry_pin(r, 2, &prev, &err), &err);
    CHECK(prev == 4 && serving(r, &pinned) == 2 && pinned);
    CHECK(publish(r) == 5 && serving(r, NULL) == 2);           /* pinned: publish does not serve */
    CHECK_OK(mmr_registry_unpin(r, &err), &err);
    CHECK(serving(r, &pinned) == 2 && !pinned);
    CHECK(publish(r) == 6 && serving(r, NULL) == 6);
    CHECK_OK(mmr_registry_rollback(r, &prev, &err), &err);     /* back to 2, pinned */
    CHECK(prev == 6 && serving(r, &pinned) == 2 && pinned);
    CHECK_OK(mmr_registry_rollback(r, &prev, &err), &err);     /* undoes the rollback */
    CHECK(prev == 2 && serving(r, &pinned) == 6 && pinned);
    CHECK(mmr_registry_promote(r, 99, NULL, &err) == MMR_ERR_NOT_FOUND && strstr(err.msg, "99"));
    CHECK(mmr_registry_acquire(r, 99, &ref, &err) == MMR_ERR_NOT_FOUND);
    printf("ok publish/promote/pin/unpin/rollback (rollback twice undoes it)\n");

    /* retention: keep 4 newest + serving + previous; files follow records */
    CHECK_OK(mmr_registry_unpin(r, &err), &err);
    for (int i = 0; i < 4; i++) publish(r);                    /* 7..10, serving 10, previous 9 */
    CHECK_MSG(!strcmp(versions(r), "7,8,9,10"), "%s", versions(r));
    CHECK(!file_exists(1) && !file_exists(6) && file_exists(7) && file_exists(10));
    CHECK_OK(mmr_registry_pin(r, 7, NULL, &err), &err);
    for (int i = 0; i < 4; i++) publish(r);                    /* 11..14; 7 pinned, 10 previous */
    CHECK_MSG(!strcmp(versions(r), "7,10,11,12,13,14"), "%s", versions(r));
    CHECK(serving(r, NULL) == 7);
    printf("ok retention keeps the newest 4 plus serving and previous: %s\n", versions(r));

    /* persistence */
    float s7 = score_of(r, 0, NULL);
    mmr_registry_free(r);
    r = open_reg(4);
    CHECK(serving(r, &pinned) == 7 && pinned && !strcmp(versions(r), "7,10,11,12,13,14"));
    CHECK(score_of(r, 0, NULL) == s7);
    CHECK_OK(mmr_registry_rollback(r, &prev, &err), &err);    /* previous survived too */
    CHECK(serving(r, NULL) == 10);
    CHECK_OK(mmr_registry_unpin(r, &err), &err);
    printf("ok reopen restores versions, serving, pin and previous\n");

    /* rollback restores the previous version's scores bit for bit */
    uint64_t used = 0;
    CHECK(publish(r) == 15);
    float before = score_of(r, 0, &used);
    CHECK(used == 15 && publish(r) == 16);
    float after = score_of(r, 0, &used);
    CHECK(used == 16 && after != before);
    CHECK_OK(mmr_registry_rollback(r, NULL, &err), &err);
    float back = score_of(r, 0, &used);
    CHECK(used == 15 && memcmp(&back, &before, sizeof back) == 0);
    printf("ok rollback gives bit-identical scores (%.9g)\n", back);
    CHECK_OK(mmr_registry_unpin(r, &err), &err);
    CHECK(publish(r) == 17);
    mmr_registry_free(r);

    /* crash 1: a file written but never registered (next version number) */
    char p[256];
    snprintf(p, sizeof p, "%s/model-%020llu.mmrt", model_dir, 18ull);
    mmr_tower_t *t = mt_tower(999);
    CHECK_OK(mmr_tower_save(t, p, &err), &err);
    mmr_tower_free(t);
    snprintf(p, sizeof p, "%s/model-%020llu.mmrt.tmp.123", model_dir, 19ull);
    FILE *f = fopen(p, "w");
    CHECK(f && fputs("half", f) >= 0 && fclose(f) == 0);
    r = open_reg(4);
    CHECK(serving(r, NULL) == 17 && !file_exists(18) && access(p, F_OK) != 0);
    CHECK(publish(r) == 20); /* numbers are never reused, not even an orphan's or a temp file's */
    printf("ok unregistered and temp files removed, serving unchanged, numbering continues\n");

    /* crash 2: a registered version's file missing (15), the serving one's corrupt (20) */
    mmr_registry_free(r);
    snprintf(p, sizeof p, "%s/model-%020llu.mmrt", model_dir, 15ull);
    CHECK(unlink(p) == 0);
    snprintf(p, sizeof p, "%s/model-%020llu.mmrt", model_dir, 20ull);
    f = fopen(p, "r+");
    CHECK(f && fseek(f, 200, SEEK_SET) == 0 && fputs("garbage", f) >= 0 && fclose(f) == 0);
    r = open_reg(4);
    CHECK_MSG(serving(r, NULL) == 17 && !strcmp(versions(r), "16,17"), "serving %llu versions %s",
              (unsigned long long)serving(r, NULL), versions(r));
    CHECK(!file_exists(20) && score_of(r, 0, &used) == score_of(r, 17, NULL) && used == 17);
    CHECK(publish(r) == 21);
    printf("ok missing/corrupt versions unregistered, newest loadable (17) served: %s\n", versions(r));

    /* experiments */
    static const char *bad[] = {"exp1", "exp1=control:17", "exp1=control:17:0", "exp1=a:17:5,a:16:5",
                                "exp 1=a:17:5", "e=a:17:5;e=b:16:1", "e=a/b:17:1", "e=a:99:1",
                                "e=a:x:1", "e=a:17:-1", "e=a:17:2:3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mmr_status_t st = mmr_registry_set_experiments(r, bad[i], &err);
        CHECK_MSG(st == MMR_ERR_INVALID || st == MMR_ERR_NOT_FOUND, "%s accepted", bad[i]);
        printf("   refused %-22s %s\n", bad[i], err.msg);
    }
    CHECK_OK(mmr_registry_set_experiments(r, "exp1=control:17:50,treat:16:50;solo=only:21:1", &err), &err);
    mmr_registry_arm_t arm;
    int control = 0;
    for (int u = 0; u < 10000; u++) {
        char uid[16];
        snprintf(uid, sizeof uid, "user%d", u);
        CHECK_OK(mmr_registry_assign(r, "exp1", uid, &arm, &err), &err);
        mmr_registry_arm_t again;
        CHECK(mmr_registry_assign(r, "exp1", uid, &again, NULL) == MMR_OK && again.version == arm.version);
        control += !strcmp(arm.arm, "control");
        CHECK(arm.version == (strcmp(arm.arm, "control") ? 16u : 17u));
    }
    CHECK_MSG(control > 4700 && control < 5300, "control %d of 10000", control);
    CHECK(mmr_registry_assign(r, "nope", "u", &arm, &err) == MMR_ERR_NOT_FOUND);
    CHECK_OK(mmr_registry_acquire(r, 16, &ref, &err), &err); /* arm versions are loaded */
    mmr_registry_release(r, &ref);
    mmr_registry_count_impressions(r, "exp1/treat", 10);
    mmr_registry_count_example(r, "exp1/treat", 1);
    mmr_registry_count_example(r, "exp1/treat", 0);
    mmr_registry_count_example(r, "exp1/nosuch", 1);
    mmr_registry_count_example(r, NULL, 1);
    mmr_registry_arm_stats_t as[4];
    CHECK(mmr_registry_experiment_stats(r, as, 4) == 3);
    CHECK(!strcmp(as[1].arm, "treat") && as[1].impressions == 10 && as[1].clicks == 1 && as[1].examples == 2 &&
          as[0].clicks == 0 && as[0].examples == 0);
    printf("ok experiments: sticky split %d/10000 control, counters, bad specs refused\n", control);

    mmr_registry_free(r);
    mmr_registry_free(NULL);
    mmr_fstore_close(fs);
    mt_rmdir(dir);
    deltas();
    model_opts();
    return 0;
}
