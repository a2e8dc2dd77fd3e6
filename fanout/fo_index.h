/*
 * fo_index.h -- a fan-out worker's subscription index: a topic tree keyed
 * by level, with '+' and '#' children, holding (client slot, granted QoS)
 * at each filter's node.  It is private, derived state of one worker,
 * rebuilt from the sessions in shared memory after a restart.
 */
#ifndef RINGMQ_FO_INDEX_H
#define RINGMQ_FO_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct fo_index fo_index_t;

/* Returns a new empty index, or NULL when out of memory. */
fo_index_t *fo_index_new(void);

/* Frees the index and everything in it. NULL is allowed. */
void fo_index_free(fo_index_t *ix);

/*
 * Subscribes slot to the (already validated) filter with QoS qos (the
 * granted QoS or'ed with the MQTT 5 subscription options) and
 * Subscription Identifier sub_id (0: none).  Returns 1 when the
 * subscription is new, 0 when it existed and only its QoS and identifier
 * were replaced, -1 when out of memory (the index is unchanged).
 */
int fo_index_add(fo_index_t *ix, const char *filter, size_t len,
                 uint32_t slot, uint8_t qos, uint32_t sub_id);

/*
 * Removes slot's subscription to filter.  Returns 1 when removed, 0 when
 * there was none.  Empty tree nodes are freed.
 */
int fo_index_remove(fo_index_t *ix, const char *filter, size_t len,
                    uint32_t slot);

/* Called once per matching (filter, slot) pair; a slot subscribed through
 * several matching filters is reported once per filter (dedup is the
 * caller's job). */
typedef void (*fo_match_cb)(void *arg, uint32_t slot, uint8_t qos,
                            uint32_t sub_id);

/*
 * Calls cb for every subscription whose filter matches the valid topic
 * name, honouring the '$' rule of topic_matches().  Allocates nothing.
 */
void fo_index_match(const fo_index_t *ix, const char *topic, size_t len,
                    fo_match_cb cb, void *arg);

/* Number of (filter, slot) subscriptions held. */
size_t fo_index_count(const fo_index_t *ix);

#endif
