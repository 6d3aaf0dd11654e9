/* See join.h.
 *
 *   parse token -> connect TLS (verifying nothing) -> GetRootCACertificate
 *   -> digest of that root == digest in token? -> close -> connect TLS
 *   trusting only that root (server name swarm-manager) -> key + CSR ->
 *   IssueNodeCertificate(csr, token) -> certificate signed by that root and
 *   naming our key? -> done(0)
 * Any failure: done(error) with a message; nothing was written. */
#include "join.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "err.h"
#include "pki.h"
#include "pkichain.h"
#include "token.h"
#include "pbcopy.h"

#define JOIN_TIMEOUT_MS 15000

struct join {
    uv_loop_t *loop;
    char remote[64];
    char token[TOKEN_LEN + 1];
    struct token_parts parts;
    char advertise[64];
    Swarm__NodeAvailability availability;
    Swarm__NodeDescription *description;
    struct api_client *client;
    SSL_CTX *ctx;
    struct join_result *res;
    join_done_cb cb;
    void *data;
    int status;
    bool fetch_only; /* join_fetch_root: stop once the root is read */
    bool cancelled;  /* join_cancel: the client's callbacks end nothing more */
    char errmsg[SWARM_ERRMSG_SIZE];
};

static void join_closed_cb(void *data)
{
    struct join *j = data;
    join_done_cb cb = j->cb;
    struct join_result *res = j->status == 0 ? j->res : NULL;
    if (j->status != 0 && j->res != NULL) {
        join_result_free(j->res);
    }
    SSL_CTX_free(j->ctx);
    cb(j->status, j->status ? j->errmsg : NULL, res, j->data);
    free(j);
}

/* End the join: close the connection, then report. */
static void join_finish(struct join *j, int status)
{
    struct api_client *c = j->client;
    j->status = status;
    j->client = NULL;
    if (c != NULL) {
        api_client_close(c, join_closed_cb, j);
        return;
    }
    join_closed_cb(j);
}

static void fail(struct join *j, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct join *j, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->errmsg, sizeof j->errmsg, fmt, ap);
    va_end(ap);
    join_finish(j, status);
}

static void issue_cb(enum api_status status, const char *message, const ProtobufCMessage *msg,
                     void *data)
{
    struct join *j = data;
    const Swarm__IssueNodeCertificateResponse *resp =
        (const Swarm__IssueNodeCertificateResponse *)msg;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    char cn[64] = "";
    if (j->cancelled) {
        return;
    }
    if (status != API_OK) {
        fail(j, status == API_INVALID_ARGUMENT ? SWARM_ETOKEN : SWARM_EUNAVAIL, "%s", message ? message : "");
        return;
    }
    /* The leaf, then (during a root rotation) the cross-signed new root
     * that links it to the root we trust. */
    if (pki_chain_from_pem(resp->certificate.data, resp->certificate.len, &j->res->cert,
                           &j->res->chain, errmsg) != 0 ||
        pki_cert_verify_chain(j->res->root, j->res->cert, j->res->chain, (int64_t)time(NULL),
                              errmsg) != 0 ||
        X509_check_private_key(j->res->cert, j->res->key) != 1 ||
        pki_cert_identity(j->res->cert, cn, NULL, NULL) != 0 || strcmp(cn, resp->node_id) != 0) {
        fail(j, SWARM_ECRYPTO, "the manager sent an unusable certificate");
        return;
    }
    /* Keep a copy: the runtime frees `msg` after this callback. */
    j->res->resp = pb_copy(msg);
    join_finish(j, j->res->resp != NULL ? 0 : SWARM_ENOMEM);
}

static void trusted_connected_cb(struct api_client *c, int status, const char *errmsg, void *data)
{
    struct join *j = data;
    Swarm__IssueNodeCertificateRequest req = SWARM__ISSUE_NODE_CERTIFICATE_REQUEST__INIT;
    char emsg[SWARM_ERRMSG_SIZE] = "";
    X509_REQ *csr = NULL;
    char *pem = NULL;
    size_t len;
    if (j->cancelled) {
        return;
    }
    if (status != 0) {
        fail(j, SWARM_EUNAVAIL, "could not connect to the manager: %s", errmsg);
        return;
    }
    if (pki_key_generate(&j->res->key, emsg) != 0 || pki_csr_create(j->res->key, &csr, emsg) != 0 ||
        pki_csr_to_pem(csr, &pem, &len) != 0) {
        X509_REQ_free(csr);
        fail(j, SWARM_ECRYPTO, "could not create a key and CSR: %s", emsg);
        return;
    }
    X509_REQ_free(csr);
    req.csr.data = (uint8_t *)pem;
    req.csr.len = len;
    req.token = j->token;
    req.availability = j->availability;
    req.advertise_addr = j->advertise;
    req.description = j->description;
    if (api_client_unary(j->client, &swarm__ca__descriptor, "IssueNodeCertificate", &req.base,
                         JOIN_TIMEOUT_MS, issue_cb, j) != 0) {
        free(pem);
        fail(j, SWARM_EUNAVAIL, "could not reach the manager");
        return;
    }
    free(pem);
}

