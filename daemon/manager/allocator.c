/* See allocator.h. Each network's in-use set is a bitmap over its subnet's
 * addresses (at most a /8 per network: 2 MiB); subnets are picked by
 * walking the pools in steps of the subnet size. */
#include "allocator.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define ALLOC_MIN_BITS 8 /* no network larger than a /8 */

static uint32_t mask_of(unsigned bits)
{
    return bits == 0 ? 0 : ~UINT32_C(0) << (32 - bits);
}

int alloc_ip_parse(const char *ip, uint32_t *out)
{
    struct in_addr a;
    if (ip == NULL || inet_pton(AF_INET, ip, &a) != 1) {
        return SWARM_EINVAL;
    }
    *out = ntohl(a.s_addr);
    return 0;
}

void alloc_ip_format(uint32_t ip, char out[ALLOC_CIDR_LEN])
{
    snprintf(out, ALLOC_CIDR_LEN, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

void alloc_cidr_format(uint32_t ip, unsigned bits, char out[ALLOC_CIDR_LEN])
{
    char a[ALLOC_CIDR_LEN];
    alloc_ip_format(ip, a);
    snprintf(out, ALLOC_CIDR_LEN, "%s/%u", a, bits);
}

/* As alloc_cidr_parse, but the host part kept (an address in CIDR form). */
static int cidr_split(const char *cidr, uint32_t *ip, unsigned *bits)
{
    char buf[ALLOC_CIDR_LEN];
    const char *slash = cidr != NULL ? strchr(cidr, '/') : NULL;
    char *end;
    unsigned long n;
    if (slash == NULL || (size_t)(slash - cidr) >= sizeof buf || slash[1] < '0' || slash[1] > '9') {
        return SWARM_EINVAL;
    }
    memcpy(buf, cidr, (size_t)(slash - cidr));
    buf[slash - cidr] = '\0';
    n = strtoul(slash + 1, &end, 10);
    if (*end != '\0' || n > 32 || alloc_ip_parse(buf, ip) != 0) {
        return SWARM_EINVAL;
    }
    *bits = (unsigned)n;
    return 0;
}

int alloc_cidr_parse(const char *cidr, uint32_t *net, unsigned *bits, char *errmsg)
{
    uint32_t ip;
    if (cidr_split(cidr, &ip, bits) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid CIDR address: %s", cidr != NULL ? cidr : "");
        return SWARM_EINVAL;
    }
    *net = ip & mask_of(*bits);
    return 0;
}

static bool overlaps(uint32_t a, unsigned abits, uint32_t b, unsigned bbits)
{
    uint32_t m = mask_of(abits < bbits ? abits : bbits);
    return (a & m) == (b & m);
}

/* ---- networks ------------------------------------------------------------ */

int alloc_pool_validate(const struct alloc_pool_config *pc, char *errmsg)
{
    uint32_t size = pc->subnet_size != 0 ? pc->subnet_size : ALLOC_DEFAULT_SUBNET_SIZE;
    if (pc->subnet_size > 29) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "subnet size is out of range: %u", pc->subnet_size);
        return SWARM_EINVAL;
    }
    for (size_t i = 0; i < pc->n_pools; i++) {
        uint32_t net;
        unsigned bits;
        char why[SWARM_ERRMSG_SIZE];
        if (alloc_cidr_parse(pc->pools[i], &net, &bits, why) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid base pool %s: %s", pc->pools[i], why);
            return SWARM_EINVAL;
        }
        if (size < bits) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid CIDR: \"%s\". Subnet size is too small for pool: %u",
                          pc->pools[i], size);
            return SWARM_EINVAL;
        }
        if (bits < ALLOC_MIN_BITS) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid base pool %s: larger than a /%d", pc->pools[i],
                          ALLOC_MIN_BITS);
            return SWARM_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            uint32_t onet;
            unsigned obits;
            if (alloc_cidr_parse(pc->pools[j], &onet, &obits, why) == 0 && overlaps(net, bits, onet, obits)) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid base pool %s: overlaps with %s", pc->pools[i],
                              pc->pools[j]);
                return SWARM_EINVAL;
            }
        }
    }
    return 0;
}

