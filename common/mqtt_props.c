/*
 * mqtt_props.c -- MQTT 5.0 property blocks: the table of the 27 properties
 * (type, packets they may appear in), a parser that checks every rule a
 * receiver must, a serializer that never writes past its capacity, and the
 * reason-code table.  No allocation, no global state.
 *
 * Error classes follow 2.2.2.2 and 4.13: what cannot be decoded, an
 * identifier not valid for the packet, bad lengths and bad UTF-8 are
 * Malformed Packet (0x81); a property given twice or a value the spec
 * forbids is Protocol Error (0x82); a Topic Alias of 0 is Topic Alias
 * invalid (0x94).
 */
#include <string.h>

#include "mqtt.h"
#include "mqtt_props.h"

/* Context bits: one per packet type, plus the Will Properties. */
#define MQTT_PROP_C(t) ((uint32_t) 1 << (t))
#define C_CONNECT MQTT_PROP_C(MQTT_CONNECT)
#define C_CONNACK MQTT_PROP_C(MQTT_CONNACK)
#define C_PUBLISH MQTT_PROP_C(MQTT_PUBLISH)
#define C_ACKS                                                                \
    (MQTT_PROP_C(MQTT_PUBACK) | MQTT_PROP_C(MQTT_PUBREC)                      \
     | MQTT_PROP_C(MQTT_PUBREL) | MQTT_PROP_C(MQTT_PUBCOMP))
#define C_SUBSCRIBE MQTT_PROP_C(MQTT_SUBSCRIBE)
#define C_SUBACK MQTT_PROP_C(MQTT_SUBACK)
#define C_UNSUBSCRIBE MQTT_PROP_C(MQTT_UNSUBSCRIBE)
#define C_UNSUBACK MQTT_PROP_C(MQTT_UNSUBACK)
#define C_DISCONNECT MQTT_PROP_C(MQTT_DISCONNECT)
#define C_AUTH MQTT_PROP_C(MQTT_AUTH)
#define C_WILL MQTT_PROP_C(MQTT_PROP_CTX_WILL)

typedef struct mqtt_prop_def {
    const char *name;
    uint8_t type;
    uint32_t ctx; /* contexts it may appear in */
} mqtt_prop_def_t;

