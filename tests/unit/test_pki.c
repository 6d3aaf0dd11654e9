/* Unit tests of daemon/pki.c and daemon/token.c: certificates, CSRs, PEM,
 * files, in-memory TLS handshakes, join tokens. */
#include "err.h"
#include "pki.h"
#include "pkichain.h"
#include "test.h"
#include "token.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NODE_ID "abcdefghijklmnopqrstuvwxy"
#define CLUSTER_ID "0123456789abcdefghijklmno"

/* A root CA and its key, freed by ca_free. */
struct ca {
    EVP_PKEY *key;
    X509 *cert;
};

static int ca_make(struct ca *ca, int64_t now)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    ca->key = NULL;
    ca->cert = NULL;
    if (pki_key_generate(&ca->key, errmsg) != 0) {
        return -1;
    }
    return pki_root_ca_create(ca->key, now, PKI_ROOT_LIFETIME_S, &ca->cert, errmsg);
}

static void ca_free(struct ca *ca)
{
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
}

/* A node key and certificate issued through a CSR, as the CA service does. */
struct node {
    EVP_PKEY *key;
    X509 *cert;
};

static int node_make(struct node *n, struct ca *ca, const char *ou, int64_t now)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    X509_REQ *csr = NULL;
    EVP_PKEY *pub = NULL;
    int rv = -1;
    n->key = NULL;
    n->cert = NULL;
    if (pki_key_generate(&n->key, errmsg) != 0 || pki_csr_create(n->key, &csr, errmsg) != 0 ||
        pki_csr_public_key(csr, &pub, errmsg) != 0) {
        goto out;
    }
    rv = pki_cert_issue(ca->cert, ca->key, pub, NODE_ID, ou, CLUSTER_ID, now,
                        PKI_NODE_LIFETIME_S, &n->cert, errmsg);
out:
    EVP_PKEY_free(pub);
    X509_REQ_free(csr);
    return rv;
}

static void node_free(struct node *n)
{
    X509_free(n->cert);
    EVP_PKEY_free(n->key);
}

TEST(root_ca_create)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    char cn[64];
    int64_t now = 1700000000, nb, na;
    struct ca ca;
    ASSERT_INT_EQ(ca_make(&ca, now), 0);
    ASSERT_INT_EQ(pki_cert_verify(ca.cert, ca.cert, now, errmsg), 0);
    ASSERT_INT_EQ(pki_cert_identity(ca.cert, cn, NULL, NULL), 0);
    ASSERT_STR_EQ(cn, PKI_ROOT_CN);
    ASSERT_INT_EQ(X509_check_ca(ca.cert), 1);
    ASSERT(X509_get_extension_flags(ca.cert) & EXFLAG_SS);
    ASSERT(X509_get_key_usage(ca.cert) & KU_KEY_CERT_SIGN);
    ASSERT(X509_get0_subject_key_id(ca.cert) != NULL);
    ASSERT_INT_EQ(pki_cert_validity(ca.cert, &nb, &na), 0);
    ASSERT_INT_EQ(nb, now - 3600);
    ASSERT_INT_EQ(na, now + PKI_ROOT_LIFETIME_S);
    ASSERT(na - now > 19LL * 365 * 24 * 3600);
    ASSERT_INT_EQ(EVP_PKEY_get_base_id(ca.key), EVP_PKEY_EC);
    ASSERT_INT_EQ(EVP_PKEY_get_bits(ca.key), 256);
    ca_free(&ca);
}

static void check_node_cert(const char *ou)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    char cn[64], got_ou[64], o[64];
    int64_t now = 1700000000, nb, na;
    struct ca ca, other;
    struct node n;
    ASSERT_INT_EQ(ca_make(&ca, now), 0);
    ASSERT_INT_EQ(ca_make(&other, now), 0);
    ASSERT_INT_EQ(node_make(&n, &ca, ou, now), 0);

    ASSERT_INT_EQ(pki_cert_identity(n.cert, cn, got_ou, o), 0);
    ASSERT_STR_EQ(cn, NODE_ID);
    ASSERT_STR_EQ(got_ou, ou);
    ASSERT_STR_EQ(o, CLUSTER_ID);
    ASSERT_INT_EQ(X509_check_ca(n.cert), 0);
    ASSERT(X509_get_extended_key_usage(n.cert) & XKU_SSL_SERVER);
    ASSERT(X509_get_extended_key_usage(n.cert) & XKU_SSL_CLIENT);
    /* Managers present the server name "swarm-manager"; it must be in the
     * SAN for a hostname check to pass, and so must the node ID. */
    ASSERT_INT_EQ(X509_check_host(n.cert, ou, 0, 0, NULL), 1);
    ASSERT_INT_EQ(X509_check_host(n.cert, NODE_ID, 0, 0, NULL), 1);
    ASSERT_INT_EQ(X509_check_host(n.cert, "other", 0, 0, NULL), 0);
    ASSERT_INT_EQ(pki_cert_validity(n.cert, &nb, &na), 0);
    ASSERT_INT_EQ(na, now + PKI_NODE_LIFETIME_S);

    ASSERT_INT_EQ(pki_cert_verify(ca.cert, n.cert, now, errmsg), 0);
    ASSERT_INT_EQ(pki_cert_verify(other.cert, n.cert, now, errmsg), SWARM_ECRYPTO);
    ASSERT(strstr(errmsg, "unable to get local issuer") != NULL);
    ASSERT_INT_EQ(pki_cert_verify(ca.cert, n.cert, na + 1, errmsg), SWARM_ECRYPTO);
    ASSERT(strstr(errmsg, "expired") != NULL);
    ASSERT_INT_EQ(pki_cert_verify(ca.cert, n.cert, nb - 10, errmsg), SWARM_ECRYPTO);
    ASSERT(strstr(errmsg, "not yet valid") != NULL);
    ASSERT(ERR_peek_error() == 0);

    node_free(&n);
    ca_free(&other);
    ca_free(&ca);
}

