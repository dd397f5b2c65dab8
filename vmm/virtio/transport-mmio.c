#include "transport-mmio.h"

#include <endian.h>
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../core/bus.h"
#include "../core/eventloop.h"
#include "virtqueue.h"

/* Register offsets (§4.2.2, table "MMIO Device Register Layout"). */
#define REG_MAGIC_VALUE		0x000
#define REG_VERSION		0x004
#define REG_DEVICE_ID		0x008
#define REG_VENDOR_ID		0x00c
#define REG_DEVICE_FEATURES	0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES	0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL		0x030
#define REG_QUEUE_NUM_MAX	0x034
#define REG_QUEUE_NUM		0x038
#define REG_QUEUE_READY		0x044
#define REG_QUEUE_NOTIFY	0x050
#define REG_INTERRUPT_STATUS	0x060
#define REG_INTERRUPT_ACK	0x064
#define REG_STATUS		0x070
#define REG_QUEUE_DESC_LOW	0x080
#define REG_QUEUE_DESC_HIGH	0x084
#define REG_QUEUE_DRIVER_LOW	0x090
#define REG_QUEUE_DRIVER_HIGH	0x094
#define REG_QUEUE_DEVICE_LOW	0x0a0
#define REG_QUEUE_DEVICE_HIGH	0x0a4
#define REG_SHM_SEL		0x0ac
#define REG_SHM_LEN_LOW		0x0b0
#define REG_SHM_LEN_HIGH	0x0b4
#define REG_SHM_BASE_LOW	0x0b8
#define REG_SHM_BASE_HIGH	0x0bc
#define REG_CONFIG_GENERATION	0x0fc
#define REG_CONFIG		0x100

#define MMIO_MAGIC   0x74726976 /* "virt" */
#define MMIO_VERSION 2
#define MMIO_VENDOR  0x4c525450 /* "PTRL" */

/* Status bits a driver may set; DEVICE_NEEDS_RESET belongs to the device. */
#define STATUS_DRIVER_BITS                                                              \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | \
	 VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FAILED)

/* Ring features the transport implements for every device. */
#define TRANSPORT_FEATURES                                                          \
	(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
	 VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX))

struct mmio_queue {
	struct virtio_mmio *t;
	unsigned index;
	/* As last written by the driver; checked when QueueReady is set. */
	uint32_t num;
	uint64_t desc, driver, device;
	int notify_fd; /* eventfd watched in host->loop; -1 without a loop */
	bool in_loop;
	bool ioeventfd; /* notify_fd is assigned as a KVM ioeventfd */
};

struct virtio_mmio {
	struct virtio_mmio_host host;
	/* NULL: an empty replaceable slot. Changed under lock (plug/unplug), so a
	 * register access sees either the whole device or none. */
	struct virtio_dev *dev;
	/* Hot plug: attached empty, so devices may be plugged and unplugged. */
	bool replaceable;
	/* device_del asked; completes at the next reset (status 0). */
	bool unplug_pending;
	/* Reset while unplug_pending: answers as empty until unplug_efd runs. */
	bool ejected;
	/* Replaceable slots: written when ejected, handled on host->loop. */
	int unplug_efd;
	/* Serialises register accesses (vCPU threads) with queue processing (loop). */
	pthread_mutex_t lock;
	uint32_t status;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint64_t offered;
	uint64_t driver_features;
	bool driver_features_unknown; /* a bit beyond the 64 we know was written */
	uint32_t queue_sel;
	uint32_t interrupt_status;  /* __atomic: read and acked without the lock */
	uint32_t config_generation; /* __atomic */
	int irqfd;
	bool irqfd_assigned;
	int call_fd; /* virtio_dev_call_fd(): -1 until asked for */
	bool call_in_loop;
	bool registered;
	unsigned num_queues;
	struct mmio_queue *queues;
	struct virtqueue *vqs;
	bool restore_config_changed; /* virtio_mmio_restore found another backend */
	struct log_ratelimit ratelimit;
};

static const char *mmio_name(const struct virtio_mmio *t)
{
	if (!t->dev)
		return "virtio-mmio (empty slot)";
	return t->dev->id[0] ? t->dev->id : t->dev->ops->name;
}

/* Lock held. An empty (or ejected) slot answers as "no device" (DeviceID 0). */
static bool mmio_present(const struct virtio_mmio *t)
{
	return t->dev && !t->ejected;
}

#define mmio_guest_warn(t, fmt, ...) \
	LOG_GUEST_RATELIMITED(&(t)->ratelimit, "%s: " fmt, mmio_name(t), __VA_ARGS__)

/* Interrupts. */

static void mmio_signal(struct virtio_mmio *t, uint32_t isr)
{
	/* §4.2.3.4: InterruptStatus says why before the line is raised. */
	__atomic_fetch_or(&t->interrupt_status, isr, __ATOMIC_SEQ_CST);
	if (t->irqfd >= 0) {
		uint64_t one = 1;
		/* EAGAIN means the counter is saturated: an interrupt is pending anyway. */
		ssize_t n = write(t->irqfd, &one, sizeof(one));
		(void)n;
	} else if (t->host.irq_raise) {
		t->host.irq_raise(t->host.irq_opaque, t->host.gsi);
	}
}

static void mmio_raise_irq(struct virtio_dev *dev, uint32_t isr)
{
	struct virtio_mmio *t = dev->transport;
	if (isr & VIRTIO_ISR_CONFIG)
		__atomic_fetch_add(&t->config_generation, 1, __ATOMIC_SEQ_CST);
	mmio_signal(t, isr);
}

