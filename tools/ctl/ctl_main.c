/*
 * ctl_main.c -- ringmqctl: sends one command to a running broker's admin
 * socket and prints the answer, as tables or (--json) as JSON.
 *
 *   ringmqctl [-s SOCKET] [-p PORT] [--json] COMMAND [key=value ...]
 *
 * Exit status: 0 the command succeeded, 1 the broker answered with an
 * error, 2 no answer (no broker, permission denied, timeout) or a bad
 * command line.  See docs/admin.md.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "sup_admin_req.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: ringmqctl [-s SOCKET] [-p PORT] [--json] COMMAND "
            "[key=value ...]\n"
            "\n"
            "  -s SOCKET  the broker's admin socket (default "
            "/tmp/ringmq-1883.sock)\n"
            "  -p PORT    the admin socket of the broker whose first "
            "listener is PORT\n"
            "             (/tmp/ringmq-PORT.sock, the broker's default)\n"
            "  --json     print the result as JSON (for scripts)\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < ADM_CMD_COUNT; i++) {
        const adm_cmd_t *c = &adm_cmds[i];
        fprintf(f, "  %-17s %s\n", c->name, c->help);
        for (const adm_arg_spec_t *a = c->args; a->name; a++) {
            char kv[64];
            snprintf(kv, sizeof(kv), "%s=%s", a->name,
                     a->type == ADM_ARG_UINT     ? "N"
                     : a->type == ADM_ARG_BOOL   ? "true|false"
                     : a->type == ADM_ARG_CHOICE ? "WORD"
                                                 : "TEXT");
            fprintf(f, "      %-28s %s%s\n", kv, a->help,
                    a->required ? " (required)" : "");
        }
    }
    fprintf(f, "\nExamples:\n"
               "  ringmqctl clients limit=10\n"
               "  ringmqctl kick client_id=sensor-7 discard_session=true\n"
               "  ringmqctl retained get topic=home/temp\n"
               "  ringmqctl --json stats\n"
               "\nExit status: 0 ok, 1 the command failed, 2 cannot "
               "talk to the broker.\n");
}

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 +
           (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Connects to path.  Returns the fd, or -1 after printing why. */
static int connect_to(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "ringmqctl: socket path %s is too long\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "ringmqctl: socket() failed: %s\n", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        if (e == ENOENT || e == ECONNREFUSED)
            fprintf(stderr, "ringmqctl: no broker listening at %s (is "
                            "admin_socket set?)\n", path);
        else if (e == EACCES || e == EPERM)
            fprintf(stderr, "ringmqctl: permission denied for %s (run as "
                            "the broker's user or a member of its group)\n",
                    path);
        else
            fprintf(stderr, "ringmqctl: cannot connect to %s: %s\n", path,
                    strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends line and reads one response line (returned NUL-terminated, to be
 * freed), within the deadline.  NULL after printing why. */
static char *exchange(int fd, const char *path, const char *line,
                      const struct timespec *deadline)
{
    size_t len = strlen(line), off = 0;
    while (off < len) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        long left = ms_left(deadline);
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            goto timeout;
        ssize_t n = send(fd, line + off, len - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            fprintf(stderr, "ringmqctl: sending to %s failed: %s\n", path,
                    strerror(errno));
            return NULL;
        }
        off += (size_t)n;
    }
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            fprintf(stderr, "ringmqctl: out of memory\n");
            return NULL;
        }
        char *nl = got ? memchr(buf, '\n', got) : NULL;
        if (nl != NULL) {
            *nl = '\0';
            return buf;
        }
        if (got + 1 >= cap) {
            if (cap >= CTL_RESPONSE_MAX) {
                fprintf(stderr, "ringmqctl: response larger than %u "
                                "bytes\n", CTL_RESPONSE_MAX);
                free(buf);
                return NULL;
            }
            cap *= 2;
            buf = realloc(buf, cap);
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long left = ms_left(deadline);
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            free(buf);
            goto timeout;
        }
        ssize_t n = recv(fd, buf + got, cap - got - 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            fprintf(stderr, "ringmqctl: the broker at %s closed the "
                            "connection without an answer\n", path);
            free(buf);
            return NULL;
        }
        got += (size_t)n;
    }
timeout:
    fprintf(stderr, "ringmqctl: no answer from %s within %d s\n", path,
            CTL_TIMEOUT_MS / 1000);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    char pathbuf[108];
    int json = 0, i;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            char *end;
            unsigned long port = strtoul(argv[++i], &end, 10);
            if (*end || port < 1 || port > 65535) {
                fprintf(stderr, "ringmqctl: '%s' is not a port number\n",
                        argv[i]);
                return CTL_EXIT_CONNECT;
            }
            snprintf(pathbuf, sizeof(pathbuf), "/tmp/ringmq-%lu.sock", port);
            path = pathbuf;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return CTL_EXIT_OK;
        } else if (!strcmp(argv[i], "-s") || !strcmp(argv[i], "-p")) {
            fprintf(stderr, "ringmqctl: option '%s' needs a value\n\n",
                    argv[i]);
            usage(stderr);
            return CTL_EXIT_CONNECT;
        } else {
            fprintf(stderr, "ringmqctl: unknown option '%s'\n\n", argv[i]);
            usage(stderr);
            return CTL_EXIT_CONNECT;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return CTL_EXIT_CONNECT;
    }
    const char *cmd = argv[i++];
    if (!strcmp(cmd, "help")) {
        usage(stdout);
        return CTL_EXIT_OK;
    }
    if (path == NULL)
        path = "/tmp/ringmq-1883.sock";

    char err[256];
    cJSON *req = ctl_build_request(cmd, argc - i, argv + i, err,
                                   sizeof(err));
    if (req == NULL) {
        fprintf(stderr, "ringmqctl: %s\n", err);
        return CTL_EXIT_CONNECT;
    }
    char *text = cJSON_PrintUnformatted(req);
    size_t tl = strlen(text);
    char *line = malloc(tl + 2);
    memcpy(line, text, tl);
    memcpy(line + tl, "\n", 2);
    cJSON_free(text);

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += CTL_TIMEOUT_MS / 1000;
    int fd = connect_to(path);
    if (fd < 0) {
        free(line);
        cJSON_Delete(req);
        return CTL_EXIT_CONNECT;
    }
    char *answer = exchange(fd, path, line, &deadline);
    close(fd);
    free(line);
    if (answer == NULL) {
        cJSON_Delete(req);
        return CTL_EXIT_CONNECT;
    }
    cJSON *resp = cJSON_Parse(answer);
    free(answer);
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(resp, "ok");
    if (!cJSON_IsBool(ok)) {
        fprintf(stderr, "ringmqctl: the broker's answer is not a response "
                        "object\n");
        cJSON_Delete(resp);
        cJSON_Delete(req);
        return CTL_EXIT_CONNECT;
    }
    int rc = CTL_EXIT_OK;
    if (cJSON_IsFalse(ok)) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        fprintf(stderr, "ringmqctl: %s: %s\n",
                cJSON_IsString(code) ? code->valuestring : "error",
                cJSON_IsString(msg) ? msg->valuestring : "(no message)");
        if (json) {
            char *s = cJSON_Print(e);
            printf("%s\n", s ? s : "null");
            cJSON_free(s);
        }
        rc = CTL_EXIT_FAILED;
    } else {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(resp, "result");
        if (json) {
            char *s = cJSON_Print(res);
            printf("%s\n", s ? s : "null");
            cJSON_free(s);
        } else {
            ctl_print(cmd, req, res);
        }
    }
    cJSON_Delete(resp);
    cJSON_Delete(req);
    return rc;
}
