/*
 * test_ring.c -- the SPSC ring: layout and ring_check(), push/pop order, a
 * full ring, wrap-around (also across 2^32), batch commit/consume, and a
 * two-process stress test over a MAP_SHARED mapping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"
#include "shm_test_wait.h"

/* ---- helpers ---- */

/* A 32-byte record as the ingest and reply rings carry. */
typedef struct {
    uint64_t seq;
    uint64_t a;
    uint64_t b;
    uint64_t sum;
} rec_t;

static uint64_t
rec_sum(uint64_t seq, uint64_t a, uint64_t b)
{
    uint64_t x = seq * 0x9e3779b97f4a7c15ull ^ a;

    x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
    return x ^ b ^ (x >> 29);
}

static void
rec_fill(rec_t *r, uint64_t seq)
{
    r->seq = seq;
    r->a = seq * 7 + 3;
    r->b = ~seq;
    r->sum = rec_sum(r->seq, r->a, r->b);
}

static int
rec_ok(const rec_t *r, uint64_t seq)
{
    return r->seq == seq && r->a == seq * 7 + 3 && r->b == ~seq &&
           r->sum == rec_sum(r->seq, r->a, r->b);
}

/* A zeroed shared mapping big enough for a ring of cap records. */
static ring_t *
ring_map(uint32_t cap, uint32_t esize, size_t *bytes)
{
    size_t n = ring_bytes(cap, esize);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    assert_true(p != MAP_FAILED);
    if (bytes != NULL) {
        *bytes = n;
    }
    return p;
}

static void
ring_unmap(ring_t *r)
{
    assert_int_equal(munmap(r, ring_bytes(r->cap, r->esize)), 0);
}

/* Pushes one record; returns 0, or -1 when the ring is full. */
static int
push_one(ring_t *r, uint64_t seq)
{
    if (ring_space(r, 1) == 0) {
        return -1;
    }
    rec_fill(ring_slot(r, 0), seq);
    ring_commit(r, 1);
    return 0;
}

/* Pops one record into *out; returns 0, or -1 when the ring is empty. */
static int
pop_one(ring_t *r, rec_t *out)
{
    if (ring_count(r) == 0) {
        return -1;
    }
    memcpy(out, ring_peek(r, 0), sizeof(*out));
    ring_consume(r, 1);
    return 0;
}

/* ---- layout and checks ---- */

static void
test_layout(void **state)
{
    /* Header, producer and consumer each on their own cache line. */
    assert_int_equal(offsetof(ring_t, head), 64);
    assert_int_equal(offsetof(ring_t, tail), 128);
    assert_int_equal(offsetof(ring_t, data), 192);
    assert_int_equal(sizeof(ring_t) % 64, 0);

    assert_int_equal(ring_bytes(1, 32), 256);
    assert_int_equal(ring_bytes(1024, 32), 192 + 1024 * 32);
    assert_int_equal(ring_bytes(8, 4), 256);
    for (uint32_t cap = 1; cap <= 4096; cap <<= 1) {
        for (uint32_t es = 1; es <= 64; es++) {
            size_t n = ring_bytes(cap, es);
            assert_int_equal(n % 64, 0);
            assert_true(n >= sizeof(ring_t) + (size_t) cap * es);
            assert_true(n < sizeof(ring_t) + (size_t) cap * es + 64);
        }
    }
}

