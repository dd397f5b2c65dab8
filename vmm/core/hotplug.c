#include "hotplug.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../virtio/blk.h"
#include "../virtio/net.h"
#include "../virtio/transport-mmio.h"

/* Ids given at boot, in their three name spaces (as QEMU keeps them apart). */
#define HOTPLUG_BOOT_DEVICES (VMM_MICROVM_MAX_MMIO + 1)

struct hotplug_slot {
	enum hotplug_kind kind;
	struct virtio_mmio *t;
	char device_id[VMM_ID_MAX]; /* "" when free */
	char backend[VMM_ID_MAX];
	bool deleting; /* device_del asked, the guest has not let go yet */
};

struct hotplug_drive {
	bool used;
	struct vmm_drive cfg;
};

struct hotplug_netdev {
	bool used;
	struct vmm_netdev cfg;
};

struct hotplug {
	struct hotplug_host host;
	char vm_name[VMM_NAME_MAX + 1];
	struct hotplug_slot slots[VMM_MICROVM_MAX_MMIO];
	unsigned n_slots;
	struct hotplug_drive drives[VMM_MICROVM_MAX_DISKS];
	struct hotplug_netdev netdevs[VMM_MICROVM_MAX_NICS];
	char boot_drives[VMM_MAX_DRIVES][VMM_ID_MAX];
	unsigned n_boot_drives;
	char boot_netdevs[VMM_MAX_NETDEVS][VMM_ID_MAX];
	unsigned n_boot_netdevs;
	char boot_devices[HOTPLUG_BOOT_DEVICES][VMM_ID_MAX];
	unsigned n_boot_devices;
};

static const char *hotplug_kind_driver(enum hotplug_kind kind)
{
	return kind == HOTPLUG_BLK ? "virtio-blk-mmio" : "virtio-net-mmio";
}

void hotplug_slot_counts(const struct vmm_config *cfg, unsigned *blk_slots, unsigned *net_slots)
{
	unsigned used = cfg->n_blks + cfg->n_nets + cfg->vsock.present +
			cfg->virtio_serial.present + cfg->balloon.present + cfg->rng.present;
	unsigned free_mmio = used < VMM_MICROVM_MAX_MMIO ? VMM_MICROVM_MAX_MMIO - used : 0;
	unsigned net = cfg->n_nets < VMM_MICROVM_MAX_NICS ? VMM_MICROVM_MAX_NICS - cfg->n_nets : 0;
	unsigned blk =
	    cfg->n_blks < VMM_MICROVM_MAX_DISKS ? VMM_MICROVM_MAX_DISKS - cfg->n_blks : 0;
	/* NICs first: a second NIC is the rarer, harder to replace resource. */
	if (net > free_mmio)
		net = free_mmio;
	if (blk > free_mmio - net)
		blk = free_mmio - net;
	*blk_slots = blk;
	*net_slots = net;
}

static void hotplug_copy_id(char dst[VMM_ID_MAX], const char *src)
{
	snprintf(dst, VMM_ID_MAX, "%s", src);
}

