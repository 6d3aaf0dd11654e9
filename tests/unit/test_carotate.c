/* Unit tests of the root CA rotation (carotate.h) without a manager: the
 * pure start (a rotation recorded in the cluster object, cross-signed by the
 * old root; the signer then issues from the new root with the cross-signed
 * certificate as chain), and the reconciler on a hand-made menv
 * (fakemenv.h): a node that is down and not converged holds the rotation
 * up, once every node is converged the leader proposes the new root with
 * new join tokens, and close waits for that proposal (close after drain). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carotate.h"
#include "err.h"
#include "fakemenv.h"
#include "pbcopy.h"
#include "pki.h"
#include "pkichain.h"
#include "test.h"

#define CREATE SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE

struct ctx {
    struct fakemenv f;
    X509 *old_root;
    unsigned trusted; /* trust_root calls */
};

static X509 *root_cb(void *data)
{
    return ((struct ctx *)data)->old_root;
}

static int trust_cb(void *data, X509 *root, char *errmsg)
{
    (void)root;
    (void)errmsg;
    ((struct ctx *)data)->trusted++;
    return 0;
}

static int bin_dup(ProtobufCBinaryData *dst, const char *pem, size_t len)
{
    dst->data = malloc(len);
    if (dst->data == NULL) {
        return -1;
    }
    memcpy(dst->data, pem, len);
    dst->len = len;
    return 0;
}

/* A cluster whose root is a new self-signed CA (its cert kept in x->old_root). */
static Swarm__Cluster *cluster_with_root(struct ctx *x)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    EVP_PKEY *key = NULL;
    char *pem = NULL;
    size_t len = 0;
    Swarm__Cluster *c = fakemenv_cluster("cluster1", 1000);
    c->root_ca = calloc(1, sizeof *c->root_ca);
    if (c->root_ca == NULL) {
        abort();
    }
    swarm__root_ca__init(c->root_ca);
    c->root_ca->join_tokens = calloc(1, sizeof *c->root_ca->join_tokens);
    if (c->root_ca->join_tokens == NULL) {
        abort();
    }
    swarm__join_tokens__init(c->root_ca->join_tokens);
    c->root_ca->join_tokens->worker = strdup("SWMTKN-old-worker");
    c->root_ca->join_tokens->manager = strdup("SWMTKN-old-manager");
    if (pki_key_generate(&key, errmsg) != 0 ||
        pki_root_ca_create(key, (int64_t)time(NULL), PKI_ROOT_LIFETIME_S, &x->old_root,
                           errmsg) != 0 ||
        pki_cert_to_pem(x->old_root, &pem, &len) != 0 ||
        bin_dup(&c->root_ca->ca_cert_pem, pem, len) != 0) {
        abort();
    }
    free(pem);
    if (pki_key_to_pem(key, &pem, &len) != 0 || bin_dup(&c->root_ca->ca_key_pem, pem, len) != 0) {
        abort();
    }
    free(pem);
    EVP_PKEY_free(key);
    return c;
}

/* The DER public key of the rotation's new root: what a converged node
 * reports as its certificate's issuer. */
static void new_root_key(const Swarm__Cluster *c, unsigned char **der, size_t *len)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    X509 *cert = NULL;
    const Swarm__RootRotation *r = c->root_ca->root_rotation;
    if (pki_cert_from_pem(r->ca_cert_pem.data, r->ca_cert_pem.len, &cert, errmsg) != 0 ||
        pki_cert_pubkey_der(cert, der, len) != 0) {
        abort();
    }
    X509_free(cert);
}

static Swarm__Node *node_issued_by(const char *id, Swarm__NodeState state,
                                   const unsigned char *key, size_t len)
{
    Swarm__Node *n = fakemenv_node(id, state);
    n->description = calloc(1, sizeof *n->description);
    if (n->description == NULL) {
        abort();
    }
    swarm__node_description__init(n->description);
    n->description->tls_info = calloc(1, sizeof *n->description->tls_info);
    if (n->description->tls_info == NULL) {
        abort();
    }
    swarm__node_tlsinfo__init(n->description->tls_info);
    if (bin_dup(&n->description->tls_info->cert_issuer_public_key, (const char *)key, len) != 0) {
        abort();
    }
    return n;
}

static struct carotate *make(struct ctx *x)
{
    struct carotate_config cfg = {
        .dispatcher = NULL, /* no sessions: no node is asked to renew */
        .root_cert = root_cb,
        .trust_root = trust_cb,
        .data = x,
    };
    return carotate_new(&x->f.env, &cfg);
}

static Swarm__ClusterSpec *rotate_spec(void)
{
    Swarm__ClusterSpec *spec = calloc(1, sizeof *spec);
    if (spec == NULL) {
        abort();
    }
    swarm__cluster_spec__init(spec);
    if ((spec->ca_config = calloc(1, sizeof *spec->ca_config)) == NULL) {
        abort();
    }
    swarm__caconfig__init(spec->ca_config);
    spec->ca_config->force_rotate = 1;
    return spec;
}

