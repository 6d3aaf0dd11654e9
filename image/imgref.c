/* Image references (imgref.h): Docker's grammar (distribution/reference)
 * and normalisation (ParseNormalizedNamed). */
#include "imgref.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define IMGREF_NAME_MAX 255 /* Docker's NameTotalLengthMax */
#define IMGREF_TAG_MAX 128

static bool is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static bool component_valid(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !is_alnum_lower(s[0]) || !is_alnum_lower(s[n - 1])) {
        return false;
    }
    while (i < n) {
        if (is_alnum_lower(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        if (s[i] == '.') {
            j = i + 1;
        } else if (s[i] == '_') {
            j = i + 1;
            if (j < n && s[j] == '_') {
                j++;
            }
        } else if (s[i] == '-') {
            while (j < n && s[j] == '-') {
                j++;
            }
        } else {
            return false;
        }
        if (j >= n || !is_alnum_lower(s[j])) {
            return false;
        }
        i = j;
    }
    return true;
}

static bool path_valid(const char *p)
{
    const char *c = p;
    for (;;) {
        const char *slash = strchr(c, '/');
        size_t n = slash ? (size_t)(slash - c) : strlen(c);
        if (!component_valid(c, n)) {
            return false;
        }
        if (!slash) {
            return true;
        }
        c = slash + 1;
    }
}

/* host: [A-Za-z0-9.-]+ or [v6] with an optional :port */
static bool domain_valid(const char *d)
{
    const char *colon = NULL;
    size_t n = strlen(d);
    if (n == 0) {
        return false;
    }
    if (d[0] == '[') {
        const char *end = strchr(d, ']');
        if (!end) {
            return false;
        }
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] != '\0' && !colon) {
            return false;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            char c = d[i];
            if (c == ':') {
                colon = d + i;
                break;
            }
            if (!isalnum((unsigned char)c) && c != '.' && c != '-') {
                return false;
            }
        }
        if (colon == d) {
            return false;
        }
    }
    if (colon) {
        if (colon[1] == '\0') {
            return false;
        }
        for (const char *p = colon + 1; *p; p++) {
            if (!isdigit((unsigned char)*p)) {
                return false;
            }
        }
    }
    return true;
}

static bool tag_valid(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > IMGREF_TAG_MAX) {
        return false;
    }
    if (!isalnum((unsigned char)t[0]) && t[0] != '_') {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        char c = t[i];
        if (!isalnum((unsigned char)c) && c != '_' && c != '.' && c != '-') {
            return false;
        }
    }
    return true;
}

bool imgref_digest_valid(const char *digest)
{
    if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71) {
        return false;
    }
    for (const char *p = digest + 7; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return false;
        }
    }
    return true;
}

static bool has_upper(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (isupper((unsigned char)s[i])) {
            return true;
        }
    }
    return false;
}

