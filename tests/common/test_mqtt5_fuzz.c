/*
 * test_mqtt5_fuzz.c -- the MQTT 5 packet parsers (common/mqtt.c with
 * mqtt_props.c) against mutated packets: valid packets of every kind are
 * built, then bytes flipped, inserted, removed and the packet cut, many
 * thousands of times from a fixed seed.  Each input is an exact-size heap
 * copy, so a read past the end is an AddressSanitizer error (make SAN=1
 * test).  Asserted: the result is one of the documented codes, an error
 * comes with a reason, and what a successful parse hands back lies inside
 * the packet.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mqtt.h"
#include "mqtt_props.h"
#include "test_buf.h"

#define ROUNDS 200000

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* A property block with a few valid properties of context ctx. */
static void put_props(buf_t *b, uint8_t ctx)
{
    buf_t p = {.n = 0};
    if (ctx == MQTT_PUBLISH || ctx == MQTT_PROP_CTX_WILL) {
        put_u8(&p, MQTT_PROP_PAYLOAD_FORMAT);
        put_u8(&p, 1);
        put_u8(&p, MQTT_PROP_CONTENT_TYPE);
        put_str(&p, "text/plain");
        put_u8(&p, MQTT_PROP_CORRELATION_DATA);
        put_lstr(&p, "\x00\x01\x02", 3);
    }
    if (ctx == MQTT_CONNECT) {
        put_u8(&p, MQTT_PROP_SESSION_EXPIRY);
        put_be(&p, 60, 4);
        put_u8(&p, MQTT_PROP_RECEIVE_MAX);
        put_u16(&p, 10);
    }
    if (ctx == MQTT_SUBSCRIBE) {
        put_u8(&p, MQTT_PROP_SUB_ID);
        put_varint(&p, 300);
    }
    put_u8(&p, MQTT_PROP_USER);
    put_str(&p, "k");
    put_str(&p, "v");
    put_varint(b, (uint32_t)p.n);
    put_bytes(b, p.b, p.n);
}

/* A valid MQTT 5 packet body of kind k (0..6); *type and *flags say
 * which packet it is. */
static void build(int k, buf_t *b, uint8_t *type, uint8_t *flags)
{
    b->n = 0;
    *flags = 0;
    switch (k) {
    case 0:
        *type = MQTT_CONNECT;
        put_str(b, "MQTT");
        put_u8(b, 5);
        put_u8(b, 0x04 | 0x08 | 0x80 | 0x40);
        put_u16(b, 30);
        put_props(b, MQTT_CONNECT);
        put_str(b, "fuzz-client");
        put_props(b, MQTT_PROP_CTX_WILL);
        put_str(b, "will/t");
        put_str(b, "bye");
        put_str(b, "user");
        put_str(b, "pass");
        break;
    case 1:
        *type = MQTT_PUBLISH;
        *flags = 0x02;
        put_str(b, "a/b/c");
        put_u16(b, 7);
        put_props(b, MQTT_PUBLISH);
        put_bytes(b, "payload", 7);
        break;
    case 2:
        *type = MQTT_SUBSCRIBE;
        *flags = 0x02;
        put_u16(b, 9);
        put_props(b, MQTT_SUBSCRIBE);
        put_str(b, "a/+");
        put_u8(b, 0x2d);
        put_str(b, "$share/g/x");
        put_u8(b, 0x01);
        break;
    case 3:
        *type = MQTT_UNSUBSCRIBE;
        *flags = 0x02;
        put_u16(b, 9);
        put_props(b, MQTT_UNSUBSCRIBE);
        put_str(b, "a/+");
        break;
    case 4:
        *type = MQTT_PUBREC;
        put_u16(b, 5);
        put_u8(b, 0x10);
        put_props(b, MQTT_PUBREC);
        break;
    case 5:
        *type = MQTT_DISCONNECT;
        put_u8(b, 0x04);
        put_props(b, MQTT_DISCONNECT);
        break;
    default:
        *type = MQTT_AUTH;
        put_u8(b, 0x18);
        {
            buf_t p = {.n = 0};
            put_u8(&p, MQTT_PROP_AUTH_METHOD);
            put_str(&p, "m");
            put_u8(&p, MQTT_PROP_AUTH_DATA);
            put_lstr(&p, "d", 1);
            put_varint(b, (uint32_t)p.n);
            put_bytes(b, p.b, p.n);
        }
        break;
    }
}

