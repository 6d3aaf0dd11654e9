/* What the executors share: the public entry points (which check their
 * arguments and dispatch to the process or sim implementation), status
 * reporting, and the task table (a chained hash table of task ids, sized
 * for 10,000+ tasks per loop). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "executor_int.h"
#include "id.h"

#define EXEC_TABLE_MIN 64

static size_t exec_hash(const char *s)
{
    size_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

int exec_table_init(struct exec_table *t)
{
    t->buckets = calloc(EXEC_TABLE_MIN, sizeof *t->buckets);
    if (t->buckets == NULL) {
        return SWARM_ENOMEM;
    }
    t->nbuckets = EXEC_TABLE_MIN;
    t->count = 0;
    return 0;
}

void exec_table_free(struct exec_table *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = 0;
    t->count = 0;
}

struct exec_entry *exec_table_get(const struct exec_table *t, const char *id)
{
    struct exec_entry *en = t->buckets[exec_hash(id) & (t->nbuckets - 1)];
    while (en != NULL && strcmp(en->id, id) != 0) {
        en = en->next;
    }
    return en;
}

static int exec_table_grow(struct exec_table *t)
{
    size_t n = t->nbuckets * 2;
    struct exec_entry **b = calloc(n, sizeof *b);
    if (b == NULL) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct exec_entry *en = t->buckets[i];
        while (en != NULL) {
            struct exec_entry *next = en->next;
            size_t k = exec_hash(en->id) & (n - 1);
            en->next = b[k];
            b[k] = en;
            en = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
    return 0;
}

int exec_table_put(struct exec_table *t, struct exec_entry *en)
{
    if (t->count + 1 > t->nbuckets && exec_table_grow(t) != 0) {
        return SWARM_ENOMEM;
    }
    size_t k = exec_hash(en->id) & (t->nbuckets - 1);
    en->next = t->buckets[k];
    t->buckets[k] = en;
    t->count++;
    return 0;
}

void exec_table_del(struct exec_table *t, struct exec_entry *en)
{
    struct exec_entry **p = &t->buckets[exec_hash(en->id) & (t->nbuckets - 1)];
    while (*p != NULL && *p != en) {
        p = &(*p)->next;
    }
    if (*p == en) {
        *p = en->next;
        en->next = NULL;
        t->count--;
    }
}

void exec_table_foreach(struct exec_table *t, void (*fn)(struct exec_entry *en, void *arg),
                        void *arg)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct exec_entry *en = t->buckets[i];
        while (en != NULL) {
            struct exec_entry *next = en->next;
            fn(en, arg);
            en = next;
        }
    }
}

/* The task shim: swarmd-shim next to our own executable (daemon/
 * shim_main.c: libc only, so a task start does not load swarmd's shared
 * libraries), else ourselves (`swarmd --task-exec`, the same code). */
static char *exec_default_shim(void)
{
    char self[PATH_MAX], path[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = NULL;
    if (n > 0) {
        self[n] = '\0';
        slash = strrchr(self, '/');
    }
    if (slash != NULL) {
        *slash = '\0';
        snprintf(path, sizeof path, "%s/swarmd-shim", self);
        if (access(path, X_OK) == 0) {
            return strdup(path);
        }
    }
    return strdup("/proc/self/exe");
}

int exec_base_init(struct executor *e, const struct executor_ops *ops,
                   const struct executor_config *cfg, char *errmsg)
{
    if (cfg == NULL || cfg->loop == NULL || cfg->cb == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "executor: loop and status callback required");
        return SWARM_EINVAL;
    }
    memset(e, 0, sizeof *e);
    e->ops = ops;
    e->loop = cfg->loop;
    e->cb = cfg->cb;
    e->data = cfg->data;
    e->net = cfg->net;
    e->dir = strdup(cfg->dir != NULL ? cfg->dir : ".");
    e->node_id = strdup(cfg->node_id != NULL ? cfg->node_id : "");
    e->shim_path = cfg->shim_path != NULL ? strdup(cfg->shim_path) : exec_default_shim();
    e->hide_dir = cfg->hide_dir != NULL ? strdup(cfg->hide_dir) : NULL;
    e->old_dir = cfg->old_dir != NULL ? strdup(cfg->old_dir) : NULL;
    if (e->dir == NULL || e->node_id == NULL || e->shim_path == NULL ||
        (cfg->hide_dir != NULL && e->hide_dir == NULL) ||
        (cfg->old_dir != NULL && e->old_dir == NULL) || exec_table_init(&e->tasks) != 0) {
        free(e->dir);
        free(e->hide_dir);
        free(e->old_dir);
        free(e->node_id);
        free(e->shim_path);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "executor: out of memory");
        return SWARM_ENOMEM;
    }
    return 0;
}

