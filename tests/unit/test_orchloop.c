/* Unit tests of the orchestration loop (orchloop.h) on a hand-made menv
 * (fakemenv.h): the loop is constructible without a manager, a pass
 * proposes what the orchestrator and scheduler decide, a failed pass is
 * retried whole, and close waits for the proposal in flight (close after
 * drain). */
#include <string.h>

#include "err.h"
#include "fakemenv.h"
#include "orchloop.h"
#include "test.h"

#define CREATE SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE

/* One ready node "node1" and a service "svc1" of `replicas` replicas. */
static int setup(struct fakemenv *f, uint64_t replicas)
{
    if (fakemenv_init(f) != 0) {
        return -1;
    }
    fakemenv_apply(f, 1, CREATE, fakemenv_node("node1", SWARM__NODE_STATE__NODE_STATE_READY));
    fakemenv_apply(f, 2, CREATE, fakemenv_service("svc1", "web", replicas));
    return 0;
}

/* Task creates of the last proposal that are placed on node1 already. */
static size_t creates_on_node1(const struct fakemenv *f)
{
    size_t n = 0;
    for (size_t i = 0; f->last != NULL && i < f->last->n_actions; i++) {
        const Swarm__StoreAction *a = f->last->actions[i];
        n += a->kind == CREATE && a->task != NULL && a->task->node_id != NULL &&
             strcmp(a->task->node_id, "node1") == 0 && strcmp(a->task->service_id, "svc1") == 0;
    }
    return n;
}

static bool closed(struct fakemenv *f)
{
    return f->n_closed > 0;
}

