/* Service and task rendering in docker/cli's layouts (see view_service.h).
 * Docker users scan `service ps` for the one failing slot and script
 * `service ls`, so columns, order and words follow Docker exactly. */
#include "view_service.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "json.h"
#include "view_format.h"

/* ------------------------------------------------------------ service ls */

static const char *cli_svc_name(const Swarm__Service *s)
{
    return s->spec != NULL && s->spec->annotations != NULL && s->spec->annotations->name != NULL
               ? s->spec->annotations->name
               : "";
}

static const char *cli_svc_image(const Swarm__ServiceSpec *spec)
{
    return spec != NULL && spec->task != NULL && spec->task->container != NULL &&
                   spec->task->container->image != NULL
               ? spec->task->container->image
               : "";
}

/* `service ls` and `service ps` show a pinned "name:tag@sha256:..." as
 * "name:tag", as Docker does (inspect and ps --no-trunc show it whole); a
 * pin by digest alone stays whole. */
static const char *cli_image_short(const char *image, char *buf, size_t size)
{
    const char *at = strchr(image, '@');
    const char *slash = strrchr(image, '/');
    if (at == NULL) {
        return image;
    }
    if (slash == NULL || slash > at) {
        slash = image;
    }
    const char *colon = memchr(slash, ':', (size_t)(at - slash));
    if (colon == NULL) {
        return image;
    }
    snprintf(buf, size, "%.*s", (int)(at - image), image);
    return buf;
}

void cli_view_service_ports(const Swarm__Service *svc, char *buf, size_t size)
{
    size_t o = 0, n = 0;
    Swarm__PortConfig *const *ports = NULL;
    buf[0] = '\0';
    /* As published (Service.endpoint: a port assigned from 30000-32767),
     * else as asked. */
    if (svc->endpoint != NULL && svc->endpoint->n_ports > 0) {
        ports = svc->endpoint->ports;
        n = svc->endpoint->n_ports;
    } else if (svc->spec != NULL && svc->spec->endpoint != NULL) {
        ports = svc->spec->endpoint->ports;
        n = svc->spec->endpoint->n_ports;
    }
    for (size_t i = 0; i < n && o < size; i++) {
        const Swarm__PortConfig *p = ports[i];
        if (strcmp(p->publish_mode, "host") == 0 || p->published_port == 0) {
            continue;
        }
        int k = snprintf(buf + o, size - o, "%s*:%u->%u/%s", o > 0 ? ", " : "",
                         p->published_port, p->target_port,
                         *p->protocol ? p->protocol : "tcp");
        o += k > 0 ? (size_t)k : 0;
    }
}

/* A task's host-mode ports (service ps's PORTS): "*:8000->80/tcp". */
static void cli_view_task_ports(const Swarm__Task *t, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; t->endpoint != NULL && i < t->endpoint->n_ports && o < size; i++) {
        const Swarm__PortConfig *p = t->endpoint->ports[i];
        if (strcmp(p->publish_mode, "host") != 0 || p->published_port == 0) {
            continue;
        }
        int k = snprintf(buf + o, size - o, "%s*:%u->%u/%s", o > 0 ? ", " : "",
                         p->published_port, p->target_port,
                         *p->protocol ? p->protocol : "tcp");
        o += k > 0 ? (size_t)k : 0;
    }
}

struct cli_svc_row {
    const Swarm__Service *svc;
    uint64_t running, desired;
};

static int cli_svc_row_cmp(const void *a, const void *b)
{
    const char *na = cli_svc_name(((const struct cli_svc_row *)a)->svc);
    const char *nb = cli_svc_name(((const struct cli_svc_row *)b)->svc);
    return cli_natural_less(na, nb) ? -1 : cli_natural_less(nb, na) ? 1 : 0;
}

static bool cli_svc_global(const Swarm__ServiceSpec *spec)
{
    return spec != NULL && spec->mode_case == SWARM__SERVICE_SPEC__MODE_GLOBAL;
}

/* REPLICAS: "2/3", or "2/3 (max 1 per node)". */
static void cli_svc_replicas(const struct cli_svc_row *r, char *buf, size_t size)
{
    const Swarm__ServiceSpec *spec = r->svc->spec;
    uint64_t max = spec != NULL && spec->task != NULL && spec->task->placement != NULL
                       ? spec->task->placement->max_replicas
                       : 0;
    if (!cli_svc_global(spec) && max > 0) {
        snprintf(buf, size, "%llu/%llu (max %llu per node)", (unsigned long long)r->running,
                 (unsigned long long)r->desired, (unsigned long long)max);
    } else {
        snprintf(buf, size, "%llu/%llu", (unsigned long long)r->running,
                 (unsigned long long)r->desired);
    }
}

