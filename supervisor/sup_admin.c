/*
 * sup_admin.c -- the supervisor's admin socket: a Unix stream socket,
 * one JSON request per line in, one JSON response per line out, several
 * clients at once, all non-blocking in the supervisor's libevent loop.
 * Requests that need a child (kick, retained, session expiry) go through
 * the children's mailboxes in shared memory (shm_mbox_t), one request per
 * child at a time, polled by a short timer.
 *
 * NOTES
 *   Owns: the socket file and its connections; the supervisor half of
 *   every child's mailbox (request fields, req_seq); the reply blobs the
 *   children hand back, until it has copied and released them.
 *   Reads: shared memory only as sup_admin_shm.c does (docs/architecture.md,
 *   "Admin socket").
 *   Never: blocks (every socket is non-blocking, every wait has a timer),
 *   trusts a byte from a client (line limit, idle timeout, output cap) or
 *   from a child (replies are copied with a bound and parsed with checks).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "sup_admin_int.h"
#include "sup_admin_shm.h"

_Static_assert(ADM_TOPIC_MAX == SHM_MBOX_ARG,
               "a retained topic must fit a child's mailbox");

struct adm_client {
    adm_client_t *prev, *next;
    struct bufferevent *bev;
    struct event *ev_idle; /* no complete request for ADM_IDLE_TIMEOUT */
    struct event *ev_more; /* more lines wait: go on at the next turn */
    adm_job_t *job;     /* the request waiting for children, or NULL */
    bool eof;           /* the client sends no more: answer, then close */
    bool closing;       /* close once the output is written */
    int pid;            /* peer credentials, for the log */
    unsigned uid;
};

/* A child's mailbox as the supervisor drives it. */
typedef struct adm_chan {
    adm_op_t *cur;      /* the operation in flight (NULL: none, or its
                           job timed out and it is abandoned) */
    bool busy;          /* a request is outstanding: req_seq != ack_seq */
    uint32_t seq;       /* the req_seq we stored last */
    adm_op_t *head, *tail; /* waiting operations */
} adm_chan_t;

sup_admin_env_t adm_env;

static struct {
    char path[CFG_ADMIN_SOCKET_MAX];
    bool have_path;
    dev_t dev;          /* of the socket file we created */
    ino_t ino;
    struct evconnlistener *lev;
    struct event *ev_relisten; /* accept() failed: try again later */
    adm_client_t *clients;
    int n_clients;
    adm_job_t *jobs;
    struct event *ev_poll;
    bool poll_on;
    struct event *ev_stop;
    bool stop_requested;
    adm_chan_t chan[SHM_MAX_PROCS];
} adm;

static void process_input(adm_client_t *c);

/* ---- the socket file ----------------------------------------------------- */

