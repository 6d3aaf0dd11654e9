/* Unit tests of the OCI runtime config (ocispec.c): Docker's merge rules,
 * users from the image's files, isolation defaults, mounts, resources. */
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ocispec.h"
#include "test.h"

struct fx {
    Swarm__Task task;
    Swarm__TaskSpec spec;
    Swarm__ContainerSpec c;
    Swarm__ResourceRequirements res;
    Swarm__Resources lim;
    struct ocispec_image img;
    struct ocispec_user user;
    struct ocispec_input in;
};

static char *img_ep[] = {"/bin/entry"}, *img_cmd[] = {"serve", "--port", "80"};
static char *img_env[] = {"PATH=/img/bin", "A=image", "B=image"};

static void fx_init(struct fx *f)
{
    memset(f, 0, sizeof *f);
    swarm__task__init(&f->task);
    swarm__task_spec__init(&f->spec);
    swarm__container_spec__init(&f->c);
    swarm__resource_requirements__init(&f->res);
    swarm__resources__init(&f->lim);
    f->task.id = "abcdefghijklmnopqrstuvwxy";
    f->task.slot = 2;
    f->task.service_name = "web";
    f->task.spec = &f->spec;
    f->spec.container = &f->c;
    f->spec.resources = &f->res;
    f->res.limits = &f->lim;
    f->c.image = "busybox:1";
    f->img = (struct ocispec_image){.has_entrypoint = true, .entrypoint = img_ep,
                                    .n_entrypoint = 1, .has_cmd = true, .cmd = img_cmd,
                                    .n_cmd = 3, .env = img_env, .n_env = 3,
                                    .working_dir = "/srv", .user = ""};
    f->in = (struct ocispec_input){.task = &f->task, .image = &f->img, .user = &f->user,
                                   .node_id = "node1", .rootfs = "/snap/rootfs",
                                   .hosts_path = "/t/hosts", .hostname_path = "/t/hostname",
                                   .resolv_path = "/t/resolv.conf",
                                   .cgroups_path = "/swarmd/abc", .pids_limit = 4096};
}

static json_t *fx_build(struct fx *f)
{
    char err[SWARM_ERRMSG_SIZE], *text = NULL;
    if (ocispec_build(&f->in, &text, err) != 0) {
        test_fail_(__FILE__, __LINE__, "ocispec_build: %s", err);
        return NULL;
    }
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    if (j == NULL) {
        test_fail_(__FILE__, __LINE__, "not JSON");
    }
    return j;
}

static const char *jstr(json_t *j, const char *path0, const char *path1)
{
    json_t *v = json_object_get(j, path0);
    if (path1 != NULL) {
        v = json_object_get(v, path1);
    }
    return json_string_value(v);
}

/* args as one space-joined string. */
static void jargs(json_t *j, char *out, size_t size)
{
    json_t *a = json_object_get(json_object_get(j, "process"), "args"), *v;
    size_t i, off = 0;
    out[0] = '\0';
    json_array_foreach(a, i, v) {
        off += (size_t)snprintf(out + off, size - off, "%s%s", i ? " " : "", json_string_value(v));
    }
}

static bool jhas(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) {
            return true;
        }
    }
    return false;
}

static json_t *jmount(json_t *j, const char *dst)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "mounts"), i, m) {
        if (strcmp(jstr(m, "destination", NULL), dst) == 0) {
            return m;
        }
    }
    return NULL;
}

