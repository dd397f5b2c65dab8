/*
 * libFuzzer target: a hostile guest driving virtio-balloon over the MMIO
 * transport: PFN arrays on the inflate and deflate queues, config writes to
 * `actual`, and host-side target changes in between. Same input layout as
 * fuzz_virtq_blk.c:
 *
 *   header   flags (u8), queue size (u16), desc/avail/used ring offsets (u16 each),
 *            action count (u8)
 *   actions  4 bytes each: op, arg (u8), value (u16)
 *   memory   the rest, copied to the start of guest RAM (descriptors, rings, PFNs)
 *
 * Guest RAM is two page-aligned heap regions of exactly their size, so the
 * balloon's madvise really runs and ASan sees any overrun.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/guest_mem.h"
#include "../../vmm/virtio/balloon.h"
#include "../../vmm/virtio/transport-mmio.h"

#define BASE	    0xd0000000ull
#define RAM0_GPA    0x10000ull
#define RAM0_SIZE   0x10000u
#define RAM1_GPA    0x30000ull /* a gap between the regions, like a memory hole */
#define RAM1_SIZE   0x1000u
#define MAX_ACTIONS 64

enum {
	FLAG_EVENT_IDX = 2,
	FLAG_INDIRECT = 4,
	FLAG_DEFLATE_ON_OOM = 8,
	FLAG_RAW_FEATURES = 16, /* write the action-derived features as-is */
};

enum {
	OP_NOTIFY,
	OP_POKE16, /* RAM0[arg * 256 + low byte of value] = value */
	OP_MMIO_WRITE,
	OP_MMIO_READ,
	OP_PUSH_AVAIL, /* driver-like: ring[idx % size] = value, idx++, notify queue arg & 1 */
	OP_ACK,
	OP_REINIT,
	OP_SET_TARGET, /* the host: balloon to value * 4 KiB */
	OP_COUNT,
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_ERROR);
	return 0;
}

struct fuzz_vm {
	struct guest_mem mem;
	uint8_t *ram0;
	uint8_t *ram1;
	struct bus bus;
	struct virtio_mmio *t;
	struct virtio_dev *dev;
	uint16_t qnum;
	uint64_t desc, avail, used;
	uint64_t features;
	uint16_t avail_idx;
};

static uint32_t mmio_rd(struct fuzz_vm *vm, uint64_t off)
{
	uint32_t v = 0;
	bus_read(&vm->bus, BASE + off, &v, 4);
	return v;
}

static void mmio_wr(struct fuzz_vm *vm, uint64_t off, uint32_t v)
{
	bus_write(&vm->bus, BASE + off, &v, 4);
}

/* Both queues share the rings' layout parameters, the deflate queue 0x800 further. */
static void driver_init(struct fuzz_vm *vm)
{
	mmio_wr(vm, 0x070, 0);
	mmio_wr(vm, 0x070, 1);
	mmio_wr(vm, 0x070, 3);
	mmio_wr(vm, 0x024, 0);
	mmio_wr(vm, 0x020, (uint32_t)vm->features);
	mmio_wr(vm, 0x024, 1);
	mmio_wr(vm, 0x020, (uint32_t)(vm->features >> 32));
	mmio_wr(vm, 0x070, 11);
	for (uint32_t q = 0; q < 2; q++) {
		uint64_t shift = 0x800ull * q;
		mmio_wr(vm, 0x030, q);
		mmio_wr(vm, 0x038, vm->qnum);
		mmio_wr(vm, 0x080, (uint32_t)(vm->desc + shift));
		mmio_wr(vm, 0x084, (uint32_t)((vm->desc + shift) >> 32));
		mmio_wr(vm, 0x090, (uint32_t)(vm->avail + shift));
		mmio_wr(vm, 0x094, (uint32_t)((vm->avail + shift) >> 32));
		mmio_wr(vm, 0x0a0, (uint32_t)(vm->used + shift));
		mmio_wr(vm, 0x0a4, (uint32_t)((vm->used + shift) >> 32));
		mmio_wr(vm, 0x044, 1);
	}
	mmio_wr(vm, 0x070, 15);
	vm->avail_idx = 0;
}

