/* test_fstore_opts.c — RocksDB option pass-through: known options open the store,
 * unknown ones are refused with RocksDB's message, the store is unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mmr_fstore.h"

int main(void) {
    char dir[] = "/tmp/mmrec-fsopts-XXXXXX";
    CHECK(mkdtemp(dir));
    mmr_fstore_t *fs = NULL;
    mmr_err_t err = {0};
    mmr_fstore_opts_t o = {.path = dir, .rocksdb_options = "write_buffer_size=1048576;max_write_buffer_number=3"};
    CHECK_MSG(mmr_fstore_open(&o, &fs, &err) == MMR_OK, "%s", err.msg);
    mmr_fstore_close(fs);
    printf("ok known RocksDB options accepted\n");
    o.rocksdb_options = "no_such_option=1";
    CHECK(mmr_fstore_open(&o, &fs, &err) == MMR_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "no_such_option") != NULL, "%s", err.msg);
    printf("ok unknown option refused: %s\n", err.msg);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return 0;
}
