/*
 * The fake guest shared by the virtio libFuzzer targets (fuzz_virtq_*.c): a
 * hostile driver on the MMIO transport whose RAM, ring layout and actions
 * all come from the fuzz input. A target describes its device in a
 * struct vqfuzz_device and its LLVMFuzzerTestOneInput returns
 * vqfuzz_run_one(&that_device, data, size). The input is
 *
 *   header   flags (u8), queue size (u16), ring_sets times the desc/avail/used
 *            ring offsets (u16 each), action count (u8)
 *   actions  4 bytes each: op, arg (u8), value (u16)
 *   memory   the rest, copied to the start of guest RAM (descriptors, rings,
 *            buffers)
 *
 * Guest RAM is two page-aligned heap regions of exactly their size with a gap
 * between them, like a memory hole, so that ASan sees any overrun and
 * madvise() on guest pages really runs. The device has no event loop, so a
 * queue notification is handled at once.
 */
#ifndef PETREL_TEST_VIRTQ_FUZZ_HARNESS_H
#define PETREL_TEST_VIRTQ_FUZZ_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/guest_mem.h"
#include "../../vmm/virtio/transport-mmio.h"

#define VQFUZZ_BASE	   0xd0000000ull
#define VQFUZZ_RAM0_GPA	   0x10000ull
#define VQFUZZ_RAM0_SIZE   0x10000u
#define VQFUZZ_RAM1_GPA	   0x30000ull
#define VQFUZZ_RAM1_SIZE   0x1000u
#define VQFUZZ_MAX_ACTIONS 64
#define VQFUZZ_MAX_QUEUES  4

/* virtio-mmio registers (virtio 1.2 §4.2.2). */
enum {
	VQFUZZ_REG_DRV_FEATURES = 0x020,
	VQFUZZ_REG_DRV_FEATURES_SEL = 0x024,
	VQFUZZ_REG_QUEUE_SEL = 0x030,
	VQFUZZ_REG_QUEUE_NUM = 0x038,
	VQFUZZ_REG_QUEUE_READY = 0x044,
	VQFUZZ_REG_QUEUE_NOTIFY = 0x050,
	VQFUZZ_REG_INTERRUPT_STATUS = 0x060,
	VQFUZZ_REG_INTERRUPT_ACK = 0x064,
	VQFUZZ_REG_STATUS = 0x070,
	VQFUZZ_REG_QUEUE_DESC = 0x080,
	VQFUZZ_REG_QUEUE_AVAIL = 0x090,
	VQFUZZ_REG_QUEUE_USED = 0x0a0,
	VQFUZZ_REG_CONFIG = 0x100,
};

/* Header flag bits every target reads the same way; the others are the device's. */
enum {
	VQFUZZ_FLAG_EVENT_IDX = 2,
	VQFUZZ_FLAG_INDIRECT = 4,
	VQFUZZ_FLAG_RAW_FEATURES = 16, /* the queue size bits become features too */
	VQFUZZ_FLAG_RAW_QSIZE = 0x80,  /* the queue size as-is, not a small power of 2 */
};

enum {
	VQFUZZ_OP_NOTIFY, /* queue arg % notify_span, or queue `value` when arg & 0x80 */
	VQFUZZ_OP_POKE16, /* RAM0[arg * 256 + low byte of value] = value */
	VQFUZZ_OP_MMIO_WRITE,
	VQFUZZ_OP_MMIO_READ,
	/* Driver-like on queue arg % queues: ring[idx % size] = value, idx++, notify. */
	VQFUZZ_OP_PUSH_AVAIL,
	VQFUZZ_OP_ACK,
	VQFUZZ_OP_REINIT,
	VQFUZZ_OP_DEVICE, /* the device's own ops count from here */
};

struct vqfuzz_vm {
	struct guest_mem mem;
	uint8_t *ram0;
	uint8_t *ram1;
	struct bus bus;
	struct virtio_mmio *t;
	struct virtio_dev *dev;
	int backend_peer; /* the host's end of the device backend, if any; closed at the end */
	uint8_t flags;
	uint16_t qnum;
	uint64_t rings[VQFUZZ_MAX_QUEUES][3]; /* per queue: desc, avail, used */
	uint64_t features;
	uint16_t avail_idx[VQFUZZ_MAX_QUEUES];
};

