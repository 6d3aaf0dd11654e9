/* Executors with real processes (process executor, through the task_shim
 * binary built next to this test) and at scale (sim executor), driven by
 * bounded run-until loops. The test process is a child subreaper, so that
 * orphaned task processes come back to it and "nothing left behind" can be
 * checked by pid.
 *
 * Load-proof (CI runs this on 2 busy cores, once under ASan): what must
 * happen is waited for with WAIT_MS, a deadline only a hang reaches; what
 * must not happen is shown by construction (a health check that cannot
 * pass, a start period or grace period that outlasts the test, a check that
 * would hang for 1000 s), or by recorded state and ordering (lines the
 * checks wrote), never by "not within N ms". Elapsed times are only lower
 * bounds, read on the loop's clock, which is the one its timers follow. */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "executor.h"
#include "err.h"
#include "executor_int.h"
#include "netns.h"
#include "netplane.h"
#include "nlink.h"
#include "statedir.h"
#include "test.h"

#define REC_MAX 64
/* The deadline of every wait for something that must happen. */
#define WAIT_MS 60000

struct rec {
    char id[64];
    Swarm__TaskState state;
    char msg[64];
    char err[256];
    int exit_code;
    int pid;
};

struct fx {
    uv_loop_t loop;
    struct executor *e;
    char dir[64];
    char state[64]; /* what tasks must not see: a stand-in for the state dir */
    char old[96];   /* STATE/worker/tasks: task dirs of an older swarmd */
    char shim[PATH_MAX];
    struct rec recs[REC_MAX];
    int nrec;
    int closed;
    int running, shutdown; /* counts, for the sim executor */
};

/* A task with its protobuf parts in one place. */
struct tt {
    Swarm__Task task;
    Swarm__TaskSpec spec;
    Swarm__ContainerSpec c;
    Swarm__HealthConfig hc;
    char *args[8];
    char *env[8];
    char *test[4];
};

/* Where this run's tasks get their cgroups ("" without cgroup v2): a
 * cgroup of the run's own, so that runs side by side, which use the same
 * task IDs, never share one (the end of a task kills all of its cgroup). */
static char cg_root[PATH_MAX];
static char cg_rel[PATH_MAX]; /* cg_root as /proc/PID/cgroup shows it */
static pid_t cg_owner;        /* the runner: test.h runs each case in a child */

/* Each case runs in a forked child (test.h), which does not inherit the
 * subreaper bit: tasks orphaned by a case must come back to that child. */
static void subreaper_again(void)
{
    if (getppid() == cg_owner) {
        prctl(PR_SET_CHILD_SUBREAPER, 1);
    }
}

__attribute__((constructor)) static void become_subreaper(void)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pthread_atfork(NULL, NULL, subreaper_again);
    cg_owner = getpid();
    const char *roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    char path[PATH_MAX];
    for (size_t i = 0; i < 2 && cg_root[0] == '\0'; i++) {
        snprintf(path, sizeof path, "%s/cgroup.controllers", roots[i]);
        if (access(path, R_OK) != 0 || access(roots[i], W_OK) != 0) {
            continue;
        }
        snprintf(cg_rel, sizeof cg_rel, "/test-exec-%d", (int)getpid());
        snprintf(path, sizeof path, "%s%s", roots[i], cg_rel);
        if (mkdir(path, 0755) == 0) {
            snprintf(cg_root, sizeof cg_root, "%s", path);
            setenv("SWARM_CGROUP_ROOT", cg_root, 1); /* read by executor_process_new */
        }
    }
}

/* The run's cgroup goes, with whatever a failed test left in it. */
__attribute__((destructor)) static void remove_cgroup_root(void)
{
    if (cg_root[0] == '\0' || getpid() != cg_owner) {
        return;
    }
    DIR *d = opendir(cg_root);
    struct dirent *de;
    char path[PATH_MAX + 256];
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_type == DT_DIR && de->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", cg_root, de->d_name);
            exec_cgroup_remove(path, true);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(cg_root);
}

static void status_cb(const char *id, const struct exec_status *st, void *data)
{
    struct fx *f = data;
    if (st->state == SWARM__TASK_STATE__TASK_STATE_RUNNING) {
        f->running++;
    }
    if (st->state == SWARM__TASK_STATE__TASK_STATE_SHUTDOWN) {
        f->shutdown++;
    }
    if (f->nrec >= REC_MAX) {
        return;
    }
    struct rec *r = &f->recs[f->nrec++];
    snprintf(r->id, sizeof r->id, "%s", id);
    r->state = st->state;
    snprintf(r->msg, sizeof r->msg, "%s", st->message);
    snprintf(r->err, sizeof r->err, "%s", st->err);
    r->exit_code = st->exit_code;
    r->pid = st->pid;
}

static void closed_cb(void *data)
{
    ((struct fx *)data)->closed++;
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void tick_close_cb(uv_handle_t *h)
{
    free(h);
}

/* Run the loop until pred holds or ms pass. */
static bool run_until(struct fx *f, bool (*pred)(struct fx *, const void *), const void *arg,
                      uint64_t ms)
{
    uv_timer_t *tick = malloc(sizeof *tick);
    uv_timer_init(&f->loop, tick);
    uv_timer_start(tick, tick_cb, 5, 5);
    uv_update_time(&f->loop);
    uint64_t end = uv_now(&f->loop) + ms;
    bool ok;
    while (!(ok = pred(f, arg)) && uv_now(&f->loop) < end) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)tick, tick_close_cb);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return ok;
}

static const struct rec *last_rec(struct fx *f, const char *id)
{
    for (int i = f->nrec - 1; i >= 0; i--) {
        if (strcmp(f->recs[i].id, id) == 0) {
            return &f->recs[i];
        }
    }
    return NULL;
}

static const struct rec *find_rec(struct fx *f, const char *id, Swarm__TaskState st)
{
    for (int i = 0; i < f->nrec; i++) {
        if (strcmp(f->recs[i].id, id) == 0 && f->recs[i].state == st) {
            return &f->recs[i];
        }
    }
    return NULL;
}

static const char *last_err(struct fx *f, const char *id)
{
    const struct rec *r = last_rec(f, id);
    return r != NULL ? r->err : "(none)";
}

static int last_state(struct fx *f, const char *id)
{
    const struct rec *r = last_rec(f, id);
    return r != NULL ? (int)r->state : -1;
}

static bool pred_ended(struct fx *f, const void *id)
{
    const struct rec *r = last_rec(f, id);
    return r != NULL && r->state >= SWARM__TASK_STATE__TASK_STATE_COMPLETE;
}

static bool pred_running(struct fx *f, const void *id)
{
    return find_rec(f, id, SWARM__TASK_STATE__TASK_STATE_RUNNING) != NULL;
}

static bool pred_closed(struct fx *f, const void *arg)
{
    (void)arg;
    return f->closed > 0;
}

static bool pred_count(struct fx *f, const void *arg)
{
    const int *want = arg; /* {running, shutdown} */
    return f->running >= want[0] && f->shutdown >= want[1];
}

static void fx_shim_path(char *out, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    snprintf(out, size, "%s/task_shim", dirname(self));
}

/* With `net`, a netplane on the state dir stand-in is made first and
 * given to the executor. */
static int fx_open_net(struct fx *f, bool sim, struct netplane **net)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test-exec-XXXXXX");
    snprintf(f->state, sizeof f->state, "/tmp/test-exec-state-XXXXXX");
    if (mkdtemp(f->dir) == NULL || mkdtemp(f->state) == NULL || uv_loop_init(&f->loop) != 0) {
        return -1;
    }
    snprintf(f->old, sizeof f->old, "%s/worker/tasks", f->state);
    fx_shim_path(f->shim, sizeof f->shim);
    char errmsg[SWARM_ERRMSG_SIZE];
    struct netplane_config ncfg = {&f->loop, f->state, "127.0.0.1"};
    if (net != NULL && netplane_new(&ncfg, net, errmsg) != 0) {
        return -1;
    }
    struct executor_config cfg = {
        .loop = &f->loop,
        .dir = f->dir,
        .hide_dir = f->state,
        .old_dir = f->old,
        .node_id = "node0123456789abcdefghijk",
        .cb = status_cb,
        .data = f,
        .shim_path = f->shim,
        .net = net != NULL ? *net : NULL,
    };
    return sim ? executor_sim_new(&cfg, &f->e, errmsg) : executor_process_new(&cfg, &f->e, errmsg);
}

static int fx_open(struct fx *f, bool sim)
{
    return fx_open_net(f, sim, NULL);
}

/* Close the executor and the loop; 0 when everything was released, -1
 * if the executor did not say it closed, -2 if a handle was left open. */
static int fx_close(struct fx *f, uint64_t grace_ms)
{
    executor_close(f->e, grace_ms, closed_cb, f);
    bool ok = run_until(f, pred_closed, NULL, WAIT_MS);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    int rv = uv_loop_close(&f->loop);
    statedir_remove_tree(f->dir);
    statedir_remove_tree(f->state);
    return !ok ? -1 : rv != 0 ? -2 : 0;
}

static void no_process_left_behind(void);

/* A case on a process executor: opened before; after, passed or failed,
 * closed (1 s of grace; every handle released) and no process left. */
static void proc_fx_setup(struct fx *f)
{
    ASSERT(fx_open(f, false) == 0);
}

