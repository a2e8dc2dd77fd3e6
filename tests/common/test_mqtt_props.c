/*
 * test_mqtt_props.c -- unit tests for common/mqtt_props.c: the property
 * table against the spec, every receiver rule of the parser (with the
 * reason code it answers), iteration without allocation, the serializer's
 * exact sizes and capacity, and the reason-code table.
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

/* ---- helpers ---- */

/* A block: Property Length, then the properties in p. */
static void
make_block(buf_t *out, const buf_t *p)
{
    out->n = 0;
    put_varint(out, (uint32_t) p->n);
    put_bytes(out, p->b, p->n);
}

/* Contexts that carry properties: 1..11, 14, 15 and the will. */
static const uint8_t ctxs[] = {
    MQTT_CONNECT,    MQTT_CONNACK,     MQTT_PUBLISH,  MQTT_PUBACK,
    MQTT_PUBREC,     MQTT_PUBREL,      MQTT_PUBCOMP,  MQTT_SUBSCRIBE,
    MQTT_SUBACK,     MQTT_UNSUBSCRIBE, MQTT_UNSUBACK, MQTT_DISCONNECT,
    MQTT_AUTH,       MQTT_PROP_CTX_WILL
};
#define N_CTXS (sizeof(ctxs) / sizeof(ctxs[0]))

/* The spec's table (2.2.2.2), restated here on its own. */
#define K(t) (1u << (t))
#define K_ACKS (K(MQTT_PUBACK) | K(MQTT_PUBREC) | K(MQTT_PUBREL) \
                | K(MQTT_PUBCOMP))
#define K_WILL K(MQTT_PROP_CTX_WILL)

static const struct {
    uint8_t id;
    int type;
    uint32_t ctx;
} spec[] = {
    { 0x01, MQTT_PROP_T_BYTE, K(MQTT_PUBLISH) | K_WILL },
    { 0x02, MQTT_PROP_T_U32, K(MQTT_PUBLISH) | K_WILL },
    { 0x03, MQTT_PROP_T_UTF8, K(MQTT_PUBLISH) | K_WILL },
    { 0x08, MQTT_PROP_T_UTF8, K(MQTT_PUBLISH) | K_WILL },
    { 0x09, MQTT_PROP_T_BINARY, K(MQTT_PUBLISH) | K_WILL },
    { 0x0b, MQTT_PROP_T_VARINT, K(MQTT_PUBLISH) | K(MQTT_SUBSCRIBE) },
    { 0x11, MQTT_PROP_T_U32,
      K(MQTT_CONNECT) | K(MQTT_CONNACK) | K(MQTT_DISCONNECT) },
    { 0x12, MQTT_PROP_T_UTF8, K(MQTT_CONNACK) },
    { 0x13, MQTT_PROP_T_U16, K(MQTT_CONNACK) },
    { 0x15, MQTT_PROP_T_UTF8,
      K(MQTT_CONNECT) | K(MQTT_CONNACK) | K(MQTT_AUTH) },
    { 0x16, MQTT_PROP_T_BINARY,
      K(MQTT_CONNECT) | K(MQTT_CONNACK) | K(MQTT_AUTH) },
    { 0x17, MQTT_PROP_T_BYTE, K(MQTT_CONNECT) },
    { 0x18, MQTT_PROP_T_U32, K_WILL },
    { 0x19, MQTT_PROP_T_BYTE, K(MQTT_CONNECT) },
    { 0x1a, MQTT_PROP_T_UTF8, K(MQTT_CONNACK) },
    { 0x1c, MQTT_PROP_T_UTF8, K(MQTT_CONNACK) | K(MQTT_DISCONNECT) },
    { 0x1f, MQTT_PROP_T_UTF8,
      K(MQTT_CONNACK) | K_ACKS | K(MQTT_SUBACK) | K(MQTT_UNSUBACK)
          | K(MQTT_DISCONNECT) | K(MQTT_AUTH) },
    { 0x21, MQTT_PROP_T_U16, K(MQTT_CONNECT) | K(MQTT_CONNACK) },
    { 0x22, MQTT_PROP_T_U16, K(MQTT_CONNECT) | K(MQTT_CONNACK) },
    { 0x23, MQTT_PROP_T_U16, K(MQTT_PUBLISH) },
    { 0x24, MQTT_PROP_T_BYTE, K(MQTT_CONNACK) },
    { 0x25, MQTT_PROP_T_BYTE, K(MQTT_CONNACK) },
    { 0x26, MQTT_PROP_T_PAIR,
      K(MQTT_CONNECT) | K(MQTT_CONNACK) | K(MQTT_PUBLISH) | K_WILL | K_ACKS
          | K(MQTT_SUBSCRIBE) | K(MQTT_SUBACK) | K(MQTT_UNSUBSCRIBE)
          | K(MQTT_UNSUBACK) | K(MQTT_DISCONNECT) | K(MQTT_AUTH) },
    { 0x27, MQTT_PROP_T_U32, K(MQTT_CONNECT) | K(MQTT_CONNACK) },
    { 0x28, MQTT_PROP_T_BYTE, K(MQTT_CONNACK) },
    { 0x29, MQTT_PROP_T_BYTE, K(MQTT_CONNACK) },
    { 0x2a, MQTT_PROP_T_BYTE, K(MQTT_CONNACK) },
};
#define N_SPEC (sizeof(spec) / sizeof(spec[0]))

/* A valid sample value per type, and its encoding. */
#define S_BYTE 1u
#define S_U16 0x1234u
#define S_U32 0x12345678u
#define S_VARINT 300u
#define S_UTF8 "a/b"
static const uint8_t s_binary[] = { 0x00, 0xff, 0x7f };

static uint32_t
sample_num(int type)
{
    switch (type) {
    case MQTT_PROP_T_BYTE:
        return S_BYTE;
    case MQTT_PROP_T_U16:
        return S_U16;
    case MQTT_PROP_T_U32:
        return S_U32;
    default:
        return S_VARINT;
    }
}

/* Appends property id with its sample value, encoded by hand. */
static void
put_sample(buf_t *b, uint8_t id, int type)
{
    put_u8(b, id);
    switch (type) {
    case MQTT_PROP_T_BYTE:
        put_be(b, S_BYTE, 1);
        break;
    case MQTT_PROP_T_U16:
        put_be(b, S_U16, 2);
        break;
    case MQTT_PROP_T_U32:
        put_be(b, S_U32, 4);
        break;
    case MQTT_PROP_T_VARINT:
        put_varint(b, S_VARINT);
        break;
    case MQTT_PROP_T_UTF8:
        put_str(b, S_UTF8);
        break;
    case MQTT_PROP_T_BINARY:
        put_lstr(b, s_binary, sizeof(s_binary));
        break;
    case MQTT_PROP_T_PAIR:
        put_str(b, "k");
        put_str(b, "v");
        break;
    default:
        fail();
    }
}

/* The serializer entry for the same sample. */
static mqtt_prop_t
sample_entry(uint8_t id, int type)
{
    switch (type) {
    case MQTT_PROP_T_UTF8:
        return mqtt_prop_str(id, S_UTF8, 3);
    case MQTT_PROP_T_BINARY:
        return mqtt_prop_str(id, s_binary, sizeof(s_binary));
    case MQTT_PROP_T_PAIR:
        return mqtt_prop_pair("k", 1, "v", 1);
    default:
        return mqtt_prop_num(id, sample_num(type));
    }
}

/*
 * Parses b[0..n) from a heap copy of exactly n bytes (so AddressSanitizer
 * sees any read past the end).  Checks the error contract: an error sets
 * a non-empty why and a reason code of 0x80 or more; success sets reason
 * 0.  Pointers in *pr point into the copy, which is kept until the next
 * call.
 */
static uint8_t *last_copy;

static int
parse(uint8_t ctx, const uint8_t *b, size_t n, mqtt_props_t *pr,
      uint8_t *reason)
{
    const char *why = NULL;
    uint8_t rsn = 0xee;
    int rc;

    free(last_copy);
    last_copy = malloc(n > 0 ? n : 1);
    assert_non_null(last_copy);
    if (n > 0) {
        memcpy(last_copy, b, n);
    }
    rc = mqtt_prop_parse(ctx, last_copy, n, pr, &rsn, &why);
    if (rc == MQTT_OK) {
        assert_int_equal(rsn, 0);
    } else {
        assert_true(rc == MQTT_E_MALFORMED || rc == MQTT_E_PROTOCOL);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
        assert_true(rsn >= 0x80);
        assert_int_equal(rsn == MQTT5_RC_MALFORMED, rc == MQTT_E_MALFORMED);
    }
    if (reason != NULL) {
        *reason = rsn;
    }
    return rc;
}

static int
parse_buf(uint8_t ctx, const buf_t *b, mqtt_props_t *pr, uint8_t *reason)
{
    return parse(ctx, b->b, b->n, pr, reason);
}

