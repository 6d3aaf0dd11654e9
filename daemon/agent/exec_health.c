/* Docker-style health checks of a process task. A check is a process run
 * through the shim (so its whole tree dies with swarmd), isolated as the
 * task is (mount namespace, capabilities, user: the shim reads the same
 * SWARM_SHIM_* variables), with the task's environment and working dir,
 * outside the task's cgroup (a probe should not be starved by, or count
 * against, the task's limits); its stdout/stderr are appended to the
 * task's health.log.
 *
 * One uv_timer per health: the wait before the next check, then the check's
 * timeout, then (once its shim was told to go) the check's kill fallback.
 * One uv_process per check, closed once it exited.
 * Happy path:
 *   exec_health_start -> timer(interval)
 *   timer: spawn the check -> timer(timeout)
 *   check exits 0 -> failures = 0; first time: cb(HEALTHY); timer(interval)
 * Failure paths:
 *   - check exits non-zero, is killed, times out (its shim takes its tree
 *     down), the program is missing or uv_spawn fails -> a failure; counted
 *     unless the task never was healthy and the check started within
 *     start_period; `retries` counted in a row -> cb(UNHEALTHY), no more
 *     checks;
 *   - the timeout fires after the check exited but before the loop saw it
 *     (the loop was late: timers run before exits are read) -> judged by
 *     its exit, not as timed out;
 *   - a shim told to go (timeout, close) still there after
 *     EXEC_SHIM_KILL_FALLBACK_MS (stopped, traced, stuck) -> SIGKILLed with
 *     its session, so that neither the checks nor a close wait forever;
 *   - exec_health_close: a running check's tree is killed and its handle
 *     closed after its exit (so it is reaped), the timer (its fallback until
 *     then) with it; without one the timer is closed at once; the last close
 *     callback frees the health and calls `closed`. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "executor_int.h"
#include "log.h"

struct health_check {
    uv_process_t proc;
    struct exec_health *h;
    int pid;
    uint64_t started; /* loop time of the spawn */
    bool timed_out;
    bool kill_sent; /* its shim was told to go; the timer is the fallback */
};

struct exec_health {
    struct exec_health_config cfg;
    uv_timer_t timer;
    struct health_check *check; /* the running check, NULL: none */
    int handles;                /* timer + checks not yet closed */
    bool closing, healthy, unhealthy;
    int failures;
    uint64_t started_at, interval, timeout, start_period;
    int retries;
    void (*closed)(void *data);
    void *closed_data;
};

static void health_timer_cb(uv_timer_t *timer);

bool exec_health_enabled(const Swarm__HealthConfig *hc)
{
    return hc != NULL && hc->n_test > 0 && strcmp(hc->test[0], "NONE") != 0;
}

int exec_health_validate(const Swarm__HealthConfig *hc, char *err)
{
    if (!exec_health_enabled(hc)) {
        return 0;
    }
    const char *kind = hc->test[0];
    if (strcmp(kind, "CMD") != 0 && strcmp(kind, "CMD-SHELL") != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "healthcheck: unknown test type \"%s\" (want CMD, CMD-SHELL or NONE)",
                 kind);
        return -1;
    }
    if (hc->n_test < 2 || hc->test[1][0] == '\0') {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "healthcheck: %s without a command", kind);
        return -1;
    }
    return 0;
}

static uint64_t health_ms(int64_t v, uint64_t dflt)
{
    return v > 0 ? (uint64_t)v : dflt;
}

/* A handle of ours is gone; the last one frees the health. */
static void health_handle_gone(struct exec_health *h)
{
    if (--h->handles > 0) {
        return;
    }
    void (*closed)(void *data) = h->closed;
    void *data = h->closed_data;
    free(h);
    if (closed != NULL) {
        closed(data);
    }
}

static void health_timer_closed_cb(uv_handle_t *handle)
{
    health_handle_gone(handle->data);
}

static void health_check_closed_cb(uv_handle_t *handle)
{
    struct health_check *c = handle->data;
    struct exec_health *h = c->h;
    free(c);
    health_handle_gone(h);
}

/* Append a line about a check that could not run to health.log. */
static void health_log(struct exec_health *h, const char *what)
{
    int fd = open(h->cfg.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dprintf(fd, "swarmd: health check: %s\n", what);
        close(fd);
    }
}