/* Lock held (called from queue processing or register writes). */
static void mmio_needs_reset(struct virtio_dev *dev)
{
	struct virtio_mmio *t = dev->transport;
	if (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	/* §2.1.2: a live driver learns about it through a config-change interrupt. */
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		mmio_signal(t, VIRTIO_ISR_CONFIG);
}

static void mmio_kick(struct virtio_dev *dev, unsigned index)
{
	struct virtio_mmio *t = dev->transport;
	if (index >= t->num_queues || t->queues[index].notify_fd < 0)
		return;
	uint64_t one = 1;
	ssize_t n = write(t->queues[index].notify_fd, &one, sizeof(one));
	(void)n;
}

/* Kernel backends (virtio_dev.h). Both run before the loop does. */
static int mmio_queue_kick_fd(struct virtio_dev *dev, unsigned index)
{
	struct virtio_mmio *t = dev->transport;
	if (index >= t->num_queues || t->queues[index].notify_fd < 0)
		return -ENOTSUP;
	struct mmio_queue *q = &t->queues[index];
	if (q->in_loop) {
		eventloop_remove(t->host.loop, q->notify_fd);
		q->in_loop = false;
	}
	/* From now on only the kernel reads it; the transport still closes it. */
	return q->notify_fd;
}

static void mmio_call_event(void *opaque, uint32_t events)
{
	struct virtio_mmio *t = opaque;
	(void)events;
	eventloop_fd_consume(t->call_fd);
	mmio_signal(t, VIRTIO_ISR_QUEUE);
}

static int mmio_call_fd(struct virtio_dev *dev)
{
	struct virtio_mmio *t = dev->transport;
	if (t->call_fd >= 0)
		return t->call_fd;
	if (!t->host.loop)
		return -ENOTSUP;
	t->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->call_fd < 0)
		return -errno;
	int ret = eventloop_add(t->host.loop, t->call_fd, EPOLLIN, mmio_call_event, t);
	if (ret < 0) {
		close(t->call_fd);
		t->call_fd = -1;
		return ret;
	}
	t->call_in_loop = true;
	return t->call_fd;
}

static const struct virtio_transport_ops mmio_transport_ops = {
    .raise_irq = mmio_raise_irq,
    .needs_reset = mmio_needs_reset,
    .kick = mmio_kick,
    .queue_kick_fd = mmio_queue_kick_fd,
    .call_fd = mmio_call_fd,
};

/* Queues. */