int hotplug_create(const struct vmm_config *cfg, const struct hotplug_host *host,
		   struct hotplug **out, struct perr *err)
{
	struct hotplug *hp = calloc(1, sizeof(*hp));
	if (!hp)
		return perr_set(err, -ENOMEM, "hotplug");
	hp->host = *host;
	snprintf(hp->vm_name, sizeof(hp->vm_name), "%s", host->vm_name ? host->vm_name : "");
	hp->host.vm_name = hp->vm_name;
	for (unsigned i = 0; i < cfg->n_drives && i < VMM_MAX_DRIVES; i++)
		hotplug_copy_id(hp->boot_drives[hp->n_boot_drives++], cfg->drives[i].id);
	for (unsigned i = 0; i < cfg->n_netdevs && i < VMM_MAX_NETDEVS; i++)
		hotplug_copy_id(hp->boot_netdevs[hp->n_boot_netdevs++], cfg->netdevs[i].id);
	const char *devs[HOTPLUG_BOOT_DEVICES];
	unsigned n = 0;
	for (unsigned i = 0; i < cfg->n_blks; i++)
		devs[n++] = cfg->blks[i].id;
	for (unsigned i = 0; i < cfg->n_nets; i++)
		devs[n++] = cfg->nets[i].id;
	const char *singles[] = {
	    cfg->vsock.present ? cfg->vsock.id : "",
	    cfg->virtio_serial.present ? cfg->virtio_serial.id : "",
	    cfg->virtio_serial.console_present ? cfg->virtio_serial.console_id : "",
	    cfg->balloon.present ? cfg->balloon.id : "",
	    cfg->rng.present ? cfg->rng.id : "",
	};
	for (size_t i = 0; i < sizeof(singles) / sizeof(singles[0]) && n < HOTPLUG_BOOT_DEVICES;
	     i++)
		devs[n++] = singles[i];
	for (unsigned i = 0; i < n; i++)
		if (devs[i][0])
			hotplug_copy_id(hp->boot_devices[hp->n_boot_devices++], devs[i]);
	*out = hp;
	return 0;
}

void hotplug_destroy(struct hotplug *hp)
{
	free(hp);
}

int hotplug_add_slot(struct hotplug *hp, enum hotplug_kind kind, struct virtio_mmio *t,
		     struct perr *err)
{
	if (hp->n_slots >= VMM_MICROVM_MAX_MMIO)
		return perr_setx(err, -ENOSPC, "too many hotplug slots");
	hp->slots[hp->n_slots++] = (struct hotplug_slot){.kind = kind, .t = t};
	return 0;
}

/* ---- Lookups ---- */

static bool hotplug_in_list(char (*ids)[VMM_ID_MAX], unsigned n, const char *id)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

static struct hotplug_drive *hotplug_find_drive(struct hotplug *hp, const char *id)
{
	for (unsigned i = 0; i < VMM_MICROVM_MAX_DISKS; i++)
		if (hp->drives[i].used && strcmp(hp->drives[i].cfg.id, id) == 0)
			return &hp->drives[i];
	return NULL;
}

static struct hotplug_netdev *hotplug_find_netdev(struct hotplug *hp, const char *id)
{
	for (unsigned i = 0; i < VMM_MICROVM_MAX_NICS; i++)
		if (hp->netdevs[i].used && strcmp(hp->netdevs[i].cfg.id, id) == 0)
			return &hp->netdevs[i];
	return NULL;
}

static struct hotplug_slot *hotplug_find_device(struct hotplug *hp, const char *id)
{
	for (unsigned i = 0; i < hp->n_slots; i++)
		if (hp->slots[i].device_id[0] && strcmp(hp->slots[i].device_id, id) == 0)
			return &hp->slots[i];
	return NULL;
}

/* The device using backend `id` of kind, or NULL. */
static struct hotplug_slot *hotplug_backend_user(struct hotplug *hp, enum hotplug_kind kind,
						 const char *id)
{
	for (unsigned i = 0; i < hp->n_slots; i++)
		if (hp->slots[i].kind == kind && hp->slots[i].device_id[0] &&
		    strcmp(hp->slots[i].backend, id) == 0)
			return &hp->slots[i];
	return NULL;
}

static int hotplug_check_id(const char *what, const char *id, struct perr *err)
{
	size_t len = strlen(id);
	if (!len)
		return perr_setx(err, -EINVAL, "%s must not be empty", what);
	if (len >= VMM_ID_MAX)
		return perr_setx(err, -EINVAL, "%s '%s' is too long (at most %d characters)", what,
				 id, VMM_ID_MAX - 1);
	return 0;
}

/* ---- Backends ---- */

