/* The CA service on the cluster port.
 *
 * GetRootCACertificate may be called by anyone: a joining node fetches the
 * root and checks it against the digest in its token before it sends
 * anything secret.
 *
 * IssueNodeCertificate, with a join token (anyone) or without (renewal by a
 * node over mTLS), always decided by the leader:
 *   token -> role (constant-time compare with both tokens) -> CSR verified ->
 *   node ID (and raft id for managers) -> certificate signed by the root CA ->
 *   Node object committed through raft -> answer.
 * Failures: bad token / CSR -> INVALID_ARGUMENT and nothing written; not the
 *   leader -> forwarded to the leader by the caller's handler wrapper; raft
 *   failure -> UNAVAILABLE and no certificate handed out (the node is only
 *   told once its Node object is committed). */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "ca.pb-c.h"
#include "err.h"
#include "id.h"
#include "carotate.h"
#include "caserver.h"
#include "forward.h"
#include "log.h"
#include "pbcopy.h"
#include "pki.h"
#include "pkichain.h"
#include "specvalid.h"
#include "token.h"

#define CA_MSG_BAD_TOKEN "A valid join token is necessary to join this cluster"

struct caserver {
    const struct menv *env;
    struct caserver_config cfg;
    unsigned pending; /* proposals whose callback has not run */
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

static void ca_maybe_free(struct caserver *ca)
{
    if (!ca->closing || ca->pending > 0) {
        return;
    }
    void (*cb)(void *) = ca->close_cb;
    void *data = ca->close_data;
    free(ca);
    if (cb != NULL) {
        cb(data);
    }
}

static void get_root_ca_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const struct manager_slot *slot = data;
    Swarm__GetRootCACertificateResponse resp = SWARM__GET_ROOT_CACERTIFICATE_RESPONSE__INIT;
    X509 *root = slot->ca != NULL ? slot->ca->cfg.root_cert(slot->ca->cfg.impl) : NULL;
    char *pem = NULL;
    size_t len = 0;
    if (root == NULL) {
        api_call_error(call, API_UNAVAILABLE, "%s", MANAGER_NOT_MANAGER_MSG);
        return;
    }
    if (pki_cert_to_pem(root, &pem, &len) != 0) {
        api_call_error(call, API_INTERNAL, "could not encode the root CA certificate");
        return;
    }
    resp.certificate.data = (uint8_t *)pem;
    resp.certificate.len = len;
    api_call_reply(call, &resp.base);
    free(pem);
}

struct issue_ctx {
    struct caserver *ca;
    struct api_call *call;
    Swarm__IssueNodeCertificateResponse resp;
    char node_id[ID_LEN + 1];
    char cluster_id[ID_LEN + 1];
    char *cert_pem;
};

static void issue_ctx_free(struct issue_ctx *x)
{
    free(x->cert_pem);
    for (size_t i = 0; i < x->resp.n_managers; i++) {
        free(x->resp.managers[i]->node_id);
        free(x->resp.managers[i]->addr);
        free(x->resp.managers[i]);
    }
    free(x->resp.managers);
    free(x);
}

/* Manager addresses the new node can fail over to. */
static void fill_managers(struct caserver *ca, Swarm__IssueNodeCertificateResponse *resp)
{
    Swarm__Node **nodes = NULL;
    size_t n = 0;
    if (store_node_list(ca->env->store, &nodes, &n) != 0) {
        return;
    }
    resp->managers = calloc(n ? n : 1, sizeof(Swarm__ManagerPeer *));
    for (size_t i = 0; resp->managers != NULL && i < n; i++) {
        Swarm__ManagerPeer *p;
        if (nodes[i]->role != SWARM__NODE_ROLE__NODE_ROLE_MANAGER || !nodes[i]->manager_status) {
            continue;
        }
        p = calloc(1, sizeof *p);
        if (p == NULL) {
            break;
        }
        swarm__manager_peer__init(p);
        p->node_id = strdup(nodes[i]->id);
        p->raft_id = nodes[i]->manager_status->raft_id;
        p->addr = strdup(nodes[i]->manager_status->addr);
        if (p->node_id == NULL || p->addr == NULL) {
            free(p->node_id);
            free(p->addr);
            free(p);
            break; /* fewer managers to fail over to, never a partial one */
        }
        resp->managers[resp->n_managers++] = p;
    }
    store_node_free_list(nodes, n);
}

