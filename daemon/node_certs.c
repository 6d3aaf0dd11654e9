/* The node's own certificate: renewal, hot reload, following the swarm's
 * root CA. Every active node runs this, managers included.
 *
 * Renewal, happy path:
 *   node_certs_start (the agent runs): the certificate's validity is read,
 *   a renewal time is drawn between 50 % and 80 % of its life
 *   (pki_renew_at), and a timer re-checks the wall clock at least every
 *   NODE_CERTS_RECHECK_MS (so a suspended host or a moved clock is noticed)
 *   -> due: join_renew over mTLS with the current certificate to a manager
 *   (the session's, else the last leader, else a known one): a new key and
 *   CSR, no token -> node_certs_install: files written (root, leaf + chain,
 *   key), a new client context for the agent, the manager's contexts
 *   reloaded in place, the new TLS info reported (the agent reopens its
 *   session) -> the next renewal drawn from the new certificate.
 * Failures:
 *   - no manager known or answering: retried with backoff (1 s doubling to
 *     5 min, pki_renew_backoff_ms) until one answers;
 *   - the answer names another role (a promotion or demotion raced the
 *     renewal): dropped; the role switch (node_agent.c) renews itself;
 *   - the node leaves meanwhile: the answer is dropped; it stops: the call
 *     is cancelled and the node freed only after its callback (the same for
 *     the root check below and a role change's renewal, node_agent.c).
 * Root rotation:
 *   - the leader asks (renew_cb) unless our issuer is the new root's key:
 *     renew at once;
 *   - the leader sends the swarm's root (root_ca_cb): when it differs from
 *     ours and our certificate chains to it, trust it from now on; when our
 *     certificate does not, renew first;
 *   - connections keep failing (conn_error_cb): fetch the root a manager
 *     presents without trusting it; when our certificate does not chain to
 *     it, the swarm rotated its root while we were away: say so in `info`
 *     and the log (rejoin). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "id.h"
#include "log.h"
#include "node_int.h"
#include "pki.h"
#include "pkichain.h"

#define NODE_CERTS_RECHECK_MS 10000
#define NODE_CERTS_STALE_MIN_FAILURES 3
#define NODE_CERTS_STALE_INTERVAL_MS 10000
/* Every node learns a new root at once: report it within this window. */
#define NODE_CERTS_ROOT_SPREAD_MS 5000

/* ------------------------------------------------------------ identity */

int node_identity_load(struct swarm_node *n, struct node_identity *id, char *errmsg)
{
    static const char *names[] = {STATEDIR_ROOT_CA_CERT, STATEDIR_NODE_CERT, STATEDIR_NODE_KEY};
    char path[PATH_MAX];
    char *data[3] = {NULL, NULL, NULL};
    size_t len[3];
    int rv = 0;

    memset(id, 0, sizeof *id);
    for (int i = 0; i < 3 && rv == 0; i++) {
        snprintf(path, sizeof path, "%s/%s", n->state_dir, names[i]);
        rv = pki_read_file(path, &data[i], &len[i], errmsg);
    }
    if (rv == 0) {
        rv = pki_cert_from_pem(data[0], len[0], &id->root, errmsg);
    }
    if (rv == 0) {
        rv = pki_chain_from_pem(data[1], len[1], &id->cert, &id->chain, errmsg);
    }
    if (rv == 0) {
        rv = pki_key_from_pem(data[2], len[2], &id->key, errmsg);
    }
    for (int i = 0; i < 3; i++) {
        free(data[i]);
    }
    if (rv != 0) {
        node_identity_free(id);
    }
    return rv;
}

void node_identity_free(struct node_identity *id)
{
    X509_free(id->root);
    X509_free(id->cert);
    pki_chain_free(id->chain);
    EVP_PKEY_free(id->key);
    memset(id, 0, sizeof *id);
}

