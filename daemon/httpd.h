/* An HTTP/1.1 server on the daemon's loop: libmicrohttpd without its
 * threads. Its epoll descriptor is watched by a uv_poll and its timeouts by
 * a uv_timer, and MHD_run() is called from those callbacks, so every
 * request handler runs on the loop thread, without locks. Shared by the
 * metrics endpoint (metricsd.h) and the visualizer (webd.h).
 *
 * Ownership: httpd owns the listening socket, the MHD daemon and its
 * handles; the caller keeps the handlers' data valid until httpd_close()'s
 * `done` has run. */
#ifndef SWARM_DAEMON_HTTPD_H
#define SWARM_DAEMON_HTTPD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <uv.h>

struct httpd;

struct httpd_config {
    const char *addr; /* "IP:PORT", checked by addr_parse */
    const char *what; /* static: names the address in messages ("metrics") */
    unsigned conn_limit;
    unsigned conn_timeout_s; /* a connection idle that long is closed */
    /* Connections may be suspended (MHD_suspend_connection) by the
     * handlers; whoever suspends resumes every one before httpd_close. */
    bool suspend_resume;
    MHD_AccessHandlerCallback handler;
    void *handler_data;
    /* Optional: a request is over (answered, or its client went away). */
    MHD_RequestCompletedCallback completed;
    void *completed_data;
};

/* Listen on cfg->addr and serve. Returns 0, or an error with a message
 * (the port is taken, the IP is not ours). */
int httpd_start(uv_loop_t *loop, const struct httpd_config *cfg, struct httpd **out, char *errmsg);

/* Let MHD do what is ready now (after a connection was resumed). */
void httpd_kick(struct httpd *h);

/* Stop serving: `done` runs once every handle is closed and MHD stopped
 * (which closes every connection). */
void httpd_close(struct httpd *h, void (*done)(void *data), void *data);

/* Answer with a static plain-text body. */
enum MHD_Result httpd_queue_text(struct MHD_Connection *conn, unsigned code, const char *text);

#endif
