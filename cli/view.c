/* Rendering of swarmd's answers in Docker's words and layouts. The templates
 * here are docker/cli's (node/formatter.go, system/info.go, version.go,
 * swarm/init.go, swarm/join_token.go), tabs and all, so that scripts and
 * eyes trained on Docker read swarmctl the same way. */
#include "view.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include "format.h"
#include "json.h"
#include "view_format.h"

#define CLI_PROG "swarmctl"

/* ------------------------------------------------------------ enum words */

const char *cli_view_node_state(Swarm__NodeState s)
{
    switch (s) {
        case SWARM__NODE_STATE__NODE_STATE_DOWN:
            return "Down";
        case SWARM__NODE_STATE__NODE_STATE_READY:
            return "Ready";
        case SWARM__NODE_STATE__NODE_STATE_DISCONNECTED:
            return "Disconnected";
        default:
            return "Unknown";
    }
}

const char *cli_view_availability(Swarm__NodeAvailability a)
{
    switch (a) {
        case SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE:
            return "Pause";
        case SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN:
            return "Drain";
        default:
            return "Active";
    }
}

const char *cli_view_manager_status(const Swarm__ManagerStatus *m)
{
    if (m == NULL) {
        return "";
    }
    if (m->leader) {
        return "Leader";
    }
    switch (m->reachability) {
        case SWARM__REACHABILITY__REACHABILITY_REACHABLE:
            return "Reachable";
        case SWARM__REACHABILITY__REACHABILITY_UNREACHABLE:
            return "Unreachable";
        default:
            return "Unknown";
    }
}

/* Docker lower-cases these flag values before checking them. */
int cli_parse_availability(const char *s, Swarm__NodeAvailability *out)
{
    if (strcasecmp(s, "active") == 0) {
        *out = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
    } else if (strcasecmp(s, "pause") == 0) {
        *out = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE;
    } else if (strcasecmp(s, "drain") == 0) {
        *out = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
    } else {
        return -1;
    }
    return 0;
}

int cli_parse_role(const char *s, Swarm__NodeRole *out)
{
    if (strcasecmp(s, "worker") == 0) {
        *out = SWARM__NODE_ROLE__NODE_ROLE_WORKER;
    } else if (strcasecmp(s, "manager") == 0) {
        *out = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    } else {
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- node ls */

static const char *cli_node_hostname(const Swarm__Node *n)
{
    return n->description != NULL && n->description->hostname != NULL
               ? n->description->hostname
               : "";
}

static int cli_node_cmp(const void *a, const void *b)
{
    const char *ha = cli_node_hostname(*(Swarm__Node *const *)a);
    const char *hb = cli_node_hostname(*(Swarm__Node *const *)b);
    return cli_natural_less(ha, hb) ? -1 : cli_natural_less(hb, ha) ? 1 : 0;
}

static void cli_view_node_row(struct cli_table *t, const Swarm__Node *n,
                              const char *self_id)
{
    bool self = self_id != NULL && strcmp(n->id, self_id) == 0;
    /* Docker's format: "{{.ID}} {{if .Self}}*{{else}} {{end}}". */
    cli_table_addf(t, "%s %s", n->id, self ? "*" : " ");
    cli_table_add(t, cli_node_hostname(n));
    cli_table_add(t, cli_view_node_state(n->status != NULL ? n->status->state : 0));
    cli_table_add(t, cli_view_availability(n->spec != NULL ? n->spec->availability : 0));
    cli_table_add(t, cli_view_manager_status(n->manager_status));
    cli_table_add(t, n->description != NULL ? n->description->engine_version : "");
    cli_table_end_row(t);
}

void cli_view_node_table(FILE *out, Swarm__Node *const *nodes, size_t n,
                         const char *self_id, bool quiet)
{
    Swarm__Node **sorted = calloc(n + 1, sizeof *sorted);
    if (sorted == NULL) {
        return;
    }
    memcpy(sorted, nodes, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cli_node_cmp);
    if (quiet) {
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "%s\n", sorted[i]->id);
        }
        free(sorted);
        return;
    }
    struct cli_table *t = cli_table_new(10, 3);
    static const char *const header[] = {"ID", "HOSTNAME", "STATUS", "AVAILABILITY",
                                         "MANAGER STATUS", "ENGINE VERSION"};
    for (size_t c = 0; c < sizeof header / sizeof *header; c++) {
        cli_table_add(t, header[c]);
    }
    cli_table_end_row(t);
    for (size_t i = 0; i < n; i++) {
        cli_view_node_row(t, sorted[i], self_id);
    }
    cli_table_print(t, out);
    cli_table_free(t);
    free(sorted);
}

