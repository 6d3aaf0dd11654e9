/* Internals of the agent, shared by agent.c (lifecycle, task set, executor
 * statuses), session.c (the dispatcher session, heartbeats, assignments
 * stream, status reporter), taskdb.c (the local task database) and
 * tasktable.c (tasks by ID). Not for use outside daemon/agent/. */
#ifndef SWARM_AGENT_AGENT_INT_H
#define SWARM_AGENT_AGENT_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "agent.h"
#include "api.h"
#include "executor.h"

#define AGENT_FLUSH_MS 100           /* status batches and DB commits */
#define AGENT_FLUSH_IDLE_MS 2        /* ... when no batch is in flight */
#define AGENT_BATCH_MAX 256          /* updates per UpdateTaskStatus */
#define AGENT_BACKOFF_MIN_MS 100
#define AGENT_BACKOFF_MAX_MS 2000
#define AGENT_CONNECT_TIMEOUT_MS 5000 /* TLS connect + handshake, and the first SessionMessage */
#define AGENT_HEARTBEAT_DEFAULT_MS 1000
#define AGENT_STATUS_TIMEOUT_MS 10000
#define AGENT_REDIRECT_MAX 3          /* redirects in a row before backing off */
#define AGENT_ADDR_MAX 128
/* A status message or error longer than this is cut here before it is
 * reported: the dispatcher refuses longer ones (dispatcher.proto). */
#define AGENT_STATUS_STR_MAX 1024
/* Refusals naming a removal, in a row, for this long: the node is removed. */
#define AGENT_REMOVED_CONFIRM_MS 3000

/* ------------------------------------------------------------- tasks */

/* What the executor last said about a task (or the agent, for a task it
 * never handed to the executor). */
struct agent_status {
    Swarm__TaskState state; /* NEW: nothing observed yet */
    int64_t timestamp;      /* unix ms, wall clock */
    char *message;          /* owned */
    char *err;              /* owned */
    int exit_code;
    int pid;
};

struct agent_task {
    char *id;              /* owned */
    Swarm__Task *task;     /* the latest assignment (owned copy) */
    struct agent_status st;
    bool started;          /* handed to the executor */
    bool removing;         /* no longer assigned: executor_remove once ended */
    uint64_t seen_gen;     /* last COMPLETE assignment that named it */
    uint64_t status_seq;   /* bumped on every status change */
    struct agent_task *hnext;               /* hash chain */
    struct agent_task *rep_prev, *rep_next; /* status not yet acknowledged */
    bool in_rep;
};

struct agent_task_table {
    struct agent_task **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
};

int agent_table_init(struct agent_task_table *t);
struct agent_task *agent_table_get(const struct agent_task_table *t, const char *id);
int agent_table_put(struct agent_task_table *t, struct agent_task *at);
void agent_table_del(struct agent_task_table *t, struct agent_task *at);
/* fn may delete (and free) the task it is given. */
void agent_table_foreach(struct agent_task_table *t,
                         void (*fn)(struct agent_task *at, void *arg), void *arg);
void agent_table_free(struct agent_task_table *t); /* the tasks stay the caller's */

bool agent_state_terminal(Swarm__TaskState st);

/* ------------------------------------------------------------- taskdb */

/* DIR/worker/tasks.db: one row per assigned task (the Task as assigned, and
 * the last status observed here). Writes open a transaction lazily;
 * taskdb_commit() ends it, so a batch of changes costs one commit. */
struct taskdb {
    sqlite3 *db;
    sqlite3_stmt *put_task, *put_status, *del, *begin, *commit;
    bool in_txn;
};

int taskdb_open(struct taskdb *db, const char *path, char *errmsg);
void taskdb_close(struct taskdb *db); /* commits what is pending */
int taskdb_put_task(struct taskdb *db, const Swarm__Task *task);
int taskdb_put_status(struct taskdb *db, const char *task_id, const Swarm__TaskStatus *st);
int taskdb_delete(struct taskdb *db, const char *task_id);
int taskdb_commit(struct taskdb *db);
/* Calls fn for every row; fn takes ownership of task and st (st may be
 * NULL: no status recorded yet). Rows that do not decode are skipped. */
int taskdb_load(struct taskdb *db,
                void (*fn)(Swarm__Task *task, Swarm__TaskStatus *st, void *arg),
                void *arg, char *errmsg);

/* ------------------------------------------------------------- session */

enum agent_conn_state {
    AGENT_CONN_CONNECTING, /* TCP + TLS */
    AGENT_CONN_OPENING,    /* Session stream open, first message pending */
    AGENT_CONN_OPEN,       /* session established */
};

/* One connection to one manager; freed in its client's close callback. */
struct agent_conn {
    struct agent *a;
    struct api_client *client;
    enum agent_conn_state state;
    bool closing;
    bool hb_inflight;
    bool status_inflight;
    char addr[AGENT_ADDR_MAX];
    struct agent_conn *next; /* agent's list of closing connections */
};

