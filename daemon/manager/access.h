/* The manager's side of authorization (access.c; the decisions are pure, in
 * authz.h): who may call, who may be a raft peer, and closing what a node
 * may no longer use.
 *
 * Environment: a `const struct menv *` (only its store, which may still be
 * NULL: nothing is known then) and a struct access_config: this manager's
 * node and cluster IDs, the managers the leader named at join (seeds), and
 * how to close the connections of a node (RPC and raft). It never sees the
 * manager.
 *
 * Ownership and lifecycle:
 *   - access_new copies what the config names; the caller owns the result
 *     and ends it with access_close.
 *   - It owns the seed peers (dropped once this manager's store holds its own
 *     node: caught up) and the log peers (access_set_log_peers: the managers
 *     the raft log names, used only while the store is behind the log's last
 *     index at start).
 *   - It starts nothing asynchronous: access_close frees it at once and runs
 *     `cb`. Its owner closes it only after every user of access_raft_peer
 *     (the raft transport) is gone and the authorizer's slot is cleared.
 *   - The api_server's authorizer (access_register) reads `*current` on
 *     every call: NULL means no running manager, every call passes to the
 *     handlers (which say "not a manager"). */
#ifndef SWARM_MANAGER_ACCESS_H
#define SWARM_MANAGER_ACCESS_H

#include <stddef.h>

#include "api.h"
#include "menv.h"
#include "raftnode.h"
#include "store.h"
#include "ca.pb-c.h"
#include "swarm.pb-c.h"

struct access;

struct access_config {
    const char *node_id;    /* this manager's node (copied) */
    const char *cluster_id; /* the swarm's (copied) */
    Swarm__ManagerPeer *const *seed_peers; /* copied */
    size_t n_seed_peers;
    /* Close the connections of `node_id` that it may no longer hold (the
     * api server's and the raft transport's: they ask again). */
    void (*recheck)(void *data, const char *node_id);
    void *data;
};

/* 0 with *out, or SWARM_ENOMEM. */
int access_new(const struct menv *env, const struct access_config *cfg, struct access **out);

/* The managers the raft log names (storefile_log_peers), stood in for the
 * store until it has applied index `until`. Takes ownership of `peers`
 * (replacing any given before). */
void access_set_log_peers(struct access *a, Swarm__ManagerPeer **peers, size_t n, uint64_t until);

/* An rtransport raft_id_of_node (`data`: the struct access *): the raft id
 * and address of the manager `node_id`, or 0 with the reason in `errmsg`. */
raft_id access_raft_peer(const char *node_id, char *addr, size_t addr_size, void *data,
                         char *errmsg);

/* A committed store change: connections of nodes removed, demoted or
 * revoked are closed (through cfg.recheck). NULL `a` is ignored. */
void access_on_event(struct access *a, const struct store_event *ev);

/* See the top. NULL `a`: `cb` runs at once. */
void access_close(struct access *a, void (*cb)(void *data), void *data);

/* Authorize every call of the api server against `*current`'s store. */
void access_register(struct api_server *api, struct access *const *current);

#endif
