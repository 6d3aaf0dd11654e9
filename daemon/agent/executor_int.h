/* Internals shared by the executors (executor.c, exec_process.c,
 * exec_sim.c): the common executor header with its operations table, and a
 * task table keyed by task id. Not for use outside daemon/agent/exec*. */
#ifndef SWARM_AGENT_EXECUTOR_INT_H
#define SWARM_AGENT_EXECUTOR_INT_H

#include <stdbool.h>
#include <stddef.h>

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

struct executor_ops {
    int (*start)(struct executor *e, const Swarm__Task *task);
    int (*stop)(struct executor *e, const char *task_id);
    int (*remove)(struct executor *e, const char *task_id);
    const char *(*log_path)(struct executor *e, const char *task_id, bool stderr_log);
    void (*cleanup_leftovers)(struct executor *e);
    /* Stop and free everything, then call e->done(e->done_data). */
    void (*close)(struct executor *e, uint64_t grace_ms);
};

struct executor {
    const struct executor_ops *ops;
    uv_loop_t *loop;
    char *dir;     /* owned copies of the config strings */
    char *node_id;
    char *shim_path;
    exec_status_cb cb;
    void *data;
    bool closing;
    void (*done)(void *data);
    void *done_data;
    struct exec_table tasks;
};

/* Fill the common part from cfg (strings copied). */
int exec_base_init(struct executor *e, const struct executor_ops *ops,
                   const struct executor_config *cfg, char *errmsg);
/* Free the common part (not `e` itself), then call the done callback. */
void exec_base_finish(struct executor *e);

/* Report a status change, unless the executor is closing. */
void exec_report(struct executor *e, const char *task_id, Swarm__TaskState state,
                 const char *message, const char *err, int exit_code, int pid);

/* Process executor helpers (exec_shim.c): no libuv in there. */

#define EXEC_CGROUP_PIDS_MAX 4096

/* Find the program for `image` as Docker/runc do: a name with a '/' is a
 * path (relative to `cwd`), otherwise it is searched in `path_env`. Writes
 * the absolute path to `out`, or a Docker-like reason to `err` and returns
 * -1 (`exec: "x": executable file not found in $PATH`). */
int exec_lookup_program(const char *image, const char *path_env, const char *cwd,
                        char *out, size_t outsz, char *err, size_t errsz);

/* Field 22 of /proc/PID/stat (start time in clock ticks since boot), or 0. */
unsigned long long exec_proc_starttime(int pid);

/* mkdir -p (0700 for the dirs it creates); 0 or -errno. */
int exec_mkdir_p(const char *path);
/* rm -rf; 0 or -errno. */
int exec_rm_rf(const char *path);

/* Prepare cgroup v2 limits under ROOT/swarmd-<tag>/ (ROOT: /sys/fs/cgroup,
 * or $SWARM_CGROUP_ROOT). Returns the malloc'd base dir, or NULL when cgroup
 * v2 is not available or not writable. */
char *exec_cgroup_setup(const char *tag);
/* Create BASE/<task id> with memory.max, pids.max and cpu.max (limits <= 0:
 * none). Returns the malloc'd cgroup dir, or NULL (the task runs without). */
char *exec_cgroup_create(const char *base, const char *task_id, int64_t memory_bytes,
                         int64_t nano_cpus);
/* Kill what is left in the cgroup (cgroup.kill) if `kill`, then rmdir it. */
void exec_cgroup_remove(const char *path, bool kill);

/* Kill a previous run's task process recorded as pid + start time: its
 * process group if the leader still matches, else any process of that group
 * whose environment says SWARM_TASK_ID=<task_id>. Returns how many. */
int exec_kill_leftover(const char *task_id, int pid, unsigned long long starttime);

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
    /* HEALTHY on the first success (once), UNHEALTHY once (no more checks
     * after it). May call exec_health_close. */
    void (*cb)(enum exec_health_event ev, void *data);
    void *data;
};

/* Whether `hc` asks for checks: not NULL, a test, and not ["NONE"]. */
bool exec_health_enabled(const Swarm__HealthConfig *hc);
/* 0, or -1 with a reason in err for a test that is not CMD/CMD-SHELL/NONE. */
int exec_health_validate(const Swarm__HealthConfig *hc, char *err, size_t errsz);
/* Arm the first check. 0 or SWARM_ENOMEM. */
int exec_health_start(const struct exec_health_config *cfg, struct exec_health **out);
/* Cancel the next check and SIGKILL a running one; `closed(data)` runs from
 * the loop once no check process and no handle is left, then `h` is freed.
 * No more cb after this call. */
void exec_health_close(struct exec_health *h, void (*closed)(void *data), void *data);

#endif
