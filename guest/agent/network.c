/*
 * The guest's side of a container network: create's optional `network`
 * object (docs/agent-protocol.md) names each interface by the MAC the VMM
 * gave its virtio-net device, and says what it must look like (the name,
 * MTU, addresses and routes of the veth it replaces, docs/network.md). The
 * agent applies it over plain rtnetlink before the container starts: the
 * agent links yajl only, and the few requests below are all it needs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "agent.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/mac.h"

/* ---- decoding ---- */

static yajl_val obj_key(yajl_val obj, const char *key)
{
	const char *path[] = {key, NULL};
	return yajl_tree_get(obj, path, yajl_t_any);
}

/* "10.88.0.5/16", "fd00::5/64"; want_prefix false: a bare address. */
static int parse_ip(const char *text, bool want_prefix, struct agent_net_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (!text)
		return -EINVAL;
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
	if ((slash != NULL) != want_prefix || hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, out->bytes) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, host, out->bytes) == 1)
		out->family = AF_INET6;
	else
		return -EINVAL;
	unsigned max = out->family == AF_INET ? 32 : 128;
	out->prefixlen = max;
	if (!want_prefix)
		return 0;
	const char *p = slash + 1;
	size_t plen = strlen(p);
	if (plen == 0 || plen > 3 || strspn(p, "0123456789") != plen || (plen > 1 && p[0] == '0'))
		return -EINVAL;
	unsigned v = 0;
	for (size_t i = 0; i < plen; i++)
		v = v * 10 + (unsigned)(p[i] - '0');
	if (v > max)
		return -EINVAL;
	out->prefixlen = v;
	return 0;
}

static int get_string(yajl_val obj, const char *path, const char *key, bool required,
		      const char **out, struct perr *err)
{
	yajl_val v = obj_key(obj, key);
	*out = NULL;
	if (!v) {
		if (required)
			return perr_setx(err, -EINVAL, "%s.%s: missing", path, key);
		return 0;
	}
	if (!YAJL_IS_STRING(v))
		return perr_setx(err, -EINVAL, "%s.%s: expected a string", path, key);
	*out = YAJL_GET_STRING(v);
	return 0;
}

static int get_uint(yajl_val obj, const char *path, const char *key, long long min, long long max,
		    bool *present, uint32_t *out, struct perr *err)
{
	yajl_val v = obj_key(obj, key);
	*present = v != NULL;
	if (!v)
		return 0;
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < min || YAJL_GET_INTEGER(v) > max)
		return perr_setx(err, -EINVAL, "%s.%s: expected an integer from %lld to %lld", path,
				 key, min, max);
	*out = (uint32_t)YAJL_GET_INTEGER(v);
	return 0;
}

static int check_ifname(const char *name, const char *path, struct perr *err)
{
	size_t n = strlen(name);
	if (n == 0 || n >= IFNAMSIZ || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strpbrk(name, "/: \t\n%"))
		return perr_setx(err, -EINVAL, "%s: \"%.32s\" is not an interface name", path,
				 name);
	return 0;
}

