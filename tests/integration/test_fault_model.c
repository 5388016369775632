/* test_fault_model.c — corrupt and truncated model files, against a real broker and real
 * mmrecd processes.
 *
 * mmrecd trains online on a 1,000-item catalog and 20,000 events (truth.h) until it has
 * published at least 4 model versions, then stops. While it is stopped:
 *   A. bytes in the middle of the newest file model-<N>.mmrt are flipped: on start the
 *      version is refused with a log line naming the file and "checksum mismatch", and
 *      N-1 serves;
 *   B. model-<N-1>.mmrt is cut to half its size, and bytes of the oldest file are flipped:
 *      on start N-1 is refused with a log line naming the file and "truncated", N-2 serves;
 *      then `mmrec model promote <oldest>` over the Admin RPC fails with an error naming the
 *      corruption, and N-2 still serves.
 * The restarts run with the trainer off so that no new version hides the outcome.
 * Usage: test_fault_model PATH/TO/mmrecd PATH/TO/mmrec  (under with_kafka.sh) */
#include <dirent.h>
#include <sys/stat.h>

#include "fault.h"

#define N_EVENTS 20000
#define N_USERS 2000
#define N_ITEMS 1000

/* Version numbers of the model files in dir, ascending, into v[cap]; returns the count. */
static int model_files(const char *dir, uint64_t *v, int cap) {
    DIR *d = opendir(dir);
    CHECK_MSG(d, "opendir %s", dir);
    int n = 0;
    unsigned long long x;
    char tail[16];
    for (struct dirent *e; (e = readdir(d)) && n < cap;)
        if (sscanf(e->d_name, "model-%llu.%15s", &x, tail) == 2 && !strcmp(tail, "mmrt")) v[n++] = x;
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort: a handful of files */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) { uint64_t t = v[j]; v[j] = v[j - 1]; v[j - 1] = t; }
    return n;
}

static void model_path(char *out, size_t cap, const char *dir, uint64_t v) {
    snprintf(out, cap, "%s/model-%020llu.mmrt", dir, (unsigned long long)v);
}

/* Flips 16 bytes in the middle of the file at path. */
static void flip_bytes(const char *path) {
    FILE *f = fopen(path, "r+b");
    CHECK_MSG(f, "open %s", path);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long mid = ftell(f) / 2;
    uint8_t b[16];
    CHECK(fseek(f, mid, SEEK_SET) == 0 && fread(b, 1, sizeof b, f) == sizeof b);
    for (size_t i = 0; i < sizeof b; i++) b[i] ^= 0xa5;
    CHECK(fseek(f, mid, SEEK_SET) == 0 && fwrite(b, 1, sizeof b, f) == sizeof b);
    CHECK(fclose(f) == 0);
}

/* Starts mmrecd, requires a log line naming file and reason, and returns the serving version. */
static uint64_t start_refusing(test_daemon_t *d, const char *bin, const char *work, char *const *args,
                               const char *log_path, const char *file, const char *reason) {
    fault_daemon_start(d, bin, work, args, log_path);
    const char *base = strrchr(file, '/') + 1;
    char line[1024];
    CHECK_MSG(fault_log_find(log_path, line, sizeof line, (const char *const[]){base, reason, NULL}),
              "no log line naming %s and '%s' in %s", base, reason, log_path);
    uint64_t serving, newest;
    fault_list_models(d->target, &serving, &newest, NULL);
    CHECK_MSG(serving == newest, "serving v%llu, newest registered v%llu", (unsigned long long)serving,
              (unsigned long long)newest);
    printf("   log: %s\n", strstr(line, "registry") ? strstr(line, "registry") : line);
    return serving;
}

