/*
 * test_config.c -- unit tests for common/config.c (Mosquitto-compatible
 * config file and command line) and the file destination of common/log.c.
 * Messages on stderr/stdout are captured and checked, since the file and
 * line they name are what a user relies on.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define T_FILE "t.conf"
#define T_LINE 7
#define T_PREFIX "ringmq: " T_FILE ":7: "

/* ---- capture of stdout / stderr ---------------------------------------- */

static char cap_buf[16384];
static FILE *cap_tmp;
static int cap_saved = -1;
static int cap_fd;

static void
cap_begin(int fd)
{
    fflush(stdout);
    fflush(stderr);
    cap_tmp = tmpfile();
    assert_non_null(cap_tmp);
    cap_fd = fd;
    cap_saved = dup(fd);
    assert_true(cap_saved >= 0);
    assert_true(dup2(fileno(cap_tmp), fd) >= 0);
}

/* Restores the descriptor and returns what was written to it. */
static const char *
cap_end(void)
{
    size_t n;

    fflush(stdout);
    fflush(stderr);
    dup2(cap_saved, cap_fd);
    close(cap_saved);
    cap_saved = -1;
    rewind(cap_tmp);
    n = fread(cap_buf, 1, sizeof(cap_buf) - 1, cap_tmp);
    cap_buf[n] = '\0';
    fclose(cap_tmp);
    return cap_buf;
}

/* Parses one line as t.conf:7 and returns its result; *msg (if not NULL)
 * gets what was printed on stderr. */
static int
line(cfg_t *c, const char *text, const char **msg)
{
    int rc;
    const char *out;

    cap_begin(STDERR_FILENO);
    rc = cfg_parse_line(c, text, T_FILE, T_LINE);
    out = cap_end();
    if (msg != NULL) {
        *msg = out;
    }
    return rc;
}

/* The line must parse and print nothing. */
static void
ok(cfg_t *c, const char *text)
{
    const char *msg;

    if (line(c, text, &msg) != 0 || msg[0] != '\0') {
        fail_msg("'%s' should parse silently; got: %s", text, msg);
    }
}

/* The line must fail with a message naming t.conf:7. */
static void
bad(cfg_t *c, const char *text)
{
    const char *msg;

    if (line(c, text, &msg) != -1) {
        fail_msg("'%s' should be rejected", text);
    }
    if (strncmp(msg, T_PREFIX, strlen(T_PREFIX)) != 0) {
        fail_msg("'%s': message should name the file and line: %s", text,
                 msg);
    }
}

static int
finish(cfg_t *c, const char **msg)
{
    int rc;
    const char *out;

    cap_begin(STDERR_FILENO);
    rc = cfg_finish(c);
    out = cap_end();
    if (msg != NULL) {
        *msg = out;
    }
    return rc;
}

/* Parses argv (NULL-terminated); *out gets stderr, or stdout for -h. */
static int
args(cfg_t *c, int fd, const char **out, ...)
{
    char *argv[32];
    int argc = 0, rc;
    const char *msg;
    va_list ap;

    argv[argc++] = (char *) "ringmq";
    va_start(ap, out);
    while ((argv[argc] = va_arg(ap, char *)) != NULL) {
        argc++;
    }
    va_end(ap);

    cap_begin(fd);
    rc = cfg_parse_args(c, argc, argv);
    msg = cap_end();
    if (out != NULL) {
        *out = msg;
    }
    return rc;
}

/* Writes text to a new temporary file and returns its path in buf. */
static const char *
tmp_conf(char *buf, size_t size, const char *text)
{
    int fd;
    size_t len = strlen(text);

    snprintf(buf, size, "/tmp/ringmq_test_XXXXXX");
    fd = mkstemp(buf);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t) len);
    close(fd);
    return buf;
}

static void
assert_listener(const cfg_t *c, int i, unsigned port, const char *address)
{
    assert_true(i < c->n_listeners);
    assert_int_equal(c->listeners[i].port, port);
    assert_string_equal(c->listeners[i].address, address);
}

static long
ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n;
}

/* ---- defaults ---------------------------------------------------------- */

static void
test_defaults(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    assert_int_equal(c.n_listeners, 0);
    assert_false(c.allow_anonymous_set);
    assert_int_equal(c.max_inflight_messages, 20);
    assert_int_equal(c.max_queued_messages, 1000);
    assert_int_equal(c.max_packet_size, 1048576);
    assert_int_equal(c.message_size_limit, 0);
    assert_int_equal(c.max_keepalive, 65535);
    assert_true(c.retain_available);
    assert_int_equal(c.persistent_client_expiration, 0);
    assert_false(c.per_listener_settings);
    assert_int_equal(c.log_types, LOG_T_DEFAULT);
    assert_int_equal(c.log_dests, LOG_D_STDERR);
    assert_string_equal(c.log_file, "");
    assert_string_equal(c.pid_file, "");
    assert_string_equal(c.user, "");
    assert_int_equal(c.frontends, 0);
    assert_int_equal(c.fanout_workers, 0);
    assert_int_equal(c.max_clients, 16384);
    assert_int_equal(c.arena_size, 256ull << 20);
    assert_int_equal(c.ingest_ring_size, 16384);
    assert_int_equal(c.connect_timeout, 10);
    assert_false(c.daemon);
    assert_false(c.verbose);
}

static void
test_finish_local_only(void **state)
{
    cfg_t c;
    const char *msg;
    long n = ncpu();
    long fe = n < 2 ? 2 : n > 64 ? 64 : n;
    long fo = n / 2 < 1 ? 1 : n / 2 > 64 ? 64 : n / 2;

    (void) state;
    cfg_defaults(&c);
    assert_int_equal(finish(&c, &msg), 0);
    assert_string_equal(msg, "");
    assert_true(c.local_only);
    assert_int_equal(c.n_listeners, 1);
    assert_listener(&c, 0, 1883, "127.0.0.1");
    assert_true(c.allow_anonymous);
    assert_int_equal(c.frontends, fe);
    assert_int_equal(c.fanout_workers, fo);
    assert_int_equal(c.log_types, LOG_T_DEFAULT);

    /* A second call changes nothing. */
    assert_int_equal(finish(&c, NULL), 0);
    assert_int_equal(c.n_listeners, 1);
    assert_true(c.allow_anonymous);
}

static void
test_finish_keeps_explicit_workers(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "frontends 3");
    ok(&c, "fanout_workers 5");
    assert_int_equal(finish(&c, NULL), 0);
    assert_int_equal(c.frontends, 3);
    assert_int_equal(c.fanout_workers, 5);
}

/* frontends + fanout_workers + the supervisor fit the shared memory's
 * CFG_PROCS_MAX places: given counts that do not are an error. */
static void
test_finish_process_limit(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "frontends 64");
    ok(&c, "fanout_workers 63");
    assert_int_equal(finish(&c, NULL), 0);
    assert_int_equal(c.frontends + c.fanout_workers + 1, CFG_PROCS_MAX);

    cfg_defaults(&c);
    ok(&c, "frontends 64");
    ok(&c, "fanout_workers 64");
    assert_int_equal(finish(&c, &msg), -1);
    assert_non_null(strstr(msg, "frontends 64 and fanout_workers 64 are 129 "
                                "processes with the supervisor; at most "
                                "128"));
}

static void
test_local_only_anonymous_false(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "allow_anonymous false");
    assert_int_equal(finish(&c, &msg), 0);
    assert_true(c.local_only);
    assert_false(c.allow_anonymous);
    assert_non_null(strstr(msg, "allow_anonymous is false"));
}

/* ---- listeners --------------------------------------------------------- */

