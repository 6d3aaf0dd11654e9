/* Unit tests of the orchestrators' decisions (daemon/manager/orchestrator.h):
 * plain services, tasks and nodes in, creates/stops/deletes out. A small
 * "world" applies each output the way the leader's store would, so tests can
 * walk a service through several passes and check that a pass over applied
 * output changes nothing. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "orch_int.h"
#include "orchestrator.h"
#include "specvalid.h"
#include "test.h"

#define ST(x) SWARM__TASK_STATE__TASK_STATE_##x
#define MAX_TASKS (2 * ORCH_MAX_CREATE + 600)
#define MAX_NODES 16

struct world {
    Swarm__Service *svc;
    Swarm__Task *tasks[MAX_TASKS];
    size_t n_tasks;
    Swarm__Node *nodes[MAX_NODES];
    size_t n_nodes;
    int64_t now;
    int64_t limit;
    int next_id;
    uint64_t next_version;
    struct orch_output out;
};

/* ------------------------------------------------------------- builders */

static int test_new_id(char *out, void *data)
{
    struct world *w = data;
    snprintf(out, 26, "t%024d", ++w->next_id);
    return 0;
}

static Swarm__Service *service_new(const char *name, uint64_t replicas, bool global)
{
    Swarm__Service *s = calloc(1, sizeof *s);
    Swarm__ServiceSpec *spec = calloc(1, sizeof *spec);
    Swarm__Annotations *ann = calloc(1, sizeof *ann);
    Swarm__TaskSpec *ts = calloc(1, sizeof *ts);
    Swarm__ContainerSpec *c = calloc(1, sizeof *c);
    Swarm__RestartPolicy *rp = calloc(1, sizeof *rp);
    swarm__service__init(s);
    swarm__service_spec__init(spec);
    swarm__annotations__init(ann);
    swarm__task_spec__init(ts);
    swarm__container_spec__init(c);
    swarm__restart_policy__init(rp);
    s->id = strdup("svc1");
    s->spec = spec;
    s->spec_version = 1;
    spec->annotations = ann;
    ann->name = strdup(name);
    spec->task = ts;
    ts->container = c;
    c->image = strdup("/bin/sleep");
    ts->restart = rp;
    rp->condition = SWARM__RESTART_CONDITION__RESTART_CONDITION_ANY;
    rp->delay_ms = 5000;
    if (global) {
        Swarm__GlobalService *g = calloc(1, sizeof *g);
        swarm__global_service__init(g);
        spec->mode_case = SWARM__SERVICE_SPEC__MODE_GLOBAL;
        spec->global = g;
    } else {
        Swarm__ReplicatedService *r = calloc(1, sizeof *r);
        swarm__replicated_service__init(r);
        r->replicas = replicas;
        spec->mode_case = SWARM__SERVICE_SPEC__MODE_REPLICATED;
        spec->replicated = r;
    }
    return s;
}

static void service_constrain(Swarm__Service *s, const char *expr)
{
    Swarm__Placement *p = calloc(1, sizeof *p);
    swarm__placement__init(p);
    p->n_constraints = 1;
    p->constraints = calloc(1, sizeof *p->constraints);
    p->constraints[0] = strdup(expr);
    s->spec->task->placement = p;
}

static Swarm__Node *node_new(const char *id, Swarm__NodeState state,
                             Swarm__NodeAvailability avail)
{
    Swarm__Node *n = calloc(1, sizeof *n);
    Swarm__NodeSpec *spec = calloc(1, sizeof *spec);
    Swarm__NodeStatus *st = calloc(1, sizeof *st);
    Swarm__Annotations *ann = calloc(1, sizeof *ann);
    swarm__node__init(n);
    swarm__node_spec__init(spec);
    swarm__node_status__init(st);
    swarm__annotations__init(ann);
    n->id = strdup(id);
    n->spec = spec;
    spec->availability = avail;
    spec->annotations = ann;
    n->status = st;
    st->state = state;
    return n;
}

static void node_label(Swarm__Node *n, const char *key, const char *value)
{
    Swarm__Annotations *a = n->spec->annotations;
    Swarm__Label *l = calloc(1, sizeof *l);
    swarm__label__init(l);
    l->key = strdup(key);
    l->value = strdup(value);
    a->labels = realloc(a->labels, (a->n_labels + 1) * sizeof *a->labels);
    a->labels[a->n_labels++] = l;
}

static void world_init(struct world *w, Swarm__Service *svc)
{
    memset(w, 0, sizeof *w);
    w->svc = svc;
    w->now = 100000;
    w->limit = 5;
    w->next_version = 1;
}

static Swarm__Node *world_node(struct world *w, const char *id)
{
    Swarm__Node *n = node_new(id, SWARM__NODE_STATE__NODE_STATE_READY,
                              SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE);
    w->nodes[w->n_nodes++] = n;
    return n;
}

/* A task as the store would hold it. */
static Swarm__Task *world_task(struct world *w, uint64_t slot, const char *node_id,
                               Swarm__TaskState state, Swarm__TaskState desired, int64_t created)
{
    Swarm__Task *t = calloc(1, sizeof *t);
    Swarm__Meta *m = calloc(1, sizeof *m);
    Swarm__TaskStatus *st = calloc(1, sizeof *st);
    char id[32];
    swarm__task__init(t);
    swarm__meta__init(m);
    swarm__task_status__init(st);
    snprintf(id, sizeof id, "old%022d", ++w->next_id);
    t->id = strdup(id);
    t->meta = m;
    m->version = w->next_version++;
    m->created_at = created;
    t->service_id = strdup("svc1");
    t->slot = slot;
    t->node_id = strdup(node_id);
    t->desired_state = desired;
    t->status = st;
    st->state = state;
    st->timestamp = created + 10;
    t->spec_version = w->svc != NULL ? w->svc->spec_version : 1;
    w->tasks[w->n_tasks++] = t;
    return t;
}

static Swarm__Task *world_find(struct world *w, const char *id)
{
    for (size_t i = 0; i < w->n_tasks; i++) {
        if (strcmp(w->tasks[i]->id, id) == 0) {
            return w->tasks[i];
        }
    }
    return NULL;
}

static Swarm__Node *world_find_node(struct world *w, const char *id)
{
    for (size_t i = 0; i < w->n_nodes; i++) {
        if (strcmp(w->nodes[i]->id, id) == 0) {
            return w->nodes[i];
        }
    }
    return NULL;
}

