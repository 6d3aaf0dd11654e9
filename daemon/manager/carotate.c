/* Root CA rotation (`swarm ca --rotate`), after swarmkit's model.
 *
 * Happy path:
 *   UpdateCluster with ca_config.force_rotate above the stored one (or a
 *   signing CA cert and key): carotate_start makes a new root (or checks the
 *   given one), cross-signs it with the current root, and records both in
 *   root_ca.root_rotation; the cluster update commits.
 *   -> from then on the CA service issues certificates from the new root,
 *   with the cross-signed certificate as intermediate (carotate_signer), so
 *   peers that trust only the old root still accept them.
 *   -> the leader's reconciler (carotate_timer_cb, run after node and
 *   cluster changes) asks, through their dispatcher sessions, every node
 *   whose reported certificate issuer (NodeDescription.tls_info) is not the
 *   new root to renew at once; a node renews, reconnects its session and
 *   reports its new issuer.
 *   -> once every node that is not down reports the new root's key, the
 *   leader writes the new root as the cluster's root (key, digest, new join
 *   tokens for its digest) and clears the rotation.
 *   -> every manager then trusts only the new root (carotate_sync_root), and
 *   the dispatcher sends the new root to every node's session, which the
 *   node trusts from then on.
 * Failures:
 *   - bad signing cert/key, or a key without a cert: INVALID_ARGUMENT and
 *     nothing changes;
 *   - a node that is not ready: it holds the rotation up for
 *     CAROTATE_DOWN_GRACE_MS after this leader first saw it so (a hiccup
 *     does not strand it), then no longer; when it comes back after the
 *     end, its old certificate is refused and it tells its user to rejoin
 *     (node_certs.c);
 *   - many nodes: at most CAROTATE_BATCH are asked to renew per pass
 *     (every CAROTATE_PASS_MS), so they do not all reconnect at once;
 *   - leader change: the new leader's reconciler takes over from the store
 *     (the rotation lives in the cluster object);
 *   - the finishing write loses a race (CAS): the next pass retries.
 * Lifecycle and ownership: carotate.h. */
#include "carotate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "pbcopy.h"
#include "pki.h"
#include "pkichain.h"
#include "token.h"

#define CAROTATE_DELAY_MS 200
/* Renewals asked for per pass, and passes while a rotation runs: a
 * thousand nodes are not asked to reconnect in the same moment. */
#define CAROTATE_BATCH 32
#define CAROTATE_PASS_MS 250
/* A node that is not ready (down, or between sessions) holds the rotation
 * up only this long after this leader first saw it so: a hiccup does not
 * strand it, a node that is down for good does not block the swarm. */
#define CAROTATE_DOWN_GRACE_MS 10000

struct carotate_down {
    char id[64];
    uint64_t since; /* uv_now when first seen not ready and unconverged */
};

struct carotate {
    const struct menv *env;
    struct carotate_config cfg;
    uv_timer_t timer;
    bool running; /* the finishing write is in flight */
    bool again;   /* a pass was due while it was */
    struct carotate_down *down; /* unconverged nodes seen not ready, by ID */
    size_t n_down;
    bool closing;
    /* Close after drain. */
    bool timer_open;
    unsigned n_proposals;
    void (*close_cb)(void *data);
    void *close_data;
};

static int down_cmp(const void *a, const void *b)
{
    return strcmp(((const struct carotate_down *)a)->id, ((const struct carotate_down *)b)->id);
}

/* Replace a string field of an unpacked message (whose unset strings point
 * at protobuf-c's static empty string, never to be freed). */
static void str_set(char **field, char *value)
{
    if (*field != protobuf_c_empty_string) {
        free(*field);
    }
    *field = value;
}

static int bin_set(ProtobufCBinaryData *dst, const void *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        return SWARM_ENOMEM;
    }
    memcpy(copy, data, len);
    free(dst->data);
    dst->data = copy;
    dst->len = len;
    return 0;
}

