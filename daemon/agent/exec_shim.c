/* The process executor's operating-system side, free of libuv: the shim
 * that runs between swarmd and a task's program, program lookup, /proc
 * reading, cgroup v2 limits, and killing a previous run's leftovers.
 *
 * The shim: swarmd spawns itself as `swarmd --task-exec PROGRAM ARGV0
 * ARG...` in a new session (its pid S is the session and group id), with
 * SWARM_SHIM_* variables that say what to do. The shim stays for the whole
 * life of the task, as the parent and child subreaper of its process tree,
 * so that the tree can be taken down as a whole however its processes fork,
 * double-fork or change group.
 * Happy path: block all signals (they are waited for); ask for
 * EXEC_SHIM_DEATH_SIGNAL when swarmd dies (PR_SET_PDEATHSIG), check swarmd
 * is still the parent (SWARM_SHIM_PPID); make the task's cgroups with
 * their limits and, for a process task, join them (shim_cgroups_make:
 * made only now, so that whatever exists, swarmd's death reaches a shim
 * that removes it); with SWARM_SHIM_NETNS, enter the task's network
 * sandbox and, with SWARM_SHIM_HOSTNAME, a UTS namespace of its own
 * (exec_isolate_net); with SWARM_SHIM_ISOLATE, make the task's mount
 * namespace (exec_isolate_mounts) and, with SWARM_SHIM_ETC, bind its
 * hosts/resolv.conf/hostname over /etc's (exec_isolate_etc); become a subreaper; fork the task, which
 * takes a process group of its own (C), dies if the shim dies, drops its
 * credentials (exec_isolate_creds: Docker's capabilities, SWARM_SHIM_USER,
 * no_new_privs) and execs PROGRAM. The shim then waits:
 *   - a signal (SIGTERM from a stop, SIGINT, SIGHUP...) goes on to group C;
 *   - the task's main process exits, or EXEC_SHIM_KILL_SIGNAL (grace period
 *     over) or EXEC_SHIM_DEATH_SIGNAL (swarmd died) comes: SIGKILL group C
 *     and every process left in the tree (orphans come back to the
 *     subreaper) until none is left; if swarmd died, remove the task's
 *     cgroup (swarmd would have); exit with the main process's status (its
 *     signal re-raised).
 * Failure paths: swarmd already gone -> exit 137 without running or making
 * anything (a container's snapshot mount released);
 * cgroup join fails -> a warning on the task's stderr, runs without limits;
 * isolation, credentials or fork fail -> the reason on stderr, exit 126,
 * nothing run; exec fails -> the reason on stderr, exit 127. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor_int.h"
#include "log.h"

#define CGROUP_ROOT_DEFAULT EXEC_CGROUP_FS
#define SHIM_KILL_ROUNDS 100000 /* reaps, at most, while taking a tree down */

static const char *shim_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The task's cgroup ROOT/NAME, held by a descriptor of ROOT taken before
 * the cgroup file systems are hidden, so that a shim whose swarmd died can
 * still remove it as swarmd would have. */
struct shim_cgroup {
    int root_fd;
    char name[NAME_MAX + 1];
};

static void shim_cgroup_open(const char *cg, struct shim_cgroup *c)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", cg);
    char *slash = strrchr(path, '/');
    c->root_fd = -1;
    if (slash == NULL || slash == path) {
        return;
    }
    snprintf(c->name, sizeof c->name, "%s", slash + 1);
    *slash = '\0';
    c->root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* swarmd is gone and the tree with it: move to the hierarchy's root and
 * remove the task's cgroup. */
static void shim_cgroup_leave(const struct shim_cgroup *c)
{
    if (c->root_fd < 0) {
        return;
    }
    int fd = openat(c->root_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        dprintf(fd, "%d\n", (int)getpid());
        close(fd);
    }
    for (int i = 0; i < 50 && unlinkat(c->root_fd, c->name, AT_REMOVEDIR) != 0 && errno == EBUSY;
         i++) {
        usleep(2000); /* the last members are still on their way out */
    }
}

static void shim_join_cgroup(const char *cg)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cgroup.procs", cg);
    FILE *f = fopen(path, "we");
    if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
        fprintf(stderr, "swarmd: joining cgroup %s failed, running without limits\n", cg);
        if (f != NULL) {
            fclose(f);
        }
    }
}

/* SIGKILL each direct child of ours (orphans of the tree come back here). */
static void shim_kill_children(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    FILE *f = fopen(path, "re");
    int pid;
    if (f == NULL) {
        return;
    }
    while (fscanf(f, "%d", &pid) == 1) {
        if (pid > 1) {
            kill(pid, SIGKILL);
        }
    }
    fclose(f);
}

