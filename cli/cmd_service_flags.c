/* The flag tables of `service create` and `service update`: names, help
 * texts and value types as docker/cli's, with converters that give Docker's
 * "invalid argument" reasons at parse time (before anything is sent). */
#include <stdlib.h>
#include <string.h>

#include "cmd_service_opts.h"
#include "err.h"
#include "format.h"

/* ------------------------------------------------------ custom flag types */

static int cli_svc_cpus_cb(const char *w, void *v, char *errmsg)
{
    return cli_svc_parse_cpus(w, v, errmsg);
}

static int cli_svc_memory_cb(const char *w, void *v, char *errmsg)
{
    return cli_svc_parse_memory(w, v, errmsg);
}

static int cli_svc_duration_cb(const char *w, void *v, char *errmsg)
{
    if (cli_parse_duration(w, v, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    if (*(int64_t *)v < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "duration cannot be negative");
        return SWARM_EINVAL;
    }
    return 0;
}

static int cli_svc_port_cb(const char *w, void *v, char *errmsg)
{
    struct cli_svc_ports *ports = v;
    Swarm__PortConfig *pc;
    if (cli_svc_parse_port(w, &pc, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    ports->items = cli_xrealloc(ports->items, (ports->n + 1) * sizeof *ports->items);
    ports->items[ports->n++] = pc;
    return 0;
}

static int cli_svc_network_cb(const char *w, void *v, char *errmsg)
{
    struct cli_strlist *l = v;
    if (cli_svc_parse_network(w, NULL, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    l->items = cli_xrealloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = w;
    return 0;
}

static int cli_svc_user_cb(const char *w, void *v, char *errmsg)
{
    if (cli_svc_check_user(w, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    *(const char **)v = w;
    return 0;
}

static int cli_svc_strlist_add(struct cli_strlist *l, const char *w)
{
    l->items = cli_xrealloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = w;
    return 0;
}

static int cli_svc_constraint_cb(const char *w, void *v, char *errmsg)
{
    if (cli_svc_check_constraint(w, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    return cli_svc_strlist_add(v, w);
}

static int cli_svc_pref_cb(const char *w, void *v, char *errmsg)
{
    const char *eq = strchr(w, '=');
    if (eq == NULL || strchr(eq + 1, '=') != NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "placement preference must be of the format \"<strategy>=<arg>\"");
        return SWARM_EINVAL;
    }
    if ((size_t)(eq - w) != 6 || strncmp(w, "spread", 6) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "unsupported placement preference %.*s (only spread is supported)",
                      (int)(eq - w), w);
        return SWARM_EINVAL;
    }
    return cli_svc_strlist_add(v, w);
}

static int cli_svc_env_cb(const char *w, void *v, char *errmsg)
{
    if (w[0] == '=' || w[0] == '\0') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid environment variable: %s", w);
        return SWARM_EINVAL;
    }
    return cli_svc_strlist_add(v, w);
}

static int cli_svc_condition_cb(const char *w, void *v, char *errmsg)
{
    Swarm__RestartCondition *c = v;
    if (strcmp(w, "any") == 0) {
        *c = SWARM__RESTART_CONDITION__RESTART_CONDITION_ANY;
    } else if (strcmp(w, "none") == 0) {
        *c = SWARM__RESTART_CONDITION__RESTART_CONDITION_NONE;
    } else if (strcmp(w, "on-failure") == 0) {
        *c = SWARM__RESTART_CONDITION__RESTART_CONDITION_ON_FAILURE;
    } else {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "invalid restart condition, expected \"none\", \"on-failure\" or "
                      "\"any\"");
        return SWARM_EINVAL;
    }
    return 0;
}

static int cli_svc_action_cb(const char *w, void *v, char *errmsg)
{
    Swarm__UpdateFailureAction *a = v;
    if (strcmp(w, "pause") == 0) {
        *a = SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_PAUSE;
    } else if (strcmp(w, "continue") == 0) {
        *a = SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_CONTINUE;
    } else if (strcmp(w, "rollback") == 0) {
        *a = SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_ROLLBACK;
    } else {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "expected \"pause\", \"continue\" or \"rollback\"");
        return SWARM_EINVAL;
    }
    return 0;
}

static int cli_svc_order_cb(const char *w, void *v, char *errmsg)
{
    Swarm__UpdateOrder *o = v;
    if (strcmp(w, "stop-first") == 0) {
        *o = SWARM__UPDATE_ORDER__UPDATE_ORDER_STOP_FIRST;
    } else if (strcmp(w, "start-first") == 0) {
        *o = SWARM__UPDATE_ORDER__UPDATE_ORDER_START_FIRST;
    } else {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "expected \"stop-first\" or \"start-first\"");
        return SWARM_EINVAL;
    }
    return 0;
}

static int cli_svc_ratio_cb(const char *w, void *v, char *errmsg)
{
    char *end;
    double d = strtod(w, &end);
    if (*w == '\0' || *end != '\0') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "strconv.ParseFloat: parsing \"%s\": invalid syntax", w);
        return SWARM_EINVAL;
    }
    if (d < 0 || d > 1) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "value must be between 0 and 1");
        return SWARM_EINVAL;
    }
    *(double *)v = d;
    return 0;
}

