/*
 * petrel-vmm's command line: argv -> a validated struct vmm_config.
 *
 * Everything an option accepts is in a table in this file: cli_options[] for
 * the options themselves, and one struct cli_key table per key=value option
 * (drive_keys[], blk_device_keys[], chardev_socket_keys[], ...). Parsing has
 * no side effects: no file is opened, checked or created here; references
 * between options (-device drive=, -serial chardev:) are resolved after the
 * whole command line is read, so their order does not matter.
 *
 * The grammar follows StratoVirt's for lightweight VMs, which follows QEMU's.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../common/cleanup.h"
#include "../../common/mac.h"
#include "../core/snapshot.h"
#include "keyval.h"

#define CLI_MAX_OPTIONS 40

struct cli_parse {
	struct vmm_config *cfg;
	struct perr *err;
	/* The options seen, by index in cli_options[], as the user typed them. */
	const char *typed[CLI_MAX_OPTIONS];
};

enum cli_arg {
	CLI_ARG_NONE,
	CLI_ARG_REQUIRED,
	CLI_ARG_OPTIONAL, /* taken when the next word does not start with '-' */
};

struct cli_option;
typedef int (*cli_handler)(struct cli_parse *p, const struct cli_option *o, const char *opt,
			   const char *arg);

struct cli_option {
	const char *name; /* without the leading '-'; "--name" is accepted too */
	enum cli_arg arg;
	bool repeatable;
	cli_handler handle;
	size_t offset, size; /* the struct vmm_config field a plain option sets */
	/* For -help and "missing argument": a key table, or a list of forms. */
	const struct cli_key *keys;
	size_t nkeys;
	const char *implicit;
	void (*print_forms)(FILE *out);
	const char *arg_name; /* plain options: "PATH", "NAME" */
	const char *help;
};

/* ------------------------------------------------------------------------ */
/* Key tables: what each key=value option accepts.                            */
/* ------------------------------------------------------------------------ */

static const char *const machine_types[] = {"microvm", NULL}; /* enum vmm_machine_type */
static const char *const machine_accels[] = {"kvm", NULL};

static const struct cli_key machine_keys[] = {
    {"type", CLI_CHOICE, .required = true, .choices = machine_types,
     CLI_SETS(struct vmm_config, machine)},
    {"dump-guest-core", CLI_BOOL, CLI_SETS(struct vmm_config, dump_guest_core)},
    {"mem-share", CLI_BOOL, CLI_SETS(struct vmm_config, mem_share)},
    {"acpi", CLI_BOOL, CLI_SETS(struct vmm_config, acpi)},
    {"accel", CLI_CHOICE, .choices = machine_accels},
};

/* StratoVirt's topology keys are accepted (libvirt writes them) and checked,
 * but a microvm has no CPU hotplug: maxcpus must equal cpus. */
struct smp_opts {
	unsigned cpus, maxcpus, sockets, dies, clusters, cores, threads;
};

#define SMP_RANGE .min = VMM_MIN_CPUS, .max = VMM_MAX_CPUS

static const struct cli_key smp_keys[] = {
    {"cpus", CLI_UINT, SMP_RANGE, CLI_SETS(struct smp_opts, cpus)},
    {"maxcpus", CLI_UINT, SMP_RANGE, CLI_SETS(struct smp_opts, maxcpus)},
    {"sockets", CLI_UINT, SMP_RANGE, CLI_SETS(struct smp_opts, sockets)},
    {"dies", CLI_UINT, SMP_RANGE, CLI_SETS(struct smp_opts, dies)},
    {"clusters", CLI_UINT, SMP_RANGE, CLI_SETS(struct smp_opts, clusters)},
    {"cores", CLI_UINT, SMP_RANGE, CLI_SETS(struct smp_opts, cores)},
    {"threads", CLI_UINT, SMP_RANGE, CLI_SETS(struct smp_opts, threads)},
};
/* Bits of the "given" mask, in smp_keys[] order. */
enum { SMP_CPUS, SMP_MAXCPUS, SMP_SOCKETS, SMP_DIES, SMP_CLUSTERS, SMP_CORES, SMP_THREADS };

static const struct cli_key mem_keys[] = {
    {"size", CLI_MEMSIZE, .required = true, .min = VMM_MIN_MEM, .max = VMM_MAX_MEM,
     CLI_SETS(struct vmm_config, mem_bytes)},
};

static const char *const drive_ifs[] = {"none", NULL};
static const char *const drive_formats[] = {"raw", NULL};

static const struct cli_key drive_keys[] = {
    {"id", CLI_ID, .required = true, CLI_SETS(struct vmm_drive, id)},
    {"file", CLI_PATH, .required = true, CLI_SETS(struct vmm_drive, file)},
    {"readonly", CLI_BOOL, CLI_SETS(struct vmm_drive, readonly)},
    {"direct", CLI_BOOL, CLI_SETS(struct vmm_drive, direct)}, /* default on */
    {"throttling.iops-total", CLI_UINT, .min = 0, .max = 1000000,
     CLI_SETS(struct vmm_drive, iops_total)},
    {"if", CLI_CHOICE, .choices = drive_ifs},
    {"format", CLI_CHOICE, .choices = drive_formats},
};

/* -device virtio-blk-device. bootindex is for libvirt: a microvm boots its
 * kernel directly, so it is checked and has no effect. */
static const struct cli_key blk_device_keys[] = {
    {"drive", CLI_ID, .required = true, CLI_SETS(struct vmm_blk_device, drive)},
    {"id", CLI_ID, CLI_SETS(struct vmm_blk_device, id)},
    {"serial", CLI_STRING, CLI_SETS(struct vmm_blk_device, serial)}, /* 20 bytes */
    {"iothread", CLI_ID, CLI_SETS(struct vmm_blk_device, iothread)},
    {"bootindex", CLI_UINT, .min = 0, .max = 255},
};

/* The socket path is bound later: it must fit sun_path with its NUL. */
#define CLI_SUN_PATH_MAX (VMM_SUN_PATH_MAX - 1)

/* -device virtio-net-device. mac is parsed by net_device_add. */
struct net_device_opts {
	struct vmm_net_device dev;
	char mac[32];
};
static const struct cli_key net_device_keys[] = {
    {"netdev", CLI_ID, .required = true, CLI_SETS(struct net_device_opts, dev.netdev)},
    {"id", CLI_ID, CLI_SETS(struct net_device_opts, dev.id)},
    {"mac", CLI_STRING, CLI_SETS(struct net_device_opts, mac)},
    {"iothread", CLI_ID, CLI_SETS(struct net_device_opts, dev.iothread)},
    {"bootindex", CLI_UINT, .min = 0, .max = 255},
};

static const struct cli_key vsock_device_keys[] = {
    {"id", CLI_ID, .required = true, CLI_SETS(struct vmm_vsock_device, id)},
    {"guest-cid", CLI_UINT, .required = true, .min = VMM_VSOCK_MIN_CID, .max = VMM_VSOCK_MAX_CID,
     CLI_SETS(struct vmm_vsock_device, guest_cid)},
    {"uds-path", CLI_PATH, .max = CLI_SUN_PATH_MAX, CLI_SETS(struct vmm_vsock_device, uds_path)},
};

static const struct cli_key virtio_serial_keys[] = {
    {"id", CLI_ID, CLI_SETS(struct vmm_virtio_serial, id)},
};

static const struct cli_key virtconsole_keys[] = {
    {"chardev", CLI_ID, .required = true, CLI_SETS(struct vmm_virtio_serial, console_chardev)},
    {"id", CLI_ID, .required = true, CLI_SETS(struct vmm_virtio_serial, console_id)},
};

static const struct cli_key balloon_keys[] = {
    {"id", CLI_ID, CLI_SETS(struct vmm_balloon, id)},
    {"deflate-on-oom", CLI_BOOL, CLI_SETS(struct vmm_balloon, deflate_on_oom)},
};

