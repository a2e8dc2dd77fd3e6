/*
 * test_arena.c -- the shared message arena over a MAP_SHARED mapping: one
 * buddy allocator per partition.  Distinct blocks of the requested length,
 * order (size) selection, alignment of every block to its own size,
 * reference counts, stale and forged handles, generations that never come
 * back at an offset (also across splits and merges), partition exhaustion
 * as back-pressure, usage counters, frees from other processes through the
 * remote stack, merging after fragmentation, splitting of a freed large
 * block, and a partition that merges back to its initial shape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "log.h"
#include "ring.h"
#include "shm_test_wait.h"

/* ---- helpers ---- */

/* A mapping laid out like shm_create() does it: the partition array first,
 * then (64-byte aligned, deliberately not page aligned) the block area,
 * partition after partition.  After the block area (past hi) comes a
 * scratch area the tests use to pass things between processes. */
typedef struct {
    uint8_t *map;
    size_t map_len;
    uint8_t *scratch;
    arena_t a;
} fix_t;

static void
fix_setup_x(fix_t *f, uint32_t n_parts, uint64_t part_size, size_t scratch)
{
    uint64_t parts_len = (uint64_t) n_parts * sizeof(arena_part_t);
    uint64_t lo = ((parts_len + 63) & ~(uint64_t) 63) + 64;
    uint64_t hi = lo + n_parts * part_size;

    assert_int_equal(part_size % 64, 0);
    f->map_len = (size_t)((hi + scratch + 4095) & ~4095ull);
    f->map = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(f->map != MAP_FAILED);
    f->scratch = f->map + hi;
    f->a.base = f->map;
    f->a.lo = lo;
    f->a.hi = hi;
    f->a.parts = (arena_part_t *) f->map;
    f->a.n_parts = n_parts;
    for (uint32_t i = 0; i < n_parts; i++) {
        arena_part_init(&f->a, &f->a.parts[i], i, lo + i * part_size,
                        part_size);
        assert_int_equal(f->a.parts[i].magic, ARENA_MAGIC);
        assert_int_equal(f->a.parts[i].index, i);
        assert_int_equal(f->a.parts[i].start, lo + i * part_size);
        assert_int_equal(f->a.parts[i].size, part_size);
    }
}

static void
fix_setup(fix_t *f, uint32_t n_parts, uint64_t part_size)
{
    fix_setup_x(f, n_parts, part_size, 0);
}

static void
fix_teardown(fix_t *f)
{
    assert_int_equal(munmap(f->map, f->map_len), 0);
    memset(f, 0, sizeof(*f));
}

static arena_blk_t *
blk_of(void *data)
{
    return (arena_blk_t *)((uint8_t *) data - ARENA_HDR);
}

static uint32_t *
links_of(arena_blk_t *b)
{
    return (uint32_t *)((uint8_t *) b + ARENA_HDR); /* [0] next, [1] prev */
}

static uint64_t
order_size(int k)
{
    return (uint64_t) 1 << (k + ARENA_MIN_SHIFT);
}

/* The order a block of len user bytes must get: the smallest 64 << k that
 * holds the header too. */
static int
expect_order(size_t len)
{
    int k = 0;

    while (order_size(k) < len + ARENA_HDR) {
        k++;
    }
    return k;
}

/* Byte offset of a block (by its data pointer) from its partition start. */
static uint64_t
rel_of(fix_t *f, uint32_t part, void *data)
{
    return (uint64_t)((uint8_t *) blk_of(data) - f->map) -
           f->a.parts[part].start;
}

static uint64_t
usage_blocks(const arena_t *a)
{
    uint64_t bl, by;

    arena_usage(a, &bl, &by);
    return bl;
}

static uint64_t
usage_bytes(const arena_t *a)
{
    uint64_t bl, by;

    arena_usage(a, &bl, &by);
    return by;
}

static uint8_t
pat(uint64_t seed, size_t i)
{
    return (uint8_t)((seed * 131 + i * 7 + (i >> 8)) ^ (seed >> 3));
}

static void
fill(void *data, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++) {
        ((uint8_t *) data)[i] = pat(seed, i);
    }
}

static int
check(const void *data, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++) {
        if (((const uint8_t *) data)[i] != pat(seed, i)) {
            return 0;
        }
    }
    return 1;
}

/* Cheaper fill/check (8 bytes at a time), position- and seed-dependent. */
static void
fast_fill(uint8_t *d, size_t len, uint64_t seed)
{
    uint64_t v = seed * 0x100000001b3ull;
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t w = v + i;
        memcpy(d + i, &w, 8);
    }
    for (size_t i = len & ~(size_t) 7; i < len; i++) {
        d[i] = (uint8_t)(seed + i);
    }
}

static int
fast_check(const uint8_t *d, size_t len, uint64_t seed)
{
    uint64_t v = seed * 0x100000001b3ull;
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, d + i, 8);
        if (w != v + i) {
            return 0;
        }
    }
    for (size_t i = len & ~(size_t) 7; i < len; i++) {
        if (d[i] != (uint8_t)(seed + i)) {
            return 0;
        }
    }
    return 1;
}

static int
u64_cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *) x, b = *(const uint64_t *) y;

    return a < b ? -1 : a > b;
}

/* Checks what every block handed out must satisfy. */
static void
check_new_block(fix_t *f, uint32_t part, size_t len, arena_h h, void *d)
{
    arena_t *a = &f->a;
    arena_part_t *p = &a->parts[part];
    uint32_t got_len = 0;

    assert_non_null(d);
    arena_blk_t *b = blk_of(d);
    uint64_t byte = (uint64_t)((uint8_t *) b - a->base);
    int k = expect_order(len);

    /* The handle names the block: offset / 64 and the generation. */
    assert_int_equal(byte % 64, 0);
    assert_int_equal(h >> 32, byte / 64);
    assert_int_equal((uint32_t) h, b->gen);
    assert_true(b->gen != 0);
    /* Inside its partition, inside the arena, aligned to its own size
     * relative to the partition start (buddy blocks). */
    assert_true(byte >= p->start);
    assert_true(byte + order_size(k) <= p->start + p->size);
    assert_true(byte >= a->lo && byte + order_size(k) <= a->hi);
    assert_int_equal((byte - p->start) % order_size(k), 0);
    /* Header. */
    assert_int_equal(b->ref, 1);
    assert_int_equal(b->len, len);
    assert_int_equal(b->cls, k);
    assert_int_equal(b->part, part);
    assert_int_equal(b->state, ARENA_USED);
    /* Checked dereference agrees. */
    assert_ptr_equal(arena_get(a, h, &got_len), d);
    assert_int_equal(got_len, len);
    assert_ptr_equal(arena_get(a, h, NULL), d);
}

/* Allocation that may fail (returns 0); a block it returns is checked. */
static arena_h
try_alloc(fix_t *f, uint32_t part, size_t len, void **data)
{
    void *d = NULL;
    arena_h h = arena_alloc(&f->a, &f->a.parts[part], len, &d);

    if (h != 0) {
        check_new_block(f, part, len, h, d);
    }
    *data = d;
    return h;
}

/* Allocation that must succeed. */
static arena_h
must_alloc(fix_t *f, uint32_t part, size_t len, void **data)
{
    arena_h h = try_alloc(f, part, len, data);

    assert_true(h != 0);
    return h;
}

/* Allocation that must fail (back-pressure), counted in alloc_fail. */
static void
must_fail(fix_t *f, uint32_t part, size_t len)
{
    arena_part_t *p = &f->a.parts[part];
    uint64_t fails = p->alloc_fail;
    uint64_t bl = usage_blocks(&f->a), by = usage_bytes(&f->a);
    void *d = NULL;

    assert_true(arena_alloc(&f->a, p, len, &d) == 0);
    assert_int_equal(p->alloc_fail, fails + 1);
    assert_int_equal(usage_blocks(&f->a), bl);
    assert_int_equal(usage_bytes(&f->a), by);
}

/* Blocks on the remote stack of partition part. */
static uint64_t
remote_count(fix_t *f, uint32_t part)
{
    arena_part_t *p = &f->a.parts[part];
    uint64_t n = 0;

    for (uint32_t off = p->remote_free; off != 0;) {
        arena_blk_t *b = (arena_blk_t *)(f->map + (uint64_t) off * 64);
        assert_true(n++ < p->size / 64);
        assert_int_equal(b->state, ARENA_RELEASED);
        off = links_of(b)[0];
    }
    return n;
}

/*
 * The free space of a partition: the blocks on its free lists and on its
 * remote stack.  shape_take() walks both (the caller makes sure nothing
 * runs concurrently) and fails the test on anything a free block cannot
 * be: outside the partition, misaligned for its order, a wrong state,
 * class, reference count or partition in the header, broken back links,
 * two blocks overlapping (or one listed twice), or two free buddies of the
 * same order left unmerged on the lists.
 */
typedef struct {
    uint64_t rel; /* byte offset from the partition start */
    unsigned order;
    int released; /* on the remote stack, not merged yet */
} fb_t;

typedef struct {
    fb_t *v;
    size_t n;
    size_t n_released;
    uint64_t bytes;
    uint64_t per_order[ARENA_CLASSES];
} shape_t;

static int
fb_cmp(const void *x, const void *y)
{
    const fb_t *a = x, *b = y;

    return a->rel < b->rel ? -1 : a->rel > b->rel;
}

static const fb_t *
shape_find(const shape_t *s, uint64_t rel)
{
    fb_t key = {.rel = rel};

    return bsearch(&key, s->v, s->n, sizeof(fb_t), fb_cmp);
}

static void
shape_add(fix_t *f, uint32_t part, shape_t *s, uint32_t off, unsigned k,
          int released, size_t max)
{
    arena_part_t *p = &f->a.parts[part];
    uint64_t byte = (uint64_t) off * 64;
    arena_blk_t *b = (arena_blk_t *)(f->map + byte);

    assert_true(s->n < max); /* also stops a cycle */
    assert_true(byte >= p->start);
    uint64_t rel = byte - p->start;
    assert_true(k < ARENA_CLASSES);
    assert_true(rel + order_size(k) <= p->size);
    assert_int_equal(rel % order_size(k), 0);
    assert_int_equal(b->cls, k);
    assert_int_equal(b->ref, 0);
    assert_int_equal(b->part, part);
    assert_int_equal(b->state, released ? ARENA_RELEASED : ARENA_FREE);
    if (released) {
        assert_true(b->gen != 0); /* bumped at the release, skipping 0 */
    }
    s->v[s->n++] = (fb_t){.rel = rel, .order = k, .released = released};
    s->bytes += order_size(k);
    if (released) {
        s->n_released++;
    } else {
        s->per_order[k]++;
    }
}

