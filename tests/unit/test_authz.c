/* Authorization decisions from the store (daemon/manager/authz.h): a
 * certificate is worth what the store says its node is now. */
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "err.h"
#include "test.h"

struct fixture {
    Swarm__Cluster c;
    Swarm__Node node;
    Swarm__NodeSpec spec;
    Swarm__ManagerStatus ms;
};

static void fixture_init(struct fixture *f, int role, int desired)
{
    swarm__cluster__init(&f->c);
    f->c.id = "cluster1";
    swarm__node__init(&f->node);
    swarm__node_spec__init(&f->spec);
    swarm__manager_status__init(&f->ms);
    f->node.id = "node1";
    f->node.spec = &f->spec;
    f->node.role = role;
    f->spec.desired_role = desired;
    if (role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        f->ms.raft_id = 7;
        f->ms.addr = "127.0.0.1:2377";
        f->node.manager_status = &f->ms;
    }
}

#define MGR SWARM__NODE_ROLE__NODE_ROLE_MANAGER
#define WRK SWARM__NODE_ROLE__NODE_ROLE_WORKER

TEST(manager_cert_of_a_current_manager_is_a_manager)
{
    struct fixture f;
    enum api_role role = 0;
    char why[SWARM_ERRMSG_SIZE];
    fixture_init(&f, MGR, MGR);
    ASSERT_INT_EQ(authz_peer_role(&f.c, &f.node, "node1", "cluster1", API_ROLE_MANAGER, &role,
                                  why), 0);
    ASSERT_INT_EQ(role, API_ROLE_MANAGER);
    /* A worker certificate never grants more, even for a promoted node. */
    ASSERT_INT_EQ(authz_peer_role(&f.c, &f.node, "node1", "cluster1", API_ROLE_WORKER, &role,
                                  why), 0);
    ASSERT_INT_EQ(role, API_ROLE_WORKER);
}

/* Demotion takes manager powers at once: as soon as the desired role says
 * worker (before raft removal and before the node renews). */
TEST(demoted_manager_cert_is_only_a_worker)
{
    struct fixture f;
    enum api_role role = 0;
    char why[SWARM_ERRMSG_SIZE];
    fixture_init(&f, MGR, WRK);
    ASSERT_INT_EQ(authz_peer_role(&f.c, &f.node, "node1", "cluster1", API_ROLE_MANAGER, &role,
                                  why), 0);
    ASSERT_INT_EQ(role, API_ROLE_WORKER);
    fixture_init(&f, WRK, WRK);
    ASSERT_INT_EQ(authz_peer_role(&f.c, &f.node, "node1", "cluster1", API_ROLE_MANAGER, &role,
                                  why), 0);
    ASSERT_INT_EQ(role, API_ROLE_WORKER);
}

TEST(removed_revoked_foreign_and_unready_are_refused)
{
    struct fixture f;
    enum api_role role = 0;
    char why[SWARM_ERRMSG_SIZE];
    fixture_init(&f, WRK, WRK);
    ASSERT_INT_EQ(authz_peer_role(&f.c, NULL, "node1", "cluster1", API_ROLE_WORKER, &role, why),
                  SWARM_EPERM);
    ASSERT(strstr(why, "not a member") != NULL);
    ASSERT_INT_EQ(authz_peer_role(&f.c, &f.node, "node1", "cluster2", API_ROLE_WORKER, &role,
                                  why), SWARM_EPERM);
    ASSERT(strstr(why, "another cluster") != NULL);
    ASSERT_INT_EQ(authz_peer_role(NULL, &f.node, "node1", "cluster1", API_ROLE_WORKER, &role,
                                  why), SWARM_EUNAVAIL);
    /* Revoked: refused even while the store (say, a lagging one) still
     * holds the node. */
    ASSERT_INT_EQ(authz_revoke(&f.c, "node1", 2000, 1000), 0);
    ASSERT_INT_EQ(authz_peer_role(&f.c, &f.node, "node1", "cluster1", API_ROLE_WORKER, &role,
                                  why), SWARM_EPERM);
    ASSERT(strstr(why, "revoked") != NULL);
    for (size_t i = 0; i < f.c.n_revoked_certificates; i++) {
        swarm__revoked_certificate__free_unpacked(f.c.revoked_certificates[i], NULL);
    }
    free(f.c.revoked_certificates);
}

