/* `service create` and `service update` flags -> ServiceSpec, with Docker's
 * flag names, units, defaults and messages (docker/cli
 * cli/command/service/opts.go, update.go). Pure: no I/O, so every rule is
 * tested with plain inputs.
 *
 * Ownership: specs built or edited here hold only malloc'd memory (the same
 * as a message from protobuf_c_message_unpack with the system allocator), so
 * protobuf_c_message_free_unpacked(&spec->base, NULL) frees everything, be
 * the spec fresh from cli_svc_spec_new or read from swarmd and edited. */
#ifndef SWARM_CLI_CMD_SERVICE_OPTS_H
#define SWARM_CLI_CMD_SERVICE_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "args.h"
#include "err.h"
#include "objects.pb-c.h"

/* What Docker applies when a flag is absent. */
#define CLI_SVC_RESTART_DELAY_MS 5000
#define CLI_SVC_STOP_GRACE_MS 10000
#define CLI_SVC_UPDATE_MONITOR_MS 5000

/* --publish values, parsed; the array and its ports are owned. */
struct cli_svc_ports {
    Swarm__PortConfig **items;
    size_t n;
};

/* --mount values, parsed; the array and its mounts are owned. */
struct cli_svc_mounts {
    Swarm__Mount **items;
    size_t n;
};

/* One UpdateConfig's flags (--update-* or --rollback-*). */
struct cli_svc_update_opts {
    uint64_t parallelism;
    int64_t delay_ns, monitor_ns;
    Swarm__UpdateFailureAction failure_action;
    double max_failure_ratio;
    Swarm__UpdateOrder order;
};

/* Every flag of create and update; which ones were given is in the
 * cli_flag array (cli_flag_changed). */
struct cli_svc_opts {
    /* create only */
    const char *name;
    const char *mode;
    struct cli_strlist env, label, constraint;
    struct cli_strlist placement_pref;
    struct cli_svc_ports publish;
    /* both */
    uint64_t replicas;
    int64_t reserve_cpu, limit_cpu;       /* nano CPUs */
    int64_t reserve_memory, limit_memory; /* bytes */
    uint64_t max_replicas;
    Swarm__RestartCondition restart_condition;
    int64_t restart_delay_ns, restart_window_ns, stop_grace_ns;
    uint64_t restart_max_attempts;
    const char *workdir;
    const char *user; /* -u, --user: user[:group] */
    /* --health-*: Docker's defaults (30s, 30s, 3, 0s) are the executor's,
     * applied to zero fields, not set here. */
    const char *health_cmd;
    int64_t health_interval_ns, health_timeout_ns, health_start_period_ns;
    int64_t health_retries;
    bool no_healthcheck;
    struct cli_svc_update_opts update, rollback;
    bool detach, quiet;
    bool with_registry_auth; /* sent by the command (cli_registry_auth_fill) */
    const char *resolve_image; /* always|changed|never (the request's, not the spec's) */
    /* container fields (cmd_service_ctr.c) */
    const char *runtime, *entrypoint, *stop_signal;
    struct cli_strlist cap_add, cap_drop;
    bool read_only, init;
    struct cli_svc_mounts mount;     /* create */
    struct cli_svc_mounts mount_add; /* update */
    struct cli_strlist mount_rm;
    /* networks: --network (create), --network-add/-rm (update); values as
     * given (names or IDs; swarmd resolves them), checked by
     * cli_svc_parse_network. --endpoint-mode, --hostname. */
    struct cli_strlist network, network_add, network_rm;
    const char *endpoint_mode, *hostname;
    /* update only */
    const char *image, *args;
    struct cli_strlist env_add, env_rm, label_add, label_rm;
    struct cli_strlist constraint_add, constraint_rm, publish_rm;
    struct cli_svc_ports publish_add;
    bool force, do_rollback;
};

#define CLI_SVC_MAX_FLAGS 96

/* Fill `flags` (room for CLI_SVC_MAX_FLAGS, ends with a NULL name, sorted by
 * name as Docker's help) with the flags of create (`update` false) or update,
 * pointing into `o`. */
void cli_svc_flags(struct cli_svc_opts *o, bool update, struct cli_flag *flags);

