/* virtio-mmio transport (virtio 1.2 §4.2.2): registers, status, queues, notifications. */
#include <errno.h>
#include <pthread.h>

#include "../../common/log.h"
#include "../../vmm/core/bus.h"
#include "../../vmm/core/eventloop.h"
#include "../../vmm/virtio/transport-mmio.h"
#include "../../vmm/virtio/virtio_dev.h"
#include "../../vmm/virtio/virtqueue.h"
#include "unit.h"
#include "virtio_fake_guest.h"

#define RAM_SIZE  (1u << 20)
#define RING_BASE (FAKE_RAM_GPA + 0x1000)
#define DATA	  (FAKE_RAM_GPA + 0x10000)
#define QMAX	  16

/* Registers used below (§4.2.2). */
#define R_MAGIC		0x000
#define R_VERSION	0x004
#define R_DEVICE_ID	0x008
#define R_VENDOR_ID	0x00c
#define R_DEV_FEAT	0x010
#define R_DEV_FEAT_SEL	0x014
#define R_DRV_FEAT	0x020
#define R_DRV_FEAT_SEL	0x024
#define R_QUEUE_SEL	0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM	0x038
#define R_QUEUE_READY	0x044
#define R_QUEUE_NOTIFY	0x050
#define R_INT_STATUS	0x060
#define R_INT_ACK	0x064
#define R_STATUS	0x070
#define R_DESC_LO	0x080
#define R_DESC_HI	0x084
#define R_DRIVER_LO	0x090
#define R_DRIVER_HI	0x094
#define R_DEVICE_LO	0x0a0
#define R_DEVICE_HI	0x0a4
#define R_SHM_LEN_LO	0x0b0
#define R_CONFIG_GEN	0x0fc
#define R_CONFIG	0x100

#define S_ACK	      VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRIVER      VIRTIO_STATUS_DRIVER
#define S_FEATURES_OK VIRTIO_STATUS_FEATURES_OK
#define S_DRIVER_OK   VIRTIO_STATUS_DRIVER_OK

#define TEST_DEVICE_FEATURE 3 /* a device-specific bit the fake device offers */

struct test_dev {
	struct virtio_dev vdev;
	uint8_t config[8];
	int notifies;
	int resets;
	int activates;
	int *destroyed;
	bool stop_loop;
	struct virtq_chain chain;
};

static uint64_t test_get_features(struct virtio_dev *dev)
{
	(void)dev;
	return VIRTIO_BIT(TEST_DEVICE_FEATURE);
}

static void test_config_read(struct virtio_dev *dev, uint32_t off, void *data, unsigned len)
{
	memcpy(data, ((struct test_dev *)(void *)dev)->config + off, len);
}

static void test_config_write(struct virtio_dev *dev, uint32_t off, const void *data, unsigned len)
{
	memcpy(((struct test_dev *)(void *)dev)->config + off, data, len);
}

static uint32_t test_config_size(struct virtio_dev *dev)
{
	(void)dev;
	return 8;
}

static int test_activate(struct virtio_dev *dev)
{
	((struct test_dev *)(void *)dev)->activates++;
	return 0;
}

/* Completes every chain with length 0, like a trivial device. */
static void test_queue_notify(struct virtio_dev *dev, unsigned index)
{
	struct test_dev *d = (struct test_dev *)(void *)dev;
	struct virtqueue *vq = &dev->vqs[index];
	d->notifies++;
	while (virtq_pop_desc_chain(vq, &d->chain) > 0)
		virtq_push_used(vq, d->chain.head, 0);
	virtq_notify_used(vq);
	if (d->stop_loop)
		eventloop_stop(dev->loop);
}

static void test_reset(struct virtio_dev *dev)
{
	((struct test_dev *)(void *)dev)->resets++;
}

static void test_destroy(struct virtio_dev *dev)
{
	struct test_dev *d = (struct test_dev *)(void *)dev;
	if (d->destroyed)
		(*d->destroyed)++;
	free(d);
}

static const struct virtio_dev_ops test_ops = {
    .name = "virtio-test",
    .device_id = 42,
    .num_queues = 2,
    .max_queue_size = QMAX,
    .get_features = test_get_features,
    .config_read = test_config_read,
    .config_write = test_config_write,
    .config_size = test_config_size,
    .activate = test_activate,
    .queue_notify = test_queue_notify,
    .reset = test_reset,
    .destroy = test_destroy,
};

