/* What keeps a task away from swarmd's secrets and from the host (issue
 * 9), and the user it runs as. Two sides:
 *   swarmd: exec_user_resolve turns a ContainerSpec.user ("user[:group]",
 *           names or numbers) into numbers with the node's passwd and group
 *           files, and exec_user_format/parse carry them to the shim in
 *           SWARM_SHIM_USER;
 *   shim:   exec_isolate_mounts gives the task its own mount namespace in
 *           which swarmd's state dir (keys, store.db, control socket) and
 *           the cgroup file systems are empty read-only tmpfs and the task
 *           dir root shows only the task's own dir; exec_isolate_creds drops to Docker's default
 *           capability set, the task's user and groups, and no_new_privs.
 * Both shim steps run as root; a failure stops the task before it runs
 * (nothing half-isolated is ever started). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "executor_int.h"

/* Parse a decimal id (uid or gid); -1 when `s` is not all digits. */
static int64_t isolate_number(const char *s, size_t len)
{
    int64_t v = 0;
    if (len == 0 || len > 10) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v <= UINT32_MAX - 1 ? v : -1; /* (uid_t)-1 means "unchanged" */
}

int exec_user_resolve(const char *spec, struct exec_user *u, char *err)
{
    char name[256];
    const char *colon = strchr(spec, ':');
    size_t ulen = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
    memset(u, 0, sizeof *u);
    if (ulen == 0 || ulen >= sizeof name || (colon != NULL && colon[1] == '\0') ||
        (colon != NULL && strchr(colon + 1, ':') != NULL)) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "invalid user \"%s\": want user[:group] (name or number)", spec);
        return -1;
    }
    memcpy(name, spec, ulen);
    name[ulen] = '\0';
    int64_t num = isolate_number(name, ulen);
    struct passwd *pw = num >= 0 ? getpwuid((uid_t)num) : getpwnam(name);
    if (pw == NULL && num < 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "unable to find user %s: no matching entries in passwd file", name);
        return -1;
    }
    /* runc: a number without a passwd entry runs with gid 0. */
    u->uid = num >= 0 ? (uid_t)num : pw->pw_uid;
    u->gid = pw != NULL ? pw->pw_gid : 0;
    if (colon != NULL) {
        const char *g = colon + 1;
        int64_t gnum = isolate_number(g, strlen(g));
        struct group *gr = gnum >= 0 ? NULL : getgrnam(g);
        if (gnum < 0 && gr == NULL) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "unable to find group %s: no matching entries in group file", g);
            return -1;
        }
        u->gid = gnum >= 0 ? (gid_t)gnum : gr->gr_gid;
    }
    u->groups[0] = u->gid;
    u->ngroups = 1;
    if (pw != NULL) {
        int n = EXEC_USER_GROUPS_MAX;
        if (getgrouplist(pw->pw_name, u->gid, u->groups, &n) < 0) {
            n = EXEC_USER_GROUPS_MAX; /* more than we carry: keep the first ones */
        }
        u->ngroups = (size_t)n;
    }
    return 0;
}

int exec_user_format(const struct exec_user *u, char *out, size_t size)
{
    int n = snprintf(out, size, "%u:%u:", (unsigned)u->uid, (unsigned)u->gid);
    for (size_t i = 0; i < u->ngroups && n >= 0 && (size_t)n < size; i++) {
        n += snprintf(out + n, size - (size_t)n, "%s%u", i > 0 ? "," : "", (unsigned)u->groups[i]);
    }
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

int exec_user_parse(const char *s, struct exec_user *u)
{
    char *end;
    memset(u, 0, sizeof *u);
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end != ':') {
        return -1;
    }
    u->uid = (uid_t)v;
    s = end + 1;
    v = strtoul(s, &end, 10);
    if (end == s || *end != ':') {
        return -1;
    }
    u->gid = (gid_t)v;
    s = end + 1;
    while (*s != '\0' && u->ngroups < EXEC_USER_GROUPS_MAX) {
        v = strtoul(s, &end, 10);
        if (end == s || (*end != ',' && *end != '\0')) {
            return -1;
        }
        u->groups[u->ngroups++] = (gid_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    return 0;
}

bool exec_path_within(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') {
        n--;
    }
    if (n == 1 && dir[0] == '/') {
        return path[0] == '/';
    }
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* An empty tmpfs over `dir`; read-only unless `rw`. */
static int isolate_tmpfs(const char *dir, bool rw, char *err)
{
    unsigned long fl = MS_NOSUID | MS_NODEV | MS_NOEXEC | (rw ? 0 : MS_RDONLY);
    if (mount("tmpfs", dir, "tmpfs", fl, "mode=0755,size=64k") != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "hiding %s: mount: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int exec_isolate_mounts(const char *hide, const char *task_root, const char *task_dir, char *err)
{
    char cwd[PATH_MAX], own_path[64], own_mnt[PATH_MAX];
    int own = -1, rv = -1;
    if (getcwd(cwd, sizeof cwd) == NULL) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "working dir: %s", strerror(errno));
        return -1;
    }
    if (unshare(CLONE_NEWNS) != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "mount namespace: %s", strerror(errno));
        goto out;
    }
    /* Our mounts must not reach the host; the host's still reach us. */
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "mount namespace: making / a slave: %s", strerror(errno));
        goto out;
    }
    /* Taken in the new namespace (a bind source must be in ours), before
     * the tmpfs covers it. */
    if (task_root != NULL && task_dir != NULL &&
        (own = open(task_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "task dir %s: %s", task_dir, strerror(errno));
        goto out;
    }
    if (hide != NULL && isolate_tmpfs(hide, false, err) != 0) {
        goto out;
    }
    /* Without the cgroup file systems a task cannot move out of its cgroup
     * (swarmd kills it whole through it) nor into another. */
    struct stat st;
    if (stat(EXEC_CGROUP_FS, &st) == 0 && S_ISDIR(st.st_mode) &&
        isolate_tmpfs(EXEC_CGROUP_FS, false, err) != 0) {
        goto out;
    }
    if (own >= 0) {
        /* The other tasks' dirs go; the task's own comes back. */
        const char *base = strrchr(task_dir, '/');
        snprintf(own_path, sizeof own_path, "/proc/self/fd/%d", own);
        snprintf(own_mnt, sizeof own_mnt, "%s/%s", task_root, base != NULL ? base + 1 : task_dir);
        if (isolate_tmpfs(task_root, true, err) != 0) {
            goto out;
        }
        if (mkdir(own_mnt, 0700) != 0 || mount(own_path, own_mnt, NULL, MS_BIND, NULL) != 0 ||
            mount(NULL, task_root, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  NULL) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "task dir %s: %s", own_mnt, strerror(errno));
            goto out;
        }
    }
    /* Our cwd still points at the dir as it was before the mounts: walk to
     * it again, through them, so that ".." leads where the task sees. */
    if (chdir(cwd) != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "working dir %s is not visible to the task: %s", cwd,
                 strerror(errno));
        goto out;
    }
    rv = 0;
