/* strpool.c -- interned strings (contract in strpool.h). A linear list:
 * a bridge serves a handful of masters, and interning happens when a
 * connection is made, never per event. */
#include <stdlib.h>
#include <string.h>

#include "core/strpool.h"

struct entry {
    struct entry *next;
    char text[];
};

struct eb_strpool {
    struct entry *head;
    size_t count;
};

eb_strpool_t *eb_strpool_new(void) {
    return calloc(1, sizeof(eb_strpool_t));
}

const char *eb_strpool_intern(eb_strpool_t *p, const char *s) {
    for (struct entry *e = p->head; e; e = e->next) {
        if (strcmp(e->text, s) == 0)
            return e->text;
    }
    size_t n = strlen(s);
    struct entry *e = malloc(sizeof(*e) + n + 1);
    if (!e)
        return NULL;
    memcpy(e->text, s, n + 1);
    e->next = p->head;
    p->head = e;
    p->count++;
    return e->text;
}

size_t eb_strpool_count(const eb_strpool_t *p) {
    return p->count;
}

void eb_strpool_destroy(eb_strpool_t *p) {
    if (!p)
        return;
    struct entry *e = p->head;
    while (e) {
        struct entry *next = e->next;
        free(e);
        e = next;
    }
    free(p);
}