/* Rate limit of virtio-rng: max-bytes per period milliseconds, both or neither. */
#define RNG_MAX_PERIOD_MS 1000000ull
static const struct cli_key rng_device_keys[] = {
    {"rng", CLI_ID, .required = true, CLI_SETS(struct vmm_rng, rng)},
    {"id", CLI_ID, CLI_SETS(struct vmm_rng, id)},
    {"max-bytes", CLI_UINT, .min = 1, .max = UINT32_MAX, CLI_SETS(struct vmm_rng, max_bytes)},
    {"period", CLI_UINT, .min = 1, .max = RNG_MAX_PERIOD_MS, CLI_SETS(struct vmm_rng, period_ms)},
};

/* -netdev tap. fd and fds are parsed by handle_netdev. */
struct netdev_opts {
	struct vmm_netdev nd;
	uint64_t fd;
	char fds[128];
	uint64_t vhostfd;
};
static const struct cli_key netdev_tap_keys[] = {
    {"id", CLI_ID, .required = true, CLI_SETS(struct netdev_opts, nd.id)},
    {"ifname", CLI_STRING, CLI_SETS(struct netdev_opts, nd.ifname)},
    {"fd", CLI_UINT, .min = 0, .max = INT_MAX, CLI_SETS(struct netdev_opts, fd)},
    {"fds", CLI_STRING, CLI_SETS(struct netdev_opts, fds)},
    {"vhost", CLI_BOOL, CLI_SETS(struct netdev_opts, nd.vhost)},
    {"vhostfd", CLI_UINT, .min = 0, .max = INT_MAX, CLI_SETS(struct netdev_opts, vhostfd)},
    {"queues", CLI_UINT, .min = 1, .max = VMM_NET_MAX_QUEUE_PAIRS,
     CLI_SETS(struct netdev_opts, nd.queues)},
};
enum { NETDEV_ID, NETDEV_IFNAME, NETDEV_FD, NETDEV_FDS, NETDEV_VHOST, NETDEV_VHOSTFD };

static const struct cli_key object_iothread_keys[] = {
    {"id", CLI_ID, .required = true, CLI_SETS(struct vmm_iothread, id)},
};
static const struct cli_key object_rng_keys[] = {
    {"id", CLI_ID, .required = true, CLI_SETS(struct vmm_rng, object_id)},
    {"filename", CLI_PATH, .required = true, CLI_SETS(struct vmm_rng, filename)},
};

/* -petrel-container DIR[,notify-fd=N]: the runtime's container mode. */
struct container_opts {
	char dir[PATH_MAX];
	uint64_t notify_fd;
};
static const struct cli_key container_keys[] = {
    {"dir", CLI_PATH, .required = true, CLI_SETS(struct container_opts, dir)},
    {"notify-fd", CLI_UINT, .min = 3, .max = INT_MAX, CLI_SETS(struct container_opts, notify_fd)},
};

static const struct cli_key chardev_plain_keys[] = {
    {"id", CLI_ID, .required = true, CLI_SETS(struct vmm_chardev, id)},
};
static const struct cli_key chardev_socket_keys[] = {
    {"id", CLI_ID, .required = true, CLI_SETS(struct vmm_chardev, id)},
    {"path", CLI_PATH, .required = true, .max = CLI_SUN_PATH_MAX,
     CLI_SETS(struct vmm_chardev, path)},
    {"server", CLI_BOOL, CLI_SETS(struct vmm_chardev, server)},
    {"nowait", CLI_BOOL, CLI_SETS(struct vmm_chardev, nowait)},
};
static const struct cli_key chardev_file_keys[] = {
    {"id", CLI_ID, .required = true, CLI_SETS(struct vmm_chardev, id)},
    {"path", CLI_PATH, .required = true, CLI_SETS(struct vmm_chardev, path)},
};

struct cli_chardev_backend {
	const char *name;
	enum vmm_chardev_backend backend;
	const struct cli_key *keys;
	size_t nkeys;
};

static const struct cli_chardev_backend chardev_backends[] = {
    {"stdio", VMM_CHARDEV_STDIO, chardev_plain_keys, ARRAY_SIZE(chardev_plain_keys)},
    {"pty", VMM_CHARDEV_PTY, chardev_plain_keys, ARRAY_SIZE(chardev_plain_keys)},
    {"socket", VMM_CHARDEV_SOCKET, chardev_socket_keys, ARRAY_SIZE(chardev_socket_keys)},
    {"file", VMM_CHARDEV_FILE, chardev_file_keys, ARRAY_SIZE(chardev_file_keys)},
};

/* -serial KIND[,keys]; "chardev:ID" is the one form with a ':'. */
static const struct cli_key serial_file_keys[] = {
    {"path", CLI_PATH, .required = true, CLI_SETS(struct vmm_config, serial_path)},
};

struct cli_serial_kind {
	const char *name;
	enum vmm_serial_kind kind;
	const struct cli_key *keys;
	size_t nkeys;
};

static const struct cli_serial_kind serial_kinds[] = {
    {"stdio", VMM_SERIAL_STDIO, NULL, 0},
    {"pty", VMM_SERIAL_PTY, NULL, 0},
    {"file", VMM_SERIAL_FILE, serial_file_keys, ARRAY_SIZE(serial_file_keys)},
    {"none", VMM_SERIAL_NONE, NULL, 0},
};

/* -qmp unix:PATH,server,nowait. Both flags are required, as in StratoVirt:
 * petrel-vmm always listens (it never connects out to a monitor) and never
 * holds the guest back waiting for a client. Requiring the words keeps a
 * QEMU command line meaning the same thing here. */
struct qmp_opts {
	bool server, nowait;
};
static const struct cli_key qmp_keys[] = {
    {"server", CLI_BOOL, CLI_SETS(struct qmp_opts, server)},
    {"nowait", CLI_BOOL, CLI_SETS(struct qmp_opts, nowait)},
};

/* -device drivers. The next devices are entries here: a key table and an
 * add function that places the device in struct vmm_config. */
struct cli_device_driver {
	const char *name;
	const struct cli_key *keys;
	size_t nkeys;
	int (*add)(struct cli_parse *p, const struct cli_device_driver *drv,
		   const struct cli_kv *kv);
	/* single_device_add: the struct vmm_config member the keys fill, and
	 * its "present" flag (at most one such device per VM). */
	size_t object_offset, present_offset;
};

static int blk_device_add(struct cli_parse *p, const struct cli_device_driver *drv,
			  const struct cli_kv *kv);
static int net_device_add(struct cli_parse *p, const struct cli_device_driver *drv,
			  const struct cli_kv *kv);
static int single_device_add(struct cli_parse *p, const struct cli_device_driver *drv,
			     const struct cli_kv *kv);

#define DRIVER_KEYS(table) table, ARRAY_SIZE(table)
#define SINGLE(member, flag)                                    \
	single_device_add, offsetof(struct vmm_config, member), \
	    offsetof(struct vmm_config, member) +               \
		offsetof(__typeof__(((struct vmm_config *)0)->member), flag)
static const struct cli_device_driver device_drivers[] = {
    {"virtio-blk-device", DRIVER_KEYS(blk_device_keys), blk_device_add, 0, 0},
    {"virtio-net-device", DRIVER_KEYS(net_device_keys), net_device_add, 0, 0},
    {"vhost-vsock-device", DRIVER_KEYS(vsock_device_keys), SINGLE(vsock, present)},
    {"virtio-serial-device", DRIVER_KEYS(virtio_serial_keys), SINGLE(virtio_serial, present)},
    {"virtconsole", DRIVER_KEYS(virtconsole_keys), SINGLE(virtio_serial, console_present)},
    {"virtio-balloon-device", DRIVER_KEYS(balloon_keys), SINGLE(balloon, present)},
    {"virtio-rng-device", DRIVER_KEYS(rng_device_keys), SINGLE(rng, present)},
};

