/* swarmd's metrics catalog (smetrics.h). */
#include "smetrics.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

static struct metrics *reg;
static struct smetrics_families fam;

uint64_t smetrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double seconds_since(uint64_t started_ns)
{
    uint64_t now = smetrics_now_ns();
    return now > started_ns ? (double)(now - started_ns) / 1e9 : 0;
}

#define ADD(field, type, name, help, n, labels, hist)                                         \
    do {                                                                                   \
        fam.field = metrics_family_add(reg, type, name, help, n, labels,                   \
                                       hist ? metrics_default_buckets : NULL,              \
                                       hist ? metrics_n_default_buckets : 0);              \
        if (fam.field == NULL) {                                                           \
            goto err;                                                                      \
        }                                                                                  \
    } while (0)

int smetrics_init(void)
{
    static const char *const state[] = {"state"}, *const avail[] = {"availability"},
                             *const result[] = {"result"},
                             *const rpc[] = {"grpc_type", "grpc_service", "grpc_method",
                                             "grpc_code"};
    if (reg != NULL) {
        return 0;
    }
    if (metrics_new(&reg) != 0) {
        return SWARM_ENOMEM;
    }
    ADD(raft_term, METRICS_GAUGE, "swarm_raft_term", "Current Raft term of this manager.", 0,
        NULL, 0);
    ADD(raft_commit_index, METRICS_GAUGE, "swarm_raft_commit_index",
        "Index of the last Raft entry known committed.", 0, NULL, 0);
    ADD(raft_applied_index, METRICS_GAUGE, "swarm_raft_applied_index",
        "Index of the last Raft entry applied to the store.", 0, NULL, 0);
    ADD(manager_leader, METRICS_GAUGE, "swarm_manager_leader",
        "Indicates if this manager node is a leader", 0, NULL, 0);
    ADD(raft_proposals, METRICS_COUNTER, "swarm_raft_proposals_total",
        "Raft proposals made by this manager, by result (committed or failed).", 1, result, 0);
    ADD(raft_latency, METRICS_HISTOGRAM, "swarm_raft_transaction_latency_seconds",
        "Raft transaction latency: from proposal to applied on this manager.", 0, NULL, 1);
    ADD(nodes, METRICS_GAUGE, "swarm_manager_nodes", "The number of nodes", 1, state, 0);
    ADD(nodes_availability, METRICS_GAUGE, "swarm_manager_nodes_by_availability",
        "The number of nodes by availability", 1, avail, 0);
    ADD(tasks, METRICS_GAUGE, "swarm_manager_tasks_total", "The number of tasks in the cluster",
        1, state, 0);
    ADD(services, METRICS_GAUGE, "swarm_manager_services_total",
        "The number of services in the cluster", 0, NULL, 0);
    ADD(rpc_handled, METRICS_COUNTER, "grpc_server_handled_total",
        "Total number of RPCs completed on the server, regardless of success or failure.", 4,
        rpc, 0);
    ADD(rpc_seconds, METRICS_HISTOGRAM, "grpc_server_handling_seconds",
        "Histogram of response latency (seconds) of gRPC that had been application-level "
        "handled by the server.",
        3, rpc, 1);
    ADD(sessions, METRICS_GAUGE, "swarm_dispatcher_sessions",
        "Agent sessions open on this manager's dispatcher.", 0, NULL, 0);
    ADD(heartbeats, METRICS_COUNTER, "swarm_dispatcher_heartbeats_total",
        "Heartbeats received by this manager's dispatcher.", 0, NULL, 0);
    ADD(orch_pass, METRICS_HISTOGRAM, "swarm_orchestrator_pass_duration_seconds",
        "Duration of one orchestration pass (reconcile, schedule, propose).", 0, NULL, 1);
    ADD(sched_pass, METRICS_HISTOGRAM, "swarm_scheduler_pass_duration_seconds",
        "Duration of one scheduling pass over pending tasks.", 0, NULL, 1);
    ADD(rss, METRICS_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.", 0,
        NULL, 0);
    ADD(vsize, METRICS_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.", 0,
        NULL, 0);
    ADD(open_fds, METRICS_GAUGE, "process_open_fds", "Number of open file descriptors.", 0,
        NULL, 0);
    ADD(max_fds, METRICS_GAUGE, "process_max_fds", "Maximum number of open file descriptors.",
        0, NULL, 0);
    ADD(cpu, METRICS_COUNTER, "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.", 0, NULL, 0);
    ADD(start_time, METRICS_GAUGE, "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.", 0, NULL, 0);
    ADD(loop_lag, METRICS_GAUGE, "swarm_event_loop_lag_seconds",
        "How late the event loop ran the last lag-probe timer (every 500 ms).", 0, NULL, 0);
    metrics_gauge_set(fam.start_time, NULL, (double)time(NULL));
    metrics_gauge_set(fam.sessions, NULL, 0);
    metrics_counter_add(fam.heartbeats, NULL, 0);
    return 0;
err:
    smetrics_shutdown();
    return SWARM_ENOMEM;
}

