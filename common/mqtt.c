/*
 * mqtt.c -- MQTT 3.1 / 3.1.1 wire codec: server-side parsers that check
 * every rule the spec makes a server close the connection for, and the
 * serializers for what a server sends.  No allocation, no global state.
 *
 * Error classes: MQTT_E_MALFORMED for what cannot be decoded or breaks a
 * length, a reserved bit, a QoS value or the UTF-8 rules; MQTT_E_PROTOCOL
 * for a well-formed packet the spec forbids (packet id 0, wildcard in a
 * topic name, DUP on QoS 0, inconsistent CONNECT flags, unknown protocol
 * name, SUBSCRIBE or UNSUBSCRIBE without entries).  Both mean: close the
 * connection without an answer.
 */
#include "panic.h"
#include <string.h>

#include "mqtt.h"

static bool
mqtt_has_wildcard(const mqtt_str_t *s)
{
    return s->len > 0
           && (memchr(s->p, '+', s->len) != NULL
               || memchr(s->p, '#', s->len) != NULL);
}

/*
 * Checks a topic name (PUBLISH, or the will topic when `will`): returns
 * MQTT_OK, or an error with *why set.
 */
static int
mqtt_check_topic_name(const mqtt_str_t *t, bool will, const char **why)
{
    if (t->len == 0) {
        mqtt_set_why(why, will ? "will topic empty" : "PUBLISH topic empty");
        return MQTT_E_MALFORMED;
    }
    if (!mqtt_utf8_valid(t->p, t->len)) {
        mqtt_set_why(why, will ? "will topic not valid UTF-8"
                               : "PUBLISH topic not valid UTF-8");
        return MQTT_E_MALFORMED;
    }
    if (mqtt_has_wildcard(t)) {
        mqtt_set_why(why, will ? "will topic has a wildcard"
                               : "PUBLISH topic has a wildcard");
        return MQTT_E_PROTOCOL;
    }
    return MQTT_OK;
}

int
mqtt_fixed_header(const uint8_t *buf, size_t len, mqtt_fixed_t *fh,
                  const char **why)
{
    uint32_t v = 0;
    size_t i;

    if (len < 1) {
        return MQTT_AGAIN;
    }
    if ((buf[0] >> 4) == 0) {
        mqtt_set_why(why, "packet type 0");
        return MQTT_E_MALFORMED;
    }

    /* Up to 4 length bytes; the 4th must not ask for a 5th. */
    for (i = 1; i <= 4; i++) {
        if (i >= len) {
            return MQTT_AGAIN;
        }
        v |= (uint32_t) (buf[i] & 0x7f) << (7 * (i - 1));
        if ((buf[i] & 0x80) == 0) {
            fh->type = buf[0] >> 4;
            fh->flags = buf[0] & 0x0f;
            fh->remaining = v;
            fh->hdr_len = (uint8_t) (i + 1);
            return MQTT_OK;
        }
    }

    mqtt_set_why(why, "remaining length longer than 4 bytes");
    return MQTT_E_MALFORMED;
}

/* Parses the MQTT 5 property block at the cursor for context ctx (from a
 * client) into *props and moves past it; on error *reason and *why are
 * set. */
static int
mqtt_rd_props(mqtt_rd_t *rd, uint8_t ctx, mqtt_props_t *props,
              uint8_t *reason, const char **why)
{
    int rc = mqtt_prop_parse(ctx | MQTT_PROP_FROM_CLIENT, rd->p,
                             mqtt_rd_left(rd), props, reason, why);

    if (rc == MQTT_OK) {
        rd->p += props->total;
    }
    return rc;
}

/* The reason code of MQTT 5.0 for a parser's error class, unless the
 * property parser chose a more precise one already. */
static int
mqtt_reason_of(int rc, uint8_t *reason)
{
    if (rc != MQTT_OK && *reason == 0) {
        *reason = mqtt5_error_reason(rc);
    }
    return rc;
}

uint8_t
mqtt5_error_reason(int rc)
{
    return rc == MQTT_E_MALFORMED ? MQTT5_RC_MALFORMED
                                  : MQTT5_RC_PROTOCOL_ERROR;
}