static void
test_init_check(void **state)
{
    size_t n;
    ring_t *r = ring_map(64, sizeof(rec_t), &n);

    ring_init(r, 64, sizeof(rec_t));
    assert_int_equal(r->magic, RING_MAGIC);
    assert_int_equal(r->cap, 64);
    assert_int_equal(r->mask, 63);
    assert_int_equal(r->esize, sizeof(rec_t));
    assert_int_equal(r->head, 0);
    assert_int_equal(r->tail, 0);
    assert_int_equal(ring_check(r, sizeof(rec_t), n), 0);
    assert_int_equal(ring_count(r), 0);
    assert_int_equal(ring_space(r, 1), 64);
    assert_int_equal(ring_used_producer(r), 0);

    /* Bad magic. */
    r->magic = 0x474e4952u;
    assert_int_equal(ring_check(r, sizeof(rec_t), n), -1);
    r->magic = 0;
    assert_int_equal(ring_check(r, sizeof(rec_t), n), -1);
    r->magic = RING_MAGIC;
    assert_int_equal(ring_check(r, sizeof(rec_t), n), 0);

    /* Record size other than expected. */
    assert_int_equal(ring_check(r, sizeof(uint32_t), n), -1);
    assert_int_equal(ring_check(r, sizeof(rec_t) + 1, n), -1);
    r->esize = 16;
    assert_int_equal(ring_check(r, sizeof(rec_t), n), -1);
    r->esize = sizeof(rec_t);

    /* Does not fit in the space given. */
    assert_int_equal(ring_check(r, sizeof(rec_t), n - 1), -1);
    assert_int_equal(ring_check(r, sizeof(rec_t), sizeof(ring_t)), -1);
    assert_int_equal(ring_check(r, sizeof(rec_t), 0), -1);
    assert_int_equal(ring_check(r, sizeof(rec_t), n + 4096), 0);

    /* Capacity not a power of two, zero, or mask inconsistent. */
    ring_init(r, 48, sizeof(rec_t));
    assert_int_equal(ring_check(r, sizeof(rec_t), n), -1);
    ring_init(r, 3, sizeof(rec_t));
    assert_int_equal(ring_check(r, sizeof(rec_t), n), -1);
    ring_init(r, 0, sizeof(rec_t));
    assert_int_equal(ring_check(r, sizeof(rec_t), n), -1);
    ring_init(r, 64, sizeof(rec_t));
    r->mask = 31;
    assert_int_equal(ring_check(r, sizeof(rec_t), n), -1);
    r->mask = 127;
    assert_int_equal(ring_check(r, sizeof(rec_t), n), -1);
    r->mask = 63;
    assert_int_equal(ring_check(r, sizeof(rec_t), n), 0);

    /* Damaged indexes: more records than the capacity, tail past head. */
    r->head = 65;
    r->tail = 0;
    assert_int_equal(ring_check(r, sizeof(rec_t), n), -1);
    r->head = 10;
    r->tail = 11;
    assert_int_equal(ring_check(r, sizeof(rec_t), n), -1);
    r->head = 1000064;
    r->tail = 1000000;
    assert_int_equal(ring_check(r, sizeof(rec_t), n), 0);

    /* ring_init() leaves a ring that was in use empty again. */
    ring_init(r, 64, sizeof(rec_t));
    assert_int_equal(ring_count(r), 0);
    assert_int_equal(ring_space(r, 64), 64);
    assert_int_equal(ring_check(r, sizeof(rec_t), n), 0);

    /* The smallest ring: one record. */
    ring_init(r, 1, sizeof(rec_t));
    assert_int_equal(ring_check(r, sizeof(rec_t), n), 0);
    assert_int_equal(push_one(r, 5), 0);
    assert_int_equal(push_one(r, 6), -1);
    rec_t out;
    assert_int_equal(pop_one(r, &out), 0);
    assert_true(rec_ok(&out, 5));
    assert_int_equal(pop_one(r, &out), -1);

    ring_unmap(r);
}

/* ---- one process ---- */

static void
test_push_pop_order(void **state)
{
    ring_t *r = ring_map(16, sizeof(rec_t), NULL);
    rec_t out;

    ring_init(r, 16, sizeof(rec_t));
    assert_int_equal(pop_one(r, &out), -1);

    for (uint64_t i = 0; i < 10; i++) {
        assert_int_equal(push_one(r, 100 + i), 0);
        assert_int_equal(ring_count(r), i + 1);
        assert_int_equal(ring_used_producer(r), i + 1);
    }
    for (uint64_t i = 0; i < 10; i++) {
        assert_int_equal(pop_one(r, &out), 0);
        assert_true(rec_ok(&out, 100 + i));
        assert_int_equal(ring_count(r), 9 - i);
    }
    assert_int_equal(pop_one(r, &out), -1);
    assert_int_equal(ring_used_producer(r), 0);
    assert_int_equal(ring_space(r, 16), 16);

    /* One in, one out, with one record always pending: order kept. */
    assert_int_equal(push_one(r, 0), 0);
    for (uint64_t i = 1; i < 100; i++) {
        assert_int_equal(push_one(r, i), 0);
        assert_int_equal(pop_one(r, &out), 0);
        assert_true(rec_ok(&out, i - 1));
        assert_int_equal(ring_count(r), 1);
    }
    assert_int_equal(pop_one(r, &out), 0);
    assert_true(rec_ok(&out, 99));
    assert_int_equal(pop_one(r, &out), -1);
    ring_unmap(r);
}

