/* cli_rpc.c — `mmrec rank` and `mmrec health`: gRPC calls to a running mmrecd, and the
 * connection options every RPC command shares (mmr_cli_connect). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "grpc/health/v1/health.pb-c.h"
#include "mmr_rpc.h"
#include "mmrec/v1/ranking.pb-c.h"

/* The token may come from MMREC_TOKEN so that it does not show in the process list. */
mmr_rpc_client_t *mmr_cli_connect(int argc, char **argv) {
    mmr_rpc_client_opts_t o = {
        .ca_pem_path = mmr_cli_opt(argc, argv, "ca", NULL),
        .cert_pem_path = mmr_cli_opt(argc, argv, "cert", NULL),
        .key_pem_path = mmr_cli_opt(argc, argv, "key", NULL),
        .ssl_target_name = mmr_cli_opt(argc, argv, "tls-name", NULL),
        .bearer_token = mmr_cli_opt(argc, argv, "token", getenv("MMREC_TOKEN")),
    };
    if ((o.cert_pem_path || o.key_pem_path || o.ssl_target_name) && !o.ca_pem_path) {
        fprintf(stderr, "mmrec: --cert, --key and --tls-name need --ca (TLS)\n");
        exit(2);
    }
    const char *addr = mmr_cli_opt(argc, argv, "addr", "127.0.0.1:50051");
    mmr_rpc_client_t *c = NULL;
    mmr_err_t err = {0};
    if (mmr_rpc_client_new(addr, &o, &c, &err) != MMR_OK) {
        fprintf(stderr, "mmrec: %s\n", err.msg);
        exit(1);
    }
    return c;
}

int mmr_cli_rank(int argc, char **argv) {
    static const char *const valued[] = {MMR_CLI_CONNECT_OPTS, "user", "candidates", "top-k", "deadline-ms", NULL};
    static const char *const flags[] = {"exclude-seen", NULL};
    if (!mmr_cli_check_opts(argc, argv, valued, flags)) return 2;
    const char *user = mmr_cli_opt(argc, argv, "user", NULL);
    const char *cands = mmr_cli_opt(argc, argv, "candidates", NULL);
    if (!user || !cands) {
        fprintf(stderr, "mmrec rank: --user and --candidates are required\n");
        return 2;
    }
    char *list = strdup(cands);
    size_t n = 1;
    for (const char *p = cands; *p; p++) n += *p == ',';
    char **ids = calloc(n, sizeof *ids);
    size_t k = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) ids[k++] = t;

    Mmrec__V1__RankRequest req = MMREC__V1__RANK_REQUEST__INIT;
    req.user_id = (char *)user;
    req.candidates = ids;
    req.n_candidates = k;
    req.top_k = (uint32_t)atoi(mmr_cli_opt(argc, argv, "top-k", "0"));
    req.exclude_seen = mmr_cli_flag(argc, argv, "exclude-seen");
    mmr_rpc_client_t *c = mmr_cli_connect(argc, argv);
    ProtobufCMessage *out = NULL;
    mmr_err_t err = {0};
    int rc = 0;
    if (mmr_rpc_call(c, "/mmrec.v1.Ranker/Rank", &req.base, &mmrec__v1__rank_response__descriptor,
                     &out, atoi(mmr_cli_opt(argc, argv, "deadline-ms", "2000")), NULL, &err) != MMR_OK) {
        fprintf(stderr, "mmrec rank: %s\n", err.msg);
        rc = 1;
    } else {
        Mmrec__V1__RankResponse *r = (Mmrec__V1__RankResponse *)out;
        printf("user %s  request %s  model v%llu  unknown candidates %u\n", user, r->request_id,
               (unsigned long long)r->model_version, r->unknown_candidates);
        for (size_t i = 0; i < r->n_items; i++)
            printf("%4zu  %-24s %9.4f\n", i + 1, r->items[i]->item_id, r->items[i]->score);
        protobuf_c_message_free_unpacked(out, NULL);
    }
    mmr_rpc_client_free(c);
    free(ids);
    free(list);
    return rc;
}

int mmr_cli_health(int argc, char **argv) {
    static const char *const valued[] = {MMR_CLI_CONNECT_OPTS, "service", "deadline-ms", NULL};
    if (!mmr_cli_check_opts(argc, argv, valued, NULL)) return 2;
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)mmr_cli_opt(argc, argv, "service", "");
    mmr_rpc_client_t *c = mmr_cli_connect(argc, argv);
    ProtobufCMessage *out = NULL;
    mmr_err_t err = {0};
    int rc = 1;
    if (mmr_rpc_call(c, "/grpc.health.v1.Health/Check", &req.base,
                     &grpc__health__v1__health_check_response__descriptor, &out,
                     atoi(mmr_cli_opt(argc, argv, "deadline-ms", "2000")), NULL, &err) != MMR_OK) {
        fprintf(stderr, "mmrec health: %s\n", err.msg);
    } else {
        Grpc__Health__V1__HealthCheckResponse *r = (Grpc__Health__V1__HealthCheckResponse *)out;
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            &grpc__health__v1__health_check_response__serving_status__descriptor, (int)r->status);
        printf("%s\n", v ? v->name : "?");
        rc = r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0 : 1;
        protobuf_c_message_free_unpacked(out, NULL);
    }
    mmr_rpc_client_free(c);
    return rc;
}
