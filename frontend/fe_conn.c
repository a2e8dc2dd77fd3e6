/*
 * fe_conn.c -- a frontend's connections: accept, read and frame packets,
 * the per-connection output queue written with writev(), back-pressure and
 * close (with the will where one is due).  TLS and WebSocket connections
 * read and write through fe_xport.c instead.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crashpoint.h"
#include "fe.h"
#include "log.h"
#include "mem.h"

#define FE_IN_INITIAL 1024
#define FE_READS_PER_EVENT 8

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

static void peer_name(int fd, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
            port = ntohs(s4->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
            port = ntohs(s6->sin6_port);
        }
    }
    snprintf(out, n, "%s:%d", host, port);
}

/* A new connection on fd, accepted on listener li.  Returns it, or NULL
 * (logged) when it cannot be taken. */
static fe_conn_t *conn_new(int fd, int li)
{
    if (fe->n_free_ids == 0) {
        log_warn("frontend %u: connection table full, refusing", fe->idx);
        return NULL;
    }
    uint32_t id = fe->free_ids[--fe->n_free_ids];
    fe_conn_t *c = mem_calloc(1, sizeof(*c));
    c->fd = fd;
    c->id = id;
    c->listener = li;
    c->in_cap = FE_IN_INITIAL;
    c->in = mem_alloc(c->in_cap);
    if (id >= fe->proc->high_water) {
        /* Recovery scans the handles of ids below this mark. */
        __atomic_store_n(&fe->proc->high_water, id + 1, __ATOMIC_RELAXED);
        ARENA_CRASH_ORDER();
    }
    c->rel = shm_fe_rel(fe->shm, fe->idx, id); /* all 0: see fe_close() */
    const cfg_listener_t *ls = &fe->cfg->listeners[li];
    if ((ls->certfile[0] || ls->protocol == CFG_PROTO_WEBSOCKETS) &&
        fe_xp_init(c, li) < 0) {
        fe->free_ids[fe->n_free_ids++] = id;
        mem_free(c->in);
        mem_free(c);
        return NULL;
    }
    c->gen = (fe->gen_base + fe->conn_gens[id]++) &
             ((1u << (32 - FE_ID_BITS)) - 1);
    c->accepted_ms = c->last_rx_ms = fe_clock_ms();
    peer_name(fd, c->peer, sizeof(c->peer));
    /* Plain TCP is edge-triggered: epoll does not poll a socket again
     * after every event to see whether it is still readable.  on_read()
     * reads until the socket is drained or runs itself again, and every
     * place that stops reading starts again with fe_resume(), which reads
     * at once.  TLS and WebSocket stay level-triggered (OpenSSL may keep
     * bytes the socket no longer shows). */
    short et = c->x ? 0 : EV_ET;
    c->ev_read = event_new(fe->base, fd, EV_READ | EV_PERSIST | et, on_read,
                           c);
    c->ev_write = event_new(fe->base, fd, EV_WRITE | EV_PERSIST | et,
                            on_write, c);
    event_add(c->ev_read, NULL);
    if (c->x == NULL)
        fe_uring_add(c); /* plain TCP: batched sends by io_uring */
    fe->conns[id] = c;
    fe->n_conns++;
    fe->proc->conns = fe->n_conns;
    return c;
}

void fe_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    int li = (int)(intptr_t)arg;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_err("accept4() failed: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (conn_new(fd, li) == NULL)
            close(fd);
    }
}

fe_conn_t *fe_conn_by_cookie(uint32_t cookie)
{
    uint32_t id = cookie & ((1u << FE_ID_BITS) - 1);
    if (id >= fe->conns_cap || fe->conns[id] == NULL)
        return NULL;
    fe_conn_t *c = fe->conns[id];
    return fe_cookie(c) == cookie ? c : NULL;
}

/* ---- posting to workers ---- */

/* Moves records waiting in worker fo's backlog into its ring, oldest
 * first.  Returns true when the backlog is empty afterwards. */
static bool backlog_flush(uint32_t fo)
{
    fe_backlog_t *b = &fe->backlog[fo];
    ring_t *r = shm_ingest(fe->shm, fe->idx, fo);
    while (b->head < b->n) {
        uint32_t room = ring_space(r, 1);
        if (room == 0)
            return false;
        uint32_t k = 0;
        for (; k < room && b->head < b->n; k++, b->head++)
            memcpy(ring_slot(r, k), &b->recs[b->head], sizeof(ing_rec_t));
        ring_commit(r, k);
        fe->wake_fo[fo] = 1;
    }
    b->head = b->n = 0;
    return true;
}