static void
test_interleaved(void **state)
{
    ring_t *r = ring_map(16, sizeof(rec_t), NULL);
    uint64_t in = 0, outn = 0;
    rec_t out;

    ring_init(r, 16, sizeof(rec_t));
    /* Two in, one out, until full; then drain: order is global. */
    while (ring_space(r, 2) >= 2) {
        assert_int_equal(push_one(r, in++), 0);
        assert_int_equal(push_one(r, in++), 0);
        assert_int_equal(pop_one(r, &out), 0);
        assert_true(rec_ok(&out, outn++));
    }
    assert_int_equal(ring_count(r), in - outn);
    while (pop_one(r, &out) == 0) {
        assert_true(rec_ok(&out, outn++));
    }
    assert_int_equal(in, outn);
    assert_true(in > 16);
    ring_unmap(r);
}

static void
test_full(void **state)
{
    const uint32_t cap = 32;
    ring_t *r = ring_map(cap, sizeof(rec_t), NULL);
    rec_t out;

    ring_init(r, cap, sizeof(rec_t));
    for (uint32_t i = 0; i < cap; i++) {
        assert_int_equal(ring_space(r, 1), cap - i);
        assert_int_equal(push_one(r, i), 0);
    }
    assert_int_equal(ring_space(r, 1), 0);
    assert_int_equal(ring_space(r, cap), 0);
    assert_int_equal(ring_used_producer(r), cap);
    assert_int_equal(ring_count(r), cap);
    assert_int_equal(push_one(r, 999), -1);
    assert_int_equal(push_one(r, 1000), -1);
    assert_int_equal(r->head, cap);

    /* Nothing was overwritten: every record, in order. */
    for (uint32_t i = 0; i < cap; i++) {
        assert_true(rec_ok(ring_peek(r, i), i));
    }

    /* One freed: room for exactly one more, which lands after the rest. */
    assert_int_equal(pop_one(r, &out), 0);
    assert_true(rec_ok(&out, 0));
    assert_int_equal(ring_space(r, 1), 1);
    assert_int_equal(push_one(r, cap), 0);
    assert_int_equal(ring_space(r, 1), 0);
    assert_int_equal(push_one(r, 999), -1);
    for (uint32_t i = 1; i <= cap; i++) {
        assert_int_equal(pop_one(r, &out), 0);
        assert_true(rec_ok(&out, i));
    }
    assert_int_equal(pop_one(r, &out), -1);
    assert_int_equal(ring_space(r, cap), cap);
    ring_unmap(r);
}

static void
test_space_cache(void **state)
{
    const uint32_t cap = 8;
    ring_t *r = ring_map(cap, sizeof(rec_t), NULL);

    ring_init(r, cap, sizeof(rec_t));
    for (uint32_t i = 0; i < cap; i++) {
        assert_int_equal(push_one(r, i), 0);
    }
    assert_int_equal(ring_space(r, 1), 0);

    /* The consumer frees 5; the producer sees at least what it needs. */
    assert_int_equal(ring_count(r), cap);
    ring_consume(r, 5);
    uint32_t s = ring_space(r, 1);
    assert_true(s >= 1 && s <= 5);
    assert_int_equal(ring_space(r, 5), 5);
    /* Asking for more than is free returns what is free, never more. */
    assert_int_equal(ring_space(r, 6), 5);
    assert_int_equal(ring_space(r, cap), 5);
    assert_int_equal(ring_used_producer(r), 3);
    ring_unmap(r);
}

