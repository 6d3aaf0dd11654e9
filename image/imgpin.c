/* Pinning a service's image (imgpin.h). */
#include "imgpin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "imgref.h"

static bool has_digest(const char *image)
{
    return strchr(image, '@') != NULL;
}

int imgpin_mode_parse(const char *s)
{
    if (s == NULL || s[0] == '\0' || strcmp(s, "always") == 0) {
        return IMGPIN_ALWAYS;
    }
    if (strcmp(s, "changed") == 0) {
        return IMGPIN_CHANGED;
    }
    if (strcmp(s, "never") == 0) {
        return IMGPIN_NEVER;
    }
    return -1;
}

bool imgpin_plan(enum imgpin_mode mode, const char *prev_image, uint64_t prev_force,
                 const char *image, uint64_t force, char *resolve, size_t size)
{
    bool changed = prev_image == NULL || strcmp(prev_image, image) != 0;
    if (mode == IMGPIN_NEVER) {
        return false;
    }
    if (changed) {
        if (has_digest(image)) {
            return false; /* the user pinned it */
        }
        snprintf(resolve, size, "%s", image);
        return true;
    }
    if (force == prev_force || mode == IMGPIN_CHANGED) {
        return false;
    }
    /* --force: resolve the tag behind the stored pin again; a pin by
     * digest alone (name@sha256:...) has no tag to follow. */
    struct imgref r;
    char errmsg[SWARM_ERRMSG_SIZE];
    if (imgref_parse(image, &r, errmsg) != 0) {
        return false;
    }
    bool follow = r.tag != NULL;
    imgref_free(&r);
    if (!follow) {
        return false;
    }
    const char *at = strchr(image, '@');
    snprintf(resolve, size, "%.*s", at ? (int)(at - image) : (int)strlen(image), image);
    return true;
}

int imgpin_format(const char *resolved_ref, const char *digest, char *out, size_t size)
{
    struct imgref r;
    char errmsg[SWARM_ERRMSG_SIZE];
    if (!imgref_digest_valid(digest) || imgref_parse(resolved_ref, &r, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    free(r.digest);
    r.digest = (char *)digest;
    imgref_format_familiar(&r, out, size);
    r.digest = NULL;
    imgref_free(&r);
    return 0;
}
