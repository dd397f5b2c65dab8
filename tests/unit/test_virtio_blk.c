/* virtio-blk (virtio 1.2 §5.2) against a temporary image, driven through the MMIO transport. */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/virtio/blk.h"
#include "../../vmm/virtio/transport-mmio.h"
#include "../../vmm/virtio/virtqueue.h"
#include "unit.h"
#include "virtio_fake_guest.h"

#define RAM_SIZE   (4u << 20)
#define RING_BASE  (FAKE_RAM_GPA + 0x1000)
#define HDR	   (FAKE_RAM_GPA + 0x8000)
#define STATUS	   (FAKE_RAM_GPA + 0x8100)
#define DATA	   (FAKE_RAM_GPA + 0x10000)
#define QSIZE	   64
#define DISK_BYTES (1u << 20)
#define SECTORS	   (DISK_BYTES / 512)

#define T_IN	 0
#define T_OUT	 1
#define T_FLUSH	 4
#define T_GET_ID 8
#define S_OK	 0
#define S_IOERR	 1
#define S_UNSUPP 2

#define F_RO 5

struct fixture {
	struct fake_guest g;
	struct bus bus;
	struct virtio_mmio *t;
	struct fake_vring vr;
	char path[64];
	uint64_t offered;
	int irqs;
	bool keep_image; /* a device given by the environment, not ours to remove */
};

static struct fixture fx;

static uint32_t rd(uint64_t off)
{
	return fake_mmio_read(&fx.bus, off);
}

static void wr(uint64_t off, uint32_t v)
{
	fake_mmio_write(&fx.bus, off, v);
}

/* An image whose byte i is (i * 7) & 0xff, so every sector is distinct;
 * written to `path` when given (it must exist), else to a new temporary file. */
static int make_image_at(const char *path)
{
	int fd;
	if (path) {
		snprintf(fx.path, sizeof(fx.path), "%s", path);
		fx.keep_image = true;
		fd = open(path, O_WRONLY | O_CLOEXEC);
	} else {
		snprintf(fx.path, sizeof(fx.path), "/tmp/petrel-test-blk-XXXXXX");
		fx.keep_image = false;
		fd = mkstemp(fx.path);
	}
	if (fd < 0)
		return -1;
	uint8_t *buf = malloc(DISK_BYTES);
	for (unsigned i = 0; i < DISK_BYTES; i++)
		buf[i] = (uint8_t)(i * 7);
	ssize_t n = write(fd, buf, DISK_BYTES);
	free(buf);
	close(fd);
	return n == DISK_BYTES ? 0 : -1;
}

static int make_image(void)
{
	return make_image_at(NULL);
}

