/*
 * strmap.h -- a small hash map from byte strings to a 64-bit value, for
 * private process state (client-id map, retained store).  Keys are copied.
 */
#ifndef RINGMQ_STRMAP_H
#define RINGMQ_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap_ent {
    struct strmap_ent *next;
    uint64_t hash;
    uint64_t val;
    uint32_t len;
    char key[];
} strmap_ent_t;

typedef struct strmap {
    strmap_ent_t **tab;
    size_t cap; /* power of two */
    size_t n;
} strmap_t;

/* 64-bit FNV-1a of a byte string. */
uint64_t strmap_hash(const void *key, size_t len);

void strmap_init(strmap_t *m);
void strmap_free(strmap_t *m);

/* Returns the entry for key, or NULL. */
strmap_ent_t *strmap_get(const strmap_t *m, const void *key, size_t len);

/* Inserts or replaces; returns the entry (its val set to val). */
strmap_ent_t *strmap_put(strmap_t *m, const void *key, size_t len,
                         uint64_t val);

/* Removes key; returns 1 when it was there, 0 otherwise. */
int strmap_del(strmap_t *m, const void *key, size_t len);

/* Iteration: for (e = strmap_first(m, &i); e; e = strmap_next(m, e, &i)) */
strmap_ent_t *strmap_first(const strmap_t *m, size_t *i);
strmap_ent_t *strmap_next(const strmap_t *m, strmap_ent_t *e, size_t *i);

#endif
