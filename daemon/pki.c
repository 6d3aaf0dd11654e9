/* X.509 and TLS material: see pki.h for the contract.
 *
 * OpenSSL errors are translated here, once: every failure path reads the
 * newest error on the thread's queue into errmsg and clears the queue, so a
 * later, unrelated failure never reports a stale reason. */
#include "pki.h"
#include "pkichain.h"

#include "err.h"
#include "id.h"
#include "vec.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Longest subject field we issue or read back (pki_cert_identity buffers are
 * 64 bytes, NUL included). */
#define PKI_NAME_MAX 63

int pki_fail(char *errmsg, int code, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        char reason[256];
        ERR_error_string_n(e, reason, sizeof reason);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", what, reason);
    } else {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s", what);
    }
    ERR_clear_error();
    return code;
}

int pki_key_generate(EVP_PKEY **out, char *errmsg)
{
    ERR_clear_error();
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL) {
        return pki_fail(errmsg, SWARM_ECRYPTO, "generating an EC P-256 key");
    }
    *out = key;
    return 0;
}

/* 128 random bits as a positive serial (at most 17 DER octets, within RFC
 * 5280's 20); never zero. */
static int pki_set_serial(X509 *cert)
{
    unsigned char raw[16];
    if (random_bytes(raw, sizeof raw) != 0) {
        return -1;
    }
    raw[sizeof raw - 1] |= 1;
    BIGNUM *bn = BN_bin2bn(raw, sizeof raw, NULL);
    if (bn == NULL) {
        return -1;
    }
    int rv = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL ? 0 : -1;
    BN_free(bn);
    return rv;
}

static int pki_name_add(X509_NAME *name, int nid, const char *value)
{
    return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                      (const unsigned char *)value, -1, -1, 0)
               ? 0
               : -1;
}

/* Add one extension given in openssl.cnf syntax; `issuer` provides the
 * authority key identifier, `cert` the subject key identifier. */
static int pki_ext_add(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return -1;
    }
    int rv = X509_add_ext(cert, ext, -1) ? 0 : -1;
    X509_EXTENSION_free(ext);
    return rv;
}

/* The fields shared by root and node certificates. */
static int pki_cert_skeleton(X509 *cert, EVP_PKEY *pub, int64_t now,
                             int64_t lifetime_s)
{
    if (!X509_set_version(cert, X509_VERSION_3) || pki_set_serial(cert) != 0 ||
        !X509_set_pubkey(cert, pub)) {
        return -1;
    }
    if (ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)(now - PKI_CLOCK_SKEW_S)) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)(now + lifetime_s)) == NULL) {
        return -1;
    }
    return 0;
}