/* A check ended (or could not run): count it, report, schedule the next. */
static void health_result(struct exec_health *h, bool ok, uint64_t check_started)
{
    if (ok) {
        h->failures = 0;
        if (!h->healthy) {
            h->healthy = true;
            h->cfg.cb(EXEC_HEALTH_HEALTHY, h->cfg.data);
            if (h->closing) {
                return; /* the callback closed us */
            }
        }
    } else if (h->healthy || check_started >= h->started_at + h->start_period) {
        /* Docker: failures while still starting up, within the start period,
         * do not count; once healthy every failure does. */
        if (++h->failures >= h->retries) {
            h->unhealthy = true;
            h->cfg.cb(EXEC_HEALTH_UNHEALTHY, h->cfg.data);
            return; /* no more checks: the owner stops the task */
        }
    }
    uv_timer_start(&h->timer, health_timer_cb, h->interval, 0);
}

static void health_check_exit_cb(uv_process_t *proc, int64_t status, int sig)
{
    struct health_check *c = proc->data;
    struct exec_health *h = c->h;
    if (sig != 0) {
        exec_kill_session(c->pid); /* its shim could not clean up after it */
    }
    h->check = NULL;
    bool ok = !c->timed_out && sig == 0 && status == 0;
    if (c->timed_out) {
        health_log(h, "timed out, killed");
    }
    uv_close((uv_handle_t *)proc, health_check_closed_cb);
    if (h->closing) {
        /* The timer was its kill fallback: no longer needed. */
        uv_close((uv_handle_t *)&h->timer, health_timer_closed_cb);
        return;
    }
    uv_timer_stop(&h->timer);
    health_result(h, ok, c->started);
}

/* The check's argv after the shim's "--task-exec PROGRAM": CMD runs the
 * program itself (looked up in the task's PATH), CMD-SHELL runs /bin/sh -c. */
static int health_argv(struct exec_health *h, char *program, size_t size, const char **argv,
                       char *err)
{
    const Swarm__HealthConfig *hc = h->cfg.hc;
    if (h->cfg.exec_prefix != NULL) {
        /* Inside a container: the prefix (runc exec) finds the program. */
        size_t n = 0;
        for (; h->cfg.exec_prefix[n] != NULL; n++) {
            argv[n] = h->cfg.exec_prefix[n];
        }
        snprintf(program, size, "%s", h->cfg.exec_prefix[0]);
        if (strcmp(hc->test[0], "CMD-SHELL") == 0) {
            argv[n++] = "/bin/sh";
            argv[n++] = "-c";
            argv[n++] = hc->test[1];
        } else {
            for (size_t i = 1; i < hc->n_test; i++) {
                argv[n++] = hc->test[i];
            }
        }
        argv[n] = NULL;
        return 0;
    }
    if (strcmp(hc->test[0], "CMD-SHELL") == 0) {
        snprintf(program, size, "/bin/sh");
        argv[0] = "/bin/sh";
        argv[1] = "-c";
        argv[2] = hc->test[1];
        argv[3] = NULL;
        return 0;
    }
    const char *path_env = NULL;
    for (char *const *e = h->cfg.env; *e != NULL; e++) {
        if (strncmp(*e, "PATH=", 5) == 0) {
            path_env = *e + 5;
        }
    }
    if (exec_lookup_program(hc->test[1], path_env, h->cfg.cwd, program, size, err) != 0) {
        return -1;
    }
    for (size_t i = 1; i < hc->n_test; i++) {
        argv[i - 1] = hc->test[i];
    }
    argv[hc->n_test - 1] = NULL;
    return 0;
}

/* The task's env, but outside its cgroup (see the top of the file). */
static char **health_env(struct exec_health *h)
{
    size_t n = 0;
    while (h->cfg.env[n] != NULL) {
        n++;
    }
    char **env = calloc(n + 1, sizeof *env);
    if (env == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *kv = h->cfg.env[i];
        env[i] = strncmp(kv, "SWARM_SHIM_CGROUP_TASK=", 23) == 0 ? "SWARM_SHIM_CGROUP_TASK="
                                                                   : (char *)kv;
    }
    return env;
}