static int read_image(uint64_t off, void *buf, size_t len)
{
	int fd = open(fx.path, O_RDONLY | O_CLOEXEC);
	ssize_t n = pread(fd, buf, len, (off_t)off);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* Linux's probe sequence (§3.1.1), accepting every offered feature. */
static void driver_init(void)
{
	fx.offered = fake_mmio_negotiate(&fx.bus, ~0ull);
	fake_mmio_setup_queue(&fx.bus, 0, &fx.vr, &fx.g, QSIZE, RING_BASE);
	fake_mmio_driver_ok(&fx.bus);
}

static int fixture_setup_drive(struct vmm_drive *drive, const char *serial, struct perr *err)
{
	static bool quiet;
	if (!quiet) {
		/* Refused requests are logged on purpose below. */
		log_set_level(LOG_ERROR);
		quiet = true;
	}
	char path[64];
	bool keep = fx.keep_image;
	memcpy(path, fx.path, sizeof(path));
	memset(&fx, 0, sizeof(fx));
	memcpy(fx.path, path, sizeof(path));
	fx.keep_image = keep;
	if (fake_guest_init(&fx.g, RAM_SIZE) < 0)
		return -1;
	bus_init(&fx.bus);
	struct vmm_blk_device dev = {0};
	snprintf(dev.id, sizeof(dev.id), "disk0");
	snprintf(dev.drive, sizeof(dev.drive), "%s", drive->id);
	snprintf(dev.serial, sizeof(dev.serial), "%s", serial);
	struct virtio_dev *vdev;
	int ret = virtio_blk_create(drive, &dev, &vdev, err);
	if (ret < 0)
		return ret;
	ret = fake_mmio_attach(&fx.g, &fx.bus, NULL, vdev, &fx.irqs, &fx.t, err);
	if (ret < 0)
		return ret;
	driver_init();
	return 0;
}

static struct vmm_drive test_drive(void)
{
	struct vmm_drive d = {0};
	snprintf(d.id, sizeof(d.id), "rootfs");
	snprintf(d.file, sizeof(d.file), "%s", fx.path);
	return d;
}

static int fixture_setup(bool readonly, bool direct)
{
	if (make_image() < 0)
		return -1;
	struct vmm_drive d = test_drive();
	d.readonly = readonly;
	d.direct = direct;
	struct perr err = {0};
	return fixture_setup_drive(&d, "SERIAL-0123", &err);
}

static void fixture_teardown(void)
{
	virtio_mmio_detach(fx.t);
	fx.t = NULL;
	bus_destroy(&fx.bus);
	fake_guest_free(&fx.g);
	if (!fx.keep_image)
		unlink(fx.path);
}

struct req {
	uint32_t type;
	uint64_t sector;
	uint64_t data;	   /* gpa */
	uint32_t data_len; /* 0: no data descriptor */
	uint32_t split;	   /* when non-zero, data is split in two descriptors at this byte */
};

/* Submits one request as header + data + status descriptors, notifies, and
 * returns the status byte the device wrote (or -1 when it completed nothing). */
static int submit(const struct req *r, uint32_t *used_len)
{
	uint8_t hdr[16] = {0};
	memcpy(hdr, &r->type, 4);
	memcpy(hdr + 8, &r->sector, 8);
	memcpy(fake_ptr(&fx.g, HDR), hdr, 16);
	*(uint8_t *)fake_ptr(&fx.g, STATUS) = 0xee;
	uint16_t data_flags = VIRTQ_DESC_F_NEXT | (r->type == T_OUT ? 0 : VIRTQ_DESC_F_WRITE);
	unsigned n = 0;
	fake_desc(&fx.vr, n, HDR, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(n + 1));
	n++;
	if (r->data_len && r->split) {
		fake_desc(&fx.vr, n, r->data, r->split, data_flags, (uint16_t)(n + 1));
		n++;
		fake_desc(&fx.vr, n, r->data + r->split, r->data_len - r->split, data_flags,
			  (uint16_t)(n + 1));
		n++;
	} else if (r->data_len) {
		fake_desc(&fx.vr, n, r->data, r->data_len, data_flags, (uint16_t)(n + 1));
		n++;
	}
	fake_desc(&fx.vr, n, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	uint16_t before = fake_used_idx(&fx.vr);
	fake_avail_push(&fx.vr, 0);
	wr(0x050, 0);
	if (fake_used_idx(&fx.vr) != (uint16_t)(before + 1))
		return -1;
	if (used_len)
		*used_len = fake_used_len(&fx.vr, before);
	return *(uint8_t *)fake_ptr(&fx.g, STATUS);
}

UNIT_TEST(test_blk_reports_capacity_and_features)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false), 0);
	UNIT_ASSERT_EQ(rd(0x008), 2); /* VIRTIO_ID_BLOCK */
	UNIT_ASSERT_EQ(rd(0x100), SECTORS);
	UNIT_ASSERT_EQ(rd(0x104), 0);
	UNIT_ASSERT_EQ(rd(0x114), 512);	     /* blk_size */
	UNIT_ASSERT_EQ(rd(0x10c), 254);	     /* seg_max: queue size 256 - 2 */
	UNIT_ASSERT(fx.offered & (1u << 9)); /* FLUSH */
	UNIT_ASSERT(fx.offered & (1u << 2)); /* SEG_MAX */
	UNIT_ASSERT(fx.offered & (1u << 6)); /* BLK_SIZE */
	UNIT_ASSERT(!(fx.offered & (1u << F_RO)));
	UNIT_ASSERT_EQ(rd(0x070), 15);
	fixture_teardown();
}

