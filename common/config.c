/*
 * config.c -- reads Mosquitto's configuration file format and command line
 * into a cfg_t, plus ringmq's own keys.  Every error names the file and
 * line and is fatal; keys that could silently weaken security are refused.
 * The listener keys and their TLS and WebSocket options are in
 * config_listener.c.
 */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "mqtt.h"

#define CFG_LINE_MAX 1024     /* bytes of one config line, newline excluded */
#define CFG_MSG_MAX 1024      /* bytes of one message on stderr */

#define CFG_PACKET_MIN 20u
#define CFG_PACKET_MAX 268435460u   /* 268435455 remaining + 5 header */
#define CFG_PACKET_DEFAULT 1048576u
#define CFG_PAYLOAD_MAX 268435455u
#define CFG_WORKERS_MAX 64
#define CFG_CLIENTS_MIN 64u
#define CFG_CLIENTS_MAX 1048576u
#define CFG_ARENA_MIN (4ull << 20)
#define CFG_ARENA_MAX (128ull << 30)
#define CFG_ARENA_DEFAULT (256ull << 20)
#define CFG_RING_MIN 64u
#define CFG_RING_MAX 1048576u
#define CFG_TIMEOUT_MAX 3600u
#define CFG_DEFAULT_PORT 1883
#define CFG_LOCAL_ADDRESS "127.0.0.1"

typedef int (*cfg_handler_pt)(cfg_t *c, const cfg_line_t *l);

/* A key: either a handler, or (handler NULL) a plain unsigned number in
 * [min, max] stored in the cfg_t field at off, of size bytes. */
typedef struct cfg_key {
    const char *name;
    cfg_handler_pt handler;
    uint64_t min, max;
    size_t off;
    size_t size;
} cfg_key_t;

#define CFG_UINT(name, field, lo, hi)                                       \
    { name, NULL, lo, hi, offsetof(cfg_t, field),                           \
      sizeof(((cfg_t *) 0)->field) }

/* How the value of an accepted-and-ignored key is checked. */
typedef enum cfg_arg {
    CFG_ARG_BOOL,   /* true | false */
    CFG_ARG_UINT,   /* unsigned decimal number */
    CFG_ARG_TEXT    /* any non-empty text */
} cfg_arg_e;

typedef struct cfg_ignored {
    const char *name;
    cfg_arg_e arg;
} cfg_ignored_t;

/* A Mosquitto key ringmq accepts only with the value given here, because
 * ringmq always behaves as Mosquitto does with that value. */
typedef struct cfg_fixed {
    const char *name;
    cfg_arg_e arg;
    const char *value;
} cfg_fixed_t;

/* A Mosquitto key whose absence would change security or routing. */
typedef struct cfg_unsupported {
    const char *name;
    int prefix;         /* match every key that starts with name */
    const char *what;
} cfg_unsupported_t;

static int cfg_key_allow_anonymous(cfg_t *c, const cfg_line_t *l);
static int cfg_key_max_inflight(cfg_t *c, const cfg_line_t *l);
static int cfg_key_max_queued(cfg_t *c, const cfg_line_t *l);
static int cfg_key_retain_available(cfg_t *c, const cfg_line_t *l);
static int cfg_key_expiration(cfg_t *c, const cfg_line_t *l);
static int cfg_key_log_dest(cfg_t *c, const cfg_line_t *l);
static int cfg_key_log_type(cfg_t *c, const cfg_line_t *l);
static int cfg_key_pid_file(cfg_t *c, const cfg_line_t *l);
static int cfg_key_user(cfg_t *c, const cfg_line_t *l);
static int cfg_key_response_info(cfg_t *c, const cfg_line_t *l);
static int cfg_key_per_listener(cfg_t *c, const cfg_line_t *l);
static int cfg_key_include_dir(cfg_t *c, const cfg_line_t *l);
static int cfg_key_arena_size(cfg_t *c, const cfg_line_t *l);
static int cfg_key_ingest_ring(cfg_t *c, const cfg_line_t *l);
static int cfg_key_admin_socket(cfg_t *c, const cfg_line_t *l);