struct fixture {
	struct fake_guest g;
	struct bus bus;
	struct virtio_mmio *t;
	struct test_dev *dev;
	struct fake_vring vr;
	int irqs;
	int destroyed;
};

static struct fixture fx;

static int fixture_setup_loop(struct eventloop *loop)
{
	static bool quiet;
	if (!quiet) {
		/* Guest mistakes are logged on purpose below. */
		log_set_level(LOG_ERROR);
		quiet = true;
	}
	memset(&fx, 0, sizeof(fx));
	if (fake_guest_init(&fx.g, RAM_SIZE) < 0)
		return -1;
	bus_init(&fx.bus);
	fx.dev = calloc(1, sizeof(*fx.dev));
	fx.dev->vdev.ops = &test_ops;
	fx.dev->destroyed = &fx.destroyed;
	snprintf(fx.dev->vdev.id, sizeof(fx.dev->vdev.id), "virtio-test t0");
	struct perr err = {0};
	return fake_mmio_attach(&fx.g, &fx.bus, loop, &fx.dev->vdev, &fx.irqs, &fx.t, &err);
}

static int fixture_setup(void)
{
	return fixture_setup_loop(NULL);
}

static void fixture_teardown(void)
{
	virtio_mmio_detach(fx.t);
	fx.t = NULL;
	bus_destroy(&fx.bus);
	fake_guest_free(&fx.g);
}

static uint32_t rd(uint64_t off)
{
	return fake_mmio_read(&fx.bus, off);
}

static void wr(uint64_t off, uint32_t v)
{
	fake_mmio_write(&fx.bus, off, v);
}

static void write_driver_features(uint64_t f)
{
	wr(R_DRV_FEAT_SEL, 0);
	wr(R_DRV_FEAT, (uint32_t)f);
	wr(R_DRV_FEAT_SEL, 1);
	wr(R_DRV_FEAT, (uint32_t)(f >> 32));
}

/* The Linux driver's sequence (§3.1.1), with queue 0 set up. */
static void driver_init(uint64_t features)
{
	wr(R_STATUS, 0);
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	write_driver_features(features);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	fake_mmio_setup_queue(&fx.bus, 0, &fx.vr, &fx.g, QMAX, RING_BASE);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

#define V1 VIRTIO_BIT(VIRTIO_F_VERSION_1)

UNIT_TEST(test_mmio_identifies_as_version_2)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	UNIT_ASSERT_EQ(rd(R_MAGIC), 0x74726976);
	UNIT_ASSERT_EQ(rd(R_VERSION), 2);
	UNIT_ASSERT_EQ(rd(R_DEVICE_ID), 42);
	UNIT_ASSERT(rd(R_VENDOR_ID) != 0);
	/* No shared memory regions: all ones (§4.2.2). */
	UNIT_ASSERT_EQ(rd(R_SHM_LEN_LO), 0xffffffff);
	fixture_teardown();
}

UNIT_TEST(test_mmio_offers_version_1_and_ring_features)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	wr(R_DEV_FEAT_SEL, 0);
	uint32_t lo = rd(R_DEV_FEAT);
	wr(R_DEV_FEAT_SEL, 1);
	uint32_t hi = rd(R_DEV_FEAT);
	wr(R_DEV_FEAT_SEL, 2);
	UNIT_ASSERT_EQ(rd(R_DEV_FEAT), 0);
	UNIT_ASSERT(lo & (1u << TEST_DEVICE_FEATURE));
	UNIT_ASSERT(lo & (1u << VIRTIO_RING_F_INDIRECT_DESC));
	UNIT_ASSERT(lo & (1u << VIRTIO_RING_F_EVENT_IDX));
	UNIT_ASSERT_EQ(hi, 1); /* VIRTIO_F_VERSION_1 is bit 32 */
	fixture_teardown();
}

UNIT_TEST(test_mmio_status_follows_state_machine)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	/* DRIVER before ACKNOWLEDGE is refused. */
	wr(R_STATUS, S_DRIVER);
	UNIT_ASSERT_EQ(rd(R_STATUS), 0);
	wr(R_STATUS, S_ACK);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK);
	/* FEATURES_OK needs DRIVER. */
	wr(R_STATUS, S_ACK | S_FEATURES_OK);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	write_driver_features(V1);
	/* DRIVER_OK needs FEATURES_OK. */
	wr(R_STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK | S_DRIVER);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	UNIT_ASSERT_EQ(fx.dev->activates, 1);
	/* Clearing bits without a reset is refused. */
	wr(R_STATUS, S_ACK | S_DRIVER);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	/* The driver cannot set DEVICE_NEEDS_RESET itself. */
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK | 64);
	UNIT_ASSERT_EQ(rd(R_STATUS) & 64, 0);
	/* Writing 0 resets. */
	wr(R_STATUS, 0);
	UNIT_ASSERT_EQ(rd(R_STATUS), 0);
	UNIT_ASSERT_EQ(fx.dev->resets, 1);
	fixture_teardown();
}

