/*
 * sup_admin_req.h -- the admin protocol without a broker: the command
 * table (names, arguments and their types), parsing and validation of one
 * request line, building response objects, and log type names.  Used by
 * the supervisor's admin socket and by ringmqctl (which converts
 * key=value words with the same table).  Nothing here touches shared
 * memory or sockets, so it is unit-tested on its own
 * (tests/supervisor/test_admin_req.c).  Protocol: docs/admin.md.
 */
#ifndef RINGMQ_SUP_ADMIN_REQ_H
#define RINGMQ_SUP_ADMIN_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define ADM_PROTOCOL_VERSION 1
#define ADM_LINE_MAX 65536      /* bytes of one request line, newline
                                   excluded */
#define ADM_MAX_ARGS 6          /* arguments of one command */
#define ADM_PAGE_DEFAULT 100    /* limit when none is given */
#define ADM_PAGE_MAX 1000       /* largest limit */
#define ADM_OFFSET_MAX 100000000u
#define ADM_TOPIC_MAX 4096      /* topic for retained get/delete, filter
                                   for retained list: what a child's
                                   mailbox carries (SHM_MBOX_ARG) */
#define ADM_STR_MAX 65535       /* client ids, filters, prefixes */

/* Error codes (the "code" member of an error response). */
#define ADM_E_BAD_JSON "bad_json"             /* not JSON */
#define ADM_E_BAD_REQUEST "bad_request"       /* not an object, no cmd */
#define ADM_E_UNKNOWN_COMMAND "unknown_command"
#define ADM_E_BAD_ARGUMENT "bad_argument"     /* unknown, missing, type */
#define ADM_E_NOT_FOUND "not_found"
#define ADM_E_LINE_TOO_LONG "line_too_long"   /* then the socket closes */
#define ADM_E_TIMEOUT "timeout"               /* a child did not answer */
#define ADM_E_UNSUPPORTED "unsupported"
#define ADM_E_BUSY "busy"                     /* too many clients, no room */
#define ADM_E_CONFIG "config_error"           /* reload: bad config file */
#define ADM_E_INTERNAL "internal"

typedef enum adm_arg_type {
    ADM_ARG_STR,      /* any UTF-8 string up to max bytes (may be "") */
    ADM_ARG_ID,       /* a client id: 1..65535 bytes of MQTT UTF-8 */
    ADM_ARG_TOPIC,    /* a topic name (no wildcards), up to max bytes */
    ADM_ARG_FILTER,   /* a topic filter, up to max bytes */
    ADM_ARG_CHOICE,   /* one of the strings in choices */
    ADM_ARG_UINT,     /* an integer in [min, max] */
    ADM_ARG_BOOL,     /* true or false */
    ADM_ARG_LOGTYPES  /* a log type name, "all", "none", a comma-separated
                         list of names, or an array of names */
} adm_arg_type_e;

typedef struct adm_arg_spec {
    const char *name;   /* NULL ends the list */
    adm_arg_type_e type;
    bool required;
    uint32_t min, max;  /* UINT: range; strings: max bytes (0: default) */
    const char *const *choices; /* CHOICE: NULL-terminated */
    const char *help;
} adm_arg_spec_t;

typedef enum adm_cmd_id {
    ADM_CMD_VERSION,
    ADM_CMD_STATS,
    ADM_CMD_CLIENTS,
    ADM_CMD_CLIENT,
    ADM_CMD_KICK,
    ADM_CMD_SUBSCRIPTIONS,
    ADM_CMD_RETAINED,
    ADM_CMD_SESSIONS,
    ADM_CMD_CONFIG,
    ADM_CMD_RELOAD,
    ADM_CMD_RESTART_FRONTEND,
    ADM_CMD_RESTART_WORKER,
    ADM_CMD_LOG_LEVEL,
    ADM_CMD_SHUTDOWN,
    ADM_CMD_COUNT
} adm_cmd_id_e;

typedef struct adm_cmd {
    const char *name;
    adm_cmd_id_e id;
    const char *help;
    adm_arg_spec_t args[ADM_MAX_ARGS + 1];
} adm_cmd_t;

