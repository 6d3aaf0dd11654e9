/* The node's data plane (net/): the pure planning (netplan.h) as is, and
 * netplane.h against the kernel, as root, each case in network and mount
 * namespaces of its own (cases that need root say why they are skipped
 * and pass when not root). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/neighbour.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"
#include "netplan.h"
#include "netplane.h"
#include "nlink.h"
#include "test.h"

/* ---- message builders (malloc'd, freed with free_unpacked) ------------- */

static Swarm__Network *mk_network(const char *id, uint32_t vni, const char *subnet,
                                  const char *gw)
{
    Swarm__Network *n = malloc(sizeof *n);
    swarm__network__init(n);
    n->id = strdup(id);
    n->vni = vni;
    n->ipam = malloc(sizeof *n->ipam);
    swarm__ipamconfig__init(n->ipam);
    n->ipam->subnet = strdup(subnet);
    n->ipam->gateway = strdup(gw);
    return n;
}

/* A task attached to networks nets[i] with addrs[i] (CIDR). */
static Swarm__Task *mk_task(const char *id, size_t n, Swarm__Network *const *nets,
                            const char *const *addrs)
{
    Swarm__Task *t = malloc(sizeof *t);
    swarm__task__init(t);
    t->id = strdup(id);
    t->n_networks = n;
    t->networks = calloc(n, sizeof *t->networks);
    for (size_t i = 0; i < n; i++) {
        Swarm__NetworkAttachment *a = malloc(sizeof *a);
        swarm__network_attachment__init(a);
        a->network = mk_network(nets[i]->id, nets[i]->vni, nets[i]->ipam->subnet,
                                nets[i]->ipam->gateway);
        a->n_addresses = 1;
        a->addresses = malloc(sizeof *a->addresses);
        a->addresses[0] = strdup(addrs[i]);
        t->networks[i] = a;
    }
    return t;
}

static Swarm__NetworkMap *mk_map(const Swarm__Network *net)
{
    Swarm__NetworkMap *m = malloc(sizeof *m);
    swarm__network_map__init(m);
    m->network = mk_network(net->id, net->vni, net->ipam->subnet, net->ipam->gateway);
    return m;
}

static void map_add_ep(Swarm__NetworkMap *m, const char *task, const char *service,
                       const char *addr, const char *node, bool ready)
{
    Swarm__NetworkEndpoint *e = malloc(sizeof *e);
    swarm__network_endpoint__init(e);
    e->task_id = strdup(task);
    e->service_id = strdup(service);
    e->addr = strdup(addr);
    e->node_addr = strdup(node);
    e->ready = ready;
    m->endpoints = realloc(m->endpoints, (m->n_endpoints + 1) * sizeof *m->endpoints);
    m->endpoints[m->n_endpoints++] = e;
}

static void map_add_svc(Swarm__NetworkMap *m, const char *id, const char *name, const char *vip,
                        const char *mode)
{
    Swarm__NetworkServiceEntry *s = malloc(sizeof *s);
    swarm__network_service_entry__init(s);
    s->service_id = strdup(id);
    s->name = strdup(name);
    s->vip = strdup(vip);
    s->endpoint_mode = strdup(mode);
    m->services = realloc(m->services, (m->n_services + 1) * sizeof *m->services);
    m->services[m->n_services++] = s;
}

/* ---- pure planning ------------------------------------------------------ */

TEST(netplan_parses_addresses_and_derives_macs)
{
    uint32_t ip;
    int prefix;
    uint8_t mac[6];
    ASSERT_INT_EQ(netplan_parse_cidr("10.0.1.5/24", &ip, &prefix, 1), 0);
    ASSERT_INT_EQ(ip, 0x0a000105);
    ASSERT_INT_EQ(prefix, 24);
    ASSERT_INT_EQ(netplan_parse_cidr("10.0.1.5", &ip, &prefix, 0), 0);
    ASSERT_INT_EQ(prefix, 32);
    ASSERT(netplan_parse_cidr("10.0.1.5", &ip, &prefix, 1) != 0);
    ASSERT(netplan_parse_cidr("10.0.1.5/33", &ip, &prefix, 1) != 0);
    ASSERT(netplan_parse_cidr("10.0.1/24", &ip, &prefix, 1) != 0);
    ASSERT(netplan_parse_cidr("10.0.1.5/2x", &ip, &prefix, 1) != 0);
    ASSERT(netplan_parse_ip("", &ip) != 0);
    netplan_mac_from_ip(0x0a000105, mac);
    const uint8_t want[6] = {0x02, 0x42, 10, 0, 1, 5};
    ASSERT(memcmp(mac, want, 6) == 0);
}

TEST(netplan_gwbridge_picks_the_first_free_subnet)
{
    uint32_t sub = 0;
    int prefix = 0;
    /* Nothing in use (a default route does not count): Docker's first. */
    struct netplan_prefix none[] = {{0, 0}};
    ASSERT_INT_EQ(netplan_gwbridge_pick(none, 1, &sub, &prefix), 0);
    ASSERT_INT_EQ(sub, 0xac110000); /* 172.17.0.0/16 */
    ASSERT_INT_EQ(prefix, 16);
    ASSERT_INT_EQ(netplan_gwbridge_pick(NULL, 0, &sub, &prefix), 0);
    ASSERT_INT_EQ(sub, 0xac110000);
    /* docker0's address, a route inside 172.18, a /32 host route in
     * 172.19, a swarm network's subnet that is not in the way. */
    struct netplan_prefix some[] = {{0xac110001, 16}, {0xac120500, 24}, {0xac130707, 32},
                                    {0x0a000000, 8}, {0, 0}};
    ASSERT_INT_EQ(netplan_gwbridge_pick(some, 5, &sub, &prefix), 0);
    ASSERT_INT_EQ(sub, 0xac140000); /* 172.20.0.0/16 */
    ASSERT_INT_EQ(prefix, 16);
    /* A wider route over all of 172.16/12 and an address in 192.168.0/20:
     * 192.168.16.0/20. */
    struct netplan_prefix wide[] = {{0xac100000, 12}, {0xc0a80a01, 24}};
    ASSERT_INT_EQ(netplan_gwbridge_pick(wide, 2, &sub, &prefix), 0);
    ASSERT_INT_EQ(sub, 0xc0a81000);
    ASSERT_INT_EQ(prefix, 20);
    /* A swarm network covering 192.168/16 too: nothing left. */
    struct netplan_prefix full[] = {{0xac100000, 12}, {0xc0a80000, 16}};
    ASSERT_INT_EQ(netplan_gwbridge_pick(full, 2, &sub, &prefix), SWARM_ENOTFOUND);
    ASSERT(netplan_prefix_overlap(0xac110000, 16, 0xac11ff01, 32));
    ASSERT(!netplan_prefix_overlap(0xac110000, 16, 0xac120000, 16));
}