static void
shape_take(fix_t *f, uint32_t part, shape_t *s)
{
    arena_part_t *p = &f->a.parts[part];
    size_t max = p->size / 64 + 1;

    memset(s, 0, sizeof(*s));
    s->v = calloc(max, sizeof(fb_t));
    assert_non_null(s->v);
    for (unsigned k = 0; k < ARENA_CLASSES; k++) {
        uint32_t prev = 0;
        for (uint32_t off = p->free_head[k]; off != 0;) {
            arena_blk_t *b = (arena_blk_t *)(f->map + (uint64_t) off * 64);
            shape_add(f, part, s, off, k, 0, max);
            assert_int_equal(links_of(b)[1], prev);
            prev = off;
            off = links_of(b)[0];
        }
    }
    for (uint32_t off = p->remote_free; off != 0;) {
        arena_blk_t *b = (arena_blk_t *)(f->map + (uint64_t) off * 64);
        assert_true(b->cls < ARENA_CLASSES);
        shape_add(f, part, s, off, b->cls, 1, max);
        off = links_of(b)[0];
    }
    qsort(s->v, s->n, sizeof(fb_t), fb_cmp);
    for (size_t i = 1; i < s->n; i++) {
        assert_true(s->v[i - 1].rel + order_size(s->v[i - 1].order) <=
                    s->v[i].rel);
    }
    assert_true(s->bytes <= p->size);
    /* Merged as far as it goes: no free block has a free buddy of its own
     * order on the lists. */
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].released) {
            continue;
        }
        const fb_t *bb = shape_find(s, s->v[i].rel ^ order_size(
                                               s->v[i].order));
        assert_false(bb != NULL && !bb->released &&
                     bb->order == s->v[i].order);
    }
}

static void
shape_free(shape_t *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static void
assert_shape_equal(const shape_t *x, const shape_t *y)
{
    assert_int_equal(x->n, y->n);
    assert_int_equal(x->n_released, y->n_released);
    assert_int_equal(x->bytes, y->bytes);
    for (int k = 0; k < ARENA_CLASSES; k++) {
        assert_int_equal(x->per_order[k], y->per_order[k]);
    }
    for (size_t i = 0; i < x->n; i++) {
        assert_int_equal(x->v[i].rel, y->v[i].rel);
        assert_int_equal(x->v[i].order, y->v[i].order);
        assert_int_equal(x->v[i].released, y->v[i].released);
    }
}

/* Makes the owner take the remote stack and merge it, without handing out
 * a block: an allocation of the partition's whole size can never succeed
 * (the header does not fit), but arena_alloc() takes the stack first. */
static void
drain(fix_t *f, uint32_t part)
{
    arena_part_t *p = &f->a.parts[part];
    void *d = NULL;

    assert_true(arena_alloc(&f->a, p, p->size, &d) == 0);
    assert_int_equal(p->remote_free, 0);
}

/* Everything released: after the owner took the remote stack, the
 * partition is back to exactly the free blocks it had after init. */
static void
assert_merged_back(fix_t *f, uint32_t part, const shape_t *init)
{
    shape_t s;

    drain(f, part);
    shape_take(f, part, &s);
    assert_int_equal(s.n_released, 0);
    assert_int_equal(s.bytes, f->a.parts[part].size);
    assert_shape_equal(&s, init);
    shape_free(&s);
}

/* Handles issued over a test: no (offset, generation) pair may ever be
 * handed out twice, and once released none may dereference again. */
typedef struct {
    arena_h *v;
    size_t n, cap;
} hset_t;

static void
hset_add(hset_t *s, arena_h h)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = realloc(s->v, s->cap * sizeof(arena_h));
        assert_non_null(s->v);
    }
    s->v[s->n++] = h;
}

/* Fails on a handle issued twice; every handle must be stale by now. */
static void
hset_check_unique_stale(fix_t *f, hset_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        assert_null(arena_get(&f->a, s->v[i], NULL));
    }
    qsort(s->v, s->n, sizeof(arena_h), u64_cmp);
    for (size_t i = 1; i < s->n; i++) {
        if (s->v[i] == s->v[i - 1]) {
            fail_msg("handle %016llx (block at off64 %llu, generation %u) "
                     "issued twice", (unsigned long long) s->v[i],
                     (unsigned long long)(s->v[i] >> 32),
                     (uint32_t) s->v[i]);
        }
    }
}

static void
hset_free(hset_t *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* Child exit codes. */
enum {
    CHILD_OK = 0,
    CHILD_GET = 10,   /* a live handle did not dereference */
    CHILD_DATA = 11,  /* a block's contents were not what was written */
    CHILD_STALE = 12, /* a freed block still dereferenced */
    CHILD_USAGE = 13, /* counters wrong after the frees */
    CHILD_STALL = 14  /* nothing came for STALL_MS: the parent is stuck */
};

static void
wait_child_ok(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
        fail_msg("child killed by signal %d", WTERMSIG(status));
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), CHILD_OK);
}

/* ---- one process ---- */

/* After init a partition is one free block per set bit of size / 64:
 * the largest aligned blocks that fit, larger ones first. */
static void
check_init_shape(fix_t *f, uint32_t part)
{
    arena_part_t *p = &f->a.parts[part];
    uint64_t units = p->size / 64, at = 0;
    shape_t s;

    shape_take(f, part, &s);
    assert_int_equal(s.n_released, 0);
    assert_int_equal(s.bytes, p->size);
    assert_int_equal(s.n, (size_t) __builtin_popcountll(units));
    for (int k = 0; k < ARENA_CLASSES; k++) {
        assert_int_equal(s.per_order[k], (units >> k) & 1);
    }
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.v[i].rel, at);
        if (i > 0) {
            assert_true(s.v[i].order < s.v[i - 1].order);
        }
        at += order_size(s.v[i].order);
    }
    assert_int_equal(at, p->size);
    assert_int_equal(p->remote_free, 0);
    assert_int_equal(p->alloc_fail, 0);
    assert_int_equal(p->blocks_used, 0);
    assert_int_equal(p->bytes_used, 0);
    shape_free(&s);
}

static void
test_part_init(void **state)
{
    static const uint64_t sizes[] = {
        64, 128, 192, 320, 4096, 4096 + 64, 65536 - 64, 65536,
        (1 << 18) + (1 << 14) + (1 << 9) + 192, 1 << 20,
    };
    fix_t f;
    void *d;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        fix_setup(&f, 3, sizes[i]);
        for (uint32_t k = 0; k < 3; k++) {
            check_init_shape(&f, k);
        }
        /* The first block of the largest order there is sits at the
         * partition start. */
        int top = 63 - __builtin_clzll(sizes[i] / 64);
        arena_h h = must_alloc(&f, 1, order_size(top) - ARENA_HDR, &d);
        assert_int_equal(rel_of(&f, 1, d), 0);
        arena_release(&f.a, h);
        fix_teardown(&f);
    }

    /* A size that is not a multiple of 64 is rounded down: 1000 -> 960 =
     * 512 + 256 + 128 + 64. */
    fix_setup(&f, 2, 1024);
    arena_part_init(&f.a, &f.a.parts[0], 0, f.a.parts[0].start, 1000);
    assert_int_equal(f.a.parts[0].size, 960);
    check_init_shape(&f, 0);
    check_init_shape(&f, 1); /* the neighbour was not written */
    must_fail(&f, 0, 1024 - ARENA_HDR);
    arena_h h = must_alloc(&f, 0, 512 - ARENA_HDR, &d);
    assert_int_equal(rel_of(&f, 0, d), 0);
    arena_release(&f.a, h);

    /* Less than one block: nothing on the lists, every request refused. */
    arena_part_init(&f.a, &f.a.parts[0], 0, f.a.parts[0].start, 63);
    assert_int_equal(f.a.parts[0].size, 0);
    for (int k = 0; k < ARENA_CLASSES; k++) {
        assert_int_equal(f.a.parts[0].free_head[k], 0);
    }
    must_fail(&f, 0, 0);
    check_init_shape(&f, 1);
    fix_teardown(&f);
}

static void
test_alloc_distinct(void **state)
{
    enum { N = 600 };
    fix_t f;
    arena_h h[N];
    void *d[N];
    size_t len[N];
    uint64_t want_bytes = 0;
    shape_t init0, init1, s;

    fix_setup(&f, 2, 1 << 20);
    shape_take(&f, 0, &init0);
    shape_take(&f, 1, &init1);
    srand(7);
    for (int i = 0; i < N; i++) {
        /* Mostly small, some up to a few KiB, a few exactly at order
         * edges. */
        switch (i % 6) {
        case 0: len[i] = 0; break;
        case 1: len[i] = 48; break;
        case 2: len[i] = 49; break;
        case 3: len[i] = (size_t)(rand() % 4000); break;
        case 4: len[i] = (size_t)(rand() % 200); break;
        default: len[i] = order_size(rand() % 6) - ARENA_HDR; break;
        }
        h[i] = must_alloc(&f, 0, len[i], &d[i]);
        fill(d[i], len[i], (uint64_t) i);
        want_bytes += order_size(expect_order(len[i]));
    }
    /* Handles are distinct; whole blocks (header + order size) are
     * pairwise disjoint. */
    for (int i = 0; i < N; i++) {
        uint8_t *bi = (uint8_t *) blk_of(d[i]);
        uint64_t si = order_size(expect_order(len[i]));
        for (int j = i + 1; j < N; j++) {
            uint8_t *bj = (uint8_t *) blk_of(d[j]);
            uint64_t sj = order_size(expect_order(len[j]));
            assert_true(h[i] != h[j]);
            assert_true(bi + si <= bj || bj + sj <= bi);
        }
    }
    /* Writing every block left every other one intact. */
    for (int i = 0; i < N; i++) {
        uint32_t l;
        assert_ptr_equal(arena_get(&f.a, h[i], &l), d[i]);
        assert_int_equal(l, len[i]);
        assert_true(check(d[i], len[i], (uint64_t) i));
    }
    assert_int_equal(usage_blocks(&f.a), N);
    assert_int_equal(usage_bytes(&f.a), want_bytes);
    /* The free blocks are exactly the rest of the partition. */
    shape_take(&f, 0, &s);
    assert_int_equal(s.bytes + want_bytes, f.a.parts[0].size);
    shape_free(&s);
    /* Nothing went to partition 1. */
    assert_int_equal(f.a.parts[1].blocks_used, 0);
    shape_take(&f, 1, &s);
    assert_shape_equal(&s, &init1);
    shape_free(&s);

    for (int i = 0; i < N; i++) {
        arena_release(&f.a, h[i]);
    }
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    assert_merged_back(&f, 0, &init0);
    shape_free(&init0);
    shape_free(&init1);
    fix_teardown(&f);
}

