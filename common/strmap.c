/*
 * strmap.c -- chained hash map from byte strings to 64-bit values.
 */
#include "strmap.h"

#include <string.h>

#include "mem.h"

uint64_t strmap_hash(const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

void strmap_init(strmap_t *m)
{
    m->cap = 64;
    m->n = 0;
    m->tab = mem_calloc(m->cap, sizeof(*m->tab));
}

void strmap_free(strmap_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        strmap_ent_t *e = m->tab[i];
        while (e) {
            strmap_ent_t *next = e->next;
            mem_free(e);
            e = next;
        }
    }
    mem_free(m->tab);
    m->tab = NULL;
    m->n = m->cap = 0;
}

strmap_ent_t *strmap_get(const strmap_t *m, const void *key, size_t len)
{
    uint64_t h = strmap_hash(key, len);
    for (strmap_ent_t *e = m->tab[h & (m->cap - 1)]; e; e = e->next)
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static void grow(strmap_t *m)
{
    size_t ncap = m->cap * 2;
    strmap_ent_t **nt = mem_calloc(ncap, sizeof(*nt));
    for (size_t i = 0; i < m->cap; i++) {
        strmap_ent_t *e = m->tab[i];
        while (e) {
            strmap_ent_t *next = e->next;
            e->next = nt[e->hash & (ncap - 1)];
            nt[e->hash & (ncap - 1)] = e;
            e = next;
        }
    }
    mem_free(m->tab);
    m->tab = nt;
    m->cap = ncap;
}

strmap_ent_t *strmap_put(strmap_t *m, const void *key, size_t len,
                         uint64_t val)
{
    strmap_ent_t *e = strmap_get(m, key, len);
    if (e) {
        e->val = val;
        return e;
    }
    if (m->n + 1 > m->cap)
        grow(m);
    e = mem_alloc(sizeof(*e) + len + 1);
    e->hash = strmap_hash(key, len);
    e->val = val;
    e->len = (uint32_t)len;
    memcpy(e->key, key, len);
    e->key[len] = 0;
    strmap_ent_t **b = &m->tab[e->hash & (m->cap - 1)];
    e->next = *b;
    *b = e;
    m->n++;
    return e;
}

int strmap_del(strmap_t *m, const void *key, size_t len)
{
    uint64_t h = strmap_hash(key, len);
    for (strmap_ent_t **pp = &m->tab[h & (m->cap - 1)]; *pp;
         pp = &(*pp)->next) {
        strmap_ent_t *e = *pp;
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0) {
            *pp = e->next;
            mem_free(e);
            m->n--;
            return 1;
        }
    }
    return 0;
}

strmap_ent_t *strmap_first(const strmap_t *m, size_t *i)
{
    for (*i = 0; *i < m->cap; (*i)++)
        if (m->tab[*i])
            return m->tab[*i];
    return NULL;
}

strmap_ent_t *strmap_next(const strmap_t *m, strmap_ent_t *e, size_t *i)
{
    if (e->next)
        return e->next;
    for ((*i)++; *i < m->cap; (*i)++)
        if (m->tab[*i])
            return m->tab[*i];
    return NULL;
}
