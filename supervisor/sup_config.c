/*
 * sup_config.c -- the effective configuration as JSON, and reload: the
 * config file read again with the same command-line options, compared key
 * by key with what runs, log types applied live, the rest reported as
 * needing a restart (children keep the configuration they were forked
 * with).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "sup_config.h"

#define SUP_CAPTURE_MAX 8192

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v[0])
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

cJSON *sup_cfg_json(const cfg_t *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *ls = cJSON_AddArrayToObject(o, "listeners");
    for (int i = 0; i < c->n_listeners; i++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddNumberToObject(l, "port", c->listeners[i].port);
        add_str_or_null(l, "address", c->listeners[i].address);
        cJSON_AddStringToObject(l, "protocol",
                                c->listeners[i].protocol ==
                                        CFG_PROTO_WEBSOCKETS
                                    ? "websockets"
                                    : "mqtt");
        cJSON_AddBoolToObject(l, "tls", c->listeners[i].certfile[0] != 0);
        cJSON_AddItemToArray(ls, l);
    }
    cJSON_AddBoolToObject(o, "allow_anonymous", c->allow_anonymous);
    cJSON_AddNumberToObject(o, "max_inflight_messages",
                            c->max_inflight_messages);
    cJSON_AddNumberToObject(o, "max_queued_messages", c->max_queued_messages);
    cJSON_AddNumberToObject(o, "max_queued_bytes",
                            (double)c->max_queued_bytes);
    cJSON_AddNumberToObject(o, "max_packet_size", c->max_packet_size);
    cJSON_AddNumberToObject(o, "message_size_limit", c->message_size_limit);
    cJSON_AddNumberToObject(o, "max_keepalive", c->max_keepalive);
    cJSON_AddNumberToObject(o, "max_qos", c->max_qos);
    cJSON_AddNumberToObject(o, "max_topic_alias", c->max_topic_alias);
    cJSON_AddNumberToObject(o, "max_topic_alias_broker",
                            c->max_topic_alias_broker);
    cJSON_AddNumberToObject(o, "write_coalesce_ms", c->write_coalesce_ms);
    add_str_or_null(o, "response_information", c->response_info);
    cJSON_AddBoolToObject(o, "retain_available", c->retain_available);
    cJSON_AddNumberToObject(o, "persistent_client_expiration",
                            c->persistent_client_expiration);
    cJSON_AddItemToObject(o, "log_type", adm_log_types_json(log_types()));
    cJSON *d = cJSON_AddArrayToObject(o, "log_dest");
    static const struct {
        unsigned bit;
        const char *name;
    } dests[] = {{LOG_D_STDOUT, "stdout"},
                 {LOG_D_STDERR, "stderr"},
                 {LOG_D_SYSLOG, "syslog"},
                 {LOG_D_FILE, "file"}};
    for (size_t i = 0; i < sizeof(dests) / sizeof(dests[0]); i++)
        if (c->log_dests & dests[i].bit)
            cJSON_AddItemToArray(d, cJSON_CreateString(dests[i].name));
    add_str_or_null(o, "log_file", c->log_file);
    add_str_or_null(o, "pid_file", c->pid_file);
    add_str_or_null(o, "user", c->user);
    cJSON_AddNumberToObject(o, "frontends", c->frontends);
    cJSON_AddNumberToObject(o, "fanout_workers", c->fanout_workers);
    cJSON_AddNumberToObject(o, "max_clients", c->max_clients);
    cJSON_AddNumberToObject(o, "arena_size", (double)c->arena_size);
    cJSON_AddNumberToObject(o, "ingest_ring_size", c->ingest_ring_size);
    cJSON_AddNumberToObject(o, "connect_timeout", c->connect_timeout);
    add_str_or_null(o, "admin_socket", c->admin_socket);
    add_str_or_null(o, "config_file", c->config_file);
    cJSON_AddBoolToObject(o, "daemon", c->daemon);
    cJSON_AddBoolToObject(o, "verbose", c->verbose);
    cJSON_AddBoolToObject(o, "local_only", c->local_only);
    return o;
}

static bool listeners_differ(const cfg_t *a, const cfg_t *b)
{
    if (a->n_listeners != b->n_listeners)
        return true;
    for (int i = 0; i < a->n_listeners; i++)
        /* Any listener option (protocol, TLS files and settings): both
         * structs start zeroed, so bytes compare. */
        if (memcmp(&a->listeners[i], &b->listeners[i],
                   sizeof(cfg_listener_t)) != 0)
            return true;
    return false;
}

