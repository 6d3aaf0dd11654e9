/* See specvalid.h. Each check returns SWARM_EINVAL with one message; the
 * first failure wins, in the order of the spec's fields (annotations, task,
 * mode, update, rollback, endpoint, size). Strings quoted in a message are
 * escaped and cut short, so a message never carries what it refuses. */
#include "specvalid.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "constraint.h"
#include "err.h"
#include "escape.h"
#include "runtime.h"

#define SV_FAIL(...)                                           \
    do {                                                       \
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, __VA_ARGS__); \
        return SWARM_EINVAL;                                   \
    } while (0)

#define SV_TRY(expr)            \
    do {                        \
        int sv_rv_ = (expr);    \
        if (sv_rv_ != 0) {      \
            return sv_rv_;      \
        }                       \
    } while (0)

/* Go's time.Duration.String() of the one maximum we quote. */
#define SV_MAX_DURATION_TEXT "8760h0m0s"

static const char *sv_str(const char *s)
{
    return s != NULL ? s : "";
}

/* A short, escaped copy of s for a message. */
static const char *sv_quote(const char *s, char *buf, size_t size)
{
    esc_str(sv_str(s), buf, size);
    if (strlen(sv_str(s)) > 48 && size > 52) {
        esc_str(sv_str(s), buf, 45);
        strcat(buf, "...");
    }
    return buf;
}

static bool sv_has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)sv_str(s); *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return true;
        }
    }
    return false;
}

static int sv_duration(int64_t ms, const char *what, const char *neg_msg, char *errmsg)
{
    if (ms < 0) {
        SV_FAIL("%s", neg_msg);
    }
    if (ms > SPEC_MAX_DURATION_MS) {
        SV_FAIL("%s cannot be longer than " SV_MAX_DURATION_TEXT, what);
    }
    return 0;
}

/* A list of strings: at most max_n entries of at most max_len bytes. */
static int sv_strings(char *const *items, size_t n, size_t max_n, size_t max_len,
                      const char *what, char *errmsg)
{
    if (n > max_n) {
        SV_FAIL("%s: %zu entries, the maximum is %zu", what, n, max_n);
    }
    for (size_t i = 0; i < n; i++) {
        if (strlen(sv_str(items[i])) > max_len) {
            SV_FAIL("%s: an entry is longer than %zu bytes", what, max_len);
        }
    }
    return 0;
}

static int sv_labels(const Swarm__Annotations *a, char *errmsg)
{
    char q[64];
    if (a == NULL) {
        return 0;
    }
    if (a->n_labels > SPEC_MAX_LABELS) {
        SV_FAIL("labels: %zu entries, the maximum is %d", a->n_labels, SPEC_MAX_LABELS);
    }
    for (size_t i = 0; i < a->n_labels; i++) {
        const char *k = a->labels[i] != NULL ? a->labels[i]->key : NULL;
        const char *v = a->labels[i] != NULL ? a->labels[i]->value : NULL;
        if (k == NULL || k[0] == '\0') {
            SV_FAIL("label key must not be empty");
        }
        if (strlen(k) > SPEC_MAX_LABEL_KEY || sv_has_control(k)) {
            SV_FAIL("invalid label key \"%s\": printable characters, %d bytes at most",
                    sv_quote(k, q, sizeof q), SPEC_MAX_LABEL_KEY);
        }
        if (strlen(sv_str(v)) > SPEC_MAX_LABEL_VALUE) {
            SV_FAIL("label %s: the value is longer than %d bytes", sv_quote(k, q, sizeof q),
                    SPEC_MAX_LABEL_VALUE);
        }
    }
    return 0;
}

/* swarmkit's isValidDNSName: ^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$ */
static bool sv_dns_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1])) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isascii((unsigned char)s[i]) ||
            (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')) {
            return false;
        }
    }
    return true;
}

static int sv_service_name(const Swarm__Annotations *a, char *errmsg)
{
    if (a == NULL || a->name == NULL || a->name[0] == '\0') {
        return 0; /* the manager names it */
    }
    if (!sv_dns_name(a->name)) {
        SV_FAIL("name must be valid as a DNS name component");
    }
    if (strlen(a->name) > SPEC_MAX_NAME) {
        SV_FAIL("name must be 63 characters or fewer");
    }
    return 0;
}

/* ------------------------------------------------------------ task spec */

