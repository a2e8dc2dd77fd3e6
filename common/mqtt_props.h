/*
 * mqtt_props.h -- MQTT 5.0 properties and reason codes: a parser that
 * validates a property block as a receiver must, a serializer for the
 * blocks a server sends, and the reason-code names.  Pure functions, no
 * allocation: parsed strings point into the caller's buffer.
 */
#ifndef RINGMQ_MQTT_PROPS_H
#define RINGMQ_MQTT_PROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt_base.h"

/* Property identifiers (MQTT 5.0 section 2.2.2.2). */
enum {
    MQTT_PROP_PAYLOAD_FORMAT = 0x01,
    MQTT_PROP_MESSAGE_EXPIRY = 0x02,
    MQTT_PROP_CONTENT_TYPE = 0x03,
    MQTT_PROP_RESPONSE_TOPIC = 0x08,
    MQTT_PROP_CORRELATION_DATA = 0x09,
    MQTT_PROP_SUB_ID = 0x0b,
    MQTT_PROP_SESSION_EXPIRY = 0x11,
    MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
    MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
    MQTT_PROP_AUTH_METHOD = 0x15,
    MQTT_PROP_AUTH_DATA = 0x16,
    MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
    MQTT_PROP_WILL_DELAY = 0x18,
    MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
    MQTT_PROP_RESPONSE_INFO = 0x1a,
    MQTT_PROP_SERVER_REFERENCE = 0x1c,
    MQTT_PROP_REASON_STRING = 0x1f,
    MQTT_PROP_RECEIVE_MAX = 0x21,
    MQTT_PROP_TOPIC_ALIAS_MAX = 0x22,
    MQTT_PROP_TOPIC_ALIAS = 0x23,
    MQTT_PROP_MAX_QOS = 0x24,
    MQTT_PROP_RETAIN_AVAILABLE = 0x25,
    MQTT_PROP_USER = 0x26,
    MQTT_PROP_MAX_PACKET_SIZE = 0x27,
    MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
    MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
    MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2a
};

#define MQTT_PROP_COUNT 27   /* identifiers defined by MQTT 5.0 */
#define MQTT_PROP_ID_MAX 0x2a
#define MQTT_PROP_BIT(id) ((uint64_t) 1 << (id))

/* Largest Subscription Identifier (the variable byte integer's limit). */
#define MQTT_PROP_SUB_ID_MAX 268435455u

/* Value types (2.2.2.2; data representation in 1.5). */
enum {
    MQTT_PROP_T_BYTE = 1,
    MQTT_PROP_T_U16,    /* Two Byte Integer */
    MQTT_PROP_T_U32,    /* Four Byte Integer */
    MQTT_PROP_T_VARINT, /* Variable Byte Integer */
    MQTT_PROP_T_UTF8,   /* UTF-8 Encoded String */
    MQTT_PROP_T_BINARY, /* Binary Data */
    MQTT_PROP_T_PAIR    /* UTF-8 String Pair */
};

/*
 * Contexts: where a property block sits.  The packet types of mqtt.h
 * (MQTT_CONNECT .. MQTT_AUTH) plus the Will Properties of a CONNECT.  A
 * context given to the parser may be or-ed with MQTT_PROP_FROM_CLIENT when
 * a server parses what a client sent: it forbids what only a server may
 * send (a Subscription Identifier in PUBLISH, 3.3.4-6).
 */
#define MQTT_PROP_CTX_WILL 16
#define MQTT_PROP_FROM_CLIENT 0x80

/* Results beyond mqtt.h's (which end at -5). */
#define MQTT_PROP_E_NOSPACE (-6) /* serializer: capacity too small */
#define MQTT_PROP_E_INVALID (-7) /* serializer: entry the spec forbids */

/*
 * One property, as the iterator hands it out and as the serializer takes
 * it.  Which fields count depends on the type: num for the integer types,
 * str for UTF-8 and binary, str (name) and val (value) for a pair.  raw is
 * the property's encoding (identifier and value) from the iterator; for a
 * serializer entry with id MQTT_PROP_RAW it is a span of already encoded
 * properties copied as is (it is not checked again).
 */
