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
#include <stdbool.h>
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

#include "clock.h"
#include "fe.h"
#include "fe_tls.h"
#include "fo.h"
#include "log.h"
#include "crashpoint.h"
#include "mem.h"
#include "panic.h"
#include "proctitle.h"
#include "shm.h"
#include "sup.h"
#include "sup_admin.h"
#include "sup_child.h"
#include "sup_config.h"

#define SUP_KILL_AFTER 4 /* s between SIGTERM and SIGKILL to children */

/* The private child table: the supervisor's own truth about its children
 * (shm proc_t blocks only mirror the pid for the admin socket). */
typedef struct sup_child {
    pid_t pid;           /* 0: not running */
    int role;
    uint32_t index;
    uint64_t started_ms; /* monotonic, at the fork */
    uint32_t restarts;
    uint32_t fails;      /* consecutive deaths during start-up */
    bool restart_asked;  /* admin restart: expected exit, respawn at once */
    struct event *ev_respawn;
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
    /* what spawn() gives a child */
    shm_t *shm;
    int *lfd;          /* [bound socket * n_fe + frontend] */
    const int *lfd_listener; /* [bound socket]: its listener */
    int n_bound;
    int *efd;
    sigset_t old_mask;
} sup;

/* A listener binds every address its host name resolves to (as
 * Mosquitto does), at most SUP_ADDRS_MAX; without an address, one socket
 * on the IPv6 wildcard taking IPv4 too (or the IPv4 one). */
#define SUP_ADDRS_MAX 4
#define SUP_BOUND_MAX (CFG_MAX_LISTENERS * SUP_ADDRS_MAX)

typedef struct {
    struct sockaddr_storage sa;
    socklen_t len;
    bool several; /* one of a host name's addresses: IPv6 is IPv6 only
                     (IPv4 has sockets of its own), and one the machine
                     cannot bind (no IPv6) is skipped */
    char shown[INET6_ADDRSTRLEN];
} sup_addr_t;

/* The addresses l binds: 1 to SUP_ADDRS_MAX of them in a, or -1
 * (logged). */
static int resolve_listener(const cfg_listener_t *l, sup_addr_t *a)
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
    struct addrinfo *one = res;
    for (struct addrinfo *p = res; p && !addr; p = p->ai_next)
        if (p->ai_family == AF_INET6)
            one = p; /* the dual-stack wildcard */
    int n = 0;
    for (struct addrinfo *p = addr ? res : one; p;
         p = addr ? p->ai_next : NULL) {
        bool seen = false;
        for (int i = 0; i < n; i++)
            seen |= a[i].len == p->ai_addrlen &&
                    memcmp(&a[i].sa, p->ai_addr, p->ai_addrlen) == 0;
        if (seen || p->ai_addrlen > sizeof(a[0].sa))
            continue;
        if (n == SUP_ADDRS_MAX) {
            log_err("listener %s port %u: the name has more than %d "
                    "addresses; give one address", addr, l->port,
                    SUP_ADDRS_MAX);
            freeaddrinfo(res);
            return -1;
        }
        memcpy(&a[n].sa, p->ai_addr, p->ai_addrlen);
        a[n].len = p->ai_addrlen;
        if (getnameinfo(p->ai_addr, p->ai_addrlen, a[n].shown,
                        sizeof(a[n].shown), NULL, 0, NI_NUMERICHOST) != 0)
            snprintf(a[n].shown, sizeof(a[n].shown), "%s",
                     addr ? addr : "*");
        n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        log_err("listener %s port %u: no address to bind",
                addr ? addr : "*", l->port);
        return -1;
    }
    for (int i = 0; i < n; i++)
        a[i].several = n > 1;
    return n;
}

/* True when the probe of a failed because the machine cannot bind that
 * kind of address (IPv6 off) and a is one of several: it is skipped. */
static bool unusable(const sup_addr_t *a, bool probe)
{
    return probe && a->several &&
           (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL);
}

