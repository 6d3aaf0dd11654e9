/* Network maps and DNS messages for the DNS tests (test_dnstable.c,
 * test_dnsd.c): a map built in place from string literals, and queries and
 * answers built and read with ldns. */
#ifndef SWARM_TEST_DNSFIX_H
#define SWARM_TEST_DNSFIX_H

#include <ldns/ldns.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatcher.pb-c.h"

#define DNSFIX_MAX 128

struct dnsfix_map {
    Swarm__NetworkMap map;
    Swarm__Network net;
    Swarm__NetworkSpec spec;
    Swarm__Annotations ann;
    Swarm__NetworkEndpoint eps[DNSFIX_MAX];
    Swarm__NetworkEndpoint *epp[DNSFIX_MAX];
    Swarm__NetworkServiceEntry svcs[8];
    Swarm__NetworkServiceEntry *svcp[8];
};

void dnsfix_map_init(struct dnsfix_map *m, const char *id, const char *name);
/* A task on the network (aliases: the service's, NULL-terminated or NULL). */
void dnsfix_map_task(struct dnsfix_map *m, const char *task_id, const char *task_name,
                     const char *service_id, const char *addr, bool ready,
                     char **aliases);
/* A service entry: mode "vip" or "dnsrr"; aliases NULL-terminated or NULL. */
void dnsfix_map_service(struct dnsfix_map *m, const char *service_id, const char *name,
                        const char *mode, const char *vip, char **aliases);

/* A query for NAME/TYPE with ID `id`, as wire bytes (malloc'd). `edns`: with
 * an OPT record of that UDP size (0: none). */
uint8_t *dnsfix_query(const char *name, ldns_rr_type type, uint16_t id,
                      uint16_t edns, size_t *len);

/* Parse an answer; NULL if it is not a DNS message. */
ldns_pkt *dnsfix_parse(const uint8_t *wire, size_t len);
/* The addresses of the answer section, as "a.b.c.d" sorted, joined by ","
 * into buf (size bytes). */
void dnsfix_answer_addrs(const ldns_pkt *p, char *buf, size_t size);

#endif
