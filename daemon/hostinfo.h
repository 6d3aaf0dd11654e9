/* This host's description as a node reports it: hostname, platform,
 * resources, engine version. */
#ifndef SWARM_DAEMON_HOSTINFO_H
#define SWARM_DAEMON_HOSTINFO_H

#include "objects.pb-c.h"

/* Fill a heap-allocated NodeDescription (free with
 * swarm__node_description__free_unpacked). `hostname` overrides the system's
 * when not NULL. Returns NULL when out of memory. */
Swarm__NodeDescription *hostinfo_describe(const char *hostname);

#endif
