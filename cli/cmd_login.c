/* `swarmctl login|logout [SERVER]` and the credentials behind
 * `service create|update --with-registry-auth`, as Docker's CLI:
 *
 *   login checks the credentials against the registry (GET /v2/ with
 *     them, following a bearer challenge: image_registry_login) and stores
 *     them in ~/.swarmctl/config.json (0600, dir 0700) in Docker's
 *     config.json format: {"auths": {"SERVER": {"auth": base64(user:pass)}}};
 *   logout removes them;
 *   --with-registry-auth sends those of the image's registry in
 *     ContainerSpec.registry_auth (base64url of Docker's AuthConfig JSON).
 * Plain HTTP is used for a registry the local swarmd was started with
 * --insecure-registry (read from `info`), as Docker's login goes through
 * its daemon's settings; otherwise HTTPS verified against the system CAs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cmd.h"
#include "cmd_service_opts.h"
#include "err.h"
#include "image.h"
#include "manifest.h"

#define HUB_KEY "https://index.docker.io/v1/"

static int config_path(char *out, size_t size, bool dir_only)
{
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL) {
        return -1;
    }
    snprintf(out, size, "%s/.swarmctl%s", home, dir_only ? "" : "/config.json");
    return 0;
}

/* The key a server is stored under: "host[:port]", Docker Hub's URL for
 * Docker Hub. */
static void server_key(const char *server, char *out, size_t size)
{
    const char *s = server != NULL ? server : "";
    if (strncmp(s, "https://", 8) == 0) {
        s += 8;
    } else if (strncmp(s, "http://", 7) == 0) {
        s += 7;
    }
    size_t n = strcspn(s, "/");
    if (n == 0 || (n == 9 && strncmp(s, "docker.io", 9) == 0) ||
        (n == 15 && strncmp(s, "index.docker.io", 15) == 0) ||
        (n == 20 && strncmp(s, "registry-1.docker.io", 20) == 0)) {
        snprintf(out, size, "%s", HUB_KEY);
        return;
    }
    snprintf(out, size, "%.*s", (int)n, s);
}

static json_t *config_load(const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        root = json_object();
    }
    if (root != NULL && !json_is_object(json_object_get(root, "auths"))) {
        json_object_set_new(root, "auths", json_object());
    }
    return root;
}

static int config_save(struct cli_ctx *ctx, json_t *root)
{
    char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 8];
    if (config_path(dir, sizeof dir, true) != 0 || config_path(path, sizeof path, false) != 0) {
        return cli_cmd_errorf(ctx, "cannot find the home directory");
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return cli_cmd_errorf(ctx, "mkdir %s: %s", dir, strerror(errno));
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char *text = json_dumps(root, JSON_INDENT(1));
    bool ok = fd >= 0 && text != NULL && fchmod(fd, 0600) == 0 &&
              write(fd, text, strlen(text)) == (ssize_t)strlen(text) && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    if (fd >= 0) {
        close(fd);
    }
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return cli_cmd_errorf(ctx, "writing %s: %s", path, strerror(errno));
    }
    return 0;
}

static char *b64(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out != NULL) {
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    }
    return out;
}