/* Known StratoVirt drivers that petrel-vmm does not have yet. */
static const char *const device_drivers_planned[] = {
    "virtio-blk-mmio",
    "virtio-blk-pci",
    "virtio-net-pci",
    "vhost-user-blk-pci",
    "vhost-vsock-pci",
    "vfio-pci",
    NULL,
};

/* ------------------------------------------------------------------------ */
/* Option handlers                                                            */
/* ------------------------------------------------------------------------ */

/* Frees a struct cli_kv at scope exit. */
static void cli_kv_releasep(struct cli_kv *kv)
{
	cli_kv_release(kv);
}
#define autokv __attribute__((cleanup(cli_kv_releasep)))

static char *cfg_field(struct cli_parse *p, const struct cli_option *o)
{
	return (char *)p->cfg + o->offset;
}

static int handle_path(struct cli_parse *p, const struct cli_option *o, const char *opt,
		       const char *arg)
{
	size_t len = strlen(arg);
	if (!len)
		return perr_setx(p->err, -EINVAL, "%s: empty path", opt);
	if (len >= o->size)
		return perr_setx(p->err, -EINVAL,
				 "%s: path is too long (%zu bytes); allowed: at most %zu", opt, len,
				 o->size - 1);
	memcpy(cfg_field(p, o), arg, len + 1);
	return 0;
}

static int handle_flag(struct cli_parse *p, const struct cli_option *o, const char *opt,
		       const char *arg)
{
	(void)opt;
	(void)arg;
	bool on = true;
	memcpy(cfg_field(p, o), &on, sizeof(on));
	return 0;
}

static int handle_name(struct cli_parse *p, const struct cli_option *o, const char *opt,
		       const char *arg)
{
	(void)o;
	size_t len = strlen(arg);
	if (len < 1 || len > VMM_NAME_MAX)
		return perr_setx(p->err, -EINVAL, "%s: %s (%zu bytes); allowed: 1 to %d bytes", opt,
				 len ? "name is too long" : "empty name", len, VMM_NAME_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)arg[i] < 0x20 || arg[i] == 0x7f)
			return perr_setx(p->err, -EINVAL,
					 "%s: the name contains a control character; allowed: "
					 "printable characters",
					 opt);
	memcpy(p->cfg->name, arg, len + 1);
	return 0;
}

static int handle_append(struct cli_parse *p, const struct cli_option *o, const char *opt,
			 const char *arg)
{
	(void)o;
	size_t len = strlen(arg);
	if (len > VMM_APPEND_MAX)
		return perr_setx(
		    p->err, -EINVAL,
		    "%s: the command line is too long (%zu bytes); allowed: at most %d "
		    "(the rest of %d is kept for the virtio_mmio.device= entries)",
		    opt, len, VMM_APPEND_MAX, VMM_CMDLINE_MAX);
	memcpy(p->cfg->append, arg, len + 1);
	return 0;
}

/* Options that are one key table applied to struct vmm_config (-machine, -m). */
static int handle_keys(struct cli_parse *p, const struct cli_option *o, const char *opt,
		       const char *arg)
{
	autokv struct cli_kv kv;
	int rc = cli_kv_split(&kv, opt, arg, p->err);
	if (rc < 0)
		return rc;
	return cli_kv_apply(&kv, 0, o->implicit, o->keys, o->nkeys, p->cfg, NULL, p->err);
}

/* What is left for one topology level: cpus / the others, at least 1. */
static unsigned smp_share(unsigned cpus, unsigned long long others)
{
	unsigned long long share = cpus / others;
	return share ? (unsigned)share : 1;
}

static int handle_smp(struct cli_parse *p, const struct cli_option *o, const char *opt,
		      const char *arg)
{
	struct smp_opts smp = {0};
	uint64_t given = 0;
	autokv struct cli_kv kv;
	int rc = cli_kv_split(&kv, opt, arg, p->err);
	if (rc < 0)
		return rc;
	rc = cli_kv_apply(&kv, 0, o->implicit, o->keys, o->nkeys, &smp, &given, p->err);
	if (rc < 0)
		return rc;

	if (!(given & (1u << SMP_CPUS))) {
		if (!(given & (1u << SMP_MAXCPUS)))
			return perr_setx(p->err, -EINVAL, "%s: missing key 'cpus'", opt);
		smp.cpus = smp.maxcpus;
	}
	if ((given & (1u << SMP_MAXCPUS)) && smp.maxcpus != smp.cpus)
		return perr_setx(p->err, -EINVAL,
				 "%s: maxcpus=%u differs from cpus=%u; allowed: maxcpus equal to "
				 "cpus (microvm has no CPU hotplug)",
				 opt, smp.maxcpus, smp.cpus);

	/* Fill the unset topology levels as QEMU does (threads, dies, clusters
	 * default to 1; sockets or cores take the rest), then check the product. */
	unsigned threads = (given & (1u << SMP_THREADS)) ? smp.threads : 1;
	unsigned dies = (given & (1u << SMP_DIES)) ? smp.dies : 1;
	unsigned clusters = (given & (1u << SMP_CLUSTERS)) ? smp.clusters : 1;
	bool has_sockets = given & (1u << SMP_SOCKETS);
	bool has_cores = given & (1u << SMP_CORES);
	unsigned long long below = (unsigned long long)threads * dies * clusters;
	unsigned sockets = smp.sockets, cores = smp.cores;
	if (!has_sockets && !has_cores) {
		cores = 1;
		sockets = smp_share(smp.cpus, below);
	} else if (!has_sockets) {
		sockets = smp_share(smp.cpus, below * cores);
	} else if (!has_cores) {
		cores = smp_share(smp.cpus, below * sockets);
	}
	unsigned long long product = below * sockets * cores;
	if (product != smp.cpus)
		return perr_setx(p->err, -EINVAL,
				 "%s: sockets (%u) * dies (%u) * clusters (%u) * cores (%u) * "
				 "threads (%u) = %llu; allowed: a product equal to cpus (%u)",
				 opt, sockets, dies, clusters, cores, threads, product, smp.cpus);
	p->cfg->cpus = smp.cpus;
	return 0;
}

static int handle_drive(struct cli_parse *p, const struct cli_option *o, const char *opt,
			const char *arg)
{
	struct vmm_config *cfg = p->cfg;
	if (cfg->n_drives == VMM_MAX_DRIVES)
		return perr_setx(p->err, -EINVAL, "%s: too many drives; allowed: at most %d", opt,
				 VMM_MAX_DRIVES);
	autokv struct cli_kv kv;
	int rc = cli_kv_split(&kv, opt, arg, p->err);
	if (rc < 0)
		return rc;
	struct vmm_drive *drive = &cfg->drives[cfg->n_drives];
	memset(drive, 0, sizeof(*drive));
	drive->direct = true; /* StratoVirt's default: O_DIRECT unless direct=off */
	rc = cli_kv_apply(&kv, 0, NULL, o->keys, o->nkeys, drive, NULL, p->err);
	if (rc < 0)
		return rc;
	if (vmm_config_find_drive(cfg, drive->id))
		return perr_setx(p->err, -EINVAL,
				 "%s: duplicate id '%s'; each drive needs its own id", opt,
				 drive->id);
	cfg->n_drives++;
	return 0;
}

static int blk_device_add(struct cli_parse *p, const struct cli_device_driver *drv,
			  const struct cli_kv *kv)
{
	struct vmm_config *cfg = p->cfg;
	if (cfg->n_blks == VMM_MICROVM_MAX_DISKS)
		return perr_setx(p->err, -EINVAL,
				 "%s: too many %s devices; allowed: at most %d on microvm", kv->opt,
				 drv->name, VMM_MICROVM_MAX_DISKS);
	struct vmm_blk_device *blk = &cfg->blks[cfg->n_blks];
	memset(blk, 0, sizeof(*blk));
	int rc = cli_kv_apply(kv, 1, NULL, drv->keys, drv->nkeys, blk, NULL, p->err);
	if (rc < 0)
		return rc;
	cfg->n_blks++;
	return 0;
}

