/*
 * records.h -- the records that travel through the rings: ingest
 * (frontend -> worker), reply and notify (worker -> frontend) and output
 * (worker -> the frontend hosting a client).
 */
#ifndef RINGMQ_RECORDS_H
#define RINGMQ_RECORDS_H

#include <stdint.h>

#include "arena.h"
#include "mqtt.h"

/* ---- ingest records (32 bytes) ---- */
enum {
    ING_PUBLISH = 1,    /* h1 message; qos, flags ING_F_RETAIN; slot =
                           publisher's slot (UINT32_MAX: none) */
    ING_CONNECT = 2,    /* h1 client-id blob [u16 len][id]; h2 will
                           message or 0; qos = will QoS, flags ING_F_*;
                           a = cookie; b = level | keepalive << 8; slot =
                           MQTT 5 session expiry (CONN_EXPIRY_NEVER:
                           never) */
    ING_DETACH = 3,     /* slot, a = connection generation, flags ING_F_*;
                           b = new session expiry with ING_F_EXPIRY */
    ING_SUBSCRIBE = 4,  /* slot, a = connection generation, h1 sub blob */
    ING_UNSUBSCRIBE = 5, /* slot, a = connection generation, h1 sub blob */
    ING_SYNC = 6,       /* barrier: answered with REP_SYNC once every
                           record before it was handled (frontend start) */
    ING_SHARE = 7,      /* to worker 0: h1 a new fo_share_rec_t (joins a
                           shared subscription group) */
    ING_UNSHARE = 8     /* to worker 0: slot leaves a group; h1 blob
                           [u16 len][$share/GROUP/FILTER], a = epoch */
};

#define ING_F_RETAIN 0x01      /* PUBLISH, will */
#define ING_F_CLEAN 0x02       /* CONNECT: clean session / Clean Start */
#define ING_F_WILL_RETAIN 0x04 /* CONNECT */
#define ING_F_CLEAN_CLOSE 0x08 /* DETACH: DISCONNECT received */
#define ING_F_DISCARD 0x10     /* DETACH: free the session even when it is
                                  persistent (admin kick, issue 6) */
#define ING_F_EXPIRY 0x20      /* DETACH: b is the session's new expiry
                                  (MQTT 5 DISCONNECT) */
#define ING_F_WILL_DELAY 0x40  /* DETACH: the will was not published: it
                                  has a Will Delay Interval (MQTT 5) */

#define CONN_EXPIRY_NEVER 0xffffffffu

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
 *   [u32 n_codes: return codes, the last n_codes ack bytes]
 *   [u32 n] then n entries
 *   [u8 opts][u32 code][u32 sub_id][u16 len][filter bytes]
 * Entries are only the filters to apply (valid ones); opts is the granted
 * QoS or'ed with the MQTT 5 subscription options (MQTT_SUBOPT_*; unused
 * for UNSUBSCRIBE); sub_id the Subscription Identifier (0: none); code is
 * the index of the entry's return code, which the worker sets to 0x80
 * when it cannot store the subscription, or, for an MQTT 5 UNSUBSCRIBE,
 * to 0x11 when there was no such subscription.  The worker checks every
 * length before it trusts one.
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

#define SUBB_ENT_HDR 11 /* opts, code, sub_id, len */
#define SUBB_OPT_NEW 0x80 /* set by the worker in opts: the subscription
                             did not exist (Retain Handling 1) */

typedef struct sub_blob {
    uint32_t ack_len;
    uint8_t *codes;   /* n_codes SUBACK codes, inside the ack bytes */
    uint32_t n_codes;
    uint32_t n;       /* entries */
    const uint8_t *ents;
    const uint8_t *end;
} sub_blob_t;

typedef struct sub_ent {
    uint8_t opts;
    uint32_t code;
    uint32_t sub_id;
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
        size_t len = (size_t)(p[9] << 8 | p[10]);
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
    e->opts = q[0];
    e->code = rec_rd32(q + 1);
    e->sub_id = rec_rd32(q + 5);
    e->len = (uint16_t)(q[9] << 8 | q[10]);
    e->filter = (const char *)q + SUBB_ENT_HDR;
    *p = q + SUBB_ENT_HDR + e->len;
}

/* ---- reply records (32 bytes) ---- */
enum {
    REP_CONNECT_OK = 1,  /* slot, conn_gen, session_present */
    REP_CONNECT_FAIL = 2, /* rc: CONNACK code, or 0xff: superseded */
    REP_SYNC = 3,         /* answers ING_SYNC */
    REP_WILL = 4          /* publish the delayed will h of slot (the
                             record holds a reference); rc = its QoS,
                             session_present = its retain flag */
};

