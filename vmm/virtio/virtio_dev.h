/*
 * The contract between the virtio transport and a device model.
 *
 * The transport (transport-mmio.c, later transport-pci.c) owns everything the
 * guest controls at the transport level: the status state machine, feature
 * negotiation, queue selection and queue-index validation, queue sizes and
 * ring addresses. A device sees only validated queues and gets descriptor
 * chains from the virtqueue helpers, which have already bounds-checked them.
 * Each device keeps its ops in a `static const struct virtio_dev_ops` and
 * embeds a `struct virtio_dev` as its first member.
 *
 * Locking: the transport serialises every ops callback with its own lock, so
 * a device needs no lock for state only touched from its callbacks. The
 * virtqueue helpers and virtio_dev_needs_reset() must be called from within
 * a callback (queue_notify, activate, ...). virtio_dev_raise_irq() and
 * virtio_dev_kick() may be called from any thread.
 */
#ifndef PETREL_VIRTIO_DEV_H
#define PETREL_VIRTIO_DEV_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/error.h"

struct virtio_dev;
struct virtqueue;
struct eventloop;
struct guest_mem;

/* Device status bits (virtio 1.2 §2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE	 1u
#define VIRTIO_STATUS_DRIVER		 2u
#define VIRTIO_STATUS_DRIVER_OK		 4u
#define VIRTIO_STATUS_FEATURES_OK	 8u
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED		 128u

/* Reserved feature bits (§6). */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX	    29
#define VIRTIO_F_VERSION_1	    32

/* Interrupt reasons: InterruptStatus bits (§4.2.2, MMIO) / ISR status (PCI). */
#define VIRTIO_ISR_QUEUE  1u
#define VIRTIO_ISR_CONFIG 2u

/* Device IDs (§5). */
#define VIRTIO_ID_NET	  1
#define VIRTIO_ID_BLOCK	  2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_VSOCK	  19

#define VIRTIO_BIT(b) (1ull << (b))

struct virtio_dev_ops {
	const char *name; /* "virtio-blk" */
	uint32_t device_id;
	unsigned num_queues;
	uint16_t max_queue_size; /* a power of 2, <= VIRTQ_MAX_SIZE */
	/* Device feature bits (the transport adds VIRTIO_F_VERSION_1 and the ring bits). */
	uint64_t (*get_features)(struct virtio_dev *dev);
	/* Config space access; the transport has checked offset + len <= config_size. */
	void (*config_read)(struct virtio_dev *dev, uint32_t offset, void *data, unsigned len);
	void (*config_write)(struct virtio_dev *dev, uint32_t offset, const void *data,
			     unsigned len);
	uint32_t (*config_size)(struct virtio_dev *dev);
	/* Optional. Called once by the transport's attach, on the thread that builds the VM,
	 * after dev->mem and dev->loop are set: the place to add fds to the loop. */
	int (*realize)(struct virtio_dev *dev, struct perr *err);
	/* DRIVER_OK was set: the queues are live. Return <0 to fail the device. */
	int (*activate)(struct virtio_dev *dev);
	/* The guest notified queue `index` (already validated, the queue is ready). */
	void (*queue_notify)(struct virtio_dev *dev, unsigned index);
	/* The guest wrote 0 to status: drop all in-flight state. */
	void (*reset)(struct virtio_dev *dev);
	/* Frees the device, undoing realize() when it ran. */
	void (*destroy)(struct virtio_dev *dev);
	/* Optional, for snapshots (the VM is paused): 0 when the device's state is
	 * the transport's, with held[q] the chains it took from queue q and holds
	 * unused (the snapshot returns them to the ring); <0 and why when it cannot
	 * be saved: -EBUSY (connections open: retry), -ENOTSUP (a kernel backend
	 * owns the rings). */
	int (*snapshot_check)(struct virtio_dev *dev, uint16_t *held, struct perr *err);
};

/* What a device may ask of its transport; see the locking note above. */
struct virtio_transport_ops {
	void (*raise_irq)(struct virtio_dev *dev, uint32_t isr);
	void (*needs_reset)(struct virtio_dev *dev);
	void (*kick)(struct virtio_dev *dev, unsigned index);
	/* For kernel backends; see virtio_dev_queue_kick_fd() and virtio_dev_call_fd(). */
	int (*queue_kick_fd)(struct virtio_dev *dev, unsigned index);
	int (*call_fd)(struct virtio_dev *dev);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	char id[96];	       /* "virtio-blk rootfs", for messages */
	uint64_t features;     /* negotiated; valid once FEATURES_OK is set */
	struct virtqueue *vqs; /* ops->num_queues queues, owned by the transport */
	const struct guest_mem *mem;
	struct eventloop *loop; /* NULL when notifications are handled synchronously */
	const struct virtio_transport_ops *transport_ops;
	void *transport;
};

static inline bool virtio_dev_has_feature(const struct virtio_dev *dev, unsigned bit)
{
	return (dev->features & VIRTIO_BIT(bit)) != 0;
}

/* Signals the guest (used buffer or config change); any thread. */
static inline void virtio_dev_raise_irq(struct virtio_dev *dev, uint32_t isr)
{
	if (dev->transport_ops)
		dev->transport_ops->raise_irq(dev, isr);
}

/* Sets DEVICE_NEEDS_RESET and sends a config-change interrupt (§2.1.2).
 * From within an ops callback. */
static inline void virtio_dev_needs_reset(struct virtio_dev *dev)
{
	if (dev->transport_ops)
		dev->transport_ops->needs_reset(dev);
}

/* Makes queue_notify(index) run again later on the loop; any thread. */
static inline void virtio_dev_kick(struct virtio_dev *dev, unsigned index)
{
	if (dev->transport_ops)
		dev->transport_ops->kick(dev, index);
}

/*
 * Kernel backends (vhost). Both from realize() only, before the loop runs.
 *
 * virtio_dev_queue_kick_fd(): the transport stops processing queue `index`
 * itself (queue_notify is no longer called for it) and returns the eventfd
 * on which the guest's notifications for it arrive, e.g. for
 * VHOST_SET_VRING_KICK. The fd stays the transport's. -ENOTSUP when the
 * transport has no event loop.
 *
 * virtio_dev_call_fd(): an eventfd whose every write is a used-buffer
 * notification (InterruptStatus/ISR bit 0, then the interrupt), e.g. for
 * VHOST_SET_VRING_CALL. The transport owns it. With virtio-mmio, the guest's
 * handler needs InterruptStatus, so the transport relays it on its loop
 * instead of handing the irqfd itself to the kernel.
 */
static inline int virtio_dev_queue_kick_fd(struct virtio_dev *dev, unsigned index)
{
	if (!dev->transport_ops || !dev->transport_ops->queue_kick_fd)
		return -ENOTSUP;
	return dev->transport_ops->queue_kick_fd(dev, index);
}

static inline int virtio_dev_call_fd(struct virtio_dev *dev)
{
	if (!dev->transport_ops || !dev->transport_ops->call_fd)
		return -ENOTSUP;
	return dev->transport_ops->call_fd(dev);
}

#endif
