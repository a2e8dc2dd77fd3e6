/*
 * test_mqtt5.c -- the MQTT 5.0 side of the packet codec (common/mqtt.c):
 * CONNECT with properties and Will Properties, PUBLISH with properties
 * and the empty topic of a Topic Alias, acknowledgements with reason
 * codes, Subscription Options, DISCONNECT and AUTH, and the serializers
 * of CONNACK, acks with reason codes and DISCONNECT.  The property rules
 * themselves are test_mqtt_props.c's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mqtt.h"
#include "mqtt_props.h"
#include "test_buf.h"

/* ---- CONNECT ---- */

/* A v5 CONNECT: header, the properties of props (raw, without their
 * length), client id, then will properties / topic / message when
 * will_props is not NULL, then username and password when given. */
static void
build_connect5(buf_t *b, uint8_t cflags, const buf_t *props, const char *id,
               const buf_t *will_props, const char *user, const char *pass)
{
    b->n = 0;
    put_str(b, "MQTT");
    put_u8(b, 5);
    put_u8(b, cflags);
    put_u16(b, 30);
    put_varint(b, props ? (uint32_t) props->n : 0);
    if (props) {
        put_bytes(b, props->b, props->n);
    }
    put_str(b, id);
    if (will_props) {
        put_varint(b, (uint32_t) will_props->n);
        put_bytes(b, will_props->b, will_props->n);
        put_str(b, "will/t");
        put_str(b, "bye");
    }
    if (user) {
        put_str(b, user);
    }
    if (pass) {
        put_str(b, pass);
    }
}

static int
connect5(const buf_t *b, mqtt_connect_t *c)
{
    const char *why = NULL;

    return check_why(mqtt_parse_connect(0, b->b, b->n, c, &why), &why);
}

static void
test_connect5_properties(void **state)
{
    buf_t p = { .n = 0 }, w = { .n = 0 }, b;
    mqtt_connect_t c;

    (void) state;
    put_u8(&p, MQTT_PROP_SESSION_EXPIRY);
    put_be(&p, 3600, 4);
    put_u8(&p, MQTT_PROP_RECEIVE_MAX);
    put_u16(&p, 5);
    put_u8(&p, MQTT_PROP_MAX_PACKET_SIZE);
    put_be(&p, 1000, 4);
    put_u8(&p, MQTT_PROP_REQUEST_PROBLEM_INFO);
    put_u8(&p, 0);
    put_u8(&w, MQTT_PROP_WILL_DELAY);
    put_be(&w, 10, 4);
    put_u8(&w, MQTT_PROP_CONTENT_TYPE);
    put_str(&w, "text/plain");
    build_connect5(&b, 0x04 | 0x08, &p, "c5", &w, NULL, NULL);
    assert_int_equal(connect5(&b, &c), MQTT_OK);
    assert_int_equal(c.level, 5);
    assert_false(c.clean_session);
    assert_int_equal(c.props.session_expiry, 3600);
    assert_int_equal(c.props.receive_max, 5);
    assert_int_equal(c.props.max_packet_size, 1000);
    assert_int_equal(c.props.request_problem_info, 0);
    assert_true(c.will);
    assert_int_equal(c.will_qos, 1);
    assert_int_equal(c.will_props.will_delay, 10);
    assert_int_equal(c.will_props.content_type.len, 10);
    assert_int_equal(c.will_topic.len, 6);
    assert_memory_equal(c.will_payload, "bye", 3);

    /* Defaults when the block is empty. */
    build_connect5(&b, 0x02, NULL, "c5", NULL, NULL, NULL);
    assert_int_equal(connect5(&b, &c), MQTT_OK);
    assert_int_equal(c.props.session_expiry, 0);
    assert_int_equal(c.props.receive_max, 65535);
    assert_int_equal(c.props.request_problem_info, 1);
}

/* What 3.1.1 refuses and MQTT 5 allows: a password without a username,
 * an empty client id with Clean Start 0 (the server assigns one). */
