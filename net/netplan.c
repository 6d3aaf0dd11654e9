/* Pure planning of the data plane (netplan.h): no syscalls in here. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "netplan.h"

int netplan_parse_ip(const char *s, uint32_t *addr)
{
    struct in_addr in;
    if (s == NULL || inet_pton(AF_INET, s, &in) != 1) {
        return SWARM_EINVAL;
    }
    *addr = ntohl(in.s_addr);
    return 0;
}

int netplan_parse_cidr(const char *s, uint32_t *addr, int *prefix, int need_prefix)
{
    char buf[32];
    if (s == NULL || strlen(s) >= sizeof buf) {
        return SWARM_EINVAL;
    }
    snprintf(buf, sizeof buf, "%s", s);
    char *slash = strchr(buf, '/');
    *prefix = 32;
    if (slash == NULL) {
        return need_prefix ? SWARM_EINVAL : netplan_parse_ip(buf, addr);
    }
    *slash = '\0';
    const char *p = slash + 1;
    int v = 0;
    if (*p == '\0' || strlen(p) > 2) {
        return SWARM_EINVAL;
    }
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return SWARM_EINVAL;
        }
        v = v * 10 + (*p - '0');
    }
    if (v > 32) {
        return SWARM_EINVAL;
    }
    *prefix = v;
    return netplan_parse_ip(buf, addr);
}

void netplan_mac_from_ip(uint32_t ip, uint8_t mac[6])
{
    mac[0] = 0x02;
    mac[1] = 0x42;
    mac[2] = (uint8_t)(ip >> 24);
    mac[3] = (uint8_t)(ip >> 16);
    mac[4] = (uint8_t)(ip >> 8);
    mac[5] = (uint8_t)ip;
}

void netplan_format_ip(uint32_t ip, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static int peer_cmp(const void *a, const void *b)
{
    const struct netplan_peer *x = a, *y = b;
    return x->ip < y->ip ? -1 : x->ip > y->ip ? 1 : 0;
}

int netplan_peers(const Swarm__NetworkMap *map, uint32_t underlay, struct netplan_peer **out,
                  size_t *n)
{
    *out = NULL;
    *n = 0;
    if (map->n_endpoints == 0) {
        return 0;
    }
    struct netplan_peer *p = calloc(map->n_endpoints, sizeof *p);
    if (p == NULL) {
        return SWARM_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < map->n_endpoints; i++) {
        const Swarm__NetworkEndpoint *ep = map->endpoints[i];
        uint32_t ip, node;
        int prefix;
        if (netplan_parse_cidr(ep->addr, &ip, &prefix, 0) != 0 ||
            netplan_parse_ip(ep->node_addr, &node) != 0 || node == underlay) {
            continue;
        }
        p[k].ip = ip;
        p[k].node = node;
        netplan_mac_from_ip(ip, p[k].mac);
        k++;
    }
    /* Stable enough: equal addresses keep their first (qsort is not
     * stable, so drop duplicates by position before sorting). */
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        size_t j = 0;
        while (j < m && p[j].ip != p[i].ip) {
            j++;
        }
        if (j == m) {
            p[m++] = p[i];
        }
    }
    qsort(p, m, sizeof *p, peer_cmp);
    if (m == 0) {
        free(p);
        p = NULL;
    }
    *out = p;
    *n = m;
    return 0;
}

size_t netplan_peers_minus(const struct netplan_peer *a, size_t na, const struct netplan_peer *b,
                           size_t nb, struct netplan_peer *out)
{
    size_t j = 0, k = 0;
    for (size_t i = 0; i < na; i++) {
        while (j < nb && b[j].ip < a[i].ip) {
            j++;
        }
        if (j < nb && b[j].ip == a[i].ip && b[j].node == a[i].node &&
            memcmp(b[j].mac, a[i].mac, 6) == 0) {
            continue;
        }
        out[k++] = a[i];
    }
    return k;
}

/* A growing text buffer over open_memstream. */
struct text {
    char *buf;
    size_t len;
    FILE *f;
};

static int text_open(struct text *t)
{
    t->buf = NULL;
    t->f = open_memstream(&t->buf, &t->len);
    return t->f != NULL ? 0 : SWARM_ENOMEM;
}

static char *text_close(struct text *t, int ok)
{
    if (fclose(t->f) != 0 || !ok) {
        free(t->buf);
        return NULL;
    }
    return t->buf;
}

