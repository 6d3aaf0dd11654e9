/* Service flags -> ServiceSpec (see cmd_service_opts.h). create starts from
 * Docker's defaults and applies the flags; update applies the same flags to
 * the spec swarmd holds, plus its -add/-rm edits. Only flags that were given
 * change anything, so an update never resets what it was not asked to. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd_service_opts.h"
#include "edit.h"
#include "err.h"
#include "format.h"
#include "pbcopy.h"

static void cli_svc_set_str(char **field, const char *v)
{
    if (*field != NULL && *field != (char *)protobuf_c_empty_string) {
        free(*field);
    }
    *field = cli_xrealloc(NULL, strlen(v) + 1);
    memcpy(*field, v, strlen(v) + 1);
}

static void cli_svc_strv_push(char ***arr, size_t *n, const char *v)
{
    *arr = cli_xrealloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[*n] = NULL;
    cli_svc_set_str(&(*arr)[*n], v);
    (*n)++;
}

static void cli_svc_strv_del(char **arr, size_t *n, size_t i)
{
    free(arr[i]);
    memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof *arr);
    (*n)--;
}

/* ---------------------------------------------------- sub-message access */

#define CLI_SVC_ENSURE(ptr, init)                          \
    do {                                                   \
        if ((ptr) == NULL) {                               \
            (ptr) = cli_xrealloc(NULL, sizeof *(ptr));   \
            init(ptr);                                     \
        }                                                  \
    } while (0)

static Swarm__TaskSpec *cli_svc_task(Swarm__ServiceSpec *s)
{
    CLI_SVC_ENSURE(s->task, swarm__task_spec__init);
    CLI_SVC_ENSURE(s->task->container, swarm__container_spec__init);
    CLI_SVC_ENSURE(s->task->restart, swarm__restart_policy__init);
    CLI_SVC_ENSURE(s->task->placement, swarm__placement__init);
    CLI_SVC_ENSURE(s->task->resources, swarm__resource_requirements__init);
    CLI_SVC_ENSURE(s->task->resources->limits, swarm__resources__init);
    CLI_SVC_ENSURE(s->task->resources->reservations, swarm__resources__init);
    CLI_SVC_ENSURE(s->update, swarm__update_config__init);
    CLI_SVC_ENSURE(s->rollback, swarm__update_config__init);
    CLI_SVC_ENSURE(s->endpoint, swarm__endpoint_spec__init);
    return s->task;
}

static bool cli_svc_changed(const struct cli_flag *flags, const char *name)
{
    for (const struct cli_flag *f = flags; f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0) {
            return f->changed;
        }
    }
    return false;
}

static void cli_svc_apply_update_config(const struct cli_flag *flags, const char *kind,
                                        const struct cli_svc_update_opts *u,
                                        Swarm__UpdateConfig *c)
{
    char name[48];
#define CHANGED(word) (snprintf(name, sizeof name, "%s-%s", kind, word), \
                       cli_svc_changed(flags, name))
    if (CHANGED("parallelism")) {
        c->parallelism = u->parallelism;
    }
    if (CHANGED("delay")) {
        c->delay_ms = u->delay_ns / CLI_NS_PER_MS;
    }
    if (CHANGED("monitor")) {
        c->monitor_ms = u->monitor_ns / CLI_NS_PER_MS;
    }
    if (CHANGED("failure-action")) {
        c->failure_action = u->failure_action;
    }
    if (CHANGED("max-failure-ratio")) {
        c->max_failure_ratio = (float)u->max_failure_ratio;
    }
    if (CHANGED("order")) {
        c->order = u->order;
    }
#undef CHANGED
}

static const char *const cli_svc_health_flags[] = {
    "health-cmd", "health-interval", "health-retries", "health-start-period", "health-timeout",
};

/* --health-* and --no-healthcheck, as docker/cli's updateHealthcheck: on
 * update only the fields given change; --no-healthcheck leaves ["NONE"]
 * alone; --health-cmd "" drops the test (inherit: none here). */