static int mmio_ioeventfd(struct virtio_mmio *t, struct mmio_queue *q, bool assign)
{
	struct kvm_ioeventfd ioe = {
	    .datamatch = q->index,
	    .addr = t->host.base + REG_QUEUE_NOTIFY,
	    .len = 4,
	    .fd = q->notify_fd,
	    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	return ioctl(t->host.vm_fd, KVM_IOEVENTFD, &ioe) < 0 ? -errno : 0;
}

/* Lock held, or no other thread can reach t. */
static void mmio_queue_disable(struct virtio_mmio *t, struct mmio_queue *q)
{
	if (q->ioeventfd) {
		int ret = mmio_ioeventfd(t, q, false);
		if (ret < 0)
			log_warn("%s: queue %u: KVM_IOEVENTFD deassign: %s", mmio_name(t), q->index,
				 strerror(-ret));
		q->ioeventfd = false;
	}
	virtq_reset(&t->vqs[q->index]);
}

/* Validates the queue's layout and makes it ready (a guest's QueueReady, or a
 * restored snapshot's). */
static int mmio_queue_start(struct virtio_mmio *t, struct mmio_queue *q, struct perr *err)
{
	struct virtqueue *vq = &t->vqs[q->index];
	int ret;
	if (q->num > UINT16_MAX)
		ret = perr_setx(err, -EINVAL, "queue size %u is too large", q->num);
	else
		ret = virtq_setup(vq, (uint16_t)q->num, t->dev->ops->max_queue_size, q->desc,
				  q->driver, q->device, t->driver_features, err);
	if (ret < 0)
		return ret;
	/* Notifications then bypass this handler entirely. Without ioeventfd,
	 * QueueNotify writes still arrive through the MMIO handler. */
	if (t->host.vm_fd >= 0 && q->notify_fd >= 0) {
		ret = mmio_ioeventfd(t, q, true);
		if (ret < 0)
			log_warn("%s: queue %u: KVM_IOEVENTFD: %s; notifications take MMIO exits",
				 mmio_name(t), q->index, strerror(-ret));
		else
			q->ioeventfd = true;
	}
	return 0;
}

static void mmio_queue_enable(struct virtio_mmio *t, struct mmio_queue *q)
{
	struct perr err;
	if (mmio_queue_start(t, q, &err) < 0) {
		mmio_guest_warn(t, "queue %u not enabled: %s", q->index, err.msg);
		mmio_needs_reset(t->dev);
	}
}

/* Lock held. */
static void mmio_queue_process(struct virtio_mmio *t, unsigned index)
{
	if (!(t->status & VIRTIO_STATUS_DRIVER_OK) || (t->status & VIRTIO_STATUS_FAILED))
		return;
	if (!t->vqs[index].ready)
		return;
	t->dev->ops->queue_notify(t->dev, index);
}

static void mmio_queue_event(void *opaque, uint32_t events)
{
	struct mmio_queue *q = opaque;
	struct virtio_mmio *t = q->t;
	(void)events;
	eventloop_fd_consume(q->notify_fd);
	pthread_mutex_lock(&t->lock);
	mmio_queue_process(t, q->index);
	pthread_mutex_unlock(&t->lock);
}

static void mmio_notify(struct virtio_mmio *t, uint32_t index)
{
	if (index >= t->num_queues) {
		mmio_guest_warn(t, "notify for queue %u, which does not exist", index);
		return;
	}
	struct mmio_queue *q = &t->queues[index];
	if (q->notify_fd >= 0) {
		uint64_t one = 1;
		ssize_t n = write(q->notify_fd, &one, sizeof(one));
		(void)n;
	} else {
		mmio_queue_process(t, index);
	}
}

/* Status (§2.1, §3.1.1). */

static void mmio_reset(struct virtio_mmio *t)
{
	if (t->dev->ops->reset)
		t->dev->ops->reset(t->dev);
	for (unsigned i = 0; i < t->num_queues; i++) {
		struct mmio_queue *q = &t->queues[i];
		mmio_queue_disable(t, q);
		q->num = t->dev->ops->max_queue_size;
		q->desc = q->driver = q->device = 0;
	}
	t->status = 0;
	t->device_features_sel = 0;
	t->driver_features_sel = 0;
	t->driver_features = 0;
	t->driver_features_unknown = false;
	t->queue_sel = 0;
	t->dev->features = 0;
	__atomic_store_n(&t->interrupt_status, 0, __ATOMIC_SEQ_CST);
	/* The driver let go of the device (its rings are no longer ours to
	 * touch): a pending unplug can complete. The loop frees the device. */
	if (t->unplug_pending && !t->ejected) {
		t->ejected = true;
		uint64_t one = 1;
		ssize_t n = write(t->unplug_efd, &one, sizeof(one));
		(void)n;
	}
}

static bool mmio_features_acceptable(struct virtio_mmio *t)
{
	uint64_t extra = t->driver_features & ~t->offered;
	if (extra || t->driver_features_unknown) {
		mmio_guest_warn(t, "driver accepted features 0x%llx that were not offered",
				(unsigned long long)extra);
		return false;
	}
	/* §6.1: a modern device may refuse drivers that lack VERSION_1. */
	if (!(t->driver_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		mmio_guest_warn(t, "driver did not accept VIRTIO_F_VERSION_1 (features 0x%llx)",
				(unsigned long long)t->driver_features);
		return false;
	}
	return true;
}

static void mmio_set_status(struct virtio_mmio *t, uint32_t value)
{
	if (value == 0) {
		mmio_reset(t);
		return;
	}
	uint32_t old = t->status & STATUS_DRIVER_BITS;
	uint32_t next = value & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	uint32_t added = next & ~old;
	const char *bad = NULL;

	/* §2.1.1: the driver only adds bits, in order; clearing needs a reset. */
	if (next & ~STATUS_DRIVER_BITS)
		bad = "unknown bits";
	else if ((old & ~next) != 0)
		bad = "clears bits without a reset";
	else if ((added & VIRTIO_STATUS_DRIVER) && !(next & VIRTIO_STATUS_ACKNOWLEDGE))
		bad = "DRIVER without ACKNOWLEDGE";
	else if ((added & VIRTIO_STATUS_FEATURES_OK) && !(next & VIRTIO_STATUS_DRIVER))
		bad = "FEATURES_OK without DRIVER";
	else if ((added & VIRTIO_STATUS_DRIVER_OK) && !(next & VIRTIO_STATUS_FEATURES_OK))
		bad = "DRIVER_OK without FEATURES_OK";
	if (bad) {
		mmio_guest_warn(t, "status 0x%x -> 0x%x ignored: %s", t->status, value, bad);
		return;
	}
	/* §2.2.2: refusing the feature set means leaving FEATURES_OK clear; the
	 * driver reads it back and gives up. DRIVER_OK cannot follow then. */
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !mmio_features_acceptable(t)) {
		next &= ~(VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
		added &= ~(VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	}
	t->status = next | (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	if (added & VIRTIO_STATUS_FEATURES_OK)
		t->dev->features = t->driver_features;
	if (added & VIRTIO_STATUS_DRIVER_OK) {
		if (t->dev->ops->activate && t->dev->ops->activate(t->dev) < 0) {
			mmio_needs_reset(t->dev);
		} else if (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) {
			/* A queue was refused during setup: tell the now-live driver. */
			mmio_signal(t, VIRTIO_ISR_CONFIG);
		}
	}
}

/* Registers. */

static struct mmio_queue *mmio_selected_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->num_queues ? &t->queues[t->queue_sel] : NULL;
}

/* Queue layout may change only between FEATURES_OK and DRIVER_OK (§3.1.1
 * step 7), and not while the queue is enabled. */
static struct mmio_queue *mmio_configurable_queue(struct virtio_mmio *t, uint64_t reg)
{
	struct mmio_queue *q = mmio_selected_queue(t);
	if (!q) {
		mmio_guest_warn(t, "register 0x%03llx: QueueSel %u does not exist",
				(unsigned long long)reg, t->queue_sel);
		return NULL;
	}
	if ((t->status & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)) !=
	    VIRTIO_STATUS_FEATURES_OK) {
		mmio_guest_warn(t, "register 0x%03llx: queue %u set up in status 0x%x",
				(unsigned long long)reg, q->index, t->status);
		return NULL;
	}
	if (t->vqs[q->index].ready) {
		mmio_guest_warn(t, "register 0x%03llx: queue %u is enabled",
				(unsigned long long)reg, q->index);
		return NULL;
	}
	return q;
}

static void set_low(uint64_t *v, uint32_t lo)
{
	*v = (*v & 0xffffffff00000000ull) | lo;
}

static void set_high(uint64_t *v, uint32_t hi)
{
	*v = (*v & 0xffffffffull) | ((uint64_t)hi << 32);
}

static uint32_t mmio_reg_read(struct virtio_mmio *t, uint64_t reg)
{
	struct mmio_queue *q;
	switch (reg) {
	case REG_MAGIC_VALUE:
		return MMIO_MAGIC;
	case REG_VERSION:
		return MMIO_VERSION;
	case REG_DEVICE_ID:
		return t->dev->ops->device_id;
	case REG_VENDOR_ID:
		return MMIO_VENDOR;
	case REG_DEVICE_FEATURES:
		if (t->device_features_sel > 1)
			return 0;
		return (uint32_t)(t->offered >> (32 * t->device_features_sel));
	case REG_QUEUE_NUM_MAX:
		/* §4.2.2.1: 0 means the queue is not available. */
		q = mmio_selected_queue(t);
		return q ? t->dev->ops->max_queue_size : 0;
	case REG_QUEUE_READY:
		q = mmio_selected_queue(t);
		return q && t->vqs[q->index].ready;
	case REG_STATUS:
		return t->status;
	case REG_SHM_LEN_LOW:
	case REG_SHM_LEN_HIGH:
	case REG_SHM_BASE_LOW:
	case REG_SHM_BASE_HIGH:
		/* §4.2.2: all ones means there is no such shared memory region. */
		return 0xffffffff;
	case REG_CONFIG_GENERATION:
		return __atomic_load_n(&t->config_generation, __ATOMIC_SEQ_CST);
	default:
		/* Write-only or reserved registers read as 0. */
		return 0;
	}
}

static void mmio_reg_write(struct virtio_mmio *t, uint64_t reg, uint32_t v)
{
	struct mmio_queue *q;
	switch (reg) {
	case REG_DEVICE_FEATURES_SEL:
		t->device_features_sel = v;
		break;
	case REG_DRIVER_FEATURES:
		if ((t->status & (VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK)) !=
		    VIRTIO_STATUS_DRIVER) {
			mmio_guest_warn(t, "DriverFeatures written in status 0x%x, ignored",
					t->status);
			break;
		}
		if (t->driver_features_sel == 0)
			set_low(&t->driver_features, v);
		else if (t->driver_features_sel == 1)
			set_high(&t->driver_features, v);
		else if (v)
			t->driver_features_unknown = true;
		break;
	case REG_DRIVER_FEATURES_SEL:
		t->driver_features_sel = v;
		break;
	case REG_QUEUE_SEL:
		/* Any value is accepted here and validated where it is used. */
		t->queue_sel = v;
		break;
	case REG_QUEUE_NUM:
		if ((q = mmio_configurable_queue(t, reg)))
			q->num = v;
		break;
	case REG_QUEUE_DESC_LOW:
		if ((q = mmio_configurable_queue(t, reg)))
			set_low(&q->desc, v);
		break;
	case REG_QUEUE_DESC_HIGH:
		if ((q = mmio_configurable_queue(t, reg)))
			set_high(&q->desc, v);
		break;
	case REG_QUEUE_DRIVER_LOW:
		if ((q = mmio_configurable_queue(t, reg)))
			set_low(&q->driver, v);
		break;
	case REG_QUEUE_DRIVER_HIGH:
		if ((q = mmio_configurable_queue(t, reg)))
			set_high(&q->driver, v);
		break;
	case REG_QUEUE_DEVICE_LOW:
		if ((q = mmio_configurable_queue(t, reg)))
			set_low(&q->device, v);
		break;
	case REG_QUEUE_DEVICE_HIGH:
		if ((q = mmio_configurable_queue(t, reg)))
			set_high(&q->device, v);
		break;
	case REG_QUEUE_READY:
		if (v == 0) {
			/* Disabling is always allowed (Linux does it when deleting queues). */
			if ((q = mmio_selected_queue(t)))
				mmio_queue_disable(t, q);
		} else if ((q = mmio_configurable_queue(t, reg))) {
			mmio_queue_enable(t, q);
		}
		break;
	case REG_QUEUE_NOTIFY:
		mmio_notify(t, v);
		break;
	case REG_STATUS:
		mmio_set_status(t, v);
		break;
	case REG_SHM_SEL:
		break;
	default:
		mmio_guest_warn(t, "write 0x%x to read-only or reserved register 0x%03llx ignored",
				v, (unsigned long long)reg);
		break;
	}
}

static uint32_t mmio_config_size(struct virtio_mmio *t)
{
	return t->dev->ops->config_size ? t->dev->ops->config_size(t->dev) : 0;
}

static bool mmio_config_access_ok(struct virtio_mmio *t, uint64_t off, unsigned len)
{
	/* §4.2.2.2: 8-, 16- and 32-bit accesses, naturally aligned. */
	if ((len != 1 && len != 2 && len != 4) || off % len) {
		mmio_guest_warn(t, "%u-byte config access at 0x%llx ignored", len,
				(unsigned long long)off);
		return false;
	}
	uint32_t size = mmio_config_size(t);
	if (off >= size || len > size - off) {
		mmio_guest_warn(t, "config access [0x%llx, +%u) beyond config size %u",
				(unsigned long long)off, len, size);
		return false;
	}
	return true;
}

static void mmio_bus_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct virtio_mmio *t = opaque;
	memset(data, 0, len);
	if (offset == REG_INTERRUPT_STATUS && len == 4) {
		/* Lock-free: the guest's interrupt handler must not wait for disk I/O. */
		uint32_t v = htole32(__atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST));
		memcpy(data, &v, 4);
		return;
	}
	pthread_mutex_lock(&t->lock);
	if (!mmio_present(t)) {
		/* §4.2.3.1.1: the driver must ignore a device with DeviceID 0. */
		if (len == 4 && offset == REG_MAGIC_VALUE)
			memcpy(data, &(uint32_t){htole32(MMIO_MAGIC)}, 4);
		else if (len == 4 && offset == REG_VERSION)
			memcpy(data, &(uint32_t){htole32(MMIO_VERSION)}, 4);
		else if (len == 4 && offset == REG_VENDOR_ID)
			memcpy(data, &(uint32_t){htole32(MMIO_VENDOR)}, 4);
	} else if (offset >= REG_CONFIG) {
		if (mmio_config_access_ok(t, offset - REG_CONFIG, len) && t->dev->ops->config_read)
			t->dev->ops->config_read(t->dev, (uint32_t)(offset - REG_CONFIG), data,
						 len);
	} else if (len != 4 || offset % 4) {
		/* §4.2.2.2: registers are 32 bits wide. */
		mmio_guest_warn(t, "%u-byte read of register 0x%03llx ignored", len,
				(unsigned long long)offset);
	} else {
		uint32_t v = htole32(mmio_reg_read(t, offset));
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
}

static void mmio_bus_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct virtio_mmio *t = opaque;
	uint32_t v = 0;
	if (offset == REG_INTERRUPT_ACK && len == 4) {
		memcpy(&v, data, 4);
		__atomic_fetch_and(&t->interrupt_status, ~le32toh(v), __ATOMIC_SEQ_CST);
		return;
	}
	pthread_mutex_lock(&t->lock);
	if (!mmio_present(t)) {
		/* Nothing to drive: a guest that still writes (a driver torn down
		 * after the device left) is ignored. */
	} else if (offset >= REG_CONFIG) {
		if (mmio_config_access_ok(t, offset - REG_CONFIG, len) && t->dev->ops->config_write)
			t->dev->ops->config_write(t->dev, (uint32_t)(offset - REG_CONFIG), data,
						  len);
	} else if (len != 4 || offset % 4) {
		mmio_guest_warn(t, "%u-byte write to register 0x%03llx ignored", len,
				(unsigned long long)offset);
	} else {
		memcpy(&v, data, 4);
		mmio_reg_write(t, offset, le32toh(v));
	}
	pthread_mutex_unlock(&t->lock);
}