static void
test_listener_accumulates(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "listener 1883");
    ok(&c, "listener 8883 10.0.0.1");
    ok(&c, "listener\t9001\t::1");
    assert_int_equal(c.n_listeners, 3);
    assert_int_equal(finish(&c, &msg), 0);
    assert_false(c.local_only);
    assert_int_equal(c.n_listeners, 3);
    assert_listener(&c, 0, 1883, "");
    assert_listener(&c, 1, 8883, "10.0.0.1");
    assert_listener(&c, 2, 9001, "::1");
    /* Mosquitto 2: listeners configured, allow_anonymous defaults false. */
    assert_false(c.allow_anonymous);
    assert_non_null(strstr(msg, "allow_anonymous is false"));
}

static void
test_listener_with_anonymous(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "allow_anonymous true");
    ok(&c, "listener 1883 0.0.0.0");
    assert_int_equal(finish(&c, &msg), 0);
    assert_true(c.allow_anonymous);
    assert_string_equal(msg, "");
    assert_int_equal(c.n_listeners, 1);
    assert_listener(&c, 0, 1883, "0.0.0.0");
}

static void
test_listener_bad(void **state)
{
    cfg_t c;
    char text[256];
    int i;

    (void) state;
    cfg_defaults(&c);
    bad(&c, "listener");
    bad(&c, "listener 0");
    bad(&c, "listener 0 /tmp/mqtt.sock");
    bad(&c, "listener 65536");
    bad(&c, "listener -1");
    bad(&c, "listener 18830000000000000000000");
    bad(&c, "listener 1883abc");
    bad(&c, "listener abc");
    bad(&c, "listener 1883 127.0.0.1 extra");
    bad(&c, "listener 1883 "
            "a123456789012345678901234567890123456789012345678901234567890"
            "123");
    assert_int_equal(c.n_listeners, 0);

    for (i = 0; i < CFG_MAX_LISTENERS; i++) {
        snprintf(text, sizeof(text), "listener %d", 2000 + i);
        ok(&c, text);
    }
    bad(&c, "listener 3000");
    assert_int_equal(c.n_listeners, CFG_MAX_LISTENERS);
}

static void
test_port_makes_default_listener(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "port 1884");
    assert_int_equal(finish(&c, NULL), 0);
    assert_false(c.local_only);
    assert_int_equal(c.n_listeners, 1);
    assert_listener(&c, 0, 1884, "");
    assert_false(c.allow_anonymous);
}

static void
test_port_after_listeners(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "port 1884");
    ok(&c, "listener 8883");
    assert_int_equal(finish(&c, NULL), 0);
    assert_int_equal(c.n_listeners, 2);
    /* As in Mosquitto, the default listener comes after the others. */
    assert_listener(&c, 0, 8883, "");
    assert_listener(&c, 1, 1884, "");
}

static void
test_port_twice_warns(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "port 1884");
    assert_int_equal(line(&c, "port 1885", &msg), 0);
    assert_non_null(strstr(msg, T_FILE ":7: port is given more than once"));
    assert_int_equal(finish(&c, NULL), 0);
    assert_listener(&c, 0, 1885, "");
}

static void
test_port_bad(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    bad(&c, "port");
    bad(&c, "port 0");
    bad(&c, "port 65536");
    bad(&c, "port 1883 1884");
    bad(&c, "port +1883");
    bad(&c, "port 0x10");
    assert_false(c.default_listener_set);
}

static void
test_bind_address(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "bind_address 10.1.2.3");
    bad(&c, "bind_address 10.1.2.4");
    assert_int_equal(finish(&c, NULL), 0);
    assert_false(c.local_only);
    assert_int_equal(c.n_listeners, 1);
    assert_listener(&c, 0, 1883, "10.1.2.3");

    cfg_defaults(&c);
    bad(&c, "bind_address");
    bad(&c, "bind_address a b");
    ok(&c, "bind_address localhost");
    ok(&c, "port 1999");
    assert_int_equal(finish(&c, NULL), 0);
    assert_listener(&c, 0, 1999, "localhost");
}

static void
test_duplicate_listener(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "listener 1883");
    ok(&c, "listener 1883");
    assert_int_equal(finish(&c, &msg), -1);
    assert_non_null(strstr(msg, "configured twice"));

    cfg_defaults(&c);
    ok(&c, "listener 1883");
    ok(&c, "port 1883");
    assert_int_equal(finish(&c, &msg), -1);

    /* Same port, different addresses: fine. */
    cfg_defaults(&c);
    ok(&c, "listener 1883 127.0.0.1");
    ok(&c, "listener 1883 10.0.0.1");
    assert_int_equal(finish(&c, NULL), 0);
}

static void
test_too_many_with_default_listener(void **state)
{
    cfg_t c;
    char text[64];
    const char *msg;
    int i;

    (void) state;
    cfg_defaults(&c);
    for (i = 0; i < CFG_MAX_LISTENERS; i++) {
        snprintf(text, sizeof(text), "listener %d", 2000 + i);
        ok(&c, text);
    }
    ok(&c, "port 1883");
    assert_int_equal(finish(&c, &msg), -1);
    assert_non_null(strstr(msg, "too many listeners"));
}

/* ---- scalar keys ------------------------------------------------------- */

static void
test_booleans(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "allow_anonymous true");
    assert_true(c.allow_anonymous);
    assert_true(c.allow_anonymous_set);
    ok(&c, "allow_anonymous false");
    assert_false(c.allow_anonymous);
    ok(&c, "allow_anonymous 1");
    assert_true(c.allow_anonymous);
    ok(&c, "retain_available false");
    assert_false(c.retain_available);
    ok(&c, "retain_available true");
    assert_true(c.retain_available);
    ok(&c, "retain_available 0");
    assert_false(c.retain_available);

    bad(&c, "allow_anonymous");
    bad(&c, "allow_anonymous yes");
    bad(&c, "allow_anonymous TRUE");
    bad(&c, "allow_anonymous true false");
    bad(&c, "retain_available on");
}

static void
test_inflight_and_queue(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "max_inflight_messages 1");
    assert_int_equal(c.max_inflight_messages, 1);
    ok(&c, "max_inflight_messages 0");
    assert_int_equal(c.max_inflight_messages, 65535);
    ok(&c, "max_inflight_messages 65535");
    assert_int_equal(c.max_inflight_messages, 65535);
    bad(&c, "max_inflight_messages 65536");
    bad(&c, "max_inflight_messages -1");
    bad(&c, "max_inflight_messages 12abc");
    bad(&c, "max_inflight_messages");

    ok(&c, "max_queued_messages 5000");
    assert_int_equal(c.max_queued_messages, 5000);
    ok(&c, "max_queued_messages 0");
    assert_int_equal(c.max_queued_messages, CFG_QUEUED_MAX);
    ok(&c, "max_queued_messages 65536");
    assert_int_equal(c.max_queued_messages, 65536);
    bad(&c, "max_queued_messages 65537");
    bad(&c, "max_queued_messages -5");
    bad(&c, "max_queued_messages 1.5");
}

static void
test_packet_sizes(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "max_packet_size 20");
    assert_int_equal(c.max_packet_size, 20);
    ok(&c, "max_packet_size 268435460");
    assert_int_equal(c.max_packet_size, 268435460);
    bad(&c, "max_packet_size 19");
    bad(&c, "max_packet_size 0");
    bad(&c, "max_packet_size 268435461");
    bad(&c, "max_packet_size 99999999999999999999999999");
    bad(&c, "max_packet_size 1M");

    assert_true(c.max_queued_bytes == 0); /* default: no byte limit */
    ok(&c, "max_queued_bytes 1000000");
    assert_true(c.max_queued_bytes == 1000000);
    ok(&c, "max_queued_bytes 0");
    assert_true(c.max_queued_bytes == 0);
    bad(&c, "max_queued_bytes -1");
    bad(&c, "max_queued_bytes 10k");
    bad(&c, "max_queued_bytes");
    ok(&c, "message_size_limit 0");
    assert_int_equal(c.message_size_limit, 0);
    ok(&c, "message_size_limit 268435455");
    assert_int_equal(c.message_size_limit, 268435455);
    bad(&c, "message_size_limit 268435456");
    bad(&c, "message_size_limit -1");
}

