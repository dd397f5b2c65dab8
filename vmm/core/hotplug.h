/*
 * Hot plug on the MicroVm machine, StratoVirt's way: the VMM reserves empty
 * "replaceable" virtio-mmio slots at boot (each with its window, GSI and
 * virtio_mmio.device= entry), and QMP fills and empties them:
 *
 *   blockdev-add / netdev_add   declare a backend (checked, nothing opened for good)
 *   device_add                  opens the backend and plugs the device into a free slot
 *   device_del                  unplugs it: at once when no driver has it, else when the
 *                               guest resets it (driver unbound); then DEVICE_DELETED
 *   blockdev-del / netdev_del   forget a backend no device uses
 *
 * The slots are typed (virtio-blk or virtio-net), so that the guest's view is
 * predictable, and their numbers keep the machine's limits (6 disks, 2 NICs,
 * 11 MMIO devices) for boot-time and hot-plugged devices together: see
 * hotplug_slot_counts(). docs/vmm.md "Hotplug" has the guest's side.
 *
 * Everything here runs on the main-loop thread. The transport swaps devices
 * under its own lock (transport-mmio.h), so vCPUs never see half a device.
 */
#ifndef PETREL_HOTPLUG_H
#define PETREL_HOTPLUG_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/error.h"
#include "../cli/config.h"

struct hotplug;
struct virtio_mmio;

enum hotplug_kind {
	HOTPLUG_BLK,
	HOTPLUG_NET,
};

struct hotplug_host {
	const char *vm_name; /* for the default MAC of hot-plugged NICs */
	/* A device_del completed (main loop): the VM emits DEVICE_DELETED. */
	void (*device_deleted)(void *opaque, const char *id);
	void *opaque;
};

/* How many replaceable slots of each kind a VM built from cfg gets:
 * 6 - disks and 2 - NICs, the blk slots trimmed so that every MMIO device
 * fits in 11. */
void hotplug_slot_counts(const struct vmm_config *cfg, unsigned *blk_slots, unsigned *net_slots);

/* Remembers cfg's ids (drives, netdevs, devices) so hot-plugged ones stay unique. */
int hotplug_create(const struct vmm_config *cfg, const struct hotplug_host *host,
		   struct hotplug **out, struct perr *err);
/* Frees the bookkeeping only: the slots' transports belong to the VM. NULL is a no-op. */
void hotplug_destroy(struct hotplug *hp);
/* Registers an empty replaceable transport (virtio_mmio_attach with dev NULL)
 * as the next slot of kind; its host.unplugged must be hotplug_slot_unplugged
 * with hp as opaque. */
int hotplug_add_slot(struct hotplug *hp, enum hotplug_kind kind, struct virtio_mmio *t,
		     struct perr *err);
/* The transport's unplugged callback (transport-mmio.h). */
void hotplug_slot_unplugged(void *opaque, struct virtio_mmio *t);

/* The QMP commands. Each checks everything before changing anything: on
 * error nothing changed. Errors are one line for a QMP GenericError. */
int hotplug_blockdev_add(struct hotplug *hp, const struct vmm_drive *drive, struct perr *err);
int hotplug_blockdev_del(struct hotplug *hp, const char *node_name, struct perr *err);
/* Only ifname= taps: fds cannot cross QMP without SCM_RIGHTS. */
int hotplug_netdev_add(struct hotplug *hp, const struct vmm_netdev *netdev, struct perr *err);
int hotplug_netdev_del(struct hotplug *hp, const char *id, struct perr *err);

/* A device_add request. backend "" means the device's id (StratoVirt's
 * MicroVm convention: node-name / netdev id == device id). */
struct hotplug_device {
	enum hotplug_kind kind;
	char id[VMM_ID_MAX];
	char backend[VMM_ID_MAX];
	int addr; /* index among the slots of this kind; -1: the first free one */
	char serial[21];
	uint8_t mac[6];
	bool mac_set;
};
int hotplug_device_add(struct hotplug *hp, const struct hotplug_device *req, struct perr *err);
/* 0: removed (DEVICE_DELETED already sent through device_deleted), or removal
 * pending until the guest releases the device. -ENOENT: no such device (the
 * caller reports QEMU's DeviceNotFound). */
int hotplug_device_del(struct hotplug *hp, const char *id, struct perr *err);

/* For query commands and tests. */
struct hotplug_slot_info {
	enum hotplug_kind kind;
	uint64_t base;	       /* MMIO window */
	const char *device_id; /* "" when free */
	const char *backend;   /* "" when free */
	bool unplug_pending;
};
unsigned hotplug_n_slots(const struct hotplug *hp);
int hotplug_slot_info(struct hotplug *hp, unsigned index, struct hotplug_slot_info *out);

#endif
