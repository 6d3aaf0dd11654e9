/* See selfreg.h. */
#include "selfreg.h"

#include <stdlib.h>

#include "err.h"
#include "log.h"
#include "store.h"

struct selfreg {
    const struct menv *env;
    struct selfreg_config cfg;
    Swarm__StoreCommand *bootstrap_cmd; /* until proposed */
    bool registered;  /* force-new-cluster: lost managers detached */
    bool closing;
    unsigned in_flight;
    void (*close_cb)(void *data);
    void *close_data;
};

struct selfreg *selfreg_new(const struct menv *env, const struct selfreg_config *cfg,
                            Swarm__StoreCommand **bootstrap_cmd)
{
    struct selfreg *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->env = env;
    s->cfg = *cfg;
    if (bootstrap_cmd != NULL) {
        s->bootstrap_cmd = *bootstrap_cmd;
        *bootstrap_cmd = NULL;
    }
    return s;
}

static void selfreg_maybe_free(struct selfreg *s)
{
    if (!s->closing || s->in_flight > 0) {
        return;
    }
    void (*cb)(void *) = s->close_cb;
    void *data = s->close_data;
    if (s->bootstrap_cmd != NULL) {
        swarm__store_command__free_unpacked(s->bootstrap_cmd, NULL);
    }
    free(s);
    if (cb != NULL) {
        cb(data);
    }
}

static void bootstrap_done_cb(int status, const struct store_result *res, void *data)
{
    struct selfreg *s = data;
    s->in_flight--;
    if (!s->closing) {
        if (status != 0 || res->status != 0) {
            s->cfg.bootstrapped(s->cfg.impl, status != 0 ? status : res->status,
                                status != 0 ? "the first raft entry was not committed"
                                            : res->message);
        } else if (s->cfg.bootstrapped(s->cfg.impl, 0, NULL) == 0) {
            s->registered = true;
        }
    }
    selfreg_maybe_free(s);
}

static void detach_done_cb(int status, const struct store_result *res, void *data)
{
    struct selfreg *s = data;
    s->in_flight--;
    if (status != 0 || res->status != 0) {
        /* Lost a race or leadership: the next leadership change retries. */
        s->registered = false;
        log_warn("manager", "detaching former managers failed: %s",
                 status != 0 ? swarm_strerror(status) : res->message);
    }
    selfreg_maybe_free(s);
}

int selfreg_detach_cmd(Swarm__Node **nodes, size_t n, raft_id self,
                       const struct raft_configuration *conf, Swarm__StoreCommand *cmd)
{
    cmd->actions = calloc(n + 1, sizeof *cmd->actions);
    if (cmd->actions == NULL) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        Swarm__ManagerStatus *ms = nodes[i]->manager_status;
        bool configured = false;
        if (ms == NULL || ms->raft_id == 0 || ms->raft_id == self) {
            continue;
        }
        for (unsigned j = 0; j < conf->n; j++) {
            configured |= conf->servers[j].id == ms->raft_id;
        }
        if (configured) {
            continue;
        }
        Swarm__StoreAction *a = calloc(1, sizeof *a);
        if (a == NULL) {
            return SWARM_ENOMEM;
        }
        ms->raft_id = 0;
        ms->reachability = SWARM__REACHABILITY__REACHABILITY_UNREACHABLE;
        swarm__store_action__init(a);
        a->kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE;
        a->target_case = SWARM__STORE_ACTION__TARGET_NODE;
        a->node = nodes[i];
        nodes[i] = NULL;
        cmd->actions[cmd->n_actions++] = a;
    }
    return 0;
}

static void detach_lost_managers(struct selfreg *s)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__Node **nodes = NULL;
    size_t n = 0;

    s->registered = true;
    if (store_node_list(s->env->store, &nodes, &n) != 0) {
        return;
    }
    if (selfreg_detach_cmd(nodes, n, s->cfg.raft_id, s->cfg.raft_members(s->cfg.impl), &cmd) !=
        0) {
        s->registered = false; /* the next leadership change retries */
    }
    if (cmd.n_actions > 0 && s->registered) {
        log_info("manager", "force-new-cluster: %zu former manager(s) left out of the raft group",
                 cmd.n_actions);
        if (menv_propose(s->env, &cmd, detach_done_cb, s) != 0) {
            s->registered = false;
        } else {
            s->in_flight++;
        }
    }
    for (size_t i = 0; i < cmd.n_actions; i++) {
        swarm__store_action__free_unpacked(cmd.actions[i], NULL);
    }
    free(cmd.actions);
    store_node_free_list(nodes, n);
}

void selfreg_set_leader(struct selfreg *s, bool leader)
{
    if (s->closing) {
        return;
    }
    if (!leader) {
        s->registered = false;
        return;
    }
    if (s->bootstrap_cmd != NULL) {
        Swarm__StoreCommand *cmd = s->bootstrap_cmd;
        s->bootstrap_cmd = NULL;
        int rv = menv_propose(s->env, cmd, bootstrap_done_cb, s);
        swarm__store_command__free_unpacked(cmd, NULL);
        if (rv != 0) {
            s->cfg.bootstrapped(s->cfg.impl, rv, "could not propose the first raft entry");
        } else {
            s->in_flight++;
        }
        return;
    }
    if (s->cfg.forced && !s->registered) {
        detach_lost_managers(s);
    }
}

void selfreg_close(struct selfreg *s, void (*cb)(void *data), void *data)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_data = data;
    selfreg_maybe_free(s);
}
