/* OCI images on a node: pull from a registry (OCI distribution API v2),
 * a content-addressed store shared by every task on the node, layers
 * unpacked for overlayfs, one overlayfs snapshot per task, prune.
 *
 * Threads. Everything here is called on the loop's thread; a pull runs its
 * network and disk work on a libuv work thread (uv_queue_work) and calls
 * back on the loop, so the agent's loop never blocks on a registry.
 * Snapshot create/remove, prune and cleanup are short local file-system
 * work (mount, mkdir, unlink of a few dirs) done synchronously.
 *
 * Layout of the store's dir (`dir` given to imgstore_open, the node uses
 * STATE_DIR/images):
 *   blobs/sha256/HEX        manifests, configs and layer blobs, by digest
 *   layers/sha256/HEX/      a layer unpacked, by diff ID (uncompressed digest)
 *   images/HEX.json         one record per image, by the digest the user pinned
 *                           (a manifest list's/index's digest when it was one)
 *   snapshots/ID/           a task's snapshot: upper/ work/ rootfs/ and
 *                           `image` (the digest it was made from)
 *   tmp/                    downloads and unpacks in progress; a file or dir
 *                           becomes visible only by rename(2) once complete
 *                           and verified, so concurrent pulls (even from two
 *                           processes) never see half a blob or half a layer.
 *
 * Errors: 0 or a negative SWARM_E* code (common/err.h), with a message in
 * errmsg (SWARM_ERRMSG_SIZE bytes) worded as Docker's where Docker has one:
 *   SWARM_ENOTFOUND  "No such image: REF" (the registry has no such
 *                    repository, tag or digest)
 *   SWARM_EPERM      the registry refused the credentials
 *   SWARM_EUNAVAIL   the registry cannot be reached (a task retries)
 *   SWARM_ECORRUPT   a blob or layer did not match its digest (refused)
 *   SWARM_EINVAL     a malformed reference, manifest or config
 *   SWARM_EIO        the local file system failed */
#ifndef SWARM_IMAGE_IMAGE_H
#define SWARM_IMAGE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "imgref.h"

struct imgstore;
struct imgstore_pull_req;

/* The node's auto-prune age (Docker has none; a day keeps an image across
 * a service's restarts and updates). */
#define IMGSTORE_PRUNE_AFTER_DEFAULT_S (24 * 3600)

struct imgstore_opts {
    /* "HOST:PORT" (or "HOST") of registries spoken to over plain HTTP
     * (swarmd --insecure-registry, repeatable); every other registry is
     * HTTPS verified against the system's CAs. Copied by imgstore_open. */
    const char *const *insecure_registries;
    size_t n_insecure_registries;
    /* Images no snapshot has used for this long are pruned by a timer
     * (Docker's `image prune -a --filter until=...`), checked every tenth
     * of it (1 s to 1 h); 0: IMGSTORE_PRUNE_AFTER_DEFAULT_S; < 0: never. */
    int64_t prune_after_s;
    /* The platform picked from a manifest list: "amd64", "arm64"...
     * (GOARCH names); NULL: this host's. */
    const char *arch;
};

/* A health check from the image config (Docker's Healthcheck): test is
 * ["NONE"], ["CMD", args...] or ["CMD-SHELL", command]. Durations in ns;
 * 0 means "not set, use the default". */
struct image_health {
    char **test;
    size_t n_test;
    int64_t interval_ns;
    int64_t timeout_ns;
    int64_t start_period_ns;
    int retries;
};

/* What a pulled image is: where it came from and its config (the image
 * config's "config" object). Arrays may be empty; has_entrypoint/has_cmd
 * tell a missing field from an empty one (Docker's merge rule: a service
 * --entrypoint resets the image's Cmd). Owned by the store when handed to
 * a callback (valid during the call); image_info_free for the copies
 * imgstore_image_get returns. */
struct image_info {
    char digest[72];        /* "sha256:HEX": the pinned digest (list or manifest) */
    char manifest_digest[72]; /* the platform's manifest */
    char config_digest[72];
    char *name;             /* normalised "registry/repo" */
    char *arch;
    char *os;
    bool has_entrypoint;
    char **entrypoint;
    size_t n_entrypoint;
    bool has_cmd;
    char **cmd;
    size_t n_cmd;
    char **env;             /* "K=V" */
    size_t n_env;
    char *working_dir;      /* "" when unset */
    char *user;             /* "" when unset: "name", "uid", "uid:gid"... */
    char *stop_signal;      /* "" when unset */
    struct image_health *healthcheck; /* NULL when the image has none */
    char **exposed_ports;   /* "80/tcp" */
    size_t n_exposed_ports;
    /* Diff IDs, bottom layer first. */
    char **diff_ids;
    size_t n_diff_ids;
};

void image_info_free(struct image_info *info);

/* Open the store in `dir` (its parent must exist). Nothing is created on
 * disk until the first pull, so a node that never runs a container has no
 * STATE/images. The store owns a timer on `loop` (auto-prune) and the
 * pulls it starts. */
