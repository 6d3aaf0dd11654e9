/* The dispatcher's NetworkMaps streams (leader only): each node with a
 * session may hold one; it gets the maps of the networks its own tasks use
 * (netmap.h computes them from the store).
 *
 * Protocol (proto/dispatcher.proto, NetworkMapsMessage):
 *   - on open: COMPLETE, every network the node needs (an empty set is one
 *     empty message);
 *   - then INCREMENTAL: whole maps of the networks that changed and that the
 *     node needs (or needs from now on), and the IDs of networks it no longer
 *     needs. Store events on tasks, services and nodes only mark networks
 *     (and nodes) dirty; the maps are computed once per batch, on the next
 *     loop turn after the events, whatever their number. Events that touch
 *     no network (tasks and services without networks) cost nothing.
 *   - Every set goes out in messages of at most MSGCHUNK_BOUND bytes (more =
 *     true on all but the last), as fast as the node takes them (the
 *     connection's send room, as the assignments); changes wait behind a set
 *     being sent and are sent as one set after it. A send that fails ends
 *     the stream (the node opens it again and gets COMPLETE).
 *
 * Ownership and lifecycle: netmaps_new allocates a timer on `loop`;
 * netmaps_close ends every stream and frees it once the timer is closed,
 * then runs `cb`. The store outlives it. The API calls belong to the API
 * server; netmaps answers (ends) each one it was given. */
#ifndef SWARM_MANAGER_NETMAPS_H
#define SWARM_MANAGER_NETMAPS_H

#include <uv.h>

#include "api.h"
#include "store.h"

struct netmaps;

/* NULL when out of memory. */
struct netmaps *netmaps_new(uv_loop_t *loop, struct store *store);

/* The node's stream is `call` from now on (a previous one is ended with
 * CANCELLED): its COMPLETE set is sent at once. A failure ends `call` with
 * an error. */
void netmaps_open(struct netmaps *nm, const char *node_id, struct api_call *call);

/* End the node's stream, if any, with `status` and `why` (its session
 * ended). */
void netmaps_end(struct netmaps *nm, const char *node_id, enum api_status status,
                 const char *why);

/* End every stream (leadership lost). */
void netmaps_end_all(struct netmaps *nm, const char *why);

/* A committed store change (tasks, services, nodes). */
void netmaps_on_event(struct netmaps *nm, const struct store_event *ev);

/* How many streams are open (tests, metrics). */
size_t netmaps_count(const struct netmaps *nm);

/* Close after drain (see the top). NULL `nm`: `cb` runs at once. */
void netmaps_close(struct netmaps *nm, void (*cb)(void *data), void *data);

#endif