/* MQTT 5.0 section 2.2.2.2, one row per identifier. */
static const mqtt_prop_def_t mqtt_prop_defs[MQTT_PROP_ID_MAX + 1] = {
    [MQTT_PROP_PAYLOAD_FORMAT] = { "Payload Format Indicator",
                                   MQTT_PROP_T_BYTE, C_PUBLISH | C_WILL },
    [MQTT_PROP_MESSAGE_EXPIRY] = { "Message Expiry Interval",
                                   MQTT_PROP_T_U32, C_PUBLISH | C_WILL },
    [MQTT_PROP_CONTENT_TYPE] = { "Content Type", MQTT_PROP_T_UTF8,
                                 C_PUBLISH | C_WILL },
    [MQTT_PROP_RESPONSE_TOPIC] = { "Response Topic", MQTT_PROP_T_UTF8,
                                   C_PUBLISH | C_WILL },
    [MQTT_PROP_CORRELATION_DATA] = { "Correlation Data", MQTT_PROP_T_BINARY,
                                     C_PUBLISH | C_WILL },
    [MQTT_PROP_SUB_ID] = { "Subscription Identifier", MQTT_PROP_T_VARINT,
                           C_PUBLISH | C_SUBSCRIBE },
    [MQTT_PROP_SESSION_EXPIRY] = { "Session Expiry Interval",
                                   MQTT_PROP_T_U32,
                                   C_CONNECT | C_CONNACK | C_DISCONNECT },
    [MQTT_PROP_ASSIGNED_CLIENT_ID] = { "Assigned Client Identifier",
                                       MQTT_PROP_T_UTF8, C_CONNACK },
    [MQTT_PROP_SERVER_KEEP_ALIVE] = { "Server Keep Alive", MQTT_PROP_T_U16,
                                      C_CONNACK },
    [MQTT_PROP_AUTH_METHOD] = { "Authentication Method", MQTT_PROP_T_UTF8,
                                C_CONNECT | C_CONNACK | C_AUTH },
    [MQTT_PROP_AUTH_DATA] = { "Authentication Data", MQTT_PROP_T_BINARY,
                              C_CONNECT | C_CONNACK | C_AUTH },
    [MQTT_PROP_REQUEST_PROBLEM_INFO] = { "Request Problem Information",
                                         MQTT_PROP_T_BYTE, C_CONNECT },
    [MQTT_PROP_WILL_DELAY] = { "Will Delay Interval", MQTT_PROP_T_U32,
                               C_WILL },
    [MQTT_PROP_REQUEST_RESPONSE_INFO] = { "Request Response Information",
                                          MQTT_PROP_T_BYTE, C_CONNECT },
    [MQTT_PROP_RESPONSE_INFO] = { "Response Information", MQTT_PROP_T_UTF8,
                                  C_CONNACK },
    [MQTT_PROP_SERVER_REFERENCE] = { "Server Reference", MQTT_PROP_T_UTF8,
                                     C_CONNACK | C_DISCONNECT },
    [MQTT_PROP_REASON_STRING] = { "Reason String", MQTT_PROP_T_UTF8,
                                  C_CONNACK | C_ACKS | C_SUBACK | C_UNSUBACK
                                      | C_DISCONNECT | C_AUTH },
    [MQTT_PROP_RECEIVE_MAX] = { "Receive Maximum", MQTT_PROP_T_U16,
                                C_CONNECT | C_CONNACK },
    [MQTT_PROP_TOPIC_ALIAS_MAX] = { "Topic Alias Maximum", MQTT_PROP_T_U16,
                                    C_CONNECT | C_CONNACK },
    [MQTT_PROP_TOPIC_ALIAS] = { "Topic Alias", MQTT_PROP_T_U16, C_PUBLISH },
    [MQTT_PROP_MAX_QOS] = { "Maximum QoS", MQTT_PROP_T_BYTE, C_CONNACK },
    [MQTT_PROP_RETAIN_AVAILABLE] = { "Retain Available", MQTT_PROP_T_BYTE,
                                     C_CONNACK },
    [MQTT_PROP_USER] = { "User Property", MQTT_PROP_T_PAIR,
                         C_CONNECT | C_CONNACK | C_PUBLISH | C_WILL | C_ACKS
                             | C_SUBSCRIBE | C_SUBACK | C_UNSUBSCRIBE
                             | C_UNSUBACK | C_DISCONNECT | C_AUTH },
    [MQTT_PROP_MAX_PACKET_SIZE] = { "Maximum Packet Size", MQTT_PROP_T_U32,
                                    C_CONNECT | C_CONNACK },
    [MQTT_PROP_WILDCARD_SUB_AVAILABLE] = { "Wildcard Subscription Available",
                                           MQTT_PROP_T_BYTE, C_CONNACK },
    [MQTT_PROP_SUB_ID_AVAILABLE] = { "Subscription Identifier Available",
                                     MQTT_PROP_T_BYTE, C_CONNACK },
    [MQTT_PROP_SHARED_SUB_AVAILABLE] = { "Shared Subscription Available",
                                         MQTT_PROP_T_BYTE, C_CONNACK },
};

const char *
mqtt_prop_name(uint8_t id)
{
    if (id > MQTT_PROP_ID_MAX || mqtt_prop_defs[id].name == NULL) {
        return "unknown";
    }
    return mqtt_prop_defs[id].name;
}

int
mqtt_prop_type(uint8_t id)
{
    if (id > MQTT_PROP_ID_MAX) {
        return 0;
    }
    return mqtt_prop_defs[id].type;
}

bool
mqtt_prop_allowed(uint8_t ctx, uint8_t id)
{
    ctx &= (uint8_t) ~MQTT_PROP_FROM_CLIENT;
    if (mqtt_prop_type(id) == 0 || ctx == 0 || ctx > MQTT_PROP_CTX_WILL) {
        return false;
    }
    return (mqtt_prop_defs[id].ctx & MQTT_PROP_C(ctx)) != 0;
}

bool
mqtt_prop_repeatable(uint8_t ctx, uint8_t id)
{
    ctx &= (uint8_t) ~MQTT_PROP_FROM_CLIENT;
    if (!mqtt_prop_allowed(ctx, id)) {
        return false;
    }
    return id == MQTT_PROP_USER
           || (id == MQTT_PROP_SUB_ID && ctx == MQTT_PUBLISH);
}

/*
 * Reads one property: its identifier, then its value.  When ctx is not 0
 * the identifier must be allowed there.  Returns MQTT_OK or
 * MQTT_E_MALFORMED with *why set; p->id holds the identifier once known.
 */