/* Take the whole tree down; returns the main process's wait status. */
static int shim_kill_tree(pid_t task, int status, bool task_done)
{
    for (int round = 0; round < SHIM_KILL_ROUNDS; round++) {
        kill(-task, SIGKILL);
        shim_kill_children();
        int st;
        pid_t w = waitpid(-1, &st, 0);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            break; /* ECHILD: nothing left below us */
        }
        if (w == task && !task_done) {
            status = st;
            task_done = true;
        }
    }
    return status;
}

/* Leave with the task's status: its exit code, or its signal. */
static int shim_exit_as(int status)
{
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    struct rlimit none = {0, 0};
    sigset_t one;
    setrlimit(RLIMIT_CORE, &none); /* the task's core, if any, was its own */
    signal(sig, SIG_DFL);
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    return 128 + sig;
}

#define SHIM_CGROUPS_MAX 4 /* the v2 one and the v1 memory, cpu and pids */

/* A container (runc run under this shim): what swarmd would release once
 * runc is gone, released by the shim when swarmd died first: the
 * snapshot's mount (SWARM_SHIM_RELEASE_ROOTFS) and the task's v1 cgroups,
 * runc's own below them included (SWARM_SHIM_RELEASE_TASK). The snapshot's
 * files and runc's state stay for the next start's cleanup. */
static const char *shim_release_rootfs, *shim_release_task;

/* Leave and remove each of the task's cgroups (swarmd is gone). */
static void shim_cgroups_leave(const struct shim_cgroup *cg)
{
    for (size_t i = 0; i < SHIM_CGROUPS_MAX; i++) {
        shim_cgroup_leave(&cg[i]);
    }
    if (shim_release_rootfs != NULL) {
        (void)umount2(shim_release_rootfs, MNT_DETACH);
    }
    if (shim_release_task != NULL) {
        (void)exec_cgroup1_remove(shim_release_task, true);
    }
}

/* The task's cgroups (SWARM_SHIM_CGROUP_TASK: its id), made with their
 * limits (SWARM_SHIM_CGROUP_LIMITS: "MEMORY_BYTES NANO_CPUS"): the v2 one
 * under SWARM_SHIM_CGROUP_V2 when set, and the v1 ones (exec_cgroup1.c).
 * With SWARM_SHIM_CGROUP_JOIN (a process task) we join them, and hold
 * their roots in `cg` to leave them if swarmd dies. (A container's v1
 * parents are made by swarmd right before it spawns us, exec_container.c,
 * and released by SWARM_SHIM_RELEASE_TASK, also when swarmd died before we
 * could ask to hear of it.)
 * A cgroup that cannot be made or joined: a warning on the task's stderr,
 * it runs without those limits. */
static void shim_cgroups_make(struct shim_cgroup *cg)
{
    const char *task = shim_env("SWARM_SHIM_CGROUP_TASK");
    const char *v2 = shim_env("SWARM_SHIM_CGROUP_V2");
    const char *limits = shim_env("SWARM_SHIM_CGROUP_LIMITS");
    bool join = shim_env("SWARM_SHIM_CGROUP_JOIN") != NULL;
    int64_t memory = 0, cpus = 0;
    char joined[4 * PATH_MAX], *save = NULL;
    size_t n = 0;
    if (task == NULL) {
        return;
    }
    if (limits != NULL && sscanf(limits, "%" SCNd64 " %" SCNd64, &memory, &cpus) != 2) {
        memory = cpus = 0;
    }
    char *path = v2 != NULL ? exec_cgroup_create(v2, task, memory, cpus) : NULL;
    if (path != NULL && join) {
        shim_join_cgroup(path);
        shim_cgroup_open(path, &cg[n++]);
    }
    free(path);
    if (exec_cgroup1_create(task, memory, cpus, joined, sizeof joined) == 0 || !join) {
        return;
    }
    if (exec_cgroup1_join(joined, (int)getpid()) != 0) {
        fprintf(stderr, "swarmd: joining cgroups %s failed, running without some limits\n",
                joined);
    }
    /* Held before the cgroup file systems are hidden, as the v2 one. */
    for (char *d = strtok_r(joined, ":", &save); d != NULL && n < SHIM_CGROUPS_MAX;
         d = strtok_r(NULL, ":", &save)) {
        shim_cgroup_open(d, &cg[n++]);
    }
}