TEST(issue_manager_cert)
{
    check_node_cert("swarm-manager");
}

TEST(issue_worker_cert)
{
    check_node_cert("swarm-worker");
}

TEST(issue_serials_differ)
{
    struct ca ca;
    struct node a, b;
    ASSERT_INT_EQ(ca_make(&ca, time(NULL)), 0);
    ASSERT_INT_EQ(node_make(&a, &ca, "swarm-worker", time(NULL)), 0);
    ASSERT_INT_EQ(node_make(&b, &ca, "swarm-worker", time(NULL)), 0);
    ASSERT(ASN1_INTEGER_cmp(X509_get0_serialNumber(a.cert), X509_get0_serialNumber(b.cert)) != 0);
    node_free(&b);
    node_free(&a);
    ca_free(&ca);
}

TEST(issue_rejects_unsafe_names)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    struct ca ca;
    X509 *cert = NULL;
    ASSERT_INT_EQ(ca_make(&ca, time(NULL)), 0);
    /* A comma would smuggle an extra SAN entry. */
    ASSERT_INT_EQ(pki_cert_issue(ca.cert, ca.key, ca.key, "x,DNS:evil", "swarm-worker",
                                 CLUSTER_ID, time(NULL), 60, &cert, errmsg),
                  SWARM_EINVAL);
    ASSERT_INT_EQ(pki_cert_issue(ca.cert, ca.key, ca.key, "", "swarm-worker", CLUSTER_ID,
                                 time(NULL), 60, &cert, errmsg),
                  SWARM_EINVAL);
    ASSERT(cert == NULL);
    ca_free(&ca);
}

TEST(issue_rejects_wrong_ca_key)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    struct ca ca, other;
    X509 *cert = NULL;
    ASSERT_INT_EQ(ca_make(&ca, time(NULL)), 0);
    ASSERT_INT_EQ(ca_make(&other, time(NULL)), 0);
    ASSERT_INT_EQ(pki_cert_issue(ca.cert, other.key, other.key, NODE_ID, "swarm-worker",
                                 CLUSTER_ID, time(NULL), 60, &cert, errmsg),
                  SWARM_EINVAL);
    ASSERT(strstr(errmsg, "does not match") != NULL);
    ca_free(&other);
    ca_free(&ca);
}

TEST(csr_bad_signature_rejected)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    EVP_PKEY *key = NULL, *pub = NULL;
    X509_REQ *csr = NULL, *bad = NULL;
    unsigned char *der = NULL;
    ASSERT_INT_EQ(pki_key_generate(&key, errmsg), 0);
    ASSERT_INT_EQ(pki_csr_create(key, &csr, errmsg), 0);
    int len = i2d_X509_REQ(csr, &der);
    ASSERT(len > 40);
    /* Flip a byte of the subject (CN "swarm-node"), inside the signed part:
     * still well-formed DER, but the signature no longer matches. */
    unsigned char *cn = memmem(der, (size_t)len, "swarm-node", 10);
    ASSERT(cn != NULL);
    cn[0] ^= 0x01;
    const unsigned char *p = der;
    bad = d2i_X509_REQ(NULL, &p, len);
    ASSERT(bad != NULL);
    ASSERT_INT_EQ(pki_csr_public_key(bad, &pub, errmsg), SWARM_EINVAL);
    ASSERT(strstr(errmsg, "CSR signature does not verify") != NULL);
    ASSERT(pub == NULL);
    ASSERT(ERR_peek_error() == 0);
    ASSERT_INT_EQ(pki_csr_public_key(csr, &pub, errmsg), 0);
    ASSERT_INT_EQ(EVP_PKEY_eq(pub, key), 1);
    EVP_PKEY_free(pub);
    X509_REQ_free(bad);
    OPENSSL_free(der);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

TEST(pem_round_trips)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    char *pem = NULL;
    size_t len = 0;
    struct ca ca;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    X509_REQ *csr = NULL, *csr2 = NULL;
    ASSERT_INT_EQ(ca_make(&ca, time(NULL)), 0);

    ASSERT_INT_EQ(pki_cert_to_pem(ca.cert, &pem, &len), 0);
    ASSERT(strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) == 0);
    ASSERT_INT_EQ(strlen(pem), len);
    ASSERT_INT_EQ(pki_cert_from_pem(pem, len, &cert, errmsg), 0);
    ASSERT_INT_EQ(X509_cmp(cert, ca.cert), 0);
    free(pem);

    ASSERT_INT_EQ(pki_key_to_pem(ca.key, &pem, &len), 0);
    ASSERT(strstr(pem, "PRIVATE KEY") != NULL);
    ASSERT_INT_EQ(pki_key_from_pem(pem, len, &key, errmsg), 0);
    ASSERT_INT_EQ(EVP_PKEY_eq(key, ca.key), 1);
    ASSERT_INT_EQ(X509_check_private_key(cert, key), 1);
    free(pem);

    ASSERT_INT_EQ(pki_csr_create(key, &csr, errmsg), 0);
    ASSERT_INT_EQ(pki_csr_to_pem(csr, &pem, &len), 0);
    ASSERT(strstr(pem, "CERTIFICATE REQUEST") != NULL);
    ASSERT_INT_EQ(pki_csr_from_pem(pem, len, &csr2, errmsg), 0);
    EVP_PKEY *pub = NULL;
    ASSERT_INT_EQ(pki_csr_public_key(csr2, &pub, errmsg), 0);
    ASSERT_INT_EQ(EVP_PKEY_eq(pub, key), 1);
    EVP_PKEY_free(pub);
    free(pem);

    X509_REQ_free(csr2);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
    X509_free(cert);
    ca_free(&ca);
}