/* True when worker fo has taken nothing from our non-empty ingest ring
 * for FE_STALL_MS: it is down (killed, waiting for its respawn or
 * recovering), stopped or busy with one long task.  Then we take no more
 * PUBLISHes (nor CONNECTs or SUBSCRIBEs for it) until it moves again:
 * their clients wait, paused as when the ring is full, as they would for
 * a broker that does not read them.  Acknowledging them instead would
 * pile up the whole outage in the ring, acknowledged, and hand it to the
 * subscribers' queues at once when the worker is back, where
 * max_queued_messages drops what does not fit.  Looked at once per tick
 * of the coarse clock. */
#define FE_STALL_MS 100
static bool worker_stalled(uint32_t fo)
{
    fe_stall_t *st = &fe->stall[fo];
    uint64_t now = fe_clock_ms();
    if (now == st->checked_ms)
        return st->stalled;
    st->checked_ms = now;
    ring_t *r = shm_ingest(fe->shm, fe->idx, fo);
    /* Acquire: pairs with the worker's release of its consumer position
     * (only the moving matters here, not what it read). */
    uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    bool was = st->stalled;
    /* The clock starts at the first look that finds records waiting. */
    bool waited = st->pending && tail == st->tail;
    st->pending = r->head != tail;
    if (!waited || !st->pending) {
        st->tail = tail;
        st->since_ms = now;
        st->stalled = false;
    } else {
        st->stalled = now - st->since_ms >= FE_STALL_MS;
    }
    if (st->stalled && !was)
        log_warn("worker %u has taken nothing from frontend %u's ring for "
                 "%llu ms (down, recovering, stopped or busy): PUBLISH, "
                 "CONNECT and SUBSCRIBE of its clients wait until it does",
                 fo, fe->idx, (unsigned long long)(now - st->since_ms));
    else if (was && !st->stalled)
        log_notice("worker %u takes frontend %u's records again", fo,
                   fe->idx);
    return st->stalled;
}

/* Room for one record in our ring to fo, nothing waiting before it. */
static bool ring_room(uint32_t fo)
{
    return backlog_flush(fo) &&
           ring_space(shm_ingest(fe->shm, fe->idx, fo), 1) >= 1;
}

bool fe_post_room(uint32_t fo)
{
    return ring_room(fo) && !worker_stalled(fo);
}

bool fe_post_room_all(void)
{
    for (uint32_t w = 0; w < fe->n_fo; w++)
        if (!fe_post_room(w))
            return false;
    return true;
}

void fe_post(uint32_t fo, ing_rec_t *rec)
{
    rec->fe = (uint8_t)fe->idx;
    fe_backlog_t *b = &fe->backlog[fo];
    ring_t *r = shm_ingest(fe->shm, fe->idx, fo);
    if (b->n == 0 && ring_space(r, 1) >= 1) {
        memcpy(ring_slot(r, 0), rec, sizeof(*rec));
        ring_commit(r, 1);
        fe->wake_fo[fo] = 1;
        return;
    }
    /* The worker is behind: keep the record, in order, until there is
     * room (fe_retry_backlogs()).  Only records that must not be lost
     * (DETACH, wills) get here: publishers are paused instead. */
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->recs = mem_realloc(b->recs, b->cap * sizeof(ing_rec_t));
    }
    b->recs[b->n++] = *rec;
    fe->wake_fo[fo] = 1;
    if (!fe->retry_armed) {
        struct timeval tv = {0, 2000};
        event_add(fe->ev_retry, &tv);
        fe->retry_armed = true;
    }
}

bool fe_retry_backlogs(void)
{
    bool empty = true;
    for (uint32_t w = 0; w < fe->n_fo; w++)
        if (!backlog_flush(w))
            empty = false;
    return empty;
}

