/* See statedir.h. */
#include "statedir.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

enum statedir_verdict statedir_judge(const char *path, mode_t mode, uid_t owner, uid_t euid,
                                     char *errmsg)
{
    if (!S_ISDIR(mode)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "state dir %s is not a directory", path);
        return STATEDIR_REFUSE;
    }
    if (owner != euid) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "state dir %s is owned by uid %u, not by uid %u that runs swarmd; "
                      "run chown %u %s, or use another --state-dir",
                      path, (unsigned)owner, (unsigned)euid, (unsigned)euid, path);
        return STATEDIR_REFUSE;
    }
    if ((mode & (S_IWGRP | S_IWOTH)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "state dir %s is writable by group or others (mode %04o); run chmod 700 %s",
                      path, (unsigned)(mode & 07777), path);
        return STATEDIR_REFUSE;
    }
    return (mode & 07077) != 0 ? STATEDIR_TIGHTEN : STATEDIR_OK;
}

/* What older versions left readable by others: files to 0600, dirs to 0700,
 * in the dir itself and in its certificates/ and raft/ (not the task dirs
 * under worker/: they belong to the tasks). */
static void tighten_entries(const char *dir, int depth)
{
    char path[PATH_MAX];
    struct dirent *e;
    struct stat st;
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0 || st.st_uid != geteuid() ||
            !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISSOCK(st.st_mode))) {
            continue;
        }
        if ((st.st_mode & 077) != 0) {
            mode_t want = st.st_mode & (S_ISDIR(st.st_mode) ? 0700 : 0600);
            if (chmod(path, want) == 0) {
                log_info("swarmd", "tightened %s from %04o to %04o", path,
                         (unsigned)(st.st_mode & 07777), (unsigned)want);
            }
        }
        if (S_ISDIR(st.st_mode) && depth == 0 &&
            (strcmp(e->d_name, STATEDIR_CERTS) == 0 || strcmp(e->d_name, STATEDIR_RAFT) == 0)) {
            tighten_entries(path, depth + 1);
        }
    }
    closedir(d);
}

int statedir_prepare(const char *path, char *errmsg)
{
    struct stat st;
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "state dir %s: %s", path, strerror(errno));
        return SWARM_EIO;
    }
    if (stat(path, &st) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "state dir %s: %s", path, strerror(errno));
        return SWARM_EIO;
    }
    switch (statedir_judge(path, st.st_mode, st.st_uid, geteuid(), errmsg)) {
        case STATEDIR_REFUSE:
            return SWARM_EPERM;
        case STATEDIR_TIGHTEN:
            if (chmod(path, 0700) != 0) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "state dir %s: chmod 700: %s", path,
                              strerror(errno));
                return SWARM_EIO;
            }
            log_info("swarmd", "state dir %s was mode %04o; set to 0700", path,
                     (unsigned)(st.st_mode & 07777));
            break;
        case STATEDIR_OK:
            break;
    }
    tighten_entries(path, 0);
    return 0;
}

/* nftw gives no context pointer: the first failure is kept here (nftw runs
 * on the loop thread only). */
static int remove_first_errno;

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT &&
        remove_first_errno == 0) {
        remove_first_errno = errno;
    }
    return 0; /* keep going: remove what can be removed */
}

int statedir_remove_tree(const char *path)
{
    remove_first_errno = 0;
    if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT &&
        remove_first_errno == 0) {
        remove_first_errno = errno;
    }
    if (remove_first_errno != 0) {
        errno = remove_first_errno;
        return SWARM_EIO;
    }
    return 0;
}

int statedir_erase(const char *dir, unsigned parts)
{
    static const struct {
        unsigned part;
        const char *name;
    } entries[] = {
        {STATEDIR_PART_NODE_STATE, STATEDIR_NODE_STATE},
        {STATEDIR_PART_CERTS, STATEDIR_CERTS},
        {STATEDIR_PART_RAFT, STATEDIR_RAFT},
        {STATEDIR_PART_STORE, STATEDIR_STORE},
        {STATEDIR_PART_STORE, STATEDIR_STORE "-wal"},
        {STATEDIR_PART_STORE, STATEDIR_STORE "-shm"},
    };
    char path[PATH_MAX];
    int rv = 0;
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        if ((parts & entries[i].part) == 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, entries[i].name);
        if (statedir_remove_tree(path) != 0) {
            log_warn("swarmd", "removing %s: %s", path, strerror(errno));
            rv = SWARM_EIO;
        }
    }
    return rv;
}
