/* swarmd: the swarm daemon. Starts inactive (no swarm) unless its state dir
 * says otherwise; `swarmctl swarm init|join` make it a manager or worker. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "err.h"
#include "executor.h"
#include "addr.h"
#include "log.h"
#include "metricsd.h"
#include "netplane.h"
#include "node.h"
#include "specvalid.h"
#include "webauth.h"
#include "webd.h"
#include "vizstate.h"

#define DEFAULT_STATE_DIR "/var/lib/swarmd"
#define DEFAULT_LISTEN_ADDR "0.0.0.0:2377"

struct daemon {
    uv_loop_t *loop;
    struct swarm_node *node;
    struct metricsd *metrics; /* NULL without --metrics-addr */
    struct webd *web;         /* NULL without --web-addr */
    uv_signal_t sigint;
    uv_signal_t sigterm;
    bool stopping;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: swarmd [OPTIONS]\n\n"
            "Run a swarm node. It starts outside any swarm; use `swarmctl swarm init`\n"
            "or `swarmctl swarm join` to make it a manager or a worker.\n\n"
            "Options:\n"
            "  --state-dir DIR        where the node keeps its state (default " DEFAULT_STATE_DIR
            ")\n"
            "  --task-dir DIR         where tasks' working dirs and logs go, outside the state\n"
            "                         dir (default: the state dir's path + \"-tasks\")\n"
            "  --listen-addr IP:PORT  default cluster listen address (default " DEFAULT_LISTEN_ADDR
            ")\n"
            "  --hostname NAME        node hostname (default: the system's)\n"
            "  --metrics-addr IP:PORT serve Prometheus metrics at http://IP:PORT/metrics\n"
            "                         (default: off)\n"
            "  --web-addr IP:PORT     serve the live visualizer at http://IP:PORT/ (a\n"
            "                         manager's view; default: off)\n"
            "  --web-token TOKEN      token the visualizer asks for (needed when --web-addr\n"
            "                         is not a loopback address)\n"
            "  --web-token-file FILE  read that token from FILE\n"
            "  --executor KIND        how tasks run: process (default) or sim (simulated)\n"
            "  --insecure-registry HOST[:PORT]\n"
            "                         speak plain HTTP to this registry (repeatable)\n"
            "  --image-prune-after D  remove images no task used for D (e.g. 24h, 90m, 0 never;\n"
            "                         default 24h)\n"
            "  --gwbridge-subnet CIDR subnet of the node's gateway bridge, through which\n"
            "                         tasks on networks reach the outside (default: the\n"
            "                         first free of 172.17-31.0.0/16, 192.168.x.0/20)\n"
            "  --log-level LEVEL      debug, info, warn or error (default info)\n"
            "  --version              print the version and exit\n"
            "  -h, --help             print this help\n");
}

static void closed_cb(uv_handle_t *h)
{
}

static void node_stopped_cb(void *data)
{
    struct daemon *d = data;
    uv_close((uv_handle_t *)&d->sigint, closed_cb);
    uv_close((uv_handle_t *)&d->sigterm, closed_cb);
    if (d->metrics != NULL) {
        metricsd_close(d->metrics, NULL, NULL);
        d->metrics = NULL;
    }
    if (d->web != NULL) {
        webd_close(d->web, NULL, NULL);
        d->web = NULL;
    }
    log_info("swarmd", "stopped");
}

static void signal_cb(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;
    if (d->stopping) {
        log_warn("swarmd", "second signal: exiting now");
        exit(1);
    }
    d->stopping = true;
    log_info("swarmd", "received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    node_stop(d->node, node_stopped_cb, d);
}

/* Close every descriptor above stderr that our parent left open: a
 * listening socket or a file of the caller's must not live on in the
 * daemon (nor reach its tasks). Before anything of ours is opened. */
static void close_inherited_fds(void)
{
    if (close_range(3, ~0U, 0) == 0) {
        return;
    }
    DIR *d = opendir("/proc/self/fd"); /* kernels before 5.9 */
    if (d == NULL) {
        return;
    }
    int self = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int fd = atoi(de->d_name);
        if (fd > 2 && fd != self) {
            close(fd);
        }
    }
    closedir(d);
}

static int take_value(int argc, char **argv, int *i, const char **out)
{
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    if (eq != NULL) {
        *out = eq + 1;
        return 0;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "swarmd: flag needs an argument: %s\n", arg);
        return -1;
    }
    *out = argv[++*i];
    return 0;
}

static void collect_metrics_cb(void *data)
{
    struct daemon *d = data;
    node_collect_metrics(d->node);
}

/* --metrics-addr and --web-addr take an IPv4 address and a port, both
 * required (as Docker's --metrics-addr does); canonical "IP:PORT" into out. */
