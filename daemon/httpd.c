/* libmicrohttpd on the libuv loop (httpd.h).
 *
 * Happy path: a connection arrives -> the epoll fd is readable -> poll_cb
 * runs MHD_run -> MHD accepts, reads the request, calls the handler -> the
 * handler queues a response -> MHD writes it (now or on a later MHD_run) ->
 * the timer is rearmed with MHD_get_timeout.
 * Failures: a stuck client is dropped by MHD's connection timeout; the
 * address cannot be bound: an error before anything is started. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "log.h"

struct httpd {
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    bool closing;
    void (*done)(void *data);
    void *done_data;
};

enum MHD_Result httpd_queue_text(struct MHD_Connection *conn, unsigned code, const char *text)
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

/* MHD's own messages (a client that went away mid-response...) are
 * debug lines of ours, without MHD's trailing newline. */
__attribute__((format(printf, 2, 0))) static void mhd_log_cb(void *cls, const char *fmt,
                                                             va_list ap)
{
    char line[512];
    size_t n;
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && line[n - 1] == '\n') {
        line[--n] = '\0';
    }
    log_debug("http", "%s: %s", (const char *)cls, line);
}

static void timer_cb(uv_timer_t *t)
{
    struct httpd *h = t->data;
    if (!h->closing) {
        httpd_kick(h);
    }
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    struct httpd *h = p->data;
    if (!h->closing) {
        httpd_kick(h);
    }
}

/* Let MHD do what is ready, then wake up when it next has a deadline. */
void httpd_kick(struct httpd *h)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (h->closing) {
        return;
    }
    MHD_run(h->mhd);
    if (MHD_get_timeout(h->mhd, &ms) == MHD_YES) {
        uv_timer_start(&h->timer, timer_cb, ms, 0);
    } else {
        uv_timer_stop(&h->timer);
    }
}

static int listen_socket(const char *addr, const char *what, int *out, char *errmsg)
{
    char ip[ADDR_STRLEN];
    int port, fd, one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    addr_split(addr, ip, &port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    sa.sin_port = htons((uint16_t)port);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s address %s: socket: %s", what, addr,
                      strerror(errno));
        return SWARM_EIO;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "cannot listen on %s address %s: %s", what,
                      addr, strerror(errno));
        close(fd);
        return SWARM_EIO;
    }
    *out = fd;
    return 0;
}

int httpd_start(uv_loop_t *loop, const struct httpd_config *cfg, struct httpd **out, char *errmsg)
{
    struct httpd *h;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    int fd, rv;
    if ((rv = listen_socket(cfg->addr, cfg->what, &fd, errmsg)) != 0) {
        return rv;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        close(fd);
        return SWARM_ENOMEM;
    }
    if (cfg->suspend_resume) {
        flags |= MHD_ALLOW_SUSPEND_RESUME;
    }
    /* No MHD thread: MHD_run() from this loop only. MHD owns fd from here. */
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, cfg->handler, cfg->handler_data,
                              MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                              cfg->conn_limit, MHD_OPTION_CONNECTION_TIMEOUT,
                              cfg->conn_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, cfg->completed,
                              cfg->completed_data, MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb,
                              (void *)cfg->what, MHD_OPTION_END);
    if (h->mhd == NULL || (info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s address %s: cannot start the server",
                      cfg->what, cfg->addr);
        if (h->mhd != NULL) {
            MHD_stop_daemon(h->mhd);
        } else {
            close(fd);
        }
        free(h);
        return SWARM_EIO;
    }
    uv_poll_init(loop, &h->poll, info->epoll_fd);
    uv_timer_init(loop, &h->timer);
    h->poll.data = h->timer.data = h;
    h->open_handles = 2;
    uv_poll_start(&h->poll, UV_READABLE, poll_cb);
    httpd_kick(h);
    *out = h;
    return 0;
}

static void handle_closed_cb(uv_handle_t *handle)
{
    struct httpd *h = handle->data;
    if (--h->open_handles > 0) {
        return;
    }
    /* The epoll fd is MHD's: stop it only once libuv no longer watches it. */
    MHD_stop_daemon(h->mhd);
    void (*done)(void *) = h->done;
    void *done_data = h->done_data;
    free(h);
    if (done != NULL) {
        done(done_data);
    }
}

void httpd_close(struct httpd *h, void (*done)(void *data), void *data)
{
    h->closing = true;
    h->done = done;
    h->done_data = data;
    uv_close((uv_handle_t *)&h->poll, handle_closed_cb);
    uv_close((uv_handle_t *)&h->timer, handle_closed_cb);
}
