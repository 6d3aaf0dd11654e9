#include "hostinfo.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

Swarm__NodeDescription *hostinfo_describe(const char *hostname)
{
    Swarm__NodeDescription *d = calloc(1, sizeof *d);
    Swarm__Platform *p = calloc(1, sizeof *p);
    Swarm__Resources *r = calloc(1, sizeof *r);
    uv_utsname_t uts;
    char host[256];
    size_t hostlen = sizeof host;

    if (d == NULL || p == NULL || r == NULL) {
        free(d);
        free(p);
        free(r);
        return NULL;
    }
    swarm__node_description__init(d);
    swarm__platform__init(p);
    swarm__resources__init(r);

    if (hostname == NULL && uv_os_gethostname(host, &hostlen) == 0) {
        hostname = host;
    }
    d->hostname = dup_or_empty(hostname);
    if (uv_os_uname(&uts) == 0) {
        /* Docker reports the OS lowercase ("linux") and the machine as is. */
        for (char *c = uts.sysname; *c; c++) {
            if (*c >= 'A' && *c <= 'Z') {
                *c = (char)(*c - 'A' + 'a');
            }
        }
        p->os = dup_or_empty(uts.sysname);
        p->architecture = dup_or_empty(uts.machine);
    } else {
        p->os = dup_or_empty("linux");
        p->architecture = dup_or_empty("");
    }
    r->nano_cpus = (int64_t)uv_available_parallelism() * 1000000000LL;
    r->memory_bytes = (int64_t)uv_get_total_memory();
    d->platform = p;
    d->resources = r;
    d->engine_version = dup_or_empty(SWARM_VERSION);
    if (d->hostname == NULL || p->os == NULL || p->architecture == NULL ||
        d->engine_version == NULL) {
        swarm__node_description__free_unpacked(d, NULL);
        return NULL;
    }
    return d;
}
