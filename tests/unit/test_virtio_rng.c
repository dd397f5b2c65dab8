/* virtio-rng (virtio 1.2 §5.4) driven through the MMIO transport, from a file. */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/eventloop.h"
#include "../../vmm/virtio/rng.h"
#include "../../vmm/virtio/transport-mmio.h"
#include "../../vmm/virtio/virtqueue.h"
#include "unit.h"
#include "virtio_fake_guest.h"

#define RAM_SIZE  (1u << 20)
#define RING_BASE (FAKE_RAM_GPA + 0x1000)
#define DATA	  (FAKE_RAM_GPA + 0x10000)
#define QSIZE	  16
#define FILE_LEN  4096

struct fixture {
	struct fake_guest g;
	struct bus bus;
	struct eventloop *loop;
	struct virtio_mmio *t;
	struct fake_vring vr;
	char path[64];
	uint8_t content[FILE_LEN];
	int irqs;
};

static struct fixture fx;

/* A file of FILE_LEN known bytes (len of them), or /dev/urandom when len < 0. */
static int make_source(int len)
{
	if (len < 0) {
		snprintf(fx.path, sizeof(fx.path), "/dev/urandom");
		return 0;
	}
	snprintf(fx.path, sizeof(fx.path), "/tmp/petrel-test-rng-XXXXXX");
	int fd = mkstemp(fx.path);
	if (fd < 0)
		return -1;
	for (unsigned i = 0; i < FILE_LEN; i++)
		fx.content[i] = (uint8_t)(i * 13 + 5);
	ssize_t n = write(fd, fx.content, (size_t)len);
	close(fd);
	return n == len ? 0 : -1;
}

static void driver_init(void)
{
	fake_mmio_negotiate(&fx.bus, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	fake_mmio_setup_queue(&fx.bus, 0, &fx.vr, &fx.g, QSIZE, RING_BASE);
	fake_mmio_driver_ok(&fx.bus);
}

/* file_len: see make_source. with_loop: queues run on fx.loop. */
static int fixture_setup(int file_len, uint64_t max_bytes, uint64_t period_ms, bool with_loop,
			 struct perr *err)
{
	static bool quiet;
	if (!quiet) {
		log_set_file("/dev/null"); /* stalls and refusals are logged on purpose */
		quiet = true;
	}
	memset(&fx, 0, sizeof(fx));
	if (make_source(file_len) < 0 || fake_guest_init(&fx.g, RAM_SIZE) < 0)
		return -1;
	bus_init(&fx.bus);
	if (with_loop && eventloop_create(&fx.loop) < 0)
		return -1;
	struct vmm_rng cfg = {.object_present = true, .present = true};
	snprintf(cfg.object_id, sizeof(cfg.object_id), "rng0");
	snprintf(cfg.rng, sizeof(cfg.rng), "rng0");
	snprintf(cfg.filename, sizeof(cfg.filename), "%s", fx.path);
	cfg.max_bytes = max_bytes;
	cfg.period_ms = period_ms;
	struct virtio_dev *vdev;
	int ret = virtio_rng_create(&cfg, &vdev, err);
	if (ret < 0)
		return ret;
	ret = fake_mmio_attach(&fx.g, &fx.bus, fx.loop, vdev, &fx.irqs, &fx.t, err);
	if (ret < 0)
		return ret;
	driver_init();
	return 0;
}

static void fixture_teardown(void)
{
	virtio_mmio_detach(fx.t);
	fx.t = NULL;
	eventloop_destroy(fx.loop);
	bus_destroy(&fx.bus);
	fake_guest_free(&fx.g);
	if (strncmp(fx.path, "/tmp/", 5) == 0)
		unlink(fx.path);
}

/* Posts one writable buffer of len bytes at DATA + slot * 0x1000 (descriptor slot). */
static void post(unsigned slot, uint32_t len)
{
	memset(fake_ptr(&fx.g, DATA + slot * 0x1000ull), 0, len);
	fake_desc(&fx.vr, slot, DATA + slot * 0x1000ull, len, VIRTQ_DESC_F_WRITE, 0);
	fake_avail_push(&fx.vr, (uint16_t)slot);
	fake_mmio_write(&fx.bus, 0x050, 0);
}

UNIT_TEST(test_rng_is_device_4_with_one_queue)
{
	struct perr err = {0};
	UNIT_ASSERT_EQ(fixture_setup(FILE_LEN, 0, 0, false, &err), 0);
	UNIT_ASSERT_EQ(fake_mmio_read(&fx.bus, 0x008), 4);
	UNIT_ASSERT_EQ(fake_mmio_read(&fx.bus, 0x070), 15);
	fake_mmio_write(&fx.bus, 0x030, 1);
	UNIT_ASSERT_EQ(fake_mmio_read(&fx.bus, 0x034), 0); /* no second queue */
	fixture_teardown();
}

UNIT_TEST(test_rng_fills_guest_buffers_from_the_file)
{
	struct perr err = {0};
	UNIT_ASSERT_EQ(fixture_setup(FILE_LEN, 0, 0, false, &err), 0);
	post(0, 16);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);
	UNIT_ASSERT_EQ(fake_used_len(&fx.vr, 0), 16);
	UNIT_ASSERT(memcmp(fake_ptr(&fx.g, DATA), fx.content, 16) == 0);
	post(1, 100);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 2);
	UNIT_ASSERT_EQ(fake_used_id(&fx.vr, 1), 1);
	UNIT_ASSERT_EQ(fake_used_len(&fx.vr, 1), 100);
	UNIT_ASSERT(memcmp(fake_ptr(&fx.g, DATA + 0x1000), fx.content + 16, 100) == 0);
	UNIT_ASSERT(fx.irqs >= 2);
	fixture_teardown();
}

