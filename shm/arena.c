/*
 * arena.c -- the shared message arena.  Each partition is a buddy
 * allocator owned by one process: only the owner splits and merges blocks.
 * A block released in any process goes on the partition's lock-free stack,
 * which is only ever pushed to or taken whole (no ABA); the owner merges
 * those blocks into its free lists when it next allocates.
 */
#include "arena.h"

#include <string.h>

#include "log.h"

static inline arena_blk_t *blk_at(const arena_t *a, uint64_t off64)
{
    return (arena_blk_t *)(a->base + off64 * 64);
}

static inline uint32_t *links(arena_blk_t *b)
{
    return (uint32_t *)((uint8_t *)b + ARENA_HDR); /* [0] next, [1] prev */
}

static inline uint64_t order_bytes(unsigned k)
{
    return (uint64_t)1 << (k + ARENA_MIN_SHIFT);
}

static void list_push(arena_t *a, arena_part_t *p, uint32_t off, unsigned k)
{
    arena_blk_t *b = blk_at(a, off);
    b->cls = (uint8_t)k;
    b->state = ARENA_FREE;
    links(b)[0] = p->free_head[k];
    links(b)[1] = 0;
    if (p->free_head[k])
        links(blk_at(a, p->free_head[k]))[1] = off;
    p->free_head[k] = off;
}

static void list_unlink(arena_t *a, arena_part_t *p, uint32_t off)
{
    arena_blk_t *b = blk_at(a, off);
    uint32_t next = links(b)[0], prev = links(b)[1];
    if (prev)
        links(blk_at(a, prev))[0] = next;
    else
        p->free_head[b->cls] = next;
    if (next)
        links(blk_at(a, next))[1] = prev;
    b->state = 0;
}

void arena_part_init(arena_t *a, arena_part_t *p, uint32_t i, uint64_t start,
                     uint64_t size)
{
    memset(p, 0, sizeof(*p));
    p->index = i;
    p->start = start;
    p->size = size & ~(uint64_t)63;
    p->gen_next = 1;
    p->magic = ARENA_MAGIC;
    /* Carve the partition into the largest aligned blocks that fit; the
     * buddy of each is computed relative to start. */
    uint64_t off = 0;
    while (off + 64 <= p->size) {
        unsigned k = ARENA_CLASSES - 1;
        while (k > 0 && ((off & (order_bytes(k) - 1)) != 0 ||
                         off + order_bytes(k) > p->size))
            k--;
        uint32_t o64 = (uint32_t)((start + off) / 64);
        arena_blk_t *b = blk_at(a, o64);
        b->gen = 1;
        b->ref = 0;
        b->part = (uint8_t)i;
        list_push(a, p, o64, k);
        off += order_bytes(k);
    }
}

uint64_t arena_part_max_len(const arena_part_t *p)
{
    /* arena_part_init() carves from the partition's start, largest block
     * first, and blocks merge only with their buddies: none grows past
     * the first. */
    unsigned k = ARENA_CLASSES - 1;
    while (k > 0 && order_bytes(k) > p->size)
        k--;
    return order_bytes(k) - ARENA_HDR;
}

static int order_for(size_t len)
{
    size_t total = len + ARENA_HDR;
    int k = 0;
    while (order_bytes((unsigned)k) < total)
        if (++k >= ARENA_CLASSES)
            return -1;
    return k;
}

/* Puts released block off back on the free lists, merged with its buddy
 * for as long as the buddy is free too. */
static void merge_free(arena_t *a, arena_part_t *p, uint32_t off)
{
    arena_blk_t *b = blk_at(a, off);
    unsigned k = b->cls;
    uint64_t rel = (uint64_t)off * 64 - p->start;
    while (k + 1 < ARENA_CLASSES) {
        uint64_t brel = rel ^ order_bytes(k);
        if (brel + order_bytes(k) > p->size)
            break;
        uint32_t boff = (uint32_t)((p->start + brel) / 64);
        arena_blk_t *bb = blk_at(a, boff);
        if (bb->state != ARENA_FREE || bb->cls != k)
            break;
        list_unlink(a, p, boff);
        if (brel < rel) {
            /* The lower half carries on. */
            b->state = 0;
            b = bb;
            off = boff;
            rel = brel;
        }
        k++;
    }
    b->cls = (uint8_t)k;
    list_push(a, p, off, k);
}

/* Takes every block released by any process and merges it, one block at
 * a time: a block is off the stack only while it is being merged, so an
 * owner killed here loses at most that one (arena_part_recover()).  The
 * owner is the only one that pops, so a popped block cannot come back
 * onto the stack before our CAS (no ABA).  Acquire pairs with the release
 * CAS in arena_release(), so links and headers are seen. */
static void take_released(arena_t *a, arena_part_t *p)
{
    uint32_t off = __atomic_load_n(&p->remote_free, __ATOMIC_ACQUIRE);
    while (off) {
        uint32_t next = links(blk_at(a, off))[0];
        if (!__atomic_compare_exchange_n(&p->remote_free, &off, next, 0,
                                         __ATOMIC_ACQUIRE,
                                         __ATOMIC_ACQUIRE))
            continue; /* a push came first: off is the new top */
        merge_free(a, p, off);
        off = __atomic_load_n(&p->remote_free, __ATOMIC_ACQUIRE);
    }
}

/* Walks partition p block by block, calling fn on each block whose state
 * is FREE or 0 (free, or caught in a split or merge).  Returns the number
 * of such blocks; *used gets the blocks in use.  A header the walk cannot
 * trust ends it (logged): the rest of the partition is given up rather
 * than guessed. */
