/*
 * The tc redirect between a container's veth and a VM's tap (the "tcfilter"
 * model): on each, an ingress qdisc (handle ffff:) and a u32 filter that
 * matches every frame (one key with mask 0) and hands it to a mirred action
 * redirecting it to the other's egress, stolen so the namespace's own stack
 * never sees it. u32 rather than matchall because u32 is in every kernel
 * that has tc; matchall is a separate, often missing, module.
 * Our filters are the ones with priority NETSETUP_TC_PRIO.
 */
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>
#include <stdbool.h>

#include "netsetup/netsetup.h"
#include "netsetup/nl.h"

#define INGRESS_HANDLE TC_HANDLE(0xffff, 0)

static struct rtnl_qdisc *ingress_qdisc_alloc(int ifindex)
{
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();
	if (!q)
		return NULL;
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_INGRESS);
	rtnl_tc_set_handle(TC_CAST(q), INGRESS_HANDLE);
	if (rtnl_tc_set_kind(TC_CAST(q), "ingress") < 0) {
		rtnl_qdisc_put(q);
		return NULL;
	}
	return q;
}

/* *made tells whether this call created it (an existing one is reused). */
static int ingress_qdisc_add(struct nsl *c, int ifindex, const char *name, bool *made,
			     struct perr *err)
{
	*made = false;
	struct rtnl_qdisc *q = ingress_qdisc_alloc(ifindex);
	if (!q)
		return perr_set(err, -ENOMEM, "%s: ingress qdisc", name);
	nsl_begin(c);
	int rc = rtnl_qdisc_add(c->sk, q, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_qdisc_put(q);
	if (rc < 0) {
		if (nsl_errno(c, rc) == -EEXIST)
			return 0;
		return nsl_fail(c, rc, err, "%s: add ingress qdisc", name);
	}
	*made = true;
	return 0;
}

static int ingress_qdisc_delete(struct nsl *c, int ifindex, const char *name, struct perr *err)
{
	struct rtnl_qdisc *q = ingress_qdisc_alloc(ifindex);
	if (!q)
		return perr_set(err, -ENOMEM, "%s: ingress qdisc", name);
	nsl_begin(c);
	int rc = rtnl_qdisc_delete(c->sk, q);
	rtnl_qdisc_put(q);
	if (rc < 0) {
		int code = nsl_errno(c, rc);
		if (code == -ENOENT || code == -EINVAL || code == -ENODEV)
			return 0; /* none there */
		return nsl_fail(c, rc, err, "%s: delete ingress qdisc", name);
	}
	return 0;
}

static struct rtnl_cls *redirect_filter_alloc(int ifindex)
{
	struct rtnl_cls *cls = rtnl_cls_alloc();
	if (!cls)
		return NULL;
	rtnl_tc_set_ifindex(TC_CAST(cls), ifindex);
	rtnl_tc_set_parent(TC_CAST(cls), INGRESS_HANDLE);
	rtnl_cls_set_prio(cls, NETSETUP_TC_PRIO);
	rtnl_cls_set_protocol(cls, ETH_P_ALL);
	if (rtnl_tc_set_kind(TC_CAST(cls), "u32") < 0) {
		rtnl_cls_put(cls);
		return NULL;
	}
	return cls;
}

static int redirect_filter_add(struct nsl *c, int from_ifindex, const char *from, int to_ifindex,
			       const char *to, struct perr *err)
{
	struct rtnl_cls *cls = redirect_filter_alloc(from_ifindex);
	struct rtnl_act *act = rtnl_act_alloc();
	int rc = -ENOMEM;
	if (!cls || !act)
		goto build_failed;
	/* One key, value 0 under mask 0 at offset 0: every frame matches. */
	if ((rc = rtnl_u32_add_key_uint32(cls, 0, 0, 0, 0)) < 0 ||
	    (rc = rtnl_u32_set_cls_terminal(cls)) < 0 ||
	    (rc = rtnl_tc_set_kind(TC_CAST(act), "mirred")) < 0 ||
	    (rc = rtnl_mirred_set_action(act, TCA_EGRESS_REDIR)) < 0 ||
	    (rc = rtnl_mirred_set_policy(act, TC_ACT_STOLEN)) < 0 ||
	    (rc = rtnl_mirred_set_ifindex(act, (uint32_t)to_ifindex)) < 0 ||
	    (rc = rtnl_u32_add_action(cls, act)) < 0)
		goto build_failed;
	nsl_begin(c);
	rc = rtnl_cls_add(c->sk, cls, NLM_F_CREATE | NLM_F_EXCL);
	if (rc < 0)
		rc = nsl_fail(c, rc, err, "%s: add filter redirecting to %s", from, to);
	goto out;
build_failed:
	rc = nsl_fail(NULL, rc, err, "%s: build filter redirecting to %s", from, to);
out:
	if (act)
		rtnl_act_put(act); /* the classifier holds its own reference */
	if (cls)
		rtnl_cls_put(cls);
	return rc;
}

static int redirect_filter_delete(struct nsl *c, int ifindex, const char *name, struct perr *err)
{
	struct rtnl_cls *cls = redirect_filter_alloc(ifindex);
	if (!cls)
		return perr_set(err, -ENOMEM, "%s: filter", name);
	nsl_begin(c);
	/* No handle: the whole u32 instance at our priority goes. */
	int rc = rtnl_cls_delete(c->sk, cls, 0);
	rtnl_cls_put(cls);
	if (rc < 0) {
		int code = nsl_errno(c, rc);
		if (code == -ENOENT || code == -EINVAL || code == -ENODEV)
			return 0; /* no qdisc or no such filter */
		return nsl_fail(c, rc, err, "%s: delete filter", name);
	}
	return 0;
}

/* Counts the ingress filters on ifindex, and ours among them. */
static int ingress_filters_count(struct nsl *c, int ifindex, const char *name, int *total,
				 int *ours, struct perr *err)
{
	*total = *ours = 0;
	struct nl_cache *cache = NULL;
	nsl_begin(c);
	int rc = rtnl_cls_alloc_cache(c->sk, ifindex, INGRESS_HANDLE, &cache);
	if (rc < 0) {
		int code = nsl_errno(c, rc);
		if (code == -ENOENT || code == -EINVAL)
			return 0; /* no ingress qdisc */
		return nsl_fail(c, rc, err, "%s: list filters", name);
	}
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_cls *cls = (struct rtnl_cls *)o;
		(*total)++;
		if (rtnl_cls_get_prio(cls) == NETSETUP_TC_PRIO)
			(*ours)++;
	}
	nl_cache_free(cache);
	return 0;
}

