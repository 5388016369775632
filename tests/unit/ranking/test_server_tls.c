/* test_server_tls.c — TLS, mutual TLS and bearer-token auth of the gRPC server, over
 * real gRPC on loopback with throwaway certificates made by the `openssl` CLI at start
 * (skipped, exit 77, without it). Also: start-up errors name the file and the reason,
 * and no token ever reaches the log (every line, gRPC's included, is captured). */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "grpc/health/v1/health.pb-c.h"
#include "mmr_log.h"
#include "mmr_rpc.h"
#include "mmr_server.h"

#define TOKEN_ALICE "alice-0123456789abcdef-tok"
#define TOKEN_BOB "bob-fedcba9876543210-tok"
#define TOKEN_WRONG "alice-0123456789abcdef-tOk"
#define TOKEN_BAD_LINE "s3cr3t-in-a-bad-line-0000"

static char dir[256];

/* --- captured log --------------------------------------------------------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char *log_buf;
static size_t log_len, log_cap;

static void capture_sink(void *opaque, mmr_log_level_t level, const char *module, const char *msg) {
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(module) + strlen(msg) + 8;
    if (log_len + n + 1 > log_cap) {
        log_cap = (log_len + n + 1) * 2;
        log_buf = realloc(log_buf, log_cap);
        CHECK(log_buf);
    }
    log_len += (size_t)snprintf(log_buf + log_len, log_cap - log_len, "[%s] %s\n", module, msg);
    pthread_mutex_unlock(&log_mu);
    fprintf(stderr, "  log %s [%s] %s\n", mmr_log_level_str(level), module, msg);
}

static int log_has(const char *needle) {
    pthread_mutex_lock(&log_mu);
    int found = log_buf && strstr(log_buf, needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

/* --- certificates ---------------------------------------------------------------------- */

static int sh(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[2400];
    snprintf(full, sizeof full, "cd '%s' && { %s ; } >>openssl.log 2>&1", dir, cmd);
    return system(full);
}

/* dir/name; valid until the end of the test (kept in paths[], freed at exit). */
static char *paths[256];
static int npaths;
static const char *path(const char *name) {
    CHECK(npaths < 256);
    char *b = malloc(512);
    CHECK(b);
    snprintf(b, 512, "%s/%s", dir, name);
    return paths[npaths++] = b;
}

static void write_file(const char *name, const char *text) {
    FILE *f = fopen(path(name), "w");
    CHECK(f);
    fputs(text, f);
    CHECK(fclose(f) == 0);
}

/* ca.pem signs server.pem (SAN 127.0.0.1, localhost); client-ca.pem signs client.pem;
 * other-ca.pem signs rogue.pem (a client certificate the server must not accept). */
static void make_certs(void) {
    write_file("openssl.cnf",
               "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = mmrec-test\n"
               "[ca_ext]\nbasicConstraints = critical,CA:TRUE\n"
               "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
               "[server_ext]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
               "extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n"
               "[client_ext]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
               "extendedKeyUsage = clientAuth\n");
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const char *cas[] = {"ca", "client-ca", "other-ca"};
    for (int i = 0; i < 3; i++)
        CHECK_MSG(sh("openssl req -x509 -config openssl.cnf -extensions ca_ext %s -keyout %s.key "
                     "-out %s.pem -days 2 -subj /CN=mmrec-test-%s",
                     ec, cas[i], cas[i], cas[i]) == 0,
                  "openssl failed, see %s/openssl.log", dir);
    struct { const char *name, *ca, *ext; } leaves[] = {
        {"server", "ca", "server_ext"}, {"client", "client-ca", "client_ext"},
        {"rogue", "other-ca", "client_ext"}};
    for (int i = 0; i < 3; i++) {
        CHECK(sh("openssl req -new -config openssl.cnf %s -keyout %s.key -out %s.csr -subj /CN=%s",
                 ec, leaves[i].name, leaves[i].name, leaves[i].name) == 0);
        CHECK(sh("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -set_serial %d -days 2 "
                 "-extfile openssl.cnf -extensions %s -out %s.pem",
                 leaves[i].name, leaves[i].ca, leaves[i].ca, 100 + i, leaves[i].ext,
                 leaves[i].name) == 0);
    }
}

/* --- server and calls ------------------------------------------------------------------- */

static atomic_int handled;
static char last_client[64];
static pthread_mutex_t client_mu = PTHREAD_MUTEX_INITIALIZER;

