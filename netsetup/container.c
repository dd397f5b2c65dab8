/*
 * A container's network namespace (podman, CNI, netavark) made ready for its
 * VM: the tap next to the veth, the tc redirect between them, and what the
 * guest's eth0 must look like, as the agent's `network` object. The runtime
 * calls netsetup_container_prepare() at create and
 * netsetup_container_cleanup() at delete (docs/network.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netlink/cache.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "netsetup/json.h"
#include "netsetup/netsetup.h"
#include "netsetup/nl.h"

static int tap_name_check(const char *name, struct perr *err)
{
	size_t n = strlen(name);
	if (n == 0 || n >= IFNAMSIZ)
		return perr_setx(err, -EINVAL, "tap '%s': a name of 1 to %d bytes is needed", name,
				 IFNAMSIZ - 1);
	/* No kernel template: cleanup must know the name without asking anyone. */
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strpbrk(name, "/:% \t\n"))
		return perr_setx(err, -EINVAL, "tap '%s': not a valid interface name", name);
	return 0;
}

/* "eth0 (veth), eth1 (macvlan)" into buf. */
static void describe_link(char *buf, size_t len, struct rtnl_link *l)
{
	size_t used = strlen(buf);
	const char *kind = nsl_link_kind(l);
	snprintf(buf + used, len - used, "%s%s (%s)", used ? ", " : "", rtnl_link_get_name(l),
		 kind[0] ? kind : "no kind");
}

/* The only link that is neither loopback nor a tun/tap: the veth. */
static int find_veth(struct nsl *c, char name_out[IFNAMSIZ], struct perr *err)
{
	struct nl_cache *links = NULL;
	nsl_begin(c);
	int rc = rtnl_link_alloc_cache(c->sk, AF_UNSPEC, &links);
	if (rc < 0)
		return nsl_fail(c, rc, err, "list links");
	int found = 0;
	char names[256] = "", taps[256] = "";
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		if (rtnl_link_get_flags(l) & IFF_LOOPBACK)
			continue;
		if (strcmp(nsl_link_kind(l), "tun") == 0) {
			describe_link(taps, sizeof(taps), l);
			continue;
		}
		if (found++ == 0)
			snprintf(name_out, IFNAMSIZ, "%s", rtnl_link_get_name(l));
		describe_link(names, sizeof(names), l);
	}
	nl_cache_free(links);
	if (found == 1)
		return 0;
	name_out[0] = '\0';
	if (found == 0)
		return perr_setx(err, -ENODEV, "no network interface to take over: only lo%s%s",
				 taps[0] ? " and taps: " : "", taps);
	return perr_setx(err, -EINVAL,
			 "%d network interfaces (%s): a VM takes over exactly one; "
			 "remove the others",
			 found, names);
}

struct prepare_args {
	const char *tap_name;
	struct netsetup_container_net *out;
};

static int prepare_in_netns(void *arg, struct perr *err)
{
	struct prepare_args *a = arg;
	struct netsetup_container_net *out = a->out;
	char veth[IFNAMSIZ];
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	struct rtnl_link *clash = NULL;
	rc = nsl_link_get(&c, a->tap_name, &clash, err);
	if (rc == 0 && clash) {
		const char *kind = nsl_link_kind(clash);
		rc = perr_setx(err, -EEXIST, "tap %s: a link of that name already exists (%s%s)",
			       a->tap_name, kind[0] ? "a " : "a link without a kind", kind);
		rtnl_link_put(clash);
	}
	if (rc == 0)
		rc = find_veth(&c, veth, err);
	nsl_close(&c);
	if (rc < 0)
		return rc;

	return netsetup_join_tap_to_veth(veth, a->tap_name, &out->veth, &out->tap_fd, out->tap_name,
					 err);
}

