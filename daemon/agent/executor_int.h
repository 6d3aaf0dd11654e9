/* Internals shared by the executors (executor.c, exec_process.c,
 * exec_sim.c): the common executor header with its operations table, and a
 * task table keyed by task id. Not for use outside daemon/agent/exec*. */
#ifndef SWARM_AGENT_EXECUTOR_INT_H
#define SWARM_AGENT_EXECUTOR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "executor.h"

/* Embedded first in each executor's task struct. `id` is owned by the entry's
 * owner (freed with the task). */
struct exec_entry {
    struct exec_entry *next;
    char *id;
};

/* A chained hash table of entries; grows, never shrinks. */
struct exec_table {
    struct exec_entry **buckets;
    size_t nbuckets;
    size_t count;
};

int exec_table_init(struct exec_table *t);
void exec_table_free(struct exec_table *t); /* the entries stay the caller's */
struct exec_entry *exec_table_get(const struct exec_table *t, const char *id);
int exec_table_put(struct exec_table *t, struct exec_entry *en);
void exec_table_del(struct exec_table *t, struct exec_entry *en);
/* Calls fn on every entry; fn may delete (and free) the entry it is given. */
void exec_table_foreach(struct exec_table *t, void (*fn)(struct exec_entry *en, void *arg),
                        void *arg);

struct exec_task_hooks;

struct executor_ops {
    int (*start)(struct executor *e, const Swarm__Task *task);
    int (*stop)(struct executor *e, const char *task_id);
    int (*remove)(struct executor *e, const char *task_id);
    const char *(*log_path)(struct executor *e, const char *task_id, bool stderr_log);
    void (*cleanup_leftovers)(struct executor *e);
    /* Optional: executor_set_net was called (e->net is set already). */
    void (*set_net)(struct executor *e, struct netplane *net);
    /* Stop and free everything, then call e->done(e->done_data). */
    void (*close)(struct executor *e, uint64_t grace_ms);
};

struct executor {
    const struct executor_ops *ops;
    uv_loop_t *loop;
    char *dir;     /* owned copies of the config strings */
    char *hide_dir, *old_dir; /* NULL when not given */
    char *node_id;
    char *shim_path;
    struct netplane *net; /* borrowed, NULL: none */
    exec_status_cb cb;
    void *data;
    bool closing;
    void (*done)(void *data);
    void *done_data;
    struct exec_table tasks;
    const struct exec_task_hooks *task_hooks; /* tasks headed by exec_task; else NULL */
};

/* Fill the common part from cfg (strings copied). */
int exec_base_init(struct executor *e, const struct executor_ops *ops,
                   const struct executor_config *cfg, char *errmsg);
/* Free the common part (not `e` itself), then call the done callback. */
void exec_base_finish(struct executor *e);

/* Report a status change, unless the executor is closing. */
void exec_report(struct executor *e, const char *task_id, Swarm__TaskState state,
                 const char *message, const char *err, int exit_code, int pid);

/* The head of the process and container executors' task structs (embedded
 * first), so that stop, remove and log_path are written once (executor.c). */
struct exec_task {
    struct exec_entry entry; /* first */
    bool stop, removed;      /* stop asked; removed from e->tasks */
    char *dir;               /* E->dir/<id>, owned like the paths below */
    char *out_path, *err_path, *health_path; /* in dir: stdout, stderr, health checks */
};

/* Set the id and paths of a zeroed head for task `id` (0, or -1 when out of
 * memory: exec_task_head_free frees what was set). */
int exec_task_head_init(struct exec_task *t, const struct executor *e, const char *id);
void exec_task_head_free(struct exec_task *t);

/* What exec_task_stop/remove call back into the executor for. */
struct exec_task_hooks {
    void (*stop)(struct exec_task *t);       /* stop with the task's grace period */
    void (*maybe_free)(struct exec_task *t); /* free it once nothing holds it */
};

/* executor_ops.stop through e->task_hooks: SWARM_ENOTFOUND for an unknown
 * task, else 0. */
int exec_task_stop(struct executor *e, const char *task_id);
/* executor_ops.remove through e->task_hooks: forget the task (stopping it
 * first); 0, even if unknown. */
int exec_task_remove(struct executor *e, const char *task_id);
/* executor_ops.log_path; NULL for an unknown task. */
const char *exec_task_log_path(struct executor *e, const char *task_id, bool stderr_log);

/* Process executor helpers (exec_shim.c): no libuv in there. */

#define EXEC_CGROUP_PIDS_MAX 4096
#define EXEC_CGROUP_FS "/sys/fs/cgroup" /* hidden from tasks */

/* Find the program for `image` as Docker/runc do: a name with a '/' is a
 * path (relative to `cwd`), otherwise it is searched in `path_env`. Writes
 * the absolute path to `out`, or a Docker-like reason to `err` and returns
 * -1 (`exec: "x": executable file not found in $PATH`). */
int exec_lookup_program(const char *image, const char *path_env, const char *cwd,
                        char *out, size_t outsz, char *err);

