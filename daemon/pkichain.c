/* Chains, cross-signing, TLS info and renewal timing: see pkichain.h. */
#include "pkichain.h"

#include "err.h"
#include "id.h"
#include "pki.h"

#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

int pki_check_cert_expiry(int64_t seconds, char *errmsg)
{
    if (seconds < PKI_NODE_LIFETIME_MIN_S) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "invalid certificate expiry: minimum certificate expiry time is 1h0m0s");
        return SWARM_EINVAL;
    }
    if (seconds > PKI_NODE_LIFETIME_MAX_S) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "invalid certificate expiry: maximum certificate expiry time is %lldh0m0s",
                      PKI_NODE_LIFETIME_MAX_S / 3600);
        return SWARM_EINVAL;
    }
    return 0;
}

/* ---------------------------------------------------------------- chains */

void pki_chain_free(STACK_OF(X509) *chain)
{
    sk_X509_pop_free(chain, X509_free);
}

int pki_chain_from_pem(const void *pem, size_t len, X509 **leaf, STACK_OF(X509) **chain,
                       char *errmsg)
{
    STACK_OF(X509) *rest = NULL;
    X509 *first = NULL, *x;
    BIO *bio;
    int rv = pki_cert_from_pem(pem, len, &first, errmsg);
    if (rv != 0) {
        return rv;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    rest = sk_X509_new_null();
    if (bio == NULL || rest == NULL) {
        rv = pki_fail(errmsg, SWARM_ENOMEM, "reading a certificate chain");
        goto err;
    }
    /* Skip the leaf, already read, then take every further certificate. */
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    X509_free(x);
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(rest, x)) {
            X509_free(x);
            rv = pki_fail(errmsg, SWARM_ENOMEM, "reading a certificate chain");
            goto err;
        }
    }
    ERR_clear_error(); /* the end of the input reads as an error */
    BIO_free(bio);
    *leaf = first;
    *chain = rest;
    return 0;
err:
    BIO_free(bio);
    pki_chain_free(rest);
    X509_free(first);
    return rv;
}

int pki_chain_to_pem(X509 *leaf, STACK_OF(X509) *chain, char **pem, size_t *len)
{
    char *out = NULL;
    size_t n = 0;
    int count = chain != NULL ? sk_X509_num(chain) : 0;
    for (int i = -1; i < count; i++) {
        char *one;
        size_t one_len;
        int rv = pki_cert_to_pem(i < 0 ? leaf : sk_X509_value(chain, i), &one, &one_len);
        if (rv != 0) {
            free(out);
            return rv;
        }
        char *grown = realloc(out, n + one_len + 1);
        if (grown == NULL) {
            free(one);
            free(out);
            return SWARM_ENOMEM;
        }
        out = grown;
        memcpy(out + n, one, one_len + 1);
        n += one_len;
        free(one);
    }
    *pem = out;
    if (len != NULL) {
        *len = n;
    }
    return 0;
}

int pki_cert_verify_chain(X509 *root, X509 *cert, STACK_OF(X509) *chain, int64_t now,
                          char *errmsg)
{
    int rv = 0;
    ERR_clear_error();
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (store == NULL || ctx == NULL || !X509_STORE_add_cert(store, root) ||
        !X509_STORE_CTX_init(ctx, store, cert, chain)) {
        rv = pki_fail(errmsg, SWARM_ENOMEM, "setting up certificate verification");
        goto out;
    }
    X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
    if (X509_verify_cert(ctx) != 1) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "certificate verification failed: %s",
                      X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        ERR_clear_error();
        rv = SWARM_ECRYPTO;
    }
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rv;
}

/* ------------------------------------------------------------ rotation */

static int set_random_serial(X509 *cert)
{
    unsigned char raw[16];
    if (random_bytes(raw, sizeof raw) != 0) {
        return -1;
    }
    raw[sizeof raw - 1] |= 1;
    BIGNUM *bn = BN_bin2bn(raw, sizeof raw, NULL);
    int rv = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL ? 0 : -1;
    BN_free(bn);
    return rv;
}

int pki_cross_sign(X509 *old_root, EVP_PKEY *old_key, X509 *new_root, X509 **out,
                   char *errmsg)
{
    X509V3_CTX v3;
    X509_EXTENSION *akid;
    int idx;
    ERR_clear_error();
    if (X509_check_private_key(old_root, old_key) != 1) {
        return pki_fail(errmsg, SWARM_EINVAL, "the old root key does not match its certificate");
    }
    X509 *cert = X509_dup(new_root);
    if (cert == NULL) {
        return pki_fail(errmsg, SWARM_ENOMEM, "copying the new root");
    }
    /* The authority key identifier names the old root: roots often share
     * their subject ("swarm-ca"), and it is what tells OpenSSL which of
     * them signed this one (and that it is not self-signed). */
    while ((idx = X509_get_ext_by_NID(cert, NID_authority_key_identifier, -1)) >= 0) {
        X509_EXTENSION_free(X509_delete_ext(cert, idx));
    }
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, old_root, cert, NULL, NULL, 0);
    akid = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid,issuer");
    if (akid == NULL || !X509_add_ext(cert, akid, -1) || set_random_serial(cert) != 0 ||
        !X509_set_issuer_name(cert, X509_get_subject_name(old_root)) ||
        X509_sign(cert, old_key, EVP_sha256()) <= 0) {
        X509_EXTENSION_free(akid);
        X509_free(cert);
        return pki_fail(errmsg, SWARM_ECRYPTO, "cross-signing the new root");
    }
    X509_EXTENSION_free(akid);
    *out = cert;
    return 0;
}

