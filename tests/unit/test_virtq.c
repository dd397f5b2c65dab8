/* Split virtqueue validation (virtio 1.2 §2.7) against a fake guest. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../vmm/virtio/virtio_dev.h"
#include "../../vmm/virtio/virtqueue.h"
#include "unit.h"
#include "virtio_fake_guest.h"

#define RAM_SIZE  (1u << 20)
#define RING_BASE (FAKE_RAM_GPA + 0x1000)
#define DATA	  (FAKE_RAM_GPA + 0x10000) /* buffers live from here on */
#define QSIZE	  16

struct fake_dev {
	struct virtio_dev vdev;
	int irqs;
	int needs_reset;
};

static void fake_raise_irq(struct virtio_dev *dev, uint32_t isr)
{
	if (isr & VIRTIO_ISR_QUEUE)
		((struct fake_dev *)(void *)dev)->irqs++;
}

static void fake_needs_reset(struct virtio_dev *dev)
{
	((struct fake_dev *)(void *)dev)->needs_reset++;
}

static void fake_kick(struct virtio_dev *dev, unsigned index)
{
	(void)dev;
	(void)index;
}

static const struct virtio_transport_ops fake_transport = {
    .raise_irq = fake_raise_irq,
    .needs_reset = fake_needs_reset,
    .kick = fake_kick,
};

struct fixture {
	struct fake_guest g;
	struct fake_dev dev;
	struct virtqueue vq;
	struct fake_vring vr;
	struct virtq_chain chain;
};

static struct fixture fx;

#define ALL_RING_FEATURES \
	(VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX))

/* The rejections are logged on purpose: capture the log to check the reason. */
static char log_path[] = "/tmp/petrel-test-virtq-log-XXXXXX";
static off_t log_mark;

static void capture_log(void)
{
	if (log_path[sizeof(log_path) - 2] == 'X') {
		int fd = mkstemp(log_path);
		if (fd >= 0)
			close(fd);
		log_set_file(log_path);
	}
	struct stat st;
	log_mark = stat(log_path, &st) == 0 ? st.st_size : 0;
}

/* What was logged since the fixture was set up. */
static const char *logged(void)
{
	static char buf[4096];
	buf[0] = '\0';
	FILE *f = fopen(log_path, "r");
	if (!f)
		return buf;
	fseek(f, log_mark, SEEK_SET);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

__attribute__((destructor)) static void remove_log(void)
{
	unlink(log_path);
}

static int fixture_setup_sized(uint64_t ram, uint16_t qsize, uint64_t features)
{
	capture_log();
	fake_guest_free(&fx.g);
	memset(&fx.dev, 0, sizeof(fx.dev));
	if (fake_guest_init(&fx.g, ram) < 0)
		return -1;
	snprintf(fx.dev.vdev.id, sizeof(fx.dev.vdev.id), "test-virtq");
	fx.dev.vdev.transport_ops = &fake_transport;
	virtq_init(&fx.vq, &fx.dev.vdev, &fx.g.mem, 0);
	fake_vring_init(&fx.vr, &fx.g, qsize, RING_BASE);
	return virtq_setup(&fx.vq, qsize, VIRTQ_MAX_SIZE, fx.vr.desc, fx.vr.avail, fx.vr.used,
			   features, NULL);
}

static int fixture_setup(uint64_t features)
{
	return fixture_setup_sized(RAM_SIZE, QSIZE, features);
}

/* The common failure check: -EIO, queue broken, NEEDS_RESET requested once. */
#define ASSERT_BROKEN(why)                                                     \
	do {                                                                   \
		UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), -EIO); \
		UNIT_ASSERT_CONTAINS(logged(), why);                           \
		UNIT_ASSERT(fx.vq.broken);                                     \
		UNIT_ASSERT_EQ(fx.dev.needs_reset, 1);                         \
		UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), -EIO); \
		UNIT_ASSERT_EQ(fx.dev.needs_reset, 1);                         \
	} while (0)