/* A MAC in mac_parse's form; a multicast address is refused. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	if (mac_parse(s, mac) < 0)
		return -EINVAL;
	return (mac[0] & 1) ? -EINVAL : 0;
}

static int net_device_add(struct cli_parse *p, const struct cli_device_driver *drv,
			  const struct cli_kv *kv)
{
	struct vmm_config *cfg = p->cfg;
	if (cfg->n_nets == VMM_MICROVM_MAX_NICS)
		return perr_setx(p->err, -EINVAL,
				 "%s: too many %s devices; allowed: at most %d on microvm", kv->opt,
				 drv->name, VMM_MICROVM_MAX_NICS);
	struct net_device_opts o;
	memset(&o, 0, sizeof(o));
	int rc = cli_kv_apply(kv, 1, NULL, drv->keys, drv->nkeys, &o, NULL, p->err);
	if (rc < 0)
		return rc;
	if (o.mac[0]) {
		if (parse_mac(o.mac, o.dev.mac) < 0)
			return perr_setx(p->err, -EINVAL,
					 "%s: mac '%.40s' is not valid; allowed: six hex bytes "
					 "separated by ':' (52:54:00:12:34:56), not multicast",
					 kv->opt, o.mac);
		o.dev.mac_set = true;
	}
	cfg->nets[cfg->n_nets++] = o.dev;
	return 0;
}

/* The devices a VM has at most one of: their keys fill a struct vmm_config member. */
static int single_device_add(struct cli_parse *p, const struct cli_device_driver *drv,
			     const struct cli_kv *kv)
{
	bool *present = (bool *)((char *)p->cfg + drv->present_offset);
	if (*present)
		return perr_setx(p->err, -EINVAL, "%s: a second %s; allowed: at most one per VM",
				 kv->opt, drv->name);
	int rc = cli_kv_apply(kv, 1, NULL, drv->keys, drv->nkeys,
			      (char *)p->cfg + drv->object_offset, NULL, p->err);
	if (rc < 0)
		return rc;
	*present = true;
	return 0;
}

/* "3:4:5" -> fds[]; each a decimal fd, at most VMM_NET_MAX_QUEUE_PAIRS. */
static int parse_fd_list(const char *s, int *fds, unsigned *n)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", s);
	*n = 0;
	char *save = NULL;
	size_t len = strlen(buf);
	if (!len || buf[0] == ':' || buf[len - 1] == ':' || strstr(buf, "::"))
		return -EINVAL;
	for (char *tok = strtok_r(buf, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		uint64_t v;
		if (*n == VMM_NET_MAX_QUEUE_PAIRS || cli_parse_u64(tok, &v) < 0 || v > INT_MAX)
			return -EINVAL;
		fds[(*n)++] = (int)v;
	}
	return 0;
}

static int handle_netdev(struct cli_parse *p, const struct cli_option *o, const char *opt,
			 const char *arg)
{
	struct vmm_config *cfg = p->cfg;
	autokv struct cli_kv kv;
	int rc = cli_kv_split(&kv, opt, arg, p->err);
	if (rc < 0)
		return rc;
	const struct cli_item *first = &kv.items[0];
	const char *type =
	    first->value && strcmp(first->key, "type") == 0 ? first->value : first->raw;
	if (strcmp(type, "tap") != 0)
		return perr_setx(p->err, -EINVAL, "%s: unknown type '%.200s'; allowed: tap", opt,
				 type);
	if (cfg->n_netdevs == VMM_MAX_NETDEVS)
		return perr_setx(p->err, -EINVAL, "%s: too many netdevs; allowed: at most %d", opt,
				 VMM_MAX_NETDEVS);

	struct netdev_opts n;
	memset(&n, 0, sizeof(n));
	uint64_t given = 0;
	rc = cli_kv_apply(&kv, 1, NULL, o->keys, o->nkeys, &n, &given, p->err);
	if (rc < 0)
		return rc;
	struct vmm_netdev *nd = &n.nd;
	unsigned sources = !!(given & (1u << NETDEV_IFNAME)) + !!(given & (1u << NETDEV_FD)) +
			   !!(given & (1u << NETDEV_FDS));
	if (sources != 1)
		return perr_setx(
		    p->err, -EINVAL,
		    "%s: netdev '%s' needs exactly one of ifname=, fd=, fds= (%u given)", opt,
		    nd->id, sources);
	if (given & (1u << NETDEV_FD)) {
		nd->fds[0] = (int)n.fd;
		nd->n_fds = 1;
	} else if (given & (1u << NETDEV_FDS)) {
		if (parse_fd_list(n.fds, nd->fds, &nd->n_fds) < 0)
			return perr_setx(p->err, -EINVAL,
					 "%s: fds '%.100s' is not valid; allowed: 1 to %d file "
					 "descriptor numbers separated by ':'",
					 opt, n.fds, VMM_NET_MAX_QUEUE_PAIRS);
	}
	nd->vhostfd = -1;
	if (given & (1u << NETDEV_VHOSTFD)) {
		if ((given & (1u << NETDEV_VHOST)) && !nd->vhost)
			return perr_setx(p->err, -EINVAL,
					 "%s: vhostfd= with vhost=off; allowed: vhostfd only with "
					 "vhost=on",
					 opt);
		nd->vhost = true;
		nd->vhostfd = (int)n.vhostfd;
	}
	if (!nd->queues)
		nd->queues = nd->n_fds > 1 ? nd->n_fds : 1;
	else if (nd->n_fds > 1 && nd->queues != nd->n_fds)
		return perr_setx(p->err, -EINVAL,
				 "%s: queues=%u but %u fds; allowed: one fd per queue pair", opt,
				 nd->queues, nd->n_fds);
	if (vmm_config_find_netdev(cfg, nd->id))
		return perr_setx(p->err, -EINVAL,
				 "%s: duplicate id '%s'; each netdev needs its own id", opt,
				 nd->id);
	cfg->netdevs[cfg->n_netdevs++] = *nd;
	return 0;
}

static int handle_object(struct cli_parse *p, const struct cli_option *o, const char *opt,
			 const char *arg)
{
	(void)o;
	struct vmm_config *cfg = p->cfg;
	autokv struct cli_kv kv;
	int rc = cli_kv_split(&kv, opt, arg, p->err);
	if (rc < 0)
		return rc;
	const char *type = kv.items[0].raw;
	if (strcmp(type, "iothread") == 0) {
		if (cfg->n_iothreads == VMM_MAX_IOTHREADS)
			return perr_setx(p->err, -EINVAL,
					 "%s: too many iothreads; allowed: at most %d", opt,
					 VMM_MAX_IOTHREADS);
		struct vmm_iothread it;
		memset(&it, 0, sizeof(it));
		rc = cli_kv_apply(&kv, 1, NULL, object_iothread_keys,
				  ARRAY_SIZE(object_iothread_keys), &it, NULL, p->err);
		if (rc < 0)
			return rc;
		if (vmm_config_find_iothread(cfg, it.id))
			return perr_setx(p->err, -EINVAL,
					 "%s: duplicate id '%s'; each iothread needs its own id",
					 opt, it.id);
		cfg->iothreads[cfg->n_iothreads++] = it;
		return 0;
	}
	if (strcmp(type, "rng-random") == 0) {
		if (cfg->rng.object_present)
			return perr_setx(p->err, -EINVAL,
					 "%s: a second rng-random object; allowed: at most one "
					 "(one virtio-rng device per VM)",
					 opt);
		rc = cli_kv_apply(&kv, 1, NULL, object_rng_keys, ARRAY_SIZE(object_rng_keys),
				  &cfg->rng, NULL, p->err);
		if (rc < 0)
			return rc;
		cfg->rng.object_present = true;
		return 0;
	}
	return perr_setx(p->err, -EINVAL,
			 "%s: unknown object type '%.200s'; allowed: iothread, "
			 "rng-random",
			 opt, type);
}