static void
test_connect5_relaxed_rules(void **state)
{
    buf_t b;
    mqtt_connect_t c;

    (void) state;
    build_connect5(&b, 0x40, NULL, "", NULL, NULL, "secret");
    assert_int_equal(connect5(&b, &c), MQTT_OK);
    assert_true(c.has_password);
    assert_false(c.has_username);
    assert_int_equal(c.client_id.len, 0);
    assert_int_equal(c.password.len, 6);
}

static void
test_connect5_bad_properties(void **state)
{
    buf_t p = { .n = 0 }, w = { .n = 0 }, b;
    mqtt_connect_t c;

    (void) state;
    /* Duplicate Session Expiry: Protocol Error. */
    put_u8(&p, MQTT_PROP_SESSION_EXPIRY);
    put_be(&p, 1, 4);
    put_u8(&p, MQTT_PROP_SESSION_EXPIRY);
    put_be(&p, 2, 4);
    build_connect5(&b, 0x02, &p, "x", NULL, NULL, NULL);
    assert_int_equal(connect5(&b, &c), MQTT_E_PROTOCOL);
    assert_int_equal(c.reason, MQTT5_RC_PROTOCOL_ERROR);

    /* Unknown identifier: Malformed Packet. */
    p.n = 0;
    put_u8(&p, 0x7f);
    put_u8(&p, 0);
    build_connect5(&b, 0x02, &p, "x", NULL, NULL, NULL);
    assert_int_equal(connect5(&b, &c), MQTT_E_MALFORMED);
    assert_int_equal(c.reason, MQTT5_RC_MALFORMED);

    /* A will-only property in CONNECT's own block. */
    p.n = 0;
    put_u8(&p, MQTT_PROP_WILL_DELAY);
    put_be(&p, 5, 4);
    build_connect5(&b, 0x02, &p, "x", NULL, NULL, NULL);
    assert_int_equal(connect5(&b, &c), MQTT_E_MALFORMED);
    assert_int_equal(c.reason, MQTT5_RC_MALFORMED);

    /* A CONNECT-only property in the Will Properties. */
    put_u8(&w, MQTT_PROP_RECEIVE_MAX);
    put_u16(&w, 3);
    build_connect5(&b, 0x02 | 0x04, NULL, "x", &w, NULL, NULL);
    assert_int_equal(connect5(&b, &c), MQTT_E_MALFORMED);

    /* The Property Length runs past the packet. */
    b.n = 0;
    put_str(&b, "MQTT");
    put_u8(&b, 5);
    put_u8(&b, 0x02);
    put_u16(&b, 30);
    put_varint(&b, 100);
    put_str(&b, "x");
    assert_int_equal(connect5(&b, &c), MQTT_E_MALFORMED);
    assert_int_equal(c.reason, MQTT5_RC_MALFORMED);

    /* The reserved flag is malformed at level 5 too, with its reason. */
    build_connect5(&b, 0x03, NULL, "x", NULL, NULL, NULL);
    assert_int_equal(connect5(&b, &c), MQTT_E_MALFORMED);
    assert_int_equal(c.reason, MQTT5_RC_MALFORMED);
}

/* Every truncation of a full v5 CONNECT is malformed, never read past. */
static void
test_connect5_every_truncation(void **state)
{
    buf_t p = { .n = 0 }, w = { .n = 0 }, b;
    mqtt_connect_t c;

    (void) state;
    put_u8(&p, MQTT_PROP_USER);
    put_str(&p, "k");
    put_str(&p, "v");
    put_u8(&w, MQTT_PROP_MESSAGE_EXPIRY);
    put_be(&w, 9, 4);
    build_connect5(&b, 0x04 | 0x80 | 0x40, &p, "id", &w, "u", "pw");
    assert_int_equal(connect5(&b, &c), MQTT_OK);
    for (size_t len = 0; len < b.n; len++) {
        const char *why = NULL;
        uint8_t *cut = test_malloc(len ? len : 1);

        memcpy(cut, b.b, len);
        assert_int_equal(check_why(mqtt_parse_connect(0, cut, len, &c, &why),
                                   &why),
                         MQTT_E_MALFORMED);
        test_free(cut);
    }
}

