/* Unit tests of the role manager (rolemgr.h) on a hand-made menv and a fake
 * raft membership: an in-memory store of Nodes, a configuration the test
 * writes, membership changes and proposals that are only recorded, so the
 * test decides when each comes back. Checks which change a pass makes (add a
 * new manager as a voter, remove one only while a reachable majority
 * remains, record a finished demotion), that one change at a time is in
 * flight, that a follower changes nothing, and that close waits for the
 * change in flight (close after drain). */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "err.h"
#include "rolemgr.h"
#include "store.h"
#include "test.h"

struct fake {
    struct menv env;
    uv_loop_t loop;
    bool leader;
    struct raft_server servers[4];
    struct raft_configuration conf;
    const char *reachable[4]; /* node IDs that answer probes */
    /* What the role manager asked for. */
    unsigned n_adds, n_removes, n_proposed;
    raft_id last_id;
    char last_addr[64];
    Swarm__NodeRole last_role;
    char last_node[32];
    rnode_change_cb change_cb; /* the membership change in flight */
    menv_propose_cb propose_cb; /* the proposal in flight */
    void *cb_data;
    bool closed;
};

static int fake_propose(void *impl, Swarm__StoreCommand *cmd, menv_propose_cb cb, void *data)
{
    struct fake *f = impl;
    const Swarm__Node *n = cmd->n_actions == 1 ? cmd->actions[0]->node : NULL;
    f->n_proposed++;
    if (n != NULL) {
        f->last_role = n->role;
        snprintf(f->last_node, sizeof f->last_node, "%s", n->id);
    }
    f->propose_cb = cb;
    f->cb_data = data;
    return 0;
}

static bool fake_is_leader(void *impl)
{
    return ((struct fake *)impl)->leader;
}

static void fake_leader(void *impl, raft_id *id, const char **address)
{
    *id = 0;
    *address = NULL;
}

static int64_t fake_now(void *impl)
{
    return 1000000;
}

static const struct raft_configuration *fake_members(void *impl)
{
    return &((struct fake *)impl)->conf;
}

static int fake_add_voter(void *impl, raft_id id, const char *address, rnode_change_cb cb,
                          void *data)
{
    struct fake *f = impl;
    f->n_adds++;
    f->last_id = id;
    snprintf(f->last_addr, sizeof f->last_addr, "%s", address ? address : "");
    f->change_cb = cb;
    f->cb_data = data;
    return 0;
}

static int fake_remove(void *impl, raft_id id, rnode_change_cb cb, void *data)
{
    struct fake *f = impl;
    f->n_removes++;
    f->last_id = id;
    f->change_cb = cb;
    f->cb_data = data;
    return 0;
}

static Swarm__Reachability fake_reachability(void *impl, const char *node_id)
{
    struct fake *f = impl;
    for (size_t i = 0; i < 4; i++) {
        if (f->reachable[i] != NULL && strcmp(f->reachable[i], node_id) == 0) {
            return SWARM__REACHABILITY__REACHABILITY_REACHABLE;
        }
    }
    return SWARM__REACHABILITY__REACHABILITY_UNREACHABLE;
}

static void closed_cb(void *data)
{
    ((struct fake *)data)->closed = true;
}

static void *xcalloc(size_t size)
{
    void *p = calloc(1, size);
    if (p == NULL) {
        abort();
    }
    return p;
}

/* A Node: `role` now, `desired` in its spec, a raft id when a manager. */
static void node_put(struct store *s, uint64_t index, const char *id, Swarm__NodeRole role,
                     Swarm__NodeRole desired, raft_id raft_id)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction a = SWARM__STORE_ACTION__INIT;
    Swarm__StoreAction *actions[1] = {&a};
    Swarm__Node *n = xcalloc(sizeof *n);
    struct store_result r;
    char addr[32];
    swarm__node__init(n);
    n->id = strdup(id);
    n->role = role;
    snprintf(addr, sizeof addr, "127.0.0.%d:2377", (int)raft_id);
    n->advertise_addr = strdup(addr);
    n->spec = xcalloc(sizeof *n->spec);
    swarm__node_spec__init(n->spec);
    n->spec->desired_role = desired;
    if (raft_id != 0) {
        n->manager_status = xcalloc(sizeof *n->manager_status);
        swarm__manager_status__init(n->manager_status);
        n->manager_status->raft_id = raft_id;
        n->manager_status->addr = strdup(addr);
    }
    a.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE;
    a.target_case = SWARM__STORE_ACTION__TARGET_NODE;
    a.node = n;
    cmd.actions = actions;
    cmd.n_actions = 1;
    cmd.timestamp = 1000;
    if (store_apply(s, index, &cmd, &r) != 0 || r.status != 0) {
        abort();
    }
    swarm__node__free_unpacked(n, NULL);
}