static const cfg_key_t cfg_keys[] = {
    { "listener", cfg_key_listener },
    { "port", cfg_key_port },
    { "bind_address", cfg_key_bind_address },
    { "allow_anonymous", cfg_key_allow_anonymous },
    { "max_inflight_messages", cfg_key_max_inflight },
    { "max_queued_messages", cfg_key_max_queued },
    CFG_UINT("max_queued_bytes", max_queued_bytes, 0, UINT64_MAX / 2),
    CFG_UINT("max_packet_size", max_packet_size, CFG_PACKET_MIN, CFG_PACKET_MAX),
    CFG_UINT("message_size_limit", message_size_limit, 0, CFG_PAYLOAD_MAX),
    CFG_UINT("max_keepalive", max_keepalive, 0, 65535),
    CFG_UINT("max_qos", max_qos, 0, 2),
    CFG_UINT("max_topic_alias", max_topic_alias, 0, 65535),
    CFG_UINT("max_topic_alias_broker", max_topic_alias_broker, 0, 65535),
    CFG_UINT("write_coalesce_ms", write_coalesce_ms, 0, CFG_COALESCE_MAX),
    { "retain_available", cfg_key_retain_available },
    { "persistent_client_expiration", cfg_key_expiration },
    { "log_dest", cfg_key_log_dest },
    { "log_type", cfg_key_log_type },
    { "pid_file", cfg_key_pid_file },
    { "user", cfg_key_user },
    { "response_information", cfg_key_response_info },
    { "per_listener_settings", cfg_key_per_listener },
    { "protocol", cfg_key_protocol },
    { "include_dir", cfg_key_include_dir },
    CFG_UINT("frontends", frontends, 1, CFG_WORKERS_MAX),
    CFG_UINT("fanout_workers", fanout_workers, 1, CFG_WORKERS_MAX),
    CFG_UINT("max_clients", max_clients, CFG_CLIENTS_MIN, CFG_CLIENTS_MAX),
    { "arena_size", cfg_key_arena_size },
    { "ingest_ring_size", cfg_key_ingest_ring },
    CFG_UINT("connect_timeout", connect_timeout, 1, CFG_TIMEOUT_MAX),
    { "admin_socket", cfg_key_admin_socket },
    /* listener options: they apply to the listener above them */
    { "certfile", cfg_key_tls_file },
    { "keyfile", cfg_key_tls_file },
    { "cafile", cfg_key_tls_file },
    { "capath", cfg_key_capath },
    { "require_certificate", cfg_key_tls_bool },
    { "use_identity_as_username", cfg_key_tls_bool },
    { "tls_version", cfg_key_tls_version },
    { "ciphers", cfg_key_ciphers },
    { "ciphers_tls1.3", cfg_key_ciphers },
    { "websockets_path", cfg_key_ws_path },
    { "websockets_max_frame_size", cfg_key_ws_frame },
};

/* Keep in sync with docs/configuration.md, "Accepted and ignored". */
static const cfg_ignored_t cfg_ignored[] = {
    { "persistence", CFG_ARG_BOOL },
    { "persistence_file", CFG_ARG_TEXT },
    { "persistence_location", CFG_ARG_TEXT },
    { "autosave_interval", CFG_ARG_TEXT },
    { "autosave_on_changes", CFG_ARG_BOOL },
    { "connection_messages", CFG_ARG_BOOL },
    { "log_timestamp", CFG_ARG_BOOL },
    { "log_timestamp_format", CFG_ARG_TEXT },
    { "log_facility", CFG_ARG_UINT },
    { "sys_interval", CFG_ARG_UINT },
    { "set_tcp_nodelay", CFG_ARG_BOOL },
    { "allow_duplicate_messages", CFG_ARG_BOOL },
    { "retry_interval", CFG_ARG_TEXT },
    { "max_inflight_bytes", CFG_ARG_UINT },
    { "memory_limit", CFG_ARG_UINT },
    { "check_retain_source", CFG_ARG_BOOL },
    { "auto_id_prefix", CFG_ARG_TEXT },
    { "websockets_log_level", CFG_ARG_TEXT },
};

/* Keep in sync with docs/configuration.md, "Accepted with one value". */
static const cfg_fixed_t cfg_fixed[] = {
    { "allow_zero_length_clientid", CFG_ARG_BOOL, "true" },
    { "queue_qos0_messages", CFG_ARG_BOOL, "false" },
    { "upgrade_outgoing_qos", CFG_ARG_BOOL, "false" },
    { "use_username_as_clientid", CFG_ARG_BOOL, "false" },
    { "max_connections", CFG_ARG_TEXT, "-1" },
};

/* Keep in sync with docs/configuration.md, "Not supported yet". */
static const cfg_unsupported_t cfg_unsupported[] = {
    { "password_file", 0, "password authentication" },
    { "acl_file", 0, "access control lists" },
    { "psk_file", 0, "TLS-PSK authentication" },
    { "psk_hint", 0, "TLS-PSK authentication" },
    { "auth_plugin", 0, "authentication plugins" },
    { "auth_plugin_deny_special_chars", 0, "authentication plugins" },
    { "auth_opt_", 1, "authentication plugins" },
    { "plugin", 0, "plugins" },
    { "global_plugin", 0, "plugins" },
    { "plugin_opt_", 1, "plugins" },
    { "crlfile", 0, "TLS" },
    { "dhparamfile", 0, "TLS" },
    { "tls_engine", 0, "TLS" },
    { "tls_engine_kpass_sha1", 0, "TLS" },
    { "tls_keyform", 0, "TLS" },
    { "use_subject_as_username", 0, "TLS client certificates" },
    { "http_dir", 0, "WebSockets" },
    { "websockets_headers_size", 0, "WebSockets" },
    { "mount_point", 0, "mount points" },
    { "clientid_prefixes", 0, "client id prefixes" },
    { "bind_interface", 0, "binding to an interface" },
    { "socket_domain", 0, "restricting a listener to IPv4 or IPv6" },
    { "connection", 0, "bridges" },
    { "address", 0, "bridges" },
    { "addresses", 0, "bridges" },
    { "bridge_", 1, "bridges" },
    { "cleansession", 0, "bridges" },
    { "local_cleansession", 0, "bridges" },
    { "clientid", 0, "bridges" },
    { "local_clientid", 0, "bridges" },
    { "local_password", 0, "bridges" },
    { "local_username", 0, "bridges" },
    { "remote_clientid", 0, "bridges" },
    { "remote_password", 0, "bridges" },
    { "remote_username", 0, "bridges" },
    { "username", 0, "bridges" },
    { "password", 0, "bridges" },
    { "keepalive_interval", 0, "bridges" },
    { "idle_timeout", 0, "bridges" },
    { "notifications", 0, "bridges" },
    { "notifications_local_only", 0, "bridges" },
    { "notification_topic", 0, "bridges" },
    { "restart_timeout", 0, "bridges" },
    { "round_robin", 0, "bridges" },
    { "start_type", 0, "bridges" },
    { "threshold", 0, "bridges" },
    { "topic", 0, "bridges" },
    { "try_private", 0, "bridges" },
};

