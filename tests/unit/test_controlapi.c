/* Unit tests of what the Control module adds to nodes read from the store
 * (controlapi_decorate_node) on the shared fake menv (fakemenv.h) and a fake
 * raft view: the leader flag, the peers' reachability, and the rule that a
 * manager that does not lead shows every other node's status as unknown
 * (a dead node must never show Ready from a stale store). Also that the
 * module is built and closed without a manager. */
#include <stdlib.h>
#include <string.h>

#include "controlapi.h"
#include "fakemenv.h"
#include "test.h"

struct view {
    raft_id leader;
    Swarm__Reachability reach; /* of every other node */
};

static raft_id view_leader(void *impl)
{
    return ((struct view *)impl)->leader;
}

static const struct raft_configuration *view_members(void *impl)
{
    static const struct raft_configuration none = {0};
    return &none;
}

static Swarm__Reachability view_reach(void *impl, const char *node_id)
{
    if (strcmp(node_id, "self") == 0) {
        return SWARM__REACHABILITY__REACHABILITY_REACHABLE;
    }
    return ((struct view *)impl)->reach;
}

static X509 *view_root(void *impl)
{
    return NULL;
}

/* A Ready manager node `id` with raft id `raft`. */
static void node_init(Swarm__Node *n, Swarm__NodeStatus *st, Swarm__ManagerStatus *ms,
                      const char *id, raft_id raft)
{
    swarm__node__init(n);
    swarm__node_status__init(st);
    swarm__manager_status__init(ms);
    n->id = (char *)id;
    st->state = SWARM__NODE_STATE__NODE_STATE_READY;
    n->status = st;
    ms->raft_id = raft;
    n->manager_status = ms;
}

static struct controlapi *control_new(struct fakemenv *f, struct view *v)
{
    const struct controlapi_config cfg = {
        .node_id = "self",
        .leader_id = view_leader,
        .raft_members = view_members,
        .reachability = view_reach,
        .root_cert = view_root,
        .impl = v,
    };
    return controlapi_new(&f->env, &cfg);
}

TEST(leader_sees_live_status_leader_flag_and_reachability)
{
    struct fakemenv f;
    struct view v = {.leader = 1, .reach = SWARM__REACHABILITY__REACHABILITY_UNREACHABLE};
    Swarm__Node self, other;
    Swarm__NodeStatus s1, s2;
    Swarm__ManagerStatus m1, m2;
    ASSERT(fakemenv_init(&f) == 0);
    f.leader = true;
    struct controlapi *ctl = control_new(&f, &v);
    ASSERT(ctl != NULL);
    node_init(&self, &s1, &m1, "self", 1);
    node_init(&other, &s2, &m2, "other", 2);
    controlapi_decorate_node(ctl, &self);
    controlapi_decorate_node(ctl, &other);
    ASSERT(m1.leader && !m2.leader);
    ASSERT_INT_EQ(m1.reachability, SWARM__REACHABILITY__REACHABILITY_REACHABLE);
    ASSERT_INT_EQ(m2.reachability, SWARM__REACHABILITY__REACHABILITY_UNREACHABLE);
    /* The leader's store is current: statuses are kept. */
    ASSERT_INT_EQ(s2.state, SWARM__NODE_STATE__NODE_STATE_READY);
    controlapi_close(ctl, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 1); /* nothing in flight: freed at once */
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(follower_marks_other_nodes_unknown)
{
    struct fakemenv f;
    struct view v = {.leader = 0, .reach = SWARM__REACHABILITY__REACHABILITY_REACHABLE};
    Swarm__Node self, other;
    Swarm__NodeStatus s1, s2;
    Swarm__ManagerStatus m1, m2;
    ASSERT(fakemenv_init(&f) == 0);
    f.leader = false;
    struct controlapi *ctl = control_new(&f, &v);
    ASSERT(ctl != NULL);
    node_init(&self, &s1, &m1, "self", 1);
    node_init(&other, &s2, &m2, "other", 2);
    controlapi_decorate_node(ctl, &self);
    controlapi_decorate_node(ctl, &other);
    ASSERT_INT_EQ(s1.state, SWARM__NODE_STATE__NODE_STATE_READY);
    ASSERT_INT_EQ(s2.state, SWARM__NODE_STATE__NODE_STATE_UNKNOWN);
    /* No leader known: nobody carries the flag. */
    ASSERT(!m1.leader && !m2.leader);
    controlapi_close(ctl, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST_MAIN()
