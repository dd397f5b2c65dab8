/*
 * libFuzzer target: a hostile guest driving virtio-balloon over the MMIO
 * transport: PFN arrays on the inflate and deflate queues, config writes to
 * `actual`, and host-side target changes in between. The input is the one of
 * virtq_fuzz_harness.h with one ring set: both queues share the rings' layout,
 * the deflate queue's 0x800 bytes further. Guest RAM is page-aligned, so the
 * balloon's madvise really runs.
 */
#include "../../vmm/virtio/balloon.h"
#include "virtq_fuzz_harness.h"

#define DEFLATE_SHIFT 0x800u

enum {
	FLAG_DEFLATE_ON_OOM = 8,
};

enum {
	OP_SET_TARGET = VQFUZZ_OP_DEVICE, /* the host: balloon to value * 4 KiB */
	OP_END,
};

static void balloon_layout(struct vqfuzz_vm *vm, const uint16_t *off)
{
	for (unsigned q = 0; q < 2; q++)
		for (unsigned r = 0; r < 3; r++)
			vm->rings[q][r] = VQFUZZ_RAM0_GPA + off[r] + DEFLATE_SHIFT * q;
}

static uint64_t balloon_features(uint8_t flags)
{
	return flags & FLAG_DEFLATE_ON_OOM ? 1ull << 2 : 0;
}

static int balloon_create(struct vqfuzz_vm *vm, struct virtio_dev **vdev, struct perr *err)
{
	struct vmm_balloon cfg = {.present = true,
				  .deflate_on_oom = vm->flags & FLAG_DEFLATE_ON_OOM};
	return virtio_balloon_create(&cfg, VQFUZZ_RAM0_SIZE + VQFUZZ_RAM1_SIZE, vdev, err);
}

static void balloon_action(struct vqfuzz_vm *vm, unsigned op, uint8_t arg, uint16_t value)
{
	(void)arg;
	if (op == OP_SET_TARGET) {
		struct perr err;
		(void)virtio_balloon_set_target(vm->dev, (uint64_t)value * 4096, &err);
		(void)virtio_balloon_actual_bytes(vm->dev);
	}
}

static const struct vqfuzz_device balloon_fuzz_device = {
    .ring_sets = 1,
    .queues = 2,
    .notify_span = 2,
    .qsize_log2_span = 8,
    .raw_feature_shift = 8,
    .device_ops = OP_END - VQFUZZ_OP_DEVICE,
    .final_notify = {0, 1, -1},
    .layout = balloon_layout,
    .features = balloon_features,
    .create = balloon_create,
    .action = balloon_action,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return vqfuzz_run_one(&balloon_fuzz_device, data, size);
}
