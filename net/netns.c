/* Network namespaces (netns.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "netns.h"
#include "nlink.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

struct netns_job {
    int nsfd;
    int (*fn)(void *arg);
    void *arg;
    int rv;
};

static void *netns_thread(void *data)
{
    struct netns_job *j = data;
    if (j->nsfd >= 0 && setns(j->nsfd, CLONE_NEWNET) != 0) {
        j->rv = -errno;
        return NULL;
    }
    j->rv = j->fn(j->arg);
    return NULL;
}

int netns_run(int nsfd, int (*fn)(void *arg), void *arg)
{
    struct netns_job j = {nsfd, fn, arg, 0};
    pthread_t th;
    int rv = pthread_create(&th, NULL, netns_thread, &j);
    if (rv != 0) {
        return -rv;
    }
    pthread_join(th, NULL);
    return j.rv;
}

static int netns_new_cb(void *arg)
{
    const char *path = arg;
    if (unshare(CLONE_NEWNET) != 0) {
        return -errno;
    }
    if (mount("/proc/thread-self/ns/net", path, NULL, MS_BIND, NULL) != 0) {
        return -errno;
    }
    return 0;
}

int netns_create(const char *path)
{
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) {
        return -errno;
    }
    close(fd);
    int rv = netns_run(-1, netns_new_cb, (void *)path);
    if (rv != 0) {
        unlink(path);
    }
    return rv;
}

int netns_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

bool netns_is_mounted(const char *path)
{
    struct statfs st;
    return statfs(path, &st) == 0 && st.f_type == NSFS_MAGIC;
}

void netns_remove(const char *path)
{
    for (int i = 0; i < 8 && netns_is_mounted(path); i++) {
        (void)umount2(path, MNT_DETACH);
    }
    (void)unlink(path);
}

struct netns_nl {
    struct mnl_socket *nl;
    int err;
};

static int netns_nl_cb(void *arg)
{
    struct netns_nl *n = arg;
    n->nl = nlink_open();
    n->err = n->nl == NULL ? errno : 0;
    return 0;
}

struct mnl_socket *netns_nl_open(int nsfd)
{
    struct netns_nl n = {NULL, 0};
    int rv = netns_run(nsfd, netns_nl_cb, &n);
    if (rv != 0) {
        errno = -rv;
        return NULL;
    }
    errno = n.err;
    return n.nl;
}

int netns_dir_share(const char *dir)
{
    if (mount(NULL, dir, NULL, MS_SHARED, NULL) == 0) {
        return 0; /* a mount point already: our bind of a previous run */
    }
    if (errno != EINVAL) {
        return -errno;
    }
    if (mount(dir, dir, NULL, MS_BIND, NULL) != 0 ||
        mount(NULL, dir, NULL, MS_SHARED, NULL) != 0) {
        return -errno;
    }
    return 0;
}
