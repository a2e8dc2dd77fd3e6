/*
 * sup_admin_req.c -- the admin protocol's command table and the parsing
 * and validation of one request line: everything the admin socket checks
 * before it looks at the broker.  No shared memory, no sockets.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mem.h"
#include "mqtt.h"
#include "sup_admin_req.h"
#include "topic.h"

/* ---- the command table ------------------------------------------------ */

static const char *const adm_retained_actions[] = {"list", "get", "delete",
                                                   NULL};
static const char *const adm_sessions_actions[] = {"list", "expire", NULL};

#define ARG_OFFSET                                                          \
    {"offset", ADM_ARG_UINT, false, 0, ADM_OFFSET_MAX, NULL,               \
     "entries to skip (default 0)"}
#define ARG_LIMIT                                                           \
    {"limit", ADM_ARG_UINT, false, 1, ADM_PAGE_MAX, NULL,                  \
     "entries to return (default 100, at most 1000)"}

const adm_cmd_t adm_cmds[ADM_CMD_COUNT] = {
    {"version", ADM_CMD_VERSION, "broker version and protocol levels", {{0}}},
    {"stats",
     ADM_CMD_STATS,
     "counters: broker totals, per frontend and per worker",
     {{0}}},
    {"clients",
     ADM_CMD_CLIENTS,
     "connected clients",
     {{"prefix", ADM_ARG_STR, false, 0, ADM_STR_MAX, NULL,
       "only client ids that start with this"},
      {"frontend", ADM_ARG_UINT, false, 0, 63, NULL,
       "only clients on this frontend"},
      ARG_OFFSET,
      ARG_LIMIT}},
    {"client",
     ADM_CMD_CLIENT,
     "one client or offline session, with its subscriptions",
     {{"client_id", ADM_ARG_ID, true, 0, 0, NULL, "the client id"}}},
    {"kick",
     ADM_CMD_KICK,
     "disconnect a client (its will is published)",
     {{"client_id", ADM_ARG_ID, true, 0, 0, NULL, "the client id"},
      {"discard_session", ADM_ARG_BOOL, false, 0, 0, NULL,
       "also delete its session, even a persistent one (default false)"}}},
    {"subscriptions",
     ADM_CMD_SUBSCRIPTIONS,
     "subscriptions of every session, of one client, or to one filter",
     {{"client_id", ADM_ARG_ID, false, 0, 0, NULL, "only this client's"},
      {"filter", ADM_ARG_FILTER, false, 0, ADM_STR_MAX, NULL,
       "only subscriptions to exactly this filter"},
      ARG_OFFSET,
      ARG_LIMIT}},
    {"retained",
     ADM_CMD_RETAINED,
     "retained messages: list, get or delete",
     {{"action", ADM_ARG_CHOICE, false, 0, 0, adm_retained_actions,
       "list (default), get or delete"},
      {"topic", ADM_ARG_TOPIC, false, 0, ADM_TOPIC_MAX, NULL,
       "the topic (get, delete)"},
      {"filter", ADM_ARG_FILTER, false, 0, ADM_TOPIC_MAX, NULL,
       "list: only topics matching this filter"},
      ARG_OFFSET,
      ARG_LIMIT}},
    {"sessions",
     ADM_CMD_SESSIONS,
     "offline sessions: list, or expire one",
     {{"action", ADM_ARG_CHOICE, false, 0, 0, adm_sessions_actions,
       "list (default) or expire"},
      {"client_id", ADM_ARG_ID, false, 0, 0, NULL,
       "the session to expire"},
      {"prefix", ADM_ARG_STR, false, 0, ADM_STR_MAX, NULL,
       "list: only client ids that start with this"},
      ARG_OFFSET,
      ARG_LIMIT}},
    {"config", ADM_CMD_CONFIG, "the effective configuration", {{0}}},
    {"reload",
     ADM_CMD_RELOAD,
     "re-read the config file (as SIGHUP), apply what can change live",
     {{0}}},
    {"restart_frontend",
     ADM_CMD_RESTART_FRONTEND,
     "restart a frontend gracefully (its clients reconnect)",
     {{"index", ADM_ARG_UINT, true, 0, 63, NULL, "frontend number"}}},
    {"restart_worker",
     ADM_CMD_RESTART_WORKER,
     "restart a fan-out worker (it rebuilds its state from shm)",
     {{"index", ADM_ARG_UINT, true, 0, 63, NULL, "worker number"}}},
    {"log_level",
     ADM_CMD_LOG_LEVEL,
     "show or set the log types of every process",
     {{"types", ADM_ARG_LOGTYPES, false, 0, 0, NULL,
       "log_type names (error, warning, notice, information, debug, "
       "subscribe, unsubscribe), all or none"}}},
    {"shutdown", ADM_CMD_SHUTDOWN, "stop the broker (as SIGTERM)", {{0}}},
};