/* ---- PUBLISH ---- */

static int
publish5(uint8_t flags, const buf_t *b, mqtt_publish_t *p)
{
    const char *why = NULL;

    return check_why(mqtt_parse_publish(MQTT_V5, flags, b->b, b->n, p, &why),
                     &why);
}

static void
test_publish5_properties(void **state)
{
    buf_t b = { .n = 0 };
    mqtt_publish_t p;

    (void) state;
    put_str(&b, "t/1");
    put_u16(&b, 7);
    put_varint(&b, 2 + 5 + 3);
    put_u8(&b, MQTT_PROP_TOPIC_ALIAS);
    put_u16(&b, 3);
    put_u8(&b, MQTT_PROP_MESSAGE_EXPIRY);
    put_be(&b, 60, 4);
    put_u8(&b, MQTT_PROP_PAYLOAD_FORMAT);
    put_u8(&b, 1);
    put_bytes(&b, "xyz", 3);
    assert_int_equal(publish5(0x02, &b, &p), MQTT_OK);
    assert_int_equal(p.qos, 1);
    assert_int_equal(p.pid, 7);
    assert_int_equal(p.props.topic_alias, 3);
    assert_int_equal(p.props.message_expiry, 60);
    assert_int_equal(p.props.payload_format, 1);
    assert_int_equal(p.payload_len, 3);
    assert_memory_equal(p.payload, "xyz", 3);

    /* The same bytes are a 3.1.1 PUBLISH with a longer payload. */
    const char *why = NULL;
    assert_int_equal(mqtt_parse_publish(MQTT_V311, 0x02, b.b, b.n, &p, &why),
                     MQTT_OK);
    assert_int_equal(p.payload_len, 1 + 10 + 3);
}

static void
test_publish5_empty_topic_and_errors(void **state)
{
    buf_t b = { .n = 0 };
    mqtt_publish_t p;
    const char *why = NULL;

    (void) state;
    /* An empty topic is the caller's to resolve (Topic Alias). */
    put_str(&b, "");
    put_varint(&b, 3);
    put_u8(&b, MQTT_PROP_TOPIC_ALIAS);
    put_u16(&b, 1);
    assert_int_equal(publish5(0x00, &b, &p), MQTT_OK);
    assert_int_equal(p.topic.len, 0);
    assert_int_equal(mqtt_parse_publish(MQTT_V311, 0, b.b, b.n, &p, &why),
                     MQTT_E_MALFORMED);

    /* Topic Alias 0: 0x94. */
    b.n = 0;
    put_str(&b, "t");
    put_varint(&b, 3);
    put_u8(&b, MQTT_PROP_TOPIC_ALIAS);
    put_u16(&b, 0);
    assert_int_equal(publish5(0x00, &b, &p), MQTT_E_PROTOCOL);
    assert_int_equal(p.reason, MQTT5_RC_TOPIC_ALIAS_INVALID);

    /* A Subscription Identifier from a client: 0x82. */
    b.n = 0;
    put_str(&b, "t");
    put_varint(&b, 2);
    put_u8(&b, MQTT_PROP_SUB_ID);
    put_u8(&b, 5);
    assert_int_equal(publish5(0x00, &b, &p), MQTT_E_PROTOCOL);
    assert_int_equal(p.reason, MQTT5_RC_PROTOCOL_ERROR);

    /* No property block at all: malformed. */
    b.n = 0;
    put_str(&b, "t");
    assert_int_equal(publish5(0x00, &b, &p), MQTT_E_MALFORMED);
    assert_int_equal(p.reason, MQTT5_RC_MALFORMED);

    /* QoS 3 keeps its class and gets 0x81. */
    b.n = 0;
    put_str(&b, "t");
    put_varint(&b, 0);
    assert_int_equal(publish5(0x06, &b, &p), MQTT_E_MALFORMED);
    assert_int_equal(p.reason, MQTT5_RC_MALFORMED);
}

