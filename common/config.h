/*
 * config.h -- the broker's configuration: Mosquitto's file format and
 * command line, plus ringmq's own keys.  Parsed once by the supervisor;
 * children inherit the result across fork.
 */
#ifndef RINGMQ_CONFIG_H
#define RINGMQ_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

/* Exit code for a fatal configuration error: the process must not be
 * restarted (nginx uses 2 the same way). */
#define CFG_EXIT_FATAL 2

#define CFG_MAX_LISTENERS 16

/* Processes the shared memory has room for, the supervisor included
 * (SHM_MAX_PROCS): frontends + fanout_workers + 1 must not exceed it. */
#define CFG_PROCS_MAX 128

/* Bytes of admin_socket, NUL included: the size of sun_path. */
#define CFG_ADMIN_SOCKET_MAX 108

/* max_queued_messages 0 ("no maximum" in Mosquitto) is stored as this. */
#define CFG_QUEUED_MAX 65536

/* A listener's protocol (the `protocol` key). */
#define CFG_PROTO_MQTT 0
#define CFG_PROTO_WEBSOCKETS 1

/* Minimum TLS version (`tls_version`); 0 is the default, TLS 1.2. */
#define CFG_TLS_V12 0
#define CFG_TLS_V13 1

#define CFG_PATH_MAX 256
/* write_coalesce_ms (frontend/fe_hold.c): the longest wait, the default */
#define CFG_COALESCE_MAX 100
#define CFG_COALESCE_DEFAULT 10
#define CFG_WS_PATH_DEFAULT "/mqtt"
#define CFG_WS_FRAME_MIN 126u           /* websockets_max_frame_size */
#define CFG_WS_FRAME_MAX 268435460u

/*
 * One listener and the options that follow its `listener` line in the file
 * (Mosquitto's listener-specific keys).  TLS is on when certfile is set;
 * WebSocket when protocol is CFG_PROTO_WEBSOCKETS; both make WSS.
 */
typedef struct cfg_listener {
    uint16_t port;
    char address[64]; /* empty: all addresses */
    uint8_t protocol;  /* CFG_PROTO_* */
    uint8_t tls_version; /* CFG_TLS_*: the oldest version accepted */
    bool require_certificate;
    bool use_identity_as_username;
    bool tls_option_set; /* a TLS key other than certfile/keyfile was seen */
    char certfile[CFG_PATH_MAX]; /* "" = no TLS */
    char keyfile[CFG_PATH_MAX];
    char cafile[CFG_PATH_MAX];
    char capath[CFG_PATH_MAX];
    char ciphers[CFG_PATH_MAX];       /* TLS 1.2 cipher list, "" = default */
    char ciphers_tls13[CFG_PATH_MAX]; /* TLS 1.3 suites, "" = default */
    char ws_path[128];       /* websockets_path, default /mqtt */
    uint32_t ws_max_frame;   /* websockets_max_frame_size, 0 = derived */
    bool ws_option_set;      /* a websockets_* key was seen */
} cfg_listener_t;

typedef struct cfg {
    cfg_listener_t listeners[CFG_MAX_LISTENERS];
    int n_listeners;

    bool allow_anonymous;
    bool allow_anonymous_set;     /* given explicitly */
    uint32_t max_inflight_messages; /* 1..65535, default 20; 0 = 65535 */
    uint32_t max_queued_messages;   /* default 1000; 0 = use the maximum */
    uint64_t max_queued_bytes;      /* bytes queued per client, 0 = none */
    uint32_t max_packet_size;       /* bytes, default 1048576 */
    uint32_t message_size_limit;    /* payload bytes, 0 = no limit */
    uint16_t max_keepalive;         /* default 65535 */
    uint16_t max_qos;               /* 0..2, default 2 */
    uint16_t max_topic_alias;       /* MQTT 5 inbound aliases, default 10 */
    uint16_t max_topic_alias_broker; /* outbound aliases per client, 10 */
    uint16_t write_coalesce_ms; /* longest a delivery waits to share a
                                   write with the next (fe_hold.c), 0: off */
    char response_info[256]; /* MQTT 5 Response Information, "": none */
    bool retain_available;          /* default true */
    uint32_t persistent_client_expiration; /* seconds, 0 = never */
    bool per_listener_settings;     /* accepted; only false semantics */

    unsigned log_types;  /* LOG_T_* */
    unsigned log_dests;  /* LOG_D_* */
    char log_file[256];
    char pid_file[256];
    char user[64];

    /* ringmq's own keys */
    int frontends;       /* >= 1; default max(2, ncpu) */
    int fanout_workers;  /* >= 1; default max(1, ncpu / 2); with the
                            frontends and the supervisor at most
                            CFG_PROCS_MAX processes */
    uint32_t max_clients;     /* session slots, default 16384 */
    uint64_t arena_size;      /* bytes of message arena, default 256 MiB */
    uint32_t ingest_ring_size; /* entries per frontend->worker ring */
    uint32_t connect_timeout;  /* seconds for the first packet, default 10 */
    /* Unix socket of the admin interface (docs/admin.md); "" when
     * disabled (admin_socket none).  cfg_finish sets the default,
     * /tmp/ringmq-PORT.sock with the first listener's port. */
    char admin_socket[CFG_ADMIN_SOCKET_MAX];

    bool daemon;   /* -d */
    bool verbose;  /* -v */
    char config_file[256];

    /* Set by cfg_finish: no listener, port or bind_address was configured,
     * so the broker listens on 127.0.0.1 only (Mosquitto 2 "local only"). */
    bool local_only;

    /* Parser state, read by cfg_finish; other modules ignore it. */
    cfg_listener_t default_listener; /* from port / bind_address, and the
                                        listener options given before the
                                        first listener line */
    bool default_listener_set;
    char default_options[256]; /* "certfile (line 2), ..." given before
                                  the first listener line */
    uint16_t cmd_ports[CFG_MAX_LISTENERS]; /* -p, in order */
    int n_cmd_ports;
    bool log_types_set;  /* a log_type line was seen */
    bool log_dests_set;  /* a log_dest line was seen */
    bool admin_socket_set; /* an admin_socket line was seen */
    bool finished;       /* cfg_finish ran */
} cfg_t;

/* Fills c with the built-in defaults (listener 127.0.0.1:1883 is added by
 * cfg_finish when no listener was configured). */
void cfg_defaults(cfg_t *c);

/*
 * Parses the command line (-c FILE, -p PORT (repeatable), -v, -d, -h) and
 * the config file it names.  Returns 0 when the broker should run, 1 when
 * it should exit 0 (-h printed usage), or -1 after printing a message that
 * names the file and line (the caller exits CFG_EXIT_FATAL).  Starts from
 * cfg_defaults and ends with cfg_finish, so c is complete on 0; calling
 * cfg_finish again is harmless.
 */
int cfg_parse_args(cfg_t *c, int argc, char **argv);

/*
 * Parses one config file into c.  Returns 0, or -1 after printing
 * "ringmq: FILE:LINE: what is wrong" on stderr.
 */
int cfg_parse_file(cfg_t *c, const char *path);

/*
 * Parses one line (already stripped of its newline) as if it stood at
 * file:lineno.  Returns 0 or -1 after printing the message.
 */
int cfg_parse_line(cfg_t *c, const char *line, const char *file,
                   int lineno);

/* Applies derived defaults (listener, allow_anonymous, worker counts) and
 * cross-key checks.  Returns 0 or -1 after printing a message.  Runs once:
 * later calls return 0 and change nothing. */
int cfg_finish(cfg_t *c);

#endif
