/* Unit tests of the orchestration loop (orchloop.h) on a hand-made menv: an
 * in-memory store, a fake clock and a propose that only records what it was
 * given, so the test decides when (and how) each proposal comes back.
 * Checks that the loop is constructible without a manager, that a pass
 * proposes what the orchestrator and scheduler decide, and that close waits
 * for the proposal in flight (close after drain). */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "err.h"
#include "orchloop.h"
#include "store.h"
#include "test.h"

/* ---- the fake environment */

struct fake {
    struct menv env;
    uv_loop_t loop;
    bool leader;
    int64_t now;
    int propose_rv;      /* returned by propose when non-zero (cb not kept) */
    unsigned n_proposed; /* proposals accepted */
    size_t last_actions; /* actions of the last proposal */
    size_t last_creates; /* of which task creates assigned to a node */
    menv_propose_cb cb;  /* the pending proposal, if any */
    void *cb_data;
    bool closed;
};

static int fake_propose(void *impl, Swarm__StoreCommand *cmd, menv_propose_cb cb, void *data)
{
    struct fake *f = impl;
    if (f->propose_rv != 0) {
        return f->propose_rv;
    }
    f->n_proposed++;
    f->last_actions = cmd->n_actions;
    f->last_creates = 0;
    for (size_t i = 0; i < cmd->n_actions; i++) {
        const Swarm__StoreAction *a = cmd->actions[i];
        if (a->kind == SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE && a->task != NULL &&
            a->task->node_id != NULL && strcmp(a->task->node_id, "node1") == 0) {
            f->last_creates++;
        }
    }
    f->cb = cb;
    f->cb_data = data;
    return 0;
}

static bool fake_is_leader(void *impl)
{
    return ((struct fake *)impl)->leader;
}

static void fake_leader(void *impl, raft_id *id, const char **address)
{
    struct fake *f = impl;
    *id = f->leader ? 1 : 0;
    *address = f->leader ? "127.0.0.1:2377" : NULL;
}

static int64_t fake_now(void *impl)
{
    return ((struct fake *)impl)->now;
}

/* Fire the pending proposal's callback with `status` (0: committed). */
static void fake_complete(struct fake *f, int status)
{
    struct store_result res = {.status = 0, .action_index = -1};
    menv_propose_cb cb = f->cb;
    f->cb = NULL;
    cb(status, &res, f->cb_data);
}

static void closed_cb(void *data)
{
    ((struct fake *)data)->closed = true;
}

/* ---- store content */

static void apply_one(struct store *s, uint64_t index, Swarm__StoreAction *a)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction *actions[1] = {a};
    struct store_result r;
    cmd.timestamp = 1000;
    cmd.actions = actions;
    cmd.n_actions = 1;
    if (store_apply(s, index, &cmd, &r) != 0 || r.status != 0) {
        abort();
    }
    protobuf_c_message_free_unpacked(&a->base, NULL);
}

static Swarm__StoreAction *action_new(void)
{
    Swarm__StoreAction *a = calloc(1, sizeof *a);
    if (a == NULL) {
        abort();
    }
    swarm__store_action__init(a);
    a->kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE;
    return a;
}

static void *xcalloc(size_t size)
{
    void *p = calloc(1, size);
    if (p == NULL) {
        abort();
    }
    return p;
}

/* One ready node "node1" and a service "svc1" of `replicas` replicas. */
static void store_fill(struct store *s, uint64_t replicas)
{
    Swarm__StoreAction *a = action_new();
    Swarm__Node *n = xcalloc(sizeof *n);
    swarm__node__init(n);
    n->id = strdup("node1");
    n->spec = xcalloc(sizeof *n->spec);
    swarm__node_spec__init(n->spec);
    n->spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
    n->status = xcalloc(sizeof *n->status);
    swarm__node_status__init(n->status);
    n->status->state = SWARM__NODE_STATE__NODE_STATE_READY;
    a->target_case = SWARM__STORE_ACTION__TARGET_NODE;
    a->node = n;
    apply_one(s, 1, a);

    a = action_new();
    Swarm__Service *svc = xcalloc(sizeof *svc);
    swarm__service__init(svc);
    svc->id = strdup("svc1");
    svc->spec = xcalloc(sizeof *svc->spec);
    swarm__service_spec__init(svc->spec);
    svc->spec->annotations = xcalloc(sizeof *svc->spec->annotations);
    swarm__annotations__init(svc->spec->annotations);
    svc->spec->annotations->name = strdup("web");
    svc->spec->task = xcalloc(sizeof *svc->spec->task);
    swarm__task_spec__init(svc->spec->task);
    svc->spec->mode_case = SWARM__SERVICE_SPEC__MODE_REPLICATED;
    svc->spec->replicated = xcalloc(sizeof *svc->spec->replicated);
    swarm__replicated_service__init(svc->spec->replicated);
    svc->spec->replicated->replicas = replicas;
    a->target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
    a->service = svc;
    apply_one(s, 2, a);
}

