/*
 * Internal to netsetup/: the yajl helpers that info.c (the info object) and
 * container.c (the agent's `network` object) both write with.
 */
#ifndef PETREL_NETSETUP_JSON_H
#define PETREL_NETSETUP_JSON_H

#include <stdbool.h>
#include <yajl/yajl_gen.h>

#include "common/error.h"
#include "netsetup/netsetup.h"

/* Returns -EIO from the calling function when a yajl call fails. */
#define NSJ(call)                                 \
	do {                                      \
		if ((call) != yajl_gen_status_ok) \
			return -EIO;              \
	} while (0)

/* Each returns 0, or -EIO when yajl refuses (-EINVAL for an address it
 * cannot format). */
int nsj_str(yajl_gen g, const char *s);
int nsj_key_str(yajl_gen g, const char *key, const char *value);
int nsj_key_int(yajl_gen g, const char *key, long long value);
/* "10.0.0.1/24" (with_prefix) or "10.0.0.1" as a JSON string. */
int nsj_addr(yajl_gen g, const struct netsetup_addr *a, bool with_prefix);
/* "02:42:0a:58:00:05" into buf[18]. */
void nsj_mac_format(const uint8_t mac[6], char buf[18]);

/* Runs write(obj, g) on a fresh generator and returns the text, malloc'ed
 * and NUL-terminated, in *out; `what` names it in the error. */
int nsj_to_text(int (*write)(const void *obj, yajl_gen g), const void *obj, const char *what,
		char **out, struct perr *err);

#endif