TEST(pem_garbage_rejected)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    static const char garbage[] = "hello, this is not PEM\n\x01\x02\xff";
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    X509_REQ *csr = NULL;
    ASSERT_INT_EQ(pki_cert_from_pem(garbage, sizeof garbage - 1, &cert, errmsg), SWARM_EINVAL);
    ASSERT(strncmp(errmsg, "not a PEM certificate", 21) == 0);
    ASSERT_INT_EQ(pki_key_from_pem(garbage, sizeof garbage - 1, &key, errmsg), SWARM_EINVAL);
    ASSERT(strncmp(errmsg, "not a PEM private key", 21) == 0);
    ASSERT_INT_EQ(pki_csr_from_pem(garbage, sizeof garbage - 1, &csr, errmsg), SWARM_EINVAL);
    ASSERT(strncmp(errmsg, "not a PEM certificate request", 29) == 0);
    ASSERT_INT_EQ(pki_cert_from_pem("", 0, &cert, errmsg), SWARM_EINVAL);
    /* A PEM frame whose base64 body is nonsense. */
    static const char broken[] =
        "-----BEGIN CERTIFICATE-----\nAAAA!!!!\n-----END CERTIFICATE-----\n";
    ASSERT_INT_EQ(pki_cert_from_pem(broken, sizeof broken - 1, &cert, errmsg), SWARM_EINVAL);
    ASSERT(cert == NULL && key == NULL && csr == NULL);
    ASSERT(ERR_peek_error() == 0);
}

TEST(pem_wrong_type_rejected)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    char *pem = NULL;
    size_t len;
    struct ca ca;
    X509 *cert = NULL;
    ASSERT_INT_EQ(ca_make(&ca, time(NULL)), 0);
    ASSERT_INT_EQ(pki_key_to_pem(ca.key, &pem, &len), 0);
    ASSERT_INT_EQ(pki_cert_from_pem(pem, len, &cert, errmsg), SWARM_EINVAL);
    ASSERT(strncmp(errmsg, "not a PEM certificate", 21) == 0);
    free(pem);
    ca_free(&ca);
}

TEST(digest_hex)
{
    char a[65], b[65];
    unsigned char raw[32];
    struct ca ca, other;
    ASSERT_INT_EQ(ca_make(&ca, time(NULL)), 0);
    ASSERT_INT_EQ(ca_make(&other, time(NULL)), 0);
    ASSERT_INT_EQ(pki_cert_digest_hex(ca.cert, a), 0);
    ASSERT_INT_EQ(strlen(a), 64);
    ASSERT_INT_EQ(strspn(a, "0123456789abcdef"), 64);
    ASSERT_INT_EQ(pki_cert_digest_hex(ca.cert, b), 0);
    ASSERT_STR_EQ(a, b);
    ASSERT_INT_EQ(pki_cert_digest_raw(ca.cert, raw), 0);
    char byte0[3];
    snprintf(byte0, sizeof byte0, "%02x", raw[0]);
    ASSERT(strncmp(a, byte0, 2) == 0);
    ASSERT_INT_EQ(pki_cert_digest_hex(other.cert, b), 0);
    ASSERT(strcmp(a, b) != 0);
    ca_free(&other);
    ca_free(&ca);
}

/* In-memory TLS: server and client SSL objects joined by a BIO pair, stepped
 * in turn until both finish or one fails. Returns 0 when both completed. */
struct tls_pair {
    SSL *server;
    SSL *client;
    int server_ok;
    int client_ok;
};

static int tls_pair_run(struct tls_pair *p, SSL_CTX *sctx, SSL_CTX *cctx)
{
    BIO *sbio = NULL, *cbio = NULL;
    p->server = SSL_new(sctx);
    p->client = SSL_new(cctx);
    p->server_ok = p->client_ok = 0;
    if (p->server == NULL || p->client == NULL || !BIO_new_bio_pair(&sbio, 0, &cbio, 0)) {
        return -1;
    }
    SSL_set_bio(p->server, sbio, sbio);
    SSL_set_bio(p->client, cbio, cbio);
    SSL_set_accept_state(p->server);
    SSL_set_connect_state(p->client);
    int sfail = 0, cfail = 0;
    for (int i = 0; i < 100 && !(sfail || cfail) && !(p->server_ok && p->client_ok); i++) {
        if (!p->client_ok) {
            int r = SSL_do_handshake(p->client);
            if (r == 1) {
                p->client_ok = 1;
            } else if (SSL_get_error(p->client, r) != SSL_ERROR_WANT_READ) {
                cfail = 1;
            }
        }
        if (!p->server_ok) {
            int r = SSL_do_handshake(p->server);
            if (r == 1) {
                p->server_ok = 1;
            } else if (SSL_get_error(p->server, r) != SSL_ERROR_WANT_READ) {
                sfail = 1;
            }
        }
    }
    ERR_clear_error();
    return p->server_ok && p->client_ok ? 0 : -1;
}

static void tls_pair_free(struct tls_pair *p)
{
    SSL_free(p->client);
    SSL_free(p->server);
}

