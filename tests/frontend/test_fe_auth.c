/*
 * test_fe_auth.c -- the enhanced-authentication hook (frontend/fe_auth.c):
 * the method table, the test method only with RINGMQ_TEST_AUTH=1, and its
 * challenge and response steps as handle_auth.c drives them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fe_auth.h"

static void
test_find(void **state)
{
    (void) state;
    unsetenv("RINGMQ_TEST_AUTH");
    assert_null(fe_auth_find("ringmq-test", 11));
    assert_null(fe_auth_find("SCRAM-SHA-256", 13));
    setenv("RINGMQ_TEST_AUTH", "1", 1);
    const fe_auth_method_t *m = fe_auth_find("ringmq-test", 11);
    assert_non_null(m);
    assert_string_equal(m->name, "ringmq-test");
    assert_null(fe_auth_find("ringmq-tes", 10));
    assert_null(fe_auth_find("ringmq-test2", 12));
    setenv("RINGMQ_TEST_AUTH", "yes", 1);
    assert_null(fe_auth_find("ringmq-test", 11));
    unsetenv("RINGMQ_TEST_AUTH");
}

static void
test_steps(void **state)
{
    (void) state;
    setenv("RINGMQ_TEST_AUTH", "1", 1);
    const fe_auth_method_t *m = fe_auth_find("ringmq-test", 11);
    void *st = NULL;
    const uint8_t *out;
    size_t n;

    assert_int_equal(m->step(&st, (const uint8_t *) "hello", 5, &out, &n),
                     FE_AUTH_CONTINUE);
    assert_non_null(st);
    assert_int_equal(n, 9);
    assert_memory_equal(out, "challenge", 9);
    assert_int_equal(m->step(&st, (const uint8_t *) "response", 8, &out,
                             &n),
                     FE_AUTH_DONE);
    assert_memory_equal(out, "welcome", 7);
    m->free(st);

    st = NULL;
    assert_int_equal(m->step(&st, (const uint8_t *) "hello", 5, &out, &n),
                     FE_AUTH_CONTINUE);
    assert_int_equal(m->step(&st, (const uint8_t *) "nope", 4, &out, &n),
                     FE_AUTH_FAIL);
    m->free(st);

    st = NULL;
    assert_int_equal(m->step(&st, (const uint8_t *) "quick", 5, &out, &n),
                     FE_AUTH_DONE);
    assert_null(out);
    st = NULL;
    assert_int_equal(m->step(&st, NULL, 0, &out, &n), FE_AUTH_FAIL);
    unsetenv("RINGMQ_TEST_AUTH");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_steps),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
