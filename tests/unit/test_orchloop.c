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

TEST_MAIN()