int fe_post_publish(fe_conn_t *c, arena_h h, uint8_t qos, bool retain)
{
    /* The caller asked fe_post_room_all().  Since then the rings cannot
     * have filled (we are their only producer), but a worker may have
     * become stalled (worker_stalled()): that is not asked again, or a
     * PUBLISH between its checks would be neither posted nor refused. */
    for (uint32_t w = 0; w < fe->n_fo; w++)
        if (!ring_room(w))
            return -1;
    arena_ref_add(&fe->shm->arena, h, fe->n_fo - 1);
    for (uint32_t w = 0; w < fe->n_fo; w++) {
        ing_rec_t rec = {.type = ING_PUBLISH,
                         .qos = qos,
                         .flags = retain ? ING_F_RETAIN : 0,
                         .slot = c ? c->slot : UINT32_MAX,
                         .h1 = h};
        fe_post(w, &rec);
    }
    fe->proc->msgs_in++;
    return 0;
}

/* ---- output-queue references (in shm) ----
 * Order rules, for a kill at any instruction: a handle is stored only
 * after the reference it stands for is ours (taken, or consumed from a
 * ring), and zeroed before that reference is counted for release
 * (rel_drop()).  A kill between the two leaks one reference; none is
 * ever released twice. */

/* Lets go of the reference of queue entry k, if any: it moves to the
 * frontend's count (proc_t.held_n), which the end of the flush round
 * releases with one atomic operation for all the deliveries of a message
 * (docs/architecture.md, "Batched references"). */
static void rel_drop(fe_conn_t *c, uint32_t k)
{
    arena_h h = c->rel[k];
    if (h == 0)
        return;
    c->rel[k] = 0;
    ARENA_CRASH_ORDER(); /* cleared before counted: a kill leaks it */
    shm_held_add(fe->shm, fe->proc, h);
    CRASH_POINT("fe_written_held"); /* counted, not released */
}

/* ---- close ---- */

bool fe_never_fits(size_t len)
{
    return len > fe->max_block;
}

arena_h fe_msg_alloc(const mqtt_props_t *props, const void *t,
                     uint16_t tlen, const void *payload, size_t plen,
                     bool will, bool *never)
{
    /* The forwarded properties go straight from the packet into the
     * block, without the per-hop ones (records.h). */
    uint64_t drop = will ? MQTT_PROP_WILL_PER_HOP : MQTT_PROP_PUBLISH_PER_HOP;
    size_t span_len = props ? mqtt_prop_filter_size(props, drop) : 0;
    size_t size = msg_size(span_len, tlen, plen);
    *never = fe_never_fits(size);
    void *d;
    arena_h h = *never ? 0 : arena_alloc(&fe->shm->arena, fe->part, size, &d);
    if (h == 0)
        return 0;
    uint32_t expiry = props ? props->message_expiry : 0;
    uint32_t at = expiry && !will ? (uint32_t)time(NULL) : 0;
    uint8_t *sp = msg_init(d, at, expiry,
                           will && props ? props->will_delay : 0,
                           (uint32_t)span_len, t, tlen, (uint32_t)plen);
    if (span_len)
        mqtt_prop_filter(props, drop, sp, span_len, &span_len);
    if (plen)
        memcpy(sp + span_len + MSG_PKT0_MAX + 2 + tlen, payload, plen);
    return h;
}

void fe_post_will(uint32_t slot, arena_h will, uint8_t qos, bool retain)
{
    uint32_t len;
    uint8_t *m = arena_get(&fe->shm->arena, will, &len);
    msg_view_t v;
    if (m && msg_open(m, len, &v) == 0 && v.expiry) {
        /* Only this frontend writes the block now; the ring commits
         * publish the store to the workers. */
        uint32_t at = (uint32_t)time(NULL); /* its expiry starts now */
        memcpy(m, &at, sizeof(at));
    }
    for (uint32_t w = 0; w < fe->n_fo; w++) {
        ing_rec_t rec = {.type = ING_PUBLISH,
                         .qos = qos,
                         .flags = retain ? ING_F_RETAIN : 0,
                         .slot = slot,
                         .h1 = will};
        fe_post(w, &rec);
    }
}

