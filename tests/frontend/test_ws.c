/*
 * test_ws.c -- unit tests for frontend/fe_ws.c: the WebSocket upgrade
 * request, the accept digest, and the frame codec (fragmentation, masking,
 * control frames, limits), byte by byte where streaming matters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_ws.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static int parse(const char *req, fe_ws_req_t *r, const char **why)
{
    return fe_ws_parse_upgrade((const uint8_t *)req, strlen(req), "/mqtt",
                               r, why);
}

static const char *good_req =
    "GET /mqtt HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Upgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: " KEY "\r\n"
    "Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

static void test_accept_key_rfc_example(void **state)
{
    char out[29];
    assert_int_equal(fe_ws_accept_key(KEY, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_upgrade_ok(void **state)
{
    fe_ws_req_t r;
    const char *why;
    int n = parse(good_req, &r, &why);
    assert_int_equal(n, (int)strlen(good_req));
    assert_string_equal(r.key, KEY);
    assert_string_equal(r.proto, "mqttv3.1"); /* the client's first */

    char out[FE_WS_RESP_MAX];
    size_t len = fe_ws_accept_response(&r, out, sizeof(out));
    assert_true(len > 0);
    out[len] = '\0';
    assert_non_null(strstr(out, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_non_null(strstr(out, "Sec-WebSocket-Accept: "
                                "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_non_null(strstr(out, "Sec-WebSocket-Protocol: mqttv3.1\r\n"));
    assert_string_equal(out + len - 4, "\r\n\r\n");
}

static void test_upgrade_incremental_and_pipelined(void **state)
{
    fe_ws_req_t r;
    const char *why;
    size_t len = strlen(good_req);
    /* every prefix asks for more */
    for (size_t i = 0; i < len; i++)
        assert_int_equal(fe_ws_parse_upgrade((const uint8_t *)good_req, i,
                                             "/mqtt", &r, &why),
                         0);
    /* bytes after the request (a CONNECT frame) are not part of it */
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s\x82\x8c", good_req);
    assert_int_equal(parse(buf, &r, &why), (int)len);
}

static void test_upgrade_variants(void **state)
{
    fe_ws_req_t r;
    const char *why;
    /* no subprotocol header: accepted without one; query string ignored;
     * header names and tokens are case-insensitive */
    const char *req = "GET /mqtt?x=1 HTTP/1.1\r\n"
                      "host: a\r\n"
                      "upgrade: WebSocket\r\n"
                      "connection: upgrade\r\n"
                      "sec-websocket-key: " KEY "\r\n"
                      "sec-websocket-version: 13\r\n\r\n";
    assert_int_equal(parse(req, &r, &why), (int)strlen(req));
    assert_null(r.proto);
    char out[FE_WS_RESP_MAX];
    size_t len = fe_ws_accept_response(&r, out, sizeof(out));
    out[len] = '\0';
    assert_null(strstr(out, "Sec-WebSocket-Protocol"));

    /* another path */
    const char *p2 = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n";
    assert_int_equal(fe_ws_parse_upgrade((const uint8_t *)p2, strlen(p2),
                                         "/ws", &r, &why),
                     (int)strlen(p2));
    assert_int_equal(parse(p2, &r, &why), -404);

    /* the absolute form (RFC 7230 5.3.2): scheme and authority dropped */
    static const char *const absolute[][2] = {
        {"http://localhost:8080/mqtt", "/mqtt"},
        {"HTTPS://h/mqtt?q=/x", "/mqtt"},
        {"http://h/other", NULL},
        {"http://h", NULL},
        {"ftp://h/mqtt", NULL},
    };
    for (size_t i = 0; i < sizeof(absolute) / sizeof(absolute[0]); i++) {
        char req2[512];
        snprintf(req2, sizeof(req2),
                 "GET %s HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n", absolute[i][0]);
        int n = parse(req2, &r, &why);
        if (absolute[i][1] ? n != (int)strlen(req2) : n != -404)
            fail_msg("%s: got %d", absolute[i][0], n);
    }
    const char *root = "GET http://h HTTP/1.1\r\nHost: a\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: " KEY "\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n";
    assert_int_equal(fe_ws_parse_upgrade((const uint8_t *)root, strlen(root),
                                         "/", &r, &why),
                     (int)strlen(root));
}

static void expect_refused(const char *req, int status, const char *what)
{
    fe_ws_req_t r;
    const char *why = NULL;
    int n = parse(req, &r, &why);
    if (n != -status)
        fail_msg("%s: got %d, want %d", what, n, -status);
    assert_non_null(why);
}

static void test_upgrade_refused(void **state)
{
    /* garbage: refused at once, without waiting for a blank line */
    expect_refused("\x10\x0c\x00\x04MQTT", 400, "MQTT bytes");
    expect_refused("\x16\x03\x01\x02\x00", 400, "a TLS ClientHello");
    expect_refused(" GET", 400, "leading space");
    expect_refused("GET /mqtt\r\n\r\n", 400, "HTTP/0.9");
    expect_refused("GET /mqtt HTTP/1.0\r\nHost: a\r\n\r\n", 400, "1.0");
    expect_refused("GET /mqtt FTP/1.1\r\n\r\n", 400, "not HTTP");
    expect_refused("POST /mqtt HTTP/1.1\r\nHost: a\r\n\r\n", 405, "POST");
    expect_refused("GET /other HTTP/1.1\r\nHost: a\r\nUpgrade: websocket"
                   "\r\nConnection: Upgrade\r\n\r\n",
                   404, "wrong path");
    expect_refused("GET /mqtt HTTP/1.1\r\nHost: a\r\n\r\n", 426,
                   "plain HTTP");
    expect_refused("GET /mqtt HTTP/1.1\r\nHost: a\r\nbad line\r\n\r\n", 400,
                   "header without colon");
    expect_refused("GET /mqtt HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400,
                   "folded header");
    char base[1024];
    const char *fmt = "GET /mqtt HTTP/1.1\r\n%sUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\n%s%s%s\r\n";
    const char *host = "Host: a\r\n";
    const char *key = "Sec-WebSocket-Key: " KEY "\r\n";
    const char *ver = "Sec-WebSocket-Version: 13\r\n";
    snprintf(base, sizeof(base), fmt, "", key, ver, "");
    expect_refused(base, 400, "no Host");
    snprintf(base, sizeof(base), fmt, host, "", ver, "");
    expect_refused(base, 400, "no key");
    snprintf(base, sizeof(base), fmt, host,
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n", ver, "");
    expect_refused(base, 400, "key without padding");
    snprintf(base, sizeof(base), fmt, host,
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n", ver, "");
    expect_refused(base, 400, "key with a bad character");
    snprintf(base, sizeof(base), fmt, host,
             "Sec-WebSocket-Key: c2hvcnQ=\r\n", ver, "");
    expect_refused(base, 400, "key of 5 bytes");
    snprintf(base, sizeof(base), fmt, host, key, "", "");
    expect_refused(base, 426, "no version");
    snprintf(base, sizeof(base), fmt, host, key,
             "Sec-WebSocket-Version: 8\r\n", "");
    expect_refused(base, 426, "version 8");
    snprintf(base, sizeof(base), fmt, host, key, ver,
             "Sec-WebSocket-Protocol: chat, superchat\r\n");
    expect_refused(base, 400, "no mqtt subprotocol");
    snprintf(base, sizeof(base), fmt, host, key, ver,
             "Sec-WebSocket-Protocol: mqtt5\r\n");
    expect_refused(base, 400, "mqtt5 is not mqtt");
}

static void test_upgrade_header_limit(void **state)
{
    fe_ws_req_t r;
    const char *why;
    size_t n = FE_WS_HDR_MAX + 100;
    char *big = malloc(n + 1);
    strcpy(big, "GET /mqtt HTTP/1.1\r\nHost: a\r\nX-Pad: ");
    size_t l = strlen(big);
    memset(big + l, 'a', n - l);
    big[n] = '\0';
    /* no end of headers within the limit */
    assert_int_equal(fe_ws_parse_upgrade((const uint8_t *)big,
                                         FE_WS_HDR_MAX - 1, "/mqtt", &r,
                                         &why),
                     0);
    assert_int_equal(fe_ws_parse_upgrade((const uint8_t *)big, n, "/mqtt",
                                         &r, &why),
                     -431);
    /* complete, but too long */
    memcpy(big + n - 4, "\r\n\r\n", 4);
    assert_int_equal(fe_ws_parse_upgrade((const uint8_t *)big, n, "/mqtt",
                                         &r, &why),
                     -431);
    free(big);
}

static void test_error_responses(void **state)
{
    char out[FE_WS_RESP_MAX];
    int codes[] = {400, 404, 405, 426, 431};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t n = fe_ws_error_response(codes[i], out, sizeof(out));
        assert_true(n > 0 && n < sizeof(out));
        out[n] = '\0';
        char first[32];
        snprintf(first, sizeof(first), "HTTP/1.1 %d ", codes[i]);
        assert_memory_equal(out, first, strlen(first));
        assert_non_null(strstr(out, "Connection: close\r\n"));
        /* Content-Length matches the body */
        const char *body = strstr(out, "\r\n\r\n") + 4;
        char cl[48];
        snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
        assert_non_null(strstr(out, cl));
    }
}

/* ---- frames ---- */

/* A masked client frame: header, mask, masked payload.  Returns its
 * length. */
static size_t client_frame(uint8_t *out, uint8_t b0, const void *payload,
                           size_t len)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = 0;
    out[h++] = b0;
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    memcpy(out + h, mask, 4);
    h += 4;
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[h + i] = p[i] ^ mask[i & 3];
    return h + len;
}

/* Feeds buf to the decoder in pieces of at most step bytes (as reads
 * would deliver them) and collects message bytes into msg and control
 * frames as "op:len" into ctl.  Returns the last result (1 if all was
 * consumed, negative on error). */
static int feed(fe_ws_dec_t *d, uint8_t *buf, size_t len, size_t step,
                uint8_t *msg, size_t *msg_len, char *ctl)
{
    size_t avail = 0, pos = 0;
    *msg_len = 0;
    ctl[0] = '\0';
    while (pos < len) {
        avail = avail + step > len ? len : avail + step;
        for (;;) {
            size_t used;
            fe_ws_ev_t ev;
            const char *why;
            int r = fe_ws_decode(d, buf + pos, avail - pos, &used, &ev,
                                 &why);
            if (r < 0)
                return r;
            if (r == 0) {
                assert_int_equal(used, 0);
                break;
            }
            pos += used;
            if (ev.op == FE_WS_OP_BINARY) {
                memcpy(msg + *msg_len, ev.data, ev.len);
                *msg_len += ev.len;
            } else {
                sprintf(ctl + strlen(ctl), "%d:%zu ", ev.op, ev.len);
            }
            if (pos == avail)
                break;
        }
        if (avail == len && pos < len)
            return 0;
    }
    return 1;
}

static void test_frames_sizes_and_steps(void **state)
{
    size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    static uint8_t payload[70000], buf[70100], msg[70000];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t steps[] = {1, 3, 1000, 100000};
        for (size_t k = 0; k < 4; k++) {
            if (sizes[s] > 1000 && steps[k] == 1)
                continue;
            size_t n = client_frame(buf, 0x82, payload, sizes[s]);
            fe_ws_dec_t d = {.max_frame = 100000};
            size_t ml;
            char ctl[64];
            assert_int_equal(feed(&d, buf, n, steps[k], msg, &ml, ctl), 1);
            assert_int_equal(ml, sizes[s]);
            assert_memory_equal(msg, payload, ml);
            assert_string_equal(ctl, "");
            assert_false(d.in_data);
            assert_false(d.in_message);
        }
    }
}

/* Several MQTT packets in one frame, one packet over several fragments,
 * pings between fragments. */
static void test_frames_fragmentation_and_control(void **state)
{
    uint8_t orig[512], buf[512], msg[256];
    size_t n = 0;
    n += client_frame(orig + n, 0x02, "ab", 2);         /* BINARY, no FIN */
    n += client_frame(orig + n, 0x89, "hi", 2);         /* PING between */
    n += client_frame(orig + n, 0x00, "cde", 3);        /* CONT, no FIN */
    n += client_frame(orig + n, 0x80, "f", 1);          /* CONT, FIN */
    n += client_frame(orig + n, 0x8a, "", 0);           /* PONG */
    n += client_frame(orig + n, 0x82, "ghij", 4);       /* whole message */
    n += client_frame(orig + n, 0x88, "\x03\xe8", 2);   /* CLOSE 1000 */
    for (size_t step = 1; step <= n; step++) {
        fe_ws_dec_t d = {.max_frame = 1000};
        memcpy(buf, orig, n); /* decoding unmasks in place */
        size_t ml;
        char ctl[64];
        assert_int_equal(feed(&d, buf, n, step, msg, &ml, ctl), 1);
        assert_int_equal(ml, 10);
        assert_memory_equal(msg, "abcdefghij", 10);
        assert_string_equal(ctl, "9:2 10:0 8:2 ");
    }
    /* the control payload is unmasked */
    fe_ws_dec_t d = {.max_frame = 1000};
    size_t m = client_frame(buf, 0x89, "ping!", 5), used;
    fe_ws_ev_t ev;
    const char *why;
    assert_int_equal(fe_ws_decode(&d, buf, m, &used, &ev, &why), 1);
    assert_int_equal(ev.op, FE_WS_OP_PING);
    assert_int_equal(used, m);
    assert_memory_equal(ev.data, "ping!", 5);
}

static int decode_one(uint8_t *buf, size_t n, uint64_t max, const char **why)
{
    fe_ws_dec_t d = {.max_frame = max};
    size_t used;
    fe_ws_ev_t ev;
    return fe_ws_decode(&d, buf, n, &used, &ev, why);
}

static void test_frames_refused(void **state)
{
    uint8_t buf[512];
    const char *why;
    size_t n;

    /* unmasked client frame */
    uint8_t unmasked[] = {0x82, 0x02, 'a', 'b'};
    assert_int_equal(decode_one(unmasked, 4, 1000, &why),
                     -FE_WS_CLOSE_PROTOCOL);
    assert_non_null(strstr(why, "unmasked"));
    /* reserved bits */
    n = client_frame(buf, 0xc2, "a", 1);
    assert_int_equal(decode_one(buf, n, 1000, &why), -FE_WS_CLOSE_PROTOCOL);
    /* text frame */
    n = client_frame(buf, 0x81, "a", 1);
    assert_int_equal(decode_one(buf, n, 1000, &why),
                     -FE_WS_CLOSE_UNSUPPORTED);
    /* unknown opcodes */
    n = client_frame(buf, 0x83, "a", 1);
    assert_int_equal(decode_one(buf, n, 1000, &why), -FE_WS_CLOSE_PROTOCOL);
    n = client_frame(buf, 0x8b, "a", 1);
    assert_int_equal(decode_one(buf, n, 1000, &why), -FE_WS_CLOSE_PROTOCOL);
    /* continuation without a message */
    n = client_frame(buf, 0x80, "a", 1);
    assert_int_equal(decode_one(buf, n, 1000, &why), -FE_WS_CLOSE_PROTOCOL);
    /* fragmented control frame, control frame over 125 bytes */
    n = client_frame(buf, 0x09, "a", 1);
    assert_int_equal(decode_one(buf, n, 1000, &why), -FE_WS_CLOSE_PROTOCOL);
    uint8_t big[200] = {0};
    n = client_frame(buf, 0x89, big, 126);
    assert_int_equal(decode_one(buf, n, 1000, &why), -FE_WS_CLOSE_PROTOCOL);
    /* over the limit: refused from the header alone */
    n = client_frame(buf, 0x82, big, 200);
    assert_int_equal(decode_one(buf, 4, 199, &why), -FE_WS_CLOSE_TOO_BIG);
    assert_int_equal(decode_one(buf, n, 200, &why), 1);
    uint8_t huge[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(decode_one(huge, sizeof(huge), 1000, &why),
                     -FE_WS_CLOSE_PROTOCOL);
    uint8_t huge2[] = {0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(decode_one(huge2, sizeof(huge2), 1000, &why),
                     -FE_WS_CLOSE_TOO_BIG);
    /* a new message inside a fragmented one */
    fe_ws_dec_t d = {.max_frame = 1000};
    size_t used;
    fe_ws_ev_t ev;
    n = client_frame(buf, 0x02, "a", 1);
    assert_int_equal(fe_ws_decode(&d, buf, n, &used, &ev, &why), 1);
    n = client_frame(buf, 0x82, "b", 1);
    assert_int_equal(fe_ws_decode(&d, buf, n, &used, &ev, &why),
                     -FE_WS_CLOSE_PROTOCOL);
}

static void test_server_frame_header(void **state)
{
    uint8_t h[FE_WS_FRAME_HDR_MAX];
    assert_int_equal(fe_ws_frame_header(h, FE_WS_OP_BINARY, 5), 2);
    assert_int_equal(h[0], 0x82);
    assert_int_equal(h[1], 5);
    assert_int_equal(fe_ws_frame_header(h, FE_WS_OP_PONG, 125), 2);
    assert_int_equal(h[0], 0x8a);
    assert_int_equal(h[1], 125);
    assert_int_equal(fe_ws_frame_header(h, FE_WS_OP_BINARY, 126), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[2], 0);
    assert_int_equal(h[3], 126);
    assert_int_equal(fe_ws_frame_header(h, FE_WS_OP_BINARY, 65535), 4);
    assert_int_equal(fe_ws_frame_header(h, FE_WS_OP_BINARY, 65536), 10);
    assert_int_equal(h[1], 127);
    uint8_t want[8] = {0, 0, 0, 0, 0, 1, 0, 0};
    assert_memory_equal(h + 2, want, 8);
}

static int close_reply(const char *p, size_t n)
{
    return fe_ws_close_reply((const uint8_t *)p, n);
}

/* A close frame's code is echoed only when a peer may send it; a bad
 * code gets 1002 and a reason that is not UTF-8 gets 1007. */
static void test_close_reply(void **state)
{
    static const int echoed[] = {1000, 1001, 1002, 1003, 1007, 1008,
                                 1009, 1010, 1011, 3000, 3999, 4000,
                                 4999};
    static const int refused[] = {0,    999,  1004, 1005, 1006, 1012,
                                  1015, 1016, 2000, 2999, 5000, 65535};
    char b[8];
    assert_int_equal(close_reply("", 0), 0);
    assert_int_equal(close_reply("\x03", 1), FE_WS_CLOSE_PROTOCOL);
    for (size_t i = 0; i < sizeof(echoed) / sizeof(echoed[0]); i++) {
        b[0] = (char)(echoed[i] >> 8);
        b[1] = (char)echoed[i];
        assert_int_equal(close_reply(b, 2), echoed[i]);
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        b[0] = (char)(refused[i] >> 8);
        b[1] = (char)refused[i];
        if (close_reply(b, 2) != FE_WS_CLOSE_PROTOCOL)
            fail_msg("close code %d echoed", refused[i]);
    }
    /* reasons: UTF-8 (1-4 byte forms) or 1007 */
    assert_int_equal(close_reply("\x03\xe8" "bye", 5), 1000);
    assert_int_equal(close_reply("\x03\xe8" "\xc3\xa9\xe2\x82\xac"
                                 "\xf0\x9f\x98\x80", 11), 1000);
    static const char *const bad[] = {
        "\xff",             /* never in UTF-8 */
        "\xc3",             /* cut short */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "a\x80",            /* lone continuation byte */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char f[16] = "\x03\xe8";
        size_t n = strlen(bad[i]);
        memcpy(f + 2, bad[i], n);
        if (close_reply(f, n + 2) != FE_WS_CLOSE_BAD_DATA)
            fail_msg("reason %zu accepted", i);
    }
}

/* Bytes above 0x7f in the HTTP version are refused, not passed to
 * isdigit() as negative values. */
static void test_upgrade_high_bytes(void **state)
{
    fe_ws_req_t r;
    const char *why;
    assert_int_equal(parse("GET /mqtt HTTP/1.\xb9\r\nHost: x\r\n\r\n",
                           &r, &why),
                     -400);
    assert_string_equal(why, "not HTTP/1.x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_rfc_example),
        cmocka_unit_test(test_upgrade_ok),
        cmocka_unit_test(test_upgrade_incremental_and_pipelined),
        cmocka_unit_test(test_upgrade_variants),
        cmocka_unit_test(test_upgrade_refused),
        cmocka_unit_test(test_upgrade_header_limit),
        cmocka_unit_test(test_error_responses),
        cmocka_unit_test(test_frames_sizes_and_steps),
        cmocka_unit_test(test_frames_fragmentation_and_control),
        cmocka_unit_test(test_frames_refused),
        cmocka_unit_test(test_server_frame_header),
        cmocka_unit_test(test_close_reply),
        cmocka_unit_test(test_upgrade_high_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