static int
mqtt_parse_connect_body(uint8_t flags, const uint8_t *body, size_t len,
                        mqtt_connect_t *c, const char **why)
{
    mqtt_rd_t rd = { body, body + len };
    mqtt_str_t name;
    uint8_t level, cf;
    int rc;

    memset(c, 0, sizeof(*c));

    if ((flags & 0x0f) != 0) {
        mqtt_set_why(why, "CONNECT fixed-header flags not 0");
        return MQTT_E_MALFORMED;
    }

    /* Protocol name and level decide everything that follows. */
    if (!mqtt_rd_str(&rd, &name) || !mqtt_rd_u8(&rd, &level)) {
        mqtt_set_why(why, "CONNECT truncated in protocol name or level");
        return MQTT_E_MALFORMED;
    }
    c->level = level;

    if (name.len == 4 && memcmp(name.p, "MQTT", 4) == 0) {
        if (level != MQTT_V311 && level != MQTT_V5) {
            mqtt_set_why(why, "unsupported protocol level");
            return MQTT_E_VERSION;
        }
    } else if (name.len == 6 && memcmp(name.p, "MQIsdp", 6) == 0) {
        if (level != MQTT_V31) {
            mqtt_set_why(why, "unsupported protocol level");
            return MQTT_E_VERSION;
        }
    } else {
        mqtt_set_why(why, "unknown protocol name");
        return MQTT_E_PROTOCOL;
    }

    if (!mqtt_rd_u8(&rd, &cf) || !mqtt_rd_u16(&rd, &c->keepalive)) {
        mqtt_set_why(why, "CONNECT truncated in variable header");
        return MQTT_E_MALFORMED;
    }

    if (level == MQTT_V5) {
        rc = mqtt_rd_props(&rd, MQTT_CONNECT, &c->props, &c->reason, why);
        if (rc != MQTT_OK) {
            return rc;
        }
    }

    if (cf & 0x01) {
        mqtt_set_why(why, "CONNECT reserved flag set");
        return MQTT_E_MALFORMED;
    }
    c->clean_session = (cf & 0x02) != 0;
    c->will = (cf & 0x04) != 0;
    c->will_qos = (cf >> 3) & 0x03;
    c->will_retain = (cf & 0x20) != 0;
    c->has_password = (cf & 0x40) != 0;
    c->has_username = (cf & 0x80) != 0;

    if (c->will_qos == 3) {
        mqtt_set_why(why, "will QoS 3");
        return MQTT_E_MALFORMED;
    }
    if (!c->will && (c->will_qos != 0 || c->will_retain)) {
        mqtt_set_why(why, "will QoS or retain without will flag");
        return MQTT_E_PROTOCOL;
    }
    if (c->has_password && !c->has_username && level != MQTT_V5) {
        mqtt_set_why(why, "password without username");
        return MQTT_E_PROTOCOL;
    }

    /* Payload, in the order the flags announce it. */
    if (!mqtt_rd_str(&rd, &c->client_id)) {
        mqtt_set_why(why, "CONNECT truncated in client id");
        return MQTT_E_MALFORMED;
    }
    if (!mqtt_utf8_valid(c->client_id.p, c->client_id.len)) {
        mqtt_set_why(why, "client id not valid UTF-8");
        return MQTT_E_MALFORMED;
    }

    if (c->will) {
        mqtt_str_t msg;

        if (level == MQTT_V5) {
            rc = mqtt_rd_props(&rd, MQTT_PROP_CTX_WILL, &c->will_props,
                               &c->reason, why);
            if (rc != MQTT_OK) {
                return rc;
            }
        }
        if (!mqtt_rd_str(&rd, &c->will_topic)) {
            mqtt_set_why(why, "CONNECT truncated in will topic");
            return MQTT_E_MALFORMED;
        }
        rc = mqtt_check_topic_name(&c->will_topic, true, why);
        if (rc != MQTT_OK) {
            return rc;
        }
        if (!mqtt_rd_str(&rd, &msg)) {
            mqtt_set_why(why, "CONNECT truncated in will message");
            return MQTT_E_MALFORMED;
        }
        c->will_payload = msg.p;
        c->will_payload_len = msg.len;
    }

    if (c->has_username) {
        if (!mqtt_rd_str(&rd, &c->username)) {
            mqtt_set_why(why, "CONNECT truncated in username");
            return MQTT_E_MALFORMED;
        }
        if (!mqtt_utf8_valid(c->username.p, c->username.len)) {
            mqtt_set_why(why, "username not valid UTF-8");
            return MQTT_E_MALFORMED;
        }
    }

    if (c->has_password && !mqtt_rd_str(&rd, &c->password)) {
        mqtt_set_why(why, "CONNECT truncated in password");
        return MQTT_E_MALFORMED;
    }

    if (mqtt_rd_left(&rd) != 0) {
        mqtt_set_why(why, "trailing bytes after CONNECT payload");
        return MQTT_E_MALFORMED;
    }

    /* Only a well-formed CONNECT earns a CONNACK 0x02. */
    if (level == MQTT_V31
        && (c->client_id.len == 0 || c->client_id.len > 23))
    {
        mqtt_set_why(why, "MQTT 3.1 client id not 1..23 bytes");
        return MQTT_E_CLIENTID;
    }
    if (c->client_id.len == 0 && !c->clean_session && level != MQTT_V5) {
        mqtt_set_why(why, "empty client id without clean session");
        return MQTT_E_CLIENTID;
    }

    return MQTT_OK;
}

