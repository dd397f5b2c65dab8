/* yajl helpers shared by the info object and the agent's `network` object. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netsetup/json.h"

int nsj_str(yajl_gen g, const char *s)
{
	if (yajl_gen_string(g, (const unsigned char *)s, strlen(s)) != yajl_gen_status_ok)
		return -EIO;
	return 0;
}

int nsj_key_str(yajl_gen g, const char *key, const char *value)
{
	if (nsj_str(g, key) < 0 || nsj_str(g, value) < 0)
		return -EIO;
	return 0;
}

int nsj_key_int(yajl_gen g, const char *key, long long value)
{
	if (nsj_str(g, key) < 0 || yajl_gen_integer(g, value) != yajl_gen_status_ok)
		return -EIO;
	return 0;
}

int nsj_addr(yajl_gen g, const struct netsetup_addr *a, bool with_prefix)
{
	char text[INET6_ADDRSTRLEN + 8];
	if (netsetup_addr_format(a, with_prefix, text, sizeof(text)) < 0)
		return -EINVAL;
	return nsj_str(g, text);
}

void nsj_mac_format(const uint8_t mac[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

int nsj_to_text(int (*write)(const void *obj, yajl_gen g), const void *obj, const char *what,
		char **out, struct perr *err)
{
	*out = NULL;
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return perr_set(err, -ENOMEM, "%s", what);
	int rc = write(obj, g);
	if (rc == 0) {
		const unsigned char *buf;
		size_t len;
		if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
			rc = -EIO;
		else if (!(*out = strndup((const char *)buf, len)))
			rc = -ENOMEM;
	}
	yajl_gen_free(g);
	if (rc < 0)
		return perr_set(err, rc, "%s", what);
	return 0;
}
