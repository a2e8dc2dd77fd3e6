/*
 * test_sess.c -- a session slot's inflight table (shm/sess.c): FIFO order,
 * packet ids, holes from out-of-order acknowledgements, position reset and
 * renormalisation (positions never wrap), clearing; and the references a
 * process holds as a count (shm_held_add(), shm_held_release()); the
 * broadcast rings' layout.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shm.h"

#define MAX_INF 20

static shm_t s;

static int setup(void **state)
{
    (void)state;
    shm_params_t p = {.n_fe = 1, .n_fo = 1, .max_clients = 4,
                      .max_inflight = MAX_INF, .max_queued = 16,
                      .ingest_cap = 64, .arena_size = 4u << 20};
    return shm_create(&s, &p);
}

static int teardown(void **state)
{
    (void)state;
    munmap(s.base, s.hdr->total_size);
    close(s.fd);
    return 0;
}

/* A message block for an entry to hold. */
static arena_h msg(void)
{
    void *d;
    arena_h h = arena_alloc(&s.arena, &s.arena.parts[0], 10, &d);
    assert_true(h != 0);
    return h;
}

static uint64_t blocks(void)
{
    uint64_t b, by;
    arena_usage(&s.arena, &b, &by);
    return b;
}

static void test_fifo_order_and_ids(void **state)
{
    (void)state;
    sess_slot_t *sl = shm_slot(&s, 0);
    uint16_t pids[MAX_INF];
    for (int i = 0; i < MAX_INF; i++) {
        assert_true(sess_inf_room(&s, 0));
        sess_inflight_t *e = sess_inf_add(&s, 0, 1, 0, msg(), 0, 0, 0);
        pids[i] = e->pid;
        assert_true(e->pid != 0);
        for (int j = 0; j < i; j++)
            assert_true(pids[j] != e->pid);
    }
    assert_false(sess_inf_room(&s, 0)); /* window full */
    assert_int_equal(sl->n_inflight, MAX_INF);
    /* in send order from the head */
    for (int i = 0; i < MAX_INF; i++)
        assert_int_equal(sess_inf_at(&s, 0, sl->inf_head + i)->pid, pids[i]);
    /* ids not in flight are not found, in a long FIFO (the bitmap
     * answers) and in a short one (the scan does) */
    assert_null(sess_inf_find(&s, 0, (uint16_t)(pids[MAX_INF - 1] + 1)));
    assert_null(sess_inf_find(&s, 0, 0xFFFF));
    /* out of order: a hole, then the head catches up over it */
    sess_inf_done(&s, 0, sess_inf_find(&s, 0, pids[1]));
    assert_null(sess_inf_find(&s, 0, pids[1]));
    assert_int_equal(sl->inf_tail - sl->inf_head, MAX_INF);
    sess_inf_done(&s, 0, sess_inf_find(&s, 0, pids[0]));
    assert_int_equal(sl->inf_tail - sl->inf_head, MAX_INF - 2);
    for (int i = 2; i < MAX_INF; i++) {
        assert_null(sess_inf_find(&s, 0, pids[i - 1]));
        sess_inf_done(&s, 0, sess_inf_find(&s, 0, pids[i]));
    }
    assert_int_equal(sl->n_inflight, 0);
    assert_int_equal(sl->inf_head, 0); /* reset when empty */
    assert_int_equal(sl->inf_tail, 0);
    assert_int_equal(blocks(), 0);
}

static void test_positions_never_wrap(void **state)
{
    (void)state;
    sess_slot_t *sl = shm_slot(&s, 0);
    /* Always one message in flight: the table never empties, so only
     * renormalisation keeps the positions small.  Acknowledged in order,
     * one million times; the oldest must always be found by its pid. */
    sess_inflight_t *e = sess_inf_add(&s, 0, 1, 0, msg(), 0, 0, 0);
    uint16_t oldest = e->pid;
    for (int i = 0; i < 1000000; i++) {
        e = sess_inf_add(&s, 0, 1, 0, msg(), 0, 0, 0);
        uint16_t next = e->pid;
        sess_inflight_t *o = sess_inf_find(&s, 0, oldest);
        assert_non_null(o);
        assert_ptr_equal(o, sess_inf_at(&s, 0, sl->inf_head));
        sess_inf_done(&s, 0, o);
        oldest = next;
        assert_true(sl->inf_tail <= 2 * MAX_INF + 1);
        assert_int_equal(sl->n_inflight, 1);
    }
    sess_inf_done(&s, 0, sess_inf_find(&s, 0, oldest));
    assert_int_equal(blocks(), 0);
    /* every packet id bit is clear again */
    for (int i = 0; i < SHM_QOS2_BITMAP; i++)
        assert_int_equal(sess_pids(&s, 0)[i], 0);
}

