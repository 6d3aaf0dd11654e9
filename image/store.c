/* The node's image store (image.h): pulls, records, snapshots, prune.
 *
 * A pull, on a libuv work thread (pull_work), then on the loop (pull_done):
 *   parse ref -> [digest given and recorded: done, no network]
 *   -> GET manifest (tag or digest), sha256 checked -> [recorded: done]
 *   -> index? pick linux/ARCH, GET that manifest (checked)
 *   -> config blob (checked) -> each layer: blob (checked), unpack into
 *      tmp/, diff ID checked, rename to layers/sha256/HEX
 *   -> write images/HEX.json (tmp + rename) -> done.
 * Failure paths: bad ref (EINVAL), registry down (EUNAVAIL), unknown
 * (ENOTFOUND), refused credentials (EPERM), digest mismatch (ECORRUPT,
 * nothing kept), disk (EIO). tmp/ leftovers of a failed pull are removed.
 * Every waiter of a shared pull gets the same result on the loop.
 *
 * Image records are JSON: {"name","digest","manifest","config",
 * "blobs":[...],"diff_ids":[...]}; their mtime is the image's last use
 * (pull, snapshot create or remove), which auto-prune compares. */
#include "image.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "err.h"
#include "log.h"
#include "manifest.h"
#include "registry.h"
#include "unpack.h"
#include "vec.h"

struct imgstore_pull_req {
    struct pull *pull;
    imgstore_pull_cb cb;
    void *data;
    struct imgstore_pull_req *next;
};

/* Pulls on work threads at once; more wait in the store's list. libuv's
 * pool has 4 threads by default and other work (fs, DNS) shares them. */
#define IMGSTORE_MAX_RUNNING_PULLS 2

struct pull {
    struct imgstore *store;
    uv_work_t work;
    bool started; /* on a work thread (or done); false: waiting its turn */
    char *ref;  /* as the caller gave it: the sharing key */
    char *auth;
    struct imgstore_pull_req *waiters;
    int status;
    char errmsg[SWARM_ERRMSG_SIZE];
    struct image_info *info;
    struct pull *next;
};

struct imgstore {
    uv_loop_t *loop;
    char *dir;
    char **insecure;
    size_t n_insecure;
    int64_t prune_after_s;
    char arch[32];
    uv_timer_t prune_timer;
    struct pull *pulls; /* running and waiting */
    int n_running;
    int pending;     /* pulls (running or waiting) + the timer's close */
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

/* ---- paths and small file helpers ---- */

static const char *hex_of(const char *digest)
{
    return digest + strlen("sha256:");
}

static void path_blob(const struct imgstore *s, const char *digest, char *out)
{
    snprintf(out, PATH_MAX, "%s/blobs/sha256/%s", s->dir, hex_of(digest));
}

static void path_layer(const struct imgstore *s, const char *diff_id, char *out)
{
    snprintf(out, PATH_MAX, "%s/layers/sha256/%s", s->dir, hex_of(diff_id));
}

static void path_record(const struct imgstore *s, const char *digest, char *out)
{
    snprintf(out, PATH_MAX, "%s/images/%s.json", s->dir, hex_of(digest));
}

static void path_snapshot(const struct imgstore *s, const char *id, char *out)
{
    snprintf(out, PATH_MAX, "%s/snapshots/%s", s->dir, id);
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}

/* The store's dirs, made on first write (a pull, a snapshot): opening a
 * store leaves nothing on disk. Idempotent; any thread. */
static int store_ensure_dirs(const struct imgstore *s, char *errmsg)
{
    static const char *const subs[] = {"blobs/sha256", "layers/sha256", "images",
                                       "snapshots", "tmp"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", s->dir, subs[i]);
        if (mkdir_p(path, 0700) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
            return SWARM_EIO;
        }
    }
    return 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP) {
        return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
    }
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return errno == ENOENT ? 0 : -1;
    }
    return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static uint64_t du_total;
static int du_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)flag;
    (void)ftw;
    du_total += (uint64_t)st->st_blocks * 512;
    return 0;
}

/* Size of a tree (loop thread only: nftw has no context pointer). */
static uint64_t du(const char *path)
{
    du_total = 0;
    nftw(path, du_cb, 16, FTW_PHYS | FTW_MOUNT);
    return du_total;
}