static void
test_orders(void **state)
{
    fix_t f;
    void *d;
    shape_t init, s1, s2;

    fix_setup(&f, 1, 1 << 20);
    arena_part_t *p = &f.a.parts[0];
    shape_take(&f, 0, &init);
    static const struct {
        size_t len;
        int order;
    } cases[] = {
        {0, 0},       {1, 0},       {48, 0},      {49, 1},
        {112, 1},     {113, 2},     {240, 2},     {241, 3},
        {1000, 4},    {4080, 6},    {4081, 7},    {65520, 10},
        {65521, 11},  {100000, 11}, {524272, 13}, {524273, 14},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t before = usage_bytes(&f.a);
        arena_h h = must_alloc(&f, 0, cases[i].len, &d);
        assert_int_equal(blk_of(d)->cls, cases[i].order);
        assert_int_equal(usage_bytes(&f.a) - before,
                         order_size(cases[i].order));
        /* Every block is aligned to its own size relative to the partition
         * start, whatever its order. */
        assert_int_equal(rel_of(&f, 0, d) % order_size(cases[i].order), 0);
        /* The whole length is usable. */
        memset(d, 0xab, cases[i].len);
        arena_release(&f.a, h);
    }
    assert_int_equal(usage_bytes(&f.a), 0);

    /* Too big for any order: refused, counted, nothing used, the free
     * lists untouched. */
    drain(&f, 0);
    shape_take(&f, 0, &s1);
    uint64_t fails = p->alloc_fail;
    d = (void *) 1;
    size_t max = (size_t) order_size(ARENA_CLASSES - 1) - ARENA_HDR;
    assert_true(arena_alloc(&f.a, p, max + 1, &d) == 0);
    assert_true(arena_alloc(&f.a, p, (size_t) UINT32_MAX + 1, &d) == 0);
    assert_true(arena_alloc(&f.a, p, SIZE_MAX, &d) == 0);
    assert_true(arena_alloc(&f.a, p, SIZE_MAX - 8, &d) == 0);
    assert_int_equal(p->alloc_fail, fails + 4);
    assert_int_equal(usage_blocks(&f.a), 0);
    /* The largest order exists but does not fit this 1 MiB partition. */
    assert_true(arena_alloc(&f.a, p, max, &d) == 0);
    assert_int_equal(p->alloc_fail, fails + 5);
    /* Nor does one byte more than the partition minus the header. */
    must_fail(&f, 0, (1 << 20) - ARENA_HDR + 1);
    shape_take(&f, 0, &s2);
    assert_shape_equal(&s1, &s2);
    shape_free(&s1);
    shape_free(&s2);
    /* The whole partition as one block does fit: everything above merged
     * back into it. */
    arena_h h = must_alloc(&f, 0, (1 << 20) - ARENA_HDR, &d);
    assert_int_equal(blk_of(d)->cls, 14);
    assert_int_equal(rel_of(&f, 0, d), 0);
    assert_int_equal(usage_bytes(&f.a), 1 << 20);
    must_fail(&f, 0, 0);
    arena_release(&f.a, h);
    assert_merged_back(&f, 0, &init);
    shape_free(&init);
    fix_teardown(&f);
}

static void
test_refcount(void **state)
{
    fix_t f;
    void *d;
    uint32_t l;
    shape_t init;

    fix_setup(&f, 1, 64 * 1024);
    shape_take(&f, 0, &init);
    arena_h h = must_alloc(&f, 0, 100, &d);
    fill(d, 100, 1);
    arena_blk_t *b = blk_of(d);

    arena_ref_add(&f.a, h, 0);
    assert_int_equal(b->ref, 1);
    arena_ref_add(&f.a, h, 2);
    assert_int_equal(b->ref, 3);
    arena_ref_add(&f.a, h, 1);
    assert_int_equal(b->ref, 4);

    for (int i = 3; i >= 1; i--) {
        arena_release(&f.a, h);
        assert_int_equal(b->ref, (uint32_t) i);
        assert_ptr_equal(arena_get(&f.a, h, &l), d);
        assert_int_equal(l, 100);
        assert_true(check(d, 100, 1));
        assert_int_equal(b->state, ARENA_USED);
        assert_int_equal(usage_blocks(&f.a), 1);
        assert_int_equal(usage_bytes(&f.a), 128);
        assert_int_equal(remote_count(&f, 0), 0);
    }
    /* The last reference frees: the block goes on the remote stack. */
    arena_release(&f.a, h);
    assert_int_equal(b->ref, 0);
    assert_int_equal(b->state, ARENA_RELEASED);
    assert_null(arena_get(&f.a, h, &l));
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    assert_int_equal(remote_count(&f, 0), 1);
    assert_ptr_equal(f.map + (uint64_t) f.a.parts[0].remote_free * 64,
                     (uint8_t *) b);

    /* A release or a reference on a freed block changes nothing, and it is
     * not pushed twice. */
    arena_release(&f.a, h);
    arena_ref_add(&f.a, h, 5);
    arena_release(&f.a, h);
    assert_int_equal(b->ref, 0);
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    assert_int_equal(remote_count(&f, 0), 1);

    /* Nor once it has been merged into the free lists. */
    drain(&f, 0);
    arena_release(&f.a, h);
    arena_ref_add(&f.a, h, 5);
    assert_int_equal(remote_count(&f, 0), 0);
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_merged_back(&f, 0, &init);
    shape_free(&init);
    fix_teardown(&f);
}

static void
test_stale_and_reuse(void **state)
{
    fix_t f;
    void *d1, *d2, *d3, *ds[4];
    arena_h hs[4];
    shape_t init;

    /* A partition of a single 256-byte block: whatever is allocated next
     * has to reuse the space just freed. */
    fix_setup(&f, 1, 256);
    shape_take(&f, 0, &init);

    arena_h h1 = must_alloc(&f, 0, 200, &d1);
    uint32_t gen1 = (uint32_t) h1;
    assert_int_equal(rel_of(&f, 0, d1), 0);
    must_fail(&f, 0, 0);
    arena_release(&f.a, h1);
    assert_null(arena_get(&f.a, h1, NULL));
    /* The generation moved on at the free. */
    assert_true(blk_of(d1)->gen != gen1);

    /* The next allocation of that order reuses it with a new
     * generation. */
    arena_h h2 = must_alloc(&f, 0, 150, &d2);
    assert_ptr_equal(d2, d1);
    assert_int_equal(h2 >> 32, h1 >> 32);
    assert_true((uint32_t) h2 != gen1);
    assert_null(arena_get(&f.a, h1, NULL));
    assert_ptr_equal(arena_get(&f.a, h2, NULL), d2);
    fill(d2, 150, 2);

    /* The stale handle cannot touch the new owner's block: releases and
     * references through it are refused. */
    arena_release(&f.a, h1);
    arena_release(&f.a, h1);
    arena_ref_add(&f.a, h1, 3);
    assert_int_equal(blk_of(d2)->ref, 1);
    assert_ptr_equal(arena_get(&f.a, h2, NULL), d2);
    assert_true(check(d2, 150, 2));
    assert_int_equal(usage_blocks(&f.a), 1);
    assert_int_equal(remote_count(&f, 0), 0);

    /* Freed, then split: four 64-byte blocks fill the same space.  One of
     * them starts where h1 and h2 pointed, with a generation neither
     * had; those stay stale although a live block now starts there. */
    arena_release(&f.a, h2);
    int at0 = -1;
    for (int i = 0; i < 4; i++) {
        hs[i] = must_alloc(&f, 0, 10, &ds[i]);
        fill(ds[i], 10, (uint64_t) i + 10);
        if (rel_of(&f, 0, ds[i]) == 0) {
            at0 = i;
        }
    }
    must_fail(&f, 0, 0);
    assert_true(at0 >= 0);
    assert_int_equal(hs[at0] >> 32, h1 >> 32);
    assert_true((uint32_t) hs[at0] != (uint32_t) h1);
    assert_true((uint32_t) hs[at0] != (uint32_t) h2);
    assert_null(arena_get(&f.a, h1, NULL));
    assert_null(arena_get(&f.a, h2, NULL));
    arena_release(&f.a, h1);
    arena_release(&f.a, h2);
    arena_ref_add(&f.a, h2, 2);
    assert_int_equal(blk_of(ds[at0])->ref, 1);
    for (int i = 0; i < 4; i++) {
        assert_true(check(ds[i], 10, (uint64_t) i + 10));
        arena_release(&f.a, hs[i]);
    }
    assert_int_equal(usage_blocks(&f.a), 0);

    /* Merged back into one block: again a generation no handle to that
     * offset had. */
    arena_h h3 = must_alloc(&f, 0, 129, &d3);
    assert_ptr_equal(d3, d1);
    assert_true((uint32_t) h3 != (uint32_t) h1);
    assert_true((uint32_t) h3 != (uint32_t) h2);
    assert_true((uint32_t) h3 != (uint32_t) hs[at0]);
    assert_null(arena_get(&f.a, h1, NULL));
    assert_null(arena_get(&f.a, h2, NULL));
    assert_null(arena_get(&f.a, hs[at0], NULL));
    arena_release(&f.a, h3);

    /* The generation skips 0 when it wraps: generations come from the
     * partition's counter at allocation, and a release bumps the block's
     * own (so the handle goes stale at once). */
    f.a.parts[0].gen_next = UINT32_MAX;
    arena_h hw = must_alloc(&f, 0, 200, &d1);
    assert_int_equal((uint32_t) hw, UINT32_MAX);
    assert_ptr_equal(arena_get(&f.a, hw, NULL), d1);
    arena_release(&f.a, hw);
    assert_null(arena_get(&f.a, hw, NULL));
    assert_true(blk_of(d1)->gen != 0 && blk_of(d1)->gen != UINT32_MAX);
    arena_h hw2 = must_alloc(&f, 0, 200, &d2);
    assert_ptr_equal(d2, d1);
    assert_int_equal((uint32_t) hw2, 1);
    assert_null(arena_get(&f.a, hw, NULL));
    assert_null(arena_get(&f.a, arena_handle(hw2 >> 32, 0), NULL));
    arena_release(&f.a, hw2);
    arena_h hw3 = must_alloc(&f, 0, 200, &d2);
    assert_int_equal((uint32_t) hw3, 2);
    assert_null(arena_get(&f.a, hw2, NULL));
    arena_release(&f.a, hw3);
    /* The same through the release path alone: a block whose generation
     * is UINT32_MAX is not left with 0 when freed. */
    hw = must_alloc(&f, 0, 200, &d1);
    blk_of(d1)->gen = UINT32_MAX;
    hw = arena_handle(hw >> 32, UINT32_MAX);
    assert_ptr_equal(arena_get(&f.a, hw, NULL), d1);
    arena_release(&f.a, hw);
    assert_null(arena_get(&f.a, hw, NULL));
    assert_null(arena_get(&f.a, arena_handle(hw >> 32, 0), NULL));
    assert_true(blk_of(d1)->gen != 0);
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_merged_back(&f, 0, &init);
    shape_free(&init);
    fix_teardown(&f);

    /* Many frees of one order: a full partition freed and filled again
     * reuses every block, each with a new generation, and every old
     * handle is stale. */
    enum { K = 32 };
    arena_h ho[K], hn[K];
    void *dd[K];
    fix_setup(&f, 1, K * 512);
    shape_take(&f, 0, &init);
    for (int i = 0; i < K; i++) {
        ho[i] = must_alloc(&f, 0, 300, &dd[i]);
    }
    must_fail(&f, 0, 0);
    for (int i = 0; i < K; i++) {
        arena_release(&f.a, ho[i]);
    }
    for (int i = 0; i < K; i++) {
        hn[i] = must_alloc(&f, 0, 300, &dd[i]);
        int found = -1;
        for (int j = 0; j < K; j++) {
            if (hn[i] >> 32 == ho[j] >> 32) {
                assert_int_equal(found, -1);
                found = j;
            }
        }
        assert_true(found >= 0);
        assert_true((uint32_t) hn[i] != (uint32_t) ho[found]);
        for (int j = 0; j < i; j++) {
            assert_true(hn[j] >> 32 != hn[i] >> 32);
        }
    }
    must_fail(&f, 0, 0);
    for (int i = 0; i < K; i++) {
        assert_null(arena_get(&f.a, ho[i], NULL));
        arena_release(&f.a, ho[i]); /* refused */
    }
    assert_int_equal(usage_blocks(&f.a), K);
    for (int i = 0; i < K; i++) {
        arena_release(&f.a, hn[i]);
    }
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_merged_back(&f, 0, &init);
    shape_free(&init);
    fix_teardown(&f);
}

