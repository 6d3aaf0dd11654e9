/* What the API handlers of the manager's modules look at, and the words
 * they answer with when there is nothing to serve.
 *
 * The handlers are registered once per process (manager_register_api), long
 * before any manager exists and across every manager the node runs (init,
 * leave and rejoin, promotion, demotion): each is given a pointer into one
 * struct manager_slot, which the node owns and which outlives them all.
 *   - `m` and `worker` are set by the node (node.c);
 *   - each module's current instance (`dispatcher`, ...) is published by the
 *     manager given the slot (manager_config.slot) while that manager
 *     serves, and cleared when it starts closing (manager_close), before the
 *     module is closed. A handler reads its module's pointer on every call:
 *     NULL means "not a manager (now)", never a module being freed.
 * A module's handler is registered with a pointer to its own field only
 * (e.g. dispatcher_register(api, &slot->dispatcher)), never the manager. */
#ifndef SWARM_MANAGER_MSLOT_H
#define SWARM_MANAGER_MSLOT_H

#include <stdbool.h>

#define MANAGER_NO_LEADER_MSG                                                 \
    "The swarm does not have a leader. It's possible that too few managers " \
    "are online. Make sure more than half of the managers are online."
#define MANAGER_WORKER_MSG                                                    \
    "This node is not a swarm manager. Worker nodes can't be used to view or " \
    "modify cluster state. Please run this command on a manager node or "     \
    "promote the current node to a manager."
#define MANAGER_NOT_MANAGER_MSG                                              \
    "This node is not a swarm manager. Use \"swarmctl swarm init\" or "     \
    "\"swarmctl swarm join\" to connect this node to swarm and try again."

struct manager;
struct dispatcher;
struct logbroker;
struct access;

struct manager_slot {
    /* `m` comes first: handlers not yet narrowed are given a pointer to it
     * as their `struct manager **`. */
    struct manager *m;
    bool worker;
    /* Published by the serving manager (see above). */
    struct dispatcher *dispatcher;
    struct logbroker *logbroker;
    struct access *access;
};

#endif
