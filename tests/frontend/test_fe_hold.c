/*
 * test_fe_hold.c -- the rule of write coalescing (frontend/fe_hold.c):
 * which queued output may wait for the next delivery.  Only a lone
 * delivery to an active plain-TCP client that sent nothing since our last
 * write, written to less than the window ago.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fe.h"

static fe_conn_t lone(void)
{
    fe_conn_t c = {0};
    c.state = C_ACTIVE;
    c.out_pubs = 1;
    c.last_tx_ms = 1000;
    return c;
}

static void test_window(void **state)
{
    (void)state;
    fe_conn_t c = lone();
    assert_true(fe_hold_wanted(&c, 1000, 10));
    assert_true(fe_hold_wanted(&c, 1009, 10));
    assert_false(fe_hold_wanted(&c, 1010, 10)); /* the window is over */
    assert_false(fe_hold_wanted(&c, 1005, 0));  /* coalescing off */
    c.last_tx_ms = 0; /* never written to */
    assert_false(fe_hold_wanted(&c, 1005, 10));
}

static void test_what_never_waits(void **state)
{
    (void)state;
    fe_conn_t c = lone();
    c.out_pubs = 2; /* the second delivery ends the wait */
    assert_false(fe_hold_wanted(&c, 1005, 10));
    c = lone();
    c.out_pubs = 0; /* no delivery: an ack, a SUBACK */
    c.out_urgent = true;
    assert_false(fe_hold_wanted(&c, 1005, 10));
    c = lone();
    c.out_urgent = true; /* a delivery and an ack */
    assert_false(fe_hold_wanted(&c, 1005, 10));
    c = lone();
    c.rx_since_tx = true; /* the client talks to us */
    assert_false(fe_hold_wanted(&c, 1005, 10));
    c = lone();
    c.write_on = true; /* the socket is full: EV_WRITE writes it */
    assert_false(fe_hold_wanted(&c, 1005, 10));
    c = lone();
    c.x = (fe_xport_t *)&c; /* TLS or WebSocket */
    assert_false(fe_hold_wanted(&c, 1005, 10));
    c = lone();
    c.state = C_CONNECTING;
    assert_false(fe_hold_wanted(&c, 1005, 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_what_never_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
