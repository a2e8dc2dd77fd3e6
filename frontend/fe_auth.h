/*
 * fe_auth.h -- MQTT 5 enhanced authentication (MQTT 5.0 4.12): the hook
 * a method plugs into.  A method is a step function that sees the
 * client's Authentication Data (from CONNECT, then from each AUTH) and
 * answers with data of its own and a verdict.  No method is built in; a
 * test method exists when RINGMQ_TEST_AUTH=1 is in the environment (as
 * RINGMQ_CRASH_POINT, for the end-to-end tests only).
 */
#ifndef RINGMQ_FE_AUTH_H
#define RINGMQ_FE_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* The most Authentication Data a method may hand back in one step (it
 * travels in AUTH and CONNACK); more refuses the client with 0x83. */
#define FE_AUTH_OUT_MAX 256

enum {
    FE_AUTH_FAIL = -1,    /* refused: CONNACK / DISCONNECT 0x87 */
    FE_AUTH_DONE = 0,     /* authenticated: CONNACK (or AUTH 0x00) */
    FE_AUTH_CONTINUE = 1  /* send AUTH 0x18 with the out data, wait */
};

typedef struct fe_auth_method {
    const char *name; /* the Authentication Method */
    /*
     * One step of the exchange.  *state is NULL at the first step of an
     * exchange (CONNECT, or AUTH 0x19 re-authentication) and is the
     * method's to keep until free() (called once the exchange ends, and
     * when the connection closes).  data is the client's Authentication
     * Data (len may be 0).  On DONE or CONTINUE, *out / *out_len may point
     * at data to send back (static or in *state, valid until the next
     * call); NULL for none.  Returns FE_AUTH_*.
     */
    int (*step)(void **state, const uint8_t *data, size_t len,
                const uint8_t **out, size_t *out_len);
    void (*free)(void *state);
} fe_auth_method_t;

/* The method named name, or NULL when there is none. */
const fe_auth_method_t *fe_auth_find(const char *name, size_t len);

#endif
