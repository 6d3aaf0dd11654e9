/* The cluster store: Cluster, Node, Service and Task objects in SQLite.
 *
 * Each object lives in its own table as its full protobuf encoding plus
 * indexed columns for what is queried (id, name, node/service/slot, states).
 * The store changes only through store_apply(), which applies a whole
 * StoreCommand (a raft log entry) in one transaction together with the raft
 * index it came from; it is deterministic: no clock, no randomness, nothing
 * read but the store and the command. Pure: no libuv, no sockets.
 *
 * Reads (store_*_get, store_*_list, store_*_find) see committed state. Objects
 * returned are heap-allocated protobuf-c messages owned by the caller: free
 * them with protobuf_c_message_free_unpacked(&obj->base, NULL), or the
 * store_*_free_list helpers for arrays.
 *
 * A store belongs to one thread (the daemon's loop): no call may run
 * concurrently with another on the same store. */
#ifndef SWARM_STORE_H
#define SWARM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objects.pb-c.h"
#include "events.pb-c.h"
#include "store.pb-c.h"

struct store;

/* Object kinds, as in a StoreAction's target. */
enum store_kind {
    STORE_KIND_NODE = 1,
    STORE_KIND_SERVICE = 2,
    STORE_KIND_TASK = 3,
    STORE_KIND_CLUSTER = 4,
    STORE_KIND_NETWORK = 5,
};

/* One change, passed to the event callback after its transaction committed.
 * `old_obj` is NULL for a create, `new_obj` NULL for a remove. Both belong to
 * the store and are valid only during the callback. */
struct store_event {
    Swarm__StoreActionKind action;
    enum store_kind kind;
    const ProtobufCMessage *old_obj;
    const ProtobufCMessage *new_obj;
    uint64_t index;
};

typedef void (*store_event_cb)(const struct store_event *ev, void *data);

/* Outcome of one store_apply(). A business failure (a name already taken, a
 * version mismatch, an unknown object) is not an error of store_apply itself:
 * it returns 0, rolls the whole command back, and says so here, so that every
 * replica reaches the same state. */
struct store_result {
    int status;        /* 0, SWARM_EEXIST, SWARM_ECONFLICT, SWARM_ENOTFOUND, SWARM_EINVAL */
    int action_index;  /* which action failed, -1 if none */
    char message[256]; /* e.g. "service name web is already in use" */
};

/* Open (creating if needed) the store at `path`; ":memory:" for a private
 * in-memory store. */
int store_open(const char *path, struct store **out, char *errmsg);
void store_close(struct store *s);

/* Register the (single) change listener; NULL to clear. The callback runs
 * inside store_apply, after COMMIT, once per action in command order; it may
 * read the store (and sees the whole command applied) and may clear or
 * replace the listener, but must not call store_apply or store_restore. */
void store_set_event_cb(struct store *s, store_event_cb cb, void *data);

/* Apply `cmd`, the entry at raft `index`. Entries at or below the last applied
 * index are skipped (result->status 0): a replay after restart is harmless.
 * In the command, CREATE sets meta.version = index and created_at =
 * updated_at = cmd->timestamp; UPDATE checks meta.version against the stored
 * version (0 skips the check), keeps created_at, sets version and updated_at;
 * REMOVE checks the version the same way. Uniqueness: service names, cluster
 * names, network names (node hostnames are not unique, as in Docker); a
 * network's allocated subnet (ipam.subnet) may not overlap another
 * network's and its VNI may not be another's (SWARM_EEXIST), so that two
 * racing creates can never both win the same addresses. An empty service or
 * cluster name is not a name: any number of objects may have none.
 * A command that fails on a rule changes no object but does advance the last
 * applied index: the entry has been applied, its outcome is the failure (the
 * same on every replica), and a replay skips it. `result` may be NULL.
 * Returns 0, or a negative SWARM_E* for a failure of the store itself (I/O,
 * corrupt database), which leaves the store unchanged, index included
 * (result->status then holds the same code and result->message the detail). */
int store_apply(struct store *s, uint64_t index, const Swarm__StoreCommand *cmd,
                struct store_result *result);

/* The raft index of the last applied command (0 for a new store). */
uint64_t store_last_index(struct store *s);

/* Snapshot: the whole database as one byte image (sqlite3_serialize); the
 * caller frees *buf with free(). Restore replaces the whole content with an
 * image made by store_snapshot (validated first: a bad image changes
 * nothing) and fires no events. */
int store_snapshot(struct store *s, void **buf, size_t *len, char *errmsg);
int store_restore(struct store *s, const void *buf, size_t len, char *errmsg);

/* Empty every table and set the last index to 0, as a new store, in one
 * transaction; fires no events. For a store found not to match the raft
 * state at start, before anything is applied: the log then rebuilds it. */
int store_reset(struct store *s, char *errmsg);

/* ---- typed reads. Return 0 (and *out), SWARM_ENOTFOUND, or an error. ---- */

int store_node_get(struct store *s, const char *id, Swarm__Node **out);
int store_service_get(struct store *s, const char *id, Swarm__Service **out);
int store_task_get(struct store *s, const char *id, Swarm__Task **out);
int store_cluster_get(struct store *s, const char *id, Swarm__Cluster **out);
/* The first (only) cluster, for callers that do not know its ID. */
int store_cluster_get_default(struct store *s, Swarm__Cluster **out);
int store_service_get_by_name(struct store *s, const char *name, Swarm__Service **out);
int store_network_get(struct store *s, const char *id, Swarm__Network **out);
int store_network_get_by_name(struct store *s, const char *name, Swarm__Network **out);