TEST(tls_mutual_auth)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    char cn[64], ou[64];
    int64_t now = time(NULL);
    struct ca ca;
    struct node mgr, wrk;
    SSL_CTX *sctx = NULL, *cctx = NULL;
    struct tls_pair p;
    ASSERT_INT_EQ(ca_make(&ca, now), 0);
    ASSERT_INT_EQ(node_make(&mgr, &ca, "swarm-manager", now), 0);
    ASSERT_INT_EQ(node_make(&wrk, &ca, "swarm-worker", now), 0);
    ASSERT_INT_EQ(pki_server_ctx(ca.cert, mgr.cert, mgr.key, &sctx, errmsg), 0);
    ASSERT_INT_EQ(pki_client_ctx(ca.cert, wrk.cert, wrk.key, &cctx, errmsg), 0);

    ASSERT_INT_EQ(tls_pair_run(&p, sctx, cctx), 0);
    ASSERT_STR_EQ(SSL_get_version(p.client), "TLSv1.3");
    ASSERT_STR_EQ(SSL_get_version(p.server), "TLSv1.3");
    ASSERT_INT_EQ(SSL_get_verify_result(p.client), X509_V_OK);
    ASSERT_INT_EQ(SSL_get_verify_result(p.server), X509_V_OK);
    X509 *peer = SSL_get0_peer_certificate(p.server);
    ASSERT(peer != NULL);
    ASSERT_INT_EQ(pki_cert_identity(peer, cn, ou, NULL), 0);
    ASSERT_STR_EQ(ou, "swarm-worker");
    ASSERT_STR_EQ(cn, NODE_ID);
    peer = SSL_get0_peer_certificate(p.client);
    ASSERT(peer != NULL);
    ASSERT_INT_EQ(pki_cert_identity(peer, NULL, ou, NULL), 0);
    ASSERT_STR_EQ(ou, "swarm-manager");
    tls_pair_free(&p);

    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    node_free(&wrk);
    node_free(&mgr);
    ca_free(&ca);
}

TEST(tls_client_from_other_root_fails)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    int64_t now = time(NULL);
    struct ca ca, other;
    struct node mgr, forged;
    SSL_CTX *sctx = NULL, *cctx = NULL;
    struct tls_pair p;
    ASSERT_INT_EQ(ca_make(&ca, now), 0);
    ASSERT_INT_EQ(ca_make(&other, now), 0);
    ASSERT_INT_EQ(node_make(&mgr, &ca, "swarm-manager", now), 0);
    ASSERT_INT_EQ(node_make(&forged, &other, "swarm-manager", now), 0);
    ASSERT_INT_EQ(pki_server_ctx(ca.cert, mgr.cert, mgr.key, &sctx, errmsg), 0);
    /* The client trusts the real root but presents a certificate from
     * another one: the server must refuse it. */
    ASSERT_INT_EQ(pki_client_ctx(ca.cert, forged.cert, forged.key, &cctx, errmsg), 0);
    ASSERT_INT_EQ(tls_pair_run(&p, sctx, cctx), -1);
    ASSERT(!p.server_ok);
    tls_pair_free(&p);
    SSL_CTX_free(cctx);

    /* A client that trusts only the other root refuses the server. */
    ASSERT_INT_EQ(pki_client_ctx(other.cert, NULL, NULL, &cctx, errmsg), 0);
    ASSERT_INT_EQ(tls_pair_run(&p, sctx, cctx), -1);
    ASSERT(!p.client_ok);
    ASSERT(SSL_get_verify_result(p.client) != X509_V_OK);
    tls_pair_free(&p);

    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    node_free(&forged);
    node_free(&mgr);
    ca_free(&other);
    ca_free(&ca);
}

TEST(tls_client_without_cert)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    int64_t now = time(NULL);
    struct ca ca;
    struct node mgr;
    SSL_CTX *sctx = NULL, *cctx = NULL;
    struct tls_pair p;
    ASSERT_INT_EQ(ca_make(&ca, now), 0);
    ASSERT_INT_EQ(node_make(&mgr, &ca, "swarm-manager", now), 0);
    ASSERT_INT_EQ(pki_server_ctx(ca.cert, mgr.cert, mgr.key, &sctx, errmsg), 0);

    /* A joining node: no certificate, no root yet. */
    ASSERT_INT_EQ(pki_client_ctx(NULL, NULL, NULL, &cctx, errmsg), 0);
    ASSERT_INT_EQ(tls_pair_run(&p, sctx, cctx), 0);
    ASSERT(SSL_get0_peer_certificate(p.server) == NULL);
    ASSERT(SSL_get0_peer_certificate(p.client) != NULL);
    ASSERT_STR_EQ(SSL_get_version(p.server), "TLSv1.3");
    tls_pair_free(&p);
    SSL_CTX_free(cctx);

    /* A renewing node that trusts the root but has no cert yet either. */
    ASSERT_INT_EQ(pki_client_ctx(ca.cert, NULL, NULL, &cctx, errmsg), 0);
    ASSERT_INT_EQ(tls_pair_run(&p, sctx, cctx), 0);
    ASSERT(SSL_get0_peer_certificate(p.server) == NULL);
    ASSERT_INT_EQ(SSL_get_verify_result(p.client), X509_V_OK);
    tls_pair_free(&p);

    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    node_free(&mgr);
    ca_free(&ca);
}

TEST(tls_ctx_rejects_bad_input)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    int64_t now = time(NULL);
    struct ca ca;
    struct node a, b;
    SSL_CTX *ctx = NULL;
    ASSERT_INT_EQ(ca_make(&ca, now), 0);
    ASSERT_INT_EQ(node_make(&a, &ca, "swarm-manager", now), 0);
    ASSERT_INT_EQ(node_make(&b, &ca, "swarm-manager", now), 0);
    ASSERT_INT_EQ(pki_server_ctx(NULL, a.cert, a.key, &ctx, errmsg), SWARM_EINVAL);
    ASSERT_INT_EQ(pki_client_ctx(ca.cert, a.cert, NULL, &ctx, errmsg), SWARM_EINVAL);
    /* A key that does not belong to the certificate. */
    ASSERT_INT_EQ(pki_server_ctx(ca.cert, a.cert, b.key, &ctx, errmsg), SWARM_ETLS);
    ASSERT(strlen(errmsg) > 0);
    ASSERT(ctx == NULL);
    ASSERT(ERR_peek_error() == 0);
    node_free(&b);
    node_free(&a);
    ca_free(&ca);
}