int pki_root_ca_check(X509 *cert, EVP_PKEY *key, int64_t now, char *errmsg)
{
    int64_t nb, na;
    ERR_clear_error();
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "the CA key does not match the CA certificate");
        return SWARM_EINVAL;
    }
    if (X509_check_ca(cert) == 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "the CA certificate is not a CA certificate");
        return SWARM_EINVAL;
    }
    if (X509_get0_subject_key_id(cert) == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "the CA certificate has no subject key identifier");
        return SWARM_EINVAL;
    }
    if (pki_cert_verify(cert, cert, now, errmsg) != 0) {
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "the CA certificate is not a valid root");
        return SWARM_EINVAL;
    }
    if (pki_cert_validity(cert, &nb, &na) != 0 || na < now + 3600) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "the CA certificate expires within an hour");
        return SWARM_EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------- TLS info */

bool pki_cert_signed_by(X509 *cert, X509 *ca)
{
    EVP_PKEY *pub = X509_get0_pubkey(ca);
    bool ok = pub != NULL && X509_verify(cert, pub) == 1;
    ERR_clear_error();
    return ok;
}

static int der_dup(int (*enc)(const void *, unsigned char **), const void *obj,
                   unsigned char **out, size_t *len)
{
    unsigned char *buf = NULL;
    int n = enc(obj, &buf);
    if (n <= 0) {
        ERR_clear_error();
        return SWARM_ECRYPTO;
    }
    *out = malloc((size_t)n);
    if (*out == NULL) {
        OPENSSL_free(buf);
        return SWARM_ENOMEM;
    }
    memcpy(*out, buf, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(buf);
    return 0;
}

static int enc_pubkey(const void *key, unsigned char **out)
{
    return i2d_PUBKEY((const EVP_PKEY *)key, out);
}

static int enc_name(const void *name, unsigned char **out)
{
    return i2d_X509_NAME((const X509_NAME *)name, out);
}

int pki_cert_pubkey_der(X509 *cert, unsigned char **der, size_t *len)
{
    return der_dup(enc_pubkey, X509_get0_pubkey(cert), der, len);
}

int pki_cert_issuer_info(X509 *cert, STACK_OF(X509) *chain, X509 *root,
                         unsigned char **subject, size_t *subject_len,
                         unsigned char **pubkey, size_t *pubkey_len)
{
    X509 *issuer = NULL;
    int rv;
    for (int i = 0; chain != NULL && i < sk_X509_num(chain) && issuer == NULL; i++) {
        if (pki_cert_signed_by(cert, sk_X509_value(chain, i))) {
            issuer = sk_X509_value(chain, i);
        }
    }
    if (issuer == NULL && root != NULL && pki_cert_signed_by(cert, root)) {
        issuer = root;
    }
    if (issuer == NULL) {
        return SWARM_ENOTFOUND;
    }
    rv = der_dup(enc_name, X509_get_issuer_name(cert), subject, subject_len);
    if (rv == 0) {
        rv = pki_cert_pubkey_der(issuer, pubkey, pubkey_len);
        if (rv != 0) {
            free(*subject);
            *subject = NULL;
        }
    }
    return rv;
}

/* --------------------------------------------------------- TLS contexts */

int pki_ctx_set_identity(SSL_CTX *ctx, X509 *root, X509 *cert, STACK_OF(X509) *chain,
                         EVP_PKEY *key, char *errmsg)
{
    ERR_clear_error();
    if (root != NULL) {
        X509_STORE *store = X509_STORE_new();
        if (store == NULL || !X509_STORE_add_cert(store, root)) {
            X509_STORE_free(store);
            return pki_fail(errmsg, SWARM_ETLS, "building the trust store");
        }
        SSL_CTX_set_cert_store(ctx, store); /* frees the previous one */
    }
    if (cert == NULL) {
        return 0;
    }
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1 || SSL_CTX_clear_chain_certs(ctx) != 1) {
        return pki_fail(errmsg, SWARM_ETLS, "loading the certificate and key");
    }
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1) {
            return pki_fail(errmsg, SWARM_ETLS, "loading the certificate chain");
        }
    }
    return 0;
}

/* ------------------------------------------------------------- renewal */

int64_t pki_renew_at(int64_t not_before, int64_t not_after, int64_t backdate_s, double draw)
{
    int64_t issued = not_before;
    if (not_after - not_before > backdate_s && backdate_s > 0) {
        issued = not_before + backdate_s;
    }
    if (not_after <= issued) {
        return issued;
    }
    if (draw < 0) {
        draw = 0;
    }
    if (draw >= 1) {
        draw = 0.999999;
    }
    double life = (double)(not_after - issued);
    return issued + (int64_t)(life * (0.5 + 0.3 * draw));
}

uint64_t pki_renew_backoff_ms(unsigned attempt, double draw)
{
    uint64_t ms = 1000;
    for (unsigned i = 0; i < attempt && ms < 300000; i++) {
        ms *= 2;
    }
    if (ms > 300000) {
        ms = 300000;
    }
    if (draw < 0) {
        draw = 0;
    }
    if (draw >= 1) {
        draw = 0.999999;
    }
    return ms / 2 + (uint64_t)((double)(ms / 2) * draw);
}