static int world_reconcile(struct world *w)
{
    struct orch_input in = {
        .service = w->svc,
        .service_id = "svc1",
        .tasks = w->tasks,
        .n_tasks = w->n_tasks,
        .nodes = w->nodes,
        .n_nodes = w->n_nodes,
        .now_ms = w->now,
        .task_history_limit = w->limit,
    };
    orch_output_free(&w->out);
    return orch_reconcile(&in, test_new_id, w, &w->out);
}

/* Write the last output into the world, as the leader would. */
static void world_apply(struct world *w)
{
    struct orch_output *out = &w->out;
    for (size_t i = 0; i < out->n_create; i++) {
        out->create[i]->meta->version = w->next_version++;
        w->tasks[w->n_tasks++] = out->create[i];
        out->create[i] = NULL;
    }
    for (size_t i = 0; i < out->n_update; i++) {
        Swarm__Task *t = world_find(w, out->update[i]->id);
        t->desired_state = out->update[i]->desired_state;
        t->ended_on_its_own = out->update[i]->ended_on_its_own;
        t->meta->version = w->next_version++;
    }
    for (size_t i = 0; i < out->n_remove; i++) {
        for (size_t j = 0; j < w->n_tasks; j++) {
            if (strcmp(w->tasks[j]->id, out->remove[i]) == 0) {
                swarm__task__free_unpacked(w->tasks[j], NULL);
                memmove(&w->tasks[j], &w->tasks[j + 1], (w->n_tasks - j - 1) * sizeof *w->tasks);
                w->n_tasks--;
                break;
            }
        }
    }
    orch_output_free(out);
}

/* Pretend the scheduler and agents ran every pending task on `node`. */
static void world_run_pending(struct world *w, const char *node)
{
    for (size_t i = 0; i < w->n_tasks; i++) {
        Swarm__Task *t = w->tasks[i];
        if (t->status->state == ST(PENDING) && t->desired_state == ST(RUNNING)) {
            if (t->node_id[0] == '\0') {
                /* Unpacked empty strings are protobuf-c's shared default. */
                if (t->node_id != protobuf_c_empty_string) {
                    free(t->node_id);
                }
                t->node_id = strdup(node);
            }
            t->status->state = ST(RUNNING);
            t->status->timestamp = w->now;
        }
    }
}

static void world_free(struct world *w)
{
    orch_output_free(&w->out);
    for (size_t i = 0; i < w->n_tasks; i++) {
        swarm__task__free_unpacked(w->tasks[i], NULL);
    }
    for (size_t i = 0; i < w->n_nodes; i++) {
        swarm__node__free_unpacked(w->nodes[i], NULL);
    }
    if (w->svc != NULL) {
        swarm__service__free_unpacked(w->svc, NULL);
    }
}

static bool out_updates(const struct world *w, const Swarm__Task *t)
{
    for (size_t i = 0; i < w->out.n_update; i++) {
        if (strcmp(w->out.update[i]->id, t->id) == 0) {
            return w->out.update[i]->desired_state == ST(SHUTDOWN);
        }
    }
    return false;
}

/* `t` ended on its own and this pass retires it: desired shutdown, marked. */
static bool out_retires(const struct world *w, const Swarm__Task *t)
{
    for (size_t i = 0; i < w->out.n_update; i++) {
        if (strcmp(w->out.update[i]->id, t->id) == 0) {
            return w->out.update[i]->desired_state == ST(SHUTDOWN) &&
                   w->out.update[i]->ended_on_its_own;
        }
    }
    return false;
}

static bool out_removes(const struct world *w, const Swarm__Task *t)
{
    for (size_t i = 0; i < w->out.n_remove; i++) {
        if (strcmp(w->out.remove[i], t->id) == 0) {
            return true;
        }
    }
    return false;
}

static bool out_creates_slot(const struct world *w, uint64_t slot)
{
    for (size_t i = 0; i < w->out.n_create; i++) {
        if (w->out.create[i]->slot == slot) {
            return true;
        }
    }
    return false;
}

static bool out_creates_node(const struct world *w, const char *node)
{
    for (size_t i = 0; i < w->out.n_create; i++) {
        if (strcmp(w->out.create[i]->node_id, node) == 0) {
            return true;
        }
    }
    return false;
}

static bool out_empty(const struct world *w)
{
    return w->out.n_create == 0 && w->out.n_update == 0 && w->out.n_remove == 0;
}

/* Tasks meant to run, per slot: never more than one. */
static bool world_one_per_slot(const struct world *w)
{
    for (size_t i = 0; i < w->n_tasks; i++) {
        for (size_t j = i + 1; j < w->n_tasks; j++) {
            const Swarm__Task *a = w->tasks[i], *b = w->tasks[j];
            bool live_a = a->desired_state <= ST(RUNNING) && a->status->state <= ST(RUNNING);
            bool live_b = b->desired_state <= ST(RUNNING) && b->status->state <= ST(RUNNING);
            if (live_a && live_b && a->slot == b->slot &&
                (a->slot != 0 || strcmp(a->node_id, b->node_id) == 0)) {
                return false;
            }
        }
    }
    return true;
}

/* Five running replicas: n1 holds slots 1-3, n2 slots 4-5. */
static void world_five_on_two(struct world *w)
{
    world_init(w, service_new("web", 5, false));
    world_node(w, "n1");
    world_node(w, "n2");
    for (uint64_t s = 1; s <= 5; s++) {
        world_task(w, s, s <= 3 ? "n1" : "n2", ST(RUNNING), ST(RUNNING), 1000);
    }
}

/* One replica whose task failed at 1010 (created 1000), restart any/5 s. */
static Swarm__Task *world_one_failed(struct world *w, Swarm__TaskState state)
{
    Swarm__Task *t;
    world_init(w, service_new("web", 1, false));
    world_node(w, "n1");
    t = world_task(w, 1, "n1", state, ST(RUNNING), 1000);
    t->status->exit_code = state == ST(COMPLETE) ? 0 : 1;
    return t;
}

/* ------------------------------------------------------------ replicated */

