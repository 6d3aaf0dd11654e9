/* See view_network.h. */
#include "view_network.h"

#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "view_format.h"

static const char *net_name(const Swarm__Network *nw)
{
    return nw->spec != NULL && nw->spec->annotations != NULL && nw->spec->annotations->name != NULL
               ? nw->spec->annotations->name
               : "";
}

static const char *net_driver(const Swarm__Network *nw)
{
    return nw->spec != NULL && nw->spec->driver != NULL && nw->spec->driver[0] != '\0' ? nw->spec->driver
                                                                                        : "overlay";
}

static int net_cmp(const void *a, const void *b)
{
    const char *na = net_name(*(Swarm__Network *const *)a);
    const char *nb = net_name(*(Swarm__Network *const *)b);
    return cli_natural_less(na, nb) ? -1 : cli_natural_less(nb, na) ? 1 : 0;
}

static Swarm__Network **sorted_copy(Swarm__Network *const *nets, size_t n)
{
    Swarm__Network **sorted = cli_xcalloc(n + 1, sizeof *sorted);
    memcpy(sorted, nets, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, net_cmp);
    return sorted;
}

void cli_view_network_table(FILE *out, Swarm__Network *const *nets, size_t n, bool quiet)
{
    Swarm__Network **sorted = sorted_copy(nets, n);
    if (quiet) {
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "%s\n", sorted[i]->id);
        }
        free(sorted);
        return;
    }
    struct cli_table *t = cli_table_new(10, 3);
    cli_table_add(t, "NETWORK ID");
    cli_table_add(t, "NAME");
    cli_table_add(t, "DRIVER");
    cli_table_add(t, "SCOPE");
    cli_table_end_row(t);
    for (size_t i = 0; i < n; i++) {
        cli_table_addf(t, "%.*s", CLI_SHORT_ID_LEN, sorted[i]->id);
        cli_table_add(t, net_name(sorted[i]));
        cli_table_add(t, net_driver(sorted[i]));
        cli_table_add(t, "swarm");
        cli_table_end_row(t);
    }
    cli_table_print(t, out);
    cli_table_free(t);
    free(sorted);
}

/* "k=v,k2=v2", as docker/cli's networkContext.Labels. */
static void labels_joined(const Swarm__Network *nw, char *buf, size_t size)
{
    const Swarm__Annotations *a = nw->spec != NULL ? nw->spec->annotations : NULL;
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; a != NULL && i < a->n_labels && len < size; i++) {
        int w = snprintf(buf + len, size - len, "%s%s=%s", i > 0 ? "," : "", a->labels[i]->key,
                         a->labels[i]->value);
        len += w > 0 ? (size_t)w : 0;
    }
}

static const struct cli_fmt_column network_columns[] = {
    {"ID", "NETWORK ID"},
    {"Name", "NAME"},
    {"Driver", "DRIVER"},
    {"Scope", "SCOPE"},
    {"IPv6", "IPV6"},
    {"Internal", "INTERNAL"},
    {"Labels", "LABELS"},
    {"CreatedAt", "CREATED AT"},
};

static struct tmpl_value *network_context(const Swarm__Network *nw)
{
    struct tmpl_value *c = tmpl_value_map("*network.networkContext", 0);
    char labels[1024], created[64], id[CLI_SHORT_ID_LEN + 1];
    labels_joined(nw, labels, sizeof labels);
    cli_format_go_time(nw->meta != NULL ? nw->meta->created_at : 0, created, sizeof created);
    snprintf(id, sizeof id, "%s", nw->id);
    tmpl_map_set_string(c, "ID", id);
    tmpl_map_set_string(c, "Name", net_name(nw));
    tmpl_map_set_string(c, "Driver", net_driver(nw));
    tmpl_map_set_string(c, "Scope", "swarm");
    tmpl_map_set_bool(c, "IPv6", false);
    tmpl_map_set_bool(c, "Internal", nw->spec != NULL && nw->spec->internal);
    tmpl_map_set_string(c, "Labels", labels);
    tmpl_map_set_string(c, "CreatedAt", created);
    return c;
}

