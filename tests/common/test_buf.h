/*
 * test_buf.h -- packet builders for the MQTT codec tests (test_mqtt.c,
 * test_mqtt_props.c, test_mqtt5.c): a fixed buffer with big-endian,
 * string and varint writers that fail the test when it overflows, and
 * the error contract of the parsers.  Include after <cmocka.h>.
 */
#ifndef RINGMQ_TEST_BUF_H
#define RINGMQ_TEST_BUF_H

#include <stdint.h>
#include <string.h>

#include "mqtt.h"

typedef struct buf {
    uint8_t b[4096];
    size_t n;
} buf_t;

static inline void put_u8(buf_t *b, uint8_t v)
{
    assert_true(b->n < sizeof(b->b));
    b->b[b->n++] = v;
}

/* v as an n-byte big-endian integer. */
static inline void put_be(buf_t *b, uint32_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_u8(b, (uint8_t)(v >> (8 * (n - 1 - i))));
}

static inline void put_u16(buf_t *b, uint16_t v)
{
    put_be(b, v, 2);
}

static inline void put_bytes(buf_t *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof(b->b));
    if (n > 0)
        memcpy(b->b + b->n, p, n);
    b->n += n;
}

/* A length-prefixed string of n raw bytes. */
static inline void put_lstr(buf_t *b, const void *p, size_t n)
{
    put_be(b, (uint32_t)n, 2);
    put_bytes(b, p, n);
}

static inline void put_str(buf_t *b, const char *s)
{
    put_lstr(b, s, strlen(s));
}

static inline void put_varint(buf_t *b, uint32_t v)
{
    do {
        uint8_t x = v & 0x7f;
        v >>= 7;
        put_u8(b, (uint8_t)(x | (v > 0 ? 0x80 : 0)));
    } while (v > 0);
}

/*
 * Error contract: an error (not MQTT_AGAIN) sets *why to a non-empty
 * string.  Returns rc so calls nest in assert_int_equal; why is passed by
 * address so it is read after the parser ran.
 */
static inline int check_why(int rc, const char *const *why)
{
    if (rc < MQTT_AGAIN) {
        assert_non_null(*why);
        assert_true(strlen(*why) > 0);
    }
    return rc;
}

#endif
