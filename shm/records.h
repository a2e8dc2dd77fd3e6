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
    ING_UNSUBSCRIBE = 5, /* slot, a = connection generation, h1 sub blob */
    ING_SYNC = 6        /* barrier: answered with REP_SYNC once every
                           record before it was handled (frontend start) */
};

#define ING_F_RETAIN 0x01      /* PUBLISH, will */
#define ING_F_CLEAN 0x02       /* CONNECT: clean session */
#define ING_F_WILL_RETAIN 0x04 /* CONNECT */
#define ING_F_CLEAN_CLOSE 0x08 /* DETACH: DISCONNECT received */
#define ING_F_DISCARD 0x10     /* DETACH: free the session even when it is
                                  persistent (admin kick, issue 6) */

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
 * Subscription blob (SUBSCRIBE and UNSUBSCRIBE), built by the frontend,
 * all integers big-endian:
 *   [u32 ack_len][ack bytes: the SUBACK or UNSUBACK to send]
 *   [u32 n_codes: SUBACK return codes, the last n_codes ack bytes]
 *   [u32 n] then n entries [u8 qos][u32 code][u16 len][filter bytes]
 * Entries are only the filters to apply (valid ones); qos is the granted
 * QoS (unused for UNSUBSCRIBE); code is the index of the entry's return
 * code, which the worker sets to 0x80 when it cannot store the
 * subscription.  The worker checks every length before it trusts one.
 */
static inline uint32_t rec_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static inline void rec_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#define SUBB_ENT_HDR 7 /* qos, code, len */

typedef struct sub_blob {
    uint32_t ack_len;
    uint8_t *codes;   /* n_codes SUBACK codes, inside the ack bytes */
    uint32_t n_codes;
    uint32_t n;       /* entries */
    const uint8_t *ents;
    const uint8_t *end;
} sub_blob_t;

typedef struct sub_ent {
    uint8_t qos;
    uint32_t code;
    uint16_t len;
    const char *filter;
} sub_ent_t;

/* Checks the blob's header and every entry's bounds.  Returns 0 and fills
 * *sb, or -1 when the blob is malformed. */
static inline int sub_blob_open(uint8_t *b, uint32_t blen, sub_blob_t *sb)
{
    if (blen < 12)
        return -1;
    sb->ack_len = rec_rd32(b);
    if (sb->ack_len > blen - 12)
        return -1;
    sb->n_codes = rec_rd32(b + 4 + sb->ack_len);
    sb->n = rec_rd32(b + 8 + sb->ack_len);
    if (sb->n_codes > sb->ack_len)
        return -1;
    sb->codes = b + 4 + sb->ack_len - sb->n_codes;
    sb->ents = b + 12 + sb->ack_len;
    sb->end = b + blen;
    const uint8_t *p = sb->ents;
    for (uint32_t i = 0; i < sb->n; i++) {
        if ((size_t)(sb->end - p) < SUBB_ENT_HDR)
            return -1;
        uint32_t code = rec_rd32(p + 1);
        size_t len = (size_t)(p[5] << 8 | p[6]);
        if ((size_t)(sb->end - p) - SUBB_ENT_HDR < len ||
            (sb->n_codes && code >= sb->n_codes))
            return -1;
        p += SUBB_ENT_HDR + len;
    }
    return 0;
}

/* Reads the entry at *p (inside a blob checked by sub_blob_open()) and
 * moves *p past it. */
static inline void sub_blob_next(const uint8_t **p, sub_ent_t *e)
{
    const uint8_t *q = *p;
    e->qos = q[0];
    e->code = rec_rd32(q + 1);
    e->len = (uint16_t)(q[5] << 8 | q[6]);
    e->filter = (const char *)q + SUBB_ENT_HDR;
    *p = q + SUBB_ENT_HDR + e->len;
}

/* ---- reply records (32 bytes) ---- */
enum {
    REP_CONNECT_OK = 1,  /* slot, conn_gen, session_present */
    REP_CONNECT_FAIL = 2, /* rc: CONNACK code, or 0xff: superseded */
    REP_SYNC = 3          /* answers ING_SYNC */
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
    CTL_RAW = 1, /* h blob: send len bytes from offset 4 (SUBACK, UNSUBACK) */
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