static int fake_setup(struct fake *f, uint64_t replicas)
{
    char err[256];
    struct store *s = NULL;
    memset(f, 0, sizeof *f);
    if (uv_loop_init(&f->loop) != 0 || store_open(":memory:", &s, err, sizeof err) != 0) {
        return -1;
    }
    store_fill(s, replicas);
    f->now = 1000000;
    f->env = (struct menv){
        .loop = &f->loop,
        .store = s,
        .propose = fake_propose,
        .is_leader = fake_is_leader,
        .leader = fake_leader,
        .now = fake_now,
        .impl = f,
    };
    return 0;
}

/* Run the loop until `*flag` or a bounded number of turns (timers of the
 * module are at most tens of ms). */
static void run_until(struct fake *f, const bool *flag)
{
    for (int i = 0; i < 200 && !*flag; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static bool proposed(struct fake *f)
{
    return f->cb != NULL;
}

static void run_until_proposed(struct fake *f)
{
    for (int i = 0; i < 200 && !proposed(f); i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static int fake_teardown(struct fake *f)
{
    store_close(f->env.store);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&f->loop);
}

/* ---- tests */

TEST(new_and_close_without_leading)
{
    struct fake f;
    ASSERT(fake_setup(&f, 3) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    orchloop_close(o, closed_cb, &f);
    ASSERT(!f.closed); /* the timers close on the loop */
    run_until(&f, &f.closed);
    ASSERT(f.closed);
    ASSERT_INT_EQ(f.n_proposed, 0);
    ASSERT_INT_EQ(fake_teardown(&f), 0);
}

TEST(leader_pass_creates_assigned_tasks)
{
    struct fake f;
    ASSERT(fake_setup(&f, 3) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    f.leader = true;
    orchloop_set_leader(o, true);
    run_until_proposed(&f);
    ASSERT_INT_EQ(f.n_proposed, 1);
    /* Three new tasks, created already placed on the only node. */
    ASSERT_INT_EQ(f.last_creates, 3);
    fake_complete(&f, 0);
    orchloop_close(o, closed_cb, &f);
    run_until(&f, &f.closed);
    ASSERT(f.closed);
    ASSERT_INT_EQ(fake_teardown(&f), 0);
}

TEST(close_waits_for_proposal_in_flight)
{
    struct fake f;
    ASSERT(fake_setup(&f, 2) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    f.leader = true;
    orchloop_set_leader(o, true);
    run_until_proposed(&f);
    ASSERT(proposed(&f));
    orchloop_close(o, closed_cb, &f);
    /* Both timers close, but the pass is still in flight: not freed. */
    for (int i = 0; i < 20; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    ASSERT(!f.closed);
    /* Raft closing fails the pending proposal: now it may go, and nothing
     * new is proposed on the failure. */
    fake_complete(&f, SWARM_ECANCELED);
    ASSERT(f.closed);
    ASSERT_INT_EQ(f.n_proposed, 1);
    ASSERT_INT_EQ(fake_teardown(&f), 0);
}

TEST(failed_pass_is_retried_whole)
{
    struct fake f;
    ASSERT(fake_setup(&f, 2) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    f.leader = true;
    orchloop_set_leader(o, true);
    run_until_proposed(&f);
    ASSERT_INT_EQ(f.n_proposed, 1);
    /* Leadership lost in between: the pass failed, everything stays dirty
     * and the next pass proposes the same creates again. */
    fake_complete(&f, SWARM_ENOTLEADER);
    run_until_proposed(&f);
    ASSERT_INT_EQ(f.n_proposed, 2);
    ASSERT_INT_EQ(f.last_creates, 2);
    fake_complete(&f, 0);
    orchloop_close(o, closed_cb, &f);
    run_until(&f, &f.closed);
    ASSERT(f.closed);
    ASSERT_INT_EQ(fake_teardown(&f), 0);
}

TEST(follower_proposes_nothing)
{
    struct fake f;
    ASSERT(fake_setup(&f, 2) == 0);
    struct orchloop *o = orchloop_new(&f.env);
    ASSERT(o != NULL);
    /* Told it leads, but the environment says otherwise (raft moved on):
     * the pass checks the environment and proposes nothing. */
    orchloop_set_leader(o, true);
    for (int i = 0; i < 5; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_INT_EQ(f.n_proposed, 0);
    orchloop_close(o, closed_cb, &f);
    run_until(&f, &f.closed);
    ASSERT(f.closed);
    ASSERT_INT_EQ(fake_teardown(&f), 0);
}

TEST_MAIN()