static int cli_svc_apply_health(Swarm__ContainerSpec *c, const struct cli_flag *flags,
                                const struct cli_svc_opts *o, char *errmsg)
{
    bool any = false;
    for (size_t i = 0; i < sizeof cli_svc_health_flags / sizeof *cli_svc_health_flags; i++) {
        any = any || cli_svc_changed(flags, cli_svc_health_flags[i]);
    }
    bool none = cli_svc_changed(flags, "no-healthcheck") && o->no_healthcheck;
    if (none && any) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "--no-healthcheck conflicts with --health-* options");
        return SWARM_EINVAL;
    }
    if (cli_svc_changed(flags, "health-retries") && o->health_retries < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "--health-retries cannot be negative");
        return SWARM_EINVAL;
    }
    if (!none && !any) {
        return 0;
    }
    CLI_SVC_ENSURE(c->healthcheck, swarm__health_config__init);
    Swarm__HealthConfig *h = c->healthcheck;
    if (none || (h->n_test > 0 && strcmp(h->test[0], "NONE") == 0)) {
        while (h->n_test > 0) {
            cli_svc_strv_del(h->test, &h->n_test, h->n_test - 1);
        }
    }
    if (none) {
        /* Docker keeps nothing else of a disabled check. */
        h->interval_ms = h->timeout_ms = h->start_period_ms = 0;
        h->retries = 0;
        cli_svc_strv_push(&h->test, &h->n_test, "NONE");
        return 0;
    }
    if (cli_svc_changed(flags, "health-cmd")) {
        while (h->n_test > 0) {
            cli_svc_strv_del(h->test, &h->n_test, h->n_test - 1);
        }
        if (o->health_cmd != NULL && o->health_cmd[0] != '\0') {
            cli_svc_strv_push(&h->test, &h->n_test, "CMD-SHELL");
            cli_svc_strv_push(&h->test, &h->n_test, o->health_cmd);
        }
    }
    if (cli_svc_changed(flags, "health-interval")) {
        h->interval_ms = o->health_interval_ns / CLI_NS_PER_MS;
    }
    if (cli_svc_changed(flags, "health-timeout")) {
        h->timeout_ms = o->health_timeout_ns / CLI_NS_PER_MS;
    }
    if (cli_svc_changed(flags, "health-start-period")) {
        h->start_period_ms = o->health_start_period_ns / CLI_NS_PER_MS;
    }
    if (cli_svc_changed(flags, "health-retries")) {
        h->retries = (int32_t)o->health_retries;
    }
    return 0;
}

