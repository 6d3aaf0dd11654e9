/* The manager's metrics computed at scrape time: raft's term, indexes and
 * leadership, and the swarm's nodes, tasks and services counted from the
 * store (smetrics.h names the families). */
#ifndef SWARM_MANAGER_MGRMETRICS_H
#define SWARM_MANAGER_MGRMETRICS_H

#include "raftnode.h"
#include "store.h"

/* Refresh the families from `store` and `raft` (either may be NULL while
 * the manager starts: its families are then left empty). */
void mgrmetrics_collect(struct store *store, struct rnode *raft);

/* Empty the families a manager fills (this node is no longer one). */
void mgrmetrics_clear(void);

#endif
