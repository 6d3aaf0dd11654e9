/* The process executor: a task is a program run under uv_spawn, through
 * swarmd's shim (exec_shim.c), which isolates it (exec_isolate.c) and takes
 * its whole process tree down when it ends, when told to, or when swarmd
 * dies.
 *
 * Happy path, per task (one uv_timer per task: first the start step, then
 * the SIGKILL deadline):
 *   executor_start -> PENDING, zero-delay timer
 *   step: report PREPARING; make DIR/<id>/ (0700), open stdout.log and
 *         stderr.log (append), find the program, resolve the user (owner of
 *         DIR/<id>/), build env (with what the shim needs to isolate the
 *         task), its cgroups named for the shim to make (if any), with networks its sandbox (netplane:
 *         netns, veths, VIP rules, DIR/<id>/etc/ files; the shim enters
 *         it); report STARTING; uv_spawn(shim, detached:
 *         the shim's pid is the task's session id); write DIR/<id>/pid
 *         ("SHIMPID STARTTIME"); report RUNNING, or
 *         with a health check (exec_health.c) stay STARTING and report
 *         RUNNING at its first success
 *   exit: (the shim took the task's tree down; if the shim itself was
 *         killed, what is left of its session goes), delete the pid file,
 *         report COMPLETE (exit 0), FAILED (non-zero exit or a signal we did
 *         not send), or SHUTDOWN (after executor_stop).
 * Failure paths:
 *   - program not found / not executable, working dir missing or inside the
 *     state dir, user or group not found on this node, dir or log files
 *     cannot be made, networks without a netplane or a sandbox that
 *     cannot be made ("network: ...") -> REJECTED with the reason, nothing
 *     spawned;
 *   - uv_spawn fails -> FAILED "starting: <reason>";
 *   - isolation fails inside the shim -> FAILED, exit 126, reason in
 *     stderr.log; exec fails -> FAILED, exit 127, reason in stderr.log;
 *   - a health test that is not CMD/CMD-SHELL/NONE -> REJECTED;
 *   - unhealthy (health check failed `retries` times) -> stopped as by
 *     executor_stop, then FAILED "task: unhealthy container" with the
 *     process's exit code;
 *   - stop before the process runs -> SHUTDOWN, nothing spawned;
 *   - stop while running -> SIGTERM to the shim, which passes it to the
 *     task's process group; after the grace EXEC_SHIM_KILL_SIGNAL: the shim
 *     SIGKILLs the whole tree; if the shim is still there 2 s later, it is
 *     SIGKILLed with its session;
 *     health checks are cancelled (a running one killed) at once;
 *   - remove: stop if needed (no more reports), then delete DIR/<id>/,
 *     the cgroup and the sandbox once the process is gone, free on handle
 *     close;
 *   - close: stop all with min(grace, task grace), no reports, free all,
 *     then `done`. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "executor_int.h"
#include "id.h"
#include "log.h"
#include "netplane.h"
#include "pbcopy.h"
#include "runtime.h"
#include "statedir.h"

enum proc_phase { PROC_PENDING, PROC_RUNNING, PROC_ENDED };

struct proc_task {
    struct exec_task head; /* first */
    struct executor_proc *p;
    struct proc_task *prev, *next; /* every live task, removed ones included */
    Swarm__Task *task;             /* our copy */
    uv_timer_t timer;
    uv_process_t proc;
    enum proc_phase phase;
    int handles; /* open handles and health; freed when it drops to 0 */
    bool freeing, exited, unhealthy;
    bool kill_sent; /* EXEC_SHIM_KILL_SIGNAL sent; the timer is the fallback */
    int pid;
    uint64_t kill_at; /* loop time of the SIGKILL, 0: none armed */
    char *dir, *pid_path, *health_path, *cgroup;
    bool sandbox; /* a netplane sandbox was made for it */
    bool cgroup1; /* v1 cgroups may exist (exec_cgroup1.c), made by the shim */
    struct exec_health *health; /* checks armed, NULL: none or closing */
    char **env;                 /* the task's env, kept for the checks */
    const char *cwd;            /* points into dir or task */
};

struct executor_proc {
    struct executor base; /* first */
    uv_timer_t guard;     /* closed last; its close callback frees us */
    struct proc_task *all;
    char *cg_base;        /* the cgroup v2 hierarchy; NULL: none */
};

/* What the start step prepares before spawning. */
struct proc_launch {
    int out_fd, err_fd;
    const char *cwd;
    char user[1024]; /* SWARM_SHIM_USER, "" for the default (root) */
    char program[PATH_MAX];
    char **env;
    size_t nenv;
};