static const struct bus_ops mmio_bus_ops = {
    .read = mmio_bus_read,
    .write = mmio_bus_write,
};

/* Attach / detach. */

/*
 * A device's share of the transport: queues, their notify eventfds, the
 * vhost call fd, the device itself. Only from host->loop's thread (or with
 * the loop not running), while t->dev is NULL (not yet visible, or already
 * hidden under the lock): no register access touches these fields then.
 */
static void mmio_dev_teardown(struct virtio_mmio *t, struct virtio_dev *dev)
{
	for (unsigned i = 0; t->queues && t->vqs && i < t->num_queues; i++) {
		struct mmio_queue *q = &t->queues[i];
		if (q->ioeventfd) {
			/* mmio_queue_disable() needs t->dev for its messages. */
			int ret = mmio_ioeventfd(t, q, false);
			if (ret < 0)
				log_warn("%s: queue %u: KVM_IOEVENTFD deassign: %s", dev->ops->name,
					 i, strerror(-ret));
			q->ioeventfd = false;
		}
		virtq_reset(&t->vqs[i]);
		if (q->in_loop)
			eventloop_remove(t->host.loop, q->notify_fd);
		if (q->notify_fd >= 0)
			close(q->notify_fd);
	}
	if (t->call_in_loop)
		eventloop_remove(t->host.loop, t->call_fd);
	if (t->call_fd >= 0)
		close(t->call_fd);
	t->call_in_loop = false;
	t->call_fd = -1;
	if (dev->ops->destroy)
		dev->ops->destroy(dev);
	free(t->queues);
	free(t->vqs);
	t->queues = NULL;
	t->vqs = NULL;
	t->num_queues = 0;
}