int carotate_signer(const Swarm__Cluster *c, X509 **ca, EVP_PKEY **key, STACK_OF(X509) **chain,
                    char *errmsg)
{
    const Swarm__RootRotation *r = c->root_ca != NULL ? c->root_ca->root_rotation : NULL;
    X509 *cross = NULL;
    int rv;
    *ca = NULL;
    *key = NULL;
    *chain = NULL;
    if (c->root_ca == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "the cluster has no root CA");
        return SWARM_ECRYPTO;
    }
    if (r == NULL) {
        rv = pki_cert_from_pem(c->root_ca->ca_cert_pem.data, c->root_ca->ca_cert_pem.len, ca,
                               errmsg);
        if (rv == 0) {
            rv = pki_key_from_pem(c->root_ca->ca_key_pem.data, c->root_ca->ca_key_pem.len, key,
                                  errmsg);
        }
    } else {
        rv = pki_cert_from_pem(r->ca_cert_pem.data, r->ca_cert_pem.len, ca, errmsg);
        if (rv == 0) {
            rv = pki_key_from_pem(r->ca_key_pem.data, r->ca_key_pem.len, key, errmsg);
        }
        if (rv == 0) {
            rv = pki_cert_from_pem(r->cross_signed_ca_cert_pem.data,
                                   r->cross_signed_ca_cert_pem.len, &cross, errmsg);
        }
        if (rv == 0 && ((*chain = sk_X509_new_null()) == NULL || !sk_X509_push(*chain, cross))) {
            X509_free(cross);
            rv = SWARM_ENOMEM;
        }
    }
    if (rv != 0) {
        X509_free(*ca);
        EVP_PKEY_free(*key);
        pki_chain_free(*chain);
        *ca = NULL;
        *key = NULL;
        *chain = NULL;
    }
    return rv;
}

/* --------------------------------------------------------------- start */

/* The root to rotate to: the one given (checked), else a new one. */
static int new_root(const Swarm__CAConfig *want, X509 **cert, EVP_PKEY **key, char *errmsg)
{
    int64_t now = (int64_t)time(NULL);
    int rv;
    if (want->signing_ca_cert.len == 0) {
        if (want->signing_ca_key.len > 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "a CA key was given without its CA certificate (--ca-cert)");
            return SWARM_EINVAL;
        }
        rv = pki_key_generate(key, errmsg);
        if (rv == 0) {
            rv = pki_root_ca_create(*key, now, PKI_ROOT_LIFETIME_S, cert, errmsg);
        }
        return rv;
    }
    if (want->signing_ca_key.len == 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "the CA key (--ca-key) is required with --ca-cert: swarmd signs "
                      "certificates itself and has no external CA");
        return SWARM_EINVAL;
    }
    if ((rv = pki_cert_from_pem(want->signing_ca_cert.data, want->signing_ca_cert.len, cert,
                                errmsg)) != 0 ||
        (rv = pki_key_from_pem(want->signing_ca_key.data, want->signing_ca_key.len, key,
                               errmsg)) != 0 ||
        (rv = pki_root_ca_check(*cert, *key, now, errmsg)) != 0) {
        X509_free(*cert);
        EVP_PKEY_free(*key);
        *cert = NULL;
        *key = NULL;
        return SWARM_EINVAL;
    }
    return 0;
}

static int set_rotation(Swarm__RootCA *ca, X509 *cert, EVP_PKEY *key, X509 *cross)
{
    Swarm__RootRotation *r = ca->root_rotation;
    char *pem = NULL;
    size_t len;
    int rv;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL) {
            return SWARM_ENOMEM;
        }
        swarm__root_rotation__init(r);
        ca->root_rotation = r;
    }
    if ((rv = pki_cert_to_pem(cert, &pem, &len)) == 0) {
        rv = bin_set(&r->ca_cert_pem, pem, len);
        free(pem);
    }
    if (rv == 0 && (rv = pki_key_to_pem(key, &pem, &len)) == 0) {
        rv = bin_set(&r->ca_key_pem, pem, len);
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    if (rv == 0 && (rv = pki_cert_to_pem(cross, &pem, &len)) == 0) {
        rv = bin_set(&r->cross_signed_ca_cert_pem, pem, len);
        free(pem);
    }
    return rv;
}

