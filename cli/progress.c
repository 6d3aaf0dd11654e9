/* Convergence of a service, decided from plain messages (see progress.h).
 * Replicated: slot k is done when its newest current-spec task meant to run
 * is running. Global: the same per node that has such a task. */
#include "progress.h"

#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "view_service.h"

static bool cli_progress_current(const Swarm__Service *svc, const Swarm__Task *t)
{
    return t->spec_version >= svc->spec_version;
}

static int64_t cli_progress_created(const Swarm__Task *t)
{
    return t->meta != NULL ? t->meta->created_at : 0;
}

/* The task that stands for a slot: among current-spec tasks, one meant to
 * run beats one being shut down; then the newest. */
static bool cli_progress_better(const Swarm__Task *a, const Swarm__Task *b)
{
    if (b == NULL) {
        return true;
    }
    bool ra = a->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING;
    bool rb = b->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING;
    if (ra != rb) {
        return ra;
    }
    return cli_progress_created(a) > cli_progress_created(b);
}

static Swarm__TaskState cli_progress_state(const Swarm__Task *t)
{
    return t->status != NULL ? t->status->state : SWARM__TASK_STATE__TASK_STATE_NEW;
}

static bool cli_progress_is_failure(const Swarm__Task *t, int64_t since_ms)
{
    Swarm__TaskState s = cli_progress_state(t);
    return (s == SWARM__TASK_STATE__TASK_STATE_FAILED ||
            s == SWARM__TASK_STATE__TASK_STATE_REJECTED) &&
           t->status->timestamp >= since_ms;
}

static void cli_progress_fill_slot(struct cli_progress_slot *s, const Swarm__Task *t)
{
    s->has_task = t != NULL;
    s->state = t != NULL ? cli_progress_state(t) : SWARM__TASK_STATE__TASK_STATE_NEW;
    s->err[0] = '\0';
    if (t != NULL && t->status != NULL && t->status->err != NULL) {
        snprintf(s->err, sizeof s->err, "%s", cli_esc(t->status->err)); /* a node's words */
    }
}

static void cli_progress_replicated(const Swarm__Service *svc, Swarm__Task *const *tasks,
                                    size_t n, struct cli_progress *p)
{
    uint64_t want = svc->spec->replicated != NULL ? svc->spec->replicated->replicas : 0;
    p->desired = want;
    p->n_slots = want;
    p->slots = calloc(want + 1, sizeof *p->slots);
    const Swarm__Task **best = calloc(want + 1, sizeof *best);
    if (p->slots == NULL || best == NULL) {
        p->n_slots = 0;
        free(best);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const Swarm__Task *t = tasks[i];
        if (t->slot >= 1 && t->slot <= want && cli_progress_current(svc, t) &&
            cli_progress_better(t, best[t->slot - 1])) {
            best[t->slot - 1] = t;
        }
    }
    for (uint64_t k = 0; k < want; k++) {
        struct cli_progress_slot *s = &p->slots[k];
        snprintf(s->label, sizeof s->label, "%llu/%llu", (unsigned long long)(k + 1),
                 (unsigned long long)want);
        cli_progress_fill_slot(s, best[k]);
        p->running += best[k] != NULL &&
                      best[k]->desired_state == SWARM__TASK_STATE__TASK_STATE_RUNNING &&
                      s->state == SWARM__TASK_STATE__TASK_STATE_RUNNING;
    }
    free(best);
}

static void cli_progress_global(const Swarm__Service *svc, Swarm__Task *const *tasks,
                                size_t n, struct cli_progress *p)
{
    const Swarm__Task **best = calloc(n + 1, sizeof *best);
    p->slots = calloc(n + 1, sizeof *p->slots);
    if (p->slots == NULL || best == NULL) {
        free(best);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const Swarm__Task *t = tasks[i];
        if (!cli_progress_current(svc, t) || *t->node_id == '\0' ||
            t->desired_state > SWARM__TASK_STATE__TASK_STATE_RUNNING) {
            continue;
        }
        size_t k = 0;
        while (k < p->n_slots && strcmp(best[k]->node_id, t->node_id) != 0) {
            k++;
        }
        if (k == p->n_slots) {
            p->n_slots++;
        }
        if (cli_progress_better(t, best[k])) {
            best[k] = t;
        }
    }
    for (size_t k = 0; k < p->n_slots; k++) {
        snprintf(p->slots[k].label, sizeof p->slots[k].label, "%.*s", CLI_SHORT_ID_LEN,
                 best[k]->node_id);
        cli_progress_fill_slot(&p->slots[k], best[k]);
        p->running += p->slots[k].state == SWARM__TASK_STATE__TASK_STATE_RUNNING;
    }
    p->desired = p->n_slots;
    free(best);
}