TEST(create_three_replicas)
{
    struct world w;
    world_init(&w, service_new("web", 3, false));
    world_node(&w, "n1");
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 3);
    ASSERT_INT_EQ(w.out.n_update, 0);
    ASSERT_INT_EQ(w.out.n_remove, 0);
    ASSERT_INT_EQ(w.out.wake_at_ms, 0);
    for (size_t i = 0; i < 3; i++) {
        const Swarm__Task *t = w.out.create[i];
        char name[32];
        snprintf(name, sizeof name, "web.%zu", i + 1);
        ASSERT_INT_EQ(t->slot, i + 1);
        ASSERT_STR_EQ(t->annotations->name, name);
        ASSERT_INT_EQ(strlen(t->id), 25);
        ASSERT_STR_EQ(t->service_id, "svc1");
        ASSERT_STR_EQ(t->service_name, "web");
        ASSERT_STR_EQ(t->node_id, "");
        ASSERT_INT_EQ(t->desired_state, ST(RUNNING));
        ASSERT_INT_EQ(t->status->state, ST(PENDING));
        ASSERT_INT_EQ(t->status->timestamp, w.now);
        ASSERT_STR_EQ(t->status->message, "pending task scheduling");
        ASSERT_INT_EQ(t->spec_version, 1);
        ASSERT(t->spec != w.svc->spec->task);
        ASSERT_STR_EQ(t->spec->container->image, "/bin/sleep");
    }
    world_free(&w);
}

TEST(idempotent_after_apply)
{
    struct world w;
    world_init(&w, service_new("web", 3, false));
    world_node(&w, "n1");
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    ASSERT_INT_EQ(w.out.wake_at_ms, 0);
    world_run_pending(&w, "n1");
    w.now += 60000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

TEST(scale_up_fills_next_slots)
{
    struct world w;
    world_init(&w, service_new("web", 3, false));
    world_node(&w, "n1");
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    world_apply(&w);
    world_run_pending(&w, "n1");
    w.svc->spec->replicated->replicas = 5;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 2);
    ASSERT_INT_EQ(w.out.n_update, 0);
    ASSERT_INT_EQ(w.out.create[0]->slot, 4);
    ASSERT_INT_EQ(w.out.create[1]->slot, 5);
    ASSERT_STR_EQ(w.out.create[1]->annotations->name, "web.5");
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

TEST(scale_down_takes_from_node_with_most_copies)
{
    struct world w;
    world_five_on_two(&w);
    /* 5 -> 4: n1 holds three, so one of its goes, the highest slot. */
    w.svc->spec->replicated->replicas = 4;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 0);
    ASSERT_INT_EQ(w.out.n_remove, 0);
    ASSERT_INT_EQ(w.out.n_update, 1);
    ASSERT(out_updates(&w, w.tasks[2])); /* slot 3 on n1 */
    /* 5 -> 2: balanced down to one per node. */
    w.svc->spec->replicated->replicas = 2;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 3);
    ASSERT(out_updates(&w, w.tasks[1]));
    ASSERT(out_updates(&w, w.tasks[2]));
    ASSERT(out_updates(&w, w.tasks[4]));
    world_apply(&w);
    ASSERT_INT_EQ(w.tasks[0]->desired_state, ST(RUNNING)); /* n1 keeps slot 1 */
    ASSERT_INT_EQ(w.tasks[3]->desired_state, ST(RUNNING)); /* n2 keeps slot 4 */
    /* The stopped ones end; nothing more to do, no slot refilled. */
    for (size_t i = 0; i < w.n_tasks; i++) {
        if (w.tasks[i]->desired_state == ST(SHUTDOWN)) {
            w.tasks[i]->status->state = ST(SHUTDOWN);
        }
    }
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

TEST(scale_down_takes_not_running_first)
{
    struct world w;
    Swarm__Task *pending, *assigned;
    world_five_on_two(&w);
    /* n2's slot 4 is only assigned, slot 6 was never scheduled. */
    assigned = w.tasks[3];
    assigned->status->state = ST(ASSIGNED);
    pending = world_task(&w, 6, "", ST(PENDING), ST(RUNNING), 2000);
    w.svc->spec->replicated->replicas = 4;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 0);
    /* Never scheduled: deleted outright rather than stopped. */
    ASSERT_INT_EQ(w.out.n_remove, 1);
    ASSERT(out_removes(&w, pending));
    ASSERT_INT_EQ(w.out.n_update, 1);
    ASSERT(out_updates(&w, assigned)); /* before n1's running ones */
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

TEST(restart_any_after_delay)
{
    struct world w;
    Swarm__Task *failed = world_one_failed(&w, ST(FAILED));
    /* Ended at 1010, delay 5 s: not yet at 3000. */
    w.now = 3000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    /* Retired at once (desired shutdown, as swarmkit's restart supervisor
     * sets it), its successor comes after the delay. */
    ASSERT_INT_EQ(w.out.n_update, 1);
    ASSERT(out_retires(&w, failed));
    ASSERT_INT_EQ(w.out.n_create, 0);
    ASSERT_INT_EQ(w.out.wake_at_ms, 6010);
    world_apply(&w);
    ASSERT_INT_EQ(failed->desired_state, ST(SHUTDOWN));
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    ASSERT_INT_EQ(w.out.wake_at_ms, 6010);
    w.now = 6010;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 1);
    ASSERT_INT_EQ(w.out.create[0]->slot, 1);
    ASSERT_STR_EQ(w.out.create[0]->annotations->name, "web.1");
    /* The failed one stays as history. */
    ASSERT_INT_EQ(w.out.n_update, 0);
    ASSERT_INT_EQ(w.out.n_remove, 0);
    ASSERT_INT_EQ(w.out.wake_at_ms, 0);
    world_apply(&w);
    ASSERT_INT_EQ(failed->desired_state, ST(SHUTDOWN));
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    ASSERT(world_one_per_slot(&w));
    world_free(&w);
}

TEST(restart_on_failure_only_after_failure)
{
    struct world w;
    Swarm__Task *done = world_one_failed(&w, ST(COMPLETE));
    w.svc->spec->task->restart->condition = SWARM__RESTART_CONDITION__RESTART_CONDITION_ON_FAILURE;
    w.now = 60000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 0);
    ASSERT_INT_EQ(w.out.n_update, 1);
    ASSERT(out_retires(&w, done));
    ASSERT_INT_EQ(w.out.wake_at_ms, 0);
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);

    world_one_failed(&w, ST(FAILED));
    w.svc->spec->task->restart->condition = SWARM__RESTART_CONDITION__RESTART_CONDITION_ON_FAILURE;
    w.now = 60000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 1);
    ASSERT_INT_EQ(w.out.create[0]->slot, 1);
    world_free(&w);
}

