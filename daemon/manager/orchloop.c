/* The leader's reconciliation loop: it runs the orchestrators and the
 * scheduler (pure decisions, orchestrator.h and scheduler.h) against the
 * store and proposes what they decide, batched in one raft entry per pass.
 *
 *   store event -> mark the service (or everything) dirty -> pass on a short
 *   timer: for each dirty service its VIPs (orchloop_int.h; a changed
 *   endpoint is the service's whole pass) or orch_reconcile -> creates,
 *   stops, deletes; addresses for new and waiting tasks; then, if anything
 *   may need a node, sched_place over pending tasks (new ones included, so
 *   they are created already assigned) -> one StoreCommand
 *   (creates, TASK_PATCH merges, removals) -> raft -> next pass after commit.
 * One pass is in flight at a time, so each pass sees the previous one
 * applied. A failed proposal (lost leadership...) leaves everything dirty.
 * Delayed restarts set a wake-up timer. Only the leader runs passes; a new
 * leader starts with everything dirty, so it finishes any interrupted work
 * from the store alone. Lifecycle and ownership: orchloop.h. */
#include "orchloop.h"
#include "orchloop_int.h"

#include <stdlib.h>
#include <string.h>

#include "allocator.h"
#include "err.h"
#include "id.h"
#include "log.h"
#include "smetrics.h"
#include "orchestrator.h"
#include "scheduler.h"
#include "specvalid.h"
#include "vec.h"

#define ORCHLOOP_DELAY_MS 10
#define ORCHLOOP_MAX_ACTIONS 20000

struct orchloop_id {
    char id[ID_LEN + 1];
};

struct orchloop_resume {
    char service_id[ID_LEN + 1];
    uint64_t service_version; /* the service's meta.version then */
    struct orch_resume at;
};

struct orchloop {
    const struct menv *env;
    bool leader;
    bool closing;
    bool in_flight;
    bool all_dirty;
    bool sched_dirty;
    bool watch_all_running; /* watch_running could not grow */
    char (*dirty)[ID_LEN + 1];
    size_t n_dirty, cap_dirty;
    /* Scale-ups to go on with (orch_resume) instead of reading every task
     * of the service again: valid only while no event touched the service
     * since the pass that left it (any event, or anything marking all
     * dirty, drops it). */
    VEC(struct orchloop_resume) resumes;
    /* Services whose last pass waits for tasks to start running (an update
     * in progress): only for those does a task that starts running trigger
     * a pass. */
    VEC(struct orchloop_id) watch_running;
    /* The scheduler's view after the last pass, or NULL (see schedule()). */
    struct sched *sched;
    uv_timer_t timer;
    uv_timer_t wake;
    /* Close after drain: what is still to come back before the free. */
    unsigned open_handles;
    unsigned n_proposals; /* proposed passes whose callback has not run */
    void (*close_cb)(void *data);
    void *close_data;
};

/* ------------------------------------------------------------- dirtiness */

static void schedule_pass(struct orchloop *o);
static bool sched_view_holds(const Swarm__Task *old, const Swarm__Task *t);

/* Forget the scheduler's kept view: the next pass builds it from the store. */
static void sched_drop(struct orchloop *o)
{
    sched_free(o->sched);
    o->sched = NULL;
}

static struct orchloop_resume *resume_find(struct orchloop *o, const char *service_id)
{
    for (size_t i = 0; i < o->resumes.len; i++) {
        if (strcmp(o->resumes.items[i].service_id, service_id) == 0) {
            return &o->resumes.items[i];
        }
    }
    return NULL;
}

static void resume_drop(struct orchloop *o, const char *service_id)
{
    struct orchloop_resume *r = service_id != NULL ? resume_find(o, service_id) : NULL;
    if (r != NULL) {
        *r = o->resumes.items[--o->resumes.len];
    }
}

/* Keep `at` for the service's next pass (missing 0: forget it). A resume
 * that cannot be kept only costs the next pass a full read. */
static void resume_set(struct orchloop *o, const Swarm__Service *svc, const struct orch_resume *at)
{
    struct orchloop_resume *r = resume_find(o, svc->id), fresh = {{0}, 0, {0, 0}};
    if (at->missing == 0 || svc->meta == NULL) {
        resume_drop(o, svc->id);
        return;
    }
    if (r == NULL) {
        snprintf(fresh.service_id, sizeof fresh.service_id, "%s", svc->id);
        if (vec_push(&o->resumes, fresh) != 0) {
            return;
        }
        r = &o->resumes.items[o->resumes.len - 1];
    }
    r->service_version = svc->meta->version;
    r->at = *at;
}

