/*
 * libFuzzer target: a hostile guest driving virtio-blk over the MMIO
 * transport. The input is the one of virtq_fuzz_harness.h with one ring set;
 * the backend is a small temporary image. Build: make BUILD=build-x fuzz-bins.
 */
#include <fcntl.h>

#include "../../vmm/virtio/blk.h"
#include "virtq_fuzz_harness.h"

#define DISK_BYTES (64u * 1024)

enum {
	FLAG_READONLY = 1,
	FLAG_DIRECT = 8,
	FLAG_IOPS_LIMIT = 0x40,
};

static char image_path[64];
static char *image_path_direct;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
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

static int blk_create(struct vqfuzz_vm *vm, struct virtio_dev **vdev, struct perr *err)
{
	struct vmm_drive drive = {0};
	snprintf(drive.id, sizeof(drive.id), "fuzz");
	snprintf(drive.file, sizeof(drive.file), "%s", image_path);
	drive.readonly = vm->flags & FLAG_READONLY;
	drive.direct = (vm->flags & FLAG_DIRECT) && image_path_direct;
	drive.iops_total = vm->flags & FLAG_IOPS_LIMIT ? 4 : 0;
	struct vmm_blk_device dev = {0};
	snprintf(dev.id, sizeof(dev.id), "fuzz0");
	snprintf(dev.serial, sizeof(dev.serial), "fuzz-serial");
	return virtio_blk_create(&drive, &dev, vdev, err);
}

static const struct vqfuzz_device blk_fuzz_device = {
    .ring_sets = 1,
    .queues = 1,
    .notify_span = 1,
    .qsize_log2_span = 9,
    .raw_feature_shift = 8,
    .final_notify = {0, -1},
    .create = blk_create,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return vqfuzz_run_one(&blk_fuzz_device, data, size);
}
