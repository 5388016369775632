/* fstore_test.h — helpers shared by the feature-store tests: a fresh temporary store
 * directory, its removal, a deterministic PRNG and status checks that print err.msg. */
#ifndef MMR_FSTORE_TEST_H
#define MMR_FSTORE_TEST_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mmr_err.h"

/* CHECK that a call returned MMR_OK, printing the error record otherwise. */
#define CHECK_OK(call, errp)                                                             \
    do {                                                                                 \
        mmr_status_t st_ = (call);                                                       \
        CHECK_MSG(st_ == MMR_OK, "%s: %s", mmr_status_str(st_), (errp)->msg);            \
    } while (0)

/* Creates a fresh directory under $TMPDIR (or /tmp) named in buf; returns buf. */
static inline const char *fst_tmpdir(char buf[256]) {
    const char *base = getenv("TMPDIR");
    snprintf(buf, 256, "%s/mmr_fstore_XXXXXX", base && base[0] ? base : "/tmp");
    CHECK_MSG(mkdtemp(buf) != NULL, "mkdtemp %s", buf);
    return buf;
}

static inline int fst_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

static inline void fst_rmdir(const char *dir) {
    CHECK_MSG(nftw(dir, fst_rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove %s", dir);
}

/* xorshift64*: reproducible streams for ground-truth tests. */
static inline uint64_t fst_rand(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static inline int fst_close_rel(double a, double b, double rel) {
    double d = a > b ? a - b : b - a;
    double m = (a > 0 ? a : -a) > (b > 0 ? b : -b) ? (a > 0 ? a : -a) : (b > 0 ? b : -b);
    return d <= rel * m || d < 1e-12;
}

#endif
