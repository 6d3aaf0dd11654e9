#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

int addr_parse(const char *in, int default_port, const char *what, char *out, char *errmsg)
{
    char ip[ADDR_STRLEN];
    struct in_addr a;
    const char *colon;
    long port = default_port;

    if (in == NULL || in[0] == '\0' || strlen(in) >= ADDR_STRLEN) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid %s: empty or too long", what);
        return SWARM_EINVAL;
    }
    colon = strchr(in, ':');
    if (colon != NULL) {
        char *end;
        memcpy(ip, in, (size_t)(colon - in));
        ip[colon - in] = '\0';
        port = strtol(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "invalid %s \"%s\": port must be a number from 1 to 65535", what, in);
            return SWARM_EINVAL;
        }
    } else {
        snprintf(ip, sizeof ip, "%s", in);
    }
    if (inet_pton(AF_INET, ip, &a) != 1) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "invalid %s \"%s\": must be an IPv4 address, optionally with :PORT", what,
                      in);
        return SWARM_EINVAL;
    }
    snprintf(out, ADDR_STRLEN, "%s:%ld", ip, port);
    return 0;
}

int addr_split(const char *addr, char *ip, int *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= ADDR_STRLEN) {
        return SWARM_EINVAL;
    }
    memcpy(ip, addr, (size_t)(colon - addr));
    ip[colon - addr] = '\0';
    *port = atoi(colon + 1);
    return 0;
}

int addr_is_unspecified(const char *ip)
{
    return strcmp(ip, "0.0.0.0") == 0;
}
