/* DNS messages of the embedded server (see dnsmsg.h), all through ldns. */
#include "dnsmsg.h"

#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "err.h"

/* A reply to `q`: same ID, opcode, RD, CD and question (if it has exactly
 * one), QR and RA set, EDNS if the query had it. NULL if out of memory. */
static ldns_pkt *reply_new(const ldns_pkt *q, uint8_t rcode)
{
    ldns_pkt *r = ldns_pkt_new();
    ldns_rr_list *qs = ldns_pkt_question(q);

    if (r == NULL) {
        return NULL;
    }
    ldns_pkt_set_id(r, ldns_pkt_id(q));
    ldns_pkt_set_qr(r, true);
    ldns_pkt_set_opcode(r, ldns_pkt_get_opcode(q));
    ldns_pkt_set_rd(r, ldns_pkt_rd(q));
    ldns_pkt_set_cd(r, ldns_pkt_cd(q));
    ldns_pkt_set_ra(r, true);
    ldns_pkt_set_rcode(r, rcode);
    if (ldns_pkt_edns(q)) {
        ldns_pkt_set_edns_udp_size(r, DNSMSG_UDP_MAX);
    }
    if (qs != NULL && ldns_rr_list_rr_count(qs) == 1) {
        ldns_rr *qrr = ldns_rr_clone(ldns_rr_list_rr(qs, 0));
        if (qrr == NULL || !ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, qrr)) {
            ldns_rr_free(qrr);
            ldns_pkt_free(r);
            return NULL;
        }
    }
    return r;
}

static int pkt_to_wire(const ldns_pkt *p, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    if (ldns_pkt2wire(out, p, out_len) != LDNS_STATUS_OK) {
        free(*out);
        *out = NULL;
        return SWARM_ENOMEM;
    }
    return 0;
}

static int address_rr_push(ldns_pkt *r, const ldns_rdf *owner,
                           const struct dnstable_addr *a)
{
    ldns_rr *rr = ldns_rr_new();
    ldns_rdf *owner_copy = ldns_rdf_clone(owner);
    ldns_rdf *data = a->family == AF_INET
                         ? ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, a->a)
                         : ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16, a->a);

    if (rr == NULL || owner_copy == NULL || data == NULL) {
        goto err;
    }
    ldns_rr_set_owner(rr, owner_copy);
    owner_copy = NULL;
    ldns_rr_set_type(rr, a->family == AF_INET ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, DNSTABLE_TTL);
    if (!ldns_rr_push_rdf(rr, data)) {
        goto err;
    }
    data = NULL;
    if (!ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr)) {
        goto err;
    }
    return 0;
err:
    ldns_rdf_deep_free(data);
    ldns_rdf_deep_free(owner_copy);
    ldns_rr_free(rr);
    return SWARM_ENOMEM;
}

/* Serialize `r`, dropping answers from the end (and setting TC) until the
 * message fits `max` bytes. */
static int reply_to_wire_fit(ldns_pkt *r, size_t max, uint8_t **out, size_t *out_len)
{
    for (;;) {
        int rv = pkt_to_wire(r, out, out_len);
        ldns_rr_list *an = ldns_pkt_answer(r);

        if (rv != 0 || *out_len <= max || ldns_rr_list_rr_count(an) == 0) {
            return rv;
        }
        free(*out);
        *out = NULL;
        ldns_rr_free(ldns_rr_list_pop_rr(an));
        ldns_pkt_set_ancount(r, (uint16_t)ldns_rr_list_rr_count(an));
        ldns_pkt_set_tc(r, true);
    }
}

static int reply_ours(const struct dnstable *t, const ldns_pkt *q, const ldns_rr *qrr,
                      const char *const *network_ids, size_t n_networks, bool tcp,
                      uint64_t *rng, enum dnsmsg_action *action, uint8_t **reply,
                      size_t *reply_len)
{
    struct dnstable_answer ans = {0};
    char *name = ldns_rdf2str(ldns_rr_owner(qrr));
    ldns_pkt *r = NULL;
    size_t max;
    int rv;

    if (name == NULL) {
        return SWARM_ENOMEM;
    }
    rv = dnstable_lookup(t, name, (uint16_t)ldns_rr_get_type(qrr), network_ids,
                         n_networks, &ans);
    free(name);
    if (rv != 0) {
        goto out;
    }
    if (ans.kind == DNSTABLE_FORWARD) {
        *action = DNSMSG_FORWARD;
        goto out;
    }
    /* Ours: NOERROR with the addresses of the asked family (none for AAAA
     * of an IPv4-only name, as Docker, or for any other type). */
    dnstable_shuffle(ans.addrs.items, ans.addrs.len, rng);
    r = reply_new(q, LDNS_RCODE_NOERROR);
    rv = r == NULL ? SWARM_ENOMEM : 0;
    for (size_t i = 0; rv == 0 && i < ans.addrs.len; i++) {
        rv = address_rr_push(r, ldns_rr_owner(qrr), &ans.addrs.items[i]);
    }
    if (rv != 0) {
        goto out;
    }
    max = 65535;
    if (!tcp) {
        max = ldns_pkt_edns(q) ? ldns_pkt_edns_udp_size(q) : 512;
        max = max < 512 ? 512 : max > DNSMSG_UDP_MAX ? DNSMSG_UDP_MAX : max;
    }
    rv = reply_to_wire_fit(r, max, reply, reply_len);
    if (rv == 0) {
        *action = DNSMSG_REPLY;
    }
out:
    ldns_pkt_free(r);
    dnstable_answer_free(&ans);
    return rv;
}

