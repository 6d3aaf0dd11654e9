/* swarmctl: the command line of swarmd, shaped like `docker`.
 *
 *     swarmctl [--socket PATH | -H unix://PATH] COMMAND [SUBCOMMAND] [ARGS]
 *
 * Global flags come before the command, as Docker's. The tables below are
 * the whole command tree; a new group (e.g. `service`) is one more line. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static const struct cli_command cli_commands[] = {
    {"network", NULL, "Manage networks", NULL, cli_network_commands},
    {"image", NULL, "Manage images on this node", NULL, cli_image_commands},
    {"node", NULL, "Manage Swarm nodes", NULL, cli_node_commands},
    {"service", NULL, "Manage Swarm services", NULL, cli_service_commands},
    {"stack", NULL, "Manage Swarm stacks", NULL, cli_stack_commands},
    {"swarm", NULL, "Manage Swarm", NULL, cli_swarm_commands},
    {"volume", NULL, "Manage this node's volumes", NULL, cli_volume_commands},
    {"events", NULL, "Get real time events from the swarm", cmd_events, NULL},
    {"info", NULL, "Display system-wide information", cmd_info, NULL},
    {"inspect", NULL, "Return low-level information on Swarm objects", cmd_inspect, NULL},
    {"login", NULL, "Log in to a registry", cmd_login, NULL},
    {"logout", NULL, "Log out from a registry", cmd_logout, NULL},
    {"version", NULL, "Show the swarmctl version information", cmd_version, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static const struct cli_command *cli_find(const struct cli_command *table,
                                          const char *name)
{
    for (const struct cli_command *c = table; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0 || (c->alias != NULL && strcmp(c->alias, name) == 0)) {
            return c;
        }
    }
    return NULL;
}

static void cli_list_commands(FILE *out, const char *title,
                              const struct cli_command *table, bool groups)
{
    bool any = false;
    for (const struct cli_command *c = table; c->name != NULL; c++) {
        if ((c->subs != NULL) != groups) {
            continue;
        }
        if (!any) {
            fprintf(out, "\n%s:\n", title);
            any = true;
        }
        fprintf(out, "  %-11s %s\n", c->name, c->summary);
    }
}

static void cli_print_root_help(FILE *out)
{
    fputs("\nUsage:  swarmctl [OPTIONS] COMMAND\n\n"
          "The command line of swarmd, a Docker-Swarm-like cluster engine\n\n"
          "Options:\n"
          "  -H, --host string     Daemon socket to connect to (unix://PATH)\n"
          "      --socket string   Path of swarmd's control socket (default "
          "$SWARM_SOCKET or " CLI_DEFAULT_SOCKET ")\n"
          "  -v, --version         Print version information and quit\n",
          out);
    cli_list_commands(out, "Management Commands", cli_commands, true);
    cli_list_commands(out, "Commands", cli_commands, false);
    fputs("\nRun 'swarmctl COMMAND --help' for more information on a command.\n", out);
}

static void cli_print_group_help(FILE *out, const struct cli_command *g)
{
    fprintf(out, "\nUsage:  swarmctl %s COMMAND\n\n%s\n", g->name, g->summary);
    cli_list_commands(out, "Commands", g->subs, false);
    fprintf(out, "\nRun 'swarmctl %s COMMAND --help' for more information on a command.\n",
            g->name);
}

/* `swarmctl node` alone prints help, as Docker; an unknown subcommand is an
 * error. */
static int cli_run_group(struct cli_ctx *ctx, const struct cli_command *g, int argc,
                         char **argv)
{
    if (argc == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        cli_print_group_help(ctx->out, g);
        return 0;
    }
    const struct cli_command *c = cli_find(g->subs, argv[0]);
    if (c == NULL) {
        fprintf(ctx->err,
                "swarmctl %s: '%s' is not a swarmctl %s command.\n"
                "See 'swarmctl %s --help'\n",
                g->name, argv[0], g->name, g->name);
        return 1;
    }
    return c->run(ctx, argc - 1, argv + 1);
}

struct cli_globals {
    const char *socket;
    bool help;
    bool version;
};

/* Parse the flags before the command. Returns the index of the command
 * word, or -1 after printing an error. */
static int cli_parse_globals(int argc, char **argv, struct cli_globals *g)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            g->help = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            g->version = true;
        } else if (strncmp(a, "--socket=", 9) == 0) {
            g->socket = a + 9;
        } else if (strncmp(a, "--host=", 7) == 0 || strncmp(a, "-H=", 3) == 0) {
            val = strchr(a, '=') + 1;
        } else if (strcmp(a, "--socket") == 0 || strcmp(a, "--host") == 0 ||
                   strcmp(a, "-H") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "flag needs an argument: %s\nSee 'swarmctl --help'.\n", a);
                return -1;
            }
            if (strcmp(a, "--socket") == 0) {
                g->socket = argv[++i];
            } else {
                val = argv[++i];
            }
        } else {
            fprintf(stderr, "unknown flag: %s\nSee 'swarmctl --help'.\n", a);
            return -1;
        }
        if (val != NULL && cli_host_to_socket(val, &g->socket) != 0) {
            fprintf(stderr, "Error: only unix:// hosts are supported, not %s\n", val);
            return -1;
        }
    }
    return i;
}

int main(int argc, char **argv)
{
    struct cli_globals g = {0};
    int i = cli_parse_globals(argc, argv, &g);
    if (i < 0) {
        return 1;
    }
    if (g.version) {
        printf("swarmctl version %s\n", SWARM_VERSION);
        return 0;
    }
    if (g.help || i >= argc || strcmp(argv[i], "help") == 0) {
        cli_print_root_help(stdout);
        return 0;
    }
    const struct cli_command *c = cli_find(cli_commands, argv[i]);
    if (c == NULL) {
        fprintf(stderr, "swarmctl: '%s' is not a swarmctl command.\nSee 'swarmctl --help'\n",
                argv[i]);
        return 1;
    }
    struct cli_conn conn;
    if (cli_conn_init(&conn, cli_conn_socket_path(g.socket)) != 0) {
        fputs("Error: cannot start the event loop\n", stderr);
        return 1;
    }
    struct cli_ctx ctx = {&conn, stdout, stderr};
    int rc = c->subs != NULL ? cli_run_group(&ctx, c, argc - i - 1, argv + i + 1)
                             : c->run(&ctx, argc - i - 1, argv + i + 1);
    cli_conn_close(&conn);
    fflush(stdout);
    return rc;
}
