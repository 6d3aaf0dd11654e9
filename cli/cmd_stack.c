/* `swarmctl stack deploy|ls|services|ps|rm` (docker/cli cli/command/stack).
 * The compose file is compose.c's; services are built with the same
 * builder as `service create`. Everything of a stack carries the label
 * com.docker.stack.namespace=STACK, which is how ls/services/ps/rm find it. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "compose.h"
#include "edit.h"
#include "err.h"
#include "format.h"
#include "pbcopy.h"
#include "specvalid.h"
#include "view_format.h"
#include "view_service.h"

#define STACK_RM_WAIT_MS 60000

static const char *stack_getenv(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

static void stack_filter(char *buf, size_t size, const char *stack)
{
    snprintf(buf, size, "label=%s=%s", COMPOSE_NAMESPACE_LABEL, stack);
}

static Swarm__ListServicesResponse *stack_services(struct cli_ctx *ctx, const char *stack)
{
    char f[512], *filters[1] = {f};
    Swarm__ListServicesRequest req = SWARM__LIST_SERVICES_REQUEST__INIT;
    if (stack != NULL) {
        stack_filter(f, sizeof f, stack);
        req.filters = filters;
        req.n_filters = 1;
    }
    return (Swarm__ListServicesResponse *)cli_cmd_control(ctx, "ListServices", &req.base);
}

static Swarm__ListNetworksResponse *stack_networks(struct cli_ctx *ctx, const char *stack)
{
    char f[512], *filters[1] = {f};
    Swarm__ListNetworksRequest req = SWARM__LIST_NETWORKS_REQUEST__INIT;
    if (stack != NULL) {
        stack_filter(f, sizeof f, stack);
        req.filters = filters;
        req.n_filters = 1;
    }
    return (Swarm__ListNetworksResponse *)cli_cmd_control(ctx, "ListNetworks", &req.base);
}

static const char *svc_name(const Swarm__Service *s)
{
    return s->spec != NULL && s->spec->annotations != NULL ? s->spec->annotations->name : "";
}

static const char *net_name(const Swarm__Network *n)
{
    return n->spec != NULL && n->spec->annotations != NULL ? n->spec->annotations->name : "";
}

static int stack_name_ok(struct cli_ctx *ctx, const char *name)
{
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.')) {
            cli_cmd_errorf(ctx, "invalid stack name \"%s\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                           name);
            return 0;
        }
    }
    if (name[0] == '\0' || name[0] == '_' || name[0] == '-' || name[0] == '.') {
        cli_cmd_errorf(ctx, "invalid stack name \"%s\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                       name);
        return 0;
    }
    return 1;
}

#define STACK_CAS_ATTEMPTS 5

static void stack_pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* RemoveService (not compare-and-set on the manager's side). Returns true
 * when removed, else false after printing the error. */
static bool stack_remove_service(struct cli_ctx *ctx, const char *id)
{
    Swarm__RemoveServiceRequest req = SWARM__REMOVE_SERVICE_REQUEST__INIT;
    req.service_id = (char *)id;
    struct cli_reply r;
    cli_conn_call(ctx->conn, &swarm__control__descriptor, "RemoveService", &req.base, &r);
    bool ok = r.resp != NULL && r.status == API_OK;
    if (!ok) {
        cli_conn_report(ctx->conn, &r, ctx->err);
    }
    cli_cmd_free(r.resp);
    return ok;
}

/* UpdateService with the version read; on a conflict the version is read
 * again (the spec sent is the file's either way). */
