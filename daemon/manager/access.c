/* The manager's side of authorization (authz.h decides, this looks things
 * up and acts):
 *   - the api_server's authorizer: every call of a certificate holder, and
 *     the original caller of a forwarded call, is checked against this
 *     manager's store (node exists, not revoked, role allows);
 *   - raft peers: a certificate's node ID maps to a raft id and address only
 *     if the store says it is a current raft member; the seed list a joining
 *     manager got from the leader is used only until its store has caught up,
 *     then dropped;
 *   - when a node is removed, demoted, or revoked, its open connections (RPC
 *     and raft) are closed;
 *   - refusals are logged at WARN, rate-limited, with the peer's address.
 * Lifecycle and ownership: access.h. */
#include "access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "err.h"
#include "log.h"
#include "pbcopy.h"

struct access {
    const struct menv *env;
    char *node_id;
    char *cluster_id;
    void (*recheck)(void *data, const char *node_id);
    void *data;
    /* Managers named by the leader at join, until our store knows them. */
    Swarm__ManagerPeer **seed_peers;
    size_t n_seed_peers;
    /* Managers named by the raft log this node held at start but had not
     * applied (a store rebuilt from the log), consulted only while the
     * store is behind log_peers_until, the log's last index at start. */
    Swarm__ManagerPeer **log_peers;
    size_t n_log_peers;
    uint64_t log_peers_until;
};

static struct log_limit refused_cert_limit;

/* Cluster and node from the store; either may come back NULL. */
static void access_lookup(struct access *a, const char *node_id, Swarm__Cluster **c,
                          Swarm__Node **node)
{
    struct store *store = a->env->store;
    *c = NULL;
    *node = NULL;
    if (store == NULL) {
        return;
    }
    if (store_cluster_get_default(store, c) != 0) {
        *c = NULL;
    }
    if (store_node_get(store, node_id, node) != 0) {
        *node = NULL;
    }
}

static void access_lookup_free(Swarm__Cluster *c, Swarm__Node *node)
{
    if (c != NULL) {
        swarm__cluster__free_unpacked(c, NULL);
    }
    if (node != NULL) {
        swarm__node__free_unpacked(node, NULL);
    }
}

static enum api_status access_authorize_cb(struct api_peer *peer, void *data, char *errmsg)
{
    struct access *a = *(struct access *const *)data;
    Swarm__Cluster *c;
    Swarm__Node *node;
    enum api_role role = API_ROLE_WORKER;
    int rv;
    if (a == NULL) {
        return API_OK; /* not a manager (yet): the handlers say so */
    }
    access_lookup(a, peer->node_id, &c, &node);
    rv = authz_peer_role(c, node, peer->node_id, peer->cluster_id, peer->role, &role, errmsg);
    access_lookup_free(c, node);
    if (rv == SWARM_EUNAVAIL) {
        return API_UNAVAILABLE;
    }
    if (rv != 0) {
        log_warn_limited(&refused_cert_limit, "manager",
                         "refusing certificate of node %s from %s%s%s: %s", peer->node_id,
                         peer->addr, peer->via[0] ? " via manager " : "", peer->via, errmsg);
        return API_PERMISSION_DENIED;
    }
    peer->role = role;
    return API_OK;
}

void access_register(struct api_server *api, struct access *const *current)
{
    api_server_set_authorize(api, access_authorize_cb, (void *)current);
}

/* ------------------------------------------------------------ raft peers */

static void peers_free(Swarm__ManagerPeer **peers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        swarm__manager_peer__free_unpacked(peers[i], NULL);
    }
    free(peers);
}

/* This manager's store holds its own node: it has caught up with the
 * leader, and knows the managers itself. */
static bool access_caught_up(struct access *a)
{
    Swarm__Node *node = NULL;
    if (a->env->store == NULL || store_node_get(a->env->store, a->node_id, &node) != 0) {
        return false;
    }
    swarm__node__free_unpacked(node, NULL);
    return true;
}

