/* Internals shared by the leader's orchestration loop (orchloop.c) and
 * its network allocation (orchloop_alloc.c). Not for use elsewhere. */
#ifndef SWARM_MANAGER_ORCHLOOP_INT_H
#define SWARM_MANAGER_ORCHLOOP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct alloc;

/* One pass: the command it builds and what it decided so far. */
struct pass {
    Swarm__StoreCommand cmd;
    size_t cap;
    int64_t wake_at;
    /* New tasks of this pass, still owned by their orch_output. */
    Swarm__Task **created;
    size_t n_created, cap_created;
    /* IDs of tasks this pass stops or deletes (sorted before scheduling),
     * so the scheduler sees the pass's own decisions. */
    char **leaving;
    size_t n_leaving, cap_leaving;
    bool leaving_lost; /* an ID could not be kept: the kept view cannot hold */
    bool more; /* a service has creates left for the next pass */
    size_t create_bytes; /* task specs of this pass's new tasks */
    /* The network allocator's view (allocator.h), built from the store the
     * first time this pass needs it, then holding this pass's own takes. */
    struct alloc *alloc;
    Swarm__Network **nets;
    size_t n_nets;
    bool alloc_built;
};

/* An action of `kind` appended to the pass's command (owned by it), or
 * NULL when out of memory. */
Swarm__StoreAction *orchloop_pass_action(struct pass *p, Swarm__StoreActionKind kind);
/* A task action of `kind` carrying `t` (owned by the command from then
 * on). On failure `t` is freed and nothing is added. */
int orchloop_pass_task_action(struct pass *p, Swarm__StoreActionKind kind, Swarm__Task *t);
/* Is the task stopped or deleted by this pass? p->leaving must be sorted
 * (orchloop_cmp_str). */
bool orchloop_pass_is_leaving(const struct pass *p, const char *id);
int orchloop_cmp_str(const void *a, const void *b);
/* A status stamped `now`; NULL when out of memory. */
Swarm__TaskStatus *orchloop_status_new(Swarm__TaskState state, const char *message, const char *err,
                                       int64_t now);

/* ---- network allocation (orchloop_alloc.c): the
 * allocator (allocator.h) run inside a pass. Before its scheduler, a pass
 * gives services their VIPs (an endpoint change is committed before the
 * service's tasks are made, so they copy it), the tasks it creates their
 * addresses, and stored tasks still waiting for addresses another try. The
 * allocator's in-use sets are built from the store the first time a pass
 * needs them (every network, every service's VIPs, every live task's
 * addresses) and hold that pass's own takes, so each pass decides from
 * what is committed plus itself: the one pass in flight at a time and the
 * new leader's barrier make that the whole truth.
 *
 * Internal to orchloop.c and orchloop_alloc.c. */

/* The service's VIPs as its spec asks. When they change, the pass updates
 * the service (compare-and-set on the version read; the action takes
 * `svc`, which the caller no longer frees) and leaves its tasks to the
 * next pass. True when it did. */
bool orchloop_alloc_service(struct store *store, struct pass *p, Swarm__Service *svc);
/* Attach this pass's new tasks to their networks; those that cannot be
 * stay pending with the reason and leave p->created (not placed). */
void orchloop_alloc_created(struct store *store, struct pass *p, int64_t now);
/* Another try for stored tasks waiting for addresses (replicated ones
 * without a node, global ones named to theirs and held back from it by
 * the dispatcher until attached). */
void orchloop_alloc_waiting(struct store *store, struct pass *p, int64_t now);
/* The routing mesh: while a service publishes ingress ports, every node
 * gets its address on ingress (Node.attachments), the source of the
 * connections it forwards to tasks. `svcs` (may be NULL: read here) are the
 * store's services. Called when everything is dirty (a node joined or
 * changed) or the pass allocated anyway; a node that has its address costs
 * nothing. The update is a compare-and-set on the node read: a node written
 * meanwhile fails the pass, which is retried. */
void orchloop_alloc_nodes(struct store *store, struct pass *p, Swarm__Node **nodes, size_t n_nodes,
                          Swarm__Service **svcs, size_t n_svcs);
/* Free what the pass's allocation holds. */
void orchloop_alloc_free(struct pass *p);

#endif
