/*
 * fe_ws.c -- WebSocket (RFC 6455) for MQTT over byte buffers: the HTTP/1.1
 * upgrade request and its answers, the Sec-WebSocket-Accept digest, and
 * the frame codec (client frames in, server frames out).  Nothing here
 * touches a socket or the frontend's state.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fe_ws.h"

#define FE_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- the upgrade request ---- */

/* Case-insensitive: is tok one of the comma-separated tokens of v[0..n)? */
static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return true;
    }
    return false;
}

/* A Sec-WebSocket-Key: base64 of 16 bytes, i.e. 22 characters and "==". */
static bool key_valid(const char *v, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "abcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n != 24 || v[22] != '=' || v[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (v[i] == '\0' || strchr(b64, v[i]) == NULL)
            return false;
    return true;
}

/* The first subprotocol of the client's list that we speak, or NULL. */
static const char *pick_proto(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - s == 4 && strncmp(v + s, "mqtt", 4) == 0)
            return "mqtt";
        if (i - s == 8 && strncmp(v + s, "mqttv3.1", 8) == 0)
            return "mqttv3.1";
    }
    return NULL;
}

static bool is_tchar(int ch)
{
    return ch > 0x20 && ch < 0x7f && strchr("()<>@,;:\\\"/[]?={}", ch) == NULL;
}

#define REFUSE(status, text)                                                \
    do {                                                                    \
        *why = (text);                                                      \
        return -(status);                                                   \
    } while (0)

int fe_ws_parse_upgrade(const uint8_t *buf, size_t len, const char *path,
                        fe_ws_req_t *req, const char **why)
{
    const char *s = (const char *)buf;
    memset(req, 0, sizeof(*req));
    *why = NULL;

    /* Garbage is refused as soon as it shows, not after 8 KiB. */
    size_t i = 0;
    while (i < len && is_tchar((unsigned char)s[i]))
        i++;
    if (i < len && (s[i] != ' ' || i == 0))
        REFUSE(400, "not an HTTP request");

    const char *end = memmem(s, len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (len >= FE_WS_HDR_MAX)
            REFUSE(431, "request headers too large");
        return 0;
    }
    size_t total = (size_t)(end - s) + 4;
    if (total > FE_WS_HDR_MAX)
        REFUSE(431, "request headers too large");
    if (memchr(s, '\0', total) != NULL)
        REFUSE(400, "NUL byte in the request");

    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    const char *line_end = memmem(s, total, "\r\n", 2);
    const char *sp1 = memchr(s, ' ', (size_t)(line_end - s));
    if (sp1 == NULL)
        REFUSE(400, "bad request line");
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(line_end - target));
    if (sp2 == NULL || sp2 == target)
        REFUSE(400, "bad request line");
    const char *ver = sp2 + 1;
    size_t vl = (size_t)(line_end - ver);
    if (vl != 8 || strncmp(ver, "HTTP/1.", 7) != 0 ||
        !isdigit((unsigned char)ver[7]))
        REFUSE(400, "not HTTP/1.x");
    if (ver[7] == '0')
        REFUSE(400, "HTTP/1.0 cannot upgrade to WebSocket");
    if ((size_t)(sp1 - s) != 3 || strncmp(s, "GET", 3) != 0)
        REFUSE(405, "method is not GET");
    size_t tl = (size_t)(sp2 - target);
    /* The absolute form (RFC 7230 5.3.2, RFC 6455 4.2.1): the path is what
     * follows the scheme and the authority. */
    for (size_t k = 0; k < 2; k++) {
        static const char *const schemes[] = {"http://", "https://"};
        size_t sl = strlen(schemes[k]);
        if (tl > sl && strncasecmp(target, schemes[k], sl) == 0) {
            const char *slash = memchr(target + sl, '/', tl - sl);
            if (slash == NULL) {
                target = "/"; /* no path: the root (RFC 7230 5.3.1) */
                tl = 1;
            } else {
                tl -= (size_t)(slash - target);
                target = slash;
            }
            break;
        }
    }
    const char *q = memchr(target, '?', tl);
    if (q != NULL)
        tl = (size_t)(q - target);
    if (tl != strlen(path) || strncmp(target, path, tl) != 0)
        REFUSE(404, "wrong path");

    bool host = false, upgrade = false, connection = false, version = false;
    bool key = false, proto_hdr = false;
    const char *versions = NULL;
    for (const char *h = line_end + 2; h < end + 2;) {
        const char *e = memmem(h, (size_t)(end + 2 - h), "\r\n", 2);
        if (h[0] == ' ' || h[0] == '\t')
            REFUSE(400, "folded header line");
        const char *colon = memchr(h, ':', (size_t)(e - h));
        if (colon == NULL || colon == h)
            REFUSE(400, "bad header line");
        size_t nl = (size_t)(colon - h);
        for (size_t k = 0; k < nl; k++)
            if (!is_tchar((unsigned char)h[k]))
                REFUSE(400, "bad header name");
        const char *v = colon + 1;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = e;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t n = (size_t)(ve - v);
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(h, name, nl) == 0)
        if (IS("Host")) {
            host = true;
        } else if (IS("Upgrade")) {
            upgrade = upgrade || has_token(v, n, "websocket");
        } else if (IS("Connection")) {
            connection = connection || has_token(v, n, "upgrade");
        } else if (IS("Sec-WebSocket-Version")) {
            version = n == 2 && strncmp(v, "13", 2) == 0;
            versions = v;
        } else if (IS("Sec-WebSocket-Key")) {
            if (key || !key_valid(v, n))
                REFUSE(400, "bad Sec-WebSocket-Key");
            memcpy(req->key, v, 24);
            req->key[24] = '\0';
            key = true;
        } else if (IS("Sec-WebSocket-Protocol")) {
            proto_hdr = true;
            if (req->proto == NULL)
                req->proto = pick_proto(v, n);
        }