#define CFG_NELTS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- messages ---------------------------------------------------------- */

/* Writes "ringmq: <formatted>\n" to stderr with one write() call. */
static void
cfg_vprint(const char *fmt, va_list ap)
{
    char buf[CFG_MSG_MAX];
    int n;
    size_t len;
    ssize_t w;

    memcpy(buf, "ringmq: ", 8);
    n = vsnprintf(buf + 8, sizeof(buf) - 9, fmt, ap);
    if (n < 0) {
        n = 0;
    }
    len = 8 + (size_t) n;
    if (len > sizeof(buf) - 2) {
        len = sizeof(buf) - 2;
    }
    buf[len++] = '\n';

    do {
        w = write(STDERR_FILENO, buf, len);
    } while (w < 0 && errno == EINTR);
}

void
cfg_print(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cfg_vprint(fmt, ap);
    va_end(ap);
}

/* Prints "ringmq: FILE:LINE: message" and returns -1. */
int
cfg_error(const cfg_line_t *l, const char *fmt, ...)
{
    char msg[CFG_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    cfg_print("%s:%d: %s", l->file, l->lineno, msg);
    return -1;
}

void
cfg_warn(const cfg_line_t *l, const char *fmt, ...)
{
    char msg[CFG_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    cfg_print("%s:%d: %s", l->file, l->lineno, msg);
}

/* ---- value parsers ----------------------------------------------------- */

/* Parses an unsigned decimal number that fills all of s.  No sign, no
 * spaces, no overflow.  Returns 0 or -1. */
static int
cfg_str_to_u64(const char *s, uint64_t *v)
{
    uint64_t n = 0;
    unsigned d;

    if (*s == '\0') {
        return -1;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        d = (unsigned) (*s - '0');
        if (n > (UINT64_MAX - d) / 10) {
            return -1;
        }
        n = n * 10 + d;
    }
    *v = n;
    return 0;
}

/* Parses "true" or "false" (and "1" / "0", as newer Mosquitto does). */
static int
cfg_str_to_bool(const char *s, bool *b)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        *b = true;
        return 0;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        *b = false;
        return 0;
    }
    return -1;
}

/* Checks that the line has between min and max words after the key. */
int
cfg_nargs(const cfg_line_t *l, int min, int max)
{
    if (l->argc < min) {
        if (l->argc == 0) {
            return cfg_error(l, "%s: missing value", l->key);
        }
        return cfg_error(l, "%s: missing argument", l->key);
    }
    if (l->argc > max) {
        return cfg_error(l, "%s: unexpected argument '%s'", l->key,
                         l->argv[max]);
    }
    return 0;
}

/* Parses word i as a number in [min, max]. */
int
cfg_arg_uint(const cfg_line_t *l, int i, uint64_t min, uint64_t max,
             uint64_t *v)
{
    if (cfg_str_to_u64(l->argv[i], v) < 0) {
        return cfg_error(l, "%s: '%s' is not a valid number", l->key,
                         l->argv[i]);
    }
    if (*v < min || *v > max) {
        return cfg_error(l, "%s: %s is out of range (%llu to %llu)", l->key,
                         l->argv[i], (unsigned long long) min,
                         (unsigned long long) max);
    }
    return 0;
}

/* The line must hold exactly one number in [min, max]. */
int
cfg_one_uint(const cfg_line_t *l, uint64_t min, uint64_t max, uint64_t *v)
{
    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    return cfg_arg_uint(l, 0, min, max, v);
}

/* The line must hold exactly one boolean. */
int
cfg_one_bool(const cfg_line_t *l, bool *b)
{
    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    if (cfg_str_to_bool(l->argv[0], b) < 0) {
        return cfg_error(l, "%s: '%s' is not true or false", l->key,
                         l->argv[0]);
    }
    return 0;
}

/* Copies the rest of the line (spaces allowed, as Mosquitto does for paths)
 * into dst of size bytes. */
int
cfg_rest_string(const cfg_line_t *l, const char *s, char *dst, size_t size)
{
    size_t len = strlen(s);

    if (len == 0) {
        return cfg_error(l, "%s: missing value", l->key);
    }
    if (len >= size) {
        return cfg_error(l, "%s: value is longer than %zu characters",
                         l->key, size - 1);
    }
    memcpy(dst, s, len + 1);
    return 0;
}

/* ---- Mosquitto keys ---------------------------------------------------- */

/* A plain unsigned key of the table: range-checked, stored by size. */
static int
cfg_key_uint(cfg_t *c, const cfg_line_t *l, const cfg_key_t *k)
{
    uint64_t v;
    uint8_t *field = (uint8_t *) c + k->off;

    if (cfg_one_uint(l, k->min, k->max, &v) < 0) {
        return -1;
    }
    switch (k->size) {
    case sizeof(uint16_t): {
        uint16_t x = (uint16_t) v;
        memcpy(field, &x, sizeof(x));
        break;
    }
    case sizeof(uint32_t): {
        uint32_t x = (uint32_t) v;
        memcpy(field, &x, sizeof(x));
        break;
    }
    case sizeof(uint64_t):
        memcpy(field, &v, sizeof(v));
        break;
    default:
        return cfg_error(l, "%s: internal error: field of %zu bytes", l->key,
                         k->size);
    }
    return 0;
}

