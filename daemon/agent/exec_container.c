/* The container executor: a task is an OCI image run with runc, as
 * containerd drives it (runc is the binary; its CLI and its `state` are its
 * API). Images come from image/ (pull, content store, overlayfs snapshot per
 * task); the runtime config from ocispec.c.
 *
 * Per task (one uv_timer: first the start step, then pull retries, then the
 * stop deadlines; one uv_process: `runc run`, whose exit is the container's):
 *   executor_start -> PENDING, zero-delay timer
 *   step: report PREPARING; make DIR/<id>/ and its logs; imgstore_pull
 *   pulled: snapshot (DIR/... rootfs on overlayfs), user resolved against
 *         the image's /etc/passwd and /etc/group, /etc/hosts, /etc/hostname,
 *         /etc/resolv.conf (the host's, or netplane's with networks), named
 *         volumes made, cgroup v1 parents with the limits, config.json;
 *         report STARTING; spawn `runc --root R run --bundle DIR/<id>/bundle
 *         ID` through swarmd's shim (so that swarmd's death, even kill -9,
 *         takes runc and the container down) with stdout/stderr on the
 *         task's log files; report RUNNING once runc wrote its pid file
 *         (the container's init exists) (or,
 *         with a health check, at its first success; checks run inside via
 *         `runc exec`)
 *   exit: FAILED/COMPLETE by the exit code (137 with an OOM kill in the
 *         task's memory cgroup: "OOM killed"), SHUTDOWN after a stop.
 * Failure paths:
 *   - no such image -> REJECTED "No such image: REF";
 *   - registry unreachable (or any other pull error) -> stays PREPARING with
 *     the error reported, pulled again after 1 s, 2 s, 4 s ... 30 s;
 *   - unknown user, no command, bad mount, snapshot or files that cannot be
 *     made -> REJECTED with the reason, nothing run;
 *   - uv_spawn of runc fails -> FAILED;
 *   - stop: the stop signal (ContainerSpec.stop_signal, else the image's,
 *     else SIGTERM) with `runc kill`, then after the grace period `runc kill
 *     --all ID KILL`; a runc that is still there 2 s later is SIGKILLed and
 *     the container deleted;
 *   - stop before it runs: the pull is cancelled, SHUTDOWN;
 *   - remove/close: stop, then `runc delete --force`, the snapshot, the
 *     cgroups, the sandbox and DIR/<id>/ go once runc is gone.
 * swarmd restarts: containers are not adopted. At start, every container
 * in swarmd's runc root is killed and deleted, with its snapshot and
 * cgroups (executor_cleanup_leftovers); the agent then runs its tasks again,
 * as the process executor does. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "executor_int.h"
#include "id.h"
#include "image.h"
#include "log.h"
#include "netplane.h"
#include "ocispec.h"
#include "pbcopy.h"
#include "statedir.h"

#define CTR_PULL_RETRY_MIN_MS 1000
#define CTR_PULL_RETRY_MAX_MS 30000
#define CTR_FILE_MAX (1 << 20) /* /etc/passwd and /etc/group read at most */
#define CTR_START_POLL_MS 5      /* looking for runc's pid file */

enum ctr_phase { CTR_PENDING, CTR_PULLING, CTR_RUNNING, CTR_ENDED };

struct ctr_task {
    struct exec_task head; /* first */
    struct executor_ctr *x;
    struct ctr_task *prev, *next;
    Swarm__Task *task;
    uv_timer_t timer;
    uv_process_t proc;
    enum ctr_phase phase;
    int handles;
    bool freeing, exited, unhealthy, snapshot, sandbox, kill_sent;
    int pid, stop_signal;
    int oom_fd; /* exec_cgroup1_oom_watch, -1: none */
    char rootfs[PATH_MAX]; /* the snapshot's mount point */
    int retry_ms;
    uint64_t kill_at;
    struct imgstore_pull_req *pull;
    char *dir, *health_path, *bundle;
    struct exec_health *health;
    Swarm__HealthConfig *image_health; /* from the image config, owned */
    char *health_argv[8];
    char *health_env[2];
};

struct executor_ctr {
    struct executor base; /* first */
    uv_timer_t guard;
    struct ctr_task *all;
    struct imgstore *images;
    char *runc, *runc_root, *volumes_dir, *tini, *images_dir;
    bool own_images;
    const char *const *insecure; /* the config's (borrowed) */
    size_t n_insecure;
};

/* The image store, opened on first need (a node that never runs a
 * container makes nothing in STATE/images). 0 or SWARM_E*. */
static int ctr_images(struct executor_ctr *x, char *errmsg)
{
    if (x->images != NULL) {
        return 0;
    }
    struct imgstore_opts opts = {
        .insecure_registries = x->insecure,
        .n_insecure_registries = x->n_insecure,
    };
    int rv = imgstore_open(x->base.loop, x->images_dir, &opts, &x->images, errmsg);
    x->own_images = rv == 0;
    return rv;
}

