/* Bridges and generic link operations over rtnetlink. */
#include <arpa/inet.h>
#include <errno.h>
#include <netlink/addr.h>
#include <netlink/route/addr.h>
#include <netlink/route/link/bridge.h>
#include <string.h>

#include "netsetup/netsetup.h"
#include "netsetup/nl.h"

static int bridge_add_addr(struct nsl *c, struct rtnl_link *bridge, const struct netsetup_addr *a,
			   struct perr *err)
{
	char text[INET6_ADDRSTRLEN + 8];
	if (netsetup_addr_format(a, true, text, sizeof(text)) < 0)
		return perr_setx(err, -EINVAL, "bad address family %d", a->family);

	size_t alen = a->family == AF_INET ? 4 : 16;
	struct nl_addr *local = nl_addr_build(a->family, a->bytes, alen);
	struct rtnl_addr *ra = rtnl_addr_alloc();
	int rc = 0;
	if (!local || !ra) {
		rc = perr_set(err, -ENOMEM, "address %s", text);
		goto out;
	}
	nl_addr_set_prefixlen(local, (int)a->prefixlen);
	rtnl_addr_set_ifindex(ra, rtnl_link_get_ifindex(bridge));
	rtnl_addr_set_family(ra, a->family);
	rtnl_addr_set_prefixlen(ra, (int)a->prefixlen);
	rc = rtnl_addr_set_local(ra, local);
	if (rc < 0) {
		rc = nsl_fail(c, rc, err, "address %s", text);
		goto out;
	}
	nsl_begin(c);
	rc = rtnl_addr_add(c->sk, ra, NLM_F_EXCL);
	if (rc < 0) {
		if (nsl_errno(c, rc) == -EEXIST) {
			rc = 0; /* already there: idempotent */
			goto out;
		}
		rc = nsl_fail(c, rc, err, "address %s", text);
	}
out:
	if (ra)
		rtnl_addr_put(ra);
	if (local)
		nl_addr_put(local);
	return rc;
}

static int bridge_ensure(struct nsl *c, const char *name, const struct netsetup_addr *addr,
			 struct perr *err)
{
	struct rtnl_link *link = NULL;
	bool created = false;
	int rc = nsl_link_get(c, name, &link, err);
	if (rc < 0)
		return rc;
	if (link && !rtnl_link_is_bridge(link)) {
		const char *kind = nsl_link_kind(link);
		rc = perr_setx(err, -EEXIST, "exists and is not a bridge (it is %s%s)",
			       kind[0] ? "a " : "a plain link", kind);
		goto out;
	}
	if (!link) {
		struct rtnl_link *want = rtnl_link_bridge_alloc();
		if (!want)
			return perr_set(err, -ENOMEM, "%s", name);
		rtnl_link_set_name(want, name);
		nsl_begin(c);
		rc = rtnl_link_add(c->sk, want, NLM_F_CREATE | NLM_F_EXCL);
		rtnl_link_put(want);
		if (rc < 0)
			return nsl_fail(c, rc, err, "create");
		created = true;
		rc = nsl_link_require(c, name, &link, err);
		if (rc < 0) {
			struct perr ignored;
			netsetup_link_delete(name, &ignored);
			return rc;
		}
	}
	rc = nsl_link_up(c, link, err);
	if (rc == 0 && addr)
		rc = bridge_add_addr(c, link, addr, err);
	if (rc < 0 && created) {
		struct perr ignored;
		nsl_link_delete(c, link, &ignored);
	}
out:
	rtnl_link_put(link);
	return rc;
}

int netsetup_bridge_ensure(const char *name, const struct netsetup_addr *addr, struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc == 0) {
		rc = bridge_ensure(&c, name, addr, err);
		nsl_close(&c);
	}
	if (rc < 0)
		perr_wrap(err, "bridge %s", name ? name : "");
	return rc;
}

