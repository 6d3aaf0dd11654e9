/* Root CA rotation (carotate.c; the protocol is described at its top).
 *
 * Two pure functions of the cluster object, for the API handlers
 * (UpdateCluster, IssueNodeCertificate): carotate_start and
 * carotate_signer. And the reconciler, a module instance:
 *
 * Environment: a `const struct menv *` (loop, store, propose, is_leader)
 * and a struct carotate_config: the dispatcher (to ask nodes to renew) and
 * the manager's trust root (read it; trust a new one). The menv, the
 * dispatcher and the config's data outlive the reconciler.
 *
 * Ownership and lifecycle:
 *   - carotate_new allocates it and its timer on env->loop; the owner ends
 *     it with carotate_close, never with free.
 *   - It keeps, per rotation, the nodes it saw not ready (and since when).
 *   - On every manager it makes the manager trust the store's root
 *     (carotate_sync_root, also on each cluster change); on the leader it
 *     asks unconverged nodes to renew and, once all are converged, proposes
 *     the new root (at most one proposal in flight).
 *   - carotate_close stops it at once (no pass starts again), closes the
 *     timer, and frees it only once the timer is closed AND the proposal in
 *     flight has come back (close after drain); then `cb` runs, once. */
#ifndef SWARM_MANAGER_CAROTATE_H
#define SWARM_MANAGER_CAROTATE_H

#include <openssl/x509.h>
#include <stdbool.h>

#include "dispatcher.h"
#include "menv.h"
#include "store.h"
#include "swarm.pb-c.h"

/* The leader's part of UpdateCluster when the spec asks for a rotation
 * (swarm ca --rotate): edits `c` (the stored cluster about to be written:
 * root_ca.root_rotation gets the new root, cross-signed by the current one)
 * or fails with a message in errmsg. Nothing to do: 0, `c` untouched. */
int carotate_start(Swarm__Cluster *c, const Swarm__ClusterSpec *req_spec, char *errmsg);

/* The signer for new node certificates: the rotation's new root when one
 * runs (with the cross-signed certificate as chain), else the root. The
 * caller frees *ca, *key and *chain. */
int carotate_signer(const Swarm__Cluster *c, X509 **ca, EVP_PKEY **key, STACK_OF(X509) **chain,
                    char *errmsg);

struct carotate;

struct carotate_config {
    struct dispatcher *dispatcher;
    /* The root this manager trusts now (borrowed; NULL if none). */
    X509 *(*root_cert)(void *data);
    /* Trust `root` (up-ref'd by the callee if kept) from now on: 0 when the
     * connections made from now on use it, 1 when it was simply adopted
     * (nothing serves yet), or a SWARM_E* error with errmsg. */
    int (*trust_root)(void *data, X509 *root, char *errmsg);
    void *data;
};

/* NULL when out of memory. `env->store` must be set; `cfg` is copied. */
struct carotate *carotate_new(const struct menv *env, const struct carotate_config *cfg);
/* Trust the store's root (at start, and on each cluster change). */
void carotate_sync_root(struct carotate *ca);
/* A committed store change (node and cluster changes wake the reconciler;
 * a cluster change syncs the root first). NULL `ca` is ignored. */
void carotate_on_event(struct carotate *ca, const struct store_event *ev);
/* Leadership changes: a new leader takes over from the store. */
void carotate_set_leader(struct carotate *ca, bool leader);
/* Close after drain (see the top). NULL `ca`: `cb` runs at once. */
void carotate_close(struct carotate *ca, void (*cb)(void *data), void *data);

#endif