/* Parses the properties in p, wrapped in a block. */
static int
parse_props(uint8_t ctx, const buf_t *p, mqtt_props_t *pr, uint8_t *reason)
{
    buf_t blk;

    make_block(&blk, p);
    return parse_buf(ctx, &blk, pr, reason);
}

static void
assert_str(mqtt_str_t s, const void *want, size_t n)
{
    assert_int_equal(s.len, n);
    if (n > 0) {
        assert_memory_equal(s.p, want, n);
    }
}

/* The struct field that holds id's value. */
static uint32_t
field_num(const mqtt_props_t *pr, uint8_t id)
{
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT:
        return pr->payload_format;
    case MQTT_PROP_MESSAGE_EXPIRY:
        return pr->message_expiry;
    case MQTT_PROP_SUB_ID:
        return pr->sub_id;
    case MQTT_PROP_SESSION_EXPIRY:
        return pr->session_expiry;
    case MQTT_PROP_SERVER_KEEP_ALIVE:
        return pr->server_keep_alive;
    case MQTT_PROP_REQUEST_PROBLEM_INFO:
        return pr->request_problem_info;
    case MQTT_PROP_WILL_DELAY:
        return pr->will_delay;
    case MQTT_PROP_REQUEST_RESPONSE_INFO:
        return pr->request_response_info;
    case MQTT_PROP_RECEIVE_MAX:
        return pr->receive_max;
    case MQTT_PROP_TOPIC_ALIAS_MAX:
        return pr->topic_alias_max;
    case MQTT_PROP_TOPIC_ALIAS:
        return pr->topic_alias;
    case MQTT_PROP_MAX_QOS:
        return pr->max_qos;
    case MQTT_PROP_RETAIN_AVAILABLE:
        return pr->retain_available;
    case MQTT_PROP_MAX_PACKET_SIZE:
        return pr->max_packet_size;
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
        return pr->wildcard_sub_available;
    case MQTT_PROP_SUB_ID_AVAILABLE:
        return pr->sub_id_available;
    case MQTT_PROP_SHARED_SUB_AVAILABLE:
        return pr->shared_sub_available;
    }
    fail_msg("no numeric field for 0x%02x", id);
    return 0;
}

static mqtt_str_t
field_str(const mqtt_props_t *pr, uint8_t id)
{
    mqtt_str_t none = { NULL, 0 };

    switch (id) {
    case MQTT_PROP_CONTENT_TYPE:
        return pr->content_type;
    case MQTT_PROP_RESPONSE_TOPIC:
        return pr->response_topic;
    case MQTT_PROP_CORRELATION_DATA:
        return pr->correlation_data;
    case MQTT_PROP_ASSIGNED_CLIENT_ID:
        return pr->assigned_client_id;
    case MQTT_PROP_AUTH_METHOD:
        return pr->auth_method;
    case MQTT_PROP_AUTH_DATA:
        return pr->auth_data;
    case MQTT_PROP_RESPONSE_INFO:
        return pr->response_info;
    case MQTT_PROP_SERVER_REFERENCE:
        return pr->server_reference;
    case MQTT_PROP_REASON_STRING:
        return pr->reason_string;
    }
    fail_msg("no string field for 0x%02x", id);
    return none;
}

/* ---- the table ---- */

static void
test_table_matches_spec(void **state)
{
    size_t i, c, defined = 0;
    unsigned id;

    for (id = 0; id <= 0xff; id++) {
        if (mqtt_prop_type((uint8_t) id) != 0) {
            defined++;
        }
    }
    assert_int_equal(defined, MQTT_PROP_COUNT);
    assert_int_equal(N_SPEC, MQTT_PROP_COUNT);

    for (i = 0; i < N_SPEC; i++) {
        assert_int_equal(mqtt_prop_type(spec[i].id), spec[i].type);
        assert_string_not_equal(mqtt_prop_name(spec[i].id), "unknown");
        for (c = 0; c <= 20; c++) {
            bool want = c < 32 && (spec[i].ctx & (1u << c)) != 0;

            assert_int_equal(mqtt_prop_allowed((uint8_t) c, spec[i].id),
                             want);
            assert_int_equal(mqtt_prop_allowed(
                                 (uint8_t) (c | MQTT_PROP_FROM_CLIENT),
                                 spec[i].id),
                             want);
        }
    }
    assert_string_equal(mqtt_prop_name(0x00), "unknown");
    assert_string_equal(mqtt_prop_name(0x04), "unknown");
    assert_string_equal(mqtt_prop_name(0x2b), "unknown");
    assert_string_equal(mqtt_prop_name(MQTT_PROP_TOPIC_ALIAS), "Topic Alias");
    assert_false(mqtt_prop_allowed(MQTT_PUBLISH, 0x04));
}

static void
test_repeatable(void **state)
{
    size_t i, c;

    for (i = 0; i < N_SPEC; i++) {
        for (c = 0; c < N_CTXS; c++) {
            uint8_t id = spec[i].id, x = ctxs[c];
            bool want = mqtt_prop_allowed(x, id)
                        && (id == MQTT_PROP_USER
                            || (id == MQTT_PROP_SUB_ID
                                && x == MQTT_PUBLISH));

            assert_int_equal(mqtt_prop_repeatable(x, id), want);
        }
    }
    assert_false(mqtt_prop_repeatable(MQTT_SUBSCRIBE, MQTT_PROP_SUB_ID));
    assert_true(mqtt_prop_repeatable(MQTT_PUBLISH, MQTT_PROP_SUB_ID));
}

/* ---- parser: every id, every context ---- */

/* Every id, in every context that allows it: hand-encoded, parsed, read
 * back from the struct and the iterator; then serialized and compared
 * byte for byte with the hand encoding. */
static void
test_round_trip_every_id(void **state)
{
    size_t i, c;

    for (i = 0; i < N_SPEC; i++) {
        for (c = 0; c < N_CTXS; c++) {
            uint8_t id = spec[i].id, x = ctxs[c];
            int type = spec[i].type;
            mqtt_prop_t e[2], got;
            mqtt_prop_iter_t it;
            mqtt_props_t pr;
            uint8_t out[64];
            size_t n = 0, size, written;
            buf_t p = { .n = 0 }, blk;

            if (!mqtt_prop_allowed(x, id)) {
                continue;
            }
            /* Authentication Data needs its method. */
            if (id == MQTT_PROP_AUTH_DATA) {
                put_sample(&p, MQTT_PROP_AUTH_METHOD, MQTT_PROP_T_UTF8);
                e[n++] = sample_entry(MQTT_PROP_AUTH_METHOD,
                                      MQTT_PROP_T_UTF8);
            }
            put_sample(&p, id, type);
            e[n++] = sample_entry(id, type);
            make_block(&blk, &p);

            assert_int_equal(parse_buf(x, &blk, &pr, NULL), MQTT_OK);
            assert_int_equal(pr.total, blk.n);
            assert_int_equal(pr.raw_len, p.n);
            assert_true((pr.present & MQTT_PROP_BIT(id)) != 0);

            switch (type) {
            case MQTT_PROP_T_UTF8:
                assert_str(field_str(&pr, id), S_UTF8, 3);
                break;
            case MQTT_PROP_T_BINARY:
                assert_str(field_str(&pr, id), s_binary, sizeof(s_binary));
                break;
            case MQTT_PROP_T_PAIR:
                assert_int_equal(pr.n_user, 1);
                break;
            default:
                assert_int_equal(field_num(&pr, id), sample_num(type));
            }

            mqtt_prop_iter_init(&it, &pr);
            assert_true(mqtt_prop_next(&it, &got));
            if (n == 2) {
                assert_true(mqtt_prop_next(&it, &got));
            }
            assert_int_equal(got.id, id);
            assert_int_equal(got.raw_len, p.n - (size_t) (got.raw - pr.raw));
            assert_false(mqtt_prop_next(&it, &got));

            assert_int_equal(mqtt_prop_size(x, e, n, &size, NULL), MQTT_OK);
            assert_int_equal(size, blk.n);
            assert_int_equal(
                mqtt_prop_write(x, e, n, out, sizeof(out), &written, NULL),
                MQTT_OK);
            assert_int_equal(written, blk.n);
            assert_memory_equal(out, blk.b, blk.n);
        }
    }
}

static void
test_disallowed_every_context(void **state)
{
    unsigned c;
    size_t i;

    for (i = 0; i < N_SPEC; i++) {
        for (c = 1; c <= MQTT_PROP_CTX_WILL; c++) {
            uint8_t id = spec[i].id, rsn;
            mqtt_prop_t e = sample_entry(id, spec[i].type);
            mqtt_props_t pr;
            const char *why = NULL;
            size_t size;
            buf_t p = { .n = 0 };

            if (c == MQTT_PINGREQ || c == MQTT_PINGRESP
                || mqtt_prop_allowed((uint8_t) c, id))
            {
                continue;
            }
            put_sample(&p, id, spec[i].type);
            assert_int_equal(parse_props((uint8_t) c, &p, &pr, &rsn),
                             MQTT_E_MALFORMED);
            assert_int_equal(rsn, MQTT5_RC_MALFORMED);
            assert_int_equal(pr.err_id, id);
            assert_int_equal(mqtt_prop_size((uint8_t) c, &e, 1, &size, &why),
                             MQTT_PROP_E_INVALID);
            assert_non_null(why);
        }
    }
}

