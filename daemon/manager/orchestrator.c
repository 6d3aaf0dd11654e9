/* The orchestrators' decisions (orchestrator.h), computed from the store's
 * state alone so that any leader, at any time, reaches the same answer.
 *
 * A pass: sort the tasks into groups (a slot, or a node for global tasks and
 * for leftovers of a mode change), oldest first; in each group pick the one
 * task meant to run and stop any other; then the mode decides stops and
 * creates per group; last, prune each group's history. Stops and deletes are
 * recorded per input task and emitted at the end, so a task is never both
 * updated and deleted.
 *
 * Words used below:
 *   live    desired state <= running and not yet ended: the slot's task.
 *   ended   the slot has no live task and its newest task ended while still
 *           desired running: it ended on its own, so the restart policy
 *           decides. The pass that first sees such a task retires it: desired
 *           shutdown, as swarmkit's restart supervisor sets it, and the mark
 *           ended_on_its_own, so "ended on its own" stays readable from the
 *           store: the predecessor of a restart attempt is a retired task,
 *           while tasks we stopped (node down, drain, update, scale down)
 *           carry desired shutdown without the mark. That is how attempts are
 *           counted without memory. A scale-down that takes an ended slot
 *           gives it up (desired remove), so nothing restarts there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constraint.h"
#include "err.h"
#include "orch_int.h"
#include "pbcopy.h"
#include "specvalid.h"

#define ORCH_DEFAULT_RESTART_DELAY_MS 5000
#define ORCH_ID_BUF 64

/* ---------------------------------------------------------------- tasks */

static int task_cmp_age(const Swarm__Task *a, const Swarm__Task *b)
{
    if (orch_task_created(a) != orch_task_created(b)) {
        return orch_task_created(a) < orch_task_created(b) ? -1 : 1;
    }
    if (orch_task_ended_at(a) != orch_task_ended_at(b)) {
        return orch_task_ended_at(a) < orch_task_ended_at(b) ? -1 : 1;
    }
    return strcmp(orch_str(a->id), orch_str(b->id));
}

/* Group key (slot, or node for slot 0), then oldest first. */
static int ref_cmp(const void *pa, const void *pb)
{
    const Swarm__Task *a = ((const struct orch_ref *)pa)->t;
    const Swarm__Task *b = ((const struct orch_ref *)pb)->t;
    int c;
    if (a->slot != b->slot) {
        return a->slot < b->slot ? -1 : 1;
    }
    if (a->slot == 0 && (c = strcmp(orch_str(a->node_id), orch_str(b->node_id))) != 0) {
        return c;
    }
    return task_cmp_age(a, b);
}

/* Of two tasks both meant to run in one slot, the one to keep: furthest
 * along, then on the current spec, then the newest. */
static bool task_better(const Swarm__Task *a, const Swarm__Task *b)
{
    if (orch_task_state(a) != orch_task_state(b)) {
        return orch_task_state(a) > orch_task_state(b);
    }
    if (a->spec_version != b->spec_version) {
        return a->spec_version > b->spec_version;
    }
    return task_cmp_age(a, b) > 0;
}

void orch_wake(struct orch *o, int64_t at)
{
    if (o->out->wake_at_ms == 0 || at < o->out->wake_at_ms) {
        o->out->wake_at_ms = at;
    }
}

void orch_stop(struct orch *o, const struct orch_ref *r)
{
    if (orch_task_never_scheduled(r->t)) {
        o->act[r->idx] = ORCH_DELETE;
    } else if (r->t->desired_state <= ORCH_ST(RUNNING)) {
        o->act[r->idx] = ORCH_STOP;
    }
}

/* Deep copy through the wire format: the copy is owned as if unpacked, so
 * swarm__task__free_unpacked frees it whoever ends up holding it. */
static Swarm__Task *task_dup(const Swarm__Task *t)
{
    return pb_copy(&t->base);
}

