/*
 * test_bench_wire.c -- ringmq-bench's client codec: the bytes of CONNECT,
 * SUBSCRIBE and PUBLISH for MQTT 3.1.1 and 5, and the parser for what a
 * broker sends (CONNACK properties, SUBACK codes, PUBLISH with and without
 * v5 properties, acks with reason codes, malformed packets).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "bench_wire.h"
#include "mqtt.h"

static void
test_connect_bytes(void **state)
{
    static const uint8_t v311[] = {
        0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60,
        0, 3, 'a', 'b', 'c'};
    static const uint8_t v5[] = {
        0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0,
        0, 3, 'a', 'b', 'c'};
    uint8_t out[BENCH_WIRE_CTRL_MAX];
    size_t n;

    n = bench_wire_connect(out, MQTT_V311, "abc", 60);
    assert_int_equal(n, sizeof(v311));
    assert_memory_equal(out, v311, n);
    n = bench_wire_connect(out, MQTT_V5, "abc", 60);
    assert_int_equal(n, sizeof(v5));
    assert_memory_equal(out, v5, n);
}

static void
test_subscribe_bytes(void **state)
{
    static const uint8_t v311[] = {0x82, 6, 0, 7, 0, 1, 't', 2};
    static const uint8_t v5[] = {0x82, 7, 0, 7, 0, 0, 1, 't', 1};
    uint8_t out[BENCH_WIRE_CTRL_MAX];
    size_t n;

    n = bench_wire_subscribe(out, MQTT_V311, 7, "t", 2);
    assert_int_equal(n, sizeof(v311));
    assert_memory_equal(out, v311, n);
    n = bench_wire_subscribe(out, MQTT_V5, 7, "t", 1);
    assert_int_equal(n, sizeof(v5));
    assert_memory_equal(out, v5, n);
}

static void
test_publish_head_bytes(void **state)
{
    static const uint8_t q0[] = {0x30, 19, 0, 1, 't'};
    static const uint8_t q1v5[] = {0x32, 22, 0, 1, 't', 0x12, 0x34, 0};
    uint8_t out[BENCH_WIRE_PUB_HEAD_MAX(1)];
    size_t n;

    n = bench_wire_publish_head(out, MQTT_V311, 0, "t", 1, 0, 16);
    assert_int_equal(n, sizeof(q0));
    assert_memory_equal(out, q0, n);
    n = bench_wire_publish_head(out, MQTT_V5, 1, "t", 1, 0x1234, 16);
    assert_int_equal(n, sizeof(q1v5));
    assert_memory_equal(out, q1v5, n);
}

static void
test_parse_connack(void **state)
{
    /* v5 CONNACK: receive maximum 10, server keep alive 30, maximum QoS 1,
     * a reason string and a user property that must be skipped. */
    static const uint8_t v5[] = {
        0x00, 0x00, 23,
        0x21, 0, 10,
        0x13, 0, 30,
        0x24, 1,
        0x1F, 0, 2, 'o', 'k',
        0x26, 0, 1, 'k', 0, 1, 'v',
        0x22, 0, 5};
    static const uint8_t v311_refused[] = {0x00, 0x01};
    bench_pkt_t p;
    const char *why;

    assert_int_equal(bench_wire_parse(MQTT_V5, 0x20, v5, sizeof(v5), &p,
                                      &why), 0);
    assert_int_equal(p.type, MQTT_CONNACK);
    assert_int_equal(p.reason, 0);
    assert_int_equal(p.recv_max, 10);
    assert_int_equal(p.server_keepalive, 30);
    assert_int_equal(p.max_qos, 1);

    /* A 3.1.1-only broker answering a v5 CONNECT. */
    assert_int_equal(bench_wire_parse(MQTT_V5, 0x20, v311_refused, 2, &p,
                                      &why), 0);
    assert_int_equal(p.reason, 1);
    assert_string_equal(bench_wire_connack_text(MQTT_V5, p.reason),
                        "unacceptable protocol version");

    /* Unknown property id, truncated CONNACK. */
    {
        static const uint8_t bad[] = {0x00, 0x00, 2, 0x7f, 0};

        assert_int_equal(bench_wire_parse(MQTT_V5, 0x20, bad, sizeof(bad),
                                          &p, &why), -1);
        assert_int_equal(bench_wire_parse(MQTT_V311, 0x20, bad, 1, &p, &why),
                         -1);
    }
}