/* Prefixes of the variables swarmd sets (a task's own are dropped): all of
 * SWARM_SHIM_* tell the shim how to isolate the task. */
static const char *const proc_reserved_env[] = {
    "SWARM_TASK_ID=", "SWARM_TASK_SLOT=", "SWARM_SERVICE_NAME=", "SWARM_NODE_ID=",
    "SWARM_SHIM_",
};

static void proc_guard_closed_cb(uv_handle_t *h);

static uint64_t proc_grace(const struct proc_task *t)
{
    const Swarm__ContainerSpec *c = t->task->spec->container;
    return c->stop_grace_period_ms > 0 ? (uint64_t)c->stop_grace_period_ms
                                       : EXECUTOR_DEFAULT_STOP_GRACE_MS;
}

static void proc_free_env(char **env)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        free(env[i]);
    }
    free(env);
}

/* One of the task's handles (or its health) is gone; the last frees it. */
static void proc_handle_gone(struct proc_task *t)
{
    struct executor_proc *p = t->p;
    if (--t->handles > 0) {
        return;
    }
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        p->all = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
    swarm__task__free_unpacked(t->task, NULL);
    exec_task_head_free(&t->head);
    free(t->pid_path);
    free(t->cgroup);
    proc_free_env(t->env);
    free(t);
    if (p->base.closing && p->all == NULL) {
        uv_close((uv_handle_t *)&p->guard, proc_guard_closed_cb);
    }
}

static void proc_close_cb(uv_handle_t *h)
{
    proc_handle_gone(h->data);
}

static void proc_health_closed_cb(void *data)
{
    proc_handle_gone(data);
}

/* No more checks: cancel the next, kill a running one. */
static void proc_health_stop(struct proc_task *t)
{
    if (t->health != NULL) {
        exec_health_close(t->health, proc_health_closed_cb, t);
        t->health = NULL;
    }
}

/* Free the task once it is removed (or we close) and no process runs. */
static void proc_maybe_free(struct proc_task *t)
{
    if (t->freeing || !(t->head.removed || t->p->base.closing) ||
        (t->phase == PROC_RUNNING && !t->exited)) {
        return;
    }
    t->freeing = true;
    if (t->sandbox) {
        (void)netplane_sandbox_remove(t->p->base.net, t->head.entry.id);
        t->sandbox = false;
    }
    if (t->cgroup != NULL) {
        exec_cgroup_remove(t->cgroup, true); /* nothing of the task runs any more */
    }
    if (t->cgroup1) {
        exec_cgroup1_remove(t->head.entry.id, true);
    }
    if (t->head.removed && statedir_remove_tree(t->head.dir) != 0) {
        log_warn("executor", "task %s: removing %s failed", t->head.entry.id, t->head.dir);
    }
    uv_close((uv_handle_t *)&t->timer, proc_close_cb);
}

static void proc_end(struct proc_task *t, Swarm__TaskState st, const char *msg,
                     const char *err, int exit_code)
{
    t->phase = PROC_ENDED;
    exec_report(&t->p->base, t->head.entry.id, st, msg, err, exit_code, t->pid);
}

static void proc_launch_free(struct proc_launch *l)
{
    if (l->out_fd >= 0) {
        close(l->out_fd);
    }
    if (l->err_fd >= 0) {
        close(l->err_fd);
    }
    proc_free_env(l->env);
    l->env = NULL;
}

/* Add "<prefix><value>" (prefix is "K=" or empty for a whole "K=V"). */
static int proc_env_add(struct proc_launch *l, const char *prefix, const char *value)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s", prefix, value) < 0) {
        return -1;
    }
    l->env[l->nenv++] = s;
    l->env[l->nenv] = NULL;
    return 0;
}

