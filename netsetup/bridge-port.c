/*
 * Bridge mode for a container without a network namespace: a tap per VM as
 * a port of a shared bridge, and the guest's IPv4 address. The allocation
 * table is the bridge itself: each port petrel made carries the alias
 * "petrel ADDR/PREFIX OWNER", so an address is taken exactly as long as its
 * tap exists and nothing is left to release after kill -9 of the VMM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "netsetup/netsetup.h"
#include "netsetup/nl.h"

#define ALIAS_PREFIX	"petrel "
#define LOCK_TIMEOUT_MS 10000

void netsetup_bridge_tap_name(const char *root, const char *id, char out[IFNAMSIZ])
{
	/* FNV-1a, 64 bits, over "root\0id": 48 of them name the tap. */
	uint64_t h = 0xcbf29ce484222325ull;
	const char *parts[] = {root ? root : "", id ? id : ""};
	for (size_t p = 0; p < 2; p++) {
		for (const char *s = parts[p]; *s; s++)
			h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
		h = (h ^ 0) * 0x100000001b3ull;
	}
	snprintf(out, IFNAMSIZ, "pt%012llx", (unsigned long long)(h & 0xffffffffffffull));
}

/* An abstract unix socket is a lock that the kernel drops with its holder,
 * however it dies, and leaves no file behind. */
static int bridge_lock(const char *bridge, int *fd_out, struct perr *err)
{
	*fd_out = -1;
	autoclose int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return perr_set(err, -errno, "bridge %s: lock socket", bridge);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n =
	    snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "petrel-netsetup-bridge-%s", bridge);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	for (int waited = 0;; waited += 10) {
		if (bind(fd, (struct sockaddr *)&sa, len) == 0)
			break;
		if (errno != EADDRINUSE)
			return perr_set(err, -errno, "bridge %s: lock", bridge);
		if (waited >= LOCK_TIMEOUT_MS)
			return perr_setx(err, -ETIMEDOUT,
					 "bridge %s: another petrel held its address lock for "
					 "%d s",
					 bridge, LOCK_TIMEOUT_MS / 1000);
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	*fd_out = steal_fd(&fd);
	return 0;
}

static uint32_t v4(const struct netsetup_addr *a)
{
	uint32_t x;
	memcpy(&x, a->bytes, 4);
	return ntohl(x);
}

static uint32_t v4_mask(unsigned prefixlen)
{
	return prefixlen == 0 ? 0 : 0xffffffffu << (32 - prefixlen);
}

static void v4_set(struct netsetup_addr *a, uint32_t host, unsigned prefixlen)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	uint32_t be = htonl(host);
	memcpy(a->bytes, &be, 4);
	a->prefixlen = prefixlen;
}

struct port_use {
	uint32_t addr;
	char owner[80];
	char tap[IFNAMSIZ];
};

#define MAX_PORTS 1024

/* The addresses the bridge's petrel ports hold, from their aliases. */
static int ports_in_use(struct nsl *c, int bridge_ifindex, struct port_use *used, size_t *n,
			struct perr *err)
{
	*n = 0;
	struct nl_cache *links = NULL;
	nsl_begin(c);
	int rc = rtnl_link_alloc_cache(c->sk, AF_UNSPEC, &links);
	if (rc < 0)
		return nsl_fail(c, rc, err, "list links");
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *alias = rtnl_link_get_ifalias(l);
		if (rtnl_link_get_master(l) != bridge_ifindex || !alias ||
		    strncmp(alias, ALIAS_PREFIX, strlen(ALIAS_PREFIX)) != 0 || *n == MAX_PORTS)
			continue;
		char cidr[64] = "", owner[80] = "";
		if (sscanf(alias + strlen(ALIAS_PREFIX), "%63s %79s", cidr, owner) < 1)
			continue;
		struct netsetup_addr a;
		struct perr ignored;
		if (netsetup_cidr_parse(cidr, &a, &ignored) < 0 || a.family != AF_INET)
			continue;
		struct port_use *u = &used[(*n)++];
		u->addr = v4(&a);
		snprintf(u->owner, sizeof(u->owner), "%s", owner);
		snprintf(u->tap, sizeof(u->tap), "%s", rtnl_link_get_name(l));
	}
	nl_cache_free(links);
	return 0;
}