static void cli_view_service_row(struct cli_table *t, const struct cli_svc_row *r)
{
    const Swarm__ServiceSpec *spec = r->svc->spec;
    char ports[512], replicas[128];
    cli_table_addf(t, "%.*s", CLI_SHORT_ID_LEN, r->svc->id);
    cli_table_add(t, cli_svc_name(r->svc));
    cli_table_add(t, cli_svc_global(spec) ? "global" : "replicated");
    cli_svc_replicas(r, replicas, sizeof replicas);
    cli_table_add(t, replicas);
    char img[1024];
    cli_table_add(t, cli_image_short(cli_svc_image(spec), img, sizeof img));
    cli_view_service_ports(r->svc, ports, sizeof ports);
    cli_table_add(t, ports);
    cli_table_end_row(t);
}

/* docker/cli's serviceContext: the fields of `service ls --format`, in
 * the order its {{json .}} prints them (sorted). */
static struct tmpl_value *cli_svc_context(const struct cli_svc_row *r)
{
    const Swarm__ServiceSpec *spec = r->svc->spec;
    char buf[512];
    struct tmpl_value *c = tmpl_value_map("*service.serviceContext", 0);
    snprintf(buf, sizeof buf, "%.*s", CLI_SHORT_ID_LEN, r->svc->id);
    tmpl_map_set_string(c, "ID", buf);
    char img[1024];
    tmpl_map_set_string(c, "Image", cli_image_short(cli_svc_image(spec), img, sizeof img));
    tmpl_map_set_string(c, "Mode", cli_svc_global(spec) ? "global" : "replicated");
    tmpl_map_set_string(c, "Name", cli_svc_name(r->svc));
    cli_view_service_ports(r->svc, buf, sizeof buf);
    tmpl_map_set_string(c, "Ports", buf);
    cli_svc_replicas(r, buf, sizeof buf);
    tmpl_map_set_string(c, "Replicas", buf);
    return c;
}

static const struct cli_fmt_column cli_svc_columns[] = {
    {"ID", "ID"},       {"Name", "NAME"},   {"Mode", "MODE"},
    {"Replicas", "REPLICAS"}, {"Image", "IMAGE"}, {"Ports", "PORTS"},
};

int cli_view_service_format(FILE *out, const char *format, Swarm__Service *const *services,
                            size_t n, const uint64_t *running, const uint64_t *desired,
                            char *errmsg)
{
    struct cli_svc_row *rows = cli_xcalloc(n + 1, sizeof *rows);
    struct tmpl_value **ctx = cli_xcalloc(n + 1, sizeof *ctx);
    for (size_t i = 0; i < n; i++) {
        rows[i] = (struct cli_svc_row){services[i], running != NULL ? running[i] : 0,
                                       desired != NULL ? desired[i] : 0};
    }
    qsort(rows, n, sizeof *rows, cli_svc_row_cmp);
    for (size_t i = 0; i < n; i++) {
        ctx[i] = cli_svc_context(&rows[i]);
    }
    int rc = cli_format_list(out, format, ctx, n, cli_svc_columns,
                             sizeof cli_svc_columns / sizeof *cli_svc_columns, errmsg);
    for (size_t i = 0; i < n; i++) {
        tmpl_value_free(ctx[i]);
    }
    free(ctx);
    free(rows);
    return rc;
}

void cli_view_service_table(FILE *out, Swarm__Service *const *services, size_t n,
                            const uint64_t *running, const uint64_t *desired,
                            bool quiet)
{
    struct cli_svc_row *rows = calloc(n + 1, sizeof *rows);
    if (rows == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i] = (struct cli_svc_row){services[i], running != NULL ? running[i] : 0,
                                       desired != NULL ? desired[i] : 0};
    }
    qsort(rows, n, sizeof *rows, cli_svc_row_cmp);
    if (quiet) {
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "%.*s\n", CLI_SHORT_ID_LEN, rows[i].svc->id);
        }
        free(rows);
        return;
    }
    struct cli_table *t = cli_table_new(10, 3);
    static const char *const header[] = {"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"};
    for (size_t c = 0; c < sizeof header / sizeof *header; c++) {
        cli_table_add(t, header[c]);
    }
    cli_table_end_row(t);
    for (size_t i = 0; i < n; i++) {
        cli_view_service_row(t, &rows[i]);
    }
    cli_table_print(t, out);
    cli_table_free(t);
    free(rows);
}