/* The checks prepare and cleanup share; *tap_name gets the default. */
static int container_args_check(const char *netns_path, const char **tap_name, struct perr *err)
{
	if (!*tap_name)
		*tap_name = NETSETUP_CONTAINER_TAP;
	int rc = tap_name_check(*tap_name, err);
	if (rc < 0)
		return rc;
	if (!netns_path || !netns_path[0])
		return perr_setx(err, -EINVAL, "netns: no path given");
	return 0;
}

int netsetup_container_prepare(const char *netns_path, const char *tap_name,
			       struct netsetup_container_net *out, struct perr *err)
{
	memset(out, 0, sizeof(*out));
	out->tap_fd = -1;
	int rc = container_args_check(netns_path, &tap_name, err);
	if (rc < 0)
		return rc;
	struct prepare_args a = {.tap_name = tap_name, .out = out};
	rc = netsetup_netns_run(netns_path, prepare_in_netns, &a, err);
	if (rc < 0) {
		if (out->tap_fd >= 0)
			close(out->tap_fd);
		memset(out, 0, sizeof(*out));
		out->tap_fd = -1;
	}
	return rc;
}

static int cleanup_in_netns(void *arg, struct perr *err)
{
	const char *tap_name = arg;
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	struct nl_cache *links = NULL;
	nsl_begin(&c);
	rc = rtnl_link_alloc_cache(c.sk, AF_UNSPEC, &links);
	if (rc < 0)
		rc = nsl_fail(&c, rc, err, "list links");
	nsl_close(&c);
	if (rc < 0)
		return rc;
	/* Every link, not just "the veth": after a crash the namespace may hold
	 * fewer or more links than at prepare, and pref 0xc0de is petrel's. */
	int first_rc = 0;
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *name = rtnl_link_get_name(l);
		if (rtnl_link_get_flags(l) & IFF_LOOPBACK)
			continue;
		struct perr one;
		perr_clear(&one);
		int present = netsetup_tc_redirect_present(name, &one);
		int r = present > 0 ? netsetup_tc_redirect_teardown(name, NULL, &one) : present;
		if (r < 0 && first_rc == 0) {
			first_rc = r;
			if (err)
				*err = one;
		}
	}
	nl_cache_free(links);
	struct perr tap_err;
	perr_clear(&tap_err);
	rc = netsetup_tap_delete(tap_name, &tap_err);
	if (rc < 0 && first_rc == 0) {
		first_rc = rc;
		if (err)
			*err = tap_err;
	}
	return first_rc;
}

/* True when nothing is left to clean: the path is gone, or it is the empty
 * file a namespace was bind-mounted on (podman and `ip netns del` unmount
 * before they unlink). */
