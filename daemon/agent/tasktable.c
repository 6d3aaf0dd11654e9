/* The agent's task table: its tasks by ID, a chained hash table that grows
 * (the simulated-nodes tool runs thousands of tasks per loop). */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "err.h"

#define AGENT_TABLE_MIN 64

static size_t agent_hash(const char *s)
{
    size_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

int agent_table_init(struct agent_task_table *t)
{
    t->buckets = calloc(AGENT_TABLE_MIN, sizeof *t->buckets);
    t->nbuckets = AGENT_TABLE_MIN;
    t->count = 0;
    return t->buckets != NULL ? 0 : SWARM_ENOMEM;
}

struct agent_task *agent_table_get(const struct agent_task_table *t, const char *id)
{
    struct agent_task *at = t->buckets[agent_hash(id) & (t->nbuckets - 1)];
    while (at != NULL && strcmp(at->id, id) != 0) {
        at = at->hnext;
    }
    return at;
}

int agent_table_put(struct agent_task_table *t, struct agent_task *at)
{
    if (t->count + 1 > t->nbuckets) {
        size_t n = t->nbuckets * 2;
        struct agent_task **b = calloc(n, sizeof *b);
        if (b == NULL) {
            return SWARM_ENOMEM;
        }
        for (size_t i = 0; i < t->nbuckets; i++) {
            struct agent_task *x = t->buckets[i], *next;
            for (; x != NULL; x = next) {
                next = x->hnext;
                x->hnext = b[agent_hash(x->id) & (n - 1)];
                b[agent_hash(x->id) & (n - 1)] = x;
            }
        }
        free(t->buckets);
        t->buckets = b;
        t->nbuckets = n;
    }
    struct agent_task **head = &t->buckets[agent_hash(at->id) & (t->nbuckets - 1)];
    at->hnext = *head;
    *head = at;
    t->count++;
    return 0;
}

void agent_table_del(struct agent_task_table *t, struct agent_task *at)
{
    struct agent_task **p = &t->buckets[agent_hash(at->id) & (t->nbuckets - 1)];
    while (*p != NULL && *p != at) {
        p = &(*p)->hnext;
    }
    if (*p == at) {
        *p = at->hnext;
        at->hnext = NULL;
        t->count--;
    }
}

void agent_table_foreach(struct agent_task_table *t,
                         void (*fn)(struct agent_task *at, void *arg), void *arg)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct agent_task *at = t->buckets[i], *next;
        for (; at != NULL; at = next) {
            next = at->hnext;
            fn(at, arg);
        }
    }
}

void agent_table_free(struct agent_task_table *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = 0;
    t->count = 0;
}

bool agent_state_terminal(Swarm__TaskState st)
{
    return st >= SWARM__TASK_STATE__TASK_STATE_COMPLETE;
}
