/* cli_model.c — `mmrec model list|promote V|pin V|unpin|rollback`: the model lifecycle of
 * a running mmrecd over its mmrec.v1.Admin RPCs (connection options as `mmrec rank`). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mmr_rpc.h"
#include "mmrec/v1/admin.pb-c.h"

static void print_list(const Mmrec__V1__ListModelsResponse *r) {
    printf("serving v%" PRIu64 "%s\n", r->serving_version, r->pinned ? " (pinned)" : "");
    printf("%10s  %-20s %14s  %s\n", "version", "created (UTC)", "examples", "state");
    for (size_t i = 0; i < r->n_models; i++) {
        const Mmrec__V1__ModelInfo *m = r->models[i];
        time_t t = (time_t)(m->created_ms / 1000);
        struct tm tm;
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tm));
        printf("%10" PRIu64 "  %-20s %14" PRIu64 "  %s%s%s\n", m->version, when, m->examples_seen,
               m->serving ? "serving " : "", m->pinned ? "pinned " : "", m->loaded ? "loaded" : "");
    }
    for (size_t i = 0; i < r->n_arms; i++) {
        const Mmrec__V1__ArmStats *a = r->arms[i];
        printf("experiment %s arm %s: v%" PRIu64 " weight %u impressions %" PRIu64 " clicks %" PRIu64
               " ctr %.4f\n", a->experiment, a->arm, a->version, a->weight, a->impressions, a->clicks,
               a->impressions ? (double)a->clicks / (double)a->impressions : 0.0);
    }
}

/* Parses the version operand: a positive integer, or 0 on error (message printed). */
static uint64_t version_arg(int argc, char **argv, const char *verb) {
    char *end;
    unsigned long long v = argc > 1 && argv[1][0] != '-' ? strtoull(argv[1], &end, 10) : 0;
    if (v == 0 || *end) {
        fprintf(stderr, "mmrec model %s: give a version number (a positive integer)\n", verb);
        return 0;
    }
    return v;
}

int mmr_cli_model(int argc, char **argv) {
    static const char *const valued[] = {MMR_CLI_CONNECT_OPTS, "deadline-ms", NULL};
    if (!mmr_cli_check_opts(argc, argv, valued, NULL)) return 2;
    const char *verb = argc > 0 ? argv[0] : "";
    Mmrec__V1__ListModelsRequest lq = MMREC__V1__LIST_MODELS_REQUEST__INIT;
    Mmrec__V1__PromoteRequest prq = MMREC__V1__PROMOTE_REQUEST__INIT;
    Mmrec__V1__PinRequest pq = MMREC__V1__PIN_REQUEST__INIT;
    Mmrec__V1__RollbackRequest rq = MMREC__V1__ROLLBACK_REQUEST__INIT;
    const ProtobufCMessage *req = NULL;
    const ProtobufCMessageDescriptor *desc = &mmrec__v1__model_change_response__descriptor;
    const char *method = NULL;
    if (!strcmp(verb, "list")) {
        req = &lq.base;
        desc = &mmrec__v1__list_models_response__descriptor;
        method = "/mmrec.v1.Admin/ListModels";
    } else if (!strcmp(verb, "promote")) {
        if (!(prq.version = version_arg(argc, argv, verb))) return 2;
        req = &prq.base;
        method = "/mmrec.v1.Admin/Promote";
    } else if (!strcmp(verb, "pin") || !strcmp(verb, "unpin")) {
        if (!strcmp(verb, "pin") && !(pq.version = version_arg(argc, argv, verb))) return 2;
        req = &pq.base;
        method = "/mmrec.v1.Admin/Pin"; /* version 0 = unpin */
    } else if (!strcmp(verb, "rollback")) {
        req = &rq.base;
        method = "/mmrec.v1.Admin/Rollback";
    } else {
        fprintf(stderr, "mmrec model: say list, promote V, pin V, unpin or rollback\n");
        return 2;
    }
    mmr_rpc_client_t *c = mmr_cli_connect(argc, argv);
    ProtobufCMessage *out = NULL;
    mmr_err_t err = {0};
    int rc = 0;
    /* a promote may load a model file and index the catalog: allow time */
    if (mmr_rpc_call(c, method, req, desc, &out, atoi(mmr_cli_opt(argc, argv, "deadline-ms", "60000")), NULL,
                     &err) != MMR_OK) {
        fprintf(stderr, "mmrec model %s: %s\n", verb, err.msg);
        rc = 1;
    } else if (desc == &mmrec__v1__list_models_response__descriptor) {
        print_list((const Mmrec__V1__ListModelsResponse *)out);
    } else {
        const Mmrec__V1__ModelChangeResponse *r = (const Mmrec__V1__ModelChangeResponse *)out;
        printf("serving v%" PRIu64 "%s (was v%" PRIu64 ")\n", r->serving_version, r->pinned ? " pinned" : "",
               r->previous_version);
    }
    if (out) protobuf_c_message_free_unpacked(out, NULL);
    mmr_rpc_client_free(c);
    return rc;
}
