/* Layer unpack (unpack.h).
 *
 * libarchive does the reading (gzip, tar dialects) and the writing
 * (archive_write_disk, with ARCHIVE_EXTRACT_SECURE_SYMLINKS and
 * SECURE_NODOTDOT so nothing is written through a symlink or a ".."). Every
 * entry is first checked by layer_entry_classify (pure) and then written to
 * an absolute path under dest_dir, so the process's cwd is never used (a
 * pull runs on a work thread beside the loop). Whiteouts become overlayfs
 * whiteouts: a 0/0 character device for .wh.NAME, the
 * trusted.overlay.opaque="y" xattr on the directory for .wh..wh..opq (set
 * after every entry is written, since the directory's own entry may come
 * after its marker). No ARCHIVE_EXTRACT_UNLINK: with it libarchive would
 * remove a symlink met in a path instead of refusing the entry. */
#include "unpack.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "err.h"
#include "vec.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

int layer_entry_classify(const char *path, char *clean, size_t size,
                         enum layer_entry_kind *kind, char *errmsg)
{
    size_t o = 0;
    const char *p = path;
    if (!path || !*path) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: an entry has an empty name");
        return SWARM_EINVAL;
    }
    if (*p == '/') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: absolute path refused: %s", path);
        return SWARM_EINVAL;
    }
    /* Rebuild the path component by component, dropping "." and empties. */
    while (*p) {
        while (*p == '/') {
            p++;
        }
        const char *e = p;
        while (*e && *e != '/') {
            e++;
        }
        size_t n = (size_t)(e - p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "layer: path with \"..\" refused: %s", path);
            return SWARM_EINVAL;
        }
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (o + n + 2 > size) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: path too long: %.64s...", path);
                return SWARM_EINVAL;
            }
            if (o > 0) {
                clean[o++] = '/';
            }
            memcpy(clean + o, p, n);
            o += n;
        }
        p = e;
    }
    clean[o] = '\0';
    *kind = LAYER_ENTRY_NORMAL;
    char *base = strrchr(clean, '/');
    base = base ? base + 1 : clean;
    if (strcmp(base, WH_OPAQUE) == 0) {
        *kind = LAYER_ENTRY_OPAQUE;
        base[base == clean ? 0 : -1] = '\0';
        return 0;
    }
    if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) == 0) {
        const char *name = base + strlen(WH_PREFIX);
        if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: invalid whiteout: %s", path);
            return SWARM_EINVAL;
        }
        memmove(base, name, strlen(name) + 1);
        *kind = LAYER_ENTRY_WHITEOUT;
    }
    return 0;
}

int file_sha256(const char *path, char *out, char *errmsg)
{
    unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rv = SWARM_EIO;
    FILE *f = fopen(path, "rb");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!f || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        goto out;
    }
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        EVP_DigestUpdate(ctx, buf, n);
    }
    if (ferror(f)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: read error", path);
        goto out;
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < mdlen; i++) {
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    }
    rv = 0;
out:
    EVP_MD_CTX_free(ctx);
    if (f) {
        fclose(f);
    }
    return rv;
}

/* The sha256 of the decompressed stream (the layer's diff ID). */
static int stream_sha256(const char *blob_path, char *out, char *errmsg)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rv = SWARM_EINVAL;
    struct archive *a = archive_read_new();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    struct archive_entry *e;
    if (!a || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rv = SWARM_ENOMEM;
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        goto out;
    }
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    if (archive_read_open_filename(a, blob_path, 65536) != ARCHIVE_OK ||
        archive_read_next_header(a, &e) != ARCHIVE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: %s", archive_error_string(a));
        goto out;
    }
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &len, &off);
        if (r == ARCHIVE_EOF) {
            break;
        }
        if (r != ARCHIVE_OK) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: %s", archive_error_string(a));
            goto out;
        }
        EVP_DigestUpdate(ctx, buf, len);
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < mdlen; i++) {
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    }
    rv = 0;
out:
    EVP_MD_CTX_free(ctx);
    archive_read_free(a);
    return rv;
}

/* Open (creating) the directory `rel` under the dir fd `root`, never
 * following a symlink. Returns an fd or -errno. */
static int open_dir_beneath(int root, const char *rel)
{
    char buf[PATH_MAX];
    int fd = dup(root);
    if (fd < 0) {
        return -errno;
    }
    snprintf(buf, sizeof(buf), "%s", rel);
    for (char *c = strtok(buf, "/"); c; c = strtok(NULL, "/")) {
        if (mkdirat(fd, c, 0755) != 0 && errno != EEXIST) {
            int e = -errno;
            close(fd);
            return e;
        }
        int nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = -errno;
        close(fd);
        if (nfd < 0) {
            return e;
        }
        fd = nfd;
    }
    return fd;
}

static int split_parent(const char *clean, char *parent, size_t size,
                        const char **name)
{
    const char *slash = strrchr(clean, '/');
    if (!slash) {
        parent[0] = '\0';
        *name = clean;
        return 0;
    }
    snprintf(parent, size, "%.*s", (int)(slash - clean), clean);
    *name = slash + 1;
    return 0;
}

