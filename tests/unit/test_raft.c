/* The raft node on a real loop and a real disk (tmp dir): one voter, proposals
 * applied to the store at the right index, business errors reported without
 * stopping raft, snapshots, and a restart that replays the log. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "statedir.h"
#include "err.h"
#include "raftnode.h"
#include "store.h"
#include "test.h"

struct fixture {
    uv_loop_t loop;
    char dir[256];
    char raftdir[300];
    struct store *store;
    struct rnode *node;
    bool leader;
    int done;
    int status;
    struct store_result result;
};

static void leadership_cb(bool leader, void *data)
{
    struct fixture *f = data;
    f->leader = leader;
}

static void propose_cb(int status, const struct store_result *res, void *data)
{
    struct fixture *f = data;
    f->status = status;
    if (res != NULL) {
        f->result = *res;
    }
    f->done++;
}

/* Run the loop until *flag becomes true, at most `ms` of loop time. */
static bool run_until(struct fixture *f, const bool *flag, const int *counter, int want,
                      uint64_t ms)
{
    uint64_t deadline = uv_now(&f->loop) + ms;
    while (uv_now(&f->loop) < deadline) {
        if ((flag != NULL && *flag) || (counter != NULL && *counter >= want)) {
            return true;
        }
        uv_run(&f->loop, UV_RUN_ONCE);
        uv_update_time(&f->loop);
    }
    return (flag != NULL && *flag) || (counter != NULL && *counter >= want);
}

static int open_node(struct fixture *f, bool bootstrap, unsigned snapshot_threshold)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    char path[320];
    struct rnode_config cfg = {
        .id = 1,
        .address = "127.0.0.1:2377",
        .dir = f->raftdir,
        .snapshot_threshold = snapshot_threshold,
        .snapshot_trailing = 4,
    };
    snprintf(path, sizeof path, "%s/store.db", f->dir);
    if (store_open(path, &f->store, errmsg) != 0) {
        return -1;
    }
    if (rnode_new(&f->loop, f->store, &cfg, &f->node, errmsg) != 0) {
        fprintf(stderr, "rnode_new: %s\n", errmsg);
        return -1;
    }
    rnode_set_leadership_cb(f->node, leadership_cb, f);
    if (bootstrap && rnode_bootstrap(f->node, errmsg) != 0) {
        return -1;
    }
    f->leader = false;
    return rnode_start(f->node, errmsg);
}

static void closed_cb(void *data)
{
    int *flag = data;
    *flag = 1;
}

static void close_node(struct fixture *f)
{
    int closed = 0;
    rnode_close(f->node, closed_cb, &closed);
    run_until(f, NULL, &closed, 1, 5000);
    store_close(f->store);
}

static void fixture_setup(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    snprintf(f->dir, sizeof f->dir, "/tmp/swarm-test-raft-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        abort();
    }
    snprintf(f->raftdir, sizeof f->raftdir, "%s/raft", f->dir);
    mkdir(f->raftdir, 0700);
}

static int fixture_teardown(struct fixture *f)
{
    statedir_remove_tree(f->dir);
    return uv_loop_close(&f->loop);
}

/* A case on a fixture: set up before; after (passed or failed) its dir is
 * removed and uv_loop_close must return 0. */
static void raft_fx_setup(struct fixture *f)
{
    fixture_setup(f);
}

static void raft_fx_teardown(struct fixture *f)
{
    ASSERT_INT_EQ(fixture_teardown(f), 0);
}

#define RAFT_TEST(tname) TEST_F(tname, struct fixture, raft_fx_setup, raft_fx_teardown)