static void untrusted_closed_cb(void *data)
{
    struct join *j = data;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    if (j->cancelled) {
        fail(j, SWARM_ECANCELED, "cancelled");
        return;
    }
    if (pki_client_ctx(j->res->root, NULL, NULL, &j->ctx, errmsg) != 0) {
        fail(j, SWARM_ECRYPTO, "%s", errmsg);
        return;
    }
    j->client = api_client_new(j->loop, API_DEFAULT_MAX_MSG);
    if (j->client == NULL ||
        api_client_connect_tls(j->client, j->remote, j->ctx, NULL, JOIN_TIMEOUT_MS,
                               trusted_connected_cb, j) != 0) {
        fail(j, SWARM_EUNAVAIL, "could not connect to the manager");
    }
}

static void root_ca_cb(enum api_status status, const char *message, const ProtobufCMessage *msg,
                       void *data)
{
    struct join *j = data;
    const Swarm__GetRootCACertificateResponse *resp =
        (const Swarm__GetRootCACertificateResponse *)msg;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    unsigned char digest[32];
    struct api_client *c;
    if (j->cancelled) {
        return;
    }
    if (status != API_OK) {
        fail(j, SWARM_EUNAVAIL, "could not fetch the root CA: %s", message);
        return;
    }
    if (pki_cert_from_pem(resp->certificate.data, resp->certificate.len, &j->res->root,
                          errmsg) != 0) {
        fail(j, SWARM_ECRYPTO, "the manager sent an invalid root CA: %s", errmsg);
        return;
    }
    if (j->fetch_only) {
        join_finish(j, 0);
        return;
    }
    pki_cert_digest_raw(j->res->root, digest);
    if (!token_matches_ca(&j->parts, digest)) {
        /* Docker's words: the token names a different CA than the one the
         * remote presents; nothing secret has been sent. */
        fail(j, SWARM_ETOKEN,
             "remote CA does not match fingerprint. Expected: %s (the join token belongs to "
             "another swarm, or the address is not one of its managers)",
             j->parts.digest);
        return;
    }
    /* Reconnect, this time verifying the manager against that root. */
    c = j->client;
    j->client = NULL;
    api_client_close(c, untrusted_closed_cb, j);
}

static void untrusted_connected_cb(struct api_client *c, int status, const char *errmsg,
                                   void *data)
{
    struct join *j = data;
    Swarm__GetRootCACertificateRequest req = SWARM__GET_ROOT_CACERTIFICATE_REQUEST__INIT;
    if (j->cancelled) {
        return;
    }
    if (status != 0) {
        fail(j, SWARM_EUNAVAIL, "could not connect to the manager: %s", errmsg);
        return;
    }
    if (api_client_unary(c, &swarm__ca__descriptor, "GetRootCACertificate", &req.base,
                         JOIN_TIMEOUT_MS, root_ca_cb, j) != 0) {
        fail(j, SWARM_EUNAVAIL, "could not reach the manager");
    }
}

int join_start(uv_loop_t *loop, const struct join_params *p, join_done_cb cb, void *data,
               struct join **handle, char *errmsg)
{
    struct join *j;
    int rv;
    SSL_CTX *insecure = NULL;

    j = calloc(1, sizeof *j);
    if (j == NULL) {
        return SWARM_ENOMEM;
    }
    rv = token_parse(p->token, &j->parts, errmsg);
    if (rv != 0) {
        free(j);
        return rv;
    }
    j->res = calloc(1, sizeof *j->res);
    if (j->res == NULL) {
        free(j);
        return SWARM_ENOMEM;
    }
    j->loop = loop;
    j->cb = cb;
    j->data = data;
    j->availability = p->availability;
    j->description = p->description;
    snprintf(j->remote, sizeof j->remote, "%s", p->remote_addr);
    snprintf(j->token, sizeof j->token, "%s", p->token);
    snprintf(j->advertise, sizeof j->advertise, "%s", p->advertise_addr);
    rv = pki_client_ctx(NULL, NULL, NULL, &insecure, errmsg);
    if (rv != 0) {
        free(j->res);
        free(j);
        return rv;
    }
    j->ctx = NULL;
    j->client = api_client_new(loop, API_DEFAULT_MAX_MSG);
    rv = api_client_connect_tls(j->client, j->remote, insecure, NULL, JOIN_TIMEOUT_MS,
                                untrusted_connected_cb, j);
    SSL_CTX_free(insecure); /* the client holds its own reference */
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "could not connect to %s", j->remote);
        api_client_close(j->client, NULL, NULL);
        free(j->res);
        free(j);
        return SWARM_EUNAVAIL;
    }
    if (handle != NULL) {
        *handle = j;
    }
    return 0;
}

