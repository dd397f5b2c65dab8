/*
 * What the guest's eth0 must look like to take the veth's place: its MAC
 * (peers keep their ARP/ND entries), MTU, addresses and routes; and that
 * description as JSON for the agent (docs/network.md, "The info object").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "common/mac.h"
#include "netsetup/json.h"
#include "netsetup/netsetup.h"
#include "netsetup/nl.h"

static int addr_from_nl(struct nl_addr *na, struct netsetup_addr *out)
{
	memset(out, 0, sizeof(*out));
	int family = nl_addr_get_family(na);
	unsigned len = nl_addr_get_len(na);
	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	out->family = family;
	if (len > sizeof(out->bytes) || (len != 0 && len != (family == AF_INET ? 4u : 16u)))
		return -EINVAL;
	if (len)
		memcpy(out->bytes, nl_addr_get_binary_addr(na), len);
	out->prefixlen = nl_addr_get_prefixlen(na);
	return 0;
}

static int collect_addrs(struct nsl *c, int ifindex, struct netsetup_netns_info *info,
			 struct perr *err)
{
	struct nl_cache *cache = NULL;
	nsl_begin(c);
	int rc = rtnl_addr_alloc_cache(c->sk, &cache);
	if (rc < 0)
		return nsl_fail(c, rc, err, "list addresses");
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		if (rtnl_addr_get_ifindex(a) != ifindex)
			continue;
		/* Link-local addresses come from the MAC: the guest makes the same. */
		if (rtnl_addr_get_scope(a) >= RT_SCOPE_LINK)
			continue;
		struct nl_addr *local = rtnl_addr_get_local(a);
		struct netsetup_addr na;
		if (!local || addr_from_nl(local, &na) < 0)
			continue;
		na.prefixlen = (unsigned)rtnl_addr_get_prefixlen(a);
		if (info->naddrs == NETSETUP_MAX_ADDRS) {
			rc = perr_setx(err, -E2BIG, "%s has more than %d addresses", info->ifname,
				       NETSETUP_MAX_ADDRS);
			break;
		}
		info->addrs[info->naddrs++] = na;
	}
	nl_cache_free(cache);
	return rc;
}

struct route_walk {
	int ifindex;
	struct nl_addr *gateway; /* of the nexthop through ifindex, or NULL */
	bool found;
};

static void route_nh_match(struct rtnl_nexthop *nh, void *arg)
{
	struct route_walk *w = arg;
	if (w->found || rtnl_route_nh_get_ifindex(nh) != w->ifindex)
		return;
	w->found = true;
	w->gateway = rtnl_route_nh_get_gateway(nh);
}

static int collect_routes(struct nsl *c, int ifindex, struct netsetup_netns_info *info,
			  struct perr *err)
{
	struct nl_cache *cache = NULL;
	nsl_begin(c);
	int rc = rtnl_route_alloc_cache(c->sk, AF_UNSPEC, 0, &cache);
	if (rc < 0)
		return nsl_fail(c, rc, err, "list routes");
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		int family = rtnl_route_get_family(r);
		if ((family != AF_INET && family != AF_INET6) ||
		    rtnl_route_get_table(r) != RT_TABLE_MAIN ||
		    rtnl_route_get_type(r) != RTN_UNICAST ||
		    /* the prefix routes of addresses: the guest kernel adds its own */
		    rtnl_route_get_protocol(r) == RTPROT_KERNEL)
			continue;
		struct route_walk w = {.ifindex = ifindex};
		rtnl_route_foreach_nexthop(r, route_nh_match, &w);
		if (!w.found)
			continue;
		struct netsetup_route rt;
		memset(&rt, 0, sizeof(rt));
		rt.family = family;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		if (!dst || addr_from_nl(dst, &rt.dst) < 0) {
			rt.dst.family = family;
			rt.dst.prefixlen = 0;
		}
		if (w.gateway && addr_from_nl(w.gateway, &rt.gateway) == 0) {
			rt.has_gateway = true;
			rt.gateway.prefixlen = rt.gateway.family == AF_INET ? 32 : 128;
		}
		rt.metric = rtnl_route_get_priority(r);
		if (info->nroutes == NETSETUP_MAX_ROUTES) {
			rc = perr_setx(err, -E2BIG, "%s has more than %d routes", info->ifname,
				       NETSETUP_MAX_ROUTES);
			break;
		}
		info->routes[info->nroutes++] = rt;
	}
	nl_cache_free(cache);
	if (rc < 0)
		return rc;
	/* Routes without a gateway first: a gateway outside every address's
	 * subnet (169.254.1.1 in some CNI plugins) is reachable only after its
	 * link route exists. A stable insertion sort keeps the kernel's order. */
	for (size_t i = 1; i < info->nroutes; i++) {
		struct netsetup_route cur = info->routes[i];
		size_t j = i;
		while (j > 0 && info->routes[j - 1].has_gateway && !cur.has_gateway) {
			info->routes[j] = info->routes[j - 1];
			j--;
		}
		info->routes[j] = cur;
	}
	return 0;
}

