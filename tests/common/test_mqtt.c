/*
 * test_mqtt.c -- unit tests for common/mqtt.c: every packet a server
 * parses, every close-the-connection rule, the varint boundaries, the
 * UTF-8 rules and the serializers' exact bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mqtt.h"
#include "test_buf.h"

/* ---- helpers ---- */

/* CONNECT flag bits (3.1.2.3). */
#define CF_RESERVED 0x01
#define CF_CLEAN 0x02
#define CF_WILL 0x04
#define CF_WQOS1 0x08
#define CF_WQOS2 0x10
#define CF_WQOS3 0x18
#define CF_WRETAIN 0x20
#define CF_PASS 0x40
#define CF_USER 0x80

/* A CONNECT body; each non-NULL string is appended in payload order,
 * whatever cflags says, so flags and payload can be made to disagree. */
typedef struct conn_spec {
    const char *name;
    uint8_t level;
    uint8_t cflags;
    uint16_t keepalive;
    const char *id;
    const char *will_topic;
    const char *will_msg;
    const char *user;
    const char *pass;
} conn_spec_t;

static void
build_connect(buf_t *b, const conn_spec_t *s)
{
    b->n = 0;
    put_str(b, s->name);
    put_u8(b, s->level);
    put_u8(b, s->cflags);
    put_u16(b, s->keepalive);
    if (s->id != NULL) {
        put_str(b, s->id);
    }
    if (s->will_topic != NULL) {
        put_str(b, s->will_topic);
    }
    if (s->will_msg != NULL) {
        put_str(b, s->will_msg);
    }
    if (s->user != NULL) {
        put_str(b, s->user);
    }
    if (s->pass != NULL) {
        put_str(b, s->pass);
    }
}

static int
connect_rc(const buf_t *b, mqtt_connect_t *c)
{
    const char *why = NULL;

    return check_why(mqtt_parse_connect(0, b->b, b->n, c, &why), &why);
}

static int
spec_rc(const conn_spec_t *s)
{
    buf_t b;
    mqtt_connect_t c;

    build_connect(&b, s);
    return connect_rc(&b, &c);
}

static int
publish_rc(uint8_t flags, const buf_t *b, mqtt_publish_t *p)
{
    const char *why = NULL;

    return check_why(mqtt_parse_publish(MQTT_V311, flags, b->b, b->n, p, &why), &why);
}

static int
subscribe_rc(uint8_t flags, const buf_t *b)
{
    const char *why = NULL;
    uint16_t pid;
    mqtt_iter_t it;

    return check_why(
        mqtt_parse_subscribe(MQTT_V311, flags, b->b, b->n, &pid, NULL, &it, &why), &why);
}

static int
unsubscribe_rc(uint8_t flags, const buf_t *b)
{
    const char *why = NULL;
    uint16_t pid;
    mqtt_iter_t it;

    return check_why(
        mqtt_parse_unsubscribe(MQTT_V311, flags, b->b, b->n, &pid, NULL, &it, &why), &why);
}

static void
assert_str(mqtt_str_t s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

/* A copy of p[0..n) in a heap block of exactly n bytes, so that
 * AddressSanitizer catches any read past the end. */
static uint8_t *
exact_copy(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n > 0 ? n : 1);

    assert_non_null(q);
    if (n > 0) {
        memcpy(q, p, n);
    }
    return q;
}

/* ---- fixed header and varint ---- */

static const struct {
    uint32_t v;
    size_t n;
    uint8_t bytes[4];
} varints[] = {
    { 0, 1, { 0x00 } },
    { 127, 1, { 0x7f } },
    { 128, 2, { 0x80, 0x01 } },
    { 16383, 2, { 0xff, 0x7f } },
    { 16384, 3, { 0x80, 0x80, 0x01 } },
    { 2097151, 3, { 0xff, 0xff, 0x7f } },
    { 2097152, 4, { 0x80, 0x80, 0x80, 0x01 } },
    { 268435455, 4, { 0xff, 0xff, 0xff, 0x7f } },
};

static void
test_varint_encode_boundaries(void **state)
{
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(varints) / sizeof(varints[0]); i++) {
        uint8_t out[8];

        memset(out, 0xaa, sizeof(out));
        assert_int_equal(mqtt_varint_size(varints[i].v), varints[i].n);
        assert_int_equal(mqtt_varint_encode(out, varints[i].v),
                         varints[i].n);
        assert_memory_equal(out, varints[i].bytes, varints[i].n);
        assert_int_equal(out[varints[i].n], 0xaa);
    }
}

static void
test_fixed_header_varint_boundaries(void **state)
{
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(varints) / sizeof(varints[0]); i++) {
        uint8_t hdr[5];
        mqtt_fixed_t fh;
        const char *why = NULL;

        hdr[0] = 0x3b; /* PUBLISH, DUP, QoS 1, RETAIN */
        memcpy(hdr + 1, varints[i].bytes, varints[i].n);
        assert_int_equal(mqtt_fixed_header(hdr, 1 + varints[i].n, &fh, &why),
                         MQTT_OK);
        assert_int_equal(fh.type, MQTT_PUBLISH);
        assert_int_equal(fh.flags, 0x0b);
        assert_int_equal(fh.remaining, varints[i].v);
        assert_int_equal(fh.hdr_len, 1 + varints[i].n);
    }
}

static void
test_fixed_header_ignores_following_bytes(void **state)
{
    const uint8_t pkt[] = { 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00 };
    mqtt_fixed_t fh;
    const char *why = NULL;

    (void) state;
    assert_int_equal(mqtt_fixed_header(pkt, sizeof(pkt), &fh, &why),
                     MQTT_OK);
    assert_int_equal(fh.type, MQTT_SUBSCRIBE);
    assert_int_equal(fh.flags, 2);
    assert_int_equal(fh.remaining, 6);
    assert_int_equal(fh.hdr_len, 2);
}

static void
test_fixed_header_incomplete(void **state)
{
    const uint8_t hdr[] = { 0x30, 0x80, 0x80, 0x80, 0x01 };
    mqtt_fixed_t fh;
    const char *why = NULL;
    size_t len;

    (void) state;
    /* Every proper prefix asks for more. */
    for (len = 0; len < sizeof(hdr); len++) {
        assert_int_equal(mqtt_fixed_header(hdr, len, &fh, &why),
                         MQTT_AGAIN);
    }
    assert_int_equal(mqtt_fixed_header(hdr, sizeof(hdr), &fh, &why),
                     MQTT_OK);
    assert_int_equal(fh.remaining, 2097152);
}

static void
test_fixed_header_five_byte_varint(void **state)
{
    const uint8_t hdr[] = { 0x30, 0xff, 0xff, 0xff, 0xff, 0x7f };
    const uint8_t hdr2[] = { 0x30, 0x80, 0x80, 0x80, 0x80, 0x00 };
    mqtt_fixed_t fh;
    const char *why = NULL;

    (void) state;
    assert_int_equal(check_why(mqtt_fixed_header(hdr, sizeof(hdr), &fh,
                                                 &why), &why),
                     MQTT_E_MALFORMED);
    why = NULL;
    assert_int_equal(check_why(mqtt_fixed_header(hdr2, sizeof(hdr2), &fh,
                                                 &why), &why),
                     MQTT_E_MALFORMED);
    /* Known to be bad as soon as the 4th byte asks for a 5th. */
    why = NULL;
    assert_int_equal(check_why(mqtt_fixed_header(hdr, 5, &fh, &why), &why),
                     MQTT_E_MALFORMED);
}

static void
test_fixed_header_type0(void **state)
{
    const uint8_t hdr[] = { 0x00, 0x00 };
    const uint8_t hdr_flags[] = { 0x0f };
    mqtt_fixed_t fh;
    const char *why = NULL;

    (void) state;
    assert_int_equal(check_why(mqtt_fixed_header(hdr, sizeof(hdr), &fh,
                                                 &why), &why),
                     MQTT_E_MALFORMED);
    /* Rejected from the first byte, without waiting for the length. */
    why = NULL;
    assert_int_equal(check_why(mqtt_fixed_header(hdr_flags, 1, &fh, &why),
                               &why),
                     MQTT_E_MALFORMED);
}

