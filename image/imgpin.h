/* Pinning a service's image to a digest (pure): what the manager resolves
 * at service create/update, and the pinned text it stores, as Docker's
 * daemon does (QueryRegistry, imageWithDigestString).
 *
 * Create: a container image without a digest is resolved.
 * Update: resolved again when the image changed (service update --image)
 *   or the task spec's force_update moved (--force: the tag may have
 *   moved); then a pinned "name:tag@sha256:..." is resolved by its tag.
 *   Otherwise the stored image stays as it is.
 * An image given with a digest by the user is kept as given. */
#ifndef SWARM_IMAGE_IMGPIN_H
#define SWARM_IMAGE_IMGPIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Docker's --resolve-image. */
enum imgpin_mode { IMGPIN_ALWAYS = 0, IMGPIN_CHANGED, IMGPIN_NEVER };

/* "always" (or "" or NULL), "changed", "never"; -1 for anything else
 * (Docker: "Invalid option X for flag --resolve-image"). */
int imgpin_mode_parse(const char *s);

/* Whether to resolve; `resolve` (size bytes) receives the reference to ask
 * the registry for. prev_image NULL: a create. IMGPIN_CHANGED does not
 * follow --force; IMGPIN_NEVER never resolves. */
bool imgpin_plan(enum imgpin_mode mode, const char *prev_image, uint64_t prev_force,
                 const char *image, uint64_t force, char *resolve, size_t size);

/* "REF@DIGEST" in Docker's familiar form ("busybox:latest@sha256:..."),
 * from the reference that was resolved. 0, or SWARM_EINVAL. */
int imgpin_format(const char *resolved_ref, const char *digest, char *out, size_t size);

/* Docker's warning when a registry could not be reached at create/update. */
#define IMGPIN_WARNING_FMT                                                    \
    "image %s could not be accessed on a registry to record\n"               \
    "its digest. Each node will access %s independently,\n"                  \
    "possibly leading to different nodes running different\n"                \
    "versions of the image.\n"

#endif
