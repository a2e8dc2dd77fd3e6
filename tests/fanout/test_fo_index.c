/*
 * test_fo_index.c -- the fan-out subscription index: add, replace, remove,
 * one report per matching (filter, slot), the '$' rule, large fan-out on one
 * node, deep trees, and a randomized cross-check against topic_matches().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fo_index.h"
#include "mem.h"
#include "topic.h"

/* ---- helpers ---- */

typedef struct {
    uint32_t slot;
    uint8_t qos;
    uint32_t sub_id;
} hit_t;

typedef struct {
    hit_t *v;
    size_t n;
    size_t cap;
} hits_t;

static void
hits_push(hits_t *h, uint32_t slot, uint8_t qos)
{
    if (h->n == h->cap) {
        h->cap = h->cap != 0 ? h->cap * 2 : 64;
        h->v = realloc(h->v, h->cap * sizeof(hit_t));
        assert_non_null(h->v);
    }
    h->v[h->n].slot = slot;
    h->v[h->n].qos = qos;
    h->n++;
}

static void
collect(void *arg, uint32_t slot, uint8_t qos, uint32_t sub_id)
{
    hits_t *h = arg;

    hits_push(h, slot, qos);
    h->v[h->n - 1].sub_id = sub_id;
}

static int
hit_cmp(const void *a, const void *b)
{
    const hit_t *x = a, *y = b;

    if (x->slot != y->slot) {
        return x->slot < y->slot ? -1 : 1;
    }
    return (int) x->qos - (int) y->qos;
}

static void
hits_sort(hits_t *h)
{
    if (h->n > 1) {
        qsort(h->v, h->n, sizeof(hit_t), hit_cmp);
    }
}

static void
hits_free(hits_t *h)
{
    free(h->v);
    memset(h, 0, sizeof(*h));
}

/* Matches topic and returns the sorted hits; mem_used() must not move. */
static void
match(const fo_index_t *ix, const char *topic, hits_t *h)
{
    size_t before;

    h->n = 0;
    before = mem_used();
    fo_index_match(ix, topic, strlen(topic), collect, h);
    assert_int_equal(mem_used(), before);
    hits_sort(h);
}

static int
add(fo_index_t *ix, const char *filter, uint32_t slot, uint8_t qos)
{
    return fo_index_add(ix, filter, strlen(filter), slot, qos, 0);
}

static int
del(fo_index_t *ix, const char *filter, uint32_t slot)
{
    return fo_index_remove(ix, filter, strlen(filter), slot);
}

/* Asserts that topic yields exactly the n (slot, qos) pairs in want. */
static void
expect_hits(const fo_index_t *ix, const char *topic, const hit_t *want,
            size_t n)
{
    hits_t h = { 0 };
    hit_t *w;
    size_t i;

    w = malloc((n != 0 ? n : 1) * sizeof(hit_t));
    assert_non_null(w);
    if (n > 0) {
        memcpy(w, want, n * sizeof(hit_t));
    }
    if (n > 1) {
        qsort(w, n, sizeof(hit_t), hit_cmp);
    }

    match(ix, topic, &h);
    if (h.n != n) {
        fail_msg("topic \"%s\": %zu hits, expected %zu", topic, h.n, n);
    }
    for (i = 0; i < n; i++) {
        if (h.v[i].slot != w[i].slot || h.v[i].qos != w[i].qos) {
            fail_msg("topic \"%s\" hit %zu: (%u,%u), expected (%u,%u)",
                     topic, i, h.v[i].slot, h.v[i].qos, w[i].slot,
                     w[i].qos);
        }
    }
    hits_free(&h);
    free(w);
}

/* xorshift64*: deterministic, so a failure can be replayed */
static uint64_t rng_state;

static uint32_t
rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t) ((rng_state * 2685821657736338717ull) >> 32);
}

static uint32_t
rng_below(uint32_t n)
{
    return rng() % n;
}

/* ---- tests ---- */

static void
test_empty(void **state)
{
    fo_index_t *ix;

    (void) state;

    ix = fo_index_new();
    assert_non_null(ix);
    assert_int_equal(fo_index_count(ix), 0);
    expect_hits(ix, "a/b", NULL, 0);
    expect_hits(ix, "$SYS/x", NULL, 0);
    assert_int_equal(del(ix, "a/b", 1), 0);
    fo_index_free(ix);
    fo_index_free(NULL);
}