TEST(restart_none_never)
{
    struct world w;
    Swarm__Task *failed = world_one_failed(&w, ST(FAILED));
    w.svc->spec->task->restart->condition = SWARM__RESTART_CONDITION__RESTART_CONDITION_NONE;
    w.now = 60000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 0);
    ASSERT(out_retires(&w, failed));
    ASSERT_INT_EQ(w.out.wake_at_ms, 0);
    world_apply(&w);
    /* The slot stays taken by its ended task: not refilled, ever. */
    w.now = 600000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

/* Fail the slot's live task now. */
static void world_fail_live(struct world *w)
{
    for (size_t i = 0; i < w->n_tasks; i++) {
        Swarm__Task *t = w->tasks[i];
        if (t->desired_state == ST(RUNNING) && t->status->state <= ST(RUNNING)) {
            t->status->state = ST(FAILED);
            t->status->timestamp = w->now;
        }
    }
}

TEST(restart_max_attempts_within_window)
{
    struct world w;
    world_one_failed(&w, ST(FAILED));
    w.svc->spec->task->restart->max_attempts = 2;
    w.svc->spec->task->restart->window_ms = 600000;
    w.svc->spec->task->restart->delay_ms = 0;
    w.now = 2000;
    for (int attempt = 1; attempt <= 2; attempt++) {
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        ASSERT_INT_EQ(w.out.n_create, 1);
        world_apply(&w);
        w.now += 1000;
        world_run_pending(&w, "n1");
        w.now += 1000;
        world_fail_live(&w);
    }
    /* Third failure: two restarts already within the window. The task is
     * retired all the same. */
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 0);
    ASSERT_INT_EQ(w.out.n_update, 1);
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    /* Once the first attempt (created at 2000) leaves the window, one more. */
    ASSERT_INT_EQ(w.out.wake_at_ms, 2000 + 600000);
    w.now = 2000 + 600000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 1);
    world_free(&w);
}

/* History pruning must not erase the attempts the limit counts. */
TEST(restart_max_attempts_survive_history_limit)
{
    struct world w;
    world_one_failed(&w, ST(FAILED));
    w.limit = 1;
    w.svc->spec->task->restart->max_attempts = 2;
    w.svc->spec->task->restart->delay_ms = 0;
    w.now = 2000;
    for (int attempt = 1; attempt <= 2; attempt++) {
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        ASSERT_INT_EQ(w.out.n_create, 1);
        ASSERT_INT_EQ(w.out.n_remove, 0);
        world_apply(&w);
        w.now += 1000;
        world_run_pending(&w, "n1");
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        ASSERT(out_empty(&w));
        w.now += 1000;
        world_fail_live(&w);
    }
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 0);
    ASSERT_INT_EQ(w.out.n_remove, 0);
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    ASSERT_INT_EQ(w.out.wake_at_ms, 0); /* no window: never again */
    world_free(&w);
}

TEST(node_down_replaces_at_once)
{
    struct world w;
    Swarm__Task *on_n2;
    world_five_on_two(&w);
    on_n2 = w.tasks[3];
    world_find_node(&w, "n2")->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 2);
    ASSERT(out_updates(&w, on_n2));
    ASSERT(out_updates(&w, w.tasks[4]));
    ASSERT_INT_EQ(w.out.n_create, 2);
    ASSERT(out_creates_slot(&w, 4));
    ASSERT(out_creates_slot(&w, 5));
    ASSERT_INT_EQ(w.out.n_remove, 0);
    ASSERT_INT_EQ(w.out.wake_at_ms, 0);
    world_apply(&w);
    ASSERT_INT_EQ(on_n2->desired_state, ST(SHUTDOWN));
    ASSERT(world_one_per_slot(&w));
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

TEST(node_drained_or_removed_replaces_at_once)
{
    struct world w;
    world_five_on_two(&w);
    world_find_node(&w, "n1")->spec->availability =
        SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 3);
    ASSERT_INT_EQ(w.out.n_create, 3);
    for (uint64_t s = 1; s <= 3; s++) {
        ASSERT(out_updates(&w, w.tasks[s - 1]));
        ASSERT(out_creates_slot(&w, s));
    }
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);

    /* A node removed from the cluster. */
    world_five_on_two(&w);
    swarm__node__free_unpacked(w.nodes[1], NULL);
    w.n_nodes = 1;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 2);
    ASSERT_INT_EQ(w.out.n_create, 2);
    world_free(&w);
}

TEST(paused_or_disconnected_node_keeps_tasks)
{
    struct world w;
    world_five_on_two(&w);
    world_find_node(&w, "n1")->spec->availability =
        SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE;
    world_find_node(&w, "n2")->status->state = SWARM__NODE_STATE__NODE_STATE_DISCONNECTED;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

TEST(constraint_no_longer_met_replaces)
{
    struct world w;
    world_five_on_two(&w);
    service_constrain(w.svc, "node.labels.zone==a");
    node_label(w.nodes[0], "zone", "b"); /* n1 was relabelled */
    node_label(w.nodes[1], "zone", "a");
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 3);
    ASSERT_INT_EQ(w.out.n_create, 3);
    for (uint64_t s = 1; s <= 3; s++) {
        ASSERT(out_updates(&w, w.tasks[s - 1]));
        ASSERT(out_creates_slot(&w, s));
    }
    world_free(&w);
}

static Swarm__ServiceSpec *orch_test_spec_dup(const Swarm__ServiceSpec *spec)
{
    size_t len = swarm__service_spec__get_packed_size(spec);
    uint8_t *buf = malloc(len + 1);
    Swarm__ServiceSpec *copy;
    swarm__service_spec__pack(spec, buf);
    copy = swarm__service_spec__unpack(NULL, len, buf);
    free(buf);
    return copy;
}

/* An update policy on the test service: parallelism, monitor, order. */
static void service_update_policy(Swarm__Service *svc, uint64_t parallelism, int64_t monitor_ms,
                                  bool start_first, Swarm__UpdateFailureAction action)
{
    Swarm__UpdateConfig *u = calloc(1, sizeof *u);
    swarm__update_config__init(u);
    u->parallelism = parallelism;
    u->monitor_ms = monitor_ms;
    u->order = start_first ? SWARM__UPDATE_ORDER__UPDATE_ORDER_START_FIRST
                           : SWARM__UPDATE_ORDER__UPDATE_ORDER_STOP_FIRST;
    u->failure_action = action;
    svc->spec->update = u;
}

/* The service's spec moved on: an update is under way since `now`. */
static void service_start_update(struct world *w)
{
    w->svc->spec_version++;
    w->svc->update_status = calloc(1, sizeof *w->svc->update_status);
    swarm__update_status__init(w->svc->update_status);
    w->svc->update_status->state = SWARM__UPDATE_STATE__UPDATE_STATE_UPDATING;
    w->svc->update_status->started_at = w->now;
}

