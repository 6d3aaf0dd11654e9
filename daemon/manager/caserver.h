/* The CA service on the cluster port (caserver.c): GetRootCACertificate for
 * anyone, IssueNodeCertificate for joins (with a token) and renewals (over
 * mutual TLS), always decided by the leader (routed, forward.h).
 *
 * Environment: the manager's menv (store, propose, now) and the trust root
 * this manager serves (caserver_config). The signing key is read from the
 * cluster object in the store at each issue (carotate_signer).
 *
 * Ownership and lifecycle:
 *   - caserver_register is called once per process; the handlers find the
 *     running module through the slot (mslot.h). GetRootCACertificate
 *     answers as soon as a manager published its module (also while it
 *     starts); IssueNodeCertificate only while it runs.
 *   - caserver_new makes the module of one manager; the owner ends it with
 *     caserver_close, never free. In flight: the Node objects proposed for
 *     joins (each holds the module until its callback ran; the certificate
 *     is handed out only once the Node is committed). The module is freed,
 *     and `cb` runs once, when none is left (close after drain). */
#ifndef SWARM_MANAGER_CASERVER_H
#define SWARM_MANAGER_CASERVER_H

#include <openssl/x509.h>

#include "api.h"
#include "menv.h"
#include "mslot.h"

struct caserver_config {
    /* The trust root (borrowed, valid during the call; NULL: none yet). */
    X509 *(*root_cert)(void *impl);
    void *impl;
};

struct caserver;

/* NULL when out of memory. `env` and cfg->impl outlive the module. */
struct caserver *caserver_new(const struct menv *env, const struct caserver_config *cfg);

/* Close after drain (see the top). */
void caserver_close(struct caserver *ca, void (*cb)(void *data), void *data);

void caserver_register(struct api_server *server, struct manager_slot *slot);

#endif