int
mqtt_parse_connect(uint8_t flags, const uint8_t *body, size_t len,
                   mqtt_connect_t *c, const char **why)
{
    return mqtt_reason_of(mqtt_parse_connect_body(flags, body, len, c, why),
                          &c->reason);
}

static int
mqtt_parse_publish_body(uint8_t level, uint8_t flags, const uint8_t *body,
                        size_t len, mqtt_publish_t *p, const char **why)
{
    mqtt_rd_t rd = { body, body + len };
    int rc;

    memset(p, 0, sizeof(*p));

    p->retain = (flags & 0x01) != 0;
    p->qos = (flags >> 1) & 0x03;
    p->dup = (flags & 0x08) != 0;

    if (p->qos == 3) {
        mqtt_set_why(why, "PUBLISH with QoS 3");
        return MQTT_E_MALFORMED;
    }
    if (p->dup && p->qos == 0) {
        mqtt_set_why(why, "PUBLISH with DUP and QoS 0");
        return MQTT_E_PROTOCOL;
    }

    if (!mqtt_rd_str(&rd, &p->topic)) {
        mqtt_set_why(why, "PUBLISH truncated in topic");
        return MQTT_E_MALFORMED;
    }
    /* An MQTT 5 topic may be empty when a Topic Alias stands for it: the
     * caller, who holds the alias map, decides. */
    if (level != MQTT_V5 || p->topic.len > 0) {
        rc = mqtt_check_topic_name(&p->topic, false, why);
        if (rc != MQTT_OK) {
            return rc;
        }
    }

    if (p->qos > 0) {
        if (!mqtt_rd_u16(&rd, &p->pid)) {
            mqtt_set_why(why, "PUBLISH truncated in packet id");
            return MQTT_E_MALFORMED;
        }
        if (p->pid == 0) {
            mqtt_set_why(why, "PUBLISH packet id 0");
            return MQTT_E_PROTOCOL;
        }
    }

    if (level == MQTT_V5) {
        rc = mqtt_rd_props(&rd, MQTT_PUBLISH, &p->props, &p->reason, why);
        if (rc != MQTT_OK) {
            return rc;
        }
    }

    p->payload = rd.p;
    p->payload_len = mqtt_rd_left(&rd);
    return MQTT_OK;
}

int
mqtt_parse_publish(uint8_t level, uint8_t flags, const uint8_t *body,
                   size_t len, mqtt_publish_t *p, const char **why)
{
    return mqtt_reason_of(mqtt_parse_publish_body(level, flags, body, len, p,
                                                  why),
                          &p->reason);
}

/*
 * An MQTT 5 reason code and property block after `rd` (acks, DISCONNECT,
 * AUTH): both may be absent, the block only when the code is.  The code
 * must be one the spec allows in `type`.
 */
static int
mqtt_parse_reason_tail(uint8_t type, mqtt_rd_t *rd, uint8_t *rc_out,
                       mqtt_props_t *props, uint8_t *reason, const char **why)
{
    mqtt_props_t local;
    uint8_t code = 0;
    int rc;

    if (props == NULL) {
        props = &local;
    }
    memset(props, 0, sizeof(*props));
    if (mqtt_rd_left(rd) > 0) {
        mqtt_rd_u8(rd, &code);
        if (!mqtt5_reason_allowed(type, code)) {
            mqtt_set_why(why, "reason code not allowed in this packet");
            return MQTT_E_PROTOCOL;
        }
    }
    if (mqtt_rd_left(rd) > 0) {
        rc = mqtt_rd_props(rd, type, props, reason, why);
        if (rc != MQTT_OK) {
            return rc;
        }
        if (mqtt_rd_left(rd) != 0) {
            mqtt_set_why(why, "trailing bytes after properties");
            return MQTT_E_MALFORMED;
        }
    }
    if (rc_out != NULL) {
        *rc_out = code;
    }
    return MQTT_OK;
}

