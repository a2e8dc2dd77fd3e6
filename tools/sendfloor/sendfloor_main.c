/*
 * ringmq-sendfloor -- what the kernel alone charges a fan-out broker on
 * this machine: one process writes a frame of B bytes to each of N
 * loopback TCP sockets, R rounds a second, and reports its own CPU time
 * per write.  A child process reads the other ends (epoll), as a load
 * generator's subscribers do.
 *
 * No MQTT, no broker work: a broker that writes each delivery to its own
 * socket cannot spend less than this per delivery, and on loopback the
 * receiver's side of TCP (lookup, queueing, wake-up) runs in the sender's
 * time too.  tools/bench-compare --floor runs it next to F1 and F3.
 *
 *   --mode uring   one io_uring submission per round (at most 256 sends
 *                  each, registered sockets), as ringmq's frontends write
 *   --mode send    one send() per socket, as Mosquitto writes
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define URING_DEPTH 256

typedef struct opts {
    int n;          /* sockets */
    double rate;    /* rounds per second, 0: back to back */
    int bytes;      /* per frame */
    double secs;    /* measured */
    double warmup;  /* before the measurement */
    bool uring;
    bool json;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ringmq-sendfloor [-n SOCKETS] [-r ROUNDS_PER_S] "
            "[-b BYTES] [-d SECS]\n"
            "                        [--warmup SECS] [--mode uring|send] "
            "[--json]\n"
            "  -n      loopback TCP connections written to (default 1000)\n"
            "  -r      rounds per second, one frame per socket each; 0: back "
            "to back (50)\n"
            "  -b      bytes per frame (96: a 64-byte PUBLISH of "
            "ringmq-bench)\n"
            "  -d      measured seconds (10), after --warmup seconds (2)\n"
            "  --mode  uring: one io_uring submission per round (ringmq); "
            "send: one\n"
            "          send() per socket (Mosquitto) (uring)\n"
            "Prints the sender's CPU time (user + system) per frame "
            "written.\n");
}