/* ------------------------------------------------------------ service ps */

const char *cli_view_task_state_word(Swarm__TaskState s)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&swarm__task_state__descriptor, (int)s);
    /* "TASK_STATE_RUNNING" -> "running", kept in a table of static words. */
    static const char *const words[] = {"new",      "pending",  "assigned", "accepted",
                                        "preparing", "ready",   "starting", "running",
                                        "complete", "shutdown", "failed",   "rejected",
                                        "remove",   "orphaned"};
    size_t i = v != NULL ? (size_t)(v - swarm__task_state__descriptor.values) : SIZE_MAX;
    return i < sizeof words / sizeof *words ? words[i] : "unknown";
}

void cli_view_task_state(Swarm__TaskState s, char *buf, size_t size)
{
    cli_format_capitalized(cli_view_task_state_word(s), buf, size);
}

static const char *cli_task_service_name(const Swarm__Task *t)
{
    if (t->service_name != NULL && *t->service_name) {
        return t->service_name;
    }
    return t->service_id != NULL ? t->service_id : "";
}

void cli_view_task_name(const Swarm__Task *t, char *buf, size_t size)
{
    if (t->slot != 0) {
        snprintf(buf, size, "%s.%llu", cli_task_service_name(t), (unsigned long long)t->slot);
    } else {
        snprintf(buf, size, "%s.%s", cli_task_service_name(t), t->node_id);
    }
}

/* The order of the table: by service name, then slot (or node for global
 * tasks); within a slot, the task meant to run first, then newest first. */
static int cli_task_cmp(const void *pa, const void *pb)
{
    const Swarm__Task *a = *(Swarm__Task *const *)pa, *b = *(Swarm__Task *const *)pb;
    int c = strcmp(cli_task_service_name(a), cli_task_service_name(b));
    if (c != 0) {
        return c;
    }
    if (a->slot != b->slot) {
        return a->slot < b->slot ? -1 : 1;
    }
    if (a->slot == 0 && (c = strcmp(a->node_id, b->node_id)) != 0) {
        return c;
    }
    bool ra = a->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING;
    bool rb = b->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING;
    if (ra != rb) {
        return ra ? -1 : 1;
    }
    int64_t ta = a->meta != NULL ? a->meta->created_at : 0;
    int64_t tb = b->meta != NULL ? b->meta->created_at : 0;
    if (ta != tb) {
        return ta > tb ? -1 : 1;
    }
    return strcmp(a->id, b->id);
}

void cli_view_task_sort(Swarm__Task **tasks, size_t n)
{
    qsort(tasks, n, sizeof *tasks, cli_task_cmp);
}

void cli_view_task_current(const Swarm__Task *t, int64_t now_ms, char *buf, size_t size)
{
    char state[32], ago[64];
    const Swarm__TaskStatus *st = t->status;
    cli_view_task_state(st != NULL ? st->state : 0, state, sizeof state);
    cli_format_time_ago(now_ms, st != NULL ? st->timestamp : now_ms, ago, sizeof ago);
    for (char *p = ago; *p; p++) { /* Docker lower-cases HumanDuration here */
        *p = (char)tolower((unsigned char)*p);
    }
    snprintf(buf, size, "%s %s", state, ago);
}

#define CLI_TASK_MAX_ERR 30

void cli_view_task_error(const char *err, bool no_trunc, char *buf, size_t size)
{
    if (err == NULL || *err == '\0') {
        snprintf(buf, size, "%s", "");
        return;
    }
    size_t len = strlen(err);
    if (!no_trunc && len > CLI_TASK_MAX_ERR) {
        /* Docker cuts bytes; step back so a UTF-8 character stays whole. */
        size_t cut = CLI_TASK_MAX_ERR - 1;
        while (cut > 0 && ((unsigned char)err[cut] & 0xC0) == 0x80) {
            cut--;
        }
        snprintf(buf, size, "\"%.*s\xe2\x80\xa6\"", (int)cut, err);
        return;
    }
    snprintf(buf, size, "\"%s\"", err);
}

