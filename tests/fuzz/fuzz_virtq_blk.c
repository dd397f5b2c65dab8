/*
 * libFuzzer target: a hostile guest driving virtio-blk over the MMIO
 * transport. The input is
 *
 *   header   flags (u8), queue size (u16), desc/avail/used ring offsets (u16 each),
 *            action count (u8)
 *   actions  4 bytes each: op, arg (u8), value (u16)
 *   memory   the rest, copied to the start of guest RAM (descriptors, rings, buffers)
 *
 * Guest RAM is two exactly-sized heap regions (so ASan sees any overrun), the
 * backend a small temporary image. Build: make BUILD=build-x fuzz-bins.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/guest_mem.h"
#include "../../vmm/virtio/blk.h"
#include "../../vmm/virtio/transport-mmio.h"

#define BASE	    0xd0000000ull
#define RAM0_GPA    0x10000ull
#define RAM0_SIZE   0x10000u
#define RAM1_GPA    0x30000ull /* a gap between the regions, like a memory hole */
#define RAM1_SIZE   0x1000u
#define DISK_BYTES  (64u * 1024)
#define MAX_ACTIONS 64

enum {
	FLAG_READONLY = 1,
	FLAG_EVENT_IDX = 2,
	FLAG_INDIRECT = 4,
	FLAG_DIRECT = 8,
	FLAG_RAW_FEATURES = 16, /* write the action-derived features as-is */
};

enum {
	OP_NOTIFY,
	OP_POKE16, /* RAM0[arg * 256 + low byte of value] = value */
	OP_MMIO_WRITE,
	OP_MMIO_READ,
	OP_PUSH_AVAIL, /* driver-like: ring[idx % size] = value, idx++, notify */
	OP_ACK,
	OP_REINIT,
	OP_COUNT,
};

static char image_path[64];
static char *image_path_direct;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_ERROR);
	snprintf(image_path, sizeof(image_path), "/tmp/petrel-fuzz-blk-XXXXXX");
	int fd = mkstemp(image_path);
	if (fd < 0 || ftruncate(fd, DISK_BYTES) < 0)
		abort();
	close(fd);
	/* O_DIRECT needs a filesystem that supports it; /tmp usually does. */
	fd = open(image_path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		image_path_direct = image_path;
	}
	return 0;
}

__attribute__((destructor)) static void fuzz_cleanup(void)
{
	if (image_path[0])
		unlink(image_path);
}

struct fuzz_vm {
	struct guest_mem mem;
	uint8_t *ram0;
	uint8_t *ram1;
	struct bus bus;
	struct virtio_mmio *t;
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
	mmio_wr(vm, 0x030, 0);
	mmio_wr(vm, 0x038, vm->qnum);
	mmio_wr(vm, 0x080, (uint32_t)vm->desc);
	mmio_wr(vm, 0x084, (uint32_t)(vm->desc >> 32));
	mmio_wr(vm, 0x090, (uint32_t)vm->avail);
	mmio_wr(vm, 0x094, (uint32_t)(vm->avail >> 32));
	mmio_wr(vm, 0x0a0, (uint32_t)vm->used);
	mmio_wr(vm, 0x0a4, (uint32_t)(vm->used >> 32));
	mmio_wr(vm, 0x044, 1);
	mmio_wr(vm, 0x070, 15);
	vm->avail_idx = 0;
}