static void issue_committed_cb(int status, const struct store_result *res, void *data)
{
    struct issue_ctx *x = data;
    struct caserver *ca = x->ca;
    if (status != 0 || res->status != 0) {
        api_call_error(x->call, API_UNAVAILABLE, "registering the node failed: %s",
                       status != 0 ? swarm_strerror(status) : res->message);
    } else {
        fill_managers(ca, &x->resp);
        api_call_reply(x->call, &x->resp.base);
    }
    issue_ctx_free(x);
    ca->pending--;
    ca_maybe_free(ca);
}

/* The role a join token grants, or -1. Both comparisons always run. */
static int token_role(Swarm__Cluster *c, const char *token)
{
    bool w = token_equal(token, c->root_ca->join_tokens->worker);
    bool mgr = token_equal(token, c->root_ca->join_tokens->manager);
    if (mgr) {
        return SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    }
    return w ? SWARM__NODE_ROLE__NODE_ROLE_WORKER : -1;
}

static int issue_cert(struct caserver *ca, struct api_call *call, const Swarm__Cluster *c,
                      const ProtobufCBinaryData *csr_pem, const char *node_id, int role,
                      char **pem_out)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    X509_REQ *csr = NULL;
    EVP_PKEY *pub = NULL, *root_key = NULL;
    X509 *cert = NULL, *signer = NULL;
    STACK_OF(X509) *chain = NULL;
    size_t len;
    int rv;

    rv = pki_csr_from_pem(csr_pem->data, csr_pem->len, &csr, errmsg);
    if (rv == 0) {
        rv = pki_csr_public_key(csr, &pub, errmsg);
    }
    if (rv != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "invalid certificate request: %s", errmsg);
        goto out;
    }
    /* During a root rotation the new root signs, and the certificate
     * carries the cross-signed new root for peers that trust the old one. */
    rv = carotate_signer(c, &signer, &root_key, &chain, errmsg);
    if (rv != 0) {
        api_call_error(call, API_INTERNAL, "this manager has no root CA key: %s", errmsg);
        goto out;
    }
    rv = pki_cert_issue(signer, root_key, pub, node_id,
                        role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? API_OU_MANAGER : API_OU_WORKER,
                        c->id, menv_now(ca->env) / 1000, c->spec->ca_config->node_cert_expiry_s,
                        &cert, errmsg);
    if (rv == 0) {
        rv = pki_chain_to_pem(cert, chain, pem_out, &len);
    }
    if (rv != 0) {
        api_call_error(call, API_INTERNAL, "issuing the certificate: %s", errmsg);
    }
out:
    X509_REQ_free(csr);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(root_key);
    X509_free(cert);
    X509_free(signer);
    pki_chain_free(chain);
    return rv;
}

/* The Node object a join creates: role from the token, status unknown until
 * the node reports in. */
static Swarm__Node *new_node(const char *id, int role, uint64_t raft_id,
                             const Swarm__IssueNodeCertificateRequest *req, const char *peer_ip)
{
    Swarm__Node *n = calloc(1, sizeof *n);
    if (n == NULL) {
        return NULL;
    }
    swarm__node__init(n);
    if ((n->id = strdup(id)) == NULL || (n->spec = calloc(1, sizeof *n->spec)) == NULL) {
        goto err;
    }
    swarm__node_spec__init(n->spec);
    if ((n->spec->annotations = calloc(1, sizeof *n->spec->annotations)) == NULL) {
        goto err;
    }
    swarm__annotations__init(n->spec->annotations);
    n->spec->desired_role = role;
    n->spec->availability = req->availability;
    n->role = role;
    if ((n->advertise_addr = strdup(req->advertise_addr)) == NULL ||
        (req->description != NULL &&
         (n->description = pb_copy(&req->description->base)) == NULL) ||
        (n->status = calloc(1, sizeof *n->status)) == NULL) {
        goto err;
    }
    swarm__node_status__init(n->status);
    n->status->state = SWARM__NODE_STATE__NODE_STATE_UNKNOWN;
    if ((n->status->addr = strdup(peer_ip)) == NULL) {
        goto err;
    }
    if (role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        if ((n->manager_status = calloc(1, sizeof *n->manager_status)) == NULL) {
            goto err;
        }
        swarm__manager_status__init(n->manager_status);
        n->manager_status->raft_id = raft_id;
        n->manager_status->reachability = SWARM__REACHABILITY__REACHABILITY_UNKNOWN;
        if ((n->manager_status->addr = strdup(req->advertise_addr)) == NULL) {
            goto err;
        }
    }
    return n;
err:
    swarm__node__free_unpacked(n, NULL);
    return NULL;
}

