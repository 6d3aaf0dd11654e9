/* The joining side of `swarm join`: fetch the root CA from a manager without
 * trusting it, check it against the digest in the token, then, trusting only
 * that root, send a CSR with the token and receive this node's certificate.
 * Nothing is written to disk here: the caller writes the result once the
 * whole exchange succeeded, so a failed join leaves nothing behind. */
#ifndef SWARM_DAEMON_JOIN_H
#define SWARM_DAEMON_JOIN_H

#include <openssl/x509.h>
#include <uv.h>

#include "ca.pb-c.h"
#include "objects.pb-c.h"

struct join_result {
    X509 *root;                               /* owned by the result */
    X509 *cert;
    STACK_OF(X509) *chain;                    /* intermediates sent with cert (may be empty) */
    EVP_PKEY *key;
    Swarm__IssueNodeCertificateResponse *resp; /* node ID, role, raft id, managers */
};

/* status 0 with a result the callee owns (free with join_result_free), or a
 * SWARM_E* code and a message for the user. */
typedef void (*join_done_cb)(int status, const char *errmsg, struct join_result *res, void *data);

struct join_params {
    const char *remote_addr;     /* manager IP:PORT */
    const char *token;
    const char *advertise_addr;  /* our IP:PORT */
    Swarm__NodeAvailability availability;
    Swarm__NodeDescription *description;
};

/* A join, renewal or root fetch under way (`handle`, may be NULL: set on
 * success, valid until the callback has run). */
struct join;

int join_start(uv_loop_t *loop, const struct join_params *p, join_done_cb cb, void *data,
               struct join **handle, char *errmsg);

/* Renewal: over mutual TLS with the node's current certificate (`ctx`,
 * trusting `root`), a new key and CSR without a token; the manager answers
 * with a certificate for the role the store now gives the node (this is how
 * a promotion or demotion reaches it). Same callback contract as join. */
int join_renew(uv_loop_t *loop, const char *manager_addr, SSL_CTX *ctx, X509 *root,
               join_done_cb cb, void *data, struct join **handle, char *errmsg);

/* Fetch the root CA a manager presents, trusting nothing (only to tell a
 * node whose root the swarm no longer trusts what happened): status 0 with
 * res->root. */
int join_fetch_root(uv_loop_t *loop, const char *manager_addr, join_done_cb cb, void *data,
                    struct join **handle, char *errmsg);

/* Stop it (the node closes): the connection is closed and the callback
 * runs later, never inside this call, with SWARM_ECANCELED (or with what
 * it had already got). Call it only before the callback has run. */
void join_cancel(struct join *j);

/* What a node reports about its certificate (swarmkit's TLSInfo): the root
 * it trusts (PEM), its certificate's issuer (DER subject and public key).
 * Free with swarm__node_tlsinfo__free_unpacked; NULL when out of memory. */
Swarm__NodeTLSInfo *join_tls_info(X509 *root, X509 *cert, STACK_OF(X509) *chain);

void join_result_free(struct join_result *res);

#endif