UNIT_TEST(test_blk_read_returns_image_bytes)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false), 0);
	uint32_t len = 0;
	struct req r = {.type = T_IN, .sector = 3, .data = DATA, .data_len = 4096, .split = 512};
	UNIT_ASSERT_EQ(submit(&r, &len), S_OK);
	UNIT_ASSERT_EQ(len, 4096 + 1);
	uint8_t want[4096];
	UNIT_ASSERT_EQ(read_image(3 * 512, want, sizeof(want)), 0);
	UNIT_ASSERT(memcmp(fake_ptr(&fx.g, DATA), want, sizeof(want)) == 0);
	UNIT_ASSERT(fx.irqs >= 1);
	fixture_teardown();
}

UNIT_TEST(test_blk_write_then_read_round_trip)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false), 0);
	uint8_t *buf = fake_ptr(&fx.g, DATA);
	for (unsigned i = 0; i < 8192; i++)
		buf[i] = (uint8_t)(i ^ 0x5a);
	uint32_t len = 0;
	struct req w = {
	    .type = T_OUT, .sector = SECTORS - 16, .data = DATA, .data_len = 8192, .split = 1000};
	UNIT_ASSERT_EQ(submit(&w, &len), S_OK);
	UNIT_ASSERT_EQ(len, 1);
	uint8_t on_disk[8192];
	UNIT_ASSERT_EQ(read_image((SECTORS - 16) * 512ull, on_disk, sizeof(on_disk)), 0);
	UNIT_ASSERT(memcmp(on_disk, buf, sizeof(on_disk)) == 0);

	struct req r = {
	    .type = T_IN, .sector = SECTORS - 16, .data = DATA + 0x10000, .data_len = 8192};
	UNIT_ASSERT_EQ(submit(&r, &len), S_OK);
	UNIT_ASSERT(memcmp(fake_ptr(&fx.g, DATA + 0x10000), buf, 8192) == 0);
	fixture_teardown();
}

UNIT_TEST(test_blk_flush_succeeds)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false), 0);
	struct req r = {.type = T_FLUSH};
	uint32_t len = 0;
	UNIT_ASSERT_EQ(submit(&r, &len), S_OK);
	UNIT_ASSERT_EQ(len, 1);
	fixture_teardown();
}

UNIT_TEST(test_blk_get_id_returns_serial)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false), 0);
	memset(fake_ptr(&fx.g, DATA), 'x', 20);
	struct req r = {.type = T_GET_ID, .data = DATA, .data_len = 20};
	uint32_t len = 0;
	UNIT_ASSERT_EQ(submit(&r, &len), S_OK);
	UNIT_ASSERT_EQ(len, 21);
	char id[21] = {0};
	memcpy(id, fake_ptr(&fx.g, DATA), 20);
	UNIT_ASSERT_STREQ(id, "SERIAL-0123");
	/* NUL-padded to 20 bytes. */
	UNIT_ASSERT_EQ(((uint8_t *)fake_ptr(&fx.g, DATA))[19], 0);
	fixture_teardown();
}

UNIT_TEST(test_blk_readonly_rejects_writes)
{
	UNIT_ASSERT_EQ(fixture_setup(true, false), 0);
	UNIT_ASSERT(fx.offered & (1u << F_RO));
	memset(fake_ptr(&fx.g, DATA), 0xaa, 512);
	struct req w = {.type = T_OUT, .sector = 0, .data = DATA, .data_len = 512};
	UNIT_ASSERT_EQ(submit(&w, NULL), S_IOERR);
	uint8_t on_disk[512];
	UNIT_ASSERT_EQ(read_image(0, on_disk, sizeof(on_disk)), 0);
	UNIT_ASSERT_EQ(on_disk[1], 7);
	/* Reads still work. */
	struct req r = {.type = T_IN, .sector = 0, .data = DATA, .data_len = 512};
	UNIT_ASSERT_EQ(submit(&r, NULL), S_OK);
	UNIT_ASSERT_EQ(((uint8_t *)fake_ptr(&fx.g, DATA))[1], 7);
	fixture_teardown();
}