/* The task's env plus ours; sets *path_env to the PATH the task gets. */
static int proc_build_env(struct proc_task *t, struct proc_launch *l, const char **path_env)
{
    const Swarm__ContainerSpec *c = t->task->spec->container;
    char num[32], ppid[32];
    l->env = calloc(c->n_env + 20, sizeof *l->env);
    if (l->env == NULL) {
        return -1;
    }
    *path_env = NULL;
    for (size_t i = 0; i < c->n_env; i++) {
        const char *kv = c->env[i];
        bool skip = strchr(kv, '=') == NULL;
        for (size_t j = 0; !skip && j < sizeof proc_reserved_env / sizeof *proc_reserved_env; j++) {
            skip = strncmp(kv, proc_reserved_env[j], strlen(proc_reserved_env[j])) == 0;
        }
        if (skip) {
            continue;
        }
        if (strncmp(kv, "PATH=", 5) == 0) {
            *path_env = kv + 5;
        }
        if (proc_env_add(l, "", kv) != 0) {
            return -1;
        }
    }
    int rv = 0;
    if (*path_env == NULL) {
        *path_env = getenv("PATH") != NULL ? getenv("PATH") : "/usr/local/bin:/usr/bin:/bin";
        rv |= proc_env_add(l, "PATH=", *path_env);
    }
    snprintf(num, sizeof num, "%llu", (unsigned long long)t->task->slot);
    snprintf(ppid, sizeof ppid, "%d", (int)getpid());
    rv |= proc_env_add(l, "SWARM_TASK_ID=", t->head.entry.id);
    rv |= proc_env_add(l, "SWARM_TASK_SLOT=", num);
    rv |= proc_env_add(l, "SWARM_SERVICE_NAME=",
                        t->task->service_name != NULL ? t->task->service_name : "");
    rv |= proc_env_add(l, "SWARM_NODE_ID=", t->p->base.node_id);
    rv |= proc_env_add(l, "SWARM_SHIM_PPID=", ppid);
    if (t->cgroup != NULL || t->cgroup1) {
        /* The shim makes and joins them (exec_shim.c): nothing is made
         * that swarmd's death would leave behind. */
        const Swarm__ResourceRequirements *r = t->task->spec->resources;
        const Swarm__Resources *lim = r != NULL ? r->limits : NULL;
        char limits[64];
        snprintf(limits, sizeof limits, "%" PRId64 " %" PRId64,
                 lim != NULL ? lim->memory_bytes : 0, lim != NULL ? lim->nano_cpus : 0);
        rv |= proc_env_add(l, "SWARM_SHIM_CGROUP_TASK=", t->head.entry.id);
        rv |= proc_env_add(l, "SWARM_SHIM_CGROUP_LIMITS=", limits);
        rv |= proc_env_add(l, "SWARM_SHIM_CGROUP_JOIN=", "1");
        if (t->cgroup != NULL) {
            rv |= proc_env_add(l, "SWARM_SHIM_CGROUP_V2=", t->p->cg_base);
        }
    }
    if (l->user[0] != '\0') {
        rv |= proc_env_add(l, "SWARM_SHIM_USER=", l->user);
    }
    if (geteuid() == 0) {
        /* Only root can isolate (and only root needs to be kept in). */
        const struct executor *e = &t->p->base;
        rv |= proc_env_add(l, "SWARM_SHIM_ISOLATE=", "1");
        rv |= proc_env_add(l, "SWARM_SHIM_TASK_ROOT=", e->dir);
        rv |= proc_env_add(l, "SWARM_SHIM_TASK_DIR=", t->head.dir);
        if (e->hide_dir != NULL) {
            rv |= proc_env_add(l, "SWARM_SHIM_HIDE=", e->hide_dir);
        }
    }
    return rv;
}

static int proc_open_log(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* Resolve ContainerSpec.user on this node and give the task its dir. */
static int proc_prepare_user(struct proc_task *t, struct proc_launch *l, char *err)
{
    const char *spec = t->task->spec->container->user;
    struct exec_user u;
    if (spec == NULL || spec[0] == '\0') {
        return 0;
    }
    if (geteuid() != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "user \"%s\": swarmd must run as root to run tasks as another "
                             "user", spec);
        return -1;
    }
    if (exec_user_resolve(spec, &u, err) != 0) {
        return -1;
    }
    if (exec_user_format(&u, l->user, sizeof l->user) != 0 || chown(t->head.dir, u.uid, u.gid) != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "user \"%s\": task dir %s: %s", spec, t->head.dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* A task with networks: its sandbox (net/netplane.h) and what the shim
 * needs to enter it. */
static int proc_prepare_sandbox(struct proc_task *t, struct proc_launch *l, char *err)
{
    struct netplane *net = t->p->base.net;
    char etc[PATH_MAX], netns[PATH_MAX], host[64], why[SWARM_ERRMSG_SIZE];
    if (net == NULL) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE,
                      "network: this node cannot attach tasks to networks");
        return -1;
    }
    snprintf(etc, sizeof etc, "%s/etc", t->head.dir);
    int rv = exec_mkdir_p(etc);
    if (rv != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "network: %s: %s", etc, strerror(-rv));
        return -1;
    }
    if (!t->sandbox) {
        if (netplane_sandbox_create(net, t->task, etc, netns, why) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "network: %s", why);
            return -1;
        }
        t->sandbox = true;
    } else {
        snprintf(netns, sizeof netns, "%s", netplane_sandbox_netns(net, t->head.entry.id));
    }
    netplane_task_hostname(t->task, host);
    if (proc_env_add(l, "SWARM_SHIM_NETNS=", netns) != 0 ||
        proc_env_add(l, "SWARM_SHIM_HOSTNAME=", host) != 0 ||
        proc_env_add(l, "SWARM_SHIM_ETC=", etc) != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "out of memory");
        return -1;
    }
    return 0;
}