static int parse_listen_flag(const char *flag, const char *in, char *out)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    if (strchr(in, ':') == NULL) {
        fprintf(stderr, "swarmd: invalid %s \"%s\": must be IP:PORT\n", flag, in);
        return -1;
    }
    if (addr_parse(in, 0, flag, out, errmsg) != 0) {
        fprintf(stderr, "swarmd: %s\n", errmsg);
        return -1;
    }
    return 0;
}

static void web_changed_cb(void *data)
{
    struct daemon *d = data;
    webd_changed(d->web);
}

static int web_render_cb(void *data, char **json, size_t *len)
{
    struct daemon *d = data;
    if (d->node == NULL) {
        return vizstate_render_none("swarmd is starting.", json, len);
    }
    return node_viz_render(d->node, json, len);
}

/* --web-token-file: the file's first line. */
static int read_token_file(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL) {
        fprintf(stderr, "swarmd: --web-token-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fgets(out, (int)size, f) == NULL) {
        out[0] = '\0';
    }
    fclose(f);
    n = strcspn(out, "\r\n");
    out[n] = '\0';
    return 0;
}

/* "24h", "90m", "30s", "1h30m", "0" (never: the store's "< 0"). */
static int parse_prune_after(const char *s, int64_t *out)
{
    int64_t total = 0;
    const char *p = s;
    if (strcmp(s, "0") == 0) {
        *out = -1;
        return 0;
    }
    while (*p != '\0') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v > 100000000LL) {
            return -1;
        }
        int64_t unit = *end == 'h' ? 3600 : *end == 'm' ? 60 : *end == 's' ? 1 : 0;
        if (unit == 0) {
            return -1;
        }
        total += v * unit;
        p = end + 1;
    }
    if (total <= 0) {
        return -1;
    }
    *out = total;
    return 0;
}

