/* The Control service's services and tasks methods (serviceapi.c).
 *
 * Writes are one compare-and-set StoreCommand proposed through the menv and
 * answered with the stored service once committed; reads answer from this
 * manager's store. Every method is routed to the leader (forward.h); reads
 * fall back to the local store, marked stale, when no leader can be reached.
 *
 * Environment: the manager's menv (store, propose, is_leader, now, loop:
 * image digests are resolved on its work threads, image.h) only.
 *
 * Ownership and lifecycle:
 *   - serviceapi_register is called once per process; the handlers find the
 *     running module through the slot (mslot.h).
 *   - serviceapi_new makes the module of one manager; the owner ends it with
 *     serviceapi_close, never free. In flight: the proposals its handlers
 *     made (each holds the module until its callback ran). The module is
 *     freed, and `cb` runs once, when none is left (close after drain). */
#ifndef SWARM_MANAGER_SERVICEAPI_H
#define SWARM_MANAGER_SERVICEAPI_H

#include "api.h"
#include "menv.h"
#include "mslot.h"

struct serviceapi;

/* NULL when out of memory. `env` outlives the module. */
struct serviceapi *serviceapi_new(const struct menv *env);

/* The registries the image pins are resolved from over plain HTTP
 * (swarmd --insecure-registry); copied. 0 or SWARM_ENOMEM. */
int serviceapi_set_insecure_registries(struct serviceapi *sa, const char *const *list,
                                       size_t n);

/* Close after drain (see the top). */
void serviceapi_close(struct serviceapi *sa, void (*cb)(void *data), void *data);

void serviceapi_register(struct api_server *server, struct manager_slot *slot);

#endif