/* Everything before the spawn; on failure writes the reason to err. */
static int proc_prepare(struct proc_task *t, struct proc_launch *l, char *err)
{
    const Swarm__ContainerSpec *c = t->task->spec->container;
    if (c->image == NULL || c->image[0] == '\0') {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "no program to run: the task has no image");
        return -1;
    }
    if (strcmp(runtime_resolve(t->task->spec->runtime, c->image), RUNTIME_PROCESS) != 0 &&
        t->task->spec->runtime != NULL && t->task->spec->runtime[0] != '\0') {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "runtime \"%s\" is not offered by this node",
                      t->task->spec->runtime);
        return -1;
    }
    if (exec_health_validate(c->healthcheck, err) != 0) {
        return -1;
    }
    int rv = exec_mkdir_p(t->head.dir);
    if (rv != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "task dir %s: %s", t->head.dir, strerror(-rv));
        return -1;
    }
    l->out_fd = proc_open_log(t->head.out_path);
    l->err_fd = proc_open_log(t->head.err_path);
    if (l->out_fd < 0 || l->err_fd < 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "log files in %s: %s", t->head.dir, strerror(errno));
        return -1;
    }
    l->cwd = t->head.dir;
    if (c->dir != NULL && c->dir[0] != '\0') {
        struct stat st;
        if (c->dir[0] != '/') {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "working dir \"%s\": must be an absolute path", c->dir);
            return -1;
        }
        if (stat(c->dir, &st) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "working dir \"%s\": %s", c->dir, strerror(errno));
            return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "working dir \"%s\": not a directory", c->dir);
            return -1;
        }
        char real[PATH_MAX];
        const char *hide = t->p->base.hide_dir;
        if (hide != NULL && realpath(c->dir, real) != NULL && exec_path_within(real, hide)) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "working dir \"%s\": inside swarmd's state dir, which tasks "
                                 "cannot see", c->dir);
            return -1;
        }
        l->cwd = c->dir;
    }
    if (proc_prepare_user(t, l, err) != 0) {
        return -1;
    }
    /* The task's cgroups, to be made by its shim (proc_build_env). */
    if (t->p->cg_base != NULL && t->cgroup == NULL &&
        asprintf(&t->cgroup, "%s/" EXEC_CGROUP_PREFIX "%s", t->p->cg_base,
                 t->head.entry.id) < 0) {
        t->cgroup = NULL; /* runs without, as without v2 */
    }
    t->cgroup1 = exec_cgroup1_available("memory") || exec_cgroup1_available("cpu") ||
                 exec_cgroup1_available("pids");
    const char *path_env;
    if (proc_build_env(t, l, &path_env) != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "out of memory");
        return -1;
    }
    if (exec_lookup_program(c->image, path_env, l->cwd, l->program, sizeof l->program, err) != 0) {
        return -1;
    }
    return t->task->n_networks > 0 ? proc_prepare_sandbox(t, l, err) : 0;
}

static void proc_exit_cb(uv_process_t *h, int64_t status, int sig);