static void mutate(buf_t *b)
{
    int edits = 1 + (int)(next() % 4);
    for (int e = 0; e < edits; e++) {
        uint32_t r = next();
        size_t at = b->n ? r % b->n : 0;
        switch ((r >> 24) % 4) {
        case 0: /* flip a byte */
            if (b->n)
                b->b[at] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1: /* a random byte */
            if (b->n)
                b->b[at] = (uint8_t)next();
            break;
        case 2: /* insert */
            if (b->n < sizeof(b->b) - 1) {
                memmove(b->b + at + 1, b->b + at, b->n - at);
                b->b[at] = (uint8_t)next();
                b->n++;
            }
            break;
        default: /* cut */
            b->n = at;
            break;
        }
    }
}

static bool inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
    const uint8_t *q = p;
    return n == 0 || (q >= buf && q + n <= buf + len);
}

/* Parses in as a packet of that type; returns the parser's result. */
static int run_one(uint8_t type, uint8_t flags, const uint8_t *in,
                   size_t len)
{
    const char *why = NULL;
    int r;
    switch (type) {
    case MQTT_CONNECT: {
        mqtt_connect_t c;
        r = mqtt_parse_connect(flags, in, len, &c, &why);
        if (r == MQTT_OK) {
            assert_true(inside(c.client_id.p, c.client_id.len, in, len));
            assert_true(inside(c.will_topic.p, c.will_topic.len, in, len));
            assert_true(inside(c.password.p, c.password.len, in, len));
            assert_true(c.props.total <= len);
        } else if (r != MQTT_E_VERSION && r != MQTT_E_CLIENTID) {
            assert_true(c.reason >= 0x80);
        }
        break;
    }
    case MQTT_PUBLISH: {
        mqtt_publish_t p;
        r = mqtt_parse_publish(MQTT_V5, flags, in, len, &p, &why);
        if (r == MQTT_OK) {
            assert_true(inside(p.topic.p, p.topic.len, in, len));
            assert_true(inside(p.payload, p.payload_len, in, len));
            assert_true(p.props.raw_len <= len);
        } else {
            assert_true(p.reason >= 0x80);
        }
        break;
    }
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE: {
        uint16_t pid;
        mqtt_props_t pr;
        mqtt_iter_t it;
        bool sub = type == MQTT_SUBSCRIBE;
        r = sub ? mqtt_parse_subscribe(MQTT_V5, flags, in, len, &pid, &pr,
                                       &it, &why)
                : mqtt_parse_unsubscribe(MQTT_V5, flags, in, len, &pid, &pr,
                                         &it, &why);
        if (r == MQTT_OK) {
            mqtt_str_t f;
            uint8_t o;
            int n = 0;
            while (mqtt_iter_next(&it, &f, &o)) {
                assert_true(inside(f.p, f.len, in, len));
                assert_true(++n < 1000);
            }
            assert_true(n > 0);
        }
        break;
    }
    case MQTT_PUBREC: {
        uint16_t pid;
        uint8_t rc;
        r = mqtt_parse_ack(MQTT_V5, type, flags, in, len, &pid, &rc, &why);
        if (r == MQTT_OK)
            assert_int_not_equal(pid, 0);
        break;
    }
    case MQTT_DISCONNECT: {
        uint8_t rc;
        mqtt_props_t pr;
        r = mqtt_parse_disconnect(MQTT_V5, flags, in, len, &rc, &pr, &why);
        break;
    }
    default: {
        uint8_t rc;
        mqtt_props_t pr;
        r = mqtt_parse_auth(flags, in, len, &rc, &pr, &why);
        if (r == MQTT_OK)
            assert_true(inside(pr.auth_data.p, pr.auth_data.len, in, len));
        break;
    }
    }
    assert_true(r == MQTT_OK || r == MQTT_E_MALFORMED ||
                r == MQTT_E_PROTOCOL || r == MQTT_E_VERSION ||
                r == MQTT_E_CLIENTID);
    if (r != MQTT_OK) {
        assert_non_null(why);
        assert_true(strlen(why) > 0);
    }
    return r;
}

static void test_mutated_packets(void **state)
{
    (void)state;
    unsigned ok = 0;
    for (int round = 0; round < ROUNDS; round++) {
        buf_t b;
        uint8_t type, flags;
        build(round % 7, &b, &type, &flags);
        if (round >= 7) /* the first round of each kind is the valid one */
            mutate(&b);
        uint8_t *in = malloc(b.n ? b.n : 1);
        assert_non_null(in);
        memcpy(in, b.b, b.n);
        int r = run_one(type, flags, in, b.n);
        if (round < 7)
            assert_int_equal(r, MQTT_OK); /* the unmutated packets parse */
        free(in);
        ok++;
    }
    assert_int_equal(ok, ROUNDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutated_packets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