raft_id access_raft_peer(const char *node_id, char *addr, size_t addr_size, void *data,
                         char *errmsg)
{
    struct access *a = data;
    struct store *store = a->env->store;
    Swarm__Cluster *c;
    Swarm__Node *node;
    uint64_t id = 0;
    const char *found = NULL;
    int rv;
    if (a->n_seed_peers > 0 && access_caught_up(a)) {
        log_info("manager", "store caught up: raft peers are now taken from it only");
        peers_free(a->seed_peers, a->n_seed_peers);
        a->seed_peers = NULL;
        a->n_seed_peers = 0;
    }
    access_lookup(a, node_id, &c, &node);
    if (c == NULL && a->n_seed_peers > 0) {
        /* A manager that just joined: its store is still empty. */
        access_lookup_free(c, node);
        for (size_t i = 0; i < a->n_seed_peers; i++) {
            if (strcmp(a->seed_peers[i]->node_id, node_id) == 0) {
                snprintf(addr, addr_size, "%s", a->seed_peers[i]->addr);
                return a->seed_peers[i]->raft_id;
            }
        }
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "node %s is not among the managers named at join", node_id);
        return 0;
    }
    rv = authz_raft_peer(c, node, node_id, a->cluster_id, &id, &found, errmsg);
    if (rv == 0) {
        snprintf(addr, addr_size, "%s", found);
    }
    access_lookup_free(c, node);
    if (rv == 0) {
        return id;
    }
    /* A store being rebuilt from this node's own raft log does not know the
     * managers yet: until it has replayed what the log held at start, the
     * managers that log names (storefile_log_peers) stand in for it. */
    for (size_t i = 0; store != NULL && store_last_index(store) < a->log_peers_until &&
                       i < a->n_log_peers; i++) {
        if (strcmp(a->log_peers[i]->node_id, node_id) == 0 && a->log_peers[i]->addr != NULL &&
            a->log_peers[i]->addr[0] != '\0') {
            snprintf(addr, addr_size, "%s", a->log_peers[i]->addr);
            return a->log_peers[i]->raft_id;
        }
    }
    return 0;
}

void access_set_log_peers(struct access *a, Swarm__ManagerPeer **peers, size_t n, uint64_t until)
{
    peers_free(a->log_peers, a->n_log_peers);
    a->log_peers = peers;
    a->n_log_peers = n;
    a->log_peers_until = until;
}

/* ------------------------------------------------- closing what is gone */

void access_on_event(struct access *a, const struct store_event *ev)
{
    if (a == NULL) {
        return;
    }
    if (ev->kind == STORE_KIND_NODE && ev->old_obj != NULL) {
        const Swarm__Node *old = (const Swarm__Node *)ev->old_obj;
        const Swarm__Node *new = (const Swarm__Node *)ev->new_obj;
        if (new == NULL || authz_node_lost_manager(old, new)) {
            a->recheck(a->data, old->id);
        }
        return;
    }
    if (ev->kind == STORE_KIND_CLUSTER && ev->old_obj != NULL && ev->new_obj != NULL) {
        const Swarm__Cluster *old = (const Swarm__Cluster *)ev->old_obj;
        const Swarm__Cluster *new = (const Swarm__Cluster *)ev->new_obj;
        for (size_t i = 0; i < new->n_revoked_certificates; i++) {
            if (!authz_is_revoked(old, new->revoked_certificates[i]->node_id)) {
                a->recheck(a->data, new->revoked_certificates[i]->node_id);
            }
        }
    }
}

/* ------------------------------------------------------------ lifecycle */

int access_new(const struct menv *env, const struct access_config *cfg, struct access **out)
{
    struct access *a = calloc(1, sizeof *a);
    *out = NULL;
    if (a == NULL) {
        return SWARM_ENOMEM;
    }
    a->env = env;
    a->recheck = cfg->recheck;
    a->data = cfg->data;
    a->node_id = strdup(cfg->node_id);
    a->cluster_id = strdup(cfg->cluster_id);
    a->seed_peers = calloc(cfg->n_seed_peers ? cfg->n_seed_peers : 1, sizeof *a->seed_peers);
    if (a->node_id == NULL || a->cluster_id == NULL || a->seed_peers == NULL) {
        goto err;
    }
    for (size_t i = 0; i < cfg->n_seed_peers; i++) {
        a->seed_peers[i] = pb_copy(&cfg->seed_peers[i]->base);
        if (a->seed_peers[i] == NULL) {
            goto err;
        }
        a->n_seed_peers++;
    }
    *out = a;
    return 0;
err:
    access_close(a, NULL, NULL);
    return SWARM_ENOMEM;
}

void access_close(struct access *a, void (*cb)(void *data), void *data)
{
    if (a != NULL) {
        peers_free(a->seed_peers, a->n_seed_peers);
        peers_free(a->log_peers, a->n_log_peers);
        free(a->node_id);
        free(a->cluster_id);
        free(a);
    }
    if (cb != NULL) {
        cb(data);
    }
}
