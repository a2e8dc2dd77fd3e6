/*
 * fe_uring.c -- batched socket writes with io_uring: at the end of a wake-up
 * every connection with pending output gets one SEND or SENDMSG
 * (MSG_DONTWAIT) in a single submission, instead of one writev() system
 * call each.  Sends never wait in the kernel: a full socket answers
 * EAGAIN at once and the connection falls back to EV_WRITE, as with
 * writev().  Without io_uring (old kernel, seccomp) the plain path is
 * used.
 *
 * Sockets are registered with the ring (fixed files, slot = connection
 * id): a send then skips the file lookup and reference count of its fd.
 * The ring runs its completions in our own task when we wait for them
 * (DEFER_TASKRUN) where the kernel has it.
 *
 * A connection that wants its ACKs delayed (reply_next, fe_delay_ack())
 * gets the setsockopt as an io_uring command in the same submission,
 * without a system call of its own.
 */
#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fe.h"
#include "log.h"

#define FE_URING_DEPTH 256

static struct io_uring ring;
static bool ring_ok;
static bool fixed_ok; /* sockets are registered (fixed files) */
static bool cmd_ok;   /* socket commands (setsockopt) work */
static const int zero;

/* user_data of a setsockopt that failed (successful ones post nothing) */
#define UD_SETSOCKOPT UINT64_MAX
/* SOCKET_URING_OP_SETSOCKOPT (Linux 6.7): liburing 2.3 predates it, so
 * the fields are filled where the kernel reads them: level and optname
 * share addr, optlen is file_index, optval is addr3. */
#define SOCK_CMD_SETSOCKOPT 3

static void prep_setsockopt(struct io_uring_sqe *sqe, int fd, bool fixed,
                            int level, int name, const int *val)
{
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
    sqe->cmd_op = SOCK_CMD_SETSOCKOPT;
    struct {
        uint32_t level, optname;
    } lo = {(uint32_t)level, (uint32_t)name};
    memcpy(&sqe->addr, &lo, sizeof(lo));
    sqe->file_index = sizeof(*val);
    sqe->addr3 = (uint64_t)(uintptr_t)val;
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS | (fixed ? IOSQE_FIXED_FILE : 0);
    sqe->user_data = UD_SETSOCKOPT;
}

/* Whether this kernel runs setsockopt commands (Linux 6.7) and skips
 * their successful completions (5.17): one tried on a scratch socket.  An
 * unknown command fails before the sends behind it in a submission would
 * run, so it is never sent unless this said yes. */
static bool cmd_probe(void)
{
    if (!(ring.features & IORING_FEAT_CQE_SKIP))
        return false;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    prep_setsockopt(sqe, fd, false, IPPROTO_TCP, TCP_QUICKACK, &zero);
    sqe->flags &= (uint8_t)~IOSQE_CQE_SKIP_SUCCESS; /* the answer, either way */
    struct io_uring_cqe *cqe;
    bool ok = io_uring_submit_and_wait(&ring, 1) == 1 &&
              io_uring_peek_cqe(&ring, &cqe) == 0;
    if (ok) {
        ok = cqe->res == 0;
        io_uring_cqe_seen(&ring, cqe);
    }
    close(fd);
    return ok;
}

static struct msghdr msgs[FE_URING_DEPTH];
static fe_conn_t *batch[FE_URING_DEPTH];
static bool done[FE_URING_DEPTH];

int fe_uring_init(void)
{
    /* One thread submits and reaps: completions run when it waits. */
    unsigned flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init(FE_URING_DEPTH, &ring, flags);
    if (rc == -EINVAL)
        rc = io_uring_queue_init(FE_URING_DEPTH, &ring, 0); /* older kernel */
    if (rc < 0) {
        log_notice("io_uring not available (%s): one writev() per client",
                   strerror(-rc));
        return -1;
    }
    ring_ok = true;
    cmd_ok = cmd_probe();
    if (!cmd_ok)
        log_info("io_uring: no setsockopt commands; setsockopt() instead");
    rc = io_uring_register_files_sparse(&ring, fe->conns_cap);
    if (rc < 0)
        log_notice("io_uring: no registered files (%s)", strerror(-rc));
    else
        fixed_ok = true;
    return 0;
}

