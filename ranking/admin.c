/* admin.c — mmrec.v1.Admin handlers over the registry (see mmr_admin.h). Each decodes its
 * request, calls the registry (writer side: may load a model, so it can take seconds) and
 * answers from the arena. Not the registry logic. */
#include "mmr_admin.h"

#include <stdio.h>
#include <stdlib.h>

#include "mmrec/v1/admin.pb-c.h"

static int rpc_status(mmr_status_t st) {
    switch (st) {
    case MMR_OK: return MMR_RPC_OK;
    case MMR_ERR_NOT_FOUND: return MMR_RPC_NOT_FOUND;
    case MMR_ERR_IO:
    case MMR_ERR_CORRUPT: return MMR_RPC_FAILED_PRECONDITION;
    case MMR_ERR_BUSY: return MMR_RPC_UNAVAILABLE;
    default: return MMR_RPC_INTERNAL;
    }
}

static void fail(mmr_rpc_reply_t *reply, int status, const char *msg) {
    reply->status = status;
    snprintf(reply->message, sizeof reply->message, "%s", msg);
}

static void list_models(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply) {
    mmr_registry_t *reg = opaque;
    Mmrec__V1__ListModelsRequest *in = mmrec__v1__list_models_request__unpack(NULL, req->len, req->data);
    if (!in) return fail(reply, MMR_RPC_INVALID_ARGUMENT, "undecodable ListModelsRequest");
    mmrec__v1__list_models_request__free_unpacked(in, NULL);
    mmr_model_info_t *info = NULL;
    size_t n = 0;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_registry_list(reg, &info, &n, &err);
    if (st != MMR_OK) return fail(reply, rpc_status(st), err.msg);
    mmr_registry_arm_stats_t arms[64];
    size_t na = mmr_registry_experiment_stats(reg, arms, 64);
    if (na > 64) na = 64;
    Mmrec__V1__ListModelsResponse *out = mmr_arena_alloc(req->arena, sizeof *out);
    Mmrec__V1__ModelInfo *mi = mmr_arena_alloc(req->arena, (n + 1) * sizeof *mi);
    Mmrec__V1__ModelInfo **mp = mmr_arena_alloc(req->arena, (n + 1) * sizeof *mp);
    Mmrec__V1__ArmStats *as = mmr_arena_alloc(req->arena, (na + 1) * sizeof *as);
    Mmrec__V1__ArmStats **ap = mmr_arena_alloc(req->arena, (na + 1) * sizeof *ap);
    if (!out || !mi || !mp || !as || !ap) {
        free(info);
        return fail(reply, MMR_RPC_RESOURCE_EXHAUSTED, "out of memory");
    }
    mmrec__v1__list_models_response__init(out);
    for (size_t i = 0; i < n; i++) {
        mmrec__v1__model_info__init(&mi[i]);
        mi[i].version = info[i].version;
        mi[i].created_ms = info[i].created_ms;
        mi[i].examples_seen = info[i].examples_seen;
        mi[i].serving = info[i].serving;
        mi[i].pinned = info[i].pinned;
        mi[i].loaded = info[i].loaded;
        mp[i] = &mi[i];
    }
    free(info);
    for (size_t i = 0; i < na; i++) {
        mmrec__v1__arm_stats__init(&as[i]);
        as[i].experiment = mmr_arena_strdup(req->arena, arms[i].experiment);
        as[i].arm = mmr_arena_strdup(req->arena, arms[i].arm);
        as[i].version = arms[i].version;
        as[i].weight = arms[i].weight;
        as[i].impressions = arms[i].impressions;
        as[i].clicks = arms[i].clicks;
        ap[i] = &as[i];
    }
    out->models = mp;
    out->n_models = n;
    out->arms = ap;
    out->n_arms = na;
    int pinned = 0;
    out->serving_version = mmr_registry_serving(reg, &pinned);
    out->pinned = pinned;
    reply->status = MMR_RPC_OK;
    reply->msg = &out->base;
}

/* Answers a serving change: st from the registry, previous = serving before it. */
static void change_reply(mmr_registry_t *reg, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply,
                         mmr_status_t st, uint64_t previous, const mmr_err_t *err) {
    if (st != MMR_OK) return fail(reply, rpc_status(st), err->msg);
    Mmrec__V1__ModelChangeResponse *out = mmr_arena_alloc(req->arena, sizeof *out);
    if (!out) return fail(reply, MMR_RPC_RESOURCE_EXHAUSTED, "out of memory");
    mmrec__v1__model_change_response__init(out);
    int pinned = 0;
    out->serving_version = mmr_registry_serving(reg, &pinned);
    out->pinned = pinned;
    out->previous_version = previous;
    reply->status = MMR_RPC_OK;
    reply->msg = &out->base;
}

static void promote(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply) {
    Mmrec__V1__PromoteRequest *in = mmrec__v1__promote_request__unpack(NULL, req->len, req->data);
    if (!in) return fail(reply, MMR_RPC_INVALID_ARGUMENT, "undecodable PromoteRequest");
    uint64_t v = in->version, previous = 0;
    mmrec__v1__promote_request__free_unpacked(in, NULL);
    if (!v) return fail(reply, MMR_RPC_INVALID_ARGUMENT, "version is required");
    mmr_err_t err = {0};
    mmr_status_t st = mmr_registry_promote(opaque, v, &previous, &err);
    change_reply(opaque, req, reply, st, previous, &err);
}

static void pin(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply) {
    Mmrec__V1__PinRequest *in = mmrec__v1__pin_request__unpack(NULL, req->len, req->data);
    if (!in) return fail(reply, MMR_RPC_INVALID_ARGUMENT, "undecodable PinRequest");
    uint64_t v = in->version, previous = mmr_registry_serving(opaque, NULL);
    mmrec__v1__pin_request__free_unpacked(in, NULL);
    mmr_err_t err = {0};
    mmr_status_t st = v ? mmr_registry_pin(opaque, v, &previous, &err) : mmr_registry_unpin(opaque, &err);
    change_reply(opaque, req, reply, st, previous, &err);
}

static void rollback(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply) {
    Mmrec__V1__RollbackRequest *in = mmrec__v1__rollback_request__unpack(NULL, req->len, req->data);
    if (!in) return fail(reply, MMR_RPC_INVALID_ARGUMENT, "undecodable RollbackRequest");
    mmrec__v1__rollback_request__free_unpacked(in, NULL);
    uint64_t previous = 0;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_registry_rollback(opaque, &previous, &err);
    change_reply(opaque, req, reply, st, previous, &err);
}

mmr_status_t mmr_admin_register(mmr_server_t *s, mmr_registry_t *reg, mmr_err_t *err) {
    static const struct { const char *path; mmr_server_unary_fn fn; } methods[] = {
        {"/mmrec.v1.Admin/ListModels", list_models},
        {"/mmrec.v1.Admin/Promote", promote},
        {"/mmrec.v1.Admin/Pin", pin},
        {"/mmrec.v1.Admin/Rollback", rollback},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        mmr_status_t st = mmr_server_add_method(s, methods[i].path, methods[i].fn, reg, err);
        if (st != MMR_OK) return st;
    }
    return MMR_OK;
}
