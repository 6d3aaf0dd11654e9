/* The simulated executor: tasks move through their states without running
 * anything, for scale tests (10,000+ tasks on one loop).
 *
 * Happy path: executor_start queues the task; one zero-delay timer drains
 * the queue, moving each queued task one state on (preparing, starting,
 * running) and queueing it again until it runs. executor_stop queues a
 * shutdown, reported on the next drain. No timer or process per task: a task
 * costs its id and a few words.
 * Failure paths: none at run time (out of memory at start is returned).
 * executor_remove queues the task for freeing (it may be in the queue
 * already); executor_close frees everything and closes the timer. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "executor_int.h"

struct sim_task {
    struct exec_entry entry; /* first */
    struct sim_task *qnext;
    Swarm__TaskState state;  /* last reported, NEW before the first report */
    bool queued;
    bool stop;
    bool removed;
};

struct executor_sim {
    struct executor base; /* first */
    uv_timer_t timer;
    struct sim_task *qhead, *qtail;
    size_t qlen;
};

static void sim_drain_cb(uv_timer_t *timer);

static void sim_enqueue(struct executor_sim *s, struct sim_task *t)
{
    if (t->queued) {
        return;
    }
    t->queued = true;
    t->qnext = NULL;
    if (s->qtail != NULL) {
        s->qtail->qnext = t;
    } else {
        s->qhead = t;
    }
    s->qtail = t;
    s->qlen++;
    if (!uv_is_active((uv_handle_t *)&s->timer)) {
        uv_timer_start(&s->timer, sim_drain_cb, 0, 0);
    }
}

static struct sim_task *sim_dequeue(struct executor_sim *s)
{
    struct sim_task *t = s->qhead;
    s->qhead = t->qnext;
    if (s->qhead == NULL) {
        s->qtail = NULL;
    }
    s->qlen--;
    t->queued = false;
    t->qnext = NULL;
    return t;
}

static void sim_task_free(struct sim_task *t)
{
    free(t->entry.id);
    free(t);
}

static bool sim_terminal(Swarm__TaskState st)
{
    return st >= SWARM__TASK_STATE__TASK_STATE_COMPLETE;
}

/* One step for one task; returns after the report. */
static void sim_step(struct executor_sim *s, struct sim_task *t)
{
    const char *msg;
    if (t->stop) {
        if (sim_terminal(t->state)) {
            return;
        }
        t->state = SWARM__TASK_STATE__TASK_STATE_SHUTDOWN;
        msg = "shutdown";
    } else if (t->state < SWARM__TASK_STATE__TASK_STATE_PREPARING) {
        t->state = SWARM__TASK_STATE__TASK_STATE_PREPARING;
        msg = "preparing";
    } else if (t->state < SWARM__TASK_STATE__TASK_STATE_STARTING) {
        t->state = SWARM__TASK_STATE__TASK_STATE_STARTING;
        msg = "starting";
    } else if (t->state < SWARM__TASK_STATE__TASK_STATE_RUNNING) {
        t->state = SWARM__TASK_STATE__TASK_STATE_RUNNING;
        msg = "started";
    } else {
        return;
    }
    exec_report(&s->base, t->entry.id, t->state, msg, "", 0, 0);
    /* The callback may have stopped, removed (queued again) or closed. */
    if (!s->base.closing && !t->removed && t->state < SWARM__TASK_STATE__TASK_STATE_RUNNING) {
        sim_enqueue(s, t);
    }
}

static void sim_drain_cb(uv_timer_t *timer)
{
    struct executor_sim *s = timer->data;
    if (s->base.closing) {
        return;
    }
    /* Only what was queued before this drain: re-queued tasks wait a turn. */
    for (size_t n = s->qlen; n > 0 && !s->base.closing && s->qhead != NULL; n--) {
        struct sim_task *t = sim_dequeue(s);
        if (t->removed) {
            sim_task_free(t);
            continue;
        }
        sim_step(s, t);
    }
}

static int sim_start(struct executor *e, const Swarm__Task *task)
{
    struct executor_sim *s = (struct executor_sim *)e;
    struct sim_task *t = calloc(1, sizeof *t);
    if (t == NULL || (t->entry.id = strdup(task->id)) == NULL) {
        free(t);
        return SWARM_ENOMEM;
    }
    t->state = SWARM__TASK_STATE__TASK_STATE_NEW;
    if (exec_table_put(&e->tasks, &t->entry) != 0) {
        sim_task_free(t);
        return SWARM_ENOMEM;
    }
    sim_enqueue(s, t);
    return 0;
}

static int sim_stop(struct executor *e, const char *task_id)
{
    struct sim_task *t = (struct sim_task *)exec_table_get(&e->tasks, task_id);
    if (t == NULL) {
        return SWARM_ENOTFOUND;
    }
    if (!t->stop && !sim_terminal(t->state)) {
        t->stop = true;
        sim_enqueue((struct executor_sim *)e, t);
    }
    return 0;
}

static int sim_remove(struct executor *e, const char *task_id)
{
    struct sim_task *t = (struct sim_task *)exec_table_get(&e->tasks, task_id);
    if (t == NULL) {
        return 0;
    }
    exec_table_del(&e->tasks, &t->entry);
    t->removed = true;
    sim_enqueue((struct executor_sim *)e, t); /* freed by the next drain */
    return 0;
}

static void sim_closed_cb(uv_handle_t *h)
{
    struct executor_sim *s = h->data;
    exec_base_finish(&s->base);
    free(s);
}

static void sim_free_entry(struct exec_entry *en, void *arg)
{
    struct executor *e = arg;
    exec_table_del(&e->tasks, en);
    sim_task_free((struct sim_task *)en);
}

static void sim_close(struct executor *e, uint64_t grace_ms)
{
    struct executor_sim *s = (struct executor_sim *)e;
    /* Removed tasks live only in the queue; the others are in the table. */
    while (s->qhead != NULL) {
        struct sim_task *t = sim_dequeue(s);
        if (t->removed) {
            sim_task_free(t);
        }
    }
    exec_table_foreach(&e->tasks, sim_free_entry, e);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, sim_closed_cb);
}

static const struct executor_ops sim_ops = {
    .start = sim_start,
    .stop = sim_stop,
    .remove = sim_remove,
    .log_path = NULL,
    .cleanup_leftovers = NULL,
    .close = sim_close,
};

int executor_sim_new(const struct executor_config *cfg, struct executor **out, char *errmsg)
{
    struct executor_sim *s = calloc(1, sizeof *s);
    if (s == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "executor: out of memory");
        return SWARM_ENOMEM;
    }
    int rv = exec_base_init(&s->base, &sim_ops, cfg, errmsg);
    if (rv != 0) {
        free(s);
        return rv;
    }
    uv_timer_init(cfg->loop, &s->timer);
    s->timer.data = s;
    *out = &s->base;
    return 0;
}
