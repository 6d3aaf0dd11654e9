/* What a manager proposes of its own membership when it comes to lead
 * (selfreg.c):
 *   - swarm init: the first command (the Cluster and this Node), once, when
 *     raft first makes this manager leader; the owner hears the outcome and
 *     makes the manager run (or fail);
 *   - after --force-new-cluster: the managers left out of the new
 *     one-member raft group keep their Node (Docker shows them Unreachable
 *     until they are demoted and removed) but lose their raft id, so the
 *     role manager never adds them back; retried at the next leadership
 *     change if it failed (a manager that returns must leave and join).
 *
 * Environment: the manager's menv (store, propose) and a selfreg_config:
 * this manager's raft id, raft's membership, and the owner's callback for
 * the first command.
 *
 * Ownership and lifecycle:
 *   - selfreg_new makes it and takes the first command, if any;
 *     selfreg_set_leader is called at every leadership change (not while
 *     the manager fails or closes). The owner ends it with selfreg_close,
 *     never free.
 *   - In flight: at most the first command and one detaching proposal.
 *     selfreg_close stops it at once (no callback to the owner any more)
 *     and frees it once they have called back (raft, closed after, fails
 *     them); then `cb` runs, once. */
#ifndef SWARM_MANAGER_SELFREG_H
#define SWARM_MANAGER_SELFREG_H

#include <stdbool.h>

#include "menv.h"
#include "raftnode.h"
#include "swarm.pb-c.h"

struct selfreg_config {
    raft_id raft_id; /* this manager's */
    bool forced;     /* opened with --force-new-cluster */
    /* Raft's membership as this manager knows it (valid during the call). */
    const struct raft_configuration *(*raft_members)(void *impl);
    /* swarm init: the first command's outcome. status 0: committed and
     * accepted (the owner makes the manager run and returns 0, or fails it
     * and returns its error); else why (errmsg) it was not. */
    int (*bootstrapped)(void *impl, int status, const char *errmsg);
    void *impl;
};

struct selfreg;

/* NULL when out of memory (*bootstrap_cmd is then left to the caller).
 * `bootstrap_cmd`: swarm init's first command, taken (set to NULL); NULL or
 * *bootstrap_cmd NULL when the manager opens an existing swarm. `env` and
 * cfg->impl outlive it. */
struct selfreg *selfreg_new(const struct menv *env, const struct selfreg_config *cfg,
                            Swarm__StoreCommand **bootstrap_cmd);

/* Leadership changed (raft's view). Leading: proposes what is due. */
void selfreg_set_leader(struct selfreg *s, bool leader);

/* Pure: the update that detaches every manager of `nodes` whose raft id is
 * neither `self` nor in `conf` (raft id 0, Unreachable). Takes those Nodes
 * out of `nodes` (set to NULL) into cmd->actions. 0 (cmd->n_actions may be
 * 0) or SWARM_ENOMEM; the caller frees cmd's actions either way. */
int selfreg_detach_cmd(Swarm__Node **nodes, size_t n, raft_id self,
                       const struct raft_configuration *conf, Swarm__StoreCommand *cmd);

/* Close after drain (see the top). */
void selfreg_close(struct selfreg *s, void (*cb)(void *data), void *data);

#endif
