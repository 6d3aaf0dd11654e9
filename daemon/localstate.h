/* The node's local state file (statedir.h: DIR/node-state.pb): whether this
 * node is in a swarm, as what, and with which IDs and addresses. The node
 * reads and writes it (node.c); a manager made by swarm init writes it once
 * its first raft entry is committed (manager.c).
 *
 * Ownership: localstate_load's result is the caller's
 * (swarm__local_state__free_unpacked); localstate_save only reads `ls`. */
#ifndef SWARM_DAEMON_LOCALSTATE_H
#define SWARM_DAEMON_LOCALSTATE_H

#include "localstate.pb-c.h"

/* Write `ls` to DIR/node-state.pb (0600, replacing the old one whole). */
int localstate_save(const char *dir, const Swarm__LocalState *ls, char *errmsg);

/* Read DIR/node-state.pb into *out: 0 with *out NULL when there is none
 * (not in a swarm), SWARM_ECORRUPT (with the path in errmsg) when it does
 * not decode or names no node. */
int localstate_load(const char *dir, Swarm__LocalState **out, char *errmsg);

#endif
