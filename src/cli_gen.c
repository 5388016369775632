/* cli_gen.c — `mmrec gen`: a synthetic multimodal dataset with planted structure.
 *
 * Latent topics (K of them, each a random vector in R^8) generate every item's text,
 * image and video embeddings through three different random linear maps plus noise;
 * some modalities are missing per item. Each user prefers two topics and, halfway
 * through the log, swaps one of them (drift). Sessions show slates of 10 random items
 * (IMPRESSION, with a request_id); the user clicks an item of a preferred topic with
 * p = 0.5 and any other with p = 0.03; a click on an item with video is followed by a
 * WATCH, and sometimes a LIKE. Same seed, same files.
 *
 * Output: DIR/items.jsonl ({"item_id","topic","text_emb","image_emb","video_emb"}) and
 * DIR/events.tsv (ts_ms, user_id, item_id, type, value, request_id). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "mmr_rand.h"

#define LATENT 8

static double rng_gauss(uint64_t *s) {
    double u = mmr_rand_uniform(s) + 1e-12, v = mmr_rand_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Writes one modality: emb = map (d×LATENT) · topic + 0.3·noise, as a JSON array. */
static void write_emb(FILE *f, const char *name, const float *map, int d, const float *topic, uint64_t *rng) {
    fprintf(f, ",\"%s\":[", name);
    for (int r = 0; r < d; r++) {
        double x = 0.3 * rng_gauss(rng);
        for (int c = 0; c < LATENT; c++) x += map[r * LATENT + c] * topic[c];
        fprintf(f, "%s%.5f", r ? "," : "", x);
    }
    fputc(']', f);
}