void orch_create(struct orch *o, uint64_t slot, const char *node_id)
{
    char id[ORCH_ID_BUF] = {0};
    char name[512];
    Swarm__Task t = SWARM__TASK__INIT;
    Swarm__Meta meta = SWARM__META__INIT;
    Swarm__TaskStatus status = SWARM__TASK_STATUS__INIT;
    Swarm__Annotations ann = SWARM__ANNOTATIONS__INIT;
    Swarm__Task *copy;
    int rv;

    if (o->rv != 0) {
        return;
    }
    if (o->out->n_create >= o->max_create) {
        o->out->more = true; /* a later pass creates it */
        return;
    }
    if ((rv = o->new_id(id, o->id_data)) != 0) {
        o->rv = rv < 0 ? rv : SWARM_EIO;
        return;
    }
    if (slot != 0) {
        snprintf(name, sizeof name, "%s.%llu", o->name, (unsigned long long)slot);
    } else {
        snprintf(name, sizeof name, "%s.%s", o->name, node_id);
    }
    meta.created_at = o->in->now_ms;
    meta.updated_at = o->in->now_ms;
    status.timestamp = o->in->now_ms;
    status.state = ORCH_ST(PENDING);
    status.message = (char *)"pending task scheduling";
    ann.name = name;
    t.id = id;
    t.meta = &meta;
    t.service_id = (char *)o->in->service_id;
    t.slot = slot;
    t.node_id = (char *)orch_str(node_id);
    /* Read only: the wire copy below owns its own spec. */
    t.spec = o->svc->spec->task;
    t.service_name = (char *)o->name;
    t.desired_state = ORCH_ST(RUNNING);
    t.status = &status;
    t.spec_version = o->spec_version;
    t.annotations = &ann;

    if (o->out->n_create == o->cap_create) {
        size_t cap = o->cap_create ? 2 * o->cap_create : 16;
        Swarm__Task **grown = realloc(o->out->create, cap * sizeof *grown);
        if (grown == NULL) {
            o->rv = SWARM_ENOMEM;
            return;
        }
        o->out->create = grown;
        o->cap_create = cap;
    }
    if ((copy = task_dup(&t)) == NULL) {
        o->rv = SWARM_ENOMEM;
        return;
    }
    o->out->create[o->out->n_create++] = copy;
}

/* ---------------------------------------------------------------- nodes */

static int node_cmp(const void *pa, const void *pb)
{
    const struct orch_node *a = pa, *b = pb;
    return strcmp(orch_str(a->node->id), orch_str(b->node->id));
}

struct orch_node *orch_node_find(struct orch *o, const char *id)
{
    Swarm__Node key_node = SWARM__NODE__INIT;
    struct orch_node key = {.node = &key_node};
    key_node.id = (char *)orch_str(id);
    if (o->n_nodes == 0) {
        return NULL;
    }
    return bsearch(&key, o->nodes, o->n_nodes, sizeof *o->nodes, node_cmp);
}

/* Constraints are checked once per node, not once per task. Constraints
 * that do not parse (the API refuses them, so only damaged data gets here)
 * stop nothing that runs and start nothing new. */
static int orch_nodes_init(struct orch *o)
{
    const Swarm__TaskSpec *ts = o->svc != NULL ? o->svc->spec->task : NULL;
    struct constraint *cs = NULL;
    size_t n_cs = 0;
    bool readable = true;
    char errmsg[SWARM_ERRMSG_SIZE];

    if (ts != NULL && ts->placement != NULL && ts->placement->n_constraints > 0) {
        int rv = constraint_parse_all(ts->placement->constraints, ts->placement->n_constraints,
                                      &cs, errmsg);
        if (rv == SWARM_ENOMEM) {
            return rv;
        }
        if (rv != 0) {
            readable = false;
            cs = NULL;
        } else {
            n_cs = ts->placement->n_constraints;
        }
    }
    o->n_nodes = o->in->n_nodes;
    o->nodes = calloc(o->n_nodes > 0 ? o->n_nodes : 1, sizeof *o->nodes);
    if (o->nodes == NULL) {
        free(cs);
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < o->n_nodes; i++) {
        struct orch_node *n = &o->nodes[i];
        n->node = o->in->nodes[i];
        n->match = !readable || n_cs == 0 || constraint_match_all(cs, n_cs, n->node);
        n->can_start = readable && n->match;
    }
    free(cs);
    if (o->n_nodes > 0) {
        qsort(o->nodes, o->n_nodes, sizeof *o->nodes, node_cmp);
    }
    return 0;
}

/* Replicated: a task there must move elsewhere now. */
bool orch_node_unusable(struct orch *o, const char *node_id)
{
    struct orch_node *n;
    if (orch_str(node_id)[0] == '\0') {
        return false; /* not placed yet: the scheduler's business */
    }
    n = orch_node_find(o, node_id);
    return n == NULL || orch_node_state(n->node) == SWARM__NODE_STATE__NODE_STATE_DOWN ||
           orch_node_availability(n->node) == SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN ||
           !n->match;
}

