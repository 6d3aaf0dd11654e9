/* Compose files (v3, the keys `docker stack deploy` supports) -> a typed
 * project: services as `service create` words, networks and volumes.
 *
 * Parsing is libyaml's document API (anchors and aliases resolved by libyaml,
 * merge keys `<<` here), then interpolation of every scalar (${VAR},
 * ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, $VAR, $$) from the caller's
 * lookup then the .env beside the first file, then several files merged
 * (later files override: maps key by key, scalars and lists replaced), then
 * a typed walk that refuses a wrong type, an unknown key or an undefined
 * network/volume with "FILE:LINE: PATH message" (Docker's jsonschema
 * wording: "services.web.deploy.replicas must be a integer",
 * "services.web Additional property foo is not allowed").
 *
 * Each service becomes `service create` flag words (--replicas 2, --publish
 * 8080:80, --network name=wp_default,alias=web, ...) each checked on its
 * own by cmd_service_opts' parser, so a bad value is reported with its key
 * and line; compose_service_spec then builds the ServiceSpec with
 * cli_svc_spec_new, the same builder as `service create`.
 *
 * The runtime: `image` follows common/runtime.h's rule (a path or a bare
 * word: process; NAME:TAG, a digest or a registry path: container); the
 * extension key `x-swarmd-runtime: process|container` in a service forces
 * one (as --runtime).
 *
 * Pure apart from reading the files it is given (compose files, .env,
 * env_file). */
#ifndef SWARM_CLI_COMPOSE_H
#define SWARM_CLI_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "objects.pb-c.h"

/* The variables interpolation sees before the .env file: returns the value
 * or NULL. */
typedef const char *(*compose_lookup_fn)(const char *name, void *arg);

struct compose_word {
    char *flag;  /* "--replicas" */
    char *value; /* "2" */
    char *path;  /* "services.web.deploy.replicas" */
    const char *file;
    int line;
};

struct compose_service {
    char *name;       /* as in the file: "web" */
    char *image;
    char **args;      /* command */
    size_t n_args;
    char **entrypoint;
    size_t n_entrypoint;
    bool has_entrypoint;
    char **health_test; /* healthcheck.test as swarmkit keeps it */
    size_t n_health_test;
    struct compose_word *words;
    size_t n_words;
    const char *file;
    int line;
};

struct compose_network {
    char *key;   /* as in the file: "default", "back" */
    char *name;  /* the network's name: STACK_key, `name:`, or the external's */
    bool external;
    bool used;
    char *driver;
    bool attachable, internal;
    char *subnet;
    char **labels; /* K=V */
    size_t n_labels;
};

struct compose_volume {
    char *key;
    char *name;
    bool external;
};

struct compose_project {
    char *stack;
    struct compose_service *services;
    size_t n_services;
    struct compose_network *networks;
    size_t n_networks;
    struct compose_volume *volumes;
    size_t n_volumes;
    char **ignored; /* sorted unique keys swarm mode ignores: "build" */
    size_t n_ignored;
    char **files;   /* the files read, for messages */
    size_t n_files;
};

/* Load `files` (in order) for stack `stack`. Returns 0, or a negative
 * SWARM_E* code with the first error in errmsg. */
int compose_load(char *const *files, size_t n_files, const char *stack,
                 compose_lookup_fn lookup, void *lookup_arg,
                 struct compose_project **out, char *errmsg);

/* Load from memory (tests): `texts[i]` stands for the file `names[i]`;
 * `dotenv` (may be NULL) is the .env text. */
int compose_load_texts(char *const *names, char *const *texts, size_t n,
                       const char *dotenv, const char *stack,
                       compose_lookup_fn lookup, void *lookup_arg,
                       struct compose_project **out, char *errmsg);

void compose_free(struct compose_project *p);

/* "Ignoring unsupported options: build, links" or "" when none. */
void compose_ignored_message(const struct compose_project *p, char *buf, size_t size);

/* The ServiceSpec of service i (named STACK_NAME, labelled
 * com.docker.stack.namespace=STACK, on its networks with its name as an
 * alias). Returns the spec (free with protobuf_c_message_free_unpacked) or
 * NULL with "FILE:LINE: PATH: reason" in errmsg. */
Swarm__ServiceSpec *compose_service_spec(const struct compose_project *p, size_t i,
                                         char *errmsg);

/* Interpolate one string (exposed for tests). `env` is consulted after
 * `lookup`. Returns the new string or NULL with the reason in errmsg
 * ("required variable X is missing a value: err"). */
struct compose_env;
char *compose_interpolate(const char *s, compose_lookup_fn lookup, void *arg,
                          const struct compose_env *env, char *errmsg);

#define COMPOSE_NAMESPACE_LABEL "com.docker.stack.namespace"

#endif