/*
 * Generations across merges: the block at an offset that is absorbed into
 * a merged block and split off again later must not get a generation that
 * an earlier handle to that offset had -- whichever half of the buddy
 * pair is released last, and whichever half had the higher generation.
 */
static void
test_generation_across_merge(void **state)
{
    for (int variant = 0; variant < 4; variant++) {
        fix_t f;
        hset_t seen = {0};
        void *da, *db, *dc;
        shape_t init;

        fix_setup(&f, 1, 128);
        shape_take(&f, 0, &init);
        arena_h ha = must_alloc(&f, 0, 48, &da);
        arena_h hb = must_alloc(&f, 0, 48, &db);
        hset_add(&seen, ha);
        hset_add(&seen, hb);
        /* Reuse one half many times so its generation runs ahead of its
         * buddy's: the upper half in variants 0 and 1, the lower one in
         * 2 and 3. */
        arena_h *busy = variant < 2 ? &hb : &ha;
        void **dbusy = variant < 2 ? &db : &da;
        if (rel_of(&f, 0, *dbusy) != (variant < 2 ? 64u : 0u)) {
            /* Allocation order is not the point here: pick by address. */
            arena_h t = ha;
            ha = hb;
            hb = t;
            void *td = da;
            da = db;
            db = td;
        }
        for (int i = 0; i < 6; i++) {
            uint64_t off = *busy >> 32;
            arena_release(&f.a, *busy);
            *busy = must_alloc(&f, 0, 48, dbusy);
            assert_int_equal(*busy >> 32, off); /* the only room */
            hset_add(&seen, *busy);
        }
        /* Release both, in either order, then merge and split again. */
        if (variant % 2 == 0) {
            arena_release(&f.a, ha);
            arena_release(&f.a, hb);
        } else {
            arena_release(&f.a, hb);
            arena_release(&f.a, ha);
        }
        arena_h hc = must_alloc(&f, 0, 100, &dc);
        hset_add(&seen, hc);
        arena_release(&f.a, hc);
        for (int round = 0; round < 3; round++) {
            arena_h hd = must_alloc(&f, 0, 48, &da);
            arena_h he = must_alloc(&f, 0, 48, &db);
            hset_add(&seen, hd);
            hset_add(&seen, he);
            /* No earlier handle reaches the new blocks. */
            for (size_t i = 0; i + 2 < seen.n; i++) {
                assert_null(arena_get(&f.a, seen.v[i], NULL));
            }
            arena_release(&f.a, round % 2 ? hd : he);
            arena_release(&f.a, round % 2 ? he : hd);
        }
        assert_int_equal(usage_blocks(&f.a), 0);
        hset_check_unique_stale(&f, &seen);
        assert_merged_back(&f, 0, &init);
        hset_free(&seen);
        shape_free(&init);
        fix_teardown(&f);
    }
}

static void
test_forged(void **state)
{
    fix_t f;
    void *d;
    shape_t s;

    fix_setup(&f, 2, 64 * 1024);
    arena_t *a = &f.a;
    arena_h h = must_alloc(&f, 0, 400, &d); /* order 3: 512 bytes */
    uint64_t off = h >> 32;
    uint32_t gen = (uint32_t) h;
    memset(d, 0, 400);

    /* The null handle. */
    assert_null(arena_get(a, 0, NULL));
    /* Outside the block area: below lo (in the partition array), at and
     * past hi, the largest offset. */
    assert_null(arena_get(a, arena_handle(0, 1), NULL));
    assert_null(arena_get(a, arena_handle(0, gen), NULL));
    assert_null(arena_get(a, arena_handle(a->lo / 64 - 1, gen), NULL));
    assert_null(arena_get(a, arena_handle(a->hi / 64, gen), NULL));
    assert_null(arena_get(a, arena_handle(a->hi / 64 + 1, gen), NULL));
    assert_null(arena_get(a, arena_handle(UINT32_MAX, gen), NULL));
    assert_null(arena_get(a, arena_handle(0xffffffffffull, gen), NULL));
    assert_null(arena_get(a, ~(arena_h) 0, NULL));
    /* Right place, wrong generation. */
    assert_null(arena_get(a, arena_handle(off, gen + 1), NULL));
    assert_null(arena_get(a, arena_handle(off, gen - 1), NULL));
    assert_null(arena_get(a, arena_handle(off, 0), NULL));
    /* Not at a block start: inside the block (zeroed user data, then user
     * data full of bytes), with the block's own generation. */
    for (uint64_t k = 1; k < 8; k++) {
        assert_null(arena_get(a, arena_handle(off + k, gen), NULL));
        assert_null(arena_get(a, arena_handle(off + k, 1), NULL));
    }
    memset(d, 0x5a, 400);
    for (uint64_t k = 1; k < 8; k++) {
        assert_null(arena_get(a, arena_handle(off + k, gen), NULL));
        assert_null(arena_get(a, arena_handle(off + k, 0x5a5a5a5a), NULL));
    }
    /* Free blocks (the halves split off by the allocation above, and all
     * of partition 1) have well-formed headers with a generation: a
     * handle with exactly that generation still does not dereference,
     * nor does one inside them. */
    for (uint32_t part = 0; part < 2; part++) {
        shape_take(&f, part, &s);
        assert_true(s.n > 0);
        for (size_t i = 0; i < s.n; i++) {
            uint64_t o = (a->parts[part].start + s.v[i].rel) / 64;
            uint32_t g = ((arena_blk_t *)(f.map + o * 64))->gen;
            assert_null(arena_get(a, arena_handle(o, g), NULL));
            assert_null(arena_get(a, arena_handle(o, 1), NULL));
            assert_null(arena_get(a, arena_handle(o + 1, g), NULL));
            arena_release(a, arena_handle(o, g));
            arena_ref_add(a, arena_handle(o, g), 1);
            assert_int_equal(((arena_blk_t *)(f.map + o * 64))->ref, 0);
            assert_int_equal(((arena_blk_t *)(f.map + o * 64))->state,
                             ARENA_FREE);
        }
        shape_free(&s);
        assert_int_equal(a->parts[part].remote_free, 0);
    }
    assert_null(arena_get(a, arena_handle(a->parts[1].start / 64, 1), NULL));
    assert_null(arena_get(a, arena_handle(a->hi / 64 - 1, 1), NULL));

    /* Headers that look alive but cannot be blocks: order out of range,
     * partition out of range or not the one the block lies in, block
     * running past the arena's end or misaligned for its order in its
     * partition, length larger than the order, not in use. */
    arena_blk_t *fake = (arena_blk_t *)(f.map + a->hi - 64);
    arena_h fh = arena_handle((a->hi - 64) / 64, 9);
    *fake = (arena_blk_t){.gen = 9, .ref = 1, .len = 10, .cls = 0, .part = 1,
                          .state = ARENA_USED};
    assert_non_null(arena_get(a, fh, NULL)); /* the control: well formed */
    fake->cls = ARENA_CLASSES;
    assert_null(arena_get(a, fh, NULL));
    fake->cls = 0xff;
    assert_null(arena_get(a, fh, NULL));
    fake->cls = 1; /* 128 bytes from hi - 64 */
    assert_null(arena_get(a, fh, NULL));
    fake->cls = 0;
    fake->part = 2;
    assert_null(arena_get(a, fh, NULL));
    fake->part = 0xff;
    assert_null(arena_get(a, fh, NULL));
    fake->part = 0; /* lies in partition 1 */
    assert_null(arena_get(a, fh, NULL));
    fake->part = 1;
    fake->len = 64 - ARENA_HDR + 1;
    assert_null(arena_get(a, fh, NULL));
    fake->len = UINT32_MAX;
    assert_null(arena_get(a, fh, NULL));
    fake->len = 10;
    fake->ref = 0;
    assert_null(arena_get(a, fh, NULL));
    fake->ref = 1;
    static const uint8_t bad_states[] = {0, ARENA_RELEASED, ARENA_FREE, 0xff};
    for (size_t i = 0; i < sizeof(bad_states); i++) {
        fake->state = bad_states[i];
        assert_null(arena_get(a, fh, NULL));
    }
    fake->state = ARENA_USED;
    assert_non_null(arena_get(a, fh, NULL));
    memset(fake, 0, sizeof(*fake));

    /* Misaligned for its order: 64 bytes into partition 1, fine as an
     * order-0 block, not as order 1 or more. */
    uint64_t mo = a->parts[1].start + 64;
    fake = (arena_blk_t *)(f.map + mo);
    fh = arena_handle(mo / 64, 7);
    *fake = (arena_blk_t){.gen = 7, .ref = 1, .len = 10, .cls = 0, .part = 1,
                          .state = ARENA_USED};
    assert_non_null(arena_get(a, fh, NULL)); /* control */
    for (uint8_t k = 1; k < 8; k++) {
        fake->cls = k;
        assert_null(arena_get(a, fh, NULL));
    }
    memset(fake, 0, sizeof(*fake));

    /* A block released but not merged yet (on the remote stack): neither
     * its old nor its new generation dereferences. */
    void *dr;
    arena_h hr = must_alloc(&f, 0, 100, &dr);
    arena_release(a, hr);
    assert_int_equal(remote_count(&f, 0), 1);
    assert_null(arena_get(a, hr, NULL));
    arena_h hr1 = arena_handle(hr >> 32, blk_of(dr)->gen);
    assert_null(arena_get(a, hr1, NULL));
    arena_release(a, hr1);
    arena_ref_add(a, hr1, 1);
    assert_int_equal(blk_of(dr)->ref, 0);
    assert_int_equal(remote_count(&f, 0), 1);
    drain(&f, 0);

    /* Forged handles never reach a block: the real one is untouched and
     * nothing was counted or pushed. */
    uint64_t bl = usage_blocks(a), by = usage_bytes(a);
    arena_release(a, 0);
    arena_release(a, arena_handle(off, gen + 1));
    arena_release(a, arena_handle(off + 1, gen));
    arena_release(a, arena_handle(a->hi / 64, gen));
    arena_ref_add(a, arena_handle(off, gen + 1), 7);
    arena_ref_add(a, arena_handle(UINT32_MAX, 1), 7);
    assert_int_equal(blk_of(d)->ref, 1);
    assert_int_equal(blk_of(d)->gen, gen);
    assert_int_equal(usage_blocks(a), bl);
    assert_int_equal(usage_bytes(a), by);
    assert_int_equal(a->parts[0].remote_free, 0);
    assert_int_equal(a->parts[1].remote_free, 0);
    assert_ptr_equal(arena_get(a, h, NULL), d);
    arena_release(a, h);
    assert_int_equal(usage_blocks(a), 0);
    fix_teardown(&f);
}