static int write_file_atomic(const struct imgstore *s, const char *path,
                             const char *data, size_t len, char *errmsg)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/tmp/file-XXXXXX", s->dir);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", tmp, strerror(errno));
        return SWARM_EIO;
    }
    bool ok = write(fd, data, len) == (ssize_t)len && fchmod(fd, 0600) == 0 &&
              fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return SWARM_EIO;
    }
    return 0;
}

static int read_file(const char *path, char **out, size_t *len, char *errmsg)
{
    FILE *f = fopen(path, "rbe");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? SWARM_ENOTFOUND : SWARM_EIO;
    }
    for (;;) {
        if (n + 4097 > cap) {
            cap = cap ? cap * 2 : 16384;
            char *b = realloc(buf, cap);
            if (!b || cap > (8u << 20)) {
                free(b ? b : buf);
                fclose(f);
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: too large", path);
                return SWARM_EIO;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static void touch(const char *path)
{
    utimensat(AT_FDCWD, path, NULL, 0);
}

/* ---- image records ---- */

/* Load a record and its config into a new image_info. */
static int record_load(const struct imgstore *s, const char *digest,
                       struct image_info **out, char *errmsg)
{
    char path[PATH_MAX];
    char *body = NULL;
    size_t len;
    json_error_t jerr;
    if (!imgref_digest_valid(digest)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid digest: %s", digest);
        return SWARM_EINVAL;
    }
    path_record(s, digest, path);
    int rv = read_file(path, &body, &len, errmsg);
    if (rv != 0) {
        return rv;
    }
    json_t *rec = json_loadb(body, len, 0, &jerr);
    free(body);
    body = NULL;
    const char *cfg = json_string_value(json_object_get(rec, "config"));
    const char *man = json_string_value(json_object_get(rec, "manifest"));
    const char *name = json_string_value(json_object_get(rec, "name"));
    struct image_info *info = calloc(1, sizeof(*info));
    if (!imgref_digest_valid(cfg) || !imgref_digest_valid(man) || !name || !info) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "image record %s is damaged", path);
        rv = SWARM_ECORRUPT;
        goto out;
    }
    snprintf(info->digest, sizeof(info->digest), "%s", digest);
    snprintf(info->manifest_digest, sizeof(info->manifest_digest), "%s", man);
    snprintf(info->config_digest, sizeof(info->config_digest), "%s", cfg);
    info->name = strdup(name);
    path_blob(s, cfg, path);
    rv = read_file(path, &body, &len, errmsg);
    if (rv == 0) {
        rv = imgconfig_parse(body, len, info, errmsg);
    }
    if (rv == 0 && !info->name) {
        rv = SWARM_ENOMEM;
    }
out:
    free(body);
    json_decref(rec);
    if (rv != 0) {
        image_info_free(info);
        return rv;
    }
    *out = info;
    return 0;
}

static int record_write(const struct imgstore *s, const char *name,
                        const char *digest, const char *manifest_digest,
                        const char *config_digest, const struct manifest *m,
                        const char *index_digest, const struct image_info *cfg,
                        char *errmsg)
{
    char path[PATH_MAX];
    json_t *blobs = json_array(), *diffs = json_array();
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "name", name,
                            "digest", digest, "manifest", manifest_digest,
                            "config", config_digest, "blobs", blobs,
                            "diff_ids", diffs);
    if (!rec) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    json_array_append_new(blobs, json_string(manifest_digest));
    json_array_append_new(blobs, json_string(config_digest));
    if (index_digest) {
        json_array_append_new(blobs, json_string(index_digest));
    }
    for (size_t i = 0; i < m->n_entries; i++) {
        json_array_append_new(blobs, json_string(m->entries[i].digest));
    }
    for (size_t i = 0; i < cfg->n_diff_ids; i++) {
        json_array_append_new(diffs, json_string(cfg->diff_ids[i]));
    }
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    if (!text) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    path_record(s, digest, path);
    int rv = write_file_atomic(s, path, text, strlen(text), errmsg);
    free(text);
    return rv;
}

/* ---- the pull, on a work thread ---- */

