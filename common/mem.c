/*
 * mem.c -- the process-heap allocation wrapper: malloc and friends, with the
 * bytes in use counted and out of memory turned into a logged abort.
 * jemalloc replaces the plain malloc symbols when it is linked in (it is not
 * under RINGMQ_NO_JEMALLOC), so the same calls serve both allocators.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

/* Usable bytes of every live block.  Processes are single-threaded. */
static size_t mem_in_use;

static void
mem_oom(size_t n)
{
    fprintf(stderr, "ringmq: out of memory (%zu bytes)\n", n);
    abort();
}

/* Allocates n bytes (at least one).  Never returns NULL: aborts instead. */
void *
mem_alloc(size_t n)
{
    void *p;

    p = malloc(n ? n : 1);
    if (p == NULL) {
        mem_oom(n);
    }
    mem_in_use += malloc_usable_size(p);
    return p;
}

/*
 * Allocates n zeroed elements of size bytes.  Never returns NULL: aborts on
 * out of memory, including when n * size overflows.
 */
void *
mem_calloc(size_t n, size_t size)
{
    void *p;

    if (n == 0 || size == 0) {
        n = 1;
        size = 1;
    }
    p = calloc(n, size);
    if (p == NULL) {
        mem_oom(size != 0 && n > SIZE_MAX / size ? SIZE_MAX : n * size);
    }
    mem_in_use += malloc_usable_size(p);
    return p;
}

/*
 * Resizes p (which may be NULL) to n bytes and returns the new block; p is
 * no longer valid afterwards.  Never returns NULL: aborts instead.
 */
void *
mem_realloc(void *p, size_t n)
{
    size_t old;
    void *q;

    if (p == NULL) {
        return mem_alloc(n);
    }
    old = malloc_usable_size(p);
    q = realloc(p, n ? n : 1);
    if (q == NULL) {
        mem_oom(n);
    }
    mem_in_use -= old;
    mem_in_use += malloc_usable_size(q);
    return q;
}

/* Returns a heap copy of s, owned by the caller.  Never returns NULL. */
char *
mem_strdup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

/*
 * Returns a NUL-terminated heap copy of at most n bytes of s (stopping at a
 * NUL), owned by the caller.  Never returns NULL.
 */
char *
mem_strndup(const char *s, size_t n)
{
    char *p;

    n = strnlen(s, n);
    p = mem_alloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Frees a block from this wrapper.  NULL is allowed. */
void
mem_free(void *p)
{
    if (p == NULL) {
        return;
    }
    mem_in_use -= malloc_usable_size(p);
    free(p);
}

/* Returns the usable bytes of all blocks currently allocated here. */
size_t
mem_used(void)
{
    return mem_in_use;
}