static void
test_keepalive(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "max_keepalive 0");
    assert_int_equal(c.max_keepalive, 0);
    ok(&c, "max_keepalive 60");
    assert_int_equal(c.max_keepalive, 60);
    ok(&c, "max_keepalive 65535");
    assert_int_equal(c.max_keepalive, 65535);
    bad(&c, "max_keepalive 65536");
    bad(&c, "max_keepalive 60s");
}

static void
test_durations(void **state)
{
    static const struct {
        const char *text;
        int64_t seconds; /* -1: rejected */
    } cases[] = {
        { "1h", 3600 },
        { "2d", 2 * 86400 },
        { "14d", 14 * 86400 },
        { "3w", 3 * 7 * 86400 },
        { "2m", 2 * 30 * 86400 },
        { "1y", 365 * 86400 },
        { "136y", 136ll * 365 * 86400 },
        { "137y", -1 },          /* more than 2^32 - 1 seconds */
        { "99999999999999999999999h", -1 },
        { "0d", -1 },
        { "5", -1 },
        { "h", -1 },
        { "-1d", -1 },
        { "5x", -1 },
        { "5s", -1 },
        { "12abch", -1 },
        { "1 h", -1 },
        { "1H", -1 },
    };
    cfg_t c;
    char text[128];
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg_defaults(&c);
        snprintf(text, sizeof(text), "persistent_client_expiration %s",
                 cases[i].text);
        if (cases[i].seconds < 0) {
            bad(&c, text);
            assert_int_equal(c.persistent_client_expiration, 0);
        } else {
            ok(&c, text);
            assert_int_equal(c.persistent_client_expiration,
                             cases[i].seconds);
        }
    }
    cfg_defaults(&c);
    bad(&c, "persistent_client_expiration");
}

static void
test_ringmq_keys(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "frontends 1");
    assert_int_equal(c.frontends, 1);
    ok(&c, "frontends 64");
    assert_int_equal(c.frontends, 64);
    bad(&c, "frontends 0");
    bad(&c, "frontends 65");
    bad(&c, "frontends two");

    ok(&c, "fanout_workers 1");
    assert_int_equal(c.fanout_workers, 1);
    ok(&c, "fanout_workers 64");
    bad(&c, "fanout_workers 0");
    bad(&c, "fanout_workers 65");

    ok(&c, "max_clients 64");
    assert_int_equal(c.max_clients, 64);
    ok(&c, "max_clients 1048576");
    assert_int_equal(c.max_clients, 1048576);
    bad(&c, "max_clients 63");
    bad(&c, "max_clients 1048577");

    ok(&c, "ingest_ring_size 64");
    assert_int_equal(c.ingest_ring_size, 64);
    ok(&c, "ingest_ring_size 1048576");
    assert_int_equal(c.ingest_ring_size, 1048576);
    ok(&c, "ingest_ring_size 4096");
    assert_int_equal(c.ingest_ring_size, 4096);
    bad(&c, "ingest_ring_size 32");
    bad(&c, "ingest_ring_size 100");
    bad(&c, "ingest_ring_size 2097152");
    bad(&c, "ingest_ring_size 16k");

    ok(&c, "connect_timeout 1");
    assert_int_equal(c.connect_timeout, 1);
    ok(&c, "connect_timeout 3600");
    assert_int_equal(c.connect_timeout, 3600);
    bad(&c, "connect_timeout 0");
    bad(&c, "connect_timeout 3601");
    bad(&c, "connect_timeout 10 20");
}

/* admin_socket (issue 6): the default follows the first listener's
 * port; "none" turns it off; a path longer than sun_path is refused. */
static void
test_admin_socket(void **state)
{
    cfg_t c;
    char line[256];

    (void) state;
    cfg_defaults(&c);
    assert_int_equal(finish(&c, NULL), 0);
    assert_string_equal(c.admin_socket, "/tmp/ringmq-1883.sock");

    cfg_defaults(&c);
    c.cmd_ports[0] = 1999;
    c.n_cmd_ports = 1;
    assert_int_equal(finish(&c, NULL), 0);
    assert_string_equal(c.admin_socket, "/tmp/ringmq-1999.sock");

    cfg_defaults(&c);
    ok(&c, "listener 1884 127.0.0.1");
    ok(&c, "listener 1885");
    assert_int_equal(finish(&c, NULL), 0);
    assert_string_equal(c.admin_socket, "/tmp/ringmq-1884.sock");

    cfg_defaults(&c);
    ok(&c, "admin_socket /run/ringmq/admin sock");
    assert_int_equal(finish(&c, NULL), 0);
    assert_string_equal(c.admin_socket, "/run/ringmq/admin sock");

    cfg_defaults(&c);
    ok(&c, "admin_socket none");
    assert_int_equal(finish(&c, NULL), 0);
    assert_string_equal(c.admin_socket, "");

    cfg_defaults(&c);
    bad(&c, "admin_socket");
    snprintf(line, sizeof(line), "admin_socket /%0107d", 0);
    bad(&c, line);                       /* 108 characters */
    snprintf(line, sizeof(line), "admin_socket /%0106d", 0);
    ok(&c, line);                        /* 107 characters */
    assert_int_equal(strlen(c.admin_socket), CFG_ADMIN_SOCKET_MAX - 1);
}

static void
test_arena_sizes(void **state)
{
    static const struct {
        const char *text;
        uint64_t bytes; /* 0: rejected */
    } cases[] = {
        { "4M", 4ull << 20 },
        { "4m", 4ull << 20 },
        { "4194304", 4ull << 20 },
        { "4096k", 4ull << 20 },
        { "4096K", 4ull << 20 },
        { "1G", 1ull << 30 },
        { "2g", 2ull << 30 },
        { "128G", 128ull << 30 },
        { "129G", 0 },
        { "3M", 0 },
        { "4194303", 0 },
        { "M", 0 },
        { "", 0 },
        { "4T", 0 },
        { "4MB", 0 },
        { "-4M", 0 },
        { "4.5M", 0 },
        { "99999999999999999999G", 0 },
        { "18446744073709551615", 0 },
        { "17179869184G", 0 },  /* would overflow 64 bits once shifted */
    };
    cfg_t c;
    char text[128];
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg_defaults(&c);
        snprintf(text, sizeof(text), "arena_size %s", cases[i].text);
        if (cases[i].bytes == 0) {
            bad(&c, text);
            assert_int_equal(c.arena_size, 256ull << 20);
        } else {
            ok(&c, text);
            assert_int_equal(c.arena_size, cases[i].bytes);
        }
    }
}

static void
test_strings(void **state)
{
    cfg_t c;
    char text[400];

    (void) state;
    cfg_defaults(&c);
    ok(&c, "pid_file /run/ringmq/my broker.pid");
    assert_string_equal(c.pid_file, "/run/ringmq/my broker.pid");
    bad(&c, "pid_file /run/other.pid");
    cfg_defaults(&c);
    bad(&c, "pid_file");
    memset(text, 'a', sizeof(text));
    memcpy(text, "pid_file /", 10);
    text[10 + 256] = '\0';
    bad(&c, text);

    ok(&c, "user mosquitto");
    assert_string_equal(c.user, "mosquitto");
    ok(&c, "user ringmq");
    assert_string_equal(c.user, "ringmq");
    bad(&c, "user");
    bad(&c, "user two words");
    bad(&c, "user "
            "u1234567890123456789012345678901234567890123456789012345678901"
            "23");
}