static void
test_parse_publish(void **state)
{
    static const uint8_t q1v311[] = {0, 2, 'a', 'b', 0, 9, 'x', 'y'};
    static const uint8_t q1v5[] = {0, 2, 'a', 'b', 0, 9, 3, 0x23, 0, 1,
                                   'x', 'y'};
    bench_pkt_t p;
    const char *why;

    assert_int_equal(bench_wire_parse(MQTT_V311, 0x3a, q1v311,
                                      sizeof(q1v311), &p, &why), 0);
    assert_int_equal(p.qos, 1);
    assert_true(p.dup);
    assert_int_equal(p.pid, 9);
    assert_int_equal(p.topic_len, 2);
    assert_memory_equal(p.topic, "ab", 2);
    assert_int_equal(p.payload_len, 2);
    assert_memory_equal(p.payload, "xy", 2);

    assert_int_equal(bench_wire_parse(MQTT_V5, 0x32, q1v5, sizeof(q1v5), &p,
                                      &why), 0);
    assert_int_equal(p.pid, 9);
    assert_int_equal(p.payload_len, 2);
    assert_memory_equal(p.payload, "xy", 2);

    /* Topic overrunning, packet id 0, QoS 3. */
    assert_int_equal(bench_wire_parse(MQTT_V311, 0x30, q1v311, 3, &p, &why),
                     -1);
    {
        static const uint8_t pid0[] = {0, 1, 'a', 0, 0};

        assert_int_equal(bench_wire_parse(MQTT_V311, 0x32, pid0,
                                          sizeof(pid0), &p, &why), -1);
    }
    assert_int_equal(bench_wire_parse(MQTT_V311, 0x36, q1v311,
                                      sizeof(q1v311), &p, &why), -1);
}

static void
test_parse_acks(void **state)
{
    static const uint8_t plain[] = {0x12, 0x34};
    static const uint8_t v5_refused[] = {0x12, 0x34, 0x87, 0};
    bench_pkt_t p;
    const char *why;
    uint8_t out[4];

    assert_int_equal(bench_wire_parse(MQTT_V311, 0x40, plain, 2, &p, &why),
                     0);
    assert_int_equal(p.type, MQTT_PUBACK);
    assert_int_equal(p.pid, 0x1234);
    assert_int_equal(bench_wire_parse(MQTT_V311, 0x62, plain, 2, &p, &why),
                     0);
    assert_int_equal(p.type, MQTT_PUBREL);
    /* PUBREL needs flags 2; PUBACK flags 0. */
    assert_int_equal(bench_wire_parse(MQTT_V311, 0x60, plain, 2, &p, &why),
                     -1);
    assert_int_equal(bench_wire_parse(MQTT_V311, 0x41, plain, 2, &p, &why),
                     -1);
    assert_int_equal(bench_wire_parse(MQTT_V5, 0x50, v5_refused, 4, &p,
                                      &why), 0);
    assert_int_equal(p.reason, 0x87);
    /* 3.1.1 acks are exactly 2 bytes. */
    assert_int_equal(bench_wire_parse(MQTT_V311, 0x50, v5_refused, 4, &p,
                                      &why), -1);

    assert_int_equal(bench_wire_ack(out, MQTT_PUBREL, 0x0102), 4);
    assert_int_equal(out[0], 0x62);
    assert_int_equal(out[3], 0x02);
    assert_int_equal(bench_wire_empty(out, MQTT_PINGREQ), 2);
    assert_int_equal(out[0], 0xc0);
}

static void
test_parse_suback_and_server_only(void **state)
{
    static const uint8_t v311[] = {0, 1, 0x80};
    static const uint8_t v5[] = {0, 1, 0, 0x02};
    bench_pkt_t p;
    const char *why;

    assert_int_equal(bench_wire_parse(MQTT_V311, 0x90, v311, 3, &p, &why),
                     0);
    assert_int_equal(p.reason, 0x80);
    assert_int_equal(bench_wire_parse(MQTT_V5, 0x90, v5, 4, &p, &why), 0);
    assert_int_equal(p.reason, 0x02);
    /* Packets a server never sends. */
    assert_int_equal(bench_wire_parse(MQTT_V311, 0x10, v311, 3, &p, &why),
                     -1);
    assert_int_equal(bench_wire_parse(MQTT_V311, 0xe0, v311, 0, &p, &why),
                     -1);
    assert_non_null(why);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_bytes),
        cmocka_unit_test(test_subscribe_bytes),
        cmocka_unit_test(test_publish_head_bytes),
        cmocka_unit_test(test_parse_connack),
        cmocka_unit_test(test_parse_publish),
        cmocka_unit_test(test_parse_acks),
        cmocka_unit_test(test_parse_suback_and_server_only),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