static void
test_wraparound(void **state)
{
    const uint32_t cap = 8;
    ring_t *r = ring_map(cap, sizeof(rec_t), NULL);
    uint64_t in = 0, outn = 0;
    rec_t out;

    ring_init(r, cap, sizeof(rec_t));
    /* Varying fill levels so head and tail meet every slot in every
     * state, over many times the capacity. */
    for (uint32_t round = 0; round < 20000; round++) {
        uint32_t push = 1 + (round * 5) % cap;
        uint32_t pop = 1 + (round * 3) % cap;

        for (uint32_t i = 0; i < push; i++) {
            if (push_one(r, in) != 0) {
                assert_int_equal(ring_used_producer(r), cap);
                break;
            }
            in++;
        }
        for (uint32_t i = 0; i < pop; i++) {
            if (pop_one(r, &out) != 0) {
                assert_int_equal(in, outn);
                break;
            }
            assert_true(rec_ok(&out, outn));
            outn++;
        }
        assert_true(in - outn <= cap);
        assert_int_equal(ring_count(r), in - outn);
        assert_int_equal(ring_check(r, sizeof(rec_t),
                                    ring_bytes(cap, sizeof(rec_t))),
                         0);
    }
    while (pop_one(r, &out) == 0) {
        assert_true(rec_ok(&out, outn++));
    }
    assert_int_equal(in, outn);
    assert_true(in > 1000 * cap);
    assert_int_equal(r->head, in);
    assert_int_equal(r->tail, outn);
    ring_unmap(r);
}

/* Indexes are 64-bit and free-running: crossing 2^32 (four billion
 * records, a matter of hours on a busy ring) changes nothing. */
static void
test_wrap_u32(void **state)
{
    const uint32_t cap = 16;
    ring_t *r = ring_map(cap, sizeof(rec_t), NULL);
    uint64_t start = 0xfffffff0ull - 3, in, outn;
    rec_t out;

    ring_init(r, cap, sizeof(rec_t));
    r->head = r->tail = r->tail_cache = r->head_cache = start;
    in = outn = start;
    for (uint32_t round = 0; round < 200; round++) {
        for (uint32_t i = 0; i < 11; i++) {
            if (push_one(r, in) != 0) {
                break;
            }
            in++;
        }
        assert_true(in - outn <= cap);
        assert_int_equal(ring_count(r), in - outn);
        assert_int_equal(ring_used_producer(r), in - outn);
        for (uint32_t i = 0; i < 7; i++) {
            if (pop_one(r, &out) != 0) {
                break;
            }
            assert_true(rec_ok(&out, outn));
            outn++;
        }
    }
    while (pop_one(r, &out) == 0) {
        assert_true(rec_ok(&out, outn++));
    }
    assert_int_equal(in, outn);
    assert_true(in > 0x100000000ull + 1000);
    assert_int_equal(ring_space(r, cap), cap);
    ring_unmap(r);
}