static void test_clear(void **state)
{
    (void)state;
    sess_slot_t *sl = shm_slot(&s, 0);
    for (int i = 0; i < 7; i++)
        sess_inf_add(&s, 0, 2, 1, msg(), 0, 0, 0);
    sess_inf_done(&s, 0, sess_inf_at(&s, 0, sl->inf_head + 3));
    sess_inf_clear(&s, 0);
    assert_int_equal(sl->n_inflight, 0);
    assert_int_equal(sl->inf_tail, 0);
    assert_int_equal(blocks(), 0);
    for (int i = 0; i < SHM_QOS2_BITMAP; i++)
        assert_int_equal(sess_pids(&s, 0)[i], 0);
}

/* A holder killed between adding an entry and consuming its record:
 * the record's reference belongs to the entry; sess_repair() consumes the
 * record without releasing it.  Count, positions and ids come back. */
static void test_repair_after_kill(void **state)
{
    (void)state;
    sess_slot_t *sl = shm_slot(&s, 1);
    ring_t *r = sess_ring(&s, 1);
    ring_init(r, s.hdr->out_cap, sizeof(out_rec_t));
    /* Two messages taken properly, one taken but not consumed. */
    for (int i = 0; i < 3; i++) {
        out_rec_t o = {.h = msg(), .type = OUT_DELIVER, .qos = 1};
        memcpy(ring_slot(r, 0), &o, sizeof(o));
        ring_commit(r, 1);
        assert_int_equal(ring_count(r), 1);
        sess_inf_add(&s, 1, 1, 0, o.h, (uint32_t)r->tail, 0, 0);
        if (i < 2)
            ring_consume(r, 1);
    }
    /* A record not taken at all stays. */
    out_rec_t o = {.h = msg(), .type = OUT_DELIVER, .qos = 1};
    memcpy(ring_slot(r, 0), &o, sizeof(o));
    ring_commit(r, 1);
    uint64_t before = blocks();
    /* Torn counters as a kill could leave them. */
    sl->n_inflight = 99;
    sess_pids(&s, 1)[100] = 0xff;
    sl->inf_tail += MAX_INF; /* the rebase's second store never happened */
    assert_int_equal(sess_repair(&s, 1), 3);
    assert_int_equal(sl->n_inflight, 3);
    assert_int_equal(sl->inf_tail - sl->inf_head, 3);
    assert_int_equal(sess_pids(&s, 1)[100], 0);
    assert_int_equal(ring_count(r), 1); /* only the untaken record */
    assert_int_equal(((out_rec_t *)ring_peek(r, 0))->h, o.h);
    assert_int_equal(blocks(), before); /* nothing released */
    /* Repair again changes nothing (a new holder may die too). */
    assert_int_equal(sess_repair(&s, 1), 3);
    assert_int_equal(ring_count(r), 1);
    sess_inf_clear(&s, 1);
    arena_release(&s.arena, o.h);
    ring_consume(r, 1);
    assert_int_equal(blocks(), 0);
}

/* The same with a delivery's OUT_SUBID records before it: the entry
 * names the delivery's position, and repair consumes the identifiers
 * with it; an entry whose record was consumed leaves the ring alone. */
