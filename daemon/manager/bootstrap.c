/* See bootstrap.h. */
#include "bootstrap.h"

#include <stdlib.h>
#include <string.h>

#include "allocator.h"
#include "err.h"
#include "pbcopy.h"
#include "pki.h"
#include "token.h"

/* Defaults as Docker's, with swarmd's faster failure detection. */
#define BOOTSTRAP_DEFAULT_TASK_HISTORY 5
#define BOOTSTRAP_DEFAULT_SNAPSHOT_INTERVAL 10000
#define BOOTSTRAP_DEFAULT_HEARTBEAT_TICK 1
#define BOOTSTRAP_DEFAULT_ELECTION_TICK 10
#define BOOTSTRAP_DEFAULT_TICK_MS 100
#define BOOTSTRAP_DEFAULT_DISPATCHER_HEARTBEAT_MS 1000

static void spec_fill_defaults(Swarm__ClusterSpec *spec)
{
    if (spec->orchestration->task_history_retention_limit == 0) {
        spec->orchestration->task_history_retention_limit = BOOTSTRAP_DEFAULT_TASK_HISTORY;
    }
    if (spec->raft->snapshot_interval == 0) {
        spec->raft->snapshot_interval = BOOTSTRAP_DEFAULT_SNAPSHOT_INTERVAL;
    }
    if (spec->raft->heartbeat_tick == 0) {
        spec->raft->heartbeat_tick = BOOTSTRAP_DEFAULT_HEARTBEAT_TICK;
    }
    if (spec->raft->election_tick == 0) {
        spec->raft->election_tick = BOOTSTRAP_DEFAULT_ELECTION_TICK;
    }
    if (spec->raft->tick_ms == 0) {
        spec->raft->tick_ms = BOOTSTRAP_DEFAULT_TICK_MS;
    }
    if (spec->dispatcher->heartbeat_period_ms == 0) {
        spec->dispatcher->heartbeat_period_ms = BOOTSTRAP_DEFAULT_DISPATCHER_HEARTBEAT_MS;
    }
    if (spec->ca_config->node_cert_expiry_s == 0) {
        spec->ca_config->node_cert_expiry_s = BOOTSTRAP_CERT_EXPIRY_S;
    }
}

Swarm__ClusterSpec *bootstrap_spec_build(const Swarm__ClusterSpec *given)
{
    Swarm__ClusterSpec *spec;
    if (given != NULL) {
        spec = pb_copy(&given->base);
    } else {
        spec = calloc(1, sizeof *spec);
        if (spec != NULL) {
            swarm__cluster_spec__init(spec);
        }
    }
    if (spec == NULL) {
        return NULL;
    }
    if (spec->annotations == NULL) {
        if ((spec->annotations = calloc(1, sizeof *spec->annotations)) == NULL) {
            goto err;
        }
        swarm__annotations__init(spec->annotations);
    }
    if (spec->annotations->name == NULL || spec->annotations->name[0] == '\0') {
        free(spec->annotations->name == protobuf_c_empty_string ? NULL : spec->annotations->name);
        if ((spec->annotations->name = strdup("default")) == NULL) {
            goto err;
        }
    }
#define ENSURE(field, type, init)                           \
    if (spec->field == NULL) {                              \
        if ((spec->field = calloc(1, sizeof(type))) == NULL) { \
            goto err;                                       \
        }                                                   \
        init(spec->field);                                  \
    }
    ENSURE(orchestration, Swarm__OrchestrationConfig, swarm__orchestration_config__init);
    ENSURE(raft, Swarm__RaftConfig, swarm__raft_config__init);
    ENSURE(dispatcher, Swarm__DispatcherConfig, swarm__dispatcher_config__init);
    ENSURE(ca_config, Swarm__CAConfig, swarm__caconfig__init);
#undef ENSURE
    spec_fill_defaults(spec);
    return spec;
err:
    swarm__cluster_spec__free_unpacked(spec, NULL);
    return NULL;
}