static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Fetch a blob into blobs/ unless it is there already. */
static int blob_ensure(const struct imgstore *s, struct registry_client *c,
                       const char *digest, char *errmsg)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    path_blob(s, digest, path);
    if (file_exists(path)) {
        return 0;
    }
    snprintf(tmp, sizeof(tmp), "%s/tmp/blob-XXXXXX", s->dir);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", tmp, strerror(errno));
        return SWARM_EIO;
    }
    close(fd);
    int rv = registry_get_blob(c, digest, tmp, errmsg);
    if (rv == 0 && rename(tmp, path) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        rv = SWARM_EIO;
    }
    if (rv != 0) {
        unlink(tmp);
    }
    return rv;
}

static int layer_ensure(const struct imgstore *s, struct registry_client *c,
                        const char *blob_digest, const char *diff_id, char *errmsg)
{
    char path[PATH_MAX], tmp[PATH_MAX], blob[PATH_MAX];
    path_layer(s, diff_id, path);
    if (file_exists(path)) {
        return 0;
    }
    int rv = blob_ensure(s, c, blob_digest, errmsg);
    if (rv != 0) {
        return rv;
    }
    path_blob(s, blob_digest, blob);
    snprintf(tmp, sizeof(tmp), "%s/tmp/layer-XXXXXX", s->dir);
    if (!mkdtemp(tmp)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", tmp, strerror(errno));
        return SWARM_EIO;
    }
    chmod(tmp, 0755);
    rv = layer_unpack(blob, tmp, diff_id, errmsg);
    if (rv == 0 && rename(tmp, path) != 0) {
        if (errno == EEXIST || errno == ENOTEMPTY) {
            rv = 0; /* another pull unpacked the same layer first */
        } else {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
            rv = SWARM_EIO;
        }
        rm_rf(tmp);
    } else if (rv != 0) {
        rm_rf(tmp);
    }
    return rv;
}

static int pull_fetch(struct pull *p, const struct imgref *ref, char *errmsg)
{
    struct imgstore *s = p->store;
    struct registry_client c;
    struct manifest idx = {0}, m = {0};
    char *body = NULL, *cfg_body = NULL;
    size_t len = 0, cfg_len = 0;
    char ctype[128], digest[72], mdigest[72], name[600], path[PATH_MAX];
    struct image_info *cfg = NULL;
    bool is_index = false;

    imgref_format_name(ref, name, sizeof(name));
    int rv = registry_client_init(&c, ref, p->auth, (const char *const *)s->insecure,
                                  s->n_insecure, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = registry_get_manifest(&c, ref->digest ? ref->digest : ref->tag, &body, &len,
                               ctype, digest, errmsg);
    if (rv != 0) {
        goto out;
    }
    /* Already recorded under this digest (a tag that did not move). */
    rv = record_load(s, digest, &p->info, errmsg);
    if (rv == 0) {
        path_record(s, digest, path);
        touch(path);
        goto out;
    }
    rv = manifest_parse(body, len, ctype, &m, errmsg);
    if (rv != 0) {
        goto out;
    }
    snprintf(mdigest, sizeof(mdigest), "%s", digest);
    if (m.kind == MANIFEST_INDEX) {
        is_index = true;
        path_blob(s, digest, path);
        rv = write_file_atomic(s, path, body, len, errmsg);
        if (rv != 0) {
            goto out;
        }
        idx = m;
        memset(&m, 0, sizeof(m));
        int i = manifest_pick_platform(&idx, "linux", s->arch, NULL);
        if (i < 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "no matching manifest for linux/%s in the manifest list entries",
                          s->arch);
            rv = SWARM_ENOTFOUND;
            goto out;
        }
        free(body);
        body = NULL;
        rv = registry_get_manifest(&c, idx.entries[i].digest, &body, &len, ctype,
                                   mdigest, errmsg);
        if (rv == 0) {
            rv = manifest_parse(body, len, ctype, &m, errmsg);
        }
        if (rv == 0 && m.kind != MANIFEST_IMAGE) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "manifest list entry is not an image manifest");
            rv = SWARM_EINVAL;
        }
        if (rv != 0) {
            goto out;
        }
    }
    path_blob(s, mdigest, path);
    rv = write_file_atomic(s, path, body, len, errmsg);
    if (rv == 0) {
        rv = blob_ensure(s, &c, m.config.digest, errmsg);
    }
    if (rv != 0) {
        goto out;
    }
    path_blob(s, m.config.digest, path);
    cfg = calloc(1, sizeof(*cfg));
    rv = cfg ? read_file(path, &cfg_body, &cfg_len, errmsg) : SWARM_ENOMEM;
    if (rv == 0) {
        rv = imgconfig_parse(cfg_body, cfg_len, cfg, errmsg);
    }
    if (rv != 0) {
        goto out;
    }
    if (cfg->n_diff_ids != m.n_entries) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "image config has %zu diff IDs for %zu layers", cfg->n_diff_ids,
                      m.n_entries);
        rv = SWARM_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < m.n_entries; i++) {
        rv = layer_ensure(s, &c, m.entries[i].digest, cfg->diff_ids[i], errmsg);
        if (rv != 0) {
            goto out;
        }
    }
    rv = record_write(s, name, digest, mdigest, m.config.digest, &m,
                      is_index ? digest : NULL, cfg, errmsg);
    if (rv == 0) {
        rv = record_load(s, digest, &p->info, errmsg);
    }