/* The flags create and update share. */
static int cli_svc_apply_common(Swarm__ServiceSpec *s, const struct cli_flag *flags,
                                const struct cli_svc_opts *o, char *errmsg)
{
    Swarm__TaskSpec *t = cli_svc_task(s);
    bool global = s->mode_case == SWARM__SERVICE_SPEC__MODE_GLOBAL;
    if (cli_svc_changed(flags, "replicas")) {
        if (global) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "replicas can only be used with replicated mode");
            return SWARM_EINVAL;
        }
        s->replicated->replicas = o->replicas;
    }
    if (cli_svc_changed(flags, "replicas-max-per-node")) {
        if (global) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "replicas-max-per-node can only be used with replicated mode");
            return SWARM_EINVAL;
        }
        t->placement->max_replicas = o->max_replicas;
    }
    struct {
        const char *name;
        int64_t *field;
        int64_t value;
    } ints[] = {
        {"reserve-cpu", &t->resources->reservations->nano_cpus, o->reserve_cpu},
        {"reserve-memory", &t->resources->reservations->memory_bytes, o->reserve_memory},
        {"limit-cpu", &t->resources->limits->nano_cpus, o->limit_cpu},
        {"limit-memory", &t->resources->limits->memory_bytes, o->limit_memory},
        {"restart-delay", &t->restart->delay_ms, o->restart_delay_ns / CLI_NS_PER_MS},
        {"restart-window", &t->restart->window_ms, o->restart_window_ns / CLI_NS_PER_MS},
        {"stop-grace-period", &t->container->stop_grace_period_ms,
         o->stop_grace_ns / CLI_NS_PER_MS},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        if (cli_svc_changed(flags, ints[i].name)) {
            *ints[i].field = ints[i].value;
        }
    }
    if (cli_svc_changed(flags, "restart-condition")) {
        t->restart->condition = o->restart_condition;
    }
    if (cli_svc_changed(flags, "restart-max-attempts")) {
        t->restart->max_attempts = o->restart_max_attempts;
    }
    if (cli_svc_changed(flags, "workdir")) {
        cli_svc_set_str(&t->container->dir, o->workdir);
    }
    if (cli_svc_changed(flags, "user")) {
        cli_svc_set_str(&t->container->user, o->user);
    }
    if (cli_svc_apply_health(t->container, flags, o, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    if (cli_svc_changed(flags, "endpoint-mode")) {
        cli_svc_set_str(&s->endpoint->mode, o->endpoint_mode);
    }
    if (cli_svc_changed(flags, "hostname")) {
        cli_svc_set_str(&t->container->hostname, o->hostname);
    }
    cli_svc_apply_update_config(flags, "update", &o->update, s->update);
    cli_svc_apply_update_config(flags, "rollback", &o->rollback, s->rollback);
    return 0;
}

static void cli_svc_default_update_config(Swarm__UpdateConfig *c)
{
    c->parallelism = 1;
    c->failure_action = SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_PAUSE;
    c->monitor_ms = CLI_SVC_UPDATE_MONITOR_MS;
    c->order = SWARM__UPDATE_ORDER__UPDATE_ORDER_STOP_FIRST;
}

static void cli_svc_push_ports(Swarm__EndpointSpec *e, const struct cli_svc_ports *p)
{
    for (size_t i = 0; i < p->n; i++) {
        Swarm__PortConfig *copy = pb_copy(&p->items[i]->base);
        if (copy == NULL) {
            continue;
        }
        e->ports = cli_xrealloc(e->ports, (e->n_ports + 1) * sizeof *e->ports);
        e->ports[e->n_ports++] = copy;
    }
}

/* Docker reads "K" alone from the client's environment. */
static void cli_svc_push_env(char ***env, size_t *n, const char *word)
{
    const char *v = strchr(word, '=') == NULL ? getenv(word) : NULL;
    if (v == NULL) {
        cli_svc_strv_push(env, n, word);
        return;
    }
    char *kv = cli_xrealloc(NULL, strlen(word) + strlen(v) + 2);
    sprintf(kv, "%s=%s", word, v);
    cli_svc_strv_push(env, n, kv);
    free(kv);
}

int cli_svc_parse_network(const char *s, Swarm__NetworkAttachmentConfig **out, char *errmsg)
{
    Swarm__NetworkAttachmentConfig *c = cli_xcalloc(1, sizeof *c);
    swarm__network_attachment_config__init(c);
    if (strchr(s, '=') == NULL) {
        cli_svc_set_str(&c->target, s);
    } else {
        char *copy = cli_xrealloc(NULL, strlen(s) + 1), *save = NULL;
        memcpy(copy, s, strlen(s) + 1);
        for (char *f = strtok_r(copy, ",", &save); f != NULL; f = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(f, '=');
            if (eq == NULL) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid field '%s' must be a key=value pair", f);
                free(copy);
                protobuf_c_message_free_unpacked(&c->base, NULL);
                return SWARM_EINVAL;
            }
            *eq = '\0';
            if (strcasecmp(f, "name") == 0) {
                cli_svc_set_str(&c->target, eq + 1);
            } else if (strcasecmp(f, "alias") == 0) {
                cli_svc_strv_push(&c->aliases, &c->n_aliases, eq + 1);
            } else {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid field key %s", f);
                free(copy);
                protobuf_c_message_free_unpacked(&c->base, NULL);
                return SWARM_EINVAL;
            }
        }
        free(copy);
    }
    if (c->target == NULL || c->target[0] == '\0') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network name/id is not specified");
        protobuf_c_message_free_unpacked(&c->base, NULL);
        return SWARM_EINVAL;
    }
    if (out != NULL) {
        *out = c;
    } else {
        protobuf_c_message_free_unpacked(&c->base, NULL);
    }
    return 0;
}

