/* See storefile.h.
 *
 * storefile_open, happy path: the file opens as a store of our cluster (or as
 * a new, empty one). Failure paths:
 *   - store.db missing but a -wal or -shm left beside it: they belong to the
 *     lost file, and SQLite would replay that WAL into the new one; removed.
 *   - not a database, damaged, another schema (SWARM_ECORRUPT from
 *     store_open): the files are moved to store.db.corrupt-<unix time>, an
 *     error is logged, a new store is opened.
 *   - a store of another cluster: moved to store.db.foreign-<unix time>, the
 *     same way.
 *   - any other failure (I/O, permissions): returned; the manager does not
 *     start. */
#include "storefile.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "pbcopy.h"
#include "statedir.h"
#include "vec.h"

static const char *const store_suffixes[] = {"", "-wal", "-shm", "-journal"};

static void remove_stale_wal(const char *db)
{
    char path[PATH_MAX];
    if (access(db, F_OK) == 0 || errno != ENOENT) {
        return;
    }
    for (size_t i = 1; i < sizeof store_suffixes / sizeof store_suffixes[0]; i++) {
        snprintf(path, sizeof path, "%s%s", db, store_suffixes[i]);
        if (unlink(path) == 0) {
            log_warn("manager", "removed %s: its database %s is gone", path, db);
        }
    }
}

/* Move db and its companions to db.<why>-<time>[-wal|-shm|-journal]. */
static int move_aside(const char *db, const char *why, char *errmsg)
{
    char from[PATH_MAX], to[PATH_MAX];
    long long now = (long long)time(NULL);
    for (size_t i = 0; i < sizeof store_suffixes / sizeof store_suffixes[0]; i++) {
        snprintf(from, sizeof from, "%s%s", db, store_suffixes[i]);
        snprintf(to, sizeof to, "%s.%s-%lld%s", db, why, now, store_suffixes[i]);
        if (rename(from, to) != 0 && errno != ENOENT) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "move %s aside to %s: %s", from, to,
                          strerror(errno));
            return SWARM_EIO;
        }
    }
    snprintf(to, sizeof to, "%s.%s-%lld", db, why, now);
    log_error("manager", "moved the store aside to %s; rebuilding it from the raft log", to);
    return 0;
}

/* SWARM_EEXIST when the store holds a cluster other than cluster_id. */
static int check_cluster(struct store *s, const char *cluster_id, char *errmsg)
{
    Swarm__Cluster *c = NULL;
    int rv = store_cluster_get_default(s, &c);
    if (rv == SWARM_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "read the cluster: %s", swarm_strerror(rv));
        return SWARM_ECORRUPT;
    }
    if (strcmp(c->id, cluster_id) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "it holds cluster %s, this node is of cluster %s",
                      c->id, cluster_id);
        rv = SWARM_EEXIST;
    }
    swarm__cluster__free_unpacked(c, NULL);
    return rv;
}

int storefile_open(const char *state_dir, const char *cluster_id, struct store **out,
                   char *errmsg)
{
    char db[PATH_MAX];
    char why[SWARM_ERRMSG_SIZE] = "";
    const char *aside;
    int rv;

    snprintf(db, sizeof db, "%s/" STATEDIR_STORE, state_dir);
    remove_stale_wal(db);
    rv = store_open(db, out, why);
    if (rv == 0) {
        rv = check_cluster(*out, cluster_id, why);
        if (rv == 0) {
            return 0;
        }
        store_close(*out);
        *out = NULL;
    }
    if (rv != SWARM_ECORRUPT && rv != SWARM_EEXIST) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s", why);
        return rv;
    }
    aside = rv == SWARM_EEXIST ? "foreign" : "corrupt";
    log_error("manager", "the store %s cannot be used: %s", db, why);
    if ((rv = move_aside(db, aside, errmsg)) != 0) {
        return rv;
    }
    return store_open(db, out, errmsg);
}

/* ---- peers from the log ------------------------------------------------- */

struct log_peers {
    VEC(Swarm__ManagerPeer *) list;
    int err;
};

static void peers_drop(struct log_peers *lp, const char *node_id)
{
    for (size_t i = 0; i < lp->list.len; i++) {
        if (strcmp(lp->list.items[i]->node_id, node_id) == 0) {
            swarm__manager_peer__free_unpacked(lp->list.items[i], NULL);
            lp->list.items[i] = lp->list.items[--lp->list.len];
            return;
        }
    }
}

static void peers_put(struct log_peers *lp, const Swarm__Node *node)
{
    Swarm__ManagerPeer p = SWARM__MANAGER_PEER__INIT;
    Swarm__ManagerPeer *copy;
    peers_drop(lp, node->id);
    p.node_id = node->id;
    p.raft_id = node->manager_status->raft_id;
    p.addr = node->manager_status->addr;
    copy = pb_copy(&p.base);
    if (copy == NULL || vec_push(&lp->list, copy) != 0) {
        if (copy != NULL) {
            swarm__manager_peer__free_unpacked(copy, NULL);
        }
        lp->err = SWARM_ENOMEM;
    }
}

static void log_peers_cb(uint64_t index, const Swarm__StoreCommand *cmd, void *data)
{
    struct log_peers *lp = data;
    for (size_t i = 0; i < cmd->n_actions; i++) {
        const Swarm__StoreAction *a = cmd->actions[i];
        const Swarm__Node *node = a->target_case == SWARM__STORE_ACTION__TARGET_NODE ? a->node : NULL;
        if (node == NULL || node->id == NULL || node->id[0] == '\0') {
            continue;
        }
        if (a->kind == SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE) {
            peers_drop(lp, node->id);
        } else if (a->kind == SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE ||
                   a->kind == SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE) {
            if (node->role != SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
                peers_drop(lp, node->id);
            } else if (node->manager_status != NULL && node->manager_status->raft_id != 0) {
                peers_put(lp, node);
            }
        }
    }
}

int storefile_log_peers(struct rnode *r, Swarm__ManagerPeer ***out, size_t *n)
{
    struct log_peers lp = {0};
    rnode_scan_unapplied(r, log_peers_cb, &lp);
    if (lp.err != 0) {
        for (size_t i = 0; i < lp.list.len; i++) {
            swarm__manager_peer__free_unpacked(lp.list.items[i], NULL);
        }
        vec_free(&lp.list);
        return lp.err;
    }
    *out = lp.list.items;
    *n = lp.list.len;
    return 0;
}