static const struct port_use *find_use(const struct port_use *used, size_t n, uint32_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (used[i].addr == addr)
			return &used[i];
	return NULL;
}

/* Checks the requested address, or picks the lowest free one, into *out. */
static int choose_addr(const struct netsetup_bridge_port_req *req, const struct port_use *used,
		       size_t n, struct netsetup_addr *out, struct perr *err)
{
	const struct netsetup_addr *br = req->bridge_addr;
	unsigned plen = br->prefixlen;
	uint32_t mask = v4_mask(plen), net = v4(br) & mask, bcast = net | ~mask;
	char brtext[64], text[64];
	struct netsetup_addr netaddr;
	v4_set(&netaddr, net, plen);
	netsetup_addr_format(&netaddr, true, brtext, sizeof(brtext));
	if (plen > 30)
		return perr_setx(err, -EINVAL, "bridge subnet %s has no room for a guest", brtext);
	if (!req->addr) {
		for (uint32_t h = net + 1; h < bcast; h++) {
			if (h == v4(br) || find_use(used, n, h))
				continue;
			v4_set(out, h, plen);
			return 0;
		}
		return perr_setx(err, -ENOSPC, "no free address in %s (%zu in use)", brtext, n);
	}
	const struct netsetup_addr *a = req->addr;
	netsetup_addr_format(a, true, text, sizeof(text));
	if (a->family != AF_INET)
		return perr_setx(err, -EINVAL, "address %s: bridge mode gives IPv4 addresses only",
				 text);
	uint32_t h = v4(a);
	if (a->prefixlen != plen || (h & mask) != net)
		return perr_setx(err, -EINVAL, "address %s: not in the bridge's subnet %s", text,
				 brtext);
	if (h == net || h == bcast)
		return perr_setx(err, -EINVAL, "address %s: the %s address of %s", text,
				 h == net ? "network" : "broadcast", brtext);
	if (h == v4(br))
		return perr_setx(err, -EADDRINUSE, "address %s: the bridge's own address", text);
	const struct port_use *u = find_use(used, n, h);
	if (u)
		return perr_setx(err, -EADDRINUSE, "address %s: in use by container %s (tap %s)",
				 text, u->owner[0] ? u->owner : "?", u->tap);
	*out = *a;
	return 0;
}

static int tap_set_alias(struct nsl *c, const char *tap, const char *alias, struct perr *err)
{
	struct rtnl_link *link = NULL, *change = NULL;
	int rc = nsl_link_require(c, tap, &link, err);
	if (rc < 0)
		return rc;
	change = rtnl_link_alloc();
	if (!change) {
		rc = perr_set(err, -ENOMEM, "tap %s: alias", tap);
		goto out;
	}
	rtnl_link_set_ifalias(change, alias);
	nsl_begin(c);
	rc = rtnl_link_change(c->sk, link, change, 0);
	if (rc < 0)
		rc = nsl_fail(c, rc, err, "tap %s: set alias", tap);
out:
	if (change)
		rtnl_link_put(change);
	rtnl_link_put(link);
	return rc;
}

