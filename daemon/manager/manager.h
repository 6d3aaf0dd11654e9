/* A manager: the store, its raft node, the cluster port (TLS) and the
 * services only managers serve (Control, CA).
 *
 * Bring-up paths:
 *   manager_init_cluster  swarm init: new CA, certificates, tokens, a raft
 *                         group of one voter, and the first entry (Cluster +
 *                         this Node). Nothing is left on disk if it fails.
 *   manager_open          restart of a node whose local state says manager.
 * Either way `ready_cb` runs once: status 0 when this manager serves (for
 * init: once the first entry is committed), or an error with a message. */
#ifndef SWARM_DAEMON_MANAGER_H
#define SWARM_DAEMON_MANAGER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "api.h"
#include "ca.pb-c.h"
#include "localstate.pb-c.h"
#include "mslot.h"
#include "raftnode.h"
#include "store.h"
#include "swarm.pb-c.h"

struct manager;

struct manager_config {
    const char *state_dir;
    const char *hostname;       /* NULL: the system's */
    struct api_server *api;     /* shared with the control socket */
    /* The API handlers' view (mslot.h): this manager publishes its modules
     * there while it serves. NULL: nothing is published. */
    struct manager_slot *slot;
    /* A manager that just joined: the managers the leader named, so their
     * raft connections are accepted before our store knows them. */
    Swarm__ManagerPeer **seed_peers;
    size_t n_seed_peers;
    /* Registries the image pinning speaks plain HTTP to (serviceapi.h). */
    const char *const *insecure_registries;
    size_t n_insecure_registries;
    /* Optional: runs after every committed store change (once per action:
     * coalesce), on every manager, leader or not. */
    void (*changed_cb)(void *data);
    void *changed_data;
};

typedef void (*manager_ready_cb)(struct manager *m, int status, const char *errmsg, void *data);

/* `req` is only read during the call. `listen_addr` and `advertise_addr`
 * are already validated IP:PORT strings. */
int manager_init_cluster(uv_loop_t *loop, const struct manager_config *cfg,
                         const Swarm__InitRequest *req, const char *listen_addr,
                         const char *advertise_addr, manager_ready_cb cb, void *data,
                         struct manager **out, char *errmsg);

int manager_open(uv_loop_t *loop, const struct manager_config *cfg,
                 const Swarm__LocalState *state, bool force_new_cluster,
                 manager_ready_cb cb, void *data, struct manager **out, char *errmsg);

/* The visualizer's document (vizstate.h) from this manager's own store
 * and raft's leader: malloc'd into *json. 0 or an error. */
int manager_viz_render(struct manager *m, char **json, size_t *len);

/* Fill the manager's part of `swarmctl info`. */
void manager_fill_info(struct manager *m, Swarm__InfoResponse *info);

/* This manager's local state as written to disk, and a copy the caller
 * frees (swarm__local_state__free_unpacked). */
/* Refresh the manager's scrape-time metrics (mgrmetrics.h); NULL (no
 * manager on this node) empties them. */
void manager_collect_metrics(struct manager *m);

const Swarm__LocalState *manager_local_state(struct manager *m);
Swarm__LocalState *manager_local_state_copy(struct manager *m);

/* True once this manager's store holds its own Node (a joining manager has
 * caught up with the leader). */
bool manager_caught_up(struct manager *m);

/* The current worker join token (malloc'd), or NULL. */
char *manager_worker_token(struct manager *m);

/* Use a new trust root and/or certificate (chain may be NULL; NULL root or
 * cert: keep the current one) for the connections made from now on, on
 * both the server and the client side (Raft and forwarding included). */
int manager_reload_identity(struct manager *m, X509 *root, X509 *cert, STACK_OF(X509) *chain,
                            EVP_PKEY *key, char *errmsg);

void manager_close(struct manager *m, void (*done)(void *data), void *data);

/* Register the Control, CA, dispatcher and log methods on the API server,
 * once per process. Their handlers answer FAILED_PRECONDITION while no
 * manager serves through `slot` (mslot.h). */
void manager_register_api(struct api_server *api, struct manager_slot *slot);

#endif
