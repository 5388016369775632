/* test_load_sweep.c — mmrec-load's sweep output (sweep.h): rate lists parsed and spanned,
 * a row built from a known open-loop result (percentiles, achieved rate, errors by
 * status), the CSV's header and columns, and the PNG (or MMR_ERR_UNSUPPORTED when
 * gnuplot is missing). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sweep.h"

static void test_rates(void) {
    double r[4];
    CHECK(mmr_sweep_parse_rates("100,200.5,3000", r, 4) == 3 && r[0] == 100 && r[1] == 200.5 && r[2] == 3000);
    CHECK(mmr_sweep_parse_rates("7", r, 4) == 1 && r[0] == 7);
    const char *bad[] = {"", "100,", ",100", "a", "0", "-5", "1,,2", "1;2", "1e9", "1,2,3,4,5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(mmr_sweep_parse_rates(bad[i], r, 4) == -1, "accepted '%s'", bad[i]);
    double s[5];
    CHECK(mmr_sweep_span_rates(100, 500, 5, s) == 5);
    for (int i = 0; i < 5; i++) CHECK(s[i] == 100.0 * (i + 1));
    CHECK(mmr_sweep_span_rates(300, 900, 1, s) == 1 && s[0] == 300);
    CHECK(mmr_sweep_span_rates(100, 100, 3, s) == -1);
    CHECK(mmr_sweep_span_rates(0, 100, 3, s) == -1);
    CHECK(mmr_sweep_span_rates(100, 50, 3, s) == -1);
    printf("ok  rate lists: parsed, spanned, bad ones refused\n");
}

/* A result of 1000 calls taking 1..1000 ms, 2 s long, 990 OK, 7 RESOURCE_EXHAUSTED,
 * 2 DEADLINE_EXCEEDED, 1 transport failure. */
static void fake_result(mmr_load_result_t *r) {
    memset(r, 0, sizeof *r);
    CHECK(mmr_hdr_new(1, 60LL * 1000000000LL, 2, &r->all, NULL) == MMR_OK);
    for (int i = 1; i <= 1000; i++) mmr_hdr_record(r->all, (int64_t)i * 1000000);
    r->completed = 1000;
    r->elapsed_s = 2.0;
    r->by_status[0] = 990;
    r->by_status[8] = 7;
    r->by_status[4] = 2;
    r->transport_failures = 1;
    r->dropped = 5;
    r->missed_schedule = 11;
}

static int split(char *line, char **cols, int max) {
    int n = 0;
    for (char *t = strtok(line, ",\n"); t && n < max; t = strtok(NULL, ",\n")) cols[n++] = t;
    return n;
}

static void test_csv(void) {
    mmr_load_result_t res;
    fake_result(&res);
    mmr_sweep_row_t rows[2];
    mmr_sweep_row_from_result(&rows[0], 600, &res);
    CHECK(rows[0].offered == 600 && rows[0].achieved == 500);
    CHECK_MSG(rows[0].p50 >= 500 && rows[0].p50 <= 505, "p50 %.3f", rows[0].p50);
    CHECK_MSG(rows[0].p99 >= 990 && rows[0].p99 <= 1000, "p99 %.3f", rows[0].p99);
    CHECK(rows[0].max >= 1000 && rows[0].max <= 1008);
    CHECK(rows[0].ok == 990 && rows[0].errors == 10 && rows[0].by_status[8] == 7 && rows[0].dropped == 5);
    mmr_sweep_row_from_result(&rows[1], 1200, &res);
    mmr_load_result_free(&res);

    char path[] = "/tmp/test_load_sweep.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w+");
    mmr_err_t err = {0};
    CHECK(mmr_sweep_write_csv(f, rows, 2, &err) == MMR_OK);
    rewind(f);
    char line[2048];
    char *head[64], *cols[64];
    CHECK(fgets(line, sizeof line, f));
    CHECK(!strncmp(line, "offered,achieved,p50_ms,p90_ms,p99_ms,p99.9_ms,max_ms,ok,errors,dropped,missed_schedule,"
                         "CANCELLED,", 84));
    char header[2048];
    strcpy(header, line);
    int nh = split(header, head, 64);
    CHECK_MSG(nh == 11 + 16 + 1, "%d header columns", nh);
    CHECK(!strcmp(head[nh - 1], "transport_failures"));
    int re = -1;
    for (int i = 0; i < nh; i++)
        if (!strcmp(head[i], "RESOURCE_EXHAUSTED")) re = i;
    CHECK(re > 0);
    for (int row = 0; row < 2; row++) {
        CHECK(fgets(line, sizeof line, f));
        CHECK(split(line, cols, 64) == nh);
        CHECK(atof(cols[0]) == (row ? 1200 : 600) && atof(cols[1]) == 500);
        CHECK(atol(cols[7]) == 990 && atol(cols[8]) == 10 && atol(cols[9]) == 5 && atol(cols[10]) == 11);
        CHECK(atol(cols[re]) == 7 && atol(cols[nh - 1]) == 1);
    }
    CHECK(!fgets(line, sizeof line, f));
    fclose(f);
    printf("ok  csv: %d columns, one row per rate, RESOURCE_EXHAUSTED in its own column\n", nh);

    char png[sizeof path + 8];
    snprintf(png, sizeof png, "%s.png", path);
    mmr_status_t st = mmr_sweep_plot_png(path, png, "test", &err);
    if (st == MMR_ERR_UNSUPPORTED) {
        printf("ok  plot: gnuplot missing, said so: %s\n", err.msg);
    } else {
        CHECK_MSG(st == MMR_OK, "%s", err.msg);
        FILE *p = fopen(png, "rb");
        unsigned char magic[4] = {0};
        CHECK(p && fread(magic, 1, 4, p) == 4 && magic[1] == 'P' && magic[2] == 'N' && magic[3] == 'G');
        fclose(p);
        printf("ok  plot: gnuplot wrote a PNG\n");
    }
    CHECK(mmr_sweep_plot_png(path, "/tmp/it's.png", "test", &err) == MMR_ERR_INVALID);
    unlink(png);
    unlink(path);
}

int main(void) {
    test_rates();
    test_csv();
    return 0;
}
