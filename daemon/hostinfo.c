#include "hostinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "runtime.h"

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

int hostinfo_find_runc(char *out, size_t size)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s:/usr/sbin:/usr/bin:/sbin:/bin", path != NULL ? path : "");
    char *save = NULL;
    for (char *dir = strtok_r(buf, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        struct stat st;
        if (dir[0] != '/') {
            continue;
        }
        snprintf(out, size, "%s/runc", dir);
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0) {
            return 0;
        }
    }
    out[0] = '\0';
    return -1;
}

bool hostinfo_container_runtime(char *runc, size_t size)
{
    const char *off = getenv(HOSTINFO_NO_CONTAINERS_ENV);
    if ((off != NULL && off[0] != '\0' && strcmp(off, "0") != 0) || geteuid() != 0) {
        if (size > 0) {
            runc[0] = '\0';
        }
        return false;
    }
    return hostinfo_find_runc(runc, size) == 0;
}

static int hostinfo_runtimes(Swarm__NodeDescription *d)
{
    char runc[4096];
    d->runtimes = calloc(2, sizeof *d->runtimes);
    if (d->runtimes == NULL || (d->runtimes[0] = strdup(RUNTIME_PROCESS)) == NULL) {
        return -1;
    }
    d->n_runtimes = 1;
    if (hostinfo_container_runtime(runc, sizeof runc)) {
        if ((d->runtimes[1] = strdup(RUNTIME_CONTAINER)) == NULL) {
            return -1;
        }
        d->n_runtimes = 2;
    }
    return 0;
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
        d->engine_version == NULL || hostinfo_runtimes(d) != 0) {
        swarm__node_description__free_unpacked(d, NULL);
        return NULL;
    }
    return d;
}
