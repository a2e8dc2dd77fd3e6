/*
 * sup.c -- the supervisor process: creates the shared memory, opens every
 * listener once per frontend slot, forks the frontends and fan-out
 * workers, then runs a libevent loop: reaps children, stops them all on
 * SIGTERM/SIGINT (or the admin socket's shutdown), reloads on SIGHUP, and
 * serves the admin socket (sup_admin.c).
 *
 * NOTES
 *   Owns: the shm header (written once, before fork), the listener
 *   sockets, the eventfds, its private child table, the supervisor half
 *   of the children's admin mailboxes, the admin socket.
 *   Reads: proc_t blocks (pids, counters) after shm_check(); slots and
 *   arena blobs only as sup_admin_shm.c does (checked copies, bounded
 *   walks).
 *   Never touches: rings; never follows a handle found in shared memory
 *   except through arena_get(), and writes to the arena only to release
 *   the reply blobs children hand it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fe.h"
#include "fe_tls.h"
#include "fo.h"
#include "log.h"
#include "mem.h"
#include "proctitle.h"
#include "shm.h"
#include "sup.h"
#include "sup_admin.h"
#include "sup_config.h"

#define SUP_KILL_AFTER 4 /* s between SIGTERM and SIGKILL to children */

typedef struct sup_child {
    pid_t pid;
    int role;
    uint32_t index;
} sup_child_t;

static sup_child_t children[SHM_MAX_PROCS];
static int n_children;
static int admin_fd = -1; /* the admin socket until the loop serves it */

/* The event loop's state. */
static struct {
    struct event_base *base;
    const cfg_t *cfg;
    int stopping;  /* children were sent SIGTERM */
    int failed;    /* a child died or could not be started: exit 1 */
    struct event *ev_kill;  /* SIGKILL to children still alive */
    struct event *ev_reap;  /* periodic reap (belt and braces) */
} sup;

/* Opens one listening socket for l.  Returns the fd or -1 (logged). */
static int open_listener(const cfg_listener_t *l)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof(port), "%u", l->port);
    const char *addr = l->address[0] ? l->address : NULL;
    int rc = getaddrinfo(addr, port, &hints, &res);
    if (rc != 0) {
        log_err("getaddrinfo(%s) failed: %s", addr ? addr : "*",
                gai_strerror(rc));
        return -1;
    }
    /* Without an address, prefer IPv6 any (dual stack), else IPv4. */
    struct addrinfo *ai = res;
    for (struct addrinfo *p = res; p && !addr; p = p->ai_next)
        if (p->ai_family == AF_INET6)
            ai = p;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
                                       SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) {
        log_err("socket() failed: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        log_err("bind() to %s port %u failed: %s", addr ? addr : "*",
                l->port, strerror(errno));
        goto fail;
    }
    if (listen(fd, 4096) < 0) {
        log_err("listen() failed: %s", strerror(errno));
        goto fail;
    }
    freeaddrinfo(res);
    return fd;
fail:
    close(fd);
    freeaddrinfo(res);
    return -1;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warn("setrlimit(RLIMIT_NOFILE) failed: %s", strerror(errno));
    }
}