UNIT_TEST(test_blk_out_of_range_sector_is_ioerr)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false), 0);
	struct req r = {.type = T_IN, .sector = SECTORS, .data = DATA, .data_len = 512};
	UNIT_ASSERT_EQ(submit(&r, NULL), S_IOERR);
	r.sector = SECTORS - 1;
	r.data_len = 1024; /* runs one sector past the end */
	UNIT_ASSERT_EQ(submit(&r, NULL), S_IOERR);
	r.sector = UINT64_MAX; /* sector * 512 overflows */
	r.data_len = 512;
	UNIT_ASSERT_EQ(submit(&r, NULL), S_IOERR);
	struct req w = {.type = T_OUT, .sector = SECTORS, .data = DATA, .data_len = 512};
	UNIT_ASSERT_EQ(submit(&w, NULL), S_IOERR);
	/* The last sector itself is fine. */
	r.sector = SECTORS - 1;
	UNIT_ASSERT_EQ(submit(&r, NULL), S_OK);
	/* Not a multiple of 512 bytes. */
	r.sector = 0;
	r.data_len = 100;
	UNIT_ASSERT_EQ(submit(&r, NULL), S_IOERR);
	fixture_teardown();
}

UNIT_TEST(test_blk_unknown_type_is_unsupp)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false), 0);
	struct req r = {.type = 11 /* DISCARD, not offered */};
	UNIT_ASSERT_EQ(submit(&r, NULL), S_UNSUPP);
	r.type = 0x7fffffff;
	UNIT_ASSERT_EQ(submit(&r, NULL), S_UNSUPP);
	fixture_teardown();
}

UNIT_TEST(test_blk_survives_malformed_requests)
{
	UNIT_ASSERT_EQ(fixture_setup(false, false), 0);
	/* Header shorter than 16 bytes: IOERR. */
	fake_desc(&fx.vr, 0, HDR, 8, VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&fx.vr, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_avail_push(&fx.vr, 0);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);
	UNIT_ASSERT_EQ(*(uint8_t *)fake_ptr(&fx.g, STATUS), S_IOERR);
	/* No writable status byte (the status buffer is read-only): completed with length 0. */
	fake_desc(&fx.vr, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&fx.vr, 1, STATUS, 1, 0, 0);
	fake_avail_push(&fx.vr, 0);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 2);
	UNIT_ASSERT_EQ(fake_used_len(&fx.vr, 1), 0);
	/* Only a status byte, no header at all. */
	fake_desc(&fx.vr, 0, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_avail_push(&fx.vr, 0);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 3);
	UNIT_ASSERT_EQ(*(uint8_t *)fake_ptr(&fx.g, STATUS), S_IOERR);
	/* The device is still healthy. */
	UNIT_ASSERT_EQ(rd(0x070) & 64, 0);
	struct req r = {.type = T_IN, .sector = 0, .data = DATA, .data_len = 512};
	UNIT_ASSERT_EQ(submit(&r, NULL), S_OK);
	fixture_teardown();
}

UNIT_TEST(test_blk_missing_image_error_names_drive)
{
	struct vmm_drive d = {0};
	snprintf(d.id, sizeof(d.id), "rootfs");
	snprintf(d.file, sizeof(d.file), "/nonexistent/x.img");
	struct vmm_blk_device dev = {0};
	snprintf(dev.drive, sizeof(dev.drive), "rootfs");
	struct virtio_dev *vdev = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(virtio_blk_create(&d, &dev, &vdev, &err), -ENOENT);
	UNIT_ASSERT_STREQ(err.msg,
			  "-drive rootfs: open /nonexistent/x.img: No such file or directory");
}

UNIT_TEST(test_blk_rejects_directory_image)
{
	struct vmm_drive d = {0};
	snprintf(d.id, sizeof(d.id), "data");
	snprintf(d.file, sizeof(d.file), "/tmp");
	d.readonly = true;
	struct vmm_blk_device dev = {0};
	struct virtio_dev *vdev = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(virtio_blk_create(&d, &dev, &vdev, &err), -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "-drive data: /tmp is not a regular file or a block device");
}