void sup_cfg_diff(const cfg_t *run, unsigned live_types, const cfg_t *next,
                  const char **applied, int *n_applied,
                  const char **restart, int *n_restart)
{
    int na = 0, nr = 0;
#define NEEDS_RESTART(name, differ)                                         \
    do {                                                                    \
        if ((differ) && nr < SUP_CFG_MAX_KEYS)                              \
            restart[nr++] = (name);                                         \
    } while (0)
    NEEDS_RESTART("listener", listeners_differ(run, next));
    NEEDS_RESTART("allow_anonymous",
                  run->allow_anonymous != next->allow_anonymous);
    NEEDS_RESTART("max_inflight_messages",
                  run->max_inflight_messages != next->max_inflight_messages);
    NEEDS_RESTART("max_queued_messages",
                  run->max_queued_messages != next->max_queued_messages);
    NEEDS_RESTART("max_queued_bytes",
                  run->max_queued_bytes != next->max_queued_bytes);
    NEEDS_RESTART("max_packet_size",
                  run->max_packet_size != next->max_packet_size);
    NEEDS_RESTART("message_size_limit",
                  run->message_size_limit != next->message_size_limit);
    NEEDS_RESTART("max_keepalive", run->max_keepalive != next->max_keepalive);
    NEEDS_RESTART("max_qos", run->max_qos != next->max_qos);
    NEEDS_RESTART("max_topic_alias",
                  run->max_topic_alias != next->max_topic_alias);
    NEEDS_RESTART("max_topic_alias_broker",
                  run->max_topic_alias_broker != next->max_topic_alias_broker);
    NEEDS_RESTART("write_coalesce_ms",
                  run->write_coalesce_ms != next->write_coalesce_ms);
    NEEDS_RESTART("response_information",
                  strcmp(run->response_info, next->response_info) != 0);
    NEEDS_RESTART("retain_available",
                  run->retain_available != next->retain_available);
    NEEDS_RESTART("persistent_client_expiration",
                  run->persistent_client_expiration !=
                      next->persistent_client_expiration);
    NEEDS_RESTART("log_dest", run->log_dests != next->log_dests ||
                                  strcmp(run->log_file, next->log_file) != 0);
    NEEDS_RESTART("pid_file", strcmp(run->pid_file, next->pid_file) != 0);
    NEEDS_RESTART("user", strcmp(run->user, next->user) != 0);
    NEEDS_RESTART("frontends", run->frontends != next->frontends);
    NEEDS_RESTART("fanout_workers",
                  run->fanout_workers != next->fanout_workers);
    NEEDS_RESTART("max_clients", run->max_clients != next->max_clients);
    NEEDS_RESTART("arena_size", run->arena_size != next->arena_size);
    NEEDS_RESTART("ingest_ring_size",
                  run->ingest_ring_size != next->ingest_ring_size);
    NEEDS_RESTART("connect_timeout",
                  run->connect_timeout != next->connect_timeout);
    NEEDS_RESTART("admin_socket",
                  strcmp(run->admin_socket, next->admin_socket) != 0);
#undef NEEDS_RESTART
    /* Every process reads the shared word: log types change live. */
    if (next->log_types != live_types)
        applied[na++] = "log_type";
    *n_applied = na;
    *n_restart = nr;
}

/* Runs the parser with stderr going to a memory file, so what it prints
 * can be returned to the admin client as well as logged.  When that is
 * more than out holds, the last whole lines are kept (a fatal error is
 * the last line) and *cut gets the bytes left out before them. */