UNIT_TEST(test_virtq_pops_valid_chain)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 3, DATA, 16, VIRTQ_DESC_F_NEXT, 7);
	fake_desc(&fx.vr, 7, DATA + 0x1000, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	fake_desc(&fx.vr, 1, DATA + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_avail_push(&fx.vr, 3);

	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 1);
	UNIT_ASSERT_EQ(fx.chain.head, 3);
	UNIT_ASSERT_EQ(fx.chain.n_out, 1);
	UNIT_ASSERT_EQ(fx.chain.n_in, 2);
	UNIT_ASSERT_EQ(fx.chain.out_len, 16);
	UNIT_ASSERT_EQ(fx.chain.in_len, 513);
	UNIT_ASSERT(fx.chain.iov[0].iov_base == fake_ptr(&fx.g, DATA));
	UNIT_ASSERT(fx.chain.iov[1].iov_base == fake_ptr(&fx.g, DATA + 0x1000));
	UNIT_ASSERT(fx.chain.iov[2].iov_base == fake_ptr(&fx.g, DATA + 0x2000));
	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 0);

	virtq_push_used(&fx.vq, 3, 513);
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), 1);
	UNIT_ASSERT_EQ(fake_used_id(&fx.vr, 0), 3);
	UNIT_ASSERT_EQ(fake_used_len(&fx.vr, 0), 513);
	virtq_notify_used(&fx.vq);
	UNIT_ASSERT_EQ(fx.dev.irqs, 1);
	/* Nothing new pushed: no second interrupt. */
	virtq_notify_used(&fx.vq);
	UNIT_ASSERT_EQ(fx.dev.irqs, 1);
	UNIT_ASSERT_EQ(fx.dev.needs_reset, 0);
}

UNIT_TEST(test_virtq_wraps_avail_and_used_indices)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 0, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
	for (unsigned i = 0; i < 70000; i++) {
		fake_avail_push(&fx.vr, 0);
		UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 1);
		virtq_push_used(&fx.vq, 0, 8);
	}
	UNIT_ASSERT_EQ(fake_used_idx(&fx.vr), (uint16_t)70000);
	UNIT_ASSERT(!fx.vq.broken);
}

UNIT_TEST(test_virtq_rejects_descriptor_loop)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&fx.vr, 1, DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	fake_desc(&fx.vr, 2, DATA, 16, VIRTQ_DESC_F_NEXT, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("descriptor loop");
}

UNIT_TEST(test_virtq_rejects_self_loop_with_empty_buffers)
{
	/* Zero-length descriptors add no buffer but still count towards the loop check. */
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 5, DATA, 0, VIRTQ_DESC_F_NEXT, 5);
	fake_avail_push(&fx.vr, 5);
	ASSERT_BROKEN("descriptor loop");
}

UNIT_TEST(test_virtq_rejects_address_outside_ram)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 0, 0x100, 16, 0, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("not in guest RAM");
}

UNIT_TEST(test_virtq_rejects_buffer_crossing_end_of_ram)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 0, FAKE_RAM_GPA + RAM_SIZE - 8, 16, VIRTQ_DESC_F_WRITE, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("not in guest RAM");
}

UNIT_TEST(test_virtq_rejects_length_overflow)
{
	/* addr + len wraps around 2^64. */
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 0, UINT64_MAX - 7, 0x10000, 0, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("not in guest RAM");
}

UNIT_TEST(test_virtq_rejects_chain_total_over_32_bits)
{
	/* 1024 indirect entries of 4 MiB each, all aliasing the same RAM: 4 GiB in total,
	 * which the used ring's 32-bit length cannot describe. */
	const uint64_t ram = 8u << 20;
	const uint32_t chunk = 4u << 20;
	UNIT_ASSERT_EQ(fixture_setup_sized(ram, 1024, ALL_RING_FEATURES), 0);
	uint64_t table = FAKE_RAM_GPA + 0x20000;
	for (unsigned i = 0; i < 1024; i++)
		fake_desc_at(&fx.g, table, i, FAKE_RAM_GPA + 0x100000, chunk,
			     VIRTQ_DESC_F_WRITE | (i < 1023 ? VIRTQ_DESC_F_NEXT : 0),
			     (uint16_t)(i + 1));
	fake_desc(&fx.vr, 0, table, 1024 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("overflows 32 bits");
}

UNIT_TEST(test_virtq_rejects_head_beyond_queue_size)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_avail_push(&fx.vr, QSIZE);
	ASSERT_BROKEN("head index 16 beyond queue size 16");
}