static void
test_unknown_ids(void **state)
{
    unsigned id;

    for (id = 0; id <= 0xff; id++) {
        mqtt_props_t pr;
        uint8_t rsn;
        mqtt_prop_t e = mqtt_prop_num((uint8_t) id, 0);
        size_t size;
        buf_t p = { .n = 0 };

        if (mqtt_prop_type((uint8_t) id) != 0) {
            continue;
        }
        put_u8(&p, (uint8_t) id);
        put_u8(&p, 0x00);
        put_u8(&p, 0x00);
        assert_int_equal(parse_props(MQTT_PUBLISH, &p, &pr, &rsn),
                         MQTT_E_MALFORMED);
        assert_int_equal(rsn, MQTT5_RC_MALFORMED);
        if (id != MQTT_PROP_RAW) {
            assert_int_equal(mqtt_prop_size(MQTT_PUBLISH, &e, 1, &size,
                                            NULL),
                             MQTT_PROP_E_INVALID);
        }
    }
}

static void
test_packets_without_properties(void **state)
{
    static const uint8_t empty[] = { 0x00 };
    static const uint8_t bad[] = { 0, MQTT_PINGREQ, MQTT_PINGRESP, 17, 0x7f };
    mqtt_props_t pr;
    uint8_t rsn;
    size_t i;

    for (i = 0; i < sizeof(bad); i++) {
        assert_int_equal(parse(bad[i], empty, 1, &pr, &rsn), MQTT_E_PROTOCOL);
        assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
    }
}

static void
test_duplicates(void **state)
{
    size_t i, c;

    for (i = 0; i < N_SPEC; i++) {
        for (c = 0; c < N_CTXS; c++) {
            uint8_t id = spec[i].id, x = ctxs[c], rsn;
            mqtt_prop_t e[3];
            mqtt_props_t pr;
            size_t size, n = 0;
            buf_t p = { .n = 0 };
            int rc;

            if (!mqtt_prop_allowed(x, id)) {
                continue;
            }
            if (id == MQTT_PROP_AUTH_DATA) {
                put_sample(&p, MQTT_PROP_AUTH_METHOD, MQTT_PROP_T_UTF8);
                e[n++] = sample_entry(MQTT_PROP_AUTH_METHOD,
                                      MQTT_PROP_T_UTF8);
            }
            put_sample(&p, id, spec[i].type);
            put_sample(&p, id, spec[i].type);
            e[n++] = sample_entry(id, spec[i].type);
            e[n++] = sample_entry(id, spec[i].type);

            rc = parse_props(x, &p, &pr, &rsn);
            if (mqtt_prop_repeatable(x, id)) {
                assert_int_equal(rc, MQTT_OK);
                assert_int_equal(mqtt_prop_size(x, e, n, &size, NULL),
                                 MQTT_OK);
            } else {
                assert_int_equal(rc, MQTT_E_PROTOCOL);
                assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
                assert_int_equal(pr.err_id, id);
                assert_int_equal(mqtt_prop_size(x, e, n, &size, NULL),
                                 MQTT_PROP_E_INVALID);
            }
        }
    }
}

/* ---- parser: lengths ---- */

/* Every proper prefix of every property, with a Property Length that
 * claims just that prefix, is malformed. */
static void
test_truncated_values(void **state)
{
    size_t i, cut;

    for (i = 0; i < N_SPEC; i++) {
        uint8_t id = spec[i].id, x = 0;
        buf_t p = { .n = 0 };
        size_t c;

        for (c = 0; c < N_CTXS && x == 0; c++) {
            if (mqtt_prop_allowed(ctxs[c], id)) {
                x = ctxs[c];
            }
        }
        put_sample(&p, id, spec[i].type);
        for (cut = 1; cut < p.n; cut++) {
            buf_t q = { .n = 0 };
            mqtt_props_t pr;
            uint8_t rsn;

            put_bytes(&q, p.b, cut);
            assert_int_equal(parse_props(x, &q, &pr, &rsn), MQTT_E_MALFORMED);
            assert_int_equal(rsn, MQTT5_RC_MALFORMED);

            /* The same prefix followed by packet bytes the block does
             * not claim: still malformed. */
            q.n = 0;
            put_varint(&q, (uint32_t) cut);
            put_bytes(&q, p.b, p.n);
            assert_int_equal(parse_buf(x, &q, &pr, &rsn), MQTT_E_MALFORMED);
        }
    }
}

static void
test_property_length(void **state)
{
    static const uint8_t missing[1] = { 0 };
    static const uint8_t past_end[] = { 0x05, 0x23, 0x00, 0x01 };
    static const uint8_t truncated[] = { 0x80 };
    static const uint8_t truncated3[] = { 0xff, 0xff, 0xff };
    static const uint8_t five[] = { 0x80, 0x80, 0x80, 0x80, 0x01 };
    static const uint8_t ok_then_payload[] = { 0x03, 0x23, 0x00, 0x07,
                                               'p', 'a', 'y' };
    /* Property Length cuts the Topic Alias after its identifier. */
    static const uint8_t short_len[] = { 0x01, 0x23, 0x00, 0x07 };
    mqtt_props_t pr;
    uint8_t rsn;

    assert_int_equal(parse(MQTT_PUBLISH, missing, 0, &pr, &rsn),
                     MQTT_E_MALFORMED);
    assert_int_equal(rsn, MQTT5_RC_MALFORMED);
    assert_int_equal(
        parse(MQTT_PUBLISH, past_end, sizeof(past_end), &pr, &rsn),
        MQTT_E_MALFORMED);
    assert_int_equal(
        parse(MQTT_PUBLISH, truncated, sizeof(truncated), &pr, &rsn),
        MQTT_E_MALFORMED);
    assert_int_equal(
        parse(MQTT_PUBLISH, truncated3, sizeof(truncated3), &pr, &rsn),
        MQTT_E_MALFORMED);
    assert_int_equal(parse(MQTT_PUBLISH, five, sizeof(five), &pr, &rsn),
                     MQTT_E_MALFORMED);
    assert_int_equal(rsn, MQTT5_RC_MALFORMED);
    assert_int_equal(
        parse(MQTT_PUBLISH, short_len, sizeof(short_len), &pr, &rsn),
        MQTT_E_MALFORMED);

    /* The block ends where it says; what follows is the payload. */
    assert_int_equal(parse(MQTT_PUBLISH, ok_then_payload,
                           sizeof(ok_then_payload), &pr, &rsn),
                     MQTT_OK);
    assert_int_equal(pr.total, 4);
    assert_int_equal(pr.topic_alias, 7);
}

/* A Property Length of 1 (0x01) written on 2 bytes (0x81 0x00): accepted,
 * as the fixed header accepts non-minimal lengths. */
static void
test_property_length_non_minimal(void **state)
{
    static const uint8_t b[] = { 0x83, 0x00, 0x23, 0x00, 0x07 };

    /* Identifier 0x01 written on 2 bytes: no MQTT 5.0 identifier takes
     * more than one, so 0x81 is unknown. */
    static const uint8_t long_id[] = { 0x03, 0x81, 0x00, 0x00 };
    mqtt_props_t pr;
    uint8_t rsn;

    assert_int_equal(parse(MQTT_PUBLISH, b, sizeof(b), &pr, NULL), MQTT_OK);
    assert_int_equal(pr.total, 5);
    assert_int_equal(pr.raw_len, 3);
    assert_int_equal(parse(MQTT_PUBLISH, long_id, sizeof(long_id), &pr, &rsn),
                     MQTT_E_MALFORMED);
    assert_int_equal(rsn, MQTT5_RC_MALFORMED);
}

static void
test_sub_id_varint(void **state)
{
    static const uint8_t five[] = { 0x0b, 0x80, 0x80, 0x80, 0x80, 0x01 };
    static const uint8_t max[] = { 0x0b, 0xff, 0xff, 0xff, 0x7f };
    static const uint8_t zero[] = { 0x0b, 0x00 };
    mqtt_props_t pr;
    uint8_t rsn;
    buf_t p = { .n = 0 };

    put_bytes(&p, five, sizeof(five));
    assert_int_equal(parse_props(MQTT_SUBSCRIBE, &p, &pr, &rsn),
                     MQTT_E_MALFORMED);
    assert_int_equal(rsn, MQTT5_RC_MALFORMED);
    assert_int_equal(pr.err_id, MQTT_PROP_SUB_ID);

    p.n = 0;
    put_bytes(&p, max, sizeof(max));
    assert_int_equal(parse_props(MQTT_SUBSCRIBE, &p, &pr, NULL), MQTT_OK);
    assert_int_equal(pr.sub_id, MQTT_PROP_SUB_ID_MAX);
    assert_int_equal(pr.n_sub_id, 1);

    /* 0 is a Protocol Error in both packets that carry it. */
    p.n = 0;
    put_bytes(&p, zero, sizeof(zero));
    assert_int_equal(parse_props(MQTT_SUBSCRIBE, &p, &pr, &rsn),
                     MQTT_E_PROTOCOL);
    assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
    assert_int_equal(parse_props(MQTT_PUBLISH, &p, &pr, &rsn),
                     MQTT_E_PROTOCOL);
    assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
}

