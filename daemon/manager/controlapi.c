/* The Control service: nodes and the cluster object.
 *
 * Reads answer from this manager's store. Writes become one StoreCommand,
 * compare-and-set on the version the caller read, proposed through raft; the
 * answer is sent once the command is committed and applied:
 *   handler -> validate -> menv_propose -> (commit) -> write_cb -> reply
 * Failures: bad input (INVALID_ARGUMENT / FAILED_PRECONDITION, nothing
 *   proposed); no leader (UNAVAILABLE with Docker's message); the store
 *   refused the command (NOT_FOUND / ALREADY_EXISTS / ABORTED on a version
 *   race); leadership lost before commit (UNAVAILABLE: the client may retry,
 *   the CAS makes a retry safe). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "control.pb-c.h"
#include "err.h"
#include "forward.h"
#include "id.h"
#include "carotate.h"
#include "controlapi.h"
#include "listpage.h"
#include "pbcopy.h"
#include "pki.h"
#include "pkichain.h"
#include "specvalid.h"
#include "token.h"

struct controlapi {
    const struct menv *env;
    struct controlapi_config cfg;
    unsigned pending; /* proposals whose callback has not run */
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

/* ---------------------------------------------------------------- helpers */

static void control_maybe_free(struct controlapi *ctl)
{
    if (!ctl->closing || ctl->pending > 0) {
        return;
    }
    void (*cb)(void *) = ctl->close_cb;
    void *data = ctl->close_data;
    free(ctl);
    if (cb != NULL) {
        cb(data);
    }
}

/* The running manager's Control module, or NULL after answering. */
static struct controlapi *control_require(struct api_call *call, void *data)
{
    const struct manager_slot *slot = mslot_require(call, data);
    if (slot == NULL) {
        return NULL;
    }
    if (slot->control == NULL) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s", MANAGER_NOT_MANAGER_MSG);
        return NULL;
    }
    return slot->control;
}

static bool reads_stale(struct controlapi *ctl)
{
    return !menv_is_leader(ctl->env);
}

void controlapi_decorate_node(struct controlapi *ctl, Swarm__Node *node)
{
    raft_id leader;
    if (reads_stale(ctl) && node->status != NULL && strcmp(node->id, ctl->cfg.node_id) != 0) {
        node->status->state = SWARM__NODE_STATE__NODE_STATE_UNKNOWN;
    }
    if (node->manager_status == NULL) {
        return;
    }
    leader = ctl->cfg.leader_id(ctl->cfg.impl);
    node->manager_status->leader = leader != 0 && node->manager_status->raft_id == leader;
    node->manager_status->reachability = ctl->cfg.reachability(ctl->cfg.impl, node->id);
}

static int find_node(struct controlapi *ctl, struct api_call *call, const char *ref, Swarm__Node **out)
{
    size_t matches = 0;
    int rv;
    if (ref == NULL || ref[0] == '\0') {
        api_call_error(call, API_INVALID_ARGUMENT, "node ID must be provided");
        return -1;
    }
    rv = store_node_find(ctl->env->store, ref, out, &matches);
    if (rv == SWARM_ENOTFOUND) {
        api_call_error(call, API_NOT_FOUND, "node %s not found", ref);
        return -1;
    }
    if (rv == SWARM_EAMBIGUOUS) {
        api_call_error(call, API_FAILED_PRECONDITION, "node %s is ambiguous (%zu matches found)",
                       ref, matches);
        return -1;
    }
    if (rv != 0) {
        api_call_error(call, API_INTERNAL, "reading node %s: %s", ref, swarm_strerror(rv));
        return -1;
    }
    return 0;
}

/* The root CA key never leaves the managers' stores. */
static void cluster_strip_secrets(Swarm__Cluster *c)
{
    if (c->root_ca != NULL && c->root_ca->ca_key_pem.data != NULL) {
        free(c->root_ca->ca_key_pem.data);
        c->root_ca->ca_key_pem.data = NULL;
        c->root_ca->ca_key_pem.len = 0;
    }
    if (c->root_ca != NULL && c->root_ca->root_rotation != NULL) {
        free(c->root_ca->root_rotation->ca_key_pem.data);
        c->root_ca->root_rotation->ca_key_pem.data = NULL;
        c->root_ca->root_rotation->ca_key_pem.len = 0;
    }
}

