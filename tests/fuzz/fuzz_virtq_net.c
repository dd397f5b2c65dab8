/*
 * libFuzzer target: a hostile guest driving virtio-net over the MMIO
 * transport, mostly through its transmit ring. The input is
 *
 *   header   flags (u8), queue size (u16), desc/avail/used ring offsets (u16
 *            each) of the transmit queue, action count (u8); the receive
 *            queue's rings sit 0x8000 bytes further
 *   actions  4 bytes each: op, arg (u8), value (u16)
 *   memory   the rest, copied to the start of guest RAM (descriptors, rings, frames)
 *
 * Guest RAM is two exactly-sized heap regions (so ASan sees any overrun); the
 * tap is a SOCK_DGRAM socketpair whose other end the actions can write frames
 * into. Build: make BUILD=build-x fuzz-bins.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/guest_mem.h"
#include "../../vmm/virtio/net.h"
#include "../../vmm/virtio/transport-mmio.h"

#define BASE	    0xd0000000ull
#define RAM0_GPA    0x10000ull
#define RAM0_SIZE   0x10000u
#define RAM1_GPA    0x30000ull /* a gap between the regions, like a memory hole */
#define RAM1_SIZE   0x1000u
#define RX_OFFSET   0x8000u
#define MAX_ACTIONS 64
#define NET_TXQ	    1

enum {
	FLAG_EVENT_IDX = 2,
	FLAG_INDIRECT = 4,
	FLAG_NO_MRG = 8,
	FLAG_RAW_FEATURES = 16, /* the device features come from the queue size bits */
	FLAG_ALL_OFFLOADS = 32, /* accept every offered net feature */
};

enum {
	OP_NOTIFY,
	OP_POKE16, /* RAM0[arg * 256 + low byte of value] = value */
	OP_MMIO_WRITE,
	OP_MMIO_READ,
	OP_PUSH_AVAIL, /* driver-like on queue arg & 1: ring[idx % size] = value, idx++, notify */
	OP_ACK,
	OP_REINIT,
	OP_PEER_SEND, /* the host sends a frame of value bytes (header included) */
	OP_CONFIG_READ,
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
	int peer;
	uint16_t qnum;
	uint64_t desc, avail, used;
	uint64_t features;
	uint16_t avail_idx[2];
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

static void setup_queue(struct fuzz_vm *vm, unsigned index, uint64_t shift)
{
	mmio_wr(vm, 0x030, index);
	mmio_wr(vm, 0x038, vm->qnum);
	mmio_wr(vm, 0x080, (uint32_t)(vm->desc + shift));
	mmio_wr(vm, 0x084, (uint32_t)((vm->desc + shift) >> 32));
	mmio_wr(vm, 0x090, (uint32_t)(vm->avail + shift));
	mmio_wr(vm, 0x094, (uint32_t)((vm->avail + shift) >> 32));
	mmio_wr(vm, 0x0a0, (uint32_t)(vm->used + shift));
	mmio_wr(vm, 0x0a4, (uint32_t)((vm->used + shift) >> 32));
	mmio_wr(vm, 0x044, 1);
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
	setup_queue(vm, 0, RX_OFFSET);
	setup_queue(vm, 1, 0);
	mmio_wr(vm, 0x070, 15);
	vm->avail_idx[0] = vm->avail_idx[1] = 0;
}

static void push_avail(struct fuzz_vm *vm, unsigned q, uint16_t value)
{
	uint16_t size = vm->qnum ? vm->qnum : 1;
	uint64_t avail = vm->avail + (q == 0 ? RX_OFFSET : 0);
	uint64_t slot = avail + 4 + 2ull * (vm->avail_idx[q] % size);
	uint64_t idx = avail + 2;
	/* Where the driver would write, if the ring is inside RAM0. */
	if (slot >= RAM0_GPA && slot + 2 <= RAM0_GPA + RAM0_SIZE && idx >= RAM0_GPA &&
	    idx + 2 <= RAM0_GPA + RAM0_SIZE) {
		memcpy(vm->ram0 + (slot - RAM0_GPA), &value, 2);
		vm->avail_idx[q]++;
		memcpy(vm->ram0 + (idx - RAM0_GPA), &vm->avail_idx[q], 2);
	}
	mmio_wr(vm, 0x050, q);
}

static void run_action(struct fuzz_vm *vm, uint8_t op, uint8_t arg, uint16_t value)
{
	switch (op % OP_COUNT) {
	case OP_NOTIFY:
		mmio_wr(vm, 0x050, arg & 2 ? value : (arg & 1));
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
	case OP_PUSH_AVAIL:
		push_avail(vm, arg & 1, value);
		break;
	case OP_ACK:
		mmio_wr(vm, 0x064, mmio_rd(vm, 0x060));
		break;
	case OP_REINIT:
		driver_init(vm);
		break;
	case OP_PEER_SEND: {
		/* Frames up to 64 KiB + 12 and beyond, with a header from guest RAM. */
		static uint8_t frame[(1u << 17)];
		size_t len = (size_t)value * (arg & 1 ? 2 : 1);
		memcpy(frame, vm->ram0 + (arg & 0xf0) * 16, 12);
		ssize_t n = send(vm->peer, frame, len, MSG_DONTWAIT);
		(void)n;
		mmio_wr(vm, 0x050, 0);
		break;
	}
	case OP_CONFIG_READ: {
		uint8_t b[4];
		unsigned len = 1u << (arg % 3);
		bus_read(&vm->bus, BASE + 0x100 + (value % 16), b, len);
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

	vm.qnum = flags & 0x80 ? qnum : (uint16_t)(1u << (qnum % 9));
	vm.desc = RAM0_GPA + (desc_off & 0x7fff);
	vm.avail = RAM0_GPA + (avail_off & 0x7fff);
	vm.used = RAM0_GPA + (used_off & 0x7fff);
	vm.features = 1ull << 32; /* VERSION_1 */
	if (flags & FLAG_EVENT_IDX)
		vm.features |= 1ull << 29;
	if (flags & FLAG_INDIRECT)
		vm.features |= 1ull << 28;
	if (flags & FLAG_ALL_OFFLOADS)
		vm.features |= 0x1bba3ull; /* CSUM..STATUS as offered */
	if (!(flags & FLAG_NO_MRG))
		vm.features |= 1ull << 15;
	if (flags & FLAG_RAW_FEATURES)
		vm.features |= qnum;

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	vm.peer = sv[1];
	struct vmm_net_device dev = {0};
	snprintf(dev.id, sizeof(dev.id), "fuzz0");
	snprintf(dev.netdev, sizeof(dev.netdev), "net0");
	const uint8_t mac[6] = {0x52, 0x54, 0, 1, 2, 3};
	struct perr err = {0};
	struct virtio_dev *vdev = NULL;
	if (virtio_net_create_on_fd(sv[0], false, "fuzz", &dev, mac, &vdev, &err) < 0)
		abort();
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
	/* Always end with a transmit notification, so that the ring in memory is parsed. */
	mmio_wr(&vm, 0x050, NET_TXQ);

	virtio_mmio_detach(vm.t);
	close(vm.peer);
	bus_destroy(&vm.bus);
	free(vm.ram0);
	free(vm.ram1);
	return 0;
}
