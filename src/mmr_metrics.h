/* mmr_metrics.h — Prometheus text exposition over HTTP (libmicrohttpd).
 * GET /metrics calls the render callback with a memory stream to write into; any other
 * path is 404. The callback runs on libmicrohttpd's thread and must be thread-safe. */
#ifndef MMR_METRICS_H
#define MMR_METRICS_H

#include <stdio.h>

#include "mmr_err.h"

typedef struct mmr_metrics mmr_metrics_t;
typedef void (*mmr_metrics_render_fn)(void *opaque, FILE *out);

/* listen: "127.0.0.1:9464" (port 0 = a free port). *out owned; mmr_metrics_free. */
mmr_status_t mmr_metrics_new(const char *listen, mmr_metrics_render_fn fn, void *opaque,
                             mmr_metrics_t **out, mmr_err_t *err);
int mmr_metrics_port(const mmr_metrics_t *m);
void mmr_metrics_free(mmr_metrics_t *m);

#endif