int carotate_start(Swarm__Cluster *c, const Swarm__ClusterSpec *req_spec, char *errmsg)
{
    const Swarm__CAConfig *want = req_spec->ca_config;
    const Swarm__CAConfig *have = c->spec != NULL ? c->spec->ca_config : NULL;
    X509 *old_cert = NULL, *cert = NULL, *cross = NULL;
    EVP_PKEY *old_key = NULL, *key = NULL;
    int rv;

    bool forced = want->force_rotate > (have != NULL ? have->force_rotate : 0);
    if (!forced && want->signing_ca_cert.len == 0 && want->signing_ca_key.len == 0) {
        return 0;
    }
    if (c->root_ca == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "the cluster has no root CA");
        return SWARM_ECRYPTO;
    }
    if ((rv = new_root(want, &cert, &key, errmsg)) != 0) {
        goto out;
    }
    if ((rv = pki_cert_from_pem(c->root_ca->ca_cert_pem.data, c->root_ca->ca_cert_pem.len,
                                &old_cert, errmsg)) != 0 ||
        (rv = pki_key_from_pem(c->root_ca->ca_key_pem.data, c->root_ca->ca_key_pem.len, &old_key,
                               errmsg)) != 0) {
        rv = SWARM_ECRYPTO;
        goto out;
    }
    if (X509_cmp(cert, old_cert) == 0) {
        /* Asking for the current root: nothing to rotate to; a rotation
         * under way is abandoned (swarmkit does the same). */
        if (c->root_ca->root_rotation != NULL) {
            swarm__root_rotation__free_unpacked(c->root_ca->root_rotation, NULL);
            c->root_ca->root_rotation = NULL;
        }
        rv = 0;
        goto out;
    }
    if ((rv = pki_cross_sign(old_cert, old_key, cert, &cross, errmsg)) != 0 ||
        (rv = set_rotation(c->root_ca, cert, key, cross)) != 0) {
        goto out;
    }
    char digest[65];
    pki_cert_digest_hex(cert, digest);
    log_info("carotate", "root CA rotation started: desired root digest sha256:%s", digest);
out:
    X509_free(old_cert);
    X509_free(cert);
    X509_free(cross);
    EVP_PKEY_free(old_key);
    EVP_PKEY_free(key);
    return rv;
}

/* ---------------------------------------------------------- trust root */

void carotate_sync_root(struct carotate *ca)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    Swarm__Cluster *c = NULL;
    X509 *root = NULL, *current;
    if (ca == NULL || store_cluster_get_default(ca->env->store, &c) != 0) {
        return;
    }
    current = ca->cfg.root_cert(ca->cfg.data);
    if (c->root_ca != NULL && c->root_ca->ca_cert_pem.len > 0 &&
        pki_cert_from_pem(c->root_ca->ca_cert_pem.data, c->root_ca->ca_cert_pem.len, &root,
                          errmsg) == 0 &&
        (current == NULL || X509_cmp(root, current) != 0)) {
        int rv = ca->cfg.trust_root(ca->cfg.data, root, errmsg);
        if (rv < 0) {
            log_error("carotate", "trusting the new root CA: %s", errmsg);
        } else if (rv == 0) {
            log_info("carotate", "this manager now trusts the swarm's new root CA");
        }
    }
    X509_free(root);
    swarm__cluster__free_unpacked(c, NULL);
}

/* ---------------------------------------------------------- reconciler */

static void carotate_timer_cb(uv_timer_t *t);
static void carotate_maybe_free(struct carotate *ca);

static void schedule(struct carotate *ca, uint64_t delay)
{
    if (!ca->closing && !uv_is_active((uv_handle_t *)&ca->timer)) {
        uv_timer_start(&ca->timer, carotate_timer_cb, delay, 0);
    }
}

static bool node_converged(const Swarm__Node *n, const unsigned char *key, size_t len)
{
    const Swarm__NodeTLSInfo *t = n->description != NULL ? n->description->tls_info : NULL;
    return t != NULL && t->cert_issuer_public_key.len == len &&
           memcmp(t->cert_issuer_public_key.data, key, len) == 0;
}