#undef IS
        h = e + 2;
    }
    if (!upgrade || !connection)
        REFUSE(426, "plain HTTP request (no WebSocket upgrade)");
    if (!host)
        REFUSE(400, "no Host header");
    if (!version)
        REFUSE(426, versions ? "unsupported Sec-WebSocket-Version"
                             : "no Sec-WebSocket-Version");
    if (!key)
        REFUSE(400, "no Sec-WebSocket-Key");
    if (proto_hdr && req->proto == NULL)
        REFUSE(400, "no supported subprotocol (mqtt, mqttv3.1) offered");
    return (int)total;
}

#undef REFUSE

int fe_ws_accept_key(const char *key, char out[29])
{
    char in[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(in, sizeof(in), "%s%s", key, FE_WS_GUID);
    if (n < 0 || (size_t)n >= sizeof(in))
        return -1;
    if (EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 ||
        mdlen != 20)
        return -1;
    if (EVP_EncodeBlock((unsigned char *)out, md, 20) != 28)
        return -1;
    return 0;
}

size_t fe_ws_accept_response(const fe_ws_req_t *req, char *out, size_t n)
{
    char acc[29];
    if (fe_ws_accept_key(req->key, acc) < 0)
        return 0;
    int r = snprintf(out, n,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "%s%s%s"
                     "\r\n",
                     acc, req->proto ? "Sec-WebSocket-Protocol: " : "",
                     req->proto ? req->proto : "", req->proto ? "\r\n" : "");
    return r > 0 && (size_t)r < n ? (size_t)r : 0;
}

size_t fe_ws_error_response(int status, char *out, size_t n)
{
    const char *reason, *body, *extra = "";
    switch (status) {
    case 404:
        reason = "Not Found";
        body = "No MQTT WebSocket endpoint at this path.\n";
        break;
    case 405:
        reason = "Method Not Allowed";
        body = "Only GET with a WebSocket upgrade is served here.\n";
        extra = "Allow: GET\r\n";
        break;
    case 426:
        reason = "Upgrade Required";
        body = "This is an MQTT over WebSocket endpoint.\n";
        extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
        break;
    case 431:
        reason = "Request Header Fields Too Large";
        body = "Request headers too large.\n";
        break;
    default:
        status = 400;
        reason = "Bad Request";
        body = "Bad WebSocket upgrade request.\n";
        break;
    }
    int r = snprintf(out, n,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n"
                     "%s"
                     "Connection: close\r\n"
                     "\r\n%s",
                     status, reason, strlen(body), extra, body);
    return r > 0 && (size_t)r < n ? (size_t)r : 0;
}

/* ---- frames ---- */

size_t fe_ws_frame_header(uint8_t *out, int op, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (op & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

static void unmask(uint8_t *p, size_t n, const uint8_t mask[4],
                   uint32_t phase)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= mask[(phase + i) & 3];
}

#define FAIL(code, text)                                                    \
    do {                                                                    \
        *why = (text);                                                      \
        return -(code);                                                     \
    } while (0)

int fe_ws_decode(fe_ws_dec_t *d, uint8_t *buf, size_t len, size_t *used,
                 fe_ws_ev_t *ev, const char **why)
{
    *used = 0;
    *why = NULL;
    if (d->in_data) {
        /* More of a data frame's payload. */
        if (len == 0)
            return 0;
        size_t n = len < d->left ? len : (size_t)d->left;
        unmask(buf, n, d->mask, d->phase);
        d->phase = (uint32_t)((d->phase + n) & 3);
        d->left -= n;
        d->in_data = d->left > 0;
        ev->op = FE_WS_OP_BINARY;
        ev->data = buf;
        ev->len = n;
        *used = n;
        return 1;
    }
    if (len < 2)
        return 0;
    bool fin = (buf[0] & 0x80) != 0;
    int op = buf[0] & 0x0f;
    if (buf[0] & 0x70)
        FAIL(FE_WS_CLOSE_PROTOCOL, "reserved bits set (no extension)");
    if (!(buf[1] & 0x80))
        FAIL(FE_WS_CLOSE_PROTOCOL, "unmasked frame from the client");
    switch (op) {
    case FE_WS_OP_CONT:
        if (!d->in_message)
            FAIL(FE_WS_CLOSE_PROTOCOL, "continuation frame without a "
                                       "message");
        break;
    case FE_WS_OP_BINARY:
        if (d->in_message)
            FAIL(FE_WS_CLOSE_PROTOCOL, "new message before the last "
                                       "fragment of the previous one");
        break;
    case FE_WS_OP_TEXT:
        FAIL(FE_WS_CLOSE_UNSUPPORTED, "text frame (MQTT is sent in "
                                      "binary frames)");
    case FE_WS_OP_CLOSE:
    case FE_WS_OP_PING:
    case FE_WS_OP_PONG:
        if (!fin)
            FAIL(FE_WS_CLOSE_PROTOCOL, "fragmented control frame");
        if ((buf[1] & 0x7f) > 125)
            FAIL(FE_WS_CLOSE_PROTOCOL, "control frame over 125 bytes");
        break;
    default:
        FAIL(FE_WS_CLOSE_PROTOCOL, "unknown opcode");
    }
    size_t hl = 2;
    uint64_t plen = buf[1] & 0x7f;
    if (plen == 126) {
        hl = 4;
        if (len < hl)
            return 0;
        plen = (uint64_t)buf[2] << 8 | buf[3];
    } else if (plen == 127) {
        hl = 10;
        if (len < hl)
            return 0;
        if (buf[2] & 0x80)
            FAIL(FE_WS_CLOSE_PROTOCOL, "frame length with the top bit set");
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | buf[2 + i];
    }
    if (op < 8 && plen > d->max_frame)
        FAIL(FE_WS_CLOSE_TOO_BIG, "frame larger than "
                                  "websockets_max_frame_size");
    if (len < hl + 4)
        return 0;
    const uint8_t *mask = buf + hl;
    hl += 4;
    if (op >= 8) {
        /* A control frame is handled whole. */
        if (len < hl + plen)
            return 0;
        unmask(buf + hl, (size_t)plen, mask, 0);
        ev->op = op;
        ev->data = buf + hl;
        ev->len = (size_t)plen;
        *used = hl + (size_t)plen;
        return 1;
    }
    /* A data frame: its payload is handed on as it arrives. */
    memcpy(d->mask, mask, 4);
    d->phase = 0;
    d->left = plen;
    d->in_message = !fin;
    size_t n = len - hl < plen ? len - hl : (size_t)plen;
    unmask(buf + hl, n, d->mask, 0);
    d->phase = (uint32_t)(n & 3);
    d->left -= n;
    d->in_data = d->left > 0;
    ev->op = FE_WS_OP_BINARY;
    ev->data = buf + hl;
    ev->len = n;
    *used = hl + n;
    return 1;
}

#undef FAIL

/* ---- close frames ---- */

/* Is p[0..n) well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF)? */
static bool utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        size_t k;
        uint32_t cp, min;
        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xe0) == 0xc0) {
            k = 1, cp = b & 0x1f, min = 0x80;
        } else if ((b & 0xf0) == 0xe0) {
            k = 2, cp = b & 0x0f, min = 0x800;
        } else if ((b & 0xf8) == 0xf0) {
            k = 3, cp = b & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

int fe_ws_close_reply(const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n == 1)
        return FE_WS_CLOSE_PROTOCOL;
    int code = p[0] << 8 | p[1];
    bool known = (code >= 1000 && code <= 1003) ||
                 (code >= 1007 && code <= 1011) ||
                 (code >= 3000 && code <= 4999);
    if (!known)
        return FE_WS_CLOSE_PROTOCOL;
    if (!utf8_valid(p + 2, n - 2))
        return FE_WS_CLOSE_BAD_DATA;
    return code;
}