static int shim_supervise(pid_t task, pid_t swarmd, const struct shim_cgroup *cg)
{
    sigset_t all;
    sigfillset(&all);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig == SIGCHLD) {
            int st;
            pid_t w;
            while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
                if (w == task) {
                    st = shim_kill_tree(task, st, true);
                    if (getppid() != swarmd) {
                        shim_cgroups_leave(cg);
                    }
                    return shim_exit_as(st);
                }
            }
        } else if (sig == EXEC_SHIM_KILL_SIGNAL || sig == EXEC_SHIM_DEATH_SIGNAL) {
            int st = shim_kill_tree(task, 0, false);
            /* Our parent may still look alive: the kernel moves us to
             * another of its threads first. */
            if (sig == EXEC_SHIM_DEATH_SIGNAL || getppid() != swarmd) {
                shim_cgroups_leave(cg);
            }
            return shim_exit_as(st);
        } else if (sig > 0) {
            kill(-task, sig); /* a stop's SIGTERM and the like: to the task */
        }
    }
}

/* In the forked task process: never returns. */
static void shim_task(char **argv, const sigset_t *mask, pid_t shim, bool isolate,
                      const struct exec_user *u)
{
    char err[SWARM_ERRMSG_SIZE];
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != shim) {
        _exit(137);
    }
    if (exec_isolate_creds(u, isolate, err) != 0) {
        fprintf(stderr, "swarmd: %s\n", err);
        _exit(126);
    }
    sigprocmask(SIG_SETMASK, mask, NULL);
    execv(argv[2], argv + 3);
    fprintf(stderr, "swarmd: exec %s: %s\n", argv[2], strerror(errno));
    _exit(127);
}

int executor_shim_main(int argc, char **argv)
{
    static const char *const vars[] = {
        "SWARM_SHIM_PPID", "SWARM_SHIM_CGROUP_V2", "SWARM_SHIM_ISOLATE", "SWARM_SHIM_HIDE",
        "SWARM_SHIM_TASK_ROOT", "SWARM_SHIM_TASK_DIR", "SWARM_SHIM_USER",
        "SWARM_SHIM_NETNS", "SWARM_SHIM_HOSTNAME", "SWARM_SHIM_ETC",
        "SWARM_SHIM_CGROUP_TASK", "SWARM_SHIM_CGROUP_LIMITS", "SWARM_SHIM_CGROUP_JOIN",
        "SWARM_SHIM_RELEASE_ROOTFS", "SWARM_SHIM_RELEASE_TASK",
    };
    sigset_t all, mask;
    char err[SWARM_ERRMSG_SIZE];
    struct exec_user user;
    if (argc < 4 || strcmp(argv[1], "--task-exec") != 0) {
        fprintf(stderr, "usage: %s --task-exec PROGRAM ARGV0 [ARG...]\n", argv[0]);
        return 2;
    }
    (void)close_range(3, ~0U, 0); /* nothing of swarmd's reaches the task */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &mask);
    if (prctl(PR_SET_PDEATHSIG, EXEC_SHIM_DEATH_SIGNAL) != 0) {
        fprintf(stderr, "swarmd: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
    }
    const char *ppid = getenv("SWARM_SHIM_PPID");
    pid_t swarmd = getppid();
    if (ppid != NULL && atoi(ppid) != (int)swarmd) {
        /* swarmd died before we could ask to hear of it: what it made for
         * the task (a container's snapshot mount) goes, as it would have. */
        shim_release_rootfs = shim_env("SWARM_SHIM_RELEASE_ROOTFS");
        shim_release_task = shim_env("SWARM_SHIM_RELEASE_TASK");
        if (shim_release_rootfs != NULL) {
            (void)umount2(shim_release_rootfs, MNT_DETACH);
        }
        if (shim_release_task != NULL) {
            (void)exec_cgroup1_remove(shim_release_task, true);
        }
        return 137;
    }
    bool isolate = shim_env("SWARM_SHIM_ISOLATE") != NULL;
    const char *uspec = shim_env("SWARM_SHIM_USER");
    struct shim_cgroup cgroups[SHIM_CGROUPS_MAX];
    for (size_t i = 0; i < SHIM_CGROUPS_MAX; i++) {
        cgroups[i].root_fd = -1;
    }
    shim_release_rootfs = shim_env("SWARM_SHIM_RELEASE_ROOTFS");
    shim_release_task = shim_env("SWARM_SHIM_RELEASE_TASK");
    /* Made here, not by swarmd: from the moment they exist, swarmd's death
     * reaches us (checked above) and we remove them. */
    shim_cgroups_make(cgroups);
    if (uspec != NULL && exec_user_parse(uspec, &user) != 0) {
        fprintf(stderr, "swarmd: bad SWARM_SHIM_USER \"%s\"\n", uspec);
        return 126;
    }
    /* The task's sandbox (net/netplane.h), entered before the state dir
     * (where its namespace is mounted) is hidden. */
    if (exec_isolate_net(shim_env("SWARM_SHIM_NETNS"), shim_env("SWARM_SHIM_HOSTNAME"),
                         err) != 0) {
        fprintf(stderr, "swarmd: isolating the task: %s\n", err);
        return 126;
    }
    if (isolate && exec_isolate_mounts(shim_env("SWARM_SHIM_HIDE"),
                                       shim_env("SWARM_SHIM_TASK_ROOT"),
                                       shim_env("SWARM_SHIM_TASK_DIR"), err) != 0) {
        fprintf(stderr, "swarmd: isolating the task: %s\n", err);
        return 126;
    }
    if (shim_env("SWARM_SHIM_ETC") != NULL &&
        (!isolate || exec_isolate_etc(shim_env("SWARM_SHIM_ETC"), err) != 0)) {
        fprintf(stderr, "swarmd: isolating the task: %s\n",
                isolate ? err : "its /etc files need a mount namespace (root)");
        return 126;
    }
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        unsetenv(vars[i]);
    }
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t shim = getpid();
    pid_t task = fork();
    if (task < 0) {
        fprintf(stderr, "swarmd: fork: %s\n", strerror(errno));
        return 126;
    }
    if (task == 0) {
        shim_task(argv, &mask, shim, isolate, uspec != NULL ? &user : NULL);
    }
    setpgid(task, task); /* also here: no signal may find it in our group */
    return shim_supervise(task, swarmd, cgroups);
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
                        char *out, size_t outsz, char *err)
{
    struct stat st;
    if (strchr(image, '/') != NULL) {
        join_path(out, outsz, cwd, image);
        if (stat(out, &st) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "exec: \"%s\": stat %s: %s", image, image, strerror(errno));
            return -1;
        }
        if (S_ISDIR(st.st_mode)) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "exec: \"%s\": is a directory", image);
            return -1;
        }
        if (!S_ISREG(st.st_mode) || access(out, X_OK) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "exec: \"%s\": permission denied", image);
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
    errmsg_printf(err, SWARM_ERRMSG_SIZE, "exec: \"%s\": executable file not found in $PATH", image);
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

