/* What swarmctl prints for networks: `network ls` (table, -q, --format) and
 * `network inspect` (Docker's NetworkResource JSON, and its -f), in
 * docker/cli's layouts (cli/command/network). Pure, so tests feed
 * hand-made messages. */
#ifndef SWARM_CLI_VIEW_NETWORK_H
#define SWARM_CLI_VIEW_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"
#include "objects.pb-c.h"
#include "tmpl.h"

/* `network ls`: NETWORK ID (12 characters), NAME, DRIVER, SCOPE ("swarm"),
 * sorted by name; `quiet`: IDs only. */
void cli_view_network_table(FILE *out, Swarm__Network *const *nets, size_t n, bool quiet);

/* `network ls --format`: the same rows through a Go template (fields ID,
 * Name, Driver, Scope, IPv6, Internal, Labels, CreatedAt). Returns 0, or
 * SWARM_EINVAL with the error in errmsg and nothing printed. */
int cli_view_network_format(FILE *out, const char *format, Swarm__Network *const *nets, size_t n,
                            char *errmsg);

/* A network in `docker network inspect`'s shape: Name, Id, Created, Scope,
 * Driver, EnableIPv6, IPAM {Driver, Options, Config [{Subnet, Gateway,
 * IPRange}]}, Internal, Attachable, Ingress, ConfigFrom, ConfigOnly,
 * Containers, Options (the VXLAN ID), Labels. The caller frees it
 * (tmpl_value_free). */
struct tmpl_value *cli_view_network_value(const Swarm__Network *nw);

/* `network inspect`: the values as a JSON array, as Docker prints it. */
void cli_view_network_inspect(FILE *out, struct tmpl_value *const *objs, size_t n);

#endif