static void
test_empty_block(void **state)
{
    static const uint8_t b[] = { 0x00, 'x' };
    mqtt_prop_iter_t it;
    mqtt_props_t pr;
    mqtt_prop_t p;
    mqtt_str_t k, v;
    uint32_t id;
    size_t c;

    for (c = 0; c < N_CTXS; c++) {
        assert_int_equal(parse(ctxs[c], b, sizeof(b), &pr, NULL), MQTT_OK);
        assert_int_equal(pr.total, 1);
        assert_int_equal(pr.raw_len, 0);
        assert_int_equal(pr.present, 0);
        assert_int_equal(pr.n_user, 0);
        assert_int_equal(pr.n_sub_id, 0);
        /* The spec's defaults. */
        assert_int_equal(pr.receive_max, 65535);
        assert_int_equal(pr.max_qos, 2);
        assert_int_equal(pr.retain_available, 1);
        assert_int_equal(pr.wildcard_sub_available, 1);
        assert_int_equal(pr.sub_id_available, 1);
        assert_int_equal(pr.shared_sub_available, 1);
        assert_int_equal(pr.request_problem_info, 1);
        assert_int_equal(pr.request_response_info, 0);
        assert_int_equal(pr.max_packet_size, 0);
        assert_int_equal(pr.topic_alias_max, 0);
        assert_int_equal(pr.session_expiry, 0);

        mqtt_prop_iter_init(&it, &pr);
        assert_false(mqtt_prop_next(&it, &p));
        mqtt_prop_iter_init(&it, &pr);
        assert_false(mqtt_prop_next_user(&it, &k, &v));
        mqtt_prop_iter_init(&it, &pr);
        assert_false(mqtt_prop_next_sub_id(&it, &id));
    }
}

/* A block with a 4-byte Property Length (2 MiB of User Properties). */
static void
test_large_block(void **state)
{
    size_t body = 2097152, off, n_user = 0;
    uint8_t *b = malloc(4 + body);
    uint8_t *val = calloc(1, 65535);
    mqtt_prop_iter_t it;
    mqtt_props_t pr;
    mqtt_str_t k, v;
    const char *why = NULL;
    uint8_t rsn;

    assert_non_null(b);
    assert_non_null(val);
    memset(val, 'v', 65535);

    assert_int_equal(mqtt_varint_encode(b, (uint32_t) body), 4);
    off = 4;
    /* Full-size pairs (1 + 2 + 1 + 2 + 65535 bytes), then one that fills
     * the rest exactly. */
    while (4 + body - off > 65541) {
        b[off++] = MQTT_PROP_USER;
        b[off++] = 0x00;
        b[off++] = 0x01;
        b[off++] = 'k';
        b[off++] = 0xff;
        b[off++] = 0xff;
        memcpy(b + off, val, 65535);
        off += 65535;
    }
    {
        size_t rest = 4 + body - off - 6;

        assert_true(rest <= 65535);
        b[off++] = MQTT_PROP_USER;
        b[off++] = 0x00;
        b[off++] = 0x01;
        b[off++] = 'k';
        b[off++] = (uint8_t) (rest >> 8);
        b[off++] = (uint8_t) (rest & 0xff);
        memcpy(b + off, val, rest);
        off += rest;
    }
    assert_int_equal(off, 4 + body);

    assert_int_equal(mqtt_prop_parse(MQTT_PUBLISH, b, off, &pr, &rsn, &why),
                     MQTT_OK);
    assert_int_equal(pr.total, 4 + body);
    mqtt_prop_iter_init(&it, &pr);
    while (mqtt_prop_next_user(&it, &k, &v)) {
        assert_str(k, "k", 1);
        n_user++;
    }
    assert_int_equal(n_user, pr.n_user);
    assert_true(n_user > 30);

    /* One byte short of the claimed length: malformed. */
    assert_int_equal(
        mqtt_prop_parse(MQTT_PUBLISH, b, off - 1, &pr, &rsn, &why),
        MQTT_E_MALFORMED);

    free(val);
    free(b);
}

/* The largest block the serializer accepts: a Property Length of
 * 268435455.  Only sized, not written. */
static void
test_max_size_block(void **state)
{
    static const uint8_t dummy[1] = { 0 };
    mqtt_prop_t e[2];
    size_t size;

    e[0] = mqtt_prop_raw(dummy, MQTT_MAX_REMAINING);
    assert_int_equal(mqtt_prop_size(MQTT_PUBLISH, e, 1, &size, NULL),
                     MQTT_OK);
    assert_int_equal(size, 4 + (size_t) MQTT_MAX_REMAINING);

    /* A 3-byte Topic Alias after a span: one byte too many, then just
     * fitting. */
    e[0] = mqtt_prop_raw(dummy, MQTT_MAX_REMAINING - 2);
    e[1] = mqtt_prop_num(MQTT_PROP_TOPIC_ALIAS, 1);
    assert_int_equal(mqtt_prop_size(MQTT_PUBLISH, e, 2, &size, NULL),
                     MQTT_PROP_E_INVALID);
    e[0] = mqtt_prop_raw(dummy, MQTT_MAX_REMAINING - 3);
    assert_int_equal(mqtt_prop_size(MQTT_PUBLISH, e, 2, &size, NULL),
                     MQTT_OK);
    assert_int_equal(size, 4 + (size_t) MQTT_MAX_REMAINING);
    e[0] = mqtt_prop_raw(dummy, (size_t) MQTT_MAX_REMAINING + 1);
    assert_int_equal(mqtt_prop_size(MQTT_PUBLISH, e, 1, &size, NULL),
                     MQTT_PROP_E_INVALID);
    e[0] = mqtt_prop_raw(dummy, SIZE_MAX);
    assert_int_equal(mqtt_prop_size(MQTT_PUBLISH, e, 2, &size, NULL),
                     MQTT_PROP_E_INVALID);
}

/* ---- parser: values ---- */

static void
test_utf8_rules(void **state)
{
    static const char *const bad[] = {
        "a\0b",         /* U+0000 */
        "\xc0\x80",     /* overlong NUL */
        "\xed\xa0\x80", /* surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xff",
        "\xe2\x82", /* truncated sequence */
    };
    static const size_t bad_len[] = { 3, 2, 3, 4, 1, 2 };
    size_t i, j, k;

    for (i = 0; i < N_SPEC; i++) {
        uint8_t id = spec[i].id, x = 0;

        if (spec[i].type != MQTT_PROP_T_UTF8
            && spec[i].type != MQTT_PROP_T_PAIR)
        {
            continue;
        }
        for (k = 0; k < N_CTXS && x == 0; k++) {
            if (mqtt_prop_allowed(ctxs[k], id)) {
                x = ctxs[k];
            }
        }
        for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            mqtt_props_t pr;
            uint8_t rsn;
            mqtt_prop_t e;
            size_t size;
            int side;

            for (side = 0; side < (spec[i].type == MQTT_PROP_T_PAIR ? 2 : 1);
                 side++)
            {
                buf_t p = { .n = 0 };

                put_u8(&p, id);
                if (side == 1) {
                    put_str(&p, "k");
                }
                put_lstr(&p, bad[j], bad_len[j]);
                if (spec[i].type == MQTT_PROP_T_PAIR && side == 0) {
                    put_str(&p, "v");
                }
                assert_int_equal(parse_props(x, &p, &pr, &rsn),
                                 MQTT_E_MALFORMED);
                assert_int_equal(rsn, MQTT5_RC_MALFORMED);
                assert_int_equal(pr.err_id, id);

                e = spec[i].type == MQTT_PROP_T_PAIR
                        ? (side == 0 ? mqtt_prop_pair(bad[j],
                                                      (uint16_t) bad_len[j],
                                                      "v", 1)
                                     : mqtt_prop_pair("k", 1, bad[j],
                                                      (uint16_t) bad_len[j]))
                        : mqtt_prop_str(id, bad[j], (uint16_t) bad_len[j]);
                assert_int_equal(mqtt_prop_size(x, &e, 1, &size, NULL),
                                 MQTT_PROP_E_INVALID);
            }
        }
    }
}