/* The block i of d[] (n blocks) that starts rel bytes into partition 0. */
static int
block_at(fix_t *f, void **d, int n, uint64_t rel)
{
    for (int i = 0; i < n; i++) {
        if (d[i] != NULL && rel_of(f, 0, d[i]) == rel) {
            return i;
        }
    }
    fail_msg("no block at %llu", (unsigned long long) rel);
    return -1;
}

static void
test_exhaustion(void **state)
{
    enum { PART = 4096, PER = PART / 64 };
    fix_t f;
    arena_h h[PER];
    void *d[PER], *x;
    shape_t init;

    fix_setup(&f, 2, PART);
    arena_part_t *p0 = &f.a.parts[0];
    shape_take(&f, 0, &init);

    for (int i = 0; i < PER; i++) {
        h[i] = must_alloc(&f, 0, 48, &d[i]);
        fill(d[i], 48, (uint64_t) i);
    }
    /* Full: 0 (back-pressure), counted, again and again, nothing spoiled;
     * no free block is left anywhere. */
    uint64_t fails = p0->alloc_fail;
    for (int k = 0; k < 3; k++) {
        x = NULL;
        assert_true(arena_alloc(&f.a, p0, 1, &x) == 0);
        assert_true(arena_alloc(&f.a, p0, 200, &x) == 0);
    }
    assert_int_equal(p0->alloc_fail, fails + 6);
    for (int k = 0; k < ARENA_CLASSES; k++) {
        assert_int_equal(p0->free_head[k], 0);
    }
    assert_int_equal(p0->remote_free, 0);
    assert_int_equal(usage_blocks(&f.a), PER);
    assert_int_equal(usage_bytes(&f.a), PART);
    for (int i = 0; i < PER; i++) {
        assert_true(check(d[i], 48, (uint64_t) i));
    }
    /* A block larger than the partition never fits. */
    must_fail(&f, 1, PART);
    must_fail(&f, 1, PART - ARENA_HDR + 1);

    /* The other partition is not affected. */
    void *y;
    arena_h hy = must_alloc(&f, 1, 48, &y);
    assert_true((uint8_t *) y > (uint8_t *) d[PER - 1]);

    /* One free makes room for exactly one block of its order, in its
     * place, and nothing bigger. */
    int i17 = block_at(&f, d, PER, 17 * 64);
    arena_release(&f.a, h[i17]);
    must_fail(&f, 0, 49);
    arena_h hn = must_alloc(&f, 0, 30, &x);
    assert_ptr_equal(x, d[i17]);
    must_fail(&f, 0, 30);
    h[i17] = hn;
    fill(d[i17], 30, 17);

    /* Two free buddies merge into a block of the next order... */
    int i20 = block_at(&f, d, PER, 20 * 64);
    int i21 = block_at(&f, d, PER, 21 * 64);
    arena_release(&f.a, h[i21]);
    arena_release(&f.a, h[i20]);
    hn = must_alloc(&f, 0, 100, &x);
    assert_ptr_equal(x, d[i20]);
    must_fail(&f, 0, 0);
    arena_release(&f.a, hn);
    h[i20] = must_alloc(&f, 0, 48, &d[i20]);
    h[i21] = must_alloc(&f, 0, 48, &d[i21]);
    assert_int_equal(rel_of(&f, 0, d[i20]) ^ rel_of(&f, 0, d[i21]), 64);
    /* ...two free neighbours that are not buddies (blocks are aligned to
     * their size) do not: 128 bytes free, but no 128-byte block. */
    int i33 = block_at(&f, d, PER, 33 * 64);
    int i34 = block_at(&f, d, PER, 34 * 64);
    arena_release(&f.a, h[i33]);
    arena_release(&f.a, h[i34]);
    must_fail(&f, 0, 49);
    void *x2;
    h[i33] = must_alloc(&f, 0, 48, &x);
    h[i34] = must_alloc(&f, 0, 48, &x2);
    assert_true((x == d[i33] && x2 == d[i34]) ||
                (x == d[i34] && x2 == d[i33]));
    d[i33] = x;
    d[i34] = x2;
    must_fail(&f, 0, 0);

    /* Free everything: it merges back into one block that can be taken
     * whole, and then all of it again in small blocks. */
    for (int i = 0; i < PER; i++) {
        arena_release(&f.a, h[i]);
    }
    assert_int_equal(p0->blocks_used, 0);
    assert_merged_back(&f, 0, &init);
    hn = must_alloc(&f, 0, PART - ARENA_HDR, &x);
    assert_int_equal(rel_of(&f, 0, x), 0);
    must_fail(&f, 0, 0);
    arena_release(&f.a, hn);
    for (int i = 0; i < PER; i++) {
        h[i] = must_alloc(&f, 0, 48, &d[i]);
    }
    must_fail(&f, 0, 48);
    for (int i = 0; i < PER; i++) {
        arena_release(&f.a, h[i]);
    }
    arena_release(&f.a, hy);
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    assert_merged_back(&f, 0, &init);
    shape_free(&init);
    fix_teardown(&f);
}

static void
test_usage(void **state)
{
    fix_t f;
    void *d;
    uint64_t bl = 1, by = 1;

    fix_setup(&f, 3, 64 * 1024);
    arena_usage(&f.a, &bl, &by);
    assert_int_equal(bl, 0);
    assert_int_equal(by, 0);

    arena_h a0 = must_alloc(&f, 0, 10, &d);   /* 64 */
    arena_h a1 = must_alloc(&f, 0, 100, &d);  /* 128 */
    arena_h b0 = must_alloc(&f, 1, 1000, &d); /* 1024 */
    arena_h c0 = must_alloc(&f, 2, 5000, &d); /* 8192 */
    arena_h c1 = must_alloc(&f, 2, 0, &d);    /* 64 */
    arena_usage(&f.a, &bl, &by);
    assert_int_equal(bl, 5);
    assert_int_equal(by, 64 + 128 + 1024 + 8192 + 64);
    assert_int_equal(f.a.parts[0].blocks_used, 2);
    assert_int_equal(f.a.parts[0].bytes_used, 192);
    assert_int_equal(f.a.parts[1].blocks_used, 1);
    assert_int_equal(f.a.parts[2].bytes_used, 8256);

    /* Extra references are not extra blocks. */
    arena_ref_add(&f.a, c0, 3);
    arena_usage(&f.a, &bl, &by);
    assert_int_equal(bl, 5);
    arena_release(&f.a, c0);
    arena_usage(&f.a, &bl, &by);
    assert_int_equal(bl, 5);

    arena_release(&f.a, a1);
    arena_release(&f.a, b0);
    arena_usage(&f.a, &bl, &by);
    assert_int_equal(bl, 3);
    assert_int_equal(by, 64 + 8192 + 64);
    /* Merging the freed blocks (and splitting for a new one) does not
     * change what is counted as used. */
    drain(&f, 0);
    drain(&f, 1);
    arena_usage(&f.a, &bl, &by);
    assert_int_equal(bl, 3);
    assert_int_equal(by, 64 + 8192 + 64);
    arena_h a2 = must_alloc(&f, 0, 3000, &d); /* 4096 */
    arena_usage(&f.a, &bl, &by);
    assert_int_equal(bl, 4);
    assert_int_equal(by, 64 + 8192 + 64 + 4096);
    arena_release(&f.a, a2);
    arena_release(&f.a, c0);
    arena_release(&f.a, c0);
    arena_release(&f.a, c0);
    arena_release(&f.a, c0); /* stale by now: ignored */
    arena_release(&f.a, c1);
    arena_release(&f.a, a0);
    arena_usage(&f.a, &bl, &by);
    assert_int_equal(bl, 0);
    assert_int_equal(by, 0);
    fix_teardown(&f);
}