void fe_uring_add(const fe_conn_t *c)
{
    if (!fixed_ok)
        return;
    int fd = c->fd;
    int rc = io_uring_register_files_update(&ring, c->id, &fd, 1);
    if (rc < 0) {
        log_err("io_uring_register_files_update() failed: %s; sends go "
                "by descriptor", strerror(-rc));
        fixed_ok = false;
    }
}

void fe_uring_forget(const fe_conn_t *c)
{
    if (!fixed_ok)
        return;
    /* Before the close: a registered file would keep the socket open. */
    int fd = -1;
    if (io_uring_register_files_update(&ring, c->id, &fd, 1) < 0)
        log_err("io_uring: socket of connection %u not unregistered",
                c->id);
}

/* Submits n prepared sends and applies their results. */
static void run_batch(uint32_t n)
{
    int rc;
    do
        rc = io_uring_submit_and_wait(&ring, n);
    while (rc == -EINTR);
    if (rc < 0)
        log_err("io_uring_submit_and_wait() failed: %s", strerror(-rc));
    memset(done, 0, n * sizeof(done[0]));
    uint32_t seen = 0;
    struct io_uring_cqe *cqe;
    while (seen < n && io_uring_peek_cqe(&ring, &cqe) == 0) {
        uint64_t i = cqe->user_data;
        int res = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
        if (i == UD_SETSOCKOPT) {
            /* That socket's ACKs are not delayed: no harm done. */
            log_debug("io_uring: setsockopt command failed: %s",
                      strerror(-res));
            continue;
        }
        if (i >= n || done[i])
            continue;
        done[i] = true;
        seen++;
        fe_conn_t *c = batch[i];
        if (res == -EINTR)
            res = -EAGAIN; /* try again on EV_WRITE */
        int r = fe_out_written(c, res < 0 ? -1 : res, -res);
        if (r > 0)
            fe_flush(c); /* partial: the rest the plain way */
    }
    if (seen < n) {
        /* The submission failed: give io_uring up for good (so no send
         * left in its queue can run later) and write the rest the plain
         * way. */
        log_err("io_uring: %u of %u sends did not complete; falling back "
                "to writev()", n - seen, n);
        ring_ok = false;
        io_uring_queue_exit(&ring);
        for (uint32_t i = 0; i < n; i++)
            if (!done[i])
                fe_flush(batch[i]);
    }
}

int fe_uring_flush_dirty(void)
{
    if (!ring_ok)
        return -1;
    while (fe->dirty) {
        uint32_t n = 0;
        while (fe->dirty && io_uring_sq_space_left(&ring) >= 2) {
            fe_conn_t *c = fe->dirty;
            fe->dirty = c->dirty_next;
            c->dirty = false;
            if (c->x) {
                fe_flush(c); /* TLS / WebSocket: framed at flush time */
                continue;
            }
            if (c->iov_n == 0 || c->write_on)
                continue; /* nothing to send, or waiting for EV_WRITE */
            int fd = fixed_ok ? (int)c->id : c->fd;
            if (c->reply_next && !cmd_ok) {
                fe_delay_ack(c); /* with a system call */
            } else if (c->reply_next) {
                /* fe_delay_ack() as a command in this submission */
                prep_setsockopt(io_uring_get_sqe(&ring), fd, fixed_ok,
                                IPPROTO_TCP, TCP_QUICKACK, &zero);
                fe_ack_delay_set(c);
            }
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            const struct iovec *v = c->iov + c->iov_head;
            if (c->iov_n == 1) {
                /* One buffer (a QoS 0 delivery, an ack): SEND has no
                 * msghdr and iovec array for the kernel to copy in. */
                io_uring_prep_send(sqe, fd, v->iov_base, v->iov_len,
                                   MSG_DONTWAIT | MSG_NOSIGNAL);
            } else {
                struct msghdr *m = &msgs[n];
                memset(m, 0, sizeof(*m));
                m->msg_iov = (struct iovec *)v;
                m->msg_iovlen = c->iov_n > IOV_MAX ? IOV_MAX : c->iov_n;
                io_uring_prep_sendmsg(sqe, fd, m,
                                      MSG_DONTWAIT | MSG_NOSIGNAL);
            }
            if (fixed_ok)
                sqe->flags |= IOSQE_FIXED_FILE;
            sqe->user_data = n;
            batch[n++] = c;
        }
        if (n)
            run_batch(n);
        if (!ring_ok)
            return -1; /* given up: the caller writes the rest */
    }
    return 0;
}
