/* test_load_cli.c — mmrec-load's command line (loadcli.h): the argument errors (bad
 * values, unknown options, combinations that make no sense, non-loopback targets and
 * Kafka brokers without --allow-remote) and what good command lines turn into. */
#include <string.h>

#include "check.h"
#include "loadcli.h"

#define ARGV(...) ((char *[]){"mmrec-load", __VA_ARGS__, NULL})
#define ARGC(v) ((int)(sizeof(v) / sizeof(v[0])) - 1)

static void expect_error(int argc, char **argv, const char *want) {
    mmr_loadcli_t o;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_loadcli_parse(&o, argc, argv, &err) == MMR_ERR_INVALID, "accepted %s ...", argv[1]);
    CHECK_MSG(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
}
#define BAD(want, ...)                                          \
    do {                                                        \
        char **v_ = ARGV(__VA_ARGS__);                          \
        expect_error(ARGC(ARGV(__VA_ARGS__)), v_, want);        \
    } while (0)

static mmr_loadcli_t parse_ok(int argc, char **argv) {
    mmr_loadcli_t o;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_loadcli_parse(&o, argc, argv, &err) == MMR_OK, "%s", err.msg);
    return o;
}
#define GOOD(...) parse_ok(ARGC(ARGV(__VA_ARGS__)), ARGV(__VA_ARGS__))

static void test_errors(void) {
    BAD("bad argument", "--rate");
    BAD("bad argument", "rate", "5");
    BAD("unknown option", "--frobnicate", "1");
    BAD("bad value for --rate", "--rate", "-1");
    BAD("bad value for --rate", "--rate", "12x");
    BAD("bad value for --mode", "--mode", "half-open");
    BAD("bad value for --events-rate", "--events-rate", "0");
    BAD("not a loopback", "--addr", "10.1.2.3:50051");
    BAD("not a loopback", "--addr", "localhost.example.com:50051");
    BAD("not all loopback", "--kafka", "127.0.0.1:9092,kafka.example.com:9092", "--rate", "0");
    BAD("not all loopback", "--kafka", "PLAINTEXT://10.0.0.1:9092");
    BAD("needs --kafka", "--rate", "0");
    BAD("need --ca", "--cert", "c.pem", "--key", "k.pem");
    BAD("needs --csv", "--sweep", "100,200");
    BAD("--sweep wants", "--sweep", "100,,200", "--csv", "x.csv");
    BAD("--sweep wants", "--sweep", "100,0", "--csv", "x.csv");
    BAD("exclude each other", "--sweep", "100", "--sweep-from", "100", "--csv", "x.csv");
    BAD("want 0 < A < B", "--sweep-from", "500", "--sweep-to", "100", "--sweep-steps", "3", "--csv", "x.csv");
    BAD("want 0 < A < B", "--sweep-from", "100", "--csv", "x.csv");
    BAD("open loop only", "--sweep", "100", "--mode", "closed", "--csv", "x.csv");
    BAD("does not take --kafka", "--sweep", "100", "--csv", "x.csv", "--kafka", "127.0.0.1:9092");
    BAD("go with --sweep", "--csv", "x.csv");
    BAD("go with --sweep", "--png", "x.png");
    printf("ok  argument errors refused with a message\n");
}

static void test_good(void) {
    mmr_loadcli_t o = GOOD("--kafka", "127.0.0.1:9092", "--rate", "0", "--events-rate", "2000", "--duration", "3",
                           "--users", "77", "--dist", "zipf", "--zipf-s", "1.2", "--seed", "9", "--json");
    CHECK(o.events.brokers && !strcmp(o.events.brokers, "127.0.0.1:9092") && o.load.rate == 0);
    CHECK(o.events.rate == 2000 && o.events.duration_s == 3 && o.events.users == 77 && o.events.zipf_s == 1.2);
    CHECK(o.events.seed == 9 && !strcmp(o.events.topic, "mmrec.events") && o.json && !o.n_sweep);
    o = GOOD("--kafka", "localhost:9092", "--rate", "500");
    CHECK(o.load.rate == 500 && o.events.rate == 1000 && o.events.zipf_s == 0);
    o = GOOD("--kafka", "10.0.0.1:9092", "--addr", "10.0.0.2:1", "--allow-remote");
    CHECK(o.allow_remote);
    o = GOOD("--sweep-from", "100", "--sweep-to", "400", "--sweep-steps", "4", "--csv", "s.csv", "--png", "s.png");
    CHECK(o.n_sweep == 4 && o.sweep[0] == 100 && o.sweep[3] == 400 && !strcmp(o.png_path, "s.png"));
    o = GOOD("--sweep", "50,150", "--csv", "s.csv", "--rate", "0");
    CHECK(o.n_sweep == 2 && o.sweep[1] == 150);
    o = GOOD("--mode", "closed", "--rate", "0");
    CHECK(o.load.mode == MMR_LOAD_CLOSED);
    o = GOOD("--help");
    CHECK(o.help);
    printf("ok  good command lines parsed\n");
}

static void test_loopback(void) {
    CHECK(mmr_loadcli_is_loopback("127.0.0.1:1"));
    CHECK(mmr_loadcli_is_loopback("127.0.0.1:1,localhost:2,PLAINTEXT://[::1]:3,localhost"));
    CHECK(mmr_loadcli_is_loopback("unix:/tmp/s.sock"));
    CHECK(!mmr_loadcli_is_loopback(""));
    CHECK(!mmr_loadcli_is_loopback("127.0.0.1:1,"));
    CHECK(!mmr_loadcli_is_loopback("127.0.0.1:1,10.0.0.1:2"));
    CHECK(!mmr_loadcli_is_loopback("localhost.evil.example:1"));
    CHECK(!mmr_loadcli_is_loopback("SSL://broker.example.com:9093"));
    printf("ok  loopback check covers every entry of a list\n");
}

int main(void) {
    test_errors();
    test_good();
    test_loopback();
    return 0;
}
