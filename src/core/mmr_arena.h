/* mmr_arena.h — bump allocator for per-request memory, released all at once when the
 * request completes. Not thread-safe: one arena belongs to one request at a time. */
#ifndef MMR_ARENA_H
#define MMR_ARENA_H

#include <stddef.h>

typedef struct mmr_arena mmr_arena_t;

/* chunk_size: bytes per chunk (larger requests get a chunk of their own). */
mmr_arena_t *mmr_arena_new(size_t chunk_size);
/* Returns 16-byte aligned, zeroed memory valid until mmr_arena_reset/free, or NULL. */
void *mmr_arena_alloc(mmr_arena_t *a, size_t size);
/* Copies a NUL-terminated string into the arena. */
char *mmr_arena_strdup(mmr_arena_t *a, const char *s);
/* Releases everything but the first chunk, for reuse by the next request. */
void mmr_arena_reset(mmr_arena_t *a);
/* NULL is a no-op. */
void mmr_arena_free(mmr_arena_t *a);

#endif
