/* mmr_err.h — the one status enum of mmrec and an error record carrying a message.
 *
 * Functions that can fail return mmr_status_t and, when given a non-NULL mmr_err_t *,
 * fill it with a human-readable message. Third-party errors (RocksDB char *err,
 * rd_kafka_resp_err_t, cudaError_t, grpc_call_error) are converted to these codes at
 * the single boundary where the library is called. Library code never calls exit(). */
#ifndef MMR_ERR_H
#define MMR_ERR_H

#include <stdarg.h>

typedef enum {
    MMR_OK = 0,
    MMR_ERR_INVALID,     /* bad input from a caller or from the wire */
    MMR_ERR_NOT_FOUND,
    MMR_ERR_EXISTS,
    MMR_ERR_IO,          /* file system */
    MMR_ERR_CORRUPT,     /* checksum / format mismatch */
    MMR_ERR_NOMEM,
    MMR_ERR_STORE,       /* RocksDB */
    MMR_ERR_KAFKA,       /* librdkafka */
    MMR_ERR_RPC,         /* gRPC */
    MMR_ERR_CUDA,        /* CUDA runtime / cuBLAS */
    MMR_ERR_BUSY,        /* overloaded, try later */
    MMR_ERR_TIMEOUT,
    MMR_ERR_UNSUPPORTED,
    MMR_ERR_INTERNAL,
    MMR_STATUS_COUNT
} mmr_status_t;

typedef struct mmr_err {
    mmr_status_t code;
    char msg[256];
} mmr_err_t;

/* Static name of a status, e.g. "MMR_ERR_INVALID". Never NULL. */
const char *mmr_status_str(mmr_status_t code);

/* Records code and a printf-style message in err (err may be NULL) and returns code,
 * so call sites can write `return mmr_err_set(err, MMR_ERR_IO, "open %s: %s", ...)`. */
mmr_status_t mmr_err_set(mmr_err_t *err, mmr_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Resets err to MMR_OK with an empty message. err may be NULL. */
void mmr_err_clear(mmr_err_t *err);

#endif
