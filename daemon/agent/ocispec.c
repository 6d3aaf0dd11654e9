/* See ocispec.h. The JSON is built with jansson; every json_*_set_new and
 * json_array_append_new takes ownership even when it fails, so a failed
 * build only has to drop the root. */
#include "ocispec.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caps.h"
#include "err.h"

/* ---------------------------------------------------------------- users */

/* A decimal id, or -1 if `s` (len bytes) is not all digits. */
static int64_t oci_number(const char *s, size_t len)
{
    int64_t v = 0;
    if (len == 0 || len > 10) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v <= UINT32_MAX - 1 ? v : -1;
}

/* Field `idx` (0-based, ':'-separated) of `line` (len bytes) into out. */
static bool oci_field(const char *line, size_t len, int idx, char *out, size_t size)
{
    const char *p = line, *end = line + len;
    for (int i = 0; i < idx; i++) {
        p = memchr(p, ':', (size_t)(end - p));
        if (p == NULL) {
            return false;
        }
        p++;
    }
    const char *q = memchr(p, ':', (size_t)(end - p));
    size_t n = (size_t)((q != NULL ? q : end) - p);
    if (n >= size) {
        return false;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Find the line of a passwd/group text whose field 0 is `name` (by_name)
 * or field 2 is `id`; its fields 2 and 3 (uid/gid, gid/members). */
static bool oci_lookup(const char *text, const char *name, int64_t id, bool by_name,
                       char *f0, char *f2, char *f3, size_t size)
{
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        if (len > 0 && line[0] != '#' && oci_field(line, len, 0, f0, size) &&
            oci_field(line, len, 2, f2, size) && oci_field(line, len, 3, f3, size)) {
            if (by_name ? strcmp(f0, name) == 0 : oci_number(f2, strlen(f2)) == id) {
                return true;
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

/* Whether `members` (comma-separated) lists `user`. */
static bool oci_member(const char *members, const char *user)
{
    size_t n = strlen(user);
    for (const char *p = members; *p != '\0';) {
        const char *c = strchr(p, ',');
        size_t len = c != NULL ? (size_t)(c - p) : strlen(p);
        if (len == n && strncmp(p, user, n) == 0) {
            return true;
        }
        p = c != NULL ? c + 1 : p + len;
    }
    return false;
}

static void oci_groups(const char *group, const char *user, struct ocispec_user *out)
{
    char f0[256], f2[256], f3[4096];
    for (const char *line = group; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        if (len > 0 && line[0] != '#' && oci_field(line, len, 0, f0, sizeof f0) &&
            oci_field(line, len, 2, f2, sizeof f2) && oci_field(line, len, 3, f3, sizeof f3) &&
            oci_member(f3, user) && out->ngroups < OCISPEC_GROUPS_MAX) {
            int64_t g = oci_number(f2, strlen(f2));
            if (g >= 0) {
                out->groups[out->ngroups++] = (uint32_t)g;
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
}

int ocispec_user_resolve(const char *spec, const char *passwd, const char *group,
                         struct ocispec_user *out, char *errmsg)
{
    char name[256], f0[256], f2[256], f3[256];
    memset(out, 0, sizeof *out);
    if (spec == NULL || spec[0] == '\0') {
        return 0; /* root */
    }
    const char *colon = strchr(spec, ':');
    size_t ulen = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
    if (ulen == 0 || ulen >= sizeof name) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid user \"%s\"", spec);
        return SWARM_EINVAL;
    }
    memcpy(name, spec, ulen);
    name[ulen] = '\0';
    int64_t uid = oci_number(name, ulen);
    bool found = oci_lookup(passwd, name, uid, uid < 0, f0, f2, f3, sizeof f0);
    if (!found && uid < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "unable to find user %s: no matching entries in passwd file", name);
        return SWARM_EINVAL;
    }
    out->uid = (uint32_t)(uid >= 0 ? uid : oci_number(f2, strlen(f2)));
    out->gid = found ? (uint32_t)oci_number(f3, strlen(f3)) : 0;
    if (found) {
        oci_groups(group, f0, out);
    }
    if (colon != NULL) {
        const char *g = colon + 1;
        int64_t gid = oci_number(g, strlen(g));
        if (gid < 0 && !oci_lookup(group, g, -1, true, f0, f2, f3, sizeof f0)) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "unable to find group %s: no matching entries in group file", g);
            return SWARM_EINVAL;
        }
        out->gid = (uint32_t)(gid >= 0 ? gid : oci_number(f2, strlen(f2)));
    }
    return 0;
}

/* ------------------------------------------------------- command, signal */

int ocispec_argv(const Swarm__ContainerSpec *c, const struct ocispec_image *img,
                 const char ***argv_out, size_t *argc_out, char *errmsg)
{
    char *const *ep = c->command, *const *cmd = c->args;
    size_t n_ep = c->n_command, n_cmd = c->n_args;
    if (n_ep == 0) {
        /* No --entrypoint: the image's, and its Cmd unless args are given. */
        ep = img->entrypoint;
        n_ep = img->n_entrypoint;
        if (n_cmd == 0) {
            cmd = img->cmd;
            n_cmd = img->n_cmd;
        }
    }
    if (n_ep + n_cmd == 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "No command specified");
        return SWARM_EINVAL;
    }
    const char **argv = calloc(n_ep + n_cmd + 1, sizeof *argv);
    if (argv == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < n_ep; i++) {
        argv[i] = ep[i];
    }
    for (size_t i = 0; i < n_cmd; i++) {
        argv[n_ep + i] = cmd[i];
    }
    *argv_out = argv;
    *argc_out = n_ep + n_cmd;
    return 0;
}

int ocispec_stop_signal(const char *spec_signal, const char *image_signal)
{
    const char *s = spec_signal != NULL && spec_signal[0] != '\0'     ? spec_signal
                    : image_signal != NULL && image_signal[0] != '\0' ? image_signal
                                                                      : "SIGTERM";
    int64_t n = oci_number(s, strlen(s));
    if (n >= 0) {
        return n >= 1 && n < NSIG ? (int)n : -1;
    }
    const char *bare = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (int sig = 1; sig < NSIG; sig++) {
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev != NULL && strcasecmp(abbrev, bare) == 0) {
            return sig;
        }
    }
    return -1;
}

void ocispec_hostname(const Swarm__Task *task, char *out, size_t size)
{
    const Swarm__ContainerSpec *c = task->spec != NULL ? task->spec->container : NULL;
    if (c != NULL && c->hostname != NULL && c->hostname[0] != '\0') {
        snprintf(out, size, "%s", c->hostname);
    } else {
        snprintf(out, size, "%.12s", task->id != NULL ? task->id : "");
    }
}

/* ------------------------------------------------------------------ JSON */

static json_t *oci_strs(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        json_array_append_new(a, json_string(v[i]));
    }
    return a;
}

