/* The node's embedded DNS server (see dns.h for the contract, the happy path
 * and the failure paths of a forwarded query). Records and messages are the
 * pure modules dnstable.c and dnsmsg.c; this file is the I/O edge: the
 * per-sandbox sockets, the forwarding sockets and timers, TCP framing.
 *
 * Lifetimes: the server, each sandbox, each TCP connection and each
 * forwarded query own libuv handles and are freed in the close callback of
 * their last handle (`open` counts them). A forwarded query points at the
 * sandbox (and TCP connection) it answers; removing those clears the
 * pointers, so a late answer is dropped, never written through a dangling
 * pointer. */
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsmsg.h"
#include "dnstable.h"
#include "err.h"
#include "log.h"
#include "vec.h"

#define DNSD_MSG_MAX 65535

struct dnsd_conn;
struct dnsd_fwd;

struct dnsd_sandbox {
    struct dnsd *d;
    char *task_id;
    char **nets;
    size_t n_nets;
    uv_udp_t udp;
    uv_tcp_t tcp;
    int open;         /* handles not yet closed */
    bool closing;
    struct dnsd_conn *conns;
    unsigned n_conns;
};

struct dnsd_conn {
    struct dnsd_sandbox *sb;
    uv_tcp_t tcp;
    uv_timer_t idle;
    int open;
    bool closing;
    VEC(uint8_t) in;  /* bytes read, not yet a whole message */
    struct dnsd_conn *next, *prev;
};

struct dnsd_fwd {
    struct dnsd *d;
    struct dnsd_sandbox *sb;    /* NULL once the sandbox is gone */
    struct dnsd_conn *conn;     /* TCP asker, NULL for UDP or once closed */
    struct sockaddr_storage client;
    uint8_t *query;             /* the asker's query, as it came */
    size_t query_len;
    uint16_t id, asker_id;
    size_t upstream;            /* the last upstream asked */
    uv_udp_t sock;
    uv_timer_t timer;
    int open;
    bool done;
    struct dnsd_fwd *next, *prev;
};

struct dnsd {
    uv_loop_t *loop;
    struct dnstable *table;
    struct sockaddr_storage upstreams[DNSD_MAX_UPSTREAMS];
    size_t n_upstreams;
    unsigned timeout_ms, max_inflight, inflight;
    uint64_t rng;
    VEC(struct dnsd_sandbox *) sandboxes;
    struct dnsd_fwd *fwds;
    bool closing;
    int open; /* sandboxes and forwarded queries not yet freed */
    uint8_t rbuf[DNSD_MSG_MAX + 1];
};

static struct log_limit dnsd_log_lim;

static void conn_close(struct dnsd_conn *c);

static void dnsd_maybe_free(struct dnsd *d)
{
    if (d->closing && d->open == 0) {
        dnstable_free(d->table);
        vec_free(&d->sandboxes);
        free(d);
    }
}

/* ---- upstreams ---------------------------------------------------------- */

static int upstream_parse(const char *s, struct sockaddr_storage *out, char *errmsg)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_s = NULL;
    long port = 53;
    size_t len;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            goto bad;
        }
        len = (size_t)(end - s - 1);
        s++;
        port_s = end[1] == ':' ? end + 2 : NULL;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            colon = NULL; /* a bare IPv6 address */
        }
        len = colon != NULL ? (size_t)(colon - s) : strlen(s);
        port_s = colon != NULL ? colon + 1 : NULL;
    }
    if (len == 0 || len >= sizeof host) {
        goto bad;
    }
    memcpy(host, s, len);
    host[len] = '\0';
    if (port_s != NULL) {
        char *end;
        port = strtol(port_s, &end, 10);
        if (*port_s == '\0' || *end != '\0' || port < 1 || port > 65535) {
            goto bad;
        }
    }
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0 ||
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0) {
        return 0;
    }
