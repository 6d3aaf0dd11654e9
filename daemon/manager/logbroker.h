/* The log broker (logbroker.c): `swarmctl service logs`, relayed from the
 * nodes' publishes to the subscriber's stream on the leader.
 *
 * Environment: a `const struct menv *` (loop, store, is_leader, leader) and
 * a struct logbroker_config: the dispatcher whose sessions carry the
 * subscriptions to the nodes, and how to relay a subscription made on a
 * follower to the leader. The menv, the dispatcher and the config's data
 * outlive the broker (its owner closes the broker before the dispatcher).
 *
 * Ownership and lifecycle:
 *   - logbroker_new allocates the broker; its owner ends it with
 *     logbroker_close, never with free.
 *   - The broker owns its subscriptions (each with a timer and the
 *     subscriber's API call, owned by the API server, which the broker
 *     answers exactly once).
 *   - logbroker_close ends every subscription at once with UNAVAILABLE (no
 *     timer of a closed broker fires again, so a broker closed and another
 *     made at the same address can never be mistaken for each other), and
 *     frees the broker once every subscription's timer is closed; then
 *     `cb` runs, once. The broker makes no proposals.
 *   - The API handlers (logbroker_register) reach the broker through the
 *     slot the owner fills while it serves (mslot.h) and clears before
 *     closing it. */
#ifndef SWARM_MANAGER_LOGBROKER_H
#define SWARM_MANAGER_LOGBROKER_H

#include "api.h"
#include "dispatcher.h"
#include "menv.h"
#include "mslot.h"
#include "store.h"

struct logbroker;

struct logbroker_config {
    struct dispatcher *dispatcher;
    /* Relay the SubscribeLogs call `call` (request `req`, copied) to the
     * leader at `leader_addr`; the relay finishes the call, also on error. */
    int (*forward_stream)(void *data, struct api_call *call, const ProtobufCMessage *req,
                          const char *leader_addr);
    void *data;
};

/* NULL when out of memory. `cfg` is copied. */
struct logbroker *logbroker_new(const struct menv *env, const struct logbroker_config *cfg);
/* A committed store change: with follow, tasks of a selected service placed
 * on another node get that node subscribed. NULL `lb` is ignored. */
void logbroker_on_event(struct logbroker *lb, const struct store_event *ev);
/* Close after drain (see the top). NULL `lb`: `cb` runs at once. */
void logbroker_close(struct logbroker *lb, void (*cb)(void *data), void *data);

/* Serve the Logs service from slot->logbroker (read on every call; NULL:
 * not a manager, in Docker's words for slot->worker). */
void logbroker_register(struct api_server *api, const struct manager_slot *slot);

#endif