static size_t oci_env_key(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq != NULL ? (size_t)(eq - kv) : strlen(kv);
}

/* Append or replace (same name) "K=V" in the env array. */
static void oci_env_set(json_t *env, const char *kv)
{
    size_t k = oci_env_key(kv), i;
    json_t *v;
    json_array_foreach(env, i, v) {
        const char *cur = json_string_value(v);
        if (cur != NULL && oci_env_key(cur) == k && strncmp(cur, kv, k) == 0) {
            json_array_set_new(env, i, json_string(kv));
            return;
        }
    }
    json_array_append_new(env, json_string(kv));
}

static bool oci_env_has(json_t *env, const char *key)
{
    size_t i, k = strlen(key);
    json_t *v;
    json_array_foreach(env, i, v) {
        const char *cur = json_string_value(v);
        if (cur != NULL && oci_env_key(cur) == k && strncmp(cur, key, k) == 0) {
            return true;
        }
    }
    return false;
}

static json_t *oci_env(const struct ocispec_input *in, const char *hostname)
{
    const Swarm__Task *t = in->task;
    const Swarm__ContainerSpec *c = t->spec->container;
    char buf[512];
    json_t *env = json_array();
    if (env == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < in->image->n_env; i++) {
        if (strchr(in->image->env[i], '=') != NULL) {
            oci_env_set(env, in->image->env[i]);
        }
    }
    for (size_t i = 0; i < c->n_env; i++) {
        if (strchr(c->env[i], '=') != NULL) {
            oci_env_set(env, c->env[i]);
        }
    }
    if (!oci_env_has(env, "PATH")) {
        oci_env_set(env, "PATH=" OCISPEC_DEFAULT_PATH);
    }
    snprintf(buf, sizeof buf, "HOSTNAME=%s", hostname);
    oci_env_set(env, buf);
    snprintf(buf, sizeof buf, "SWARM_TASK_ID=%s", t->id);
    oci_env_set(env, buf);
    snprintf(buf, sizeof buf, "SWARM_TASK_SLOT=%" PRIu64, t->slot);
    oci_env_set(env, buf);
    snprintf(buf, sizeof buf, "SWARM_SERVICE_NAME=%s", t->service_name != NULL ? t->service_name : "");
    oci_env_set(env, buf);
    snprintf(buf, sizeof buf, "SWARM_NODE_ID=%s", in->node_id != NULL ? in->node_id : "");
    oci_env_set(env, buf);
    return env;
}

