/* Internals of the node, shared by node.c (lifecycle, the Swarm service)
 * and node_agent.c (the agent, role changes). Not for use elsewhere. */
#ifndef SWARM_DAEMON_NODE_INT_H
#define SWARM_DAEMON_NODE_INT_H

#include <limits.h>
#include <stdbool.h>

#include <openssl/x509.h>

#include "addr.h"
#include "agent/agent.h"
#include "api.h"
#include "err.h"
#include "join.h"
#include "localstate.pb-c.h"
#include "manager/manager.h"
#include "node.h"
#include "statedir.h"

#define NODE_API_VERSION "1"
#define NODE_STATE_FILE STATEDIR_NODE_STATE
#define NODE_MSG_ALREADY_IN_SWARM                                                 \
    "This node is already part of a swarm. Use \"swarmctl swarm leave\" to leave " \
    "this swarm and join another one."
#define NODE_MSG_NOT_IN_SWARM "This node is not part of a swarm"
#define NODE_MSG_PENDING                                                         \
    "This node is processing an existing join request that has not succeeded " \
    "yet. Use \"swarmctl swarm leave\" to cancel the current request."
#define NODE_MSG_LAST_MANAGER                                                    \
    "You are attempting to leave the swarm on a node that is participating as " \
    "a manager. Removing the last manager erases all current state of the "     \
    "swarm. Use `--force` to ignore this message."

enum node_state {
    NODE_INACTIVE,
    NODE_PENDING,
    NODE_ACTIVE,
    NODE_ERROR,
};

struct swarm_node {
    uv_loop_t *loop;
    char state_dir[PATH_MAX];
    char task_dir[PATH_MAX];
    char socket_path[PATH_MAX];
    char listen_addr[ADDR_STRLEN];
    char hostname[256];
    int lock_fd;
    enum node_state state;
    char error[SWARM_ERRMSG_SIZE];
    struct api_server *api;
    struct manager_slot mslot; /* handlers of Control/CA read it */
    struct api_call *pending_call;
    Swarm__LocalState *worker_state; /* set while this node is a worker */
    uv_timer_t join_timer;           /* a joining manager waits to catch up */
    uint64_t join_started;
    Swarm__NodeRole join_role;
    struct join_ctx *join_ctx;
    struct agent *agent;             /* the node's dispatcher session */
    char executor[16];               /* "process" or "sim" */
    const char *const *insecure_registries; /* node_config's (outlive the node) */
    size_t n_insecure_registries;
    void (*changed_cb)(void *data);  /* node_config's, handed to managers */
    void *changed_data;
    /* The node's image store (STATE/images, image.h), shared by the container
     * executor and `image prune`: opened by node_images() on first use (a
     * node outside a swarm leaves no trace in its state dir). */
    struct imgstore *images;
    int64_t image_prune_after_s;
    bool role_switching;             /* a promotion/demotion is under way */
    /* The node's certificate (node_certs.c). */
    uv_timer_t renew_timer;
    bool renew_running;
    unsigned renew_attempts;
    int64_t cert_not_before, cert_not_after, cert_renew_at; /* unix s; 0: unknown */
    bool stale_checking;
    uint64_t stale_checked_at;       /* uv_now of the last check */
    char cert_error[SWARM_ERRMSG_SIZE]; /* shown by info while set */
    unsigned timers_open;            /* closing: handles left */
    /* Requests in flight whose callbacks use the node: node_stop cancels
     * the joins, and the node is freed only once every one has called
     * back (each callback calls node_call_end first thing). */
    struct join *join_req;           /* swarm join */
    struct join *renew_req;          /* certificate renewal */
    struct join *stale_req;          /* the "root rotated while away" check */
    struct join *role_req;           /* a role change's renewal */
    unsigned calls_pending;          /* those, and a demoted manager closing */
    bool handles_closed;
    bool stopping;
    void (*stop_cb)(void *data);
    void *stop_data;
};

struct manager_config node_manager_cfg(struct swarm_node *n);
/* The node's image store, opened on first use (NULL and errmsg when it
 * cannot be, or the node is stopping). */
struct imgstore *node_images(struct swarm_node *n, char *errmsg);

/* A request counted in calls_pending called back: true when the node is
 * stopping, and then the caller returns at once, touching nothing of the
 * node (it may be freed). */
bool node_call_end(struct swarm_node *n);

/* DIR/node-state.pb: 0 with *out (NULL when the node is in no swarm). */
int node_local_state_load(struct swarm_node *n, Swarm__LocalState **out, char *errmsg);
Swarm__LocalState *node_local_state_copy(const Swarm__LocalState *ls);
/* No node-state.pb: 0 with *out NULL for a fresh node; a manager's state
 * rebuilt from its certificate and store (and saved); else SWARM_ESTATE with
 * a message saying what is there and what to do (node_recover.c). */
int node_local_state_recover(struct swarm_node *n, Swarm__LocalState **out, char *errmsg);
int node_local_state_save(struct swarm_node *n, const Swarm__LocalState *ls, char *errmsg);
/* DIR/certificates: root CA, node certificate (then its chain, may be
 * NULL) and key (0600). */
int node_write_certs(struct swarm_node *n, X509 *root, X509 *cert, STACK_OF(X509) *chain,
                     EVP_PKEY *key, char *errmsg);

/* What DIR/certificates holds, loaded (node_certs.c). */
struct node_identity {
    X509 *root;
    X509 *cert;
    STACK_OF(X509) *chain;
    EVP_PKEY *key;
};
int node_identity_load(struct swarm_node *n, struct node_identity *id, char *errmsg);
void node_identity_free(struct node_identity *id);
/* A client context presenting the identity (with its chain). */
int node_identity_client_ctx(const struct node_identity *id, SSL_CTX **out, char *errmsg);

/* The node's certificate after the agent started: reports its TLS info and
 * renews it at 50-80 % of its life, retrying with backoff while no manager
 * answers; the leader may ask for a renewal (root rotation) and sends the
 * swarm's root, which the node then trusts. */
void node_certs_start(struct swarm_node *n);
void node_certs_stop(struct swarm_node *n);
/* A new certificate (renewal or role change): written, and used for new
 * connections by the agent and (with reload_manager) the manager. */
int node_certs_install(struct swarm_node *n, const struct join_result *res, bool reload_manager,
                       char *errmsg);
/* Agent callbacks (see agent.h). */
void node_certs_root_ca_cb(const uint8_t *pem, size_t len, void *data);
void node_certs_renew_cb(const uint8_t *issuer_key, size_t len, void *data);
void node_certs_conn_error_cb(const char *addr, unsigned failures, const char *why, void *data);

#define NODE_MSG_ROOT_ROTATED                                                             \
    "this node's certificate is no longer trusted by the swarm: its root CA was rotated " \
    "while this node was away. Leave the swarm (swarmctl swarm leave --force) and join "  \
    "it again with a current join token"


/* Start the agent for the swarm recorded on disk (every active node runs
 * one: managers are workers too). */
int node_agent_start(struct swarm_node *n, char *errmsg);
/* Stop it (tasks too when `stop_tasks`); `done` runs after, also when no
 * agent was running. */
void node_agent_stop(struct swarm_node *n, bool stop_tasks, void (*done)(void *data), void *data);
/* The swarm removed this worker (its agent learnt it from the dispatcher):
 * stop its tasks and leave the swarm locally, as `swarm leave` (the node
 * becomes inactive). */
void node_leave_removed(struct swarm_node *n);

/* ListVolumes and RemoveVolume on the control socket (node_volumes.c). */
void node_volumes_register(struct swarm_node *n);

#endif