static int handle_mem_path(struct cli_parse *p, const struct cli_option *o, const char *opt,
			   const char *arg)
{
	if (arg[0] != '/')
		return perr_setx(p->err, -EINVAL,
				 "%s: '%.200s' is not an absolute path; allowed: an absolute path "
				 "to a hugetlbfs directory",
				 opt, arg);
	return handle_path(p, o, opt, arg);
}

/* -incoming file:DIR, as StratoVirt spells a snapshot to restore. */
static int handle_incoming(struct cli_parse *p, const struct cli_option *o, const char *opt,
			   const char *arg)
{
	const char *dir = snapshot_uri_dir(arg);
	if (!dir)
		return perr_setx(
		    p->err, -EINVAL,
		    "%s: '%.200s' is not a snapshot URI; allowed: file:DIR (a directory "
		    "written by QMP migrate)",
		    opt, arg);
	return handle_path(p, o, opt, dir);
}

static int handle_container(struct cli_parse *p, const struct cli_option *o, const char *opt,
			    const char *arg)
{
	struct container_opts c;
	memset(&c, 0, sizeof(c));
	uint64_t given = 0;
	autokv struct cli_kv kv;
	int rc = cli_kv_split(&kv, opt, arg, p->err);
	if (rc < 0)
		return rc;
	rc = cli_kv_apply(&kv, 0, o->implicit, o->keys, o->nkeys, &c, &given, p->err);
	if (rc < 0)
		return rc;
	if (c.dir[0] != '/')
		return perr_setx(p->err, -EINVAL,
				 "%s: '%.200s' is not an absolute path; allowed: the container's "
				 "state directory",
				 opt, c.dir);
	memcpy(p->cfg->container_dir, c.dir, sizeof(c.dir));
	p->cfg->container_notify_fd = (given & 2u) ? (int)c.notify_fd : -1;
	return 0;
}

static int handle_device(struct cli_parse *p, const struct cli_option *o, const char *opt,
			 const char *arg)
{
	(void)o;
	autokv struct cli_kv kv;
	int rc = cli_kv_split(&kv, opt, arg, p->err);
	if (rc < 0)
		return rc;

	/* The driver comes first, bare ("virtio-blk-device") or as driver=. */
	const struct cli_item *first = &kv.items[0];
	const char *driver = first->raw;
	if (first->value) {
		if (strcmp(first->key, "driver") != 0)
			return perr_setx(
			    p->err, -EINVAL,
			    "%s: the driver must come first; syntax: DRIVER,key=value...", opt);
		driver = first->value;
	}

	char allowed[256] = "";
	for (size_t i = 0; i < ARRAY_SIZE(device_drivers); i++) {
		if (strcmp(driver, device_drivers[i].name) == 0)
			return device_drivers[i].add(p, &device_drivers[i], &kv);
		snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s",
			 i ? ", " : "", device_drivers[i].name);
	}
	for (size_t i = 0; device_drivers_planned[i]; i++)
		if (strcmp(driver, device_drivers_planned[i]) == 0)
			return perr_setx(p->err, -EINVAL,
					 "%s: driver '%s' is not supported yet; supported: %s", opt,
					 driver, allowed);
	return perr_setx(p->err, -EINVAL, "%s: unknown driver '%.200s'; supported: %s", opt, driver,
			 allowed);
}

static int handle_chardev(struct cli_parse *p, const struct cli_option *o, const char *opt,
			  const char *arg)
{
	(void)o;
	struct vmm_config *cfg = p->cfg;
	if (cfg->n_chardevs == VMM_MAX_CHARDEVS)
		return perr_setx(p->err, -EINVAL, "%s: too many chardevs; allowed: at most %d", opt,
				 VMM_MAX_CHARDEVS);
	autokv struct cli_kv kv;
	int rc = cli_kv_split(&kv, opt, arg, p->err);
	if (rc < 0)
		return rc;

	const char *name = kv.items[0].raw;
	const struct cli_chardev_backend *be = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(chardev_backends); i++)
		if (strcmp(name, chardev_backends[i].name) == 0)
			be = &chardev_backends[i];
	if (!be)
		return perr_setx(p->err, -EINVAL,
				 "%s: unknown backend '%.200s'; allowed: stdio, pty, socket, file",
				 opt, name);

	struct vmm_chardev *chr = &cfg->chardevs[cfg->n_chardevs];
	memset(chr, 0, sizeof(*chr));
	chr->backend = be->backend;
	rc = cli_kv_apply(&kv, 1, NULL, be->keys, be->nkeys, chr, NULL, p->err);
	if (rc < 0)
		return rc;
	if (chr->nowait && !chr->server)
		return perr_setx(p->err, -EINVAL,
				 "%s: nowait without server; allowed: nowait only with server",
				 opt);
	if (vmm_config_find_chardev(cfg, chr->id))
		return perr_setx(p->err, -EINVAL,
				 "%s: duplicate id '%s'; each chardev needs its own id", opt,
				 chr->id);
	cfg->n_chardevs++;
	return 0;
}

static int handle_serial(struct cli_parse *p, const struct cli_option *o, const char *opt,
			 const char *arg)
{
	(void)o;
	struct vmm_config *cfg = p->cfg;
	autokv struct cli_kv kv;
	int rc = cli_kv_split(&kv, opt, arg, p->err);
	if (rc < 0)
		return rc;

	const char *first = kv.items[0].raw;
	if (strncmp(first, "chardev:", 8) == 0) {
		const char *id = first + 8;
		if (!cli_id_valid(id) || strlen(id) >= sizeof(cfg->serial_chardev))
			return perr_setx(
			    p->err, -EINVAL,
			    "%s: '%.200s' is not a valid chardev id; allowed: a letter, "
			    "then letters, digits, '-', '.', '_', at most %zu characters",
			    opt, id, sizeof(cfg->serial_chardev) - 1);
		if (kv.n > 1)
			return perr_setx(
			    p->err, -EINVAL,
			    "%s: unknown key '%.200s'; no keys are allowed after chardev:ID", opt,
			    kv.items[1].key);
		cfg->serial = VMM_SERIAL_CHARDEV;
		snprintf(cfg->serial_chardev, sizeof(cfg->serial_chardev), "%s", id);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(serial_kinds); i++) {
		const struct cli_serial_kind *k = &serial_kinds[i];
		if (strcmp(first, k->name) != 0)
			continue;
		cfg->serial = k->kind;
		return cli_kv_apply(&kv, 1, NULL, k->keys, k->nkeys, cfg, NULL, p->err);
	}
	return perr_setx(p->err, -EINVAL,
			 "%s: unknown backend '%.200s'; allowed: stdio, pty, none, chardev:ID, "
			 "file,path=PATH",
			 opt, first);
}

static int handle_qmp(struct cli_parse *p, const struct cli_option *o, const char *opt,
		      const char *arg)
{
	static const char syntax[] = "syntax: unix:PATH,server,nowait";
	struct qmp_opts qmp = {0};
	autokv struct cli_kv kv;
	int rc = cli_kv_split(&kv, opt, arg, p->err);
	if (rc < 0)
		return rc;

	const char *first = kv.items[0].raw;
	if (strncmp(first, "unix:", 5) != 0)
		return perr_setx(
		    p->err, -EINVAL,
		    "%s: '%.200s' is not a unix socket; allowed: only unix sockets, %s", opt, first,
		    syntax);
	const char *path = first + 5;
	size_t len = strlen(path);
	if (!len)
		return perr_setx(p->err, -EINVAL, "%s: empty socket path; %s", opt, syntax);
	if (len > CLI_SUN_PATH_MAX)
		return perr_setx(p->err, -EINVAL,
				 "%s: socket path is too long (%zu bytes); allowed: at most %d "
				 "(sun_path)",
				 opt, len, CLI_SUN_PATH_MAX);
	rc = cli_kv_apply(&kv, 1, NULL, o->keys, o->nkeys, &qmp, NULL, p->err);
	if (rc < 0)
		return rc;
	if (!qmp.server)
		return perr_setx(p->err, -EINVAL,
				 "%s: 'server' is required: petrel-vmm listens for QMP clients; %s",
				 opt, syntax);
	if (!qmp.nowait)
		return perr_setx(p->err, -EINVAL,
				 "%s: 'nowait' is required: petrel-vmm does not wait for a QMP "
				 "client before it starts the guest; %s",
				 opt, syntax);
	memcpy(p->cfg->qmp_path, path, len + 1);
	return 0;
}

