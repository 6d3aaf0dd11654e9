/* rtnetlink requests through libmnl (nlink.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nlink.h"

#define NLINK_BUF 32768

struct mnl_socket *nlink_open(void)
{
    struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (nl == NULL) {
        return NULL;
    }
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno;
        mnl_socket_close(nl);
        errno = e;
        return NULL;
    }
    return nl;
}

void nlink_close(struct mnl_socket *nl)
{
    if (nl != NULL) {
        mnl_socket_close(nl);
    }
}

/* Send one request and read until its ack (or, with cb, the dump's end). */
static int nlink_talk(struct mnl_socket *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg)
{
    static unsigned seq;
    char buf[NLINK_BUF];
    nlh->nlmsg_seq = ++seq + (unsigned)time(NULL);
    unsigned portid = mnl_socket_get_portid(nl);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
        return -errno;
    }
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
        if (n < 0) {
            return -errno;
        }
        int rv = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, cb, arg);
        if (rv < 0) {
            return -errno;
        }
        if (rv == MNL_CB_STOP) {
            return 0;
        }
    }
}

static struct nlmsghdr *nlink_msg(char *buf, uint16_t type, uint16_t flags)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    return nlh;
}

static struct ifinfomsg *nlink_ifi(struct nlmsghdr *nlh, int ifindex)
{
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = ifindex;
    return ifi;
}

static int nlink_index_cb(const struct nlmsghdr *nlh, void *arg)
{
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    *(int *)arg = ifi->ifi_index;
    return MNL_CB_OK;
}

int nlink_link_index(struct mnl_socket *nl, const char *name)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK; /* the link, then the ack */
    nlink_ifi(nlh, 0);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    int idx = -ENODEV;
    int rv = nlink_talk(nl, nlh, nlink_index_cb, &idx);
    if (rv != 0) {
        return rv;
    }
    return idx;
}

int nlink_link_del(struct mnl_socket *nl, int ifindex)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, RTM_DELLINK, 0);
    nlink_ifi(nlh, ifindex);
    return nlink_talk(nl, nlh, NULL, NULL);
}

int nlink_link_set(struct mnl_socket *nl, int ifindex, int mtu, int master, bool up)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, RTM_NEWLINK, 0);
    struct ifinfomsg *ifi = nlink_ifi(nlh, ifindex);
    if (up) {
        ifi->ifi_flags = IFF_UP;
        ifi->ifi_change = IFF_UP;
    }
    if (mtu > 0) {
        mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)mtu);
    }
    if (master > 0) {
        mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
    }
    return nlink_talk(nl, nlh, NULL, NULL);
}

int nlink_link_set_ns(struct mnl_socket *nl, int ifindex, int nsfd)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, RTM_NEWLINK, 0);
    nlink_ifi(nlh, ifindex);
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)nsfd);
    return nlink_talk(nl, nlh, NULL, NULL);
}

int nlink_bridge_add(struct mnl_socket *nl, const char *name, int mtu)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    nlink_ifi(nlh, 0);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    if (mtu > 0) {
        mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)mtu);
    }
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
    mnl_attr_nest_end(nlh, info);
    return nlink_talk(nl, nlh, NULL, NULL);
}

int nlink_vxlan_add(struct mnl_socket *nl, const char *name, uint32_t vni, uint32_t local,
                    uint16_t port)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    nlink_ifi(nlh, 0);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "vxlan");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    mnl_attr_put_u32(nlh, IFLA_VXLAN_ID, vni);
    mnl_attr_put_u32(nlh, IFLA_VXLAN_LOCAL, htonl(local));
    mnl_attr_put_u16(nlh, IFLA_VXLAN_PORT, htons(port));
    mnl_attr_put_u8(nlh, IFLA_VXLAN_LEARNING, 0);
    mnl_attr_put_u8(nlh, IFLA_VXLAN_PROXY, 1);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, info);
    return nlink_talk(nl, nlh, NULL, NULL);
}