static void ctr_guard_closed_cb(uv_handle_t *h);
static void ctr_stop_task(struct ctr_task *t, uint64_t grace_ms);

/* A start phase reached, at debug level with the monotonic clock in ms
 * (CLOCK_MONOTONIC, as Python's time.monotonic): bench/bench_containers.py
 * breaks a container's start down from these lines. */
static void ctr_phase(const struct ctr_task *t, const char *phase)
{
    log_debug("executor", "task %s: start phase %s at %.3f ms", t->head.entry.id, phase,
              (double)uv_hrtime() / 1e6);
}

/* ---------------------------------------------------------------- runc */

/* Run runc to completion (kill, delete: short), output to the log. */
static int ctr_runc_sync(struct executor_ctr *x, const char *const *args)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = x->runc;
    argv[n++] = "--root";
    argv[n++] = x->runc_root;
    for (size_t i = 0; args[i] != NULL && n < 15; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        return -errno;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void ctr_kill(struct ctr_task *t, int sig, bool all)
{
    char num[16];
    snprintf(num, sizeof num, "%d", sig);
    const char *args[] = {"kill", all ? "--all" : t->head.entry.id, all ? t->head.entry.id : num,
                          all ? num : NULL, NULL};
    (void)ctr_runc_sync(t->x, args);
}

static void ctr_delete(struct executor_ctr *x, const char *id)
{
    const char *args[] = {"delete", "--force", id, NULL};
    (void)ctr_runc_sync(x, args);
}

/* ------------------------------------------------------------- freeing */

static void ctr_free_health(struct ctr_task *t)
{
    if (t->image_health != NULL) {
        swarm__health_config__free_unpacked(t->image_health, NULL);
        t->image_health = NULL;
    }
}

static void ctr_handle_gone(struct ctr_task *t)
{
    struct executor_ctr *x = t->x;
    if (--t->handles > 0) {
        return;
    }
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        x->all = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
    swarm__task__free_unpacked(t->task, NULL);
    ctr_free_health(t);
    exec_task_head_free(&t->head);
    free(t->bundle);
    if (t->oom_fd >= 0) {
        close(t->oom_fd);
    }
    free(t);
    if (x->base.closing && x->all == NULL) {
        uv_close((uv_handle_t *)&x->guard, ctr_guard_closed_cb);
    }
}

static void ctr_close_cb(uv_handle_t *h)
{
    ctr_handle_gone(h->data);
}

static void ctr_health_closed_cb(void *data)
{
    ctr_handle_gone(data);
}

static void ctr_health_stop(struct ctr_task *t)
{
    if (t->health != NULL) {
        exec_health_close(t->health, ctr_health_closed_cb, t);
        t->health = NULL;
    }
}

/* What the container held on the node: gone once it no longer runs. */
static void ctr_release(struct ctr_task *t)
{
    char err[SWARM_ERRMSG_SIZE];
    ctr_delete(t->x, t->head.entry.id);
    if (t->snapshot && t->x->images != NULL) {
        if (imgstore_snapshot_remove(t->x->images, t->head.entry.id, err) != 0) {
            log_warn("executor", "task %s: snapshot: %s", t->head.entry.id, err);
        }
        t->snapshot = false;
    }
    exec_cgroup1_remove(t->head.entry.id, true);
    if (t->sandbox) {
        (void)netplane_sandbox_remove(t->x->base.net, t->head.entry.id);
        t->sandbox = false;
    }
}

static void ctr_maybe_free(struct ctr_task *t)
{
    if (t->freeing || !(t->head.removed || t->x->base.closing) ||
        (t->phase == CTR_RUNNING && !t->exited)) {
        return;
    }
    t->freeing = true;
    if (t->pull != NULL) {
        imgstore_pull_cancel(t->pull);
        t->pull = NULL;
    }
    ctr_health_stop(t);
    ctr_release(t);
    if (t->head.removed && statedir_remove_tree(t->head.dir) != 0) {
        log_warn("executor", "task %s: removing %s failed", t->head.entry.id, t->head.dir);
    }
    uv_close((uv_handle_t *)&t->timer, ctr_close_cb);
}

static void ctr_end(struct ctr_task *t, Swarm__TaskState st, const char *msg, const char *err,
                    int code)
{
    t->phase = CTR_ENDED;
    exec_report(&t->x->base, t->head.entry.id, st, msg, err, code, t->pid);
}

/* Stopped (or removed) while not running: nothing to wait for. */
static bool ctr_interrupted(struct ctr_task *t)
{
    if (t->head.removed || t->x->base.closing) {
        t->phase = CTR_ENDED;
        ctr_maybe_free(t);
        return true;
    }
    if (t->head.stop) {
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_SHUTDOWN, "shutdown", "", 0);
        return true;
    }
    return false;
}

/* ------------------------------------------------------------ preparing */