static bool overlaps_existing(uint32_t net, unsigned bits, Swarm__Network *const *existing, size_t n,
                              const char **name)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t onet;
        unsigned obits;
        char why[SWARM_ERRMSG_SIZE];
        if (existing[i]->ipam != NULL && alloc_cidr_parse(existing[i]->ipam->subnet, &onet, &obits, why) == 0 &&
            overlaps(net, bits, onet, obits)) {
            *name = existing[i]->spec != NULL && existing[i]->spec->annotations != NULL
                        ? existing[i]->spec->annotations->name
                        : existing[i]->id;
            return true;
        }
    }
    return false;
}

/* The first subnet of the pools' size that overlaps no existing network. */
static int pick_subnet(const struct alloc_pool_config *pc, Swarm__Network *const *existing, size_t n,
                       uint32_t *out, unsigned *out_bits, char *errmsg)
{
    static char *const default_pool[] = {(char *)ALLOC_DEFAULT_POOL};
    char *const *pools = pc->n_pools > 0 ? pc->pools : default_pool;
    size_t n_pools = pc->n_pools > 0 ? pc->n_pools : 1;
    unsigned size = pc->subnet_size != 0 ? pc->subnet_size : ALLOC_DEFAULT_SUBNET_SIZE;
    const char *who;
    for (size_t p = 0; p < n_pools; p++) {
        uint32_t net;
        unsigned bits;
        char why[SWARM_ERRMSG_SIZE];
        if (alloc_cidr_parse(pools[p], &net, &bits, why) != 0 || bits > size) {
            continue;
        }
        uint64_t count = UINT64_C(1) << (size - bits), step = UINT64_C(1) << (32 - size);
        for (uint64_t k = 0; k < count; k++) {
            uint32_t cand = net + (uint32_t)(k * step);
            if (!overlaps_existing(cand, size, existing, n, &who)) {
                *out = cand;
                *out_bits = size;
                return 0;
            }
        }
    }
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                  "could not find an available, non-overlapping IPv4 address pool among the defaults to "
                  "assign to the network");
    return SWARM_EUNAVAIL;
}

static uint32_t pick_vni(Swarm__Network *const *existing, size_t n)
{
    uint32_t vni = ALLOC_VNI_FIRST;
    bool again = true;
    while (again) {
        again = false;
        for (size_t i = 0; i < n; i++) {
            if (existing[i]->vni == vni) {
                vni++;
                again = true;
            }
        }
    }
    return vni;
}

static int set_str(char **field, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL) {
        return SWARM_ENOMEM;
    }
    *field = copy;
    return 0;
}

int alloc_network(const Swarm__NetworkSpec *spec, const struct alloc_pool_config *pc,
                  Swarm__Network *const *existing, size_t n_existing, Swarm__IPAMConfig *ipam, uint32_t *vni,
                  char *errmsg)
{
    const Swarm__IPAMConfig *want = spec->n_ipam > 0 ? spec->ipam[0] : NULL;
    uint32_t net = 0, gw = 0, rnet = 0;
    unsigned bits = 0, rbits = 0;
    const char *who;
    char buf[ALLOC_CIDR_LEN];
    int rv;

    swarm__ipamconfig__init(ipam);
    if (spec->driver != NULL && spec->driver[0] != '\0' && strcmp(spec->driver, "overlay") != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "plugin %s not supported", spec->driver);
        return SWARM_EINVAL;
    }
    if (spec->n_ipam > 1) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "multiple subnets are not supported (IPv4, one subnet)");
        return SWARM_EINVAL;
    }
    bool has_subnet = want != NULL && want->subnet != NULL && want->subnet[0] != '\0';
    bool has_gw = want != NULL && want->gateway != NULL && want->gateway[0] != '\0';
    bool has_range = want != NULL && want->range != NULL && want->range[0] != '\0';
    if (!has_subnet && (has_gw || has_range)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "every ip-range or gateway must have a corresponding subnet");
        return SWARM_EINVAL;
    }
    if (has_subnet) {
        if ((rv = alloc_cidr_parse(want->subnet, &net, &bits, errmsg)) != 0) {
            return rv;
        }
        if (bits < ALLOC_MIN_BITS || bits > 30) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid subnet %s: the prefix length must be /%d to /30",
                          want->subnet, ALLOC_MIN_BITS);
            return SWARM_EINVAL;
        }
        if (has_range) {
            if ((rv = alloc_cidr_parse(want->range, &rnet, &rbits, errmsg)) != 0) {
                return rv;
            }
            if (rbits < bits || !overlaps(rnet, rbits, net, bits)) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "no matching subnet for range %s", want->range);
                return SWARM_EINVAL;
            }
        }
        if (has_gw) {
            if (alloc_ip_parse(want->gateway, &gw) != 0) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid gateway address: %s", want->gateway);
                return SWARM_EINVAL;
            }
            if ((gw & mask_of(bits)) != net) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "no matching subnet for gateway %s", want->gateway);
                return SWARM_EINVAL;
            }
            if (gw == net || gw == (net | ~mask_of(bits))) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid gateway %s: the network or broadcast address of %s",
                              want->gateway, want->subnet);
                return SWARM_EINVAL;
            }
        }
        if (overlaps_existing(net, bits, existing, n_existing, &who)) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "invalid pool request: Pool overlaps with other one on this address space");
            return SWARM_EEXIST;
        }
    } else if ((rv = pick_subnet(pc, existing, n_existing, &net, &bits, errmsg)) != 0) {
        return rv;
    }
    if (!has_gw) {
        gw = net + 1;
    }
    alloc_cidr_format(net, bits, buf);
    if (set_str(&ipam->subnet, buf) != 0) {
        goto oom;
    }
    alloc_ip_format(gw, buf);
    if (set_str(&ipam->gateway, buf) != 0) {
        goto oom;
    }
    if (has_range) {
        alloc_cidr_format(rnet, rbits, buf);
        if (set_str(&ipam->range, buf) != 0) {
            goto oom;
        }
    }
    *vni = pick_vni(existing, n_existing);
    return 0;