static uint32_t walk_free(arena_t *a, arena_part_t *p, uint32_t *used,
                          void (*fn)(arena_t *, arena_part_t *, uint32_t))
{
    uint64_t off = 0;
    uint32_t n = 0;
    *used = 0;
    while (off + 64 <= p->size) {
        uint32_t o64 = (uint32_t)((p->start + off) / 64);
        arena_blk_t *b = blk_at(a, o64);
        unsigned k = b->cls;
        if (k >= ARENA_CLASSES || (off & (order_bytes(k) - 1)) != 0 ||
            off + order_bytes(k) > p->size) {
            log_err("arena partition %u: bad block header at +%llu; "
                    "%llu bytes not recovered", p->index,
                    (unsigned long long)off,
                    (unsigned long long)(p->size - off));
            break;
        }
        uint8_t st = __atomic_load_n(&b->state, __ATOMIC_ACQUIRE);
        if (st == ARENA_FREE || st == 0) {
            fn(a, p, o64);
            n++;
        } else if (st == ARENA_USED) {
            (*used)++;
        }
        /* ARENA_RELEASED: on the remote-free stack, or about to be pushed
         * there by the process releasing it; the stack gives it back. */
        off += order_bytes(k);
    }
    return n;
}

static void mark_unlisted(arena_t *a, arena_part_t *p, uint32_t off)
{
    arena_blk_t *b = blk_at(a, off);
    b->state = 0;
    b->ref = 0;
    b->part = (uint8_t)p->index;
}

void arena_part_recover(arena_t *a, arena_part_t *p)
{
    /* Two passes: first every free block leaves the old lists (state 0),
     * so that merging in the second pass only ever unlinks a buddy that
     * the new lists hold. */
    memset(p->free_head, 0, sizeof(p->free_head));
    uint32_t used;
    walk_free(a, p, &used, mark_unlisted);
    uint32_t n = walk_free(a, p, &used, merge_free);
    log_info("arena partition %u recovered: %u blocks in use, %u free "
             "blocks merged", p->index, used, n);
}

arena_h arena_alloc(arena_t *a, arena_part_t *p, size_t len, void **data)
{
    int k = order_for(len);
    if (k < 0 || len > UINT32_MAX) {
        p->alloc_fail++;
        return 0;
    }
    take_released(a, p);
    unsigned j = (unsigned)k;
    while (j < ARENA_CLASSES && p->free_head[j] == 0)
        j++;
    if (j == ARENA_CLASSES) {
        p->alloc_fail++;
        return 0;
    }
    uint32_t off = p->free_head[j];
    list_unlink(a, p, off);
    arena_blk_t *b = blk_at(a, off);
    while (j > (unsigned)k) {
        /* Split: the upper half goes back on the list one order down. */
        j--;
        uint32_t hi = off + (uint32_t)(order_bytes(j) / 64);
        arena_blk_t *h = blk_at(a, hi);
        h->ref = 0;
        h->part = (uint8_t)p->index;
        list_push(a, p, hi, j);
    }
    /* A fresh generation from the partition's counter: a stale handle to
     * this address (even from before a split or merge) stays stale. */
    b->gen = p->gen_next++;
    if (p->gen_next == 0)
        p->gen_next = 1;
    b->len = (uint32_t)len;
    b->cls = (uint8_t)k;
    b->part = (uint8_t)p->index;
    b->state = ARENA_USED;
    /* Relaxed is enough: the block is published to others only through a
     * ring commit (release), which orders this store before it. */
    __atomic_store_n(&b->ref, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->bytes_used, order_bytes((unsigned)k),
                       __ATOMIC_RELAXED);
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
    if (b->gen != (uint32_t)h || b->state != ARENA_USED ||
        __atomic_load_n(&b->ref, __ATOMIC_ACQUIRE) == 0 ||
        b->cls >= ARENA_CLASSES || b->part >= a->n_parts)
        return NULL;
    const arena_part_t *p = &a->parts[b->part];
    uint64_t size = order_bytes(b->cls);
    if (byte < p->start || byte + size > p->start + p->size ||
        ((byte - p->start) & (size - 1)) != 0 ||
        (uint64_t)b->len + ARENA_HDR > size)
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
    arena_release_n(a, h, 1);
}

void arena_release_n(arena_t *a, arena_h h, uint32_t n)
{
    arena_blk_t *b = checked(a, h);
    if (b == NULL) {
        log_err("arena: release of stale handle %016llx",
                (unsigned long long)h);
        return;
    }
    /* acq_rel: our reads of the block happen before the free, and the
     * freeing process sees every other holder's reads done. */
    if (__atomic_sub_fetch(&b->ref, n, __ATOMIC_ACQ_REL) != 0)
        return;
    arena_part_t *p = &a->parts[b->part];
    b->gen++;
    if (b->gen == 0)
        b->gen = 1;
    b->state = ARENA_RELEASED;
    __atomic_sub_fetch(&p->bytes_used, order_bytes(b->cls),
                       __ATOMIC_RELAXED);
    __atomic_sub_fetch(&p->blocks_used, 1, __ATOMIC_RELAXED);
    uint32_t off = (uint32_t)(h >> 32);
    uint32_t head = __atomic_load_n(&p->remote_free, __ATOMIC_RELAXED);
    do {
        links(b)[0] = head;
        /* Release: the link, state and generation are visible before the
         * block is (pairs with the owner's acquire in take_released). */
    } while (!__atomic_compare_exchange_n(&p->remote_free, &head, off, 1,
                                          __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
}

void arena_drop(arena_t *a, arena_h *field)
{
    arena_h h = *field;
    if (h == 0)
        return;
    *field = 0;
    ARENA_CRASH_ORDER();
    arena_release(a, h);
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