out:
    image_info_free(cfg);
    free(cfg_body);
    free(body);
    manifest_free(&m);
    manifest_free(&idx);
    registry_client_free(&c);
    return rv;
}

static void pull_work(uv_work_t *w)
{
    struct pull *p = w->data;
    struct imgref ref;
    p->status = imgref_parse(p->ref, &ref, p->errmsg);
    if (p->status != 0) {
        return;
    }
    char scratch[SWARM_ERRMSG_SIZE];
    if (ref.digest && record_load(p->store, ref.digest, &p->info, scratch) == 0) {
        p->status = 0;
    } else if ((p->status = store_ensure_dirs(p->store, p->errmsg)) == 0) {
        p->status = pull_fetch(p, &ref, p->errmsg);
    }
    imgref_free(&ref);
}

static void store_maybe_closed(struct imgstore *s);
static void pull_done(uv_work_t *w, int status);

/* Start waiting pulls while there is room (oldest first: the list is
 * newest first, so take the last one waiting each time). */
static void pulls_start(struct imgstore *s)
{
    while (!s->closing && s->n_running < IMGSTORE_MAX_RUNNING_PULLS) {
        struct pull *next = NULL;
        for (struct pull *p = s->pulls; p; p = p->next) {
            if (!p->started) {
                next = p;
            }
        }
        if (next == NULL) {
            return;
        }
        next->started = true;
        s->n_running++;
        int uvr = uv_queue_work(s->loop, &next->work, pull_work, pull_done);
        assert(uvr == 0); /* fails only without a work callback */
        (void)uvr;
    }
}

/* Hand the result to every waiter and free the pull. */
static void pull_finish(struct pull *p, int status)
{
    struct imgstore *s = p->store;
    for (struct pull **pp = &s->pulls; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (status == UV_ECANCELED || s->closing) {
        p->status = SWARM_ECANCELED;
        snprintf(p->errmsg, sizeof(p->errmsg), "image store closing");
    }
    if (p->status == 0 && p->info) {
        free(p->info->name);
        p->info->name = NULL;
        struct imgref ref;
        char scratch[SWARM_ERRMSG_SIZE], name[600];
        if (imgref_parse(p->ref, &ref, scratch) == 0) {
            imgref_format_name(&ref, name, sizeof(name));
            p->info->name = strdup(name);
            imgref_free(&ref);
        }
    }
    struct imgstore_pull_req *r = p->waiters;
    p->waiters = NULL;
    while (r) {
        struct imgstore_pull_req *next = r->next;
        if (r->cb) {
            imgstore_pull_cb cb = r->cb;
            r->cb = NULL;
            cb(r->data, p->status, p->status ? p->errmsg : NULL,
               p->status ? NULL : p->info);
        }
        free(r);
        r = next;
    }
    image_info_free(p->info);
    free(p->ref);
    if (p->auth) {
        explicit_bzero(p->auth, strlen(p->auth));
    }
    free(p->auth);
    free(p);
    s->pending--;
}

static void pull_done(uv_work_t *w, int status)
{
    struct pull *p = w->data;
    struct imgstore *s = p->store;
    s->n_running--;
    pull_finish(p, status);
    pulls_start(s);
    store_maybe_closed(s);
}

int imgstore_pull(struct imgstore *s, const char *ref,
                  const char *registry_auth, imgstore_pull_cb cb, void *data,
                  struct imgstore_pull_req **req_out, char *errmsg)
{
    if (s->closing) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "image store closing");
        return SWARM_ECANCELED;
    }
    struct imgstore_pull_req *r = calloc(1, sizeof(*r));
    if (!r) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    r->cb = cb;
    r->data = data;
    /* Shared with a pull of the same reference and the same credentials. */
    const char *auth = registry_auth != NULL ? registry_auth : "";
    struct pull *p;
    for (p = s->pulls; p; p = p->next) {
        if (strcmp(p->ref, ref) == 0 && strcmp(p->auth != NULL ? p->auth : "", auth) == 0) {
            break;
        }
    }
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p || !(p->ref = strdup(ref)) ||
            (registry_auth && *registry_auth && !(p->auth = strdup(registry_auth)))) {
            if (p) {
                free(p->ref);
            }
            free(p);
            free(r);
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
            return SWARM_ENOMEM;
        }
        p->store = s;
        p->work.data = p;
        s->pending++;
        p->next = s->pulls;
        s->pulls = p;
    }
    r->pull = p;
    r->next = p->waiters;
    p->waiters = r;
    pulls_start(s);
    if (req_out) {
        *req_out = r;
    }
    return 0;
}

