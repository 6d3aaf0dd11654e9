/* Unit tests of self-registration (selfreg.h) on the hand-made menv
 * (fakemenv.h) and a raft membership the test writes: swarm init's first
 * command is proposed once, when raft first makes the manager leader, and
 * its outcome reaches the owner; after --force-new-cluster the managers
 * left out of the raft group are detached (raft id 0, Unreachable), once
 * per leadership, and retried after a failure; a follower or a manager
 * that was not forced proposes nothing; close waits for the proposal in
 * flight and reports nothing more to the owner. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fakemenv.h"
#include "selfreg.h"
#include "store.h"
#include "test.h"

#define CREATE SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE
#define UNREACHABLE SWARM__REACHABILITY__REACHABILITY_UNREACHABLE

struct owner {
    struct raft_server servers[3];
    struct raft_configuration conf;
    unsigned n_bootstrapped;
    int last_status;
    char last_why[128];
    int answer; /* what bootstrapped returns */
};

static const struct raft_configuration *owner_members(void *impl)
{
    return &((struct owner *)impl)->conf;
}

static int owner_bootstrapped(void *impl, int status, const char *why)
{
    struct owner *o = impl;
    o->n_bootstrapped++;
    o->last_status = status;
    snprintf(o->last_why, sizeof o->last_why, "%s", why != NULL ? why : "");
    return status != 0 ? status : o->answer;
}

/* A manager Node with raft id `raft` (0: none). */
static void add_manager(struct fakemenv *f, uint64_t index, const char *id, uint64_t raft)
{
    Swarm__Node *n = fakemenv_node(id, SWARM__NODE_STATE__NODE_STATE_READY);
    n->role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    n->manager_status = calloc(1, sizeof *n->manager_status);
    if (n->manager_status == NULL) {
        abort();
    }
    swarm__manager_status__init(n->manager_status);
    n->manager_status->raft_id = raft;
    n->manager_status->addr = strdup("127.0.0.1:2377");
    n->manager_status->reachability = SWARM__REACHABILITY__REACHABILITY_REACHABLE;
    fakemenv_apply(f, index, CREATE, n);
}

/* The store after --force-new-cluster on manager 1: managers 2 and 3 were
 * left out of the one-member raft group, a worker has no manager status. */
static int setup_forced(struct fakemenv *f, struct owner *o)
{
    if (fakemenv_init(f) != 0) {
        return -1;
    }
    memset(o, 0, sizeof *o);
    o->servers[0].id = 1;
    o->conf.servers = o->servers;
    o->conf.n = 1;
    add_manager(f, 1, "node1", 1);
    add_manager(f, 2, "node2", 2);
    add_manager(f, 3, "node3", 3);
    fakemenv_apply(f, 4, CREATE, fakemenv_node("worker", SWARM__NODE_STATE__NODE_STATE_READY));
    return 0;
}

static struct selfreg *new_selfreg(struct fakemenv *f, struct owner *o, bool forced,
                                   Swarm__StoreCommand **boot)
{
    const struct selfreg_config cfg = {
        .raft_id = 1,
        .forced = forced,
        .raft_members = owner_members,
        .bootstrapped = owner_bootstrapped,
        .impl = o,
    };
    return selfreg_new(&f->env, &cfg, boot);
}

/* The detached node IDs of the last proposal, sorted as proposed. */
static bool proposal_detaches(const struct fakemenv *f, const char *a, const char *b)
{
    const Swarm__StoreCommand *c = f->last;
    if (c == NULL || c->n_actions != 2) {
        return false;
    }
    for (size_t i = 0; i < 2; i++) {
        const Swarm__Node *n = c->actions[i]->node;
        if (c->actions[i]->kind != SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE || n == NULL ||
            n->manager_status == NULL || n->manager_status->raft_id != 0 ||
            n->manager_status->reachability != UNREACHABLE) {
            return false;
        }
    }
    return strcmp(c->actions[0]->node->id, a) == 0 && strcmp(c->actions[1]->node->id, b) == 0;
}

