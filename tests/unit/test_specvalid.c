/* Bounds on user- and node-set fields (specvalid.h), the wire check for NUL
 * in strings (pbwire.h), and the escaping of untrusted strings (escape.h). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "escape.h"
#include "objects.pb-c.h"
#include "control.pb-c.h"
#include "pbwire.h"
#include "specvalid.h"
#include "test.h"

/* A spec as `swarmctl service create --name web sleep 1000` sends it. */
struct spec_parts {
    Swarm__ServiceSpec spec;
    Swarm__Annotations ann;
    Swarm__TaskSpec task;
    Swarm__ContainerSpec c;
    Swarm__HealthConfig health;
    Swarm__RestartPolicy restart;
    Swarm__Placement placement;
    Swarm__ReplicatedService rep;
    Swarm__UpdateConfig update, rollback;
    char *args[1];
};

static void spec_init(struct spec_parts *p)
{
    memset(p, 0, sizeof *p);
    swarm__service_spec__init(&p->spec);
    swarm__annotations__init(&p->ann);
    swarm__task_spec__init(&p->task);
    swarm__container_spec__init(&p->c);
    swarm__health_config__init(&p->health);
    swarm__restart_policy__init(&p->restart);
    swarm__placement__init(&p->placement);
    swarm__replicated_service__init(&p->rep);
    swarm__update_config__init(&p->update);
    swarm__update_config__init(&p->rollback);
    p->ann.name = (char *)"web";
    p->c.image = (char *)"sleep";
    p->args[0] = (char *)"1000";
    p->c.args = p->args;
    p->c.n_args = 1;
    p->c.stop_grace_period_ms = 10000;
    p->c.healthcheck = &p->health;
    p->restart.delay_ms = 5000;
    p->task.container = &p->c;
    p->task.restart = &p->restart;
    p->task.placement = &p->placement;
    p->rep.replicas = 1;
    p->update.parallelism = 1;
    p->update.monitor_ms = 5000;
    p->rollback = p->update;
    p->spec.annotations = &p->ann;
    p->spec.task = &p->task;
    p->spec.mode_case = SWARM__SERVICE_SPEC__MODE_REPLICATED;
    p->spec.replicated = &p->rep;
    p->spec.update = &p->update;
    p->spec.rollback = &p->rollback;
}

#define ASSERT_REFUSED(spec, text)                                          \
    do {                                                                    \
        char m_[SWARM_ERRMSG_SIZE] = "";                                    \
        ASSERT_INT_EQ(spec_validate_service((spec), m_), SWARM_EINVAL);     \
        ASSERT_STR_EQ(m_, (text));                                          \
    } while (0)

TEST(plain_spec_is_accepted)
{
    struct spec_parts p;
    char m[SWARM_ERRMSG_SIZE] = "";
    spec_init(&p);
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), 0);
    p.rep.replicas = SPEC_MAX_REPLICAS;
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), 0);
    p.spec.mode_case = SWARM__SERVICE_SPEC__MODE__NOT_SET; /* the manager fills it in */
    p.ann.name = (char *)"";                              /* and names it */
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), 0);
}

TEST(replicas_have_a_maximum)
{
    struct spec_parts p;
    spec_init(&p);
    p.rep.replicas = UINT64_MAX;
    ASSERT_REFUSED(&p.spec,
                   "invalid replicas 18446744073709551615: the maximum is 100000 replicas per "
                   "service");
    p.rep.replicas = 1000000;
    ASSERT_REFUSED(&p.spec, "invalid replicas 1000000: the maximum is 100000 replicas per service");
    p.rep.replicas = SPEC_MAX_REPLICAS + 1;
    ASSERT_REFUSED(&p.spec, "invalid replicas 100001: the maximum is 100000 replicas per service");
    p.rep.replicas = 1;
    p.placement.max_replicas = UINT64_MAX;
    ASSERT_REFUSED(&p.spec,
                   "invalid replicas-max-per-node 18446744073709551615: the maximum is 100000");
}

