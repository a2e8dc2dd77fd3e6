/*
 * mqtt_base.h -- what both MQTT codecs (mqtt.c for packets, mqtt_props.c
 * for MQTT 5.0 property blocks) share: packet types, protocol levels,
 * result codes, the string view and a bounded read cursor.
 */
#ifndef RINGMQ_MQTT_BASE_H
#define RINGMQ_MQTT_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Control packet types (high nibble of the first byte). */
enum {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
    MQTT_AUTH = 15
};

/* Protocol levels. */
#define MQTT_V31 3
#define MQTT_V311 4
#define MQTT_V5 5

/* Largest remaining length the 4-byte varint can carry. */
#define MQTT_MAX_REMAINING 268435455u

/* Results.  Every parser returns MQTT_OK or one of the negative codes and,
 * on error, sets *why to a static string fit for a log line. */
#define MQTT_OK 0
#define MQTT_AGAIN (-1)      /* fixed header incomplete: read more */
#define MQTT_E_MALFORMED (-2) /* bad lengths, bad varint, reserved bits */
#define MQTT_E_PROTOCOL (-3) /* well formed but forbidden by the spec */
#define MQTT_E_VERSION (-4)  /* CONNECT: answer CONNACK 0x01, then close */
#define MQTT_E_CLIENTID (-5) /* CONNECT: answer CONNACK 0x02, then close */

/* A string inside a packet: not NUL-terminated. */
typedef struct mqtt_str {
    const uint8_t *p;
    uint16_t len;
} mqtt_str_t;

/* A bounded cursor over a packet body.  Every read checks the bound and
 * consumes nothing when it fails. */
typedef struct mqtt_rd {
    const uint8_t *p;
    const uint8_t *end;
} mqtt_rd_t;

static inline void mqtt_set_why(const char **why, const char *msg)
{
    if (why != NULL)
        *why = msg;
}

static inline size_t mqtt_rd_left(const mqtt_rd_t *rd)
{
    return (size_t)(rd->end - rd->p);
}

/* Reads n (1..4) bytes as a big-endian integer; false when fewer are
 * left. */
static inline bool mqtt_rd_be(mqtt_rd_t *rd, size_t n, uint32_t *v)
{
    uint32_t x = 0;
    if (mqtt_rd_left(rd) < n)
        return false;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | rd->p[i];
    rd->p += n;
    *v = x;
    return true;
}

static inline bool mqtt_rd_u8(mqtt_rd_t *rd, uint8_t *v)
{
    uint32_t x;
    if (!mqtt_rd_be(rd, 1, &x))
        return false;
    *v = (uint8_t)x;
    return true;
}

static inline bool mqtt_rd_u16(mqtt_rd_t *rd, uint16_t *v)
{
    uint32_t x;
    if (!mqtt_rd_be(rd, 2, &x))
        return false;
    *v = (uint16_t)x;
    return true;
}

/* Reads a 2-byte length and that many bytes; false when they overrun. */
static inline bool mqtt_rd_str(mqtt_rd_t *rd, mqtt_str_t *s)
{
    if (mqtt_rd_left(rd) < 2)
        return false;
    uint16_t n = (uint16_t)(rd->p[0] << 8 | rd->p[1]);
    if (mqtt_rd_left(rd) - 2 < n)
        return false;
    s->p = rd->p + 2;
    s->len = n;
    rd->p += 2 + n;
    return true;
}

/* Reads a variable byte integer.  Returns 0, -1 when the bytes end inside
 * it, -2 when it runs past 4 bytes. */
static inline int mqtt_rd_varint(mqtt_rd_t *rd, uint32_t *v)
{
    uint32_t x = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= mqtt_rd_left(rd))
            return -1;
        x |= (uint32_t)(rd->p[i] & 0x7f) << (7 * i);
        if ((rd->p[i] & 0x80) == 0) {
            rd->p += i + 1;
            *v = x;
            return 0;
        }
    }
    return -2;
}

#endif