int nlink_veth_add(struct mnl_socket *nl, const char *name, const char *peer, int peer_nsfd,
                   const uint8_t *peer_mac, int mtu)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    nlink_ifi(nlh, 0);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    if (mtu > 0) {
        mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)mtu);
    }
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    struct nlattr *pinfo = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    struct ifinfomsg *pifi = mnl_nlmsg_put_extra_header(nlh, sizeof *pifi);
    memset(pifi, 0, sizeof *pifi);
    pifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
    if (peer_nsfd >= 0) {
        mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_nsfd);
    }
    if (peer_mac != NULL) {
        mnl_attr_put(nlh, IFLA_ADDRESS, 6, peer_mac);
    }
    if (mtu > 0) {
        mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)mtu);
    }
    mnl_attr_nest_end(nlh, pinfo);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, info);
    return nlink_talk(nl, nlh, NULL, NULL);
}

int nlink_addr_add(struct mnl_socket *nl, int ifindex, uint32_t ip, int prefix)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_index = (unsigned)ifindex;
    uint32_t a = htonl(ip);
    mnl_attr_put_u32(nlh, IFA_LOCAL, a);
    mnl_attr_put_u32(nlh, IFA_ADDRESS, a);
    return nlink_talk(nl, nlh, NULL, NULL);
}

int nlink_route_default(struct mnl_socket *nl, uint32_t gateway)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_STATIC;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    mnl_attr_put_u32(nlh, RTA_GATEWAY, htonl(gateway));
    return nlink_talk(nl, nlh, NULL, NULL);
}

int nlink_neigh(struct mnl_socket *nl, bool add, int ifindex, uint32_t ip, const uint8_t mac[6])
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, add ? RTM_NEWNEIGH : RTM_DELNEIGH,
                                     add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
    struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof *nd);
    nd->ndm_family = AF_INET;
    nd->ndm_ifindex = ifindex;
    nd->ndm_state = NUD_PERMANENT;
    mnl_attr_put_u32(nlh, NDA_DST, htonl(ip));
    mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
    return nlink_talk(nl, nlh, NULL, NULL);
}

int nlink_fdb(struct mnl_socket *nl, bool add, int ifindex, const uint8_t mac[6], uint32_t dst)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, add ? RTM_NEWNEIGH : RTM_DELNEIGH,
                                     add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
    struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof *nd);
    nd->ndm_family = AF_BRIDGE;
    nd->ndm_ifindex = ifindex;
    nd->ndm_state = NUD_PERMANENT | NUD_NOARP;
    nd->ndm_flags = NTF_SELF;
    mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
    mnl_attr_put_u32(nlh, NDA_DST, htonl(dst));
    return nlink_talk(nl, nlh, NULL, NULL);
}

struct nlink_each {
    void (*fn)(int ifindex, const char *name, void *arg);
    void *arg;
};

static int nlink_each_attr_cb(const struct nlattr *attr, void *data)
{
    if (mnl_attr_get_type(attr) == IFLA_IFNAME && mnl_attr_validate(attr, MNL_TYPE_STRING) >= 0) {
        *(const char **)data = mnl_attr_get_str(attr);
    }
    return MNL_CB_OK;
}

static int nlink_each_cb(const struct nlmsghdr *nlh, void *arg)
{
    struct nlink_each *e = arg;
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    const char *name = NULL;
    mnl_attr_parse(nlh, sizeof *ifi, nlink_each_attr_cb, &name);
    if (name != NULL) {
        e->fn(ifi->ifi_index, name, e->arg);
    }
    return MNL_CB_OK;
}

int nlink_link_foreach(struct mnl_socket *nl, void (*fn)(int ifindex, const char *name, void *arg),
                       void *arg)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    struct rtgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof *g);
    g->rtgen_family = AF_UNSPEC;
    struct nlink_each e = {fn, arg};
    return nlink_talk(nl, nlh, nlink_each_cb, &e);
}

struct nlink_neighs {
    void (*fn)(int ifindex, uint32_t ip, const uint8_t mac[6], void *arg);
    void *arg;
};

struct nlink_neigh_attrs {
    uint32_t ip;
    const uint8_t *mac;
};