static void who_handler(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply) {
    atomic_fetch_add(&handled, 1);
    pthread_mutex_lock(&client_mu);
    snprintf(last_client, sizeof last_client, "%s", req->client ? req->client : "(none)");
    pthread_mutex_unlock(&client_mu);
    Grpc__Health__V1__HealthCheckResponse *out = mmr_arena_alloc(req->arena, sizeof *out);
    grpc__health__v1__health_check_response__init(out);
    out->status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    reply->status = MMR_RPC_OK;
    reply->msg = &out->base;
}

static mmr_server_t *start(mmr_server_conf_t conf, int *port) {
    conf.listen = "127.0.0.1:0";
    conf.threads = 2;
    mmr_server_t *s = NULL;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_server_new(&conf, &s, &err) == MMR_OK, "%s", err.msg);
    CHECK(mmr_server_add_method(s, "/test.Who/Am", who_handler, NULL, &err) == MMR_OK);
    CHECK(mmr_server_start(s, &err) == MMR_OK);
    mmr_server_set_serving(s, 1);
    *port = mmr_server_port(s);
    return s;
}

/* One call with a fresh client; returns the gRPC status (-1: never completed). */
static int call_as(const char *host, int port, const mmr_rpc_client_opts_t *o, const char *method) {
    char target[128];
    snprintf(target, sizeof target, "%s:%d", host, port);
    mmr_rpc_client_t *c = NULL;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_rpc_client_new(target, o, &c, &err) == MMR_OK, "%s", err.msg);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    int status = -1;
    mmr_rpc_call(c, method, &req.base, &grpc__health__v1__health_check_response__descriptor, &resp,
                 3000, &status, &err);
    if (status != 0) fprintf(stderr, "  call %s %s: status %d: %s\n", target, method, status, err.msg);
    if (resp) protobuf_c_message_free_unpacked(resp, NULL);
    mmr_rpc_client_free(c);
    return status;
}

static int call(int port, const mmr_rpc_client_opts_t *o) {
    return call_as("127.0.0.1", port, o, "/test.Who/Am");
}

static mmr_status_t try_new(mmr_server_conf_t conf, mmr_err_t *err) {
    conf.listen = "127.0.0.1:0";
    mmr_server_t *s = NULL;
    mmr_status_t st = mmr_server_new(&conf, &s, err);
    mmr_server_free(s);
    return st;
}