int join_renew(uv_loop_t *loop, const char *manager_addr, SSL_CTX *ctx, X509 *root,
               join_done_cb cb, void *data, struct join **handle, char *errmsg)
{
    struct join *j = calloc(1, sizeof *j);
    if (j == NULL) {
        return SWARM_ENOMEM;
    }
    j->res = calloc(1, sizeof *j->res);
    if (j->res == NULL) {
        free(j);
        return SWARM_ENOMEM;
    }
    j->loop = loop;
    j->cb = cb;
    j->data = data;
    snprintf(j->remote, sizeof j->remote, "%s", manager_addr);
    X509_up_ref(root);
    j->res->root = root;
    SSL_CTX_up_ref(ctx);
    j->ctx = ctx;
    j->client = api_client_new(loop, API_DEFAULT_MAX_MSG);
    if (j->client == NULL ||
        api_client_connect_tls(j->client, j->remote, ctx, NULL, JOIN_TIMEOUT_MS,
                               trusted_connected_cb, j) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "could not connect to %s", manager_addr);
        if (j->client != NULL) {
            api_client_close(j->client, NULL, NULL);
        }
        SSL_CTX_free(j->ctx);
        join_result_free(j->res);
        free(j);
        return SWARM_EUNAVAIL;
    }
    if (handle != NULL) {
        *handle = j;
    }
    return 0;
}

Swarm__NodeTLSInfo *join_tls_info(X509 *root, X509 *cert, STACK_OF(X509) *chain)
{
    Swarm__NodeTLSInfo *t = calloc(1, sizeof *t);
    char *pem = NULL;
    size_t len = 0;
    if (t == NULL) {
        return NULL;
    }
    swarm__node_tlsinfo__init(t);
    if (pki_cert_to_pem(root, &pem, &len) == 0) {
        t->trust_root.data = (uint8_t *)pem;
        t->trust_root.len = len;
    }
    pki_cert_issuer_info(cert, chain, root, &t->cert_issuer_subject.data,
                         &t->cert_issuer_subject.len, &t->cert_issuer_public_key.data,
                         &t->cert_issuer_public_key.len);
    return t;
}

int join_fetch_root(uv_loop_t *loop, const char *manager_addr, join_done_cb cb, void *data,
                    struct join **handle, char *errmsg)
{
    SSL_CTX *insecure = NULL;
    struct join *j = calloc(1, sizeof *j);
    int rv;
    if (j == NULL || (j->res = calloc(1, sizeof *j->res)) == NULL) {
        free(j);
        return SWARM_ENOMEM;
    }
    j->loop = loop;
    j->cb = cb;
    j->data = data;
    j->fetch_only = true;
    snprintf(j->remote, sizeof j->remote, "%s", manager_addr);
    rv = pki_client_ctx(NULL, NULL, NULL, &insecure, errmsg);
    j->client = rv == 0 ? api_client_new(loop, API_DEFAULT_MAX_MSG) : NULL;
    if (j->client == NULL ||
        api_client_connect_tls(j->client, j->remote, insecure, NULL, JOIN_TIMEOUT_MS,
                               untrusted_connected_cb, j) != 0) {
        if (j->client != NULL) {
            api_client_close(j->client, NULL, NULL);
        }
        SSL_CTX_free(insecure);
        free(j->res);
        free(j);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "could not connect to %s", manager_addr);
        return SWARM_EUNAVAIL;
    }
    SSL_CTX_free(insecure);
    if (handle != NULL) {
        *handle = j;
    }
    return 0;
}

void join_cancel(struct join *j)
{
    struct api_client *c = j->client;
    if (j->cancelled) {
        return;
    }
    j->cancelled = true;
    if (c == NULL) {
        /* Between two connections (untrusted_closed_cb ends it) or already
         * finishing (join_closed_cb reports). */
        return;
    }
    /* The client calls back what was pending (ignored: cancelled), then
     * join_closed_cb reports. */
    j->client = NULL;
    j->status = SWARM_ECANCELED;
    snprintf(j->errmsg, sizeof j->errmsg, "cancelled");
    api_client_close(c, join_closed_cb, j);
}

void join_result_free(struct join_result *res)
{
    if (res == NULL) {
        return;
    }
    X509_free(res->root);
    X509_free(res->cert);
    pki_chain_free(res->chain);
    EVP_PKEY_free(res->key);
    if (res->resp != NULL) {
        swarm__issue_node_certificate_response__free_unpacked(res->resp, NULL);
    }
    free(res);
}