UNIT_TEST(test_mmio_refuses_features_not_offered)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	write_driver_features(V1 | VIRTIO_BIT(7));
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK | S_DRIVER);
	/* A feature word beyond the second counts as not offered, too. */
	write_driver_features(V1);
	wr(R_DRV_FEAT_SEL, 2);
	wr(R_DRV_FEAT, 1);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK | S_DRIVER);
	fixture_teardown();
}

UNIT_TEST(test_mmio_refuses_driver_without_version_1)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	write_driver_features(VIRTIO_BIT(TEST_DEVICE_FEATURE));
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK | S_DRIVER);
	/* A good feature set is then accepted and becomes the device's. */
	write_driver_features(V1 | VIRTIO_BIT(TEST_DEVICE_FEATURE));
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK | S_DRIVER | S_FEATURES_OK);
	UNIT_ASSERT_EQ(fx.dev->vdev.features, V1 | VIRTIO_BIT(TEST_DEVICE_FEATURE));
	/* Frozen once FEATURES_OK is set. */
	write_driver_features(V1);
	UNIT_ASSERT_EQ(fx.dev->vdev.features, V1 | VIRTIO_BIT(TEST_DEVICE_FEATURE));
	fixture_teardown();
}

UNIT_TEST(test_mmio_queue_sel_beyond_num_queues_is_inert)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	write_driver_features(V1);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(R_QUEUE_SEL, 1);
	UNIT_ASSERT_EQ(rd(R_QUEUE_NUM_MAX), QMAX);
	wr(R_QUEUE_SEL, 2);
	UNIT_ASSERT_EQ(rd(R_QUEUE_NUM_MAX), 0);
	wr(R_QUEUE_SEL, 0xffffffff);
	UNIT_ASSERT_EQ(rd(R_QUEUE_NUM_MAX), 0);
	struct fake_vring vr;
	fake_mmio_setup_queue(&fx.bus, 7, &vr, &fx.g, QMAX, RING_BASE);
	UNIT_ASSERT_EQ(rd(R_QUEUE_READY), 0);
	/* Notifying it does nothing either. */
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	wr(R_QUEUE_NOTIFY, 7);
	UNIT_ASSERT_EQ(fx.dev->notifies, 0);
	UNIT_ASSERT_EQ(rd(R_STATUS) & 64, 0);
	fixture_teardown();
}

UNIT_TEST(test_mmio_queue_ready_refuses_bad_size)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	write_driver_features(V1);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	fake_mmio_setup_queue(&fx.bus, 0, &fx.vr, &fx.g, 12, RING_BASE); /* not a power of 2 */
	UNIT_ASSERT_EQ(rd(R_QUEUE_READY), 0);
	UNIT_ASSERT(rd(R_STATUS) & 64);
	wr(R_STATUS, 0);
	UNIT_ASSERT_EQ(rd(R_STATUS), 0);
	fixture_teardown();
}

UNIT_TEST(test_mmio_queue_ready_refuses_rings_outside_ram)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	write_driver_features(V1);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(R_QUEUE_SEL, 0);
	wr(R_QUEUE_NUM, QMAX);
	wr(R_DESC_LO, 0x1000); /* below RAM */
	wr(R_DRIVER_LO, (uint32_t)(RING_BASE + 0x100));
	wr(R_DEVICE_LO, (uint32_t)(RING_BASE + 0x200));
	wr(R_QUEUE_READY, 1);
	UNIT_ASSERT_EQ(rd(R_QUEUE_READY), 0);
	UNIT_ASSERT(rd(R_STATUS) & 64);
	/* Once DRIVER_OK is set, the driver hears about it through a config interrupt. */
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	UNIT_ASSERT(rd(R_INT_STATUS) & VIRTIO_ISR_CONFIG);
	fixture_teardown();
}