static int
cfg_key_allow_anonymous(cfg_t *c, const cfg_line_t *l)
{
    if (cfg_one_bool(l, &c->allow_anonymous) < 0) {
        return -1;
    }
    c->allow_anonymous_set = true;
    return 0;
}

static int
cfg_key_max_inflight(cfg_t *c, const cfg_line_t *l)
{
    uint64_t v;

    if (cfg_one_uint(l, 0, 65535, &v) < 0) {
        return -1;
    }
    /* Mosquitto: 0 means no maximum; MQTT v5 Receive Maximum tops at
     * 65535. */
    c->max_inflight_messages = v == 0 ? 65535 : (uint32_t) v;
    return 0;
}

static int
cfg_key_max_queued(cfg_t *c, const cfg_line_t *l)
{
    uint64_t v;

    if (cfg_one_uint(l, 0, CFG_QUEUED_MAX, &v) < 0) {
        return -1;
    }
    c->max_queued_messages = v == 0 ? CFG_QUEUED_MAX : (uint32_t) v;
    return 0;
}

static int
cfg_key_retain_available(cfg_t *c, const cfg_line_t *l)
{
    return cfg_one_bool(l, &c->retain_available);
}

/* Mosquitto's duration: a positive number followed by h, d, w, m (30 days)
 * or y (365 days). */
static int
cfg_key_expiration(cfg_t *c, const cfg_line_t *l)
{
    char num[32];
    const char *s;
    size_t len;
    uint64_t n, mult;

    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    s = l->argv[0];
    len = strlen(s);

    switch (s[len - 1]) {
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    case 'w':
        mult = 86400 * 7;
        break;
    case 'm':
        mult = 86400 * 30;
        break;
    case 'y':
        mult = 86400 * 365;
        break;
    default:
        return cfg_error(l, "%s: '%s' is not a duration (a number followed "
                            "by h, d, w, m or y)", l->key, s);
    }

    if (len - 1 >= sizeof(num)) {
        return cfg_error(l, "%s: '%s' is out of range", l->key, s);
    }
    memcpy(num, s, len - 1);
    num[len - 1] = '\0';

    if (cfg_str_to_u64(num, &n) < 0) {
        return cfg_error(l, "%s: '%s' is not a duration (a number followed "
                            "by h, d, w, m or y)", l->key, s);
    }
    if (n == 0) {
        return cfg_error(l, "%s: the duration must be positive", l->key);
    }
    if (n > UINT32_MAX / mult) {
        return cfg_error(l, "%s: '%s' is out of range (at most %u seconds)",
                         l->key, s, (unsigned) UINT32_MAX);
    }
    c->persistent_client_expiration = (uint32_t) (n * mult);
    return 0;
}

static int
cfg_key_log_dest(cfg_t *c, const cfg_line_t *l)
{
    const char *d, *path;

    if (cfg_nargs(l, 1, CFG_ARGS_MAX + 1) < 0) {
        return -1;
    }
    d = l->argv[0];

    /* The first log_dest replaces the default (stderr); later ones add. */
    if (!c->log_dests_set) {
        c->log_dests = 0;
        c->log_file[0] = '\0';
        c->log_dests_set = true;
    }

    if (strcmp(d, "file") == 0) {
        if (c->log_file[0] != '\0') {
            return cfg_error(l, "log_dest file is given more than once "
                                "(only one log file is allowed)");
        }
        /* The path is the rest of the line after "file", spaces kept. */
        path = l->rest + 4;
        path += strspn(path, " \t");
        if (*path == '\0') {
            return cfg_error(l, "log_dest file: missing file name");
        }
        if (cfg_rest_string(l, path, c->log_file, sizeof(c->log_file)) < 0) {
            return -1;
        }
        c->log_dests |= LOG_D_FILE;
        return 0;
    }

    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    if (strcmp(d, "stdout") == 0) {
        c->log_dests |= LOG_D_STDOUT;
    } else if (strcmp(d, "stderr") == 0) {
        c->log_dests |= LOG_D_STDERR;
    } else if (strcmp(d, "syslog") == 0) {
        c->log_dests |= LOG_D_SYSLOG;
    } else if (strcmp(d, "none") == 0) {
        c->log_dests = 0;
        c->log_file[0] = '\0';
    } else if (strcmp(d, "topic") == 0 || strcmp(d, "dlt") == 0) {
        cfg_warn(l, "log_dest %s is accepted and ignored", d);
    } else {
        return cfg_error(l, "log_dest: '%s' is not one of stdout, stderr, "
                            "syslog, file, none", d);
    }
    return 0;
}

static int
cfg_key_log_type(cfg_t *c, const cfg_line_t *l)
{
    static const struct {
        const char *name;
        unsigned type;
    } types[] = {
        { "error", LOG_T_ERR },
        { "warning", LOG_T_WARNING },
        { "notice", LOG_T_NOTICE },
        { "information", LOG_T_INFO },
        { "debug", LOG_T_DEBUG },
        { "subscribe", LOG_T_SUBSCRIBE },
        { "unsubscribe", LOG_T_UNSUBSCRIBE },
        { "websockets", 0 },  /* no WebSockets yet: nothing to log */
        { "all", LOG_T_ALL },
        { "none", 0 },
    };
    size_t i;

    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }

    /* The first log_type replaces the default; later ones add. */
    if (!c->log_types_set) {
        c->log_types = 0;
        c->log_types_set = true;
    }

    for (i = 0; i < CFG_NELTS(types); i++) {
        if (strcmp(l->argv[0], types[i].name) == 0) {
            if (strcmp(l->argv[0], "none") == 0) {
                c->log_types = 0;
            } else {
                c->log_types |= types[i].type;
            }
            return 0;
        }
    }
    return cfg_error(l, "log_type: '%s' is not one of error, warning, "
                        "notice, information, debug, subscribe, "
                        "unsubscribe, websockets, all, none", l->argv[0]);
}