int
mqtt_parse_ack(uint8_t level, uint8_t type, uint8_t flags,
               const uint8_t *body, size_t len, uint16_t *pid, uint8_t *rc,
               const char **why)
{
    mqtt_rd_t rd = { body, body + len };
    uint8_t want, reason = 0;

    switch (type) {
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBCOMP:
        want = 0;
        break;
    case MQTT_PUBREL:
        want = 2;
        break;
    default:
        mqtt_set_why(why, "not a PUBACK, PUBREC, PUBREL or PUBCOMP");
        return MQTT_E_PROTOCOL;
    }

    if ((flags & 0x0f) != want) {
        mqtt_set_why(why, "reserved fixed-header flags in ack");
        return MQTT_E_MALFORMED;
    }
    if (len < 2 || (len != 2 && level != MQTT_V5)) {
        mqtt_set_why(why, "ack remaining length not 2");
        return MQTT_E_MALFORMED;
    }

    mqtt_rd_u16(&rd, pid);
    if (*pid == 0) {
        mqtt_set_why(why, "ack packet id 0");
        return MQTT_E_PROTOCOL;
    }
    if (rc != NULL) {
        *rc = 0;
    }
    return mqtt_parse_reason_tail(type, &rd, rc, NULL, &reason, why);
}

int
mqtt_parse_disconnect(uint8_t level, uint8_t flags, const uint8_t *body,
                      size_t len, uint8_t *rc, mqtt_props_t *props,
                      const char **why)
{
    mqtt_rd_t rd = { body, body + len };
    uint8_t reason = 0;

    if (level != MQTT_V5) {
        *rc = 0;
        memset(props, 0, sizeof(*props));
        return mqtt_parse_empty(MQTT_DISCONNECT, flags, len, why);
    }
    if ((flags & 0x0f) != 0) {
        mqtt_set_why(why, "DISCONNECT flags not 0");
        return MQTT_E_MALFORMED;
    }
    return mqtt_parse_reason_tail(MQTT_DISCONNECT, &rd, rc, props, &reason,
                                  why);
}

int
mqtt_parse_auth(uint8_t flags, const uint8_t *body, size_t len, uint8_t *rc,
                mqtt_props_t *props, const char **why)
{
    mqtt_rd_t rd = { body, body + len };
    uint8_t reason = 0;

    if ((flags & 0x0f) != 0) {
        mqtt_set_why(why, "AUTH flags not 0");
        return MQTT_E_MALFORMED;
    }
    return mqtt_parse_reason_tail(MQTT_AUTH, &rd, rc, props, &reason, why);
}

