/* The manager's store file at start, checked against what the node knows of
 * itself and its raft state.
 *
 * The raft log (with its snapshot) is the record; store.db is what applying
 * it gave. A store that cannot be trusted is never served: an unreadable file
 * or one of another cluster is moved aside (store.db.corrupt-<time>,
 * store.db.foreign-<time>) and a new, empty store is opened; raft then
 * restores its snapshot into it and replays its log (raft/raftnode.c empties
 * a store that is ahead of the log). */
#ifndef SWARM_DAEMON_MANAGER_STOREFILE_H
#define SWARM_DAEMON_MANAGER_STOREFILE_H

#include <stddef.h>

#include "ca.pb-c.h"
#include "raftnode.h"
#include "store.h"

/* Open DIR/store.db for the cluster `cluster_id`, moving aside what cannot
 * be used (see above). Fails only when the directory itself fails (the move
 * or the new file cannot be made). */
int storefile_open(const char *state_dir, const char *cluster_id, struct store **out,
                   char *errmsg);

/* The managers (node ID, raft ID, address) that the log this node holds but
 * has not applied yet will make known: while a store is being rebuilt from
 * the log it does not know its peers yet, and the raft transport must still
 * tell which raft member a manager's certificate belongs to. Call right after
 * rnode_start. The caller frees each with swarm__manager_peer__free_unpacked
 * and the array with free(). */
int storefile_log_peers(struct rnode *r, Swarm__ManagerPeer ***out, size_t *n);

#endif