static bool watching_running(struct orchloop *o, const char *service_id)
{
    for (size_t i = 0; i < o->watch_running.len; i++) {
        if (strcmp(o->watch_running.items[i].id, service_id) == 0) {
            return true;
        }
    }
    return false;
}

static void watch_running_set(struct orchloop *o, const char *service_id, bool watch)
{
    struct orchloop_id one = {{0}};
    for (size_t i = 0; i < o->watch_running.len; i++) {
        if (strcmp(o->watch_running.items[i].id, service_id) == 0) {
            if (!watch) {
                o->watch_running.items[i] = o->watch_running.items[--o->watch_running.len];
            }
            return;
        }
    }
    snprintf(one.id, sizeof one.id, "%s", service_id);
    if (watch && vec_push(&o->watch_running, one) != 0) {
        /* Cannot remember it: then every start counts, as all used to. */
        o->watch_all_running = true;
    }
}

static void mark_service(struct orchloop *o, const char *service_id)
{
    if (service_id == NULL || service_id[0] == '\0' || o->all_dirty) {
        schedule_pass(o);
        return;
    }
    for (size_t i = 0; i < o->n_dirty; i++) {
        if (strcmp(o->dirty[i], service_id) == 0) {
            schedule_pass(o);
            return;
        }
    }
    if (vec_grow(o->dirty, o->cap_dirty, o->n_dirty + 1) != 0) {
        o->all_dirty = true; /* cannot remember which: then all */
        schedule_pass(o);
        return;
    }
    snprintf(o->dirty[o->n_dirty++], ID_LEN + 1, "%s", service_id);
    schedule_pass(o);
}

/* A task the scheduler may place: meant to run, not yet assigned, and
 * attached to its networks if it has any (swarmkit's allocator runs before
 * its scheduler: a task waiting for addresses stays pending). */
static bool needs_node(const Swarm__Task *t)
{
    return t->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING && t->status != NULL &&
           t->status->state <= SWARM__TASK_STATE__TASK_STATE_PENDING && !alloc_task_waits(t);
}

void orchloop_on_event(struct orchloop *o, const struct store_event *ev)
{
    if (o == NULL || !o->leader || o->closing) {
        return;
    }
    switch (ev->kind) {
        case STORE_KIND_SERVICE: {
            const Swarm__Service *s =
                (const Swarm__Service *)(ev->new_obj ? ev->new_obj : ev->old_obj);
            resume_drop(o, s->id);
            sched_drop(o); /* host ports */
            mark_service(o, s->id);
            o->sched_dirty = true;
            break;
        }
        case STORE_KIND_TASK: {
            const Swarm__Task *t = (const Swarm__Task *)(ev->new_obj ? ev->new_obj : ev->old_obj);
            const Swarm__Task *old = (const Swarm__Task *)ev->old_obj;
            if (o->sched != NULL &&
                !sched_view_holds(old, (const Swarm__Task *)ev->new_obj)) {
                sched_drop(o);
            }
            /* Only changes the orchestrator cares about: a task that ended,
             * or appeared/disappeared ... */
            bool ended = t->status != NULL && t->status->state > SWARM__TASK_STATE__TASK_STATE_RUNNING &&
                         (old == NULL || old->status == NULL ||
                          old->status->state <= SWARM__TASK_STATE__TASK_STATE_RUNNING);
            /* ... and one that starts running: a rolling update waits for
             * its new tasks to run (start-first stops the old one then). */
            bool started = t->status != NULL &&
                           t->status->state == SWARM__TASK_STATE__TASK_STATE_RUNNING &&
                           (old == NULL || old->status == NULL ||
                            old->status->state < SWARM__TASK_STATE__TASK_STATE_RUNNING);
            /* A create is a pass's own decision (only passes create tasks),
             * already accounted for by the pass that made it; a task that
             * starts running matters only to an update in progress. So a
             * large scale-up is not read again for each batch of its own
             * tasks, nor for each batch of their running reports. */
            if (ev->new_obj == NULL || ended ||
                (started && old != NULL &&
                 (o->watch_all_running || watching_running(o, t->service_id != NULL ? t->service_id : "")))) {
                resume_drop(o, t->service_id);
                mark_service(o, t->service_id);
            }
            if (ev->new_obj != NULL && needs_node(t) && (t->node_id == NULL || t->node_id[0] == '\0')) {
                o->sched_dirty = true;
                schedule_pass(o);
            } else if (ev->new_obj != NULL && needs_node(t) && old != NULL && alloc_task_waits(old)) {
                /* A global task just attached to its networks: placed on
                 * its node by a full view (the kept one reads only tasks
                 * without a node). */
                sched_drop(o);
                o->sched_dirty = true;
                schedule_pass(o);
            }
            break;
        }
        case STORE_KIND_NODE:
            sched_drop(o);
            /* Readiness, availability, labels, role: any service may care.
             * Node changes are rare (sessions, user updates), so a full pass
             * each time is cheap. */
            o->all_dirty = true;
            o->sched_dirty = true;
            schedule_pass(o);
            break;
        case STORE_KIND_CLUSTER:
            sched_drop(o);
            o->all_dirty = true; /* task history limit */
            schedule_pass(o);
            break;
        case STORE_KIND_NETWORK:
            /* A new or removed network: services waiting for it may go on. */
            o->all_dirty = true;
            o->sched_dirty = true;
            schedule_pass(o);
            break;
    }
}