static void
test_add_replace_remove(void **state)
{
    fo_index_t *ix;
    size_t base;

    (void) state;

    ix = fo_index_new();
    base = mem_used();

    assert_int_equal(add(ix, "sport/tennis/player1", 7, 1), 1);
    assert_int_equal(fo_index_count(ix), 1);
    expect_hits(ix, "sport/tennis/player1", (hit_t[]) { { 7, 1 } }, 1);
    expect_hits(ix, "sport/tennis", NULL, 0);
    expect_hits(ix, "sport/tennis/player1/x", NULL, 0);

    /* same (filter, slot): QoS replaced, not a second subscription */
    assert_int_equal(add(ix, "sport/tennis/player1", 7, 2), 0);
    assert_int_equal(fo_index_count(ix), 1);
    expect_hits(ix, "sport/tennis/player1", (hit_t[]) { { 7, 2 } }, 1);

    /* another slot on the same filter, and a prefix filter */
    assert_int_equal(add(ix, "sport/tennis/player1", 8, 0), 1);
    assert_int_equal(add(ix, "sport/tennis", 7, 0), 1);
    assert_int_equal(fo_index_count(ix), 3);
    expect_hits(ix, "sport/tennis/player1",
                (hit_t[]) { { 7, 2 }, { 8, 0 } }, 2);
    expect_hits(ix, "sport/tennis", (hit_t[]) { { 7, 0 } }, 1);

    /* removing what is not there changes nothing */
    assert_int_equal(del(ix, "sport/tennis/player1", 9), 0);
    assert_int_equal(del(ix, "sport/tennis/player2", 7), 0);
    assert_int_equal(del(ix, "sport", 7), 0);
    assert_int_equal(del(ix, "sport/+/player1", 7), 0);
    assert_int_equal(del(ix, "sport/tennis/player1/#", 7), 0);
    assert_int_equal(fo_index_count(ix), 3);

    assert_int_equal(del(ix, "sport/tennis/player1", 7), 1);
    assert_int_equal(del(ix, "sport/tennis/player1", 7), 0);
    assert_int_equal(fo_index_count(ix), 2);
    expect_hits(ix, "sport/tennis/player1", (hit_t[]) { { 8, 0 } }, 1);

    assert_int_equal(del(ix, "sport/tennis", 7), 1);
    expect_hits(ix, "sport/tennis", NULL, 0);
    expect_hits(ix, "sport/tennis/player1", (hit_t[]) { { 8, 0 } }, 1);
    assert_int_equal(del(ix, "sport/tennis/player1", 8), 1);
    assert_int_equal(fo_index_count(ix), 0);
    expect_hits(ix, "sport/tennis/player1", NULL, 0);

    /* every node freed again */
    assert_int_equal(mem_used(), base);

    /* wildcards and empty levels come and go the same way */
    assert_int_equal(add(ix, "+/+", 1, 0), 1);
    assert_int_equal(add(ix, "#", 1, 1), 1);
    assert_int_equal(add(ix, "a//#", 1, 2), 1);
    assert_int_equal(add(ix, "/", 2, 0), 1);
    expect_hits(ix, "/", (hit_t[]) { { 1, 0 }, { 1, 1 }, { 2, 0 } }, 3);
    expect_hits(ix, "a/", (hit_t[]) { { 1, 0 }, { 1, 1 }, { 1, 2 } }, 3);
    assert_int_equal(del(ix, "+/+", 1), 1);
    assert_int_equal(del(ix, "#", 1), 1);
    assert_int_equal(del(ix, "a//#", 1), 1);
    assert_int_equal(del(ix, "/", 2), 1);
    assert_int_equal(fo_index_count(ix), 0);
    assert_int_equal(mem_used(), base);

    fo_index_free(ix);
}