TEST(netplan_gwbridge_subnet_flag_is_validated)
{
    char err[SWARM_ERRMSG_SIZE];
    uint32_t sub = 7;
    int prefix = 7;
    ASSERT_INT_EQ(netplan_gwbridge_parse("10.200.0.0/16", &sub, &prefix, err), 0);
    ASSERT_INT_EQ(sub, 0x0ac80000);
    ASSERT_INT_EQ(prefix, 16);
    sub = 7;
    prefix = 7;
    ASSERT_INT_EQ(netplan_gwbridge_parse("10.200.0.0", &sub, &prefix, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid --gwbridge-subnet \"10.200.0.0\": want an IPv4 subnet such as "
                       "172.18.0.0/16");
    ASSERT_INT_EQ(netplan_gwbridge_parse("nonsense", &sub, &prefix, err), SWARM_EINVAL);
    ASSERT_INT_EQ(netplan_gwbridge_parse("10.200.0.0/30", &sub, &prefix, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid --gwbridge-subnet \"10.200.0.0/30\": the prefix must be 8 to 29");
    ASSERT_INT_EQ(netplan_gwbridge_parse("10.200.1.0/16", &sub, &prefix, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid --gwbridge-subnet \"10.200.1.0/16\": not a network address "
                       "(10.200.0.0/16 is)");
    ASSERT_INT_EQ(netplan_gwbridge_parse("127.0.0.0/8", &sub, &prefix, err), SWARM_EINVAL);
    ASSERT_INT_EQ(netplan_gwbridge_parse("224.0.0.0/8", &sub, &prefix, err), SWARM_EINVAL);
    ASSERT_INT_EQ(sub, 7); /* nothing set on error */
    ASSERT_INT_EQ(prefix, 7);
}

TEST(netplan_gwbridge_ruleset_masquerades_and_forbids_crossing)
{
    char *r = netplan_gwbridge_ruleset(0xac120000, 16, "swgwbridge");
    ASSERT(r != NULL);
    ASSERT(strstr(r, "delete table ip swarmd_gwbridge\n") != NULL);
    ASSERT(strstr(r, "ip saddr 172.18.0.0/16 oifname != \"swgwbridge\" masquerade\n") != NULL);
    ASSERT(strstr(r, "type filter hook forward priority filter; policy accept;\n"
                     "    iifname \"swgwbridge\" oifname \"swgwbridge\" drop\n") != NULL);
    free(r);
}

TEST(netplan_peers_are_remote_endpoints_and_diff_exactly)
{
    Swarm__Network *net = mk_network("n1", 4097, "10.0.1.0/24", "10.0.1.1");
    Swarm__NetworkMap *m = mk_map(net);
    uint32_t me = 0xc0a80001; /* 192.168.0.1 */
    map_add_ep(m, "t1", "s", "10.0.1.3", "192.168.0.1", true); /* local: no peer */
    map_add_ep(m, "t2", "s", "10.0.1.9", "192.168.0.2", true);
    map_add_ep(m, "t3", "s", "10.0.1.4", "192.168.0.3", false); /* not ready: still a peer */
    struct netplan_peer *a, *b, out[4];
    size_t na, nb;
    ASSERT_INT_EQ(netplan_peers(m, me, &a, &na), 0);
    ASSERT_INT_EQ(na, 2);
    ASSERT_INT_EQ(a[0].ip, 0x0a000104); /* sorted */
    ASSERT_INT_EQ(a[0].node, 0xc0a80003);
    ASSERT_INT_EQ(a[0].mac[5], 4);
    ASSERT_INT_EQ(a[1].ip, 0x0a000109);
    /* t2 moves to another node, t3 goes, t4 comes. */
    free(m->endpoints[1]->node_addr);
    m->endpoints[1]->node_addr = strdup("192.168.0.7");
    swarm__network_endpoint__free_unpacked(m->endpoints[2], NULL);
    m->n_endpoints = 2;
    map_add_ep(m, "t4", "s", "10.0.1.20", "192.168.0.3", true);
    ASSERT_INT_EQ(netplan_peers(m, me, &b, &nb), 0);
    ASSERT_INT_EQ(nb, 2);
    size_t k = netplan_peers_minus(a, na, b, nb, out); /* to delete */
    ASSERT_INT_EQ(k, 2);
    ASSERT_INT_EQ(out[0].ip, 0x0a000104);
    ASSERT_INT_EQ(out[1].ip, 0x0a000109);
    ASSERT_INT_EQ(out[1].node, 0xc0a80002);
    k = netplan_peers_minus(b, nb, a, na, out); /* to add */
    ASSERT_INT_EQ(k, 2);
    ASSERT_INT_EQ(out[0].ip, 0x0a000109);
    ASSERT_INT_EQ(out[0].node, 0xc0a80007);
    ASSERT_INT_EQ(out[1].ip, 0x0a000114);
    ASSERT_INT_EQ(netplan_peers_minus(b, nb, b, nb, out), 0);
    free(a);
    free(b);
    swarm__network_map__free_unpacked(m, NULL);
    swarm__network__free_unpacked(net, NULL);
}

TEST(netplan_vip_ruleset_spreads_over_ready_endpoints_only)
{
    Swarm__Network *net = mk_network("n1", 4097, "10.0.1.0/24", "10.0.1.1");
    Swarm__NetworkMap *m = mk_map(net);
    map_add_svc(m, "web", "web", "10.0.1.2", "vip");
    map_add_svc(m, "db", "db", "10.0.1.7", "vip");
    map_add_svc(m, "rr", "rr", "", "dnsrr");
    map_add_ep(m, "t1", "web", "10.0.1.3", "192.168.0.1", true);
    map_add_ep(m, "t2", "web", "10.0.1.4", "192.168.0.2", false);
    map_add_ep(m, "t3", "web", "10.0.1.5", "192.168.0.2", true);
    map_add_ep(m, "t4", "db", "10.0.1.8", "192.168.0.2", false);
    map_add_ep(m, "t5", "rr", "10.0.1.9", "192.168.0.2", true);
    const Swarm__NetworkMap *maps[] = {m};
    char *s = netplan_vip_ruleset(maps, 1);
    ASSERT(s != NULL);
    ASSERT(strstr(s, "ip daddr 10.0.1.2 dnat to numgen random mod 2 map { 0 : 10.0.1.3, "
                     "1 : 10.0.1.5 }") != NULL);
    ASSERT(strstr(s, "10.0.1.4") == NULL);
    ASSERT(strstr(s, "ip daddr 10.0.1.7 meta l4proto tcp reject with tcp reset") != NULL);
    ASSERT(strstr(s, "10.0.1.9") == NULL);
    ASSERT(strstr(s, "delete table ip swarmd") != NULL);
    free(s);
    s = netplan_vip_ruleset(NULL, 0);
    ASSERT(s != NULL && strstr(s, "dnat") == NULL);
    free(s);
    swarm__network_map__free_unpacked(m, NULL);
    swarm__network__free_unpacked(net, NULL);
}

TEST(netplan_hosts_and_hostname)
{
    Swarm__Network *n1 = mk_network("n1", 4097, "10.0.1.0/24", "10.0.1.1");
    Swarm__Network *n2 = mk_network("n2", 4098, "10.0.2.0/24", "10.0.2.1");
    Swarm__Network *nets[] = {n1, n2};
    const char *addrs[] = {"10.0.1.5/24", "10.0.2.5/24"};
    Swarm__Task *t = mk_task("abcdefghijklmnopq", 2, nets, addrs);
    char host[64];
    netplan_hostname(t, host);
    ASSERT_STR_EQ(host, "abcdefghijkl");
    t->spec = malloc(sizeof *t->spec);
    swarm__task_spec__init(t->spec);
    t->spec->container = malloc(sizeof *t->spec->container);
    swarm__container_spec__init(t->spec->container);
    t->spec->container->hostname = strdup("web-1");
    netplan_hostname(t, host);
    ASSERT_STR_EQ(host, "web-1");
    char *h = netplan_hosts(t, host);
    ASSERT(h != NULL);
    ASSERT(strstr(h, "127.0.0.1\tlocalhost\n") != NULL);
    ASSERT(strstr(h, "10.0.1.5\tweb-1\n10.0.2.5\tweb-1\n") != NULL);
    free(h);
    swarm__task__free_unpacked(t, NULL);
    swarm__network__free_unpacked(n1, NULL);
    swarm__network__free_unpacked(n2, NULL);
}

/* ---- against the kernel (root) ---------------------------------------- */

struct node {
    char dir[PATH_MAX];
    struct netplane *np;
};

/* This case's own network and mount namespaces, lo up, a state dir. False
 * (after saying why) when not root. */
static bool node_enter(struct node *n)
{
    if (geteuid() != 0) {
        printf("SKIP: needs root (network namespaces)\n");
        return false;
    }
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        test_fail_(__FILE__, __LINE__, "unshare: %s", strerror(errno));
        return false;
    }
    struct mnl_socket *nl = nlink_open();
    if (nl == NULL || nlink_link_set(nl, 1, 0, 0, true) != 0) {
        test_fail_(__FILE__, __LINE__, "lo up");
        return false;
    }
    nlink_close(nl);
    snprintf(n->dir, sizeof n->dir, "/tmp/swarm-netplane-XXXXXX");
    if (mkdtemp(n->dir) == NULL) {
        test_fail_(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
        return false;
    }
    return true;
}

static int node_plane(struct node *n, const char *underlay)
{
    char err[SWARM_ERRMSG_SIZE];
    struct netplane_config cfg = {NULL, n->dir, underlay};
    int rv = netplane_new(&cfg, &n->np, err);
    if (rv != 0) {
        fprintf(stderr, "netplane_new: %s\n", err);
    }
    return rv;
}

/* A socket made in the namespace at `path`. */
struct sock_job {
    int type, proto, fd;
};

static int sock_cb(void *arg)
{
    struct sock_job *j = arg;
    j->fd = socket(AF_INET, j->type | SOCK_CLOEXEC, j->proto);
    return j->fd >= 0 ? 0 : -errno;
}

static int ns_socket_of(const char *path, int type, int proto)
{
    int nsfd = netns_open(path);
    struct sock_job j = {type, proto, -1};
    if (nsfd < 0 || netns_run(nsfd, sock_cb, &j) != 0) {
        j.fd = -1;
    }
    if (nsfd >= 0) {
        close(nsfd);
    }
    return j.fd;
}

static int ns_socket(const char *path)
{
    return ns_socket_of(path, SOCK_STREAM, 0);
}

static struct sockaddr_in sin_of(const char *ip, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static uint16_t icmp_sum(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    }
    if (len % 2 != 0) {
        sum += (uint32_t)(p[len - 1] << 8);
    }
    while (sum >> 16 != 0) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return htons((uint16_t)~sum);
}

/* One ICMP echo from the sandbox at `ns` to `ip`: true when the reply came
 * within wait_ms (a bound only a failure reaches). */
static bool ns_ping(const char *ns, const char *ip, int wait_ms)
{
    int fd = ns_socket_of(ns, SOCK_RAW, IPPROTO_ICMP);
    if (fd < 0) {
        return false;
    }
    uint8_t req[16] = {8, 0, 0, 0, 0x12, 0x34, 0, 1, 'n', 'e', 't', 'p', 'l', 'a', 'n', 'e'};
    uint16_t sum = icmp_sum(req, sizeof req);
    memcpy(req + 2, &sum, 2);
    struct sockaddr_in to = sin_of(ip, 0);
    bool ok = false;
    if (sendto(fd, req, sizeof req, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)sizeof req) {
        struct pollfd p = {fd, POLLIN, 0};
        for (int i = 0; i < 16 && !ok && poll(&p, 1, wait_ms) == 1; i++) {
            uint8_t buf[256];
            struct sockaddr_in from;
            socklen_t flen = sizeof from;
            ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
            size_t ihl = n > 0 ? (size_t)(buf[0] & 15) * 4 : 0;
            ok = n > 0 && (size_t)n >= ihl + 8 && buf[ihl] == 0 && buf[ihl + 4] == 0x12 &&
                 buf[ihl + 5] == 0x34 && from.sin_addr.s_addr == to.sin_addr.s_addr;
        }
    }
    close(fd);
    return ok;
}

/* A listening socket in the sandbox at `ns` on *:port, non-blocking. */
static int ns_listen(const char *ns, int port)
{
    int fd = ns_socket(ns);
    struct sockaddr_in a = sin_of("0.0.0.0", port);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Connect from the sandbox at `ns` to ip:port, waiting up to wait_ms:
 * 0 when connected, else -errno (-ETIMEDOUT when nothing answered). */
static int ns_connect(const char *ns, const char *ip, int port, int wait_ms)
{
    int fd = ns_socket(ns);
    if (fd < 0) {
        return -EIO;
    }
    struct sockaddr_in a = sin_of(ip, port);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    int rv = connect(fd, (struct sockaddr *)&a, sizeof a);
    if (rv != 0 && errno == EINPROGRESS) {
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, wait_ms) == 1) {
            int e = 0;
            socklen_t len = sizeof e;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
            rv = -e;
        } else {
            rv = -ETIMEDOUT;
        }
    } else if (rv != 0) {
        rv = -errno;
    }
    close(fd);
    return rv;
}

/* Accept everything pending on a listener; how many. */
static int drain(int lfd)
{
    int k = 0, c;
    for (int i = 0; i < 100; i++) {
        while ((c = accept(lfd, NULL, NULL)) >= 0) {
            close(c);
            k++;
        }
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, 20) != 1) {
            break;
        }
    }
    return k;
}