static char *ctr_read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return NULL;
    }
    char *buf = malloc(CTR_FILE_MAX + 1);
    size_t n = buf != NULL ? fread(buf, 1, CTR_FILE_MAX, f) : 0;
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
    }
    return buf;
}

static int ctr_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    if (f == NULL) {
        return -1;
    }
    int rv = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) != 0 ? -1 : rv;
}

/* /etc/hosts, /etc/hostname and /etc/resolv.conf: netplane's with networks
 * (and the sandbox's namespace into netns), else made here (the host's
 * resolv.conf, the host's network). */
static int ctr_prepare_etc(struct ctr_task *t, char *etc, char *netns, char *err)
{
    char host[256], path[PATH_MAX + 32], text[1024];
    snprintf(etc, PATH_MAX, "%s/etc", t->head.dir);
    int rv = exec_mkdir_p(etc);
    if (rv != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "%s: %s", etc, strerror(-rv));
        return -1;
    }
    netns[0] = '\0';
    if (t->task->n_networks > 0) {
        struct netplane *net = t->x->base.net;
        char why[SWARM_ERRMSG_SIZE];
        if (net == NULL) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE,
                          "network: this node cannot attach tasks to networks");
            return -1;
        }
        if (netplane_sandbox_create(net, t->task, etc, netns, why) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "network: %s", why);
            return -1;
        }
        t->sandbox = true;
        return 0;
    }
    ocispec_hostname(t->task, host, sizeof host);
    snprintf(path, sizeof path, "%s/hostname", etc);
    snprintf(text, sizeof text, "%s\n", host);
    rv = ctr_write_file(path, text);
    snprintf(path, sizeof path, "%s/hosts", etc);
    snprintf(text, sizeof text,
             "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
             "127.0.1.1\t%s\n", host);
    rv |= ctr_write_file(path, text);
    char *resolv = ctr_read_file("/etc/resolv.conf");
    snprintf(path, sizeof path, "%s/resolv.conf", etc);
    rv |= ctr_write_file(path, resolv != NULL ? resolv : "");
    free(resolv);
    if (rv != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "%s: %s", etc, strerror(errno));
        return -1;
    }
    return 0;
}

/* Named volumes: VOLUMES/<name>/_data, made on first use, kept. */
static int ctr_prepare_volumes(struct ctr_task *t, char **dirs, char *err)
{
    const Swarm__ContainerSpec *c = t->task->spec->container;
    for (size_t i = 0; i < c->n_mounts; i++) {
        const Swarm__Mount *m = c->mounts[i];
        struct stat st;
        if (strcmp(m->type, "bind") == 0 && stat(m->source, &st) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE,
                          "invalid mount config for type \"bind\": bind source path does not "
                          "exist: %s", m->source);
            return -1;
        }
        if (strcmp(m->type, "volume") != 0) {
            continue;
        }
        if (!id_is_path_safe(m->source) ||
            asprintf(&dirs[i], "%s/%s/_data", t->x->volumes_dir, m->source) < 0) {
            dirs[i] = NULL;
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "invalid volume name \"%s\"", m->source);
            return -1;
        }
        int rv = exec_mkdir_p(dirs[i]);
        if (rv != 0 || chmod(dirs[i], 0755) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "volume %s: %s", m->source,
                          strerror(rv != 0 ? -rv : errno));
            return -1;
        }
    }
    return 0;
}

/* The image's health check when the spec has none (Docker's rule). */
static void ctr_image_health(struct ctr_task *t, const struct image_info *info)
{
    const struct image_health *ih = info->healthcheck;
    if (t->task->spec->container->healthcheck != NULL || ih == NULL || ih->n_test == 0) {
        return;
    }
    Swarm__HealthConfig *hc = calloc(1, sizeof *hc);
    if (hc == NULL) {
        return;
    }
    swarm__health_config__init(hc);
    hc->test = calloc(ih->n_test, sizeof *hc->test);
    for (size_t i = 0; hc->test != NULL && i < ih->n_test; i++) {
        if ((hc->test[i] = strdup(ih->test[i])) != NULL) {
            hc->n_test++;
        }
    }
    hc->interval_ms = ih->interval_ns / 1000000;
    hc->timeout_ms = ih->timeout_ns / 1000000;
    hc->start_period_ms = ih->start_period_ns / 1000000;
    hc->retries = ih->retries;
    t->image_health = hc;
}

static const Swarm__HealthConfig *ctr_health_config(const struct ctr_task *t)
{
    const Swarm__HealthConfig *hc = t->task->spec->container->healthcheck;
    return hc != NULL ? hc : t->image_health;
}