static void vip_service(FILE *f, const Swarm__NetworkMap *map, const Swarm__NetworkServiceEntry *s,
                        FILE *rej)
{
    uint32_t vip, ip;
    int prefix;
    char a[16], v[16];
    if (s->endpoint_mode != NULL && strcmp(s->endpoint_mode, "dnsrr") == 0) {
        return;
    }
    if (netplan_parse_cidr(s->vip, &vip, &prefix, 0) != 0) {
        return;
    }
    netplan_format_ip(vip, v);
    size_t n = 0;
    for (size_t i = 0; i < map->n_endpoints; i++) {
        const Swarm__NetworkEndpoint *ep = map->endpoints[i];
        n += ep->ready && strcmp(ep->service_id, s->service_id) == 0 &&
             netplan_parse_cidr(ep->addr, &ip, &prefix, 0) == 0;
    }
    if (n == 0) {
        fprintf(rej, "    ip daddr %s meta l4proto tcp reject with tcp reset\n", v);
        fprintf(rej, "    ip daddr %s reject with icmp type port-unreachable\n", v);
        return;
    }
    fprintf(f, "    ip daddr %s dnat to numgen random mod %zu map { ", v, n);
    size_t k = 0;
    for (size_t i = 0; i < map->n_endpoints; i++) {
        const Swarm__NetworkEndpoint *ep = map->endpoints[i];
        if (ep->ready && strcmp(ep->service_id, s->service_id) == 0 &&
            netplan_parse_cidr(ep->addr, &ip, &prefix, 0) == 0) {
            netplan_format_ip(ip, a);
            fprintf(f, "%s%zu : %s", k > 0 ? ", " : "", k, a);
            k++;
        }
    }
    fprintf(f, " }\n");
}

char *netplan_vip_ruleset(const Swarm__NetworkMap *const *maps, size_t nmaps)
{
    struct text out, rej;
    if (text_open(&out) != 0) {
        return NULL;
    }
    if (text_open(&rej) != 0) {
        return text_close(&out, 0);
    }
    /* Declaring the table first makes the delete succeed when it is new;
     * the whole script is one transaction. */
    fprintf(out.f, "table ip " NETPLAN_NFT_TABLE "\ndelete table ip " NETPLAN_NFT_TABLE "\n"
                   "table ip " NETPLAN_NFT_TABLE " {\n"
                   "  chain vip {\n    type nat hook output priority -100; policy accept;\n");
    for (size_t m = 0; m < nmaps; m++) {
        for (size_t i = 0; maps[m] != NULL && i < maps[m]->n_services; i++) {
            vip_service(out.f, maps[m], maps[m]->services[i], rej.f);
        }
    }
    char *r = text_close(&rej, 1);
    if (r == NULL) {
        return text_close(&out, 0);
    }
    fprintf(out.f, "  }\n  chain novip {\n    type filter hook output priority 0; policy accept;\n"
                   "%s  }\n}\n", r);
    free(r);
    return text_close(&out, 1);
}

static bool ingress_port(const Swarm__PortConfig *p)
{
    return p->published_port != 0 && p->published_port <= 65535 && p->target_port != 0 &&
           p->target_port <= 65535 &&
           (p->publish_mode == NULL || p->publish_mode[0] == '\0' ||
            strcmp(p->publish_mode, "ingress") == 0);
}

static const char *l4(const Swarm__PortConfig *p)
{
    return p->protocol != NULL && strcmp(p->protocol, "udp") == 0 ? "udp" : "tcp";
}

bool netplan_ingress_wanted(const Swarm__NetworkMap *map)
{
    for (size_t i = 0; map != NULL && i < map->n_services; i++) {
        for (size_t j = 0; j < map->services[i]->n_ports; j++) {
            if (ingress_port(map->services[i]->ports[j])) {
                return true;
            }
        }
    }
    return false;
}

int netplan_ingress_node_ip(const Swarm__NetworkMap *map, uint32_t underlay, uint32_t *ip)
{
    for (size_t i = 0; map != NULL && i < map->n_endpoints; i++) {
        const Swarm__NetworkEndpoint *ep = map->endpoints[i];
        uint32_t node;
        int prefix;
        if (ep->task_id[0] == '\0' && netplan_parse_ip(ep->node_addr, &node) == 0 &&
            node == underlay && netplan_parse_cidr(ep->addr, ip, &prefix, 0) == 0) {
            return 0;
        }
    }
    return SWARM_ENOTFOUND;
}