static void node_leave(struct node *n)
{
    static const char *const files[] = {NETPLANE_FILE_HOSTS, NETPLANE_FILE_RESOLV,
                                        NETPLANE_FILE_HOSTNAME};
    char path[PATH_MAX + 32];
    netplane_close(n->np);
    n->np = NULL;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", n->dir, files[i]);
        unlink(path);
    }
    ASSERT(rmdir(n->dir) == 0); /* netplane_close left nothing in it */
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int k = 0;
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        k += de->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return d != NULL ? k : -1;
}

/* Whether `path` is a mount point (field 5 of /proc/self/mountinfo). */
static bool is_mountpoint(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096], mnt[PATH_MAX];
    bool found = false;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL) {
        found = sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && strcmp(mnt, path) == 0;
    }
    if (f != NULL) {
        fclose(f);
    }
    return found;
}

TEST(netplane_probe_says_yes_as_root)
{
    char err[SWARM_ERRMSG_SIZE] = "";
    if (geteuid() != 0) {
        ASSERT(netplane_probe(err) == SWARM_EPERM);
        ASSERT(strstr(err, "root") != NULL);
        return;
    }
    int rv = netplane_probe(err);
    if (rv != 0) {
        FAILF("probe: %s", err);
    }
}

TEST(netplane_same_network_talks_other_network_does_not)
{
    struct node n;
    if (!node_enter(&n)) {
        return;
    }
    ASSERT_INT_EQ(node_plane(&n, "127.0.0.1"), 0);
    char err[SWARM_ERRMSG_SIZE], nsa[PATH_MAX], nsb[PATH_MAX], nsc[PATH_MAX], nsdir[PATH_MAX + 16];
    snprintf(nsdir, sizeof nsdir, "%s/net/ns", n.dir);
    ASSERT(!is_mountpoint(nsdir)); /* nothing mounted while no namespace lives */
    Swarm__Network *x = mk_network("netx", 4101, "10.1.0.0/24", "10.1.0.1");
    Swarm__Network *y = mk_network("nety", 4102, "10.2.0.0/24", "10.2.0.1");
    const char *aa[] = {"10.1.0.2/24"}, *ba[] = {"10.1.0.3/24"}, *ca[] = {"10.2.0.2/24"};
    Swarm__Task *ta = mk_task("taska", 1, &x, aa);
    Swarm__Task *tb = mk_task("taskb", 1, &x, ba);
    Swarm__Task *tc = mk_task("taskc", 1, &y, ca);
    int rv = netplane_sandbox_create(n.np, ta, n.dir, nsa, err);
    if (rv != 0) {
        FAILF("sandbox a: %s", err);
    }
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, tb, NULL, nsb, err), 0);
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, tc, NULL, nsc, err), 0);
    ASSERT_INT_EQ(netplane_network_count(n.np), 2);
    ASSERT(is_mountpoint(nsdir));
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, ta, NULL, nsa, err), SWARM_EEXIST);
    /* The files. */
    char path[PATH_MAX + 32], buf[512];
    snprintf(path, sizeof path, "%s/resolv.conf", n.dir);
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    ASSERT(strstr(buf, "nameserver 127.0.0.11") != NULL);
    ASSERT(ns_ping(nsb, "10.1.0.2", 5000));
    ASSERT(ns_ping(nsa, "10.1.0.3", 5000));
    ASSERT(!ns_ping(nsb, "10.2.0.2", 500));
    ASSERT(!ns_ping(nsc, "10.1.0.2", 500));
    int la = ns_listen(nsa, 8080), lc = ns_listen(nsc, 8080);
    ASSERT(la >= 0 && lc >= 0);
    ASSERT_INT_EQ(ns_connect(nsb, "10.1.0.2", 8080, 5000), 0);
    ASSERT_INT_EQ(drain(la), 1);
    /* c is on another network: nothing gets there from b, nor from c to a. */
    ASSERT(ns_connect(nsb, "10.2.0.2", 8080, 500) != 0);
    ASSERT(ns_connect(nsc, "10.1.0.2", 8080, 500) != 0);
    ASSERT_INT_EQ(drain(lc), 0);
    ASSERT_INT_EQ(drain(la), 0);
    close(la);
    close(lc);
    /* Removing c takes network y with it. */
    ASSERT_INT_EQ(netplane_sandbox_remove(n.np, "taskc"), 0);
    ASSERT_INT_EQ(netplane_sandbox_remove(n.np, "taskc"), SWARM_ENOTFOUND);
    ASSERT_INT_EQ(netplane_network_count(n.np), 1);
    ASSERT(access(nsc, F_OK) != 0);
    snprintf(path, sizeof path, "%s/net/ns", n.dir);
    ASSERT_INT_EQ(count_entries(path), 3); /* n-netx, t-taska, t-taskb */
    /* Bad input: nothing made. */
    const char *bad[] = {"10.1.0.x/24"};
    Swarm__Task *td = mk_task("taskd", 1, &x, bad);
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, td, NULL, nsc, err), SWARM_EINVAL);
    ASSERT(strstr(err, "invalid address") != NULL);
    ASSERT_INT_EQ(count_entries(path), 3);
    ASSERT_INT_EQ(netplane_sandbox_remove(n.np, "taska"), 0);
    ASSERT_INT_EQ(netplane_sandbox_remove(n.np, "taskb"), 0);
    ASSERT_INT_EQ(count_entries(path), 0);
    ASSERT(!is_mountpoint(nsdir));
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, ta, NULL, nsa, err), 0);
    netplane_close(n.np);
    n.np = NULL;
    ASSERT(access(nsa, F_OK) != 0);
    snprintf(path, sizeof path, "%s/net", n.dir);
    ASSERT(access(path, F_OK) != 0);
    node_leave(&n);
    swarm__task__free_unpacked(ta, NULL);
    swarm__task__free_unpacked(tb, NULL);
    swarm__task__free_unpacked(tc, NULL);
    swarm__task__free_unpacked(td, NULL);
    swarm__network__free_unpacked(x, NULL);
    swarm__network__free_unpacked(y, NULL);
}