TEST(revoke_keeps_one_entry_per_node_and_drops_expired_ones)
{
    Swarm__Cluster c = SWARM__CLUSTER__INIT;
    c.id = "cluster1";
    ASSERT_INT_EQ(authz_revoke(&c, "a", 100, 10), 0);
    ASSERT_INT_EQ(authz_revoke(&c, "b", 500, 10), 0);
    ASSERT_INT_EQ(authz_revoke(&c, "b", 300, 20), 0); /* keeps the later expiry */
    ASSERT_INT_EQ(c.n_revoked_certificates, 2);
    ASSERT(authz_is_revoked(&c, "a") && authz_is_revoked(&c, "b") && !authz_is_revoked(&c, "x"));
    ASSERT_INT_EQ(authz_revoke(&c, "c", 900, 200), 0); /* a expired at 100 */
    ASSERT_INT_EQ(c.n_revoked_certificates, 2);
    ASSERT(!authz_is_revoked(&c, "a"));
    ASSERT(authz_is_revoked(&c, "b") && authz_is_revoked(&c, "c"));
    for (size_t i = 0; i < c.n_revoked_certificates; i++) {
        if (strcmp(c.revoked_certificates[i]->node_id, "b") == 0) {
            ASSERT_INT_EQ(c.revoked_certificates[i]->expiry_s, 500);
        }
        swarm__revoked_certificate__free_unpacked(c.revoked_certificates[i], NULL);
    }
    free(c.revoked_certificates);
}

TEST(raft_peer_only_a_current_member_with_its_store_address)
{
    struct fixture f;
    uint64_t id = 0;
    const char *addr = NULL;
    char why[SWARM_ERRMSG_SIZE];
    fixture_init(&f, MGR, MGR);
    ASSERT_INT_EQ(authz_raft_peer(&f.c, &f.node, "node1", "cluster1", &id, &addr, why), 0);
    ASSERT_INT_EQ(id, 7);
    ASSERT_STR_EQ(addr, "127.0.0.1:2377");
    /* Demoted (raft removal done): no longer a member. */
    fixture_init(&f, WRK, WRK);
    ASSERT_INT_EQ(authz_raft_peer(&f.c, &f.node, "node1", "cluster1", &id, &addr, why),
                  SWARM_EPERM);
    ASSERT(strstr(why, "not a raft member") != NULL);
    ASSERT_INT_EQ(authz_raft_peer(&f.c, NULL, "node1", "cluster1", &id, &addr, why),
                  SWARM_EPERM);
    ASSERT_INT_EQ(authz_raft_peer(NULL, NULL, "node1", "cluster1", &id, &addr, why),
                  SWARM_EUNAVAIL);
}

TEST(node_lost_manager_on_demotion_removal_from_raft_and_new_raft_id)
{
    struct fixture old, new;
    fixture_init(&old, MGR, MGR);
    fixture_init(&new, MGR, MGR);
    /* Nothing that matters changed (a status update, say). */
    ASSERT(!authz_node_lost_manager(&old.node, &new.node));
    /* Demotion, first step: the desired role goes to worker. */
    new.spec.desired_role = WRK;
    ASSERT(authz_node_lost_manager(&old.node, &new.node));
    /* Second step: raft removed the member, the role follows. */
    fixture_init(&old, MGR, WRK);
    fixture_init(&new, WRK, WRK);
    ASSERT(authz_node_lost_manager(&old.node, &new.node));
    /* A manager that rejoined raft under another id. */
    fixture_init(&old, MGR, MGR);
    fixture_init(&new, MGR, MGR);
    new.ms.raft_id = 8;
    ASSERT(authz_node_lost_manager(&old.node, &new.node));
    /* Promotion is no loss; nor is a worker staying a worker. */
    fixture_init(&old, WRK, WRK);
    fixture_init(&new, WRK, MGR);
    ASSERT(!authz_node_lost_manager(&old.node, &new.node));
    fixture_init(&new, WRK, WRK);
    ASSERT(!authz_node_lost_manager(&old.node, &new.node));
}

TEST_MAIN()