static int proc_spawn(struct proc_task *t, struct proc_launch *l, char *err)
{
    const Swarm__ContainerSpec *c = t->task->spec->container;
    char **args = calloc(c->n_args + 5, sizeof *args);
    if (args == NULL) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "starting: out of memory");
        return -1;
    }
    args[0] = t->p->base.shim_path;
    args[1] = "--task-exec";
    args[2] = l->program;
    args[3] = c->image;
    for (size_t i = 0; i < c->n_args; i++) {
        args[4 + i] = c->args[i];
    }
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = l->out_fd},
        {.flags = UV_INHERIT_FD, .data.fd = l->err_fd},
    };
    uv_process_options_t opts = {
        .exit_cb = proc_exit_cb,
        .file = t->p->base.shim_path,
        .args = args,
        .env = l->env,
        .cwd = l->cwd,
        .flags = UV_PROCESS_DETACHED, /* setsid: the shim's pid names the task's session */
        .stdio_count = 3,
        .stdio = stdio,
    };
    int rv = uv_spawn(t->p->base.loop, &t->proc, &opts);
    free(args);
    t->proc.data = t;
    t->handles++; /* initialised even when the spawn fails */
    if (rv != 0) {
        uv_close((uv_handle_t *)&t->proc, proc_close_cb);
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "starting: %s: %s", t->p->base.shim_path, uv_strerror(rv));
        return -1;
    }
    t->pid = t->proc.pid;
    t->phase = PROC_RUNNING;
    FILE *f = fopen(t->pid_path, "we");
    if (f == NULL ||
        fprintf(f, "%d %llu\n", t->pid, exec_proc_starttime(t->pid)) < 0) {
        log_warn("executor", "task %s: cannot record pid in %s", t->head.entry.id, t->pid_path);
    }
    if (f != NULL) {
        fclose(f);
    }
    return 0;
}

/* After a report during the start step: true if the step must stop here. */
static bool proc_interrupted(struct proc_task *t)
{
    if (t->p->base.closing || t->head.removed) {
        return true;
    }
    if (t->head.stop) {
        proc_end(t, SWARM__TASK_STATE__TASK_STATE_SHUTDOWN, "shutdown", "", 0);
        return true;
    }
    return false;
}

static void proc_stop_task(struct proc_task *t, uint64_t grace_ms);

static void proc_health_cb(enum exec_health_event ev, void *data)
{
    struct proc_task *t = data;
    if (t->p->base.closing || t->freeing || t->exited) {
        return;
    }
    if (ev == EXEC_HEALTH_HEALTHY) {
        exec_report(&t->p->base, t->head.entry.id, SWARM__TASK_STATE__TASK_STATE_RUNNING, "started",
                    "", 0, t->pid);
        return;
    }
    /* Docker/swarmkit: an unhealthy container is stopped and its task fails
     * (proc_exit_cb reports it), whatever the process's exit. */
    t->unhealthy = true;
    proc_stop_task(t, proc_grace(t));
}

/* Arm the checks of a spawned task, keeping its env for them. 1 when armed
 * (RUNNING waits for the first success); otherwise 0, the task runs
 * unchecked (out of memory is logged, not worth failing a running task). */
static int proc_health_start(struct proc_task *t, struct proc_launch *l)
{
    t->env = l->env;
    l->env = NULL;
    t->cwd = l->cwd;
    struct exec_health_config cfg = {
        .loop = t->p->base.loop,
        .hc = t->task->spec->container->healthcheck,
        .shim_path = t->p->base.shim_path,
        .cwd = t->cwd,
        .log_path = t->head.health_path,
        .env = t->env,
        .cb = proc_health_cb,
        .data = t,
    };
    if (exec_health_start(&cfg, &t->health) != 0) {
        log_warn("executor", "task %s: out of memory: running without health checks",
                 t->head.entry.id);
        return 0;
    }
    t->handles++;
    return 1;
}

static void proc_step_cb(uv_timer_t *timer)
{
    struct proc_task *t = timer->data;
    struct executor_proc *p = t->p;
    struct proc_launch l = {.out_fd = -1, .err_fd = -1};
    char err[SWARM_ERRMSG_SIZE];
    if (p->base.closing || t->freeing || proc_interrupted(t)) {
        return;
    }
    exec_report(&p->base, t->head.entry.id, SWARM__TASK_STATE__TASK_STATE_PREPARING, "preparing",
                "", 0, 0);
    if (proc_interrupted(t)) {
        return;
    }
    if (proc_prepare(t, &l, err) != 0) {
        proc_launch_free(&l);
        proc_end(t, SWARM__TASK_STATE__TASK_STATE_REJECTED, "rejected", err, 0);
        return;
    }
    exec_report(&p->base, t->head.entry.id, SWARM__TASK_STATE__TASK_STATE_STARTING, "starting", "",
                0, 0);
    if (proc_interrupted(t)) {
        proc_launch_free(&l);
        return;
    }
    int rv = proc_spawn(t, &l, err);
    if (rv == 0 && exec_health_enabled(t->task->spec->container->healthcheck)) {
        rv = proc_health_start(t, &l);
    }
    proc_launch_free(&l);
    if (rv < 0) {
        proc_end(t, SWARM__TASK_STATE__TASK_STATE_FAILED, "starting", err, 0);
        return;
    }
    if (rv == 0) {
        exec_report(&p->base, t->head.entry.id, SWARM__TASK_STATE__TASK_STATE_RUNNING, "started", "",
                    0, t->pid);
    }
}