int cli_view_network_format(FILE *out, const char *format, Swarm__Network *const *nets, size_t n,
                            char *errmsg)
{
    Swarm__Network **sorted = sorted_copy(nets, n);
    struct tmpl_value **ctx = cli_xcalloc(n + 1, sizeof *ctx);
    for (size_t i = 0; i < n; i++) {
        ctx[i] = network_context(sorted[i]);
    }
    int rc = cli_format_list(out, format, ctx, n, network_columns,
                             sizeof network_columns / sizeof *network_columns, errmsg);
    for (size_t i = 0; i < n; i++) {
        tmpl_value_free(ctx[i]);
    }
    free(ctx);
    free(sorted);
    return rc;
}

struct tmpl_value *cli_view_network_value(const Swarm__Network *nw)
{
    struct tmpl_value *v = tmpl_value_map(NULL, 0);
    struct tmpl_value *ipam = tmpl_value_map(NULL, 0);
    struct tmpl_value *config = tmpl_value_list();
    struct tmpl_value *labels = tmpl_value_map(NULL, TMPL_MAP_SORTED | TMPL_MAP_STRINGS);
    struct tmpl_value *options = tmpl_value_map(NULL, TMPL_MAP_SORTED | TMPL_MAP_STRINGS);
    struct tmpl_value *from = tmpl_value_map(NULL, 0);
    const Swarm__Annotations *a = nw->spec != NULL ? nw->spec->annotations : NULL;
    char created[64], vni[16];

    cli_format_rfc3339(nw->meta != NULL ? nw->meta->created_at : 0, created, sizeof created);
    tmpl_map_set_string(v, "Name", net_name(nw));
    tmpl_map_set_string(v, "Id", nw->id);
    tmpl_map_set_string(v, "Created", created);
    tmpl_map_set_string(v, "Scope", "swarm");
    tmpl_map_set_string(v, "Driver", net_driver(nw));
    tmpl_map_set_bool(v, "EnableIPv6", false);
    tmpl_map_set_string(ipam, "Driver", "default");
    tmpl_map_set(ipam, "Options", tmpl_value_nil());
    if (nw->ipam != NULL && nw->ipam->subnet != NULL && nw->ipam->subnet[0] != '\0') {
        struct tmpl_value *c = tmpl_value_map(NULL, 0);
        tmpl_map_set_string(c, "Subnet", nw->ipam->subnet);
        if (nw->ipam->range != NULL && nw->ipam->range[0] != '\0') {
            tmpl_map_set_string(c, "IPRange", nw->ipam->range);
        }
        tmpl_map_set_string(c, "Gateway", nw->ipam->gateway != NULL ? nw->ipam->gateway : "");
        tmpl_list_append(config, c);
    }
    tmpl_map_set(ipam, "Config", config);
    tmpl_map_set(v, "IPAM", ipam);
    tmpl_map_set_bool(v, "Internal", nw->spec != NULL && nw->spec->internal);
    tmpl_map_set_bool(v, "Attachable", nw->spec != NULL && nw->spec->attachable);
    tmpl_map_set_bool(v, "Ingress", nw->spec != NULL && nw->spec->ingress);
    tmpl_map_set_string(from, "Network", "");
    tmpl_map_set(v, "ConfigFrom", from);
    tmpl_map_set_bool(v, "ConfigOnly", false);
    tmpl_map_set(v, "Containers", tmpl_value_nil());
    snprintf(vni, sizeof vni, "%u", nw->vni);
    tmpl_map_set_string(options, "com.docker.network.driver.overlay.vxlanid_list", vni);
    tmpl_map_set(v, "Options", options);
    for (size_t i = 0; a != NULL && i < a->n_labels; i++) {
        tmpl_map_set_string(labels, a->labels[i]->key, a->labels[i]->value);
    }
    tmpl_map_set(v, "Labels", labels);
    return v;
}

void cli_view_network_inspect(FILE *out, struct tmpl_value *const *objs, size_t n)
{
    if (n == 0) {
        fputs("[]\n", out);
        return;
    }
    fputs("[\n", out);
    for (size_t i = 0; i < n; i++) {
        fputs("  ", out);
        tmpl_value_print_json_indent(out, objs[i], 1);
        fputs(i + 1 < n ? ",\n" : "\n", out);
    }
    fputs("]\n", out);
}