TEST(token_generate_parse)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    char tok[TOKEN_LEN + 1], tok2[TOKEN_LEN + 1];
    unsigned char dig[32], other_dig[32];
    struct token_parts parts;
    struct ca ca, other;
    ASSERT_INT_EQ(ca_make(&ca, time(NULL)), 0);
    ASSERT_INT_EQ(ca_make(&other, time(NULL)), 0);
    ASSERT_INT_EQ(pki_cert_digest_raw(ca.cert, dig), 0);
    ASSERT_INT_EQ(pki_cert_digest_raw(other.cert, other_dig), 0);

    ASSERT_INT_EQ(token_generate(dig, tok), 0);
    ASSERT_INT_EQ(strlen(tok), TOKEN_LEN);
    ASSERT_INT_EQ(TOKEN_LEN, 85);
    ASSERT(strncmp(tok, "SWMTKN-1-", 9) == 0);
    ASSERT_INT_EQ(token_parse(tok, &parts, errmsg), 0);
    ASSERT_INT_EQ(strlen(parts.digest), TOKEN_DIGEST_LEN);
    ASSERT_INT_EQ(strlen(parts.secret), TOKEN_SECRET_LEN);
    ASSERT(strncmp(tok + 9, parts.digest, TOKEN_DIGEST_LEN) == 0);
    ASSERT_STR_EQ(tok + 9 + TOKEN_DIGEST_LEN + 1, parts.secret);
    ASSERT(token_matches_ca(&parts, dig));
    ASSERT(!token_matches_ca(&parts, other_dig));

    /* Same CA, fresh secret: the digest part is stable, the secret not. */
    ASSERT_INT_EQ(token_generate(dig, tok2), 0);
    ASSERT(strncmp(tok, tok2, 9 + TOKEN_DIGEST_LEN) == 0);
    ASSERT(strcmp(tok, tok2) != 0);

    ca_free(&other);
    ca_free(&ca);
}

TEST(token_digest_padding)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    char tok[TOKEN_LEN + 1];
    unsigned char zero[32] = {0}, ones[32];
    struct token_parts parts;
    memset(ones, 0xff, sizeof ones);
    ASSERT_INT_EQ(token_generate(zero, tok), 0);
    ASSERT_INT_EQ(token_parse(tok, &parts, errmsg), 0);
    ASSERT_STR_EQ(parts.digest, "00000000000000000000000000000000000000000000000000");
    ASSERT(token_matches_ca(&parts, zero));
    ASSERT_INT_EQ(token_generate(ones, tok), 0);
    ASSERT_INT_EQ(strlen(tok), TOKEN_LEN);
    ASSERT_INT_EQ(token_parse(tok, &parts, errmsg), 0);
    ASSERT(token_matches_ca(&parts, ones));
}

TEST(token_malformed_rejected)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    char tok[TOKEN_LEN + 1], bad[TOKEN_LEN + 8];
    unsigned char dig[32];
    struct token_parts parts;
    memset(dig, 0x5a, sizeof dig);
    ASSERT_INT_EQ(token_generate(dig, tok), 0);

    /* Wrong prefix. */
    snprintf(bad, sizeof bad, "%s", tok);
    memcpy(bad, "SWMTKN-2-", 9);
    errmsg[0] = '\0';
    ASSERT_INT_EQ(token_parse(bad, &parts, errmsg), SWARM_ETOKEN);
    ASSERT_STR_EQ(errmsg, "invalid join token");
    memcpy(bad, "swmtkn-1-", 9);
    ASSERT_INT_EQ(token_parse(bad, &parts, errmsg), SWARM_ETOKEN);
    /* Short secret. */
    snprintf(bad, sizeof bad, "%.*s", (int)TOKEN_LEN - 1, tok);
    ASSERT_INT_EQ(token_parse(bad, &parts, errmsg), SWARM_ETOKEN);
    /* Long secret. */
    snprintf(bad, sizeof bad, "%sa", tok);
    ASSERT_INT_EQ(token_parse(bad, &parts, errmsg), SWARM_ETOKEN);
    /* Uppercase. */
    snprintf(bad, sizeof bad, "%s", tok);
    bad[TOKEN_LEN - 1] = 'A';
    ASSERT_INT_EQ(token_parse(bad, &parts, errmsg), SWARM_ETOKEN);
    snprintf(bad, sizeof bad, "%s", tok);
    bad[9] = 'Z';
    ASSERT_INT_EQ(token_parse(bad, &parts, errmsg), SWARM_ETOKEN);
    /* Extra dash, in the secret and in place of the separator's neighbour. */
    snprintf(bad, sizeof bad, "%s", tok);
    bad[TOKEN_LEN - 5] = '-';
    ASSERT_INT_EQ(token_parse(bad, &parts, errmsg), SWARM_ETOKEN);
    snprintf(bad, sizeof bad, "%s", tok);
    bad[9 + TOKEN_DIGEST_LEN] = 'x';
    bad[9 + TOKEN_DIGEST_LEN - 1] = '-';
    ASSERT_INT_EQ(token_parse(bad, &parts, errmsg), SWARM_ETOKEN);
    /* Empty, NULL, prefix only, whitespace around. */
    ASSERT_INT_EQ(token_parse("", &parts, errmsg), SWARM_ETOKEN);
    ASSERT_INT_EQ(token_parse(NULL, &parts, errmsg), SWARM_ETOKEN);
    ASSERT_INT_EQ(token_parse("SWMTKN-1-", &parts, errmsg), SWARM_ETOKEN);
    snprintf(bad, sizeof bad, " %.*s", (int)TOKEN_LEN - 1, tok);
    ASSERT_INT_EQ(token_parse(bad, &parts, errmsg), SWARM_ETOKEN);
    ASSERT_STR_EQ(errmsg, "invalid join token");
    /* Still fine untouched. */
    ASSERT_INT_EQ(token_parse(tok, &parts, errmsg), 0);
}