static void
test_fixed_header_all_types(void **state)
{
    unsigned t;

    (void) state;
    for (t = 1; t <= 15; t++) {
        uint8_t hdr[2] = { (uint8_t) (t << 4 | 0x05), 0x00 };
        mqtt_fixed_t fh;
        const char *why = NULL;

        assert_int_equal(mqtt_fixed_header(hdr, 2, &fh, &why), MQTT_OK);
        assert_int_equal(fh.type, t);
        assert_int_equal(fh.flags, 0x05);
        assert_int_equal(fh.remaining, 0);
        assert_int_equal(fh.hdr_len, 2);
    }
}

/* ---- CONNECT ---- */

static void
test_connect_v311_all_fields(void **state)
{
    conn_spec_t s = {
        .name = "MQTT", .level = 4,
        .cflags = CF_CLEAN | CF_WILL | CF_WQOS1 | CF_WRETAIN | CF_USER
                  | CF_PASS,
        .keepalive = 60, .id = "client-1", .will_topic = "clients/1/state",
        .will_msg = "offline", .user = "alice", .pass = "s3cret"
    };
    buf_t b;
    mqtt_connect_t c;

    (void) state;
    build_connect(&b, &s);
    assert_int_equal(connect_rc(&b, &c), MQTT_OK);
    assert_int_equal(c.level, MQTT_V311);
    assert_true(c.clean_session);
    assert_true(c.will);
    assert_int_equal(c.will_qos, 1);
    assert_true(c.will_retain);
    assert_true(c.has_username);
    assert_true(c.has_password);
    assert_int_equal(c.keepalive, 60);
    assert_str(c.client_id, "client-1");
    assert_str(c.will_topic, "clients/1/state");
    assert_int_equal(c.will_payload_len, 7);
    assert_memory_equal(c.will_payload, "offline", 7);
    assert_str(c.username, "alice");
    assert_str(c.password, "s3cret");
    /* Strings point into the caller's buffer. */
    assert_true(c.client_id.p > b.b && c.client_id.p < b.b + b.n);
}

static void
test_connect_v311_minimal(void **state)
{
    conn_spec_t s = { .name = "MQTT", .level = 4, .cflags = 0,
                      .keepalive = 0xffff, .id = "x" };
    buf_t b;
    mqtt_connect_t c;

    (void) state;
    build_connect(&b, &s);
    assert_int_equal(connect_rc(&b, &c), MQTT_OK);
    assert_int_equal(c.level, MQTT_V311);
    assert_false(c.clean_session);
    assert_false(c.will);
    assert_int_equal(c.will_qos, 0);
    assert_false(c.will_retain);
    assert_false(c.has_username);
    assert_false(c.has_password);
    assert_int_equal(c.keepalive, 0xffff);
    assert_str(c.client_id, "x");
    assert_int_equal(c.will_topic.len, 0);
    assert_int_equal(c.will_payload_len, 0);
    assert_int_equal(c.username.len, 0);
    assert_int_equal(c.password.len, 0);
}

static void
test_connect_v31(void **state)
{
    conn_spec_t s = { .name = "MQIsdp", .level = 3,
                      .cflags = CF_CLEAN | CF_WILL | CF_WQOS2 | CF_USER,
                      .keepalive = 10, .id = "legacy", .will_topic = "w",
                      .will_msg = "", .user = "bob" };
    buf_t b;
    mqtt_connect_t c;

    (void) state;
    build_connect(&b, &s);
    assert_int_equal(connect_rc(&b, &c), MQTT_OK);
    assert_int_equal(c.level, MQTT_V31);
    assert_true(c.will);
    assert_int_equal(c.will_qos, 2);
    assert_false(c.will_retain);
    assert_str(c.client_id, "legacy");
    assert_str(c.will_topic, "w");
    assert_int_equal(c.will_payload_len, 0);
    assert_true(c.has_username);
    assert_false(c.has_password);
    assert_str(c.username, "bob");
}

/* What mosquitto_pub -i test -u u -P p -k 60 sends, fixed header included. */
static void
test_connect_wire_bytes(void **state)
{
    const uint8_t pkt[] = {
        0x10, 0x16, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xc2, 0x00, 0x3c,
        0x00, 0x04, 't', 'e', 's', 't', 0x00, 0x01, 'u', 0x00, 0x01, 'p'
    };
    mqtt_fixed_t fh;
    mqtt_connect_t c;
    const char *why = NULL;

    (void) state;
    assert_int_equal(mqtt_fixed_header(pkt, sizeof(pkt), &fh, &why),
                     MQTT_OK);
    assert_int_equal(fh.type, MQTT_CONNECT);
    assert_int_equal(fh.hdr_len + fh.remaining, sizeof(pkt));
    assert_int_equal(mqtt_parse_connect(fh.flags, pkt + fh.hdr_len,
                                        fh.remaining, &c, &why),
                     MQTT_OK);
    assert_true(c.clean_session);
    assert_int_equal(c.keepalive, 60);
    assert_str(c.client_id, "test");
    assert_str(c.username, "u");
    assert_str(c.password, "p");
}

static void
test_connect_fixed_flags(void **state)
{
    conn_spec_t s = { .name = "MQTT", .level = 4, .cflags = CF_CLEAN,
                      .id = "a" };
    buf_t b;
    mqtt_connect_t c;
    uint8_t f;

    (void) state;
    build_connect(&b, &s);
    for (f = 1; f < 16; f++) {
        const char *why = NULL;

        assert_int_equal(check_why(mqtt_parse_connect(f, b.b, b.n, &c, &why),
                                   &why),
                         MQTT_E_MALFORMED);
    }
}

static void
test_connect_every_truncation(void **state)
{
    conn_spec_t specs[] = {
        { .name = "MQTT", .level = 4,
          .cflags = CF_WILL | CF_WQOS2 | CF_USER | CF_PASS, .id = "id",
          .will_topic = "wt", .will_msg = "wm", .user = "u", .pass = "pw" },
        { .name = "MQIsdp", .level = 3, .cflags = CF_CLEAN, .id = "abc" },
    };
    size_t i, len;

    (void) state;
    for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        buf_t b;
        mqtt_connect_t c;

        build_connect(&b, &specs[i]);
        assert_int_equal(connect_rc(&b, &c), MQTT_OK);
        for (len = 0; len < b.n; len++) {
            uint8_t *p = exact_copy(b.b, len);
            const char *why = NULL;

            assert_int_equal(check_why(mqtt_parse_connect(0, p, len, &c,
                                                          &why), &why),
                             MQTT_E_MALFORMED);
            free(p);
        }
    }
}

static void
test_connect_trailing_bytes(void **state)
{
    conn_spec_t s = { .name = "MQTT", .level = 4, .cflags = CF_CLEAN,
                      .id = "a" };
    buf_t b;
    mqtt_connect_t c;

    (void) state;
    build_connect(&b, &s);
    put_u8(&b, 0);
    assert_int_equal(connect_rc(&b, &c), MQTT_E_MALFORMED);

    /* A username present but not announced by the flags. */
    s.user = "u";
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);

    /* A password announced, none sent. */
    s.cflags = CF_CLEAN | CF_USER | CF_PASS;
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);
}

static void
test_connect_string_overruns_body(void **state)
{
    buf_t b = { .n = 0 };
    mqtt_connect_t c;

    (void) state;
    put_str(&b, "MQTT");
    put_u8(&b, 4);
    put_u8(&b, CF_CLEAN);
    put_u16(&b, 30);
    put_u16(&b, 100); /* client id says 100 bytes, 3 follow */
    put_bytes(&b, "abc", 3);
    assert_int_equal(connect_rc(&b, &c), MQTT_E_MALFORMED);

    b.n = 0;
    put_u16(&b, 0xffff); /* protocol name runs off the end */
    put_bytes(&b, "MQTT", 4);
    assert_int_equal(connect_rc(&b, &c), MQTT_E_MALFORMED);
}