static json_t *oci_caps(const Swarm__ContainerSpec *c)
{
    uint64_t set = caps_effective(c->cap_add, c->n_cap_add, c->cap_drop, c->n_cap_drop);
    json_t *a = json_array();
    for (int i = 0; a != NULL && i < CAPS_COUNT; i++) {
        if (set & (UINT64_C(1) << i)) {
            json_array_append_new(a, json_string(caps_name(i)));
        }
    }
    return json_pack("{s:o, s:o, s:O, s:o}", "bounding", a, "effective", json_deep_copy(a),
                     "permitted", a, "inheritable", json_array());
}

static json_t *oci_process(const struct ocispec_input *in, const char *hostname,
                           const char *const *argv, size_t argc)
{
    const Swarm__ContainerSpec *c = in->task->spec->container;
    const char *cwd = c->dir != NULL && c->dir[0] != '\0' ? c->dir
                      : in->image->working_dir != NULL && in->image->working_dir[0] != '\0'
                          ? in->image->working_dir
                          : "/";
    json_t *args = oci_strs(argv, argc);
    if (args != NULL && c->init) {
        json_array_insert_new(args, 0, json_string("--"));
        json_array_insert_new(args, 0, json_string(OCISPEC_INIT_TARGET));
    }
    json_t *groups = json_array();
    for (size_t i = 0; groups != NULL && i < in->user->ngroups; i++) {
        json_array_append_new(groups, json_integer(in->user->groups[i]));
    }
    json_t *user = json_pack("{s:I, s:I, s:o}", "uid", (json_int_t)in->user->uid, "gid",
                             (json_int_t)in->user->gid, "additionalGids", groups);
    return json_pack("{s:b, s:o, s:o, s:o, s:s, s:o, s:b}", "terminal", 0, "user", user,
                     "args", args, "env", oci_env(in, hostname), "cwd", cwd, "capabilities",
                     oci_caps(c), "noNewPrivileges", 1);
}

static json_t *oci_mount(const char *dst, const char *type, const char *src,
                         const char *const *opts, size_t n)
{
    return json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type", type, "source", src,
                     "options", oci_strs(opts, n));
}

#define OCI_N(a) (sizeof(a) / sizeof *(a))

