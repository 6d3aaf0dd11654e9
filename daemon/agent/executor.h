/* Executors run a node's tasks. The agent tells an executor which tasks to
 * run and which to stop; the executor reports each task's observed state as
 * it changes. Two implementations:
 *   process: a task is a program (ContainerSpec.image, a path or a name
 *            looked up in PATH) with args and env, run under uv_spawn in its
 *            own working dir with stdout/stderr in per-task log files;
 *   sim:     tasks move through their states without running anything, for
 *            scale tests.
 * Everything runs on one uv loop. */
#ifndef SWARM_AGENT_EXECUTOR_H
#define SWARM_AGENT_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "objects.pb-c.h"

#define EXECUTOR_DEFAULT_STOP_GRACE_MS 10000

struct imgstore;

/* What an executor observed. `message` and `err` are static or owned by the
 * executor and valid during the callback only. */
struct exec_status {
    Swarm__TaskState state;
    const char *message; /* e.g. "starting", "finished" */
    const char *err;     /* why it failed/was rejected, "" otherwise */
    int exit_code;
    int pid;
};

/* Called on every state change of a task, in state order (preparing,
 * starting, running, then one of complete/failed/rejected/shutdown); a task
 * stopped before it runs goes straight to shutdown. Never called from inside
 * an executor_* call (always from the loop), never for a task after
 * executor_remove, never after executor_close. The callback may call any
 * executor_* function, including executor_close. */
typedef void (*exec_status_cb)(const char *task_id, const struct exec_status *st, void *data);

struct executor;
struct netplane;

struct executor_config {
    uv_loop_t *loop;
    const char *dir;       /* process: tasks' working dirs and logs go under DIR/<id>/ */
    /* process: a dir tasks must not see (swarmd's state dir), NULL: none. */
    const char *hide_dir;
    /* process: where an older swarmd kept task dirs (STATE/worker/tasks);
     * executor_cleanup_leftovers moves what is there into DIR. NULL: none. */
    const char *old_dir;
    const char *node_id;   /* exported to tasks as SWARM_NODE_ID */
    exec_status_cb cb;
    void *data;
    /* process: the binary spawned in shim mode (see executor_shim_main);
     * NULL means /proc/self/exe, i.e. swarmd itself. Tests pass their own. */
    const char *shim_path;
    /* process: the node's data plane (net/netplane.h), NULL: no networking.
     * A task with networks (Task.networks) then runs in a sandbox of its
     * own: made before its process is spawned (the shim enters its network
     * namespace, gets its own UTS namespace with the task's hostname, and
     * its /etc/hosts, /etc/resolv.conf and /etc/hostname are bind-mounted
     * from DIR/<id>/etc/), removed with the task. Without one such a task
     * is REJECTED. Borrowed: it must outlive the executor. */
    struct netplane *net;
    /* container: the node's image store (image/image.h), borrowed; NULL:
     * the executor opens its own in STATE/images with these registries
     * spoken to over plain HTTP (swarmd --insecure-registry). */
    struct imgstore *images;
    const char *const *insecure_registries;
    size_t n_insecure_registries;
};

int executor_process_new(const struct executor_config *cfg, struct executor **out, char *errmsg);

/* The container executor (exec_container.c): a task whose
 * TaskSpec.runtime is "container" is an OCI image pulled through image/
 * and run with `runc` (its path) in an overlayfs snapshot, with the config
 * ocispec.c builds; runc's state in STATE/runc, named volumes in
 * STATE/volumes/NAME/_data (STATE: the config's hide_dir), logs in
 * DIR/<id>/ as the process executor's. Needs root. */
int executor_container_new(const struct executor_config *cfg, const char *runc,
                           struct executor **out, char *errmsg);

/* One executor for both runtimes: each task goes to `container` when its
 * TaskSpec.runtime is "container", else to `process`. `container` may be
 * NULL (the node offers only processes: such tasks are then REJECTED by the
 * process executor). Takes both (closed and freed with it). */
