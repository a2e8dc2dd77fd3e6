/*
 * test_sup_child.c -- the supervisor's respawn policy: at once after a
 * crash of a child that ran, backoff 100 ms doubling to 5 s for a child
 * that keeps dying during start-up, reset after a good run or an
 * administrator's restart, and never a respawn after exit status 2.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "sup_child.h"

/* waitpid() statuses without a real child: a process that exited with
 * code, and one killed by sig. */
static int exited(int code)
{
    return (code & 0xff) << 8;
}

static int killed(int sig)
{
    return sig & 0x7f;
}

static void test_status_helpers(void **state)
{
    (void)state;
    assert_true(WIFEXITED(exited(2)) && WEXITSTATUS(exited(2)) == 2);
    assert_true(WIFSIGNALED(killed(9)) && WTERMSIG(killed(9)) == 9);
}

static void test_crash_after_a_good_run_respawns_at_once(void **state)
{
    (void)state;
    uint32_t fails = 3, delay = 99;
    assert_int_equal(sup_child_exited(killed(SIGKILL), 5000, false, &fails,
                                      &delay),
                     SUP_RESPAWN);
    assert_int_equal(delay, 0);
    assert_int_equal(fails, 0);
    assert_int_equal(sup_child_exited(exited(1), 1000, false, &fails,
                                      &delay),
                     SUP_RESPAWN);
    assert_int_equal(delay, 0);
}

static void test_start_up_failures_back_off(void **state)
{
    (void)state;
    uint32_t fails = 0, delay;
    const uint32_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(sup_child_exited(killed(SIGSEGV), 10, false, &fails,
                                          &delay),
                         SUP_RESPAWN);
        assert_int_equal(delay, want[i]);
        assert_int_equal(fails, (uint32_t)i + 1);
    }
    /* A run past start-up ends the series. */
    sup_child_exited(killed(SIGSEGV), 1000, false, &fails, &delay);
    assert_int_equal(delay, 0);
    sup_child_exited(killed(SIGSEGV), 999, false, &fails, &delay);
    assert_int_equal(delay, 100);
}

static void test_admin_restart_never_waits(void **state)
{
    (void)state;
    uint32_t fails = 4, delay;
    assert_int_equal(sup_child_exited(exited(0), 3, true, &fails, &delay),
                     SUP_RESPAWN);
    assert_int_equal(delay, 0);
    assert_int_equal(fails, 0);
}

static void test_fatal_config_code_stops(void **state)
{
    (void)state;
    uint32_t fails = 0, delay;
    assert_int_equal(sup_child_exited(exited(2), 10, false, &fails, &delay),
                     SUP_STOP_FATAL);
    assert_int_equal(sup_child_exited(exited(2), 50000, true, &fails,
                                      &delay),
                     SUP_STOP_FATAL);
    /* Killed by signal 2 (SIGINT) is not exit status 2. */
    assert_int_equal(sup_child_exited(killed(2), 50000, false, &fails,
                                      &delay),
                     SUP_RESPAWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_helpers),
        cmocka_unit_test(test_crash_after_a_good_run_respawns_at_once),
        cmocka_unit_test(test_start_up_failures_back_off),
        cmocka_unit_test(test_admin_restart_never_waits),
        cmocka_unit_test(test_fatal_config_code_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
