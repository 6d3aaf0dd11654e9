/* The state dir's own mode and owner, checked at every start.
 *
 * Everything swarmd keeps lives under it: the root CA key (in store.db),
 * node keys, the raft log. swarmd runs with umask 077, so what it creates is
 * 0600 (files) and 0700 (dirs); the dir itself must be ours and closed to
 * others:
 *   - owned by another user: refused (whoever owns it can swap its content);
 *   - writable by group or others: refused (anyone in the group could plant
 *     or replace files, a key or a store), with the chmod that fixes it;
 *   - readable or searchable by group or others but not writable (a
 *     pre-created 0755 dir, as mkdir -p makes): accepted and tightened to
 *     0700, since no one else could have changed its content;
 *   - 0700 or stricter: accepted as it is. */
#ifndef SWARM_DAEMON_STATEDIR_H
#define SWARM_DAEMON_STATEDIR_H

#include <stdbool.h>
#include <sys/types.h>

enum statedir_verdict {
    STATEDIR_OK,
    STATEDIR_TIGHTEN, /* chmod 0700 */
    STATEDIR_REFUSE,
};

/* Pure: what to do with a state dir of this mode and owner for a process of
 * effective uid `euid`. On STATEDIR_REFUSE, errmsg says why and what to run. */
enum statedir_verdict statedir_judge(const char *path, mode_t mode, uid_t owner, uid_t euid,
                                     char *errmsg);

/* Create the dir (0700) if missing, then judge it and act: chmod on
 * STATEDIR_TIGHTEN, SWARM_EPERM on STATEDIR_REFUSE. Existing files swarmd
 * made before it ran with umask 077 (a store.db of 0644, say) are tightened
 * to 0600/0700 too. */
int statedir_prepare(const char *path, char *errmsg);

#endif
