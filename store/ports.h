/* Published ports of services (issue 13), as pure logic: Docker's conflict
 * rule and its dynamic assignment of published ports.
 *
 * A service's ports as published live in Service.endpoint.ports: its
 * spec's ports (EndpointSpec.ports) in order, each with the published port
 * it got. A port asked for with published 0 gets the lowest free port of
 * 30000-32767 (Docker's range), free meaning that no other service has it
 * (spec or endpoint, either mode, either protocol) and that this spec does
 * not ask for it explicitly. An update keeps the port a target/protocol/mode
 * got before.
 *
 * Conflicts (swarmkit's checkPortConflicts): an ingress port (published
 * P/protocol) is refused when another service publishes P/protocol in any
 * mode; a host-mode port when another service publishes P/protocol as an
 * ingress port (ingress listens on every node). Two services may publish the
 * same host-mode port: the scheduler never puts them on one node.
 *
 * Pure: no store, no I/O. */
#ifndef SWARM_STORE_PORTS_H
#define SWARM_STORE_PORTS_H

#include <stdbool.h>
#include <stddef.h>

#include "objects.pb-c.h"

#define PORTS_DYNAMIC_FIRST 30000
#define PORTS_DYNAMIC_LAST 32767

/* "tcp" for an empty protocol. */
const char *ports_protocol(const Swarm__PortConfig *p);
/* True for an ingress port (mode "" or "ingress"). */
bool ports_is_ingress(const Swarm__PortConfig *p);

/* The service's ports as published: the endpoint's when it has them, else
 * its spec's. *n receives how many; the array is the service's. */
Swarm__PortConfig *const *ports_of_service(const Swarm__Service *svc, size_t *n);

/* Does `ports` (a new spec's, or its assignment) of the service `self_id`
 * (NULL or "" for a new one) conflict with one of `others`? 0, or
 * SWARM_EEXIST with Docker's message in errmsg (SWARM_ERRMSG_SIZE):
 * "port '8000' is already in use by service 'web' (ID) as an ingress port".
 * Ports with published 0 take part in no conflict. */
int ports_check_conflicts(Swarm__PortConfig *const *ports, size_t n, const char *self_id,
                          Swarm__Service *const *others, size_t n_others, char *errmsg);

/* The assignment of `spec`'s ports for the service `self_id`: *out (with
 * *n_out entries, malloc'd, each a new PortConfig) is spec's ports in order
 * with every published 0 replaced: by the port `prev` (the service's
 * current Endpoint, may be NULL) gave the same target/protocol/mode, else
 * by the lowest free port of the dynamic range. 0, SWARM_EUNAVAIL when the
 * range is exhausted (errmsg), or SWARM_ENOMEM. Conflicts are not checked
 * here (ports_check_conflicts on the result). */
int ports_assign(const Swarm__EndpointSpec *spec, const Swarm__Endpoint *prev, const char *self_id,
                 Swarm__Service *const *others, size_t n_others, Swarm__PortConfig ***out,
                 size_t *n_out, char *errmsg);

/* Free what ports_assign made. */
void ports_free(Swarm__PortConfig **ports, size_t n);

#endif