#define MQTT_PROP_RAW 0

typedef struct mqtt_prop {
    uint8_t id;
    uint32_t num;
    mqtt_str_t str;
    mqtt_str_t val;
    const uint8_t *raw;
    size_t raw_len;
} mqtt_prop_t;

/*
 * A parsed property block.  present has MQTT_PROP_BIT(id) set for each
 * property seen.  Absent properties hold the spec's default (Receive
 * Maximum 65535, Maximum QoS 2, the four "available" flags and Request
 * Problem Information 1, everything else 0; a Maximum Packet Size of 0
 * means "no limit").  Strings and binary data point into the parsed
 * buffer; User Properties and Subscription Identifiers are read with
 * mqtt_prop_next_user() / mqtt_prop_next_sub_id().
 */
typedef struct mqtt_props {
    uint64_t present;
    const uint8_t *raw; /* the properties, after the length varint */
    uint32_t raw_len;   /* Property Length */
    uint32_t total;     /* bytes consumed: length varint + raw_len */
    uint32_t n_user;    /* User Property pairs */
    uint32_t n_sub_id;  /* Subscription Identifiers */
    uint8_t err_id;     /* on error: the offending identifier, or 0 */

    uint8_t payload_format;
    uint8_t request_problem_info;
    uint8_t request_response_info;
    uint8_t max_qos;
    uint8_t retain_available;
    uint8_t wildcard_sub_available;
    uint8_t sub_id_available;
    uint8_t shared_sub_available;
    uint16_t server_keep_alive;
    uint16_t receive_max;
    uint16_t topic_alias_max;
    uint16_t topic_alias;
    uint32_t message_expiry;
    uint32_t session_expiry;
    uint32_t will_delay;
    uint32_t max_packet_size;
    uint32_t sub_id; /* the first Subscription Identifier */

    mqtt_str_t content_type;
    mqtt_str_t response_topic;
    mqtt_str_t correlation_data; /* binary */
    mqtt_str_t assigned_client_id;
    mqtt_str_t auth_method;
    mqtt_str_t auth_data; /* binary */
    mqtt_str_t response_info;
    mqtt_str_t server_reference;
    mqtt_str_t reason_string;
} mqtt_props_t;

/* ---- the property table ---- */

/* The property's name for log lines ("Topic Alias"), or "unknown". */
const char *mqtt_prop_name(uint8_t id);

/* The value type (MQTT_PROP_T_*), or 0 for an undefined identifier. */
int mqtt_prop_type(uint8_t id);

/* Whether id may appear in ctx (MQTT_PROP_FROM_CLIENT is ignored). */
bool mqtt_prop_allowed(uint8_t ctx, uint8_t id);

/* Whether id may appear more than once in ctx: User Property anywhere it
 * is allowed, Subscription Identifier in PUBLISH only. */
bool mqtt_prop_repeatable(uint8_t ctx, uint8_t id);

/* ---- parser ---- */

/*
 * Parses the property block at buf[0..len), buf positioned at the Property
 * Length and len counting the bytes up to the end of the packet (the
 * properties may be followed by a payload).  ctx is a context, optionally
 * or-ed with MQTT_PROP_FROM_CLIENT.
 *
 * Returns MQTT_OK and fills *pr (pr->total tells how many bytes were
 * consumed), or MQTT_E_MALFORMED / MQTT_E_PROTOCOL with *why set to a
 * static string for a log line, pr->err_id to the offending identifier
 * when there is one, and *reason to the MQTT 5 reason code to answer
 * with before closing (0x81, 0x82, or 0x94 for a Topic Alias of 0).
 * *reason is 0x00 on success.  why and reason may be NULL.
 *
 * A missing Property Length (len 0) is malformed: packets where the block
 * may be absent (acks, DISCONNECT) decide that before calling.
 * Non-minimal variable byte integers are accepted for the Property Length
 * and Subscription Identifiers, as mqtt_fixed_header() accepts them; an
 * identifier must be one byte (all of MQTT 5.0's are).  Session-dependent
 * rules (Topic Alias above the maximum the server announced, Session
 * Expiry raised from 0 in DISCONNECT, payloads that contradict Payload
 * Format Indicator) are the caller's.
 */