static void check_direct_unaligned(const char *image)
{
	if (make_image_at(image) < 0)
		UNIT_FAIL("cannot write the image %s", image ? image : "in /tmp");
	struct vmm_drive d = test_drive();
	d.direct = true;
	struct perr err = {0};
	int ret = fixture_setup_drive(&d, "", &err);
	if (ret == -EINVAL && strstr(err.msg, "O_DIRECT")) {
		fixture_teardown();
		UNIT_SKIP("no O_DIRECT: %s", err.msg);
	}
	UNIT_ASSERT_EQ(ret, 0);
	/* Buffers at odd addresses, split at an odd byte, and a sector that is not
	 * 4096-aligned: the bounce path with read-modify-write. */
	uint8_t *buf = fake_ptr(&fx.g, DATA + 3);
	for (unsigned i = 0; i < 3072; i++)
		buf[i] = (uint8_t)(i * 13 + 1);
	struct req w = {
	    .type = T_OUT, .sector = 9, .data = DATA + 3, .data_len = 3072, .split = 1001};
	UNIT_ASSERT_EQ(submit(&w, NULL), S_OK);
	uint8_t on_disk[4096 * 3];
	UNIT_ASSERT_EQ(read_image(0, on_disk, sizeof(on_disk)), 0);
	UNIT_ASSERT(memcmp(on_disk + 9 * 512, buf, 3072) == 0);
	/* Neighbouring bytes untouched. */
	UNIT_ASSERT_EQ(on_disk[9 * 512 - 1], (uint8_t)((9 * 512 - 1) * 7));
	UNIT_ASSERT_EQ(on_disk[9 * 512 + 3072], (uint8_t)((9 * 512 + 3072) * 7));

	struct req r = {
	    .type = T_IN, .sector = 9, .data = DATA + 0x10001, .data_len = 3072, .split = 513};
	UNIT_ASSERT_EQ(submit(&r, NULL), S_OK);
	UNIT_ASSERT(memcmp(fake_ptr(&fx.g, DATA + 0x10001), buf, 3072) == 0);
	/* Aligned buffers take the direct path. */
	struct req a = {.type = T_IN, .sector = 8, .data = DATA + 0x20000, .data_len = 8192};
	UNIT_ASSERT_EQ(submit(&a, NULL), S_OK);
	UNIT_ASSERT(memcmp(fake_ptr(&fx.g, DATA + 0x20000), on_disk + 8 * 512, 512) == 0);
	fixture_teardown();
}

UNIT_TEST(test_blk_direct_handles_unaligned_guest_buffers)
{
	check_direct_unaligned(NULL);
}

/* The read-modify-write path needs a device whose O_DIRECT alignment is
 * larger than a sector, e.g. `losetup --sector-size 4096`:
 *   PETREL_TEST_4K_DEVICE=/dev/loop0 build/tests/test_virtio_blk  (overwrites its first MiB) */
UNIT_TEST(test_blk_direct_on_4k_device_read_modify_writes)
{
	const char *dev = getenv("PETREL_TEST_4K_DEVICE");
	if (!dev)
		UNIT_SKIP("set PETREL_TEST_4K_DEVICE to a scratch 4Kn block device");
	check_direct_unaligned(dev);
}

UNIT_TEST(test_blk_throttle_limits_iops)
{
	if (make_image() < 0)
		UNIT_FAIL("cannot create the image");
	struct vmm_drive d = test_drive();
	d.iops_total = 3;
	struct perr err = {0};
	UNIT_ASSERT_EQ(fixture_setup_drive(&d, "", &err), 0);
	/* Five requests at once: the bucket starts with one second's worth (3). */
	for (unsigned i = 0; i < 5; i++) {
		fake_desc(&fx.vr, 2 * i, HDR, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(2 * i + 1));
		fake_desc(&fx.vr, 2 * i + 1, STATUS + i, 1, VIRTQ_DESC_F_WRITE, 0);
		fake_avail_push(&fx.vr, (uint16_t)(2 * i));
	}
	memset(fake_ptr(&fx.g, HDR), 0, 16);
	*(uint32_t *)fake_ptr(&fx.g, HDR) = T_FLUSH;
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 3);
	/* Without a loop, the next notification retries; after ~0.4 s one more token. */
	struct timespec ts = {0, 400 * 1000 * 1000};
	nanosleep(&ts, NULL);
	wr(0x050, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 4);
	fixture_teardown();
}

UNIT_MAIN("virtio_blk")