static void
test_connect_protocol_name_and_level(void **state)
{
    static const struct {
        const char *name;
        uint8_t level;
        int rc;
    } cases[] = {
        { "MQTT", 4, MQTT_OK },
        { "MQIsdp", 3, MQTT_OK },
        { "MQTT", 3, MQTT_E_VERSION },
        { "MQIsdp", 4, MQTT_E_VERSION },
        { "MQIsdp", 5, MQTT_E_VERSION },
        { "MQTT", 0, MQTT_E_VERSION },
        { "MQTT", 6, MQTT_E_VERSION },
        { "MQTT", 0x84, MQTT_E_VERSION }, /* bridge bit, no support */
        { "MQTX", 4, MQTT_E_PROTOCOL },
        { "mqtt", 4, MQTT_E_PROTOCOL },
        { "MQIsdpX", 3, MQTT_E_PROTOCOL },
        { "MQT", 4, MQTT_E_PROTOCOL },
        { "", 4, MQTT_E_PROTOCOL },
        { "HTTP", 4, MQTT_E_PROTOCOL },
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conn_spec_t s = { .name = cases[i].name, .level = cases[i].level,
                          .cflags = CF_CLEAN, .id = "abc" };

        assert_int_equal(spec_rc(&s), cases[i].rc);
    }
}

static void
test_connect_reserved_flag(void **state)
{
    conn_spec_t s = { .name = "MQTT", .level = 4,
                      .cflags = CF_CLEAN | CF_RESERVED, .id = "abc" };

    (void) state;
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);
    s.name = "MQIsdp";
    s.level = 3;
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);
}

static void
test_connect_will_flags(void **state)
{
    conn_spec_t s = { .name = "MQTT", .level = 4, .id = "abc" };

    (void) state;
    /* Will QoS 3 with a will. */
    s.cflags = CF_CLEAN | CF_WILL | CF_WQOS3;
    s.will_topic = "t";
    s.will_msg = "m";
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);

    /* No will: QoS and retain must be 0. */
    s.will_topic = NULL;
    s.will_msg = NULL;
    s.cflags = CF_CLEAN | CF_WQOS1;
    assert_int_equal(spec_rc(&s), MQTT_E_PROTOCOL);
    s.cflags = CF_CLEAN | CF_WQOS2;
    assert_int_equal(spec_rc(&s), MQTT_E_PROTOCOL);
    s.cflags = CF_CLEAN | CF_WRETAIN;
    assert_int_equal(spec_rc(&s), MQTT_E_PROTOCOL);
    s.cflags = CF_CLEAN | CF_WQOS3;
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);

    /* Same rules for 3.1. */
    s.name = "MQIsdp";
    s.level = 3;
    s.cflags = CF_CLEAN | CF_WRETAIN;
    assert_int_equal(spec_rc(&s), MQTT_E_PROTOCOL);

    /* Will, QoS 0, retained: fine. */
    s.cflags = CF_CLEAN | CF_WILL | CF_WRETAIN;
    s.will_topic = "t";
    s.will_msg = "m";
    assert_int_equal(spec_rc(&s), MQTT_OK);
}

static void
test_connect_password_without_username(void **state)
{
    conn_spec_t s = { .name = "MQTT", .level = 4,
                      .cflags = CF_CLEAN | CF_PASS, .id = "abc",
                      .pass = "pw" };
    conn_spec_t u = { .name = "MQTT", .level = 4,
                      .cflags = CF_CLEAN | CF_USER, .id = "abc",
                      .user = "only-user" };

    (void) state;
    assert_int_equal(spec_rc(&s), MQTT_E_PROTOCOL);
    s.name = "MQIsdp";
    s.level = 3;
    assert_int_equal(spec_rc(&s), MQTT_E_PROTOCOL);
    /* The other way round is allowed. */
    assert_int_equal(spec_rc(&u), MQTT_OK);
}

static void
test_connect_utf8_fields(void **state)
{
    conn_spec_t s = { .name = "MQTT", .level = 4, .cflags = CF_CLEAN };
    buf_t b = { .n = 0 };
    mqtt_connect_t c;
    const uint8_t nul_id[] = { 'a', 0x00, 'b' };

    (void) state;
    s.id = "\xc0\x80"; /* overlong U+0000 */
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);
    s.id = "\xed\xa0\x80"; /* surrogate */
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);
    s.id = "caf\xc3\xa9"; /* "café" */
    assert_int_equal(spec_rc(&s), MQTT_OK);

    /* U+0000 in the client id. */
    put_str(&b, "MQTT");
    put_u8(&b, 4);
    put_u8(&b, CF_CLEAN);
    put_u16(&b, 0);
    put_lstr(&b, nul_id, sizeof(nul_id));
    assert_int_equal(connect_rc(&b, &c), MQTT_E_MALFORMED);

    s.id = "abc";
    s.cflags = CF_CLEAN | CF_WILL;
    s.will_topic = "a/\xff";
    s.will_msg = "m";
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);

    s.cflags = CF_CLEAN | CF_USER;
    s.will_topic = NULL;
    s.will_msg = NULL;
    s.user = "\xe2\x82"; /* truncated sequence */
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);
    s.user = "\xe2\x82\xac"; /* "€" */
    assert_int_equal(spec_rc(&s), MQTT_OK);
}

static void
test_connect_binary_password_and_will(void **state)
{
    const uint8_t bin[] = { 0x00, 0xff, 0xc0, 0x80, 0xed, 0xa0, 0x80 };
    buf_t b = { .n = 0 };
    mqtt_connect_t c;

    (void) state;
    put_str(&b, "MQTT");
    put_u8(&b, 4);
    put_u8(&b, CF_CLEAN | CF_WILL | CF_USER | CF_PASS);
    put_u16(&b, 0);
    put_str(&b, "abc");
    put_str(&b, "will/t");
    put_lstr(&b, bin, sizeof(bin));
    put_str(&b, "user");
    put_lstr(&b, bin, sizeof(bin));
    assert_int_equal(connect_rc(&b, &c), MQTT_OK);
    assert_int_equal(c.will_payload_len, sizeof(bin));
    assert_memory_equal(c.will_payload, bin, sizeof(bin));
    assert_int_equal(c.password.len, sizeof(bin));
    assert_memory_equal(c.password.p, bin, sizeof(bin));
}

static void
test_connect_will_topic(void **state)
{
    conn_spec_t s = { .name = "MQTT", .level = 4,
                      .cflags = CF_CLEAN | CF_WILL, .id = "abc",
                      .will_msg = "m" };

    (void) state;
    s.will_topic = "";
    assert_int_equal(spec_rc(&s), MQTT_E_MALFORMED);
    s.will_topic = "a/+/b";
    assert_int_equal(spec_rc(&s), MQTT_E_PROTOCOL);
    s.will_topic = "a/#";
    assert_int_equal(spec_rc(&s), MQTT_E_PROTOCOL);
    s.will_topic = "#";
    assert_int_equal(spec_rc(&s), MQTT_E_PROTOCOL);
    s.will_topic = "/";
    assert_int_equal(spec_rc(&s), MQTT_OK);
}

static void
test_connect_client_id_v31(void **state)
{
    conn_spec_t s = { .name = "MQIsdp", .level = 3, .cflags = CF_CLEAN };
    buf_t b;
    mqtt_connect_t c;

    (void) state;
    s.id = "";
    assert_int_equal(spec_rc(&s), MQTT_E_CLIENTID);
    s.cflags = 0;
    assert_int_equal(spec_rc(&s), MQTT_E_CLIENTID);
    s.id = "a";
    assert_int_equal(spec_rc(&s), MQTT_OK);
    s.id = "abcdefghijklmnopqrstuvw"; /* 23 */
    build_connect(&b, &s);
    assert_int_equal(connect_rc(&b, &c), MQTT_OK);
    assert_int_equal(c.client_id.len, 23);
    s.id = "abcdefghijklmnopqrstuvwx"; /* 24 */
    assert_int_equal(spec_rc(&s), MQTT_E_CLIENTID);
    /* The limit is in bytes: 12 two-byte characters are 24 bytes. */
    s.id = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
    assert_int_equal(spec_rc(&s), MQTT_E_CLIENTID);
}