int exec_copy_files(const char *from, const char *to)
{
    int rv = exec_mkdir_p(to);
    DIR *d = rv == 0 ? opendir(from) : NULL;
    if (d == NULL) {
        return rv != 0 ? rv : -errno;
    }
    struct dirent *de;
    char src[PATH_MAX], dst[PATH_MAX], buf[65536];
    while (rv == 0 && (de = readdir(d)) != NULL) {
        snprintf(src, sizeof src, "%s/%s", from, de->d_name);
        snprintf(dst, sizeof dst, "%s/%s", to, de->d_name);
        struct stat st;
        if (lstat(src, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        int in = open(src, O_RDONLY | O_CLOEXEC);
        int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777);
        ssize_t n = 0;
        while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0) {
            if (write(out, buf, (size_t)n) != n) {
                n = -1;
                break;
            }
        }
        if (in < 0 || out < 0 || n < 0) {
            rv = -(errno != 0 ? errno : EIO);
        }
        if (in >= 0) {
            close(in);
        }
        if (out >= 0 && close(out) != 0 && rv == 0) {
            rv = -errno;
        }
    }
    closedir(d);
    return rv;
}

/* A cgroup v2 hierarchy we may write to: $SWARM_CGROUP_ROOT, or
 * /sys/fs/cgroup (unified), or /sys/fs/cgroup/unified (hybrid: no
 * controllers there, but membership and cgroup.kill). */
static const char *cgroup_root(void)
{
    static const char *const roots[] = {CGROUP_ROOT_DEFAULT, CGROUP_ROOT_DEFAULT "/unified"};
    const char *env = getenv("SWARM_CGROUP_ROOT");
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
        const char *root = env != NULL && env[0] != '\0' ? env : roots[i];
        snprintf(path, sizeof path, "%s/cgroup.controllers", root);
        if (access(path, R_OK) == 0 && access(root, W_OK) == 0) {
            return root;
        }
        if (env != NULL && env[0] != '\0') {
            break;
        }
    }
    return NULL;
}

