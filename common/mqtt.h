/*
 * mqtt.h -- MQTT 3.1 / 3.1.1 wire codec: fixed-header and packet parsers that
 * validate everything a server must check, and small serializers for what a
 * server sends.  Parsers never allocate: strings point into the caller's
 * buffer, which must outlive them.
 */
#ifndef RINGMQ_MQTT_H
#define RINGMQ_MQTT_H

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

/* CONNACK return codes (3.1.1 section 3.2.2.3). */
#define MQTT_RC_ACCEPTED 0x00
#define MQTT_RC_BAD_VERSION 0x01
#define MQTT_RC_ID_REJECTED 0x02
#define MQTT_RC_UNAVAILABLE 0x03
#define MQTT_RC_BAD_AUTH 0x04
#define MQTT_RC_NOT_AUTHORIZED 0x05

#define MQTT_SUBACK_FAILURE 0x80

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

typedef struct mqtt_fixed {
    uint8_t type;       /* MQTT_CONNECT .. MQTT_AUTH (0 is reserved) */
    uint8_t flags;      /* low nibble of byte 0 */
    uint32_t remaining; /* remaining length */
    uint8_t hdr_len;    /* 2..5: bytes of the fixed header */
} mqtt_fixed_t;

/*
 * Decodes the fixed header at buf[0..len).  Returns MQTT_OK and fills *fh,
 * MQTT_AGAIN when more bytes are needed, MQTT_E_MALFORMED for type 0 or a
 * remaining length longer than 4 bytes.  Flag bits are checked by the packet
 * parsers, not here.
 */
int mqtt_fixed_header(const uint8_t *buf, size_t len, mqtt_fixed_t *fh,
                      const char **why);

typedef struct mqtt_connect {
    uint8_t level; /* MQTT_V31 or MQTT_V311 */
    bool clean_session;
    bool will;
    uint8_t will_qos;
    bool will_retain;
    bool has_username;
    bool has_password;
    uint16_t keepalive;
    mqtt_str_t client_id; /* may be empty (len 0) */
    mqtt_str_t will_topic;
    const uint8_t *will_payload;
    uint16_t will_payload_len;
    mqtt_str_t username;
    mqtt_str_t password; /* binary data */
} mqtt_connect_t;

/*
 * Parses a CONNECT body (after the fixed header).  flags is the fixed-header
 * flag nibble (must be 0).  Checks protocol name and level ("MQIsdp"/3,
 * "MQTT"/4; anything else with a known name gives MQTT_E_VERSION), reserved
 * flag bit, will flags consistency, will QoS, password-without-username
 * (3.1.1), UTF-8 of every string, a valid will topic (no wildcards), trailing
 * bytes.  Client id rules: 3.1 requires 1..23 bytes (else MQTT_E_CLIENTID);
 * 3.1.1 allows any length; an empty id with clean_session 0 gives
 * MQTT_E_CLIENTID.  An empty id with clean_session 1 is returned as len 0
 * and the caller assigns one.  MQTT_V5 gives MQTT_E_VERSION for now.
 */
int mqtt_parse_connect(uint8_t flags, const uint8_t *body, size_t len,
                       mqtt_connect_t *c, const char **why);

typedef struct mqtt_publish {
    uint8_t qos;
    bool dup;
    bool retain;
    mqtt_str_t topic;
    uint16_t pid; /* 0 for QoS 0 */
    const uint8_t *payload;
    size_t payload_len;
} mqtt_publish_t;

/*
 * Parses a PUBLISH.  QoS 3 is malformed; DUP with QoS 0 is a protocol error;
 * the topic must be non-empty valid UTF-8 without wildcards or U+0000;
 * QoS > 0 needs a non-zero packet id.
 */
int mqtt_parse_publish(uint8_t flags, const uint8_t *body, size_t len,
                       mqtt_publish_t *p, const char **why);

/*
 * Parses PUBACK, PUBREC, PUBREL, PUBCOMP (client to server).  Flags must be
 * 0, or 2 for PUBREL; body exactly 2 bytes; packet id non-zero.
 */
int mqtt_parse_ack(uint8_t type, uint8_t flags, const uint8_t *body,
                   size_t len, uint16_t *pid, const char **why);

/* Walks the topic list of a SUBSCRIBE or UNSUBSCRIBE already validated by
 * mqtt_parse_subscribe / mqtt_parse_unsubscribe. */
typedef struct mqtt_iter {
    const uint8_t *p;
    const uint8_t *end;
    bool subscribe; /* entries carry a QoS byte */
} mqtt_iter_t;

/*
 * Validates a whole SUBSCRIBE: flags 2, non-zero packet id, at least one
 * entry, each a UTF-8 string of 1+ bytes followed by a QoS byte whose upper
 * six bits are 0 and whose value is 0..2.  Filter syntax (wildcard
 * placement) is NOT checked here: an ill-placed wildcard earns 0x80 in the
 * SUBACK, not a closed connection.  On MQTT_OK, *it walks the entries.
 */
int mqtt_parse_subscribe(uint8_t flags, const uint8_t *body, size_t len,
                         uint16_t *pid, mqtt_iter_t *it, const char **why);

/* Same for UNSUBSCRIBE (entries without QoS byte). */
int mqtt_parse_unsubscribe(uint8_t flags, const uint8_t *body, size_t len,
                           uint16_t *pid, mqtt_iter_t *it,
                           const char **why);

/* Next entry: returns true and fills filter (and *qos for SUBSCRIBE; qos
 * may be NULL for UNSUBSCRIBE), false at the end. */
bool mqtt_iter_next(mqtt_iter_t *it, mqtt_str_t *filter, uint8_t *qos);

/* PINGREQ and DISCONNECT: flags 0, remaining length 0. */
int mqtt_parse_empty(uint8_t type, uint8_t flags, size_t len,
                     const char **why);

/*
 * UTF-8 as MQTT wants it (1.5.3): well-formed, no overlong forms, no
 * surrogates (U+D800..U+DFFF), no code points above U+10FFFF, no U+0000.
 */
bool mqtt_utf8_valid(const uint8_t *s, size_t len);

/* ---- serializers: each returns the number of bytes written ---- */

/* Remaining-length varint; out needs 4 bytes.  Returns 1..4. */
size_t mqtt_varint_encode(uint8_t *out, uint32_t v);

/* Bytes a varint for v takes (1..4). */
size_t mqtt_varint_size(uint32_t v);

/* CONNACK: 4 bytes. */
size_t mqtt_write_connack(uint8_t *out, bool session_present, uint8_t rc);

/* PUBACK, PUBREC, PUBREL (flags 2), PUBCOMP, UNSUBACK: 4 bytes. */
size_t mqtt_write_ack(uint8_t *out, uint8_t type, uint16_t pid);

/* PINGRESP: 2 bytes. */
size_t mqtt_write_pingresp(uint8_t *out);

/* SUBACK for n return codes: mqtt_suback_size(n) bytes. */
size_t mqtt_suback_size(size_t n);
size_t mqtt_write_suback(uint8_t *out, uint16_t pid, const uint8_t *codes,
                         size_t n);

/*
 * PUBLISH fixed header (first byte + remaining length) for a packet whose
 * variable header and payload take `remaining` bytes; out needs 5 bytes.
 */
size_t mqtt_write_publish_header(uint8_t *out, uint8_t qos, bool dup,
                                 bool retain, uint32_t remaining);

#endif