bad:
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                  "invalid upstream DNS server \"%s\" (want IP, IP:PORT or [IPv6]:PORT)", s);
    return SWARM_EINVAL;
}

/* The nameservers of a resolv.conf, read by ldns. */
static void upstreams_from_resolv_conf(struct dnsd *d, const char *path)
{
    ldns_resolver *res = NULL;
    ldns_rdf **ns;

    if (ldns_resolver_new_frm_file(&res, path) != LDNS_STATUS_OK) {
        log_warn("dns", "cannot read %s: names outside the swarm will get SERVFAIL", path);
        return;
    }
    ns = ldns_resolver_nameservers(res);
    for (size_t i = 0; i < ldns_resolver_nameserver_count(res) &&
                       d->n_upstreams < DNSD_MAX_UPSTREAMS; i++) {
        size_t size = 0;
        struct sockaddr_storage *ss = ldns_rdf2native_sockaddr_storage(ns[i], 53, &size);
        if (ss != NULL) {
            d->upstreams[d->n_upstreams++] = *ss;
            free(ss);
        }
    }
    ldns_resolver_deep_free(res);
    if (d->n_upstreams == 0) {
        log_warn("dns", "%s names no nameserver: names outside the swarm will get SERVFAIL", path);
    }
}

int dnsd_new(uv_loop_t *loop, const struct dnsd_config *cfg, struct dnsd **out,
             char *errmsg)
{
    static const struct dnsd_config defaults;
    struct dnsd *d;
    int rv;

    if (cfg == NULL) {
        cfg = &defaults;
    }
    if (cfg->n_upstreams > DNSD_MAX_UPSTREAMS) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "at most %d upstream DNS servers",
                      DNSD_MAX_UPSTREAMS);
        return SWARM_EINVAL;
    }
    d = calloc(1, sizeof *d);
    if (d == NULL) {
        return SWARM_ENOMEM;
    }
    d->loop = loop;
    d->timeout_ms = cfg->timeout_ms != 0 ? cfg->timeout_ms : DNSD_TIMEOUT_MS;
    d->max_inflight = cfg->max_inflight != 0 ? cfg->max_inflight : DNSD_MAX_INFLIGHT;
    /* The forwarded queries' IDs come from it: seed it from the kernel. */
    if (getrandom(&d->rng, sizeof d->rng, GRND_NONBLOCK) != (ssize_t)sizeof d->rng) {
        d->rng = ((uint64_t)getpid() << 32) ^ uv_hrtime() ^ (uintptr_t)d;
    }
    if (d->rng == 0) {
        d->rng = 1;
    }
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        if ((rv = upstream_parse(cfg->upstreams[i], &d->upstreams[i], errmsg)) != 0) {
            free(d);
            return rv;
        }
        d->n_upstreams++;
    }
    if (cfg->n_upstreams == 0) {
        upstreams_from_resolv_conf(d, cfg->resolv_conf != NULL ? cfg->resolv_conf
                                                               : "/etc/resolv.conf");
    }
    if ((rv = dnstable_new(&d->table)) != 0) {
        free(d);
        return rv;
    }
    *out = d;
    return 0;
}

int dnsd_map_update(struct dnsd *d, const Swarm__NetworkMap *map, char *errmsg)
{
    return dnstable_network_update(d->table, map, errmsg);
}

void dnsd_map_remove(struct dnsd *d, const char *network_id)
{
    dnstable_network_remove(d->table, network_id);
}

size_t dnsd_sandbox_count(const struct dnsd *d)
{
    return d->sandboxes.len;
}

/* ---- answering ---------------------------------------------------------- */

static void tcp_write_cb(uv_write_t *req, int status)
{
    free(req); /* the request and the message are one allocation */
}

