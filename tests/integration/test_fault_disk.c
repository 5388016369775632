/* test_fault_disk.c — the feature store's filesystem fills up under ingestion, then space
 * returns; against a real broker and a real mmrecd.
 *
 * The store lives on a 64 MiB tmpfs mounted for the test (needs root with mount rights:
 * otherwise exit 77, skipped). RocksDB runs without fallocate, so that a full filesystem
 * fails the next WAL append at once. mmrecd (trainer off) ingests a 1,000-item catalog
 * and 20,000 events (truth.h); then a filler file takes every free byte and 60,000 more
 * events are produced:
 *   - store writes fail: mmrec_ingest_store_errors_total grows, the log says "store commit
 *     failed", and ingestion stops: the offsets committed to Kafka never pass the ones in
 *     the store (nothing the store lacks is marked consumed),
 *   - health: the server stays SERVING (Rank reads the store), service "mmrec.ingest" is
 *     NOT_SERVING (and SERVING again after the recovery),
 *   - mmrec_ingest_store_failing is 1,
 *   - the filler is deleted: RocksDB clears its background error by itself once the free
 *     space exceeds the largest write buffer (4 MiB here, so that a 64 MiB disk can
 *     recover; it checks every 5 s), the same mmrecd's retry loop goes on and applies
 *     every event within 30 s, the gauge returns to 0, the log says "ingestion resumed",
 *     and after a clean stop the store equals the ground truth: nothing lost, nothing
 *     applied twice.
 * mmrecd dying on the full disk (it did, before the store's info log was limited to fatal
 * messages) fails the test with the last lines of its log.
 * Usage: test_fault_disk PATH/TO/mmrecd  (under with_kafka.sh, as root) */
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "fault.h"

#define N_BEFORE 20000
#define N_FULL 60000
#define N_USERS 5000
#define N_ITEMS 1000
#define RING 64
#define PARTS 4

static char mnt[300];
static void unmount(void) {
    if (umount2(mnt, MNT_DETACH) != 0) fprintf(stderr, "umount %s: %s\n", mnt, strerror(errno));
}

/* Sum of the offsets the ingest group committed to Kafka for mmrec.events. */
static long committed_sum(void) {
    int64_t off[PARTS];
    fault_committed("fdisk", PARTS, off);
    long sum = 0;
    for (int p = 0; p < PARTS; p++) sum += (long)off[p];
    return sum;
}

/* Writes path until the filesystem is full; returns the bytes written. */
static long fill(const char *path) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f, "open %s", path);
    setvbuf(f, NULL, _IONBF, 0);
    static char block[1 << 16];
    long total = 0;
    for (size_t bs = sizeof block; bs >= 512; bs /= 2)
        while (fwrite(block, 1, bs, f) == bs) total += (long)bs;
    fclose(f);
    return total;
}

