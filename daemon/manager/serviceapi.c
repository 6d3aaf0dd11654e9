/* The Control service's services and tasks.
 *
 * create/update/remove: validate -> one StoreCommand (compare-and-set on the
 *   version the caller read) -> raft -> answer with the stored service. The
 *   orchestrators react to the committed change; the answer does not wait for
 *   tasks (`swarmctl` follows convergence itself).
 * Container images are pinned first (imgpin.h): the leader asks the
 *   image's registry for the tag's digest on a libuv work thread
 *   (image_resolve_async) and stores "name:tag@sha256:..." as Docker's daemon
 *   does; an image the registry does not have is refused ("No such image"),
 *   a registry that cannot be reached gives Docker's warning in the answer
 *   and the spec goes on unpinned. The resolve holds the module (pending).
 * Answers never carry ContainerSpec.registry_auth (the credentials reach
 *   only the nodes that run the service's tasks, through their assignments).
 * Failures: bad specs are refused before anything is proposed
 *   (INVALID_ARGUMENT with Docker's wording where it has one); a name in use
 *   is ALREADY_EXISTS; a stale version ABORTED; no leader UNAVAILABLE. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "err.h"
#include "image.h"
#include "imgpin.h"
#include "runtime.h"
#include "id.h"
#include "forward.h"
#include "listpage.h"
#include "log.h"
#include "netapi.h"
#include "pbcopy.h"
#include "ports.h"
#include "serviceapi.h"
#include "specvalid.h"

struct serviceapi {
    const struct menv *env;
    unsigned pending; /* proposals and image resolves whose callback has not run */
    char **insecure;  /* registries spoken to over plain HTTP */
    size_t n_insecure;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

static void service_maybe_free(struct serviceapi *sa)
{
    if (!sa->closing || sa->pending > 0) {
        return;
    }
    void (*cb)(void *) = sa->close_cb;
    void *data = sa->close_data;
    for (size_t i = 0; i < sa->n_insecure; i++) {
        free(sa->insecure[i]);
    }
    free(sa->insecure);
    free(sa);
    if (cb != NULL) {
        cb(data);
    }
}

/* The running manager's service module, or NULL after answering. */
static struct serviceapi *service_require(struct api_call *call, void *data)
{
    const struct manager_slot *slot = mslot_require(call, data);
    if (slot == NULL) {
        return NULL;
    }
    if (slot->service == NULL) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s", MANAGER_NOT_MANAGER_MSG);
        return NULL;
    }
    return slot->service;
}

/* A manager that does not lead answers from its own, possibly old, store. */
static bool reads_stale(struct serviceapi *sa)
{
    return !menv_is_leader(sa->env);
}

static int find_service(struct serviceapi *sa, struct api_call *call, const char *ref,
                        Swarm__Service **out)
{
    size_t matches = 0;
    int rv;
    if (ref == NULL || ref[0] == '\0') {
        api_call_error(call, API_INVALID_ARGUMENT, "service ID or name must be provided");
        return -1;
    }
    rv = store_service_find(sa->env->store, ref, out, &matches);
    if (rv == SWARM_ENOTFOUND) {
        api_call_error(call, API_NOT_FOUND, "service %s not found", ref);
    } else if (rv == SWARM_EAMBIGUOUS) {
        api_call_error(call, API_FAILED_PRECONDITION,
                       "service %s is ambiguous (%zu matches found)", ref, matches);
    } else if (rv != 0) {
        api_call_error(call, API_INTERNAL, "reading service %s: %s", ref, swarm_strerror(rv));
    }
    return rv == 0 ? 0 : -1;
}

/* The credentials never leave the manager through the control API. */
static void spec_strip_registry_auth(Swarm__TaskSpec *t)
{
    if (t != NULL && t->container != NULL && t->container->registry_auth != NULL &&
        t->container->registry_auth[0] != '\0') {
        explicit_bzero(t->container->registry_auth, strlen(t->container->registry_auth));
        free(t->container->registry_auth);
        t->container->registry_auth = (char *)protobuf_c_empty_string;
    }
}

/* An update that brings no credentials keeps the stored ones (Docker's
 * daemon does the same: the client never saw them). */
static void keep_registry_auth(Swarm__TaskSpec *next, const Swarm__TaskSpec *prev)
{
    if (next == NULL || next->container == NULL || prev == NULL || prev->container == NULL ||
        prev->container->registry_auth == NULL || prev->container->registry_auth[0] == '\0' ||
        (next->container->registry_auth != NULL && next->container->registry_auth[0] != '\0')) {
        return;
    }
    char *copy = strdup(prev->container->registry_auth);
    if (copy != NULL) {
        if (next->container->registry_auth != protobuf_c_empty_string) {
            free(next->container->registry_auth);
        }
        next->container->registry_auth = copy;
    }
}

