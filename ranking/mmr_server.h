/* mmr_server.h — the gRPC serving engine over grpc core's C API.
 *
 * Serves unary methods registered by the caller (Ranker, Admin) plus the standard
 * grpc.health.v1.Health service (Check and Watch). N worker threads each own a
 * completion queue; a request is decoded, handled and answered on the thread that
 * received it, with memory from a per-call arena released when the call completes.
 *
 * Admission, in order: in-flight bound (RESOURCE_EXHAUSTED at once, never queued),
 * deadline already passed (DEADLINE_EXCEEDED, no work done), then the handler. */
#ifndef MMR_SERVER_H
#define MMR_SERVER_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "mmr_arena.h"
#include "mmr_err.h"

typedef struct mmr_server mmr_server_t;

/* gRPC status codes used by handlers (numerically grpc_status_code). */
enum {
    MMR_RPC_OK = 0,
    MMR_RPC_CANCELLED = 1,
    MMR_RPC_UNKNOWN = 2,
    MMR_RPC_INVALID_ARGUMENT = 3,
    MMR_RPC_DEADLINE_EXCEEDED = 4,
    MMR_RPC_NOT_FOUND = 5,
    MMR_RPC_FAILED_PRECONDITION = 9,
    MMR_RPC_RESOURCE_EXHAUSTED = 8,
    MMR_RPC_UNIMPLEMENTED = 12,
    MMR_RPC_INTERNAL = 13,
    MMR_RPC_UNAVAILABLE = 14,
    MMR_RPC_UNAUTHENTICATED = 16,
};

typedef struct mmr_rpc_request {
    const uint8_t *data;      /* serialised request message */
    size_t len;
    int64_t deadline_ns;      /* mmr_mono_ns() time the client stops waiting; INT64_MAX = none */
    mmr_arena_t *arena;       /* per-call memory, freed after the response is sent */
} mmr_rpc_request_t;

typedef struct mmr_rpc_reply {
    int status;                   /* MMR_RPC_*; MMR_RPC_OK sends msg */
    char message[256];            /* status details for errors */
    const ProtobufCMessage *msg;  /* response, typically allocated in the arena */
} mmr_rpc_reply_t;

/* A unary handler. Runs on a server thread; must be thread-safe. Fills reply. */
typedef void (*mmr_server_unary_fn)(void *opaque, const mmr_rpc_request_t *req,
                                    mmr_rpc_reply_t *reply);

typedef struct mmr_server_conf {
    const char *listen;       /* "127.0.0.1:50051"; port 0 picks a free port */
    int threads;              /* worker threads / completion queues (default: cores) */
    uint32_t max_inflight;    /* admitted concurrent calls (default 256) */
    uint32_t max_message_bytes; /* largest request accepted (default 4 MiB) */
} mmr_server_conf_t;

/* Creates a server bound to conf->listen (not yet serving). Errors: MMR_ERR_RPC (cannot
 * bind; message names the address). */
mmr_status_t mmr_server_new(const mmr_server_conf_t *conf, mmr_server_t **out, mmr_err_t *err);
/* Registers a unary method ("/mmrec.v1.Ranker/Rank"); before mmr_server_start only. */
mmr_status_t mmr_server_add_method(mmr_server_t *s, const char *path, mmr_server_unary_fn fn,
                                   void *opaque, mmr_err_t *err);
mmr_status_t mmr_server_start(mmr_server_t *s, mmr_err_t *err);
/* The port actually bound (useful with port 0). */
int mmr_server_port(const mmr_server_t *s);
/* Sets what Health reports for "" and every service; Watch streams are told at once. */
void mmr_server_set_serving(mmr_server_t *s, int serving);

typedef struct mmr_server_stats {
    uint64_t calls;       /* unary calls answered, any status */
    uint64_t ok;
    uint64_t shed;        /* RESOURCE_EXHAUSTED by the in-flight bound */
    uint64_t expired;     /* DEADLINE_EXCEEDED before work */
    uint32_t inflight;
} mmr_server_stats_t;
void mmr_server_get_stats(mmr_server_t *s, mmr_server_stats_t *out);

/* Stops accepting calls, lets in-flight calls finish for up to grace_ms, then cancels
 * the rest, and joins the threads. Safe to call twice. */
void mmr_server_shutdown(mmr_server_t *s, int grace_ms);
/* Shuts down if needed and frees. NULL is a no-op. */
void mmr_server_free(mmr_server_t *s);

#endif
