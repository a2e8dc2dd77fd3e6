/*
 * fe_xport.c -- the transports of TLS, WebSocket and WSS connections:
 * bytes from the socket are decrypted (SSL_read on the fd) and/or
 * unframed (fe_ws.c) before the MQTT parser sees them in c->in; the
 * connection's output queue of iovecs is framed and encrypted at flush
 * time into one buffer and written from there.  Plain TCP connections
 * never come here: they keep writev()/io_uring straight from the arena.
 *
 * Back-pressure works as for TCP: a batch of the queue is encoded only
 * when the previous batch has been written, so a client that does not
 * read leaves its deliveries in the queue and the queue's limits apply.
 * What the transport makes itself stays bounded too: one pong at most
 * waits (for the latest ping), and the socket is not read while a pong
 * (or more than FE_XP_OUT_PAUSE framed bytes) waits for it.  Buffers
 * are freed once empty, so an idle connection costs little.
 */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fe.h"
#include "fe_tls.h"
#include "fe_ws.h"
#include "log.h"
#include "mem.h"

#define FE_XP_CHUNK (64 * 1024) /* queued bytes encoded per batch */
#define FE_XP_RAW_ROOM 16384    /* bytes of room for one read */
#define FE_XP_READS 8           /* reads per readable event */
#define FE_XP_OUT_KEEP 16384    /* x->out capacity kept once drained */
#define FE_XP_OUT_PAUSE 16384   /* unwritten bytes that stop reading */
#define FE_XP_CN_MAX 64         /* bytes of a certificate CN username */

struct fe_xport {
    SSL *ssl;              /* NULL: no TLS */
    bool ws;               /* WebSocket framing */
    bool tls_open;         /* TLS handshake finished (or no TLS) */
    bool ws_open;          /* upgrade answered (or no WebSocket) */
    bool close_sent;       /* no WebSocket close frame is due any more */
    bool closing;          /* inside fe_xp_free: leave events alone */
    bool read_wants_write; /* SSL_read waits for the socket to drain */
    bool write_wants_read; /* SSL_write waits for bytes from the peer */
    bool ssl_failed;       /* SSL_ERROR_SSL/SYSCALL: no SSL_shutdown */
    bool pong_due;         /* pong[] answers the latest ping, not sent */
    bool close_due;        /* the client's close frame waits for what came
                              before it (fe_xp_close_due()) */
    uint16_t close_code;   /* what close_due answers with */
    uint8_t pong_len;
    uint8_t pong[125];     /* payload of the latest ping */
    const char *path;      /* websockets_path */
    bool identity;         /* use_identity_as_username */
    fe_ws_dec_t dec;
    /* WebSocket: bytes read but not decoded yet (NULL when none) */
    uint8_t *raw;
    size_t raw_len, raw_cap;
    /* framed (and not yet encrypted) bytes waiting for the socket */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    int ssl_retry; /* length of an SSL_write to repeat, 0: none */
};

static char xp_why[320]; /* reason text handed to fe_close() */
/* WebSocket reads land here while x->raw is empty, and only what is left
 * of an incomplete frame is kept in x->raw. */
static uint8_t xp_rbuf[2 * FE_XP_RAW_ROOM];

int fe_xp_init(fe_conn_t *c, int li)
{
    const cfg_listener_t *ls = &fe->cfg->listeners[li];
    fe_xport_t *x = mem_calloc(1, sizeof(*x));
    x->tls_open = true;
    x->ws_open = true;
    x->close_sent = true;
    if (ls->certfile[0]) {
        x->ssl = fe_tls_new(li, c->fd);
        if (x->ssl == NULL) {
            mem_free(x);
            return -1;
        }
        x->tls_open = false;
        x->identity = ls->use_identity_as_username;
    }
    if (ls->protocol == CFG_PROTO_WEBSOCKETS) {
        x->ws = true;
        x->ws_open = false;
        x->close_sent = false;
        x->path = ls->ws_path;
        x->dec.max_frame = ls->ws_max_frame;
    }
    c->x = x;
    return 0;
}