/* Renewal: a node with a valid certificate asks for a new one. Its identity
 * comes from the certificate; its role from the store (so a promotion or a
 * demotion reaches the node this way). A removed node gets nothing. */
static void renew_node_cert(struct caserver *ca, struct api_call *call,
                            const Swarm__IssueNodeCertificateRequest *req)
{
    const struct api_peer *peer = api_call_peer(call);
    Swarm__IssueNodeCertificateResponse resp = SWARM__ISSUE_NODE_CERTIFICATE_RESPONSE__INIT;
    Swarm__Cluster *c = NULL;
    Swarm__Node *node = NULL;
    char *pem = NULL;

    if (store_node_get(ca->env->store, peer->node_id, &node) != 0) {
        api_call_error(call, API_PERMISSION_DENIED,
                       "node %s is not a member of this swarm (it may have been removed)",
                       peer->node_id);
        return;
    }
    if (store_cluster_get_default(ca->env->store, &c) != 0) {
        api_call_error(call, API_UNAVAILABLE, "the cluster object is not available yet");
        goto out;
    }
    if (issue_cert(ca, call, c, &req->csr, node->id, node->role, &pem) != 0) {
        goto out;
    }
    resp.node_id = node->id;
    resp.certificate.data = (uint8_t *)pem;
    resp.certificate.len = strlen(pem);
    resp.role = node->role;
    resp.cluster_id = c->id;
    resp.raft_id = node->manager_status != NULL ? node->manager_status->raft_id : 0;
    fill_managers(ca, &resp);
    api_call_reply(call, &resp.base);
    for (size_t i = 0; i < resp.n_managers; i++) {
        swarm__manager_peer__free_unpacked(resp.managers[i], NULL);
    }
    free(resp.managers);
out:
    free(pem);
    if (c != NULL) {
        swarm__cluster__free_unpacked(c, NULL);
    }
    swarm__node__free_unpacked(node, NULL);
}

/* What a joining node says about itself (specvalid.h): refused before
 * anything is written, so no hostname with escapes or newlines reaches the
 * store or anyone's `node ls`. */
static int join_check_request(struct api_call *call, const Swarm__IssueNodeCertificateRequest *req,
                              char *canon)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    if (spec_validate_availability((int)req->availability, errmsg) != 0 ||
        (req->description != NULL &&
         spec_validate_node_description(req->description, errmsg) != 0)) {
        api_call_error(call, API_INVALID_ARGUMENT, "%s", errmsg);
        return -1;
    }
    if (req->advertise_addr != NULL && req->advertise_addr[0] != '\0' &&
        addr_parse(req->advertise_addr, ADDR_DEFAULT_PORT, "advertise address", canon, errmsg) != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "%s", errmsg);
        return -1;
    }
    return 0;
}

