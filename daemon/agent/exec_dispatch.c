/* One executor for both runtimes (executor_dispatch_new): each task goes to
 * the process or the container executor by its TaskSpec.runtime, and the
 * task table here remembers which, so stop, remove and logs find it. The
 * children report through us; closing closes both, and we are freed once
 * both are done. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "executor_int.h"
#include "runtime.h"

struct dispatch_entry {
    struct exec_entry entry; /* first */
    struct executor *child;
};

struct executor_dispatch {
    struct executor base; /* first */
    struct executor *process, *container;
    int open_children;
};

static void dispatch_child_cb(const char *task_id, const struct exec_status *st, void *data)
{
    struct executor_dispatch *d = data;
    exec_report(&d->base, task_id, st->state, st->message, st->err, st->exit_code, st->pid);
}

static struct dispatch_entry *dispatch_get(struct executor *e, const char *id)
{
    return (struct dispatch_entry *)exec_table_get(&e->tasks, id);
}

static int dispatch_start(struct executor *e, const Swarm__Task *task)
{
    struct executor_dispatch *d = (struct executor_dispatch *)e;
    const char *rt = task->spec != NULL ? task->spec->runtime : NULL;
    bool ctr = rt != NULL && strcmp(rt, RUNTIME_CONTAINER) == 0 && d->container != NULL;
    struct dispatch_entry *en = calloc(1, sizeof *en);
    if (en == NULL || (en->entry.id = strdup(task->id)) == NULL) {
        free(en);
        return SWARM_ENOMEM;
    }
    en->child = ctr ? d->container : d->process;
    int rv = executor_start(en->child, task);
    if (rv == 0 && exec_table_put(&e->tasks, &en->entry) != 0) {
        (void)executor_remove(en->child, task->id);
        rv = SWARM_ENOMEM;
    }
    if (rv != 0) {
        free(en->entry.id);
        free(en);
    }
    return rv;
}

static int dispatch_stop(struct executor *e, const char *task_id)
{
    struct dispatch_entry *en = dispatch_get(e, task_id);
    return en != NULL ? executor_stop(en->child, task_id) : SWARM_ENOTFOUND;
}

static int dispatch_remove(struct executor *e, const char *task_id)
{
    struct dispatch_entry *en = dispatch_get(e, task_id);
    if (en == NULL) {
        return 0;
    }
    int rv = executor_remove(en->child, task_id);
    exec_table_del(&e->tasks, &en->entry);
    free(en->entry.id);
    free(en);
    return rv;
}

static const char *dispatch_log_path(struct executor *e, const char *task_id, bool stderr_log)
{
    struct dispatch_entry *en = dispatch_get(e, task_id);
    return en != NULL ? executor_log_path(en->child, task_id, stderr_log) : NULL;
}

static void dispatch_cleanup_leftovers(struct executor *e)
{
    struct executor_dispatch *d = (struct executor_dispatch *)e;
    executor_cleanup_leftovers(d->process);
    if (d->container != NULL) {
        executor_cleanup_leftovers(d->container);
    }
}

static void dispatch_free_entry(struct exec_entry *en, void *arg)
{
    struct executor *e = arg;
    exec_table_del(&e->tasks, en);
    free(en->id);
    free(en);
}

static void dispatch_child_done(void *data)
{
    struct executor_dispatch *d = data;
    if (--d->open_children > 0) {
        return;
    }
    exec_table_foreach(&d->base.tasks, dispatch_free_entry, &d->base);
    exec_base_finish(&d->base);
    free(d);
}

static void dispatch_close(struct executor *e, uint64_t grace_ms)
{
    struct executor_dispatch *d = (struct executor_dispatch *)e;
    d->open_children = d->container != NULL ? 2 : 1;
    executor_close(d->process, grace_ms, dispatch_child_done, d);
    if (d->container != NULL) {
        executor_close(d->container, grace_ms, dispatch_child_done, d);
    }
}

static void dispatch_set_net(struct executor *e, struct netplane *net)
{
    struct executor_dispatch *d = (struct executor_dispatch *)e;
    executor_set_net(d->process, net);
    if (d->container != NULL) {
        executor_set_net(d->container, net);
    }
}

static const struct executor_ops dispatch_ops = {
    .set_net = dispatch_set_net,
    .start = dispatch_start,
    .stop = dispatch_stop,
    .remove = dispatch_remove,
    .log_path = dispatch_log_path,
    .cleanup_leftovers = dispatch_cleanup_leftovers,
    .close = dispatch_close,
};

int executor_dispatch_new(const struct executor_config *cfg, struct executor *process,
                          struct executor *container, struct executor **out, char *errmsg)
{
    struct executor_dispatch *d = calloc(1, sizeof *d);
    if (d == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "executor: out of memory");
        return SWARM_ENOMEM;
    }
    int rv = exec_base_init(&d->base, &dispatch_ops, cfg, errmsg);
    if (rv != 0) {
        free(d);
        return rv;
    }
    d->process = process;
    d->container = container;
    /* The children report to us. */
    process->cb = dispatch_child_cb;
    process->data = d;
    if (container != NULL) {
        container->cb = dispatch_child_cb;
        container->data = d;
    }
    *out = &d->base;
    return 0;
}
