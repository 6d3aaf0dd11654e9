/* See authz.h. */
#include "authz.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

int authz_is_revoked(const Swarm__Cluster *c, const char *node_id)
{
    for (size_t i = 0; i < c->n_revoked_certificates; i++) {
        if (strcmp(c->revoked_certificates[i]->node_id, node_id) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The checks every certificate holder passes, whatever it asks for. */
static int authz_member(const Swarm__Cluster *c, const Swarm__Node *node, const char *node_id,
                        const char *cluster_id, char *errmsg)
{
    if (c == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "this manager has not caught up with the swarm yet");
        return SWARM_EUNAVAIL;
    }
    if (strcmp(cluster_id, c->id) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "certificate of another cluster (\"%s\")", cluster_id);
        return SWARM_EPERM;
    }
    if (authz_is_revoked(c, node_id)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "certificate of node %s is revoked (the node was removed)",
                      node_id);
        return SWARM_EPERM;
    }
    if (node == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                 "node %s is not a member of this swarm (it may have been removed)", node_id);
        return SWARM_EPERM;
    }
    return 0;
}

int authz_peer_role(const Swarm__Cluster *c, const Swarm__Node *node, const char *node_id,
                    const char *cluster_id, enum api_role cert_role, enum api_role *role,
                    char *errmsg)
{
    int rv = authz_member(c, node, node_id, cluster_id, errmsg);
    if (rv != 0) {
        return rv;
    }
    *role = API_ROLE_WORKER;
    if (cert_role == API_ROLE_MANAGER && node->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
        node->spec != NULL && node->spec->desired_role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        *role = API_ROLE_MANAGER;
    }
    return 0;
}

int authz_raft_peer(const Swarm__Cluster *c, const Swarm__Node *node, const char *node_id,
                    const char *cluster_id, uint64_t *raft_id, const char **addr, char *errmsg)
{
    int rv = authz_member(c, node, node_id, cluster_id, errmsg);
    if (rv != 0) {
        return rv;
    }
    if (node->role != SWARM__NODE_ROLE__NODE_ROLE_MANAGER || node->manager_status == NULL ||
        node->manager_status->raft_id == 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "node %s is not a raft member", node_id);
        return SWARM_EPERM;
    }
    if (node->manager_status->addr == NULL || node->manager_status->addr[0] == '\0') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "node %s has no raft address in the store", node_id);
        return SWARM_EPERM;
    }
    *raft_id = node->manager_status->raft_id;
    *addr = node->manager_status->addr;
    return 0;
}

int authz_revoke(Swarm__Cluster *c, const char *node_id, int64_t expiry_s, int64_t now_s)
{
    Swarm__RevokedCertificate **list;
    Swarm__RevokedCertificate *r;
    size_t kept = 0;
    list = calloc(c->n_revoked_certificates + 1, sizeof *list);
    r = calloc(1, sizeof *r);
    if (r != NULL) {
        swarm__revoked_certificate__init(r);
        r->node_id = strdup(node_id);
    }
    if (list == NULL || r == NULL || r->node_id == NULL) {
        free(list);
        if (r != NULL) {
            free(r->node_id);
        }
        free(r);
        return SWARM_ENOMEM;
    }
    r->expiry_s = expiry_s;
    for (size_t i = 0; i < c->n_revoked_certificates; i++) {
        Swarm__RevokedCertificate *old = c->revoked_certificates[i];
        if (old->expiry_s < now_s || strcmp(old->node_id, node_id) == 0) {
            if (strcmp(old->node_id, node_id) == 0 && old->expiry_s > r->expiry_s) {
                r->expiry_s = old->expiry_s;
            }
            swarm__revoked_certificate__free_unpacked(old, NULL);
            continue;
        }
        list[kept++] = old;
    }
    list[kept++] = r;
    free(c->revoked_certificates);
    c->revoked_certificates = list;
    c->n_revoked_certificates = kept;
    return 0;
}

int authz_node_lost_manager(const Swarm__Node *old, const Swarm__Node *new)
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