/* Send one message to a TCP asker, length-prefixed (RFC 1035 4.2.2). */
static void conn_send(struct dnsd_conn *c, const uint8_t *msg, size_t len)
{
    uv_write_t *req;
    uint8_t *buf;
    uv_buf_t b;

    if (c->closing || len > DNSD_MSG_MAX) {
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > DNSD_TCP_QUEUE_MAX) {
        conn_close(c); /* it asks and never reads: let it go */
        return;
    }
    req = malloc(sizeof *req + 2 + len);
    if (req == NULL) {
        return; /* the asker times out and asks again */
    }
    buf = (uint8_t *)(req + 1);
    buf[0] = (uint8_t)(len >> 8);
    buf[1] = (uint8_t)len;
    memcpy(buf + 2, msg, len);
    b = uv_buf_init((char *)buf, (unsigned)(len + 2));
    if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, tcp_write_cb) != 0) {
        free(req);
    }
}

/* Send to the asker, over UDP (to `client`) or on TCP connection `c`. */
static void asker_send(struct dnsd_sandbox *sb, struct dnsd_conn *c,
                       const struct sockaddr *client, const uint8_t *msg, size_t len)
{
    if (c != NULL) {
        conn_send(c, msg, len);
    } else if (sb != NULL && !sb->closing) {
        uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
        (void)uv_udp_try_send(&sb->udp, &b, 1, client); /* lost: the asker retries */
    }
}

/* ---- forwarding ---------------------------------------------------------- */

static void fwd_close_cb(uv_handle_t *h)
{
    struct dnsd_fwd *f = h->data;
    struct dnsd *d = f->d;

    if (--f->open > 0) {
        return;
    }
    free(f->query);
    free(f);
    d->open--;
    dnsd_maybe_free(d);
}

/* The query is answered (or abandoned): close its socket and timer. */
static void fwd_finish(struct dnsd_fwd *f)
{
    if (f->done) {
        return;
    }
    f->done = true;
    f->d->inflight--;
    if (f->prev != NULL) {
        f->prev->next = f->next;
    } else {
        f->d->fwds = f->next;
    }
    if (f->next != NULL) {
        f->next->prev = f->prev;
    }
    uv_close((uv_handle_t *)&f->sock, fwd_close_cb);
    uv_close((uv_handle_t *)&f->timer, fwd_close_cb);
}

static void fwd_reply_rcode(struct dnsd_fwd *f, uint8_t rcode)
{
    uint8_t *msg;
    size_t len;

    if (dnsmsg_reply_rcode(f->query, f->query_len, rcode, &msg, &len) == 0) {
        asker_send(f->sb, f->conn, (const struct sockaddr *)&f->client, msg, len);
        free(msg);
    }
}

static bool sockaddr_same(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family) {
        return false;
    }
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

static void fwd_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dnsd_fwd *f = h->data;

    *buf = uv_buf_init((char *)f->d->rbuf, sizeof f->d->rbuf);
}

static void fwd_recv_cb(uv_udp_t *sock, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
    struct dnsd_fwd *f = sock->data;
    bool from_upstream = false;
    uint8_t *msg;
    size_t len;

    if (f->done || nread <= 0 || from == NULL) {
        return;
    }
    for (size_t i = 0; i <= f->upstream; i++) {
        from_upstream = from_upstream || sockaddr_same(from, &f->d->upstreams[i]);
    }
    if (!from_upstream ||
        dnsmsg_answer_relay((const uint8_t *)buf->base, (size_t)nread, f->query,
                            f->query_len, f->id, f->asker_id, &msg, &len) != 0) {
        return; /* not the answer we wait for: keep waiting */
    }
    asker_send(f->sb, f->conn, (const struct sockaddr *)&f->client, msg, len);
    free(msg);
    fwd_finish(f);
}

/* Send the query (with our ID) to upstream f->upstream. */
static int fwd_send(struct dnsd_fwd *f)
{
    uint8_t *msg;
    size_t len;
    uv_buf_t b;
    int rv;

    if (dnsmsg_id_rewrite(f->query, f->query_len, f->id, &f->asker_id, &msg,
                          &len) != 0) {
        return -1;
    }
    b = uv_buf_init((char *)msg, (unsigned)len);
    rv = uv_udp_try_send(&f->sock, &b, 1,
                         (const struct sockaddr *)&f->d->upstreams[f->upstream]);
    free(msg);
    return rv < 0 ? rv : 0;
}