static void close_and_wait(struct fakemenv *f, struct orchloop *o)
{
    bool done = false;
    orchloop_close(o, fakemenv_closed_cb, f);
    for (int i = 0; i < 100 && !(done = closed(f)); i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

TEST(new_and_close_without_leading)
{
    struct fakemenv f;
    ASSERT(setup(&f, 3) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    orchloop_close(o, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 0); /* the timers close on the loop */
    close_and_wait(&f, NULL);     /* a NULL loop closes at once */
    ASSERT_INT_EQ(f.n_closed, 1);
    for (int i = 0; i < 100 && f.n_closed < 2; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_INT_EQ(f.n_closed, 2);
    ASSERT_INT_EQ(f.n_proposed, 0);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(leader_pass_creates_assigned_tasks)
{
    struct fakemenv f;
    ASSERT(setup(&f, 3) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    f.leader = true;
    orchloop_set_leader(o, true);
    ASSERT(fakemenv_run_until_proposed(&f));
    ASSERT_INT_EQ(f.n_proposed, 1);
    /* Three new tasks, created already placed on the only node. */
    ASSERT_INT_EQ(creates_on_node1(&f), 3);
    ASSERT_INT_EQ(fakemenv_complete(&f, 0), 0);
    close_and_wait(&f, o);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(close_waits_for_proposal_in_flight)
{
    struct fakemenv f;
    ASSERT(setup(&f, 2) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    f.leader = true;
    orchloop_set_leader(o, true);
    ASSERT(fakemenv_run_until_proposed(&f));
    orchloop_close(o, fakemenv_closed_cb, &f);
    /* Both timers close, but the pass is still in flight: not freed. */
    for (int i = 0; i < 20; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    ASSERT_INT_EQ(f.n_closed, 0);
    /* Raft closing fails the pending proposal: now it goes, once, and
     * proposes nothing more. */
    ASSERT_INT_EQ(fakemenv_complete(&f, SWARM_ECANCELED), 0);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(f.n_proposed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(failed_pass_is_retried_whole)
{
    struct fakemenv f;
    ASSERT(setup(&f, 2) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    f.leader = true;
    orchloop_set_leader(o, true);
    ASSERT(fakemenv_run_until_proposed(&f));
    ASSERT_INT_EQ(f.n_proposed, 1);
    /* Leadership lost in between: the pass failed, everything stays dirty
     * and the next pass proposes the same creates again. */
    ASSERT_INT_EQ(fakemenv_complete(&f, SWARM_ENOTLEADER), 0);
    ASSERT(fakemenv_run_until_proposed(&f));
    ASSERT_INT_EQ(f.n_proposed, 2);
    ASSERT_INT_EQ(creates_on_node1(&f), 2);
    ASSERT_INT_EQ(fakemenv_complete(&f, 0), 0);
    close_and_wait(&f, o);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(refused_proposal_leaves_nothing_in_flight)
{
    struct fakemenv f;
    ASSERT(setup(&f, 2) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    f.leader = true;
    f.propose_rv = SWARM_ENOTLEADER; /* refused at once: no callback */
    orchloop_set_leader(o, true);
    for (int i = 0; i < 5; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_INT_EQ(f.n_proposed, 0);
    /* Nothing counted in flight: close completes on the timers alone. */
    close_and_wait(&f, o);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(follower_proposes_nothing)
{
    struct fakemenv f;
    ASSERT(setup(&f, 2) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    /* Told it leads, but the environment says otherwise (raft moved on):
     * the pass checks the environment and proposes nothing. */
    orchloop_set_leader(o, true);
    for (int i = 0; i < 5; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_INT_EQ(f.n_proposed, 0);
    close_and_wait(&f, o);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

/* ---- passes applied to the store, as raft would */

struct applied {
    struct fakemenv *f;
    struct orchloop *o;
    uint64_t index;
};

static void applied_event_cb(const struct store_event *ev, void *data)
{
    orchloop_on_event(((struct applied *)data)->o, ev);
}

/* Apply the pending proposal (its copy in f->last) to the store, events
 * reaching the loop, then report it committed. */
static int apply_pending(struct applied *a)
{
    struct store_result r;
    if (store_apply(a->f->env.store, ++a->index, a->f->last, &r) != 0 || r.status != 0) {
        return -1;
    }
    return fakemenv_complete(a->f, 0);
}

/* Task creates of the last proposal placed on a node. */
static size_t creates_placed(const struct fakemenv *f)
{
    size_t n = 0;
    for (size_t i = 0; f->last != NULL && i < f->last->n_actions; i++) {
        const Swarm__StoreAction *a = f->last->actions[i];
        n += a->kind == CREATE && a->task != NULL && a->task->node_id != NULL &&
             a->task->node_id[0] != '\0';
    }
    return n;
}

/* Every slot 1..n holds exactly one task meant to run, and nothing else. */
static bool one_task_per_slot(struct store *s, uint64_t n)
{
    Swarm__Task **tasks = NULL;
    size_t count = 0;
    bool ok;
    if (store_task_list_by_service(s, "svc1", &tasks, &count) != 0) {
        return false;
    }
    ok = count == n;
    for (size_t i = 0; ok && i < count; i++) {
        ok = tasks[i]->slot == i + 1 &&
             tasks[i]->desired_state == SWARM__TASK_STATE__TASK_STATE_RUNNING;
    }
    store_task_free_list(tasks, count);
    return ok;
}

/* Someone else deletes the first `n` tasks of `node` (at most 10). */
static int remove_tasks_of(struct applied *a, const char *node, size_t n)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction act[10], *acts[10];
    Swarm__Task **tasks = NULL, victim[10];
    size_t count = 0;
    struct store_result r;
    int rv;
    if (n > 10 || store_task_list_by_node(a->f->env.store, node, &tasks, &count) != 0 ||
        count < n) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        swarm__store_action__init(&act[i]);
        swarm__task__init(&victim[i]);
        victim[i].id = tasks[i]->id;
        act[i].kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE;
        act[i].target_case = SWARM__STORE_ACTION__TARGET_TASK;
        act[i].task = &victim[i];
        acts[i] = &act[i];
    }
    cmd.actions = acts;
    cmd.n_actions = n;
    rv = store_apply(a->f->env.store, ++a->index, &cmd, &r) == 0 && r.status == 0 ? 0 : -1;
    store_task_free_list(tasks, count);
    return rv;
}

static size_t tasks_on(struct store *s, const char *node)
{
    Swarm__Task **tasks = NULL;
    size_t n = 0;
    if (store_task_list_by_node(s, node, &tasks, &n) != 0) {
        return 0;
    }
    store_task_free_list(tasks, n);
    return n;
}

/* A scale-up larger than one pass goes on where the last pass stopped
 * (without reading the tasks again, placing with the scheduler's view kept
 * from the last pass) and reaches one task per slot; tasks removed by
 * someone else between two passes are noticed (the events drop the resume
 * and the view), their slots are filled again and spread stays even. */
TEST(large_scale_up_resumes_and_notices_changes)
{
    struct fakemenv f;
    struct applied a;
    const uint64_t replicas = 2 * 5000 + 7; /* ORCH_MAX_CREATE per pass */
    ASSERT(setup(&f, replicas) == 0);
    fakemenv_apply(&f, 3, CREATE, fakemenv_node("node2", SWARM__NODE_STATE__NODE_STATE_READY));
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    a = (struct applied){.f = &f, .o = o, .index = 3};
    store_set_event_cb(f.env.store, applied_event_cb, &a);
    f.leader = true;
    orchloop_set_leader(o, true);
    for (int pass = 0; pass < 3; pass++) {
        ASSERT(fakemenv_run_until_proposed(&f));
        /* The second pass reads the tasks again (the removals dropped the
         * resume) and fills their slots first; the third goes on from
         * there. Every create is placed. */
        ASSERT_INT_EQ(creates_placed(&f), pass < 2 ? 5000 : 17);
        ASSERT_INT_EQ(apply_pending(&a), 0);
        if (pass == 0) {
            ASSERT_INT_EQ(tasks_on(f.env.store, "node1"), 2500); /* spread evenly */
            ASSERT_INT_EQ(remove_tasks_of(&a, "node1", 10), 0);
        }
    }
    for (int i = 0; i < 10 && f.n_pending == 0; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    ASSERT_INT_EQ(f.n_pending, 0); /* nothing left to do */
    ASSERT(one_task_per_slot(f.env.store, replicas));
    /* Spread stays even: the scheduler's kept view learned of the removals
     * (a stale one would still count ten tasks on node1). */
    size_t on1 = tasks_on(f.env.store, "node1"), on2 = tasks_on(f.env.store, "node2");
    ASSERT(on1 + on2 == replicas);
    ASSERT(on1 <= on2 + 1 && on2 <= on1 + 1);
    store_set_event_cb(f.env.store, NULL, NULL);
    close_and_wait(&f, o);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST_MAIN()
