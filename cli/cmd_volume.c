/* `swarmctl volume ls` and `volume rm`: the named volumes of the node
 * swarmctl talks to (ListVolumes, RemoveVolume), in Docker's shape. */
#include <stdlib.h>

#include "cmd.h"
#include "format.h"

static int cmd_volume_ls(struct cli_ctx *ctx, int argc, char **argv)
{
    bool quiet = false;
    struct cli_flag flags[] = {
        {'q', "quiet", CLI_FLAG_BOOL, &quiet, "Only display volume names", NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl volume ls", "[OPTIONS]", "List volumes", NULL,
                            CLI_ARGS_NONE, 0, 0, flags};
    Swarm__ListVolumesRequest req = SWARM__LIST_VOLUMES_REQUEST__INIT;
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    free(pos);
    Swarm__ListVolumesResponse *resp =
        (Swarm__ListVolumesResponse *)cli_cmd_swarm(ctx, "ListVolumes", &req.base);
    if (resp == NULL) {
        return 1;
    }
    struct cli_table *t = cli_table_new(10, 3); /* docker/cli's tabwriter */
    if (!quiet) {
        cli_table_add(t, "DRIVER");
        cli_table_add(t, "VOLUME NAME");
        cli_table_end_row(t);
    }
    for (size_t i = 0; i < resp->n_volumes; i++) {
        if (!quiet) {
            cli_table_add(t, resp->volumes[i]->driver);
        }
        cli_table_add(t, resp->volumes[i]->name);
        cli_table_end_row(t);
    }
    cli_table_print(t, ctx->out);
    cli_table_free(t);
    cli_cmd_free(resp);
    return 0;
}

static int cmd_volume_rm(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_spec spec = {"swarmctl volume rm", "VOLUME [VOLUME...]",
                            "Remove one or more volumes. You cannot remove a volume that is in "
                            "use by a task.", NULL, CLI_ARGS_MIN, 1, 0, NULL};
    char **pos;
    int npos, rc = 0;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    for (int i = 0; i < npos; i++) {
        Swarm__RemoveVolumeRequest req = SWARM__REMOVE_VOLUME_REQUEST__INIT;
        req.name = pos[i];
        ProtobufCMessage *resp = cli_cmd_swarm(ctx, "RemoveVolume", &req.base);
        if (resp == NULL) {
            rc = 1; /* the error is printed; the others are still tried */
            continue;
        }
        fprintf(ctx->out, "%s\n", pos[i]);
        cli_cmd_free(resp);
    }
    free(pos);
    return rc;
}

const struct cli_command cli_volume_commands[] = {
    {"ls", "list", "List volumes", cmd_volume_ls, NULL},
    {"rm", "remove", "Remove one or more volumes", cmd_volume_rm, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