/* --------------------------------------------------------------- groups */

static int orch_groups_init(struct orch *o)
{
    size_t n = o->in->n_tasks;
    o->refs = calloc(n > 0 ? n : 1, sizeof *o->refs);
    o->groups = calloc(n > 0 ? n : 1, sizeof *o->groups);
    o->act = calloc(n > 0 ? n : 1, sizeof *o->act);
    o->protect = calloc(n > 0 ? n : 1, sizeof *o->protect);
    if (o->refs == NULL || o->groups == NULL || o->act == NULL || o->protect == NULL) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        o->refs[i].t = o->in->tasks[i];
        o->refs[i].idx = i;
    }
    if (n > 0) {
        qsort(o->refs, n, sizeof *o->refs, ref_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        const Swarm__Task *t = o->refs[i].t;
        struct orch_group *g = o->n_groups > 0 ? &o->groups[o->n_groups - 1] : NULL;
        if (g == NULL || g->slot != t->slot ||
            (t->slot == 0 && strcmp(g->node_id, orch_str(t->node_id)) != 0)) {
            g = &o->groups[o->n_groups++];
            g->first = i;
            g->slot = t->slot;
            g->node_id = orch_str(t->node_id);
        }
        g->n++;
    }
    return 0;
}

/* Two live tasks in a slot that are an old one still running and its
 * successor on the current spec not yet running: start-first keeps both. */
static bool start_first_pair(const struct orch *o, const Swarm__Task *a, const Swarm__Task *b)
{
    const Swarm__Task *old = a->spec_version < b->spec_version ? a : b;
    const Swarm__Task *cur = old == a ? b : a;
    return o->spec_version > 0 && old->spec_version < cur->spec_version &&
           cur->spec_version >= o->spec_version && orch_task_state(cur) < ORCH_ST(RUNNING) &&
           orch_task_state(old) == ORCH_ST(RUNNING);
}

/* Keep one live task per group and stop the others; note whether the group
 * ended on its own. */
static void orch_group_scan(struct orch *o, struct orch_group *g)
{
    const Swarm__Task *newest = o->refs[g->first + g->n - 1].t;
    for (size_t i = g->first; i < g->first + g->n; i++) {
        struct orch_ref *r = &o->refs[i];
        if (!orch_task_live(r->t)) {
            continue;
        }
        if (g->live == NULL) {
            g->live = r;
        } else if (start_first_pair(o, g->live->t, r->t)) {
            /* A start-first update in progress: the old task keeps running
             * until its successor does. */
            bool r_new = r->t->spec_version > g->live->t->spec_version;
            g->pred = r_new ? g->live : r;
            g->live = r_new ? r : g->live;
        } else if (task_better(r->t, g->live->t)) {
            orch_stop(o, g->live);
            g->live = r;
        } else {
            orch_stop(o, r);
        }
    }
    /* Retire what ended on its own (see the top of the file). */
    for (size_t i = g->first; i < g->first + g->n; i++) {
        const struct orch_ref *r = &o->refs[i];
        if (orch_task_terminal(r->t) && r->t->desired_state <= ORCH_ST(RUNNING)) {
            o->act[r->idx] = ORCH_RETIRE;
        }
    }
    g->ended = g->live == NULL && orch_task_ended_alone(newest);
    /* stop-first: an outdated task we stopped for an update is still
     * stopping; its slot waits for it before the new task starts. */
    g->stopping_old = g->live == NULL && newest->desired_state > ORCH_ST(RUNNING) &&
                      !orch_task_terminal(newest) && newest->spec_version < o->spec_version &&
                      o->spec_version > 0 && !orch_node_unusable(o, newest->node_id);
}

/* --------------------------------------------------------------- history */

/* Per group, at most task_history_limit tasks stay in all, as Docker's task
 * reaper keeps them: the live task (or the one about to replace it) counts,
 * then the newest ended ones; older ones go. Protected tasks (the one a
 * slot's restart waits on, those its restart count rests on) always stay and
 * count toward the limit. Negative: keep everything. */
