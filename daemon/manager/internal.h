/* Shared between the manager's modules (manager.c, controlapi.c, caserver.c).
 * Not for use outside daemon/manager/. */
#ifndef SWARM_DAEMON_MANAGER_INTERNAL_H
#define SWARM_DAEMON_MANAGER_INTERNAL_H

#include <limits.h>
#include <openssl/x509.h>

#include "ca.pb-c.h"
#include "carotate.h"
#include "dispatcher.h"
#include "manager.h"
#include "menv.h"
#include "msgchunk.h"

enum manager_phase {
    MANAGER_STARTING,    /* raft started, waiting for a leader */
    MANAGER_BOOTSTRAP,   /* swarm init: first entry proposed */
    MANAGER_RUNNING,
    MANAGER_FAILED,
    MANAGER_CLOSING,
};

struct manager {
    uv_loop_t *loop;
    enum manager_phase phase;
    char state_dir[PATH_MAX];
    char hostname[256];
    struct api_server *api;
    struct manager_slot *slot; /* where this manager publishes its modules, or NULL */
    Swarm__LocalState *local;
    struct store *store;
    struct rnode *raft;
    /* What the modules see of this manager (menv.h); env.store is set
     * when the store opens. */
    struct menv env;
    X509 *root_cert;
    X509 *node_cert;
    STACK_OF(X509) *node_chain;   /* intermediates sent with node_cert */
    EVP_PKEY *node_key;
    SSL_CTX *server_ctx;
    SSL_CTX *client_ctx;          /* to other managers, with our certificate */
    /* Forwarding to the leader (forward.c). */
    struct api_client *leader_client;
    char leader_client_addr[64];
    bool leader_connecting;
    struct routed_call *forward_queue;
    uv_timer_t forward_timer;     /* watches the leader while forwarding */
    /* Raft membership (rolemgr.c) and peer reachability (peers.c). */
    uv_timer_t rolemgr_timer;
    bool role_change_pending;
    uv_timer_t peers_timer;
    struct carotate *carotate; /* root CA rotation (carotate.h) */
    struct peer *peers;
    struct raft_uv_transport transport;
    bool transport_ready;
    struct access *access; /* authorization, raft peers (access.h) */
    unsigned closing_handles;
    unsigned closing_modules; /* modules closed but not yet drained */
    struct dispatcher *dispatcher;
    struct orchloop *orchloop;
    struct logbroker *logbroker;
    /* swarm init only: the first command, proposed once we lead. */
    Swarm__StoreCommand *bootstrap_cmd;
    bool registered_self;   /* force-new-cluster: lost managers detached */
    bool forced;            /* opened with --force-new-cluster */
    bool is_init;           /* made by swarm init ... */
    bool committed;         /* ... and its local state is on disk */
    uv_timer_t ready_timer;
    manager_ready_cb ready_cb;
    void *ready_data;
    void (*close_cb)(void *data);
    void *close_data;
};

/* Called with the outcome of manager_write. On status 0 the command was
 * committed and `res` says whether the store accepted it. */
typedef void (*manager_write_cb)(struct manager *m, int status, const struct store_result *res,
                                 void *data);

/* Stamp `cmd` with the time and propose it. Fails at once with
 * SWARM_ENOLEADER when no leader is known or SWARM_ENOTLEADER when another
 * manager leads. `cmd` is only read during the call. */
int manager_write(struct manager *m, Swarm__StoreCommand *cmd, manager_write_cb cb, void *data);

/* Cut one page of a list reply (control.proto, paging): `items` sorted by
 * their `ids`, each taking `extra` more bytes in the reply (parallel
 * fields). Returns 0 with *pg, or -1 after answering the call (bad token). */
int manager_list_page(struct api_call *call, ProtobufCMessage *const *items, const char *const *ids,
                      size_t n, size_t extra, uint32_t page_size, const char *token,
                      struct msgchunk_page *pg);

/* Wall clock in unix ms (stamped into commands by the leader only). */
int64_t manager_now_ms(void);

/* The root CA key from the cluster object (NULL if absent). Caller frees. */
EVP_PKEY *manager_root_key(struct manager *m);

/* True when this manager answers reads without a leader (forward.c sends
 * reads to the leader when one is known): its store is its last known
 * state, not necessarily the cluster's. */
bool manager_reads_stale(struct manager *m);

/* Fill live raft facts (leader flag, reachability) into nodes read from the
 * store. When reads are stale, every node but this one gets status unknown:
 * a leaderless manager hears from nobody, and a dead node must never show
 * Ready. */
void manager_decorate_node(struct manager *m, Swarm__Node *node);

/* Register `local` so that it runs on the leader: followers forward the
 * call; without a leader a write waits a bounded time, a read (`read`)
 * answers from the local store (forward.c). `local` receives `current` as
 * its data. */
void manager_register_routed(struct api_server *api, const ProtobufCServiceDescriptor *svc,
                             const char *method, unsigned roles, bool read,
                             api_handler_cb local, struct manager **current);

void rolemgr_start(struct manager *m);
void rolemgr_stop(struct manager *m);
void peers_start(struct manager *m);
void peers_stop(struct manager *m);
Swarm__Reachability peers_reachability(struct manager *m, const char *node_id);

/* The same routing for a handler that decides per call (e.g. only some
 * calls of a method must run on the leader). */
struct route;
struct route *manager_route_new(const ProtobufCServiceDescriptor *svc, const char *method,
                               bool read, api_handler_cb local, struct manager **current);
void manager_route_call(struct route *route, struct api_call *call, const ProtobufCMessage *req);
struct manager **manager_route_current(struct route *route);

/* Fail queued forwards and drop the leader connection. */
void manager_forward_close(struct manager *m);
/* How long this manager has known no leader (0 if it knows one). */
uint64_t manager_leaderless_ms(struct manager *m);

/* The Control handlers' common ground (controlapi.c): the running manager
 * behind `data` (else FAILED_PRECONDITION, "not a swarm manager"), and a
 * SWARM_E* outcome of a write turned into the gRPC status Docker users see. */
struct manager *manager_require(struct api_call *call, void *data);
void manager_reply_error(struct api_call *call, int status, const char *what);

/* Relay a server-streaming call to the leader at `leader_addr` on a
 * connection of its own; the call is finished by the relay (also on error,
 * when this returns non-zero). `req` is copied. */
int manager_forward_stream(struct manager *m, struct api_call *call,
                           const ProtobufCServiceDescriptor *svc, const char *method,
                           const ProtobufCMessage *req, const char *leader_addr);


void serviceapi_register(struct api_server *api, struct manager **current);
void controlapi_register(struct api_server *api, struct manager **current);
void caserver_register(struct api_server *api, struct manager **current);

#endif