static Swarm__UpdateServiceResponse *stack_update_service(struct cli_ctx *ctx, const char *id,
                                                         uint64_t version, Swarm__ServiceSpec *spec,
                                                         const char *resolve_image)
{
    for (int attempt = 1;; attempt++) {
        Swarm__UpdateServiceRequest req = SWARM__UPDATE_SERVICE_REQUEST__INIT;
        req.service_id = (char *)id;
        req.service_version = version;
        req.spec = spec;
        req.resolve_image = (char *)resolve_image; /* the manager pins (or not) the image */
        struct cli_reply r;
        cli_conn_call(ctx->conn, &swarm__control__descriptor, "UpdateService", &req.base, &r);
        if (r.resp != NULL && r.status == API_OK) {
            return (Swarm__UpdateServiceResponse *)r.resp;
        }
        cli_cmd_free(r.resp);
        if (attempt == STACK_CAS_ATTEMPTS || r.unreachable || !cli_cmd_is_conflict(r.status)) {
            cli_conn_report(ctx->conn, &r, ctx->err);
            return NULL;
        }
        struct cli_reply g;
        Swarm__Service *svc = cli_service_get(ctx, id, &g);
        if (svc == NULL) {
            cli_service_report(ctx, id, &g);
            cli_cmd_free(g.resp);
            return NULL;
        }
        version = svc->meta != NULL ? svc->meta->version : 0;
        cli_cmd_free(g.resp);
    }
}

/* ------------------------------------------------------------- deploy */

static void stack_set_str(char **field, const char *v)
{
    if (*field != NULL && *field != protobuf_c_empty_string) {
        free(*field);
    }
    *field = strdup(v);
    if (*field == NULL) {
        cli_oom();
    }
}

/* Whether `want` (to be sent) would change `have` (stored): compared as
 * bytes once the fields the manager fills in are taken from `have`
 * (runtime, network IDs for names, a pinned image digest, registry auth). */
static bool stack_spec_changed(const Swarm__ServiceSpec *want, const Swarm__ServiceSpec *have,
                               Swarm__Network *const *nets, size_t n_nets)
{
    Swarm__ServiceSpec *w = pb_copy(&want->base);
    if (w == NULL) {
        cli_oom();
    }
    Swarm__TaskSpec *t = w->task, *ht = have->task;
    if (t != NULL && ht != NULL) {
        if ((t->runtime == NULL || t->runtime[0] == '\0') && ht->runtime != NULL) {
            stack_set_str(&t->runtime, ht->runtime);
        }
        for (size_t i = 0; i < t->n_networks; i++) {
            for (size_t k = 0; k < n_nets; k++) {
                if (strcmp(net_name(nets[k]), t->networks[i]->target) == 0) {
                    stack_set_str(&t->networks[i]->target, nets[k]->id);
                }
            }
        }
        Swarm__ContainerSpec *c = t->container, *hc = ht->container;
        if (c != NULL && hc != NULL) {
            size_t len = strlen(c->image);
            if (strncmp(hc->image, c->image, len) == 0 && hc->image[len] == '@') {
                stack_set_str(&c->image, hc->image);
            }
            if ((c->registry_auth == NULL || c->registry_auth[0] == '\0') && hc->registry_auth != NULL) {
                stack_set_str(&c->registry_auth, hc->registry_auth);
            }
        }
    }
    size_t a = protobuf_c_message_get_packed_size(&w->base);
    size_t b = protobuf_c_message_get_packed_size(&have->base);
    bool changed = a != b;
    if (!changed) {
        uint8_t *pa = cli_xrealloc(NULL, a + 1), *pb = cli_xrealloc(NULL, b + 1);
        protobuf_c_message_pack(&w->base, pa);
        protobuf_c_message_pack(&have->base, pb);
        changed = memcmp(pa, pb, a) != 0;
        free(pa);
        free(pb);
    }
    protobuf_c_message_free_unpacked(&w->base, NULL);
    return changed;
}

/* What a failed deploy did, for the message. */
struct stack_done {
    char buf[4096];
    size_t len;
};

static void stack_done_add(struct stack_done *d, const char *kind, const char *name)
{
    if (d->len < sizeof d->buf) {
        d->len += (size_t)snprintf(d->buf + d->len, sizeof d->buf - d->len, "%s%s %s",
                                   d->len > 0 ? ", " : "", kind, name);
    }
}