static void
test_connect_client_id_v311(void **state)
{
    conn_spec_t s = { .name = "MQTT", .level = 4, .cflags = CF_CLEAN,
                      .id = "" };
    char longid[301];
    buf_t b;
    mqtt_connect_t c;

    (void) state;
    build_connect(&b, &s);
    assert_int_equal(connect_rc(&b, &c), MQTT_OK);
    assert_int_equal(c.client_id.len, 0);
    assert_true(c.clean_session);

    s.cflags = 0;
    assert_int_equal(spec_rc(&s), MQTT_E_CLIENTID);

    memset(longid, 'z', 300);
    longid[300] = '\0';
    s.id = longid;
    build_connect(&b, &s);
    assert_int_equal(connect_rc(&b, &c), MQTT_OK);
    assert_int_equal(c.client_id.len, 300);
}

/* MQTT_E_CLIENTID means "send CONNACK 0x02": never for a packet that is
 * otherwise broken, which must close without an answer. */
static void
test_connect_clientid_only_when_well_formed(void **state)
{
    conn_spec_t s = { .name = "MQTT", .level = 4, .cflags = 0, .id = "" };
    conn_spec_t s31 = { .name = "MQIsdp", .level = 3,
                        .cflags = CF_CLEAN | CF_WILL,
                        .id = "abcdefghijklmnopqrstuvwxyz",
                        .will_topic = "a/+", .will_msg = "m" };
    buf_t b;
    mqtt_connect_t c;

    (void) state;
    build_connect(&b, &s);
    put_u8(&b, 'x');
    assert_int_equal(connect_rc(&b, &c), MQTT_E_MALFORMED);
    assert_int_equal(spec_rc(&s31), MQTT_E_PROTOCOL);

    /* On MQTT_E_CLIENTID the rest of the CONNECT is filled in. */
    s.cflags = CF_USER;
    s.user = "u";
    s.keepalive = 5;
    build_connect(&b, &s);
    assert_int_equal(connect_rc(&b, &c), MQTT_E_CLIENTID);
    assert_int_equal(c.level, MQTT_V311);
    assert_int_equal(c.keepalive, 5);
    assert_str(c.username, "u");
}

/* ---- PUBLISH ---- */

static void
build_publish(buf_t *b, const char *topic, int pid, const void *payload,
              size_t n)
{
    b->n = 0;
    put_str(b, topic);
    if (pid >= 0) {
        put_u16(b, (uint16_t) pid);
    }
    put_bytes(b, payload, n);
}

static void
test_publish_qos0(void **state)
{
    buf_t b;
    mqtt_publish_t p;

    (void) state;
    build_publish(&b, "a/b", -1, "hello", 5);
    assert_int_equal(publish_rc(0x00, &b, &p), MQTT_OK);
    assert_int_equal(p.qos, 0);
    assert_false(p.dup);
    assert_false(p.retain);
    assert_str(p.topic, "a/b");
    assert_int_equal(p.pid, 0);
    assert_int_equal(p.payload_len, 5);
    assert_memory_equal(p.payload, "hello", 5);

    /* At QoS 0 the two bytes after the topic are payload, not an id. */
    build_publish(&b, "t", -1, "\x00\x01", 2);
    assert_int_equal(publish_rc(0x01, &b, &p), MQTT_OK);
    assert_true(p.retain);
    assert_int_equal(p.pid, 0);
    assert_int_equal(p.payload_len, 2);
    assert_memory_equal(p.payload, "\x00\x01", 2);
}

static void
test_publish_qos1_qos2(void **state)
{
    buf_t b;
    mqtt_publish_t p;

    (void) state;
    build_publish(&b, "sensors/temp", 10, "21.5", 4);
    assert_int_equal(publish_rc(0x03, &b, &p), MQTT_OK);
    assert_int_equal(p.qos, 1);
    assert_true(p.retain);
    assert_false(p.dup);
    assert_int_equal(p.pid, 10);
    assert_str(p.topic, "sensors/temp");
    assert_int_equal(p.payload_len, 4);
    assert_memory_equal(p.payload, "21.5", 4);

    build_publish(&b, "x", 0xffff, "\x00\xff", 2);
    assert_int_equal(publish_rc(0x0c, &b, &p), MQTT_OK);
    assert_int_equal(p.qos, 2);
    assert_true(p.dup);
    assert_false(p.retain);
    assert_int_equal(p.pid, 0xffff);
    assert_int_equal(p.payload_len, 2);
    assert_memory_equal(p.payload, "\x00\xff", 2);
}

static void
test_publish_empty_payload(void **state)
{
    buf_t b;
    mqtt_publish_t p;

    (void) state;
    build_publish(&b, "t", -1, "", 0);
    assert_int_equal(publish_rc(0x01, &b, &p), MQTT_OK);
    assert_int_equal(p.payload_len, 0);
    build_publish(&b, "t", 7, "", 0);
    assert_int_equal(publish_rc(0x02, &b, &p), MQTT_OK);
    assert_int_equal(p.pid, 7);
    assert_int_equal(p.payload_len, 0);
}

static void
test_publish_flags(void **state)
{
    buf_t b;
    mqtt_publish_t p;

    (void) state;
    build_publish(&b, "t", 1, "x", 1);
    assert_int_equal(publish_rc(0x06, &b, &p), MQTT_E_MALFORMED); /* QoS 3 */
    assert_int_equal(publish_rc(0x07, &b, &p), MQTT_E_MALFORMED);
    assert_int_equal(publish_rc(0x0e, &b, &p), MQTT_E_MALFORMED);
    build_publish(&b, "t", -1, "x", 1);
    assert_int_equal(publish_rc(0x08, &b, &p), MQTT_E_PROTOCOL); /* DUP 0 */
    assert_int_equal(publish_rc(0x09, &b, &p), MQTT_E_PROTOCOL);
}

static void
test_publish_topic(void **state)
{
    static const struct {
        const char *topic;
        int rc;
    } cases[] = {
        { "", MQTT_E_MALFORMED },
        { "+", MQTT_E_PROTOCOL },
        { "#", MQTT_E_PROTOCOL },
        { "a/+/c", MQTT_E_PROTOCOL },
        { "a/b/#", MQTT_E_PROTOCOL },
        { "a+b", MQTT_E_PROTOCOL },
        { "a/\xc0\xaf", MQTT_E_MALFORMED },
        { "\xf4\x90\x80\x80", MQTT_E_MALFORMED },
        { "/", MQTT_OK },
        { "$SYS/broker/uptime", MQTT_OK },
        { "with space/and\ttab", MQTT_OK },
        { "caf\xc3\xa9/\xf0\x9f\x98\x80", MQTT_OK },
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_t b;
        mqtt_publish_t p;

        build_publish(&b, cases[i].topic, 1, "x", 1);
        assert_int_equal(publish_rc(0x02, &b, &p), cases[i].rc);
    }
}

static void
test_publish_topic_nul(void **state)
{
    const uint8_t topic[] = { 'a', 0x00, 'b' };
    buf_t b = { .n = 0 };
    mqtt_publish_t p;

    (void) state;
    put_lstr(&b, topic, sizeof(topic));
    assert_int_equal(publish_rc(0x00, &b, &p), MQTT_E_MALFORMED);
}

static void
test_publish_packet_id(void **state)
{
    buf_t b;
    mqtt_publish_t p;

    (void) state;
    build_publish(&b, "t", 0, "x", 1);
    assert_int_equal(publish_rc(0x02, &b, &p), MQTT_E_PROTOCOL);
    assert_int_equal(publish_rc(0x04, &b, &p), MQTT_E_PROTOCOL);
    assert_int_equal(publish_rc(0x0a, &b, &p), MQTT_E_PROTOCOL);
}