void imgstore_pull_cancel(struct imgstore_pull_req *req)
{
    req->cb = NULL;
}

int imgstore_image_get(struct imgstore *s, const char *digest,
                       struct image_info **out, char *errmsg)
{
    return record_load(s, digest, out, errmsg);
}

/* ---- snapshots ---- */

static bool id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128 || id[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

int imgstore_snapshot_create(struct imgstore *s, const char *digest,
                             const char *id, char *rootfs_out, char *errmsg)
{
    char snap[PATH_MAX], sub[PATH_MAX + 16], layer[PATH_MAX], rec[PATH_MAX];
    struct image_info *info = NULL;
    char *opts = NULL;
    if (!id_valid(id)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid snapshot id: %s", id);
        return SWARM_EINVAL;
    }
    int rv = record_load(s, digest, &info, errmsg);
    if (rv != 0) {
        if (rv == SWARM_ENOTFOUND) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "No such image: %s", digest);
        }
        return rv;
    }
    path_snapshot(s, id, snap);
    if (mkdir(snap, 0700) != 0) {
        rv = errno == EEXIST ? SWARM_EEXIST : SWARM_EIO;
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "snapshot %s: %s", id, strerror(errno));
        image_info_free(info);
        return rv;
    }
    rv = SWARM_EIO;
    static const char *const subs[] = {"upper", "work", "rootfs", "empty"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", snap, subs[i]);
        if (mkdir(sub, 0755) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", sub, strerror(errno));
            goto err;
        }
    }
    snprintf(sub, sizeof(sub), "%s/image", snap);
    FILE *f = fopen(sub, "we");
    if (!f || fprintf(f, "%s\n", info->digest) < 0 || fclose(f) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", sub, strerror(errno));
        goto err;
    }
    /* lowerdir: top layer first; an image without layers gets an empty one. */
    size_t cap = 64 + 3 * PATH_MAX + (info->n_diff_ids + 1) * PATH_MAX;
    opts = malloc(cap);
    if (!opts) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        rv = SWARM_ENOMEM;
        goto err;
    }
    size_t o = (size_t)snprintf(opts, cap, "lowerdir=");
    for (size_t i = info->n_diff_ids; i > 0; i--) {
        path_layer(s, info->diff_ids[i - 1], layer);
        if (!file_exists(layer)) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer %s of image %s is missing",
                          info->diff_ids[i - 1], digest);
            rv = SWARM_ENOTFOUND;
            goto err;
        }
        o += (size_t)snprintf(opts + o, cap - o, "%s%s", i == info->n_diff_ids ? "" : ":",
                              layer);
    }
    if (info->n_diff_ids == 0) {
        o += (size_t)snprintf(opts + o, cap - o, "%s/empty", snap);
    }
    snprintf(opts + o, cap - o, ",upperdir=%s/upper,workdir=%s/work", snap, snap);
    if (strlen(opts) >= (size_t)sysconf(_SC_PAGESIZE)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "image %s has too many layers for one overlayfs mount", digest);
        rv = SWARM_EINVAL;
        goto err;
    }
    snprintf(rootfs_out, PATH_MAX, "%s/rootfs", snap);
    if (mount("overlay", rootfs_out, "overlay", 0, opts) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "mount overlay on %s: %s", rootfs_out,
                      strerror(errno));
        rv = errno == EPERM ? SWARM_EPERM : SWARM_EIO;
        goto err;
    }
    path_record(s, info->digest, rec);
    touch(rec);
    free(opts);
    image_info_free(info);
    return 0;