const adm_cmd_t *adm_cmd_find(const char *name)
{
    for (size_t i = 0; i < ADM_CMD_COUNT; i++)
        if (strcmp(adm_cmds[i].name, name) == 0)
            return &adm_cmds[i];
    return NULL;
}

const adm_arg_spec_t *adm_arg_find(const adm_cmd_t *c, const char *name)
{
    for (const adm_arg_spec_t *a = c->args; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

/* ---- errors and responses ---------------------------------------------- */

int adm_err_set(adm_err_t *e, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

static cJSON *id_copy(const cJSON *id)
{
    cJSON *c = id ? cJSON_Duplicate(id, 1) : NULL;
    return c ? c : cJSON_CreateNull();
}

cJSON *adm_response_ok(const cJSON *id, cJSON *result)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "id", id_copy(id));
    cJSON_AddTrueToObject(o, "ok");
    cJSON_AddItemToObject(o, "result",
                          result ? result : cJSON_CreateObject());
    return o;
}

cJSON *adm_response_err(const cJSON *id, const adm_err_t *err)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "id", id_copy(id));
    cJSON_AddFalseToObject(o, "ok");
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", err->code ? err->code
                                                 : ADM_E_INTERNAL);
    cJSON_AddStringToObject(e, "message", err->message);
    return o;
}

/* ---- strings ----------------------------------------------------------- */

bool adm_utf8_valid(const char *s, size_t len)
{
    return mqtt_utf8_valid((const uint8_t *)s, len);
}

/* Length of the valid UTF-8 sequence at s (left bytes), 0 if none. */
static size_t utf8_seq(const uint8_t *s, size_t left)
{
    for (size_t n = 1; n <= 4 && n <= left; n++)
        if (mqtt_utf8_valid(s, n))
            return n;
    return 0;
}

size_t adm_utf8_sanitize(const char *s, size_t len, char *out, size_t size)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    if (size == 0)
        return 0;
    while (i < len && o + 1 < size) {
        if (p[i] >= 0x20 && p[i] < 0x7f) {
            out[o++] = (char)p[i++];
            continue;
        }
        size_t n = p[i] >= 0x80 ? utf8_seq(p + i, len - i) : 0;
        if (n == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + n + 1 > size)
            break;
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
    return o;
}

void adm_iso8601(uint64_t t, char *out, size_t size)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL ||
        strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "1970-01-01T00:00:00Z");
}

static void *json_alloc(size_t n)
{
    return mem_alloc(n);
}

void adm_json_init(void)
{
    cJSON_Hooks h = {.malloc_fn = json_alloc, .free_fn = mem_free};
    cJSON_InitHooks(&h);
}

/* ---- log types --------------------------------------------------------- */

const adm_log_type_t adm_log_type_names[] = {
    {"error", LOG_T_ERR},
    {"warning", LOG_T_WARNING},
    {"notice", LOG_T_NOTICE},
    {"information", LOG_T_INFO},
    {"debug", LOG_T_DEBUG},
    {"subscribe", LOG_T_SUBSCRIBE},
    {"unsubscribe", LOG_T_UNSUBSCRIBE},
    {NULL, 0},
};

/* Adds the types named in s[0..len) to *types. */
static int log_type_word(const char *s, size_t len, unsigned *types,
                         adm_err_t *err)
{
    if (len == 3 && memcmp(s, "all", 3) == 0) {
        *types |= LOG_T_ALL;
        return 0;
    }
    if (len == 4 && memcmp(s, "none", 4) == 0)
        return 0;
    /* Accepted as in the config file: there is nothing to log. */
    if (len == 10 && memcmp(s, "websockets", 10) == 0)
        return 0;
    for (const adm_log_type_t *t = adm_log_type_names; t->name; t++)
        if (strlen(t->name) == len && memcmp(t->name, s, len) == 0) {
            *types |= t->bits;
            return 0;
        }
    char shown[64];
    adm_utf8_sanitize(s, len, shown, sizeof(shown));
    return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                       "types: '%s' is not a log type (error, warning, "
                       "notice, information, debug, subscribe, "
                       "unsubscribe, all, none)",
                       shown);
}

/* Adds the comma-separated names in s to *types. */
static int log_type_list(const char *s, unsigned *types, adm_err_t *err)
{
    for (;;) {
        size_t n = strcspn(s, ",");
        const char *w = s;
        size_t wl = n;
        while (wl && *w == ' ')
            w++, wl--;
        while (wl && w[wl - 1] == ' ')
            wl--;
        if (wl == 0)
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "types: empty log type name");
        if (log_type_word(w, wl, types, err) < 0)
            return -1;
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

int adm_log_types_parse(const cJSON *v, unsigned *types, adm_err_t *err)
{
    unsigned t = 0;
    if (cJSON_IsString(v)) {
        if (log_type_list(v->valuestring, &t, err) < 0)
            return -1;
    } else if (cJSON_IsArray(v)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (!cJSON_IsString(e))
                return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                                   "types: the array must hold strings");
            if (log_type_list(e->valuestring, &t, err) < 0)
                return -1;
        }
    } else {
        return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                           "types must be a string or an array of "
                           "strings");
    }
    *types = t;
    return 0;
}