typedef struct rep_rec {
    uint8_t type;
    uint8_t rc;
    uint8_t session_present;
    uint8_t pad;
    uint32_t cookie;
    uint32_t slot;
    uint32_t conn_gen;
    arena_h h;
    uint64_t pad2;
} rep_rec_t;

/* ---- output records (16 bytes): a slot's data ring, deliveries only ---- */
enum {
    OUT_DELIVER = 1, /* h message, qos, flags OUT_F_RETAIN, aux: the
                        Subscription Identifier (0: none) */
    OUT_SUBID = 2    /* h 0, aux: one more Subscription Identifier of the
                        OUT_DELIVER that follows (MQTT 5: a message
                        matching several subscriptions of a client) */
};

#define OUT_F_RETAIN 0x01
#define OUT_F_SHARED 0x02 /* DELIVER through a shared subscription: aux is
                             the group's hash (fo_share.c), its
                             Subscription Identifier comes as OUT_SUBID */
#define OUT_F_STALE 0x04  /* a QoS 0 DELIVER whose connection ended before
                             it was sent: set by the owner worker while no
                             frontend holds the ring (fo_on_detach()); the
                             next host drops it */

typedef struct out_rec {
    arena_h h;
    uint8_t type;
    uint8_t qos;
    uint8_t flags;
    uint8_t pad;
    uint32_t aux;
} out_rec_t;

/* ---- broadcast records (16 bytes): worker -> frontend, QoS 0 deliveries
 * of one message to sessions with nothing queued (docs/architecture.md,
 * "QoS 0 to many") ----
 * A group is n BC_TO records and the BC_MSG that closes it, committed
 * together; it holds n references to the message. */
enum {
    BC_TO = 1, /* to: slot, conn_gen; aux: Subscription Identifier (0:
                  none); flags OUT_F_RETAIN */
    BC_MSG = 2 /* h: the message; aux: n, the BC_TO records before it */
};

typedef struct bc_rec {
    union {
        arena_h h; /* BC_MSG */
        struct {
            uint32_t slot;
            uint32_t conn_gen;
        } to;      /* BC_TO */
    } u;
    uint32_t aux;
    uint8_t type;
    uint8_t flags;
    uint16_t pad;
} bc_rec_t;

/*
 * ---- worker records (32 bytes): between fan-out workers (shared
 * subscriptions, docs/architecture.md) ----
 */
enum {
    XR_DELIVER = 1, /* worker 0 -> owner: deliver h to member slot (epoch)
                       at qos; flags OUT_F_RETAIN; group hash, sub_id */
    XR_RETURN = 2   /* owner -> worker 0: h (qos) could not go to slot, or
                       its session ended holding it: choose another member
                       of group; hops so far */
};

typedef struct fo_xrec {
    uint8_t type;
    uint8_t qos;
    uint8_t flags;
    uint8_t hops;
    uint32_t slot;
    arena_h h;     /* the message: the record holds a reference */
    uint32_t epoch;
    uint32_t group;
    uint32_t sub_id;
    uint32_t pad;
} fo_xrec_t;

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

/*
 * Message layout in the arena (a PUBLISH or a will, copied once):
 *   [u32 pub_at][u32 expiry][u32 will_delay][u32 span_len][span]
 *   [5 bytes: 3.1.1 fixed header][u16 topic_len][topic][payload]
 * in host byte order for the four header words.  expiry is the Message
 * Expiry Interval in seconds (0: none); pub_at the unix time the message
 * was published, from which it counts (a will gets it when it is sent);
 * will_delay the Will Delay Interval of a will (else 0).
 * span is the MQTT 5 properties forwarded unchanged, already encoded
 * (mqtt_prop_filter(): User Properties, Content Type, Response Topic,
 * Correlation Data, Payload Format Indicator).  Topic and payload end the
 * block, and msg_init() writes the fixed header of a 3.1.1 QoS 0 PUBLISH
 * (no RETAIN) right-aligned before them: from msg_pkt0() to the end the
 * block is that whole packet, sent with one iovec.
 */
#define MSG_HDR 16
#define MSG_PKT0_MAX 5 /* first byte + a remaining length of 4 bytes */

typedef struct msg_view {
    uint32_t pub_at;
    uint32_t expiry;
    uint32_t will_delay;
    const uint8_t *span;
    uint32_t span_len;
    const uint8_t *tw;      /* [u16 topic_len][topic][payload] */
    uint16_t tlen;
    const char *topic;
    const uint8_t *payload;
    uint32_t plen;
} msg_view_t;

/* The 3.1.1 QoS 0 PUBLISH of v without RETAIN: where it starts and its
 * length (it runs to the end of the block). */
