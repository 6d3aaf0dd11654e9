/* swarmctl's connection to the local swarmd: the control socket, one
 * HTTP/2 connection, and blocking unary calls on a private uv loop.
 * swarmctl runs one command and exits, so blocking is what it wants. */
#ifndef SWARM_CLI_CONN_H
#define SWARM_CLI_CONN_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "api.h"
#include "err.h"

#define CLI_DEFAULT_SOCKET "/var/lib/swarmd/swarmd.sock"
#define CLI_DEFAULT_TIMEOUT_MS 30000

enum cli_conn_state {
    CLI_CONN_IDLE,      /* not dialled yet: the first call connects */
    CLI_CONN_CONNECTED,
    CLI_CONN_FAILED,    /* dial failed; every call fails the same way */
};

struct cli_conn {
    uv_loop_t loop;
    struct api_client *client;
    enum cli_conn_state state;
    char path[PATH_MAX];
    uint64_t timeout_ms; /* per call */
    char errmsg[SWARM_ERRMSG_SIZE]; /* why the dial failed */
};

/* The outcome of one call. On API_OK, resp is an owned copy of the answer
 * (free with protobuf_c_message_free_unpacked(resp, NULL)); else NULL. */
struct cli_reply {
    enum api_status status;
    bool unreachable; /* swarmd could not be reached (no answer at all) */
    char message[SWARM_ERRMSG_SIZE];
    ProtobufCMessage *resp;
};

/* The socket path: --socket (or -H unix://PATH) if given, else
 * $SWARM_SOCKET, else CLI_DEFAULT_SOCKET. */
const char *cli_conn_socket_path(const char *flag);

/* Prepare (no I/O yet). Returns 0 or -1 if the loop cannot start. */
int cli_conn_init(struct cli_conn *c, const char *path);

/* One unary call, run to completion or the timeout; dials on first use.
 * Always fills *r. Returns 0 when r->status is API_OK. */
int cli_conn_call(struct cli_conn *c, const ProtobufCServiceDescriptor *svc,
                  const char *method, const ProtobufCMessage *req,
                  struct cli_reply *r);

/* Dial now if not dialled yet (streams need a connection). Returns 0 when
 * connected, -1 when the dial failed (c->errmsg says why). */
int cli_conn_dial(struct cli_conn *c);

/* Print the error of a failed reply as Docker would and return exit code 1:
 * "Cannot connect to swarmd at unix://PATH. Is swarmd running?" or
 * "Error response from daemon: MESSAGE". */
int cli_conn_report(const struct cli_conn *c, const struct cli_reply *r,
                    FILE *err);

/* Close the connection and the loop. */
void cli_conn_close(struct cli_conn *c);

#endif