TEST(forced_leader_detaches_lost_managers_once)
{
    struct fakemenv f;
    struct owner o;
    ASSERT(setup_forced(&f, &o) == 0);
    struct selfreg *s = new_selfreg(&f, &o, true, NULL);
    ASSERT(s != NULL);
    f.leader = true;
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(f.n_proposed, 1);
    ASSERT(proposal_detaches(&f, "node2", "node3"));
    ASSERT_INT_EQ(fakemenv_complete(&f, 0), 0);
    /* Still leading (raft repeats itself): nothing more. */
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(f.n_proposed, 1);
    ASSERT_INT_EQ(o.n_bootstrapped, 0);
    selfreg_close(s, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(forced_keeps_managers_still_in_raft)
{
    struct fakemenv f;
    struct owner o;
    ASSERT(setup_forced(&f, &o) == 0);
    /* Manager 2 is in raft's membership: only 3 is detached. */
    o.servers[1].id = 2;
    o.conf.n = 2;
    struct selfreg *s = new_selfreg(&f, &o, true, NULL);
    ASSERT(s != NULL);
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(f.n_proposed, 1);
    ASSERT_INT_EQ(f.last->n_actions, 1);
    ASSERT_STR_EQ(f.last->actions[0]->node->id, "node3");
    ASSERT_INT_EQ(f.last->actions[0]->node->manager_status->raft_id, 0);
    ASSERT_INT_EQ(fakemenv_complete(&f, 0), 0);
    selfreg_close(s, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(forced_failure_is_retried_at_next_leadership)
{
    struct fakemenv f;
    struct owner o;
    ASSERT(setup_forced(&f, &o) == 0);
    struct selfreg *s = new_selfreg(&f, &o, true, NULL);
    ASSERT(s != NULL);
    /* Refused at once (leadership already gone): nothing in flight. */
    f.propose_rv = SWARM_ENOTLEADER;
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(f.n_proposed, 0);
    f.propose_rv = 0;
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(f.n_proposed, 1);
    /* Committed but lost: retried when leading again. */
    ASSERT_INT_EQ(fakemenv_complete(&f, SWARM_ENOTLEADER), 0);
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(f.n_proposed, 2);
    ASSERT(proposal_detaches(&f, "node2", "node3"));
    ASSERT_INT_EQ(fakemenv_complete(&f, 0), 0);
    /* Leadership lost and won back: checked again. */
    selfreg_set_leader(s, false);
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(f.n_proposed, 3);
    ASSERT_INT_EQ(fakemenv_complete(&f, 0), 0);
    selfreg_close(s, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(not_forced_or_follower_proposes_nothing)
{
    struct fakemenv f;
    struct owner o;
    ASSERT(setup_forced(&f, &o) == 0);
    struct selfreg *s = new_selfreg(&f, &o, false, NULL);
    struct selfreg *forced = new_selfreg(&f, &o, true, NULL);
    ASSERT(s != NULL && forced != NULL);
    selfreg_set_leader(s, true);
    selfreg_set_leader(forced, false);
    ASSERT_INT_EQ(f.n_proposed, 0);
    ASSERT_INT_EQ(o.n_bootstrapped, 0);
    selfreg_close(s, fakemenv_closed_cb, &f);
    selfreg_close(forced, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 2);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

static Swarm__StoreCommand *boot_cmd(void)
{
    Swarm__StoreCommand *c = calloc(1, sizeof *c);
    Swarm__StoreAction *a = calloc(1, sizeof *a);
    if (c == NULL || a == NULL) {
        abort();
    }
    swarm__store_command__init(c);
    swarm__store_action__init(a);
    a->kind = CREATE;
    a->target_case = SWARM__STORE_ACTION__TARGET_CLUSTER;
    a->cluster = fakemenv_cluster("cluster1", 5000);
    c->actions = calloc(1, sizeof *c->actions);
    if (c->actions == NULL) {
        abort();
    }
    c->actions[0] = a;
    c->n_actions = 1;
    return c;
}

TEST(init_proposes_first_command_once_when_leading)
{
    struct fakemenv f;
    struct owner o;
    ASSERT(fakemenv_init(&f) == 0);
    memset(&o, 0, sizeof o);
    Swarm__StoreCommand *boot = boot_cmd();
    struct selfreg *s = new_selfreg(&f, &o, false, &boot);
    ASSERT(s != NULL);
    ASSERT(boot == NULL); /* taken */
    selfreg_set_leader(s, false);
    ASSERT_INT_EQ(f.n_proposed, 0);
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(f.n_proposed, 1);
    ASSERT_INT_EQ(f.last->n_actions, 1);
    ASSERT_STR_EQ(f.last->actions[0]->cluster->id, "cluster1");
    /* Leadership flaps before the commit: proposed once all the same. */
    selfreg_set_leader(s, false);
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(f.n_proposed, 1);
    ASSERT_INT_EQ(o.n_bootstrapped, 0);
    ASSERT_INT_EQ(fakemenv_complete(&f, 0), 0);
    ASSERT_INT_EQ(o.n_bootstrapped, 1);
    ASSERT_INT_EQ(o.last_status, 0);
    selfreg_close(s, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(init_failures_reach_the_owner)
{
    struct fakemenv f;
    struct owner o;
    ASSERT(fakemenv_init(&f) == 0);
    memset(&o, 0, sizeof o);
    /* Refused at once. */
    Swarm__StoreCommand *boot = boot_cmd();
    struct selfreg *s = new_selfreg(&f, &o, false, &boot);
    ASSERT(s != NULL);
    f.propose_rv = SWARM_ENOTLEADER;
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(o.n_bootstrapped, 1);
    ASSERT_INT_EQ(o.last_status, SWARM_ENOTLEADER);
    ASSERT_STR_EQ(o.last_why, "could not propose the first raft entry");
    selfreg_close(s, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 1);
    /* Not committed. */
    f.propose_rv = 0;
    boot = boot_cmd();
    s = new_selfreg(&f, &o, false, &boot);
    ASSERT(s != NULL);
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(fakemenv_complete(&f, SWARM_ENOTLEADER), 0);
    ASSERT_INT_EQ(o.n_bootstrapped, 2);
    ASSERT_INT_EQ(o.last_status, SWARM_ENOTLEADER);
    ASSERT_STR_EQ(o.last_why, "the first raft entry was not committed");
    selfreg_close(s, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 2);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(close_waits_for_first_command_and_reports_nothing)
{
    struct fakemenv f;
    struct owner o;
    ASSERT(fakemenv_init(&f) == 0);
    memset(&o, 0, sizeof o);
    Swarm__StoreCommand *boot = boot_cmd();
    struct selfreg *s = new_selfreg(&f, &o, false, &boot);
    ASSERT(s != NULL);
    selfreg_set_leader(s, true);
    ASSERT_INT_EQ(f.n_proposed, 1);
    selfreg_close(s, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 0); /* in flight */
    /* Raft closing fails it: freed, the owner (closing) hears nothing. */
    ASSERT_INT_EQ(fakemenv_complete(&f, SWARM_ECANCELED), 0);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(o.n_bootstrapped, 0);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST(close_before_leading_frees_unproposed_command)
{
    struct fakemenv f;
    struct owner o;
    ASSERT(fakemenv_init(&f) == 0);
    memset(&o, 0, sizeof o);
    Swarm__StoreCommand *boot = boot_cmd();
    struct selfreg *s = new_selfreg(&f, &o, false, &boot);
    ASSERT(s != NULL);
    selfreg_close(s, fakemenv_closed_cb, &f);
    ASSERT_INT_EQ(f.n_closed, 1);
    ASSERT_INT_EQ(f.n_proposed, 0);
    ASSERT_INT_EQ(fakemenv_close(&f), 0);
}

TEST_MAIN()
