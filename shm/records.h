/*
 * records.h -- the records that travel through the rings: ingest
 * (frontend -> worker), reply and notify (worker -> frontend) and output
 * (worker -> the frontend hosting a client).
 */
#ifndef RINGMQ_RECORDS_H
#define RINGMQ_RECORDS_H

#include <stdint.h>

#include "arena.h"

/* ---- ingest records (32 bytes) ---- */
enum {
    ING_PUBLISH = 1,    /* h1 message; qos, flags ING_F_RETAIN; slot =
                           publisher's slot */
    ING_CONNECT = 2,    /* h1 client-id blob [u16 len][id]; h2 will message
                           or 0; qos = will QoS, flags ING_F_*; a = cookie;
                           b = level | keepalive << 8 */
    ING_DETACH = 3,     /* slot, a = connection generation, flags ING_F_* */
    ING_SUBSCRIBE = 4,  /* slot, a = connection generation, h1 sub blob */
    ING_UNSUBSCRIBE = 5 /* slot, a = connection generation, h1 sub blob */
};

#define ING_F_RETAIN 0x01      /* PUBLISH, will */
#define ING_F_CLEAN 0x02       /* CONNECT: clean session */
#define ING_F_WILL_RETAIN 0x04 /* CONNECT */
#define ING_F_CLEAN_CLOSE 0x08 /* DETACH: DISCONNECT received */

typedef struct ing_rec {
    uint8_t type;
    uint8_t qos;
    uint8_t flags;
    uint8_t fe;    /* producing frontend */
    uint32_t slot;
    arena_h h1;
    arena_h h2;
    uint32_t a;
    uint32_t b;
} ing_rec_t;

/*
 * Subscription blob (SUBSCRIBE and UNSUBSCRIBE), built by the frontend:
 *   [u16 ack_len][ack bytes: the SUBACK or UNSUBACK to send]
 *   [u16 n] then n entries [u8 qos][u16 code][u16 len][filter bytes]
 * Entries are only the filters to apply (valid ones); qos is the granted
 * QoS (unused for UNSUBSCRIBE); code says where the entry's return code
 * stands: that many bytes before the end of the SUBACK (1 for the last).
 * The worker sets it to 0x80 when it cannot store the subscription.
 */

/* ---- reply records (32 bytes) ---- */
enum {
    REP_CONNECT_OK = 1,  /* slot, conn_gen, session_present */
    REP_CONNECT_FAIL = 2 /* rc: CONNACK code, or 0xff: superseded */
};

typedef struct rep_rec {
    uint8_t type;
    uint8_t rc;
    uint8_t session_present;
    uint8_t pad;
    uint32_t cookie;
    uint32_t slot;
    uint32_t conn_gen;
    uint64_t pad2[2];
} rep_rec_t;

/* ---- output records (16 bytes): a slot's data ring, deliveries only ---- */
enum {
    OUT_DELIVER = 1 /* h message, qos, flags OUT_F_RETAIN */
};

#define OUT_F_RETAIN 0x01

typedef struct out_rec {
    arena_h h;
    uint8_t type;
    uint8_t qos;
    uint8_t flags;
    uint8_t pad;
    uint32_t aux;
} out_rec_t;

/*
 * ---- control records (32 bytes): a slot's control ring ----
 * Control records never wait behind deliveries (a full inflight window, a
 * slow socket): the host drains the whole control ring before every pass
 * over the data ring, after reading the data ring's head, so a control
 * record is sent before every delivery the worker pushed after it (the
 * SUBACK before the retained messages it brings).
 */
enum {
    CTL_RAW = 1, /* h blob: send len bytes from offset 2 (SUBACK, UNSUBACK) */
    CTL_KICK = 2 /* close the connection (takeover) */
};

typedef struct ctl_rec {
    arena_h h;
    uint32_t conn_gen; /* the connection it is for; others skip it */
    uint32_t len;
    uint8_t type;
    uint8_t pad[15];
} ctl_rec_t;

/* Message layout in the arena: [u16 topic_len][topic][payload]. */
static inline uint16_t msg_topic_len(const uint8_t *m)
{
    return (uint16_t)(m[0] << 8 | m[1]);
}

/* Payload bytes of message m of len bytes (what max_queued_bytes counts,
 * as in Mosquitto). */
static inline uint32_t msg_payload_len(const uint8_t *m, uint32_t len)
{
    return len - 2u - msg_topic_len(m);
}

#endif