TEST(durations_are_not_negative_and_bounded)
{
    struct spec_parts p;
    spec_init(&p);
    p.health.interval_ms = -1;
    ASSERT_REFUSED(&p.spec, "ContainerSpec: Interval in HealthConfig cannot be less than 1ms");
    p.health.interval_ms = SPEC_MAX_DURATION_MS + 1;
    ASSERT_REFUSED(&p.spec,
                   "ContainerSpec: Interval in HealthConfig cannot be longer than 8760h0m0s");
    p.health.interval_ms = SPEC_MAX_DURATION_MS;
    char m[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), 0);
    p.health.timeout_ms = -5;
    ASSERT_REFUSED(&p.spec, "ContainerSpec: Timeout in HealthConfig cannot be less than 1ms");
    p.health.timeout_ms = 0;
    p.health.start_period_ms = INT64_MIN;
    ASSERT_REFUSED(&p.spec, "ContainerSpec: StartPeriod in HealthConfig cannot be less than 1ms");
    p.health.start_period_ms = 0;
    p.health.retries = -1;
    ASSERT_REFUSED(&p.spec, "ContainerSpec: Retries in HealthConfig cannot be negative");
    p.health.retries = 3;
    p.update.delay_ms = -1;
    ASSERT_REFUSED(&p.spec, "TaskSpec: update-delay cannot be negative");
    p.update.delay_ms = 0;
    p.update.monitor_ms = INT64_MAX;
    ASSERT_REFUSED(&p.spec, "TaskSpec: update-monitor cannot be longer than 8760h0m0s");
    p.update.monitor_ms = 0;
    p.rollback.delay_ms = -1;
    ASSERT_REFUSED(&p.spec, "TaskSpec: rollback-delay cannot be negative");
    p.rollback.delay_ms = 0;
    p.restart.delay_ms = -1;
    ASSERT_REFUSED(&p.spec, "TaskSpec: restart-delay cannot be negative");
    p.restart.delay_ms = 0;
    p.restart.window_ms = -1;
    ASSERT_REFUSED(&p.spec, "TaskSpec: restart-window cannot be negative");
    p.restart.window_ms = 0;
    p.c.stop_grace_period_ms = -1;
    ASSERT_REFUSED(&p.spec, "ContainerSpec: stop grace period cannot be negative");
}

TEST(enums_and_ratios_in_range)
{
    struct spec_parts p;
    spec_init(&p);
    p.restart.condition = 7;
    ASSERT_REFUSED(&p.spec, "TaskSpec: invalid restart condition 7");
    p.restart.condition = 0;
    p.update.failure_action = 3;
    ASSERT_REFUSED(&p.spec, "TaskSpec: invalid update-failure-action 3");
    p.update.failure_action = 0;
    p.rollback.order = 2;
    ASSERT_REFUSED(&p.spec, "TaskSpec: invalid rollback-order 2");
    p.rollback.order = 0;
    p.update.max_failure_ratio = NAN;
    ASSERT_REFUSED(&p.spec,
                   "TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1");
    p.update.max_failure_ratio = 1.5f;
    ASSERT_REFUSED(&p.spec,
                   "TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1");
}

TEST(names_are_dns_labels)
{
    struct spec_parts p;
    spec_init(&p);
    const char *bad[] = {"-web", "web-", "we b", "web.1", "web\x1b[31m", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p.ann.name = (char *)bad[i];
        ASSERT_REFUSED(&p.spec, "name must be valid as a DNS name component");
    }
    char long_name[80];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    p.ann.name = long_name;
    ASSERT_REFUSED(&p.spec, "name must be 63 characters or fewer");
    long_name[63] = '\0';
    char m[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), 0);
    p.ann.name = (char *)"my_stack_web-1";
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), 0);
}

TEST(strings_and_lists_are_bounded)
{
    struct spec_parts p;
    spec_init(&p);
    char *image = malloc(1 << 20);
    memset(image, 'x', (1 << 20) - 1);
    image[(1 << 20) - 1] = '\0';
    p.c.image = image;
    ASSERT_REFUSED(&p.spec, "ContainerSpec: image reference is longer than 4096 bytes");
    image[SPEC_MAX_IMAGE] = '\0';
    char m[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), 0);
    p.c.image = (char *)"";
    ASSERT_REFUSED(&p.spec, "ContainerSpec: image reference must be provided");
    p.c.image = (char *)"sle\nep";
    ASSERT_REFUSED(&p.spec, "ContainerSpec: image reference must not hold control characters");
    p.c.image = (char *)"sleep";

    char **env = calloc(SPEC_MAX_ARGS + 1, sizeof *env);
    for (size_t i = 0; i <= SPEC_MAX_ARGS; i++) {
        env[i] = (char *)"K=V";
    }
    p.c.env = env;
    p.c.n_env = SPEC_MAX_ARGS + 1;
    ASSERT_REFUSED(&p.spec, "ContainerSpec: env: 1025 entries, the maximum is 1024");
    p.c.n_env = 1;
    env[0] = image; /* 4096 bytes: fine alone */
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), 0);
    env[0] = (char *)"=V";
    ASSERT_REFUSED(&p.spec, "ContainerSpec: env: a variable name must be given (K=V)");
    /* Each entry is fine, together they are too big to copy into every task. */
    for (size_t i = 0; i < 20; i++) {
        env[i] = image;
    }
    p.c.n_env = 20;
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), SWARM_EINVAL);
    ASSERT(strstr(m, "service spec is ") == m);
    ASSERT(strstr(m, "bytes: the maximum is 65536") != NULL);
    /* A spec within bounds, times many replicas, may still be too much. */
    p.c.n_env = 10; /* about 40 KiB */
    p.rep.replicas = 50000;
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), SWARM_EINVAL);
    ASSERT(strstr(m, "invalid replicas 50000: with a task spec of ") == m);
    ASSERT(strstr(m, "(1 GiB of tasks per service)") != NULL);
    p.rep.replicas = 20000;
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), 0);
    p.rep.replicas = 1;
    p.c.n_env = 0;

    char *cons[1] = {(char *)"node.labels.zone==a\x1b"};
    p.placement.constraints = cons;
    p.placement.n_constraints = 1;
    ASSERT_REFUSED(&p.spec,
                   "invalid constraint \"node.labels.zone==a\\x1b\": control characters are "
                   "not allowed");
    p.placement.n_constraints = 0;
    free(env);
    free(image);
}

