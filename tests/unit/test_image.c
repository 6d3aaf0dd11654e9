/* Unit tests of the image library's pure parts (imgref, manifest, layer
 * entries) and of layer unpack on a temp dir: Docker's normalisation,
 * manifest list platform choice, image config fields, challenges, encoded
 * auth, whiteouts and path escapes. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "err.h"
#include "imgpin.h"
#include "imgref.h"
#include "manifest.h"
#include "test.h"
#include "unpack.h"

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define E64 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static void norm(const char *in, const char *want)
{
    struct imgref r;
    char err[SWARM_ERRMSG_SIZE], buf[600];
    ASSERT_INT_EQ(imgref_parse(in, &r, err), 0);
    imgref_format(&r, buf, sizeof(buf));
    imgref_free(&r);
    ASSERT_STR_EQ(buf, want);
}

TEST(imgref_normalises_as_docker)
{
    norm("busybox", "docker.io/library/busybox:latest");
    norm("busybox:1.36", "docker.io/library/busybox:1.36");
    norm("user/app", "docker.io/user/app:latest");
    norm("index.docker.io/library/nginx", "docker.io/library/nginx:latest");
    norm("docker.io/nginx:1", "docker.io/library/nginx:1");
    norm("127.0.0.1:5000/busybox:1", "127.0.0.1:5000/busybox:1");
    norm("localhost/x", "localhost/x:latest");
    norm("localhost:5000/a/b/c:v2", "localhost:5000/a/b/c:v2");
    norm("example.com/team/app@" D64, "example.com/team/app@" D64);
    norm("busybox:1@" D64, "docker.io/library/busybox:1@" D64);
    norm("a__b/c-d.e:T_1.x", "docker.io/a__b/c-d.e:T_1.x");
}

TEST(imgref_registry_host_rule)
{
    struct imgref r;
    char err[SWARM_ERRMSG_SIZE];
    /* "library" has no '.' or ':' and is not localhost: a path, not a host */
    ASSERT_INT_EQ(imgref_parse("library/busybox", &r, err), 0);
    ASSERT_STR_EQ(r.domain, "docker.io");
    ASSERT_STR_EQ(imgref_api_host(&r), "registry-1.docker.io");
    imgref_free(&r);
    ASSERT_INT_EQ(imgref_parse("my.reg:443/busybox", &r, err), 0);
    ASSERT_STR_EQ(r.domain, "my.reg:443");
    ASSERT_STR_EQ(r.path, "busybox");
    ASSERT_STR_EQ(imgref_api_host(&r), "my.reg:443");
    imgref_free(&r);
    ASSERT_INT_EQ(imgref_parse("busybox@" D64, &r, err), 0);
    ASSERT(r.tag == NULL);
    ASSERT_STR_EQ(r.digest, D64);
    imgref_free(&r);
}