TEST(token_equal)
{
    char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1], c[TOKEN_LEN + 1];
    unsigned char dig[32] = {1, 2, 3};
    ASSERT_INT_EQ(token_generate(dig, a), 0);
    ASSERT_INT_EQ(token_generate(dig, b), 0);
    memcpy(c, a, sizeof c);
    ASSERT(token_equal(a, c));
    ASSERT(!token_equal(a, b));
    c[TOKEN_LEN - 1] = c[TOKEN_LEN - 1] == '0' ? '1' : '0';
    ASSERT(!token_equal(a, c));
    c[TOKEN_LEN - 1] = '\0';
    ASSERT(!token_equal(a, c));
    ASSERT(!token_equal(a, ""));
    ASSERT(!token_equal(a, NULL));
    ASSERT(token_equal("", ""));
}

TEST(file_round_trip)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    char dir[] = "/tmp/test_pki.XXXXXX";
    char path[sizeof dir + 16];
    char *pem = NULL, *back = NULL;
    size_t len = 0, back_len = 0;
    struct stat st;
    struct ca ca;
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/key.pem", dir);
    ASSERT_INT_EQ(ca_make(&ca, time(NULL)), 0);
    ASSERT_INT_EQ(pki_key_to_pem(ca.key, &pem, &len), 0);

    ASSERT_INT_EQ(pki_write_file(path, pem, len, 0600, errmsg), 0);
    ASSERT_INT_EQ(stat(path, &st), 0);
    ASSERT_INT_EQ(st.st_mode & 07777, 0600);
    ASSERT_INT_EQ(st.st_size, len);
    ASSERT_INT_EQ(pki_read_file(path, &back, &back_len, errmsg), 0);
    ASSERT_INT_EQ(back_len, len);
    ASSERT(memcmp(back, pem, len) == 0);
    ASSERT_INT_EQ(back[back_len], '\0');
    free(back);

    /* Overwrite in place: the new content and mode win, no temp file left. */
    ASSERT_INT_EQ(pki_write_file(path, "x", 1, 0644, errmsg), 0);
    ASSERT_INT_EQ(stat(path, &st), 0);
    ASSERT_INT_EQ(st.st_mode & 07777, 0644);
    ASSERT_INT_EQ(pki_read_file(path, &back, &back_len, errmsg), 0);
    ASSERT_STR_EQ(back, "x");
    free(back);

    ASSERT_INT_EQ(unlink(path), 0);
    ASSERT_INT_EQ(pki_read_file(path, &back, &back_len, errmsg), SWARM_ENOTFOUND);
    ASSERT(strstr(errmsg, "key.pem") != NULL);
    ASSERT_INT_EQ(rmdir(dir), 0); /* fails if a temp file was left behind */

    /* A directory that does not exist. */
    ASSERT(pki_write_file("/nonexistent-dir/x", "x", 1, 0600, errmsg) == SWARM_EIO);
    ASSERT(strstr(errmsg, "/nonexistent-dir/x") != NULL);
    free(pem);
    ca_free(&ca);
}

/* ------------------------------------------------ renewal and rotation */

TEST(renew_at_between_50_and_80_percent)
{
    const int64_t issued = 1700000000, life = 90LL * 24 * 3600;
    const int64_t nb = issued - PKI_CLOCK_SKEW_S, na = issued + life;
    ASSERT(pki_renew_at(nb, na, PKI_CLOCK_SKEW_S, 0.0) == issued + life / 2);
    int64_t hi = pki_renew_at(nb, na, PKI_CLOCK_SKEW_S, 0.9999999);
    ASSERT(hi <= issued + life * 8 / 10 && hi >= issued + life * 8 / 10 - 2);
    for (int i = 0; i < 100; i++) {
        int64_t at = pki_renew_at(nb, na, PKI_CLOCK_SKEW_S, i / 100.0);
        ASSERT(at >= issued + life / 2 && at <= issued + life * 8 / 10);
    }
    /* Out-of-range draws are clamped, never outside the window. */
    ASSERT(pki_renew_at(nb, na, PKI_CLOCK_SKEW_S, -3) == issued + life / 2);
    ASSERT(pki_renew_at(nb, na, PKI_CLOCK_SKEW_S, 7) <= issued + life * 8 / 10);
    /* One hour of life: 30 to 48 minutes after issue. */
    ASSERT(pki_renew_at(issued - 3600, issued + 3600, 3600, 0) == issued + 1800);
    ASSERT(pki_renew_at(issued - 3600, issued + 3600, 3600, 0.99999) <= issued + 2880);
    /* A lifetime shorter than the backdate: the window starts at notBefore. */
    ASSERT(pki_renew_at(issued, issued + 1000, 3600, 0) == issued + 500);
    /* Already expired or empty: at once (notBefore). */
    ASSERT(pki_renew_at(issued, issued, 3600, 0.5) == issued);
}

TEST(renew_backoff_doubles_to_five_minutes)
{
    ASSERT(pki_renew_backoff_ms(0, 0) == 500);
    ASSERT(pki_renew_backoff_ms(0, 0.99999) <= 1000 && pki_renew_backoff_ms(0, 0.99999) >= 999);
    ASSERT(pki_renew_backoff_ms(1, 0) == 1000);
    ASSERT(pki_renew_backoff_ms(3, 0) == 4000);
    ASSERT(pki_renew_backoff_ms(20, 0) == 150000);
    ASSERT(pki_renew_backoff_ms(1000, 0.99999) <= 300000);
}

TEST(cert_expiry_bounds)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(pki_check_cert_expiry(3599, errmsg), SWARM_EINVAL);
    ASSERT_STR_EQ(errmsg, "invalid certificate expiry: minimum certificate expiry time is 1h0m0s");
    ASSERT_INT_EQ(pki_check_cert_expiry(0, errmsg), SWARM_EINVAL);
    ASSERT_INT_EQ(pki_check_cert_expiry(3600, errmsg), 0);
    ASSERT_INT_EQ(pki_check_cert_expiry(PKI_NODE_LIFETIME_MAX_S, errmsg), 0);
    ASSERT_INT_EQ(pki_check_cert_expiry(PKI_NODE_LIFETIME_MAX_S + 1, errmsg), SWARM_EINVAL);
    ASSERT(strstr(errmsg, "maximum certificate expiry time is 87600h0m0s") != NULL);
}

