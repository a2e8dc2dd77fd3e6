/*
 * fe_tls.c -- OpenSSL contexts of the TLS listeners (TLS 1.2 and 1.3,
 * optional or required client certificates, session resumption by
 * tickets), their reload on SIGHUP, and new SSL objects for accepted
 * connections.
 *
 * NOTES
 *   The supervisor calls fe_tls_setup() before it forks: every frontend
 *   inherits the same contexts and so the same session ticket keys, and a
 *   client resumes its session on whichever frontend the kernel hands its
 *   next connection to.  After the fork each frontend owns its copy; a
 *   reload replaces it in that frontend only and carries the ticket keys
 *   over.  The session id context names the reload generation: sessions
 *   made before a reload (checked against the old CA files) do not
 *   resume after it.  The supervisor reloads its own contexts on the
 *   same signals, so a respawned frontend inherits the same generation.
 */
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "fe_tls.h"
#include "log.h"

#define FE_TLS_TICKET_KEYS 80 /* name, HMAC and AES keys (OpenSSL 3) */

static const cfg_t *tls_cfg;
static SSL_CTX *ctxs[CFG_MAX_LISTENERS];
static unsigned tls_gen; /* certificate reloads in this process */

const char *fe_tls_error(const char *dflt)
{
    static char buf[256];
    unsigned long e = ERR_get_error();
    if (e == 0)
        return dflt;
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

/* No pass phrases: a key that needs one fails to load instead of asking
 * on the terminal. */
static int no_passphrase(char *buf, int size, int rw, void *u)
{
    (void)buf;
    (void)size;
    (void)rw;
    (void)u;
    return 0;
}

/* Builds the context of listener ls.  Returns it, or NULL after logging
 * what failed. */
static SSL_CTX *ctx_build(const cfg_listener_t *ls)
{
    const char *what = "SSL_CTX_new()";
    const char *file = "";
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, ls->tls_version == CFG_TLS_V13
                                           ? TLS1_3_VERSION
                                           : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* fe_xport.c writes what it can and retries from a buffer that may
     * move when it grows. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    what = "ciphers";
    if (ls->ciphers[0] && SSL_CTX_set_cipher_list(ctx, ls->ciphers) != 1)
        goto fail;
    what = "ciphers_tls1.3";
    if (ls->ciphers_tls13[0] &&
        SSL_CTX_set_ciphersuites(ctx, ls->ciphers_tls13) != 1)
        goto fail;
    what = "certfile";
    file = ls->certfile;
    if (SSL_CTX_use_certificate_chain_file(ctx, ls->certfile) != 1)
        goto fail;
    what = "keyfile";
    file = ls->keyfile;
    if (SSL_CTX_use_PrivateKey_file(ctx, ls->keyfile, SSL_FILETYPE_PEM) !=
        1)
        goto fail;
    what = "keyfile (does it belong to certfile?)";
    if (SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    if (ls->cafile[0] || ls->capath[0]) {
        what = ls->cafile[0] ? "cafile" : "capath";
        file = ls->cafile[0] ? ls->cafile : ls->capath;
        if (SSL_CTX_load_verify_locations(ctx,
                                          ls->cafile[0] ? ls->cafile : NULL,
                                          ls->capath[0] ? ls->capath
                                                        : NULL) != 1)
            goto fail;
        if (ls->cafile[0]) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ls->cafile);
            if (names != NULL)
                SSL_CTX_set_client_CA_list(ctx, names);
        }
        /* Without require_certificate a client may present none; one it
         * presents must verify. */
        SSL_CTX_set_verify(ctx,
                           SSL_VERIFY_PEER |
                               (ls->require_certificate
                                    ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                    : 0),
                           NULL);
    }
    /* Sessions resume only on the listener that made them, and only
     * with the certificates and CAs they were checked with: OpenSSL
     * refuses a session (ticket or cache) of another id context. */
    char sid[SSL_MAX_SID_CTX_LENGTH];
    int n = snprintf(sid, sizeof(sid), "ringmq-%u-%u", ls->port, tls_gen);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)sid,
                                   (unsigned)n);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    return ctx;
fail:
    log_err("listener %u: %s%s%s: %s", ls->port, what, file[0] ? " " : "",
            file, fe_tls_error("failed"));
    SSL_CTX_free(ctx);
    return NULL;
}

int fe_tls_setup(const cfg_t *cfg)
{
    tls_cfg = cfg;
    for (int i = 0; i < cfg->n_listeners; i++) {
        const cfg_listener_t *ls = &cfg->listeners[i];
        if (ls->certfile[0] == '\0')
            continue;
        ctxs[i] = ctx_build(ls);
        if (ctxs[i] == NULL)
            return -1;
    }
    return 0;
}

int fe_tls_reload(void)
{
    int failed = 0;
    if (tls_cfg == NULL)
        return 0;
    tls_gen++;
    for (int i = 0; i < tls_cfg->n_listeners; i++) {
        if (ctxs[i] == NULL)
            continue;
        const cfg_listener_t *ls = &tls_cfg->listeners[i];
        SSL_CTX *ctx = ctx_build(ls);
        if (ctx == NULL) {
            log_err("listener %u: certificates not reloaded, the old ones "
                    "stay in use", ls->port);
            failed++;
            continue;
        }
        unsigned char keys[FE_TLS_TICKET_KEYS];
        if (SSL_CTX_get_tlsext_ticket_keys(ctxs[i], keys, sizeof(keys)) ==
            1)
            SSL_CTX_set_tlsext_ticket_keys(ctx, keys, sizeof(keys));
        /* Connections hold their own reference to the old context. */
        SSL_CTX_free(ctxs[i]);
        ctxs[i] = ctx;
        log_notice("listener %u: certificates reloaded from %s",
                   ls->port, ls->certfile);
    }
    return failed;
}

SSL *fe_tls_new(int li, int fd)
{
    if (li < 0 || li >= CFG_MAX_LISTENERS || ctxs[li] == NULL)
        return NULL;
    SSL *ssl = SSL_new(ctxs[li]);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        log_err("SSL_new() failed: %s", fe_tls_error("?"));
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

void fe_tls_free(void)
{
    for (int i = 0; i < CFG_MAX_LISTENERS; i++) {
        SSL_CTX_free(ctxs[i]);
        ctxs[i] = NULL;
    }
}