int mqtt_prop_parse(uint8_t ctx, const uint8_t *buf, size_t len,
                    mqtt_props_t *pr, uint8_t *reason, const char **why);

/* Walks the properties of a block parsed by mqtt_prop_parse(). */
typedef struct mqtt_prop_iter {
    const uint8_t *p;
    const uint8_t *end;
} mqtt_prop_iter_t;

void mqtt_prop_iter_init(mqtt_prop_iter_t *it, const mqtt_props_t *pr);

/* Next property in wire order: returns true and fills *p, false at the
 * end. */
bool mqtt_prop_next(mqtt_prop_iter_t *it, mqtt_prop_t *p);

/* Next User Property: true with name and value, false when none is left. */
bool mqtt_prop_next_user(mqtt_prop_iter_t *it, mqtt_str_t *name,
                         mqtt_str_t *value);

/* Next Subscription Identifier: true with *id, false when none is left. */
bool mqtt_prop_next_sub_id(mqtt_prop_iter_t *it, uint32_t *id);

/* ---- serializer ---- */

/* Entry constructors for the serializer's array. */
mqtt_prop_t mqtt_prop_num(uint8_t id, uint32_t v);
mqtt_prop_t mqtt_prop_str(uint8_t id, const void *p, uint16_t len);
mqtt_prop_t mqtt_prop_pair(const void *name, uint16_t name_len,
                           const void *value, uint16_t value_len);
mqtt_prop_t mqtt_prop_raw(const uint8_t *p, size_t len);

/*
 * Size of the block (Property Length varint and properties) for the n
 * entries of props sent in ctx.  Returns MQTT_OK with *size set, or
 * MQTT_PROP_E_INVALID (*why set) when an entry is not allowed in ctx,
 * repeats a property that may not repeat, has a value out of its type's
 * or the spec's range, or a string that is not valid MQTT UTF-8, or when
 * the block would pass the largest Property Length.  n may be 0: the
 * block is then the single byte 0.
 */
int mqtt_prop_size(uint8_t ctx, const mqtt_prop_t *props, size_t n,
                   size_t *size, const char **why);

/*
 * Writes that block to out[0..cap).  Returns MQTT_OK with *written set,
 * MQTT_PROP_E_INVALID as mqtt_prop_size(), or MQTT_PROP_E_NOSPACE when it
 * needs more than cap bytes.  On error nothing is written.
 */
int mqtt_prop_write(uint8_t ctx, const mqtt_prop_t *props, size_t n,
                    uint8_t *out, size_t cap, size_t *written,
                    const char **why);

/*
 * Properties to drop when a server forwards a PUBLISH: what is per hop
 * (Topic Alias), per subscriber (Subscription Identifiers) or rewritten
 * (Message Expiry Interval, sent as what remains of it).
 */
#define MQTT_PROP_PUBLISH_PER_HOP                                             \
    (MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS) | MQTT_PROP_BIT(MQTT_PROP_SUB_ID) \
     | MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY))

/* Will Properties that are not forwarded with the will: the delay, and
 * the expiry (sent as what remains of it). */
#define MQTT_PROP_WILL_PER_HOP                                                \
    (MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY)                                      \
     | MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY))

/*
 * Bytes of the properties of pr whose identifier is not in drop (a mask
 * of MQTT_PROP_BIT()), without a length: the raw span a forwarded PUBLISH
 * passes through as an MQTT_PROP_RAW entry.
 */
size_t mqtt_prop_filter_size(const mqtt_props_t *pr, uint64_t drop);

/*
 * Copies those properties, in wire order, to out[0..cap).  Returns MQTT_OK
 * with *written set, or MQTT_PROP_E_NOSPACE (nothing written).
 */
