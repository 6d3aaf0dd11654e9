/* The runtime rule: which runtime a service's IMAGE means, decided once by
 * the manager at create/update time (TaskSpec.runtime) and by nobody else.
 *
 *   --runtime process|container        wins;
 *   NAME@sha256:...  (a digest)         container;
 *   NAME:TAG         (a tag)            container;
 *   HOST[:PORT]/...  (a registry host:  container;
 *     the first component holds '.' or ':' or is "localhost")
 *   ORG/NAME         (Docker Hub repo)  container;
 *   /abs/path, ./rel, ../rel            process;
 *   a bare word      (sleep, nginx)     process: a program looked up in the
 *                                       node's PATH, as swarmd always did.
 * A Docker Hub image by its bare name needs a tag (`nginx:latest`) or
 * `--runtime container`. Pure. */
#ifndef SWARM_COMMON_RUNTIME_H
#define SWARM_COMMON_RUNTIME_H

#include <stdbool.h>

#define RUNTIME_PROCESS "process"
#define RUNTIME_CONTAINER "container"

/* Whether `name` is a runtime a spec may ask for ("process" or "container"). */
bool runtime_is_known(const char *name);

/* The runtime `image` means when no runtime was asked for (see above):
 * RUNTIME_PROCESS or RUNTIME_CONTAINER (static strings). */
const char *runtime_of_image(const char *image);

/* The runtime a spec's `requested` runtime ("" or NULL: by the rule) and
 * `image` give; "" means "process" (older specs). */
const char *runtime_resolve(const char *requested, const char *image);

#endif