/* ------------------------------------------------------------------ pass */


/* A task this pass stops or deletes. When it cannot be kept, the
 * scheduler sees the task as it is stored (holding its node: the safe
 * side) and the pass does not keep its view. */
static void pass_leaving(struct pass *p, const char *id)
{
    char *copy = strdup(id);
    if (copy == NULL || vec_grow(p->leaving, p->cap_leaving, p->n_leaving + 1) != 0) {
        free(copy);
        p->leaving_lost = true;
        return;
    }
    p->leaving[p->n_leaving++] = copy;
}

int orchloop_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool orchloop_pass_is_leaving(const struct pass *p, const char *id)
{
    return p->n_leaving > 0 &&
           bsearch(&id, p->leaving, p->n_leaving, sizeof *p->leaving, orchloop_cmp_str) != NULL;
}

Swarm__StoreAction *orchloop_pass_action(struct pass *p, Swarm__StoreActionKind kind)
{
    Swarm__StoreAction *a;
    if (vec_grow(p->cmd.actions, p->cap, p->cmd.n_actions + 1) != 0) {
        return NULL;
    }
    a = calloc(1, sizeof *a);
    if (a == NULL) {
        return NULL;
    }
    swarm__store_action__init(a);
    a->kind = kind;
    p->cmd.actions[p->cmd.n_actions++] = a;
    return a;
}

/* A task action of `kind` carrying `t` (owned by the command from then
 * on). On failure `t` is freed and nothing is added. */
int orchloop_pass_task_action(struct pass *p, Swarm__StoreActionKind kind, Swarm__Task *t)
{
    Swarm__StoreAction *a = orchloop_pass_action(p, kind);
    if (a == NULL) {
        swarm__task__free_unpacked(t, NULL);
        return SWARM_ENOMEM;
    }
    a->target_case = SWARM__STORE_ACTION__TARGET_TASK;
    a->task = t;
    return 0;
}

/* A task carrying only its ID (and what the caller sets). NULL when out of
 * memory. */