char *netplan_host_rules(const Swarm__Task *const *tasks, const uint32_t *gw, size_t n)
{
    struct text out;
    if (text_open(&out) != 0) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const Swarm__Task *t = tasks[i];
        const char *ing = NULL;
        for (size_t j = 0; j < t->n_networks; j++) {
            const Swarm__NetworkAttachment *a = t->networks[j];
            if (a->network != NULL && a->network->spec != NULL && a->network->spec->ingress &&
                a->n_addresses > 0) {
                ing = a->addresses[0];
            }
        }
        for (size_t j = 0; t->endpoint != NULL && j < t->endpoint->n_ports; j++) {
            const Swarm__PortConfig *p = t->endpoint->ports[j];
            uint32_t ip;
            int prefix;
            char a[16];
            if (p->publish_mode == NULL || strcmp(p->publish_mode, "host") != 0 ||
                p->published_port == 0 || p->published_port > 65535 || p->target_port == 0 ||
                p->target_port > 65535) {
                continue;
            }
            if (t->n_networks == 0) {
                fprintf(out.f, "    %s dport %u redirect to :%u\n", l4(p), p->published_port,
                        p->target_port);
            } else if (ing != NULL && netplan_parse_cidr(ing, &ip, &prefix, 0) == 0) {
                netplan_format_ip(ip, a);
                fprintf(out.f, "    %s dport %u dnat ip to %s:%u\n", l4(p), p->published_port, a,
                        p->target_port);
            } else if (gw != NULL && gw[i] != 0) {
                netplan_format_ip(gw[i], a);
                fprintf(out.f, "    %s dport %u dnat ip to %s:%u\n", l4(p), p->published_port, a,
                        p->target_port);
            }
        }
    }
    return text_close(&out, 1);
}

char *netplan_ingress_ruleset(const Swarm__NetworkMap *map, const char *ifname, const char *host)
{
    struct text out;
    if (text_open(&out) != 0) {
        return NULL;
    }
    FILE *f = out.f;
    fprintf(f, "table ip " NETPLAN_INGRESS_TABLE "\ndelete table ip " NETPLAN_INGRESS_TABLE "\n"
               "table ip " NETPLAN_INGRESS_TABLE " {\n"
               "  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n"
               "    fib daddr type local ip daddr != 127.0.0.0/8 jump mesh\n  }\n"
               "  chain out {\n    type nat hook output priority -100; policy accept;\n"
               "    fib daddr type local ip daddr != 127.0.0.0/8 jump mesh\n  }\n"
               "  chain post {\n    type nat hook postrouting priority srcnat; policy accept;\n"
               "    oifname \"%s\" masquerade\n  }\n"
               "  chain mesh {\n",
            ifname);
    for (size_t i = 0; map != NULL && i < map->n_services; i++) {
        const Swarm__NetworkServiceEntry *s = map->services[i];
        for (size_t j = 0; j < s->n_ports; j++) {
            const Swarm__PortConfig *p = s->ports[j];
            uint32_t ip;
            int prefix;
            char a[16];
            size_t n = 0, k = 0;
            if (!ingress_port(p)) {
                continue;
            }
            for (size_t e = 0; e < map->n_endpoints; e++) {
                const Swarm__NetworkEndpoint *ep = map->endpoints[e];
                n += ep->ready && ep->task_id[0] != '\0' &&
                     strcmp(ep->service_id, s->service_id) == 0 &&
                     netplan_parse_cidr(ep->addr, &ip, &prefix, 0) == 0;
            }
            if (n == 0) {
                continue; /* no ready task: as a closed port */
            }
            fprintf(f, "    %s dport %u dnat ip to numgen random mod %zu map { ", l4(p),
                    p->published_port, n);
            for (size_t e = 0; e < map->n_endpoints; e++) {
                const Swarm__NetworkEndpoint *ep = map->endpoints[e];
                if (ep->ready && ep->task_id[0] != '\0' &&
                    strcmp(ep->service_id, s->service_id) == 0 &&
                    netplan_parse_cidr(ep->addr, &ip, &prefix, 0) == 0) {
                    netplan_format_ip(ip, a);
                    fprintf(f, "%s%zu : %s . %u", k > 0 ? ", " : "", k, a, p->target_port);
                    k++;
                }
            }
            fprintf(f, " }\n");
        }
    }
    if (host != NULL) {
        fputs(host, f);
    }
    fprintf(f, "  }\n}\n");
    return text_close(&out, 1);
}

void netplan_hostname(const Swarm__Task *task, char out[64])
{
    const Swarm__ContainerSpec *c = task->spec != NULL ? task->spec->container : NULL;
    if (c != NULL && c->hostname != NULL && c->hostname[0] != '\0') {
        snprintf(out, 64, "%s", c->hostname);
    } else {
        snprintf(out, 64, "%.12s", task->id != NULL ? task->id : "");
    }
}