static void service_strip_secrets(Swarm__Service *svc)
{
    if (svc->spec != NULL) {
        spec_strip_registry_auth(svc->spec->task);
    }
    if (svc->previous_spec != NULL) {
        spec_strip_registry_auth(svc->previous_spec->task);
    }
}

/* ------------------------------------------------------------- validation */

/* Check a spec from a client (specvalid.h: the same rules swarmctl applies
 * before sending); fills in a mode the CLI may have left out. */
static int validate_service_spec(struct serviceapi *sa, struct api_call *call, Swarm__ServiceSpec *spec)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    int rv;

    if (spec_validate_service(spec, errmsg) != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "%s", errmsg);
        return -1;
    }
    /* Networks by name or ID, stored as IDs (netapi.h). */
    if ((rv = netapi_resolve_service_networks(sa->env->store, spec, errmsg)) != 0) {
        api_call_error(call,
                       rv == SWARM_ENOTFOUND ? API_NOT_FOUND
                       : rv == SWARM_EINVAL  ? API_INVALID_ARGUMENT
                                             : API_INTERNAL,
                       "%s", errmsg);
        return -1;
    }
    if (spec->mode_case == SWARM__SERVICE_SPEC__MODE__NOT_SET) {
        spec->replicated = calloc(1, sizeof *spec->replicated);
        if (spec->replicated == NULL) {
            api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
            return -1;
        }
        swarm__replicated_service__init(spec->replicated);
        spec->replicated->replicas = 1;
        spec->mode_case = SWARM__SERVICE_SPEC__MODE_REPLICATED;
    }
    /* The runtime rule, decided here once (runtime.h): workers, the
     * scheduler and inspect read TaskSpec.runtime. */
    Swarm__TaskSpec *t = spec->task;
    const char *rt = runtime_resolve(t->runtime, t->container->image);
    if (t->runtime == NULL || strcmp(t->runtime, rt) != 0) {
        char *copy = strdup(rt);
        if (copy == NULL) {
            api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
            return -1;
        }
        if (t->runtime != protobuf_c_empty_string) {
            free(t->runtime);
        }
        t->runtime = copy;
    }
    return 0;
}

/* ---------------------------------------------------------------- writes */

struct svc_write {
    struct serviceapi *sa;
    struct api_call *call;
    char id[ID_LEN + 1];
    int kind; /* 0 create, 1 update, 2 remove */
    char *warning; /* Docker's Warnings, or NULL */
};

static void service_written_cb(int status, const struct store_result *res, void *data)
{
    struct svc_write *w = data;
    struct serviceapi *sa = w->sa;
    Swarm__Service *svc = NULL;
    if (status != 0 || res->status != 0) {
        mslot_reply_error(w->call, status != 0 ? status : res->status,
                          status != 0 ? "writing the service" : res->message);
    } else if (w->kind == 2) {
        Swarm__RemoveServiceResponse resp = SWARM__REMOVE_SERVICE_RESPONSE__INIT;
        api_call_reply(w->call, &resp.base);
    } else if (store_service_get(sa->env->store, w->id, &svc) == 0) {
        Swarm__CreateServiceResponse cresp = SWARM__CREATE_SERVICE_RESPONSE__INIT;
        Swarm__UpdateServiceResponse uresp = SWARM__UPDATE_SERVICE_RESPONSE__INIT;
        service_strip_secrets(svc);
        cresp.service = svc;
        uresp.service = svc;
        if (w->warning != NULL) {
            cresp.n_warnings = uresp.n_warnings = 1;
            cresp.warnings = uresp.warnings = &w->warning;
        }
        api_call_reply(w->call, w->kind == 0 ? &cresp.base : &uresp.base);
        swarm__service__free_unpacked(svc, NULL);
    } else {
        api_call_error(w->call, API_INTERNAL, "service vanished after the write");
    }
    free(w->warning);
    free(w);
    sa->pending--;
    service_maybe_free(sa);
}