static bool stack_net_exists(const Swarm__ListNetworksResponse *all, const char *name)
{
    for (size_t k = 0; all != NULL && k < all->n_networks; k++) {
        if (strcmp(net_name(all->networks[k]), name) == 0) {
            return true;
        }
    }
    return false;
}

/* Networks from net_from on (those that did not exist before) and services
 * from svc_from on were not made. */
static int stack_deploy_fail(struct cli_ctx *ctx, const struct stack_done *done,
                             const struct compose_project *p, const Swarm__ListNetworksResponse *all,
                             size_t net_from, size_t svc_from)
{
    fprintf(ctx->err, "Deploy of stack %s stopped: done: %s\n", p->stack,
            done->len > 0 ? done->buf : "nothing");
    fprintf(ctx->err, "Not done:");
    bool any = false;
    for (size_t i = net_from; i < p->n_networks; i++) {
        if (p->networks[i].used && !p->networks[i].external && !stack_net_exists(all, p->networks[i].name)) {
            fprintf(ctx->err, "%s network %s", any ? "," : "", p->networks[i].name);
            any = true;
        }
    }
    for (size_t i = svc_from; i < p->n_services; i++) {
        fprintf(ctx->err, "%s service %s_%s", any ? "," : "", p->stack, p->services[i].name);
        any = true;
    }
    fprintf(ctx->err, "%s\n", any ? "" : " nothing");
    return 1;
}

