/* X.509 and TLS material for the swarm: the root CA (ECDSA P-256, 20 years),
 * node certificates (CN node ID, OU swarm-manager|swarm-worker, O cluster ID),
 * CSRs, PEM and file helpers, and the TLS contexts of managers and nodes.
 * Pure OpenSSL: no libuv. Every function returns 0 or a negative SWARM_E*
 * code with a message in errmsg (SWARM_ERRMSG_SIZE bytes). Ownership: objects
 * returned through out-pointers belong to the caller (X509_free,
 * EVP_PKEY_free, X509_REQ_free, SSL_CTX_free, free() for buffers). */
#ifndef SWARM_DAEMON_PKI_H
#define SWARM_DAEMON_PKI_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define PKI_ROOT_CN "swarm-ca"
#define PKI_ROOT_LIFETIME_S (20LL * 365 * 24 * 3600)
#define PKI_NODE_LIFETIME_S (90LL * 24 * 3600)
/* Certificates are valid from a little before their issue time, so that a
 * node whose clock lags the CA's still accepts a fresh certificate. */
#define PKI_CLOCK_SKEW_S 3600

/* A fresh ECDSA P-256 key. */
int pki_key_generate(EVP_PKEY **out, char *errmsg);

/* A self-signed root CA certificate for `key`, valid from now - 1 h (clock
 * skew) for `lifetime_s`; `now` is unix seconds. */
int pki_root_ca_create(EVP_PKEY *key, int64_t now, int64_t lifetime_s,
                       X509 **out, char *errmsg);

/* A CSR for `key`. The subject is advisory: the CA decides the identity. */
int pki_csr_create(EVP_PKEY *key, X509_REQ **out, char *errmsg);

/* Verify the CSR's self-signature and return its public key. */
int pki_csr_public_key(X509_REQ *csr, EVP_PKEY **out, char *errmsg);

/* Issue a node certificate for `pub`, signed by (ca, ca_key): subject
 * CN=node_id, OU=ou, O=cluster_id; SAN DNS:<ou> and DNS:<node_id>; serial
 * from 128 random bits; key usage digitalSignature + keyAgreement; extended
 * key usage serverAuth + clientAuth; valid from now - 1 h for lifetime_s.
 * node_id, ou and cluster_id must be 1-63 characters of [A-Za-z0-9._-]
 * (else SWARM_EINVAL), and ca_key must match ca (else SWARM_EINVAL). */
int pki_cert_issue(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub,
                   const char *node_id, const char *ou, const char *cluster_id,
                   int64_t now, int64_t lifetime_s, X509 **out, char *errmsg);

/* Check that `cert` was signed by `ca` and is valid at `now` (unix s).
 * SWARM_ECRYPTO with OpenSSL's reason ("certificate has expired", ...). */
int pki_cert_verify(X509 *ca, X509 *cert, int64_t now, char *errmsg);

/* Subject fields (any pointer may be NULL; buffers of 64 bytes).
 * SWARM_ENOTFOUND when a requested field is absent, SWARM_EINVAL when it is
 * longer than 63 bytes or not valid text (never truncated). */
int pki_cert_identity(X509 *cert, char *cn, char *ou, char *o);

/* Validity bounds in unix seconds. */
int pki_cert_validity(X509 *cert, int64_t *not_before, int64_t *not_after);

/* Lowercase hex SHA-256 of the DER encoding (64 characters + NUL), and the
 * raw 32-byte digest. */
int pki_cert_digest_hex(X509 *cert, char out[65]);
int pki_cert_digest_raw(X509 *cert, unsigned char out[32]);

/* PEM encoding and decoding. *pem is malloc'd and NUL-terminated; *len
 * excludes the NUL (len may be NULL). Encoders return SWARM_ENOMEM or
 * SWARM_ECRYPTO. Decoders read the first PEM block of the right type (text
 * around it is ignored, as openssl does); input with none, or a broken one,
 * gets SWARM_EINVAL and "not a PEM certificate|private key|certificate
 * request: <reason>". Keys are unencrypted PKCS#8; an encrypted key is
 * rejected, never prompted for. */
int pki_cert_to_pem(X509 *cert, char **pem, size_t *len);
int pki_cert_from_pem(const void *pem, size_t len, X509 **out, char *errmsg);
int pki_key_to_pem(EVP_PKEY *key, char **pem, size_t *len);
int pki_key_from_pem(const void *pem, size_t len, EVP_PKEY **out, char *errmsg);
int pki_csr_to_pem(X509_REQ *csr, char **pem, size_t *len);
int pki_csr_from_pem(const void *pem, size_t len, X509_REQ **out, char *errmsg);

/* Files: write atomically (temp file in the same directory, fchmod `mode`,
 * fsync, rename, fsync the directory); SWARM_EIO with the path and errno text.
 * Read a whole file (malloc'd, NUL-terminated; *len excludes the NUL, len may
 * be NULL); SWARM_ENOTFOUND when it does not exist, else SWARM_EIO. */
int pki_write_file(const char *path, const void *data, size_t len, int mode, char *errmsg);
int pki_read_file(const char *path, char **data, size_t *len, char *errmsg);

/* TLS 1.3-only contexts.
 * Server (managers): presents cert/key, requests but does not require a
 *   client certificate, verifies one if given against `root`.
 * Client: presents cert/key if given (both NULL: no client certificate);
 *   verifies the server against `root`, or verifies nothing if `root` is
 *   NULL (only for fetching the root CA at join, checked by digest after). */
int pki_server_ctx(X509 *root, X509 *cert, EVP_PKEY *key, SSL_CTX **out, char *errmsg);
int pki_client_ctx(X509 *root, X509 *cert, EVP_PKEY *key, SSL_CTX **out, char *errmsg);

#endif