void fe_detach(uint32_t slot, uint32_t conn_gen, bool clean, bool discard,
               int64_t new_expiry)
{
    sess_slot_t *s = shm_slot(fe->shm, slot);
    arena_h will = s->will;
    uint8_t flags = (uint8_t)((clean ? ING_F_CLEAN_CLOSE : 0) |
                              (discard ? ING_F_DISCARD : 0) |
                              (new_expiry >= 0 ? ING_F_EXPIRY : 0));
    if (!clean && will) {
        uint32_t expiry = new_expiry >= 0 ? (uint32_t)new_expiry : s->expiry;
        uint32_t len;
        msg_view_t v;
        uint8_t *m = arena_get(&fe->shm->arena, will, &len);
        if (m && msg_open(m, len, &v) == 0 && v.will_delay && expiry &&
            !discard) {
            /* MQTT 5 Will Delay Interval: the owner sends it later unless
             * the client is back in time. */
            flags |= ING_F_WILL_DELAY;
        } else {
            /* The owner holds a reference until it sees our DETACH, which
             * follows these records in the same ring; the new references
             * are the posts'. */
            arena_ref_add(&fe->shm->arena, will, fe->n_fo);
            fe_post_will(slot, will, s->will_qos, s->will_retain);
        }
    }
    ing_rec_t rec = {.type = ING_DETACH,
                     .flags = flags,
                     .slot = slot,
                     .a = conn_gen,
                     .b = new_expiry >= 0 ? (uint32_t)new_expiry : 0};
    fe_post(shm_slot_owner(fe->shm, slot), &rec);
}

int fe_send_disconnect(fe_conn_t *c, uint8_t rc, const char *why)
{
    if (c->level == MQTT_V5 && c->state == C_ACTIVE &&
        fe_out_room(c, 1, 256)) {
        uint8_t out[256];
        size_t n = mqtt_write_disconnect(out, sizeof(out), rc,
                                         c->problem_info ? why : NULL);
        if (c->max_pkt && n > c->max_pkt) /* the string goes (3.14.2.2.3) */
            n = mqtt_write_disconnect(out, sizeof(out), rc, NULL);
        fe_out_bytes(c, out, n);
        return fe_flush(c);
    }
    return 0;
}

int fe_bad_packet(fe_conn_t *c, const char *what, int r, uint8_t rc,
                  const char *why)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "bad %s: %s", what, why ? why : "?");
    return fe_disconnect(c, rc ? rc : mqtt5_error_reason(r), msg);
}

int fe_disconnect(fe_conn_t *c, uint8_t rc, const char *why)
{
    if (fe_send_disconnect(c, rc, why) < 0)
        return -1; /* the write failed: c is gone */
    char msg[192];
    snprintf(msg, sizeof(msg), "%s%s%s", why,
             c->level == MQTT_V5 ? " -- " : "",
             c->level == MQTT_V5 ? mqtt5_reason_str(rc) : "");
    fe_close(c, false, msg);
    return -1;
}

void fe_close(fe_conn_t *c, bool clean, const char *reason)
{
    const char *id = c->client_id ? c->client_id : "<unknown>";
    if (reason)
        log_notice("Client %s [%s] disconnected: %s.", id, c->peer, reason);
    else
        log_notice("Client %s disconnected.", id);

    if (c->state == C_ACTIVE) {
        /* No more broadcasts for it (docs/architecture.md, "QoS 0 to
         * many"); before the DETACH, so a new host's attach, which comes
         * after the owner handled it, writes last. */
        __atomic_store_n(shm_bc_gen(fe->shm, c->slot), 0, __ATOMIC_RELAXED);
        fe_detach(c->slot, c->conn_gen, clean, c->discard_session,
                  c->expiry_changed ? (int64_t)c->sess_expiry : -1);
        fe->by_slot[c->slot] = NULL;
    }
    /* A delivery held back to share a write (fe_hold.c) would have been
     * written already without that: one try, without waiting. */
    if (c->hold_until && c->x == NULL && c->iov_n)
        (void)writev(c->fd, c->iov + c->iov_head,
                     c->iov_n > IOV_MAX ? IOV_MAX : (int)c->iov_n);
    /* A connection still waiting in C_CONNECTING leaves its cookie behind:
     * fe_on_reply() detaches the slot when the answer comes. */
    for (uint32_t i = 0; i < c->iov_n; i++)
        rel_drop(c, c->iov_head + i);
    if (c->x)
        fe_xp_free(c);
    event_free(c->ev_read);
    event_free(c->ev_write);
    if (c->x == NULL)
        fe_uring_forget(c);
    close(c->fd);
    fe->conns[c->id] = NULL;
    fe->free_ids[fe->n_free_ids++] = c->id;
    fe->n_conns--;
    fe->proc->conns = fe->n_conns;
    if (c->dirty) {
        /* unlink from the flush list */
        for (fe_conn_t **pp = &fe->dirty; *pp; pp = &(*pp)->dirty_next)
            if (*pp == c) {
                *pp = c->dirty_next;
                fe->n_dirty--;
                break;
            }
    }
    if (c->alias) {
        for (uint32_t i = 0; i <= c->n_alias; i++)
            mem_free(c->alias[i].topic);
        mem_free(c->alias);
    }
    if (c->alias_out) {
        strmap_free(c->alias_out);
        mem_free(c->alias_out);
    }
    fe_auth_free(c);
    mem_free(c->client_id);
    mem_free(c->username);
    mem_free(c->in);
    mem_free(c);
}

