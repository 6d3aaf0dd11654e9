/* The embedded DNS server's records (see dnstable.h). Each network keeps its
 * records as one array of (name, address) sorted by name, rebuilt whole from
 * the network's map: a lookup is a binary search per network in scope. */
#include "dnstable.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "err.h"

/* Longest name the DNS carries (RFC 1035 2.3.4), in presentation form. */
#define DNSTABLE_NAME_MAX 255

struct dnstable_rec {
    char *name; /* lower case, no trailing dot */
    struct dnstable_addr addr;
};

struct dnstable_net {
    char *id;
    char *name; /* lower case */
    bool ingress;
    VEC(struct dnstable_rec) recs; /* sorted by (name, address) */
};

struct dnstable {
    VEC(struct dnstable_net *) nets;
};

static void net_free(struct dnstable_net *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->recs.len; i++) {
        free(n->recs.items[i].name);
    }
    vec_free(&n->recs);
    free(n->id);
    free(n->name);
    free(n);
}

int dnstable_new(struct dnstable **out)
{
    *out = calloc(1, sizeof **out);
    return *out == NULL ? SWARM_ENOMEM : 0;
}

void dnstable_free(struct dnstable *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->nets.len; i++) {
        net_free(t->nets.items[i]);
    }
    vec_free(&t->nets);
    free(t);
}

size_t dnstable_network_count(const struct dnstable *t)
{
    return t->nets.len;
}

size_t dnstable_record_count(const struct dnstable *t)
{
    size_t n = 0;

    for (size_t i = 0; i < t->nets.len; i++) {
        n += t->nets.items[i]->recs.len;
    }
    return n;
}

/* Lower-case copy of `s` without one trailing dot; NULL if out of memory. */
static char *name_normalize(const char *s)
{
    size_t len = strlen(s);
    char *out;

    if (len > 0 && s[len - 1] == '.') {
        len--;
    }
    out = malloc(len + 1);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[len] = '\0';
    return out;
}

/* Parse an address ("10.0.1.5", tolerating a "/24" suffix). */
static int addr_parse(const char *s, struct dnstable_addr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(s, '/');
    size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);

    if (len == 0 || len >= sizeof buf) {
        return SWARM_EINVAL;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->a) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, out->a) == 1) {
        out->family = AF_INET6;
        return 0;
    }
    return SWARM_EINVAL;
}

static int rec_add(struct dnstable_net *n, const char *prefix, const char *name,
                   const struct dnstable_addr *addr)
{
    struct dnstable_rec rec;
    size_t plen = strlen(prefix);
    char *full;

    if (name == NULL || name[0] == '\0') {
        return 0;
    }
    full = malloc(plen + strlen(name) + 1);
    if (full == NULL) {
        return SWARM_ENOMEM;
    }
    memcpy(full, prefix, plen);
    strcpy(full + plen, name);
    rec.name = name_normalize(full);
    free(full);
    if (rec.name == NULL) {
        return SWARM_ENOMEM;
    }
    if (strlen(rec.name) > DNSTABLE_NAME_MAX) {
        free(rec.name); /* no query can ask for it */
        return 0;
    }
    rec.addr = *addr;
    if (vec_push(&n->recs, rec) != 0) {
        free(rec.name);
        return SWARM_ENOMEM;
    }
    return 0;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct dnstable_rec *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c != 0) {
        return c;
    }
    if (x->addr.family != y->addr.family) {
        return x->addr.family < y->addr.family ? -1 : 1;
    }
    return memcmp(x->addr.a, y->addr.a, sizeof x->addr.a);
}

typedef VEC(const char *) dnstable_names;

/* Add `name` to `names` unless it is there (case-insensitively): a
 * service's tasks all carry the same few aliases. */
static int names_add_unique(dnstable_names *names, const char *name)
{
    for (size_t i = 0; i < names->len; i++) {
        if (strcasecmp(names->items[i], name) == 0) {
            return 0;
        }
    }
    return vec_push(names, name) != 0 ? SWARM_ENOMEM : 0;
}

/* The names of a service: its own, its entry's aliases and those its
 * endpoints carry, each once (gathered once per service, so a map costs
 * O(services x endpoints)). */