int netsetup_netns_info_collect(const char *ifname, struct netsetup_netns_info *info,
				struct perr *err)
{
	memset(info, 0, sizeof(*info));
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	struct rtnl_link *link = NULL;
	rc = nsl_link_require(&c, ifname, &link, err);
	if (rc < 0)
		goto out;
	snprintf(info->ifname, sizeof(info->ifname), "%s", ifname);
	info->mtu = rtnl_link_get_mtu(link);
	struct nl_addr *mac = rtnl_link_get_addr(link);
	if (!mac || nl_addr_get_len(mac) != sizeof(info->mac)) {
		rc = perr_setx(err, -EINVAL, "%s has no Ethernet address", ifname);
		goto out;
	}
	memcpy(info->mac, nl_addr_get_binary_addr(mac), sizeof(info->mac));
	int ifindex = rtnl_link_get_ifindex(link);
	rc = collect_addrs(&c, ifindex, info, err);
	if (rc == 0)
		rc = collect_routes(&c, ifindex, info, err);
out:
	if (link)
		rtnl_link_put(link);
	nsl_close(&c);
	return rc;
}

int netsetup_netns_find_uplink(char name_out[IFNAMSIZ], struct perr *err)
{
	name_out[0] = '\0';
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	struct nl_cache *links = NULL, *routes = NULL;
	nsl_begin(&c);
	rc = rtnl_link_alloc_cache(c.sk, AF_UNSPEC, &links);
	if (rc < 0) {
		rc = nsl_fail(&c, rc, err, "list links");
		goto out;
	}
	nsl_begin(&c);
	rc = rtnl_route_alloc_cache(c.sk, AF_UNSPEC, 0, &routes);
	if (rc < 0) {
		rc = nsl_fail(&c, rc, err, "list routes");
		goto out;
	}
	for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		if (rtnl_route_get_table(r) != RT_TABLE_MAIN ||
		    (dst && nl_addr_get_prefixlen(dst)) || rtnl_route_get_nnexthops(r) < 1)
			continue;
		int ifindex = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0));
		if (rtnl_link_i2name(links, ifindex, name_out, IFNAMSIZ))
			goto out; /* found: rc is 0 */
	}
	int candidates = 0;
	char names[128] = "";
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		if ((rtnl_link_get_flags(l) & IFF_LOOPBACK) || strcmp(nsl_link_kind(l), "tun") == 0)
			continue;
		if (candidates++ == 0)
			snprintf(name_out, IFNAMSIZ, "%s", rtnl_link_get_name(l));
		size_t used = strlen(names);
		snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "",
			 rtnl_link_get_name(l));
	}
	if (candidates != 1) {
		name_out[0] = '\0';
		rc = candidates == 0
			 ? perr_setx(err, -ENODEV,
				     "no uplink: no default route and no "
				     "link besides loopback")
			 : perr_setx(err, -EINVAL,
				     "no default route and %d links (%s): name the veth",
				     candidates, names);
	}
out:
	if (routes)
		nl_cache_free(routes);
	if (links)
		nl_cache_free(links);
	nsl_close(&c);
	return rc;
}

/* ---- JSON ---- */

static const char *family_name(int family)
{
	return family == AF_INET6 ? "inet6" : "inet";
}

static int gen_addr(yajl_gen g, const char *key, const struct netsetup_addr *a, bool prefix)
{
	if (nsj_str(g, key) < 0)
		return -EIO;
	return nsj_addr(g, a, prefix);
}