TEST(labels_are_bounded)
{
    struct spec_parts p;
    Swarm__Label l = SWARM__LABEL__INIT, *ls[1] = {&l};
    char m[SWARM_ERRMSG_SIZE];
    spec_init(&p);
    p.ann.labels = ls;
    p.ann.n_labels = 1;
    l.key = (char *)"color";
    l.value = (char *)"red\x1b[0m"; /* values may hold anything; the CLI escapes them */
    ASSERT_INT_EQ(spec_validate_service(&p.spec, m), 0);
    l.key = (char *)"";
    ASSERT_REFUSED(&p.spec, "label key must not be empty");
    l.key = (char *)"a\nb";
    ASSERT_REFUSED(&p.spec,
                   "invalid label key \"a\\nb\": printable characters, 256 bytes at most");
}

TEST(cluster_spec_bounds)
{
    Swarm__ClusterSpec cs = SWARM__CLUSTER_SPEC__INIT;
    Swarm__OrchestrationConfig o = SWARM__ORCHESTRATION_CONFIG__INIT;
    Swarm__DispatcherConfig d = SWARM__DISPATCHER_CONFIG__INIT;
    Swarm__RaftConfig r = SWARM__RAFT_CONFIG__INIT;
    char m[SWARM_ERRMSG_SIZE];
    cs.orchestration = &o;
    cs.dispatcher = &d;
    cs.raft = &r;
    ASSERT_INT_EQ(spec_validate_cluster(&cs, m), 0); /* zeros: the defaults */
    o.task_history_retention_limit = -1;
    ASSERT_INT_EQ(spec_validate_cluster(&cs, m), SWARM_EINVAL);
    ASSERT_STR_EQ(m, "task history retention limit must be >= 0");
    o.task_history_retention_limit = SPEC_MAX_HISTORY + 1;
    ASSERT_INT_EQ(spec_validate_cluster(&cs, m), SWARM_EINVAL);
    ASSERT_STR_EQ(m, "task history retention limit must be at most 1000");
    o.task_history_retention_limit = 5;
    d.heartbeat_period_ms = -1;
    ASSERT_INT_EQ(spec_validate_cluster(&cs, m), SWARM_EINVAL);
    ASSERT_STR_EQ(m, "dispatcher heartbeat period must be at least 100ms");
    d.heartbeat_period_ms = INT64_MAX;
    ASSERT_INT_EQ(spec_validate_cluster(&cs, m), SWARM_EINVAL);
    ASSERT_STR_EQ(m, "dispatcher heartbeat period must be at most 1h0m0s");
    d.heartbeat_period_ms = 1000;
    r.tick_ms = 1;
    ASSERT_INT_EQ(spec_validate_cluster(&cs, m), SWARM_EINVAL);
    ASSERT_STR_EQ(m, "raft tick must be between 10ms and 1m0s");
    r.tick_ms = 100;
    ASSERT_INT_EQ(spec_validate_cluster(&cs, m), 0);
}

