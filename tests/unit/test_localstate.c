/* Unit tests of the local state file (localstate.h): what is saved loads
 * back the same, no file means not in a swarm, and a file that does not
 * decode or names no node is refused as corrupt with its path. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "localstate.h"
#include "pki.h"
#include "statedir.h"
#include "test.h"

static void make_dir(char *base)
{
    snprintf(base, 64, "/tmp/test_localstate.XXXXXX");
    if (mkdtemp(base) == NULL) {
        abort();
    }
}

TEST(saved_state_loads_back)
{
    char dir[64], err[SWARM_ERRMSG_SIZE] = "";
    Swarm__LocalState ls = SWARM__LOCAL_STATE__INIT, *got = NULL;
    make_dir(dir);
    ls.node_id = "node1";
    ls.cluster_id = "cluster1";
    ls.role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    ls.raft_id = 42;
    ls.listen_addr = "127.0.0.1:2377";
    ls.advertise_addr = "127.0.0.1:2377";
    ASSERT_INT_EQ(localstate_save(dir, &ls, err), 0);
    ASSERT_INT_EQ(localstate_load(dir, &got, err), 0);
    ASSERT(got != NULL);
    ASSERT_STR_EQ(got->node_id, "node1");
    ASSERT_STR_EQ(got->cluster_id, "cluster1");
    ASSERT_INT_EQ(got->role, SWARM__NODE_ROLE__NODE_ROLE_MANAGER);
    ASSERT_INT_EQ(got->raft_id, 42);
    ASSERT_STR_EQ(got->advertise_addr, "127.0.0.1:2377");
    swarm__local_state__free_unpacked(got, NULL);
    ASSERT_INT_EQ(statedir_remove_tree(dir), 0);
}

TEST(no_file_is_not_in_a_swarm)
{
    char dir[64], err[SWARM_ERRMSG_SIZE] = "";
    Swarm__LocalState *got = (Swarm__LocalState *)&got; /* overwritten */
    make_dir(dir);
    ASSERT_INT_EQ(localstate_load(dir, &got, err), 0);
    ASSERT(got == NULL);
    ASSERT_INT_EQ(statedir_remove_tree(dir), 0);
}

TEST(corrupt_file_is_refused_with_its_path)
{
    char dir[64], path[PATH_MAX], want[PATH_MAX + 16], err[SWARM_ERRMSG_SIZE] = "";
    Swarm__LocalState ls = SWARM__LOCAL_STATE__INIT, *got = NULL;
    make_dir(dir);
    snprintf(path, sizeof path, "%s/%s", dir, STATEDIR_NODE_STATE);
    snprintf(want, sizeof want, "%s is corrupt", path);
    /* Not protobuf. */
    ASSERT_INT_EQ(pki_write_file(path, "\xff\xff\xff", 3, 0600, err), 0);
    ASSERT_INT_EQ(localstate_load(dir, &got, err), SWARM_ECORRUPT);
    ASSERT(got == NULL);
    ASSERT_STR_EQ(err, want);
    /* Decodes, but names no node. */
    ls.node_id = "";
    ls.cluster_id = "cluster1";
    ASSERT_INT_EQ(localstate_save(dir, &ls, err), 0);
    err[0] = '\0';
    ASSERT_INT_EQ(localstate_load(dir, &got, err), SWARM_ECORRUPT);
    ASSERT(got == NULL);
    ASSERT_STR_EQ(err, want);
    ASSERT_INT_EQ(statedir_remove_tree(dir), 0);
}

TEST(save_into_missing_dir_fails_with_message)
{
    char err[SWARM_ERRMSG_SIZE] = "";
    Swarm__LocalState ls = SWARM__LOCAL_STATE__INIT;
    ls.node_id = "node1";
    ASSERT(localstate_save("/nonexistent/swarmd-test", &ls, err) != 0);
    ASSERT(strstr(err, "/nonexistent/swarmd-test/" STATEDIR_NODE_STATE) != NULL);
}

TEST_MAIN()
