/*
 * topic.c -- MQTT 3.1.1 topic names and filters (section 4.7): what a client
 * may publish to or subscribe to, and whether a filter matches a name.
 * Nothing here allocates.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mqtt.h"
#include "topic.h"

#define TOPIC_MAX_LEN 65535

/* Returns the end of the level starting at s[i]: the next '/' or len. */
static size_t
topic_level_end(const char *s, size_t len, size_t i)
{
    const char *slash;

    slash = memchr(s + i, '/', len - i);
    return slash != NULL ? (size_t) (slash - s) : len;
}

/*
 * Returns true when s[0..len) is a topic name a client may publish to:
 * 1..65535 bytes of valid MQTT UTF-8 without '+' or '#'.
 */
bool
topic_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > TOPIC_MAX_LEN) {
        return false;
    }
    if (memchr(s, '+', len) != NULL || memchr(s, '#', len) != NULL) {
        return false;
    }
    return mqtt_utf8_valid((const uint8_t *) s, len);
}

/*
 * Returns true when s[0..len) is a topic filter a client may subscribe to:
 * 1..65535 bytes of valid MQTT UTF-8, '+' only as a whole level, '#' only
 * as the whole last level.
 */
bool
topic_filter_valid(const char *s, size_t len)
{
    size_t i, end;

    if (len == 0 || len > TOPIC_MAX_LEN) {
        return false;
    }
    for (i = 0; i <= len; i = end + 1) {
        end = topic_level_end(s, len, i);
        if (end - i == 1 && (s[i] == '+' || s[i] == '#')) {
            if (s[i] == '#' && end != len) {
                return false;               /* '#' not the last level */
            }
            continue;
        }
        if (memchr(s + i, '+', end - i) != NULL
            || memchr(s + i, '#', end - i) != NULL)
        {
            return false;                   /* wildcard inside a level */
        }
    }
    return mqtt_utf8_valid((const uint8_t *) s, len);
}

/*
 * Returns true when the valid filter matches the valid topic name, level by
 * level: '+' matches any one level (also an empty one), '#' any number of
 * levels including none ("a/#" matches "a").  A topic starting with '$' is
 * not matched by a filter whose first level is '+' or '#'.
 */
bool
topic_matches(const char *filter, size_t flen, const char *topic,
              size_t tlen)
{
    size_t f, t, fend, tend;

    if (tlen > 0 && topic[0] == '$' && flen > 0
        && (filter[0] == '+' || filter[0] == '#'))
    {
        return false;
    }

    f = 0;
    t = 0;

    for ( ;; ) {
        fend = topic_level_end(filter, flen, f);

        if (fend - f == 1 && filter[f] == '#') {
            return true;
        }

        tend = topic_level_end(topic, tlen, t);

        if (!(fend - f == 1 && filter[f] == '+')
            && (fend - f != tend - t
                || memcmp(filter + f, topic + t, fend - f) != 0))
        {
            return false;
        }

        if (fend == flen) {
            return tend == tlen;
        }

        if (tend == tlen) {
            /* the topic ends here; only a trailing "/#" still matches */
            return flen - fend == 2 && filter[fend + 1] == '#';
        }

        f = fend + 1;
        t = tend + 1;
    }
}

#define SHARE_PREFIX "$share/"
#define SHARE_PREFIX_LEN 7

int topic_share_split(const char *f, size_t len, uint16_t *foff)
{
    if (len < SHARE_PREFIX_LEN ||
        memcmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN) != 0)
        return 0;
    const char *name = f + SHARE_PREFIX_LEN;
    const char *slash = memchr(name, '/', len - SHARE_PREFIX_LEN);
    if (slash == NULL || slash == name)
        return -1; /* no filter part, or an empty share name */
    for (const char *p = name; p < slash; p++)
        if (*p == '+' || *p == '#')
            return -1;
    size_t off = (size_t)(slash + 1 - f);
    if (off >= len || len > UINT16_MAX || !topic_filter_valid(f + off,
                                                              len - off))
        return -1;
    *foff = (uint16_t)off;
    return 1;
}

uint32_t topic_share_hash(const char *f, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)f[i]) * 16777619u;
    return h ? h : 1; /* 0 means "not shared" in inflight entries */
}
