/* Registry documents (manifest.h). */
#include "manifest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "err.h"
#include "imgref.h"

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void desc_free(struct manifest_desc *d)
{
    free(d->media_type);
    free(d->os);
    free(d->arch);
    free(d->variant);
}

void manifest_free(struct manifest *m)
{
    desc_free(&m->config);
    for (size_t i = 0; i < m->n_entries; i++) {
        desc_free(&m->entries[i]);
    }
    free(m->entries);
    memset(m, 0, sizeof(*m));
}

static int desc_parse(json_t *o, struct manifest_desc *d, bool platform,
                      char *errmsg)
{
    const char *digest = json_string_value(json_object_get(o, "digest"));
    if (!json_is_object(o) || !imgref_digest_valid(digest)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "manifest: a descriptor has no valid sha256 digest");
        return SWARM_EINVAL;
    }
    snprintf(d->digest, sizeof(d->digest), "%s", digest);
    d->media_type = dup_or_null(json_string_value(json_object_get(o, "mediaType")));
    d->size = json_integer_value(json_object_get(o, "size"));
    if (platform) {
        json_t *p = json_object_get(o, "platform");
        d->os = dup_or_null(json_string_value(json_object_get(p, "os")));
        d->arch = dup_or_null(json_string_value(json_object_get(p, "architecture")));
        d->variant = dup_or_null(json_string_value(json_object_get(p, "variant")));
    }
    return 0;
}

int manifest_parse(const char *body, size_t len, const char *content_type,
                   struct manifest *out, char *errmsg)
{
    json_error_t jerr;
    struct manifest m = {0};
    int rv = SWARM_EINVAL;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(root)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "manifest: not a JSON object: %s",
                      jerr.text);
        goto out;
    }
    const char *mt = json_string_value(json_object_get(root, "mediaType"));
    if (!mt && content_type) {
        mt = content_type;
    }
    json_t *list = json_object_get(root, "manifests");
    json_t *layers = json_object_get(root, "layers");
    if (json_integer_value(json_object_get(root, "schemaVersion")) != 2) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "manifest: unsupported schema version (only schema 2 "
                      "and OCI manifests are supported)");
        goto out;
    }
    if (json_is_array(list) ||
        (mt && (strncmp(mt, MT_DOCKER_LIST, strlen(MT_DOCKER_LIST)) == 0 ||
                strncmp(mt, MT_OCI_INDEX, strlen(MT_OCI_INDEX)) == 0))) {
        m.kind = MANIFEST_INDEX;
        if (!json_is_array(list)) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "manifest list without manifests");
            goto out;
        }
    } else {
        m.kind = MANIFEST_IMAGE;
        list = layers;
        if (!json_is_array(list)) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "manifest without layers");
            goto out;
        }
        rv = desc_parse(json_object_get(root, "config"), &m.config, false, errmsg);
        if (rv != 0) {
            goto out;
        }
        rv = SWARM_EINVAL;
    }
    size_t n = json_array_size(list);
    if (n > 4096) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "manifest: too many entries");
        goto out;
    }
    m.entries = calloc(n ? n : 1, sizeof(*m.entries));
    if (!m.entries) {
        rv = SWARM_ENOMEM;
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rv = desc_parse(json_array_get(list, i), &m.entries[i],
                        m.kind == MANIFEST_INDEX, errmsg);
        if (rv != 0) {
            goto out;
        }
        m.n_entries++;
    }
    rv = 0;
    *out = m;
    memset(&m, 0, sizeof(m));
out:
    manifest_free(&m);
    json_decref(root);
    return rv;
}

int manifest_pick_platform(const struct manifest *idx, const char *os,
                           const char *arch, const char *variant)
{
    int fallback = -1;
    for (size_t i = 0; i < idx->n_entries; i++) {
        const struct manifest_desc *d = &idx->entries[i];
        if (!d->os || !d->arch || strcmp(d->os, os) != 0 ||
            strcmp(d->arch, arch) != 0) {
            continue;
        }
        if (!variant || !d->variant || strcmp(variant, d->variant) == 0) {
            if (!variant || (d->variant && strcmp(variant, d->variant) == 0)) {
                return (int)i;
            }
            if (fallback < 0) {
                fallback = (int)i;
            }
        }
    }
    return fallback;
}

const char *manifest_host_arch(void)
{
    static const struct { const char *uname, *goarch; } map[] = {
        {"x86_64", "amd64"}, {"aarch64", "arm64"}, {"armv7l", "arm"},
        {"armv6l", "arm"},   {"i686", "386"},      {"i386", "386"},
        {"ppc64le", "ppc64le"}, {"s390x", "s390x"}, {"riscv64", "riscv64"},
    };
    static char other[65];
    struct utsname u;
    if (uname(&u) != 0) {
        return "amd64";
    }
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(u.machine, map[i].uname) == 0) {
            return map[i].goarch;
        }
    }
    snprintf(other, sizeof(other), "%s", u.machine);
    return other;
}