/* Common part of SUBSCRIBE and UNSUBSCRIBE. */
static int
mqtt_parse_sublist(uint8_t level, bool subscribe, uint8_t flags,
                   const uint8_t *body, size_t len, uint16_t *pid,
                   mqtt_props_t *props, mqtt_iter_t *it, const char **why)
{
    mqtt_rd_t rd = { body, body + len };
    mqtt_str_t f;
    uint8_t qos;

    if ((flags & 0x0f) != 2) {
        mqtt_set_why(why, subscribe ? "SUBSCRIBE flags not 2"
                                    : "UNSUBSCRIBE flags not 2");
        return MQTT_E_MALFORMED;
    }
    if (!mqtt_rd_u16(&rd, pid)) {
        mqtt_set_why(why, "truncated packet id");
        return MQTT_E_MALFORMED;
    }
    if (*pid == 0) {
        mqtt_set_why(why, "packet id 0");
        return MQTT_E_PROTOCOL;
    }
    if (level == MQTT_V5) {
        uint8_t reason;
        int rc = mqtt_rd_props(&rd, subscribe ? MQTT_SUBSCRIBE
                                              : MQTT_UNSUBSCRIBE,
                               props, &reason, why);
        if (rc != MQTT_OK) {
            return rc;
        }
    } else if (props != NULL) {
        memset(props, 0, sizeof(*props));
    }
    if (mqtt_rd_left(&rd) == 0) {
        mqtt_set_why(why, subscribe ? "SUBSCRIBE without topic filters"
                                    : "UNSUBSCRIBE without topic filters");
        return MQTT_E_PROTOCOL;
    }

    it->p = rd.p;
    it->end = rd.end;
    it->subscribe = subscribe;

    while (mqtt_rd_left(&rd) > 0) {
        if (!mqtt_rd_str(&rd, &f)) {
            mqtt_set_why(why, "truncated topic filter");
            return MQTT_E_MALFORMED;
        }
        if (f.len == 0) {
            mqtt_set_why(why, "empty topic filter");
            return MQTT_E_MALFORMED;
        }
        if (!mqtt_utf8_valid(f.p, f.len)) {
            mqtt_set_why(why, "topic filter not valid UTF-8");
            return MQTT_E_MALFORMED;
        }
        if (!subscribe) {
            continue;
        }
        if (!mqtt_rd_u8(&rd, &qos)) {
            mqtt_set_why(why, "SUBSCRIBE truncated in requested QoS");
            return MQTT_E_MALFORMED;
        }
        /* MQTT 5: the Subscription Options byte (3.8.3.1). */
        if ((qos & (level == MQTT_V5 ? 0xc0 : 0xfc)) != 0) {
            mqtt_set_why(why, "SUBSCRIBE reserved bits in requested QoS");
            return MQTT_E_MALFORMED;
        }
        if ((qos & MQTT_SUBOPT_RH_MASK) == MQTT_SUBOPT_RH_MASK) {
            mqtt_set_why(why, "SUBSCRIBE Retain Handling 3");
            return MQTT_E_PROTOCOL;
        }
        if ((qos & 0x03) == 3) {
            mqtt_set_why(why, "SUBSCRIBE requested QoS 3");
            return MQTT_E_MALFORMED;
        }
    }
    return MQTT_OK;
}

int
mqtt_parse_subscribe(uint8_t level, uint8_t flags, const uint8_t *body,
                     size_t len, uint16_t *pid, mqtt_props_t *props,
                     mqtt_iter_t *it, const char **why)
{
    return mqtt_parse_sublist(level, true, flags, body, len, pid, props, it,
                              why);
}

int
mqtt_parse_unsubscribe(uint8_t level, uint8_t flags, const uint8_t *body,
                       size_t len, uint16_t *pid, mqtt_props_t *props,
                       mqtt_iter_t *it, const char **why)
{
    return mqtt_parse_sublist(level, false, flags, body, len, pid, props, it,
                              why);
}

bool
mqtt_iter_next(mqtt_iter_t *it, mqtt_str_t *filter, uint8_t *qos)
{
    mqtt_rd_t rd = { it->p, it->end };
    uint8_t q = 0;

    /* The list was validated; the bounds checks only guard misuse. */
    if (!mqtt_rd_str(&rd, filter)) {
        return false;
    }
    if (it->subscribe && !mqtt_rd_u8(&rd, &q)) {
        return false;
    }
    if (qos != NULL) {
        *qos = q;
    }
    it->p = rd.p;
    return true;
}

int
mqtt_parse_empty(uint8_t type, uint8_t flags, size_t len, const char **why)
{
    if (type != MQTT_PINGREQ && type != MQTT_DISCONNECT) {
        mqtt_set_why(why, "not a PINGREQ or DISCONNECT");
        return MQTT_E_PROTOCOL;
    }
    if ((flags & 0x0f) != 0) {
        mqtt_set_why(why, type == MQTT_PINGREQ ? "PINGREQ flags not 0"
                                               : "DISCONNECT flags not 0");
        return MQTT_E_MALFORMED;
    }
    if (len != 0) {
        mqtt_set_why(why, type == MQTT_PINGREQ
                              ? "PINGREQ remaining length not 0"
                              : "DISCONNECT remaining length not 0");
        return MQTT_E_MALFORMED;
    }
    return MQTT_OK;
}

