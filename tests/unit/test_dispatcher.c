/* Unit tests of the dispatcher (dispatcher.h) on a hand-made menv
 * (fakemenv.h): constructible without a manager, a Ready node that never
 * opens a session is marked Down once the grace after becoming leader is
 * over (one flush proposal), and close waits for that flush (close after
 * drain). */
#include <string.h>

#include "dispatcher.h"
#include "err.h"
#include "fakemenv.h"
#include "test.h"

#define CREATE SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE
/* A short heartbeat period, so the grace (3 periods) passes quickly. */
#define PERIOD_MS 20

static X509 *no_root_cb(void *data)
{
    (void)data;
    return NULL;
}

static const struct dispatcher_config config = {.root_cert = no_root_cb};

static int setup(struct fakemenv *f)
{
    if (fakemenv_init(f) != 0) {
        return -1;
    }
    fakemenv_apply(f, 1, CREATE, fakemenv_cluster("cluster1", PERIOD_MS));
    fakemenv_apply(f, 2, CREATE, fakemenv_node("node1", SWARM__NODE_STATE__NODE_STATE_READY));
    fakemenv_apply(f, 3, CREATE, fakemenv_node("node2", SWARM__NODE_STATE__NODE_STATE_DOWN));
    return 0;
}

static void wait_closed(struct fakemenv *f, unsigned want)
{
    for (int i = 0; i < 100 && f->n_closed < want; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* The node marked Down by the last proposal, or NULL. */
static const char *last_down(const struct fakemenv *f)
{
    for (size_t i = 0; f->last != NULL && i < f->last->n_actions; i++) {
        const Swarm__StoreAction *a = f->last->actions[i];
        if (a->kind == SWARM__STORE_ACTION_KIND__STORE_ACTION_NODE_STATUS && a->node != NULL &&
            a->node->status != NULL &&
            a->node->status->state == SWARM__NODE_STATE__NODE_STATE_DOWN) {
            return a->node->id;
        }
    }
    return NULL;
}

TEST(new_and_close)
{
    struct fakemenv f;
    ASSERT(setup(&f) == 0);
    struct dispatcher *d = dispatcher_new(&f.env, &config);
    ASSERT(d != NULL);
    dispatcher_close(d, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 0); /* its timers close on the loop */
    wait_closed(&f, 1);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(f.n_proposed, 0);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(orphan_ready_node_marked_down)
{
    struct fakemenv f;
    ASSERT(setup(&f) == 0);
    struct dispatcher *d = dispatcher_new(&f.env, &config);
    ASSERT(d != NULL);
    f.leader = true;
    dispatcher_set_leader(d, true);
    /* No session for node1 within the grace: one flush marks it Down (and
     * only it: node2 is Down already). */
    ASSERT(fakemenv_run_until_proposed(&f));
    ASSERT_INT_EQ(f.n_proposed, 1);
    ASSERT_INT_EQ(f.last->n_actions, 1);
    ASSERT_STR_EQ(last_down(&f), "node1");
    ASSERT_INT_EQ(fakemenv_complete(&f, 0), 0);
    /* Checked once per term: nothing more is proposed. */
    for (int i = 0; i < 10; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_INT_EQ(f.n_proposed, 1);
    dispatcher_close(d, fakemenv_closed_cb, &f);
    wait_closed(&f, 1);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(close_waits_for_flush_in_flight)
{
    struct fakemenv f;
    ASSERT(setup(&f) == 0);
    struct dispatcher *d = dispatcher_new(&f.env, &config);
    ASSERT(d != NULL);
    f.leader = true;
    dispatcher_set_leader(d, true);
    ASSERT(fakemenv_run_until_proposed(&f));
    dispatcher_close(d, fakemenv_closed_cb, &f);
    for (int i = 0; i < 20; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    /* Timers closed, the flush still pending: not freed yet. */
    ASSERT_INT_EQ(f.n_closed, 0);
    ASSERT_INT_EQ(fakemenv_complete(&f, SWARM_ECANCELED), 0);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(f.n_proposed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

static void flag_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

TEST(follower_marks_nothing)
{
    struct fakemenv f;
    ASSERT(setup(&f) == 0);
    struct dispatcher *d = dispatcher_new(&f.env, &config);
    ASSERT(d != NULL);
    /* Never told it leads: well past the grace, still no liveness writes. */
    uv_timer_t t;
    bool waited = false;
    uv_timer_init(&f.loop, &t);
    t.data = &waited;
    uv_timer_start(&t, flag_cb, 5 * PERIOD_MS, 0);
    ASSERT(fakemenv_run_until(&f, &waited));
    uv_close((uv_handle_t *)&t, NULL);
    ASSERT_INT_EQ(f.n_proposed, 0);
    dispatcher_close(d, fakemenv_closed_cb, &f);
    wait_closed(&f, 1);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST_MAIN()
