/* bench_dns: DNS query latency seen from inside a task's sandbox (root).
 *
 * In a network namespace of its own (the "node"), the embedded DNS server
 * (net/dns.h) serves one sandbox namespace; a client thread inside the
 * sandbox asks 127.0.0.11:53 over UDP, one query at a time, and times each
 * round trip. Two kinds of names:
 *   dns_query_latency_us     a service name of the sandbox's network (vip)
 *   dns_forward_latency_us   a name forwarded to an upstream resolver (a
 *                            fake one on the node's loopback, 127.0.0.2:53)
 * Prints the median and the 99th percentile of N queries (default 5000):
 *   dns_query_latency_us: MEDIAN P99
 * and the time the server takes (on its loop) to take in one network's map
 * of 10,000 tasks of 10 services:
 *   dns_map_update_10k_ms: MEDIAN of 5
 * Usage: bench_dns [N] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "dns.h"
#include "err.h"

static int loopback_up(void)
{
    struct ifreq ifr = {0};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rv = -1;

    if (fd < 0) {
        return -1;
    }
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        rv = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    close(fd);
    return rv;
}

static void *netns_new_thread(void *arg)
{
    int *fd = arg;

    *fd = -1;
    if (unshare(CLONE_NEWNET) == 0 && loopback_up() == 0) {
        *fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    }
    return NULL;
}

/* The fake upstream: an A record for every name. */
static void up_alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *buf)
{
    static char b[65536];
    *buf = uv_buf_init(b, sizeof b);
}

static void up_recv_cb(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
                       const struct sockaddr *from, unsigned flags)
{
    ldns_pkt *q = NULL;
    ldns_rr *rr = NULL;
    uint8_t *wire;
    size_t len;

    if (n <= 0 || from == NULL ||
        ldns_wire2pkt(&q, (uint8_t *)buf->base, (size_t)n) != LDNS_STATUS_OK) {
        return;
    }
    ldns_pkt_set_qr(q, true);
    if (ldns_rr_new_frm_str(&rr, "example.org. 60 IN A 192.0.2.1", 0, NULL, NULL) ==
        LDNS_STATUS_OK) {
        ldns_pkt_push_rr(q, LDNS_SECTION_ANSWER, rr);
    }
    if (ldns_pkt2wire(&wire, q, &len) == LDNS_STATUS_OK) {
        uv_buf_t b = uv_buf_init((char *)wire, (unsigned)len);
        uv_udp_try_send(u, &b, 1, from);
        free(wire);
    }
    ldns_pkt_free(q);
}

struct client {
    int nsfd;
    int n;
    const char *name;
    double *us;        /* n round trips */
    int failures;
    uv_async_t *done;
};

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void *client_thread(void *arg)
{
    struct client *c = arg;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53)};
    ldns_pkt *q = ldns_pkt_query_new(ldns_dname_new_frm_str(c->name), LDNS_RR_TYPE_A,
                                     LDNS_RR_CLASS_IN, LDNS_RD);
    uint8_t *wire = NULL, reply[4096];
    size_t len;
    int fd = -1;

    inet_pton(AF_INET, "127.0.0.11", &to.sin_addr);
    if (setns(c->nsfd, CLONE_NEWNET) != 0 ||
        (fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        c->failures = c->n;
        goto out;
    }
    for (int i = 0; i < c->n; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        double t0;
        ssize_t got = -1;
        ldns_pkt_set_id(q, (uint16_t)i);
        free(wire);
        wire = NULL;
        if (ldns_pkt2wire(&wire, q, &len) != LDNS_STATUS_OK) {
            c->failures++;
            continue;
        }
        t0 = now_us();
        if (send(fd, wire, len, 0) == (ssize_t)len && poll(&p, 1, 2000) > 0) {
            got = recv(fd, reply, sizeof reply, 0);
        }
        c->us[i] = now_us() - t0;
        if (got < 12 || ((reply[0] << 8) | reply[1]) != (i & 0xffff)) {
            c->failures++;
        }
    }
out:
    free(wire);
    ldns_pkt_free(q);
    if (fd >= 0) {
        close(fd);
    }
    uv_async_send(c->done);
    return NULL;
}