static void finish_done_cb(int status, const struct store_result *res, void *data)
{
    struct carotate *ca = data;
    ca->n_proposals--;
    ca->running = false;
    if (status != 0 || res->status != 0) {
        log_warn("carotate", "finishing the root rotation failed (will retry): %s",
                 status != 0 ? swarm_strerror(status) : res->message);
        ca->again = true;
    } else {
        log_info("carotate", "root CA rotation complete: the old root is no longer trusted");
    }
    if (ca->closing) {
        carotate_maybe_free(ca);
        return;
    }
    if (ca->again) {
        ca->again = false;
        schedule(ca, CAROTATE_DELAY_MS);
    }
}

/* Every node that is up has a certificate from the new root: it becomes the
 * root, with new join tokens for its digest. */
static void finish(struct carotate *ca, Swarm__Cluster *c)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
    Swarm__StoreAction *actions[1] = {&action};
    Swarm__RootRotation *r = c->root_ca->root_rotation;
    unsigned char raw[32];
    char digest[65], worker[TOKEN_LEN + 1], manager[TOKEN_LEN + 1];
    char *new_digest = NULL, *new_worker = NULL, *new_manager = NULL;
    X509 *cert = NULL;
    char errmsg[SWARM_ERRMSG_SIZE];

    if (pki_cert_from_pem(r->ca_cert_pem.data, r->ca_cert_pem.len, &cert, errmsg) != 0) {
        log_error("carotate", "the rotation's root is unreadable: %s", errmsg);
        return;
    }
    pki_cert_digest_hex(cert, digest);
    pki_cert_digest_raw(cert, raw);
    X509_free(cert);
    if (token_generate(raw, worker) != 0 || token_generate(raw, manager) != 0) {
        return;
    }
    new_digest = strdup(digest);
    new_worker = strdup(worker);
    new_manager = strdup(manager);
    if (new_digest == NULL || new_worker == NULL || new_manager == NULL) {
        log_warn("carotate", "finishing the root rotation: out of memory (will retry)");
        free(new_digest);
        free(new_worker);
        free(new_manager);
        schedule(ca, CAROTATE_PASS_MS);
        return;
    }
    /* Move the rotation's material into the root. */
    free(c->root_ca->ca_cert_pem.data);
    free(c->root_ca->ca_key_pem.data);
    c->root_ca->ca_cert_pem = r->ca_cert_pem;
    c->root_ca->ca_key_pem = r->ca_key_pem;
    r->ca_cert_pem.data = r->ca_key_pem.data = NULL;
    r->ca_cert_pem.len = r->ca_key_pem.len = 0;
    str_set(&c->root_ca->ca_cert_digest, new_digest);
    str_set(&c->root_ca->join_tokens->worker, new_worker);
    str_set(&c->root_ca->join_tokens->manager, new_manager);
    swarm__root_rotation__free_unpacked(r, NULL);
    c->root_ca->root_rotation = NULL;
    action.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE;
    action.target_case = SWARM__STORE_ACTION__TARGET_CLUSTER;
    action.cluster = c;
    cmd.n_actions = 1;
    cmd.actions = actions;
    ca->running = true;
    ca->n_proposals++;
    if (menv_propose(ca->env, &cmd, finish_done_cb, ca) != 0) {
        ca->n_proposals--;
        ca->running = false;
    }
}