int hotplug_blockdev_add(struct hotplug *hp, const struct vmm_drive *drive, struct perr *err)
{
	int rc = hotplug_check_id("node-name", drive->id, err);
	if (rc < 0)
		return rc;
	if (hotplug_find_drive(hp, drive->id) ||
	    hotplug_in_list(hp->boot_drives, hp->n_boot_drives, drive->id))
		return perr_setx(err, -EEXIST, "Duplicate nodes with node-name='%s'", drive->id);
	if (!drive->file[0])
		return perr_setx(err, -EINVAL, "file.filename must not be empty");
	struct hotplug_drive *slot = NULL;
	for (unsigned i = 0; i < VMM_MICROVM_MAX_DISKS && !slot; i++)
		if (!hp->drives[i].used)
			slot = &hp->drives[i];
	if (!slot)
		return perr_setx(err, -ENOSPC, "too many block nodes; allowed: at most %d",
				 VMM_MICROVM_MAX_DISKS);
	/* Fail now rather than at device_add; the device opens its own fd then. */
	int flags = (drive->readonly ? O_RDONLY : O_RDWR) | (drive->direct ? O_DIRECT : 0);
	int fd = open(drive->file, flags | O_CLOEXEC);
	if (fd < 0 && errno == EINVAL && drive->direct)
		return perr_set(err, -errno, "Could not open '%s' with cache.direct=true",
				drive->file);
	if (fd < 0)
		return perr_set(err, -errno, "Could not open '%s'", drive->file);
	close(fd);
	slot->used = true;
	slot->cfg = *drive;
	return 0;
}

int hotplug_blockdev_del(struct hotplug *hp, const char *node_name, struct perr *err)
{
	struct hotplug_drive *d = hotplug_find_drive(hp, node_name);
	if (!d) {
		if (hotplug_in_list(hp->boot_drives, hp->n_boot_drives, node_name))
			return perr_setx(err, -EBUSY,
					 "Node '%s' is a boot-time drive and cannot be removed",
					 node_name);
		return perr_setx(err, -ENOENT, "Failed to find node with node-name='%s'",
				 node_name);
	}
	struct hotplug_slot *user = hotplug_backend_user(hp, HOTPLUG_BLK, node_name);
	if (user)
		return perr_setx(err, -EBUSY, "Node '%s' is busy: in use by device '%s'", node_name,
				 user->device_id);
	memset(d, 0, sizeof(*d));
	return 0;
}

int hotplug_netdev_add(struct hotplug *hp, const struct vmm_netdev *netdev, struct perr *err)
{
	int rc = hotplug_check_id("id", netdev->id, err);
	if (rc < 0)
		return rc;
	if (hotplug_find_netdev(hp, netdev->id) ||
	    hotplug_in_list(hp->boot_netdevs, hp->n_boot_netdevs, netdev->id))
		return perr_setx(err, -EEXIST, "Duplicate ID '%s' for netdev", netdev->id);
	if (!netdev->ifname[0] || netdev->n_fds)
		return perr_setx(err, -EINVAL,
				 "netdev '%s': ifname is required (fd and fds "
				 "cannot be passed over this QMP socket)",
				 netdev->id);
	if (strlen(netdev->ifname) >= VMM_IFNAME_MAX)
		return perr_setx(err, -EINVAL, "ifname '%s' is too long (at most %d characters)",
				 netdev->ifname, VMM_IFNAME_MAX - 1);
	struct hotplug_netdev *slot = NULL;
	for (unsigned i = 0; i < VMM_MICROVM_MAX_NICS && !slot; i++)
		if (!hp->netdevs[i].used)
			slot = &hp->netdevs[i];
	if (!slot)
		return perr_setx(err, -ENOSPC, "too many netdevs; allowed: at most %d",
				 VMM_MICROVM_MAX_NICS);
	slot->used = true;
	slot->cfg = *netdev;
	return 0;
}

int hotplug_netdev_del(struct hotplug *hp, const char *id, struct perr *err)
{
	struct hotplug_netdev *n = hotplug_find_netdev(hp, id);
	if (!n) {
		if (hotplug_in_list(hp->boot_netdevs, hp->n_boot_netdevs, id))
			return perr_setx(err, -EBUSY,
					 "netdev '%s' is a boot-time netdev and cannot be removed",
					 id);
		return perr_setx(err, -ENOENT, "netdev '%s' not found", id);
	}
	struct hotplug_slot *user = hotplug_backend_user(hp, HOTPLUG_NET, id);
	if (user)
		return perr_setx(err, -EBUSY, "netdev '%s' is in use by device '%s'", id,
				 user->device_id);
	memset(n, 0, sizeof(*n));
	return 0;
}