static int drop_privileges(const cfg_t *cfg)
{
    if (getuid() != 0 || cfg->user[0] == '\0')
        return 0;
    struct passwd *pw = getpwnam(cfg->user);
    if (pw == NULL) {
        log_err("user %s does not exist; cannot drop privileges",
                cfg->user);
        return -1;
    }
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        log_err("dropping privileges to %s failed: %s", cfg->user,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int write_pid_file(const cfg_t *cfg)
{
    if (cfg->pid_file[0] == '\0')
        return 0;
    FILE *f = fopen(cfg->pid_file, "w");
    if (f == NULL) {
        log_err("fopen(%s) failed: %s", cfg->pid_file, strerror(errno));
        return -1;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    return 0;
}

static const char *role_name(int role)
{
    return role == PROC_FRONTEND ? "frontend" : "fanout";
}

/* Forks one child.  In the child: names itself, keeps only the fds it
 * needs, runs its main and exits.  Returns 0 or -1 (logged). */
static int spawn(const cfg_t *cfg, shm_t *shm, int role, uint32_t idx,
                 int *lfd, int n_listeners, int *efd, const sigset_t *old)
{
    pid_t sup_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log_err("fork() failed: %s", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        children[n_children].pid = pid;
        children[n_children].role = role;
        children[n_children].index = idx;
        n_children++;
        proc_t *p = role == PROC_FRONTEND ? shm_fe_proc(shm, idx)
                                          : shm_fo_proc(shm, idx);
        p->pid = pid;
        p->role = (uint32_t)role;
        p->index = idx;
        return 0;
    }
    /* child */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != sup_pid)
        _exit(0); /* the supervisor died before PDEATHSIG was armed */
    char title[64];
    snprintf(title, sizeof(title), "ringmq: %s %u", role_name(role), idx);
    proctitle_set(title);
    char tag[32];
    snprintf(tag, sizeof(tag), "%s %u", role_name(role), idx);
    log_set_role(tag);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, old, NULL);
    if (admin_fd >= 0)
        close(admin_fd);
    uint32_t n_fe = shm->hdr->n_fe;
    int rc;
    if (role == PROC_FRONTEND) {
        /* Keep our own listener sockets (one per listener) and eventfd. */
        int mine[CFG_MAX_LISTENERS];
        for (int l = 0; l < n_listeners; l++) {
            mine[l] = lfd[l * n_fe + idx];
            for (uint32_t f = 0; f < n_fe; f++)
                if (f != idx)
                    close(lfd[l * n_fe + f]);
        }
        for (uint32_t f = 0; f < n_fe; f++)
            if (f != idx)
                close(efd[f]);
        rc = fe_main(cfg, shm, idx, mine, n_listeners, efd[idx]);
    } else {
        for (int i = 0; i < n_listeners * (int)n_fe; i++)
            close(lfd[i]);
        rc = fo_main(cfg, shm, idx, efd);
    }
    _exit(rc);
}

static sup_child_t *find_child(pid_t pid)
{
    for (int i = 0; i < n_children; i++)
        if (children[i].pid == pid)
            return &children[i];
    return NULL;
}

static void log_exit(const sup_child_t *c, int status, int expected)
{
    unsigned t = expected ? LOG_T_INFO : LOG_T_ERR;
    if (WIFEXITED(status))
        log_msg(t, "%s %u (pid %d) exited with status %d",
                role_name(c->role), c->index, (int)c->pid,
                WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        log_msg(t, "%s %u (pid %d) killed by signal %d (%s)",
                role_name(c->role), c->index, (int)c->pid, WTERMSIG(status),
                strsignal(WTERMSIG(status)));
}

/* Reaps exited children.  Returns how many of them were still listed. */
static int reap(int stopping, int *failed)
{
    int n = 0, status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        sup_child_t *c = find_child(pid);
        if (c == NULL)
            continue;
        log_exit(c, status, stopping);
        if (!stopping)
            *failed = 1;
        c->pid = 0;
        n++;
    }
    return n;
}

static int alive(void)
{
    int n = 0;
    for (int i = 0; i < n_children; i++)
        if (children[i].pid > 0)
            n++;
    return n;
}

static void signal_all(int sig)
{
    for (int i = 0; i < n_children; i++)
        if (children[i].pid > 0)
            kill(children[i].pid, sig);
}

/* ---- the event loop ---------------------------------------------------- */

static void stop_if_done(void)
{
    if (sup.stopping && alive() == 0)
        event_base_loopbreak(sup.base);
}

/* Begins stopping the broker: SIGTERM to every child, SIGKILL to those
 * still alive SUP_KILL_AFTER seconds later; the loop ends when all are
 * reaped. */
static void sup_stop(void)
{
    if (sup.stopping)
        return;
    sup.stopping = 1;
    sup_admin_stop();
    signal_all(SIGTERM);
    struct timeval kill_after = {SUP_KILL_AFTER, 0};
    event_add(sup.ev_kill, &kill_after);
    stop_if_done();
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (alive() > 0) {
        log_err("children still alive after %d s: killing them",
                SUP_KILL_AFTER);
        signal_all(SIGKILL);
    }
}

static void on_child(void)
{
    reap(sup.stopping, &sup.failed);
    if (sup.failed && !sup.stopping) {
        log_err("a child process died; stopping the broker (crash "
                "recovery is not implemented yet)");
        sup_stop();
    }
    stop_if_done();
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    on_child();
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        if (!sup.stopping)
            log_notice("signal %d received, stopping", (int)sig);
        sup_stop();
        break;
    case SIGHUP: {
        log_notice("SIGHUP received: reloading the configuration");
        adm_err_t err;
        cJSON *res = sup_cfg_reload(sup.cfg, &err);
        cJSON_Delete(res); /* everything was logged */
        /* Frontends reload the certificates of their TLS listeners. */
        for (int i = 0; i < n_children; i++)
            if (children[i].pid > 0 && children[i].role == PROC_FRONTEND)
                kill(children[i].pid, SIGHUP);
        break;
    }
    case SIGCHLD:
        on_child();
        break;
    default:
        break;
    }
}