static int flag_is(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

int main(int argc, char **argv)
{
    struct node_config cfg = {
        .state_dir = DEFAULT_STATE_DIR,
        .listen_addr = DEFAULT_LISTEN_ADDR,
        .hostname = NULL,
    };
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct daemon d = {0};
    const char *level = "info";
    const char *metrics_arg = NULL;
    char metrics_addr[ADDR_STRLEN] = "";
    const char *web_arg = NULL;
    char web_addr[ADDR_STRLEN] = "";
    const char *web_token = NULL;
    char web_token_buf[WEBAUTH_TOKEN_MAX + 2] = "";
    enum log_level lvl;
    int rv;
    const char *insecure[64];
    size_t n_insecure = 0;

    close_inherited_fds();
    /* The process executor starts every task through this same binary, so
     * that the task dies with swarmd (see executor_shim_main). */
    if (argc > 1 && strcmp(argv[1], "--task-exec") == 0) {
        /* Tasks get the usual umask, not the daemon's own (below). */
        umask(022);
        return executor_shim_main(argc, argv);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int bad = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("swarmd version %s\n", SWARM_VERSION);
            return 0;
        } else if (flag_is(a, "--state-dir")) {
            bad = take_value(argc, argv, &i, &cfg.state_dir);
        } else if (flag_is(a, "--task-dir")) {
            bad = take_value(argc, argv, &i, &cfg.task_dir);
        } else if (flag_is(a, "--listen-addr")) {
            bad = take_value(argc, argv, &i, &cfg.listen_addr);
        } else if (flag_is(a, "--hostname")) {
            bad = take_value(argc, argv, &i, &cfg.hostname);
            if (!bad && spec_validate_hostname(cfg.hostname, errmsg) != 0) {
                fprintf(stderr, "swarmd: --hostname: %s\n", errmsg);
                return 2;
            }
        } else if (flag_is(a, "--executor")) {
            bad = take_value(argc, argv, &i, &cfg.executor);
            if (!bad && strcmp(cfg.executor, "process") != 0 && strcmp(cfg.executor, "sim") != 0) {
                fprintf(stderr, "swarmd: invalid executor \"%s\" (process or sim)\n", cfg.executor);
                return 2;
            }
        } else if (flag_is(a, "--metrics-addr")) {
            bad = take_value(argc, argv, &i, &metrics_arg);
            if (!bad && parse_listen_flag("--metrics-addr", metrics_arg, metrics_addr) != 0) {
                return 2;
            }
        } else if (flag_is(a, "--insecure-registry")) {
            const char *reg = NULL;
            bad = take_value(argc, argv, &i, &reg);
            if (!bad && (reg[0] == '\0' || strchr(reg, '/') != NULL ||
                         n_insecure >= sizeof insecure / sizeof insecure[0])) {
                fprintf(stderr, "swarmd: invalid --insecure-registry \"%s\" (HOST[:PORT], at most %zu)\n",
                        reg, sizeof insecure / sizeof insecure[0]);
                return 2;
            }
            if (!bad) {
                insecure[n_insecure++] = reg;
            }
        } else if (flag_is(a, "--web-addr")) {
            bad = take_value(argc, argv, &i, &web_arg);
            if (!bad && parse_listen_flag("--web-addr", web_arg, web_addr) != 0) {
                return 2;
            }
        } else if (flag_is(a, "--web-token")) {
            bad = take_value(argc, argv, &i, &web_token);
        } else if (flag_is(a, "--web-token-file")) {
            const char *path = NULL;
            bad = take_value(argc, argv, &i, &path);
            if (!bad && read_token_file(path, web_token_buf, sizeof web_token_buf) != 0) {
                return 2;
            }
            web_token = web_token_buf;
        } else if (flag_is(a, "--image-prune-after")) {
            const char *dur = NULL;
            bad = take_value(argc, argv, &i, &dur);
            if (!bad && parse_prune_after(dur, &cfg.image_prune_after_s) != 0) {
                fprintf(stderr, "swarmd: invalid --image-prune-after \"%s\" (a duration: 24h, 90m, 30s, 0)\n", dur);
                return 2;
            }
        } else if (flag_is(a, "--gwbridge-subnet")) {
            const char *sub = NULL;
            bad = take_value(argc, argv, &i, &sub);
            if (!bad && netplane_gwbridge_subnet(sub, errmsg) != 0) {
                fprintf(stderr, "swarmd: %s\n", errmsg);
                return 2;
            }
        } else if (flag_is(a, "--log-level")) {
            bad = take_value(argc, argv, &i, &level);
        } else {
            fprintf(stderr, "swarmd: unknown flag: %s\nSee 'swarmd --help'.\n", a);
            return 2;
        }
        if (bad) {
            return 2;
        }
    }
    if (log_parse_level(level, &lvl) != 0) {
        fprintf(stderr, "swarmd: invalid log level \"%s\" (debug, info, warn, error)\n", level);
        return 2;
    }
    log_set_level(lvl);
    cfg.insecure_registries = insecure;
    cfg.n_insecure_registries = n_insecure;
    /* Everything swarmd creates in its state dir (keys, store.db and its
     * WAL, raft's own segments and metadata, node-state.pb, tasks.db, logs)
     * is for its eyes only: 0600 files, 0700 dirs, whoever creates them. */
    umask(077);
    /* A peer closing its end must not kill the daemon (RAFT-NOTES.md). */
    signal(SIGPIPE, SIG_IGN);

    d.loop = uv_default_loop();
    /* Before the node: a metrics address that cannot be served changes
     * nothing on disk. */
    if (metrics_addr[0] != '\0' &&
        metricsd_start(d.loop, metrics_addr, collect_metrics_cb, &d, &d.metrics, errmsg) != 0) {
        fprintf(stderr, "swarmd: %s\n", errmsg);
        return 1;
    }
    if (web_token != NULL && web_addr[0] == '\0') {
        fprintf(stderr, "swarmd: --web-token needs --web-addr\n");
        return 2;
    }
    if (web_addr[0] != '\0') {
        struct webd_config wc = {
            .addr = web_addr, .token = web_token, .render = web_render_cb, .data = &d};
        if (webd_start(d.loop, &wc, &d.web, errmsg) != 0) {
            fprintf(stderr, "swarmd: %s\n", errmsg);
            if (d.metrics != NULL) {
                metricsd_close(d.metrics, NULL, NULL);
            }
            uv_run(d.loop, UV_RUN_NOWAIT);
            return 1;
        }
        cfg.changed_cb = web_changed_cb;
        cfg.changed_data = &d;
    }
    rv = node_start(d.loop, &cfg, &d.node, errmsg);
    if (rv != 0) {
        fprintf(stderr, "swarmd: %s\n", errmsg[0] ? errmsg : swarm_strerror(rv));
        if (d.metrics != NULL) {
            metricsd_close(d.metrics, NULL, NULL);
        }
        if (d.web != NULL) {
            webd_close(d.web, NULL, NULL);
        }
        uv_run(d.loop, UV_RUN_NOWAIT);
        return 1;
    }
    uv_signal_init(d.loop, &d.sigint);
    uv_signal_init(d.loop, &d.sigterm);
    d.sigint.data = &d;
    d.sigterm.data = &d;
    uv_signal_start(&d.sigint, signal_cb, SIGINT);
    uv_signal_start(&d.sigterm, signal_cb, SIGTERM);
    log_info("swarmd", "swarmd %s started, state dir %s", SWARM_VERSION, cfg.state_dir);
    uv_run(d.loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(d.loop);
    if (rv != 0) {
        log_warn("swarmd", "loop closed with handles still open");
    }
    return 0;
}