/* Binary data is not UTF-8: any byte goes, 0x00 included. */
static void
test_binary_any_bytes(void **state)
{
    static const uint8_t data[] = { 0x00, 0xc0, 0x80, 0xff, 0xed, 0xa0 };
    mqtt_props_t pr;
    buf_t p = { .n = 0 };

    put_u8(&p, MQTT_PROP_CORRELATION_DATA);
    put_lstr(&p, data, sizeof(data));
    assert_int_equal(parse_props(MQTT_PUBLISH, &p, &pr, NULL), MQTT_OK);
    assert_str(pr.correlation_data, data, sizeof(data));

    p.n = 0;
    put_u8(&p, MQTT_PROP_AUTH_METHOD);
    put_str(&p, "SCRAM-SHA-1");
    put_u8(&p, MQTT_PROP_AUTH_DATA);
    put_lstr(&p, data, sizeof(data));
    assert_int_equal(parse_props(MQTT_AUTH, &p, &pr, NULL), MQTT_OK);
    assert_str(pr.auth_data, data, sizeof(data));

    /* Empty strings and binary are well formed. */
    p.n = 0;
    put_u8(&p, MQTT_PROP_CORRELATION_DATA);
    put_lstr(&p, NULL, 0);
    put_u8(&p, MQTT_PROP_CONTENT_TYPE);
    put_lstr(&p, NULL, 0);
    assert_int_equal(parse_props(MQTT_PUBLISH, &p, &pr, NULL), MQTT_OK);
    assert_int_equal(pr.correlation_data.len, 0);
    assert_int_equal(pr.content_type.len, 0);
}

/* Parses one property id with a numeric value v of its type's width. */
static int
parse_num(uint8_t ctx, uint8_t id, uint32_t v, uint8_t *rsn)
{
    mqtt_props_t pr;
    buf_t p = { .n = 0 };
    int rc;

    put_u8(&p, id);
    switch (mqtt_prop_type(id)) {
    case MQTT_PROP_T_BYTE:
        put_be(&p, v, 1);
        break;
    case MQTT_PROP_T_U16:
        put_be(&p, v, 2);
        break;
    case MQTT_PROP_T_U32:
        put_be(&p, v, 4);
        break;
    default:
        put_varint(&p, v);
    }
    rc = parse_props(ctx, &p, &pr, rsn);
    if (rc == MQTT_OK) {
        assert_int_equal(field_num(&pr, id), v);
    } else {
        assert_int_equal(pr.err_id, id);
    }
    return rc;
}

static void
test_value_ranges(void **state)
{
    static const struct {
        uint8_t ctx, id;
    } flags[] = {
        { MQTT_PUBLISH, MQTT_PROP_PAYLOAD_FORMAT },
        { MQTT_PROP_CTX_WILL, MQTT_PROP_PAYLOAD_FORMAT },
        { MQTT_CONNECT, MQTT_PROP_REQUEST_PROBLEM_INFO },
        { MQTT_CONNECT, MQTT_PROP_REQUEST_RESPONSE_INFO },
        { MQTT_CONNACK, MQTT_PROP_MAX_QOS },
        { MQTT_CONNACK, MQTT_PROP_RETAIN_AVAILABLE },
        { MQTT_CONNACK, MQTT_PROP_WILDCARD_SUB_AVAILABLE },
        { MQTT_CONNACK, MQTT_PROP_SUB_ID_AVAILABLE },
        { MQTT_CONNACK, MQTT_PROP_SHARED_SUB_AVAILABLE },
    };
    uint8_t rsn;
    size_t i;

    /* The 0-or-1 bytes. */
    for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        mqtt_prop_t e;
        size_t size;

        assert_int_equal(parse_num(flags[i].ctx, flags[i].id, 0, NULL),
                         MQTT_OK);
        assert_int_equal(parse_num(flags[i].ctx, flags[i].id, 1, NULL),
                         MQTT_OK);
        assert_int_equal(parse_num(flags[i].ctx, flags[i].id, 2, &rsn),
                         MQTT_E_PROTOCOL);
        assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
        assert_int_equal(parse_num(flags[i].ctx, flags[i].id, 0xff, &rsn),
                         MQTT_E_PROTOCOL);
        e = mqtt_prop_num(flags[i].id, 2);
        assert_int_equal(mqtt_prop_size(flags[i].ctx, &e, 1, &size, NULL),
                         MQTT_PROP_E_INVALID);
    }

    /* Receive Maximum and Maximum Packet Size: not 0. */
    assert_int_equal(parse_num(MQTT_CONNECT, MQTT_PROP_RECEIVE_MAX, 0, &rsn),
                     MQTT_E_PROTOCOL);
    assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
    assert_int_equal(parse_num(MQTT_CONNACK, MQTT_PROP_RECEIVE_MAX, 0, &rsn),
                     MQTT_E_PROTOCOL);
    assert_int_equal(parse_num(MQTT_CONNECT, MQTT_PROP_RECEIVE_MAX, 1, NULL),
                     MQTT_OK);
    assert_int_equal(
        parse_num(MQTT_CONNECT, MQTT_PROP_RECEIVE_MAX, 65535, NULL), MQTT_OK);
    assert_int_equal(
        parse_num(MQTT_CONNECT, MQTT_PROP_MAX_PACKET_SIZE, 0, &rsn),
        MQTT_E_PROTOCOL);
    assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
    assert_int_equal(
        parse_num(MQTT_CONNECT, MQTT_PROP_MAX_PACKET_SIZE, 1, NULL), MQTT_OK);
    assert_int_equal(parse_num(MQTT_CONNACK, MQTT_PROP_MAX_PACKET_SIZE,
                               0xffffffffu, NULL),
                     MQTT_OK);

    /* Topic Alias Maximum: anything, 0 included. */
    assert_int_equal(
        parse_num(MQTT_CONNECT, MQTT_PROP_TOPIC_ALIAS_MAX, 0, NULL), MQTT_OK);
    assert_int_equal(
        parse_num(MQTT_CONNECT, MQTT_PROP_TOPIC_ALIAS_MAX, 65535, NULL),
        MQTT_OK);

    /* Topic Alias: 0 is Topic Alias invalid. */
    assert_int_equal(parse_num(MQTT_PUBLISH, MQTT_PROP_TOPIC_ALIAS, 0, &rsn),
                     MQTT_E_PROTOCOL);
    assert_int_equal(rsn, MQTT5_RC_TOPIC_ALIAS_INVALID);
    assert_int_equal(parse_num(MQTT_PUBLISH, MQTT_PROP_TOPIC_ALIAS, 1, NULL),
                     MQTT_OK);
    assert_int_equal(
        parse_num(MQTT_PUBLISH, MQTT_PROP_TOPIC_ALIAS, 65535, NULL), MQTT_OK);

    /* Subscription Identifier: 1 .. 268435455. */
    assert_int_equal(parse_num(MQTT_SUBSCRIBE, MQTT_PROP_SUB_ID, 0, &rsn),
                     MQTT_E_PROTOCOL);
    assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
    assert_int_equal(parse_num(MQTT_SUBSCRIBE, MQTT_PROP_SUB_ID, 1, NULL),
                     MQTT_OK);
    assert_int_equal(parse_num(MQTT_SUBSCRIBE, MQTT_PROP_SUB_ID,
                               MQTT_PROP_SUB_ID_MAX, NULL),
                     MQTT_OK);

    /* Intervals: the full four bytes. */
    assert_int_equal(parse_num(MQTT_CONNECT, MQTT_PROP_SESSION_EXPIRY,
                               0xffffffffu, NULL),
                     MQTT_OK);
    assert_int_equal(parse_num(MQTT_PROP_CTX_WILL, MQTT_PROP_WILL_DELAY,
                               0xffffffffu, NULL),
                     MQTT_OK);
    assert_int_equal(
        parse_num(MQTT_PUBLISH, MQTT_PROP_MESSAGE_EXPIRY, 0, NULL), MQTT_OK);
    assert_int_equal(
        parse_num(MQTT_CONNACK, MQTT_PROP_SERVER_KEEP_ALIVE, 0, NULL),
        MQTT_OK);
}

static void
test_response_topic(void **state)
{
    static const char *const bad[] = { "", "a/+", "a/#", "+", "#" };
    mqtt_props_t pr;
    uint8_t rsn;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_t p = { .n = 0 };
        mqtt_prop_t e = mqtt_prop_str(MQTT_PROP_RESPONSE_TOPIC, bad[i],
                                      (uint16_t) strlen(bad[i]));
        size_t size;

        put_u8(&p, MQTT_PROP_RESPONSE_TOPIC);
        put_str(&p, bad[i]);
        assert_int_equal(parse_props(MQTT_PUBLISH, &p, &pr, &rsn),
                         MQTT_E_PROTOCOL);
        assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
        assert_int_equal(parse_props(MQTT_PROP_CTX_WILL, &p, &pr, &rsn),
                         MQTT_E_PROTOCOL);
        assert_int_equal(mqtt_prop_size(MQTT_PUBLISH, &e, 1, &size, NULL),
                         MQTT_PROP_E_INVALID);
    }
}