static int dec_iface(yajl_val v, const char *path, struct agent_net_iface *ifc, struct perr *err)
{
	const char *s;
	bool present;
	if (!YAJL_IS_OBJECT(v))
		return perr_setx(err, -EINVAL, "%s: expected an object", path);
	if (get_string(v, path, "mac", true, &s, err) < 0)
		return -EINVAL;
	if (mac_parse(s, ifc->mac) < 0)
		return perr_setx(err, -EINVAL,
				 "%s.mac: \"%.32s\" is not a MAC address (xx:xx:xx:xx:xx:xx)", path,
				 s);
	if (get_string(v, path, "name", false, &s, err) < 0)
		return -EINVAL;
	if (s) {
		char p[64];
		snprintf(p, sizeof(p), "%s.name", path);
		if (check_ifname(s, p, err) < 0)
			return -EINVAL;
		snprintf(ifc->name, sizeof(ifc->name), "%s", s);
	}
	if (get_uint(v, path, "mtu", 68, 65535, &present, &ifc->mtu, err) < 0)
		return -EINVAL;
	yajl_val addrs = obj_key(v, "addresses");
	if (!addrs)
		return 0;
	if (!YAJL_IS_ARRAY(addrs))
		return perr_setx(err, -EINVAL, "%s.addresses: expected an array", path);
	if (addrs->u.array.len > AGENT_NET_MAX_ADDRS)
		return perr_setx(err, -E2BIG, "%s.addresses: more than %d", path,
				 AGENT_NET_MAX_ADDRS);
	for (size_t i = 0; i < addrs->u.array.len; i++) {
		yajl_val a = addrs->u.array.values[i];
		if (!YAJL_IS_STRING(a))
			return perr_setx(err, -EINVAL, "%s.addresses[%zu]: expected a string", path,
					 i);
		if (parse_ip(YAJL_GET_STRING(a), true, &ifc->addrs[i]) < 0)
			return perr_setx(err, -EINVAL,
					 "%s.addresses[%zu]: \"%.64s\" is not an address with its "
					 "prefix length (10.88.0.5/16, fd00::5/64)",
					 path, i, YAJL_GET_STRING(a));
		ifc->naddrs++;
	}
	return 0;
}

static int dec_route(yajl_val v, const char *path, const struct agent_network *net,
		     struct agent_net_route *rt, struct perr *err)
{
	const char *s;
	if (!YAJL_IS_OBJECT(v))
		return perr_setx(err, -EINVAL, "%s: expected an object", path);
	if (get_string(v, path, "destination", true, &s, err) < 0)
		return -EINVAL;
	if (parse_ip(s, true, &rt->dst) < 0)
		return perr_setx(err, -EINVAL,
				 "%s.destination: \"%.64s\" is not a prefix (0.0.0.0/0, ::/0, "
				 "10.1.0.0/16)",
				 path, s);
	if (get_string(v, path, "gateway", false, &s, err) < 0)
		return -EINVAL;
	if (s) {
		if (parse_ip(s, false, &rt->gateway) < 0)
			return perr_setx(err, -EINVAL, "%s.gateway: \"%.64s\" is not an address",
					 path, s);
		if (rt->gateway.family != rt->dst.family)
			return perr_setx(err, -EINVAL,
					 "%s.gateway: %s is not of the destination's family", path,
					 s);
		rt->has_gateway = true;
	}
	rt->iface = 0; /* the first interface unless named */
	if (get_string(v, path, "interface", false, &s, err) < 0)
		return -EINVAL;
	if (s) {
		rt->iface = -1;
		for (size_t i = 0; i < net->nifaces; i++)
			if (strcmp(net->ifaces[i].name, s) == 0)
				rt->iface = (int)i;
		if (rt->iface < 0)
			return perr_setx(err, -EINVAL,
					 "%s.interface: \"%.32s\" is not one of network.interfaces",
					 path, s);
	}
	return get_uint(v, path, "metric", 0, UINT32_MAX, &rt->has_metric, &rt->metric, err);
}

