/*
 * ring.h -- single-producer single-consumer rings of fixed-size records in
 * shared memory.  The producer owns head, the consumer owns tail; each keeps
 * a private cached copy of the other's index (in its own cache line).
 */
#ifndef RINGMQ_RING_H
#define RINGMQ_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_MAGIC 0x52494e47u /* "RING" */

typedef struct ring {
    uint32_t magic;
    uint32_t esize; /* bytes per record */
    uint32_t cap;   /* records, power of two */
    uint32_t mask;
    uint8_t pad0[48];
    /* producer line */
    uint64_t head;        /* written by the producer (release) */
    uint64_t tail_cache;  /* producer's private copy of tail */
    uint8_t pad1[48];
    /* consumer line */
    uint64_t tail;        /* written by the consumer (release) */
    uint64_t head_cache;  /* consumer's private copy of head */
    uint8_t pad2[48];
    uint8_t data[];
} ring_t;

/* Bytes a ring of cap records of esize bytes takes (header included). */
size_t ring_bytes(uint32_t cap, uint32_t esize);

/* Initialises a ring at r (zeroed memory of ring_bytes()).  cap must be a
 * power of two. */
void ring_init(ring_t *r, uint32_t cap, uint32_t esize);

/* Returns 0 when r looks like a ring of esize records fitting in max bytes,
 * -1 otherwise. */
int ring_check(const ring_t *r, uint32_t esize, size_t max);

/* ---- producer side ---- */

/* Number of records the producer may write now, at least `need` when that
 * many are free.  The cached tail is refreshed (acquire load, pairing with
 * the consumer's release store of tail) only when it shows too little room. */
static inline uint32_t ring_space(ring_t *r, uint32_t need)
{
    uint64_t used = r->head - r->tail_cache;
    if (r->cap - used < need) {
        r->tail_cache = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
        used = r->head - r->tail_cache;
    }
    return (uint32_t)(r->cap - used);
}

/* Exact number of records in the ring as the producer sees it. */
static inline uint32_t ring_used_producer(ring_t *r)
{
    r->tail_cache = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    return (uint32_t)(r->head - r->tail_cache);
}

/* Record slot i positions past head (i < ring_space()). */
static inline void *ring_slot(ring_t *r, uint32_t i)
{
    return r->data + (size_t)((r->head + i) & r->mask) * r->esize;
}

/* Publishes n records written through ring_slot(): the release store makes
 * the record bytes visible before the new head (pairs with the consumer's
 * acquire load in ring_count()). */
static inline void ring_commit(ring_t *r, uint32_t n)
{
    __atomic_store_n(&r->head, r->head + n, __ATOMIC_RELEASE);
}

/* ---- consumer side ---- */

/* Records available to the consumer (acquire load of head, pairing with
 * ring_commit()). */
static inline uint32_t ring_count(ring_t *r)
{
    r->head_cache = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    return (uint32_t)(r->head_cache - r->tail);
}

/* Record i past tail (i < ring_count()). */
static inline void *ring_peek(ring_t *r, uint32_t i)
{
    return r->data + (size_t)((r->tail + i) & r->mask) * r->esize;
}

/* Frees n records: the release store orders our reads of them before the
 * producer may overwrite them (pairs with the acquire in ring_space()). */
static inline void ring_consume(ring_t *r, uint32_t n)
{
    __atomic_store_n(&r->tail, r->tail + n, __ATOMIC_RELEASE);
}

/* Producer only: the record at absolute position pos, committed since
 * position `since` (pos in [since, head)), or NULL when pos is not there
 * or was written over.  Records the consumer has taken stay readable
 * until the producer writes over them: only it writes the ring. */
static inline const void *ring_at(const ring_t *r, uint64_t since,
                                  uint64_t pos)
{
    if (pos < since || pos >= r->head || r->head - pos > r->cap)
        return NULL;
    return r->data + (size_t)(pos & r->mask) * r->esize;
}

/* Producer only: the last record committed (at head - 1), or NULL when
 * none ever was.  It stays readable after the consumer took it, until
 * the producer writes the next one (a restarted producer uses this to
 * see how far its previous incarnation got). */
static inline const void *ring_last(const ring_t *r)
{
    if (r->head == 0)
        return NULL;
    return r->data + (size_t)((r->head - 1) & r->mask) * r->esize;
}

#endif