/* Docker's default mounts, then the task's files, then its mounts. */
static int oci_mounts(const struct ocispec_input *in, json_t *mounts, char *errmsg)
{
    static const char *const proc[] = {"nosuid", "noexec", "nodev"};
    static const char *const dev[] = {"nosuid", "strictatime", "mode=755", "size=65536k"};
    static const char *const pts[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                      "mode=0620", "gid=5"};
    static const char *const sys[] = {"nosuid", "noexec", "nodev", "ro"};
    static const char *const mq[] = {"nosuid", "noexec", "nodev"};
    static const char *const shm[] = {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"};
    static const char *const cg[] = {"ro", "nosuid", "noexec", "nodev"};
    static const char *const bind_rw[] = {"rbind", "rprivate"};
    static const char *const bind_ro[] = {"rbind", "rprivate", "ro"};
    const Swarm__ContainerSpec *c = in->task->spec->container;
    json_array_append_new(mounts, oci_mount("/proc", "proc", "proc", proc, OCI_N(proc)));
    json_array_append_new(mounts, oci_mount("/dev", "tmpfs", "tmpfs", dev, OCI_N(dev)));
    json_array_append_new(mounts, oci_mount("/dev/pts", "devpts", "devpts", pts, OCI_N(pts)));
    json_array_append_new(mounts, oci_mount("/sys", "sysfs", "sysfs", sys, OCI_N(sys)));
    json_array_append_new(mounts, oci_mount("/sys/fs/cgroup", "cgroup", "cgroup", cg, OCI_N(cg)));
    json_array_append_new(mounts, oci_mount("/dev/mqueue", "mqueue", "mqueue", mq, OCI_N(mq)));
    json_array_append_new(mounts, oci_mount("/dev/shm", "tmpfs", "shm", shm, OCI_N(shm)));
    const char *files[][2] = {{"/etc/hosts", in->hosts_path},
                              {"/etc/hostname", in->hostname_path},
                              {"/etc/resolv.conf", in->resolv_path}};
    for (size_t i = 0; i < OCI_N(files); i++) {
        if (files[i][1] != NULL) {
            json_array_append_new(mounts, oci_mount(files[i][0], "bind", files[i][1], bind_rw,
                                                    OCI_N(bind_rw)));
        }
    }
    if (c->init) {
        if (in->init_path == NULL) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "--init: no init binary (tini) on this node");
            return SWARM_EINVAL;
        }
        json_array_append_new(mounts, oci_mount(OCISPEC_INIT_TARGET, "bind", in->init_path,
                                                bind_ro, OCI_N(bind_ro)));
    }
    for (size_t i = 0; i < c->n_mounts; i++) {
        const Swarm__Mount *m = c->mounts[i];
        if (strcmp(m->type, "tmpfs") == 0) {
            char size[64];
            const char *opts[5] = {"nosuid", "nodev", "noexec", NULL, NULL};
            size_t n = 3;
            if (m->tmpfs_size_bytes > 0) {
                snprintf(size, sizeof size, "size=%" PRId64, m->tmpfs_size_bytes);
                opts[n++] = size;
            }
            if (m->readonly) {
                opts[n++] = "ro";
            }
            json_array_append_new(mounts, oci_mount(m->target, "tmpfs", "tmpfs", opts, n));
            continue;
        }
        const char *src = m->source;
        if (strcmp(m->type, "volume") == 0) {
            src = in->volume_dirs != NULL ? in->volume_dirs[i] : NULL;
        } else if (strcmp(m->type, "bind") != 0) {
            src = NULL;
        }
        if (src == NULL || src[0] != '/' || m->target[0] != '/') {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid mount config for type \"%s\"",
                          m->type);
            return SWARM_EINVAL;
        }
        json_array_append_new(mounts, oci_mount(m->target, "bind", src,
                                                m->readonly ? bind_ro : bind_rw,
                                                m->readonly ? OCI_N(bind_ro) : OCI_N(bind_rw)));
    }
    return 0;
}