const char *cli_view_task_node(const Swarm__Task *t, const struct cli_task_view *v)
{
    if (t->node_id == NULL || *t->node_id == '\0') {
        return "";
    }
    for (size_t i = 0; i < v->n_nodes; i++) {
        const Swarm__Node *n = v->nodes[i];
        if (strcmp(n->id, t->node_id) == 0 && n->description != NULL &&
            n->description->hostname != NULL && *n->description->hostname) {
            return n->description->hostname;
        }
    }
    return t->node_id;
}

static void cli_view_task_row(struct cli_table *tb, const Swarm__Task *t, bool history,
                              const struct cli_task_view *v)
{
    char name[512], cell[1024];
    const Swarm__ContainerSpec *c = t->spec != NULL ? t->spec->container : NULL;
    cli_table_addf(tb, "%.*s", v->no_trunc ? (int)strlen(t->id) : CLI_SHORT_ID_LEN, t->id);
    cli_view_task_name(t, name, sizeof name);
    cli_table_addf(tb, "%s%s", history ? " \\_ " : "", name);
    char img[1024];
    const char *image = c != NULL && c->image != NULL ? c->image : "";
    cli_table_add(tb, v->no_trunc ? image : cli_image_short(image, img, sizeof img));
    cli_table_add(tb, cli_view_task_node(t, v));
    cli_view_task_state(t->desired_state, cell, sizeof cell);
    cli_table_add(tb, cell);
    cli_view_task_current(t, v->now_ms, cell, sizeof cell);
    cli_table_add(tb, cell);
    cli_view_task_error(t->status != NULL ? t->status->err : NULL, v->no_trunc, cell,
                        sizeof cell);
    cli_table_add(tb, cell);
    cli_view_task_ports(t, cell, sizeof cell);
    cli_table_add(tb, cell);
    cli_table_end_row(tb);
}

void cli_view_task_table(FILE *out, Swarm__Task **tasks, size_t n,
                         const struct cli_task_view *v)
{
    cli_view_task_sort(tasks, n);
    if (v->quiet) {
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "%.*s\n", v->no_trunc ? (int)strlen(tasks[i]->id) : CLI_SHORT_ID_LEN,
                    tasks[i]->id);
        }
        return;
    }
    struct cli_table *t = cli_table_new(10, 3);
    static const char *const header[] = {"ID",           "NAME",          "IMAGE",
                                         "NODE",         "DESIRED STATE", "CURRENT STATE",
                                         "ERROR",        "PORTS"};
    for (size_t c = 0; c < sizeof header / sizeof *header; c++) {
        cli_table_add(t, header[c]);
    }
    cli_table_end_row(t);
    char prev[512] = "", name[512];
    for (size_t i = 0; i < n; i++) {
        cli_view_task_name(tasks[i], name, sizeof name);
        cli_view_task_row(t, tasks[i], strcmp(prev, name) == 0, v);
        snprintf(prev, sizeof prev, "%s", name);
    }
    cli_table_print(t, out);
    cli_table_free(t);
}

/* docker/cli's taskContext for `service ps` / `node ps --format`: the rows
 * in the table's order; a task older than the one above it in its slot is
 * indented (" \\_ web.1") only in table formats, as Docker. */
static const struct cli_fmt_column cli_task_columns[] = {
    {"ID", "ID"},
    {"Name", "NAME"},
    {"Image", "IMAGE"},
    {"Node", "NODE"},
    {"DesiredState", "DESIRED STATE"},
    {"CurrentState", "CURRENT STATE"},
    {"Error", "ERROR"},
    {"Ports", "PORTS"},
};