oom:
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
    return SWARM_ENOMEM;
}

/* ---- in-use sets --------------------------------------------------------- */

struct alloc_net {
    const Swarm__Network *nw;
    uint32_t net;
    unsigned bits;
    uint32_t lo, hi; /* the addresses that may be handed out, inclusive */
    uint32_t gw;
    uint8_t *used; /* one bit per address of the subnet */
};

struct alloc {
    struct alloc_net *nets;
    size_t n;
    size_t conflicts;
};

struct alloc *alloc_new(Swarm__Network *const *networks, size_t n)
{
    struct alloc *a = calloc(1, sizeof *a);
    if (a == NULL || (a->nets = calloc(n + 1, sizeof *a->nets)) == NULL) {
        free(a);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        struct alloc_net *an = &a->nets[a->n];
        const Swarm__IPAMConfig *ip = networks[i]->ipam;
        char why[SWARM_ERRMSG_SIZE];
        if (ip == NULL || alloc_cidr_parse(ip->subnet, &an->net, &an->bits, why) != 0 ||
            an->bits < ALLOC_MIN_BITS || an->bits > 30) {
            continue; /* not allocated: nothing can be taken from it */
        }
        uint64_t size = UINT64_C(1) << (32 - an->bits);
        an->nw = networks[i];
        an->lo = an->net + 1;
        an->hi = an->net + (uint32_t)size - 2;
        if (ip->range != NULL && ip->range[0] != '\0') {
            uint32_t rnet;
            unsigned rbits;
            if (alloc_cidr_parse(ip->range, &rnet, &rbits, why) == 0 && rbits >= an->bits &&
                overlaps(rnet, rbits, an->net, an->bits)) {
                uint32_t rlast = rnet + (uint32_t)((UINT64_C(1) << (32 - rbits)) - 1);
                an->lo = rnet > an->lo ? rnet : an->lo;
                an->hi = rlast < an->hi ? rlast : an->hi;
            }
        }
        if (alloc_ip_parse(ip->gateway, &an->gw) != 0) {
            an->gw = an->net + 1;
        }
        an->used = calloc((size_t)(size / 8) + 1, 1);
        if (an->used == NULL) {
            alloc_free(a);
            return NULL;
        }
        a->n++;
    }
    return a;
}

void alloc_free(struct alloc *a)
{
    if (a == NULL) {
        return;
    }
    for (size_t i = 0; i < a->n; i++) {
        free(a->nets[i].used);
    }
    free(a->nets);
    free(a);
}

static struct alloc_net *net_find(const struct alloc *a, const char *id)
{
    for (size_t i = 0; id != NULL && i < a->n; i++) {
        if (strcmp(a->nets[i].nw->id, id) == 0) {
            return &a->nets[i];
        }
    }
    return NULL;
}

const Swarm__Network *alloc_network_get(const struct alloc *a, const char *network_id)
{
    struct alloc_net *an = net_find(a, network_id);
    return an != NULL ? an->nw : NULL;
}