static void issue_node_cert_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__IssueNodeCertificateRequest *req = (const Swarm__IssueNodeCertificateRequest *)msg;
    const struct manager_slot *slot = data;
    struct caserver *ca = slot->ca;
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
    Swarm__StoreAction *actions[1] = {&action};
    Swarm__Cluster *c = NULL;
    Swarm__Node *node = NULL;
    struct issue_ctx *x = NULL;
    char peer_ip[64];
    uint64_t raft_id = 0;
    int role, rv;

    if (ca == NULL || !slot->running) {
        api_call_error(call, API_UNAVAILABLE, "%s", MANAGER_NOT_MANAGER_MSG);
        return;
    }
    if (req->token[0] == '\0' && api_call_peer(call)->role != API_ROLE_ANONYMOUS) {
        renew_node_cert(ca, call, req);
        return;
    }
    if (store_cluster_get_default(ca->env->store, &c) != 0) {
        api_call_error(call, API_UNAVAILABLE, "the cluster object is not available yet");
        return;
    }
    role = token_role(c, req->token);
    if (role < 0) {
        static struct log_limit bad_token_limit;
        const struct api_peer *peer = api_call_peer(call);
        log_warn_limited(&bad_token_limit, "ca", "refusing join from %s%s%s: invalid join token",
                         peer->addr, peer->via[0] ? " via manager " : "", peer->via);
        api_call_error(call, API_INVALID_ARGUMENT, CA_MSG_BAD_TOKEN);
        goto out;
    }
    char canon[ADDR_STRLEN];
    if (role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
        addr_parse(req->advertise_addr, ADDR_DEFAULT_PORT, "advertise address", canon, NULL) != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "a joining manager must give its advertise address as IP:PORT");
        goto out;
    }
    if (join_check_request(call, req, canon) != 0) {
        goto out;
    }
    x = calloc(1, sizeof *x);
    if (x == NULL || id_generate(x->node_id) != 0) {
        api_call_error(call, API_INTERNAL, "could not allocate a node ID");
        free(x);
        x = NULL;
        goto out;
    }
    rv = issue_cert(ca, call, c, &req->csr, x->node_id, role, &x->cert_pem);
    if (rv != 0) {
        goto out;
    }
    while (role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER && raft_id == 0) {
        random_bytes(&raft_id, sizeof raft_id);
    }
    snprintf(peer_ip, sizeof peer_ip, "%s", api_call_peer(call)->addr);
    char *colon = strrchr(peer_ip, ':');
    if (colon != NULL) {
        *colon = '\0';
    }
    node = new_node(x->node_id, role, raft_id, req, peer_ip);
    if (node == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    x->ca = ca;
    x->call = call;
    swarm__issue_node_certificate_response__init(&x->resp);
    x->resp.node_id = x->node_id;
    x->resp.certificate.data = (uint8_t *)x->cert_pem;
    x->resp.certificate.len = strlen(x->cert_pem);
    x->resp.role = role;
    snprintf(x->cluster_id, sizeof x->cluster_id, "%s", c->id);
    x->resp.cluster_id = x->cluster_id;
    x->resp.raft_id = raft_id;
    action.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE;
    action.target_case = SWARM__STORE_ACTION__TARGET_NODE;
    action.node = node;
    cmd.n_actions = 1;
    cmd.actions = actions;
    rv = menv_propose(ca->env, &cmd, issue_committed_cb, x);
    if (rv != 0) {
        api_call_error(call, API_UNAVAILABLE, "%s", MANAGER_NO_LEADER_MSG);
        issue_ctx_free(x);
    } else {
        ca->pending++;
    }
    x = NULL;
out:
    if (x != NULL) {
        issue_ctx_free(x);
    }
    if (node != NULL) {
        swarm__node__free_unpacked(node, NULL);
    }
    swarm__cluster__free_unpacked(c, NULL);
}

/* Joins (they create a Node) and renewals (the node's role must be the
 * leader's idea of it, not a follower's possibly stale store) both run on
 * the leader; a forwarded renewal names its caller (forward.c), so the
 * leader renews the caller's certificate, not the forwarding manager's. */
static void issue_entry_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    forward_route_call(data, call, msg);
}

void caserver_register(struct api_server *server, struct manager_slot *slot)
{
    api_server_register(server, &swarm__ca__descriptor, "GetRootCACertificate",
                        API_ROLE_ANONYMOUS | API_ROLE_WORKER | API_ROLE_MANAGER | API_ROLE_LOCAL,
                        get_root_ca_cb, slot);
    api_server_register(server, &swarm__ca__descriptor, "IssueNodeCertificate",
                        API_ROLE_ANONYMOUS | API_ROLE_WORKER | API_ROLE_MANAGER, issue_entry_cb,
                        forward_route_new(&swarm__ca__descriptor, "IssueNodeCertificate", false,
                                          issue_node_cert_cb, slot));
}

struct caserver *caserver_new(const struct menv *env, const struct caserver_config *cfg)
{
    struct caserver *ca = calloc(1, sizeof *ca);
    if (ca != NULL) {
        ca->env = env;
        ca->cfg = *cfg;
    }
    return ca;
}

void caserver_close(struct caserver *ca, void (*cb)(void *data), void *data)
{
    ca->closing = true;
    ca->close_cb = cb;
    ca->close_data = data;
    ca_maybe_free(ca);
}
