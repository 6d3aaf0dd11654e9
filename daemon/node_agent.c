/* The node's agent and its role changes.
 *
 * Every active node runs an agent (agent/agent.h) with the certificate in
 * DIR/certificates, trying its own manager first when it is one.
 *
 * Promotion or demotion (the leader's role manager changes Node.role; the
 * agent's session brings the node object here):
 *   node_cb: role differs from ours -> join_renew (new key, CSR, no token;
 *   the manager signs for the role the store gives us) -> certificates and
 *   local state written -> promoted: manager_open (joins raft as the leader
 *   adds us); demoted: manager closed, its raft log and store erased, the
 *   TLS listener closed -> the agent continues with the new certificate.
 * The node stopping meanwhile: the renewal is cancelled, a demoted manager
 *   finishes closing, and the node is freed only after their callbacks.
 * Failures: the renewal failed (manager unreachable...): retried on the next
 *   node message; the switch never leaves a half-written state on disk
 *   because files are written only after the certificate arrived. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "join.h"
#include "log.h"
#include "node_int.h"
#include "pki.h"

static int load_client_ctx(struct swarm_node *n, SSL_CTX **ctx, X509 **root_out, char *errmsg)
{
    struct node_identity id;
    int rv = node_identity_load(n, &id, errmsg);
    if (rv == 0) {
        rv = node_identity_client_ctx(&id, ctx, errmsg);
    }
    if (rv == 0 && root_out != NULL) {
        *root_out = id.root;
        id.root = NULL;
    }
    node_identity_free(&id);
    return rv;
}

/* ---------------------------------------------------------- role changes */

struct role_switch {
    struct swarm_node *n;
    Swarm__NodeRole role;
};

static void erase_manager_files(struct swarm_node *n);

static void demoted_closed_cb(void *data)
{
    struct swarm_node *n = data;
    /* Stopping: the node waited for this; its manager files stay (the next
     * start finds a worker's state and no store to open). */
    if (node_call_end(n)) {
        return;
    }
    erase_manager_files(n);
    n->role_switching = false;
    log_info("node", "demoted: this node is now a worker");
}

static void promoted_ready_cb(struct manager *m, int status, const char *errmsg, void *data)
{
    struct swarm_node *n = data;
    n->role_switching = false;
    if (status != 0) {
        log_error("node", "promoted, but the manager failed to start: %s",
                  errmsg ? errmsg : swarm_strerror(status));
        return;
    }
    log_info("node", "promoted: this node is now a manager");
}

static void renewed_cb(int status, const char *errmsg, struct join_result *res, void *data)
{
    struct role_switch *rs = data;
    struct swarm_node *n = rs->n;
    char emsg[SWARM_ERRMSG_SIZE] = "";
    Swarm__LocalState *ls = NULL;
    int rv;

    free(rs);
    n->role_req = NULL;
    if (node_call_end(n)) {
        join_result_free(res);
        return;
    }
    if (status != 0) {
        log_warn("node", "certificate renewal for a role change failed: %s", errmsg);
        n->role_switching = false;
        return;
    }
    rv = node_local_state_load(n, &ls, emsg);
    if (rv == 0 && ls == NULL) {
        rv = SWARM_ESTATE;
    }
    /* Files, the agent's context and its TLS info; the manager, if any, is
     * about to be opened or closed for the new role. */
    if (rv == 0) {
        rv = node_certs_install(n, res, false, emsg);
    }
    if (rv == 0) {
        ls->role = res->resp->role;
        ls->raft_id = res->resp->raft_id;
        rv = node_local_state_save(n, ls, emsg);
    }
    if (rv != 0) {
        log_error("node", "role change: %s", emsg[0] ? emsg : swarm_strerror(rv));
        n->role_switching = false;
        goto out;
    }
    if (res->resp->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        struct manager_config cfg = node_manager_cfg(n);
        struct manager *m = NULL;
        if (n->worker_state != NULL) {
            swarm__local_state__free_unpacked(n->worker_state, NULL);
            n->worker_state = NULL;
        }
        n->mslot.worker = false;
        cfg.seed_peers = res->resp->managers;
        cfg.n_seed_peers = res->resp->n_managers;
        rv = manager_open(n->loop, &cfg, ls, false, promoted_ready_cb, n, &m, emsg);
        n->mslot.m = m;
        if (rv != 0) {
            promoted_ready_cb(m, rv, emsg, n);
        }
    } else {
        struct manager *m = n->mslot.m;
        n->mslot.m = NULL;
        if (n->worker_state != NULL) {
            swarm__local_state__free_unpacked(n->worker_state, NULL);
        }
        n->worker_state = ls; /* ownership moves: nothing to allocate */
        ls = NULL;
        n->mslot.worker = true;
        if (m != NULL) {
            api_server_close_tls(n->api);
            n->calls_pending++;
            manager_close(m, demoted_closed_cb, n);
        } else {
            n->role_switching = false;
        }
    }
out:
    if (ls != NULL) {
        swarm__local_state__free_unpacked(ls, NULL);
    }
    join_result_free(res);
}