const Swarm__Network *alloc_ingress(const struct alloc *a)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->nets[i].nw->spec != NULL && a->nets[i].nw->spec->ingress) {
            return a->nets[i].nw;
        }
    }
    return NULL;
}

static const char *net_name(const Swarm__Network *nw)
{
    return nw->spec != NULL && nw->spec->annotations != NULL && nw->spec->annotations->name != NULL
               ? nw->spec->annotations->name
               : nw->id;
}

/* The address of "a.b.c.d" or "a.b.c.d/n" inside an's subnet, as an offset. */
static int addr_offset(const struct alloc_net *an, const char *addr, uint32_t *off)
{
    uint32_t ip;
    unsigned bits;
    if (cidr_split(addr, &ip, &bits) != 0 && alloc_ip_parse(addr, &ip) != 0) {
        return SWARM_ENOTFOUND;
    }
    if ((ip & mask_of(an->bits)) != an->net) {
        return SWARM_ENOTFOUND;
    }
    *off = ip - an->net;
    return 0;
}

int alloc_mark(struct alloc *a, const char *network_id, const char *addr)
{
    struct alloc_net *an = net_find(a, network_id);
    uint32_t off;
    if (an == NULL || addr_offset(an, addr, &off) != 0) {
        return SWARM_ENOTFOUND;
    }
    if (an->used[off / 8] & (1u << (off % 8))) {
        a->conflicts++;
        return SWARM_EEXIST;
    }
    an->used[off / 8] |= (uint8_t)(1u << (off % 8));
    return 0;
}

void alloc_release(struct alloc *a, const char *network_id, const char *addr)
{
    struct alloc_net *an = net_find(a, network_id);
    uint32_t off;
    if (an != NULL && addr_offset(an, addr, &off) == 0) {
        an->used[off / 8] &= (uint8_t)~(1u << (off % 8));
    }
}

size_t alloc_conflicts(const struct alloc *a)
{
    return a->conflicts;
}

int alloc_take(struct alloc *a, const char *network_id, char out[ALLOC_CIDR_LEN], char *errmsg)
{
    struct alloc_net *an = net_find(a, network_id);
    if (an == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s not found", network_id != NULL ? network_id : "");
        return SWARM_ENOTFOUND;
    }
    for (uint64_t ip = an->lo; ip <= an->hi; ip++) {
        uint32_t off = (uint32_t)ip - an->net;
        if ((uint32_t)ip == an->gw || (an->used[off / 8] & (1u << (off % 8)))) {
            continue;
        }
        an->used[off / 8] |= (uint8_t)(1u << (off % 8));
        alloc_cidr_format((uint32_t)ip, an->bits, out);
        return 0;
    }
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "no available IP addresses on network %s", net_name(an->nw));
    return SWARM_EUNAVAIL;
}

void alloc_mark_service(struct alloc *a, const Swarm__Service *svc)
{
    if (svc->endpoint == NULL) {
        return;
    }
    for (size_t i = 0; i < svc->endpoint->n_virtual_ips; i++) {
        alloc_mark(a, svc->endpoint->virtual_ips[i]->network_id, svc->endpoint->virtual_ips[i]->addr);
    }
}

static bool task_live(const Swarm__Task *t)
{
    return t->status == NULL || t->status->state <= SWARM__TASK_STATE__TASK_STATE_RUNNING;
}

void alloc_mark_task(struct alloc *a, const Swarm__Task *t)
{
    if (!task_live(t)) {
        return;
    }
    for (size_t i = 0; i < t->n_networks; i++) {
        const Swarm__NetworkAttachment *na = t->networks[i];
        for (size_t j = 0; na->network != NULL && j < na->n_addresses; j++) {
            alloc_mark(a, na->network->id, na->addresses[j]);
        }
    }
}

void alloc_mark_node(struct alloc *a, const Swarm__Node *n)
{
    for (size_t i = 0; i < n->n_attachments; i++) {
        const Swarm__NetworkAttachment *na = n->attachments[i];
        for (size_t j = 0; na->network != NULL && j < na->n_addresses; j++) {
            alloc_mark(a, na->network->id, na->addresses[j]);
        }
    }
}

static Swarm__NetworkAttachment *attachment_new(const Swarm__Network *nw, const char *addr,
                                                const Swarm__NetworkAttachmentConfig *cfg);