/* ---- output ---- */

bool fe_out_room(fe_conn_t *c, uint32_t iovs, uint32_t bytes)
{
    if (c->iov_n == 0) {
        c->iov_head = 0;
        c->hb_used = 0;
    } else if (c->iov_head + c->iov_n + iovs > FE_IOV_CAP &&
               c->iov_head > 0) {
        memmove(c->iov, c->iov + c->iov_head, c->iov_n * sizeof(c->iov[0]));
        /* One handle at a time, the old place cleared first (the
         * destination is below the source and already 0). */
        for (uint32_t i = 0; i < c->iov_n; i++) {
            arena_h h = c->rel[c->iov_head + i];
            c->rel[c->iov_head + i] = 0;
            ARENA_CRASH_ORDER();
            c->rel[i] = h;
        }
        c->iov_head = 0;
    }
    return c->iov_head + c->iov_n + iovs <= FE_IOV_CAP &&
           c->hb_used + bytes <= FE_HB_CAP;
}

bool fe_out_half_full(const fe_conn_t *c)
{
    return c->out_bytes * 2 >= FE_OUT_BYTES_MAX ||
           c->iov_n * 2 >= FE_IOV_CAP || c->hb_used * 2 >= FE_HB_CAP;
}

/* Bytes were queued for c: it needs a flush, and the queue holds more than
 * a delivery that may wait (queue_publish() says otherwise for its own). */
static void queued(fe_conn_t *c)
{
    c->out_urgent = true;
    fe_mark_dirty(c);
}

static void push_iov(fe_conn_t *c, const void *p, size_t n, arena_h rel)
{
    uint32_t k = c->iov_head + c->iov_n++;
    c->iov[k].iov_base = (void *)p;
    c->iov[k].iov_len = n;
    c->out_bytes += n;
    ARENA_CRASH_ORDER(); /* the reference is ours before its handle is here */
    c->rel[k] = rel;
    queued(c);
}

int fe_out_bytes(fe_conn_t *c, const void *p, size_t n)
{
    if (!fe_out_room(c, 1, (uint32_t)n))
        return -1;
    uint8_t *dst = c->hb + c->hb_used;
    memcpy(dst, p, n);
    c->hb_used += (uint32_t)n;
    /* Extend the previous iovec when it ends right here. */
    if (c->iov_n > 0) {
        struct iovec *last = &c->iov[c->iov_head + c->iov_n - 1];
        if ((uint8_t *)last->iov_base + last->iov_len == dst &&
            c->rel[c->iov_head + c->iov_n - 1] == 0) {
            last->iov_len += n;
            c->out_bytes += n;
            queued(c);
            return 0;
        }
    }
    push_iov(c, dst, n, 0);
    return 0;
}

int fe_out_ref(fe_conn_t *c, const void *p, size_t n, arena_h rel)
{
    if (!fe_out_room(c, 1, 0))
        return -1;
    push_iov(c, p, n, rel);
    return 0;
}

void fe_mark_dirty(fe_conn_t *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = fe->dirty;
    fe->dirty = c;
    fe->n_dirty++;
}

int fe_out_written(fe_conn_t *c, ssize_t w, int err)
{
    if (w < 0) {
        if (err == EAGAIN || err == EWOULDBLOCK) {
            if (!c->write_on) {
                event_add(c->ev_write, NULL);
                c->write_on = true;
            }
            return 0;
        }
        fe_close(c, false, "socket error");
        return -1;
    }
    fe->proc->bytes_out += (uint64_t)w;
    fe->proc->writes++;
    if (fe->cfg->write_coalesce_ms) {
        c->last_tx_ms = fe->round_ms; /* no clock read per write */
        c->rx_since_tx = false;
        c->hold_until = 0;
    }
    fe_out_consume(c, (size_t)w);
    if (c->iov_n > 0)
        return 1;
    if (c->write_on) {
        event_del(c->ev_write);
        c->write_on = false;
    }
    return 0;
}

