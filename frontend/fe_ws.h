/*
 * fe_ws.h -- WebSocket (RFC 6455) for MQTT: the HTTP/1.1 upgrade and the
 * frame codec, as pure functions over byte buffers (no sockets, no
 * frontend state), so that a unit test can drive every case.
 */
#ifndef RINGMQ_FE_WS_H
#define RINGMQ_FE_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FE_WS_HDR_MAX 8192   /* bytes of an upgrade request, headers too */
#define FE_WS_RESP_MAX 512   /* bytes of any response we build */
#define FE_WS_FRAME_HDR_MAX 10 /* bytes of a server frame header */

enum {
    FE_WS_OP_CONT = 0x0,
    FE_WS_OP_TEXT = 0x1,
    FE_WS_OP_BINARY = 0x2,
    FE_WS_OP_CLOSE = 0x8,
    FE_WS_OP_PING = 0x9,
    FE_WS_OP_PONG = 0xa
};

/* Close status codes (RFC 6455 7.4.1) we send. */
enum {
    FE_WS_CLOSE_NORMAL = 1000,
    FE_WS_CLOSE_GOING_AWAY = 1001,
    FE_WS_CLOSE_PROTOCOL = 1002,
    FE_WS_CLOSE_UNSUPPORTED = 1003,
    FE_WS_CLOSE_BAD_DATA = 1007,
    FE_WS_CLOSE_TOO_BIG = 1009
};

typedef struct fe_ws_req {
    char key[25];        /* Sec-WebSocket-Key (24 base64 characters) */
    const char *proto;   /* chosen subprotocol (static string) or NULL */
} fe_ws_req_t;

/*
 * Parses an HTTP/1.1 WebSocket upgrade request at buf[0..len) for the
 * resource path (the query string is ignored).  Returns the length of the
 * request, headers included (> 0), when it is complete and acceptable;
 * 0 when more bytes are needed; or the negated HTTP status to answer with
 * (-400, -404, -405, -426, -431), *why then saying what was wrong.
 * A request whose Sec-WebSocket-Protocol offers neither mqtt nor mqttv3.1
 * is refused; one without the header is accepted without a subprotocol.
 */
int fe_ws_parse_upgrade(const uint8_t *buf, size_t len, const char *path,
                        fe_ws_req_t *req, const char **why);

/* Sec-WebSocket-Accept for key: 28 characters and a NUL into out.
 * Returns 0, or -1 when the digest failed (OpenSSL). */
int fe_ws_accept_key(const char *key, char out[29]);

/* The 101 Switching Protocols response for req into out (n bytes, at
 * least FE_WS_RESP_MAX).  Returns its length, or 0 on failure. */
size_t fe_ws_accept_response(const fe_ws_req_t *req, char *out, size_t n);

/* A short HTTP error response for status (400, 404, 405, 426, 431) with
 * Connection: close, into out (n >= FE_WS_RESP_MAX).  Returns its
 * length. */
size_t fe_ws_error_response(int status, char *out, size_t n);

/* Writes the header of an unmasked (server) frame with FIN set: opcode op,
 * payload length len.  Returns its length (2, 4 or 10 bytes). */
size_t fe_ws_frame_header(uint8_t *out, int op, uint64_t len);

/* Decoder state of one connection's client-to-server stream.  Zero it and
 * set max_frame. */
typedef struct fe_ws_dec {
    uint64_t max_frame;  /* largest payload of one data frame */
    uint64_t left;       /* payload bytes of the current frame to come */
    uint32_t phase;      /* mask position of the next payload byte */
    uint8_t mask[4];
    bool in_data;        /* inside a data frame's payload */
    bool in_message;     /* a fragmented message waits for its last frame */
} fe_ws_dec_t;

typedef struct fe_ws_ev {
    int op;          /* FE_WS_OP_BINARY for message bytes, or a control op */
    uint8_t *data;   /* unmasked in place, inside buf */
    size_t len;
} fe_ws_ev_t;

/*
 * Decodes the next piece of the stream buf[0..len): message bytes (a part
 * of a binary frame's payload, as soon as it arrives) or one whole control
 * frame.  Unmasks in place.  *used gets the bytes consumed.  Returns 1
 * with *ev set; 0 when more bytes are needed (*used 0); or the negated
 * close code to send (-FE_WS_CLOSE_PROTOCOL, -FE_WS_CLOSE_UNSUPPORTED,
 * -FE_WS_CLOSE_TOO_BIG) with *why set: unmasked frame, reserved bits,
 * unknown opcode, text frame, bad fragmentation, control frame fragmented
 * or over 125 bytes, data frame over max_frame.
 */
int fe_ws_decode(fe_ws_dec_t *d, uint8_t *buf, size_t len, size_t *used,
                 fe_ws_ev_t *ev, const char **why);

/*
 * The status code to answer a client's close frame (payload p[0..n),
 * unmasked) with: its own code when it is one a peer may send (1000 to
 * 1003, 1007 to 1011, 3000 to 4999) and the reason after it is UTF-8;
 * FE_WS_CLOSE_PROTOCOL for a payload of one byte or another code;
 * FE_WS_CLOSE_BAD_DATA for a reason that is not UTF-8; 0 (answer with
 * an empty close frame) for an empty payload.
 */
int fe_ws_close_reply(const uint8_t *p, size_t n);

#endif