static void
test_sub_id_from_client(void **state)
{
    mqtt_props_t pr;
    uint8_t rsn;
    buf_t p = { .n = 0 };

    put_u8(&p, MQTT_PROP_SUB_ID);
    put_varint(&p, 5);

    /* A server receiving a PUBLISH: forbidden (3.3.4-6). */
    assert_int_equal(
        parse_props(MQTT_PUBLISH | MQTT_PROP_FROM_CLIENT, &p, &pr, &rsn),
        MQTT_E_PROTOCOL);
    assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
    assert_int_equal(pr.err_id, MQTT_PROP_SUB_ID);

    /* A client receiving one, and a SUBSCRIBE from a client: fine. */
    assert_int_equal(parse_props(MQTT_PUBLISH, &p, &pr, NULL), MQTT_OK);
    assert_int_equal(
        parse_props(MQTT_SUBSCRIBE | MQTT_PROP_FROM_CLIENT, &p, &pr, NULL),
        MQTT_OK);
    assert_int_equal(pr.sub_id, 5);

    /* The flag changes nothing else. */
    p.n = 0;
    put_u8(&p, MQTT_PROP_TOPIC_ALIAS);
    put_be(&p, 3, 2);
    assert_int_equal(
        parse_props(MQTT_PUBLISH | MQTT_PROP_FROM_CLIENT, &p, &pr, NULL),
        MQTT_OK);
    assert_int_equal(pr.topic_alias, 3);
}

static void
test_auth_data_needs_method(void **state)
{
    static const uint8_t ctx[] = { MQTT_CONNECT, MQTT_CONNACK, MQTT_AUTH };
    size_t i;

    for (i = 0; i < sizeof(ctx); i++) {
        mqtt_props_t pr;
        uint8_t rsn;
        buf_t p = { .n = 0 };

        put_u8(&p, MQTT_PROP_AUTH_DATA);
        put_str(&p, "xyz");
        assert_int_equal(parse_props(ctx[i], &p, &pr, &rsn), MQTT_E_PROTOCOL);
        assert_int_equal(rsn, MQTT5_RC_PROTOCOL_ERROR);
        assert_int_equal(pr.err_id, MQTT_PROP_AUTH_DATA);

        /* Either order. */
        put_u8(&p, MQTT_PROP_AUTH_METHOD);
        put_str(&p, "PLAIN");
        assert_int_equal(parse_props(ctx[i], &p, &pr, NULL), MQTT_OK);
        assert_str(pr.auth_method, "PLAIN", 5);
        assert_str(pr.auth_data, "xyz", 3);
    }
}

/* The parser accepts NULL for why and reason. */
static void
test_null_why_and_reason(void **state)
{
    static const uint8_t bad[] = { 0x02, 0x23, 0x00 };
    static const uint8_t ok[] = { 0x00 };
    mqtt_prop_iter_t it;
    mqtt_props_t pr;
    mqtt_prop_t p;

    assert_int_equal(
        mqtt_prop_parse(MQTT_PUBLISH, bad, sizeof(bad), &pr, NULL, NULL),
        MQTT_E_MALFORMED);
    /* An iterator over a failed parse walks nothing. */
    mqtt_prop_iter_init(&it, &pr);
    assert_false(mqtt_prop_next(&it, &p));

    assert_int_equal(
        mqtt_prop_parse(MQTT_PUBLISH, ok, sizeof(ok), &pr, NULL, NULL),
        MQTT_OK);
}

/* ---- iteration ---- */

static void
test_iterate_users_and_sub_ids(void **state)
{
    static const char *const names[] = { "a", "", "name" };
    static const char *const values[] = { "1", "two", "" };
    static const uint32_t ids[] = { 1, 16384, MQTT_PROP_SUB_ID_MAX };
    mqtt_prop_iter_t it;
    mqtt_props_t pr;
    mqtt_prop_t pp;
    mqtt_str_t k, v;
    uint32_t id;
    size_t i, n;
    buf_t p = { .n = 0 };

    put_u8(&p, MQTT_PROP_CONTENT_TYPE);
    put_str(&p, "text/plain");
    for (i = 0; i < 3; i++) {
        put_u8(&p, MQTT_PROP_USER);
        put_str(&p, names[i]);
        put_str(&p, values[i]);
        put_u8(&p, MQTT_PROP_SUB_ID);
        put_varint(&p, ids[i]);
    }
    /* The same name twice is allowed and kept. */
    put_u8(&p, MQTT_PROP_USER);
    put_str(&p, "a");
    put_str(&p, "again");

    assert_int_equal(parse_props(MQTT_PUBLISH, &p, &pr, NULL), MQTT_OK);
    assert_int_equal(pr.n_user, 4);
    assert_int_equal(pr.n_sub_id, 3);
    assert_int_equal(pr.sub_id, 1);
    assert_str(pr.content_type, "text/plain", 10);

    mqtt_prop_iter_init(&it, &pr);
    for (i = 0; i < 3; i++) {
        assert_true(mqtt_prop_next_user(&it, &k, &v));
        assert_str(k, names[i], strlen(names[i]));
        assert_str(v, values[i], strlen(values[i]));
    }
    assert_true(mqtt_prop_next_user(&it, &k, &v));
    assert_str(v, "again", 5);
    assert_false(mqtt_prop_next_user(&it, &k, &v));
    assert_false(mqtt_prop_next_user(&it, &k, &v));

    mqtt_prop_iter_init(&it, &pr);
    for (i = 0; i < 3; i++) {
        assert_true(mqtt_prop_next_sub_id(&it, &id));
        assert_int_equal(id, ids[i]);
    }
    assert_false(mqtt_prop_next_sub_id(&it, &id));

    /* The generic walk sees all 8, in wire order, covering the block. */
    mqtt_prop_iter_init(&it, &pr);
    n = 0;
    i = 0;
    while (mqtt_prop_next(&it, &pp)) {
        assert_ptr_equal(pp.raw, pr.raw + i);
        i += pp.raw_len;
        n++;
    }
    assert_int_equal(n, 8);
    assert_int_equal(i, pr.raw_len);
}

/* ---- serializer ---- */

/* A CONNACK block, byte for byte. */
static void
test_write_connack_bytes(void **state)
{
    static const uint8_t want[] = {
        0x1a,                         /* Property Length 26 */
        0x11, 0x00, 0x00, 0x0e, 0x10, /* Session Expiry 3600 */
        0x21, 0x00, 0x14,             /* Receive Maximum 20 */
        0x24, 0x01,                   /* Maximum QoS 1 */
        0x22, 0x00, 0x0a,             /* Topic Alias Maximum 10 */
        0x12, 0x00, 0x02, 'i', 'd',   /* Assigned Client Identifier */
        0x26, 0x00, 0x01, 'k', 0x00, 0x02, 'v', 'w', /* User Property */
    };
    mqtt_prop_t e[] = {
        mqtt_prop_num(MQTT_PROP_SESSION_EXPIRY, 3600),
        mqtt_prop_num(MQTT_PROP_RECEIVE_MAX, 20),
        mqtt_prop_num(MQTT_PROP_MAX_QOS, 1),
        mqtt_prop_num(MQTT_PROP_TOPIC_ALIAS_MAX, 10),
        mqtt_prop_str(MQTT_PROP_ASSIGNED_CLIENT_ID, "id", 2),
        mqtt_prop_pair("k", 1, "vw", 2),
    };
    uint8_t out[64];
    size_t size, written;
    mqtt_props_t pr;

    assert_int_equal(mqtt_prop_size(MQTT_CONNACK, e, 6, &size, NULL),
                     MQTT_OK);
    assert_int_equal(size, sizeof(want));
    assert_int_equal(
        mqtt_prop_write(MQTT_CONNACK, e, 6, out, sizeof(out), &written, NULL),
        MQTT_OK);
    assert_int_equal(written, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));

    assert_int_equal(parse(MQTT_CONNACK, out, written, &pr, NULL), MQTT_OK);
    assert_int_equal(pr.session_expiry, 3600);
    assert_int_equal(pr.receive_max, 20);
    assert_int_equal(pr.max_qos, 1);
    assert_int_equal(pr.topic_alias_max, 10);
    assert_str(pr.assigned_client_id, "id", 2);
    assert_int_equal(pr.n_user, 1);
}

/* An empty block is the byte 0. */
static void
test_write_empty(void **state)
{
    uint8_t out[2] = { 0xaa, 0xaa };
    size_t size, written;

    assert_int_equal(mqtt_prop_size(MQTT_PUBACK, NULL, 0, &size, NULL),
                     MQTT_OK);
    assert_int_equal(size, 1);
    assert_int_equal(mqtt_prop_write(MQTT_PUBACK, NULL, 0, out, 0, &written,
                                     NULL),
                     MQTT_PROP_E_NOSPACE);
    assert_int_equal(out[0], 0xaa);
    assert_int_equal(
        mqtt_prop_write(MQTT_PUBACK, NULL, 0, out, 2, &written, NULL),
        MQTT_OK);
    assert_int_equal(written, 1);
    assert_int_equal(out[0], 0x00);
    assert_int_equal(out[1], 0xaa);
}

/* Reason strings whose blocks cross each Property Length boundary: the
 * computed size is the written size is what the parser consumes. */
