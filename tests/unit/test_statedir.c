/* The state dir's mode and owner: what is refused, tightened, accepted; and
 * statedir_prepare acting on a real dir; the recursive removal and the erase
 * of the swarm's files by part. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "statedir.h"
#include "test.h"

#define DIRMODE(m) (S_IFDIR | (m))

TEST(judge_modes_and_owner)
{
    char err[SWARM_ERRMSG_SIZE] = "";
    ASSERT_INT_EQ(statedir_judge("/s", DIRMODE(0700), 0, 0, err), STATEDIR_OK);
    ASSERT_INT_EQ(statedir_judge("/s", DIRMODE(0500), 0, 0, err), STATEDIR_OK);
    ASSERT_INT_EQ(statedir_judge("/s", DIRMODE(0755), 0, 0, err), STATEDIR_TIGHTEN);
    ASSERT_INT_EQ(statedir_judge("/s", DIRMODE(0750), 0, 0, err), STATEDIR_TIGHTEN);
    ASSERT_INT_EQ(statedir_judge("/s", DIRMODE(02700), 0, 0, err), STATEDIR_TIGHTEN);
    ASSERT_INT_EQ(statedir_judge("/s", DIRMODE(0775), 0, 0, err), STATEDIR_REFUSE);
    ASSERT_STR_EQ(err, "state dir /s is writable by group or others (mode 0775); run chmod 700 /s");
    ASSERT_INT_EQ(statedir_judge("/s", DIRMODE(0702), 0, 0, err), STATEDIR_REFUSE);
    ASSERT_INT_EQ(statedir_judge("/s", DIRMODE(01777), 0, 0, err), STATEDIR_REFUSE);
    ASSERT_INT_EQ(statedir_judge("/s", DIRMODE(0700), 65534, 0, err), STATEDIR_REFUSE);
    ASSERT(strstr(err, "owned by uid 65534, not by uid 0") != NULL);
    ASSERT_INT_EQ(statedir_judge("/s", S_IFREG | 0600, 0, 0, err), STATEDIR_REFUSE);
    ASSERT(strstr(err, "not a directory") != NULL);
}

TEST(prepare_creates_tightens_refuses)
{
    char base[64] = "/tmp/test_statedir.XXXXXX", dir[128], file[160], err[SWARM_ERRMSG_SIZE] = "";
    struct stat st;
    FILE *f;
    ASSERT(mkdtemp(base) != NULL);
    snprintf(dir, sizeof dir, "%s/state", base);
    /* Missing: made 0700. */
    ASSERT_INT_EQ(statedir_prepare(dir, err), 0);
    ASSERT_INT_EQ(stat(dir, &st), 0);
    ASSERT_INT_EQ(st.st_mode & 07777, 0700);
    /* 0755 with a 0644 store.db from an older swarmd: both tightened. */
    ASSERT_INT_EQ(chmod(dir, 0755), 0);
    snprintf(file, sizeof file, "%s/store.db", dir);
    f = fopen(file, "w");
    ASSERT(f != NULL);
    fclose(f);
    ASSERT_INT_EQ(chmod(file, 0644), 0);
    ASSERT_INT_EQ(statedir_prepare(dir, err), 0);
    ASSERT_INT_EQ(stat(dir, &st), 0);
    ASSERT_INT_EQ(st.st_mode & 07777, 0700);
    ASSERT_INT_EQ(stat(file, &st), 0);
    ASSERT_INT_EQ(st.st_mode & 07777, 0600);
    /* 0777: refused, and left as it is. */
    ASSERT_INT_EQ(chmod(dir, 0777), 0);
    ASSERT_INT_EQ(statedir_prepare(dir, err), SWARM_EPERM);
    ASSERT(strstr(err, "writable by group or others (mode 0777)") != NULL);
    ASSERT_INT_EQ(stat(dir, &st), 0);
    ASSERT_INT_EQ(st.st_mode & 07777, 0777);
    unlink(file);
    rmdir(dir);
    rmdir(base);
}

