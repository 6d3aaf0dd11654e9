/* The Control service's nodes and cluster methods (controlapi.c).
 *
 * Reads answer from this manager's store; writes are one compare-and-set
 * StoreCommand proposed through the menv, answered once committed. Every
 * method is routed to the leader (forward.h); reads fall back to the local
 * store, marked stale, when no leader can be reached.
 *
 * Environment: the manager's menv (store, propose, is_leader, now) and a
 * controlapi_config for what nodes show of the live cluster: this manager's
 * node ID, raft's leader and membership, the peers' reachability, and the
 * trust root (join tokens are derived from its digest).
 *
 * Ownership and lifecycle:
 *   - controlapi_register is called once per process; the handlers find the
 *     running module through the slot (mslot.h).
 *   - controlapi_new makes the module of one manager; the owner ends it with
 *     controlapi_close, never free. In flight: the proposals its handlers
 *     made (each holds the module until its callback ran). The module is
 *     freed, and `cb` runs once, when none is left (close after drain); the
 *     manager closes raft first, which fails every pending proposal. */
#ifndef SWARM_MANAGER_CONTROLAPI_H
#define SWARM_MANAGER_CONTROLAPI_H

#include <openssl/x509.h>

#include "api.h"
#include "menv.h"
#include "mslot.h"
#include "swarm.pb-c.h"

struct controlapi_config {
    const char *node_id; /* this manager's node (borrowed, outlives the module) */
    /* Raft's leader, this manager included (0 when none is known). */
    raft_id (*leader_id)(void *impl);
    /* Raft's membership as this manager knows it (valid during the call). */
    const struct raft_configuration *(*raft_members)(void *impl);
    Swarm__Reachability (*reachability)(void *impl, const char *node_id);
    /* The trust root (borrowed, valid during the call). */
    X509 *(*root_cert)(void *impl);
    void *impl;
};

struct controlapi;

/* NULL when out of memory. `env` and cfg->impl outlive the module. */
struct controlapi *controlapi_new(const struct menv *env, const struct controlapi_config *cfg);

/* Close after drain (see the top). */
void controlapi_close(struct controlapi *ctl, void (*cb)(void *data), void *data);

void controlapi_register(struct api_server *server, struct manager_slot *slot);

/* Fill live raft facts (leader flag, reachability) into a node read from
 * the store. When reads are stale (this manager does not lead), every node
 * but this one gets status unknown: a leaderless manager hears from nobody,
 * and a dead node must never show Ready. */
void controlapi_decorate_node(struct controlapi *ctl, Swarm__Node *node);

#endif