int alloc_node_ingress(struct alloc *a, Swarm__Node *n, char *errmsg)
{
    const Swarm__Network *ing = alloc_ingress(a);
    char addr[ALLOC_CIDR_LEN];
    if (ing == NULL) {
        return 0;
    }
    for (size_t i = 0; i < n->n_attachments; i++) {
        if (n->attachments[i]->network != NULL &&
            strcmp(n->attachments[i]->network->id, ing->id) == 0) {
            return 0;
        }
    }
    int rv = alloc_take(a, ing->id, addr, errmsg);
    if (rv != 0) {
        return rv;
    }
    Swarm__NetworkAttachment **grown = realloc(n->attachments, (n->n_attachments + 1) * sizeof *grown);
    Swarm__NetworkAttachment *na = grown != NULL ? attachment_new(ing, addr, NULL) : NULL;
    if (grown != NULL) {
        n->attachments = grown;
    }
    if (na == NULL) {
        alloc_release(a, ing->id, addr);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    n->attachments[n->n_attachments++] = na;
    return 1;
}

bool alloc_publishes_ingress(const Swarm__ServiceSpec *spec)
{
    if (spec == NULL || spec->endpoint == NULL) {
        return false;
    }
    for (size_t i = 0; i < spec->endpoint->n_ports; i++) {
        const char *mode = spec->endpoint->ports[i]->publish_mode;
        if (mode == NULL || mode[0] == '\0' || strcmp(mode, "ingress") == 0) {
            return true;
        }
    }
    return false;
}

bool alloc_task_waits(const Swarm__Task *t)
{
    bool wants = t->spec != NULL && t->spec->n_networks > 0;
    if (!wants && t->endpoint != NULL && t->endpoint->spec != NULL) {
        for (size_t i = 0; i < t->endpoint->spec->n_ports && !wants; i++) {
            const char *mode = t->endpoint->spec->ports[i]->publish_mode;
            wants = mode == NULL || mode[0] == '\0' || strcmp(mode, "ingress") == 0;
        }
    }
    return wants && t->n_networks == 0;
}

/* ---- services ------------------------------------------------------------ */

/* A deep copy through the encoding; NULL when out of memory. */
static void *msg_copy(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    void *copy;
    if (buf == NULL) {
        return NULL;
    }
    protobuf_c_message_pack(m, buf);
    copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
    free(buf);
    return copy;
}


/* The networks a service's tasks attach to, in order, without repeats:
 * its template's, then ingress when it publishes ingress ports. */
static size_t service_networks(const struct alloc *a, const Swarm__ServiceSpec *spec, const char **ids,
                               const Swarm__NetworkAttachmentConfig **cfgs, size_t max)
{
    size_t n = 0;
    const Swarm__Network *ing = alloc_ingress(a);
    const Swarm__TaskSpec *ts = spec != NULL ? spec->task : NULL;
    for (size_t i = 0; ts != NULL && i < ts->n_networks && n < max; i++) {
        bool seen = false;
        for (size_t k = 0; k < n; k++) {
            seen = seen || strcmp(ids[k], ts->networks[i]->target) == 0;
        }
        if (!seen) {
            cfgs[n] = ts->networks[i];
            ids[n++] = ts->networks[i]->target;
        }
    }
    if (ing != NULL && alloc_publishes_ingress(spec) && n < max) {
        bool seen = false;
        for (size_t k = 0; k < n; k++) {
            seen = seen || strcmp(ids[k], ing->id) == 0;
        }
        if (!seen) {
            cfgs[n] = NULL;
            ids[n++] = ing->id;
        }
    }
    return n;
}

#define ALLOC_MAX_NETS 64

static bool vip_mode(const Swarm__ServiceSpec *spec)
{
    const char *mode = spec != NULL && spec->endpoint != NULL ? spec->endpoint->mode : NULL;
    return mode == NULL || mode[0] == '\0' || strcmp(mode, "vip") == 0;
}

static Swarm__EndpointVirtualIP *vip_new(const char *network_id, const char *addr)
{
    Swarm__EndpointVirtualIP *v = calloc(1, sizeof *v);
    if (v == NULL) {
        return NULL;
    }
    swarm__endpoint_virtual_ip__init(v);
    v->network_id = strdup(network_id);
    v->addr = strdup(addr);
    if (v->network_id == NULL || v->addr == NULL) {
        swarm__endpoint_virtual_ip__free_unpacked(v, NULL);
        return NULL;
    }
    return v;
}

static const char *held_vip(const Swarm__Service *svc, const char *network_id)
{
    for (size_t i = 0; svc->endpoint != NULL && i < svc->endpoint->n_virtual_ips; i++) {
        if (strcmp(svc->endpoint->virtual_ips[i]->network_id, network_id) == 0) {
            return svc->endpoint->virtual_ips[i]->addr;
        }
    }
    return NULL;
}

static bool endpoint_equal(const Swarm__Endpoint *a, const Swarm__Endpoint *b)
{
    size_t la, lb;
    uint8_t *ba, *bb;
    bool eq;
    if (a == NULL || b == NULL) {
        return a == b;
    }
    la = swarm__endpoint__get_packed_size(a);
    lb = swarm__endpoint__get_packed_size(b);
    if (la != lb) {
        return false;
    }
    ba = malloc(la + 1);
    bb = malloc(lb + 1);
    if (ba == NULL || bb == NULL) {
        free(ba);
        free(bb);
        return false;
    }
    swarm__endpoint__pack(a, ba);
    swarm__endpoint__pack(b, bb);
    eq = memcmp(ba, bb, la) == 0;
    free(ba);
    free(bb);
    return eq;
}

int alloc_service_endpoint(struct alloc *a, const Swarm__Service *svc, Swarm__Endpoint **out, bool *changed,
                           char *errmsg)
{
    const char *ids[ALLOC_MAX_NETS];
    const Swarm__NetworkAttachmentConfig *cfgs[ALLOC_MAX_NETS];
    char taken[ALLOC_MAX_NETS][ALLOC_CIDR_LEN];
    bool took[ALLOC_MAX_NETS] = {false};
    size_t n = service_networks(a, svc->spec, ids, cfgs, ALLOC_MAX_NETS);
    Swarm__Endpoint *ep = calloc(1, sizeof *ep);
    int rv = SWARM_ENOMEM;

    if (ep == NULL) {
        goto oom;
    }
    swarm__endpoint__init(ep);
    ep->virtual_ips = calloc(n + 1, sizeof *ep->virtual_ips);
    if (ep->virtual_ips == NULL) {
        goto oom;
    }
    if (svc->spec != NULL && svc->spec->endpoint != NULL &&
        (ep->spec = msg_copy(&svc->spec->endpoint->base)) == NULL) {
        goto oom;
    }
    /* The published ports, as the Control API assigned them (ports.h). */
    if (svc->endpoint != NULL && svc->endpoint->n_ports > 0) {
        ep->ports = calloc(svc->endpoint->n_ports, sizeof *ep->ports);
        if (ep->ports == NULL) {
            goto oom;
        }
        for (size_t i = 0; i < svc->endpoint->n_ports; i++) {
            if ((ep->ports[i] = msg_copy(&svc->endpoint->ports[i]->base)) == NULL) {
                goto oom;
            }
            ep->n_ports++;
        }
    }
    for (size_t i = 0; vip_mode(svc->spec) && i < n; i++) {
        const char *addr = held_vip(svc, ids[i]);
        if (addr == NULL) {
            if (alloc_network_get(a, ids[i]) == NULL) {
                continue; /* a network that is gone: no VIP there */
            }
            rv = alloc_take(a, ids[i], taken[i], errmsg);
            if (rv != 0) {
                goto fail;
            }
            took[i] = true;
            addr = taken[i];
        }
        ep->virtual_ips[ep->n_virtual_ips] = vip_new(ids[i], addr);
        if (ep->virtual_ips[ep->n_virtual_ips] == NULL) {
            rv = SWARM_ENOMEM;
            goto oom;
        }
        ep->n_virtual_ips++;
    }
    /* The VIPs it held elsewhere go back. */
    for (size_t i = 0; svc->endpoint != NULL && i < svc->endpoint->n_virtual_ips; i++) {
        bool kept = false;
        for (size_t k = 0; k < ep->n_virtual_ips; k++) {
            kept = kept || strcmp(ep->virtual_ips[k]->network_id, svc->endpoint->virtual_ips[i]->network_id) == 0;
        }
        if (!kept) {
            alloc_release(a, svc->endpoint->virtual_ips[i]->network_id, svc->endpoint->virtual_ips[i]->addr);
        }
    }
    *changed = !endpoint_equal(ep, svc->endpoint);
    *out = ep;
    return 0;
oom:
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
    rv = SWARM_ENOMEM;
fail:
    for (size_t i = 0; i < n; i++) {
        if (took[i]) {
            alloc_release(a, ids[i], taken[i]);
        }
    }
    if (ep != NULL) {
        swarm__endpoint__free_unpacked(ep, NULL);
    }
    return rv;
}

/* ---- tasks --------------------------------------------------------------- */

static Swarm__NetworkAttachment *attachment_new(const Swarm__Network *nw, const char *addr,
                                                const Swarm__NetworkAttachmentConfig *cfg)
{
    Swarm__NetworkAttachment *na = calloc(1, sizeof *na);
    if (na == NULL) {
        return NULL;
    }
    swarm__network_attachment__init(na);
    na->network = msg_copy(&nw->base);
    na->addresses = calloc(1, sizeof *na->addresses);
    size_t n_alias = cfg != NULL ? cfg->n_aliases : 0;
    na->aliases = calloc(n_alias + 1, sizeof *na->aliases);
    if (na->network == NULL || na->addresses == NULL || na->aliases == NULL ||
        (na->addresses[0] = strdup(addr)) == NULL) {
        swarm__network_attachment__free_unpacked(na, NULL);
        return NULL;
    }
    na->n_addresses = 1;
    for (size_t i = 0; i < n_alias; i++) {
        if ((na->aliases[i] = strdup(cfg->aliases[i])) == NULL) {
            swarm__network_attachment__free_unpacked(na, NULL);
            return NULL;
        }
        na->n_aliases++;
    }
    return na;
}

int alloc_task(struct alloc *a, Swarm__Task *t, const Swarm__Service *svc, char *errmsg)
{
    const char *ids[ALLOC_MAX_NETS];
    const Swarm__NetworkAttachmentConfig *cfgs[ALLOC_MAX_NETS];
    char taken[ALLOC_MAX_NETS][ALLOC_CIDR_LEN];
    Swarm__ServiceSpec fake = SWARM__SERVICE_SPEC__INIT;
    const Swarm__ServiceSpec *spec = svc != NULL ? svc->spec : NULL;
    Swarm__NetworkAttachment **atts = NULL;
    Swarm__Endpoint *ep = NULL;
    size_t n, done = 0;
    int rv = SWARM_ENOMEM;

    if (spec == NULL) {
        fake.task = t->spec;
        spec = &fake;
    } else {
        /* The task's own template (it may be an older one than the
         * service's, during an update) with the service's ports. */
        fake = *spec;
        fake.task = t->spec;
        spec = &fake;
    }
    n = service_networks(a, spec, ids, cfgs, ALLOC_MAX_NETS);
    atts = calloc(n + 1, sizeof *atts);
    if (atts == NULL) {
        goto oom;
    }
    for (size_t i = 0; i < n; i++) {
        const Swarm__Network *nw = alloc_network_get(a, ids[i]);
        if (nw == NULL) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s not found", ids[i]);
            rv = SWARM_ENOTFOUND;
            goto fail;
        }
        rv = alloc_take(a, ids[i], taken[i], errmsg);
        if (rv != 0) {
            goto fail;
        }
        done = i + 1;
        atts[i] = attachment_new(nw, taken[i], cfgs[i]);
        if (atts[i] == NULL) {
            goto oom;
        }
    }
    if (svc != NULL && svc->endpoint != NULL && (ep = msg_copy(&svc->endpoint->base)) == NULL) {
        goto oom;
    }
    for (size_t i = 0; i < t->n_networks; i++) {
        swarm__network_attachment__free_unpacked(t->networks[i], NULL);
    }
    free(t->networks);
    t->networks = atts;
    t->n_networks = n;
    if (ep != NULL) {
        if (t->endpoint != NULL) {
            swarm__endpoint__free_unpacked(t->endpoint, NULL);
        }
        t->endpoint = ep;
    }
    return 0;
oom:
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
    rv = SWARM_ENOMEM;
fail:
    for (size_t i = 0; i < done; i++) {
        alloc_release(a, ids[i], taken[i]);
    }
    for (size_t i = 0; atts != NULL && i < n; i++) {
        if (atts[i] != NULL) {
            swarm__network_attachment__free_unpacked(atts[i], NULL);
        }
    }
    free(atts);
    return rv;
}
