/*
 * virtio-mmio transport, version 2 (virtio 1.2 §4.2.2).
 *
 * One 0x200-byte register window on the MMIO bus per device. Guest writes
 * arrive on vCPU threads; queue processing runs on host->loop. With a KVM VM
 * fd, QueueNotify writes go straight to an ioeventfd per queue (datamatch =
 * queue index) and interrupts are injected through an irqfd on host->gsi.
 * Without one (unit tests, fuzzing), QueueNotify writes are handled by the
 * MMIO handler and interrupts go to host->irq_raise.
 *
 * The Linux guest finds the device with
 *   virtio_mmio.device=512@<base>:<gsi>   (see VIRTIO_MMIO_SIZE)
 */
#ifndef PETREL_TRANSPORT_MMIO_H
#define PETREL_TRANSPORT_MMIO_H

#include <stdint.h>

#include "../../common/error.h"
#include "virtio_dev.h"

struct guest_mem;
struct bus;
struct eventloop;
struct virtio_mmio;

#define VIRTIO_MMIO_SIZE 0x200

struct virtio_mmio_host {
	struct guest_mem *mem;
	struct bus *mmio_bus;	/* the 0x200-byte window is registered here */
	struct eventloop *loop; /* queue notifications are processed here; NULL: synchronously
				 * on the thread that writes QueueNotify (tests) */
	int vm_fd;		/* KVM VM fd for KVM_IOEVENTFD / KVM_IRQFD; -1 without KVM */
	uint64_t base;		/* window base */
	unsigned gsi;		/* interrupt line */
	/* Used instead of an irqfd when vm_fd < 0; may be NULL. Called with the
	 * transport lock possibly held: it must not call back into the transport. */
	void (*irq_raise)(void *opaque, unsigned gsi);
	void *irq_opaque;
	/* Replaceable slots: a pending unplug completed (on host->loop). */
	void (*unplugged)(void *opaque, struct virtio_mmio *t);
	void *unplug_opaque;
};

/* Registers dev at host->base. Takes ownership of dev, also on failure.
 * Call before the vCPUs run, from the thread that runs host->loop or while
 * no thread runs it (an iothread's loop before iothread_start): struct
 * eventloop is single-threaded. Once attached, register accesses (vCPU
 * threads) and queue processing (host->loop's thread, the main loop or an
 * iothread) are serialised by the transport's per-device lock, so a device
 * on an iothread needs nothing more. */
int virtio_mmio_attach(const struct virtio_mmio_host *host, struct virtio_dev *dev,
		       struct virtio_mmio **out, struct perr *err);
/* Unregisters the window, tears down ioeventfds/irqfd, frees dev. From the
 * loop thread (or with the loop not running), before the loop is destroyed. */
void virtio_mmio_detach(struct virtio_mmio *t);

/*
 * Hot plug (docs/vmm.md "Hotplug"). virtio_mmio_attach() with dev == NULL
 * makes an empty, replaceable slot (needs host->loop): it answers
 * DeviceID 0, which a driver must ignore (virtio 1.2 §4.2.3.1.1), until a
 * device is plugged into it. The slot keeps its window, GSI and irqfd; the
 * device is swapped under the transport's lock, so a vCPU's register access
 * sees either the whole device or none. All three from host->loop's thread.
 */
/* Takes ownership of dev, also on failure. -EBUSY when the slot is not a free
 * replaceable one. The guest must probe the slot again to see it. */
int virtio_mmio_plug(struct virtio_mmio *t, struct virtio_dev *dev, struct perr *err);
/* 0: the device is gone (status 0 or only ACKNOWLEDGE: no driver had it). 1: removal is
 * pending until the guest resets the device (driver unbound, status 0);
 * the slot then answers as empty at once and host->unplugged runs on the
 * loop once the device is freed. A guest's rings are never freed while its
 * driver may still use them. -ENODEV: empty or not replaceable. */
int virtio_mmio_unplug(struct virtio_mmio *t);
bool virtio_mmio_is_empty(struct virtio_mmio *t);
bool virtio_mmio_unplug_pending(struct virtio_mmio *t);
uint64_t virtio_mmio_base(const struct virtio_mmio *t);

/*
 * Snapshots (core/snapshot.h). The VM is paused. virtio_mmio_save: the
 * transport's state and its queues' indices as a blob; a device that cannot be
 * saved now says why (ops->snapshot_check). virtio_mmio_restore: into a freshly
 * attached transport whose device came from the same options, with guest memory
 * already loaded; checks the blob against the device (kind, queues, features)
 * and sets the queues up again, validated as a guest's QueueReady is.
 * virtio_mmio_restore_finish, once the vCPUs and irqchip are restored: a config
 * change interrupt when the backend differs from the snapshot's (e.g. a disk's
 * capacity), and a pass over each ready queue.
 */
int virtio_mmio_save(struct virtio_mmio *t, void **blob, size_t *len, struct perr *err);
int virtio_mmio_restore(struct virtio_mmio *t, const void *blob, size_t len, struct perr *err);
void virtio_mmio_restore_finish(struct virtio_mmio *t);

/* For tests and diagnostics. NULL for an empty slot. */
struct virtio_dev *virtio_mmio_dev(struct virtio_mmio *t);
uint32_t virtio_mmio_status(struct virtio_mmio *t);

#endif