/* docker/cli's nodeContext for `node ls --format` (TLSStatus is left out:
 * swarmd's Info does not carry the cluster's TLS info to compare with). */
static const struct cli_fmt_column cli_node_columns[] = {
    {"ID", "ID"},
    {"Self", ""},
    {"Hostname", "HOSTNAME"},
    {"Status", "STATUS"},
    {"Availability", "AVAILABILITY"},
    {"ManagerStatus", "MANAGER STATUS"},
    {"EngineVersion", "ENGINE VERSION"},
};

static struct tmpl_value *cli_node_context(const Swarm__Node *n, const char *self_id)
{
    struct tmpl_value *c = tmpl_value_map("*node.nodeContext", 0);
    tmpl_map_set_string(c, "Availability",
                        cli_view_availability(n->spec != NULL ? n->spec->availability : 0));
    tmpl_map_set_string(c, "EngineVersion",
                        n->description != NULL ? n->description->engine_version : "");
    tmpl_map_set_string(c, "Hostname", cli_node_hostname(n));
    tmpl_map_set_string(c, "ID", n->id);
    tmpl_map_set_string(c, "ManagerStatus", cli_view_manager_status(n->manager_status));
    tmpl_map_set_bool(c, "Self", self_id != NULL && strcmp(n->id, self_id) == 0);
    tmpl_map_set_string(c, "Status", cli_view_node_state(n->status != NULL ? n->status->state : 0));
    return c;
}

int cli_view_node_format(FILE *out, const char *format, Swarm__Node *const *nodes, size_t n,
                         const char *self_id, char *errmsg)
{
    Swarm__Node **sorted = cli_xcalloc(n + 1, sizeof *sorted);
    struct tmpl_value **ctx = cli_xcalloc(n + 1, sizeof *ctx);
    memcpy(sorted, nodes, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cli_node_cmp);
    for (size_t i = 0; i < n; i++) {
        ctx[i] = cli_node_context(sorted[i], self_id);
    }
    int rc = cli_format_list(out, format, ctx, n, cli_node_columns,
                             sizeof cli_node_columns / sizeof *cli_node_columns, errmsg);
    for (size_t i = 0; i < n; i++) {
        tmpl_value_free(ctx[i]);
    }
    free(ctx);
    free(sorted);
    return rc;
}

/* ------------------------------------------------------ node inspect pretty */

static void cli_view_labels(FILE *out, const Swarm__Annotations *a)
{
    if (a == NULL || a->n_labels == 0) {
        return;
    }
    fputs("Labels:\n", out);
    for (size_t i = 0; i < a->n_labels; i++) {
        const char *v = a->labels[i]->value;
        fprintf(out, " - %s%s%s\n", cli_esc(a->labels[i]->key), v != NULL && *v ? "=" : "",
                cli_esc(v));
    }
}

static void cli_view_node_status(FILE *out, const Swarm__Node *n)
{
    char buf[256];
    const Swarm__NodeStatus *st = n->status;
    fprintf(out, "Status:\n State:\t\t\t%s\n",
            cli_view_node_state(st != NULL ? st->state : 0));
    if (st != NULL && st->message != NULL && *st->message) {
        cli_format_capitalized(st->message, buf, sizeof buf);
        fprintf(out, " Message:              \t%s\n", cli_esc(buf));
    }
    fprintf(out, " Availability:         \t%s\n",
            cli_view_availability(n->spec != NULL ? n->spec->availability : 0));
    if (st != NULL && st->addr != NULL && *st->addr) {
        fprintf(out, " Address:\t\t%s\n", cli_esc(st->addr));
    }
    if (n->manager_status != NULL) {
        fprintf(out, "Manager Status:\n Address:\t\t%s\n Raft Status:\t\t%s\n"
                     " Leader:\t\t%s\n",
                cli_esc(n->manager_status->addr),
                n->manager_status->reachability == SWARM__REACHABILITY__REACHABILITY_REACHABLE
                    ? "Reachable"
                    : n->manager_status->reachability == SWARM__REACHABILITY__REACHABILITY_UNREACHABLE
                          ? "Unreachable"
                          : "Unknown",
                n->manager_status->leader ? "Yes" : "No");
    }
}