/* Every task created by the last pass runs (status timestamp `at`); every
 * task told to stop has stopped. */
static void world_settle(struct world *w, int64_t at)
{
    for (size_t i = 0; i < w->n_tasks; i++) {
        Swarm__Task *t = w->tasks[i];
        if (t->desired_state > ST(RUNNING) && t->status->state <= ST(RUNNING)) {
            t->status->state = ST(SHUTDOWN);
            t->status->timestamp = at;
        } else if (t->desired_state <= ST(RUNNING) && t->status->state < ST(RUNNING)) {
            t->status->state = ST(RUNNING);
            t->status->timestamp = at;
            t->started_at = at; /* as the store keeps it */
            if (t->node_id[0] == '\0') {
                if (t->node_id != protobuf_c_empty_string) {
                    free(t->node_id);
                }
                t->node_id = strdup("n1");
            }
        }
    }
}

TEST(update_parallelism_zero_stop_first_replaces_all_once_stopped)
{
    struct world w;
    world_five_on_two(&w);
    service_update_policy(w.svc, 0, 1000, false, 0);
    w.now = 10000;
    service_start_update(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    /* stop-first: all five old ones stop, nothing new until they ended. */
    ASSERT_INT_EQ(w.out.n_update, 5);
    ASSERT_INT_EQ(w.out.n_create, 0);
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_settle(&w, 10100);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 5);
    for (size_t i = 0; i < 5; i++) {
        ASSERT_INT_EQ(w.out.create[i]->spec_version, 2);
    }
    world_apply(&w);
    ASSERT(world_one_per_slot(&w));
    world_free(&w);
}

/* Docker's timing: a batch starts once the previous batch's new tasks run
 * (plus the delay); the monitor period is no wait between batches. */
TEST(update_batches_wait_for_running_not_for_the_monitor)
{
    struct world w;
    world_five_on_two(&w);
    service_update_policy(w.svc, 2, 30000, false, 0);
    w.now = 10000;
    service_start_update(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 2); /* the first batch */
    world_apply(&w);
    world_settle(&w, 10050);          /* old ones stopped */
    w.now = 10060;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 2); /* their successors */
    ASSERT_INT_EQ(w.out.n_update, 0); /* no second batch before they run */
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_settle(&w, 10100);          /* the new ones run */
    w.now = 10110;                    /* well inside the 30 s monitor */
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 2); /* the next batch already */
    world_free(&w);
}

TEST(update_delay_counts_from_the_batch_running)
{
    struct world w;
    world_five_on_two(&w);
    service_update_policy(w.svc, 2, 30000, false, 0);
    w.svc->spec->update->delay_ms = 500;
    w.now = 10000;
    service_start_update(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    world_apply(&w);
    world_settle(&w, 10050);
    w.now = 10060;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    world_apply(&w);
    world_settle(&w, 10100);
    w.now = 10200;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    ASSERT_INT_EQ(w.out.wake_at_ms, 10600);
    w.now = 10600;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 2);
    world_free(&w);
}

/* Fail every live task of spec_version 2 at `at`. */
static void world_fail_new(struct world *w, int64_t at)
{
    for (size_t i = 0; i < w->n_tasks; i++) {
        Swarm__Task *t = w->tasks[i];
        if (t->spec_version == 2 && t->desired_state <= ST(RUNNING) &&
            t->status->state <= ST(RUNNING)) {
            t->status->state = ST(FAILED);
            t->status->timestamp = at;
        }
    }
}

/* A failure counts within the monitor window after the task started, even
 * while later batches roll; after the window it does not. */
TEST(update_failure_counts_only_within_the_monitor_window)
{
    for (int late = 0; late < 2; late++) {
        struct world w;
        world_five_on_two(&w);
        service_update_policy(w.svc, 5, 1000, false,
                              SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_PAUSE);
        w.svc->spec->task->restart->delay_ms = 60000;
        w.now = 10000;
        service_start_update(&w);
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        world_apply(&w);
        world_settle(&w, 10050);
        w.now = 10060;
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        ASSERT_INT_EQ(w.out.n_create, 5);
        world_apply(&w);
        world_settle(&w, 10100);      /* started at 10100: window to 11100 */
        w.now = 10200;
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        ASSERT(out_empty(&w));
        ASSERT_INT_EQ(w.out.wake_at_ms, 11100); /* completion waits for it */
        world_fail_new(&w, late ? 11200 : 10900);
        w.now = 11300;
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        ASSERT(w.out.service != NULL);
        ASSERT_INT_EQ(w.out.service->update_status->state,
                      late ? SWARM__UPDATE_STATE__UPDATE_STATE_COMPLETED
                           : SWARM__UPDATE_STATE__UPDATE_STATE_PAUSED);
        world_free(&w);
    }
}

/* A new task that never ran and failed counts, however long it took. */
TEST(update_failure_before_running_counts)
{
    struct world w;
    world_five_on_two(&w);
    service_update_policy(w.svc, 1, 1000, false,
                          SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_PAUSE);
    w.now = 10000;
    service_start_update(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    world_apply(&w);
    world_settle(&w, 10050);
    w.now = 10060;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 1);
    world_apply(&w);
    world_fail_new(&w, 50000); /* rejected after 40 s preparing */
    w.now = 50100;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(w.out.service != NULL);
    ASSERT_INT_EQ(w.out.service->update_status->state, SWARM__UPDATE_STATE__UPDATE_STATE_PAUSED);
    world_free(&w);
}

TEST(update_start_first_keeps_the_old_task_until_the_new_runs)
{
    struct world w;
    world_five_on_two(&w);
    service_update_policy(w.svc, 1, 1000, true, 0);
    w.now = 10000;
    service_start_update(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 1);
    ASSERT_INT_EQ(w.out.n_update, 0); /* the old one keeps running */
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));            /* both live: no stop yet, no new batch */
    world_settle(&w, 10100);          /* the new one runs */
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 1); /* now the old one stops */
    ASSERT_INT_EQ(w.out.n_create, 1); /* and the next batch starts */
    world_free(&w);
}

