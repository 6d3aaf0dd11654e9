/* cgroup v1 limits for tasks of both executors (this machine's kind of
 * host: memory, cpu and pids controllers each in a v1 hierarchy under
 * /sys/fs/cgroup, with at most an empty v2 tree in .../unified).
 *
 * A task's cgroup is CONTROLLER/swarmd-<task id> in each hierarchy:
 *   memory: memory.limit_in_bytes and memory.memsw.limit_in_bytes (when the
 *           kernel accounts swap) = --limit-memory, so going over it is an
 *           OOM kill, not swapping; memory.oom_control's oom_kill counter
 *           tells an OOM kill afterwards;
 *   cpu:    cpu.cfs_period_us 100000, cpu.cfs_quota_us = --limit-cpu x period;
 *   pids:   pids.max = EXEC_CGROUP_PIDS_MAX.
 * The task's shim makes them (and a process task's joins them; exec_shim.c
 * shim_cgroups_make); runc puts a
 * container in CONTROLLER/swarmd-<id>/ctr, so the limits (and the OOM
 * counter) are the task's, above whatever runc makes and removes. Removal
 * kills what is left and removes swarmd-<id> (and a ctr runc left) in every
 * v1 hierarchy. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "executor_int.h"
#include "log.h"

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

static const char *cg1_root(void)
{
    const char *env = getenv("SWARM_CGROUP1_ROOT");
    return env != NULL && env[0] != '\0' ? env : EXEC_CGROUP_FS;
}

int exec_cgroup1_path(const char *root, const char *controller, const char *task_id,
                      char *out, size_t size)
{
    if (controller == NULL || task_id == NULL || strchr(controller, '/') != NULL ||
        strchr(task_id, '/') != NULL || task_id[0] == '\0' || task_id[0] == '.') {
        return -1;
    }
    int n = snprintf(out, size, "%s/%s/" EXEC_CGROUP_PREFIX "%s", root, controller, task_id);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

bool exec_cgroup1_available(const char *controller)
{
    char path[PATH_MAX];
    struct statfs sf;
    snprintf(path, sizeof path, "%s/%s", cg1_root(), controller);
    return statfs(path, &sf) == 0 && sf.f_type == CGROUP_SUPER_MAGIC && access(path, W_OK) == 0;
}

int exec_write_file(const char *dir, const char *file, const char *value)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    ssize_t n = write(fd, value, strlen(value));
    int rv = n < 0 ? -errno : 0;
    close(fd);
    return rv;
}

int exec_cgroup1_create(const char *task_id, int64_t memory_bytes, int64_t nano_cpus,
                        char *joined, size_t size)
{
    static const char *const ctrls[] = {"memory", "cpu", "pids"};
    char path[PATH_MAX], val[64];
    size_t off = 0;
    int made = 0;
    joined[0] = '\0';
    for (size_t i = 0; i < sizeof ctrls / sizeof *ctrls; i++) {
        if (!exec_cgroup1_available(ctrls[i]) ||
            exec_cgroup1_path(cg1_root(), ctrls[i], task_id, path, sizeof path) != 0) {
            continue;
        }
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            log_warn("executor", "task %s: cgroup %s: %s", task_id, path, strerror(errno));
            continue;
        }
        int rv = 0;
        if (strcmp(ctrls[i], "memory") == 0 && memory_bytes > 0) {
            snprintf(val, sizeof val, "%" PRId64, memory_bytes);
            rv |= exec_write_file(path, "memory.limit_in_bytes", val);
            (void)exec_write_file(path, "memory.memsw.limit_in_bytes", val); /* absent without swap accounting */
        } else if (strcmp(ctrls[i], "cpu") == 0 && nano_cpus > 0) {
            int64_t quota = nano_cpus / 10000;
            snprintf(val, sizeof val, "%" PRId64, quota < 1000 ? 1000 : quota);
            rv |= exec_write_file(path, "cpu.cfs_period_us", "100000");
            rv |= exec_write_file(path, "cpu.cfs_quota_us", val);
        } else if (strcmp(ctrls[i], "pids") == 0) {
            snprintf(val, sizeof val, "%d", EXEC_CGROUP_PIDS_MAX);
            rv |= exec_write_file(path, "pids.max", val);
        }
        if (rv != 0) {
            log_warn("executor", "task %s: some limits could not be set in %s", task_id, path);
        }
        int n = snprintf(joined + off, size - off, "%s%s", off > 0 ? ":" : "", path);
        if (n > 0 && (size_t)n < size - off) {
            off += (size_t)n;
        }
        made++;
    }
    return made;
}