int netsetup_netns_info_write_json(const struct netsetup_netns_info *info, yajl_gen g)
{
	char mac[18];
	nsj_mac_format(info->mac, mac);
	NSJ(yajl_gen_map_open(g));
	if (nsj_key_str(g, "ifname", info->ifname) < 0 || nsj_key_str(g, "mac", mac) < 0 ||
	    nsj_key_int(g, "mtu", info->mtu) < 0 || nsj_str(g, "addresses") < 0)
		return -EIO;
	NSJ(yajl_gen_array_open(g));
	for (size_t i = 0; i < info->naddrs && i < NETSETUP_MAX_ADDRS; i++) {
		const struct netsetup_addr *a = &info->addrs[i];
		NSJ(yajl_gen_map_open(g));
		if (nsj_key_str(g, "family", family_name(a->family)) < 0 ||
		    gen_addr(g, "address", a, false) < 0 ||
		    nsj_key_int(g, "prefix", a->prefixlen) < 0)
			return -EIO;
		NSJ(yajl_gen_map_close(g));
	}
	NSJ(yajl_gen_array_close(g));
	if (nsj_str(g, "routes") < 0)
		return -EIO;
	NSJ(yajl_gen_array_open(g));
	for (size_t i = 0; i < info->nroutes && i < NETSETUP_MAX_ROUTES; i++) {
		const struct netsetup_route *r = &info->routes[i];
		NSJ(yajl_gen_map_open(g));
		if (nsj_key_str(g, "family", family_name(r->family)) < 0)
			return -EIO;
		if (r->dst.prefixlen == 0) {
			if (nsj_key_str(g, "destination", "default") < 0)
				return -EIO;
		} else if (gen_addr(g, "destination", &r->dst, true) < 0) {
			return -EIO;
		}
		if (r->has_gateway && gen_addr(g, "gateway", &r->gateway, false) < 0)
			return -EIO;
		if (r->metric && nsj_key_int(g, "metric", r->metric) < 0)
			return -EIO;
		NSJ(yajl_gen_map_close(g));
	}
	NSJ(yajl_gen_array_close(g));
	NSJ(yajl_gen_map_close(g));
	return 0;
}

static int info_write(const void *info, yajl_gen g)
{
	return netsetup_netns_info_write_json(info, g);
}

int netsetup_netns_info_to_json(const struct netsetup_netns_info *info, char **out,
				struct perr *err)
{
	return nsj_to_text(info_write, info, "info json", out, err);
}

/* ---- parsing, for the agent's side and for round trips ---- */

static int json_addr(const char *path, const char *text, int family, bool want_prefix,
		     struct netsetup_addr *out, struct perr *err)
{
	struct perr inner;
	if (want_prefix) {
		if (netsetup_cidr_parse(text, out, &inner) < 0)
			return perr_setx(err, -EINVAL, "%s: %s", path, inner.msg);
	} else {
		memset(out, 0, sizeof(*out));
		if (inet_pton(AF_INET, text, out->bytes) == 1)
			out->family = AF_INET;
		else if (inet_pton(AF_INET6, text, out->bytes) == 1)
			out->family = AF_INET6;
		else
			return perr_setx(err, -EINVAL, "%s: '%s' is not an IP address", path, text);
		out->prefixlen = out->family == AF_INET ? 32 : 128;
	}
	if (out->family != family)
		return perr_setx(err, -EINVAL, "%s: '%s' is not an %s address", path, text,
				 family == AF_INET ? "IPv4" : "IPv6");
	return 0;
}

static int json_family(const char *path, yajl_val v, int *family, struct perr *err)
{
	const char *s = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
	if (s && strcmp(s, "inet") == 0)
		*family = AF_INET;
	else if (s && strcmp(s, "inet6") == 0)
		*family = AF_INET6;
	else
		return perr_setx(err, -EINVAL, "%s.family: expected \"inet\" or \"inet6\"", path);
	return 0;
}

static yajl_val json_get(yajl_val obj, const char *key, yajl_type type)
{
	const char *path[] = {key, NULL};
	return yajl_tree_get(obj, path, type);
}

static int json_uint(yajl_val obj, const char *path, const char *key, unsigned long max,
		     bool required, unsigned long *out, struct perr *err)
{
	yajl_val v = json_get(obj, key, yajl_t_any);
	*out = 0;
	if (!v) {
		if (required)
			return perr_setx(err, -EINVAL, "%s.%s: missing", path, key);
		return 0;
	}
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 ||
	    (unsigned long long)YAJL_GET_INTEGER(v) > max)
		return perr_setx(err, -EINVAL, "%s.%s: expected an integer from 0 to %lu", path,
				 key, max);
	*out = (unsigned long)YAJL_GET_INTEGER(v);
	return 0;
}

static int json_str(yajl_val obj, const char *path, const char *key, const char **out,
		    struct perr *err)
{
	yajl_val v = json_get(obj, key, yajl_t_any);
	*out = "";
	if (!v || !YAJL_IS_STRING(v))
		return perr_setx(err, -EINVAL, "%s.%s: expected a string", path, key);
	*out = YAJL_GET_STRING(v);
	return 0;
}

