/*
 * bench_wire.c -- client-side MQTT 3.1.1 / 5.0 serializers and the parser
 * for what a broker sends, as ringmq-bench needs them.  No allocation, no
 * global state.
 */
#include <string.h>

#include "bench_wire.h"
#include "mqtt.h"

/* v5 property identifiers the parser reads or must know the type of. */
#define BW_PROP_SERVER_KEEPALIVE 0x13
#define BW_PROP_RECEIVE_MAXIMUM 0x21
#define BW_PROP_MAXIMUM_QOS 0x24

static size_t
bw_u16(uint8_t *out, uint16_t v)
{
    out[0] = (uint8_t) (v >> 8);
    out[1] = (uint8_t) (v & 0xff);
    return 2;
}

static size_t
bw_str(uint8_t *out, const char *s, size_t n)
{
    bw_u16(out, (uint16_t) n);
    memcpy(out + 2, s, n);
    return 2 + n;
}

/* Writes first byte and remaining length of a packet whose body is already
 * at out + 5; moves the body so it follows the header.  Returns the size of
 * the whole packet. */
static size_t
bw_finish(uint8_t *out, uint8_t first, size_t body_len)
{
    uint8_t hdr[5];
    size_t h;

    hdr[0] = first;
    h = 1 + mqtt_varint_encode(hdr + 1, (uint32_t) body_len);
    memmove(out + h, out + 5, body_len);
    memcpy(out, hdr, h);
    return h + body_len;
}

size_t
bench_wire_connect(uint8_t *out, int version, const char *client_id,
                   uint16_t keepalive)
{
    uint8_t *b = out + 5;
    size_t n = 0;

    n += bw_str(b + n, "MQTT", 4);
    b[n++] = (uint8_t) version;
    b[n++] = 0x02; /* clean session / clean start */
    n += bw_u16(b + n, keepalive);
    if (version == MQTT_V5) {
        b[n++] = 0; /* no properties: session expiry 0, receive max 65535 */
    }
    n += bw_str(b + n, client_id, strlen(client_id));
    return bw_finish(out, MQTT_CONNECT << 4, n);
}

size_t
bench_wire_subscribe(uint8_t *out, int version, uint16_t pid,
                     const char *filter, int qos)
{
    uint8_t *b = out + 5;
    size_t n = 0;

    n += bw_u16(b + n, pid);
    if (version == MQTT_V5) {
        b[n++] = 0;
    }
    n += bw_str(b + n, filter, strlen(filter));
    b[n++] = (uint8_t) qos; /* v5 options: no-local 0, RAP 0, retain 0 */
    return bw_finish(out, (MQTT_SUBSCRIBE << 4) | 0x02, n);
}

size_t
bench_wire_publish_head(uint8_t *out, int version, int qos,
                        const char *topic, size_t topic_len, uint16_t pid,
                        size_t payload_len)
{
    size_t rem = 2 + topic_len + (qos > 0 ? 2 : 0)
                 + (version == MQTT_V5 ? 1 : 0) + payload_len;
    size_t n;

    n = mqtt_write_publish_header(out, (uint8_t) qos, false, false,
                                  (uint32_t) rem);
    n += bw_str(out + n, topic, topic_len);
    if (qos > 0) {
        n += bw_u16(out + n, pid);
    }
    if (version == MQTT_V5) {
        out[n++] = 0;
    }
    return n;
}

size_t
bench_wire_ack(uint8_t *out, uint8_t type, uint16_t pid)
{
    return mqtt_write_ack(out, type, pid);
}

size_t
bench_wire_empty(uint8_t *out, uint8_t type)
{
    out[0] = (uint8_t) (type << 4);
    out[1] = 0;
    return 2;
}

/* ---------------------------------------------------------------- parser */

typedef struct bw_rd {
    const uint8_t *p;
    const uint8_t *end;
} bw_rd_t;

static size_t
bw_left(const bw_rd_t *r)
{
    return (size_t) (r->end - r->p);
}

static int
bw_rd_u8(bw_rd_t *r, uint8_t *v)
{
    if (bw_left(r) < 1) {
        return -1;
    }
    *v = *r->p++;
    return 0;
}