struct vqfuzz_device {
	unsigned ring_sets;	    /* desc/avail/used offset triples in the header */
	unsigned queues;	    /* queues the driver sets up (<= VQFUZZ_MAX_QUEUES) */
	unsigned notify_span;	    /* OP_NOTIFY reaches queues below it, missing ones too */
	unsigned qsize_log2_span;   /* queue sizes are 1 << (raw % span) */
	unsigned raw_feature_shift; /* FLAG_RAW_FEATURES ors in raw queue size << shift */
	unsigned device_ops;	    /* ops from VQFUZZ_OP_DEVICE on */
	int final_notify[VQFUZZ_MAX_QUEUES + 1]; /* queues notified at the end, -1 ends */
	/* Queue layout from the header's offsets; NULL: queue q uses triple q. */
	void (*layout)(struct vqfuzz_vm *vm, const uint16_t *off);
	/* Device feature bits the driver accepts for these flags, besides the common ones. */
	uint64_t (*features)(uint8_t flags);
	int (*create)(struct vqfuzz_vm *vm, struct virtio_dev **dev, struct perr *err);
	void (*action)(struct vqfuzz_vm *vm, unsigned op, uint8_t arg, uint16_t value);
	void (*finish)(struct vqfuzz_vm *vm); /* after the device is gone, optional */
};

/* libFuzzer's entry points; LLVMFuzzerInitialize is optional. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline uint32_t vqfuzz_mmio_read(struct vqfuzz_vm *vm, uint64_t off)
{
	uint32_t v = 0;
	bus_read(&vm->bus, VQFUZZ_BASE + off, &v, 4);
	return v;
}

static inline void vqfuzz_mmio_write(struct vqfuzz_vm *vm, uint64_t off, uint32_t v)
{
	bus_write(&vm->bus, VQFUZZ_BASE + off, &v, 4);
}

static inline void vqfuzz_notify(struct vqfuzz_vm *vm, uint32_t queue)
{
	vqfuzz_mmio_write(vm, VQFUZZ_REG_QUEUE_NOTIFY, queue);
}

static inline void vqfuzz_write64(struct vqfuzz_vm *vm, uint64_t off, uint64_t v)
{
	vqfuzz_mmio_write(vm, off, (uint32_t)v);
	vqfuzz_mmio_write(vm, off + 4, (uint32_t)(v >> 32));
}

/* The driver's initialization up to FEATURES_OK (virtio 1.2 §3.1.1): reset,
 * ACKNOWLEDGE, DRIVER, then vm->features. */
static inline void vqfuzz_driver_negotiate(struct vqfuzz_vm *vm)
{
	vqfuzz_mmio_write(vm, VQFUZZ_REG_STATUS, 0);
	vqfuzz_mmio_write(vm, VQFUZZ_REG_STATUS, 1);
	vqfuzz_mmio_write(vm, VQFUZZ_REG_STATUS, 3);
	vqfuzz_mmio_write(vm, VQFUZZ_REG_DRV_FEATURES_SEL, 0);
	vqfuzz_mmio_write(vm, VQFUZZ_REG_DRV_FEATURES, (uint32_t)vm->features);
	vqfuzz_mmio_write(vm, VQFUZZ_REG_DRV_FEATURES_SEL, 1);
	vqfuzz_mmio_write(vm, VQFUZZ_REG_DRV_FEATURES, (uint32_t)(vm->features >> 32));
	vqfuzz_mmio_write(vm, VQFUZZ_REG_STATUS, 11);
}

/* Queue `index` on the rings of vm->rings[set] (§4.2.3.2). */
static inline void vqfuzz_setup_queue(struct vqfuzz_vm *vm, unsigned index, unsigned set)
{
	vqfuzz_mmio_write(vm, VQFUZZ_REG_QUEUE_SEL, index);
	vqfuzz_mmio_write(vm, VQFUZZ_REG_QUEUE_NUM, vm->qnum);
	vqfuzz_write64(vm, VQFUZZ_REG_QUEUE_DESC, vm->rings[set][0]);
	vqfuzz_write64(vm, VQFUZZ_REG_QUEUE_AVAIL, vm->rings[set][1]);
	vqfuzz_write64(vm, VQFUZZ_REG_QUEUE_USED, vm->rings[set][2]);
	vqfuzz_mmio_write(vm, VQFUZZ_REG_QUEUE_READY, 1);
}

