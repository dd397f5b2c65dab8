/* rtnetlink socket, error wording and link lookups shared by netsetup/. */
#include "netsetup/nl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cleanup.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* Keeps the kernel's errno and extack text; NL_STOP makes libnl return
 * its NLE_ code for the same error, so callers see both. */
static int nsl_on_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct nsl *c = arg;
	(void)who;
	c->kernel_errno = e->error < 0 ? -e->error : e->error;
	c->extack[0] = '\0';

	/* e sits right after its own nlmsghdr; with NETLINK_CAP_ACK the
	 * request is not echoed and the TLVs follow struct nlmsgerr. */
	const struct nlmsghdr *hdr = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
	if (!(hdr->nlmsg_flags & NLM_F_ACK_TLVS))
		return NL_STOP;
	size_t payload = hdr->nlmsg_len - NLMSG_HDRLEN;
	size_t off =
	    (hdr->nlmsg_flags & NLM_F_CAPPED) ? sizeof(*e) : sizeof(e->error) + e->msg.nlmsg_len;
	off = NLMSG_ALIGN(off);
	if (off >= payload)
		return NL_STOP;
	struct nlattr *msg =
	    nla_find((struct nlattr *)((char *)e + off), (int)(payload - off), NLMSGERR_ATTR_MSG);
	if (msg && nla_len(msg) > 0) {
		size_t n = (size_t)nla_len(msg);
		if (n >= sizeof(c->extack))
			n = sizeof(c->extack) - 1;
		memcpy(c->extack, nla_data(msg), n);
		c->extack[n] = '\0';
		/* the kernel's text is NUL-terminated and has no trailing newline,
		 * but an odd one does no harm when trimmed */
		c->extack[strcspn(c->extack, "\n")] = '\0';
	}
	return NL_STOP;
}

/* libnl folds errnos into NLE_ codes; this maps them back for messages
 * about failures that never reached the kernel (no NLMSG_ERROR). */
static const struct {
	int nle;
	int err;
} nlerr_errno[] = {
    {NLE_INTR, EINTR},		 {NLE_BAD_SOCK, EBADF},
    {NLE_AGAIN, EAGAIN},	 {NLE_NOMEM, ENOMEM},
    {NLE_EXIST, EEXIST},	 {NLE_INVAL, EINVAL},
    {NLE_RANGE, ERANGE},	 {NLE_MSGSIZE, EMSGSIZE},
    {NLE_OPNOTSUPP, EOPNOTSUPP}, {NLE_AF_NOSUPPORT, EAFNOSUPPORT},
    {NLE_OBJ_NOTFOUND, ENOENT},	 {NLE_NOADDR, EADDRNOTAVAIL},
    {NLE_BUSY, EBUSY},		 {NLE_PROTO_MISMATCH, EPROTONOSUPPORT},
    {NLE_NOACCESS, EACCES},	 {NLE_PERM, EPERM},
    {NLE_NODEV, ENODEV},
};

static int nlerr_to_errno(int nlerr)
{
	int nle = nlerr < 0 ? -nlerr : nlerr;
	if (nle == 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(nlerr_errno); i++)
		if (nlerr_errno[i].nle == nle)
			return nlerr_errno[i].err;
	return EIO;
}

int nsl_errno(const struct nsl *c, int nlerr)
{
	if (c && c->kernel_errno)
		return -c->kernel_errno;
	return -nlerr_to_errno(nlerr);
}

static int errno_vfail(int code, const char *extack, struct perr *err, const char *fmt, va_list ap)
{
	char what[PERR_MSG_MAX];
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive */
	vsnprintf(what, sizeof(what), fmt, ap);
	const char *hint = "";
	if (code == -EPERM || code == -EACCES)
		hint = " (needs CAP_NET_ADMIN)";
	if (extack && extack[0])
		return perr_setx(err, code, "%s: %s (kernel: %s)%s", what, strerror(-code), extack,
				 hint);
	return perr_setx(err, code, "%s: %s%s", what, strerror(-code), hint);
}

int nsl_fail(struct nsl *c, int nlerr, struct perr *err, const char *fmt, ...)
{
	int code = nsl_errno(c, nlerr);
	if (code == 0)
		code = -EIO;
	va_list ap;
	va_start(ap, fmt);
	errno_vfail(code, c ? c->extack : NULL, err, fmt, ap);
	va_end(ap);
	return code;
}