static void orch_prune(struct orch *o)
{
    int64_t limit = o->in->task_history_limit;
    if (limit < 0) {
        return;
    }
    for (size_t gi = 0; gi < o->n_groups; gi++) {
        const struct orch_group *g = &o->groups[gi];
        int64_t kept = 0, oldest;
        for (size_t i = g->first; i < g->first + g->n; i++) {
            const struct orch_ref *r = &o->refs[i];
            kept += !orch_task_terminal(r->t) && o->act[r->idx] != ORCH_DELETE;
        }
        /* A slot whose task ended gets (or waits for) a replacement. */
        if (kept == 0 && limit > 0) {
            kept = 1;
        }
        if (o->restart.max_attempts > 0) {
            orch_restart_attempts(o, g, &oldest);
        }
        for (size_t i = g->first + g->n; i-- > g->first;) {
            const struct orch_ref *r = &o->refs[i];
            if (!orch_task_terminal(r->t) || o->act[r->idx] == ORCH_DELETE) {
                continue;
            }
            if (o->protect[r->idx] || kept < limit) {
                kept++;
            } else {
                o->act[r->idx] = ORCH_DELETE;
            }
        }
    }
}

/* Service removed: stop what runs; delete what has ended or never got a
 * node (nothing else would ever end it). */
static void orch_removed(struct orch *o)
{
    for (size_t i = 0; i < o->in->n_tasks; i++) {
        const Swarm__Task *t = o->in->tasks[i];
        if (orch_task_terminal(t) || orch_str(t->node_id)[0] == '\0') {
            o->act[i] = ORCH_DELETE;
        } else if (t->desired_state <= ORCH_ST(RUNNING)) {
            o->act[i] = ORCH_STOP;
        }
    }
}

/* ---------------------------------------------------------------- output */

static int orch_emit(struct orch *o)
{
    struct orch_output *out = o->out;
    size_t n_update = 0, n_remove = 0;
    for (size_t i = 0; i < o->in->n_tasks; i++) {
        n_update += o->act[i] != ORCH_KEEP && o->act[i] != ORCH_DELETE;
        n_remove += o->act[i] == ORCH_DELETE;
    }
    out->update = calloc(n_update > 0 ? n_update : 1, sizeof *out->update);
    out->remove = calloc(n_remove > 0 ? n_remove : 1, sizeof *out->remove);
    if (out->update == NULL || out->remove == NULL) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < o->in->n_tasks; i++) {
        const Swarm__Task *t = o->in->tasks[i];
        if (o->act[i] == ORCH_STOP || o->act[i] == ORCH_RETIRE || o->act[i] == ORCH_GIVE_UP) {
            Swarm__Task *copy = task_dup(t);
            if (copy == NULL) {
                return SWARM_ENOMEM;
            }
            copy->desired_state =
                o->act[i] == ORCH_GIVE_UP ? ORCH_ST(REMOVE) : ORCH_ST(SHUTDOWN);
            if (o->act[i] != ORCH_STOP && orch_task_ended_alone(t)) {
                copy->ended_on_its_own = true;
            }
            out->update[out->n_update++] = copy;
        } else if (o->act[i] == ORCH_DELETE) {
            char *id = strdup(orch_str(t->id));
            if (id == NULL) {
                return SWARM_ENOMEM;
            }
            out->remove[out->n_remove++] = id;
        }
    }
    return 0;
}

static void orch_restart_init(struct orch *o)
{
    const Swarm__RestartPolicy *rp = o->svc->spec->task ? o->svc->spec->task->restart : NULL;
    if (rp == NULL) {
        o->restart.condition = SWARM__RESTART_CONDITION__RESTART_CONDITION_ANY;
        o->restart.delay_ms = ORCH_DEFAULT_RESTART_DELAY_MS;
        return;
    }
    o->restart.condition = rp->condition;
    o->restart.delay_ms = rp->delay_ms > 0 ? rp->delay_ms : 0;
    o->restart.max_attempts = rp->max_attempts;
    o->restart.window_ms = rp->window_ms > 0 ? rp->window_ms : 0;
}

/* This pass's bound on new tasks: by count and by bytes of task spec. */
static size_t orch_max_create(const struct orch_input *in)
{
    size_t max = in->max_create > 0 && in->max_create < ORCH_MAX_CREATE ? in->max_create
                                                                       : ORCH_MAX_CREATE;
    if (in->service != NULL && in->service->spec->task != NULL) {
        size_t per = swarm__task_spec__get_packed_size(in->service->spec->task) + 256;
        size_t by_bytes = ORCH_MAX_CREATE_BYTES / per;
        max = by_bytes < 1 ? 1 : by_bytes < max ? by_bytes : max;
    }
    return max;
}

