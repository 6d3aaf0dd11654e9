/* swarmd's own metrics: the process-wide registry (metrics.h) and its
 * families, named after Docker's (swarmkit's `swarm_*`, go-grpc-prometheus'
 * `grpc_server_*`, the client libraries' `process_*`) where one exists. The
 * README lists them.
 *
 * Instrumented code calls the smetrics_* functions below, one line at the
 * place an event happens. Until smetrics_init() runs (unit tests, swarmctl)
 * they do nothing. Everything runs on the daemon's one loop thread: no locks.
 * Values computed at scrape time (the swarm's nodes, tasks, services, raft's
 * indexes, the process) are set by collectors through smetrics_families(). */
#ifndef SWARM_COMMON_SMETRICS_H
#define SWARM_COMMON_SMETRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"

struct smetrics_families {
    /* Raft (set at scrape time, but proposals). */
    struct metrics_family *raft_term, *raft_commit_index, *raft_applied_index, *manager_leader;
    struct metrics_family *raft_proposals, *raft_latency;
    /* The swarm, from the store at scrape time (managers only). */
    struct metrics_family *nodes, *nodes_availability, *tasks, *services;
    /* The API. */
    struct metrics_family *rpc_handled, *rpc_seconds;
    /* The dispatcher. */
    struct metrics_family *sessions, *heartbeats;
    /* Orchestration passes. */
    struct metrics_family *orch_pass, *sched_pass;
    /* The process. */
    struct metrics_family *rss, *vsize, *open_fds, *max_fds, *cpu, *start_time, *loop_lag;
};

/* Make the registry and its families. Returns 0 or SWARM_ENOMEM. */
int smetrics_init(void);
/* The registry and its families, or NULL before smetrics_init(). */
struct metrics *smetrics_registry(void);
const struct smetrics_families *smetrics_families(void);
void smetrics_shutdown(void);

/* A monotonic clock in ns for the durations below. */
uint64_t smetrics_now_ns(void);

/* A server call answered: its path ("/pkg.Service/Method", NULL when no
 * route matched), whether it streamed messages (grpc_type server_stream,
 * else unary), its gRPC status code, and when it started (smetrics_now_ns). */
void smetrics_rpc_done(const char *path, bool streamed, int grpc_status, uint64_t started_ns);
/* A raft proposal's callback ran (status 0: committed and applied). */
void smetrics_proposal_done(int status, uint64_t started_ns);
void smetrics_session_opened(void);
void smetrics_session_closed(void);
void smetrics_heartbeat(void);
enum smetrics_pass { SMETRICS_PASS_ORCHESTRATOR, SMETRICS_PASS_SCHEDULER };
void smetrics_pass_done(enum smetrics_pass which, uint64_t started_ns);

/* The process' own figures (/proc/self), set at scrape time. */
void smetrics_collect_process(void);

/* The name gRPC gives a status code ("OK", "NotFound", ...). */
const char *smetrics_grpc_code_name(int code);

#endif
