/* What swarmctl prints for swarmd's answers, kept apart from the RPCs so it
 * can be tested with hand-made messages. Every text follows what
 * `docker swarm|node|info|version` prints (REFERENCE.md), with "swarmctl" in
 * place of "docker". */
#ifndef SWARM_CLI_VIEW_H
#define SWARM_CLI_VIEW_H

#include <stdbool.h>
#include <stdio.h>

#include "control.pb-c.h"
#include "err.h"
#include "objects.pb-c.h"
#include "swarm.pb-c.h"

/* `node ls`: nodes sorted by hostname (natural order); `self_id` (may be
 * NULL) gets the " *" mark; `quiet` prints IDs only. */
void cli_view_node_table(FILE *out, Swarm__Node *const *nodes, size_t n,
                         const char *self_id, bool quiet);

/* `node ls --format`: the same rows through a Go template (view_format.h).
 * Returns 0, or SWARM_EINVAL with the error in errmsg and nothing printed. */
int cli_view_node_format(FILE *out, const char *format, Swarm__Node *const *nodes, size_t n,
                         const char *self_id, char *errmsg);

/* `node inspect --pretty` for one node. */
void cli_view_node_pretty(FILE *out, const Swarm__Node *node);

/* `info`: the server version line, then Docker's Swarm section. */
void cli_view_info(FILE *out, const Swarm__InfoResponse *info);

/* `version`: the Client block, and the Server block when `server` is set. */
void cli_view_version_client(FILE *out);
void cli_view_version_server(FILE *out, const Swarm__VersionResponse *server);

/* `swarm init`'s success message. */
void cli_view_init(FILE *out, const Swarm__InitResponse *resp);

/* `swarm join-token`'s join command for a worker or manager. */
void cli_view_join_command(FILE *out, bool manager, const char *token,
                           const char *addr);

/* Enum words as Docker shows them in tables: "Ready", "Active", "Leader". */
const char *cli_view_node_state(Swarm__NodeState s);
const char *cli_view_availability(Swarm__NodeAvailability a);
const char *cli_view_manager_status(const Swarm__ManagerStatus *m);

/* Flag words to enum values ("drain"). Return 0 or -1. */
int cli_parse_availability(const char *s, Swarm__NodeAvailability *out);
int cli_parse_role(const char *s, Swarm__NodeRole *out);

#endif
