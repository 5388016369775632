/* arena.c — chunked bump allocator (see mmr_arena.h). */
#include "mmr_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} chunk_t;

struct mmr_arena {
    chunk_t *head; /* newest chunk first; the last one is kept by reset */
    size_t chunk_size;
};

static chunk_t *chunk_new(size_t size) {
    chunk_t *c = malloc(sizeof *c + size);
    if (!c) return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

mmr_arena_t *mmr_arena_new(size_t chunk_size) {
    mmr_arena_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->chunk_size = chunk_size ? chunk_size : 16384;
    a->head = chunk_new(a->chunk_size);
    if (!a->head) { free(a); return NULL; }
    return a;
}

void *mmr_arena_alloc(mmr_arena_t *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (a->head->size - a->head->used < size) {
        chunk_t *c = chunk_new(size > a->chunk_size ? size : a->chunk_size);
        if (!c) return NULL;
        c->next = a->head;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += size;
    memset(p, 0, size);
    return p;
}

char *mmr_arena_strdup(mmr_arena_t *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = mmr_arena_alloc(a, n);
    if (p) memcpy(p, s, n);
    return p;
}

void mmr_arena_reset(mmr_arena_t *a) {
    while (a->head->next) {
        chunk_t *c = a->head;
        a->head = c->next;
        free(c);
    }
    a->head->used = 0;
}

void mmr_arena_free(mmr_arena_t *a) {
    if (!a) return;
    while (a->head) {
        chunk_t *c = a->head;
        a->head = c->next;
        free(c);
    }
    free(a);
}