/* Pending write: the call to answer and what to read back afterwards. */
struct write_ctx {
    struct controlapi *ctl;
    struct api_call *call;
    char id[ID_LEN + 1];
    char ref[128];
};

static struct write_ctx *write_ctx_new(struct controlapi *ctl, struct api_call *call,
                                       const char *id, const char *ref)
{
    struct write_ctx *w = calloc(1, sizeof *w);
    if (w != NULL) {
        w->ctl = ctl;
        w->call = call;
        snprintf(w->id, sizeof w->id, "%s", id);
        snprintf(w->ref, sizeof w->ref, "%s", ref);
    }
    return w;
}

/* Propose `cmd`; on success the module counts it until `cb` ran and called
 * write_ctx_done. On failure the call is answered and `w` freed. */
static void propose_cmd(struct api_call *call, Swarm__StoreCommand *cmd, menv_propose_cb cb,
                        struct write_ctx *w)
{
    int rv = menv_propose(w->ctl->env, cmd, cb, w);
    if (rv != 0) {
        mslot_reply_error(call, rv, "proposing the change");
        free(w);
        return;
    }
    w->ctl->pending++;
}

static void write_ctx_done(struct write_ctx *w)
{
    struct controlapi *ctl = w->ctl;
    free(w);
    ctl->pending--;
    control_maybe_free(ctl);
}

static void propose_one(struct api_call *call, Swarm__StoreAction *action, menv_propose_cb cb,
                        struct write_ctx *w)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction *actions[1] = {action};
    if (w == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    cmd.n_actions = 1;
    cmd.actions = actions;
    propose_cmd(call, &cmd, cb, w);
}

/* ------------------------------------------------------------------ nodes */

static void get_node_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__GetNodeRequest *req = (const Swarm__GetNodeRequest *)msg;
    Swarm__GetNodeResponse resp = SWARM__GET_NODE_RESPONSE__INIT;
    struct controlapi *ctl = control_require(call, data);
    Swarm__Node *node;
    if (ctl == NULL || find_node(ctl, call, req->node_id, &node) != 0) {
        return;
    }
    controlapi_decorate_node(ctl, node);
    resp.node = node;
    resp.stale = reads_stale(ctl);
    api_call_reply(call, &resp.base);
    swarm__node__free_unpacked(node, NULL);
}

static const char *node_name(const Swarm__Node *n)
{
    if (n->spec && n->spec->annotations && n->spec->annotations->name &&
        n->spec->annotations->name[0]) {
        return n->spec->annotations->name;
    }
    return n->description ? n->description->hostname : "";
}

/* `node ls -f`: id=<prefix>, name=<prefix>, role=manager|worker,
 * membership=accepted. Returns 1 to keep, 0 to drop, -1 on a bad filter. */
static int node_filter_match(const Swarm__Node *n, const char *filter)
{
    const char *eq = strchr(filter, '=');
    size_t klen;
    const char *val;
    if (eq == NULL) {
        return -1;
    }
    klen = (size_t)(eq - filter);
    val = eq + 1;
    if (klen == 2 && strncmp(filter, "id", 2) == 0) {
        return strncmp(n->id, val, strlen(val)) == 0;
    }
    if (klen == 4 && strncmp(filter, "name", 4) == 0) {
        return strncmp(node_name(n), val, strlen(val)) == 0;
    }
    if (klen == 4 && strncmp(filter, "role", 4) == 0) {
        if (strcmp(val, "manager") != 0 && strcmp(val, "worker") != 0) {
            return -1;
        }
        return (n->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) == (strcmp(val, "manager") == 0);
    }
    if (klen == 10 && strncmp(filter, "membership", 10) == 0) {
        if (strcmp(val, "accepted") != 0 && strcmp(val, "pending") != 0) {
            return -1;
        }
        return strcmp(val, "accepted") == 0;
    }
    return -1;
}