static int die(const char *what)
{
    fprintf(stderr, "ringmq-sendfloor: %s: %s\n", what, strerror(errno));
    return 1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int parse_opts(int argc, char **argv, opts_t *o)
{
    static const struct option longs[] = {
        {"warmup", required_argument, NULL, 'w'},
        {"mode", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    *o = (opts_t){.n = 1000, .rate = 50, .bytes = 96, .secs = 10,
                  .warmup = 2, .uring = true};
    int ch;
    double v;
    while ((ch = getopt_long(argc, argv, "n:r:b:d:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (!parse_num(optarg, 1, 20000, &v))
                goto bad;
            o->n = (int)v;
            break;
        case 'r':
            if (!parse_num(optarg, 0, 100000, &o->rate))
                goto bad;
            break;
        case 'b':
            if (!parse_num(optarg, 1, 65536, &v))
                goto bad;
            o->bytes = (int)v;
            break;
        case 'd':
            if (!parse_num(optarg, 0.1, 3600, &o->secs))
                goto bad;
            break;
        case 'w':
            if (!parse_num(optarg, 0, 3600, &o->warmup))
                goto bad;
            break;
        case 'm':
            if (strcmp(optarg, "uring") == 0)
                o->uring = true;
            else if (strcmp(optarg, "send") == 0)
                o->uring = false;
            else
                goto bad;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ringmq-sendfloor: unexpected argument '%s'\n",
                argv[optind]);
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "ringmq-sendfloor: bad value '%s' for %s (see --help)\n",
            optarg, ch == 'w' ? "--warmup" : ch == 'm' ? "--mode"
                    : ch == 'n' ? "-n" : ch == 'r' ? "-r" : ch == 'b' ? "-b"
                                                                 : "-d");
    return -1;
}

/* The child: connects n sockets to addr and reads whatever comes until
 * the parent goes (or kills it). */
static void receiver(const struct sockaddr_in *addr, int n, int ready_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int ep = epoll_create1(0);
    if (ep < 0)
        _exit(die("epoll_create1"));
    for (int i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0 || connect(s, (const struct sockaddr *)addr,
                             sizeof(*addr)) < 0)
            _exit(die("connect"));
        fcntl(s, F_SETFL, O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN, .data.fd = s};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &e) < 0)
            _exit(die("epoll_ctl"));
    }
    char one = 1;
    if (write(ready_fd, &one, 1) != 1)
        _exit(1);
    static char buf[65536];
    struct epoll_event ev[512];
    for (;;) {
        int k = epoll_wait(ep, ev, 512, -1);
        for (int i = 0; i < k; i++)
            if (read(ev[i].data.fd, buf, sizeof(buf)) == 0)
                _exit(0);
    }
}

/* One round: a frame to every socket.  Returns frames written whole. */
static long round_send(const int *fd, int n, const char *frame, int bytes)
{
    long ok = 0;
    for (int i = 0; i < n; i++)
        if (send(fd[i], frame, (size_t)bytes, MSG_DONTWAIT | MSG_NOSIGNAL) ==
            bytes)
            ok++;
    return ok;
}

static long round_uring(struct io_uring *ring, int n, const char *frame,
                        int bytes)
{
    long ok = 0;
    for (int i = 0; i < n;) {
        int k = 0;
        for (; k < URING_DEPTH && i < n; k++, i++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
            io_uring_prep_send(sqe, i, frame, (size_t)bytes,
                               MSG_DONTWAIT | MSG_NOSIGNAL);
            sqe->flags |= IOSQE_FIXED_FILE;
        }
        int rc = io_uring_submit_and_wait(ring, (unsigned)k);
        if (rc < 0) {
            fprintf(stderr, "ringmq-sendfloor: io_uring_submit_and_wait: %s\n",
                    strerror(-rc));
            exit(1);
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            if (cqe->res == bytes)
                ok++;
            seen++;
        }
        io_uring_cq_advance(ring, seen);
    }
    return ok;
}

int main(int argc, char **argv)
{
    opts_t o;
    if (parse_opts(argc, argv, &o) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        rl.rlim_cur < (rlim_t)o.n * 2 + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        getsockname(ls, (struct sockaddr *)&addr, &alen) < 0 ||
        listen(ls, 4096) < 0)
        return die("listen on 127.0.0.1");
    int pfd[2];
    if (pipe(pfd) < 0)
        return die("pipe");
    pid_t child = fork();
    if (child < 0)
        return die("fork");
    if (child == 0) {
        close(ls);
        receiver(&addr, o.n, pfd[1]);
    }
    int *fd = calloc((size_t)o.n, sizeof(int));
    if (fd == NULL)
        return die("calloc");
    int one = 1;
    for (int i = 0; i < o.n; i++) {
        fd[i] = accept(ls, NULL, NULL);
        if (fd[i] < 0) {
            kill(child, SIGKILL);
            return die("accept");
        }
        setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(fd[i], F_SETFL, O_NONBLOCK);
    }
    char ready;
    if (read(pfd[0], &ready, 1) != 1) {
        fprintf(stderr, "ringmq-sendfloor: the receiver did not start\n");
        return 1;
    }

    struct io_uring ring;
    if (o.uring) {
        struct io_uring_params p = {
            .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
        int rc = io_uring_queue_init_params(URING_DEPTH, &ring, &p);
        if (rc == 0)
            rc = io_uring_register_files(&ring, fd, (unsigned)o.n);
        if (rc < 0) {
            fprintf(stderr, "ringmq-sendfloor: io_uring: %s (try --mode "
                    "send)\n", strerror(-rc));
            kill(child, SIGKILL);
            return 1;
        }
    }
    char *frame = malloc((size_t)o.bytes);
    if (frame == NULL)
        return die("malloc");
    memset(frame, 'x', (size_t)o.bytes);

    double start = now_s(), next = start, t0 = 0, c0 = 0;
    bool measuring = false;
    long frames = 0, rounds = 0;
    for (;;) {
        double t = now_s();
        if (!measuring && t - start >= o.warmup) {
            measuring = true;
            t0 = t;
            c0 = cpu_s();
        }
        if (measuring && t - t0 >= o.secs)
            break;
        if (o.rate > 0) {
            next += 1.0 / o.rate;
            double wait = next - now_s();
            if (wait > 0) {
                struct timespec ts = {(time_t)wait,
                                      (long)((wait - (time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        long ok = o.uring ? round_uring(&ring, o.n, frame, o.bytes)
                          : round_send(fd, o.n, frame, o.bytes);
        if (measuring) {
            frames += ok;
            rounds++;
        }
    }
    double cpu = cpu_s() - c0, wall = now_s() - t0;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    if (o.uring)
        io_uring_queue_exit(&ring);
    for (int i = 0; i < o.n; i++)
        close(fd[i]);
    free(fd);
    free(frame);
    double us = frames ? cpu * 1e6 / (double)frames : 0;
    if (o.json)
        printf("{\"mode\": \"%s\", \"sockets\": %d, \"rate\": %g, "
               "\"bytes\": %d, \"seconds\": %.3f, \"rounds\": %ld, "
               "\"frames\": %ld, \"cpu_us\": %.0f, "
               "\"cpu_us_per_frame\": %.4f}\n",
               o.uring ? "uring" : "send", o.n, o.rate, o.bytes, wall,
               rounds, frames, cpu * 1e6, us);
    else
        printf("%s: %ld frames of %d bytes to %d sockets in %.1f s "
               "(%ld rounds): %.3f us sender CPU per frame\n",
               o.uring ? "io_uring" : "send()", frames, o.bytes, o.n, wall,
               rounds, us);
    return frames ? 0 : 1;
}