TEST(start_records_a_cross_signed_rotation_and_signer_uses_it)
{
    struct ctx x = {0};
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    X509 *ca = NULL;
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *chain = NULL;
    Swarm__Cluster *c = cluster_with_root(&x);
    Swarm__ClusterSpec *spec = rotate_spec();
    /* Nothing asked: nothing done. */
    spec->ca_config->force_rotate = 0;
    ASSERT_INT_EQ(carotate_start(c, spec, errmsg), 0);
    ASSERT(c->root_ca->root_rotation == NULL);
    /* A key without its certificate: refused, nothing changed. */
    spec->ca_config->signing_ca_key.data = (uint8_t *)"x";
    spec->ca_config->signing_ca_key.len = 1;
    ASSERT_INT_EQ(carotate_start(c, spec, errmsg), SWARM_EINVAL);
    ASSERT(strstr(errmsg, "without its CA certificate") != NULL);
    ASSERT(c->root_ca->root_rotation == NULL);
    spec->ca_config->signing_ca_key.data = NULL;
    spec->ca_config->signing_ca_key.len = 0;
    spec->ca_config->force_rotate = 1;
    ASSERT_INT_EQ(carotate_start(c, spec, errmsg), 0);
    ASSERT(c->root_ca->root_rotation != NULL);
    ASSERT(c->root_ca->root_rotation->cross_signed_ca_cert_pem.len > 0);
    ASSERT_INT_EQ(carotate_signer(c, &ca, &key, &chain, errmsg), 0);
    ASSERT(X509_cmp(ca, x.old_root) != 0);
    ASSERT_INT_EQ(sk_X509_num(chain), 1);
    X509_free(ca);
    EVP_PKEY_free(key);
    pki_chain_free(chain);
    swarm__cluster_spec__free_unpacked(spec, NULL);
    swarm__cluster__free_unpacked(c, NULL);
    X509_free(x.old_root);
}

static void wait_closed(struct fakemenv *f)
{
    for (int i = 0; i < 100 && f->n_closed == 0; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void flag_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

TEST(converged_swarm_gets_the_new_root_and_close_waits_for_it)
{
    struct ctx x = {0};
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    unsigned char *key = NULL;
    size_t key_len = 0;
    ASSERT(fakemenv_init(&x.f) == 0);
    Swarm__Cluster *c = cluster_with_root(&x);
    Swarm__ClusterSpec *spec = rotate_spec();
    ASSERT_INT_EQ(carotate_start(c, spec, errmsg), 0);
    swarm__cluster_spec__free_unpacked(spec, NULL);
    new_root_key(c, &key, &key_len);
    ProtobufCBinaryData want_root = {0};
    ASSERT(bin_dup(&want_root, (const char *)c->root_ca->root_rotation->ca_cert_pem.data,
                   c->root_ca->root_rotation->ca_cert_pem.len) == 0);
    fakemenv_apply(&x.f, 1, CREATE, c);
    fakemenv_apply(&x.f, 2, CREATE,
                   node_issued_by("n1", SWARM__NODE_STATE__NODE_STATE_READY, key, key_len));
    /* n2 is down and still has a certificate of the old root: within its
     * grace it holds the rotation up. */
    fakemenv_apply(&x.f, 3, CREATE,
                   node_issued_by("n2", SWARM__NODE_STATE__NODE_STATE_DOWN,
                                  (const unsigned char *)"old", 3));
    struct carotate *ca = make(&x);
    ASSERT(ca != NULL);
    x.f.leader = true;
    carotate_set_leader(ca, true);
    uv_timer_t t;
    bool waited = false;
    uv_timer_init(&x.f.loop, &t);
    t.data = &waited;
    uv_timer_start(&t, flag_cb, 700, 0); /* the first pass and one more */
    ASSERT(fakemenv_run_until(&x.f, &waited));
    uv_close((uv_handle_t *)&t, NULL);
    ASSERT_INT_EQ(x.f.n_proposed, 0);
    /* n2 comes back converged: the next pass finishes the rotation. */
    fakemenv_apply(&x.f, 4, SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE,
                   node_issued_by("n2", SWARM__NODE_STATE__NODE_STATE_READY, key, key_len));
    ASSERT(fakemenv_run_until_proposed(&x.f));
    ASSERT_INT_EQ(x.f.last->n_actions, 1);
    const Swarm__RootCA *got = x.f.last->actions[0]->cluster->root_ca;
    ASSERT(got->root_rotation == NULL);
    ASSERT_INT_EQ(got->ca_cert_pem.len, want_root.len);
    ASSERT(memcmp(got->ca_cert_pem.data, want_root.data, want_root.len) == 0);
    ASSERT(strcmp(got->join_tokens->worker, "SWMTKN-old-worker") != 0);
    ASSERT(strcmp(got->join_tokens->manager, "SWMTKN-old-manager") != 0);
    /* Closing with the write in flight: freed only once it comes back. */
    carotate_close(ca, fakemenv_closed_cb, &x.f);
    for (int i = 0; i < 10; i++) {
        uv_run(&x.f.loop, UV_RUN_NOWAIT);
    }
    ASSERT_INT_EQ(x.f.n_closed, 0);
    ASSERT_INT_EQ(fakemenv_complete(&x.f, SWARM_ECANCELED), 0);
    wait_closed(&x.f);
    ASSERT_INT_EQ(x.f.n_closed, 1);
    ASSERT_INT_EQ(x.f.n_proposed, 1);
    free(want_root.data);
    free(key);
    X509_free(x.old_root);
    ASSERT_INT_EQ(fakemenv_close(&x.f), 0);
}

TEST_MAIN()