/* A listening socket on a, with SO_REUSEPORT so that every frontend has
 * its own; with probe, a socket without it, bound and not listening, only
 * to learn whether another process listens there already (SO_REUSEPORT
 * would let us share its port without a word).  The fd, or -1 (logged). */
static int open_listener(const sup_addr_t *a, uint16_t port, bool probe)
{
    int family = a->sa.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (!unusable(a, probe))
            log_err("socket() failed: %s", strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!probe)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
                   a->several ? &one : &zero, sizeof(int));
    if (bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0) {
        int e = errno;
        if (!unusable(a, probe))
            log_err("bind() to %s port %u failed: %s%s", a->shown, port,
                    strerror(e),
                    probe && e == EADDRINUSE
                        ? " (another process listens there)" : "");
        close(fd);
        errno = e;
        return -1;
    }
    if (!probe && listen(fd, 4096) < 0) {
        log_err("listen() failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Resolves l and probes its addresses (before any listening socket of
 * ours is open, so only another process can be in the way): the usable
 * ones in a, their number, or -1 (logged). */
static int probe_listener(const cfg_listener_t *l, sup_addr_t *a)
{
    int n = resolve_listener(l, a), m = 0;
    for (int i = 0; i < n; i++) {
        int fd = open_listener(&a[i], l->port, true);
        if (fd >= 0) {
            close(fd);
            a[m++] = a[i];
        } else if (unusable(&a[i], true)) {
            log_warn("listener %s port %u: address %s skipped: %s",
                     l->address, l->port, a[i].shown, strerror(errno));
        } else {
            return -1;
        }
    }
    if (n > 0 && m == 0)
        log_err("listener %s port %u: none of its addresses can be bound",
                l->address, l->port);
    return n < 0 || m == 0 ? -1 : m;
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

/* Index of c in the shm procs[] array (and panic buffers). */
static uint32_t proc_index(const sup_child_t *c)
{
    return c->role == PROC_FRONTEND ? 1 + c->index
                                    : 1 + sup.shm->hdr->n_fe + c->index;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* In a new child: closes every descriptor but stdio and keep[] (the
 * supervisor's admin clients, its event loop, other children's sockets
 * must not stay open in it). */
static void close_others(int *keep, int n)
{
    qsort(keep, (size_t)n, sizeof(int), cmp_int);
    int from = 3;
    for (int i = 0; i < n; i++) {
        if (keep[i] < from)
            continue;
        if (keep[i] > from)
            close_range((unsigned)from, (unsigned)keep[i] - 1, 0);
        from = keep[i] + 1;
    }
    close_range((unsigned)from, ~0u, 0);
}

/* Forks child c.  In the child: names itself, keeps only the fds it
 * needs, runs its main and exits with its code.  Returns 0 or -1
 * (logged). */
static int spawn(const cfg_t *cfg, sup_child_t *c)
{
    shm_t *shm = sup.shm;
    int role = c->role;
    uint32_t idx = c->index;
    pid_t sup_pid = getpid();
    /* Every signal blocked across the fork: a SIGTERM (ours, or the
     * kernel's PDEATHSIG) that reached the child before it reset its
     * handlers would run the supervisor's libevent handler in the child
     * and be lost.  The child unblocks only after the reset. */
    sigset_t all, prev;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &prev);
    pid_t pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &prev, NULL);
        log_err("fork() failed: %s", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        sigprocmask(SIG_SETMASK, &prev, NULL);
        c->pid = pid;
        c->started_ms = clock_ms();
        proc_t *p = &shm->hdr->procs[proc_index(c)];
        p->role = (uint32_t)role;
        p->index = idx;
        p->restarts = c->restarts;
        __atomic_store_n(&p->pid, pid, __ATOMIC_RELAXED);
        return 0;
    }
    /* child */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != sup_pid)
        _exit(0); /* the supervisor died before PDEATHSIG was armed */
    shm_panic_t *pan = shm_panic(shm, proc_index(c));
    panic_init(pan->text, &pan->len, sizeof(pan->text));
    crash_point_init(&shm->hdr->crash_fired);
    char title[64];
    snprintf(title, sizeof(title), "ringmq: %s %u", role_name(role), idx);
    proctitle_set(title);
    char tag[32];
    snprintf(tag, sizeof(tag), "%s %u", role_name(role), idx);
    log_set_role(tag);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t mask = sup.old_mask;
    if (role == PROC_FRONTEND) {
        /* SIGHUP (reload certificates) stays blocked until fe_main()
         * handles it: one sent meanwhile waits instead of being lost. */
        signal(SIGHUP, SIG_DFL);
        sigaddset(&mask, SIGHUP);
    } else {
        signal(SIGHUP, SIG_IGN);
    }
    sigprocmask(SIG_SETMASK, &mask, NULL);
    uint32_t n_fe = shm->hdr->n_fe;
    int keep[SUP_BOUND_MAX + SHM_MAX_PROCS + 2], nk = 0;
    if (log_fd() >= 0)
        keep[nk++] = log_fd();
    int rc;
    if (role == PROC_FRONTEND) {
        /* Our own listener sockets (one per address) and eventfd. */
        int mine[SUP_BOUND_MAX];
        for (int b = 0; b < sup.n_bound; b++)
            keep[nk++] = mine[b] = sup.lfd[b * n_fe + idx];
        keep[nk++] = sup.efd[idx];
        close_others(keep, nk);
        rc = fe_main(cfg, shm, idx, mine, sup.lfd_listener, sup.n_bound,
                     sup.efd[idx]);
    } else {
        for (uint32_t f = 0; f < n_fe; f++)
            keep[nk++] = sup.efd[f];
        close_others(keep, nk);
        rc = fo_main(cfg, shm, idx, sup.efd);
    }
    _exit(rc);
}

