/* Registry v2 client (registry.h).
 *
 * A request: GET with the client's credentials as they stand (bearer token
 * if one was obtained, basic if the registry asked for it). On 401 the
 * WWW-Authenticate challenge says what to do, once per request:
 *   Bearer realm,service,scope -> GET realm?service=&scope= (with basic
 *     credentials when we have some), keep the token, retry;
 *   Basic -> retry with the credentials (refused when there are none).
 * A token is reused for the client's next requests and fetched again when
 * one of them gets a 401 (it expired). A second 401 is SWARM_EPERM. Connection failures are SWARM_EUNAVAIL
 * (the caller retries), 404 is SWARM_ENOTFOUND ("No such image"). */
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "err.h"
#include "manifest.h"

#define REGISTRY_DOC_MAX (4u << 20) /* manifests, configs, tokens */

struct sink {
    char *buf;     /* memory sink */
    size_t len;
    size_t cap;
    FILE *file;    /* file sink */
    EVP_MD_CTX *md;
    bool overflow;
};

struct reply {
    long status;
    char content_type[128];
    char digest[128];
    char challenge[1024];
};

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *data)
{
    struct sink *s = data;
    size_t n = size * nmemb;
    if (s->md) {
        EVP_DigestUpdate(s->md, ptr, n);
    }
    if (s->file) {
        return fwrite(ptr, 1, n, s->file);
    }
    if (s->len + n + 1 > REGISTRY_DOC_MAX) {
        s->overflow = true;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        while (cap < s->len + n + 1) {
            cap *= 2;
        }
        char *b = realloc(s->buf, cap);
        if (!b) {
            return 0;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, ptr, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

static void header_value(const char *line, size_t n, const char *name,
                         char *out, size_t size)
{
    size_t k = strlen(name);
    if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':') {
        return;
    }
    const char *v = line + k + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) {
        end--;
    }
    snprintf(out, size, "%.*s", (int)(end - v), v);
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *data)
{
    struct reply *r = data;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a redirect): forget the previous one's. */
        r->content_type[0] = r->digest[0] = r->challenge[0] = '\0';
    }
    header_value(line, n, "Content-Type", r->content_type, sizeof(r->content_type));
    header_value(line, n, "Docker-Content-Digest", r->digest, sizeof(r->digest));
    header_value(line, n, "WWW-Authenticate", r->challenge, sizeof(r->challenge));
    return n;
}

int registry_client_init(struct registry_client *c, const struct imgref *ref,
                         const char *registry_auth,
                         const char *const *insecure, size_t n_insecure,
                         char *errmsg)
{
    memset(c, 0, sizeof(*c));
    c->ref = ref;
    c->insecure = imgref_registry_insecure(ref->domain, insecure, n_insecure);
    snprintf(c->base, sizeof(c->base), "%s://%s", c->insecure ? "http" : "https",
             imgref_api_host(ref));
    int rv = registry_auth_decode(registry_auth, &c->username, &c->password, errmsg);
    if (rv != 0) {
        return rv;
    }
    c->curl = curl_easy_init();
    if (!c->curl) {
        registry_client_free(c);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    return 0;
}

void registry_client_free(struct registry_client *c)
{
    if (c->curl) {
        curl_easy_cleanup(c->curl);
    }
    free(c->username);
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
    }
    free(c->password);
    free(c->token);
    memset(c, 0, sizeof(*c));
}

/* One GET, no auth retry. */
static int perform(struct registry_client *c, const char *url,
                   const char *accept, bool basic, struct sink *sink,
                   struct reply *reply, char *errmsg)
{
    CURL *h = c->curl;
    struct curl_slist *hdrs = NULL;
    char authz[16384]; /* Docker Hub's tokens are a few KiB */
    curl_easy_reset(h);
    memset(reply, 0, sizeof(*reply));
    if (accept) {
        hdrs = curl_slist_append(hdrs, accept);
    }
    if (c->token) {
        snprintf(authz, sizeof(authz), "Authorization: Bearer %s", c->token);
        hdrs = curl_slist_append(hdrs, authz);
    } else if (basic && c->username) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->password);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, c->insecure ? "http,https" : "https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "swarmd/" SWARM_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, reply);
    CURLcode cr = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    explicit_bzero(authz, sizeof(authz));
    if (cr != CURLE_OK) {
        if (sink->overflow) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "Get \"%s\": answer too large", url);
            return SWARM_EPROTO;
        }
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "Get \"%s\": %s", url, curl_easy_strerror(cr));
        return SWARM_EUNAVAIL;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply->status);
    return 0;
}