static int mmio_check_ops(const struct virtio_dev_ops *ops, struct perr *err)
{
	uint16_t max = ops->max_queue_size;
	if (!ops->num_queues || !ops->queue_notify)
		return perr_setx(err, -EINVAL, "device has no queues");
	if (!max || (max & (max - 1)) || max > VIRTQ_MAX_SIZE)
		return perr_setx(err, -EINVAL, "bad maximum queue size %u", max);
	return 0;
}

/* Sets dev up in t (t->dev still NULL); on failure undoes it and destroys dev. */
static int mmio_dev_setup(struct virtio_mmio *t, struct virtio_dev *dev, struct perr *err)
{
	const struct virtio_mmio_host *host = &t->host;
	int ret = mmio_check_ops(dev->ops, err);
	if (ret < 0) {
		if (dev->ops->destroy)
			dev->ops->destroy(dev);
		return ret;
	}
	t->call_fd = -1;
	t->num_queues = dev->ops->num_queues;
	t->queues = calloc(t->num_queues, sizeof(*t->queues));
	t->vqs = calloc(t->num_queues, sizeof(*t->vqs));
	if (!t->queues || !t->vqs) {
		ret = perr_set(err, -ENOMEM, "virtio-mmio");
		goto fail;
	}
	dev->vqs = t->vqs;
	dev->mem = host->mem;
	dev->loop = host->loop;
	dev->transport_ops = &mmio_transport_ops;
	dev->transport = t;
	dev->features = 0;
	for (unsigned i = 0; i < t->num_queues; i++) {
		struct mmio_queue *q = &t->queues[i];
		q->t = t;
		q->index = i;
		q->num = dev->ops->max_queue_size;
		q->notify_fd = -1;
		virtq_init(&t->vqs[i], dev, host->mem, i);
	}
	t->offered =
	    (dev->ops->get_features ? dev->ops->get_features(dev) : 0) | TRANSPORT_FEATURES;

	for (unsigned i = 0; host->loop && i < t->num_queues; i++) {
		struct mmio_queue *q = &t->queues[i];
		q->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->notify_fd < 0) {
			ret = perr_set(err, -errno, "queue %u: eventfd", i);
			goto fail;
		}
		ret = eventloop_add(host->loop, q->notify_fd, EPOLLIN, mmio_queue_event, q);
		if (ret < 0) {
			perr_set(err, ret, "queue %u: watching the notify eventfd", i);
			goto fail;
		}
		q->in_loop = true;
	}
	if (dev->ops->realize) {
		ret = dev->ops->realize(dev, err);
		if (ret < 0)
			goto fail;
	}
	return 0;
