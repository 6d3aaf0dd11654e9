/* The agent: the node's side of its dispatcher session. Every node in a
 * swarm runs one (managers are workers too). It holds a session with the
 * leader over mutual TLS, heartbeats, receives its task assignments as a
 * stream, runs them through an executor, and reports task status in batches.
 * It remembers its assignments in a local SQLite database (DIR/worker/
 * tasks.db), so a restarted node resumes its tasks without waiting for a
 * manager, and it keeps them running while no manager is reachable, trying
 * the managers it knows in turn.
 *
 * Several agents may run in one process and one loop (the simulated-nodes
 * tool runs hundreds): no globals. */
#ifndef SWARM_AGENT_AGENT_H
#define SWARM_AGENT_AGENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <uv.h>

#include "dispatcher.pb-c.h"
#include "objects.pb-c.h"

struct agent;

struct agent_config {
    uv_loop_t *loop;
    const char *state_dir;      /* DIR: the task db, task dirs and logs live under DIR/worker */
    const char *node_id;
    SSL_CTX *client_ctx;        /* this node's certificate; trusts the root CA (ref taken) */
    const char *const *managers; /* manager addresses IP:PORT to try, in order */
    size_t n_managers;
    const char *executor;       /* "process" (default) or "sim" */
    const char *hostname;       /* NULL: the system's */
    /* The managers the leader announced (persist them for the next start). */
    void (*managers_cb)(Swarm__ManagerPeer *const *peers, size_t n, void *data);
    /* The node's own object as the leader sent it (role, availability). */
    void (*node_cb)(const Swarm__Node *node, void *data);
    void *data;
};

int agent_start(const struct agent_config *cfg, struct agent **out, char *errmsg);

/* Use a new certificate for the next connections (renewal, role change). */
void agent_set_client_ctx(struct agent *a, SSL_CTX *ctx);

/* True while a session with the leader is open; the manager's address. */
bool agent_connected(const struct agent *a);
const char *agent_manager_addr(const struct agent *a);

/* End the session. With `stop_tasks`, stop every task (SIGTERM, then SIGKILL
 * after its grace) before `done`; without, leave them to the next start
 * (which cleans up leftovers). */
void agent_stop(struct agent *a, bool stop_tasks, void (*done)(void *data), void *data);

#endif