/* ---- FDB and neighbour entries follow the maps ------------------------- */

struct nb {
    int vx;
    int n;
    uint32_t ip[8];
    uint8_t mac[8][6];
};

static void nb_cb(int ifindex, uint32_t ip, const uint8_t mac[6], void *arg)
{
    struct nb *b = arg;
    if (ifindex == b->vx && b->n < 8 && ip != 0 && !(mac[0] == 0 && mac[1] == 0) &&
        !(mac[0] == 0x33 && mac[1] == 0x33) && !(mac[0] == 0x01)) {
        b->ip[b->n] = ip;
        memcpy(b->mac[b->n], mac, 6);
        b->n++;
    }
}

/* The network namespace's VXLAN device entries: FDB (AF_BRIDGE, ip = the
 * remote node) or neighbours (AF_INET, ip = the task). */
static int vx_entries(const char *netns, int family, struct nb *b)
{
    int fd = netns_open(netns);
    struct mnl_socket *nl = fd >= 0 ? netns_nl_open(fd) : NULL;
    if (fd >= 0) {
        close(fd);
    }
    if (nl == NULL) {
        return -1;
    }
    memset(b, 0, sizeof *b);
    b->vx = nlink_link_index(nl, "swvx4201");
    int rv = b->vx > 0 ? nlink_neigh_foreach(nl, family, nb_cb, b) : -1;
    nlink_close(nl);
    return rv;
}