/* ------------------------------------------------------------- flag table */

#define F(sh, nm, ty, val, use, var) \
    (struct cli_flag){sh, nm, CLI_FLAG_##ty, val, use, var, false, NULL}
#define C(nm, val, cb, use, var) \
    (struct cli_flag){0, nm, CLI_FLAG_CUSTOM, val, use, var, false, cb}

static size_t cli_svc_update_flags(struct cli_svc_update_opts *u, const char *kind,
                                   struct cli_flag *f, size_t i)
{
    static char names[2][6][40];
    bool rb = strcmp(kind, "rollback") == 0;
    char(*nm)[40] = names[rb];
    const char *words[] = {"delay", "failure-action", "max-failure-ratio",
                           "monitor", "order", "parallelism"};
    for (int k = 0; k < 6; k++) {
        snprintf(nm[k], sizeof nm[k], "%s-%s", kind, words[k]);
    }
    f[i++] = C(nm[0], &u->delay_ns, cli_svc_duration_cb,
               rb ? "Delay between task rollbacks (ns|us|ms|s|m|h) (default 0s)"
                  : "Delay between updates (ns|us|ms|s|m|h) (default 0s)",
               "duration");
    f[i++] = C(nm[1], &u->failure_action, cli_svc_action_cb,
               rb ? "Action on rollback failure (\"pause\"|\"continue\") (default \"pause\")"
                  : "Action on update failure (\"pause\"|\"continue\"|\"rollback\") "
                    "(default \"pause\")",
               "string");
    f[i++] = C(nm[2], &u->max_failure_ratio, cli_svc_ratio_cb,
               rb ? "Failure rate to tolerate during a rollback (default 0)"
                  : "Failure rate to tolerate during an update (default 0)",
               "float");
    f[i++] = C(nm[3], &u->monitor_ns, cli_svc_duration_cb,
               rb ? "Duration after each task rollback to monitor for failure "
                    "(ns|us|ms|s|m|h) (default 5s)"
                  : "Duration after each task update to monitor for failure "
                    "(ns|us|ms|s|m|h) (default 5s)",
               "duration");
    f[i++] = C(nm[4], &u->order, cli_svc_order_cb,
               rb ? "Rollback order (\"start-first\"|\"stop-first\") (default \"stop-first\")"
                  : "Update order (\"start-first\"|\"stop-first\") (default \"stop-first\")",
               "string");
    f[i++] = F(0, nm[5], UINT, &u->parallelism,
               rb ? "Maximum number of tasks rolled back simultaneously (0 to roll back "
                    "all at once) (default 1)"
                  : "Maximum number of tasks updated simultaneously (0 to update all at "
                    "once) (default 1)",
               "uint64");
    return i;
}

static size_t cli_svc_common_flags(struct cli_svc_opts *o, struct cli_flag *f)
{
    size_t i = 0;
    f[i++] = F('d', "detach", BOOL, &o->detach,
               "Exit immediately instead of waiting for the service to converge", NULL);
    f[i++] = F('q', "quiet", BOOL, &o->quiet, "Suppress progress output", NULL);
    f[i++] = F(0, "resolve-image", STRING, &o->resolve_image,
               "Query the registry to resolve image digest and supported platforms "
               "(\"always\", \"changed\", \"never\") (default \"always\")", "string");
    f[i++] = F(0, "with-registry-auth", BOOL, &o->with_registry_auth,
               "Send registry authentication details to swarm agents", NULL);
    f[i++] = F(0, "replicas", UINT, &o->replicas, "Number of tasks", "uint");
    f[i++] = F(0, "replicas-max-per-node", UINT, &o->max_replicas,
               "Maximum number of tasks per node (default 0 = unlimited)", "uint64");
    f[i++] = C("reserve-cpu", &o->reserve_cpu, cli_svc_cpus_cb, "Reserve CPUs", "decimal");
    f[i++] = C("reserve-memory", &o->reserve_memory, cli_svc_memory_cb, "Reserve Memory",
               "bytes");
    f[i++] = C("limit-cpu", &o->limit_cpu, cli_svc_cpus_cb, "Limit CPUs", "decimal");
    f[i++] = C("limit-memory", &o->limit_memory, cli_svc_memory_cb, "Limit Memory", "bytes");
    f[i++] = C("restart-condition", &o->restart_condition, cli_svc_condition_cb,
               "Restart when condition is met (\"none\"|\"on-failure\"|\"any\") (default "
               "\"any\")",
               "string");
    f[i++] = C("restart-delay", &o->restart_delay_ns, cli_svc_duration_cb,
               "Delay between restart attempts (ns|us|ms|s|m|h) (default 5s)", "duration");
    f[i++] = F(0, "restart-max-attempts", UINT, &o->restart_max_attempts,
               "Maximum number of restarts before giving up", "uint");
    f[i++] = C("restart-window", &o->restart_window_ns, cli_svc_duration_cb,
               "Window used to evaluate the restart policy (ns|us|ms|s|m|h)", "duration");
    f[i++] = C("stop-grace-period", &o->stop_grace_ns, cli_svc_duration_cb,
               "Time to wait before force killing a container (ns|us|ms|s|m|h) (default "
               "10s)",
               "duration");
    f[i++] = F('w', "workdir", STRING, &o->workdir, "Working directory inside the container",
               "string");
    f[i++] = C("user", &o->user, cli_svc_user_cb,
               "Username or UID (format: <name|uid>[:<group|gid>])", "string");
    f[i - 1].shorthand = 'u';
    f[i++] = F(0, "health-cmd", STRING, &o->health_cmd, "Command to run to check health",
               "string");
    f[i++] = C("health-interval", &o->health_interval_ns, cli_svc_duration_cb,
               "Time between running the check (ms|s|m|h)", "duration");
    f[i++] = F(0, "health-retries", INT, &o->health_retries,
               "Consecutive failures needed to report unhealthy", "int");
    f[i++] = C("health-start-period", &o->health_start_period_ns, cli_svc_duration_cb,
               "Start period for the container to initialize before counting retries towards "
               "unstable (ms|s|m|h)",
               "duration");
    f[i++] = C("health-timeout", &o->health_timeout_ns, cli_svc_duration_cb,
               "Maximum time to allow one check to run (ms|s|m|h)", "duration");
    f[i++] = F(0, "no-healthcheck", BOOL, &o->no_healthcheck,
               "Disable any container-specified HEALTHCHECK", NULL);
    f[i++] = F(0, "endpoint-mode", STRING, &o->endpoint_mode, "Endpoint mode (vip or dnsrr) (default \"vip\")",
               "string");
    f[i++] = F(0, "hostname", STRING, &o->hostname, "Container hostname", "string");
    i = cli_svc_update_flags(&o->update, "update", f, i);
    return cli_svc_update_flags(&o->rollback, "rollback", f, i);
}

static int cli_svc_flag_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cli_flag *)a)->name, ((const struct cli_flag *)b)->name);
}