void smetrics_shutdown(void)
{
    metrics_free(reg);
    reg = NULL;
    memset(&fam, 0, sizeof fam);
}

struct metrics *smetrics_registry(void)
{
    return reg;
}

const struct smetrics_families *smetrics_families(void)
{
    return reg != NULL ? &fam : NULL;
}

const char *smetrics_grpc_code_name(int code)
{
    static const char *const names[] = {
        "OK",         "Canceled",          "Unknown",         "InvalidArgument",
        "DeadlineExceeded", "NotFound",    "AlreadyExists",   "PermissionDenied",
        "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
        "Unimplemented", "Internal",       "Unavailable",     "DataLoss",
        "Unauthenticated"};
    return code >= 0 && code < (int)(sizeof names / sizeof names[0]) ? names[code] : "Unknown";
}

void smetrics_rpc_done(const char *path, bool streamed, int grpc_status, uint64_t started_ns)
{
    char service[128] = "unknown";
    const char *method = "unknown";
    if (reg == NULL) {
        return;
    }
    /* Only routed paths are labels: a client's garbage path must not make
     * a new series. */
    const char *slash = path != NULL && path[0] == '/' ? strchr(path + 1, '/') : NULL;
    if (slash != NULL && (size_t)(slash - path - 1) < sizeof service) {
        snprintf(service, sizeof service, "%.*s", (int)(slash - path - 1), path + 1);
        method = slash + 1;
    }
    const char *labels[] = {streamed ? "server_stream" : "unary", service, method, smetrics_grpc_code_name(grpc_status)};
    metrics_counter_add(fam.rpc_handled, labels, 1);
    metrics_histogram_observe(fam.rpc_seconds, labels, seconds_since(started_ns));
}

void smetrics_proposal_done(int status, uint64_t started_ns)
{
    if (reg == NULL) {
        return;
    }
    metrics_counter_add(fam.raft_proposals,
                        (const char *[]){status == 0 ? "committed" : "failed"}, 1);
    if (status == 0) {
        metrics_histogram_observe(fam.raft_latency, NULL, seconds_since(started_ns));
    }
}

void smetrics_session_opened(void)
{
    metrics_gauge_add(fam.sessions, NULL, 1);
}

void smetrics_session_closed(void)
{
    metrics_gauge_add(fam.sessions, NULL, -1);
}

void smetrics_heartbeat(void)
{
    metrics_counter_add(fam.heartbeats, NULL, 1);
}

void smetrics_pass_done(enum smetrics_pass which, uint64_t started_ns)
{
    if (reg != NULL) {
        metrics_histogram_observe(which == SMETRICS_PASS_SCHEDULER ? fam.sched_pass
                                                                   : fam.orch_pass,
                                  NULL, seconds_since(started_ns));
    }
}

static size_t count_open_fds(void)
{
    size_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    if (d == NULL) {
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        n += de->d_name[0] != '.';
    }
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the directory's own descriptor */
}

void smetrics_collect_process(void)
{
    unsigned long long vsize_pages = 0, rss_pages = 0;
    long page = sysconf(_SC_PAGESIZE);
    struct rusage ru;
    struct rlimit rl;
    FILE *f;
    if (reg == NULL) {
        return;
    }
    if ((f = fopen("/proc/self/statm", "re")) != NULL) {
        if (fscanf(f, "%llu %llu", &vsize_pages, &rss_pages) == 2) {
            metrics_gauge_set(fam.rss, NULL, (double)rss_pages * (double)page);
            metrics_gauge_set(fam.vsize, NULL, (double)vsize_pages * (double)page);
        }
        fclose(f);
    }
    metrics_gauge_set(fam.open_fds, NULL, (double)count_open_fds());
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        metrics_gauge_set(fam.max_fds, NULL, (double)rl.rlim_cur);
    }
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        metrics_family_clear(fam.cpu); /* a counter set from the kernel's own count */
        metrics_counter_add(fam.cpu, NULL, cpu);
    }
}