err:
    free(opts);
    image_info_free(info);
    rm_rf(snap);
    return rv;
}

int imgstore_snapshot_remove(struct imgstore *s, const char *id, char *errmsg)
{
    char snap[PATH_MAX], sub[PATH_MAX + 16];
    if (!id_valid(id)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid snapshot id: %s", id);
        return SWARM_EINVAL;
    }
    path_snapshot(s, id, snap);
    snprintf(sub, sizeof(sub), "%s/rootfs", snap);
    if (umount2(sub, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "unmount %s: %s", sub, strerror(errno));
        return SWARM_EIO;
    }
    /* The image it used was last used now. */
    snprintf(sub, sizeof(sub), "%s/image", snap);
    FILE *f = fopen(sub, "re");
    char digest[80] = "";
    if (f) {
        if (fgets(digest, sizeof(digest), f)) {
            digest[strcspn(digest, "\n")] = '\0';
        }
        fclose(f);
    }
    if (rm_rf(snap) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "remove %s: %s", snap, strerror(errno));
        return SWARM_EIO;
    }
    if (imgref_digest_valid(digest)) {
        char rec[PATH_MAX];
        path_record(s, digest, rec);
        touch(rec);
    }
    return 0;
}

int imgstore_cleanup_leftovers(struct imgstore *s, const char *const *keep_ids,
                               size_t n_keep, size_t *n_removed, char *errmsg)
{
    char path[PATH_MAX];
    size_t removed = 0;
    int rv = 0;
    snprintf(path, sizeof(path), "%s/snapshots", s->dir);
    DIR *d = opendir(path);
    if (!d && errno == ENOENT) {
        if (n_removed) {
            *n_removed = 0;
        }
        return 0; /* nothing was ever made here */
    }
    if (!d) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        return SWARM_EIO;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        bool keep = false;
        for (size_t i = 0; i < n_keep && !keep; i++) {
            keep = strcmp(keep_ids[i], e->d_name) == 0;
        }
        if (keep) {
            continue;
        }
        if (imgstore_snapshot_remove(s, e->d_name, errmsg) != 0) {
            rv = SWARM_EIO;
            continue;
        }
        removed++;
    }
    closedir(d);
    if (!s->pulls) {
        snprintf(path, sizeof(path), "%s/tmp", s->dir);
        rm_rf(path);
        mkdir(path, 0700);
    }
    if (n_removed) {
        *n_removed = removed;
    }
    return rv;
}

/* ---- prune ---- */

void imgstore_prune_result_free(struct imgstore_prune_result *r)
{
    for (size_t i = 0; i < r->n_images; i++) {
        free(r->deleted[i]);
    }
    free(r->deleted);
    memset(r, 0, sizeof(*r));
}

/* Digests of the images snapshots use. */
static int images_in_use(const struct imgstore *s, json_t *set)
{
    char path[PATH_MAX], sub[PATH_MAX + 300];
    snprintf(path, sizeof(path), "%s/snapshots", s->dir);
    DIR *d = opendir(path);
    if (!d) {
        return errno == ENOENT ? 0 : SWARM_EIO;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(sub, sizeof(sub), "%s/%s/image", path, e->d_name);
        FILE *f = fopen(sub, "re");
        char digest[80] = "";
        if (f) {
            if (fgets(digest, sizeof(digest), f)) {
                digest[strcspn(digest, "\n")] = '\0';
                json_object_set_new(set, digest, json_true());
            }
            fclose(f);
        }
    }
    closedir(d);
    return 0;
}

