/* The service helpers the commands share: lookups, the task table of
 * `service ps` / `node ps`, and the wait for convergence.
 *
 * cli_service_wait's loop: GetService -> ListTasks service=ID ->
 * cli_progress_eval -> draw -> converged: return 0 | failed: print the
 * reason, return 1 | deadline passed: print the counts, return 1 | else
 * sleep CLI_SERVICE_POLL_MS and go again. A call that fails ends the wait
 * with its error. */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "err.h"
#include "format.h"
#include "progress.h"
#include "view_format.h"
#include "view_service.h"
#include "vec.h"

#define CLI_SERVICE_POLL_MS 200
#define CLI_PROGRESS_MAX_LINES (CLI_PROGRESS_MAX_BARS + 2)

int64_t cli_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

Swarm__Service *cli_service_get(struct cli_ctx *ctx, const char *ref,
                                struct cli_reply *r)
{
    Swarm__GetServiceRequest req = SWARM__GET_SERVICE_REQUEST__INIT;
    req.service_id = (char *)ref;
    if (cli_conn_call(ctx->conn, &swarm__control__descriptor, "GetService", &req.base, r) != 0) {
        return NULL;
    }
    Swarm__GetServiceResponse *resp = (Swarm__GetServiceResponse *)r->resp;
    if (resp->service == NULL) {
        r->status = API_NOT_FOUND;
        snprintf(r->message, sizeof r->message, "service %s not found", ref);
        cli_cmd_free(resp);
        r->resp = NULL;
        return NULL;
    }
    return resp->service;
}

int cli_service_report(struct cli_ctx *ctx, const char *ref, const struct cli_reply *r)
{
    if (r->status == API_NOT_FOUND) {
        fprintf(ctx->err, "Error: No such service: %s\n", ref);
        return 1;
    }
    return cli_conn_report(ctx->conn, r, ctx->err);
}

static Swarm__ListTasksResponse *cli_list_tasks(struct cli_ctx *ctx, char **filters,
                                                size_t n)
{
    Swarm__ListTasksRequest req = SWARM__LIST_TASKS_REQUEST__INIT;
    req.filters = filters;
    req.n_filters = n;
    return (Swarm__ListTasksResponse *)cli_cmd_control(ctx, "ListTasks", &req.base);
}

/* --------------------------------------------------------------- task ps */

/* Append the tasks of `resp` not yet in `all` (two scopes may overlap). */
static void cli_task_merge(Swarm__Task ***all, size_t *n, size_t *cap,
                           const Swarm__ListTasksResponse *resp)
{
    if (vec_grow(*all, *cap, *n + resp->n_tasks + 1) != 0) {
        cli_oom();
    }
    Swarm__Task **grown = *all;
    for (size_t i = 0; i < resp->n_tasks; i++) {
        bool dup = false;
        for (size_t j = 0; j < *n && !dup; j++) {
            dup = strcmp(grown[j]->id, resp->tasks[i]->id) == 0;
        }
        if (!dup) {
            grown[(*n)++] = resp->tasks[i];
        }
    }
}

int cli_task_ps(struct cli_ctx *ctx, char *const *scopes, size_t n_scopes,
                char *const *filters, size_t n_filters,
                const struct cli_task_view *view)
{
    Swarm__ListTasksResponse **answers = calloc(n_scopes + 1, sizeof *answers);
    char **req = calloc(n_filters + 2, sizeof *req);
    Swarm__Task **all = NULL;
    size_t n = 0, cap = 0;
    int rc = answers != NULL && req != NULL ? 0 : 1;
    bool warned = false;
    for (size_t s = 0; s < n_scopes && rc == 0; s++) {
        req[0] = scopes[s];
        if (n_filters > 0) {
            memcpy(req + 1, filters, n_filters * sizeof *req);
        }
        answers[s] = cli_list_tasks(ctx, req, n_filters + 1);
        if (answers[s] == NULL) {
            rc = 1;
        } else {
            cli_cmd_warn_stale(ctx, answers[s]->stale, &warned);
            cli_task_merge(&all, &n, &cap, answers[s]);
        }
    }
    if (rc == 0) {
        /* Hostnames only: without them the table still shows node IDs. */
        Swarm__ListNodesRequest nreq = SWARM__LIST_NODES_REQUEST__INIT;
        struct cli_reply r;
        cli_conn_call(ctx->conn, &swarm__control__descriptor, "ListNodes", &nreq.base, &r);
        Swarm__ListNodesResponse *nodes = (Swarm__ListNodesResponse *)r.resp;
        struct cli_task_view v = *view;
        v.nodes = nodes != NULL ? nodes->nodes : NULL;
        v.n_nodes = nodes != NULL ? nodes->n_nodes : 0;
        v.now_ms = cli_now_ms();
        if (cli_format_is_default(v.format)) {
            cli_view_task_table(ctx->out, all, n, &v);
        } else {
            char ferr[SWARM_ERRMSG_SIZE];
            rc = cli_cmd_format_result(ctx, cli_view_task_format(ctx->out, all, n, &v, ferr),
                                       ferr);
        }
        cli_cmd_free(nodes);
    }
    for (size_t s = 0; answers != NULL && s < n_scopes; s++) {
        cli_cmd_free(answers[s]);
    }
    free(all);
    free(answers);
    free(req);
    return rc;
}