char *netplan_hosts(const Swarm__Task *task, const char *hostname)
{
    struct text t;
    if (text_open(&t) != 0) {
        return NULL;
    }
    fprintf(t.f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                 "ff02::2\tip6-allrouters\n");
    for (size_t i = 0; i < task->n_networks; i++) {
        const Swarm__NetworkAttachment *a = task->networks[i];
        uint32_t ip;
        int prefix;
        char s[16];
        if (a->n_addresses > 0 && netplan_parse_cidr(a->addresses[0], &ip, &prefix, 0) == 0) {
            netplan_format_ip(ip, s);
            fprintf(t.f, "%s\t%s\n", s, hostname);
        }
    }
    return text_close(&t, 1);
}

/* ---- the gateway bridge ------------------------------------------------ */

static uint32_t prefix_mask(int prefix)
{
    return prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
}

bool netplan_prefix_overlap(uint32_t a, int pa, uint32_t b, int pb)
{
    return ((a ^ b) & prefix_mask(pa < pb ? pa : pb)) == 0;
}

int netplan_gwbridge_pick(const struct netplan_prefix *used, size_t n, uint32_t *subnet,
                          int *prefix)
{
    for (int k = 0; k < 15 + 16; k++) {
        /* 172.17..31.0.0/16, then 192.168.{0,16,...,240}.0/20 */
        uint32_t cand = k < 15 ? (172u << 24) | ((17u + (uint32_t)k) << 16)
                               : (192u << 24) | (168u << 16) | ((uint32_t)(k - 15) << 12);
        int cp = k < 15 ? 16 : 20;
        bool free_ = true;
        for (size_t i = 0; i < n && free_; i++) {
            free_ = used[i].prefix <= 0 ||
                    !netplan_prefix_overlap(cand, cp, used[i].addr, used[i].prefix);
        }
        if (free_) {
            *subnet = cand;
            *prefix = cp;
            return 0;
        }
    }
    return SWARM_ENOTFOUND;
}

int netplan_gwbridge_parse(const char *s, uint32_t *subnet, int *prefix, char *errmsg)
{
    uint32_t a;
    int p;
    char ip[16];
    if (netplan_parse_cidr(s, &a, &p, 1) != 0) {
        snprintf(errmsg, SWARM_ERRMSG_SIZE,
                 "invalid --gwbridge-subnet \"%s\": want an IPv4 subnet such as 172.18.0.0/16",
                 s != NULL ? s : "");
        return SWARM_EINVAL;
    }
    if (p < 8 || p > 29) {
        snprintf(errmsg, SWARM_ERRMSG_SIZE,
                 "invalid --gwbridge-subnet \"%s\": the prefix must be 8 to 29", s);
        return SWARM_EINVAL;
    }
    if ((a & ~prefix_mask(p)) != 0) {
        netplan_format_ip(a & prefix_mask(p), ip);
        snprintf(errmsg, SWARM_ERRMSG_SIZE,
                 "invalid --gwbridge-subnet \"%s\": not a network address (%s/%d is)", s, ip, p);
        return SWARM_EINVAL;
    }
    if ((a >> 24) == 127 || (a >> 24) == 0 || (a >> 28) >= 14) {
        snprintf(errmsg, SWARM_ERRMSG_SIZE,
                 "invalid --gwbridge-subnet \"%s\": not a unicast range", s);
        return SWARM_EINVAL;
    }
    *subnet = a;
    *prefix = p;
    return 0;
}

char *netplan_gwbridge_ruleset(uint32_t subnet, int prefix, const char *ifname)
{
    struct text out;
    char a[16];
    if (text_open(&out) != 0) {
        return NULL;
    }
    netplan_format_ip(subnet, a);
    fprintf(out.f,
            "table ip " NETPLAN_GW_TABLE "\ndelete table ip " NETPLAN_GW_TABLE "\n"
            "table ip " NETPLAN_GW_TABLE " {\n"
            "  chain post {\n    type nat hook postrouting priority srcnat; policy accept;\n"
            "    ip saddr %s/%d oifname != \"%s\" masquerade\n  }\n"
            "  chain nocross {\n    type filter hook forward priority filter; policy accept;\n"
            "    iifname \"%s\" oifname \"%s\" drop\n  }\n"
            "}\n",
            a, prefix, ifname, ifname, ifname);
    return text_close(&out, 1);
}