int main(int argc, char **argv) {
    if (fault_env_init(argc, 2, "the mmrecd and mmrec paths", "fmodel")) return MMR_TEST_SKIP;
    const char *brokers = fault_env.brokers, *work = fault_env.work, *log_path = fault_env.log_path;
    char *store_opt = fault_env.store_opt, *brokers_opt = fault_env.brokers_opt, models[256], file[512];
    snprintf(models, sizeof models, "%s/store/models", work);
    /* full files only: the scenarios corrupt single versions (test_registry covers a
     * corrupt or missing delta base) */
    char *train_args[] = {store_opt, brokers_opt, "--ingest.group=fmodel", FAULT_DAEMON_OPTS,
                          "--model.delta_max=0", NULL};
    char *args[] = {store_opt, brokers_opt, "--ingest.group=fmodel", FAULT_DAEMON_OPTS, "--trainer.enabled=false",
                    NULL};

    rd_kafka_t *rk = truth_producer_new(brokers);
    fault_produce_catalog(rk, N_ITEMS);
    truth_t truth;
    truth_init(&truth, N_EVENTS, N_USERS, N_ITEMS, 5, mmr_now_ms() - 3600 * 1000);
    test_daemon_t d;
    fault_daemon_start(&d, argv[1], work, train_args, log_path);
    long pubs = 0;
    for (int round = 0; round < 10 && pubs < 4; round++) { /* a publish needs new examples */
        truth_produce(&truth, rk, N_EVENTS / 10, 30000);
        for (int i = 0; i < 20; i++) sleep_ms(100);
        pubs = truth_metric(d.metrics_port, "mmrec_trainer_publishes_total");
    }
    CHECK(daemon_stop(&d, SIGTERM) == 0);
    uint64_t v[64];
    int n = model_files(models, v, 64);
    CHECK_MSG(n >= 4, "only %d model files after %ld publishes", n, pubs);
    printf("ok trained: %ld publishes, model files v%llu..v%llu\n", pubs, (unsigned long long)v[0],
           (unsigned long long)v[n - 1]);

    /* --- A: flipped bytes in the newest ------------------------------------------------ */
    model_path(file, sizeof file, models, v[n - 1]);
    flip_bytes(file);
    uint64_t serving = start_refusing(&d, argv[1], work, args, log_path, file, "checksum mismatch");
    CHECK_MSG(serving == v[n - 2], "serving v%llu, want v%llu", (unsigned long long)serving,
              (unsigned long long)v[n - 2]);
    printf("ok v%llu (flipped bytes) refused at start, v%llu serves\n", (unsigned long long)v[n - 1],
           (unsigned long long)serving);
    CHECK(daemon_stop(&d, SIGTERM) == 0);

    /* --- B: a truncated one, and a corrupt version promoted over the Admin RPC ---------- */
    model_path(file, sizeof file, models, v[n - 2]);
    struct stat sb;
    CHECK(stat(file, &sb) == 0 && truncate(file, sb.st_size / 2) == 0);
    char old_file[512];
    model_path(old_file, sizeof old_file, models, v[0]);
    flip_bytes(old_file);
    serving = start_refusing(&d, argv[1], work, args, log_path, file, "truncated");
    CHECK_MSG(serving == v[n - 3], "serving v%llu, want v%llu", (unsigned long long)serving,
              (unsigned long long)v[n - 3]);
    printf("ok v%llu (truncated to %lld of %lld bytes) refused at start, v%llu serves\n",
           (unsigned long long)v[n - 2], (long long)sb.st_size / 2, (long long)sb.st_size,
           (unsigned long long)serving);

    char cmd[1024], out[4096] = "";
    snprintf(cmd, sizeof cmd, "'%s' model promote %llu --addr %s 2>&1", argv[2], (unsigned long long)v[0], d.target);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    int st = pclose(p);
    out[strcspn(out, "\n")] = '\0';
    printf("   mmrec model promote %llu: exit %d: %s\n", (unsigned long long)v[0], WEXITSTATUS(st), out);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) != 0, "promote of a corrupt version succeeded");
    CHECK_MSG(strstr(out, "checksum mismatch") && strstr(out, strrchr(old_file, '/') + 1),
              "the error does not name the file and the corruption");
    uint64_t after, newest;
    fault_list_models(d.target, &after, &newest, NULL);
    CHECK_MSG(after == serving, "serving changed to v%llu", (unsigned long long)after);
    printf("ok promote of v%llu (flipped bytes) fails with the reason, v%llu still serves\n",
           (unsigned long long)v[0], (unsigned long long)after);
    CHECK(daemon_stop(&d, SIGTERM) == 0);
    rd_kafka_destroy(rk);
    truth_free(&truth);
    printf("test_fault_model: ok\n");
    return 0;
}
