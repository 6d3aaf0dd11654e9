/* Tests of the embedded DNS server on its loop (net/dnsd.c), as root.
 *
 * Each case (a forked child of the runner) moves into a network namespace of
 * its own (unshare), which plays the node's: the fake upstream resolver
 * listens there on 127.0.0.2:53 (loopback of that namespace only). Task
 * sandboxes are namespaces made by a helper thread; a client thread enters a
 * sandbox and asks 127.0.0.11:53 over UDP or TCP, as a task would, while the
 * test's thread runs the loop. Nothing leaves the test's namespaces. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <resolv.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "dns.h"
#include "dnsfix.h"
#include "netplane.h"
#include "err.h"
#include "test.h"

#define UPSTREAM "127.0.0.2" /* port 53 */
#define UPSTREAM_TIMEOUT_MS 300

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

/* A new network namespace with loopback up, held by an fd (a thread
 * unshares, so the caller's namespace stays). */
static void *netns_new_thread(void *arg)
{
    int *fd = arg;

    *fd = -1;
    if (unshare(CLONE_NEWNET) == 0 && loopback_up() == 0) {
        *fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    }
    return NULL;
}

static int netns_new(void)
{
    pthread_t th;
    int fd = -1;

    if (pthread_create(&th, NULL, netns_new_thread, &fd) != 0) {
        return -1;
    }
    pthread_join(th, NULL);
    return fd;
}

/* ---- the fake upstream: example.org A 192.0.2.1; slow.example never
 * answers; anything else NXDOMAIN ---------------------------------------- */

struct fix {
    uv_loop_t loop;
    uv_async_t wake;
    uv_udp_t upstream;
    int upstream_queries;
    struct dnsd *dnsd;
    int ns_a, ns_b; /* sandboxes: on netA, on netB */
    struct dnsfix_map map_a, map_b;
    bool root;
};

static void up_alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *buf)
{
    static char b[65536];
    *buf = uv_buf_init(b, sizeof b);
}

static void up_recv_cb(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
                       const struct sockaddr *from, unsigned flags)
{
    struct fix *f = u->data;
    ldns_pkt *q;
    char *name;
    uint8_t *wire;
    size_t len;

    if (n <= 0 || from == NULL || (q = dnsfix_parse((uint8_t *)buf->base, (size_t)n)) == NULL) {
        return;
    }
    f->upstream_queries++;
    name = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(q), 0)));
    if (strcmp(name, "slow.example.") != 0) {
        ldns_pkt_set_qr(q, true);
        if (strcmp(name, "example.org.") == 0) {
            ldns_rr *rr = NULL;
            ldns_rr_new_frm_str(&rr, "example.org. 60 IN A 192.0.2.1", 0, NULL, NULL);
            ldns_pkt_push_rr(q, LDNS_SECTION_ANSWER, rr);
        } else {
            ldns_pkt_set_rcode(q, LDNS_RCODE_NXDOMAIN);
        }
        if (ldns_pkt2wire(&wire, q, &len) == LDNS_STATUS_OK) {
            uv_buf_t b = uv_buf_init((char *)wire, (unsigned)len);
            uv_udp_try_send(u, &b, 1, from);
            free(wire);
        }
    }
    free(name);
    ldns_pkt_free(q);
}

static const char *const NETS_A[] = {"netA"};
static const char *const NETS_B[] = {"netB"};
static char *web_aliases[] = {"www", NULL};