/* Release what parsing allocated in `o`. */
void cli_svc_opts_free(struct cli_svc_opts *o);

/* `service create`: a spec with Docker's defaults, then the flags. IMAGE is
 * the program, args its arguments. Returns the spec, or NULL with the reason
 * in errmsg (e.g. "replicas can only be used with replicated mode"). */
Swarm__ServiceSpec *cli_svc_spec_new(const struct cli_flag *flags,
                                     const struct cli_svc_opts *o,
                                     const char *image, char *const *args,
                                     size_t nargs, char *errmsg);

/* `service update`: edit `spec` (read from swarmd) with the flags given.
 * Returns 0, or a negative SWARM_E* code with the reason in errmsg. */
int cli_svc_spec_update(Swarm__ServiceSpec *spec, const struct cli_flag *flags,
                        const struct cli_svc_opts *o, char *errmsg);

/* `service scale`: set the replica count. Returns 0, or -1 for a global
 * service. */
int cli_svc_spec_scale(Swarm__ServiceSpec *spec, uint64_t replicas);

/* ----------------------------------------------------- value parsers */

/* Docker's NanoCPUs: "0.5" -> 500000000. */
int cli_svc_parse_cpus(const char *s, int64_t *nano, char *errmsg);

/* go-units RAMInBytes: "512MB", "1GiB", "100m", "1024" (binary units). */
int cli_svc_parse_memory(const char *s, int64_t *bytes, char *errmsg);

/* A --publish value, long ("mode=host,published=8080,target=80") or short
 * ("8080:80", "80/udp") syntax. The port is allocated (caller frees with
 * protobuf_c_message_free_unpacked). */
int cli_svc_parse_port(const char *s, Swarm__PortConfig **port, char *errmsg);

/* A --user value: <name|uid>[:<group|gid>], resolved later on the node
 * that runs the task; here only its shape is checked (one or two non-empty
 * parts, no spaces or control characters, at most 256 bytes). */
int cli_svc_check_user(const char *s, char *errmsg);

/* A --network value: "NAME" or the long form "name=NAME,alias=A[,alias=B]"
 * (Docker's NetworkOpt). *out is allocated (caller frees with
 * protobuf_c_message_free_unpacked); out may be NULL to check only. */
int cli_svc_parse_network(const char *s, Swarm__NetworkAttachmentConfig **out, char *errmsg);

/* swarmkit's constraint syntax: "KEY==VALUE" or "KEY!=VALUE". */
int cli_svc_check_constraint(const char *s, char *errmsg);

/* Split a --args string into words as a POSIX shell would (quotes and
 * backslashes). *words is allocated, each word too. */
int cli_svc_split_words(const char *s, char ***words, size_t *n, char *errmsg);

/* ------------------------------------- container fields (cmd_service_ctr.c) */

/* Add the container flags (--mount or --mount-add/--mount-rm, --cap-add,
 * --cap-drop, --read-only, --init, --stop-signal, --entrypoint, --runtime)
 * at f[i]; returns the new count. */
size_t cli_svc_ctr_flags(struct cli_svc_opts *o, bool update, struct cli_flag *f, size_t i);
/* Apply them to `t` (create: onto Docker's defaults; update: onto the spec
 * read from swarmd). An update that changes --image without --runtime
 * clears TaskSpec.runtime, so the manager applies the rule to the new image. */
int cli_svc_ctr_apply(Swarm__TaskSpec *t, const struct cli_flag *flags,
                      const struct cli_svc_opts *o, bool update, char *errmsg);
void cli_svc_ctr_free(struct cli_svc_opts *o);

/* A --mount value as docker/cli's opts.MountOpt: CSV of type=bind|volume|
 * tmpfs (default volume), source|src, target|dst|destination, readonly|ro
 * [=bool], tmpfs-size, volume-nocopy. Docker's messages ("target is
 * required", "invalid field 'x' must be a key=value pair", "unexpected key
 * 'k' in '...'", "cannot mix 'tmpfs-*' options with mount type 'bind'").
 * The mount is allocated (free with protobuf_c_message_free_unpacked). */
int cli_svc_parse_mount(const char *s, Swarm__Mount **out, char *errmsg);

#endif
