/* Certificate chains, root CA rotation and certificate renewal timing.
 *
 * A root rotation (swarmkit's model): the new root is cross-signed by the
 * old one (same subject and key, issuer the old root), node certificates
 * are issued by the new key and carry that cross-signed certificate as an
 * intermediate, so a peer that still trusts only the old root accepts them,
 * and one that trusts the new root accepts them directly. Certificate files
 * hold the leaf first, then its intermediates (PEM).
 *
 * Pure OpenSSL, no libuv; errors as in pki.h. */
#ifndef SWARM_DAEMON_PKICHAIN_H
#define SWARM_DAEMON_PKICHAIN_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --cert-expiry bounds (swarmkit: minNodeCertExpiration is 1 h; the upper
 * bound keeps node certificates well inside the root's 20 years). */
#define PKI_NODE_LIFETIME_MIN_S 3600LL
#define PKI_NODE_LIFETIME_MAX_S (10LL * 365 * 24 * 3600)

/* 0, or SWARM_EINVAL with Docker's message "invalid certificate expiry:
 * minimum certificate expiry time is 1h0m0s" (or the maximum's). */
int pki_check_cert_expiry(int64_t seconds, char *errmsg);

/* All certificates of a PEM bundle: the first into *leaf, the others (in
 * order) into *chain (an empty stack when there are none). */
int pki_chain_from_pem(const void *pem, size_t len, X509 **leaf, STACK_OF(X509) **chain,
                       char *errmsg);
/* Leaf then chain as one PEM bundle (chain may be NULL). */
int pki_chain_to_pem(X509 *leaf, STACK_OF(X509) *chain, char **pem, size_t *len);
void pki_chain_free(STACK_OF(X509) *chain);

/* Fill errmsg with "<what>: <newest OpenSSL error>" and empty OpenSSL's
 * error queue (pki.c and pkichain.c translate OpenSSL errors only through
 * it). Returns `code` so callers can write `return pki_fail(...)`. */
int pki_fail(char *errmsg, int code, const char *what);

/* Like pki_cert_verify, with `chain` as untrusted intermediates (may be
 * NULL): `cert` must lead, through them, to `root` at `now`. */
int pki_cert_verify_chain(X509 *root, X509 *cert, STACK_OF(X509) *chain, int64_t now,
                          char *errmsg);

/* The new root's certificate signed by the old root: same subject, key,
 * extensions and validity, issuer the old root, fresh serial. */
int pki_cross_sign(X509 *old_root, EVP_PKEY *old_key, X509 *new_root, X509 **out,
                   char *errmsg);

/* A root given by the user (swarm ca --ca-cert --ca-key): a CA
 * certificate, self-signed, valid at `now` for at least one more hour, and
 * `key` its key. SWARM_EINVAL with the reason otherwise. */
int pki_root_ca_check(X509 *cert, EVP_PKEY *key, int64_t now, char *errmsg);

/* The issuer of `cert`: its DER subject and the DER SubjectPublicKeyInfo of
 * the certificate (in `chain`, else `root`) whose key signed it. Buffers are
 * malloc'd. SWARM_ENOTFOUND when neither signed it. */
int pki_cert_issuer_info(X509 *cert, STACK_OF(X509) *chain, X509 *root,
                         unsigned char **subject, size_t *subject_len,
                         unsigned char **pubkey, size_t *pubkey_len);
/* DER SubjectPublicKeyInfo of a certificate's key (malloc'd). */
int pki_cert_pubkey_der(X509 *cert, unsigned char **der, size_t *len);
/* True when `cert` carries a signature made by `ca`'s key. */
bool pki_cert_signed_by(X509 *cert, X509 *ca);

/* Replace, in place, what `ctx` uses for the connections made from now
 * on: the trust store (only `root`), the certificate, its chain (may be
 * NULL) and the key (cert and key may be NULL for a context without
 * identity). Connections already made keep what they had (OpenSSL copies
 * the identity into each SSL at SSL_new). */
int pki_ctx_set_identity(SSL_CTX *ctx, X509 *root, X509 *cert, STACK_OF(X509) *chain,
                         EVP_PKEY *key, char *errmsg);

/* When to renew a certificate valid over [not_before, not_after] that was
 * backdated by `backdate_s` for clock skew (issued at not_before +
 * backdate_s when the lifetime allows): at a point between 50 % and 80 % of
 * the lifetime after issue, `draw` in [0, 1) choosing where. Unix seconds. */
int64_t pki_renew_at(int64_t not_before, int64_t not_after, int64_t backdate_s, double draw);

/* Backoff before renewal attempt `attempt` (0 for the first retry): 1 s
 * doubling to 5 min, scaled by `draw` in [0, 1) to 50-100 %. ms. */
uint64_t pki_renew_backoff_ms(unsigned attempt, double draw);

#endif