void fe_out_consume(fe_conn_t *c, size_t n)
{
    size_t left = n;
    c->out_bytes = n < c->out_bytes ? c->out_bytes - n : 0;
    while (c->iov_n > 0) {
        struct iovec *v = &c->iov[c->iov_head];
        if (left < v->iov_len) {
            v->iov_base = (uint8_t *)v->iov_base + left;
            v->iov_len -= left;
            break;
        }
        left -= v->iov_len;
        rel_drop(c, c->iov_head);
        c->iov_head++;
        c->iov_n--;
    }
    if (c->iov_n == 0) {
        c->iov_head = 0;
        c->hb_used = 0;
        c->out_bytes = 0;
        c->out_pubs = 0;
        c->out_urgent = false;
    }
}

/* Delayed ACK before a PUBREC.  After a small segment from the peer,
 * Linux acknowledges it by itself as soon as recv() empties the socket,
 * unless the connection is in "pingpong" (interactive) mode; it leaves
 * that mode whenever its delayed-ACK timer fires, which in a QoS 2
 * exchange is after every PUBCOMP.  So every PUBREC would cost a TCP
 * segment of its own (a pure ACK, sent and, on loopback, received in our
 * time) just before the PUBREL that can carry the ACK.  With a QoS 2
 * PUBLISH (reply_next) the socket is therefore put back into pingpong
 * mode (TCP_QUICKACK 0): the PUBREL carries the ACK.  The io_uring path
 * does the same with a command (fe_uring.c).
 *
 * In that mode the kernel would also hold back the ACK of anything else
 * the client sends first, up to its delayed-ACK timer (40 to 200 ms), and
 * a client with Nagle's algorithm on (libmosquitto's default) would hold
 * its PUBREC until then.  So until the first input after the PUBLISH
 * (ack_delayed), input we do not answer is acknowledged at once
 * (fe_process_input()); after it the socket is where the kernel's own
 * rule would have put it. */
static void quickack(fe_conn_t *c, int on)
{
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on)) < 0)
        log_debug("setsockopt(TCP_QUICKACK) failed: %s", strerror(errno));
}

void fe_delay_ack(fe_conn_t *c)
{
    fe_ack_delay_set(c);
    quickack(c, 0);
}

int fe_flush(fe_conn_t *c)
{
    if (c->reply_next)
        fe_delay_ack(c);
    if (c->x)
        return fe_xp_flush(c);
    while (c->iov_n > 0) {
        int cnt = c->iov_n > IOV_MAX ? IOV_MAX : (int)c->iov_n;
        ssize_t w = writev(c->fd, c->iov + c->iov_head, cnt);
        if (w < 0 && errno == EINTR)
            continue;
        int r = fe_out_written(c, w, errno);
        if (r <= 0 && (w < 0 || c->iov_n == 0))
            return r;
    }
    return 0;
}

void fe_flush_dirty(void)
{
    fe_hold_round();
    /* Many connections: one io_uring submission carries every write. */
    if (fe->dirty && fe->dirty->dirty_next && fe_uring_flush_dirty() == 0)
        goto wake;
    while (fe->dirty) {
        fe_conn_t *c = fe->dirty;
        fe->dirty = c->dirty_next;
        c->dirty = false;
        fe_flush(c);
    }
wake:
    shm_held_release(fe->shm, fe->proc);
    fe->n_dirty = 0;
    for (uint32_t w = 0; w < fe->n_fo; w++)
        if (fe->wake_fo[w]) {
            fe->wake_fo[w] = 0;
            shm_wake_worker(fe->shm, w);
        }
}

/* Every ready socket's read handler answers into its queue; the writes
 * wait for the end of the batch.  libevent queues the events epoll
 * reported together before it runs the first, and runs an event made
 * active meanwhile after those: so on_flush() comes once they have all
 * been read, in the same turn of the loop, and their answers (PUBREC,
 * PUBREL, PUBACK ...) go out in one io_uring submission instead of one
 * writev() each, and the workers get one wake-up for the batch.  Events
 * that became ready later (a socket re-armed by FE_READS_PER_EVENT) queue
 * behind it: no socket waits for another that keeps talking. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fe->flush_armed = false;
    fe_flush_dirty();
}

void fe_flush_init(void)
{
    fe->ev_flush = event_new(fe->base, -1, 0, on_flush, NULL);
}

void fe_flush_soon(void)
{
    if (!fe->flush_armed) {
        fe->flush_armed = true;
        event_active(fe->ev_flush, EV_TIMEOUT, 0);
    }
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fe_conn_t *c = arg;
    if ((c->x ? fe_xp_on_write(c) : fe_flush(c)) < 0)
        return;
    if (c->iov_n == 0) {
        /* Room again: continue what the full queue stopped. */
        if (c->state == C_ACTIVE && fe_drain_slot(c) < 0)
            return;
        if (c->paused)
            fe_resume(c);
    }
    fe_flush_dirty();
}