static void fix_setup_cfg(struct fix *f, unsigned max_inflight)
{
    const char *ups[] = {UPSTREAM};
    struct dnsd_config cfg = {.upstreams = ups, .n_upstreams = 1,
                              .timeout_ms = UPSTREAM_TIMEOUT_MS,
                              .max_inflight = max_inflight};
    struct sockaddr_in sin;
    char errmsg[SWARM_ERRMSG_SIZE] = "";

    f->root = geteuid() == 0;
    if (!f->root) {
        return;
    }
    if (unshare(CLONE_NEWNET) != 0 || loopback_up() != 0) {
        FAILF("own network namespace: %s", strerror(errno));
    }
    ASSERT_INT_EQ(uv_loop_init(&f->loop), 0);
    ASSERT_INT_EQ(uv_async_init(&f->loop, &f->wake, NULL), 0);
    ASSERT_INT_EQ(uv_udp_init(&f->loop, &f->upstream), 0);
    f->upstream.data = f;
    uv_ip4_addr("127.0.0.2", 53, &sin);
    ASSERT_INT_EQ(uv_udp_bind(&f->upstream, (struct sockaddr *)&sin, 0), 0);
    ASSERT_INT_EQ(uv_udp_recv_start(&f->upstream, up_alloc_cb, up_recv_cb), 0);
    if (dnsd_new(&f->loop, &cfg, &f->dnsd, errmsg) != 0) {
        FAILF("dnsd_new: %s", errmsg);
    }
    dnsfix_map_init(&f->map_a, "netA", "front");
    dnsfix_map_service(&f->map_a, "svcweb", "web", "vip", "10.0.1.2", web_aliases);
    dnsfix_map_service(&f->map_a, "svcdb", "db", "dnsrr", "", NULL);
    dnsfix_map_task(&f->map_a, "t3", "web.1.t3", "svcweb", "10.0.1.3", true, web_aliases);
    dnsfix_map_task(&f->map_a, "t4", "web.2.t4", "svcweb", "10.0.1.4", true, web_aliases);
    dnsfix_map_task(&f->map_a, "t6", "db.1.t6", "svcdb", "10.0.1.6", true, NULL);
    dnsfix_map_task(&f->map_a, "t7", "db.2.t7", "svcdb", "10.0.1.7", true, NULL);
    dnsfix_map_init(&f->map_b, "netB", "back");
    dnsfix_map_service(&f->map_b, "svcapi", "api", "vip", "10.0.2.2", NULL);
    dnsfix_map_task(&f->map_b, "t9", "api.1.t9", "svcapi", "10.0.2.9", true, NULL);
    ASSERT_INT_EQ(dnsd_map_update(f->dnsd, &f->map_a.map, errmsg), 0);
    ASSERT_INT_EQ(dnsd_map_update(f->dnsd, &f->map_b.map, errmsg), 0);
    f->ns_a = netns_new();
    f->ns_b = netns_new();
    ASSERT(f->ns_a >= 0 && f->ns_b >= 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", f->ns_a);
    if (dnsd_sandbox_add(f->dnsd, "taskA", path, NETS_A, 1, errmsg) != 0) {
        FAILF("sandbox_add: %s", errmsg);
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", f->ns_b);
    if (dnsd_sandbox_add(f->dnsd, "taskB", path, NETS_B, 1, errmsg) != 0) {
        FAILF("sandbox_add: %s", errmsg);
    }
}

static void fix_setup(struct fix *f)
{
    fix_setup_cfg(f, 0);
}

static void fix_setup_one_inflight(struct fix *f)
{
    fix_setup_cfg(f, 1);
}

static void close_cb(uv_handle_t *h)
{
}

static void fix_teardown(struct fix *f)
{
    if (!f->root) {
        return;
    }
    if (f->dnsd != NULL) {
        dnsd_close(f->dnsd);
    }
    uv_close((uv_handle_t *)&f->upstream, close_cb);
    uv_close((uv_handle_t *)&f->wake, close_cb);
    for (int i = 0; i < 100 && uv_run(&f->loop, UV_RUN_NOWAIT) != 0; i++) {
    }
    ASSERT_INT_EQ(uv_loop_close(&f->loop), 0);
    close(f->ns_a);
    close(f->ns_b);
}

#define SKIP_UNLESS_ROOT(f)                                              \
    do {                                                                 \
        if (!(f)->root) {                                                \
            fprintf(stderr, "skipped: needs root (network namespaces)\n"); \
            return;                                                      \
        }                                                                \
    } while (0)

/* ---- a client inside a sandbox ---------------------------------------- */

struct ask {
    struct fix *f;
    int nsfd;
    bool tcp;
    const uint8_t *msgs[2];  /* sent back to back */
    size_t lens[2];
    int want_id;             /* the reply to wait for (-1: the first) */
    int wait_ms;
    uint8_t reply[65536];
    size_t reply_len;
    uint8_t first[65536];    /* the first reply that came, whatever its ID */
    size_t first_len;
    int err;                 /* 0, ETIMEDOUT, ECONNREFUSED, ... */
    int flood;               /* TCP: send msgs[0] up to this many times,
                                never reading (ask_flood) */
    const char *gai_name;    /* ask glibc's getaddrinfo instead (ask_gai):
                                reply = the sorted addresses, err = EAI_* */
    atomic_bool done;
};

static int read_full(int fd, uint8_t *buf, size_t len, int wait_ms)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, wait_ms) <= 0) {
            return ETIMEDOUT;
        }
        n = read(fd, buf + got, len - got);
        if (n <= 0) {
            return n == 0 ? ECONNRESET : errno;
        }
        got += (size_t)n;
    }
    return 0;
}

/* Send msgs[0] a->flood times, never reading; then wait (30 s at most,
 * still not reading) for the server to reset the connection: err 0 if it
 * did, ETIMEDOUT if not. The bounds are generous: under ASan on a loaded
 * machine the server may take seconds to answer the thousands of queries
 * the kernel's buffers take before its queue passes the limit. */