static struct tmpl_value *cli_task_context(const Swarm__Task *t, bool history,
                                           const struct cli_task_view *v)
{
    char name[512], cell[1024];
    const Swarm__ContainerSpec *c = t->spec != NULL ? t->spec->container : NULL;
    struct tmpl_value *ctx = tmpl_value_map("*task.taskContext", 0);
    cli_view_task_current(t, v->now_ms, cell, sizeof cell);
    tmpl_map_set_string(ctx, "CurrentState", cell);
    cli_view_task_state(t->desired_state, cell, sizeof cell);
    tmpl_map_set_string(ctx, "DesiredState", cell);
    cli_view_task_error(t->status != NULL ? t->status->err : NULL, v->no_trunc, cell,
                        sizeof cell);
    tmpl_map_set_string(ctx, "Error", cell);
    snprintf(cell, sizeof cell, "%.*s", v->no_trunc ? (int)strlen(t->id) : CLI_SHORT_ID_LEN,
             t->id);
    tmpl_map_set_string(ctx, "ID", cell);
    tmpl_map_set_string(ctx, "Image", c != NULL && c->image != NULL ? c->image : "");
    cli_view_task_name(t, name, sizeof name);
    snprintf(cell, sizeof cell, "%s%s", history ? " \\_ " : "", name);
    tmpl_map_set_string(ctx, "Name", cell);
    tmpl_map_set_string(ctx, "Node", cli_view_task_node(t, v));
    cli_view_task_ports(t, cell, sizeof cell);
    tmpl_map_set_string(ctx, "Ports", cell);
    return ctx;
}

int cli_view_task_format(FILE *out, Swarm__Task **tasks, size_t n, const struct cli_task_view *v,
                         char *errmsg)
{
    struct tmpl_value **ctx = cli_xcalloc(n + 1, sizeof *ctx);
    cli_view_task_sort(tasks, n);
    bool table = strncmp(v->format, "table", 5) == 0;
    char prev[512] = "", name[512];
    for (size_t i = 0; i < n; i++) {
        cli_view_task_name(tasks[i], name, sizeof name);
        ctx[i] = cli_task_context(tasks[i], table && strcmp(prev, name) == 0, v);
        snprintf(prev, sizeof prev, "%s", name);
    }
    int rc = cli_format_list(out, v->format, ctx, n, cli_task_columns,
                             sizeof cli_task_columns / sizeof *cli_task_columns, errmsg);
    for (size_t i = 0; i < n; i++) {
        tmpl_value_free(ctx[i]);
    }
    free(ctx);
    return rc;
}

/* ------------------------------------------------------- inspect --pretty */

static void cli_view_cpu(FILE *out, const char *label, int64_t nano)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.9f", (double)nano / 1e9);
    char *e = buf + strlen(buf) - 1; /* Go's %v of a float64: "0.5", "2" */
    while (*e == '0') {
        *e-- = '\0';
    }
    if (*e == '.') {
        *e = '\0';
    }
    fprintf(out, "  %s\t\t%s\n", label, buf);
}

static void cli_view_resources(FILE *out, const Swarm__ResourceRequirements *r)
{
    const Swarm__Resources *res[2] = {r != NULL ? r->reservations : NULL,
                                      r != NULL ? r->limits : NULL};
    const char *title[2] = {" Reservations:", " Limits:"};
    bool any[2];
    char mem[32];
    for (int i = 0; i < 2; i++) {
        any[i] = res[i] != NULL && (res[i]->nano_cpus > 0 || res[i]->memory_bytes > 0);
    }
    if (!any[0] && !any[1]) {
        return;
    }
    fputs("Resources:\n", out);
    for (int i = 0; i < 2; i++) {
        if (!any[i]) {
            continue;
        }
        fprintf(out, "%s\n", title[i]);
        if (res[i]->nano_cpus > 0) {
            cli_view_cpu(out, "CPU:", res[i]->nano_cpus);
        }
        if (res[i]->memory_bytes > 0) {
            cli_format_bytes((double)res[i]->memory_bytes, mem, sizeof mem);
            fprintf(out, "  Memory:\t%s\n", mem);
        }
    }
}

static void cli_view_update_config(FILE *out, const char *title, const char *order_label,
                                   const Swarm__UpdateConfig *c)
{
    char buf[64], word[32];
    if (c == NULL) {
        return;
    }
    fprintf(out, "%s:\n Parallelism:\t%llu\n", title, (unsigned long long)c->parallelism);
    if (c->delay_ms > 0) {
        cli_format_go_duration(c->delay_ms * CLI_NS_PER_MS, buf, sizeof buf);
        fprintf(out, " Delay:\t\t%s\n", buf);
    }
    cli_json_enum_name(&swarm__update_failure_action__descriptor, (int)c->failure_action,
                       word, sizeof word);
    fprintf(out, " On failure:\t%s\n", word);
    if (c->monitor_ms > 0) {
        cli_format_go_duration(c->monitor_ms * CLI_NS_PER_MS, buf, sizeof buf);
        fprintf(out, " Monitoring Period: %s\n", buf);
    }
    snprintf(buf, sizeof buf, "%g", (double)c->max_failure_ratio);
    cli_json_enum_name(&swarm__update_order__descriptor, (int)c->order, word, sizeof word);
    fprintf(out, " Max failure ratio: %s\n %s%s\n", buf, order_label, word);
}

