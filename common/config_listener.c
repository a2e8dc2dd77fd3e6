/*
 * config_listener.c -- the listener keys of the configuration file
 * (listener, port, bind_address, protocol and each listener's TLS and
 * WebSocket options) and the checks of each listener once the file is
 * read.  Options apply to the listener line above them, or to the
 * default listener (port, bind_address) before any, as in Mosquitto.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"

int
cfg_key_listener(cfg_t *c, const cfg_line_t *l)
{
    uint64_t port;
    cfg_listener_t *ls;

    if (cfg_nargs(l, 1, 2) < 0) {
        return -1;
    }
    if (strcmp(l->argv[0], "0") == 0) {
        return cfg_error(l, "listener: port 0 (a Unix socket) is not "
                            "supported yet");
    }
    if (cfg_arg_uint(l, 0, 1, 65535, &port) < 0) {
        return -1;
    }
    if (l->argc == 2 && strlen(l->argv[1]) >= sizeof(ls->address)) {
        return cfg_error(l, "listener: address is longer than %zu "
                            "characters", sizeof(ls->address) - 1);
    }
    if (c->n_listeners >= CFG_MAX_LISTENERS) {
        return cfg_error(l, "listener: too many listeners (at most %d)",
                         CFG_MAX_LISTENERS);
    }

    ls = &c->listeners[c->n_listeners++];
    memset(ls, 0, sizeof(*ls));
    ls->port = (uint16_t) port;
    if (l->argc == 2) {
        strcpy(ls->address, l->argv[1]);
    }
    return 0;
}

int
cfg_key_port(cfg_t *c, const cfg_line_t *l)
{
    uint64_t port;

    if (cfg_one_uint(l, 1, 65535, &port) < 0) {
        return -1;
    }
    if (c->default_listener.port != 0) {
        cfg_warn(l, "port is given more than once; %llu is used",
                 (unsigned long long) port);
    }
    c->default_listener.port = (uint16_t) port;
    c->default_listener_set = true;
    return 0;
}

int
cfg_key_bind_address(cfg_t *c, const cfg_line_t *l)
{
    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    if (c->default_listener.address[0] != '\0') {
        return cfg_error(l, "bind_address is given more than once");
    }
    if (cfg_rest_string(l, l->argv[0], c->default_listener.address,
                        sizeof(c->default_listener.address)) < 0) {
        return -1;
    }
    c->default_listener_set = true;
    return 0;
}

/* The listener the listener options of line l apply to: the one of the
 * last listener line, or the default listener (port, bind_address) when
 * there is none yet, as in Mosquitto.  Options of the default listener
 * are noted (key and line), for cfg_finish to name them if there is no
 * default listener to apply them to. */
static cfg_listener_t *
cfg_cur_listener(cfg_t *c, const cfg_line_t *l)
{
    size_t len, klen;

    if (c->n_listeners > 0) {
        return &c->listeners[c->n_listeners - 1];
    }
    len = strlen(c->default_options);
    klen = strlen(l->key);
    if (len + klen + 24 < sizeof(c->default_options)) {
        snprintf(c->default_options + len, sizeof(c->default_options) - len,
                 "%s%s (line %d)", len > 0 ? ", " : "", l->key, l->lineno);
    }
    return &c->default_listener;
}

int
cfg_key_protocol(cfg_t *c, const cfg_line_t *l)
{
    cfg_listener_t *ls = cfg_cur_listener(c, l);

    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    if (strcmp(l->argv[0], "mqtt") == 0) {
        ls->protocol = CFG_PROTO_MQTT;
        return 0;
    }
    if (strcmp(l->argv[0], "websockets") == 0) {
        ls->protocol = CFG_PROTO_WEBSOCKETS;
        return 0;
    }
    return cfg_error(l, "protocol: '%s' is not mqtt or websockets",
                     l->argv[0]);
}

/* certfile, keyfile, cafile PATH: a file that must be readable now (the
 * supervisor loads it before the processes start, and again on SIGHUP). */