/* ---- Devices ---- */

/* The free slot of req->kind that req->addr names, with a clear error. */
static struct hotplug_slot *hotplug_pick_slot(struct hotplug *hp, const struct hotplug_device *req,
					      struct perr *err)
{
	const char *driver = hotplug_kind_driver(req->kind);
	unsigned n_kind = 0;
	for (unsigned i = 0; i < hp->n_slots; i++) {
		struct hotplug_slot *s = &hp->slots[i];
		if (s->kind != req->kind)
			continue;
		unsigned index = n_kind++;
		if (req->addr >= 0 && index != (unsigned)req->addr)
			continue;
		if (!s->device_id[0] && virtio_mmio_is_empty(s->t))
			return s;
		if (req->addr >= 0) {
			perr_setx(err, -EBUSY, "%s slot %d is in use by device '%s'", driver,
				  req->addr, s->device_id);
			return NULL;
		}
	}
	if (req->addr >= 0 && (unsigned)req->addr >= n_kind)
		perr_setx(err, -EINVAL, "%s: addr %d does not exist (%u slots reserved at boot)",
			  driver, req->addr, n_kind);
	else
		perr_setx(err, -ENOSPC,
			  "No free %s slot: all %u reserved at boot are in use (-device "
			  "limits: %d disks, %d NICs, %d MMIO devices)",
			  driver, n_kind, VMM_MICROVM_MAX_DISKS, VMM_MICROVM_MAX_NICS,
			  VMM_MICROVM_MAX_MMIO);
	return NULL;
}

/* Checks the backend for a device of kind: exists, right kind, not in use. */
static int hotplug_check_backend(struct hotplug *hp, const struct hotplug_device *req,
				 const char *backend, struct perr *err)
{
	const char *driver = hotplug_kind_driver(req->kind);
	bool is_drive = hotplug_find_drive(hp, backend) != NULL;
	bool is_netdev = hotplug_find_netdev(hp, backend) != NULL;
	bool want_drive = req->kind == HOTPLUG_BLK;
	if (want_drive ? !is_drive : !is_netdev) {
		if (want_drive ? is_netdev : is_drive)
			return perr_setx(err, -EINVAL, "%s needs a %s, and '%s' is a %s", driver,
					 want_drive ? "drive (blockdev-add)"
						    : "netdev (netdev_add)",
					 backend, want_drive ? "netdev" : "drive");
		if (want_drive ? hotplug_in_list(hp->boot_drives, hp->n_boot_drives, backend)
			       : hotplug_in_list(hp->boot_netdevs, hp->n_boot_netdevs, backend))
			return perr_setx(err, -EBUSY, "%s '%s' belongs to a boot-time device",
					 want_drive ? "drive" : "netdev", backend);
		return perr_setx(err, -ENOENT, "%s: %s '%s' not found (add it with %s first)",
				 driver, want_drive ? "drive" : "netdev", backend,
				 want_drive ? "blockdev-add" : "netdev_add");
	}
	struct hotplug_slot *user = hotplug_backend_user(hp, req->kind, backend);
	if (user)
		return perr_setx(err, -EBUSY, "%s '%s' is already in use by device '%s'",
				 want_drive ? "drive" : "netdev", backend, user->device_id);
	return 0;
}

static int hotplug_create_device(struct hotplug *hp, const struct hotplug_device *req,
				 const char *backend, struct virtio_dev **dev, struct perr *err)
{
	if (req->kind == HOTPLUG_BLK) {
		struct vmm_blk_device blk = {0};
		hotplug_copy_id(blk.id, req->id);
		hotplug_copy_id(blk.drive, backend);
		snprintf(blk.serial, sizeof(blk.serial), "%s", req->serial);
		return virtio_blk_create(&hotplug_find_drive(hp, backend)->cfg, &blk, dev, err);
	}
	struct vmm_net_device net = {0};
	hotplug_copy_id(net.id, req->id);
	hotplug_copy_id(net.netdev, backend);
	memcpy(net.mac, req->mac, sizeof(net.mac));
	net.mac_set = req->mac_set;
	return virtio_net_create(&hotplug_find_netdev(hp, backend)->cfg, &net, hp->vm_name, dev,
				 err);
}