/* Remove every file in DIR (blobs/sha256 or layers/sha256) not in keep. */
static void gc_dir(struct imgstore *s, const char *sub, json_t *keep,
                   size_t *count, uint64_t *bytes)
{
    char path[PATH_MAX], item[PATH_MAX + 300], digest[80];
    snprintf(path, sizeof(path), "%s/%s", s->dir, sub);
    DIR *d = opendir(path);
    if (!d) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(digest, sizeof(digest), "sha256:%s", e->d_name);
        if (json_object_get(keep, digest)) {
            continue;
        }
        snprintf(item, sizeof(item), "%s/%s", path, e->d_name);
        uint64_t size = du(item);
        if (rm_rf(item) == 0) {
            (*count)++;
            *bytes += size;
        }
    }
    closedir(d);
}

int imgstore_prune(struct imgstore *s, int64_t unused_for_s,
                   struct imgstore_prune_result *out, char *errmsg)
{
    char path[PATH_MAX], item[PATH_MAX + 300];
    struct imgstore_prune_result res = {0};
    VEC(char *) deleted = {0};
    json_t *used = json_object(), *keep_blobs = json_object(), *keep_layers = json_object();
    int rv = 0;
    if (!used || !keep_blobs || !keep_layers) {
        rv = SWARM_ENOMEM;
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        goto out;
    }
    if (s->pulls) {
        /* A pull in flight may be about to use what we would remove. */
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "an image pull is in progress; try again");
        rv = SWARM_EUNAVAIL;
        goto out;
    }
    if (images_in_use(s, used) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s/snapshots: %s", s->dir, strerror(errno));
        rv = SWARM_EIO;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/images", s->dir);
    DIR *d = opendir(path);
    if (!d && errno == ENOENT) {
        if (out) {
            *out = res; /* an empty store: nothing to prune */
        }
        goto out;
    }
    if (!d) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        rv = SWARM_EIO;
        goto out;
    }
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) {
            continue;
        }
        snprintf(item, sizeof(item), "%s/%s", path, e->d_name);
        json_error_t jerr;
        json_t *rec = json_load_file(item, 0, &jerr);
        const char *digest = json_string_value(json_object_get(rec, "digest"));
        struct stat st;
        bool keep = !digest || json_object_get(used, digest) ||
                    (unused_for_s > 0 && stat(item, &st) == 0 &&
                     now - st.st_mtime < unused_for_s);
        if (keep) {
            size_t i;
            json_t *v;
            json_array_foreach(json_object_get(rec, "blobs"), i, v) {
                json_object_set_new(keep_blobs, json_string_value(v), json_true());
            }
            json_array_foreach(json_object_get(rec, "diff_ids"), i, v) {
                json_object_set_new(keep_layers, json_string_value(v), json_true());
            }
        } else if (unlink(item) == 0) {
            char line[700];
            snprintf(line, sizeof(line), "%s@%s",
                     json_string_value(json_object_get(rec, "name")) ?: "", digest);
            char *copy = strdup(line);
            if (copy && vec_push(&deleted, copy) != 0) {
                free(copy);
            }
            res.n_images++;
        }
        json_decref(rec);
    }
    closedir(d);
    size_t n_layers = 0, n_blobs = 0;
    gc_dir(s, "layers/sha256", keep_layers, &n_layers, &res.bytes);
    gc_dir(s, "blobs/sha256", keep_blobs, &n_blobs, &res.bytes);
    res.n_layers = n_layers;
    res.n_blobs = n_blobs;
    res.deleted = deleted.items;
    res.n_images = deleted.len;
    if (out) {
        *out = res;
    } else {
        imgstore_prune_result_free(&res);
    }
out:
    json_decref(used);
    json_decref(keep_blobs);
    json_decref(keep_layers);
    return rv;
}

static void prune_timer_cb(uv_timer_t *t)
{
    struct imgstore *s = t->data;
    char errmsg[SWARM_ERRMSG_SIZE];
    struct imgstore_prune_result r;
    if (s->closing || s->pulls) {
        return;
    }
    if (imgstore_prune(s, s->prune_after_s, &r, errmsg) != 0) {
        log_warn("image", "prune: %s", errmsg);
        return;
    }
    for (size_t i = 0; i < r.n_images; i++) {
        log_info("image", "prune: deleted %s", r.deleted[i]);
    }
    imgstore_prune_result_free(&r);
}

/* ---- open / close ---- */