static char *url_escape(CURL *h, const char *s)
{
    return curl_easy_escape(h, s, 0);
}

static int fetch_token(struct registry_client *c, const struct auth_challenge *ch,
                       char *errmsg)
{
    char url[4096], scope_buf[600];
    const char *scope = ch->scope;
    if (!scope) {
        snprintf(scope_buf, sizeof(scope_buf), "repository:%s:pull", c->ref->path);
        scope = scope_buf;
    }
    char *svc = url_escape(c->curl, ch->service ? ch->service : "");
    char *sc = url_escape(c->curl, scope);
    snprintf(url, sizeof(url), "%s%sservice=%s&scope=%s", ch->realm,
             strchr(ch->realm, '?') ? "&" : "?", svc ? svc : "", sc ? sc : "");
    curl_free(svc);
    curl_free(sc);
    struct sink s = {0};
    struct reply r;
    free(c->token);
    c->token = NULL;
    int rv = perform(c, url, NULL, true, &s, &r, errmsg);
    if (rv == 0 && r.status != 200) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      r.status == 401 || r.status == 403
                          ? "unauthorized: incorrect username or password"
                          : "token server %s answered HTTP %ld",
                      ch->realm, r.status);
        rv = r.status == 401 || r.status == 403 ? SWARM_EPERM : SWARM_EUNAVAIL;
    }
    if (rv == 0) {
        rv = auth_token_parse(s.buf ? s.buf : "", s.len, &c->token, errmsg);
    }
    free(s.buf);
    return rv;
}

static const char *registry_error_text(const char *body)
{
    /* {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown",...}]} */
    static __thread char text[256];
    const char *m = body ? strstr(body, "\"message\":\"") : NULL;
    if (!m) {
        return "";
    }
    m += strlen("\"message\":\"");
    const char *e = strchr(m, '"');
    snprintf(text, sizeof(text), "%.*s", e ? (int)(e - m) : 0, m);
    return text;
}

/* GET with the auth dance; the sink is reset before a retry. */
static int request(struct registry_client *c, const char *url, const char *accept,
                   struct sink *sink, struct reply *reply, char *errmsg)
{
    bool basic = false;
    for (int attempt = 0; attempt < 3; attempt++) {
        sink->len = 0;
        sink->overflow = false;
        if (sink->file) {
            if (fflush(sink->file) != 0 || ftruncate(fileno(sink->file), 0) != 0 ||
                fseek(sink->file, 0, SEEK_SET) != 0) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "blob file: %s", strerror(errno));
                return SWARM_EIO;
            }
        }
        if (sink->md) {
            EVP_DigestInit_ex(sink->md, EVP_sha256(), NULL);
        }
        int rv = perform(c, url, accept, basic, sink, reply, errmsg);
        if (rv != 0) {
            return rv;
        }
        if (reply->status != 401 || attempt == 2) {
            break;
        }
        struct auth_challenge ch;
        if (!reply->challenge[0] ||
            auth_challenge_parse(reply->challenge, &ch, errmsg) != 0) {
            break;
        }
        /* A token kept from an earlier request may have expired: one new
         * token per request, then a 401 is final. */
        if (strcasecmp(ch.scheme, "Bearer") == 0 && (attempt == 0 || !c->token)) {
            rv = fetch_token(c, &ch, errmsg);
            auth_challenge_free(&ch);
            if (rv != 0) {
                return rv;
            }
            continue;
        }
        bool retry = strcasecmp(ch.scheme, "Basic") == 0 && c->username && !basic;
        auth_challenge_free(&ch);
        if (!retry) {
            break;
        }
        basic = true;
    }
    if (reply->status == 401 || reply->status == 403) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      c->username ? "unauthorized: incorrect username or password"
                                  : "pull access denied for %s/%s, repository does not "
                                    "exist or may require 'docker login'",
                      c->ref->domain, c->ref->path);
        return SWARM_EPERM;
    }
    return 0;
}

