/*
 * arena.c -- the shared message arena.  Allocation is single-writer per
 * partition; frees come from any process through a lock-free stack per
 * size class that only ever gets pushed to or taken whole (no ABA).
 */
#include "arena.h"

#include <string.h>

#include "log.h"

void arena_part_init(arena_part_t *p, uint32_t i, uint64_t start,
                     uint64_t size)
{
    memset(p, 0, sizeof(*p));
    p->index = i;
    p->start = start;
    p->size = size;
    p->magic = ARENA_MAGIC;
}

static inline arena_blk_t *blk_at(const arena_t *a, uint64_t off64)
{
    return (arena_blk_t *)(a->base + off64 * 64);
}

static int size_class(size_t len)
{
    size_t total = len + ARENA_HDR;
    int c = 0;
    while (((size_t)1 << (c + ARENA_MIN_SHIFT)) < total) {
        c++;
        if (c >= ARENA_CLASSES)
            return -1;
    }
    return c;
}

arena_h arena_alloc(arena_t *a, arena_part_t *p, size_t len, void **data)
{
    int c = size_class(len);
    if (c < 0 || len > UINT32_MAX) {
        p->alloc_fail++;
        return 0;
    }
    uint64_t csize = (uint64_t)1 << (c + ARENA_MIN_SHIFT);
    uint32_t off = p->local_free[c];
    if (off == 0) {
        /* Take every block freed by other processes at once.  Acquire pairs
         * with the release CAS in arena_release(), so the links are seen. */
        off = __atomic_exchange_n(&p->remote_free[c], 0, __ATOMIC_ACQUIRE);
    }
    arena_blk_t *b;
    if (off != 0) {
        b = blk_at(a, off);
        p->local_free[c] = *(uint32_t *)((uint8_t *)b + ARENA_HDR);
    } else {
        /* Bump allocation, aligned to the class size up to 4 KiB so big
         * blocks do not straddle more pages than they must. */
        uint64_t align = csize < 4096 ? csize : 4096;
        uint64_t at = (p->bump + align - 1) & ~(align - 1);
        if (at + csize > p->size) {
            p->alloc_fail++;
            return 0;
        }
        p->bump = at + csize;
        off = (uint32_t)((p->start + at) / 64);
        b = blk_at(a, off);
        b->gen = 1;
    }
    b->len = (uint32_t)len;
    b->cls = (uint8_t)c;
    b->part = (uint8_t)p->index;
    /* Relaxed is enough: the block is published to others only through a
     * ring commit (release), which orders this store before it. */
    __atomic_store_n(&b->ref, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->bytes_used, csize, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->blocks_used, 1, __ATOMIC_RELAXED);
    *data = (uint8_t *)b + ARENA_HDR;
    return arena_handle(off, b->gen);
}

static arena_blk_t *checked(const arena_t *a, arena_h h)
{
    uint64_t off64 = h >> 32;
    uint64_t byte = off64 * 64;
    if (h == 0 || byte < a->lo || byte + 64 > a->hi)
        return NULL;
    arena_blk_t *b = blk_at(a, off64);
    if (b->gen != (uint32_t)h ||
        __atomic_load_n(&b->ref, __ATOMIC_ACQUIRE) == 0 ||
        b->cls >= ARENA_CLASSES || b->part >= a->n_parts ||
        byte + ((uint64_t)1 << (b->cls + ARENA_MIN_SHIFT)) > a->hi ||
        (uint64_t)b->len + ARENA_HDR >
            ((uint64_t)1 << (b->cls + ARENA_MIN_SHIFT)))
        return NULL;
    return b;
}

void *arena_get(const arena_t *a, arena_h h, uint32_t *len)
{
    arena_blk_t *b = checked(a, h);
    if (b == NULL)
        return NULL;
    if (len)
        *len = b->len;
    return (uint8_t *)b + ARENA_HDR;
}

void arena_ref_add(arena_t *a, arena_h h, uint32_t n)
{
    if (n == 0)
        return;
    arena_blk_t *b = checked(a, h);
    if (b == NULL) {
        log_err("arena: reference added to stale handle %016llx",
                (unsigned long long)h);
        return;
    }
    __atomic_add_fetch(&b->ref, n, __ATOMIC_RELAXED);
}

void arena_release(arena_t *a, arena_h h)
{
    arena_blk_t *b = checked(a, h);
    if (b == NULL) {
        log_err("arena: release of stale handle %016llx",
                (unsigned long long)h);
        return;
    }
    /* acq_rel: our reads of the block happen before the free, and the
     * freeing process sees every other holder's reads done. */
    if (__atomic_sub_fetch(&b->ref, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    arena_part_t *p = &a->parts[b->part];
    uint64_t csize = (uint64_t)1 << (b->cls + ARENA_MIN_SHIFT);
    b->gen++;
    if (b->gen == 0)
        b->gen = 1;
    __atomic_sub_fetch(&p->bytes_used, csize, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&p->blocks_used, 1, __ATOMIC_RELAXED);
    uint32_t off = (uint32_t)(h >> 32);
    uint32_t *link = (uint32_t *)((uint8_t *)b + ARENA_HDR);
    uint32_t head = __atomic_load_n(&p->remote_free[b->cls],
                                    __ATOMIC_RELAXED);
    do {
        *link = head;
        /* Release: the link and generation are visible before the block
         * is (pairs with the owner's acquire exchange in arena_alloc). */
    } while (!__atomic_compare_exchange_n(&p->remote_free[b->cls], &head,
                                          off, 1, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
}

void arena_usage(const arena_t *a, uint64_t *blocks, uint64_t *bytes)
{
    uint64_t bl = 0, by = 0;
    for (uint32_t i = 0; i < a->n_parts; i++) {
        bl += __atomic_load_n(&a->parts[i].blocks_used, __ATOMIC_RELAXED);
        by += __atomic_load_n(&a->parts[i].bytes_used, __ATOMIC_RELAXED);
    }
    *blocks = bl;
    *bytes = by;
}
