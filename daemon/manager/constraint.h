/* Placement constraints, as Docker writes them: `node.id==ID`,
 * `node.hostname!=NAME`, `node.role==manager`, `node.platform.os==linux`,
 * `node.platform.arch==x86_64`, `node.labels.KEY==VALUE` (== and !=,
 * whitespace around either side ignored). As Docker (swarmkit's
 * manager/constraint): keys of node.* are case-insensitive, label names are
 * exact, values compare case-insensitively, and a node without the label
 * reads as "" (so `node.labels.k!=v` matches it). Unlike Docker, a role
 * other than manager or worker is an error rather than a constraint that
 * never matches. Pure: no I/O. */
#ifndef SWARM_MANAGER_CONSTRAINT_H
#define SWARM_MANAGER_CONSTRAINT_H

#include <stdbool.h>
#include <stddef.h>

#include "objects.pb-c.h"

enum constraint_key {
    CONSTRAINT_NODE_ID,
    CONSTRAINT_NODE_HOSTNAME,
    CONSTRAINT_NODE_ROLE,
    CONSTRAINT_NODE_OS,
    CONSTRAINT_NODE_ARCH,
    CONSTRAINT_NODE_LABEL,
};

struct constraint {
    enum constraint_key key;
    char label[128];  /* for CONSTRAINT_NODE_LABEL */
    bool equal;       /* == (true) or != (false) */
    char value[256];
};

/* Parse one expression. Returns 0, or SWARM_EINVAL with a message such as
 * `invalid constraint "node.foo==x": unknown key node.foo` in errmsg
 * (SWARM_ERRMSG_SIZE bytes). */
int constraint_parse(const char *expr, struct constraint *out, char *errmsg);

/* Parse all of a Placement's constraints; *out is malloc'd (free()). */
int constraint_parse_all(char *const *exprs, size_t n, struct constraint **out, char *errmsg);

/* True when `node` satisfies the constraint. */
bool constraint_match(const struct constraint *c, const Swarm__Node *node);

/* True when `node` satisfies all of them. */
bool constraint_match_all(const struct constraint *cs, size_t n, const Swarm__Node *node);

#endif