static int
cfg_key_pid_file(cfg_t *c, const cfg_line_t *l)
{
    if (c->pid_file[0] != '\0') {
        return cfg_error(l, "pid_file is given more than once");
    }
    return cfg_rest_string(l, l->rest, c->pid_file, sizeof(c->pid_file));
}

/* ringmq: the MQTT 5 Response Information a client that asks for it gets
 * in CONNACK (UTF-8, the rest of the line). */
static int
cfg_key_response_info(cfg_t *c, const cfg_line_t *l)
{
    if (cfg_rest_string(l, l->rest, c->response_info,
                        sizeof(c->response_info)) < 0) {
        return -1;
    }
    if (!mqtt_utf8_valid((const uint8_t *) c->response_info,
                         strlen(c->response_info))) {
        c->response_info[0] = '\0';
        return cfg_error(l, "%s: value is not valid UTF-8", l->key);
    }
    return 0;
}

static int
cfg_key_user(cfg_t *c, const cfg_line_t *l)
{
    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    return cfg_rest_string(l, l->argv[0], c->user, sizeof(c->user));
}

/*
 * per_listener_settings true makes allow_anonymous (and the auth keys) apply
 * to the listener above them.  ringmq has global settings only, so accepting
 * true would silently widen an allow_anonymous meant for one listener to all
 * of them: it is refused.
 */
static int
cfg_key_per_listener(cfg_t *c, const cfg_line_t *l)
{
    bool v;

    if (cfg_one_bool(l, &v) < 0) {
        return -1;
    }
    if (v) {
        return cfg_error(l, "per_listener_settings true is not supported "
                            "yet: ringmq applies allow_anonymous to every "
                            "listener");
    }
    c->per_listener_settings = false;
    return 0;
}

/* Included files would be read in an order and with a scope (main file
 * only) that ringmq does not reproduce yet; refusing is clearer than
 * silently dropping what they configure. */
static int
cfg_key_include_dir(cfg_t *c, const cfg_line_t *l)
{
    (void) c;

    return cfg_error(l, "include_dir is not supported yet: merge the files "
                        "of %s into this file",
                     l->rest[0] != '\0' ? l->rest : "the directory");
}

/* ---- ringmq keys ------------------------------------------------------- */

/* A byte count with an optional k, M or G suffix (powers of 1024). */
static int
cfg_key_arena_size(cfg_t *c, const cfg_line_t *l)
{
    char num[32];
    const char *s;
    size_t len;
    unsigned shift = 0;
    uint64_t n;

    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    s = l->argv[0];
    len = strlen(s);

    switch (s[len - 1]) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        break;
    }
    if (shift != 0) {
        len--;
    }
    if (len >= sizeof(num) || len == 0) {
        return cfg_error(l, "%s: '%s' is not a size (a number with an "
                            "optional k, M or G)", l->key, s);
    }
    memcpy(num, s, len);
    num[len] = '\0';

    if (cfg_str_to_u64(num, &n) < 0) {
        return cfg_error(l, "%s: '%s' is not a size (a number with an "
                            "optional k, M or G)", l->key, s);
    }
    if (n > (CFG_ARENA_MAX >> shift) || (n << shift) < CFG_ARENA_MIN) {
        return cfg_error(l, "%s: %s is out of range (4M to 128G)", l->key,
                         s);
    }
    c->arena_size = n << shift;
    return 0;
}

static int
cfg_key_ingest_ring(cfg_t *c, const cfg_line_t *l)
{
    uint64_t v;

    if (cfg_one_uint(l, CFG_RING_MIN, CFG_RING_MAX, &v) < 0) {
        return -1;
    }
    if ((v & (v - 1)) != 0) {
        return cfg_error(l, "%s: %llu is not a power of two", l->key,
                         (unsigned long long) v);
    }
    c->ingest_ring_size = (uint32_t) v;
    return 0;
}

/* admin_socket PATH | none: the admin interface's Unix socket (issue 6).
 * PATH is the rest of the line (spaces kept, as for pid_file). */
static int
cfg_key_admin_socket(cfg_t *c, const cfg_line_t *l)
{
    if (strcmp(l->rest, "none") == 0) {
        c->admin_socket[0] = '\0';
        c->admin_socket_set = true;
        return 0;
    }
    if (l->rest[0] != '\0'
        && strlen(l->rest) >= sizeof(c->admin_socket))
    {
        return cfg_error(l, "admin_socket: path is longer than %zu "
                            "characters (the limit of a Unix socket path)",
                         sizeof(c->admin_socket) - 1);
    }
    if (cfg_rest_string(l, l->rest, c->admin_socket,
                        sizeof(c->admin_socket)) < 0) {
        return -1;
    }
    c->admin_socket_set = true;
    return 0;
}

/* ---- the other Mosquitto keys ------------------------------------------ */