static void
test_publish_truncated(void **state)
{
    buf_t b;
    size_t len;

    (void) state;
    /* QoS 1: topic length, topic and packet id are all required. */
    build_publish(&b, "abc", 5, "", 0);
    for (len = 0; len < b.n; len++) {
        uint8_t *q = exact_copy(b.b, len);
        mqtt_publish_t p;
        const char *why = NULL;

        assert_int_equal(check_why(mqtt_parse_publish(MQTT_V311, 0x02, q, len, &p,
                                                      &why), &why),
                         MQTT_E_MALFORMED);
        free(q);
    }
    /* QoS 0: everything shorter than the topic is malformed. */
    build_publish(&b, "abc", -1, "", 0);
    for (len = 0; len < b.n; len++) {
        uint8_t *q = exact_copy(b.b, len);
        mqtt_publish_t p;
        const char *why = NULL;

        assert_int_equal(check_why(mqtt_parse_publish(MQTT_V311, 0x00, q, len, &p,
                                                      &why), &why),
                         MQTT_E_MALFORMED);
        free(q);
    }
}

static void
test_publish_round_trip(void **state)
{
    static uint8_t pkt[32768];
    static const size_t sizes[] = { 0, 100, 200, 20000 };
    size_t i, j;

    (void) state;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t body = 2 + 5 + 2 + sizes[i], off;
        mqtt_fixed_t fh;
        mqtt_publish_t p;
        const char *why = NULL;

        off = mqtt_write_publish_header(pkt, 1, true, true,
                                        (uint32_t) body);
        assert_int_equal(off, 1 + mqtt_varint_size((uint32_t) body));
        pkt[off++] = 0;
        pkt[off++] = 5;
        memcpy(pkt + off, "a/b/c", 5);
        off += 5;
        pkt[off++] = 0x12;
        pkt[off++] = 0x34;
        for (j = 0; j < sizes[i]; j++) {
            pkt[off++] = (uint8_t) j;
        }

        assert_int_equal(mqtt_fixed_header(pkt, off, &fh, &why), MQTT_OK);
        assert_int_equal(fh.type, MQTT_PUBLISH);
        assert_int_equal(fh.remaining, body);
        assert_int_equal(fh.hdr_len + fh.remaining, off);
        assert_int_equal(mqtt_parse_publish(MQTT_V311, fh.flags, pkt + fh.hdr_len,
                                            fh.remaining, &p, &why),
                         MQTT_OK);
        assert_int_equal(p.qos, 1);
        assert_true(p.dup);
        assert_true(p.retain);
        assert_str(p.topic, "a/b/c");
        assert_int_equal(p.pid, 0x1234);
        assert_int_equal(p.payload_len, sizes[i]);
        for (j = 0; j < sizes[i]; j++) {
            assert_int_equal(p.payload[j], (uint8_t) j);
        }
    }
}

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP ---- */

static void
test_ack_parse(void **state)
{
    static const struct {
        uint8_t type, flags;
    } ok[] = {
        { MQTT_PUBACK, 0 },
        { MQTT_PUBREC, 0 },
        { MQTT_PUBREL, 2 },
        { MQTT_PUBCOMP, 0 },
    };
    const uint8_t body[] = { 0xab, 0xcd };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint16_t pid = 0;
        const char *why = NULL;

        assert_int_equal(mqtt_parse_ack(MQTT_V311, ok[i].type, ok[i].flags, body, 2,
                                        &pid, NULL, &why),
                         MQTT_OK);
        assert_int_equal(pid, 0xabcd);
    }
}

static void
test_ack_errors(void **state)
{
    const uint8_t body[] = { 0x00, 0x01, 0x00 };
    const uint8_t zero[] = { 0x00, 0x00 };
    uint16_t pid;
    const char *why = NULL;
    uint8_t f;

    (void) state;
    for (f = 0; f < 16; f++) {
        int want = f == 0 ? MQTT_OK : MQTT_E_MALFORMED;
        int want_rel = f == 2 ? MQTT_OK : MQTT_E_MALFORMED;

        why = NULL;
        assert_int_equal(check_why(mqtt_parse_ack(MQTT_V311, MQTT_PUBACK, f, body, 2,
                                                  &pid, NULL, &why), &why),
                         want);
        why = NULL;
        assert_int_equal(check_why(mqtt_parse_ack(MQTT_V311, MQTT_PUBREC, f, body, 2,
                                                  &pid, NULL, &why), &why),
                         want);
        why = NULL;
        assert_int_equal(check_why(mqtt_parse_ack(MQTT_V311, MQTT_PUBCOMP, f, body, 2,
                                                  &pid, NULL, &why), &why),
                         want);
        why = NULL;
        assert_int_equal(check_why(mqtt_parse_ack(MQTT_V311, MQTT_PUBREL, f, body, 2,
                                                  &pid, NULL, &why), &why),
                         want_rel);
    }

    why = NULL;
    assert_int_equal(check_why(mqtt_parse_ack(MQTT_V311, MQTT_PUBACK, 0, body, 1, &pid, NULL,
                                              &why), &why),
                     MQTT_E_MALFORMED);
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_ack(MQTT_V311, MQTT_PUBACK, 0, body, 3, &pid, NULL,
                                              &why), &why),
                     MQTT_E_MALFORMED);
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_ack(MQTT_V311, MQTT_PUBREL, 2, body, 0, &pid, NULL,
                                              &why), &why),
                     MQTT_E_MALFORMED);
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_ack(MQTT_V311, MQTT_PUBCOMP, 0, zero, 2, &pid, NULL,
                                              &why), &why),
                     MQTT_E_PROTOCOL);
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_ack(MQTT_V311, MQTT_SUBACK, 0, body, 2, &pid, NULL,
                                              &why), &why),
                     MQTT_E_PROTOCOL);
}

static void
test_ack_round_trip(void **state)
{
    static const uint8_t types[] = { MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL,
                                     MQTT_PUBCOMP };
    static const uint8_t first[] = { 0x40, 0x50, 0x62, 0x70 };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(types); i++) {
        uint8_t out[5] = { 0, 0, 0, 0, 0xee };
        mqtt_fixed_t fh;
        uint16_t pid = 0;
        const char *why = NULL;

        assert_int_equal(mqtt_write_ack(out, types[i], 0x0102), 4);
        assert_int_equal(out[0], first[i]);
        assert_int_equal(out[1], 0x02);
        assert_int_equal(out[2], 0x01);
        assert_int_equal(out[3], 0x02);
        assert_int_equal(out[4], 0xee);

        assert_int_equal(mqtt_fixed_header(out, 4, &fh, &why), MQTT_OK);
        assert_int_equal(fh.type, types[i]);
        assert_int_equal(mqtt_parse_ack(MQTT_V311, fh.type, fh.flags, out + fh.hdr_len,
                                        fh.remaining, &pid, NULL, &why),
                         MQTT_OK);
        assert_int_equal(pid, 0x0102);
    }
}

static void
test_write_unsuback(void **state)
{
    uint8_t out[4];
    const uint8_t want[] = { 0xb0, 0x02, 0xff, 0xfe };

    (void) state;
    assert_int_equal(mqtt_write_ack(out, MQTT_UNSUBACK, 0xfffe), 4);
    assert_memory_equal(out, want, 4);
}

/* ---- SUBSCRIBE ---- */