/* ------------------------------------------------------------------ wait */

struct cli_wait_screen {
    bool tty;
    char (*shown)[CLI_PROGRESS_LINE]; /* what is on screen (tty) or last printed */
    size_t n_shown;
};

/* On a terminal, redraw the block in place as Docker does; elsewhere print
 * only the lines that changed, so logs stay readable. */
static void cli_wait_draw(struct cli_ctx *ctx, struct cli_wait_screen *scr,
                          char (*lines)[CLI_PROGRESS_LINE], size_t n)
{
    if (scr->tty) {
        if (scr->n_shown > 0) {
            fprintf(ctx->out, "\033[%zuA", scr->n_shown);
        }
        for (size_t i = 0; i < n || i < scr->n_shown; i++) {
            fprintf(ctx->out, "\033[2K%s\n", i < n ? lines[i] : "");
        }
        scr->n_shown = n > scr->n_shown ? n : scr->n_shown;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i >= scr->n_shown || strcmp(scr->shown[i], lines[i]) != 0) {
                fprintf(ctx->out, "%s\n", lines[i]);
            }
        }
        scr->n_shown = n;
    }
    memcpy(scr->shown, lines, n * sizeof *lines);
    fflush(ctx->out);
}

/* One round: fetch, evaluate, draw. Returns the result, or -1 when a call
 * failed (error printed). */
static int cli_wait_round(struct cli_ctx *ctx, const char *id, int64_t since_ms,
                          bool rollback, bool quiet, struct cli_wait_screen *scr,
                          struct cli_progress *p)
{
    struct cli_reply r;
    char filter[256];
    char *filters[] = {filter};
    Swarm__Service *svc = cli_service_get(ctx, id, &r);
    if (svc == NULL) {
        cli_service_report(ctx, id, &r);
        return -1;
    }
    snprintf(filter, sizeof filter, "service=%s", svc->id);
    Swarm__ListTasksResponse *tasks = cli_list_tasks(ctx, filters, 1);
    if (tasks == NULL) {
        cli_cmd_free(r.resp);
        return -1;
    }
    cli_progress_eval(svc, tasks->tasks, tasks->n_tasks, since_ms, rollback, p);
    if (!quiet) {
        char(*lines)[CLI_PROGRESS_LINE] = calloc(CLI_PROGRESS_MAX_LINES, sizeof *lines);
        if (lines != NULL) {
            size_t n = cli_progress_render(p, scr->tty, lines, CLI_PROGRESS_MAX_LINES);
            cli_wait_draw(ctx, scr, lines, n);
        }
        free(lines);
    }
    cli_cmd_free(tasks);
    cli_cmd_free(r.resp);
    return (int)p->result;
}

int cli_service_wait(struct cli_ctx *ctx, const char *service_id,
                     int64_t since_ms, bool rollback, bool quiet)
{
    struct cli_wait_screen scr = {isatty(fileno(ctx->out)) == 1, NULL, 0};
    int64_t deadline = cli_now_ms() + CLI_SERVICE_WAIT_MS;
    struct timespec pause = {0, CLI_SERVICE_POLL_MS * 1000000L};
    scr.shown = calloc(CLI_PROGRESS_MAX_LINES, sizeof *scr.shown);
    if (scr.shown == NULL) {
        return cli_cmd_errorf(ctx, "out of memory");
    }
    int rc = 1;
    for (;;) {
        struct cli_progress p;
        int res = cli_wait_round(ctx, service_id, since_ms, rollback, quiet, &scr, &p);
        if (res == CLI_PROGRESS_CONVERGED) {
            rc = 0;
        } else if (res == CLI_PROGRESS_FAILED) {
            cli_cmd_errorf(ctx, "%s", p.reason);
        } else if (res == CLI_PROGRESS_WAITING && cli_now_ms() >= deadline) {
            cli_cmd_errorf(ctx, "service %s did not converge within %ds: %llu out of %llu "
                                "tasks running",
                           *p.service ? p.service : service_id, CLI_SERVICE_WAIT_MS / 1000,
                           (unsigned long long)p.running, (unsigned long long)p.desired);
        }
        if (res >= 0) {
            cli_progress_free(&p);
        }
        if (res != CLI_PROGRESS_WAITING || cli_now_ms() >= deadline) {
            break;
        }
        nanosleep(&pause, NULL);
    }
    free(scr.shown);
    return rc;
}