void exec_base_finish(struct executor *e)
{
    void (*done)(void *) = e->done;
    void *done_data = e->done_data;
    exec_table_free(&e->tasks);
    free(e->dir);
    free(e->hide_dir);
    free(e->old_dir);
    free(e->node_id);
    free(e->shim_path);
    e->done = NULL;
    if (done != NULL) {
        done(done_data);
    }
}

void exec_report(struct executor *e, const char *task_id, Swarm__TaskState state,
                 const char *message, const char *err, int exit_code, int pid)
{
    if (e->closing) {
        return;
    }
    struct exec_status st = {
        .state = state,
        .message = message != NULL ? message : "",
        .err = err != NULL ? err : "",
        .exit_code = exit_code,
        .pid = pid,
    };
    e->cb(task_id, &st, e->data);
}

int executor_start(struct executor *e, const Swarm__Task *task)
{
    if (e->closing) {
        return SWARM_ESTATE;
    }
    if (task == NULL || !id_is_path_safe(task->id)) {
        return SWARM_EINVAL; /* it names the task's dir */
    }
    if (exec_table_get(&e->tasks, task->id) != NULL) {
        return 0;
    }
    return e->ops->start(e, task);
}

int executor_stop(struct executor *e, const char *task_id)
{
    if (e->closing) {
        return SWARM_ESTATE;
    }
    if (task_id == NULL) {
        return SWARM_EINVAL;
    }
    return e->ops->stop(e, task_id);
}

int executor_remove(struct executor *e, const char *task_id)
{
    if (e->closing) {
        return SWARM_ESTATE;
    }
    if (task_id == NULL) {
        return SWARM_EINVAL;
    }
    return e->ops->remove(e, task_id);
}

const char *executor_log_path(struct executor *e, const char *task_id, bool stderr_log)
{
    if (task_id == NULL || e->ops->log_path == NULL) {
        return NULL;
    }
    return e->ops->log_path(e, task_id, stderr_log);
}

void executor_cleanup_leftovers(struct executor *e)
{
    if (!e->closing && e->ops->cleanup_leftovers != NULL) {
        e->ops->cleanup_leftovers(e);
    }
}

void executor_set_net(struct executor *e, struct netplane *net)
{
    e->net = net;
    if (e->ops->set_net != NULL) {
        e->ops->set_net(e, net);
    }
}

void executor_close(struct executor *e, uint64_t grace_ms, void (*done)(void *data), void *data)
{
    if (e->closing) {
        return;
    }
    e->closing = true;
    e->done = done;
    e->done_data = data;
    e->ops->close(e, grace_ms);
}

int exec_task_stop(struct executor *e, const char *task_id)
{
    const struct exec_task_hooks *h = e->task_hooks;
    struct exec_task *t = (struct exec_task *)exec_table_get(&e->tasks, task_id);
    if (t == NULL) {
        return SWARM_ENOTFOUND;
    }
    if (!t->stop) {
        h->stop(t);
    }
    return 0;
}

int exec_task_remove(struct executor *e, const char *task_id)
{
    const struct exec_task_hooks *h = e->task_hooks;
    struct exec_task *t = (struct exec_task *)exec_table_get(&e->tasks, task_id);
    if (t == NULL) {
        return 0;
    }
    exec_table_del(&e->tasks, &t->entry);
    t->removed = true;
    if (!t->stop) {
        h->stop(t);
    }
    h->maybe_free(t);
    return 0;
}

const char *exec_task_log_path(struct executor *e, const char *task_id, bool stderr_log)
{
    struct exec_task *t = (struct exec_task *)exec_table_get(&e->tasks, task_id);
    if (t == NULL) {
        return NULL;
    }
    return stderr_log ? t->err_path : t->out_path;
}

int exec_task_head_init(struct exec_task *t, const struct executor *e, const char *id)
{
    return (t->entry.id = strdup(id)) != NULL &&
                   asprintf(&t->dir, "%s/%s", e->dir, id) >= 0 &&
                   asprintf(&t->out_path, "%s/stdout.log", t->dir) >= 0 &&
                   asprintf(&t->err_path, "%s/stderr.log", t->dir) >= 0 &&
                   asprintf(&t->health_path, "%s/health.log", t->dir) >= 0
               ? 0
               : -1;
}

void exec_task_head_free(struct exec_task *t)
{
    free(t->entry.id);
    free(t->dir);
    free(t->out_path);
    free(t->err_path);
    free(t->health_path);
}