TEST(update_failure_pauses_or_rolls_back)
{
    for (int rollback = 0; rollback < 2; rollback++) {
        struct world w;
        world_five_on_two(&w);
        w.svc->previous_spec = orch_test_spec_dup(w.svc->spec);
        service_update_policy(w.svc, 1, 1000, false,
                              rollback ? SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_ROLLBACK
                                       : SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_PAUSE);
        w.now = 10000;
        service_start_update(&w);
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        world_apply(&w);
        world_settle(&w, 10050);
        w.now = 10060;
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        ASSERT_INT_EQ(w.out.n_create, 1);
        world_apply(&w);
        /* The new task fails at once. */
        for (size_t i = 0; i < w.n_tasks; i++) {
            if (w.tasks[i]->spec_version == 2) {
                w.tasks[i]->status->state = ST(FAILED);
                w.tasks[i]->status->timestamp = 10100;
            }
        }
        w.now = 10200;
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        ASSERT(w.out.service != NULL);
        if (rollback) {
            ASSERT_INT_EQ(w.out.service->update_status->state,
                          SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_STARTED);
            ASSERT_INT_EQ(w.out.service->spec_version, 3);
        } else {
            ASSERT_INT_EQ(w.out.service->update_status->state,
                          SWARM__UPDATE_STATE__UPDATE_STATE_PAUSED);
        }
        /* No more replacements this pass; the failed task is retired. */
        ASSERT_INT_EQ(w.out.n_create, 0);
        ASSERT_INT_EQ(w.out.n_update, 1);
        ASSERT(w.out.update[0]->ended_on_its_own);
        world_free(&w);
    }
}

/* As Docker, the ratio is over the slots the update covers: with 5 slots
 * and a ratio of 0.5, a first failure (1/5) is tolerated, a third (3/5) is
 * not. */
TEST(update_failure_ratio_over_all_slots)
{
    struct world w;
    world_five_on_two(&w);
    service_update_policy(w.svc, 1, 1000, false,
                          SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_PAUSE);
    w.svc->spec->update->max_failure_ratio = 0.5f;
    w.svc->spec->task->restart->delay_ms = 600000;
    w.now = 10000;
    service_start_update(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 1); /* the first batch's old task stops */
    world_apply(&w);
    for (int batch = 1; batch <= 3; batch++) {
        world_settle(&w, w.now + 10);
        w.now += 20;
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        ASSERT_INT_EQ(w.out.n_create, 1);
        world_apply(&w);
        world_fail_new(&w, w.now + 5); /* fails before it ever ran */
        w.now += 10;
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        if (batch < 3) {
            ASSERT(w.out.service == NULL); /* 1/5, 2/5: tolerated */
            /* The failed task is retired and the next batch starts. */
            ASSERT_INT_EQ(w.out.n_update, 2);
            world_apply(&w);
        } else {
            ASSERT(w.out.service != NULL); /* 3/5 > 0.5 */
            ASSERT_INT_EQ(w.out.service->update_status->state,
                          SWARM__UPDATE_STATE__UPDATE_STATE_PAUSED);
        }
    }
    world_free(&w);
}

TEST(update_completes)
{
    struct world w;
    world_five_on_two(&w);
    service_update_policy(w.svc, 0, 100, false, 0);
    w.now = 10000;
    service_start_update(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    world_apply(&w);
    world_settle(&w, 10010);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    world_apply(&w);
    world_settle(&w, 10020);
    w.now = 10500;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(w.out.service != NULL);
    ASSERT_INT_EQ(w.out.service->update_status->state, SWARM__UPDATE_STATE__UPDATE_STATE_COMPLETED);
    world_free(&w);
}

TEST(two_live_tasks_in_one_slot_keeps_one)
{
    struct world w;
    Swarm__Task *dup;
    world_five_on_two(&w);
    dup = world_task(&w, 2, "n2", ST(ASSIGNED), ST(RUNNING), 2000);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 1);
    ASSERT(out_updates(&w, dup)); /* the running one stays */
    ASSERT_INT_EQ(w.out.n_create, 0);
    world_free(&w);
}

/* ---------------------------------------------------------------- global */

TEST(global_one_task_per_ready_node)
{
    struct world w;
    world_init(&w, service_new("agent", 0, true));
    world_node(&w, "n1");
    world_node(&w, "n2");
    world_node(&w, "n3");
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 3);
    ASSERT(out_creates_node(&w, "n1"));
    ASSERT(out_creates_node(&w, "n2"));
    ASSERT(out_creates_node(&w, "n3"));
    for (size_t i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "agent.%s", w.out.create[i]->node_id);
        ASSERT_STR_EQ(w.out.create[i]->annotations->name, name);
        ASSERT_INT_EQ(w.out.create[i]->slot, 0);
        ASSERT_INT_EQ(w.out.create[i]->status->state, ST(PENDING));
    }
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));

    /* A new node joins. */
    world_node(&w, "n4");
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 1);
    ASSERT_STR_EQ(w.out.create[0]->node_id, "n4");
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

static void world_global_running(struct world *w)
{
    world_init(w, service_new("agent", 0, true));
    world_node(w, "n1");
    world_node(w, "n2");
    world_node(w, "n3");
    for (size_t i = 0; i < 3; i++) {
        world_task(w, 0, w->nodes[i]->id, ST(RUNNING), ST(RUNNING), 1000);
    }
}

TEST(global_drained_node_task_stopped)
{
    struct world w;
    world_global_running(&w);
    world_find_node(&w, "n2")->spec->availability =
        SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 1);
    ASSERT(out_updates(&w, w.tasks[1]));
    ASSERT_INT_EQ(w.out.n_create, 0);
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

TEST(global_paused_node_keeps_but_starts_nothing)
{
    struct world w;
    world_global_running(&w);
    world_node(&w, "n4")->spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE;
    world_find_node(&w, "n1")->spec->availability =
        SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

/* As swarmkit's global orchestrator: a down node's task is shut down (so
 * it no longer counts as desired), and a new one starts when it is back. */
TEST(global_down_node_task_shut_down)
{
    struct world w;
    Swarm__Task *on_n3;
    world_global_running(&w);
    on_n3 = w.tasks[2];
    ASSERT_STR_EQ(on_n3->node_id, "n3");
    world_find_node(&w, "n3")->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 1);
    ASSERT(out_updates(&w, on_n3));
    ASSERT_INT_EQ(w.out.n_create, 0);
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_find_node(&w, "n3")->status->state = SWARM__NODE_STATE__NODE_STATE_READY;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 1);
    ASSERT(out_creates_node(&w, "n3"));
    world_free(&w);
}