static int cmd_stack_deploy(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_strlist files = {0};
    bool prune = false, registry_auth = false;
    const char *resolve = "always";
    struct cli_flag flags[] = {
        {'c', "compose-file", CLI_FLAG_LIST, &files, "Path to a Compose file", "strings", false, NULL},
        {0, "prune", CLI_FLAG_BOOL, &prune, "Prune services that are no longer referenced", NULL, false, NULL},
        {0, "resolve-image", CLI_FLAG_STRING, &resolve,
         "Query the registry to resolve image digest and supported platforms (\"always\"|\"changed\"|\"never\") "
         "(default \"always\")", "string", false, NULL},
        {0, "with-registry-auth", CLI_FLAG_BOOL, &registry_auth,
         "Send registry authentication details to Swarm agents", NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl stack deploy", "[OPTIONS] STACK", "Deploy a new stack or update an existing stack",
                            "deploy, up", CLI_ARGS_EXACT, 1, 0, flags, false};
    char **pos, err[SWARM_ERRMSG_SIZE];
    int npos, rc = 1;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_strlist_free(&files);
        return rc;
    }
    const char *stack = pos[0];
    struct compose_project *p = NULL;
    Swarm__ServiceSpec **specs = NULL;
    Swarm__ListServicesResponse *have = NULL;
    Swarm__ListNetworksResponse *all = NULL;
    struct stack_done done = {0};
    size_t ni = 0, si = 0;
    rc = 1;
    if (strcmp(resolve, "always") != 0 && strcmp(resolve, "changed") != 0 && strcmp(resolve, "never") != 0) {
        cli_cmd_errorf(ctx, "Invalid option %s for flag --resolve-image", resolve);
        goto out;
    }
    if (!stack_name_ok(ctx, stack)) {
        goto out;
    }
    if (files.n == 0) {
        cli_cmd_errorf(ctx, "Please specify a Compose file (with --compose-file)");
        goto out;
    }
    if (compose_load((char *const *)files.items, files.n, stack, stack_getenv, NULL, &p, err) != 0) {
        cli_cmd_errorf(ctx, "%s", err);
        goto out;
    }
    compose_ignored_message(p, err, sizeof err);
    if (err[0] != '\0') {
        fprintf(ctx->err, "%s\n\n", err);
    }
    /* Every spec first: nothing is created from a file with a bad value. */
    specs = cli_xcalloc(p->n_services, sizeof *specs);
    for (size_t i = 0; i < p->n_services; i++) {
        specs[i] = compose_service_spec(p, i, err);
        if (specs[i] != NULL && registry_auth && specs[i]->task != NULL &&
            cli_registry_auth_fill(ctx, specs[i]->task->container) != 0) {
            goto out;
        }
        if (specs[i] != NULL && spec_validate_service(specs[i], err) != 0) {
            char msg[SWARM_ERRMSG_SIZE];
            snprintf(msg, sizeof msg, "%s", err);
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "%s:%d: services.%s: %s", p->services[i].file,
                          p->services[i].line, p->services[i].name, msg);
            protobuf_c_message_free_unpacked(&specs[i]->base, NULL);
            specs[i] = NULL;
        }
        if (specs[i] == NULL) {
            cli_cmd_errorf(ctx, "%s", err);
            goto out;
        }
    }
    if ((have = stack_services(ctx, stack)) == NULL || (all = stack_networks(ctx, NULL)) == NULL) {
        goto out;
    }
    for (size_t i = 0; i < p->n_networks; i++) {
        const struct compose_network *n = &p->networks[i];
        if (!n->used || !n->external) {
            continue;
        }
        bool found = false;
        for (size_t k = 0; k < all->n_networks && !found; k++) {
            found = strcmp(net_name(all->networks[k]), n->name) == 0 || strcmp(all->networks[k]->id, n->name) == 0;
        }
        if (!found) {
            cli_cmd_errorf(ctx,
                           "network \"%s\" is declared as external, but could not be found. You need to "
                           "create a swarm-scoped network before the stack is deployed",
                           n->name);
            goto out;
        }
    }
    /* Networks first. */
    for (ni = 0; ni < p->n_networks; ni++) {
        const struct compose_network *n = &p->networks[ni];
        if (!n->used || n->external || stack_net_exists(all, n->name)) {
            continue;
        }
        fprintf(ctx->out, "Creating network %s\n", n->name);
        fflush(ctx->out);
        Swarm__NetworkSpec ns = SWARM__NETWORK_SPEC__INIT;
        Swarm__IPAMConfig ipam = SWARM__IPAMCONFIG__INIT, *ipams[1] = {&ipam};
        Swarm__Annotations *ann = NULL;
        char key[256];
        const char *value;
        cli_labels_set(&ann, COMPOSE_NAMESPACE_LABEL, stack);
        for (size_t k = 0; k < n->n_labels; k++) {
            if (cli_label_parse(n->labels[k], key, sizeof key, &value) == 0) {
                cli_labels_set(&ann, key, value);
            }
        }
        free(ann->name != protobuf_c_empty_string ? ann->name : NULL);
        ann->name = strdup(n->name);
        ns.annotations = ann;
        ns.driver = n->driver != NULL ? n->driver : (char *)"overlay";
        ns.attachable = n->attachable;
        ns.internal = n->internal;
        if (n->subnet != NULL) {
            ipam.subnet = n->subnet;
            ns.ipam = ipams;
            ns.n_ipam = 1;
        }
        Swarm__CreateNetworkRequest req = SWARM__CREATE_NETWORK_REQUEST__INIT;
        req.spec = &ns;
        Swarm__CreateNetworkResponse *resp =
            (Swarm__CreateNetworkResponse *)cli_cmd_control(ctx, "CreateNetwork", &req.base);
        swarm__annotations__free_unpacked(ann, NULL);
        if (resp == NULL || resp->network == NULL) {
            cli_cmd_free(resp);
            stack_deploy_fail(ctx, &done, p, all, ni, 0);
            goto out;
        }
        cli_cmd_free(resp);
        stack_done_add(&done, "network", n->name);
    }
    cli_cmd_free(all);
    if ((all = stack_networks(ctx, NULL)) == NULL) {
        goto out;
    }
    /* Then services: created, or updated when their spec changed. */
    for (si = 0; si < p->n_services; si++) {
        const char *name = specs[si]->annotations->name;
        const Swarm__Service *cur = NULL;
        for (size_t k = 0; k < have->n_services && cur == NULL; k++) {
            if (strcmp(svc_name(have->services[k]), name) == 0) {
                cur = have->services[k];
            }
        }
        if (cur != NULL && cur->spec != NULL &&
            !stack_spec_changed(specs[si], cur->spec, all->networks, all->n_networks)) {
            continue;
        }
        if (cur != NULL) {
            fprintf(ctx->out, "Updating service %s (id: %s)\n", name, cur->id);
            fflush(ctx->out);
            Swarm__UpdateServiceResponse *resp = stack_update_service(
                ctx, cur->id, cur->meta != NULL ? cur->meta->version : 0, specs[si], resolve);
            if (resp == NULL) {
                stack_deploy_fail(ctx, &done, p, all, p->n_networks, si);
                goto out;
            }
            for (size_t k = 0; k < resp->n_warnings; k++) {
                fputs(resp->warnings[k], ctx->err);
            }
            cli_cmd_free(resp);
            stack_done_add(&done, "updated service", name);
        } else {
            fprintf(ctx->out, "Creating service %s\n", name);
            fflush(ctx->out);
            Swarm__CreateServiceRequest req = SWARM__CREATE_SERVICE_REQUEST__INIT;
            req.spec = specs[si];
            req.resolve_image = (char *)resolve;
            Swarm__CreateServiceResponse *resp =
                (Swarm__CreateServiceResponse *)cli_cmd_control(ctx, "CreateService", &req.base);
            if (resp == NULL || resp->service == NULL) {
                cli_cmd_free(resp);
                stack_deploy_fail(ctx, &done, p, all, p->n_networks, si);
                goto out;
            }
            for (size_t k = 0; k < resp->n_warnings; k++) {
                fputs(resp->warnings[k], ctx->err);
            }
            cli_cmd_free(resp);
            stack_done_add(&done, "service", name);
        }
    }
    rc = 0;
    if (prune) {
        for (size_t k = 0; k < have->n_services; k++) {
            bool keep = false;
            for (size_t i = 0; i < p->n_services && !keep; i++) {
                keep = strcmp(specs[i]->annotations->name, svc_name(have->services[k])) == 0;
            }
            if (keep) {
                continue;
            }
            fprintf(ctx->out, "Removing service %s\n", svc_name(have->services[k]));
            fflush(ctx->out);
            if (!stack_remove_service(ctx, have->services[k]->id)) {
                rc = 1;
            }
        }
    }
