/* The orchestrators' modes and the restart policy (orchestrator.h): what
 * each group of tasks needs once orchestrator.c has sorted them and picked
 * each group's live task. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "orch_int.h"

/* ------------------------------------------------------- restart policy */

static bool orch_restart_wanted(const struct orch *o, const Swarm__Task *t)
{
    switch (o->restart.condition) {
    case SWARM__RESTART_CONDITION__RESTART_CONDITION_NONE:
        return false;
    case SWARM__RESTART_CONDITION__RESTART_CONDITION_ON_FAILURE:
        return orch_task_state(t) == ORCH_ST(FAILED) || orch_task_state(t) == ORCH_ST(REJECTED);
    default:
        return true;
    }
}

/* Restart attempts made within the window: tasks whose predecessor in the
 * group ended on its own. The group's oldest known task is never counted
 * (it is the first, or its predecessor was pruned). The counted tasks and
 * their predecessors are kept out of history pruning, or the count would
 * shrink; *oldest is the creation time of the oldest counted attempt. */
uint64_t orch_restart_attempts(struct orch *o, const struct orch_group *g, int64_t *oldest)
{
    uint64_t attempts = 0;
    for (size_t i = g->first + 1; i < g->first + g->n; i++) {
        const Swarm__Task *prev = o->refs[i - 1].t, *t = o->refs[i].t;
        if (!orch_task_ended_alone(prev)) {
            continue;
        }
        if (o->restart.window_ms > 0 && orch_task_created(t) <= o->in->now_ms - o->restart.window_ms) {
            continue;
        }
        if (attempts == 0) {
            *oldest = orch_task_created(t);
        }
        attempts++;
        o->protect[o->refs[i].idx] = true;
        o->protect[o->refs[i - 1].idx] = true;
    }
    return attempts;
}

/* The group's newest task ended on its own: replace it when the policy says
 * so and its time has come. The ended task stays as it is. */
static void orch_restart(struct orch *o, struct orch_group *g, uint64_t slot, const char *node_id)
{
    const Swarm__Task *t = o->refs[g->first + g->n - 1].t;
    int64_t due = orch_task_ended_at(t) + o->restart.delay_ms;

    /* It decides this group, so history never removes it. */
    o->protect[o->refs[g->first + g->n - 1].idx] = true;
    if (!orch_restart_wanted(o, t)) {
        return;
    }
    if (o->restart.max_attempts > 0) {
        int64_t oldest = 0;
        if (orch_restart_attempts(o, g, &oldest) >= o->restart.max_attempts) {
            /* At most N within the window: once the oldest attempt leaves
             * it, one more is allowed. */
            if (o->restart.window_ms > 0) {
                orch_wake(o, oldest + o->restart.window_ms);
            }
            return;
        }
    }
    if (o->in->now_ms < due) {
        orch_wake(o, due);
        return;
    }
    orch_create(o, slot, node_id);
}

/* ------------------------------------------------------------ replicated */

/* Scale-down order: slots with nothing running first (ended, then not yet
 * running or on a node it must leave anyway), then the nodes holding the
 * most copies, ties by highest slot. A task's copy number is its position
 * among this service's tasks on its node, so taking the highest copy
 * numbers first always takes from the node with the most left. */
static const char *group_node(const struct orch_group *g)
{
    return g->live != NULL ? orch_str(g->live->t->node_id) : "";
}

static int group_cmp_node(const void *pa, const void *pb)
{
    const struct orch_group *a = *(struct orch_group *const *)pa;
    const struct orch_group *b = *(struct orch_group *const *)pb;
    int c = strcmp(group_node(a), group_node(b));
    if (c != 0) {
        return c;
    }
    if (a->rank != b->rank) {
        return a->rank > b->rank ? -1 : 1;
    }
    return a->slot < b->slot ? -1 : 1;
}

static int group_cmp_remove(const void *pa, const void *pb)
{
    const struct orch_group *a = *(struct orch_group *const *)pa;
    const struct orch_group *b = *(struct orch_group *const *)pb;
    if (a->rank != b->rank) {
        return a->rank < b->rank ? -1 : 1;
    }
    if (a->copy != b->copy) {
        return a->copy > b->copy ? -1 : 1;
    }
    return a->slot > b->slot ? -1 : 1;
}

static void orch_scale_down(struct orch *o, struct orch_group **occ, size_t n_occ, size_t n_remove)
{
    for (size_t i = 0; i < n_occ; i++) {
        struct orch_group *g = occ[i];
        if (g->live == NULL) {
            g->rank = 0;
        } else if (orch_task_state(g->live->t) < ORCH_ST(RUNNING) ||
                   orch_node_unusable(o, g->live->t->node_id)) {
            g->rank = 1;
        } else {
            g->rank = 2;
        }
    }
    qsort(occ, n_occ, sizeof *occ, group_cmp_node);
    for (size_t i = 0; i < n_occ; i++) {
        bool same = i > 0 && strcmp(group_node(occ[i - 1]), group_node(occ[i])) == 0;
        occ[i]->copy = same ? occ[i - 1]->copy + 1 : 0;
    }
    qsort(occ, n_occ, sizeof *occ, group_cmp_remove);
    for (size_t i = 0; i < n_remove; i++) {
        struct orch_group *g = occ[i];
        if (g->live != NULL) {
            orch_stop(o, g->live);
        } else {
            /* Desired remove: the ended task's slot is not ours to restart. */
            o->act[o->refs[g->first + g->n - 1].idx] = ORCH_GIVE_UP;
        }
        g->live = NULL;
        g->ended = false;
    }
}

