/*
 * Internal to netsetup/: one rtnetlink socket per operation, opened in the
 * namespace the caller is in, with the kernel's own errno and extended-ack
 * message kept for the error text (libnl folds errnos into fewer NLE_ codes).
 */
#ifndef PETREL_NETSETUP_NL_H
#define PETREL_NETSETUP_NL_H

#include <netlink/route/link.h>

#include "common/error.h"

struct nsl {
	struct nl_sock *sk;
	int kernel_errno; /* errno of the last NLMSG_ERROR, 0 when none */
	char extack[192]; /* the kernel's NLMSGERR_ATTR_MSG, "" when none */
};

int nsl_open(struct nsl *c, struct perr *err);
void nsl_close(struct nsl *c);
/* Forget the previous request's error; call before each request. */
void nsl_begin(struct nsl *c);
/* The negative errno that stands for libnl result `nlerr`. */
int nsl_errno(const struct nsl *c, int nlerr);
/* perr_setx with "<fmt>: <strerror>[ (kernel: <extack>)][ (needs CAP_NET_ADMIN)]";
 * returns the negative errno. */
int nsl_fail(struct nsl *c, int nlerr, struct perr *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same wording for a plain negative errno (ioctl, open). */
int netsetup_errno_fail(int neg_errno, struct perr *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* *link_out is NULL and 0 is returned when no link has that name. */
int nsl_link_get(struct nsl *c, const char *ifname, struct rtnl_link **link_out, struct perr *err);
/* Like nsl_link_get, but a missing link is an error ("link X: No such device"). */
int nsl_link_require(struct nsl *c, const char *ifname, struct rtnl_link **link_out,
		     struct perr *err);
int nsl_link_up(struct nsl *c, struct rtnl_link *link, struct perr *err);
int nsl_link_delete(struct nsl *c, struct rtnl_link *link, struct perr *err);
/* "bridge", "tun", "veth", … or "" for links without a kind (loopback, eth). */
const char *nsl_link_kind(struct rtnl_link *link);

/* In the current namespace: reads veth's info, creates tap tap_name (vnet
 * header, not persistent) with its MTU, up, and the tc redirect both ways.
 * netsetup_netns_attach and netsetup_container_prepare share it. */
struct netsetup_netns_info;
int netsetup_join_tap_to_veth(const char *veth, const char *tap_name,
			      struct netsetup_netns_info *info, int *tap_fd,
			      char tap_made[IFNAMSIZ], struct perr *err);

#endif