static int
mqtt_prop_rd(mqtt_rd_t *rd, uint8_t ctx, mqtt_prop_t *p,
             const char **why)
{
    const uint8_t *start = rd->p;
    uint32_t v = 0;
    bool ok;
    int rc;

    memset(p, 0, sizeof(*p));

    /*
     * The identifier is a variable byte integer, but every MQTT 5.0
     * identifier takes one byte: a byte with the continuation bit (or a
     * non-minimal form of a known one) is an unknown identifier.
     */
    if (mqtt_rd_left(rd) < 1 || mqtt_prop_type(rd->p[0]) == 0) {
        mqtt_set_why(why, "unknown property identifier");
        return MQTT_E_MALFORMED;
    }
    p->id = *rd->p++;
    if (ctx != 0 && !mqtt_prop_allowed(ctx, p->id)) {
        mqtt_set_why(why, "property not allowed in this packet");
        return MQTT_E_MALFORMED;
    }

    switch (mqtt_prop_type(p->id)) {
    case MQTT_PROP_T_BYTE:
        ok = mqtt_rd_be(rd, 1, &v);
        break;
    case MQTT_PROP_T_U16:
        ok = mqtt_rd_be(rd, 2, &v);
        break;
    case MQTT_PROP_T_U32:
        ok = mqtt_rd_be(rd, 4, &v);
        break;
    case MQTT_PROP_T_VARINT:
        rc = mqtt_rd_varint(rd, &v);
        if (rc == -2) {
            mqtt_set_why(why, "property varint longer than 4 bytes");
            return MQTT_E_MALFORMED;
        }
        ok = rc == 0;
        break;
    case MQTT_PROP_T_PAIR:
        ok = mqtt_rd_str(rd, &p->str) && mqtt_rd_str(rd, &p->val);
        break;
    default: /* UTF-8 string, binary data */
        ok = mqtt_rd_str(rd, &p->str);
        break;
    }
    if (!ok) {
        mqtt_set_why(why, "property value truncated");
        return MQTT_E_MALFORMED;
    }

    p->num = v;
    p->raw = start;
    p->raw_len = (size_t) (rd->p - start);
    return MQTT_OK;
}

/*
 * The value rules shared by parser and serializer: UTF-8 of strings and
 * the ranges the spec sets.  Returns MQTT_OK, or MQTT_E_MALFORMED /
 * MQTT_E_PROTOCOL with *why and *reason set.
 */
static int
mqtt_prop_check(const mqtt_prop_t *p, uint8_t *reason, const char **why)
{
    int type = mqtt_prop_type(p->id);

    *reason = MQTT5_RC_PROTOCOL_ERROR;

    if ((type == MQTT_PROP_T_UTF8 || type == MQTT_PROP_T_PAIR)
        && !mqtt_utf8_valid(p->str.p, p->str.len))
    {
        *reason = MQTT5_RC_MALFORMED;
        mqtt_set_why(why, "property string not valid UTF-8");
        return MQTT_E_MALFORMED;
    }
    if (type == MQTT_PROP_T_PAIR && !mqtt_utf8_valid(p->val.p, p->val.len)) {
        *reason = MQTT5_RC_MALFORMED;
        mqtt_set_why(why, "User Property value not valid UTF-8");
        return MQTT_E_MALFORMED;
    }

    switch (p->id) {
    case MQTT_PROP_PAYLOAD_FORMAT:
    case MQTT_PROP_REQUEST_PROBLEM_INFO:
    case MQTT_PROP_REQUEST_RESPONSE_INFO:
    case MQTT_PROP_MAX_QOS:
    case MQTT_PROP_RETAIN_AVAILABLE:
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
    case MQTT_PROP_SUB_ID_AVAILABLE:
    case MQTT_PROP_SHARED_SUB_AVAILABLE:
        if (p->num > 1) {
            mqtt_set_why(why, "property value not 0 or 1");
            return MQTT_E_PROTOCOL;
        }
        break;
    case MQTT_PROP_RECEIVE_MAX:
        if (p->num == 0) {
            mqtt_set_why(why, "Receive Maximum 0");
            return MQTT_E_PROTOCOL;
        }
        break;
    case MQTT_PROP_MAX_PACKET_SIZE:
        if (p->num == 0) {
            mqtt_set_why(why, "Maximum Packet Size 0");
            return MQTT_E_PROTOCOL;
        }
        break;
    case MQTT_PROP_TOPIC_ALIAS:
        if (p->num == 0) {
            *reason = MQTT5_RC_TOPIC_ALIAS_INVALID;
            mqtt_set_why(why, "Topic Alias 0");
            return MQTT_E_PROTOCOL;
        }
        break;
    case MQTT_PROP_SUB_ID:
        if (p->num == 0) {
            mqtt_set_why(why, "Subscription Identifier 0");
            return MQTT_E_PROTOCOL;
        }
        break;
    case MQTT_PROP_RESPONSE_TOPIC:
        /* A topic name: 1+ characters, no wildcard (3.3.2-14, 4.7.3-1). */
        if (p->str.len == 0) {
            mqtt_set_why(why, "Response Topic empty");
            return MQTT_E_PROTOCOL;
        }
        if (memchr(p->str.p, '+', p->str.len) != NULL
            || memchr(p->str.p, '#', p->str.len) != NULL)
        {
            mqtt_set_why(why, "Response Topic has a wildcard");
            return MQTT_E_PROTOCOL;
        }
        break;
    default:
        break;
    }
    return MQTT_OK;
}