int netsetup_errno_fail(int neg_errno, struct perr *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errno_vfail(neg_errno, NULL, err, fmt, ap);
	va_end(ap);
	return neg_errno;
}

void nsl_begin(struct nsl *c)
{
	c->kernel_errno = 0;
	c->extack[0] = '\0';
}

int nsl_open(struct nsl *c, struct perr *err)
{
	memset(c, 0, sizeof(*c));
	c->sk = nl_socket_alloc();
	if (!c->sk)
		return perr_set(err, -ENOMEM, "netlink socket");
	int rc = nl_connect(c->sk, NETLINK_ROUTE);
	if (rc < 0) {
		rc = nsl_fail(NULL, rc, err, "netlink socket");
		nl_socket_free(c->sk);
		c->sk = NULL;
		return rc;
	}
	int fd = nl_socket_get_fd(c->sk);
	/* libnl 3.7 opens it with SOCK_CLOEXEC; older ones did not. */
	int fdflags = fcntl(fd, F_GETFD);
	if (fdflags >= 0 && !(fdflags & FD_CLOEXEC))
		fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC);
	int one = 1;
	/* Best effort: kernels before 4.12 have no extended ack. */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	nl_socket_modify_err_cb(c->sk, NL_CB_CUSTOM, nsl_on_error, c);
	return 0;
}

void nsl_close(struct nsl *c)
{
	if (c->sk) {
		nl_close(c->sk);
		nl_socket_free(c->sk);
		c->sk = NULL;
	}
}

static int ifname_check(const char *ifname, struct perr *err)
{
	size_t n = ifname ? strlen(ifname) : 0;
	if (n == 0)
		return perr_setx(err, -EINVAL, "empty interface name");
	if (n >= IFNAMSIZ)
		return perr_setx(err, -EINVAL, "interface name '%s' is longer than %d bytes",
				 ifname, IFNAMSIZ - 1);
	if (strcmp(ifname, ".") == 0 || strcmp(ifname, "..") == 0 || strpbrk(ifname, "/: \t\n"))
		return perr_setx(err, -EINVAL, "'%s' is not a valid interface name", ifname);
	return 0;
}

int nsl_link_get(struct nsl *c, const char *ifname, struct rtnl_link **link_out, struct perr *err)
{
	*link_out = NULL;
	int rc = ifname_check(ifname, err);
	if (rc < 0)
		return rc;
	nsl_begin(c);
	rc = rtnl_link_get_kernel(c->sk, 0, ifname, link_out);
	if (rc >= 0)
		return 0;
	*link_out = NULL;
	int code = nsl_errno(c, rc);
	if (code == -ENODEV || code == -ENOENT)
		return 0;
	return nsl_fail(c, rc, err, "link %s", ifname);
}

int nsl_link_require(struct nsl *c, const char *ifname, struct rtnl_link **link_out,
		     struct perr *err)
{
	int rc = nsl_link_get(c, ifname, link_out, err);
	if (rc < 0)
		return rc;
	if (!*link_out)
		return perr_set(err, -ENODEV, "link %s", ifname);
	return 0;
}

int nsl_link_up(struct nsl *c, struct rtnl_link *link, struct perr *err)
{
	if (rtnl_link_get_flags(link) & IFF_UP)
		return 0;
	struct rtnl_link *change = rtnl_link_alloc();
	if (!change)
		return perr_set(err, -ENOMEM, "link %s: up", rtnl_link_get_name(link));
	rtnl_link_set_flags(change, IFF_UP);
	nsl_begin(c);
	int rc = rtnl_link_change(c->sk, link, change, 0);
	rtnl_link_put(change);
	if (rc < 0)
		return nsl_fail(c, rc, err, "link %s: set up", rtnl_link_get_name(link));
	return 0;
}

int nsl_link_delete(struct nsl *c, struct rtnl_link *link, struct perr *err)
{
	nsl_begin(c);
	int rc = rtnl_link_delete(c->sk, link);
	if (rc < 0) {
		int code = nsl_errno(c, rc);
		if (code == -ENODEV || code == -ENOENT)
			return 0; /* gone meanwhile */
		return nsl_fail(c, rc, err, "link %s: delete", rtnl_link_get_name(link));
	}
	return 0;
}

const char *nsl_link_kind(struct rtnl_link *link)
{
	const char *kind = rtnl_link_get_type(link);
	return kind ? kind : "";
}