static void
test_per_listener_settings(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "per_listener_settings false");
    assert_false(c.per_listener_settings);
    assert_int_equal(line(&c, "per_listener_settings true", &msg), -1);
    assert_non_null(strstr(msg, T_FILE ":7: per_listener_settings true is "
                                "not supported yet"));
    bad(&c, "per_listener_settings");
    bad(&c, "per_listener_settings maybe");
}

/* ---- logging keys ------------------------------------------------------ */

static void
test_log_dest(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "log_dest stdout");
    assert_int_equal(c.log_dests, LOG_D_STDOUT);  /* replaces stderr */
    ok(&c, "log_dest syslog");
    assert_int_equal(c.log_dests, LOG_D_STDOUT | LOG_D_SYSLOG);
    ok(&c, "log_dest file /var/log/ringmq/broker log.txt");
    assert_int_equal(c.log_dests, LOG_D_STDOUT | LOG_D_SYSLOG | LOG_D_FILE);
    assert_string_equal(c.log_file, "/var/log/ringmq/broker log.txt");
    bad(&c, "log_dest file /var/log/other.log");
    ok(&c, "log_dest stderr");
    assert_true(c.log_dests & LOG_D_STDERR);
    ok(&c, "log_dest none");
    assert_int_equal(c.log_dests, 0);
    assert_string_equal(c.log_file, "");
    ok(&c, "log_dest file /tmp/x.log");
    assert_int_equal(c.log_dests, LOG_D_FILE);

    assert_int_equal(line(&c, "log_dest topic", &msg), 0);
    assert_string_equal(msg, "ringmq: " T_FILE
                             ":7: log_dest topic is accepted and ignored\n");

    bad(&c, "log_dest");
    bad(&c, "log_dest file");
    bad(&c, "log_dest files");
    bad(&c, "log_dest console");
    bad(&c, "log_dest stdout stderr");
}

static void
test_log_type(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "log_type error");
    assert_int_equal(c.log_types, LOG_T_ERR);  /* replaces the default */
    ok(&c, "log_type warning");
    ok(&c, "log_type debug");
    assert_int_equal(c.log_types, LOG_T_ERR | LOG_T_WARNING | LOG_T_DEBUG);
    ok(&c, "log_type subscribe");
    ok(&c, "log_type unsubscribe");
    ok(&c, "log_type notice");
    ok(&c, "log_type information");
    assert_int_equal(c.log_types, LOG_T_ERR | LOG_T_WARNING | LOG_T_DEBUG
                                      | LOG_T_SUBSCRIBE | LOG_T_UNSUBSCRIBE
                                      | LOG_T_NOTICE | LOG_T_INFO);
    ok(&c, "log_type none");
    assert_int_equal(c.log_types, 0);
    ok(&c, "log_type websockets");
    assert_int_equal(c.log_types, 0);
    ok(&c, "log_type all");
    assert_int_equal(c.log_types, LOG_T_ALL);

    bad(&c, "log_type");
    bad(&c, "log_type errors");
    bad(&c, "log_type error warning");

    /* Never given: the default survives cfg_finish. */
    cfg_defaults(&c);
    assert_int_equal(finish(&c, NULL), 0);
    assert_int_equal(c.log_types, LOG_T_DEFAULT);
}

/* ---- other Mosquitto keys ---------------------------------------------- */

static void
test_ignored_keys(void **state)
{
    static const char *const lines[] = {
        "persistence true",
        "persistence_file mosquitto.db",
        "persistence_location /var/lib/mosquitto/",
        "autosave_interval 1800",
        "autosave_on_changes false",
        "connection_messages true",
        "log_timestamp true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "log_facility 5",
        "sys_interval 10",
        "set_tcp_nodelay true",
        "allow_duplicate_messages false",
        "retry_interval 20",
        "max_inflight_bytes 0",
        "memory_limit 0",
        "check_retain_source true",
        "auto_id_prefix auto-",
        "websockets_log_level 0",
    };
    cfg_t c, before;
    char want[256], key[64];
    const char *msg;
    size_t i;

    (void) state;
    cfg_defaults(&c);
    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        memcpy(&before, &c, sizeof(c));
        sscanf(lines[i], "%63s", key);
        snprintf(want, sizeof(want),
                 "ringmq: " T_FILE ":7: %s is accepted and ignored\n", key);
        if (line(&c, lines[i], &msg) != 0) {
            fail_msg("'%s' should be accepted: %s", lines[i], msg);
        }
        assert_string_equal(msg, want);
        assert_memory_equal(&c, &before, sizeof(c));
    }

    /* The value is still checked, so typos are caught. */
    bad(&c, "persistence");
    bad(&c, "persistence maybe");
    bad(&c, "sys_interval ten");
    bad(&c, "sys_interval -1");
    bad(&c, "persistence_location");
}

static void
test_fixed_keys(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "allow_zero_length_clientid true");
    ok(&c, "queue_qos0_messages false");
    ok(&c, "upgrade_outgoing_qos false");
    ok(&c, "use_username_as_clientid false");
    ok(&c, "max_qos 2");
    ok(&c, "max_connections -1");
    ok(&c, "protocol mqtt");

    assert_int_equal(line(&c, "allow_zero_length_clientid false", &msg), -1);
    assert_string_equal(msg, "ringmq: " T_FILE ":7: "
                             "allow_zero_length_clientid false is not "
                             "supported yet (only true is)\n");
    bad(&c, "queue_qos0_messages true");
    bad(&c, "upgrade_outgoing_qos true");
    bad(&c, "use_username_as_clientid true");
    ok(&c, "max_qos 1");
    assert_int_equal(c.max_qos, 1);
    bad(&c, "max_qos 3");
    ok(&c, "max_topic_alias 0");
    assert_int_equal(c.max_topic_alias, 0);
    bad(&c, "max_topic_alias 65536");
    ok(&c, "max_topic_alias_broker 0");
    assert_int_equal(c.max_topic_alias_broker, 0);
    ok(&c, "response_information reply/to/me");
    assert_string_equal(c.response_info, "reply/to/me");
    bad(&c, "response_information \xff");
    bad(&c, "max_connections 1000");
    bad(&c, "max_connections");
    bad(&c, "allow_zero_length_clientid yes");
    bad(&c, "protocol mqttsn");
}

/* ---- listener options: protocol, TLS, WebSockets ----------------------- */

/* A readable file and a directory for the path checks. */
static char tls_dir[64];
static char tls_file[96];

static void
tls_paths(void)
{
    FILE *f;

    strcpy(tls_dir, "/tmp/ringmq-test-config-XXXXXX");
    assert_non_null(mkdtemp(tls_dir));
    snprintf(tls_file, sizeof(tls_file), "%s/cert.pem", tls_dir);
    f = fopen(tls_file, "w");
    assert_non_null(f);
    fputs("not checked by the parser\n", f);
    fclose(f);
}

static void
tls_paths_done(void)
{
    unlink(tls_file);
    rmdir(tls_dir);
}

static void
okf(cfg_t *c, const char *fmt, const char *arg)
{
    char buf[512];

    snprintf(buf, sizeof(buf), fmt, arg);
    ok(c, buf);
}