/* Spec defaults for what is absent (see mqtt_props_t). */
static void
mqtt_prop_defaults(mqtt_props_t *pr)
{
    memset(pr, 0, sizeof(*pr));
    pr->request_problem_info = 1;
    pr->max_qos = 2;
    pr->retain_available = 1;
    pr->wildcard_sub_available = 1;
    pr->sub_id_available = 1;
    pr->shared_sub_available = 1;
    pr->receive_max = 65535;
}

/* Stores a checked property in *pr. */
static void
mqtt_prop_store(mqtt_props_t *pr, const mqtt_prop_t *p)
{
    pr->present |= MQTT_PROP_BIT(p->id);

    switch (p->id) {
    case MQTT_PROP_PAYLOAD_FORMAT:
        pr->payload_format = (uint8_t) p->num;
        break;
    case MQTT_PROP_MESSAGE_EXPIRY:
        pr->message_expiry = p->num;
        break;
    case MQTT_PROP_CONTENT_TYPE:
        pr->content_type = p->str;
        break;
    case MQTT_PROP_RESPONSE_TOPIC:
        pr->response_topic = p->str;
        break;
    case MQTT_PROP_CORRELATION_DATA:
        pr->correlation_data = p->str;
        break;
    case MQTT_PROP_SUB_ID:
        if (pr->n_sub_id++ == 0) {
            pr->sub_id = p->num;
        }
        break;
    case MQTT_PROP_SESSION_EXPIRY:
        pr->session_expiry = p->num;
        break;
    case MQTT_PROP_ASSIGNED_CLIENT_ID:
        pr->assigned_client_id = p->str;
        break;
    case MQTT_PROP_SERVER_KEEP_ALIVE:
        pr->server_keep_alive = (uint16_t) p->num;
        break;
    case MQTT_PROP_AUTH_METHOD:
        pr->auth_method = p->str;
        break;
    case MQTT_PROP_AUTH_DATA:
        pr->auth_data = p->str;
        break;
    case MQTT_PROP_REQUEST_PROBLEM_INFO:
        pr->request_problem_info = (uint8_t) p->num;
        break;
    case MQTT_PROP_WILL_DELAY:
        pr->will_delay = p->num;
        break;
    case MQTT_PROP_REQUEST_RESPONSE_INFO:
        pr->request_response_info = (uint8_t) p->num;
        break;
    case MQTT_PROP_RESPONSE_INFO:
        pr->response_info = p->str;
        break;
    case MQTT_PROP_SERVER_REFERENCE:
        pr->server_reference = p->str;
        break;
    case MQTT_PROP_REASON_STRING:
        pr->reason_string = p->str;
        break;
    case MQTT_PROP_RECEIVE_MAX:
        pr->receive_max = (uint16_t) p->num;
        break;
    case MQTT_PROP_TOPIC_ALIAS_MAX:
        pr->topic_alias_max = (uint16_t) p->num;
        break;
    case MQTT_PROP_TOPIC_ALIAS:
        pr->topic_alias = (uint16_t) p->num;
        break;
    case MQTT_PROP_MAX_QOS:
        pr->max_qos = (uint8_t) p->num;
        break;
    case MQTT_PROP_RETAIN_AVAILABLE:
        pr->retain_available = (uint8_t) p->num;
        break;
    case MQTT_PROP_USER:
        pr->n_user++;
        break;
    case MQTT_PROP_MAX_PACKET_SIZE:
        pr->max_packet_size = p->num;
        break;
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
        pr->wildcard_sub_available = (uint8_t) p->num;
        break;
    case MQTT_PROP_SUB_ID_AVAILABLE:
        pr->sub_id_available = (uint8_t) p->num;
        break;
    case MQTT_PROP_SHARED_SUB_AVAILABLE:
        pr->shared_sub_available = (uint8_t) p->num;
        break;
    }
}