static bool netns_gone(const char *path)
{
	struct statfs sfs;
	if (statfs(path, &sfs) < 0)
		return errno == ENOENT;
	if ((unsigned long)sfs.f_type == NSFS_MAGIC)
		return false; /* a namespace (of some type: netsetup_netns_open checks) */
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

int netsetup_container_cleanup(const char *netns_path, const char *tap_name, struct perr *err)
{
	int rc = container_args_check(netns_path, &tap_name, err);
	if (rc < 0)
		return rc;
	if (netns_gone(netns_path))
		return 0; /* the namespace took the tap, filters and qdiscs along */
	return netsetup_netns_run(netns_path, cleanup_in_netns, (void *)tap_name, err);
}

/* ---- the agent's `network` object ---- */

int netsetup_container_net_write_json(const struct netsetup_container_net *net, yajl_gen g)
{
	const struct netsetup_netns_info *v = &net->veth;
	char mac[18];
	nsj_mac_format(v->mac, mac);
	NSJ(yajl_gen_map_open(g));
	if (nsj_str(g, "interfaces") < 0)
		return -EIO;
	NSJ(yajl_gen_array_open(g));
	NSJ(yajl_gen_map_open(g));
	if (nsj_key_str(g, "name", v->ifname) < 0 || nsj_key_str(g, "mac", mac) < 0 ||
	    nsj_str(g, "mtu") < 0)
		return -EIO;
	NSJ(yajl_gen_integer(g, v->mtu));
	if (nsj_str(g, "addresses") < 0)
		return -EIO;
	NSJ(yajl_gen_array_open(g));
	for (size_t i = 0; i < v->naddrs && i < NETSETUP_MAX_ADDRS; i++)
		if (nsj_addr(g, &v->addrs[i], true) < 0)
			return -EINVAL;
	NSJ(yajl_gen_array_close(g));
	NSJ(yajl_gen_map_close(g));
	NSJ(yajl_gen_array_close(g));

	if (nsj_str(g, "routes") < 0)
		return -EIO;
	NSJ(yajl_gen_array_open(g));
	for (size_t i = 0; i < v->nroutes && i < NETSETUP_MAX_ROUTES; i++) {
		const struct netsetup_route *r = &v->routes[i];
		/* A default route is 0.0.0.0/0 or ::/0: the all-zero address. */
		struct netsetup_addr dst = r->dst;
		dst.family = r->family;
		if (dst.prefixlen == 0)
			memset(dst.bytes, 0, sizeof(dst.bytes));
		NSJ(yajl_gen_map_open(g));
		if (nsj_str(g, "destination") < 0 || nsj_addr(g, &dst, true) < 0)
			return -EINVAL;
		if (r->has_gateway &&
		    (nsj_str(g, "gateway") < 0 || nsj_addr(g, &r->gateway, false) < 0))
			return -EINVAL;
		if (nsj_key_str(g, "interface", v->ifname) < 0)
			return -EIO;
		if (r->metric) {
			if (nsj_str(g, "metric") < 0)
				return -EIO;
			NSJ(yajl_gen_integer(g, r->metric));
		}
		NSJ(yajl_gen_map_close(g));
	}
	NSJ(yajl_gen_array_close(g));
	NSJ(yajl_gen_map_close(g));
	return 0;
}

static int container_net_write(const void *net, yajl_gen g)
{
	return netsetup_container_net_write_json(net, g);
}

int netsetup_container_net_to_json(const struct netsetup_container_net *net, char **out,
				   struct perr *err)
{
	return nsj_to_text(container_net_write, net, "network json", out, err);
}

int netsetup_container_net_add_to_message(const struct netsetup_container_net *net, const char *msg,
					  size_t len, char **out, size_t *outlen, struct perr *err)
{
	*out = NULL;
	*outlen = 0;
	size_t end = len;
	while (end > 0 && strchr(" \t\r\n", msg[end - 1]))
		end--;
	size_t start = 0;
	while (start < end && strchr(" \t\r\n", msg[start]))
		start++;
	if (end - start < 2 || msg[start] != '{' || msg[end - 1] != '}')
		return perr_setx(err, -EINVAL, "network: the message is not a JSON object");
	/* The member goes before the closing brace; a comma unless it is empty. */
	size_t last = end - 1;
	while (last > start + 1 && strchr(" \t\r\n", msg[last - 1]))
		last--;
	bool empty = last == start + 1;
	char *json = NULL;
	int rc = netsetup_container_net_to_json(net, &json, err);
	if (rc < 0)
		return rc;
	if (!json)
		return perr_setx(err, -EIO, "network json");
	static const char key[] = "\"network\":";
	size_t jlen = strlen(json);
	size_t total = (end - 1) + (empty ? 0 : 1) + strlen(key) + jlen + 1;
	char *buf = malloc(total + 1);
	if (!buf) {
		free(json);
		return perr_set(err, -ENOMEM, "network");
	}
	size_t n = 0;
	memcpy(buf, msg, end - 1);
	n = end - 1;
	if (!empty)
		buf[n++] = ',';
	memcpy(buf + n, key, strlen(key));
	n += strlen(key);
	memcpy(buf + n, json, jlen);
	n += jlen;
	free(json);
	buf[n++] = '}';
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}
