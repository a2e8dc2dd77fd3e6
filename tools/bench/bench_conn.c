/*
 * bench_conn.c -- socket I/O of one ringmq-bench connection: non-blocking
 * connect, an output buffer written when the event loop flushes, reads
 * split into whole MQTT packets handed to bench_run.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench_run.h"
#include "mem.h"
#include "mqtt.h"

#define BENCH_READ_CHUNK (256u * 1024)
/* Largest packet accepted from the broker. */
#define BENCH_IN_MAX (BENCH_PAYLOAD_MAX + 65536u)
/* A partial packet buffer larger than this is freed once empty. */
#define BENCH_RBUF_KEEP (64u * 1024)

size_t
bench_conn_backlog(const bench_conn_t *c)
{
    return c->wlen - c->woff;
}

static void
bench_conn_arm(bench_ctx_t *x, bench_conn_t *c, bool out)
{
    struct epoll_event ev;

    if (c->fd < 0 || c->out_armed == out) {
        return;
    }
    ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(x->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        fprintf(stderr, "ringmq-bench: epoll_ctl(MOD) failed: %s\n",
                strerror(errno));
        return;
    }
    c->out_armed = out;
}

void
bench_conn_close(bench_ctx_t *x, bench_conn_t *c, int state)
{
    if (c->fd >= 0) {
        /* close() removes the descriptor from the epoll set. */
        close(c->fd);
        c->fd = -1;
        x->nopen--;
    }
    c->state = state;
    c->out_armed = false;
    c->woff = 0;
    c->wlen = 0;
    c->rlen = 0;
}

/* Closes c on an error and tells the run. */
static void
bench_conn_fail(bench_ctx_t *x, bench_conn_t *c, const char *why,
                uint64_t now)
{
    bench_conn_close(x, c, BC_FAILED);
    bench_run_on_close(x, c, false, why, now);
}

int
bench_conn_start(bench_ctx_t *x, bench_conn_t *c, uint64_t now)
{
    struct epoll_event ev;
    char why[128];
    int one = 1;
    int fd;

    c->t_start = now;
    c->t_state = now;
    c->t_last_send = now;
    c->recv_max = 65535;
    c->woff = c->wlen = c->rlen = 0;
    fd = socket(x->cfg->addr.ss_family,
                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, sizeof(why), "socket() failed: %s", strerror(errno));
        c->fd = -1;
        c->state = BC_FAILED;
        bench_run_on_close(x, c, false, why, now);
        return BENCH_ERR;
    }
    c->fd = fd;
    x->nopen++;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(x->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        snprintf(why, sizeof(why), "epoll_ctl(ADD) failed: %s",
                 strerror(errno));
        bench_conn_fail(x, c, why, now);
        return BENCH_ERR;
    }
    c->out_armed = true;
    c->state = BC_CONNECTING;
    if (connect(fd, (const struct sockaddr *) &x->cfg->addr,
                x->cfg->addrlen) < 0
        && errno != EINPROGRESS) {
        snprintf(why, sizeof(why), "connect() failed: %s", strerror(errno));
        bench_conn_fail(x, c, why, now);
        return BENCH_ERR;
    }
    /* Completion (even an immediate one) is reported as EPOLLOUT. */
    return BENCH_OK;
}

uint8_t *
bench_conn_reserve(bench_conn_t *c, size_t n)
{
    if (c->wcap - c->wlen < n) {
        if (c->woff > 0) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wcap - c->wlen < n) {
            size_t cap = c->wcap ? c->wcap : 1024;

            while (cap - c->wlen < n) {
                cap *= 2;
            }
            c->wbuf = mem_realloc(c->wbuf, cap);
            c->wcap = cap;
        }
    }
    return c->wbuf + c->wlen;
}

void
bench_conn_commit(bench_ctx_t *x, bench_conn_t *c, size_t n, uint64_t now)
{
    c->wlen += n;
    c->t_last_send = now;
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = x->dirty;
        x->dirty = c;
    }
}

void
bench_conn_send(bench_ctx_t *x, bench_conn_t *c, const void *p, size_t n,
                uint64_t now)
{
    memcpy(bench_conn_reserve(c, n), p, n);
    bench_conn_commit(x, c, n, now);
}

/* Writes c's output.  Returns BENCH_OK, or BENCH_ERR when c failed. */
static int
bench_conn_flush(bench_ctx_t *x, bench_conn_t *c)
{
    bool was_backlogged = c->out_armed;

    if (c->fd < 0 || c->state == BC_CONNECTING) {
        return BENCH_OK;
    }
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
                         MSG_NOSIGNAL);

        if (n > 0) {
            c->woff += (size_t) n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            bench_conn_arm(x, c, true);
            return BENCH_OK;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        {
            char why[128];

            snprintf(why, sizeof(why), "send() failed: %s", strerror(errno));
            bench_conn_fail(x, c, why, bench_now_ns());
        }
        return BENCH_ERR;
    }
    c->woff = 0;
    c->wlen = 0;
    bench_conn_arm(x, c, false);
    if (was_backlogged) {
        bench_run_on_drained(x, c);
    }
    return BENCH_OK;
}

void
bench_conn_flush_all(bench_ctx_t *x)
{
    while (x->dirty != NULL) {
        bench_conn_t *c = x->dirty;

        x->dirty = c->next_dirty;
        c->dirty = false;
        c->next_dirty = NULL;
        (void) bench_conn_flush(x, c);
    }
}

