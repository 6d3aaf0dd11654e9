/* The manager's struct and what the modules not yet given their own header
 * (dispatcher, log broker, CA rotation, access) still call on it. Going away:
 * each converted module has its own header and never includes this one.
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
#include "mslot.h"

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
    /* The API-side modules (their headers say what each owns). */
    struct forward *forward;
    struct peers *peers;
    struct rolemgr *rolemgr;
    struct controlapi *control;
    struct serviceapi *service;
    struct caserver *ca;
    bool published;               /* ... and this manager published them */
    struct carotate *carotate; /* root CA rotation (carotate.h) */
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

/* Wall clock in unix ms (stamped into commands by the leader only). */
int64_t manager_now_ms(void);

#endif
