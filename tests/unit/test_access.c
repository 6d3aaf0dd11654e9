/* Unit tests of access.c's raft peer lookup (access.h) on a hand-made menv
 * (fakemenv.h), without a manager: a manager that just joined knows its
 * peers from the seeds the leader named, until its own store holds its node;
 * after that the store alone decides; a store rebuilt from the raft log is
 * stood in for by the managers the log names until it has replayed the
 * log; and removals close the node's connections (recheck). */
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "err.h"
#include "fakemenv.h"
#include "test.h"

#define CREATE SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE
#define REMOVE SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE

struct rechecks {
    unsigned n;
    char last[64];
};

static void recheck_cb(void *data, const char *node_id)
{
    struct rechecks *r = data;
    r->n++;
    snprintf(r->last, sizeof r->last, "%s", node_id);
}

static Swarm__ManagerPeer *peer_new(const char *node_id, uint64_t raft_id, const char *addr)
{
    Swarm__ManagerPeer *p = calloc(1, sizeof *p);
    if (p == NULL) {
        abort();
    }
    swarm__manager_peer__init(p);
    p->node_id = strdup(node_id);
    p->raft_id = raft_id;
    p->addr = strdup(addr);
    return p;
}

/* A manager node as the store holds it. */
static Swarm__Node *manager_node(const char *id, uint64_t raft_id, const char *addr)
{
    Swarm__Node *n = fakemenv_node(id, SWARM__NODE_STATE__NODE_STATE_READY);
    n->role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    n->spec->desired_role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    n->manager_status = calloc(1, sizeof *n->manager_status);
    if (n->manager_status == NULL) {
        abort();
    }
    swarm__manager_status__init(n->manager_status);
    n->manager_status->raft_id = raft_id;
    n->manager_status->addr = strdup(addr);
    return n;
}

static int make(struct fakemenv *f, struct rechecks *r, Swarm__ManagerPeer **seeds, size_t n,
                struct access **out)
{
    struct access_config cfg = {
        .node_id = "self",
        .cluster_id = "cluster1",
        .seed_peers = seeds,
        .n_seed_peers = n,
        .recheck = recheck_cb,
        .data = r,
    };
    memset(r, 0, sizeof *r);
    return access_new(&f->env, &cfg, out);
}

TEST(seeds_until_caught_up_then_the_store_only)
{
    struct fakemenv f;
    struct rechecks r;
    struct access *a = NULL;
    Swarm__ManagerPeer *seeds[1];
    char addr[64] = "", why[SWARM_ERRMSG_SIZE] = "";
    ASSERT(fakemenv_init(&f) == 0);
    seeds[0] = peer_new("leader", 11, "127.0.0.1:4001");
    ASSERT_INT_EQ(make(&f, &r, seeds, 1, &a), 0);
    swarm__manager_peer__free_unpacked(seeds[0], NULL); /* copied */
    /* Empty store: the seeds answer, and only for the managers they name. */
    ASSERT_INT_EQ(access_raft_peer("leader", addr, sizeof addr, a, why), 11);
    ASSERT_STR_EQ(addr, "127.0.0.1:4001");
    ASSERT_INT_EQ(access_raft_peer("stranger", addr, sizeof addr, a, why), 0);
    ASSERT(strstr(why, "not among the managers named at join") != NULL);
    /* The store catches up (it holds this manager's node) and names the
     * leader at another address: the store wins, the seeds are dropped. */
    fakemenv_apply(&f, 1, CREATE, fakemenv_cluster("cluster1", 1000));
    fakemenv_apply(&f, 2, CREATE, manager_node("leader", 11, "127.0.0.1:4002"));
    fakemenv_apply(&f, 3, CREATE, manager_node("self", 12, "127.0.0.1:4003"));
    ASSERT_INT_EQ(access_raft_peer("leader", addr, sizeof addr, a, why), 11);
    ASSERT_STR_EQ(addr, "127.0.0.1:4002");
    /* Removed from the store: refused. */
    fakemenv_apply(&f, 4, REMOVE, manager_node("leader", 11, "127.0.0.1:4002"));
    ASSERT_INT_EQ(access_raft_peer("leader", addr, sizeof addr, a, why), 0);
    access_close(a, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(log_peers_stand_in_while_the_store_is_behind_the_log)
{
    struct fakemenv f;
    struct rechecks r;
    struct access *a = NULL;
    char addr[64] = "", why[SWARM_ERRMSG_SIZE] = "";
    ASSERT(fakemenv_init(&f) == 0);
    ASSERT_INT_EQ(make(&f, &r, NULL, 0, &a), 0);
    fakemenv_apply(&f, 1, CREATE, fakemenv_cluster("cluster1", 1000));
    /* Unknown to the store, and no log peers: refused. */
    ASSERT_INT_EQ(access_raft_peer("m2", addr, sizeof addr, a, why), 0);
    Swarm__ManagerPeer **peers = calloc(1, sizeof *peers);
    ASSERT(peers != NULL);
    peers[0] = peer_new("m2", 22, "127.0.0.1:4022");
    access_set_log_peers(a, peers, 1, 3); /* the log held index 3 at start */
    ASSERT_INT_EQ(access_raft_peer("m2", addr, sizeof addr, a, why), 22);
    ASSERT_STR_EQ(addr, "127.0.0.1:4022");
    /* Replayed up to the log's end: the store alone decides again. */
    fakemenv_apply(&f, 2, CREATE, fakemenv_node("w1", SWARM__NODE_STATE__NODE_STATE_READY));
    fakemenv_apply(&f, 3, CREATE, fakemenv_node("w2", SWARM__NODE_STATE__NODE_STATE_READY));
    ASSERT_INT_EQ(access_raft_peer("m2", addr, sizeof addr, a, why), 0);
    access_close(a, NULL, NULL);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(removed_and_demoted_nodes_are_rechecked)
{
    struct fakemenv f;
    struct rechecks r;
    struct access *a = NULL;
    ASSERT(fakemenv_init(&f) == 0);
    ASSERT_INT_EQ(make(&f, &r, NULL, 0, &a), 0);
    Swarm__Node *old = manager_node("m2", 22, "127.0.0.1:4022");
    Swarm__Node *new = manager_node("m2", 22, "127.0.0.1:4022");
    struct store_event ev = {.kind = STORE_KIND_NODE, .old_obj = &old->base,
                             .new_obj = &new->base};
    access_on_event(a, &ev); /* nothing lost */
    ASSERT_INT_EQ(r.n, 0);
    new->spec->desired_role = SWARM__NODE_ROLE__NODE_ROLE_WORKER; /* demoted */
    access_on_event(a, &ev);
    ASSERT_INT_EQ(r.n, 1);
    ASSERT_STR_EQ(r.last, "m2");
    ev.new_obj = NULL; /* removed */
    access_on_event(a, &ev);
    ASSERT_INT_EQ(r.n, 2);
    swarm__node__free_unpacked(old, NULL);
    swarm__node__free_unpacked(new, NULL);
    access_close(a, NULL, NULL);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST_MAIN()
