/*
 * config_int.h -- what the parts of the configuration reader share:
 * config.c (the file, the keys, the checks at the end) and
 * config_listener.c (listeners and their TLS and WebSocket options).
 * Not for use outside common/config*.c.
 */
#ifndef RINGMQ_CONFIG_INT_H
#define RINGMQ_CONFIG_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define CFG_ARGS_MAX 8        /* arguments kept per line (more is an error) */

/* One config line, split: the key, the rest of the line and its words. */
typedef struct cfg_line {
    const char *file;
    int lineno;
    const char *key;
    const char *rest;               /* after the key, trimmed; "" if none */
    char *argv[CFG_ARGS_MAX];
    int argc;                       /* CFG_ARGS_MAX + 1: too many words */
} cfg_line_t;

/* ---- messages (config.c) ---- */

/* Writes "ringmq: <formatted>\n" to stderr with one write() call. */
void cfg_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "ringmq: FILE:LINE: message" and returns -1. */
int cfg_error(const cfg_line_t *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "ringmq: FILE:LINE: message" (the line is accepted). */
void cfg_warn(const cfg_line_t *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the words of a line (config.c); each returns 0 or -1 (printed) ---- */

/* Checks that the line has between min and max words after the key. */
int cfg_nargs(const cfg_line_t *l, int min, int max);

/* Parses word i as a number in [min, max]. */
int cfg_arg_uint(const cfg_line_t *l, int i, uint64_t min, uint64_t max,
                 uint64_t *v);

/* The line must hold exactly one number in [min, max]. */
int cfg_one_uint(const cfg_line_t *l, uint64_t min, uint64_t max,
                 uint64_t *v);

/* The line must hold exactly one boolean. */
int cfg_one_bool(const cfg_line_t *l, bool *b);

/* Copies the rest of the line (spaces allowed, as Mosquitto does for paths)
 * into dst of size bytes. */
int cfg_rest_string(const cfg_line_t *l, const char *s, char *dst,
                    size_t size);

/* ---- listeners (config_listener.c) ---- */

/* Key handlers: listener, port, bind_address, protocol, certfile /
 * keyfile / cafile, capath, require_certificate /
 * use_identity_as_username, tls_version, ciphers / ciphers_tls1.3,
 * websockets_path, websockets_max_frame_size.  Each returns 0 or -1. */
int cfg_key_listener(cfg_t *c, const cfg_line_t *l);
int cfg_key_port(cfg_t *c, const cfg_line_t *l);
int cfg_key_bind_address(cfg_t *c, const cfg_line_t *l);
int cfg_key_protocol(cfg_t *c, const cfg_line_t *l);
int cfg_key_tls_file(cfg_t *c, const cfg_line_t *l);
int cfg_key_capath(cfg_t *c, const cfg_line_t *l);
int cfg_key_tls_bool(cfg_t *c, const cfg_line_t *l);
int cfg_key_tls_version(cfg_t *c, const cfg_line_t *l);
int cfg_key_ciphers(cfg_t *c, const cfg_line_t *l);
int cfg_key_ws_path(cfg_t *c, const cfg_line_t *l);
int cfg_key_ws_frame(cfg_t *c, const cfg_line_t *l);

/* Adds a listener on port and address with the options of tmpl (NULL:
 * plain MQTT); where names the source in the error. */
int cfg_add_listener(cfg_t *c, const char *where, uint16_t port,
                     const char *address, const cfg_listener_t *tmpl);

/* True when ls has any listener option besides its port and address. */
bool cfg_listener_has_options(const cfg_listener_t *ls);

/* Checks that the options of one listener make sense together and fills
 * in derived defaults. */
int cfg_finish_listener(cfg_t *c, const char *where, cfg_listener_t *ls);

#endif