/* ---- input ---- */

void fe_pause(fe_conn_t *c)
{
    c->paused = true;
    if (!c->read_off) {
        event_del(c->ev_read);
        c->read_off = true;
    }
    if (!fe->retry_armed) {
        struct timeval tv = {0, 2000};
        event_add(fe->ev_retry, &tv);
        fe->retry_armed = true;
    }
}

void fe_pause_arena_full(fe_conn_t *c)
{
    static uint64_t said_ms;
    uint64_t now = fe_clock_ms();
    if (said_ms == 0 || now - said_ms >= 10000) {
        said_ms = now;
        log_warn("frontend %u: its share of arena_size is full (%llu of "
                 "%llu bytes in use): PUBLISH, CONNECT and SUBSCRIBE of "
                 "its clients wait until messages queued for clients are "
                 "written or dropped (clients that do not read and offline "
                 "sessions hold them; max_queued_bytes bounds each)",
                 fe->idx,
                 (unsigned long long)__atomic_load_n(&fe->part->bytes_used,
                                                     __ATOMIC_RELAXED),
                 (unsigned long long)fe->part->size);
    }
    fe_pause(c);
}

void fe_resume_soon(fe_conn_t *c)
{
    if (c->resume_soon)
        return;
    if (fe->n_resume == fe->resume_cap) {
        fe->resume_cap = fe->resume_cap ? fe->resume_cap * 2 : 64;
        fe->resume = mem_realloc(fe->resume,
                                 fe->resume_cap * sizeof(fe->resume[0]));
    }
    fe->resume[fe->n_resume++] = fe_cookie(c);
    c->resume_soon = true;
}

void fe_resume_due(void)
{
    /* fe_resume() may add more: n is read each time. */
    for (uint32_t i = 0; i < fe->n_resume; i++) {
        fe_conn_t *c = fe_conn_by_cookie(fe->resume[i]);
        if (c == NULL)
            continue; /* closed meanwhile */
        c->resume_soon = false;
        if (c->paused && !c->write_on)
            fe_resume(c);
    }
    fe->n_resume = 0;
}

void fe_resume(fe_conn_t *c)
{
    c->paused = false;
    if (fe_process_input(c) < 0)
        return;
    if (c->x && fe_xp_close_due(c) < 0)
        return;
    if (!c->paused && c->read_off && c->state != C_CONNECTING &&
        (c->x == NULL || fe_xp_may_read(c))) {
        event_add(c->ev_read, NULL);
        c->read_off = false;
        if (c->x)
            fe_xp_kick(c);
        else
            event_active(c->ev_read, EV_READ, 1); /* no edge for what
                                                     came meanwhile */
    }
}

static int dispatch(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b)
{
    const char *why = NULL;
    if (c->state == C_NEW) {
        if (fh->type != MQTT_CONNECT) {
            fe_close(c, false, "first packet is not CONNECT");
            return -1;
        }
        return handle_connect(c, fh, b);
    }
    if (c->state == C_AUTH && fh->type != MQTT_AUTH) {
        /* Nothing but AUTH until the exchange ends (4.12). */
        fe_close(c, false, fh->type == MQTT_DISCONNECT
                               ? "disconnected during authentication"
                               : "packet other than AUTH during "
                                 "authentication");
        return -1;
    }
    switch (fh->type) {
    case MQTT_CONNECT:
        return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR,
                             "second CONNECT (protocol violation)");
    case MQTT_PUBLISH:
        return handle_publish(c, fh, b);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return handle_ack(c, fh, b);
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        return handle_subscribe(c, fh, b);
    case MQTT_PINGREQ: {
        if (mqtt_parse_empty(fh->type, fh->flags, fh->remaining, &why) < 0)
            return fe_disconnect(c, MQTT5_RC_MALFORMED, why);
        uint8_t out[2];
        if (!fe_out_room(c, 1, 2)) {
            fe_pause(c);
            return 1;
        }
        fe_out_bytes(c, out, mqtt_write_pingresp(out));
        return 0;
    }
    case MQTT_DISCONNECT:
        return handle_disconnect(c, fh, b);
    case MQTT_AUTH:
        return handle_auth(c, fh, b);
    default:
        why = "packet type not allowed from a client";
        break;
    }
    char msg[128];
    snprintf(msg, sizeof(msg), "protocol error: %s", why ? why : "?");
    return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR, msg);
}

