/* Executors with real processes (process executor, through the task_shim
 * binary built next to this test) and at scale (sim executor), driven by
 * bounded run-until loops. The test process is a child subreaper, so that
 * orphaned task processes come back to it and "nothing left behind" can be
 * checked by pid. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "executor.h"
#include "err.h"
#include "executor_int.h"
#include "test.h"

#define REC_MAX 64

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

__attribute__((constructor)) static void become_subreaper(void)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
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

static int fx_open(struct fx *f, bool sim)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test-exec-XXXXXX");
    snprintf(f->state, sizeof f->state, "/tmp/test-exec-state-XXXXXX");
    if (mkdtemp(f->dir) == NULL || mkdtemp(f->state) == NULL || uv_loop_init(&f->loop) != 0) {
        return -1;
    }
    snprintf(f->old, sizeof f->old, "%s/worker/tasks", f->state);
    fx_shim_path(f->shim, sizeof f->shim);
    struct executor_config cfg = {
        .loop = &f->loop,
        .dir = f->dir,
        .hide_dir = f->state,
        .old_dir = f->old,
        .node_id = "node0123456789abcdefghijk",
        .cb = status_cb,
        .data = f,
        .shim_path = f->shim,
    };
    char errmsg[512];
    return sim ? executor_sim_new(&cfg, &f->e, errmsg) : executor_process_new(&cfg, &f->e, errmsg);
}

/* Close the executor and the loop; 0 when everything was released. */
static int fx_close(struct fx *f, uint64_t grace_ms)
{
    executor_close(f->e, grace_ms, closed_cb, f);
    bool ok = run_until(f, pred_closed, NULL, 15000);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    int rv = uv_loop_close(&f->loop);
    exec_rm_rf(f->dir);
    exec_rm_rf(f->state);
    return ok && rv == 0 ? 0 : -1;
}

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

