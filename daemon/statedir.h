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

/* The state dir's layout: the one place that names what swarmd keeps in it
 * (the integration tests name the same files as a user would).
 *   DIR/node-state.pb                   the node's local state (node.c)
 *   DIR/certificates/swarm-root-ca.crt  the cluster's root certificate
 *   DIR/certificates/swarm-node.crt     this node's certificate (+ chain)
 *   DIR/certificates/swarm-node.key     this node's key
 *   DIR/raft/                           libraft's log, snapshots, metadata
 *   DIR/store.db (-wal, -shm)           a manager's SQLite store
 *   DIR/worker/tasks.db                 the agent's task database
 * Paths below are relative to DIR. */
#define STATEDIR_NODE_STATE "node-state.pb"
#define STATEDIR_CERTS "certificates"
#define STATEDIR_ROOT_CA_CERT_NAME "swarm-root-ca.crt" /* in STATEDIR_CERTS */
#define STATEDIR_NODE_CERT_NAME "swarm-node.crt"
#define STATEDIR_NODE_KEY_NAME "swarm-node.key"
#define STATEDIR_ROOT_CA_CERT STATEDIR_CERTS "/" STATEDIR_ROOT_CA_CERT_NAME
#define STATEDIR_NODE_CERT STATEDIR_CERTS "/" STATEDIR_NODE_CERT_NAME
#define STATEDIR_NODE_KEY STATEDIR_CERTS "/" STATEDIR_NODE_KEY_NAME
#define STATEDIR_RAFT "raft"
#define STATEDIR_STORE "store.db"
#define STATEDIR_WORKER "worker"
#define STATEDIR_TASKS_DB_NAME "tasks.db" /* in STATEDIR_WORKER */
#define STATEDIR_TASKS_DB STATEDIR_WORKER "/" STATEDIR_TASKS_DB_NAME

/* What statedir_erase removes (a bit set). */
enum {
    STATEDIR_PART_NODE_STATE = 1 << 0, /* node-state.pb */
    STATEDIR_PART_CERTS = 1 << 1,      /* certificates/ */
    STATEDIR_PART_RAFT = 1 << 2,       /* raft/ */
    STATEDIR_PART_STORE = 1 << 3,      /* store.db, store.db-wal, store.db-shm */
    STATEDIR_PART_MANAGER = STATEDIR_PART_RAFT | STATEDIR_PART_STORE,
    STATEDIR_PART_SWARM = STATEDIR_PART_NODE_STATE | STATEDIR_PART_CERTS | STATEDIR_PART_MANAGER,
};

/* Remove `path` and, if it is a directory, everything under it, without
 * following symlinks (rm -rf). A missing path is not an error. Returns 0 or
 * SWARM_EIO with errno set by the first removal that failed (the others are
 * still attempted). */
int statedir_remove_tree(const char *path);

/* Remove the `parts` (STATEDIR_PART_*) of the swarm state in `dir`; the dir,
 * its socket and worker/ stay. Best effort: returns 0, or SWARM_EIO if
 * something could not be removed (the rest still is). */
int statedir_erase(const char *dir, unsigned parts);

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