/* ---- acknowledgements ---- */

static void
test_ack5_forms(void **state)
{
    const uint8_t two[] = { 0x00, 0x09 };
    const uint8_t three[] = { 0x00, 0x09, 0x10 };
    const uint8_t four[] = { 0x00, 0x09, 0x00, 0x00 };
    const uint8_t reason_str[] = { 0x00, 0x09, 0x80, 0x04, 0x1f, 0x00,
                                   0x01, 'x' };
    const uint8_t bad_code[] = { 0x00, 0x09, 0x05 };
    const uint8_t bad_prop[] = { 0x00, 0x09, 0x00, 0x02, 0x01, 0x01 };
    uint16_t pid;
    uint8_t rc = 0xee;
    const char *why = NULL;

    (void) state;
    assert_int_equal(mqtt_parse_ack(MQTT_V5, MQTT_PUBACK, 0, two, 2, &pid,
                                    &rc, &why),
                     MQTT_OK);
    assert_int_equal(pid, 9);
    assert_int_equal(rc, 0);
    assert_int_equal(mqtt_parse_ack(MQTT_V5, MQTT_PUBACK, 0, three, 3, &pid,
                                    &rc, &why),
                     MQTT_OK);
    assert_int_equal(rc, 0x10);
    assert_int_equal(mqtt_parse_ack(MQTT_V5, MQTT_PUBCOMP, 0, four, 4, &pid,
                                    &rc, &why),
                     MQTT_OK);
    assert_int_equal(mqtt_parse_ack(MQTT_V5, MQTT_PUBREC, 0, reason_str,
                                    sizeof(reason_str), &pid, &rc, &why),
                     MQTT_OK);
    assert_int_equal(rc, 0x80);
    /* 0x05 is no reason code of PUBACK. */
    assert_int_equal(check_why(mqtt_parse_ack(MQTT_V5, MQTT_PUBACK, 0,
                                              bad_code, 3, &pid, &rc, &why),
                               &why),
                     MQTT_E_PROTOCOL);
    /* Payload Format Indicator is no property of an ack. */
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_ack(MQTT_V5, MQTT_PUBACK, 0,
                                              bad_prop, sizeof(bad_prop),
                                              &pid, &rc, &why),
                               &why),
                     MQTT_E_MALFORMED);
    /* 3.1.1 stays exactly 2 bytes. */
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_ack(MQTT_V311, MQTT_PUBACK, 0,
                                              three, 3, &pid, NULL, &why),
                               &why),
                     MQTT_E_MALFORMED);
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

static int
subscribe5(const buf_t *b, mqtt_props_t *pr, mqtt_iter_t *it)
{
    uint16_t pid;
    const char *why = NULL;

    return check_why(mqtt_parse_subscribe(MQTT_V5, 2, b->b, b->n, &pid, pr,
                                          it, &why),
                     &why);
}

