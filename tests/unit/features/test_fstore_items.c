/* test_fstore_items.c — the catalog: put (any subset of modalities, awkward widths), get
 * via MultiGet (missing ids, deleted items, replacement), iteration over non-deleted items
 * in key order from one snapshot (a batch committed from inside the callback is not seen),
 * early stop, and refusal of invalid items. */
#include <math.h>

#include "fstore_test.h"
#include "mmr_fstore.h"

#define N_ITEMS 12

static char ids[N_ITEMS][16];
static float *embs[N_ITEMS][MMR_MODALITY_COUNT];
static mmr_item_t items[N_ITEMS];

static uint32_t dim_for(int i, int m) {
    static const uint32_t widths[] = {0, 1, 7, 64, 513};
    return widths[(i + 2 * m) % 5];
}

static void check_item(const mmr_item_t *got, const mmr_item_t *want) {
    CHECK(!strcmp(got->item_id, want->item_id));
    CHECK(got->created_ms == want->created_ms);
    CHECK(got->deleted == want->deleted);
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
        CHECK_MSG(got->emb_dim[m] == want->emb_dim[m], "%s modality %d", want->item_id, m);
        CHECK((got->emb[m] == NULL) == (want->emb_dim[m] == 0));
        if (want->emb_dim[m])
            CHECK(!memcmp(got->emb[m], want->emb[m], want->emb_dim[m] * sizeof(float)));
    }
}

typedef struct iter_ctx {
    mmr_fstore_t *fs;
    int seen[N_ITEMS];
    int calls, stop_after;
    char last[16];
    int wrote; /* committed a new item during the iteration */
} iter_ctx_t;

static int on_item(void *opaque, const mmr_item_t *it) {
    iter_ctx_t *c = opaque;
    CHECK(strcmp(c->last, it->item_id) < 0); /* key order */
    snprintf(c->last, sizeof c->last, "%s", it->item_id);
    int i = atoi(it->item_id + 5);
    CHECK_MSG(i >= 0 && i < N_ITEMS, "unexpected item %s", it->item_id); /* not item-99 */
    check_item(it, &items[i]);
    c->seen[i]++;
    if (!c->wrote) { /* writes committed after the iterator was created stay invisible */
        mmr_err_t err;
        mmr_fstore_batch_t *b = mmr_fstore_batch_new(c->fs);
        CHECK(b);
        mmr_item_t late = {.item_id = "item-99", .created_ms = 1};
        CHECK_OK(mmr_fstore_batch_put_item(b, &late, &err), &err);
        CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
        mmr_fstore_batch_free(b);
        c->wrote = 1;
    }
    return ++c->calls == c->stop_after;
}