/* Spawn a check; -1 (with the reason in health.log) when it cannot run. */
static int health_spawn(struct exec_health *h)
{
    const Swarm__HealthConfig *hc = h->cfg.hc;
    char program[PATH_MAX], err[SWARM_ERRMSG_SIZE];
    size_t n_prefix = 0;
    while (h->cfg.exec_prefix != NULL && h->cfg.exec_prefix[n_prefix] != NULL) {
        n_prefix++;
    }
    const char **args = calloc(hc->n_test + n_prefix + 8, sizeof *args);
    char **env = health_env(h);
    struct health_check *c = calloc(1, sizeof *c);
    int fd = open(h->cfg.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int rv = -1;
    if (args == NULL || env == NULL || c == NULL || fd < 0) {
        snprintf(err, sizeof err, "cannot run: out of memory or no %s", h->cfg.log_path);
        goto out;
    }
    args[0] = h->cfg.shim_path;
    args[1] = "--task-exec";
    args[2] = program;
    if (health_argv(h, program, sizeof program, args + 3, err) != 0) {
        goto out;
    }
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = fd},
        {.flags = UV_INHERIT_FD, .data.fd = fd},
    };
    uv_process_options_t opts = {
        .exit_cb = health_check_exit_cb,
        .file = h->cfg.shim_path,
        .args = (char **)args,
        .env = env,
        .cwd = h->cfg.cwd,
        .flags = UV_PROCESS_DETACHED, /* its own session, as a task's */
        .stdio_count = 3,
        .stdio = stdio,
    };
    c->h = h;
    c->proc.data = c;
    int uvrv = uv_spawn(h->cfg.loop, &c->proc, &opts);
    h->handles++; /* initialised even when the spawn fails */
    if (uvrv != 0) {
        uv_close((uv_handle_t *)&c->proc, health_check_closed_cb);
        c = NULL;
        snprintf(err, sizeof err, "starting %s: %s", h->cfg.shim_path, uv_strerror(uvrv));
        goto out;
    }
    c->pid = c->proc.pid;
    c->started = uv_now(h->cfg.loop);
    h->check = c;
    c = NULL;
    rv = 0;
out:
    if (rv != 0) {
        health_log(h, err);
    }
    if (fd >= 0) {
        close(fd);
    }
    free(c);
    free(env);
    free(args);
    return rv;
}

/* Its shim takes the check's whole tree down and exits; the timer is the
 * fallback if it does not. */
static void health_check_kill(struct exec_health *h, struct health_check *c)
{
    c->kill_sent = true;
    kill(c->pid, EXEC_SHIM_KILL_SIGNAL);
    kill(c->pid, SIGCONT);
    uv_timer_start(&h->timer, health_timer_cb, EXEC_SHIM_KILL_FALLBACK_MS, 0);
}

/* The check's shim has exited, though the loop may not have seen it yet
 * (looked at without reaping it: libuv does that). */
static bool health_check_exited(const struct health_check *c)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == c->pid;
}

static void health_timer_cb(uv_timer_t *timer)
{
    struct exec_health *h = timer->data;
    struct health_check *c = h->check;
    if (c != NULL && c->kill_sent) { /* its shim did not go: it goes, with its session */
        kill(c->pid, SIGKILL);
        exec_kill_session(c->pid);
        return; /* its exit callback follows */
    }
    if (c != NULL) { /* the timeout of the running check */
        if (!health_check_exited(c)) {
            c->timed_out = true;
            health_check_kill(h, c);
        }
        return; /* judged in its exit callback */
    }
    if (h->closing) {
        return;
    }
    uint64_t now = uv_now(h->cfg.loop);
    if (health_spawn(h) != 0) {
        health_result(h, false, now);
        return;
    }
    uv_timer_start(&h->timer, health_timer_cb, h->timeout, 0);
}

int exec_health_start(const struct exec_health_config *cfg, struct exec_health **out)
{
    struct exec_health *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return SWARM_ENOMEM;
    }
    h->cfg = *cfg;
    h->interval = health_ms(cfg->hc->interval_ms, EXEC_HEALTH_DEFAULT_INTERVAL_MS);
    h->timeout = health_ms(cfg->hc->timeout_ms, EXEC_HEALTH_DEFAULT_TIMEOUT_MS);
    h->start_period = health_ms(cfg->hc->start_period_ms, 0);
    h->retries = cfg->hc->retries > 0 ? cfg->hc->retries : EXEC_HEALTH_DEFAULT_RETRIES;
    h->started_at = uv_now(cfg->loop);
    uv_timer_init(cfg->loop, &h->timer);
    h->timer.data = h;
    h->handles = 1;
    uv_timer_start(&h->timer, health_timer_cb, h->interval, 0);
    *out = h;
    return 0;
}

void exec_health_close(struct exec_health *h, void (*closed)(void *data), void *data)
{
    if (h->closing) {
        return;
    }
    h->closing = true;
    h->closed = closed;
    h->closed_data = data;
    if (h->check != NULL) {
        /* Its handle and the timer are closed in its exit callback, once it
         * is reaped; until then the timer is its kill fallback. */
        if (!h->check->kill_sent) {
            health_check_kill(h, h->check);
        }
        return;
    }
    uv_close((uv_handle_t *)&h->timer, health_timer_closed_cb);
}