static int handle_log(struct cli_parse *p, const struct cli_option *o, const char *opt,
		      const char *arg)
{
	p->cfg->log_set = true;
	if (!arg)
		return 0; /* -D alone: log to stderr */
	return handle_path(p, o, opt, arg);
}

static int handle_action(struct cli_parse *p, const struct cli_option *o, const char *opt,
			 const char *arg)
{
	(void)opt;
	(void)arg;
	p->cfg->action = strcmp(o->name, "version") != 0 ? VMM_ACTION_HELP : VMM_ACTION_VERSION;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The options                                                                */
/* ------------------------------------------------------------------------ */

static void print_device_forms(FILE *out);
static void print_chardev_forms(FILE *out);
static void print_serial_forms(FILE *out);
static void print_object_forms(FILE *out);

#define OPT_SETS(member) CLI_SETS(struct vmm_config, member)
#define OPT_KEYS(table, implicit_key) \
	.keys = table, .nkeys = ARRAY_SIZE(table), .implicit = implicit_key

static const struct cli_option cli_options[] = {
    {"name", CLI_ARG_REQUIRED, false, handle_name, .arg_name = "NAME",
     .help = "name of the VM, 1 to 255 bytes (QMP query-name)"},
    {"machine", CLI_ARG_REQUIRED, false, handle_keys, OPT_KEYS(machine_keys, "type"),
     .help = "machine type: microvm (the default and only type)"},
    {"smp", CLI_ARG_REQUIRED, false, handle_smp, OPT_KEYS(smp_keys, "cpus"),
     .help = "vCPUs, 1 to 254 (default 1); maxcpus must equal cpus"},
    {"m", CLI_ARG_REQUIRED, false, handle_keys, OPT_KEYS(mem_keys, "size"),
     .help = "guest RAM, 256 MiB to 512 GiB (default 256 MiB); units M, MiB, G, GiB; "
	     "a bare number is MiB"},
    {"kernel", CLI_ARG_REQUIRED, false, handle_path, OPT_SETS(kernel), .arg_name = "PATH",
     .help = "guest kernel, ELF vmlinux or bzImage (required)"},
    {"initrd", CLI_ARG_REQUIRED, false, handle_path, OPT_SETS(initrd), .arg_name = "PATH",
     .help = "initial ramdisk"},
    {"append", CLI_ARG_REQUIRED, false, handle_append, .arg_name = "CMDLINE",
     .help = "kernel command line, at most 1536 bytes"},
    {"drive", CLI_ARG_REQUIRED, true, handle_drive, OPT_KEYS(drive_keys, NULL),
     .help = "a raw disk image, at most 16; direct defaults to on; iops-total 0 to 1000000 "
	     "(0: unlimited)"},
    {"device", CLI_ARG_REQUIRED, true, handle_device, .print_forms = print_device_forms,
     .help = "a device; at most 6 virtio-blk devices, 11 MMIO devices in all"},
    {"chardev", CLI_ARG_REQUIRED, true, handle_chardev, .print_forms = print_chardev_forms,
     .help = "a character device backend, at most 8"},
    {"serial", CLI_ARG_REQUIRED, false, handle_serial, .print_forms = print_serial_forms,
     .help = "where the 8250 serial port (ttyS0) goes (default: none)"},
    {"qmp", CLI_ARG_REQUIRED, false, handle_qmp, .keys = qmp_keys, .nkeys = ARRAY_SIZE(qmp_keys),
     .arg_name = "unix:PATH,server,nowait", .help = "QMP socket (path at most 107 bytes)"},
    {"D", CLI_ARG_OPTIONAL, false, handle_log, OPT_SETS(logfile), .arg_name = "[PATH]",
     .help = "log to PATH, or to stderr without PATH"},
    {"pidfile", CLI_ARG_REQUIRED, false, handle_path, OPT_SETS(pidfile), .arg_name = "PATH",
     .help = "write the daemon's pid to PATH (needs -daemonize)"},
    {"daemonize", CLI_ARG_NONE, false, handle_flag, OPT_SETS(daemonize),
     .help = "run in the background"},
    {"disable-seccomp", CLI_ARG_NONE, false, handle_flag, OPT_SETS(disable_seccomp),
     .help = "do not install the seccomp filter"},
    {"S", CLI_ARG_NONE, false, handle_flag, OPT_SETS(start_paused),
     .help = "do not start the vCPUs until QMP 'cont'"},
    {"netdev", CLI_ARG_REQUIRED, true, handle_netdev, OPT_KEYS(netdev_tap_keys, NULL),
     .arg_name = "tap,id=ID,ifname=NAME|fd=N|fds=N:N...[,vhost=on|off][,vhostfd=N][,queues=N]",
     .help = "a tap network backend for virtio-net-device, at most 2"},
    {"object", CLI_ARG_REQUIRED, true, handle_object, .print_forms = print_object_forms,
     .help = "an iothread (at most 8) or the rng-random source of virtio-rng-device"},
    {"mem-path", CLI_ARG_REQUIRED, false, handle_mem_path, OPT_SETS(mem_path), .arg_name = "DIR",
     .help = "back guest RAM with huge pages from this hugetlbfs directory (absolute path; "
	     "the memory size must be a multiple of the huge page size)"},
    {"incoming", CLI_ARG_REQUIRED, false, handle_incoming, OPT_SETS(incoming),
     .arg_name = "file:DIR",
     .help = "restore the VM from a snapshot directory (QMP migrate); the other options must "
	     "describe the same machine"},
    {"petrel-container", CLI_ARG_REQUIRED, false, handle_container, OPT_KEYS(container_keys, "dir"),
     .help = "container mode, used by the petrel runtime (docs/runtime.md)"},
    {"version", CLI_ARG_NONE, false, handle_action, .help = "print the version and exit"},
    {"help", CLI_ARG_NONE, false, handle_action, .help = "print this help and exit"},
    {"h", CLI_ARG_NONE, false, handle_action, .help = "same as -help"},
};

_Static_assert(ARRAY_SIZE(cli_options) <= CLI_MAX_OPTIONS, "raise CLI_MAX_OPTIONS");

/* ------------------------------------------------------------------------ */
/* Help                                                                       */
/* ------------------------------------------------------------------------ */

static void print_form(FILE *out, const char *opt, const char *form)
{
	fprintf(out, "      -%s %s\n", opt, form);
}

static void print_device_forms(FILE *out)
{
	char keys[512], form[600];
	for (size_t i = 0; i < ARRAY_SIZE(device_drivers); i++) {
		cli_keys_synopsis(keys, sizeof(keys), device_drivers[i].keys,
				  device_drivers[i].nkeys, NULL);
		snprintf(form, sizeof(form), "%s,%s", device_drivers[i].name, keys);
		print_form(out, "device", form);
	}
}

static void print_chardev_forms(FILE *out)
{
	char keys[512], form[600];
	for (size_t i = 0; i < ARRAY_SIZE(chardev_backends); i++) {
		cli_keys_synopsis(keys, sizeof(keys), chardev_backends[i].keys,
				  chardev_backends[i].nkeys, NULL);
		snprintf(form, sizeof(form), "%s,%s", chardev_backends[i].name, keys);
		print_form(out, "chardev", form);
	}
}

static void print_serial_forms(FILE *out)
{
	char keys[512], form[600];
	for (size_t i = 0; i < ARRAY_SIZE(serial_kinds); i++) {
		cli_keys_synopsis(keys, sizeof(keys), serial_kinds[i].keys, serial_kinds[i].nkeys,
				  NULL);
		snprintf(form, sizeof(form), "%s%s%s", serial_kinds[i].name, keys[0] ? "," : "",
			 keys);
		print_form(out, "serial", form);
	}
	print_form(out, "serial", "chardev:ID");
}

static void print_object_forms(FILE *out)
{
	print_form(out, "object", "iothread,id=ID");
	print_form(out, "object", "rng-random,id=ID,filename=PATH");
}

/* "-smp [cpus=]N[,maxcpus=N]..." for a key option, "-kernel PATH" for a plain one. */
static void cli_option_syntax(const struct cli_option *o, char *buf, size_t size)
{
	if (o->keys && !o->arg_name) {
		char keys[512];
		cli_keys_synopsis(keys, sizeof(keys), o->keys, o->nkeys, o->implicit);
		snprintf(buf, size, "-%s %s", o->name, keys);
	} else if (o->arg_name) {
		snprintf(buf, size, "-%s %s", o->name, o->arg_name);
	} else if (o->print_forms) {
		snprintf(buf, size, "-%s ...", o->name);
	} else {
		snprintf(buf, size, "-%s", o->name);
	}
}

void vmm_config_print_help(void)
{
	char syntax[700];
	printf("Usage: petrel-vmm [options]\n"
	       "Runs one KVM microVM (StratoVirt-compatible command line). See petrel-vmm(1).\n"
	       "Values are key=value items separated by ','; write ',,' for a comma in a value.\n"
	       "Booleans: on, off, true, false, yes, no; a bare key means on.\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(cli_options); i++) {
		const struct cli_option *o = &cli_options[i];
		cli_option_syntax(o, syntax, sizeof(syntax));
		printf("  %s\n      %s\n", syntax, o->help);
		if (o->print_forms)
			o->print_forms(stdout);
	}
	printf("\nExit status: 0 when the guest powers off or reboots, on QMP quit or SIGTERM;\n"
	       "1 on a bad command line, a start failure or a host error.\n");
}

/* ------------------------------------------------------------------------ */
/* Parse and resolve                                                          */
/* ------------------------------------------------------------------------ */

static const struct cli_option *cli_option_find(const char *word)
{
	if (word[0] != '-')
		return NULL;
	const char *name = word + 1;
	if (name[0] == '-')
		name++; /* --name is -name, as in QEMU */
	for (size_t i = 0; i < ARRAY_SIZE(cli_options); i++)
		if (strcmp(name, cli_options[i].name) == 0)
			return &cli_options[i];
	return NULL;
}

/* The option as the user typed it, or its plain spelling when absent. */
static const char *cli_typed(const struct cli_parse *p, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(cli_options); i++)
		if (strcmp(cli_options[i].name, name) == 0)
			return p->typed[i];
	return NULL;
}

