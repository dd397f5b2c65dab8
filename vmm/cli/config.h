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
#define VMM_MICROVM_MAX_DISKS	6
#define VMM_MICROVM_MAX_NICS	2
#define VMM_MICROVM_MAX_MMIO	11
#define VMM_MAX_DRIVES		16
#define VMM_MAX_CHARDEVS	8
#define VMM_MAX_IOTHREADS	8
#define VMM_MAX_NETDEVS		VMM_MICROVM_MAX_NICS
#define VMM_NET_MAX_QUEUE_PAIRS 8
#define VMM_IFNAME_MAX		16  /* IFNAMSIZ */
#define VMM_SUN_PATH_MAX	108 /* sizeof(sun_path) */
#define VMM_VSOCK_MIN_CID	3ull
#define VMM_VSOCK_MAX_CID	0xffffffffull

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
	char iothread[VMM_ID_MAX]; /* "" or the id of a struct vmm_iothread */
};

/* -netdev tap,id=,ifname=|fd=|fds=[,vhost=on|off][,vhostfd=][,queues=].
 * Exactly one of ifname, fd, fds is set. Inherited fds are not checked here. */
struct vmm_netdev {
	char id[VMM_ID_MAX];
	char ifname[VMM_IFNAME_MAX];	  /* "" when fd= or fds= */
	int fds[VMM_NET_MAX_QUEUE_PAIRS]; /* fd= (n_fds 1) or fds=a:b:c */
	unsigned n_fds;
	bool vhost;	 /* vhost=on: /dev/vhost-net when the host has it */
	int vhostfd;	 /* -1 when absent */
	unsigned queues; /* queue pairs, default 1 (or n_fds) */
};

/* -device virtio-net-device,netdev=,id=[,mac=][,iothread=] */
struct vmm_net_device {
	char id[VMM_ID_MAX];
	char netdev[VMM_ID_MAX];
	uint8_t mac[6];
	bool mac_set; /* false: the VMM derives a stable MAC from the VM name and id */
	char iothread[VMM_ID_MAX];
};

/* -device vhost-vsock-device,id=,guest-cid=N[,uds-path=PATH] */
struct vmm_vsock_device {
	bool present;
	char id[VMM_ID_MAX];
	uint64_t guest_cid; /* [3, 2^32 - 1] */
	/* Firecracker's hybrid vsock: forces the built-in device. "" when absent. */
	char uds_path[VMM_SUN_PATH_MAX];
};

/* -device virtio-serial-device[,id=] with -device virtconsole,chardev=,id= */
struct vmm_virtio_serial {
	bool present;
	char id[VMM_ID_MAX];
	bool console_present;
	char console_id[VMM_ID_MAX];
	char console_chardev[VMM_ID_MAX]; /* id of a struct vmm_chardev */
};

/* -device virtio-balloon-device[,id=][,deflate-on-oom=] */
struct vmm_balloon {
	bool present;
	char id[VMM_ID_MAX];
	bool deflate_on_oom; /* default false */
};

/* -object rng-random,id=,filename= with -device virtio-rng-device,rng=[,max-bytes=,period=] */
struct vmm_rng {
	bool object_present;
	char object_id[VMM_ID_MAX];
	char filename[PATH_MAX];
	bool present; /* the device */
	char id[VMM_ID_MAX];
	char rng[VMM_ID_MAX];
	uint64_t max_bytes; /* 0: unlimited; else max_bytes per period_ms */
	uint64_t period_ms;
};

/* -object iothread,id= */
struct vmm_iothread {
	char id[VMM_ID_MAX];
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

	struct vmm_netdev netdevs[VMM_MAX_NETDEVS];
	unsigned n_netdevs;
	struct vmm_net_device nets[VMM_MICROVM_MAX_NICS];
	unsigned n_nets;
	struct vmm_vsock_device vsock;
	struct vmm_virtio_serial virtio_serial;
	struct vmm_balloon balloon;
	struct vmm_rng rng;
	struct vmm_iothread iothreads[VMM_MAX_IOTHREADS];
	unsigned n_iothreads;
	char mem_path[PATH_MAX]; /* -mem-path: hugetlbfs directory; "" when absent */

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
	bool start_paused;	 /* -S */
	char incoming[PATH_MAX]; /* -incoming file:DIR: the snapshot directory; "" when absent */

	/* -petrel-container DIR[,notify-fd=N]: the runtime's container mode
	 * (docs/runtime.md). "" and -1 when absent. */
	char container_dir[PATH_MAX];
	int container_notify_fd;
};

/* Fills *cfg from argv (argv[0] is the program). On a bad value returns
 * -EINVAL with err->msg = "<option>: <what is wrong; what is allowed>". */
int vmm_config_parse(int argc, char *const argv[], struct vmm_config *cfg, struct perr *err);

/* Lookups used by vm_build; NULL when absent. */
const struct vmm_drive *vmm_config_find_drive(const struct vmm_config *cfg, const char *id);
const struct vmm_chardev *vmm_config_find_chardev(const struct vmm_config *cfg, const char *id);
const struct vmm_netdev *vmm_config_find_netdev(const struct vmm_config *cfg, const char *id);
const struct vmm_iothread *vmm_config_find_iothread(const struct vmm_config *cfg, const char *id);

/* The text printed by -help. */
void vmm_config_print_help(void);

#endif
