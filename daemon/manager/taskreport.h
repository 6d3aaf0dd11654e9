/* Checks of a worker's task status report (UpdateTaskStatus), pure logic:
 * the rules are in dispatcher.proto (UpdateTaskStatusRequest). The
 * dispatcher runs taskreport_check on the whole request first, then
 * taskreport_check_task for each update against the task read from the
 * store by ID, and records nothing unless every update passed. */
#ifndef SWARM_MANAGER_TASKREPORT_H
#define SWARM_MANAGER_TASKREPORT_H

#include <stddef.h>
#include <stdint.h>

#include "dispatcher.pb-c.h"
#include "err.h"

#define TASKREPORT_MAX_UPDATES 1024
#define TASKREPORT_STR_MAX 1024                     /* bytes of message and of err */
#define TASKREPORT_FUTURE_MS (24LL * 3600 * 1000)   /* clock skew tolerated */

enum taskreport_result {
    TASKREPORT_OK = 0,
    TASKREPORT_INVALID,    /* malformed: INVALID_ARGUMENT */
    TASKREPORT_NOT_FOUND,  /* no such task: NOT_FOUND */
    TASKREPORT_FOREIGN,    /* another node's task: PERMISSION_DENIED */
    TASKREPORT_REGRESSION, /* older than the recorded state: FAILED_PRECONDITION */
};

/* The request's shape, before any store lookup: count, IDs, states,
 * timestamps against `now_ms` (unix ms), string sizes. Work is O(updates),
 * with updates bounded first. On failure errmsg says which update and why. */
enum taskreport_result taskreport_check(const Swarm__UpdateTaskStatusRequest *req, int64_t now_ms,
                                        char *errmsg);

/* One update against the stored task (`cur`, NULL when the store has none)
 * of node `node_id`. */
enum taskreport_result taskreport_check_task(const Swarm__Task *cur, const char *node_id,
                                             const Swarm__TaskStatusUpdate *u, char *errmsg);

#endif
