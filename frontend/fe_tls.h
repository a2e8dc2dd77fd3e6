/*
 * fe_tls.h -- the OpenSSL contexts of the TLS listeners: built once by the
 * supervisor before the forks (so a bad certificate stops the start and
 * every frontend shares the session ticket keys), rebuilt by each frontend
 * when it gets SIGHUP.
 */
#ifndef RINGMQ_FE_TLS_H
#define RINGMQ_FE_TLS_H

#include <openssl/ssl.h>

#include "config.h"

/*
 * Builds the context of every listener of cfg that has a certfile.
 * Returns 0, or -1 after logging which listener and file is wrong and
 * OpenSSL's reason (certificate or key that does not load, key that does
 * not match the certificate, a CA file that does not load, a cipher list
 * OpenSSL refuses).  cfg must stay valid while contexts are in use.
 */
int fe_tls_setup(const cfg_t *cfg);

/*
 * Loads the certificates, keys and CA files of every TLS listener again
 * (same paths: the configuration is the one the process was forked with)
 * into new contexts that keep the session ticket keys.  A listener whose
 * files fail to load keeps its old context (logged).  Connections already
 * open keep the context they started with.  Returns the number of
 * listeners that failed (0: all reloaded).  Sessions made before the
 * reload no longer resume (the session id context counts reloads).
 */
int fe_tls_reload(void);

/* A new server-side SSL on fd for a connection accepted on listener li,
 * or NULL (logged).  The caller owns it (SSL_free). */
SSL *fe_tls_new(int li, int fd);

/* Frees every context (at exit). */
void fe_tls_free(void);

/* OpenSSL's last error as text (empties the thread's error queue), or
 * dflt when it has none. */
const char *fe_tls_error(const char *dflt);

#endif