/* Propose; `warning` (may be NULL) is the caller's, copied. */
static void propose_service(struct serviceapi *sa, struct api_call *call,
                            Swarm__StoreActionKind kind, Swarm__Service *svc, int wkind,
                            const char *warning)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
    Swarm__StoreAction *actions[1] = {&action};
    struct svc_write *w = calloc(1, sizeof *w);
    int rv;
    if (w == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    w->sa = sa;
    w->call = call;
    w->kind = wkind;
    if (warning != NULL && (w->warning = strdup(warning)) == NULL) {
        free(w);
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    snprintf(w->id, sizeof w->id, "%s", svc->id);
    action.kind = kind;
    action.target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
    action.service = svc;
    cmd.n_actions = 1;
    cmd.actions = actions;
    rv = menv_propose(sa->env, &cmd, service_written_cb, w);
    if (rv != 0) {
        mslot_reply_error(call, rv, "proposing the change");
        free(w->warning);
        free(w);
        return;
    }
    sa->pending++;
}

/* ------------------------------------------------------------ image pins */

enum pin_kind { PIN_CREATE, PIN_UPDATE };

/* A create or update waiting for its image's digest. */
struct svc_pin {
    struct serviceapi *sa;
    struct api_call *call;
    enum pin_kind kind;
    Swarm__ServiceSpec *spec; /* owned: the spec to store */
    Swarm__Service *svc;      /* owned, updates only: the stored service */
    bool rollback;
    char resolve[600];        /* the reference asked for */
};

static void create_finish(struct serviceapi *sa, struct api_call *call,
                          Swarm__ServiceSpec *spec, const char *warning);
static void update_finish(struct serviceapi *sa, struct api_call *call, Swarm__Service *svc,
                          Swarm__ServiceSpec *next, bool rollback, const char *warning);

static void pin_free(struct svc_pin *p)
{
    if (p->spec != NULL) {
        swarm__service_spec__free_unpacked(p->spec, NULL);
    }
    if (p->svc != NULL) {
        swarm__service__free_unpacked(p->svc, NULL);
    }
    free(p);
}

/* Go on with the write; the finish functions own spec and svc. */
static void pin_finish(struct svc_pin *p, const char *warning)
{
    if (p->kind == PIN_CREATE) {
        create_finish(p->sa, p->call, p->spec, warning);
    } else {
        update_finish(p->sa, p->call, p->svc, p->spec, p->rollback, warning);
    }
    free(p);
}

static void pin_resolved_cb(void *data, int status, const char *errmsg, const char *digest)
{
    struct svc_pin *p = data;
    struct serviceapi *sa = p->sa;
    Swarm__ContainerSpec *c = p->spec->task->container;
    char pinned[700], warning[2048];
    sa->pending--;
    if (sa->closing) {
        api_call_error(p->call, API_UNAVAILABLE, "the manager is shutting down");
        pin_free(p);
    } else if (status == 0 && imgpin_format(p->resolve, digest, pinned, sizeof pinned) == 0) {
        char *copy = strdup(pinned);
        if (copy == NULL) {
            api_call_error(p->call, API_RESOURCE_EXHAUSTED, "out of memory");
            pin_free(p);
        } else {
            if (c->image != protobuf_c_empty_string) {
                free(c->image);
            }
            c->image = copy;
            pin_finish(p, NULL);
        }
    } else if (status == SWARM_ENOTFOUND || status == SWARM_EINVAL) {
        /* Refused, nothing written: the registry answered that it has no
         * such image, or the reference is malformed. */
        api_call_error(p->call, status == SWARM_ENOTFOUND ? API_NOT_FOUND : API_INVALID_ARGUMENT,
                       "%s", errmsg != NULL ? errmsg : "No such image");
        pin_free(p);
    } else {
        /* Docker's daemon: warn, and let each node resolve the tag itself. */
        log_warn("manager", "unable to pin image %s to digest: %s", c->image,
                 errmsg != NULL ? errmsg : swarm_strerror(status));
        snprintf(warning, sizeof warning, IMGPIN_WARNING_FMT, c->image, c->image);
        pin_finish(p, warning);
    }
    service_maybe_free(sa);
}

/* Resolve the spec's image when imgpin_plan says so, then finish the write
 * (at once when there is nothing to resolve). Takes spec and svc. */
static void pin_start(struct serviceapi *sa, struct api_call *call, enum pin_kind kind,
                      enum imgpin_mode mode, Swarm__Service *svc, Swarm__ServiceSpec *spec,
                      bool rollback)
{
    struct svc_pin *p = calloc(1, sizeof *p);
    char errmsg[SWARM_ERRMSG_SIZE];
    if (p == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        swarm__service_spec__free_unpacked(spec, NULL);
        if (svc != NULL) {
            swarm__service__free_unpacked(svc, NULL);
        }
        return;
    }
    *p = (struct svc_pin){.sa = sa, .call = call, .kind = kind, .spec = spec, .svc = svc,
                          .rollback = rollback};
    const Swarm__TaskSpec *t = spec->task;
    const Swarm__TaskSpec *prev = svc != NULL && svc->spec != NULL ? svc->spec->task : NULL;
    const char *prev_image = prev != NULL && prev->container != NULL ? prev->container->image : NULL;
    bool container = t->runtime != NULL && strcmp(t->runtime, RUNTIME_CONTAINER) == 0 &&
                     t->container != NULL && t->container->image != NULL;
    if (rollback || !container ||
        !imgpin_plan(mode, kind == PIN_CREATE ? NULL : (prev_image ? prev_image : ""),
                     prev != NULL ? prev->force_update : 0, t->container->image,
                     t->force_update, p->resolve, sizeof p->resolve)) {
        pin_finish(p, NULL);
        return;
    }
    int rv = image_resolve_async(sa->env->loop, p->resolve, t->container->registry_auth,
                                 (const char *const *)sa->insecure, sa->n_insecure,
                                 pin_resolved_cb, p, errmsg);
    if (rv != 0) {
        api_call_error(call, API_INTERNAL, "resolving image %s: %s", p->resolve, errmsg);
        pin_free(p);
        return;
    }
    sa->pending++;
}

static void create_service_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__CreateServiceRequest *req = (const Swarm__CreateServiceRequest *)msg;
    struct serviceapi *sa = service_require(call, data);
    Swarm__ServiceSpec *spec;

    if (sa == NULL || req->spec == NULL) {
        if (sa != NULL) {
            api_call_error(call, API_INVALID_ARGUMENT, "a service spec must be provided");
        }
        return;
    }
    spec = pb_copy(&req->spec->base);
    if (spec == NULL || validate_service_spec(sa, call, spec) != 0) {
        if (spec == NULL) {
            api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        } else {
            swarm__service_spec__free_unpacked(spec, NULL);
        }
        return;
    }
    int mode = imgpin_mode_parse(req->resolve_image);
    if (mode < 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "Invalid option %s for flag --resolve-image",
                       req->resolve_image);
        swarm__service_spec__free_unpacked(spec, NULL);
        return;
    }
    pin_start(sa, call, PIN_CREATE, (enum imgpin_mode)mode, NULL, spec, false);
}