int registry_ping(struct registry_client *c, char *errmsg)
{
    char url[1024];
    struct sink s = {0};
    struct reply r;
    snprintf(url, sizeof(url), "%s/v2/", c->base);
    int rv = request(c, url, NULL, &s, &r, errmsg);
    free(s.buf);
    if (rv == 0 && r.status != 200) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "login to %s: HTTP %ld", c->ref->domain,
                      r.status);
        rv = SWARM_EPROTO;
    }
    return rv;
}

static void hex_digest(EVP_MD_CTX *md, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md, d, &n);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < n; i++) {
        snprintf(out + 7 + 2 * i, 3, "%02x", d[i]);
    }
}

int registry_get_manifest(struct registry_client *c, const char *reference,
                          char **body, size_t *len, char *content_type,
                          char *digest, char *errmsg)
{
    char url[1024], ref_text[600];
    struct sink s = {.md = EVP_MD_CTX_new()};
    struct reply r;
    int rv = SWARM_ENOMEM;
    if (!s.md) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return rv;
    }
    imgref_format(c->ref, ref_text, sizeof(ref_text));
    snprintf(url, sizeof(url), "%s/v2/%s/manifests/%s", c->base, c->ref->path, reference);
    rv = request(c, url, MANIFEST_ACCEPT, &s, &r, errmsg);
    if (rv != 0) {
        goto out;
    }
    if (r.status == 404) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "No such image: %s", ref_text);
        rv = SWARM_ENOTFOUND;
        goto out;
    }
    if (r.status != 200) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "manifest for %s: HTTP %ld %s", ref_text,
                      r.status, registry_error_text(s.buf));
        rv = r.status >= 500 ? SWARM_EUNAVAIL : SWARM_EPROTO;
        goto out;
    }
    hex_digest(s.md, digest);
    if ((r.digest[0] && strcmp(r.digest, digest) != 0) ||
        (strncmp(reference, "sha256:", 7) == 0 && strcmp(reference, digest) != 0)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "manifest verification failed for digest %s (got %s)",
                      strncmp(reference, "sha256:", 7) == 0 ? reference : r.digest, digest);
        rv = SWARM_ECORRUPT;
        goto out;
    }
    snprintf(content_type, 128, "%s", r.content_type);
    *body = s.buf ? s.buf : strdup("");
    *len = s.len;
    s.buf = NULL;
    rv = *body ? 0 : SWARM_ENOMEM;
out:
    free(s.buf);
    EVP_MD_CTX_free(s.md);
    return rv;
}

int registry_get_blob(struct registry_client *c, const char *digest,
                      const char *path, char *errmsg)
{
    char url[1024], got[72];
    struct reply r;
    struct sink s = {.md = EVP_MD_CTX_new(), .file = fopen(path, "w+e")};
    int rv = SWARM_EIO;
    if (!s.md || !s.file) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        goto out;
    }
    snprintf(url, sizeof(url), "%s/v2/%s/blobs/%s", c->base, c->ref->path, digest);
    rv = request(c, url, NULL, &s, &r, errmsg);
    if (rv != 0) {
        goto out;
    }
    if (r.status == 404) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "blob %s not found on %s", digest,
                      c->ref->domain);
        rv = SWARM_ENOTFOUND;
        goto out;
    }
    if (r.status != 200) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "blob %s: HTTP %ld", digest, r.status);
        rv = r.status >= 500 ? SWARM_EUNAVAIL : SWARM_EPROTO;
        goto out;
    }
    if (fflush(s.file) != 0 || fsync(fileno(s.file)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        rv = SWARM_EIO;
        goto out;
    }
    hex_digest(s.md, got);
    if (strcmp(got, digest) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "filesystem layer verification failed for digest %s", digest);
        rv = SWARM_ECORRUPT;
        goto out;
    }
    rv = 0;
out:
    if (s.file) {
        fclose(s.file);
        if (rv != 0) {
            unlink(path);
        }
    }
    EVP_MD_CTX_free(s.md);
    return rv;
}