int sup_admin_open(const char *path)
{
    struct sockaddr_un sa;
    struct stat st;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_err("admin socket path %s is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);

    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log_err("admin socket %s: the path exists and is not a socket "
                    "(remove it or set admin_socket)", path);
            return -1;
        }
        /* Someone answering means another broker: never steal its
         * socket.  Non-blocking, so a full backlog cannot stall us (and
         * EAGAIN also means somebody listens). */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
                                        SOCK_CLOEXEC, 0);
        if (probe < 0) {
            log_err("socket(AF_UNIX) failed: %s", strerror(errno));
            return -1;
        }
        int rc = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
        int e = errno;
        close(probe);
        if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
            log_err("admin socket %s in use by another broker", path);
            return -2;
        }
        if (e != ECONNREFUSED && e != ENOENT) {
            log_err("connect(%s) failed: %s", path, strerror(e));
            return -1;
        }
        if (unlink(path) < 0 && errno != ENOENT) {
            log_err("unlink(%s) failed: %s", path, strerror(errno));
            return -1;
        }
        log_notice("removed stale admin socket %s", path);
    } else if (errno != ENOENT) {
        log_err("stat(%s) failed: %s", path, strerror(errno));
        return -1;
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_err("socket(AF_UNIX) failed: %s", strerror(errno));
        return -1;
    }
    /* Created as 0660 from the start: no moment where others may
     * connect. */
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    umask(old);
    if (rc < 0) {
        log_err("bind(%s) failed: %s", path, strerror(e));
        close(fd);
        return -1;
    }
    if (chmod(path, 0660) < 0)
        log_warn("chmod(%s, 0660) failed: %s", path, strerror(errno));
    if (listen(fd, 64) < 0) {
        log_err("listen(%s) failed: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    snprintf(adm.path, sizeof(adm.path), "%s", path);
    adm.have_path = true;
    if (stat(path, &st) == 0) {
        adm.dev = st.st_dev;
        adm.ino = st.st_ino;
    }
    log_notice("Admin socket listening at %s.", path);
    return fd;
}

void sup_admin_unlink(void)
{
    struct stat st;
    if (!adm.have_path)
        return;
    /* Only our own file: another broker may have replaced it. */
    if (stat(adm.path, &st) == 0 && st.st_dev == adm.dev &&
        st.st_ino == adm.ino)
        unlink(adm.path);
    adm.have_path = false;
}

/* ---- clients ------------------------------------------------------------- */

static void client_free(adm_client_t *c)
{
    if (c->job)
        c->job->client = NULL; /* the job goes on; nobody gets its answer */
    if (c->prev)
        c->prev->next = c->next;
    else
        adm.clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    adm.n_clients--;
    event_free(c->ev_idle);
    event_free(c->ev_more);
    bufferevent_free(c->bev);
    mem_free(c);
}

/* Closes c once its output is written and its job answered. */
static void client_close_soon(adm_client_t *c)
{
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    if (c->job == NULL &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        client_free(c);
}

/* Queues response resp (consumed) for c.  Returns 0, or -1 when c was
 * closed because it does not read what it is sent. */
static int send_response(adm_client_t *c, cJSON *resp)
{
    char *text = cJSON_PrintUnformatted(resp);
    cJSON_Delete(resp);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) > ADM_OUTPUT_MAX) {
        log_warn("admin client (pid %d) does not read its responses (more "
                 "than %u bytes queued): closed", c->pid, ADM_OUTPUT_MAX);
        cJSON_free(text);
        client_free(c);
        return -1;
    }
    if (text == NULL) {
        static const char oom[] =
            "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"internal\","
            "\"message\":\"cannot print the response\"}}";
        evbuffer_add(out, oom, sizeof(oom) - 1);
    } else {
        evbuffer_add(out, text, strlen(text));
        cJSON_free(text);
    }
    evbuffer_add(out, "\n", 1);
    if (adm.stop_requested)
        event_active(adm.ev_stop, EV_TIMEOUT, 0);
    return 0;
}

static int send_error(adm_client_t *c, const cJSON *id, const char *code,
                      const char *msg)
{
    adm_err_t err;
    adm_err_set(&err, code, "%s", msg);
    return send_response(c, adm_response_err(id, &err));
}

/* Commands that change the broker are logged as notices. */
static bool changes_broker(const adm_req_t *r)
{
    const char *action = adm_req_str(r, "action");
    switch (r->cmd->id) {
    case ADM_CMD_KICK:
    case ADM_CMD_RELOAD:
    case ADM_CMD_SHUTDOWN:
        return true;
    case ADM_CMD_LOG_LEVEL:
        return adm_req_arg(r, "types") != NULL;
    case ADM_CMD_RETAINED:
        return action && strcmp(action, "delete") == 0;
    case ADM_CMD_SESSIONS:
        return action && strcmp(action, "expire") == 0;
    default:
        return false;
    }
}

static void idle_arm(adm_client_t *c)
{
    struct timeval tv = {ADM_IDLE_TIMEOUT, 0};
    evtimer_add(c->ev_idle, &tv);
}