/* The service's published ports (ports.h): svc->endpoint gets spec's ports
 * with a published port each (an update keeps what it had), refused with
 * Docker's message when another service has one of them. 0, or -1 with the
 * call answered. */
static int service_ports_set(struct serviceapi *sa, struct api_call *call, Swarm__Service *svc,
                             const Swarm__ServiceSpec *spec)
{
    Swarm__Service **list = NULL;
    Swarm__PortConfig **ports = NULL;
    size_t n = 0, np = 0;
    char errmsg[SWARM_ERRMSG_SIZE];
    int rv;
    bool had = svc->endpoint != NULL && svc->endpoint->n_ports > 0;
    if (!had && (spec->endpoint == NULL || spec->endpoint->n_ports == 0)) {
        return 0;
    }
    if ((rv = store_service_list(sa->env->store, &list, &n)) != 0) {
        mslot_reply_error(call, rv, "reading services");
        return -1;
    }
    rv = ports_assign(spec->endpoint, svc->endpoint, svc->id, list, n, &ports, &np, errmsg);
    if (rv == 0) {
        rv = ports_check_conflicts(ports, np, svc->id, list, n, errmsg);
    }
    store_service_free_list(list, n);
    if (rv == 0 && svc->endpoint == NULL) {
        if ((svc->endpoint = calloc(1, sizeof *svc->endpoint)) == NULL) {
            rv = SWARM_ENOMEM;
        } else {
            swarm__endpoint__init(svc->endpoint);
        }
    }
    if (rv != 0) {
        ports_free(ports, np);
        api_call_error(call, rv == SWARM_ENOMEM ? API_RESOURCE_EXHAUSTED : API_INVALID_ARGUMENT,
                       "%s", rv == SWARM_ENOMEM ? "out of memory" : errmsg);
        return -1;
    }
    ports_free(svc->endpoint->ports, svc->endpoint->n_ports);
    svc->endpoint->ports = ports;
    svc->endpoint->n_ports = np;
    return 0;
}

static void create_finish(struct serviceapi *sa, struct api_call *call,
                          Swarm__ServiceSpec *spec, const char *warning)
{
    Swarm__Service svc = SWARM__SERVICE__INIT;
    char id[ID_LEN + 1];
    if (id_generate(id) != 0) {
        api_call_error(call, API_INTERNAL, "no randomness for an ID");
        swarm__service_spec__free_unpacked(spec, NULL);
        return;
    }
    if (spec->annotations == NULL &&
        (spec->annotations = calloc(1, sizeof *spec->annotations)) != NULL) {
        swarm__annotations__init(spec->annotations);
    }
    if (spec->annotations != NULL &&
        (spec->annotations->name == NULL || spec->annotations->name[0] == '\0')) {
        /* Docker invents a name; an ID prefix is as unique and needs no word list. */
        if (spec->annotations->name != protobuf_c_empty_string) {
            free(spec->annotations->name);
        }
        char name[16];
        snprintf(name, sizeof name, "svc-%.8s", id);
        spec->annotations->name = strdup(name);
    }
    if (spec->annotations == NULL || spec->annotations->name == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        swarm__service_spec__free_unpacked(spec, NULL);
        return;
    }
    svc.id = id;
    svc.spec = spec;
    svc.spec_version = 1;
    if (service_ports_set(sa, call, &svc, spec) == 0) {
        propose_service(sa, call, SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE, &svc, 0,
                        warning);
    }
    if (svc.endpoint != NULL) {
        swarm__endpoint__free_unpacked(svc.endpoint, NULL);
    }
    swarm__service_spec__free_unpacked(spec, NULL);
}