UNIT_TEST(test_rng_end_of_file_stalls_without_completing)
{
	struct perr err = {0};
	UNIT_ASSERT_EQ(fixture_setup(8, 0, 0, false, &err), 0);
	post(0, 16);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);
	UNIT_ASSERT_EQ(fake_used_len(&fx.vr, 0), 8); /* a short fill is a valid answer */
	post(1, 16);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);	    /* nothing left: the request waits */
	UNIT_ASSERT_EQ(fake_mmio_read(&fx.bus, 0x070), 15); /* and the device is not broken */
	fixture_teardown();
}

UNIT_TEST(test_rng_request_without_writable_buffer_is_returned_empty)
{
	struct perr err = {0};
	UNIT_ASSERT_EQ(fixture_setup(FILE_LEN, 0, 0, false, &err), 0);
	fake_desc(&fx.vr, 0, DATA, 16, 0, 0); /* device-readable only */
	fake_avail_push(&fx.vr, 0);
	fake_mmio_write(&fx.bus, 0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);
	UNIT_ASSERT_EQ(fake_used_len(&fx.vr, 0), 0);
	post(1, 4);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 2);
	UNIT_ASSERT(memcmp(fake_ptr(&fx.g, DATA + 0x1000), fx.content, 4) == 0);
	fixture_teardown();
}

UNIT_TEST(test_rng_missing_file_error_names_object_and_path)
{
	memset(&fx, 0, sizeof(fx));
	bus_init(&fx.bus);
	fake_guest_init(&fx.g, RAM_SIZE);
	struct vmm_rng cfg = {.object_present = true, .present = true};
	snprintf(cfg.object_id, sizeof(cfg.object_id), "rng7");
	snprintf(cfg.filename, sizeof(cfg.filename), "/nonexistent/entropy");
	struct virtio_dev *vdev;
	struct perr err = {0};
	UNIT_ASSERT_EQ(virtio_rng_create(&cfg, &vdev, &err), 0);
	struct virtio_mmio_host host = {
	    .mem = &fx.g.mem, .mmio_bus = &fx.bus, .vm_fd = -1, .base = FAKE_MMIO_BASE, .gsi = 5};
	UNIT_ASSERT_EQ(virtio_mmio_attach(&host, vdev, &fx.t, &err), -ENOENT);
	UNIT_ASSERT_CONTAINS(err.msg, "-object rng7: open /nonexistent/entropy");
	UNIT_ASSERT_CONTAINS(err.msg, "No such file or directory");
	bus_destroy(&fx.bus);
	fake_guest_free(&fx.g);
}

UNIT_TEST(test_rng_rate_limit_holds_requests_until_the_next_period)
{
	struct perr err = {0};
	UNIT_ASSERT_EQ(fixture_setup(-1, 32, 300, true, &err), 0);
	post(0, 16);
	post(1, 16);
	post(2, 16);
	post(3, 16);
	fake_run_loop_ms(fx.loop, 100);
	/* 32 bytes per 300 ms: two requests now, the rest wait. */
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 2);
	UNIT_ASSERT_EQ(fake_used_len(&fx.vr, 0) + fake_used_len(&fx.vr, 1), 32);
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	fake_run_loop_ms(fx.loop, 350); /* the timer ends the period: two more */
	getrusage(RUSAGE_SELF, &ru1);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 4);
	/* Waiting for the period was sleeping, not polling. */
	long cpu_us = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1000000L +
		      (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
		      (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000L +
		      (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
	UNIT_ASSERT(cpu_us < 100000);
	fake_run_loop_ms(fx.loop, 50);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 4);
	fixture_teardown();
}

UNIT_TEST(test_rng_rate_limit_splits_a_large_buffer)
{
	struct perr err = {0};
	UNIT_ASSERT_EQ(fixture_setup(FILE_LEN, 10, 60000, false, &err), 0);
	post(0, 64);
	/* A partial fill is a valid answer (§5.4.6.2): the quota's worth. */
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);
	UNIT_ASSERT_EQ(fake_used_len(&fx.vr, 0), 10);
	post(1, 64);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);
	fixture_teardown();
}

UNIT_MAIN("virtio-rng")