static void voter_add(struct fake *f, raft_id id)
{
    f->servers[f->conf.n].id = id;
    f->servers[f->conf.n].role = RAFT_VOTER;
    f->servers[f->conf.n].address = "";
    f->conf.n++;
}

static int fake_setup(struct fake *f)
{
    char err[SWARM_ERRMSG_SIZE];
    struct store *s = NULL;
    memset(f, 0, sizeof *f);
    if (uv_loop_init(&f->loop) != 0 || store_open(":memory:", &s, err) != 0) {
        return -1;
    }
    f->conf.servers = f->servers;
    f->leader = true;
    f->reachable[0] = "m1";
    f->env = (struct menv){
        .loop = &f->loop,
        .store = s,
        .propose = fake_propose,
        .is_leader = fake_is_leader,
        .leader = fake_leader,
        .now = fake_now,
        .impl = f,
    };
    /* This manager: m1, raft id 1, the only voter. */
    node_put(s, 1, "m1", SWARM__NODE_ROLE__NODE_ROLE_MANAGER, SWARM__NODE_ROLE__NODE_ROLE_MANAGER,
             1);
    voter_add(f, 1);
    return 0;
}

static struct rolemgr *fake_rolemgr(struct fake *f)
{
    const struct rolemgr_config cfg = {
        .raft_members = fake_members,
        .add_voter = fake_add_voter,
        .remove = fake_remove,
        .reachability = fake_reachability,
        .impl = f,
    };
    return rolemgr_new(&f->env, &cfg);
}

