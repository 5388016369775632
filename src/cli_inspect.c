/* cli_inspect.c — `mmrec inspect user|item ID --db PATH`: read one record from a store. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mmr_fstore.h"

int mmr_cli_inspect(int argc, char **argv) {
    static const char *const valued[] = {"db", NULL};
    if (!mmr_cli_check_opts(argc, argv, valued, NULL)) return 2;
    const char *db = mmr_cli_opt(argc, argv, "db", NULL);
    if (argc < 2 || !db || (strcmp(argv[0], "user") && strcmp(argv[0], "item"))) {
        fprintf(stderr, "usage: mmrec inspect user|item ID --db PATH\n");
        return 2;
    }
    const char *id = argv[1];
    mmr_fstore_opts_t o = {.path = db, .must_exist = 1};
    mmr_fstore_t *fs = NULL;
    mmr_err_t err = {0};
    if (mmr_fstore_open(&o, &fs, &err) != MMR_OK) {
        fprintf(stderr, "mmrec inspect: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (!strcmp(argv[0], "user")) {
        mmr_user_t *u = NULL;
        mmr_status_t st = mmr_fstore_get_user(fs, id, &u, &err);
        if (st == MMR_OK) {
            printf("user %s: %lld events, %u recent (oldest first)\n", id, (long long)u->events_total, u->n);
            for (uint32_t i = 0; i < u->n; i++)
                printf("  %lld  %-10s %-24s %g\n", (long long)u->recent[i].ts_ms,
                       mmr_event_type_name(u->recent[i].type), u->recent[i].item_id, u->recent[i].value);
            mmr_user_free(u);
        } else {
            fprintf(stderr, "mmrec inspect: user %s: %s\n", id, st == MMR_ERR_NOT_FOUND ? "not found" : err.msg);
            rc = 1;
        }
    } else {
        mmr_item_stats_t s;
        uint8_t found = 0;
        if (mmr_fstore_get_item_stats(fs, 1, &id, &s, &found, &err) != MMR_OK) {
            fprintf(stderr, "mmrec inspect: %s\n", err.msg);
            rc = 1;
        } else if (!found) {
            fprintf(stderr, "mmrec inspect: item %s: no stats\n", id);
            rc = 1;
        } else {
            printf("item %s: impressions %lld clicks %lld positives %lld popularity %.4f last %lld\n", id,
                   (long long)s.impressions, (long long)s.clicks, (long long)s.positives, s.popularity,
                   (long long)s.last_ts_ms);
        }
    }
    mmr_fstore_close(fs);
    return rc;
}