/* Deletes `name` when it is of kind `kind` (checked with is_kind). */
static int delete_of_kind(const char *name, const char *what, int (*is_kind)(struct rtnl_link *),
			  struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		goto wrap;
	struct rtnl_link *link = NULL;
	rc = nsl_link_get(&c, name, &link, err);
	if (rc == 0 && link) {
		if (!is_kind(link)) {
			const char *kind = nsl_link_kind(link);
			rc = perr_setx(err, -EINVAL, "is not a %s (it is %s%s); not deleting it",
				       what, kind[0] ? "a " : "a plain link", kind);
		} else {
			rc = nsl_link_delete(&c, link, err);
		}
		rtnl_link_put(link);
	}
	nsl_close(&c);
wrap:
	if (rc < 0)
		perr_wrap(err, "%s %s", what, name ? name : "");
	return rc;
}

int netsetup_bridge_delete(const char *name, struct perr *err)
{
	return delete_of_kind(name, "bridge", rtnl_link_is_bridge, err);
}

static int link_is_tun(struct rtnl_link *link)
{
	return strcmp(nsl_link_kind(link), "tun") == 0;
}

int netsetup_tap_delete(const char *name, struct perr *err)
{
	return delete_of_kind(name, "tap", link_is_tun, err);
}

int netsetup_link_exists(const char *ifname, struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	struct rtnl_link *link = NULL;
	rc = nsl_link_get(&c, ifname, &link, err);
	if (rc == 0) {
		rc = link != NULL;
		if (link)
			rtnl_link_put(link);
	}
	nsl_close(&c);
	return rc;
}

int netsetup_link_up(const char *ifname, struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	struct rtnl_link *link = NULL;
	rc = nsl_link_require(&c, ifname, &link, err);
	if (rc == 0) {
		rc = nsl_link_up(&c, link, err);
		rtnl_link_put(link);
	}
	nsl_close(&c);
	return rc;
}

int netsetup_link_set_mtu(const char *ifname, unsigned mtu, struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	struct rtnl_link *link = NULL, *change = NULL;
	rc = nsl_link_require(&c, ifname, &link, err);
	if (rc < 0)
		goto out;
	if (rtnl_link_get_mtu(link) == mtu)
		goto out;
	change = rtnl_link_alloc();
	if (!change) {
		rc = perr_set(err, -ENOMEM, "link %s: mtu", ifname);
		goto out;
	}
	rtnl_link_set_mtu(change, mtu);
	nsl_begin(&c);
	rc = rtnl_link_change(c.sk, link, change, 0);
	if (rc < 0)
		rc = nsl_fail(&c, rc, err, "link %s: set mtu %u", ifname, mtu);
out:
	if (change)
		rtnl_link_put(change);
	if (link)
		rtnl_link_put(link);
	nsl_close(&c);
	return rc;
}

int netsetup_link_set_master(const char *ifname, const char *bridge, struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	struct rtnl_link *link = NULL, *br = NULL, *change = NULL;
	rc = nsl_link_require(&c, ifname, &link, err);
	if (rc < 0)
		goto out;
	rc = nsl_link_require(&c, bridge, &br, err);
	if (rc < 0)
		goto out;
	if (!rtnl_link_is_bridge(br)) {
		rc = perr_setx(err, -EINVAL, "%s is not a bridge", bridge);
		goto out;
	}
	if (rtnl_link_get_master(link) == rtnl_link_get_ifindex(br))
		goto out; /* already a port of it */
	change = rtnl_link_alloc();
	if (!change) {
		rc = perr_set(err, -ENOMEM, "link %s", ifname);
		goto out;
	}
	rtnl_link_set_master(change, rtnl_link_get_ifindex(br));
	nsl_begin(&c);
	rc = rtnl_link_change(c.sk, link, change, 0);
	if (rc < 0)
		rc = nsl_fail(&c, rc, err, "link %s: add to bridge %s", ifname, bridge);
out:
	if (change)
		rtnl_link_put(change);
	if (br)
		rtnl_link_put(br);
	if (link)
		rtnl_link_put(link);
	nsl_close(&c);
	return rc;
}

int netsetup_link_delete(const char *ifname, struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	struct rtnl_link *link = NULL;
	rc = nsl_link_get(&c, ifname, &link, err);
	if (rc == 0 && link) {
		rc = nsl_link_delete(&c, link, err);
		rtnl_link_put(link);
	}
	nsl_close(&c);
	return rc;
}