static void
test_listener_options(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    tls_paths();
    cfg_defaults(&c);
    ok(&c, "listener 1883");
    ok(&c, "listener 8883 127.0.0.1");
    okf(&c, "certfile %s", tls_file);
    okf(&c, "keyfile %s", tls_file);
    okf(&c, "cafile %s", tls_file);
    okf(&c, "capath %s", tls_dir);
    ok(&c, "require_certificate true");
    ok(&c, "use_identity_as_username true");
    ok(&c, "tls_version tlsv1.3");
    ok(&c, "ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384");
    ok(&c, "ciphers_tls1.3 TLS_AES_128_GCM_SHA256");
    ok(&c, "listener 8080");
    ok(&c, "protocol websockets");
    ok(&c, "websockets_path /ws/mqtt");
    ok(&c, "websockets_max_frame_size 4096");
    ok(&c, "listener 8081");
    ok(&c, "protocol websockets");
    okf(&c, "certfile %s", tls_file);
    okf(&c, "keyfile %s", tls_file);
    ok(&c, "allow_anonymous true");
    assert_int_equal(finish(&c, &msg), 0);
    assert_int_equal(c.n_listeners, 4);

    /* the options went to the listener above them, and only to it */
    assert_int_equal(c.listeners[0].protocol, CFG_PROTO_MQTT);
    assert_string_equal(c.listeners[0].certfile, "");
    assert_string_equal(c.listeners[1].certfile, tls_file);
    assert_string_equal(c.listeners[1].keyfile, tls_file);
    assert_string_equal(c.listeners[1].cafile, tls_file);
    assert_string_equal(c.listeners[1].capath, tls_dir);
    assert_true(c.listeners[1].require_certificate);
    assert_true(c.listeners[1].use_identity_as_username);
    assert_int_equal(c.listeners[1].tls_version, CFG_TLS_V13);
    assert_string_equal(c.listeners[1].ciphers,
                        "ECDHE-RSA-AES128-GCM-SHA256:"
                        "ECDHE-RSA-AES256-GCM-SHA384");
    assert_string_equal(c.listeners[1].ciphers_tls13,
                        "TLS_AES_128_GCM_SHA256");
    assert_int_equal(c.listeners[1].protocol, CFG_PROTO_MQTT);
    assert_int_equal(c.listeners[2].protocol, CFG_PROTO_WEBSOCKETS);
    assert_string_equal(c.listeners[2].ws_path, "/ws/mqtt");
    assert_int_equal(c.listeners[2].ws_max_frame, 4096);
    assert_string_equal(c.listeners[2].certfile, "");
    /* WSS, with the derived defaults */
    assert_int_equal(c.listeners[3].protocol, CFG_PROTO_WEBSOCKETS);
    assert_string_equal(c.listeners[3].certfile, tls_file);
    assert_string_equal(c.listeners[3].ws_path, "/mqtt");
    assert_int_equal(c.listeners[3].ws_max_frame, 1048576);
    assert_false(c.listeners[3].require_certificate);
    assert_int_equal(c.listeners[3].tls_version, CFG_TLS_V12);
    tls_paths_done();
}

static void
test_listener_options_bad(void **state)
{
    cfg_t c;
    const char *msg;
    char buf[512];

    (void) state;
    tls_paths();
    cfg_defaults(&c);
    ok(&c, "listener 8883");
    bad(&c, "protocol mqttsn");
    bad(&c, "protocol");
    bad(&c, "protocol mqtt websockets");
    assert_int_equal(line(&c, "certfile /nonexistent/server.pem", &msg), -1);
    assert_string_equal(msg, T_PREFIX "certfile: cannot read "
                             "/nonexistent/server.pem: No such file or "
                             "directory\n");
    bad(&c, "keyfile /nonexistent/server.key");
    bad(&c, "cafile /nonexistent/ca.pem");
    bad(&c, "certfile");
    snprintf(buf, sizeof(buf), "certfile %s", tls_dir);
    bad(&c, buf);
    bad(&c, buf + 4); /* "file DIR": unknown key */
    snprintf(buf, sizeof(buf), "capath %s", tls_file);
    bad(&c, buf);
    bad(&c, "capath /nonexistent");
    bad(&c, "require_certificate yes");
    bad(&c, "use_identity_as_username 2");
    assert_int_equal(line(&c, "tls_version tlsv1.1", &msg), -1);
    assert_non_null(strstr(msg, "TLS 1.2 and 1.3"));
    bad(&c, "tls_version tlsv1");
    bad(&c, "tls_version 1.2");
    bad(&c, "tls_version");
    bad(&c, "ciphers");
    bad(&c, "ciphers A B");
    bad(&c, "websockets_path mqtt");
    bad(&c, "websockets_path /a b");
    bad(&c, "websockets_path /a?b");
    bad(&c, "websockets_max_frame_size 125");
    bad(&c, "websockets_max_frame_size 268435461");
    bad(&c, "websockets_max_frame_size 1k");

    /* combinations, checked once the file is read; %s is a readable
     * file */
    static const struct {
        const char *lines[3];
        const char *want;
    } combos[] = {
        {{"keyfile %s"}, "keyfile is given without certfile"},
        {{"certfile %s"}, "certfile is given without keyfile"},
        {{"cafile %s"}, "need certfile and keyfile"},
        {{"certfile %s", "keyfile %s", "require_certificate true"},
         "needs cafile or capath"},
        {{"certfile %s", "keyfile %s", "use_identity_as_username true"},
         "needs require_certificate true"},
        {{"certfile %s", "keyfile %s", "websockets_path /x"},
         "need protocol websockets"},
    };
    for (size_t i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
        cfg_defaults(&c);
        c.allow_anonymous_set = true;
        ok(&c, "listener 8883");
        for (size_t k = 0; k < 3 && combos[i].lines[k] != NULL; k++) {
            okf(&c, combos[i].lines[k], tls_file);
        }
        assert_int_equal(finish(&c, &msg), -1);
        if (strstr(msg, "listener 8883: ") == NULL
            || strstr(msg, combos[i].want) == NULL)
        {
            fail_msg("combination %zu: unexpected message: %s", i, msg);
        }
    }
    tls_paths_done();
}

/* Options before the first listener line belong to the default listener
 * (port, bind_address), as in Mosquitto; without one they are an error
 * rather than silently dropped. */
static void
test_listener_options_default_listener(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "port 8080");
    ok(&c, "protocol websockets");
    ok(&c, "allow_anonymous true");
    assert_int_equal(finish(&c, &msg), 0);
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.listeners[0].port, 8080);
    assert_int_equal(c.listeners[0].protocol, CFG_PROTO_WEBSOCKETS);
    assert_string_equal(c.listeners[0].ws_path, "/mqtt");

    cfg_defaults(&c);
    ok(&c, "protocol websockets");
    assert_int_equal(finish(&c, &msg), -1);
    assert_non_null(strstr(msg, "but no listener"));

    /* protocol mqtt changes nothing: still local-only */
    cfg_defaults(&c);
    ok(&c, "protocol mqtt");
    assert_int_equal(finish(&c, &msg), 0);
    assert_true(c.local_only);
}

/* TLS options before the first listener line, with listeners but no
 * port line: there is no default listener to take them, and dropping them
 * would leave the listener below without TLS.  The file is refused, naming
 * the options and their lines. */