static int cli_svc_push_networks(Swarm__TaskSpec *t, const struct cli_strlist *l, char *errmsg)
{
    for (size_t i = 0; i < l->n; i++) {
        Swarm__NetworkAttachmentConfig *c;
        if (cli_svc_parse_network(l->items[i], &c, errmsg) != 0) {
            return SWARM_EINVAL;
        }
        for (size_t k = 0; k < t->n_networks; k++) {
            if (strcmp(t->networks[k]->target, c->target) == 0) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "service is already attached to network %s",
                              c->target);
                protobuf_c_message_free_unpacked(&c->base, NULL);
                return SWARM_EINVAL;
            }
        }
        t->networks = cli_xrealloc(t->networks, (t->n_networks + 1) * sizeof *t->networks);
        t->networks[t->n_networks++] = c;
    }
    return 0;
}

/* --network-rm NETWORK: the attachments naming it (the caller has put the
 * network's ID in place of a name it resolved). */
static void cli_svc_remove_networks(Swarm__TaskSpec *t, const struct cli_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        for (size_t k = 0; k < t->n_networks;) {
            if (strcmp(t->networks[k]->target, l->items[i]) == 0) {
                protobuf_c_message_free_unpacked(&t->networks[k]->base, NULL);
                memmove(&t->networks[k], &t->networks[k + 1], (t->n_networks - k - 1) * sizeof *t->networks);
                t->n_networks--;
            } else {
                k++;
            }
        }
    }
}

