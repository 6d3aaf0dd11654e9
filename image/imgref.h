/* Image references, normalised as Docker does (pure, no I/O).
 *
 *   busybox                    -> docker.io/library/busybox:latest
 *   user/app:1                 -> docker.io/user/app:1
 *   127.0.0.1:5000/busybox:1   -> registry 127.0.0.1:5000, repo busybox
 *   localhost/x@sha256:HEX     -> registry localhost, repo x, digest
 *
 * The first path component is a registry when it holds a '.' or a ':', is
 * "localhost", or has an upper-case letter (Docker's splitDockerDomain);
 * otherwise the registry is docker.io (whose API host is
 * registry-1.docker.io). No tag and no digest means tag "latest". */
#ifndef SWARM_IMAGE_IMGREF_H
#define SWARM_IMAGE_IMGREF_H

#include <stdbool.h>
#include <stddef.h>

#define IMGREF_DEFAULT_DOMAIN "docker.io"
#define IMGREF_DIGEST_SIZE 72 /* "sha256:" + 64 hex + NUL, rounded */

struct imgref {
    char *domain; /* "docker.io", "127.0.0.1:5000" */
    char *path;   /* "library/busybox" */
    char *tag;    /* NULL when only a digest was given */
    char *digest; /* "sha256:HEX" or NULL */
};

/* Parse and normalise `s`. Errors (SWARM_EINVAL) carry Docker's message:
 * "invalid reference format" (and ": repository name must be lowercase").
 * out is the caller's (imgref_free), untouched on error. */
int imgref_parse(const char *s, struct imgref *out, char *errmsg);
void imgref_free(struct imgref *r);

/* "domain/path[:tag][@digest]" into buf (size bytes); returns the length
 * that was needed (like snprintf). */
size_t imgref_format(const struct imgref *r, char *buf, size_t size);

/* Docker's familiar form: "busybox:1@sha256:..." for
 * docker.io/library/busybox, "user/app:1" for docker.io/user/app, others
 * in full. */
size_t imgref_format_familiar(const struct imgref *r, char *buf, size_t size);

/* "domain/path" (the name without tag and digest). */
size_t imgref_format_name(const struct imgref *r, char *buf, size_t size);

/* The host to speak the API to: registry-1.docker.io for docker.io. */
const char *imgref_api_host(const struct imgref *r);

/* A digest as the store accepts it: "sha256:" and 64 lower-case hex. */
bool imgref_digest_valid(const char *digest);

/* Is `domain` in the insecure list? An entry matches HOST:PORT exactly, or
 * the host alone when the entry has no port. */
bool imgref_registry_insecure(const char *domain, const char *const *insecure,
                              size_t n_insecure);

#endif