static void sup_stop(void);

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

/* Logs and clears child c's last words (its panic buffer), if any.  The
 * child is dead: nobody else writes the buffer now. */
static void last_words(const sup_child_t *c)
{
    shm_panic_t *p = shm_panic(sup.shm, proc_index(c));
    uint32_t n = __atomic_load_n(&p->len, __ATOMIC_RELAXED);
    if (n > sizeof(p->text))
        n = sizeof(p->text);
    if (n == 0)
        return;
    char text[sizeof(p->text) + 1];
    for (uint32_t i = 0; i < n; i++) {
        char ch = p->text[i];
        text[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
    }
    text[n] = '\0';
    log_err("%s %u last words: %s", role_name(c->role), c->index, text);
    p->len = 0;
}

static void respawn(const sup_child_t *c);

/* Decides what follows the death of child c (already logged). */
static void after_exit(sup_child_t *c, int status)
{
    evtimer_del(c->ev_respawn);
    if (sup.stopping)
        return;
    uint32_t delay;
    sup_action_e act = sup_child_exited(status, clock_ms() - c->started_ms,
                                        c->restart_asked, &c->fails, &delay);
    c->restart_asked = false;
    if (act == SUP_STOP_FATAL) {
        log_err("%s %u exited with the fatal-configuration code %d: not "
                "respawned; stopping the broker", role_name(c->role),
                c->index, CFG_EXIT_FATAL);
        sup.failed = 1;
        sup_stop();
        return;
    }
    if (delay == 0) {
        respawn(c);
        return;
    }
    log_warn("%s %u died during start-up (%u times in a row): respawning "
             "in %u ms", role_name(c->role), c->index, c->fails, delay);
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(c->ev_respawn, &tv);
}

/* Reaps exited children and acts on each. */
static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        sup_child_t *c = find_child(pid);
        if (c == NULL)
            continue;
        log_exit(c, status, sup.stopping || c->restart_asked);
        last_words(c);
        c->pid = 0;
        __atomic_store_n(&sup.shm->hdr->procs[proc_index(c)].pid, 0,
                         __ATOMIC_RELAXED);
        after_exit(c, status);
    }
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
    /* Children that see it release their shm chains at exit (the arena
     * leak check); a child restarted alone does not see it. */
    __atomic_store_n(&sup.shm->hdr->stopping, 1, __ATOMIC_RELEASE);
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
    reap();
    stop_if_done();
}