static int parse_captured(cfg_t *next, const cfg_t *run, char *out,
                          size_t size, size_t *cut)
{
    out[0] = '\0';
    *cut = 0;
    int mfd = memfd_create("ringmq-reload", MFD_CLOEXEC);
    int saved = mfd >= 0 ? dup(STDERR_FILENO) : -1;
    if (saved >= 0 && dup2(mfd, STDERR_FILENO) < 0) {
        close(saved);
        saved = -1;
    }
    int rc = cfg_parse_file(next, run->config_file);
    if (rc == 0)
        rc = cfg_finish(next);
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
        off_t end = lseek(mfd, 0, SEEK_END);
        off_t from = end > (off_t)size - 1 ? end - ((off_t)size - 1) : 0;
        char before = '\n'; /* the byte before the window */
        if (from > 0 && pread(mfd, &before, 1, from - 1) != 1)
            before = '\0';
        ssize_t n = pread(mfd, out, size - 1, from);
        out[n > 0 ? n : 0] = '\0';
        if (from > 0 && n > 0) {
            /* Start at a line: drop the partial one at the front. */
            size_t skip = 0;
            if (before != '\n') {
                char *nl = strchr(out, '\n');
                skip = nl ? (size_t)(nl + 1 - out) : (size_t)n;
                memmove(out, out + skip, (size_t)n - skip + 1);
            }
            *cut = (size_t)from + skip;
        }
    }
    if (mfd >= 0)
        close(mfd);
    return rc;
}

static cJSON *names_json(const char **names, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
    return a;
}

static void join(char *out, size_t size, const char **names, int n)
{
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, size - l, "%s%s", i ? ", " : "", names[i]);
    }
    if (n == 0)
        snprintf(out, size, "nothing");
}

cJSON *sup_cfg_reload(const cfg_t *run, adm_err_t *err)
{
    static cfg_t next;
    char text[SUP_CAPTURE_MAX];
    const char *applied[SUP_CFG_MAX_KEYS], *restart[SUP_CFG_MAX_KEYS];
    int na = 0, nr = 0;

    cJSON *res = cJSON_CreateObject();
    cJSON *msgs = cJSON_CreateArray();
    if (run->config_file[0] == '\0') {
        log_notice("reload: the broker was started without a config file: "
                   "nothing to reload");
        cJSON_AddItemToArray(msgs, cJSON_CreateString(
                                       "started without a config file "
                                       "(-c): nothing to reload"));
        goto done;
    }
    cfg_defaults(&next);
    next.verbose = run->verbose;
    next.daemon = run->daemon;
    memcpy(next.cmd_ports, run->cmd_ports, sizeof(next.cmd_ports));
    next.n_cmd_ports = run->n_cmd_ports;
    size_t cut;
    int rc = parse_captured(&next, run, text, sizeof(text), &cut);
    if (cut > 0) {
        char note[96];
        snprintf(note, sizeof(note), "(%zu bytes of earlier messages left "
                 "out)", cut);
        log_warn("reload: %s", note);
        cJSON_AddItemToArray(msgs, cJSON_CreateString(note));
    }
    const char *last = NULL; /* the parser stops at the fatal line */
    for (char *line = text, *nl; *line; line = nl) {
        nl = line + strcspn(line, "\n");
        if (*nl)
            *nl++ = '\0';
        if (strncmp(line, "ringmq: ", 8) == 0)
            line += 8;
        if (*line == '\0')
            continue;
        last = line;
        log_msg(rc < 0 ? LOG_T_ERR : LOG_T_WARNING, "reload: %s", line);
        cJSON_AddItemToArray(msgs, cJSON_CreateString(line));
    }
    if (rc < 0) {
        adm_err_set(err, ADM_E_CONFIG, "%s (nothing was changed)",
                    last ? last : "the config file has errors");
        log_err("reload failed: nothing was changed");
        cJSON_Delete(msgs);
        cJSON_Delete(res);
        return NULL;
    }
    sup_cfg_diff(run, log_types(), &next, applied, &na, restart, &nr);
    for (int i = 0; i < na; i++)
        if (strcmp(applied[i], "log_type") == 0)
            log_set_types(next.log_types);
    char a[512], r[512];
    join(a, sizeof(a), applied, na);
    join(r, sizeof(r), restart, nr);
    log_notice("reload of %s: applied: %s; needs a restart: %s",
               run->config_file, a, r);
done:
    cJSON_AddItemToObject(res, "applied", names_json(applied, na));
    cJSON_AddItemToObject(res, "needs_restart", names_json(restart, nr));
    cJSON_AddItemToObject(res, "messages", msgs);
    return res;
}