static void ask_flood(struct ask *a, int fd)
{
    enum { BATCH = 1000 };
    size_t flen = a->lens[0] + 2;
    uint8_t *buf = malloc(flen * BATCH);
    struct timeval tv = {.tv_sec = 30};

    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    for (int i = 0; i < BATCH; i++) {
        buf[i * flen] = (uint8_t)(a->lens[0] >> 8);
        buf[i * flen + 1] = (uint8_t)a->lens[0];
        memcpy(buf + i * flen + 2, a->msgs[0], a->lens[0]);
    }
    a->err = ETIMEDOUT;
    for (int sent = 0; sent < a->flood; sent += BATCH) {
        size_t off = 0;
        while (off < flen * BATCH) {
            ssize_t n = send(fd, buf + off, flen * BATCH - off, MSG_NOSIGNAL);
            if (n <= 0) {
                a->err = n < 0 && (errno == ECONNRESET || errno == EPIPE) ? 0 : errno;
                a->reply_len = (size_t)sent; /* queries sent before the end */
                free(buf);
                return;
            }
            off += (size_t)n;
        }
    }
    free(buf);
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 30000) == 1 && (p.revents & (POLLERR | POLLHUP | POLLRDHUP))) {
        a->err = 0;
    }
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* glibc's own stub resolver, as a task's program would use it: this thread
 * gets a mount namespace of its own where /etc/resolv.conf is the one a
 * sandbox has (nameserver 127.0.0.11), enters the sandbox's network
 * namespace and calls getaddrinfo (A and AAAA at once, on one socket). */
static void ask_gai(struct ask *a)
{
    char path[] = "/tmp/test_dnsd_gaiXXXXXX", *addrs[64];
    const char conf[] = "nameserver 127.0.0.11\noptions ndots:0 timeout:2 attempts:1\n";
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    size_t n = 0, used = 0;
    int fd;

    a->err = EAI_SYSTEM;
    if (unshare(CLONE_FS | CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        (fd = mkstemp(path)) < 0) {
        return;
    }
    if (write(fd, conf, sizeof conf - 1) != (ssize_t)(sizeof conf - 1)) {
        close(fd);
        return;
    }
    close(fd);
    if (mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) != 0) {
        unlink(path);
        return;
    }
    unlink(path);
    if (setns(a->nsfd, CLONE_NEWNET) != 0) {
        return;
    }
    res_init(); /* read the new resolv.conf */
    a->err = getaddrinfo(a->gai_name, NULL, &hints, &res);
    if (a->err != 0) {
        return;
    }
    for (struct addrinfo *ai = res; ai != NULL && n < 64; ai = ai->ai_next) {
        char buf[INET6_ADDRSTRLEN];
        const void *src = ai->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        inet_ntop(ai->ai_family, src, buf, sizeof buf);
        addrs[n++] = strdup(buf);
    }
    freeaddrinfo(res);
    qsort(addrs, n, sizeof addrs[0], str_cmp);
    a->reply[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        used += (size_t)snprintf((char *)a->reply + used, sizeof a->reply - used, "%s%s",
                                 i > 0 ? "," : "", addrs[i]);
        free(addrs[i]);
    }
}