static int process_packets(fe_conn_t *c);

int fe_process_input(fe_conn_t *c)
{
    uint32_t queued = c->iov_n;
    int rc = process_packets(c);
    if (rc >= 0 && c->ack_delayed) {
        /* What we queue (a PUBREL) carries the ACK; with nothing to
         * send, the kernel sends it now instead of after its delayed-ACK
         * timer (fe_delay_ack()). */
        c->ack_delayed = false;
        if (c->iov_n == queued)
            quickack(c, 1);
    }
    return rc;
}

/* Parses and handles the complete packets in c's input buffer. */
static int process_packets(fe_conn_t *c)
{
    size_t off = 0;
    int rc = 0;
    while (!c->paused && c->state != C_CONNECTING) {
        mqtt_fixed_t fh;
        const char *why = NULL;
        int r = mqtt_fixed_header(c->in + off, c->in_len - off, &fh, &why);
        if (r == MQTT_AGAIN)
            break;
        if (r < 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "malformed packet: %s", why);
            return fe_disconnect(c, MQTT5_RC_MALFORMED, msg);
        }
        if ((uint64_t)fh.remaining + fh.hdr_len > fe->max_packet)
            return fe_disconnect(c, MQTT5_RC_PACKET_TOO_LARGE,
                                 fe->max_packet < fe->cfg->max_packet_size
                                     ? "packet larger than a frontend's "
                                       "share of arena_size can hold"
                                     : "packet larger than max_packet_size");
        size_t total = fh.hdr_len + (size_t)fh.remaining;
        if (c->in_len - off < total) {
            if (total > c->in_cap) {
                /* Make room for the whole packet. */
                memmove(c->in, c->in + off, c->in_len - off);
                c->in_len -= off;
                off = 0;
                c->in_cap = total;
                c->in = mem_realloc(c->in, c->in_cap);
            }
            break;
        }
        r = dispatch(c, &fh, c->in + off + fh.hdr_len);
        if (r < 0)
            return -1;
        if (r > 0)
            break; /* paused before consuming this packet */
        off += total;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (c->in_len == 0 && c->in_cap > 64 * 1024) {
        c->in_cap = FE_IN_INITIAL;
        c->in = mem_realloc(c->in, c->in_cap);
    }
    return rc;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    fe_conn_t *c = arg;
    if (c->x) {
        fe_xp_on_read(c);
        fe_flush_soon();
        return;
    }
    for (int i = 0;; i++) {
        if (i == FE_READS_PER_EVENT) {
            /* Others' turn; edge-triggered, so we come back on our own. */
            event_active(c->ev_read, EV_READ, 1);
            break;
        }
        if (c->in_len == c->in_cap) {
            c->in_cap *= 2;
            c->in = mem_realloc(c->in, c->in_cap);
        }
        /* recv(), not read(): no trip through the VFS read path */
        size_t room = c->in_cap - c->in_len;
        ssize_t n = recv(fd, c->in + c->in_len, room, 0);
        if (n == 0) {
            fe_close(c, false, "connection closed by client");
            fe_flush_soon();
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fe_close(c, false, "socket error");
                fe_flush_soon();
                return;
            }
            break;
        }
        c->in_len += (size_t)n;
        c->last_rx_ms = fe_clock_ms();
        c->rx_since_tx = true;
        if (c->hold_until) {
            /* A client that talks to us does not wait (fe_hold.c). */
            c->hold_until = 0;
            fe_mark_dirty(c);
        }
        fe->proc->bytes_in += (uint64_t)n;
        if (fe_process_input(c) < 0) {
            fe_flush_soon();
            return;
        }
        if (c->paused || c->state == C_CONNECTING) {
            if (!c->read_off) {
                event_del(c->ev_read);
                c->read_off = true;
            }
            break;
        }
        if ((size_t)n < room)
            break; /* short read: the socket is drained */
    }
    fe_flush_soon();
}