/* realpath of dir, or of its parent (which must exist) + its name. */
static char *store_resolve_dir(const char *dir)
{
    char *abs = realpath(dir, NULL);
    if (abs != NULL || errno != ENOENT) {
        return abs;
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') {
        parent[--n] = '\0';
    }
    char *slash = strrchr(parent, '/');
    const char *name = slash ? slash + 1 : parent;
    char base[PATH_MAX];
    snprintf(base, sizeof(base), "%s", name);
    if (slash == parent) {
        parent[1] = '\0';
    } else if (slash) {
        *slash = '\0';
    } else {
        snprintf(parent, sizeof(parent), ".");
    }
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        errno = EINVAL;
        return NULL;
    }
    char *p = realpath(parent, NULL);
    if (p == NULL) {
        return NULL;
    }
    char *out = NULL;
    if (asprintf(&out, "%s%s%s", p, strcmp(p, "/") == 0 ? "" : "/", base) < 0) {
        out = NULL;
    }
    free(p);
    return out;
}

int imgstore_open(uv_loop_t *loop, const char *dir,
                  const struct imgstore_opts *opts, struct imgstore **out,
                  char *errmsg)
{
    struct imgstore *s = calloc(1, sizeof(*s));
    if (!s) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Nothing is made here (store_ensure_dirs, on first write), but the
     * path is made absolute and free of symlinks now: libarchive's symlink
     * guard checks every component of the paths it writes. */
    s->dir = store_resolve_dir(dir);
    if (!s->dir) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", dir, strerror(errno));
        free(s);
        return SWARM_EIO;
    }
    /* Everything 0700: overlayfs reaches the layers with the mounter's
     * (root's) credentials, a task never walks these paths. */
    s->loop = loop;
    s->prune_after_s = opts != NULL && opts->prune_after_s != 0 ? opts->prune_after_s
                                                                : IMGSTORE_PRUNE_AFTER_DEFAULT_S;
    snprintf(s->arch, sizeof(s->arch), "%s",
             opts && opts->arch ? opts->arch : manifest_host_arch());
    if (opts && opts->n_insecure_registries) {
        s->insecure = calloc(opts->n_insecure_registries, sizeof(char *));
        if (!s->insecure) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
            goto err;
        }
        for (size_t i = 0; i < opts->n_insecure_registries; i++) {
            s->insecure[i] = strdup(opts->insecure_registries[i]);
            if (!s->insecure[i]) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
                goto err;
            }
            s->n_insecure++;
        }
    }
    uv_timer_init(loop, &s->prune_timer);
    s->prune_timer.data = s;
    if (s->prune_after_s > 0) {
        uint64_t every = (uint64_t)s->prune_after_s * 1000 / 10;
        every = every < 1000 ? 1000 : every > 3600000 ? 3600000 : every;
        uv_timer_start(&s->prune_timer, prune_timer_cb, every, every);
    }
    uv_unref((uv_handle_t *)&s->prune_timer);
    *out = s;
    return 0;
err:
    for (size_t i = 0; i < s->n_insecure; i++) {
        free(s->insecure[i]);
    }
    free(s->insecure);
    free(s->dir);
    free(s);
    return SWARM_EIO;
}

static void store_maybe_closed(struct imgstore *s)
{
    if (!s->closing || s->pending > 0) {
        return;
    }
    void (*cb)(void *) = s->close_cb;
    void *data = s->close_data;
    for (size_t i = 0; i < s->n_insecure; i++) {
        free(s->insecure[i]);
    }
    free(s->insecure);
    free(s->dir);
    free(s);
    if (cb) {
        cb(data);
    }
}

static void timer_closed_cb(uv_handle_t *h)
{
    struct imgstore *s = h->data;
    s->pending--;
    store_maybe_closed(s);
}

void imgstore_close(struct imgstore *s, void (*close_cb)(void *data), void *data)
{
    s->closing = true;
    s->close_cb = close_cb;
    s->close_data = data;
    /* Waiting pulls end here; running ones when their thread is done. */
    struct pull *p = s->pulls;
    while (p != NULL) {
        struct pull *next = p->next;
        if (!p->started) {
            pull_finish(p, UV_ECANCELED);
        } else {
            uv_cancel((uv_req_t *)&p->work);
        }
        p = next;
    }
    s->pending++;
    uv_close((uv_handle_t *)&s->prune_timer, timer_closed_cb);
}
