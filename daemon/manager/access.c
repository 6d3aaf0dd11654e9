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
 *   - refusals are logged at WARN, rate-limited, with the peer's address. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "err.h"
#include "internal.h"
#include "log.h"
#include "transport.h"

static struct log_limit refused_cert_limit;

/* Cluster and node from the store; either may come back NULL. */
static void access_lookup(struct manager *m, const char *node_id, Swarm__Cluster **c,
                          Swarm__Node **node)
{
    *c = NULL;
    *node = NULL;
    if (m->store == NULL) {
        return;
    }
    if (store_cluster_get_default(m->store, c) != 0) {
        *c = NULL;
    }
    if (store_node_get(m->store, node_id, node) != 0) {
        *node = NULL;
    }
}

static void access_free(Swarm__Cluster *c, Swarm__Node *node)
{
    if (c != NULL) {
        swarm__cluster__free_unpacked(c, NULL);
    }
    if (node != NULL) {
        swarm__node__free_unpacked(node, NULL);
    }
}

static enum api_status access_authorize_cb(struct api_peer *peer, char *msg, size_t msg_size,
                                           void *data)
{
    const struct manager_slot *slot = data;
    struct manager *m = slot->m;
    Swarm__Cluster *c;
    Swarm__Node *node;
    enum api_role role = API_ROLE_WORKER;
    char why[256];
    int rv;
    if (m == NULL || m->phase != MANAGER_RUNNING) {
        return API_OK; /* not a manager (yet): the handlers say so */
    }
    access_lookup(m, peer->node_id, &c, &node);
    rv = authz_peer_role(c, node, peer->node_id, peer->cluster_id, peer->role, &role, why,
                         sizeof why);
    access_free(c, node);
    if (rv == SWARM_EUNAVAIL) {
        snprintf(msg, msg_size, "%s", why);
        return API_UNAVAILABLE;
    }
    if (rv != 0) {
        log_warn_limited(&refused_cert_limit, "manager",
                         "refusing certificate of node %s from %s%s%s: %s", peer->node_id,
                         peer->addr, peer->via[0] ? " via manager " : "", peer->via, why);
        snprintf(msg, msg_size, "%s", why);
        return API_PERMISSION_DENIED;
    }
    peer->role = role;
    return API_OK;
}

void access_register(struct api_server *api, struct manager_slot *slot)
{
    api_server_set_authorize(api, access_authorize_cb, slot);
}

/* ------------------------------------------------------------ raft peers */

static void seeds_drop(struct manager *m)
{
    for (size_t i = 0; i < m->n_seed_peers; i++) {
        swarm__manager_peer__free_unpacked(m->seed_peers[i], NULL);
    }
    free(m->seed_peers);
    m->seed_peers = NULL;
    m->n_seed_peers = 0;
}

raft_id access_raft_peer(const char *node_id, char *addr, size_t addr_size, char *why,
                         size_t why_size, void *data)
{
    struct manager *m = data;
    Swarm__Cluster *c;
    Swarm__Node *node;
    uint64_t id = 0;
    const char *a = NULL;
    int rv;
    if (m->n_seed_peers > 0 && manager_caught_up(m)) {
        log_info("manager", "store caught up: raft peers are now taken from it only");
        seeds_drop(m);
    }
    access_lookup(m, node_id, &c, &node);
    if (c == NULL && m->n_seed_peers > 0) {
        /* A manager that just joined: its store is still empty. */
        access_free(c, node);
        for (size_t i = 0; i < m->n_seed_peers; i++) {
            if (strcmp(m->seed_peers[i]->node_id, node_id) == 0) {
                snprintf(addr, addr_size, "%s", m->seed_peers[i]->addr);
                return m->seed_peers[i]->raft_id;
            }
        }
        snprintf(why, why_size, "node %s is not among the managers named at join", node_id);
        return 0;
    }
    rv = authz_raft_peer(c, node, node_id, m->local->cluster_id, &id, &a, why, why_size);
    if (rv == 0) {
        snprintf(addr, addr_size, "%s", a);
    }
    access_free(c, node);
    if (rv == 0) {
        return id;
    }
    /* A store being rebuilt from this node's own raft log does not know the
     * managers yet: until it has replayed what the log held at start, the
     * managers that log names (storefile_log_peers) stand in for it. */
    for (size_t i = 0; m->store != NULL && store_last_index(m->store) < m->log_peers_until &&
                       i < m->n_log_peers; i++) {
        if (strcmp(m->log_peers[i]->node_id, node_id) == 0 && m->log_peers[i]->addr != NULL &&
            m->log_peers[i]->addr[0] != '\0') {
            snprintf(addr, addr_size, "%s", m->log_peers[i]->addr);
            return m->log_peers[i]->raft_id;
        }
    }
    return 0;
}

/* ------------------------------------------------- closing what is gone */

/* A demotion shows twice: the desired role goes to worker (manager powers
 * end: RPC connections granted the manager role close), then the role
 * itself once raft removed the member (its raft connections close). */
static bool node_lost_manager(const Swarm__Node *old, const Swarm__Node *new)
{
    uint64_t old_raft = old->manager_status != NULL ? old->manager_status->raft_id : 0;
    uint64_t new_raft = new->manager_status != NULL ? new->manager_status->raft_id : 0;
    bool desired_lost = old->spec != NULL && new->spec != NULL &&
                        old->spec->desired_role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
                        new->spec->desired_role != SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    bool role_lost = old->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
                     new->role != SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    return desired_lost || role_lost || (old_raft != 0 && new_raft != old_raft);
}

static void access_recheck(struct manager *m, const char *node_id)
{
    api_server_recheck(m->api, node_id);
    if (m->transport_ready) {
        rtransport_recheck(&m->transport, node_id);
    }
}

void access_on_event(struct manager *m, const struct store_event *ev)
{
    if (ev->kind == STORE_KIND_NODE && ev->old_obj != NULL) {
        const Swarm__Node *old = (const Swarm__Node *)ev->old_obj;
        const Swarm__Node *new = (const Swarm__Node *)ev->new_obj;
        if (new == NULL || node_lost_manager(old, new)) {
            access_recheck(m, old->id);
        }
        return;
    }
    if (ev->kind == STORE_KIND_CLUSTER && ev->old_obj != NULL && ev->new_obj != NULL) {
        const Swarm__Cluster *old = (const Swarm__Cluster *)ev->old_obj;
        const Swarm__Cluster *new = (const Swarm__Cluster *)ev->new_obj;
        for (size_t i = 0; i < new->n_revoked_certificates; i++) {
            if (!authz_is_revoked(old, new->revoked_certificates[i]->node_id)) {
                access_recheck(m, new->revoked_certificates[i]->node_id);
            }
        }
    }
}