static void
test_subscribe_parse_and_iterate(void **state)
{
    /* mosquitto_sub -t 'a/+' -t '#' -t 'x/y' -q 2, with QoS 0, 1, 2. */
    const uint8_t pkt[] = { 0x82, 0x12, 0x00, 0x2a,
                            0x00, 0x03, 'a', '/', '+', 0x00,
                            0x00, 0x01, '#', 0x01,
                            0x00, 0x03, 'x', '/', 'y', 0x02 };
    static const char *const filters[] = { "a/+", "#", "x/y" };
    mqtt_fixed_t fh;
    mqtt_iter_t it;
    mqtt_str_t f;
    uint16_t pid = 0;
    uint8_t qos;
    const char *why = NULL;
    int i;

    (void) state;
    assert_int_equal(mqtt_fixed_header(pkt, sizeof(pkt), &fh, &why),
                     MQTT_OK);
    assert_int_equal(fh.type, MQTT_SUBSCRIBE);
    assert_int_equal(fh.hdr_len + fh.remaining, sizeof(pkt));
    assert_int_equal(mqtt_parse_subscribe(MQTT_V311, fh.flags, pkt + fh.hdr_len,
                                          fh.remaining, &pid, NULL, &it, &why),
                     MQTT_OK);
    assert_int_equal(pid, 42);
    for (i = 0; i < 3; i++) {
        qos = 0xff;
        assert_true(mqtt_iter_next(&it, &f, &qos));
        assert_str(f, filters[i]);
        assert_int_equal(qos, i);
    }
    assert_false(mqtt_iter_next(&it, &f, &qos));
    assert_false(mqtt_iter_next(&it, &f, &qos));
}

static void
test_subscribe_filter_syntax_not_checked(void **state)
{
    buf_t b = { .n = 0 };
    mqtt_iter_t it;
    mqtt_str_t f;
    uint16_t pid;
    uint8_t qos;
    const char *why = NULL;

    (void) state;
    put_u16(&b, 1);
    put_str(&b, "a#b/+x");
    put_u8(&b, 1);
    assert_int_equal(mqtt_parse_subscribe(MQTT_V311, 2, b.b, b.n, &pid, NULL, &it, &why),
                     MQTT_OK);
    assert_true(mqtt_iter_next(&it, &f, &qos));
    assert_str(f, "a#b/+x");
    assert_int_equal(qos, 1);
    assert_false(mqtt_iter_next(&it, &f, &qos));
}

static void
test_subscribe_errors(void **state)
{
    const uint8_t nul[] = { 'a', 0x00 };
    buf_t b;
    uint8_t f;

    (void) state;
    /* Flags must be 2. */
    b.n = 0;
    put_u16(&b, 1);
    put_str(&b, "a");
    put_u8(&b, 0);
    assert_int_equal(subscribe_rc(2, &b), MQTT_OK);
    for (f = 0; f < 16; f++) {
        if (f != 2) {
            assert_int_equal(subscribe_rc(f, &b), MQTT_E_MALFORMED);
        }
    }

    /* Packet id 0. */
    b.b[0] = 0;
    b.b[1] = 0;
    assert_int_equal(subscribe_rc(2, &b), MQTT_E_PROTOCOL);

    /* No entries at all. */
    b.n = 0;
    put_u16(&b, 1);
    assert_int_equal(subscribe_rc(2, &b), MQTT_E_PROTOCOL);

    /* Empty filter. */
    put_str(&b, "");
    put_u8(&b, 0);
    assert_int_equal(subscribe_rc(2, &b), MQTT_E_MALFORMED);

    /* Filter length past the end. */
    b.n = 2;
    put_u16(&b, 10);
    put_bytes(&b, "abc", 3);
    assert_int_equal(subscribe_rc(2, &b), MQTT_E_MALFORMED);

    /* Missing QoS byte. */
    b.n = 2;
    put_str(&b, "abc");
    assert_int_equal(subscribe_rc(2, &b), MQTT_E_MALFORMED);

    /* Bad UTF-8 and U+0000. */
    b.n = 2;
    put_str(&b, "a/\xed\xbf\xbf");
    put_u8(&b, 0);
    assert_int_equal(subscribe_rc(2, &b), MQTT_E_MALFORMED);
    b.n = 2;
    put_lstr(&b, nul, sizeof(nul));
    put_u8(&b, 0);
    assert_int_equal(subscribe_rc(2, &b), MQTT_E_MALFORMED);

    /* The second entry is bad. */
    b.n = 2;
    put_str(&b, "ok");
    put_u8(&b, 1);
    put_str(&b, "");
    put_u8(&b, 1);
    assert_int_equal(subscribe_rc(2, &b), MQTT_E_MALFORMED);

    /* A stray byte after a good entry. */
    b.n = 2;
    put_str(&b, "ok");
    put_u8(&b, 1);
    put_u8(&b, 0);
    assert_int_equal(subscribe_rc(2, &b), MQTT_E_MALFORMED);
}

static void
test_subscribe_requested_qos(void **state)
{
    unsigned q;

    (void) state;
    for (q = 0; q < 256; q++) {
        buf_t b = { .n = 0 };

        put_u16(&b, 9);
        put_str(&b, "t");
        put_u8(&b, (uint8_t) q);
        assert_int_equal(subscribe_rc(2, &b),
                         q <= 2 ? MQTT_OK : MQTT_E_MALFORMED);
    }
}

static void
test_subscribe_truncated(void **state)
{
    buf_t b = { .n = 0 };
    size_t len;

    (void) state;
    put_u16(&b, 3);
    put_str(&b, "a/b");
    put_u8(&b, 1);
    put_str(&b, "c");
    put_u8(&b, 2);
    assert_int_equal(subscribe_rc(2, &b), MQTT_OK);
    for (len = 0; len < b.n; len++) {
        uint8_t *q = exact_copy(b.b, len);
        uint16_t pid;
        mqtt_iter_t it;
        const char *why = NULL;
        int rc = check_why(mqtt_parse_subscribe(MQTT_V311, 2, q, len, &pid, NULL, &it, &why),
                           &why);

        /* Two bytes (just the id) is "no entries", a protocol error; a
         * cut right after the first entry is still a complete list. */
        if (len == 8) {
            assert_int_equal(rc, MQTT_OK);
        } else {
            assert_int_equal(rc, len == 2 ? MQTT_E_PROTOCOL
                                          : MQTT_E_MALFORMED);
        }
        free(q);
    }
}

/* ---- UNSUBSCRIBE ---- */

static void
test_unsubscribe_parse_and_iterate(void **state)
{
    const uint8_t pkt[] = { 0xa2, 0x0b, 0x12, 0x34,
                            0x00, 0x03, 'a', '/', '+',
                            0x00, 0x02, 'b', '#' };
    mqtt_fixed_t fh;
    mqtt_iter_t it;
    mqtt_str_t f;
    uint16_t pid = 0;
    uint8_t qos = 0xff;
    const char *why = NULL;

    (void) state;
    assert_int_equal(mqtt_fixed_header(pkt, sizeof(pkt), &fh, &why),
                     MQTT_OK);
    assert_int_equal(fh.type, MQTT_UNSUBSCRIBE);
    assert_int_equal(fh.hdr_len + fh.remaining, sizeof(pkt));
    assert_int_equal(mqtt_parse_unsubscribe(MQTT_V311, fh.flags, pkt + fh.hdr_len,
                                            fh.remaining, &pid, NULL, &it, &why),
                     MQTT_OK);
    assert_int_equal(pid, 0x1234);
    assert_true(mqtt_iter_next(&it, &f, NULL));
    assert_str(f, "a/+");
    assert_true(mqtt_iter_next(&it, &f, &qos));
    assert_str(f, "b#");
    assert_int_equal(qos, 0);
    assert_false(mqtt_iter_next(&it, &f, NULL));
}