fail:
	mmio_dev_teardown(t, dev);
	return ret;
}

static void mmio_unplug_event(void *opaque, uint32_t events);

static void mmio_free(struct virtio_mmio *t)
{
	if (t->registered)
		bus_unregister(t->host.mmio_bus, t->host.base);
	if (t->dev) {
		struct virtio_dev *dev = t->dev;
		t->dev = NULL;
		mmio_dev_teardown(t, dev);
	}
	if (t->irqfd_assigned) {
		struct kvm_irqfd irqfd = {
		    .fd = (uint32_t)t->irqfd,
		    .gsi = t->host.gsi,
		    .flags = KVM_IRQFD_FLAG_DEASSIGN,
		};
		if (ioctl(t->host.vm_fd, KVM_IRQFD, &irqfd) < 0)
			log_warn("%s: KVM_IRQFD deassign: %s", mmio_name(t), strerror(errno));
	}
	if (t->irqfd >= 0)
		close(t->irqfd);
	if (t->unplug_efd >= 0) {
		eventloop_remove(t->host.loop, t->unplug_efd);
		close(t->unplug_efd);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int virtio_mmio_attach(const struct virtio_mmio_host *host, struct virtio_dev *dev,
		       struct virtio_mmio **out, struct perr *err)
{
	const char *what = dev ? (dev->id[0] ? dev->id : dev->ops->name) : "empty virtio-mmio slot";
	char name[sizeof(dev->id)];
	snprintf(name, sizeof(name), "%s", what);
	struct virtio_mmio *t = calloc(1, sizeof(*t));
	if (!t) {
		if (dev && dev->ops->destroy)
			dev->ops->destroy(dev);
		return perr_set(err, -ENOMEM, "%s", name);
	}
	int ret;
	t->host = *host;
	t->irqfd = -1;
	t->call_fd = -1;
	t->unplug_efd = -1;
	t->replaceable = !dev;
	pthread_mutex_init(&t->lock, NULL);
	if (dev) {
		ret = mmio_dev_setup(t, dev, err);
		if (ret < 0)
			goto fail;
		t->dev = dev;
	} else {
		/* The unplug completes on the loop, never on the vCPU that reset. */
		if (!host->loop) {
			ret = perr_setx(err, -EINVAL, "a replaceable slot needs an event loop");
			goto fail;
		}
		t->unplug_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->unplug_efd < 0) {
			ret = perr_set(err, -errno, "eventfd");
			goto fail;
		}
		ret = eventloop_add(host->loop, t->unplug_efd, EPOLLIN, mmio_unplug_event, t);
		if (ret < 0) {
			close(t->unplug_efd);
			t->unplug_efd = -1;
			perr_set(err, ret, "event loop");
			goto fail;
		}
	}
	/* The irqfd belongs to the slot: it outlives the devices plugged into it. */
	if (host->vm_fd >= 0) {
		t->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->irqfd < 0) {
			ret = perr_set(err, -errno, "irqfd: eventfd");
			goto fail;
		}
		struct kvm_irqfd irqfd = {.fd = (uint32_t)t->irqfd, .gsi = host->gsi};
		if (ioctl(host->vm_fd, KVM_IRQFD, &irqfd) < 0) {
			ret = perr_set(err, -errno, "KVM_IRQFD gsi %u", host->gsi);
			goto fail;
		}
		t->irqfd_assigned = true;
	}
	ret = bus_register(host->mmio_bus, host->base, VIRTIO_MMIO_SIZE, &mmio_bus_ops, t);
	if (ret < 0) {
		perr_set(err, ret, "MMIO window [0x%llx, +0x%x)", (unsigned long long)host->base,
			 VIRTIO_MMIO_SIZE);
		goto fail;
	}
	t->registered = true;
	*out = t;
	return 0;
fail:
	perr_wrap(err, "%s", name);
	mmio_free(t);
	return ret;
}

void virtio_mmio_detach(struct virtio_mmio *t)
{
	if (t)
		mmio_free(t);
}

/* Hot plug. */

int virtio_mmio_plug(struct virtio_mmio *t, struct virtio_dev *dev, struct perr *err)
{
	if (!t->replaceable || t->dev) {
		if (dev->ops->destroy)
			dev->ops->destroy(dev);
		return perr_setx(err, -EBUSY, "virtio-mmio slot at 0x%llx is not free",
				 (unsigned long long)t->host.base);
	}
	int ret = mmio_dev_setup(t, dev, err);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&t->lock);
	/* A fresh device: the state the guest sees after a reset (§2.1). */
	t->status = 0;
	t->device_features_sel = 0;
	t->driver_features_sel = 0;
	t->driver_features = 0;
	t->driver_features_unknown = false;
	t->queue_sel = 0;
	t->unplug_pending = false;
	t->ejected = false;
	__atomic_store_n(&t->interrupt_status, 0, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&t->config_generation, 1, __ATOMIC_SEQ_CST);
	t->dev = dev;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* Loop thread: hides the device under the lock, then frees it outside. */