static int info_from_tree(yajl_val root, struct netsetup_netns_info *info, struct perr *err)
{
	const char *s = NULL;
	unsigned long n;
	if (!YAJL_IS_OBJECT(root))
		return perr_setx(err, -EINVAL, "$: expected an object");
	if (json_str(root, "$", "ifname", &s, err) < 0)
		return -EINVAL;
	if (!s[0] || strlen(s) >= IFNAMSIZ)
		return perr_setx(err, -EINVAL, "$.ifname: 1 to %d bytes", IFNAMSIZ - 1);
	snprintf(info->ifname, sizeof(info->ifname), "%s", s);
	if (json_str(root, "$", "mac", &s, err) < 0)
		return -EINVAL;
	if (mac_parse(s, info->mac) < 0)
		return perr_setx(err, -EINVAL, "$.mac: '%s' is not a MAC address", s);
	if (json_uint(root, "$", "mtu", 65535, true, &n, err) < 0)
		return -EINVAL;
	info->mtu = (unsigned)n;

	yajl_val addrs = json_get(root, "addresses", yajl_t_any);
	if (!addrs || !YAJL_IS_ARRAY(addrs))
		return perr_setx(err, -EINVAL, "$.addresses: expected an array");
	if (addrs->u.array.len > NETSETUP_MAX_ADDRS)
		return perr_setx(err, -E2BIG, "$.addresses: more than %d", NETSETUP_MAX_ADDRS);
	for (size_t i = 0; i < addrs->u.array.len; i++) {
		char path[48];
		snprintf(path, sizeof(path), "$.addresses[%zu]", i);
		yajl_val a = addrs->u.array.values[i];
		int family = AF_UNSPEC;
		if (!YAJL_IS_OBJECT(a))
			return perr_setx(err, -EINVAL, "%s: expected an object", path);
		if (json_family(path, json_get(a, "family", yajl_t_any), &family, err) < 0 ||
		    json_str(a, path, "address", &s, err) < 0)
			return -EINVAL;
		char apath[64];
		snprintf(apath, sizeof(apath), "%s.address", path);
		struct netsetup_addr *out = &info->addrs[i];
		if (json_addr(apath, s, family, false, out, err) < 0 ||
		    json_uint(a, path, "prefix", family == AF_INET ? 32 : 128, true, &n, err) < 0)
			return -EINVAL;
		out->prefixlen = (unsigned)n;
		info->naddrs++;
	}

	yajl_val routes = json_get(root, "routes", yajl_t_any);
	if (!routes || !YAJL_IS_ARRAY(routes))
		return perr_setx(err, -EINVAL, "$.routes: expected an array");
	if (routes->u.array.len > NETSETUP_MAX_ROUTES)
		return perr_setx(err, -E2BIG, "$.routes: more than %d", NETSETUP_MAX_ROUTES);
	for (size_t i = 0; i < routes->u.array.len; i++) {
		char path[48], vpath[72];
		snprintf(path, sizeof(path), "$.routes[%zu]", i);
		yajl_val r = routes->u.array.values[i];
		struct netsetup_route *out = &info->routes[i];
		if (!YAJL_IS_OBJECT(r))
			return perr_setx(err, -EINVAL, "%s: expected an object", path);
		if (json_family(path, json_get(r, "family", yajl_t_any), &out->family, err) < 0 ||
		    json_str(r, path, "destination", &s, err) < 0)
			return -EINVAL;
		snprintf(vpath, sizeof(vpath), "%s.destination", path);
		if (strcmp(s, "default") == 0) {
			out->dst.family = out->family;
		} else if (json_addr(vpath, s, out->family, true, &out->dst, err) < 0) {
			return -EINVAL;
		}
		yajl_val gw = json_get(r, "gateway", yajl_t_any);
		if (gw) {
			snprintf(vpath, sizeof(vpath), "%s.gateway", path);
			if (!YAJL_IS_STRING(gw))
				return perr_setx(err, -EINVAL, "%s: expected a string", vpath);
			if (json_addr(vpath, YAJL_GET_STRING(gw), out->family, false, &out->gateway,
				      err) < 0)
				return -EINVAL;
			out->has_gateway = true;
		}
		if (json_uint(r, path, "metric", UINT32_MAX, false, &n, err) < 0)
			return -EINVAL;
		out->metric = (uint32_t)n;
		info->nroutes++;
	}
	return 0;
}

int netsetup_netns_info_from_json(const char *json, struct netsetup_netns_info *info,
				  struct perr *err)
{
	memset(info, 0, sizeof(*info));
	char why[256];
	yajl_val root = yajl_tree_parse(json, why, sizeof(why));
	if (!root) {
		why[strcspn(why, "\n")] = '\0';
		return perr_setx(err, -EINVAL, "info json: %s", why[0] ? why : "parse error");
	}
	int rc = info_from_tree(root, info, err);
	yajl_tree_free(root);
	if (rc < 0)
		memset(info, 0, sizeof(*info));
	return rc;
}