int main(void) {
    if (system("openssl version >/dev/null 2>&1") != 0) {
        printf("skip: no openssl CLI\n");
        return MMR_TEST_SKIP;
    }
    snprintf(dir, sizeof dir, "/tmp/mmrec-tls-XXXXXX");
    CHECK(mkdtemp(dir));
    mmr_log_set_sink(capture_sink, NULL);
    mmr_log_set_level(MMR_LOG_DEBUG);
    make_certs();
    printf("ok throwaway CAs and certificates in %s\n", dir);

    /* --- start-up errors name the file and the reason --- */
    mmr_err_t err = {0};
    mmr_server_conf_t bad = {.tls_cert_path = path("nope.pem"), .tls_key_path = path("server.key")};
    CHECK(try_new(bad, &err) == MMR_ERR_IO && strstr(err.msg, "nope.pem") &&
          strstr(err.msg, "No such file"));
    printf("ok unreadable certificate: %s\n", err.msg);
    bad = (mmr_server_conf_t){.tls_cert_path = path("server.pem"), .tls_key_path = path("openssl.cnf")};
    CHECK(try_new(bad, &err) == MMR_ERR_INVALID && strstr(err.msg, "openssl.cnf") &&
          strstr(err.msg, "no PEM"));
    printf("ok key file that is not PEM: %s\n", err.msg);
    bad = (mmr_server_conf_t){.tls_cert_path = path("server.pem")};
    CHECK(try_new(bad, &err) == MMR_ERR_INVALID && strstr(err.msg, "without its key"));
    bad = (mmr_server_conf_t){.tls_cert_path = path("server.pem"), .tls_key_path = path("server.key"),
                              .tls_client_auth = MMR_SERVER_CLIENT_AUTH_REQUIRE};
    CHECK(try_new(bad, &err) == MMR_ERR_INVALID && strstr(err.msg, "no client CA"));
    bad.tls_client_auth = MMR_SERVER_CLIENT_AUTH_NONE;
    bad.tls_client_ca_path = path("client-ca.pem");
    CHECK(try_new(bad, &err) == MMR_ERR_INVALID && strstr(err.msg, "client auth is none"));
    bad = (mmr_server_conf_t){.tls_key_path = path("server.key")};
    CHECK(try_new(bad, &err) == MMR_ERR_INVALID && strstr(err.msg, "without a server certificate"));
    bad = (mmr_server_conf_t){.tls_cert_path = path("server.pem"), .tls_key_path = path("client.key")};
    CHECK(try_new(bad, &err) != MMR_OK);
    printf("ok key not matching the certificate refused: %s\n", err.msg);
    CHECK(mmr_server_client_auth_parse("none") == MMR_SERVER_CLIENT_AUTH_NONE &&
          mmr_server_client_auth_parse("request") == MMR_SERVER_CLIENT_AUTH_REQUEST &&
          mmr_server_client_auth_parse("require") == MMR_SERVER_CLIENT_AUTH_REQUIRE &&
          mmr_server_client_auth_parse("yes") == -1);

    bad = (mmr_server_conf_t){.auth_tokens_file = path("no-tokens")};
    CHECK(try_new(bad, &err) == MMR_ERR_IO && strstr(err.msg, "no-tokens") &&
          strstr(err.msg, "No such file"));
    write_file("tokens-bad", "# comment\n\nalice " TOKEN_BAD_LINE " extra\n");
    bad.auth_tokens_file = path("tokens-bad");
    CHECK(try_new(bad, &err) == MMR_ERR_INVALID && strstr(err.msg, "tokens-bad:3:"));
    CHECK_MSG(!strstr(err.msg, TOKEN_BAD_LINE), "token echoed: %s", err.msg);
    printf("ok malformed tokens file: %s\n", err.msg);
    write_file("tokens-bad", TOKEN_BAD_LINE "\n");
    CHECK(try_new(bad, &err) == MMR_ERR_INVALID && strstr(err.msg, "tokens-bad:1:") &&
          !strstr(err.msg, TOKEN_BAD_LINE));
    write_file("tokens-bad", "alice " TOKEN_BAD_LINE "\nbob " TOKEN_BAD_LINE "\n");
    CHECK(try_new(bad, &err) == MMR_ERR_INVALID && strstr(err.msg, "tokens-bad:2:") &&
          strstr(err.msg, "alice") && !strstr(err.msg, TOKEN_BAD_LINE));
    write_file("tokens-bad", "# nobody\n");
    CHECK(try_new(bad, &err) == MMR_ERR_INVALID && strstr(err.msg, "no tokens"));
    printf("ok duplicate / missing tokens refused: %s\n", err.msg);

    /* --- TLS, no client certificates --- */
    int port;
    mmr_server_t *s = start((mmr_server_conf_t){.tls_cert_path = path("server.pem"),
                                                .tls_key_path = path("server.key")}, &port);
    mmr_rpc_client_opts_t tls_ok = {.ca_pem_path = path("ca.pem")};
    CHECK(call(port, &tls_ok) == MMR_RPC_OK);
    /* the DNS name in the certificate, checked without resolving it (c-ares, which gRPC
     * would use for "localhost", leaks a few bytes that LeakSanitizer reports) */
    mmr_rpc_client_opts_t by_name = {.ca_pem_path = path("ca.pem"), .ssl_target_name = "localhost"};
    CHECK(call(port, &by_name) == MMR_RPC_OK);
    by_name.ssl_target_name = "not-the-server.example";
    CHECK(call(port, &by_name) == MMR_RPC_UNAVAILABLE);
    printf("ok TLS client trusting the right CA: OK (IP and DNS name); wrong name refused\n");
    CHECK(call(port, NULL) == MMR_RPC_UNAVAILABLE);
    printf("ok plaintext client against the TLS server: UNAVAILABLE\n");
    mmr_rpc_client_opts_t tls_other = {.ca_pem_path = path("other-ca.pem")};
    CHECK(call(port, &tls_other) == MMR_RPC_UNAVAILABLE);
    printf("ok TLS client trusting another CA: UNAVAILABLE\n");
    mmr_server_free(s);

    /* --- mutual TLS: require --- */
    s = start((mmr_server_conf_t){.tls_cert_path = path("server.pem"), .tls_key_path = path("server.key"),
                                  .tls_client_ca_path = path("client-ca.pem"),
                                  .tls_client_auth = MMR_SERVER_CLIENT_AUTH_REQUIRE}, &port);
    CHECK(call(port, &tls_ok) == MMR_RPC_UNAVAILABLE);
    printf("ok mTLS require, client without a certificate: refused\n");
    mmr_rpc_client_opts_t mtls = {.ca_pem_path = path("ca.pem"), .cert_pem_path = path("client.pem"),
                                  .key_pem_path = path("client.key")};
    CHECK(call(port, &mtls) == MMR_RPC_OK);
    printf("ok mTLS require, certificate from the client CA: OK\n");
    mmr_rpc_client_opts_t rogue = {.ca_pem_path = path("ca.pem"), .cert_pem_path = path("rogue.pem"),
                                   .key_pem_path = path("rogue.key")};
    CHECK(call(port, &rogue) == MMR_RPC_UNAVAILABLE);
    printf("ok mTLS require, certificate from another CA: refused\n");
    mmr_server_free(s);

    /* --- mutual TLS: request (a certificate is optional, but verified when sent) --- */
    s = start((mmr_server_conf_t){.tls_cert_path = path("server.pem"), .tls_key_path = path("server.key"),
                                  .tls_client_ca_path = path("client-ca.pem"),
                                  .tls_client_auth = MMR_SERVER_CLIENT_AUTH_REQUEST}, &port);
    CHECK(call(port, &tls_ok) == MMR_RPC_OK);
    CHECK(call(port, &mtls) == MMR_RPC_OK);
    CHECK(call(port, &rogue) == MMR_RPC_UNAVAILABLE);
    mmr_server_free(s);
    printf("ok mTLS request: no certificate OK, good one OK, foreign one refused\n");

    /* --- bearer tokens (over TLS) --- */
    write_file("tokens", "# client token\nalice " TOKEN_ALICE "\n\n  bob\t" TOKEN_BOB "  \n");
    s = start((mmr_server_conf_t){.tls_cert_path = path("server.pem"), .tls_key_path = path("server.key"),
                                  .auth_tokens_file = path("tokens")}, &port);
    atomic_store(&handled, 0);
    CHECK(call(port, &tls_ok) == MMR_RPC_UNAUTHENTICATED);
    mmr_rpc_client_opts_t o = tls_ok;
    o.bearer_token = TOKEN_WRONG;
    CHECK(call(port, &o) == MMR_RPC_UNAUTHENTICATED);
    o.bearer_token = TOKEN_ALICE "x";
    CHECK(call(port, &o) == MMR_RPC_UNAUTHENTICATED);
    o.bearer_token = "alice-0123456789abcdef";
    CHECK(call(port, &o) == MMR_RPC_UNAUTHENTICATED);
    o.bearer_token = "";
    CHECK(call(port, &o) == MMR_RPC_UNAUTHENTICATED);
    CHECK(call_as("127.0.0.1", port, &tls_ok, "/no.Such/Method") == MMR_RPC_UNAUTHENTICATED);
    CHECK(atomic_load(&handled) == 0);
    printf("ok missing, wrong, longer, shorter, empty token: UNAUTHENTICATED, handler never ran\n");
    o.bearer_token = TOKEN_ALICE;
    CHECK(call(port, &o) == MMR_RPC_OK && strcmp(last_client, "alice") == 0);
    o.bearer_token = TOKEN_BOB;
    CHECK(call(port, &o) == MMR_RPC_OK && strcmp(last_client, "bob") == 0);
    CHECK(call_as("127.0.0.1", port, &o, "/no.Such/Method") == MMR_RPC_UNIMPLEMENTED);
    CHECK(atomic_load(&handled) == 2);
    printf("ok right token: OK, handler sees the client name (alice, bob)\n");
    CHECK(call_as("127.0.0.1", port, &tls_ok, "/grpc.health.v1.Health/Check") == MMR_RPC_OK);
    printf("ok health Check without a token: OK\n");
    mmr_server_stats_t st;
    mmr_server_get_stats(s, &st);
    CHECK_MSG(st.unauthenticated == 6, "unauthenticated %llu", (unsigned long long)st.unauthenticated);
    mmr_server_free(s);

    /* tokens over plaintext work too (with a warning) */
    s = start((mmr_server_conf_t){.auth_tokens_file = path("tokens")}, &port);
    mmr_rpc_client_opts_t plain = {.bearer_token = TOKEN_ALICE};
    CHECK(call(port, NULL) == MMR_RPC_UNAUTHENTICATED);
    CHECK(call(port, &plain) == MMR_RPC_OK);
    mmr_server_free(s);
    CHECK(log_has("bearer tokens over plaintext"));
    printf("ok tokens over plaintext, with a warning\n");

    /* --- no secret in the log --- */
    CHECK(log_has("client alice") && log_has("client bob"));
    CHECK(log_has("unauthenticated call to /test.Who/Am"));
    const char *secrets[] = {TOKEN_ALICE, TOKEN_BOB, TOKEN_WRONG, TOKEN_BAD_LINE,
                             "0123456789abcdef", "fedcba9876543210"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        CHECK_MSG(!log_has(secrets[i]), "secret %zu appears in the log", i);
    printf("ok %zu bytes of log captured: client names present, no token\n", log_len);

    mmr_log_set_sink(NULL, NULL);
    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    CHECK(system(rm) == 0);
    free(log_buf);
    for (int i = 0; i < npaths; i++) free(paths[i]);
    return 0;
}
