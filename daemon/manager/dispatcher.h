/* The dispatcher (leader only): the sessions nodes hold with the leader,
 * their heartbeats, assignments and task status reports. The protocol is
 * described at the top of dispatcher.c.
 *
 * Environment: a `const struct menv *` (loop, store, propose, leader, now)
 * and a struct dispatcher_config (the root certificate to hand to nodes);
 * it never sees the manager. The menv and the config's data outlive the
 * dispatcher.
 *
 * Ownership and lifecycle:
 *   - dispatcher_new allocates it, three timers on env->loop and the
 *     NetworkMaps streams' module (netmaps.h, one timer); its owner
 *     ends it with dispatcher_close, never with free.
 *   - It serves only between dispatcher_set_leader(d, true) and (d, false):
 *     sessions live on the leader alone; losing the leadership ends every
 *     session and fails the queued status reports.
 *   - In flight at any time: the API calls of open sessions (owned by the
 *     API server; the dispatcher answers or ends each), at most one
 *     proposal (a flush of status reports and node states, whose callback
 *     answers the UpdateTaskStatus calls it carried), and its timers.
 *   - dispatcher_close ends every session and fails what is queued at once,
 *     closes the timers and the NetworkMaps module, and frees the
 *     dispatcher only once the timers are
 *     closed AND the flush in flight has come back (close after drain); then
 *     `cb` runs, once. After dispatcher_close returns, no function of this
 *     module may be called with `d`; its own callbacks may still run until
 *     `cb` and only drain.
 *   - The API handlers (dispatcher_register) reach the dispatcher through a
 *     slot the owner fills while it serves (mslot.h) and clears before
 *     closing it. */
#ifndef SWARM_MANAGER_DISPATCHER_H
#define SWARM_MANAGER_DISPATCHER_H

#include <openssl/x509.h>
#include <stdbool.h>

#include "api.h"
#include "logs.pb-c.h"
#include "menv.h"
#include "store.h"

struct dispatcher;

struct dispatcher_config {
    /* The root CA certificate this manager trusts now (borrowed; NULL if
     * none), sent to each node when its session opens. */
    X509 *(*root_cert)(void *data);
    void *data;
};

/* NULL when out of memory. `env->store` must be set; `cfg` is copied. */
struct dispatcher *dispatcher_new(const struct menv *env, const struct dispatcher_config *cfg);
/* Leadership changes: sessions exist only on the leader. */
void dispatcher_set_leader(struct dispatcher *d, bool leader);
/* A committed store change (called on every manager). NULL `d` is ignored. */
void dispatcher_on_event(struct dispatcher *d, const struct store_event *ev);
/* Close after drain (see the top). NULL `d`: `cb` runs at once. */
void dispatcher_close(struct dispatcher *d, void (*cb)(void *data), void *data);

/* Send `sub` to the node's session (a SessionMessage carrying only it).
 * Returns 0, or SWARM_ENOTFOUND when the node has no session here. `sub` is
 * only read during the call. */
int dispatcher_send_log_subscription(struct dispatcher *d, const char *node_id,
                                     const Swarm__LogSubscription *sub);

/* Root rotation: ask the node to renew its certificate now unless it is
 * already issued by the key `issuer_key` (DER SubjectPublicKeyInfo, copied);
 * asked once per session and key. 1 when asked now, 0 when asked on this
 * session already, SWARM_ENOTFOUND when the node has no session here. */
int dispatcher_request_renewal(struct dispatcher *d, const char *node_id,
                               const uint8_t *issuer_key, size_t len);

/* Serve the Dispatcher service from `*current` (read on every call; NULL:
 * UNAVAILABLE, not a manager). `current` outlives the API server. */
void dispatcher_register(struct api_server *api, struct dispatcher *const *current);

#endif