static int make_tokens(X509 *root, Swarm__JoinTokens *tokens)
{
    unsigned char digest[32];
    char buf[TOKEN_LEN + 1];
    int rv = pki_cert_digest_raw(root, digest);
    if (rv != 0) {
        return rv;
    }
    if ((rv = token_generate(digest, buf)) != 0) {
        return rv;
    }
    if ((tokens->worker = strdup(buf)) == NULL) {
        return SWARM_ENOMEM;
    }
    if ((rv = token_generate(digest, buf)) != 0) {
        return rv;
    }
    return (tokens->manager = strdup(buf)) != NULL ? 0 : SWARM_ENOMEM;
}

/* The `ingress` network of a new swarm, as Docker creates it at init. */
static Swarm__Network *ingress_build(const struct bootstrap_identity *id, const Swarm__InitRequest *req)
{
    Swarm__Network *nw = calloc(1, sizeof *nw);
    Swarm__NetworkSpec *spec = calloc(1, sizeof *spec);
    Swarm__Annotations *ann = calloc(1, sizeof *ann);
    Swarm__IPAMConfig *ipam = calloc(1, sizeof *ipam);
    struct alloc_pool_config pc = {req->default_addr_pool, req->n_default_addr_pool,
                                   req->default_addr_pool_mask_length};
    char errmsg[SWARM_ERRMSG_SIZE];
    if (nw == NULL || spec == NULL || ann == NULL || ipam == NULL) {
        free(nw);
        free(spec);
        free(ann);
        free(ipam);
        return NULL;
    }
    swarm__network__init(nw);
    swarm__network_spec__init(spec);
    swarm__annotations__init(ann);
    spec->annotations = ann;
    nw->spec = spec;
    nw->ipam = ipam;
    spec->ingress = true;
    if ((nw->id = strdup(id->ingress_id != NULL ? id->ingress_id : "")) == NULL ||
        (ann->name = strdup(ALLOC_INGRESS_NAME)) == NULL || (spec->driver = strdup("overlay")) == NULL ||
        alloc_network(spec, &pc, NULL, 0, ipam, &nw->vni, errmsg) != 0) {
        swarm__network__free_unpacked(nw, NULL);
        return NULL;
    }
    return nw;
}