static int service_names_collect(const Swarm__NetworkServiceEntry *svc,
                                 const Swarm__NetworkMap *map, dnstable_names *names)
{
    int rv = names_add_unique(names, svc->name);

    for (size_t i = 0; rv == 0 && i < svc->n_aliases; i++) {
        rv = names_add_unique(names, svc->aliases[i]);
    }
    for (size_t e = 0; rv == 0 && e < map->n_endpoints; e++) {
        const Swarm__NetworkEndpoint *ep = map->endpoints[e];
        if (strcmp(ep->service_id, svc->service_id) != 0) {
            continue;
        }
        for (size_t i = 0; rv == 0 && i < ep->n_aliases; i++) {
            rv = names_add_unique(names, ep->aliases[i]);
        }
    }
    return rv;
}

static int names_add(struct dnstable_net *n, const char *prefix, const dnstable_names *names,
                     const struct dnstable_addr *addr)
{
    int rv = 0;

    for (size_t i = 0; rv == 0 && i < names->len; i++) {
        rv = rec_add(n, prefix, names->items[i], addr);
    }
    return rv;
}

static int service_records_add(struct dnstable_net *n,
                               const Swarm__NetworkServiceEntry *svc,
                               const Swarm__NetworkMap *map, char *errmsg)
{
    bool dnsrr = strcmp(svc->endpoint_mode, "dnsrr") == 0 ||
                 (svc->endpoint_mode[0] == '\0' && svc->vip[0] == '\0');
    bool any_ready = false;
    dnstable_names names = {0};
    struct dnstable_addr addr;
    int rv = service_names_collect(svc, map, &names);

    for (size_t e = 0; rv == 0 && e < map->n_endpoints; e++) {
        const Swarm__NetworkEndpoint *ep = map->endpoints[e];
        if (!ep->ready || strcmp(ep->service_id, svc->service_id) != 0) {
            continue;
        }
        any_ready = true;
        if (addr_parse(ep->addr, &addr) != 0) {
            continue; /* checked with the task names */
        }
        rv = names_add(n, "tasks.", &names, &addr);
        if (rv == 0 && dnsrr) {
            rv = names_add(n, "", &names, &addr);
        }
    }
    if (rv == 0 && !dnsrr && any_ready && svc->vip[0] != '\0') {
        if (addr_parse(svc->vip, &addr) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "service %s: VIP \"%s\" is not an IP address",
                          svc->name, svc->vip);
            rv = SWARM_EINVAL;
        } else {
            rv = names_add(n, "", &names, &addr);
        }
    }
    vec_free(&names);
    return rv;
}

static int net_build(const Swarm__NetworkMap *map, struct dnstable_net **out,
                     char *errmsg)
{
    const Swarm__Network *nw = map->network;
    struct dnstable_net *n;
    struct dnstable_addr addr;
    int rv = 0;

    n = calloc(1, sizeof *n);
    if (n == NULL) {
        return SWARM_ENOMEM;
    }
    n->id = strdup(nw->id);
    n->name = name_normalize(nw->spec != NULL && nw->spec->annotations != NULL
                                 ? nw->spec->annotations->name : "");
    n->ingress = nw->spec != NULL && nw->spec->ingress;
    if (n->id == NULL || n->name == NULL) {
        rv = SWARM_ENOMEM;
        goto err;
    }
    if (n->ingress) {
        goto done; /* routing only: no names (Docker) */
    }
    for (size_t e = 0; e < map->n_endpoints; e++) {
        const Swarm__NetworkEndpoint *ep = map->endpoints[e];
        if (addr_parse(ep->addr, &addr) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "task %s: address \"%s\" is not an IP address",
                          ep->task_id, ep->addr);
            rv = SWARM_EINVAL;
            goto err;
        }
        if (ep->ready && (rv = rec_add(n, "", ep->task_name, &addr)) != 0) {
            goto err;
        }
    }
    for (size_t s = 0; s < map->n_services; s++) {
        if ((rv = service_records_add(n, map->services[s], map, errmsg)) != 0) {
            goto err;
        }
    }
    if (n->recs.len > 1) {
        size_t w = 1;
        qsort(n->recs.items, n->recs.len, sizeof n->recs.items[0], rec_cmp);
        for (size_t r = 1; r < n->recs.len; r++) {
            if (rec_cmp(&n->recs.items[w - 1], &n->recs.items[r]) == 0) {
                free(n->recs.items[r].name);
            } else {
                n->recs.items[w++] = n->recs.items[r];
            }
        }
        n->recs.len = w;
    }
done:
    *out = n;
    return 0;
err:
    net_free(n);
    return rv;
}

