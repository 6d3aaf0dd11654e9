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
#include "log.h"
#include "rolemgr.h"

#define ROLEMGR_PERIOD_MS 200

struct rolemgr {
    const struct menv *env;
    struct rolemgr_config cfg;
    uv_timer_t timer;
    bool change_pending; /* a membership change or Node proposal in flight */
    bool timer_open;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

struct role_change {
    struct rolemgr *rm;
    raft_id id;
    const char *what;
};

static void rolemgr_maybe_free(struct rolemgr *rm)
{
    if (!rm->closing || rm->change_pending || rm->timer_open) {
        return;
    }
    void (*cb)(void *) = rm->close_cb;
    void *data = rm->close_data;
    free(rm);
    if (cb != NULL) {
        cb(data);
    }
}

static void change_cb(int status, void *data)
{
    struct role_change *c = data;
    struct rolemgr *rm = c->rm;
    if (status != 0) {
        log_warn("rolemgr", "%s of raft member %llx failed: %s", c->what,
                 (unsigned long long)c->id, swarm_strerror(status));
    } else {
        log_info("rolemgr", "%s of raft member %llx done", c->what, (unsigned long long)c->id);
    }
    free(c);
    rm->change_pending = false;
    rolemgr_maybe_free(rm);
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
static int start_change(struct rolemgr *rm, raft_id id, const char *addr, const char *what)
{
    struct role_change *c = calloc(1, sizeof *c);
    int rv;
    if (c == NULL) {
        return SWARM_ENOMEM;
    }
    c->rm = rm;
    c->id = id;
    c->what = what;
    if (strcmp(what, "removal") == 0) {
        rv = rm->cfg.remove(rm->cfg.impl, id, change_cb, c);
    } else {
        rv = rm->cfg.add_voter(rm->cfg.impl, id, addr, change_cb, c);
    }
    if (rv != 0) {
        if (rv != SWARM_ESTATE) {
            log_warn("rolemgr", "%s of raft member %llx: %s", what, (unsigned long long)id,
                     swarm_strerror(rv));
        }
        free(c);
        return rv;
    }
    rm->change_pending = true;
    return 0;
}

static void role_update_cb(int status, const struct store_result *res, void *data)
{
    struct rolemgr *rm = data;
    rm->change_pending = false;
    rolemgr_maybe_free(rm);
}

/* Record a finished promotion or demotion in the Node: its role, and for a
 * manager the raft id it will use and the address others reach it at. */
static int set_node_role(struct rolemgr *rm, const Swarm__Node *node, Swarm__NodeRole role)
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
    rv = menv_propose(rm->env, &cmd, role_update_cb, rm);
    if (rv == 0) {
        rm->change_pending = true;
        log_info("rolemgr", "node %s is now a %s", node->id,
                 role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker");
    }
    return rv;
}

/* Voters that answer our probes, counting ourselves. */
static unsigned reachable_voters(struct rolemgr *rm, const Swarm__Node *const *nodes, size_t n)
{
    const struct raft_configuration *conf = rm->cfg.raft_members(rm->cfg.impl);
    unsigned count = 0;
    for (unsigned j = 0; j < conf->n; j++) {
        const struct raft_server *srv = &conf->servers[j];
        if (srv->role != RAFT_VOTER) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (nodes[i]->manager_status != NULL && nodes[i]->manager_status->raft_id == srv->id &&
                rm->cfg.reachability(rm->cfg.impl, nodes[i]->id) == SWARM__REACHABILITY__REACHABILITY_REACHABLE) {
                count++;
            }
        }
    }
    return count;
}

static void reconcile(struct rolemgr *rm)
{
    const struct raft_configuration *conf = rm->cfg.raft_members(rm->cfg.impl);
    Swarm__Node **nodes = NULL;
    size_t n = 0;

    if (store_node_list(rm->env->store, &nodes, &n) != 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct raft_server *s;
        if (!is_manager(nodes[i])) {
            continue;
        }
        s = config_find(conf, nodes[i]->manager_status->raft_id);
        if (s == NULL) {
            start_change(rm, nodes[i]->manager_status->raft_id, nodes[i]->manager_status->addr,
                         "add");
            goto out;
        }
        if (s->role != RAFT_VOTER) {
            start_change(rm, s->id, s->address, "promotion");
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
            set_node_role(rm, node, SWARM__NODE_ROLE__NODE_ROLE_MANAGER);
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
            unsigned reachable = reachable_voters(rm, (const Swarm__Node *const *)nodes, n);
            bool removed_reachable = false;
            for (size_t i = 0; i < n; i++) {
                if (nodes[i]->manager_status && nodes[i]->manager_status->raft_id == srv->id) {
                    removed_reachable = rm->cfg.reachability(rm->cfg.impl, nodes[i]->id) ==
                                        SWARM__REACHABILITY__REACHABILITY_REACHABLE;
                }
            }
            unsigned left = voters - 1, left_reachable = reachable - (removed_reachable ? 1 : 0);
            if (left == 0 || left_reachable <= left / 2) {
                continue;
            }
        }
        start_change(rm, srv->id, NULL, "removal");
        goto out;
    }
    /* Demotions whose raft removal is done: record the new role. */
    for (size_t i = 0; i < n; i++) {
        const Swarm__Node *node = nodes[i];
        if (node->spec != NULL && node->spec->desired_role == SWARM__NODE_ROLE__NODE_ROLE_WORKER &&
            node->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
            (node->manager_status == NULL || config_find(conf, node->manager_status->raft_id) == NULL)) {
            set_node_role(rm, node, SWARM__NODE_ROLE__NODE_ROLE_WORKER);
            goto out;
        }
    }
out:
    store_node_free_list(nodes, n);
}

static void rolemgr_timer_cb(uv_timer_t *t)
{
    struct rolemgr *rm = t->data;
    if (rm->closing || !menv_is_leader(rm->env) || rm->change_pending) {
        return;
    }
    reconcile(rm);
}

struct rolemgr *rolemgr_new(const struct menv *env, const struct rolemgr_config *cfg)
{
    struct rolemgr *rm = calloc(1, sizeof *rm);
    if (rm == NULL) {
        return NULL;
    }
    rm->env = env;
    rm->cfg = *cfg;
    uv_timer_init(env->loop, &rm->timer);
    rm->timer.data = rm;
    rm->timer_open = true;
    return rm;
}

void rolemgr_start(struct rolemgr *rm)
{
    uv_timer_start(&rm->timer, rolemgr_timer_cb, 0, ROLEMGR_PERIOD_MS);
}

static void timer_closed_cb(uv_handle_t *h)
{
    struct rolemgr *rm = h->data;
    rm->timer_open = false;
    rolemgr_maybe_free(rm);
}

void rolemgr_close(struct rolemgr *rm, void (*cb)(void *data), void *data)
{
    rm->closing = true;
    rm->close_cb = cb;
    rm->close_data = data;
    uv_close((uv_handle_t *)&rm->timer, timer_closed_cb);
}