static void fwd_timer_cb(uv_timer_t *t)
{
    struct dnsd_fwd *f = t->data;

    if (f->done) {
        return;
    }
    while (f->upstream + 1 < f->d->n_upstreams) {
        f->upstream++;
        if (f->d->upstreams[f->upstream].ss_family ==
                f->d->upstreams[0].ss_family && fwd_send(f) == 0) {
            uv_timer_start(&f->timer, fwd_timer_cb, f->d->timeout_ms, 0);
            return;
        }
    }
    fwd_reply_rcode(f, LDNS_RCODE_SERVFAIL);
    fwd_finish(f);
}

static uint16_t rng_u16(struct dnsd *d)
{
    uint64_t x = d->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    d->rng = x;
    return (uint16_t)(x >> 24);
}

/* Forward the query `q` of an asker; on any failure the asker gets
 * SERVFAIL at once. */
static void fwd_start(struct dnsd *d, struct dnsd_sandbox *sb, struct dnsd_conn *c,
                      const struct sockaddr *client, const uint8_t *q, size_t qlen)
{
    const struct sockaddr_storage *up = &d->upstreams[0];
    struct sockaddr_storage any = {0};
    struct dnsd_fwd *f;

    if (d->n_upstreams == 0 || d->inflight >= d->max_inflight) {
        goto servfail;
    }
    f = calloc(1, sizeof *f);
    if (f == NULL || (f->query = malloc(qlen)) == NULL) {
        free(f);
        goto servfail;
    }
    f->d = d;
    f->sb = sb;
    f->conn = c;
    if (client != NULL) {
        memcpy(&f->client, client, client->sa_family == AF_INET6
                                       ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
    }
    memcpy(f->query, q, qlen);
    f->query_len = qlen;
    f->id = rng_u16(d);
    uv_udp_init(d->loop, &f->sock);
    uv_timer_init(d->loop, &f->timer);
    f->sock.data = f->timer.data = f;
    f->open = 2;
    d->open++;
    d->inflight++;
    f->next = d->fwds;
    if (d->fwds != NULL) {
        d->fwds->prev = f;
    }
    d->fwds = f;
    any.ss_family = up->ss_family;
    if (uv_udp_bind(&f->sock, (const struct sockaddr *)&any, 0) != 0 ||
        uv_udp_recv_start(&f->sock, fwd_alloc_cb, fwd_recv_cb) != 0 ||
        fwd_send(f) != 0) {
        fwd_reply_rcode(f, LDNS_RCODE_SERVFAIL);
        fwd_finish(f);
        return;
    }
    uv_timer_start(&f->timer, fwd_timer_cb, d->timeout_ms, 0);
    return;
servfail:
    log_write_limited(&dnsd_log_lim, LOG_WARN, "dns",
                      d->n_upstreams == 0 ? "no upstream DNS server: SERVFAIL"
                                          : "too many forwarded queries in flight: SERVFAIL");
    {
        uint8_t *msg;
        size_t len;
        if (dnsmsg_reply_rcode(q, qlen, LDNS_RCODE_SERVFAIL, &msg, &len) == 0) {
            asker_send(sb, c, client, msg, len);
            free(msg);
        }
    }
}

/* One query from a sandbox (UDP: c == NULL, from `client`). */
static void query_handle(struct dnsd_sandbox *sb, struct dnsd_conn *c,
                         const struct sockaddr *client, const uint8_t *q, size_t qlen)
{
    struct dnsd *d = sb->d;
    enum dnsmsg_action action;
    uint8_t *reply;
    size_t len;

    if (dnsmsg_query_handle(d->table, q, qlen, (const char *const *)sb->nets,
                            sb->n_nets, c != NULL, &d->rng, &action, &reply,
                            &len) != 0) {
        return; /* out of memory: the asker retries */
    }
    if (action == DNSMSG_REPLY) {
        asker_send(sb, c, client, reply, len);
        free(reply);
    } else if (action == DNSMSG_FORWARD) {
        fwd_start(d, sb, c, client, q, qlen);
    }
}

/* ---- UDP and TCP listeners of a sandbox ------------------------------- */

static void sb_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dnsd_sandbox *sb = h->data;

    *buf = uv_buf_init((char *)sb->d->rbuf, sizeof sb->d->rbuf);
}