static void done_cb(uv_async_t *a)
{
    uv_stop(a->loop);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One network's map of 10,000 ready tasks over 10 vip services (2 aliases
 * each), taken in 5 times by dnsd_map_update. */
static int measure_map_update(struct dnsd *d)
{
    enum { TASKS = 10000, SERVICES = 10 };
    static Swarm__NetworkEndpoint eps[TASKS], *epp[TASKS];
    static Swarm__NetworkServiceEntry svcs[SERVICES], *svcp[SERVICES];
    static char strs[TASKS][4][40], sstrs[SERVICES][4][40], *aliases[SERVICES][3];
    static const Swarm__NetworkEndpoint ep0 = SWARM__NETWORK_ENDPOINT__INIT;
    static const Swarm__NetworkServiceEntry s0 = SWARM__NETWORK_SERVICE_ENTRY__INIT;
    Swarm__NetworkMap map = SWARM__NETWORK_MAP__INIT;
    Swarm__Network net = SWARM__NETWORK__INIT;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    double ms[5];

    for (int s = 0; s < SERVICES; s++) {
        svcs[s] = s0;
        snprintf(sstrs[s][0], 40, "svc%d", s);
        snprintf(sstrs[s][1], 40, "service%d", s);
        snprintf(sstrs[s][2], 40, "10.1.%d.1", s);
        snprintf(sstrs[s][3], 40, "alias%d", s);
        aliases[s][0] = sstrs[s][3];
        aliases[s][1] = sstrs[s][1]; /* a second alias: the long name */
        aliases[s][2] = NULL;
        svcs[s].service_id = sstrs[s][0];
        svcs[s].name = sstrs[s][1];
        svcs[s].vip = sstrs[s][2];
        svcs[s].endpoint_mode = "vip";
        svcs[s].aliases = aliases[s];
        svcs[s].n_aliases = 2;
        svcp[s] = &svcs[s];
    }
    for (int t = 0; t < TASKS; t++) {
        int s = t % SERVICES;
        eps[t] = ep0;
        snprintf(strs[t][0], 40, "task%d", t);
        snprintf(strs[t][1], 40, "service%d.%d.task%d", s, t / SERVICES + 1, t);
        snprintf(strs[t][2], 40, "10.2.%d.%d", t / 250, t % 250 + 2);
        eps[t].task_id = strs[t][0];
        eps[t].task_name = strs[t][1];
        eps[t].service_id = sstrs[s][0];
        eps[t].addr = strs[t][2];
        eps[t].aliases = aliases[s];
        eps[t].n_aliases = 2;
        eps[t].ready = true;
        epp[t] = &eps[t];
    }
    net.id = "net10k";
    map.network = &net;
    map.endpoints = epp;
    map.n_endpoints = TASKS;
    map.services = svcp;
    map.n_services = SERVICES;
    for (int i = 0; i < 5; i++) {
        double t0 = now_us();
        if (dnsd_map_update(d, &map, errmsg) != 0) {
            fprintf(stderr, "bench_dns: map update: %s\n", errmsg);
            return -1;
        }
        ms[i] = (now_us() - t0) / 1000.0;
    }
    qsort(ms, 5, sizeof ms[0], cmp_double);
    printf("dns_map_update_10k_ms: %.1f (median of 5; 10,000 tasks, 10 services)\n", ms[2]);
    dnsd_map_remove(d, "net10k");
    return 0;
}