struct side {
	const char *name;
	int ifindex;
	bool made_qdisc;
	bool made_filter;
};

static void undo_side(struct nsl *c, struct side *s)
{
	struct perr ignored;
	if (s->made_filter)
		redirect_filter_delete(c, s->ifindex, s->name, &ignored);
	if (s->made_qdisc)
		ingress_qdisc_delete(c, s->ifindex, s->name, &ignored);
	s->made_filter = s->made_qdisc = false;
}

static int lookup_ifindex(struct nsl *c, const char *name, int *ifindex, struct perr *err)
{
	struct rtnl_link *link = NULL;
	int rc = nsl_link_get(c, name, &link, err);
	if (rc < 0)
		return rc;
	*ifindex = link ? rtnl_link_get_ifindex(link) : 0;
	if (link)
		rtnl_link_put(link);
	return 0;
}

static int redirect_setup(struct nsl *c, struct side sides[2], struct perr *err)
{
	int rc;
	for (int i = 0; i < 2; i++) {
		rc = lookup_ifindex(c, sides[i].name, &sides[i].ifindex, err);
		if (rc < 0)
			return rc;
		if (!sides[i].ifindex)
			return perr_set(err, -ENODEV, "link %s", sides[i].name);
		int total, ours;
		rc = ingress_filters_count(c, sides[i].ifindex, sides[i].name, &total, &ours, err);
		if (rc < 0)
			return rc;
		if (ours)
			return perr_setx(
			    err, -EEXIST,
			    "%s already has a redirect filter (pref %d); remove it first",
			    sides[i].name, NETSETUP_TC_PRIO);
	}
	for (int i = 0; i < 2; i++) {
		struct side *from = &sides[i], *to = &sides[1 - i];
		rc = ingress_qdisc_add(c, from->ifindex, from->name, &from->made_qdisc, err);
		if (rc < 0)
			goto undo;
		rc = redirect_filter_add(c, from->ifindex, from->name, to->ifindex, to->name, err);
		if (rc < 0)
			goto undo;
		from->made_filter = true;
	}
	return 0;
undo:
	undo_side(c, &sides[1]);
	undo_side(c, &sides[0]);
	return rc;
}

int netsetup_tc_redirect_setup(const char *veth, const char *tap, struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc == 0) {
		struct side sides[2] = {{.name = veth}, {.name = tap}};
		rc = redirect_setup(&c, sides, err);
		nsl_close(&c);
	}
	if (rc < 0)
		perr_wrap(err, "redirect %s <-> %s", veth ? veth : "", tap ? tap : "");
	return rc;
}

static int teardown_one(struct nsl *c, const char *name, struct perr *err)
{
	int ifindex = 0;
	int rc = lookup_ifindex(c, name, &ifindex, err);
	if (rc < 0 || !ifindex)
		return rc; /* a link that is gone took its qdisc and filters along */
	rc = redirect_filter_delete(c, ifindex, name, err);
	if (rc < 0)
		return rc;
	int total, ours;
	rc = ingress_filters_count(c, ifindex, name, &total, &ours, err);
	if (rc < 0)
		return rc;
	/* Someone else's filters keep the qdisc alive. */
	if (total == 0)
		rc = ingress_qdisc_delete(c, ifindex, name, err);
	return rc;
}

int netsetup_tc_redirect_teardown(const char *veth, const char *tap, struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc == 0) {
		/* Both sides even when one fails: leave as little as possible. */
		struct perr tap_err;
		perr_clear(&tap_err);
		int veth_rc = veth ? teardown_one(&c, veth, err) : 0;
		int tap_rc = tap ? teardown_one(&c, tap, veth_rc < 0 ? &tap_err : err) : 0;
		rc = veth_rc < 0 ? veth_rc : tap_rc;
		nsl_close(&c);
	}
	if (rc < 0)
		perr_wrap(err, "redirect %s <-> %s: teardown", veth ? veth : "", tap ? tap : "");
	return rc;
}

int netsetup_tc_redirect_present(const char *ifname, struct perr *err)
{
	struct nsl c;
	int rc = nsl_open(&c, err);
	if (rc < 0)
		return rc;
	int ifindex = 0;
	rc = lookup_ifindex(&c, ifname, &ifindex, err);
	if (rc == 0 && ifindex) {
		int total, ours;
		rc = ingress_filters_count(&c, ifindex, ifname, &total, &ours, err);
		if (rc == 0)
			rc = ours > 0;
	}
	nsl_close(&c);
	return rc;
}