static int node_id_cmp(const void *a, const void *b)
{
    return strcmp((*(Swarm__Node *const *)a)->id, (*(Swarm__Node *const *)b)->id);
}

static void list_nodes_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__ListNodesRequest *req = (const Swarm__ListNodesRequest *)msg;
    Swarm__ListNodesResponse resp = SWARM__LIST_NODES_RESPONSE__INIT;
    struct controlapi *ctl = control_require(call, data);
    Swarm__Node **nodes = NULL, **kept;
    const char **ids = NULL;
    struct msgchunk_page pg;
    size_t n = 0, nkept = 0;
    int rv;
    if (ctl == NULL) {
        return;
    }
    rv = store_node_list(ctl->env->store, &nodes, &n);
    if (rv != 0) {
        api_call_error(call, API_INTERNAL, "listing nodes: %s", swarm_strerror(rv));
        return;
    }
    kept = calloc(n ? n : 1, sizeof *kept);
    ids = calloc(n ? n : 1, sizeof *ids);
    if (kept == NULL || ids == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        for (size_t f = 0; f < req->n_filters && keep == 1; f++) {
            keep = node_filter_match(nodes[i], req->filters[f]);
        }
        if (keep < 0) {
            api_call_error(call, API_INVALID_ARGUMENT, "invalid filter '%s'",
                           req->filters[0]);
            goto out;
        }
        if (keep) {
            controlapi_decorate_node(ctl, nodes[i]);
            kept[nkept++] = nodes[i];
        }
    }
    qsort(kept, nkept, sizeof *kept, node_id_cmp);
    for (size_t i = 0; i < nkept; i++) {
        ids[i] = kept[i]->id;
    }
    if (listpage_cut(call, (ProtobufCMessage *const *)kept, ids, nkept, 0, req->page_size,
                          req->page_token, &pg) != 0) {
        goto out;
    }
    resp.nodes = kept + pg.start;
    resp.n_nodes = pg.count;
    resp.next_page_token = pg.more ? kept[pg.start + pg.count - 1]->id : "";
    resp.stale = reads_stale(ctl);
    api_call_reply(call, &resp.base);
out:
    free(ids);
    free(kept);
    store_node_free_list(nodes, n);
}

static void node_write_cb(int status, const struct store_result *res, void *data)
{
    struct write_ctx *w = data;
    struct controlapi *ctl = w->ctl;
    Swarm__UpdateNodeResponse resp = SWARM__UPDATE_NODE_RESPONSE__INIT;
    Swarm__Node *node = NULL;
    if (status != 0 || res->status != 0) {
        mslot_reply_error(w->call, status != 0 ? status : res->status,
                          status != 0 ? "updating node" : res->message);
    } else if (store_node_get(ctl->env->store, w->id, &node) == 0) {
        controlapi_decorate_node(ctl, node);
        resp.node = node;
        api_call_reply(w->call, &resp.base);
        swarm__node__free_unpacked(node, NULL);
    } else {
        api_call_error(w->call, API_NOT_FOUND, "node %s not found", w->ref);
    }
    write_ctx_done(w);
}

static size_t count_managers(struct controlapi *ctl)
{
    Swarm__Node **nodes = NULL;
    size_t n = 0, managers = 0;
    if (store_node_list(ctl->env->store, &nodes, &n) != 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        managers += nodes[i]->spec != NULL &&
                    nodes[i]->spec->desired_role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    }
    store_node_free_list(nodes, n);
    return managers;
}

/* Would the raft voters left after demoting `node` still have a reachable
 * majority? (Counted from the configuration and this manager's live probes;
 * a manager that is not a voter, e.g. one left out by --force-new-cluster,
 * changes nothing.) */