static void cli_view_strings(FILE *out, const char *label, char *const *v, size_t n)
{
    if (n == 0) {
        return;
    }
    fprintf(out, " %s\t\t", label);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s ", cli_esc(v[i]));
    }
    fputc('\n', out);
}

static void cli_view_placement(FILE *out, const Swarm__Placement *p)
{
    fputs("Placement:\n", out);
    if (p == NULL) {
        return;
    }
    if (p->n_constraints > 0) { /* Go prints a []string as [a b] */
        fputs(" Constraints:\t[", out);
        for (size_t i = 0; i < p->n_constraints; i++) {
            fprintf(out, "%s%s", i > 0 ? " " : "", cli_esc(p->constraints[i]));
        }
        fputs("]\n", out);
    }
    if (p->n_preferences > 0) {
        fputs(" Preferences:   [", out);
        for (size_t i = 0; i < p->n_preferences; i++) {
            fprintf(out, "%sSpread=%s", i > 0 ? " " : "",
                    cli_esc(p->preferences[i]->spread_descriptor));
        }
        fputs("]\n", out);
    }
    if (p->max_replicas > 0) {
        fprintf(out, " Max Replicas Per Node:   %llu\n", (unsigned long long)p->max_replicas);
    }
}

static void cli_view_service_head(FILE *out, const Swarm__Service *s)
{
    const Swarm__ServiceSpec *spec = s->spec;
    const Swarm__Annotations *a = spec->annotations;
    fprintf(out, "\nID:\t\t%s\nName:\t\t%s\n", cli_esc(s->id), cli_esc(cli_svc_name(s)));
    if (a != NULL && a->n_labels > 0) {
        fputs("Labels:\n", out);
        for (size_t i = 0; i < a->n_labels; i++) {
            const char *v = a->labels[i]->value;
            fprintf(out, " %s%s%s\n", cli_esc(a->labels[i]->key), v != NULL && *v ? "=" : "",
                    cli_esc(v));
        }
    }
    if (spec->mode_case == SWARM__SERVICE_SPEC__MODE_GLOBAL) {
        fputs("Service Mode:\tGlobal\n", out);
    } else {
        fputs("Service Mode:\tReplicated\n", out);
        if (spec->replicated != NULL) {
            fprintf(out, " Replicas:\t%llu\n", (unsigned long long)spec->replicated->replicas);
        }
    }
    if (s->update_status != NULL && s->update_status->state != 0) {
        char word[32], when[64];
        cli_json_enum_name(&swarm__update_state__descriptor, (int)s->update_status->state,
                           word, sizeof word);
        fprintf(out, "UpdateStatus:\n State:\t\t%s\n", word);
        if (s->update_status->started_at > 0) {
            cli_format_go_time(s->update_status->started_at, when, sizeof when);
            fprintf(out, " Started:\t%s\n", when);
        }
        if (s->update_status->completed_at > 0) {
            cli_format_go_time(s->update_status->completed_at, when, sizeof when);
            fprintf(out, " Completed:\t%s\n", when);
        }
        fprintf(out, " Message:\t%s\n", cli_esc(s->update_status->message));
    }
}

static void cli_view_endpoint(FILE *out, const Swarm__Service *s, const Swarm__EndpointSpec *e)
{
    fputs("Endpoint Mode:\tvip\n", out);
    /* As published (a port assigned from 30000-32767), else as asked. */
    Swarm__PortConfig *const *ports = e != NULL ? e->ports : NULL;
    size_t n = e != NULL ? e->n_ports : 0;
    if (s->endpoint != NULL && s->endpoint->n_ports > 0) {
        ports = s->endpoint->ports;
        n = s->endpoint->n_ports;
    }
    if (n == 0) {
        return;
    }
    fputs("Ports:\n", out);
    for (size_t i = 0; i < n; i++) {
        const Swarm__PortConfig *p = ports[i];
        fprintf(out, " PublishedPort = %u\n  Protocol = %s\n  TargetPort = %u\n"
                     "  PublishMode = %s\n",
                p->published_port, cli_esc(p->protocol), p->target_port,
                cli_esc(p->publish_mode));
    }
}