TEST(imgref_refuses_bad_references)
{
    static const char *const bad[] = {
        "", "Busybox", "busybox:", "busybox@sha256:abc", ":tag", "/busybox",
        "busybox//x", "-busybox", "busybox:-x", "a/b:c:d", "host:port/x",
        "busybox@md5:0123", "busy box",
    };
    char err[SWARM_ERRMSG_SIZE];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct imgref r = {0};
        if (imgref_parse(bad[i], &r, err) != SWARM_EINVAL) {
            FAILF("accepted \"%s\"", bad[i]);
        }
        ASSERT(strncmp(err, "invalid reference format", 24) == 0);
    }
    struct imgref r;
    ASSERT_INT_EQ(imgref_parse("Busybox", &r, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid reference format: repository name must be lowercase");
}

TEST(imgref_insecure_matches_host_and_port)
{
    const char *list[] = {"127.0.0.1:5000", "reg.local"};
    ASSERT(imgref_registry_insecure("127.0.0.1:5000", list, 2));
    ASSERT(!imgref_registry_insecure("127.0.0.1:5001", list, 2));
    ASSERT(imgref_registry_insecure("reg.local:8080", list, 2));
    ASSERT(imgref_registry_insecure("reg.local", list, 2));
    ASSERT(!imgref_registry_insecure("reg.localx", list, 2));
    ASSERT(!imgref_registry_insecure("docker.io", list, 0));
}

static const char index_json[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":["
    "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" E64 "\",\"size\":10,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D64 "\",\"size\":10,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
    "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" E64 "\",\"size\":10,"
    "\"platform\":{\"os\":\"windows\",\"architecture\":\"amd64\"}}]}";

TEST(manifest_index_picks_the_node_platform)
{
    struct manifest m;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(manifest_parse(index_json, strlen(index_json), NULL, &m, err), 0);
    ASSERT_INT_EQ(m.kind, MANIFEST_INDEX);
    ASSERT_INT_EQ(m.n_entries, 3);
    ASSERT_INT_EQ(manifest_pick_platform(&m, "linux", "amd64", NULL), 1);
    ASSERT_STR_EQ(m.entries[1].digest, D64);
    ASSERT_INT_EQ(manifest_pick_platform(&m, "linux", "arm64", NULL), 0);
    ASSERT_INT_EQ(manifest_pick_platform(&m, "linux", "arm64", "v8"), 0);
    ASSERT_INT_EQ(manifest_pick_platform(&m, "linux", "s390x", NULL), -1);
    ASSERT_INT_EQ(manifest_pick_platform(&m, "windows", "arm64", NULL), -1);
    manifest_free(&m);
}

TEST(manifest_image_and_docker_list)
{
    static const char img[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
        "\"config\":{\"digest\":\"" D64 "\",\"size\":3},"
        "\"layers\":[{\"digest\":\"" E64 "\",\"size\":5},{\"digest\":\"" D64 "\"}]}";
    static const char list_no_mt[] =
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D64 "\","
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
    struct manifest m;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(manifest_parse(img, strlen(img), NULL, &m, err), 0);
    ASSERT_INT_EQ(m.kind, MANIFEST_IMAGE);
    ASSERT_STR_EQ(m.config.digest, D64);
    ASSERT_INT_EQ(m.n_entries, 2);
    ASSERT_STR_EQ(m.entries[0].digest, E64);
    ASSERT_INT_EQ(m.entries[0].size, 5);
    manifest_free(&m);
    ASSERT_INT_EQ(manifest_parse(list_no_mt, strlen(list_no_mt), MT_DOCKER_LIST, &m, err), 0);
    ASSERT_INT_EQ(m.kind, MANIFEST_INDEX);
    manifest_free(&m);
}

TEST(manifest_refuses_bad_documents)
{
    static const char *const bad[] = {
        "not json",
        "{\"schemaVersion\":1,\"fsLayers\":[]}",
        "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D64 "\"}}",
        "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:zz\"},\"layers\":[]}",
        "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D64 "\"},\"layers\":[{\"digest\":1}]}",
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\"}",
    };
    char err[SWARM_ERRMSG_SIZE];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct manifest m;
        if (manifest_parse(bad[i], strlen(bad[i]), NULL, &m, err) != SWARM_EINVAL) {
            FAILF("accepted %s", bad[i]);
        }
    }
}

TEST(imgconfig_fields)
{
    static const char cfg[] =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{"
        "\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Env\":[\"A=1\",\"PATH=/bin\"],"
        "\"WorkingDir\":\"/srv\",\"User\":\"nobody\",\"StopSignal\":\"SIGQUIT\","
        "\"ExposedPorts\":{\"80/tcp\":{}},"
        "\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":2000000000,"
        "\"Retries\":3}},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D64 "\",\"" E64 "\"]}}";
    struct image_info *info = calloc(1, sizeof(*info));
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(imgconfig_parse(cfg, strlen(cfg), info, err), 0);
    ASSERT(info->has_entrypoint);
    ASSERT(!info->has_cmd);
    ASSERT_INT_EQ(info->n_entrypoint, 2);
    ASSERT_STR_EQ(info->entrypoint[1], "-c");
    ASSERT_INT_EQ(info->n_env, 2);
    ASSERT_STR_EQ(info->working_dir, "/srv");
    ASSERT_STR_EQ(info->user, "nobody");
    ASSERT_STR_EQ(info->stop_signal, "SIGQUIT");
    ASSERT_INT_EQ(info->n_exposed_ports, 1);
    ASSERT_STR_EQ(info->exposed_ports[0], "80/tcp");
    ASSERT(info->healthcheck != NULL);
    ASSERT_STR_EQ(info->healthcheck->test[0], "CMD-SHELL");
    ASSERT_INT_EQ(info->healthcheck->interval_ns, 2000000000LL);
    ASSERT_INT_EQ(info->healthcheck->retries, 3);
    ASSERT_INT_EQ(info->n_diff_ids, 2);
    ASSERT_STR_EQ(info->diff_ids[1], E64);
    ASSERT_STR_EQ(info->arch, "amd64");
    image_info_free(info);
    info = calloc(1, sizeof(*info));
    static const char no_diffs[] = "{\"config\":{}}";
    ASSERT_INT_EQ(imgconfig_parse(no_diffs, strlen(no_diffs), info, err), SWARM_EINVAL);
    image_info_free(info);
}

TEST(auth_challenges)
{
    struct auth_challenge c;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(auth_challenge_parse(
                      "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                      "scope=\"repository:library/busybox:pull\"",
                      &c, err),
                  0);
    ASSERT_STR_EQ(c.scheme, "Bearer");
    ASSERT_STR_EQ(c.realm, "https://auth.docker.io/token");
    ASSERT_STR_EQ(c.service, "registry.docker.io");
    ASSERT_STR_EQ(c.scope, "repository:library/busybox:pull");
    auth_challenge_free(&c);
    ASSERT_INT_EQ(auth_challenge_parse("Basic realm=\"test-realm\"", &c, err), 0);
    ASSERT_STR_EQ(c.scheme, "Basic");
    ASSERT(c.scope == NULL);
    auth_challenge_free(&c);
    ASSERT_INT_EQ(auth_challenge_parse("Bearer service=\"x\"", &c, err), SWARM_EPROTO);
    ASSERT_INT_EQ(auth_challenge_parse("Bearer realm=\"unterminated", &c, err), SWARM_EPROTO);
    char *tok;
    ASSERT_INT_EQ(auth_token_parse("{\"access_token\":\"abc\"}", 22, &tok, err), 0);
    ASSERT_STR_EQ(tok, "abc");
    free(tok);
    ASSERT_INT_EQ(auth_token_parse("{}", 2, &tok, err), SWARM_EPROTO);
}

TEST(registry_auth_round_trip)
{
    char *u, *p, err[SWARM_ERRMSG_SIZE];
    char *enc = registry_auth_encode("alice", "s3cr?t>>", "127.0.0.1:5000");
    ASSERT(enc != NULL);
    ASSERT(strchr(enc, '+') == NULL && strchr(enc, '/') == NULL);
    ASSERT_INT_EQ(registry_auth_decode(enc, &u, &p, err), 0);
    ASSERT_STR_EQ(u, "alice");
    ASSERT_STR_EQ(p, "s3cr?t>>");
    free(u);
    free(p);
    free(enc);
    /* {"auth":"base64(bob:pw)"} as docker's config.json keeps it */
    ASSERT_INT_EQ(registry_auth_decode("eyJhdXRoIjoiWW05aU9uQjMifQ", &u, &p, err), 0);
    ASSERT_STR_EQ(u, "bob");
    ASSERT_STR_EQ(p, "pw");
    free(u);
    free(p);
    ASSERT_INT_EQ(registry_auth_decode("", &u, &p, err), 0);
    ASSERT(u == NULL && p == NULL);
    ASSERT_INT_EQ(registry_auth_decode("!!!not-base64", &u, &p, err), SWARM_EINVAL);
}

static void classify(const char *in, int want_rv, int want_kind, const char *want_clean)
{
    char clean[PATH_MAX], err[SWARM_ERRMSG_SIZE];
    enum layer_entry_kind kind = LAYER_ENTRY_NORMAL;
    int rv = layer_entry_classify(in, clean, sizeof(clean), &kind, err);
    if (rv != want_rv) {
        FAILF("%s: rv %d, want %d", in, rv, want_rv);
    }
    if (rv == 0) {
        ASSERT_INT_EQ(kind, want_kind);
        ASSERT_STR_EQ(clean, want_clean);
    }
}

TEST(layer_entries_whiteouts_and_escapes)
{
    classify("./etc/passwd", 0, LAYER_ENTRY_NORMAL, "etc/passwd");
    classify("etc//x/./y/", 0, LAYER_ENTRY_NORMAL, "etc/x/y");
    classify("./", 0, LAYER_ENTRY_NORMAL, "");
    classify("etc/.wh.passwd", 0, LAYER_ENTRY_WHITEOUT, "etc/passwd");
    classify(".wh.tmp", 0, LAYER_ENTRY_WHITEOUT, "tmp");
    classify("var/lib/.wh..wh..opq", 0, LAYER_ENTRY_OPAQUE, "var/lib");
    classify("./.wh..wh..opq", 0, LAYER_ENTRY_OPAQUE, "");
    classify("/etc/passwd", SWARM_EINVAL, 0, NULL);
    classify("../etc/passwd", SWARM_EINVAL, 0, NULL);
    classify("a/../../b", SWARM_EINVAL, 0, NULL);
    classify("a/..", SWARM_EINVAL, 0, NULL);
    classify("a/.wh..", SWARM_EINVAL, 0, NULL);
    classify("a/.wh.", SWARM_EINVAL, 0, NULL);
    classify("", SWARM_EINVAL, 0, NULL);
}

/* ---- unpack on disk ---- */

struct tarent {
    const char *name;
    char type; /* 'f' file, 'd' dir, 'l' symlink, 'h' hard link */
    const char *data; /* contents or link target */
};

static void write_tar(const char *path, const struct tarent *ents, size_t n, bool gz)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (gz) {
        archive_write_add_filter_gzip(a);
    }
    ASSERT_INT_EQ(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ents[i].name);
        archive_entry_set_perm(e, ents[i].type == 'd' ? 0755 : 0644);
        if (ents[i].type == 'd') {
            archive_entry_set_filetype(e, AE_IFDIR);
        } else if (ents[i].type == 'l') {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, ents[i].data);
        } else if (ents[i].type == 'h') {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, ents[i].data);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)strlen(ents[i].data));
        }
        archive_write_header(a, e);
        if (ents[i].type == 'f') {
            archive_write_data(a, ents[i].data, strlen(ents[i].data));
        }
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