static void proc_exit_cb(uv_process_t *h, int64_t status, int sig)
{
    struct proc_task *t = h->data;
    t->exited = true;
    t->phase = PROC_ENDED;
    proc_health_stop(t);
    uv_timer_stop(&t->timer);
    if (t->cgroup != NULL) {
        /* The shim may have been killed (by the task itself, as root) before
         * it could take the tree down: its cgroup holds all of it. An ended
         * task never runs again: its cgroup goes now. */
        exec_cgroup_remove(t->cgroup, true);
        if (access(t->cgroup, F_OK) != 0) {
            free(t->cgroup);
            t->cgroup = NULL; /* else tried again when the task is freed */
        }
    }
    bool oom = t->cgroup1 && sig == SIGKILL && !t->head.stop &&
               exec_cgroup1_oom_killed(t->head.entry.id);
    if (t->cgroup1) {
        exec_cgroup1_remove(t->head.entry.id, true);
        t->cgroup1 = false;
    }
    if (sig != 0) {
        exec_kill_session(t->pid); /* and without a cgroup, its session */
    }
    unlink(t->pid_path);
    uv_close((uv_handle_t *)&t->proc, proc_close_cb);
    if (t->p->base.closing || t->head.removed) {
        proc_maybe_free(t);
        return;
    }
    char err[64];
    int code = sig != 0 ? 128 + sig : (int)status;
    if (t->unhealthy) {
        proc_end(t, SWARM__TASK_STATE__TASK_STATE_FAILED, "failed", "task: unhealthy container",
                 code);
    } else if (t->head.stop) {
        proc_end(t, SWARM__TASK_STATE__TASK_STATE_SHUTDOWN, "shutdown", "", code);
    } else if (oom) {
        /* Docker: exit 137 and State.OOMKilled; swarmkit's err carries it. */
        proc_end(t, SWARM__TASK_STATE__TASK_STATE_FAILED, "failed",
                 "task: non-zero exit (137): OOM killed (memory limit reached)", 137);
    } else if (sig != 0) {
        snprintf(err, sizeof err, "task: killed by signal %d", sig);
        proc_end(t, SWARM__TASK_STATE__TASK_STATE_FAILED, "failed", err, code);
    } else if (status != 0) {
        snprintf(err, sizeof err, "task: non-zero exit (%d)", code);
        proc_end(t, SWARM__TASK_STATE__TASK_STATE_FAILED, "failed", err, code);
    } else {
        proc_end(t, SWARM__TASK_STATE__TASK_STATE_COMPLETE, "finished", "", 0);
    }
}

/* The grace period is over: the shim takes the whole tree down. If it
 * cannot (stopped, stuck), it goes itself after a while, with its session. */
static void proc_kill_cb(uv_timer_t *timer)
{
    struct proc_task *t = timer->data;
    if (t->freeing || t->exited) {
        return;
    }
    if (!t->kill_sent) {
        t->kill_sent = true;
        kill(t->pid, EXEC_SHIM_KILL_SIGNAL);
        kill(t->pid, SIGCONT);
        uv_timer_start(&t->timer, proc_kill_cb, EXEC_SHIM_KILL_FALLBACK_MS, 0);
        return;
    }
    kill(t->pid, SIGKILL);
    exec_kill_session(t->pid);
}

/* Stop with at most `grace_ms` left before the SIGKILL. */
static void proc_stop_task(struct proc_task *t, uint64_t grace_ms)
{
    uint64_t now = uv_now(t->p->base.loop);
    if (t->phase == PROC_PENDING) {
        t->head.stop = true; /* the start step reports SHUTDOWN */
        return;
    }
    if (t->phase != PROC_RUNNING || t->exited) {
        return;
    }
    proc_health_stop(t);
    if (!t->head.stop) {
        t->head.stop = true;
        kill(t->pid, SIGTERM); /* the shim passes it on to the task's group */
    } else if (t->kill_sent || (t->kill_at != 0 && t->kill_at <= now + grace_ms)) {
        return;
    }
    t->kill_at = now + grace_ms;
    uv_timer_start(&t->timer, proc_kill_cb, grace_ms, 0);
}

