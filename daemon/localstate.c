/* See localstate.h. */
#include "localstate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "err.h"
#include "pki.h"
#include "statedir.h"

int localstate_save(const char *dir, const Swarm__LocalState *ls, char *errmsg)
{
    char path[PATH_MAX];
    size_t len = swarm__local_state__get_packed_size(ls);
    uint8_t *buf = malloc(len ? len : 1);
    int rv;
    if (buf == NULL) {
        return SWARM_ENOMEM;
    }
    swarm__local_state__pack(ls, buf);
    snprintf(path, sizeof path, "%s/%s", dir, STATEDIR_NODE_STATE);
    rv = pki_write_file(path, buf, len, 0600, errmsg);
    free(buf);
    return rv;
}

int localstate_load(const char *dir, Swarm__LocalState **out, char *errmsg)
{
    char path[PATH_MAX];
    char *data = NULL;
    size_t len = 0;
    int rv;
    *out = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, STATEDIR_NODE_STATE);
    rv = pki_read_file(path, &data, &len, errmsg);
    if (rv == SWARM_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    *out = swarm__local_state__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (*out == NULL || (*out)->node_id[0] == '\0') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s is corrupt", path);
        if (*out != NULL) {
            swarm__local_state__free_unpacked(*out, NULL);
            *out = NULL;
        }
        return SWARM_ECORRUPT;
    }
    return 0;
}