/* Checks the value of an accepted-and-ignored key, then warns. */
static int
cfg_ignore(const cfg_ignored_t *k, const cfg_line_t *l)
{
    uint64_t v;
    bool b;

    switch (k->arg) {
    case CFG_ARG_BOOL:
        if (cfg_one_bool(l, &b) < 0) {
            return -1;
        }
        break;
    case CFG_ARG_UINT:
        if (cfg_one_uint(l, 0, UINT64_MAX, &v) < 0) {
            return -1;
        }
        break;
    case CFG_ARG_TEXT:
        if (l->rest[0] == '\0') {
            return cfg_error(l, "%s: missing value", l->key);
        }
        break;
    }
    cfg_warn(l, "%s is accepted and ignored", l->key);
    return 0;
}

/* Accepts a key only with the one value ringmq implements. */
static int
cfg_fixed_value(const cfg_fixed_t *k, const cfg_line_t *l)
{
    bool b, want = false;

    if (k->arg == CFG_ARG_BOOL) {
        if (cfg_one_bool(l, &b) < 0) {
            return -1;
        }
        (void) cfg_str_to_bool(k->value, &want);
        if (b == want) {
            return 0;
        }
    } else {
        if (cfg_nargs(l, 1, 1) < 0) {
            return -1;
        }
        if (strcmp(l->argv[0], k->value) == 0) {
            return 0;
        }
    }
    return cfg_error(l, "%s %s is not supported yet (only %s is)", l->key,
                     l->argv[0], k->value);
}

static int
cfg_dispatch(cfg_t *c, const cfg_line_t *l)
{
    size_t i;
    const cfg_unsupported_t *u;

    for (i = 0; i < CFG_NELTS(cfg_keys); i++) {
        if (strcmp(l->key, cfg_keys[i].name) == 0) {
            return cfg_keys[i].handler ? cfg_keys[i].handler(c, l)
                                       : cfg_key_uint(c, l, &cfg_keys[i]);
        }
    }
    for (i = 0; i < CFG_NELTS(cfg_ignored); i++) {
        if (strcmp(l->key, cfg_ignored[i].name) == 0) {
            return cfg_ignore(&cfg_ignored[i], l);
        }
    }
    for (i = 0; i < CFG_NELTS(cfg_fixed); i++) {
        if (strcmp(l->key, cfg_fixed[i].name) == 0) {
            return cfg_fixed_value(&cfg_fixed[i], l);
        }
    }
    for (i = 0; i < CFG_NELTS(cfg_unsupported); i++) {
        u = &cfg_unsupported[i];
        if (u->prefix ? strncmp(l->key, u->name, strlen(u->name)) == 0
                      : strcmp(l->key, u->name) == 0)
        {
            return cfg_error(l, "%s is not supported yet (%s)", l->key,
                             u->what);
        }
    }
    return cfg_error(l, "unknown key '%s'", l->key);
}

/* ---- public API -------------------------------------------------------- */

void
cfg_defaults(cfg_t *c)
{
    memset(c, 0, sizeof(*c));

    c->allow_anonymous = false;
    c->max_inflight_messages = 20;
    c->max_queued_messages = 1000;
    c->max_packet_size = CFG_PACKET_DEFAULT;
    c->message_size_limit = 0;
    c->max_keepalive = 65535;
    c->max_qos = 2;
    c->max_topic_alias = 10;
    c->max_topic_alias_broker = 10;
    c->write_coalesce_ms = CFG_COALESCE_DEFAULT;
    c->retain_available = true;
    c->persistent_client_expiration = 0;
    c->per_listener_settings = false;

    c->log_types = LOG_T_DEFAULT;
    c->log_dests = LOG_D_STDERR;

    c->frontends = 0;       /* 0: not set, cfg_finish derives it */
    c->fanout_workers = 0;
    c->max_clients = 16384;
    c->arena_size = CFG_ARENA_DEFAULT;
    c->ingest_ring_size = 16384;
    c->connect_timeout = 10;
}

int
cfg_parse_line(cfg_t *c, const char *line, const char *file, int lineno)
{
    char buf[CFG_LINE_MAX + 1];
    char words[CFG_LINE_MAX + 1];
    char *p, *end, *save;
    size_t len;
    cfg_line_t l;

    memset(&l, 0, sizeof(l));
    l.file = file != NULL ? file : "(config)";
    l.lineno = lineno;

    len = strlen(line);
    if (len > CFG_LINE_MAX) {
        return cfg_error(&l, "line is longer than %d characters",
                         CFG_LINE_MAX);
    }
    memcpy(buf, line, len + 1);

    /* Trim: leading blanks, trailing blanks and CR/LF. */
    p = buf + strspn(buf, " \t");
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'
                       || end[-1] == '\n'))
    {
        *--end = '\0';
    }
    if (*p == '\0' || *p == '#') {
        return 0;
    }

    /* The key, then the rest of the line. */
    l.key = p;
    p += strcspn(p, " \t");
    if (*p != '\0') {
        *p++ = '\0';
        p += strspn(p, " \t");
    }
    l.rest = p;

    /* The words of the rest, in a copy so rest stays whole. */
    strcpy(words, l.rest);
    for (p = strtok_r(words, " \t", &save); p != NULL;
         p = strtok_r(NULL, " \t", &save))
    {
        if (l.argc == CFG_ARGS_MAX) {
            l.argc++;
            break;
        }
        l.argv[l.argc++] = p;
    }

    return cfg_dispatch(c, &l);
}