/* A few passes (the first runs at once, then every 200 ms). */
static void run_passes(struct fake *f, int n)
{
    for (int i = 0; i < n; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void change_done(struct fake *f, int status)
{
    rnode_change_cb cb = f->change_cb;
    f->change_cb = NULL;
    cb(status, f->cb_data);
}

static int close_and_teardown(struct fake *f, struct rolemgr *rm)
{
    rolemgr_close(rm, closed_cb, f);
    for (int i = 0; i < 20 && !f->closed; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    if (!f->closed) {
        return -1;
    }
    store_close(f->env.store);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&f->loop);
}

TEST(new_manager_is_added_as_voter_one_change_at_a_time)
{
    struct fake f;
    ASSERT(fake_setup(&f) == 0);
    node_put(f.env.store, 2, "m2", SWARM__NODE_ROLE__NODE_ROLE_MANAGER,
             SWARM__NODE_ROLE__NODE_ROLE_MANAGER, 2);
    node_put(f.env.store, 3, "m3", SWARM__NODE_ROLE__NODE_ROLE_MANAGER,
             SWARM__NODE_ROLE__NODE_ROLE_MANAGER, 3);
    struct rolemgr *rm = fake_rolemgr(&f);
    ASSERT(rm != NULL);
    rolemgr_start(rm);
    run_passes(&f, 3);
    ASSERT_INT_EQ(f.n_adds, 1);
    ASSERT_INT_EQ(f.last_id, 2);
    ASSERT_STR_EQ(f.last_addr, "127.0.0.2:2377");
    /* The change is in flight: later passes start nothing. */
    uv_run(&f.loop, UV_RUN_ONCE);
    ASSERT_INT_EQ(f.n_adds, 1);
    /* Done: the next pass adds the other one. */
    voter_add(&f, 2);
    change_done(&f, 0);
    for (int i = 0; i < 10 && f.n_adds < 2; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_INT_EQ(f.n_adds, 2);
    ASSERT_INT_EQ(f.last_id, 3);
    voter_add(&f, 3);
    change_done(&f, 0);
    run_passes(&f, 3);
    ASSERT_INT_EQ(f.n_adds + f.n_removes + f.n_proposed, 2);
    ASSERT_INT_EQ(close_and_teardown(&f, rm), 0);
}

TEST(voter_removed_only_while_a_reachable_majority_remains)
{
    struct fake f;
    ASSERT(fake_setup(&f) == 0);
    /* Voters 1, 2, 3; m3's Node is gone (demoted and removed). m2 does not
     * answer: removing 3 would leave 2 voters with 1 reachable. */
    node_put(f.env.store, 2, "m2", SWARM__NODE_ROLE__NODE_ROLE_MANAGER,
             SWARM__NODE_ROLE__NODE_ROLE_MANAGER, 2);
    voter_add(&f, 2);
    voter_add(&f, 3);
    struct rolemgr *rm = fake_rolemgr(&f);
    ASSERT(rm != NULL);
    rolemgr_start(rm);
    run_passes(&f, 3);
    ASSERT_INT_EQ(f.n_removes, 0);
    /* m2 answers again: 2 voters left, both reachable. */
    f.reachable[1] = "m2";
    for (int i = 0; i < 10 && f.n_removes == 0; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_INT_EQ(f.n_removes, 1);
    ASSERT_INT_EQ(f.last_id, 3);
    change_done(&f, 0);
    ASSERT_INT_EQ(close_and_teardown(&f, rm), 0);
}

TEST(finished_demotion_is_recorded_in_the_node)
{
    struct fake f;
    ASSERT(fake_setup(&f) == 0);
    /* m2 asked to be a worker and is no longer in the configuration. */
    node_put(f.env.store, 2, "m2", SWARM__NODE_ROLE__NODE_ROLE_MANAGER,
             SWARM__NODE_ROLE__NODE_ROLE_WORKER, 2);
    struct rolemgr *rm = fake_rolemgr(&f);
    ASSERT(rm != NULL);
    rolemgr_start(rm);
    run_passes(&f, 3);
    ASSERT_INT_EQ(f.n_adds, 0);
    ASSERT_INT_EQ(f.n_proposed, 1);
    ASSERT_STR_EQ(f.last_node, "m2");
    ASSERT_INT_EQ(f.last_role, SWARM__NODE_ROLE__NODE_ROLE_WORKER);
    /* Close waits for the proposal (close after drain). */
    rolemgr_close(rm, closed_cb, &f);
    run_passes(&f, 5);
    ASSERT(!f.closed);
    menv_propose_cb cb = f.propose_cb;
    struct store_result res = {.status = 0, .action_index = -1};
    cb(SWARM_ECANCELED, &res, f.cb_data);
    ASSERT(f.closed);
    store_close(f.env.store);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(uv_loop_close(&f.loop), 0);
}

TEST(follower_changes_nothing)
{
    struct fake f;
    ASSERT(fake_setup(&f) == 0);
    node_put(f.env.store, 2, "m2", SWARM__NODE_ROLE__NODE_ROLE_MANAGER,
             SWARM__NODE_ROLE__NODE_ROLE_MANAGER, 2);
    f.leader = false;
    struct rolemgr *rm = fake_rolemgr(&f);
    ASSERT(rm != NULL);
    rolemgr_start(rm);
    run_passes(&f, 3);
    ASSERT_INT_EQ(f.n_adds + f.n_removes + f.n_proposed, 0);
    ASSERT_INT_EQ(close_and_teardown(&f, rm), 0);
}

TEST(close_waits_for_the_membership_change)
{
    struct fake f;
    ASSERT(fake_setup(&f) == 0);
    node_put(f.env.store, 2, "m2", SWARM__NODE_ROLE__NODE_ROLE_MANAGER,
             SWARM__NODE_ROLE__NODE_ROLE_MANAGER, 2);
    struct rolemgr *rm = fake_rolemgr(&f);
    ASSERT(rm != NULL);
    rolemgr_start(rm);
    run_passes(&f, 3);
    ASSERT_INT_EQ(f.n_adds, 1);
    rolemgr_close(rm, closed_cb, &f);
    run_passes(&f, 5);
    ASSERT(!f.closed); /* the timer closed, the change has not called back */
    change_done(&f, SWARM_ENOTLEADER); /* raft closing fails it */
    ASSERT(f.closed);
    store_close(f.env.store);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(uv_loop_close(&f.loop), 0);
}

TEST_MAIN()