static int dec_network(yajl_val v, struct agent_network *net, struct perr *err)
{
	if (!YAJL_IS_OBJECT(v))
		return perr_setx(err, -EINVAL, "network: expected an object");
	yajl_val ifaces = obj_key(v, "interfaces");
	if (!ifaces || !YAJL_IS_ARRAY(ifaces))
		return perr_setx(err, -EINVAL, "network.interfaces: expected an array");
	if (ifaces->u.array.len > AGENT_NET_MAX_IFACES)
		return perr_setx(err, -E2BIG, "network.interfaces: more than %d",
				 AGENT_NET_MAX_IFACES);
	for (size_t i = 0; i < ifaces->u.array.len; i++) {
		char path[48];
		snprintf(path, sizeof(path), "network.interfaces[%zu]", i);
		struct agent_net_iface *ifc = &net->ifaces[i];
		if (dec_iface(ifaces->u.array.values[i], path, ifc, err) < 0)
			return -EINVAL;
		for (size_t j = 0; j < i; j++) {
			if (memcmp(net->ifaces[j].mac, ifc->mac, sizeof(ifc->mac)) == 0)
				return perr_setx(err, -EINVAL,
						 "%s.mac: the same as network.interfaces[%zu]'s",
						 path, j);
			if (ifc->name[0] && strcmp(net->ifaces[j].name, ifc->name) == 0)
				return perr_setx(err, -EINVAL,
						 "%s.name: the same as network.interfaces[%zu]'s",
						 path, j);
		}
		net->nifaces++;
	}
	yajl_val routes = obj_key(v, "routes");
	if (!routes)
		return 0;
	if (!YAJL_IS_ARRAY(routes))
		return perr_setx(err, -EINVAL, "network.routes: expected an array");
	if (routes->u.array.len > AGENT_NET_MAX_ROUTES)
		return perr_setx(err, -E2BIG, "network.routes: more than %d", AGENT_NET_MAX_ROUTES);
	if (routes->u.array.len && !net->nifaces)
		return perr_setx(err, -EINVAL, "network.routes: no interface to route through");
	for (size_t i = 0; i < routes->u.array.len; i++) {
		char path[48];
		snprintf(path, sizeof(path), "network.routes[%zu]", i);
		if (dec_route(routes->u.array.values[i], path, net, &net->routes[i], err) < 0)
			return -EINVAL;
		net->nroutes++;
	}
	return 0;
}

int network_decode(const void *payload, size_t len, struct agent_network *net, struct perr *err)
{
	memset(net, 0, sizeof(*net));
	/* agent_msg_decode has accepted this payload: it is bounded, valid JSON. */
	char *text = strndup(payload, len);
	if (!text)
		return perr_setx(err, -ENOMEM, "network: out of memory");
	char why[128] = "";
	yajl_val root = yajl_tree_parse(text, why, sizeof(why));
	free(text);
	if (!root)
		return perr_setx(err, -EINVAL, "network: invalid JSON");
	int r = 0;
	yajl_val v = obj_key(root, "network");
	if (v && !YAJL_IS_NULL(v)) {
		net->present = true;
		r = dec_network(v, net, err);
	}
	yajl_tree_free(root);
	if (r < 0)
		memset(net, 0, sizeof(*net));
	return r;
}

/* ---- rtnetlink ---- */

struct nlreq {
	struct nlmsghdr hdr;
	union {
		struct ifinfomsg ifi;
		struct ifaddrmsg ifa;
		struct rtmsg rtm;
	} u;
	char attrs[256];
};

static void nlreq_init(struct nlreq *rq, uint16_t type, uint16_t flags, size_t body)
{
	memset(rq, 0, sizeof(*rq));
	rq->hdr.nlmsg_type = type;
	rq->hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	rq->hdr.nlmsg_len = NLMSG_LENGTH(body);
}

static void nlreq_put(struct nlreq *rq, uint16_t type, const void *data, size_t len)
{
	size_t off = NLMSG_ALIGN(rq->hdr.nlmsg_len);
	/* Every request here is far below the buffer: a few small attributes. */
	if (off + RTA_SPACE(len) > sizeof(*rq))
		return;
	struct rtattr *rta = (struct rtattr *)((char *)rq + off);
	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	rq->hdr.nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
}

/* Sends one request and returns the kernel's answer: 0 or -errno. */
static int nl_talk(int fd, struct nlreq *rq, uint32_t seq)
{
	rq->hdr.nlmsg_seq = seq;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	if (sendto(fd, rq, rq->hdr.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		char buf[4096] __attribute__((aligned(NLMSG_ALIGNTO)));
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR)
				continue;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			return e->error;
		}
	}
}

struct nl {
	int fd;
	uint32_t seq;
};