/* Handles one request line.  Returns 0, or -1 when c was closed. */
static int handle_line(adm_client_t *c, const char *line, size_t len)
{
    adm_req_t r;
    adm_err_t err = {0};
    cJSON *result = NULL;
    idle_arm(c); /* a complete request: not idle */
    if (adm_req_parse(line, len, &r, &err) < 0) {
        /* Debug only: a client sending garbage must not flood the log. */
        log_debug("admin request refused (pid %d): %s: %s", c->pid,
                  err.code, err.message);
        cJSON *resp = adm_response_err(r.id, &err);
        adm_req_free(&r);
        return send_response(c, resp);
    }
    if (changes_broker(&r))
        log_notice("admin (pid %d, uid %u): %s", c->pid, c->uid,
                   r.cmd->name);
    else
        log_debug("admin (pid %d): %s", c->pid, r.cmd->name);
    int rc = adm_exec(c, &r, &result, &err);
    if (rc == ADM_PENDING) {
        adm_req_free(&r); /* the job keeps a copy of the id */
        return 0;
    }
    cJSON *resp = result ? adm_response_ok(r.id, result)
                         : adm_response_err(r.id, &err);
    adm_req_free(&r);
    return send_response(c, resp);
}

/* Runs the complete lines waiting in c's input, one at a time: a request
 * that waits for children holds back the ones after it, so responses
 * come in request order. */
static void process_input(adm_client_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int turn = 0;
    while (c->job == NULL && !c->closing) {
        if (turn++ == ADM_LINES_PER_TURN) {
            /* A client that pipelines many requests gets them answered
             * a few per loop turn: signals, children and the other
             * clients are served in between.  A zero timer, not
             * event_active(): active events run before the next poll. */
            struct timeval now = {0, 0};
            evtimer_add(c->ev_more, &now);
            return;
        }
        size_t eol_len = 0;
        struct evbuffer_ptr p =
            evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
        size_t avail = evbuffer_get_length(in);
        if (p.pos < 0 && c->eof && avail > 0 && avail <= ADM_LINE_MAX) {
            /* The last line may come without its newline. */
            p.pos = (ev_off_t)avail;
            eol_len = 0;
        }
        if ((p.pos < 0 && avail > ADM_LINE_MAX) ||
            (p.pos >= 0 && (size_t)p.pos > ADM_LINE_MAX)) {
            log_warn("admin client (pid %d) sent a line longer than %d "
                     "bytes: closed", c->pid, ADM_LINE_MAX);
            evbuffer_drain(in, avail);
            char msg[64];
            snprintf(msg, sizeof(msg), "request longer than %d bytes",
                     ADM_LINE_MAX);
            if (send_error(c, NULL, ADM_E_LINE_TOO_LONG, msg) == 0)
                client_close_soon(c);
            return;
        }
        if (p.pos < 0)
            break;
        size_t len = (size_t)p.pos;
        char *line = mem_alloc(len + 1);
        evbuffer_remove(in, line, len);
        evbuffer_drain(in, eol_len);
        line[len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        int rc = 0;
        if (len > 0)
            rc = handle_line(c, line, len);
        mem_free(line);
        if (rc < 0)
            return; /* c is gone */
    }
    if (c->eof && c->job == NULL && !c->closing)
        client_close_soon(c);
}

static void on_more(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    process_input(arg);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process_input(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    adm_client_t *c = arg;
    /* Called when the output has drained. */
    if (c->closing && c->job == NULL &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        client_free(c);
}

/* No complete request for ADM_IDLE_TIMEOUT seconds (bytes without a
 * newline do not count: a line must not take forever either). */
static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    adm_client_t *c = arg;
    if (c->job != NULL) {
        idle_arm(c); /* waiting for us, not idle */
        return;
    }
    log_info("admin client (pid %d) sent no request for %d s: closed",
             c->pid, ADM_IDLE_TIMEOUT);
    client_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    adm_client_t *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        log_info("admin client (pid %d) did not read for %d s: closed",
                 c->pid, ADM_IDLE_TIMEOUT);
        client_free(c);
    } else if (what & BEV_EVENT_EOF) {
        /* The client may have closed only its sending side: answer what
         * it asked, then close. */
        c->eof = true;
        bufferevent_disable(c->bev, EV_READ);
        process_input(c);
    } else if (what & BEV_EVENT_ERROR) {
        client_free(c);
    }
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    (void)lev;
    (void)sa;
    (void)salen;
    (void)arg;
    struct ucred cred = {.pid = 0, .uid = 0};
    socklen_t cl = sizeof(cred);
    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
    if (adm.n_clients >= ADM_MAX_CLIENTS) {
        static const char busy[] =
            "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"busy\","
            "\"message\":\"too many admin clients\"}}\n";
        log_warn("admin client (pid %d) refused: %d clients already",
                 (int)cred.pid, ADM_MAX_CLIENTS);
        if (send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) <
            0) {
            /* nothing more to tell it */
        }
        close(fd);
        return;
    }
    struct bufferevent *bev =
        bufferevent_socket_new(adm_env.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        log_err("bufferevent_socket_new() failed");
        close(fd);
        return;
    }
    adm_client_t *c = mem_calloc(1, sizeof(*c));
    c->bev = bev;
    c->pid = (int)cred.pid;
    c->uid = (unsigned)cred.uid;
    c->next = adm.clients;
    if (adm.clients)
        adm.clients->prev = c;
    adm.clients = c;
    adm.n_clients++;
    c->ev_idle = evtimer_new(adm_env.base, on_idle, c);
    c->ev_more = evtimer_new(adm_env.base, on_more, c);
    idle_arm(c);
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    /* Never hold more than one line (and its newline) of input. */
    bufferevent_setwatermark(bev, EV_READ, 0, ADM_LINE_MAX + 1);
    /* Answers that cannot be written for that long: the client does not
     * read. */
    struct timeval idle = {ADM_IDLE_TIMEOUT, 0};
    bufferevent_set_timeouts(bev, NULL, &idle);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    log_info("admin client connected (pid %d, uid %u)", c->pid, c->uid);
}