void cli_view_node_pretty(FILE *out, const Swarm__Node *n)
{
    const Swarm__NodeDescription *d = n->description;
    const Swarm__Annotations *a = n->spec != NULL ? n->spec->annotations : NULL;
    char when[64], mem[32] = "";
    fprintf(out, "ID:\t\t\t%s\n", n->id);
    if (a != NULL && a->name != NULL && *a->name) {
        fprintf(out, "Name:\t\t\t%s\n", cli_esc(a->name));
    }
    cli_view_labels(out, a);
    cli_format_go_time(n->meta != NULL ? n->meta->created_at : 0, when, sizeof when);
    fprintf(out, "Hostname:              \t%s\nJoined at:             \t%s\n",
            cli_esc(cli_node_hostname(n)), when);
    cli_view_node_status(out, n);
    const Swarm__Platform *p = d != NULL ? d->platform : NULL;
    const Swarm__Resources *r = d != NULL ? d->resources : NULL;
    fprintf(out, "Platform:\n Operating System:\t%s\n Architecture:\t\t%s\n",
            cli_esc(p != NULL ? p->os : ""), cli_esc(p != NULL ? p->architecture : ""));
    if (r != NULL && r->memory_bytes != 0) {
        cli_format_bytes((double)r->memory_bytes, mem, sizeof mem);
    }
    fprintf(out, "Resources:\n CPUs:\t\t\t%lld\n Memory:\t\t%s\n",
            (long long)(r != NULL ? r->nano_cpus / 1000000000 : 0), mem);
    fprintf(out, "Engine Version:\t\t%s\n", cli_esc(d != NULL ? d->engine_version : ""));
    if (d != NULL && d->n_runtimes > 0) {
        fputs("Runtimes:\t\t", out);
        for (size_t i = 0; i < d->n_runtimes; i++) {
            fprintf(out, "%s%s", i > 0 ? " " : "", cli_esc(d->runtimes[i]));
        }
        fputc('\n', out);
    }
    /* docker/cli's template: the PEM (which ends in a newline), then the
     * issuer's DER subject and public key in base64. */
    const Swarm__NodeTLSInfo *t = d != NULL ? d->tls_info : NULL;
    if (t != NULL && t->trust_root.len > 0) {
        fputs("TLS Info:\n TrustRoot:\n", out);
        fwrite(t->trust_root.data, 1, t->trust_root.len, out);
        fputs("\n Issuer Subject:\t", out);
        cli_print_base64(out, t->cert_issuer_subject.data, t->cert_issuer_subject.len);
        fputs("\n Issuer Public Key:\t", out);
        cli_print_base64(out, t->cert_issuer_public_key.data, t->cert_issuer_public_key.len);
        fputc('\n', out);
    }
}

/* ------------------------------------------------------------------ info */

static void cli_view_cluster(FILE *out, const Swarm__InfoResponse *info)
{
    const Swarm__ClusterSpec *s = info->cluster_spec;
    char hb[64], expiry[64];
    int64_t hb_ms = s->dispatcher != NULL ? s->dispatcher->heartbeat_period_ms : 0;
    int64_t expiry_s = s->ca_config != NULL ? s->ca_config->node_cert_expiry_s : 0;
    Swarm__RaftConfig raft = SWARM__RAFT_CONFIG__INIT;
    if (s->raft != NULL) {
        raft = *s->raft;
    }
    cli_format_human_duration(hb_ms * CLI_NS_PER_MS, hb, sizeof hb);
    cli_format_human_duration(expiry_s * CLI_NS_PER_S, expiry, sizeof expiry);
    fprintf(out, " ClusterID: %s\n Managers: %u\n Nodes: %u\n", info->cluster_id,
            info->managers, info->nodes);
    fprintf(out, " Orchestration:\n  Task History Retention Limit: %lld\n",
            (long long)(s->orchestration != NULL
                            ? s->orchestration->task_history_retention_limit
                            : 0));
    fprintf(out, " Raft:\n  Snapshot Interval: %llu\n"
                 "  Number of Old Snapshots to Retain: %llu\n"
                 "  Heartbeat Tick: %u\n  Election Tick: %u\n",
            (unsigned long long)raft.snapshot_interval,
            (unsigned long long)raft.keep_old_snapshots, raft.heartbeat_tick,
            raft.election_tick);
    fprintf(out, " Dispatcher:\n  Heartbeat Period: %s\n", hb);
    fprintf(out, " CA Configuration:\n  Expiry Duration: %s\n", expiry);
}