/* Old and new root, the cross-signed new root, and a leaf of each. */
struct rotation {
    struct ca old_ca, new_ca;
    X509 *cross;
    STACK_OF(X509) *chain; /* {cross} */
    struct node old_leaf, new_leaf;
};

static int rotation_make(struct rotation *r, int64_t now)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    memset(r, 0, sizeof *r);
    if (ca_make(&r->old_ca, now) != 0 || ca_make(&r->new_ca, now) != 0 ||
        pki_cross_sign(r->old_ca.cert, r->old_ca.key, r->new_ca.cert, &r->cross, errmsg) != 0 ||
        node_make(&r->old_leaf, &r->old_ca, "swarm-manager", now) != 0 ||
        node_make(&r->new_leaf, &r->new_ca, "swarm-worker", now) != 0) {
        return -1;
    }
    r->chain = sk_X509_new_null();
    X509_up_ref(r->cross);
    sk_X509_push(r->chain, r->cross);
    return 0;
}

static void rotation_free(struct rotation *r)
{
    pki_chain_free(r->chain);
    X509_free(r->cross);
    node_free(&r->old_leaf);
    node_free(&r->new_leaf);
    ca_free(&r->old_ca);
    ca_free(&r->new_ca);
}

TEST(cross_signed_chain_verifies_against_both_roots)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    int64_t now = time(NULL);
    struct rotation r;
    ASSERT_INT_EQ(rotation_make(&r, now), 0);
    /* Same subject and key as the new root, issued by the old one. */
    ASSERT(X509_NAME_cmp(X509_get_subject_name(r.cross), X509_get_subject_name(r.new_ca.cert)) == 0);
    ASSERT(EVP_PKEY_eq(X509_get0_pubkey(r.cross), X509_get0_pubkey(r.new_ca.cert)) == 1);
    ASSERT(pki_cert_signed_by(r.cross, r.old_ca.cert));
    ASSERT(!pki_cert_signed_by(r.cross, r.new_ca.cert));
    ASSERT_INT_EQ(pki_cert_verify_chain(r.old_ca.cert, r.cross, NULL, now, errmsg), 0);
    /* New leaf: through the cross-signed cert to the old root, or directly. */
    ASSERT_INT_EQ(pki_cert_verify_chain(r.old_ca.cert, r.new_leaf.cert, r.chain, now, errmsg), 0);
    ASSERT_INT_EQ(pki_cert_verify_chain(r.new_ca.cert, r.new_leaf.cert, r.chain, now, errmsg), 0);
    ASSERT_INT_EQ(pki_cert_verify_chain(r.new_ca.cert, r.new_leaf.cert, NULL, now, errmsg), 0);
    /* Without the intermediate the old root alone cannot vouch for it. */
    ASSERT_INT_EQ(pki_cert_verify_chain(r.old_ca.cert, r.new_leaf.cert, NULL, now, errmsg),
                  SWARM_ECRYPTO);
    /* Once the old root is dropped, its leaves are refused. */
    ASSERT_INT_EQ(pki_cert_verify_chain(r.new_ca.cert, r.old_leaf.cert, r.chain, now, errmsg),
                  SWARM_ECRYPTO);
    rotation_free(&r);
}

TEST(chain_pem_round_trip)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    struct rotation r;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    char *pem = NULL;
    size_t len = 0;
    ASSERT_INT_EQ(rotation_make(&r, time(NULL)), 0);
    ASSERT_INT_EQ(pki_chain_to_pem(r.new_leaf.cert, r.chain, &pem, &len), 0);
    ASSERT(strlen(pem) == len);
    ASSERT_INT_EQ(pki_chain_from_pem(pem, len, &leaf, &chain, errmsg), 0);
    ASSERT(X509_cmp(leaf, r.new_leaf.cert) == 0);
    ASSERT_INT_EQ(sk_X509_num(chain), 1);
    ASSERT(X509_cmp(sk_X509_value(chain, 0), r.cross) == 0);
    X509_free(leaf);
    pki_chain_free(chain);
    free(pem);
    /* A lone certificate: an empty chain. */
    ASSERT_INT_EQ(pki_chain_to_pem(r.old_leaf.cert, NULL, &pem, &len), 0);
    ASSERT_INT_EQ(pki_chain_from_pem(pem, len, &leaf, &chain, errmsg), 0);
    ASSERT_INT_EQ(sk_X509_num(chain), 0);
    X509_free(leaf);
    pki_chain_free(chain);
    free(pem);
    ASSERT_INT_EQ(pki_chain_from_pem("garbage", 7, &leaf, &chain, errmsg), SWARM_EINVAL);
    rotation_free(&r);
}

TEST(issuer_info_names_the_signing_key)
{
    struct rotation r;
    unsigned char *subj = NULL, *pub = NULL, *want = NULL;
    size_t subj_len, pub_len, want_len;
    ASSERT_INT_EQ(rotation_make(&r, time(NULL)), 0);
    ASSERT_INT_EQ(pki_cert_issuer_info(r.new_leaf.cert, r.chain, r.old_ca.cert, &subj, &subj_len,
                                       &pub, &pub_len), 0);
    ASSERT_INT_EQ(pki_cert_pubkey_der(r.new_ca.cert, &want, &want_len), 0);
    ASSERT(pub_len == want_len && memcmp(pub, want, want_len) == 0);
    ASSERT(subj_len > 0);
    free(subj);
    free(pub);
    free(want);
    ASSERT_INT_EQ(pki_cert_issuer_info(r.old_leaf.cert, NULL, r.old_ca.cert, &subj, &subj_len,
                                       &pub, &pub_len), 0);
    ASSERT_INT_EQ(pki_cert_pubkey_der(r.old_ca.cert, &want, &want_len), 0);
    ASSERT(pub_len == want_len && memcmp(pub, want, want_len) == 0);
    free(subj);
    free(pub);
    free(want);
    /* Signed by neither the chain nor the root given. */
    ASSERT_INT_EQ(pki_cert_issuer_info(r.old_leaf.cert, NULL, r.new_ca.cert, &subj, &subj_len,
                                       &pub, &pub_len), SWARM_ENOTFOUND);
    rotation_free(&r);
}