static void agent_node_cb(const Swarm__Node *node, void *data)
{
    struct swarm_node *n = data;
    Swarm__NodeRole ours = n->mslot.m != NULL ? SWARM__NODE_ROLE__NODE_ROLE_MANAGER
                                              : SWARM__NODE_ROLE__NODE_ROLE_WORKER;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct role_switch *rs;
    SSL_CTX *ctx = NULL;
    X509 *root = NULL;

    if (n->stopping || n->role_switching || node->role == ours || n->agent == NULL) {
        return;
    }
    /* A manager whose raft membership is being removed still leads its own
     * removal; the node object says worker only once that is done. */
    rs = calloc(1, sizeof *rs);
    if (rs == NULL || load_client_ctx(n, &ctx, &root, errmsg) != 0) {
        log_warn("node", "role change to %s: %s",
                 node->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker", errmsg);
        free(rs);
        return;
    }
    rs->n = n;
    rs->role = node->role;
    n->role_switching = true;
    log_info("node", "the swarm made this node a %s: renewing its certificate",
             node->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker");
    if (join_renew(n->loop, agent_manager_addr(n->agent), ctx, root, renewed_cb, rs,
                   &n->role_req, errmsg) != 0) {
        log_warn("node", "role change: %s", errmsg);
        n->role_switching = false;
        free(rs);
    } else {
        n->calls_pending++;
    }
    SSL_CTX_free(ctx);
    X509_free(root);
}

/* Persist the managers the leader announced, for the next start. */
static void agent_managers_cb(Swarm__ManagerPeer *const *peers, size_t n_peers, void *data)
{
    struct swarm_node *n = data;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    Swarm__LocalState *ls = NULL;
    char **addrs;
    bool same = true;

    if (n->stopping || node_local_state_load(n, &ls, errmsg) != 0 || ls == NULL) {
        return;
    }
    same = ls->n_managers == n_peers;
    for (size_t i = 0; same && i < n_peers; i++) {
        same = strcmp(ls->managers[i], peers[i]->addr) == 0;
    }
    if (!same) {
        size_t got = 0;
        addrs = calloc(n_peers + 1, sizeof *addrs);
        while (addrs != NULL && got < n_peers && (addrs[got] = strdup(peers[got]->addr)) != NULL) {
            got++;
        }
        if (addrs == NULL || got < n_peers) {
            for (size_t i = 0; i < got; i++) {
                free(addrs[i]);
            }
            free(addrs);
            log_warn("node", "saving the manager list: out of memory");
        } else {
            for (size_t i = 0; i < ls->n_managers; i++) {
                free(ls->managers[i]);
            }
            free(ls->managers);
            ls->managers = addrs;
            ls->n_managers = n_peers;
            if (node_local_state_save(n, ls, errmsg) != 0) {
                log_warn("node", "saving the manager list: %s", errmsg);
            }
        }
    }
    swarm__local_state__free_unpacked(ls, NULL);
}

static void agent_removed_cb(void *data)
{
    node_leave_removed(data);
}

/* ------------------------------------------------------------ start/stop */

int node_agent_start(struct swarm_node *n, char *errmsg)
{
    Swarm__LocalState *ls = NULL;
    struct agent_config cfg = {0};
    const char **managers = NULL;
    size_t nm = 0;
    SSL_CTX *ctx = NULL;
    int rv;

    if (n->agent != NULL) {
        return 0;
    }
    rv = node_local_state_load(n, &ls, errmsg);
    if (rv == 0 && ls == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "not in a swarm");
        return SWARM_ESTATE;
    }
    if (rv == 0) {
        rv = load_client_ctx(n, &ctx, NULL, errmsg);
    }
    if (rv != 0) {
        goto out;
    }
    managers = calloc(ls->n_managers + 2, sizeof *managers);
    if (managers == NULL) {
        rv = SWARM_ENOMEM;
        goto out;
    }
    /* A manager tries itself first: it knows best who leads. */
    if (ls->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        managers[nm++] = ls->advertise_addr;
    }
    for (size_t i = 0; i < ls->n_managers; i++) {
        if (nm == 0 || strcmp(ls->managers[i], managers[0]) != 0) {
            managers[nm++] = ls->managers[i];
        }
    }
    cfg.loop = n->loop;
    cfg.state_dir = n->state_dir;
    cfg.task_dir = n->task_dir;
    cfg.node_id = ls->node_id;
    cfg.client_ctx = ctx;
    cfg.managers = managers;
    cfg.n_managers = nm;
    cfg.executor = n->executor[0] ? n->executor : "process";
    cfg.insecure_registries = n->insecure_registries;
    cfg.n_insecure_registries = n->n_insecure_registries;
    cfg.hostname = n->hostname[0] ? n->hostname : NULL;
    /* VXLAN runs between the nodes' advertised addresses (the address the
     * managers record as the node's, Node.status.addr). */
    char underlay[ADDR_STRLEN];
    int port;
    if (addr_split(ls->advertise_addr, underlay, &port) == 0 && !addr_is_unspecified(underlay)) {
        cfg.underlay_ip = underlay;
    }
    cfg.managers_cb = agent_managers_cb;
    cfg.node_cb = agent_node_cb;
    cfg.removed_cb = agent_removed_cb;
    cfg.root_ca_cb = node_certs_root_ca_cb;
    cfg.renew_cb = node_certs_renew_cb;
    cfg.conn_error_cb = node_certs_conn_error_cb;
    cfg.data = n;
    /* The image store opens with the agent (its auto-prune runs from then
     * on); a node that cannot open it still runs process tasks. */
    char img_err[SWARM_ERRMSG_SIZE];
    cfg.images = node_images(n, img_err); /* the container executor's, borrowed */
    rv = agent_start(&cfg, &n->agent, errmsg);
    if (rv == 0) {
        node_certs_start(n);
    }
out:
    free(managers);
    SSL_CTX_free(ctx);
    if (ls != NULL) {
        swarm__local_state__free_unpacked(ls, NULL);
    }
    return rv;
}

struct agent_stop_ctx {
    void (*done)(void *data);
    void *data;
};

static void agent_stopped_cb(void *data)
{
    struct agent_stop_ctx *c = data;
    void (*done)(void *) = c->done;
    void *d = c->data;
    free(c);
    if (done != NULL) {
        done(d);
    }
}

void node_agent_stop(struct swarm_node *n, bool stop_tasks, void (*done)(void *data), void *data)
{
    struct agent *a = n->agent;
    struct agent_stop_ctx *c;
    n->agent = NULL;
    node_certs_stop(n);
    if (a == NULL || (c = malloc(sizeof *c)) == NULL) {
        if (a != NULL) {
            agent_stop(a, stop_tasks, NULL, NULL);
        }
        if (done != NULL) {
            done(data);
        }
        return;
    }
    c->done = done;
    c->data = data;
    agent_stop(a, stop_tasks, agent_stopped_cb, c);
}

/* ------------------------------------------------------------- helpers */

/* What only a manager keeps: its raft log and its copy of the store. */
static void erase_manager_files(struct swarm_node *n)
{
    (void)statedir_erase(n->state_dir, STATEDIR_PART_MANAGER);
}