/* A command creating service `name` with id `id`. */
static int propose_service(struct fixture *f, const char *id, const char *name)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
    Swarm__StoreAction *actions[1] = {&action};
    Swarm__Service svc = SWARM__SERVICE__INIT;
    Swarm__ServiceSpec spec = SWARM__SERVICE_SPEC__INIT;
    Swarm__Annotations ann = SWARM__ANNOTATIONS__INIT;
    ann.name = (char *)name;
    spec.annotations = &ann;
    svc.id = (char *)id;
    svc.spec = &spec;
    action.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE;
    action.target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
    action.service = &svc;
    cmd.n_actions = 1;
    cmd.actions = actions;
    cmd.timestamp = 1700000000000;
    return rnode_propose(f->node, &cmd, propose_cb, f);
}

TEST(entry_encoding_pads_to_8)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    struct raft_buffer buf;
    const uint8_t *payload;
    size_t len;
    uint32_t type;
    cmd.timestamp = 12345;
    ASSERT_INT_EQ(rnode_encode_command(&cmd, &buf), 0);
    ASSERT_INT_EQ(buf.len % 8, 0);
    ASSERT_INT_EQ(rnode_decode_entry(&buf, &type, &payload, &len), 0);
    ASSERT_INT_EQ(type, RNODE_ENTRY_STORE_COMMAND);
    ASSERT_INT_EQ(len, swarm__store_command__get_packed_size(&cmd));
    /* A length that overruns the buffer is corrupt, not a crash. */
    ((uint8_t *)buf.base)[0] = 0xff;
    ASSERT_INT_EQ(rnode_decode_entry(&buf, &type, &payload, &len), SWARM_ECORRUPT);
    raft_free(buf.base);
}

RAFT_TEST(single_voter_applies_at_raft_index)
{
    Swarm__Service *svc = NULL;
    uint64_t first_index;
    ASSERT_INT_EQ(open_node(f, true, 0), 0);
    ASSERT(run_until(f, &f->leader, NULL, 0, 5000));
    ASSERT(rnode_is_leader(f->node));
    ASSERT_STR_EQ(rnode_state_name(f->node), "leader");

    ASSERT_INT_EQ(propose_service(f, "aaaaaaaaaaaaaaaaaaaaaaaaa", "web"), 0);
    ASSERT(run_until(f, NULL, &f->done, 1, 5000));
    ASSERT_INT_EQ(f->status, 0);
    ASSERT_INT_EQ(f->result.status, 0);
    first_index = store_last_index(f->store);
    /* The object's version is the raft index of the entry that made it. */
    ASSERT_INT_EQ(store_service_get(f->store, "aaaaaaaaaaaaaaaaaaaaaaaaa", &svc), 0);
    ASSERT_INT_EQ(svc->meta->version, first_index);
    ASSERT_INT_EQ(svc->meta->version, rnode_raft_testonly(f->node)->last_applied);
    swarm__service__free_unpacked(svc, NULL);

    /* A business error comes back in the result; raft keeps going. */
    ASSERT_INT_EQ(propose_service(f, "bbbbbbbbbbbbbbbbbbbbbbbbb", "web"), 0);
    ASSERT(run_until(f, NULL, &f->done, 2, 5000));
    ASSERT_INT_EQ(f->status, 0);
    ASSERT_INT_EQ(f->result.status, SWARM_EEXIST);
    ASSERT_INT_EQ(propose_service(f, "ccccccccccccccccccccccccc", "api"), 0);
    ASSERT(run_until(f, NULL, &f->done, 3, 5000));
    ASSERT_INT_EQ(f->result.status, 0);
    ASSERT_INT_EQ(store_last_index(f->store), first_index + 2);
    close_node(f);
}