cJSON *adm_log_types_json(unsigned types)
{
    cJSON *a = cJSON_CreateArray();
    for (const adm_log_type_t *t = adm_log_type_names; t->name; t++)
        if (types & t->bits)
            cJSON_AddItemToArray(a, cJSON_CreateString(t->name));
    return a;
}

/* ---- parsing ------------------------------------------------------------ */

/* Checks value v of argument a of command c. */
static int check_arg(const adm_cmd_t *c, const adm_arg_spec_t *a,
                     const cJSON *v, adm_err_t *err)
{
    const char *cn = c->name, *an = a->name;
    switch (a->type) {
    case ADM_ARG_UINT: {
        if (!cJSON_IsNumber(v))
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "%s: %s must be an integer", cn, an);
        double d = v->valuedouble;
        if (!(d >= 0) || d > 4294967295.0 || d != (double)(uint32_t)d)
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "%s: %s must be an integer from %u to %u",
                               cn, an, a->min, a->max);
        if ((uint32_t)d < a->min || (uint32_t)d > a->max)
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "%s: %s must be from %u to %u", cn, an,
                               a->min, a->max);
        return 0;
    }
    case ADM_ARG_BOOL:
        if (!cJSON_IsBool(v))
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "%s: %s must be true or false", cn, an);
        return 0;
    case ADM_ARG_LOGTYPES: {
        unsigned t;
        return adm_log_types_parse(v, &t, err);
    }
    default:
        break;
    }
    /* The string types. */
    if (!cJSON_IsString(v))
        return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                           "%s: %s must be a string", cn, an);
    const char *s = v->valuestring;
    size_t len = strlen(s);
    uint32_t max = a->max ? a->max : ADM_STR_MAX;
    if (len > max)
        return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                           "%s: %s is longer than %u bytes", cn, an, max);
    if (!adm_utf8_valid(s, len))
        return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                           "%s: %s is not valid UTF-8", cn, an);
    switch (a->type) {
    case ADM_ARG_ID:
        if (len == 0)
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "%s: %s must not be empty", cn, an);
        break;
    case ADM_ARG_TOPIC:
        if (!topic_name_valid(s, len))
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "%s: %s is not a valid topic name (empty, "
                               "or with + or #)",
                               cn, an);
        break;
    case ADM_ARG_FILTER:
        if (!topic_filter_valid(s, len))
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "%s: %s is not a valid topic filter", cn,
                               an);
        break;
    case ADM_ARG_CHOICE: {
        for (const char *const *ch = a->choices; *ch; ch++)
            if (strcmp(*ch, s) == 0)
                return 0;
        char shown[64];
        adm_utf8_sanitize(s, len, shown, sizeof(shown));
        char list[128] = "";
        for (const char *const *ch = a->choices; *ch; ch++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%s%s",
                     ch == a->choices ? "" : ", ", *ch);
        }
        return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                           "%s: %s '%s' is not one of %s", cn, an, shown,
                           list);
    }
    default:
        break;
    }
    return 0;
}

/* Rules that tie arguments together. */
static int check_rules(const adm_req_t *r, adm_err_t *err)
{
    const char *action = adm_req_str(r, "action");
    switch (r->cmd->id) {
    case ADM_CMD_RETAINED:
        if (action == NULL || strcmp(action, "list") == 0) {
            if (adm_req_arg(r, "topic"))
                return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                                   "retained: list takes filter, not "
                                   "topic");
        } else {
            if (!adm_req_arg(r, "topic"))
                return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                                   "retained: %s needs topic", action);
            if (adm_req_arg(r, "filter") || adm_req_arg(r, "offset") ||
                adm_req_arg(r, "limit"))
                return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                                   "retained: %s takes only topic",
                                   action);
        }
        return 0;
    case ADM_CMD_SESSIONS:
        if (action != NULL && strcmp(action, "expire") == 0) {
            if (!adm_req_arg(r, "client_id"))
                return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                                   "sessions: expire needs client_id");
            if (adm_req_arg(r, "prefix") || adm_req_arg(r, "offset") ||
                adm_req_arg(r, "limit"))
                return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                                   "sessions: expire takes only "
                                   "client_id");
        } else if (adm_req_arg(r, "client_id")) {
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "sessions: list takes prefix, not "
                               "client_id (use the client command)");
        }
        return 0;
    default:
        return 0;
    }
}