char *exec_cgroup_setup(void)
{
    const char *root = cgroup_root();
    if (root == NULL) {
        return NULL;
    }
    /* Each controller may be missing. */
    static const char *const ctl[] = {"+memory", "+pids", "+cpu"};
    for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++) {
        (void)exec_write_file(root, "cgroup.subtree_control", ctl[i]);
    }
    return strdup(root);
}

bool exec_cgroup_has(const char *base, const char *controller)
{
    char path[PATH_MAX], buf[512];
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", base);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    size_t len = strlen(controller);
    char *save = NULL;
    for (char *w = strtok_r(buf, " \n", &save); w != NULL; w = strtok_r(NULL, " \n", &save)) {
        if (strlen(w) == len && strcmp(w, controller) == 0) {
            return true;
        }
    }
    return false;
}

char *exec_cgroup_create(const char *base, const char *task_id, int64_t memory_bytes,
                         int64_t nano_cpus)
{
    char path[PATH_MAX], val[64];
    snprintf(path, sizeof path, "%s/" EXEC_CGROUP_PREFIX "%s", base, task_id);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        log_warn("executor", "task %s: cgroup %s: %s; running without limits", task_id,
                 path, strerror(errno));
        return NULL;
    }
    int rv = 0;
    if (memory_bytes > 0) {
        snprintf(val, sizeof val, "%" PRId64, memory_bytes);
        rv |= exec_write_file(path, "memory.max", val);
    }
    if (exec_cgroup_has(base, "pids")) {
        snprintf(val, sizeof val, "%d", EXEC_CGROUP_PIDS_MAX);
        rv |= exec_write_file(path, "pids.max", val);
    }
    if (nano_cpus > 0) {
        int64_t quota = nano_cpus / 10000; /* per 100 ms period */
        snprintf(val, sizeof val, "%" PRId64 " 100000", quota < 1000 ? 1000 : quota);
        rv |= exec_write_file(path, "cpu.max", val);
    }
    if (rv != 0) {
        log_warn("executor", "task %s: some cgroup limits could not be set in %s", task_id,
                 path);
    }
    char *copy = strdup(path);
    if (copy == NULL) {
        rmdir(path);
        log_warn("executor", "task %s: cgroup %s: out of memory; running without limits",
                 task_id, path);
    }
    return copy;
}

int exec_cgroup_kill(const char *path)
{
    if (exec_write_file(path, "cgroup.kill", "1") == 0) {
        return 0;
    }
    /* Before Linux 5.14: kill the members one by one until none is left
     * (what forks meanwhile is found on the next round). */
    char procs[PATH_MAX];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", path);
    for (int round = 0; round < 100; round++) {
        FILE *f = fopen(procs, "re");
        int pid, n = 0;
        if (f == NULL) {
            return -errno;
        }
        while (fscanf(f, "%d", &pid) == 1) {
            if (pid > 1 && pid != (int)getpid()) {
                kill(pid, SIGKILL);
                n++;
            }
        }
        fclose(f);
        if (n == 0) {
            return 0;
        }
        usleep(1000);
    }
    return -EBUSY;
}

void exec_cgroup_remove(const char *path, bool kill_all)
{
    if (kill_all) {
        (void)exec_cgroup_kill(path);
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

/* SIGKILL the processes of session or group `sid` that pass `keep`. */
static int kill_session_if(int sid, const char *want_env)
{
    int killed = 0;
    DIR *d = opendir("/proc");
    if (d == NULL) {
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int p = atoi(de->d_name);
        if (p > 1 && p != (int)getpid() && (getsid(p) == sid || getpgid(p) == sid) &&
            (want_env == NULL || proc_env_has(p, want_env)) && kill(p, SIGKILL) == 0) {
            killed++;
        }
    }
    closedir(d);
    return killed;
}

int exec_kill_session(int sid)
{
    return sid > 1 ? kill_session_if(sid, NULL) : 0;
}

int exec_kill_leftover(const char *task_id, int pid, unsigned long long starttime)
{
    if (pid <= 1) {
        return 0;
    }
    if (starttime != 0 && exec_proc_starttime(pid) == starttime) {
        /* The shim lives: its session is the task's (a session id is not
         * reused while a process of the session is alive). */
        kill(pid, SIGKILL);
        return 1 + kill_session_if(pid, NULL);
    }
    /* The shim is gone: its session or group may live on, but after this
     * long only trust members that carry the task's id. */
    char want[256];
    snprintf(want, sizeof want, "SWARM_TASK_ID=%s", task_id);
    return kill_session_if(pid, want);
}