static void test_repair_with_subids(void **state)
{
    (void)state;
    ring_t *r = sess_ring(&s, 2);
    ring_init(r, s.hdr->out_cap, sizeof(out_rec_t));
    out_rec_t id1 = {.type = OUT_SUBID, .aux = 7};
    out_rec_t id2 = {.type = OUT_SUBID, .aux = 8};
    out_rec_t o = {.h = msg(), .type = OUT_DELIVER, .qos = 1, .aux = 6};
    out_rec_t next = {.type = OUT_SUBID, .aux = 9};
    const out_rec_t *recs[] = {&id1, &id2, &o, &next};
    for (int i = 0; i < 4; i++) {
        memcpy(ring_slot(r, 0), recs[i], sizeof(out_rec_t));
        ring_commit(r, 1);
    }
    /* Taken (entry at the delivery's position), not consumed. */
    sess_inf_add(&s, 2, 1, 0, o.h, (uint32_t)r->tail + 2, 6, 0);
    uint64_t before = blocks();
    assert_int_equal(sess_repair(&s, 2), 1);
    assert_int_equal(ring_count(r), 1); /* the next delivery's identifier */
    assert_int_equal(((out_rec_t *)ring_peek(r, 0))->aux, 9);
    assert_int_equal(blocks(), before);
    assert_int_equal(sess_repair(&s, 2), 1);
    assert_int_equal(ring_count(r), 1);
    ring_consume(r, 1);
    sess_inf_clear(&s, 2);
    assert_int_equal(blocks(), 0);
}

/* Packet ids cycle through 1 .. pid_range - 1 (1024 for a window of 20:
 * a 128-byte bitmap), skip ids still in flight when they come round, and
 * an acknowledgement naming an id outside the range finds nothing (and
 * reads no byte beyond the bitmap). */
static void test_pid_range(void **state)
{
    (void)state;
    uint32_t range = s.hdr->pid_range;
    assert_int_equal(range, 1024);
    assert_true(s.hdr->slot_off_ring - s.hdr->slot_off_pids >= range / 8);
    sess_slot_t *sl = shm_slot(&s, 1);
    sl->next_pid = 0; /* a new session */
    for (uint32_t i = 1; i < 3 * range; i++) {
        sess_inflight_t *e = sess_inf_add(&s, 1, 1, 0, msg(), 0, 0, 0);
        assert_int_equal(e->pid, (i - 1) % (range - 1) + 1);
        sess_inf_done(&s, 1, sess_inf_find(&s, 1, e->pid));
    }
    /* Coming round, an id still in flight is skipped (as is 0). */
    sl->next_pid = 0;
    sess_inflight_t *first = sess_inf_add(&s, 1, 1, 0, msg(), 0, 0, 0);
    assert_int_equal(first->pid, 1);
    sl->next_pid = (uint16_t)(range - 2);
    sess_inflight_t *e = sess_inf_add(&s, 1, 1, 0, msg(), 0, 0, 0);
    assert_int_equal(e->pid, range - 1);
    e = sess_inf_add(&s, 1, 1, 0, msg(), 0, 0, 0);
    assert_int_equal(e->pid, 2);
    /* a long FIFO, so that the bitmap answers: ids beyond the range */
    for (int i = 0; i < MAX_INF - 3; i++)
        sess_inf_add(&s, 1, 1, 0, msg(), 0, 0, 0);
    assert_false(sess_inf_room(&s, 1));
    assert_true(sl->inf_tail - sl->inf_head > 4);
    assert_null(sess_inf_find(&s, 1, (uint16_t)range));
    assert_null(sess_inf_find(&s, 1, 0xFFFF));
    assert_non_null(sess_inf_find(&s, 1, 1));
    sess_inf_clear(&s, 1);
    assert_int_equal(sl->n_inflight, 0);
    assert_int_equal(blocks(), 0);
}

/* A count holds one message's references; another message's reference
 * releases it first, and the count is released in one go. */
static void test_held_batches(void **state)
{
    (void)state;
    proc_t *p = shm_fe_proc(&s, 0);
    arena_h a = msg(), b = msg();
    arena_ref_add(&s.arena, a, 3); /* four in all: three are "delivered" */
    for (int i = 0; i < 3; i++)
        shm_held_add(&s, p, a);
    assert_int_equal(p->held_n, 3);
    assert_true(p->held_h == a);
    assert_int_equal(blocks(), 2);
    shm_held_add(&s, p, b); /* a's three released, b's one counted */
    assert_true(p->held_h == b);
    assert_int_equal(p->held_n, 1);
    assert_non_null(arena_get(&s.arena, a, NULL));
    assert_int_equal(blocks(), 2);
    shm_held_release(&s, p); /* b's last reference: freed */
    assert_int_equal(p->held_n, 0);
    assert_null(arena_get(&s.arena, b, NULL));
    assert_int_equal(blocks(), 1);
    shm_held_release(&s, p); /* nothing left to release */
    assert_int_equal(blocks(), 1);
    arena_release(&s.arena, a);
    assert_int_equal(blocks(), 0);
}

