/* The manager's identity (identity.c): the cluster's root certificate, this
 * node's certificate, its intermediates and its key, and the two TLS
 * contexts made from them (the listener's and the one used to dial other
 * managers).
 *
 * Ownership: a struct identity owns one reference to each object it holds;
 * identity_free drops them. The TLS contexts are shared by reference with
 * whoever serves or dials with them (the API server, the raft transport,
 * forwarding, peers): identity_reload changes them in place, so connections
 * made from then on use the new material, and the owner frees the identity
 * only after those users are gone.
 *
 * Files: identity_create and identity_load read and write only the
 * certificates part of the state dir (statedir.h), through pki.h. Nothing
 * here touches the loop. */
#ifndef SWARM_MANAGER_IDENTITY_H
#define SWARM_MANAGER_IDENTITY_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>

struct identity {
    X509 *root_cert;
    X509 *node_cert;
    STACK_OF(X509) *node_chain; /* intermediates sent with node_cert, or NULL */
    EVP_PKEY *node_key;
    SSL_CTX *server_ctx;        /* NULL until identity_contexts_new */
    SSL_CTX *client_ctx;        /* to other managers, with our certificate */
};

/* A new cluster's keys and certificates (swarm init): a root CA valid from
 * `now_s` and this node's manager certificate for `node_id` in `cluster_id`,
 * valid `node_lifetime_s`, written under state_dir/certificates. The root
 * key goes to *root_key_out (the caller stores it in the cluster object and
 * frees it). On error `id` may hold part of it: identity_free frees it. */
int identity_create(struct identity *id, const char *state_dir, const char *node_id,
                    const char *cluster_id, int64_t now_s, int64_t node_lifetime_s,
                    EVP_PKEY **root_key_out, char *errmsg);

/* The root, node certificate (with its chain) and key from the state dir. */
int identity_load(struct identity *id, const char *state_dir, char *errmsg);

/* The TLS contexts for the material `id` holds. */
int identity_contexts_new(struct identity *id, char *errmsg);

/* Take a new root and/or a new node certificate (with its chain, which may
 * be NULL, and key): NULL leaves that part as it is. The identity takes its
 * own references. The TLS contexts, if made, are updated in place. */
int identity_reload(struct identity *id, X509 *root, X509 *cert, STACK_OF(X509) *chain,
                    EVP_PKEY *key, char *errmsg);

/* Trust a new root (the CA rotation's view): before the TLS contexts exist
 * it is simply the root they will be made with (returns 1), else as
 * identity_reload with `root` alone. */
int identity_trust_root(struct identity *id, X509 *root, char *errmsg);

void identity_free(struct identity *id);

#endif
