/* Has a service converged? The pure half of `service create|update|scale|
 * rollback` without -d: from the service and its tasks, count the slots
 * running the current spec, decide converged / failed / still waiting, and
 * render Docker's progress lines (docker/cli cli/command/service/progress).
 * The polling loop lives in cmd_service_wait.c. */
#ifndef SWARM_CLI_PROGRESS_H
#define SWARM_CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "objects.pb-c.h"

/* Slots are shown one per line up to this many desired tasks, as Docker. */
#define CLI_PROGRESS_MAX_BARS 100
#define CLI_PROGRESS_LINE 256

enum cli_progress_result {
    CLI_PROGRESS_WAITING,
    CLI_PROGRESS_CONVERGED,
    CLI_PROGRESS_FAILED,
};

struct cli_progress_slot {
    char label[32];       /* "1/3" or a node ID's 12 characters */
    Swarm__TaskState state;
    bool has_task;
    char err[128];        /* the task's error, shown instead of its state */
};

struct cli_progress {
    uint64_t desired, running;
    struct cli_progress_slot *slots; /* n_slots entries, owned */
    size_t n_slots;
    enum cli_progress_result result;
    char service[128]; /* the service's name, for messages */
    char reason[512]; /* CLI_PROGRESS_FAILED: why, for the error line */
};

/* Evaluate. A task counts when it runs the service's current spec_version;
 * a failed or rejected one counts as a failure only if its status is not
 * older than since_ms (the command's start), so old history does not fail
 * a scale. `rollback`: the command asked for a rollback, so a completed
 * rollback is success. Fills *p (free with cli_progress_free). */
void cli_progress_eval(const Swarm__Service *svc, Swarm__Task *const *tasks,
                       size_t n, int64_t since_ms, bool rollback,
                       struct cli_progress *p);

void cli_progress_free(struct cli_progress *p);

/* The lines to show now, without newlines: "overall progress: 2 out of 3
 * tasks", one per slot ("1/3: running   [=====...>]" with bars, "1/3:
 * running" without), and "verify: Service converged" once converged.
 * Returns the count; `lines` has room for `max`. */
size_t cli_progress_render(const struct cli_progress *p, bool bars,
                           char (*lines)[CLI_PROGRESS_LINE], size_t max);

#endif
