/*
 * /etc/petrel/petrel.conf (or $PETREL_CONF): the runtime's defaults, one
 * `key = value` per line, `#` comments. Keys: vmm, kernel, initrd, machine,
 * cpus, memory, memory_overhead, rootfs_margin, create_timeout, kernel_append,
 * debug_console, bridge, bridge_address, vm_templates. See docs/runtime.md and, for the
 * bridge, docs/network.md.
 */
#ifndef PETREL_RUNTIME_CONFIG_FILE_H
#define PETREL_RUNTIME_CONFIG_FILE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

#define PETREL_CONF_DEFAULT "/etc/petrel/petrel.conf"

struct petrel_conf {
	char path[PATH_MAX]; /* the file read; "" when none existed */
	char vmm[PATH_MAX];  /* "" : next to the petrel binary, then $PATH */
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
	char machine[32];	  /* "microvm" */
	unsigned cpus;		  /* 1 */
	uint64_t memory;	  /* bytes; 256 MiB */
	uint64_t memory_overhead; /* bytes added to linux.resources.memory.limit; 128 MiB */
	uint64_t rootfs_margin;	  /* bytes of free space in a built rootfs image; 256 MiB */
	unsigned create_timeout;  /* seconds create waits for the agent; 120 */
	char kernel_append[512];  /* extra kernel command line */
	bool vm_templates;	  /* restore a booted guest instead of booting; on */
	/* Bridge mode (no network namespace in config.json, docs/network.md). */
	char bridge[16];	 /* "petrel0"; "none": such containers get no NIC */
	char bridge_address[64]; /* the bridge's IPv4 address/prefix; "10.87.0.1/24" */
};

#define PETREL_CONF_BRIDGE	   "petrel0"
#define PETREL_CONF_BRIDGE_ADDRESS "10.87.0.1/24"

/* Fills *conf with the defaults, then reads path ($PETREL_CONF, else
 * PETREL_CONF_DEFAULT when path is NULL). A missing default file is fine; a
 * missing explicit file, an unknown key or a bad value is an error naming
 * file:line. */
int petrel_conf_load(const char *path, struct petrel_conf *conf, struct perr *err);

/* "512" (MiB), "512M", "1G", "1073741824B", "64k"; suffixes K/M/G/T with an
 * optional "i"/"iB"/"B". -EINVAL when malformed or zero. */
int petrel_parse_size(const char *s, uint64_t *bytes);

/* Fills the default kernel and initrd when the config left them empty:
 * PREFIX/share/petrel/{vmlinux,bzImage,agent-initramfs.cpio.gz} next to
 * exe_dir, else the source tree's build dir (exe_dir/../guest/). */
void petrel_conf_default_guest(struct petrel_conf *conf, const char *exe_dir);

#endif
