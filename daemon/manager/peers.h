/* Reachability of the other managers (peers.c), for `node ls` MANAGER
 * STATUS, the role manager's and demotion's quorum checks: every
 * PEERS_PERIOD_MS this manager calls a cheap method (CA.GetRootCACertificate)
 * on every other manager in the store over mutual TLS, on one kept
 * connection per peer. A peer that answered within the last PEERS_STALE_MS is
 * Reachable, one that did not Unreachable, one never probed yet Unknown;
 * this manager itself is always Reachable.
 *
 * Environment: the manager's menv (loop, store) and a peers_config: this
 * manager's node ID and the TLS client context with its certificate.
 *
 * Ownership and lifecycle:
 *   - peers_new makes the prober (idle); peers_start starts probing (when
 *     the manager runs). The owner ends it with peers_close, never free.
 *   - In flight: one connection per peer (with at most one probe each) and
 *     the timer. peers_close stops probing, closes every connection (their
 *     probes end UNAVAILABLE) and the timer, and frees the prober once all
 *     are closed; then `cb` runs, once (close after drain). */
#ifndef SWARM_MANAGER_PEERS_H
#define SWARM_MANAGER_PEERS_H

#include <openssl/ssl.h>

#include "menv.h"
#include "swarm.pb-c.h"

struct peers_config {
    const char *node_id; /* this manager's (borrowed, outlives the prober) */
    /* The client context with this manager's certificate (borrowed; NULL:
     * no probing yet). */
    SSL_CTX *(*client_ctx)(void *impl);
    void *impl;
};

struct peers;

/* NULL when out of memory. `env` and cfg->impl outlive the prober. */
struct peers *peers_new(const struct menv *env, const struct peers_config *cfg);
void peers_start(struct peers *ps);
Swarm__Reachability peers_reachability(struct peers *ps, const char *node_id);

/* Close after drain (see the top). */
void peers_close(struct peers *ps, void (*cb)(void *data), void *data);

#endif