/* The service's name for its tasks (its ID when it has none). */
static void orch_names_init(struct orch *o)
{
    const Swarm__ServiceSpec *spec = o->svc->spec;
    o->name = spec->annotations != NULL ? orch_str(spec->annotations->name) : "";
    if (o->name[0] == '\0') {
        o->name = o->in->service_id;
    }
    o->spec_version = o->svc->spec_version;
}

static int orch_decide(struct orch *o)
{
    const Swarm__ServiceSpec *spec;
    int rv;

    if ((rv = orch_groups_init(o)) != 0) {
        return rv;
    }
    if (o->svc == NULL) {
        orch_removed(o);
        return orch_emit(o);
    }
    spec = o->svc->spec;
    orch_names_init(o);
    orch_restart_init(o);
    if ((rv = orch_nodes_init(o)) != 0) {
        return rv;
    }
    for (size_t i = 0; i < o->n_groups; i++) {
        orch_group_scan(o, &o->groups[i]);
    }
    orch_update_plan(o);
    if (spec->mode_case == SWARM__SERVICE_SPEC__MODE_GLOBAL) {
        orch_global(o);
    } else {
        /* No mode at all counts as Docker's default, one replica. */
        if ((rv = orch_replicated(o, orch_replicas(spec))) != 0) {
            return rv;
        }
    }
    if (o->rv != 0) {
        return o->rv;
    }
    orch_prune(o);
    return orch_emit(o);
}

uint64_t orch_replicas(const Swarm__ServiceSpec *spec)
{
    uint64_t replicas = 1; /* no mode at all: Docker's default */
    if (spec->mode_case == SWARM__SERVICE_SPEC__MODE_REPLICATED) {
        replicas = spec->replicated != NULL ? spec->replicated->replicas : 0;
    }
    return replicas < SPEC_MAX_REPLICAS ? replicas : SPEC_MAX_REPLICAS;
}

int orch_resume(const struct orch_input *in, const struct orch_resume *from,
                int (*new_id)(char *out, void *data), void *id_data, struct orch_output *out)
{
    struct orch o = {
        .in = in, .svc = in->service, .new_id = new_id, .id_data = id_data, .out = out};
    uint64_t slot = from->slot, missing = from->missing;

    memset(out, 0, sizeof *out);
    if (in->service == NULL || in->service->spec == NULL ||
        in->service->spec->mode_case == SWARM__SERVICE_SPEC__MODE_GLOBAL) {
        return SWARM_EINVAL;
    }
    o.max_create = orch_max_create(in);
    orch_names_init(&o);
    for (; missing > 0 && slot > 0; slot++, missing--) {
        orch_create(&o, slot, NULL);
        if (o.rv != 0) {
            orch_output_free(out);
            return o.rv;
        }
        if (out->more) {
            out->resume.slot = slot;
            out->resume.missing = missing;
            break;
        }
    }
    return 0;
}

int orch_reconcile(const struct orch_input *in, int (*new_id)(char *out, void *data), void *id_data,
                   struct orch_output *out)
{
    struct orch o = {
        .in = in, .svc = in->service, .new_id = new_id, .id_data = id_data, .out = out};
    int rv;

    memset(out, 0, sizeof *out);
    if (in->service != NULL && in->service->spec == NULL) {
        return SWARM_EINVAL;
    }
    o.max_create = orch_max_create(in);
    rv = orch_decide(&o);
    free(o.nodes);
    free(o.refs);
    free(o.groups);
    free(o.act);
    free(o.protect);
    if (rv != 0) {
        orch_output_free(out);
    }
    return rv;
}

void orch_output_free(struct orch_output *out)
{
    for (size_t i = 0; i < out->n_create; i++) {
        if (out->create[i] != NULL) {
            swarm__task__free_unpacked(out->create[i], NULL);
        }
    }
    for (size_t i = 0; i < out->n_update; i++) {
        swarm__task__free_unpacked(out->update[i], NULL);
    }
    for (size_t i = 0; i < out->n_remove; i++) {
        free(out->remove[i]);
    }
    if (out->service != NULL) {
        swarm__service__free_unpacked(out->service, NULL);
    }
    free(out->create);
    free(out->update);
    free(out->remove);
    memset(out, 0, sizeof *out);
}