/* True when the task template differs (a new spec_version: tasks replaced).
 * 1 and 0, or SWARM_ENOMEM. */
static int task_spec_changed(const Swarm__TaskSpec *a, const Swarm__TaskSpec *b)
{
    size_t la, lb;
    uint8_t *ba, *bb;
    int changed;
    if (a == NULL || b == NULL) {
        return a != b;
    }
    la = swarm__task_spec__get_packed_size(a);
    lb = swarm__task_spec__get_packed_size(b);
    if (la != lb) {
        return 1;
    }
    ba = malloc(la + 1);
    bb = malloc(lb + 1);
    if (ba == NULL || bb == NULL) {
        free(ba);
        free(bb);
        return SWARM_ENOMEM;
    }
    swarm__task_spec__pack(a, ba);
    swarm__task_spec__pack(b, bb);
    changed = memcmp(ba, bb, la) != 0;
    free(ba);
    free(bb);
    return changed;
}

/* Do the endpoint specs' ports differ? */
static bool ports_spec_changed(const Swarm__ServiceSpec *a, const Swarm__ServiceSpec *b)
{
    size_t na = a->endpoint != NULL ? a->endpoint->n_ports : 0;
    size_t nb = b->endpoint != NULL ? b->endpoint->n_ports : 0;
    if (na != nb) {
        return true;
    }
    for (size_t i = 0; i < na; i++) {
        const Swarm__PortConfig *p = a->endpoint->ports[i], *q = b->endpoint->ports[i];
        if (p->target_port != q->target_port || p->published_port != q->published_port ||
            strcmp(ports_protocol(p), ports_protocol(q)) != 0 ||
            ports_is_ingress(p) != ports_is_ingress(q)) {
            return true;
        }
    }
    return false;
}

static void update_service_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__UpdateServiceRequest *req = (const Swarm__UpdateServiceRequest *)msg;
    struct serviceapi *sa = service_require(call, data);
    Swarm__Service *svc = NULL;
    Swarm__ServiceSpec *next = NULL;

    if (sa == NULL || find_service(sa, call, req->service_id, &svc) != 0) {
        return;
    }
    if (req->service_version != svc->meta->version) {
        api_call_error(call, API_ABORTED,
                       "update out of sequence: service %s is at version %llu, not %llu",
                       req->service_id, (unsigned long long)svc->meta->version,
                       (unsigned long long)req->service_version);
        goto out;
    }
    if (req->rollback) {
        if (svc->previous_spec == NULL) {
            api_call_error(call, API_FAILED_PRECONDITION,
                           "service %s does not have a previous spec", req->service_id);
            goto out;
        }
        next = pb_copy(&svc->previous_spec->base);
    } else {
        next = req->spec != NULL ? pb_copy(&req->spec->base) : NULL;
        if (next == NULL || validate_service_spec(sa, call, next) != 0) {
            if (next == NULL) {
                api_call_error(call, API_INVALID_ARGUMENT, "a service spec must be provided");
            }
            goto out;
        }
    }
    if (!req->rollback) {
        keep_registry_auth(next->task, svc->spec->task);
    }
    int mode = imgpin_mode_parse(req->resolve_image);
    if (mode < 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "Invalid option %s for flag --resolve-image",
                       req->resolve_image);
        goto out;
    }
    pin_start(sa, call, PIN_UPDATE, (enum imgpin_mode)mode, svc, next, req->rollback);
    return;
out:
    if (next != NULL) {
        swarm__service_spec__free_unpacked(next, NULL);
    }
    swarm__service__free_unpacked(svc, NULL);
}

static void update_finish(struct serviceapi *sa, struct api_call *call, Swarm__Service *svc,
                          Swarm__ServiceSpec *next, bool rollback, const char *warning)
{
    if (next->mode_case != svc->spec->mode_case) {
        api_call_error(call, API_INVALID_ARGUMENT, "service mode change is not allowed");
        goto out;
    }
    if (strcmp(next->annotations && next->annotations->name ? next->annotations->name : "",
               svc->spec->annotations->name) != 0) {
        api_call_error(call, API_UNIMPLEMENTED, "renaming services is not supported");
        goto out;
    }
    if (service_ports_set(sa, call, svc, next) != 0) {
        goto out;
    }
    int changed = task_spec_changed(svc->spec->task, next->task);
    if (changed == 0 && ports_spec_changed(svc->spec, next)) {
        /* Ports published or not any more: the tasks join or leave the
         * ingress network, host ports move (swarmkit's IsTaskDirty). */
        changed = 1;
    }
    if (changed == 1) {
        /* A new spec for the tasks: the orchestrator rolls it out with the
         * update (or rollback) policy from now on. */
        char *message = strdup(rollback ? "manually requested rollback" : "update in progress");
        if (message != NULL && svc->update_status == NULL &&
            (svc->update_status = calloc(1, sizeof *svc->update_status)) != NULL) {
            swarm__update_status__init(svc->update_status);
        }
        if (message == NULL || svc->update_status == NULL) {
            free(message);
            changed = SWARM_ENOMEM;
        } else {
            svc->spec_version++;
            if (svc->update_status->message != protobuf_c_empty_string) {
                free(svc->update_status->message);
            }
            svc->update_status->state = rollback
                                            ? SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_STARTED
                                            : SWARM__UPDATE_STATE__UPDATE_STATE_UPDATING;
            svc->update_status->message = message;
            svc->update_status->started_at = menv_now(sa->env);
            svc->update_status->completed_at = 0;
        }
    }
    if (changed < 0) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    if (svc->previous_spec != NULL) {
        swarm__service_spec__free_unpacked(svc->previous_spec, NULL);
    }
    svc->previous_spec = svc->spec;
    svc->spec = next;
    next = NULL;
    propose_service(sa, call, SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE, svc, 1,
                    warning);
out:
    if (next != NULL) {
        swarm__service_spec__free_unpacked(next, NULL);
    }
    swarm__service__free_unpacked(svc, NULL);
}