int
mqtt_prop_parse(uint8_t ctx, const uint8_t *buf, size_t len,
                mqtt_props_t *pr, uint8_t *reason, const char **why)
{
    bool from_client = (ctx & MQTT_PROP_FROM_CLIENT) != 0;
    mqtt_rd_t rd = { buf, buf + len };
    uint8_t c = ctx & (uint8_t) ~MQTT_PROP_FROM_CLIENT;
    uint8_t rsn = MQTT5_RC_MALFORMED;
    uint32_t plen;
    mqtt_prop_t p;
    int rc;

    mqtt_prop_defaults(pr);

    if (c == 0 || c > MQTT_PROP_CTX_WILL || c == MQTT_PINGREQ
        || c == MQTT_PINGRESP)
    {
        mqtt_set_why(why, "packet without properties");
        rc = MQTT_E_PROTOCOL;
        rsn = MQTT5_RC_PROTOCOL_ERROR;
        goto fail;
    }

    rc = mqtt_rd_varint(&rd, &plen);
    if (rc != 0) {
        mqtt_set_why(why, len == 0 ? "Property Length missing"
                               : rc == -1 ? "Property Length truncated"
                                          : "Property Length longer than "
                                            "4 bytes");
        rc = MQTT_E_MALFORMED;
        goto fail;
    }
    if (plen > mqtt_rd_left(&rd)) {
        mqtt_set_why(why, "Property Length past the end of the packet");
        rc = MQTT_E_MALFORMED;
        goto fail;
    }

    pr->raw = rd.p;
    pr->raw_len = plen;
    pr->total = (uint32_t) (rd.p - buf) + plen;
    rd.end = rd.p + plen;

    while (mqtt_rd_left(&rd) > 0) {
        rc = mqtt_prop_rd(&rd, c, &p, why);
        pr->err_id = p.id;
        if (rc != MQTT_OK) {
            rsn = MQTT5_RC_MALFORMED;
            goto fail;
        }
        if ((pr->present & MQTT_PROP_BIT(p.id)) != 0
            && !mqtt_prop_repeatable(c, p.id))
        {
            mqtt_set_why(why, "property included more than once");
            rc = MQTT_E_PROTOCOL;
            rsn = MQTT5_RC_PROTOCOL_ERROR;
            goto fail;
        }
        rc = mqtt_prop_check(&p, &rsn, why);
        if (rc != MQTT_OK) {
            goto fail;
        }
        if (p.id == MQTT_PROP_SUB_ID && c == MQTT_PUBLISH && from_client) {
            mqtt_set_why(why, "Subscription Identifier in a PUBLISH "
                                   "from a client");
            rc = MQTT_E_PROTOCOL;
            rsn = MQTT5_RC_PROTOCOL_ERROR;
            goto fail;
        }
        mqtt_prop_store(pr, &p);
    }

    pr->err_id = 0;
    if ((pr->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA)) != 0
        && (pr->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)) == 0)
    {
        pr->err_id = MQTT_PROP_AUTH_DATA;
        mqtt_set_why(why, "Authentication Data without "
                               "Authentication Method");
        rc = MQTT_E_PROTOCOL;
        rsn = MQTT5_RC_PROTOCOL_ERROR;
        goto fail;
    }

    if (reason != NULL) {
        *reason = MQTT5_RC_SUCCESS;
    }
    return MQTT_OK;

fail:
    if (reason != NULL) {
        *reason = rsn;
    }
    return rc;
}

void
mqtt_prop_iter_init(mqtt_prop_iter_t *it, const mqtt_props_t *pr)
{
    /* A failed parse leaves raw NULL: the walk is then empty. */
    it->p = pr->raw;
    it->end = pr->raw != NULL ? pr->raw + pr->raw_len : NULL;
}

bool
mqtt_prop_next(mqtt_prop_iter_t *it, mqtt_prop_t *p)
{
    mqtt_rd_t rd = { it->p, it->end };

    /* The block was validated; the bounds checks only guard misuse. */
    if (it->p == NULL || mqtt_rd_left(&rd) == 0
        || mqtt_prop_rd(&rd, 0, p, NULL) != MQTT_OK)
    {
        return false;
    }
    it->p = rd.p;
    return true;
}

bool
mqtt_prop_next_user(mqtt_prop_iter_t *it, mqtt_str_t *name,
                    mqtt_str_t *value)
{
    mqtt_prop_t p;

    while (mqtt_prop_next(it, &p)) {
        if (p.id == MQTT_PROP_USER) {
            *name = p.str;
            *value = p.val;
            return true;
        }
    }
    return false;
}

bool
mqtt_prop_next_sub_id(mqtt_prop_iter_t *it, uint32_t *id)
{
    mqtt_prop_t p;

    while (mqtt_prop_next(it, &p)) {
        if (p.id == MQTT_PROP_SUB_ID) {
            *id = p.num;
            return true;
        }
    }
    return false;
}

/* ---- serializer ---- */