static void proc_fx_teardown(struct fx *f)
{
    ASSERT_INT_EQ(fx_close(f, 1000), 0);
    no_process_left_behind();
}

#define PROC_TEST(tname) TEST_F(tname, struct fx, proc_fx_setup, proc_fx_teardown)

static void tt_init(struct tt *t, const char *id, const char *image)
{
    memset(t, 0, sizeof *t);
    swarm__task__init(&t->task);
    swarm__task_spec__init(&t->spec);
    swarm__container_spec__init(&t->c);
    t->task.id = (char *)id;
    t->task.slot = 7;
    t->task.service_name = "web";
    t->task.spec = &t->spec;
    t->spec.container = &t->c;
    t->c.image = (char *)image;
    t->c.args = t->args;
    t->c.env = t->env;
}

static void tt_sh(struct tt *t, const char *id, const char *script)
{
    tt_init(t, id, "/bin/sh");
    t->args[0] = "-c";
    t->args[1] = (char *)script;
    t->c.n_args = 2;
}

static bool file_has(const char *path, const char *want)
{
    char buf[4096] = {0};
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return false;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return strstr(buf, want) != NULL;
}

/* Gone (or a zombie we reaped as subreaper) within ms. */
static bool pid_gone(int pid, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        waitpid(pid, NULL, WNOHANG);
        if (kill(pid, 0) != 0 && errno == ESRCH) {
            return true;
        }
        usleep(10000);
    }
    return false;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The loop's clock, brought up to date: the executor's timers (grace
 * periods, health intervals, timeouts, start periods) count from it, so a
 * lower bound read on it holds by construction. */
static uint64_t loop_now(struct fx *f)
{
    uv_update_time(&f->loop);
    return uv_now(&f->loop);
}

/* How many lines of `path` are exactly `word`. */
static int count_lines(const char *path, const char *word)
{
    char line[256];
    int n = 0;
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return 0;
    }
    while (fgets(line, sizeof line, fp) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        n += strcmp(line, word) == 0;
    }
    fclose(fp);
    return n;
}

/* The last lines of `path`, joined by '\n' ("" if none). */
static void last_lines(const char *path, int want, char *out, size_t size)
{
    char lines[8][256];
    int n = 0;
    FILE *fp = fopen(path, "r");
    out[0] = '\0';
    while (fp != NULL && want <= 8 && fgets(lines[n % 8], sizeof lines[0], fp) != NULL) {
        n++;
    }
    if (fp != NULL) {
        fclose(fp);
    }
    for (int i = n > want ? n - want : 0; i < n; i++) {
        strncat(out, lines[i % 8], size - strlen(out) - 1);
    }
}

/* Until `path` has `n` lines `word`, or task `id` (if any) ended. */
struct lines_arg {
    const char *path, *word, *id;
    int n;
};

static bool pred_lines(struct fx *f, const void *arg)
{
    const struct lines_arg *a = arg;
    return count_lines(a->path, a->word) >= a->n || (a->id != NULL && pred_ended(f, a->id));
}

static bool wait_lines(struct fx *f, const char *path, const char *word, int n, const char *id)
{
    struct lines_arg a = {.path = path, .word = word, .id = id, .n = n};
    run_until(f, pred_lines, &a, WAIT_MS);
    return count_lines(path, word) >= n;
}

static bool pred_file_has(struct fx *f, const void *arg)
{
    (void)f;
    const char *const *a = arg; /* {path, text} */
    return file_has(a[0], a[1]);
}

/* Until `path` holds `text`, running the loop meanwhile. */
static bool wait_file_has(struct fx *f, const char *path, const char *text)
{
    const char *a[] = {path, text};
    return run_until(f, pred_file_has, a, WAIT_MS);
}

static bool pred_path_gone(struct fx *f, const void *path)
{
    (void)f;
    return access(path, F_OK) != 0;
}

static int count_recs(struct fx *f, const char *id, Swarm__TaskState st)
{
    int n = 0;
    for (int i = 0; i < f->nrec; i++) {
        n += strcmp(f->recs[i].id, id) == 0 && f->recs[i].state == st;
    }
    return n;
}

PROC_TEST(process_true_completes)
{
    struct tt t;
    tt_init(&t, "t1", "/bin/true");
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0); /* already known: no-op */
    ASSERT_INT_EQ(f->nrec, 0);                        /* reports come from the loop */
    ASSERT(run_until(f, pred_ended, "t1", WAIT_MS));
    ASSERT_INT_EQ(f->nrec, 4);
    ASSERT_INT_EQ(f->recs[0].state, SWARM__TASK_STATE__TASK_STATE_PREPARING);
    ASSERT_INT_EQ(f->recs[1].state, SWARM__TASK_STATE__TASK_STATE_STARTING);
    ASSERT_INT_EQ(f->recs[2].state, SWARM__TASK_STATE__TASK_STATE_RUNNING);
    ASSERT(f->recs[2].pid > 0);
    ASSERT_INT_EQ(f->recs[3].state, SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    ASSERT_STR_EQ(f->recs[3].msg, "finished");
    ASSERT_STR_EQ(f->recs[3].err, "");
    ASSERT_INT_EQ(f->recs[3].exit_code, 0);
    char path[256];
    snprintf(path, sizeof path, "%s/t1/pid", f->dir);
    ASSERT(access(path, F_OK) != 0); /* removed at exit */
    snprintf(path, sizeof path, "%s/t1", f->dir);
    ASSERT(access(path, F_OK) == 0); /* kept until remove */
    ASSERT_INT_EQ(executor_remove(f->e, "t1"), 0);
    ASSERT(access(path, F_OK) != 0);
    ASSERT_INT_EQ(executor_remove(f->e, "t1"), 0); /* idempotent */
    ASSERT_INT_EQ(f->nrec, 4);
}

PROC_TEST(process_exit_code_fails)
{
    struct tt t, k;
    tt_sh(&t, "t3", "exit 3");
    tt_sh(&k, "k9", "kill -9 $$");
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &k.task), 0);
    ASSERT(run_until(f, pred_ended, "t3", WAIT_MS));
    ASSERT(run_until(f, pred_ended, "k9", WAIT_MS));
    const struct rec *r = last_rec(f, "t3");
    ASSERT(r != NULL);
    ASSERT_INT_EQ(r->state, SWARM__TASK_STATE__TASK_STATE_FAILED);
    ASSERT_INT_EQ(r->exit_code, 3);
    ASSERT_STR_EQ(r->err, "task: non-zero exit (3)");
    r = last_rec(f, "k9");
    ASSERT(r != NULL);
    ASSERT_INT_EQ(r->state, SWARM__TASK_STATE__TASK_STATE_FAILED);
    ASSERT_STR_EQ(r->err, "task: killed by signal 9");
    ASSERT_INT_EQ(r->exit_code, 137);
}