static inline void vqfuzz_driver_ok(struct vqfuzz_vm *vm)
{
	vqfuzz_mmio_write(vm, VQFUZZ_REG_STATUS, 15);
}

/* The whole initialization, queue q on the rings of vm->rings[q]. */
static inline void vqfuzz_driver_init(struct vqfuzz_vm *vm, unsigned queues)
{
	vqfuzz_driver_negotiate(vm);
	for (unsigned q = 0; q < queues; q++) {
		vqfuzz_setup_queue(vm, q, q);
		vm->avail_idx[q] = 0;
	}
	vqfuzz_driver_ok(vm);
}

/* What a driver does to offer a chain: ring[idx % size] = head, idx++, notify. */
static inline void vqfuzz_push_avail(struct vqfuzz_vm *vm, unsigned q, uint16_t head)
{
	uint16_t size = vm->qnum ? vm->qnum : 1;
	uint64_t slot = vm->rings[q][1] + 4 + 2ull * (vm->avail_idx[q] % size);
	uint64_t idx = vm->rings[q][1] + 2;
	const uint64_t end = VQFUZZ_RAM0_GPA + VQFUZZ_RAM0_SIZE;
	/* Only where the driver could write: a ring inside RAM0. */
	if (slot >= VQFUZZ_RAM0_GPA && slot + 2 <= end && idx >= VQFUZZ_RAM0_GPA &&
	    idx + 2 <= end) {
		memcpy(vm->ram0 + (slot - VQFUZZ_RAM0_GPA), &head, 2);
		vm->avail_idx[q]++;
		memcpy(vm->ram0 + (idx - VQFUZZ_RAM0_GPA), &vm->avail_idx[q], 2);
	}
	vqfuzz_notify(vm, q);
}

static inline void vqfuzz_run_action(const struct vqfuzz_device *d, struct vqfuzz_vm *vm,
				     uint8_t op, uint8_t arg, uint16_t value)
{
	unsigned code = op % (VQFUZZ_OP_DEVICE + d->device_ops);
	switch (code) {
	case VQFUZZ_OP_NOTIFY:
		vqfuzz_notify(vm, arg & 0x80 ? value : arg % d->notify_span);
		break;
	case VQFUZZ_OP_POKE16: {
		size_t off = (size_t)arg * 256 + (value & 0xff);
		if (off + 2 <= VQFUZZ_RAM0_SIZE)
			memcpy(vm->ram0 + off, &value, 2);
		break;
	}
	case VQFUZZ_OP_MMIO_WRITE:
		vqfuzz_mmio_write(vm, (uint64_t)arg * 4 % 0x200, value | (uint32_t)value << 16);
		break;
	case VQFUZZ_OP_MMIO_READ:
		(void)vqfuzz_mmio_read(vm, (uint64_t)arg * 4 % 0x200);
		break;
	case VQFUZZ_OP_PUSH_AVAIL:
		vqfuzz_push_avail(vm, arg % d->queues, value);
		break;
	case VQFUZZ_OP_ACK:
		vqfuzz_mmio_write(vm, VQFUZZ_REG_INTERRUPT_ACK,
				  vqfuzz_mmio_read(vm, VQFUZZ_REG_INTERRUPT_STATUS));
		break;
	case VQFUZZ_OP_REINIT:
		vqfuzz_driver_init(vm, d->queues);
		break;
	default:
		d->action(vm, code, arg, value);
		break;
	}
}

/* Page-aligned and exactly sized; abort() only on the harness's own failures. */
static inline uint8_t *vqfuzz_ram_alloc(size_t size)
{
	void *p = NULL;
	if (posix_memalign(&p, 4096, size))
		abort();
	memset(p, 0, size);
	return p;
}