int main(void) {
    char dir[256];
    fst_tmpdir(dir);
    mmr_fstore_opts_t opts = {.path = dir};
    mmr_fstore_t *fs;
    mmr_err_t err;
    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err);

    uint64_t rng = 7;
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    for (int i = 0; i < N_ITEMS; i++) {
        snprintf(ids[i], sizeof ids[i], "item-%02d", i);
        items[i] = (mmr_item_t){
            .item_id = ids[i], .created_ms = 1700000000000 + i, .deleted = i % 5 == 4};
        for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
            uint32_t d = dim_for(i, m);
            items[i].emb_dim[m] = d;
            if (!d) continue;
            embs[i][m] = malloc(d * sizeof(float));
            for (uint32_t k = 0; k < d; k++)
                embs[i][m][k] = (float)((double)(fst_rand(&rng) % 20001) / 10000.0 - 1.0);
            items[i].emb[m] = embs[i][m];
        }
        CHECK_OK(mmr_fstore_batch_put_item(b, &items[i], &err), &err);
    }
    mmr_fstore_batch_set_offset(b, "mmrec.items", 0, N_ITEMS);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);

    /* Reversed ids plus two unknown ones, in one MultiGet. */
    const char *q[N_ITEMS + 2];
    for (int i = 0; i < N_ITEMS; i++) q[i] = ids[N_ITEMS - 1 - i];
    q[N_ITEMS] = "nope";
    q[N_ITEMS + 1] = "item-99";
    mmr_item_t *got;
    uint8_t found[N_ITEMS + 2];
    CHECK_OK(mmr_fstore_get_items(fs, N_ITEMS + 2, q, &got, found, &err), &err);
    for (int i = 0; i < N_ITEMS; i++) {
        CHECK(found[i]);
        check_item(&got[i], &items[N_ITEMS - 1 - i]);
    }
    CHECK(!found[N_ITEMS] && !found[N_ITEMS + 1] && got[N_ITEMS].item_id == NULL);
    mmr_fstore_items_free(got);
    CHECK_OK(mmr_fstore_get_items(fs, 0, q, &got, found, &err), &err);
    CHECK(got == NULL);
    printf("ok  put %d items (widths 0/1/7/64/513 per modality), get them back via MultiGet\n",
           N_ITEMS);

    /* Replace one item: delete item-00 keeping its embeddings, drop a modality of item-01. */
    b = mmr_fstore_batch_new(fs);
    items[0].deleted = 1;
    items[1].emb_dim[MMR_MODALITY_IMAGE] = 0;
    items[1].emb[MMR_MODALITY_IMAGE] = NULL;
    CHECK_OK(mmr_fstore_batch_put_item(b, &items[0], &err), &err);
    CHECK_OK(mmr_fstore_batch_put_item(b, &items[1], &err), &err);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
    const char *two[2] = {ids[0], ids[1]};
    CHECK_OK(mmr_fstore_get_items(fs, 2, two, &got, found, &err), &err);
    CHECK(found[0] && found[1]);
    check_item(&got[0], &items[0]);
    check_item(&got[1], &items[1]);
    mmr_fstore_items_free(got);
    printf("ok  replacing an item (deleted flag, dropped modality) reads back as written\n");

    iter_ctx_t c = {.fs = fs};
    CHECK_OK(mmr_fstore_iter_items(fs, on_item, &c, &err), &err);
    int live = 0;
    for (int i = 0; i < N_ITEMS; i++) {
        CHECK_MSG(c.seen[i] == !items[i].deleted, "item %d seen %d", i, c.seen[i]);
        live += !items[i].deleted;
    }
    CHECK(c.calls == live && c.wrote);
    CHECK_OK(mmr_fstore_get_items(fs, 1, (const char *[]){"item-99"}, &got, found, &err), &err);
    CHECK(found[0]); /* the write made during the iteration did land */
    mmr_fstore_items_free(got);
    printf("ok  iteration: %d non-deleted items in key order; the snapshot excludes a write\n",
           live);

    iter_ctx_t stop = {.fs = fs, .stop_after = 3, .wrote = 1};
    CHECK_OK(mmr_fstore_iter_items(fs, on_item, &stop, &err), &err);
    CHECK(stop.calls == 3);
    printf("ok  the callback stops the iteration early\n");

    /* Invalid items are refused and the batch stays usable. */
    b = mmr_fstore_batch_new(fs);
    float nan_emb[2] = {0.5f, NAN};
    char long_id[MMR_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    mmr_item_t bad[] = {
        {.item_id = NULL},
        {.item_id = ""},
        {.item_id = long_id},
        {.item_id = "w", .emb_dim = {0, MMR_EMB_DIM_MAX + 1, 0}, .emb = {NULL, nan_emb, NULL}},
        {.item_id = "p", .emb_dim = {0, 0, 4}},
        {.item_id = "n", .emb_dim = {2, 0, 0}, .emb = {nan_emb}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(mmr_fstore_batch_put_item(b, &bad[i], &err) == MMR_ERR_INVALID, "bad %zu", i);
        CHECK(err.msg[0]);
    }
    CHECK(mmr_fstore_batch_put_item(b, NULL, &err) == MMR_ERR_INVALID);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    CHECK(mmr_fstore_batch_put_item(b, &items[2], &err) == MMR_ERR_INVALID); /* after commit */
    mmr_fstore_batch_free(b);
    CHECK(mmr_fstore_get_items(fs, 1, (const char *[]){""}, &got, found, &err) == MMR_ERR_INVALID);
    printf("ok  invalid items refused (NULL/empty/long id, width, NULL or NaN embedding)\n");

    mmr_fstore_close(fs);
    for (int i = 0; i < N_ITEMS; i++)
        for (int m = 0; m < MMR_MODALITY_COUNT; m++) free(embs[i][m]);
    fst_rmdir(dir);
    return 0;
}
