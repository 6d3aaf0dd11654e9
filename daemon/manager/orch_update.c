/* Rolling updates and rollbacks, as decisions of the orchestrator pass (pure:
 * everything is read from the service and its tasks, so a new leader carries
 * an update on from the store alone).
 *
 * An update is under way while live tasks run an older spec_version. Tasks
 * are replaced in batches of `parallelism` (0: all at once), with Docker's
 * timing: a batch starts once every new task of the previous one is running,
 * plus `delay`. stop-first stops the old task and starts the new one once
 * the old has ended; start-first starts the new one and stops the old once
 * the new runs.
 *
 * `monitor` is not a wait between batches: it is the window, from the time
 * a new task started running (Task.started_at, kept by the store), in which
 * its failure counts. New tasks (current spec, created since the update
 * started) that fail before they ever ran or within their window count
 * against `max_failure_ratio` (of the slots the update covers, as Docker
 * divides by the slots to update); past it, the failure action applies: pause
 * (UpdateStatus paused, nothing more is replaced until the next update),
 * rollback (the previous spec comes back as a new spec_version, replaced
 * with the rollback policy), or continue. A failing rollback pauses. When no
 * old task is left and the last batch's window passed without a failure
 * (Docker waits for it too), the status says completed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "orch_int.h"
#include "pbcopy.h"

#define UPDATE_DEFAULT_MONITOR_MS 5000

static bool in_rollback(const Swarm__Service *svc)
{
    Swarm__UpdateState st = svc->update_status ? svc->update_status->state : 0;
    return st == SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_STARTED ||
           st == SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_PAUSED;
}

/* A task the current update made (none when no update ever started). */
static bool is_new(const struct orch *o, const Swarm__Task *t)
{
    return o->update.started_at > 0 && t->spec_version >= o->spec_version &&
           orch_task_created(t) >= o->update.started_at;
}

/* A copy of the service with a new update status, for the caller to write. */
static Swarm__Service *status_change(struct orch *o, Swarm__UpdateState state, const char *msg,
                                     const char *task_id)
{
    Swarm__Service *svc = pb_copy(&o->svc->base);
    char text[256];
    if (svc == NULL) {
        o->rv = SWARM_ENOMEM;
        return NULL;
    }
    if (svc->update_status == NULL) {
        svc->update_status = calloc(1, sizeof *svc->update_status);
        swarm__update_status__init(svc->update_status);
    }
    if (svc->update_status->message != protobuf_c_empty_string) {
        free(svc->update_status->message);
    }
    if (task_id != NULL) {
        snprintf(text, sizeof text, "%s %s", msg, task_id);
    } else {
        snprintf(text, sizeof text, "%s", msg);
    }
    svc->update_status->message = strdup(text);
    svc->update_status->state = state;
    if (state == SWARM__UPDATE_STATE__UPDATE_STATE_COMPLETED ||
        state == SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_COMPLETED) {
        svc->update_status->completed_at = o->in->now_ms;
    }
    return svc;
}

/* The failure action "rollback": the previous spec comes back as a new
 * spec_version, replaced with the rollback policy. */
static Swarm__Service *start_rollback(struct orch *o, const char *task_id)
{
    Swarm__Service *svc;
    Swarm__ServiceSpec *spec;
    if (o->svc->previous_spec == NULL) {
        return status_change(o, SWARM__UPDATE_STATE__UPDATE_STATE_PAUSED,
                             "update paused (no previous spec to roll back to) after failure of task",
                             task_id);
    }
    svc = status_change(o, SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_STARTED,
                        "update rolled back due to failure or early termination of task", task_id);
    if (svc == NULL) {
        return NULL;
    }
    spec = svc->spec;
    svc->spec = svc->previous_spec;
    svc->previous_spec = spec;
    svc->spec_version++;
    svc->update_status->started_at = o->in->now_ms;
    svc->update_status->completed_at = 0;
    return svc;
}

/* Slots whose old task the update stopped and that get their new task in
 * this very pass: still part of the batch in flight. (Replicated: at most as
 * many as the free slots the pass fills.) */
static size_t awaiting_successors(const struct orch *o)
{
    const Swarm__ServiceSpec *spec = o->svc->spec;
    bool global = spec->mode_case == SWARM__SERVICE_SPEC__MODE_GLOBAL;
    size_t awaiting = 0, occupied = 0;
    for (size_t i = 0; i < o->n_groups; i++) {
        const struct orch_group *g = &o->groups[i];
        const Swarm__Task *newest = o->refs[g->first + g->n - 1].t;
        if ((g->slot == 0) != global) {
            continue;
        }
        if (g->live != NULL || g->ended || g->stopping_old) {
            occupied++;
        } else if (newest->spec_version < o->spec_version &&
                   newest->desired_state > ORCH_ST(RUNNING)) {
            awaiting++;
        }
    }
    if (!global) {
        uint64_t replicas = orch_replicas(spec);
        size_t missing = replicas > occupied ? (size_t)(replicas - occupied) : 0;
        awaiting = awaiting < missing ? awaiting : missing;
    }
    return awaiting;
}

/* When a task started running (0: never). The store keeps started_at once
 * later statuses replace the running one. */
static int64_t task_started(const Swarm__Task *t)
{
    if (t->started_at != 0) {
        return t->started_at;
    }
    return orch_task_state(t) == ORCH_ST(RUNNING) && t->status != NULL ? t->status->timestamp : 0;
}