/* Everything before `runc run`: the config.json in the bundle dir. */
static int ctr_prepare(struct ctr_task *t, const struct image_info *info, char *err)
{
    const Swarm__ContainerSpec *c = t->task->spec->container;
    char rootfs[PATH_MAX], etc[PATH_MAX], netns[PATH_MAX], path[PATH_MAX + 32];
    char hosts[PATH_MAX + 16], hostname[PATH_MAX + 16], resolv[PATH_MAX + 16];
    char cg_path[128];
    char **vols = calloc(c->n_mounts + 1, sizeof *vols);
    char *passwd = NULL, *group = NULL, *json = NULL;
    struct ocispec_user user;
    int rv = -1;
    if (vols == NULL) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "out of memory");
        return -1;
    }
    ctr_image_health(t, info);
    if (exec_health_validate(ctr_health_config(t), err) != 0) {
        goto out;
    }
    t->stop_signal = ocispec_stop_signal(c->stop_signal, info->stop_signal);
    if (t->stop_signal < 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "invalid signal: %s",
                      c->stop_signal != NULL && c->stop_signal[0] ? c->stop_signal
                                                                  : info->stop_signal);
        goto out;
    }
    if (imgstore_snapshot_create(t->x->images, info->digest, t->head.entry.id, rootfs, err) != 0) {
        goto out;
    }
    t->snapshot = true;
    ctr_phase(t, "snapshot");
    snprintf(t->rootfs, sizeof t->rootfs, "%s", rootfs);
    snprintf(path, sizeof path, "%s/etc/passwd", rootfs);
    passwd = ctr_read_file(path);
    snprintf(path, sizeof path, "%s/etc/group", rootfs);
    group = ctr_read_file(path);
    const char *uspec = c->user != NULL && c->user[0] != '\0' ? c->user : info->user;
    if (ocispec_user_resolve(uspec, passwd, group, &user, err) != 0 ||
        ctr_prepare_volumes(t, vols, err) != 0 || ctr_prepare_etc(t, etc, netns, err) != 0) {
        goto out;
    }
    snprintf(cg_path, sizeof cg_path, "/" EXEC_CGROUP_PREFIX "%s/ctr", t->head.entry.id);
    snprintf(hosts, sizeof hosts, "%s/hosts", etc);
    snprintf(hostname, sizeof hostname, "%s/hostname", etc);
    snprintf(resolv, sizeof resolv, "%s/resolv.conf", etc);
    struct ocispec_image img = {
        .has_entrypoint = info->has_entrypoint, .entrypoint = info->entrypoint,
        .n_entrypoint = info->n_entrypoint, .has_cmd = info->has_cmd, .cmd = info->cmd,
        .n_cmd = info->n_cmd, .env = info->env, .n_env = info->n_env,
        .working_dir = info->working_dir, .user = info->user,
    };
    struct ocispec_input in = {
        .task = t->task, .image = &img, .user = &user, .node_id = t->x->base.node_id,
        .rootfs = rootfs, .netns = netns[0] != '\0' ? netns : NULL, .hosts_path = hosts,
        .hostname_path = hostname, .resolv_path = resolv, .init_path = t->x->tini,
        .volume_dirs = (const char *const *)vols, .cgroups_path = cg_path,
        .pids_limit = EXEC_CGROUP_PIDS_MAX,
        /* The memory limit is the parent's (made in ctr_spawn),
         * where an OOM kill is counted and outlives runc's own cgroup. */
        .memory_in_parent = exec_cgroup1_available("memory"),
    };
    if (ocispec_build(&in, &json, err) != 0) {
        goto out;
    }
    int mk = exec_mkdir_p(t->bundle);
    snprintf(path, sizeof path, "%s/config.json", t->bundle);
    if (mk != 0 || ctr_write_file(path, json) != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(mk != 0 ? -mk : errno));
        goto out;
    }
    ctr_phase(t, "config");
    rv = 0;
out:
    for (size_t i = 0; i < c->n_mounts; i++) {
        free(vols[i]);
    }
    free(vols);
    free(passwd);
    free(group);
    free(json);
    return rv;
}

/* ------------------------------------------------------------- running */

static void ctr_exit_cb(uv_process_t *h, int64_t status, int sig);

