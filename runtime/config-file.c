/* petrel.conf (config-file.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netsetup/netsetup.h"
#include "runtime/config-file.h"

int petrel_parse_size(const char *s, uint64_t *bytes)
{
	char *end;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || v == 0)
		return -EINVAL;
	uint64_t mult = 1ull << 20; /* a bare number is MiB, as -m takes it */
	switch (toupper((unsigned char)*end)) {
	case 0:
		break;
	case 'B':
		mult = 1;
		end++;
		break;
	case 'K':
		mult = 1ull << 10;
		end++;
		break;
	case 'M':
		mult = 1ull << 20;
		end++;
		break;
	case 'G':
		mult = 1ull << 30;
		end++;
		break;
	case 'T':
		mult = 1ull << 40;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (mult != 1) {
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
	}
	if (*end)
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*bytes = v * mult;
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	return s;
}

static int conf_set(struct petrel_conf *c, const char *key, const char *val)
{
	struct {
		const char *key;
		char *dst;
		size_t size;
	} strs[] = {
	    {"vmm", c->vmm, sizeof(c->vmm)},
	    {"kernel", c->kernel, sizeof(c->kernel)},
	    {"initrd", c->initrd, sizeof(c->initrd)},
	    {"machine", c->machine, sizeof(c->machine)},
	    {"kernel_append", c->kernel_append, sizeof(c->kernel_append)},
	    {"bridge", c->bridge, sizeof(c->bridge)},
	    {"bridge_address", c->bridge_address, sizeof(c->bridge_address)},
	};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (strcmp(key, strs[i].key) != 0)
			continue;
		if (strlen(val) >= strs[i].size)
			return -ENAMETOOLONG;
		if (strs[i].dst == c->bridge && (!val[0] || strpbrk(val, "/: \t%")))
			return -EINVAL; /* an interface name */
		if (strs[i].dst == c->bridge_address) {
			struct netsetup_addr a;
			struct perr ignored;
			if (netsetup_cidr_parse(val, &a, &ignored) < 0 || a.family != AF_INET)
				return -EINVAL;
		}
		snprintf(strs[i].dst, strs[i].size, "%s", val);
		return 0;
	}
	if (!strcmp(key, "vm_templates")) {
		if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0)
			return -EINVAL;
		c->vm_templates = strcmp(val, "on") == 0;
		return 0;
	}
	if (!strcmp(key, "memory"))
		return petrel_parse_size(val, &c->memory);
	if (!strcmp(key, "memory_overhead"))
		return petrel_parse_size(val, &c->memory_overhead);
	if (!strcmp(key, "rootfs_margin"))
		return petrel_parse_size(val, &c->rootfs_margin);
	if (!strcmp(key, "cpus") || !strcmp(key, "create_timeout")) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(val, &end, 10);
		if (errno || *end || end == val || v == 0 || v > 3600)
			return -EINVAL;
		if (!strcmp(key, "cpus"))
			c->cpus = (unsigned)v;
		else
			c->create_timeout = (unsigned)v;
		return 0;
	}
	return -ENOENT;
}

int petrel_conf_load(const char *path, struct petrel_conf *conf, struct perr *err)
{
	memset(conf, 0, sizeof(*conf));
	snprintf(conf->machine, sizeof(conf->machine), "microvm");
	conf->cpus = 1;
	conf->memory = 256ull << 20;
	conf->memory_overhead = 128ull << 20;
	conf->rootfs_margin = 256ull << 20;
	conf->create_timeout = 120;
	conf->vm_templates = true;
	snprintf(conf->bridge, sizeof(conf->bridge), "%s", PETREL_CONF_BRIDGE);
	snprintf(conf->bridge_address, sizeof(conf->bridge_address), "%s",
		 PETREL_CONF_BRIDGE_ADDRESS);

	bool explicit = path != NULL;
	if (!path) {
		path = getenv("PETREL_CONF");
		explicit = path && *path;
		if (!explicit)
			path = PETREL_CONF_DEFAULT;
	}
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !explicit)
			return 0;
		return perr_set(err, -errno, "%s", path);
	}
	snprintf(conf->path, sizeof(conf->path), "%s", path);
	char line[1024];
	int lineno = 0, rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			rc = perr_setx(err, -EINVAL, "%s:%d: expected key = value", path, lineno);
			break;
		}
		*eq = 0;
		char *key = trim(s), *val = trim(eq + 1);
		int r = conf_set(conf, key, val);
		if (r == -ENOENT)
			rc = perr_setx(
			    err, -EINVAL,
			    "%s:%d: unknown key \"%s\"; known: vmm, kernel, initrd, machine, "
			    "cpus, memory, memory_overhead, rootfs_margin, create_timeout, "
			    "kernel_append, bridge, bridge_address, vm_templates",
			    path, lineno, key);
		else if (r < 0)
			rc = perr_setx(err, -EINVAL, "%s:%d: %s: bad value \"%s\"", path, lineno,
				       key, val);
	}
	fclose(f);
	return rc;
}

static bool set_if_exists(char *dst, size_t size, const char *dir, const char *rel)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s/%s", dir, rel) >= (int)sizeof(p) || access(p, R_OK) < 0)
		return false;
	snprintf(dst, size, "%s", p);
	return true;
}

/* The first readable candidate, relative to the binary's directory: an
 * installed tree, then a build tree. vmlinux (PVH entry) boots faster than
 * bzImage, which must decompress itself first. */
static void set_first_existing(char *dst, size_t size, const char *exe_dir,
			       const char *const *candidates)
{
	if (dst[0])
		return;
	for (const char *const *c = candidates; *c; c++)
		if (set_if_exists(dst, size, exe_dir, *c))
			return;
}

void petrel_conf_default_guest(struct petrel_conf *conf, const char *exe_dir)
{
	static const char *const kernels[] = {
	    "../share/petrel/vmlinux",
	    "../share/petrel/bzImage",
	    "../guest/vmlinux",
	    "../guest/bzImage",
	    "../../build/guest/vmlinux",
	    "../../build/guest/bzImage",
	    NULL,
	};
	static const char *const initrds[] = {
	    "../share/petrel/agent-initramfs.cpio.gz",
	    "../guest/agent-initramfs.cpio.gz",
	    "../../build/guest/agent-initramfs.cpio.gz",
	    NULL,
	};
	set_first_existing(conf->kernel, sizeof(conf->kernel), exe_dir, kernels);
	set_first_existing(conf->initrd, sizeof(conf->initrd), exe_dir, initrds);
}
