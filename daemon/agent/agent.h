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

struct imgstore;
struct agent;

/* Where the agent applies the network maps the leader streams
 * (dispatcher.proto, NetworkMaps): by default the node's netplane
 * (net/netplane.h); tests pass their own. `update` replaces the map of
 * map->network->id (0, or SWARM_E* with errmsg filled: the previous map
 * stays); `remove` forgets a network's map. */
struct agent_netsink {
    int (*update)(void *impl, const Swarm__NetworkMap *map, char *errmsg);
    int (*remove)(void *impl, const char *network_id);
    void *impl;
};

struct agent_config {
    uv_loop_t *loop;
    const char *state_dir;      /* DIR: the task db lives in DIR/worker; tasks never see DIR */
    const char *task_dir;       /* tasks' dirs and logs; NULL: DIR-tasks, next to DIR */
    const char *node_id;
    SSL_CTX *client_ctx;        /* this node's certificate; trusts the root CA (ref taken) */
    const char *const *managers; /* manager addresses IP:PORT to try, in order */
    size_t n_managers;
    const char *executor;       /* "process" (default) or "sim" */
    const char *hostname;       /* NULL: the system's */
    /* Networking (issue 12), process executor only: this node's IP that
     * VXLAN uses (the IP of its advertised address). When set, the agent
     * probes the host (netplane_probe): if it can do networking, it makes
     * the node's netplane (cleaning up what a previous run left), applies
     * the leader's network maps to it and closes it at the end; if not, the
     * node's description says why (NodeDescription.network_error) and tasks
     * without networks run as ever. NULL: no networking, no probe. */
    const char *underlay_ip;
    /* Tests: the network maps go here instead of a netplane (no probe). */
    const struct agent_netsink *netsink;
    /* Registries the container executor pulls from over plain HTTP
     * (swarmd --insecure-registry); borrowed, outlive the agent. */
    const char *const *insecure_registries;
    size_t n_insecure_registries;
    /* The node's image store for the container executor (borrowed: it
     * must outlive the agent); NULL: the executor opens its own. */
    struct imgstore *images;
    /* The managers the leader announced (persist them for the next start). */
    void (*managers_cb)(Swarm__ManagerPeer *const *peers, size_t n, void *data);
    /* The node's own object as the leader sent it (role, availability). */
    void (*node_cb)(const Swarm__Node *node, void *data);
    /* The swarm removed this node (the dispatcher refused it as removed).
     * The agent has stopped connecting; the owner should stop it with
     * stop_tasks and leave the swarm locally. */
    void (*removed_cb)(void *data);
    /* The swarm's root CA (PEM) as the leader sent it (at each session
     * start, and when a root rotation ends). May be NULL. */
    void (*root_ca_cb)(const uint8_t *pem, size_t len, void *data);
    /* The leader asks for a certificate renewal unless this node's issuer
     * key is `issuer_key` (DER SubjectPublicKeyInfo). May be NULL. */
    void (*renew_cb)(const uint8_t *issuer_key, size_t len, void *data);
    /* A connection attempt failed before a session opened; `failures`
     * counts them since the last open session. May be NULL. */
    void (*conn_error_cb)(const char *addr, unsigned failures, const char *why, void *data);
    void *data;
};

/* Open DIR/worker/tasks.db (DIR/worker is made 0700), kill what a previous
 * run left behind, start again the remembered tasks whose desired state is
 * <= RUNNING and whose last status is not terminal (without waiting for a
 * manager), then connect. The config's strings and arrays are copied; the
 * callbacks run from the loop, never from inside an agent_* call, and may
 * call agent_stop. Returns 0 or SWARM_E* with errmsg (SWARM_ERRMSG_SIZE)
 * filled; on error nothing is left running. */
int agent_start(const struct agent_config *cfg, struct agent **out, char *errmsg);

/* Use a new certificate for the next connections (renewal, role change). */
void agent_set_client_ctx(struct agent *a, SSL_CTX *ctx);

/* What the node reports about its certificate (copied). A session already
 * open is ended and opened again, so that the leader sees it: at once, or
 * after a random delay below `spread_ms` (for changes every node makes at
 * the same moment). */
void agent_set_tls_info(struct agent *a, const Swarm__NodeTLSInfo *info, uint64_t spread_ms);

/* A manager to ask for a certificate: the one of the open session, else
 * the last leader, else the first known; NULL when none is known. */
const char *agent_any_manager_addr(const struct agent *a);

/* True while a session with the leader is open; the manager's address
 * (owned by the agent, valid until the session ends), NULL when none. */
bool agent_connected(const struct agent *a);

/* The tasks of this node that use the named volume `name` (a type=volume
 * mount) and have not ended: their IDs, comma-separated, into out (""
 * when none). */
void agent_volume_users(struct agent *a, const char *name, char *out, size_t size);
const char *agent_manager_addr(const struct agent *a);

/* End the session. With `stop_tasks`, stop every task (SIGTERM, then SIGKILL
 * after its grace) before `done`, and record them as shut down; without,
 * leave them to the next start (which cleans up leftovers): the task db
 * keeps them as running so that the next start resumes them. Note: the
 * process executor cannot leave processes behind (executor_close stops
 * them, and they die with the daemon by PDEATHSIG anyway), so without
 * `stop_tasks` they are stopped too, only not recorded as such. `done` runs
 * from the loop (never from inside this call) once every handle is closed;
 * `a` is freed before it runs. Calling it again is a no-op. */
void agent_stop(struct agent *a, bool stop_tasks, void (*done)(void *data), void *data);

#endif