static void
test_unsubscribe_errors(void **state)
{
    buf_t b;
    uint8_t f;
    size_t len;

    (void) state;
    b.n = 0;
    put_u16(&b, 7);
    put_str(&b, "a");
    put_str(&b, "bc");
    assert_int_equal(unsubscribe_rc(2, &b), MQTT_OK);
    for (f = 0; f < 16; f++) {
        if (f != 2) {
            assert_int_equal(unsubscribe_rc(f, &b), MQTT_E_MALFORMED);
        }
    }
    for (len = 0; len < b.n; len++) {
        uint8_t *q = exact_copy(b.b, len);
        uint16_t pid;
        mqtt_iter_t it;
        const char *why = NULL;
        int rc = check_why(mqtt_parse_unsubscribe(MQTT_V311, 2, q, len, &pid, NULL, &it,
                                                  &why), &why);

        /* Cut right after an entry is still a complete list. */
        if (len == 5) {
            assert_int_equal(rc, MQTT_OK);
        } else {
            assert_int_equal(rc, len == 2 ? MQTT_E_PROTOCOL
                                          : MQTT_E_MALFORMED);
        }
        free(q);
    }

    b.b[0] = 0;
    b.b[1] = 0;
    assert_int_equal(unsubscribe_rc(2, &b), MQTT_E_PROTOCOL);

    b.n = 0;
    put_u16(&b, 1);
    put_str(&b, "");
    assert_int_equal(unsubscribe_rc(2, &b), MQTT_E_MALFORMED);

    b.n = 2;
    put_str(&b, "\xf8\x88\x80\x80\x80"); /* 5-byte form */
    assert_int_equal(unsubscribe_rc(2, &b), MQTT_E_MALFORMED);
}

/* ---- PINGREQ, DISCONNECT ---- */

static void
test_empty_packets(void **state)
{
    const uint8_t ping[] = { 0xc0, 0x00 };
    const uint8_t disc[] = { 0xe0, 0x00 };
    mqtt_fixed_t fh;
    const char *why = NULL;
    uint8_t f;

    (void) state;
    assert_int_equal(mqtt_fixed_header(ping, 2, &fh, &why), MQTT_OK);
    assert_int_equal(fh.type, MQTT_PINGREQ);
    assert_int_equal(mqtt_parse_empty(fh.type, fh.flags, fh.remaining, &why),
                     MQTT_OK);
    assert_int_equal(mqtt_fixed_header(disc, 2, &fh, &why), MQTT_OK);
    assert_int_equal(fh.type, MQTT_DISCONNECT);
    assert_int_equal(mqtt_parse_empty(fh.type, fh.flags, fh.remaining, &why),
                     MQTT_OK);

    for (f = 1; f < 16; f++) {
        why = NULL;
        assert_int_equal(check_why(mqtt_parse_empty(MQTT_PINGREQ, f, 0,
                                                    &why), &why),
                         MQTT_E_MALFORMED);
        why = NULL;
        assert_int_equal(check_why(mqtt_parse_empty(MQTT_DISCONNECT, f, 0,
                                                    &why), &why),
                         MQTT_E_MALFORMED);
    }
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_empty(MQTT_PINGREQ, 0, 1, &why),
                               &why),
                     MQTT_E_MALFORMED);
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_empty(MQTT_DISCONNECT, 0, 200,
                                                &why), &why),
                     MQTT_E_MALFORMED);
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_empty(MQTT_PINGRESP, 0, 0, &why),
                               &why),
                     MQTT_E_PROTOCOL);
}

/* ---- UTF-8 ---- */

typedef struct utf8_case {
    const char *s;
    size_t len; /* 0: strlen(s) */
    const char *what;
} utf8_case_t;

static void
test_utf8_valid(void **state)
{
    static const utf8_case_t ok[] = {
        { "", 0, "empty" },
        { "hello/world", 0, "ASCII" },
        { "\x01\x1f\x7f", 0, "control characters (SHOULD NOT, not MUST)" },
        { "\xc2\x80", 0, "U+0080, smallest 2-byte" },
        { "\xdf\xbf", 0, "U+07FF, largest 2-byte" },
        { "\xe0\xa0\x80", 0, "U+0800, smallest 3-byte" },
        { "\xed\x9f\xbf", 0, "U+D7FF, below the surrogates" },
        { "\xee\x80\x80", 0, "U+E000, above the surrogates" },
        { "\xef\xbb\xbf", 0, "U+FEFF, BOM" },
        { "\xef\xbf\xbf", 0, "U+FFFF" },
        { "\xf0\x90\x80\x80", 0, "U+10000, smallest 4-byte" },
        { "\xf4\x8f\xbf\xbf", 0, "U+10FFFF, largest" },
        { "A\xf0\xaa\x9b\x94", 0, "spec 1.5.3.1 example" },
        { "\xe2\x82\xac/\xc3\xa9", 0, "mixed" },
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t len = ok[i].len ? ok[i].len : strlen(ok[i].s);
        uint8_t *p = exact_copy((const uint8_t *) ok[i].s, len);

        if (!mqtt_utf8_valid(p, len)) {
            fail_msg("rejected: %s", ok[i].what);
        }
        free(p);
    }
    assert_true(mqtt_utf8_valid(NULL, 0));
}

static void
test_utf8_invalid(void **state)
{
    static const utf8_case_t bad[] = {
        { "\x00", 1, "U+0000" },
        { "ab\x00" "cd", 5, "U+0000 inside" },
        { "\xc0\x80", 0, "overlong U+0000" },
        { "\xc0\xaf", 0, "overlong '/'" },
        { "\xc1\xbf", 0, "overlong U+007F" },
        { "\xe0\x80\x80", 0, "overlong 3-byte U+0000" },
        { "\xe0\x9f\xbf", 0, "overlong U+07FF" },
        { "\xf0\x80\x80\x80", 0, "overlong 4-byte U+0000" },
        { "\xf0\x8f\xbf\xbf", 0, "overlong U+FFFF" },
        { "\xed\xa0\x80", 0, "U+D800" },
        { "\xed\xaf\xbf", 0, "U+DBFF" },
        { "\xed\xb0\x80", 0, "U+DC00" },
        { "\xed\xbf\xbf", 0, "U+DFFF" },
        { "\xed\xa0\xbd\xed\xb8\x80", 0, "CESU-8 surrogate pair" },
        { "\xf4\x90\x80\x80", 0, "U+110000" },
        { "\xf5\x80\x80\x80", 0, "lead F5" },
        { "\xf7\xbf\xbf\xbf", 0, "U+1FFFFF" },
        { "\xf8\x88\x80\x80\x80", 0, "5-byte form" },
        { "\xfc\x84\x80\x80\x80\x80", 0, "6-byte form" },
        { "\xfe", 0, "FE" },
        { "\xff", 0, "FF" },
        { "\x80", 0, "lone continuation" },
        { "a\xbf", 0, "continuation after ASCII" },
        { "\xc3", 0, "truncated 2-byte" },
        { "\xe2\x82", 0, "truncated 3-byte" },
        { "\xf0\x9f\x98", 0, "truncated 4-byte" },
        { "\xc3(", 0, "bad 2nd byte" },
        { "\xe2\x28\xa1", 0, "bad 2nd byte of 3" },
        { "\xe2\x82\x28", 0, "bad 3rd byte of 3" },
        { "\xf0\x9f\x98(", 0, "bad 4th byte of 4" },
        { "\xf0\x9f(\x80", 0, "bad 3rd byte of 4" },
        { "ok\xe2\x82", 0, "truncated at the end" },
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = bad[i].len ? bad[i].len : strlen(bad[i].s);
        uint8_t *p = exact_copy((const uint8_t *) bad[i].s, len);

        if (mqtt_utf8_valid(p, len)) {
            fail_msg("accepted: %s", bad[i].what);
        }
        free(p);
    }
}

/* The length bounds the check: a valid prefix of a longer buffer. */
static void
test_utf8_respects_length(void **state)
{
    const uint8_t s[] = { 'a', 'b', 0xe2, 0x82, 0xac, 0x00 };

    (void) state;
    assert_true(mqtt_utf8_valid(s, 2));
    assert_false(mqtt_utf8_valid(s, 3));
    assert_false(mqtt_utf8_valid(s, 4));
    assert_true(mqtt_utf8_valid(s, 5));
    assert_false(mqtt_utf8_valid(s, 6));
}

/* ---- serializers ---- */