out:
    if (own >= 0) {
        close(own);
    }
    return rv;
}

int exec_isolate_creds(const struct exec_user *u, bool drop_caps, char *err)
{
    if (drop_caps) {
        int last = CAP_LAST_CAP;
        FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
        if (f != NULL) {
            if (fscanf(f, "%d", &last) != 1 || last < 0 || last > 63) {
                last = CAP_LAST_CAP;
            }
            fclose(f);
        }
        for (int cap = 0; cap <= last; cap++) {
            if ((EXEC_DOCKER_CAPS & (UINT64_C(1) << cap)) == 0 &&
                prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
                errmsg_printf(err, SWARM_ERRMSG_SIZE, "dropping capability %d: %s", cap, strerror(errno));
                return -1;
            }
        }
        (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        /* Only the task's groups, not swarmd's. */
        const gid_t *groups = u != NULL ? u->groups : NULL;
        if (setgroups(u != NULL ? u->ngroups : 0, groups) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "setgroups: %s", strerror(errno));
            return -1;
        }
    }
    if (u != NULL && (setgid(u->gid) != 0 || setuid(u->uid) != 0)) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "running as %u:%u: %s", (unsigned)u->uid, (unsigned)u->gid,
                 strerror(errno));
        return -1;
    }
    if (drop_caps && geteuid() == 0) {
        /* Root keeps Docker's set (a user other than root has none left
         * after setuid). Nothing inheritable, as Docker since 20.10.14. */
        struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof data);
        data[0].effective = data[0].permitted = (uint32_t)EXEC_DOCKER_CAPS;
        data[1].effective = data[1].permitted = (uint32_t)(EXEC_DOCKER_CAPS >> 32);
        if (syscall(SYS_capset, &hdr, data) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "capset: %s", strerror(errno));
            return -1;
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        errmsg_printf(err, SWARM_ERRMSG_SIZE, "no_new_privs: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int exec_isolate_net(const char *netns, const char *hostname, char *err)
{
    if (netns != NULL) {
        int fd = open(netns, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "network namespace %s: %s", netns,
                          strerror(errno));
            if (fd >= 0) {
                close(fd);
            }
            return -1;
        }
        close(fd);
    }
    if (hostname != NULL) {
        if (unshare(CLONE_NEWUTS) != 0 || sethostname(hostname, strlen(hostname)) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "hostname \"%s\": %s", hostname,
                          strerror(errno));
            return -1;
        }
    }
    return 0;
}

int exec_isolate_etc(const char *dir, char *err)
{
    static const char *const files[][2] = {
        {"hosts", "/etc/hosts"}, {"resolv.conf", "/etc/resolv.conf"}, {"hostname", "/etc/hostname"},
    };
    char src[PATH_MAX];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        struct stat st;
        if (i == 2 && stat(files[i][1], &st) != 0) {
            continue; /* no /etc/hostname on this host: nothing to cover */
        }
        snprintf(src, sizeof src, "%s/%s", dir, files[i][0]);
        if (mount(src, files[i][1], NULL, MS_BIND, NULL) != 0) {
            errmsg_printf(err, SWARM_ERRMSG_SIZE, "%s: bind mount of %s: %s", files[i][1], src,
                          strerror(errno));
            return -1;
        }
    }
    return 0;
}