static int
bw_rd_u16(bw_rd_t *r, uint16_t *v)
{
    if (bw_left(r) < 2) {
        return -1;
    }
    *v = (uint16_t) ((r->p[0] << 8) | r->p[1]);
    r->p += 2;
    return 0;
}

static int
bw_rd_varint(bw_rd_t *r, uint32_t *v)
{
    uint32_t x = 0;
    int i;

    for (i = 0; i < 4; i++) {
        uint8_t b;

        if (bw_rd_u8(r, &b) < 0) {
            return -1;
        }
        x |= (uint32_t) (b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int
bw_skip(bw_rd_t *r, size_t n)
{
    if (bw_left(r) < n) {
        return -1;
    }
    r->p += n;
    return 0;
}

/*
 * Walks a v5 property list at r (length prefix included) and picks the
 * CONNACK properties the tool uses.  Returns 0, or -1 when the list is
 * malformed or holds an unknown identifier.
 */
static int
bw_props(bw_rd_t *r, bench_pkt_t *p)
{
    uint32_t len;
    bw_rd_t pr;

    if (bw_rd_varint(r, &len) < 0 || bw_left(r) < len) {
        return -1;
    }
    pr.p = r->p;
    pr.end = r->p + len;
    r->p += len;
    while (bw_left(&pr) > 0) {
        uint32_t id;
        uint16_t v16, n;
        uint8_t v8;
        uint32_t vv;

        if (bw_rd_varint(&pr, &id) < 0) {
            return -1;
        }
        switch (id) {
        case 0x01: case 0x17: case 0x19: case 0x25: case 0x28: case 0x29:
        case 0x2A:
            if (bw_rd_u8(&pr, &v8) < 0) {
                return -1;
            }
            break;
        case BW_PROP_MAXIMUM_QOS:
            if (bw_rd_u8(&pr, &v8) < 0) {
                return -1;
            }
            p->max_qos = v8;
            break;
        case 0x22: case 0x23:
            if (bw_rd_u16(&pr, &v16) < 0) {
                return -1;
            }
            break;
        case BW_PROP_SERVER_KEEPALIVE:
            if (bw_rd_u16(&pr, &v16) < 0) {
                return -1;
            }
            p->server_keepalive = v16;
            break;
        case BW_PROP_RECEIVE_MAXIMUM:
            if (bw_rd_u16(&pr, &v16) < 0 || v16 == 0) {
                return -1;
            }
            p->recv_max = v16;
            break;
        case 0x02: case 0x11: case 0x18: case 0x27:
            if (bw_skip(&pr, 4) < 0) {
                return -1;
            }
            break;
        case 0x0B:
            if (bw_rd_varint(&pr, &vv) < 0) {
                return -1;
            }
            break;
        case 0x03: case 0x08: case 0x09: case 0x12: case 0x15: case 0x16:
        case 0x1A: case 0x1C: case 0x1F:
            if (bw_rd_u16(&pr, &n) < 0 || bw_skip(&pr, n) < 0) {
                return -1;
            }
            break;
        case 0x26:
            if (bw_rd_u16(&pr, &n) < 0 || bw_skip(&pr, n) < 0
                || bw_rd_u16(&pr, &n) < 0 || bw_skip(&pr, n) < 0) {
                return -1;
            }
            break;
        default:
            return -1;
        }
    }
    return 0;
}

#define BW_FAIL(msg)                                                       \
    do {                                                                   \
        *why = (msg);                                                      \
        return -1;                                                         \
    } while (0)

int
bench_wire_parse(int version, uint8_t first, const uint8_t *body,
                 size_t len, bench_pkt_t *p, const char **why)
{
    bw_rd_t r = {body, body + len};
    bool v5 = version == MQTT_V5;

    memset(p, 0, sizeof(*p));
    p->type = first >> 4;
    p->flags = first & 0x0f;
    p->server_keepalive = -1;
    p->max_qos = 2;

    switch (p->type) {
    case MQTT_CONNACK: {
        uint8_t fl;

        if (bw_rd_u8(&r, &fl) < 0 || bw_rd_u8(&r, &p->reason) < 0) {
            BW_FAIL("CONNACK shorter than 2 bytes");
        }
        p->session_present = fl & 1;
        if (v5 && bw_left(&r) > 0 && bw_props(&r, p) < 0) {
            BW_FAIL("CONNACK with malformed properties");
        }
        if (bw_left(&r) > 0 && (!v5 || p->reason < 0x80)) {
            BW_FAIL("CONNACK with trailing bytes");
        }
        return 0;
    }
    case MQTT_SUBACK:
        if (bw_rd_u16(&r, &p->pid) < 0) {
            BW_FAIL("SUBACK without packet id");
        }
        if (v5 && bw_props(&r, p) < 0) {
            BW_FAIL("SUBACK with malformed properties");
        }
        if (bw_rd_u8(&r, &p->reason) < 0) {
            BW_FAIL("SUBACK without return code");
        }
        return 0;
    case MQTT_PUBLISH:
        p->qos = (p->flags >> 1) & 3;
        p->dup = p->flags & 0x08;
        p->retain = p->flags & 0x01;
        if (p->qos == 3) {
            BW_FAIL("PUBLISH with QoS 3");
        }
        if (bw_rd_u16(&r, &p->topic_len) < 0 || bw_left(&r) < p->topic_len) {
            BW_FAIL("PUBLISH topic overruns the packet");
        }
        p->topic = r.p;
        r.p += p->topic_len;
        if (p->qos > 0 && (bw_rd_u16(&r, &p->pid) < 0 || p->pid == 0)) {
            BW_FAIL("PUBLISH without a valid packet id");
        }
        if (v5) {
            uint32_t plen;

            if (bw_rd_varint(&r, &plen) < 0 || bw_skip(&r, plen) < 0) {
                BW_FAIL("PUBLISH with malformed properties");
            }
        }
        p->payload = r.p;
        p->payload_len = bw_left(&r);
        return 0;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        if (p->flags != (p->type == MQTT_PUBREL ? 2 : 0)) {
            BW_FAIL("acknowledgement with bad flags");
        }
        if (bw_rd_u16(&r, &p->pid) < 0 || p->pid == 0) {
            BW_FAIL("acknowledgement without a valid packet id");
        }
        if (v5 && bw_left(&r) > 0) {
            (void) bw_rd_u8(&r, &p->reason);
            /* Properties (a reason string) may follow: not needed. */
        } else if (bw_left(&r) > 0) {
            BW_FAIL("acknowledgement longer than 2 bytes");
        }
        return 0;
    case MQTT_UNSUBACK:
    case MQTT_PINGRESP:
        return 0;
    case MQTT_DISCONNECT:
        if (v5 && bw_left(&r) > 0) {
            (void) bw_rd_u8(&r, &p->reason);
            return 0;
        }
        if (!v5) {
            BW_FAIL("DISCONNECT from the server (MQTT 3.1.1)");
        }
        return 0;
    case MQTT_AUTH:
        BW_FAIL("AUTH (no authentication method was requested)");
    default:
        BW_FAIL("packet type a server never sends");
    }
}

const char *
bench_wire_name(uint8_t type)
{
    static const char *const names[16] = {
        "reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
        "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE",
        "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"};

    return names[type & 0x0f];
}

const char *
bench_wire_connack_text(int version, uint8_t rc)
{
    /* A broker without MQTT 5 answers a v5 CONNECT in 3.1.1 terms. */
    if (version != MQTT_V5 || rc < 0x80) {
        switch (rc) {
        case MQTT_RC_ACCEPTED: return "accepted";
        case MQTT_RC_BAD_VERSION: return "unacceptable protocol version";
        case MQTT_RC_ID_REJECTED: return "identifier rejected";
        case MQTT_RC_UNAVAILABLE: return "server unavailable";
        case MQTT_RC_BAD_AUTH: return "bad user name or password";
        case MQTT_RC_NOT_AUTHORIZED: return "not authorized";
        default: return "unknown return code";
        }
    }
    switch (rc) {
    case 0x00: return "success";
    case 0x80: return "unspecified error";
    case 0x81: return "malformed packet";
    case 0x82: return "protocol error";
    case 0x84: return "unsupported protocol version";
    case 0x85: return "client identifier not valid";
    case 0x86: return "bad user name or password";
    case 0x87: return "not authorized";
    case 0x88: return "server unavailable";
    case 0x89: return "server busy";
    case 0x8A: return "banned";
    case 0x97: return "quota exceeded";
    case 0x9F: return "connection rate exceeded";
    default: return "refused";
    }
}