/* A new task that failed on its own before it ran, or within `monitor` of
 * starting. */
static bool failed_in_window(const struct orch *o, const Swarm__Task *t, int64_t monitor)
{
    int64_t started = task_started(t);
    if (!is_new(o, t) || !orch_task_ended_alone(t) ||
        (orch_task_state(t) != ORCH_ST(FAILED) && orch_task_state(t) != ORCH_ST(REJECTED))) {
        return false;
    }
    return started == 0 || orch_task_ended_at(t) <= started + monitor;
}

void orch_update_plan(struct orch *o)
{
    const Swarm__Service *svc = o->svc;
    const Swarm__UpdateConfig *cfg = in_rollback(svc) ? svc->spec->rollback : svc->spec->update;
    Swarm__UpdateState st = svc->update_status ? svc->update_status->state : 0;
    int64_t now = o->in->now_ms, last_started = 0;
    size_t outdated = 0, in_flight = 0, updated_slots = 0, failures = 0;
    const char *failed_id = NULL;

    o->update.started_at = svc->update_status ? svc->update_status->started_at : 0;
    o->update.parallelism = cfg ? cfg->parallelism : 1;
    o->update.start_first = cfg && cfg->order == SWARM__UPDATE_ORDER__UPDATE_ORDER_START_FIRST;
    int64_t monitor = cfg && cfg->monitor_ms > 0 ? cfg->monitor_ms : UPDATE_DEFAULT_MONITOR_MS;
    int64_t delay = cfg && cfg->delay_ms > 0 ? cfg->delay_ms : 0;

    for (size_t i = 0; i < o->n_groups; i++) {
        const struct orch_group *g = &o->groups[i];
        const Swarm__Task *t = g->live ? g->live->t : NULL;
        updated_slots += is_new(o, o->refs[g->first + g->n - 1].t);
        if (g->pred != NULL || g->stopping_old) {
            in_flight++;
        }
        if (t != NULL && t->spec_version < o->spec_version) {
            outdated++;
        } else if (t != NULL && is_new(o, t)) {
            /* Its batch is done once it runs. */
            if (orch_task_state(t) < ORCH_ST(RUNNING)) {
                in_flight++;
            } else if (task_started(t) > last_started) {
                last_started = task_started(t);
            }
        }
    }
    in_flight += awaiting_successors(o);
    /* Batches, start-first pairs and completion wait on tasks that run. */
    o->out->watch_running = outdated > 0 || in_flight > 0 ||
                            st == SWARM__UPDATE_STATE__UPDATE_STATE_UPDATING ||
                            st == SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_STARTED;
    for (size_t i = 0; i < o->in->n_tasks; i++) {
        const Swarm__Task *t = o->in->tasks[i];
        if (failed_in_window(o, t, monitor)) {
            failures++;
            failed_id = t->id;
        }
    }
    o->update.budget = 0;
    if (st == SWARM__UPDATE_STATE__UPDATE_STATE_PAUSED ||
        st == SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_PAUSED) {
        return;
    }
    bool updating = st == SWARM__UPDATE_STATE__UPDATE_STATE_UPDATING ||
                    st == SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_STARTED;
    float ratio = cfg ? cfg->max_failure_ratio : 0;
    /* As Docker: failures over the slots the update covers (those already
     * updated and those still outdated), not over the tasks made so far. */
    size_t slots = updated_slots + outdated;
    if (updating && failures > 0 && (float)failures > ratio * (float)(slots ? slots : 1)) {
        Swarm__UpdateFailureAction action =
            cfg ? cfg->failure_action : SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_PAUSE;
        if (in_rollback(svc)) {
            o->out->service = status_change(o, SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_PAUSED,
                                            "rollback paused due to failure or early termination of task",
                                            failed_id);
            return;
        }
        if (action == SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_PAUSE) {
            o->out->service = status_change(o, SWARM__UPDATE_STATE__UPDATE_STATE_PAUSED,
                                            "update paused due to failure or early termination of task",
                                            failed_id);
            return;
        }
        if (action == SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_ROLLBACK) {
            o->out->service = start_rollback(o, failed_id);
            return;
        }
    }
    if (outdated == 0) {
        /* Done once the last batch's window passed without a failure. */
        if (in_flight == 0 && last_started > 0 && now < last_started + monitor &&
            updating) {
            orch_wake(o, last_started + monitor);
            return;
        }
        if (in_flight == 0 && st == SWARM__UPDATE_STATE__UPDATE_STATE_UPDATING) {
            o->out->service = status_change(o, SWARM__UPDATE_STATE__UPDATE_STATE_COMPLETED,
                                            "update completed", NULL);
        } else if (in_flight == 0 && st == SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_STARTED) {
            o->out->service = status_change(o, SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_COMPLETED,
                                            "rollback completed", NULL);
        }
        return;
    }
    /* A batch starts once the previous one runs, `delay` after. */
    if (in_flight > 0) {
        return;
    }
    if (last_started > 0 && delay > 0 && now < last_started + delay) {
        orch_wake(o, last_started + delay);
        return;
    }
    o->update.budget = o->update.parallelism == 0 ? outdated : o->update.parallelism;
}

bool orch_update_take(struct orch *o)
{
    if (o->update.budget == 0) {
        return false;
    }
    o->update.budget--;
    return true;
}