static void
test_overlapping_filters(void **state)
{
    fo_index_t *ix;

    (void) state;

    ix = fo_index_new();

    /* slot 1 through five filters, slot 2 through two, slot 3 through one */
    assert_int_equal(add(ix, "a/b", 1, 0), 1);
    assert_int_equal(add(ix, "a/+", 1, 1), 1);
    assert_int_equal(add(ix, "a/#", 1, 2), 1);
    assert_int_equal(add(ix, "#", 1, 0), 1);
    assert_int_equal(add(ix, "+/b", 1, 1), 1);
    assert_int_equal(add(ix, "a/+", 2, 2), 1);
    assert_int_equal(add(ix, "+/#", 2, 0), 1);
    assert_int_equal(add(ix, "a/b/c", 3, 0), 1);
    assert_int_equal(fo_index_count(ix), 8);

    expect_hits(ix, "a/b",
                (hit_t[]) { { 1, 0 }, { 1, 1 }, { 1, 2 }, { 1, 0 }, { 1, 1 },
                            { 2, 2 }, { 2, 0 } },
                7);
    expect_hits(ix, "a",
                (hit_t[]) { { 1, 2 }, { 1, 0 }, { 2, 0 } }, 3);
    expect_hits(ix, "a/b/c",
                (hit_t[]) { { 1, 2 }, { 1, 0 }, { 2, 0 }, { 3, 0 } }, 4);
    expect_hits(ix, "x/b", (hit_t[]) { { 1, 0 }, { 1, 1 }, { 2, 0 } }, 3);
    expect_hits(ix, "x", (hit_t[]) { { 1, 0 }, { 2, 0 } }, 2);

    fo_index_free(ix);
}

static void
test_spec_examples(void **state)
{
    fo_index_t *ix;

    (void) state;

    ix = fo_index_new();

    add(ix, "sport/tennis/player1/#", 1, 0);
    add(ix, "sport/#", 2, 0);
    add(ix, "sport/tennis/+", 3, 0);
    add(ix, "sport/+", 4, 0);
    add(ix, "+/+", 5, 0);
    add(ix, "/+", 6, 0);
    add(ix, "+", 7, 0);

    expect_hits(ix, "sport/tennis/player1",
                (hit_t[]) { { 1, 0 }, { 2, 0 }, { 3, 0 } }, 3);
    expect_hits(ix, "sport/tennis/player1/ranking",
                (hit_t[]) { { 1, 0 }, { 2, 0 } }, 2);
    expect_hits(ix, "sport/tennis/player1/score/wimbledon",
                (hit_t[]) { { 1, 0 }, { 2, 0 } }, 2);
    expect_hits(ix, "sport", (hit_t[]) { { 2, 0 }, { 7, 0 } }, 2);
    expect_hits(ix, "sport/",
                (hit_t[]) { { 2, 0 }, { 4, 0 }, { 5, 0 } }, 3);
    expect_hits(ix, "/", (hit_t[]) { { 5, 0 }, { 6, 0 } }, 2);
    expect_hits(ix, "/finance", (hit_t[]) { { 5, 0 }, { 6, 0 } }, 2);
    expect_hits(ix, "sports", (hit_t[]) { { 7, 0 } }, 1);

    fo_index_free(ix);
}

static void
test_dollar_topics(void **state)
{
    fo_index_t *ix;

    (void) state;

    ix = fo_index_new();

    add(ix, "#", 1, 0);
    add(ix, "+/monitor/Clients", 2, 0);
    add(ix, "+/#", 3, 0);
    add(ix, "$SYS/#", 4, 0);
    add(ix, "$SYS/monitor/+", 5, 0);
    add(ix, "$SYS/monitor/Clients", 6, 0);
    add(ix, "a/+", 7, 0);
    add(ix, "+", 8, 0);

    expect_hits(ix, "$SYS/monitor/Clients",
                (hit_t[]) { { 4, 0 }, { 5, 0 }, { 6, 0 } }, 3);
    expect_hits(ix, "$SYS", (hit_t[]) { { 4, 0 } }, 1);
    expect_hits(ix, "$", NULL, 0);
    expect_hits(ix, "x/monitor/Clients",
                (hit_t[]) { { 1, 0 }, { 2, 0 }, { 3, 0 } }, 3);
    /* only a '$' at the very start counts */
    expect_hits(ix, "a/$x",
                (hit_t[]) { { 1, 0 }, { 3, 0 }, { 7, 0 } }, 3);
    expect_hits(ix, "a$", (hit_t[]) { { 1, 0 }, { 3, 0 }, { 8, 0 } }, 3);

    fo_index_free(ix);
}

