/*
 * fo_index.c -- a fan-out worker's subscription index: a topic tree with one
 * node per filter level, literal children in a per-node hash table, '+' and
 * '#' children apart, and the (slot, QoS) subscribers of each filter in an
 * array at its last node, so fan-out to many subscribers is a linear walk.
 *
 * Memory comes from mem.h, which aborts on out of memory; the NULL and -1
 * out-of-memory results promised by fo_index.h therefore never happen.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fo_index.h"
#include "mem.h"

/* Subscribers per node found by a linear scan; above, a slot table too. */
#define FO_SUBS_LINEAR 16

#define FO_KIDS_MIN 4

typedef struct {
    uint32_t slot;
    uint32_t sub_id;
    uint8_t qos; /* granted QoS | MQTT_SUBOPT_* */
} fo_sub_t;

typedef struct fo_node fo_node_t;

struct fo_node {
    fo_node_t *parent;      /* NULL at the root */

    /* literal children: open addressing, linear probing, load <= 1/2 */
    fo_node_t **kids;
    uint32_t nkids;
    uint32_t kcap;          /* 0 or a power of two */

    fo_node_t *plus;        /* the '+' child */
    fo_node_t *hash;        /* the '#' child */

    /* subscribers of the filter ending here, unordered */
    fo_sub_t *subs;
    uint32_t nsubs;
    uint32_t scap;

    /* slot -> subs index + 1 (0: empty), only when nsubs > FO_SUBS_LINEAR */
    uint32_t *sidx;
    uint32_t sidx_cap;      /* 0 or a power of two */

    uint32_t lhash;         /* fo_level_hash(level) */
    uint32_t llen;
    char level[];           /* not NUL-terminated */
};

/* A pending node of fo_index_match(): t is the offset of the next topic
 * level, or len + 1 once the topic is used up. */
typedef struct {
    const fo_node_t *node;
    size_t t;
} fo_frame_t;

struct fo_index {
    fo_node_t *root;
    size_t count;

    /*
     * The match stack, grown by fo_index_add() so that matching allocates
     * nothing: a depth-first walk pushes at most two children per popped
     * node, one level deeper, so it never holds more than (deepest filter
     * in levels) + 1 frames.
     */
    fo_frame_t *stack;
    size_t stack_cap;
};

