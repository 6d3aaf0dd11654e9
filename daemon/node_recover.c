/* A state dir without node-state.pb: a fresh node, or a node whose local
 * state was lost. The certificates say which: if they remain, the node is
 * still a member of a swarm, and starting it as inactive would make it leave
 * silently (its peers would keep counting it, it would answer nothing).
 *
 * node_local_state_recover, happy paths:
 *   - no certificate, no raft dir, no store.db: a fresh node (*out NULL).
 *   - a manager's certificate, and a store that knows this node as a manager
 *     with its raft id and address: node-state.pb is rebuilt from them
 *     (node and cluster IDs and role from the certificate; raft id,
 *     advertised address, managers from the store; the listen address from
 *     --listen-addr), saved, and the start goes on.
 * Failure paths (SWARM_ESTATE, the message names what is there and what to
 * do; swarmd exits):
 *   - a worker's certificate: the managers' addresses were only in the lost
 *     file;
 *   - a manager's certificate but no usable store, or one that does not
 *     know this node as a manager;
 *   - raft or store files without any certificate;
 *   - a certificate that cannot be read. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "node_int.h"
#include "pki.h"
#include "store.h"

struct cert_identity {
    char node_id[64];
    char role[64];
    char cluster_id[64];
};

static bool exists(const struct swarm_node *n, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", n->state_dir, name);
    return access(path, F_OK) == 0;
}

static int read_identity(const struct swarm_node *n, struct cert_identity *id, char *errmsg)
{
    char path[PATH_MAX];
    char *pem = NULL;
    size_t len = 0;
    X509 *cert = NULL;
    int rv;
    snprintf(path, sizeof path, "%s/" STATEDIR_NODE_CERT, n->state_dir);
    if ((rv = pki_read_file(path, &pem, &len, errmsg)) != 0) {
        return rv;
    }
    rv = pki_cert_from_pem(pem, len, &cert, errmsg);
    free(pem);
    if (rv == 0) {
        rv = pki_cert_identity(cert, id->node_id, id->role, id->cluster_id);
        if (rv != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: no node identity in it", path);
        }
        X509_free(cert);
    }
    return rv;
}

/* The remedy goes to the log (it is long), the reason to errmsg, which
 * swarmd prints as it exits. */
static void refuse(const struct swarm_node *n, const struct cert_identity *id, const char *why,
                   char *errmsg)
{
    bool manager = strcmp(id->role, API_OU_MANAGER) == 0;
    log_error("node", "to recover, restore %s/%s from a backup; or remove this node from the "
              "swarm (on a%s manager: %s%s%s`swarmctl node rm --force %s`), then delete "
              STATEDIR_CERTS "/, " STATEDIR_RAFT "/ and " STATEDIR_STORE "* in %s and join again",
              n->state_dir, NODE_STATE_FILE, manager ? "nother" : "",
              manager ? "`swarmctl node demote " : "", manager ? id->node_id : "",
              manager ? "` and " : "", id->node_id, n->state_dir);
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                  "%s/%s is missing, but the certificates say this is node %s (%s) of cluster "
                  "%s, and %s; refusing to start as if the node had left its swarm",
                  n->state_dir, NODE_STATE_FILE, id->node_id, id->role, id->cluster_id, why);
}