static void
test_listener_options_before_listener_lost(void **state)
{
    char text[1024], path[64], want[256];
    const char *msg;
    cfg_t c;

    (void) state;
    tls_paths();
    snprintf(text, sizeof(text),
             "certfile %s\nkeyfile %s\ncafile %s\n"
             "require_certificate true\nlistener 21890 127.0.0.1\n"
             "allow_anonymous true\n", tls_file, tls_file, tls_file);
    tmp_conf(path, sizeof(path), text);
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-c", path, NULL), -1);
    snprintf(want, sizeof(want),
             "ringmq: %s: certfile (line 1), keyfile (line 2), cafile "
             "(line 3), require_certificate (line 4) would be lost", path);
    if (strstr(msg, want) == NULL
        || strstr(msg, "after the listener line") == NULL)
    {
        fail_msg("unexpected message: %s", msg);
    }
    unlink(path);

    /* With a port line they make the default listener, as in Mosquitto */
    snprintf(text, sizeof(text),
             "port 8883\ncertfile %s\nkeyfile %s\n"
             "listener 1883 127.0.0.1\nallow_anonymous true\n", tls_file,
             tls_file);
    tmp_conf(path, sizeof(path), text);
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-c", path, NULL), 0);
    unlink(path);
    assert_int_equal(c.n_listeners, 2);
    assert_listener(&c, 0, 1883, "127.0.0.1");
    assert_string_equal(c.listeners[0].certfile, "");
    assert_listener(&c, 1, 8883, "");
    assert_string_equal(c.listeners[1].certfile, tls_file);

    /* Options after the listener line are fine without a port line */
    snprintf(text, sizeof(text),
             "listener 8883\ncertfile %s\nkeyfile %s\n"
             "allow_anonymous true\n", tls_file, tls_file);
    tmp_conf(path, sizeof(path), text);
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-c", path, NULL), 0);
    unlink(path);
    assert_int_equal(c.n_listeners, 1);
    assert_string_equal(c.listeners[0].certfile, tls_file);
    tls_paths_done();
}

static void
test_unsupported_keys(void **state)
{
    static const char *const lines[] = {
        "password_file /etc/mosquitto/passwd",
        "acl_file /etc/mosquitto/acl",
        "psk_file /etc/mosquitto/psk",
        "psk_hint hint",
        "auth_plugin /usr/lib/auth.so",
        "auth_opt_db_host localhost",
        "plugin /usr/lib/mosquitto_dynamic_security.so",
        "plugin_opt_config_file /etc/dynsec.json",
        "global_plugin /usr/lib/p.so",
        "http_dir /var/www",
        "crlfile /etc/ssl/crl.pem",
        "dhparamfile /etc/ssl/dh.pem",
        "use_subject_as_username true",
        "websockets_headers_size 4096",
        "mount_point tenant/",
        "include_dir /etc/mosquitto/conf.d",
        "connection bridge-01",
        "address 10.0.0.1:1883",
        "bridge_cafile /etc/ssl/ca.pem",
        "topic # both 0",
        "socket_domain ipv4",
        "bind_interface eth0",
        "clientid_prefixes secure-",
    };
    cfg_t c;
    const char *msg;
    size_t i;

    (void) state;
    cfg_defaults(&c);
    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (line(&c, lines[i], &msg) != -1) {
            fail_msg("'%s' must be refused", lines[i]);
        }
        if (strncmp(msg, T_PREFIX, strlen(T_PREFIX)) != 0
            || strstr(msg, "is not supported yet") == NULL)
        {
            fail_msg("'%s': unexpected message: %s", lines[i], msg);
        }
    }
}

static void
test_unknown_key(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    assert_int_equal(line(&c, "foo_bar 12", &msg), -1);
    assert_string_equal(msg, "ringmq: " T_FILE ":7: unknown key 'foo_bar'\n");
    bad(&c, "Port 1883");       /* keys are case-sensitive */
    bad(&c, "listener_1883");
}

static void
test_comments_and_blanks(void **state)
{
    cfg_t c;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "");
    ok(&c, "   ");
    ok(&c, "\t\t");
    ok(&c, "# a comment");
    ok(&c, "#listener 1883");
    ok(&c, "   # an indented comment with listener 1");
    ok(&c, "\r");
    ok(&c, "  port   1884  \t\r");
    assert_int_equal(c.default_listener.port, 1884);
    ok(&c, "max_keepalive\t120");
    assert_int_equal(c.max_keepalive, 120);
    /* '#' after a value is not a comment: Mosquitto does not have them. */
    bad(&c, "max_keepalive 60 # one minute");
    assert_int_equal(c.n_listeners, 0);
}

static void
test_long_line(void **state)
{
    cfg_t c;
    char text[2000];

    (void) state;
    cfg_defaults(&c);
    memset(text, ' ', sizeof(text));
    text[sizeof(text) - 1] = '\0';
    bad(&c, text);
}

/* ---- cross-key checks in cfg_finish ------------------------------------ */

static void
test_message_size_vs_packet_size(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    /* 1 + 3 + (2 + 1 + 1048569) = 1048576: just fits the default. */
    cfg_defaults(&c);
    ok(&c, "message_size_limit 1048569");
    assert_int_equal(finish(&c, NULL), 0);

    cfg_defaults(&c);
    ok(&c, "message_size_limit 1048570");
    assert_int_equal(finish(&c, &msg), -1);
    assert_non_null(strstr(msg, "message_size_limit 1048570 cannot be "
                                "reached"));

    cfg_defaults(&c);
    ok(&c, "message_size_limit 10000000");
    ok(&c, "max_packet_size 20000000");
    assert_int_equal(finish(&c, NULL), 0);

    cfg_defaults(&c);
    ok(&c, "message_size_limit 16");
    ok(&c, "max_packet_size 20");
    assert_int_equal(finish(&c, NULL), -1);
    cfg_defaults(&c);
    ok(&c, "message_size_limit 15");
    ok(&c, "max_packet_size 20");
    assert_int_equal(finish(&c, NULL), 0);
}

static void
test_packet_size_vs_arena(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    cfg_defaults(&c);
    ok(&c, "arena_size 4M");
    ok(&c, "max_packet_size 8388608");
    assert_int_equal(finish(&c, &msg), -1);
    assert_non_null(strstr(msg, "larger than arena_size"));
}

/* ---- files ------------------------------------------------------------- */

static void
test_parse_file(void **state)
{
    static const char text[] =
        "# A Mosquitto-style file\n"
        "\n"
        "per_listener_settings false\r\n"
        "listener 1883\n"
        "listener 8883 192.168.1.10\n"
        "   allow_anonymous true   \n"
        "max_inflight_messages 0\n"
        "max_queued_messages 2000\n"
        "\tmax_packet_size 2097152\n"
        "message_size_limit 1000000\n"
        "max_keepalive 300\n"
        "retain_available false\n"
        "persistent_client_expiration 2w\n"
        "log_dest stderr\n"
        "log_dest file /tmp/ringmq-test.log\n"
        "log_type error\n"
        "log_type warning\n"
        "pid_file /tmp/ringmq.pid\n"
        "user nobody\n"
        "frontends 4\n"
        "fanout_workers 2\n"
        "max_clients 100000\n"
        "arena_size 1G\n"
        "ingest_ring_size 8192\n"
        "connect_timeout 30\n"
        "# no newline at the end\n"
        "persistence false";
    char path[64];
    const char *msg;
    cfg_t c;
    int rc;

    (void) state;
    tmp_conf(path, sizeof(path), text);
    cfg_defaults(&c);
    cap_begin(STDERR_FILENO);
    rc = cfg_parse_file(&c, path);
    msg = cap_end();
    assert_int_equal(rc, 0);
    assert_string_equal(c.config_file, path);
    /* Only the ignored key at the last line says something. */
    assert_non_null(strstr(msg, ":27: persistence is accepted and ignored"));
    assert_int_equal(finish(&c, NULL), 0);
    unlink(path);

    assert_int_equal(c.n_listeners, 2);
    assert_listener(&c, 0, 1883, "");
    assert_listener(&c, 1, 8883, "192.168.1.10");
    assert_true(c.allow_anonymous);
    assert_int_equal(c.max_inflight_messages, 65535);
    assert_int_equal(c.max_queued_messages, 2000);
    assert_int_equal(c.max_packet_size, 2097152);
    assert_int_equal(c.message_size_limit, 1000000);
    assert_int_equal(c.max_keepalive, 300);
    assert_false(c.retain_available);
    assert_int_equal(c.persistent_client_expiration, 14 * 86400);
    assert_int_equal(c.log_dests, LOG_D_STDERR | LOG_D_FILE);
    assert_string_equal(c.log_file, "/tmp/ringmq-test.log");
    assert_int_equal(c.log_types, LOG_T_ERR | LOG_T_WARNING);
    assert_string_equal(c.pid_file, "/tmp/ringmq.pid");
    assert_string_equal(c.user, "nobody");
    assert_int_equal(c.frontends, 4);
    assert_int_equal(c.fanout_workers, 2);
    assert_int_equal(c.max_clients, 100000);
    assert_int_equal(c.arena_size, 1ull << 30);
    assert_int_equal(c.ingest_ring_size, 8192);
    assert_int_equal(c.connect_timeout, 30);
}

