/* test_core.c — core utilities: status names, error records, CRC-32C vectors, arena,
 * log levels and sink, CPU count from the affinity mask, per-thread nice. */
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "mmr_arena.h"
#include "mmr_cpu.h"
#include "mmr_crc32c.h"
#include "mmr_err.h"
#include "mmr_log.h"

/* In its own thread: nice is per thread, and the main thread keeps 0. */
static void *nice_thread(void *arg) {
    int want = *(int *)arg;
    *(int *)arg = mmr_thread_set_nice(want) == 0 && getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)) == want;
    return NULL;
}

static char last_msg[256];
static void capture(void *opaque, mmr_log_level_t level, const char *module, const char *msg) {
    (*(int *)opaque)++;
    snprintf(last_msg, sizeof last_msg, "%s:%s", module, msg);
}

int main(void) {
    CHECK(strcmp(mmr_status_str(MMR_ERR_CORRUPT), "MMR_ERR_CORRUPT") == 0);
    CHECK(strcmp(mmr_status_str((mmr_status_t)999), "MMR_ERR_UNKNOWN") == 0);
    mmr_err_t err = {0};
    CHECK(mmr_err_set(&err, MMR_ERR_IO, "open %s: %d", "x", 5) == MMR_ERR_IO);
    CHECK(err.code == MMR_ERR_IO && strcmp(err.msg, "open x: 5") == 0);
    CHECK(mmr_err_set(NULL, MMR_ERR_INVALID, "ignored") == MMR_ERR_INVALID);
    mmr_err_clear(&err);
    CHECK(err.code == MMR_OK && err.msg[0] == '\0');
    printf("ok errors\n");

    /* RFC 3720 test vectors */
    CHECK(mmr_crc32c(0, "123456789", 9) == 0xE3069283u);
    unsigned char zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    CHECK(mmr_crc32c(0, zeros, 32) == 0x8A9136AAu);
    CHECK(mmr_crc32c(0, ones, 32) == 0x62A8AB43u);
    CHECK(mmr_crc32c(mmr_crc32c(0, "1234", 4), "56789", 5) == 0xE3069283u); /* incremental */
    /* the instruction path (where the CPU has one) equals the table, at every alignment */
    static unsigned char crcbuf[4096 + 16];
    for (size_t i = 0; i < sizeof crcbuf; i++) crcbuf[i] = (unsigned char)(i * 131 + (i >> 7));
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len < 40; len++)
            CHECK(mmr_crc32c(7, crcbuf + off, len) == mmr_crc32c_portable(7, crcbuf + off, len));
    CHECK(mmr_crc32c(0, crcbuf + 3, 4096) == mmr_crc32c_portable(0, crcbuf + 3, 4096));
    CHECK(mmr_crc32c_portable(0, "123456789", 9) == 0xE3069283u);
    printf("ok crc32c vectors; hardware and table paths agree\n");

    mmr_arena_t *a = mmr_arena_new(64);
    char *p = mmr_arena_alloc(a, 10);
    CHECK(p && ((uintptr_t)p & 15) == 0);
    char *big = mmr_arena_alloc(a, 1000); /* larger than a chunk */
    CHECK(big && big[999] == 0);
    memset(big, 'x', 1000);
    CHECK(strcmp(mmr_arena_strdup(a, "hello"), "hello") == 0);
    mmr_arena_reset(a);
    CHECK(mmr_arena_alloc(a, 16) != NULL);
    mmr_arena_free(a);
    mmr_arena_free(NULL);
    printf("ok arena\n");

    int calls = 0;
    mmr_log_set_sink(capture, &calls);
    mmr_log_set_level(MMR_LOG_WARN);
    mmr_log(MMR_LOG_INFO, "t", "dropped");
    mmr_log(MMR_LOG_ERROR, "t", "kept %d", 7);
    CHECK(calls == 1 && strcmp(last_msg, "t:kept 7") == 0);
    CHECK(mmr_log_level_parse("Debug") == MMR_LOG_DEBUG && mmr_log_level_parse("loud") == -1);
    mmr_log_set_sink(NULL, NULL);
    printf("ok log levels and sink\n");

    cpu_set_t all, one;
    CHECK(sched_getaffinity(0, sizeof all, &all) == 0);
    CHECK(mmr_cpu_count() == CPU_COUNT(&all));
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) { CPU_SET(c, &one); break; }
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
    CHECK(mmr_cpu_count() == 1); /* as under taskset -c N */
    CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
    int base = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)), niced = base + 3 > 19 ? 19 : base + 3;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, nice_thread, &niced) == 0 && pthread_join(th, NULL) == 0);
    CHECK(niced && getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)) == base);
    printf("ok cpu count from the affinity mask (%d), per-thread nice\n", CPU_COUNT(&all));
    return 0;
}
