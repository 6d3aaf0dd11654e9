/* See identity.h. */
#include "identity.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "err.h"
#include "pki.h"
#include "pkichain.h"
#include "statedir.h"

static int write_pem_file(const char *dir, const char *name, char *pem, size_t len,
                          char *errmsg)
{
    char path[PATH_MAX];
    int rv;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    rv = pki_write_file(path, pem, len, 0600, errmsg);
    free(pem);
    return rv;
}

int identity_create(struct identity *id, const char *state_dir, const char *node_id,
                    const char *cluster_id, int64_t now_s, int64_t node_lifetime_s,
                    EVP_PKEY **root_key_out, char *errmsg)
{
    char certdir[PATH_MAX];
    EVP_PKEY *root_key = NULL;
    char *pem;
    size_t len;
    int rv;

    snprintf(certdir, sizeof certdir, "%s/%s", state_dir, STATEDIR_CERTS);
    if (mkdir(certdir, 0700) != 0 && errno != EEXIST) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "mkdir %s: %s", certdir, strerror(errno));
        return SWARM_EIO;
    }
    if ((rv = pki_key_generate(&root_key, errmsg)) != 0 ||
        (rv = pki_root_ca_create(root_key, now_s, PKI_ROOT_LIFETIME_S, &id->root_cert,
                                 errmsg)) != 0 ||
        (rv = pki_key_generate(&id->node_key, errmsg)) != 0 ||
        (rv = pki_cert_issue(id->root_cert, root_key, id->node_key, node_id, API_OU_MANAGER,
                             cluster_id, now_s, node_lifetime_s, &id->node_cert, errmsg)) != 0) {
        goto err;
    }
    if ((rv = pki_cert_to_pem(id->root_cert, &pem, &len)) != 0 ||
        (rv = write_pem_file(certdir, STATEDIR_ROOT_CA_CERT_NAME, pem, len, errmsg)) != 0 ||
        (rv = pki_cert_to_pem(id->node_cert, &pem, &len)) != 0 ||
        (rv = write_pem_file(certdir, STATEDIR_NODE_CERT_NAME, pem, len, errmsg)) != 0 ||
        (rv = pki_key_to_pem(id->node_key, &pem, &len)) != 0 ||
        (rv = write_pem_file(certdir, STATEDIR_NODE_KEY_NAME, pem, len, errmsg)) != 0) {
        goto err;
    }
    *root_key_out = root_key;
    return 0;
err:
    EVP_PKEY_free(root_key);
    return rv;
}

int identity_load(struct identity *id, const char *state_dir, char *errmsg)
{
    static const char *names[] = {STATEDIR_ROOT_CA_CERT, STATEDIR_NODE_CERT, STATEDIR_NODE_KEY};
    char path[PATH_MAX];
    char *data[3] = {NULL, NULL, NULL};
    size_t len[3];
    int rv = 0;

    for (int i = 0; i < 3 && rv == 0; i++) {
        snprintf(path, sizeof path, "%s/%s", state_dir, names[i]);
        rv = pki_read_file(path, &data[i], &len[i], errmsg);
    }
    if (rv == 0) {
        rv = pki_cert_from_pem(data[0], len[0], &id->root_cert, errmsg);
    }
    if (rv == 0) {
        rv = pki_chain_from_pem(data[1], len[1], &id->node_cert, &id->node_chain, errmsg);
    }
    if (rv == 0) {
        rv = pki_key_from_pem(data[2], len[2], &id->node_key, errmsg);
    }
    for (int i = 0; i < 3; i++) {
        free(data[i]);
    }
    return rv;
}

int identity_contexts_new(struct identity *id, char *errmsg)
{
    int rv = pki_server_ctx(id->root_cert, id->node_cert, id->node_key, &id->server_ctx, errmsg);
    if (rv == 0) {
        rv = pki_client_ctx(id->root_cert, id->node_cert, id->node_key, &id->client_ctx, errmsg);
    }
    /* A certificate issued during a root rotation carries its intermediate. */
    if (rv == 0 && id->node_chain != NULL && sk_X509_num(id->node_chain) > 0) {
        rv = identity_reload(id, NULL, NULL, NULL, NULL, errmsg);
    }
    return rv;
}

int identity_reload(struct identity *id, X509 *root, X509 *cert, STACK_OF(X509) *chain,
                    EVP_PKEY *key, char *errmsg)
{
    int rv;
    if (root != NULL) {
        X509_up_ref(root);
        X509_free(id->root_cert);
        id->root_cert = root;
    }
    if (cert != NULL) {
        STACK_OF(X509) *copy = chain != NULL ? X509_chain_up_ref(chain) : sk_X509_new_null();
        if (copy == NULL) {
            return SWARM_ENOMEM;
        }
        X509_up_ref(cert);
        EVP_PKEY_up_ref(key);
        X509_free(id->node_cert);
        pki_chain_free(id->node_chain);
        EVP_PKEY_free(id->node_key);
        id->node_cert = cert;
        id->node_chain = copy;
        id->node_key = key;
    }
    /* In place: the listener, the raft transport and the forwarders hold
     * these contexts; connections made from now on use the new material. */
    rv = pki_ctx_set_identity(id->server_ctx, id->root_cert, id->node_cert, id->node_chain,
                              id->node_key, errmsg);
    if (rv == 0) {
        rv = pki_ctx_set_identity(id->client_ctx, id->root_cert, id->node_cert, id->node_chain,
                                  id->node_key, errmsg);
    }
    return rv;
}

int identity_trust_root(struct identity *id, X509 *root, char *errmsg)
{
    if (id->server_ctx == NULL) {
        X509_free(id->root_cert);
        X509_up_ref(root);
        id->root_cert = root;
        return 1;
    }
    return identity_reload(id, root, NULL, NULL, NULL, errmsg);
}

void identity_free(struct identity *id)
{
    X509_free(id->root_cert);
    X509_free(id->node_cert);
    pki_chain_free(id->node_chain);
    EVP_PKEY_free(id->node_key);
    SSL_CTX_free(id->server_ctx);
    SSL_CTX_free(id->client_ctx);
    *id = (struct identity){0};
}