static int proc_start(struct executor *e, const Swarm__Task *task)
{
    struct executor_proc *p = (struct executor_proc *)e;
    struct proc_task *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return SWARM_ENOMEM;
    }
    t->task = pb_copy(&task->base);
    /* No spec or no image: rejected by the start step like a bad program. */
    if (t->task != NULL && t->task->spec == NULL &&
        (t->task->spec = malloc(sizeof *t->task->spec)) != NULL) {
        swarm__task_spec__init(t->task->spec);
    }
    if (t->task != NULL && t->task->spec != NULL && t->task->spec->container == NULL &&
        (t->task->spec->container = malloc(sizeof *t->task->spec->container)) != NULL) {
        swarm__container_spec__init(t->task->spec->container);
    }
    int ok = t->task != NULL && t->task->spec != NULL && t->task->spec->container != NULL &&
             exec_task_head_init(&t->head, e, task->id) == 0 &&
             asprintf(&t->pid_path, "%s/pid", t->head.dir) >= 0;
    if (!ok || exec_table_put(&e->tasks, &t->head.entry) != 0) {
        if (t->task != NULL) {
            swarm__task__free_unpacked(t->task, NULL);
        }
        exec_task_head_free(&t->head);
        free(t->pid_path);
        free(t);
        return SWARM_ENOMEM;
    }
    t->p = p;
    t->next = p->all;
    if (p->all != NULL) {
        p->all->prev = t;
    }
    p->all = t;
    uv_timer_init(e->loop, &t->timer);
    t->timer.data = t;
    t->handles = 1;
    uv_timer_start(&t->timer, proc_step_cb, 0, 0);
    return 0;
}

/* proc_stop_task with the task's own grace period (exec_task_stop/remove). */
static void proc_stop_own_grace(struct exec_task *h)
{
    struct proc_task *t = (struct proc_task *)h;
    proc_stop_task(t, proc_grace(t));
}

static void proc_maybe_free_head(struct exec_task *h)
{
    proc_maybe_free((struct proc_task *)h);
}

static const struct exec_task_hooks proc_hooks = {
    .stop = proc_stop_own_grace,
    .maybe_free = proc_maybe_free_head,
};

/* Kill what a previous run left of the task whose dir is ROOT/<id>. */
static void proc_kill_recorded(struct executor_proc *p, const char *root, const char *id)
{
    char path[PATH_MAX];
    int pid = 0;
    unsigned long long start = 0;
    if (p->cg_base != NULL) { /* whatever is in its cgroup is a previous run's */
        snprintf(path, sizeof path, "%s/" EXEC_CGROUP_PREFIX "%s", p->cg_base, id);
        exec_cgroup_remove(path, true);
    }
    exec_cgroup1_remove(id, true);
    snprintf(path, sizeof path, "%s/%s/pid", root, id);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return;
    }
    if (fscanf(f, "%d %llu", &pid, &start) == 2) {
        int n = exec_kill_leftover(id, pid, start);
        if (n > 0) {
            log_warn("executor", "task %s: killed %d leftover process(es) of a previous run", id,
                     n);
        }
    }
    fclose(f);
    unlink(path);
}

/* Task dirs of a swarmd that kept them in its state dir: their processes
 * go, the dirs (logs) move to where tasks live now. */
static void proc_move_old_dirs(struct executor_proc *p)
{
    const char *old = p->base.old_dir;
    char from[PATH_MAX], to[PATH_MAX];
    DIR *d = old != NULL ? opendir(old) : NULL;
    if (d == NULL) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!id_is_path_safe(de->d_name)) {
            continue;
        }
        proc_kill_recorded(p, old, de->d_name);
        snprintf(from, sizeof from, "%s/%s", old, de->d_name);
        snprintf(to, sizeof to, "%s/%s", p->base.dir, de->d_name);
        int rv = access(to, F_OK) == 0 ? 0 : rename(from, to) == 0 ? 0 : -errno;
        if (rv == -EXDEV) {
            rv = exec_copy_files(from, to);
        }
        if (rv != 0) {
            log_warn("executor", "task %s: moving %s to %s: %s; its logs stay there", de->d_name,
                     from, to, strerror(-rv));
            continue;
        }
        (void)statedir_remove_tree(from);
    }
    closedir(d);
    if (rmdir(old) == 0) {
        log_info("executor", "task dirs moved out of the state dir to %s", p->base.dir);
    }
}

static void proc_cleanup_leftovers(struct executor *e)
{
    struct executor_proc *p = (struct executor_proc *)e;
    proc_move_old_dirs(p);
    DIR *d = opendir(e->dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (!id_is_path_safe(de->d_name) || exec_table_get(&e->tasks, de->d_name) != NULL) {
            continue;
        }
        proc_kill_recorded(p, e->dir, de->d_name);
    }
    if (d != NULL) {
        closedir(d);
    }
}

