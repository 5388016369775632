/* err.c — status names and the error record (see mmr_err.h). */
#include "mmr_err.h"

#include <stdio.h>
#include <string.h>

static const char *const status_names[MMR_STATUS_COUNT] = {
    [MMR_OK] = "MMR_OK",
    [MMR_ERR_INVALID] = "MMR_ERR_INVALID",
    [MMR_ERR_NOT_FOUND] = "MMR_ERR_NOT_FOUND",
    [MMR_ERR_EXISTS] = "MMR_ERR_EXISTS",
    [MMR_ERR_IO] = "MMR_ERR_IO",
    [MMR_ERR_CORRUPT] = "MMR_ERR_CORRUPT",
    [MMR_ERR_NOMEM] = "MMR_ERR_NOMEM",
    [MMR_ERR_STORE] = "MMR_ERR_STORE",
    [MMR_ERR_KAFKA] = "MMR_ERR_KAFKA",
    [MMR_ERR_RPC] = "MMR_ERR_RPC",
    [MMR_ERR_CUDA] = "MMR_ERR_CUDA",
    [MMR_ERR_BUSY] = "MMR_ERR_BUSY",
    [MMR_ERR_TIMEOUT] = "MMR_ERR_TIMEOUT",
    [MMR_ERR_UNSUPPORTED] = "MMR_ERR_UNSUPPORTED",
    [MMR_ERR_INTERNAL] = "MMR_ERR_INTERNAL",
};

const char *mmr_status_str(mmr_status_t code) {
    if ((unsigned)code >= MMR_STATUS_COUNT) return "MMR_ERR_UNKNOWN";
    return status_names[code];
}

mmr_status_t mmr_err_set(mmr_err_t *err, mmr_status_t code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void mmr_err_clear(mmr_err_t *err) {
    if (!err) return;
    err->code = MMR_OK;
    err->msg[0] = '\0';
}