int node_identity_client_ctx(const struct node_identity *id, SSL_CTX **out, char *errmsg)
{
    int rv = pki_client_ctx(id->root, id->cert, id->key, out, errmsg);
    if (rv == 0 && id->chain != NULL && sk_X509_num(id->chain) > 0 &&
        (rv = pki_ctx_set_identity(*out, id->root, id->cert, id->chain, id->key, errmsg)) != 0) {
        SSL_CTX_free(*out);
        *out = NULL;
    }
    return rv;
}

static Swarm__NodeTLSInfo *tls_info_new(const struct node_identity *id)
{
    return join_tls_info(id->root, id->cert, id->chain);
}

/* Hand the identity on disk to the agent (new connections) and report it. */
static int apply_to_agent(struct swarm_node *n, const struct node_identity *id,
                          uint64_t spread_ms, char *errmsg)
{
    SSL_CTX *ctx = NULL;
    Swarm__NodeTLSInfo *info;
    int rv;
    if (n->agent == NULL) {
        return 0;
    }
    if ((rv = node_identity_client_ctx(id, &ctx, errmsg)) != 0) {
        return rv;
    }
    agent_set_client_ctx(n->agent, ctx);
    SSL_CTX_free(ctx);
    info = tls_info_new(id);
    if (info != NULL) {
        agent_set_tls_info(n->agent, info, spread_ms);
        swarm__node_tlsinfo__free_unpacked(info, NULL);
    }
    return 0;
}

/* ------------------------------------------------------------- renewal */

static double random_draw(void)
{
    uint32_t r = 0;
    random_bytes(&r, sizeof r);
    return (double)r / 4294967296.0;
}

static void renew_timer_cb(uv_timer_t *t);
static void renew_start(struct swarm_node *n, const char *why);

static void arm(struct swarm_node *n, uint64_t ms)
{
    if (!n->stopping) {
        uv_timer_start(&n->renew_timer, renew_timer_cb, ms, 0);
    }
}

/* Read the certificate's validity; draw a renewal time for a new one. */
static void refresh_validity(struct swarm_node *n)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    struct node_identity id;
    int64_t nb, na;
    if (node_identity_load(n, &id, errmsg) != 0) {
        return;
    }
    if (pki_cert_validity(id.cert, &nb, &na) == 0 &&
        (nb != n->cert_not_before || na != n->cert_not_after || n->cert_renew_at == 0)) {
        n->cert_not_before = nb;
        n->cert_not_after = na;
        n->cert_renew_at = pki_renew_at(nb, na, PKI_CLOCK_SKEW_S, random_draw());
        log_info("node", "node certificate valid until %lld; renewal at %lld",
                 (long long)na, (long long)n->cert_renew_at);
    }
    node_identity_free(&id);
}

/* Renew when due, else look at the clock again later. */
static void renew_check(struct swarm_node *n)
{
    int64_t now = (int64_t)time(NULL);
    if (n->stopping || n->renew_running) {
        return;
    }
    refresh_validity(n);
    if (n->cert_renew_at != 0 && now >= n->cert_renew_at) {
        renew_start(n, "scheduled renewal");
        return;
    }
    uint64_t left = n->cert_renew_at > now ? (uint64_t)(n->cert_renew_at - now) * 1000 : 0;
    arm(n, left > 0 && left < NODE_CERTS_RECHECK_MS ? left : NODE_CERTS_RECHECK_MS);
}

static void renew_timer_cb(uv_timer_t *t)
{
    struct swarm_node *n = t->data;
    if (n->stopping || n->agent == NULL) {
        return;
    }
    if (n->renew_attempts > 0) {
        renew_start(n, "retry");
        return;
    }
    renew_check(n);
}

static void renew_retry(struct swarm_node *n)
{
    uint64_t ms = pki_renew_backoff_ms(n->renew_attempts, random_draw());
    n->renew_attempts++;
    arm(n, ms);
}

static Swarm__NodeRole our_role(struct swarm_node *n)
{
    return n->mslot.m != NULL ? SWARM__NODE_ROLE__NODE_ROLE_MANAGER
                              : SWARM__NODE_ROLE__NODE_ROLE_WORKER;
}