int
cfg_parse_file(cfg_t *c, const char *path)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t got;
    struct stat st;
    size_t len;
    FILE *f;
    int lineno = 0, rc = 0;
    cfg_line_t l;

    memset(&l, 0, sizeof(l));
    l.file = path;

    if (strlen(path) >= sizeof(c->config_file)) {
        cfg_print("%s: the file name is longer than %zu characters", path,
                  sizeof(c->config_file) - 1);
        return -1;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        cfg_print("%s: is a directory, not a config file", path);
        return -1;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        cfg_print("%s: cannot open the config file: %s", path,
                  strerror(errno));
        return -1;
    }
    strcpy(c->config_file, path);

    /* getline() counts every byte, NULs included, and the limit applies
     * to the line without its LF or CRLF. */
    while ((got = getline(&buf, &cap, f)) > 0) {
        lineno++;
        len = (size_t) got;
        if (buf[len - 1] == '\n') {
            buf[--len] = '\0';
        }
        if (len > 0 && buf[len - 1] == '\r') {
            buf[--len] = '\0';
        }
        l.lineno = lineno;
        if (memchr(buf, '\0', len) != NULL) {
            rc = cfg_error(&l, "line contains a NUL byte");
            goto done;
        }
        if (len > CFG_LINE_MAX) {
            rc = cfg_error(&l, "line is longer than %d characters",
                           CFG_LINE_MAX);
            goto done;
        }
        if (cfg_parse_line(c, buf, path, lineno) < 0) {
            rc = -1;
            goto done;
        }
    }
    if (ferror(f)) {
        cfg_print("%s: read error: %s", path, strerror(errno));
        rc = -1;
    }

done:
    free(buf);
    fclose(f);
    return rc;
}

/* The smallest PUBLISH that carries n payload bytes: QoS 0, a one-byte
 * topic, MQTT 3.1.1 (no properties). */
static uint64_t
cfg_min_publish(uint64_t n)
{
    uint64_t rem = 2 + 1 + n;
    uint64_t hdr = 1 + (rem < 128 ? 1 : rem < 16384 ? 2
                        : rem < 2097152 ? 3 : 4);

    return hdr + rem;
}

int
cfg_finish(cfg_t *c)
{
    const char *where;
    long ncpu;
    int i, j;
    uint16_t port;
    bool frontends_given, workers_given;

    if (c->finished) {
        return 0;
    }
    where = c->config_file[0] != '\0' ? c->config_file : "command line";

    /* Listeners, as Mosquitto 2 decides them. */
    c->local_only = c->n_listeners == 0 && !c->default_listener_set;
    if (!c->local_only && !c->default_listener_set
        && c->default_options[0] != '\0')
    {
        /* Mosquitto would open a default listener on port 1883, all
         * addresses, for them; dropping them would leave a listener
         * without the TLS the file asks for.  Both surprise: refuse. */
        cfg_print("%s: %s would be lost: listener options written before "
                  "the first listener line belong to the default listener, "
                  "and there is none (no port or bind_address line); move "
                  "them after the listener line they are meant for", where,
                  c->default_options);
        return -1;
    }
    if (c->local_only && cfg_listener_has_options(&c->default_listener)) {
        cfg_print("%s: listener options (protocol, certfile, ...) are given "
                  "but no listener: add a listener or port line above them",
                  where);
        return -1;
    }
    if (c->local_only) {
        if (c->n_cmd_ports == 0) {
            if (cfg_add_listener(c, where, CFG_DEFAULT_PORT,
                                 CFG_LOCAL_ADDRESS, NULL) < 0) {
                return -1;
            }
        }
        for (i = 0; i < c->n_cmd_ports; i++) {
            if (cfg_add_listener(c, where, c->cmd_ports[i],
                                 CFG_LOCAL_ADDRESS, NULL) < 0) {
                return -1;
            }
        }
        if (!c->allow_anonymous_set) {
            c->allow_anonymous = true;
        }
    } else {
        if (c->default_listener_set) {
            port = c->default_listener.port != 0 ? c->default_listener.port
                                                 : CFG_DEFAULT_PORT;
            if (cfg_add_listener(c, where, port,
                                 c->default_listener.address,
                                 &c->default_listener) < 0) {
                return -1;
            }
        }
        if (c->n_cmd_ports > 0) {
            cfg_print("-p is ignored because %s configures listeners "
                      "(as in Mosquitto 2)", where);
        }
        if (!c->allow_anonymous_set) {
            c->allow_anonymous = false;
        }
    }
    if (!c->allow_anonymous) {
        cfg_print("%s: allow_anonymous is false: clients that connect "
                  "without a username are refused, and ringmq cannot check "
                  "passwords yet; set allow_anonymous true to accept them",
                  where);
    }

    for (i = 0; i < c->n_listeners; i++) {
        for (j = i + 1; j < c->n_listeners; j++) {
            if (c->listeners[i].port == c->listeners[j].port
                && strcmp(c->listeners[i].address,
                          c->listeners[j].address) == 0)
            {
                cfg_print("%s: listener %u %s is configured twice", where,
                          (unsigned) c->listeners[i].port,
                          c->listeners[i].address[0] != '\0'
                              ? c->listeners[i].address
                              : "(all addresses)");
                return -1;
            }
        }
    }

    for (i = 0; i < c->n_listeners; i++) {
        if (cfg_finish_listener(c, where, &c->listeners[i]) < 0) {
            return -1;
        }
    }

    /* The admin socket's default follows the first listener's port, so
     * brokers on different ports do not share it. */
    if (!c->admin_socket_set) {
        snprintf(c->admin_socket, sizeof(c->admin_socket),
                 "/tmp/ringmq-%u.sock", (unsigned) c->listeners[0].port);
    }

    /* Sizes that cannot work together. */
    if (c->max_packet_size < CFG_PACKET_MIN
        || c->max_packet_size > CFG_PACKET_MAX)
    {
        cfg_print("%s: max_packet_size %u is out of range (%u to %u)",
                  where, (unsigned) c->max_packet_size, CFG_PACKET_MIN,
                  CFG_PACKET_MAX);
        return -1;
    }
    if (c->message_size_limit != 0
        && cfg_min_publish(c->message_size_limit) > c->max_packet_size)
    {
        cfg_print("%s: message_size_limit %u cannot be reached: a PUBLISH "
                  "with that payload is larger than max_packet_size %u; "
                  "raise max_packet_size", where,
                  (unsigned) c->message_size_limit,
                  (unsigned) c->max_packet_size);
        return -1;
    }
    if ((uint64_t) c->max_packet_size > c->arena_size) {
        cfg_print("%s: max_packet_size %u is larger than arena_size %llu",
                  where, (unsigned) c->max_packet_size,
                  (unsigned long long) c->arena_size);
        return -1;
    }

    /* Process counts from the number of online CPUs. */
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) {
        ncpu = 1;
    }
    frontends_given = c->frontends != 0;
    workers_given = c->fanout_workers != 0;
    if (c->frontends == 0) {
        c->frontends = ncpu < 2 ? 2 : ncpu > CFG_WORKERS_MAX
                                          ? CFG_WORKERS_MAX : (int) ncpu;
    }
    if (c->fanout_workers == 0) {
        c->fanout_workers = ncpu / 2 < 1 ? 1
                            : ncpu / 2 > CFG_WORKERS_MAX ? CFG_WORKERS_MAX
                                                         : (int) (ncpu / 2);
    }
    /* The shared memory has a place for CFG_PROCS_MAX processes, the
     * supervisor's included: a derived count gives way, given ones are
     * an error. */
    if (c->frontends + c->fanout_workers + 1 > CFG_PROCS_MAX) {
        if (!frontends_given) {
            c->frontends = CFG_PROCS_MAX - 1 - c->fanout_workers;
        } else if (!workers_given) {
            c->fanout_workers = CFG_PROCS_MAX - 1 - c->frontends;
        } else {
            cfg_print("%s: frontends %d and fanout_workers %d are %d "
                      "processes with the supervisor; at most %d",
                      where, c->frontends, c->fanout_workers,
                      c->frontends + c->fanout_workers + 1, CFG_PROCS_MAX);
            return -1;
        }
    }

    /* Logging: -v overrides every log_type line. */
    if (c->verbose) {
        c->log_types = LOG_T_ALL;
    }

    c->finished = true;
    return 0;
}