static int ctr_spawn(struct ctr_task *t, char *err)
{
    int out_fd = open(t->head.out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int err_fd = open(t->head.err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    /* Through swarmd's shim, whose tree dies with swarmd: runc, and the
     * container's init reparented to the shim (a subreaper) when runc goes. */
    char ppid[48], rootfs[PATH_MAX + 32], task[128], joined[4 * PATH_MAX];
    snprintf(ppid, sizeof ppid, "SWARM_SHIM_PPID=%d", (int)getpid());
    snprintf(rootfs, sizeof rootfs, "SWARM_SHIM_RELEASE_ROOTFS=%s", t->rootfs);
    snprintf(task, sizeof task, "SWARM_SHIM_RELEASE_TASK=%s", t->head.entry.id);
    const Swarm__ResourceRequirements *r = t->task->spec->resources;
    const Swarm__Resources *lim = r != NULL ? r->limits : NULL;
    char pid_file[PATH_MAX + 16];
    snprintf(pid_file, sizeof pid_file, "%s/init.pid", t->head.dir);
    (void)unlink(pid_file);
    char *args[] = {t->x->base.shim_path, "--task-exec", t->x->runc, t->x->runc, "--root",
                    t->x->runc_root, "run", "--pid-file", pid_file, "--bundle", t->bundle,
                    t->head.entry.id, NULL};
    char *env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ppid,
                   rootfs, task, NULL};
    if (out_fd < 0 || err_fd < 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "log files in %s: %s", t->head.dir, strerror(errno));
        if (out_fd >= 0) {
            close(out_fd);
        }
        return -1;
    }
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = out_fd},
        {.flags = UV_INHERIT_FD, .data.fd = err_fd},
    };
    /* The v1 parents with the limits, made last before the spawn: from the
     * fork on, the shim removes them if swarmd dies (even before it could
     * ask to hear of it, exec_shim.c); the OOM watch is armed before
     * anything runs in them (a v1 OOM kill is counted in runc's cgroup
     * below, which runc deletes, not here). */
    int made = exec_cgroup1_create(t->head.entry.id, lim != NULL ? lim->memory_bytes : 0,
                                   lim != NULL ? lim->nano_cpus : 0, joined, sizeof joined);
    if (made > 0 && t->oom_fd < 0) {
        t->oom_fd = exec_cgroup1_oom_watch(t->head.entry.id);
    }
    uv_process_options_t opts = {
        .exit_cb = ctr_exit_cb,
        .file = t->x->base.shim_path,
        .args = args,
        .env = env,
        .cwd = t->head.dir,
        .flags = UV_PROCESS_DETACHED,
        .stdio_count = 3,
        .stdio = stdio,
    };
    int rv = uv_spawn(t->x->base.loop, &t->proc, &opts);
    close(out_fd);
    close(err_fd);
    t->proc.data = t;
    t->handles++;
    if (rv != 0) {
        uv_close((uv_handle_t *)&t->proc, ctr_close_cb);
        exec_cgroup1_remove(t->head.entry.id, true); /* nothing runs in them */
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "starting: %s: %s", t->x->runc, uv_strerror(rv));
        return -1;
    }
    t->pid = t->proc.pid;
    t->phase = CTR_RUNNING;
    return 0;
}

static void ctr_health_cb(enum exec_health_event ev, void *data)
{
    struct ctr_task *t = data;
    if (ev == EXEC_HEALTH_HEALTHY) {
        exec_report(&t->x->base, t->head.entry.id, SWARM__TASK_STATE__TASK_STATE_RUNNING, "started",
                    "", 0, t->pid);
        return;
    }
    t->unhealthy = true;
    const Swarm__ContainerSpec *c = t->task->spec->container;
    ctr_stop_task(t, c->stop_grace_period_ms > 0 ? (uint64_t)c->stop_grace_period_ms
                                                 : EXECUTOR_DEFAULT_STOP_GRACE_MS);
}

/* Checks run inside the container: `runc exec ID CMD...` under swarmd's
 * shim (so a check's tree dies with swarmd). 1 when armed. */