struct unpack_fix {
    char dir[PATH_MAX];
    char tar[PATH_MAX + 16];
    char dest[PATH_MAX + 16];
};

static void unpack_setup(struct unpack_fix *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_image.XXXXXX");
    ASSERT(mkdtemp(f->dir) != NULL);
    snprintf(f->tar, sizeof(f->tar), "%s/layer.tar", f->dir);
    snprintf(f->dest, sizeof(f->dest), "%s/dest", f->dir);
    ASSERT_INT_EQ(mkdir(f->dest, 0755), 0);
}

static void unpack_teardown(struct unpack_fix *f)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) {
        FAILF("cleanup failed");
    }
}

static bool exists_at(const struct unpack_fix *f, const char *rel, struct stat *st)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", f->dest, rel);
    return lstat(p, st) == 0;
}

TEST_F(unpack_gzip_layer_with_whiteouts, struct unpack_fix, unpack_setup, unpack_teardown)
{
    static const struct tarent ents[] = {
        {"./", 'd', NULL},
        {"./etc/", 'd', NULL},
        {"./etc/hostname", 'f', "box\n"},
        {"./etc/.wh.passwd", 'f', ""},
        {"./var/lib/.wh..wh..opq", 'f', ""},
        {"./var/", 'd', NULL},
        {"./var/lib/", 'd', NULL},
        {"./var/lib/kept", 'f', "k"},
        {"./bin/", 'd', NULL},
        {"./bin/sh", 'l', "/bin/busybox"},
        {"./bin/link", 'h', "etc/hostname"},
    };
    char err[SWARM_ERRMSG_SIZE], diff[72];
    struct stat st;
    if (geteuid() != 0) {
        return; /* whiteouts are device nodes and xattrs in trusted.: root only */
    }
    write_tar(f->tar, ents, sizeof(ents) / sizeof(ents[0]), false);
    ASSERT_INT_EQ(file_sha256(f->tar, diff, err), 0);
    write_tar(f->tar, ents, sizeof(ents) / sizeof(ents[0]), true);
    if (layer_unpack(f->tar, f->dest, diff, err) != 0) {
        FAILF("unpack: %s", err);
    }
    ASSERT(exists_at(f, "etc/hostname", &st) && S_ISREG(st.st_mode));
    ASSERT(exists_at(f, "etc/passwd", &st));
    ASSERT(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
    ASSERT(!exists_at(f, "etc/.wh.passwd", &st));
    ASSERT(exists_at(f, "bin/sh", &st) && S_ISLNK(st.st_mode));
    ASSERT(exists_at(f, "bin/link", &st) && st.st_nlink == 2);
    ASSERT(!exists_at(f, "var/lib/.wh..wh..opq", &st));
    char p[PATH_MAX * 2], v[8] = "";
    snprintf(p, sizeof(p), "%s/var/lib", f->dest);
    ASSERT_INT_EQ(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
    ASSERT(v[0] == 'y');
}

TEST_F(unpack_refuses_a_wrong_diff_id, struct unpack_fix, unpack_setup, unpack_teardown)
{
    static const struct tarent ents[] = {{"a", 'f', "x"}};
    char err[SWARM_ERRMSG_SIZE];
    write_tar(f->tar, ents, 1, true);
    ASSERT_INT_EQ(layer_unpack(f->tar, f->dest, D64, err), SWARM_ECORRUPT);
    ASSERT(strstr(err, "diff ID mismatch") != NULL);
    struct stat st;
    ASSERT(!exists_at(f, "a", &st));
}

static void refused(struct unpack_fix *f, const struct tarent *ents, size_t n,
                    const char *outside)
{
    char err[SWARM_ERRMSG_SIZE], p[PATH_MAX * 2];
    struct stat st;
    write_tar(f->tar, ents, n, true);
    int rv = layer_unpack(f->tar, f->dest, NULL, err);
    if (rv == 0) {
        FAILF("an escaping layer was unpacked");
    }
    snprintf(p, sizeof(p), "%s/%s", f->dir, outside);
    ASSERT(lstat(p, &st) != 0);
}

TEST_F(unpack_refuses_dotdot, struct unpack_fix, unpack_setup, unpack_teardown)
{
    static const struct tarent ents[] = {{"../escaped", 'f', "x"}};
    refused(f, ents, 1, "escaped");
}

TEST_F(unpack_refuses_absolute, struct unpack_fix, unpack_setup, unpack_teardown)
{
    char abs[PATH_MAX + 32];
    snprintf(abs, sizeof(abs), "%s/escaped", f->dir);
    struct tarent ents[] = {{abs, 'f', "x"}};
    refused(f, ents, 1, "escaped");
}

TEST_F(unpack_refuses_symlink_traversal, struct unpack_fix, unpack_setup, unpack_teardown)
{
    char target[PATH_MAX + 16];
    snprintf(target, sizeof(target), "%s", f->dir);
    struct tarent ents[] = {{"up", 'l', target}, {"up/escaped", 'f', "x"}};
    refused(f, ents, 2, "escaped");
    struct tarent rel[] = {{"up2", 'l', ".."}, {"up2/escaped2", 'f', "x"}};
    refused(f, rel, 2, "escaped2");
}

TEST_F(unpack_refuses_escaping_hard_link, struct unpack_fix, unpack_setup, unpack_teardown)
{
    static const struct tarent ents[] = {{"h", 'h', "../layer.tar"}};
    refused(f, ents, 1, "dest/h");
}

TEST_F(unpack_refuses_whiteout_through_symlink, struct unpack_fix, unpack_setup,
       unpack_teardown)
{
    char target[PATH_MAX + 16];
    snprintf(target, sizeof(target), "%s", f->dir);
    struct tarent ents[] = {{"up", 'l', target}, {"up/.wh.l.tar", 'f', ""}};
    char err[SWARM_ERRMSG_SIZE];
    write_tar(f->tar, ents, 2, false);
    /* the tar itself is the file the whiteout would replace */
    char copy[PATH_MAX + 32];
    snprintf(copy, sizeof(copy), "%s/l.tar", f->dir);
    ASSERT_INT_EQ(rename(f->tar, copy), 0);
    ASSERT(layer_unpack(copy, f->dest, NULL, err) != 0);
    struct stat st;
    ASSERT(lstat(copy, &st) == 0 && S_ISREG(st.st_mode));
}

TEST_F(unpack_refuses_garbage, struct unpack_fix, unpack_setup, unpack_teardown)
{
    char err[SWARM_ERRMSG_SIZE];
    FILE *fp = fopen(f->tar, "w");
    fputs("this is not a tar file at all, not even gzip", fp);
    fclose(fp);
    ASSERT(layer_unpack(f->tar, f->dest, NULL, err) != 0);
}

TEST(imgpin_when_to_resolve)
{
    char r[600];
    /* create: resolve unless the user gave a digest */
    ASSERT(imgpin_plan(IMGPIN_ALWAYS, NULL, 0, "127.0.0.1:5000/busybox:1", 0, r, sizeof(r)));
    ASSERT_STR_EQ(r, "127.0.0.1:5000/busybox:1");
    ASSERT(!imgpin_plan(IMGPIN_ALWAYS, NULL, 0, "busybox@" D64, 0, r, sizeof(r)));
    /* update, image unchanged, no --force: keep the pin */
    ASSERT(!imgpin_plan(IMGPIN_ALWAYS, "h:5/b:1@" D64, 3, "h:5/b:1@" D64, 3, r, sizeof(r)));
    /* --image: resolve the new one */
    ASSERT(imgpin_plan(IMGPIN_ALWAYS, "h:5/b:1@" D64, 3, "h:5/b:2", 3, r, sizeof(r)));
    ASSERT_STR_EQ(r, "h:5/b:2");
    /* --force: follow the tag behind the pin */
    ASSERT(imgpin_plan(IMGPIN_ALWAYS, "h:5/b:1@" D64, 3, "h:5/b:1@" D64, 4, r, sizeof(r)));
    ASSERT_STR_EQ(r, "h:5/b:1");
    ASSERT(imgpin_plan(IMGPIN_ALWAYS, "h:5/b:1", 3, "h:5/b:1", 4, r, sizeof(r)));
    ASSERT_STR_EQ(r, "h:5/b:1");
    /* --force on a pin by digest alone: nothing to follow */
    ASSERT(!imgpin_plan(IMGPIN_ALWAYS, "h:5/b@" D64, 3, "h:5/b@" D64, 4, r, sizeof(r)));
    /* --resolve-image changed: not on --force; never: not at all */
    ASSERT(!imgpin_plan(IMGPIN_CHANGED, "h:5/b:1@" D64, 3, "h:5/b:1@" D64, 4, r, sizeof(r)));
    ASSERT(imgpin_plan(IMGPIN_CHANGED, "h:5/b:1@" D64, 3, "h:5/b:2", 3, r, sizeof(r)));
    ASSERT(imgpin_plan(IMGPIN_CHANGED, NULL, 0, "h:5/b:2", 0, r, sizeof(r)));
    ASSERT(!imgpin_plan(IMGPIN_NEVER, NULL, 0, "h:5/b:2", 0, r, sizeof(r)));
    ASSERT(!imgpin_plan(IMGPIN_NEVER, "h:5/b:1", 3, "h:5/b:2", 4, r, sizeof(r)));
    ASSERT_INT_EQ(imgpin_mode_parse(NULL), IMGPIN_ALWAYS);
    ASSERT_INT_EQ(imgpin_mode_parse(""), IMGPIN_ALWAYS);
    ASSERT_INT_EQ(imgpin_mode_parse("always"), IMGPIN_ALWAYS);
    ASSERT_INT_EQ(imgpin_mode_parse("changed"), IMGPIN_CHANGED);
    ASSERT_INT_EQ(imgpin_mode_parse("never"), IMGPIN_NEVER);
    ASSERT_INT_EQ(imgpin_mode_parse("sometimes"), -1);
}

TEST(imgpin_familiar_form)
{
    char out[600];
    ASSERT_INT_EQ(imgpin_format("busybox", D64, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "busybox:latest@" D64);
    ASSERT_INT_EQ(imgpin_format("docker.io/user/app:2", D64, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "user/app:2@" D64);
    ASSERT_INT_EQ(imgpin_format("127.0.0.1:5000/busybox:1", D64, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "127.0.0.1:5000/busybox:1@" D64);
    ASSERT_INT_EQ(imgpin_format("Bad", D64, out, sizeof(out)), SWARM_EINVAL);
    ASSERT_INT_EQ(imgpin_format("busybox", "sha256:12", out, sizeof(out)), SWARM_EINVAL);
}

TEST_MAIN()