static void
cfg_usage(FILE *f)
{
    fputs("ringmq: a multi-process MQTT v5.0/v3.1.1/v3.1 broker\n"
          "\n"
          "Usage: ringmq [-c config_file] [-d] [-h] [-p port] [-v]\n"
          "\n"
          " -c, --config-file FILE : read the configuration from FILE.\n"
          " -d, --daemon           : run in the background.\n"
          " -h, --help             : display this help.\n"
          " -p, --port PORT        : listen on PORT on 127.0.0.1; may be\n"
          "                          given up to 16 times.  Ignored when\n"
          "                          the config file defines listeners.\n"
          " -v, --verbose          : log every type (log_type all), over\n"
          "                          the config file's log_type lines.\n"
          "\n"
          "See docs/configuration.md for the config file.\n", f);
    fflush(f);
}

int
cfg_parse_args(cfg_t *c, int argc, char **argv)
{
    const char *file = NULL, *a;
    uint64_t port;
    int i;

    cfg_defaults(c);

    for (i = 1; i < argc; i++) {
        a = argv[i];
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config-file") == 0) {
            if (i + 1 >= argc) {
                cfg_print("%s: missing config file name", a);
                return -1;
            }
            if (file != NULL) {
                cfg_print("%s: only one config file may be given", a);
                return -1;
            }
            file = argv[++i];

        } else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) {
            if (i + 1 >= argc) {
                cfg_print("%s: missing port number", a);
                return -1;
            }
            i++;
            if (cfg_str_to_u64(argv[i], &port) < 0 || port < 1
                || port > 65535)
            {
                cfg_print("%s: '%s' is not a port number (1 to 65535)", a,
                          argv[i]);
                return -1;
            }
            if (c->n_cmd_ports >= CFG_MAX_LISTENERS) {
                cfg_print("%s: at most %d ports may be given", a,
                          CFG_MAX_LISTENERS);
                return -1;
            }
            c->cmd_ports[c->n_cmd_ports++] = (uint16_t) port;

        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            c->verbose = true;

        } else if (strcmp(a, "-d") == 0 || strcmp(a, "--daemon") == 0) {
            c->daemon = true;

        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cfg_usage(stdout);
            return 1;

        } else {
            cfg_print("unknown option '%s'", a);
            cfg_usage(stderr);
            return -1;
        }
    }

    if (file != NULL && cfg_parse_file(c, file) < 0) {
        return -1;
    }
    return cfg_finish(c);
}