void cli_svc_flags(struct cli_svc_opts *o, bool update, struct cli_flag *f)
{
    size_t i = cli_svc_common_flags(o, f);
    if (!update) {
        f[i++] = C("constraint", &o->constraint, cli_svc_constraint_cb,
                   "Placement constraints", "list");
        f[i++] = C("env", &o->env, cli_svc_env_cb, "Set environment variables", "list");
        f[i - 1].shorthand = 'e';
        f[i++] = F('l', "label", LIST, &o->label, "Service labels", "list");
        f[i++] = F(0, "mode", STRING, &o->mode,
                   "Service mode (replicated or global) (default \"replicated\")", "string");
        f[i++] = F(0, "name", STRING, &o->name, "Service name", "string");
        f[i++] = C("network", &o->network, cli_svc_network_cb, "Network attachments", "network");
        f[i++] = C("placement-pref", &o->placement_pref, cli_svc_pref_cb,
                   "Add a placement preference", "pref");
        f[i++] = C("publish", &o->publish, cli_svc_port_cb,
                   "Publish a port as a node port", "port");
        f[i - 1].shorthand = 'p';
    } else {
        f[i++] = F(0, "args", STRING, &o->args, "Service command args", "command");
        f[i++] = C("constraint-add", &o->constraint_add, cli_svc_constraint_cb,
                   "Add or update a placement constraint", "list");
        f[i++] = F(0, "constraint-rm", LIST, &o->constraint_rm,
                   "Remove a constraint", "list");
        f[i++] = C("env-add", &o->env_add, cli_svc_env_cb,
                   "Add or update an environment variable", "list");
        f[i++] = F(0, "env-rm", LIST, &o->env_rm, "Remove an environment variable", "list");
        f[i++] = F(0, "force", BOOL, &o->force,
                   "Force update even if no changes require it", NULL);
        f[i++] = F(0, "image", STRING, &o->image, "Service image tag", "string");
        f[i++] = F(0, "label-add", LIST, &o->label_add,
                   "Add or update a service label", "list");
        f[i++] = F(0, "label-rm", LIST, &o->label_rm, "Remove a label by its key", "list");
        f[i++] = C("network-add", &o->network_add, cli_svc_network_cb, "Add a network", "network");
        f[i++] = F(0, "network-rm", LIST, &o->network_rm, "Remove a network", "list");
        f[i++] = C("publish-add", &o->publish_add, cli_svc_port_cb,
                   "Add or update a published port", "port");
        f[i++] = F(0, "publish-rm", LIST, &o->publish_rm,
                   "Remove a published port by its target port", "port");
        f[i++] = F(0, "rollback", BOOL, &o->do_rollback,
                   "Rollback to previous specification", NULL);
    }
    i = cli_svc_ctr_flags(o, update, f, i);
    qsort(f, i, sizeof *f, cli_svc_flag_cmp);
    f[i] = (struct cli_flag){0};
}

static void cli_svc_ports_free(struct cli_svc_ports *p)
{
    for (size_t i = 0; i < p->n; i++) {
        protobuf_c_message_free_unpacked(&p->items[i]->base, NULL);
    }
    free(p->items);
    *p = (struct cli_svc_ports){0};
}

void cli_svc_opts_free(struct cli_svc_opts *o)
{
    struct cli_strlist *lists[] = {&o->env,        &o->label,         &o->constraint,
                                   &o->placement_pref, &o->env_add,   &o->env_rm,
                                   &o->label_add,  &o->label_rm,      &o->constraint_add,
                                   &o->constraint_rm, &o->publish_rm, &o->network,
                                   &o->network_add,   &o->network_rm};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        cli_strlist_free(lists[i]);
    }
    cli_svc_ports_free(&o->publish);
    cli_svc_ports_free(&o->publish_add);
    cli_svc_ctr_free(o);
}