static int ctr_health_start(struct ctr_task *t)
{
    const Swarm__HealthConfig *hc = ctr_health_config(t);
    if (!exec_health_enabled(hc)) {
        return 0;
    }
    t->health_argv[0] = t->x->runc;
    t->health_argv[1] = "--root";
    t->health_argv[2] = t->x->runc_root;
    t->health_argv[3] = "exec";
    t->health_argv[4] = t->head.entry.id;
    t->health_argv[5] = NULL;
    t->health_env[0] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    t->health_env[1] = NULL;
    struct exec_health_config cfg = {
        .loop = t->x->base.loop,
        .hc = hc,
        .shim_path = t->x->base.shim_path,
        .cwd = t->head.dir,
        .log_path = t->head.health_path,
        .env = t->health_env,
        .exec_prefix = t->health_argv,
        .cb = ctr_health_cb,
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

/* runc writes its pid file once the container's init exists: the task
 * runs from then on (or, with a health check, from its first success). */
static void ctr_started_cb(uv_timer_t *timer)
{
    struct ctr_task *t = timer->data;
    char path[PATH_MAX + 16];
    if (t->freeing || t->exited || t->head.stop || t->x->base.closing) {
        uv_timer_stop(&t->timer);
        return;
    }
    snprintf(path, sizeof path, "%s/init.pid", t->head.dir);
    if (access(path, F_OK) != 0) {
        return; /* polled again in CTR_START_POLL_MS */
    }
    uv_timer_stop(&t->timer);
    ctr_phase(t, "pidfile");
    if (ctr_health_start(t) == 0) {
        exec_report(&t->x->base, t->head.entry.id, SWARM__TASK_STATE__TASK_STATE_RUNNING, "started",
                    "", 0, t->pid);
        ctr_phase(t, "running");
    }
}

static void ctr_pull_cb(void *data, int status, const char *errmsg,
                        const struct image_info *info);

static void ctr_pull_start(struct ctr_task *t)
{
    char err[SWARM_ERRMSG_SIZE];
    const Swarm__ContainerSpec *c = t->task->spec->container;
    t->phase = CTR_PULLING;
    int rv = imgstore_pull(t->x->images, c->image, c->registry_auth, ctr_pull_cb, t, &t->pull,
                           err);
    if (rv != 0) {
        t->pull = NULL;
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_REJECTED, "rejected", err, 0);
    }
}

static void ctr_retry_cb(uv_timer_t *timer)
{
    struct ctr_task *t = timer->data;
    if (t->freeing || ctr_interrupted(t)) {
        return;
    }
    ctr_pull_start(t);
}

static void ctr_pull_cb(void *data, int status, const char *errmsg,
                        const struct image_info *info)
{
    struct ctr_task *t = data;
    char err[SWARM_ERRMSG_SIZE];
    t->pull = NULL;
    if (t->freeing || ctr_interrupted(t)) {
        return;
    }
    if (status == SWARM_ENOTFOUND || status == SWARM_EINVAL || status == SWARM_EPERM) {
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_REJECTED, "rejected", errmsg, 0);
        return;
    }
    if (status != 0) {
        /* Unreachable registry and the like: said in `service ps`, tried
         * again with backoff while the task is meant to run. */
        t->retry_ms = t->retry_ms == 0 ? CTR_PULL_RETRY_MIN_MS
                      : t->retry_ms * 2 > CTR_PULL_RETRY_MAX_MS ? CTR_PULL_RETRY_MAX_MS
                                                                : t->retry_ms * 2;
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "pulling %s: %s (retrying in %d s)",
                      t->task->spec->container->image, errmsg, t->retry_ms / 1000);
        exec_report(&t->x->base, t->head.entry.id, SWARM__TASK_STATE__TASK_STATE_PREPARING,
                    "preparing", err, 0, 0);
        uv_timer_start(&t->timer, ctr_retry_cb, (uint64_t)t->retry_ms, 0);
        return;
    }
    ctr_phase(t, "image");
    if (ctr_prepare(t, info, err) != 0) {
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_REJECTED, "rejected", err, 0);
        return;
    }
    exec_report(&t->x->base, t->head.entry.id, SWARM__TASK_STATE__TASK_STATE_STARTING, "starting",
                "", 0, 0);
    ctr_phase(t, "starting");
    if (ctr_interrupted(t)) {
        return;
    }
    if (ctr_spawn(t, err) != 0) {
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_FAILED, "starting", err, 0);
        return;
    }
    ctr_phase(t, "spawned");
    uv_timer_start(&t->timer, ctr_started_cb, CTR_START_POLL_MS, CTR_START_POLL_MS);
}

static void ctr_step_cb(uv_timer_t *timer)
{
    struct ctr_task *t = timer->data;
    char err[SWARM_ERRMSG_SIZE];
    if (t->x->base.closing || t->freeing || ctr_interrupted(t)) {
        return;
    }
    ctr_phase(t, "step");
    exec_report(&t->x->base, t->head.entry.id, SWARM__TASK_STATE__TASK_STATE_PREPARING, "preparing",
                "", 0, 0);
    if (ctr_interrupted(t)) {
        return;
    }
    const Swarm__ContainerSpec *c = t->task->spec->container;
    int rv = exec_mkdir_p(t->head.dir);
    if (c->image == NULL || c->image[0] == '\0' || rv != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, rv != 0 ? "task dir %s: %s" : "no image to run",
                      t->head.dir, strerror(-rv));
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_REJECTED, "rejected", err, 0);
        return;
    }
    if (ctr_images(t->x, err) != 0) {
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_REJECTED, "rejected", err, 0);
        return;
    }
    ctr_pull_start(t);
}

static void ctr_exit_cb(uv_process_t *h, int64_t status, int sig)
{
    struct ctr_task *t = h->data;
    char err[128];
    t->exited = true;
    t->phase = CTR_ENDED;
    ctr_health_stop(t);
    uv_timer_stop(&t->timer);
    int code = sig != 0 ? 128 + sig : (int)status;
    bool oom = code == 137 && !t->head.stop && exec_cgroup1_oom_seen(t->oom_fd);
    uv_close((uv_handle_t *)&t->proc, ctr_close_cb);
    /* runc run deletes the container when it ends; if runc itself was
     * killed, the container may live on: it goes now, as all it held. */
    ctr_release(t);
    if (t->x->base.closing || t->head.removed) {
        ctr_maybe_free(t);
        return;
    }
    if (t->unhealthy) {
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_FAILED, "failed", "task: unhealthy container",
                code);
    } else if (t->head.stop) {
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_SHUTDOWN, "shutdown", "", code);
    } else if (oom) {
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_FAILED, "failed",
                "task: non-zero exit (137): OOM killed (memory limit reached)", 137);
    } else if (code != 0) {
        snprintf(err, sizeof err, "task: non-zero exit (%d)", code);
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_FAILED, "failed", err, code);
    } else {
        ctr_end(t, SWARM__TASK_STATE__TASK_STATE_COMPLETE, "finished", "", 0);
    }
}