int mqtt_prop_filter(const mqtt_props_t *pr, uint64_t drop, uint8_t *out,
                     size_t cap, size_t *written);

/* ---- reason codes (MQTT 5.0 section 2.4) ---- */

#define MQTT5_RC_SUCCESS 0x00 /* also Normal disconnection, Granted QoS 0 */
#define MQTT5_RC_NORMAL_DISCONNECTION 0x00
#define MQTT5_RC_GRANTED_QOS0 0x00
#define MQTT5_RC_GRANTED_QOS1 0x01
#define MQTT5_RC_GRANTED_QOS2 0x02
#define MQTT5_RC_DISCONNECT_WITH_WILL 0x04
#define MQTT5_RC_NO_MATCHING_SUBSCRIBERS 0x10
#define MQTT5_RC_NO_SUBSCRIPTION_EXISTED 0x11
#define MQTT5_RC_CONTINUE_AUTH 0x18
#define MQTT5_RC_REAUTHENTICATE 0x19
#define MQTT5_RC_UNSPECIFIED 0x80
#define MQTT5_RC_MALFORMED 0x81
#define MQTT5_RC_PROTOCOL_ERROR 0x82
#define MQTT5_RC_IMPL_SPECIFIC 0x83
#define MQTT5_RC_UNSUPPORTED_VERSION 0x84
#define MQTT5_RC_CLIENT_ID_INVALID 0x85
#define MQTT5_RC_BAD_USERNAME_PASSWORD 0x86
#define MQTT5_RC_NOT_AUTHORIZED 0x87
#define MQTT5_RC_SERVER_UNAVAILABLE 0x88
#define MQTT5_RC_SERVER_BUSY 0x89
#define MQTT5_RC_BANNED 0x8a
#define MQTT5_RC_SERVER_SHUTTING_DOWN 0x8b
#define MQTT5_RC_BAD_AUTH_METHOD 0x8c
#define MQTT5_RC_KEEP_ALIVE_TIMEOUT 0x8d
#define MQTT5_RC_SESSION_TAKEN_OVER 0x8e
#define MQTT5_RC_TOPIC_FILTER_INVALID 0x8f
#define MQTT5_RC_TOPIC_NAME_INVALID 0x90
#define MQTT5_RC_PACKET_ID_IN_USE 0x91
#define MQTT5_RC_PACKET_ID_NOT_FOUND 0x92
#define MQTT5_RC_RECEIVE_MAX_EXCEEDED 0x93
#define MQTT5_RC_TOPIC_ALIAS_INVALID 0x94
#define MQTT5_RC_PACKET_TOO_LARGE 0x95
#define MQTT5_RC_MESSAGE_RATE_TOO_HIGH 0x96
#define MQTT5_RC_QUOTA_EXCEEDED 0x97
#define MQTT5_RC_ADMINISTRATIVE_ACTION 0x98
#define MQTT5_RC_PAYLOAD_FORMAT_INVALID 0x99
#define MQTT5_RC_RETAIN_NOT_SUPPORTED 0x9a
#define MQTT5_RC_QOS_NOT_SUPPORTED 0x9b
#define MQTT5_RC_USE_ANOTHER_SERVER 0x9c
#define MQTT5_RC_SERVER_MOVED 0x9d
#define MQTT5_RC_SHARED_SUB_NOT_SUPPORTED 0x9e
#define MQTT5_RC_CONNECTION_RATE_EXCEEDED 0x9f
#define MQTT5_RC_MAX_CONNECT_TIME 0xa0
#define MQTT5_RC_SUB_ID_NOT_SUPPORTED 0xa1
#define MQTT5_RC_WILDCARD_SUB_NOT_SUPPORTED 0xa2

/* A short name for a log line ("Protocol Error"); "unknown reason code"
 * for a value the spec does not define.  0x00 is "Success". */
const char *mqtt5_reason_str(uint8_t rc);

/* Whether the spec lets packet type `type` carry reason code rc (the
 * table of 2.4).  False for packets without a reason code. */
bool mqtt5_reason_allowed(uint8_t type, uint8_t rc);

#endif