TEST(ocispec_command_merge)
{
    struct fx f;
    char args[512];
    char *spec_args[] = {"-v"}, *spec_cmd[] = {"/bin/sh", "-c"};
    fx_init(&f);
    json_t *j = fx_build(&f);
    jargs(j, args, sizeof args);
    ASSERT_STR_EQ(args, "/bin/entry serve --port 80"); /* the image's Entrypoint + Cmd */
    json_decref(j);
    f.c.args = spec_args; /* args replace Cmd, the Entrypoint stays */
    f.c.n_args = 1;
    j = fx_build(&f);
    jargs(j, args, sizeof args);
    ASSERT_STR_EQ(args, "/bin/entry -v");
    json_decref(j);
    f.c.command = spec_cmd; /* --entrypoint: the image's Cmd goes too */
    f.c.n_command = 2;
    f.c.n_args = 0;
    j = fx_build(&f);
    jargs(j, args, sizeof args);
    ASSERT_STR_EQ(args, "/bin/sh -c");
    json_decref(j);
    f.c.init = true; /* --init: tini as pid 1, bind-mounted read-only */
    f.in.init_path = "/usr/bin/tini-static";
    j = fx_build(&f);
    jargs(j, args, sizeof args);
    ASSERT_STR_EQ(args, "/sbin/docker-init -- /bin/sh -c");
    json_t *m = jmount(j, "/sbin/docker-init");
    ASSERT(m != NULL);
    ASSERT_STR_EQ(jstr(m, "source", NULL), "/usr/bin/tini-static");
    ASSERT(jhas(json_object_get(m, "options"), "ro"));
    json_decref(j);
    /* Nothing to run at all. */
    char err[SWARM_ERRMSG_SIZE], *text = NULL;
    f.c.n_command = 0;
    f.img.n_entrypoint = f.img.n_cmd = 0;
    ASSERT_INT_EQ(ocispec_build(&f.in, &text, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "No command specified");
    f.c.init = true;
    f.in.init_path = NULL;
    f.c.n_args = 1;
    ASSERT_INT_EQ(ocispec_build(&f.in, &text, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "--init: no init binary (tini) on this node");
}

TEST(ocispec_env_cwd_hostname)
{
    struct fx f;
    char *spec_env[] = {"B=spec", "C=spec"};
    fx_init(&f);
    f.c.env = spec_env;
    f.c.n_env = 2;
    json_t *j = fx_build(&f);
    json_t *env = json_object_get(json_object_get(j, "process"), "env");
    ASSERT(jhas(env, "PATH=/img/bin") && jhas(env, "A=image") && jhas(env, "B=spec") &&
           jhas(env, "C=spec") && !jhas(env, "B=image"));
    ASSERT(jhas(env, "HOSTNAME=abcdefghijkl") && jhas(env, "SWARM_TASK_ID=abcdefghijklmnopqrstuvwxy"));
    ASSERT(jhas(env, "SWARM_TASK_SLOT=2") && jhas(env, "SWARM_NODE_ID=node1"));
    ASSERT_STR_EQ(jstr(j, "hostname", NULL), "abcdefghijkl");
    ASSERT_STR_EQ(jstr(j, "process", "cwd"), "/srv");
    json_decref(j);
    f.c.dir = "/work";
    f.c.hostname = "web-host";
    f.img.n_env = 0; /* no PATH in the image: Docker's */
    j = fx_build(&f);
    env = json_object_get(json_object_get(j, "process"), "env");
    ASSERT(jhas(env, "PATH=" OCISPEC_DEFAULT_PATH));
    ASSERT_STR_EQ(jstr(j, "process", "cwd"), "/work");
    ASSERT_STR_EQ(jstr(j, "hostname", NULL), "web-host");
    json_decref(j);
    f.c.dir = NULL;
    f.img.working_dir = "";
    j = fx_build(&f);
    ASSERT_STR_EQ(jstr(j, "process", "cwd"), "/");
    json_decref(j);
}

TEST(ocispec_isolation_defaults)
{
    struct fx f;
    char *add[] = {"NET_ADMIN"}, *drop[] = {"CAP_CHOWN"};
    fx_init(&f);
    json_t *j = fx_build(&f);
    json_t *p = json_object_get(j, "process"), *lx = json_object_get(j, "linux");
    ASSERT(json_is_true(json_object_get(p, "noNewPrivileges")));
    json_t *caps = json_object_get(json_object_get(p, "capabilities"), "bounding");
    ASSERT_INT_EQ(json_array_size(caps), 14); /* Docker's default set */
    ASSERT(jhas(caps, "CAP_CHOWN") && jhas(caps, "CAP_NET_BIND_SERVICE") &&
           !jhas(caps, "CAP_SYS_ADMIN") && !jhas(caps, "CAP_NET_ADMIN"));
    json_t *ns = json_object_get(lx, "namespaces");
    ASSERT_INT_EQ(json_array_size(ns), 4); /* pid ipc uts mount; the host's network */
    ASSERT(jhas(json_object_get(lx, "maskedPaths"), "/proc/kcore"));
    ASSERT(jhas(json_object_get(lx, "readonlyPaths"), "/proc/sys"));
    ASSERT(json_is_false(json_object_get(json_object_get(j, "root"), "readonly")));
    ASSERT_STR_EQ(jstr(json_object_get(j, "root"), "path", NULL), "/snap/rootfs");
    ASSERT_STR_EQ(jstr(lx, "cgroupsPath", NULL), "/swarmd/abc");
    ASSERT_STR_EQ(jstr(jmount(j, "/etc/hosts"), "source", NULL), "/t/hosts");
    ASSERT_STR_EQ(jstr(jmount(j, "/etc/hostname"), "source", NULL), "/t/hostname");
    ASSERT_STR_EQ(jstr(jmount(j, "/etc/resolv.conf"), "source", NULL), "/t/resolv.conf");
    ASSERT(jhas(json_object_get(jmount(j, "/sys"), "options"), "ro"));
    json_decref(j);
    f.c.cap_add = add;
    f.c.n_cap_add = 1;
    f.c.cap_drop = drop;
    f.c.n_cap_drop = 1;
    f.c.read_only = true;
    f.in.netns = "/run/netns/t1";
    j = fx_build(&f);
    p = json_object_get(j, "process");
    caps = json_object_get(json_object_get(p, "capabilities"), "effective");
    ASSERT(jhas(caps, "CAP_NET_ADMIN") && !jhas(caps, "CAP_CHOWN"));
    ns = json_object_get(json_object_get(j, "linux"), "namespaces");
    ASSERT_INT_EQ(json_array_size(ns), 5);
    ASSERT_STR_EQ(jstr(json_array_get(ns, 4), "path", NULL), "/run/netns/t1");
    ASSERT(json_is_true(json_object_get(json_object_get(j, "root"), "readonly")));
    json_decref(j);
}

TEST(ocispec_mounts_and_resources)
{
    struct fx f;
    Swarm__Mount m[3], *ms[3] = {&m[0], &m[1], &m[2]};
    const char *vols[3] = {NULL, "/state/volumes/data/_data", NULL};
    fx_init(&f);
    for (int i = 0; i < 3; i++) {
        swarm__mount__init(&m[i]);
    }
    m[0].type = "bind", m[0].source = "/srv/www", m[0].target = "/www", m[0].readonly = true;
    m[1].type = "volume", m[1].source = "data", m[1].target = "/data";
    m[2].type = "tmpfs", m[2].source = "", m[2].target = "/scratch", m[2].tmpfs_size_bytes = 1 << 20;
    f.c.mounts = ms;
    f.c.n_mounts = 3;
    f.in.volume_dirs = vols;
    f.lim.memory_bytes = 64 << 20;
    f.lim.nano_cpus = 500000000;
    json_t *j = fx_build(&f);
    json_t *www = jmount(j, "/www"), *data = jmount(j, "/data"), *tmp = jmount(j, "/scratch");
    ASSERT(www != NULL && data != NULL && tmp != NULL);
    ASSERT_STR_EQ(jstr(www, "type", NULL), "bind");
    ASSERT(jhas(json_object_get(www, "options"), "ro"));
    ASSERT_STR_EQ(jstr(data, "source", NULL), "/state/volumes/data/_data");
    ASSERT(!jhas(json_object_get(data, "options"), "ro"));
    ASSERT_STR_EQ(jstr(tmp, "type", NULL), "tmpfs");
    ASSERT(jhas(json_object_get(tmp, "options"), "size=1048576"));
    json_t *res = json_object_get(json_object_get(j, "linux"), "resources");
    ASSERT_INT_EQ(json_integer_value(json_object_get(json_object_get(res, "memory"), "limit")),
                  64 << 20);
    ASSERT_INT_EQ(json_integer_value(json_object_get(json_object_get(res, "cpu"), "quota")),
                  50000);
    ASSERT_INT_EQ(json_integer_value(json_object_get(json_object_get(res, "cpu"), "period")),
                  100000);
    ASSERT_INT_EQ(json_integer_value(json_object_get(json_object_get(res, "pids"), "limit")),
                  4096);
    json_decref(j);
    char err[SWARM_ERRMSG_SIZE], *text = NULL;
    f.in.volume_dirs = NULL; /* a volume the executor did not make */
    ASSERT_INT_EQ(ocispec_build(&f.in, &text, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid mount config for type \"volume\"");
}

TEST(ocispec_users_from_image_files)
{
    const char *passwd = "root:x:0:0:root:/root:/bin/sh\n"
                         "# comment\n"
                         "www:x:33:33:www:/var/www:/bin/false\n"
                         "app:x:1000:1000::/home/app:/bin/sh";
    const char *group = "root:x:0:\nwww:x:33:\nstaff:x:50:app,www\nadm:x:4:app\n";
    struct ocispec_user u;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(ocispec_user_resolve("", passwd, group, &u, err), 0);
    ASSERT(u.uid == 0 && u.gid == 0);
    ASSERT_INT_EQ(ocispec_user_resolve("app", passwd, group, &u, err), 0);
    ASSERT(u.uid == 1000 && u.gid == 1000 && u.ngroups == 2 && u.groups[0] == 50 &&
           u.groups[1] == 4);
    ASSERT_INT_EQ(ocispec_user_resolve("www:staff", passwd, group, &u, err), 0);
    ASSERT(u.uid == 33 && u.gid == 50);
    ASSERT_INT_EQ(ocispec_user_resolve("4242", passwd, group, &u, err), 0);
    ASSERT(u.uid == 4242 && u.gid == 0);
    ASSERT_INT_EQ(ocispec_user_resolve("1000:7", NULL, NULL, &u, err), 0);
    ASSERT(u.uid == 1000 && u.gid == 7);
    ASSERT_INT_EQ(ocispec_user_resolve("nobody", passwd, group, &u, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "unable to find user nobody: no matching entries in passwd file");
    ASSERT_INT_EQ(ocispec_user_resolve("app:wheel", passwd, group, &u, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "unable to find group wheel: no matching entries in group file");
    ASSERT_INT_EQ(ocispec_user_resolve("app", NULL, NULL, &u, err), SWARM_EINVAL);
}

TEST(ocispec_stop_signals)
{
    ASSERT_INT_EQ(ocispec_stop_signal(NULL, NULL), SIGTERM);
    ASSERT_INT_EQ(ocispec_stop_signal("", "SIGQUIT"), SIGQUIT);
    ASSERT_INT_EQ(ocispec_stop_signal("SIGINT", "SIGQUIT"), SIGINT);
    ASSERT_INT_EQ(ocispec_stop_signal("usr1", NULL), SIGUSR1);
    ASSERT_INT_EQ(ocispec_stop_signal("9", NULL), 9);
    ASSERT_INT_EQ(ocispec_stop_signal("SIGNOPE", NULL), -1);
    ASSERT_INT_EQ(ocispec_stop_signal("999", NULL), -1);
}

TEST_MAIN()
