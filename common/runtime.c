#include "runtime.h"

#include <string.h>

bool runtime_is_known(const char *name)
{
    return name != NULL &&
           (strcmp(name, RUNTIME_PROCESS) == 0 || strcmp(name, RUNTIME_CONTAINER) == 0);
}

const char *runtime_of_image(const char *image)
{
    if (image == NULL || image[0] == '\0' || image[0] == '/' || image[0] == '.') {
        return RUNTIME_PROCESS; /* a path: /bin/sleep, ./prog, ../prog */
    }
    if (strchr(image, '@') != NULL) {
        return RUNTIME_CONTAINER; /* a digest */
    }
    if (strchr(image, '/') != NULL) {
        /* A registry host (127.0.0.1:5000/x, localhost/x, quay.io/x) or a
         * Docker Hub namespace (library/nginx): an image either way. */
        return RUNTIME_CONTAINER;
    }
    return strchr(image, ':') != NULL ? RUNTIME_CONTAINER : RUNTIME_PROCESS;
}

const char *runtime_resolve(const char *requested, const char *image)
{
    if (runtime_is_known(requested)) {
        return strcmp(requested, RUNTIME_PROCESS) == 0 ? RUNTIME_PROCESS : RUNTIME_CONTAINER;
    }
    return runtime_of_image(image);
}
