/* Unit tests of `swarmctl info`'s swarm part (mgrinfo.h) on an in-memory
 * store: nodes and managers counted, the managers' addresses listed (a
 * worker's not), the cluster spec copied; an empty store fills nothing. */
#include <stdlib.h>
#include <string.h>

#include "fakemenv.h"
#include "mgrinfo.h"
#include "test.h"

#define CREATE SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE

static void add_manager(struct fakemenv *f, uint64_t index, const char *id, const char *addr)
{
    Swarm__Node *n = fakemenv_node(id, SWARM__NODE_STATE__NODE_STATE_READY);
    n->role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    n->manager_status = calloc(1, sizeof *n->manager_status);
    if (n->manager_status == NULL) {
        abort();
    }
    swarm__manager_status__init(n->manager_status);
    n->manager_status->raft_id = index;
    n->manager_status->addr = strdup(addr);
    fakemenv_apply(f, index, CREATE, n);
}

TEST(counts_managers_and_lists_their_addresses)
{
    struct fakemenv f;
    Swarm__InfoResponse info = SWARM__INFO_RESPONSE__INIT;
    ASSERT(fakemenv_init(&f) == 0);
    fakemenv_apply(&f, 1, CREATE, fakemenv_cluster("cluster1", 5000));
    add_manager(&f, 2, "node1", "127.0.0.1:2377");
    add_manager(&f, 3, "node2", "127.0.0.2:2377");
    fakemenv_apply(&f, 4, CREATE, fakemenv_node("worker", SWARM__NODE_STATE__NODE_STATE_READY));
    mgrinfo_fill(f.env.store, &info);
    ASSERT_INT_EQ(info.nodes, 3);
    ASSERT_INT_EQ(info.managers, 2);
    ASSERT_INT_EQ(info.n_manager_addrs, 2);
    bool a = false, b = false;
    for (size_t i = 0; i < info.n_manager_addrs; i++) {
        a |= strcmp(info.manager_addrs[i], "127.0.0.1:2377") == 0;
        b |= strcmp(info.manager_addrs[i], "127.0.0.2:2377") == 0;
    }
    ASSERT(a && b);
    ASSERT(info.cluster_spec != NULL);
    ASSERT_STR_EQ(info.cluster_spec->annotations->name, "default");
    ASSERT_INT_EQ(info.cluster_spec->dispatcher->heartbeat_period_ms, 5000);
    /* The fields it set are the response's (heap), as the handler frees them. */
    for (size_t i = 0; i < info.n_manager_addrs; i++) {
        free(info.manager_addrs[i]);
    }
    free(info.manager_addrs);
    swarm__cluster_spec__free_unpacked(info.cluster_spec, NULL);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(empty_store_fills_no_swarm)
{
    struct fakemenv f;
    Swarm__InfoResponse info = SWARM__INFO_RESPONSE__INIT;
    ASSERT(fakemenv_init(&f) == 0);
    mgrinfo_fill(f.env.store, &info);
    ASSERT_INT_EQ(info.nodes, 0);
    ASSERT_INT_EQ(info.managers, 0);
    ASSERT_INT_EQ(info.n_manager_addrs, 0);
    ASSERT(info.cluster_spec == NULL);
    free(info.manager_addrs);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST_MAIN()