/* The command table, in the order of docs/admin.md. */
extern const adm_cmd_t adm_cmds[ADM_CMD_COUNT];

/* The command called name, or NULL. */
const adm_cmd_t *adm_cmd_find(const char *name);

/* Argument name of command c, or NULL. */
const adm_arg_spec_t *adm_arg_find(const adm_cmd_t *c, const char *name);

typedef struct adm_err {
    const char *code;   /* ADM_E_* */
    char message[256];
} adm_err_t;

/* Sets e to code and a printf-formatted message.  Returns -1. */
int adm_err_set(adm_err_t *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A parsed and validated request. */
typedef struct adm_req {
    cJSON *root;        /* the whole request; owns everything below */
    const cJSON *id;    /* the "id" member, or NULL */
    const adm_cmd_t *cmd;
    const cJSON *args[ADM_MAX_ARGS]; /* by position in cmd->args; NULL
                                        when not given */
} adm_req_t;

/*
 * Parses and validates one request line of len bytes (no newline; it need
 * not be NUL-terminated).  Returns 0 with r filled, or -1 with err set;
 * in both cases r->id is the request's id when the line was an object with
 * one (so an error response can carry it) and r must be released with
 * adm_req_free().  Checks: JSON, an object, "cmd" a known command name,
 * every other member ("id" aside) an argument of that command with the
 * right type and range, required arguments present, and the rules that
 * tie arguments together (retained get needs a topic, ...).
 */
int adm_req_parse(const char *line, size_t len, adm_req_t *r,
                  adm_err_t *err);

/* Releases what adm_req_parse() allocated.  r may be zeroed. */
void adm_req_free(adm_req_t *r);

/* Argument accessors (the request was validated: types are right). */
const char *adm_req_str(const adm_req_t *r, const char *name); /* or NULL */
uint32_t adm_req_uint(const adm_req_t *r, const char *name, uint32_t def);
bool adm_req_bool(const adm_req_t *r, const char *name, bool def);
const cJSON *adm_req_arg(const adm_req_t *r, const char *name);

/*
 * Log types: v is a string (a name from adm_log_type_names, "all", "none",
 * or names separated by commas) or an array of such strings.  Returns 0
 * and sets *types (LOG_T_* bits), or -1 with err set.
 */
int adm_log_types_parse(const cJSON *v, unsigned *types, adm_err_t *err);

/* A new array of the names of the types set in types (Mosquitto's
 * log_type names). */
cJSON *adm_log_types_json(unsigned types);

/* Mosquitto's log_type names with their bits (name NULL ends). */
typedef struct adm_log_type {
    const char *name;
    unsigned bits;
} adm_log_type_t;
extern const adm_log_type_t adm_log_type_names[];

/*
 * Responses: {"id": ID, "ok": true, "result": RESULT} and {"id": ID, "ok":
 * false, "error": {"code": ..., "message": ...}}.  id may be NULL (null);
 * it is copied.  adm_response_ok takes ownership of result (NULL: an
 * empty object).  Each returns a new object.
 */
cJSON *adm_response_ok(const cJSON *id, cJSON *result);
cJSON *adm_response_err(const cJSON *id, const adm_err_t *err);

/*
 * True when s (len bytes) is MQTT UTF-8 (well formed, no U+0000).  The
 * admin protocol only carries such strings.
 */
bool adm_utf8_valid(const char *s, size_t len);

/*
 * Writes s (len bytes, untrusted) into out (size bytes, NUL-terminated)
 * as valid UTF-8: bytes that are not part of a valid sequence, and
 * control characters, become '?'.  Returns the bytes written.
 */
size_t adm_utf8_sanitize(const char *s, size_t len, char *out, size_t size);

/* "2024-01-31T12:00:00Z" for unix time t into out (at least 21 bytes). */
void adm_iso8601(uint64_t t, char *out, size_t size);

/* Routes cJSON's allocations through common/mem.c (counted, abort on
 * out of memory).  Call once at start. */
void adm_json_init(void);

#endif
