/* Cluster events (events.c): `swarmctl events`, served by every manager
 * from its own store.
 *
 * Every manager applies the same entries and the store writes the same
 * events for them (store/events.c), named by (raft index, position): a
 * subscriber served by a follower sees exactly what the leader would show,
 * a leader change does not touch the stream, and a subscriber that comes
 * back (to this manager or another) with the last event it printed resumes
 * right after it, with nothing lost or repeated while that event is still
 * in the history (the last STORE_EVENTS_WINDOW events).
 *
 * Environment: a `const struct menv *` (loop, store, now). The menv
 * outlives the module.
 *
 * Ownership and lifecycle:
 *   - events_new allocates the module; its owner ends it with events_close,
 *     never with free.
 *   - The module owns its subscriptions; each holds the subscriber's API
 *     call (owned by the API server), which the module finishes exactly
 *     once: OK at --until or when a replay-only subscription caught up,
 *     INVALID_ARGUMENT for a bad filter, CANCELLED when the subscriber went
 *     away, UNAVAILABLE when the module closes.
 *   - events_close ends every subscription at once, then frees the module
 *     once its timer is closed and runs `cb`, once. The module makes no
 *     proposals.
 *   - The API handler (events_register) reaches the module through the
 *     slot the owner fills while it serves (mslot.h) and clears before
 *     closing it. */
#ifndef SWARM_MANAGER_EVENTS_H
#define SWARM_MANAGER_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"
#include "events.pb-c.h"
#include "menv.h"
#include "mslot.h"
#include "store.h"

struct events;

/* ---- filters (pure) ---- */

#define EVENTS_FILTER_VALUES_MAX 16
#define EVENTS_FILTER_VALUE_SIZE 128

enum events_filter_key {
    EVENTS_F_TYPE,
    EVENTS_F_EVENT,
    EVENTS_F_SCOPE,
    EVENTS_F_SERVICE,
    EVENTS_F_NODE,
    EVENTS_F__COUNT,
};

struct events_filter {
    size_t n[EVENTS_F__COUNT];
    char values[EVENTS_F__COUNT][EVENTS_FILTER_VALUES_MAX][EVENTS_FILTER_VALUE_SIZE];
};

/* Parse Docker's "key=value" filters: type (Docker's event types: node,
 * service, task, network, secret, config, container, image, volume,
 * plugin, daemon), event (any action), scope (swarm, local), service and
 * node (an ID or a name). Returns 0, or SWARM_EINVAL with Docker's message
 * in errmsg ("invalid filter 'foo'", "invalid filter 'type=foo'", "bad
 * format of filter (expected name=value)"); errmsg: SWARM_ERRMSG_SIZE. */
int events_filter_parse(char *const *filters, size_t n, struct events_filter *f, char *errmsg);
/* The same key ORs its values, different keys AND. */
bool events_filter_match(const struct events_filter *f, const Swarm__Event *e);

/* ---- the module ---- */

/* NULL when out of memory. */
struct events *events_new(const struct menv *env);
/* A committed store change: the subscribers are served from the store on
 * the next loop turn. NULL `ev` is ignored. */
void events_on_event(struct events *ev, const struct store_event *change);
/* Close after drain (see the top). NULL `ev`: `cb` runs at once. */
void events_close(struct events *ev, void (*cb)(void *data), void *data);

/* Serve the Events service from slot->events (read on every call; NULL:
 * not a manager, in Docker's words). */
void events_register(struct api_server *api, const struct manager_slot *slot);

#endif