static void
test_many_subscribers_one_filter(void **state)
{
    enum { N = 10000 };
    fo_index_t *ix;
    hits_t h = { 0 };
    size_t base, i;
    uint32_t slot;

    (void) state;

    ix = fo_index_new();
    base = mem_used();

    for (slot = 0; slot < N; slot++) {
        assert_int_equal(add(ix, "fleet/+/pos", slot, (uint8_t) (slot % 3)),
                         1);
    }
    assert_int_equal(fo_index_count(ix), N);

    match(ix, "fleet/42/pos", &h);
    assert_int_equal(h.n, N);
    for (i = 0; i < N; i++) {
        assert_int_equal(h.v[i].slot, i);
        assert_int_equal(h.v[i].qos, i % 3);
    }

    /* re-adding replaces QoS without a second entry */
    for (slot = 0; slot < N; slot += 2) {
        assert_int_equal(add(ix, "fleet/+/pos", slot, 2), 0);
    }
    assert_int_equal(fo_index_count(ix), N);

    /* remove the odd slots */
    for (slot = 1; slot < N; slot += 2) {
        assert_int_equal(del(ix, "fleet/+/pos", slot), 1);
    }
    for (slot = 1; slot < N; slot += 2) {
        assert_int_equal(del(ix, "fleet/+/pos", slot), 0);
    }
    assert_int_equal(fo_index_count(ix), N / 2);

    match(ix, "fleet/7/pos", &h);
    assert_int_equal(h.n, N / 2);
    for (i = 0; i < N / 2; i++) {
        assert_int_equal(h.v[i].slot, 2 * i);
        assert_int_equal(h.v[i].qos, 2);
    }
    match(ix, "fleet/7", &h);
    assert_int_equal(h.n, 0);

    for (slot = 0; slot < N; slot += 2) {
        assert_int_equal(del(ix, "fleet/+/pos", slot), 1);
    }
    assert_int_equal(fo_index_count(ix), 0);
    assert_int_equal(mem_used(), base);

    hits_free(&h);
    fo_index_free(ix);
}

/* Random adds and removes of scattered slots on one node, against a model. */
static void
test_subscriber_churn(void **state)
{
    enum { NSLOTS = 400, OPS = 40000 };
    fo_index_t *ix;
    hits_t h = { 0 };
    uint32_t slots[NSLOTS];
    int model[NSLOTS];           /* QoS, or -1 when not subscribed */
    size_t live, base, i, k, op;
    uint8_t qos;
    int rc;

    (void) state;

    rng_state = 0x5eed0001;
    ix = fo_index_new();
    base = mem_used();

    for (i = 0; i < NSLOTS; i++) {
        /* clustered and strided values, to collide in a weak hash */
        slots[i] = (i % 2 == 0) ? (uint32_t) i : (uint32_t) i << 16;
        model[i] = -1;
    }
    live = 0;

    for (op = 0; op < OPS; op++) {
        k = rng_below(NSLOTS);
        if (rng_below(100) < (live < NSLOTS / 2 ? 60 : 40)) {
            qos = (uint8_t) rng_below(3);
            rc = add(ix, "x/+", slots[k], qos);
            assert_int_equal(rc, model[k] < 0 ? 1 : 0);
            if (model[k] < 0) {
                live++;
            }
            model[k] = qos;
        } else {
            rc = del(ix, "x/+", slots[k]);
            assert_int_equal(rc, model[k] < 0 ? 0 : 1);
            if (model[k] >= 0) {
                live--;
            }
            model[k] = -1;
        }
        assert_int_equal(fo_index_count(ix), live);

        if (op % 397 == 0 || live < 3) {
            match(ix, "x/y", &h);
            assert_int_equal(h.n, live);
            for (i = 0; i < h.n; i++) {
                for (k = 0; slots[k] != h.v[i].slot; k++) {
                    assert_true(k + 1 < NSLOTS);
                }
                assert_int_equal(model[k], h.v[i].qos);
            }
        }
    }

    for (k = 0; k < NSLOTS; k++) {
        if (model[k] >= 0) {
            assert_int_equal(del(ix, "x/+", slots[k]), 1);
        }
    }
    assert_int_equal(fo_index_count(ix), 0);
    assert_int_equal(mem_used(), base);

    hits_free(&h);
    fo_index_free(ix);
}

