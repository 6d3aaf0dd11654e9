/* Unit tests of the first raft entry of a new swarm (bootstrap.h): pure, on
 * a root CA made here. Checks the defaults a partial spec gets (and that
 * what the caller set is kept), the Cluster's root CA and join tokens (both
 * bound to the root's digest, and different), and this manager's Node. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bootstrap.h"
#include "err.h"
#include "pki.h"
#include "test.h"
#include "token.h"

TEST(spec_without_anything_gets_every_default)
{
    Swarm__ClusterSpec *spec = bootstrap_spec_build(NULL);
    ASSERT(spec != NULL);
    ASSERT_STR_EQ(spec->annotations->name, "default");
    ASSERT_INT_EQ(spec->orchestration->task_history_retention_limit, 5);
    ASSERT_INT_EQ(spec->raft->snapshot_interval, 10000);
    ASSERT_INT_EQ(spec->raft->heartbeat_tick, 1);
    ASSERT_INT_EQ(spec->raft->election_tick, 10);
    ASSERT_INT_EQ(spec->raft->tick_ms, 100);
    ASSERT_INT_EQ(spec->dispatcher->heartbeat_period_ms, 1000);
    ASSERT_INT_EQ(spec->ca_config->node_cert_expiry_s, BOOTSTRAP_CERT_EXPIRY_S);
    swarm__cluster_spec__free_unpacked(spec, NULL);
}

TEST(spec_keeps_what_the_caller_set)
{
    Swarm__ClusterSpec given = SWARM__CLUSTER_SPEC__INIT;
    Swarm__Annotations ann = SWARM__ANNOTATIONS__INIT;
    Swarm__DispatcherConfig disp = SWARM__DISPATCHER_CONFIG__INIT;
    ann.name = "prod";
    disp.heartbeat_period_ms = 5000;
    given.annotations = &ann;
    given.dispatcher = &disp;
    Swarm__ClusterSpec *spec = bootstrap_spec_build(&given);
    ASSERT(spec != NULL);
    ASSERT_STR_EQ(spec->annotations->name, "prod");
    ASSERT_INT_EQ(spec->dispatcher->heartbeat_period_ms, 5000);
    /* The rest still gets its defaults, and `given` is untouched. */
    ASSERT_INT_EQ(spec->raft->election_tick, 10);
    ASSERT(given.raft == NULL);
    swarm__cluster_spec__free_unpacked(spec, NULL);
}

TEST(first_entry_holds_the_cluster_and_this_manager)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    EVP_PKEY *key = NULL;
    X509 *root = NULL;
    unsigned char digest[32];
    Swarm__StoreCommand *cmd = NULL;
    Swarm__InitRequest req = SWARM__INIT_REQUEST__INIT;
    Swarm__NodeDescription *desc = calloc(1, sizeof *desc);
    ASSERT(desc != NULL);
    swarm__node_description__init(desc);
    desc->hostname = strdup("host1");
    ASSERT(pki_key_generate(&key, errmsg) == 0);
    ASSERT(pki_root_ca_create(key, (int64_t)time(NULL), PKI_ROOT_LIFETIME_S, &root, errmsg) == 0);
    req.availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
    const struct bootstrap_identity id = {
        .cluster_id = "cccccccccccccccccccccccccc",
        .node_id = "nnnnnnnnnnnnnnnnnnnnnnnnnn",
        .raft_id = 42,
        .advertise_addr = "10.0.0.7:2377",
        .root_cert = root,
        .root_key = key,
        .ingress_id = "iiiiiiiiiiiiiiiiiiiiiiiiii",
    };
    ASSERT_INT_EQ(bootstrap_cmd_build(&id, &req, desc, &cmd), 0);
    ASSERT_INT_EQ(cmd->n_actions, 3);

    const Swarm__Cluster *c = cmd->actions[0]->cluster;
    ASSERT(c != NULL);
    ASSERT_STR_EQ(c->id, id.cluster_id);
    ASSERT_STR_EQ(c->spec->annotations->name, "default");
    ASSERT(c->root_ca->ca_key_pem.len > 0 && c->root_ca->ca_cert_pem.len > 0);
    /* Both tokens name this root and differ (the role is in the secret). */
    struct token_parts w, mgr;
    ASSERT(pki_cert_digest_raw(root, digest) == 0);
    ASSERT(token_parse(c->root_ca->join_tokens->worker, &w, errmsg) == 0);
    ASSERT(token_parse(c->root_ca->join_tokens->manager, &mgr, errmsg) == 0);
    ASSERT(token_matches_ca(&w, digest) && token_matches_ca(&mgr, digest));
    ASSERT(strcmp(c->root_ca->join_tokens->worker, c->root_ca->join_tokens->manager) != 0);

    const Swarm__Node *n = cmd->actions[1]->node;
    ASSERT(n != NULL);
    ASSERT_STR_EQ(n->id, id.node_id);
    ASSERT_INT_EQ(n->role, SWARM__NODE_ROLE__NODE_ROLE_MANAGER);
    ASSERT_INT_EQ(n->spec->desired_role, SWARM__NODE_ROLE__NODE_ROLE_MANAGER);
    ASSERT_INT_EQ(n->spec->availability, SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN);
    ASSERT_INT_EQ(n->status->state, SWARM__NODE_STATE__NODE_STATE_READY);
    ASSERT_STR_EQ(n->status->addr, "10.0.0.7");
    ASSERT_INT_EQ(n->manager_status->raft_id, 42);
    ASSERT_STR_EQ(n->manager_status->addr, "10.0.0.7:2377");
    ASSERT_STR_EQ(n->description->hostname, "host1");

    /* The default pool, and the ingress network as Docker makes it. */
    ASSERT_INT_EQ(c->n_default_address_pool, 1);
    ASSERT_STR_EQ(c->default_address_pool[0], "10.0.0.0/8");
    ASSERT_INT_EQ(c->subnet_size, 24);
    const Swarm__Network *ing = cmd->actions[2]->network;
    ASSERT(ing != NULL);
    ASSERT_STR_EQ(ing->id, id.ingress_id);
    ASSERT_STR_EQ(ing->spec->annotations->name, "ingress");
    ASSERT(ing->spec->ingress);
    ASSERT_STR_EQ(ing->ipam->subnet, "10.0.0.0/24");
    ASSERT_STR_EQ(ing->ipam->gateway, "10.0.0.1");
    ASSERT_INT_EQ(ing->vni, 4097);
    swarm__store_command__free_unpacked(cmd, NULL);

    /* A pool of the user's: ingress takes its first subnet. */
    char *pools[] = {"172.30.0.0/16"};
    req.default_addr_pool = pools;
    req.n_default_addr_pool = 1;
    req.default_addr_pool_mask_length = 26;
    desc = calloc(1, sizeof *desc);
    swarm__node_description__init(desc);
    ASSERT_INT_EQ(bootstrap_cmd_build(&id, &req, desc, &cmd), 0);
    ASSERT_STR_EQ(cmd->actions[0]->cluster->default_address_pool[0], "172.30.0.0/16");
    ASSERT_INT_EQ(cmd->actions[0]->cluster->subnet_size, 26);
    ASSERT_STR_EQ(cmd->actions[2]->network->ipam->subnet, "172.30.0.0/26");
    swarm__store_command__free_unpacked(cmd, NULL);
    X509_free(root);
    EVP_PKEY_free(key);
}

TEST_MAIN()