/* Resolve a user-supplied reference in Docker's order: an exact ID, else an
 * exact name (node: hostname or spec name; service: name; tasks have none),
 * else a unique ID prefix; a name is never shadowed by another object's ID
 * prefix. Returns SWARM_ENOTFOUND or SWARM_EAMBIGUOUS (with *nmatches set:
 * the number of candidates); nmatches may be NULL. */
int store_node_find(struct store *s, const char *ref, Swarm__Node **out, size_t *nmatches);
int store_service_find(struct store *s, const char *ref, Swarm__Service **out, size_t *nmatches);
int store_task_find(struct store *s, const char *ref, Swarm__Task **out, size_t *nmatches);
int store_network_find(struct store *s, const char *ref, Swarm__Network **out, size_t *nmatches);

/* Lists: *out is a malloc'd array of *n objects (free with the matching
 * store_*_free_list; an empty list may be NULL with *n = 0). Order: nodes
 * by description.hostname then id; services by name then id; tasks by
 * service id, slot, node id, then creation (oldest first); clusters by
 * creation. */
int store_node_list(struct store *s, Swarm__Node ***out, size_t *n);
int store_service_list(struct store *s, Swarm__Service ***out, size_t *n);
int store_task_list(struct store *s, Swarm__Task ***out, size_t *n);
int store_task_list_by_service(struct store *s, const char *service_id, Swarm__Task ***out, size_t *n);
int store_task_list_by_node(struct store *s, const char *node_id, Swarm__Task ***out, size_t *n);
/* Tasks desired to run whose observed state is still new or pending
 * (unplaced, or a global task not yet started on its node), in the task
 * list order; uses the state index. */
int store_task_list_unplaced(struct store *s, Swarm__Task ***out, size_t *n);
int store_cluster_list(struct store *s, Swarm__Cluster ***out, size_t *n);
/* Networks by name then id. */
int store_network_list(struct store *s, Swarm__Network ***out, size_t *n);

void store_node_free_list(Swarm__Node **list, size_t n);
void store_service_free_list(Swarm__Service **list, size_t n);
void store_task_free_list(Swarm__Task **list, size_t n);
void store_cluster_free_list(Swarm__Cluster **list, size_t n);
void store_network_free_list(Swarm__Network **list, size_t n);

/* Counts without decoding objects (index ranges). */
int store_node_count(struct store *s, size_t *n);
/* Tasks of `service_id` with desired state `desired_state` and, unless
 * `state` is negative, observed state `state` (the REPLICAS column). */
int store_task_count_by_state(struct store *s, const char *service_id, int desired_state, int state,
                              size_t *n);
/* Tasks of `service_id` in slots `slot` and above (whatever their state). */
int store_task_count_from_slot(struct store *s, const char *service_id, uint64_t slot, size_t *n);
/* Counts by group for metrics: cb runs once per group present, with the
 * group's values (b is 0 where the tally has one value) and its count. */
typedef void (*store_tally_cb)(int a, int b, size_t n, void *data);
/* Nodes by status.state (a) and spec.availability (b). */
int store_node_tally(struct store *s, store_tally_cb cb, void *data);
/* Tasks by status.state (a). */
int store_task_tally(struct store *s, store_tally_cb cb, void *data);
int store_service_count(struct store *s, size_t *n);

/* ---- cluster events (store/events.c) ----
 * Every change that Docker shows as an event (nodes, services, tasks,
 * networks; not
 * the cluster object) is also written, in the transaction of the change, to
 * a history of the last STORE_EVENTS_WINDOW events, each named by the raft
 * index of its entry and its position among that entry's events (the same
 * on every manager), stamped with the entry's timestamp. */
#define STORE_EVENTS_WINDOW 10000
#define STORE_EVENT_ATTRS_MAX 8
#define STORE_EVENT_VALUE_MAX 256

struct store_evattr {
    const char *key; /* static */
    char value[STORE_EVENT_VALUE_MAX];
};

/* One event as Docker shows it: type ("node", "service", "task", "network"), action
 * ("create", "update", "remove"), actor and attributes (sorted by key). */
struct store_evdesc {
    const char *type;   /* static */
    const char *action; /* static */
    char actor_id[128];
    size_t n_attrs;
    struct store_evattr attrs[STORE_EVENT_ATTRS_MAX];
};

/* The event of one change (old_obj NULL for a create, new_obj NULL for a
 * remove; task status reports, patches and node statuses are updates).
 * Attributes: "name" always (a node's name or hostname, a service's name, a
 * task's "service.slot"), tasks also "node.id" and "service.id"; an update
 * adds "X.old"/"X.new" for what changed of a node's availability, role and
 * state, a service's image, replicas and updatestate, a task's state and
 * desiredstate. False (and no event) for cluster changes. Pure. */
bool store_event_describe(enum store_kind kind, Swarm__StoreActionKind action, const ProtobufCMessage *old_obj,
                          const ProtobufCMessage *new_obj, struct store_evdesc *out);

/* Events after (after_index, after_position) and at or after `since_ms`
 * (unix ms; 0: any), oldest first, at most `limit`. *out is a malloc'd array
 * of *n events; free with store_events_free_list. */
int store_events_list(struct store *s, uint64_t after_index, uint32_t after_position, int64_t since_ms,
                      size_t limit, Swarm__Event ***out, size_t *n);
void store_events_free_list(Swarm__Event **list, size_t n);

#endif
