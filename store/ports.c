/* Published ports of services: conflicts and dynamic assignment (ports.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pbcopy.h"
#include "ports.h"

const char *ports_protocol(const Swarm__PortConfig *p)
{
    return p->protocol != NULL && p->protocol[0] != '\0' ? p->protocol : "tcp";
}

bool ports_is_ingress(const Swarm__PortConfig *p)
{
    return p->publish_mode == NULL || p->publish_mode[0] == '\0' ||
           strcmp(p->publish_mode, "ingress") == 0;
}

Swarm__PortConfig *const *ports_of_service(const Swarm__Service *svc, size_t *n)
{
    if (svc->endpoint != NULL && svc->endpoint->n_ports > 0) {
        *n = svc->endpoint->n_ports;
        return svc->endpoint->ports;
    }
    if (svc->spec != NULL && svc->spec->endpoint != NULL) {
        *n = svc->spec->endpoint->n_ports;
        return svc->spec->endpoint->ports;
    }
    *n = 0;
    return NULL;
}

static bool same_port(const Swarm__PortConfig *a, const Swarm__PortConfig *b)
{
    return a->published_port != 0 && a->published_port == b->published_port &&
           strcmp(ports_protocol(a), ports_protocol(b)) == 0;
}

static const char *svc_name(const Swarm__Service *s)
{
    return s->spec != NULL && s->spec->annotations != NULL && s->spec->annotations->name != NULL
               ? s->spec->annotations->name
               : "";
}

int ports_check_conflicts(Swarm__PortConfig *const *ports, size_t n, const char *self_id,
                          Swarm__Service *const *others, size_t n_others, char *errmsg)
{
    for (size_t k = 0; k < n_others; k++) {
        const Swarm__Service *o = others[k];
        if (self_id != NULL && self_id[0] != '\0' && strcmp(o->id, self_id) == 0) {
            continue;
        }
        /* Both what it asks for and what it was given. */
        const Swarm__PortConfig *const *lists[2] = {NULL, NULL};
        size_t counts[2] = {0, 0};
        if (o->spec != NULL && o->spec->endpoint != NULL) {
            lists[0] = (const Swarm__PortConfig *const *)o->spec->endpoint->ports;
            counts[0] = o->spec->endpoint->n_ports;
        }
        if (o->endpoint != NULL) {
            lists[1] = (const Swarm__PortConfig *const *)o->endpoint->ports;
            counts[1] = o->endpoint->n_ports;
        }
        for (size_t i = 0; i < n; i++) {
            for (int l = 0; l < 2; l++) {
                for (size_t j = 0; j < counts[l]; j++) {
                    const Swarm__PortConfig *op = lists[l][j];
                    if (!same_port(ports[i], op) ||
                        (!ports_is_ingress(ports[i]) && !ports_is_ingress(op))) {
                        continue;
                    }
                    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                                  "port '%u' is already in use by service '%s' (%s)%s",
                                  ports[i]->published_port, svc_name(o), o->id,
                                  ports_is_ingress(op) ? " as an ingress port" : "");
                    return SWARM_EEXIST;
                }
            }
        }
    }
    return 0;
}

static void mark(uint8_t *used, uint32_t port)
{
    if (port >= PORTS_DYNAMIC_FIRST && port <= PORTS_DYNAMIC_LAST) {
        uint32_t off = port - PORTS_DYNAMIC_FIRST;
        used[off / 8] |= (uint8_t)(1u << (off % 8));
    }
}

static bool marked(const uint8_t *used, uint32_t port)
{
    uint32_t off = port - PORTS_DYNAMIC_FIRST;
    return (used[off / 8] & (1u << (off % 8))) != 0;
}

static void mark_list(uint8_t *used, Swarm__PortConfig *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mark(used, l[i]->published_port);
    }
}

static bool same_slot(const Swarm__PortConfig *a, const Swarm__PortConfig *b)
{
    return a->target_port == b->target_port &&
           strcmp(ports_protocol(a), ports_protocol(b)) == 0 &&
           ports_is_ingress(a) == ports_is_ingress(b);
}

void ports_free(Swarm__PortConfig **ports, size_t n)
{
    for (size_t i = 0; ports != NULL && i < n; i++) {
        if (ports[i] != NULL) {
            swarm__port_config__free_unpacked(ports[i], NULL);
        }
    }
    free(ports);
}

int ports_assign(const Swarm__EndpointSpec *spec, const Swarm__Endpoint *prev, const char *self_id,
                 Swarm__Service *const *others, size_t n_others, Swarm__PortConfig ***out,
                 size_t *n_out, char *errmsg)
{
    enum { RANGE = PORTS_DYNAMIC_LAST - PORTS_DYNAMIC_FIRST + 1 };
    uint8_t used[(RANGE + 7) / 8];
    size_t n = spec != NULL ? spec->n_ports : 0;
    Swarm__PortConfig **res = NULL;
    bool *kept = NULL;

    *out = NULL;
    *n_out = 0;
    if (n == 0) {
        return 0;
    }
    memset(used, 0, sizeof used);
    for (size_t k = 0; k < n_others; k++) {
        const Swarm__Service *o = others[k];
        if (self_id != NULL && self_id[0] != '\0' && strcmp(o->id, self_id) == 0) {
            continue;
        }
        if (o->spec != NULL && o->spec->endpoint != NULL) {
            mark_list(used, o->spec->endpoint->ports, o->spec->endpoint->n_ports);
        }
        if (o->endpoint != NULL) {
            mark_list(used, o->endpoint->ports, o->endpoint->n_ports);
        }
    }
    mark_list(used, spec->ports, n);
    res = calloc(n, sizeof *res);
    kept = calloc(prev != NULL ? prev->n_ports + 1 : 1, sizeof *kept);
    if (res == NULL || kept == NULL) {
        goto oom;
    }
    for (size_t i = 0; i < n; i++) {
        if ((res[i] = pb_copy(&spec->ports[i]->base)) == NULL) {
            goto oom;
        }
    }
    /* First what the service had: each previous dynamic port goes back to
     * the same target/protocol/mode, once. */
    for (size_t i = 0; i < n; i++) {
        if (res[i]->published_port != 0) {
            continue;
        }
        for (size_t j = 0; prev != NULL && j < prev->n_ports; j++) {
            const Swarm__PortConfig *pp = prev->ports[j];
            if (kept[j] || !same_slot(res[i], pp) || pp->published_port < PORTS_DYNAMIC_FIRST ||
                pp->published_port > PORTS_DYNAMIC_LAST || marked(used, pp->published_port)) {
                continue;
            }
            kept[j] = true;
            res[i]->published_port = pp->published_port;
            mark(used, pp->published_port);
            break;
        }
    }
    uint32_t next = PORTS_DYNAMIC_FIRST;
    for (size_t i = 0; i < n; i++) {
        if (res[i]->published_port != 0) {
            continue;
        }
        while (next <= PORTS_DYNAMIC_LAST && marked(used, next)) {
            next++;
        }
        if (next > PORTS_DYNAMIC_LAST) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "no available port in the range %d-%d to publish target port %u",
                          PORTS_DYNAMIC_FIRST, PORTS_DYNAMIC_LAST, res[i]->target_port);
            ports_free(res, n);
            free(kept);
            return SWARM_EUNAVAIL;
        }
        res[i]->published_port = next;
        mark(used, next);
    }
    free(kept);
    *out = res;
    *n_out = n;
    return 0;
oom:
    ports_free(res, n);
    free(kept);
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
    return SWARM_ENOMEM;
}