static void run_action(struct fuzz_vm *vm, uint8_t op, uint8_t arg, uint16_t value)
{
	switch (op % OP_COUNT) {
	case OP_NOTIFY:
		mmio_wr(vm, 0x050, arg & 1 ? value : 0);
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
		/* Where the driver would write, if the ring is inside RAM0. */
		uint16_t size = vm->qnum ? vm->qnum : 1;
		uint64_t slot = vm->avail + 4 + 2ull * (vm->avail_idx % size);
		uint64_t idx = vm->avail + 2;
		if (slot >= RAM0_GPA && slot + 2 <= RAM0_GPA + RAM0_SIZE && idx >= RAM0_GPA &&
		    idx + 2 <= RAM0_GPA + RAM0_SIZE) {
			memcpy(vm->ram0 + (slot - RAM0_GPA), &value, 2);
			vm->avail_idx++;
			memcpy(vm->ram0 + (idx - RAM0_GPA), &vm->avail_idx, 2);
		}
		mmio_wr(vm, 0x050, 0);
		break;
	}
	case OP_ACK:
		mmio_wr(vm, 0x064, mmio_rd(vm, 0x060));
		break;
	case OP_REINIT:
		driver_init(vm);
		break;
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
	vm.ram0 = calloc(1, RAM0_SIZE);
	vm.ram1 = calloc(1, RAM1_SIZE);
	if (!vm.ram0 || !vm.ram1)
		abort();
	memcpy(vm.ram0, data, size < RAM0_SIZE ? size : RAM0_SIZE);
	if (size > RAM0_SIZE)
		memcpy(vm.ram1, data + RAM0_SIZE,
		       size - RAM0_SIZE < RAM1_SIZE ? size - RAM0_SIZE : RAM1_SIZE);
	guest_mem_add_region(&vm.mem, RAM0_GPA, RAM0_SIZE, vm.ram0);
	guest_mem_add_region(&vm.mem, RAM1_GPA, RAM1_SIZE, vm.ram1);
	bus_init(&vm.bus);

	/* Small, mostly valid sizes, with the raw value now and then. */
	vm.qnum = flags & 0x80 ? qnum : (uint16_t)(1u << (qnum % 9));
	vm.desc = RAM0_GPA + desc_off;
	vm.avail = RAM0_GPA + avail_off;
	vm.used = RAM0_GPA + used_off;
	vm.features = 1ull << 32; /* VERSION_1 */
	if (flags & FLAG_EVENT_IDX)
		vm.features |= 1ull << 29;
	if (flags & FLAG_INDIRECT)
		vm.features |= 1ull << 28;
	if (flags & FLAG_RAW_FEATURES)
		vm.features |= (uint64_t)qnum << 8;

	struct vmm_drive drive = {0};
	snprintf(drive.id, sizeof(drive.id), "fuzz");
	snprintf(drive.file, sizeof(drive.file), "%s", image_path);
	drive.readonly = flags & FLAG_READONLY;
	drive.direct = (flags & FLAG_DIRECT) && image_path_direct;
	drive.iops_total = flags & 0x40 ? 4 : 0;
	struct vmm_blk_device dev = {0};
	snprintf(dev.id, sizeof(dev.id), "fuzz0");
	snprintf(dev.serial, sizeof(dev.serial), "fuzz-serial");

	struct perr err = {0};
	struct virtio_dev *vdev = NULL;
	if (virtio_blk_create(&drive, &dev, &vdev, &err) < 0)
		abort(); /* the image is ours: this must work */
	struct virtio_mmio_host host = {
	    .mem = &vm.mem,
	    .mmio_bus = &vm.bus,
	    .loop = NULL,
	    .vm_fd = -1,
	    .base = BASE,
	    .gsi = 5,
	};
	if (virtio_mmio_attach(&host, vdev, &vm.t, &err) < 0)
		abort();

	driver_init(&vm);
	for (unsigned i = 0; i < n_actions; i++) {
		const uint8_t *a = actions + 4 * (size_t)i;
		uint16_t value;
		memcpy(&value, a + 2, 2);
		run_action(&vm, a[0], a[1], value);
	}
	/* Always end with a notification, so that the rings in memory are parsed. */
	mmio_wr(&vm, 0x050, 0);

	virtio_mmio_detach(vm.t);
	bus_destroy(&vm.bus);
	free(vm.ram0);
	free(vm.ram1);
	return 0;
}