int exec_cgroup1_join(const char *joined, int pid)
{
    char copy[4 * PATH_MAX], val[32];
    int rv = 0;
    snprintf(copy, sizeof copy, "%s", joined != NULL ? joined : "");
    snprintf(val, sizeof val, "%d\n", pid);
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        if (exec_write_file(dir, "cgroup.procs", val) != 0) {
            rv = -1;
        }
    }
    return rv;
}

bool exec_cgroup1_oom_killed(const char *task_id)
{
    char path[PATH_MAX], line[128];
    if (exec_cgroup1_path(cg1_root(), "memory", task_id, path, sizeof path) != 0) {
        return false;
    }
    strncat(path, "/memory.oom_control", sizeof path - strlen(path) - 1);
    FILE *f = fopen(path, "re");
    bool oom = false;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        unsigned long long n;
        if (sscanf(line, "oom_kill %llu", &n) == 1) {
            oom = n > 0;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return oom;
}

/* SIGKILL every member of `dir` until none is left (bounded). */
static void cg1_kill(const char *dir)
{
    char procs[PATH_MAX];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    for (int round = 0; round < 100; round++) {
        FILE *f = fopen(procs, "re");
        int pid, n = 0;
        if (f == NULL) {
            return;
        }
        while (fscanf(f, "%d", &pid) == 1) {
            if (pid > 1 && pid != (int)getpid()) {
                kill(pid, SIGKILL);
                n++;
            }
        }
        fclose(f);
        if (n == 0) {
            return;
        }
        usleep(1000);
    }
}

static void cg1_rmdir(const char *dir, bool kill_all)
{
    if (kill_all) {
        cg1_kill(dir);
    }
    for (int i = 0; i < 50 && rmdir(dir) != 0 && errno == EBUSY; i++) {
        usleep(2000); /* the last members are still on their way out */
    }
}

int exec_cgroup1_remove(const char *task_id, bool kill_all)
{
    const char *root = cg1_root();
    DIR *d = opendir(root);
    char path[PATH_MAX], sub[PATH_MAX + 8];
    int removed = 0;
    if (d == NULL) {
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' ||
            exec_cgroup1_path(root, de->d_name, task_id, path, sizeof path) != 0 ||
            lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            continue; /* symlinks (cpu -> cpu,cpuacct) are seen through their target */
        }
        snprintf(sub, sizeof sub, "%s/ctr", path);
        if (access(sub, F_OK) == 0) {
            cg1_rmdir(sub, kill_all);
        }
        cg1_rmdir(path, kill_all);
        removed += access(path, F_OK) != 0;
    }
    closedir(d);
    return removed;
}

int exec_cgroup1_oom_watch(const char *task_id)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], line[64];
    if (exec_cgroup1_path(cg1_root(), "memory", task_id, dir, sizeof dir) != 0) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/memory.oom_control", dir);
    int ofd = open(path, O_RDONLY | O_CLOEXEC);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ofd < 0 || efd < 0) {
        goto err;
    }
    snprintf(line, sizeof line, "%d %d", efd, ofd);
    if (exec_write_file(dir, "cgroup.event_control", line) != 0) {
        goto err;
    }
    close(ofd);
    return efd;
err:
    if (ofd >= 0) {
        close(ofd);
    }
    if (efd >= 0) {
        close(efd);
    }
    return -1;
}

bool exec_cgroup1_oom_seen(int efd)
{
    uint64_t n = 0;
    return efd >= 0 && read(efd, &n, sizeof n) == (ssize_t)sizeof n && n > 0;
}
