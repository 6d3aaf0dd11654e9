/* The orchestrators' decisions, as pure logic: given one service, its tasks
 * and the nodes, what tasks to create, which to stop, and which to delete.
 *
 * Replicated (slots 1..replicas):
 *   - each slot has at most one task meant to run (desired state <= running);
 *   - scale up fills the lowest free slots; scale down stops tasks on the
 *     nodes holding the most copies of this service first, tasks not yet
 *     running before running ones;
 *   - a slot's task that ended (complete, failed, rejected, shutdown while
 *     desired running) is replaced in the same slot per the restart policy:
 *     condition any (always), on-failure (failed or rejected), none (never);
 *     after `delay` since it ended; at most `max_attempts` replacements
 *     within `window` (0: ever). The ended task gets desired shutdown at
 *     once (whether or not a successor comes), as swarmkit's restart
 *     supervisor does, marked ended_on_its_own;
 *   - a task whose node is down, gone, or drained, or whose node no longer
 *     satisfies the constraints, is stopped and replaced at once (no delay,
 *     not counted as an attempt);
 *   - a task running an older spec (its spec_version below the service's)
 *     is stopped and replaced (the rolling-update policy comes later).
 * Global: one task per node that is ready, not drained and satisfies the
 *   constraints (pause: keep, but start nothing new there); tasks on drained
 *   or no-longer-matching nodes are stopped, and so are tasks on a node that
 *   is down (a new one starts there when it is ready again); restart policy
 *   as for replicated, per node.
 * Service removed (service == NULL): every task is stopped; tasks that have
 *   ended (or never started) are deleted.
 * History: per slot (per node for global) keep at most task_history_limit
 *   tasks that have ended and are not meant to run; delete the oldest.
 *
 * New tasks: desired state running, status pending (the scheduler assigns
 * them; global ones name their node already), slot set, name
 * `service.slot` or `service.nodeid` in annotations, spec copied from the
 * service with its spec_version. Pure: IDs come from a callback, time from
 * the input. */
#ifndef SWARM_MANAGER_ORCHESTRATOR_H
#define SWARM_MANAGER_ORCHESTRATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objects.pb-c.h"

struct orch_input {
    const Swarm__Service *service; /* NULL: the service was removed */
    const char *service_id;        /* always set */
    Swarm__Task *const *tasks;     /* every task of this service */
    size_t n_tasks;
    Swarm__Node *const *nodes;     /* every node */
    size_t n_nodes;
    int64_t now_ms;
    int64_t task_history_limit;
    /* At most this many new tasks (0: ORCH_MAX_CREATE; fewer when the task
     * spec is large, see ORCH_MAX_CREATE_BYTES). What is held back
     * is created by a later pass (out->more), so a large scale-up is a
     * series of bounded raft entries, with the loop free in between. */
    size_t max_create;
};

/* New tasks per pass at most: ORCH_MAX_CREATE, and no more than
 * ORCH_MAX_CREATE_BYTES of task specs (a service with a 64 KiB spec gets 64
 * per pass), so one raft entry stays a few MB, applied on every manager in
 * well under a heartbeat period. */
#define ORCH_MAX_CREATE 5000
#define ORCH_MAX_CREATE_BYTES (4u << 20)

/* Where a replicated scale-up that max_create held back goes on: the
 * lowest slot not yet considered and how many replicas are still missing.
 * Every slot below `slot` was decided by the pass that set it. */
struct orch_resume {
    uint64_t slot;
    uint64_t missing; /* 0: nothing to resume */
};

struct orch_output {
    Swarm__Task **create;  /* new tasks (owned; free with orch_output_free) */
    size_t n_create;
    Swarm__Task **update;  /* copies of existing tasks with a new desired state */
    size_t n_update;
    char **remove;         /* IDs of tasks to delete */
    size_t n_remove;
    int64_t wake_at_ms;    /* a delayed restart is due then (0: nothing pending) */
    bool more;             /* creates were held back by max_create: reconcile again */
    /* Set (missing > 0) when the only creates held back are a scale-up's:
     * the next pass may then go on with orch_resume instead of reading
     * every task again. */
    struct orch_resume resume;
    /* A decision of this pass waits for a task to start running (a rolling
     * update's batch, a start-first replacement): a task that starts
     * running must then trigger a pass. False: one starting changes
     * nothing here. */
    bool watch_running;
    /* The service with a new UpdateStatus (or, for an automatic rollback, a
     * new spec) to write with compare-and-set on its meta.version; NULL when
     * nothing changes. Owned. */
    Swarm__Service *service;
};

/* Decide. `new_id` fills a fresh 25-character ID (+NUL) into `out` and
 * returns 0. Returns 0, SWARM_ENOMEM, SWARM_EINVAL (a service without a
 * spec) or the callback's error; on error `out` is left empty.
 *
 * `out` is always written (no need to zero it first). Every task in it is
 * allocated as protobuf-c unpacks, so a caller may move one out (setting its
 * slot to NULL; orch_output_free skips NULLs) and free it later with
 * swarm__task__free_unpacked. Updates are whole copies of the input task
 * (meta kept, for compare-and-set) with only desired_state (and
 * ended_on_its_own) changed.
 *
 * Where the comment above is silent:
 *   - tasks stopped for any other reason get desired shutdown without the
 *     ended_on_its_own mark, so a restart attempt is a task whose
 *     predecessor in the slot is marked. Attempts are counted from the
 *     store, and the tasks that count are kept out of history pruning;
 *   - a scale-down that takes a slot whose task ended gives the slot up:
 *     that task gets desired remove, and nothing restarts there;
 *   - after max_attempts within a window, a restart is allowed again once
 *     the oldest attempt leaves the window (wake_at_ms says when);
 *   - a task that never reached a node (no node, pending) is deleted rather
 *     than stopped, since nothing else would ever end it;
 *   - scale down prefers slots whose task ended, then tasks not yet running
 *     or on a node they must leave, then the node with the most copies,
 *     then the highest slot;
 *   - nodes that are disconnected or unknown are left alone (only down
 *     moves replicated tasks and stops global ones);
 *   - a paused node keeps an outdated global task until it is active again;
 *   - constraints that do not parse stop nothing and start nothing;
 *   - task_history_limit < 0 keeps all history; with no restart policy in
 *     the spec, Docker's default applies (any, 5 s, unlimited); with no mode,
 *     one replica;
 *   - new tasks get meta.created_at = now_ms (the store may restamp it);
 *   - a replica count above SPEC_MAX_REPLICAS (a spec from before the bound,
 *     still in the raft log) counts as SPEC_MAX_REPLICAS: the API refuses
 *     such specs, and the orchestrator never tries to allocate for them. */
int orch_reconcile(const struct orch_input *in, int (*new_id)(char *out, void *data), void *id_data,
                   struct orch_output *out);

/* Go on with a replicated scale-up without reading its tasks: create
 * min(from->missing, max_create) tasks in slots from->slot upward, as
 * orch_reconcile would (in->tasks is not read; in->service must be the
 * replicated service the resume came from). out->more and out->resume say
 * what is left. Valid only while nothing changed since the pass that
 * returned `from`: the same service version, no task ended, removed or
 * added by anyone else, no node change, and no task of the service in
 * slots from->slot and above (the caller checks that on the store's
 * index). Returns as orch_reconcile, and SWARM_EINVAL for a service that
 * is not replicated. */
int orch_resume(const struct orch_input *in, const struct orch_resume *from,
                int (*new_id)(char *out, void *data), void *id_data, struct orch_output *out);

void orch_output_free(struct orch_output *out);

#endif