/* Splits buf[0..len) into packets; returns the bytes consumed, or -1 when
 * c was closed. */
static ssize_t
bench_conn_parse(bench_ctx_t *x, bench_conn_t *c, const uint8_t *buf,
                 size_t len, uint64_t now)
{
    size_t off = 0;

    while (off < len) {
        mqtt_fixed_t fh;
        bench_pkt_t pkt;
        const char *why = NULL;
        char msg[160];
        int rc;

        rc = mqtt_fixed_header(buf + off, len - off, &fh, &why);
        if (rc == MQTT_AGAIN) {
            break;
        }
        if (rc != MQTT_OK || fh.remaining > BENCH_IN_MAX) {
            x->res->protocol_errors++;
            snprintf(msg, sizeof(msg), "bad packet from the broker: %s",
                     rc != MQTT_OK && why ? why : "too large");
            bench_conn_fail(x, c, msg, now);
            return -1;
        }
        if (len - off < fh.hdr_len + (size_t) fh.remaining) {
            break;
        }
        if (bench_wire_parse(x->cfg->version, buf[off], buf + off + fh.hdr_len,
                             fh.remaining, &pkt, &why) < 0) {
            x->res->protocol_errors++;
            snprintf(msg, sizeof(msg), "bad %s from the broker: %s",
                     bench_wire_name(buf[off] >> 4), why);
            bench_conn_fail(x, c, msg, now);
            return -1;
        }
        if (bench_run_on_packet(x, c, &pkt, now) < 0) {
            return -1;
        }
        off += fh.hdr_len + (size_t) fh.remaining;
    }
    return (ssize_t) off;
}

/* Reads what is available on c and handles the whole packets. */
static void
bench_conn_read(bench_ctx_t *x, bench_conn_t *c)
{
    uint8_t *buf;
    size_t len, room;
    ssize_t n, used;
    uint64_t now;

    if (c->rlen > 0) {
        /* A partial packet is pending: read behind it, in its buffer. */
        size_t want = BENCH_READ_CHUNK;
        mqtt_fixed_t fh;

        if (mqtt_fixed_header(c->rbuf, c->rlen, &fh, NULL) == MQTT_OK
            && fh.hdr_len + (size_t) fh.remaining > c->rlen + want) {
            want = fh.hdr_len + (size_t) fh.remaining - c->rlen;
        }
        if (c->rcap - c->rlen < want) {
            c->rcap = c->rlen + want;
            c->rbuf = mem_realloc(c->rbuf, c->rcap);
        }
        buf = c->rbuf;
        len = c->rlen;
        room = c->rcap - c->rlen;
    } else {
        if (x->scratch_cap < BENCH_READ_CHUNK) {
            x->scratch = mem_realloc(x->scratch, BENCH_READ_CHUNK);
            x->scratch_cap = BENCH_READ_CHUNK;
        }
        buf = x->scratch;
        len = 0;
        room = x->scratch_cap;
    }

    n = recv(c->fd, buf + len, room, 0);
    now = bench_now_ns();
    if (n == 0) {
        int was = c->state;

        bench_conn_close(x, c, was == BC_CLOSING ? BC_DONE : BC_FAILED);
        bench_run_on_close(x, c, was == BC_CLOSING,
                           "connection closed by the broker", now);
        return;
    }
    if (n < 0) {
        char why[128];

        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return;
        }
        if (c->state == BC_CLOSING) {
            /* A reset after DISCONNECT is a close as well. */
            bench_conn_close(x, c, BC_DONE);
            bench_run_on_close(x, c, true, "reset after DISCONNECT", now);
            return;
        }
        snprintf(why, sizeof(why), "recv() failed: %s", strerror(errno));
        bench_conn_fail(x, c, why, now);
        return;
    }
    len += (size_t) n;
    used = bench_conn_parse(x, c, buf, len, now);
    if (used < 0) {
        return;
    }
    len -= (size_t) used;
    if (buf == c->rbuf) {
        if (len > 0 && used > 0) {
            memmove(c->rbuf, c->rbuf + used, len);
        }
        c->rlen = len;
        if (len == 0 && c->rcap > BENCH_RBUF_KEEP) {
            mem_free(c->rbuf);
            c->rbuf = NULL;
            c->rcap = 0;
        }
    } else if (len > 0) {
        if (c->rcap < len) {
            c->rbuf = mem_realloc(c->rbuf, len);
            c->rcap = len;
        }
        memcpy(c->rbuf, buf + used, len);
        c->rlen = len;
    }
}

void
bench_conn_event(bench_ctx_t *x, bench_conn_t *c, uint32_t ev, uint64_t now)
{
    if (c->fd < 0) {
        return;
    }
    if (c->state == BC_CONNECTING) {
        int err = 0;
        socklen_t elen = sizeof(err);
        char why[128];

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
            err = errno;
        }
        if (err != 0) {
            snprintf(why, sizeof(why), "connect() failed: %s",
                     strerror(err));
            bench_conn_fail(x, c, why, now);
            return;
        }
        if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) {
            return;
        }
        c->state = BC_CONNACK;
        c->t_state = now;
        bench_conn_arm(x, c, false);
        bench_run_on_connected(x, c, now);
        return;
    }
    if (ev & EPOLLOUT) {
        if (bench_conn_flush(x, c) < 0) {
            return;
        }
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        bench_conn_read(x, c);
    }
}