bool
mqtt_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t b = s[i];
        uint8_t lo = 0x80, hi = 0xbf;
        size_t n, k;

        if (b == 0x00) {
            return false;
        }
        if (b < 0x80) {
            i++;
            continue;
        }

        /*
         * The second byte's range excludes overlongs (E0, F0), surrogates
         * (ED) and code points above U+10FFFF (F4); C0, C1 and F5..FF never
         * start a sequence.
         */
        if (b >= 0xc2 && b <= 0xdf) {
            n = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
            n = 2;
            if (b == 0xe0) {
                lo = 0xa0;
            } else if (b == 0xed) {
                hi = 0x9f;
            }
        } else if (b >= 0xf0 && b <= 0xf4) {
            n = 3;
            if (b == 0xf0) {
                lo = 0x90;
            } else if (b == 0xf4) {
                hi = 0x8f;
            }
        } else {
            return false;
        }

        if (len - i - 1 < n) {
            return false;
        }
        if (s[i + 1] < lo || s[i + 1] > hi) {
            return false;
        }
        for (k = 2; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return false;
            }
        }
        i += n + 1;
    }
    return true;
}

size_t
mqtt_varint_encode(uint8_t *out, uint32_t v)
{
    size_t n = 0;

    RMQ_ASSERT(v <= MQTT_MAX_REMAINING);

    do {
        uint8_t b = v & 0x7f;

        v >>= 7;
        if (v > 0) {
            b |= 0x80;
        }
        out[n++] = b;
    } while (v > 0);

    return n;
}

size_t
mqtt_varint_size(uint32_t v)
{
    RMQ_ASSERT(v <= MQTT_MAX_REMAINING);

    if (v < 128) {
        return 1;
    }
    if (v < 16384) {
        return 2;
    }
    if (v < 2097152) {
        return 3;
    }
    return 4;
}

/* session_present is sent as 0 whatever the caller says when rc is not
 * MQTT_RC_ACCEPTED (3.2.2-4). */
size_t
mqtt_write_connack(uint8_t *out, bool session_present, uint8_t rc)
{
    out[0] = MQTT_CONNACK << 4;
    out[1] = 2;
    out[2] = (session_present && rc == MQTT_RC_ACCEPTED) ? 0x01 : 0x00;
    out[3] = rc;
    return 4;
}

size_t
mqtt_write_ack(uint8_t *out, uint8_t type, uint16_t pid)
{
    RMQ_ASSERT(type == MQTT_PUBACK || type == MQTT_PUBREC || type == MQTT_PUBREL
           || type == MQTT_PUBCOMP || type == MQTT_UNSUBACK);

    out[0] = (uint8_t) ((type << 4) | (type == MQTT_PUBREL ? 0x02 : 0x00));
    out[1] = 2;
    out[2] = (uint8_t) (pid >> 8);
    out[3] = (uint8_t) (pid & 0xff);
    return 4;
}

/* The length of Reason String s (len bytes) cut to at most max bytes at
 * a character boundary, so what is sent stays valid UTF-8. */
static uint16_t
reason_cut(const char *s, size_t len, size_t max)
{
    if (len <= max) {
        return (uint16_t) len;
    }
    while (max > 0 && ((uint8_t) s[max] & 0xC0) == 0x80) {
        max--; /* s[max], the first byte left out, continues a character */
    }
    return (uint16_t) max;
}

size_t
mqtt_write_ack_rc(uint8_t *out, size_t cap, uint8_t type, uint16_t pid,
                  uint8_t rc, const char *reason_string)
{
    size_t n = mqtt_write_ack(out, type, pid), sl, plen;
    mqtt_prop_t pr;

    if (rc == 0 && reason_string == NULL) {
        return n; /* the short form (3.4.2.1) */
    }
    out[1] = 3;
    out[4] = rc;
    if (reason_string == NULL) {
        return 5;
    }
    sl = strlen(reason_string);
    pr = mqtt_prop_str(MQTT_PROP_REASON_STRING, reason_string,
                       reason_cut(reason_string, sl, 100));
    if (cap < 6 || mqtt_prop_write(type, &pr, 1, out + 5, cap - 5, &plen,
                                   NULL) != MQTT_OK
        || 3 + plen > 127)
    {
        return 5; /* no room: the code alone */
    }
    out[1] = (uint8_t) (3 + plen);
    return 5 + plen;
}