const char *fe_xp_pending(const fe_conn_t *c)
{
    if (c->x == NULL)
        return NULL;
    if (!c->x->tls_open)
        return "TLS handshake";
    if (!c->x->ws_open)
        return "WebSocket upgrade";
    return NULL;
}

static void want_write(fe_conn_t *c, bool on)
{
    if (c->x->closing || c->write_on == on)
        return;
    if (on)
        event_add(c->ev_write, NULL);
    else
        event_del(c->ev_write);
    c->write_on = on;
}

/* Framed output waits for the socket: reading more would only make more
 * output that cannot go out (pongs, for a client that pings and never
 * reads). */
static bool out_congested(const fe_xport_t *x)
{
    size_t unwritten = x->out_len - x->out_off;
    return unwritten > FE_XP_OUT_PAUSE || (unwritten > 0 && x->pong_due);
}

bool fe_xp_may_read(const fe_conn_t *c)
{
    const fe_xport_t *x = c->x;
    if (x->write_wants_read)
        return true; /* SSL_write needs the peer's bytes */
    return !x->read_wants_write && !out_congested(x);
}

/* Adds or removes c's read event as the transport (fe_xp_may_read) and
 * the MQTT path (paused, waiting for the session owner) want it. */
static void read_update(fe_conn_t *c)
{
    fe_xport_t *x = c->x;
    bool on = fe_xp_may_read(c) &&
              (x->write_wants_read ||
               (!c->paused && c->state != C_CONNECTING));
    if (x->closing || on == !c->read_off)
        return;
    if (on) {
        event_add(c->ev_read, NULL);
        c->read_off = false;
        fe_xp_kick(c);
    } else {
        event_del(c->ev_read);
        c->read_off = true;
    }
}

/* ---- output ---- */

