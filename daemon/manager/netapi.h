/* The Control service's network methods (netapi.c): CreateNetwork,
 * GetNetwork, ListNetworks, RemoveNetwork.
 *
 * Create validates the spec and allocates the network's subnet and VNI
 * (allocator.h, from the cluster's default pool and the networks in the
 * store) before proposing it, so a bad spec writes nothing; the store
 * refuses at apply a subnet or VNI taken meanwhile. Remove is refused while
 * a service or a live task uses the network. Every method is routed to the
 * leader (forward.h); reads fall back to the local store, marked stale,
 * when no leader can be reached.
 *
 * Environment: the manager's menv (store, propose, is_leader) only.
 *
 * Ownership and lifecycle as serviceapi.h: netapi_register once per
 * process, the handlers find the module through the slot; netapi_new per
 * manager, ended with netapi_close (close after drain: freed, and `cb` run,
 * once every proposal's callback has run). */
#ifndef SWARM_MANAGER_NETAPI_H
#define SWARM_MANAGER_NETAPI_H

#include "api.h"
#include "menv.h"
#include "mslot.h"

struct netapi;

/* NULL when out of memory. `env` outlives the module. */
struct netapi *netapi_new(const struct menv *env);

/* Close after drain (see the top). */
void netapi_close(struct netapi *na, void (*cb)(void *data), void *data);

void netapi_register(struct api_server *server, struct manager_slot *slot);

/* For service create/update (serviceapi.c): resolve every network of
 * `spec`'s task template (an ID, a unique ID prefix or a name) to its ID in
 * place, and refuse, with Docker's messages, an unknown network ("network
 * NAME not found": SWARM_ENOTFOUND), an explicit attachment to the ingress
 * network, and dnsrr mode with ports published in ingress mode
 * (SWARM_EINVAL). Returns 0 or one of those (errmsg set), or SWARM_ENOMEM. */
int netapi_resolve_service_networks(struct store *store, Swarm__ServiceSpec *spec, char *errmsg);

#endif
