/* What swarmctl prints for services and tasks: `service ls`, `service ps` /
 * `node ps`, `service inspect --pretty`, in docker/cli's layouts
 * (cli/command/service/formatter.go, cli/command/task/print.go). Pure, so
 * tests feed hand-made messages and a fixed clock. */
#ifndef SWARM_CLI_VIEW_SERVICE_H
#define SWARM_CLI_VIEW_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "objects.pb-c.h"

/* `service ls`: sorted by name (natural order). running[i]/desired[i] give
 * the REPLICAS column of services[i] (NULL: 0/0). `quiet`: IDs only. */
void cli_view_service_table(FILE *out, Swarm__Service *const *services, size_t n,
                            const uint64_t *running, const uint64_t *desired,
                            bool quiet);

/* The PORTS cell: "*:8000->80/tcp, *:53->53/udp" (ingress ports only, as
 * published: Service.endpoint's when it has them). */
void cli_view_service_ports(const Swarm__Service *svc, char *buf, size_t size);

/* `service ls --format`: the rows of cli_view_service_table through a Go
 * template (view_format.h). Returns 0, or SWARM_EINVAL with the error in
 * errmsg and nothing printed. */
int cli_view_service_format(FILE *out, const char *format, Swarm__Service *const *services,
                            size_t n, const uint64_t *running, const uint64_t *desired,
                            char *errmsg);

struct cli_task_view {
    bool no_trunc; /* full IDs and errors */
    bool quiet;    /* task IDs only */
    int64_t now_ms;                 /* for "Running 5 seconds ago" */
    Swarm__Node *const *nodes;      /* to show hostnames; may be NULL */
    size_t n_nodes;
    const char *format; /* --format; NULL or "table": the default table */
};

/* `service ps` / `node ps`: tasks grouped by service and slot (global: node),
 * slots ascending; in a slot, the task meant to run (or the newest) first,
 * older ones below it as " \_ web.1". Sorts `tasks` in place. */
void cli_view_task_table(FILE *out, Swarm__Task **tasks, size_t n,
                         const struct cli_task_view *v);

/* `service ps` / `node ps --format v->format` (view_format.h). Sorts
 * `tasks`. Returns 0, or SWARM_EINVAL with the error in errmsg, nothing
 * printed. */
int cli_view_task_format(FILE *out, Swarm__Task **tasks, size_t n, const struct cli_task_view *v,
                         char *errmsg);

/* The NODE cell: the node's hostname, else its ID. */
const char *cli_view_task_node(const Swarm__Task *t, const struct cli_task_view *v);

/* Sort as the table shows them. */
void cli_view_task_sort(Swarm__Task **tasks, size_t n);

/* "web.1" or, for a global task, "web.<node id>". */
void cli_view_task_name(const Swarm__Task *t, char *buf, size_t size);

/* State words as Docker shows them: "running", and capitalized "Running". */
const char *cli_view_task_state_word(Swarm__TaskState s);
void cli_view_task_state(Swarm__TaskState s, char *buf, size_t size);

/* CURRENT STATE: "Running 11 seconds ago". */
void cli_view_task_current(const Swarm__Task *t, int64_t now_ms, char *buf,
                           size_t size);

/* ERROR: quoted; longer than 30 characters is cut to 29 and "…" unless
 * no_trunc; "" when there is no error. */
void cli_view_task_error(const char *err, bool no_trunc, char *buf, size_t size);

/* `service inspect --pretty` for one service. */
void cli_view_service_pretty(FILE *out, const Swarm__Service *s);

#endif