static void on_relisten(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (adm.lev)
        evconnlistener_enable(adm.lev);
}

/* accept() failed (out of descriptors, ...): pause a second rather than
 * spin on a socket that stays readable. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)arg;
    int e = EVUTIL_SOCKET_ERROR();
    log_err("accept() on the admin socket failed: %s; retrying in 1 s",
            evutil_socket_error_to_string(e));
    evconnlistener_disable(lev);
    struct timeval sec = {1, 0};
    evtimer_add(adm.ev_relisten, &sec);
}

/* ---- requests to children (mailboxes) ------------------------------------ */

static void poll_arm(void)
{
    if (adm.poll_on)
        return;
    struct timeval tv = {0, ADM_POLL_MS * 1000};
    event_add(adm.ev_poll, &tv);
    adm.poll_on = true;
}

/* Wakes process p (index in procs[]) to look at its mailbox. */
static void wake(uint32_t p)
{
    uint32_t n_fe = adm_env.shm->hdr->n_fe, n_fo = adm_env.shm->hdr->n_fo;
    if (p >= 1 && p <= n_fe) {
        uint64_t one = 1;
        if (write(adm_env.efd[p - 1], &one, sizeof(one)) < 0 &&
            errno != EAGAIN)
            log_err("write(eventfd of frontend %u) failed: %s", p - 1,
                    strerror(errno));
    } else if (p > n_fe && p <= n_fe + n_fo) {
        shm_wake_worker(adm_env.shm, p - 1 - n_fe);
    }
}

/* Posts the next waiting operation of channel p if its mailbox is free. */
static void chan_send(uint32_t p)
{
    adm_chan_t *ch = &adm.chan[p];
    if (ch->busy || ch->head == NULL)
        return;
    adm_op_t *op = ch->head;
    ch->head = op->next;
    if (ch->head == NULL)
        ch->tail = NULL;
    op->next = NULL;
    shm_mbox_t *m = &adm_env.shm->hdr->mbox[p];
    m->op = op->op;
    m->flags = op->flags;
    m->slot = op->slot;
    m->conn_gen = op->conn_gen;
    m->offset = op->offset;
    m->limit = op->limit;
    m->arg_len = op->arg_len;
    if (op->arg_len)
        memcpy(m->arg, op->arg, op->arg_len);
    ch->seq = m->req_seq + 1;
    ch->busy = true;
    ch->cur = op;
    op->state = ADM_OP_SENT;
    /* Release: the request fields above are visible before the new
     * sequence number (pairs with the child's acquire load of req_seq). */
    __atomic_store_n(&m->req_seq, ch->seq, __ATOMIC_RELEASE);
    wake(p);
}