static void proc_close(struct executor *e, uint64_t grace_ms)
{
    struct executor_proc *p = (struct executor_proc *)e;
    struct proc_task *t = p->all;
    while (t != NULL) {
        struct proc_task *next = t->next; /* maybe_free only closes handles */
        if (t->phase == PROC_RUNNING && !t->exited) {
            uint64_t g = proc_grace(t);
            proc_stop_task(t, g < grace_ms ? g : grace_ms);
        } else {
            proc_maybe_free(t);
        }
        t = next;
    }
    if (p->all == NULL) {
        uv_close((uv_handle_t *)&p->guard, proc_guard_closed_cb);
    }
}

static void proc_guard_closed_cb(uv_handle_t *h)
{
    struct executor_proc *p = h->data;
    free(p->cg_base);
    exec_base_finish(&p->base);
    free(p);
}

static const struct executor_ops proc_ops = {
    .start = proc_start,
    .stop = exec_task_stop,
    .remove = exec_task_remove,
    .log_path = exec_task_log_path,
    .cleanup_leftovers = proc_cleanup_leftovers,
    .close = proc_close,
};

/* Replace `*path` by its real path (it must exist). */
static int proc_realpath(char **path, char *errmsg)
{
    char abs[PATH_MAX], *copy;
    if (realpath(*path, abs) == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "executor: %s: %s", *path, strerror(errno));
        return SWARM_EIO;
    }
    if ((copy = strdup(abs)) == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "executor: out of memory");
        return SWARM_ENOMEM;
    }
    free(*path);
    *path = copy;
    return 0;
}

/* Tasks get absolute paths whatever the daemon's cwd; the dir they live in
 * and the one they must not see are apart (each would hide the other). */
static int proc_paths(struct executor *e, char *errmsg)
{
    int rv = exec_mkdir_p(e->dir);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task dir %s: %s", e->dir, strerror(-rv));
        return SWARM_EIO;
    }
    if ((rv = proc_realpath(&e->dir, errmsg)) != 0 ||
        (e->hide_dir != NULL && (rv = proc_realpath(&e->hide_dir, errmsg)) != 0)) {
        return rv;
    }
    if (e->hide_dir != NULL &&
        (exec_path_within(e->dir, e->hide_dir) || exec_path_within(e->hide_dir, e->dir))) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "task dir %s and state dir %s must not contain one another", e->dir,
                      e->hide_dir);
        return SWARM_EINVAL;
    }
    return 0;
}

int executor_dirs_check(const char *task_dir, const char *state_dir, char *errmsg)
{
    struct executor e = {0};
    int rv = SWARM_ENOMEM;
    e.dir = strdup(task_dir);
    e.hide_dir = strdup(state_dir);
    if (e.dir == NULL || e.hide_dir == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
    } else {
        rv = proc_paths(&e, errmsg);
    }
    free(e.dir);
    free(e.hide_dir);
    return rv;
}

int executor_process_new(const struct executor_config *cfg, struct executor **out, char *errmsg)
{
    static bool logged_no_cgroup; /* once per process is enough */
    struct executor_proc *p = calloc(1, sizeof *p);
    if (p == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "executor: out of memory");
        return SWARM_ENOMEM;
    }
    int rv = exec_base_init(&p->base, &proc_ops, cfg, errmsg);
    if (rv != 0) {
        free(p);
        return rv;
    }
    p->base.task_hooks = &proc_hooks;
    if ((rv = proc_paths(&p->base, errmsg)) != 0) {
        p->base.done = NULL;
        exec_base_finish(&p->base);
        free(p);
        return rv;
    }
    p->cg_base = exec_cgroup_setup();
    if (p->cg_base == NULL && !logged_no_cgroup) {
        logged_no_cgroup = true;
        log_info("executor", "cgroup v2 not available or not writable: tasks run without "
                             "memory/cpu/pids limits, tracked by session only");
    } else if (p->cg_base != NULL && !exec_cgroup_has(p->cg_base, "memory") &&
               !logged_no_cgroup) {
        logged_no_cgroup = true;
        log_info("executor", "no memory controller in cgroup v2 at %s: tasks are tracked "
                             "there but run without memory/cpu limits", p->cg_base);
    }
    uv_timer_init(cfg->loop, &p->guard);
    p->guard.data = p;
    *out = &p->base;
    return 0;
}
