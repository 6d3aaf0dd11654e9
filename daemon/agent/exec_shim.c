/* The process executor's operating-system side, free of libuv: the shim
 * that runs between swarmd and a task's program, program lookup, /proc
 * reading, cgroup v2 limits, and killing a previous run's leftovers.
 *
 * Shim happy path: swarmd spawns itself as `swarmd --task-exec PROGRAM ARGV0
 * ARG...` in a new session; the shim asks for SIGKILL when its parent dies
 * (PR_SET_PDEATHSIG survives exec), checks the parent is still the one that
 * spawned it (SWARM_SHIM_PPID), joins the task's cgroup (SWARM_SHIM_CGROUP),
 * removes those two variables and execs PROGRAM in place, keeping its pid.
 * Failure paths: parent already gone -> exit 137 without running anything;
 * cgroup join fails -> a warning on the task's stderr, runs without limits;
 * exec fails -> the reason on stderr, exit 127. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor_int.h"
#include "log.h"

#define CGROUP_ROOT_DEFAULT "/sys/fs/cgroup"

int executor_shim_main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[1], "--task-exec") != 0) {
        fprintf(stderr, "usage: %s --task-exec PROGRAM ARGV0 [ARG...]\n", argv[0]);
        return 2;
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        fprintf(stderr, "swarmd: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
    }
    const char *ppid = getenv("SWARM_SHIM_PPID");
    if (ppid != NULL && atoi(ppid) != (int)getppid()) {
        return 137; /* swarmd died before we could ask to die with it */
    }
    const char *cg = getenv("SWARM_SHIM_CGROUP");
    if (cg != NULL && cg[0] != '\0') {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/cgroup.procs", cg);
        FILE *f = fopen(path, "w");
        if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
            fprintf(stderr, "swarmd: joining cgroup %s failed, running without limits\n", cg);
            if (f != NULL) {
                fclose(f);
            }
        }
    }
    unsetenv("SWARM_SHIM_PPID");
    unsetenv("SWARM_SHIM_CGROUP");
    execv(argv[2], argv + 3);
    fprintf(stderr, "swarmd: exec %s: %s\n", argv[2], strerror(errno));
    return 127;
}

static void join_path(char *out, size_t outsz, const char *dir, const char *name)
{
    if (name[0] == '/') {
        snprintf(out, outsz, "%s", name);
    } else {
        snprintf(out, outsz, "%s/%s", dir, name);
    }
}

int exec_lookup_program(const char *image, const char *path_env, const char *cwd,
                        char *out, size_t outsz, char *err, size_t errsz)
{
    struct stat st;
    if (strchr(image, '/') != NULL) {
        join_path(out, outsz, cwd, image);
        if (stat(out, &st) != 0) {
            snprintf(err, errsz, "exec: \"%s\": stat %s: %s", image, image, strerror(errno));
            return -1;
        }
        if (S_ISDIR(st.st_mode)) {
            snprintf(err, errsz, "exec: \"%s\": is a directory", image);
            return -1;
        }
        if (!S_ISREG(st.st_mode) || access(out, X_OK) != 0) {
            snprintf(err, errsz, "exec: \"%s\": permission denied", image);
            return -1;
        }
        return 0;
    }
    const char *p = path_env != NULL ? path_env : "";
    for (;;) {
        const char *end = strchrnul(p, ':');
        char dir[PATH_MAX];
        int n = (int)(end - p);
        if (n == 0) {
            snprintf(dir, sizeof dir, "%s", cwd); /* an empty entry is the cwd */
        } else if (p[0] == '/') {
            snprintf(dir, sizeof dir, "%.*s", n, p);
        } else {
            snprintf(dir, sizeof dir, "%s/%.*s", cwd, n, p);
        }
        snprintf(out, outsz, "%s/%s", dir, image);
        if (image[0] != '\0' && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0) {
            return 0;
        }
        if (*end == '\0') {
            break;
        }
        p = end + 1;
    }
    snprintf(err, errsz, "exec: \"%s\": executable file not found in $PATH", image);
    return -1;
}

unsigned long long exec_proc_starttime(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and ')': skip to the last
     * ')'; then field 3 is the first token, so field 22 is the 20th. */
    char *s = strrchr(buf, ')');
    if (s == NULL) {
        return 0;
    }
    s++;
    for (int field = 3; field < 22; field++) {
        s = strchr(s + 1, ' ');
        if (s == NULL) {
            return 0;
        }
    }
    return strtoull(s + 1, NULL, 10);
}