mqtt_prop_t
mqtt_prop_num(uint8_t id, uint32_t v)
{
    mqtt_prop_t p = { .id = id, .num = v };

    return p;
}

mqtt_prop_t
mqtt_prop_str(uint8_t id, const void *s, uint16_t len)
{
    mqtt_prop_t p = { .id = id, .str = { s, len } };

    return p;
}

mqtt_prop_t
mqtt_prop_pair(const void *name, uint16_t name_len, const void *value,
               uint16_t value_len)
{
    mqtt_prop_t p = { .id = MQTT_PROP_USER,
                      .str = { name, name_len },
                      .val = { value, value_len } };

    return p;
}

mqtt_prop_t
mqtt_prop_raw(const uint8_t *s, size_t len)
{
    mqtt_prop_t p = { .id = MQTT_PROP_RAW, .raw = s, .raw_len = len };

    return p;
}

/*
 * Checks one serializer entry against ctx and the entries before it (ids
 * in *seen) and gives its encoded size.  Returns MQTT_OK or
 * MQTT_PROP_E_INVALID with *why set.
 */
static int
mqtt_prop_entry_size(uint8_t ctx, const mqtt_prop_t *p, uint64_t *seen,
                     size_t *size, const char **why)
{
    uint8_t rsn;
    int type;

    if (p->id == MQTT_PROP_RAW) {
        if (p->raw == NULL && p->raw_len > 0) {
            mqtt_set_why(why, "raw property span without bytes");
            return MQTT_PROP_E_INVALID;
        }
        *size = p->raw_len;
        return MQTT_OK;
    }

    type = mqtt_prop_type(p->id);
    if (type == 0) {
        mqtt_set_why(why, "unknown property identifier");
        return MQTT_PROP_E_INVALID;
    }
    if (!mqtt_prop_allowed(ctx, p->id)) {
        mqtt_set_why(why, "property not allowed in this packet");
        return MQTT_PROP_E_INVALID;
    }
    if ((*seen & MQTT_PROP_BIT(p->id)) != 0
        && !mqtt_prop_repeatable(ctx, p->id))
    {
        mqtt_set_why(why, "property included more than once");
        return MQTT_PROP_E_INVALID;
    }
    *seen |= MQTT_PROP_BIT(p->id);

    if ((type == MQTT_PROP_T_BYTE && p->num > 0xff)
        || (type == MQTT_PROP_T_U16 && p->num > 0xffff)
        || (type == MQTT_PROP_T_VARINT && p->num > MQTT_PROP_SUB_ID_MAX))
    {
        mqtt_set_why(why, "property value too large for its type");
        return MQTT_PROP_E_INVALID;
    }
    if ((type == MQTT_PROP_T_UTF8 || type == MQTT_PROP_T_BINARY
         || type == MQTT_PROP_T_PAIR)
        && ((p->str.p == NULL && p->str.len > 0)
            || (p->val.p == NULL && p->val.len > 0)))
    {
        mqtt_set_why(why, "property string without bytes");
        return MQTT_PROP_E_INVALID;
    }
    if (mqtt_prop_check(p, &rsn, why) != MQTT_OK) {
        return MQTT_PROP_E_INVALID;
    }

    /* Identifiers are all below 128: one byte. */
    switch (type) {
    case MQTT_PROP_T_BYTE:
        *size = 2;
        break;
    case MQTT_PROP_T_U16:
        *size = 3;
        break;
    case MQTT_PROP_T_U32:
        *size = 5;
        break;
    case MQTT_PROP_T_VARINT:
        *size = 1 + mqtt_varint_size(p->num);
        break;
    case MQTT_PROP_T_PAIR:
        *size = 1 + 2 + (size_t) p->str.len + 2 + p->val.len;
        break;
    default:
        *size = 1 + 2 + (size_t) p->str.len;
        break;
    }
    return MQTT_OK;
}

/* Property Length of the block: sum of the entries. */
static int
mqtt_prop_body_size(uint8_t ctx, const mqtt_prop_t *props, size_t n,
                    size_t *body, const char **why)
{
    uint64_t seen = 0;
    size_t i, sum = 0, one;
    int rc;

    ctx &= (uint8_t) ~MQTT_PROP_FROM_CLIENT;
    for (i = 0; i < n; i++) {
        rc = mqtt_prop_entry_size(ctx, &props[i], &seen, &one, why);
        if (rc != MQTT_OK) {
            return rc;
        }
        if (one > MQTT_MAX_REMAINING - sum) {
            mqtt_set_why(why, "property block too large");
            return MQTT_PROP_E_INVALID;
        }
        sum += one;
    }
    *body = sum;
    return MQTT_OK;
}