static json_t *oci_resources(const struct ocispec_input *in)
{
    const Swarm__ResourceRequirements *r = in->task->spec->resources;
    const Swarm__Resources *lim = r != NULL ? r->limits : NULL;
    json_t *res = json_pack("{s:[{s:b, s:s}]}", "devices", "allow", 0, "access", "rwm");
    static const struct {
        const char *type;
        int64_t major, minor;
    } devs[] = {{"c", 1, 3}, {"c", 1, 5}, {"c", 1, 7}, {"c", 1, 8}, {"c", 1, 9},
                {"c", 5, 0}, {"c", 5, 2}, {"c", 136, -1}};
    json_t *dl = json_object_get(res, "devices");
    for (size_t i = 0; dl != NULL && i < OCI_N(devs); i++) {
        json_t *d = json_pack("{s:b, s:s, s:I, s:s}", "allow", 1, "type", devs[i].type, "major",
                              (json_int_t)devs[i].major, "access", "rwm");
        if (d != NULL && devs[i].minor >= 0) {
            json_object_set_new(d, "minor", json_integer(devs[i].minor));
        }
        json_array_append_new(dl, d);
    }
    if (lim != NULL && lim->memory_bytes > 0 && !in->memory_in_parent) {
        json_object_set_new(res, "memory", json_pack("{s:I, s:I}", "limit",
                                                     (json_int_t)lim->memory_bytes, "swap",
                                                     (json_int_t)lim->memory_bytes));
    }
    if (lim != NULL && lim->nano_cpus > 0) {
        int64_t quota = lim->nano_cpus / 10000; /* per 100 ms period */
        json_object_set_new(res, "cpu", json_pack("{s:I, s:I}", "quota",
                                                  (json_int_t)(quota < 1000 ? 1000 : quota),
                                                  "period", (json_int_t)100000));
    }
    if (in->pids_limit > 0) {
        json_object_set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t)in->pids_limit));
    }
    return res;
}

static json_t *oci_linux(const struct ocispec_input *in)
{
    static const char *const masked[] = {
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/sys/firmware", "/sys/devices/virtual/powercap",
    };
    static const char *const readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                           "/proc/sysrq-trigger"};
    json_t *ns = json_pack("[{s:s}, {s:s}, {s:s}, {s:s}]", "type", "pid", "type", "ipc", "type",
                           "uts", "type", "mount");
    if (ns != NULL && in->netns != NULL) {
        json_array_append_new(ns, json_pack("{s:s, s:s}", "type", "network", "path", in->netns));
    }
    json_t *lx = json_pack("{s:o, s:o, s:o, s:o}", "namespaces", ns, "resources",
                           oci_resources(in), "maskedPaths", oci_strs(masked, OCI_N(masked)),
                           "readonlyPaths", oci_strs(readonly, OCI_N(readonly)));
    if (lx != NULL && in->cgroups_path != NULL) {
        json_object_set_new(lx, "cgroupsPath", json_string(in->cgroups_path));
    }
    return lx;
}

int ocispec_build(const struct ocispec_input *in, char **json_out, char *errmsg)
{
    const Swarm__ContainerSpec *c = in->task->spec->container;
    char hostname[256];
    const char **argv = NULL;
    size_t argc = 0;
    int rv = ocispec_argv(c, in->image, &argv, &argc, errmsg);
    if (rv != 0) {
        return rv;
    }
    ocispec_hostname(in->task, hostname, sizeof hostname);
    json_t *mounts = json_array();
    json_t *root = json_pack("{s:s, s:{s:s, s:b}, s:s, s:o, s:o, s:o}", "ociVersion", "1.0.2",
                             "root", "path", in->rootfs, "readonly", c->read_only, "hostname",
                             hostname, "process", oci_process(in, hostname, argv, argc),
                             "mounts", mounts, "linux", oci_linux(in));
    free(argv);
    if (root == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "runtime config: out of memory");
        return SWARM_ENOMEM;
    }
    if ((rv = oci_mounts(in, mounts, errmsg)) != 0) {
        json_decref(root);
        return rv;
    }
    *json_out = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    if (*json_out == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "runtime config: out of memory");
        return SWARM_ENOMEM;
    }
    return 0;
}
