/* The container fields of `service create/update` (--mount, --cap-add,
 * --cap-drop, --read-only, --init, --stop-signal, --entrypoint, --runtime):
 * Docker's parsing and messages (docker/cli opts/mount.go, service/opts.go,
 * update.go). Pure. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caps.h"
#include "cmd_service_opts.h"
#include "err.h"
#include "format.h"
#include "runtime.h"

static char *cli_ctr_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = cli_xrealloc(NULL, n);
    memcpy(c, s, n);
    return c;
}

/* "true"/"1"/"" -> true as Go's strconv.ParseBool (and "readonly" alone). */
static int cli_ctr_bool(const char *key, const char *v, bool *out, char *errmsg)
{
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
            *out = strcmp(v, yes[i]) == 0;
            return 0;
        }
    }
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid value for %s: %s", key, v);
    return SWARM_EINVAL;
}

int cli_svc_parse_mount(const char *s, Swarm__Mount **out, char *errmsg)
{
    Swarm__Mount *m = cli_xrealloc(NULL, sizeof *m);
    swarm__mount__init(m);
    char *copy = cli_ctr_strdup(s), *save = NULL;
    const char *type = "volume", *src = "", *dst = "";
    bool vol_opt = false, bind_opt = false, tmpfs_opt = false;
    int rv = 0;
    for (char *f = strtok_r(copy, ",", &save); f != NULL && rv == 0;
         f = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(f, '=');
        const char *val = eq != NULL ? eq + 1 : NULL;
        if (eq != NULL) {
            *eq = '\0';
        }
        char *key = f;
        for (char *k = key; *k != '\0'; k++) {
            *k = (char)(*k >= 'A' && *k <= 'Z' ? *k - 'A' + 'a' : *k);
        }
        if (val == NULL && strcmp(key, "readonly") != 0 && strcmp(key, "ro") != 0 &&
            strcmp(key, "volume-nocopy") != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "invalid field '%s' must be a key=value pair", f);
            rv = SWARM_EINVAL;
        } else if (strcmp(key, "type") == 0) {
            type = val;
        } else if (strcmp(key, "source") == 0 || strcmp(key, "src") == 0) {
            src = val;
        } else if (strcmp(key, "target") == 0 || strcmp(key, "dst") == 0 ||
                   strcmp(key, "destination") == 0) {
            dst = val;
        } else if (strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0) {
            bool ro = true;
            rv = val != NULL ? cli_ctr_bool(key, val, &ro, errmsg) : 0;
            m->readonly = ro;
        } else if (strcmp(key, "volume-nocopy") == 0) {
            bool nocopy = true;
            rv = val != NULL ? cli_ctr_bool(key, val, &nocopy, errmsg) : 0;
            vol_opt = true; /* a fresh volume starts empty either way */
        } else if (strcmp(key, "tmpfs-size") == 0) {
            int64_t size = 0;
            char why[SWARM_ERRMSG_SIZE];
            if (cli_svc_parse_memory(val, &size, why) != 0) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid value for %s: %s", key, val);
                rv = SWARM_EINVAL;
            }
            m->tmpfs_size_bytes = size;
            tmpfs_opt = true;
        } else if (strcmp(key, "bind-propagation") == 0 || strcmp(key, "volume-driver") == 0 ||
                   strcmp(key, "volume-label") == 0 || strcmp(key, "volume-opt") == 0 ||
                   strcmp(key, "tmpfs-mode") == 0 || strcmp(key, "consistency") == 0 ||
                   strcmp(key, "bind-nonrecursive") == 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "mount option '%s' is not supported", key);
            rv = SWARM_EINVAL;
            bind_opt = true;
        } else {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "unexpected key '%s' in '%s'", key, s);
            rv = SWARM_EINVAL;
        }
    }
    if (rv == 0 && dst[0] == '\0') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "target is required");
        rv = SWARM_EINVAL;
    }
    if (rv == 0 && strcmp(type, "bind") != 0 && strcmp(type, "volume") != 0 &&
        strcmp(type, "tmpfs") != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid mount type: %s", type);
        rv = SWARM_EINVAL;
    }
    if (rv == 0 && vol_opt && strcmp(type, "volume") != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "cannot mix 'volume-*' options with mount type '%s'", type);
        rv = SWARM_EINVAL;
    }
    if (rv == 0 && tmpfs_opt && strcmp(type, "tmpfs") != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "cannot mix 'tmpfs-*' options with mount type '%s'", type);
        rv = SWARM_EINVAL;
    }
    (void)bind_opt;
    if (rv == 0) {
        m->type = cli_ctr_strdup(type);
        m->source = cli_ctr_strdup(src);
        m->target = cli_ctr_strdup(dst);
        *out = m;
    } else {
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    free(copy);
    return rv;
}

