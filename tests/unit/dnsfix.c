/* Network maps and DNS messages for the DNS tests (see dnsfix.h). */
#include "dnsfix.h"

#include <stdlib.h>
#include <string.h>

static size_t count_strs(char **v)
{
    size_t n = 0;

    while (v != NULL && v[n] != NULL) {
        n++;
    }
    return n;
}

void dnsfix_map_init(struct dnsfix_map *m, const char *id, const char *name)
{
    static const Swarm__NetworkMap map0 = SWARM__NETWORK_MAP__INIT;
    static const Swarm__Network net0 = SWARM__NETWORK__INIT;
    static const Swarm__NetworkSpec spec0 = SWARM__NETWORK_SPEC__INIT;
    static const Swarm__Annotations ann0 = SWARM__ANNOTATIONS__INIT;

    memset(m, 0, sizeof *m);
    m->map = map0;
    m->net = net0;
    m->spec = spec0;
    m->ann = ann0;
    m->ann.name = (char *)name;
    m->spec.annotations = &m->ann;
    m->net.id = (char *)id;
    m->net.spec = &m->spec;
    m->map.network = &m->net;
    m->map.endpoints = m->epp;
    m->map.services = m->svcp;
}

void dnsfix_map_task(struct dnsfix_map *m, const char *task_id, const char *task_name,
                     const char *service_id, const char *addr, bool ready,
                     char **aliases)
{
    static const Swarm__NetworkEndpoint ep0 = SWARM__NETWORK_ENDPOINT__INIT;
    Swarm__NetworkEndpoint *ep = &m->eps[m->map.n_endpoints];

    *ep = ep0;
    ep->task_id = (char *)task_id;
    ep->task_name = (char *)task_name;
    ep->service_id = (char *)service_id;
    ep->addr = (char *)addr;
    ep->ready = ready;
    ep->aliases = aliases;
    ep->n_aliases = count_strs(aliases);
    m->epp[m->map.n_endpoints++] = ep;
}

void dnsfix_map_service(struct dnsfix_map *m, const char *service_id, const char *name,
                        const char *mode, const char *vip, char **aliases)
{
    static const Swarm__NetworkServiceEntry s0 = SWARM__NETWORK_SERVICE_ENTRY__INIT;
    Swarm__NetworkServiceEntry *s = &m->svcs[m->map.n_services];

    *s = s0;
    s->service_id = (char *)service_id;
    s->name = (char *)name;
    s->endpoint_mode = (char *)mode;
    s->vip = (char *)vip;
    s->aliases = aliases;
    s->n_aliases = count_strs(aliases);
    m->svcp[m->map.n_services++] = s;
}

uint8_t *dnsfix_query(const char *name, ldns_rr_type type, uint16_t id,
                      uint16_t edns, size_t *len)
{
    ldns_rdf *dname = ldns_dname_new_frm_str(name);
    ldns_pkt *q = ldns_pkt_query_new(dname, type, LDNS_RR_CLASS_IN, LDNS_RD);
    uint8_t *wire = NULL;

    ldns_pkt_set_id(q, id);
    if (edns != 0) {
        ldns_pkt_set_edns_udp_size(q, edns);
    }
    if (ldns_pkt2wire(&wire, q, len) != LDNS_STATUS_OK) {
        wire = NULL;
    }
    ldns_pkt_free(q);
    return wire;
}

ldns_pkt *dnsfix_parse(const uint8_t *wire, size_t len)
{
    ldns_pkt *p = NULL;

    if (ldns_wire2pkt(&p, wire, len) != LDNS_STATUS_OK) {
        return NULL;
    }
    return p;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void dnsfix_answer_addrs(const ldns_pkt *p, char *buf, size_t size)
{
    ldns_rr_list *an = ldns_pkt_answer(p);
    size_t n = ldns_rr_list_rr_count(an), used = 0;
    char **strs = calloc(n + 1, sizeof *strs);

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strs[i] = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(an, i), 0));
    }
    qsort(strs, n, sizeof *strs, str_cmp);
    for (size_t i = 0; i < n; i++) {
        used += (size_t)snprintf(buf + used, size > used ? size - used : 0, "%s%s",
                                 i > 0 ? "," : "", strs[i]);
        free(strs[i]);
    }
    free(strs);
}