static void remove_service_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__RemoveServiceRequest *req = (const Swarm__RemoveServiceRequest *)msg;
    struct serviceapi *sa = service_require(call, data);
    Swarm__Service *svc = NULL;
    if (sa == NULL || find_service(sa, call, req->service_id, &svc) != 0) {
        return;
    }
    /* A removal is not compare-and-set: the leader itself updates a service
     * it just created (its endpoint, its update status), and `service rm`
     * must not fail with "update out of sequence" for that. */
    if (svc->meta != NULL) {
        svc->meta->version = 0;
    }
    propose_service(sa, call, SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE, svc, 2, NULL);
    swarm__service__free_unpacked(svc, NULL);
}

/* ----------------------------------------------------------------- reads */

static void get_service_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__GetServiceRequest *req = (const Swarm__GetServiceRequest *)msg;
    Swarm__GetServiceResponse resp = SWARM__GET_SERVICE_RESPONSE__INIT;
    struct serviceapi *sa = service_require(call, data);
    Swarm__Service *svc = NULL;
    if (sa == NULL || find_service(sa, call, req->service_id, &svc) != 0) {
        return;
    }
    service_strip_secrets(svc);
    resp.service = svc;
    api_call_reply(call, &resp.base);
    swarm__service__free_unpacked(svc, NULL);
}

/* `service ls -f`: id=, name= (prefixes), label=K or K=V, mode=. */
static int service_filter(const Swarm__Service *s, const char *f)
{
    const char *eq = strchr(f, '=');
    const char *v;
    if (eq == NULL) {
        return -1;
    }
    v = eq + 1;
    if (strncmp(f, "id=", 3) == 0) {
        return strncmp(s->id, v, strlen(v)) == 0;
    }
    if (strncmp(f, "name=", 5) == 0) {
        return strncmp(s->spec->annotations->name, v, strlen(v)) == 0;
    }
    if (strncmp(f, "mode=", 5) == 0) {
        bool global = s->spec->mode_case == SWARM__SERVICE_SPEC__MODE_GLOBAL;
        if (strcmp(v, "global") != 0 && strcmp(v, "replicated") != 0) {
            return -1;
        }
        return global == (strcmp(v, "global") == 0);
    }
    if (strncmp(f, "label=", 6) == 0) {
        const char *veq = strchr(v, '=');
        size_t klen = veq ? (size_t)(veq - v) : strlen(v);
        for (size_t i = 0; i < s->spec->annotations->n_labels; i++) {
            const Swarm__Label *l = s->spec->annotations->labels[i];
            if (strlen(l->key) == klen && strncmp(l->key, v, klen) == 0 &&
                (veq == NULL || strcmp(l->value, veq + 1) == 0)) {
                return 1;
            }
        }
        return 0;
    }
    return -1;
}

static int service_id_cmp(const void *a, const void *b)
{
    return strcmp((*(Swarm__Service *const *)a)->id, (*(Swarm__Service *const *)b)->id);
}

static int task_id_cmp(const void *a, const void *b)
{
    return strcmp((*(Swarm__Task *const *)a)->id, (*(Swarm__Task *const *)b)->id);
}