int
cfg_key_tls_file(cfg_t *c, const cfg_line_t *l)
{
    cfg_listener_t *ls = cfg_cur_listener(c, l);
    struct stat st;
    char *dst;

    if (strcmp(l->key, "certfile") == 0) {
        dst = ls->certfile;
    } else if (strcmp(l->key, "keyfile") == 0) {
        dst = ls->keyfile;
    } else {
        dst = ls->cafile;
        ls->tls_option_set = true;
    }
    if (cfg_rest_string(l, l->rest, dst, CFG_PATH_MAX) < 0) {
        return -1;
    }
    if (stat(dst, &st) < 0 || access(dst, R_OK) < 0) {
        return cfg_error(l, "%s: cannot read %s: %s", l->key, dst,
                         strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        return cfg_error(l, "%s: %s is a directory, not a file", l->key,
                         dst);
    }
    return 0;
}

/* capath DIR: a directory of CA certificates (hashed names, c_rehash). */
int
cfg_key_capath(cfg_t *c, const cfg_line_t *l)
{
    cfg_listener_t *ls = cfg_cur_listener(c, l);
    struct stat st;

    if (cfg_rest_string(l, l->rest, ls->capath, CFG_PATH_MAX) < 0) {
        return -1;
    }
    if (stat(ls->capath, &st) < 0) {
        return cfg_error(l, "capath: cannot read %s: %s", ls->capath,
                         strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return cfg_error(l, "capath: %s is not a directory", ls->capath);
    }
    ls->tls_option_set = true;
    return 0;
}

/* require_certificate, use_identity_as_username: booleans. */
int
cfg_key_tls_bool(cfg_t *c, const cfg_line_t *l)
{
    cfg_listener_t *ls = cfg_cur_listener(c, l);
    bool v;

    if (cfg_one_bool(l, &v) < 0) {
        return -1;
    }
    if (strcmp(l->key, "require_certificate") == 0) {
        ls->require_certificate = v;
    } else {
        ls->use_identity_as_username = v;
    }
    ls->tls_option_set = true;
    return 0;
}

/* tls_version: the oldest TLS version the listener accepts. */
int
cfg_key_tls_version(cfg_t *c, const cfg_line_t *l)
{
    cfg_listener_t *ls = cfg_cur_listener(c, l);

    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    if (strcmp(l->argv[0], "tlsv1.2") == 0) {
        ls->tls_version = CFG_TLS_V12;
    } else if (strcmp(l->argv[0], "tlsv1.3") == 0) {
        ls->tls_version = CFG_TLS_V13;
    } else if (strcmp(l->argv[0], "tlsv1.1") == 0
               || strcmp(l->argv[0], "tlsv1") == 0)
    {
        return cfg_error(l, "tls_version: %s is not supported (ringmq "
                            "speaks TLS 1.2 and 1.3)", l->argv[0]);
    } else {
        return cfg_error(l, "tls_version: '%s' is not tlsv1.2 or tlsv1.3",
                         l->argv[0]);
    }
    ls->tls_option_set = true;
    return 0;
}

/* ciphers (TLS 1.2, OpenSSL cipher list) and ciphers_tls1.3 (TLS 1.3
 * suites): checked by OpenSSL when the listener's context is built. */
int
cfg_key_ciphers(cfg_t *c, const cfg_line_t *l)
{
    cfg_listener_t *ls = cfg_cur_listener(c, l);
    char *dst = strcmp(l->key, "ciphers") == 0 ? ls->ciphers
                                               : ls->ciphers_tls13;

    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    if (cfg_rest_string(l, l->argv[0], dst, CFG_PATH_MAX) < 0) {
        return -1;
    }
    ls->tls_option_set = true;
    return 0;
}

/* websockets_path /PATH: the HTTP path a WebSocket client must ask for. */
int
cfg_key_ws_path(cfg_t *c, const cfg_line_t *l)
{
    cfg_listener_t *ls = cfg_cur_listener(c, l);
    const char *p;

    if (cfg_nargs(l, 1, 1) < 0) {
        return -1;
    }
    if (l->argv[0][0] != '/') {
        return cfg_error(l, "websockets_path: '%s' does not start with /",
                         l->argv[0]);
    }
    for (p = l->argv[0]; *p; p++) {
        if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f
            || *p == '?' || *p == '#')
        {
            return cfg_error(l, "websockets_path: '%s' is not a plain URL "
                                "path", l->argv[0]);
        }
    }
    if (cfg_rest_string(l, l->argv[0], ls->ws_path, sizeof(ls->ws_path))
        < 0)
    {
        return -1;
    }
    ls->ws_option_set = true;
    return 0;
}

int
cfg_key_ws_frame(cfg_t *c, const cfg_line_t *l)
{
    cfg_listener_t *ls = cfg_cur_listener(c, l);
    uint64_t v;

    if (cfg_one_uint(l, CFG_WS_FRAME_MIN, CFG_WS_FRAME_MAX, &v) < 0) {
        return -1;
    }
    ls->ws_max_frame = (uint32_t) v;
    ls->ws_option_set = true;
    return 0;
}

int
cfg_add_listener(cfg_t *c, const char *where, uint16_t port,
                 const char *address, const cfg_listener_t *tmpl)
{
    cfg_listener_t *ls;

    if (c->n_listeners >= CFG_MAX_LISTENERS) {
        cfg_print("%s: too many listeners (at most %d)", where,
                  CFG_MAX_LISTENERS);
        return -1;
    }
    ls = &c->listeners[c->n_listeners++];
    if (tmpl != NULL) {
        *ls = *tmpl;
    } else {
        memset(ls, 0, sizeof(*ls));
    }
    ls->port = port;
    strcpy(ls->address, address);
    return 0;
}

bool
cfg_listener_has_options(const cfg_listener_t *ls)
{
    return ls->protocol != CFG_PROTO_MQTT || ls->certfile[0] != '\0'
           || ls->keyfile[0] != '\0' || ls->tls_option_set
           || ls->ws_option_set;
}

int
cfg_finish_listener(cfg_t *c, const char *where, cfg_listener_t *ls)
{
    const char *what;

    what = ls->certfile[0] == '\0' && ls->keyfile[0] != '\0'
               ? "keyfile is given without certfile"
           : ls->certfile[0] != '\0' && ls->keyfile[0] == '\0'
               ? "certfile is given without keyfile"
           : ls->certfile[0] == '\0' && ls->tls_option_set
               ? "TLS options (cafile, capath, require_certificate, "
                 "use_identity_as_username, tls_version, ciphers) need "
                 "certfile and keyfile"
           : ls->require_certificate && ls->cafile[0] == '\0'
                 && ls->capath[0] == '\0'
               ? "require_certificate needs cafile or capath to check "
                 "client certificates with"
           : ls->use_identity_as_username && !ls->require_certificate
               ? "use_identity_as_username needs require_certificate true"
           : ls->ws_option_set && ls->protocol != CFG_PROTO_WEBSOCKETS
               ? "websockets_path and websockets_max_frame_size need "
                 "protocol websockets"
           : NULL;
    if (what != NULL) {
        cfg_print("%s: listener %u: %s", where, (unsigned) ls->port, what);
        return -1;
    }
    if (ls->protocol == CFG_PROTO_WEBSOCKETS) {
        if (ls->ws_path[0] == '\0') {
            strcpy(ls->ws_path, CFG_WS_PATH_DEFAULT);
        }
        if (ls->ws_max_frame == 0) {
            /* One frame may carry the largest packet, its header and a
             * little of the next. */
            ls->ws_max_frame = c->max_packet_size;
            if (ls->ws_max_frame < 65536) {
                ls->ws_max_frame = 65536;
            }
        }
    }
    return 0;
}
