/* CIDR text <-> struct netsetup_addr. Pure: no sockets, no side effects. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "netsetup/netsetup.h"

int netsetup_cidr_parse(const char *text, struct netsetup_addr *out, struct perr *err)
{
	memset(out, 0, sizeof(*out));
	if (!text)
		return perr_setx(err, -EINVAL, "no address given");
	const char *slash = strchr(text, '/');
	if (!slash)
		return perr_setx(err, -EINVAL, "address '%s': no /prefix (write e.g. 10.0.0.1/24)",
				 text);
	char host[INET6_ADDRSTRLEN];
	size_t hlen = (size_t)(slash - text);
	if (hlen == 0 || hlen >= sizeof(host))
		return perr_setx(err, -EINVAL, "address '%s': not an IPv4 or IPv6 address", text);
	memcpy(host, text, hlen);
	host[hlen] = '\0';

	unsigned max;
	if (inet_pton(AF_INET, host, out->bytes) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->bytes) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return perr_setx(err, -EINVAL, "address '%s': '%s' is not an IPv4 or IPv6 address",
				 text, host);
	}

	/* Decimal digits only: no sign, no spaces, no leading zeros beyond "0". */
	const char *p = slash + 1;
	size_t plen = strlen(p);
	if (plen == 0 || plen > 3 || strspn(p, "0123456789") != plen || (plen > 1 && p[0] == '0'))
		return perr_setx(err, -EINVAL, "address '%s': prefix '%s' is not a number", text,
				 p);
	unsigned prefix = 0;
	for (size_t i = 0; i < plen; i++)
		prefix = prefix * 10 + (unsigned)(p[i] - '0');
	if (prefix > max)
		return perr_setx(err, -EINVAL, "address '%s': prefix /%u is longer than %u bits",
				 text, prefix, max);
	out->prefixlen = prefix;
	return 0;
}

int netsetup_addr_format(const struct netsetup_addr *addr, bool with_prefix, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	if (addr->family != AF_INET && addr->family != AF_INET6)
		return -EAFNOSUPPORT;
	if (!inet_ntop(addr->family, addr->bytes, host, sizeof(host)))
		return -errno;
	int n = with_prefix ? snprintf(buf, len, "%s/%u", host, addr->prefixlen)
			    : snprintf(buf, len, "%s", host);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return 0;
}