UNIT_TEST(test_virtq_rejects_next_beyond_queue_size)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 0, DATA, 16, VIRTQ_DESC_F_NEXT, QSIZE);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("next index 16 beyond");
}

UNIT_TEST(test_virtq_rejects_avail_idx_jump)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 0, DATA, 16, 0, 0);
	fake_avail_set_idx(&fx.vr, QSIZE + 1);
	ASSERT_BROKEN("avail idx jumped from 0 to 17");
}

UNIT_TEST(test_virtq_accepts_full_ring)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	for (unsigned i = 0; i < QSIZE; i++) {
		fake_desc(&fx.vr, i, DATA + 16 * i, 16, 0, 0);
		fake_avail_push(&fx.vr, (uint16_t)i);
	}
	for (unsigned i = 0; i < QSIZE; i++)
		UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 1);
	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 0);
	UNIT_ASSERT(!fx.vq.broken);
}

UNIT_TEST(test_virtq_rejects_readable_after_writable)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 0, DATA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	fake_desc(&fx.vr, 1, DATA + 16, 16, 0, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("readable buffer after a writable");
}

UNIT_TEST(test_virtq_follows_indirect_table)
{
	UNIT_ASSERT_EQ(fixture_setup(ALL_RING_FEATURES), 0);
	uint64_t table = DATA + 0x8000;
	fake_desc_at(&fx.g, table, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	fake_desc_at(&fx.g, table, 2, DATA + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	fake_desc_at(&fx.g, table, 1, DATA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_desc(&fx.vr, 4, table, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_avail_push(&fx.vr, 4);
	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 1);
	UNIT_ASSERT_EQ(fx.chain.head, 4);
	UNIT_ASSERT_EQ(fx.chain.n_out, 1);
	UNIT_ASSERT_EQ(fx.chain.n_in, 2);
	UNIT_ASSERT_EQ(fx.chain.in_len, 513);
	UNIT_ASSERT(fx.chain.iov[2].iov_base == fake_ptr(&fx.g, DATA + 0x400));
}

UNIT_TEST(test_virtq_rejects_indirect_length_not_multiple_of_16)
{
	UNIT_ASSERT_EQ(fixture_setup(ALL_RING_FEATURES), 0);
	fake_desc(&fx.vr, 0, DATA, 24, VIRTQ_DESC_F_INDIRECT, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("multiple of 16 in 1..queue size (length 24)");
}

UNIT_TEST(test_virtq_rejects_empty_indirect_table)
{
	UNIT_ASSERT_EQ(fixture_setup(ALL_RING_FEATURES), 0);
	fake_desc(&fx.vr, 0, DATA, 0, VIRTQ_DESC_F_INDIRECT, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("(length 0)");
}

UNIT_TEST(test_virtq_rejects_indirect_table_longer_than_queue)
{
	UNIT_ASSERT_EQ(fixture_setup(ALL_RING_FEATURES), 0);
	fake_desc(&fx.vr, 0, DATA, (QSIZE + 1) * 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("(length 272)");
}

UNIT_TEST(test_virtq_rejects_nested_indirect)
{
	UNIT_ASSERT_EQ(fixture_setup(ALL_RING_FEATURES), 0);
	uint64_t table = DATA + 0x8000;
	fake_desc_at(&fx.g, table, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_desc(&fx.vr, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("nested indirect");
}

UNIT_TEST(test_virtq_rejects_indirect_with_next)
{
	UNIT_ASSERT_EQ(fixture_setup(ALL_RING_FEATURES), 0);
	uint64_t table = DATA + 0x8000;
	fake_desc_at(&fx.g, table, 0, DATA, 16, 0, 0);
	fake_desc(&fx.vr, 0, table, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&fx.vr, 1, DATA, 16, 0, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("indirect descriptor with NEXT");
}

UNIT_TEST(test_virtq_rejects_indirect_loop)
{
	UNIT_ASSERT_EQ(fixture_setup(ALL_RING_FEATURES), 0);
	uint64_t table = DATA + 0x8000;
	fake_desc_at(&fx.g, table, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_desc_at(&fx.g, table, 1, DATA, 16, VIRTQ_DESC_F_NEXT, 0);
	fake_desc(&fx.vr, 0, table, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("descriptor loop");
}

UNIT_TEST(test_virtq_rejects_indirect_next_beyond_table)
{
	UNIT_ASSERT_EQ(fixture_setup(ALL_RING_FEATURES), 0);
	uint64_t table = DATA + 0x8000;
	fake_desc_at(&fx.g, table, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	fake_desc(&fx.vr, 0, table, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("next index 2 beyond table size 2");
}

UNIT_TEST(test_virtq_rejects_indirect_table_outside_ram)
{
	UNIT_ASSERT_EQ(fixture_setup(ALL_RING_FEATURES), 0);
	fake_desc(&fx.vr, 0, FAKE_RAM_GPA + RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("indirect table");
}

UNIT_TEST(test_virtq_rejects_indirect_when_not_negotiated)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	uint64_t table = DATA + 0x8000;
	fake_desc_at(&fx.g, table, 0, DATA, 16, 0, 0);
	fake_desc(&fx.vr, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_avail_push(&fx.vr, 0);
	ASSERT_BROKEN("not negotiated");
}

UNIT_TEST(test_virtq_setup_rejects_bad_size)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	struct virtqueue vq;
	struct perr err = {0};
	virtq_init(&vq, &fx.dev.vdev, &fx.g.mem, 0);
	UNIT_ASSERT_EQ(virtq_setup(&vq, 0, 256, fx.vr.desc, fx.vr.avail, fx.vr.used, 0, &err),
		       -EINVAL);
	UNIT_ASSERT_EQ(virtq_setup(&vq, 3, 256, fx.vr.desc, fx.vr.avail, fx.vr.used, 0, &err),
		       -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "power of 2");
	UNIT_ASSERT_EQ(virtq_setup(&vq, 512, 256, fx.vr.desc, fx.vr.avail, fx.vr.used, 0, &err),
		       -EINVAL);
	UNIT_ASSERT(!vq.ready);
}

UNIT_TEST(test_virtq_setup_rejects_bad_ring_addresses)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	struct virtqueue vq;
	struct perr err = {0};
	virtq_init(&vq, &fx.dev.vdev, &fx.g.mem, 0);
	/* Misaligned descriptor table (§2.7: 16 bytes). */
	UNIT_ASSERT_EQ(
	    virtq_setup(&vq, QSIZE, 256, fx.vr.desc + 8, fx.vr.avail, fx.vr.used, 0, &err),
	    -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "aligned");
	/* Used ring running past the end of RAM. */
	UNIT_ASSERT_EQ(virtq_setup(&vq, QSIZE, 256, fx.vr.desc, fx.vr.avail,
				   FAKE_RAM_GPA + RAM_SIZE - 64, 0, &err),
		       -EINVAL);
	UNIT_ASSERT_CONTAINS(err.msg, "not in guest RAM");
	/* Avail ring below RAM. */
	UNIT_ASSERT_EQ(virtq_setup(&vq, QSIZE, 256, fx.vr.desc, 0x1000, fx.vr.used, 0, &err),
		       -EINVAL);
	/* Wrapping address. */
	UNIT_ASSERT_EQ(
	    virtq_setup(&vq, QSIZE, 256, UINT64_MAX - 15, fx.vr.avail, fx.vr.used, 0, &err),
	    -EINVAL);
	UNIT_ASSERT(!vq.ready);
	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&vq, &fx.chain), 0);
}

UNIT_TEST(test_virtq_no_interrupt_flag_suppresses_irq)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_desc(&fx.vr, 0, DATA, 16, 0, 0);
	fake_set_avail_flags(&fx.vr, VIRTQ_AVAIL_F_NO_INTERRUPT);
	fake_avail_push(&fx.vr, 0);
	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 1);
	virtq_push_used(&fx.vq, 0, 0);
	virtq_notify_used(&fx.vq);
	UNIT_ASSERT_EQ(fx.dev.irqs, 0);
}

UNIT_TEST(test_virtq_event_idx_interrupts_when_used_event_is_crossed)
{
	UNIT_ASSERT_EQ(fixture_setup(VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX)), 0);
	fake_desc(&fx.vr, 0, DATA, 16, 0, 0);
	/* The driver wants an interrupt once used idx passes 2 (i.e. after entry 2). */
	fake_set_used_event(&fx.vr, 2);
	for (unsigned i = 0; i < 4; i++)
		fake_avail_push(&fx.vr, 0);
	int irqs_after[4];
	for (unsigned i = 0; i < 4; i++) {
		UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 1);
		virtq_push_used(&fx.vq, 0, 0);
		virtq_notify_used(&fx.vq);
		irqs_after[i] = fx.dev.irqs;
	}
	/* The first decision always interrupts; then only the step from 2 to 3 does. */
	UNIT_ASSERT_EQ(irqs_after[0], 1);
	UNIT_ASSERT_EQ(irqs_after[1], 1);
	UNIT_ASSERT_EQ(irqs_after[2], 2);
	UNIT_ASSERT_EQ(irqs_after[3], 2);
}

UNIT_TEST(test_virtq_event_idx_rearms_avail_event_when_empty)
{
	UNIT_ASSERT_EQ(fixture_setup(VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX)), 0);
	fake_desc(&fx.vr, 0, DATA, 16, 0, 0);
	fake_avail_push(&fx.vr, 0);
	fake_avail_push(&fx.vr, 0);
	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 1);
	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 1);
	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 0);
	UNIT_ASSERT_EQ(fake_avail_event(&fx.vr), 2);
}

UNIT_TEST(test_virtq_reset_forgets_broken_state)
{
	UNIT_ASSERT_EQ(fixture_setup(0), 0);
	fake_avail_push(&fx.vr, QSIZE);
	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), -EIO);
	virtq_reset(&fx.vq);
	UNIT_ASSERT(!fx.vq.broken);
	UNIT_ASSERT(!fx.vq.ready);
	UNIT_ASSERT_EQ(virtq_pop_desc_chain(&fx.vq, &fx.chain), 0);
}