/* The grace period is over: SIGKILL everything in the container; a runc
 * that still does not go is killed itself 2 s later. */
static void ctr_kill_cb(uv_timer_t *timer)
{
    struct ctr_task *t = timer->data;
    if (t->freeing || t->exited) {
        return;
    }
    if (!t->kill_sent) {
        t->kill_sent = true;
        ctr_kill(t, SIGKILL, true);
        uv_timer_start(&t->timer, ctr_kill_cb, EXEC_SHIM_KILL_FALLBACK_MS, 0);
        return;
    }
    kill(t->pid, SIGKILL);
    ctr_delete(t->x, t->head.entry.id);
}

static void ctr_stop_task(struct ctr_task *t, uint64_t grace_ms)
{
    uint64_t now = uv_now(t->x->base.loop);
    if (t->phase == CTR_PENDING || t->phase == CTR_PULLING) {
        t->head.stop = true;
        if (t->phase == CTR_PULLING) {
            if (t->pull != NULL) {
                imgstore_pull_cancel(t->pull);
                t->pull = NULL;
            }
            uv_timer_stop(&t->timer);
            (void)ctr_interrupted(t);
        }
        return;
    }
    if (t->phase != CTR_RUNNING || t->exited) {
        return;
    }
    ctr_health_stop(t);
    if (!t->head.stop) {
        t->head.stop = true;
        ctr_kill(t, t->stop_signal > 0 ? t->stop_signal : SIGTERM, false);
    } else if (t->kill_sent || (t->kill_at != 0 && t->kill_at <= now + grace_ms)) {
        return;
    }
    t->kill_at = now + grace_ms;
    uv_timer_start(&t->timer, ctr_kill_cb, grace_ms, 0);
}

static uint64_t ctr_grace(const struct ctr_task *t)
{
    const Swarm__ContainerSpec *c = t->task->spec->container;
    return c->stop_grace_period_ms > 0 ? (uint64_t)c->stop_grace_period_ms
                                       : EXECUTOR_DEFAULT_STOP_GRACE_MS;
}

/* ------------------------------------------------------------------ ops */

static int ctr_start(struct executor *e, const Swarm__Task *task)
{
    struct executor_ctr *x = (struct executor_ctr *)e;
    struct ctr_task *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return SWARM_ENOMEM;
    }
    t->task = pb_copy(&task->base);
    int ok = t->task != NULL && t->task->spec != NULL && t->task->spec->container != NULL &&
             exec_task_head_init(&t->head, e, task->id) == 0 &&
             asprintf(&t->bundle, "%s/bundle", t->head.dir) >= 0;
    if (!ok || exec_table_put(&e->tasks, &t->head.entry) != 0) {
        int rv = t->task != NULL && t->task->spec != NULL && t->task->spec->container == NULL
                     ? SWARM_EINVAL
                     : SWARM_ENOMEM;
        if (t->task != NULL) {
            swarm__task__free_unpacked(t->task, NULL);
        }
        exec_task_head_free(&t->head);
        free(t->bundle);
        free(t);
        return rv;
    }
    t->x = x;
    t->oom_fd = -1;
    t->next = x->all;
    if (x->all != NULL) {
        x->all->prev = t;
    }
    x->all = t;
    uv_timer_init(e->loop, &t->timer);
    t->timer.data = t;
    t->handles = 1;
    ctr_phase(t, "assigned");
    uv_timer_start(&t->timer, ctr_step_cb, 0, 0);
    return 0;
}

/* ctr_stop_task with the task's own grace period (exec_task_stop/remove). */
static void ctr_stop_own_grace(struct exec_task *h)
{
    struct ctr_task *t = (struct ctr_task *)h;
    ctr_stop_task(t, ctr_grace(t));
}

static void ctr_maybe_free_head(struct exec_task *h)
{
    ctr_maybe_free((struct ctr_task *)h);
}

static const struct exec_task_hooks ctr_hooks = {
    .stop = ctr_stop_own_grace,
    .maybe_free = ctr_maybe_free_head,
};

/* Containers of a previous run (swarmd was killed): not adopted. Each one
 * in our runc root goes with its snapshot and cgroups; then every snapshot
 * the store still has that no current task owns. */
