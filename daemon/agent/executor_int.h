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

#endif