static int sv_health(const Swarm__HealthConfig *h, char *errmsg)
{
    if (h == NULL) {
        return 0;
    }
    SV_TRY(sv_strings(h->test, h->n_test, SPEC_MAX_ARGS, SPEC_MAX_ARG,
                      "ContainerSpec: Test in HealthConfig", errmsg));
    SV_TRY(sv_duration(h->interval_ms, "ContainerSpec: Interval in HealthConfig",
                       "ContainerSpec: Interval in HealthConfig cannot be less than 1ms", errmsg));
    SV_TRY(sv_duration(h->timeout_ms, "ContainerSpec: Timeout in HealthConfig",
                       "ContainerSpec: Timeout in HealthConfig cannot be less than 1ms", errmsg));
    SV_TRY(sv_duration(h->start_period_ms, "ContainerSpec: StartPeriod in HealthConfig",
                       "ContainerSpec: StartPeriod in HealthConfig cannot be less than 1ms",
                       errmsg));
    if (h->retries < 0) {
        SV_FAIL("ContainerSpec: Retries in HealthConfig cannot be negative");
    }
    if (h->retries > SPEC_MAX_HEALTH_RETRIES) {
        SV_FAIL("ContainerSpec: Retries in HealthConfig cannot be more than %d",
                SPEC_MAX_HEALTH_RETRIES);
    }
    return 0;
}

static int sv_container(const Swarm__ContainerSpec *c, char *errmsg)
{
    if (c == NULL) {
        SV_FAIL("ContainerSpec: a program to run must be given");
    }
    if (c->image == NULL || c->image[0] == '\0') {
        SV_FAIL("ContainerSpec: image reference must be provided");
    }
    if (strlen(c->image) > SPEC_MAX_IMAGE) {
        SV_FAIL("ContainerSpec: image reference is longer than %d bytes", SPEC_MAX_IMAGE);
    }
    if (sv_has_control(c->image)) {
        SV_FAIL("ContainerSpec: image reference must not hold control characters");
    }
    SV_TRY(sv_strings(c->args, c->n_args, SPEC_MAX_ARGS, SPEC_MAX_ARG, "ContainerSpec: args",
                      errmsg));
    SV_TRY(sv_strings(c->env, c->n_env, SPEC_MAX_ARGS, SPEC_MAX_ARG, "ContainerSpec: env",
                      errmsg));
    for (size_t i = 0; i < c->n_env; i++) {
        if (c->env[i] == NULL || c->env[i][0] == '=' || c->env[i][0] == '\0') {
            SV_FAIL("ContainerSpec: env: a variable name must be given (K=V)");
        }
    }
    if (strlen(sv_str(c->dir)) > SPEC_MAX_PATH || sv_has_control(c->dir)) {
        SV_FAIL("ContainerSpec: workdir must be printable and %d bytes at most", SPEC_MAX_PATH);
    }
    SV_TRY(sv_duration(c->stop_grace_period_ms, "ContainerSpec: stop grace period",
                       "ContainerSpec: stop grace period cannot be negative", errmsg));
    return sv_health(c->healthcheck, errmsg);
}

static int sv_resources(const Swarm__ResourceRequirements *r, char *errmsg)
{
    const Swarm__Resources *rs[2] = {r ? r->limits : NULL, r ? r->reservations : NULL};
    for (int i = 0; i < 2; i++) {
        if (rs[i] == NULL) {
            continue;
        }
        if (rs[i]->nano_cpus < 0 || rs[i]->memory_bytes < 0) {
            SV_FAIL("resources must not be negative");
        }
        if (rs[i]->nano_cpus > SPEC_MAX_NANO_CPUS) {
            SV_FAIL("invalid cpu value %g: Must be at most %g", (double)rs[i]->nano_cpus / 1e9,
                    (double)SPEC_MAX_NANO_CPUS / 1e9);
        }
    }
    return 0;
}

static int sv_restart(const Swarm__RestartPolicy *r, char *errmsg)
{
    if (r == NULL) {
        return 0;
    }
    if ((int)r->condition < 0 ||
        r->condition > SWARM__RESTART_CONDITION__RESTART_CONDITION_ON_FAILURE) {
        SV_FAIL("TaskSpec: invalid restart condition %d", (int)r->condition);
    }
    SV_TRY(sv_duration(r->delay_ms, "TaskSpec: restart-delay",
                       "TaskSpec: restart-delay cannot be negative", errmsg));
    return sv_duration(r->window_ms, "TaskSpec: restart-window",
                       "TaskSpec: restart-window cannot be negative", errmsg);
}

