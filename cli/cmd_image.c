/* `swarmctl image prune [-a] [-f] [--filter until=D]`: Docker's `image
 * prune` on the node whose control socket swarmctl talks to (images are a
 * node's, as with `docker image prune` on each engine). There are no
 * dangling (untagged) images here, every image having been pulled for a
 * service's reference, so the command always behaves as Docker's -a: every
 * image no task uses goes; -a is accepted for Docker's muscle memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "err.h"
#include "format.h"

/* Docker's units.HumanSize: decimal units, 4 significant digits. */
static void human_size(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1000.0;
        u++;
    }
    snprintf(buf, size, "%.4g%s", v, units[u]);
}

static int cmd_image_prune(struct cli_ctx *ctx, int argc, char **argv)
{
    bool all = false, force = false;
    struct cli_strlist filters = {0};
    struct cli_flag flags[] = {
        {'a', "all", CLI_FLAG_BOOL, &all, "Remove all unused images, not just dangling ones",
         NULL, false, NULL},
        {'f', "force", CLI_FLAG_BOOL, &force, "Do not prompt for confirmation", NULL, false,
         NULL},
        {0, "filter", CLI_FLAG_LIST, &filters, "Provide filter values (e.g. \"until=<timestamp>\")",
         "filter", false, NULL},
        {0, NULL, 0, NULL, NULL, NULL, false, NULL},
    };
    struct cli_spec spec = {"swarmctl image prune", "[OPTIONS]", "Remove unused images", NULL,
                            CLI_ARGS_NONE, 0, 0, flags, false};
    char **pos, err[SWARM_ERRMSG_SIZE], size[32];
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_strlist_free(&filters);
        return rc;
    }
    free(pos);
    Swarm__PruneImagesRequest req = SWARM__PRUNE_IMAGES_REQUEST__INIT;
    for (size_t i = 0; i < filters.n; i++) {
        const char *f = filters.items[i];
        int64_t ns = 0;
        if (strncmp(f, "until=", 6) != 0) {
            rc = cli_cmd_errorf(ctx, "invalid filter '%.*s'", (int)strcspn(f, "="), f);
            cli_strlist_free(&filters);
            return rc;
        }
        if (cli_parse_duration(f + 6, &ns, err) != 0 || ns < 0) {
            rc = cli_cmd_errorf(ctx, "invalid filter 'until=%s': %s", f + 6,
                                ns < 0 ? "negative duration" : err);
            cli_strlist_free(&filters);
            return rc;
        }
        req.until_s = ns / 1000000000LL;
    }
    cli_strlist_free(&filters);
    (void)all;
    if (!force) {
        char line[64] = "";
        fprintf(ctx->out, "WARNING! This will remove all images without at least one container "
                          "associated to them.\nAre you sure you want to continue? [y/N] ");
        fflush(ctx->out);
        if (fgets(line, sizeof line, stdin) == NULL || (line[0] != 'y' && line[0] != 'Y')) {
            fprintf(ctx->out, "Total reclaimed space: 0B\n");
            return 0;
        }
    }
    Swarm__PruneImagesResponse *resp =
        (Swarm__PruneImagesResponse *)cli_cmd_swarm(ctx, "PruneImages", &req.base);
    if (resp == NULL) {
        return 1;
    }
    if (resp->n_deleted > 0) {
        fprintf(ctx->out, "Deleted Images:\n");
        for (size_t i = 0; i < resp->n_deleted; i++) {
            const char *at = strrchr(resp->deleted[i], '@');
            fprintf(ctx->out, "untagged: %s\n", cli_esc(resp->deleted[i]));
            fprintf(ctx->out, "deleted: %s\n", cli_esc(at != NULL ? at + 1 : resp->deleted[i]));
        }
        fputc('\n', ctx->out);
    }
    human_size(resp->space_reclaimed, size, sizeof size);
    fprintf(ctx->out, "Total reclaimed space: %s\n", size);
    cli_cmd_free(resp);
    return 0;
}

const struct cli_command cli_image_commands[] = {
    {"prune", NULL, "Remove unused images", cmd_image_prune, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