static void
test_subscribe5_options(void **state)
{
    buf_t b = { .n = 0 };
    mqtt_props_t pr;
    mqtt_iter_t it;
    mqtt_str_t f;
    uint8_t opts;

    (void) state;
    put_u16(&b, 1);
    put_varint(&b, 2);
    put_u8(&b, MQTT_PROP_SUB_ID);
    put_u8(&b, 42);
    put_str(&b, "a/+");
    put_u8(&b, 0x01 | MQTT_SUBOPT_NO_LOCAL | MQTT_SUBOPT_RAP | 0x20);
    put_str(&b, "b");
    put_u8(&b, 0x12);
    assert_int_equal(subscribe5(&b, &pr, &it), MQTT_OK);
    assert_int_equal(pr.sub_id, 42);
    assert_true(mqtt_iter_next(&it, &f, &opts));
    assert_int_equal(opts & MQTT_SUBOPT_QOS_MASK, 1);
    assert_true(opts & MQTT_SUBOPT_NO_LOCAL);
    assert_true(opts & MQTT_SUBOPT_RAP);
    assert_int_equal((opts & MQTT_SUBOPT_RH_MASK) >> MQTT_SUBOPT_RH_SHIFT, 2);
    assert_true(mqtt_iter_next(&it, &f, &opts));
    assert_int_equal(opts, 0x12);
    assert_false(mqtt_iter_next(&it, &f, &opts));

    /* Retain Handling 3: Protocol Error; reserved bits: malformed. */
    b.n = 0;
    put_u16(&b, 1);
    put_varint(&b, 0);
    put_str(&b, "a");
    put_u8(&b, 0x30);
    assert_int_equal(subscribe5(&b, &pr, &it), MQTT_E_PROTOCOL);
    b.b[b.n - 1] = 0x40;
    assert_int_equal(subscribe5(&b, &pr, &it), MQTT_E_MALFORMED);
    /* The same options byte is malformed for 3.1.1. */
    b.b[b.n - 1] = 0x04;
    uint16_t pid;
    const char *why = NULL;
    assert_int_equal(mqtt_parse_subscribe(MQTT_V311, 2, b.b, b.n, &pid, NULL,
                                          &it, &why),
                     MQTT_E_MALFORMED);
    /* A Subscription Identifier of 0 is a Protocol Error. */
    b.n = 0;
    put_u16(&b, 1);
    put_varint(&b, 2);
    put_u8(&b, MQTT_PROP_SUB_ID);
    put_u8(&b, 0);
    put_str(&b, "a");
    put_u8(&b, 0);
    assert_int_equal(subscribe5(&b, &pr, &it), MQTT_E_PROTOCOL);
}

static void
test_unsubscribe5(void **state)
{
    buf_t b = { .n = 0 };
    mqtt_props_t pr;
    mqtt_iter_t it;
    mqtt_str_t f;
    uint16_t pid;
    const char *why = NULL;

    (void) state;
    put_u16(&b, 3);
    put_varint(&b, 6);
    put_u8(&b, MQTT_PROP_USER);
    put_str(&b, "a");
    put_str(&b, "");
    put_str(&b, "x/y");
    assert_int_equal(mqtt_parse_unsubscribe(MQTT_V5, 2, b.b, b.n, &pid, &pr,
                                            &it, &why),
                     MQTT_OK);
    assert_int_equal(pr.n_user, 1);
    assert_true(mqtt_iter_next(&it, &f, NULL));
    assert_int_equal(f.len, 3);
    /* A Subscription Identifier is not allowed in UNSUBSCRIBE. */
    b.n = 0;
    put_u16(&b, 3);
    put_varint(&b, 2);
    put_u8(&b, MQTT_PROP_SUB_ID);
    put_u8(&b, 1);
    put_str(&b, "x");
    assert_int_equal(check_why(mqtt_parse_unsubscribe(MQTT_V5, 2, b.b, b.n,
                                                      &pid, &pr, &it, &why),
                               &why),
                     MQTT_E_MALFORMED);
}

/* ---- DISCONNECT and AUTH ---- */