UNIT_TEST(test_mmio_queue_layout_is_frozen_outside_setup)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	/* Before FEATURES_OK: ignored. */
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	struct fake_vring vr;
	fake_mmio_setup_queue(&fx.bus, 0, &vr, &fx.g, QMAX, RING_BASE);
	UNIT_ASSERT_EQ(rd(R_QUEUE_READY), 0);
	fixture_teardown();

	UNIT_ASSERT_EQ(fixture_setup(), 0);
	driver_init(V1);
	UNIT_ASSERT_EQ(rd(R_QUEUE_READY), 1);
	/* After DRIVER_OK: a second queue cannot be brought up. */
	fake_mmio_setup_queue(&fx.bus, 1, &vr, &fx.g, QMAX, RING_BASE + 0x2000);
	UNIT_ASSERT_EQ(rd(R_QUEUE_READY), 0);
	fixture_teardown();
}

UNIT_TEST(test_mmio_rejects_wrong_width_accesses)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	uint16_t v16 = 0xabcd;
	bus_read(&fx.bus, FAKE_MMIO_BASE + R_MAGIC, &v16, 2);
	UNIT_ASSERT_EQ(v16, 0);
	uint8_t v8 = S_ACK;
	bus_write(&fx.bus, FAKE_MMIO_BASE + R_STATUS, &v8, 1);
	UNIT_ASSERT_EQ(rd(R_STATUS), 0);
	uint64_t v64 = S_ACK;
	bus_write(&fx.bus, FAKE_MMIO_BASE + R_STATUS, &v64, 8);
	UNIT_ASSERT_EQ(rd(R_STATUS), 0);
	/* Misaligned 32-bit access. */
	uint32_t v32 = 0;
	bus_read(&fx.bus, FAKE_MMIO_BASE + R_MAGIC + 2, &v32, 4);
	UNIT_ASSERT_EQ(v32, 0);
	fixture_teardown();
}

UNIT_TEST(test_mmio_config_space_is_bounds_checked)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	memcpy(fx.dev->config, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	uint32_t v32 = 0;
	bus_read(&fx.bus, FAKE_MMIO_BASE + R_CONFIG + 4, &v32, 4);
	UNIT_ASSERT_EQ(v32, 0x08070605);
	uint8_t v8 = 0;
	bus_read(&fx.bus, FAKE_MMIO_BASE + R_CONFIG + 7, &v8, 1);
	UNIT_ASSERT_EQ(v8, 8);
	/* Past the end, misaligned, or 64-bit wide: reads as 0, writes ignored. */
	v32 = 0xffffffff;
	bus_read(&fx.bus, FAKE_MMIO_BASE + R_CONFIG + 8, &v32, 4);
	UNIT_ASSERT_EQ(v32, 0);
	v32 = 0xffffffff;
	bus_read(&fx.bus, FAKE_MMIO_BASE + R_CONFIG + 6, &v32, 4);
	UNIT_ASSERT_EQ(v32, 0);
	uint64_t v64 = 1;
	bus_read(&fx.bus, FAKE_MMIO_BASE + R_CONFIG, &v64, 8);
	UNIT_ASSERT_EQ(v64, 0);
	v32 = 0;
	bus_write(&fx.bus, FAKE_MMIO_BASE + R_CONFIG + 0x1fc, &v32, 4);
	UNIT_ASSERT_EQ(fx.dev->config[0], 1);
	fixture_teardown();
}

UNIT_TEST(test_mmio_notify_processes_queue_and_interrupts)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	driver_init(V1);
	UNIT_ASSERT_EQ(rd(R_STATUS), S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	UNIT_ASSERT_EQ(rd(R_QUEUE_READY), 1);
	fake_desc(&fx.vr, 0, DATA, 16, 0, 0);
	fake_avail_push(&fx.vr, 0);
	wr(R_QUEUE_NOTIFY, 0);
	UNIT_ASSERT_EQ(fx.dev->notifies, 1);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);
	UNIT_ASSERT_EQ(fx.irqs, 1);
	UNIT_ASSERT_EQ(rd(R_INT_STATUS), VIRTIO_ISR_QUEUE);
	wr(R_INT_ACK, VIRTIO_ISR_QUEUE);
	UNIT_ASSERT_EQ(rd(R_INT_STATUS), 0);
	/* A notify for a queue that is not ready is ignored. */
	wr(R_QUEUE_NOTIFY, 1);
	UNIT_ASSERT_EQ(fx.dev->notifies, 1);
	fixture_teardown();
}