TEST(process_true_completes)
{
    struct fx f;
    struct tt t;
    ASSERT(fx_open(&f, false) == 0);
    tt_init(&t, "t1", "/bin/true");
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0); /* already known: no-op */
    ASSERT_INT_EQ(f.nrec, 0);                        /* reports come from the loop */
    ASSERT(run_until(&f, pred_ended, "t1", 5000));
    ASSERT_INT_EQ(f.nrec, 4);
    ASSERT_INT_EQ(f.recs[0].state, SWARM__TASK_STATE__TASK_STATE_PREPARING);
    ASSERT_INT_EQ(f.recs[1].state, SWARM__TASK_STATE__TASK_STATE_STARTING);
    ASSERT_INT_EQ(f.recs[2].state, SWARM__TASK_STATE__TASK_STATE_RUNNING);
    ASSERT(f.recs[2].pid > 0);
    ASSERT_INT_EQ(f.recs[3].state, SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    ASSERT_STR_EQ(f.recs[3].msg, "finished");
    ASSERT_STR_EQ(f.recs[3].err, "");
    ASSERT_INT_EQ(f.recs[3].exit_code, 0);
    char path[256];
    snprintf(path, sizeof path, "%s/t1/pid", f.dir);
    ASSERT(access(path, F_OK) != 0); /* removed at exit */
    snprintf(path, sizeof path, "%s/t1", f.dir);
    ASSERT(access(path, F_OK) == 0); /* kept until remove */
    ASSERT_INT_EQ(executor_remove(f.e, "t1"), 0);
    ASSERT(access(path, F_OK) != 0);
    ASSERT_INT_EQ(executor_remove(f.e, "t1"), 0); /* idempotent */
    ASSERT_INT_EQ(f.nrec, 4);
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(process_exit_code_fails)
{
    struct fx f;
    struct tt t, k;
    ASSERT(fx_open(&f, false) == 0);
    tt_sh(&t, "t3", "exit 3");
    tt_sh(&k, "k9", "kill -9 $$");
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &k.task), 0);
    ASSERT(run_until(&f, pred_ended, "t3", 5000));
    ASSERT(run_until(&f, pred_ended, "k9", 5000));
    const struct rec *r = last_rec(&f, "t3");
    ASSERT(r != NULL);
    ASSERT_INT_EQ(r->state, SWARM__TASK_STATE__TASK_STATE_FAILED);
    ASSERT_INT_EQ(r->exit_code, 3);
    ASSERT_STR_EQ(r->err, "task: non-zero exit (3)");
    r = last_rec(&f, "k9");
    ASSERT(r != NULL);
    ASSERT_INT_EQ(r->state, SWARM__TASK_STATE__TASK_STATE_FAILED);
    ASSERT_STR_EQ(r->err, "task: killed by signal 9");
    ASSERT_INT_EQ(r->exit_code, 137);
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(process_missing_program_rejected)
{
    struct fx f;
    struct tt a, b, c, d;
    ASSERT(fx_open(&f, false) == 0);
    tt_init(&a, "a", "no-such-program-xyz");
    tt_init(&b, "b", "/no/such/program");
    char noexec[128];
    snprintf(noexec, sizeof noexec, "%s/noexec", f.dir);
    FILE *fp = fopen(noexec, "w");
    ASSERT(fp != NULL);
    fclose(fp);
    chmod(noexec, 0644);
    tt_init(&c, "c", noexec); /* not executable */
    tt_init(&d, "d", "/bin/true");
    d.c.dir = "/no/such/dir";
    ASSERT_INT_EQ(executor_start(f.e, &a.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &b.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &c.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &d.task), 0);
    ASSERT(run_until(&f, pred_ended, "a", 5000));
    ASSERT(run_until(&f, pred_ended, "b", 5000));
    ASSERT(run_until(&f, pred_ended, "c", 5000));
    ASSERT(run_until(&f, pred_ended, "d", 5000));
    ASSERT_INT_EQ(last_state(&f, "a"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT_STR_EQ(last_err(&f, "a"),
                  "exec: \"no-such-program-xyz\": executable file not found in $PATH");
    ASSERT_INT_EQ(last_state(&f, "b"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT_STR_EQ(last_err(&f, "b"),
                  "exec: \"/no/such/program\": stat /no/such/program: No such file or directory");
    ASSERT_INT_EQ(last_state(&f, "c"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    char want[256];
    snprintf(want, sizeof want, "exec: \"%s\": permission denied", noexec);
    ASSERT_STR_EQ(last_err(&f, "c"), want);
    ASSERT_INT_EQ(last_state(&f, "d"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT(strstr(last_err(&f, "d"), "/no/such/dir") != NULL);
    for (int i = 0; i < f.nrec; i++) { /* never spawned */
        ASSERT(f.recs[i].state != SWARM__TASK_STATE__TASK_STATE_RUNNING);
        ASSERT(f.recs[i].state != SWARM__TASK_STATE__TASK_STATE_STARTING);
    }
    Swarm__Task bad = SWARM__TASK__INIT;
    ASSERT_INT_EQ(executor_start(f.e, &bad), SWARM_EINVAL); /* no id */
    bad.id = "nospec";
    ASSERT_INT_EQ(executor_start(f.e, &bad), 0);
    ASSERT(run_until(&f, pred_ended, "nospec", 5000));
    ASSERT_INT_EQ(last_state(&f, "nospec"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT_STR_EQ(last_err(&f, "nospec"), "no program to run: the task has no image");
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(process_stop_kills_after_grace)
{
    struct fx f;
    struct tt t, s;
    ASSERT(fx_open(&f, false) == 0);
    tt_sh(&t, "stubborn", "trap '' TERM; echo ready; while :; do sleep 0.05; done");
    t.c.stop_grace_period_ms = 300;
    tt_init(&s, "polite", "sleep");
    s.args[0] = "100";
    s.c.n_args = 1;
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &s.task), 0);
    ASSERT(run_until(&f, pred_running, "stubborn", 5000));
    ASSERT(run_until(&f, pred_running, "polite", 5000));
    const char *log = executor_log_path(f.e, "stubborn", false);
    ASSERT(log != NULL);
    for (int i = 0; i < 500 && !file_has(log, "ready"); i++) {
        usleep(10000);
    }
    int pid = find_rec(&f, "stubborn", SWARM__TASK_STATE__TASK_STATE_RUNNING)->pid;
    uint64_t t0 = now_ms();
    ASSERT_INT_EQ(executor_stop(f.e, "stubborn"), 0);
    ASSERT_INT_EQ(executor_stop(f.e, "polite"), 0);
    ASSERT(run_until(&f, pred_ended, "polite", 5000));
    ASSERT(now_ms() - t0 < 250); /* SIGTERM was enough */
    ASSERT_INT_EQ(last_state(&f, "polite"), SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT(run_until(&f, pred_ended, "stubborn", 5000));
    uint64_t took = now_ms() - t0;
    ASSERT(took >= 280 && took < 3000);
    ASSERT_INT_EQ(last_state(&f, "stubborn"), SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT_INT_EQ(last_rec(&f, "stubborn")->exit_code, 137);
    ASSERT(pid_gone(pid, 1000));
    ASSERT_INT_EQ(executor_stop(f.e, "stubborn"), 0); /* ended: left as it is */
    ASSERT_INT_EQ(executor_stop(f.e, "nope"), SWARM_ENOTFOUND);
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(process_stop_before_start)
{
    struct fx f;
    struct tt t;
    ASSERT(fx_open(&f, false) == 0);
    tt_init(&t, "early", "/bin/true");
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_stop(f.e, "early"), 0);
    ASSERT(run_until(&f, pred_ended, "early", 5000));
    ASSERT_INT_EQ(f.nrec, 1);
    ASSERT_INT_EQ(f.recs[0].state, SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(process_logs)
{
    struct fx f;
    struct tt t;
    ASSERT(fx_open(&f, false) == 0);
    tt_sh(&t, "logs", "echo out; echo err >&2");
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT(run_until(&f, pred_ended, "logs", 5000));
    ASSERT_INT_EQ(last_state(&f, "logs"), SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    char out[256], err[256];
    snprintf(out, sizeof out, "%s/logs/stdout.log", f.dir);
    snprintf(err, sizeof err, "%s/logs/stderr.log", f.dir);
    ASSERT_STR_EQ(executor_log_path(f.e, "logs", false), out);
    ASSERT_STR_EQ(executor_log_path(f.e, "logs", true), err);
    ASSERT(executor_log_path(f.e, "nope", true) == NULL);
    ASSERT(file_has(out, "out\n") && !file_has(out, "err"));
    ASSERT(file_has(err, "err\n") && !file_has(err, "out"));
    struct stat st;
    ASSERT(stat(out, &st) == 0 && (st.st_mode & 077) == 0);
    snprintf(out, sizeof out, "%s/logs", f.dir);
    ASSERT(stat(out, &st) == 0 && (st.st_mode & 0777) == 0700);
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(process_env_and_dir)
{
    struct fx f;
    struct tt t, w;
    ASSERT(fx_open(&f, false) == 0);
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
    w.c.dir = f.dir;
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &w.task), 0);
    ASSERT(run_until(&f, pred_ended, "envtask", 5000));
    ASSERT(run_until(&f, pred_ended, "wd", 5000));
    ASSERT_INT_EQ(last_state(&f, "envtask"), SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    const char *log = executor_log_path(f.e, "envtask", false);
    ASSERT(file_has(log, "[envtask][7][web][node0123456789abcdefghijk][bar baz][][]\n"));
    char want[256];
    snprintf(want, sizeof want, "\n%s/envtask\n", f.dir);
    ASSERT(file_has(log, want));
    snprintf(want, sizeof want, "path=%s\n", getenv("PATH") ? getenv("PATH") : "");
    ASSERT(file_has(log, want));
    snprintf(want, sizeof want, "%s\n", f.dir);
    ASSERT(file_has(executor_log_path(f.e, "wd", false), want));

    /* A PATH of the task's own is used for the lookup. */
    struct tt p;
    tt_init(&p, "ownpath", "true");
    p.env[0] = "PATH=/nonexistent";
    p.c.n_env = 1;
    ASSERT_INT_EQ(executor_start(f.e, &p.task), 0);
    ASSERT(run_until(&f, pred_ended, "ownpath", 5000));
    ASSERT_INT_EQ(last_state(&f, "ownpath"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT(fx_close(&f, 1000) == 0);
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

TEST(process_cleanup_leftovers)
{
    struct fx f;
    ASSERT(fx_open(&f, false) == 0);
    int lost = spawn_sleeper(true);    /* recorded with its start time: killed */
    int other = spawn_sleeper(false);  /* recorded, wrong start time: spared */
    ASSERT(lost > 0 && other > 0);
    unsigned long long st = 0;
    for (int i = 0; i < 200 && (st = exec_proc_starttime(lost)) == 0; i++) {
        usleep(5000);
    }
    ASSERT(st != 0);
    write_pidfile(f.dir, "lost", lost, st);
    write_pidfile(f.dir, "other", other, exec_proc_starttime(other) + 12345);
    executor_cleanup_leftovers(f.e);
    int status = 0;
    ASSERT_INT_EQ(waitpid(lost, &status, 0), lost);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    usleep(50000);
    ASSERT_INT_EQ(waitpid(other, &status, WNOHANG), 0); /* still running */
    char path[256];
    snprintf(path, sizeof path, "%s/lost/pid", f.dir);
    ASSERT(access(path, F_OK) != 0);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    ASSERT(fx_close(&f, 1000) == 0);
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
        if (!run_until(&f, pred_running, "orphan", 5000)) {
            _exit(1);
        }
        int pid = find_rec(&f, "orphan", SWARM__TASK_STATE__TASK_STATE_RUNNING)->pid;
        if (read_pidfile(pids, "esc.pid", 3000) == 0 ||
            write(fds[1], &pid, sizeof pid) != sizeof pid) {
            _exit(1);
        }
        exec_rm_rf(f.dir);
        exec_rm_rf(f.state);
        raise(SIGKILL);
    }
    close(fds[1]);
    int pid = 0;
    ssize_t n = read(fds[0], &pid, sizeof pid);
    close(fds[0]);
    waitpid(daemon, NULL, 0);
    int bg = read_pidfile(pids, "bg.pid", 100), esc = read_pidfile(pids, "esc.pid", 100);
    exec_rm_rf(pids);
    ASSERT_INT_EQ(n, sizeof pid);
    ASSERT(pid > 0 && bg > 0 && esc > 0);
    int status = 0;
    for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) == 0; i++) {
        usleep(10000);
    }
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ASSERT(pid_gone(bg, 2000));
    ASSERT(pid_gone(esc, 2000));
    /* Its shim removed the task's cgroup, as swarmd would have. */
    const char *roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    for (size_t i = 0; i < 2; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/swarmd-orphan", roots[i]);
        ASSERT(access(path, F_OK) != 0);
    }
}

/* Stopped, with a grace period the tree ignores: all of it goes. */
TEST(process_stop_kills_whole_tree)
{
    struct fx f;
    struct tt t;
    char env[128];
    ASSERT(fx_open(&f, false) == 0);
    tt_sh(&t, "tree", "trap '' TERM; " TREE_SCRIPT);
    snprintf(env, sizeof env, "PIDS=%s/tree", f.dir); /* its own dir: it sees it */
    t.env[0] = env;
    t.c.n_env = 1;
    t.c.stop_grace_period_ms = 200;
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT(run_until(&f, pred_running, "tree", 5000));
    char dir[128];
    snprintf(dir, sizeof dir, "%s/tree", f.dir);
    int bg = read_pidfile(dir, "bg.pid", 3000), esc = read_pidfile(dir, "esc.pid", 3000);
    ASSERT(bg > 0 && esc > 0);
    ASSERT_INT_EQ(kill(esc, 0), 0);
    ASSERT_INT_EQ(executor_stop(f.e, "tree"), 0);
    ASSERT(run_until(&f, pred_ended, "tree", 5000));
    ASSERT_INT_EQ(last_state(&f, "tree"), SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT_INT_EQ(last_rec(&f, "tree")->exit_code, 128 + SIGKILL);
    ASSERT(pid_gone(bg, 2000));
    ASSERT(pid_gone(esc, 2000));
    ASSERT(fx_close(&f, 1000) == 0);
}

/* What a task sees: not the state dir (by absolute or relative path), not
 * the other tasks' dirs; Docker's capabilities; no_new_privs. */
TEST(process_task_isolated)
{
    if (geteuid() != 0) {
        return; /* only root isolates */
    }
    struct fx f;
    struct tt t, other, inside;
    char key[128], script[1024];
    ASSERT(fx_open(&f, false) == 0);
    snprintf(key, sizeof key, "%s/key", f.state);
    FILE *fp = fopen(key, "w");
    ASSERT(fp != NULL);
    fputs("SECRET\n", fp);
    fclose(fp);
    tt_sh(&other, "other", "echo other-log; sleep 100");
    ASSERT_INT_EQ(executor_start(f.e, &other.task), 0);
    ASSERT(run_until(&f, pred_running, "other", 5000));
    snprintf(script, sizeof script,
             "cat %s; cat ../../%s/key; ls -A %s | wc -l; ls -A ..; cat ../other/stdout.log;"
             "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status; pwd",
             key, strrchr(f.state, '/') + 1, f.state);
    tt_sh(&t, "iso", script);
    t.env[0] = "SWARM_SHIM_HIDE=/nonexistent"; /* a task's own word does not count */
    t.env[1] = "SWARM_SHIM_ISOLATE=";
    t.c.n_env = 2;
    tt_init(&inside, "inside", "/bin/true");
    inside.c.dir = f.state;
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &inside.task), 0);
    ASSERT(run_until(&f, pred_ended, "iso", 5000));
    ASSERT(run_until(&f, pred_ended, "inside", 5000));
    ASSERT_INT_EQ(last_state(&f, "inside"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT(strstr(last_err(&f, "inside"), "inside swarmd's state dir") != NULL);
    const char *out = executor_log_path(f.e, "iso", false);
    ASSERT(!file_has(out, "SECRET"));
    ASSERT(!file_has(out, "other-log"));
    char want[256];
    snprintf(want, sizeof want, "0\niso\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n"
                                "NoNewPrivs:\t1\n%s/iso\n", f.dir);
    ASSERT(file_has(out, want));
    ASSERT(file_has(executor_log_path(f.e, "other", false), "other-log")); /* it is there */
    ASSERT(fx_close(&f, 1000) == 0);
}

static void tt_health(struct tt *t, const char *kind, const char *cmd, int64_t interval,
                      int64_t timeout, int retries, int64_t start_period);

TEST(process_user)
{
    if (geteuid() != 0) {
        return;
    }
    struct fx f;
    struct tt a, b, c;
    ASSERT(fx_open(&f, false) == 0);
    tt_sh(&a, "nobody", "id -u; id -g; grep '^CapEff:' /proc/self/status; touch mine && echo ok");
    a.c.user = "nobody";
    tt_sh(&b, "nums", "id -u; id -g; sleep 100");
    b.c.user = "4321:4322";
    tt_init(&c, "ghost", "/bin/true");
    c.c.user = "nosuchuser-x";
    /* The health check runs as the task does. */
    tt_health(&b, "CMD-SHELL", "test \"$(id -u)\" = 4321", 50, 1000, 1, 0);
    ASSERT_INT_EQ(executor_start(f.e, &a.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &b.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &c.task), 0);
    ASSERT(run_until(&f, pred_ended, "nobody", 5000));
    ASSERT(run_until(&f, pred_running, "nums", 5000)); /* healthy: checked as 4321 */
    ASSERT(run_until(&f, pred_ended, "ghost", 5000));
    ASSERT_INT_EQ(last_state(&f, "nobody"), SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    ASSERT(file_has(executor_log_path(f.e, "nobody", false),
                    "65534\n65534\nCapEff:\t0000000000000000\nok\n"));
    ASSERT(file_has(executor_log_path(f.e, "nums", false), "4321\n4322\n"));
    ASSERT_INT_EQ(last_state(&f, "ghost"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT_STR_EQ(last_err(&f, "ghost"),
                  "unable to find user nosuchuser-x: no matching entries in passwd file");
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(user_resolve_format_parse)
{
    struct exec_user u, back;
    char err[256], s[1024];
    ASSERT_INT_EQ(exec_user_resolve("root", &u, err, sizeof err), 0);
    ASSERT(u.uid == 0 && u.gid == 0 && u.ngroups >= 1 && u.groups[0] == 0);
    ASSERT_INT_EQ(exec_user_resolve("65534:0", &u, err, sizeof err), 0);
    ASSERT(u.uid == 65534 && u.gid == 0);
    ASSERT_INT_EQ(exec_user_resolve("777", &u, err, sizeof err), 0); /* no passwd entry */
    ASSERT(u.uid == 777 && u.gid == 0 && u.ngroups == 1);
    ASSERT_INT_EQ(exec_user_resolve("nobody:root", &u, err, sizeof err), 0);
    ASSERT(u.uid == 65534 && u.gid == 0);
    ASSERT_INT_EQ(exec_user_format(&u, s, sizeof s), 0);
    ASSERT_INT_EQ(exec_user_parse(s, &back), 0);
    ASSERT(back.uid == u.uid && back.gid == u.gid && back.ngroups == u.ngroups);
    ASSERT_INT_EQ(exec_user_resolve("root:nosuchgroup-x", &u, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "unable to find group nosuchgroup-x: no matching entries in group file");
    ASSERT_INT_EQ(exec_user_resolve("a::b", &u, err, sizeof err), -1);
    ASSERT_INT_EQ(exec_user_resolve(":0", &u, err, sizeof err), -1);
    ASSERT_INT_EQ(exec_user_resolve("99999999999", &u, err, sizeof err), -1);
    ASSERT_INT_EQ(exec_user_parse("1:2:3,x", &back), -1);
    ASSERT(exec_path_within("/a/b", "/a") && exec_path_within("/a", "/a/"));
    ASSERT(!exec_path_within("/ab", "/a") && exec_path_within("/x", "/"));
}

/* Task dirs an older swarmd kept in STATE/worker/tasks: their processes
 * are killed and the dirs, logs included, move to the task dir root. */
TEST(process_old_task_dirs_moved)
{
    struct fx f;
    ASSERT(fx_open(&f, false) == 0);
    int lost = spawn_sleeper(true);
    ASSERT(lost > 0);
    unsigned long long st = 0;
    for (int i = 0; i < 200 && (st = exec_proc_starttime(lost)) == 0; i++) {
        usleep(5000);
    }
    write_pidfile(f.old, "lost", lost, st);
    char path[256];
    snprintf(path, sizeof path, "%s/lost/stdout.log", f.old);
    FILE *fp = fopen(path, "w");
    ASSERT(fp != NULL);
    fputs("kept\n", fp);
    fclose(fp);
    executor_cleanup_leftovers(f.e);
    int status = 0;
    ASSERT_INT_EQ(waitpid(lost, &status, 0), lost);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    snprintf(path, sizeof path, "%s/lost/stdout.log", f.dir);
    ASSERT(file_has(path, "kept\n"));
    snprintf(path, sizeof path, "%s/lost/pid", f.dir);
    ASSERT(access(path, F_OK) != 0);
    ASSERT(access(f.old, F_OK) != 0);
    ASSERT(fx_close(&f, 1000) == 0);
}

/* A task dir root and a state dir that contain one another are refused. */
TEST(process_dirs_must_be_apart)
{
    char em[512];
    ASSERT_INT_EQ(executor_dirs_check("/tmp/test-exec-apart/tasks", "/tmp", em),
                  SWARM_EINVAL);
    ASSERT(strstr(em, "must not contain one another") != NULL);
    ASSERT_INT_EQ(executor_dirs_check("/tmp", "/tmp/test-exec-apart", em) != 0, 1);
    exec_rm_rf("/tmp/test-exec-apart");
}

TEST(process_group_leftovers_killed_at_exit)
{
    struct fx f;
    struct tt t;
    ASSERT(fx_open(&f, false) == 0);
    tt_sh(&t, "bg", "sleep 100 & echo $! > bg.pid; exit 0");
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT(run_until(&f, pred_ended, "bg", 5000));
    ASSERT_INT_EQ(last_state(&f, "bg"), SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    char path[256];
    snprintf(path, sizeof path, "%s/bg/bg.pid", f.dir);
    FILE *fp = fopen(path, "r");
    int bg = 0;
    ASSERT(fp != NULL);
    ASSERT_INT_EQ(fscanf(fp, "%d", &bg), 1);
    fclose(fp);
    ASSERT(pid_gone(bg, 2000));
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(process_close_leaves_nothing)
{
    struct fx f;
    struct tt a, b, c, d;
    ASSERT(fx_open(&f, false) == 0);
    tt_sh(&a, "a", "sleep 100");
    tt_sh(&b, "b", "trap '' TERM; while :; do sleep 0.05; done");
    tt_sh(&c, "c", "sleep 100");
    tt_init(&d, "d", "/bin/true");
    ASSERT_INT_EQ(executor_start(f.e, &a.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &b.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &c.task), 0);
    ASSERT(run_until(&f, pred_running, "a", 5000));
    ASSERT(run_until(&f, pred_running, "b", 5000));
    ASSERT(run_until(&f, pred_running, "c", 5000));
    int pids[3] = {find_rec(&f, "a", SWARM__TASK_STATE__TASK_STATE_RUNNING)->pid,
                   find_rec(&f, "b", SWARM__TASK_STATE__TASK_STATE_RUNNING)->pid,
                   find_rec(&f, "c", SWARM__TASK_STATE__TASK_STATE_RUNNING)->pid};
    ASSERT_INT_EQ(executor_remove(f.e, "c"), 0); /* stopping, no longer known */
    ASSERT_INT_EQ(executor_start(f.e, &d.task), 0); /* not started yet at close */
    int nrec = f.nrec;
    uint64_t t0 = now_ms();
    ASSERT(fx_close(&f, 200) == 0);
    ASSERT(now_ms() - t0 < 3000);
    ASSERT_INT_EQ(f.nrec, nrec); /* no reports after close */
    for (int i = 0; i < 3; i++) {
        ASSERT(pid_gone(pids[i], 1000));
    }
}

TEST(process_cgroup_join)
{
    const char *roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    const char *root = NULL;
    char path[512];
    for (size_t i = 0; i < 2 && root == NULL; i++) {
        snprintf(path, sizeof path, "%s/cgroup.controllers", roots[i]);
        if (access(path, R_OK) == 0 && access(roots[i], W_OK) == 0) {
            root = roots[i];
        }
    }
    if (root == NULL) {
        return; /* no writable cgroup v2 here: nothing to check */
    }
    setenv("SWARM_CGROUP_ROOT", root, 1);
    struct fx f;
    struct tt t;
    int rv = fx_open(&f, false);
    unsetenv("SWARM_CGROUP_ROOT");
    ASSERT(rv == 0);
    tt_sh(&t, "cg", "cat /proc/self/cgroup");
    Swarm__ResourceRequirements req = SWARM__RESOURCE_REQUIREMENTS__INIT;
    Swarm__Resources lim = SWARM__RESOURCES__INIT;
    lim.memory_bytes = 64 << 20;
    lim.nano_cpus = 500000000;
    req.limits = &lim;
    t.spec.resources = &req;
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT(run_until(&f, pred_ended, "cg", 5000));
    ASSERT_INT_EQ(last_state(&f, "cg"), SWARM__TASK_STATE__TASK_STATE_COMPLETE);
    ASSERT(file_has(executor_log_path(f.e, "cg", false), "0::/swarmd-cg\n"));
    snprintf(path, sizeof path, "%s/swarmd-cg", root);
    ASSERT(access(path, F_OK) != 0); /* ended: its cgroup went with it */
    ASSERT_INT_EQ(executor_remove(f.e, "cg"), 0);
    ASSERT(fx_close(&f, 1000) == 0);
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

TEST(health_starting_until_healthy_then_unhealthy)
{
    struct fx f;
    struct tt t;
    char flag[128], cmd[160];
    ASSERT(fx_open(&f, false) == 0);
    snprintf(flag, sizeof flag, "%s/h1/flag", f.dir); /* tasks see their own dir */
    snprintf(cmd, sizeof cmd, "test -f %s", flag);
    tt_init(&t, "h1", "sleep");
    t.args[0] = "100";
    t.c.n_args = 1;
    t.c.stop_grace_period_ms = 2000;
    /* Failures before the flag exists fall in the start period; once
     * healthy the start period no longer shields anything. */
    tt_health(&t, "CMD-SHELL", cmd, 100, 1000, 2, 60000);
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    /* Failing checks for a while: still starting, never running. */
    ASSERT(!run_until(&f, pred_running, "h1", 600));
    ASSERT_INT_EQ(last_state(&f, "h1"), SWARM__TASK_STATE__TASK_STATE_STARTING);
    ASSERT_STR_EQ(last_rec(&f, "h1")->msg, "starting");
    FILE *fp = fopen(flag, "w");
    ASSERT(fp != NULL);
    fclose(fp);
    ASSERT(run_until(&f, pred_running, "h1", 3000));
    const struct rec *r = find_rec(&f, "h1", SWARM__TASK_STATE__TASK_STATE_RUNNING);
    ASSERT(r->pid > 0);
    int pid = r->pid;
    /* Healthy stays running (no second RUNNING report). */
    ASSERT(!run_until(&f, pred_ended, "h1", 400));
    ASSERT_INT_EQ(last_state(&f, "h1"), SWARM__TASK_STATE__TASK_STATE_RUNNING);
    unlink(flag);
    uint64_t t0 = now_ms();
    ASSERT(run_until(&f, pred_ended, "h1", 5000));
    ASSERT(now_ms() - t0 >= 80); /* two failures, an interval apart */
    r = last_rec(&f, "h1");
    ASSERT_INT_EQ(r->state, SWARM__TASK_STATE__TASK_STATE_FAILED);
    ASSERT_STR_EQ(r->err, "task: unhealthy container");
    ASSERT_INT_EQ(r->exit_code, 128 + SIGTERM); /* stopped by us, gracefully */
    ASSERT(pid_gone(pid, 1000));
    char log[256];
    snprintf(log, sizeof log, "%s/h1/health.log", f.dir);
    ASSERT(access(log, F_OK) == 0);
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(health_timeout_is_a_failure)
{
    struct fx f;
    struct tt t;
    char pidfile[128], cmd[200];
    ASSERT(fx_open(&f, false) == 0);
    snprintf(pidfile, sizeof pidfile, "%s/hang/check.pid", f.dir);
    snprintf(cmd, sizeof cmd, "echo $$ > %s; exec sleep 10", pidfile);
    tt_sh(&t, "hang", "sleep 100");
    tt_health(&t, "CMD-SHELL", cmd, 100, 100, 2, 0);
    uint64_t t0 = now_ms();
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    int check = wait_pidfile(&f, pidfile, 3000);
    ASSERT(check > 0);
    ASSERT(run_until(&f, pred_ended, "hang", 5000));
    uint64_t took = now_ms() - t0;
    ASSERT(took >= 350 && took < 3000); /* 2 x (interval + timeout) */
    ASSERT_INT_EQ(last_state(&f, "hang"), SWARM__TASK_STATE__TASK_STATE_FAILED);
    ASSERT_STR_EQ(last_err(&f, "hang"), "task: unhealthy container");
    ASSERT(find_rec(&f, "hang", SWARM__TASK_STATE__TASK_STATE_RUNNING) == NULL);
    ASSERT(pid_gone(check, 1000));
    char log[256];
    snprintf(log, sizeof log, "%s/hang/health.log", f.dir);
    ASSERT(file_has(log, "timed out"));
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(health_start_period)
{
    struct fx f;
    struct tt t, u;
    ASSERT(fx_open(&f, false) == 0);
    /* CMD form, failing: no failure counts for 500 ms. */
    tt_sh(&t, "sp", "sleep 100");
    tt_health(&t, "CMD", "false", 100, 1000, 1, 500);
    /* Healthy within its start period: running at once. */
    tt_sh(&u, "spok", "sleep 100");
    tt_health(&u, "CMD", "true", 100, 1000, 1, 10000);
    uint64_t t0 = now_ms();
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &u.task), 0);
    ASSERT(run_until(&f, pred_running, "spok", 3000));
    ASSERT(!run_until(&f, pred_ended, "sp", 350));
    ASSERT_INT_EQ(last_state(&f, "sp"), SWARM__TASK_STATE__TASK_STATE_STARTING);
    ASSERT(run_until(&f, pred_ended, "sp", 5000));
    ASSERT(now_ms() - t0 >= 500);
    ASSERT_STR_EQ(last_err(&f, "sp"), "task: unhealthy container");
    ASSERT_INT_EQ(last_state(&f, "spok"), SWARM__TASK_STATE__TASK_STATE_RUNNING);
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(health_none_and_bad_test)
{
    struct fx f;
    struct tt t, e, b;
    ASSERT(fx_open(&f, false) == 0);
    tt_sh(&t, "none", "sleep 100");
    tt_health(&t, "NONE", NULL, 10000, 0, 0, 0);
    tt_sh(&e, "empty", "sleep 100");
    tt_health(&e, "CMD", NULL, 10000, 0, 0, 0);
    e.hc.n_test = 0; /* no test: no check */
    tt_sh(&b, "bad", "sleep 100");
    tt_health(&b, "CMD-BASH", "true", 100, 0, 0, 0);
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &e.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &b.task), 0);
    ASSERT(run_until(&f, pred_running, "none", 1000));
    ASSERT(run_until(&f, pred_running, "empty", 1000));
    ASSERT(run_until(&f, pred_ended, "bad", 1000));
    ASSERT_INT_EQ(last_state(&f, "bad"), SWARM__TASK_STATE__TASK_STATE_REJECTED);
    ASSERT(strstr(last_err(&f, "bad"), "CMD-BASH") != NULL);
    ASSERT(fx_close(&f, 1000) == 0);
}

TEST(health_stop_and_remove_kill_running_check)
{
    struct fx f;
    struct tt t, u;
    char pf1[128], pf2[128], cmd1[200], cmd2[200];
    ASSERT(fx_open(&f, false) == 0);
    snprintf(pf1, sizeof pf1, "%s/stopme/c1.pid", f.dir);
    snprintf(pf2, sizeof pf2, "%s/rmme/c2.pid", f.dir);
    snprintf(cmd1, sizeof cmd1, "echo $$ > %s; exec sleep 100", pf1);
    snprintf(cmd2, sizeof cmd2, "echo $$ > %s; exec sleep 100", pf2);
    tt_sh(&t, "stopme", "sleep 100");
    tt_health(&t, "CMD-SHELL", cmd1, 50, 60000, 3, 0);
    tt_sh(&u, "rmme", "sleep 100");
    tt_health(&u, "CMD-SHELL", cmd2, 50, 60000, 3, 0);
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &u.task), 0);
    int c1 = wait_pidfile(&f, pf1, 3000), c2 = wait_pidfile(&f, pf2, 3000);
    ASSERT(c1 > 0 && c2 > 0);
    ASSERT_INT_EQ(executor_stop(f.e, "stopme"), 0);
    ASSERT(run_until(&f, pred_ended, "stopme", 3000));
    ASSERT_INT_EQ(last_state(&f, "stopme"), SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT(pid_gone(c1, 1000));
    int nrec = f.nrec;
    ASSERT_INT_EQ(executor_remove(f.e, "rmme"), 0);
    run_until(&f, pred_closed, NULL, 300);
    ASSERT(pid_gone(c2, 1000));
    ASSERT_INT_EQ(f.nrec, nrec); /* removed: not reported */
    char dir[256];
    snprintf(dir, sizeof dir, "%s/rmme", f.dir);
    ASSERT(access(dir, F_OK) != 0);
    ASSERT(fx_close(&f, 1000) == 0);
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
    tt_health(&t, "CMD-SHELL", cmd, 50, 60000, 3, 0);
    tt_sh(&u, "pending-check", "sleep 100");
    tt_health(&u, "CMD-SHELL", "true", 60000, 0, 0, 0);
    tt_sh(&v, "not-started", "sleep 100");
    tt_health(&v, "CMD-SHELL", "true", 50, 0, 0, 0);
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT_INT_EQ(executor_start(f.e, &u.task), 0);
    int check = wait_pidfile(&f, pf, 3000);
    ASSERT(check > 0);
    ASSERT_INT_EQ(last_state(&f, "pending-check"), SWARM__TASK_STATE__TASK_STATE_STARTING);
    ASSERT_INT_EQ(executor_start(f.e, &v.task), 0);
    int nrec = f.nrec;
    ASSERT(fx_close(&f, 1000) == 0); /* uv_loop_close == 0: no timer left */
    ASSERT_INT_EQ(f.nrec, nrec);
    ASSERT(pid_gone(check, 1000));
}

TEST(health_sim_ignores_checks)
{
    struct fx f;
    struct tt t;
    ASSERT(fx_open(&f, true) == 0);
    tt_init(&t, "s", "x");
    tt_health(&t, "CMD-SHELL", "false", 10, 10, 1, 0);
    ASSERT_INT_EQ(executor_start(f.e, &t.task), 0);
    ASSERT(run_until(&f, pred_running, "s", 1000));
    ASSERT(!run_until(&f, pred_ended, "s", 200));
    ASSERT(fx_close(&f, 0) == 0);
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
    ASSERT(run_until(&f, pred_count, want_run, 10000));
    ASSERT_INT_EQ(f.running, N);
    ASSERT_STR_EQ(f.recs[0].id, "sim00000");
    ASSERT_INT_EQ(f.recs[0].state, SWARM__TASK_STATE__TASK_STATE_PREPARING);
    for (int i = 0; i < N; i++) {
        ASSERT_INT_EQ(executor_stop(f.e, ids[i]), 0);
    }
    int want_stop[2] = {N, N};
    ASSERT(run_until(&f, pred_count, want_stop, 10000));
    ASSERT(executor_log_path(f.e, ids[0], false) == NULL);
    for (int i = 0; i < N / 2; i++) {
        ASSERT_INT_EQ(executor_remove(f.e, ids[i]), 0);
    }
    printf("# sim: %d tasks to running and shut down in %llu ms\n", N,
           (unsigned long long)(now_ms() - t0));
    ASSERT(fx_close(&f, 0) == 0);
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
    ASSERT(run_until(&f, pred_ended, "a", 1000));
    ASSERT_INT_EQ(f.nrec, 1);
    ASSERT_INT_EQ(f.recs[0].state, SWARM__TASK_STATE__TASK_STATE_SHUTDOWN);
    ASSERT_INT_EQ(executor_start(f.e, &b.task), 0); /* forgotten: starts anew */
    ASSERT(run_until(&f, pred_running, "b", 1000));
    ASSERT(fx_close(&f, 0) == 0);
}

/* Last: every process a test started, tasks' children included (they come
 * back to us as subreaper), is gone. */
TEST(zz_no_process_left_behind)
{
    for (int i = 0; i < 300; i++) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid < 0 && errno == ECHILD) {
            return;
        }
        if (pid == 0) {
            usleep(10000);
        }
    }
    FAILF("child processes still running after the tests");
}

TEST_MAIN()
