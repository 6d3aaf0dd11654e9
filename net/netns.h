/* Network namespaces kept alive by a bind mount at a path (as `ip netns`
 * does, under swarmd's state dir), entered only by short-lived threads:
 * the caller's own namespace never changes. */
#ifndef SWARM_NET_NETNS_H
#define SWARM_NET_NETNS_H

#include <stdbool.h>

struct mnl_socket;

/* A new network namespace bind-mounted at `path` (a file made O_EXCL
 * first, so that the path records it even if we die before the mount).
 * 0, or -errno. On failure the file is gone. */
int netns_create(const char *path);
/* Open the namespace at `path` (O_CLOEXEC); fd or -errno. */
int netns_open(const char *path);
/* Whether `path` is a namespace bind mount. */
bool netns_is_mounted(const char *path);
/* Unmount (lazily) and unlink `path`; a path that is not mounted is only
 * unlinked. */
void netns_remove(const char *path);
/* Run fn(arg) on a thread that first enters the namespace `nsfd` (-1: the
 * caller's). Returns fn's result, or -errno if the thread or setns failed. */
int netns_run(int nsfd, int (*fn)(void *arg), void *arg);
/* A NETLINK_ROUTE socket that lives in the namespace `nsfd`; NULL and
 * errno when it cannot be made. */
struct mnl_socket *netns_nl_open(int nsfd);
/* Make `dir` a mount point of its own with shared propagation (a bind
 * mount on itself unless it is a mount point already). 0 or -errno. */
int netns_dir_share(const char *dir);

#endif
