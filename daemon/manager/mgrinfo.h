/* What `swarmctl info` shows of the swarm as this manager's store knows it
 * (mgrinfo.c): the node and manager counts, the managers' addresses and the
 * cluster spec. Reads the store only; the raft fields (state, leader) are
 * the manager's to fill.
 *
 * Ownership: what it sets in `info` is heap memory freed with the response
 * (swarm__info_response__free_unpacked). Best effort: out of memory leaves
 * a field out, never fails the answer. */
#ifndef SWARM_MANAGER_MGRINFO_H
#define SWARM_MANAGER_MGRINFO_H

#include "store.h"
#include "swarm.pb-c.h"

void mgrinfo_fill(struct store *store, Swarm__InfoResponse *info);

#endif