UNIT_TEST(test_virtq_iov_helpers_cross_buffers)
{
	uint8_t a[3] = {1, 2, 3}, b[4] = {4, 5, 6, 7};
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	uint8_t out[8] = {0};
	UNIT_ASSERT_EQ(virtq_iov_to_buf(iov, 2, 2, out, 4), 4);
	UNIT_ASSERT(out[0] == 3 && out[1] == 4 && out[3] == 6);
	UNIT_ASSERT_EQ(virtq_iov_to_buf(iov, 2, 5, out, 8), 2);
	uint8_t in[2] = {9, 9};
	UNIT_ASSERT_EQ(virtq_iov_from_buf(iov, 2, 2, in, 2), 2);
	UNIT_ASSERT(a[2] == 9 && b[0] == 9);
	struct iovec sl[2];
	UNIT_ASSERT_EQ(virtq_iov_slice(iov, 2, 1, 5, sl, 2), 2);
	UNIT_ASSERT(sl[0].iov_base == a + 1 && sl[0].iov_len == 2 && sl[1].iov_len == 3);
	UNIT_ASSERT_EQ(virtq_iov_slice(iov, 2, 1, 7, sl, 2), -1);
	UNIT_ASSERT_EQ(virtq_iov_slice(iov, 2, 0, 7, sl, 1), -1);
	fake_guest_free(&fx.g);
}

UNIT_MAIN("virtq")
