/*
 * fe_auth.c -- the table of MQTT 5 enhanced authentication methods (see
 * fe_auth.h).  To add a method: write its step and free functions and
 * list it in methods[].
 */
#include <stdlib.h>
#include <string.h>

#include "fe_auth.h"

/* ---- "ringmq-test": a challenge and a response, for the tests ----
 * CONNECT data "hello" -> AUTH "challenge"; AUTH data "response" ->
 * authenticated, CONNACK data "welcome".  CONNECT data "quick" ->
 * authenticated at once.  Anything else fails. */

static const char TEST_CHALLENGE[] = "challenge";
static const char TEST_WELCOME[] = "welcome";

static int test_step(void **state, const uint8_t *data, size_t len,
                     const uint8_t **out, size_t *out_len)
{
    static int challenged; /* only the address is used as a state */
    *out = NULL;
    *out_len = 0;
    if (*state == NULL) {
        if (len == 5 && memcmp(data, "quick", 5) == 0)
            return FE_AUTH_DONE;
        if (len != 5 || memcmp(data, "hello", 5) != 0)
            return FE_AUTH_FAIL;
        *state = &challenged;
        *out = (const uint8_t *)TEST_CHALLENGE;
        *out_len = sizeof(TEST_CHALLENGE) - 1;
        return FE_AUTH_CONTINUE;
    }
    if (len != 8 || memcmp(data, "response", 8) != 0)
        return FE_AUTH_FAIL;
    *out = (const uint8_t *)TEST_WELCOME;
    *out_len = sizeof(TEST_WELCOME) - 1;
    return FE_AUTH_DONE;
}

static void test_free(void *state)
{
    (void)state;
}

static const fe_auth_method_t test_method = {"ringmq-test", test_step,
                                             test_free};

/* ---- the table ---- */

static const fe_auth_method_t *const methods[] = {
    &test_method, /* only with RINGMQ_TEST_AUTH=1 (fe_auth_find) */
};

const fe_auth_method_t *fe_auth_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        const fe_auth_method_t *m = methods[i];
        if (strlen(m->name) != len || memcmp(m->name, name, len) != 0)
            continue;
        if (m == &test_method) {
            const char *on = getenv("RINGMQ_TEST_AUTH");
            if (on == NULL || strcmp(on, "1") != 0)
                continue;
        }
        return m;
    }
    return NULL;
}
