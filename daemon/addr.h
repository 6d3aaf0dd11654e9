/* Cluster addresses: "IP[:PORT]" (IPv4 dotted quad), the forms accepted by
 * --listen-addr and --advertise-addr. Pure. */
#ifndef SWARM_DAEMON_ADDR_H
#define SWARM_DAEMON_ADDR_H

#include <stddef.h>

#define ADDR_DEFAULT_PORT 2377
#define ADDR_STRLEN 64

/* Parse `in`; a missing port takes `default_port`. On success writes the
 * canonical "IP:PORT" into out (ADDR_STRLEN bytes). Returns 0 or SWARM_EINVAL
 * with a message naming `what` (e.g. "advertise address"). */
int addr_parse(const char *in, int default_port, const char *what, char *out, char *errmsg);

/* Split a canonical "IP:PORT" into its IP (ADDR_STRLEN bytes) and port. */
int addr_split(const char *addr, char *ip, int *port);

/* True for 0.0.0.0. */
int addr_is_unspecified(const char *ip);

#endif