int imgref_parse(const char *s, struct imgref *out, char *errmsg)
{
    struct imgref r = {0};
    char *work = NULL;
    const char *bad = "invalid reference format";

    if (!s || !*s || strlen(s) > 4096) {
        goto invalid;
    }
    work = strdup(s);
    if (!work) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    char *at = strchr(work, '@');
    if (at) {
        *at = '\0';
        if (!imgref_digest_valid(at + 1)) {
            goto invalid;
        }
        r.digest = strdup(at + 1);
        if (!r.digest) {
            goto oom;
        }
    }
    /* The tag is after the last ':' that follows the last '/'. */
    char *slash = strrchr(work, '/');
    char *colon = strrchr(slash ? slash : work, ':');
    if (colon) {
        *colon = '\0';
        if (!tag_valid(colon + 1)) {
            goto invalid;
        }
        r.tag = strdup(colon + 1);
        if (!r.tag) {
            goto oom;
        }
    }
    char *name = work;
    char *first = strchr(name, '/');
    const char *domain = IMGREF_DEFAULT_DOMAIN;
    char *rest = name;
    if (first) {
        size_t n = (size_t)(first - name);
        bool is_domain = memchr(name, '.', n) || memchr(name, ':', n) ||
                         (n == 9 && strncmp(name, "localhost", 9) == 0) ||
                         has_upper(name, n);
        if (is_domain) {
            *first = '\0';
            domain = name;
            rest = first + 1;
            if (!domain_valid(domain)) {
                goto invalid;
            }
        }
    }
    if (strcmp(domain, "index.docker.io") == 0) {
        domain = IMGREF_DEFAULT_DOMAIN;
    }
    if (has_upper(rest, strlen(rest))) {
        bad = "invalid reference format: repository name must be lowercase";
        goto invalid;
    }
    if (!path_valid(rest)) {
        goto invalid;
    }
    r.domain = strdup(domain);
    if (strcmp(domain, IMGREF_DEFAULT_DOMAIN) == 0 && !strchr(rest, '/')) {
        size_t n = strlen(rest) + sizeof("library/");
        r.path = malloc(n);
        if (r.path) {
            snprintf(r.path, n, "library/%s", rest);
        }
    } else {
        r.path = strdup(rest);
    }
    if (!r.domain || !r.path) {
        goto oom;
    }
    if (strlen(r.domain) + 1 + strlen(r.path) > IMGREF_NAME_MAX) {
        bad = "invalid reference format: repository name must not be more "
              "than 255 characters";
        goto invalid;
    }
    if (!r.tag && !r.digest) {
        r.tag = strdup("latest");
        if (!r.tag) {
            goto oom;
        }
    }
    free(work);
    *out = r;
    return 0;

oom:
    free(work);
    imgref_free(&r);
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
    return SWARM_ENOMEM;
invalid:
    free(work);
    imgref_free(&r);
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s", bad);
    return SWARM_EINVAL;
}

void imgref_free(struct imgref *r)
{
    free(r->domain);
    free(r->path);
    free(r->tag);
    free(r->digest);
    memset(r, 0, sizeof(*r));
}

size_t imgref_format_name(const struct imgref *r, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", r->domain, r->path);
    return n < 0 ? 0 : (size_t)n;
}

size_t imgref_format(const struct imgref *r, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s%s%s%s%s", r->domain, r->path,
                     r->tag ? ":" : "", r->tag ? r->tag : "",
                     r->digest ? "@" : "", r->digest ? r->digest : "");
    return n < 0 ? 0 : (size_t)n;
}

size_t imgref_format_familiar(const struct imgref *r, char *buf, size_t size)
{
    const char *path = r->path;
    bool hub = strcmp(r->domain, IMGREF_DEFAULT_DOMAIN) == 0;
    if (hub && strncmp(path, "library/", 8) == 0 && !strchr(path + 8, '/')) {
        path += 8;
    }
    int n = snprintf(buf, size, "%s%s%s%s%s%s%s", hub ? "" : r->domain, hub ? "" : "/",
                     path, r->tag ? ":" : "", r->tag ? r->tag : "",
                     r->digest ? "@" : "", r->digest ? r->digest : "");
    return n < 0 ? 0 : (size_t)n;
}

const char *imgref_api_host(const struct imgref *r)
{
    if (strcmp(r->domain, IMGREF_DEFAULT_DOMAIN) == 0) {
        return "registry-1.docker.io";
    }
    return r->domain;
}

bool imgref_registry_insecure(const char *domain, const char *const *insecure,
                              size_t n_insecure)
{
    for (size_t i = 0; i < n_insecure; i++) {
        const char *e = insecure[i];
        if (strcmp(e, domain) == 0) {
            return true;
        }
        if (!strchr(e, ':')) {
            size_t n = strlen(e);
            if (strncmp(domain, e, n) == 0 && domain[n] == ':') {
                return true;
            }
        }
    }
    return false;
}
