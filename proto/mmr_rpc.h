/* mmr_rpc.h — a small blocking gRPC unary-call client over grpc core's C API and
 * protobuf-c messages. Used by the CLI (admin calls), tests and mmrec-load.
 *
 * Not a general gRPC library: unary calls only, one completion queue per call, so a
 * client may be shared by threads. */
#ifndef MMR_RPC_H
#define MMR_RPC_H

#include <grpc/grpc_security.h>
#include <protobuf-c/protobuf-c.h>

#include "mmr_err.h"

typedef struct mmr_rpc_client mmr_rpc_client_t;

typedef struct mmr_rpc_client_opts {
    const char *ca_pem_path;    /* non-NULL: TLS, trusting this CA bundle */
    const char *cert_pem_path;  /* with key_pem_path: client certificate for mutual TLS */
    const char *key_pem_path;
    const char *ssl_target_name; /* override the name checked in the server certificate */
    const char *bearer_token;   /* sent as "authorization: Bearer <token>" */
} mmr_rpc_client_opts_t;

/* Connects lazily to target ("127.0.0.1:50051"). opts may be NULL (plaintext, no token).
 * Strings in opts are copied. *out is owned; free with mmr_rpc_client_free. */
mmr_status_t mmr_rpc_client_new(const char *target, const mmr_rpc_client_opts_t *opts,
                                mmr_rpc_client_t **out, mmr_err_t *err);
void mmr_rpc_client_free(mmr_rpc_client_t *c);

/* Channel credentials for opts (NULL or no CA: plaintext), for callers that open their own
 * channels (mmrec-load's async senders). On MMR_OK *out is owned: release with
 * grpc_channel_credentials_release. Errors: MMR_ERR_IO (unreadable PEM file), MMR_ERR_RPC. */
mmr_status_t mmr_rpc_credentials_new(const mmr_rpc_client_opts_t *opts, grpc_channel_credentials **out,
                                     mmr_err_t *err);

/* Calls method ("/mmrec.v1.Ranker/Rank") with req, waiting at most deadline_ms.
 * *grpc_status receives the gRPC status code (0 = OK) whenever the call completed.
 * On MMR_OK *resp is an unpacked message of resp_desc, owned by the caller
 * (protobuf_c_message_free_unpacked(*resp, NULL)). A non-OK gRPC status returns
 * MMR_ERR_RPC with the status details in err. */
mmr_status_t mmr_rpc_call(mmr_rpc_client_t *c, const char *method, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                          int deadline_ms, int *grpc_status, mmr_err_t *err);

#endif