static inline const uint8_t *msg_pkt0(const msg_view_t *v, uint32_t *len)
{
    uint32_t rem = 2u + v->tlen + v->plen;
    uint32_t hl = 1 + (uint32_t)mqtt_varint_size(rem);
    *len = hl + rem;
    return v->tw - hl;
}

/* Opens message m of len bytes.  Returns 0, or -1 when the lengths do not
 * fit (a corrupt or stale block: never trust it). */
static inline int msg_open(const uint8_t *m, uint32_t len, msg_view_t *v)
{
    const uint32_t fixed = MSG_HDR + MSG_PKT0_MAX + 2;
    if (len < fixed)
        return -1;
    uint32_t w[4];
    __builtin_memcpy(w, m, sizeof(w));
    if (w[3] > len - fixed)
        return -1;
    const uint8_t *t = m + MSG_HDR + w[3] + MSG_PKT0_MAX;
    uint16_t tlen = (uint16_t)(t[0] << 8 | t[1]);
    if ((uint32_t)tlen > len - fixed - w[3])
        return -1;
    v->pub_at = w[0];
    v->expiry = w[1];
    v->will_delay = w[2];
    v->span = m + MSG_HDR;
    v->span_len = w[3];
    v->tw = t;
    v->tlen = tlen;
    v->topic = (const char *)t + 2;
    v->payload = t + 2 + tlen;
    v->plen = len - fixed - w[3] - tlen;
    return 0;
}

/* Writes the header of a message with a span of span_len bytes, topic t
 * and plen payload bytes, and its 3.1.1 QoS 0 fixed header; returns where
 * the span goes (the caller copies span and payload: the payload goes at
 * the returned pointer + span_len + MSG_PKT0_MAX + 2 + tlen). */
static inline uint8_t *msg_init(uint8_t *m, uint32_t pub_at,
                                uint32_t expiry, uint32_t will_delay,
                                uint32_t span_len, const void *t,
                                uint16_t tlen, uint32_t plen)
{
    uint32_t w[4] = {pub_at, expiry, will_delay, span_len};
    __builtin_memcpy(m, w, sizeof(w));
    uint8_t *tp = m + MSG_HDR + span_len + MSG_PKT0_MAX;
    /* The remaining length, right-aligned before the topic length; the
     * bytes before the first byte are never sent. */
    uint32_t rem = 2u + tlen + plen;
    uint8_t *h = tp - 1 - mqtt_varint_size(rem);
    __builtin_memset(m + MSG_HDR + span_len, 0, MSG_PKT0_MAX);
    h[0] = MQTT_PUBLISH << 4; /* QoS 0, no DUP, no RETAIN */
    mqtt_varint_encode(h + 1, rem);
    tp[0] = (uint8_t)(tlen >> 8);
    tp[1] = (uint8_t)tlen;
    __builtin_memcpy(tp + 2, t, tlen);
    return m + MSG_HDR;
}

/* Bytes of a message with that span, topic and payload. */
static inline size_t msg_size(size_t span_len, size_t tlen, size_t plen)
{
    return MSG_HDR + span_len + MSG_PKT0_MAX + 2 + tlen + plen;
}

/* Whether message v has expired at unix time now (whole seconds, so
 * only once now is past its end: never early, at most a second late). */
static inline int msg_expired(const msg_view_t *v, uint64_t now)
{
    return v->expiry != 0 && now > (uint64_t)v->pub_at + v->expiry;
}

/* What is left of the Message Expiry Interval of v (not 0) at now, in
 * whole seconds, at least 1 while it has not expired. */
static inline uint32_t msg_expiry_left(const msg_view_t *v, uint64_t now)
{
    uint64_t end = (uint64_t)v->pub_at + v->expiry;
    return end > now ? (uint32_t)(end - now) : 1;
}

/* Payload bytes of message m of len bytes (what max_queued_bytes counts,
 * as in Mosquitto); 0 for a corrupt block. */
static inline uint32_t msg_payload_len(const uint8_t *m, uint32_t len)
{
    msg_view_t v;
    return msg_open(m, len, &v) < 0 ? 0 : v.plen;
}

/* Length of a [u16 len][bytes] blob (client ids). */
static inline uint16_t blob_len(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

/* The bytes of blob h and their number (*len), or NULL when h is stale or
 * its length runs past its block. */
static inline const char *blob_get(const arena_t *a, arena_h h,
                                   uint16_t *len)
{
    uint32_t blen;
    const uint8_t *b = arena_get(a, h, &blen);
    if (b == NULL || blen < 2 || 2u + blob_len(b) > blen)
        return NULL;
    *len = blob_len(b);
    return (const char *)b + 2;
}

#endif