/* Create base/rel (a file, or a dir when rel ends with '/'), parents too. */
static int mk(const char *base, const char *rel)
{
    char path[512];
    size_t n = (size_t)snprintf(path, sizeof path, "%s/%s", base, rel);
    for (char *p = path + strlen(base) + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0700) != 0 && access(path, F_OK) != 0) {
                return -1;
            }
            *p = '/';
        }
    }
    if (path[n - 1] == '/') {
        return 0;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fclose(f);
    return 0;
}

static bool there(const char *base, const char *rel)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", base, rel);
    return lstat(path, &st) == 0;
}

TEST(remove_tree_removes_nested_not_symlink_targets)
{
    char base[64] = "/tmp/test_statedir.XXXXXX", tree[128], link[160], target[128];
    ASSERT(mkdtemp(base) != NULL);
    ASSERT_INT_EQ(mk(base, "t/a/b/c/file"), 0);
    ASSERT_INT_EQ(mk(base, "t/a/empty/"), 0);
    ASSERT_INT_EQ(mk(base, "outside/keep"), 0);
    snprintf(tree, sizeof tree, "%s/t", base);
    snprintf(link, sizeof link, "%s/t/a/link", base);
    snprintf(target, sizeof target, "%s/outside", base);
    ASSERT_INT_EQ(symlink(target, link), 0);
    ASSERT_INT_EQ(statedir_remove_tree(tree), 0);
    ASSERT(!there(base, "t"));
    ASSERT(there(base, "outside/keep")); /* the link went, not what it named */
    /* Missing: nothing to do, not an error. */
    ASSERT_INT_EQ(statedir_remove_tree(tree), 0);
    /* A path through a file cannot be walked: an error, with errno. */
    snprintf(tree, sizeof tree, "%s/outside/keep/x", base);
    ASSERT_INT_EQ(statedir_remove_tree(tree), SWARM_EIO);
    ASSERT_INT_EQ(errno, ENOTDIR);
    ASSERT(there(base, "outside/keep"));
    snprintf(tree, sizeof tree, "%s", base);
    ASSERT_INT_EQ(statedir_remove_tree(tree), 0);
    ASSERT_INT_EQ(access(base, F_OK), -1);
}

TEST(erase_removes_only_the_parts_asked)
{
    static const char *const files[] = {
        STATEDIR_NODE_STATE, STATEDIR_ROOT_CA_CERT, STATEDIR_NODE_CERT, STATEDIR_NODE_KEY,
        STATEDIR_RAFT "/metadata1", STATEDIR_STORE, STATEDIR_STORE "-wal",
        STATEDIR_STORE "-shm", STATEDIR_TASKS_DB, "swarmd.sock",
    };
    char base[64] = "/tmp/test_statedir.XXXXXX";
    ASSERT(mkdtemp(base) != NULL);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        ASSERT_INT_EQ(mk(base, files[i]), 0);
    }
    /* A demoted manager: its raft log and store go, its identity stays. */
    ASSERT_INT_EQ(statedir_erase(base, STATEDIR_PART_MANAGER), 0);
    ASSERT(!there(base, "raft"));
    ASSERT(!there(base, "store.db") && !there(base, "store.db-wal") && !there(base, "store.db-shm"));
    ASSERT(there(base, "node-state.pb"));
    ASSERT(there(base, "certificates/swarm-node.key"));
    /* Leaving: the rest of the swarm's state; worker/ and the socket stay. */
    ASSERT_INT_EQ(statedir_erase(base, STATEDIR_PART_SWARM), 0);
    ASSERT(!there(base, "node-state.pb"));
    ASSERT(!there(base, "certificates"));
    ASSERT(there(base, "worker/tasks.db"));
    ASSERT(there(base, "swarmd.sock"));
    ASSERT_INT_EQ(statedir_remove_tree(base), 0);
}

TEST_MAIN()
