/*
 * test_records.c -- the message layout of records.h: msg_init() and
 * msg_open() agree on every field, the stored 3.1.1 QoS 0 PUBLISH
 * (msg_pkt0()) parses back to the same topic and payload at every
 * remaining-length size, and msg_open() refuses blocks whose lengths do
 * not fit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mqtt.h"
#include "records.h"

/* Builds a message as fe_msg_alloc() does; the caller frees it. */
static uint8_t *build(const char *topic, const uint8_t *span,
                      uint32_t span_len, uint32_t plen, uint32_t *len)
{
    uint16_t tlen = (uint16_t)strlen(topic);
    *len = (uint32_t)msg_size(span_len, tlen, plen);
    uint8_t *m = malloc(*len);
    assert_non_null(m);
    memset(m, 0xee, *len); /* what msg_init() leaves must not matter */
    uint8_t *sp = msg_init(m, 1234, 60, 7, span_len, topic, tlen, plen);
    if (span_len)
        memcpy(sp, span, span_len);
    uint8_t *pl = sp + span_len + MSG_PKT0_MAX + 2 + tlen;
    for (uint32_t i = 0; i < plen; i++)
        pl[i] = (uint8_t)(i * 31 + 7);
    return m;
}

static void test_fields(void **state)
{
    (void)state;
    const uint8_t span[] = {0x03, 0x00, 0x01, 'x'}; /* Content Type */
    uint32_t len;
    uint8_t *m = build("a/b", span, sizeof(span), 5, &len);
    msg_view_t v = {0};
    assert_int_equal(msg_open(m, len, &v), 0);
    assert_int_equal(v.pub_at, 1234);
    assert_int_equal(v.expiry, 60);
    assert_int_equal(v.will_delay, 7);
    assert_int_equal(v.span_len, sizeof(span));
    assert_memory_equal(v.span, span, sizeof(span));
    assert_int_equal(v.tlen, 3);
    assert_memory_equal(v.topic, "a/b", 3);
    assert_int_equal(v.plen, 5);
    assert_ptr_equal(v.payload, m + len - 5);
    assert_int_equal(v.payload[1], 38);
    assert_int_equal(msg_payload_len(m, len), 5);
    free(m);
}

/* The stored packet parses as a 3.1.1 QoS 0 PUBLISH of the message, at
 * remaining lengths of one to three bytes, on both sides of each
 * boundary. */
static void test_pkt0(void **state)
{
    (void)state;
    const uint32_t plens[] = {0, 1, 122, 123, 124, 16378, 16379, 16380,
                              70000};
    for (size_t k = 0; k < sizeof(plens) / sizeof(plens[0]); k++) {
        uint32_t len;
        uint8_t *m = build("t/x", NULL, 0, plens[k], &len);
        msg_view_t v = {0};
        assert_int_equal(msg_open(m, len, &v), 0);
        uint32_t n;
        const uint8_t *p = msg_pkt0(&v, &n);
        assert_ptr_equal(p + n, m + len); /* runs to the block's end */
        assert_true(p >= m + MSG_HDR);
        mqtt_fixed_t fh;
        const char *why = NULL;
        assert_int_equal(mqtt_fixed_header(p, n, &fh, &why), MQTT_OK);
        assert_int_equal(fh.type, MQTT_PUBLISH);
        assert_int_equal(fh.flags, 0); /* QoS 0, no DUP, no RETAIN */
        assert_int_equal(fh.hdr_len + fh.remaining, n);
        assert_int_equal(fh.remaining, 2 + 3 + plens[k]);
        assert_memory_equal(p + fh.hdr_len, "\0\3t/x", 5);
        assert_ptr_equal(p + fh.hdr_len + 5, v.payload);
        free(m);
    }
}

static void test_bad_lengths(void **state)
{
    (void)state;
    uint32_t len;
    uint8_t *m = build("abc", NULL, 0, 4, &len);
    msg_view_t v = {0};
    /* Shorter than the fixed part, a span or a topic past the end. */
    assert_int_equal(msg_open(m, MSG_HDR + MSG_PKT0_MAX + 1, &v), -1);
    uint32_t span = len;
    memcpy(m + 12, &span, 4);
    assert_int_equal(msg_open(m, len, &v), -1);
    span = 0;
    memcpy(m + 12, &span, 4);
    m[MSG_HDR + MSG_PKT0_MAX] = 0xff;
    assert_int_equal(msg_open(m, len, &v), -1);
    assert_int_equal(msg_payload_len(m, len), 0);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_pkt0),
        cmocka_unit_test(test_bad_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
