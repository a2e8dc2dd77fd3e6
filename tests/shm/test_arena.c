/*
 * test_arena.c -- the shared message arena over a MAP_SHARED mapping:
 * distinct blocks of the requested length, size classes, reference counts,
 * stale and forged handles, partition exhaustion as back-pressure, usage
 * counters, and frees from other processes through the remote-free stacks.
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

/* ---- helpers ---- */

/* A mapping laid out like shm_create() does it: the partition array first,
 * then (64-byte aligned, deliberately not page aligned) the block area,
 * partition after partition. */
typedef struct {
    uint8_t *map;
    size_t map_len;
    arena_t a;
} fix_t;

static void
fix_setup(fix_t *f, uint32_t n_parts, uint64_t part_size)
{
    uint64_t parts_len = (uint64_t) n_parts * sizeof(arena_part_t);
    uint64_t lo = ((parts_len + 63) & ~(uint64_t) 63) + 64;

    assert_int_equal(part_size % 64, 0);
    f->map_len = (size_t)((lo + n_parts * part_size + 4095) & ~4095ull);
    f->map = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(f->map != MAP_FAILED);
    f->a.base = f->map;
    f->a.lo = lo;
    f->a.hi = lo + n_parts * part_size;
    f->a.parts = (arena_part_t *) f->map;
    f->a.n_parts = n_parts;
    for (uint32_t i = 0; i < n_parts; i++) {
        arena_part_init(&f->a.parts[i], i, lo + i * part_size, part_size);
        assert_int_equal(f->a.parts[i].magic, ARENA_MAGIC);
        assert_int_equal(f->a.parts[i].index, i);
    }
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

static uint64_t
class_size(int c)
{
    return (uint64_t) 1 << (c + ARENA_MIN_SHIFT);
}

/* The class a block of len user bytes must get: smallest 64 << k that
 * holds the header too. */
static int
expect_class(size_t len)
{
    int c = 0;

    while (class_size(c) < len + ARENA_HDR) {
        c++;
    }
    return c;
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

/* Allocation that must succeed; checks what every block must satisfy. */
static arena_h
must_alloc(fix_t *f, uint32_t part, size_t len, void **data)
{
    arena_t *a = &f->a;
    arena_part_t *p = &a->parts[part];
    void *d = NULL;
    arena_h h = arena_alloc(a, p, len, &d);
    uint32_t got_len = 0;

    assert_true(h != 0);
    assert_non_null(d);
    arena_blk_t *b = blk_of(d);
    uint64_t byte = (uint64_t)((uint8_t *) b - a->base);
    int c = expect_class(len);

    /* The handle names the block: offset / 64 and the generation. */
    assert_int_equal(byte % 64, 0);
    assert_int_equal(h >> 32, byte / 64);
    assert_int_equal((uint32_t) h, b->gen);
    assert_true(b->gen != 0);
    /* Inside its partition, inside the arena. */
    assert_true(byte >= p->start);
    assert_true(byte + class_size(c) <= p->start + p->size);
    assert_true(byte >= a->lo && byte + class_size(c) <= a->hi);
    /* Header. */
    assert_int_equal(b->ref, 1);
    assert_int_equal(b->len, len);
    assert_int_equal(b->cls, c);
    assert_int_equal(b->part, part);
    /* Checked dereference agrees. */
    assert_ptr_equal(arena_get(a, h, &got_len), d);
    assert_int_equal(got_len, len);
    assert_ptr_equal(arena_get(a, h, NULL), d);
    *data = d;
    return h;
}

/* ---- one process ---- */

static void
test_alloc_distinct(void **state)
{
    enum { N = 600 };
    fix_t f;
    arena_h h[N];
    void *d[N];
    size_t len[N];
    uint64_t want_bytes = 0;

    fix_setup(&f, 2, 1 << 20);
    srand(7);
    for (int i = 0; i < N; i++) {
        /* Mostly small, some up to a few KiB, a few exactly at class
         * edges. */
        switch (i % 6) {
        case 0: len[i] = 0; break;
        case 1: len[i] = 48; break;
        case 2: len[i] = 49; break;
        case 3: len[i] = (size_t)(rand() % 4000); break;
        case 4: len[i] = (size_t)(rand() % 200); break;
        default: len[i] = class_size(rand() % 6) - ARENA_HDR; break;
        }
        h[i] = must_alloc(&f, 0, len[i], &d[i]);
        fill(d[i], len[i], (uint64_t) i);
        want_bytes += class_size(expect_class(len[i]));
    }
    /* Handles are distinct; whole blocks (header + class size) are pairwise
     * disjoint. */
    for (int i = 0; i < N; i++) {
        uint8_t *bi = (uint8_t *) blk_of(d[i]);
        uint64_t si = class_size(expect_class(len[i]));
        for (int j = i + 1; j < N; j++) {
            uint8_t *bj = (uint8_t *) blk_of(d[j]);
            uint64_t sj = class_size(expect_class(len[j]));
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
    /* Nothing went to partition 1. */
    assert_int_equal(f.a.parts[1].blocks_used, 0);
    assert_int_equal(f.a.parts[1].bump, 0);

    for (int i = 0; i < N; i++) {
        arena_release(&f.a, h[i]);
    }
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    fix_teardown(&f);
}

static void
test_size_classes(void **state)
{
    fix_t f;
    void *d;

    fix_setup(&f, 1, 1 << 20);
    arena_part_t *p = &f.a.parts[0];
    static const struct {
        size_t len;
        int cls;
    } cases[] = {
        {0, 0},       {1, 0},       {48, 0},      {49, 1},
        {112, 1},     {113, 2},     {240, 2},     {241, 3},
        {1000, 4},    {4080, 6},    {4081, 7},    {65520, 10},
        {65521, 11},  {100000, 11},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t before = usage_bytes(&f.a);
        arena_h h = must_alloc(&f, 0, cases[i].len, &d);
        assert_int_equal(blk_of(d)->cls, cases[i].cls);
        assert_int_equal(usage_bytes(&f.a) - before,
                         class_size(cases[i].cls));
        /* Blocks are aligned to their class size up to 4 KiB (relative to
         * the partition start). */
        uint64_t off = (uint64_t)((uint8_t *) blk_of(d) - f.map) - p->start;
        uint64_t align = class_size(cases[i].cls);
        align = align < 4096 ? align : 4096;
        assert_int_equal(off % align, 0);
        /* The whole length is usable. */
        memset(d, 0xab, cases[i].len);
        arena_release(&f.a, h);
    }
    assert_int_equal(usage_bytes(&f.a), 0);

    /* Too big for any class: refused, counted, nothing used. */
    uint64_t fails = p->alloc_fail;
    uint64_t bump = p->bump;
    d = (void *) 1;
    size_t max = (size_t) class_size(ARENA_CLASSES - 1) - ARENA_HDR;
    assert_true(arena_alloc(&f.a, p, max + 1, &d) == 0);
    assert_true(arena_alloc(&f.a, p, (size_t) UINT32_MAX + 1, &d) == 0);
    assert_true(arena_alloc(&f.a, p, SIZE_MAX, &d) == 0);
    assert_true(arena_alloc(&f.a, p, SIZE_MAX - 8, &d) == 0);
    assert_int_equal(p->alloc_fail, fails + 4);
    assert_int_equal(p->bump, bump);
    assert_int_equal(usage_blocks(&f.a), 0);
    /* The largest class exists but does not fit this 1 MiB partition. */
    assert_true(arena_alloc(&f.a, p, max, &d) == 0);
    assert_int_equal(p->alloc_fail, fails + 5);
    fix_teardown(&f);
}

static void
test_refcount(void **state)
{
    fix_t f;
    void *d;
    uint32_t l;

    fix_setup(&f, 1, 64 * 1024);
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
        assert_int_equal(usage_blocks(&f.a), 1);
        assert_int_equal(usage_bytes(&f.a), 128);
    }
    /* The last reference frees. */
    arena_release(&f.a, h);
    assert_int_equal(b->ref, 0);
    assert_null(arena_get(&f.a, h, &l));
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);

    /* A release or a reference on a freed block changes nothing. */
    arena_release(&f.a, h);
    arena_ref_add(&f.a, h, 5);
    assert_int_equal(b->ref, 0);
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    fix_teardown(&f);
}

static void
test_stale_and_reuse(void **state)
{
    fix_t f;
    void *d1, *d2, *d3, *dx;

    fix_setup(&f, 1, 64 * 1024);
    arena_part_t *p = &f.a.parts[0];

    arena_h h1 = must_alloc(&f, 0, 200, &d1);
    uint32_t gen1 = (uint32_t) h1;
    arena_release(&f.a, h1);
    assert_null(arena_get(&f.a, h1, NULL));
    /* The generation moved on at the free. */
    assert_true(blk_of(d1)->gen != gen1);

    /* Another class does not take it. */
    arena_h hx = must_alloc(&f, 0, 10, &dx);
    assert_ptr_not_equal(dx, d1);

    /* The next alloc of that class reuses it, with a new generation; the
     * bump pointer does not move. */
    uint64_t bump = p->bump;
    arena_h h2 = must_alloc(&f, 0, 150, &d2);
    assert_ptr_equal(d2, d1);
    assert_int_equal(h2 >> 32, h1 >> 32);
    assert_true((uint32_t) h2 != gen1);
    assert_int_equal((uint32_t) h2, gen1 + 1);
    assert_int_equal(p->bump, bump);
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
    assert_int_equal(usage_blocks(&f.a), 2);

    /* Freed again, reused again: third generation. */
    arena_release(&f.a, h2);
    arena_h h3 = must_alloc(&f, 0, 129, &d3);
    assert_ptr_equal(d3, d1);
    assert_int_equal((uint32_t) h3, gen1 + 2);
    assert_null(arena_get(&f.a, h1, NULL));
    assert_null(arena_get(&f.a, h2, NULL));
    arena_release(&f.a, h3);
    arena_release(&f.a, hx);

    /* Several frees of one class are all reused before the bump pointer
     * moves, each with a new generation. */
    enum { K = 20 };
    arena_h hs[K];
    void *ds[K];
    for (int i = 0; i < K; i++) {
        hs[i] = must_alloc(&f, 0, 300, &ds[i]);
    }
    for (int i = 0; i < K; i++) {
        arena_release(&f.a, hs[i]);
    }
    bump = p->bump;
    for (int i = 0; i < K; i++) {
        void *d;
        arena_h h = must_alloc(&f, 0, 300, &d);
        int found = -1;
        for (int j = 0; j < K; j++) {
            if (d == ds[j]) {
                assert_int_equal(found, -1);
                found = j;
            }
        }
        assert_true(found >= 0);
        assert_int_equal(h >> 32, hs[found] >> 32);
        assert_int_equal((uint32_t) h, (uint32_t) hs[found] + 1);
        assert_null(arena_get(&f.a, hs[found], NULL));
        ds[found] = NULL; /* each block handed out once */
        hs[found] = h;
    }
    assert_int_equal(p->bump, bump);
    for (int i = 0; i < K; i++) {
        arena_release(&f.a, hs[i]);
    }
    assert_int_equal(usage_blocks(&f.a), 0);

    /* The generation skips 0 when it wraps. */
    arena_h hw = must_alloc(&f, 0, 20, &d1);
    blk_of(d1)->gen = UINT32_MAX;
    hw = arena_handle(hw >> 32, UINT32_MAX);
    assert_ptr_equal(arena_get(&f.a, hw, NULL), d1);
    arena_release(&f.a, hw);
    assert_null(arena_get(&f.a, hw, NULL));
    arena_h hw2 = must_alloc(&f, 0, 20, &d2);
    assert_ptr_equal(d2, d1);
    assert_int_equal((uint32_t) hw2, 1);
    assert_null(arena_get(&f.a, arena_handle(hw2 >> 32, 0), NULL));
    arena_release(&f.a, hw2);
    assert_int_equal(usage_blocks(&f.a), 0);
    fix_teardown(&f);
}

static void
test_forged(void **state)
{
    fix_t f;
    void *d;

    fix_setup(&f, 2, 64 * 1024);
    arena_t *a = &f.a;
    arena_h h = must_alloc(&f, 0, 400, &d); /* class 3: 512 bytes */
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
    /* Never allocated space (past the bump pointer), either partition. */
    uint64_t fresh = (a->parts[0].start + a->parts[0].bump) / 64 + 4;
    assert_null(arena_get(a, arena_handle(fresh, 1), NULL));
    assert_null(arena_get(a, arena_handle(a->parts[1].start / 64, 1), NULL));
    assert_null(arena_get(a, arena_handle(a->hi / 64 - 1, 1), NULL));

    /* Headers that look alive but cannot be blocks: class out of range,
     * partition out of range, block running past the arena's end, length
     * larger than the class. */
    arena_blk_t *fake = (arena_blk_t *)(f.map + a->hi - 64);
    arena_h fh = arena_handle((a->hi - 64) / 64, 9);
    *fake = (arena_blk_t){.gen = 9, .ref = 1, .len = 10, .cls = 0, .part = 1};
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
    fake->part = 1;
    fake->len = 64 - ARENA_HDR + 1;
    assert_null(arena_get(a, fh, NULL));
    fake->len = UINT32_MAX;
    assert_null(arena_get(a, fh, NULL));
    fake->len = 10;
    fake->ref = 0;
    assert_null(arena_get(a, fh, NULL));
    memset(fake, 0, sizeof(*fake));

    /* Forged handles never reach a block: the real one is untouched and
     * nothing was counted. */
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
    for (int c = 0; c < ARENA_CLASSES; c++) {
        assert_int_equal(a->parts[0].remote_free[c], 0);
        assert_int_equal(a->parts[1].remote_free[c], 0);
    }
    assert_ptr_equal(arena_get(a, h, NULL), d);
    arena_release(a, h);
    assert_int_equal(usage_blocks(a), 0);
    fix_teardown(&f);
}

static void
test_exhaustion(void **state)
{
    enum { PART = 4096, PER = PART / 64 };
    fix_t f;
    arena_h h[PER];
    void *d[PER], *x;

    fix_setup(&f, 2, PART);
    arena_part_t *p0 = &f.a.parts[0];

    for (int i = 0; i < PER; i++) {
        h[i] = must_alloc(&f, 0, 48, &d[i]);
        fill(d[i], 48, (uint64_t) i);
    }
    /* Full: 0 (back-pressure), counted, again and again, nothing spoiled. */
    uint64_t fails = p0->alloc_fail;
    for (int k = 0; k < 3; k++) {
        x = NULL;
        assert_true(arena_alloc(&f.a, p0, 1, &x) == 0);
        assert_true(arena_alloc(&f.a, p0, 200, &x) == 0);
    }
    assert_int_equal(p0->alloc_fail, fails + 6);
    assert_int_equal(p0->bump, PART);
    assert_int_equal(usage_blocks(&f.a), PER);
    assert_int_equal(usage_bytes(&f.a), PART);
    /* A block larger than the partition never fits. */
    assert_true(arena_alloc(&f.a, &f.a.parts[1], PART, &x) == 0);

    /* The other partition is not affected. */
    void *y;
    arena_h hy = must_alloc(&f, 1, 48, &y);
    assert_true((uint8_t *) y > (uint8_t *) d[PER - 1]);

    /* One free makes room for exactly one block of its class. */
    arena_release(&f.a, h[17]);
    arena_h hn = must_alloc(&f, 0, 30, &x);
    assert_ptr_equal(x, d[17]);
    assert_true(arena_alloc(&f.a, p0, 30, &x) == 0);
    h[17] = hn;
    fill(d[17], 30, 17);

    /* Free everything: all of it can be taken again. */
    for (int i = 0; i < PER; i++) {
        arena_release(&f.a, h[i]);
    }
    assert_int_equal(p0->blocks_used, 0);
    for (int i = 0; i < PER; i++) {
        h[i] = must_alloc(&f, 0, 48, &d[i]);
    }
    assert_true(arena_alloc(&f.a, p0, 48, &x) == 0);
    for (int i = 0; i < PER; i++) {
        arena_release(&f.a, h[i]);
    }
    arena_release(&f.a, hy);
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
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

enum {
    CHILD_OK = 0,
    CHILD_GET = 10,   /* a live handle did not dereference */
    CHILD_DATA = 11,  /* a block's contents were not what was written */
    CHILD_STALE = 12, /* a freed block still dereferenced */
    CHILD_USAGE = 13, /* counters wrong after the frees */
    CHILD_STALL = 14  /* nothing came for STALL_MS: the parent is stuck */
};

#define STALL_MS 10000u

static void
test_cross_process_free(void **state)
{
    enum { N = 500 };
    fix_t f;
    void *d[N];
    size_t len[N];

    fix_setup(&f, 2, 1 << 20);
    arena_part_t *p0 = &f.a.parts[0];
    /* The handles travel through the shared mapping, in partition 1's
     * space (never allocated from here). */
    arena_h *hs = (arena_h *)(f.map + f.a.parts[1].start);

    for (int i = 0; i < N; i++) {
        len[i] = (size_t)((i * 37) % 700);
        hs[i] = must_alloc(&f, 0, len[i], &d[i]);
        fill(d[i], len[i], (uint64_t) i + 1000);
    }
    uint64_t bump = p0->bump;
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
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), CHILD_OK);

    /* The child's frees are seen here: old handles stale, usage 0. */
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    for (int i = 0; i < N; i++) {
        assert_null(arena_get(&f.a, hs[i], NULL));
    }

    /* Allocating the same sizes again reuses exactly those blocks (the
     * bump pointer stays), each with the next generation. */
    for (int i = N - 1; i >= 0; i--) {
        void *x;
        arena_h h = must_alloc(&f, 0, len[i], &x);
        int found = -1;
        for (int j = 0; j < N; j++) {
            if (d[j] == x) {
                found = j;
                break;
            }
        }
        assert_true(found >= 0);
        assert_int_equal(expect_class(len[found]), expect_class(len[i]));
        assert_int_equal(h >> 32, hs[found] >> 32);
        assert_int_equal((uint32_t) h, (uint32_t) hs[found] + 1);
        d[found] = NULL;
        hs[found] = h;
    }
    assert_int_equal(p0->bump, bump);
    assert_int_equal(usage_bytes(&f.a), bytes);
    assert_int_equal(usage_blocks(&f.a), N);
    for (int i = 0; i < N; i++) {
        arena_release(&f.a, hs[i]);
    }
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);
    fix_teardown(&f);
}