static void respawn(const sup_child_t *cc)
{
    sup_child_t *c = (sup_child_t *)cc;
    if (sup.stopping || c->pid > 0)
        return;
    c->restarts++;
    if (spawn(sup.cfg, c) < 0) {
        c->fails++;
        struct timeval tv = {1, 0};
        evtimer_add(c->ev_respawn, &tv);
        return;
    }
    log_notice("%s %u respawned (pid %d, restart %u)", role_name(c->role),
               c->index, (int)c->pid, c->restarts);
}

static void on_respawn(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sup_child_t *c = arg;
    if (c->pid > 0 && c->restart_asked) {
        /* A restart the child did not honour within SUP_KILL_AFTER s. */
        log_err("%s %u did not stop within %d s of its restart: killing "
                "it", role_name(c->role), c->index, SUP_KILL_AFTER);
        kill(c->pid, SIGKILL);
        return;
    }
    respawn(c);
}

/* The admin socket's restart_frontend / restart_worker: a graceful stop
 * (SIGTERM) of that child, then a respawn at once.  Returns 0, or -1 when
 * no such child is running. */
static int sup_restart(int role, uint32_t idx)
{
    for (int i = 0; i < n_children; i++) {
        sup_child_t *c = &children[i];
        if (c->role != role || c->index != idx)
            continue;
        if (c->pid <= 0 || c->restart_asked)
            return -1;
        c->restart_asked = true;
        log_notice("%s %u: restart asked by the administrator",
                   role_name(role), idx);
        kill(c->pid, SIGTERM);
        struct timeval tv = {SUP_KILL_AFTER, 0};
        evtimer_add(c->ev_respawn, &tv); /* SIGKILL if it lingers */
        return 0;
    }
    return -1;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    on_child();
}

/* Certificates of TLS listeners are read again: by the supervisor, whose
 * contexts a respawned frontend inherits, and by every running frontend
 * (SIGHUP). */
static void sup_reload_tls(void)
{
    fe_tls_reload();
    for (int i = 0; i < n_children; i++)
        if (children[i].pid > 0 && children[i].role == PROC_FRONTEND)
            kill(children[i].pid, SIGHUP);
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
        /* As the admin socket's reload: a file with an error changes
         * nothing, certificates included. */
        if (res)
            sup_reload_tls();
        cJSON_Delete(res); /* everything was logged */
        break;
    }
    case SIGCHLD:
        on_child();
        break;
    default:
        break;
    }
}

/* libevent's own messages, in our log.  A respawned child creates its
 * event base in a process whose memory still holds the supervisor's
 * (fork without exec): libevent then says that two bases have signals,
 * which is expected (the child's base is the one that gets them). */
static void on_event_log(int severity, const char *msg)
{
    if (strncmp(msg, "Added a signal to event base", 28) == 0)
        severity = EVENT_LOG_DEBUG;
    switch (severity) {
    case EVENT_LOG_DEBUG:
        log_debug("libevent: %s", msg);
        break;
    case EVENT_LOG_MSG:
        log_info("libevent: %s", msg);
        break;
    case EVENT_LOG_WARN:
        log_warn("libevent: %s", msg);
        break;
    default:
        log_err("libevent: %s", msg);
    }
}

