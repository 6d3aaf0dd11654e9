/* `swarm ca --rotate` without -d: the pure half of docker/cli's
 * RootRotationProgress. From the cluster and its nodes: the desired root
 * (the rotation's new root while one runs, else the root), how many nodes
 * have a certificate from it (their reported issuer's subject and key) and
 * how many trust it; done when no rotation runs and every node both has
 * such a certificate and trusts it. Down nodes are not counted: the swarm
 * does not wait for them either (they rejoin). The polling loop lives in
 * cmd_swarm.c. */
#ifndef SWARM_CLI_CA_PROGRESS_H
#define SWARM_CLI_CA_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "objects.pb-c.h"
#include "progress.h"

struct cli_ca_progress {
    char digest[80];     /* "sha256:<hex of the desired root's PEM>" */
    size_t certs_ok;     /* nodes whose certificate the desired root issued */
    size_t roots_ok;     /* nodes that trust the desired root */
    size_t total;        /* nodes that are not down */
    bool rotating;       /* the cluster still has a rotation under way */
    bool done;
};

/* 0, or -1 when the cluster has no readable root. */
int cli_ca_progress_eval(const Swarm__Cluster *c, Swarm__Node *const *nodes, size_t n,
                         struct cli_ca_progress *p);

/* The three lines ("desired root digest: ...", "  rotated TLS
 * certificates:  [==>  ] 1/5 nodes", "  rotated CA certificates: ..."),
 * without newlines. Returns 3. */
size_t cli_ca_progress_render(const struct cli_ca_progress *p, char (*lines)[CLI_PROGRESS_LINE]);

/* The desired root's PEM (borrowed from the cluster), or NULL. */
const ProtobufCBinaryData *cli_ca_desired_root(const Swarm__Cluster *c);

#endif
