/* Internals of the orchestrators (orchestrator.c: the pass, groups, nodes,
 * history, output; orch_modes.c: restart policy, replicated and global
 * modes). See the top of orchestrator.c for the words used. */
#ifndef SWARM_MANAGER_ORCH_INT_H
#define SWARM_MANAGER_ORCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "orchestrator.h"

#define ORCH_ST(x) SWARM__TASK_STATE__TASK_STATE_##x

/* What a pass does to an existing task: keep it; stop it (desired
 * shutdown); retire it (it ended on its own: desired shutdown and marked
 * so, the restart policy decides on a successor); give its slot up (an
 * ended task whose slot a scale-down removed: desired remove); delete it. */
enum orch_act { ORCH_KEEP, ORCH_STOP, ORCH_RETIRE, ORCH_GIVE_UP, ORCH_DELETE };

struct orch_ref {
    Swarm__Task *t;
    size_t idx; /* into in->tasks, and into act[] / protect[] */
};

struct orch_group {
    size_t first, n;       /* range in refs, oldest first */
    uint64_t slot;         /* 0: keyed by node_id */
    const char *node_id;   /* the key when slot == 0 */
    struct orch_ref *live; /* the one task meant to run, or NULL */
    struct orch_ref *pred; /* start-first: the old task, kept until `live` runs */
    bool stopping_old;     /* stop-first: the old task is still stopping */
    bool ended;            /* see the top of orchestrator.c */
    /* Scale-down order. */
    int rank;
    size_t copy;
};

struct orch_node {
    const Swarm__Node *node;
    bool match;     /* satisfies the constraints (true when they are unreadable) */
    bool can_start; /* false when the constraints are unreadable */
    bool covered;   /* global: has a group */
};

struct orch_restart {
    Swarm__RestartCondition condition;
    int64_t delay_ms;
    uint64_t max_attempts;
    int64_t window_ms;
};

struct orch {
    const struct orch_input *in;
    const Swarm__Service *svc;
    const char *name;
    uint64_t spec_version;
    struct orch_restart restart;
    struct {
        int64_t started_at;   /* UpdateStatus.started_at: tasks since are "new" */
        uint64_t parallelism;
        bool start_first;
        size_t budget;        /* outdated slots that may be replaced this pass */
    } update;
    struct orch_node *nodes; /* sorted by ID */
    size_t n_nodes;
    struct orch_ref *refs;
    struct orch_group *groups;
    size_t n_groups;
    unsigned char *act;
    bool *protect; /* never pruned as history */
    int (*new_id)(char *out, void *data);
    void *id_data;
    struct orch_output *out;
    size_t cap_create;
    size_t max_create; /* this pass's bound on new tasks */
    int rv; /* first error; later steps become no-ops */
};

/* The replica count to reconcile to, bounded by SPEC_MAX_REPLICAS. */
uint64_t orch_replicas(const Swarm__ServiceSpec *spec);

/* ---------------------------------------------------------------- tasks */

static inline const char *orch_str(const char *s)
{
    return s != NULL ? s : "";
}

static inline Swarm__TaskState orch_task_state(const Swarm__Task *t)
{
    return t->status != NULL ? t->status->state : ORCH_ST(NEW);
}

static inline bool orch_task_terminal(const Swarm__Task *t)
{
    return orch_task_state(t) > ORCH_ST(RUNNING);
}

static inline bool orch_task_live(const Swarm__Task *t)
{
    return t->desired_state <= ORCH_ST(RUNNING) && !orch_task_terminal(t);
}

/* It ended while meant to run: either still desired running (this pass
 * retires it) or already retired. A task whose slot was given up (desired
 * remove) no longer counts. */
static inline bool orch_task_ended_alone(const Swarm__Task *t)
{
    return orch_task_terminal(t) &&
           (t->desired_state <= ORCH_ST(RUNNING) ||
            (t->ended_on_its_own && t->desired_state == ORCH_ST(SHUTDOWN)));
}

/* Nobody but us will ever move it to a terminal state. */
static inline bool orch_task_never_scheduled(const Swarm__Task *t)
{
    return orch_str(t->node_id)[0] == '\0' && orch_task_state(t) <= ORCH_ST(PENDING);
}

static inline int64_t orch_task_created(const Swarm__Task *t)
{
    return t->meta != NULL ? t->meta->created_at : 0;
}

static inline int64_t orch_task_ended_at(const Swarm__Task *t)
{
    return t->status != NULL ? t->status->timestamp : 0;
}

static inline Swarm__NodeState orch_node_state(const Swarm__Node *n)
{
    return n->status != NULL ? n->status->state : SWARM__NODE_STATE__NODE_STATE_UNKNOWN;
}

static inline Swarm__NodeAvailability orch_node_availability(const Swarm__Node *n)
{
    return n->spec != NULL ? n->spec->availability
                           : SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
}

/* Rolling updates (orch_update.c): plan the pass's budget and status
 * changes (after the groups are scanned), then take one unit per slot to
 * replace. */
void orch_update_plan(struct orch *o);
bool orch_update_take(struct orch *o);

/* Decisions shared by the modes (orchestrator.c). */
void orch_wake(struct orch *o, int64_t at);
void orch_stop(struct orch *o, const struct orch_ref *r);
void orch_create(struct orch *o, uint64_t slot, const char *node_id);
struct orch_node *orch_node_find(struct orch *o, const char *id);
bool orch_node_unusable(struct orch *o, const char *node_id);

/* Restart attempts within the window in group `g` (orch_modes.c); marks
 * the tasks the count rests on as protected from history pruning. */
uint64_t orch_restart_attempts(struct orch *o, const struct orch_group *g, int64_t *oldest);

/* The modes (orch_modes.c), after every group was scanned. */
int orch_replicated(struct orch *o, uint64_t replicas);
void orch_global(struct orch *o);

#endif
