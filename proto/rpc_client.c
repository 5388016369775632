/* rpc_client.c — blocking unary gRPC calls with protobuf-c messages (see mmr_rpc.h). */
#include "mmr_rpc.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mmr_rpc_client {
    grpc_channel *channel;
    char *auth_header; /* "Bearer <token>" or NULL */
};

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

mmr_status_t mmr_rpc_credentials_new(const mmr_rpc_client_opts_t *o, grpc_channel_credentials **out,
                                     mmr_err_t *err) {
    if (!o || !o->ca_pem_path) { *out = grpc_insecure_credentials_create(); return MMR_OK; }
    char *ca = read_file(o->ca_pem_path), *cert = NULL, *key = NULL;
    if (!ca) return mmr_err_set(err, MMR_ERR_IO, "cannot read CA file %s", o->ca_pem_path);
    grpc_ssl_pem_key_cert_pair pair = {0};
    if (o->cert_pem_path || o->key_pem_path) {
        cert = o->cert_pem_path ? read_file(o->cert_pem_path) : NULL;
        key = o->key_pem_path ? read_file(o->key_pem_path) : NULL;
        if (!cert || !key) {
            free(ca); free(cert); free(key);
            return mmr_err_set(err, MMR_ERR_IO, "client TLS needs readable cert and key files");
        }
        pair.cert_chain = cert;
        pair.private_key = key;
    }
    *out = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
    free(ca); free(cert); free(key);
    return *out ? MMR_OK : mmr_err_set(err, MMR_ERR_RPC, "grpc_ssl_credentials_create failed");
}

mmr_status_t mmr_rpc_client_new(const char *target, const mmr_rpc_client_opts_t *opts,
                                mmr_rpc_client_t **out, mmr_err_t *err) {
    grpc_channel_credentials *creds;
    mmr_status_t st = mmr_rpc_credentials_new(opts, &creds, err);
    if (st != MMR_OK) return st;
    grpc_init();
    mmr_rpc_client_t *c = calloc(1, sizeof *c);
    if (!c) { grpc_channel_credentials_release(creds); grpc_shutdown(); return MMR_ERR_NOMEM; }
    grpc_arg args[2];
    int nargs = 0;
    args[nargs++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                               .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                               .value.integer = 64 << 20};
    if (opts && opts->ssl_target_name)
        args[nargs++] = (grpc_arg){.type = GRPC_ARG_STRING, .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                                   .value.string = (char *)opts->ssl_target_name};
    grpc_channel_args cargs = {.num_args = (size_t)nargs, .args = args};
    c->channel = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    if (opts && opts->bearer_token) {
        size_t n = strlen(opts->bearer_token) + 8;
        c->auth_header = malloc(n);
        if (c->auth_header) snprintf(c->auth_header, n, "Bearer %s", opts->bearer_token);
    }
    *out = c;
    return MMR_OK;
}

void mmr_rpc_client_free(mmr_rpc_client_t *c) {
    if (!c) return;
    grpc_channel_destroy(c->channel);
    free(c->auth_header);
    free(c);
    grpc_shutdown();
}

mmr_status_t mmr_rpc_call(mmr_rpc_client_t *c, const char *method, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                          int deadline_ms, int *grpc_status, mmr_err_t *err) {
    *resp = NULL;
    if (grpc_status) *grpc_status = -1;
    size_t len = protobuf_c_message_get_packed_size(req);
    grpc_slice payload = grpc_slice_malloc(len);
    protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(payload));
    grpc_byte_buffer *send_bb = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload);

    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(deadline_ms, GPR_TIMESPAN));
    grpc_slice method_slice = grpc_slice_from_copied_string(method);
    grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               method_slice, NULL, deadline, NULL);
    grpc_slice_unref(method_slice);

    grpc_metadata auth_md = {0};
    if (c->auth_header) {
        auth_md.key = grpc_slice_from_static_string("authorization");
        auth_md.value = grpc_slice_from_copied_string(c->auth_header);
    }
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_byte_buffer *recv_bb = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = c->auth_header ? 1 : 0;
    ops[0].data.send_initial_metadata.metadata = c->auth_header ? &auth_md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;

    mmr_status_t st = MMR_OK;
    grpc_call_error ce = grpc_call_start_batch(call, ops, 6, (void *)1, NULL);
    if (ce != GRPC_CALL_OK) {
        st = mmr_err_set(err, MMR_ERR_RPC, "grpc_call_start_batch: %s", grpc_call_error_to_string(ce));
    } else {
        grpc_event ev = grpc_completion_queue_pluck(cq, (void *)1,
                                                    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (grpc_status) *grpc_status = (int)status;
        if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
            st = mmr_err_set(err, MMR_ERR_RPC, "%s: call failed to complete", method);
        } else if (status != GRPC_STATUS_OK) {
            char *d = grpc_slice_to_c_string(details);
            st = mmr_err_set(err, MMR_ERR_RPC, "%s: status %d: %s", method, (int)status, d);
            gpr_free(d);
        } else if (!recv_bb) {
            st = mmr_err_set(err, MMR_ERR_RPC, "%s: OK status but no response message", method);
        } else {
            grpc_byte_buffer_reader reader;
            grpc_byte_buffer_reader_init(&reader, recv_bb);
            grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
            grpc_byte_buffer_reader_destroy(&reader);
            *resp = protobuf_c_message_unpack(resp_desc, NULL, GRPC_SLICE_LENGTH(all),
                                              GRPC_SLICE_START_PTR(all));
            grpc_slice_unref(all);
            if (!*resp) st = mmr_err_set(err, MMR_ERR_RPC, "%s: undecodable response", method);
        }
    }
    if (c->auth_header) grpc_slice_unref(auth_md.value);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_byte_buffer_destroy(send_bb);
    if (recv_bb) grpc_byte_buffer_destroy(recv_bb);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {}
    grpc_completion_queue_destroy(cq);
    return st;
}