out:
    for (size_t i = 0; specs != NULL && i < p->n_services; i++) {
        if (specs[i] != NULL) {
            protobuf_c_message_free_unpacked(&specs[i]->base, NULL);
        }
    }
    free(specs);
    cli_cmd_free(have);
    cli_cmd_free(all);
    compose_free(p);
    cli_strlist_free(&files);
    free(pos);
    return rc;
}

/* ----------------------------------------------------------------- ls */

static const char *stack_of(const Swarm__Service *s)
{
    const Swarm__Annotations *a = s->spec != NULL ? s->spec->annotations : NULL;
    for (size_t i = 0; a != NULL && i < a->n_labels; i++) {
        if (strcmp(a->labels[i]->key, COMPOSE_NAMESPACE_LABEL) == 0) {
            return a->labels[i]->value;
        }
    }
    return NULL;
}

static int stack_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmd_stack_ls(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *format = NULL;
    struct cli_flag flags[] = {
        {0, "format", CLI_FLAG_STRING, &format, "Pretty-print stacks using a Go template", "string", false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl stack ls", "[OPTIONS]", "List stacks", "ls, list", CLI_ARGS_NONE, 0, 0,
                            flags, false};
    char **pos;
    int npos, rc = 1;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    free(pos);
    Swarm__ListServicesResponse *list = stack_services(ctx, NULL);
    if (list == NULL) {
        return 1;
    }
    const char **names = cli_xcalloc(list->n_services + 1, sizeof *names);
    size_t n = 0;
    for (size_t i = 0; i < list->n_services; i++) {
        if (stack_of(list->services[i]) != NULL) {
            names[n++] = stack_of(list->services[i]);
        }
    }
    qsort(names, n, sizeof *names, stack_cmp);
    /* Docker's stack ls: NAME, SERVICES, ORCHESTRATOR (Swarm). */
    static const struct cli_fmt_column columns[] = {
        {"Name", "NAME"}, {"Services", "SERVICES"}, {"Orchestrator", "ORCHESTRATOR"}};
    struct tmpl_value **rows = cli_xcalloc(n + 1, sizeof *rows);
    size_t nrows = 0;
    for (size_t i = 0; i < n;) {
        size_t k = i;
        while (k < n && strcmp(names[k], names[i]) == 0) {
            k++;
        }
        struct tmpl_value *r = tmpl_value_map(NULL, 0);
        tmpl_map_set_string(r, "Name", names[i]);
        tmpl_map_set(r, "Services", tmpl_value_int((int64_t)(k - i)));
        tmpl_map_set_string(r, "Orchestrator", "Swarm");
        rows[nrows++] = r;
        i = k;
    }
    char ferr[SWARM_ERRMSG_SIZE];
    const char *fmt = cli_format_is_default(format)
                          ? "table {{.Name}}\t{{.Services}}\t{{.Orchestrator}}"
                          : format;
    rc = cli_cmd_format_result(ctx, cli_format_list(ctx->out, fmt, rows, nrows, columns, 3, ferr), ferr);
    for (size_t i = 0; i < nrows; i++) {
        tmpl_value_free(rows[i]);
    }
    free(rows);
    free(names);
    cli_cmd_free(list);
    return rc;
}

/* ----------------------------------------------------------- services */

static int cmd_stack_services(struct cli_ctx *ctx, int argc, char **argv)
{
    bool quiet = false;
    const char *format = NULL;
    struct cli_strlist filters = {0};
    struct cli_flag flags[] = {
        {'f', "filter", CLI_FLAG_LIST, &filters, "Filter output based on conditions provided", "filter", false,
         NULL},
        {0, "format", CLI_FLAG_STRING, &format, "Pretty-print services using a Go template", "string", false,
         NULL},
        {'q', "quiet", CLI_FLAG_BOOL, &quiet, "Only display IDs", NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl stack services", "[OPTIONS] STACK", "List the services in the stack",
                            NULL, CLI_ARGS_EXACT, 1, 0, flags, false};
    char **pos, f[512];
    int npos, rc = 1;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_strlist_free(&filters);
        return rc;
    }
    stack_filter(f, sizeof f, pos[0]);
    const char **all = cli_xcalloc(filters.n + 1, sizeof *all);
    for (size_t i = 0; i < filters.n; i++) {
        if (strchr(filters.items[i], '=') == NULL) {
            free(all);
            free(pos);
            cli_strlist_free(&filters);
            return cli_cmd_errorf(ctx, "bad format of filter (expected name=value)");
        }
        all[i] = filters.items[i];
    }
    all[filters.n] = f;
    Swarm__ListServicesRequest req = SWARM__LIST_SERVICES_REQUEST__INIT;
    req.filters = (char **)all;
    req.n_filters = filters.n + 1;
    Swarm__ListServicesResponse *list =
        (Swarm__ListServicesResponse *)cli_cmd_control(ctx, "ListServices", &req.base);
    free(all);
    cli_strlist_free(&filters);
    rc = 1;
    if (list != NULL && list->n_services == 0) {
        fprintf(ctx->err, "Nothing found in stack: %s\n", pos[0]);
        rc = 0;
    } else if (list != NULL) {
        bool counts = list->n_running == list->n_services && list->n_desired == list->n_services;
        char ferr[SWARM_ERRMSG_SIZE];
        rc = 0;
        if (cli_format_is_default(format)) {
            cli_view_service_table(ctx->out, list->services, list->n_services, counts ? list->running : NULL,
                                   counts ? list->desired : NULL, quiet);
        } else {
            rc = cli_cmd_format_result(
                ctx,
                cli_view_service_format(ctx->out, format, list->services, list->n_services,
                                        counts ? list->running : NULL, counts ? list->desired : NULL, ferr),
                ferr);
        }
    }
    cli_cmd_free(list);
    free(pos);
    return rc;
}

/* ----------------------------------------------------------------- ps */

static int cmd_stack_ps(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_task_view view = {0};
    struct cli_strlist filters = {0};
    struct cli_flag flags[] = {
        {'f', "filter", CLI_FLAG_LIST, &filters, "Filter output based on conditions provided", "filter", false,
         NULL},
        {0, "format", CLI_FLAG_STRING, &view.format, "Pretty-print tasks using a Go template", "string", false,
         NULL},
        {0, "no-trunc", CLI_FLAG_BOOL, &view.no_trunc, "Do not truncate output", NULL, false, NULL},
        {'q', "quiet", CLI_FLAG_BOOL, &view.quiet, "Only display task IDs", NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl stack ps", "[OPTIONS] STACK", "List the tasks in the stack", NULL,
                            CLI_ARGS_EXACT, 1, 0, flags, false};
    char **pos;
    int npos, rc = 1;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_strlist_free(&filters);
        return rc;
    }
    Swarm__ListServicesResponse *list = stack_services(ctx, pos[0]);
    rc = 1;
    if (list != NULL && list->n_services == 0) {
        fprintf(ctx->err, "Nothing found in stack: %s\n", pos[0]);
        rc = 0;
    } else if (list != NULL) {
        char **scopes = cli_xcalloc(list->n_services, sizeof *scopes);
        for (size_t i = 0; i < list->n_services; i++) {
            size_t len = strlen(list->services[i]->id) + 16;
            scopes[i] = cli_xrealloc(NULL, len);
            snprintf(scopes[i], len, "service=%s", list->services[i]->id);
        }
        rc = cli_task_ps(ctx, scopes, list->n_services, (char *const *)filters.items, filters.n, &view);
        for (size_t i = 0; i < list->n_services; i++) {
            free(scopes[i]);
        }
        free(scopes);
    }
    cli_cmd_free(list);
    cli_strlist_free(&filters);
    free(pos);
    return rc;
}

/* ----------------------------------------------------------------- rm */

static int svc_name_cmp(const void *a, const void *b)
{
    return strcmp(svc_name(*(Swarm__Service *const *)a), svc_name(*(Swarm__Service *const *)b));
}

/* Until no live task of the removed services, or attached to the stack's
 * networks, is left (what keeps the networks in use); every task is listed,
 * as `service=ID` no longer resolves once the service is gone. */
static bool stack_wait_tasks(struct cli_ctx *ctx, char **ids, size_t n,
                             const Swarm__ListNetworksResponse *nets)
{
    int64_t deadline = cli_now_ms() + STACK_RM_WAIT_MS;
    while (cli_now_ms() < deadline) {
        size_t left = 0;
        Swarm__ListTasksRequest req = SWARM__LIST_TASKS_REQUEST__INIT;
        struct cli_reply r;
        cli_conn_call(ctx->conn, &swarm__control__descriptor, "ListTasks", &req.base, &r);
        Swarm__ListTasksResponse *l = (Swarm__ListTasksResponse *)r.resp;
        if (l == NULL) {
            left = 1; /* unreachable for now: try again until the deadline */
        }
        for (size_t k = 0; l != NULL && k < l->n_tasks; k++) {
            const Swarm__Task *t = l->tasks[k];
            bool ours = false;
            for (size_t i = 0; i < n && !ours; i++) {
                ours = strcmp(t->service_id, ids[i]) == 0;
            }
            for (size_t a = 0; a < t->n_networks && !ours; a++) {
                for (size_t i = 0; t->networks[a]->network != NULL && i < nets->n_networks && !ours; i++) {
                    ours = strcmp(t->networks[a]->network->id, nets->networks[i]->id) == 0;
                }
            }
            if (ours && (t->status == NULL || t->status->state <= SWARM__TASK_STATE__TASK_STATE_RUNNING)) {
                left++;
            }
        }
        cli_cmd_free(r.resp);
        if (left == 0) {
            return true;
        }
        stack_pause_ms(200);
    }
    return false;
}

static int cmd_stack_rm(struct cli_ctx *ctx, int argc, char **argv)
{
    bool detach = false;
    struct cli_flag flags[] = {
        {'d', "detach", CLI_FLAG_BOOL, &detach, "Do not wait for stack removal", NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl stack rm", "[OPTIONS] STACK [STACK...]", "Remove one or more stacks",
                            "rm, remove, down", CLI_ARGS_MIN, 1, 0, flags, false};
    char **pos;
    int npos, rc = 1;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    rc = 0;
    for (int s = 0; s < npos; s++) {
        Swarm__ListServicesResponse *svcs = stack_services(ctx, pos[s]);
        Swarm__ListNetworksResponse *nets = svcs != NULL ? stack_networks(ctx, pos[s]) : NULL;
        if (svcs == NULL || nets == NULL) {
            cli_cmd_free(svcs);
            rc = 1;
            break;
        }
        if (svcs->n_services == 0 && nets->n_networks == 0) {
            fprintf(ctx->err, "Nothing found in stack: %s\n", pos[s]);
        }
        if (svcs->n_services > 1) {
            qsort(svcs->services, svcs->n_services, sizeof *svcs->services, svc_name_cmp);
        }
        char **ids = cli_xcalloc(svcs->n_services + 1, sizeof *ids);
        size_t nids = 0;
        for (size_t i = 0; i < svcs->n_services; i++) {
            fprintf(ctx->out, "Removing service %s\n", svc_name(svcs->services[i]));
            fflush(ctx->out);
            if (stack_remove_service(ctx, svcs->services[i]->id)) {
                ids[nids++] = svcs->services[i]->id;
            } else {
                rc = 1;
            }
        }
        /* A network is removable once no task is attached to it. */
        bool stopped = detach || stack_wait_tasks(ctx, ids, nids, nets);
        if (!stopped) {
            fprintf(ctx->err, "Error: tasks of stack %s did not stop within %d s\n", pos[s],
                    STACK_RM_WAIT_MS / 1000);
            rc = 1;
        }
        for (size_t i = 0; i < nets->n_networks; i++) {
            fprintf(ctx->out, "Removing network %s\n", net_name(nets->networks[i]));
            fflush(ctx->out);
            Swarm__RemoveNetworkRequest req = SWARM__REMOVE_NETWORK_REQUEST__INIT;
            req.network_id = nets->networks[i]->id;
            Swarm__RemoveNetworkResponse *r =
                (Swarm__RemoveNetworkResponse *)cli_cmd_control(ctx, "RemoveNetwork", &req.base);
            if (r == NULL) {
                rc = 1;
            }
            cli_cmd_free(r);
        }
        free(ids);
        cli_cmd_free(svcs);
        cli_cmd_free(nets);
    }
    free(pos);
    return rc;
}

const struct cli_command cli_stack_commands[] = {
    {"deploy", "up", "Deploy a new stack or update an existing stack", cmd_stack_deploy, NULL},
    {"ls", "list", "List stacks", cmd_stack_ls, NULL},
    {"ps", NULL, "List the tasks in the stack", cmd_stack_ps, NULL},
    {"rm", "remove", "Remove one or more stacks", cmd_stack_rm, NULL},
    {"services", NULL, "List the services in the stack", cmd_stack_services, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