static bool nb_has(const struct nb *b, uint32_t ip, uint8_t last)
{
    for (int i = 0; i < b->n; i++) {
        if (b->ip[i] == ip && b->mac[i][0] == 0x02 && b->mac[i][1] == 0x42 &&
            b->mac[i][5] == last) {
            return true;
        }
    }
    return false;
}

TEST(netplane_forwarding_entries_follow_the_maps)
{
    struct node n;
    if (!node_enter(&n)) {
        return;
    }
    ASSERT_INT_EQ(node_plane(&n, "192.168.50.1"), 0);
    char err[SWARM_ERRMSG_SIZE], ns[PATH_MAX], netns[PATH_MAX + 32];
    Swarm__Network *x = mk_network("netx", 4201, "10.3.0.0/24", "10.3.0.1");
    const char *aa[] = {"10.3.0.2/24"};
    Swarm__Task *ta = mk_task("taska", 1, &x, aa);
    /* A map before the network is set up here: only remembered. */
    Swarm__NetworkMap *m = mk_map(x);
    map_add_ep(m, "taska", "s1", "10.3.0.2", "192.168.50.1", true);
    map_add_ep(m, "r1", "s1", "10.3.0.7", "192.168.50.2", true);
    map_add_ep(m, "r2", "s1", "10.3.0.8", "192.168.50.3", false);
    ASSERT_INT_EQ(netplane_map_update(n.np, m, err), 0);
    ASSERT_INT_EQ(netplane_network_count(n.np), 0);
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, ta, NULL, ns, err), 0);
    snprintf(netns, sizeof netns, "%s/net/ns/n-netx", n.dir);
    struct nb fdb, nei;
    ASSERT_INT_EQ(vx_entries(netns, AF_BRIDGE, &fdb), 0);
    ASSERT_INT_EQ(fdb.n, 2);
    ASSERT(nb_has(&fdb, 0xc0a83202, 7)); /* 02:42:0a:03:00:07 -> 192.168.50.2 */
    ASSERT(nb_has(&fdb, 0xc0a83203, 8));
    ASSERT_INT_EQ(vx_entries(netns, AF_INET, &nei), 0);
    ASSERT_INT_EQ(nei.n, 2);
    ASSERT(nb_has(&nei, 0x0a030007, 7));
    ASSERT(nb_has(&nei, 0x0a030008, 8));
    /* r1 moves to node .4, r2 goes, r3 comes. */
    free(m->endpoints[1]->node_addr);
    m->endpoints[1]->node_addr = strdup("192.168.50.4");
    free(m->endpoints[2]->task_id);
    m->endpoints[2]->task_id = strdup("r3");
    free(m->endpoints[2]->addr);
    m->endpoints[2]->addr = strdup("10.3.0.9");
    ASSERT_INT_EQ(netplane_map_update(n.np, m, err), 0);
    ASSERT_INT_EQ(vx_entries(netns, AF_BRIDGE, &fdb), 0);
    ASSERT_INT_EQ(fdb.n, 2);
    ASSERT(nb_has(&fdb, 0xc0a83204, 7));
    ASSERT(nb_has(&fdb, 0xc0a83203, 9));
    ASSERT_INT_EQ(vx_entries(netns, AF_INET, &nei), 0);
    ASSERT_INT_EQ(nei.n, 2);
    ASSERT(nb_has(&nei, 0x0a030007, 7));
    ASSERT(nb_has(&nei, 0x0a030009, 9));
    /* An endpoint whose node is not known yet: skipped, the rest applies. */
    map_add_ep(m, "r4", "s1", "10.3.0.10", "", true);
    ASSERT_INT_EQ(netplane_map_update(n.np, m, err), 0);
    ASSERT_INT_EQ(vx_entries(netns, AF_BRIDGE, &fdb), 0);
    ASSERT_INT_EQ(fdb.n, 2);
    /* A bad map changes nothing. */
    free(m->endpoints[1]->node_addr);
    m->endpoints[1]->node_addr = strdup("not-an-ip");
    ASSERT_INT_EQ(netplane_map_update(n.np, m, err), SWARM_EINVAL);
    ASSERT(strstr(err, "not-an-ip") != NULL);
    ASSERT_INT_EQ(vx_entries(netns, AF_BRIDGE, &fdb), 0);
    ASSERT_INT_EQ(fdb.n, 2);
    /* The map goes: so do the entries. */
    ASSERT_INT_EQ(netplane_map_remove(n.np, "netx"), 0);
    ASSERT_INT_EQ(netplane_map_remove(n.np, "netx"), SWARM_ENOTFOUND);
    ASSERT_INT_EQ(vx_entries(netns, AF_BRIDGE, &fdb), 0);
    ASSERT_INT_EQ(fdb.n, 0);
    ASSERT_INT_EQ(vx_entries(netns, AF_INET, &nei), 0);
    ASSERT_INT_EQ(nei.n, 0);
    node_leave(&n);
    swarm__network_map__free_unpacked(m, NULL);
    swarm__task__free_unpacked(ta, NULL);
    swarm__network__free_unpacked(x, NULL);
}