static int sv_placement(const Swarm__Placement *p, char *errmsg)
{
    struct constraint *cs = NULL;
    char q[64];
    if (p == NULL) {
        return 0;
    }
    SV_TRY(sv_strings(p->constraints, p->n_constraints, SPEC_MAX_CONSTRAINTS,
                      SPEC_MAX_CONSTRAINT, "Placement: constraints", errmsg));
    for (size_t i = 0; i < p->n_constraints; i++) {
        if (sv_has_control(p->constraints[i])) {
            SV_FAIL("invalid constraint \"%s\": control characters are not allowed",
                    sv_quote(p->constraints[i], q, sizeof q));
        }
    }
    if (constraint_parse_all(p->constraints, p->n_constraints, &cs, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    free(cs);
    if (p->n_preferences > SPEC_MAX_PREFERENCES) {
        SV_FAIL("Placement: %zu preferences, the maximum is %d", p->n_preferences,
                SPEC_MAX_PREFERENCES);
    }
    for (size_t i = 0; i < p->n_preferences; i++) {
        const char *d = p->preferences[i] != NULL ? p->preferences[i]->spread_descriptor : NULL;
        if (d == NULL || strncmp(d, "node.labels.", 12) != 0 || d[12] == '\0' ||
            strlen(d) > 12 + SPEC_MAX_LABEL_KEY || sv_has_control(d)) {
            SV_FAIL("invalid placement preference \"%s\": only spread over "
                    "node.labels.<key> is supported", sv_quote(d, q, sizeof q));
        }
    }
    if (p->max_replicas > SPEC_MAX_REPLICAS) {
        SV_FAIL("invalid replicas-max-per-node %" PRIu64 ": the maximum is %d",
                p->max_replicas, SPEC_MAX_REPLICAS);
    }
    return 0;
}

/* A local volume name as Docker's local driver takes it. */
static bool sv_volume_name(const char *s)
{
    if (!isalnum((unsigned char)s[0])) {
        return false;
    }
    for (size_t i = 1; s[i] != '\0'; i++) {
        if (!isalnum((unsigned char)s[i]) && strchr("_.-", s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

/* swarmkit's and the worker's checks of mounts (validateMounts), same words. */
static int sv_mounts(const Swarm__ContainerSpec *c, char *errmsg)
{
    char q[64];
    if (c->n_mounts > SPEC_MAX_MOUNTS) {
        SV_FAIL("ContainerSpec: %zu mounts, the maximum is %d", c->n_mounts, SPEC_MAX_MOUNTS);
    }
    for (size_t i = 0; i < c->n_mounts; i++) {
        const Swarm__Mount *m = c->mounts[i];
        const char *type = m != NULL ? sv_str(m->type) : "";
        const char *src = m != NULL ? sv_str(m->source) : "", *dst = m != NULL ? sv_str(m->target) : "";
        if (strlen(src) > SPEC_MAX_PATH || strlen(dst) > SPEC_MAX_PATH || sv_has_control(src) ||
            sv_has_control(dst) || sv_has_control(type)) {
            SV_FAIL("invalid mount: paths must be printable and %d bytes at most", SPEC_MAX_PATH);
        }
        if (dst[0] != '/') {
            SV_FAIL("invalid mount target, must be an absolute path: %s", sv_quote(dst, q, sizeof q));
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sv_str(c->mounts[j]->target), dst) == 0) {
                SV_FAIL("invalid mount target, duplicate mount point: %s", sv_quote(dst, q, sizeof q));
            }
        }
        if (strcmp(type, "bind") == 0) {
            if (src[0] != '/') {
                SV_FAIL("invalid bind mount source, must be an absolute path: %s",
                        sv_quote(src, q, sizeof q));
            }
        } else if (strcmp(type, "volume") == 0) {
            if (src[0] == '/') {
                SV_FAIL("invalid volume mount source, must not be an absolute path: %s",
                        sv_quote(src, q, sizeof q));
            }
            if (src[0] == '\0') {
                SV_FAIL("invalid volume mount source: a volume name must be given "
                        "(anonymous volumes are not supported)");
            }
            if (strlen(src) < 2 || !sv_volume_name(src)) {
                SV_FAIL("\"%s\" includes invalid characters for a local volume name, only "
                        "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a "
                        "host directory, use absolute path", sv_quote(src, q, sizeof q));
            }
        } else if (strcmp(type, "tmpfs") == 0) {
            if (src[0] != '\0') {
                SV_FAIL("invalid tmpfs source, source must be empty");
            }
            if (m->tmpfs_size_bytes < 0) {
                SV_FAIL("invalid tmpfs size: must not be negative");
            }
        } else {
            SV_FAIL("invalid mount type: %s", sv_quote(type, q, sizeof q));
        }
    }
    return 0;
}

static int sv_caps(char *const *caps, size_t n, char *errmsg)
{
    char q[64];
    SV_TRY(sv_strings(caps, n, CAPS_COUNT + 1, 64, "ContainerSpec: capabilities", errmsg));
    for (size_t i = 0; i < n; i++) {
        if (caps_lookup(caps[i]) == -1) {
            SV_FAIL("unknown capability: \"%s\"", sv_quote(caps[i], q, sizeof q));
        }
    }
    return 0;
}

/* The runtime and what only the container runtime can do. */
static int sv_runtime(const Swarm__TaskSpec *t, char *errmsg)
{
    const Swarm__ContainerSpec *c = t->container;
    char q[64];
    if (t->runtime != NULL && t->runtime[0] != '\0' && !runtime_is_known(t->runtime)) {
        SV_FAIL("invalid runtime \"%s\": must be \"process\" or \"container\"",
                sv_quote(t->runtime, q, sizeof q));
    }
    SV_TRY(sv_mounts(c, errmsg));
    SV_TRY(sv_caps(c->cap_add, c->n_cap_add, errmsg));
    SV_TRY(sv_caps(c->cap_drop, c->n_cap_drop, errmsg));
    SV_TRY(sv_strings(c->command, c->n_command, SPEC_MAX_ARGS, SPEC_MAX_ARG,
                      "ContainerSpec: entrypoint", errmsg));
    if (strlen(sv_str(c->stop_signal)) > 32 || sv_has_control(c->stop_signal)) {
        SV_FAIL("invalid stop signal \"%s\"", sv_quote(c->stop_signal, q, sizeof q));
    }
    if (strcmp(runtime_resolve(t->runtime, c->image), RUNTIME_PROCESS) != 0) {
        return 0;
    }
    const char *what = c->n_mounts > 0 ? "--mount" : c->n_command > 0 ? "--entrypoint"
                       : c->read_only ? "--read-only" : c->init ? "--init"
                       : c->n_cap_add > 0 ? "--cap-add" : c->n_cap_drop > 0 ? "--cap-drop"
                       : sv_str(c->stop_signal)[0] != '\0' ? "--stop-signal" : NULL;
    if (what != NULL) {
        SV_FAIL("%s needs the container runtime: image \"%s\" runs as a program on the host "
                "(use an image reference with a tag, or --runtime container)",
                what, sv_quote(c->image, q, sizeof q));
    }
    return 0;
}

static int sv_task(const Swarm__TaskSpec *t, char *errmsg)
{
    if (t == NULL) {
        SV_FAIL("ContainerSpec: a program to run must be given");
    }
    SV_TRY(sv_container(t->container, errmsg));
    SV_TRY(sv_runtime(t, errmsg));
    SV_TRY(sv_resources(t->resources, errmsg));
    SV_TRY(sv_restart(t->restart, errmsg));
    return sv_placement(t->placement, errmsg);
}

/* --------------------------------------------------------- service spec */

static int sv_update(const Swarm__UpdateConfig *u, const char *kind, char *errmsg)
{
    char what[48], neg[96];
    if (u == NULL) {
        return 0;
    }
    if (u->parallelism > SPEC_MAX_REPLICAS) {
        SV_FAIL("TaskSpec: %s-parallelism cannot be more than %d", kind, SPEC_MAX_REPLICAS);
    }
    snprintf(what, sizeof what, "TaskSpec: %s-delay", kind);
    snprintf(neg, sizeof neg, "TaskSpec: %s-delay cannot be negative", kind);
    SV_TRY(sv_duration(u->delay_ms, what, neg, errmsg));
    snprintf(what, sizeof what, "TaskSpec: %s-monitor", kind);
    snprintf(neg, sizeof neg, "TaskSpec: %s-monitor cannot be negative", kind);
    SV_TRY(sv_duration(u->monitor_ms, what, neg, errmsg));
    if ((int)u->failure_action < 0 ||
        u->failure_action > SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_ROLLBACK) {
        SV_FAIL("TaskSpec: invalid %s-failure-action %d", kind, (int)u->failure_action);
    }
    if ((int)u->order < 0 || u->order > SWARM__UPDATE_ORDER__UPDATE_ORDER_START_FIRST) {
        SV_FAIL("TaskSpec: invalid %s-order %d", kind, (int)u->order);
    }
    if (!(u->max_failure_ratio >= 0.0f && u->max_failure_ratio <= 1.0f)) { /* NaN too */
        SV_FAIL("TaskSpec: %s-maxfailureratio cannot be less than 0 or bigger than 1", kind);
    }
    return 0;
}

static int sv_endpoint(const Swarm__EndpointSpec *e, char *errmsg)
{
    char q[64];
    if (e == NULL) {
        return 0;
    }
    if (e->n_ports > SPEC_MAX_PORTS) {
        SV_FAIL("EndpointSpec: %zu ports, the maximum is %d", e->n_ports, SPEC_MAX_PORTS);
    }
    for (size_t i = 0; i < e->n_ports; i++) {
        const Swarm__PortConfig *p = e->ports[i];
        const char *proto = p != NULL ? sv_str(p->protocol) : "";
        const char *mode = p != NULL ? sv_str(p->publish_mode) : "";
        if (p == NULL || p->target_port == 0 || p->target_port > 65535 ||
            p->published_port > 65535) {
            SV_FAIL("EndpointSpec: invalid port (target 1-65535, published 0-65535)");
        }
        if (proto[0] != '\0' && strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 &&
            strcmp(proto, "sctp") != 0) {
            SV_FAIL("invalid protocol value %s", sv_quote(proto, q, sizeof q));
        }
        if (mode[0] != '\0' && strcmp(mode, "ingress") != 0 && strcmp(mode, "host") != 0) {
            SV_FAIL("invalid publish mode value %s", sv_quote(mode, q, sizeof q));
        }
        if (strlen(sv_str(p->name)) > SPEC_MAX_NAME || sv_has_control(p->name)) {
            SV_FAIL("EndpointSpec: a port name must be printable and %d bytes at most",
                    SPEC_MAX_NAME);
        }
    }
    return 0;
}

int spec_validate_service(const Swarm__ServiceSpec *spec, char *errmsg)
{
    size_t size;
    if (spec == NULL) {
        SV_FAIL("a service spec must be provided");
    }
    SV_TRY(sv_service_name(spec->annotations, errmsg));
    SV_TRY(sv_labels(spec->annotations, errmsg));
    SV_TRY(sv_task(spec->task, errmsg));
    if (spec->mode_case == SWARM__SERVICE_SPEC__MODE_REPLICATED && spec->replicated != NULL &&
        spec->replicated->replicas > SPEC_MAX_REPLICAS) {
        SV_FAIL("invalid replicas %" PRIu64 ": the maximum is %d replicas per service",
                spec->replicated->replicas, SPEC_MAX_REPLICAS);
    }
    SV_TRY(sv_update(spec->update, "update", errmsg));
    SV_TRY(sv_update(spec->rollback, "rollback", errmsg));
    SV_TRY(sv_endpoint(spec->endpoint, errmsg));
    size = swarm__service_spec__get_packed_size(spec);
    if (size > SPEC_MAX_SERVICE_SPEC) {
        SV_FAIL("service spec is %zu bytes: the maximum is %d", size, SPEC_MAX_SERVICE_SPEC);
    }
    if (spec->mode_case == SWARM__SERVICE_SPEC__MODE_REPLICATED && spec->replicated != NULL) {
        uint64_t per = swarm__task_spec__get_packed_size(spec->task);
        uint64_t most = (uint64_t)SPEC_MAX_SERVICE_TASKS_BYTES / (per > 0 ? per : 1);
        if (spec->replicated->replicas > most) {
            SV_FAIL("invalid replicas %" PRIu64 ": with a task spec of %" PRIu64
                    " bytes, the maximum is %" PRIu64 " replicas (1 GiB of tasks per service)",
                    spec->replicated->replicas, per, most);
        }
    }
    return 0;
}

/* --------------------------------------------------------- cluster, node */

int spec_validate_cluster(const Swarm__ClusterSpec *spec, char *errmsg)
{
    if (spec == NULL) {
        return 0;
    }
    SV_TRY(sv_labels(spec->annotations, errmsg));
    if (spec->orchestration != NULL) {
        int64_t h = spec->orchestration->task_history_retention_limit;
        if (h < 0) {
            SV_FAIL("task history retention limit must be >= 0");
        }
        if (h > SPEC_MAX_HISTORY) {
            SV_FAIL("task history retention limit must be at most %d", SPEC_MAX_HISTORY);
        }
    }
    if (spec->dispatcher != NULL && spec->dispatcher->heartbeat_period_ms != 0) {
        int64_t hb = spec->dispatcher->heartbeat_period_ms;
        if (hb < 100) {
            SV_FAIL("dispatcher heartbeat period must be at least 100ms");
        }
        if (hb > SPEC_MAX_HEARTBEAT_MS) {
            SV_FAIL("dispatcher heartbeat period must be at most 1h0m0s");
        }
    }
    if (spec->raft != NULL) {
        const Swarm__RaftConfig *r = spec->raft;
        if (r->tick_ms != 0 && (r->tick_ms < 10 || r->tick_ms > 60000)) {
            SV_FAIL("raft tick must be between 10ms and 1m0s");
        }
        if (r->election_tick > 10000 || r->heartbeat_tick > 10000) {
            SV_FAIL("raft election and heartbeat ticks must be at most 10000");
        }
        if (r->keep_old_snapshots > 100) {
            SV_FAIL("raft keep-old-snapshots must be at most 100");
        }
    }
    return 0;
}

int spec_validate_availability(int availability, char *errmsg)
{
    if (availability < 0 || availability > SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN) {
        SV_FAIL("invalid availability %d", availability);
    }
    return 0;
}

int spec_validate_node(const Swarm__NodeSpec *spec, char *errmsg)
{
    if (spec == NULL) {
        SV_FAIL("node spec must be provided");
    }
    SV_TRY(spec_validate_availability((int)spec->availability, errmsg));
    if ((int)spec->desired_role < 0 || spec->desired_role > SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        SV_FAIL("invalid role %d", (int)spec->desired_role);
    }
    return sv_labels(spec->annotations, errmsg);
}

static bool sv_printable_word(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
            return false;
        }
    }
    return true;
}

int spec_validate_hostname(const char *hostname, char *errmsg)
{
    char q[64];
    if (hostname == NULL || hostname[0] == '\0' ||
        !sv_printable_word(hostname, SPEC_MAX_HOSTNAME)) {
        SV_FAIL("invalid hostname \"%s\": printable ASCII without spaces, 1 to %d characters",
                sv_quote(hostname, q, sizeof q), SPEC_MAX_HOSTNAME);
    }
    return 0;
}

int spec_validate_node_description(const Swarm__NodeDescription *d, char *errmsg)
{
    char q[64];
    if (d == NULL) {
        SV_FAIL("a node description must be provided");
    }
    SV_TRY(spec_validate_hostname(d->hostname, errmsg));
    const char *fields[3] = {d->platform ? d->platform->os : NULL,
                             d->platform ? d->platform->architecture : NULL, d->engine_version};
    for (int i = 0; i < 3; i++) {
        if (!sv_printable_word(sv_str(fields[i]), SPEC_MAX_NODE_FIELD)) {
            SV_FAIL("invalid node description: \"%s\" is not a printable word of %d "
                    "characters at most", sv_quote(fields[i], q, sizeof q), SPEC_MAX_NODE_FIELD);
        }
    }
    if (d->resources != NULL && (d->resources->nano_cpus < 0 || d->resources->memory_bytes < 0)) {
        SV_FAIL("invalid node description: resources must not be negative");
    }
    if (d->n_runtimes > SPEC_MAX_NODE_RUNTIMES) {
        SV_FAIL("invalid node description: %zu runtimes, the maximum is %d", d->n_runtimes,
                SPEC_MAX_NODE_RUNTIMES);
    }
    for (size_t i = 0; i < d->n_runtimes; i++) {
        if (!sv_printable_word(sv_str(d->runtimes[i]), SPEC_MAX_NODE_FIELD)) {
            SV_FAIL("invalid node description: runtime \"%s\" is not a printable word of %d "
                    "characters at most", sv_quote(d->runtimes[i], q, sizeof q),
                    SPEC_MAX_NODE_FIELD);
        }
    }
    if (strlen(sv_str(d->network_error)) > SPEC_MAX_NETWORK_ERROR) {
        SV_FAIL("invalid node description: the network error is longer than %d bytes",
                SPEC_MAX_NETWORK_ERROR);
    }
    return 0;
}
