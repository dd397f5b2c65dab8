/*
 * libFuzzer target: a hostile guest driving virtio-vsock (the built-in
 * hybrid backend) over the MMIO transport. The input is the one of
 * virtq_fuzz_harness.h with two ring sets, rx then tx; OP_NOTIFY also
 * reaches the event queue and a queue that does not exist.
 *
 * A host unix socket listens on PATH_7, so that guest connects to port 7
 * succeed and data, credit and shutdown packets reach real connections, while
 * every other port gets an RST. Build: make BUILD=build-x fuzz-bins.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include "../../vmm/virtio/vsock.h"
#include "virtq_fuzz_harness.h"

#define GUEST_CID 3

static char dir[64];
static char uds_path[100];
static int listen_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
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

static int vsock_create(struct vqfuzz_vm *vm, struct virtio_dev **vdev, struct perr *err)
{
	(void)vm;
	struct vmm_vsock_device cfg = {.present = true, .guest_cid = GUEST_CID};
	snprintf(cfg.id, sizeof(cfg.id), "fuzz0");
	snprintf(cfg.uds_path, sizeof(cfg.uds_path), "%s", uds_path);
	return virtio_vsock_create(&cfg, vdev, err);
}

/* Connections the device made to PATH_7 wait in its backlog: drop them. */
static void vsock_finish(struct vqfuzz_vm *vm)
{
	(void)vm;
	int fd;
	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
}

static const struct vqfuzz_device vsock_fuzz_device = {
    .ring_sets = 2,
    .queues = 2,
    .notify_span = 4,
    .qsize_log2_span = 9,
    .raw_feature_shift = 8,
    .final_notify = {1, 0, -1}, /* tx, then rx */
    .create = vsock_create,
    .finish = vsock_finish,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return vqfuzz_run_one(&vsock_fuzz_device, data, size);
}