static int cli_strcmp_cb(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void cli_view_manager_addrs(FILE *out, const Swarm__InfoResponse *info)
{
    if (info->n_manager_addrs == 0) {
        return;
    }
    char **addrs = calloc(info->n_manager_addrs, sizeof *addrs);
    if (addrs == NULL) {
        return;
    }
    memcpy(addrs, info->manager_addrs, info->n_manager_addrs * sizeof *addrs);
    qsort(addrs, info->n_manager_addrs, sizeof *addrs, cli_strcmp_cb);
    fputs(" Manager Addresses:\n", out);
    for (size_t i = 0; i < info->n_manager_addrs; i++) {
        fprintf(out, "  %s\n", cli_esc(addrs[i]));
    }
    free(addrs);
}

static void cli_view_info_swarm(FILE *out, const Swarm__InfoResponse *info)
{
    char state[32];
    cli_json_enum_name(&swarm__local_node_state__descriptor, (int)info->state,
                       state, sizeof state);
    if (info->version != NULL && *info->version) {
        fprintf(out, "Server Version: %s\n", info->version);
    }
    fprintf(out, "Swarm: %s\n", state);
    if (info->state == SWARM__LOCAL_NODE_STATE__LOCAL_NODE_STATE_INACTIVE) {
        return;
    }
    fprintf(out, " NodeID: %s\n", info->node_id);
    bool has_error = info->error != NULL && *info->error;
    if (has_error) {
        fprintf(out, " Error: %s\n", cli_esc(info->error));
    }
    fprintf(out, " Is Manager: %s\n", info->is_manager ? "true" : "false");
    if (info->is_manager && info->cluster_spec != NULL && !has_error &&
        info->state != SWARM__LOCAL_NODE_STATE__LOCAL_NODE_STATE_ERROR) {
        cli_view_cluster(out, info);
    }
    fprintf(out, " Node Address: %s\n", info->node_addr);
    cli_view_manager_addrs(out, info);
    fprintf(out, " Role: %s\n", info->is_manager ? "manager" : "worker");
    if (info->leader_addr != NULL && *info->leader_addr) {
        fprintf(out, " Leader: %s\n", cli_esc(info->leader_addr));
    }
    if (info->cert_not_after > 0) {
        char when[64];
        fputs(" Node Certificate:\n", out);
        cli_format_rfc3339(info->cert_not_after * 1000, when, sizeof when);
        fprintf(out, "  Expires: %s\n", when);
        if (info->cert_renew_at > 0) {
            cli_format_rfc3339(info->cert_renew_at * 1000, when, sizeof when);
            fprintf(out, "  Renewal: %s\n", when);
        }
    }
}

void cli_view_info(FILE *out, const Swarm__InfoResponse *info)
{
    cli_view_info_swarm(out, info);
    /* Docker's daemon section, after the swarm's. */
    if (info->n_insecure_registries > 0) {
        fputs(" Insecure Registries:\n", out);
        for (size_t i = 0; i < info->n_insecure_registries; i++) {
            fprintf(out, "  %s\n", cli_esc(info->insecure_registries[i]));
        }
    }
}

/* --------------------------------------------------------------- version */

/* docker version's tabwriter: minwidth 20, padding 1. */
static void cli_view_kv(FILE *out, const char *key, const char *value)
{
    size_t len = strlen(key);
    fprintf(out, "%s%*s%s\n", key, (int)(len < 19 ? 20 - len : 1), "", value);
}

static const char *cli_go_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__i386__)
    return "386";
#elif defined(__arm__)
    return "arm";
#else
    static struct utsname u;
    return uname(&u) == 0 ? u.machine : "unknown";
#endif
}

void cli_view_version_client(FILE *out)
{
    char osarch[64];
    snprintf(osarch, sizeof osarch, "linux/%s", cli_go_arch());
    fputs("Client:\n", out);
    cli_view_kv(out, " Version:", SWARM_VERSION);
    cli_view_kv(out, " OS/Arch:", osarch);
}

void cli_view_version_server(FILE *out, const Swarm__VersionResponse *v)
{
    char osarch[128];
    snprintf(osarch, sizeof osarch, "%s/%s", v->os, v->arch);
    fputs("\nServer:\n Engine:\n", out);
    cli_view_kv(out, "  Version:", v->version);
    cli_view_kv(out, "  API version:", v->api_version);
    cli_view_kv(out, "  OS/Arch:", osarch);
    if (v->git_commit != NULL && *v->git_commit) {
        cli_view_kv(out, "  Git commit:", v->git_commit);
    }
}

/* ------------------------------------------------------------------ swarm */

void cli_view_join_command(FILE *out, bool manager, const char *token,
                           const char *addr)
{
    fprintf(out,
            "To add a %s to this swarm, run the following command:\n\n"
            "    " CLI_PROG " swarm join --token %s %s\n\n",
            manager ? "manager" : "worker", token, addr);
}

void cli_view_init(FILE *out, const Swarm__InitResponse *resp)
{
    fprintf(out, "Swarm initialized: current node (%s) is now a manager.\n\n",
            resp->node_id);
    cli_view_join_command(out, false, resp->worker_join_token, resp->join_addr);
    fputs("To add a manager to this swarm, run '" CLI_PROG
          " swarm join-token manager' and follow the instructions.\n\n",
          out);
}