/* What a killed process left in its count is released by the next
 * incarnation, once; arena_release_n() frees on the last of n. */
static void test_held_left_by_a_kill(void **state)
{
    (void)state;
    proc_t *p = shm_fo_proc(&s, 0);
    arena_h h = msg();
    arena_ref_add(&s.arena, h, 999); /* a fan-out to 1000 */
    p->held_h = h;                   /* ... killed after 400 pushes */
    p->held_n = 600;
    arena_release_n(&s.arena, h, 399); /* 399 of the 400 written */
    assert_int_equal(blocks(), 1);
    shm_held_release(&s, p); /* the new incarnation */
    assert_int_equal(p->held_n, 0);
    assert_non_null(arena_get(&s.arena, h, NULL)); /* one still queued */
    shm_held_release(&s, p);
    assert_non_null(arena_get(&s.arena, h, NULL));
    arena_release_n(&s.arena, h, 1);
    assert_null(arena_get(&s.arena, h, NULL));
    assert_int_equal(blocks(), 0);
}

/* The broadcast rings (docs/architecture.md, "QoS 0 to many"): one per
 * worker and frontend, 16-byte records, at least 1024 of them, each a
 * separate ring, and the array of the hosts' broadcast generations;
 * shm_check() refuses a damaged ring. */
static void test_bcast_rings(void **state)
{
    (void)state;
    assert_int_equal(sizeof(bc_rec_t), 16);
    assert_int_equal(shm_check(&s), 0);
    ring_t *b = shm_bcast(&s, 0, 0);
    assert_int_equal(b->esize, sizeof(bc_rec_t));
    assert_true(b->cap >= 1024 && (b->cap & (b->cap - 1)) == 0);
    assert_true((uint8_t *)b >= s.base + s.hdr->off_bcast &&
                (uint8_t *)b + s.hdr->bcast_stride <=
                    s.base + s.hdr->off_slots);
    /* a group: BC_TO records, then the BC_MSG that closes it */
    bc_rec_t to = {.u.to = {.slot = 3, .conn_gen = 7}, .aux = 42,
                   .type = BC_TO, .flags = OUT_F_RETAIN};
    bc_rec_t end = {.u.h = 0x1234, .aux = 1, .type = BC_MSG};
    memcpy(ring_slot(b, 0), &to, sizeof(to));
    memcpy(ring_slot(b, 1), &end, sizeof(end));
    ring_commit(b, 2);
    const bc_rec_t *last = ring_last(b);
    assert_int_equal(last->type, BC_MSG);
    assert_int_equal(last->u.h, 0x1234);
    const bc_rec_t *t = ring_at(b, b->head - 2, b->head - 2);
    assert_int_equal(t->u.to.slot, 3);
    assert_int_equal(t->u.to.conn_gen, 7);
    assert_int_equal(ring_count(b), 2);
    ring_consume(b, 2);
    /* the hosts' broadcast generations: one dense array, zero at start */
    uint32_t *g0 = shm_bc_gen(&s, 0), *gl = shm_bc_gen(&s, 3);
    assert_true((uint8_t *)g0 >= s.base + s.hdr->off_bc_gen &&
                (uint8_t *)(gl + 1) <= s.base + s.hdr->off_slots);
    assert_int_equal(gl - g0, 3);
    assert_int_equal(*g0, 0);
    assert_int_equal(*gl, 0);
    uint32_t magic = b->magic;
    b->magic = 0;
    assert_int_equal(shm_check(&s), -1);
    b->magic = magic;
    assert_int_equal(shm_check(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order_and_ids),
        cmocka_unit_test(test_positions_never_wrap),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_repair_after_kill),
        cmocka_unit_test(test_repair_with_subids),
        cmocka_unit_test(test_pid_range),
        cmocka_unit_test(test_held_batches),
        cmocka_unit_test(test_held_left_by_a_kill),
        cmocka_unit_test(test_bcast_rings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