/* Field 22 of /proc/PID/stat (start time in clock ticks since boot), or 0. */
unsigned long long exec_proc_starttime(int pid);

/* mkdir -p (0700 for the dirs it creates); 0 or -errno. */
int exec_mkdir_p(const char *path);
/* Copy the regular files of dir `from` into dir `to` (made if missing);
 * 0 or -errno. */
int exec_copy_files(const char *from, const char *to);

/* Find a writable cgroup v2 hierarchy (ROOT: /sys/fs/cgroup, or
 * /sys/fs/cgroup/unified on a hybrid v1/v2 host, or $SWARM_CGROUP_ROOT)
 * and enable its controllers for the tasks' cgroups, ROOT/swarmd-<task id>
 * (task IDs are unique, so swarmds on one host do not meet; a flat layout
 * leaves nothing behind once each task's cgroup is gone). Returns the
 * malloc'd ROOT, or NULL when cgroup v2 is not available or not writable.
 * Without controllers (hybrid hosts), tasks are still tracked and killed as
 * a whole through their cgroup, only not limited. */
#define EXEC_CGROUP_PREFIX "swarmd-"
char *exec_cgroup_setup(void);
/* Create BASE/swarmd-<task id> with memory.max, pids.max and cpu.max
 * (limits <= 0: none). Returns the malloc'd cgroup dir, or NULL (the task
 * runs without). */
char *exec_cgroup_create(const char *base, const char *task_id, int64_t memory_bytes,
                         int64_t nano_cpus);
/* Whether `controller` ("pids", "memory", "cpu") is enabled for the
 * cgroups made under `base`. */
bool exec_cgroup_has(const char *base, const char *controller);
/* SIGKILL every process in the cgroup (cgroup.kill, or one by one on older
 * kernels). 0 or -errno. A task cannot leave its cgroup: the shim hides the
 * cgroup file systems from it. */
int exec_cgroup_kill(const char *path);
/* Kill what is left in the cgroup if `kill`, then rmdir it. */
void exec_cgroup_remove(const char *path, bool kill);

/* cgroup v1 (exec_cgroup1.c): CONTROLLER/swarmd-<task id> under
 * /sys/fs/cgroup (or $SWARM_CGROUP1_ROOT) for memory, cpu and pids. */

/* ROOT/CONTROLLER/swarmd-<task id> into out; -1 if it does not fit or a
 * name is not a single path component. Pure. */
int exec_cgroup1_path(const char *root, const char *controller, const char *task_id,
                      char *out, size_t size);
/* Write VALUE to DIR/FILE (a cgroup's control file): 0 or -errno. */
int exec_write_file(const char *dir, const char *file, const char *value);
/* Whether CONTROLLER is a writable v1 hierarchy on this host. */
bool exec_cgroup1_available(const char *controller);
/* Make the task's cgroups with their limits (<= 0: none; pids always
 * EXEC_CGROUP_PIDS_MAX); their dirs, ':'-separated, into joined. Returns
 * how many were made (0: no v1 here). */
int exec_cgroup1_create(const char *task_id, int64_t memory_bytes, int64_t nano_cpus,
                        char *joined, size_t size);
/* Move `pid` into each of the ':'-separated dirs. 0, or -1 if one failed. */
int exec_cgroup1_join(const char *joined, int pid);
/* Whether the task's memory cgroup saw an OOM kill (its own processes). */
bool exec_cgroup1_oom_killed(const char *task_id);
/* An eventfd the kernel signals when the task's memory cgroup runs out of
 * memory (cgroup.event_control on memory.oom_control): a container's OOM
 * kill is counted in runc's cgroup below ours, gone with it, but the OOM
 * itself happens at our limit. -1 when it cannot be watched. */
int exec_cgroup1_oom_watch(const char *task_id);
/* Whether the eventfd was signalled (reads it; nonblocking). */
bool exec_cgroup1_oom_seen(int efd);
/* Kill what is left (if kill_all) and remove the task's cgroups (and a
 * ctr child runc left) in every v1 hierarchy; returns how many went. */
int exec_cgroup1_remove(const char *task_id, bool kill_all);

/* Kill a previous run's task recorded as its shim's pid + start time: the
 * shim and its session (or process group) if the shim still matches, else
 * any process of that session or group whose environment says
 * SWARM_TASK_ID=<task_id>. Returns how many. */
int exec_kill_leftover(const char *task_id, int pid, unsigned long long starttime);

/* SIGKILL every process whose session or process group is `sid` (a shim
 * that is gone: what it could not take down with it). Returns how many. */
int exec_kill_session(int sid);

/* The signals that tell a shim to kill its task's whole process tree and
 * exit with the task's status: swarmd sends the first when a stop's grace
 * period is over; the kernel sends the second when swarmd dies
 * (PR_SET_PDEATHSIG; the shim then also removes the task's cgroup, as
 * swarmd cannot). */
#define EXEC_SHIM_KILL_SIGNAL SIGUSR1
#define EXEC_SHIM_DEATH_SIGNAL SIGUSR2

