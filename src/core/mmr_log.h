/* mmr_log.h — one logging call for the whole engine, with a swappable sink.
 *
 * The default sink writes "2026-11-23T19:20:01.123Z INFO  [module] message" lines to
 * stderr. librdkafka and gRPC logs are routed here by the modules that own them.
 * Thread-safe: each line is formatted into a local buffer and written in one call.
 * Secrets (tokens, passwords, keys) must never be passed to mmr_log. */
#ifndef MMR_LOG_H
#define MMR_LOG_H

typedef enum {
    MMR_LOG_DEBUG = 0,
    MMR_LOG_INFO,
    MMR_LOG_WARN,
    MMR_LOG_ERROR,
} mmr_log_level_t;

/* A sink receives the formatted message (no trailing newline); msg is valid only
 * during the call. It may be called from any thread. */
typedef void (*mmr_log_sink_fn)(void *opaque, mmr_log_level_t level, const char *module,
                                const char *msg);

void mmr_log(mmr_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Replaces the sink; NULL restores the stderr sink. Not synchronised with concurrent
 * mmr_log calls: set it at start-up. */
void mmr_log_set_sink(mmr_log_sink_fn fn, void *opaque);
void mmr_log_set_level(mmr_log_level_t min_level);
mmr_log_level_t mmr_log_get_level(void);

/* "debug"|"info"|"warn"|"error" → level; returns -1 for anything else. */
int mmr_log_level_parse(const char *s);
const char *mmr_log_level_str(mmr_log_level_t level);

#endif
