/*
 * libFuzzer target: a hostile guest driving virtio-vsock (the built-in
 * hybrid backend) over the MMIO transport. The input is
 *
 *   header   flags (u8), queue size (u16), desc/avail/used ring offsets (u16
 *            each) for rx, then for tx, action count (u8)
 *   actions  4 bytes each: op, arg (u8), value (u16)
 *   memory   the rest, copied to the start of guest RAM (descriptors, rings,
 *            packets)
 *
 * Guest RAM is two exactly-sized heap regions (so ASan sees any overrun). The
 * device runs without an event loop, so queue notifications are handled at
 * once; a host unix socket listens on PATH_7, so that guest connects to port 7
 * succeed and data, credit and shutdown packets reach real connections, while
 * every other port gets an RST. Build: make BUILD=build-x fuzz-bins.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/guest_mem.h"
#include "../../vmm/virtio/transport-mmio.h"
#include "../../vmm/virtio/vsock.h"

#define BASE	    0xd0000000ull
#define RAM0_GPA    0x10000ull
#define RAM0_SIZE   0x10000u
#define RAM1_GPA    0x30000ull /* a gap between the regions, like a memory hole */
#define RAM1_SIZE   0x1000u
#define MAX_ACTIONS 64
#define GUEST_CID   3

enum {
	FLAG_EVENT_IDX = 2,
	FLAG_INDIRECT = 4,
	FLAG_RAW_FEATURES = 16, /* write the action-derived features as-is */
};

enum {
	OP_NOTIFY, /* queue arg % 4 (3 does not exist) */
	OP_POKE16, /* RAM0[arg * 256 + low byte of value] = value */
	OP_MMIO_WRITE,
	OP_MMIO_READ,
	OP_PUSH_AVAIL, /* driver-like on queue arg & 1: ring[idx % size] = value, idx++, notify */
	OP_ACK,
	OP_REINIT,
	OP_COUNT,
};

static char dir[64];
static char uds_path[100];
static int listen_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/petrel-fuzz-vsock-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(uds_path, sizeof(uds_path), "%s/v", dir);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_7", uds_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(listen_fd, 128) < 0)
		abort();
	return 0;
}

__attribute__((destructor)) static void fuzz_cleanup(void)
{
	char p[128];
	if (!dir[0])
		return;
	snprintf(p, sizeof(p), "%s_7", uds_path);
	unlink(p);
	rmdir(dir);
}

struct fuzz_vm {
	struct guest_mem mem;
	uint8_t *ram0;
	uint8_t *ram1;
	struct bus bus;
	struct virtio_mmio *t;
	uint16_t qnum;
	uint64_t rings[2][3]; /* rx, tx: desc, avail, used */
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
	for (unsigned q = 0; q < 2; q++) {
		mmio_wr(vm, 0x030, q);
		mmio_wr(vm, 0x038, vm->qnum);
		mmio_wr(vm, 0x080, (uint32_t)vm->rings[q][0]);
		mmio_wr(vm, 0x084, (uint32_t)(vm->rings[q][0] >> 32));
		mmio_wr(vm, 0x090, (uint32_t)vm->rings[q][1]);
		mmio_wr(vm, 0x094, (uint32_t)(vm->rings[q][1] >> 32));
		mmio_wr(vm, 0x0a0, (uint32_t)vm->rings[q][2]);
		mmio_wr(vm, 0x0a4, (uint32_t)(vm->rings[q][2] >> 32));
		mmio_wr(vm, 0x044, 1);
		vm->avail_idx[q] = 0;
	}
	mmio_wr(vm, 0x070, 15);
}

static void run_action(struct fuzz_vm *vm, uint8_t op, uint8_t arg, uint16_t value)
{
	switch (op % OP_COUNT) {
	case OP_NOTIFY:
		mmio_wr(vm, 0x050, arg % 4);
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
		unsigned q = arg & 1;
		uint16_t size = vm->qnum ? vm->qnum : 1;
		uint64_t slot = vm->rings[q][1] + 4 + 2ull * (vm->avail_idx[q] % size);
		uint64_t idx = vm->rings[q][1] + 2;
		if (slot >= RAM0_GPA && slot + 2 <= RAM0_GPA + RAM0_SIZE && idx >= RAM0_GPA &&
		    idx + 2 <= RAM0_GPA + RAM0_SIZE) {
			memcpy(vm->ram0 + (slot - RAM0_GPA), &value, 2);
			vm->avail_idx[q]++;
			memcpy(vm->ram0 + (idx - RAM0_GPA), &vm->avail_idx[q], 2);
		}
		mmio_wr(vm, 0x050, q);
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
	enum { HDR = 16 };
	if (size < HDR)
		return 0;
	uint8_t flags = data[0];
	uint16_t qnum, off[6];
	memcpy(&qnum, data + 1, 2);
	memcpy(off, data + 3, sizeof(off));
	unsigned n_actions = data[15] % (MAX_ACTIONS + 1);
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
	for (unsigned q = 0; q < 2; q++)
		for (unsigned r = 0; r < 3; r++)
			vm.rings[q][r] = RAM0_GPA + off[q * 3 + r];
	vm.features = 1ull << 32; /* VERSION_1 */
	if (flags & FLAG_EVENT_IDX)
		vm.features |= 1ull << 29;
	if (flags & FLAG_INDIRECT)
		vm.features |= 1ull << 28;
	if (flags & FLAG_RAW_FEATURES)
		vm.features |= (uint64_t)qnum << 8;

	struct vmm_vsock_device cfg = {.present = true, .guest_cid = GUEST_CID};
	snprintf(cfg.id, sizeof(cfg.id), "fuzz0");
	snprintf(cfg.uds_path, sizeof(cfg.uds_path), "%s", uds_path);
	struct perr err = {0};
	struct virtio_dev *vdev = NULL;
	if (virtio_vsock_create(&cfg, &vdev, &err) < 0)
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
	/* Always end with tx then rx notifications, so that the rings in memory are parsed. */
	mmio_wr(&vm, 0x050, 1);
	mmio_wr(&vm, 0x050, 0);

	virtio_mmio_detach(vm.t);
	bus_destroy(&vm.bus);
	free(vm.ram0);
	free(vm.ram1);
	/* Connections the device made to PATH_7 wait in its backlog: drop them. */
	int fd;
	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	return 0;
}
