/* daemon.h — helpers for black-box tests: start mmrecd as a child process on free ports,
 * wait for its ready file, stop it with a signal and collect the exit status; produce
 * events to Kafka; read /metrics. Header-only: each integration test is one program. */
#ifndef MMR_TEST_DAEMON_H
#define MMR_TEST_DAEMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mmr_time.h"
#include "mmrec/v1/event.pb-c.h"

typedef struct test_daemon {
    pid_t pid;
    int grpc_port, metrics_port;
    char target[64];
} test_daemon_t;

static inline void sleep_ms(int ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

/* Starts `bin` with args (NULL-terminated) plus --ready_file; waits up to 30 s. */
static inline void daemon_start(test_daemon_t *d, const char *bin, const char *workdir, char *const *args) {
    char ready[4096], ready_opt[4200];
    snprintf(ready, sizeof ready, "%s/ready", workdir);
    unlink(ready);
    snprintf(ready_opt, sizeof ready_opt, "--ready_file=%s", ready);
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)bin;
    for (; *args && n < 62; args++) argv[n++] = *args;
    argv[n++] = ready_opt;
    argv[n] = NULL;
    d->pid = fork();
    CHECK(d->pid >= 0);
    if (d->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed or killed test */
        execv(bin, argv);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(ready, "r");
        if (f) {
            CHECK(fscanf(f, "grpc_port=%d\nmetrics_port=%d", &d->grpc_port, &d->metrics_port) == 2);
            fclose(f);
            snprintf(d->target, sizeof d->target, "127.0.0.1:%d", d->grpc_port);
            return;
        }
        int st;
        CHECK_MSG(waitpid(d->pid, &st, WNOHANG) == 0, "mmrecd exited during start-up (status %d)", st);
        sleep_ms(100);
    }
    CHECK_MSG(0, "mmrecd did not become ready in 30 s");
}

/* Sends sig and returns the exit code (or 128+signal), waiting up to 30 s. */
static inline int daemon_stop(test_daemon_t *d, int sig) {
    kill(d->pid, sig);
    for (int i = 0; i < 300; i++) {
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        sleep_ms(100);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    CHECK_MSG(0, "mmrecd did not exit within 30 s of signal %d", sig);
    return -1;
}

/* GET /metrics; returns a malloc'd body or NULL. */
static inline char *metrics_get(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return NULL; }
    const char *req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, strlen(req)) < 0) { close(fd); return NULL; }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 4096) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* Value of a metric line "name value" (name may include labels), or -1. */
static inline double metric_value(const char *body, const char *name) {
    size_t n = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ' ') return atof(p + n + 1);
    return -1;
}

static inline rd_kafka_t *producer_new(const char *brokers) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    CHECK(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) == RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    CHECK_MSG(rk, "%s", errstr);
    return rk;
}

static inline void produce_raw(rd_kafka_t *rk, const char *topic, const char *key, const void *buf, size_t len) {
    CHECK(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                            RD_KAFKA_V_VALUE((void *)buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

static inline void produce_event(rd_kafka_t *rk, const char *event_id, const char *user, const char *item,
                          Mmrec__V1__EventType type, float value) {
    Mmrec__V1__Event ev = MMREC__V1__EVENT__INIT;
    ev.event_id = (char *)event_id;
    ev.user_id = (char *)user;
    ev.item_id = (char *)item;
    ev.type = type;
    ev.value = value;
    uint8_t buf[1024];
    size_t len = mmrec__v1__event__pack(&ev, buf);
    produce_raw(rk, "mmrec.events", user, buf, len);
}

#endif