static void renew_done_cb(int status, const char *errmsg, struct join_result *res, void *data)
{
    struct swarm_node *n = data;
    char emsg[SWARM_ERRMSG_SIZE] = "";
    n->renew_req = NULL;
    if (node_call_end(n)) {
        join_result_free(res);
        return;
    }
    n->renew_running = false;
    if (n->agent == NULL) {
        join_result_free(res);
        return;
    }
    if (status != 0) {
        log_warn("node", "certificate renewal failed (retrying): %s", errmsg);
        renew_retry(n);
        return;
    }
    if (res->resp->role != our_role(n) || n->role_switching) {
        log_info("node", "certificate renewal crossed a role change: the role change renews");
        join_result_free(res);
        arm(n, 1000);
        return;
    }
    if (node_certs_install(n, res, true, emsg) != 0) {
        log_error("node", "installing the renewed certificate: %s", emsg);
        join_result_free(res);
        renew_retry(n);
        return;
    }
    n->renew_attempts = 0;
    log_info("node", "node certificate renewed");
    join_result_free(res);
    renew_check(n);
}

static void renew_start(struct swarm_node *n, const char *why)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct node_identity id;
    SSL_CTX *ctx = NULL;
    const char *addr;
    if (n->stopping || n->agent == NULL || n->renew_running || n->role_switching) {
        return;
    }
    uv_timer_stop(&n->renew_timer);
    addr = agent_any_manager_addr(n->agent);
    if (addr == NULL) {
        log_warn("node", "certificate renewal (%s): no manager known yet", why);
        renew_retry(n);
        return;
    }
    if (node_identity_load(n, &id, errmsg) != 0) {
        log_error("node", "certificate renewal: %s", errmsg);
        renew_retry(n);
        return;
    }
    if (node_identity_client_ctx(&id, &ctx, errmsg) == 0 &&
        join_renew(n->loop, addr, ctx, id.root, renew_done_cb, n, &n->renew_req, errmsg) == 0) {
        n->renew_running = true;
        n->calls_pending++;
        log_info("node", "renewing the node certificate (%s) with %s", why, addr);
    } else {
        log_warn("node", "certificate renewal (%s): %s", why, errmsg);
        renew_retry(n);
    }
    SSL_CTX_free(ctx);
    node_identity_free(&id);
}

int node_certs_install(struct swarm_node *n, const struct join_result *res, bool reload_manager,
                       char *errmsg)
{
    struct node_identity id = {res->root, res->cert, res->chain, res->key};
    int rv = node_write_certs(n, res->root, res->cert, res->chain, res->key, errmsg);
    if (rv != 0) {
        return rv;
    }
    if (reload_manager && n->mslot.m != NULL &&
        (rv = manager_reload_identity(n->mslot.m, NULL, res->cert, res->chain, res->key,
                                      errmsg)) != 0) {
        return rv;
    }
    n->cert_renew_at = 0; /* drawn again for the new certificate */
    return apply_to_agent(n, &id, 0, errmsg);
}

void node_certs_start(struct swarm_node *n)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct node_identity id;
    Swarm__NodeTLSInfo *info;
    n->renew_attempts = 0;
    n->cert_renew_at = 0;
    if (n->agent != NULL && node_identity_load(n, &id, errmsg) == 0) {
        info = tls_info_new(&id);
        if (info != NULL) {
            agent_set_tls_info(n->agent, info, 0);
            swarm__node_tlsinfo__free_unpacked(info, NULL);
        }
        node_identity_free(&id);
    }
    renew_check(n);
}

void node_certs_stop(struct swarm_node *n)
{
    uv_timer_stop(&n->renew_timer);
    n->cert_error[0] = '\0';
}

/* ------------------------------------------------------ root rotation */