static void mmio_unplug_now(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	struct virtio_dev *dev = t->dev;
	t->dev = NULL;
	t->unplug_pending = false;
	t->ejected = false;
	t->status = 0;
	__atomic_store_n(&t->interrupt_status, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&t->lock);
	if (dev)
		mmio_dev_teardown(t, dev);
}

static void mmio_unplug_event(void *opaque, uint32_t events)
{
	struct virtio_mmio *t = opaque;
	(void)events;
	eventloop_fd_consume(t->unplug_efd);
	pthread_mutex_lock(&t->lock);
	bool ejected = t->dev && t->ejected;
	pthread_mutex_unlock(&t->lock);
	if (!ejected)
		return;
	mmio_unplug_now(t);
	if (t->host.unplugged)
		t->host.unplugged(t->host.unplug_opaque, t);
}

int virtio_mmio_unplug(struct virtio_mmio *t)
{
	if (!t->replaceable || !t->dev)
		return -ENODEV;
	pthread_mutex_lock(&t->lock);
	/* No driver owns the rings: never probed, or reset. Linux writes
	 * ACKNOWLEDGE again after a driver's remove (virtio_dev_remove), so
	 * that bit alone still means "no driver". */
	bool idle = (t->status & ~VIRTIO_STATUS_ACKNOWLEDGE) == 0 && !t->ejected;
	if (!idle)
		t->unplug_pending = true;
	pthread_mutex_unlock(&t->lock);
	if (!idle)
		return 1;
	mmio_unplug_now(t);
	return 0;
}

bool virtio_mmio_is_empty(struct virtio_mmio *t)
{
	return !t->dev;
}

bool virtio_mmio_unplug_pending(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	bool pending = t->dev && t->unplug_pending;
	pthread_mutex_unlock(&t->lock);
	return pending;
}

uint64_t virtio_mmio_base(const struct virtio_mmio *t)
{
	return t->host.base;
}

struct virtio_dev *virtio_mmio_dev(struct virtio_mmio *t)
{
	return t->dev;
}

uint32_t virtio_mmio_status(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	uint32_t status = t->status;
	pthread_mutex_unlock(&t->lock);
	return status;
}

/* Snapshots. */

#define MMIO_SAVED_MAGIC      0x534d4d56u /* "VMMS" */
#define MMIO_SAVED_CONFIG_MAX 256u

struct mmio_saved {
	uint32_t magic;
	uint32_t device_id; /* 0: an empty slot */
	uint32_t num_queues;
	uint32_t status;
	uint64_t offered;
	uint64_t driver_features;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint32_t interrupt_status, config_generation;
	uint32_t config_len;
	uint8_t config[MMIO_SAVED_CONFIG_MAX];
};

struct mmio_saved_queue {
	uint32_t num;
	uint32_t ready;
	uint64_t desc, driver, device;
	uint16_t last_avail_idx, used_idx, signalled_used;
	uint8_t signalled_used_valid;
	uint8_t pad;
};

static uint32_t mmio_config_len(struct virtio_mmio *t)
{
	uint32_t size = mmio_config_size(t);
	return size < MMIO_SAVED_CONFIG_MAX ? size : MMIO_SAVED_CONFIG_MAX;
}

static void mmio_config_copy(struct virtio_mmio *t, uint8_t *out, uint32_t len)
{
	/* Through the guest's own access sizes, so a device sees nothing new. */
	for (uint32_t off = 0; off < len; off++)
		if (t->dev->ops->config_read)
			t->dev->ops->config_read(t->dev, off, out + off, 1);
}

int virtio_mmio_save(struct virtio_mmio *t, void **blob, size_t *len, struct perr *err)
{
	pthread_mutex_lock(&t->lock);
	unsigned nq = mmio_present(t) ? t->num_queues : 0;
	size_t size = sizeof(struct mmio_saved) + nq * sizeof(struct mmio_saved_queue);
	uint8_t *buf = calloc(1, size);
	uint16_t *held = calloc(nq ? nq : 1, sizeof(*held));
	int ret = 0;
	if (!buf || !held) {
		ret = perr_setx(err, -ENOMEM, "out of memory");
		goto out;
	}
	struct mmio_saved *s = (struct mmio_saved *)buf;
	s->magic = MMIO_SAVED_MAGIC;
	if (!mmio_present(t))
		goto out; /* an empty slot: device_id 0 */
	if (t->dev->ops->snapshot_check &&
	    (ret = t->dev->ops->snapshot_check(t->dev, held, err)) < 0)
		goto out;
	s->device_id = t->dev->ops->device_id;
	s->num_queues = nq;
	s->status = t->status;
	s->offered = t->offered;
	s->driver_features = t->driver_features;
	s->device_features_sel = t->device_features_sel;
	s->driver_features_sel = t->driver_features_sel;
	s->queue_sel = t->queue_sel;
	s->interrupt_status = __atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST);
	s->config_generation = __atomic_load_n(&t->config_generation, __ATOMIC_SEQ_CST);
	s->config_len = mmio_config_len(t);
	mmio_config_copy(t, s->config, s->config_len);
	struct mmio_saved_queue *sq = (struct mmio_saved_queue *)(buf + sizeof(*s));
	for (unsigned i = 0; i < nq; i++) {
		const struct mmio_queue *q = &t->queues[i];
		const struct virtqueue *vq = &t->vqs[i];
		sq[i] = (struct mmio_saved_queue){
		    .num = q->num,
		    .ready = vq->ready,
		    .desc = q->desc,
		    .driver = q->driver,
		    .device = q->device,
		    /* Chains the device took and holds unused go back to the ring. */
		    .last_avail_idx = (uint16_t)(vq->last_avail_idx - held[i]),
		    .used_idx = vq->used_idx,
		    .signalled_used = vq->signalled_used,
		    .signalled_used_valid = vq->signalled_used_valid,
		};
	}