/* A rolling update that stopped tells more than the tasks do. */
static bool cli_progress_update_failed(const Swarm__Service *svc, bool rollback,
                                       struct cli_progress *p)
{
    const Swarm__UpdateStatus *u = svc->update_status;
    const char *msg = u != NULL && u->message != NULL ? u->message : "";
    if (u == NULL) {
        return false;
    }
    switch (u->state) {
        case SWARM__UPDATE_STATE__UPDATE_STATE_PAUSED:
            snprintf(p->reason, sizeof p->reason, "update paused: %s", cli_esc(msg));
            return true;
        case SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_PAUSED:
            snprintf(p->reason, sizeof p->reason, "rollback paused: %s", cli_esc(msg));
            return true;
        case SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_COMPLETED:
            if (!rollback) {
                snprintf(p->reason, sizeof p->reason, "update rolled back: %s", cli_esc(msg));
                return true;
            }
            return false;
        default:
            return false;
    }
}

static bool cli_progress_updating(const Swarm__Service *svc)
{
    const Swarm__UpdateStatus *u = svc->update_status;
    return u != NULL && (u->state == SWARM__UPDATE_STATE__UPDATE_STATE_UPDATING ||
                         u->state == SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_STARTED);
}

void cli_progress_eval(const Swarm__Service *svc, Swarm__Task *const *tasks,
                       size_t n, int64_t since_ms, bool rollback,
                       struct cli_progress *p)
{
    char name[256];
    memset(p, 0, sizeof *p);
    if (svc->spec == NULL) {
        p->result = CLI_PROGRESS_FAILED;
        snprintf(p->reason, sizeof p->reason, "service has no spec");
        return;
    }
    bool global = svc->spec->mode_case == SWARM__SERVICE_SPEC__MODE_GLOBAL;
    if (svc->spec->annotations != NULL && svc->spec->annotations->name != NULL) {
        snprintf(p->service, sizeof p->service, "%s", svc->spec->annotations->name);
    }
    if (global) {
        cli_progress_global(svc, tasks, n, p);
    } else {
        cli_progress_replicated(svc, tasks, n, p);
    }
    if (cli_progress_update_failed(svc, rollback, p)) {
        p->result = CLI_PROGRESS_FAILED;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (cli_progress_current(svc, tasks[i]) && cli_progress_is_failure(tasks[i], since_ms)) {
            cli_view_task_name(tasks[i], name, sizeof name);
            p->result = CLI_PROGRESS_FAILED;
            snprintf(p->reason, sizeof p->reason, "task %s %s: %s", cli_esc(name),
                     cli_view_task_state_word(cli_progress_state(tasks[i])),
                     *tasks[i]->status->err ? cli_esc(tasks[i]->status->err)
                                            : "(no error message)");
            return;
        }
    }
    bool done = p->running == p->desired && (p->desired > 0 || !global) &&
                !cli_progress_updating(svc);
    p->result = done ? CLI_PROGRESS_CONVERGED : CLI_PROGRESS_WAITING;
}

void cli_progress_free(struct cli_progress *p)
{
    free(p->slots);
    p->slots = NULL;
    p->n_slots = 0;
}

/* docker/cli's numberedStates: how far along a task is, out of 9. */
static int cli_progress_step(Swarm__TaskState s)
{
    switch (s) {
        case SWARM__TASK_STATE__TASK_STATE_NEW:
            return 1;
        case SWARM__TASK_STATE__TASK_STATE_PENDING:
            return 3;
        case SWARM__TASK_STATE__TASK_STATE_ASSIGNED:
            return 4;
        case SWARM__TASK_STATE__TASK_STATE_ACCEPTED:
            return 5;
        case SWARM__TASK_STATE__TASK_STATE_PREPARING:
            return 6;
        case SWARM__TASK_STATE__TASK_STATE_READY:
            return 7;
        case SWARM__TASK_STATE__TASK_STATE_STARTING:
            return 8;
        case SWARM__TASK_STATE__TASK_STATE_RUNNING:
            return 9;
        default:
            return 0;
    }
}

static void cli_progress_slot_line(const struct cli_progress_slot *s, bool bars,
                                   char *line, size_t size)
{
    const char *word = cli_view_task_state_word(s->state);
    int step = cli_progress_step(s->state);
    if (s->err[0] != '\0') {
        snprintf(line, size, "%s: %s", s->label, s->err);
    } else if (!bars || step == 0) {
        snprintf(line, size, "%s: %s", s->label, word);
    } else {
        int eq = step * 100 / 9 / 2;
        snprintf(line, size, "%s: %-9s [%.*s>%*s]", s->label, word, eq,
                 "==================================================", 50 - eq, "");
    }
}

size_t cli_progress_render(const struct cli_progress *p, bool bars,
                           char (*lines)[CLI_PROGRESS_LINE], size_t max)
{
    size_t n = 0;
    if (max == 0) {
        return 0;
    }
    snprintf(lines[n++], CLI_PROGRESS_LINE, "overall progress: %llu out of %llu tasks",
             (unsigned long long)p->running, (unsigned long long)p->desired);
    if (p->desired <= CLI_PROGRESS_MAX_BARS) {
        for (size_t i = 0; i < p->n_slots && n < max; i++) {
            cli_progress_slot_line(&p->slots[i], bars, lines[n++], CLI_PROGRESS_LINE);
        }
    }
    if (p->result == CLI_PROGRESS_CONVERGED && n < max) {
        snprintf(lines[n++], CLI_PROGRESS_LINE, "verify: Service converged");
    }
    return n;
}