static int link_change(struct nl *nl, int ifindex, unsigned flags, unsigned change,
		       const char *newname, uint32_t mtu)
{
	struct nlreq rq;
	nlreq_init(&rq, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
	rq.u.ifi.ifi_family = AF_UNSPEC;
	rq.u.ifi.ifi_index = ifindex;
	rq.u.ifi.ifi_flags = flags;
	rq.u.ifi.ifi_change = change;
	if (newname)
		nlreq_put(&rq, IFLA_IFNAME, newname, strlen(newname) + 1);
	if (mtu)
		nlreq_put(&rq, IFLA_MTU, &mtu, sizeof(mtu));
	return nl_talk(nl->fd, &rq, ++nl->seq);
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static int addr_add(struct nl *nl, int ifindex, const struct agent_net_addr *a)
{
	struct nlreq rq;
	/* REPLACE: a second create in the same VM finds the address there. */
	nlreq_init(&rq, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof(struct ifaddrmsg));
	rq.u.ifa.ifa_family = (uint8_t)a->family;
	rq.u.ifa.ifa_prefixlen = (uint8_t)a->prefixlen;
	rq.u.ifa.ifa_index = (uint32_t)ifindex;
	nlreq_put(&rq, IFA_LOCAL, a->bytes, addr_len(a->family));
	nlreq_put(&rq, IFA_ADDRESS, a->bytes, addr_len(a->family));
	if (a->family == AF_INET && a->prefixlen < 31) {
		uint32_t ip, mask = a->prefixlen ? htonl(~0u << (32 - a->prefixlen)) : 0;
		memcpy(&ip, a->bytes, 4);
		uint32_t brd = ip | ~mask;
		nlreq_put(&rq, IFA_BROADCAST, &brd, sizeof(brd));
	}
	if (a->family == AF_INET6) {
		/* The veth did duplicate address detection in its namespace already;
		 * a tentative address would fail the container's first connections. */
		uint32_t flags = IFA_F_NODAD;
		rq.u.ifa.ifa_flags = IFA_F_NODAD;
		nlreq_put(&rq, IFA_FLAGS, &flags, sizeof(flags));
	}
	return nl_talk(nl->fd, &rq, ++nl->seq);
}

static int route_add(struct nl *nl, int ifindex, const struct agent_net_route *r)
{
	struct nlreq rq;
	nlreq_init(&rq, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct rtmsg));
	rq.u.rtm.rtm_family = (uint8_t)r->dst.family;
	rq.u.rtm.rtm_dst_len = (uint8_t)r->dst.prefixlen;
	rq.u.rtm.rtm_table = RT_TABLE_MAIN;
	rq.u.rtm.rtm_protocol = RTPROT_BOOT;
	rq.u.rtm.rtm_scope = r->has_gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rq.u.rtm.rtm_type = RTN_UNICAST;
	if (r->dst.prefixlen)
		nlreq_put(&rq, RTA_DST, r->dst.bytes, addr_len(r->dst.family));
	if (r->has_gateway)
		nlreq_put(&rq, RTA_GATEWAY, r->gateway.bytes, addr_len(r->gateway.family));
	uint32_t oif = (uint32_t)ifindex;
	nlreq_put(&rq, RTA_OIF, &oif, sizeof(oif));
	if (r->has_metric)
		nlreq_put(&rq, RTA_PRIORITY, &r->metric, sizeof(r->metric));
	return nl_talk(nl->fd, &rq, ++nl->seq);
}

static void format_mac(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

/* The interface whose MAC is mac: its index and name, or -ENODEV with the
 * list of what the VM has in `seen`. */
static int find_by_mac(const uint8_t mac[6], int *ifindex, char name[IFNAMSIZ], char *seen,
		       size_t seen_len)
{
	seen[0] = '\0';
	autoclose int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct if_nameindex *all = if_nameindex();
	if (!all)
		return -errno;
	int r = -ENODEV;
	for (struct if_nameindex *i = all; i->if_index; i++) {
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->if_name);
		if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0 || ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
			continue;
		char text[18];
		format_mac((const uint8_t *)ifr.ifr_hwaddr.sa_data, text);
		size_t used = strlen(seen);
		snprintf(seen + used, seen_len - used, "%s%s %s", used ? ", " : "", i->if_name,
			 text);
		if (r == -ENODEV && memcmp(ifr.ifr_hwaddr.sa_data, mac, 6) == 0) {
			*ifindex = (int)i->if_index;
			snprintf(name, IFNAMSIZ, "%s", i->if_name);
			r = 0;
		}
	}
	if_freenameindex(all);
	return r;
}

static int configure_iface(struct nl *nl, const struct agent_net_iface *ifc, const char *path,
			   int *ifindex_out, struct perr *err)
{
	char cur[IFNAMSIZ], seen[256], mac[18];
	int ifindex = 0;
	format_mac(ifc->mac, mac);
	int r = find_by_mac(ifc->mac, &ifindex, cur, seen, sizeof(seen));
	if (r == -ENODEV)
		return perr_setx(err, -ENODEV, "%s.mac: no interface has MAC %s (the VM has: %s)",
				 path, mac, seen[0] ? seen : "no Ethernet interface");
	if (r < 0)
		return perr_set(err, r, "%s.mac: list interfaces", path);
	*ifindex_out = ifindex;
	if (ifc->name[0] && strcmp(cur, ifc->name) != 0) {
		/* The kernel renames only a link that is down. */
		r = link_change(nl, ifindex, 0, IFF_UP, NULL, 0);
		if (r == 0)
			r = link_change(nl, ifindex, 0, 0, ifc->name, 0);
		if (r < 0)
			return perr_set(err, r, "%s.name: rename %s to %s", path, cur, ifc->name);
		snprintf(cur, sizeof(cur), "%s", ifc->name);
	}
	if (ifc->mtu && (r = link_change(nl, ifindex, 0, 0, NULL, ifc->mtu)) < 0)
		return perr_set(err, r, "%s.mtu: set %s's MTU to %u", path, cur, ifc->mtu);
	if ((r = link_change(nl, ifindex, IFF_UP, IFF_UP, NULL, 0)) < 0)
		return perr_set(err, r, "%s: bring %s up", path, cur);
	for (size_t i = 0; i < ifc->naddrs; i++) {
		char text[INET6_ADDRSTRLEN];
		inet_ntop(ifc->addrs[i].family, ifc->addrs[i].bytes, text, sizeof(text));
		if ((r = addr_add(nl, ifindex, &ifc->addrs[i])) < 0)
			return perr_set(err, r, "%s.addresses[%zu]: add %s/%u to %s", path, i, text,
					ifc->addrs[i].prefixlen, cur);
	}
	log_info("network: %s (%s) up, mtu %u, %zu address(es)", cur, mac, ifc->mtu, ifc->naddrs);
	return 0;
}

int network_configure(const struct agent_network *net, struct perr *err)
{
	if (!net->present)
		return 0;
	autoclose int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return perr_set(err, -errno, "network: netlink socket");
	struct nl nl = {.fd = fd};
	int ifindex[AGENT_NET_MAX_IFACES] = {0};
	for (size_t i = 0; i < net->nifaces; i++) {
		char path[48];
		snprintf(path, sizeof(path), "network.interfaces[%zu]", i);
		int r = configure_iface(&nl, &net->ifaces[i], path, &ifindex[i], err);
		if (r < 0)
			return r;
	}
	/* In the given order: a gateway must be reachable by an earlier route
	 * (netsetup lists the routes without a gateway first). */
	for (size_t i = 0; i < net->nroutes; i++) {
		const struct agent_net_route *rt = &net->routes[i];
		int r = route_add(&nl, ifindex[rt->iface], rt);
		if (r == -EEXIST)
			continue; /* a second create in the same VM */
		if (r < 0) {
			char dst[INET6_ADDRSTRLEN], gw[INET6_ADDRSTRLEN] = "";
			inet_ntop(rt->dst.family, rt->dst.bytes, dst, sizeof(dst));
			if (rt->has_gateway)
				inet_ntop(rt->gateway.family, rt->gateway.bytes, gw, sizeof(gw));
			return perr_set(err, r, "network.routes[%zu]: add %s/%u%s%s", i, dst,
					rt->dst.prefixlen, gw[0] ? " via " : "", gw);
		}
	}
	return 0;
}