static void sb_udp_recv_cb(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf,
                           const struct sockaddr *from, unsigned flags)
{
    struct dnsd_sandbox *sb = udp->data;

    if (sb->closing || nread <= 0 || from == NULL || (flags & UV_UDP_PARTIAL)) {
        return;
    }
    query_handle(sb, NULL, from, (const uint8_t *)buf->base, (size_t)nread);
}

static void sb_maybe_free(struct dnsd_sandbox *sb)
{
    struct dnsd *d = sb->d;

    if (sb->open > 0) {
        return;
    }
    for (size_t i = 0; i < sb->n_nets; i++) {
        free(sb->nets[i]);
    }
    free(sb->nets);
    free(sb->task_id);
    free(sb);
    d->open--;
    dnsd_maybe_free(d);
}

static void sb_close_cb(uv_handle_t *h)
{
    struct dnsd_sandbox *sb = h->data;

    sb->open--;
    sb_maybe_free(sb);
}

static void conn_close_cb(uv_handle_t *h)
{
    struct dnsd_conn *c = h->data;
    struct dnsd_sandbox *sb = c->sb;

    if (--c->open > 0) {
        return;
    }
    vec_free(&c->in);
    free(c);
    sb->open--;
    sb_maybe_free(sb);
}

static void conn_close(struct dnsd_conn *c)
{
    struct dnsd_sandbox *sb = c->sb;

    if (c->closing) {
        return;
    }
    c->closing = true;
    for (struct dnsd_fwd *f = sb->d->fwds; f != NULL; f = f->next) {
        if (f->conn == c) {
            f->conn = NULL;
            f->sb = NULL; /* its answer has nowhere to go */
        }
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        sb->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    sb->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
    uv_close((uv_handle_t *)&c->idle, conn_close_cb);
}

static void conn_idle_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dnsd_conn *c = h->data;

    *buf = uv_buf_init((char *)c->sb->d->rbuf, sizeof c->sb->d->rbuf);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct dnsd_conn *c = s->data;
    size_t used = 0;

    if (c->closing || nread == 0) {
        return;
    }
    if (nread < 0 || c->in.len + (size_t)nread > 2 * (DNSD_MSG_MAX + 2) ||
        vec_grow(c->in.items, c->in.cap, c->in.len + (size_t)nread) != 0) {
        conn_close(c);
        return;
    }
    memcpy(c->in.items + c->in.len, buf->base, (size_t)nread);
    c->in.len += (size_t)nread;
    /* Each message: a two-byte length, then that many bytes. */
    while (!c->closing && c->in.len - used >= 2) {
        size_t mlen = ((size_t)c->in.items[used] << 8) | c->in.items[used + 1];
        if (mlen == 0) {
            conn_close(c);
            return;
        }
        if (c->in.len - used - 2 < mlen) {
            break;
        }
        uv_timer_start(&c->idle, conn_idle_cb, DNSD_TCP_IDLE_MS, 0);
        query_handle(c->sb, c, NULL, c->in.items + used + 2, mlen);
        used += 2 + mlen;
    }
    memmove(c->in.items, c->in.items + used, c->in.len - used);
    c->in.len -= used;
}