/* ---- two processes ---- */

#define STALL_MS 10000u

static void
test_cross_process_free(void **state)
{
    enum { N = 500 };
    fix_t f;
    void *d[N];
    size_t len[N];
    arena_h old[N];
    shape_t init, s;

    /* The handles travel through the shared mapping (the scratch area
     * after the block area). */
    fix_setup_x(&f, 2, 1 << 20, N * sizeof(arena_h));
    arena_h *hs = (arena_h *) f.scratch;
    shape_take(&f, 0, &init);

    for (int i = 0; i < N; i++) {
        len[i] = (size_t)((i * 37) % 700);
        hs[i] = must_alloc(&f, 0, len[i], &d[i]);
        fill(d[i], len[i], (uint64_t) i + 1000);
    }
    uint64_t bytes = usage_bytes(&f.a);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30);
        for (int i = 0; i < N; i++) {
            uint32_t l;
            void *x = arena_get(&f.a, hs[i], &l);
            if (x == NULL || l != len[i]) {
                _exit(CHILD_GET);
            }
            if (!check(x, l, (uint64_t) i + 1000)) {
                _exit(CHILD_DATA);
            }
            arena_release(&f.a, hs[i]);
            if (arena_get(&f.a, hs[i], NULL) != NULL) {
                _exit(CHILD_STALE);
            }
        }
        if (usage_blocks(&f.a) != 0 || usage_bytes(&f.a) != 0) {
            _exit(CHILD_USAGE);
        }
        _exit(CHILD_OK);
    }
    wait_child_ok(pid);

    /* The child's frees are seen here: old handles stale, usage 0, every
     * block on the remote stack once; with the free lists they cover the
     * whole partition. */
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    for (int i = 0; i < N; i++) {
        assert_null(arena_get(&f.a, hs[i], NULL));
    }
    assert_int_equal(remote_count(&f, 0), N);
    shape_take(&f, 0, &s);
    assert_int_equal(s.n_released, N);
    assert_int_equal(s.bytes, f.a.parts[0].size);
    for (int i = 0; i < N; i++) {
        const fb_t *fb = shape_find(&s, rel_of(&f, 0, d[i]));
        assert_non_null(fb);
        assert_true(fb->released);
        assert_int_equal(fb->order, expect_order(len[i]));
    }
    shape_free(&s);

    /* The owner takes the stack and merges it all: the partition is as it
     * was after init, so the same requests give the same blocks again,
     * each with a newer generation. */
    assert_merged_back(&f, 0, &init);
    for (int i = 0; i < N; i++) {
        void *x;
        old[i] = hs[i];
        hs[i] = must_alloc(&f, 0, len[i], &x);
        assert_ptr_equal(x, d[i]);
        assert_int_equal(hs[i] >> 32, old[i] >> 32);
        assert_true((uint32_t) hs[i] > (uint32_t) old[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_null(arena_get(&f.a, old[i], NULL));
    }
    assert_int_equal(usage_bytes(&f.a), bytes);
    assert_int_equal(usage_blocks(&f.a), N);
    for (int i = 0; i < N; i++) {
        arena_release(&f.a, hs[i]);
    }
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    assert_merged_back(&f, 0, &init);
    shape_free(&init);
    fix_teardown(&f);
}

/*
 * Merging (what the buddy allocator is for, 1): a partition cut into many
 * small blocks of mixed orders, all freed -- a part by the owner, a part
 * by another process, the rest by the owner afterwards -- serves a single
 * block of the largest order that fits it.
 */
static void
fragment_and_merge(uint64_t part_size, unsigned seed)
{
    enum { MAXB = 4096 };
    fix_t f;
    shape_t init;
    static arena_h h[MAXB];
    static void *d[MAXB];
    int n = 0;

    fix_setup_x(&f, 1, part_size, MAXB * sizeof(arena_h));
    arena_h *sh = (arena_h *) f.scratch;
    shape_take(&f, 0, &init);
    srand(seed);
    /* Fill it completely: random orders 0..2, then 64-byte blocks. */
    for (;;) {
        static const size_t lens[] = {0, 48, 100, 200, 240};
        size_t l = lens[rand() % 5];
        arena_h x = try_alloc(&f, 0, l, &d[n]);
        if (x == 0) {
            break;
        }
        assert_true(n < MAXB);
        h[n++] = x;
    }
    for (;;) {
        arena_h x = try_alloc(&f, 0, 0, &d[n]);
        if (x == 0) {
            break;
        }
        assert_true(n < MAXB);
        h[n++] = x;
    }
    assert_int_equal(usage_bytes(&f.a), part_size);
    assert_true(n > (int)(part_size / 256));
    memcpy(sh, h, n * sizeof(arena_h));

    /* Every fourth block freed by the owner first. */
    for (int i = 0; i < n; i += 4) {
        arena_release(&f.a, h[i]);
    }
    /* The odd ones by another process. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30);
        for (int i = 1; i < n; i += 2) {
            if (arena_get(&f.a, sh[i], NULL) == NULL) {
                _exit(CHILD_GET);
            }
            arena_release(&f.a, sh[i]);
        }
        _exit(CHILD_OK);
    }
    wait_child_ok(pid);
    /* Half the space is free, but too fragmented for one big block: the
     * owner still holds every other block. */
    uint64_t largest = order_size(63 - __builtin_clzll(part_size / 64));
    must_fail(&f, 0, largest - ARENA_HDR);
    /* The owner frees the rest. */
    for (int i = 0; i < n; i++) {
        if (i % 4 != 0 && i % 2 == 0) {
            arena_release(&f.a, h[i]);
        }
    }
    assert_int_equal(usage_blocks(&f.a), 0);

    /* One block of the largest order that fits, at the start. */
    void *big;
    arena_h hb = must_alloc(&f, 0, largest - ARENA_HDR, &big);
    assert_int_equal(rel_of(&f, 0, big), 0);
    memset(big, 0xee, largest - ARENA_HDR);
    /* The rest of the partition (its smaller initial blocks) too. */
    arena_h rest[ARENA_CLASSES];
    int nrest = 0;
    for (int k = ARENA_CLASSES - 1; k >= 0; k--) {
        for (uint64_t c = 0; c < init.per_order[k] - (order_size(k) ==
                                                        largest); c++) {
            void *x;
            rest[nrest++] = must_alloc(&f, 0, order_size(k) - ARENA_HDR, &x);
        }
    }
    assert_int_equal(usage_bytes(&f.a), part_size);
    must_fail(&f, 0, 0);
    arena_release(&f.a, hb);
    for (int i = 0; i < nrest; i++) {
        arena_release(&f.a, rest[i]);
    }
    for (int i = 0; i < n; i++) {
        assert_null(arena_get(&f.a, h[i], NULL));
    }
    assert_merged_back(&f, 0, &init);
    shape_free(&init);
    fix_teardown(&f);
}

static void
test_merge_after_fragmentation(void **state)
{
    fragment_and_merge(64 * 1024, 11);
    fragment_and_merge(64 * 1024, 12);
    /* Not a power of two: 64 KiB + 4 KiB + 128 + 64. */
    fragment_and_merge(64 * 1024 + 4096 + 192, 13);
}

/*
 * Splitting (what the buddy allocator is for, 2): one large block, freed,
 * serves many small ones -- also when another process freed it -- and a
 * small allocation takes the smallest free block that fits, so a freed
 * large block is split only as far as needed.
 */
static void
test_split_serves_small(void **state)
{
    enum { PART = 64 * 1024, SMALL = PART / 64, Q = PART / 4 };
    fix_t f;
    shape_t init;
    static arena_h hs[SMALL];
    static void *ds[SMALL];
    void *big;

    fix_setup_x(&f, 1, PART, sizeof(arena_h));
    shape_take(&f, 0, &init);

    /* The whole partition as one block, freed, then 1024 blocks of 64. */
    arena_h hb = must_alloc(&f, 0, PART - ARENA_HDR, &big);
    arena_release(&f.a, hb);
    for (int i = 0; i < SMALL; i++) {
        hs[i] = must_alloc(&f, 0, 48, &ds[i]);
        fast_fill(ds[i], 48, (uint64_t) i);
    }
    must_fail(&f, 0, 0);
    assert_null(arena_get(&f.a, hb, NULL));
    for (int i = 0; i < SMALL; i++) {
        assert_true(fast_check(ds[i], 48, (uint64_t) i));
        arena_release(&f.a, hs[i]);
    }
    assert_merged_back(&f, 0, &init);

    /* Four quarters; another process frees the third one. */
    arena_h hq[4];
    void *dq[4];
    for (int i = 0; i < 4; i++) {
        hq[i] = must_alloc(&f, 0, Q - ARENA_HDR, &dq[i]);
    }
    must_fail(&f, 0, 0);
    *(arena_h *) f.scratch = hq[2];
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        arena_release(&f.a, *(arena_h *) f.scratch);
        _exit(CHILD_OK);
    }
    wait_child_ok(pid);
    uint8_t *qlo = (uint8_t *) blk_of(dq[2]), *qhi = qlo + Q;

    /* Half of it in 64-byte blocks, all inside the freed quarter... */
    int n = Q / 2 / 64;
    for (int i = 0; i < n; i++) {
        hs[i] = must_alloc(&f, 0, 48, &ds[i]);
        assert_true((uint8_t *) blk_of(ds[i]) >= qlo &&
                    (uint8_t *) blk_of(ds[i]) + 64 <= qhi);
    }
    /* ...leave the other half whole: small requests took the smallest
     * blocks that fit, never the upper half. */
    void *dh;
    arena_h hh = must_alloc(&f, 0, Q / 2 - ARENA_HDR, &dh);
    assert_ptr_equal((uint8_t *) blk_of(dh), qlo + Q / 2);
    must_fail(&f, 0, 0);
    arena_release(&f.a, hh);
    /* And that half in blocks of 64, 128 and 256 bytes, then 64 bytes,
     * until full. */
    int m = n;
    for (int i = 0, last = 0; !last; i++) {
        static const size_t lens[] = {48, 200, 100};
        arena_h x = try_alloc(&f, 0, lens[i % 3], &ds[m]);
        if (x == 0) {
            for (;;) {
                x = try_alloc(&f, 0, 0, &ds[m]);
                if (x == 0) {
                    break;
                }
                hs[m++] = x;
                assert_true((uint8_t *) blk_of(ds[m - 1]) >= qlo + Q / 2 &&
                            (uint8_t *) blk_of(ds[m - 1]) < qhi);
            }
            last = 1;
            continue;
        }
        hs[m++] = x;
        assert_true((uint8_t *) blk_of(ds[m - 1]) >= qlo + Q / 2 &&
                    (uint8_t *) blk_of(ds[m - 1]) < qhi);
    }
    assert_true(m - n > Q / 2 / 256);
    must_fail(&f, 0, 0);
    assert_int_equal(usage_bytes(&f.a), PART);
    for (int i = 0; i < m; i++) {
        arena_release(&f.a, hs[i]);
    }
    for (int i = 0; i < 4; i++) {
        if (i != 2) {
            arena_release(&f.a, hq[i]);
        }
    }
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_merged_back(&f, 0, &init);
    shape_free(&init);
    fix_teardown(&f);
}

