/* Registry documents, pure (no I/O): manifests, manifest lists/indexes,
 * the node's platform choice, image configs, WWW-Authenticate challenges
 * and Docker's encoded registry auth. Parsed with jansson. */
#ifndef SWARM_IMAGE_MANIFEST_H
#define SWARM_IMAGE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
/* The Accept header of every manifest request. */
#define MANIFEST_ACCEPT                                                     \
    "Accept: " MT_DOCKER_MANIFEST ", " MT_DOCKER_LIST ", " MT_OCI_MANIFEST \
    ", " MT_OCI_INDEX

enum manifest_kind { MANIFEST_IMAGE = 1, MANIFEST_INDEX = 2 };

struct manifest_desc {
    char *media_type;
    char digest[72];
    int64_t size;
    char *os;      /* index entries only */
    char *arch;
    char *variant;
};

struct manifest {
    enum manifest_kind kind;
    struct manifest_desc config;   /* MANIFEST_IMAGE */
    struct manifest_desc *entries; /* layers (image) or manifests (index) */
    size_t n_entries;
};

/* Parse a manifest body. content_type (the response's Content-Type, may be
 * NULL) or the body's mediaType says which kind; a body with "manifests"
 * is an index. Schema 1 manifests are refused (as Docker 20.10+ does for
 * pushes; pulls of them are deprecated). */
int manifest_parse(const char *body, size_t len, const char *content_type,
                   struct manifest *out, char *errmsg);
void manifest_free(struct manifest *m);

/* The entry of an index for os/arch (variant ignored unless given both in
 * the entry and `variant`); -1 when none (Docker's "no matching manifest
 * for linux/ARCH in the manifest list entries"). */
int manifest_pick_platform(const struct manifest *idx, const char *os,
                           const char *arch, const char *variant);

/* This host's architecture in GOARCH words ("amd64", "arm64"...). */
const char *manifest_host_arch(void);

/* The image config JSON into info's config fields, os, arch and diff_ids
 * (info's digests and name are the caller's). */
int imgconfig_parse(const char *body, size_t len, struct image_info *info,
                    char *errmsg);

/* A WWW-Authenticate challenge: scheme "Bearer" or "Basic" and its
 * realm/service/scope parameters (NULL when absent). */
struct auth_challenge {
    char *scheme;
    char *realm;
    char *service;
    char *scope;
};
int auth_challenge_parse(const char *header, struct auth_challenge *out,
                         char *errmsg);
void auth_challenge_free(struct auth_challenge *c);

/* Docker's encoded AuthConfig (base64 or base64url of
 * {"username":..,"password":..,"serveraddress":..}, or {"auth":"b64(u:p)"})
 * into username and password (malloc'd). An empty input gives NULLs. */
int registry_auth_decode(const char *encoded, char **username,
                         char **password, char *errmsg);

/* The reverse: base64url of {"username","password","serveraddress"}. */
char *registry_auth_encode(const char *username, const char *password,
                           const char *serveraddress);

/* A token endpoint's answer: {"token":..} or {"access_token":..}. */
int auth_token_parse(const char *body, size_t len, char **token,
                     char *errmsg);

#endif
