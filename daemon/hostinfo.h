/* This host's description as a node reports it: hostname, platform,
 * resources, engine version, runtimes ("process" always, "container"
 * when hostinfo_container_runtime). */
#ifndef SWARM_DAEMON_HOSTINFO_H
#define SWARM_DAEMON_HOSTINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "objects.pb-c.h"

/* Set (to anything but "" or "0") in swarmd's environment: the node offers
 * only the process runtime, whatever it could (tests of mixed swarms). */
#define HOSTINFO_NO_CONTAINERS_ENV "SWARMD_NO_CONTAINER_RUNTIME"

/* runc in $PATH (then /usr/sbin, /usr/bin, /sbin, /bin): its path in out,
 * 0; or -1. */
int hostinfo_find_runc(char *out, size_t size);
/* Whether this node offers the container runtime: runc found, swarmd root,
 * and not turned off by HOSTINFO_NO_CONTAINERS_ENV; runc's path in `runc`. */
bool hostinfo_container_runtime(char *runc, size_t size);

/* Fill a heap-allocated NodeDescription (free with
 * swarm__node_description__free_unpacked). `hostname` overrides the system's
 * when not NULL. Returns NULL when out of memory. */
Swarm__NodeDescription *hostinfo_describe(const char *hostname);

#endif
