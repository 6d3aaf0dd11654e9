/* Registry access without a store (image.h): tag -> digest for the
 * manager's pinning, and the login check for swarmctl. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "err.h"
#include "image.h"
#include "registry.h"

int image_resolve_digest(const char *ref_text, const char *registry_auth,
                         const char *const *insecure, size_t n_insecure,
                         char *digest_out, char *errmsg)
{
    struct imgref ref;
    struct registry_client c;
    char ctype[128];
    char *body = NULL;
    size_t len;
    int rv = imgref_parse(ref_text, &ref, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = registry_client_init(&c, &ref, registry_auth, insecure, n_insecure, errmsg);
    if (rv == 0) {
        rv = registry_get_manifest(&c, ref.digest ? ref.digest : ref.tag, &body, &len,
                                   ctype, digest_out, errmsg);
        free(body);
        registry_client_free(&c);
    }
    imgref_free(&ref);
    return rv;
}

struct resolve_req {
    uv_work_t work;
    char *ref;
    char *auth;
    char **insecure;
    size_t n_insecure;
    image_resolve_cb cb;
    void *data;
    int status;
    char digest[IMGREF_DIGEST_SIZE];
    char errmsg[SWARM_ERRMSG_SIZE];
};

static void resolve_req_free(struct resolve_req *r)
{
    free(r->ref);
    if (r->auth) {
        explicit_bzero(r->auth, strlen(r->auth));
    }
    free(r->auth);
    for (size_t i = 0; i < r->n_insecure; i++) {
        free(r->insecure[i]);
    }
    free(r->insecure);
    free(r);
}

static void resolve_work(uv_work_t *w)
{
    struct resolve_req *r = w->data;
    r->status = image_resolve_digest(r->ref, r->auth, (const char *const *)r->insecure,
                                     r->n_insecure, r->digest, r->errmsg);
}

static void resolve_done(uv_work_t *w, int status)
{
    struct resolve_req *r = w->data;
    if (status == UV_ECANCELED) {
        r->status = SWARM_ECANCELED;
        snprintf(r->errmsg, sizeof(r->errmsg), "canceled");
    }
    r->cb(r->data, r->status, r->status ? r->errmsg : NULL, r->status ? NULL : r->digest);
    resolve_req_free(r);
}

int image_resolve_async(uv_loop_t *loop, const char *ref,
                        const char *registry_auth,
                        const char *const *insecure, size_t n_insecure,
                        image_resolve_cb cb, void *data, char *errmsg)
{
    struct resolve_req *r = calloc(1, sizeof(*r));
    if (!r) {
        goto oom;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    r->work.data = r;
    r->cb = cb;
    r->data = data;
    r->ref = strdup(ref);
    r->auth = registry_auth && *registry_auth ? strdup(registry_auth) : NULL;
    r->insecure = calloc(n_insecure + 1, sizeof(char *));
    if (!r->ref || (registry_auth && *registry_auth && !r->auth) || !r->insecure) {
        goto oom;
    }
    for (size_t i = 0; i < n_insecure; i++) {
        r->insecure[i] = strdup(insecure[i]);
        if (!r->insecure[i]) {
            goto oom;
        }
        r->n_insecure++;
    }
    int uvr = uv_queue_work(loop, &r->work, resolve_work, resolve_done);
    if (uvr != 0) {
        resolve_req_free(r);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "resolve: %s", uv_strerror(uvr));
        return SWARM_EIO;
    }
    return 0;
oom:
    if (r) {
        resolve_req_free(r);
    }
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
    return SWARM_ENOMEM;
}

int image_registry_login(const char *registry, const char *username,
                         const char *password, const char *const *insecure,
                         size_t n_insecure, char *errmsg)
{
    /* A reference on that registry, for the client's host and scheme. */
    char text[600];
    struct imgref ref;
    struct registry_client c;
    snprintf(text, sizeof(text), "%s/x", registry);
    int rv = imgref_parse(text, &ref, errmsg);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid registry: %s", registry);
        return rv;
    }
    rv = registry_client_init(&c, &ref, NULL, insecure, n_insecure, errmsg);
    if (rv == 0) {
        c.username = strdup(username);
        c.password = strdup(password);
        rv = c.username && c.password ? registry_ping(&c, errmsg) : SWARM_ENOMEM;
        registry_client_free(&c);
    }
    imgref_free(&ref);
    return rv;
}
