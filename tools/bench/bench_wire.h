/*
 * bench_wire.h -- the client side of MQTT 3.1.1 and 5.0 for ringmq-bench:
 * serializers for what a client sends (CONNECT, SUBSCRIBE, PUBLISH, acks)
 * and a parser for what a broker sends (CONNACK, SUBACK, PUBLISH, acks,
 * PINGRESP, DISCONNECT).  The broker's codec in common/mqtt.h is
 * server-side; its fixed-header decoder and ack serializer are reused.
 */
#ifndef RINGMQ_BENCH_WIRE_H
#define RINGMQ_BENCH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest CONNECT or SUBSCRIBE the tool builds (ids and topics are short). */
#define BENCH_WIRE_CTRL_MAX 512

/* Bytes of a PUBLISH header (fixed header, topic, packet id, v5 property
 * length) for a topic of topic_len bytes; the payload follows it. */
#define BENCH_WIRE_PUB_HEAD_MAX(topic_len) (5 + 2 + (topic_len) + 2 + 1)

/*
 * CONNECT with clean session (3.1.1) or clean start and no session expiry
 * (5), no will, no credentials.  out needs BENCH_WIRE_CTRL_MAX bytes;
 * client_id must be shorter than 200 bytes.  Returns the bytes written.
 */
size_t bench_wire_connect(uint8_t *out, int version, const char *client_id,
                          uint16_t keepalive);

/* SUBSCRIBE to one filter at qos.  out needs BENCH_WIRE_CTRL_MAX bytes;
 * filter must be shorter than 400 bytes.  Returns the bytes written. */
size_t bench_wire_subscribe(uint8_t *out, int version, uint16_t pid,
                            const char *filter, int qos);

/*
 * Everything of a PUBLISH before its payload of payload_len bytes: fixed
 * header, topic, packet id (QoS > 0), empty property list (5).  out needs
 * BENCH_WIRE_PUB_HEAD_MAX(topic_len) bytes.  Returns the bytes written.
 */
size_t bench_wire_publish_head(uint8_t *out, int version, int qos,
                               const char *topic, size_t topic_len,
                               uint16_t pid, size_t payload_len);

/* PUBACK, PUBREC, PUBREL, PUBCOMP with reason "success" (the short form
 * both versions accept): 4 bytes. */
size_t bench_wire_ack(uint8_t *out, uint8_t type, uint16_t pid);

/* PINGREQ or DISCONNECT (normal disconnection): 2 bytes. */
size_t bench_wire_empty(uint8_t *out, uint8_t type);

/* A packet from the broker, as bench_wire_parse() decodes it.  Pointers go
 * into the caller's buffer. */
typedef struct bench_pkt {
    uint8_t type;
    uint8_t flags;
    uint16_t pid;
    uint8_t reason;         /* CONNACK code, first SUBACK code, v5 reason */
    bool session_present;
    uint16_t recv_max;      /* v5 CONNACK Receive Maximum, 0 when absent */
    int32_t server_keepalive; /* v5 CONNACK Server Keep Alive, -1 absent */
    uint8_t max_qos;        /* v5 CONNACK Maximum QoS, 2 when absent */
    uint8_t qos;            /* PUBLISH */
    bool dup;
    bool retain;
    const uint8_t *topic;
    uint16_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
} bench_pkt_t;

/*
 * Decodes one packet from the broker: first is its first byte, body its
 * len bytes after the fixed header.  Returns 0, or -1 with *why set to a
 * static message when the packet is malformed or a client never receives
 * it.
 */
int bench_wire_parse(int version, uint8_t first, const uint8_t *body,
                     size_t len, bench_pkt_t *p, const char **why);

/* Name of a packet type for messages ("PUBLISH"). */
const char *bench_wire_name(uint8_t type);

/* Text for a CONNACK return code (3.1.1) or reason code (5). */
const char *bench_wire_connack_text(int version, uint8_t rc);

#endif