/*
 * Stress: the owner allocates into a small partition as fast as it can,
 * writes each block, gives it two references and sends the handle to two
 * consumer processes over SPSC rings; each checks the contents and
 * releases, so the last release (and the push onto the remote-free stack)
 * happens in whichever is last, concurrently with the owner taking the
 * stacks whole.  Some blocks the owner frees itself.  A block handed out
 * again too early shows up as damaged contents.
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

static void
stress_fill(uint8_t *d, size_t len, uint64_t seq)
{
    /* Cheap but position- and block-dependent. */
    uint64_t v = seq * 0x100000001b3ull;
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t w = v + i;
        memcpy(d + i, &w, 8);
    }
    for (size_t i = len & ~(size_t) 7; i < len; i++) {
        d[i] = (uint8_t)(seq + i);
    }
}

static int
stress_check(const uint8_t *d, size_t len, uint64_t seq)
{
    uint64_t v = seq * 0x100000001b3ull;
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, d + i, 8);
        if (w != v + i) {
            return 0;
        }
    }
    for (size_t i = len & ~(size_t) 7; i < len; i++) {
        if (d[i] != (uint8_t)(seq + i)) {
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

/* Blocks on partition p's free lists (local and remote, every class);
 * fails the test on a live block, a wrong class or a duplicate. */
static uint64_t
free_list_blocks(fix_t *f, arena_part_t *p)
{
    uint64_t max = p->bump / 64, n = 0;
    uint64_t *v = calloc(max + 1, sizeof(uint64_t));

    assert_non_null(v);
    for (int c = 0; c < ARENA_CLASSES; c++) {
        uint32_t heads[2] = {p->local_free[c], p->remote_free[c]};
        for (int k = 0; k < 2; k++) {
            for (uint32_t off = heads[k]; off != 0;) {
                arena_blk_t *b = (arena_blk_t *)(f->map + (uint64_t) off * 64);
                assert_true(n < max);
                assert_true((uint64_t) off * 64 >= p->start);
                assert_true((uint64_t) off * 64 < p->start + p->bump);
                assert_int_equal(b->ref, 0);
                assert_int_equal(b->cls, c);
                v[n++] = off;
                off = *(uint32_t *)((uint8_t *) b + ARENA_HDR);
            }
        }
    }
    qsort(v, n, sizeof(uint64_t), u64_cmp);
    for (uint64_t i = 1; i < n; i++) {
        assert_true(v[i] != v[i - 1]);
    }
    free(v);
    return n;
}

/* Blocks carved out of partition p's bump area. */
static uint64_t
bump_area_blocks(fix_t *f, arena_part_t *p)
{
    uint64_t at = 0, n = 0;

    while (at < p->bump) {
        arena_blk_t *b = (arena_blk_t *)(f->map + p->start + at);
        if (b->gen == 0) {
            at += 64; /* alignment hole */
            continue;
        }
        assert_true(b->cls < ARENA_CLASSES);
        assert_int_equal(at % (class_size(b->cls) < 4096 ?
                               class_size(b->cls) : 4096), 0);
        at += class_size(b->cls);
        n++;
    }
    assert_int_equal(at, p->bump);
    return n;
}

/* Waiting for another process: spin, then yield, then nap (20 us), so
 * that a busy neighbour on the same CPU does not get a whole time slice
 * per round trip. */
static void
backoff(unsigned *n)
{
    unsigned k = (*n)++;

    if (k < 64) {
        return;
    }
    if (k < 64 + 8) {
        sched_yield();
        return;
    }
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
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
            if (!stress_check(x, l, m->seq)) {
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

    /* Partition 0 (owner's, small: constant reuse), partition 1 holds the
     * two rings. */
    size_t rb = ring_bytes(STRESS_CAP, sizeof(msg_t));
    fix_setup(&f, 2, 64 * 1024);
    assert_true(2 * rb <= f.a.parts[1].size);
    arena_part_t *p0 = &f.a.parts[0];
    ring_t *r[2];
    pid_t pid[2];
    for (int k = 0; k < 2; k++) {
        r[k] = (ring_t *)(f.map + f.a.parts[1].start + k * rb);
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
        through += class_size(expect_class(len));
        /* Every tenth block the owner also keeps a reference and drops it
         * at once: its own free goes through the same stack. */
        int keep = seq % 10 == 0;
        stress_fill(d, len, seq);
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
    assert_true(p0->bump <= p0->size);
    assert_true(through > 4 * p0->size);
    assert_int_equal(usage_blocks(&f.a), 0);
    assert_int_equal(usage_bytes(&f.a), 0);

    /* No block lost, none on a free list twice: the blocks on the local
     * and remote lists are exactly the blocks carved out of the bump area
     * (walked by their headers; alignment holes were never written). */
    assert_int_equal(free_list_blocks(&f, p0), bump_area_blocks(&f, p0));
    fix_teardown(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_distinct),
        cmocka_unit_test(test_size_classes),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_stale_and_reuse),
        cmocka_unit_test(test_forged),
        cmocka_unit_test(test_exhaustion),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_cross_process_free),
        cmocka_unit_test(test_cross_process_stress),
    };

    /* Refused handles are logged; the tests provoke many on purpose. */
    log_setup(LOG_T_DEFAULT & ~LOG_T_ERR, LOG_D_STDERR, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
