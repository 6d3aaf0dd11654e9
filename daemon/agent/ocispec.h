/* A task's OCI runtime config (runtime-spec 1.0, runc's config.json), built
 * from its image's config and its spec with Docker's merge rules. Pure: the
 * caller reads what the node holds (the image config, the image's
 * /etc/passwd and /etc/group, paths it made) and this turns it into JSON.
 *
 * Merge rules (Docker's daemon/create.go merge and the swarm executor):
 *   - ContainerSpec.command (--entrypoint) replaces the image's Entrypoint
 *     and then drops the image's Cmd; args replace the image's Cmd;
 *     the process runs Entrypoint + Cmd ("No command specified" if empty);
 *   - env: the image's, then the spec's (same name: the spec's wins), PATH
 *     defaulted as Docker does, HOSTNAME, and the SWARM_* variables the
 *     process executor also sets;
 *   - working dir: the spec's, else the image's, else "/";
 *   - user: the spec's, else the image's, else root, resolved against the
 *     image's own /etc/passwd and /etc/group (ocispec_user_resolve);
 *   - hostname: ContainerSpec.hostname, else the task ID's first 12 chars.
 * Isolation as Docker's defaults: own pid, ipc, uts and mount namespaces;
 * the network namespace at `netns` (NULL: the host's); Docker's default
 * capabilities with --cap-add/--cap-drop; masked and read-only paths;
 * no_new_privs; the default device allowlist; /dev, /dev/pts, /dev/shm,
 * /dev/mqueue, /proc, /sys (read-only); /etc/hosts, /etc/hostname and
 * /etc/resolv.conf bind-mounted; --read-only; mounts (bind, volume as a bind
 * of its dir, tmpfs with Docker's options); --init runs `init_path` as
 * /sbin/docker-init, pid 1, before the command. Resources: memory limit
 * (swap off), CPU quota per 100 ms period, pids limit, at `cgroups_path`. */
#ifndef SWARM_AGENT_OCISPEC_H
#define SWARM_AGENT_OCISPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objects.pb-c.h"

#define OCISPEC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define OCISPEC_INIT_TARGET "/sbin/docker-init"
#define OCISPEC_GROUPS_MAX 64

/* The parts of an image config (its "config" object) the runtime uses.
 * has_entrypoint/has_cmd tell a missing field from an empty one. */
struct ocispec_image {
    bool has_entrypoint, has_cmd;
    char *const *entrypoint;
    size_t n_entrypoint;
    char *const *cmd;
    size_t n_cmd;
    char *const *env; /* K=V */
    size_t n_env;
    const char *working_dir, *user; /* NULL or "": unset */
};

struct ocispec_user {
    uint32_t uid, gid;
    uint32_t groups[OCISPEC_GROUPS_MAX]; /* additional gids */
    size_t ngroups;
};

/* Resolve "user[:group]" (names or numbers; "" is root) against the text
 * of the image's /etc/passwd and /etc/group (NULL: the file is missing), as
 * runc does: a name must exist ("unable to find user X: no matching entries
 * in passwd file", "unable to find group X: no matching entries in group
 * file"), a number need not; the additional groups are those listing the
 * user by name. 0, or SWARM_EINVAL with the message. */
int ocispec_user_resolve(const char *spec, const char *passwd, const char *group,
                         struct ocispec_user *out, char *errmsg);

/* The process's argv under the merge rules (Entrypoint + Cmd), without
 * --init. *argv_out is a malloc'd NULL-terminated array of pointers into
 * `c` and `img` (free only the array). 0, or SWARM_EINVAL "No command
 * specified", or SWARM_ENOMEM. */
int ocispec_argv(const Swarm__ContainerSpec *c, const struct ocispec_image *img,
                 const char ***argv_out, size_t *argc_out, char *errmsg);

/* The signal a stop sends: ContainerSpec.stop_signal, else the image's
 * StopSignal, else SIGTERM; names ("SIGINT", "INT", any case) or numbers.
 * The number, or -1 for a name that is no signal. */
int ocispec_stop_signal(const char *spec_signal, const char *image_signal);

struct ocispec_input {
    const Swarm__Task *task;   /* id, slot, service name, spec */
    const struct ocispec_image *image;
    const struct ocispec_user *user; /* resolved */
    const char *node_id;
    const char *rootfs;        /* the snapshot's mount point */
    const char *netns;         /* a network namespace path, NULL: the host's */
    const char *hosts_path, *hostname_path, *resolv_path; /* files to bind */
    const char *init_path;     /* the init binary when ContainerSpec.init */
    /* For each ContainerSpec.mounts[i] of type volume: the volume's dir on
     * the node (NULL for the other types). */
    const char *const *volume_dirs;
    const char *cgroups_path;  /* linux.cgroupsPath, NULL: none */
    int64_t pids_limit;        /* 0: none */
    /* The memory limit is set on the parent of cgroups_path by the caller
     * (where an OOM kill is counted): left out of linux.resources. */
    bool memory_in_parent;
};

/* The config.json text (malloc'd, *json_out), or SWARM_EINVAL with the
 * reason (no command, bad mount...) or SWARM_ENOMEM. */
int ocispec_build(const struct ocispec_input *in, char **json_out, char *errmsg);

/* The hostname the task gets (ContainerSpec.hostname, else the first 12
 * characters of the task ID), into out (at least 64 bytes). */
void ocispec_hostname(const Swarm__Task *task, char *out, size_t size);

#endif