/* A JSON array of strings into a malloc'd char** (NULL-terminated). */
static int strv_from_json(json_t *a, char ***out, size_t *n_out)
{
    size_t n = json_array_size(a);
    char **v = calloc(n + 1, sizeof(*v));
    if (!v) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        v[i] = strdup(s ? s : "");
        if (!v[i]) {
            for (size_t j = 0; j < i; j++) {
                free(v[j]);
            }
            free(v);
            return SWARM_ENOMEM;
        }
    }
    *out = v;
    *n_out = n;
    return 0;
}

static char *str_field(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return strdup(s ? s : "");
}

int imgconfig_parse(const char *body, size_t len, struct image_info *info,
                    char *errmsg)
{
    json_error_t jerr;
    int rv = SWARM_ENOMEM;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(root)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "image config: not a JSON object: %s",
                      jerr.text);
        json_decref(root);
        return SWARM_EINVAL;
    }
    json_t *c = json_object_get(root, "config");
    json_t *diff = json_object_get(json_object_get(root, "rootfs"), "diff_ids");
    if (!json_is_array(diff)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "image config: no rootfs.diff_ids");
        json_decref(root);
        return SWARM_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(diff); i++) {
        if (!imgref_digest_valid(json_string_value(json_array_get(diff, i)))) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "image config: invalid diff ID");
            json_decref(root);
            return SWARM_EINVAL;
        }
    }
    json_t *ep = json_object_get(c, "Entrypoint");
    json_t *cmd = json_object_get(c, "Cmd");
    info->has_entrypoint = json_is_array(ep);
    info->has_cmd = json_is_array(cmd);
    if (strv_from_json(ep, &info->entrypoint, &info->n_entrypoint) != 0 ||
        strv_from_json(cmd, &info->cmd, &info->n_cmd) != 0 ||
        strv_from_json(json_object_get(c, "Env"), &info->env, &info->n_env) != 0 ||
        strv_from_json(diff, &info->diff_ids, &info->n_diff_ids) != 0) {
        goto out;
    }
    info->working_dir = str_field(c, "WorkingDir");
    info->user = str_field(c, "User");
    info->stop_signal = str_field(c, "StopSignal");
    info->os = str_field(root, "os");
    info->arch = str_field(root, "architecture");
    if (!info->working_dir || !info->user || !info->stop_signal || !info->os ||
        !info->arch) {
        goto out;
    }
    json_t *ports = json_object_get(c, "ExposedPorts");
    size_t np = json_object_size(ports);
    info->exposed_ports = calloc(np + 1, sizeof(char *));
    if (!info->exposed_ports) {
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(ports, key, val) {
        info->exposed_ports[info->n_exposed_ports] = strdup(key);
        if (!info->exposed_ports[info->n_exposed_ports]) {
            goto out;
        }
        info->n_exposed_ports++;
    }
    json_t *hc = json_object_get(c, "Healthcheck");
    if (json_is_object(hc)) {
        struct image_health *h = calloc(1, sizeof(*h));
        if (!h) {
            goto out;
        }
        info->healthcheck = h;
        if (strv_from_json(json_object_get(hc, "Test"), &h->test, &h->n_test) != 0) {
            goto out;
        }
        h->interval_ns = json_integer_value(json_object_get(hc, "Interval"));
        h->timeout_ns = json_integer_value(json_object_get(hc, "Timeout"));
        h->start_period_ns = json_integer_value(json_object_get(hc, "StartPeriod"));
        h->retries = (int)json_integer_value(json_object_get(hc, "Retries"));
    }
    rv = 0;
out:
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
    }
    json_decref(root);
    return rv;
}

static void strv_free(char **v, size_t n)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void image_info_free(struct image_info *info)
{
    if (!info) {
        return;
    }
    free(info->name);
    free(info->arch);
    free(info->os);
    strv_free(info->entrypoint, info->n_entrypoint);
    strv_free(info->cmd, info->n_cmd);
    strv_free(info->env, info->n_env);
    free(info->working_dir);
    free(info->user);
    free(info->stop_signal);
    if (info->healthcheck) {
        strv_free(info->healthcheck->test, info->healthcheck->n_test);
        free(info->healthcheck);
    }
    strv_free(info->exposed_ports, info->n_exposed_ports);
    strv_free(info->diff_ids, info->n_diff_ids);
    free(info);
}

/* ---- WWW-Authenticate ---- */

void auth_challenge_free(struct auth_challenge *c)
{
    free(c->scheme);
    free(c->realm);
    free(c->service);
    free(c->scope);
    memset(c, 0, sizeof(*c));
}