/* After EXEC_SHIM_KILL_SIGNAL, how long a shim (a task's or a health
 * check's) has to take its tree down before it is SIGKILLed itself, with its
 * session: a shim that is stopped, traced or stuck never holds up a stop,
 * a health check or a close. */
#define EXEC_SHIM_KILL_FALLBACK_MS 2000

/* Task isolation (exec_isolate.c). */

/* Docker's default capability set: CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
 * KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT,
 * MKNOD, AUDIT_WRITE, SETFCAP (CapEff 00000000a80425fb). */
#define EXEC_DOCKER_CAPS UINT64_C(0x00000000a80425fb)
#define EXEC_USER_GROUPS_MAX 64

/* A task's user, resolved on the worker. */
struct exec_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[EXEC_USER_GROUPS_MAX]; /* supplementary, the primary included */
    size_t ngroups;
};

/* Resolve "user[:group]" (names or numbers) with getpwnam/getgrnam as runc
 * does: a name must exist ("unable to find user X: no matching entries in
 * passwd file"); a number need not (gid 0 then); the groups are the user's
 * groups from the group file. 0, or -1 with the reason in err. */
int exec_user_resolve(const char *spec, struct exec_user *u, char *err);
/* "UID:GID:G1,G2,..." for SWARM_SHIM_USER, and back. 0 or -1. */
int exec_user_format(const struct exec_user *u, char *out, size_t size);
int exec_user_parse(const char *s, struct exec_user *u);

/* True if `path` is `dir` or under it (both absolute and normalised). */
bool exec_path_within(const char *path, const char *dir);

/* Shim side, as root: a mount namespace of the task's own in which `hide`
 * (NULL: none) is an empty read-only tmpfs and `task_root` (NULL: left
 * alone) shows only `task_dir`; then walk to the cwd again through the new
 * mounts. 0, or -1 with the reason in err. */
int exec_isolate_mounts(const char *hide, const char *task_root, const char *task_dir, char *err);
/* Shim side, before exec_isolate_mounts: enter the network namespace
 * bind-mounted at `netns` (NULL: stay) and, with `hostname`, a UTS
 * namespace of the task's own with that hostname. 0, or -1 with the
 * reason in err. */
int exec_isolate_net(const char *netns, const char *hostname, char *err);
/* Shim side, after exec_isolate_mounts (in the task's mount namespace):
 * bind-mount `dir`/hosts and `dir`/resolv.conf over /etc's, and
 * `dir`/hostname over /etc/hostname if the host has one. 0, or -1. */
int exec_isolate_etc(const char *dir, char *err);
/* Shim side, in the task's process just before exec: with `drop_caps`,
 * keep only Docker's default capabilities (bounding set; effective and
 * permitted for root) and the task's groups; become `u` (NULL: stay);
 * always set no_new_privs. 0, or -1 with the reason in err. */
int exec_isolate_creds(const struct exec_user *u, bool drop_caps, char *err);

/* Health checks of one task (exec_health.c), Docker's semantics: a check
 * every `interval` (the first one `interval` after the start), killed after
 * `timeout`; `retries` failures in a row make the task unhealthy; failures
 * during `start_period` do not count. Zero fields get Docker's defaults. */
#define EXEC_HEALTH_DEFAULT_INTERVAL_MS 30000
#define EXEC_HEALTH_DEFAULT_TIMEOUT_MS 30000
#define EXEC_HEALTH_DEFAULT_RETRIES 3

enum exec_health_event { EXEC_HEALTH_HEALTHY, EXEC_HEALTH_UNHEALTHY };

struct exec_health;

/* Everything is borrowed and must stay valid until the health is closed. */
struct exec_health_config {
    uv_loop_t *loop;
    const Swarm__HealthConfig *hc;
    const char *shim_path;
    const char *cwd;      /* the task's working dir */
    const char *log_path; /* checks' stdout and stderr are appended here */
    char *const *env;     /* the task's environment, NULL-terminated */
    /* NULL: the check runs as the task does (process executor). Else the
     * argv (NULL-terminated, [0] an absolute path) that runs a command in
     * the task, e.g. `runc --root R exec ID`: the check's argv follows it. */
    char *const *exec_prefix;
    /* HEALTHY on the first success (once), UNHEALTHY once (no more checks
     * after it). May call exec_health_close. */
    void (*cb)(enum exec_health_event ev, void *data);
    void *data;
};

/* Whether `hc` asks for checks: not NULL, a test, and not ["NONE"]. */
bool exec_health_enabled(const Swarm__HealthConfig *hc);
/* 0, or -1 with a reason in err for a test that is not CMD/CMD-SHELL/NONE. */
int exec_health_validate(const Swarm__HealthConfig *hc, char *err);
/* Arm the first check. 0 or SWARM_ENOMEM. */
int exec_health_start(const struct exec_health_config *cfg, struct exec_health **out);
/* Cancel the next check and SIGKILL a running one; `closed(data)` runs from
 * the loop once no check process and no handle is left, then `h` is freed.
 * No more cb after this call. */
void exec_health_close(struct exec_health *h, void (*closed)(void *data), void *data);

#endif
