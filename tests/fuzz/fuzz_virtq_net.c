/*
 * libFuzzer target: a hostile guest driving a two-queue-pair virtio-net over
 * the MMIO transport, mostly through its transmit ring and its control
 * queue. The input is the one of virtq_fuzz_harness.h with two ring sets:
 * the transmit queue's (the receive queue's rings sit 0x8000 bytes further)
 * and the control queue's. Without FLAG_MQ the control queue is queue 2
 * (virtio 1.2 §5.1.2) and the harness's driver sets it up; OP_MQ_INIT
 * negotiates VIRTIO_NET_F_MQ and sets up all five queues, the control queue
 * at 4 and pair 1 over pair 0's rings. Each tap queue is a SOCK_DGRAM
 * socketpair whose other end the actions can write frames into.
 * Build: make BUILD=build-x fuzz-bins.
 */
#include <sys/socket.h>

#include "../../vmm/virtio/net.h"
#include "virtq_fuzz_harness.h"

#define RX_OFFSET 0x8000u

#define PAIRS	   2
#define F_CTRL_VQ  17
#define F_MQ	   22
#define CTRL_RINGS 2 /* vm->rings[] index of the control queue's rings */

enum {
	FLAG_NO_MRG = 8,
	FLAG_ALL_OFFLOADS = 32, /* accept every offered net feature */
	FLAG_NO_CTRL_VQ = 64,
};

enum {
	/* The host sends a frame of value bytes (header included) on the tap
	 * queue of pair arg & 2. */
	OP_PEER_SEND = VQFUZZ_OP_DEVICE,
	OP_CONFIG_READ,
	/* A command on the control queue: head `value`, then a notification. */
	OP_CTRL_PUSH,
	OP_MQ_INIT,
	OP_END,
};

static int peer1 = -1; /* the host's end of pair 1's tap queue */
static uint16_t ctrl_avail_idx;

/* Queue 0 receives, queue 1 transmits (virtio 1.2 §5.1.2); ring set 1 is
 * the control queue's, queue 2 until OP_MQ_INIT. */
static void net_layout(struct vqfuzz_vm *vm, const uint16_t *off)
{
	for (unsigned r = 0; r < 3; r++) {
		vm->rings[1][r] = VQFUZZ_RAM0_GPA + (off[r] & 0x7fff);
		vm->rings[0][r] = vm->rings[1][r] + RX_OFFSET;
		vm->rings[CTRL_RINGS][r] = VQFUZZ_RAM0_GPA + off[3 + r];
	}
	ctrl_avail_idx = 0;
}

static uint64_t net_features(uint8_t flags)
{
	uint64_t features = 0;
	if (flags & FLAG_ALL_OFFLOADS)
		features |= 0x1bba3ull; /* CSUM..STATUS as offered */
	if (!(flags & FLAG_NO_MRG))
		features |= 1ull << 15;
	if (!(flags & FLAG_NO_CTRL_VQ))
		features |= 1ull << F_CTRL_VQ;
	return features;
}

/* A driver that negotiates multiqueue: queues 0-3 (pair 1 over pair 0's
 * rings, as a hostile guest may) and the control queue at 4. */
static void net_mq_init(struct vqfuzz_vm *vm)
{
	vm->features |= (1ull << F_MQ) | (1ull << F_CTRL_VQ);
	vqfuzz_driver_negotiate(vm);
	for (unsigned q = 0; q <= 2 * PAIRS; q++)
		vqfuzz_setup_queue(vm, q, q == 2 * PAIRS ? CTRL_RINGS : q % 2);
	ctrl_avail_idx = 0;
	vqfuzz_driver_ok(vm);
}

/* ring[idx % size] = head, idx++ on the control rings, then notify the
 * control queue where the negotiated features put it. */
static void net_ctrl_push(struct vqfuzz_vm *vm, uint16_t head)
{
	uint16_t size = vm->qnum ? vm->qnum : 1;
	uint64_t avail = vm->rings[CTRL_RINGS][1];
	uint64_t slot = avail + 4 + 2ull * (ctrl_avail_idx % size);
	const uint64_t end = VQFUZZ_RAM0_GPA + VQFUZZ_RAM0_SIZE;
	if (slot >= VQFUZZ_RAM0_GPA && slot + 2 <= end && avail >= VQFUZZ_RAM0_GPA &&
	    avail + 4 <= end) {
		memcpy(vm->ram0 + (slot - VQFUZZ_RAM0_GPA), &head, 2);
		ctrl_avail_idx++;
		memcpy(vm->ram0 + (avail + 2 - VQFUZZ_RAM0_GPA), &ctrl_avail_idx, 2);
	}
	vqfuzz_notify(vm, vm->features & (1ull << F_MQ) ? 2 * PAIRS : 2);
}

static int net_create(struct vqfuzz_vm *vm, struct virtio_dev **vdev, struct perr *err)
{
	int sv[2], sv1[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv1) < 0)
		abort();
	vm->backend_peer = sv[1];
	peer1 = sv1[1];
	struct vmm_net_device dev = {0};
	snprintf(dev.id, sizeof(dev.id), "fuzz0");
	snprintf(dev.netdev, sizeof(dev.netdev), "net0");
	const uint8_t mac[6] = {0x52, 0x54, 0, 1, 2, 3};
	const int fds[PAIRS] = {sv[0], sv1[0]};
	return virtio_net_create_on_fds(fds, PAIRS, false, "fuzz", &dev, mac, vdev, err);
}

static void net_action(struct vqfuzz_vm *vm, unsigned op, uint8_t arg, uint16_t value)
{
	switch (op) {
	case OP_PEER_SEND: {
		/* Frames up to 64 KiB + 12 and beyond, with a header from guest RAM. */
		static uint8_t frame[(1u << 17)];
		size_t len = (size_t)value * (arg & 1 ? 2 : 1);
		memcpy(frame, vm->ram0 + (arg & 0xf0) * 16, 12);
		unsigned pair = arg & 2 ? 1 : 0;
		ssize_t n = send(pair ? peer1 : vm->backend_peer, frame, len, MSG_DONTWAIT);
		(void)n;
		vqfuzz_notify(vm, 2 * pair);
		break;
	}
	case OP_CONFIG_READ: {
		uint8_t b[4];
		unsigned len = 1u << (arg % 3);
		bus_read(&vm->bus, VQFUZZ_BASE + VQFUZZ_REG_CONFIG + (value % 16), b, len);
		break;
	}
	case OP_CTRL_PUSH:
		net_ctrl_push(vm, value);
		break;
	case OP_MQ_INIT:
		net_mq_init(vm);
		break;
	}
}

static void net_finish(struct vqfuzz_vm *vm)
{
	(void)vm;
	close(peer1);
	peer1 = -1;
}

static const struct vqfuzz_device net_fuzz_device = {
    .ring_sets = 2,
    .queues = 3, /* without MQ, queue 2 is the control queue */
    .notify_span = 2 * PAIRS + 2,
    .qsize_log2_span = 9,
    .raw_feature_shift = 0,
    .device_ops = OP_END - VQFUZZ_OP_DEVICE,
    .final_notify = {1, 2, 4, -1}, /* transmit, then the control queue's places */
    .layout = net_layout,
    .features = net_features,
    .create = net_create,
    .action = net_action,
    .finish = net_finish,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return vqfuzz_run_one(&net_fuzz_device, data, size);
}