int pki_root_ca_create(EVP_PKEY *key, int64_t now, int64_t lifetime_s,
                       X509 **out, char *errmsg)
{
    ERR_clear_error();
    if (lifetime_s <= 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "root CA lifetime must be positive");
        return SWARM_EINVAL;
    }
    X509 *cert = X509_new();
    if (cert == NULL) {
        return pki_fail(errmsg, SWARM_ENOMEM, "allocating the root CA");
    }
    if (pki_cert_skeleton(cert, key, now, lifetime_s) != 0 ||
        pki_name_add(X509_get_subject_name(cert), NID_commonName, PKI_ROOT_CN) != 0 ||
        !X509_set_issuer_name(cert, X509_get_subject_name(cert))) {
        goto err_after_new;
    }
    /* pathlen is left open: a later intermediate CA (external CA) may sit
     * below the root. */
    if (pki_ext_add(cert, cert, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
        pki_ext_add(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        pki_ext_add(cert, cert, NID_subject_key_identifier, "hash") != 0) {
        goto err_after_new;
    }
    if (X509_sign(cert, key, EVP_sha256()) <= 0) {
        goto err_after_new;
    }
    *out = cert;
    return 0;

err_after_new:
    X509_free(cert);
    return pki_fail(errmsg, SWARM_ECRYPTO, "creating the root CA certificate");
}

int pki_csr_create(EVP_PKEY *key, X509_REQ **out, char *errmsg)
{
    ERR_clear_error();
    X509_REQ *csr = X509_REQ_new();
    if (csr == NULL) {
        return pki_fail(errmsg, SWARM_ENOMEM, "allocating a CSR");
    }
    if (!X509_REQ_set_version(csr, X509_REQ_VERSION_1) ||
        pki_name_add(X509_REQ_get_subject_name(csr), NID_commonName, "swarm-node") != 0 ||
        !X509_REQ_set_pubkey(csr, key) || X509_REQ_sign(csr, key, EVP_sha256()) <= 0) {
        X509_REQ_free(csr);
        return pki_fail(errmsg, SWARM_ECRYPTO, "creating a CSR");
    }
    *out = csr;
    return 0;
}

int pki_csr_public_key(X509_REQ *csr, EVP_PKEY **out, char *errmsg)
{
    ERR_clear_error();
    EVP_PKEY *pub = X509_REQ_get_pubkey(csr);
    if (pub == NULL) {
        return pki_fail(errmsg, SWARM_EINVAL, "CSR has no usable public key");
    }
    /* Proof of possession: only the holder of the private key can have
     * signed the request. */
    if (X509_REQ_verify(csr, pub) != 1) {
        EVP_PKEY_free(pub);
        return pki_fail(errmsg, SWARM_EINVAL, "CSR signature does not verify");
    }
    *out = pub;
    return 0;
}

/* Identity fields go into the subject and, for the SAN, into an openssl.cnf
 * value string: a ',' or ':' there would add names the CA never meant to
 * grant, so only ID-like characters are accepted. */
static int pki_name_is_safe(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.')) {
            return 0;
        }
    }
    return n > 0 && n <= PKI_NAME_MAX;
}

static int pki_node_extensions(X509 *cert, X509 *ca, const char *node_id,
                               const char *ou)
{
    char san[2 * PKI_NAME_MAX + 16];
    snprintf(san, sizeof san, "DNS:%s,DNS:%s", ou, node_id);
    if (pki_ext_add(cert, ca, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        pki_ext_add(cert, ca, NID_key_usage, "critical,digitalSignature,keyAgreement") != 0 ||
        pki_ext_add(cert, ca, NID_ext_key_usage, "serverAuth,clientAuth") != 0 ||
        pki_ext_add(cert, ca, NID_subject_alt_name, san) != 0 ||
        pki_ext_add(cert, ca, NID_subject_key_identifier, "hash") != 0 ||
        pki_ext_add(cert, ca, NID_authority_key_identifier, "keyid:always") != 0) {
        return -1;
    }
    return 0;
}

int pki_cert_issue(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub,
                   const char *node_id, const char *ou, const char *cluster_id,
                   int64_t now, int64_t lifetime_s, X509 **out, char *errmsg)
{
    ERR_clear_error();
    if (!pki_name_is_safe(node_id) || !pki_name_is_safe(ou) ||
        !pki_name_is_safe(cluster_id)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "node ID, role and cluster ID must be 1-%d characters of "
                      "[A-Za-z0-9._-]", PKI_NAME_MAX);
        return SWARM_EINVAL;
    }
    if (lifetime_s <= 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "certificate lifetime must be positive");
        return SWARM_EINVAL;
    }
    if (X509_check_private_key(ca, ca_key) != 1) {
        return pki_fail(errmsg, SWARM_EINVAL, "CA key does not match the CA certificate");
    }
    X509 *cert = X509_new();
    if (cert == NULL) {
        return pki_fail(errmsg, SWARM_ENOMEM, "allocating a node certificate");
    }
    X509_NAME *subject = X509_get_subject_name(cert);
    if (pki_cert_skeleton(cert, pub, now, lifetime_s) != 0 ||
        pki_name_add(subject, NID_organizationName, cluster_id) != 0 ||
        pki_name_add(subject, NID_organizationalUnitName, ou) != 0 ||
        pki_name_add(subject, NID_commonName, node_id) != 0 ||
        !X509_set_issuer_name(cert, X509_get_subject_name(ca))) {
        goto err_after_new;
    }
    if (pki_node_extensions(cert, ca, node_id, ou) != 0) {
        goto err_after_new;
    }
    if (X509_sign(cert, ca_key, EVP_sha256()) <= 0) {
        goto err_after_new;
    }
    *out = cert;
    return 0;