static int cli_ctr_mount_cb(const char *w, void *v, char *errmsg)
{
    struct cli_svc_mounts *l = v;
    Swarm__Mount *m;
    if (cli_svc_parse_mount(w, &m, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    l->items = cli_xrealloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = m;
    return 0;
}

static int cli_ctr_cap_cb(const char *w, void *v, char *errmsg)
{
    struct cli_strlist *l = v;
    if (caps_lookup(w) == -1) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "unknown capability: \"%s\"", w);
        return SWARM_EINVAL;
    }
    l->items = cli_xrealloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = w;
    return 0;
}

static int cli_ctr_runtime_cb(const char *w, void *v, char *errmsg)
{
    if (!runtime_is_known(w)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "invalid runtime \"%s\": must be \"process\" or \"container\"", w);
        return SWARM_EINVAL;
    }
    *(const char **)v = w;
    return 0;
}

#define F(sh, nm, ty, val, use, var) \
    (struct cli_flag){sh, nm, CLI_FLAG_##ty, val, use, var, false, NULL}
#define C(nm, val, cb, use, var) \
    (struct cli_flag){0, nm, CLI_FLAG_CUSTOM, val, use, var, false, cb}

size_t cli_svc_ctr_flags(struct cli_svc_opts *o, bool update, struct cli_flag *f, size_t i)
{
    f[i++] = C("cap-add", &o->cap_add, cli_ctr_cap_cb, "Add Linux capabilities", "list");
    f[i++] = C("cap-drop", &o->cap_drop, cli_ctr_cap_cb, "Drop Linux capabilities", "list");
    f[i++] = F(0, "entrypoint", STRING, &o->entrypoint, "Overwrite the default ENTRYPOINT of "
               "the image", "command");
    f[i++] = F(0, "init", BOOL, &o->init, "Use an init inside each service container to "
               "forward signals and reap processes", NULL);
    f[i++] = F(0, "read-only", BOOL, &o->read_only, "Mount the container's root filesystem "
               "as read only", NULL);
    f[i++] = C("runtime", &o->runtime, cli_ctr_runtime_cb, "Runtime of the tasks "
               "(\"process\"|\"container\") (default: from the image, see the README)",
               "string");
    f[i++] = F(0, "stop-signal", STRING, &o->stop_signal, "Signal to stop the container",
               "string");
    if (!update) {
        f[i++] = C("mount", &o->mount, cli_ctr_mount_cb,
                   "Attach a filesystem mount to the service", "mount");
    } else {
        f[i++] = C("mount-add", &o->mount_add, cli_ctr_mount_cb,
                   "Add or update a mount on a service", "mount");
        f[i++] = F(0, "mount-rm", LIST, &o->mount_rm, "Remove a mount by its target path",
                   "list");
    }
    return i;
}

static bool cli_svc_flag_given(const struct cli_flag *flags, const char *name)
{
    for (const struct cli_flag *f = flags; f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0) {
            return f->changed;
        }
    }
    return false;
}

static void cli_ctr_push(char ***arr, size_t *n, const char *v)
{
    *arr = cli_xrealloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = cli_ctr_strdup(v);
}

static void cli_ctr_del(char **arr, size_t *n, size_t i)
{
    free(arr[i]);
    memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof *arr);
    (*n)--;
}

static void cli_ctr_set(char **field, const char *v)
{
    if (*field != NULL && *field != (char *)protobuf_c_empty_string) {
        free(*field);
    }
    *field = cli_ctr_strdup(v);
}

/* Docker's capability lists: same name whatever its spelling. */
static bool cli_ctr_cap_eq(const char *a, const char *b)
{
    return caps_lookup(a) == caps_lookup(b);
}

/* --cap-add X: into CapabilityAdd, out of CapabilityDrop; --cap-drop the
 * other way round (docker/cli updateCapabilities). */