static int nlink_neigh_attr_cb(const struct nlattr *attr, void *data)
{
    struct nlink_neigh_attrs *a = data;
    if (mnl_attr_get_type(attr) == NDA_DST && mnl_attr_get_payload_len(attr) == 4) {
        a->ip = ntohl(mnl_attr_get_u32(attr));
    } else if (mnl_attr_get_type(attr) == NDA_LLADDR && mnl_attr_get_payload_len(attr) == 6) {
        a->mac = mnl_attr_get_payload(attr);
    }
    return MNL_CB_OK;
}

static int nlink_neigh_cb(const struct nlmsghdr *nlh, void *arg)
{
    struct nlink_neighs *e = arg;
    const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
    struct nlink_neigh_attrs a = {0, NULL};
    mnl_attr_parse(nlh, sizeof *nd, nlink_neigh_attr_cb, &a);
    if (a.mac != NULL) {
        e->fn(nd->ndm_ifindex, a.ip, a.mac, e->arg);
    }
    return MNL_CB_OK;
}

int nlink_neigh_foreach(struct mnl_socket *nl, int family,
                        void (*fn)(int ifindex, uint32_t ip, const uint8_t mac[6], void *arg),
                        void *arg)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETNEIGH;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof *nd);
    nd->ndm_family = (uint8_t)family;
    struct nlink_neighs e = {fn, arg};
    return nlink_talk(nl, nlh, nlink_neigh_cb, &e);
}

struct nlink_prefixes {
    void (*fn)(uint32_t addr, int prefix, void *arg);
    void *arg;
    int type; /* the attribute holding the address */
    uint32_t addr;
    bool have;
};

static int nlink_prefix_attr_cb(const struct nlattr *attr, void *data)
{
    struct nlink_prefixes *e = data;
    if (mnl_attr_get_type(attr) == e->type && mnl_attr_get_payload_len(attr) == 4) {
        e->addr = ntohl(mnl_attr_get_u32(attr));
        e->have = true;
    }
    return MNL_CB_OK;
}

static int nlink_addr_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
    struct nlink_prefixes *e = arg;
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    e->have = false;
    e->type = IFA_LOCAL;
    mnl_attr_parse(nlh, sizeof *ifa, nlink_prefix_attr_cb, e);
    if (ifa->ifa_family == AF_INET && e->have) {
        e->fn(e->addr, ifa->ifa_prefixlen, e->arg);
    }
    return MNL_CB_OK;
}

static int nlink_route_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
    struct nlink_prefixes *e = arg;
    const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    e->have = false;
    e->addr = 0;
    e->type = RTA_DST;
    mnl_attr_parse(nlh, sizeof *rtm, nlink_prefix_attr_cb, e);
    if (rtm->rtm_family == AF_INET && rtm->rtm_table != RT_TABLE_LOCAL &&
        (e->have || rtm->rtm_dst_len == 0)) {
        e->fn(e->addr, rtm->rtm_dst_len, e->arg);
    }
    return MNL_CB_OK;
}

int nlink_prefix_foreach(struct mnl_socket *nl, void (*fn)(uint32_t addr, int prefix, void *arg),
                         void *arg)
{
    char buf[NLINK_BUF];
    struct nlink_prefixes e = {fn, arg, 0, 0, false};
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETADDR;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    int rv = nlink_talk(nl, nlh, nlink_addr_dump_cb, &e);
    if (rv != 0) {
        return rv;
    }
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETROUTE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    return nlink_talk(nl, nlh, nlink_route_dump_cb, &e);
}

int nlink_brport_isolate(struct mnl_socket *nl, int ifindex)
{
    char buf[NLINK_BUF];
    struct nlmsghdr *nlh = nlink_msg(buf, RTM_SETLINK, 0);
    struct ifinfomsg *ifi = nlink_ifi(nlh, ifindex);
    ifi->ifi_family = AF_BRIDGE;
    struct nlattr *pi = mnl_attr_nest_start(nlh, IFLA_PROTINFO);
    pi->nla_type |= NLA_F_NESTED; /* else the bridge reads an old STP state byte */
    mnl_attr_put_u8(nlh, IFLA_BRPORT_ISOLATED, 1);
    mnl_attr_nest_end(nlh, pi);
    return nlink_talk(nl, nlh, NULL, NULL);
}
