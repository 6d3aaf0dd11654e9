/* The role manager (rolemgr.c), leader only: keeps raft membership equal to
 * the set of managers in the store, one membership change at a time, and
 * records finished promotions and demotions in the Node objects.
 *
 * Environment: the manager's menv (loop, store, propose, is_leader) and a
 * rolemgr_config: raft's membership and its changes (rnode_configuration,
 * rnode_add_voter, rnode_remove on the manager's raft node) and the peers'
 * reachability (a voter is removed only if a reachable majority remains).
 *
 * Ownership and lifecycle:
 *   - rolemgr_new makes it (idle); rolemgr_start starts its pass timer (when
 *     the manager runs); passes do nothing unless this manager leads. The
 *     owner ends it with rolemgr_close, never free.
 *   - In flight: at most one membership change or one Node proposal, and
 *     the timer. rolemgr_close stops passes at once, closes the timer and
 *     frees the role manager once the change or proposal has called back
 *     (raft, closed first, fails them); then `cb` runs, once. */
#ifndef SWARM_MANAGER_ROLEMGR_H
#define SWARM_MANAGER_ROLEMGR_H

#include "menv.h"
#include "raftnode.h"
#include "swarm.pb-c.h"

struct rolemgr_config {
    /* Raft's membership as this manager knows it (valid during the call). */
    const struct raft_configuration *(*raft_members)(void *impl);
    /* As rnode_add_voter and rnode_remove (raftnode.h). */
    int (*add_voter)(void *impl, raft_id id, const char *address, rnode_change_cb cb, void *data);
    int (*remove)(void *impl, raft_id id, rnode_change_cb cb, void *data);
    Swarm__Reachability (*reachability)(void *impl, const char *node_id);
    void *impl;
};

struct rolemgr;

/* NULL when out of memory. `env` and cfg->impl outlive the role manager. */
struct rolemgr *rolemgr_new(const struct menv *env, const struct rolemgr_config *cfg);
void rolemgr_start(struct rolemgr *rm);

/* Close after drain (see the top). */
void rolemgr_close(struct rolemgr *rm, void (*cb)(void *data), void *data);

#endif
