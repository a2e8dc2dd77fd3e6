/*
 * test_bench_stats.c -- ringmq-bench's instruments: sequence tracking tells
 * new, reordered and duplicate arrivals apart; the log-bucketed histogram
 * reports percentiles within its 1/64 precision; /proc sampling finds a
 * process tree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static void
test_track_in_order(void **state)
{
    bench_track_t t;
    uint32_t i;

    memset(&t, 0, sizeof(t));
    for (i = 0; i < 1000; i++) {
        assert_int_equal(bench_track_seen(&t, i), BENCH_SEEN_NEW);
    }
    assert_int_equal(t.next, 1000);
    assert_int_equal(t.gaps, 0);
    /* Anything again is a duplicate, recent or old. */
    assert_int_equal(bench_track_seen(&t, 999), BENCH_SEEN_DUP);
    assert_int_equal(bench_track_seen(&t, 990), BENCH_SEEN_DUP);
    assert_int_equal(bench_track_seen(&t, 0), BENCH_SEEN_DUP);
}

static void
test_track_gap_filled_late(void **state)
{
    bench_track_t t;

    memset(&t, 0, sizeof(t));
    assert_int_equal(bench_track_seen(&t, 0), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_seen(&t, 3), BENCH_SEEN_NEW); /* 1, 2 gap */
    assert_int_equal(bench_track_seen(&t, 4), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_seen(&t, 2), BENCH_SEEN_REORDERED);
    assert_int_equal(bench_track_seen(&t, 2), BENCH_SEEN_DUP);
    assert_int_equal(bench_track_seen(&t, 1), BENCH_SEEN_REORDERED);
    assert_int_equal(bench_track_seen(&t, 1), BENCH_SEEN_DUP);
    assert_int_equal(bench_track_seen(&t, 3), BENCH_SEEN_DUP);
    assert_int_equal(t.gaps, 0);
}

static void
test_track_first_message_not_zero(void **state)
{
    bench_track_t t;

    /* Messages 0..9 lost (or sent before the subscriber came). */
    memset(&t, 0, sizeof(t));
    assert_int_equal(bench_track_seen(&t, 10), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_seen(&t, 5), BENCH_SEEN_REORDERED);
    assert_int_equal(bench_track_seen(&t, 5), BENCH_SEEN_DUP);
    assert_int_equal(bench_track_seen(&t, 0), BENCH_SEEN_REORDERED);
}

static void
test_track_window_edges(void **state)
{
    bench_track_t t;

    /* A jump of 64 or more: the skipped numbers within 63 below the new
     * highest are gaps; older ones are beyond what the tracker knows. */
    memset(&t, 0, sizeof(t));
    assert_int_equal(bench_track_seen(&t, 0), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_seen(&t, 200), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_seen(&t, 137), BENCH_SEEN_REORDERED);
    assert_int_equal(bench_track_seen(&t, 199), BENCH_SEEN_REORDERED);
    assert_int_equal(bench_track_seen(&t, 136), BENCH_SEEN_DUP);

    /* Jump of exactly 63 and 64 (the shift edge cases). */
    memset(&t, 0, sizeof(t));
    assert_int_equal(bench_track_seen(&t, 62), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_seen(&t, 0), BENCH_SEEN_REORDERED);
    assert_int_equal(bench_track_seen(&t, 61), BENCH_SEEN_REORDERED);
    memset(&t, 0, sizeof(t));
    assert_int_equal(bench_track_seen(&t, 0), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_seen(&t, 64), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_seen(&t, 1), BENCH_SEEN_REORDERED);
    assert_int_equal(bench_track_seen(&t, 63), BENCH_SEEN_REORDERED);
    assert_int_equal(bench_track_seen(&t, 0), BENCH_SEEN_DUP);
}

static void
test_hist_percentiles(void **state)
{
    bench_hist_t *h = malloc(sizeof(*h));
    uint64_t v;

    assert_non_null(h);
    bench_hist_reset(h);
    assert_int_equal(bench_hist_pct(h, 50), 0);
    for (v = 1; v <= 100000; v++) {
        bench_hist_add(h, v * 1000); /* 1 us .. 100 ms */
    }
    assert_int_equal(h->count, 100000);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->max, 100000000);
    assert_int_equal(bench_hist_pct(h, 100), 100000000);
    for (v = 1; v <= 999; v++) {
        double p = v / 10.0;
        double want = p * 1000.0 * 1000.0; /* p % of 100 ms */
        double got = (double) bench_hist_pct(h, p);

        /* Bucket tops: never below the true value, at most 1/64 above. */
        assert_true(got >= want - 1000);
        assert_true(got <= want * (1.0 + 1.0 / 64) + 1000);
    }
    free(h);
}

static void
test_hist_small_values_exact(void **state)
{
    bench_hist_t *h = malloc(sizeof(*h));
    uint64_t v;

    assert_non_null(h);
    bench_hist_reset(h);
    for (v = 0; v < 100; v++) {
        bench_hist_add(h, v);
    }
    assert_int_equal(bench_hist_pct(h, 50), 49);
    assert_int_equal(bench_hist_pct(h, 1), 0);
    assert_int_equal(bench_hist_pct(h, 99), 98);
    /* The largest values still land in a bucket. */
    bench_hist_add(h, UINT64_MAX);
    assert_int_equal(bench_hist_pct(h, 100), UINT64_MAX);
    free(h);
}

static void
test_proc_tree(void **state)
{
    bench_proc_t before, after;
    pid_t kid;
    int st;

    /* This process plus one child, which burns a little CPU. */
    kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        sleep(2);
        _exit(0);
    }
    assert_int_equal(bench_proc_sample(getpid(), &before), BENCH_OK);
    assert_int_equal(before.nproc, 2);
    assert_true(before.hwm_kb > 0);
    {
        volatile uint64_t x = 0;
        uint64_t t0 = bench_now_ns();

        while (bench_now_ns() - t0 < 50000000) {
            x++;
        }
    }
    assert_int_equal(bench_proc_sample(getpid(), &after), BENCH_OK);
    assert_true(after.cpu_us >= before.cpu_us);
    assert_true(bench_self_cpu_us() > 0);
    kill(kid, SIGKILL);
    waitpid(kid, &st, 0);
    assert_int_equal(bench_proc_sample(kid, &after), BENCH_ERR);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_track_in_order),
        cmocka_unit_test(test_track_gap_filled_late),
        cmocka_unit_test(test_track_first_message_not_zero),
        cmocka_unit_test(test_track_window_edges),
        cmocka_unit_test(test_hist_percentiles),
        cmocka_unit_test(test_hist_small_values_exact),
        cmocka_unit_test(test_proc_tree),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