/* With the lock held and the bridge there: everything but the bridge. */
static int port_attach(struct nsl *c, const struct netsetup_bridge_port_req *req,
		       const char *bridge, struct netsetup_container_net *out, struct perr *err)
{
	struct rtnl_link *br = NULL;
	int rc = nsl_link_require(c, bridge, &br, err);
	if (rc < 0)
		return rc;
	int br_ifindex = rtnl_link_get_ifindex(br);
	unsigned br_mtu = rtnl_link_get_mtu(br);
	rtnl_link_put(br);

	/* Freed by hand, not autofree: only needed to choose the address. */
	struct port_use *used = calloc(MAX_PORTS, sizeof(*used));
	size_t n = 0;
	if (!used)
		return perr_set(err, -ENOMEM, "ports");
	struct netsetup_addr addr;
	rc = ports_in_use(c, br_ifindex, used, &n, err);
	if (rc >= 0)
		rc = choose_addr(req, used, n, &addr, err);
	free(used);
	if (rc < 0)
		return rc;

	char cidr[64], alias[160];
	netsetup_addr_format(&addr, true, cidr, sizeof(cidr));
	snprintf(alias, sizeof(alias), ALIAS_PREFIX "%s %s", cidr, req->owner ? req->owner : "-");
	autoclose int fd = -1;
	rc = netsetup_tap_create(req->tap_name, NETSETUP_TAP_VNET_HDR, &fd, out->tap_name, err);
	if (rc < 0)
		return rc;
	/* The alias first: once the tap is a port, its address is taken. */
	if ((rc = tap_set_alias(c, out->tap_name, alias, err)) < 0 ||
	    (rc = netsetup_link_set_mtu(out->tap_name, br_mtu ? br_mtu : 1500, err)) < 0 ||
	    (rc = netsetup_link_set_master(out->tap_name, bridge, err)) < 0 ||
	    (rc = netsetup_link_up(out->tap_name, err)) < 0)
		return rc; /* closing fd removes the tap, and the port with it */

	struct netsetup_netns_info *v = &out->veth;
	snprintf(v->ifname, sizeof(v->ifname), "eth0");
	/* Locally administered, unique on the bridge as the address is. */
	v->mac[0] = 0x02;
	v->mac[1] = 0x50;
	memcpy(v->mac + 2, addr.bytes, 4);
	v->mtu = br_mtu ? br_mtu : 1500;
	v->naddrs = 1;
	v->addrs[0] = addr;
	v->nroutes = 1;
	struct netsetup_route *r = &v->routes[0];
	r->family = AF_INET;
	r->dst.family = AF_INET; /* prefixlen 0: the default route */
	r->has_gateway = true;
	r->gateway = *req->bridge_addr;
	r->gateway.prefixlen = 32;
	out->tap_fd = steal_fd(&fd);
	return 0;
}

int netsetup_bridge_port_attach(const struct netsetup_bridge_port_req *req,
				struct netsetup_container_net *out, struct perr *err)
{
	memset(out, 0, sizeof(*out));
	out->tap_fd = -1;
	const char *bridge = req->bridge ? req->bridge : NETSETUP_DEFAULT_BRIDGE;
	if (!req->bridge_addr || req->bridge_addr->family != AF_INET)
		return perr_setx(err, -EINVAL, "bridge %s: an IPv4 address/prefix is needed",
				 bridge);
	if (!req->tap_name)
		return perr_setx(err, -EINVAL, "bridge %s: no tap name", bridge);
	autoclose int lock = -1;
	int rc = bridge_lock(bridge, &lock, err);
	if (rc < 0)
		return rc;
	rc = netsetup_bridge_ensure(bridge, req->bridge_addr, err);
	if (rc < 0)
		return rc;
	struct nsl c;
	rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	rc = port_attach(&c, req, bridge, out, err);
	nsl_close(&c);
	if (rc < 0) {
		perr_wrap(err, "bridge %s", bridge);
		memset(out, 0, sizeof(*out));
		out->tap_fd = -1;
	}
	return rc;
}

int netsetup_bridge_port_detach(const char *tap_name, const char *owner, struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	struct rtnl_link *link = NULL;
	rc = nsl_link_get(&c, tap_name, &link, err);
	if (rc == 0 && link) {
		const char *alias = rtnl_link_get_ifalias(link);
		char want[128] = "";
		const char *tail = NULL;
		if (alias && strncmp(alias, ALIAS_PREFIX, strlen(ALIAS_PREFIX)) == 0)
			tail = strchr(alias + strlen(ALIAS_PREFIX), ' ');
		snprintf(want, sizeof(want), " %s", owner ? owner : "-");
		if (strcmp(nsl_link_kind(link), "tun") != 0 || !tail || strcmp(tail, want) != 0)
			rc = perr_setx(err, -EPERM,
				       "tap %s: not petrel's tap of %s (alias \"%s\"); "
				       "leaving it",
				       tap_name, owner ? owner : "-", alias ? alias : "");
		else
			rc = nsl_link_delete(&c, link, err);
		rtnl_link_put(link);
	}
	nsl_close(&c);
	return rc;
}