int
mqtt_prop_size(uint8_t ctx, const mqtt_prop_t *props, size_t n,
               size_t *size, const char **why)
{
    size_t body;
    int rc;

    rc = mqtt_prop_body_size(ctx, props, n, &body, why);
    if (rc != MQTT_OK) {
        return rc;
    }
    *size = mqtt_varint_size((uint32_t) body) + body;
    return MQTT_OK;
}

static uint8_t *
mqtt_prop_put_be(uint8_t *o, uint32_t v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        o[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
    }
    return o + n;
}

static uint8_t *
mqtt_prop_put_str(uint8_t *o, const mqtt_str_t *s)
{
    o = mqtt_prop_put_be(o, s->len, 2);
    if (s->len > 0) {
        memcpy(o, s->p, s->len);
    }
    return o + s->len;
}

int
mqtt_prop_write(uint8_t ctx, const mqtt_prop_t *props, size_t n,
                uint8_t *out, size_t cap, size_t *written, const char **why)
{
    const mqtt_prop_t *p;
    size_t body, i;
    uint8_t *o = out;
    int rc;

    rc = mqtt_prop_body_size(ctx, props, n, &body, why);
    if (rc != MQTT_OK) {
        return rc;
    }
    if (mqtt_varint_size((uint32_t) body) + body > cap) {
        mqtt_set_why(why, "property block larger than the buffer");
        return MQTT_PROP_E_NOSPACE;
    }

    /* Everything was checked and fits: no bounds test below. */
    o += mqtt_varint_encode(o, (uint32_t) body);
    for (i = 0; i < n; i++) {
        p = &props[i];
        if (p->id == MQTT_PROP_RAW) {
            if (p->raw_len > 0) {
                memcpy(o, p->raw, p->raw_len);
            }
            o += p->raw_len;
            continue;
        }
        *o++ = p->id;
        switch (mqtt_prop_type(p->id)) {
        case MQTT_PROP_T_BYTE:
            o = mqtt_prop_put_be(o, p->num, 1);
            break;
        case MQTT_PROP_T_U16:
            o = mqtt_prop_put_be(o, p->num, 2);
            break;
        case MQTT_PROP_T_U32:
            o = mqtt_prop_put_be(o, p->num, 4);
            break;
        case MQTT_PROP_T_VARINT:
            o += mqtt_varint_encode(o, p->num);
            break;
        case MQTT_PROP_T_PAIR:
            o = mqtt_prop_put_str(o, &p->str);
            o = mqtt_prop_put_str(o, &p->val);
            break;
        default:
            o = mqtt_prop_put_str(o, &p->str);
            break;
        }
    }
    *written = (size_t) (o - out);
    return MQTT_OK;
}

size_t
mqtt_prop_filter_size(const mqtt_props_t *pr, uint64_t drop)
{
    mqtt_prop_iter_t it;
    mqtt_prop_t p;
    size_t n = 0;

    mqtt_prop_iter_init(&it, pr);
    while (mqtt_prop_next(&it, &p)) {
        if ((drop & MQTT_PROP_BIT(p.id)) == 0) {
            n += p.raw_len;
        }
    }
    return n;
}

int
mqtt_prop_filter(const mqtt_props_t *pr, uint64_t drop, uint8_t *out,
                 size_t cap, size_t *written)
{
    mqtt_prop_iter_t it;
    mqtt_prop_t p;
    size_t n = 0;

    if (mqtt_prop_filter_size(pr, drop) > cap) {
        return MQTT_PROP_E_NOSPACE;
    }
    mqtt_prop_iter_init(&it, pr);
    while (mqtt_prop_next(&it, &p)) {
        if ((drop & MQTT_PROP_BIT(p.id)) == 0) {
            memcpy(out + n, p.raw, p.raw_len);
            n += p.raw_len;
        }
    }
    *written = n;
    return MQTT_OK;
}

/* ---- reason codes ---- */

#define R_CONNACK MQTT_PROP_C(MQTT_CONNACK)
#define R_PUBACK MQTT_PROP_C(MQTT_PUBACK)
#define R_PUBREC MQTT_PROP_C(MQTT_PUBREC)
#define R_PUBREL MQTT_PROP_C(MQTT_PUBREL)
#define R_PUBCOMP MQTT_PROP_C(MQTT_PUBCOMP)
#define R_SUBACK MQTT_PROP_C(MQTT_SUBACK)
#define R_UNSUBACK MQTT_PROP_C(MQTT_UNSUBACK)
#define R_DISCONNECT MQTT_PROP_C(MQTT_DISCONNECT)
#define R_AUTH MQTT_PROP_C(MQTT_AUTH)
#define R_PUB (R_PUBACK | R_PUBREC)
/* The set of packets most error codes share. */
#define R_ERR (R_CONNACK | R_PUB | R_SUBACK | R_UNSUBACK | R_DISCONNECT)