int mmr_cli_gen(int argc, char **argv) {
    static const char *const valued[] = {"out", "users", "items", "topics", "events", "seed", "dims", "start-ms", NULL};
    if (!mmr_cli_check_opts(argc, argv, valued, NULL)) return 2;
    const char *out = mmr_cli_opt(argc, argv, "out", NULL);
    long users = atol(mmr_cli_opt(argc, argv, "users", "1000"));
    long items = atol(mmr_cli_opt(argc, argv, "items", "500"));
    long topics = atol(mmr_cli_opt(argc, argv, "topics", "10"));
    long events = atol(mmr_cli_opt(argc, argv, "events", "100000"));
    uint64_t rng = strtoull(mmr_cli_opt(argc, argv, "seed", "42"), NULL, 10);
    int dims[3];
    if (!out || users < 1 || items < 10 || topics < 2 || events < 1 ||
        sscanf(mmr_cli_opt(argc, argv, "dims", "384,512,512"), "%d,%d,%d", &dims[0], &dims[1], &dims[2]) != 3 ||
        dims[0] < 1 || dims[1] < 1 || dims[2] < 1) {
        fprintf(stderr, "usage: mmrec gen --out DIR [--users N>=1] [--items N>=10] [--topics N>=2] "
                        "[--events N>=1] [--seed S] [--dims T,I,V] [--start-ms MS]\n");
        return 2;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mmrec gen: mkdir %s: %s\n", out, strerror(errno));
        return 1;
    }
    float *topic = malloc(sizeof(float) * (size_t)topics * LATENT);
    float *maps[3];
    for (int m = 0; m < 3; m++) maps[m] = malloc(sizeof(float) * (size_t)dims[m] * LATENT);
    int *item_topic = malloc(sizeof(int) * (size_t)items);
    unsigned char *has_video = malloc((size_t)items);
    int *fav = malloc(sizeof(int) * (size_t)users * 3); /* two favourites + the drift target */
    for (long i = 0; i < topics * LATENT; i++) topic[i] = (float)rng_gauss(&rng);
    for (int m = 0; m < 3; m++)
        for (long i = 0; i < (long)dims[m] * LATENT; i++) maps[m][i] = (float)(rng_gauss(&rng) / sqrt(LATENT));

    char path[4096];
    snprintf(path, sizeof path, "%s/items.jsonl", out);
    FILE *fi = fopen(path, "w");
    snprintf(path, sizeof path, "%s/events.tsv", out);
    FILE *fe = fopen(path, "w");
    if (!fi || !fe) {
        fprintf(stderr, "mmrec gen: cannot write into %s\n", out);
        return 1;
    }
    static const char *const names[3] = {"text_emb", "image_emb", "video_emb"};
    static const double present[3] = {0.9, 0.8, 0.6};
    for (long i = 0; i < items; i++) {
        item_topic[i] = (int)(mmr_rand_next(&rng) % (uint64_t)topics);
        fprintf(fi, "{\"item_id\":\"i%ld\",\"topic\":%d", i, item_topic[i]);
        has_video[i] = 0;
        for (int m = 0; m < 3; m++) {
            if (mmr_rand_uniform(&rng) >= present[m]) continue;
            if (m == 2) has_video[i] = 1;
            write_emb(fi, names[m], maps[m], dims[m], &topic[item_topic[i] * LATENT], &rng);
        }
        fputs("}\n", fi);
    }
    for (long u = 0; u < users; u++) {
        fav[u * 3] = (int)(mmr_rand_next(&rng) % (uint64_t)topics);
        fav[u * 3 + 1] = (int)((fav[u * 3] + 1 + mmr_rand_next(&rng) % (uint64_t)(topics - 1)) % topics);
        fav[u * 3 + 2] = (int)(mmr_rand_next(&rng) % (uint64_t)topics);
    }
    int64_t ts = strtoll(mmr_cli_opt(argc, argv, "start-ms", "1767225600000"), NULL, 10); /* 2026-01-01 */
    long written = 0, session = 0;
    while (written < events) {
        long u = (long)(mmr_rand_next(&rng) % (uint64_t)users);
        int drifted = written > events / 2;
        int f0 = fav[u * 3], f1 = drifted ? fav[u * 3 + 2] : fav[u * 3 + 1];
        char rid[32];
        snprintf(rid, sizeof rid, "s%ld", session++);
        for (int slot = 0; slot < 10 && written < events; slot++) {
            long it = (long)(mmr_rand_next(&rng) % (uint64_t)items);
            ts += 1 + (int64_t)(mmr_rand_next(&rng) % 2000);
            fprintf(fe, "%lld\tu%ld\ti%ld\tIMPRESSION\t1\t%s\n", (long long)ts, u, it, rid);
            written++;
            int liked = item_topic[it] == f0 || item_topic[it] == f1;
            if (mmr_rand_uniform(&rng) >= (liked ? 0.5 : 0.03) || written >= events) continue;
            fprintf(fe, "%lld\tu%ld\ti%ld\tCLICK\t1\t%s\n", (long long)++ts, u, it, rid);
            written++;
            if (has_video[it] && written < events) {
                fprintf(fe, "%lld\tu%ld\ti%ld\tWATCH\t%.0f\t%s\n", (long long)++ts, u, it,
                        liked ? 20 + 100 * mmr_rand_uniform(&rng) : 3 + 10 * mmr_rand_uniform(&rng), rid);
                written++;
            }
            if (liked && mmr_rand_uniform(&rng) < 0.2 && written < events) {
                fprintf(fe, "%lld\tu%ld\ti%ld\tLIKE\t1\t%s\n", (long long)++ts, u, it, rid);
                written++;
            }
        }
    }
    int rc = (fclose(fi) | fclose(fe)) ? 1 : 0;
    if (rc) fprintf(stderr, "mmrec gen: write failed in %s\n", out);
    else printf("wrote %ld items and %ld events (%ld users, %ld topics) to %s\n", items, written, users, topics, out);
    free(topic);
    for (int m = 0; m < 3; m++) free(maps[m]);
    free(item_topic);
    free(has_video);
    free(fav);
    return rc;
}
