/* event.c — the rules about events that every module shares and that need no store:
 * type names and parsing, what counts as a positive engagement, and which of a user's
 * interactions form the towers' history (mmr_fstore.h). Kept apart from fstore.c so that
 * tools and tests linking them do not pull in RocksDB code. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mmr_fstore.h"

static const char *const event_type_names[MMR_EV_TYPE_COUNT] = {
    "UNSPECIFIED", "IMPRESSION", "CLICK", "LIKE", "SHARE", "WATCH", "SKIP", "PURCHASE", "RATING"};

const char *mmr_event_type_name(mmr_event_type_t t) {
    return (unsigned)t < MMR_EV_TYPE_COUNT ? event_type_names[t] : "UNSPECIFIED";
}

int mmr_event_type_parse(const char *s, int any_case, mmr_event_type_t *out) {
    long v = -1;
    if (*s >= '0' && *s <= '9') {
        char *end;
        errno = 0;
        v = strtol(s, &end, 10);
        if (*end || errno) v = -1;
    } else {
        for (int t = MMR_EV_IMPRESSION; t < MMR_EV_TYPE_COUNT; t++)
            if (any_case ? !strcasecmp(s, event_type_names[t]) : !strcmp(s, event_type_names[t])) v = t;
    }
    if (v <= MMR_EV_UNSPECIFIED || v >= MMR_EV_TYPE_COUNT) return -1;
    *out = (mmr_event_type_t)v;
    return 0;
}

int mmr_event_is_positive(const mmr_event_t *ev) {
    switch (ev->type) {
    case MMR_EV_CLICK:
    case MMR_EV_LIKE:
    case MMR_EV_SHARE:
    case MMR_EV_PURCHASE: return 1;
    case MMR_EV_WATCH: return ev->value >= MMR_WATCH_POSITIVE_S;
    case MMR_EV_RATING: return ev->value >= MMR_RATING_POSITIVE;
    default: return 0;
    }
}

int mmr_user_history(const mmr_user_t *u, int64_t before_ms, int max, const char **ids,
                     int32_t *types, float *ages_h) {
    int n = 0;
    for (uint32_t k = u ? u->n : 0; k-- > 0 && n < max;) { /* the ring is oldest first */
        const mmr_interaction_t *it = &u->recent[k];
        if (it->ts_ms >= before_ms || it->type == MMR_EV_IMPRESSION) continue;
        ids[n] = it->item_id;
        types[n] = (int32_t)it->type;
        ages_h[n] = (float)((double)(before_ms - it->ts_ms) / 3.6e6);
        n++;
    }
    return n;
}