static void sb_tcp_conn_cb(uv_stream_t *server, int status)
{
    struct dnsd_sandbox *sb = server->data;
    struct dnsd_conn *c;

    if (sb->closing || status < 0) {
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        return;
    }
    c->sb = sb;
    uv_tcp_init(sb->d->loop, &c->tcp);
    uv_timer_init(sb->d->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    c->open = 2;
    sb->open++;
    c->next = sb->conns;
    if (sb->conns != NULL) {
        sb->conns->prev = c;
    }
    sb->conns = c;
    sb->n_conns++;
    /* Accept even when over the bound, to take it off the backlog. */
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        sb->n_conns > DNSD_TCP_CONNS ||
        uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->idle, conn_idle_cb, DNSD_TCP_IDLE_MS, 0);
}

/* ---- sockets inside a namespace --------------------------------------- */

struct ns_sockets {
    const char *netns_path;
    int udp, tcp;
    char errmsg[SWARM_ERRMSG_SIZE];
};

static int listen_socket(int type, char *errmsg)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(DNSD_LISTEN_PORT)};
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    const char *what = type == SOCK_DGRAM ? "udp" : "tcp";

    if (fd < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s socket: %s", what, strerror(errno));
        return -1;
    }
    inet_pton(AF_INET, DNSD_LISTEN_ADDR, &sin.sin_addr);
    if ((type == SOCK_STREAM &&
         setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "bind %s %s:%d: %s", what,
                      DNSD_LISTEN_ADDR, DNSD_LISTEN_PORT, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* On its own thread: setns() changes only the calling thread's namespace,
 * and the thread ends right after, so the loop's thread never moves. */
static void *ns_sockets_thread(void *arg)
{
    struct ns_sockets *ns = arg;
    int nsfd = open(ns->netns_path, O_RDONLY | O_CLOEXEC);

    if (nsfd < 0) {
        errmsg_printf(ns->errmsg, SWARM_ERRMSG_SIZE, "open %s: %s", ns->netns_path,
                      strerror(errno));
        return NULL;
    }
    if (setns(nsfd, CLONE_NEWNET) != 0) {
        errmsg_printf(ns->errmsg, SWARM_ERRMSG_SIZE, "enter network namespace %s: %s",
                      ns->netns_path, strerror(errno));
        close(nsfd);
        return NULL;
    }
    close(nsfd);
    ns->udp = listen_socket(SOCK_DGRAM, ns->errmsg);
    if (ns->udp >= 0) {
        ns->tcp = listen_socket(SOCK_STREAM, ns->errmsg);
        if (ns->tcp < 0) {
            close(ns->udp);
            ns->udp = -1;
        }
    }
    return NULL;
}

static ssize_t sb_find(const struct dnsd *d, const char *task_id)
{
    for (size_t i = 0; i < d->sandboxes.len; i++) {
        if (strcmp(d->sandboxes.items[i]->task_id, task_id) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

static struct dnsd_sandbox *sb_new(struct dnsd *d, const char *task_id,
                                   const char *const *network_ids, size_t n)
{
    struct dnsd_sandbox *sb = calloc(1, sizeof *sb);

    if (sb == NULL) {
        return NULL;
    }
    sb->d = d;
    sb->task_id = strdup(task_id);
    sb->nets = calloc(n > 0 ? n : 1, sizeof *sb->nets);
    if (sb->task_id == NULL || sb->nets == NULL) {
        goto err;
    }
    for (; sb->n_nets < n; sb->n_nets++) {
        if ((sb->nets[sb->n_nets] = strdup(network_ids[sb->n_nets])) == NULL) {
            goto err;
        }
    }
    return sb;
err:
    for (size_t i = 0; i < sb->n_nets; i++) {
        free(sb->nets[i]);
    }
    free(sb->nets);
    free(sb->task_id);
    free(sb);
    return NULL;
}

int dnsd_sandbox_add(struct dnsd *d, const char *task_id, const char *netns_path,
                     const char *const *network_ids, size_t n, char *errmsg)
{
    struct ns_sockets ns = {.netns_path = netns_path, .udp = -1, .tcp = -1};
    struct dnsd_sandbox *sb;
    pthread_t th;
    int rv;

    if (sb_find(d, task_id) >= 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s already has a DNS listener",
                      task_id);
        return SWARM_EEXIST;
    }
    if ((rv = pthread_create(&th, NULL, ns_sockets_thread, &ns)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "DNS listener of task %s: thread: %s",
                      task_id, strerror(rv));
        return SWARM_EIO;
    }
    pthread_join(th, NULL);
    if (ns.udp < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "DNS listener of task %s: %s", task_id,
                      ns.errmsg);
        return SWARM_EIO;
    }
    sb = sb_new(d, task_id, network_ids, n);
    if (sb == NULL || vec_grow(d->sandboxes.items, d->sandboxes.cap,
                               d->sandboxes.len + 1) != 0) {
        rv = SWARM_ENOMEM;
        goto err_after_sockets;
    }
    uv_udp_init(d->loop, &sb->udp);
    uv_tcp_init(d->loop, &sb->tcp);
    sb->udp.data = sb->tcp.data = sb;
    sb->open = 2;
    d->open++;
    d->sandboxes.items[d->sandboxes.len++] = sb;
    if (uv_udp_open(&sb->udp, ns.udp) != 0) {
        goto err_after_handles;
    }
    ns.udp = -1; /* the handle's now */
    if (uv_tcp_open(&sb->tcp, ns.tcp) != 0) {
        goto err_after_handles;
    }
    ns.tcp = -1;
    if ((rv = uv_udp_recv_start(&sb->udp, sb_alloc_cb, sb_udp_recv_cb)) != 0 ||
        (rv = uv_listen((uv_stream_t *)&sb->tcp, 64, sb_tcp_conn_cb)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "DNS listener of task %s: %s",
                      task_id, uv_strerror(rv));
        ns.udp = ns.tcp = -1;
        dnsd_sandbox_remove(d, task_id);
        return SWARM_EIO;
    }
    return 0;
err_after_handles:
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "DNS listener of task %s: cannot watch its sockets",
                  task_id);
    dnsd_sandbox_remove(d, task_id);
    sb = NULL;
    rv = SWARM_EIO;
err_after_sockets:
    if (sb != NULL) {
        for (size_t i = 0; i < sb->n_nets; i++) {
            free(sb->nets[i]);
        }
        free(sb->nets);
        free(sb->task_id);
        free(sb);
    }
    if (ns.udp >= 0) {
        close(ns.udp);
    }
    if (ns.tcp >= 0) {
        close(ns.tcp);
    }
    return rv;
}

static void sb_close(struct dnsd_sandbox *sb)
{
    sb->closing = true;
    while (sb->conns != NULL) {
        conn_close(sb->conns);
    }
    for (struct dnsd_fwd *f = sb->d->fwds; f != NULL; f = f->next) {
        if (f->sb == sb) {
            f->sb = NULL;
        }
    }
    uv_close((uv_handle_t *)&sb->udp, sb_close_cb);
    uv_close((uv_handle_t *)&sb->tcp, sb_close_cb);
}

void dnsd_sandbox_remove(struct dnsd *d, const char *task_id)
{
    ssize_t at = sb_find(d, task_id);

    if (at < 0) {
        return;
    }
    sb_close(d->sandboxes.items[at]);
    d->sandboxes.items[at] = d->sandboxes.items[d->sandboxes.len - 1];
    d->sandboxes.len--;
}

void dnsd_close(struct dnsd *d)
{
    if (d->closing) {
        return;
    }
    d->closing = true;
    while (d->fwds != NULL) {
        fwd_finish(d->fwds);
    }
    while (d->sandboxes.len > 0) {
        dnsd_sandbox_remove(d, d->sandboxes.items[0]->task_id);
    }
    dnsd_maybe_free(d);
}