static int apply_whiteout(int root, const char *clean, char *errmsg)
{
    char parent[PATH_MAX];
    const char *name;
    split_parent(clean, parent, sizeof(parent), &name);
    int dfd = open_dir_beneath(root, parent);
    if (dfd < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: whiteout %s: %s", clean,
                      strerror(-dfd));
        return SWARM_EINVAL;
    }
    if (unlinkat(dfd, name, 0) != 0 && errno == EISDIR) {
        unlinkat(dfd, name, AT_REMOVEDIR);
    }
    int rv = 0;
    if (mknodat(dfd, name, S_IFCHR | 0, makedev(0, 0)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: whiteout %s: %s", clean,
                      strerror(errno));
        rv = SWARM_EIO;
    }
    close(dfd);
    return rv;
}

static int apply_opaque(int root, const char *dir, char *errmsg)
{
    int dfd = open_dir_beneath(root, dir);
    if (dfd < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: opaque %s: %s", dir,
                      strerror(-dfd));
        return SWARM_EINVAL;
    }
    int rv = 0;
    if (fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: opaque %s: %s", dir,
                      strerror(errno));
        rv = SWARM_EIO;
    }
    close(dfd);
    return rv;
}

static int copy_data(struct archive *in, struct archive *out, char *errmsg)
{
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(in, &buf, &len, &off);
        if (r == ARCHIVE_EOF) {
            return 0;
        }
        if (r != ARCHIVE_OK) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: %s", archive_error_string(in));
            return SWARM_EINVAL;
        }
        if (archive_write_data_block(out, buf, len, off) != ARCHIVE_OK) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: %s", archive_error_string(out));
            return SWARM_EIO;
        }
    }
}

int layer_unpack(const char *blob_path, const char *dest_dir,
                 const char *diff_id, char *errmsg)
{
    char clean[PATH_MAX], full[PATH_MAX * 2], digest[72];
    VEC(char *) opaque = {0};
    struct archive_entry *e;
    int rv;
    if (diff_id) {
        rv = stream_sha256(blob_path, digest, errmsg);
        if (rv != 0) {
            return rv;
        }
        if (strcmp(digest, diff_id) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "layer diff ID mismatch: expected %s, got %s", diff_id, digest);
            return SWARM_ECORRUPT;
        }
    }
    int root = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct archive *a = archive_read_new();
    struct archive *w = archive_write_disk_new();
    if (root < 0 || !a || !w) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: %s: %s", dest_dir, strerror(errno));
        rv = SWARM_EIO;
        goto out;
    }
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    archive_write_disk_set_options(
        w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
               ARCHIVE_EXTRACT_XATTR |
               ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    if (archive_read_open_filename(a, blob_path, 65536) != ARCHIVE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: %s", archive_error_string(a));
        rv = SWARM_EINVAL;
        goto out;
    }
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) {
            break;
        }
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: %s", archive_error_string(a));
            rv = SWARM_EINVAL;
            goto out;
        }
        enum layer_entry_kind kind;
        rv = layer_entry_classify(archive_entry_pathname(e), clean, sizeof(clean),
                                  &kind, errmsg);
        if (rv != 0) {
            goto out;
        }
        if (kind == LAYER_ENTRY_WHITEOUT) {
            rv = apply_whiteout(root, clean, errmsg);
            if (rv != 0) {
                goto out;
            }
            continue;
        }
        if (kind == LAYER_ENTRY_OPAQUE) {
            char *d = strdup(clean);
            if (!d || vec_push(&opaque, d) != 0) {
                free(d);
                rv = SWARM_ENOMEM;
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
                goto out;
            }
            continue;
        }
        if (clean[0] == '\0') {
            continue; /* "./": the layer's root, which is dest_dir */
        }
        snprintf(full, sizeof(full), "%s/%s", dest_dir, clean);
        archive_entry_set_pathname(e, full);
        const char *link = archive_entry_hardlink(e);
        if (link) {
            enum layer_entry_kind lk;
            rv = layer_entry_classify(link, clean, sizeof(clean), &lk, errmsg);
            if (rv != 0) {
                goto out;
            }
            if (lk != LAYER_ENTRY_NORMAL || clean[0] == '\0') {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: invalid hard link target: %s", link);
                rv = SWARM_EINVAL;
                goto out;
            }
            snprintf(full, sizeof(full), "%s/%s", dest_dir, clean);
            archive_entry_set_hardlink(e, full);
        }
        r = archive_write_header(w, e);
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: %s: %s",
                          archive_entry_pathname(e) + strlen(dest_dir) + 1,
                          archive_error_string(w));
            rv = SWARM_EINVAL;
            goto out;
        }
        if (archive_entry_size(e) > 0) {
            rv = copy_data(a, w, errmsg);
            if (rv != 0) {
                goto out;
            }
        }
        if (archive_write_finish_entry(w) < ARCHIVE_WARN) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: %s", archive_error_string(w));
            rv = SWARM_EIO;
            goto out;
        }
    }
    if (archive_write_close(w) != ARCHIVE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "layer: %s", archive_error_string(w));
        rv = SWARM_EIO;
        goto out;
    }
    for (size_t i = 0; i < opaque.len; i++) {
        rv = apply_opaque(root, opaque.items[i], errmsg);
        if (rv != 0) {
            goto out;
        }
    }
    rv = 0;
out:
    for (size_t i = 0; i < opaque.len; i++) {
        free(opaque.items[i]);
    }
    vec_free(&opaque);
    if (w) {
        archive_write_free(w);
    }
    if (a) {
        archive_read_free(a);
    }
    if (root >= 0) {
        close(root);
    }
    return rv;
}
