/* Network maps (pure logic: no I/O, no libuv): what a node must know about
 * each network its own tasks are attached to, computed from the store's
 * tasks, services and nodes (proto/dispatcher.proto, NetworkMap). The
 * dispatcher streams them to the nodes (netmaps.h); this module only
 * computes.
 *
 * A task counts on a network ("live") when it is assigned to a node, its
 * desired state is at most RUNNING, its status is between ASSIGNED and
 * RUNNING (not ended), and it has an address on that network (Task.networks,
 * filled in by the allocator). A node needs exactly the networks its own
 * live tasks are attached to.
 *
 * The map of a network holds:
 *   - the Network as the tasks' attachments carry it;
 *   - one NetworkEndpoint per live task on it, on any node: its name as
 *     Docker gives it (service.slot.taskid, or service.nodeid.taskid for a
 *     global task), its address without prefix, its node's underlay IP
 *     (Node.status.addr without a port), the aliases its spec gives on that
 *     network, and ready = its status is RUNNING and its node is not Down
 *     (a task with a health check is reported RUNNING only once healthy, so
 *     RUNNING already means healthy there);
 *   - one NetworkServiceEntry per service with a live task on it or a VIP on
 *     it: its VIP without prefix ("" in dnsrr mode), endpoint mode (vip
 *     when the spec says nothing), the aliases of its spec on that network
 *     and its published ports.
 * Endpoints are sorted by task ID and services by service ID, so that the
 * same store gives byte-identical maps. */
#ifndef SWARM_MANAGER_NETMAP_H
#define SWARM_MANAGER_NETMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "dispatcher.pb-c.h"
#include "objects.pb-c.h"

/* The store's objects a map is computed from (borrowed; any order). */
struct netmap_view {
    Swarm__Task *const *tasks;
    size_t n_tasks;
    Swarm__Service *const *services;
    size_t n_services;
    Swarm__Node *const *nodes;
    size_t n_nodes;
};

/* One network used by one node: a live task of node_id is attached to
 * network_id. The strings are borrowed from the view's tasks. */
struct netmap_use {
    const char *node_id;
    const char *network_id;
};

/* Assigned, desired running, not ended (see the top). */
bool netmap_task_live(const Swarm__Task *t);

/* The network ID of a task's attachment, NULL if it has none. */
const char *netmap_attachment_network_id(const Swarm__NetworkAttachment *a);

/* Every (node, network) use of the view, sorted by node then network, each
 * once. *out is malloc'd (NULL when *n is 0); 0 or SWARM_ENOMEM. */
int netmap_uses(const struct netmap_view *v, struct netmap_use **out, size_t *n);

/* The uses of node_id in a sorted array from netmap_uses: *first is the
 * index of its first, the result their count (0: the node needs none). */
size_t netmap_uses_of_node(const struct netmap_use *uses, size_t n, const char *node_id,
                           size_t *first);

/* The map of network_id (a new message, freed with
 * swarm__network_map__free_unpacked). *out is NULL when no live task is
 * attached to the network (no node needs it). 0 or SWARM_ENOMEM. */
int netmap_build(const struct netmap_view *v, const char *network_id, Swarm__NetworkMap **out);

/* "10.0.1.5/24" -> "10.0.1.5" in out (size bytes); false if it does not fit. */
bool netmap_addr_ip(const char *cidr, char *out, size_t size);

#endif