TEST(tls_during_and_after_rotation)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    struct rotation r;
    SSL_CTX *sctx = NULL, *cctx = NULL;
    struct tls_pair p;
    ASSERT_INT_EQ(rotation_make(&r, time(NULL)), 0);
    /* During: the server trusts only the old root and presents a new leaf
     * with its chain; a client with an old leaf, trusting the old root. */
    ASSERT_INT_EQ(pki_server_ctx(r.old_ca.cert, r.new_leaf.cert, r.new_leaf.key, &sctx, errmsg), 0);
    ASSERT_INT_EQ(pki_ctx_set_identity(sctx, r.old_ca.cert, r.new_leaf.cert, r.chain,
                                       r.new_leaf.key, errmsg), 0);
    ASSERT_INT_EQ(pki_client_ctx(r.old_ca.cert, r.old_leaf.cert, r.old_leaf.key, &cctx, errmsg), 0);
    ASSERT_INT_EQ(tls_pair_run(&p, sctx, cctx), 0);
    tls_pair_free(&p);
    /* A client that already trusts the new root, with a new leaf. */
    ASSERT_INT_EQ(pki_ctx_set_identity(cctx, r.new_ca.cert, r.new_leaf.cert, r.chain,
                                       r.new_leaf.key, errmsg), 0);
    ASSERT_INT_EQ(tls_pair_run(&p, sctx, cctx), 0);
    tls_pair_free(&p);
    /* After: the server drops the old root; an old leaf is refused... */
    SSL *before = SSL_new(sctx);
    ASSERT_INT_EQ(pki_ctx_set_identity(sctx, r.new_ca.cert, r.new_leaf.cert, NULL,
                                       r.new_leaf.key, errmsg), 0);
    SSL_CTX_free(cctx);
    ASSERT_INT_EQ(pki_client_ctx(r.new_ca.cert, r.old_leaf.cert, r.old_leaf.key, &cctx, errmsg), 0);
    ASSERT_INT_EQ(tls_pair_run(&p, sctx, cctx), -1);
    ASSERT(!p.server_ok);
    tls_pair_free(&p);
    /* ... a new one is accepted. */
    ASSERT_INT_EQ(pki_ctx_set_identity(cctx, r.new_ca.cert, r.new_leaf.cert, NULL,
                                       r.new_leaf.key, errmsg), 0);
    ASSERT_INT_EQ(tls_pair_run(&p, sctx, cctx), 0);
    tls_pair_free(&p);
    /* A connection made before the reload keeps its certificate. */
    ASSERT(X509_cmp(SSL_get_certificate(before), r.new_leaf.cert) == 0);
    SSL_free(before);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    rotation_free(&r);
}

TEST(ctx_reload_changes_only_new_connections)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    int64_t now = time(NULL);
    struct ca ca;
    struct node a, b;
    SSL_CTX *ctx = NULL;
    ASSERT_INT_EQ(ca_make(&ca, now), 0);
    ASSERT_INT_EQ(node_make(&a, &ca, "swarm-manager", now), 0);
    ASSERT_INT_EQ(node_make(&b, &ca, "swarm-manager", now), 0);
    ASSERT_INT_EQ(pki_server_ctx(ca.cert, a.cert, a.key, &ctx, errmsg), 0);
    SSL *old = SSL_new(ctx);
    ASSERT_INT_EQ(pki_ctx_set_identity(ctx, ca.cert, b.cert, NULL, b.key, errmsg), 0);
    SSL *fresh = SSL_new(ctx);
    ASSERT(X509_cmp(SSL_get_certificate(old), a.cert) == 0);
    ASSERT(X509_cmp(SSL_get_certificate(fresh), b.cert) == 0);
    /* A key that does not match the certificate is refused. */
    ASSERT_INT_EQ(pki_ctx_set_identity(ctx, ca.cert, b.cert, NULL, a.key, errmsg), SWARM_ETLS);
    SSL_free(old);
    SSL_free(fresh);
    SSL_CTX_free(ctx);
    node_free(&a);
    node_free(&b);
    ca_free(&ca);
}

TEST(root_ca_check)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    int64_t now = time(NULL);
    struct ca ca, other;
    struct node leaf;
    ASSERT_INT_EQ(ca_make(&ca, now), 0);
    ASSERT_INT_EQ(ca_make(&other, now), 0);
    ASSERT_INT_EQ(node_make(&leaf, &ca, "swarm-manager", now), 0);
    ASSERT_INT_EQ(pki_root_ca_check(ca.cert, ca.key, now, errmsg), 0);
    ASSERT_INT_EQ(pki_root_ca_check(ca.cert, other.key, now, errmsg), SWARM_EINVAL);
    ASSERT_STR_EQ(errmsg, "the CA key does not match the CA certificate");
    ASSERT_INT_EQ(pki_root_ca_check(leaf.cert, leaf.key, now, errmsg), SWARM_EINVAL);
    ASSERT_STR_EQ(errmsg, "the CA certificate is not a CA certificate");
    ASSERT_INT_EQ(pki_root_ca_check(ca.cert, ca.key, now + PKI_ROOT_LIFETIME_S, errmsg),
                  SWARM_EINVAL);
    node_free(&leaf);
    ca_free(&other);
    ca_free(&ca);
}

TEST_MAIN()