void node_certs_root_ca_cb(const uint8_t *pem, size_t len, void *data)
{
    struct swarm_node *n = data;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct node_identity id;
    X509 *root = NULL;
    char *out = NULL;
    size_t out_len;
    char path[PATH_MAX];

    n->cert_error[0] = '\0'; /* a session is open: the swarm trusts us */
    if (n->stopping || pki_cert_from_pem(pem, len, &root, errmsg) != 0) {
        X509_free(root);
        return;
    }
    if (node_identity_load(n, &id, errmsg) != 0) {
        X509_free(root);
        return;
    }
    if (X509_cmp(root, id.root) == 0) {
        goto out;
    }
    if (pki_cert_verify_chain(root, id.cert, id.chain, (int64_t)time(NULL), errmsg) != 0) {
        renew_start(n, "the swarm's root CA changed");
        goto out;
    }
    snprintf(path, sizeof path, "%s/" STATEDIR_ROOT_CA_CERT, n->state_dir);
    if (pki_cert_to_pem(root, &out, &out_len) != 0 ||
        pki_write_file(path, out, out_len, 0600, errmsg) != 0) {
        log_error("node", "saving the swarm's new root CA: %s", errmsg);
        goto out;
    }
    X509_free(id.root);
    id.root = root;
    root = NULL;
    if (n->mslot.m != NULL) {
        manager_reload_identity(n->mslot.m, id.root, NULL, NULL, NULL, errmsg);
    }
    log_info("node", "this node now trusts the swarm's new root CA");
    if (apply_to_agent(n, &id, NODE_CERTS_ROOT_SPREAD_MS, errmsg) != 0) {
        log_error("node", "using the swarm's new root CA: %s", errmsg);
    }
out:
    free(out);
    X509_free(root);
    node_identity_free(&id);
}

void node_certs_renew_cb(const uint8_t *issuer_key, size_t len, void *data)
{
    struct swarm_node *n = data;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct node_identity id;
    unsigned char *subj = NULL, *pub = NULL;
    size_t subj_len = 0, pub_len = 0;
    bool done = false;
    if (n->stopping || node_identity_load(n, &id, errmsg) != 0) {
        return;
    }
    if (pki_cert_issuer_info(id.cert, id.chain, id.root, &subj, &subj_len, &pub, &pub_len) == 0) {
        done = pub_len == len && memcmp(pub, issuer_key, len) == 0;
    }
    free(subj);
    free(pub);
    node_identity_free(&id);
    if (!done) {
        renew_start(n, "the swarm is rotating its root CA");
    }
}

static void stale_root_cb(int status, const char *errmsg, struct join_result *res, void *data)
{
    struct swarm_node *n = data;
    char emsg[SWARM_ERRMSG_SIZE] = "";
    struct node_identity id;
    n->stale_req = NULL;
    if (node_call_end(n)) {
        join_result_free(res);
        return;
    }
    n->stale_checking = false;
    n->stale_checked_at = uv_now(n->loop);
    if (status != 0 || n->agent == NULL || node_identity_load(n, &id, emsg) != 0) {
        join_result_free(res);
        return;
    }
    if (X509_cmp(res->root, id.root) != 0 &&
        pki_cert_verify_chain(res->root, id.cert, id.chain, (int64_t)time(NULL), emsg) != 0) {
        if (n->cert_error[0] == '\0') {
            log_error("node", "%s", NODE_MSG_ROOT_ROTATED);
        }
        snprintf(n->cert_error, sizeof n->cert_error, "%s", NODE_MSG_ROOT_ROTATED);
    }
    node_identity_free(&id);
    join_result_free(res);
}

void node_certs_conn_error_cb(const char *addr, unsigned failures, const char *why, void *data)
{
    struct swarm_node *n = data;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    (void)why;
    if (n->stopping || n->stale_checking || failures < NODE_CERTS_STALE_MIN_FAILURES ||
        (n->stale_checked_at != 0 &&
         uv_now(n->loop) - n->stale_checked_at < NODE_CERTS_STALE_INTERVAL_MS)) {
        return;
    }
    if (join_fetch_root(n->loop, addr, stale_root_cb, n, &n->stale_req, errmsg) == 0) {
        n->stale_checking = true;
        n->calls_pending++;
    }
}