static void ask_run(struct ask *a)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53)};
    int fd;

    inet_pton(AF_INET, "127.0.0.11", &to.sin_addr);
    if (a->gai_name != NULL) {
        ask_gai(a);
        return;
    }
    if (setns(a->nsfd, CLONE_NEWNET) != 0) {
        a->err = errno;
        return;
    }
    fd = socket(AF_INET, (a->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (fd >= 0 && a->flood > 0) {
        int small = 4096; /* keep the answers on the server's side */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        a->err = errno;
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    if (a->flood > 0) {
        ask_flood(a, fd);
        close(fd);
        return;
    }
    for (int i = 0; i < 2 && a->msgs[i] != NULL; i++) {
        uint8_t frame[65538];
        size_t flen = a->lens[i];
        if (a->tcp) {
            frame[0] = (uint8_t)(flen >> 8);
            frame[1] = (uint8_t)flen;
            memcpy(frame + 2, a->msgs[i], flen);
            flen += 2;
        } else {
            memcpy(frame, a->msgs[i], flen);
        }
        if (write(fd, frame, flen) != (ssize_t)flen) {
            a->err = errno;
            close(fd);
            return;
        }
    }
    for (int tries = 0; tries < 10; tries++) {
        if (a->tcp) {
            uint8_t hdr[2];
            a->err = read_full(fd, hdr, 2, a->wait_ms);
            if (a->err == 0) {
                a->reply_len = ((size_t)hdr[0] << 8) | hdr[1];
                a->err = read_full(fd, a->reply, a->reply_len, a->wait_ms);
            }
        } else {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            ssize_t n;
            a->err = ETIMEDOUT;
            if (poll(&p, 1, a->wait_ms) > 0) {
                n = recv(fd, a->reply, sizeof a->reply, 0);
                a->err = n < 0 ? errno : 0;
                a->reply_len = n < 0 ? 0 : (size_t)n;
            }
        }
        if (a->err == 0 && a->first_len == 0) {
            memcpy(a->first, a->reply, a->reply_len);
            a->first_len = a->reply_len;
        }
        if (a->err != 0 || a->want_id < 0 || a->reply_len < 2 ||
            ((a->reply[0] << 8) | a->reply[1]) == a->want_id) {
            break;
        }
    }
    close(fd);
}

static void *ask_thread(void *arg)
{
    struct ask *a = arg;

    ask_run(a);
    atomic_store(&a->done, true);
    uv_async_send(&a->f->wake);
    return NULL;
}

/* Run the ask on its thread while the loop serves it (bounded wait). */
static void ask_do(struct fix *f, struct ask *a)
{
    pthread_t th;

    a->f = f;
    if (a->wait_ms == 0) {
        a->wait_ms = 3000;
    }
    if (pthread_create(&th, NULL, ask_thread, a) != 0) {
        a->err = EAGAIN;
        return;
    }
    for (int i = 0; i < 100000 && !atomic_load(&a->done); i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    pthread_join(th, NULL);
}

/* Ask NAME/TYPE from a sandbox; the parsed reply or NULL (a->err says). */
static ldns_pkt *ask_name(struct fix *f, int nsfd, const char *name, ldns_rr_type type,
                          bool tcp, struct ask *a)
{
    size_t len;
    uint8_t *q = dnsfix_query(name, type, 0xbeef, 0, &len);

    memset(a, 0, sizeof *a);
    a->nsfd = nsfd;
    a->tcp = tcp;
    a->msgs[0] = q;
    a->lens[0] = len;
    a->want_id = 0xbeef;
    ask_do(f, a);
    free(q);
    return a->err == 0 ? dnsfix_parse(a->reply, a->reply_len) : NULL;
}

/* The reply's rcode and sorted addresses, "NOERROR 10.0.1.2" or the error. */
static const char *ask_str(struct fix *f, int nsfd, const char *name, ldns_rr_type type,
                           bool tcp, char *buf, size_t size)
{
    struct ask *a = calloc(1, sizeof *a);
    ldns_pkt *p = ask_name(f, nsfd, name, type, tcp, a);
    char addrs[512];

    if (p == NULL) {
        snprintf(buf, size, "error %s", strerror(a->err));
    } else {
        ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, ldns_pkt_get_rcode(p));
        dnsfix_answer_addrs(p, addrs, sizeof addrs);
        snprintf(buf, size, "%s%s%s%s", rc != NULL ? rc->name : "?", addrs[0] ? " " : "",
                 addrs, ldns_pkt_id(p) == 0xbeef ? "" : " (wrong id)");
        ldns_pkt_free(p);
    }
    free(a);
    return buf;
}

#define ASK_EQ(f, ns, name, type, tcp, expect)                                   \
    do {                                                                         \
        char askbuf_[600];                                                            \
        ASSERT_STR_EQ(ask_str(f, ns, name, type, tcp, askbuf_, sizeof askbuf_), expect);   \
    } while (0)

TEST_F(dnsd_sandbox_gets_names_of_its_networks_over_udp_and_tcp, struct fix, fix_setup,
       fix_teardown)
{
    SKIP_UNLESS_ROOT(f);
    ASK_EQ(f, f->ns_a, "web.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.2");
    ASK_EQ(f, f->ns_a, "tasks.web.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.3,10.0.1.4");
    ASK_EQ(f, f->ns_a, "www.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.2");
    ASK_EQ(f, f->ns_a, "DB.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.6,10.0.1.7");
    ASK_EQ(f, f->ns_a, "web.1.t3.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.3");
    ASK_EQ(f, f->ns_a, "web.", LDNS_RR_TYPE_AAAA, false, "NOERROR");
    ASK_EQ(f, f->ns_a, "tasks.web.", LDNS_RR_TYPE_A, true, "NOERROR 10.0.1.3,10.0.1.4");
    ASK_EQ(f, f->ns_b, "api.", LDNS_RR_TYPE_A, true, "NOERROR 10.0.2.2");
    ASSERT_INT_EQ(f->upstream_queries, 0);
}

/* getaddrinfo: "%s" with the sorted addresses, or the EAI_* text. */
static const char *gai_str(struct fix *f, int nsfd, const char *name, char *buf, size_t size)
{
    struct ask *a = calloc(1, sizeof *a);

    a->nsfd = nsfd;
    a->gai_name = name;
    ask_do(f, a);
    if (a->err != 0) {
        snprintf(buf, size, "%s", a->err == EAI_SYSTEM ? strerror(errno) : gai_strerror(a->err));
    } else {
        snprintf(buf, size, "%s", (char *)a->reply);
    }
    free(a);
    return buf;
}

/* A program in a task, through glibc: getaddrinfo asks A and AAAA at once;
 * the AAAA gets NOERROR without records, so only the IPv4 addresses come. */
TEST_F(dnsd_glibc_getaddrinfo_in_a_sandbox_resolves_service_names, struct fix, fix_setup,
       fix_teardown)
{
    char buf[512];
    SKIP_UNLESS_ROOT(f);
    ASSERT_STR_EQ(gai_str(f, f->ns_a, "web", buf, sizeof buf), "10.0.1.2");
    ASSERT_STR_EQ(gai_str(f, f->ns_a, "tasks.db", buf, sizeof buf), "10.0.1.6,10.0.1.7");
    ASSERT_STR_EQ(gai_str(f, f->ns_a, "WWW", buf, sizeof buf), "10.0.1.2");
    ASSERT_STR_EQ(gai_str(f, f->ns_a, "example.org", buf, sizeof buf), "192.0.2.1");
    ASSERT_STR_EQ(gai_str(f, f->ns_b, "web", buf, sizeof buf), gai_strerror(EAI_NONAME));
}

TEST_F(dnsd_names_of_other_networks_are_forwarded, struct fix, fix_setup, fix_teardown)
{
    SKIP_UNLESS_ROOT(f);
    ASK_EQ(f, f->ns_b, "web.", LDNS_RR_TYPE_A, false, "NXDOMAIN");
    ASK_EQ(f, f->ns_b, "tasks.web.", LDNS_RR_TYPE_A, true, "NXDOMAIN");
    ASK_EQ(f, f->ns_a, "api.", LDNS_RR_TYPE_A, false, "NXDOMAIN");
    ASSERT_INT_EQ(f->upstream_queries, 3);
}

TEST_F(dnsd_forwards_other_names_upstream_and_relays_the_answer, struct fix, fix_setup,
       fix_teardown)
{
    SKIP_UNLESS_ROOT(f);
    ASK_EQ(f, f->ns_a, "example.org.", LDNS_RR_TYPE_A, false, "NOERROR 192.0.2.1");
    ASK_EQ(f, f->ns_a, "example.org.", LDNS_RR_TYPE_A, true, "NOERROR 192.0.2.1");
    ASSERT_INT_EQ(f->upstream_queries, 2);
}

TEST_F(dnsd_upstream_timeout_gives_servfail, struct fix, fix_setup, fix_teardown)
{
    SKIP_UNLESS_ROOT(f);
    ASK_EQ(f, f->ns_a, "slow.example.", LDNS_RR_TYPE_A, false, "SERVFAIL");
    ASK_EQ(f, f->ns_a, "slow.example.", LDNS_RR_TYPE_A, true, "SERVFAIL");
    ASSERT_INT_EQ(f->upstream_queries, 2);
}

TEST_F(dnsd_too_many_forwarded_queries_get_servfail, struct fix, fix_setup_one_inflight,
       fix_teardown)
{
    size_t l1, l2;
    uint8_t *slow = dnsfix_query("slow.example.", LDNS_RR_TYPE_A, 1, 0, &l1);
    uint8_t *fast = dnsfix_query("example.org.", LDNS_RR_TYPE_A, 2, 0, &l2);
    struct ask *a = calloc(1, sizeof *a);
    ldns_pkt *p;
    SKIP_UNLESS_ROOT(f);
    a->nsfd = f->ns_a;
    a->msgs[0] = slow;
    a->lens[0] = l1;
    a->msgs[1] = fast;
    a->lens[1] = l2;
    a->want_id = 1; /* wait for the slow one's SERVFAIL (its timeout) */
    ask_do(f, a);
    ASSERT_INT_EQ(a->err, 0);
    /* the second, beyond the bound, was answered first, at once */
    p = dnsfix_parse(a->first, a->first_len);
    ASSERT(p != NULL);
    ASSERT_INT_EQ(ldns_pkt_id(p), 2);
    ASSERT_INT_EQ(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
    ldns_pkt_free(p);
    p = dnsfix_parse(a->reply, a->reply_len);
    ASSERT(p != NULL);
    ASSERT_INT_EQ(ldns_pkt_id(p), 1);
    ASSERT_INT_EQ(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
    ASSERT_INT_EQ(f->upstream_queries, 1); /* only the slow one went out */
    ldns_pkt_free(p);
    /* once the slow one timed out, forwarding works again */
    ASK_EQ(f, f->ns_a, "example.org.", LDNS_RR_TYPE_A, false, "NOERROR 192.0.2.1");
    free(a);
    free(slow);
    free(fast);
}

TEST_F(dnsd_malformed_bytes_are_dropped_and_the_server_goes_on, struct fix, fix_setup,
       fix_teardown)
{
    static const uint8_t garbage[] = {0xde, 0xad, 0xbe, 0xef, 0x00};
    uint8_t *noq;
    size_t len;
    ldns_pkt *p = ldns_pkt_new();
    struct ask *a = calloc(1, sizeof *a);
    SKIP_UNLESS_ROOT(f);
    /* garbage: no answer at all */
    a->nsfd = f->ns_a;
    a->msgs[0] = garbage;
    a->lens[0] = sizeof garbage;
    a->want_id = -1;
    a->wait_ms = 300;
    ask_do(f, a);
    ASSERT_INT_EQ(a->err, ETIMEDOUT);
    /* no question: FORMERR, over TCP too */
    ldns_pkt_set_id(p, 77);
    ASSERT(ldns_pkt2wire(&noq, p, &len) == LDNS_STATUS_OK);
    for (int tcp = 0; tcp < 2; tcp++) {
        ldns_pkt *r;
        memset(a, 0, sizeof *a);
        a->nsfd = f->ns_a;
        a->tcp = tcp;
        a->msgs[0] = noq;
        a->lens[0] = len;
        a->want_id = 77;
        ask_do(f, a);
        ASSERT_INT_EQ(a->err, 0);
        r = dnsfix_parse(a->reply, a->reply_len);
        ASSERT(r != NULL);
        ASSERT_INT_EQ(ldns_pkt_get_rcode(r), LDNS_RCODE_FORMERR);
        ldns_pkt_free(r);
    }
    /* a TCP length prefix with no message behind it, then a zero length */
    memset(a, 0, sizeof *a);
    a->nsfd = f->ns_a;
    a->tcp = true;
    a->msgs[0] = (const uint8_t *)"\x40";
    a->lens[0] = 1;
    a->want_id = -1;
    a->wait_ms = 300;
    ask_do(f, a);
    ASSERT(a->err != 0);
    ASK_EQ(f, f->ns_a, "web.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.2");
    ASK_EQ(f, f->ns_a, "web.", LDNS_RR_TYPE_A, true, "NOERROR 10.0.1.2");
    ASSERT_INT_EQ(f->upstream_queries, 0);
    free(noq);
    ldns_pkt_free(p);
    free(a);
}

/* A TCP asker that sends and never reads is let go once its unread
 * answers pass DNSD_TCP_QUEUE_MAX; the server goes on. */
TEST_F(dnsd_tcp_asker_that_never_reads_is_closed, struct fix, fix_setup, fix_teardown)
{
    static char names[100][32], addrs[100][32];
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct ask *a = calloc(1, sizeof *a);
    size_t qlen;
    uint8_t *q = dnsfix_query("big.", LDNS_RR_TYPE_A, 5, 0, &qlen);
    SKIP_UNLESS_ROOT(f);
    dnsfix_map_service(&f->map_a, "svcbig", "big", "dnsrr", "", NULL);
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof names[i], "big.%d.b%d", i + 1, i);
        snprintf(addrs[i], sizeof addrs[i], "10.0.3.%d", i + 1);
        dnsfix_map_task(&f->map_a, names[i] + 4, names[i], "svcbig", addrs[i], true, NULL);
    }
    ASSERT_INT_EQ(dnsd_map_update(f->dnsd, &f->map_a.map, errmsg), 0);
    a->nsfd = f->ns_a;
    a->tcp = true;
    a->msgs[0] = q;
    a->lens[0] = qlen;
    a->flood = 20000; /* 32 MB of answers if it were never let go */
    ask_do(f, a);
    ASSERT_INT_EQ(a->err, 0); /* the server ended the connection */
    ASK_EQ(f, f->ns_a, "web.", LDNS_RR_TYPE_A, true, "NOERROR 10.0.1.2");
    free(q);
    free(a);
}

TEST_F(dnsd_map_changes_and_sandbox_removal_take_effect, struct fix, fix_setup,
       fix_teardown)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    SKIP_UNLESS_ROOT(f);
    f->map_a.eps[0].ready = false; /* web.1.t3 stops */
    ASSERT_INT_EQ(dnsd_map_update(f->dnsd, &f->map_a.map, errmsg), 0);
    ASK_EQ(f, f->ns_a, "tasks.web.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.4");
    dnsd_map_remove(f->dnsd, "netA");
    ASK_EQ(f, f->ns_a, "web.", LDNS_RR_TYPE_A, false, "NXDOMAIN"); /* forwarded */
    ASSERT_INT_EQ(dnsd_sandbox_count(f->dnsd), 2);
    dnsd_sandbox_remove(f->dnsd, "taskA");
    ASSERT_INT_EQ(dnsd_sandbox_count(f->dnsd), 1);
    ASK_EQ(f, f->ns_a, "web.", LDNS_RR_TYPE_A, false, "error Connection refused");
    ASK_EQ(f, f->ns_b, "api.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.2.2");
}

TEST_F(dnsd_sandbox_add_failures_say_why_and_leave_nothing, struct fix, fix_setup,
       fix_teardown)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "", path[64];
    SKIP_UNLESS_ROOT(f);
    ASSERT_INT_EQ(dnsd_sandbox_add(f->dnsd, "taskC", "/nonexistent/ns", NETS_A, 1, errmsg),
                  SWARM_EIO);
    ASSERT_STR_EQ(errmsg, "DNS listener of task taskC: open /nonexistent/ns: No such file or directory");
    ASSERT_INT_EQ(dnsd_sandbox_add(f->dnsd, "taskC", "/dev/null", NETS_A, 1, errmsg),
                  SWARM_EIO);
    ASSERT_STR_EQ(errmsg, "DNS listener of task taskC: enter network namespace /dev/null: Invalid argument");
    snprintf(path, sizeof path, "/proc/self/fd/%d", f->ns_a);
    ASSERT_INT_EQ(dnsd_sandbox_add(f->dnsd, "taskA", path, NETS_A, 1, errmsg), SWARM_EEXIST);
    /* the same namespace under another task: 127.0.0.11:53 is taken */
    ASSERT_INT_EQ(dnsd_sandbox_add(f->dnsd, "taskC", path, NETS_A, 1, errmsg), SWARM_EIO);
    ASSERT_STR_EQ(errmsg, "DNS listener of task taskC: bind udp 127.0.0.11:53: Address already in use");
    ASSERT_INT_EQ(dnsd_sandbox_count(f->dnsd), 2);
    ASK_EQ(f, f->ns_a, "web.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.2");
}