/* Thousands of literal children under one node: hash table growth,
 * lookup, and deletion in random order. */
static void
test_many_children(void **state)
{
    enum { N = 5000 };
    fo_index_t *ix;
    char buf[64];
    uint32_t order[N], t;
    bool gone[N];
    size_t base, i, j;

    (void) state;

    rng_state = 0x5eed0002;
    ix = fo_index_new();
    base = mem_used();

    for (i = 0; i < N; i++) {
        snprintf(buf, sizeof(buf), "dev/%zu/temp", i);
        assert_int_equal(add(ix, buf, (uint32_t) i, 1), 1);
        order[i] = (uint32_t) i;
        gone[i] = false;
    }
    for (i = 0; i < N; i++) {
        snprintf(buf, sizeof(buf), "dev/%zu/temp", i);
        expect_hits(ix, buf, (hit_t[]) { { (uint32_t) i, 1 } }, 1);
    }
    expect_hits(ix, "dev/5000/temp", NULL, 0);

    for (i = N - 1; i > 0; i--) {
        j = rng_below((uint32_t) i + 1);
        t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (i = 0; i < N; i++) {
        snprintf(buf, sizeof(buf), "dev/%u/temp", order[i]);
        assert_int_equal(del(ix, buf, order[i]), 1);
        gone[order[i]] = true;

        if (i % 250 == 0) {
            for (j = 0; j < N; j++) {
                snprintf(buf, sizeof(buf), "dev/%zu/temp", j);
                if (gone[j]) {
                    expect_hits(ix, buf, NULL, 0);
                } else {
                    expect_hits(ix, buf, (hit_t[]) { { (uint32_t) j, 1 } },
                                1);
                }
            }
        }
    }
    assert_int_equal(fo_index_count(ix), 0);
    assert_int_equal(mem_used(), base);

    fo_index_free(ix);
}

/* Very deep filters: the match stack must hold a pending '+' branch at
 * every level, and free must not recurse. */
static void
test_deep_filters(void **state)
{
    enum { L = 2000 };
    fo_index_t *ix;
    hits_t h = { 0 };
    char *f, *topic, *big;
    size_t d, n, i, want;

    (void) state;

    ix = fo_index_new();

    /* topic: L levels of "a" */
    topic = malloc(2 * L);
    f = malloc(2 * L + 2);
    assert_non_null(topic);
    assert_non_null(f);
    for (i = 0; i < 2 * L - 1; i++) {
        topic[i] = (i % 2 == 0) ? 'a' : '/';
    }
    topic[2 * L - 1] = '\0';

    /* for each depth d: "a/.../a/+" and "a/.../a/#" (d literal levels) */
    for (d = 0; d < L; d++) {
        n = 0;
        for (i = 0; i < d; i++) {
            f[n++] = 'a';
            f[n++] = '/';
        }
        f[n++] = '+';
        assert_int_equal(fo_index_add(ix, f, n, (uint32_t) d, 0, 0), 1);
        f[n - 1] = '#';
        assert_int_equal(fo_index_add(ix, f, n, (uint32_t) (L + d), 1, 0), 1);
    }
    assert_int_equal(fo_index_count(ix), 2 * L);

    /* "a/.../a/+" with L-1 "a"s matches, and every "#" one */
    match(ix, topic, &h);
    want = 1 + L;
    assert_int_equal(h.n, want);
    assert_int_equal(h.v[0].slot, L - 1);
    for (i = 1; i < want; i++) {
        assert_int_equal(h.v[i].slot, L + i - 1);
    }

    /* the longest filter MQTT allows: 32768 empty levels */
    big = malloc(32768 + 1);
    assert_non_null(big);
    memset(big, '/', 32767);
    big[32767] = '+';
    big[32768] = '\0';
    assert_int_equal(fo_index_add(ix, big, 32767, 99999, 2, 0), 1);
    /* and 32767 empty levels then '+' */
    assert_int_equal(fo_index_add(ix, big, 32768, 99998, 2, 0), 1);
    big[32767] = '\0';
    /* ... matched by both of those and by the "#" added above */
    expect_hits(ix, big,
                (hit_t[]) { { 99999, 2 }, { 99998, 2 }, { L, 1 } }, 3);

    /* free with everything still in it */
    fo_index_free(ix);

    free(big);
    free(topic);
    free(f);
    hits_free(&h);
}

/* ---- randomized cross-check against topic_matches() ---- */

typedef struct {
    char *filter;
    uint32_t slot;
    uint8_t qos;
    bool live;
} sub_t;

static const char *const vocab[] = {
    "a", "b", "c", "", "dd", "$x", "$SYS", "sport", "tennis", "player1",
};

static const char *
random_level(char *buf, size_t size)
{
    uint32_t r;

    r = rng_below(100);
    if (r < 70) {
        return vocab[rng_below(sizeof(vocab) / sizeof(vocab[0]))];
    }
    snprintf(buf, size, "l%u", rng_below(60));
    return buf;
}

static void
random_filter(char *out, size_t size)
{
    char tmp[16];
    size_t n, levels, i;
    uint32_t r;
    const char *lv;

    do {
        levels = 1 + rng_below(5);
        n = 0;
        out[0] = '\0';
        for (i = 0; i < levels; i++) {
            r = rng_below(100);
            if (i == levels - 1 && r < 15) {
                lv = "#";
            } else if (r < 40) {
                lv = "+";
            } else {
                lv = random_level(tmp, sizeof(tmp));
            }
            n += (size_t) snprintf(out + n, size - n, "%s%s",
                                   i > 0 ? "/" : "", lv);
        }
    } while (!topic_filter_valid(out, n));
}

static void
random_topic(char *out, size_t size)
{
    char tmp[16];
    size_t n, levels, i;

    do {
        levels = 1 + rng_below(6);
        n = 0;
        out[0] = '\0';
        for (i = 0; i < levels; i++) {
            n += (size_t) snprintf(out + n, size - n, "%s%s",
                                   i > 0 ? "/" : "",
                                   random_level(tmp, sizeof(tmp)));
        }
    } while (!topic_name_valid(out, n));
}

/* Compares fo_index_match() with a linear topic_matches() scan. */
static void
cross_check(const fo_index_t *ix, const sub_t *subs, size_t nsubs,
            const char *topic)
{
    hits_t want = { 0 }, got = { 0 };
    size_t i, tlen;

    tlen = strlen(topic);
    for (i = 0; i < nsubs; i++) {
        if (subs[i].live
            && topic_matches(subs[i].filter, strlen(subs[i].filter), topic,
                             tlen))
        {
            hits_push(&want, subs[i].slot, subs[i].qos);
        }
    }
    hits_sort(&want);
    match(ix, topic, &got);

    if (got.n != want.n) {
        fail_msg("topic \"%s\": index gave %zu hits, linear scan %zu",
                 topic, got.n, want.n);
    }
    for (i = 0; i < want.n; i++) {
        if (got.v[i].slot != want.v[i].slot
            || got.v[i].qos != want.v[i].qos)
        {
            fail_msg("topic \"%s\" hit %zu: (%u,%u) vs (%u,%u)", topic, i,
                     got.v[i].slot, got.v[i].qos, want.v[i].slot,
                     want.v[i].qos);
        }
    }
    hits_free(&want);
    hits_free(&got);
}

static void
test_random_cross_check(void **state)
{
    enum { NADD = 3000, NTOPIC = 3000, NSLOT = 400 };
    fo_index_t *ix;
    sub_t *subs;
    char buf[128];
    size_t nsubs, live, base, i, j, matched_some;
    uint32_t slot;
    uint8_t qos;
    int rc;

    (void) state;

    rng_state = 0x5eed0003;
    subs = calloc(NADD, sizeof(sub_t));
    assert_non_null(subs);
    ix = fo_index_new();
    base = mem_used();
    nsubs = 0;
    live = 0;

    for (i = 0; i < NADD; i++) {
        random_filter(buf, sizeof(buf));
        slot = rng_below(NSLOT);
        qos = (uint8_t) rng_below(3);

        for (j = 0; j < nsubs; j++) {
            if (subs[j].slot == slot && strcmp(subs[j].filter, buf) == 0) {
                break;
            }
        }
        rc = add(ix, buf, slot, qos);
        if (j < nsubs) {
            assert_int_equal(rc, 0);
            subs[j].qos = qos;
        } else {
            assert_int_equal(rc, 1);
            subs[nsubs].filter = strdup(buf);
            assert_non_null(subs[nsubs].filter);
            subs[nsubs].slot = slot;
            subs[nsubs].qos = qos;
            subs[nsubs].live = true;
            nsubs++;
            live++;
        }
        assert_int_equal(fo_index_count(ix), live);
    }

    /* the fixed topics hit the '$' rule and the parent-of-'#' case */
    cross_check(ix, subs, nsubs, "$SYS");
    cross_check(ix, subs, nsubs, "$x/a");
    cross_check(ix, subs, nsubs, "a");
    cross_check(ix, subs, nsubs, "/");
    cross_check(ix, subs, nsubs, "a/$x");

    matched_some = 0;
    for (i = 0; i < NTOPIC; i++) {
        random_topic(buf, sizeof(buf));
        cross_check(ix, subs, nsubs, buf);
        for (j = 0; j < nsubs; j++) {
            if (topic_matches(subs[j].filter, strlen(subs[j].filter), buf,
                              strlen(buf)))
            {
                matched_some++;
                break;
            }
        }
    }
    /* the generator is not degenerate: most topics match something */
    assert_true(matched_some > NTOPIC / 2);

    /* remove about half, in random order, then check again */
    for (i = 0; i < nsubs; i++) {
        j = rng_below((uint32_t) nsubs);
        if (subs[j].live) {
            assert_int_equal(fo_index_remove(ix, subs[j].filter,
                                             strlen(subs[j].filter),
                                             subs[j].slot),
                             1);
            subs[j].live = false;
            live--;
        } else {
            assert_int_equal(fo_index_remove(ix, subs[j].filter,
                                             strlen(subs[j].filter),
                                             subs[j].slot),
                             0);
        }
        assert_int_equal(fo_index_count(ix), live);
    }
    for (i = 0; i < NTOPIC / 3; i++) {
        random_topic(buf, sizeof(buf));
        cross_check(ix, subs, nsubs, buf);
    }

    /* remove the rest: the tree is empty again */
    for (i = 0; i < nsubs; i++) {
        if (subs[i].live) {
            assert_int_equal(fo_index_remove(ix, subs[i].filter,
                                             strlen(subs[i].filter),
                                             subs[i].slot),
                             1);
            subs[i].live = false;
        }
        free(subs[i].filter);
    }
    assert_int_equal(fo_index_count(ix), 0);
    assert_int_equal(mem_used(), base);

    fo_index_free(ix);
    free(subs);
}

/* The options byte and the Subscription Identifier come back with every
 * match; subscribing again replaces both. */
static void
test_options_and_sub_ids(void **state)
{
    fo_index_t *ix = fo_index_new();
    hits_t h = { 0 };

    (void) state;
    assert_int_equal(fo_index_add(ix, "s/+", 3, 7, 0x2d, 42), 1);
    assert_int_equal(fo_index_add(ix, "s/#", 3, 7, 0x01, 0), 1);
    match(ix, "s/x", &h);
    assert_int_equal(h.n, 2);
    for (size_t i = 0; i < h.n; i++) {
        if (h.v[i].qos == 0x2d) {
            assert_int_equal(h.v[i].sub_id, 42);
        } else {
            assert_int_equal(h.v[i].qos, 0x01);
            assert_int_equal(h.v[i].sub_id, 0);
        }
    }
    free(h.v);
    memset(&h, 0, sizeof(h));
    assert_int_equal(fo_index_add(ix, "s/+", 3, 7, 0x02, 268435455), 0);
    match(ix, "s/y", &h);
    assert_int_equal(h.n, 2);
    for (size_t i = 0; i < h.n; i++) {
        if (h.v[i].qos == 0x02) {
            assert_int_equal(h.v[i].sub_id, 268435455);
        }
    }
    free(h.v);
    fo_index_free(ix);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_add_replace_remove),
        cmocka_unit_test(test_overlapping_filters),
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_dollar_topics),
        cmocka_unit_test(test_many_subscribers_one_filter),
        cmocka_unit_test(test_subscriber_churn),
        cmocka_unit_test(test_many_children),
        cmocka_unit_test(test_deep_filters),
        cmocka_unit_test(test_random_cross_check),
        cmocka_unit_test(test_options_and_sub_ids),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