static int reply_error(const ldns_pkt *q, uint8_t rcode, enum dnsmsg_action *action,
                       uint8_t **reply, size_t *reply_len)
{
    ldns_pkt *r = reply_new(q, rcode);
    int rv;

    if (r == NULL) {
        return SWARM_ENOMEM;
    }
    rv = pkt_to_wire(r, reply, reply_len);
    ldns_pkt_free(r);
    if (rv == 0) {
        *action = DNSMSG_REPLY;
    }
    return rv;
}

int dnsmsg_query_handle(const struct dnstable *t, const uint8_t *wire, size_t len,
                        const char *const *network_ids, size_t n_networks,
                        bool tcp, uint64_t *rng, enum dnsmsg_action *action,
                        uint8_t **reply, size_t *reply_len)
{
    ldns_pkt *q = NULL;
    const ldns_rr *qrr;
    int rv = 0;

    *action = DNSMSG_DROP;
    *reply = NULL;
    *reply_len = 0;
    if (ldns_wire2pkt(&q, wire, len) != LDNS_STATUS_OK) {
        return 0; /* garbage: nothing to answer to */
    }
    if (ldns_pkt_qr(q)) {
        goto out; /* an answer sent to us: never reply to one */
    }
    if (ldns_pkt_get_opcode(q) != LDNS_PACKET_QUERY) {
        rv = reply_error(q, LDNS_RCODE_NOTIMPL, action, reply, reply_len);
        goto out;
    }
    if (ldns_pkt_qdcount(q) != 1 || ldns_rr_list_rr_count(ldns_pkt_question(q)) != 1) {
        rv = reply_error(q, LDNS_RCODE_FORMERR, action, reply, reply_len);
        goto out;
    }
    qrr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
    if (ldns_rr_get_class(qrr) != LDNS_RR_CLASS_IN) {
        *action = DNSMSG_FORWARD;
        goto out;
    }
    rv = reply_ours(t, q, qrr, network_ids, n_networks, tcp, rng, action, reply,
                    reply_len);
out:
    ldns_pkt_free(q);
    return rv;
}

int dnsmsg_id_rewrite(const uint8_t *wire, size_t len, uint16_t id,
                      uint16_t *old_id, uint8_t **out, size_t *out_len)
{
    ldns_pkt *p = NULL;
    int rv;

    *out = NULL;
    if (ldns_wire2pkt(&p, wire, len) != LDNS_STATUS_OK) {
        return SWARM_EPROTO;
    }
    if (old_id != NULL) {
        *old_id = ldns_pkt_id(p);
    }
    ldns_pkt_set_id(p, id);
    rv = pkt_to_wire(p, out, out_len);
    ldns_pkt_free(p);
    return rv;
}

static bool question_same(const ldns_pkt *a, const ldns_pkt *b)
{
    const ldns_rr_list *qa = ldns_pkt_question(a), *qb = ldns_pkt_question(b);

    if (ldns_rr_list_rr_count(qa) != 1 || ldns_rr_list_rr_count(qb) != 1) {
        return false;
    }
    const ldns_rr *ra = ldns_rr_list_rr(qa, 0), *rb = ldns_rr_list_rr(qb, 0);
    return ldns_rr_get_type(ra) == ldns_rr_get_type(rb) &&
           ldns_rr_get_class(ra) == ldns_rr_get_class(rb) &&
           ldns_dname_compare(ldns_rr_owner(ra), ldns_rr_owner(rb)) == 0;
}

int dnsmsg_answer_relay(const uint8_t *wire, size_t len, const uint8_t *query,
                        size_t query_len, uint16_t id, uint16_t asker_id,
                        uint8_t **out, size_t *out_len)
{
    ldns_pkt *a = NULL, *q = NULL;
    int rv = SWARM_EPROTO;

    *out = NULL;
    if (ldns_wire2pkt(&a, wire, len) != LDNS_STATUS_OK ||
        ldns_wire2pkt(&q, query, query_len) != LDNS_STATUS_OK) {
        goto out;
    }
    if (!ldns_pkt_qr(a) || ldns_pkt_id(a) != id || !question_same(a, q)) {
        goto out;
    }
    ldns_pkt_set_id(a, asker_id);
    rv = pkt_to_wire(a, out, out_len);
out:
    ldns_pkt_free(a);
    ldns_pkt_free(q);
    return rv;
}

int dnsmsg_reply_rcode(const uint8_t *query, size_t len, uint8_t rcode,
                       uint8_t **out, size_t *out_len)
{
    enum dnsmsg_action action;
    ldns_pkt *q = NULL;
    int rv;

    *out = NULL;
    if (ldns_wire2pkt(&q, query, len) != LDNS_STATUS_OK) {
        return SWARM_EPROTO;
    }
    rv = reply_error(q, rcode, &action, out, out_len);
    ldns_pkt_free(q);
    return rv;
}
