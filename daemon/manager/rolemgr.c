/* The role manager (leader only): keeps raft membership equal to the set of
 * managers in the store, one membership change at a time.
 *
 *   a Node with role manager and a raft id missing from the configuration
 *       -> rnode_add_voter (added as a spare, then made a voter once raft
 *          caught it up)
 *   a configured server whose Node is gone or no longer a manager
 *       -> rnode_remove, unless that would leave fewer voters than a majority
 *          of the reachable ones can carry (then it waits)
 * It runs on a short timer while this manager leads; a change that fails is
 * simply retried on the next pass. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "id.h"
#include "internal.h"
#include "log.h"

#define ROLEMGR_PERIOD_MS 200

struct role_change {
    struct manager *m;
    raft_id id;
    const char *what;
};

static void change_cb(int status, void *data)
{
    struct role_change *c = data;
    struct manager *m = c->m;
    if (status != 0) {
        log_warn("rolemgr", "%s of raft member %llx failed: %s", c->what,
                 (unsigned long long)c->id, swarm_strerror(status));
    } else {
        log_info("rolemgr", "%s of raft member %llx done", c->what, (unsigned long long)c->id);
    }
    free(c);
    if (m->phase == MANAGER_CLOSING) {
        return;
    }
    m->role_change_pending = false;
}

static const struct raft_server *config_find(const struct raft_configuration *conf, raft_id id)
{
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return &conf->servers[i];
        }
    }
    return NULL;
}

static bool is_manager(const Swarm__Node *n)
{
    return n->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER && n->manager_status != NULL &&
           n->manager_status->raft_id != 0 &&
           (n->spec == NULL || n->spec->desired_role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER);
}

/* "add" and "promotion" both go through rnode_add_voter: a server absent
 * from the configuration is added as a spare and then made a voter; one
 * already present (an earlier attempt) is only promoted. */
static int start_change(struct manager *m, raft_id id, const char *addr, const char *what)
{
    struct role_change *c = calloc(1, sizeof *c);
    int rv;
    if (c == NULL) {
        return SWARM_ENOMEM;
    }
    c->m = m;
    c->id = id;
    c->what = what;
    if (strcmp(what, "removal") == 0) {
        rv = rnode_remove(m->raft, id, change_cb, c);
    } else {
        rv = rnode_add_voter(m->raft, id, addr, change_cb, c);
    }
    if (rv != 0) {
        if (rv != SWARM_ESTATE) {
            log_warn("rolemgr", "%s of raft member %llx: %s", what, (unsigned long long)id,
                     swarm_strerror(rv));
        }
        free(c);
        return rv;
    }
    m->role_change_pending = true;
    return 0;
}

static void role_update_cb(struct manager *m, int status, const struct store_result *res,
                           void *data)
{
    if (m->phase == MANAGER_CLOSING) {
        return;
    }
    m->role_change_pending = false;
}

/* Record a finished promotion or demotion in the Node: its role, and for a
 * manager the raft id it will use and the address others reach it at. */
static int set_node_role(struct manager *m, const Swarm__Node *node, Swarm__NodeRole role)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
    Swarm__StoreAction *actions[1] = {&action};
    Swarm__ManagerStatus ms = SWARM__MANAGER_STATUS__INIT;
    Swarm__Node copy = *node;
    int rv;

    copy.role = role;
    if (role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        uint64_t raft_id = 0;
        while (raft_id == 0) {
            random_bytes(&raft_id, sizeof raft_id);
        }
        ms.raft_id = raft_id;
        ms.addr = node->advertise_addr;
        ms.reachability = SWARM__REACHABILITY__REACHABILITY_UNKNOWN;
        copy.manager_status = &ms;
    } else {
        copy.manager_status = NULL;
    }
    action.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE;
    action.target_case = SWARM__STORE_ACTION__TARGET_NODE;
    action.node = &copy;
    cmd.n_actions = 1;
    cmd.actions = actions;
    rv = manager_write(m, &cmd, role_update_cb, NULL);
    if (rv == 0) {
        m->role_change_pending = true;
        log_info("rolemgr", "node %s is now a %s", node->id,
                 role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker");
    }
    return rv;
}