int executor_dispatch_new(const struct executor_config *cfg, struct executor *process,
                          struct executor *container, struct executor **out, char *errmsg);

/* Make the task dir root `task_dir` (0700, parents too) and check that it
 * and `state_dir` (which must exist) do not contain one another: tasks are
 * kept from seeing the state dir, and the task dir root is partly hidden
 * from each task. 0, or SWARM_E* with errmsg filled. */
int executor_dirs_check(const char *task_dir, const char *state_dir, char *errmsg);
int executor_sim_new(const struct executor_config *cfg, struct executor **out, char *errmsg);

/* Start running `task` (copied); its ID must be safe as a path component
 * (id_is_path_safe), else SWARM_EINVAL. Reports PREPARING, STARTING, RUNNING, then
 * COMPLETE (exit 0), FAILED (exit code or signal, with err), or REJECTED
 * (program not found / not executable). Starting a task already known is a
 * no-op. Returns 0 or SWARM_E*.
 * Process executor, with ContainerSpec.healthcheck (a test other than
 * ["NONE"]): the task stays STARTING until a check passes (Docker's
 * semantics and defaults: interval 30 s, timeout 30 s, 3 retries, start
 * period 0; checks' output in DIR/<id>/health.log); `retries` failed
 * checks in a row stop it as executor_stop does and report FAILED with err
 * "task: unhealthy container" and the process's exit code. The sim executor
 * ignores health checks. */
int executor_start(struct executor *e, const Swarm__Task *task);

/* Stop a running task: SIGTERM to its process group, then SIGKILL to its
 * whole process tree after its stop grace period
 * (ContainerSpec.stop_grace_period_ms, default 10 s); reports SHUTDOWN when it
 * is gone. A task that already ended is left as it is. */
int executor_stop(struct executor *e, const char *task_id);

/* Forget a task (stopping it first if needed, without reporting it). Until
 * then a task that ended keeps its working dir and logs; the process
 * executor now deletes DIR/<id>/ (logs included; a ContainerSpec.dir
 * is left alone) and the task's cgroup, once its process is gone.
 * Idempotent. */
int executor_remove(struct executor *e, const char *task_id);

/* The task's log file paths (process executor; NULL for sim and for tasks
 * not known). Valid until executor_remove. */
const char *executor_log_path(struct executor *e, const char *task_id, bool stderr_log);

/* Processes a previous run of this node left behind (shim pids recorded in
 * DIR/<id>/pid with their start time): kill them and what is left of their
 * sessions, so a restarted worker starts from a clean slate and runs each
 * task once. Task dirs found in the config's old_dir are handled the same
 * way and then moved into DIR (logs kept). Process executor only; a no-op
 * for sim. */
void executor_cleanup_leftovers(struct executor *e);

/* The node's data plane from now on (as executor_config.net), for an owner
 * that makes it on first need (the agent). Borrowed: it must outlive the
 * executor. Tasks started before keep what they had. */
void executor_set_net(struct executor *e, struct netplane *net);

/* Stop everything (SIGTERM, then SIGKILL after at most `grace_ms`), then
 * free; `done` runs once all processes are gone and handles closed. No status
 * callbacks after this call. */
void executor_close(struct executor *e, uint64_t grace_ms, void (*done)(void *data), void *data);

/* The process executor's shim: swarmd's main() calls this first when
 * argv[1] is "--task-exec" (argv: swarmd --task-exec PROGRAM ARGV0 [ARG...]).
 * It isolates the task (own mount namespace without swarmd's state dir,
 * Docker's default capabilities, the task's user, no_new_privs), runs
 * PROGRAM as its child and stays as the supervisor of the task's process
 * tree, which it takes down whole when the task's main process ends, when
 * told to (EXEC_SHIM_KILL_SIGNAL) or when swarmd dies
 * (EXEC_SHIM_DEATH_SIGNAL). Returns the exit status to use: the task's (its
 * signal is re-raised), 126 when isolation failed, 127 when the exec failed
 * (reason on stderr). See exec_shim.c. */
int executor_shim_main(int argc, char **argv);

#endif