int auth_challenge_parse(const char *header, struct auth_challenge *out,
                         char *errmsg)
{
    struct auth_challenge c = {0};
    const char *p = header;
    while (*p == ' ') {
        p++;
    }
    const char *end = p;
    while (*end && *end != ' ') {
        end++;
    }
    if (end == p) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "empty WWW-Authenticate challenge");
        return SWARM_EPROTO;
    }
    c.scheme = strndup(p, (size_t)(end - p));
    p = end;
    while (c.scheme && *p) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        const char *eq = strchr(p, '=');
        if (!eq) {
            break;
        }
        size_t klen = (size_t)(eq - p);
        const char *v = eq + 1;
        char *val;
        if (*v == '"') {
            const char *q = strchr(v + 1, '"');
            if (!q) {
                auth_challenge_free(&c);
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                              "unterminated quote in WWW-Authenticate");
                return SWARM_EPROTO;
            }
            val = strndup(v + 1, (size_t)(q - v - 1));
            p = q + 1;
        } else {
            const char *q = v;
            while (*q && *q != ',') {
                q++;
            }
            val = strndup(v, (size_t)(q - v));
            p = q;
        }
        char **slot = NULL;
        if (klen == 5 && strncasecmp(eq - 5, "realm", 5) == 0) {
            slot = &c.realm;
        } else if (klen == 7 && strncasecmp(eq - 7, "service", 7) == 0) {
            slot = &c.service;
        } else if (klen == 5 && strncasecmp(eq - 5, "scope", 5) == 0) {
            slot = &c.scope;
        }
        if (slot && !*slot) {
            *slot = val;
        } else {
            free(val);
        }
    }
    if (!c.scheme) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    if (strcasecmp(c.scheme, "Bearer") == 0 && !c.realm) {
        auth_challenge_free(&c);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "bearer challenge without a realm");
        return SWARM_EPROTO;
    }
    *out = c;
    return 0;
}

/* ---- Docker's encoded auth ---- */

static unsigned char *b64_decode(const char *in, size_t *out_len)
{
    size_t n = strlen(in);
    char *std = malloc(n + 4);
    unsigned char *out = malloc(n + 4);
    if (!std || !out) {
        free(std);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    }
    size_t pad = 0;
    while ((n + pad) % 4) {
        std[n + pad++] = '=';
    }
    std[n + pad] = '\0';
    int len = EVP_DecodeBlock(out, (unsigned char *)std, (int)(n + pad));
    if (len < 0) {
        free(std);
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    size_t eq = 0;
    while (eq < n + pad && eq < 2 && std[n + pad - 1 - eq] == '=') {
        eq++;
    }
    free(std);
    *out_len = (size_t)len - eq;
    out[*out_len] = '\0';
    return out;
}

int registry_auth_decode(const char *encoded, char **username,
                         char **password, char *errmsg)
{
    *username = NULL;
    *password = NULL;
    if (!encoded || !*encoded) {
        return 0;
    }
    size_t len = 0;
    unsigned char *raw = b64_decode(encoded, &len);
    json_error_t jerr;
    json_t *root = raw ? json_loadb((char *)raw, len, 0, &jerr) : NULL;
    free(raw);
    if (!json_is_object(root)) {
        json_decref(root);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid registry auth: not base64 of a JSON object");
        return SWARM_EINVAL;
    }
    const char *u = json_string_value(json_object_get(root, "username"));
    const char *p = json_string_value(json_object_get(root, "password"));
    const char *a = json_string_value(json_object_get(root, "auth"));
    int rv = 0;
    if ((!u || !*u) && a && *a) {
        unsigned char *up = b64_decode(a, &len);
        char *colon = up ? strchr((char *)up, ':') : NULL;
        if (!colon) {
            free(up);
            json_decref(root);
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid registry auth: bad \"auth\" field");
            return SWARM_EINVAL;
        }
        *colon = '\0';
        *username = strdup((char *)up);
        *password = strdup(colon + 1);
        free(up);
    } else if (u && *u) {
        *username = strdup(u);
        *password = strdup(p ? p : "");
    }
    if ((*username == NULL) != (*password == NULL)) {
        free(*username);
        free(*password);
        *username = *password = NULL;
        rv = SWARM_ENOMEM;
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
    }
    json_decref(root);
    return rv;
}

char *registry_auth_encode(const char *username, const char *password,
                           const char *serveraddress)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "username", username, "password",
                          password, "serveraddress", serveraddress);
    char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!js) {
        return NULL;
    }
    size_t n = strlen(js);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out) {
        int len = EVP_EncodeBlock((unsigned char *)out, (unsigned char *)js, (int)n);
        for (int i = 0; i < len; i++) {
            out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
        }
    }
    free(js);
    return out;
}

int auth_token_parse(const char *body, size_t len, char **token, char *errmsg)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    const char *t = json_string_value(json_object_get(root, "token"));
    if (!t || !*t) {
        t = json_string_value(json_object_get(root, "access_token"));
    }
    if (!t || !*t) {
        json_decref(root);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "token server: no token in its answer");
        return SWARM_EPROTO;
    }
    *token = strdup(t);
    json_decref(root);
    if (!*token) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    return 0;
}