TEST(node_spec_bounds)
{
    Swarm__NodeSpec ns = SWARM__NODE_SPEC__INIT;
    char m[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(spec_validate_node(&ns, m), 0);
    ns.availability = 3;
    ASSERT_INT_EQ(spec_validate_node(&ns, m), SWARM_EINVAL);
    ASSERT_STR_EQ(m, "invalid availability 3");
    ns.availability = 0;
    ns.desired_role = -1;
    ASSERT_INT_EQ(spec_validate_node(&ns, m), SWARM_EINVAL);
    ASSERT_STR_EQ(m, "invalid role -1");
}

TEST(node_description_hostname)
{
    Swarm__NodeDescription d = SWARM__NODE_DESCRIPTION__INIT;
    Swarm__Platform pl = SWARM__PLATFORM__INIT;
    char m[SWARM_ERRMSG_SIZE];
    d.platform = &pl;
    pl.os = (char *)"linux";
    pl.architecture = (char *)"x86_64";
    d.engine_version = (char *)"0.1.0";
    d.hostname = (char *)"worker-1.example";
    ASSERT_INT_EQ(spec_validate_node_description(&d, m), 0);
    d.hostname = (char *)"evil\x1b[2J\nroot";
    ASSERT_INT_EQ(spec_validate_node_description(&d, m), SWARM_EINVAL);
    ASSERT_STR_EQ(m, "invalid hostname \"evil\\x1b[2J\\nroot\": printable ASCII without "
                     "spaces, 1 to 253 characters");
    d.hostname = (char *)"";
    ASSERT_INT_EQ(spec_validate_node_description(&d, m), SWARM_EINVAL);
    d.hostname = (char *)"two words";
    ASSERT_INT_EQ(spec_validate_node_description(&d, m), SWARM_EINVAL);
    char big[300];
    memset(big, 'h', 254);
    big[254] = '\0';
    d.hostname = big;
    ASSERT_INT_EQ(spec_validate_node_description(&d, m), SWARM_EINVAL);
    ASSERT(strlen(m) < 200); /* the message quotes only the start */
    big[253] = '\0';
    ASSERT_INT_EQ(spec_validate_node_description(&d, m), 0);
    pl.os = (char *)"lin\rux";
    ASSERT_INT_EQ(spec_validate_node_description(&d, m), SWARM_EINVAL);
    ASSERT_STR_EQ(m, "invalid node description: \"lin\\rux\" is not a printable word of 128 "
                     "characters at most");
}

TEST(node_description_network_error)
{
    Swarm__NodeDescription d = SWARM__NODE_DESCRIPTION__INIT;
    char m[SWARM_ERRMSG_SIZE], big[SPEC_MAX_NETWORK_ERROR + 2];
    d.hostname = (char *)"worker-1";
    d.network_error = (char *)"networking needs swarmd to run as root (it runs as uid 1000)";
    ASSERT_INT_EQ(spec_validate_node_description(&d, m), 0);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    d.network_error = big;
    ASSERT_INT_EQ(spec_validate_node_description(&d, m), SWARM_EINVAL);
    ASSERT_STR_EQ(m, "invalid node description: the network error is longer than 1024 bytes");
    big[SPEC_MAX_NETWORK_ERROR] = '\0';
    ASSERT_INT_EQ(spec_validate_node_description(&d, m), 0);
}

/* ------------------------------------------------------------------ wire */

TEST(nul_in_a_string_is_found_on_the_wire)
{
    struct spec_parts p;
    Swarm__CreateServiceRequest req = SWARM__CREATE_SERVICE_REQUEST__INIT;
    char path[128];
    spec_init(&p);
    p.ann.name = (char *)"webXevil";
    req.spec = &p.spec;
    size_t len = swarm__create_service_request__get_packed_size(&req);
    uint8_t *buf = malloc(len);
    swarm__create_service_request__pack(&req, buf);
    ASSERT_INT_EQ(pb_check_strings(&swarm__create_service_request__descriptor, buf, len, path,
                                   sizeof path),
                  0);
    ASSERT_STR_EQ(path, "");
    uint8_t *x = memchr(buf, 'X', len);
    *x = '\0'; /* what a raw client can send; protobuf-c would read "web" */
    ASSERT_INT_EQ(pb_check_strings(&swarm__create_service_request__descriptor, buf, len, path,
                                   sizeof path),
                  SWARM_EINVAL);
    ASSERT_STR_EQ(path, "spec.annotations.name");
    /* Truncated input is left for unpack to refuse. */
    ASSERT_INT_EQ(pb_check_strings(&swarm__create_service_request__descriptor, buf, 3, path,
                                   sizeof path),
                  0);
    free(buf);
}

/* --------------------------------------------------------------- escape */

TEST(escape_untrusted_strings)
{
    char out[128];
    ASSERT_STR_EQ(esc_str("plain web-1", out, sizeof out), "plain web-1");
    ASSERT_STR_EQ(esc_str("a\x1b[31mred\n\t\\", out, sizeof out), "a\\x1b[31mred\\n\\t\\");
    ASSERT_STR_EQ(esc_str("caf\xc3\xa9", out, sizeof out), "caf\xc3\xa9");
    ASSERT_STR_EQ(esc_str("\xc2\x9b" "2J", out, sizeof out), "\\xc2\\x9b2J"); /* C1 CSI */
    ASSERT_STR_EQ(esc_str("\xe2\x80\xae" "abc", out, sizeof out), "\\xe2\\x80\\xaeabc");
    ASSERT_STR_EQ(esc_str("\xff", out, sizeof out), "\\xff");
    ASSERT_STR_EQ(esc_str(NULL, out, sizeof out), "");
    ASSERT_STR_EQ(esc_str("ab\x1b", out, 6), "ab"); /* never half an escape */
    ASSERT_INT_EQ(esc_len("a\x1b"), 6);
    ASSERT(esc_is_printable("node-1"));
    ASSERT(!esc_is_printable("node\n"));
}

static Swarm__Mount *mnt(Swarm__Mount *m, const char *type, const char *src, const char *dst)
{
    swarm__mount__init(m);
    m->type = (char *)type;
    m->source = (char *)src;
    m->target = (char *)dst;
    return m;
}

TEST(container_fields_are_checked)
{
    struct spec_parts p;
    Swarm__Mount m[2], *ms[2] = {&m[0], &m[1]};
    char msg[SWARM_ERRMSG_SIZE];
    spec_init(&p);
    p.c.image = (char *)"busybox:1";
    p.c.mounts = ms;
    p.c.n_mounts = 1;
    mnt(&m[0], "bind", "/srv", "/data");
    ASSERT_INT_EQ(spec_validate_service(&p.spec, msg), 0);
    mnt(&m[0], "bind", "srv", "/data");
    ASSERT_REFUSED(&p.spec, "invalid bind mount source, must be an absolute path: srv");
    mnt(&m[0], "volume", "/srv", "/data");
    ASSERT_REFUSED(&p.spec, "invalid volume mount source, must not be an absolute path: /srv");
    mnt(&m[0], "volume", "a b", "/data");
    ASSERT_REFUSED(&p.spec, "\"a b\" includes invalid characters for a local volume name, only "
                            "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass "
                            "a host directory, use absolute path");
    mnt(&m[0], "tmpfs", "x", "/data");
    ASSERT_REFUSED(&p.spec, "invalid tmpfs source, source must be empty");
    mnt(&m[0], "nfs", "", "/data");
    ASSERT_REFUSED(&p.spec, "invalid mount type: nfs");
    mnt(&m[0], "tmpfs", "", "data");
    ASSERT_REFUSED(&p.spec, "invalid mount target, must be an absolute path: data");
    mnt(&m[0], "tmpfs", "", "/data");
    mnt(&m[1], "volume", "vol1", "/data");
    p.c.n_mounts = 2;
    ASSERT_REFUSED(&p.spec, "invalid mount target, duplicate mount point: /data");
    m[1].target = (char *)"/data2";
    ASSERT_INT_EQ(spec_validate_service(&p.spec, msg), 0);
    char *caps[] = {"NET_ADMIN", "CAP_BOGUS"};
    p.c.cap_add = caps;
    p.c.n_cap_add = 2;
    ASSERT_REFUSED(&p.spec, "unknown capability: \"CAP_BOGUS\"");
    p.c.n_cap_add = 1;
    p.task.runtime = (char *)"vm";
    ASSERT_REFUSED(&p.spec, "invalid runtime \"vm\": must be \"process\" or \"container\"");
    /* Container-only fields on a program of the host. */
    p.task.runtime = (char *)"process";
    ASSERT_REFUSED(&p.spec, "--mount needs the container runtime: image \"busybox:1\" runs as a "
                            "program on the host (use an image reference with a tag, or "
                            "--runtime container)");
    p.task.runtime = (char *)"";
    p.c.image = (char *)"sleep";
    p.c.n_mounts = 0;
    ASSERT_REFUSED(&p.spec, "--cap-add needs the container runtime: image \"sleep\" runs as a "
                            "program on the host (use an image reference with a tag, or "
                            "--runtime container)");
    p.task.runtime = (char *)"container";
    ASSERT_INT_EQ(spec_validate_service(&p.spec, msg), 0);
}

TEST_MAIN()
