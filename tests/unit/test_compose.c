/* compose.c: the compose file parser (YAML, anchors, merge keys, x-,
 * interpolation, several files, ignored keys, errors with file/path/line)
 * and the ServiceSpec it builds through `service create`'s builder. */
#include <stdlib.h>
#include <string.h>

#include "compose.h"
#include "test.h"

static const char *lookup(const char *name, void *arg)
{
    const char *const *kv = arg;
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2) {
        if (strcmp(kv[i], name) == 0) {
            return kv[i + 1];
        }
    }
    return NULL;
}

static int load(const char *text, const char *dotenv, const char *const *env,
                struct compose_project **p, char *err)
{
    char *names[1] = {(char *)"dc.yml"}, *texts[1] = {(char *)text};
    return compose_load_texts(names, texts, 1, dotenv, "wp", lookup, (void *)env, p, err);
}

static Swarm__ServiceSpec *spec_of(const struct compose_project *p, const char *name)
{
    char err[SWARM_ERRMSG_SIZE];
    for (size_t i = 0; i < p->n_services; i++) {
        if (strcmp(p->services[i].name, name) == 0) {
            return compose_service_spec(p, i, err);
        }
    }
    return NULL;
}

static const char *label(const Swarm__Annotations *a, const char *key)
{
    for (size_t i = 0; i < a->n_labels; i++) {
        if (strcmp(a->labels[i]->key, key) == 0) {
            return a->labels[i]->value;
        }
    }
    return NULL;
}

static bool has_env(const Swarm__ContainerSpec *c, const char *kv)
{
    for (size_t i = 0; i < c->n_env; i++) {
        if (strcmp(c->env[i], kv) == 0) {
            return true;
        }
    }
    return false;
}

static void expect_error(const char *text, const char *needle)
{
    struct compose_project *p = NULL;
    char err[SWARM_ERRMSG_SIZE] = "";
    int rv = load(text, NULL, NULL, &p, err);
    if (rv == 0 || strstr(err, needle) == NULL) {
        fprintf(stderr, "want error containing [%s], got rv %d [%s]\n", needle, rv, err);
    }
    ASSERT(rv != 0);
    ASSERT(p == NULL);
    ASSERT(strstr(err, needle) != NULL);
}

static const char *wordpress =
    "version: '3.8'\n"
    "services:\n"
    "  db:\n"
    "    image: /usr/bin/python3\n"
    "    command: ['-m', 'http.server', '3306']\n"
    "    environment:\n"
    "      MYSQL_DATABASE: wordpress\n"
    "      MYSQL_USER: wp\n"
    "    volumes:\n"
    "      - db_data:/var/lib/mysql\n"
    "      - /srv/conf:/etc/mysql:ro\n"
    "    deploy:\n"
    "      placement:\n"
    "        constraints: [node.role == manager]\n"
    "  web:\n"
    "    image: wordpress:latest\n"
    "    ports:\n"
    "      - \"8080:80\"\n"
    "      - target: 443\n"
    "        published: 8443\n"
    "        mode: host\n"
    "    environment:\n"
    "      - WORDPRESS_DB_HOST=db:3306\n"
    "    networks:\n"
    "      front:\n"
    "        aliases: [www]\n"
    "      default:\n"
    "    healthcheck:\n"
    "      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost\"]\n"
    "      interval: 10s\n"
    "      retries: 3\n"
    "    stop_grace_period: 1m30s\n"
    "    read_only: true\n"
    "    cap_add: [NET_ADMIN]\n"
    "    deploy:\n"
    "      replicas: 2\n"
    "      endpoint_mode: dnsrr\n"
    "      labels: {tier: front}\n"
    "      resources:\n"
    "        limits: {cpus: '0.5', memory: 256M}\n"
    "      restart_policy: {condition: on-failure, delay: 2s, max_attempts: 3}\n"
    "      update_config: {parallelism: 2, delay: 5s, order: start-first}\n"
    "      placement:\n"
    "        max_replicas_per_node: 1\n"
    "        preferences: [{spread: node.labels.zone}]\n"
    "networks:\n"
    "  front:\n"
    "    driver: overlay\n"
    "    labels: [team=web]\n"
    "volumes:\n"
    "  db_data:\n";