static bool demotion_loses_quorum(struct controlapi *ctl, const Swarm__Node *node)
{
    const struct raft_configuration *conf = ctl->cfg.raft_members(ctl->cfg.impl);
    Swarm__Node **nodes = NULL;
    size_t n = 0, left = 0, reachable = 0;
    bool voter = false;
    raft_id id = node->manager_status != NULL ? node->manager_status->raft_id : 0;

    for (unsigned j = 0; j < conf->n; j++) {
        voter |= id != 0 && conf->servers[j].id == id && conf->servers[j].role == RAFT_VOTER;
    }
    if (!voter || store_node_list(ctl->env->store, &nodes, &n) != 0) {
        return false;
    }
    for (unsigned j = 0; j < conf->n; j++) {
        const struct raft_server *srv = &conf->servers[j];
        if (srv->role != RAFT_VOTER || srv->id == id) {
            continue;
        }
        left++;
        for (size_t i = 0; i < n; i++) {
            if (nodes[i]->manager_status != NULL && nodes[i]->manager_status->raft_id == srv->id &&
                ctl->cfg.reachability(ctl->cfg.impl, nodes[i]->id) == SWARM__REACHABILITY__REACHABILITY_REACHABLE) {
                reachable++;
            }
        }
    }
    store_node_free_list(nodes, n);
    return reachable <= left / 2;
}

static int validate_node_spec(struct api_call *call, const Swarm__NodeSpec *spec)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    if (spec != NULL && spec_validate_node(spec, errmsg) != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "%s", errmsg);
        return -1;
    }
    if (spec == NULL) {
        api_call_error(call, API_INVALID_ARGUMENT, "node spec must be provided");
        return -1;
    }
    if (spec->availability > SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN) {
        api_call_error(call, API_INVALID_ARGUMENT, "invalid availability %d", spec->availability);
        return -1;
    }
    if (spec->desired_role > SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        api_call_error(call, API_INVALID_ARGUMENT, "invalid role %d", spec->desired_role);
        return -1;
    }
    for (size_t i = 0; spec->annotations != NULL && i < spec->annotations->n_labels; i++) {
        const char *k = spec->annotations->labels[i]->key;
        if (k == NULL || k[0] == '\0') {
            api_call_error(call, API_INVALID_ARGUMENT, "label key must not be empty");
            return -1;
        }
    }
    return 0;
}

static void update_node_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__UpdateNodeRequest *req = (const Swarm__UpdateNodeRequest *)msg;
    struct controlapi *ctl = control_require(call, data);
    Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
    Swarm__NodeSpec *old_spec;
    Swarm__Node *node;
    if (ctl == NULL || validate_node_spec(call, req->spec) != 0 ||
        find_node(ctl, call, req->node_id, &node) != 0) {
        return;
    }
    if (req->node_version != node->meta->version) {
        api_call_error(call, API_ABORTED,
                       "update out of sequence: node %s is at version %llu, not %llu",
                       req->node_id, (unsigned long long)node->meta->version,
                       (unsigned long long)req->node_version);
        goto out;
    }
    if (node->spec->desired_role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
        req->spec->desired_role == SWARM__NODE_ROLE__NODE_ROLE_WORKER) {
        if (count_managers(ctl) <= 1) {
            api_call_error(call, API_FAILED_PRECONDITION,
                           "attempting to demote the last manager of the swarm");
            goto out;
        }
        if (demotion_loses_quorum(ctl, node)) {
            api_call_error(call, API_FAILED_PRECONDITION,
                           "can't remove member from the raft: this would result in a loss of "
                           "quorum (%s)",
                           "too few of the remaining managers are reachable");
            goto out;
        }
    }
    old_spec = node->spec;
    node->spec = (Swarm__NodeSpec *)req->spec;
    action.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE;
    action.target_case = SWARM__STORE_ACTION__TARGET_NODE;
    action.node = node;
    propose_one(call, &action, node_write_cb, write_ctx_new(ctl, call, node->id, req->node_id));
    node->spec = old_spec;
out:
    swarm__node__free_unpacked(node, NULL);
}