/* Unknown (not heard from since this leader started): left alone. */
TEST(global_unknown_node_left_alone)
{
    struct world w;
    world_global_running(&w);
    world_find_node(&w, "n3")->status->state = SWARM__NODE_STATE__NODE_STATE_UNKNOWN;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

TEST(global_constraint_and_restart)
{
    struct world w;
    world_global_running(&w);
    service_constrain(w.svc, "node.id!=n1");
    w.tasks[1]->status->state = ST(FAILED); /* n2's task failed at 1010 */
    w.now = 3000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 2);
    ASSERT(out_updates(&w, w.tasks[0]));
    ASSERT(out_retires(&w, w.tasks[1]));
    ASSERT_INT_EQ(w.out.n_create, 0);
    ASSERT_INT_EQ(w.out.wake_at_ms, 6010);
    world_apply(&w);
    w.now = 6010;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 1);
    ASSERT_STR_EQ(w.out.create[0]->node_id, "n2");
    ASSERT_INT_EQ(w.out.n_update, 0);
    world_free(&w);
}

/* ----------------------------------------------------- removal, history */

TEST(service_removed_stops_and_deletes)
{
    struct world w;
    Swarm__Task *running, *ended, *pending, *stopping;
    world_init(&w, service_new("web", 3, false));
    running = world_task(&w, 1, "n1", ST(RUNNING), ST(RUNNING), 1000);
    ended = world_task(&w, 2, "n1", ST(FAILED), ST(RUNNING), 1000);
    pending = world_task(&w, 3, "", ST(PENDING), ST(RUNNING), 1000);
    stopping = world_task(&w, 2, "n1", ST(RUNNING), ST(SHUTDOWN), 900);
    swarm__service__free_unpacked(w.svc, NULL);
    w.svc = NULL;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 0);
    ASSERT_INT_EQ(w.out.n_update, 1);
    ASSERT(out_updates(&w, running));
    ASSERT_INT_EQ(w.out.n_remove, 2);
    ASSERT(out_removes(&w, ended));
    ASSERT(out_removes(&w, pending));
    ASSERT(!out_removes(&w, stopping));
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    /* Once they have ended, they go too. */
    running->status->state = ST(SHUTDOWN);
    stopping->status->state = ST(SHUTDOWN);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_remove, 2);
    world_apply(&w);
    ASSERT_INT_EQ(w.n_tasks, 0);
    world_free(&w);
}

TEST(history_limit_deletes_oldest)
{
    struct world w;
    Swarm__Task *old[8];
    world_init(&w, service_new("web", 1, false));
    world_node(&w, "n1");
    for (int i = 0; i < 8; i++) {
        old[i] = world_task(&w, 1, "n1", ST(SHUTDOWN), ST(SHUTDOWN), 1000 + 100 * i);
    }
    world_task(&w, 1, "n1", ST(RUNNING), ST(RUNNING), 5000);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 0);
    ASSERT_INT_EQ(w.out.n_update, 0);
    /* Five in all stay, the running one included, as Docker keeps them. */
    ASSERT_INT_EQ(w.out.n_remove, 4);
    for (int i = 0; i < 4; i++) {
        ASSERT(out_removes(&w, old[i]));
    }
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

TEST(history_zero_keeps_task_awaiting_restart)
{
    struct world w;
    Swarm__Task *failed = world_one_failed(&w, ST(FAILED));
    w.limit = 0;
    w.now = 2000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_retires(&w, failed));
    ASSERT_INT_EQ(w.out.n_remove, 0); /* it still decides when the slot restarts */
    world_apply(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    w.now = 7000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, 1);
    world_apply(&w);
    /* Replaced: now it is plain history, and the limit is zero. */
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_remove, 1);
    ASSERT(out_removes(&w, failed));
    world_free(&w);
}

TEST(scale_down_of_ended_slot_releases_it)
{
    struct world w;
    Swarm__Task *failed;
    world_five_on_two(&w);
    failed = w.tasks[4];
    failed->status->state = ST(FAILED);
    w.now = 2000; /* restart not due yet */
    w.svc->spec->replicated->replicas = 4;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_update, 1);
    /* Its slot is given up: desired remove, never restarted. */
    ASSERT_INT_EQ(w.out.update[0]->desired_state, ST(REMOVE));
    ASSERT_STR_EQ(w.out.update[0]->id, failed->id);
    ASSERT_INT_EQ(w.out.n_create, 0);
    ASSERT_INT_EQ(w.out.wake_at_ms, 0);
    world_apply(&w);
    w.now = 60000;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    world_free(&w);
}

/* ------------------------------------------------------ bounded batches */

/* A large scale-up is created ORCH_MAX_CREATE tasks per pass, lowest slots
 * first, each pass continuing where the last one stopped. */
TEST(scale_up_in_bounded_batches)
{
    struct world w;
    const size_t total = 2 * ORCH_MAX_CREATE + 500;
    world_init(&w, service_new("web", total, false));
    world_node(&w, "n1");
    size_t created = 0;
    for (int pass = 0; pass < 3; pass++) {
        ASSERT_INT_EQ(world_reconcile(&w), 0);
        size_t want = pass < 2 ? ORCH_MAX_CREATE : 500;
        ASSERT_INT_EQ(w.out.n_create, want);
        ASSERT_INT_EQ(w.out.more, pass < 2);
        ASSERT_INT_EQ(w.out.create[0]->slot, created + 1);
        ASSERT_INT_EQ(w.out.create[w.out.n_create - 1]->slot, created + want);
        created += want;
        world_apply(&w);
    }
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    ASSERT(!w.out.more);
    ASSERT(world_one_per_slot(&w));
    world_free(&w);
}

/* The caller may ask for smaller batches (the leader's loop shares one
 * budget among the services of a pass). */
TEST(max_create_is_the_callers_budget)
{
    struct world w;
    world_init(&w, service_new("web", 30, false));
    world_node(&w, "n1");
    struct orch_input in = {.service = w.svc, .service_id = "svc1", .nodes = w.nodes,
                            .n_nodes = w.n_nodes, .now_ms = w.now, .task_history_limit = 5,
                            .max_create = 7};
    ASSERT_INT_EQ(orch_reconcile(&in, test_new_id, &w, &w.out), 0);
    ASSERT_INT_EQ(w.out.n_create, 7);
    ASSERT(w.out.more);
    world_free(&w);
}