static void out_append(fe_xport_t *x, const void *p, size_t n)
{
    if (x->out_off == x->out_len && x->ssl_retry == 0)
        x->out_off = x->out_len = 0;
    if (x->out_len + n > x->out_cap && x->out_off > 0) {
        /* OpenSSL accepts the moved buffer on a retry
         * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
        memmove(x->out, x->out + x->out_off, x->out_len - x->out_off);
        x->out_len -= x->out_off;
        x->out_off = 0;
    }
    if (x->out_len + n > x->out_cap) {
        size_t cap = x->out_cap ? x->out_cap * 2 : 4096;
        while (cap < x->out_len + n)
            cap *= 2;
        x->out = mem_realloc(x->out, cap);
        x->out_cap = cap;
    }
    memcpy(x->out + x->out_len, p, n);
    x->out_len += n;
}

/* Queues a WebSocket control frame (n <= 125) ahead of the next batch. */
static void ws_control(fe_xport_t *x, int op, const void *p, size_t n)
{
    uint8_t h[FE_WS_FRAME_HDR_MAX];
    out_append(x, h, fe_ws_frame_header(h, op, n));
    if (n)
        out_append(x, p, n);
}

static void ws_close_frame(fe_xport_t *x, int code)
{
    uint8_t b[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    ws_control(x, FE_WS_OP_CLOSE, b, code ? 2 : 0);
    x->close_sent = true;
}

/* Writes the framed bytes waiting in x->out.  Returns 1 when all are
 * out, 0 when the socket cannot take more now (EV_WRITE or a read will
 * continue), -1 on a socket or TLS error (*why set). */
static int write_out(fe_conn_t *c, const char **why)
{
    fe_xport_t *x = c->x;
    while (x->out_off < x->out_len) {
        size_t n = x->out_len - x->out_off;
        ssize_t w;
        if (x->ssl) {
            if (!x->tls_open)
                return 0; /* nothing may go out before the handshake */
            int len = x->ssl_retry ? x->ssl_retry
                                   : (int)(n > INT_MAX ? INT_MAX : n);
            ERR_clear_error();
            int r = SSL_write(x->ssl, x->out + x->out_off, len);
            if (r <= 0) {
                int e = SSL_get_error(x->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    /* Repeat with the same length (OpenSSL's rule). */
                    x->ssl_retry = len;
                    if (e == SSL_ERROR_WANT_WRITE) {
                        want_write(c, true);
                    } else {
                        /* Not writable-driven: EV_WRITE would fire at
                         * once, again and again.  The next read
                         * (fe_xp_on_read) retries the write. */
                        x->write_wants_read = true;
                        if (!x->read_wants_write)
                            want_write(c, false);
                        read_update(c);
                    }
                    return 0;
                }
                x->ssl_failed = true;
                snprintf(xp_why, sizeof(xp_why), "TLS write failed: %s",
                         fe_tls_error(e == SSL_ERROR_SYSCALL
                                          ? strerror(errno)
                                          : "?"));
                *why = xp_why;
                return -1;
            }
            x->ssl_retry = 0;
            w = r;
        } else {
            w = write(c->fd, x->out + x->out_off, n);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    want_write(c, true);
                    return 0;
                }
                *why = "socket error";
                return -1;
            }
        }
        x->out_off += (size_t)w;
        fe->proc->bytes_out += (uint64_t)w;
    }
    x->out_off = x->out_len = 0;
    if (x->out_cap > FE_XP_OUT_KEEP) {
        /* A large batch went out: do not keep its room while idle. */
        mem_free(x->out);
        x->out = NULL;
        x->out_cap = 0;
    }
    return 1;
}

/* Moves up to FE_XP_CHUNK bytes of c's queue into x->out, in one binary
 * frame for WebSocket.  Their arena references are released: the bytes
 * are copied. */
static void encode_batch(fe_conn_t *c)
{
    fe_xport_t *x = c->x;
    size_t total = 0;
    for (uint32_t i = 0; i < c->iov_n && total < FE_XP_CHUNK; i++)
        total += c->iov[c->iov_head + i].iov_len;
    if (total > FE_XP_CHUNK)
        total = FE_XP_CHUNK;
    if (x->ws) {
        uint8_t h[FE_WS_FRAME_HDR_MAX];
        out_append(x, h, fe_ws_frame_header(h, FE_WS_OP_BINARY, total));
    }
    size_t left = total;
    for (uint32_t i = 0; left > 0; i++) {
        struct iovec *v = &c->iov[c->iov_head + i];
        size_t n = v->iov_len < left ? v->iov_len : left;
        out_append(x, v->iov_base, n);
        left -= n;
    }
    fe_out_consume(c, total);
}

int fe_xp_flush(fe_conn_t *c)
{
    fe_xport_t *x = c->x;
    const char *why = NULL;
    for (;;) {
        int r = write_out(c, &why);
        if (r < 0) {
            fe_close(c, false, why);
            return -1;
        }
        if (r == 0) {
            read_update(c); /* off while the output is congested */
            return 0;
        }
        if (x->pong_due) {
            /* Between frames, where a control frame may go. */
            ws_control(x, FE_WS_OP_PONG, x->pong, x->pong_len);
            x->pong_due = false;
            continue;
        }
        if (c->iov_n == 0 || !x->tls_open || !x->ws_open)
            break;
        encode_batch(c);
    }
    if (!x->read_wants_write)
        want_write(c, false);
    read_update(c); /* on again once the output drained */
    return 0;
}

/* ---- input ---- */

/* Is the UTF-8 name s[0..n) free of control characters (C0, DEL, C1)
 * and well-formed? */
static bool cn_printable(const unsigned char *s, size_t n)
{
    if (!mqtt_utf8_valid(s, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
        if (s[i] == 0xc2 && i + 1 < n && s[i + 1] < 0xa0)
            return false; /* U+0080..U+009F */
    }
    return true;
}

/* The TLS handshake just finished: log it and take the identity. */
static int tls_opened(fe_conn_t *c, const char **why)
{
    fe_xport_t *x = c->x;
    x->tls_open = true;
    log_info("TLS connection from %s: %s, %s, session %s.", c->peer,
             SSL_get_version(x->ssl), SSL_get_cipher_name(x->ssl),
             SSL_session_reused(x->ssl) ? "resumed" : "new");
    if (!x->identity)
        return 0;
    X509 *cert = SSL_get1_peer_certificate(x->ssl);
    if (cert == NULL) {
        *why = "no client certificate (use_identity_as_username)";
        return -1;
    }
    /* The first CN, as UTF-8; a name that would be cut or that would
     * put control characters in the log is refused, not mangled. */
    X509_NAME *name = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *cn = NULL;
    int n = -1;
    if (i >= 0)
        n = ASN1_STRING_to_UTF8(
            &cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    X509_free(cert);
    const char *bad = NULL;
    if (n <= 0)
        bad = "client certificate without a common name";
    else if (n > FE_XP_CN_MAX)
        bad = "client certificate common name longer than 64 bytes";
    else if (!cn_printable(cn, (size_t)n))
        bad = "client certificate common name with non-printable "
              "characters";
    if (bad == NULL) {
        mem_free(c->username);
        c->username = mem_alloc((size_t)n + 1);
        memcpy(c->username, cn, (size_t)n);
        c->username[n] = '\0';
    }
    OPENSSL_free(cn);
    if (bad != NULL) {
        *why = bad;
        return -1;
    }
    return 0;
}

/* Reads what the socket (or OpenSSL) has into buf.  Returns the byte
 * count, 0 when nothing is there now, -1 when the connection ended or
 * failed (*why set). */
static ssize_t recv_some(fe_conn_t *c, uint8_t *buf, size_t n,
                         const char **why)
{
    fe_xport_t *x = c->x;
    if (x->ssl == NULL) {
        for (;;) {
            ssize_t r = read(c->fd, buf, n);
            if (r > 0)
                return r;
            if (r == 0) {
                *why = "connection closed by client";
                return -1;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            *why = "socket error";
            return -1;
        }
    }
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(x->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(x->ssl, r);
    if (!x->tls_open && SSL_is_init_finished(x->ssl) &&
        tls_opened(c, why) < 0)
        return -1;
    switch (e) {
    case SSL_ERROR_NONE:
        return r;
    case SSL_ERROR_WANT_READ:
        return 0;
    case SSL_ERROR_WANT_WRITE:
        /* Reading stops until the socket is writable (read_update(),
         * fe_xp_on_write()): a readable socket would only repeat this. */
        x->read_wants_write = true;
        want_write(c, true);
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        *why = "connection closed by client";
        return -1;
    case SSL_ERROR_SYSCALL:
        x->ssl_failed = true;
        if (ERR_peek_error() == 0) {
            *why = errno ? "socket error" : "connection closed by client";
            if (!x->tls_open && !errno)
                *why = "connection closed during the TLS handshake";
            return -1;
        }
        /* fall through */
    default:
        x->ssl_failed = true;
        if (ERR_GET_REASON(ERR_peek_error()) ==
            SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            *why = x->tls_open ? "connection closed by client"
                               : "connection closed during the TLS "
                                 "handshake";
            return -1;
        }
        snprintf(xp_why, sizeof(xp_why), "%s: %s",
                 x->tls_open ? "TLS error" : "TLS handshake failed",
                 fe_tls_error("?"));
        *why = xp_why;
        return -1;
    }
}

static void in_append(fe_conn_t *c, const uint8_t *p, size_t n)
{
    if (c->in_len + n > c->in_cap) {
        size_t cap = c->in_cap * 2;
        while (cap < c->in_len + n)
            cap *= 2;
        c->in = mem_realloc(c->in, cap);
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
}

/* Answers a WebSocket protocol violation with a close frame and closes. */
static int ws_fail(fe_conn_t *c, int code, const char *why)
{
    const char *ignored;
    ws_close_frame(c->x, code);
    write_out(c, &ignored);
    snprintf(xp_why, sizeof(xp_why), "WebSocket protocol error: %s", why);
    fe_close(c, false, xp_why);
    return -1;
}

/* The HTTP upgrade: answers it (101 or an error).  Returns the bytes of
 * raw it used (0: incomplete), or -1 when c was closed. */
static int ws_upgrade(fe_conn_t *c, const uint8_t *buf, size_t len)
{
    fe_xport_t *x = c->x;
    fe_ws_req_t req;
    const char *why, *ignored;
    char resp[FE_WS_RESP_MAX];
    int r = fe_ws_parse_upgrade(buf, len, x->path, &req, &why);
    if (r == 0)
        return 0;
    if (r < 0) {
        out_append(x, resp, fe_ws_error_response(-r, resp, sizeof(resp)));
        write_out(c, &ignored);
        x->close_sent = true; /* not a WebSocket yet: no close frame */
        snprintf(xp_why, sizeof(xp_why),
                 "WebSocket handshake refused (HTTP %d): %s", -r, why);
        fe_close(c, false, xp_why);
        return -1;
    }
    size_t n = fe_ws_accept_response(&req, resp, sizeof(resp));
    if (n == 0) {
        x->close_sent = true;
        fe_close(c, false, "WebSocket handshake failed (internal error)");
        return -1;
    }
    out_append(x, resp, n);
    x->ws_open = true;
    log_debug("WebSocket upgrade from %s, subprotocol %s.", c->peer,
              req.proto ? req.proto : "none");
    fe_mark_dirty(c);
    return r;
}

/* Keeps p[0..n) (an incomplete frame or upgrade request; inside x->raw
 * when in_raw) in x->raw, which is freed when n is 0. */
static void raw_keep(fe_xport_t *x, const uint8_t *p, size_t n, bool in_raw)
{
    if (n == 0) {
        mem_free(x->raw);
        x->raw = NULL;
        x->raw_len = x->raw_cap = 0;
        return;
    }
    if (in_raw) {
        memmove(x->raw, p, n);
    } else {
        if (x->raw_cap < n) {
            x->raw_cap = n + 2 * FE_XP_RAW_ROOM;
            x->raw = mem_realloc(x->raw, x->raw_cap);
        }
        memcpy(x->raw, p, n);
    }
    x->raw_len = n;
}

/* A client's close frame waits while the packets before it cannot be
 * handled yet: a CONNECT waits for its session, or packets for room.  As
 * a FIN is read only then, the close is answered once fe_resume() has
 * handled them (fe_xp_close_due()). */
static bool close_must_wait(const fe_conn_t *c)
{
    return c->state == C_CONNECTING || (c->paused && c->in_len);
}

/* Answers the client's close frame (code) and closes c.  Returns -1. */
static int ws_close_now(fe_conn_t *c, int code)
{
    const char *ignored;
    ws_close_frame(c->x, code);
    write_out(c, &ignored);
    fe_close(c, false, "WebSocket close from client");
    return -1;
}

/* Decodes the WebSocket stream buf[0..len) (x->raw or xp_rbuf) into
 * c->in and keeps what is left of an incomplete frame in x->raw.
 * Returns 0, or -1 when c was closed. */
static int ws_input(fe_conn_t *c, uint8_t *buf, size_t len)
{
    fe_xport_t *x = c->x;
    size_t pos = 0;
    if (x->close_due)
        return 0; /* nothing may follow a close frame (RFC 6455 5.5.1) */
    if (!x->ws_open) {
        int r = ws_upgrade(c, buf, len);
        if (r < 0)
            return r;
        if (r == 0) {
            raw_keep(x, buf, len, buf == x->raw);
            return 0;
        }
        pos = (size_t)r;
    }
    while (pos < len) {
        size_t used;
        fe_ws_ev_t ev;
        const char *why;
        int r = fe_ws_decode(&x->dec, buf + pos, len - pos, &used, &ev,
                             &why);
        if (r == 0)
            break;
        if (r < 0)
            return ws_fail(c, -r, why);
        pos += used;
        switch (ev.op) {
        case FE_WS_OP_BINARY:
            in_append(c, ev.data, ev.len);
            break;
        case FE_WS_OP_PING:
            /* Only the latest ping is answered (RFC 6455 5.5.3): one
             * pong at most waits, however fast the pings come. */
            memcpy(x->pong, ev.data, ev.len);
            x->pong_len = (uint8_t)ev.len;
            x->pong_due = true;
            fe_mark_dirty(c);
            break;
        case FE_WS_OP_PONG:
            break;
        case FE_WS_OP_CLOSE: {
            /* The client's code is echoed when valid (RFC 6455 7.4). */
            int code = fe_ws_close_reply(ev.data, ev.len);
            if (ev.len == 1 ||
                (ev.len >= 2 && code != (ev.data[0] << 8 | ev.data[1])))
                return ws_fail(c, code,
                               ev.len == 1 ? "close frame of one byte"
                               : code == FE_WS_CLOSE_BAD_DATA
                                   ? "close reason is not UTF-8"
                                   : "invalid close code");
            /* Packets that came before the close count (a DISCONNECT
             * closes cleanly, without the will). */
            if (c->in_len && fe_process_input(c) < 0)
                return -1;
            if (close_must_wait(c)) {
                x->close_due = true;
                x->close_code = (uint16_t)code;
                x->raw_len = 0;
                return 0;
            }
            return ws_close_now(c, code);
        }
        default:
            break;
        }
    }
    raw_keep(x, buf + pos, len - pos, buf == x->raw);
    return 0;
}

int fe_xp_on_read(fe_conn_t *c)
{
    fe_xport_t *x = c->x;
    const char *why = "?";
    if (x->write_wants_read) {
        x->write_wants_read = false;
        fe_mark_dirty(c);
    }
    for (int i = 0; i < FE_XP_READS; i++) {
        uint8_t *dst;
        size_t room;
        if (x->ws && x->raw_len == 0) {
            dst = xp_rbuf;
            room = sizeof(xp_rbuf);
        } else if (x->ws) {
            if (x->raw_cap - x->raw_len < FE_XP_RAW_ROOM) {
                x->raw_cap = x->raw_len + 2 * FE_XP_RAW_ROOM;
                x->raw = mem_realloc(x->raw, x->raw_cap);
            }
            dst = x->raw + x->raw_len;
            room = x->raw_cap - x->raw_len;
        } else {
            if (c->in_len == c->in_cap) {
                c->in_cap *= 2;
                c->in = mem_realloc(c->in, c->in_cap);
            }
            dst = c->in + c->in_len;
            room = c->in_cap - c->in_len;
        }
        ssize_t n = recv_some(c, dst, room, &why);
        if (n < 0) {
            fe_close(c, false, why);
            return -1;
        }
        if (n == 0)
            break;
        fe->proc->bytes_in += (uint64_t)n;
        c->last_rx_ms = fe_clock_ms();
        if (x->ws) {
            int r = dst == xp_rbuf
                        ? ws_input(c, xp_rbuf, (size_t)n)
                        : ws_input(c, x->raw, x->raw_len + (size_t)n);
            if (r < 0)
                return -1;
        } else {
            c->in_len += (size_t)n;
        }
        if (fe_process_input(c) < 0)
            return -1;
        if (c->paused || c->state == C_CONNECTING || !fe_xp_may_read(c))
            break;
    }
    read_update(c);
    fe_xp_kick(c);
    return 0;
}

int fe_xp_close_due(fe_conn_t *c)
{
    fe_xport_t *x = c->x;
    if (!x->close_due || close_must_wait(c))
        return 0;
    return ws_close_now(c, x->close_code);
}

void fe_xp_kick(fe_conn_t *c)
{
    /* Bytes OpenSSL has decrypted already do not make the socket
     * readable: run the read handler for them. */
    if (c->x->ssl && !c->read_off && SSL_pending(c->x->ssl) > 0)
        event_active(c->ev_read, EV_READ, 0);
}

int fe_xp_on_write(fe_conn_t *c)
{
    fe_xport_t *x = c->x;
    if (x->read_wants_write) {
        x->read_wants_write = false;
        read_update(c);
        if (!c->read_off && fe_xp_on_read(c) < 0)
            return -1;
    }
    return fe_xp_flush(c);
}

void fe_xp_free(fe_conn_t *c)
{
    fe_xport_t *x = c->x;
    const char *ignored;
    x->closing = true;
    /* Best effort, without waiting: the close frame and close_notify. */
    if (x->ws && x->ws_open && !x->close_sent)
        ws_close_frame(x, FE_WS_CLOSE_NORMAL);
    if (x->out_off < x->out_len)
        write_out(c, &ignored);
    if (x->ssl) {
        /* No close_notify after a fatal error (OpenSSL's rule). */
        if (x->tls_open && !x->ssl_failed) {
            ERR_clear_error();
            SSL_shutdown(x->ssl);
        }
        ERR_clear_error();
        SSL_free(x->ssl);
    }
    mem_free(x->raw);
    mem_free(x->out);
    mem_free(x);
    c->x = NULL;
}
