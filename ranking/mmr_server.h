/* mmr_server.h — the gRPC serving engine over grpc core's C API.
 *
 * Serves unary methods registered by the caller (Ranker, Admin) plus the standard
 * grpc.health.v1.Health service (Check and Watch). `threads` acceptor threads take
 * every arriving call at once and admit or refuse it; an admitted call's handler (decode,
 * handle, answer) runs in one of `threads` slots: on the acceptor that admitted it while
 * another acceptor stays out of handlers and the server is not overloaded, else on one of
 * `threads` workers, with memory from a per-call arena released when the call completes.
 * One acceptor is always free to refuse. Health/Check is answered by an acceptor itself, outside admission, so probes
 * stay fast under overload.
 *
 * Admission, in order: bearer token when token auth is on (UNAUTHENTICATED at once,
 * before any decoding; grpc.health.v1 is exempt so probes work unauthenticated), then
 * load: once calls wait for a slot longer than queue_target_ms while they arrive faster
 * than the slots run them, the server is overloaded and admits a call only to a free
 * slot (one waiting call per slot in a mild overload), until the offered load falls
 * below the slots' capacity; never more than max_inflight unanswered calls
 * (mmr_admission.h). A refused call gets RESOURCE_EXHAUSTED at once (it never waits behind
 * a handler). Then, in the slot, deadline already passed (DEADLINE_EXCEEDED, no work
 * done), then the handler.
 *
 * Transport: plaintext, TLS, or mutual TLS (grpc core SSL server credentials), from PEM
 * files read once by mmr_server_new. */
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
    const char *client;       /* client name whose bearer token matched; NULL when token
                                 auth is off. Borrowed, valid until the server is freed. */
} mmr_rpc_request_t;

typedef struct mmr_rpc_reply {
    int status;                   /* MMR_RPC_*; MMR_RPC_OK sends msg */
    char message[256];            /* status details for errors */
    const ProtobufCMessage *msg;  /* response, typically allocated in the arena */
} mmr_rpc_reply_t;

/* A unary handler. Runs on a worker thread; must be thread-safe. Fills reply. */
typedef void (*mmr_server_unary_fn)(void *opaque, const mmr_rpc_request_t *req,
                                    mmr_rpc_reply_t *reply);

/* Client certificates under TLS. */
typedef enum {
    MMR_SERVER_CLIENT_AUTH_NONE = 0, /* not asked for */
    MMR_SERVER_CLIENT_AUTH_REQUEST,  /* asked for; when sent, must chain to the client CA */
    MMR_SERVER_CLIENT_AUTH_REQUIRE,  /* mutual TLS: no valid certificate, no connection */
} mmr_server_client_auth_t;

/* "none" | "request" | "require" → MMR_SERVER_CLIENT_AUTH_*; -1 for anything else. */
int mmr_server_client_auth_parse(const char *s);

typedef struct mmr_server_conf {
    const char *listen;       /* "127.0.0.1:50051"; port 0 picks a free port */
    int threads;              /* handlers that may run at once, and as many acceptor and
                                 worker threads (default: cores) */
    uint32_t max_inflight;    /* admitted calls not yet answered (default 256) */
    uint32_t queue_target_ms; /* queueing delay that, sustained, means overload
                                 (default 5 ms; see Admission above) */
    uint32_t max_message_bytes; /* largest request accepted (default 4 MiB) */
    /* TLS: all paths are PEM files; NULL or "" = unset. No tls_cert_path = plaintext. */
    const char *tls_cert_path;      /* server certificate chain */
    const char *tls_key_path;       /* its private key (required with tls_cert_path) */
    const char *tls_client_ca_path; /* CA bundle client certificates must chain to;
                                       required exactly when tls_client_auth != NONE */
    mmr_server_client_auth_t tls_client_auth;
    /* Bearer-token auth: a file of `client_name token` lines (`#` comments, blank lines
     * ignored); NULL or "" = off. Tokens are kept in memory only and never logged. */
    const char *auth_tokens_file;
} mmr_server_conf_t;