/* docker/cli's pretty template: zero durations and retries are shown as
 * they are stored (0: the executor's default applies). */
static void cli_view_healthcheck(FILE *out, const Swarm__HealthConfig *h)
{
    char buf[64];
    if (h == NULL) {
        return;
    }
    fprintf(out, " Healthcheck:\n");
    cli_format_go_duration(h->interval_ms * CLI_NS_PER_MS, buf, sizeof buf);
    fprintf(out, "  Interval = %s\n  Retries = %d\n", buf, (int)h->retries);
    cli_format_go_duration(h->start_period_ms * CLI_NS_PER_MS, buf, sizeof buf);
    fprintf(out, "  StartPeriod =\t%s\n", buf);
    cli_format_go_duration(h->timeout_ms * CLI_NS_PER_MS, buf, sizeof buf);
    fprintf(out, "  Timeout =\t%s\n", buf);
    if (h->n_test > 0) {
        fprintf(out, "  Tests:\n");
        for (size_t i = 0; i < h->n_test; i++) {
            fprintf(out, "\t Test = %s\n", cli_esc(h->test[i]));
        }
    }
}

/* Docker's pretty inspect of the container fields (Mounts, capabilities...). */
static void cli_view_container_extra(FILE *out, const Swarm__ContainerSpec *c)
{
    cli_view_strings(out, "Entrypoint:", c->command, c->n_command);
    if (c->stop_signal != NULL && *c->stop_signal) {
        fprintf(out, " StopSignal:\t%s\n", cli_esc(c->stop_signal));
    }
    if (c->read_only) {
        fprintf(out, " Read Only:\ttrue\n");
    }
    if (c->init) {
        fprintf(out, " Init:\t\ttrue\n");
    }
    cli_view_strings(out, "Capability Add:", c->cap_add, c->n_cap_add);
    cli_view_strings(out, "Capability Drop:", c->cap_drop, c->n_cap_drop);
    if (c->n_mounts > 0) {
        fprintf(out, "Mounts:\n");
    }
    for (size_t i = 0; i < c->n_mounts; i++) {
        const Swarm__Mount *m = c->mounts[i];
        fprintf(out, " Target:\t%s\n  Source:\t%s\n  ReadOnly:\t%s\n  Type:\t\t%s\n",
                cli_esc(m->target), cli_esc(m->source), m->readonly ? "true" : "false",
                cli_esc(m->type));
    }
}

void cli_view_service_pretty(FILE *out, const Swarm__Service *s)
{
    static const Swarm__ServiceSpec empty = SWARM__SERVICE_SPEC__INIT;
    Swarm__Service copy = *s;
    copy.spec = s->spec != NULL ? s->spec : (Swarm__ServiceSpec *)&empty;
    const Swarm__ServiceSpec *spec = copy.spec;
    const Swarm__TaskSpec *t = spec->task;
    const Swarm__ContainerSpec *c = t != NULL ? t->container : NULL;
    cli_view_service_head(out, &copy);
    cli_view_placement(out, t != NULL ? t->placement : NULL);
    cli_view_update_config(out, "UpdateConfig", "Update order:      ", spec->update);
    cli_view_update_config(out, "RollbackConfig", "Rollback order:    ", spec->rollback);
    fprintf(out, "ContainerSpec:\n Image:\t\t%s\n", cli_esc(cli_svc_image(spec)));
    if (c != NULL) {
        cli_view_strings(out, "Args:", c->args, c->n_args);
        cli_view_strings(out, "Env:", c->env, c->n_env);
        if (c->dir != NULL && *c->dir) {
            fprintf(out, " Dir:\t\t%s\n", cli_esc(c->dir));
        }
        if (c->user != NULL && *c->user) {
            fprintf(out, " User:\t\t%s\n", c->user);
        }
        cli_view_healthcheck(out, c->healthcheck);
        cli_view_container_extra(out, c);
    }
    if (t != NULL && t->runtime != NULL && *t->runtime) {
        fprintf(out, "Runtime:\t%s\n", cli_esc(t->runtime));
    }
    cli_view_resources(out, t != NULL ? t->resources : NULL);
    cli_view_endpoint(out, s, spec->endpoint);
}