static void
test_batch(void **state)
{
    const uint32_t cap = 64;
    ring_t *r = ring_map(cap, sizeof(rec_t), NULL);
    uint64_t in = 0, outn = 0;

    ring_init(r, cap, sizeof(rec_t));

    /* Records written through ring_slot() are invisible until committed. */
    assert_int_equal(ring_space(r, 10), cap);
    for (uint32_t i = 0; i < 10; i++) {
        rec_fill(ring_slot(r, i), in + i);
    }
    assert_int_equal(ring_count(r), 0);
    ring_commit(r, 10);
    in += 10;
    assert_int_equal(ring_count(r), 10);
    for (uint32_t i = 0; i < 10; i++) {
        assert_true(rec_ok(ring_peek(r, i), i));
    }

    /* Partial consume: the rest stays, the first left is next. */
    ring_consume(r, 4);
    outn += 4;
    assert_int_equal(ring_count(r), 6);
    assert_true(rec_ok(ring_peek(r, 0), 4));

    /* A batch that wraps: fill the ring to the brim in one commit. */
    uint32_t s = ring_space(r, cap - 6);
    assert_int_equal(s, cap - 6);
    for (uint32_t i = 0; i < s; i++) {
        rec_fill(ring_slot(r, i), in + i);
    }
    ring_commit(r, s);
    in += s;
    assert_int_equal(ring_space(r, 1), 0);
    assert_int_equal(ring_count(r), cap);
    for (uint32_t i = 0; i < cap; i++) {
        assert_true(rec_ok(ring_peek(r, i), outn + i));
    }
    ring_consume(r, cap);
    outn += cap;
    assert_int_equal(ring_count(r), 0);

    /* Many batches of every size, consumed in batches of other sizes. */
    for (uint32_t round = 0; round < 5000; round++) {
        uint32_t want = 1 + (round * 13) % cap;
        uint32_t got = ring_space(r, want);
        uint32_t n = got < want ? got : want;

        for (uint32_t i = 0; i < n; i++) {
            rec_fill(ring_slot(r, i), in + i);
        }
        ring_commit(r, n);
        in += n;

        uint32_t avail = ring_count(r);
        uint32_t take = 1 + (round * 7) % cap;
        if (take > avail) {
            take = avail;
        }
        assert_int_equal(avail, in - outn);
        for (uint32_t i = 0; i < take; i++) {
            assert_true(rec_ok(ring_peek(r, i), outn + i));
        }
        ring_consume(r, take);
        outn += take;
    }
    uint32_t avail = ring_count(r);
    for (uint32_t i = 0; i < avail; i++) {
        assert_true(rec_ok(ring_peek(r, i), outn + i));
    }
    ring_consume(r, avail);
    outn += avail;
    assert_int_equal(in, outn);
    assert_true(in > 50 * cap);
    ring_unmap(r);
}

/* Small records (the notify rings carry 4-byte slot numbers). */
static void
test_small_records(void **state)
{
    const uint32_t cap = 128;
    ring_t *r = ring_map(cap, sizeof(uint32_t), NULL);
    uint32_t in = 0, outn = 0;

    ring_init(r, cap, sizeof(uint32_t));
    assert_int_equal(ring_check(r, sizeof(uint32_t),
                                ring_bytes(cap, sizeof(uint32_t))),
                     0);
    for (uint32_t round = 0; round < 1000; round++) {
        uint32_t n = ring_space(r, 1);
        n = n > 37 ? 37 : n;
        for (uint32_t i = 0; i < n; i++) {
            *(uint32_t *) ring_slot(r, i) = in + i;
        }
        ring_commit(r, n);
        in += n;
        uint32_t c = ring_count(r);
        c = c > 29 ? 29 : c;
        for (uint32_t i = 0; i < c; i++) {
            assert_int_equal(*(uint32_t *) ring_peek(r, i), outn + i);
        }
        ring_consume(r, c);
        outn += c;
    }
    /* Records are packed: slot i sits at data + i * 4. */
    assert_ptr_equal(ring_slot(r, 0),
                     r->data + (size_t)(r->head & r->mask) * 4);
    ring_unmap(r);
}

/* ---- two processes ---- */

enum {
    CHILD_OK = 0,
    CHILD_ORDER = 10,    /* a record out of sequence */
    CHILD_CHECKSUM = 11, /* a record with the right number, damaged */
    CHILD_COUNT = 12,    /* records after the end, or a wrong count */
    CHILD_CHECK = 13,    /* ring_check() failed in the child */
    CHILD_STALL = 14     /* nothing came for STALL_MS: the parent is stuck */
};

#define STALL_MS 10000u

/* The producer's last record: seq SEQ_END, a = how many came before it. */
#define SEQ_END UINT64_MAX

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Consumer: checks every record until the end record, exits with a code
 * (the parent asserts it). */