out:
	pthread_mutex_unlock(&t->lock);
	free(held);
	if (ret < 0) {
		free(buf);
		return perr_wrap(err, "%s", mmio_name(t));
	}
	*blob = buf;
	*len = size;
	return 0;
}

/* Lock held; t has a device. */
static int mmio_restore_locked(struct virtio_mmio *t, const struct mmio_saved *s,
			       const struct mmio_saved_queue *sq, struct perr *err)
{
	if (!sq || !t->queues || !t->vqs)
		return perr_setx(err, -EINVAL, "no queues to restore");
	if (s->device_id != t->dev->ops->device_id || s->num_queues != t->num_queues)
		return perr_setx(err, -EINVAL,
				 "the snapshot has device %u with %u queues here, the command line "
				 "device %u with %u queues",
				 s->device_id, s->num_queues, t->dev->ops->device_id,
				 t->num_queues);
	if (s->driver_features & ~t->offered)
		return perr_setx(err, -EINVAL,
				 "the guest uses features 0x%llx that this device does not offer "
				 "(0x%llx)",
				 (unsigned long long)s->driver_features,
				 (unsigned long long)t->offered);
	if ((s->status & ~(STATUS_DRIVER_BITS | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ||
	    s->config_len > MMIO_SAVED_CONFIG_MAX)
		return perr_setx(err, -EINVAL, "bad saved status 0x%x", s->status);
	t->driver_features = s->driver_features;
	t->device_features_sel = s->device_features_sel;
	t->driver_features_sel = s->driver_features_sel;
	t->queue_sel = s->queue_sel;
	t->status = s->status;
	if (s->status & VIRTIO_STATUS_FEATURES_OK)
		t->dev->features = s->driver_features;
	for (unsigned i = 0; i < t->num_queues; i++) {
		struct mmio_queue *q = &t->queues[i];
		q->num = sq[i].num;
		q->desc = sq[i].desc;
		q->driver = sq[i].driver;
		q->device = sq[i].device;
		if (!sq[i].ready)
			continue;
		int ret = mmio_queue_start(t, q, err);
		if (ret < 0)
			return perr_wrap(err, "queue %u", i);
		struct virtqueue *vq = &t->vqs[i];
		vq->last_avail_idx = sq[i].last_avail_idx;
		vq->used_idx = sq[i].used_idx;
		vq->signalled_used = sq[i].signalled_used;
		vq->signalled_used_valid = sq[i].signalled_used_valid;
	}
	__atomic_store_n(&t->interrupt_status, s->interrupt_status, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->config_generation, s->config_generation, __ATOMIC_SEQ_CST);
	if ((s->status & VIRTIO_STATUS_DRIVER_OK) && !(s->status & VIRTIO_STATUS_FAILED) &&
	    t->dev->ops->activate && t->dev->ops->activate(t->dev) < 0)
		return perr_setx(err, -EIO, "activating the restored device failed");
	/* A backend that differs from the snapshot's (another disk's size, another MAC)
	 * is announced to the driver as a config change (§2.5.1). */
	uint8_t now[MMIO_SAVED_CONFIG_MAX];
	uint32_t len = mmio_config_len(t);
	mmio_config_copy(t, now, len);
	t->restore_config_changed = len != s->config_len || memcmp(now, s->config, len) != 0;
	return 0;
}

int virtio_mmio_restore(struct virtio_mmio *t, const void *blob, size_t len, struct perr *err)
{
	struct mmio_saved s;
	if (len < sizeof(s))
		return perr_setx(err, -EINVAL, "%s: saved state of %zu bytes is too short",
				 mmio_name(t), len);
	memcpy(&s, blob, sizeof(s));
	if (s.magic != MMIO_SAVED_MAGIC || s.num_queues > VIRTQ_MAX_SIZE ||
	    len != sizeof(s) + (size_t)s.num_queues * sizeof(struct mmio_saved_queue))
		return perr_setx(err, -EINVAL, "%s: bad saved state", mmio_name(t));
	pthread_mutex_lock(&t->lock);
	int ret = 0;
	if (!mmio_present(t)) {
		if (s.device_id)
			ret = perr_setx(err, -EINVAL,
					"the snapshot has device %u here; the command line none",
					s.device_id);
	} else {
		/* At least one entry, so that sq is never NULL. */
		struct mmio_saved_queue *sq = calloc(s.num_queues ? s.num_queues : 1, sizeof(*sq));
		if (!sq)
			ret = perr_setx(err, -ENOMEM, "out of memory");
		else
			memcpy(sq, (const uint8_t *)blob + sizeof(s), s.num_queues * sizeof(*sq));
		if (ret == 0)
			ret = mmio_restore_locked(t, &s, sq, err);
		free(sq);
	}
	pthread_mutex_unlock(&t->lock);
	return ret < 0 ? perr_wrap(err, "%s", mmio_name(t)) : 0;
}

void virtio_mmio_restore_finish(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	bool live = mmio_present(t) && (t->status & VIRTIO_STATUS_DRIVER_OK);
	bool changed = live && t->restore_config_changed;
	t->restore_config_changed = false;
	if (changed)
		__atomic_fetch_add(&t->config_generation, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&t->lock);
	if (changed)
		mmio_signal(t, VIRTIO_ISR_CONFIG);
	/* Notifications the saved VM had not processed went with its eventfds. */
	for (unsigned i = 0; live && i < t->num_queues; i++)
		if (t->vqs[i].ready && t->queues[i].notify_fd >= 0)
			mmio_notify(t, i);
}