/* ---- VIPs ---------------------------------------------------------------- */

TEST(netplane_vip_spreads_connections_and_follows_the_map)
{
    struct node n;
    if (!node_enter(&n)) {
        return;
    }
    ASSERT_INT_EQ(node_plane(&n, "127.0.0.1"), 0);
    char err[SWARM_ERRMSG_SIZE], ns1[PATH_MAX], ns2[PATH_MAX], nsc[PATH_MAX];
    Swarm__Network *x = mk_network("netx", 4301, "10.4.0.0/24", "10.4.0.1");
    const char *a1[] = {"10.4.0.3/24"}, *a2[] = {"10.4.0.4/24"}, *ac[] = {"10.4.0.9/24"};
    Swarm__Task *t1 = mk_task("web1", 1, &x, a1);
    Swarm__Task *t2 = mk_task("web2", 1, &x, a2);
    Swarm__Task *tc = mk_task("client", 1, &x, ac);
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, t1, NULL, ns1, err), 0);
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, t2, NULL, ns2, err), 0);
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, tc, NULL, nsc, err), 0);
    int l1 = ns_listen(ns1, 80), l2 = ns_listen(ns2, 80);
    ASSERT(l1 >= 0 && l2 >= 0);
    /* No map yet: the VIP is nobody's. */
    ASSERT(ns_connect(nsc, "10.4.0.2", 80, 500) != 0);
    Swarm__NetworkMap *m = mk_map(x);
    map_add_svc(m, "web", "web", "10.4.0.2", "vip");
    map_add_ep(m, "web1", "web", "10.4.0.3", "127.0.0.1", true);
    map_add_ep(m, "web2", "web", "10.4.0.4", "127.0.0.1", true);
    map_add_ep(m, "client", "cli", "10.4.0.9", "127.0.0.1", true);
    if (netplane_map_update(n.np, m, err) != 0) {
        FAILF("map: %s", err);
    }
    int k1 = 0, k2 = 0;
    for (int i = 0; i < 40; i++) {
        ASSERT_INT_EQ(ns_connect(nsc, "10.4.0.2", 80, 5000), 0);
        k1 += drain(l1);
        k2 += drain(l2);
    }
    ASSERT_INT_EQ(k1 + k2, 40);
    ASSERT(k1 > 0 && k2 > 0); /* all 40 on one: a chance of 2^-39 */
    /* web2 is no longer ready: everything goes to web1. */
    m->endpoints[1]->ready = false;
    ASSERT_INT_EQ(netplane_map_update(n.np, m, err), 0);
    k1 = k2 = 0;
    for (int i = 0; i < 20; i++) {
        ASSERT_INT_EQ(ns_connect(nsc, "10.4.0.2", 80, 5000), 0);
        k1 += drain(l1);
        k2 += drain(l2);
    }
    ASSERT_INT_EQ(k1, 20);
    ASSERT_INT_EQ(k2, 0);
    /* No ready backend: refused at once. */
    m->endpoints[0]->ready = false;
    ASSERT_INT_EQ(netplane_map_update(n.np, m, err), 0);
    ASSERT_INT_EQ(ns_connect(nsc, "10.4.0.2", 80, 5000), -ECONNREFUSED);
    /* dnsrr: no VIP rules at all. */
    m->endpoints[0]->ready = true;
    free(m->services[0]->endpoint_mode);
    m->services[0]->endpoint_mode = strdup("dnsrr");
    ASSERT_INT_EQ(netplane_map_update(n.np, m, err), 0);
    ASSERT(ns_connect(nsc, "10.4.0.2", 80, 500) != 0);
    ASSERT_INT_EQ(drain(l1) + drain(l2), 0);
    close(l1);
    close(l2);
    node_leave(&n);
    swarm__network_map__free_unpacked(m, NULL);
    swarm__task__free_unpacked(t1, NULL);
    swarm__task__free_unpacked(t2, NULL);
    swarm__task__free_unpacked(tc, NULL);
    swarm__network__free_unpacked(x, NULL);
}

/* ---- leftovers ----------------------------------------------------------- */

static bool link_exists(const char *name)
{
    struct mnl_socket *nl = nlink_open();
    int idx = nl != NULL ? nlink_link_index(nl, name) : -1;
    nlink_close(nl);
    return idx > 0;
}

TEST(netplane_cleanup_leftovers_removes_what_was_recorded_only)
{
    struct node n;
    if (!node_enter(&n)) {
        return;
    }
    char err[SWARM_ERRMSG_SIZE], ns[PATH_MAX], path[PATH_MAX + 64];
    Swarm__Network *x = mk_network("netx", 4401, "10.6.0.0/24", "10.6.0.1");
    const char *aa[] = {"10.6.0.2/24"};
    Swarm__Task *ta = mk_task("taska", 1, &x, aa);
    /* A run that dies (kill -9) with a sandbox and its network up. */
    pid_t pid = fork();
    if (pid == 0) {
        struct node c = n;
        if (node_plane(&c, "127.0.0.1") != 0 ||
            netplane_sandbox_create(c.np, ta, NULL, ns, err) != 0) {
            _exit(1);
        }
        /* ... and in the middle of making a VXLAN device. */
        struct mnl_socket *nl = nlink_open();
        char rec[PATH_MAX + 64];
        snprintf(rec, sizeof rec, "%s/net/links/swvx77", c.dir);
        int fd = open(rec, O_CREAT | O_WRONLY, 0600);
        if (nl == NULL || fd < 0 || nlink_vxlan_add(nl, "swvx77", 77, 0x7f000001, 4789) != 0) {
            _exit(2);
        }
        raise(SIGKILL);
    }
    int st;
    ASSERT(waitpid(pid, &st, 0) == pid);
    ASSERT(WIFSIGNALED(st));
    snprintf(path, sizeof path, "%s/net/ns", n.dir);
    ASSERT_INT_EQ(count_entries(path), 2);
    snprintf(path, sizeof path, "%s/net/ns/n-netx", n.dir);
    ASSERT(netns_is_mounted(path));
    ASSERT(link_exists("swvx77"));
    /* Foreign things: a bridge, a VXLAN device and a namespace file of
     * someone else's, next to ours. */
    struct mnl_socket *nl = nlink_open();
    ASSERT(nl != NULL);
    ASSERT_INT_EQ(nlink_bridge_add(nl, "foreign0", 0), 0);
    ASSERT_INT_EQ(nlink_vxlan_add(nl, "swvx78", 78, 0x7f000001, 4789), 0);
    nlink_close(nl);
    snprintf(path, sizeof path, "%s/net/ns/other", n.dir);
    ASSERT(netns_create(path) == 0);
    /* The next run. */
    ASSERT_INT_EQ(node_plane(&n, "127.0.0.1"), 0);
    netplane_cleanup_leftovers(n.np);
    ASSERT(!link_exists("swvx77"));
    ASSERT(link_exists("foreign0"));
    ASSERT(link_exists("swvx78"));
    snprintf(path, sizeof path, "%s/net/ns", n.dir);
    ASSERT_INT_EQ(count_entries(path), 1); /* "other" only */
    snprintf(path, sizeof path, "%s/net/links", n.dir);
    ASSERT_INT_EQ(count_entries(path), 0);
    /* The VNI is free again: the network comes back. */
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, ta, NULL, ns, err), 0);
    ASSERT_INT_EQ(netplane_network_count(n.np), 1);
    snprintf(path, sizeof path, "%s/net/ns/other", n.dir);
    netns_remove(path);
    node_leave(&n);
    swarm__task__free_unpacked(ta, NULL);
    swarm__network__free_unpacked(x, NULL);
}

