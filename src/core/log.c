/* log.c — leveled logging with a swappable sink (see mmr_log.h). */
#include "mmr_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static void stderr_sink(void *opaque, mmr_log_level_t level, const char *module,
                        const char *msg) {
    (void)opaque;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[4096];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], module, msg);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) { n = sizeof line - 1; line[n - 1] = '\n'; }
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

static mmr_log_sink_fn sink = stderr_sink;
static void *sink_opaque;
static atomic_int min_level = MMR_LOG_INFO;

void mmr_log(mmr_log_level_t level, const char *module, const char *fmt, ...) {
    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed)) return;
    char msg[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sink(sink_opaque, level, module, msg);
}

void mmr_log_set_sink(mmr_log_sink_fn fn, void *opaque) {
    sink = fn ? fn : stderr_sink;
    sink_opaque = fn ? opaque : NULL;
}

void mmr_log_set_level(mmr_log_level_t level) { atomic_store(&min_level, (int)level); }

mmr_log_level_t mmr_log_get_level(void) { return (mmr_log_level_t)atomic_load(&min_level); }

int mmr_log_level_parse(const char *s) {
    for (int i = 0; i <= MMR_LOG_ERROR; i++)
        if (strcasecmp(s, level_names[i]) == 0) return i;
    return -1;
}

const char *mmr_log_level_str(mmr_log_level_t level) {
    return (unsigned)level <= MMR_LOG_ERROR ? level_names[level] : "?";
}
