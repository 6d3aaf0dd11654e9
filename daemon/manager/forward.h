/* Routing of Control and CA calls to the leader (forward.c).
 *
 * A routed method runs its handler on the leader. A follower forwards the
 * call over mutual TLS with its own manager certificate, naming the original
 * caller; while there is no leader a write waits a bounded time and a read
 * answers from the local store. Server streams (logs) are relayed to the
 * leader on a connection of their own (forward_stream).
 *
 * Environment: the manager's menv (loop, is_leader, leader) and a
 * forward_config: the TLS client context and how long no leader was known.
 * Nothing else of the manager is seen.
 *
 * Ownership and lifecycle:
 *   - Routes (forward_route_new, forward_register_routed) are made once per
 *     process and live as long as it (a fixed pool); each names the api
 *     slot (mslot.h) through which it finds the running forwarder.
 *   - forward_new makes the forwarder of one manager; the owner ends it with
 *     forward_close, never free. In flight: the routed calls it accepted
 *     (each with its poll timer), the calls queued for the leader
 *     connection, that connection, and the watch timer. forward_close fails
 *     the queued calls at once (UNAVAILABLE), closes the connection (its
 *     calls end UNAVAILABLE) and the timer; routed calls still polling end at
 *     their next poll (the slot no longer names this forwarder). The
 *     forwarder is freed, and `cb` runs once, when all of them are done
 *     (close after drain).
 *   - A stream relay owns its own connection and frees itself when its call
 *     ends; it does not count against the forwarder. */
#ifndef SWARM_MANAGER_FORWARD_H
#define SWARM_MANAGER_FORWARD_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "mslot.h"
#include "menv.h"

struct forward_config {
    /* The client context with this manager's certificate (borrowed; the
     * manager changes its identity in place). NULL: calls fail INTERNAL. */
    SSL_CTX *(*client_ctx)(void *impl);
    /* How long no leader has been known (0 while one is). */
    uint64_t (*leaderless_ms)(void *impl);
    void *impl;
};

struct forward;

/* NULL when out of memory. `env` and cfg->impl outlive the forwarder. */
struct forward *forward_new(const struct menv *env, const struct forward_config *cfg);

/* Close after drain (see the top). */
void forward_close(struct forward *f, void (*cb)(void *data), void *data);

/* Register `local` so that it runs on the leader (see the top); `local`
 * receives `api` as its data. `read`: answered from the local store when
 * the leader cannot be reached. */
void forward_register_routed(struct api_server *server, const ProtobufCServiceDescriptor *svc,
                             const char *method, unsigned roles, bool read,
                             api_handler_cb local, struct manager_slot *slot);

/* The same routing for a handler that decides per call whether to route. */
struct route;
struct route *forward_route_new(const ProtobufCServiceDescriptor *svc, const char *method,
                                bool read, api_handler_cb local, struct manager_slot *slot);
void forward_route_call(struct route *route, struct api_call *call, const ProtobufCMessage *req);

/* Relay a server-streaming call to the leader at `leader_addr` on a
 * connection of its own; the call is finished by the relay (also on error,
 * when this returns non-zero). `req` is copied. */
int forward_stream(struct forward *f, struct api_call *call, const ProtobufCServiceDescriptor *svc,
                   const char *method, const ProtobufCMessage *req, const char *leader_addr);

#endif