TEST_F(dnsd_reads_upstreams_from_resolv_conf, struct fix, fix_setup, fix_teardown)
{
    char path[] = "/tmp/test_dnsd_resolvXXXXXX", nspath[64];
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    const char conf[] = "# written by the test\nsearch example.net\n"
                        "options ndots:2 timeout:1\nnameserver 127.0.0.2\n";
    struct dnsd_config cfg = {.resolv_conf = path, .timeout_ms = UPSTREAM_TIMEOUT_MS};
    struct dnsd *d2 = NULL;
    int fd, ns_c;
    SKIP_UNLESS_ROOT(f);
    fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT_INT_EQ(write(fd, conf, sizeof conf - 1), (long long)(sizeof conf - 1));
    close(fd);
    ASSERT_INT_EQ(dnsd_new(&f->loop, &cfg, &d2, errmsg), 0);
    unlink(path);
    ns_c = netns_new();
    ASSERT(ns_c >= 0);
    snprintf(nspath, sizeof nspath, "/proc/self/fd/%d", ns_c);
    ASSERT_INT_EQ(dnsd_sandbox_add(d2, "taskC", nspath, NETS_A, 1, errmsg), 0);
    ASK_EQ(f, ns_c, "example.org.", LDNS_RR_TYPE_A, false, "NOERROR 192.0.2.1");
    ASSERT_INT_EQ(f->upstream_queries, 1);
    dnsd_close(d2);
    close(ns_c);
}

