/* test_config.c — the option table: defaults, types, ranges, file parsing with file:line
 * errors, command-line precedence, kafka./rocksdb. pass-through. */
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "check.h"
#include "mmr_config.h"

int main(void) {
    mmr_config_t c;
    mmr_err_t err = {0};
    mmr_config_init(&c);
    CHECK(strcmp(c.grpc_listen, "127.0.0.1:50051") == 0 && c.ingest_batch_max == 1000 && c.ingest_enabled == 1);
    CHECK(mmr_config_set(&c, "ingest.batch_max", "12", &err) == MMR_OK && c.ingest_batch_max == 12);
    CHECK(mmr_config_set(&c, "ingest.batch_max", "0", &err) == MMR_ERR_INVALID && strstr(err.msg, "outside"));
    CHECK(mmr_config_set(&c, "ingest.batch_max", "12x", &err) == MMR_ERR_INVALID && strstr(err.msg, "integer"));
    CHECK(mmr_config_set(&c, "store.sync", "maybe", &err) == MMR_ERR_INVALID);
    CHECK(mmr_config_set(&c, "store.sync", "on", &err) == MMR_OK && c.store_sync == 1);
    CHECK(mmr_config_set(&c, "no.such", "1", &err) == MMR_ERR_INVALID && strstr(err.msg, "no.such"));
    CHECK(mmr_config_set(&c, "kafka.security.protocol", "SSL", &err) == MMR_OK);
    CHECK(c.n_kafka_props == 1 && strcmp(c.kafka_props[0], "security.protocol=SSL") == 0);
    CHECK(mmr_config_set(&c, "kafka.brokers", "h:1", &err) == MMR_OK && strcmp(c.kafka_brokers, "h:1") == 0);
    CHECK(c.n_kafka_props == 1); /* kafka.brokers is an mmrec option, not passed through */
    printf("ok set: types, ranges, pass-through\n");

    char path[] = "/tmp/mmrec-config-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "# comment\n\n grpc.listen = 127.0.0.1:7000 \nlog.level=debug\nbad line\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    CHECK(mmr_config_load_file(&c, path, &err) == MMR_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, ":5: expected key = value") != NULL, "%s", err.msg);
    CHECK(strcmp(c.grpc_listen, "127.0.0.1:7000") == 0);
    printf("ok file: %s\n", err.msg);

    fd = open(path, O_WRONLY | O_TRUNC);
    text = "grpc.listen = 127.0.0.1:7000\ngrpc.threads = 3\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char *argv[] = {"mmrecd", "--grpc.threads=5", "--config", path, "--store.path", "/x", NULL};
    int help = 0;
    mmr_config_free(&c);
    mmr_config_init(&c);
    CHECK(mmr_config_parse_args(&c, 6, argv, &help, &err) == MMR_OK && !help);
    CHECK(c.grpc_threads == 5 && strcmp(c.store_path, "/x") == 0 && strcmp(c.grpc_listen, "127.0.0.1:7000") == 0);
    char *argv2[] = {"mmrecd", "--store.path", NULL};
    CHECK(mmr_config_parse_args(&c, 2, argv2, &help, &err) == MMR_ERR_INVALID && strstr(err.msg, "needs a value"));
    char *argv3[] = {"mmrecd", "stray", NULL};
    CHECK(mmr_config_parse_args(&c, 2, argv3, &help, &err) == MMR_ERR_INVALID);
    char *argv4[] = {"mmrecd", "--help", NULL};
    CHECK(mmr_config_parse_args(&c, 2, argv4, &help, &err) == MMR_OK && help);
    printf("ok args: command line overrides the file\n");
    unlink(path);
    mmr_config_free(&c);
    return 0;
}