static void remove_node_done_cb(int status, const struct store_result *res, void *data)
{
    struct write_ctx *w = data;
    Swarm__RemoveNodeResponse resp = SWARM__REMOVE_NODE_RESPONSE__INIT;
    if (status != 0 || res->status != 0) {
        mslot_reply_error(w->call, status != 0 ? status : res->status,
                          status != 0 ? "removing node" : res->message);
    } else {
        api_call_reply(w->call, &resp.base);
    }
    write_ctx_done(w);
}

/* The node goes and, in the same command, its certificates join the
 * cluster's revoked list (swarmkit's BlacklistedCertificates) until any
 * certificate it may hold has expired: every manager then refuses them, even
 * one whose store would still know the node. Compare-and-set on both. */
static void propose_removal(struct controlapi *ctl, struct api_call *call,
                            Swarm__StoreAction *remove, const char *ref)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction update = SWARM__STORE_ACTION__INIT;
    Swarm__StoreAction *actions[2] = {remove, &update};
    struct write_ctx *w = write_ctx_new(ctl, call, remove->node->id, ref);
    Swarm__Cluster *c = NULL;
    int64_t now_s = menv_now(ctl->env) / 1000;
    int64_t lifetime = PKI_NODE_LIFETIME_S;
    if (w == NULL || store_cluster_get_default(ctl->env->store, &c) != 0) {
        api_call_error(call, API_UNAVAILABLE, "the cluster object is not available");
        goto out;
    }
    if (c->spec != NULL && c->spec->ca_config != NULL &&
        c->spec->ca_config->node_cert_expiry_s > lifetime) {
        lifetime = c->spec->ca_config->node_cert_expiry_s;
    }
    if (authz_revoke(c, remove->node->id, now_s + lifetime, now_s) != 0) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    update.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE;
    update.target_case = SWARM__STORE_ACTION__TARGET_CLUSTER;
    update.cluster = c;
    cmd.n_actions = 2;
    cmd.actions = actions;
    propose_cmd(call, &cmd, remove_node_done_cb, w);
    w = NULL;
out:
    free(w);
    if (c != NULL) {
        swarm__cluster__free_unpacked(c, NULL);
    }
}

static void remove_node_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__RemoveNodeRequest *req = (const Swarm__RemoveNodeRequest *)msg;
    struct controlapi *ctl = control_require(call, data);
    Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
    Swarm__Node *node;
    if (ctl == NULL || find_node(ctl, call, req->node_id, &node) != 0) {
        return;
    }
    if (node->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ||
        node->spec->desired_role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        api_call_error(call, API_FAILED_PRECONDITION,
                       "node %s is a cluster manager and is a member of the raft cluster. "
                       "It must be demoted to worker before removal",
                       req->node_id);
        goto out;
    }
    if (!req->force && node->status != NULL &&
        node->status->state == SWARM__NODE_STATE__NODE_STATE_READY) {
        api_call_error(call, API_FAILED_PRECONDITION,
                       "node %s is not down and can't be removed", req->node_id);
        goto out;
    }
    action.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE;
    action.target_case = SWARM__STORE_ACTION__TARGET_NODE;
    action.node = node;
    propose_removal(ctl, call, &action, req->node_id);
out:
    swarm__node__free_unpacked(node, NULL);
}

/* --------------------------------------------------------------- clusters */

static int find_cluster(struct controlapi *ctl, struct api_call *call, const char *id,
                        Swarm__Cluster **out)
{
    int rv = (id == NULL || id[0] == '\0') ? store_cluster_get_default(ctl->env->store, out)
                                           : store_cluster_get(ctl->env->store, id, out);
    if (rv == SWARM_ENOTFOUND) {
        api_call_error(call, API_NOT_FOUND, "cluster %s not found", id ? id : "");
        return -1;
    }
    if (rv != 0) {
        api_call_error(call, API_INTERNAL, "reading the cluster: %s", swarm_strerror(rv));
        return -1;
    }
    return 0;
}

