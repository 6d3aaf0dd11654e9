/* The scheduler's internals, shared by scheduler.c (state, filters, reasons)
 * and sched_group.c (grouping pending tasks and placing a group). Not for
 * other modules: use scheduler.h. */
#ifndef SWARM_MANAGER_SCHED_INT_H
#define SWARM_MANAGER_SCHED_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constraint.h"
#include "scheduler.h"

/* A string-keyed hash map (open addressing); keys are borrowed from the
 * values, which outlive the map's entries. */
struct sched_map {
    const char **keys;
    void **vals;
    size_t cap, len;
};

/* The value for `key`, or NULL when absent. */
void *sched_map_get(const struct sched_map *m, const char *key);
int sched_map_put(struct sched_map *m, const char *key, void *val);
void sched_map_clear(struct sched_map *m);

struct sched_node {
    Swarm__Node *node;       /* own copy, for constraints */
    const char *id;          /* into node */
    bool available;          /* ready and active */
    unsigned runtimes;       /* SCHED_RUNTIME_* bits it offers */
    bool networking;         /* description.network_error is empty */
    int64_t cpu_free;        /* may go negative: reservations are not refused */
    int64_t mem_free;
    uint32_t total;          /* live tasks on it, all services */
    uint32_t *ports;         /* host ports in use: proto << 16 | port */
    size_t n_ports, cap_ports;
};

struct sched_failure {
    uint32_t node;
    int64_t when_ms;
};

struct sched_service {
    char *id;
    uint32_t *task_nodes;    /* one node index per live task */
    size_t n_task_nodes, cap_task_nodes;
    struct sched_failure *failures;
    size_t n_failures, cap_failures;
    uint32_t *ports;         /* host-mode published ports (sched_set_service_ports) */
    size_t n_ports;
    size_t group;            /* during sched_place: 1 + index of its first group, or 0 */
    struct sched_service *next;
};

struct sched {
    struct sched_node *nodes;  /* sorted by ID */
    size_t n_nodes;
    struct sched_map node_index;  /* ID -> 1 + index */
    struct sched_map services;    /* ID -> struct sched_service */
    struct sched_service *service_list;
    /* Per-node scratch for the group being placed; all zero between groups. */
    uint32_t *scratch_count;   /* tasks of the group's service */
    uint8_t *scratch_failed;   /* the service failed there recently */
    uint32_t *scratch_heap;
    bool oom;                  /* an allocation failed while assigning */
};

/* Pending tasks of one service with the same placement-relevant spec. */
struct sched_group {
    struct sched_service *svc;
    const Swarm__Task *rep;    /* the first task; the others share its spec */
    struct constraint *constraints;
    size_t n_constraints;
    int64_t cpu, mem;          /* reservations */
    unsigned runtime;          /* SCHED_RUNTIME_* bit of its runtime, 0: unknown */
    bool networked;            /* attached to networks: needs a node's networking */
    uint64_t max_replicas;
    const char **prefs;        /* label names to spread over, into rep */
    size_t n_prefs;
    uint32_t first, last;      /* task indices, chained by next[] */
    size_t next_same;          /* 1 + index of the service's next group, or 0 */
};

/* Filters in Docker's order; the first that fails is the one counted. */
enum sched_filter_result {
    SCHED_OK,
    SCHED_FAIL_READY,
    SCHED_FAIL_RUNTIME,
    SCHED_FAIL_NETWORK,
    SCHED_FAIL_RESOURCES,
    SCHED_FAIL_CONSTRAINTS,
    SCHED_FAIL_PORTS,
    SCHED_FAIL_MAX_REPLICAS,
    SCHED_FAIL_COUNT,
};

#define SCHED_NO_TASK UINT32_MAX

/* The service's record, made when `create` and absent (NULL: out of memory
 * or absent). */
struct sched_service *sched_service_get(struct sched *s, const char *id, bool create);
const Swarm__Resources *sched_task_reservations(const Swarm__Task *t);
/* A task with network attachments (or networks in its spec). */
static inline bool sched_task_networked(const Swarm__Task *t)
{
    return t->n_networks > 0 || (t->spec != NULL && t->spec->n_networks > 0);
}
int sched_group_init(struct sched *s, struct sched_group *g, const Swarm__Task *t);
void sched_group_fini(struct sched_group *g);
enum sched_filter_result sched_filter_node(struct sched *s, const struct sched_group *g,
                                           uint32_t idx, uint32_t svc_count);
void sched_explain(const size_t counts[SCHED_FAIL_COUNT], char reason[SCHED_REASON_LEN]);
void sched_group_reason(struct sched *s, const struct sched_group *g, char *reason);
void sched_assign(struct sched *s, const struct sched_group *g, uint32_t idx,
                  struct sched_decision *out);

/* Group the tasks without a node; *next (n entries) chains each group's
 * tasks in input order. Groups come in order of their first task. */
int sched_group_tasks(struct sched *s, Swarm__Task *const *tasks, size_t n,
                      struct sched_group **groups, size_t *n_groups, uint32_t **next);

/* Place one group's tasks. Returns 0 or SWARM_ENOMEM. */
int sched_group_place(struct sched *s, struct sched_group *g, const uint32_t *next,
                      int64_t now_ms, struct sched_decision *out);

#endif