TEST(netplane_failed_sandbox_leaves_nothing_and_foreign_link_alone)
{
    struct node n;
    if (!node_enter(&n)) {
        return;
    }
    ASSERT_INT_EQ(node_plane(&n, "127.0.0.1"), 0);
    char err[SWARM_ERRMSG_SIZE], ns[PATH_MAX], path[PATH_MAX + 32];
    /* Someone else's link has the name the second network's VXLAN device
     * would get: the sandbox fails half-way, after its first network. */
    struct mnl_socket *nl = nlink_open();
    ASSERT(nl != NULL);
    ASSERT_INT_EQ(nlink_bridge_add(nl, "swvx4702", 0), 0);
    nlink_close(nl);
    Swarm__Network *x = mk_network("netx", 4701, "10.11.0.0/24", "10.11.0.1");
    Swarm__Network *y = mk_network("nety", 4702, "10.12.0.0/24", "10.12.0.1");
    Swarm__Network *nets[] = {x, y};
    const char *addrs[] = {"10.11.0.2/24", "10.12.0.2/24"};
    Swarm__Task *t = mk_task("taska", 2, nets, addrs);
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, t, NULL, ns, err), SWARM_EEXIST);
    ASSERT(strstr(err, "swvx4702 exists already and is not ours") != NULL);
    ASSERT_INT_EQ(netplane_network_count(n.np), 0);
    snprintf(path, sizeof path, "%s/net/ns", n.dir);
    ASSERT_INT_EQ(count_entries(path), 0);
    snprintf(path, sizeof path, "%s/net/links", n.dir);
    ASSERT_INT_EQ(count_entries(path), 0);
    ASSERT(link_exists("swvx4702"));
    node_leave(&n);
    ASSERT(link_exists("swvx4702"));
    swarm__task__free_unpacked(t, NULL);
    swarm__network__free_unpacked(x, NULL);
    swarm__network__free_unpacked(y, NULL);
}

/* ---- the gateway bridge -------------------------------------------------- */

TEST(netplane_gateway_bridge_avoids_used_ranges_and_follows_its_sandboxes)
{
    struct node n;
    if (!node_enter(&n)) {
        return;
    }
    /* Someone else's bridge with an address (and so a route) in 172.17/16. */
    struct mnl_socket *nl = nlink_open();
    ASSERT(nl != NULL);
    ASSERT_INT_EQ(nlink_bridge_add(nl, "foreign0", 0), 0);
    int fidx = nlink_link_index(nl, "foreign0");
    ASSERT(fidx > 0);
    ASSERT_INT_EQ(nlink_addr_add(nl, fidx, 0xac110005, 16), 0);
    ASSERT_INT_EQ(nlink_link_set(nl, fidx, 0, 0, true), 0);
    nlink_close(nl);
    ASSERT_INT_EQ(node_plane(&n, "192.168.50.1"), 0);
    char err[SWARM_ERRMSG_SIZE], ns[PATH_MAX], path[PATH_MAX + 32];
    Swarm__Network *x = mk_network("netx", 4301, "10.4.0.0/24", "10.4.0.1");
    Swarm__Network *y = mk_network("nety", 4302, "10.5.0.0/24", "10.5.0.1");
    const char *a2[] = {"10.4.0.2/24"}, *a3[] = {"10.4.0.3/24"}, *b2[] = {"10.5.0.2/24"};
    Swarm__Task *ta = mk_task("taska", 1, &x, a2);
    Swarm__Task *tc = mk_task("taskc", 1, &x, a3);
    Swarm__Task *tb = mk_task("taskb", 1, &y, b2);
    Swarm__NetworkSpec *spec = malloc(sizeof *spec);
    swarm__network_spec__init(spec);
    spec->internal = true;
    tb->networks[0]->network->spec = spec;
    /* The first sandbox makes the bridge, in 172.18/16 (172.17 is used). */
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, ta, NULL, ns, err), 0);
    ASSERT(link_exists("swgwbridge"));
    ASSERT_INT_EQ(netplane_sandbox_gw_addr(n.np, "taska"), 0xac120002);
    snprintf(path, sizeof path, "%s/net/links/swgwbridge", n.dir);
    ASSERT(access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/net/gwbridge", n.dir);
    ASSERT(access(path, F_OK) == 0);
    /* Internal networks only: no address there. */
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, tb, NULL, ns, err), 0);
    ASSERT_INT_EQ(netplane_sandbox_gw_addr(n.np, "taskb"), 0);
    ASSERT_INT_EQ(netplane_sandbox_create(n.np, tc, NULL, ns, err), 0);
    ASSERT_INT_EQ(netplane_sandbox_gw_addr(n.np, "taskc"), 0xac120003);
    /* The bridge goes with its last sandbox (the internal one stays). */
    ASSERT_INT_EQ(netplane_sandbox_remove(n.np, "taska"), 0);
    ASSERT(link_exists("swgwbridge"));
    ASSERT_INT_EQ(netplane_sandbox_remove(n.np, "taskc"), 0);
    ASSERT(!link_exists("swgwbridge"));
    ASSERT(access(path, F_OK) != 0);
    snprintf(path, sizeof path, "%s/net/links", n.dir);
    ASSERT_INT_EQ(count_entries(path), 0);
    ASSERT_INT_EQ(netplane_sandbox_remove(n.np, "taskb"), 0);
    node_leave(&n);
    ASSERT(link_exists("foreign0"));
    swarm__task__free_unpacked(ta, NULL);
    swarm__task__free_unpacked(tb, NULL);
    swarm__task__free_unpacked(tc, NULL);
    swarm__network__free_unpacked(x, NULL);
    swarm__network__free_unpacked(y, NULL);
}