size_t
mqtt_write_disconnect(uint8_t *out, size_t cap, uint8_t rc,
                      const char *reason_string)
{
    mqtt_prop_t pr[1];
    size_t n = 0, plen = 0, off;

    if (reason_string != NULL) {
        size_t sl = strlen(reason_string);
        pr[n++] = mqtt_prop_str(MQTT_PROP_REASON_STRING, reason_string,
                                reason_cut(reason_string, sl, 200));
    }
    /* plen counts the property length's own varint: the remaining length
     * is 1 + plen, two bytes from 128 on. */
    if (mqtt_prop_size(MQTT_DISCONNECT, pr, n, &plen, NULL) != MQTT_OK
        || 1 + mqtt_varint_size((uint32_t) (1 + plen)) + 1 + plen > cap)
    {
        n = 0;
        plen = 1;
    }
    out[0] = MQTT_DISCONNECT << 4;
    off = 1 + mqtt_varint_encode(out + 1, (uint32_t) (1 + plen));
    out[off++] = rc;
    mqtt_prop_write(MQTT_DISCONNECT, pr, n, out + off, cap - off, &plen,
                    NULL);
    return off + plen;
}

/*
 * Writes a packet of type `type` (flags 0) made of the hlen bytes of head
 * and the property block of the n entries of props.  Returns the bytes
 * written, or 0 when an entry is invalid or the packet needs more than
 * cap bytes.
 */
static size_t
mqtt_write_with_props(uint8_t *out, size_t cap, uint8_t type,
                      const uint8_t *head, size_t hlen,
                      const mqtt_prop_t *props, size_t n)
{
    size_t plen, vlen, off;

    if (mqtt_prop_size(type, props, n, &plen, NULL) != MQTT_OK) {
        return 0;
    }
    vlen = hlen + plen;
    if (vlen > MQTT_MAX_REMAINING
        || 1 + mqtt_varint_size((uint32_t) vlen) + vlen > cap)
    {
        return 0;
    }
    out[0] = (uint8_t) (type << 4);
    off = 1 + mqtt_varint_encode(out + 1, (uint32_t) vlen);
    memcpy(out + off, head, hlen);
    off += hlen;
    mqtt_prop_write(type, props, n, out + off, cap - off, &plen, NULL);
    return off + plen;
}

size_t
mqtt_write_connack5(uint8_t *out, size_t cap, bool session_present,
                    uint8_t rc, const mqtt_prop_t *props, size_t n)
{
    uint8_t head[2] = { (session_present && rc == 0) ? 0x01 : 0x00, rc };

    return mqtt_write_with_props(out, cap, MQTT_CONNACK, head, 2, props, n);
}

size_t
mqtt_write_auth(uint8_t *out, size_t cap, uint8_t rc, const char *method,
                size_t mlen, const uint8_t *data, size_t dlen)
{
    mqtt_prop_t pr[2];
    size_t n = 0;

    if (mlen > UINT16_MAX || dlen > UINT16_MAX) {
        return 0;
    }
    pr[n++] = mqtt_prop_str(MQTT_PROP_AUTH_METHOD, method, (uint16_t) mlen);
    if (data != NULL) {
        pr[n++] = mqtt_prop_str(MQTT_PROP_AUTH_DATA, data, (uint16_t) dlen);
    }
    return mqtt_write_with_props(out, cap, MQTT_AUTH, &rc, 1, pr, n);
}

size_t
mqtt_write_pingresp(uint8_t *out)
{
    out[0] = MQTT_PINGRESP << 4;
    out[1] = 0;
    return 2;
}

size_t
mqtt_suback_size(size_t n)
{
    RMQ_ASSERT(n <= MQTT_MAX_REMAINING - 2);

    return 1 + mqtt_varint_size((uint32_t) (n + 2)) + 2 + n;
}

size_t
mqtt_write_suback(uint8_t *out, uint16_t pid, const uint8_t *codes,
                  size_t n)
{
    size_t off;

    RMQ_ASSERT(n <= MQTT_MAX_REMAINING - 2);

    out[0] = MQTT_SUBACK << 4;
    off = 1 + mqtt_varint_encode(out + 1, (uint32_t) (n + 2));
    out[off++] = (uint8_t) (pid >> 8);
    out[off++] = (uint8_t) (pid & 0xff);
    if (n > 0) {
        memcpy(out + off, codes, n);
    }
    return off + n;
}

/* dup is dropped for QoS 0, where the spec requires it to be 0 (3.3.1-2). */
size_t
mqtt_write_publish_header(uint8_t *out, uint8_t qos, bool dup, bool retain,
                          uint32_t remaining)
{
    RMQ_ASSERT(qos <= 2);

    out[0] = (uint8_t) ((MQTT_PUBLISH << 4) | ((dup && qos > 0) ? 0x08 : 0)
                        | (qos << 1) | (retain ? 0x01 : 0));
    return 1 + mqtt_varint_encode(out + 1, remaining);
}