static void ctr_cleanup_leftovers(struct executor *e)
{
    struct executor_ctr *x = (struct executor_ctr *)e;
    char err[SWARM_ERRMSG_SIZE];
    DIR *d = opendir(x->runc_root);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (!id_is_path_safe(de->d_name) || exec_table_get(&e->tasks, de->d_name) != NULL) {
            continue;
        }
        const char *kill_args[] = {"kill", "--all", de->d_name, "KILL", NULL};
        (void)ctr_runc_sync(x, kill_args);
        ctr_delete(x, de->d_name);
        exec_cgroup1_remove(de->d_name, true);
        log_warn("executor", "task %s: removed the container a previous run left", de->d_name);
    }
    if (d != NULL) {
        closedir(d);
    }
    /* Task dirs of containers whose runc state was already gone. */
    d = opendir(e->dir);
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (id_is_path_safe(de->d_name) && exec_table_get(&e->tasks, de->d_name) == NULL) {
            exec_cgroup1_remove(de->d_name, true);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    if (x->images == NULL && (access(x->images_dir, F_OK) != 0 || ctr_images(x, err) != 0)) {
        return; /* never used, or logged below at the first container */
    }
    size_t n = 0, removed = 0;
    const char **keep = calloc(e->tasks.count + 1, sizeof *keep);
    for (struct ctr_task *t = x->all; keep != NULL && t != NULL; t = t->next) {
        keep[n++] = t->head.entry.id;
    }
    if (keep != NULL && imgstore_cleanup_leftovers(x->images, keep, n, &removed, err) != 0) {
        log_warn("executor", "snapshots of a previous run: %s", err);
    } else if (removed > 0) {
        log_warn("executor", "removed %zu snapshot(s) a previous run left", removed);
    }
    free(keep);
}

static void ctr_close(struct executor *e, uint64_t grace_ms)
{
    struct executor_ctr *x = (struct executor_ctr *)e;
    struct ctr_task *t = x->all;
    while (t != NULL) {
        struct ctr_task *next = t->next;
        if (t->phase == CTR_RUNNING && !t->exited) {
            uint64_t g = ctr_grace(t);
            ctr_stop_task(t, g < grace_ms ? g : grace_ms);
        } else {
            ctr_maybe_free(t);
        }
        t = next;
    }
    if (x->all == NULL) {
        uv_close((uv_handle_t *)&x->guard, ctr_guard_closed_cb);
    }
}

static void ctr_images_closed_cb(void *data)
{
    struct executor_ctr *x = data;
    exec_base_finish(&x->base);
    free(x);
}

static void ctr_guard_closed_cb(uv_handle_t *h)
{
    struct executor_ctr *x = h->data;
    free(x->runc);
    free(x->runc_root);
    free(x->volumes_dir);
    free(x->tini);
    free(x->images_dir);
    if (x->images != NULL && x->own_images) {
        imgstore_close(x->images, ctr_images_closed_cb, x);
        return;
    }
    ctr_images_closed_cb(x);
}

static const struct executor_ops ctr_ops = {
    .start = ctr_start,
    .stop = exec_task_stop,
    .remove = exec_task_remove,
    .log_path = exec_task_log_path,
    .cleanup_leftovers = ctr_cleanup_leftovers,
    .close = ctr_close,
};

/* tini for --init: the static build when present (images need no libc). */
static char *ctr_find_init(void)
{
    static const char *const paths[] = {"/usr/bin/tini-static", "/usr/bin/tini",
                                        "/usr/local/bin/tini-static", "/usr/local/bin/tini"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        if (access(paths[i], X_OK) == 0) {
            return strdup(paths[i]);
        }
    }
    return NULL;
}

int executor_container_new(const struct executor_config *cfg, const char *runc,
                           struct executor **out, char *errmsg)
{
    struct executor_ctr *x = calloc(1, sizeof *x);
    if (x == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "executor: out of memory");
        return SWARM_ENOMEM;
    }
    int rv = exec_base_init(&x->base, &ctr_ops, cfg, errmsg);
    if (rv != 0) {
        free(x);
        return rv;
    }
    x->base.task_hooks = &ctr_hooks;
    /* runc's state, images and volumes live in swarmd's state dir. */
    const char *state = cfg->hide_dir != NULL ? cfg->hide_dir : cfg->dir;
    x->tini = ctr_find_init();
    if ((x->runc = strdup(runc)) == NULL || asprintf(&x->runc_root, "%s/runc", state) < 0 ||
        asprintf(&x->volumes_dir, "%s/volumes", state) < 0 ||
        asprintf(&x->images_dir, "%s/images", state) < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "executor: out of memory");
        rv = SWARM_ENOMEM;
        goto err;
    }
    if ((rv = exec_mkdir_p(x->runc_root)) != 0 || (rv = exec_mkdir_p(cfg->dir)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "executor: %s: %s", x->runc_root,
                      strerror(-rv));
        rv = SWARM_EIO;
        goto err;
    }
    x->images = cfg->images; /* NULL: our own, opened on first need */
    x->insecure = cfg->insecure_registries;
    x->n_insecure = cfg->n_insecure_registries;
    uv_timer_init(cfg->loop, &x->guard);
    x->guard.data = x;
    *out = &x->base;
    return 0;
err:
    free(x->runc);
    free(x->runc_root);
    free(x->volumes_dir);
    free(x->images_dir);
    free(x->tini);
    x->base.done = NULL;
    exec_base_finish(&x->base);
    free(x);
    return rv;
}
