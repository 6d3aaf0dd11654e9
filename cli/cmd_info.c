/* `swarmctl info` and `swarmctl version`. */
#include <stdlib.h>

#include "cmd.h"
#include "view.h"

int cmd_info(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_spec spec = {"swarmctl info", "[OPTIONS]",
                            "Display system-wide information", NULL,
                            CLI_ARGS_NONE, 0, 0, NULL};
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    free(pos);
    Swarm__InfoResponse *info = cli_cmd_info(ctx);
    if (info == NULL) {
        return 1;
    }
    cli_view_info(ctx->out, info);
    cli_cmd_free(info);
    return 0;
}

/* Like `docker version`: the client block always, then the server's; with
 * no daemon the client block still helps, then the error and exit 1. */
int cmd_version(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_spec spec = {"swarmctl version", "[OPTIONS]",
                            "Show the swarmctl version information", NULL,
                            CLI_ARGS_NONE, 0, 0, NULL};
    Swarm__VersionRequest req = SWARM__VERSION_REQUEST__INIT;
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    free(pos);
    cli_view_version_client(ctx->out);
    fflush(ctx->out);
    Swarm__VersionResponse *v =
        (Swarm__VersionResponse *)cli_cmd_swarm(ctx, "Version", &req.base);
    if (v == NULL) {
        return 1;
    }
    cli_view_version_server(ctx->out, v);
    cli_cmd_free(v);
    return 0;
}