err_after_new:
    X509_free(cert);
    return pki_fail(errmsg, SWARM_ECRYPTO, "issuing a node certificate");
}

int pki_cert_verify(X509 *ca, X509 *cert, int64_t now, char *errmsg)
{
    return pki_cert_verify_chain(ca, cert, NULL, now, errmsg);
}

/* One subject field as UTF-8 into a 64-byte buffer; "" when absent. */
static int pki_name_get(X509_NAME *name, int nid, char *buf)
{
    buf[0] = '\0';
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0) {
        return SWARM_ENOTFOUND;
    }
    ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n < 0) {
        ERR_clear_error();
        return SWARM_EINVAL;
    }
    /* Truncating would make two identities compare equal; refuse instead.
     * An embedded NUL would do the same. */
    int rv = SWARM_EINVAL;
    if (n <= PKI_NAME_MAX && memchr(utf8, '\0', (size_t)n) == NULL) {
        memcpy(buf, utf8, (size_t)n);
        buf[n] = '\0';
        rv = 0;
    }
    OPENSSL_free(utf8);
    return rv;
}

int pki_cert_identity(X509 *cert, char *cn, char *ou, char *o)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int rv;
    if (cn != NULL && (rv = pki_name_get(name, NID_commonName, cn)) != 0) {
        return rv;
    }
    if (ou != NULL && (rv = pki_name_get(name, NID_organizationalUnitName, ou)) != 0) {
        return rv;
    }
    if (o != NULL && (rv = pki_name_get(name, NID_organizationName, o)) != 0) {
        return rv;
    }
    return 0;
}

static int pki_time_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
        ERR_clear_error();
        return SWARM_EINVAL;
    }
    *out = (int64_t)timegm(&tm);
    return 0;
}

int pki_cert_validity(X509 *cert, int64_t *not_before, int64_t *not_after)
{
    int rv = pki_time_to_unix(X509_get0_notBefore(cert), not_before);
    if (rv != 0) {
        return rv;
    }
    return pki_time_to_unix(X509_get0_notAfter(cert), not_after);
}

int pki_cert_digest_raw(X509 *cert, unsigned char out[32])
{
    unsigned int n = 0;
    if (!X509_digest(cert, EVP_sha256(), out, &n) || n != 32) {
        ERR_clear_error();
        return SWARM_ECRYPTO;
    }
    return 0;
}

int pki_cert_digest_hex(X509 *cert, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[32];
    int rv = pki_cert_digest_raw(cert, raw);
    if (rv != 0) {
        return rv;
    }
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 0xf];
    }
    out[64] = '\0';
    return 0;
}

/* PEM helpers. The writers run a type-specific PEM_write_bio_* into a memory
 * BIO and copy the result out as a NUL-terminated malloc'd string. */
typedef int (*pki_pem_write_fn)(BIO *bio, void *obj);

static int pki_pem_write_cert(BIO *bio, void *obj)
{
    return PEM_write_bio_X509(bio, obj);
}

static int pki_pem_write_key(BIO *bio, void *obj)
{
    /* PKCS#8, unencrypted: files are protected by mode 0600 instead. */
    return PEM_write_bio_PrivateKey(bio, obj, NULL, NULL, 0, NULL, NULL);
}

static int pki_pem_write_csr(BIO *bio, void *obj)
{
    return PEM_write_bio_X509_REQ(bio, obj);
}

static int pki_to_pem(pki_pem_write_fn write_fn, void *obj, char **pem, size_t *len)
{
    int rv = SWARM_ENOMEM;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        goto err;
    }
    if (!write_fn(bio, obj)) {
        rv = SWARM_ECRYPTO;
        goto err_after_bio;
    }
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0) {
        rv = SWARM_ECRYPTO;
        goto err_after_bio;
    }
    char *copy = malloc((size_t)n + 1);
    if (copy == NULL) {
        goto err_after_bio;
    }
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    BIO_free(bio);
    *pem = copy;
    if (len != NULL) {
        *len = (size_t)n;
    }
    return 0;

