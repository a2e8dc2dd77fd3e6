/*
 * log.c -- Mosquitto-style log lines ("1732800000: [frontend 1] message")
 * to stderr, stdout, a file and syslog.  Each line is formatted on the
 * stack and written with one write() call, so the lines of processes that
 * share a descriptor never interleave.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Longest line, newline included.  Below PIPE_BUF (4096), so one write()
 * to a pipe is atomic as well. */
#define LOG_LINE_MAX 2048
#define LOG_ROLE_MAX 64

/* Per process: set before fork by the supervisor, inherited by children,
 * changed afterwards only by log_set_role in the child itself. */
static unsigned log_cur_types = LOG_T_DEFAULT;
/* When set, the types live in this shared word (written by the
 * supervisor only) so they can change at run time in every process. */
static const unsigned *log_shared_types;
static unsigned log_cur_dests = LOG_D_STDERR;
static int log_file_fd = -1;
static bool log_syslog_open;
static char log_role[LOG_ROLE_MAX];

/* Writes len bytes with one write() call; a failure is ignored, as there
 * is nowhere left to report it. */
static void
log_write(int fd, const char *buf, size_t len)
{
    ssize_t n;

    do {
        n = write(fd, buf, len);
    } while (n < 0 && errno == EINTR);
}

/* The syslog priority of the most severe type in type. */
static int
log_syslog_priority(unsigned type)
{
    if (type & LOG_T_ERR) {
        return LOG_ERR;
    }
    if (type & LOG_T_WARNING) {
        return LOG_WARNING;
    }
    if (type & (LOG_T_NOTICE | LOG_T_SUBSCRIBE | LOG_T_UNSUBSCRIBE)) {
        return LOG_NOTICE;
    }
    if (type & LOG_T_INFO) {
        return LOG_INFO;
    }
    return LOG_DEBUG;
}

int
log_setup(unsigned types, unsigned dests, const char *file)
{
    char msg[512];
    int fd = -1, n;

    if (dests & LOG_D_FILE) {
        if (file == NULL || file[0] == '\0') {
            n = snprintf(msg, sizeof(msg),
                         "ringmq: log_setup: file destination without a "
                         "file name\n");
            log_write(STDERR_FILENO, msg, (size_t) n);
            return -1;
        }
        fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            n = snprintf(msg, sizeof(msg),
                         "ringmq: open(\"%.300s\") failed: %s\n", file,
                         strerror(errno));
            log_write(STDERR_FILENO, msg, (size_t) n);
            return -1;
        }
    }

    if (log_file_fd >= 0) {
        close(log_file_fd);
    }
    log_file_fd = fd;

    if ((dests & LOG_D_SYSLOG) && !log_syslog_open) {
        openlog("ringmq", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        log_syslog_open = true;
    } else if (!(dests & LOG_D_SYSLOG) && log_syslog_open) {
        closelog();
        log_syslog_open = false;
    }

    log_cur_types = types;
    log_cur_dests = dests;
    return 0;
}

int
log_fd(void)
{
    return log_file_fd;
}

void
log_set_role(const char *role)
{
    if (role == NULL) {
        log_role[0] = '\0';
        return;
    }
    snprintf(log_role, sizeof(log_role), "%s", role);
}

void
log_share_types(unsigned *word)
{
    if (word != NULL) {
        __atomic_store_n(word, log_cur_types, __ATOMIC_RELAXED);
    }
    log_shared_types = word;
}

void
log_set_types(unsigned types)
{
    log_cur_types = types;
    if (log_shared_types != NULL) {
        __atomic_store_n((unsigned *) log_shared_types, types,
                         __ATOMIC_RELAXED);
    }
}

unsigned
log_types(void)
{
    if (log_shared_types != NULL) {
        return __atomic_load_n(log_shared_types, __ATOMIC_RELAXED);
    }
    return log_cur_types;
}

void
log_vmsg(unsigned type, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t len, ts_len, avail;
    int n, saved_errno;

    if (!(type & log_types()) || log_cur_dests == 0) {
        return;
    }
    saved_errno = errno;

    n = snprintf(line, sizeof(line), "%ld: ", (long) time(NULL));
    ts_len = (size_t) n;
    if (log_role[0] != '\0') {
        n = snprintf(line + ts_len, sizeof(line) - ts_len, "[%s] ",
                     log_role);
    } else {
        n = 0;
    }
    len = ts_len + (size_t) n;

    /* The message; one byte stays free for the newline. */
    avail = sizeof(line) - len - 1;
    errno = saved_errno;  /* for %m */
    n = vsnprintf(line + len, avail, fmt, ap);
    if (n < 0) {
        n = 0;
    }
    if ((size_t) n >= avail) {
        len += avail - 1;
        memcpy(line + len - 3, "...", 3);
    } else {
        len += (size_t) n;
    }
    while (len > ts_len && line[len - 1] == '\n') {
        len--;
    }
    line[len++] = '\n';

    if (log_cur_dests & LOG_D_STDOUT) {
        log_write(STDOUT_FILENO, line, len);
    }
    if (log_cur_dests & LOG_D_STDERR) {
        log_write(STDERR_FILENO, line, len);
    }
    if ((log_cur_dests & LOG_D_FILE) && log_file_fd >= 0) {
        log_write(log_file_fd, line, len);
    }
    if (log_cur_dests & LOG_D_SYSLOG) {
        /* syslog adds its own time stamp. */
        syslog(log_syslog_priority(type), "%.*s", (int) (len - 1 - ts_len),
               line + ts_len);
    }

    errno = saved_errno;
}

void
log_msg(unsigned type, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(type, fmt, ap);
    va_end(ap);
}
