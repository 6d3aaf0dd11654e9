/* The metrics endpoint (metricsd.h).
 *
 * Happy path: a connection arrives -> the epoll fd is readable -> poll_cb
 * runs MHD_run -> MHD accepts, reads the request, calls answer_cb -> we
 * collect, render and queue the response -> MHD writes it (now or on a
 * later MHD_run) -> rearm the timer with MHD_get_timeout.
 * Failures: a bad path or method gets 404/405; a render out of memory gets
 * 500; a stuck client is dropped by MHD's connection timeout. */
#include "metricsd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "log.h"
#include "smetrics.h"

#define METRICSD_CONN_LIMIT 32
#define METRICSD_CONN_TIMEOUT_S 10
#define METRICSD_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metricsd {
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    uv_timer_t lag;
    uint64_t lag_due; /* uv_hrtime() the lag timer is expected at */
    metricsd_collect_cb collect;
    void *collect_data;
    int open_handles;
    bool closing;
    void (*done)(void *data);
    void *done_data;
};

static void metricsd_run(struct metricsd *m);

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned code, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                             MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result rv = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rv;
}

static enum MHD_Result answer_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    struct metricsd *m = cls;
    char *body = NULL;
    size_t len = 0;
    if (strcmp(url, "/metrics") != 0) {
        return queue_text(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n");
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        return queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    m->collect(m->collect_data);
    if (metrics_render(smetrics_registry(), &body, &len) != 0) {
        return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, METRICSD_CONTENT_TYPE);
    enum MHD_Result rv = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rv;
}

static void timer_cb(uv_timer_t *t)
{
    struct metricsd *m = t->data;
    if (!m->closing) {
        metricsd_run(m);
    }
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    struct metricsd *m = p->data;
    if (!m->closing) {
        metricsd_run(m);
    }
}

/* Let MHD do what is ready, then wake up when it next has a deadline. */
static void metricsd_run(struct metricsd *m)
{
    MHD_UNSIGNED_LONG_LONG ms;
    MHD_run(m->mhd);
    if (MHD_get_timeout(m->mhd, &ms) == MHD_YES) {
        uv_timer_start(&m->timer, timer_cb, ms, 0);
    } else {
        uv_timer_stop(&m->timer);
    }
}

static void lag_cb(uv_timer_t *t)
{
    struct metricsd *m = t->data;
    uint64_t now = uv_hrtime();
    if (m->closing) {
        return;
    }
    metrics_gauge_set(smetrics_families()->loop_lag, NULL,
                      now > m->lag_due ? (double)(now - m->lag_due) / 1e9 : 0);
    m->lag_due = now + (uint64_t)METRICSD_LAG_MS * 1000000u;
}

static int listen_socket(const char *addr, int *out, char *errmsg)
{
    char ip[ADDR_STRLEN];
    int port, fd, one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    addr_split(addr, ip, &port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    sa.sin_port = htons((uint16_t)port);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "metrics address %s: socket: %s", addr,
                      strerror(errno));
        return SWARM_EIO;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "cannot listen on metrics address %s: %s",
                      addr, strerror(errno));
        close(fd);
        return SWARM_EIO;
    }
    *out = fd;
    return 0;
}

int metricsd_start(uv_loop_t *loop, const char *addr, metricsd_collect_cb collect, void *data,
                   struct metricsd **out, char *errmsg)
{
    struct metricsd *m;
    const union MHD_DaemonInfo *info;
    int fd, rv;
    if ((rv = smetrics_init()) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "metrics: %s", swarm_strerror(rv));
        return rv;
    }
    if ((rv = listen_socket(addr, &fd, errmsg)) != 0) {
        return rv;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        close(fd);
        return SWARM_ENOMEM;
    }
    m->loop = loop;
    m->collect = collect;
    m->collect_data = data;
    /* No MHD thread: MHD_run() from this loop only. MHD owns fd from here. */
    m->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer_cb, m,
                              MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)METRICSD_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)METRICSD_CONN_TIMEOUT_S, MHD_OPTION_END);
    if (m->mhd == NULL || (info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "metrics address %s: cannot start the server",
                      addr);
        if (m->mhd != NULL) {
            MHD_stop_daemon(m->mhd);
        } else {
            close(fd);
        }
        free(m);
        return SWARM_EIO;
    }
    uv_poll_init(loop, &m->poll, info->epoll_fd);
    uv_timer_init(loop, &m->timer);
    uv_timer_init(loop, &m->lag);
    m->poll.data = m->timer.data = m->lag.data = m;
    m->open_handles = 3;
    uv_poll_start(&m->poll, UV_READABLE, poll_cb);
    m->lag_due = uv_hrtime() + (uint64_t)METRICSD_LAG_MS * 1000000u;
    uv_timer_start(&m->lag, lag_cb, METRICSD_LAG_MS, METRICSD_LAG_MS);
    metricsd_run(m);
    log_info("metrics", "serving Prometheus metrics on http://%s/metrics", addr);
    *out = m;
    return 0;
}

static void handle_closed_cb(uv_handle_t *h)
{
    struct metricsd *m = h->data;
    if (--m->open_handles > 0) {
        return;
    }
    /* The epoll fd is MHD's: stop it only once libuv no longer watches it. */
    MHD_stop_daemon(m->mhd);
    void (*done)(void *) = m->done;
    void *done_data = m->done_data;
    free(m);
    if (done != NULL) {
        done(done_data);
    }
}

void metricsd_close(struct metricsd *m, void (*done)(void *data), void *data)
{
    m->closing = true;
    m->done = done;
    m->done_data = data;
    uv_close((uv_handle_t *)&m->poll, handle_closed_cb);
    uv_close((uv_handle_t *)&m->timer, handle_closed_cb);
    uv_close((uv_handle_t *)&m->lag, handle_closed_cb);
}