static void
test_write_sizes_exact(void **state)
{
    static const size_t bodies[] = { 3,     127,   128,    16383,
                                     16384, 65538, 131076, 2097152 };
    static const uint8_t ctx[] = { MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL,
                                   MQTT_PUBCOMP, MQTT_SUBACK, MQTT_UNSUBACK,
                                   MQTT_DISCONNECT, MQTT_AUTH, MQTT_CONNACK };
    char *s = malloc(65535);
    uint8_t *out = malloc(2200000);
    size_t i, c;

    assert_non_null(s);
    assert_non_null(out);
    memset(s, 'r', 65535);

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        mqtt_prop_t e[40];
        size_t n = 0, left = bodies[i], size, written;
        mqtt_props_t pr;

        /* One Reason String, then User Properties filling the rest. */
        {
            size_t len = left > 3 + 65535 ? 65535 : left - 3;

            e[n++] = mqtt_prop_str(MQTT_PROP_REASON_STRING, s,
                                   (uint16_t) len);
            left -= 3 + len;
        }
        while (left > 0) {
            size_t len = left > 5 + 65535 ? 65535 : left - 5;

            assert_true(left >= 5);
            assert_true(n < 40);
            e[n++] = mqtt_prop_pair(s, 0, s, (uint16_t) len);
            left -= 5 + len;
        }
        for (c = 0; c < sizeof(ctx); c++) {
            assert_int_equal(mqtt_prop_size(ctx[c], e, n, &size, NULL),
                             MQTT_OK);
            assert_int_equal(size, mqtt_varint_size((uint32_t) bodies[i])
                                       + bodies[i]);
            assert_int_equal(mqtt_prop_write(ctx[c], e, n, out, size,
                                             &written, NULL),
                             MQTT_OK);
            assert_int_equal(written, size);
            assert_int_equal(
                mqtt_prop_parse(ctx[c], out, written, &pr, NULL, NULL),
                MQTT_OK);
            assert_int_equal(pr.total, written);
            assert_int_equal(pr.reason_string.len, e[0].str.len);
            assert_int_equal(pr.n_user, n - 1);
        }
    }
    free(out);
    free(s);
}

/* Every capacity below the size fails without touching the buffer. */
static void
test_write_capacity(void **state)
{
    mqtt_prop_t e[] = {
        mqtt_prop_str(MQTT_PROP_REASON_STRING, "no such topic", 13),
        mqtt_prop_pair("trace", 5, "42", 2),
        mqtt_prop_pair("x", 1, "", 0),
    };
    uint8_t out[64];
    size_t size, cap, written, i;
    const char *why;

    assert_int_equal(mqtt_prop_size(MQTT_DISCONNECT, e, 3, &size, NULL),
                     MQTT_OK);
    for (cap = 0; cap < size; cap++) {
        memset(out, 0xaa, sizeof(out));
        why = NULL;
        written = 12345;
        assert_int_equal(
            mqtt_prop_write(MQTT_DISCONNECT, e, 3, out, cap, &written, &why),
            MQTT_PROP_E_NOSPACE);
        assert_non_null(why);
        assert_int_equal(written, 12345);
        for (i = 0; i < sizeof(out); i++) {
            assert_int_equal(out[i], 0xaa);
        }
    }
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(mqtt_prop_write(MQTT_DISCONNECT, e, 3, out, sizeof(out),
                                     &written, NULL),
                     MQTT_OK);
    assert_int_equal(written, size);
    for (i = size; i < sizeof(out); i++) {
        assert_int_equal(out[i], 0xaa);
    }
}

static void
test_write_invalid(void **state)
{
    struct {
        uint8_t ctx;
        mqtt_prop_t e;
    } bad[] = {
        { MQTT_PUBLISH, mqtt_prop_num(MQTT_PROP_PAYLOAD_FORMAT, 256) },
        { MQTT_PUBLISH, mqtt_prop_num(MQTT_PROP_TOPIC_ALIAS, 65536) },
        { MQTT_CONNACK, mqtt_prop_num(MQTT_PROP_SERVER_KEEP_ALIVE, 70000) },
        { MQTT_PUBLISH, mqtt_prop_num(MQTT_PROP_SUB_ID, 0) },
        { MQTT_PUBLISH,
          mqtt_prop_num(MQTT_PROP_SUB_ID, MQTT_PROP_SUB_ID_MAX + 1) },
        { MQTT_PUBLISH, mqtt_prop_num(MQTT_PROP_TOPIC_ALIAS, 0) },
        { MQTT_CONNACK, mqtt_prop_num(MQTT_PROP_RECEIVE_MAX, 0) },
        { MQTT_CONNACK, mqtt_prop_num(MQTT_PROP_MAX_PACKET_SIZE, 0) },
        { MQTT_CONNACK, mqtt_prop_num(MQTT_PROP_MAX_QOS, 2) },
        { MQTT_PUBLISH, mqtt_prop_num(MQTT_PROP_REASON_STRING, 0) },
        { MQTT_PUBACK, mqtt_prop_num(MQTT_PROP_TOPIC_ALIAS, 1) },
        { MQTT_PINGRESP, mqtt_prop_str(MQTT_PROP_REASON_STRING, "x", 1) },
        { 0, mqtt_prop_str(MQTT_PROP_REASON_STRING, "x", 1) },
        { 17, mqtt_prop_str(MQTT_PROP_REASON_STRING, "x", 1) },
        { MQTT_PUBACK, mqtt_prop_str(MQTT_PROP_REASON_STRING, NULL, 3) },
        { MQTT_PUBACK, mqtt_prop_pair("k", 1, NULL, 3) },
        { MQTT_PUBACK, mqtt_prop_str(MQTT_PROP_REASON_STRING, "a\0", 2) },
        { MQTT_PUBACK, mqtt_prop_raw(NULL, 3) },
        { MQTT_PUBACK, mqtt_prop_num(0x2b, 1) },
        { MQTT_PUBACK, mqtt_prop_num(0x04, 1) },
    };
    uint8_t out[64];
    size_t i, size, written;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;

        assert_int_equal(mqtt_prop_size(bad[i].ctx, &bad[i].e, 1, &size,
                                         &why),
                         MQTT_PROP_E_INVALID);
        assert_non_null(why);
        assert_int_equal(mqtt_prop_write(bad[i].ctx, &bad[i].e, 1, out,
                                         sizeof(out), &written, NULL),
                         MQTT_PROP_E_INVALID);
    }

    /* Limits themselves are fine. */
    {
        mqtt_prop_t ok[] = {
            mqtt_prop_num(MQTT_PROP_PAYLOAD_FORMAT, 1),
            mqtt_prop_num(MQTT_PROP_TOPIC_ALIAS, 65535),
            mqtt_prop_num(MQTT_PROP_SUB_ID, MQTT_PROP_SUB_ID_MAX),
            mqtt_prop_num(MQTT_PROP_MESSAGE_EXPIRY, 0xffffffffu),
            mqtt_prop_raw(NULL, 0),
        };
        mqtt_props_t pr;

        assert_int_equal(mqtt_prop_write(MQTT_PUBLISH, ok, 5, out,
                                         sizeof(out), &written, NULL),
                         MQTT_OK);
        assert_int_equal(parse(MQTT_PUBLISH, out, written, &pr, NULL),
                         MQTT_OK);
        assert_int_equal(pr.sub_id, MQTT_PROP_SUB_ID_MAX);
        assert_int_equal(pr.message_expiry, 0xffffffffu);
    }
}

/*
 * The forwarding path: a client's PUBLISH properties are parsed, the
 * per-hop ones filtered out once, and each subscriber's block is the
 * remaining expiry, the filtered span and its subscription identifiers.
 */
