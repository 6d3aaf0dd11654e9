/* The node: what one swarmd process is. It owns the control socket and the
 * RPC server, remembers whether it is in a swarm (DIR/node-state.pb), and
 * runs a manager when it is one. It serves the node-local Swarm service
 * (init, join, leave, info, version) to the control socket. */
#ifndef SWARM_DAEMON_NODE_H
#define SWARM_DAEMON_NODE_H

#include <uv.h>

struct swarm_node;

struct node_config {
    const char *state_dir;    /* created 0700 if missing */
    const char *listen_addr;  /* default cluster listen address, IP:PORT */
    const char *hostname;     /* NULL: the system's */
    const char *executor;     /* "process" (default) or "sim" */
    const char *task_dir;     /* tasks' dirs; NULL: STATE_DIR-tasks, next to it */
    /* swarmd --insecure-registry HOST[:PORT] (repeatable): registries spoken
     * to over plain HTTP, by the manager's image pinning and the node's
     * pulls. The strings outlive the node (main's argv). */
    const char *const *insecure_registries;
    size_t n_insecure_registries;
    /* Optional: the swarm's state may have changed (a committed store
     * change on this node's manager; many per entry: coalesce). */
    void (*changed_cb)(void *data);
    void *changed_data;
    /* swarmd --image-prune-after: images unused this long are pruned
     * (imgstore_opts.prune_after_s: 0 the default, < 0 never). */
    int64_t image_prune_after_s;
};

/* Lock the state dir, open the control socket, and resume the swarm role
 * found on disk. Returns 0 or an error with a message. */
int node_start(uv_loop_t *loop, const struct node_config *cfg, struct swarm_node **out,
               char *errmsg);

/* Refresh the metrics this node computes at scrape time (smetrics.h):
 * the manager's when it runs one, and the process'. */
void node_collect_metrics(struct swarm_node *n);

/* The visualizer's document (vizstate.h): this node's manager's view, or
 * why there is none (a worker, no swarm), in Docker's words. */
int node_viz_render(struct swarm_node *n, char **json, size_t *len);

/* Stop serving and close everything; `done` runs when all is closed. */
void node_stop(struct swarm_node *n, void (*done)(void *data), void *data);

#endif