TEST(compose_wordpress_to_specs)
{
    struct compose_project *p = NULL;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(load(wordpress, NULL, NULL, &p, err), 0);
    ASSERT_INT_EQ(p->n_services, 2);
    Swarm__ServiceSpec *db = spec_of(p, "db"), *web = spec_of(p, "web");
    ASSERT(db != NULL && web != NULL);
    ASSERT_STR_EQ(db->annotations->name, "wp_db");
    ASSERT_STR_EQ(label(db->annotations, COMPOSE_NAMESPACE_LABEL), "wp");
    ASSERT_STR_EQ(db->task->container->image, "/usr/bin/python3");
    ASSERT_INT_EQ(db->task->container->n_args, 3);
    ASSERT_STR_EQ(db->task->container->args[2], "3306");
    ASSERT(has_env(db->task->container, "MYSQL_DATABASE=wordpress"));
    ASSERT_STR_EQ(db->task->placement->constraints[0], "node.role == manager");
    ASSERT_INT_EQ(db->task->container->n_mounts, 2);
    ASSERT_STR_EQ(db->task->container->mounts[0]->type, "volume");
    ASSERT_STR_EQ(db->task->container->mounts[0]->source, "wp_db_data");
    ASSERT_STR_EQ(db->task->container->mounts[1]->type, "bind");
    ASSERT(db->task->container->mounts[1]->readonly);
    ASSERT_INT_EQ(db->replicated->replicas, 1);
    /* no networks named: the stack's default network, the service name an alias */
    ASSERT_INT_EQ(db->task->n_networks, 1);
    ASSERT_STR_EQ(db->task->networks[0]->target, "wp_default");
    ASSERT_STR_EQ(db->task->networks[0]->aliases[0], "db");

    ASSERT_INT_EQ(web->replicated->replicas, 2);
    ASSERT_STR_EQ(web->endpoint->mode, "dnsrr");
    ASSERT_INT_EQ(web->endpoint->n_ports, 2);
    ASSERT_INT_EQ(web->endpoint->ports[0]->published_port, 8080);
    ASSERT_INT_EQ(web->endpoint->ports[0]->target_port, 80);
    ASSERT_INT_EQ(web->endpoint->ports[1]->published_port, 8443);
    ASSERT_INT_EQ(web->task->n_networks, 2);
    ASSERT_STR_EQ(web->task->networks[0]->target, "wp_front");
    ASSERT_INT_EQ(web->task->networks[0]->n_aliases, 2);
    ASSERT_STR_EQ(web->task->networks[0]->aliases[1], "www");
    ASSERT_STR_EQ(web->task->networks[1]->target, "wp_default");
    ASSERT_INT_EQ(web->task->container->healthcheck->n_test, 4);
    ASSERT_STR_EQ(web->task->container->healthcheck->test[0], "CMD");
    ASSERT_INT_EQ(web->task->container->healthcheck->interval_ms, 10000);
    ASSERT_INT_EQ(web->task->container->healthcheck->retries, 3);
    ASSERT_INT_EQ(web->task->container->stop_grace_period_ms, 90000);
    ASSERT(web->task->container->read_only);
    ASSERT_STR_EQ(web->task->container->cap_add[0], "NET_ADMIN");
    ASSERT_STR_EQ(label(web->annotations, "tier"), "front");
    ASSERT_INT_EQ(web->task->resources->limits->nano_cpus, 500000000);
    ASSERT_INT_EQ(web->task->resources->limits->memory_bytes, 256 * 1024 * 1024);
    ASSERT_INT_EQ(web->task->restart->max_attempts, 3);
    ASSERT_INT_EQ(web->task->restart->delay_ms, 2000);
    ASSERT_INT_EQ(web->update->parallelism, 2);
    ASSERT_INT_EQ(web->update->order, SWARM__UPDATE_ORDER__UPDATE_ORDER_START_FIRST);
    ASSERT_INT_EQ(web->task->placement->max_replicas, 1);
    ASSERT_STR_EQ(web->task->placement->preferences[0]->spread_descriptor, "node.labels.zone");
    /* networks: default and front used, front with its labels */
    ASSERT_INT_EQ(p->n_networks, 2);
    for (size_t i = 0; i < p->n_networks; i++) {
        ASSERT(p->networks[i].used);
    }
    protobuf_c_message_free_unpacked(&db->base, NULL);
    protobuf_c_message_free_unpacked(&web->base, NULL);
    compose_free(p);
}