/*
 * Every 64-byte unit of the partition is exactly once in a free block, a
 * released block or a live block (owner[] holds the live ones: index + 1
 * per unit, 0 when not live).
 */
static void
check_tiling(fix_t *f, const uint32_t *owner, uint64_t units)
{
    shape_t s;
    uint8_t *seen = calloc(units, 1);

    assert_non_null(seen);
    shape_take(f, 0, &s);
    for (size_t i = 0; i < s.n; i++) {
        uint64_t u0 = s.v[i].rel / 64, nu = order_size(s.v[i].order) / 64;
        for (uint64_t u = u0; u < u0 + nu; u++) {
            assert_int_equal(seen[u], 0);
            seen[u] = 1;
        }
    }
    for (uint64_t u = 0; u < units; u++) {
        assert_int_equal(seen[u] + (owner[u] != 0), 1);
    }
    shape_free(&s);
    free(seen);
}

/*
 * Mixed random sizes, allocated and freed in random order (for a while a
 * part of them freed by another process), checking contents, the tiling
 * of the partition and that a refused allocation really had no block of
 * its order; then everything freed: the partition merges back to exactly
 * its initial free blocks.  No handle is issued twice.
 */
static void
test_random_merge_back(void **state)
{
    enum { STEPS = 30000, CAP = 400 };
    /* Not a power of two: four initial blocks of 256, 16, 0.5 KiB and
     * 192 bytes (orders 12, 8, 3, 1, 0). */
    const uint64_t part = (1 << 18) + (1 << 14) + (1 << 9) + 192;
    const uint64_t units = part / 64;
    fix_t f;
    shape_t init;
    hset_t seen = {0};
    static arena_h lh[CAP];
    static void *ld[CAP];
    static size_t ll[CAP];
    static uint64_t lseed[CAP];
    int n = 0;
    uint64_t seq = 0, fails = 0, want_bytes = 0;

    fix_setup_x(&f, 1, part, CAP * sizeof(arena_h) + sizeof(uint32_t));
    arena_h *sh = (arena_h *) f.scratch;
    uint32_t *owner = calloc(units, sizeof(uint32_t));
    assert_non_null(owner);
    shape_take(&f, 0, &init);
    srand(42);

    for (int step = 0; step < STEPS; step++) {
        if (step == STEPS / 2 && n > 0) {
            /* Another process frees every third live block. */
            memcpy(sh, lh, n * sizeof(arena_h));
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                alarm(30);
                for (int i = 0; i < n; i += 3) {
                    arena_release(&f.a, sh[i]);
                }
                _exit(CHILD_OK);
            }
            wait_child_ok(pid);
            int m = 0;
            for (int i = 0; i < n; i++) {
                if (i % 3 == 0) {
                    assert_null(arena_get(&f.a, lh[i], NULL));
                    want_bytes -= order_size(expect_order(ll[i]));
                    continue;
                }
                lh[m] = lh[i];
                ld[m] = ld[i];
                ll[m] = ll[i];
                lseed[m] = lseed[i];
                m++;
            }
            n = m;
            memset(owner, 0, units * sizeof(uint32_t));
            for (int i = 0; i < n; i++) {
                uint64_t u0 = rel_of(&f, 0, ld[i]) / 64;
                uint64_t nu = order_size(expect_order(ll[i])) / 64;
                for (uint64_t u = u0; u < u0 + nu; u++) {
                    owner[u] = (uint32_t) i + 1;
                }
            }
            assert_int_equal(usage_blocks(&f.a), n);
            assert_int_equal(usage_bytes(&f.a), want_bytes);
            check_tiling(&f, owner, units);
        }
        int r = rand() % 100;
        if (n == 0 || (n < CAP && r < 55)) {
            int sr = rand() % 100;
            size_t len;
            if (sr < 60) {
                len = (size_t)(rand() % 200);
            } else if (sr < 90) {
                len = 200 + (size_t)(rand() % 3800);
            } else if (sr < 99) {
                len = 4000 + (size_t)(rand() % 36000);
            } else {
                len = 40000 + (size_t)(rand() % 100000);
            }
            void *d;
            arena_h h = try_alloc(&f, 0, len, &d);
            int k = expect_order(len);
            if (h == 0) {
                /* Back-pressure only when really no block of that order or
                 * larger is free (the remote stack taken and merged). */
                assert_int_equal(f.a.parts[0].remote_free, 0);
                for (int j = k; j < ARENA_CLASSES; j++) {
                    assert_int_equal(f.a.parts[0].free_head[j], 0);
                }
                fails++;
                continue;
            }
            hset_add(&seen, h);
            uint64_t u0 = rel_of(&f, 0, d) / 64;
            for (uint64_t u = u0; u < u0 + order_size(k) / 64; u++) {
                assert_int_equal(owner[u], 0);
                owner[u] = (uint32_t) n + 1;
            }
            fast_fill(d, len, seq);
            lh[n] = h;
            ld[n] = d;
            ll[n] = len;
            lseed[n] = seq++;
            want_bytes += order_size(k);
            n++;
        } else {
            int i = rand() % n;
            uint32_t l;
            assert_ptr_equal(arena_get(&f.a, lh[i], &l), ld[i]);
            assert_int_equal(l, ll[i]);
            assert_true(fast_check(ld[i], ll[i], lseed[i]));
            uint64_t u0 = rel_of(&f, 0, ld[i]) / 64;
            uint64_t nu = order_size(expect_order(ll[i])) / 64;
            for (uint64_t u = u0; u < u0 + nu; u++) {
                assert_int_equal(owner[u], (uint32_t) i + 1);
                owner[u] = 0;
            }
            arena_release(&f.a, lh[i]);
            assert_null(arena_get(&f.a, lh[i], NULL));
            want_bytes -= nu * 64;
            n--;
            if (i != n) {
                lh[i] = lh[n];
                ld[i] = ld[n];
                ll[i] = ll[n];
                lseed[i] = lseed[n];
                uint64_t v0 = rel_of(&f, 0, ld[i]) / 64;
                uint64_t nv = order_size(expect_order(ll[i])) / 64;
                for (uint64_t u = v0; u < v0 + nv; u++) {
                    owner[u] = (uint32_t) i + 1;
                }
            }
        }
        assert_int_equal(usage_blocks(&f.a), n);
        assert_int_equal(usage_bytes(&f.a), want_bytes);
        if (step % 1000 == 999) {
            check_tiling(&f, owner, units);
        }
    }
    /* It ran full now and then, and it was not always nearly empty. */
    assert_true(fails > 0);
    assert_true(seen.n > STEPS / 3);

    for (int i = 0; i < n; i++) {
        assert_true(fast_check(ld[i], ll[i], lseed[i]));
        arena_release(&f.a, lh[i]);
    }
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    assert_merged_back(&f, 0, &init);
    hset_check_unique_stale(&f, &seen);
    hset_free(&seen);
    free(owner);
    shape_free(&init);
    fix_teardown(&f);
}

/*
 * Stress: the owner allocates into a small partition as fast as it can,
 * writes each block, gives it two references and sends the handle to two
 * consumer processes over SPSC rings; each checks the contents and
 * releases, so the last release (and the push onto the remote-free stack)
 * happens in whichever is last, concurrently with the owner taking the
 * stack whole and merging it.  Some blocks the owner frees itself.  A
 * block handed out again too early shows up as damaged contents.
 */
typedef struct {
    uint64_t seq;
    arena_h h;
    uint64_t len;
    uint64_t sum;
} msg_t;

#define STRESS_TOTAL 400000u
#define STRESS_BUDGET_MS 3000u
#define STRESS_CAP 256u
#define STRESS_END UINT64_MAX

static uint64_t
msg_sum(const msg_t *m)
{
    return (m->seq * 0x9e3779b97f4a7c15ull) ^ m->h ^ (m->len << 40);
}

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Consumer: checks and releases every block until the end message (seq
 * STRESS_END, len = how many came before it); exits with a code. */