static ssize_t net_find(const struct dnstable *t, const char *id)
{
    for (size_t i = 0; i < t->nets.len; i++) {
        if (strcmp(t->nets.items[i]->id, id) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

int dnstable_network_update(struct dnstable *t, const Swarm__NetworkMap *map,
                            char *errmsg)
{
    struct dnstable_net *n;
    ssize_t at;
    int rv;

    if (map->network == NULL || map->network->id[0] == '\0') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network map without a network ID");
        return SWARM_EINVAL;
    }
    rv = net_build(map, &n, errmsg);
    if (rv != 0) {
        if (rv == SWARM_EINVAL) {
            errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "network %s", map->network->id);
        }
        return rv;
    }
    at = net_find(t, n->id);
    if (at >= 0) {
        net_free(t->nets.items[at]);
        t->nets.items[at] = n;
        return 0;
    }
    if (vec_push(&t->nets, n) != 0) {
        net_free(n);
        return SWARM_ENOMEM;
    }
    return 0;
}

void dnstable_network_remove(struct dnstable *t, const char *network_id)
{
    ssize_t at = net_find(t, network_id);

    if (at < 0) {
        return;
    }
    net_free(t->nets.items[at]);
    t->nets.items[at] = t->nets.items[t->nets.len - 1];
    t->nets.len--;
}

/* Index of the first record named `name`, or -1. */
static ssize_t rec_first(const struct dnstable_net *n, const char *name)
{
    size_t lo = 0, hi = n->recs.len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(n->recs.items[mid].name, name) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < n->recs.len && strcmp(n->recs.items[lo].name, name) == 0) {
        return (ssize_t)lo;
    }
    return -1;
}

/* The first network in scope (and named `netname` if not NULL) that knows
 * `name`: fill ans and return 1; 0 if none; SWARM_ENOMEM. */
static int lookup_in_scope(const struct dnstable *t, const char *name,
                           const char *netname, uint16_t qtype,
                           const char *const *network_ids, size_t n_networks,
                           struct dnstable_answer *ans)
{
    int family = qtype == DNSTABLE_TYPE_A ? AF_INET
                 : qtype == DNSTABLE_TYPE_AAAA ? AF_INET6 : 0;

    for (size_t i = 0; i < n_networks; i++) {
        ssize_t at = net_find(t, network_ids[i]), r;
        const struct dnstable_net *n;

        if (at < 0) {
            continue;
        }
        n = t->nets.items[at];
        if (netname != NULL && strcmp(n->name, netname) != 0) {
            continue;
        }
        r = rec_first(n, name);
        if (r < 0) {
            continue;
        }
        ans->kind = DNSTABLE_FOUND;
        for (; (size_t)r < n->recs.len && strcmp(n->recs.items[r].name, name) == 0; r++) {
            if (n->recs.items[r].addr.family == family &&
                vec_push(&ans->addrs, n->recs.items[r].addr) != 0) {
                return SWARM_ENOMEM;
            }
        }
        return 1;
    }
    return 0;
}

int dnstable_lookup(const struct dnstable *t, const char *name, uint16_t qtype,
                    const char *const *network_ids, size_t n_networks,
                    struct dnstable_answer *ans)
{
    char *norm = name_normalize(name);
    int rv = 0;

    ans->kind = DNSTABLE_FORWARD;
    ans->addrs.len = 0;
    if (norm == NULL) {
        return SWARM_ENOMEM;
    }
    if (norm[0] == '\0' || strlen(norm) > DNSTABLE_NAME_MAX) {
        goto out;
    }
    rv = lookup_in_scope(t, norm, NULL, qtype, network_ids, n_networks, ans);
    /* "NAME.NETWORK": cut at each dot from the right (Docker's loop). */
    for (char *dot = strrchr(norm, '.'); rv == 0 && dot != NULL; dot = strrchr(norm, '.')) {
        const char *netname = name + (dot - norm) + 1;
        char *netlower = name_normalize(netname);
        if (netlower == NULL) {
            rv = SWARM_ENOMEM;
            break;
        }
        *dot = '\0';
        rv = lookup_in_scope(t, norm, netlower, qtype, network_ids, n_networks, ans);
        free(netlower);
    }
out:
    free(norm);
    return rv < 0 ? rv : 0;
}

void dnstable_answer_free(struct dnstable_answer *ans)
{
    vec_free(&ans->addrs);
    ans->kind = DNSTABLE_FORWARD;
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s != 0 ? *s : 0x9e3779b97f4a7c15ULL;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

void dnstable_shuffle(struct dnstable_addr *addrs, size_t n, uint64_t *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(xorshift64(rng) % i);
        struct dnstable_addr tmp = addrs[i - 1];
        addrs[i - 1] = addrs[j];
        addrs[j] = tmp;
    }
}