int main(int argc, char **argv) {
    if (fault_env_init(argc, 1, "the mmrecd path", "fdisk")) return MMR_TEST_SKIP;
    const char *brokers = fault_env.brokers, *work = fault_env.work, *log_path = fault_env.log_path;
    snprintf(mnt, sizeof mnt, "%s/disk", work);
    CHECK(mkdir(mnt, 0755) == 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=64m") != 0) {
        fprintf(stderr, "skip: cannot mount a tmpfs on %s (%s): needs root with mount rights\n", mnt, strerror(errno));
        return MMR_TEST_SKIP;
    }
    atexit(unmount); /* runs before the work folder is removed */
    char filler[400], line[1024];
    snprintf(fault_env.store_opt, sizeof fault_env.store_opt, "--store.path=%s/store", mnt); /* on the tmpfs */
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    char *args[] = {fault_env.store_opt, fault_env.brokers_opt, "--ingest.group=fdisk", "--trainer.enabled=false", FAULT_DAEMON_OPTS,
                    "--rocksdb.allow_fallocate=false",
                    "--rocksdb.write_buffer_size=4194304", NULL};

    rd_kafka_t *rk = truth_producer_new(brokers);
    fault_produce_catalog(rk, N_ITEMS);
    truth_t truth;
    truth_init(&truth, N_BEFORE + N_FULL, N_USERS, N_ITEMS, 31, mmr_now_ms() - 3600 * 1000);
    truth_produce(&truth, rk, N_BEFORE, 60000);
    test_daemon_t d;
    fault_daemon_start(&d, argv[1], work, args, log_path);
    int port = d.metrics_port;
    for (int i = 0; i < 600 && truth_metric(port, "mmrec_ingest_applied_total") < N_BEFORE; i++) sleep_ms(100);
    CHECK(truth_metric(port, "mmrec_ingest_applied_total") == N_BEFORE);
    printf("ok %d events applied to a store on a 64 MiB tmpfs\n", N_BEFORE);

    /* --- full: writes fail, nothing is committed past the store ------------------------- */
    long filled = fill(filler);
    truth_produce(&truth, rk, N_FULL, 60000);
    long errors = 0;
    for (int i = 0; i < 300 && (errors = truth_metric(port, "mmrec_ingest_store_errors_total")) < 3; i++) {
        int st;
        if (waitpid(d.pid, &st, WNOHANG) == d.pid) { /* a crash is a finding: show its last words */
            char cmd[400];
            snprintf(cmd, sizeof cmd, "tail -n 3 '%s' >&2", log_path);
            if (system(cmd) != 0) {}
            CHECK_MSG(0, "mmrecd died on the full disk (%s %d); its log is above",
                      WIFSIGNALED(st) ? "signal" : "exit code", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
        sleep_ms(100);
    }
    CHECK_MSG(errors >= 3, "no store errors 30 s after filling the disk");
    sleep_ms(2000);
    long applied_full = truth_metric(port, "mmrec_ingest_applied_total");
    long committed = committed_sum();
    errors = truth_metric(port, "mmrec_ingest_store_errors_total");
    mmr_rpc_client_t *hc = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_rpc_client_new(d.target, NULL, &hc, &err) == MMR_OK);
    int health = fault_health(hc, ""), ingest_health = fault_health(hc, "mmrec.ingest");
    CHECK_MSG(fault_log_find(log_path, line, sizeof line, (const char *const[]){"store commit failed", NULL}),
              "no 'store commit failed' line in %s", log_path);
    printf("ok disk full (filler %ld bytes): %ld store errors, %ld of %d events applied, %ld committed to "
           "Kafka; health: server %s, mmrec.ingest %s\n   log: %s\n", filled, errors, applied_full,
           N_BEFORE + N_FULL, committed, health == 1 ? "SERVING" : health == 0 ? "NOT_SERVING" : "no answer",
           ingest_health == 1 ? "SERVING" : ingest_health == 0 ? "NOT_SERVING" : "no answer",
           strstr(line, "ingest") ? strstr(line, "ingest") : line);
    CHECK_MSG(health == 1, "the server stopped serving on a full disk (Rank reads the store)");
    CHECK_MSG(ingest_health == 0, "health of mmrec.ingest is not NOT_SERVING while store writes fail");
    CHECK_MSG(applied_full < N_BEFORE + N_FULL, "every event applied on a full disk");
    CHECK_MSG(committed <= applied_full, "Kafka offsets (%ld) committed past the applied events (%ld)", committed,
              applied_full);

    /* --- space returns: ingestion resumes in the same process, nothing lost ------------- */
    CHECK_MSG(truth_metric(port, "mmrec_ingest_store_failing") == 1, "mmrec_ingest_store_failing is not 1 on a full disk");
    CHECK(unlink(filler) == 0);
    int64_t t_freed = mmr_mono_ns();
    long applied = 0;
    for (int i = 0; i < 300 && (applied = truth_metric(port, "mmrec_ingest_applied_total")) < N_BEFORE + N_FULL; i++)
        sleep_ms(100);
    CHECK_MSG(applied == N_BEFORE + N_FULL, "30 s after space returned %ld of %d events applied (%ld store errors)",
              applied, N_BEFORE + N_FULL, truth_metric(port, "mmrec_ingest_store_errors_total"));
    CHECK_MSG(truth_metric(port, "mmrec_ingest_store_failing") == 0, "mmrec_ingest_store_failing still 1");
    for (int i = 0; i < 30 && fault_health(hc, "mmrec.ingest") != 1; i++) sleep_ms(100); /* synced each second */
    CHECK_MSG(fault_health(hc, "mmrec.ingest") == 1, "health of mmrec.ingest not SERVING after the recovery");
    mmr_rpc_client_free(hc);
    CHECK_MSG(fault_log_find(log_path, line, sizeof line, (const char *const[]){"ingestion resumed", NULL}),
              "no 'ingestion resumed' line in %s", log_path);
    printf("ok ingestion resumed in-process %.1f s after space returned\n", (double)(mmr_mono_ns() - t_freed) / 1e9);
    printf("ok space freed: every one of the %d events applied exactly once\n", N_BEFORE + N_FULL);
    CHECK(daemon_stop(&d, SIGTERM) == 0);
    truth_check_store(&truth, fault_store_path(), RING, rk, PARTS);
    rd_kafka_destroy(rk);
    truth_free(&truth);
    printf("test_fault_disk: ok\n");
    return 0;
}