static void cli_ctr_caps(char ***to, size_t *n_to, char ***from, size_t *n_from,
                         const struct cli_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        bool dup = false;
        for (size_t j = *n_from; j-- > 0;) {
            if (cli_ctr_cap_eq((*from)[j], l->items[i])) {
                cli_ctr_del(*from, n_from, j);
            }
        }
        for (size_t j = 0; j < *n_to && !dup; j++) {
            dup = cli_ctr_cap_eq((*to)[j], l->items[i]);
        }
        if (!dup) {
            cli_ctr_push(to, n_to, l->items[i]);
        }
    }
}

static void cli_ctr_mounts_push(Swarm__ContainerSpec *c, const struct cli_svc_mounts *l)
{
    for (size_t i = 0; i < l->n; i++) {
        for (size_t j = c->n_mounts; j-- > 0;) { /* same target: replaced */
            if (strcmp(c->mounts[j]->target, l->items[i]->target) == 0) {
                protobuf_c_message_free_unpacked(&c->mounts[j]->base, NULL);
                memmove(&c->mounts[j], &c->mounts[j + 1],
                        (c->n_mounts - j - 1) * sizeof *c->mounts);
                c->n_mounts--;
            }
        }
        Swarm__Mount *m = cli_xrealloc(NULL, sizeof *m);
        swarm__mount__init(m);
        m->type = cli_ctr_strdup(l->items[i]->type);
        m->source = cli_ctr_strdup(l->items[i]->source);
        m->target = cli_ctr_strdup(l->items[i]->target);
        m->readonly = l->items[i]->readonly;
        m->tmpfs_size_bytes = l->items[i]->tmpfs_size_bytes;
        c->mounts = cli_xrealloc(c->mounts, (c->n_mounts + 1) * sizeof *c->mounts);
        c->mounts[c->n_mounts++] = m;
    }
}

int cli_svc_ctr_apply(Swarm__TaskSpec *t, const struct cli_flag *flags,
                      const struct cli_svc_opts *o, bool update, char *errmsg)
{
    Swarm__ContainerSpec *c = t->container;
    if (cli_svc_flag_given(flags, "runtime")) {
        cli_ctr_set(&t->runtime, o->runtime);
    } else if (update && cli_svc_flag_given(flags, "image")) {
        cli_ctr_set(&t->runtime, ""); /* the manager applies the rule to the new image */
    }
    if (cli_svc_flag_given(flags, "read-only")) {
        c->read_only = o->read_only;
    }
    if (cli_svc_flag_given(flags, "init")) {
        c->init = o->init;
    }
    if (cli_svc_flag_given(flags, "stop-signal")) {
        cli_ctr_set(&c->stop_signal, o->stop_signal);
    }
    if (cli_svc_flag_given(flags, "entrypoint")) {
        char **words;
        size_t n;
        if (cli_svc_split_words(o->entrypoint, &words, &n, errmsg) != 0) {
            return SWARM_EINVAL;
        }
        for (size_t i = 0; i < c->n_command; i++) {
            free(c->command[i]);
        }
        free(c->command);
        c->command = words;
        c->n_command = n;
    }
    cli_ctr_caps(&c->cap_add, &c->n_cap_add, &c->cap_drop, &c->n_cap_drop, &o->cap_add);
    cli_ctr_caps(&c->cap_drop, &c->n_cap_drop, &c->cap_add, &c->n_cap_add, &o->cap_drop);
    for (size_t i = 0; i < o->mount_rm.n; i++) {
        for (size_t j = c->n_mounts; j-- > 0;) {
            if (strcmp(c->mounts[j]->target, o->mount_rm.items[i]) == 0) {
                protobuf_c_message_free_unpacked(&c->mounts[j]->base, NULL);
                memmove(&c->mounts[j], &c->mounts[j + 1],
                        (c->n_mounts - j - 1) * sizeof *c->mounts);
                c->n_mounts--;
            }
        }
    }
    cli_ctr_mounts_push(c, &o->mount);
    cli_ctr_mounts_push(c, &o->mount_add);
    return 0;
}

void cli_svc_ctr_free(struct cli_svc_opts *o)
{
    struct cli_svc_mounts *ms[] = {&o->mount, &o->mount_add};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < ms[k]->n; i++) {
            protobuf_c_message_free_unpacked(&ms[k]->items[i]->base, NULL);
        }
        free(ms[k]->items);
        *ms[k] = (struct cli_svc_mounts){0};
    }
    cli_strlist_free(&o->cap_add);
    cli_strlist_free(&o->cap_drop);
    cli_strlist_free(&o->mount_rm);
}