err_after_bio:
    BIO_free(bio);
err:
    ERR_clear_error();
    return rv;
}

int pki_cert_to_pem(X509 *cert, char **pem, size_t *len)
{
    return pki_to_pem(pki_pem_write_cert, cert, pem, len);
}

int pki_key_to_pem(EVP_PKEY *key, char **pem, size_t *len)
{
    return pki_to_pem(pki_pem_write_key, key, pem, len);
}

int pki_csr_to_pem(X509_REQ *csr, char **pem, size_t *len)
{
    return pki_to_pem(pki_pem_write_csr, csr, pem, len);
}

/* Never prompt on a terminal for a passphrase: an encrypted key is an error. */
static int pki_no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

typedef void *(*pki_pem_read_fn)(BIO *bio);

static void *pki_pem_read_cert(BIO *bio)
{
    return PEM_read_bio_X509(bio, NULL, pki_no_passphrase_cb, NULL);
}

static void *pki_pem_read_key(BIO *bio)
{
    return PEM_read_bio_PrivateKey(bio, NULL, pki_no_passphrase_cb, NULL);
}

static void *pki_pem_read_csr(BIO *bio)
{
    return PEM_read_bio_X509_REQ(bio, NULL, pki_no_passphrase_cb, NULL);
}

static int pki_from_pem(pki_pem_read_fn read_fn, const char *what,
                        const void *pem, size_t len, void **out, char *errmsg)
{
    ERR_clear_error();
    if (pem == NULL || len == 0 || len > INT_MAX) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "not a PEM %s: empty input", what);
        return SWARM_EINVAL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        return pki_fail(errmsg, SWARM_ENOMEM, "allocating a memory BIO");
    }
    void *obj = read_fn(bio);
    BIO_free(bio);
    if (obj == NULL) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "not a PEM %s", what);
        return pki_fail(errmsg, SWARM_EINVAL, prefix);
    }
    *out = obj;
    return 0;
}

int pki_cert_from_pem(const void *pem, size_t len, X509 **out, char *errmsg)
{
    void *obj;
    int rv = pki_from_pem(pki_pem_read_cert, "certificate", pem, len, &obj, errmsg);
    if (rv == 0) {
        *out = obj;
    }
    return rv;
}

int pki_key_from_pem(const void *pem, size_t len, EVP_PKEY **out, char *errmsg)
{
    void *obj;
    int rv = pki_from_pem(pki_pem_read_key, "private key", pem, len, &obj, errmsg);
    if (rv == 0) {
        *out = obj;
    }
    return rv;
}

int pki_csr_from_pem(const void *pem, size_t len, X509_REQ **out, char *errmsg)
{
    void *obj;
    int rv = pki_from_pem(pki_pem_read_csr, "certificate request", pem, len, &obj, errmsg);
    if (rv == 0) {
        *out = obj;
    }
    return rv;
}

static int pki_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Make the rename itself durable: it lives in the directory's data. */
static int pki_fsync_dir(const char *path)
{
    char *dir = strdup(path);
    if (dir == NULL) {
        errno = ENOMEM;
        return -1;
    }
    char *slash = strrchr(dir, '/');
    const char *name = ".";
    if (slash == dir) {
        name = "/";
    } else if (slash != NULL) {
        *slash = '\0';
        name = dir;
    }
    int fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rv = -1;
    if (fd >= 0) {
        rv = fsync(fd);
        close(fd);
    }
    free(dir);
    return rv;
}

