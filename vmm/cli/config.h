/*
 * The validated, plain description of one VM, produced from argv by
 * vmm_config_parse() and consumed by vm_build(). Nothing here opens files:
 * parsing has no side effects.
 */
#ifndef PETREL_VMM_CONFIG_H
#define PETREL_VMM_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/error.h"

#define VMM_ID_MAX	64
#define VMM_NAME_MAX	255
#define VMM_CMDLINE_MAX 2048 /* x86 COMMAND_LINE_SIZE */
/* The user part of the command line (-append). The rest of VMM_CMDLINE_MAX is
 * kept for what the VMM appends: up to VMM_MICROVM_MAX_MMIO entries like
 * " virtio_mmio.device=512@0xd0000000:5" (about 40 bytes each) and the NUL. */
#define VMM_APPEND_MAX 1536
#define VMM_MIN_CPUS   1
#define VMM_MAX_CPUS   254
#define VMM_MIN_MEM    (256ull << 20)
#define VMM_MAX_MEM    (512ull << 30)

/* Per-VM limits of the seed document for MicroVm on x86. */
#define VMM_MICROVM_MAX_DISKS 6
#define VMM_MICROVM_MAX_NICS  2
#define VMM_MICROVM_MAX_MMIO  11
#define VMM_MAX_DRIVES	      16
#define VMM_MAX_CHARDEVS      8
#define VMM_MAX_IOTHREADS     8

enum vmm_machine_type {
	VMM_MACHINE_MICROVM,
};

enum vmm_chardev_backend {
	VMM_CHARDEV_STDIO,
	VMM_CHARDEV_PTY,
	VMM_CHARDEV_SOCKET,
	VMM_CHARDEV_FILE,
};

struct vmm_chardev {
	char id[VMM_ID_MAX];
	enum vmm_chardev_backend backend;
	char path[PATH_MAX]; /* socket or file */
	bool server;
	bool nowait;
};

struct vmm_drive {
	char id[VMM_ID_MAX];
	char file[PATH_MAX];
	bool readonly;	     /* default false */
	bool direct;	     /* O_DIRECT; default true, as in StratoVirt */
	uint64_t iops_total; /* 0: unlimited */
};

struct vmm_blk_device {
	char id[VMM_ID_MAX];	   /* default: the drive's id; unique among devices */
	char drive[VMM_ID_MAX];	   /* id of a struct vmm_drive */
	char serial[21];	   /* VIRTIO_BLK_ID_BYTES + NUL */
	char iothread[VMM_ID_MAX]; /* always "" until -object iothread exists */
};

enum vmm_serial_kind {
	VMM_SERIAL_NONE,
	VMM_SERIAL_STDIO,
	VMM_SERIAL_PTY,
	VMM_SERIAL_CHARDEV,
	VMM_SERIAL_FILE,
};

enum vmm_action {
	VMM_ACTION_RUN,
	VMM_ACTION_VERSION,
	VMM_ACTION_HELP,
};

struct vmm_config {
	enum vmm_action action;
	char name[VMM_NAME_MAX + 1];

	enum vmm_machine_type machine;
	bool dump_guest_core; /* default true */
	bool mem_share;	      /* default false */
	/* ACPI tables (MADT, DSDT with the virtio-mmio devices, HW-reduced FADT
	 * for poweroff) instead of virtio_mmio.device= parameters and the MP
	 * table alone; for distribution kernels. Default off. */
	bool acpi;

	unsigned cpus;	    /* default 1 */
	uint64_t mem_bytes; /* default 256 MiB */

	char kernel[PATH_MAX];
	char initrd[PATH_MAX];		  /* "" when none */
	char append[VMM_CMDLINE_MAX + 1]; /* user part of the kernel command line */

	struct vmm_drive drives[VMM_MAX_DRIVES];
	unsigned n_drives;
	struct vmm_blk_device blks[VMM_MICROVM_MAX_DISKS];
	unsigned n_blks;

	struct vmm_chardev chardevs[VMM_MAX_CHARDEVS];
	unsigned n_chardevs;

	enum vmm_serial_kind serial;	 /* default NONE */
	char serial_chardev[VMM_ID_MAX]; /* VMM_SERIAL_CHARDEV */
	char serial_path[PATH_MAX];	 /* VMM_SERIAL_FILE */

	char qmp_path[108]; /* sun_path; "" when no QMP */
	char logfile[PATH_MAX];
	bool log_set; /* -D given; logfile "" means stderr */
	char pidfile[PATH_MAX];
	bool daemonize;
	bool disable_seccomp;
	bool start_paused; /* -S */
};

/* Fills *cfg from argv (argv[0] is the program). On a bad value returns
 * -EINVAL with err->msg = "<option>: <what is wrong; what is allowed>". */
int vmm_config_parse(int argc, char *const argv[], struct vmm_config *cfg, struct perr *err);

/* Lookups used by vm_build; NULL when absent. */
const struct vmm_drive *vmm_config_find_drive(const struct vmm_config *cfg, const char *id);
const struct vmm_chardev *vmm_config_find_chardev(const struct vmm_config *cfg, const char *id);

/* The text printed by -help. */
void vmm_config_print_help(void);

#endif