static void
test_write_connack(void **state)
{
    uint8_t out[5];
    uint8_t rc;

    (void) state;
    out[4] = 0xee;
    assert_int_equal(mqtt_write_connack(out, false, MQTT_RC_ACCEPTED), 4);
    assert_memory_equal(out, "\x20\x02\x00\x00", 4);
    assert_int_equal(mqtt_write_connack(out, true, MQTT_RC_ACCEPTED), 4);
    assert_memory_equal(out, "\x20\x02\x01\x00", 4);
    for (rc = MQTT_RC_BAD_VERSION; rc <= MQTT_RC_NOT_AUTHORIZED; rc++) {
        /* Session present must be 0 with a refusal (3.2.2-4). */
        assert_int_equal(mqtt_write_connack(out, true, rc), 4);
        assert_int_equal(out[0], 0x20);
        assert_int_equal(out[1], 0x02);
        assert_int_equal(out[2], 0x00);
        assert_int_equal(out[3], rc);
    }
    assert_int_equal(out[4], 0xee);
}

static void
test_write_pingresp(void **state)
{
    uint8_t out[3] = { 0, 0, 0xee };

    (void) state;
    assert_int_equal(mqtt_write_pingresp(out), 2);
    assert_int_equal(out[0], 0xd0);
    assert_int_equal(out[1], 0x00);
    assert_int_equal(out[2], 0xee);
}

static void
test_write_suback(void **state)
{
    static uint8_t out[512];
    const uint8_t codes[] = { 0x00, 0x01, 0x02, MQTT_SUBACK_FAILURE };
    const uint8_t want[] = { 0x90, 0x06, 0x12, 0x34, 0x00, 0x01, 0x02,
                             0x80 };
    uint8_t many[300];
    mqtt_fixed_t fh;
    const char *why = NULL;
    size_t n;

    (void) state;
    assert_int_equal(mqtt_suback_size(4), sizeof(want));
    memset(out, 0xee, sizeof(out));
    assert_int_equal(mqtt_write_suback(out, 0x1234, codes, 4), sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(out[sizeof(want)], 0xee);

    assert_int_equal(mqtt_suback_size(0), 4);
    assert_int_equal(mqtt_write_suback(out, 1, NULL, 0), 4);
    assert_memory_equal(out, "\x90\x02\x00\x01", 4);

    /* 125 codes: remaining 127, 1 length byte; 126: 128, 2 bytes. */
    memset(many, 0x01, sizeof(many));
    assert_int_equal(mqtt_suback_size(125), 1 + 1 + 2 + 125);
    assert_int_equal(mqtt_suback_size(126), 1 + 2 + 2 + 126);
    for (n = 124; n <= 300; n += 88) {
        size_t sz = mqtt_suback_size(n);

        memset(out, 0xee, sizeof(out));
        assert_int_equal(mqtt_write_suback(out, 0xbeef, many, n), sz);
        assert_int_equal(out[sz], 0xee);
        assert_int_equal(mqtt_fixed_header(out, sz, &fh, &why), MQTT_OK);
        assert_int_equal(fh.type, MQTT_SUBACK);
        assert_int_equal(fh.flags, 0);
        assert_int_equal(fh.remaining, n + 2);
        assert_int_equal(fh.hdr_len + fh.remaining, sz);
        assert_int_equal(out[fh.hdr_len], 0xbe);
        assert_int_equal(out[fh.hdr_len + 1], 0xef);
        assert_memory_equal(out + fh.hdr_len + 2, many, n);
    }
}

static void
test_write_publish_header(void **state)
{
    uint8_t out[6];
    mqtt_fixed_t fh;
    const char *why = NULL;

    (void) state;
    memset(out, 0xee, sizeof(out));
    assert_int_equal(mqtt_write_publish_header(out, 0, false, false, 5), 2);
    assert_memory_equal(out, "\x30\x05", 2);
    assert_int_equal(out[2], 0xee);

    assert_int_equal(mqtt_write_publish_header(out, 1, false, true, 0), 2);
    assert_memory_equal(out, "\x33\x00", 2);
    assert_int_equal(mqtt_write_publish_header(out, 2, true, false, 128), 3);
    assert_memory_equal(out, "\x3c\x80\x01", 3);
    assert_int_equal(mqtt_write_publish_header(out, 1, true, true, 16384),
                     4);
    assert_memory_equal(out, "\x3b\x80\x80\x01", 4);

    /* DUP must be 0 at QoS 0 (3.3.1-2). */
    assert_int_equal(mqtt_write_publish_header(out, 0, true, true, 1), 2);
    assert_memory_equal(out, "\x31\x01", 2);

    memset(out, 0xee, sizeof(out));
    assert_int_equal(mqtt_write_publish_header(out, 2, false, false,
                                               MQTT_MAX_REMAINING),
                     5);
    assert_memory_equal(out, "\x34\xff\xff\xff\x7f", 5);
    assert_int_equal(out[5], 0xee);
    assert_int_equal(mqtt_fixed_header(out, 5, &fh, &why), MQTT_OK);
    assert_int_equal(fh.remaining, MQTT_MAX_REMAINING);
    assert_int_equal(fh.hdr_len, 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_encode_boundaries),
        cmocka_unit_test(test_fixed_header_varint_boundaries),
        cmocka_unit_test(test_fixed_header_ignores_following_bytes),
        cmocka_unit_test(test_fixed_header_incomplete),
        cmocka_unit_test(test_fixed_header_five_byte_varint),
        cmocka_unit_test(test_fixed_header_type0),
        cmocka_unit_test(test_fixed_header_all_types),
        cmocka_unit_test(test_connect_v311_all_fields),
        cmocka_unit_test(test_connect_v311_minimal),
        cmocka_unit_test(test_connect_v31),
        cmocka_unit_test(test_connect_wire_bytes),
        cmocka_unit_test(test_connect_fixed_flags),
        cmocka_unit_test(test_connect_every_truncation),
        cmocka_unit_test(test_connect_trailing_bytes),
        cmocka_unit_test(test_connect_string_overruns_body),
        cmocka_unit_test(test_connect_protocol_name_and_level),
        cmocka_unit_test(test_connect_reserved_flag),
        cmocka_unit_test(test_connect_will_flags),
        cmocka_unit_test(test_connect_password_without_username),
        cmocka_unit_test(test_connect_utf8_fields),
        cmocka_unit_test(test_connect_binary_password_and_will),
        cmocka_unit_test(test_connect_will_topic),
        cmocka_unit_test(test_connect_client_id_v31),
        cmocka_unit_test(test_connect_client_id_v311),
        cmocka_unit_test(test_connect_clientid_only_when_well_formed),
        cmocka_unit_test(test_publish_qos0),
        cmocka_unit_test(test_publish_qos1_qos2),
        cmocka_unit_test(test_publish_empty_payload),
        cmocka_unit_test(test_publish_flags),
        cmocka_unit_test(test_publish_topic),
        cmocka_unit_test(test_publish_topic_nul),
        cmocka_unit_test(test_publish_packet_id),
        cmocka_unit_test(test_publish_truncated),
        cmocka_unit_test(test_publish_round_trip),
        cmocka_unit_test(test_ack_parse),
        cmocka_unit_test(test_ack_errors),
        cmocka_unit_test(test_ack_round_trip),
        cmocka_unit_test(test_write_unsuback),
        cmocka_unit_test(test_subscribe_parse_and_iterate),
        cmocka_unit_test(test_subscribe_filter_syntax_not_checked),
        cmocka_unit_test(test_subscribe_errors),
        cmocka_unit_test(test_subscribe_requested_qos),
        cmocka_unit_test(test_subscribe_truncated),
        cmocka_unit_test(test_unsubscribe_parse_and_iterate),
        cmocka_unit_test(test_unsubscribe_errors),
        cmocka_unit_test(test_empty_packets),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_invalid),
        cmocka_unit_test(test_utf8_respects_length),
        cmocka_unit_test(test_write_connack),
        cmocka_unit_test(test_write_pingresp),
        cmocka_unit_test(test_write_suback),
        cmocka_unit_test(test_write_publish_header),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
