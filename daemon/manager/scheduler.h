/* The scheduler's decisions, as pure logic: given the nodes and the tasks
 * already on them, choose a node for each pending task.
 *
 * Filters, in Docker's order: node ready and active (availability active,
 * status ready), the task's runtime offered by the node (TaskSpec.runtime
 * in NodeDescription.runtimes: `runtime not offered on N nodes`), networking
 * (a task attached to networks only goes to a node whose
 * description.network_error is empty: `networking not available on N
 * nodes`), resources (the task's reservations against the node's CPUs
 * and memory minus what the node's tasks already reserve), constraints,
 * host-mode published ports free, max replicas per node. Then spread: with
 * `--placement-pref spread=node.labels.K`, first across the values of K
 * (nodes without K form one more group); then fewest tasks of this service,
 * then fewest tasks overall; nodes where this service failed recently come
 * last. Ties break by node ID so decisions are reproducible.
 *
 * A task that fits nowhere gets the reason Docker gives, e.g.
 * `no suitable node (insufficient resources on 2 nodes; scheduling
 * constraints not satisfied on 1 node)`; counts are per first failing filter,
 * in filter order, and nodes that are down, drained or paused count as
 * `N node(s) not available for new tasks`. Wording as swarmkit's
 * filter.go, including `max replicas per node limit exceed` (without a
 * count); with no node at all the reason is `no suitable node`.
 *
 * Pure: no libuv, no store; built to place 100,000 tasks on 1,000 nodes in
 * well under 2 s. */
#ifndef SWARM_MANAGER_SCHEDULER_H
#define SWARM_MANAGER_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objects.pb-c.h"

#define SCHED_REASON_LEN 256
/* A failure of the same service on a node makes it last in line for this long. */
#define SCHED_FAILURE_WINDOW_MS (5 * 60 * 1000)

struct sched;

#define SCHED_RUNTIME_PROCESS 1u
#define SCHED_RUNTIME_CONTAINER 2u
/* The bit of a TaskSpec.runtime ("" is "process"), 0 for an unknown one. */
unsigned sched_runtime_bit(const char *runtime);
/* Whether a node with description `d` runs tasks of `runtime`; a node
 * that lists no runtimes (older swarmd) runs processes only. */
bool sched_node_offers_runtime(const Swarm__NodeDescription *d, const char *runtime);

struct sched_decision {
    /* The chosen node (points into the scheduler's own copy of the node ID,
     * valid until sched_free), or NULL when nothing fits. */
    const char *node_id;
    char reason[SCHED_REASON_LEN]; /* set when node_id is NULL */
};

struct sched *sched_new(void);
void sched_free(struct sched *s);

/* The cluster's nodes (copied what it needs). Call once per pass, before
 * adding tasks. */
int sched_set_nodes(struct sched *s, Swarm__Node *const *nodes, size_t n);

/* A task already on a node and not yet terminal (observed state <= running,
 * whatever its desired state: it holds its node until it has stopped): it
 * counts for spread, reserves resources and host ports. Tasks without a
 * node, on a node not given to sched_set_nodes, or terminal are ignored.
 * Nothing of `t` is kept. Returns 0 or SWARM_ENOMEM. */
int sched_add_task(struct sched *s, const Swarm__Task *t);

/* Host-mode published ports of a service (ports with publish_mode "host"
 * and a published port; the others are ignored). Its tasks on a node hold
 * those ports there, and a pending task of it only goes where all of them
 * are free. Optional: without it, no port filter for that service. May be
 * called before or after sched_add_task; `endpoint` may be NULL (none) and
 * is not kept. Returns 0 or SWARM_ENOMEM. */
int sched_set_service_ports(struct sched *s, const char *service_id,
                            const Swarm__EndpointSpec *endpoint);

/* A task of `service_id` that failed on `node_id` at `when_ms`. */
void sched_note_failure(struct sched *s, const char *service_id, const char *node_id,
                        int64_t when_ms);

/* Place `n` pending tasks (same or different services). A task that already
 * names a node (global services) is checked against that node only. Each
 * placement counts for the next ones. `now_ms` is for the failure window.
 * out[i] describes tasks[i]. Tasks naming a node are placed first, then
 * the others grouped by service and placement spec, groups in order of
 * their first task. Returns 0, or SWARM_ENOMEM. */
int sched_place(struct sched *s, Swarm__Task *const *tasks, size_t n, int64_t now_ms,
                struct sched_decision *out);

#endif