RAFT_TEST(restart_replays_log_and_snapshots)
{
    Swarm__Service **list = NULL;
    size_t n = 0;
    char id[32], name[32];
    /* Snapshot every 8 entries so the restart goes through restore too. */
    ASSERT_INT_EQ(open_node(f, true, 8), 0);
    ASSERT(run_until(f, &f->leader, NULL, 0, 5000));
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "%025d", i + 1);
        snprintf(name, sizeof name, "svc%02d", i);
        ASSERT_INT_EQ(propose_service(f, id, name), 0);
    }
    ASSERT(run_until(f, NULL, &f->done, 20, 10000));
    ASSERT_INT_EQ(f->result.status, 0);
    close_node(f);

    /* Same dir, no bootstrap: the same state comes back and we lead again. */
    f->done = 0;
    ASSERT_INT_EQ(open_node(f, false, 8), 0);
    ASSERT(run_until(f, &f->leader, NULL, 0, 5000));
    ASSERT_INT_EQ(store_service_list(f->store, &list, &n), 0);
    ASSERT_INT_EQ(n, 20);
    store_service_free_list(list, n);
    snprintf(id, sizeof id, "%025d", 99);
    ASSERT_INT_EQ(propose_service(f, id, "after-restart"), 0);
    ASSERT(run_until(f, NULL, &f->done, 1, 5000));
    ASSERT_INT_EQ(f->result.status, 0);
    close_node(f);
}

/* A store file that is ahead of the raft log (copied from elsewhere, or the
 * raft dir replaced) is not trusted: emptied at start and rebuilt from the
 * log, not left to make raft skip the entries it "already has". A store
 * that was deleted is rebuilt the same way. */
RAFT_TEST(store_ahead_of_log_is_rebuilt)
{
    Swarm__Service **list = NULL;
    Swarm__Service *svc = NULL;
    char id[32], name[32], path[320], errmsg[SWARM_ERRMSG_SIZE];
    size_t n = 0;
    ASSERT_INT_EQ(open_node(f, true, 0), 0);
    ASSERT(run_until(f, &f->leader, NULL, 0, 5000));
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "%025d", i + 1);
        snprintf(name, sizeof name, "svc%02d", i);
        ASSERT_INT_EQ(propose_service(f, id, name), 0);
    }
    ASSERT(run_until(f, NULL, &f->done, 5, 10000));
    close_node(f);

    /* Someone else's store, far ahead: one foreign service at index 1000. */
    snprintf(path, sizeof path, "%s/store.db", f->dir);
    ASSERT_INT_EQ(store_open(path, &f->store, errmsg), 0);
    ASSERT_INT_EQ(store_reset(f->store, errmsg), 0);
    {
        Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
        Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
        Swarm__StoreAction *actions[1] = {&action};
        Swarm__Service alien = SWARM__SERVICE__INIT;
        Swarm__ServiceSpec spec = SWARM__SERVICE_SPEC__INIT;
        Swarm__Annotations ann = SWARM__ANNOTATIONS__INIT;
        ann.name = "alien";
        spec.annotations = &ann;
        alien.id = "zzzzzzzzzzzzzzzzzzzzzzzzz";
        alien.spec = &spec;
        action.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE;
        action.target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
        action.service = &alien;
        cmd.n_actions = 1;
        cmd.actions = actions;
        ASSERT_INT_EQ(store_apply(f->store, 1000, &cmd, NULL), 0);
    }
    store_close(f->store);

    f->done = 0;
    ASSERT_INT_EQ(open_node(f, false, 0), 0);
    ASSERT(store_last_index(f->store) < 1000);
    ASSERT(run_until(f, &f->leader, NULL, 0, 5000));
    ASSERT_INT_EQ(store_service_list(f->store, &list, &n), 0);
    store_service_free_list(list, n);
    ASSERT_INT_EQ(n, 5);
    ASSERT_INT_EQ(store_service_get(f->store, "zzzzzzzzzzzzzzzzzzzzzzzzz", &svc), SWARM_ENOTFOUND);
    close_node(f);

    /* Deleted: the log alone gives the same five back. */
    unlink(path);
    ASSERT_INT_EQ(open_node(f, false, 0), 0);
    ASSERT(run_until(f, &f->leader, NULL, 0, 5000));
    ASSERT_INT_EQ(store_service_list(f->store, &list, &n), 0);
    store_service_free_list(list, n);
    ASSERT_INT_EQ(n, 5);
    close_node(f);
}

TEST_MAIN()