int exec_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
                return -errno;
            }
            *p = '/';
        }
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        return -errno;
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT) {
        return -errno;
    }
    return 0;
}

int exec_rm_rf(const char *path)
{
    int rv = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (rv < 0 && errno == ENOENT) {
        return 0;
    }
    return rv < 0 ? -errno : rv;
}

static int write_file(const char *dir, const char *name, const char *value)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    ssize_t n = write(fd, value, strlen(value));
    int rv = n < 0 ? -errno : 0;
    close(fd);
    return rv;
}

char *exec_cgroup_setup(const char *tag)
{
    const char *root = getenv("SWARM_CGROUP_ROOT");
    char path[PATH_MAX], base[PATH_MAX];
    if (root == NULL || root[0] == '\0') {
        root = CGROUP_ROOT_DEFAULT;
    }
    snprintf(path, sizeof path, "%s/cgroup.controllers", root);
    if (access(path, R_OK) != 0 || access(root, W_OK) != 0) {
        return NULL;
    }
    snprintf(base, sizeof base, "%s/swarmd-%s", root, tag);
    if (mkdir(base, 0755) != 0 && errno != EEXIST) {
        return NULL;
    }
    /* Controllers must be enabled on the way down; each may be missing. */
    static const char *const ctl[] = {"+memory", "+pids", "+cpu"};
    for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++) {
        (void)write_file(root, "cgroup.subtree_control", ctl[i]);
        (void)write_file(base, "cgroup.subtree_control", ctl[i]);
    }
    return strdup(base);
}

char *exec_cgroup_create(const char *base, const char *task_id, int64_t memory_bytes,
                         int64_t nano_cpus)
{
    char path[PATH_MAX], val[64];
    snprintf(path, sizeof path, "%s/%s", base, task_id);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        log_warn("executor", "task %s: cgroup %s: %s; running without limits", task_id,
                 path, strerror(errno));
        return NULL;
    }
    int rv = 0;
    if (memory_bytes > 0) {
        snprintf(val, sizeof val, "%" PRId64, memory_bytes);
        rv |= write_file(path, "memory.max", val);
    }
    snprintf(val, sizeof val, "%d", EXEC_CGROUP_PIDS_MAX);
    rv |= write_file(path, "pids.max", val);
    if (nano_cpus > 0) {
        int64_t quota = nano_cpus / 10000; /* per 100 ms period */
        snprintf(val, sizeof val, "%" PRId64 " 100000", quota < 1000 ? 1000 : quota);
        rv |= write_file(path, "cpu.max", val);
    }
    if (rv != 0) {
        log_warn("executor", "task %s: some cgroup limits could not be set in %s", task_id,
                 path);
    }
    return strdup(path);
}

void exec_cgroup_remove(const char *path, bool kill_all)
{
    if (kill_all) {
        (void)write_file(path, "cgroup.kill", "1");
        /* The kill is asynchronous: give the kernel a moment to empty it. */
        for (int i = 0; i < 50 && rmdir(path) != 0 && errno == EBUSY; i++) {
            usleep(2000);
        }
        return;
    }
    (void)rmdir(path);
}

/* True if /proc/PID/environ holds `want` ("K=V") as one entry. */
static bool proc_env_has(int pid, const char *want)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && getdelim(&line, &cap, '\0', f) > 0) {
        found = strcmp(line, want) == 0;
    }
    free(line);
    fclose(f);
    return found;
}

int exec_kill_leftover(const char *task_id, int pid, unsigned long long starttime)
{
    if (pid <= 1) {
        return 0;
    }
    if (starttime != 0 && exec_proc_starttime(pid) == starttime) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        return 1;
    }
    /* The leader is gone; its group may live on (a pgid is not reused while
     * the group exists), but only trust members that carry the task's id. */
    char want[256];
    snprintf(want, sizeof want, "SWARM_TASK_ID=%s", task_id);
    int killed = 0;
    DIR *d = opendir("/proc");
    if (d == NULL) {
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int p = atoi(de->d_name);
        if (p > 1 && getpgid(p) == pid && proc_env_has(p, want)) {
            kill(p, SIGKILL);
            killed++;
        }
    }
    closedir(d);
    return killed;
}
