/*
 * ring.c -- SPSC ring set-up and checks; the fast paths are inline in ring.h.
 */
#include "ring.h"

#include <string.h>

size_t ring_bytes(uint32_t cap, uint32_t esize)
{
    size_t n = sizeof(ring_t) + (size_t)cap * esize;
    return (n + 63) & ~(size_t)63;
}

void ring_init(ring_t *r, uint32_t cap, uint32_t esize)
{
    memset(r, 0, sizeof(*r));
    r->esize = esize;
    r->cap = cap;
    r->mask = cap - 1;
    __atomic_store_n(&r->magic, RING_MAGIC, __ATOMIC_RELEASE);
}

int ring_check(const ring_t *r, uint32_t esize, size_t max)
{
    if (r->magic != RING_MAGIC || r->esize != esize || r->cap == 0 ||
        (r->cap & (r->cap - 1)) != 0 || r->mask != r->cap - 1)
        return -1;
    if (ring_bytes(r->cap, esize) > max)
        return -1;
    if (r->head - r->tail > r->cap)
        return -1;
    return 0;
}
