/* The state dir's mode and owner: what is refused, tightened, accepted; and
 * statedir_prepare acting on a real dir. */
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
    char base[64] = "/tmp/test_statedir.XXXXXX", dir[128], file[160], err[256] = "";
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

TEST_MAIN()
