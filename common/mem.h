/*
 * mem.h -- the process-heap allocation wrapper.  Every heap allocation goes
 * through here so the allocator (jemalloc) stays swappable and the bytes in
 * use are counted per process.  Out of memory is fatal for the calling
 * process: it logs and aborts (a child is then handled by the supervisor).
 */
#ifndef RINGMQ_MEM_H
#define RINGMQ_MEM_H

#include <stddef.h>

void *mem_alloc(size_t n);                /* never NULL */
void *mem_calloc(size_t n, size_t size);  /* never NULL, zeroed */
void *mem_realloc(void *p, size_t n);     /* never NULL */
char *mem_strdup(const char *s);          /* never NULL */
char *mem_strndup(const char *s, size_t n); /* never NULL, NUL-terminated */
void mem_free(void *p);                   /* NULL is allowed */
size_t mem_used(void);                    /* bytes currently allocated */

#endif