/* Read a line from the terminal, without echo when `secret`. */
static char *prompt(struct cli_ctx *ctx, const char *what, bool secret)
{
    char buf[1024];
    struct termios old, quiet;
    fprintf(ctx->out, "%s", what);
    fflush(ctx->out);
    bool restore = secret && tcgetattr(STDIN_FILENO, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = fgets(buf, sizeof buf, stdin);
    if (restore) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', ctx->out);
    }
    if (line == NULL) {
        return NULL;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

/* The local swarmd's --insecure-registry list, if it can be asked. */
static Swarm__InfoResponse *local_info(struct cli_ctx *ctx)
{
    Swarm__InfoRequest req = SWARM__INFO_REQUEST__INIT;
    struct cli_reply r;
    if (cli_conn_call(ctx->conn, &swarm__swarm__descriptor, "Info", &req.base, &r) != 0) {
        cli_cmd_free(r.resp);
        return NULL;
    }
    return (Swarm__InfoResponse *)r.resp;
}

int cmd_login(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *username = NULL, *password = NULL;
    bool password_stdin = false;
    struct cli_flag flags[] = {
        {'u', "username", CLI_FLAG_STRING, &username, "Username", "string", false, NULL},
        {'p', "password", CLI_FLAG_STRING, &password, "Password", "string", false, NULL},
        {0, "password-stdin", CLI_FLAG_BOOL, &password_stdin, "Take the password from stdin",
         NULL, false, NULL},
        {0, NULL, 0, NULL, NULL, NULL, false, NULL},
    };
    struct cli_spec spec = {"swarmctl login", "[OPTIONS] [SERVER]",
                            "Log in to a registry.\nIf no server is specified, the default is "
                            "defined by the daemon.",
                            NULL, CLI_ARGS_MAX, 0, 1, flags, false};
    char **pos, key[512], path[PATH_MAX], err[SWARM_ERRMSG_SIZE];
    int npos, rc;
    char *user = NULL, *pass = NULL;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    server_key(npos > 0 ? pos[0] : NULL, key, sizeof key);
    free(pos);
    if (password != NULL && password_stdin) {
        return cli_cmd_errorf(ctx, "--password and --password-stdin are mutually exclusive");
    }
    if (password_stdin && username == NULL) {
        return cli_cmd_errorf(ctx, "Must provide --username with --password-stdin");
    }
    if (password != NULL) {
        fprintf(ctx->err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
    }
    if (password_stdin) {
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, stdin);
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        pass = strdup(buf);
        explicit_bzero(buf, sizeof buf);
    } else if (password != NULL) {
        pass = strdup(password);
    }
    user = username != NULL ? strdup(username) : NULL;
    if ((user == NULL || pass == NULL) && !isatty(STDIN_FILENO)) {
        rc = cli_cmd_errorf(ctx, "Cannot perform an interactive login from a non TTY device");
        goto out;
    }
    if (user == NULL) {
        user = prompt(ctx, "Username: ", false);
    }
    if (pass == NULL && user != NULL) {
        pass = prompt(ctx, "Password: ", true);
    }
    if (user == NULL || user[0] == '\0' || pass == NULL || pass[0] == '\0') {
        rc = cli_cmd_errorf(ctx, user == NULL || user[0] == '\0' ? "Username is required"
                                                                  : "Password is required");
        goto out;
    }
    Swarm__InfoResponse *info = local_info(ctx);
    const char *host = strcmp(key, HUB_KEY) == 0 ? "docker.io" : key;
    rc = image_registry_login(host, user, pass,
                              info != NULL ? (const char *const *)info->insecure_registries : NULL,
                              info != NULL ? info->n_insecure_registries : 0, err);
    cli_cmd_free(info);
    if (rc != 0) {
        fprintf(ctx->err, "Error response from daemon: %s\n", err);
        rc = 1;
        goto out;
    }
    char *up = NULL, *auth = NULL;
    if (asprintf(&up, "%s:%s", user, pass) < 0 || (auth = b64(up)) == NULL) {
        free(up);
        rc = cli_cmd_errorf(ctx, "out of memory");
        goto out;
    }
    explicit_bzero(up, strlen(up));
    free(up);
    config_path(path, sizeof path, false);
    json_t *root = config_load(path);
    json_object_set_new(json_object_get(root, "auths"), key, json_pack("{s:s}", "auth", auth));
    free(auth);
    rc = config_save(ctx, root);
    json_decref(root);
    if (rc == 0) {
        fprintf(ctx->err,
                "WARNING! Your password will be stored unencrypted in %s.\n"
                "Configure a credential helper to remove this warning. See\n"
                "https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n\n",
                path);
        fprintf(ctx->out, "Login Succeeded\n");
    }
out:
    free(user);
    if (pass != NULL) {
        explicit_bzero(pass, strlen(pass));
    }
    free(pass);
    return rc;
}

int cmd_logout(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_flag flags[] = {{0, NULL, 0, NULL, NULL, NULL, false, NULL}};
    struct cli_spec spec = {"swarmctl logout", "[SERVER]",
                            "Log out from a registry.\nIf no server is specified, the default is "
                            "defined by the daemon.",
                            NULL, CLI_ARGS_MAX, 0, 1, flags, false};
    char **pos, key[512], path[PATH_MAX];
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    server_key(npos > 0 ? pos[0] : NULL, key, sizeof key);
    free(pos);
    if (config_path(path, sizeof path, false) != 0) {
        return cli_cmd_errorf(ctx, "cannot find the home directory");
    }
    json_t *root = config_load(path);
    json_t *auths = json_object_get(root, "auths");
    if (json_object_get(auths, key) == NULL) {
        fprintf(ctx->out, "Not logged in to %s\n", key);
        json_decref(root);
        return 0;
    }
    fprintf(ctx->out, "Removing login credentials for %s\n", key);
    json_object_del(auths, key);
    rc = config_save(ctx, root);
    json_decref(root);
    return rc;
}

int cli_registry_auth_fill(struct cli_ctx *ctx, Swarm__ContainerSpec *c)
{
    char key[512], path[PATH_MAX], errmsg[SWARM_ERRMSG_SIZE];
    struct imgref ref;
    if (c == NULL || c->image == NULL || imgref_parse(c->image, &ref, errmsg) != 0) {
        return 0; /* not an image reference: nothing to send */
    }
    server_key(ref.domain, key, sizeof key);
    imgref_free(&ref);
    if (config_path(path, sizeof path, false) != 0) {
        return 0;
    }
    json_t *root = config_load(path);
    const char *auth =
        json_string_value(json_object_get(json_object_get(json_object_get(root, "auths"), key),
                                          "auth"));
    char *user = NULL, *pass = NULL, *enc = NULL;
    int rv = 0;
    if (auth != NULL) {
        /* {"auth": base64(user:pass)} -> Docker's encoded AuthConfig */
        char *wrapped = NULL;
        if (asprintf(&wrapped, "{\"auth\":\"%s\"}", auth) >= 0) {
            char *w64 = b64(wrapped);
            if (w64 != NULL && registry_auth_decode(w64, &user, &pass, errmsg) == 0 &&
                user != NULL) {
                enc = registry_auth_encode(user, pass, key);
            }
            free(w64);
        }
        free(wrapped);
        if (enc == NULL) {
            rv = cli_cmd_errorf(ctx, "invalid credentials for %s in %s", key, path);
        }
    }
    if (enc != NULL) {
        if (c->registry_auth != NULL && c->registry_auth != protobuf_c_empty_string) {
            free(c->registry_auth);
        }
        c->registry_auth = enc;
    }
    free(user);
    if (pass != NULL) {
        explicit_bzero(pass, strlen(pass));
    }
    free(pass);
    json_decref(root);
    return rv;
}