int pki_write_file(const char *path, const void *data, size_t len, int mode, char *errmsg)
{
    /* The temp file sits next to the target so rename() stays within one
     * file system and is atomic: readers see the old or the new content. */
    size_t tmp_len = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(tmp_len);
    if (tmp == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: out of memory", path);
        return SWARM_ENOMEM;
    }
    snprintf(tmp, tmp_len, "%s.tmp.XXXXXX", path);
    const char *step = "creating a temporary file";
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        goto err_after_tmp;
    }
    /* fchmod before writing: the secret never sits under a wider mode. */
    step = "setting the mode";
    if (fchmod(fd, (mode_t)mode) != 0) {
        goto err_after_open;
    }
    step = "writing";
    if (pki_write_all(fd, data, len) != 0) {
        goto err_after_open;
    }
    step = "syncing";
    if (fsync(fd) != 0) {
        goto err_after_open;
    }
    step = "closing";
    if (close(fd) != 0) {
        fd = -1;
        goto err_after_open;
    }
    fd = -1;
    step = "renaming into place";
    if (rename(tmp, path) != 0) {
        goto err_after_open;
    }
    free(tmp);
    if (pki_fsync_dir(path) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: syncing the directory: %s", path,
                      strerror(errno));
        return SWARM_EIO;
    }
    return 0;

err_after_open : {
    int saved = errno;
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    errno = saved;
}
err_after_tmp:
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s: %s", path, step, strerror(errno));
    free(tmp);
    return SWARM_EIO;
}

int pki_read_file(const char *path, char **data, size_t *len, char *errmsg)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? SWARM_ENOTFOUND : SWARM_EIO;
    }
    /* Read until EOF rather than trusting st_size: the file may be a pipe,
     * or grow while we read. */
    size_t cap = 0, n = 0;
    char *buf = NULL;
    for (;;) {
        if (cap - n < 2 && vec_grow(buf, cap, n < 4096 ? 4096 : n + 2) != 0) {
            goto err_nomem;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: reading: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return SWARM_EIO;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    if (len != NULL) {
        *len = n;
    }
    return 0;

err_nomem:
    free(buf);
    close(fd);
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: out of memory", path);
    return SWARM_ENOMEM;
}

/* What server and client contexts share: TLS 1.3 only, our identity if any,
 * and `root` as the only trust anchor if any. */
static int pki_ctx_new(const SSL_METHOD *method, X509 *root, X509 *cert,
                       EVP_PKEY *key, SSL_CTX **out, char *errmsg)
{
    const char *step = "creating the TLS context";
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL) {
        goto err;
    }
    step = "restricting to TLS 1.3";
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
        goto err_after_ctx;
    }
    /* A manager holds a session with every node, mostly idle between
     * heartbeats: give the ~34 KB read/write buffers back while idle. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (cert != NULL) {
        step = "loading the certificate and key";
        if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            goto err_after_ctx;
        }
    }
    if (root != NULL) {
        step = "adding the root CA to the trust store";
        if (!X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), root)) {
            goto err_after_ctx;
        }
    }
    *out = ctx;
    return 0;

err_after_ctx:
    SSL_CTX_free(ctx);
err:
    return pki_fail(errmsg, SWARM_ETLS, step);
}

int pki_server_ctx(X509 *root, X509 *cert, EVP_PKEY *key, SSL_CTX **out, char *errmsg)
{
    if (root == NULL || cert == NULL || key == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "a TLS server needs a root CA, a certificate and a key");
        return SWARM_EINVAL;
    }
    SSL_CTX *ctx;
    int rv = pki_ctx_new(TLS_server_method(), root, cert, key, &ctx, errmsg);
    if (rv != 0) {
        return rv;
    }
    /* Request without requiring (no SSL_VERIFY_FAIL_IF_NO_PEER_CERT): a node
     * that is joining has no certificate yet and may only reach the CA
     * service, which the RPC layer decides from the (absent) peer cert. A
     * certificate that is presented must chain to `root`. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    *out = ctx;
    return 0;
}

int pki_client_ctx(X509 *root, X509 *cert, EVP_PKEY *key, SSL_CTX **out, char *errmsg)
{
    if ((cert == NULL) != (key == NULL)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "a TLS client needs both a certificate and a key, or neither");
        return SWARM_EINVAL;
    }
    SSL_CTX *ctx;
    int rv = pki_ctx_new(TLS_client_method(), root, cert, key, &ctx, errmsg);
    if (rv != 0) {
        return rv;
    }
    /* Without a root the caller is fetching the root CA at join time and
     * checks it against the join token's digest before trusting anything. */
    SSL_CTX_set_verify(ctx, root != NULL ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    *out = ctx;
    return 0;
}
