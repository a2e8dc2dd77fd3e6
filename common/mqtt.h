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

#include "mqtt_base.h"
#include "mqtt_props.h"

/* CONNACK return codes (3.1.1 section 3.2.2.3). */
#define MQTT_RC_ACCEPTED 0x00
#define MQTT_RC_BAD_VERSION 0x01
#define MQTT_RC_ID_REJECTED 0x02
#define MQTT_RC_UNAVAILABLE 0x03
#define MQTT_RC_BAD_AUTH 0x04
#define MQTT_RC_NOT_AUTHORIZED 0x05

#define MQTT_SUBACK_FAILURE 0x80

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
    mqtt_props_t props;      /* MQTT 5: CONNECT properties */
    mqtt_props_t will_props; /* MQTT 5: Will Properties */
    uint8_t reason;          /* on error: the MQTT 5 reason code */
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
 * and the caller assigns one.
 *
 * MQTT 5 ("MQTT"/5): the CONNECT properties and the Will Properties are
 * parsed into props and will_props (mqtt_prop_parse() rules); a password
 * without a username and an empty client id with Clean Start 0 are
 * allowed.  On every error c->reason holds the MQTT 5 reason code to
 * answer a level-5 client with (0x81, 0x82, ...).
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
    mqtt_props_t props; /* MQTT 5 */
    uint8_t reason;     /* on error: the MQTT 5 reason code */
} mqtt_publish_t;

/*
 * Parses a PUBLISH.  QoS 3 is malformed; DUP with QoS 0 is a protocol error;
 * the topic must be non-empty valid UTF-8 without wildcards or U+0000;
 * QoS > 0 needs a non-zero packet id.  MQTT 5: the properties follow the
 * packet id (p->props); an empty topic is returned as such (a Topic Alias
 * may stand for it: the caller checks); p->reason is set on error.
 */
int mqtt_parse_publish(uint8_t level, uint8_t flags, const uint8_t *body,
                       size_t len,
                       mqtt_publish_t *p, const char **why);

/*
 * Parses PUBACK, PUBREC, PUBREL, PUBCOMP (client to server).  Flags must be
 * 0, or 2 for PUBREL; body exactly 2 bytes; packet id non-zero.  MQTT 5:
 * a reason code (one the spec allows there, else a protocol error) and a
 * property block may follow; *rc gets the code (0 when absent; rc may be
 * NULL).
 */
int mqtt_parse_ack(uint8_t level, uint8_t type, uint8_t flags,
                   const uint8_t *body, size_t len, uint16_t *pid,
                   uint8_t *rc, const char **why);

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
 * MQTT 5: the properties follow the packet id (*props; props may be NULL
 * for 3.1.1) and the QoS byte is the Subscription Options byte: bits 6-7
 * reserved, Retain Handling 3 a protocol error.
 */
int mqtt_parse_subscribe(uint8_t level, uint8_t flags, const uint8_t *body,
                         size_t len, uint16_t *pid, mqtt_props_t *props,
                         mqtt_iter_t *it, const char **why);

/* Same for UNSUBSCRIBE (entries without QoS byte). */
int mqtt_parse_unsubscribe(uint8_t level, uint8_t flags,
                           const uint8_t *body, size_t len, uint16_t *pid,
                           mqtt_props_t *props, mqtt_iter_t *it,
                           const char **why);

/* Next entry: returns true and fills filter (and *qos for SUBSCRIBE: the
 * requested QoS, or for MQTT 5 the whole options byte, MQTT_SUBOPT_*; qos
 * may be NULL for UNSUBSCRIBE), false at the end. */
bool mqtt_iter_next(mqtt_iter_t *it, mqtt_str_t *filter, uint8_t *qos);

/* Subscription Options (MQTT 5.0 3.8.3.1). */
#define MQTT_SUBOPT_QOS_MASK 0x03
#define MQTT_SUBOPT_NO_LOCAL 0x04
#define MQTT_SUBOPT_RAP 0x08 /* Retain As Published */
#define MQTT_SUBOPT_RH_MASK 0x30 /* Retain Handling, 0..2 << 4 */
#define MQTT_SUBOPT_RH_SHIFT 4

/* PINGREQ and DISCONNECT: flags 0, remaining length 0. */
int mqtt_parse_empty(uint8_t type, uint8_t flags, size_t len,
                     const char **why);

/* The MQTT 5 reason code for a parser's error class: 0x81 for
 * MQTT_E_MALFORMED, 0x82 (Protocol Error) for the others. */
uint8_t mqtt5_error_reason(int rc);

/* DISCONNECT: 3.1.1 as mqtt_parse_empty(); MQTT 5 with an optional reason
 * code (*rc, 0 when absent) and property block (*props). */
int mqtt_parse_disconnect(uint8_t level, uint8_t flags, const uint8_t *body,
                          size_t len, uint8_t *rc, mqtt_props_t *props,
                          const char **why);

/* AUTH (MQTT 5 only): reason code and properties, both optional. */
int mqtt_parse_auth(uint8_t flags, const uint8_t *body, size_t len,
                    uint8_t *rc, mqtt_props_t *props, const char **why);

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

/* MQTT 5 acknowledgement with reason code rc: the 4-byte short form when
 * rc is 0 and there is no reason_string, else 5 bytes, plus a Reason
 * String (cut to 100 bytes) when reason_string is not NULL and it fits
 * cap.  out needs at least 5 bytes. */
size_t mqtt_write_ack_rc(uint8_t *out, size_t cap, uint8_t type,
                         uint16_t pid, uint8_t rc, const char *reason_string);

/* MQTT 5 DISCONNECT with reason code rc and, when reason_string is not
 * NULL, a Reason String (cut to 200 bytes, so the Remaining Length may
 * take two bytes; left out if it does not fit cap).  out needs at least 4
 * bytes. */
size_t mqtt_write_disconnect(uint8_t *out, size_t cap, uint8_t rc,
                             const char *reason_string);

/* MQTT 5 CONNACK with the n properties of props.  Returns the bytes
 * written, or 0 when a property is invalid or the packet needs more than
 * cap bytes (nothing usable is written). */
size_t mqtt_write_connack5(uint8_t *out, size_t cap, bool session_present,
                           uint8_t rc, const mqtt_prop_t *props, size_t n);

/* MQTT 5 AUTH with reason code rc, the Authentication Method and, when
 * data is not NULL, Authentication Data.  Returns the bytes written, or
 * 0 when it does not fit cap. */
size_t mqtt_write_auth(uint8_t *out, size_t cap, uint8_t rc,
                       const char *method, size_t mlen, const uint8_t *data,
                       size_t dlen);

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