static inline int vqfuzz_run_one(const struct vqfuzz_device *d, const uint8_t *data, size_t size)
{
	const size_t hdr = 4 + 6 * (size_t)d->ring_sets;
	uint16_t raw_qnum, off[3 * VQFUZZ_MAX_QUEUES];
	if (size < hdr)
		return 0;
	log_set_level(LOG_ERROR); /* the guest's mistakes are the point */
	uint8_t flags = data[0];
	memcpy(&raw_qnum, data + 1, 2);
	memcpy(off, data + 3, 6 * (size_t)d->ring_sets);
	unsigned n_actions = data[hdr - 1] % (VQFUZZ_MAX_ACTIONS + 1);
	data += hdr;
	size -= hdr;
	if (size < 4 * (size_t)n_actions)
		n_actions = (unsigned)(size / 4);
	const uint8_t *actions = data;
	data += 4 * (size_t)n_actions;
	size -= 4 * (size_t)n_actions;

	struct vqfuzz_vm vm = {.backend_peer = -1, .flags = flags};
	vm.ram0 = vqfuzz_ram_alloc(VQFUZZ_RAM0_SIZE);
	vm.ram1 = vqfuzz_ram_alloc(VQFUZZ_RAM1_SIZE);
	memcpy(vm.ram0, data, size < VQFUZZ_RAM0_SIZE ? size : VQFUZZ_RAM0_SIZE);
	if (size > VQFUZZ_RAM0_SIZE)
		memcpy(vm.ram1, data + VQFUZZ_RAM0_SIZE,
		       size - VQFUZZ_RAM0_SIZE < VQFUZZ_RAM1_SIZE ? size - VQFUZZ_RAM0_SIZE
								  : VQFUZZ_RAM1_SIZE);
	guest_mem_add_region(&vm.mem, VQFUZZ_RAM0_GPA, VQFUZZ_RAM0_SIZE, vm.ram0);
	guest_mem_add_region(&vm.mem, VQFUZZ_RAM1_GPA, VQFUZZ_RAM1_SIZE, vm.ram1);
	bus_init(&vm.bus);

	/* Small, mostly valid sizes, with the raw value now and then. */
	vm.qnum = flags & VQFUZZ_FLAG_RAW_QSIZE ? raw_qnum
						: (uint16_t)(1u << (raw_qnum % d->qsize_log2_span));
	if (d->layout) {
		d->layout(&vm, off);
	} else {
		for (unsigned q = 0; q < d->ring_sets; q++)
			for (unsigned r = 0; r < 3; r++)
				vm.rings[q][r] = VQFUZZ_RAM0_GPA + off[q * 3 + r];
	}
	vm.features = 1ull << 32; /* VERSION_1 */
	if (flags & VQFUZZ_FLAG_EVENT_IDX)
		vm.features |= 1ull << 29;
	if (flags & VQFUZZ_FLAG_INDIRECT)
		vm.features |= 1ull << 28;
	if (flags & VQFUZZ_FLAG_RAW_FEATURES)
		vm.features |= (uint64_t)raw_qnum << d->raw_feature_shift;
	if (d->features)
		vm.features |= d->features(flags);

	struct perr err = {0};
	struct virtio_mmio_host host = {
	    .mem = &vm.mem,
	    .mmio_bus = &vm.bus,
	    .loop = NULL,
	    .vm_fd = -1,
	    .base = VQFUZZ_BASE,
	    .gsi = 5,
	};
	/* The backends are the harness's own: these must work. */
	if (d->create(&vm, &vm.dev, &err) < 0 || virtio_mmio_attach(&host, vm.dev, &vm.t, &err) < 0)
		abort();

	vqfuzz_driver_init(&vm, d->queues);
	for (unsigned i = 0; i < n_actions; i++) {
		const uint8_t *a = actions + 4 * (size_t)i;
		uint16_t value;
		memcpy(&value, a + 2, 2);
		vqfuzz_run_action(d, &vm, a[0], a[1], value);
	}
	/* Always end with notifications, so that the rings in memory are parsed. */
	for (unsigned i = 0; d->final_notify[i] >= 0; i++)
		vqfuzz_notify(&vm, (uint32_t)d->final_notify[i]);

	virtio_mmio_detach(vm.t);
	if (vm.backend_peer >= 0)
		close(vm.backend_peer);
	bus_destroy(&vm.bus);
	free(vm.ram0);
	free(vm.ram1);
	if (d->finish)
		d->finish(&vm);
	return 0;
}

#endif