PROC_TEST(process_missing_program_rejected)
{
    struct tt a, b, c, d;
    tt_init(&a, "a", "no-such-program-xyz");
    tt_init(&b, "b", "/no/such/program");
    char noexec[128];
    snprintf(noexec, sizeof noexec, "%s/noexec", f->dir);
    FILE *fp = fopen(noexec, "w");
    ASSERT(fp != NULL);
    fclose(fp);
    chmod(noexec, 0644);
    tt_init(&c, "c", noexec); /* not executable */
    tt_init(&d, "d", "/bin/true");
    d.c.dir = "/no/such/dir";
    ASSERT_INT_EQ(executor_start(f->e, &a.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &b.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &c.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &d.task), 0);
    ASSERT(run_until(f, pred_ended, "a", WAIT_MS));
    ASSERT(run_until(f, pred_ended, "b", WAIT_MS));
    ASSERT(run_until(f, pred_ended, "c", WAIT_MS));
    ASSERT(run_until(f, pred_ended, "d", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "a"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT_STR_EQ(last_err(f, "a"),
                  "exec: \"no-such-program-xyz\": executable file not found in $PATH");
    ASSERT_INT_EQ(last_state(f, "b"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT_STR_EQ(last_err(f, "b"),
                  "exec: \"/no/such/program\": stat /no/such/program: No such file or directory");
    ASSERT_INT_EQ(last_state(f, "c"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    char want[256];
    snprintf(want, sizeof want, "exec: \"%s\": permission denied", noexec);
    ASSERT_STR_EQ(last_err(f, "c"), want);
    ASSERT_INT_EQ(last_state(f, "d"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT(strstr(last_err(f, "d"), "/no/such/dir") != NULL);
    for (int i = 0; i < f->nrec; i++) { /* never spawned */
        ASSERT(f->recs[i].state != SWARM__TASK_STATE__TASK_STATE_RUNNING);
        ASSERT(f->recs[i].state != SWARM__TASK_STATE__TASK_STATE_STARTING);
    }
    Swarm__Task bad = SWARM__TASK__INIT;
    ASSERT_INT_EQ(executor_start(f->e, &bad), SWARM_EINVAL); /* no id */
    bad.id = "nospec";
    ASSERT_INT_EQ(executor_start(f->e, &bad), 0);
    ASSERT(run_until(f, pred_ended, "nospec", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "nospec"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT_STR_EQ(last_err(f, "nospec"), "no program to run: the task has no image");
}

PROC_TEST(process_stop_kills_after_grace)
{
    struct tt t, s;
    tt_sh(&t, "stubborn", "trap '' TERM; echo ready; while :; do sleep 0.05; done");
    t.c.stop_grace_period_ms = 300;
    tt_init(&s, "polite", "sleep");
    s.args[0] = "100";
    s.c.n_args = 1;
    s.c.stop_grace_period_ms = 3600000; /* only SIGTERM can end it within the test */
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &s.task), 0);
    ASSERT(run_until(f, pred_running, "stubborn", WAIT_MS));
    ASSERT(run_until(f, pred_running, "polite", WAIT_MS));
    const char *log = executor_log_path(f->e, "stubborn", false);
    ASSERT(log != NULL);
    ASSERT(wait_file_has(f, log, "ready")); /* SIGTERM is ignored from now on */
    int pid = find_rec(f, "stubborn", SWARM__TASK_STATE__TASK_STATE_RUNNING)->pid;
    uint64_t t0 = loop_now(f);
    ASSERT_INT_EQ(executor_stop(f->e, "stubborn"), 0);
    ASSERT_INT_EQ(executor_stop(f->e, "polite"), 0);
    ASSERT(run_until(f, pred_ended, "polite", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "polite"), SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT_INT_EQ(last_rec(f, "polite")->exit_code, 128 + SIGTERM); /* SIGTERM was enough */
    ASSERT(run_until(f, pred_ended, "stubborn", WAIT_MS));
    ASSERT(loop_now(f) - t0 >= 300); /* not killed before its grace period */
    ASSERT_INT_EQ(last_state(f, "stubborn"), SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT_INT_EQ(last_rec(f, "stubborn")->exit_code, 137);
    ASSERT(pid_gone(pid, WAIT_MS));
    ASSERT_INT_EQ(executor_stop(f->e, "stubborn"), 0); /* ended: left as it is */
    ASSERT_INT_EQ(executor_stop(f->e, "nope"), SWARM_ENOTFOUND);
}

PROC_TEST(process_stop_before_start)
{
    struct tt t;
    tt_init(&t, "early", "/bin/true");
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT_INT_EQ(executor_stop(f->e, "early"), 0);
    ASSERT(run_until(f, pred_ended, "early", WAIT_MS));
    ASSERT_INT_EQ(f->nrec, 1);
    ASSERT_INT_EQ(f->recs[0].state, SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
}

PROC_TEST(process_logs)
{
    struct tt t;
    tt_sh(&t, "logs", "echo out; echo err >&2");
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT(run_until(f, pred_ended, "logs", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "logs"), SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    char out[256], err[256];
    snprintf(out, sizeof out, "%s/logs/stdout.log", f->dir);
    snprintf(err, sizeof err, "%s/logs/stderr.log", f->dir);
    ASSERT_STR_EQ(executor_log_path(f->e, "logs", false), out);
    ASSERT_STR_EQ(executor_log_path(f->e, "logs", true), err);
    ASSERT(executor_log_path(f->e, "nope", true) == NULL);
    ASSERT(file_has(out, "out\n") && !file_has(out, "err"));
    ASSERT(file_has(err, "err\n") && !file_has(err, "out"));
    struct stat st;
    ASSERT(stat(out, &st) == 0 && (st.st_mode & 077) == 0);
    snprintf(out, sizeof out, "%s/logs", f->dir);
    ASSERT(stat(out, &st) == 0 && (st.st_mode & 0777) == 0700);
}

PROC_TEST(process_env_and_dir)
{
    struct tt t, w;
    tt_init(&t, "envtask", "sh"); /* looked up in the daemon's PATH */
    t.args[0] = "-c";
    t.args[1] = "echo \"[$SWARM_TASK_ID][$SWARM_TASK_SLOT][$SWARM_SERVICE_NAME]"
                "[$SWARM_NODE_ID][$FOO][$SWARM_SHIM_PPID][$SWARM_SHIM_CGROUP]\"; pwd;"
                "echo \"path=$PATH\"";
    t.c.n_args = 2;
    t.env[0] = "FOO=bar baz";
    t.env[1] = "SWARM_TASK_ID=forged";
    t.c.n_env = 2;
    tt_init(&w, "wd", "/bin/pwd");
    w.c.dir = f->dir;
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &w.task), 0);
    ASSERT(run_until(f, pred_ended, "envtask", WAIT_MS));
    ASSERT(run_until(f, pred_ended, "wd", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "envtask"), SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    const char *log = executor_log_path(f->e, "envtask", false);
    ASSERT(file_has(log, "[envtask][7][web][node0123456789abcdefghijk][bar baz][][]\n"));
    char want[256];
    snprintf(want, sizeof want, "\n%s/envtask\n", f->dir);
    ASSERT(file_has(log, want));
    snprintf(want, sizeof want, "path=%s\n", getenv("PATH") ? getenv("PATH") : "");
    ASSERT(file_has(log, want));
    snprintf(want, sizeof want, "%s\n", f->dir);
    ASSERT(file_has(executor_log_path(f->e, "wd", false), want));

    /* A PATH of the task's own is used for the lookup. */
    struct tt p;
    tt_init(&p, "ownpath", "true");
    p.env[0] = "PATH=/nonexistent";
    p.c.n_env = 1;
    ASSERT_INT_EQ(executor_start(f->e, &p.task), 0);
    ASSERT(run_until(f, pred_ended, "ownpath", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "ownpath"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
}

static int spawn_sleeper(bool with_task_env)
{
    int pid = fork();
    if (pid == 0) {
        setsid();
        char *argv[] = {"sleep", "100", NULL};
        char *env_task[] = {"SWARM_TASK_ID=lost", NULL};
        char *env_none[] = {NULL};
        execve("/bin/sleep", argv, with_task_env ? env_task : env_none);
        _exit(127);
    }
    return pid;
}

static void write_pidfile(const char *dir, const char *id, int pid, unsigned long long start)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, id);
    exec_mkdir_p(path);
    snprintf(path, sizeof path, "%s/%s/pid", dir, id);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "%d %llu\n", pid, start);
    fclose(fp);
}

PROC_TEST(process_cleanup_leftovers)
{
    int lost = spawn_sleeper(true);    /* recorded with its start time: killed */
    int other = spawn_sleeper(false);  /* recorded, wrong start time: spared */
    ASSERT(lost > 0 && other > 0);
    unsigned long long st = 0;
    for (int i = 0; i < 200 && (st = exec_proc_starttime(lost)) == 0; i++) {
        usleep(5000);
    }
    ASSERT(st != 0);
    write_pidfile(f->dir, "lost", lost, st);
    write_pidfile(f->dir, "other", other, exec_proc_starttime(other) + 12345);
    executor_cleanup_leftovers(f->e);
    int status = 0;
    ASSERT_INT_EQ(waitpid(lost, &status, 0), lost);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    usleep(50000);
    ASSERT_INT_EQ(waitpid(other, &status, WNOHANG), 0); /* still running */
    char path[256];
    snprintf(path, sizeof path, "%s/lost/pid", f->dir);
    ASSERT(access(path, F_OK) != 0);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
}

/* The pids a task wrote to `name` files in `dir`, once there. */
static int read_pidfile(const char *dir, const char *name, int ms)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (int i = 0; i < ms / 10; i++) {
        FILE *fp = fopen(path, "r");
        int pid = 0;
        if (fp != NULL) {
            int n = fscanf(fp, "%d", &pid);
            fclose(fp);
            if (n == 1 && pid > 0) {
                return pid;
            }
        }
        usleep(10000);
    }
    return 0;
}

/* A grandchild in the task's group and one that left group and session. */
#define TREE_SCRIPT                                                                           \
    "sleep 100 & echo $! > $PIDS/bg.pid; setsid sleep 100 & echo $! > $PIDS/esc.pid; wait"

/* A worker killed with -9 takes its tasks with it, their whole trees
 * (the shim hears of it by PR_SET_PDEATHSIG), before any restart. */
TEST(process_tasks_die_with_daemon)
{
    int fds[2];
    char pids[64], env[96];
    snprintf(pids, sizeof pids, "/tmp/test-exec-pids-XXXXXX");
    ASSERT(mkdtemp(pids) != NULL);
    snprintf(env, sizeof env, "PIDS=%s", pids);
    ASSERT(pipe(fds) == 0);
    int daemon = fork();
    ASSERT(daemon >= 0);
    if (daemon == 0) {
        struct fx f;
        struct tt t;
        close(fds[0]);
        if (fx_open(&f, false) != 0) {
            _exit(1);
        }
        tt_sh(&t, "orphan", TREE_SCRIPT);
        t.env[0] = env;
        t.c.n_env = 1;
        executor_start(f.e, &t.task);
        if (!run_until(&f, pred_running, "orphan", WAIT_MS)) {
            _exit(1);
        }
        int pid = find_rec(&f, "orphan", SWARM__TASK_STATE__TASK_STATE_RUNNING)->pid;
        if (read_pidfile(pids, "esc.pid", WAIT_MS) == 0 ||
            write(fds[1], &pid, sizeof pid) != sizeof pid) {
            _exit(1);
        }
        statedir_remove_tree(f.dir);
        statedir_remove_tree(f.state);
        raise(SIGKILL);
    }
    close(fds[1]);
    int pid = 0;
    ssize_t n = read(fds[0], &pid, sizeof pid);
    close(fds[0]);
    waitpid(daemon, NULL, 0);
    int bg = read_pidfile(pids, "bg.pid", 100), esc = read_pidfile(pids, "esc.pid", 100);
    statedir_remove_tree(pids);
    ASSERT_INT_EQ(n, sizeof pid);
    ASSERT(pid > 0 && bg > 0 && esc > 0);
    int status = 0;
    for (int i = 0; i < WAIT_MS / 10 && waitpid(pid, &status, WNOHANG) == 0; i++) {
        usleep(10000);
    }
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ASSERT(pid_gone(bg, WAIT_MS));
    ASSERT(pid_gone(esc, WAIT_MS));
    /* Its shim removed the task's cgroup, as swarmd would have. */
    if (cg_root[0] != '\0') {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/" EXEC_CGROUP_PREFIX "orphan", cg_root);
        ASSERT(access(path, F_OK) != 0);
    }
    no_process_left_behind();
}

/* Stopped, with a grace period the tree ignores: all of it goes. */
PROC_TEST(process_stop_kills_whole_tree)
{
    struct tt t;
    char env[128];
    tt_sh(&t, "tree", "trap '' TERM; " TREE_SCRIPT);
    snprintf(env, sizeof env, "PIDS=%s/tree", f->dir); /* its own dir: it sees it */
    t.env[0] = env;
    t.c.n_env = 1;
    t.c.stop_grace_period_ms = 200;
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT(run_until(f, pred_running, "tree", WAIT_MS));
    char dir[128];
    snprintf(dir, sizeof dir, "%s/tree", f->dir);
    int bg = read_pidfile(dir, "bg.pid", WAIT_MS), esc = read_pidfile(dir, "esc.pid", WAIT_MS);
    ASSERT(bg > 0 && esc > 0);
    ASSERT_INT_EQ(kill(esc, 0), 0);
    ASSERT_INT_EQ(executor_stop(f->e, "tree"), 0);
    ASSERT(run_until(f, pred_ended, "tree", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "tree"), SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT_INT_EQ(last_rec(f, "tree")->exit_code, 128 + SIGKILL);
    ASSERT(pid_gone(bg, WAIT_MS));
    ASSERT(pid_gone(esc, WAIT_MS));
}

/* What a task sees: not the state dir (by absolute or relative path), not
 * the other tasks' dirs; Docker's capabilities; no_new_privs. */
PROC_TEST(process_task_isolated)
{
    if (geteuid() != 0) {
        return; /* only root isolates */
    }
    struct tt t, other, inside;
    char key[128], script[1024];
    snprintf(key, sizeof key, "%s/key", f->state);
    FILE *fp = fopen(key, "w");
    ASSERT(fp != NULL);
    fputs("SECRET\n", fp);
    fclose(fp);
    tt_sh(&other, "other", "echo other-log; sleep 100");
    ASSERT_INT_EQ(executor_start(f->e, &other.task), 0);
    ASSERT(run_until(f, pred_running, "other", WAIT_MS));
    /* There before "iso" looks: not seeing it means hidden, not early. */
    ASSERT(wait_file_has(f, executor_log_path(f->e, "other", false), "other-log"));
    snprintf(script, sizeof script,
             "cat %s; cat ../../%s/key; ls -A %s | wc -l; ls -A ..; cat ../other/stdout.log;"
             "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status; pwd",
             key, strrchr(f->state, '/') + 1, f->state);
    tt_sh(&t, "iso", script);
    t.env[0] = "SWARM_SHIM_HIDE=/nonexistent"; /* a task's own word does not count */
    t.env[1] = "SWARM_SHIM_ISOLATE=";
    t.c.n_env = 2;
    tt_init(&inside, "inside", "/bin/true");
    inside.c.dir = f->state;
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &inside.task), 0);
    ASSERT(run_until(f, pred_ended, "iso", WAIT_MS));
    ASSERT(run_until(f, pred_ended, "inside", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "inside"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT(strstr(last_err(f, "inside"), "inside swarmd's state dir") != NULL);
    const char *out = executor_log_path(f->e, "iso", false);
    ASSERT(!file_has(out, "SECRET"));
    ASSERT(!file_has(out, "other-log"));
    char want[256];
    snprintf(want, sizeof want, "0\niso\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n"
                                "NoNewPrivs:\t1\n%s/iso\n", f->dir);
    ASSERT(file_has(out, want));
}

static void tt_health(struct tt *t, const char *kind, const char *cmd, int64_t interval,
                      int64_t timeout, int retries, int64_t start_period);

PROC_TEST(process_user)
{
    if (geteuid() != 0) {
        return;
    }
    struct tt a, b, c;
    tt_sh(&a, "nobody", "id -u; id -g; grep '^CapEff:' /proc/self/status; touch mine && echo ok");
    a.c.user = "nobody";
    tt_sh(&b, "nums", "id -u; id -g; sleep 100");
    b.c.user = "4321:4322";
    tt_init(&c, "ghost", "/bin/true");
    c.c.user = "nosuchuser-x";
    /* The health check runs as the task does. */
    tt_health(&b, "CMD-SHELL", "test \"$(id -u)\" = 4321", 50, WAIT_MS, 1, 0);
    ASSERT_INT_EQ(executor_start(f->e, &a.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &b.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &c.task), 0);
    ASSERT(run_until(f, pred_ended, "nobody", WAIT_MS));
    ASSERT(run_until(f, pred_running, "nums", WAIT_MS)); /* healthy: checked as 4321 */
    ASSERT(run_until(f, pred_ended, "ghost", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "nobody"), SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    ASSERT(file_has(executor_log_path(f->e, "nobody", false),
                    "65534\n65534\nCapEff:\t0000000000000000\nok\n"));
    /* Healthy says nothing of how far its script got: wait for its output. */
    ASSERT(wait_file_has(f, executor_log_path(f->e, "nums", false), "4321\n4322\n"));
    ASSERT_INT_EQ(last_state(f, "ghost"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT_STR_EQ(last_err(f, "ghost"),
                  "unable to find user nosuchuser-x: no matching entries in passwd file");
}

TEST(user_resolve_format_parse)
{
    struct exec_user u, back;
    char err[SWARM_ERRMSG_SIZE], s[1024];
    ASSERT_INT_EQ(exec_user_resolve("root", &u, err), 0);
    ASSERT(u.uid == 0 && u.gid == 0 && u.ngroups >= 1 && u.groups[0] == 0);
    ASSERT_INT_EQ(exec_user_resolve("65534:0", &u, err), 0);
    ASSERT(u.uid == 65534 && u.gid == 0);
    ASSERT_INT_EQ(exec_user_resolve("777", &u, err), 0); /* no passwd entry */
    ASSERT(u.uid == 777 && u.gid == 0 && u.ngroups == 1);
    ASSERT_INT_EQ(exec_user_resolve("nobody:root", &u, err), 0);
    ASSERT(u.uid == 65534 && u.gid == 0);
    ASSERT_INT_EQ(exec_user_format(&u, s, sizeof s), 0);
    ASSERT_INT_EQ(exec_user_parse(s, &back), 0);
    ASSERT(back.uid == u.uid && back.gid == u.gid && back.ngroups == u.ngroups);
    ASSERT_INT_EQ(exec_user_resolve("root:nosuchgroup-x", &u, err), -1);
    ASSERT_STR_EQ(err, "unable to find group nosuchgroup-x: no matching entries in group file");
    ASSERT_INT_EQ(exec_user_resolve("a::b", &u, err), -1);
    ASSERT_INT_EQ(exec_user_resolve(":0", &u, err), -1);
    ASSERT_INT_EQ(exec_user_resolve("99999999999", &u, err), -1);
    ASSERT_INT_EQ(exec_user_parse("1:2:3,x", &back), -1);
    ASSERT(exec_path_within("/a/b", "/a") && exec_path_within("/a", "/a/"));
    ASSERT(!exec_path_within("/ab", "/a") && exec_path_within("/x", "/"));
}

/* Task dirs an older swarmd kept in STATE/worker/tasks: their processes
 * are killed and the dirs, logs included, move to the task dir root. */
PROC_TEST(process_old_task_dirs_moved)
{
    int lost = spawn_sleeper(true);
    ASSERT(lost > 0);
    unsigned long long st = 0;
    for (int i = 0; i < 200 && (st = exec_proc_starttime(lost)) == 0; i++) {
        usleep(5000);
    }
    write_pidfile(f->old, "lost", lost, st);
    char path[256];
    snprintf(path, sizeof path, "%s/lost/stdout.log", f->old);
    FILE *fp = fopen(path, "w");
    ASSERT(fp != NULL);
    fputs("kept\n", fp);
    fclose(fp);
    executor_cleanup_leftovers(f->e);
    int status = 0;
    ASSERT_INT_EQ(waitpid(lost, &status, 0), lost);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    snprintf(path, sizeof path, "%s/lost/stdout.log", f->dir);
    ASSERT(file_has(path, "kept\n"));
    snprintf(path, sizeof path, "%s/lost/pid", f->dir);
    ASSERT(access(path, F_OK) != 0);
    ASSERT(access(f->old, F_OK) != 0);
}

/* A task dir root and a state dir that contain one another are refused. */
TEST(process_dirs_must_be_apart)
{
    char em[512];
    ASSERT_INT_EQ(executor_dirs_check("/tmp/test-exec-apart/tasks", "/tmp", em),
                  SWARM_EINVAL);
    ASSERT(strstr(em, "must not contain one another") != NULL);
    ASSERT_INT_EQ(executor_dirs_check("/tmp", "/tmp/test-exec-apart", em) != 0, 1);
    statedir_remove_tree("/tmp/test-exec-apart");
}

PROC_TEST(process_group_leftovers_killed_at_exit)
{
    struct tt t;
    tt_sh(&t, "bg", "sleep 100 & echo $! > bg.pid; exit 0");
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT(run_until(f, pred_ended, "bg", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "bg"), SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    char path[256];
    snprintf(path, sizeof path, "%s/bg/bg.pid", f->dir);
    FILE *fp = fopen(path, "r");
    int bg = 0;
    ASSERT(fp != NULL);
    ASSERT_INT_EQ(fscanf(fp, "%d", &bg), 1);
    fclose(fp);
    ASSERT(pid_gone(bg, WAIT_MS));
}

TEST(process_close_leaves_nothing)
{
    struct fx f;
    struct tt a, b, c, d;
    ASSERT(fx_open(&f, false) == 0);
    tt_sh(&a, "a", "sleep 100");
    tt_sh(&b, "b", "trap '' TERM; while :; do sleep 0.05; done");
    b.c.stop_grace_period_ms = 3600000; /* closed within the test: the close's grace won */
    tt_sh(&c, "c", "sleep 100");
    tt_init(&d, "d", "/bin/true");
    ASSERT_INT_EQ(executor_start(f.e, &a.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &b.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &c.task), 0);
    ASSERT(run_until(&f, pred_running, "a", WAIT_MS));
    ASSERT(run_until(&f, pred_running, "b", WAIT_MS));
    ASSERT(run_until(&f, pred_running, "c", WAIT_MS));
    int pids[3] = {find_rec(&f, "a", SWARM__TASK_STATE__TASK_STATE_RUNNING)->pid,
                   find_rec(&f, "b", SWARM__TASK_STATE__TASK_STATE_RUNNING)->pid,
                   find_rec(&f, "c", SWARM__TASK_STATE__TASK_STATE_RUNNING)->pid};
    ASSERT_INT_EQ(executor_remove(f.e, "c"), 0); /* stopping, no longer known */
    ASSERT_INT_EQ(executor_start(f.e, &d.task), 0); /* not started yet at close */
    int nrec = f.nrec;
    ASSERT_INT_EQ(fx_close(&f, 200), 0);
    ASSERT_INT_EQ(f.nrec, nrec); /* no reports after close */
    for (int i = 0; i < 3; i++) {
        ASSERT(pid_gone(pids[i], WAIT_MS));
    }
    no_process_left_behind();
}

PROC_TEST(process_cgroup_join)
{
    if (cg_root[0] == '\0') {
        return; /* no writable cgroup v2 here: nothing to check */
    }
    struct tt t;
    char path[PATH_MAX + 32], want[PATH_MAX + 32];
    tt_sh(&t, "cg", "cat /proc/self/cgroup");
    Swarm__ResourceRequirements req = SWARM__RESOURCE_REQUIREMENTS__INIT;
    Swarm__Resources lim = SWARM__RESOURCES__INIT;
    lim.memory_bytes = 64 << 20;
    lim.nano_cpus = 500000000;
    req.limits = &lim;
    t.spec.resources = &req;
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT(run_until(f, pred_ended, "cg", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "cg"), SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    snprintf(want, sizeof want, "0::%s/" EXEC_CGROUP_PREFIX "cg\n", cg_rel);
    ASSERT(file_has(executor_log_path(f->e, "cg", false), want));
    snprintf(path, sizeof path, "%s/" EXEC_CGROUP_PREFIX "cg", cg_root);
    ASSERT(access(path, F_OK) != 0); /* ended: its cgroup went with it */
    ASSERT_INT_EQ(executor_remove(f->e, "cg"), 0);
}

/* A health check on `t`: test[0] is the kind, test[1] (optional) the
 * command; times in ms. */
static void tt_health(struct tt *t, const char *kind, const char *cmd, int64_t interval,
                      int64_t timeout, int retries, int64_t start_period)
{
    swarm__health_config__init(&t->hc);
    t->test[0] = (char *)kind;
    t->test[1] = (char *)cmd;
    t->hc.test = t->test;
    t->hc.n_test = cmd != NULL ? 2 : 1;
    t->hc.interval_ms = interval;
    t->hc.timeout_ms = timeout;
    t->hc.retries = retries;
    t->hc.start_period_ms = start_period;
    t->c.healthcheck = &t->hc;
}

/* The pid a check wrote to `path` (it runs `echo $$ > path`), or 0. */
static int wait_pidfile(struct fx *f, const char *path, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    while (now_ms() < end) {
        FILE *fp = fopen(path, "r");
        int pid = 0;
        if (fp != NULL) {
            int n = fscanf(fp, "%d", &pid);
            fclose(fp);
            if (n == 1 && pid > 0) {
                return pid;
            }
        }
        run_until(f, pred_closed, NULL, 20);
    }
    return 0;
}

/* A check that records each outcome in `log` ("ok" or "fail") and
 * passes while `flag` exists. */
static void check_cmd(char *out, size_t size, const char *flag, const char *log)
{
    snprintf(out, size, "if test -f %s; then echo ok >> %s; else echo fail >> %s; exit 1; fi",
             flag, log, log);
}

PROC_TEST(health_starting_until_healthy_then_unhealthy)
{
    struct tt t;
    char flag[128], log[128], cmd[512], tail[64];
    snprintf(flag, sizeof flag, "%s/h1/flag", f->dir); /* tasks see their own dir */
    snprintf(log, sizeof log, "%s/h1/checks", f->dir);
    check_cmd(cmd, sizeof cmd, flag, log);
    tt_init(&t, "h1", "sleep");
    t.args[0] = "100";
    t.c.n_args = 1;
    t.c.stop_grace_period_ms = 3600000; /* ends within the test only by SIGTERM */
    /* Failures before the flag exists fall in the start period (it
     * outlasts the test); once healthy it no longer shields anything. The
     * timeout is out of the way: a check fails only by its exit. */
    tt_health(&t, "CMD-SHELL", cmd, 100, 3600000, 2, 3600000);
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    /* Three checks failed (retries is 2): still starting, never running. */
    ASSERT(wait_lines(f, log, "fail", 3, "h1"));
    ASSERT(find_rec(f, "h1", SWARM__TASK_STATE__TASK_STATE_RUNNING) == NULL);
    ASSERT_INT_EQ(last_state(f, "h1"), SWARM__TASK_STATE__TASK_STATE_STARTING);
    ASSERT_STR_EQ(last_rec(f, "h1")->msg, "starting");
    FILE *fp = fopen(flag, "w");
    if (fp == NULL) {
        FAILF("creating %s: %s", flag, strerror(errno));
    }
    fclose(fp);
    ASSERT(run_until(f, pred_running, "h1", WAIT_MS));
    const struct rec *r = find_rec(f, "h1", SWARM__TASK_STATE__TASK_STATE_RUNNING);
    ASSERT(r->pid > 0);
    int pid = r->pid;
    /* Healthy stays running: three more passing checks, one RUNNING report. */
    ASSERT(wait_lines(f, log, "ok", count_lines(log, "ok") + 3, "h1"));
    ASSERT_INT_EQ(last_state(f, "h1"), SWARM__TASK_STATE__TASK_STATE_RUNNING);
    ASSERT_INT_EQ(count_recs(f, "h1", SWARM__TASK_STATE__TASK_STATE_RUNNING), 1);
    unlink(flag);
    uint64_t t0 = loop_now(f);
    ASSERT(run_until(f, pred_ended, "h1", WAIT_MS));
    ASSERT(loop_now(f) - t0 >= 100); /* two failures, an interval apart */
    /* Unhealthy at the second failure in a row, and no check after it. */
    last_lines(log, 3, tail, sizeof tail);
    ASSERT_STR_EQ(tail, "ok\nfail\nfail\n");
    r = last_rec(f, "h1");
    ASSERT_INT_EQ(r->state, SWARM__TASK_STATE__TASK_STATE_FAILED);
    ASSERT_STR_EQ(r->err, "task: unhealthy container");
    ASSERT_INT_EQ(r->exit_code, 128 + SIGTERM); /* stopped by us, gracefully */
    ASSERT(pid_gone(pid, WAIT_MS));
    snprintf(log, sizeof log, "%s/h1/health.log", f->dir);
    ASSERT(access(log, F_OK) == 0);
}

PROC_TEST(health_timeout_is_a_failure)
{
    struct tt t;
    char pidfile[128], cmd[200];
    snprintf(pidfile, sizeof pidfile, "%s/hang/check.pid", f->dir);
    /* A check that would hang far beyond the test: the task can end in
     * time only if each check is killed at its timeout. */
    snprintf(cmd, sizeof cmd, "echo $$ > %s; exec sleep 1000", pidfile);
    tt_sh(&t, "hang", "sleep 100");
    tt_health(&t, "CMD-SHELL", cmd, 100, 100, 2, 0);
    uint64_t t0 = loop_now(f);
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    int check = wait_pidfile(f, pidfile, WAIT_MS);
    ASSERT(check > 0);
    ASSERT(run_until(f, pred_ended, "hang", WAIT_MS));
    ASSERT(loop_now(f) - t0 >= 400); /* 2 x (interval + timeout) */
    ASSERT_INT_EQ(last_state(f, "hang"), SWARM__TASK_STATE__TASK_STATE_FAILED);
    ASSERT_STR_EQ(last_err(f, "hang"), "task: unhealthy container");
    ASSERT(find_rec(f, "hang", SWARM__TASK_STATE__TASK_STATE_RUNNING) == NULL);
    ASSERT(pid_gone(check, WAIT_MS));
    char log[256];
    snprintf(log, sizeof log, "%s/hang/health.log", f->dir);
    ASSERT_INT_EQ(count_lines(log, "swarmd: health check: timed out, killed"), 2);
}

PROC_TEST(health_start_period)
{
    struct tt t, u, w;
    char log[128], cmd[256];
    /* CMD form, failing, retries 1: unhealthy at the first failure that
     * counts, which is never one within its 500 ms start period. */
    tt_sh(&t, "sp", "sleep 100");
    tt_health(&t, "CMD", "false", 100, 3600000, 1, 500);
    /* Failing within a start period that outlasts the test: not one of
     * its failures counts, however many. */
    snprintf(log, sizeof log, "%s/splong/checks", f->dir);
    snprintf(cmd, sizeof cmd, "echo fail >> %s; exit 1", log);
    tt_sh(&w, "splong", "sleep 100");
    tt_health(&w, "CMD-SHELL", cmd, 50, 3600000, 1, 3600000);
    /* Healthy within its start period: running at once. */
    tt_sh(&u, "spok", "sleep 100");
    tt_health(&u, "CMD", "true", 100, 3600000, 1, 3600000);
    uint64_t t0 = loop_now(f);
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &u.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &w.task), 0);
    ASSERT(run_until(f, pred_running, "spok", WAIT_MS));
    ASSERT(run_until(f, pred_ended, "sp", WAIT_MS));
    ASSERT(loop_now(f) - t0 >= 500);
    ASSERT_INT_EQ(last_state(f, "sp"), SWARM__TASK_STATE__TASK_STATE_FAILED);
    ASSERT_STR_EQ(last_err(f, "sp"), "task: unhealthy container");
    ASSERT(find_rec(f, "sp", SWARM__TASK_STATE__TASK_STATE_RUNNING) == NULL);
    /* A check runs only once the one before was judged: with 3 written,
     * 2 failures were judged and, retries being 1, neither counted. */
    ASSERT(wait_lines(f, log, "fail", 3, "splong"));
    ASSERT_INT_EQ(last_state(f, "splong"), SWARM__TASK_STATE__TASK_STATE_STARTING);
    ASSERT_INT_EQ(last_state(f, "spok"), SWARM__TASK_STATE__TASK_STATE_RUNNING);
}

PROC_TEST(health_none_and_bad_test)
{
    struct tt t, e, b;
    tt_sh(&t, "none", "sleep 100");
    tt_health(&t, "NONE", NULL, 10000, 0, 0, 0);
    tt_sh(&e, "empty", "sleep 100");
    tt_health(&e, "CMD", NULL, 10000, 0, 0, 0);
    e.hc.n_test = 0; /* no test: no check */
    tt_sh(&b, "bad", "sleep 100");
    tt_health(&b, "CMD-BASH", "true", 100, 0, 0, 0);
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &e.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &b.task), 0);
    ASSERT(run_until(f, pred_running, "none", WAIT_MS));
    ASSERT(run_until(f, pred_running, "empty", WAIT_MS));
    ASSERT(run_until(f, pred_ended, "bad", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "bad"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT(strstr(last_err(f, "bad"), "CMD-BASH") != NULL);
}

PROC_TEST(health_stop_and_remove_kill_running_check)
{
    struct tt t, u;
    char pf1[128], pf2[128], cmd1[200], cmd2[200];
    snprintf(pf1, sizeof pf1, "%s/stopme/c1.pid", f->dir);
    snprintf(pf2, sizeof pf2, "%s/rmme/c2.pid", f->dir);
    snprintf(cmd1, sizeof cmd1, "echo $$ > %s; exec sleep 100", pf1);
    snprintf(cmd2, sizeof cmd2, "echo $$ > %s; exec sleep 100", pf2);
    tt_sh(&t, "stopme", "sleep 100");
    tt_health(&t, "CMD-SHELL", cmd1, 50, 3600000, 3, 0);
    tt_sh(&u, "rmme", "sleep 100");
    tt_health(&u, "CMD-SHELL", cmd2, 50, 3600000, 3, 0);
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &u.task), 0);
    int c1 = wait_pidfile(f, pf1, WAIT_MS), c2 = wait_pidfile(f, pf2, WAIT_MS);
    ASSERT(c1 > 0 && c2 > 0);
    ASSERT_INT_EQ(executor_stop(f->e, "stopme"), 0);
    ASSERT(run_until(f, pred_ended, "stopme", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "stopme"), SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT(pid_gone(c1, WAIT_MS));
    int nrec = f->nrec;
    ASSERT_INT_EQ(executor_remove(f->e, "rmme"), 0);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/rmme", f->dir);
    ASSERT(run_until(f, pred_path_gone, dir, WAIT_MS)); /* once its process is gone */
    ASSERT(pid_gone(c2, WAIT_MS));
    ASSERT_INT_EQ(f->nrec, nrec); /* removed: not reported */
}

TEST(health_close_with_checks_pending)
{
    struct fx f;
    struct tt t, u, v;
    char pf[128], cmd[200];
    ASSERT(fx_open(&f, false) == 0);
    snprintf(pf, sizeof pf, "%s/running-check/c.pid", f.dir);
    snprintf(cmd, sizeof cmd, "echo $$ > %s; exec sleep 100", pf);
    tt_sh(&t, "running-check", "sleep 100");
    tt_health(&t, "CMD-SHELL", cmd, 50, 3600000, 3, 0);
    tt_sh(&u, "pending-check", "sleep 100");
    tt_health(&u, "CMD-SHELL", "true", 3600000, 0, 0, 0);
    tt_sh(&v, "not-started", "sleep 100");
    tt_health(&v, "CMD-SHELL", "true", 50, 0, 0, 0);
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &u.task), 0);
    int check = wait_pidfile(&f, pf, WAIT_MS);
    ASSERT(check > 0);
    ASSERT_INT_EQ(last_state(&f, "pending-check"), SWARM__TASK_STATE__TASK_STATE_STARTING);
    ASSERT_INT_EQ(executor_start(f.e, &v.task), 0);
    int nrec = f.nrec;
    ASSERT_INT_EQ(fx_close(&f, 1000), 0); /* uv_loop_close == 0: no timer left */
    ASSERT_INT_EQ(f.nrec, nrec);
    ASSERT(pid_gone(check, WAIT_MS));
    no_process_left_behind();
}

/* A child of ours whose command line holds `needle` (NULs as spaces). */
struct child_arg {
    const char *needle;
    int pid;
};

static bool pred_child(struct fx *f, const void *arg)
{
    (void)f;
    struct child_arg *a = (struct child_arg *)arg;
    char path[64], buf[4096];
    DIR *d = opendir("/proc");
    struct dirent *de;
    a->pid = 0;
    while (d != NULL && a->pid == 0 && (de = readdir(d)) != NULL) {
        int pid = atoi(de->d_name), ppid = 0;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *fp = pid > 0 ? fopen(path, "r") : NULL;
        if (fp == NULL) {
            continue;
        }
        size_t n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        char *close = strrchr(buf, ')');
        if (close == NULL || sscanf(close + 1, " %*c %d", &ppid) != 1 || ppid != (int)getpid()) {
            continue;
        }
        snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
        if ((fp = fopen(path, "r")) == NULL) {
            continue;
        }
        n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        for (size_t i = 0; i < n; i++) {
            buf[i] = buf[i] == '\0' ? ' ' : buf[i];
        }
        buf[n] = '\0';
        if (strstr(buf, a->needle) != NULL) {
            a->pid = pid;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return a->pid > 0;
}

/* Our child `pid` has exited (not reaped: that is the loop's to do). */
static bool child_exited(int pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

static bool pred_running_or_ended(struct fx *f, const void *id)
{
    return pred_running(f, id) || pred_ended(f, id);
}

/* A check that exited within its timeout, seen by a loop that came back
 * late, when that timeout was due too (timers run before exits are read):
 * judged by its exit, not as timed out. */
PROC_TEST(health_check_seen_late_judged_by_exit)
{
    struct tt t;
    char go[128], cmd[256], log[160];
    snprintf(go, sizeof go, "%s/late/go", f->dir);
    snprintf(cmd, sizeof cmd, "while ! test -e %s; do sleep 0.01; done", go);
    tt_init(&t, "late", "sleep");
    t.args[0] = "100";
    t.c.n_args = 1;
    /* One failure: unhealthy. The timeout leaves room for the loop's turn
     * that spawns the check (libuv runs due timers again at its end). */
    tt_health(&t, "CMD-SHELL", cmd, 50, 2000, 1, 0);
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    /* Spawned: the loop stops here, long before its timeout is due. */
    struct child_arg check = {.needle = "/bin/sh -c while"};
    ASSERT(run_until(f, pred_child, &check, WAIT_MS));
    uint64_t spawned = loop_now(f);
    /* The loop does not run: the check passes and exits meanwhile... */
    FILE *fp = fopen(go, "w");
    ASSERT(fp != NULL);
    fclose(fp);
    for (int i = 0; i < WAIT_MS / 10 && !child_exited(check.pid); i++) {
        usleep(10000);
    }
    ASSERT(child_exited(check.pid));
    /* ...and its timeout falls due. */
    while (loop_now(f) < spawned + 2000) {
        usleep(10000);
    }
    ASSERT(run_until(f, pred_running_or_ended, "late", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "late"), SWARM__TASK_STATE__TASK_STATE_RUNNING);
    snprintf(log, sizeof log, "%s/late/health.log", f->dir);
    ASSERT(!file_has(log, "timed out"));
}

/* Freeze `pid` as a tracer does (LeakSanitizer's, at a shim's exit under
 * ASan, is one): a child of ours holds it stopped, signals left pending,
 * until it is SIGKILLed; the child then ends. Its pid, 0 if ptrace is not
 * allowed here, -1 on error. */
static int freeze_pid(int pid)
{
    int fds[2];
    char ok = 0;
    if (pipe(fds) != 0) {
        return -1;
    }
    int tracer = fork();
    if (tracer == 0) {
        close(fds[0]);
        int st;
        ok = ptrace(PTRACE_SEIZE, pid, 0, 0) == 0 && ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 &&
                     waitpid(pid, &st, __WALL) == pid
                 ? 'y'
                 : 'n';
        if (write(fds[1], &ok, 1) != 1 || ok != 'y') {
            _exit(1);
        }
        for (;;) { /* stops are left stopped; the end ends us */
            if (waitpid(pid, &st, __WALL) < 0 ? errno != EINTR : WIFEXITED(st) || WIFSIGNALED(st)) {
                _exit(0);
            }
        }
    }
    close(fds[1]);
    ssize_t n = tracer > 0 ? read(fds[0], &ok, 1) : -1;
    close(fds[0]);
    if (tracer > 0 && (n != 1 || ok != 'y')) {
        waitpid(tracer, NULL, 0);
        return 0;
    }
    return tracer > 0 ? tracer : -1;
}

/* A check's shim that never acts on its kill request (held by a tracer):
 * killed after the fallback delay, at a timeout (the task fails as
 * unhealthy instead of staying starting) and at a close (which ends
 * instead of waiting forever). */
TEST(health_check_shim_that_will_not_go_is_killed)
{
    struct fx f;
    struct tt t, u;
    char log[160];
    ASSERT(fx_open(&f, false) == 0);
    tt_sh(&t, "held", "sleep 100");
    tt_health(&t, "CMD-SHELL", "exec sleep 1000 # held", 50, 1000, 1, 0);
    tt_sh(&u, "held-at-close", "sleep 100");
    tt_health(&u, "CMD-SHELL", "exec sleep 1000 # at close", 50, 3600000, 1, 0);
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    /* Frozen before the loop runs again: before its timeout is due. */
    struct child_arg check = {.needle = "# held"};
    ASSERT(run_until(&f, pred_child, &check, WAIT_MS));
    int tracer = freeze_pid(check.pid);
    ASSERT(tracer >= 0);
    if (tracer == 0) {
        printf("# ptrace not allowed here: nothing to check\n");
        ASSERT_INT_EQ(fx_close(&f, 1000), 0);
        return;
    }
    ASSERT(run_until(&f, pred_ended, "held", WAIT_MS));
    ASSERT_INT_EQ(last_state(&f, "held"), SWARM__TASK_STATE__TASK_STATE_FAILED);
    ASSERT_STR_EQ(last_err(&f, "held"), "task: unhealthy container");
    snprintf(log, sizeof log, "%s/held/health.log", f.dir);
    ASSERT(file_has(log, "timed out, killed"));
    ASSERT_INT_EQ(waitpid(tracer, NULL, 0), tracer);

    ASSERT_INT_EQ(executor_start(f.e, &u.task), 0);
    check.needle = "# at close";
    ASSERT(run_until(&f, pred_child, &check, WAIT_MS));
    tracer = freeze_pid(check.pid);
    ASSERT(tracer > 0);
    ASSERT_INT_EQ(fx_close(&f, 1000), 0);
    ASSERT_INT_EQ(waitpid(tracer, NULL, 0), tracer);
    ASSERT(pid_gone(check.pid, WAIT_MS));
    no_process_left_behind();
}

TEST(health_sim_ignores_checks)
{
    struct fx f;
    struct tt t;
    ASSERT(fx_open(&f, true) == 0);
    tt_init(&t, "s", "x");
    tt_health(&t, "CMD-SHELL", "false", 10, 10, 1, 0);
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT(run_until(&f, pred_running, "s", WAIT_MS));
    ASSERT(!run_until(&f, pred_ended, "s", 200));
    ASSERT_INT_EQ(fx_close(&f, 0), 0);
}

TEST(sim_10000_tasks)
{
    enum { N = 10000 };
    static struct tt t[N];
    static char ids[N][16];
    struct fx f;
    ASSERT(fx_open(&f, true) == 0);
    uint64_t t0 = now_ms();
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "sim%05d", i);
        tt_init(&t[i], ids[i], "/bin/true");
        ASSERT_INT_EQ(executor_start(f.e, &t[i].task), 0);
    }
    int want_run[2] = {N, 0};
    ASSERT(run_until(&f, pred_count, want_run, WAIT_MS));
    ASSERT_INT_EQ(f.running, N);
    ASSERT_STR_EQ(f.recs[0].id, "sim00000");
    ASSERT_INT_EQ(f.recs[0].state, SWARM__TASK_STATE__TASK_STATE_PREPARING);
    for (int i = 0; i < N; i++) {
        ASSERT_INT_EQ(executor_stop(f.e, ids[i]), 0);
    }
    int want_stop[2] = {N, N};
    ASSERT(run_until(&f, pred_count, want_stop, WAIT_MS));
    ASSERT(executor_log_path(f.e, ids[0], false) == NULL);
    for (int i = 0; i < N / 2; i++) {
        ASSERT_INT_EQ(executor_remove(f.e, ids[i]), 0);
    }
    printf("# sim: %d tasks to running and shut down in %llu ms\n", N,
           (unsigned long long)(now_ms() - t0));
    ASSERT_INT_EQ(fx_close(&f, 0), 0);
    ASSERT_INT_EQ(f.shutdown, N);
}

TEST(sim_stop_and_remove_early)
{
    struct fx f;
    struct tt a, b;
    ASSERT(fx_open(&f, true) == 0);
    tt_init(&a, "a", "x");
    tt_init(&b, "b", "x");
    ASSERT_INT_EQ(executor_start(f.e, &a.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &b.task), 0);
    ASSERT_INT_EQ(executor_stop(f.e, "a"), 0);
    ASSERT_INT_EQ(executor_remove(f.e, "b"), 0);
    ASSERT(run_until(&f, pred_ended, "a", WAIT_MS));
    ASSERT_INT_EQ(f.nrec, 1);
    ASSERT_INT_EQ(f.recs[0].state, SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT_INT_EQ(executor_start(f.e, &b.task), 0); /* forgotten: starts anew */
    ASSERT(run_until(&f, pred_running, "b", WAIT_MS));
    ASSERT_INT_EQ(fx_close(&f, 0), 0);
}

/* Our children still there: "PID (COMM) STATE WCHAN" each, into out; how
 * many. */
static int list_children(char *out, size_t size)
{
    char path[64], buf[512];
    int n = 0;
    out[0] = '\0';
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        int pid = atoi(de->d_name), ppid = 0;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *fp = pid > 0 ? fopen(path, "r") : NULL;
        if (fp == NULL) {
            continue;
        }
        size_t len = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[len] = '\0';
        char *close = strrchr(buf, ')');
        if (close == NULL || sscanf(close + 1, " %*c %d", &ppid) != 1 || ppid != (int)getpid()) {
            continue;
        }
        char state = close[2], wchan[64] = "";
        close[1] = '\0';
        snprintf(path, sizeof path, "/proc/%d/wchan", pid);
        if ((fp = fopen(path, "r")) != NULL) {
            wchan[fread(wchan, 1, sizeof wchan - 1, fp)] = '\0';
            fclose(fp);
        }
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s %c %s", n > 0 ? ", " : "", buf, state, wchan);
        n++;
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* Every process the case started, tasks' children included (they come back
 * to the case's process as subreaper), is gone; what is left is named, then
 * killed, so nothing outlives the case. Run by every case that starts
 * processes, after its executor closed (in PROC_TEST's teardown, so also
 * after a failure). */
static void no_process_left_behind(void)
{
    char left[2048];
    uint64_t end = now_ms() + 10000; /* what is dying, ends and is reaped */
    for (;;) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid < 0 && errno == ECHILD) {
            return;
        }
        if (pid == 0 && now_ms() >= end) {
            break;
        }
        if (pid == 0) {
            usleep(10000);
        }
    }
    int n = list_children(left, sizeof left);
    for (int round = 0; round < 100 && waitpid(-1, NULL, WNOHANG) >= 0; round++) {
        char pid_s[16];
        const char *p = left;
        while (sscanf(p, "%15[0-9]", pid_s) == 1) {
            kill(atoi(pid_s), SIGKILL);
            p = strstr(p, ", ");
            if (p == NULL) {
                break;
            }
            p += 2;
        }
        usleep(10000);
    }
    FAILF("%d child process(es) still running after the case: %s", n, left);
}

/* ---- networks: tasks in their sandboxes ------------------------------- */

struct net_att {
    Swarm__NetworkAttachment a, *pa;
    Swarm__Network n;
    Swarm__IPAMConfig ipam;
    char *addr;
};

static void tt_network(struct tt *t, struct net_att *na, const char *addr)
{
    swarm__network_attachment__init(&na->a);
    swarm__network__init(&na->n);
    swarm__ipamconfig__init(&na->ipam);
    na->n.id = "netweb";
    na->n.vni = 4601;
    na->n.ipam = &na->ipam;
    na->ipam.subnet = "10.8.0.0/24";
    na->ipam.gateway = "10.8.0.1";
    na->addr = (char *)addr;
    na->a.network = &na->n;
    na->a.n_addresses = 1;
    na->a.addresses = &na->addr;
    na->pa = &na->a;
    t->task.n_networks = 1;
    t->task.networks = &na->pa;
}

struct sock_job {
    int fd;
};

static int sock_cb(void *arg)
{
    ((struct sock_job *)arg)->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return 0;
}

/* Connect from the namespace at `ns` to ip:8080 and read what the server
 * says (up to `size`); 0 when it answered. */
static int fetch_from(const char *ns, const char *ip, char *out, size_t size)
{
    int nsfd = netns_open(ns);
    struct sock_job j = {-1};
    if (nsfd < 0 || netns_run(nsfd, sock_cb, &j) != 0 || j.fd < 0) {
        return -1;
    }
    close(nsfd);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    struct timeval tv = {10, 0};
    setsockopt(j.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t len = 0;
    ssize_t n = 1;
    if (connect(j.fd, (struct sockaddr *)&a, sizeof a) == 0) {
        while (len < size - 1 && (n = read(j.fd, out + len, size - 1 - len)) > 0) {
            len += (size_t)n;
        }
    }
    out[len] = '\0';
    close(j.fd);
    return len > 0 ? 0 : -1;
}

struct fetch {
    const char *ns, *ip;
    char out[1024];
};

static bool pred_fetch(struct fx *f, const void *arg)
{
    (void)f;
    struct fetch *q = (struct fetch *)arg;
    return fetch_from(q->ns, q->ip, q->out, sizeof q->out) == 0;
}

static bool pred_no_netns(struct fx *f, const void *arg)
{
    (void)f;
    return access((const char *)arg, F_OK) != 0;
}

/* A TCP server on port 8080 that tells who it is: hostname, its /etc/hosts
 * line for itself and the nameserver of its resolv.conf. */
#define NET_SERVER                                                                        \
    "import socket\n"                                                                     \
    "h = socket.gethostname()\n"                                                          \
    "hosts = [l for l in open('/etc/hosts').read().split('\\n') if l.endswith(h)]\n"     \
    "ns = [l for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0].strip()\n" \
    "s = socket.socket(); s.bind(('0.0.0.0', 8080)); s.listen()\n"                        \
    "while True:\n"                                                                       \
    "    c, _ = s.accept(); c.sendall(('%s|%s|%s' % (h, hosts[0], ns)).encode()); c.close()\n"

TEST(process_replicas_share_a_port_each_in_its_sandbox)
{
    if (geteuid() != 0 || access("/usr/bin/python3", X_OK) != 0) {
        printf("SKIP: needs root (network namespaces) and /usr/bin/python3\n");
        return;
    }
    ASSERT(unshare(CLONE_NEWNET | CLONE_NEWNS) == 0);
    ASSERT(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
    struct mnl_socket *nl = nlink_open();
    ASSERT(nl != NULL && nlink_link_set(nl, 1, 0, 0, true) == 0);
    nlink_close(nl);
    struct fx fx, *f = &fx;
    char err[SWARM_ERRMSG_SIZE], nsc[PATH_MAX];
    struct netplane *np;
    ASSERT(fx_open_net(f, false, &np) == 0);

    struct tt t1, t2, tr, tc;
    struct net_att n1, n2, nr, nc;
    tt_init(&t1, "webreplica1xyz", "/usr/bin/python3");
    t1.args[0] = "-c";
    t1.args[1] = NET_SERVER;
    t1.c.n_args = 2;
    t2 = t1;
    t2.task.id = "webreplica2xyz";
    t2.spec.container = &t2.c;
    t2.task.spec = &t2.spec;
    t2.c.hostname = "web-two";
    t1.c.user = "65534"; /* not root: its /etc files must still be readable */
    tt_network(&t1, &n1, "10.8.0.2/24");
    tt_network(&t2, &n2, "10.8.0.3/24");
    ASSERT_INT_EQ(executor_start(f->e, &t1.task), 0);
    ASSERT_INT_EQ(executor_start(f->e, &t2.task), 0);
    ASSERT(run_until(f, pred_running, "webreplica2xyz", WAIT_MS));

    /* A client on the same network reaches both, each on its own IP. */
    tt_init(&tc, "clienttask", "/bin/true");
    tt_network(&tc, &nc, "10.8.0.9/24");
    ASSERT_INT_EQ(netplane_sandbox_create(np, &tc.task, NULL, nsc, err), 0);
    struct fetch q1 = {nsc, "10.8.0.2", ""}, q2 = {nsc, "10.8.0.3", ""};
    if (!run_until(f, pred_running, "webreplica1xyz", WAIT_MS)) {
        FAILF("replica 1: %s", last_err(f, "webreplica1xyz"));
    }
    if (!run_until(f, pred_fetch, &q1, WAIT_MS)) {
        FAILF("replica 1 did not answer: %s", last_err(f, "webreplica1xyz"));
    }
    ASSERT(run_until(f, pred_fetch, &q2, WAIT_MS));
    ASSERT_STR_EQ(q1.out, "webreplica1x|10.8.0.2\twebreplica1x|nameserver 127.0.0.11");
    ASSERT_STR_EQ(q2.out, "web-two|10.8.0.3\tweb-two|nameserver 127.0.0.11");
    ASSERT_INT_EQ(last_state(f, "webreplica1xyz"), SWARM__TASK_STATE__TASK_STATE_RUNNING);
    ASSERT_INT_EQ(last_state(f, "webreplica2xyz"), SWARM__TASK_STATE__TASK_STATE_RUNNING);

    /* Removed with the task. */
    char ns1[PATH_MAX];
    snprintf(ns1, sizeof ns1, "%s", netplane_sandbox_netns(np, "webreplica1xyz"));
    ASSERT_INT_EQ(executor_remove(f->e, "webreplica1xyz"), 0);
    ASSERT(run_until(f, pred_no_netns, ns1, WAIT_MS));
    ASSERT(netplane_sandbox_netns(np, "webreplica1xyz") == NULL);

    /* A bad attachment: rejected, nothing run. */
    tt_init(&tr, "badnettask", "/bin/true");
    tt_network(&tr, &nr, "10.8.0.300/24");
    ASSERT_INT_EQ(executor_start(f->e, &tr.task), 0);
    ASSERT(run_until(f, pred_ended, "badnettask", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "badnettask"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT(strstr(last_err(f, "badnettask"), "invalid address") != NULL);

    /* The executor removes the sandboxes of the tasks it closes; the
     * netplane goes after it (it must outlive the executor). */
    executor_close(f->e, 1000, closed_cb, f);
    ASSERT(run_until(f, pred_closed, NULL, WAIT_MS));
    ASSERT(netplane_sandbox_netns(np, "webreplica2xyz") == NULL);
    netplane_close(np);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    ASSERT_INT_EQ(uv_loop_close(&f->loop), 0);
    statedir_remove_tree(f->dir);
    statedir_remove_tree(f->state);
    no_process_left_behind();
}

TEST(process_task_with_networks_rejected_without_netplane)
{
    struct fx fx, *f = &fx;
    ASSERT(fx_open(f, false) == 0);
    struct tt t;
    struct net_att na;
    tt_init(&t, "netnoplane", "/bin/true");
    tt_network(&t, &na, "10.8.0.2/24");
    ASSERT_INT_EQ(executor_start(f->e, &t.task), 0);
    ASSERT(run_until(f, pred_ended, "netnoplane", WAIT_MS));
    ASSERT_INT_EQ(last_state(f, "netnoplane"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT_STR_EQ(last_err(f, "netnoplane"), "network: this node cannot attach tasks to networks");
    ASSERT_INT_EQ(fx_close(f, 1000), 0);
}

/* cgroup v1 paths: CONTROLLER/swarmd-<task id>, never outside ROOT. */
TEST(cgroup1_paths)
{
    char out[PATH_MAX];
    ASSERT_INT_EQ(exec_cgroup1_path("/sys/fs/cgroup", "memory", "abc123", out, sizeof out), 0);
    ASSERT_STR_EQ(out, "/sys/fs/cgroup/memory/swarmd-abc123");
    ASSERT_INT_EQ(exec_cgroup1_path("/r", "cpu", "t", out, sizeof out), 0);
    ASSERT_STR_EQ(out, "/r/cpu/swarmd-t");
    ASSERT_INT_EQ(exec_cgroup1_path("/r", "cpu", "../x", out, sizeof out), -1);
    ASSERT_INT_EQ(exec_cgroup1_path("/r", "cpu", "", out, sizeof out), -1);
    ASSERT_INT_EQ(exec_cgroup1_path("/r", "a/b", "t", out, sizeof out), -1);
    ASSERT_INT_EQ(exec_cgroup1_path("/r", "memory", "t", out, 10), -1);
}

TEST_MAIN()