struct agent {
    uv_loop_t *loop;
    bool closing;           /* agent_stop was called */
    bool stop_tasks;
    char *state_dir, *worker_dir, *task_dir, *node_id, *hostname;
    const char *const *insecure_registries; /* the config's, borrowed */
    struct imgstore *images;                /* the config's, borrowed */
    size_t n_insecure_registries;
    SSL_CTX *client_ctx;
    void (*managers_cb)(Swarm__ManagerPeer *const *peers, size_t n, void *data);
    void (*node_cb)(const Swarm__Node *node, void *data);
    void (*removed_cb)(void *data);
    void (*root_ca_cb)(const uint8_t *pem, size_t len, void *data);
    void (*renew_cb)(const uint8_t *issuer_key, size_t len, void *data);
    void (*conn_error_cb)(const char *addr, unsigned failures, const char *why, void *data);
    unsigned conn_failures; /* connection attempts failed since the last session */
    void *data;
    void (*done)(void *data);
    void *done_data;

    /* Managers to try, in turn; the last leader first after a session
     * loss; a redirect target before anything else. */
    char **mgrs;
    size_t n_mgrs, rr;
    char **cfg_mgrs; /* as given to agent_start */
    size_t n_cfg_mgrs;
    char last_leader[AGENT_ADDR_MAX];
    char redirect[AGENT_ADDR_MAX];
    char last_tried[AGENT_ADDR_MAX];
    bool leader_first;
    unsigned redirects;
    uint64_t backoff_ms;
    uint64_t rng;

    struct agent_conn *conn;     /* current connection, NULL while waiting */
    unsigned n_conns_closing;
    char session_id[128];
    uint64_t hb_period_ms;
    Swarm__NodeDescription *desc;

    uv_timer_t retry_timer;  /* backoff before the next connection */
    uv_timer_t open_timer;   /* first SessionMessage deadline */
    uv_timer_t hb_timer;
    uv_timer_t flush_timer;  /* status batches, DB commits */
    uv_timer_t stop_timer;   /* agent_stop(stop_tasks): grace deadline */
    uv_timer_t report_timer; /* reopen the session to report a new description */
    unsigned open_handles;

    struct executor *exec;
    bool exec_open;
    struct taskdb db;
    bool db_open;
    struct agent_task_table tasks;
    uint64_t complete_gen;
    /* A COMPLETE set arriving in several messages: held here (owned
     * copies) until its last message, then applied at once. */
    Swarm__Task **staged;
    size_t n_staged, cap_staged;
    bool removed;        /* the swarm removed this node: no more sessions */
    uint64_t removed_since; /* first of the removal refusals in a row (uv_now), 0: none */
    struct agent_task *rep_head, *rep_tail; /* statuses to report */
    size_t n_rep;
    unsigned n_stopping; /* agent_stop(stop_tasks): tasks not ended yet */
    struct agent_logs_sub *log_subs; /* agent_logs.c */

    /* Networking (agent_netmaps.c): the node's netplane (NULL: none), where
     * maps go (the netplane, or a test's sink), the networks applied, and a
     * COMPLETE set of maps being received (owned copies). */
    struct netplane *net;
    char *underlay_ip; /* set when the host can do networking */
    struct agent_netsink netsink;
    bool has_netsink;
    char **net_have;
    size_t n_net_have, cap_net_have;
    Swarm__NetworkMap **net_staged;
    size_t n_net_staged, cap_net_staged;
};

/* session.c */
void agent_session_connect(struct agent *a);   /* start (or schedule) a connection */
void agent_session_close(struct agent *a);     /* end the session for good (stop) */
void agent_reporter_kick(struct agent *a);      /* a status became pending */
void agent_session_restart(struct agent *a, const char *why); /* reconnect now */
uint64_t agent_wall_ms(void);

/* A stream of the session ended with status/message: a removal refusal is
 * handled as such, anything else ends the connection (reconnect). */
void agent_session_lost(struct agent *a, enum api_status status, const char *message,
                        const char *what);

/* agent_netmaps.c: the NetworkMaps stream (see there). */
int agent_netmaps_open(struct agent_conn *conn); /* with the session; 0 or SWARM_E* */
int agent_apply_netmaps(struct agent *a, const Swarm__NetworkMapsMessage *m);
void agent_netmaps_staged_clear(struct agent *a);
void agent_netmaps_free(struct agent *a);

/* agent_logs.c: the leader's log subscriptions (see there). */
struct agent_logs_sub;
void agent_logs_subscribe(struct agent *a, const Swarm__LogSubscription *ls);
void agent_logs_stop(struct agent *a); /* drop them all (agent_stop) */

/* agent.c */
int agent_apply_assignments(struct agent *a, const Swarm__AssignmentsMessage *m);
void agent_rep_add(struct agent *a, struct agent_task *at);
void agent_rep_del(struct agent *a, struct agent_task *at);
void agent_maybe_finish(struct agent *a);
void agent_staged_clear(struct agent *a);
/* The dispatcher said this node is removed from the swarm (session.c). */
void agent_removed(struct agent *a, const char *why);

#endif