static int measure(uv_loop_t *loop, uv_async_t *done, int nsfd, const char *name,
                   int n, const char *label)
{
    struct client c = {.nsfd = nsfd, .n = n, .name = name, .done = done};
    pthread_t th;

    c.us = calloc((size_t)n, sizeof *c.us);
    if (c.us == NULL || pthread_create(&th, NULL, client_thread, &c) != 0) {
        free(c.us);
        return -1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    qsort(c.us, (size_t)n, sizeof *c.us, cmp_double);
    printf("%s: %.0f %.0f (median p99 of %d queries, %d failed)\n", label,
           c.us[n / 2], c.us[(size_t)((double)n * 0.99)], n, c.failures);
    free(c.us);
    return c.failures == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static char *no_aliases[] = {NULL};
    const char *ups[] = {"127.0.0.2"};
    const char *nets[] = {"net1"};
    int n = argc > 1 ? atoi(argv[1]) : 5000, nsfd = -1, rv = 1;
    struct dnsd_config cfg = {.upstreams = ups, .n_upstreams = 1};
    char errmsg[SWARM_ERRMSG_SIZE] = "", path[64];
    Swarm__NetworkMap map = SWARM__NETWORK_MAP__INIT;
    Swarm__Network net = SWARM__NETWORK__INIT;
    Swarm__NetworkServiceEntry svc = SWARM__NETWORK_SERVICE_ENTRY__INIT, *svcp = &svc;
    Swarm__NetworkEndpoint ep = SWARM__NETWORK_ENDPOINT__INIT, *epp = &ep;
    struct sockaddr_in sin;
    struct dnsd *d = NULL;
    uv_udp_t upstream;
    uv_async_t done;
    uv_loop_t loop;
    pthread_t th;

    if (n < 100) {
        n = 100;
    }
    if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0 || loopback_up() != 0) {
        fprintf(stderr, "bench_dns: needs root (a network namespace of its own): %s\n",
                strerror(errno));
        return 1;
    }
    pthread_create(&th, NULL, netns_new_thread, &nsfd);
    pthread_join(th, NULL);
    if (nsfd < 0) {
        fprintf(stderr, "bench_dns: cannot make a sandbox namespace\n");
        return 1;
    }
    uv_loop_init(&loop);
    uv_async_init(&loop, &done, done_cb);
    uv_udp_init(&loop, &upstream);
    uv_ip4_addr("127.0.0.2", 53, &sin);
    if (uv_udp_bind(&upstream, (struct sockaddr *)&sin, 0) != 0 ||
        uv_udp_recv_start(&upstream, up_alloc_cb, up_recv_cb) != 0 ||
        dnsd_new(&loop, &cfg, &d, errmsg) != 0) {
        fprintf(stderr, "bench_dns: setup: %s\n", errmsg);
        return 1;
    }
    net.id = "net1";
    svc.service_id = "svc1";
    svc.name = "web";
    svc.endpoint_mode = "vip";
    svc.vip = "10.0.1.2";
    svc.aliases = no_aliases;
    ep.task_id = "task1";
    ep.task_name = "web.1.task1";
    ep.service_id = "svc1";
    ep.addr = "10.0.1.3";
    ep.ready = true;
    map.network = &net;
    map.services = &svcp;
    map.n_services = 1;
    map.endpoints = &epp;
    map.n_endpoints = 1;
    snprintf(path, sizeof path, "/proc/self/fd/%d", nsfd);
    if (dnsd_map_update(d, &map, errmsg) != 0 ||
        dnsd_sandbox_add(d, "task0", path, nets, 1, errmsg) != 0) {
        fprintf(stderr, "bench_dns: %s\n", errmsg);
        goto out;
    }
    if (measure(&loop, &done, nsfd, "web.", n, "dns_query_latency_us") == 0 &&
        measure(&loop, &done, nsfd, "example.org.", n, "dns_forward_latency_us") == 0 &&
        measure_map_update(d) == 0) {
        rv = 0;
    }
out:
    dnsd_close(d);
    uv_close((uv_handle_t *)&upstream, NULL);
    uv_close((uv_handle_t *)&done, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    close(nsfd);
    return rv;
}