static Swarm__Task *task_ref_new(const char *id)
{
    Swarm__Task *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    swarm__task__init(t);
    t->id = strdup(id);
    if (t->id == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

static int new_id_cb(char *out, void *data)
{
    return id_generate(out) == 0 ? 0 : SWARM_EIO;
}

static int64_t history_limit(struct store *store)
{
    Swarm__Cluster *c = NULL;
    int64_t limit = 5;
    if (store_cluster_get_default(store, &c) == 0) {
        if (c->spec && c->spec->orchestration) {
            limit = c->spec->orchestration->task_history_retention_limit;
        }
        swarm__cluster__free_unpacked(c, NULL);
    }
    return limit;
}

/* The full decision for one service, from every task it has. */
static int orch_reconcile_service(const Swarm__Service *svc, const char *service_id,
                                  Swarm__Task **tasks, size_t n_tasks, Swarm__Node **nodes,
                                  size_t n_nodes, int64_t now, int64_t limit, size_t budget,
                                  struct orch_output *out)
{
    struct orch_input in = {0};
    in.service = svc;
    in.service_id = service_id;
    in.tasks = tasks;
    in.n_tasks = n_tasks;
    in.nodes = nodes;
    in.n_nodes = n_nodes;
    in.now_ms = now;
    in.task_history_limit = limit;
    in.max_create = budget; /* the pass's budget */
    if (svc != NULL && svc->spec != NULL &&
        svc->spec->mode_case == SWARM__SERVICE_SPEC__MODE_REPLICATED &&
        svc->spec->replicated != NULL && svc->spec->replicated->replicas > SPEC_MAX_REPLICAS) {
        log_warn("orchestrator", "service %s asks for %llu replicas, over the maximum of %d: "
                 "reconciling to %d", service_id,
                 (unsigned long long)svc->spec->replicated->replicas, SPEC_MAX_REPLICAS,
                 SPEC_MAX_REPLICAS);
    }
    return orch_reconcile(&in, new_id_cb, NULL, out);
}

/* Reconcile one service into the pass. The orch_output's new tasks move
 * into the command (the command frees them). */
static void reconcile_service(struct orchloop *o, struct pass *p, const char *service_id,
                              Swarm__Node **nodes, size_t n_nodes, int64_t now, int64_t limit)
{
    struct store *store = o->env->store;
    Swarm__Service *svc = NULL;
    Swarm__Task **tasks = NULL;
    size_t n_tasks = 0;
    struct orch_output out = {0};
    struct orch_input in = {0};
    struct orchloop_resume *resume = resume_find(o, service_id);
    size_t beyond = 1;
    int rv;

    if (store_service_get(store, service_id, &svc) != 0) {
        svc = NULL;
    }
    if (svc != NULL && orchloop_alloc_service(o->env->store, p, svc)) {
        svc = NULL; /* the pass's update holds it; its tasks come next pass */
        goto done;
    }
    /* A scale-up going on: nothing of the service changed since the last
     * pass (no event dropped the resume), and no task sits in the slots it
     * goes on with (one index lookup): create the next batch without
     * reading the service's tasks. */
    if (resume != NULL && svc != NULL && svc->meta != NULL &&
        svc->meta->version == resume->service_version &&
        store_task_count_from_slot(store, service_id, resume->at.slot, &beyond) == 0 &&
        beyond == 0) {
        struct orch_resume at = resume->at;
        in.service = svc;
        in.service_id = service_id;
        in.now_ms = now;
        in.task_history_limit = limit;
        in.max_create = ORCH_MAX_CREATE - p->n_created;
        rv = orch_resume(&in, &at, new_id_cb, NULL, &out);
    } else {
        resume_drop(o, service_id);
        if (store_task_list_by_service(store, service_id, &tasks, &n_tasks) != 0) {
            goto done;
        }
        rv = orch_reconcile_service(svc, service_id, tasks, n_tasks, nodes, n_nodes, now, limit,
                                    ORCH_MAX_CREATE - p->n_created, &out);
        if (rv == 0) {
            watch_running_set(o, service_id, svc != NULL && out.watch_running);
        }
    }
    if (rv != 0) {
        goto done;
    }
    if (svc != NULL) {
        resume_set(o, svc, &out.resume);
    }
    if (svc != NULL && svc->spec != NULL && svc->spec->task != NULL) {
        p->create_bytes += out.n_create * swarm__task_spec__get_packed_size(svc->spec->task);
    }
    if (out.more) {
        p->more = true;
        mark_service(o, service_id); /* the rest in the next pass */
    }
    bool created_all = out.n_create == 0;
    for (size_t i = 0; i < out.n_create; i++) {
        Swarm__StoreAction *a = orchloop_pass_action(p, SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE);
        if (a == NULL) {
            break;
        }
        a->target_case = SWARM__STORE_ACTION__TARGET_TASK;
        a->task = out.create[i];
        out.create[i] = NULL;
        if (i + 1 == out.n_create) {
            created_all = true;
        }
        /* Not kept here, it is created without a node; a later pass
         * places it. */
        if (vec_grow(p->created, p->cap_created, p->n_created + 1) == 0) {
            p->created[p->n_created++] = a->task;
        }
    }
    if (!created_all) {
        /* Out of memory midway: what was not proposed is decided again from
         * the store, never skipped by a resume. */
        resume_drop(o, service_id);
        mark_service(o, service_id);
    }
    /* Out of memory for a stop or a removal: the rest is decided again
     * from the store next pass (never skipped by a resume). */
    for (size_t i = 0; i < out.n_update; i++) {
        Swarm__Task *t = task_ref_new(out.update[i]->id);
        if (t == NULL) {
            resume_drop(o, service_id);
            mark_service(o, service_id);
            break;
        }
        t->desired_state = out.update[i]->desired_state;
        t->ended_on_its_own = out.update[i]->ended_on_its_own;
        pass_leaving(p, t->id);
        if (orchloop_pass_task_action(p, SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_PATCH, t) != 0) {
            resume_drop(o, service_id);
            mark_service(o, service_id);
            break;
        }
    }
    for (size_t i = 0; i < out.n_remove; i++) {
        Swarm__Task *t = task_ref_new(out.remove[i]);
        if (t == NULL) {
            resume_drop(o, service_id);
            mark_service(o, service_id);
            break;
        }
        pass_leaving(p, t->id);
        if (orchloop_pass_task_action(p, SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE, t) != 0) {
            resume_drop(o, service_id);
            mark_service(o, service_id);
            break;
        }
    }
    if (out.service != NULL) {
        /* An update's progress (or an automatic rollback): compare-and-set on
         * the version read, so a user's concurrent change wins. */
        Swarm__StoreAction *a = orchloop_pass_action(p, SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE);
        if (a != NULL) {
            a->target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
            a->service = out.service;
            out.service = NULL;
        }
    }
    if (out.wake_at_ms != 0 && (p->wake_at == 0 || out.wake_at_ms < p->wake_at)) {
        p->wake_at = out.wake_at_ms;
    }
    orch_output_free(&out);
done:
    if (svc != NULL) {
        swarm__service__free_unpacked(svc, NULL);
    }
    store_task_free_list(tasks, n_tasks);
}

/* NULL when out of memory. */
Swarm__TaskStatus *orchloop_status_new(Swarm__TaskState state, const char *message, const char *err,
                                     int64_t now)
{
    Swarm__TaskStatus *st = calloc(1, sizeof *st);
    if (st == NULL) {
        return NULL;
    }
    swarm__task_status__init(st);
    st->state = state;
    st->timestamp = now;
    st->message = strdup(message);
    st->err = strdup(err ? err : "");
    if (st->message == NULL || st->err == NULL) {
        swarm__task_status__free_unpacked(st, NULL);
        return NULL;
    }
    return st;
}

/* The scheduler's view of every task on a node, from the whole store, with
 * the tasks this pass stops or deletes as stopping. Appends the stored tasks
 * that need a node to `pending` (room for every task). Returns the view, or
 * NULL (out of memory, or the store failed). */
static struct sched *sched_build(struct store *store, struct pass *p, Swarm__Node **nodes,
                                 size_t n_nodes, Swarm__Task ***all, size_t *n_all,
                                 Swarm__Task ***pending, size_t *n_pending)
{
    struct sched *s = sched_new();
    Swarm__Service **svcs = NULL;
    size_t n_svcs = 0;

    if (s == NULL || store_task_list(store, all, n_all) != 0) {
        sched_free(s);
        return NULL;
    }
    sched_set_nodes(s, nodes, n_nodes);
    /* Host-mode published ports: one task per node and port. */
    if (store_service_list(store, &svcs, &n_svcs) == 0) {
        for (size_t i = 0; i < n_svcs; i++) {
            if (svcs[i]->endpoint != NULL && svcs[i]->endpoint->n_ports > 0) {
                /* The ports as published (a host port may be assigned). */
                Swarm__EndpointSpec es = SWARM__ENDPOINT_SPEC__INIT;
                es.ports = svcs[i]->endpoint->ports;
                es.n_ports = svcs[i]->endpoint->n_ports;
                sched_set_service_ports(s, svcs[i]->id, &es);
            } else if (svcs[i]->spec != NULL && svcs[i]->spec->endpoint != NULL) {
                sched_set_service_ports(s, svcs[i]->id, svcs[i]->spec->endpoint);
            }
        }
        store_service_free_list(svcs, n_svcs);
    }
    *pending = calloc(*n_all + p->n_created + 1, sizeof **pending);
    if (*pending == NULL) {
        sched_free(s);
        return NULL;
    }
    if (p->n_leaving > 1) {
        qsort(p->leaving, p->n_leaving, sizeof *p->leaving, orchloop_cmp_str);
    }
    for (size_t i = 0; i < *n_all; i++) {
        Swarm__Task *t = (*all)[i];
        bool unassigned = t->node_id == NULL || t->node_id[0] == '\0';
        if (orchloop_pass_is_leaving(p, t->id)) {
            /* Stopped (or deleted) by this very pass: it holds its node's
             * resources until it is gone, but nothing else. */
            if (!unassigned) {
                Swarm__Task stopping = *t;
                stopping.desired_state = SWARM__TASK_STATE__TASK_STATE_SHUTDOWN;
                sched_add_task(s, &stopping);
            }
            continue;
        }
        if (t->status != NULL && t->status->state == SWARM__TASK_STATE__TASK_STATE_FAILED &&
            !unassigned) {
            sched_note_failure(s, t->service_id, t->node_id, t->status->timestamp);
        }
        if (needs_node(t)) {
            (*pending)[(*n_pending)++] = t;
        } else if (!unassigned) {
            sched_add_task(s, t);
        }
    }
    return s;
}

/* With the view kept from the last pass: only the stored tasks without a
 * node are read (those that need one are pending). */
static int sched_pending_unassigned(struct store *store, struct pass *p, Swarm__Task ***all,
                                    size_t *n_all, Swarm__Task ***pending, size_t *n_pending)
{
    if (store_task_list_by_node(store, "", all, n_all) != 0) {
        return SWARM_EIO;
    }
    *pending = calloc(*n_all + p->n_created + 1, sizeof **pending);
    if (*pending == NULL) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < *n_all; i++) {
        if (needs_node((*all)[i])) {
            (*pending)[(*n_pending)++] = (*all)[i];
        }
    }
    return 0;
}

/* Place pending tasks: those in the store and those this pass creates.
 *
 * The scheduler's view of the nodes (what runs where, what is reserved)
 * is built from every task in the store, then kept for the next pass:
 * sched_place counts each placement it makes, so once the pass is applied
 * the view matches the store again. It is dropped when anything else
 * changes what runs where (orchloop_on_event: a task ends, leaves a node or
 * is stopped; a node, service or cluster change), when a pass fails, and
 * when this pass stops or deletes tasks; a large scale-up then places each
 * batch without reading the tasks it placed before. */
static void schedule(struct orchloop *o, struct pass *p, Swarm__Node **nodes, size_t n_nodes,
                     int64_t now)
{
    struct store *store = o->env->store;
    struct sched *s = NULL;
    Swarm__Task **all = NULL, **pending = NULL;
    struct sched_decision *out = NULL;
    size_t n_all = 0, n_pending = 0, n_stored;

    if (o->sched != NULL && p->n_leaving == 0 && !p->leaving_lost) {
        s = o->sched;
        o->sched = NULL;
        if (sched_pending_unassigned(store, p, &all, &n_all, &pending, &n_pending) != 0) {
            goto done;
        }
    } else {
        sched_free(o->sched);
        o->sched = NULL;
        s = sched_build(store, p, nodes, n_nodes, &all, &n_all, &pending, &n_pending);
        if (s == NULL) {
            goto done;
        }
    }
    n_stored = n_pending;
    for (size_t i = 0; i < p->n_created; i++) {
        pending[n_pending++] = p->created[i];
    }
    out = calloc(n_pending + 1, sizeof *out);
    if (out == NULL || sched_place(s, pending, n_pending, now, out) != 0) {
        goto done;
    }
    for (size_t i = 0; i < n_pending; i++) {
        Swarm__Task *t = pending[i];
        Swarm__TaskStatus *st;
        if (out[i].node_id == NULL) {
            /* Say why, once: the same reason again is no news. */
            if (t->status != NULL && t->status->err != NULL &&
                strcmp(t->status->err, out[i].reason) == 0) {
                continue;
            }
            st = orchloop_status_new(SWARM__TASK_STATE__TASK_STATE_PENDING, "pending task scheduling",
                            out[i].reason, now);
        } else {
            st = orchloop_status_new(SWARM__TASK_STATE__TASK_STATE_ASSIGNED,
                            "scheduler assigned task to node", NULL, now);
        }
        if (st == NULL) {
            goto done; /* placements not proposed: the view is wrong now */
        }
        if (i >= n_stored) {
            /* A task of this pass: assign it in its create. */
            if (out[i].node_id != NULL && (t->node_id == NULL || t->node_id[0] == '\0')) {
                char *node_id = strdup(out[i].node_id);
                if (node_id == NULL) {
                    swarm__task_status__free_unpacked(st, NULL);
                    goto done; /* created unplaced; the view is wrong now */
                }
                if (t->node_id != NULL && t->node_id != protobuf_c_empty_string) {
                    free(t->node_id);
                }
                t->node_id = node_id;
            }
            swarm__task_status__free_unpacked(t->status, NULL);
            t->status = st;
            continue;
        }
        Swarm__Task *patch = task_ref_new(t->id);
        if (patch != NULL && out[i].node_id != NULL &&
            (patch->node_id = strdup(out[i].node_id)) == NULL) {
            swarm__task__free_unpacked(patch, NULL);
            patch = NULL;
        }
        if (patch == NULL) {
            swarm__task_status__free_unpacked(st, NULL);
            goto done; /* placements not proposed: the view is wrong now */
        }
        patch->status = st;
        if (orchloop_pass_task_action(p, SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_PATCH, patch) != 0) {
            goto done;
        }
    }
    /* Every placement is in the pass: the view holds once it is applied
     * (not when a stopped task could not be counted as leaving). */
    if (!p->leaving_lost) {
        o->sched = s;
        s = NULL;
    }
done:
    free(out);
    free(pending);
    store_task_free_list(all, n_all);
    sched_free(s);
}

/* Does the kept scheduler view still hold after this task change? Yes for
 * what passes themselves do and already counted (creates, a placement of a
 * task without a node) and for progress that changes nothing of what a node
 * holds (a task going from assigned to running); no for anything that
 * frees or moves what a node holds or counts for spread. */
static bool sched_view_holds(const Swarm__Task *old, const Swarm__Task *t)
{
    const int running = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    bool old_node, new_node, old_live, new_live;
    if (old == NULL) {
        return true;
    }
    old_node = old->node_id != NULL && old->node_id[0] != '\0';
    old_live = old->status == NULL || (int)old->status->state <= running;
    if (t == NULL) {
        return !old_node || !old_live; /* it held nothing */
    }
    new_node = t->node_id != NULL && t->node_id[0] != '\0';
    new_live = t->status == NULL || (int)t->status->state <= running;
    if (old_node && (!new_node || strcmp(old->node_id, t->node_id) != 0)) {
        return false; /* moved off its node */
    }
    if (!old_node) {
        return true; /* placed: counted by the pass that placed it */
    }
    if (old_live != new_live) {
        return false; /* ended: its node's resources are free */
    }
    return ((int)old->desired_state <= running) == ((int)t->desired_state <= running);
}

static void orchloop_maybe_free(struct orchloop *o);

static void pass_done_cb(int status, const struct store_result *res, void *data)
{
    struct orchloop *o = data;
    o->n_proposals--;
    o->in_flight = false;
    if (o->closing) {
        orchloop_maybe_free(o);
        return;
    }
    if (status != 0 || res->status != 0) {
        log_warn("orchestrator", "pass not applied: %s",
                 status != 0 ? swarm_strerror(status) : res->message);
        o->all_dirty = true;
        o->sched_dirty = true;
        sched_drop(o); /* it counted placements that did not happen */
    }
    if (o->all_dirty || o->n_dirty > 0 || o->sched_dirty) {
        schedule_pass(o);
    }
}

static void wake_cb(uv_timer_t *t)
{
    struct orchloop *o = t->data;
    if (o->closing || !o->leader) {
        return;
    }
    o->all_dirty = true;
    schedule_pass(o);
}

static void pass_cb(uv_timer_t *t)
{
    struct orchloop *o = t->data;
    struct store *store = o->env->store;
    struct pass p = {.cmd = SWARM__STORE_COMMAND__INIT};
    Swarm__Node **nodes = NULL;
    Swarm__Service **svcs = NULL;
    size_t n_nodes = 0, n_svcs = 0;
    int64_t now = menv_now(o->env), limit;
    bool all = o->all_dirty, sched = o->sched_dirty;
    int rv;

    if (o->closing || !o->leader || o->in_flight || !menv_is_leader(o->env)) {
        return;
    }
    uint64_t started_ns = smetrics_now_ns();
    if (store_node_list(store, &nodes, &n_nodes) != 0) {
        return;
    }
    limit = history_limit(store);
    o->all_dirty = false;
    o->sched_dirty = false;
    if (all) {
        /* Every service, and tasks whose service is gone. */
        Swarm__Task **tasks = NULL;
        size_t nt = 0;
        o->n_dirty = 0;
        /* Whatever made everything dirty (a node, the cluster, a failed
         * pass, a wake-up, a new term) may touch any service. */
        vec_clear(&o->resumes);
        if (store_service_list(store, &svcs, &n_svcs) == 0) {
            for (size_t i = 0; i < n_svcs; i++) {
                mark_service(o, svcs[i]->id);
            }
        }
        if (store_task_list(store, &tasks, &nt) == 0) {
            for (size_t i = 0; i < nt; i++) {
                mark_service(o, tasks[i]->service_id);
            }
            store_task_free_list(tasks, nt);
        }
    }
    /* Bounded work per pass: at most ORCH_MAX_CREATE new tasks (and about
     * ORCH_MAX_CREATE_BYTES of task specs) and ORCHLOOP_MAX_ACTIONS actions;
     * the rest stays dirty for the next pass, which starts once this one is
     * committed, so heartbeats and API calls are served in between. */
    while (o->n_dirty > 0 && p.cmd.n_actions < ORCHLOOP_MAX_ACTIONS && !p.more &&
           p.n_created < ORCH_MAX_CREATE && p.create_bytes < ORCH_MAX_CREATE_BYTES) {
        char id[ID_LEN + 1];
        snprintf(id, sizeof id, "%s", o->dirty[--o->n_dirty]);
        reconcile_service(o, &p, id, nodes, n_nodes, now, limit);
    }
    /* Addresses before placement: waiting tasks first (they are older),
     * then this pass's new ones. */
    orchloop_alloc_waiting(store, &p, now);
    if (p.n_created > 0) {
        orchloop_alloc_created(store, &p, now);
    }
    if (all || p.alloc_built) {
        orchloop_alloc_nodes(store, &p, nodes, n_nodes, all ? svcs : NULL, n_svcs);
    }
    if (sched || p.n_created > 0) {
        uint64_t sched_ns = smetrics_now_ns();
        schedule(o, &p, nodes, n_nodes, now);
        smetrics_pass_done(SMETRICS_PASS_SCHEDULER, sched_ns);
    }
    if (p.wake_at != 0) {
        uint64_t delay = p.wake_at > now ? (uint64_t)(p.wake_at - now) : 0;
        uv_timer_start(&o->wake, wake_cb, delay + 1, 0);
    }
    if (p.cmd.n_actions > 0) {
        o->in_flight = true;
        o->n_proposals++;
        rv = menv_propose(o->env, &p.cmd, pass_done_cb, o);
        if (rv != 0) {
            o->n_proposals--;
            o->in_flight = false;
            o->all_dirty = true;
            o->sched_dirty = true;
            sched_drop(o);
        }
    }
    if (o->n_dirty > 0 && !o->in_flight) {
        schedule_pass(o);
    }
    for (size_t i = 0; i < p.cmd.n_actions; i++) {
        swarm__store_action__free_unpacked(p.cmd.actions[i], NULL);
    }
    free(p.cmd.actions);
    free(p.created);
    for (size_t i = 0; i < p.n_leaving; i++) {
        free(p.leaving[i]);
    }
    free(p.leaving);
    orchloop_alloc_free(&p);
    store_service_free_list(svcs, n_svcs);
    store_node_free_list(nodes, n_nodes);
    smetrics_pass_done(SMETRICS_PASS_ORCHESTRATOR, started_ns);
}

static void schedule_pass(struct orchloop *o)
{
    if (o->closing || !o->leader || o->in_flight) {
        return;
    }
    if (!uv_is_active((uv_handle_t *)&o->timer)) {
        uv_timer_start(&o->timer, pass_cb, ORCHLOOP_DELAY_MS, 0);
    }
}

/* ------------------------------------------------------------ lifecycle */

struct orchloop *orchloop_new(const struct menv *env)
{
    struct orchloop *o = calloc(1, sizeof *o);
    if (o == NULL) {
        return NULL;
    }
    o->env = env;
    uv_timer_init(env->loop, &o->timer);
    o->timer.data = o;
    uv_timer_init(env->loop, &o->wake);
    o->wake.data = o;
    return o;
}

void orchloop_set_leader(struct orchloop *o, bool leader)
{
    if (o == NULL || o->closing || o->leader == leader) {
        return;
    }
    o->leader = leader;
    if (leader) {
        o->all_dirty = true;
        o->sched_dirty = true;
        schedule_pass(o);
    } else {
        uv_timer_stop(&o->timer);
        uv_timer_stop(&o->wake);
        o->n_dirty = 0;
        vec_clear(&o->resumes);
        vec_clear(&o->watch_running);
        o->watch_all_running = false;
        sched_drop(o);
    }
}

/* Free once nothing this loop started can come back to it. */
static void orchloop_maybe_free(struct orchloop *o)
{
    void (*cb)(void *) = o->close_cb;
    void *data = o->close_data;
    if (o->open_handles > 0 || o->n_proposals > 0) {
        return;
    }
    free(o->dirty);
    vec_free(&o->resumes);
    vec_free(&o->watch_running);
    sched_free(o->sched);
    free(o);
    if (cb != NULL) {
        cb(data);
    }
}

static void orchloop_closed_cb(uv_handle_t *h)
{
    struct orchloop *o = h->data;
    o->open_handles--;
    orchloop_maybe_free(o);
}

void orchloop_close(struct orchloop *o, void (*cb)(void *data), void *data)
{
    if (o == NULL) {
        if (cb != NULL) {
            cb(data);
        }
        return;
    }
    o->closing = true;
    o->leader = false;
    o->close_cb = cb;
    o->close_data = data;
    o->open_handles = 2;
    uv_close((uv_handle_t *)&o->timer, orchloop_closed_cb);
    uv_close((uv_handle_t *)&o->wake, orchloop_closed_cb);
}
