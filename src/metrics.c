/* metrics.c — /metrics HTTP endpoint on libmicrohttpd's internal thread (see mmr_metrics.h). */
#include "mmr_metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct mmr_metrics {
    struct MHD_Daemon *d;
    mmr_metrics_render_fn fn;
    void *opaque;
    int port;
};

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    mmr_metrics_t *m = cls;
    struct MHD_Response *resp;
    unsigned code = MHD_HTTP_OK;
    if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0) {
        static const char nf[] = "not found: try GET /metrics\n";
        resp = MHD_create_response_from_buffer(sizeof nf - 1, (void *)nf, MHD_RESPMEM_PERSISTENT);
        code = MHD_HTTP_NOT_FOUND;
    } else {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) return MHD_NO;
        m->fn(m->opaque, f);
        fclose(f);
        resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    }
    enum MHD_Result r = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return r;
}

mmr_status_t mmr_metrics_new(const char *listen, mmr_metrics_render_fn fn, void *opaque,
                             mmr_metrics_t **out, mmr_err_t *err) {
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return mmr_err_set(err, MMR_ERR_INVALID, "metrics.listen '%s': expected host:port", listen);
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return mmr_err_set(err, MMR_ERR_INVALID, "metrics.listen '%s': host must be an IPv4 address", listen);
    mmr_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    m->fn = fn;
    m->opaque = opaque;
    m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            handle, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!m->d) {
        free(m);
        return mmr_err_set(err, MMR_ERR_IO, "cannot listen for metrics on %s", listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    m->port = info ? info->port : 0;
    *out = m;
    return MMR_OK;
}

int mmr_metrics_port(const mmr_metrics_t *m) { return m->port; }

void mmr_metrics_free(mmr_metrics_t *m) {
    if (!m) return;
    MHD_stop_daemon(m->d);
    free(m);
}
