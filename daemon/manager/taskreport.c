/* See taskreport.h. */
#include "taskreport.h"

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "id.h"

static const char *taskreport_state_ok(Swarm__TaskState st)
{
    switch (st) {
    case SWARM__TASK_STATE__TASK_STATE_ACCEPTED:
    case SWARM__TASK_STATE__TASK_STATE_PREPARING:
    case SWARM__TASK_STATE__TASK_STATE_READY:
    case SWARM__TASK_STATE__TASK_STATE_STARTING:
    case SWARM__TASK_STATE__TASK_STATE_RUNNING:
    case SWARM__TASK_STATE__TASK_STATE_COMPLETE:
    case SWARM__TASK_STATE__TASK_STATE_SHUTDOWN:
    case SWARM__TASK_STATE__TASK_STATE_FAILED:
    case SWARM__TASK_STATE__TASK_STATE_REJECTED:
        return NULL;
    default:
        return "a worker reports states from accepted to rejected only";
    }
}

static enum taskreport_result taskreport_check_one(const Swarm__TaskStatusUpdate *u, size_t i,
                                                   int64_t now_ms, char *errmsg)
{
    const Swarm__TaskStatus *st = u->status;
    const char *why;
    if (u->task_id == NULL || !id_is_valid(u->task_id)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "update %zu: invalid task ID (25 characters of 0-9 a-z)", i);
        return TASKREPORT_INVALID;
    }
    if (st == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s: no status", u->task_id);
        return TASKREPORT_INVALID;
    }
    if ((why = taskreport_state_ok(st->state)) != NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "task %s: invalid state %d (%s)", u->task_id, (int)st->state, why);
        return TASKREPORT_INVALID;
    }
    if (st->timestamp <= 0 || st->timestamp > now_ms + TASKREPORT_FUTURE_MS) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                 "task %s: invalid timestamp %lld (unix ms, above 0 and at most 24 h ahead of "
                 "the manager's clock)",
                 u->task_id, (long long)st->timestamp);
        return TASKREPORT_INVALID;
    }
    if ((st->message != NULL && strlen(st->message) > TASKREPORT_STR_MAX) ||
        (st->err != NULL && strlen(st->err) > TASKREPORT_STR_MAX)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "task %s: status message or error longer than %d bytes",
                      u->task_id, TASKREPORT_STR_MAX);
        return TASKREPORT_INVALID;
    }
    return TASKREPORT_OK;
}

enum taskreport_result taskreport_check(const Swarm__UpdateTaskStatusRequest *req, int64_t now_ms,
                                        char *errmsg)
{
    if (req->n_updates > TASKREPORT_MAX_UPDATES) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "too many updates in one report: %zu (at most %d)",
                      req->n_updates, TASKREPORT_MAX_UPDATES);
        return TASKREPORT_INVALID;
    }
    for (size_t i = 0; i < req->n_updates; i++) {
        enum taskreport_result r =
            taskreport_check_one(req->updates[i], i, now_ms, errmsg);
        if (r != TASKREPORT_OK) {
            return r;
        }
    }
    return TASKREPORT_OK;
}

enum taskreport_result taskreport_check_task(const Swarm__Task *cur, const char *node_id,
                                             const Swarm__TaskStatusUpdate *u, char *errmsg)
{
    if (cur == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s: not found", u->task_id);
        return TASKREPORT_NOT_FOUND;
    }
    if (cur->node_id == NULL || strcmp(cur->node_id, node_id) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s: not assigned to this node", u->task_id);
        return TASKREPORT_FOREIGN;
    }
    if (cur->status != NULL && u->status->state < cur->status->state) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "task %s: state %d is older than the recorded state %d",
                      u->task_id, (int)u->status->state, (int)cur->status->state);
        return TASKREPORT_REGRESSION;
    }
    return TASKREPORT_OK;
}