static void list_services_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__ListServicesRequest *req = (const Swarm__ListServicesRequest *)msg;
    Swarm__ListServicesResponse resp = SWARM__LIST_SERVICES_RESPONSE__INIT;
    struct serviceapi *sa = service_require(call, data);
    Swarm__Service **svcs = NULL, **kept = NULL;
    const char **ids = NULL;
    struct msgchunk_page pg;
    size_t n = 0, k = 0;
    if (sa == NULL) {
        return;
    }
    if (store_service_list(sa->env->store, &svcs, &n) != 0) {
        api_call_error(call, API_INTERNAL, "listing services failed");
        return;
    }
    kept = calloc(n + 1, sizeof *kept);
    ids = calloc(n + 1, sizeof *ids);
    resp.running = calloc(n + 1, sizeof *resp.running);
    resp.desired = calloc(n + 1, sizeof *resp.desired);
    if (kept == NULL || ids == NULL || resp.running == NULL || resp.desired == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        for (size_t f = 0; f < req->n_filters && keep == 1; f++) {
            keep = service_filter(svcs[i], req->filters[f]);
        }
        if (keep < 0) {
            api_call_error(call, API_INVALID_ARGUMENT, "invalid filter");
            goto out;
        }
        if (keep) {
            kept[k++] = svcs[i];
        }
    }
    qsort(kept, k, sizeof *kept, service_id_cmp);
    for (size_t i = 0; i < k; i++) {
        ids[i] = kept[i]->id;
    }
    /* running and desired: two varints more per service. */
    if (listpage_cut(call, (ProtobufCMessage *const *)kept, ids, k, 20, req->page_size,
                          req->page_token, &pg) != 0) {
        goto out;
    }
    for (size_t i = 0; i < pg.count; i++) {
        const Swarm__Service *svc = kept[pg.start + i];
        size_t running = 0, desired = 0;
        /* Counted on the store's index: nothing decoded, whatever the
         * number of tasks (running: desired and observed
         * running; desired: desired running, as a global service counts). */
        if (store_task_count_by_state(sa->env->store, svc->id, SWARM__TASK_STATE__TASK_STATE_RUNNING,
                                      SWARM__TASK_STATE__TASK_STATE_RUNNING, &running) != 0) {
            running = 0;
        }
        if (store_task_count_by_state(sa->env->store, svc->id, SWARM__TASK_STATE__TASK_STATE_RUNNING, -1,
                                      &desired) != 0) {
            desired = 0;
        }
        if (svc->spec->mode_case == SWARM__SERVICE_SPEC__MODE_REPLICATED) {
            desired = svc->spec->replicated->replicas;
        }
        resp.running[i] = running;
        resp.desired[i] = desired;
    }
    for (size_t i = 0; i < pg.count; i++) {
        service_strip_secrets(kept[pg.start + i]);
    }
    resp.services = kept + pg.start;
    resp.n_services = resp.n_running = resp.n_desired = pg.count;
    resp.next_page_token = pg.more ? kept[pg.start + pg.count - 1]->id : "";
    resp.stale = reads_stale(sa);
    api_call_reply(call, &resp.base);
out:
    free(kept);
    free(ids);
    free(resp.running);
    free(resp.desired);
    store_service_free_list(svcs, n);
}

static void get_task_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__GetTaskRequest *req = (const Swarm__GetTaskRequest *)msg;
    Swarm__GetTaskResponse resp = SWARM__GET_TASK_RESPONSE__INIT;
    struct serviceapi *sa = service_require(call, data);
    Swarm__Task *t = NULL;
    size_t matches = 0;
    int rv;
    if (sa == NULL) {
        return;
    }
    rv = store_task_find(sa->env->store, req->task_id, &t, &matches);
    if (rv == SWARM_ENOTFOUND) {
        api_call_error(call, API_NOT_FOUND, "task %s not found", req->task_id);
        return;
    }
    if (rv == SWARM_EAMBIGUOUS) {
        api_call_error(call, API_FAILED_PRECONDITION, "task %s is ambiguous (%zu matches found)",
                       req->task_id, matches);
        return;
    }
    if (rv != 0) {
        api_call_error(call, API_INTERNAL, "reading task: %s", swarm_strerror(rv));
        return;
    }
    spec_strip_registry_auth(t->spec);
    resp.task = t;
    api_call_reply(call, &resp.base);
    swarm__task__free_unpacked(t, NULL);
}