/* Voters that answer our probes, counting ourselves. */
static unsigned reachable_voters(struct manager *m, const Swarm__Node *const *nodes, size_t n)
{
    const struct raft_configuration *conf = rnode_configuration(m->raft);
    unsigned count = 0;
    for (unsigned j = 0; j < conf->n; j++) {
        const struct raft_server *srv = &conf->servers[j];
        if (srv->role != RAFT_VOTER) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (nodes[i]->manager_status != NULL && nodes[i]->manager_status->raft_id == srv->id &&
                peers_reachability(m, nodes[i]->id) == SWARM__REACHABILITY__REACHABILITY_REACHABLE) {
                count++;
            }
        }
    }
    return count;
}

static void reconcile(struct manager *m)
{
    const struct raft_configuration *conf = rnode_configuration(m->raft);
    Swarm__Node **nodes = NULL;
    size_t n = 0;

    if (store_node_list(m->store, &nodes, &n) != 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct raft_server *s;
        if (!is_manager(nodes[i])) {
            continue;
        }
        s = config_find(conf, nodes[i]->manager_status->raft_id);
        if (s == NULL) {
            start_change(m, nodes[i]->manager_status->raft_id, nodes[i]->manager_status->addr,
                         "add");
            goto out;
        }
        if (s->role != RAFT_VOTER) {
            start_change(m, s->id, s->address, "promotion");
            goto out;
        }
    }
    /* Promotions: give the node a raft id; the pass above then adds it. */
    for (size_t i = 0; i < n; i++) {
        const Swarm__Node *node = nodes[i];
        if (node->spec != NULL &&
            node->spec->desired_role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
            node->role == SWARM__NODE_ROLE__NODE_ROLE_WORKER && node->advertise_addr != NULL &&
            node->advertise_addr[0] != '\0') {
            set_node_role(m, node, SWARM__NODE_ROLE__NODE_ROLE_MANAGER);
            goto out;
        }
    }
    for (unsigned j = 0; j < conf->n; j++) {
        const struct raft_server *srv = &conf->servers[j];
        bool wanted = false;
        for (size_t i = 0; i < n && !wanted; i++) {
            wanted = is_manager(nodes[i]) && nodes[i]->manager_status->raft_id == srv->id;
        }
        if (wanted) {
            continue;
        }
        /* Removing a voter must leave a majority of the remaining voters
         * reachable, or the swarm would lose its quorum. */
        if (srv->role == RAFT_VOTER) {
            unsigned voters = 0;
            for (unsigned k = 0; k < conf->n; k++) {
                voters += conf->servers[k].role == RAFT_VOTER;
            }
            unsigned reachable = reachable_voters(m, (const Swarm__Node *const *)nodes, n);
            bool removed_reachable = false;
            for (size_t i = 0; i < n; i++) {
                if (nodes[i]->manager_status && nodes[i]->manager_status->raft_id == srv->id) {
                    removed_reachable = peers_reachability(m, nodes[i]->id) ==
                                        SWARM__REACHABILITY__REACHABILITY_REACHABLE;
                }
            }
            unsigned left = voters - 1, left_reachable = reachable - (removed_reachable ? 1 : 0);
            if (left == 0 || left_reachable <= left / 2) {
                continue;
            }
        }
        start_change(m, srv->id, NULL, "removal");
        goto out;
    }
    /* Demotions whose raft removal is done: record the new role. */
    for (size_t i = 0; i < n; i++) {
        const Swarm__Node *node = nodes[i];
        if (node->spec != NULL && node->spec->desired_role == SWARM__NODE_ROLE__NODE_ROLE_WORKER &&
            node->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
            (node->manager_status == NULL || config_find(conf, node->manager_status->raft_id) == NULL)) {
            set_node_role(m, node, SWARM__NODE_ROLE__NODE_ROLE_WORKER);
            goto out;
        }
    }
out:
    store_node_free_list(nodes, n);
}

static void rolemgr_timer_cb(uv_timer_t *t)
{
    struct manager *m = t->data;
    if (m->phase != MANAGER_RUNNING || !rnode_is_leader(m->raft) || m->role_change_pending) {
        return;
    }
    reconcile(m);
}

void rolemgr_start(struct manager *m)
{
    uv_timer_start(&m->rolemgr_timer, rolemgr_timer_cb, 0, ROLEMGR_PERIOD_MS);
}

void rolemgr_stop(struct manager *m)
{
    uv_timer_stop(&m->rolemgr_timer);
}