TEST(compose_runtime_rule_and_extension_key)
{
    struct compose_project *p = NULL;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(load("services:\n"
                       "  a: {image: /bin/sleep, command: 100}\n"
                       "  b: {image: 'nginx:1.25'}\n"
                       "  c:\n    image: sleep\n    x-swarmd-runtime: process\n"
                       "  d:\n    image: busybox\n    x-swarmd-runtime: container\n",
                       NULL, NULL, &p, err), 0);
    Swarm__ServiceSpec *a = spec_of(p, "a"), *b = spec_of(p, "b"), *c = spec_of(p, "c"), *d = spec_of(p, "d");
    /* no runtime asked: the manager applies common/runtime.c's rule */
    ASSERT_STR_EQ(a->task->runtime, "");
    ASSERT_STR_EQ(b->task->runtime, "");
    ASSERT_STR_EQ(c->task->runtime, "process");
    ASSERT_STR_EQ(d->task->runtime, "container");
    ASSERT_STR_EQ(a->task->container->args[0], "100");
    protobuf_c_message_free_unpacked(&a->base, NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    compose_free(p);
    expect_error("services:\n  a:\n    image: x\n    x-swarmd-runtime: vm\n",
                 "dc.yml:4: services.a.x-swarmd-runtime: invalid argument \"vm\"");
}

TEST(compose_anchors_merge_keys_and_x_fields)
{
    struct compose_project *p = NULL;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(load("x-common: &common\n"
                       "  image: /bin/sleep\n"
                       "  environment: {A: '1'}\n"
                       "  deploy: {replicas: 3}\n"
                       "x-anything: [1, {2: 3}, '${NOT_INTERPOLATED:?}']\n"
                       "services:\n"
                       "  a:\n    <<: *common\n    command: '60'\n    x-note: hi\n"
                       "  b:\n    <<: *common\n    deploy: {replicas: 1}\n",
                       NULL, NULL, &p, err), 0);
    Swarm__ServiceSpec *a = spec_of(p, "a"), *b = spec_of(p, "b");
    ASSERT_INT_EQ(a->replicated->replicas, 3);
    ASSERT_INT_EQ(b->replicated->replicas, 1); /* its own key wins over the merge */
    ASSERT(has_env(b->task->container, "A=1"));
    ASSERT_STR_EQ(a->task->container->image, "/bin/sleep");
    protobuf_c_message_free_unpacked(&a->base, NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    compose_free(p);
}

TEST(compose_interpolation_forms)
{
    const char *env[] = {"SET", "v", "EMPTY", "", "NEST", "n", NULL};
    char err[SWARM_ERRMSG_SIZE];
    struct {
        const char *in, *out;
    } ok[] = {
        {"${SET}", "v"}, {"$SET/x", "v/x"}, {"${UNSET}", ""}, {"${UNSET:-d}", "d"},
        {"${EMPTY:-d}", "d"}, {"${EMPTY-d}", ""}, {"${UNSET-d}", "d"}, {"$$SET", "$SET"},
        {"a${SET:?err}b", "avb"}, {"${EMPTY?e}", ""}, {"${UNSET:-$NEST}", "n"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char *s = compose_interpolate(ok[i].in, lookup, (void *)env, NULL, err);
        ASSERT(s != NULL);
        ASSERT_STR_EQ(s, ok[i].out);
        free(s);
    }
    ASSERT(compose_interpolate("${UNSET:?need it}", lookup, (void *)env, NULL, err) == NULL);
    ASSERT_STR_EQ(err, "required variable UNSET is missing a value: need it");
    ASSERT(compose_interpolate("${EMPTY:?x}", lookup, (void *)env, NULL, err) == NULL);
    ASSERT(compose_interpolate("${UNSET?x}", lookup, (void *)env, NULL, err) == NULL);
    char *set_empty = compose_interpolate("${EMPTY?x}", lookup, (void *)env, NULL, err);
    ASSERT(set_empty != NULL); /* set, though empty: no error without ':' */
    free(set_empty);
    ASSERT(compose_interpolate("${", lookup, (void *)env, NULL, err) == NULL);
    ASSERT(strstr(err, "Invalid interpolation format") != NULL);
    ASSERT(compose_interpolate("${A B}", lookup, (void *)env, NULL, err) == NULL);
}

TEST(compose_dotenv_and_environment)
{
    const char *env[] = {"TAG", "from-env", NULL};
    struct compose_project *p = NULL;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(load("services:\n  a:\n    image: /bin/${PROG}\n    command: ${TAG}\n"
                       "    deploy:\n      replicas: ${N:-1}\n",
                       "# comment\nPROG=sleep\nTAG=from-dotenv\n\nN=4\n", env, &p, err), 0);
    Swarm__ServiceSpec *a = spec_of(p, "a");
    ASSERT_STR_EQ(a->task->container->image, "/bin/sleep");
    ASSERT_STR_EQ(a->task->container->args[0], "from-env"); /* the environment wins */
    ASSERT_INT_EQ(a->replicated->replicas, 4);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    compose_free(p);
    ASSERT(load("services:\n  a: {image: x}\n", "BAD LINE\n", NULL, &p, err) != 0);
    ASSERT(strstr(err, ".env:1: invalid variable line") != NULL);
}

TEST(compose_several_files_merge)
{
    char *names[2] = {(char *)"a.yml", (char *)"b.yml"};
    char *texts[2] = {(char *)"services:\n  web:\n    image: /bin/sleep\n    command: '1'\n"
                              "    environment: {A: a, B: b}\n    deploy: {replicas: 1}\n",
                      (char *)"services:\n  web:\n    environment: {B: override}\n"
                              "    deploy: {replicas: 5}\n  extra: {image: /bin/true}\n"};
    struct compose_project *p = NULL;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(compose_load_texts(names, texts, 2, NULL, "s", lookup, NULL, &p, err), 0);
    ASSERT_INT_EQ(p->n_services, 2);
    Swarm__ServiceSpec *w = spec_of(p, "web");
    ASSERT_INT_EQ(w->replicated->replicas, 5);
    ASSERT(has_env(w->task->container, "A=a"));
    ASSERT(has_env(w->task->container, "B=override"));
    ASSERT_STR_EQ(w->task->container->args[0], "1");
    protobuf_c_message_free_unpacked(&w->base, NULL);
    compose_free(p);
    /* an error in the second file names that file */
    texts[1] = (char *)"services:\n  web:\n    deploy: {replicas: two}\n";
    ASSERT(compose_load_texts(names, texts, 2, NULL, "s", lookup, NULL, &p, err) != 0);
    ASSERT_STR_EQ(err, "b.yml:3: services.web.deploy.replicas must be a integer");
}

TEST(compose_ignored_keys_reported)
{
    struct compose_project *p = NULL;
    char err[SWARM_ERRMSG_SIZE], msg[512];
    ASSERT_INT_EQ(load("services:\n  a:\n    image: x\n    build: .\n    links: [b]\n"
                       "    restart: always\n  b:\n    image: y\n    build: ./b\n"
                       "    depends_on: [a]\n    container_name: bee\n",
                       NULL, NULL, &p, err), 0);
    compose_ignored_message(p, msg, sizeof msg);
    ASSERT_STR_EQ(msg, "Ignoring unsupported options: build, container_name, depends_on, links, restart");
    compose_free(p);
    ASSERT_INT_EQ(load("services:\n  a: {image: x}\n", NULL, NULL, &p, err), 0);
    compose_ignored_message(p, msg, sizeof msg);
    ASSERT_STR_EQ(msg, "");
    compose_free(p);
}

TEST(compose_bad_files)
{
    /* YAML syntax, with its line */
    expect_error("services:\n  a:\n    image: x\n   bad: [\n", "dc.yml:4: yaml:");
    expect_error("services:\n  a:\n    image: x\n    deploy:\n      replicas: \"two\"\n",
                 "dc.yml:5: services.a.deploy.replicas must be a integer");
    expect_error("services:\n  a: {image: x}\nvolumez: {}\n",
                 "dc.yml:3: (root) Additional property volumez is not allowed");
    expect_error("services:\n  a:\n    image: x\n    imagez: y\n",
                 "dc.yml:4: services.a Additional property imagez is not allowed");
    expect_error("services:\n  a:\n    image: x\n    networks: [back]\n",
                 "dc.yml:4: services.a.networks refers to undefined network back");
    expect_error("services:\n  a:\n    image: x\n    volumes: ['data:/d']\n",
                 "dc.yml:4: services.a.volumes.0 refers to undefined volume data");
    expect_error("services:\n  a:\n    image: ${IMG:?set IMG}\n",
                 "dc.yml:3: required variable IMG is missing a value: set IMG");
    expect_error("services:\n  a:\n    image: x\n    read_only: maybe\n",
                 "dc.yml:4: services.a.read_only must be a boolean");
    expect_error("services:\n  a:\n    image: x\n    deploy:\n      resources:\n        limits: {memory: lots}\n",
                 "dc.yml:6: services.a.deploy.resources.limits.memory: invalid argument \"lots\"");
    expect_error("services:\n  a:\n    image: x\n    deploy: {mode: sometimes}\n",
                 "services.a");
    expect_error("services:\n  a:\n    image: x\n    secrets: [pw]\n",
                 "dc.yml:4: services.a.secrets is not supported yet");
    expect_error("services:\n  a: {image: x}\nsecrets:\n  pw: {file: ./pw}\n",
                 "secrets is not supported yet");
    expect_error("services:\n  a:\n    command: x\n", "services.a has neither an image");
    expect_error("- a\n- b\n", "Top-level object must be a mapping");
    expect_error("version: '3'\n", "services is required");
    expect_error("services:\n  a: {image: x}\n  a: {image: y}\n", "mapping key \"a\" already defined");
    expect_error("services:\n  a:\n    image: x\n    ports: ['99999:80']\n", "services.a.ports.0:");
    expect_error("x: &a [*a]\nservices: {}\n", "too deep or too large");
}

TEST(compose_external_network)
{
    struct compose_project *p = NULL;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(load("services:\n  a:\n    image: x\n    networks: [outside]\n"
                       "networks:\n  outside:\n    external: true\n    name: shared-net\n",
                       NULL, NULL, &p, err), 0);
    ASSERT_INT_EQ(p->n_networks, 2);
    ASSERT(!p->networks[0].used); /* the default, not used: not created */
    ASSERT(p->networks[1].external);
    ASSERT_STR_EQ(p->networks[1].name, "shared-net");
    Swarm__ServiceSpec *a = spec_of(p, "a");
    ASSERT_STR_EQ(a->task->networks[0]->target, "shared-net");
    protobuf_c_message_free_unpacked(&a->base, NULL);
    compose_free(p);
    expect_error("services:\n  a: {image: x}\nnetworks:\n  o:\n    external: true\n    driver: overlay\n",
                 "conflicting parameters");
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* From disk: .env beside the file, env_file relative to it (environment
 * keys override it), a relative bind source made absolute. */
TEST(compose_load_from_disk_env_file_and_binds)
{
    char dir[] = "/tmp/test_compose_XXXXXX", path[512];
    ASSERT(mkdtemp(dir) != NULL);
    write_file(dir, ".env", "IMG=/bin/sleep\n");
    write_file(dir, "web.env", "# comment\nA=from-file\nB=from-file\n");
    write_file(dir, "docker-compose.yml",
               "services:\n  web:\n    image: ${IMG}\n    env_file: web.env\n"
               "    environment: {B: from-compose}\n    volumes: ['./data:/data']\n");
    snprintf(path, sizeof path, "%s/docker-compose.yml", dir);
    char *files[1] = {path}, err[SWARM_ERRMSG_SIZE];
    struct compose_project *p = NULL;
    ASSERT_INT_EQ(compose_load(files, 1, "st", lookup, NULL, &p, err), 0);
    Swarm__ServiceSpec *w = spec_of(p, "web");
    ASSERT_STR_EQ(w->task->container->image, "/bin/sleep");
    ASSERT(has_env(w->task->container, "A=from-file"));
    ASSERT(has_env(w->task->container, "B=from-compose"));
    ASSERT(!has_env(w->task->container, "B=from-file"));
    char want[600];
    snprintf(want, sizeof want, "%s/data", dir);
    ASSERT_STR_EQ(w->task->container->mounts[0]->source, want);
    protobuf_c_message_free_unpacked(&w->base, NULL);
    compose_free(p);
    /* a missing env_file: the key, the line and the reason */
    write_file(dir, "docker-compose.yml", "services:\n  web:\n    image: x\n    env_file: [nope.env]\n");
    ASSERT(compose_load(files, 1, "st", lookup, NULL, &p, err) != 0);
    ASSERT(strstr(err, "docker-compose.yml:4: services.web.env_file open ") != NULL);
    ASSERT(strstr(err, "No such file or directory") != NULL);
    /* a missing compose file */
    snprintf(path, sizeof path, "%s/absent.yml", dir);
    ASSERT(compose_load(files, 1, "st", lookup, NULL, &p, err) != 0);
    ASSERT(strstr(err, "absent.yml: No such file or directory") != NULL);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    ASSERT_INT_EQ(system(path), 0);
}

TEST_MAIN()