UNIT_TEST(test_mmio_bad_ring_sets_needs_reset_and_config_interrupt)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	driver_init(V1);
	uint32_t gen = rd(R_CONFIG_GEN);
	fake_desc(&fx.vr, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 0); /* loop */
	fake_avail_push(&fx.vr, 0);
	wr(R_QUEUE_NOTIFY, 0);
	UNIT_ASSERT(rd(R_STATUS) & 64);
	UNIT_ASSERT(rd(R_INT_STATUS) & VIRTIO_ISR_CONFIG);
	UNIT_ASSERT_EQ(rd(R_CONFIG_GEN), gen);
	UNIT_ASSERT_EQ(fx.irqs, 1);
	/* Further notifications change nothing; a reset recovers the device. */
	wr(R_QUEUE_NOTIFY, 0);
	UNIT_ASSERT_EQ(fx.irqs, 1);
	driver_init(V1);
	UNIT_ASSERT_EQ(rd(R_STATUS) & 64, 0);
	UNIT_ASSERT_EQ(rd(R_INT_STATUS), 0);
	fake_desc(&fx.vr, 0, DATA, 16, 0, 0);
	fake_avail_push(&fx.vr, 0);
	wr(R_QUEUE_NOTIFY, 0);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);
	fixture_teardown();
}

UNIT_TEST(test_mmio_reset_disables_queues)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	driver_init(V1);
	UNIT_ASSERT_EQ(rd(R_QUEUE_READY), 1);
	wr(R_STATUS, 0);
	wr(R_QUEUE_SEL, 0);
	UNIT_ASSERT_EQ(rd(R_QUEUE_READY), 0);
	UNIT_ASSERT_EQ(fx.dev->vdev.features, 0);
	fake_avail_push(&fx.vr, 0);
	wr(R_QUEUE_NOTIFY, 0);
	UNIT_ASSERT_EQ(fx.dev->notifies, 0);
	fixture_teardown();
}

static void *run_loop(void *loop)
{
	eventloop_run(loop);
	return NULL;
}

UNIT_TEST(test_mmio_notify_through_eventloop)
{
	struct eventloop *loop;
	UNIT_ASSERT_EQ(eventloop_create(&loop), 0);
	UNIT_ASSERT_EQ(fixture_setup_loop(loop), 0);
	driver_init(V1);
	fake_desc(&fx.vr, 0, DATA, 16, 0, 0);
	fake_avail_push(&fx.vr, 0);
	fx.dev->stop_loop = true;
	/* The vCPU side only signals; the loop thread does the work. */
	wr(R_QUEUE_NOTIFY, 0);
	UNIT_ASSERT_EQ(fx.dev->notifies, 0);
	pthread_t th;
	pthread_create(&th, NULL, run_loop, loop);
	pthread_join(th, NULL);
	UNIT_ASSERT_EQ(fx.dev->notifies, 1);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);
	UNIT_ASSERT_EQ(rd(R_INT_STATUS), VIRTIO_ISR_QUEUE);
	fixture_teardown();
	UNIT_ASSERT_EQ(fx.destroyed, 1);
	eventloop_destroy(loop);
}

UNIT_TEST(test_mmio_attach_failure_frees_device)
{
	UNIT_ASSERT_EQ(fixture_setup(), 0);
	/* A second device on the same window. */
	struct test_dev *d2 = calloc(1, sizeof(*d2));
	int destroyed = 0;
	d2->vdev.ops = &test_ops;
	d2->destroyed = &destroyed;
	snprintf(d2->vdev.id, sizeof(d2->vdev.id), "virtio-test t1");
	struct virtio_mmio_host host = {
	    .mem = &fx.g.mem, .mmio_bus = &fx.bus, .vm_fd = -1, .base = FAKE_MMIO_BASE + 0x100};
	struct virtio_mmio *t2 = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(virtio_mmio_attach(&host, &d2->vdev, &t2, &err), -EBUSY);
	UNIT_ASSERT_CONTAINS(err.msg, "virtio-test t1: MMIO window");
	UNIT_ASSERT_EQ(destroyed, 1);
	/* The first device still answers. */
	UNIT_ASSERT_EQ(rd(R_MAGIC), 0x74726976);
	virtio_mmio_detach(fx.t);
	fx.t = NULL;
	UNIT_ASSERT_EQ(fx.destroyed, 1);
	/* Detach unregistered the window. */
	UNIT_ASSERT(!bus_read(&fx.bus, FAKE_MMIO_BASE, &destroyed, 4));
	fixture_teardown();
}

UNIT_MAIN("virtio_mmio")