static const char *cli_typed_or(const struct cli_parse *p, const char *name, const char *dflt)
{
	const char *t = cli_typed(p, name);
	return t ? t : dflt;
}

static int cli_check_iothread(struct cli_parse *p, const char *opt, const char *dev,
			      const char *iothread)
{
	if (!iothread[0] || vmm_config_find_iothread(p->cfg, iothread))
		return 0;
	return perr_setx(p->err, -EINVAL,
			 "%s: device '%s': iothread '%s' does not exist; allowed: the id of an "
			 "-object iothread",
			 opt, dev, iothread);
}

/* A device that names its backend: virtio-blk a -drive, virtio-net a -netdev. */
struct cli_backed_device {
	char *id; /* VMM_ID_MAX bytes; "" takes the backend's id */
	const char *backend;
	const char *iothread;
};

static int cli_resolve_backed(struct cli_parse *p, const char *opt, const char *kind,
			      struct cli_backed_device *devs, unsigned n,
			      bool (*exists)(const struct vmm_config *cfg, const char *id))
{
	for (unsigned i = 0; i < n; i++) {
		struct cli_backed_device *d = &devs[i];
		if (!exists(p->cfg, d->backend))
			return perr_setx(p->err, -EINVAL,
					 "%s: %s '%s' does not exist; allowed: the id of a -%s",
					 opt, kind, d->backend, kind);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(devs[j].backend, d->backend) == 0)
				return perr_setx(p->err, -EINVAL,
						 "%s: %s '%s' is already used by device '%s'; "
						 "allowed: one device per %s",
						 opt, kind, d->backend, devs[j].id, kind);
		/* A device without id= takes its backend's id (QMP names devices). */
		if (!d->id[0])
			snprintf(d->id, VMM_ID_MAX, "%s", d->backend);
		int rc = cli_check_iothread(p, opt, d->id, d->iothread);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static bool cli_drive_exists(const struct vmm_config *cfg, const char *id)
{
	return vmm_config_find_drive(cfg, id) != NULL;
}

static bool cli_netdev_exists(const struct vmm_config *cfg, const char *id)
{
	return vmm_config_find_netdev(cfg, id) != NULL;
}

_Static_assert(VMM_MICROVM_MAX_NICS <= VMM_MICROVM_MAX_DISKS, "devs[] below holds both");

static int cli_resolve_blks_and_nets(struct cli_parse *p, const char *opt)
{
	struct vmm_config *cfg = p->cfg;
	struct cli_backed_device devs[VMM_MICROVM_MAX_DISKS];
	for (unsigned i = 0; i < cfg->n_blks; i++)
		devs[i] = (struct cli_backed_device){cfg->blks[i].id, cfg->blks[i].drive,
						     cfg->blks[i].iothread};
	int rc = cli_resolve_backed(p, opt, "drive", devs, cfg->n_blks, cli_drive_exists);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < cfg->n_nets; i++)
		devs[i] = (struct cli_backed_device){cfg->nets[i].id, cfg->nets[i].netdev,
						     cfg->nets[i].iothread};
	return cli_resolve_backed(p, opt, "netdev", devs, cfg->n_nets, cli_netdev_exists);
}

static int cli_resolve_singles(struct cli_parse *p, const char *opt)
{
	struct vmm_config *cfg = p->cfg;
	struct vmm_virtio_serial *ser = &cfg->virtio_serial;
	if (ser->console_present) {
		if (!ser->present)
			return perr_setx(p->err, -EINVAL,
					 "%s: virtconsole '%s' needs a virtio-serial-device; add "
					 "-device virtio-serial-device",
					 opt, ser->console_id);
		if (!vmm_config_find_chardev(cfg, ser->console_chardev))
			return perr_setx(p->err, -EINVAL,
					 "%s: chardev '%s' does not exist; allowed: the id of a "
					 "-chardev",
					 opt, ser->console_chardev);
		if (cfg->serial == VMM_SERIAL_CHARDEV &&
		    strcmp(cfg->serial_chardev, ser->console_chardev) == 0)
			return perr_setx(
			    p->err, -EINVAL,
			    "%s: chardev '%s' is already used by -serial; allowed: one "
			    "user per chardev",
			    opt, ser->console_chardev);
	}
	struct vmm_rng *rng = &cfg->rng;
	if (rng->present) {
		if (!rng->object_present || strcmp(rng->object_id, rng->rng) != 0)
			return perr_setx(
			    p->err, -EINVAL,
			    "%s: rng '%s' does not exist; allowed: the id of an -object "
			    "rng-random",
			    opt, rng->rng);
		if (!rng->max_bytes != !rng->period_ms)
			return perr_setx(p->err, -EINVAL,
					 "%s: virtio-rng-device: max-bytes and period go together; "
					 "give both or neither",
					 opt);
	}
	if (cfg->balloon.present && cfg->mem_path[0])
		return perr_setx(
		    p->err, -EINVAL,
		    "%s: virtio-balloon-device cannot be used with -mem-path; allowed: "
		    "one of them (huge pages cannot be given back to the host)",
		    opt);
	return 0;
}