static void
test_disconnect5(void **state)
{
    const uint8_t will[] = { 0x04 };
    const uint8_t expiry[] = { 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x3c };
    const uint8_t bad_code[] = { 0x10 };
    uint8_t rc;
    mqtt_props_t pr;
    const char *why = NULL;

    (void) state;
    assert_int_equal(mqtt_parse_disconnect(MQTT_V5, 0, NULL, 0, &rc, &pr,
                                           &why),
                     MQTT_OK);
    assert_int_equal(rc, 0);
    assert_int_equal(mqtt_parse_disconnect(MQTT_V5, 0, will, 1, &rc, &pr,
                                           &why),
                     MQTT_OK);
    assert_int_equal(rc, MQTT5_RC_DISCONNECT_WITH_WILL);
    assert_int_equal(mqtt_parse_disconnect(MQTT_V5, 0, expiry,
                                           sizeof(expiry), &rc, &pr, &why),
                     MQTT_OK);
    assert_true(pr.present & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY));
    assert_int_equal(pr.session_expiry, 60);
    assert_int_equal(check_why(mqtt_parse_disconnect(MQTT_V5, 0, bad_code, 1,
                                                     &rc, &pr, &why),
                               &why),
                     MQTT_E_PROTOCOL);
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_disconnect(MQTT_V5, 1, NULL, 0,
                                                     &rc, &pr, &why),
                               &why),
                     MQTT_E_MALFORMED);
    /* 3.1.1: empty only. */
    why = NULL;
    assert_int_equal(check_why(mqtt_parse_disconnect(MQTT_V311, 0, will, 1,
                                                     &rc, &pr, &why),
                               &why),
                     MQTT_E_MALFORMED);
}

static void
test_auth(void **state)
{
    const uint8_t ok[] = { 0x18, 0x05, 0x15, 0x00, 0x02, 'm', '1' };
    const uint8_t bad[] = { 0x00, 0x02, 0x16, 0x00 };
    uint8_t rc;
    mqtt_props_t pr;
    const char *why = NULL;

    (void) state;
    assert_int_equal(mqtt_parse_auth(0, ok, sizeof(ok), &rc, &pr, &why),
                     MQTT_OK);
    assert_int_equal(rc, MQTT5_RC_CONTINUE_AUTH);
    assert_int_equal(pr.auth_method.len, 2);
    /* Authentication Data without a method; and a truncated value. */
    assert_int_equal(check_why(mqtt_parse_auth(0, bad, sizeof(bad), &rc, &pr,
                                               &why),
                               &why) < 0,
                     1);
}

/* ---- serializers ---- */

