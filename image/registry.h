/* A blocking registry v2 (OCI distribution) client on libcurl, for work
 * threads and swarmctl: manifests by tag or digest, blobs to files with
 * their sha256 checked, the bearer-token flow and basic auth. TLS is
 * verified against the system's CAs; plain HTTP only for a registry in the
 * insecure list. */
#ifndef SWARM_IMAGE_REGISTRY_H
#define SWARM_IMAGE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "imgref.h"

struct registry_client {
    const struct imgref *ref;
    char *username; /* NULL: anonymous */
    char *password;
    char *token;    /* bearer token once obtained */
    bool insecure;
    char base[512]; /* "https://host:port" */
    void *curl;     /* CURL *, reused across requests (keep-alive) */
};

/* Prepare a client for ref's registry (ref must outlive the client). */
int registry_client_init(struct registry_client *c, const struct imgref *ref,
                         const char *registry_auth,
                         const char *const *insecure, size_t n_insecure,
                         char *errmsg);
void registry_client_free(struct registry_client *c);

/* GET the manifest `reference` (a tag or a digest). *body (malloc'd,
 * NUL-terminated), *len, content_type (128 bytes) and digest (72 bytes:
 * the sha256 of the body, checked against Docker-Content-Digest and, when
 * `reference` is a digest, against it). */
int registry_get_manifest(struct registry_client *c, const char *reference,
                          char **body, size_t *len, char *content_type,
                          char *digest, char *errmsg);

/* GET blob `digest` into the file `path` (created 0600, replaced),
 * checking its sha256 (SWARM_ECORRUPT and the file removed on mismatch). */
int registry_get_blob(struct registry_client *c, const char *digest,
                      const char *path, char *errmsg);

/* GET /v2/ (the login check). */
int registry_ping(struct registry_client *c, char *errmsg);

#endif