/* The local state of manager `id` as its own store records it. */
static int from_store(struct swarm_node *n, const struct cert_identity *id,
                      Swarm__LocalState **out, char *why)
{
    char path[PATH_MAX], em[SWARM_ERRMSG_SIZE] = "";
    Swarm__LocalState ls = SWARM__LOCAL_STATE__INIT;
    Swarm__Node *self = NULL, **nodes = NULL;
    struct store *s = NULL;
    size_t count = 0;
    char **managers = NULL;
    int rv;

    if (!exists(n, STATEDIR_STORE)) {
        errmsg_printf(why, SWARM_ERRMSG_SIZE, "its " STATEDIR_STORE " is gone too, so its raft id is unknown");
        return SWARM_ESTATE;
    }
    snprintf(path, sizeof path, "%s/" STATEDIR_STORE, n->state_dir);
    if ((rv = store_open(path, &s, em)) != 0) {
        errmsg_printf(why, SWARM_ERRMSG_SIZE, "its store cannot be read (%s)", em);
        return SWARM_ESTATE;
    }
    rv = store_node_get(s, id->node_id, &self);
    if (rv != 0 || self->role != SWARM__NODE_ROLE__NODE_ROLE_MANAGER ||
        self->manager_status == NULL || self->manager_status->raft_id == 0 ||
        self->manager_status->addr == NULL || self->manager_status->addr[0] == '\0') {
        errmsg_printf(why, SWARM_ERRMSG_SIZE, "its store does not know it as a manager");
        rv = SWARM_ESTATE;
        goto out;
    }
    if (store_node_list(s, &nodes, &count) == 0) {
        managers = calloc(count + 1, sizeof *managers);
        if (managers == NULL) {
            errmsg_printf(why, SWARM_ERRMSG_SIZE, "out of memory");
            rv = SWARM_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < count; i++) {
            if (nodes[i]->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
                nodes[i]->manager_status != NULL && nodes[i]->manager_status->addr != NULL) {
                managers[ls.n_managers++] = nodes[i]->manager_status->addr;
            }
        }
    }
    ls.node_id = (char *)id->node_id;
    ls.cluster_id = (char *)id->cluster_id;
    ls.role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    ls.raft_id = self->manager_status->raft_id;
    ls.listen_addr = n->listen_addr;
    ls.advertise_addr = self->manager_status->addr;
    ls.managers = managers;
    *out = node_local_state_copy(&ls);
    rv = *out != NULL ? 0 : SWARM_ENOMEM;
    free(managers);
out:
    if (nodes != NULL) {
        store_node_free_list(nodes, count);
    }
    if (self != NULL) {
        swarm__node__free_unpacked(self, NULL);
    }
    store_close(s);
    return rv;
}

int node_local_state_recover(struct swarm_node *n, Swarm__LocalState **out, char *errmsg)
{
    struct cert_identity id = {"", "", ""};
    char why[SWARM_ERRMSG_SIZE] = "";
    int rv;

    *out = NULL;
    if (!exists(n, STATEDIR_NODE_CERT)) {
        if (exists(n, STATEDIR_RAFT) || exists(n, STATEDIR_STORE)) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "%s holds a raft log or a store but neither %s nor a node "
                          "certificate: it is not in a state swarmd can start from. Restore "
                          "the missing files from a backup, or delete %s/" STATEDIR_RAFT " and "
                          "%s/" STATEDIR_STORE "* to start as a new node",
                          n->state_dir, NODE_STATE_FILE, n->state_dir, n->state_dir);
            return SWARM_ESTATE;
        }
        return 0;
    }
    if ((rv = read_identity(n, &id, why)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "%s/%s is missing and the node certificate cannot be read (%s); restore "
                      "both from a backup, or delete %s/" STATEDIR_CERTS " to start as a new node",
                      n->state_dir, NODE_STATE_FILE, why, n->state_dir);
        return SWARM_ESTATE;
    }
    if (strcmp(id.role, API_OU_MANAGER) != 0) {
        refuse(n, &id, "the addresses of its managers were only in that file", errmsg);
        return SWARM_ESTATE;
    }
    if ((rv = from_store(n, &id, out, why)) != 0) {
        if (rv == SWARM_ESTATE) {
            refuse(n, &id, why, errmsg);
        }
        return rv;
    }
    if ((rv = node_local_state_save(n, *out, errmsg)) != 0) {
        swarm__local_state__free_unpacked(*out, NULL);
        *out = NULL;
        return rv;
    }
    log_warn("node", "%s/%s was missing: rebuilt from the node certificate (node %s of cluster "
             "%s, manager) and the store (raft id %llu, address %s, listening on %s)",
             n->state_dir, NODE_STATE_FILE, id.node_id, id.cluster_id,
             (unsigned long long)(*out)->raft_id, (*out)->advertise_addr, (*out)->listen_addr);
    return 0;
}