int sup_run(const cfg_t *cfg)
{
    static shm_t shm;
    static int lfd[SUP_BOUND_MAX * SHM_MAX_PROCS];
    static int lfd_listener[SUP_BOUND_MAX];
    int n_bound = 0;
    int efd[SHM_MAX_PROCS];
    uint32_t n_fe = (uint32_t)cfg->frontends;
    uint32_t n_fo = (uint32_t)cfg->fanout_workers;

    log_set_role("supervisor");
    proctitle_set("ringmq: supervisor");
    event_set_log_callback(on_event_log);
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
    /* Every probe before the first socket of ours: two listeners of the
     * configuration may share a port (a wildcard and a specific address),
     * as they do with SO_REUSEPORT. */
    static sup_addr_t addrs[CFG_MAX_LISTENERS][SUP_ADDRS_MAX];
    int n_addrs[CFG_MAX_LISTENERS];
    for (int l = 0; l < cfg->n_listeners; l++)
        if ((n_addrs[l] = probe_listener(&cfg->listeners[l], addrs[l])) < 0)
            return 1;
    for (int l = 0; l < cfg->n_listeners; l++) {
        const cfg_listener_t *L = &cfg->listeners[l];
        for (int i = 0; i < n_addrs[l]; i++, n_bound++) {
            if (L->address[0] && strcmp(L->address, addrs[l][i].shown))
                log_notice("Opening listen socket on %s (%s) port %u (%u "
                           "frontends).", L->address, addrs[l][i].shown,
                           L->port, n_fe);
            else
                log_notice("Opening listen socket on %s port %u (%u "
                           "frontends).", L->address[0] ? L->address
                           : "all addresses", L->port, n_fe);
            lfd_listener[n_bound] = l;
            for (uint32_t f = 0; f < n_fe; f++) {
                lfd[n_bound * n_fe + f] = open_listener(&addrs[l][i],
                                                        L->port, false);
                if (lfd[n_bound * n_fe + f] < 0)
                    return 1;
            }
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
    uint32_t max_packet = shm_max_packet(&shm, cfg->max_packet_size);
    if (max_packet < cfg->max_packet_size)
        log_warn("max_packet_size %u: a message must fit in one block of a "
                 "frontend's share of arena_size (%llu MiB for %u "
                 "frontends), so packets above %u bytes are refused; raise "
                 "arena_size to take larger ones",
                 (unsigned)cfg->max_packet_size,
                 (unsigned long long)(shm_fe_part(&shm, 0)->size >> 20),
                 n_fe, (unsigned)max_packet);
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

    sup.shm = &shm;
    sup.lfd = lfd;
    sup.lfd_listener = lfd_listener;
    sup.n_bound = n_bound;
    sup.efd = efd;
    sup.old_mask = old;
    sup.cfg = cfg;
    for (uint32_t w = 0; w < n_fo; w++)
        children[n_children++] = (sup_child_t){.role = PROC_FANOUT,
                                               .index = w};
    for (uint32_t f = 0; f < n_fe; f++)
        children[n_children++] = (sup_child_t){.role = PROC_FRONTEND,
                                               .index = f};
    int failed = 0;
    for (int i = 0; i < n_children && !failed; i++)
        if (spawn(cfg, &children[i]) < 0)
            failed = 1;
    /* The listeners belong to the frontends; we keep them so a respawned
     * frontend gets its slot's sockets back. */

    /* The loop is created after the forks: children inherit none of its
     * descriptors. */
    signal(SIGPIPE, SIG_IGN); /* a vanished admin client */
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
    for (int i = 0; i < n_children; i++)
        children[i].ev_respawn = evtimer_new(sup.base, on_respawn,
                                             &children[i]);
    struct timeval sec = {1, 0};
    event_add(sup.ev_reap, &sec);
    sigprocmask(SIG_SETMASK, &old, NULL);

    sup_admin_env_t env = {.base = sup.base,
                           .cfg = cfg,
                           .shm = &shm,
                           .efd = efd,
                           .started = shm.hdr->procs[0].started,
                           .stop = sup_stop,
                           .restart = sup_restart,
                           .reload_tls = sup_reload_tls};
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
    for (int i = 0; i < n_children; i++)
        event_free(children[i].ev_respawn);
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