static int cli_svc_new_fill(Swarm__ServiceSpec *s, const struct cli_flag *flags,
                            const struct cli_svc_opts *o, char *errmsg)
{
    Swarm__TaskSpec *t = cli_svc_task(s);
    char key[256];
    const char *value;
    cli_svc_set_str(&s->annotations->name, o->name != NULL ? o->name : "");
    for (size_t i = 0; i < o->label.n; i++) {
        if (cli_label_parse(o->label.items[i], key, sizeof key, &value) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "invalid label '%s': empty key", o->label.items[i]);
            return SWARM_EINVAL;
        }
        cli_labels_set(&s->annotations, key, value);
    }
    for (size_t i = 0; i < o->env.n; i++) {
        cli_svc_push_env(&t->container->env, &t->container->n_env, o->env.items[i]);
    }
    for (size_t i = 0; i < o->constraint.n; i++) {
        cli_svc_strv_push(&t->placement->constraints, &t->placement->n_constraints,
                          o->constraint.items[i]);
    }
    for (size_t i = 0; i < o->placement_pref.n; i++) {
        Swarm__PlacementPreference *p = cli_xrealloc(NULL, sizeof *p);
        swarm__placement_preference__init(p);
        cli_svc_set_str(&p->spread_descriptor, strchr(o->placement_pref.items[i], '=') + 1);
        t->placement->preferences = cli_xrealloc(
            t->placement->preferences, (t->placement->n_preferences + 1) * sizeof p);
        t->placement->preferences[t->placement->n_preferences++] = p;
    }
    cli_svc_push_ports(s->endpoint, &o->publish);
    if (cli_svc_push_networks(t, &o->network, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    if (cli_svc_ctr_apply(t, flags, o, false, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    return cli_svc_apply_common(s, flags, o, errmsg);
}

Swarm__ServiceSpec *cli_svc_spec_new(const struct cli_flag *flags,
                                     const struct cli_svc_opts *o,
                                     const char *image, char *const *args,
                                     size_t nargs, char *errmsg)
{
    const char *mode = o->mode != NULL ? o->mode : "replicated";
    if (strcmp(mode, "replicated") != 0 && strcmp(mode, "global") != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "Unknown mode: %s, only replicated and global supported", mode);
        return NULL;
    }
    Swarm__ServiceSpec *s = cli_xrealloc(NULL, sizeof *s);
    swarm__service_spec__init(s);
    CLI_SVC_ENSURE(s->annotations, swarm__annotations__init);
    Swarm__TaskSpec *t = cli_svc_task(s);
    if (strcmp(mode, "global") == 0) {
        s->mode_case = SWARM__SERVICE_SPEC__MODE_GLOBAL;
        CLI_SVC_ENSURE(s->global, swarm__global_service__init);
    } else {
        s->mode_case = SWARM__SERVICE_SPEC__MODE_REPLICATED;
        CLI_SVC_ENSURE(s->replicated, swarm__replicated_service__init);
        s->replicated->replicas = 1;
    }
    cli_svc_set_str(&t->container->image, image);
    for (size_t i = 0; i < nargs; i++) {
        cli_svc_strv_push(&t->container->args, &t->container->n_args, args[i]);
    }
    t->container->stop_grace_period_ms = CLI_SVC_STOP_GRACE_MS;
    t->restart->condition = SWARM__RESTART_CONDITION__RESTART_CONDITION_ANY;
    t->restart->delay_ms = CLI_SVC_RESTART_DELAY_MS;
    cli_svc_default_update_config(s->update);
    cli_svc_default_update_config(s->rollback);
    if (cli_svc_new_fill(s, flags, o, errmsg) != 0) {
        protobuf_c_message_free_unpacked(&s->base, NULL);
        return NULL;
    }
    return s;
}

int cli_svc_spec_scale(Swarm__ServiceSpec *spec, uint64_t replicas)
{
    if (spec->mode_case != SWARM__SERVICE_SPEC__MODE_REPLICATED || spec->replicated == NULL) {
        return -1;
    }
    spec->replicated->replicas = replicas;
    return 0;
}

/* ------------------------------------------------------------------ update */

static size_t cli_svc_env_key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq != NULL ? (size_t)(eq - kv) : strlen(kv);
}

static bool cli_svc_env_key_eq(const char *a, const char *b)
{
    size_t la = cli_svc_env_key_len(a);
    return la == cli_svc_env_key_len(b) && strncmp(a, b, la) == 0;
}

/* --env-add replaces a variable of the same name in place; --env-rm K
 * removes K whatever its value (docker/cli updateEnvironment). */
static void cli_svc_update_env(Swarm__ContainerSpec *c, const struct cli_svc_opts *o)
{
    for (size_t i = 0; i < o->env_add.n; i++) {
        const char *kv = o->env_add.items[i];
        size_t j = 0;
        while (j < c->n_env && !cli_svc_env_key_eq(c->env[j], kv)) {
            j++;
        }
        if (j < c->n_env) {
            cli_svc_strv_del(c->env, &c->n_env, j);
        }
        cli_svc_push_env(&c->env, &c->n_env, kv);
    }
    for (size_t i = 0; i < o->env_rm.n; i++) {
        for (size_t j = c->n_env; j-- > 0;) {
            if (cli_svc_env_key_eq(c->env[j], o->env_rm.items[i])) {
                cli_svc_strv_del(c->env, &c->n_env, j);
            }
        }
    }
}

static int cli_svc_strcmp_cb(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add, then remove (so rm wins), then sort: docker/cli
 * updatePlacementConstraints, which also keeps the list predictable. */
static void cli_svc_update_constraints(Swarm__Placement *p, const struct cli_svc_opts *o)
{
    for (size_t i = 0; i < o->constraint_add.n; i++) {
        bool dup = false;
        for (size_t j = 0; j < p->n_constraints && !dup; j++) {
            dup = strcmp(p->constraints[j], o->constraint_add.items[i]) == 0;
        }
        if (!dup) {
            cli_svc_strv_push(&p->constraints, &p->n_constraints, o->constraint_add.items[i]);
        }
    }
    for (size_t i = 0; i < o->constraint_rm.n; i++) {
        for (size_t j = p->n_constraints; j-- > 0;) {
            if (strcmp(p->constraints[j], o->constraint_rm.items[i]) == 0) {
                cli_svc_strv_del(p->constraints, &p->n_constraints, j);
            }
        }
    }
    if (o->constraint_add.n + o->constraint_rm.n > 0 && p->n_constraints > 1) {
        qsort(p->constraints, p->n_constraints, sizeof *p->constraints, cli_svc_strcmp_cb);
    }
}

static int cli_svc_update_labels(Swarm__ServiceSpec *s, const struct cli_svc_opts *o,
                                 char *errmsg)
{
    char key[256];
    const char *value;
    for (size_t i = 0; i < o->label_add.n; i++) {
        if (cli_label_parse(o->label_add.items[i], key, sizeof key, &value) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "invalid label '%s': empty key", o->label_add.items[i]);
            return SWARM_EINVAL;
        }
        cli_labels_set(&s->annotations, key, value);
    }
    for (size_t i = 0; i < o->label_rm.n; i++) {
        cli_labels_remove(s->annotations, o->label_rm.items[i]); /* absent: fine */
    }
    return 0;
}

/* --publish-rm TARGET[/PROTOCOL]; --publish-add replaces a port with the same
 * published port and protocol (or target, when none is published). */
static int cli_svc_update_ports(Swarm__EndpointSpec *e, const struct cli_svc_opts *o,
                                char *errmsg)
{
    for (size_t i = 0; i < o->publish_rm.n; i++) {
        Swarm__PortConfig *rm;
        if (cli_svc_parse_port(o->publish_rm.items[i], &rm, errmsg) != 0) {
            return SWARM_EINVAL;
        }
        bool any_proto = strchr(o->publish_rm.items[i], '/') == NULL &&
                         strstr(o->publish_rm.items[i], "protocol=") == NULL;
        for (size_t j = e->n_ports; j-- > 0;) {
            Swarm__PortConfig *p = e->ports[j];
            if (p->target_port == rm->target_port &&
                (any_proto || strcmp(p->protocol, rm->protocol) == 0)) {
                protobuf_c_message_free_unpacked(&p->base, NULL);
                memmove(&e->ports[j], &e->ports[j + 1], (e->n_ports - j - 1) * sizeof p);
                e->n_ports--;
            }
        }
        protobuf_c_message_free_unpacked(&rm->base, NULL);
    }
    for (size_t i = 0; i < o->publish_add.n; i++) {
        const Swarm__PortConfig *add = o->publish_add.items[i];
        for (size_t j = e->n_ports; j-- > 0;) {
            Swarm__PortConfig *p = e->ports[j];
            bool same = add->published_port != 0 ? p->published_port == add->published_port
                                                 : p->target_port == add->target_port;
            if (same && strcmp(p->protocol, add->protocol) == 0) {
                protobuf_c_message_free_unpacked(&p->base, NULL);
                memmove(&e->ports[j], &e->ports[j + 1], (e->n_ports - j - 1) * sizeof p);
                e->n_ports--;
            }
        }
    }
    cli_svc_push_ports(e, &o->publish_add);
    return 0;
}

static int cli_svc_update_args(Swarm__ContainerSpec *c, const char *line, char *errmsg)
{
    char **words;
    size_t n;
    if (cli_svc_split_words(line, &words, &n, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    for (size_t i = 0; i < c->n_args; i++) {
        free(c->args[i]);
    }
    free(c->args);
    c->args = words;
    c->n_args = n;
    return 0;
}

int cli_svc_spec_update(Swarm__ServiceSpec *s, const struct cli_flag *flags,
                        const struct cli_svc_opts *o, char *errmsg)
{
    Swarm__TaskSpec *t = cli_svc_task(s);
    if (s->mode_case == SWARM__SERVICE_SPEC__MODE_REPLICATED) {
        CLI_SVC_ENSURE(s->replicated, swarm__replicated_service__init);
    }
    if (cli_svc_apply_common(s, flags, o, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    if (cli_svc_changed(flags, "image")) {
        if (*o->image == '\0') {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "image cannot be empty");
            return SWARM_EINVAL;
        }
        cli_svc_set_str(&t->container->image, o->image);
    }
    if (cli_svc_changed(flags, "args") && cli_svc_update_args(t->container, o->args, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    if (cli_svc_ctr_apply(t, flags, o, true, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    cli_svc_update_env(t->container, o);
    cli_svc_update_constraints(t->placement, o);
    if (cli_svc_update_labels(s, o, errmsg) != 0 ||
        cli_svc_update_ports(s->endpoint, o, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    cli_svc_remove_networks(t, &o->network_rm);
    if (cli_svc_push_networks(t, &o->network_add, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    if (o->force) {
        t->force_update++;
    }
    return 0;
}