int imgstore_open(uv_loop_t *loop, const char *dir,
                  const struct imgstore_opts *opts, struct imgstore **out,
                  char *errmsg);

/* Close: cancels what it can, waits for pulls already on a work thread to
 * finish (their callbacks run with SWARM_ECANCELED, data still the
 * caller's), then calls close_cb(data) and frees the store. Snapshots stay
 * (they are the tasks'). */
void imgstore_close(struct imgstore *s, void (*close_cb)(void *data),
                    void *data);

/* Called once on the loop when a pull ends: status 0 with `info` (valid
 * during the call), or an error code and message (info NULL). */
typedef void (*imgstore_pull_cb)(void *data, int status, const char *errmsg,
                                 const struct image_info *info);

/* Pull `ref` (any form imgref_parse takes; a digest makes it a no-op when
 * the image is already in the store). `registry_auth` is
 * ContainerSpec.registry_auth (base64url of Docker's AuthConfig JSON
 * {"username","password","serveraddress"}) or NULL/"". Pulls of the same
 * reference with the same credentials in progress are shared: the second
 * caller waits for the first pull. At most 2 pulls run at once (each holds
 * one of libuv's pool threads); more wait their turn. The callback is never
 * called from inside imgstore_pull. *req_out (may be NULL) lets the caller
 * cancel its interest. */
int imgstore_pull(struct imgstore *s, const char *ref,
                  const char *registry_auth, imgstore_pull_cb cb, void *data,
                  struct imgstore_pull_req **req_out, char *errmsg);

/* The caller is no longer interested: its callback will not be called (the
 * pull itself finishes for the cache's sake). Only before the callback ran. */
void imgstore_pull_cancel(struct imgstore_pull_req *req);

/* An image already in the store by its pinned (or manifest) digest, or
 * SWARM_ENOTFOUND. *out is the caller's (image_info_free). */
int imgstore_image_get(struct imgstore *s, const char *digest,
                       struct image_info **out, char *errmsg);

/* Create task `id`'s snapshot of the image `digest` (a pinned digest
 * returned in image_info.digest): an overlayfs mount whose lowerdirs are
 * the image's layers and whose upper/work dirs are the snapshot's own.
 * rootfs_out (PATH_MAX bytes) receives the mount point. An existing
 * snapshot of the same id is an error (SWARM_EEXIST). Needs root. */
int imgstore_snapshot_create(struct imgstore *s, const char *digest,
                             const char *id, char *rootfs_out, char *errmsg);

/* Unmount and delete task `id`'s snapshot (no error when absent). */
int imgstore_snapshot_remove(struct imgstore *s, const char *id,
                             char *errmsg);

/* After a crash: every snapshot the store recorded that is not in
 * keep_ids (the tasks the caller adopts) is unmounted and deleted, and
 * tmp/ is emptied. Touches nothing the store did not create. Returns the
 * number removed in *n_removed (may be NULL). */
int imgstore_cleanup_leftovers(struct imgstore *s, const char *const *keep_ids,
                               size_t n_keep, size_t *n_removed,
                               char *errmsg);

struct imgstore_prune_result {
    size_t n_images;       /* image records removed */
    size_t n_layers;       /* unpacked layers removed */
    size_t n_blobs;        /* blobs removed */
    uint64_t bytes;        /* space reclaimed (blobs + layer files) */
    char **deleted;        /* the images removed, "name@digest" */
};
void imgstore_prune_result_free(struct imgstore_prune_result *r);

/* Docker's `image prune -a`: remove every image no snapshot uses, then
 * every blob and layer no remaining image refers to. With
 * unused_for_s > 0, only images unused for at least that long (Docker's
 * --filter until=). There are no dangling (untagged) images here: every
 * image is pulled by a service's reference, so -a is the only meaningful
 * mode. Images being pulled are never pruned. */
int imgstore_prune(struct imgstore *s, int64_t unused_for_s,
                   struct imgstore_prune_result *out, char *errmsg);

/* ---- registry access without a store (the manager, swarmctl) ---- */

/* Resolve `ref` to the digest of its manifest (or manifest list / index) on
 * its registry, without pulling: "sha256:HEX" into digest_out (72 bytes).
 * Blocking: call on a work thread (image_resolve_async) or in swarmctl. */
int image_resolve_digest(const char *ref, const char *registry_auth,
                         const char *const *insecure, size_t n_insecure,
                         char *digest_out, char *errmsg);

typedef void (*image_resolve_cb)(void *data, int status, const char *errmsg,
                                 const char *digest);
/* image_resolve_digest on a libuv work thread; cb on the loop. The strings
 * are copied. */
int image_resolve_async(uv_loop_t *loop, const char *ref,
                        const char *registry_auth,
                        const char *const *insecure, size_t n_insecure,
                        image_resolve_cb cb, void *data, char *errmsg);

/* Check credentials against a registry as `docker login` does (GET /v2/
 * with them, following a bearer challenge). Blocking. */
int image_registry_login(const char *registry, const char *username,
                         const char *password, const char *const *insecure,
                         size_t n_insecure, char *errmsg);

#endif