static void get_cluster_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__GetClusterRequest *req = (const Swarm__GetClusterRequest *)msg;
    Swarm__GetClusterResponse resp = SWARM__GET_CLUSTER_RESPONSE__INIT;
    struct controlapi *ctl = control_require(call, data);
    Swarm__Cluster *c;
    if (ctl == NULL || find_cluster(ctl, call, req->cluster_id, &c) != 0) {
        return;
    }
    cluster_strip_secrets(c);
    resp.cluster = c;
    api_call_reply(call, &resp.base);
    swarm__cluster__free_unpacked(c, NULL);
}

static void list_clusters_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    Swarm__ListClustersResponse resp = SWARM__LIST_CLUSTERS_RESPONSE__INIT;
    struct controlapi *ctl = control_require(call, data);
    Swarm__Cluster **list = NULL;
    size_t n = 0;
    if (ctl == NULL) {
        return;
    }
    if (store_cluster_list(ctl->env->store, &list, &n) != 0) {
        api_call_error(call, API_INTERNAL, "listing clusters failed");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        cluster_strip_secrets(list[i]);
    }
    resp.clusters = list;
    resp.n_clusters = n;
    api_call_reply(call, &resp.base);
    store_cluster_free_list(list, n);
}

static int validate_cluster_spec(struct api_call *call, const Swarm__ClusterSpec *spec)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    if (spec_validate_cluster(spec, errmsg) != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "%s", errmsg);
        return -1;
    }
    if (spec == NULL || spec->orchestration == NULL || spec->raft == NULL ||
        spec->dispatcher == NULL || spec->ca_config == NULL) {
        api_call_error(call, API_INVALID_ARGUMENT, "a complete cluster spec must be provided");
        return -1;
    }
    if (spec->orchestration->task_history_retention_limit < 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "task history retention limit must be >= 0");
        return -1;
    }
    if (spec->dispatcher->heartbeat_period_ms < 100) {
        api_call_error(call, API_INVALID_ARGUMENT,
                       "dispatcher heartbeat period must be at least 100ms");
        return -1;
    }
    if (pki_check_cert_expiry(spec->ca_config->node_cert_expiry_s, errmsg) != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "%s", errmsg);
        return -1;
    }
    if (spec->raft->election_tick <= spec->raft->heartbeat_tick || spec->raft->heartbeat_tick == 0) {
        api_call_error(call, API_INVALID_ARGUMENT,
                       "election tick must be greater than heartbeat tick (and both above 0)");
        return -1;
    }
    return 0;
}

static void cluster_write_cb(int status, const struct store_result *res, void *data)
{
    struct write_ctx *w = data;
    struct controlapi *ctl = w->ctl;
    Swarm__UpdateClusterResponse resp = SWARM__UPDATE_CLUSTER_RESPONSE__INIT;
    Swarm__Cluster *c = NULL;
    if (status != 0 || res->status != 0) {
        mslot_reply_error(w->call, status != 0 ? status : res->status,
                          status != 0 ? "updating the cluster" : res->message);
    } else if (store_cluster_get(ctl->env->store, w->id, &c) == 0) {
        cluster_strip_secrets(c);
        resp.cluster = c;
        api_call_reply(w->call, &resp.base);
        swarm__cluster__free_unpacked(c, NULL);
    } else {
        api_call_error(w->call, API_INTERNAL, "cluster vanished after update");
    }
    write_ctx_done(w);
}

static int rotate_token(X509 *root, char **token)
{
    unsigned char digest[32];
    char buf[TOKEN_LEN + 1];
    int rv = pki_cert_digest_raw(root, digest);
    if (rv == 0) {
        rv = token_generate(digest, buf);
    }
    if (rv == 0) {
        char *copy = strdup(buf);
        if (copy == NULL) {
            return SWARM_ENOMEM; /* the old token stays */
        }
        free(*token);
        *token = copy;
    }
    return rv;
}