static void
test_write5(void **state)
{
    uint8_t out[300];
    mqtt_fixed_t fh;
    mqtt_props_t pr;
    const char *why = NULL;
    uint8_t reason;
    mqtt_prop_t props[2] = {
        mqtt_prop_num(MQTT_PROP_RECEIVE_MAX, 20),
        mqtt_prop_str(MQTT_PROP_ASSIGNED_CLIENT_ID, "auto-1", 6),
    };

    (void) state;
    size_t n = mqtt_write_connack5(out, sizeof(out), true, 0, props, 2);
    assert_int_equal(n, 2 + 2 + 1 + 3 + 9);
    assert_int_equal(mqtt_fixed_header(out, n, &fh, &why), MQTT_OK);
    assert_int_equal(fh.type, MQTT_CONNACK);
    assert_int_equal(fh.hdr_len + fh.remaining, n);
    assert_int_equal(out[2], 1); /* session present */
    assert_int_equal(out[3], 0);
    assert_int_equal(mqtt_prop_parse(MQTT_CONNACK, out + 4, n - 4, &pr,
                                     &reason, &why),
                     MQTT_OK);
    assert_int_equal(pr.receive_max, 20);
    assert_int_equal(pr.assigned_client_id.len, 6);
    /* Refused: session present is 0 whatever the caller says. */
    n = mqtt_write_connack5(out, sizeof(out), true, 0x8c, NULL, 0);
    assert_int_equal(n, 5);
    assert_int_equal(out[2], 0);
    assert_int_equal(out[3], 0x8c);
    /* Too small a buffer writes nothing usable. */
    assert_int_equal(mqtt_write_connack5(out, 8, false, 0, props, 2), 0);

    /* Acks: the short form for success. */
    assert_int_equal(mqtt_write_ack_rc(out, sizeof(out), MQTT_PUBACK, 0x0102,
                                       0, NULL),
                     4);
    assert_int_equal(mqtt_write_ack_rc(out, sizeof(out), MQTT_PUBREC, 0x0102,
                                       0x99, NULL),
                     5);
    assert_memory_equal(out, "\x50\x03\x01\x02\x99", 5);
    /* With a Reason String: it parses back as an ack with that string. */
    n = mqtt_write_ack_rc(out, sizeof(out), MQTT_PUBACK, 7, 0x97, "full");
    assert_int_equal(n, 5 + 1 + 3 + 4);
    assert_int_equal(mqtt_fixed_header(out, n, &fh, &why), MQTT_OK);
    assert_int_equal(fh.hdr_len + fh.remaining, n);
    uint16_t pid;
    assert_int_equal(mqtt_parse_ack(MQTT_V5, MQTT_PUBACK, 0, out + 2, n - 2,
                                    &pid, &reason, &why),
                     MQTT_OK);
    assert_int_equal(reason, 0x97);
    /* Not enough room for it: the code alone. */
    assert_int_equal(mqtt_write_ack_rc(out, 8, MQTT_PUBACK, 7, 0x97, "full"),
                     5);

    /* DISCONNECT with and without a Reason String. */
    n = mqtt_write_disconnect(out, sizeof(out), 0x82, NULL);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "\xe0\x02\x82\x00", 4);
    n = mqtt_write_disconnect(out, sizeof(out), 0x93, "too many");
    assert_int_equal(n, 4 + 3 + 8);
    assert_int_equal(mqtt_parse_disconnect(MQTT_V5, 0, out + 2, n - 2,
                                           &reason, &pr, &why),
                     MQTT_OK);
    assert_int_equal(reason, 0x93);
    assert_int_equal(pr.reason_string.len, 8);
    assert_memory_equal(pr.reason_string.p, "too many", 8);
    /* A Reason String that does not fit is left out. */
    n = mqtt_write_disconnect(out, 6, 0x93, "too many");
    assert_int_equal(n, 4);
    /* A long one (cut to 200 bytes) takes a two-byte Remaining Length. */
    char longer[251];
    memset(longer, 'x', 250);
    longer[250] = 0;
    uint8_t big[256];
    n = mqtt_write_disconnect(big, sizeof(big), 0x93, longer);
    /* rc, property length (2), Reason String id, length, 200 bytes */
    assert_int_equal(n, 1 + 2 + 1 + 2 + 1 + 2 + 200);
    assert_memory_equal(big, "\xe0\xce\x01\x93\xcb\x01\x1f\x00\xc8", 9);
    assert_int_equal(mqtt_parse_disconnect(MQTT_V5, 0, big + 3, n - 3,
                                           &reason, &pr, &why),
                     MQTT_OK);
    assert_int_equal(reason, 0x93);
    assert_int_equal(pr.reason_string.len, 200);
    /* One byte short of room: the code alone. */
    assert_int_equal(mqtt_write_disconnect(big, n - 1, 0x93, longer), 4);
    /* The cut falls between characters: 199 ASCII bytes and a two-byte
     * character would end at byte 201, so it is left out whole. */
    memset(longer, 'x', 199);
    memcpy(longer + 199, "\xc3\xa9tail", 6);
    longer[205] = 0;
    n = mqtt_write_disconnect(big, sizeof(big), 0x93, longer);
    assert_int_equal(mqtt_parse_disconnect(MQTT_V5, 0, big + 3, n - 3,
                                           &reason, &pr, &why),
                     MQTT_OK);
    assert_int_equal(pr.reason_string.len, 199);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect5_properties),
        cmocka_unit_test(test_connect5_relaxed_rules),
        cmocka_unit_test(test_connect5_bad_properties),
        cmocka_unit_test(test_connect5_every_truncation),
        cmocka_unit_test(test_publish5_properties),
        cmocka_unit_test(test_publish5_empty_topic_and_errors),
        cmocka_unit_test(test_ack5_forms),
        cmocka_unit_test(test_subscribe5_options),
        cmocka_unit_test(test_unsubscribe5),
        cmocka_unit_test(test_disconnect5),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_write5),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