static void reconcile(struct carotate *ca)
{
    struct store *store = ca->env->store;
    Swarm__Cluster *c = NULL;
    Swarm__Node **nodes = NULL;
    size_t n = 0, waiting = 0, done = 0;
    X509 *cert = NULL;
    unsigned char *key = NULL;
    size_t key_len = 0;
    char errmsg[SWARM_ERRMSG_SIZE];

    if (store_cluster_get_default(store, &c) != 0) {
        return;
    }
    if (c->root_ca == NULL || c->root_ca->root_rotation == NULL) {
        free(ca->down); /* the next rotation starts afresh */
        ca->down = NULL;
        ca->n_down = 0;
    }
    if (c->root_ca == NULL || c->root_ca->root_rotation == NULL ||
        pki_cert_from_pem(c->root_ca->root_rotation->ca_cert_pem.data,
                          c->root_ca->root_rotation->ca_cert_pem.len, &cert, errmsg) != 0 ||
        pki_cert_pubkey_der(cert, &key, &key_len) != 0 ||
        store_node_list(store, &nodes, &n) != 0) {
        goto out;
    }
    uint64_t now = uv_now(ca->env->loop);
    struct carotate_down *down = calloc(n ? n : 1, sizeof *down);
    size_t n_down = 0, asked = 0;
    if (down == NULL) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const Swarm__Node *node = nodes[i];
        if (node_converged(node, key, key_len)) {
            done++;
            continue;
        }
        if (node->status == NULL || node->status->state != SWARM__NODE_STATE__NODE_STATE_READY) {
            struct carotate_down want, *seen;
            snprintf(want.id, sizeof want.id, "%s", node->id);
            seen = ca->n_down == 0 ? NULL
                                   : bsearch(&want, ca->down, ca->n_down, sizeof want, down_cmp);
            want.since = seen != NULL ? seen->since : now;
            down[n_down++] = want;
            waiting += now - want.since < CAROTATE_DOWN_GRACE_MS;
            continue;
        }
        waiting++;
        if (asked < CAROTATE_BATCH &&
            dispatcher_request_renewal(ca->cfg.dispatcher, node->id, key, key_len) == 1) {
            asked++;
        }
    }
    qsort(down, n_down, sizeof *down, down_cmp);
    free(ca->down);
    ca->down = down;
    ca->n_down = n_down;
    if (waiting == 0) {
        log_info("carotate", "every node that is up (%zu) has a certificate from the new root",
                 done);
        finish(ca, c);
    } else {
        schedule(ca, CAROTATE_PASS_MS);
    }
out:
    store_node_free_list(nodes, n);
    free(key);
    X509_free(cert);
    if (c != NULL) {
        swarm__cluster__free_unpacked(c, NULL);
    }
}

static void carotate_timer_cb(uv_timer_t *t)
{
    struct carotate *ca = t->data;
    if (ca->closing) {
        return;
    }
    carotate_sync_root(ca);
    if (!menv_is_leader(ca->env)) {
        return;
    }
    if (ca->running) {
        ca->again = true;
        return;
    }
    reconcile(ca);
}

void carotate_on_event(struct carotate *ca, const struct store_event *ev)
{
    if (ca == NULL || ca->closing ||
        (ev->kind != STORE_KIND_CLUSTER && ev->kind != STORE_KIND_NODE)) {
        return;
    }
    if (ev->kind == STORE_KIND_CLUSTER) {
        carotate_sync_root(ca);
    }
    schedule(ca, ev->kind == STORE_KIND_CLUSTER ? 0 : CAROTATE_DELAY_MS);
}

void carotate_set_leader(struct carotate *ca, bool leader)
{
    if (ca != NULL && leader) {
        schedule(ca, CAROTATE_DELAY_MS);
    }
}

/* ------------------------------------------------------------ lifecycle */

struct carotate *carotate_new(const struct menv *env, const struct carotate_config *cfg)
{
    struct carotate *ca = calloc(1, sizeof *ca);
    if (ca == NULL) {
        return NULL;
    }
    ca->env = env;
    ca->cfg = *cfg;
    uv_timer_init(env->loop, &ca->timer);
    ca->timer.data = ca;
    ca->timer_open = true;
    return ca;
}

/* Free once the timer is closed and the finishing write came back. */
static void carotate_maybe_free(struct carotate *ca)
{
    void (*cb)(void *) = ca->close_cb;
    void *data = ca->close_data;
    if (ca->timer_open || ca->n_proposals > 0) {
        return;
    }
    free(ca->down);
    free(ca);
    if (cb != NULL) {
        cb(data);
    }
}

static void carotate_closed_cb(uv_handle_t *h)
{
    struct carotate *ca = h->data;
    ca->timer_open = false;
    carotate_maybe_free(ca);
}

void carotate_close(struct carotate *ca, void (*cb)(void *data), void *data)
{
    if (ca == NULL) {
        if (cb != NULL) {
            cb(data);
        }
        return;
    }
    ca->closing = true;
    ca->close_cb = cb;
    ca->close_data = data;
    uv_close((uv_handle_t *)&ca->timer, carotate_closed_cb);
}