/* ---- two nodes over VXLAN ------------------------------------------------ */

static int wait_byte(int fd)
{
    char c;
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 60000) == 1 && read(fd, &c, 1) == 1 ? c : -1;
}

/* A "node": its own network namespace with the underlay `me` on link
 * `ifname` (moved in by the parent), its netplane, one task sandbox on
 * network x; node 'b' serves, node 'a' connects over the overlay. */
static int node_main(char role, const char *ifname, int to_parent, int from_parent)
{
    struct node n;
    char err[SWARM_ERRMSG_SIZE], ns[PATH_MAX];
    const char *me = role == 'a' ? "192.168.77.1" : "192.168.77.2";
    if (unshare(CLONE_NEWNET) != 0 || write(to_parent, "u", 1) != 1 || wait_byte(from_parent) != 'g') {
        return 10;
    }
    snprintf(n.dir, sizeof n.dir, "/tmp/swarm-netplane-%c-XXXXXX", role);
    struct mnl_socket *nl = nlink_open();
    uint32_t ip;
    netplan_parse_ip(me, &ip);
    int idx = nl != NULL ? nlink_link_index(nl, ifname) : -1;
    if (mkdtemp(n.dir) == NULL || idx <= 0 || nlink_link_set(nl, 1, 0, 0, true) != 0 ||
        nlink_addr_add(nl, idx, ip, 24) != 0 || nlink_link_set(nl, idx, 0, 0, true) != 0) {
        return 11;
    }
    nlink_close(nl);
    if (node_plane(&n, me) != 0) {
        return 12;
    }
    Swarm__Network *x = mk_network("netx", 4501, "10.7.0.0/24", "10.7.0.1");
    Swarm__NetworkMap *m = mk_map(x);
    map_add_ep(m, "taska", "s", "10.7.0.2", "192.168.77.1", true);
    map_add_ep(m, "taskb", "s", "10.7.0.3", "192.168.77.2", true);
    const char *addr[] = {role == 'a' ? "10.7.0.2/24" : "10.7.0.3/24"};
    Swarm__Task *t = mk_task(role == 'a' ? "taska" : "taskb", 1, &x, addr);
    if (netplane_map_update(n.np, m, err) != 0 || netplane_sandbox_create(n.np, t, NULL, ns, err) != 0) {
        fprintf(stderr, "node %c: %s\n", role, err);
        return 13;
    }
    int rv = 0;
    if (role == 'b') {
        int l = ns_listen(ns, 9000);
        if (l < 0 || write(to_parent, "l", 1) != 1) {
            return 14;
        }
        struct pollfd p = {l, POLLIN, 0};
        int c = poll(&p, 1, 60000) == 1 ? accept(l, NULL, NULL) : -1;
        char buf[8] = "";
        if (c < 0 || read(c, buf, 4) != 4 || strncmp(buf, "ping", 4) != 0 ||
            write(c, "pong", 4) != 4) {
            rv = 15;
        }
        wait_byte(from_parent); /* a is done with it */
    } else {
        if (wait_byte(from_parent) != 'c') {
            return 16;
        }
        int fd = -1;
        for (int i = 0; i < 10 && fd < 0; i++) { /* the server is up: connect */
            fd = ns_socket(ns);
            struct sockaddr_in a = sin_of("10.7.0.3", 9000);
            struct timeval tv = {2, 0};
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
                close(fd);
                fd = -1;
                usleep(50000);
            }
        }
        char buf[8] = "";
        if (fd < 0 || write(fd, "ping", 4) != 4 || read(fd, buf, 4) != 4 ||
            strncmp(buf, "pong", 4) != 0) {
            rv = 17;
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    netplane_close(n.np);
    rmdir(n.dir);
    swarm__network_map__free_unpacked(m, NULL);
    swarm__task__free_unpacked(t, NULL);
    swarm__network__free_unpacked(x, NULL);
    return rv;
}

TEST(netplane_two_nodes_talk_over_vxlan)
{
    struct node n;
    if (!node_enter(&n)) {
        return;
    }
    rmdir(n.dir);
    int up[2][2], down[2][2];
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        ASSERT(pipe(up[i]) == 0 && pipe(down[i]) == 0);
        pid[i] = fork();
        ASSERT(pid[i] >= 0);
        if (pid[i] == 0) {
            _exit(node_main(i == 0 ? 'a' : 'b', i == 0 ? "ua" : "ub", up[i][1], down[i][0]));
        }
    }
    /* Both have their namespace: join them with a veth. */
    int fds[2];
    for (int i = 0; i < 2; i++) {
        ASSERT_INT_EQ(wait_byte(up[i][0]), 'u');
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid[i]);
        fds[i] = open(path, O_RDONLY);
        ASSERT(fds[i] >= 0);
    }
    struct mnl_socket *nl = nlink_open();
    ASSERT(nl != NULL);
    ASSERT_INT_EQ(nlink_veth_add(nl, "ua", "ub", fds[1], NULL, 0), 0);
    ASSERT_INT_EQ(nlink_link_set_ns(nl, nlink_link_index(nl, "ua"), fds[0]), 0);
    nlink_close(nl);
    close(fds[0]);
    close(fds[1]);
    ASSERT(write(down[0][1], "g", 1) == 1 && write(down[1][1], "g", 1) == 1);
    ASSERT_INT_EQ(wait_byte(up[1][0]), 'l'); /* b listens */
    ASSERT(write(down[0][1], "c", 1) == 1);  /* a connects */
    int st[2];
    ASSERT(waitpid(pid[0], &st[0], 0) == pid[0]);
    if (!WIFEXITED(st[0]) || WEXITSTATUS(st[0]) != 0) {
        kill(pid[1], SIGKILL); /* still waiting for a connection */
    }
    ASSERT(write(down[1][1], "d", 1) == 1);
    ASSERT(waitpid(pid[1], &st[1], 0) == pid[1]);
    ASSERT_INT_EQ(WIFEXITED(st[0]) ? WEXITSTATUS(st[0]) : 100, 0);
    ASSERT_INT_EQ(WIFEXITED(st[1]) ? WEXITSTATUS(st[1]) : 100, 0);
}

TEST_MAIN()