static void
test_forward_publish(void **state)
{
    static const uint8_t corr[] = { 0x00, 0x01, 0x02 };
    mqtt_prop_t in[] = {
        mqtt_prop_num(MQTT_PROP_PAYLOAD_FORMAT, 1),
        mqtt_prop_num(MQTT_PROP_MESSAGE_EXPIRY, 600),
        mqtt_prop_num(MQTT_PROP_TOPIC_ALIAS, 4),
        mqtt_prop_pair("u1", 2, "v1", 2),
        mqtt_prop_str(MQTT_PROP_CONTENT_TYPE, "json", 4),
        mqtt_prop_str(MQTT_PROP_RESPONSE_TOPIC, "reply/me", 8),
        mqtt_prop_str(MQTT_PROP_CORRELATION_DATA, corr, sizeof(corr)),
        mqtt_prop_pair("u2", 2, "v2", 2),
    };
    uint8_t wire[128], span[128], out[160];
    size_t wlen, slen, olen, size;
    mqtt_props_t pr, fw;
    mqtt_prop_iter_t it;
    mqtt_prop_t sub[4];
    mqtt_str_t k, v;
    uint32_t id;

    assert_int_equal(mqtt_prop_write(MQTT_PUBLISH, in, 8, wire, sizeof(wire),
                                     &wlen, NULL),
                     MQTT_OK);
    assert_int_equal(parse(MQTT_PUBLISH | MQTT_PROP_FROM_CLIENT, wire, wlen,
                           &pr, NULL),
                     MQTT_OK);

    slen = mqtt_prop_filter_size(&pr, MQTT_PROP_PUBLISH_PER_HOP);
    assert_int_equal(slen, pr.raw_len - 5 - 3);
    assert_int_equal(mqtt_prop_filter(&pr, MQTT_PROP_PUBLISH_PER_HOP, span,
                                      slen - 1, &olen),
                     MQTT_PROP_E_NOSPACE);
    assert_int_equal(mqtt_prop_filter(&pr, MQTT_PROP_PUBLISH_PER_HOP, span,
                                      sizeof(span), &olen),
                     MQTT_OK);
    assert_int_equal(olen, slen);

    /* Dropping nothing copies the block; dropping all leaves nothing. */
    assert_int_equal(mqtt_prop_filter_size(&pr, 0), pr.raw_len);
    assert_int_equal(mqtt_prop_filter_size(&pr, ~(uint64_t) 0), 0);

    sub[0] = mqtt_prop_num(MQTT_PROP_MESSAGE_EXPIRY, 540);
    sub[1] = mqtt_prop_raw(span, slen);
    sub[2] = mqtt_prop_num(MQTT_PROP_SUB_ID, 7);
    sub[3] = mqtt_prop_num(MQTT_PROP_SUB_ID, 200);
    assert_int_equal(mqtt_prop_size(MQTT_PUBLISH, sub, 4, &size, NULL),
                     MQTT_OK);
    assert_int_equal(mqtt_prop_write(MQTT_PUBLISH, sub, 4, out, sizeof(out),
                                     &olen, NULL),
                     MQTT_OK);
    assert_int_equal(olen, size);

    /* What the subscriber parses (pr is stale from here: the parse
     * helper frees its previous copy). */
    assert_int_equal(parse(MQTT_PUBLISH, out, olen, &fw, NULL), MQTT_OK);
    assert_int_equal(fw.message_expiry, 540);
    assert_int_equal(fw.payload_format, 1);
    assert_false((fw.present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS)) != 0);
    assert_str(fw.content_type, "json", 4);
    assert_str(fw.response_topic, "reply/me", 8);
    assert_str(fw.correlation_data, corr, sizeof(corr));
    assert_int_equal(fw.n_sub_id, 2);
    mqtt_prop_iter_init(&it, &fw);
    assert_true(mqtt_prop_next_sub_id(&it, &id));
    assert_int_equal(id, 7);
    assert_true(mqtt_prop_next_sub_id(&it, &id));
    assert_int_equal(id, 200);
    mqtt_prop_iter_init(&it, &fw);
    assert_true(mqtt_prop_next_user(&it, &k, &v));
    assert_str(k, "u1", 2);
    assert_true(mqtt_prop_next_user(&it, &k, &v));
    assert_str(k, "u2", 2);
    assert_false(mqtt_prop_next_user(&it, &k, &v));
}

/* ---- reason codes ---- */

static void
test_reason_names(void **state)
{
    static const uint8_t defined[] = {
        0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x18, 0x19, 0x80, 0x81, 0x82,
        0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d,
        0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
        0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
    };
    size_t i, n = 0;
    unsigned rc;

    assert_int_equal(sizeof(defined), 43);
    for (rc = 0; rc <= 0xff; rc++) {
        bool want = memchr(defined, (int) rc, sizeof(defined)) != NULL;
        const char *s = mqtt5_reason_str((uint8_t) rc);

        assert_non_null(s);
        assert_int_equal(strcmp(s, "unknown reason code") != 0, want);
        n += want;
    }
    assert_int_equal(n, 43);
    for (i = 0; i < sizeof(defined); i++) {
        unsigned t, allowed = 0;

        for (t = 0; t <= 20; t++) {
            allowed += mqtt5_reason_allowed((uint8_t) t, defined[i]);
        }
        assert_true(allowed > 0);
    }
    assert_string_equal(mqtt5_reason_str(MQTT5_RC_MALFORMED),
                        "Malformed Packet");
    assert_string_equal(mqtt5_reason_str(MQTT5_RC_PROTOCOL_ERROR),
                        "Protocol Error");
    assert_string_equal(mqtt5_reason_str(MQTT5_RC_TOPIC_ALIAS_INVALID),
                        "Topic Alias invalid");
    assert_string_equal(mqtt5_reason_str(0x03), "unknown reason code");
    assert_string_equal(mqtt5_reason_str(0xff), "unknown reason code");
}

static void
test_reason_allowed(void **state)
{
    static const uint8_t with_rc[] = {
        MQTT_CONNACK, MQTT_PUBACK,   MQTT_PUBREC,     MQTT_PUBREL,
        MQTT_PUBCOMP, MQTT_SUBACK,   MQTT_UNSUBACK,   MQTT_DISCONNECT,
        MQTT_AUTH
    };
    static const uint8_t without[] = { 0,           MQTT_CONNECT,
                                       MQTT_PUBLISH, MQTT_SUBSCRIBE,
                                       MQTT_UNSUBSCRIBE, MQTT_PINGREQ,
                                       MQTT_PINGRESP, 16 };
    unsigned rc;
    size_t i;

    for (i = 0; i < sizeof(with_rc); i++) {
        assert_true(mqtt5_reason_allowed(with_rc[i], MQTT5_RC_SUCCESS));
    }
    for (i = 0; i < sizeof(without); i++) {
        for (rc = 0; rc <= 0xff; rc++) {
            assert_false(mqtt5_reason_allowed(without[i], (uint8_t) rc));
        }
    }

    assert_true(mqtt5_reason_allowed(MQTT_PUBREL, 0x92));
    assert_true(mqtt5_reason_allowed(MQTT_PUBCOMP, 0x92));
    assert_false(mqtt5_reason_allowed(MQTT_PUBACK, 0x92));
    assert_true(mqtt5_reason_allowed(MQTT_PUBACK, 0x10));
    assert_true(mqtt5_reason_allowed(MQTT_PUBREC, 0x10));
    assert_false(mqtt5_reason_allowed(MQTT_PUBREL, 0x10));
    assert_false(mqtt5_reason_allowed(MQTT_PUBREL, 0x80));
    assert_true(mqtt5_reason_allowed(MQTT_DISCONNECT, 0x04));
    assert_false(mqtt5_reason_allowed(MQTT_CONNACK, 0x04));
    assert_true(mqtt5_reason_allowed(MQTT_CONNACK, 0x84));
    assert_false(mqtt5_reason_allowed(MQTT_DISCONNECT, 0x84));
    assert_true(mqtt5_reason_allowed(MQTT_SUBACK, 0x02));
    assert_false(mqtt5_reason_allowed(MQTT_SUBACK, 0x03));
    assert_false(mqtt5_reason_allowed(MQTT_SUBACK, 0x81));
    assert_true(mqtt5_reason_allowed(MQTT_UNSUBACK, 0x11));
    assert_true(mqtt5_reason_allowed(MQTT_AUTH, 0x18));
    assert_true(mqtt5_reason_allowed(MQTT_AUTH, 0x19));
    assert_false(mqtt5_reason_allowed(MQTT_AUTH, 0x80));
    assert_true(mqtt5_reason_allowed(MQTT_DISCONNECT, 0x8e));
    assert_true(mqtt5_reason_allowed(MQTT_SUBACK, 0xa2));
    assert_false(mqtt5_reason_allowed(MQTT_CONNACK, 0xa2));
}

static int
teardown_copy(void **state)
{
    free(last_copy);
    last_copy = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_spec),
        cmocka_unit_test(test_repeatable),
        cmocka_unit_test(test_round_trip_every_id),
        cmocka_unit_test(test_disallowed_every_context),
        cmocka_unit_test(test_unknown_ids),
        cmocka_unit_test(test_packets_without_properties),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_truncated_values),
        cmocka_unit_test(test_property_length),
        cmocka_unit_test(test_property_length_non_minimal),
        cmocka_unit_test(test_sub_id_varint),
        cmocka_unit_test(test_empty_block),
        cmocka_unit_test(test_large_block),
        cmocka_unit_test(test_max_size_block),
        cmocka_unit_test(test_utf8_rules),
        cmocka_unit_test(test_binary_any_bytes),
        cmocka_unit_test(test_value_ranges),
        cmocka_unit_test(test_response_topic),
        cmocka_unit_test(test_sub_id_from_client),
        cmocka_unit_test(test_auth_data_needs_method),
        cmocka_unit_test(test_null_why_and_reason),
        cmocka_unit_test(test_iterate_users_and_sub_ids),
        cmocka_unit_test(test_write_connack_bytes),
        cmocka_unit_test(test_write_empty),
        cmocka_unit_test(test_write_sizes_exact),
        cmocka_unit_test(test_write_capacity),
        cmocka_unit_test(test_write_invalid),
        cmocka_unit_test(test_forward_publish),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_reason_allowed),
    };

    return cmocka_run_group_tests(tests, NULL, teardown_copy);
}