/* Device ids name devices in QMP: each must be unique over every kind. */
static int cli_check_device_ids(struct cli_parse *p, const char *opt)
{
	const struct vmm_config *cfg = p->cfg;
	const char *ids[VMM_MICROVM_MAX_DISKS + VMM_MICROVM_MAX_NICS + 5];
	unsigned n = 0;
	for (unsigned i = 0; i < cfg->n_blks; i++)
		ids[n++] = cfg->blks[i].id;
	for (unsigned i = 0; i < cfg->n_nets; i++)
		ids[n++] = cfg->nets[i].id;
	if (cfg->vsock.present)
		ids[n++] = cfg->vsock.id;
	if (cfg->virtio_serial.present)
		ids[n++] = cfg->virtio_serial.id;
	if (cfg->virtio_serial.console_present)
		ids[n++] = cfg->virtio_serial.console_id;
	if (cfg->balloon.present)
		ids[n++] = cfg->balloon.id;
	if (cfg->rng.present)
		ids[n++] = cfg->rng.id;
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; ids[i][0] && j < i; j++)
			if (strcmp(ids[i], ids[j]) == 0)
				return perr_setx(
				    p->err, -EINVAL,
				    "%s: duplicate device id '%s' (a device without id= "
				    "takes its drive or netdev id); allowed: one device "
				    "per id",
				    opt, ids[i]);
	return 0;
}

/* Each virtio device takes one MMIO slot; virtconsole is a port of virtio-serial. */
static unsigned vmm_config_mmio_devices(const struct vmm_config *cfg)
{
	return cfg->n_blks + cfg->n_nets + cfg->vsock.present + cfg->virtio_serial.present +
	       cfg->balloon.present + cfg->rng.present;
}

static int cli_resolve_devices(struct cli_parse *p)
{
	const char *opt = cli_typed_or(p, "device", "-device");
	int rc = cli_resolve_blks_and_nets(p, opt);
	if (rc == 0)
		rc = cli_resolve_singles(p, opt);
	if (rc == 0)
		rc = cli_check_device_ids(p, opt);
	if (rc < 0)
		return rc;
	unsigned mmio = vmm_config_mmio_devices(p->cfg);
	if (mmio > VMM_MICROVM_MAX_MMIO)
		return perr_setx(p->err, -EINVAL,
				 "%s: %u MMIO devices; allowed: at most %d on microvm", opt, mmio,
				 VMM_MICROVM_MAX_MMIO);
	return 0;
}

static int cli_resolve(struct cli_parse *p)
{
	struct vmm_config *cfg = p->cfg;

	if (!cfg->kernel[0])
		return perr_setx(p->err, -EINVAL,
				 "-kernel: missing; a guest kernel is required "
				 "(-kernel PATH)");

	int rc = cli_resolve_devices(p);
	if (rc < 0)
		return rc;

	if (cfg->serial == VMM_SERIAL_CHARDEV && !vmm_config_find_chardev(cfg, cfg->serial_chardev))
		return perr_setx(p->err, -EINVAL,
				 "%s: chardev '%s' does not exist; allowed: the id of a -chardev",
				 cli_typed_or(p, "serial", "-serial"), cfg->serial_chardev);

	if (cfg->pidfile[0] && !cfg->daemonize)
		return perr_setx(p->err, -EINVAL, "%s: allowed only with -daemonize",
				 cli_typed_or(p, "pidfile", "-pidfile"));

	/* A daemon's stdio is /dev/null: nothing may be bound to it. */
	if (cfg->daemonize) {
		const char *daemonize = cli_typed_or(p, "daemonize", "-daemonize");
		if (cfg->serial == VMM_SERIAL_STDIO)
			return perr_setx(p->err, -EINVAL,
					 "%s: stdio cannot be used with %s; allowed: pty, file, "
					 "chardev:ID",
					 cli_typed_or(p, "serial", "-serial"), daemonize);
		for (unsigned i = 0; i < cfg->n_chardevs; i++)
			if (cfg->chardevs[i].backend == VMM_CHARDEV_STDIO)
				return perr_setx(p->err, -EINVAL,
						 "%s: stdio (id '%s') cannot be used with %s; "
						 "allowed: pty, socket, file",
						 cli_typed_or(p, "chardev", "-chardev"),
						 cfg->chardevs[i].id, daemonize);
		if (cfg->log_set && !cfg->logfile[0])
			return perr_setx(p->err, -EINVAL,
					 "%s: logging to stderr is not possible with %s; allowed: "
					 "-D PATH",
					 cli_typed_or(p, "D", "-D"), daemonize);
	}
	return 0;
}

static void vmm_config_set_defaults(struct vmm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->action = VMM_ACTION_RUN;
	cfg->machine = VMM_MACHINE_MICROVM;
	cfg->dump_guest_core = true;
	cfg->mem_share = false;
	cfg->cpus = 1;
	cfg->mem_bytes = VMM_MIN_MEM;
	cfg->serial = VMM_SERIAL_NONE;
	cfg->container_notify_fd = -1;
}

int vmm_config_parse(int argc, char *const argv[], struct vmm_config *cfg, struct perr *err)
{
	struct cli_parse p = {.cfg = cfg, .err = err};

	perr_clear(err);
	vmm_config_set_defaults(cfg);

	for (int i = 1; i < argc; i++) {
		const char *word = argv[i];
		if (word[0] != '-')
			return perr_setx(err, -EINVAL,
					 "%.200s: unexpected argument; options start with '-'; see "
					 "-help",
					 word);
		const struct cli_option *o = cli_option_find(word);
		if (!o)
			return perr_setx(err, -EINVAL, "%.200s: unknown option; see -help", word);
		size_t idx = (size_t)(o - cli_options);
		if (p.typed[idx] && !o->repeatable)
			return perr_setx(err, -EINVAL, "%s: given twice; allowed once", word);
		p.typed[idx] = word;

		const char *arg = NULL;
		if (o->arg == CLI_ARG_REQUIRED) {
			if (i + 1 >= argc) {
				char syntax[700];
				cli_option_syntax(o, syntax, sizeof(syntax));
				return perr_setx(err, -EINVAL, "%s: missing argument; syntax: %s%s",
						 word, syntax,
						 o->print_forms ? " (see -help)" : "");
			}
			arg = argv[++i];
		} else if (o->arg == CLI_ARG_OPTIONAL && i + 1 < argc && argv[i + 1][0] != '-') {
			arg = argv[++i];
		}

		int rc = o->handle(&p, o, word, arg);
		if (rc < 0)
			return rc;
		/* -help and -version end the command line, as in QEMU. */
		if (cfg->action != VMM_ACTION_RUN)
			return 0;
	}
	return cli_resolve(&p);
}

const struct vmm_drive *vmm_config_find_drive(const struct vmm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->n_drives; i++)
		if (strcmp(cfg->drives[i].id, id) == 0)
			return &cfg->drives[i];
	return NULL;
}

const struct vmm_chardev *vmm_config_find_chardev(const struct vmm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->n_chardevs; i++)
		if (strcmp(cfg->chardevs[i].id, id) == 0)
			return &cfg->chardevs[i];
	return NULL;
}

const struct vmm_netdev *vmm_config_find_netdev(const struct vmm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->n_netdevs; i++)
		if (strcmp(cfg->netdevs[i].id, id) == 0)
			return &cfg->netdevs[i];
	return NULL;
}

const struct vmm_iothread *vmm_config_find_iothread(const struct vmm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->n_iothreads; i++)
		if (strcmp(cfg->iothreads[i].id, id) == 0)
			return &cfg->iothreads[i];
	return NULL;
}
