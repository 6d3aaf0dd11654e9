/* What the API handlers of the manager's modules look at, and the words
 * they answer with when there is nothing to serve.
 *
 * The handlers are registered once per process (manager_register_api), long
 * before any manager exists and across every manager the node runs (init,
 * leave and rejoin, promotion, demotion): each is given a pointer into one
 * struct manager_slot, which the node owns and which outlives them all.
 *   - `m` and `worker` are set by the node (node.c);
 *   - each module's current instance (`dispatcher`, `forward`, ...) is
 *     published by the manager given the slot (manager_config.slot) while
 *     that manager serves, and cleared when it starts closing
 *     (manager_close), before the module is closed. A handler reads its
 *     module's pointer on every call: NULL means "not a manager (now)", never
 *     a module being freed. `running` says the manager serves its API (not
 *     starting, failed or closing).
 *   - Work a handler leaves in flight (a proposal's callback) holds the
 *     module it needs; each module is freed only once that work has drained.
 * A module's handler is registered with a pointer to its own field (e.g.
 * dispatcher_register(api, &slot->dispatcher)) or, when it needs more than
 * its module (the Control, service and CA handlers: the routing to the
 * leader, the "worker" wording), with the slot; never the manager. */
#ifndef SWARM_MANAGER_MSLOT_H
#define SWARM_MANAGER_MSLOT_H

#include <stdbool.h>

#include "api.h"

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
struct events;
struct access;
struct forward;
struct controlapi;
struct serviceapi;
struct netapi;
struct caserver;

struct manager_slot {
    /* The node's manager (opaque; only node.c uses it, through manager.h). */
    struct manager *m;
    bool worker;
    /* Published by the serving manager (see above). */
    struct dispatcher *dispatcher;
    struct logbroker *logbroker;
    struct events *events;
    struct access *access;
    struct forward *forward;
    struct controlapi *control;
    struct serviceapi *service;
    struct netapi *network;
    struct caserver *ca;
    bool running;
};

/* The slot of a running manager, or NULL after answering the call
 * FAILED_PRECONDITION with Docker's "not a swarm manager" wording. */
const struct manager_slot *mslot_require(struct api_call *call, const struct manager_slot *slot);

/* Answer a call whose write failed with `status` (a SWARM_E* code) with the
 * gRPC status Docker users see; `what` says what failed. */
void mslot_reply_error(struct api_call *call, int status, const char *what);

#endif