/* True when a string of the JSON text holds the escape \u0000: cJSON
 * would end the C string there, so "kick victim\u0000x" would name
 * "victim".  No argument may hold a NUL. */
static bool has_nul_escape(const char *s, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"') {
            in_string = !in_string;
        } else if (in_string && s[i] == '\\' && i + 1 < len) {
            if (s[i + 1] == 'u' && i + 6 <= len &&
                memcmp(s + i + 2, "0000", 4) == 0)
                return true;
            i++; /* the escaped character */
        }
    }
    return false;
}

int adm_req_parse(const char *line, size_t len, adm_req_t *r,
                  adm_err_t *err)
{
    memset(r, 0, sizeof(*r));
    if (len > ADM_LINE_MAX)
        return adm_err_set(err, ADM_E_LINE_TOO_LONG,
                           "request longer than %d bytes", ADM_LINE_MAX);
    const char *end = NULL;
    r->root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    /* One value per line: only white space may follow it. */
    while (r->root && end < line + len &&
           (*end == ' ' || *end == '\t' || *end == '\r'))
        end++;
    if (r->root == NULL || end != line + len) {
        cJSON_Delete(r->root);
        r->root = NULL;
        return adm_err_set(err, ADM_E_BAD_JSON,
                           "the request is not valid JSON");
    }
    if (!cJSON_IsObject(r->root))
        return adm_err_set(err, ADM_E_BAD_REQUEST,
                           "the request must be a JSON object");
    if (has_nul_escape(line, len))
        return adm_err_set(err, ADM_E_BAD_REQUEST,
                           "a string of the request holds \\u0000 (NUL)");
    r->id = cJSON_GetObjectItemCaseSensitive(r->root, "id");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(r->root, "cmd");
    if (cmd == NULL)
        return adm_err_set(err, ADM_E_BAD_REQUEST,
                           "the request has no \"cmd\" member");
    if (!cJSON_IsString(cmd))
        return adm_err_set(err, ADM_E_BAD_REQUEST,
                           "\"cmd\" must be a string");
    r->cmd = adm_cmd_find(cmd->valuestring);
    if (r->cmd == NULL) {
        char shown[64];
        adm_utf8_sanitize(cmd->valuestring, strlen(cmd->valuestring), shown,
                          sizeof(shown));
        return adm_err_set(err, ADM_E_UNKNOWN_COMMAND,
                           "unknown command '%s'", shown);
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, r->root)
    {
        const char *k = m->string;
        if (k == NULL)
            continue;
        if ((strcmp(k, "cmd") == 0 && m != cmd) ||
            (strcmp(k, "id") == 0 && m != r->id))
            return adm_err_set(err, ADM_E_BAD_REQUEST,
                               "\"%s\" given twice", k);
        if (strcmp(k, "cmd") == 0 || strcmp(k, "id") == 0)
            continue;
        const adm_arg_spec_t *a = adm_arg_find(r->cmd, k);
        if (a == NULL) {
            char shown[64];
            adm_utf8_sanitize(k, strlen(k), shown, sizeof(shown));
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "%s: unknown argument '%s'", r->cmd->name,
                               shown);
        }
        size_t i = (size_t)(a - r->cmd->args);
        if (r->args[i] != NULL)
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "%s: argument '%s' given twice",
                               r->cmd->name, k);
        if (check_arg(r->cmd, a, m, err) < 0)
            return -1;
        r->args[i] = m;
    }
    for (size_t i = 0; r->cmd->args[i].name; i++)
        if (r->cmd->args[i].required && r->args[i] == NULL)
            return adm_err_set(err, ADM_E_BAD_ARGUMENT,
                               "%s: missing argument '%s'", r->cmd->name,
                               r->cmd->args[i].name);
    return check_rules(r, err);
}

void adm_req_free(adm_req_t *r)
{
    cJSON_Delete(r->root);
    memset(r, 0, sizeof(*r));
}

const cJSON *adm_req_arg(const adm_req_t *r, const char *name)
{
    if (r->cmd == NULL)
        return NULL;
    const adm_arg_spec_t *a = adm_arg_find(r->cmd, name);
    return a ? r->args[a - r->cmd->args] : NULL;
}

const char *adm_req_str(const adm_req_t *r, const char *name)
{
    const cJSON *v = adm_req_arg(r, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

uint32_t adm_req_uint(const adm_req_t *r, const char *name, uint32_t def)
{
    const cJSON *v = adm_req_arg(r, name);
    return cJSON_IsNumber(v) ? (uint32_t)v->valuedouble : def;
}

bool adm_req_bool(const adm_req_t *r, const char *name, bool def)
{
    const cJSON *v = adm_req_arg(r, name);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}