static uint32_t
fo_level_hash(const char *s, size_t len)
{
    uint32_t h;
    size_t i;

    /* FNV-1a */
    h = 2166136261u;
    for (i = 0; i < len; i++) {
        h ^= (uint8_t) s[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t
fo_slot_hash(uint32_t x)
{
    /* murmur3 finalizer: slots are often small and dense */
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

/* True when h lies in the cyclic interval (i, j] of a probe sequence. */
static bool
fo_cyclic_between(uint32_t i, uint32_t h, uint32_t j)
{
    return i <= j ? (i < h && h <= j) : (i < h || h <= j);
}

static void
fo_fatal(const char *what)
{
    fprintf(stderr, "ringmq: fo_index: %s\n", what);
    abort();
}

/* ---- nodes and their literal children ---- */

static fo_node_t *
fo_node_new(fo_node_t *parent, const char *s, size_t len, uint32_t h)
{
    fo_node_t *n;

    n = mem_calloc(1, offsetof(fo_node_t, level) + len);
    n->parent = parent;
    n->lhash = h;
    n->llen = (uint32_t) len;
    memcpy(n->level, s, len);
    return n;
}

static void
fo_node_destroy(fo_node_t *n)
{
    mem_free(n->kids);
    mem_free(n->subs);
    mem_free(n->sidx);
    mem_free(n);
}

static bool
fo_node_empty(const fo_node_t *n)
{
    return n->nsubs == 0 && n->nkids == 0 && n->plus == NULL
           && n->hash == NULL;
}

static fo_node_t *
fo_kid_find(const fo_node_t *n, const char *s, size_t len, uint32_t h)
{
    fo_node_t *k;
    uint32_t mask, i;

    if (n->nkids == 0) {
        return NULL;
    }
    mask = n->kcap - 1;
    for (i = h & mask; (k = n->kids[i]) != NULL; i = (i + 1) & mask) {
        if (k->lhash == h && k->llen == len
            && memcmp(k->level, s, len) == 0)
        {
            return k;
        }
    }
    return NULL;
}

static void
fo_kid_put(fo_node_t **tab, uint32_t cap, fo_node_t *k)
{
    uint32_t mask, i;

    mask = cap - 1;
    for (i = k->lhash & mask; tab[i] != NULL; i = (i + 1) & mask) {
        /* probe */
    }
    tab[i] = k;
}

static void
fo_kids_resize(fo_node_t *n, uint32_t cap)
{
    fo_node_t **tab;
    uint32_t i;

    tab = mem_calloc(cap, sizeof(fo_node_t *));
    for (i = 0; i < n->kcap; i++) {
        if (n->kids[i] != NULL) {
            fo_kid_put(tab, cap, n->kids[i]);
        }
    }
    mem_free(n->kids);
    n->kids = tab;
    n->kcap = cap;
}

static void
fo_kid_add(fo_node_t *n, fo_node_t *k)
{
    if (((size_t) n->nkids + 1) * 2 > n->kcap) {
        fo_kids_resize(n, n->kcap != 0 ? n->kcap * 2 : FO_KIDS_MIN);
    }
    fo_kid_put(n->kids, n->kcap, k);
    n->nkids++;
}

static void
fo_kid_del(fo_node_t *n, fo_node_t *k)
{
    uint32_t mask, i, j;

    mask = n->kcap - 1;
    for (i = k->lhash & mask; n->kids[i] != k; i = (i + 1) & mask) {
        /* probe */
    }

    /* backward-shift deletion keeps every probe sequence unbroken */
    for (j = (i + 1) & mask; n->kids[j] != NULL; j = (j + 1) & mask) {
        if (!fo_cyclic_between(i, n->kids[j]->lhash & mask, j)) {
            n->kids[i] = n->kids[j];
            i = j;
        }
    }
    n->kids[i] = NULL;
    n->nkids--;

    if (n->nkids == 0) {
        mem_free(n->kids);
        n->kids = NULL;
        n->kcap = 0;

    } else if (n->kcap > FO_KIDS_MIN && (size_t) n->nkids * 8 < n->kcap) {
        fo_kids_resize(n, n->kcap / 2);
    }
}

/* Unlinks the empty non-root node n from its parent and frees it. */
static void
fo_node_unlink(fo_node_t *n)
{
    fo_node_t *p;

    p = n->parent;
    if (p->plus == n) {
        p->plus = NULL;
    } else if (p->hash == n) {
        p->hash = NULL;
    } else {
        fo_kid_del(p, n);
    }
    fo_node_destroy(n);
}

/* ---- subscribers of one node ---- */

/* Returns the position in n->sidx of slot's entry, or of the empty entry
 * that ends its probe sequence. */
static uint32_t
fo_sidx_pos(const fo_node_t *n, uint32_t slot)
{
    uint32_t mask, i, e;

    mask = n->sidx_cap - 1;
    for (i = fo_slot_hash(slot) & mask; (e = n->sidx[i]) != 0;
         i = (i + 1) & mask)
    {
        if (n->subs[e - 1].slot == slot) {
            break;
        }
    }
    return i;
}

/* Rebuilds the slot table for the current subscribers, at load <= 1/4. */
static void
fo_sidx_rebuild(fo_node_t *n)
{
    uint32_t cap, i;

    cap = 8;
    while (cap < (size_t) n->nsubs * 4) {
        cap *= 2;
    }
    mem_free(n->sidx);
    n->sidx = mem_calloc(cap, sizeof(uint32_t));
    n->sidx_cap = cap;
    for (i = 0; i < n->nsubs; i++) {
        n->sidx[fo_sidx_pos(n, n->subs[i].slot)] = i + 1;
    }
}

/* Returns the index of slot in n->subs, or UINT32_MAX. */
static uint32_t
fo_sub_find(const fo_node_t *n, uint32_t slot)
{
    uint32_t i, e;

    if (n->sidx != NULL) {
        e = n->sidx[fo_sidx_pos(n, slot)];
        return e != 0 ? e - 1 : UINT32_MAX;
    }
    for (i = 0; i < n->nsubs; i++) {
        if (n->subs[i].slot == slot) {
            return i;
        }
    }
    return UINT32_MAX;
}

static void
fo_sub_append(fo_node_t *n, uint32_t slot, uint8_t qos, uint32_t sub_id)
{
    if (n->nsubs == UINT32_MAX - 1) {
        fo_fatal("too many subscribers on one filter");
    }
    if (n->nsubs == n->scap) {
        n->scap = n->scap != 0 ? n->scap * 2 : 2;
        n->subs = mem_realloc(n->subs, (size_t) n->scap * sizeof(fo_sub_t));
    }
    n->subs[n->nsubs].slot = slot;
    n->subs[n->nsubs].qos = qos;
    n->subs[n->nsubs].sub_id = sub_id;
    n->nsubs++;

    if (n->sidx != NULL && (size_t) n->nsubs * 2 <= n->sidx_cap) {
        n->sidx[fo_sidx_pos(n, slot)] = n->nsubs;

    } else if (n->sidx != NULL || n->nsubs > FO_SUBS_LINEAR) {
        fo_sidx_rebuild(n);
    }
}

static void
fo_sub_delete(fo_node_t *n, uint32_t i)
{
    uint32_t last, mask, p, j;

    last = n->nsubs - 1;

    if (n->sidx != NULL) {
        /* drop i's entry by backward shift, then point last's entry at i */
        mask = n->sidx_cap - 1;
        p = fo_sidx_pos(n, n->subs[i].slot);
        for (j = (p + 1) & mask; n->sidx[j] != 0; j = (j + 1) & mask) {
            if (!fo_cyclic_between(p,
                     fo_slot_hash(n->subs[n->sidx[j] - 1].slot) & mask, j))
            {
                n->sidx[p] = n->sidx[j];
                p = j;
            }
        }
        n->sidx[p] = 0;

        if (i != last) {
            n->sidx[fo_sidx_pos(n, n->subs[last].slot)] = i + 1;
        }
    }

    n->subs[i] = n->subs[last];
    n->nsubs--;

    if (n->sidx != NULL) {
        if (n->nsubs <= FO_SUBS_LINEAR / 2) {
            mem_free(n->sidx);
            n->sidx = NULL;
            n->sidx_cap = 0;

        } else if ((size_t) n->nsubs * 16 < n->sidx_cap) {
            fo_sidx_rebuild(n);
        }
    }

    if (n->nsubs == 0) {
        mem_free(n->subs);
        n->subs = NULL;
        n->scap = 0;

    } else if (n->scap > 8 && n->nsubs * 4 <= n->scap) {
        n->scap /= 2;
        n->subs = mem_realloc(n->subs, (size_t) n->scap * sizeof(fo_sub_t));
    }
}

/* ---- the index ---- */

/* Returns a new empty index, owned by the caller (fo_index_free()).  Never
 * returns NULL: out of memory aborts in mem.h. */
fo_index_t *
fo_index_new(void)
{
    fo_index_t *ix;

    ix = mem_calloc(1, sizeof(fo_index_t));
    ix->root = fo_node_new(NULL, "", 0, 0);
    ix->stack_cap = 16;
    ix->stack = mem_alloc(ix->stack_cap * sizeof(fo_frame_t));
    return ix;
}

/* Frees the index and every node and subscription in it.  NULL is allowed. */
void
fo_index_free(fo_index_t *ix)
{
    fo_node_t *list, *n, *k;
    uint32_t i;

    if (ix == NULL) {
        return;
    }

    /*
     * No recursion: filters may be thousands of levels deep.  The nodes
     * still to free are chained through their parent pointers.
     */
    list = ix->root;
    list->parent = NULL;

    while (list != NULL) {
        n = list;
        list = n->parent;

        if (n->plus != NULL) {
            n->plus->parent = list;
            list = n->plus;
        }
        if (n->hash != NULL) {
            n->hash->parent = list;
            list = n->hash;
        }
        for (i = 0; i < n->kcap; i++) {
            k = n->kids[i];
            if (k != NULL) {
                k->parent = list;
                list = k;
            }
        }
        fo_node_destroy(n);
    }

    mem_free(ix->stack);
    mem_free(ix);
}

/*
 * Subscribes slot to filter with QoS qos.  Returns 1 when new, 0 when the
 * subscription existed and only its QoS was replaced.  Never returns -1:
 * out of memory aborts in mem.h.
 */
int
fo_index_add(fo_index_t *ix, const char *filter, size_t len, uint32_t slot,
             uint8_t qos, uint32_t sub_id)
{
    fo_node_t *n, *k;
    size_t i, end, levels;
    uint32_t h, at;
    const char *slash;

    n = ix->root;
    levels = 0;

    for (i = 0; i <= len; i = end + 1) {
        slash = memchr(filter + i, '/', len - i);
        end = slash != NULL ? (size_t) (slash - filter) : len;
        levels++;

        if (end - i == 1 && filter[i] == '+') {
            if (n->plus == NULL) {
                n->plus = fo_node_new(n, "+", 1, fo_level_hash("+", 1));
            }
            n = n->plus;

        } else if (end - i == 1 && filter[i] == '#') {
            if (n->hash == NULL) {
                n->hash = fo_node_new(n, "#", 1, fo_level_hash("#", 1));
            }
            n = n->hash;

        } else {
            h = fo_level_hash(filter + i, end - i);
            k = fo_kid_find(n, filter + i, end - i, h);
            if (k == NULL) {
                k = fo_node_new(n, filter + i, end - i, h);
                fo_kid_add(n, k);
            }
            n = k;
        }
    }

    if (levels + 2 > ix->stack_cap) {
        ix->stack_cap = levels + 2;
        ix->stack = mem_realloc(ix->stack,
                                ix->stack_cap * sizeof(fo_frame_t));
    }

    at = fo_sub_find(n, slot);
    if (at != UINT32_MAX) {
        n->subs[at].qos = qos;
        n->subs[at].sub_id = sub_id;
        return 0;
    }

    fo_sub_append(n, slot, qos, sub_id);
    ix->count++;
    return 1;
}

/*
 * Removes slot's subscription to filter and frees the nodes it leaves
 * empty.  Returns 1 when removed, 0 when there was none.
 */
int
fo_index_remove(fo_index_t *ix, const char *filter, size_t len,
                uint32_t slot)
{
    fo_node_t *n, *p;
    size_t i, end;
    uint32_t at;
    const char *slash;

    n = ix->root;

    for (i = 0; i <= len && n != NULL; i = end + 1) {
        slash = memchr(filter + i, '/', len - i);
        end = slash != NULL ? (size_t) (slash - filter) : len;

        if (end - i == 1 && filter[i] == '+') {
            n = n->plus;

        } else if (end - i == 1 && filter[i] == '#') {
            n = n->hash;

        } else {
            n = fo_kid_find(n, filter + i, end - i,
                            fo_level_hash(filter + i, end - i));
        }
    }

    if (n == NULL) {
        return 0;
    }

    at = fo_sub_find(n, slot);
    if (at == UINT32_MAX) {
        return 0;
    }

    fo_sub_delete(n, at);
    ix->count--;

    while (n != ix->root && fo_node_empty(n)) {
        p = n->parent;
        fo_node_unlink(n);
        n = p;
    }

    return 1;
}

static void
fo_report(const fo_node_t *n, fo_match_cb cb, void *arg)
{
    uint32_t i;

    for (i = 0; i < n->nsubs; i++) {
        cb(arg, n->subs[i].slot, n->subs[i].qos, n->subs[i].sub_id);
    }
}

/*
 * Calls cb once per (filter, slot) whose filter matches topic.  Allocates
 * nothing; walks the tree depth first on the stack kept in ix.  cb must not
 * modify ix nor match against it again.
 */
void
fo_index_match(const fo_index_t *ix, const char *topic, size_t len,
               fo_match_cb cb, void *arg)
{
    const fo_node_t *n, *k;
    fo_frame_t *stack;
    size_t sp, t, end;
    bool dollar;
    const char *slash;

    stack = ix->stack;
    dollar = len > 0 && topic[0] == '$';

    sp = 0;
    stack[sp].node = ix->root;
    stack[sp].t = 0;
    sp++;

    while (sp > 0) {
        sp--;
        n = stack[sp].node;
        t = stack[sp].t;

        /* '#' matches the rest, also nothing more ("a/#" matches "a") */
        if (n->hash != NULL && !(dollar && n == ix->root)) {
            fo_report(n->hash, cb, arg);
        }

        if (t > len) {
            fo_report(n, cb, arg);
            continue;
        }

        slash = memchr(topic + t, '/', len - t);
        end = slash != NULL ? (size_t) (slash - topic) : len;

        if (sp + 2 > ix->stack_cap) {
            fo_fatal("match stack overflow");
        }

        if (n->plus != NULL && !(dollar && n == ix->root)) {
            stack[sp].node = n->plus;
            stack[sp].t = end + 1;
            sp++;
        }

        k = fo_kid_find(n, topic + t, end - t,
                        fo_level_hash(topic + t, end - t));
        if (k != NULL) {
            stack[sp].node = k;
            stack[sp].t = end + 1;
            sp++;
        }
    }
}

/* Returns the number of (filter, slot) subscriptions held. */
size_t
fo_index_count(const fo_index_t *ix)
{
    return ix->count;
}