int bootstrap_cmd_build(const struct bootstrap_identity *id, const Swarm__InitRequest *req,
                        Swarm__NodeDescription *description, Swarm__StoreCommand **out)
{
    Swarm__StoreCommand *cmd = calloc(1, sizeof *cmd);
    Swarm__StoreAction **actions = calloc(3, sizeof *actions);
    Swarm__Cluster *cluster = calloc(1, sizeof *cluster);
    Swarm__RootCA *ca = calloc(1, sizeof *ca);
    Swarm__JoinTokens *tokens = calloc(1, sizeof *tokens);
    Swarm__Node *node = calloc(1, sizeof *node);
    Swarm__NodeSpec *nspec = calloc(1, sizeof *nspec);
    Swarm__Annotations *nann = calloc(1, sizeof *nann);
    Swarm__NodeStatus *status = calloc(1, sizeof *status);
    Swarm__ManagerStatus *ms = calloc(1, sizeof *ms);
    char *pem = NULL;
    size_t len;
    char digest[65];
    char ip[64];
    int rv = SWARM_ENOMEM;

    if (!cmd || !actions || !cluster || !ca || !tokens || !node || !nspec || !nann ||
        !status || !ms) {
        goto err;
    }
    swarm__store_command__init(cmd);
    cmd->actions = actions;
    for (int i = 0; i < 3; i++) {
        actions[i] = calloc(1, sizeof **actions);
        if (actions[i] == NULL) {
            goto err;
        }
        swarm__store_action__init(actions[i]);
        actions[i]->kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE;
        cmd->n_actions++;
    }

    swarm__cluster__init(cluster);
    swarm__root_ca__init(ca);
    swarm__join_tokens__init(tokens);
    cluster->id = strdup(id->cluster_id);
    cluster->spec = bootstrap_spec_build(req->spec);
    if (cluster->id == NULL || cluster->spec == NULL) {
        goto err;
    }
    cluster->subnet_size =
        req->default_addr_pool_mask_length != 0 ? req->default_addr_pool_mask_length : ALLOC_DEFAULT_SUBNET_SIZE;
    cluster->default_address_pool = calloc(req->n_default_addr_pool + 1, sizeof(char *));
    if (cluster->default_address_pool == NULL) {
        goto err;
    }
    for (size_t i = 0; i < req->n_default_addr_pool; i++) {
        if ((cluster->default_address_pool[i] = strdup(req->default_addr_pool[i])) == NULL) {
            goto err;
        }
        cluster->n_default_address_pool++;
    }
    if (cluster->n_default_address_pool == 0) {
        if ((cluster->default_address_pool[0] = strdup(ALLOC_DEFAULT_POOL)) == NULL) {
            goto err;
        }
        cluster->n_default_address_pool = 1;
    }
    if ((rv = pki_cert_to_pem(id->root_cert, &pem, &len)) != 0) {
        goto err;
    }
    ca->ca_cert_pem.data = (uint8_t *)pem;
    ca->ca_cert_pem.len = len;
    if ((rv = pki_key_to_pem(id->root_key, &pem, &len)) != 0) {
        goto err;
    }
    ca->ca_key_pem.data = (uint8_t *)pem;
    ca->ca_key_pem.len = len;
    pki_cert_digest_hex(id->root_cert, digest);
    if ((ca->ca_cert_digest = strdup(digest)) == NULL) {
        rv = SWARM_ENOMEM;
        goto err;
    }
    if ((rv = make_tokens(id->root_cert, tokens)) != 0) {
        goto err;
    }
    ca->join_tokens = tokens;
    tokens = NULL;
    cluster->root_ca = ca;
    ca = NULL;
    actions[0]->target_case = SWARM__STORE_ACTION__TARGET_CLUSTER;
    actions[0]->cluster = cluster;
    cluster = NULL;

    swarm__node__init(node);
    swarm__node_spec__init(nspec);
    swarm__annotations__init(nann);
    swarm__node_status__init(status);
    swarm__manager_status__init(ms);
    node->id = strdup(id->node_id);
    nspec->annotations = nann;
    nann = NULL;
    nspec->desired_role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    nspec->availability = req->availability;
    node->spec = nspec;
    nspec = NULL;
    node->description = description;
    description = NULL;
    snprintf(ip, sizeof ip, "%s", id->advertise_addr);
    char *colon = strrchr(ip, ':');
    if (colon != NULL) {
        *colon = '\0';
    }
    status->state = SWARM__NODE_STATE__NODE_STATE_READY;
    status->addr = strdup(ip);
    node->status = status;
    status = NULL;
    ms->raft_id = id->raft_id;
    ms->addr = strdup(id->advertise_addr);
    ms->reachability = SWARM__REACHABILITY__REACHABILITY_REACHABLE;
    node->manager_status = ms;
    ms = NULL;
    node->role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    node->advertise_addr = strdup(id->advertise_addr);
    if (node->id == NULL || node->status->addr == NULL || node->manager_status->addr == NULL ||
        node->advertise_addr == NULL) {
        rv = SWARM_ENOMEM;
        goto err;
    }
    actions[1]->target_case = SWARM__STORE_ACTION__TARGET_NODE;
    actions[1]->node = node;
    node = NULL;
    actions[2]->target_case = SWARM__STORE_ACTION__TARGET_NETWORK;
    if ((actions[2]->network = ingress_build(id, req)) == NULL) {
        rv = SWARM_ENOMEM;
        goto err;
    }
    *out = cmd;
    return 0;

err:
    /* Whatever was linked into cmd is freed with it; the rest by hand. */
    if (cmd != NULL && cmd->actions == actions) {
        swarm__store_command__free_unpacked(cmd, NULL);
    } else {
        free(actions);
        free(cmd);
    }
    if (cluster) swarm__cluster__free_unpacked(cluster, NULL);
    if (ca) swarm__root_ca__free_unpacked(ca, NULL);
    if (tokens) swarm__join_tokens__free_unpacked(tokens, NULL);
    if (node) swarm__node__free_unpacked(node, NULL);
    if (nspec) swarm__node_spec__free_unpacked(nspec, NULL);
    if (nann) swarm__annotations__free_unpacked(nann, NULL);
    if (status) swarm__node_status__free_unpacked(status, NULL);
    if (ms) swarm__manager_status__free_unpacked(ms, NULL);
    if (description) swarm__node_description__free_unpacked(description, NULL);
    return rv;
}