static void update_cluster_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__UpdateClusterRequest *req = (const Swarm__UpdateClusterRequest *)msg;
    struct controlapi *ctl = control_require(call, data);
    Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
    Swarm__ClusterSpec *old_spec, *spec = NULL;
    Swarm__Cluster *c;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    if (ctl == NULL || validate_cluster_spec(call, req->spec) != 0 ||
        find_cluster(ctl, call, req->cluster_id, &c) != 0) {
        return;
    }
    if (req->cluster_version != c->meta->version) {
        api_call_error(call, API_ABORTED,
                       "update out of sequence: cluster is at version %llu, not %llu",
                       (unsigned long long)c->meta->version,
                       (unsigned long long)req->cluster_version);
        goto out;
    }
    if (req->rotation != NULL &&
        ((req->rotation->worker_join_token &&
          rotate_token(ctl->cfg.root_cert(ctl->cfg.impl), &c->root_ca->join_tokens->worker) != 0) ||
         (req->rotation->manager_join_token &&
          rotate_token(ctl->cfg.root_cert(ctl->cfg.impl), &c->root_ca->join_tokens->manager) != 0))) {
        api_call_error(call, API_INTERNAL, "could not generate a new join token");
        goto out;
    }
    /* swarm ca --rotate: the new root goes into root_ca.root_rotation; the
     * signing cert and key given are consumed, never kept in the spec. */
    int rv = carotate_start(c, req->spec, errmsg);
    if (rv != 0) {
        api_call_error(call, rv == SWARM_EINVAL ? API_INVALID_ARGUMENT : API_INTERNAL, "%s",
                       errmsg);
        goto out;
    }
    spec = pb_copy(&req->spec->base);
    if (spec == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    free(spec->ca_config->signing_ca_cert.data);
    free(spec->ca_config->signing_ca_key.data);
    spec->ca_config->signing_ca_cert.data = spec->ca_config->signing_ca_key.data = NULL;
    spec->ca_config->signing_ca_cert.len = spec->ca_config->signing_ca_key.len = 0;
    if (spec->ca_config->force_rotate < c->spec->ca_config->force_rotate) {
        spec->ca_config->force_rotate = c->spec->ca_config->force_rotate;
    }
    old_spec = c->spec;
    c->spec = spec;
    action.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE;
    action.target_case = SWARM__STORE_ACTION__TARGET_CLUSTER;
    action.cluster = c;
    propose_one(call, &action, cluster_write_cb, write_ctx_new(ctl, call, c->id, c->id));
    c->spec = old_spec;
    swarm__cluster_spec__free_unpacked(spec, NULL);
out:
    swarm__cluster__free_unpacked(c, NULL);
}

/* ---------------------------------------------------------- registration */

void controlapi_register(struct api_server *server, struct manager_slot *slot)
{
    /* Everything runs on the leader; reads fall back to the local store
     * when no leader can be reached (forward.c). */
    static const struct {
        const char *method;
        api_handler_cb cb;
        bool write;
    } methods[] = {
        {"GetNode", get_node_cb, false},       {"ListNodes", list_nodes_cb, false},
        {"UpdateNode", update_node_cb, true},  {"RemoveNode", remove_node_cb, true},
        {"GetCluster", get_cluster_cb, false}, {"ListClusters", list_clusters_cb, false},
        {"UpdateCluster", update_cluster_cb, true},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        forward_register_routed(server, &swarm__control__descriptor, methods[i].method,
                                API_ROLE_LOCAL | API_ROLE_MANAGER, !methods[i].write,
                                methods[i].cb, slot);
    }
}

/* ------------------------------------------------------------ lifecycle */

struct controlapi *controlapi_new(const struct menv *env, const struct controlapi_config *cfg)
{
    struct controlapi *ctl = calloc(1, sizeof *ctl);
    if (ctl != NULL) {
        ctl->env = env;
        ctl->cfg = *cfg;
    }
    return ctl;
}

void controlapi_close(struct controlapi *ctl, void (*cb)(void *data), void *data)
{
    ctl->closing = true;
    ctl->close_cb = cb;
    ctl->close_data = data;
    control_maybe_free(ctl);
}
