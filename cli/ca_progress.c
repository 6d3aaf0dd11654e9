/* See ca_progress.h. */
#include "ca_progress.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

const ProtobufCBinaryData *cli_ca_desired_root(const Swarm__Cluster *c)
{
    if (c == NULL || c->root_ca == NULL) {
        return NULL;
    }
    if (c->root_ca->root_rotation != NULL && c->root_ca->root_rotation->ca_cert_pem.len > 0) {
        return &c->root_ca->root_rotation->ca_cert_pem;
    }
    return c->root_ca->ca_cert_pem.len > 0 ? &c->root_ca->ca_cert_pem : NULL;
}

static bool bin_eq(const ProtobufCBinaryData *a, const unsigned char *b, size_t len)
{
    return a->len == len && (len == 0 || memcmp(a->data, b, len) == 0);
}

/* DER subject and SubjectPublicKeyInfo of a PEM certificate. */
static int root_identity(const ProtobufCBinaryData *pem, unsigned char **subj, int *subj_len,
                         unsigned char **pub, int *pub_len)
{
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    int rv = -1;
    *subj = *pub = NULL;
    if (x != NULL) {
        *subj_len = i2d_X509_NAME(X509_get_subject_name(x), subj);
        *pub_len = i2d_PUBKEY(X509_get0_pubkey(x), pub);
        rv = *subj_len > 0 && *pub_len > 0 ? 0 : -1;
    }
    X509_free(x);
    BIO_free(bio);
    return rv;
}

int cli_ca_progress_eval(const Swarm__Cluster *c, Swarm__Node *const *nodes, size_t n,
                         struct cli_ca_progress *p)
{
    const ProtobufCBinaryData *root = cli_ca_desired_root(c);
    unsigned char md[EVP_MAX_MD_SIZE], *subj = NULL, *pub = NULL;
    unsigned int md_len = 0;
    int subj_len = 0, pub_len = 0;
    memset(p, 0, sizeof *p);
    if (root == NULL || root_identity(root, &subj, &subj_len, &pub, &pub_len) != 0 ||
        EVP_Digest(root->data, root->len, md, &md_len, EVP_sha256(), NULL) != 1) {
        OPENSSL_free(subj);
        OPENSSL_free(pub);
        return -1;
    }
    /* docker/cli: the digest of the PEM text, as go-digest computes it. */
    int o = snprintf(p->digest, sizeof p->digest, "sha256:");
    for (unsigned i = 0; i < md_len && o + 2 < (int)sizeof p->digest; i++) {
        o += snprintf(p->digest + o, sizeof p->digest - (size_t)o, "%02x", md[i]);
    }
    p->rotating = c->root_ca->root_rotation != NULL;
    for (size_t i = 0; i < n; i++) {
        const Swarm__NodeDescription *d = nodes[i]->description;
        const Swarm__NodeTLSInfo *t = d != NULL ? d->tls_info : NULL;
        if (nodes[i]->status != NULL &&
            nodes[i]->status->state == SWARM__NODE_STATE__NODE_STATE_DOWN) {
            continue;
        }
        p->total++;
        if (t == NULL) {
            continue;
        }
        if (bin_eq(&t->cert_issuer_public_key, pub, (size_t)pub_len) &&
            bin_eq(&t->cert_issuer_subject, subj, (size_t)subj_len)) {
            p->certs_ok++;
        }
        if (bin_eq(&t->trust_root, root->data, root->len)) {
            p->roots_ok++;
        }
    }
    /* Trust roots change only once the rotation is over: until then show 0,
     * as Docker does. */
    if (p->rotating || p->certs_ok < p->total) {
        p->roots_ok = 0;
    }
    p->done = !p->rotating && p->certs_ok == p->total && p->roots_ok == p->total;
    OPENSSL_free(subj);
    OPENSSL_free(pub);
    return 0;
}

/* docker/pkg/jsonmessage's bar: 50 wide, '=' up to the share done, '>'. */
static void bar_line(char *line, const char *label, size_t cur, size_t total)
{
    int eq = total > 0 ? (int)(cur * 100 / total / 2) : 0;
    if (eq > 50) {
        eq = 50;
    }
    snprintf(line, CLI_PROGRESS_LINE, "%-27s  [%.*s>%*s] %zu/%zu nodes", label, eq,
             "==================================================", 50 - eq, "", cur, total);
}

size_t cli_ca_progress_render(const struct cli_ca_progress *p, char (*lines)[CLI_PROGRESS_LINE])
{
    snprintf(lines[0], CLI_PROGRESS_LINE, "desired root digest: %s", p->digest);
    bar_line(lines[1], "  rotated TLS certificates:", p->certs_ok, p->total);
    bar_line(lines[2], "  rotated CA certificates:", p->roots_ok, p->total);
    return 3;
}