static void
stress_consumer(ring_t *r, uint32_t max_batch)
{
    uint64_t next = 0, idle_since = now_ms();
    unsigned spins = 0;

    /* Never outlive a parent that died or failed its test. */
    (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(60);
    if (ring_check(r, sizeof(rec_t), ring_bytes(r->cap, sizeof(rec_t))) != 0) {
        _exit(CHILD_CHECK);
    }
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
        if (n > r->cap) {
            _exit(CHILD_COUNT);
        }
        if (n > max_batch) {
            n = max_batch;
        }
        for (uint32_t i = 0; i < n; i++) {
            const rec_t *x = ring_peek(r, i);
            if (x->seq == SEQ_END) {
                /* The count it carries matches, and nothing follows. */
                if (x->a != next + i || x->b != ~x->a ||
                    x->sum != rec_sum(x->seq, x->a, x->b) ||
                    ring_count(r) != i + 1) {
                    _exit(CHILD_COUNT);
                }
                ring_consume(r, i + 1);
                usleep(1000);
                _exit(ring_count(r) == 0 ? CHILD_OK : CHILD_COUNT);
            }
            if (x->seq != next + i) {
                _exit(CHILD_ORDER);
            }
            if (!rec_ok(x, next + i)) {
                _exit(CHILD_CHECKSUM);
            }
        }
        ring_consume(r, n);
        next += n;
    }
}

/*
 * Producer in this process, consumer in a child, over a MAP_SHARED ring:
 * total records, as fast as the producer can, in batches of up to
 * max_batch.  On an overloaded machine the producer stops early after
 * budget_ms (never below total / 100 records): the run is then shorter,
 * not weaker, as every record sent is still checked.
 */
static void
stress_run(uint32_t cap, uint64_t total, uint32_t max_batch,
           uint64_t budget_ms)
{
    ring_t *r = ring_map(cap, sizeof(rec_t), NULL);
    int status;

    ring_init(r, cap, sizeof(rec_t));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        stress_consumer(r, max_batch);
    }

    uint64_t seq = 0, deadline = now_ms() + budget_ms;
    unsigned spins = 0, round = 0;
    int child_gone = 0, ended = 0, late = 0;
    while (!ended) {
        uint32_t want = 1 + (round++ % max_batch);
        uint32_t n = ring_space(r, want);
        if (n == 0) {
            /* Full: wait for the consumer, unless it is gone. */
            backoff(&spins);
            if (spins % 64 == 0) {
                if (waitpid(pid, &status, WNOHANG) == pid) {
                    child_gone = 1;
                    break;
                }
                late = late || now_ms() > deadline;
            }
            continue;
        }
        spins = 0;
        if ((round & 1023) == 0) {
            late = late || now_ms() > deadline;
        }
        if (seq == total || (late && seq >= total / 100)) {
            rec_t *e = ring_slot(r, 0);
            e->seq = SEQ_END;
            e->a = seq;
            e->b = ~seq;
            e->sum = rec_sum(e->seq, e->a, e->b);
            ring_commit(r, 1);
            ended = 1;
            break;
        }
        if (n > want) {
            n = want;
        }
        if (n > total - seq) {
            n = (uint32_t)(total - seq);
        }
        for (uint32_t i = 0; i < n; i++) {
            rec_fill(ring_slot(r, i), seq + i);
        }
        ring_commit(r, n);
        seq += n;
    }
    if (!child_gone) {
        assert_int_equal(waitpid(pid, &status, 0), pid);
    }
    if (WIFSIGNALED(status)) {
        fail_msg("consumer killed by signal %d", WTERMSIG(status));
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), CHILD_OK);
    assert_true(ended);
    assert_true(seq <= total);
    assert_true(seq >= total / 100);
    assert_int_equal(r->tail, seq + 1);
    if (seq < total) {
        print_message("  (machine busy: %llu of %llu records in %llu ms)\n",
                      (unsigned long long) seq,
                      (unsigned long long) total,
                      (unsigned long long) budget_ms);
    }
    ring_unmap(r);
}

static void
test_stress_two_procs(void **state)
{
    stress_run(1024, 5000000, 64, 3000);
}

/* A tiny ring: the producer is full most of the time, every index
 * comparison happens at the edge. */
static void
test_stress_tiny_ring(void **state)
{
    stress_run(4, 500000, 4, 1500);
}

/* One record at a time on a mid-size ring. */
static void
test_stress_single(void **state)
{
    stress_run(64, 1000000, 1, 1500);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_init_check),
        cmocka_unit_test(test_push_pop_order),
        cmocka_unit_test(test_interleaved),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_space_cache),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_wrap_u32),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_small_records),
        cmocka_unit_test(test_stress_two_procs),
        cmocka_unit_test(test_stress_tiny_ring),
        cmocka_unit_test(test_stress_single),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