static void job_free(adm_job_t *j)
{
    for (uint32_t i = 0; i < j->n_ops; i++) {
        mem_free(j->ops[i].arg);
        mem_free(j->ops[i].reply);
    }
    mem_free(j->ops);
    mem_free(j->text);
    cJSON_Delete(j->id);
    mem_free(j);
}

static void job_unlink(adm_job_t *j)
{
    for (adm_job_t **pp = &adm.jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
}

/* Sends the job's answer (result of finish, or err when err is given),
 * lets its client go on, frees it. */
static void job_answer(adm_job_t *j, const adm_err_t *timeout)
{
    job_unlink(j);
    adm_client_t *c = j->client;
    if (c != NULL) {
        adm_err_t err = {0};
        cJSON *res = timeout ? NULL : j->finish(j, &err);
        cJSON *resp = res ? adm_response_ok(j->id, res)
                          : adm_response_err(j->id, timeout ? timeout
                                                            : &err);
        c->job = NULL;
        j->client = NULL;
        if (send_response(c, resp) == 0) {
            if (c->closing) {
                if (evbuffer_get_length(bufferevent_get_output(c->bev)) ==
                    0)
                    client_free(c);
            } else {
                process_input(c); /* the requests it sent meanwhile */
            }
        }
    }
    job_free(j);
}

/* A job's deadline passed: waiting operations are dropped, sent ones are
 * abandoned (their mailbox stays busy until the child answers, and the
 * answer's reply blob is then released unread). */
static void job_timeout(adm_job_t *j)
{
    const char *who = "a child process";
    char name[48];
    for (uint32_t i = 0; i < j->n_ops; i++) {
        adm_op_t *op = &j->ops[i];
        adm_chan_t *ch = &adm.chan[op->proc];
        if (op->state == ADM_OP_DONE)
            continue;
        uint32_t n_fe = adm_env.shm->hdr->n_fe;
        snprintf(name, sizeof(name), "%s %u",
                 op->proc <= n_fe ? "frontend" : "worker",
                 op->proc <= n_fe ? op->proc - 1 : op->proc - 1 - n_fe);
        who = name;
        if (op->state == ADM_OP_QUEUED) {
            for (adm_op_t **pp = &ch->head; *pp; pp = &(*pp)->next)
                if (*pp == op) {
                    *pp = op->next;
                    break;
                }
            ch->tail = NULL;
            for (adm_op_t *o = ch->head; o; o = o->next)
                ch->tail = o;
        } else if (op->state == ADM_OP_SENT && ch->cur == op) {
            ch->cur = NULL;
        }
    }
    adm_err_t err;
    adm_err_set(&err, ADM_E_TIMEOUT, "%s did not answer within %d ms", who,
                ADM_CHILD_TIMEOUT_MS);
    log_warn("admin request timed out: %s", err.message);
    job_answer(j, &err);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    adm.poll_on = false;
    bool busy = false;
    for (uint32_t p = 1; p < SHM_MAX_PROCS; p++) {
        adm_chan_t *ch = &adm.chan[p];
        if (!ch->busy)
            continue;
        shm_mbox_t *m = &adm_env.shm->hdr->mbox[p];
        /* Acquire: pairs with the child's release store of ack_seq, so
         * rc, aux, reply and the reply blob are visible. */
        if (__atomic_load_n(&m->ack_seq, __ATOMIC_ACQUIRE) != ch->seq) {
            busy = true;
            continue;
        }
        ch->busy = false;
        adm_op_t *op = ch->cur;
        ch->cur = NULL;
        arena_h reply = m->reply;
        if (op != NULL) {
            op->rc = m->rc;
            op->aux = m->aux;
            if (reply && op->reply_max)
                op->reply = (op->reply_msg ? sup_shm_copy_msg : sup_shm_copy)(
                    adm_env.shm, reply, op->reply_max, &op->reply_len,
                    &op->reply_full);
            op->state = ADM_OP_DONE;
        }
        /* Ours now, whether the job still waits or not. */
        if (reply)
            arena_release(&adm_env.shm->arena, reply);
        chan_send(p);
        if (ch->busy)
            busy = true;
        if (op != NULL && ++op->job->n_done == op->job->n_ops)
            job_answer(op->job, NULL);
    }
    uint64_t now = clock_ms();
    for (adm_job_t *j = adm.jobs, *next; j; j = next) {
        next = j->next;
        if (now >= j->deadline)
            job_timeout(j);
    }
    for (uint32_t p = 1; p < SHM_MAX_PROCS && !busy; p++)
        if (adm.chan[p].busy || adm.chan[p].head)
            busy = true;
    if (busy || adm.jobs)
        poll_arm();
}

adm_job_t *adm_job_new(adm_client_t *c, const adm_req_t *r, uint32_t n,
                       adm_finish_fn finish)
{
    adm_job_t *j = mem_calloc(1, sizeof(*j));
    j->client = c;
    j->id = r->id ? cJSON_Duplicate(r->id, 1) : NULL;
    j->finish = finish;
    j->n_ops = n;
    j->ops = mem_calloc(n ? n : 1, sizeof(adm_op_t));
    for (uint32_t i = 0; i < n; i++)
        j->ops[i].job = j;
    return j;
}

void adm_job_start(adm_job_t *j)
{
    j->deadline = clock_ms() + ADM_CHILD_TIMEOUT_MS;
    j->next = adm.jobs;
    adm.jobs = j;
    if (j->client)
        j->client->job = j;
    for (uint32_t i = 0; i < j->n_ops; i++) {
        adm_op_t *op = &j->ops[i];
        adm_chan_t *ch = &adm.chan[op->proc];
        op->state = ADM_OP_QUEUED;
        if (ch->tail)
            ch->tail->next = op;
        else
            ch->head = op;
        ch->tail = op;
        chan_send(op->proc);
    }
    poll_arm();
}

/* ---- start and stop ------------------------------------------------------ */

void adm_request_stop(void)
{
    adm.stop_requested = true;
}

static void on_stop_request(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (adm_env.stop)
        adm_env.stop();
}

void sup_admin_start(const sup_admin_env_t *env, int lfd)
{
    adm_env = *env;
    adm_json_init();
    adm.ev_poll = event_new(adm_env.base, -1, 0, on_poll, NULL);
    adm.ev_stop = event_new(adm_env.base, -1, 0, on_stop_request, NULL);
    if (lfd < 0)
        return;
    adm.lev = evconnlistener_new(adm_env.base, on_accept, NULL,
                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                 0, lfd);
    if (adm.lev == NULL) {
        log_err("evconnlistener_new() failed: the admin socket is off");
        close(lfd);
        return;
    }
    evconnlistener_set_error_cb(adm.lev, on_accept_error);
    adm.ev_relisten = evtimer_new(adm_env.base, on_relisten, NULL);
}

void sup_admin_stop(void)
{
    if (adm.lev) {
        evconnlistener_free(adm.lev);
        adm.lev = NULL;
    }
    if (adm.ev_relisten) {
        event_free(adm.ev_relisten);
        adm.ev_relisten = NULL;
    }
    while (adm.clients) {
        adm_client_t *c = adm.clients;
        /* One last non-blocking write: the answer to "shutdown" is small
         * and the socket buffer takes it. */
        struct evbuffer *out = bufferevent_get_output(c->bev);
        size_t len = evbuffer_get_length(out);
        /* The bufferevent keeps the front of its output frozen outside
         * its own write callback: send a copy directly. */
        const unsigned char *data = len ? evbuffer_pullup(out, -1) : NULL;
        if (data != NULL &&
            send(bufferevent_getfd(c->bev), data, len,
                 MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            log_debug("admin client (pid %d): last answer lost: %s",
                      c->pid, strerror(errno));
        client_free(c);
    }
    while (adm.jobs) {
        adm_job_t *j = adm.jobs;
        adm.jobs = j->next;
        job_free(j);
    }
    memset(adm.chan, 0, sizeof(adm.chan));
    if (adm.ev_poll) {
        event_free(adm.ev_poll);
        adm.ev_poll = NULL;
        adm.poll_on = false;
    }
    if (adm.ev_stop) {
        event_free(adm.ev_stop);
        adm.ev_stop = NULL;
    }
}