static void list_tasks_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__ListTasksRequest *req = (const Swarm__ListTasksRequest *)msg;
    Swarm__ListTasksResponse resp = SWARM__LIST_TASKS_RESPONSE__INIT;
    struct serviceapi *sa = service_require(call, data);
    Swarm__Task **tasks = NULL, **kept = NULL;
    const char **ids = NULL;
    struct msgchunk_page pg;
    size_t n = 0, k = 0;
    const char *service = NULL, *node = NULL, *desired = NULL, *idp = NULL;
    char service_id[ID_LEN + 1] = "", node_id[ID_LEN + 1] = "";
    int rv;

    if (sa == NULL) {
        return;
    }
    for (size_t i = 0; i < req->n_filters; i++) {
        const char *f = req->filters[i];
        if (strncmp(f, "service=", 8) == 0) {
            service = f + 8;
        } else if (strncmp(f, "node=", 5) == 0) {
            node = f + 5;
        } else if (strncmp(f, "desired-state=", 14) == 0) {
            desired = f + 14;
        } else if (strncmp(f, "id=", 3) == 0) {
            idp = f + 3;
        } else {
            api_call_error(call, API_INVALID_ARGUMENT, "invalid filter '%s'", f);
            return;
        }
    }
    if (desired != NULL && strcmp(desired, "running") != 0 && strcmp(desired, "shutdown") != 0 &&
        strcmp(desired, "accepted") != 0) {
        api_call_error(call, API_INVALID_ARGUMENT,
                       "invalid filter 'desired-state=%s' (running, shutdown or accepted)",
                       desired);
        return;
    }
    if (service != NULL) {
        Swarm__Service *svc = NULL;
        if (find_service(sa, call, service, &svc) != 0) {
            return;
        }
        snprintf(service_id, sizeof service_id, "%s", svc->id);
        swarm__service__free_unpacked(svc, NULL);
    }
    if (node != NULL) {
        Swarm__Node *nd = NULL;
        size_t matches = 0;
        rv = store_node_find(sa->env->store, node, &nd, &matches);
        if (rv != 0) {
            api_call_error(call, rv == SWARM_ENOTFOUND ? API_NOT_FOUND : API_FAILED_PRECONDITION,
                           rv == SWARM_ENOTFOUND ? "node %s not found" : "node %s is ambiguous",
                           node);
            return;
        }
        snprintf(node_id, sizeof node_id, "%s", nd->id);
        swarm__node__free_unpacked(nd, NULL);
    }
    rv = service_id[0] ? store_task_list_by_service(sa->env->store, service_id, &tasks, &n)
         : node_id[0]  ? store_task_list_by_node(sa->env->store, node_id, &tasks, &n)
                       : store_task_list(sa->env->store, &tasks, &n);
    if (rv != 0) {
        api_call_error(call, API_INTERNAL, "listing tasks failed");
        return;
    }
    kept = calloc(n + 1, sizeof *kept);
    ids = calloc(n + 1, sizeof *ids);
    if (kept == NULL || ids == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const Swarm__Task *t = tasks[i];
        if (node_id[0] && strcmp(t->node_id, node_id) != 0) {
            continue;
        }
        if (idp != NULL && strncmp(t->id, idp, strlen(idp)) != 0) {
            continue;
        }
        if (desired != NULL) {
            bool run = t->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING;
            if ((strcmp(desired, "shutdown") == 0) == run) {
                continue;
            }
        }
        kept[k++] = tasks[i];
    }
    qsort(kept, k, sizeof *kept, task_id_cmp);
    for (size_t i = 0; i < k; i++) {
        ids[i] = kept[i]->id;
    }
    if (listpage_cut(call, (ProtobufCMessage *const *)kept, ids, k, 0, req->page_size,
                          req->page_token, &pg) != 0) {
        goto out;
    }
    for (size_t i = 0; i < pg.count; i++) {
        spec_strip_registry_auth(kept[pg.start + i]->spec);
    }
    resp.tasks = kept + pg.start;
    resp.n_tasks = pg.count;
    resp.next_page_token = pg.more ? kept[pg.start + pg.count - 1]->id : "";
    resp.stale = reads_stale(sa);
    api_call_reply(call, &resp.base);
out:
    free(kept);
    free(ids);
    store_task_free_list(tasks, n);
}

void serviceapi_register(struct api_server *server, struct manager_slot *slot)
{
    static const struct {
        const char *method;
        api_handler_cb cb;
        bool write;
    } methods[] = {
        {"CreateService", create_service_cb, true}, {"GetService", get_service_cb, false},
        {"ListServices", list_services_cb, false},  {"UpdateService", update_service_cb, true},
        {"RemoveService", remove_service_cb, true}, {"GetTask", get_task_cb, false},
        {"ListTasks", list_tasks_cb, false},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        forward_register_routed(server, &swarm__control__descriptor, methods[i].method,
                                API_ROLE_LOCAL | API_ROLE_MANAGER, !methods[i].write,
                                methods[i].cb, slot);
    }
}

int serviceapi_set_insecure_registries(struct serviceapi *sa, const char *const *list,
                                       size_t n)
{
    char **copy = calloc(n + 1, sizeof *copy);
    if (copy == NULL) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if ((copy[i] = strdup(list[i])) == NULL) {
            for (size_t j = 0; j < i; j++) {
                free(copy[j]);
            }
            free(copy);
            return SWARM_ENOMEM;
        }
    }
    for (size_t i = 0; i < sa->n_insecure; i++) {
        free(sa->insecure[i]);
    }
    free(sa->insecure);
    sa->insecure = copy;
    sa->n_insecure = n;
    return 0;
}

struct serviceapi *serviceapi_new(const struct menv *env)
{
    struct serviceapi *sa = calloc(1, sizeof *sa);
    if (sa != NULL) {
        sa->env = env;
    }
    return sa;
}

void serviceapi_close(struct serviceapi *sa, void (*cb)(void *data), void *data)
{
    sa->closing = true;
    sa->close_cb = cb;
    sa->close_data = data;
    service_maybe_free(sa);
}