static void run_action(struct fuzz_vm *vm, uint8_t op, uint8_t arg, uint16_t value)
{
	switch (op % OP_COUNT) {
	case OP_NOTIFY:
		mmio_wr(vm, 0x050, arg & 2 ? value : arg & 1);
		break;
	case OP_POKE16: {
		size_t off = (size_t)arg * 256 + (value & 0xff);
		if (off + 2 <= RAM0_SIZE)
			memcpy(vm->ram0 + off, &value, 2);
		break;
	}
	case OP_MMIO_WRITE:
		mmio_wr(vm, (uint64_t)arg * 4 % 0x200, value | (uint32_t)value << 16);
		break;
	case OP_MMIO_READ:
		(void)mmio_rd(vm, (uint64_t)arg * 4 % 0x200);
		break;
	case OP_PUSH_AVAIL: {
		uint16_t size = vm->qnum ? vm->qnum : 1;
		uint64_t base = vm->avail + 0x800ull * (arg & 1);
		uint64_t slot = base + 4 + 2ull * (vm->avail_idx % size);
		uint64_t idx = base + 2;
		if (slot >= RAM0_GPA && slot + 2 <= RAM0_GPA + RAM0_SIZE && idx >= RAM0_GPA &&
		    idx + 2 <= RAM0_GPA + RAM0_SIZE) {
			memcpy(vm->ram0 + (slot - RAM0_GPA), &value, 2);
			vm->avail_idx++;
			memcpy(vm->ram0 + (idx - RAM0_GPA), &vm->avail_idx, 2);
		}
		mmio_wr(vm, 0x050, arg & 1);
		break;
	}
	case OP_ACK:
		mmio_wr(vm, 0x064, mmio_rd(vm, 0x060));
		break;
	case OP_REINIT:
		driver_init(vm);
		break;
	case OP_SET_TARGET: {
		struct perr err;
		(void)virtio_balloon_set_target(vm->dev, (uint64_t)value * 4096, &err);
		(void)virtio_balloon_actual_bytes(vm->dev);
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum { HDR = 10 };
	if (size < HDR)
		return 0;
	uint8_t flags = data[0];
	uint16_t qnum, desc_off, avail_off, used_off;
	memcpy(&qnum, data + 1, 2);
	memcpy(&desc_off, data + 3, 2);
	memcpy(&avail_off, data + 5, 2);
	memcpy(&used_off, data + 7, 2);
	unsigned n_actions = data[9] % (MAX_ACTIONS + 1);
	data += HDR;
	size -= HDR;
	if (size < 4 * (size_t)n_actions)
		n_actions = (unsigned)(size / 4);
	const uint8_t *actions = data;
	data += 4 * (size_t)n_actions;
	size -= 4 * (size_t)n_actions;

	struct fuzz_vm vm = {0};
	void *ram0 = NULL, *ram1 = NULL;
	if (posix_memalign(&ram0, 4096, RAM0_SIZE) || posix_memalign(&ram1, 4096, RAM1_SIZE))
		abort();
	vm.ram0 = ram0;
	vm.ram1 = ram1;
	memset(vm.ram0, 0, RAM0_SIZE);
	memset(vm.ram1, 0, RAM1_SIZE);
	memcpy(vm.ram0, data, size < RAM0_SIZE ? size : RAM0_SIZE);
	if (size > RAM0_SIZE)
		memcpy(vm.ram1, data + RAM0_SIZE,
		       size - RAM0_SIZE < RAM1_SIZE ? size - RAM0_SIZE : RAM1_SIZE);
	guest_mem_add_region(&vm.mem, RAM0_GPA, RAM0_SIZE, vm.ram0);
	guest_mem_add_region(&vm.mem, RAM1_GPA, RAM1_SIZE, vm.ram1);
	bus_init(&vm.bus);

	vm.qnum = flags & 0x80 ? qnum : (uint16_t)(1u << (qnum % 8));
	vm.desc = RAM0_GPA + desc_off;
	vm.avail = RAM0_GPA + avail_off;
	vm.used = RAM0_GPA + used_off;
	vm.features = 1ull << 32; /* VERSION_1 */
	if (flags & FLAG_EVENT_IDX)
		vm.features |= 1ull << 29;
	if (flags & FLAG_INDIRECT)
		vm.features |= 1ull << 28;
	if (flags & FLAG_DEFLATE_ON_OOM)
		vm.features |= 1ull << 2;
	if (flags & FLAG_RAW_FEATURES)
		vm.features |= (uint64_t)qnum << 8;

	struct vmm_balloon cfg = {.present = true, .deflate_on_oom = flags & FLAG_DEFLATE_ON_OOM};
	struct perr err = {0};
	if (virtio_balloon_create(&cfg, RAM0_SIZE + RAM1_SIZE, &vm.dev, &err) < 0)
		abort();
	struct virtio_mmio_host host = {
	    .mem = &vm.mem,
	    .mmio_bus = &vm.bus,
	    .loop = NULL,
	    .vm_fd = -1,
	    .base = BASE,
	    .gsi = 5,
	};
	if (virtio_mmio_attach(&host, vm.dev, &vm.t, &err) < 0)
		abort();

	driver_init(&vm);
	for (unsigned i = 0; i < n_actions; i++) {
		const uint8_t *a = actions + 4 * (size_t)i;
		uint16_t value;
		memcpy(&value, a + 2, 2);
		run_action(&vm, a[0], a[1], value);
	}
	/* Always end with notifications, so that the rings in memory are parsed. */
	mmio_wr(&vm, 0x050, 0);
	mmio_wr(&vm, 0x050, 1);

	virtio_mmio_detach(vm.t);
	bus_destroy(&vm.bus);
	free(vm.ram0);
	free(vm.ram1);
	return 0;
}