static void
test_parse_file_error_names_line(void **state)
{
    char path[64], want[128];
    const char *msg;
    cfg_t c;
    int rc;

    (void) state;
    tmp_conf(path, sizeof(path),
             "# comment\n"
             "listener 1883\n"
             "\n"
             "max_inflight 10\n"
             "port 1884\n");
    cfg_defaults(&c);
    cap_begin(STDERR_FILENO);
    rc = cfg_parse_file(&c, path);
    msg = cap_end();
    unlink(path);
    assert_int_equal(rc, -1);
    snprintf(want, sizeof(want),
             "ringmq: %s:4: unknown key 'max_inflight'\n", path);
    assert_string_equal(msg, want);
    /* Parsing stopped at the bad line. */
    assert_false(c.default_listener_set);
}

static void
test_parse_file_unreadable(void **state)
{
    const char *msg;
    cfg_t c;
    int rc;

    (void) state;
    cfg_defaults(&c);
    cap_begin(STDERR_FILENO);
    rc = cfg_parse_file(&c, "/nonexistent/ringmq.conf");
    msg = cap_end();
    assert_int_equal(rc, -1);
    assert_non_null(strstr(msg, "ringmq: /nonexistent/ringmq.conf: cannot "
                                "open"));

    cap_begin(STDERR_FILENO);
    rc = cfg_parse_file(&c, "/tmp");
    msg = cap_end();
    assert_int_equal(rc, -1);
    assert_non_null(strstr(msg, "is a directory"));
}

static void
test_parse_file_long_line(void **state)
{
    char text[3000], path[64], want[128];
    const char *msg;
    cfg_t c;
    int rc;

    (void) state;
    memset(text, 'x', sizeof(text));
    memcpy(text, "port 1884\n# ", 12);
    memcpy(text + sizeof(text) - 2, "\n", 2);
    tmp_conf(path, sizeof(path), text);
    cfg_defaults(&c);
    cap_begin(STDERR_FILENO);
    rc = cfg_parse_file(&c, path);
    msg = cap_end();
    unlink(path);
    assert_int_equal(rc, -1);
    snprintf(want, sizeof(want), "ringmq: %s:2: line is longer", path);
    assert_non_null(strstr(msg, want));
}

/* Parses the len bytes of text as a file; *msg gets what was printed. */
static int
parse_bytes(cfg_t *c, const char *text, size_t len, char *path,
            size_t size, const char **msg)
{
    int fd, rc;

    snprintf(path, size, "/tmp/ringmq_test_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t) len);
    close(fd);
    cfg_defaults(c);
    cap_begin(STDERR_FILENO);
    rc = cfg_parse_file(c, path);
    *msg = cap_end();
    unlink(path);
    return rc;
}

/* A NUL byte is named as such; the length limit leaves out LF and CRLF. */
static void
test_parse_file_nul_and_crlf(void **state)
{
    static const char nul[] = "port 1884\nmax_keepalive 6\0000\n";
    char text[1100], path[64], want[128];
    const char *msg;
    cfg_t c;

    (void) state;
    assert_int_equal(parse_bytes(&c, nul, sizeof(nul) - 1, path,
                                 sizeof(path), &msg), -1);
    snprintf(want, sizeof(want), "ringmq: %s:2: line contains a NUL byte",
             path);
    assert_non_null(strstr(msg, want));

    /* A comment of exactly 1024 characters, with CRLF: accepted. */
    memset(text, 'x', sizeof(text));
    text[0] = '#';
    memcpy(text + 1024, "\r\nport 1885\r\n", 13);
    assert_int_equal(parse_bytes(&c, text, 1024 + 13, path, sizeof(path),
                                 &msg), 0);
    assert_int_equal(c.default_listener.port, 1885);

    /* One more: too long. */
    memset(text, 'x', sizeof(text));
    text[0] = '#';
    memcpy(text + 1025, "\r\n", 2);
    assert_int_equal(parse_bytes(&c, text, 1025 + 2, path, sizeof(path),
                                 &msg), -1);
    assert_non_null(strstr(msg, ":1: line is longer than 1024"));
}

/* ---- command line ------------------------------------------------------ */

static void
test_args_none(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    assert_int_equal(args(&c, STDERR_FILENO, &msg, NULL), 0);
    assert_string_equal(msg, "");
    assert_true(c.local_only);
    assert_int_equal(c.n_listeners, 1);
    assert_listener(&c, 0, 1883, "127.0.0.1");
    assert_true(c.allow_anonymous);
    assert_true(c.finished);
}

static void
test_args_config_file(void **state)
{
    char path[64];
    cfg_t c;
    const char *msg;

    (void) state;
    tmp_conf(path, sizeof(path),
             "listener 1999\nallow_anonymous true\nmax_clients 128\n");
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-c", path, NULL), 0);
    assert_string_equal(msg, "");
    assert_string_equal(c.config_file, path);
    assert_false(c.local_only);
    assert_int_equal(c.n_listeners, 1);
    assert_listener(&c, 0, 1999, "");
    assert_int_equal(c.max_clients, 128);

    assert_int_equal(args(&c, STDERR_FILENO, &msg, "--config-file", path,
                          NULL), 0);
    assert_int_equal(c.max_clients, 128);

    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-c", path, "-c", path,
                          NULL), -1);
    assert_non_null(strstr(msg, "only one config file"));
    unlink(path);

    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-c",
                          "/nonexistent/x.conf", NULL), -1);
    assert_non_null(strstr(msg, "/nonexistent/x.conf: cannot open"));
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-c", NULL), -1);
    assert_non_null(strstr(msg, "missing config file name"));
}

static void
test_args_ports_local_only(void **state)
{
    cfg_t c;

    (void) state;
    assert_int_equal(args(&c, STDERR_FILENO, NULL, "-p", "1884", "--port",
                          "1885", NULL), 0);
    assert_true(c.local_only);
    assert_int_equal(c.n_listeners, 2);
    assert_listener(&c, 0, 1884, "127.0.0.1");
    assert_listener(&c, 1, 1885, "127.0.0.1");
    assert_true(c.allow_anonymous);
}

static void
test_args_ports_ignored_with_listeners(void **state)
{
    char path[64];
    cfg_t c;
    const char *msg;

    (void) state;
    tmp_conf(path, sizeof(path), "listener 1999\n");
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-p", "1884", "-c", path,
                          NULL), 0);
    unlink(path);
    assert_non_null(strstr(msg, "-p is ignored"));
    assert_int_equal(c.n_listeners, 1);
    assert_listener(&c, 0, 1999, "");
    assert_false(c.allow_anonymous);
}