typedef struct mqtt5_reason {
    const char *name;
    uint32_t packets;
} mqtt5_reason_t;

/* MQTT 5.0 section 2.4, one row per code. */
static const mqtt5_reason_t mqtt5_reasons[256] = {
    [0x00] = { "Success",
               R_CONNACK | R_PUB | R_PUBREL | R_PUBCOMP | R_SUBACK
                   | R_UNSUBACK | R_DISCONNECT | R_AUTH },
    [0x01] = { "Granted QoS 1", R_SUBACK },
    [0x02] = { "Granted QoS 2", R_SUBACK },
    [0x04] = { "Disconnect with Will Message", R_DISCONNECT },
    [0x10] = { "No matching subscribers", R_PUB },
    [0x11] = { "No subscription existed", R_UNSUBACK },
    [0x18] = { "Continue authentication", R_AUTH },
    [0x19] = { "Re-authenticate", R_AUTH },
    [0x80] = { "Unspecified error", R_ERR },
    [0x81] = { "Malformed Packet", R_CONNACK | R_DISCONNECT },
    [0x82] = { "Protocol Error", R_CONNACK | R_DISCONNECT },
    [0x83] = { "Implementation specific error", R_ERR },
    [0x84] = { "Unsupported Protocol Version", R_CONNACK },
    [0x85] = { "Client Identifier not valid", R_CONNACK },
    [0x86] = { "Bad User Name or Password", R_CONNACK },
    [0x87] = { "Not authorized", R_ERR },
    [0x88] = { "Server unavailable", R_CONNACK },
    [0x89] = { "Server busy", R_CONNACK | R_DISCONNECT },
    [0x8a] = { "Banned", R_CONNACK },
    [0x8b] = { "Server shutting down", R_DISCONNECT },
    [0x8c] = { "Bad authentication method", R_CONNACK | R_DISCONNECT },
    [0x8d] = { "Keep Alive timeout", R_DISCONNECT },
    [0x8e] = { "Session taken over", R_DISCONNECT },
    [0x8f] = { "Topic Filter invalid", R_SUBACK | R_UNSUBACK | R_DISCONNECT },
    [0x90] = { "Topic Name invalid", R_CONNACK | R_PUB | R_DISCONNECT },
    [0x91] = { "Packet Identifier in use", R_PUB | R_SUBACK | R_UNSUBACK },
    [0x92] = { "Packet Identifier not found", R_PUBREL | R_PUBCOMP },
    [0x93] = { "Receive Maximum exceeded", R_DISCONNECT },
    [0x94] = { "Topic Alias invalid", R_DISCONNECT },
    [0x95] = { "Packet too large", R_CONNACK | R_DISCONNECT },
    [0x96] = { "Message rate too high", R_DISCONNECT },
    [0x97] = { "Quota exceeded",
               R_CONNACK | R_PUB | R_SUBACK | R_DISCONNECT },
    [0x98] = { "Administrative action", R_DISCONNECT },
    [0x99] = { "Payload format invalid", R_CONNACK | R_PUB | R_DISCONNECT },
    [0x9a] = { "Retain not supported", R_CONNACK | R_DISCONNECT },
    [0x9b] = { "QoS not supported", R_CONNACK | R_DISCONNECT },
    [0x9c] = { "Use another server", R_CONNACK | R_DISCONNECT },
    [0x9d] = { "Server moved", R_CONNACK | R_DISCONNECT },
    [0x9e] = { "Shared Subscriptions not supported",
               R_SUBACK | R_DISCONNECT },
    [0x9f] = { "Connection rate exceeded", R_CONNACK | R_DISCONNECT },
    [0xa0] = { "Maximum connect time", R_DISCONNECT },
    [0xa1] = { "Subscription Identifiers not supported",
               R_SUBACK | R_DISCONNECT },
    [0xa2] = { "Wildcard Subscriptions not supported",
               R_SUBACK | R_DISCONNECT },
};

const char *
mqtt5_reason_str(uint8_t rc)
{
    if (mqtt5_reasons[rc].name == NULL) {
        return "unknown reason code";
    }
    return mqtt5_reasons[rc].name;
}

bool
mqtt5_reason_allowed(uint8_t type, uint8_t rc)
{
    if (type > MQTT_AUTH) {
        return false;
    }
    return (mqtt5_reasons[rc].packets & MQTT_PROP_C(type)) != 0;
}