int hotplug_device_add(struct hotplug *hp, const struct hotplug_device *req, struct perr *err)
{
	int rc = hotplug_check_id("id", req->id, err);
	if (rc < 0)
		return rc;
	if (hotplug_find_device(hp, req->id) ||
	    hotplug_in_list(hp->boot_devices, hp->n_boot_devices, req->id))
		return perr_setx(err, -EEXIST, "Duplicate device ID '%s'", req->id);
	const char *backend = req->backend[0] ? req->backend : req->id;
	rc = hotplug_check_backend(hp, req, backend, err);
	if (rc < 0)
		return rc;
	struct hotplug_slot *slot = hotplug_pick_slot(hp, req, err);
	if (!slot)
		return err->code;
	struct virtio_dev *dev;
	rc = hotplug_create_device(hp, req, backend, &dev, err);
	if (rc < 0)
		return perr_wrap(err, "device '%s'", req->id);
	rc = virtio_mmio_plug(slot->t, dev, err);
	if (rc < 0)
		return perr_wrap(err, "device '%s'", req->id);
	hotplug_copy_id(slot->device_id, req->id);
	hotplug_copy_id(slot->backend, backend);
	slot->deleting = false;
	log_info("hotplug: %s '%s' (%s) plugged at 0x%llx", hotplug_kind_driver(req->kind), req->id,
		 backend, (unsigned long long)virtio_mmio_base(slot->t));
	return 0;
}

/* The device left its slot: free the slot, tell the VM. */
static void hotplug_slot_release(struct hotplug *hp, struct hotplug_slot *slot)
{
	char id[VMM_ID_MAX];
	hotplug_copy_id(id, slot->device_id);
	slot->device_id[0] = '\0';
	slot->backend[0] = '\0';
	slot->deleting = false;
	log_info("hotplug: device '%s' removed", id);
	if (hp->host.device_deleted)
		hp->host.device_deleted(hp->host.opaque, id);
}

int hotplug_device_del(struct hotplug *hp, const char *id, struct perr *err)
{
	struct hotplug_slot *slot = hotplug_find_device(hp, id);
	if (!slot) {
		if (hotplug_in_list(hp->boot_devices, hp->n_boot_devices, id))
			return perr_setx(err, -EBUSY,
					 "Device '%s' was present at boot and cannot be removed "
					 "(only hot-plugged devices can)",
					 id);
		return perr_setx(err, -ENOENT, "Device '%s' not found", id);
	}
	if (slot->deleting)
		return perr_setx(err, -EBUSY, "Device %s is already in the process of unplug", id);
	int rc = virtio_mmio_unplug(slot->t);
	if (rc < 0)
		return perr_setx(err, rc, "Device '%s': unplug failed", id);
	if (rc == 0)
		hotplug_slot_release(hp, slot);
	else
		slot->deleting = true;
	return 0;
}

void hotplug_slot_unplugged(void *opaque, struct virtio_mmio *t)
{
	struct hotplug *hp = opaque;
	for (unsigned i = 0; i < hp->n_slots; i++)
		if (hp->slots[i].t == t && hp->slots[i].device_id[0])
			hotplug_slot_release(hp, &hp->slots[i]);
}

unsigned hotplug_n_slots(const struct hotplug *hp)
{
	return hp->n_slots;
}

int hotplug_slot_info(struct hotplug *hp, unsigned index, struct hotplug_slot_info *out)
{
	if (index >= hp->n_slots)
		return -ENOENT;
	struct hotplug_slot *s = &hp->slots[index];
	*out = (struct hotplug_slot_info){
	    .kind = s->kind,
	    .base = virtio_mmio_base(s->t),
	    .device_id = s->device_id,
	    .backend = s->backend,
	    .unplug_pending = s->deleting,
	};
	return 0;
}
