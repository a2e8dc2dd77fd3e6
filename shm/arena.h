/*
 * arena.h -- the shared message arena: reference-counted blocks in
 * partitions, one partition per process that allocates.  Each partition is
 * a buddy allocator (blocks of 64 << order bytes, split on allocation,
 * merged with their free buddy when freed), so space freed at one size
 * serves every other size.  Handles carry a generation so a stale handle
 * is detected, never followed.
 */
#ifndef RINGMQ_ARENA_H
#define RINGMQ_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define ARENA_MAGIC 0x4152454eu /* "AREN" */
#define ARENA_CLASSES 24        /* orders: 64 B .. 512 MiB */
#define ARENA_MIN_SHIFT 6
#define ARENA_HDR 16

/* A handle: (block offset / 64) << 32 | generation.  0 is "no block". */
typedef uint64_t arena_h;

enum { ARENA_USED = 1, ARENA_RELEASED = 2, ARENA_FREE = 3 };

typedef struct arena_blk {
    uint32_t gen;   /* set at allocation, bumped by the last release */
    uint32_t ref;   /* atomic reference count; 0 when not in use */
    uint32_t len;   /* user bytes */
    uint8_t cls;    /* order: the block is 64 << cls bytes */
    uint8_t part;   /* owning partition */
    uint8_t state;  /* ARENA_*: FREE only while on the owner's free list */
    uint8_t pad;
} arena_blk_t;

typedef struct arena_part {
    uint32_t magic;
    uint32_t index;
    uint64_t start; /* byte offset from the shm base */
    uint64_t size;
    /* owner only: free blocks per order, doubly linked through their data
     * (next, prev as block off64; 0 ends) */
    uint32_t free_head[ARENA_CLASSES];
    uint32_t gen_next; /* generation of the next allocation (never 0): a
                          handle is unique per partition for 2^32 allocs */
    uint32_t pad2;
    uint64_t alloc_fail;
    uint8_t pad0[64];
    /* any process: lock-free push of released blocks; the owner takes the
     * whole stack at once and merges them into its free lists */
    uint32_t remote_free;
    uint8_t pad1[60];
    /* atomic counters (any process) */
    uint64_t bytes_used;
    uint64_t blocks_used;
} arena_part_t;

/* A process's view of the arena: where the mapping is and its bounds. */
typedef struct arena {
    uint8_t *base;      /* shm base */
    uint64_t lo, hi;    /* byte range of the block area */
    arena_part_t *parts;
    uint32_t n_parts;
} arena_t;

/* Initialises partition i covering [start, start+size) of the mapping
 * (start a multiple of 64) and puts all of it on its free lists. */
void arena_part_init(arena_t *a, arena_part_t *p, uint32_t i, uint64_t start,
                     uint64_t size);

/*
 * Allocates a block of len bytes in partition p (the caller must be its
 * owner).  Returns a handle with refcount 1 and sets *data, or 0 when the
 * partition has no room (back-pressure, not an error).
 */
arena_h arena_alloc(arena_t *a, arena_part_t *p, size_t len, void **data);

/*
 * Checked dereference: returns the block's data and sets *len, or NULL when
 * the handle is out of bounds, misaligned or stale (generation mismatch or
 * free block).
 */
void *arena_get(const arena_t *a, arena_h h, uint32_t *len);

/* Adds n references (the caller holds one). */
void arena_ref_add(arena_t *a, arena_h h, uint32_t n);

/* Drops one reference; the last one frees the block (any process). */
void arena_release(arena_t *a, arena_h h);
/* Drops n references at once (n > 0; the caller holds them). */
void arena_release_n(arena_t *a, arena_h h, uint32_t n);

/*
 * Rebuilds the free lists of partition p after its owner died at an
 * arbitrary instruction, by walking its blocks; the caller is the new
 * owner.  Blocks in use and blocks on the remote-free stack are left as
 * they are.  See docs/architecture.md, "Crash story".
 */
void arena_part_recover(arena_t *a, arena_part_t *p);

/*
 * Crash order.  A process may be killed at any instruction; what it leaves
 * in shared memory is the program order of its stores.  This keeps the
 * compiler from moving stores across it (the CPU never drops a store of a
 * killed process), so "unhook, then release" can be written as such.
 */
#define ARENA_CRASH_ORDER() __atomic_signal_fence(__ATOMIC_SEQ_CST)

/* Clears *field, a shared structure's reference, then releases it: a kill
 * in between leaks the reference, never releases it twice.  Nothing when
 * *field is 0. */
void arena_drop(arena_t *a, arena_h *field);

/* The largest len arena_alloc() can give in p (its largest block, when
 * free). */
uint64_t arena_part_max_len(const arena_part_t *p);

/* Blocks and bytes in use over all partitions. */
void arena_usage(const arena_t *a, uint64_t *blocks, uint64_t *bytes);

static inline arena_h arena_handle(uint64_t off64, uint32_t gen)
{
    return (off64 << 32) | gen;
}

#endif