/* Creates a server bound to conf->listen (not yet serving). Strings in conf are only
 * read during the call. Errors: MMR_ERR_RPC (cannot bind; message names the address),
 * MMR_ERR_IO (a PEM or tokens file unreadable; message is "what path: reason"),
 * MMR_ERR_INVALID (inconsistent TLS settings, a malformed tokens file: file:line, never
 * the token itself). */
mmr_status_t mmr_server_new(const mmr_server_conf_t *conf, mmr_server_t **out, mmr_err_t *err);
/* Registers a unary method ("/mmrec.v1.Ranker/Rank"); before mmr_server_start only. */
mmr_status_t mmr_server_add_method(mmr_server_t *s, const char *path, mmr_server_unary_fn fn,
                                   void *opaque, mmr_err_t *err);
mmr_status_t mmr_server_start(mmr_server_t *s, mmr_err_t *err);
/* The port actually bound (useful with port 0). */
int mmr_server_port(const mmr_server_t *s);
/* Sets what Health reports for "" and every registered service; Watch streams are told
 * at once. A Watch on an unknown service gets SERVICE_UNKNOWN and stays open (gRPC
 * health spec); Check on one gets NOT_FOUND. */
void mmr_server_set_serving(mmr_server_t *s, int serving);

/* A health-only service name (e.g. "mmrec.ingest": a part of the daemon that is not an
 * RPC service) that Health Check / Watch answer for with its own status: SERVING only
 * while it is set serving (the default) and the server is. Before mmr_server_start.
 * Errors: MMR_ERR_INVALID (after start, empty, a known name, too many), MMR_ERR_NOMEM. */
#define MMR_SERVER_HEALTH_SERVICES_MAX 8
mmr_status_t mmr_server_add_health_service(mmr_server_t *s, const char *name, mmr_err_t *err);
/* Sets a health-only service's status; watchers are told when it changes. Thread-safe;
 * an unknown name is ignored. */
void mmr_server_set_service_serving(mmr_server_t *s, const char *name, int serving);

typedef struct mmr_server_stats {
    uint64_t calls;       /* unary calls answered, any status */
    uint64_t ok;
    uint64_t shed;        /* RESOURCE_EXHAUSTED by admission (queueing delay or in-flight) */
    uint64_t expired;     /* DEADLINE_EXCEEDED before work */
    uint64_t unauthenticated; /* UNAUTHENTICATED: missing or unknown bearer token */
    uint32_t inflight;
} mmr_server_stats_t;
void mmr_server_get_stats(mmr_server_t *s, mmr_server_stats_t *out);

/* Per-method counters: answers by gRPC status and server-side latency (from the moment
 * the call is matched to the moment its answer is queued) in fixed buckets whose upper
 * bounds in ms are mmr_server_latency_le[]; the last bucket is +Inf. Unknown methods are
 * counted under path "unknown". */
#define MMR_SERVER_STATUS_COUNT 17
#define MMR_SERVER_LATENCY_BUCKETS 16
extern const double mmr_server_latency_le[MMR_SERVER_LATENCY_BUCKETS - 1];
typedef struct mmr_server_method_stats {
    const char *path; /* borrowed, valid while the server lives */
    uint64_t by_status[MMR_SERVER_STATUS_COUNT];
    uint64_t latency[MMR_SERVER_LATENCY_BUCKETS]; /* per bucket, not cumulative */
    double latency_sum_ms;
} mmr_server_method_stats_t;
/* Number of methods (registered ones, Health, "unknown"); i in [0, count). */
int mmr_server_method_count(const mmr_server_t *s);
void mmr_server_get_method_stats(mmr_server_t *s, int i, mmr_server_method_stats_t *out);

/* Stops accepting calls, ends every Health Watch stream at once with UNAVAILABLE (an open
 * Watch never holds shutdown up), lets in-flight unary calls finish for up to grace_ms,
 * then cancels the rest, and joins the threads. Safe to call twice. */
void mmr_server_shutdown(mmr_server_t *s, int grace_ms);
/* Shuts down if needed and frees. NULL is a no-op. */
void mmr_server_free(mmr_server_t *s);

#endif