static void
stress_consumer(arena_t *a, ring_t *r)
{
    uint64_t next = 0, idle_since = now_ms();
    unsigned spins = 0;

    /* Never outlive a parent that died or failed its test. */
    (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(60);
    for (;;) {
        uint32_t n = ring_count(r);
        if (n == 0) {
            backoff(&spins);
            if (spins % 64 == 0 && now_ms() - idle_since > STALL_MS) {
                _exit(CHILD_STALL);
            }
            continue;
        }
        spins = 0;
        idle_since = now_ms();
        for (uint32_t i = 0; i < n; i++) {
            const msg_t *m = ring_peek(r, i);
            uint32_t l;
            if (m->sum != msg_sum(m)) {
                _exit(CHILD_DATA);
            }
            if (m->seq == STRESS_END) {
                _exit(m->h == 0 && m->len == next + i ? CHILD_OK
                                                      : CHILD_DATA);
            }
            if (m->seq != next + i) {
                _exit(CHILD_DATA);
            }
            const uint8_t *x = arena_get(a, m->h, &l);
            if (x == NULL || l != m->len) {
                _exit(CHILD_GET);
            }
            if (!fast_check(x, l, m->seq)) {
                _exit(CHILD_DATA);
            }
            arena_release(a, m->h);
        }
        ring_consume(r, n);
        next += n;
    }
}

/* Sends m to consumer k; returns 0, or -1 (with *status) when it died. */
static int
stress_send(ring_t *r, pid_t pid, const msg_t *m, int *status)
{
    unsigned spins = 0;

    while (ring_space(r, 1) == 0) {
        backoff(&spins);
        if (spins % 64 == 0 && waitpid(pid, status, WNOHANG) == pid) {
            return -1;
        }
    }
    *(msg_t *) ring_slot(r, 0) = *m;
    ring_commit(r, 1);
    return 0;
}

static void
test_cross_process_stress(void **state)
{
    fix_t f;
    int status;

    /* Partition 0 (the owner's, small: constant reuse); the two rings live
     * in the scratch area after the block area. */
    size_t rb = ring_bytes(STRESS_CAP, sizeof(msg_t));
    fix_setup_x(&f, 1, 64 * 1024, 2 * rb);
    arena_part_t *p0 = &f.a.parts[0];
    shape_t init, s;
    shape_take(&f, 0, &init);
    ring_t *r[2];
    pid_t pid[2];
    for (int k = 0; k < 2; k++) {
        r[k] = (ring_t *)(f.scratch + k * rb);
        ring_init(r[k], STRESS_CAP, sizeof(msg_t));
    }
    for (int k = 0; k < 2; k++) {
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0) {
            stress_consumer(&f.a, r[k]);
        }
    }

    /* As many as STRESS_TOTAL blocks; on an overloaded machine the owner
     * stops after STRESS_BUDGET_MS (never below STRESS_TOTAL / 100): a
     * shorter run, every block of it still checked. */
    uint64_t seq = 0, own = 0, through = 0;
    uint64_t deadline = now_ms() + STRESS_BUDGET_MS;
    unsigned spins = 0;
    int dead = 0, late = 0;
    while (seq < STRESS_TOTAL && !dead) {
        if ((seq & 255) == 0) {
            late = late || now_ms() > deadline;
        }
        if (late && seq >= STRESS_TOTAL / 100) {
            break;
        }
        size_t len = (size_t)((seq * 2654435761u) % 1500);
        void *d;
        arena_h h = arena_alloc(&f.a, p0, len, &d);
        if (h == 0) {
            /* Back-pressure: wait for the consumers' frees. */
            backoff(&spins);
            if (spins % 64 == 0) {
                for (int k = 0; k < 2 && !dead; k++) {
                    if (waitpid(pid[k], &status, WNOHANG) == pid[k]) {
                        dead = k + 1;
                    }
                }
                late = late || now_ms() > deadline;
            }
            continue;
        }
        spins = 0;
        through += order_size(expect_order(len));
        /* Every tenth block the owner also keeps a reference and drops it
         * at once: its own free goes through the same stack. */
        int keep = seq % 10 == 0;
        fast_fill(d, len, seq);
        arena_ref_add(&f.a, h, keep ? 2 : 1);
        msg_t m = {.seq = seq, .h = h, .len = len};
        m.sum = msg_sum(&m);
        for (int k = 0; k < 2 && !dead; k++) {
            if (stress_send(r[k], pid[k], &m, &status) != 0) {
                dead = k + 1;
            }
        }
        if (keep && !dead) {
            arena_release(&f.a, h);
            own++;
        }
        seq++;
    }
    msg_t end = {.seq = STRESS_END, .h = 0, .len = seq};
    end.sum = msg_sum(&end);
    for (int k = 0; k < 2 && !dead; k++) {
        if (stress_send(r[k], pid[k], &end, &status) != 0) {
            dead = k + 1;
        }
    }
    if (dead) {
        /* Do not leave the other one spinning. */
        (void) kill(pid[2 - dead], SIGKILL);
        (void) waitpid(pid[2 - dead], NULL, 0);
        fail_msg("consumer %d ended early: %s %d", dead,
                 WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    for (int k = 0; k < 2; k++) {
        assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
        if (WIFSIGNALED(status)) {
            fail_msg("consumer %d killed by signal %d", k, WTERMSIG(status));
        }
        assert_int_equal(WEXITSTATUS(status), CHILD_OK);
    }
    assert_true(seq >= STRESS_TOTAL / 100 && seq <= STRESS_TOTAL);
    if (seq < STRESS_TOTAL) {
        print_message("  (machine busy: %llu of %u blocks in %u ms)\n",
                      (unsigned long long) seq, STRESS_TOTAL,
                      STRESS_BUDGET_MS);
    }
    assert_true(own > 0);
    /* The partition is far smaller than what went through it, so blocks
     * were reused over and over. */
    assert_true(through > 4 * p0->size);
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);

    /* No block lost, none listed twice: the free lists and the remote
     * stack together tile the whole partition without overlap. */
    shape_take(&f, 0, &s);
    assert_int_equal(s.bytes, p0->size);
    shape_free(&s);
    /* Once the owner has taken the stack, everything merges back: one
     * block of the whole partition, and after it the initial shape. */
    void *big;
    arena_h hb = must_alloc(&f, 0, p0->size - ARENA_HDR, &big);
    assert_int_equal(rel_of(&f, 0, big), 0);
    arena_release(&f.a, hb);
    assert_merged_back(&f, 0, &init);
    shape_free(&init);
    fix_teardown(&f);
}

/* ---- recovery of a partition whose owner died (arena_part_recover) ---- */

/* Releases every handle in hs, then asserts that the whole partition is
 * one free block again (everything merged back). */
static void
assert_all_free_after(fix_t *f, arena_h *hs, int n)
{
    void *d;

    for (int i = 0; i < n; i++) {
        if (hs[i]) {
            arena_release(&f->a, hs[i]);
        }
    }
    arena_h all = arena_alloc(&f->a, &f->a.parts[0],
                              f->a.parts[0].size - ARENA_HDR, &d);
    assert_true(all != 0);
    arena_release(&f->a, all);
}

static void
test_recover_keeps_used_blocks(void **state)
{
    fix_t f;
    arena_h hs[12];
    uint8_t *data[12];
    (void) state;

    fix_setup(&f, 1, 64 * 1024);
    for (int i = 0; i < 12; i++) {
        void *d;
        hs[i] = arena_alloc(&f.a, &f.a.parts[0], (size_t)(10 + i * 300), &d);
        assert_true(hs[i] != 0);
        data[i] = d;
        memset(d, 0x40 + i, (size_t)(10 + i * 300));
    }
    /* Three released by "another process": on the remote-free stack. */
    for (int i = 0; i < 12; i += 4) {
        arena_release(&f.a, hs[i]);
        hs[i] = 0;
    }
    /* The dead owner's free lists: garbage. */
    memset(f.a.parts[0].free_head, 0xab, sizeof(f.a.parts[0].free_head));
    arena_part_recover(&f.a, &f.a.parts[0]);
    for (int i = 0; i < 12; i++) {
        if (hs[i] == 0) {
            continue;
        }
        uint32_t len;
        assert_ptr_equal(arena_get(&f.a, hs[i], &len), data[i]);
        for (uint32_t k = 0; k < len; k++) {
            assert_int_equal(data[i][k], 0x40 + i);
        }
    }
    /* New allocations never overlap a block in use. */
    for (int j = 0; j < 20; j++) {
        void *d;
        arena_h h = arena_alloc(&f.a, &f.a.parts[0], 200, &d);
        assert_true(h != 0);
        memset(d, 0, 200);
        arena_release(&f.a, h);
    }
    for (int i = 0; i < 12; i++) {
        if (hs[i]) {
            assert_int_equal(data[i][0], 0x40 + i);
        }
    }
    assert_all_free_after(&f, hs, 12);
    fix_teardown(&f);
}

/* The owner died in the middle of a split: the leading block was taken
 * off its list (state 0, still its old order) and its upper half already
 * pushed one order down.  The walk sees one whole free block. */
static void
test_recover_mid_split(void **state)
{
    fix_t f;
    (void) state;

    fix_setup(&f, 1, 64 * 1024);
    arena_part_t *p = &f.a.parts[0];
    arena_blk_t *lead = (arena_blk_t *)(f.map + p->start);
    arena_blk_t *upper = (arena_blk_t *)(f.map + p->start + 32 * 1024);
    assert_int_equal(lead->cls, 10);
    lead->state = 0;
    upper->cls = 9;
    upper->state = ARENA_FREE;
    upper->ref = 0;
    memset(p->free_head, 0, sizeof(p->free_head));
    arena_part_recover(&f.a, p);
    assert_all_free_after(&f, NULL, 0);
    fix_teardown(&f);
}

/* The owner died in the middle of a merge: the released block (upper
 * buddy) was unlinked-to-be (state 0) while its lower buddy is still on a
 * list; both come back and merge. */
static void
test_recover_mid_merge(void **state)
{
    fix_t f;
    arena_h hs[2];
    void *d;
    (void) state;

    fix_setup(&f, 1, 64 * 1024);
    arena_part_t *p = &f.a.parts[0];
    hs[0] = arena_alloc(&f.a, p, 32 * 1024 - ARENA_HDR, &d);
    hs[1] = arena_alloc(&f.a, p, 32 * 1024 - ARENA_HDR, &d);
    assert_true(hs[0] != 0 && hs[1] != 0);
    arena_release(&f.a, hs[0]);
    /* Owner takes it (merge_free would list it); killed midway: */
    arena_blk_t *b = blk_of(d);
    b->state = 0; /* hs[1]'s block caught mid-merge after its release */
    p->remote_free = 0;
    arena_blk_t *lower = (arena_blk_t *)(f.map + p->start);
    lower->state = ARENA_RELEASED; /* hs[0]: still on the remote stack */
    p->remote_free = (uint32_t)((p->start) / 64);
    links_of(lower)[0] = 0;
    memset(p->free_head, 0x11, sizeof(p->free_head));
    arena_part_recover(&f.a, p);
    assert_all_free_after(&f, NULL, 0);
    fix_teardown(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_part_init),
        cmocka_unit_test(test_alloc_distinct),
        cmocka_unit_test(test_orders),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_stale_and_reuse),
        cmocka_unit_test(test_generation_across_merge),
        cmocka_unit_test(test_forged),
        cmocka_unit_test(test_exhaustion),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_cross_process_free),
        cmocka_unit_test(test_merge_after_fragmentation),
        cmocka_unit_test(test_split_serves_small),
        cmocka_unit_test(test_random_merge_back),
        cmocka_unit_test(test_cross_process_stress),
        cmocka_unit_test(test_recover_keeps_used_blocks),
        cmocka_unit_test(test_recover_mid_split),
        cmocka_unit_test(test_recover_mid_merge),
    };

    /* Refused handles are logged; the tests provoke many on purpose. */
    log_setup(LOG_T_DEFAULT & ~LOG_T_ERR, LOG_D_STDERR, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