static void orch_replicated_slot(struct orch *o, struct orch_group *g)
{
    if (g->live != NULL) {
        const Swarm__Task *t = g->live->t;
        if (orch_node_unusable(o, t->node_id)) {
            orch_stop(o, g->live);
            orch_create(o, g->slot, NULL);
        } else if (g->pred != NULL) {
            /* start-first: once the successor runs, the old task goes. */
            if (orch_task_state(t) == ORCH_ST(RUNNING)) {
                orch_stop(o, g->pred);
            }
        } else if (t->spec_version < o->spec_version && orch_update_take(o)) {
            if (o->update.start_first) {
                orch_create(o, g->slot, NULL);
            } else {
                orch_stop(o, g->live); /* the new task comes once it has ended */
            }
        }
    } else if (g->ended) {
        orch_restart(o, g, g->slot, NULL);
    }
}

int orch_replicated(struct orch *o, uint64_t replicas)
{
    struct orch_group **occ = calloc(o->n_groups > 0 ? o->n_groups : 1, sizeof *occ);
    size_t n_occ = 0;
    uint64_t next = 1;
    if (occ == NULL) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < o->n_groups; i++) {
        struct orch_group *g = &o->groups[i];
        if (g->slot == 0) {
            if (g->live != NULL) {
                orch_stop(o, g->live); /* left from global mode */
            }
        } else if (g->live != NULL || g->ended || g->stopping_old) {
            occ[n_occ++] = g;
        }
    }
    if (n_occ > replicas) {
        orch_scale_down(o, occ, n_occ, n_occ - (size_t)replicas);
    }
    for (size_t i = 0; i < o->n_groups; i++) {
        if (o->groups[i].slot != 0) {
            orch_replicated_slot(o, &o->groups[i]);
        }
    }
    /* Scale up into the lowest free slots; groups are sorted by slot. When
     * only the scale-up is held back, say where it goes on (orch_resume). */
    bool held = o->out->more;
    for (size_t i = 0, missing = n_occ < replicas ? replicas - n_occ : 0;
         missing > 0 && !o->out->more && o->rv == 0; next++) {
        while (i < o->n_groups && o->groups[i].slot < next) {
            i++;
        }
        if (i < o->n_groups && o->groups[i].slot == next &&
            (o->groups[i].live != NULL || o->groups[i].ended || o->groups[i].stopping_old)) {
            continue;
        }
        orch_create(o, next, NULL);
        if (o->out->more && !held) {
            o->out->resume.slot = next;
            o->out->resume.missing = missing;
            break;
        }
        missing--;
    }
    free(occ);
    return 0;
}

/* ---------------------------------------------------------------- global */

static void orch_global_group(struct orch *o, struct orch_group *g)
{
    struct orch_node *n = orch_node_find(o, g->node_id);
    const Swarm__Task *t = g->live != NULL ? g->live->t : NULL;

    if (n == NULL || g->node_id[0] == '\0') {
        if (g->live != NULL) {
            orch_stop(o, g->live); /* the node was removed */
        }
        return;
    }
    n->covered = true;
    if (orch_node_availability(n->node) == SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN ||
        !n->match) {
        if (g->live != NULL) {
            orch_stop(o, g->live);
        }
        return;
    }
    /* Down: its task is shut down, as swarmkit's global orchestrator does
     * (a new one starts when the node is ready again). Not yet known: its
     * task waits for it. Pause: keep, start nothing. */
    if (orch_node_state(n->node) == SWARM__NODE_STATE__NODE_STATE_DOWN) {
        if (g->live != NULL) {
            orch_stop(o, g->live);
        }
        return;
    }
    if (orch_node_state(n->node) != SWARM__NODE_STATE__NODE_STATE_READY ||
        orch_node_availability(n->node) == SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE ||
        !n->can_start) {
        return;
    }
    if (t != NULL) {
        if (g->pred != NULL) {
            if (orch_task_state(t) == ORCH_ST(RUNNING)) {
                orch_stop(o, g->pred);
            }
        } else if (t->spec_version < o->spec_version && orch_update_take(o)) {
            if (o->update.start_first) {
                orch_create(o, 0, g->node_id);
            } else {
                orch_stop(o, g->live);
            }
        }
    } else if (g->stopping_old) {
        return; /* stop-first: the new task comes once the old one ended */
    } else if (g->ended) {
        orch_restart(o, g, 0, g->node_id);
    } else {
        orch_create(o, 0, g->node_id);
    }
}

void orch_global(struct orch *o)
{
    for (size_t i = 0; i < o->n_groups; i++) {
        struct orch_group *g = &o->groups[i];
        if (g->slot != 0) {
            if (g->live != NULL) {
                orch_stop(o, g->live); /* left from replicated mode */
            }
        } else {
            orch_global_group(o, g);
        }
    }
    for (size_t i = 0; i < o->n_nodes; i++) {
        const struct orch_node *n = &o->nodes[i];
        if (!n->covered && n->can_start &&
            orch_node_state(n->node) == SWARM__NODE_STATE__NODE_STATE_READY &&
            orch_node_availability(n->node) == SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE) {
            orch_create(o, 0, n->node->id);
        }
    }
}