static void
test_args_bad_ports(void **state)
{
    char many[64];
    char *argv[2 * CFG_MAX_LISTENERS + 4];
    const char *msg;
    cfg_t c;
    int i, argc = 0, rc;

    (void) state;
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-p", NULL), -1);
    assert_non_null(strstr(msg, "missing port"));
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-p", "0", NULL), -1);
    assert_non_null(strstr(msg, "'0' is not a port number"));
    assert_int_equal(args(&c, STDERR_FILENO, NULL, "-p", "65536", NULL), -1);
    assert_int_equal(args(&c, STDERR_FILENO, NULL, "-p", "18a", NULL), -1);
    assert_int_equal(args(&c, STDERR_FILENO, NULL, "-p", "-1", NULL), -1);

    argv[argc++] = (char *) "ringmq";
    for (i = 0; i <= CFG_MAX_LISTENERS; i++) {
        argv[argc++] = (char *) "-p";
        argv[argc++] = (char *) "2000";
    }
    argv[argc] = NULL;
    snprintf(many, sizeof(many), "at most %d ports", CFG_MAX_LISTENERS);
    cap_begin(STDERR_FILENO);
    rc = cfg_parse_args(&c, argc, argv);
    msg = cap_end();
    assert_int_equal(rc, -1);
    assert_non_null(strstr(msg, many));
}

static void
test_args_verbose_daemon(void **state)
{
    char path[64];
    cfg_t c;

    (void) state;
    assert_int_equal(args(&c, STDERR_FILENO, NULL, NULL), 0);
    assert_false(c.verbose);
    assert_false(c.daemon);

    tmp_conf(path, sizeof(path), "log_type error\n");
    assert_int_equal(args(&c, STDERR_FILENO, NULL, "-v", "-d", "-c", path,
                          NULL), 0);
    assert_true(c.verbose);
    assert_true(c.daemon);
    /* -v overrides the file's log_type lines. */
    assert_int_equal(c.log_types, LOG_T_ALL);

    assert_int_equal(args(&c, STDERR_FILENO, NULL, "--verbose", "--daemon",
                          NULL), 0);
    assert_true(c.verbose);
    assert_true(c.daemon);
    assert_int_equal(c.log_types, LOG_T_ALL);

    assert_int_equal(args(&c, STDERR_FILENO, NULL, "-c", path, NULL), 0);
    assert_int_equal(c.log_types, LOG_T_ERR);
    unlink(path);
}

static void
test_args_help(void **state)
{
    cfg_t c;
    const char *out;

    (void) state;
    assert_int_equal(args(&c, STDOUT_FILENO, &out, "-h", NULL), 1);
    assert_non_null(strstr(out, "Usage: ringmq [-c config_file]"));
    assert_int_equal(args(&c, STDOUT_FILENO, &out, "-v", "--help", NULL), 1);
    assert_non_null(strstr(out, "Usage:"));
}

static void
test_args_unknown(void **state)
{
    cfg_t c;
    const char *msg;

    (void) state;
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-x", NULL), -1);
    assert_non_null(strstr(msg, "ringmq: unknown option '-x'"));
    assert_non_null(strstr(msg, "Usage:"));
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "--port=1883", NULL), -1);
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "mosquitto.conf", NULL),
                     -1);
    assert_non_null(strstr(msg, "unknown option 'mosquitto.conf'"));
}

static void
test_args_bad_file_is_fatal(void **state)
{
    char path[64], want[128];
    cfg_t c;
    const char *msg;

    (void) state;
    tmp_conf(path, sizeof(path), "listener 1883\npassword_file /etc/pw\n");
    assert_int_equal(args(&c, STDERR_FILENO, &msg, "-c", path, NULL), -1);
    unlink(path);
    snprintf(want, sizeof(want),
             "ringmq: %s:2: password_file is not supported yet", path);
    assert_non_null(strstr(msg, want));
}

/* ---- log.c file destination -------------------------------------------- */

static const char *
read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void
test_log_file_format(void **state)
{
    char path[64], buf[8192], big[4000];
    regex_t re;
    cfg_t c;

    (void) state;
    tmp_conf(path, sizeof(path), "");
    cfg_defaults(&c);
    snprintf(c.log_file, sizeof(c.log_file), "%s", path);
    assert_int_equal(log_setup(LOG_T_DEFAULT, LOG_D_FILE, c.log_file), 0);
    assert_int_equal(log_types(), LOG_T_DEFAULT);

    log_set_role("frontend 1");
    log_info("hello %d", 5);
    log_debug("not logged %d", 6);
    log_set_role(NULL);
    log_err("no role\n");

    read_file(path, buf, sizeof(buf));
    assert_int_equal(regcomp(&re,
                             "^[0-9]+: \\[frontend 1\\] hello 5\n"
                             "[0-9]+: no role\n$",
                             REG_EXTENDED),
                     0);
    if (regexec(&re, buf, 0, NULL, 0) != 0) {
        fail_msg("unexpected log file content: '%s'", buf);
    }
    regfree(&re);

    /* Long messages are cut, end in "...", and keep their newline. */
    assert_int_equal(truncate(path, 0), 0);
    memset(big, 'y', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    log_warn("%s", big);
    read_file(path, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 2047);
    assert_memory_equal(buf + 2047 - 4, "...\n", 4);

    assert_int_equal(log_setup(LOG_T_DEFAULT, LOG_D_STDERR, NULL), 0);
    unlink(path);
}

static void
test_log_setup_bad_file(void **state)
{
    const char *msg;
    int rc;

    (void) state;
    cap_begin(STDERR_FILENO);
    rc = log_setup(LOG_T_ALL, LOG_D_FILE, "/nonexistent/dir/ringmq.log");
    msg = cap_end();
    assert_int_equal(rc, -1);
    assert_non_null(strstr(msg, "/nonexistent/dir/ringmq.log"));
    /* Nothing changed. */
    assert_int_equal(log_types(), LOG_T_DEFAULT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_finish_local_only),
        cmocka_unit_test(test_finish_keeps_explicit_workers),
        cmocka_unit_test(test_finish_process_limit),
        cmocka_unit_test(test_local_only_anonymous_false),
        cmocka_unit_test(test_listener_accumulates),
        cmocka_unit_test(test_listener_with_anonymous),
        cmocka_unit_test(test_listener_bad),
        cmocka_unit_test(test_port_makes_default_listener),
        cmocka_unit_test(test_port_after_listeners),
        cmocka_unit_test(test_port_twice_warns),
        cmocka_unit_test(test_port_bad),
        cmocka_unit_test(test_bind_address),
        cmocka_unit_test(test_duplicate_listener),
        cmocka_unit_test(test_too_many_with_default_listener),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_inflight_and_queue),
        cmocka_unit_test(test_packet_sizes),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_ringmq_keys),
        cmocka_unit_test(test_admin_socket),
        cmocka_unit_test(test_arena_sizes),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_per_listener_settings),
        cmocka_unit_test(test_log_dest),
        cmocka_unit_test(test_log_type),
        cmocka_unit_test(test_ignored_keys),
        cmocka_unit_test(test_fixed_keys),
        cmocka_unit_test(test_unsupported_keys),
        cmocka_unit_test(test_listener_options),
        cmocka_unit_test(test_listener_options_bad),
        cmocka_unit_test(test_listener_options_default_listener),
        cmocka_unit_test(test_listener_options_before_listener_lost),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_comments_and_blanks),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_message_size_vs_packet_size),
        cmocka_unit_test(test_packet_size_vs_arena),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_parse_file_nul_and_crlf),
        cmocka_unit_test(test_parse_file_error_names_line),
        cmocka_unit_test(test_parse_file_unreadable),
        cmocka_unit_test(test_parse_file_long_line),
        cmocka_unit_test(test_args_none),
        cmocka_unit_test(test_args_config_file),
        cmocka_unit_test(test_args_ports_local_only),
        cmocka_unit_test(test_args_ports_ignored_with_listeners),
        cmocka_unit_test(test_args_bad_ports),
        cmocka_unit_test(test_args_verbose_daemon),
        cmocka_unit_test(test_args_help),
        cmocka_unit_test(test_args_unknown),
        cmocka_unit_test(test_args_bad_file_is_fatal),
        cmocka_unit_test(test_log_file_format),
        cmocka_unit_test(test_log_setup_bad_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