int sup_run(const cfg_t *cfg)
{
    static shm_t shm;
    int lfd[CFG_MAX_LISTENERS * SHM_MAX_PROCS];
    int efd[SHM_MAX_PROCS];
    uint32_t n_fe = (uint32_t)cfg->frontends;
    uint32_t n_fo = (uint32_t)cfg->fanout_workers;

    log_set_role("supervisor");
    proctitle_set("ringmq: supervisor");
    raise_fd_limit();
    log_notice("ringmq version %s starting", RINGMQ_VERSION);
    if (cfg->config_file[0])
        log_notice("Config loaded from %s.", cfg->config_file);

    /* Certificates and keys load now, before anything is opened: a bad
     * one is a configuration error (exit 2, no restart). */
    if (fe_tls_setup(cfg) < 0) {
        log_err("TLS setup failed: fix the listener's certificate files");
        return CFG_EXIT_FATAL;
    }
    if (cfg->daemon && daemon(1, 0) < 0) {
        log_err("daemon() failed: %s", strerror(errno));
        return 1;
    }
    for (int l = 0; l < cfg->n_listeners; l++) {
        const cfg_listener_t *L = &cfg->listeners[l];
        log_notice("Opening listen socket on %s port %u (%u frontends).",
                   L->address[0] ? L->address : "all addresses", L->port,
                   n_fe);
        for (uint32_t f = 0; f < n_fe; f++) {
            lfd[l * n_fe + f] = open_listener(L);
            if (lfd[l * n_fe + f] < 0)
                return 1;
        }
    }
    shm_params_t sp = {.n_fe = n_fe,
                       .n_fo = n_fo,
                       .max_clients = cfg->max_clients,
                       .max_inflight = cfg->max_inflight_messages,
                       .max_queued = cfg->max_queued_messages,
                       .ingest_cap = cfg->ingest_ring_size,
                       .arena_size = cfg->arena_size,
                       .max_queued_bytes = cfg->max_queued_bytes};
    if (shm_create(&shm, &sp) < 0 || shm_check(&shm) < 0)
        return 1;
    /* Log types live in shm from now on: the admin socket's log_level
     * changes them in every process. */
    log_share_types(&shm.hdr->log_types);
    log_info("shared memory: %llu MiB mapped (arena %llu MiB), %u slots",
             (unsigned long long)(shm.hdr->total_size >> 20),
             (unsigned long long)(shm.hdr->arena_size >> 20),
             shm.hdr->max_clients);
    for (uint32_t f = 0; f < n_fe; f++) {
        efd[f] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (efd[f] < 0) {
            log_err("eventfd() failed: %s", strerror(errno));
            return 1;
        }
    }
    if (write_pid_file(cfg) < 0 || drop_privileges(cfg) < 0)
        return 1;
    /* After dropping privileges, so the socket file belongs to the user
     * the broker runs as (and it can remove it at exit); before the
     * forks, so a second broker on the same socket stops here. */
    if (cfg->admin_socket[0]) {
        admin_fd = sup_admin_open(cfg->admin_socket);
        if (admin_fd < 0) {
            if (cfg->pid_file[0])
                unlink(cfg->pid_file);
            return 1;
        }
    }
    shm.hdr->procs[0].pid = getpid();
    shm.hdr->procs[0].started = (uint64_t)time(NULL);

    /* Signals wait, blocked, until the event loop is there to take them
     * (children unblock them). */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);

    int failed = 0;
    for (uint32_t w = 0; w < n_fo && !failed; w++)
        if (spawn(cfg, &shm, PROC_FANOUT, w, lfd, cfg->n_listeners, efd,
                  &old) < 0)
            failed = 1;
    for (uint32_t f = 0; f < n_fe && !failed; f++)
        if (spawn(cfg, &shm, PROC_FRONTEND, f, lfd, cfg->n_listeners, efd,
                  &old) < 0)
            failed = 1;
    /* The listeners belong to the frontends now; we keep copies so a
     * respawned frontend can get its slot's sockets back. */

    /* The loop is created after the forks: children inherit none of its
     * descriptors. */
    signal(SIGPIPE, SIG_IGN); /* a vanished admin client */
    sup.cfg = cfg;
    sup.failed = failed;
    sup.base = event_base_new();
    if (sup.base == NULL) {
        log_err("event_base_new() failed");
        signal_all(SIGKILL);
        return 1;
    }
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
    struct event *ev_sig[4];
    for (int i = 0; i < 4; i++) {
        ev_sig[i] = evsignal_new(sup.base, sigs[i], on_signal, NULL);
        event_add(ev_sig[i], NULL);
    }
    sup.ev_kill = evtimer_new(sup.base, on_kill, NULL);
    sup.ev_reap = event_new(sup.base, -1, EV_PERSIST, on_reap, NULL);
    struct timeval sec = {1, 0};
    event_add(sup.ev_reap, &sec);
    sigprocmask(SIG_SETMASK, &old, NULL);

    sup_admin_env_t env = {.base = sup.base,
                           .cfg = cfg,
                           .shm = &shm,
                           .efd = efd,
                           .started = shm.hdr->procs[0].started,
                           .stop = sup_stop};
    sup_admin_start(&env, admin_fd);
    admin_fd = -1;

    if (failed)
        sup_stop();
    else
        on_child(); /* a child that died before the loop existed */
    if (!sup.stopping || alive() > 0)
        event_base_dispatch(sup.base);

    sup_admin_stop();
    sup_admin_unlink();
    for (int i = 0; i < 4; i++)
        event_free(ev_sig[i]);
    event_free(sup.ev_kill);
    event_free(sup.ev_reap);
    event_base_free(sup.base);
    uint64_t blocks, bytes;
    arena_usage(&shm.arena, &blocks, &bytes);
    log_notice("arena at exit: %llu blocks, %llu bytes in use",
               (unsigned long long)blocks, (unsigned long long)bytes);
    if (cfg->pid_file[0])
        unlink(cfg->pid_file);
    log_notice("ringmq version %s terminating", RINGMQ_VERSION);
    return sup.failed ? 1 : 0;
}
