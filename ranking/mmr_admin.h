/* mmr_admin.h — the mmrec.v1.Admin gRPC methods over a model registry: ListModels,
 * Promote, Pin (0 = unpin), Rollback. Registered on the serving engine like Rank, so the
 * same bearer-token auth, admission and deadlines apply. Not in here: the CLI
 * (src/cli_model.c), the registry itself (mmr_registry.h).
 *
 * Status mapping: version not registered / nothing to roll back to → NOT_FOUND; its file
 * unreadable → FAILED_PRECONDITION; anything else → INTERNAL, with the registry's message. */
#ifndef MMR_ADMIN_H
#define MMR_ADMIN_H

#include "mmr_err.h"
#include "mmr_registry.h"
#include "mmr_server.h"

/* Registers the four methods on s (before mmr_server_start); reg is borrowed and must
 * outlive the server. Errors: as mmr_server_add_method. */
mmr_status_t mmr_admin_register(mmr_server_t *s, mmr_registry_t *reg, mmr_err_t *err);

#endif
