/*
 * topic.h -- MQTT topic names and filters: validation and matching
 * (3.1.1 section 4.7).  Nothing here allocates.
 */
#ifndef RINGMQ_TOPIC_H
#define RINGMQ_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A topic name a client may publish to: 1..65535 bytes of valid MQTT UTF-8
 * (see mqtt_utf8_valid), no '+' or '#'.
 */
bool topic_name_valid(const char *s, size_t len);

/*
 * A topic filter a client may subscribe to: 1..65535 bytes of valid MQTT
 * UTF-8; '+' only as a whole level; '#' only as a whole last level.
 */
bool topic_filter_valid(const char *s, size_t len);

/*
 * True when the valid filter matches the valid topic name.  A topic whose
 * first character is '$' is not matched by a filter whose first level is
 * '+' or '#' (4.7.2).  "a/#" also matches "a".
 */
bool topic_matches(const char *filter, size_t flen, const char *topic,
                   size_t tlen);

/* True for the broker's own topics, those that begin with "$SYS":
 * clients may subscribe to them, not publish to them (PUBLISH, will),
 * as in Mosquitto. */
static inline bool topic_is_sys(const void *topic, size_t tlen)
{
    return tlen >= 4 && __builtin_memcmp(topic, "$SYS", 4) == 0;
}

/*
 * A shared subscription "$share/NAME/FILTER" (MQTT 5.0 4.8.2): returns 1
 * and sets *foff to where FILTER starts when f is one and is valid (NAME
 * not empty, without '/', '+' or '#'; FILTER a valid filter), -1 when f
 * starts with "$share/" but is not valid, 0 when it is not shared.
 */
int topic_share_split(const char *f, size_t len, uint16_t *foff);

/* The 32-bit name of a shared subscription (a hash of the whole filter,
 * never 0) that records carry. */
uint32_t topic_share_hash(const char *f, size_t len);

#endif