/* netplane runs the DNS server: a sandbox it makes gets a listener that
 * answers from its task's networks, maps feed the records, removing the
 * sandbox removes the listener. Own network and mount namespaces (netplane
 * bind-mounts namespaces under its state dir). */
TEST(dnsd_netplane_sandboxes_get_dns_from_their_maps)
{
    struct fix *f = calloc(1, sizeof *f);
    const char *ups[] = {UPSTREAM};
    struct dnsd_config dcfg = {.upstreams = ups, .n_upstreams = 1,
                               .timeout_ms = UPSTREAM_TIMEOUT_MS};
    char dir[] = "/tmp/test_dnsd_netplaneXXXXXX", nspath[PATH_MAX];
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct netplane_config cfg = {.state_dir = dir, .underlay_ip = "127.0.0.1", .dns = &dcfg};
    struct netplane *np = NULL;
    struct sockaddr_in sin;
    Swarm__IPAMConfig ipam = SWARM__IPAMCONFIG__INIT;
    Swarm__Network net = SWARM__NETWORK__INIT;
    Swarm__NetworkAttachment att = SWARM__NETWORK_ATTACHMENT__INIT, *attp = &att;
    Swarm__Task task = SWARM__TASK__INIT;
    char *addrs[] = {"10.0.1.3/24"};
    int nsfd;

    if (geteuid() != 0) {
        fprintf(stderr, "skipped: needs root (network namespaces)\n");
        free(f);
        return;
    }
    ASSERT(unshare(CLONE_NEWNET | CLONE_NEWNS) == 0);
    ASSERT(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
    ASSERT(loopback_up() == 0);
    ASSERT(mkdtemp(dir) != NULL);
    f->root = true;
    ASSERT_INT_EQ(uv_loop_init(&f->loop), 0);
    ASSERT_INT_EQ(uv_async_init(&f->loop, &f->wake, NULL), 0);
    ASSERT_INT_EQ(uv_udp_init(&f->loop, &f->upstream), 0);
    f->upstream.data = f;
    uv_ip4_addr("127.0.0.2", 53, &sin);
    ASSERT_INT_EQ(uv_udp_bind(&f->upstream, (struct sockaddr *)&sin, 0), 0);
    ASSERT_INT_EQ(uv_udp_recv_start(&f->upstream, up_alloc_cb, up_recv_cb), 0);
    cfg.loop = &f->loop;
    if (netplane_new(&cfg, &np, errmsg) != 0) {
        FAILF("netplane_new: %s", errmsg);
    }
    /* the map: web (vip 10.0.1.2) with its task t1 at 10.0.1.3 on this node */
    dnsfix_map_init(&f->map_a, "n1", "front");
    dnsfix_map_service(&f->map_a, "svcweb", "web", "vip", "10.0.1.2", web_aliases);
    dnsfix_map_task(&f->map_a, "t1", "web.1.t1", "svcweb", "10.0.1.3", true, web_aliases);
    f->map_a.eps[0].node_addr = "127.0.0.1";
    if (netplane_map_update(np, &f->map_a.map, errmsg) != 0) {
        FAILF("map_update: %s", errmsg);
    }
    /* a map the DNS records refuse changes nothing */
    f->map_a.svcs[0].vip = "not-an-ip";
    ASSERT_INT_EQ(netplane_map_update(np, &f->map_a.map, errmsg), SWARM_EINVAL);
    ASSERT_STR_EQ(errmsg, "network n1: service web: VIP \"not-an-ip\" is not an IP address");
    f->map_a.svcs[0].vip = "10.0.1.2";
    /* the task's sandbox */
    ipam.subnet = "10.0.1.0/24";
    ipam.gateway = "10.0.1.1";
    net.id = "n1";
    net.vni = 4097;
    net.ipam = &ipam;
    att.network = &net;
    att.addresses = addrs;
    att.n_addresses = 1;
    task.id = "t1";
    task.networks = &attp;
    task.n_networks = 1;
    if (netplane_sandbox_create(np, &task, NULL, nspath, errmsg) != 0) {
        FAILF("sandbox_create: %s", errmsg);
    }
    nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    ASSERT(nsfd >= 0);
    ASK_EQ(f, nsfd, "web.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.2");
    ASK_EQ(f, nsfd, "tasks.www.", LDNS_RR_TYPE_A, true, "NOERROR 10.0.1.3");
    ASK_EQ(f, nsfd, "web.1.t1.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.3");
    ASK_EQ(f, nsfd, "example.org.", LDNS_RR_TYPE_A, false, "NOERROR 192.0.2.1");
    ASSERT_INT_EQ(f->upstream_queries, 1);
    /* the task stops being ready, then the map goes */
    f->map_a.eps[0].ready = false;
    ASSERT_INT_EQ(netplane_map_update(np, &f->map_a.map, errmsg), 0);
    ASK_EQ(f, nsfd, "tasks.web.", LDNS_RR_TYPE_A, false, "NXDOMAIN");
    f->map_a.eps[0].ready = true;
    ASSERT_INT_EQ(netplane_map_update(np, &f->map_a.map, errmsg), 0);
    ASK_EQ(f, nsfd, "tasks.web.", LDNS_RR_TYPE_A, false, "NOERROR 10.0.1.3");
    ASSERT_INT_EQ(netplane_map_remove(np, "n1"), 0);
    ASK_EQ(f, nsfd, "web.", LDNS_RR_TYPE_A, false, "NXDOMAIN");
    /* the sandbox goes, and its listener with it */
    ASSERT_INT_EQ(netplane_sandbox_remove(np, "t1"), 0);
    ASK_EQ(f, nsfd, "web.", LDNS_RR_TYPE_A, false, "error Connection refused");
    netplane_close(np);
    close(nsfd);
    uv_close((uv_handle_t *)&f->upstream, close_cb);
    uv_close((uv_handle_t *)&f->wake, close_cb);
    for (int i = 0; i < 100 && uv_run(&f->loop, UV_RUN_NOWAIT) != 0; i++) {
    }
    ASSERT_INT_EQ(uv_loop_close(&f->loop), 0);
    rmdir(dir);
    free(f);
}

TEST(dnsd_bad_upstream_is_refused)
{
    uv_loop_t loop;
    struct dnsd *d = NULL;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    const char *bad[] = {"not-an-ip"}, *badport[] = {"127.0.0.1:99999"};
    const char *good[] = {"127.0.0.1:5353", "[::1]:53", "10.1.2.3"};
    struct dnsd_config cfg = {.upstreams = bad, .n_upstreams = 1};
    ASSERT_INT_EQ(uv_loop_init(&loop), 0);
    ASSERT_INT_EQ(dnsd_new(&loop, &cfg, &d, errmsg), SWARM_EINVAL);
    ASSERT_STR_EQ(errmsg, "invalid upstream DNS server \"not-an-ip\" (want IP, IP:PORT or [IPv6]:PORT)");
    cfg.upstreams = badport;
    ASSERT_INT_EQ(dnsd_new(&loop, &cfg, &d, errmsg), SWARM_EINVAL);
    cfg.upstreams = good;
    cfg.n_upstreams = 3;
    ASSERT_INT_EQ(dnsd_new(&loop, &cfg, &d, errmsg), 0);
    dnsd_close(d);
    /* a resolv.conf with no nameserver is not an error */
    cfg.n_upstreams = 0;
    cfg.resolv_conf = "/nonexistent/resolv.conf";
    ASSERT_INT_EQ(dnsd_new(&loop, &cfg, &d, errmsg), 0);
    dnsd_close(d);
    ASSERT_INT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ASSERT_INT_EQ(uv_loop_close(&loop), 0);
}

TEST_MAIN()