/* Big task specs make smaller batches: a raft entry stays a few MB. */
TEST(large_specs_make_smaller_batches)
{
    struct world w;
    world_init(&w, service_new("web", 1000, false));
    world_node(&w, "n1");
    Swarm__ContainerSpec *c = w.svc->spec->task->container;
    c->env = calloc(1, sizeof *c->env);
    c->env[0] = malloc(40001);
    memset(c->env[0], 'x', 40000);
    memcpy(c->env[0], "K=", 2);
    c->env[0][40000] = '\0';
    c->n_env = 1;
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    size_t per = swarm__task_spec__get_packed_size(w.svc->spec->task);
    ASSERT(w.out.n_create > 0);
    ASSERT(w.out.n_create < 1000);
    ASSERT(w.out.n_create * per <= ORCH_MAX_CREATE_BYTES);
    ASSERT((w.out.n_create + 1) * (per + 256) > ORCH_MAX_CREATE_BYTES);
    ASSERT(w.out.more);
    world_free(&w);
}

/* A spec from before the bound (still in the raft log) must not make a new
 * leader allocate for 2^64-1 tasks: the orchestrator reconciles to
 * SPEC_MAX_REPLICAS, one bounded batch at a time. */
TEST(replicas_over_the_maximum_are_clamped)
{
    struct world w;
    world_init(&w, service_new("web", UINT64_MAX, false));
    world_node(&w, "n1");
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, ORCH_MAX_CREATE);
    ASSERT(w.out.more);
    world_free(&w);

    /* Just above the maximum: scale-down of a full service stops nothing. */
    world_init(&w, service_new("web", (uint64_t)SPEC_MAX_REPLICAS + 1, false));
    ASSERT_INT_EQ(orch_replicas(w.svc->spec), SPEC_MAX_REPLICAS);
    w.svc->spec->replicated->replicas = 12;
    ASSERT_INT_EQ(orch_replicas(w.svc->spec), 12);
    world_free(&w);
}

/* A scale-up held back by the pass's budget says where it goes on; the
 * next passes go on from there without the tasks (orch_resume) and reach
 * the same tasks a full pass would: one per slot, lowest slots first. */
TEST(scale_up_resumes_without_reading_tasks)
{
    struct world w;
    const size_t total = 2 * ORCH_MAX_CREATE + 500;
    world_init(&w, service_new("web", total, false));
    world_node(&w, "n1");
    /* Slot 2 is taken already: the scale-up goes around it. */
    world_task(&w, 2, "n1", ST(RUNNING), ST(RUNNING), 50000);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT_INT_EQ(w.out.n_create, ORCH_MAX_CREATE);
    ASSERT(w.out.more);
    ASSERT_INT_EQ(w.out.resume.slot, ORCH_MAX_CREATE + 2);
    ASSERT_INT_EQ(w.out.resume.missing, total - 1 - ORCH_MAX_CREATE);
    struct orch_resume at = w.out.resume;
    world_apply(&w);
    size_t before = w.n_tasks;
    for (int pass = 0; pass < 2; pass++) {
        /* No tasks given: it must not need them. */
        struct orch_input in = {.service = w.svc, .service_id = "svc1", .now_ms = w.now,
                                .task_history_limit = 5};
        orch_output_free(&w.out);
        ASSERT_INT_EQ(orch_resume(&in, &at, test_new_id, &w, &w.out), 0);
        size_t want = pass == 0 ? ORCH_MAX_CREATE : 499;
        ASSERT_INT_EQ(w.out.n_create, want);
        ASSERT_INT_EQ(w.out.create[0]->slot, at.slot);
        ASSERT_INT_EQ(w.out.create[0]->desired_state, ST(RUNNING));
        ASSERT_INT_EQ(w.out.create[0]->spec_version, w.svc->spec_version);
        ASSERT_STR_EQ(w.out.create[0]->annotations->name, pass == 0 ? "web.5002" : "web.10002");
        ASSERT_INT_EQ(w.out.more, pass == 0);
        ASSERT_INT_EQ(w.out.resume.missing, pass == 0 ? 499 : 0);
        at = w.out.resume;
        world_apply(&w);
    }
    ASSERT_INT_EQ(w.n_tasks, before + ORCH_MAX_CREATE + 499);
    /* A full pass over the result agrees: nothing left to do. */
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(out_empty(&w));
    ASSERT_INT_EQ(w.out.resume.missing, 0);
    ASSERT(world_one_per_slot(&w));
    world_free(&w);
}

/* Only a pure scale-up can be resumed: when a slot's restart was held back
 * too, the next pass must read the tasks again; a global service never
 * resumes. */
TEST(resume_only_for_a_plain_scale_up)
{
    struct world w;
    world_init(&w, service_new("web", 10, false));
    world_node(&w, "n1");
    /* Slots 1 and 2 ended on their own long ago: their restarts are due,
     * and the budget of one holds the second back. */
    world_task(&w, 1, "n1", ST(FAILED), ST(RUNNING), 100);
    world_task(&w, 2, "n1", ST(FAILED), ST(RUNNING), 100);
    struct orch_input in = {.service = w.svc, .service_id = "svc1", .tasks = w.tasks,
                            .n_tasks = w.n_tasks, .nodes = w.nodes, .n_nodes = w.n_nodes,
                            .now_ms = w.now, .task_history_limit = 5, .max_create = 1};
    ASSERT_INT_EQ(orch_reconcile(&in, test_new_id, &w, &w.out), 0);
    ASSERT_INT_EQ(w.out.n_create, 1);
    ASSERT_INT_EQ(w.out.create[0]->slot, 1); /* the restart took the budget */
    ASSERT(w.out.more);
    ASSERT_INT_EQ(w.out.resume.missing, 0);
    world_free(&w);

    world_init(&w, service_new("web", 0, true));
    world_node(&w, "n1");
    struct orch_resume at = {1, 5};
    struct orch_input gin = {.service = w.svc, .service_id = "svc1", .now_ms = w.now};
    ASSERT_INT_EQ(orch_resume(&gin, &at, test_new_id, &w, &w.out), SWARM_EINVAL);
    ASSERT_INT_EQ(w.out.n_create, 0);
    world_free(&w);
}

/* A task that starts running matters to a pass only while an update waits
 * for it: the leader's loop skips passes for the running reports of a
 * steady service (watch_running false). */
TEST(watch_running_only_while_updating)
{
    struct world w;
    world_five_on_two(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(!w.out.watch_running);
    service_update_policy(w.svc, 2, 0, false, 0);
    w.now = 10000;
    service_start_update(&w);
    ASSERT_INT_EQ(world_reconcile(&w), 0);
    ASSERT(w.out.watch_running);
    world_free(&w);
}

TEST_MAIN()
